/* Fuzz data_image_decode (stb_image behind our checks) from the image
 * fixtures (baseline and progressive JPEG, PNG grey/16-bit/RGBA, BMP) and
 * small PPM, PGM, TGA (plain and RLE) and GIF files made here. A decoded
 * image must have a positive size and readable pixels; small ones are also
 * resized (our own code). */
#include "../check.h"
#include "fuzz.h"

#include "cldetr/data.h"

static int target(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    data_image im;
    if (data_image_decode(&im, data, len, "fuzz") != 0) return -1;
    int ok = im.w > 0 && im.h > 0 && im.rgb != NULL;
    unsigned sum = 0;
    for (size_t i = 0; ok && i < (size_t)im.w * im.h * 3; i++) sum += im.rgb[i];   /* every pixel readable */
    if (ok && (size_t)im.w * im.h <= 4096) {
        data_image_resize(&im, im.w / 2 + 1, im.h * 3 / 2 + 1);
        for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) sum += im.rgb[i];
    }
    if (!ok) t_diag("decoded to %dx%d, pixels %p", im.w, im.h, (void *)im.rgb);
    data_image_free(&im);
    fz_sink = sum;
    return ok ? 0 : 1;
}

/* R = 40x, G = 60y, B = 100 on a w x h grid */
static void pattern(uint8_t *rgb, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + (y * w + x) * 3;
            p[0] = (uint8_t)(40 * x); p[1] = (uint8_t)(60 * y); p[2] = 100;
        }
}

static void make_pnm(fz_buf *s, int grey) {
    uint8_t px[4 * 3 * 3];
    pattern(px, 4, 3);
    char head[32];
    int hn = snprintf(head, sizeof head, "%s\n4 3\n255\n", grey ? "P5" : "P6");
    fz_set(s, head, (size_t)hn);
    if (grey) for (int i = 0; i < 12; i++) fz_insert(s, s->n, &px[i * 3 + 1], 1);
    else fz_insert(s, s->n, px, sizeof px);
}

/* Truevision TGA, 24-bit, bottom-up; rle: type 10 with a run and a raw packet per row. */
static void make_tga(fz_buf *s, int rle) {
    uint8_t head[18] = {0, 0, (uint8_t)(rle ? 10 : 2), 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 24, 0};
    uint8_t px[4 * 3 * 3];
    pattern(px, 4, 3);
    fz_set(s, head, sizeof head);
    for (int y = 0; y < 3; y++) {
        if (rle) {
            uint8_t run[4] = {0x81, px[(y * 4) * 3 + 2], px[(y * 4) * 3 + 1], px[(y * 4) * 3]};   /* 2 of pixel 0 */
            fz_insert(s, s->n, run, 4);
            uint8_t raw = 0x01;                                                                  /* 2 raw pixels */
            fz_insert(s, s->n, &raw, 1);
            for (int x = 2; x < 4; x++) {
                uint8_t bgr[3] = {px[(y * 4 + x) * 3 + 2], px[(y * 4 + x) * 3 + 1], px[(y * 4 + x) * 3]};
                fz_insert(s, s->n, bgr, 3);
            }
        } else {
            for (int x = 0; x < 4; x++) {
                uint8_t bgr[3] = {px[(y * 4 + x) * 3 + 2], px[(y * 4 + x) * 3 + 1], px[(y * 4 + x) * 3]};
                fz_insert(s, s->n, bgr, 3);
            }
        }
    }
}

/* A 1x1 GIF89a (two-colour palette, a graphic control extension, LZW data). */
static void make_gif(fz_buf *s) {
    static const uint8_t gif[] = {
        'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0xFF, 0xFF, 0xFF, 0, 0, 0,
        0x21, 0xF9, 4, 1, 0, 0, 0, 0, 0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B};
    fz_set(s, gif, sizeof gif);
}

int main(void) {
    static const char *const files[] = {"fmt_baseline.jpg", "fmt_progressive.jpg", "fmt_grey.png",
                                        "fmt_grey16.png",   "fmt_rgba.png",        "fmt_rgb16.png",
                                        "fmt_rgb.bmp"};
    /* markers and chunk names (no NUL bytes: they are C strings) */
    static const char *const dict[] = {"\xFF\xC4", "\xFF\xDA", "\xFF\xDB", "\xFF\xC0", "\xFF\xC2", "\xFF\xD9",
                                       "\xFF\xDD", "\xFF\xE0", "\xFF\xFF", "IHDR", "IDAT", "PLTE", "tRNS",
                                       "IEND", "BM", "GIF89a", "\x21\xF9", "\x2C", "P6\n"};
    fz_buf seeds[CD_ARRAY_LEN(files) + 6];
    size_t n = 0;
    char rel[256];
    for (size_t i = 0; i < CD_ARRAY_LEN(files); i++) {
        snprintf(rel, sizeof rel, "tests/fixtures/data/%s", files[i]);
        if (fz_seed_file(&seeds[n], fz_source(rel)) == 0) n++;
    }
    memset(&seeds[n], 0, 6 * sizeof seeds[0]);
    make_pnm(&seeds[n++], 0);
    make_pnm(&seeds[n++], 1);
    make_tga(&seeds[n++], 0);
    make_tga(&seeds[n++], 1);
    make_gif(&seeds[n++]);
    fz_spec spec = {"image", seeds, n, dict, CD_ARRAY_LEN(dict), NULL, target, NULL, 600};
    t_ok(n == CD_ARRAY_LEN(files) + 5, "image: %zu seeds (%zu fixtures, 5 made here)", n, CD_ARRAY_LEN(files));
    fz_run(&spec);
    for (size_t i = 0; i < n; i++) free(seeds[i].b);
    return t_done();
}
