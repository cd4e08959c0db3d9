/* The training-only queries (Group DETR's query groups, DN-DETR's denoising
 * queries) leave DETR's own queries alone:
 *  - the self-attention mask: each matching group sees only itself; a denoising
 *    group sees the matching queries and itself, never another denoising group;
 *  - with 3 groups and 2 denoising groups in the decoder, the first Q outputs
 *    equal a plain DETR forward of the same model (nothing leaks into them);
 *  - group g's outputs equal a plain forward of the model whose query_embed is
 *    group g's embedding (the groups are independent copies of DETR's queries);
 *  - a model built without them has exactly DETR's parameters, and the extra
 *    ones are named training-only (exports leave them out).
 * Their gradients are checked against finite differences in test_detr_fd.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/detr.h"
#include "cldetr/weights.h"
#include "../check.h"

enum { B = 2, H = 64, W = 64, Q = 4, K = 3, D = 16, GROUPS = 3, DN = 2, PAD = 3 };

static detr_opts tiny(int groups, int dn) {
    detr_opts o;
    detr_opts_default(&o);
    o.depth = 18; o.width = 4; o.d = D; o.nheads = 2; o.enc_layers = 1; o.dec_layers = 2; o.dim_ff = 16;
    o.dropout = 0; o.num_queries = Q; o.num_classes = K; o.query_groups = groups; o.dn = dn;
    return o;
}

/* logits and boxes of every decoder layer: (L, B, n, K1) and (L, B, n, 4) */
static void run(detr_model *m, cd_device *dev, const float *img, const float *mask, const detr_train_queries *tq,
                float *logits, float *boxes, size_t *nq) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m->params);
    nn_ctx_reset(&ctx);
    ctx.record = 0;
    detr_out o;
    detr_forward_train(m, &ctx, img, mask, B, H, W, tq, &o);
    *nq = o.Q;
    for (size_t l = 0; l < o.L; l++) {
        cd_read(dev, logits + l * B * o.Q * (K + 1), o.logits[l]->data, B * o.Q * (K + 1));
        cd_read(dev, boxes + l * B * o.Q * 4, o.boxes[l]->data, B * o.Q * 4);
    }
    nn_ctx_free(&ctx);
}

/* rows [q0, q0 + Q) of every image and layer of x (L, B, n, w) */
static void rows(float *out, const float *x, size_t n, size_t q0, size_t w) {
    for (size_t lb = 0; lb < 2 * B; lb++) memcpy(out + lb * Q * w, x + (lb * n + q0) * w, Q * w * sizeof *out);
}

