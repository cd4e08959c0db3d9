/* Inference outside training: open a trained model, the evaluation pipeline
 * of its config, detections of single images (include/cldetr/infer.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/coco.h"
#include "cldetr/evaluate.h"
#include "cldetr/infer.h"
#include "cldetr/safetensors.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cldetr/weights.h"

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* cd_seterr("%s ...", cd_errbuf()) would format the buffer into itself. */
static const char *errcopy(void) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", cd_errbuf());
    return buf;
}

/* ---- opening a model ------------------------------------------------------ */

int infer_find_checkpoint(char *out, size_t n_out, char *tag, size_t n_tag, const char *run, const char *which) {
    char cfg[4096];
    if (!is_dir(run)) return cd_seterr("%s: no such run folder", run);
    if (snprintf(cfg, sizeof cfg, "%s/config.ini", run) >= (int)sizeof cfg) return cd_seterr("path too long: %s", run);
    if (!is_file(cfg))
        return cd_seterr("%s is not a run folder (no config.ini); give a folder that `cldetr train` wrote", run);
    if (which && strcmp(which, "best") && strcmp(which, "last")) {         /* a file */
        if (!is_file(which)) return cd_seterr("checkpoint %s: no such file", which);
        snprintf(out, n_out, "%s", which);
        const char *base = strrchr(which, '/');
        snprintf(tag, n_tag, "%s", base ? base + 1 : which);
        if (ends_with(tag, ".ckpt")) tag[strlen(tag) - 5] = '\0';
        return 0;
    }
    const char *name = which ? which : "best";
    snprintf(out, n_out, "%s/%s.ckpt", run, name);
    snprintf(tag, n_tag, "%s", name);
    if (is_file(out)) return 0;
    if (!which) {                               /* no validation ran yet: the last checkpoint */
        snprintf(out, n_out, "%s/last.ckpt", run);
        snprintf(tag, n_tag, "last");
        if (is_file(out)) return 0;
        return cd_seterr("%s holds no checkpoint (neither best.ckpt nor last.ckpt): did its training write one?", run);
    }
    return cd_seterr("%s has no %s.ckpt%s", run, name,
                     !strcmp(name, "best") ? " (it is written when validation runs); try --checkpoint last"
                                           : "");
}



/* Class names of the config's dataset, labels as the data layer numbers them;
 * without the dataset, the names the training kept in its config text. */
static void read_class_names(infer_model *im, const char *config_text, FILE *log) {
    im->have_names = setup_class_names(&im->cfg, im->num_classes, im->class_names, im->label_cat) ||
                     setup_class_names_from_text(config_text, im->num_classes, im->class_names, im->label_cat) > 0;
    if (!im->have_names && log)
        fprintf(log, "class names unknown (no readable %s/%s, none kept with the weights): labels are shown as "
                     "'class N'\n", im->cfg.data.root, im->cfg.data.val_ann);
}

/* Device, model of num_classes, names; the weights are loaded by the caller.
 * config_text (may be NULL): the config the weights came with. */
static int build(infer_model *im, int num_classes, const char *config_text, FILE *log) {
    detr_opts mo;
    if (setup_detr_opts(&mo, &im->cfg, num_classes) < 0) return -1;
    im->num_classes = mo.num_classes;
    im->dev = cd_open(setup_device_spec(&im->cfg), im->cfg.device.profile);
    if (!im->dev) return -1;
    im->dev->oom_hint = "lower augment.val_size and augment.val_max_size (the input size)";
    if (detr_build(&im->model, &mo, im->dev, 0) < 0) { cd_close(im->dev); im->dev = NULL; return -1; }
    nn_ctx_init(&im->ctx, im->dev, &im->model.params);
    im->ctx.training = 0;
    im->ctx.record = 0;
    im->class_names = cd_xcalloc((size_t)im->num_classes, sizeof *im->class_names);
    im->label_cat = cd_xmalloc((size_t)im->num_classes * sizeof *im->label_cat);
    for (int i = 0; i < im->num_classes; i++) im->label_cat[i] = -1;
    read_class_names(im, config_text, log);
    return 0;
}

