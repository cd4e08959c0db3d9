/* Image decode (stb_image), resize (PIL's BILINEAR resampling, our own code)
 * and the one place the stb implementations are compiled (stb_image_write too,
 * for make-shapes). stb's own code is not held to our warning flags.
 *
 * Why not stb_image_resize: v0.97 (libstb-dev) asserts in
 * stbir__normalize_downsample_coefficients for some shrink ratios, and PIL's
 * algorithm is short enough to follow exactly, so images match torchvision's
 * F.resize on PIL images bit for bit. */
#include "cldetr/common.h"
#include "cldetr/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wold-style-declaration"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR           /* 8-bit formats only */
#define STBI_NO_LINEAR
#define STBI_NO_PSD           /* formats a dataset does not hold: less of stb to trust */
#define STBI_NO_PIC
/* stb copies zero bytes from or to a NULL buffer (the first IDAT chunk of a
 * PNG empty: memcpy(NULL, p, 0)), undefined behaviour that UBSan reports. */
static inline void *stb_memcpy(void *to, const void *from, size_t n) { return n ? memcpy(to, from, n) : to; }
#define memcpy(to, from, n) stb_memcpy(to, from, n)
#include <stb/stb_image.h>
#undef memcpy
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

/* stb_image decodes a JPEG cut short without complaint (the missing data reads
 * as zeros); PIL refuses it ("image file is truncated"), and so do we: a JPEG
 * must have its end-of-image marker FF D9 near the end of the file. */
static int jpeg_truncated(const uint8_t *p, size_t len) {
    if (len < 4 || p[0] != 0xFF || p[1] != 0xD8) return 0;
    size_t from = len > 4096 ? len - 4096 : 2;
    for (size_t i = len - 1; i > from; i--)
        if (p[i - 1] == 0xFF && p[i] == 0xD9) return 0;
    return 1;
}

/* stb_image v2.27 (libstb-dev) builds each Huffman table from its 16 code
 * counts before checking them: counts that sum to more than 256 make
 * stbi__build_huffman write past its 257-entry size[] (and code[], values[])
 * inside the decoder's state. So before stb sees a JPEG, every table stb could
 * read is checked here: the counts sum to at most 256 and fit the code space
 * (at length j, at most 2^j codes so far, stb's own rule).
 *
 * Which bytes stb reads as a DHT segment: up to the frame header (SOF) its
 * marker walk is simple and followed here exactly (bytes past the end read as
 * 0, as stb's do), so the payloads of APPn/COM/DQT segments (EXIF, ICC) are
 * skipped as stb skips them. After the frame header, where stb's position
 * depends on its entropy decoding, every FF C4 (stb's marker reader finds a
 * marker only right after an FF byte) is checked as a DHT: entropy-coded data
 * never holds FF C4 (an FF there is followed by 00 or a restart marker), so a
 * valid file is never refused for it. */
typedef struct { const uint8_t *p; size_t n, i; } jpeg_rd;
enum { JPEG_NO_MARKER = 0xFF };       /* stb's STBI__MARKER_none */

