/* Every transform's effect on boxes, on images with known content: white
 * rectangles drawn on black; after a transform each box must still bound the
 * white pixels. Plus the official resize rule's numbers and the RNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

/* An image w x h, black, with white rectangles [x0, x1) x [y0, y1); the boxes
 * are the rectangles, labels 1.., area = box area. */
static void draw(data_image *im, data_boxes *b, int w, int h, const int (*r)[4], size_t n) {
    im->w = w; im->h = h;
    im->rgb = cd_xcalloc((size_t)w * h * 3, 1);
    b->n = b->cap = n;
    b->boxes = cd_xmalloc(n * 4 * sizeof(float));
    b->labels = cd_xmalloc(n * sizeof(int32_t));
    b->area = cd_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        for (int y = r[i][1]; y < r[i][3]; y++)
            for (int x = r[i][0]; x < r[i][2]; x++) memset(im->rgb + ((size_t)y * w + x) * 3, 255, 3);
        for (int k = 0; k < 4; k++) b->boxes[4 * i + k] = (float)r[i][k];
        b->labels[i] = (int32_t)i + 1;
        b->area[i] = (float)((r[i][2] - r[i][0]) * (r[i][3] - r[i][1]));
    }
}

/* Bounds [x0, x1) x [y0, y1) of pixels brighter than half inside the box
 * region grown by `grow` pixels (boxes do not touch in these tests). 0 if none. */
static int bright(const data_image *im, const float *box, int grow, int out[4]) {
    int x0 = CD_MAX(0, (int)floorf(box[0]) - grow), x1 = CD_MIN(im->w, (int)ceilf(box[2]) + grow);
    int y0 = CD_MAX(0, (int)floorf(box[1]) - grow), y1 = CD_MIN(im->h, (int)ceilf(box[3]) + grow);
    out[0] = im->w; out[1] = im->h; out[2] = -1; out[3] = -1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            if (im->rgb[((size_t)y * im->w + x) * 3] > 127) {
                out[0] = CD_MIN(out[0], x); out[1] = CD_MIN(out[1], y);
                out[2] = CD_MAX(out[2], x + 1); out[3] = CD_MAX(out[3], y + 1);
            }
    return out[2] >= 0;
}

/* Largest distance between each box edge and the white pixels' bounds. */
static double box_err(const data_image *im, const data_boxes *b) {
    double worst = 0;
    for (size_t i = 0; i < b->n; i++) {
        int px[4];
        const float *q = b->boxes + 4 * i;
        /* a sliver left by a crop may blur below half brightness: then only
         * require some light inside it */
        if (q[2] - q[0] < 2 || q[3] - q[1] < 2) {
            int lit = 0;
            for (int y = (int)q[1]; y < CD_MIN(im->h, (int)ceilf(q[3])); y++)
                for (int x = (int)q[0]; x < CD_MIN(im->w, (int)ceilf(q[2])); x++) lit |= im->rgb[((size_t)y * im->w + x) * 3] > 0;
            if (!lit) return 1e9;
            continue;
        }
        if (!bright(im, q, 3, px)) return 1e9;
        for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(b->boxes[4 * i + k] - px[k]));
    }
    return worst;
}

static const int rects[3][4] = {{10, 8, 40, 30}, {70, 50, 100, 110}, {120, 5, 150, 25}};

static void test_hflip(void) {
    data_image im; data_boxes b;
    draw(&im, &b, 160, 120, rects, 3);
    aug_hflip(&im, &b);
    t_ok(box_err(&im, &b) == 0, "hflip: boxes bound the flipped rectangles exactly (err %g)", box_err(&im, &b));
    t_ok(b.boxes[0] == 120 && b.boxes[2] == 150 && b.boxes[1] == 8 && b.boxes[3] == 30,
         "hflip: (10,8,40,30) in width 160 -> (120,8,150,30), got (%g,%g,%g,%g)", b.boxes[0], b.boxes[1], b.boxes[2],
         b.boxes[3]);
    aug_hflip(&im, &b);
    data_image ref; data_boxes rb;
    draw(&ref, &rb, 160, 120, rects, 3);
    t_ok(!memcmp(ref.rgb, im.rgb, 160 * 120 * 3) && !memcmp(rb.boxes, b.boxes, 12 * sizeof(float)),
         "hflip twice is the identity (pixels and boxes)");
    data_image_free(&im); data_image_free(&ref); data_boxes_free(&b); data_boxes_free(&rb);
}

