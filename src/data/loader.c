/* Batches: decode -> augment -> normalise -> pad to the batch's largest H and W
 * (+ mask), made by N worker threads into a ring of prefetch slots and handed
 * out in order. Every random choice comes from (seed, epoch, sample index), so
 * the batches are the same whatever the worker count. */
#include "dataset_internal.h"

#include "cldetr/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void loader_opts_default(loader_opts *o, int train) {
    memset(o, 0, sizeof *o);
    o->batch_size = 2;
    o->workers = 2;
    o->prefetch = 2;
    o->train = train;
    o->shuffle = train;
    o->drop_last = train;
    o->seed = 42;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
}

/* ------------------------------------------------------------ one batch */

static void target_free(data_target *t) {
    free(t->boxes); free(t->labels); free(t->area);
    memset(t, 0, sizeof *t);
}

void data_batch_free(data_batch *b) {
    for (size_t i = 0; i < b->B; i++) target_free(&b->targets[i]);
    free(b->targets); free(b->images); free(b->mask);
    memset(b, 0, sizeof *b);
}

/* Decode and augment sample s. 1 = done, 0 = skipped (bad, DATA_BAD_SKIP),
 * -1 = error (cd_errbuf). */
static int load_sample(data_dataset *d, const loader_opts *o, const augment_opts *aug, uint64_t epoch, size_t s,
                       data_image *im, data_boxes *bx, int *orig_w, int *orig_h) {
    char *path = data_image_path(d, s);
    const coco_image *ci = &d->coco.images[d->img[s]];
    int rc = data_image_load(im, path);
    /* a size of 0 means the file gave none: the decoded size is used */
    if (rc == 0 && ci->width > 0 && ci->height > 0 && (im->w != ci->width || im->h != ci->height)) {
        cd_seterr("%s: the image is %dx%d but %s says %dx%d (image id %lld)", path, im->w, im->h, d->coco.path,
                  ci->width, ci->height, (long long)ci->id);
        data_image_free(im);
        rc = -1;
    }
    free(path);
    if (rc) {
        if (d->on_bad == DATA_BAD_ERROR) {
            char msg[2048];
            snprintf(msg, sizeof msg, "%s", cd_errbuf());
            cd_seterr("%s (set on_bad_sample=skip to leave bad images out)", msg);
            return -1;
        }
        data_note_bad_image(d, s, cd_errbuf());
        return 0;
    }
    data_sample_boxes(d, s, bx);
    *orig_w = im->w; *orig_h = im->h;
    if (ci->width <= 0 || ci->height <= 0) {   /* clamp to the decoded size now, drop empties (official) */
        size_t k = 0;
        for (size_t i = 0; i < bx->n; i++) {
            float *q = bx->boxes + 4 * i, *o4 = bx->boxes + 4 * k;
            float x0 = CD_MIN(q[0], (float)im->w), y0 = CD_MIN(q[1], (float)im->h);
            float x1 = CD_MIN(q[2], (float)im->w), y1 = CD_MIN(q[3], (float)im->h);
            if (!(x1 > x0 && y1 > y0)) continue;
            o4[0] = x0; o4[1] = y0; o4[2] = x1; o4[3] = y1;
            bx->labels[k] = bx->labels[i]; bx->area[k] = bx->area[i];
            k++;
        }
        bx->n = k;
    }
    data_rng r = data_rng_make(o->seed, epoch, s);
    augment_apply(aug, o->train, &r, im, bx);
    return 1;
}

