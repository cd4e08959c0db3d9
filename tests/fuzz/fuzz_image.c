/* Fuzz data_image_decode (stb_image behind our checks) from the image
 * fixtures (baseline and progressive JPEG, PNG grey/16-bit/RGBA, BMP) and
 * small PPM, PGM, TGA (plain and RLE) and two GIF files made here. A decoded
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

/* LSB-first bit packing for GIF's LZW codes. */
typedef struct { fz_buf *out; uint32_t acc; int bits; } bitpack;
static void put_code(bitpack *b, unsigned code, int width) {
    b->acc |= (uint32_t)code << b->bits;
    b->bits += width;
    while (b->bits >= 8) {
        uint8_t byte = (uint8_t)b->acc;
        fz_insert(b->out, b->out->n, &byte, 1);
        b->acc >>= 8;
        b->bits -= 8;
    }
}

/* An 8x6 GIF89a with what stb's reader handles besides pixels: a comment and
 * an application extension, a graphic control extension with transparency,
 * an interlaced frame with a local 16-colour table. The LZW data are literal
 * codes with a clear code every 12, so the code width stays 5 bits. */
static void make_gif16(fz_buf *s) {
    static const uint8_t head[] = {'G', 'I', 'F', '8', '9', 'a', 8, 0, 6, 0, 0x83, 0, 0};   /* 16-colour global table */
    fz_set(s, head, sizeof head);
    for (int i = 0; i < 16; i++) {
        uint8_t rgb[3] = {(uint8_t)(i * 16), (uint8_t)(255 - i * 16), (uint8_t)(i * 5)};
        fz_insert(s, s->n, rgb, 3);
    }
    static const uint8_t ext[] = {0x21, 0xFE, 4, 'f', 'u', 'z', 'z', 0,                       /* comment */
                                  0x21, 0xFF, 11, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0',
                                  3, 1, 0, 0, 0,                                              /* loop forever */
                                  0x21, 0xF9, 4, 0x01, 0, 0, 3, 0,                            /* colour 3 transparent */
                                  0x2C, 0, 0, 0, 0, 8, 0, 6, 0, 0xC3};                        /* interlaced, local table */
    fz_insert(s, s->n, ext, sizeof ext);
    for (int i = 0; i < 16; i++) {
        uint8_t rgb[3] = {(uint8_t)(255 - i * 16), (uint8_t)(i * 16), 200};
        fz_insert(s, s->n, rgb, 3);
    }
    uint8_t min_code = 4;
    fz_insert(s, s->n, &min_code, 1);
    fz_buf lzw = {0};
    bitpack b = {&lzw, 0, 0};
    put_code(&b, 16, 5);                           /* clear */
    for (int i = 0; i < 48; i++) {
        if (i && i % 12 == 0) put_code(&b, 16, 5);
        put_code(&b, (unsigned)(i * 7 % 16), 5);
    }
    put_code(&b, 17, 5);                           /* end of information */
    if (b.bits) put_code(&b, 0, 8 - b.bits);
    for (size_t at = 0; at < lzw.n; at += 255) {   /* sub-blocks */
        uint8_t n = (uint8_t)CD_MIN(lzw.n - at, (size_t)255);
        fz_insert(s, s->n, &n, 1);
        fz_insert(s, s->n, lzw.b + at, n);
    }
    static const uint8_t tail[] = {0, 0x3B};
    fz_insert(s, s->n, tail, sizeof tail);
    free(lzw.b);
}

int main(void) {
    static const char *const files[] = {"fmt_baseline.jpg", "fmt_progressive.jpg", "fmt_grey.png",
                                        "fmt_grey16.png",   "fmt_rgba.png",        "fmt_rgb16.png",
                                        "fmt_rgb.bmp"};
    /* markers and chunk names (no NUL bytes: they are C strings) */
    static const char *const dict[] = {"\xFF\xC4", "\xFF\xDA", "\xFF\xDB", "\xFF\xC0", "\xFF\xC2", "\xFF\xD9",
                                       "\xFF\xDD", "\xFF\xE0", "\xFF\xFF", "IHDR", "IDAT", "PLTE", "tRNS",
                                       "IEND", "BM", "GIF89a", "\x21\xF9", "\x2C", "P6\n"};
    fz_buf seeds[CD_ARRAY_LEN(files) + 7];
    size_t n = 0;
    char rel[256];
    for (size_t i = 0; i < CD_ARRAY_LEN(files); i++) {
        snprintf(rel, sizeof rel, "tests/fixtures/data/%s", files[i]);
        if (fz_seed_file(&seeds[n], fz_source(rel)) == 0) n++;
    }
    memset(&seeds[n], 0, 7 * sizeof seeds[0]);
    make_pnm(&seeds[n++], 0);
    make_pnm(&seeds[n++], 1);
    make_tga(&seeds[n++], 0);
    make_tga(&seeds[n++], 1);
    make_gif(&seeds[n++]);
    make_gif16(&seeds[n++]);
    fz_spec spec = {"image", seeds, n, dict, CD_ARRAY_LEN(dict), NULL, target, NULL, 600};
    t_ok(n == CD_ARRAY_LEN(files) + 6, "image: %zu seeds (%zu fixtures, 6 made here)", n, CD_ARRAY_LEN(files));
    fz_run(&spec);
    for (size_t i = 0; i < n; i++) free(seeds[i].b);
    return t_done();
}
