/* Inference outside training (src/eval/infer.c):
 * - the single-image transform gives the same floats as a validation batch of
 *   one image (data_make_batch), for a square shapes image and a 200x120 one
 *   (resize rule with the cap, PIL-exact resize, normalisation);
 * - a run folder (config.ini + a checkpoint of a model built with another
 *   seed) opens with the checkpoint's weights, the dataset's class names and
 *   category ids; checkpoint choice and its errors; a missing dataset;
 * - infer_image on each validation image gives the detections infer_dataset gives
 *   for it (batch of one: no padding);
 * - the same model opened from the .ckpt file alone (its stored config) and
 *   from a safetensors file (weights_save) gives the same detections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/evaluate.h"
#include "cldetr/infer.h"
#include "cldetr/loss.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cldetr/weights.h"
#include "../check.h"
#include "../fixtures.h"

static char dir[64], data_root[256], run[256];
static config cfg;

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }
/* cd_errbuf() after a failed call; "" after a success (the buffer keeps older messages) */
#define WHY(rc) ((rc) < 0 ? ": " : ""), ((rc) < 0 ? cd_errbuf() : "")

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static void setup_data(void) {
    t_ok(t_tmpdir(dir, sizeof dir, "cldetr-infer-test") != NULL, "temp folder %s", dir);
    snprintf(data_root, sizeof data_root, "%s/shapes", dir);
    t_ok(t_make_shapes(data_root, 4, 3, 64, 5, 0) == 0, "shapes dataset 4+3 images of 64 px");
    char ini[4096], root_set[320];
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    snprintf(ini, sizeof ini, "%s/tests/fixtures/tiny.ini", root ? root : ".");
    snprintf(root_set, sizeof root_set, "data.root=%s", data_root);
    const char *sets[] = {root_set, "eval.batch_size=1", "data.workers=0", "augment.val_size=48",
                          "augment.val_max_size=60"};
    int rc = config_load(&cfg, ini, sets, 5);
    t_ok(rc == 0, "tiny.ini loads%s%s", WHY(rc));
}

/* infer_prepare == the loader's validation batch of one image. */
static void check_prepare(const char *ann, const char *images, const char *what) {
    data_opts dop;
    data_opts_default(&dop);
    dop.ann_file = ann;
    dop.image_dir = images;
    data_dataset *ds = data_open(&dop);
    t_ok(ds != NULL, "%s: dataset opens%s", what, ds ? "" : cd_errbuf());
    if (!ds) return;
    loader_opts lo;
    augment_opts ao;
    setup_loader_opts(&lo, &cfg, 0);
    setup_augment_opts(&ao, &cfg);
    size_t sample = 0;
    data_batch b = {0};
    t_ok(data_make_batch(ds, &lo, &ao, 0, &sample, 1, &b) == 0, "%s: validation batch of one", what);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", images, data_coco(ds)->images[data_coco_index(ds, 0)].file_name);
    data_image img;
    t_ok(data_image_load(&img, path) == 0, "%s: image decodes", what);
    float *x;
    int h, w, rw, rh;
    infer_prepare(&x, &h, &w, &img, &cfg);
    data_resize_rule(img.w, img.h, cfg.augment.val_size, cfg.augment.val_max_size, &rw, &rh);
    t_ok((size_t)h == b.H && (size_t)w == b.W && w == rw && h == rh,
         "%s: %dx%d -> %dx%d as the batch (%zux%zu) and the resize rule (%dx%d)", what, img.w, img.h, w, h, b.W,
         b.H, rw, rh);
    if ((size_t)h == b.H && (size_t)w == b.W) t_close_f(what, b.images, x, 3 * (size_t)h * w, 0, 0);
    free(x);
    data_image_free(&img);
    data_batch_free(&b);
    data_close(ds);
}