int data_make_batch(data_dataset *d, const loader_opts *o, const augment_opts *aug, uint64_t epoch,
                    const size_t *samples, size_t n, data_batch *out) {
    data_image *ims = cd_xcalloc(n ? n : 1, sizeof *ims);
    data_boxes *bxs = cd_xcalloc(n ? n : 1, sizeof *bxs);
    size_t *idx = cd_xcalloc(n ? n : 1, sizeof *idx);
    int *ow = cd_xcalloc(n ? n : 1, sizeof *ow), *oh = cd_xcalloc(n ? n : 1, sizeof *oh);
    size_t B = 0, H = 0, W = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = load_sample(d, o, aug, epoch, samples[i], &ims[B], &bxs[B], &ow[B], &oh[B]);
        if (r < 0) { rc = -1; break; }
        if (r == 0) continue;
        H = CD_MAX(H, (size_t)ims[B].h);
        W = CD_MAX(W, (size_t)ims[B].w);
        idx[B++] = samples[i];
    }
    for (size_t i = 0; i < out->B; i++) target_free(&out->targets[i]);
    out->B = 0;
    if (rc == 0) {
        /* float32 as torchvision: x / 255, then (x - mean) / std, per channel */
        float lut[3][256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - o->mean[c]) / o->std[c];
        size_t plane = H * W;
        out->B = B; out->H = H; out->W = W;
        size_t n_px = B * plane;
        out->images = cd_xrealloc(out->images, (n_px ? 3 * n_px : 1) * sizeof *out->images);
        out->mask = cd_xrealloc(out->mask, n_px ? n_px : 1);
        out->targets = cd_xrealloc(out->targets, (B ? B : 1) * sizeof *out->targets);
        memset(out->images, 0, B * 3 * plane * sizeof *out->images);
        memset(out->mask, 1, B * plane);
        for (size_t b = 0; b < B; b++) {
            const data_image *im = &ims[b];
            for (int y = 0; y < im->h; y++) {
                const uint8_t *row = im->rgb + (size_t)y * im->w * 3;
                for (int c = 0; c < 3; c++) {
                    float *dst = out->images + (b * 3 + c) * plane + (size_t)y * W;
                    for (int x = 0; x < im->w; x++) dst[x] = lut[c][row[3 * x + c]];
                }
                memset(out->mask + b * plane + (size_t)y * W, 0, (size_t)im->w);
            }
            const coco_image *ci = &d->coco.images[d->img[idx[b]]];
            const data_boxes *bx = &bxs[b];
            data_target *t = &out->targets[b];
            memset(t, 0, sizeof *t);
            t->image_id = ci->id;
            t->index = idx[b];
            t->orig_w = ow[b]; t->orig_h = oh[b];   /* decoded size, as officially */
            t->w = im->w; t->h = im->h;
            t->n = bx->n;
            t->boxes = cd_xmalloc((bx->n ? bx->n : 1) * 4 * sizeof *t->boxes);
            t->labels = cd_xmalloc((bx->n ? bx->n : 1) * sizeof *t->labels);
            t->area = cd_xmalloc((bx->n ? bx->n : 1) * sizeof *t->area);
            float fw = (float)im->w, fh = (float)im->h;
            for (size_t k = 0; k < bx->n; k++) {
                const float *s = bx->boxes + 4 * k;
                float *q = t->boxes + 4 * k;   /* official: box_xyxy_to_cxcywh, / (w, h, w, h) */
                q[0] = ((s[0] + s[2]) / 2) / fw;
                q[1] = ((s[1] + s[3]) / 2) / fh;
                q[2] = (s[2] - s[0]) / fw;
                q[3] = (s[3] - s[1]) / fh;
                t->labels[k] = bx->labels[k];
                t->area[k] = bx->area[k];
            }
        }
    }
    for (size_t i = 0; i < n; i++) { data_image_free(&ims[i]); data_boxes_free(&bxs[i]); }
    free(ims); free(bxs); free(idx); free(ow); free(oh);
    return rc;
}

/* --------------------------------------------------------------- loader */

enum { SLOT_FREE, SLOT_BUILDING, SLOT_READY, SLOT_ERROR };

typedef struct {
    data_batch b;
    size_t k;                    /* batch number it holds or is building */
    int state;
    char err[2048];
} slot;

struct data_loader {
    data_dataset *d;
    loader_opts o;
    augment_opts aug;
    size_t n_batches;
    size_t *perm;                /* [d->n] this epoch's order */
    uint64_t epoch;
    int nslots;
    slot *slots;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next_claim;           /* next batch a worker builds */
    size_t released;             /* batches below this are no longer held by the consumer */
    size_t next_out;             /* next batch handed out */
    int stop;
    int started;                 /* an epoch was begun (loader_create begins epoch 0) */
};

static size_t shards_of(const loader_opts *o) { return o->shards > 1 ? (size_t)o->shards : 1; }

static int build(data_loader *L, size_t k, slot *s) {
    size_t B = L->o.batch_size, lo = k * B * shards_of(&L->o) + (size_t)L->o.shard * B;
    lo = CD_MIN(lo, L->d->n);
    size_t hi = CD_MIN(lo + B, L->d->n);
    int rc = data_make_batch(L->d, &L->o, &L->aug, L->epoch, L->perm + lo, hi - lo, &s->b);
    s->b.number = k;
    if (rc) snprintf(s->err, sizeof s->err, "%s", cd_errbuf());
    return rc;
}

static void *worker_main(void *arg) {
    data_loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->stop && L->next_claim < L->n_batches && L->next_claim >= L->released + (size_t)L->nslots)
            pthread_cond_wait(&L->cv, &L->mu);
        if (L->stop || L->next_claim >= L->n_batches) break;
        size_t k = L->next_claim++;
        slot *s = &L->slots[k % (size_t)L->nslots];
        s->k = k;
        s->state = SLOT_BUILDING;
        pthread_mutex_unlock(&L->mu);
        int rc = build(L, k, s);
        pthread_mutex_lock(&L->mu);
        s->state = rc ? SLOT_ERROR : SLOT_READY;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void stop_workers(data_loader *L) {
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    for (int i = 0; i < L->n_threads; i++) pthread_join(L->threads[i], NULL);
    L->n_threads = 0;
    L->stop = 0;
}