static int jpeg_get8(jpeg_rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static int jpeg_get16(jpeg_rd *r) { int hi = jpeg_get8(r); return hi << 8 | jpeg_get8(r); }
static void jpeg_skip(jpeg_rd *r, long k) { r->i = k < 0 || (size_t)k > r->n - r->i ? r->n : r->i + (size_t)k; }
static int jpeg_marker(jpeg_rd *r) {      /* stbi__get_marker */
    int x = jpeg_get8(r);
    if (x != 0xFF) return JPEG_NO_MARKER;
    while (x == 0xFF) x = jpeg_get8(r);
    return x;
}

/* The DHT segment whose length field r is at, read as stbi__process_marker
 * does. 1: a table stb would build out of bounds (or reject as over its code
 * space); 0: every table fine; -1: stb stops at this segment (a bad table
 * class or number before any bad table, or a length its tables do not fill). */
static int jpeg_dht_bad(jpeg_rd *r) {
    long left = jpeg_get16(r) - 2;
    while (left > 0) {
        int q = jpeg_get8(r), count[16], n = 0;
        if (q >> 4 > 1 || (q & 15) > 3) return -1;  /* stb: "bad DHT header" */
        for (int i = 0; i < 16; i++) { count[i] = jpeg_get8(r); n += count[i]; }
        if (n > 256) return 1;
        unsigned code = 0;
        for (int j = 1; j <= 16; j++) {
            code += (unsigned)count[j - 1];
            if (count[j - 1] && code - 1 >= 1u << j) return 1;
            code <<= 1;
        }
        jpeg_skip(r, n);
        left -= 17 + n;
    }
    return left == 0 ? 0 : -1;
}

/* 1 when a JPEG (as stb recognises one: FF, fill FFs, D8) holds a Huffman
 * table stb cannot build safely. */
static int jpeg_bad_huffman(const uint8_t *p, size_t len) {
    jpeg_rd r = {p, len, 0};
    if (jpeg_marker(&r) != 0xD8) return 0;          /* not a JPEG to stb */
    /* the header, as stbi__decode_jpeg_header walks it */
    int m = jpeg_marker(&r);
    for (;;) {
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) {  /* SOF: skip the frame header */
            size_t at = r.i;
            long lf = jpeg_get16(&r);
            if (lf == 11 || lf == 17 || lf == 20) jpeg_skip(&r, lf - 2);   /* 1, 3 or 4 components */
            else r.i = at;                           /* stb refuses it; scan it all */
            break;
        }
        if (m == 0xC4) {
            int bad = jpeg_dht_bad(&r);
            if (bad > 0) return 1;
            if (bad < 0) break;
        } else if (m == 0xDB) {                    /* DQT */
            long left = jpeg_get16(&r) - 2;
            int stop = 0;
            while (left > 0 && !stop) {
                int q = jpeg_get8(&r);
                if ((q >> 4) > 1 || (q & 15) > 3) stop = 1;
                else { jpeg_skip(&r, q >> 4 ? 128 : 64); left -= q >> 4 ? 129 : 65; }
            }
            if (stop || left != 0) break;
        } else if (m == 0xDD) {                    /* DRI */
            if (jpeg_get16(&r) != 4) break;
            jpeg_skip(&r, 2);
        } else if ((m >= 0xE0 && m <= 0xEF) || m == 0xFE) {   /* APPn, COM */
            long l = jpeg_get16(&r);
            if (l < 2) break;
            jpeg_skip(&r, l - 2);
        } else {
            break;                                  /* stb stops: unknown marker */
        }
        m = jpeg_marker(&r);
        while (m == JPEG_NO_MARKER) {               /* stb skips padding between segments */
            if (r.i >= r.n) return 0;
            m = jpeg_marker(&r);
        }
    }
    /* the rest: every FF C4 stb could take for a DHT marker */
    for (size_t i = r.i ? r.i : 1; i < len; i++)
        if (p[i] == 0xC4 && p[i - 1] == 0xFF) {
            jpeg_rd t = {p, len, i + 1};
            if (jpeg_dht_bad(&t) > 0) return 1;
        }
    return 0;
}