static void test_prepare(void) {
    char ann[1024], images[1024];
    snprintf(ann, sizeof ann, "%s/annotations/val.json", data_root);
    snprintf(images, sizeof images, "%s/val", data_root);
    check_prepare(ann, images, "square 64x64 shapes image");

    /* a 200x120 image: short side 120 -> 48 makes the long side 80 > 60, so the cap decides */
    char wide[512];
    snprintf(wide, sizeof wide, "%s/wide", dir);
    mkdir(wide, 0755);
    data_image im = {200, 120, malloc(200 * 120 * 3)};
    for (int i = 0; i < 200 * 120 * 3; i++) im.rgb[i] = (uint8_t)((i * 7 + (i / 600) * 13) & 255);
    snprintf(images, sizeof images, "%s/img.png", wide);
    t_ok(data_write_png(images, &im) == 0, "write a 200x120 PNG");
    data_image_free(&im);
    snprintf(ann, sizeof ann, "%s/wide.json", wide);
    write_file(ann, "{\"images\": [{\"id\": 1, \"file_name\": \"img.png\", \"width\": 200, \"height\": 120}],"
                    " \"annotations\": [], \"categories\": [{\"id\": 1, \"name\": \"thing\"}]}");
    check_prepare(ann, wide, "200x120 image");
}

/* A run folder: config.ini and last.ckpt of a model built with seed 7. */
static int make_run(detr_model *ref, cd_device *dev) {
    snprintf(run, sizeof run, "%s/run", dir);
    mkdir(run, 0755);
    char path[512];
    snprintf(path, sizeof path, "%s/config.ini", run);
    t_ok(config_save(&cfg, path) == 0, "config.ini written");
    detr_opts o;
    int K = setup_num_classes(&cfg);
    t_ok(K == SHAPES_NUM_CLASSES + 1, "shapes: %d classes (raw ids 1..4)", K);
    if (setup_detr_opts(&o, &cfg, K) < 0 || detr_build(ref, &o, dev, 7) < 0) {
        t_ok(0, "model builds: %s", cd_errbuf());
        return -1;
    }
    static char text[1 << 16];
    FILE *mf = fmemopen(text, sizeof text - 1, "w");
    config_write(&cfg, mf);
    fclose(mf);
    ckpt_meta meta = {0};
    meta.step = 42;
    meta.config_hash = config_hash(&cfg);
    meta.config_text = text;
    snprintf(path, sizeof path, "%s/last.ckpt", run);
    int rc = ckpt_save(path, &meta, &ref->params, NULL, dev);
    t_ok(rc == 0, "last.ckpt written%s%s", WHY(rc));
    return 0;
}


static void test_checkpoint_choice(void) {
    char ck[4096], tag[256], other[512];
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, run, NULL) == 0 && !strcmp(tag, "last") &&
         contains(ck, "last.ckpt"), "default: best.ckpt missing, last.ckpt taken (%s)", ck);
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, run, "best") < 0 &&
         contains(cd_errbuf(), "no best.ckpt") && contains(cd_errbuf(), "--checkpoint last"),
         "asking for best.ckpt that is missing: %s", cd_errbuf());
    snprintf(other, sizeof other, "%s/last.ckpt", run);
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, run, other) == 0 && !strcmp(tag, "last"),
         "a checkpoint file: tag '%s'", tag);
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, run, "/nonexistent/x.ckpt") < 0 &&
         contains(cd_errbuf(), "/nonexistent/x.ckpt: no such file"), "a missing checkpoint file: %s", cd_errbuf());
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, data_root, NULL) < 0 &&
         contains(cd_errbuf(), "is not a run folder (no config.ini)"), "not a run folder: %s", cd_errbuf());
    snprintf(other, sizeof other, "%s/empty-run", dir);
    mkdir(other, 0755);
    snprintf(ck, sizeof ck, "%s/config.ini", other);
    write_file(ck, "[train]\n");
    t_ok(infer_find_checkpoint(ck, sizeof ck, tag, sizeof tag, other, NULL) < 0 &&
         contains(cd_errbuf(), "holds no checkpoint"), "a run without checkpoints: %s", cd_errbuf());
}

static void test_missing_dataset(void) {
    static config c;
    c = cfg;
    snprintf(c.data.root, sizeof c.data.root, "%s/gone", dir);
    c.data.make_shapes = true;
    t_ok(setup_open_split(&c, "val") == NULL && contains(cd_errbuf(), "dataset is missing") &&
         contains(cd_errbuf(), "cldetr make-shapes") && contains(cd_errbuf(), "/gone/annotations/val.json"),
         "a missing shapes dataset says how to make it: %s", cd_errbuf());
    c.data.make_shapes = false;
    t_ok(setup_open_split(&c, "train") == NULL && contains(cd_errbuf(), "put the COCO-format dataset there"),
         "a missing COCO dataset says where it goes");
    t_ok(setup_open_split(&cfg, "test") == NULL && contains(cd_errbuf(), "unknown split 'test'"), "unknown split");
}