static int open_ckpt(infer_model *im, const char *path, const config *cfg, FILE *log) {
    ckpt_meta meta = {0};
    if (ckpt_read_meta(path, &meta) < 0) return -1;
    if (cfg) im->cfg = *cfg;
    else if (!meta.config_text || !meta.config_text[0]) {
        ckpt_meta_free(&meta);
        return cd_seterr("%s holds no config text: give the config with --config", path);
    } else if (config_load_text(&im->cfg, meta.config_text, path, NULL, 0) < 0) {
        ckpt_meta_free(&meta);
        return -1;
    }
    int ncls = ckpt_num_classes(path), rc = 0;
    if (ncls < 0) rc = -1;
    else if (im->cfg.model.num_classes > 0 && im->cfg.model.num_classes != ncls)
        rc = cd_seterr("%s has a class head of %d classes but the config says model.num_classes = %d", path, ncls,
                       im->cfg.model.num_classes);
    else rc = build(im, ncls, meta.config_text, log);
    ckpt_meta_free(&meta);
    if (rc < 0) return -1;
    memset(&meta, 0, sizeof meta);
    if (ckpt_load(path, &meta, &im->model.params, NULL, im->dev) < 0) return -1;
    im->step = meta.step;
    ckpt_meta_free(&meta);
    snprintf(im->weights, sizeof im->weights, "%s", path);
    return 0;
}

int infer_open_run(infer_model *im, const char *run, const char *which, FILE *log) {
    memset(im, 0, sizeof *im);
    char ckpt[4096], tag[256], cfg_path[4200];
    if (infer_find_checkpoint(ckpt, sizeof ckpt, tag, sizeof tag, run, which) < 0) return -1;
    snprintf(im->run, sizeof im->run, "%s", run);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.ini", run);
    static config cfg;
    if (config_load(&cfg, cfg_path, NULL, 0) < 0) return cd_seterr("%s", errcopy());
    if (open_ckpt(im, ckpt, &cfg, log) < 0) { infer_close(im); return -1; }
    if (log) fprintf(log, "model: %s (step %llu), %d classes, %d queries, on %s\n", ckpt,
                     (unsigned long long)im->step, im->num_classes, im->model.o.num_queries, im->dev->info.name);
    return 0;
}

int infer_open_weights(infer_model *im, const char *weights, const char *config_path, FILE *log) {
    memset(im, 0, sizeof *im);
    static config cfg;
    if (!is_file(weights)) return cd_seterr("%s: no such weights file", weights);
    if (config_path && config_load(&cfg, config_path, NULL, 0) < 0) return cd_seterr("%s", errcopy());
    FILE *f = fopen(weights, "rb");
    char magic[8] = {0};
    size_t got = f ? fread(magic, 1, 8, f) : 0;
    if (f) fclose(f);
    if (got == 8 && !memcmp(magic, CKPT_MAGIC, 8)) {
        if (open_ckpt(im, weights, config_path ? &cfg : NULL, log) < 0) { infer_close(im); return -1; }
    } else {
        st_file st;
        if (st_open(&st, weights) < 0)
            return cd_seterr("%s is neither a cldetr checkpoint nor a safetensors file: %s", weights, errcopy());
        if (config_path) im->cfg = cfg;
        else if (st_meta(&st, "config")) {
            if (config_load_text(&im->cfg, st_meta(&st, "config"), weights, NULL, 0) < 0) { st_close(&st); return -1; }
        } else {
            st_close(&st);
            return cd_seterr("%s holds no config in its metadata: give the model's config with --config CFG", weights);
        }
        const st_tensor *cb = st_find(&st, "class_embed.bias");
        if (!cb) cb = st_find(&st, "class_labels_classifier.bias");
        if (!cb || cb->ndim != 1 || cb->shape[0] < 2) {
            st_close(&st);
            return cd_seterr("%s has no class head (class_embed.bias): it holds no complete DETR", weights);
        }
        int ncls = (int)cb->shape[0] - 1;
        if (im->cfg.model.num_classes > 0 && im->cfg.model.num_classes != ncls) {
            st_close(&st);
            return cd_seterr("%s has a class head of %d classes but the config says model.num_classes = %d",
                             weights, ncls, im->cfg.model.num_classes);
        }
        if (build(im, ncls, st_meta(&st, "config"), log) < 0 || weights_load_file(&im->model, im->dev, &st, NULL, NULL) < 0) {
            st_close(&st);
            infer_close(im);
            return -1;
        }
        st_close(&st);
        snprintf(im->weights, sizeof im->weights, "%s", weights);
    }
    if (log) fprintf(log, "model: %s, %d classes, %d queries, on %s\n", weights, im->num_classes,
                     im->model.o.num_queries, im->dev->info.name);
    return 0;
}