int data_image_decode(data_image *im, const void *bytes, size_t len, const char *name) {
    memset(im, 0, sizeof *im);
    if (len == 0) return cd_seterr("%s: empty file, not an image", name);
    if (len > (size_t)INT32_MAX) return cd_seterr("%s: file too large (%zu bytes)", name, len);
    if (jpeg_truncated(bytes, len))
        return cd_seterr("%s: truncated JPEG (no end-of-image marker); re-encode or replace the file", name);
    if (jpeg_bad_huffman(bytes, len))
        return cd_seterr("%s: corrupt JPEG (Huffman table); re-encode or replace the file", name);
    /* stb v2.27 reads 16-bit PNM samples in the wrong byte order (it keeps the
     * low byte), and a 16-bit PGM asked for as RGB goes through its 8-bit
     * channel converter and is then read as 16-bit, past the end of its buffer.
     * 16-bit PNM (maxval above 255) is refused. */
    const uint8_t *b = bytes;
    if (len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') && stbi_is_16_bit_from_memory(bytes, (int)len))
        return cd_seterr("%s: 16-bit PNM (maxval above 255) is not supported; convert it to 8 bits or PNG", name);
    /* A damaged header can claim a huge image that stb then makes from a few
     * bytes (its readers give zeros past the end): 58 bytes read as a TGA of
     * 14596x12291. No real image compresses past a few thousand pixels a byte
     * (deflate's ceiling of 1032:1 on a 1-bit PNG is 8256), so more than
     * 16384 pixels a byte, past the first million pixels, is refused. */
    int w, h, comp;
    if (stbi_info_from_memory(bytes, (int)len, &w, &h, &comp) && w > 0 && h > 0 &&
        (double)w * h > CD_MAX(1048576.0, 16384.0 * (double)len))
        return cd_seterr("%s: corrupt image: its header claims %dx%d pixels, from only %zu bytes", name, w, h, len);
    uint8_t *px = stbi_load_from_memory(bytes, (int)len, &w, &h, &comp, 3);
    if (!px)
        return cd_seterr("%s: cannot decode image (%s); the file is corrupt, truncated or not "
                         "a JPEG/PNG/BMP/GIF/TGA/PNM", name, stbi_failure_reason());
    if (w <= 0 || h <= 0) {   /* stb's PNM reader takes a missing width or height for 0 */
        stbi_image_free(px);
        return cd_seterr("%s: cannot decode image (it has no pixels: %dx%d); the file is corrupt", name, w, h);
    }
    im->w = w; im->h = h;
    /* keep our allocator: callers free with free() */
    im->rgb = cd_xmalloc((size_t)w * h * 3);
    memcpy(im->rgb, px, (size_t)w * h * 3);
    stbi_image_free(px);
    return 0;
}

int data_image_load(data_image *im, const char *path) {
    size_t len;
    memset(im, 0, sizeof *im);
    char *bytes = cd_read_file(path, &len);
    if (!bytes) return -1;
    int rc = data_image_decode(im, bytes, len, path);
    free(bytes);
    return rc;
}

void data_image_free(data_image *im) {
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

/* PIL Resample.c, 8-bit path: a triangle filter of support 1 widened by the
 * scale when shrinking (antialias), weights normalised per output pixel, then
 * fixed point with 22 fraction bits and round-half-up. */
#define RS_BITS 22

typedef struct { int *xmin, *xn, *k, ksize; } coeffs;

static void make_coeffs(coeffs *c, int in, int out) {
    double scale = (double)in / out, fs = scale < 1 ? 1 : scale, support = fs;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->xmin = cd_xmalloc((size_t)out * sizeof *c->xmin);
    c->xn = cd_xmalloc((size_t)out * sizeof *c->xn);
    c->k = cd_xcalloc((size_t)out * c->ksize, sizeof *c->k);
    double *w = cd_xmalloc((size_t)c->ksize * sizeof *w);
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale, sum = 0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        for (int x = 0; x < n; x++) {
            double t = fabs((x + lo - center + 0.5) / fs);
            w[x] = t < 1 ? 1 - t : 0;
            sum += w[x];
        }
        for (int x = 0; x < n; x++) {
            double v = sum != 0 ? w[x] / sum : w[x];
            c->k[(size_t)o * c->ksize + x] = (int)(v < 0 ? -0.5 + v * (1 << RS_BITS) : 0.5 + v * (1 << RS_BITS));
        }
        c->xmin[o] = lo;
        c->xn[o] = n;
    }
    free(w);
}

static void free_coeffs(coeffs *c) { free(c->xmin); free(c->xn); free(c->k); }

static uint8_t clip8(int v) {
    if (v >= (1 << RS_BITS) << 8) return 255;
    return v <= 0 ? 0 : (uint8_t)(v >> RS_BITS);
}

/* One pass along x (step 3 bytes) or y (step a row): in has `lines` lines of
 * `in_n` pixels; out gets `out_n` pixels per line. */
static void resample_h(uint8_t *out, const uint8_t *in, int lines, int in_w, int out_w, const coeffs *c) {
    for (int y = 0; y < lines; y++) {
        const uint8_t *row = in + (size_t)y * in_w * 3;
        uint8_t *dst = out + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int *k = c->k + (size_t)x * c->ksize;
            const uint8_t *src = row + (size_t)c->xmin[x] * 3;
            int s0 = 1 << (RS_BITS - 1), s1 = s0, s2 = s0;
            for (int i = 0; i < c->xn[x]; i++) {
                s0 += src[3 * i] * k[i]; s1 += src[3 * i + 1] * k[i]; s2 += src[3 * i + 2] * k[i];
            }
            dst[3 * x] = clip8(s0); dst[3 * x + 1] = clip8(s1); dst[3 * x + 2] = clip8(s2);
        }
    }
}

static void resample_v(uint8_t *out, const uint8_t *in, int w, int out_h, const coeffs *c) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int *k = c->k + (size_t)y * c->ksize;
        const uint8_t *src = in + (size_t)c->xmin[y] * stride;
        uint8_t *dst = out + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int s = 1 << (RS_BITS - 1);
            for (int i = 0; i < c->xn[y]; i++) s += src[(size_t)i * stride + x] * k[i];
            dst[x] = clip8(s);
        }
    }
}

void data_image_resize(data_image *im, int w, int h) {
    if (w == im->w && h == im->h) return;
    if (w <= 0 || h <= 0) cd_fatal("image resize %dx%d -> %dx%d: sizes must be positive", im->w, im->h, w, h);
    uint8_t *cur = im->rgb;
    int cw = im->w;
    if (w != im->w) {          /* horizontal first, as PIL */
        coeffs c;
        make_coeffs(&c, im->w, w);
        uint8_t *t = cd_xmalloc((size_t)w * im->h * 3);
        resample_h(t, cur, im->h, im->w, w, &c);
        free_coeffs(&c);
        free(cur);
        cur = t;
        cw = w;
    }
    if (h != im->h) {
        coeffs c;
        make_coeffs(&c, im->h, h);
        uint8_t *t = cd_xmalloc((size_t)cw * h * 3);
        resample_v(t, cur, cw, h, &c);
        free_coeffs(&c);
        free(cur);
        cur = t;
    }
    im->rgb = cur;
    im->w = w; im->h = h;
}

/* For make-shapes: PNG writer. */
int data_write_png(const char *path, const data_image *im) {
    if (!stbi_write_png(path, im->w, im->h, 3, im->rgb, im->w * 3))
        return cd_seterr("%s: cannot write PNG", path);
    return 0;
}