/* Every validation image: infer_image == infer_dataset's detections of it. */
static void test_infer_vs_eval(infer_model *im) {
    data_dataset *ds = setup_open_split(&im->cfg, "val");
    t_ok(ds != NULL, "val split opens");
    if (!ds) return;
    loader_opts lo;
    augment_opts ao;
    setup_loader_opts(&lo, &im->cfg, 0);
    setup_augment_opts(&ao, &im->cfg);
    data_loader *L = loader_create(ds, &lo, &ao);
    criterion_opts crit;
    criterion_opts_default(&crit);
    infer_dataset_result r;
    t_ok(infer_dataset(&r, &im->model, &im->ctx, ds, L, &crit, 0, 0) == 0, "infer_dataset over %zu images", data_size(ds));
    size_t Q = (size_t)im->model.o.num_queries;
    t_ok(r.n_dets == Q * data_size(ds), "%zu detections = %zu queries x %zu images", r.n_dets, Q, data_size(ds));
    float *sc = malloc(Q * sizeof *sc), *xy = malloc(4 * Q * sizeof *xy);
    int *lb = malloc(Q * sizeof *lb);
    const coco_dataset *gt = data_coco(ds);
    for (size_t i = 0; i < data_size(ds) && r.n_dets == Q * data_size(ds); i++) {
        const coco_image *ci = &gt->images[data_coco_index(ds, i)];
        char path[600];
        snprintf(path, sizeof path, "%s/val/%s", data_root, ci->file_name);
        data_image img;
        if (data_image_load(&img, path) < 0) { t_ok(0, "%s decodes", path); continue; }
        int n = infer_image(im, &img, sc, lb, xy);
        size_t bad = 0;
        double ref[4 * 64], got[4 * 64], rs[64], gs[64];
        for (size_t q = 0; q < Q && q < 64; q++) {
            const coco_det *d = &r.dets[i * Q + q];
            if (d->image_id != ci->id || d->category_id != infer_label_category(im, lb[q])) bad++;
            rs[q] = d->score;
            gs[q] = sc[q];
            ref[4 * q + 0] = d->bbox[0]; ref[4 * q + 1] = d->bbox[1];
            ref[4 * q + 2] = d->bbox[0] + d->bbox[2]; ref[4 * q + 3] = d->bbox[1] + d->bbox[3];
            for (int k = 0; k < 4; k++) got[4 * q + k] = xy[4 * q + k];
        }
        t_ok(n == (int)Q && bad == 0, "image %lld: %d queries, same image id and categories (%zu differ)",
             (long long)ci->id, n, bad);
        char what[64];
        snprintf(what, sizeof what, "image %lld scores", (long long)ci->id);
        t_close_d(what, rs, gs, Q, 1e-6, 1e-5);
        snprintf(what, sizeof what, "image %lld boxes (px)", (long long)ci->id);
        t_close_d(what, ref, got, 4 * Q, 1e-3, 1e-5);
        data_image_free(&img);
    }
    free(sc); free(xy); free(lb);
    infer_dataset_result_free(&r);
    loader_destroy(L);
    data_close(ds);
}

/* Detections of one image, for comparing models opened in different ways. */
static void detect(infer_model *im, const data_image *img, float *sc, int *lb, float *xy) {
    t_ok(infer_image(im, img, sc, lb, xy) == im->model.o.num_queries, "infer_image on %dx%d", img->w, img->h);
}

/* m, opened another way (rc: its open), gives the run's detections on img
 * (s0, l0, x0 of Q queries). Returns whether it opened (the caller closes it). */
