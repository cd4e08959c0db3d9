/* cldetr step CONFIG --weights FILE --image IMG... --targets COCO.json --dump OUT:
 * one forward, set loss and backward on given images, no update, everything
 * dumped by name for comparison with PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/loss.h"
#include "cldetr/safetensors.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"
#include "cldetr/weights.h"
#include "cli/args.h"
#include "cli/cli.h"

#define MAX_IMAGES 64

/* The dataset holding an image path: file_name equal to the path or to its
 * tail after a '/'. Returns the folder in dir. */
static int find_image(const coco_dataset *c, const char *path, char *dir, size_t cap) {
    size_t pl = strlen(path);
    for (size_t i = 0; i < c->n_images; i++) {
        const char *fn = c->images[i].file_name;
        size_t fl = strlen(fn);
        if (fl > pl || strcmp(path + pl - fl, fn)) continue;
        if (fl == pl) { snprintf(dir, cap, "."); return (int)i; }
        if (path[pl - fl - 1] != '/') continue;
        snprintf(dir, cap, "%.*s", (int)(pl - fl - 1), path);
        if (!dir[0]) snprintf(dir, cap, "/");
        return (int)i;
    }
    return -1;
}

int cmd_step(int argc, char **argv) {
    const char *cfg_path = NULL, *weights = NULL, *targets = NULL, *dump = NULL;
    const char *images[MAX_IMAGES], *v;
    size_t n_images = 0;
    int image_next = -1;          /* argv index of the argument after --image IMG...: one more image */
    args a;
    args_init(&a, "step", argc, argv, ARGS_SETS);
    while (args_next(&a)) {
        args_value(&a, "--weights", &weights);
        args_value(&a, "--targets", &targets);
        args_value(&a, "--dump", &dump);
        int more = a.pos == image_next && args_positional(&a, &v);
        if (more || args_value(&a, "--image", &v)) {
            if (n_images < MAX_IMAGES) images[n_images++] = v;
            else args_error(&a, "at most %d images", MAX_IMAGES);
            image_next = a.next;
        }
        if (args_positional(&a, &v)) {
            if (cfg_path) args_error(&a, "unexpected argument '%s' (images follow --image)", v);
            cfg_path = v;
        }
    }
    if (a.rc >= 0) return a.rc;
    if (!cfg_path || !weights || !targets || !dump || n_images == 0)
        return args_missing(&a, "give CONFIG, --weights, --image, --targets and --dump");
    static config cfg;
    if (config_load(&cfg, cfg_path, a.sets, a.n_sets) < 0) return cli_error();

    /* ---- the batch: each image through the training data path, no augmentation */
    coco_dataset coco;
    if (coco_load(&coco, targets) < 0) return cli_error();
    size_t B = n_images, H = 0, W = 0;
    data_batch *one = cd_xcalloc(B, sizeof *one);
    data_dataset *ds = NULL;
    char ds_dir[4096] = "";
    int num_classes_data = 0;
    for (size_t b = 0; b < B; b++) {
        char dir[4096];
        int ci = find_image(&coco, images[b], dir, sizeof dir);
        if (ci < 0) {
            fprintf(stderr, "cldetr: error: %s: no image of %s has this file_name (compared with the path's tail)\n",
                    images[b], targets);
            return 1;
        }
        if (!ds || strcmp(dir, ds_dir)) {
            data_close(ds);
            data_opts dop;
            data_opts_default(&dop);
            dop.ann_file = targets;
            dop.image_dir = dir;
            dop.contiguous_labels = cfg.data.contiguous_labels;
            dop.on_bad_sample = DATA_BAD_SKIP;     /* the file may list images that are not given */
            dop.quiet = 1;
            if (!(ds = data_open(&dop))) return cli_error();
            snprintf(ds_dir, sizeof ds_dir, "%s", dir);
            num_classes_data = data_num_classes(ds);
        }
        size_t sample = data_size(ds);
        for (size_t s = 0; s < data_size(ds); s++) if (data_coco_index(ds, s) == (size_t)ci) sample = s;
        if (sample == data_size(ds)) {
            fprintf(stderr, "cldetr: error: %s: not readable as image id %lld of %s\n", images[b],
                    (long long)coco.images[ci].id, targets);
            return 1;
        }
        data_image im;
        if (data_image_load(&im, images[b]) < 0) return cli_error();
        augment_opts aug;                    /* the validation resize to the image's own short side: a no-op */
        augment_opts_default(&aug);
        aug.val_size = im.w < im.h ? im.w : im.h;
        aug.val_max_size = 0;
        data_image_free(&im);
        loader_opts lo;
        loader_opts_default(&lo, 0);
        if (data_make_batch(ds, &lo, &aug, 0, &sample, 1, &one[b]) < 0) return cli_error();
        if (one[b].B != 1) { fprintf(stderr, "cldetr: error: %s: the image was left out as bad\n", images[b]); return 1; }
        H = CD_MAX(H, one[b].H);
        W = CD_MAX(W, one[b].W);
    }
    data_batch batch = {0};                  /* the images padded together at the bottom/right */
    batch.B = B; batch.H = H; batch.W = W;
    batch.images = cd_xcalloc(B * 3 * H * W, sizeof *batch.images);
    batch.mask = cd_xmalloc(B * H * W);
    batch.targets = cd_xcalloc(B, sizeof *batch.targets);
    memset(batch.mask, 1, B * H * W);
    int max_label = -1;
    for (size_t b = 0; b < B; b++) {
        const data_batch *s = &one[b];
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < s->H; y++)
                memcpy(batch.images + ((b * 3 + c) * H + y) * W, s->images + (c * s->H + y) * s->W,
                       s->W * sizeof *batch.images);
        for (size_t y = 0; y < s->H; y++) memcpy(batch.mask + (b * H + y) * W, s->mask + y * s->W, s->W);
        batch.targets[b] = s->targets[0];       /* borrowed: one[b] keeps ownership */
        for (size_t k = 0; k < s->targets[0].n; k++) max_label = CD_MAX(max_label, s->targets[0].labels[k]);
    }

    /* ---- the model */
    detr_opts o;
    if (setup_detr_opts(&o, &cfg, num_classes_data) < 0) return cli_error();
    if (max_label >= o.num_classes) {
        fprintf(stderr, "cldetr: error: %s: label %d but the model has %d classes (model.num_classes)\n", targets,
                max_label, o.num_classes);
        return 1;
    }
    o.dropout = 0;   /* eval: no dropout; trainable BN still takes batch statistics (ctx.training) */
    cd_device *dev = cd_open(setup_device_spec(&cfg), 0);
    if (!dev) return cli_error();
    detr_model m;
    if (detr_build(&m, &o, dev, (uint64_t)cfg.train.seed) < 0) return cli_error();
    weights_opts wo = {0};
    wo.allow_unexpected = 1;
    weights_report rep;
    if (weights_load(&m, dev, weights, &wo, &rep) < 0) return cli_error();
    if (rep.unexpected)
        fprintf(stderr, "cldetr step: %s: %d tensors the model does not use were ignored\n", weights, rep.unexpected);

    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m.params);
    ctx.training = 1;
    ctx.seed = (uint64_t)cfg.train.seed;
    train_step_state st;                     /* the training step without an optimizer: gradients only */
    train_step_init(&st, &m, &ctx, NULL, &cfg);
    const double no_lr[2] = {0, 0};
    if (train_step(&st, &batch, 0, no_lr) < 0) return cli_error();
    size_t L = st.out.L, Q = st.out.Q, K1 = st.out.K1;
    const float *logits = st.logits, *boxes = st.boxes;
    const criterion_opts co = st.crit;
    const criterion_result cr = st.cr;
    float *grads = cd_xmalloc((m.params.n_trainable ? m.params.n_trainable : 1) * sizeof *grads);
    cd_read(dev, grads, m.params.grad, m.params.n_trainable);
    float *img = batch.images, *mask = cd_xmalloc(B * H * W * sizeof *mask);
    for (size_t i = 0; i < B * H * W; i++) mask[i] = batch.mask[i];
    criterion_target *tg = st.targets;

    /* ---- the dump */
    st_writer *w = st_writer_new();
    char *text = NULL, names[8192] = "";
    size_t text_len = 0;
    FILE *mf = open_memstream(&text, &text_len);
    if (mf) { config_write(&cfg, mf); fclose(mf); }
    for (size_t b = 0; b < B; b++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", b ? "," : "", images[b]);
    st_writer_meta(w, "producer", "cldetr step");
    st_writer_meta(w, "weights", weights);
    st_writer_meta(w, "images", names);
    st_writer_meta(w, "targets", targets);
    st_writer_meta(w, "mode", o.bn_trainable ? "dropout off; trainable BatchNorm in training mode (batch statistics)"
                                             : "dropout off; frozen BatchNorm");
    st_writer_meta(w, "config", text ? text : "");
    char name[256];
    int64_t sh[4] = {(int64_t)B, (int64_t)Q, (int64_t)K1, 0}, shb[3] = {(int64_t)B, (int64_t)Q, 4};
    for (size_t l = 0; l < L; l++) {
        char pre[64] = "";
        if (l + 1 < L) snprintf(pre, sizeof pre, "aux_outputs.%zu.", l);
        snprintf(name, sizeof name, "%spred_logits", pre);
        st_writer_add(w, name, ST_F32, 3, sh, logits + l * B * Q * K1);
        snprintf(name, sizeof name, "%spred_boxes", pre);
        st_writer_add(w, name, ST_F32, 3, shb, boxes + l * B * Q * 4);
    }
    for (size_t l = 0; l < L; l++) {
        if (!co.aux_loss && l + 1 < L) continue;
        char sfx[32] = "";
        if (l + 1 < L) snprintf(sfx, sizeof sfx, "_%zu", l);
        const criterion_layer_terms *t = &cr.layer[l];
        const struct { const char *n; double v; } terms[] = {
            {"loss_ce", t->loss_ce}, {"loss_bbox", t->loss_bbox}, {"loss_giou", t->loss_giou},
            {"weighted.loss_ce", t->weighted_ce}, {"weighted.loss_bbox", t->weighted_bbox},
            {"weighted.loss_giou", t->weighted_giou}, {"cardinality_error", t->cardinality_error}};
        for (size_t k = 0; k < CD_ARRAY_LEN(terms); k++) {
            snprintf(name, sizeof name, "%s%s", terms[k].n, sfx);
            st_writer_add(w, name, ST_F64, 0, NULL, &terms[k].v);
        }
        size_t n = 0;
        for (size_t b = 0; b < B; b++) n += cr.match_start[l * B + b + 1] - cr.match_start[l * B + b];
        int64_t *idx = cd_xmalloc((n ? n : 1) * 3 * sizeof *idx), r = 0;
        for (size_t b = 0; b < B; b++)
            for (size_t k = cr.match_start[l * B + b]; k < cr.match_start[l * B + b + 1]; k++, r++) {
                idx[3 * r] = (int64_t)b;
                idx[3 * r + 1] = (int64_t)cr.match_query[k];
                idx[3 * r + 2] = (int64_t)cr.match_target[k];
            }
        int64_t ish[2] = {(int64_t)n, 3};
        snprintf(name, sizeof name, "indices%s", sfx);
        st_writer_add(w, name, ST_I64, 2, ish, idx);
        free(idx);
    }
    st_writer_add(w, "loss", ST_F64, 0, NULL, &cr.total);
    st_writer_add(w, "class_error", ST_F64, 0, NULL, &cr.class_error);
    st_writer_add(w, "num_boxes", ST_F64, 0, NULL, &cr.num_boxes);
    int64_t ish[4] = {(int64_t)B, 3, (int64_t)H, (int64_t)W};
    st_writer_add(w, "images", ST_F32, 4, ish, img);
    int64_t msh[3] = {(int64_t)B, (int64_t)H, (int64_t)W};
    st_writer_add(w, "mask", ST_F32, 3, msh, mask);
    for (size_t b = 0; b < B; b++) {
        int64_t *lab = cd_xmalloc((tg[b].n ? tg[b].n : 1) * sizeof *lab);
        for (size_t k = 0; k < tg[b].n; k++) lab[k] = tg[b].labels[k];
        int64_t n1[1] = {(int64_t)tg[b].n}, n2[2] = {(int64_t)tg[b].n, 4};
        snprintf(name, sizeof name, "targets.%zu.labels", b);
        st_writer_add(w, name, ST_I64, 1, n1, lab);
        snprintf(name, sizeof name, "targets.%zu.boxes", b);
        st_writer_add(w, name, ST_F32, 2, n2, tg[b].boxes);
        free(lab);
    }
    for (int i = 0; i < m.params.n; i++) {
        const nn_param *p = &m.params.p[i];
        if (!p->trainable) continue;
        int64_t s[4];
        for (int d = 0; d < p->ndim; d++) s[d] = (int64_t)p->shape[d];
        snprintf(name, sizeof name, "grad.%s", p->name);
        st_writer_add_ref(w, name, ST_F32, p->ndim, s, grads + p->off);
    }
    if (st_writer_write(w, dump) < 0) return cli_error();
    st_writer_free(w);
    const criterion_layer_terms *f = &cr.layer[L - 1];
    printf("step: %zu images, padded %zux%zu, %g target boxes; loss %.6f (final layer: ce %.6f, bbox %.6f, giou %.6f; "
           "class_error %.1f)\nwrote %s\n", B, H, W, cr.num_boxes, cr.total, f->loss_ce, f->loss_bbox, f->loss_giou,
           cr.class_error, dump);
    free(text);
    free(grads);
    train_step_free(&st);
    nn_ctx_free(&ctx);
    detr_free(&m, dev);
    cd_close(dev);
    for (size_t b = 0; b < B; b++) data_batch_free(&one[b]);
    free(one); free(mask); free(batch.images); free(batch.mask); free(batch.targets);
    data_close(ds);
    coco_free(&coco);
    return 0;
}