static void test_resize(void) {
    const int sizes[][2] = {{80, 60}, {213, 160}, {97, 131}, {320, 240}, {41, 33}};
    for (size_t s = 0; s < CD_ARRAY_LEN(sizes); s++) {
        data_image im; data_boxes b;
        draw(&im, &b, 160, 120, rects, 3);
        float area0 = b.area[1];
        aug_resize(&im, &b, sizes[s][0], sizes[s][1]);
        double e = box_err(&im, &b);
        double ra = (double)sizes[s][0] / 160 * sizes[s][1] / 120;
        t_ok(im.w == sizes[s][0] && im.h == sizes[s][1] && e <= 1.0,
             "resize 160x120 -> %dx%d: boxes bound the rectangles within 1 px (err %.3f)", sizes[s][0], sizes[s][1], e);
        t_ok(fabs(b.area[1] - area0 * ra) < 1e-3 * area0 * ra, "resize %dx%d: area scaled by (w'/w)(h'/h)",
             sizes[s][0], sizes[s][1]);
        t_ok(fabs(b.boxes[4] - 70.0 * sizes[s][0] / 160) < 1e-4 && fabs(b.boxes[7] - 110.0 * sizes[s][1] / 120) < 1e-4,
             "resize %dx%d: box coordinates scaled exactly", sizes[s][0], sizes[s][1]);
        data_image_free(&im); data_boxes_free(&b);
    }
}

static void test_crop(void) {
    data_image im; data_boxes b;
    draw(&im, &b, 160, 120, rects, 3);
    /* region rows 20..99, cols 30..129: box 0 cut, box 1 cut at the bottom, box 2 out (rows 5..25 -> 0..5 kept) */
    aug_crop(&im, &b, 20, 30, 80, 100);
    t_ok(im.w == 100 && im.h == 80, "crop: image is 100x80 (got %dx%d)", im.w, im.h);
    t_ok(b.n == 3, "crop: 3 boxes overlap the region (got %zu)", b.n);
    t_ok(b.n == 3 && box_err(&im, &b) == 0, "crop: boxes bound the cropped rectangles exactly (err %g)", box_err(&im, &b));
    t_ok(b.n == 3 && b.boxes[0] == 0 && b.boxes[1] == 0 && b.boxes[2] == 10 && b.boxes[3] == 10 && b.area[0] == 100,
         "crop: box 0 shifted and clipped to (0,0,10,10), area 100");
    t_ok(b.n == 3 && b.boxes[8] == 90 && b.boxes[10] == 100 && b.boxes[9] == 0 && b.boxes[11] == 5 && b.area[2] == 50,
         "crop: box 2 clipped to (90,0,100,5), area recomputed 50");
    data_image_free(&im); data_boxes_free(&b);

    draw(&im, &b, 160, 120, rects, 3);
    aug_crop(&im, &b, 40, 60, 80, 50);   /* rows 40..119, cols 60..109: only box 1 */
    t_ok(b.n == 1 && b.labels[0] == 2, "crop: boxes outside the region removed with their labels (n %zu, label %d)",
         b.n, b.n ? b.labels[0] : -1);
    t_ok(b.n == 1 && box_err(&im, &b) == 0, "crop: the kept box bounds its rectangle");
    data_image_free(&im); data_boxes_free(&b);

    /* a box touching the crop edge only (zero width after clipping) is removed */
    draw(&im, &b, 160, 120, rects, 3);
    aug_crop(&im, &b, 0, 40, 120, 30);   /* cols 40..69: box 0 ends at 40, box 1 starts at 70 */
    t_ok(b.n == 0, "crop: zero-width boxes removed (n %zu)", b.n);
    data_image_free(&im); data_boxes_free(&b);
}

