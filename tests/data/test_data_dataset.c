/* Targets from a COCO file (official ConvertCocoPolysToMask), label mapping,
 * batches of mixed sizes (padding mask, normalisation, normalised boxes), and
 * every class of bad input under on_bad_sample = error and skip. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

static char tmp[256], fix[1024];

static const char *tpath(const char *name) {
    static char p[2][512];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp, name);
    return p[k];
}

static void write_text(const char *name, const char *text) { t_write_in(tmp, name, text); }

/* a w x h grey image with a white rectangle [x0,x1) x [y0,y1) */
static void write_rect_png(const char *name, int w, int h, int x0, int y0, int x1, int y1) {
    data_image im = {w, h, cd_xmalloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memset(im.rgb + ((size_t)y * w + x) * 3, x >= x0 && x < x1 && y >= y0 && y < y1 ? 255 : 60, 3);
    if (data_write_png(tpath(name), &im)) t_diag("cannot write %s", name);
    data_image_free(&im);
}

static const char *CATS = "\"categories\": [{\"id\": 3, \"name\": \"alpha\"}, {\"id\": 7, \"name\": \"beta\"}]";

static data_dataset *open_ds(const char *json, const char *dir, int contiguous, data_bad_policy bad) {
    data_opts o;
    data_opts_default(&o);
    o.ann_file = tpath(json);
    o.image_dir = dir;
    o.contiguous_labels = contiguous;
    o.on_bad_sample = bad;
    o.quiet = 1;
    return data_open(&o);
}

static void test_targets(void) {
    char j[2048];
    snprintf(j, sizeof j,
             "{\"images\": [{\"id\": 1, \"file_name\": \"a.png\", \"width\": 64, \"height\": 48},\n"
             "  {\"id\": 2, \"file_name\": \"b.png\", \"width\": 40, \"height\": 60}],\n"
             " \"annotations\": [\n"
             "  {\"id\": 10, \"image_id\": 1, \"category_id\": 3, \"bbox\": [10, 8, 30, 22], \"area\": 600, \"iscrowd\": 0},\n"
             "  {\"id\": 11, \"image_id\": 1, \"category_id\": 7, \"bbox\": [0, 0, 5, 5], \"area\": 25, \"iscrowd\": 1},\n"
             "  {\"id\": 12, \"image_id\": 1, \"category_id\": 7, \"bbox\": [50, 40, 30, 20], \"area\": 600, \"iscrowd\": 0}],\n"
             " %s}\n", CATS);
    write_text("good.json", j);
    write_rect_png("a.png", 64, 48, 10, 8, 40, 30);
    write_rect_png("b.png", 40, 60, 5, 5, 15, 15);
    data_dataset *d = open_ds("good.json", tmp, 0, DATA_BAD_ERROR);
    t_ok(d != NULL, "good dataset opens (%s)", d ? "ok" : cd_errbuf());
    if (!d) return;
    t_ok(data_size(d) == 2, "both images kept, the one without annotations too (%zu)", data_size(d));
    data_boxes b = {0};
    data_sample_boxes(d, 0, &b);
    t_ok(b.n == 2, "crowd annotation dropped: 2 boxes of 3 (got %zu)", b.n);
    t_ok(b.n == 2 && b.boxes[0] == 10 && b.boxes[1] == 8 && b.boxes[2] == 40 && b.boxes[3] == 30 && b.labels[0] == 3,
         "xywh [10,8,30,22] -> xyxy (10,8,40,30), label = raw id 3");
    t_ok(b.n == 2 && b.boxes[4] == 50 && b.boxes[5] == 40 && b.boxes[6] == 64 && b.boxes[7] == 48 && b.labels[1] == 7,
         "box past the edge clamped to the 64x48 image: (50,40,64,48)");
    data_sample_boxes(d, 1, &b);
    t_ok(b.n == 0, "image without annotations has no boxes");
    t_ok(data_num_classes(d) == 8 && data_label_category(d, 7) == 7 && data_label_category(d, 5) == -1 &&
         !strcmp(data_label_name(d, 3), "alpha") && data_label_name(d, 4) == NULL,
         "raw labels: num_classes = max id + 1 = 8, gaps map to no category");

    /* batch of both images, validation resize to short side 32, max 64 */
    loader_opts lo;
    loader_opts_default(&lo, 0);
    augment_opts ao;
    augment_opts_default(&ao);
    ao.val_size = 32; ao.val_max_size = 64;
    size_t idx[2] = {0, 1};
    data_batch batch = {0};
    int rc = data_make_batch(d, &lo, &ao, 0, idx, 2, &batch);
    t_ok(rc == 0 && batch.B == 2, "batch of 2 made (%s)", rc ? cd_errbuf() : "ok");
    if (rc == 0) {
        const data_target *t0 = &batch.targets[0], *t1 = &batch.targets[1];
        /* 64x48 -> 42x32 ; 40x60 -> 32x48 ; padded to 48 x 42 */
        t_ok(t0->w == 42 && t0->h == 32 && t1->w == 32 && t1->h == 48 && batch.H == 48 && batch.W == 42,
             "sizes 42x32 and 32x48, padded to HxW 48x42 (got %zux%zu)", batch.H, batch.W);
        t_ok(t0->orig_w == 64 && t0->orig_h == 48 && t0->image_id == 1 && t1->image_id == 2 && t1->n == 0,
             "per-image original size and image id");
        int mask_ok = 1, pad_ok = 1, norm_ok = 1;
        data_image ref;
        data_image_load(&ref, tpath("a.png"));
        data_image_resize(&ref, 42, 32);
        const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
        for (size_t bi = 0; bi < 2; bi++)
            for (size_t y = 0; y < batch.H; y++)
                for (size_t x = 0; x < batch.W; x++) {
                    int in = (int)x < batch.targets[bi].w && (int)y < batch.targets[bi].h;
                    mask_ok &= batch.mask[(bi * batch.H + y) * batch.W + x] == (in ? 0 : 1);
                    for (int c = 0; c < 3; c++) {
                        float v = batch.images[((bi * 3 + c) * batch.H + y) * batch.W + x];
                        if (!in) pad_ok &= v == 0;
                        else if (bi == 0) {
                            double want = (ref.rgb[(y * 42 + x) * 3 + c] / 255.0 - mean[c]) / sd[c];
                            norm_ok &= fabs(v - want) < 1e-5;
                        }
                    }
                }
        data_image_free(&ref);
        t_ok(mask_ok, "mask: 0 on each image's region, 1 on the padding");
        t_ok(pad_ok, "padding pixels are 0 after normalisation");
        t_ok(norm_ok, "pixels are (x/255 - mean)/std with the ImageNet mean and std");
        float want0[4] = {25.0f / 64, 19.0f / 48, 30.0f / 64, 22.0f / 48};
        float want1[4] = {57.0f / 64, 44.0f / 48, 14.0f / 64, 8.0f / 48};
        t_ok(t0->n == 2, "image 1 keeps its 2 boxes");
        if (t0->n == 2) {
            t_close_f("box 0 cxcywh normalised by the unpadded size", want0, t0->boxes, 4, 1e-6, 1e-5);
            t_close_f("box 1 cxcywh normalised by the unpadded size", want1, t0->boxes + 4, 4, 1e-6, 1e-5);
        }
    }
    data_batch_free(&batch);
    data_close(d);

    d = open_ds("good.json", tmp, 1, DATA_BAD_ERROR);
    t_ok(d && data_num_classes(d) == 2 && data_label_category(d, 1) == 7 && !strcmp(data_label_name(d, 1), "beta") &&
         data_label_category(d, 0) == 3, "contiguous labels: 2 classes, label 1 <-> category 7 'beta'");
    if (d) {
        data_sample_boxes(d, 0, &b);
        t_ok(b.n == 2 && b.labels[0] == 0 && b.labels[1] == 1, "contiguous labels: boxes carry labels 0 and 1");
    }
    data_close(d);
    data_boxes_free(&b);
}

/* a one-image dataset whose JSON body (image and annotation) is given */
static void write_one(const char *json, const char *file, int w, int h, const char *ann) {
    char j[2048];
    snprintf(j, sizeof j,
             "{\"images\": [{\"id\": 1, \"file_name\": \"%s\", \"width\": %d, \"height\": %d}],\n"
             " \"annotations\": [%s],\n %s}\n", file, w, h, ann, CATS);
    write_text(json, j);
}

/* expect data_open to fail (open_fails) or the first batch to fail, with
 * every `want` substring in the message */
static void expect_error(const char *what, const char *json, const char *dir, int open_fails, const char *w1,
                         const char *w2) {
    data_dataset *d = open_ds(json, dir, 0, DATA_BAD_ERROR);
    char msg[2048] = "";
    int failed = 0;
    if (!d) { failed = open_fails; snprintf(msg, sizeof msg, "%s", cd_errbuf()); }
    else if (!open_fails) {
        loader_opts lo; augment_opts ao;
        loader_opts_default(&lo, 0); augment_opts_default(&ao);
        ao.val_size = 32;
        size_t i0 = 0;
        data_batch b = {0};
        failed = data_make_batch(d, &lo, &ao, 0, &i0, 1, &b) == -1;
        snprintf(msg, sizeof msg, "%s", cd_errbuf());
        data_batch_free(&b);
    }
    data_close(d);
    t_ok(failed && strstr(msg, w1) && (!w2 || strstr(msg, w2)), "%s: error '%s'", what, msg);
}

/* images without width/height in the file: the decoded size is used, boxes
 * are clamped to it when loading */
static void test_unsized(void) {
    char j[1024];
    snprintf(j, sizeof j,
             "{\"images\": [{\"id\": 1, \"file_name\": \"a.png\"}],\n"
             " \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 3, \"bbox\": [50, 40, 30, 20]}],\n"
             " %s}\n", CATS);
    write_text("unsized.json", j);
    data_dataset *d = open_ds("unsized.json", tmp, 0, DATA_BAD_ERROR);
    t_ok(d != NULL, "image without width/height opens (%s)", d ? "ok" : cd_errbuf());
    if (!d) return;
    loader_opts lo; augment_opts ao;
    loader_opts_default(&lo, 0); augment_opts_default(&ao);
    ao.val_size = 48;   /* 64x48 keeps its size */
    size_t i0 = 0;
    data_batch b = {0};
    int rc = data_make_batch(d, &lo, &ao, 0, &i0, 1, &b);
    t_ok(rc == 0 && b.B == 1 && b.targets[0].orig_w == 64 && b.targets[0].orig_h == 48 && b.targets[0].n == 1,
         "unsized image: original size from the decoded image, 1 box");
    if (rc == 0 && b.targets[0].n == 1) {
        float want[4] = {57.0f / 64, 44.0f / 48, 14.0f / 64, 8.0f / 48};
        t_close_f("unsized image: box clamped to the decoded 64x48", want, b.targets[0].boxes, 4, 1e-6, 1e-5);
    }
    data_batch_free(&b);
    data_close(d);
}

static void test_bad(void) {
    /* one-image datasets: the JSON's name, its image file and size, its one annotation
     * (id, category_id, bbox, area; id 0: none), images from the fixtures (1) or
     * tmp (0), whether data_open fails (or the batch), what the message holds */
    static const struct {
        const char *what, *json, *file;
        int w, h, ann_id, cat, bbox[4], area, in_fix, open_fails;
        const char *w1, *w2;
    } one[] = {
        {"missing image file", "missing.json", "nope.png", 64, 48, 0, 0, {0}, 0, 0, 1, "nope.png", "not found"},
        {"corrupt image", "corrupt.json", "not_an_image.png", 32, 24, 0, 0, {0}, 0, 1, 0, "not_an_image.png",
         "cannot decode image"},
        {"truncated JPEG", "trunc.json", "truncated.jpg", 96, 96, 0, 0, {0}, 0, 1, 0, "truncated.jpg",
         "truncated JPEG"},
        {"truncated PNG", "trunc2.json", "truncated.png", 32, 24, 0, 0, {0}, 0, 1, 0, "truncated.png", "cannot decode"},
        {"image size not the JSON's", "size.json", "a.png", 60, 48, 0, 0, {0}, 0, 0, 0, "a.png: the image is 64x48",
         "says 60x48"},
        {"box with w = 0", "w0.json", "a.png", 64, 48, 5, 3, {10, 8, 0, 22}, 0, 0, 1, "annotation id 5",
         "width or height <= 0"},
        {"box with h < 0", "hneg.json", "a.png", 64, 48, 6, 3, {10, 8, 5, -2}, 0, 0, 1, "annotation id 6",
         "width or height <= 0"},
        {"box outside the image", "out.json", "a.png", 64, 48, 7, 3, {70, 8, 5, 5}, 25, 0, 1, "annotation id 7",
         "outside the 64x48 image"},
        {"unknown category id", "cat.json", "a.png", 64, 48, 8, 9, {1, 1, 5, 5}, 25, 0, 1, "category_id 9",
         "categories"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(one); i++) {
        char ann[256] = "";
        if (one[i].ann_id)
            snprintf(ann, sizeof ann,
                     "{\"id\": %d, \"image_id\": 1, \"category_id\": %d, \"bbox\": [%d, %d, %d, %d], \"area\": %d, "
                     "\"iscrowd\": 0}", one[i].ann_id, one[i].cat, one[i].bbox[0], one[i].bbox[1], one[i].bbox[2],
                     one[i].bbox[3], one[i].area);
        write_one(one[i].json, one[i].file, one[i].w, one[i].h, ann);
        expect_error(one[i].what, one[i].json, one[i].in_fix ? fix : tmp, one[i].open_fails, one[i].w1, one[i].w2);
    }
    write_text("syntax.json", "{\"images\": [\n  {\"id\": 1,, \"file_name\": \"a.png\"}\n]}\n");
    expect_error("JSON syntax error", "syntax.json", tmp, 1, "syntax.json:2:", "JSON syntax error");
    char j[512];
    snprintf(j, sizeof j, "{\"images\": [], \"annotations\": [], %s}\n", CATS);
    write_text("empty.json", j);
    expect_error("dataset with no images", "empty.json", tmp, 1, "empty.json", "no images");
    expect_error("missing annotation file", "absent.json", tmp, 1, "absent.json", NULL);

    /* skip: the same faults in one dataset; bad annotations dropped at open,
     * bad images left out of their batch, all counted */
    char big[4096];
    snprintf(big, sizeof big,
             "{\"images\": [{\"id\": 1, \"file_name\": \"a.png\", \"width\": 64, \"height\": 48},\n"
             "  {\"id\": 2, \"file_name\": \"nope.png\", \"width\": 64, \"height\": 48},\n"
             "  {\"id\": 3, \"file_name\": \"bad.png\", \"width\": 32, \"height\": 24},\n"
             "  {\"id\": 4, \"file_name\": \"b.png\", \"width\": 40, \"height\": 60}],\n"
             " \"annotations\": [\n"
             "  {\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": [10, 8, 0, 22], \"area\": 0, \"iscrowd\": 0},\n"
             "  {\"id\": 6, \"image_id\": 1, \"category_id\": 3, \"bbox\": [70, 8, 5, 5], \"area\": 0, \"iscrowd\": 0},\n"
             "  {\"id\": 7, \"image_id\": 1, \"category_id\": 3, \"bbox\": [10, 8, 30, 22], \"area\": 660, \"iscrowd\": 0}],\n"
             " %s}\n", CATS);
    write_text("skip.json", big);
    FILE *f = fopen(tpath("bad.png"), "w");
    fputs("garbage", f);
    fclose(f);
    data_dataset *d = open_ds("skip.json", tmp, 0, DATA_BAD_SKIP);
    t_ok(d && data_size(d) == 3 && data_skipped(d) == 3,
         "skip: opens with 3 of 4 images, 3 bad samples counted (2 annotations, 1 missing file) (got %zu)",
         d ? data_skipped(d) : 0);
    if (d) {
        data_boxes b = {0};
        data_sample_boxes(d, 0, &b);
        t_ok(b.n == 1 && b.boxes[2] == 40, "skip: the good annotation stays (n %zu)", b.n);
        data_boxes_free(&b);
        loader_opts lo; augment_opts ao;
        loader_opts_default(&lo, 0); augment_opts_default(&ao);
        ao.val_size = 32;
        lo.batch_size = 3; lo.workers = 2;
        data_loader *L = loader_create(d, &lo, &ao);
        const data_batch *bt;
        int rc = loader_next(L, &bt);
        t_ok(rc == 1 && bt->B == 2 && bt->targets[0].image_id == 1 && bt->targets[1].image_id == 4,
             "skip: the corrupt image is left out of its batch (B = %zu)", rc == 1 ? bt->B : 0);
        t_ok(loader_next(L, &bt) == 0 && data_skipped(d) == 4, "skip: 4 bad samples counted in all (%zu)",
             data_skipped(d));
        loader_destroy(L);
    }
    data_close(d);

    /* error: the loader stops with the file and the reason */
    d = open_ds("corrupt.json", fix, 0, DATA_BAD_ERROR);
    if (d) {
        loader_opts lo; augment_opts ao;
        loader_opts_default(&lo, 0); augment_opts_default(&ao);
        lo.batch_size = 1;
        data_loader *L = loader_create(d, &lo, &ao);
        const data_batch *bt;
        int rc = loader_next(L, &bt);
        t_ok(rc == -1 && strstr(cd_errbuf(), "not_an_image.png") && strstr(cd_errbuf(), "on_bad_sample=skip"),
             "error: loader_next fails naming the file and the way out: '%s'", cd_errbuf());
        loader_destroy(L);
    }
    data_close(d);
}

int main(void) {
    (void)t_seed; (void)t_uniform;   /* check.h helpers this test does not use */
    const char *r = getenv("CLDETR_SOURCE_ROOT");
    snprintf(fix, sizeof fix, "%s/tests/fixtures/data", r ? r : ".");
    if (!t_tmpdir(tmp, sizeof tmp, "cldetr_data")) { t_ok(0, "mkdtemp"); return t_done(); }
    test_targets();
    test_unsized();
    test_bad();
    t_rmtree(tmp);
    return t_done();
}