static int same_as_run(infer_model *m, int rc, const char *what, const data_image *img, size_t Q, const float *s0,
                       const int *l0, const float *x0) {
    t_ok(rc == 0, "%s opens%s%s", what, WHY(rc));
    if (!m->dev) return 0;
    size_t n = Q > (size_t)m->model.o.num_queries ? Q : (size_t)m->model.o.num_queries;
    float *s1 = malloc(n * sizeof *s1), *x1 = malloc(4 * n * sizeof *x1);
    int *l1 = malloc(n * sizeof *l1);
    detect(m, img, s1, l1, x1);
    t_ok(!memcmp(l0, l1, Q * sizeof *l0) && !memcmp(s0, s1, Q * sizeof *s0) && !memcmp(x0, x1, 4 * Q * sizeof *x0),
         "%s: the same detections as the run", what);
    free(s1); free(x1); free(l1);
    return 1;
}

int main(void) {
    setup_data();
    test_prepare();
    test_missing_dataset();
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) { t_ok(0, "device: %s", cd_errbuf()); return t_done(); }
    detr_model ref;
    if (make_run(&ref, dev) < 0) return t_done();
    test_checkpoint_choice();

    static infer_model im;
    int rc = infer_open_run(&im, run, NULL, NULL);
    t_ok(rc == 0, "the run opens%s%s", WHY(rc));
    if (!im.dev) return t_done();
    t_ok(im.num_classes == 5 && im.step == 42, "5 classes from the checkpoint, step %llu",
         (unsigned long long)im.step);
    nn_params_download(&im.model.params, im.dev);
    nn_params_download(&ref.params, dev);
    t_close_f("weights = the checkpoint's (model built with another seed)", ref.params.host, im.model.params.host,
              ref.params.total, 0, 0);
    char buf[32];
    t_ok(im.have_names && !strcmp(infer_label_name(&im, 1, buf, sizeof buf), shapes_class_names[0]) &&
         !strcmp(infer_label_name(&im, 4, buf, sizeof buf), shapes_class_names[3]),
         "class names from the dataset: 1 = %s", infer_label_name(&im, 1, buf, sizeof buf));
    t_ok(!strcmp(infer_label_name(&im, 0, buf, sizeof buf), "class 0") && infer_label_category(&im, 0) == 0 &&
         infer_label_category(&im, 3) == 3, "label 0 (no category) is 'class 0'; raw ids are category ids");
    test_infer_vs_eval(&im);

    /* one 200x120 image through the three ways of opening the same weights */
    data_image img = {200, 120, malloc(200 * 120 * 3)};
    for (int i = 0; i < 200 * 120 * 3; i++) img.rgb[i] = (uint8_t)((i / 3 % 200 > 80) ? 220 : 30);
    size_t Q = (size_t)im.model.o.num_queries;
    float *s0 = malloc(Q * sizeof *s0), *x0 = malloc(4 * Q * sizeof *x0);
    int *l0 = malloc(Q * sizeof *l0);
    detect(&im, &img, s0, l0, x0);
    char path[512];
    snprintf(path, sizeof path, "%s/last.ckpt", run);
    static infer_model im2;
    rc = infer_open_weights(&im2, path, NULL, NULL);
    if (same_as_run(&im2, rc, "the .ckpt alone (its stored config)", &img, Q, s0, l0, x0)) {
        t_ok(im2.have_names, "and the same class names (the stored config's dataset)");
        infer_close(&im2);
    }
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    rc = weights_save(&ref, dev, path, NULL);
    t_ok(rc == 0, "weights_save%s%s", WHY(rc));
    char cfg_path[512];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.ini", run);
    t_ok(infer_open_weights(&im2, path, NULL, NULL) < 0 && contains(cd_errbuf(), "--config"),
         "safetensors without config metadata asks for --config: %s", cd_errbuf());
    rc = infer_open_weights(&im2, path, cfg_path, NULL);
    if (same_as_run(&im2, rc, "safetensors + config", &img, Q, s0, l0, x0)) infer_close(&im2);
    t_ok(infer_open_weights(&im2, cfg_path, cfg_path, NULL) < 0 &&
         contains(cd_errbuf(), "neither a cldetr checkpoint nor a safetensors file"), "a file of another kind: %s",
         cd_errbuf());
    t_ok(infer_open_weights(&im2, "/nonexistent.safetensors", NULL, NULL) < 0 &&
         contains(cd_errbuf(), "/nonexistent.safetensors: no such weights file"), "a missing weights file");
    free(s0); free(x0); free(l0);
    data_image_free(&img);
    infer_close(&im);
    detr_free(&ref, dev);
    cd_close(dev);
    t_rmtree(dir);
    return t_done();
}