static void test_resize_rule(void) {
    /* w, h, size, max_size (0 = none) -> w', h': from the official
     * get_size_with_aspect_ratio run in Python (datasets/transforms.py). */
    static const int cases[][6] = {
        {640, 480, 800, 1333, 1066, 800}, {480, 640, 800, 1333, 800, 1066}, {2000, 500, 800, 1333, 1332, 333},
        {500, 2000, 800, 1333, 333, 1332}, {640, 427, 512, 1333, 767, 512}, {1333, 800, 800, 1333, 1333, 800},
        {4, 3, 5, 6, 5, 4},     /* round(4.5) = 4: half to even */
        {4, 3, 5, 2, 2, 2},     /* round(1.5) = 2 */
        {333, 500, 128, 0, 128, 192}, {500, 333, 128, 213, 192, 128}, {128, 128, 128, 200, 128, 128},
        {100, 100, 96, 0, 96, 96}, {1000, 999, 600, 0, 600, 600}, {640, 480, 480, 0, 640, 480},
    };
    int bad = 0;
    for (size_t i = 0; i < CD_ARRAY_LEN(cases); i++) {
        int ow, oh;
        data_resize_rule(cases[i][0], cases[i][1], cases[i][2], cases[i][3], &ow, &oh);
        if (ow != cases[i][4] || oh != cases[i][5]) {
            t_diag("%dx%d size %d max %d: want %dx%d got %dx%d", cases[i][0], cases[i][1], cases[i][2], cases[i][3],
                   cases[i][4], cases[i][5], ow, oh);
            bad++;
        }
    }
    t_ok(bad == 0, "resize rule matches the official numbers on %zu cases", CD_ARRAY_LEN(cases));
}

static void test_rng(void) {
    data_rng a = data_rng_make(42, 3, 7), b = data_rng_make(42, 3, 7), c = data_rng_make(42, 3, 8),
             e = data_rng_make(42, 4, 7);
    int same = 1, diff_c = 0, diff_e = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = data_rng_u64(&a), y = data_rng_u64(&b);
        same &= x == y;
        diff_c += x != data_rng_u64(&c);
        diff_e += x != data_rng_u64(&e);
    }
    t_ok(same && diff_c == 100 && diff_e == 100, "rng: same key same stream; another index or epoch another stream");
    int hist[5] = {0}, out = 0;
    for (int i = 0; i < 50000; i++) {
        int v = data_rng_int(&a, 3, 7);
        if (v < 3 || v > 7) out++; else hist[v - 3]++;
    }
    int flat = 1;
    for (int k = 0; k < 5; k++) flat &= abs(hist[k] - 10000) < 500;   /* ~5 sigma */
    t_ok(!out && flat, "rng: randint[3,7] inclusive and uniform (%d %d %d %d %d)", hist[0], hist[1], hist[2], hist[3],
         hist[4]);
}

static augment_opts small_opts(void) {
    augment_opts o;
    augment_opts_default(&o);
    o.n_scales = 3; o.scales[0] = 96; o.scales[1] = 112; o.scales[2] = 128;
    o.max_size = 200;
    o.n_select_scales = 3; o.select_scales[0] = 100; o.select_scales[1] = 125; o.select_scales[2] = 150;
    o.crop_min = 64; o.crop_max = 150;
    o.val_size = 128; o.val_max_size = 200;
    return o;
}