static void test_mask(void) {
    /* Q = 2, 2 groups, 2 denoising groups of 1: rows are queries, 1 = may look */
    static const int want[6][6] = {
        {1, 1, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {0, 0, 1, 1, 0, 0},
        {0, 0, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0, 1},
    };
    float bias[36];
    detr_train_attn_mask(bias, 2, 2, 2, 1);
    int ok = 1;
    for (int i = 0; i < 36; i++) ok &= bias[i] == (want[i / 6][i % 6] ? 0.0f : DETR_MASKED);
    t_ok(ok, "self-attention mask: groups see themselves, denoising groups the matching queries and themselves");
}

int main(void) {
    test_mask();
    cd_device *dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "open device");
    if (!dev) return t_done();
    t_seed(5);
    float *img = malloc(B * 3 * H * W * sizeof *img), *mask = calloc(B * H * W, sizeof *mask);
    for (size_t i = 0; i < B * 3 * H * W; i++) img[i] = (float)t_uniform(-2, 2);
    for (size_t y = 0; y < H; y++)
        for (size_t x = 40; x < W; x++) mask[H * W + y * W + x] = 1.0f;     /* image 1 padded on the right */

    detr_model plain, m;
    detr_opts bad = tiny(1, 1);
    bad.d = 12;
    bad.nheads = 2;
    t_ok(detr_build(&m, &bad, dev, 7) == -1 && strstr(cd_errbuf(), "divisible by 8"),
         "denoising with hidden_dim 12 is refused: %s", cd_errbuf());
    detr_opts op = tiny(1, 0), ot = tiny(GROUPS, 1);
    t_ok(detr_build(&plain, &op, dev, 7) == 0 && detr_build(&m, &ot, dev, 7) == 0, "build both models");
    int extra = 0, named = 1;
    for (int i = 0; i < m.params.n; i++) {
        int found = nn_param_find(&plain.params, m.params.p[i].name) >= 0;
        extra += !found;
        named &= found != detr_param_training_only(m.params.p[i].name);
    }
    t_ok(extra == 4 && m.params.n == plain.params.n + 4 && named,
         "the accelerators add 4 parameters (query groups, label and box embeddings), all named training-only");
    /* the same weights in both: copy DETR's by name */
    nn_params_download(&m.params, dev);
    for (int i = 0; i < plain.params.n; i++) {
        int j = nn_param_find(&m.params, plain.params.p[i].name);
        memcpy(nn_param_host(&plain.params, i), nn_param_host(&m.params, j), plain.params.p[i].n * sizeof(float));
    }
    nn_params_upload(&plain.params, dev);

    size_t K1 = K + 1, n = GROUPS * Q + DN * PAD, nq = 0, nq0 = 0;
    float *lab = calloc(B * DN * PAD * K1, sizeof *lab), *box = calloc(B * DN * PAD * D, sizeof *box);
    for (size_t r = 0; r < B * DN * PAD; r++) {
        if (r % PAD == PAD - 1) continue;       /* one padding query per group */
        float bx[4] = {(float)t_uniform(0.2, 0.8), (float)t_uniform(0.2, 0.8), 0.2f, 0.3f};
        lab[r * K1 + r % K] = 1.0f;
        detr_box_sine(box + r * D, bx, D);
    }
    detr_train_queries tq = {GROUPS, DN, PAD, lab, box};
    float *lg = malloc(2 * B * n * K1 * sizeof *lg), *bx = malloc(2 * B * n * 4 * sizeof *bx);
    float *lg0 = malloc(2 * B * Q * K1 * sizeof *lg0), *bx0 = malloc(2 * B * Q * 4 * sizeof *bx0);
    float *part = malloc(2 * B * Q * K1 * sizeof *part);
    run(&m, dev, img, mask, &tq, lg, bx, &nq);
    run(&plain, dev, img, mask, NULL, lg0, bx0, &nq0);
    t_ok(nq == n && nq0 == Q, "%zu queries per image with the accelerators, %zu without", nq, nq0);
    rows(part, lg, n, 0, K1);
    t_close_f("group 0's logits = DETR's", lg0, part, 2 * B * Q * K1, 1e-5, 1e-4);
    rows(part, bx, n, 0, 4);
    t_close_f("group 0's boxes = DETR's", bx0, part, 2 * B * Q * 4, 1e-5, 1e-4);

    /* group 2 = DETR with query_embed set to group 2's rows */
    int qe = nn_param_find(&plain.params, "query_embed.weight"), qg = nn_param_find(&m.params, "query_embed_groups.weight");
    memcpy(nn_param_host(&plain.params, qe), nn_param_host(&m.params, qg) + Q * D, Q * D * sizeof(float));
    nn_params_upload(&plain.params, dev);
    run(&plain, dev, img, mask, NULL, lg0, bx0, &nq0);
    rows(part, lg, n, 2 * Q, K1);
    t_close_f("group 2's logits = DETR with group 2's query embedding", lg0, part, 2 * B * Q * K1, 1e-5, 1e-4);
    rows(part, bx, n, 2 * Q, 4);
    t_close_f("group 2's boxes = DETR with group 2's query embedding", bx0, part, 2 * B * Q * 4, 1e-5, 1e-4);
    /* and the denoising queries do move with their inputs (they are not ignored) */
    float *lg2 = malloc(2 * B * n * K1 * sizeof *lg2), *bx2 = malloc(2 * B * n * 4 * sizeof *bx2);
    for (size_t i = 0; i < B * DN * PAD * D; i++) box[i] *= 0.5f;
    run(&m, dev, img, mask, &tq, lg2, bx2, &nq);
    double moved = 0, kept = 0;
    for (size_t lb = 0; lb < 2 * B; lb++)
        for (size_t q = 0; q < n; q++)
            for (size_t c = 0; c < 4; c++) {
                double dlt = fabs(bx2[(lb * n + q) * 4 + c] - bx[(lb * n + q) * 4 + c]);
                if (q < GROUPS * Q) kept = fmax(kept, dlt); else moved = fmax(moved, dlt);
            }
    t_ok(moved > 1e-5 && kept == 0, "changing the denoising boxes moves their outputs (%.2g) and no "
         "matching query's (%.2g)", moved, kept);
    free(lg2); free(bx2);

    /* an export leaves the training-only tensors out: the file loads into plain DETR, and
     * back into the accelerated model, whose extra tensors keep their values */
    char path[] = "/tmp/cldetr-tq-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    int rc = weights_save(&m, dev, path, NULL);
    weights_report rep;
    int rc2 = rc == 0 ? weights_load(&plain, dev, path, NULL, &rep) : -1;
    t_ok(rc == 0 && rc2 == 0 && rep.loaded == plain.params.n && rep.missing == 0 && rep.unexpected == 0,
         "exported weights load into plain DETR: %d of %d tensors, %d missing, %d unexpected %s", rep.loaded,
         plain.params.n, rep.missing, rep.unexpected, rc || rc2 ? cd_errbuf() : "");
    rc = weights_load(&m, dev, path, NULL, &rep);
    t_ok(rc == 0 && rep.loaded == plain.params.n, "and into the model with the accelerators (%d loaded) %s",
         rep.loaded, rc ? cd_errbuf() : "");
    unlink(path);
    free(img); free(mask); free(lab); free(box); free(lg); free(bx); free(lg0); free(bx0); free(part);
    detr_free(&plain, dev);
    detr_free(&m, dev);
    cd_close(dev);
    return t_done();
}
