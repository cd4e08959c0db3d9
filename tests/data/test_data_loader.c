/* The loader: identical batches whatever the worker count, epoch shuffling,
 * drop_last, normalised targets, shares of a data-parallel job's global
 * batches, on a small synthetic shapes dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

#define N_IMAGES 26

typedef struct {
    uint64_t hash[16];
    size_t B[16];
    size_t order[16][8];
    uint64_t image_hash[16][8];  /* each image's size and targets (not its padding) */
    size_t n;
    int targets_ok;
} epoch_record;

static uint64_t batch_hash(const data_batch *b) {
    uint64_t h = CD_FNV_SEED;
    size_t hdr[3] = {b->B, b->H, b->W};
    h = cd_fnv1a(hdr, sizeof hdr, h);
    h = cd_fnv1a(b->images, b->B * 3 * b->H * b->W * sizeof(float), h);
    h = cd_fnv1a(b->mask, b->B * b->H * b->W, h);
    for (size_t i = 0; i < b->B; i++) {
        const data_target *t = &b->targets[i];
        int64_t meta[6] = {t->image_id, t->orig_h, t->orig_w, t->h, t->w, (int64_t)t->n};
        h = cd_fnv1a(meta, sizeof meta, h);
        h = cd_fnv1a(t->boxes, t->n * 4 * sizeof(float), h);
        h = cd_fnv1a(t->labels, t->n * sizeof(int32_t), h);
    }
    return h;
}

static void run_epoch(data_loader *L, uint64_t epoch, epoch_record *r) {
    const data_batch *b;
    memset(r, 0, sizeof *r);
    r->targets_ok = 1;
    loader_begin_epoch(L, epoch);
    int rc;
    while ((rc = loader_next(L, &b)) == 1 && r->n < 16) {
        r->hash[r->n] = batch_hash(b);
        r->B[r->n] = b->B;
        for (size_t i = 0; i < b->B && i < 8; i++) {
            const data_target *t = &b->targets[i];
            int64_t meta[3] = {t->h, t->w, (int64_t)t->n};
            uint64_t h = cd_fnv1a(meta, sizeof meta, CD_FNV_SEED);
            h = cd_fnv1a(t->boxes, t->n * 4 * sizeof(float), h);
            r->image_hash[r->n][i] = cd_fnv1a(t->labels, t->n * sizeof(int32_t), h);
            r->order[r->n][i] = t->index;
        }
        for (size_t i = 0; i < b->B; i++) {
            const data_target *t = &b->targets[i];
            for (size_t k = 0; k < t->n; k++) {
                const float *q = t->boxes + 4 * k;
                r->targets_ok &= q[0] >= 0 && q[0] <= 1 && q[1] >= 0 && q[1] <= 1 && q[2] > 0 && q[2] <= 1 &&
                                 q[3] > 0 && q[3] <= 1 && q[0] - q[2] / 2 >= -1e-6f && q[0] + q[2] / 2 <= 1 + 1e-6f &&
                                 t->labels[k] >= 1 && t->labels[k] <= 4;
            }
        }
        r->n++;
    }
    if (rc < 0) t_diag("loader error: %s", cd_errbuf());
}