static void test_pipeline(void) {
    augment_opts o = small_opts();
    int flips = 0, crops = 0, worst_ok = 1, sizes_ok = 1, removed_ok = 1;
    double worst = 0;
    for (int i = 0; i < 60; i++) {
        data_image im; data_boxes b;
        draw(&im, &b, 160, 120, rects, 3);
        data_rng r = data_rng_make(7, 0, (uint64_t)i);
        augment_apply(&o, 1, &r, &im, &b);
        /* which rectangles survived: labels tell */
        int short_side = CD_MIN(im.w, im.h), long_side = CD_MAX(im.w, im.h);
        sizes_ok &= (short_side == 96 || short_side == 112 || short_side == 128 || long_side == 200 ||
                     long_side == 199) && long_side <= 200;
        double e = box_err(&im, &b);
        /* up to three resamplings (resize, crop, resize): edges within 2 px */
        if (e > 2.0) { worst_ok = 0; t_diag("sample %d: box error %.3f", i, e); }
        worst = fmax(worst, e);
        if (b.n < 3) crops++;
        /* box 0 is the leftmost: flipped if its box is right of box 1 */
        for (size_t k = 0; k + 1 < b.n; k++)
            if (b.labels[k] == 1 && b.labels[k + 1] == 2 && b.boxes[4 * k] > b.boxes[4 * k + 4]) flips++;
        /* removed boxes leave no white pixels outside the kept ones */
        size_t white = 0, inside = 0;
        for (int y = 0; y < im.h; y++)
            for (int x = 0; x < im.w; x++) {
                if (im.rgb[((size_t)y * im.w + x) * 3] <= 200) continue;
                white++;
                for (size_t k = 0; k < b.n; k++)
                    if (x + 0.5 >= b.boxes[4 * k] - 1 && x + 0.5 <= b.boxes[4 * k + 2] + 1 &&
                        y + 0.5 >= b.boxes[4 * k + 1] - 1 && y + 0.5 <= b.boxes[4 * k + 3] + 1) { inside++; break; }
            }
        removed_ok &= white == inside;
        data_image_free(&im); data_boxes_free(&b);
    }
    t_ok(worst_ok, "train pipeline (flip, select, resize-crop-resize): boxes bound the drawn pixels within 2 px on 60 "
         "samples (worst %.3f)", worst);
    t_ok(sizes_ok, "train pipeline: short side from the scales or long side at the cap");
    t_ok(removed_ok, "train pipeline: every bright pixel lies in a kept box");
    t_ok(flips > 5 && flips < 55, "train pipeline: some samples flipped, some not (%d of 60)", flips);
    t_ok(crops > 0, "train pipeline: the crop branch ran and cut boxes (%d samples)", crops);

    /* same key, same result; validation is deterministic resize */
    data_image a, c; data_boxes ba, bc;
    draw(&a, &ba, 160, 120, rects, 3); draw(&c, &bc, 160, 120, rects, 3);
    data_rng r1 = data_rng_make(7, 2, 5), r2 = data_rng_make(7, 2, 5);
    augment_apply(&o, 1, &r1, &a, &ba);
    augment_apply(&o, 1, &r2, &c, &bc);
    t_ok(a.w == c.w && a.h == c.h && !memcmp(a.rgb, c.rgb, (size_t)a.w * a.h * 3) && ba.n == bc.n &&
         !memcmp(ba.boxes, bc.boxes, ba.n * 4 * sizeof(float)), "train pipeline: same (seed, epoch, index), same output");
    data_image_free(&a); data_image_free(&c); data_boxes_free(&ba); data_boxes_free(&bc);

    draw(&a, &ba, 160, 120, rects, 3);
    data_rng r3 = data_rng_make(1, 0, 0);
    augment_apply(&o, 0, &r3, &a, &ba);
    t_ok(a.w == 170 && a.h == 128 && box_err(&a, &ba) <= 1.0,
         "val pipeline: 160x120 -> 170x128 (short 128, max 200), boxes follow (got %dx%d)", a.w, a.h);
    data_image_free(&a); data_boxes_free(&ba);

    /* official defaults: full-size crop branch and 1333 cap */
    augment_opts_default(&o);
    t_ok(o.n_scales == 11 && o.scales[0] == 480 && o.scales[10] == 800 && o.max_size == 1333 && o.crop_min == 384 &&
         o.crop_max == 600 && o.select_scales[2] == 600 && o.hflip_p == 0.5 && o.val_size == 800,
         "augment defaults are the official recipe");
    static const int big[2][4] = {{100, 100, 300, 260}, {400, 200, 600, 420}};
    for (int i = 0; i < 6; i++) {
        draw(&a, &ba, 640, 480, big, 2);
        data_rng r = data_rng_make(3, 1, (uint64_t)i);
        augment_apply(&o, 1, &r, &a, &ba);
        double e = box_err(&a, &ba);
        t_ok(e <= 2.0 && CD_MAX(a.w, a.h) <= 1333 && CD_MIN(a.w, a.h) >= 480,
             "default train pipeline on 640x480, sample %d: %dx%d, box error %.3f", i, a.w, a.h, e);
        data_image_free(&a); data_boxes_free(&ba);
    }
}

int main(void) {
    (void)t_seed; (void)t_uniform; (void)t_close_f;   /* check.h helpers this test does not use */
    (void)t_close_d;
    test_hflip();
    test_resize();
    test_crop();
    test_resize_rule();
    test_rng();
    test_pipeline();
    return t_done();
}