void infer_close(infer_model *im) {
    if (im->class_names)
        for (int i = 0; i < im->num_classes; i++) free(im->class_names[i]);
    free(im->class_names);
    free(im->label_cat);
    if (im->dev) {
        nn_ctx_free(&im->ctx);
        detr_free(&im->model, im->dev);
        cd_close(im->dev);
    }
    memset(im, 0, sizeof *im);
}

const char *infer_label_name(const infer_model *im, int label, char *buf, size_t n) {
    if (label >= 0 && label < im->num_classes && im->class_names[label]) return im->class_names[label];
    snprintf(buf, n, "class %d", label);
    return buf;
}

int64_t infer_label_category(const infer_model *im, int label) {
    if (label >= 0 && label < im->num_classes && im->label_cat[label] >= 0) return im->label_cat[label];
    return label;
}

/* ---- one image ------------------------------------------------------------ */

void infer_prepare(float **chw, int *h, int *w, const data_image *img, const config *cfg) {
    data_image r;
    r.w = img->w;
    r.h = img->h;
    r.rgb = cd_xmalloc((size_t)img->w * img->h * 3);
    memcpy(r.rgb, img->rgb, (size_t)img->w * img->h * 3);
    int ow, oh;
    data_resize_rule(r.w, r.h, cfg->augment.val_size, cfg->augment.val_max_size, &ow, &oh);
    data_boxes none = {0};
    aug_resize(&r, &none, ow, oh);        /* what the validation transform calls */
    /* float32 as torchvision: x / 255, then (x - mean) / std (the loader's table) */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float mean = (float)cfg->augment.mean.v[c], std = (float)cfg->augment.std.v[c];
        for (int v = 0; v < 256; v++) lut[c][v] = ((float)v / 255.0f - mean) / std;
    }
    size_t plane = (size_t)r.w * r.h;
    float *out = cd_xmalloc(3 * plane * sizeof *out);
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) out[c * plane + p] = lut[c][r.rgb[3 * p + c]];
    *chw = out;
    *h = r.h;
    *w = r.w;
    data_image_free(&r);
}

int infer_image(infer_model *im, const data_image *img, float *scores, int *labels, float *xyxy) {
    if (img->w <= 0 || img->h <= 0) return cd_seterr("an empty image (%d x %d)", img->w, img->h);
    float *x;
    int h, w;
    infer_prepare(&x, &h, &w, img, &im->cfg);
    float *mask = cd_xcalloc((size_t)h * w, sizeof *mask);   /* one image: no padding */
    nn_ctx_reset(&im->ctx);
    im->ctx.training = 0;
    im->ctx.record = 0;
    detr_out o;
    detr_forward(&im->model, &im->ctx, x, mask, 1, (size_t)h, (size_t)w, &o);
    size_t Q = o.Q, K1 = o.K1;
    float *logits = cd_xmalloc(Q * K1 * sizeof *logits), *boxes = cd_xmalloc(Q * 4 * sizeof *boxes);
    cd_read(im->dev, logits, o.logits[o.L - 1]->data, Q * K1);
    cd_read(im->dev, boxes, o.boxes[o.L - 1]->data, Q * 4);
    detr_postprocess(scores, labels, xyxy, logits, boxes, Q, K1, img->w, img->h);
    free(logits); free(boxes); free(mask); free(x);
    return (int)Q;
}