int main(void) {
    (void)t_seed; (void)t_uniform; (void)t_close_f;   /* check.h helpers this test does not use */
    char tmp[256];
    if (!t_tmpdir(tmp, sizeof tmp, "cldetr_loader")) { t_ok(0, "mkdtemp"); return t_done(); }
    t_ok(t_make_shapes(tmp, N_IMAGES, 0, 64, 3, 0) == 0, "shapes dataset written");
    data_dataset *d = t_open_split(tmp, "train");
    t_ok(d != NULL, "dataset opens (%s)", d ? "ok" : cd_errbuf());
    if (!d) return t_done();

    augment_opts ao;
    augment_opts_default(&ao);
    ao.n_scales = 3; ao.scales[0] = 48; ao.scales[1] = 56; ao.scales[2] = 64; ao.max_size = 96;
    ao.select_scales[0] = 50; ao.select_scales[1] = 60; ao.select_scales[2] = 70;
    ao.crop_min = 32; ao.crop_max = 64;
    loader_opts lo;
    loader_opts_default(&lo, 1);
    lo.batch_size = 4; lo.seed = 11;

    epoch_record rec[3][2];
    const int workers[3] = {0, 1, 3};
    for (int w = 0; w < 3; w++) {
        lo.workers = workers[w];
        lo.prefetch = w == 2 ? 3 : 1;
        data_loader *L = loader_create(d, &lo, &ao);
        t_ok(loader_num_batches(L) == N_IMAGES / 4, "drop_last: %d images in batches of 4 -> %d batches", N_IMAGES,
             N_IMAGES / 4);
        run_epoch(L, 0, &rec[w][0]);
        run_epoch(L, 1, &rec[w][1]);
        loader_destroy(L);
    }
    for (int e = 0; e < 2; e++) {
        t_ok(rec[0][e].n == N_IMAGES / 4 && rec[0][e].targets_ok,
             "epoch %d: %zu full batches, boxes cxcywh in [0,1], labels raw ids 1..4", e, rec[0][e].n);
        for (int w = 1; w < 3; w++)
            t_ok(rec[w][e].n == rec[0][e].n && !memcmp(rec[w][e].hash, rec[0][e].hash, sizeof rec[0][e].hash),
                 "epoch %d: %d workers give the same batches as loading in the caller (pixels, masks, targets)", e,
                 workers[w]);
    }
    /* each epoch a permutation, another one per epoch */
    int seen[N_IMAGES] = {0}, dup = 0, moved = 0;
    for (size_t b = 0; b < rec[0][0].n; b++)
        for (size_t i = 0; i < 4; i++) {
            dup += seen[rec[0][0].order[b][i]]++;
            moved += rec[0][0].order[b][i] != rec[0][1].order[b][i];
        }
    t_ok(!dup, "epoch 0 visits each sample at most once");
    t_ok(moved > 12, "epoch 1 has another order than epoch 0 (%d of 24 places differ)", moved);
    t_ok(memcmp(rec[0][0].hash, rec[0][1].hash, sizeof rec[0][0].hash) != 0, "epochs differ in content");

    /* two shares of batch 2 (a job of 2 processes): together the global batches of 4 above, image for
     * image with the same augmentation */
    for (int shard = 0; shard < 2; shard++) {
        loader_opts so = lo;
        so.batch_size = 2; so.shard = shard; so.shards = 2; so.workers = 1;
        data_loader *L = loader_create(d, &so, &ao);
        t_ok(L && loader_num_batches(L) == N_IMAGES / 4, "share %d of 2: %d images in global batches of 2 x 2 -> %d "
             "batches", shard, N_IMAGES, N_IMAGES / 4);
        if (!L) continue;
        epoch_record sr;
        run_epoch(L, 1, &sr);
        loader_destroy(L);
        int same = sr.n == rec[0][1].n;
        for (size_t k = 0; same && k < sr.n; k++)
            for (size_t i = 0; i < 2; i++)
                same &= sr.B[k] == 2 && sr.order[k][i] == rec[0][1].order[k][2 * shard + i] &&
                        sr.image_hash[k][i] == rec[0][1].image_hash[k][2 * shard + i];
        t_ok(same, "share %d of 2 holds images %d..%d of each global batch, augmented the same", shard, 2 * shard,
             2 * shard + 1);
    }
    loader_opts bad = lo;
    bad.shard = 2; bad.shards = 2;
    t_ok(loader_create(d, &bad, &ao) == NULL && strstr(cd_errbuf(), "shard 2 is not in 0..1"),
         "a share outside the job is refused (%s)", cd_errbuf());

    /* validation: in order, no drop, last batch short */
    loader_opts_default(&lo, 0);
    lo.batch_size = 4; lo.workers = 2;
    ao.val_size = 64; ao.val_max_size = 96;
    data_loader *L = loader_create(d, &lo, &ao);
    epoch_record v;
    run_epoch(L, 0, &v);
    int in_order = 1;
    for (size_t b = 0; b < v.n; b++)
        for (size_t i = 0; i < v.B[b]; i++) in_order &= v.order[b][i] == b * 4 + i;
    t_ok(v.n == 7 && v.B[6] == 2 && in_order, "validation: 7 batches in dataset order, the last of 2 images");
    run_epoch(L, 5, &rec[2][0]);
    t_ok(!memcmp(v.hash, rec[2][0].hash, sizeof v.hash), "validation: every epoch the same batches");
    loader_destroy(L);

    /* stop mid-epoch and destroy: workers end cleanly */
    lo.workers = 3;
    L = loader_create(d, &lo, &ao);
    const data_batch *b;
    t_ok(loader_next(L, &b) == 1, "a loader stopped after one batch");
    loader_destroy(L);
    data_close(d);
    t_rmtree(tmp);
    return t_done();
}