data_loader *loader_create(data_dataset *d, const loader_opts *o, const augment_opts *aug) {
    if (o->batch_size == 0) { cd_seterr("data: batch size must be at least 1"); return NULL; }
    if (o->shards > 1 && (o->shard < 0 || o->shard >= o->shards)) {
        cd_seterr("data: shard %d is not in 0..%d", o->shard, o->shards - 1);
        return NULL;
    }
    if (o->workers < 0 || o->workers > 256) { cd_seterr("data: workers must be in 0..256, got %d", o->workers); return NULL; }
    if (aug->n_scales < 1 || aug->n_scales > AUG_MAX_SCALES ||
        (aug->select && (aug->n_select_scales < 1 || aug->n_select_scales > AUG_MAX_SCALES))) {
        cd_seterr("data: the augmentation needs 1..%d scales", AUG_MAX_SCALES);
        return NULL;
    }
    for (int i = 0; i < aug->n_scales; i++)
        if (aug->scales[i] < 1) { cd_seterr("data: scale %d must be >= 1", aug->scales[i]); return NULL; }
    if (aug->val_size < 1 || aug->crop_min < 1 || aug->crop_max < aug->crop_min) {
        cd_seterr("data: need val_size >= 1 and 1 <= crop_min <= crop_max");
        return NULL;
    }
    data_loader *L = cd_xcalloc(1, sizeof *L);
    L->d = d;
    L->o = *o;
    L->aug = *aug;
    size_t G = o->batch_size * shards_of(o);       /* the global batch */
    L->n_batches = o->drop_last ? d->n / G : (d->n + G - 1) / G;
    L->perm = cd_xmalloc(d->n * sizeof *L->perm);
    L->nslots = (o->prefetch > 0 ? o->prefetch : 1) + 1;
    L->slots = cd_xcalloc((size_t)L->nslots, sizeof *L->slots);
    L->threads = cd_xcalloc((size_t)(o->workers ? o->workers : 1), sizeof *L->threads);
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    loader_begin_epoch(L, 0);
    return L;
}

void loader_destroy(data_loader *L) {
    if (!L) return;
    stop_workers(L);
    for (int i = 0; i < L->nslots; i++) data_batch_free(&L->slots[i].b);
    free(L->slots); free(L->threads); free(L->perm);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv);
    free(L);
}

size_t loader_num_batches(const data_loader *L) { return L->n_batches; }

void loader_begin_epoch(data_loader *L, uint64_t epoch) {
    /* the epoch loader_create began, nothing taken yet: keep the batches made ahead (making them
     * again would decode every image twice and report a bad one twice) */
    if (L->started && epoch == L->epoch && L->next_out == 0) return;
    L->started = 1;
    stop_workers(L);
    L->epoch = epoch;
    size_t n = L->d->n;
    for (size_t i = 0; i < n; i++) L->perm[i] = i;
    if (L->o.shuffle) {   /* Fisher-Yates from (seed, epoch); the stream index no sample uses */
        data_rng r = data_rng_make(L->o.seed, epoch, UINT64_MAX);
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(data_rng_u64(&r) % (i + 1));
            size_t t = L->perm[i]; L->perm[i] = L->perm[j]; L->perm[j] = t;
        }
    }
    for (int i = 0; i < L->nslots; i++) { L->slots[i].k = SIZE_MAX; L->slots[i].state = SLOT_FREE; }
    L->next_claim = L->released = L->next_out = 0;
    for (int i = 0; i < L->o.workers; i++) {
        if (pthread_create(&L->threads[i], NULL, worker_main, L) != 0)
            cd_fatal("data: cannot start loader thread %d of %d", i + 1, L->o.workers);
        L->n_threads++;
    }
}

int loader_next(data_loader *L, const data_batch **out) {
    for (;;) {
        pthread_mutex_lock(&L->mu);
        if (L->next_out >= L->n_batches) { pthread_mutex_unlock(&L->mu); return 0; }
        size_t c = L->next_out++;
        L->released = c;
        pthread_cond_broadcast(&L->cv);
        slot *s = &L->slots[c % (size_t)L->nslots];
        if (L->o.workers == 0) {
            pthread_mutex_unlock(&L->mu);
            s->k = c;
            s->state = build(L, c, s) ? SLOT_ERROR : SLOT_READY;
        } else {
            while (!(s->k == c && (s->state == SLOT_READY || s->state == SLOT_ERROR)))
                pthread_cond_wait(&L->cv, &L->mu);
            pthread_mutex_unlock(&L->mu);
        }
        if (s->state == SLOT_ERROR) return cd_seterr("%s", s->err);
        if (s->b.B == 0) continue;    /* every image of the batch was bad and skipped */
        *out = &s->b;
        return 1;
    }
}
