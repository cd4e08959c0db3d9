/* DETR's augmentations (datasets/transforms.py, datasets/coco.py
 * make_coco_transforms) on an RGB image and its xyxy pixel boxes, and the
 * counter-based random numbers that drive them. */
#include "cldetr/common.h"
#include "cldetr/data.h"

#include <stdlib.h>
#include <string.h>

void augment_opts_default(augment_opts *o) {
    memset(o, 0, sizeof *o);
    o->hflip = 1;
    o->hflip_p = 0.5;
    o->n_scales = 11;
    for (int i = 0; i < 11; i++) o->scales[i] = 480 + 32 * i;
    o->max_size = 1333;
    o->select = 1;
    o->select_p = 0.5;
    o->n_select_scales = 3;
    o->select_scales[0] = 400; o->select_scales[1] = 500; o->select_scales[2] = 600;
    o->crop_min = 384;
    o->crop_max = 600;
    o->val_size = 800;
    o->val_max_size = 1333;
}

/* ------------------------------------------------------------------ RNG */

/* A stream per (seed, epoch, sample): the host generator (cd_rng_*) started
 * from a hash of the three, so any worker draws the same numbers. */
data_rng data_rng_make(uint64_t seed, uint64_t epoch, uint64_t index) {
    uint64_t k = cd_mix64(seed + 0x9E3779B97F4A7C15ULL);
    k = cd_mix64(k ^ (epoch + 0xD1B54A32D192ED03ULL));
    k = cd_mix64(k ^ (index + 0x8CB92BA72F3D8DD7ULL));
    return (data_rng){k};
}

uint64_t data_rng_u64(data_rng *r) { return cd_rng_next(&r->s); }

double data_rng_uniform(data_rng *r) { return cd_rng_uniform(&r->s); }

int data_rng_int(data_rng *r, int lo, int hi) {
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
    /* multiply-high: unbiased enough for spans far below 2^32 */
    return lo + (int)(((data_rng_u64(r) >> 32) * span) >> 32);
}

/* ---------------------------------------------------------- resize rule */

void data_resize_rule(int w, int h, int size, int max_size, int *ow, int *oh) {
    int mn = CD_MIN(w, h), mx = CD_MAX(w, h);
    /* official: if max/min * size > max_size: size = int(round(max_size * min / max)).
     * In integers: the comparison is exact (at equality both branches give the
     * same size) and Python's round is half-to-even. */
    if (max_size > 0 && (int64_t)mx * size > (int64_t)max_size * mn) {
        int64_t num = (int64_t)max_size * mn, q = num / mx, r2 = 2 * (num % mx);
        if (r2 > mx || (r2 == mx && (q & 1))) q++;
        size = (int)q;
    }
    if ((w <= h && w == size) || (h <= w && h == size)) { *ow = w; *oh = h; return; }
    if (w < h) { *ow = size; *oh = (int)((int64_t)size * h / w); }   /* int() truncates */
    else       { *oh = size; *ow = (int)((int64_t)size * w / h); }
}

/* ----------------------------------------------------------- transforms */

void aug_hflip(data_image *im, data_boxes *b) {
    for (int y = 0; y < im->h; y++) {
        uint8_t *row = im->rgb + (size_t)y * im->w * 3;
        for (int a = 0, z = im->w - 1; a < z; a++, z--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c]; row[3 * a + c] = row[3 * z + c]; row[3 * z + c] = t;
            }
    }
    float W = (float)im->w;
    for (size_t i = 0; i < b->n; i++) {
        float *bx = b->boxes + 4 * i;
        float x0 = bx[0], x1 = bx[2];
        bx[0] = W - x1;
        bx[2] = W - x0;
    }
}

void aug_resize(data_image *im, data_boxes *b, int w, int h) {
    /* ratios as Python floats, then float32 tensors (official resize()) */
    double rw = (double)w / im->w, rh = (double)h / im->h;
    float fw = (float)rw, fh = (float)rh, fa = (float)(rw * rh);
    data_image_resize(im, w, h);
    for (size_t i = 0; i < b->n; i++) {
        float *bx = b->boxes + 4 * i;
        bx[0] *= fw; bx[1] *= fh; bx[2] *= fw; bx[3] *= fh;
        b->area[i] *= fa;
    }
}

void aug_crop(data_image *im, data_boxes *b, int top, int left, int h, int w) {
    uint8_t *out = cd_xmalloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        memcpy(out + (size_t)y * w * 3, im->rgb + ((size_t)(top + y) * im->w + left) * 3, (size_t)w * 3);
    free(im->rgb);
    im->rgb = out;
    im->w = w; im->h = h;
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        float *bx = b->boxes + 4 * i;
        float x0 = bx[0] - (float)left, y0 = bx[1] - (float)top;
        float x1 = bx[2] - (float)left, y1 = bx[3] - (float)top;
        x0 = CD_MAX(CD_MIN(x0, (float)w), 0.0f); x1 = CD_MAX(CD_MIN(x1, (float)w), 0.0f);
        y0 = CD_MAX(CD_MIN(y0, (float)h), 0.0f); y1 = CD_MAX(CD_MIN(y1, (float)h), 0.0f);
        if (!(x1 > x0 && y1 > y0)) continue;
        float *o = b->boxes + 4 * k;
        o[0] = x0; o[1] = y0; o[2] = x1; o[3] = y1;
        b->labels[k] = b->labels[i];
        b->area[k] = (x1 - x0) * (y1 - y0);
        k++;
    }
    b->n = k;
}

/* RandomResize(scales, max_size): uniform choice of the short side. */
static void random_resize(data_image *im, data_boxes *b, data_rng *r, const int *scales, int n, int max_size) {
    int s = scales[data_rng_int(r, 0, n - 1)], w, h;
    data_resize_rule(im->w, im->h, s, max_size, &w, &h);
    aug_resize(im, b, w, h);
}

void augment_apply(const augment_opts *o, int train, data_rng *r, data_image *im, data_boxes *b) {
    int w, h;
    if (!train) {
        data_resize_rule(im->w, im->h, o->val_size, o->val_max_size, &w, &h);
        aug_resize(im, b, w, h);
        return;
    }
    if (o->hflip && data_rng_uniform(r) < o->hflip_p) aug_hflip(im, b);
    if (!o->select || data_rng_uniform(r) < o->select_p) {
        random_resize(im, b, r, o->scales, o->n_scales, o->max_size);
        return;
    }
    random_resize(im, b, r, o->select_scales, o->n_select_scales, 0);
    /* RandomSizeCrop(min, max): side ~ randint[min, min(side, max)], clamped
     * so that an image smaller than min is taken whole on that side. */
    int hi_w = CD_MIN(im->w, o->crop_max), hi_h = CD_MIN(im->h, o->crop_max);
    int cw = data_rng_int(r, CD_MIN(o->crop_min, hi_w), hi_w);
    int ch = data_rng_int(r, CD_MIN(o->crop_min, hi_h), hi_h);
    int top = data_rng_int(r, 0, im->h - ch), left = data_rng_int(r, 0, im->w - cw);
    aug_crop(im, b, top, left, ch, cw);
    random_resize(im, b, r, o->scales, o->n_scales, o->max_size);
}
