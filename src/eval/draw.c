/* Drawing on RGB images: see include/cldetr/draw.h.
 *
 * Lines are anti-aliased by coverage: a pixel's alpha is how much of a
 * one-pixel-wide box filter around its centre falls inside the stroke,
 * approximated by clamp(width/2 + 0.5 - distance, 0, 1) (exact for a wide
 * straight edge, close enough at caps). Simpler than Wu's algorithm and it
 * gives any width. */
#include "cldetr/draw.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_easy_font.h>
#define STBTT_STATIC   /* our own copy: libstb may export the same names */
#define STB_TRUETYPE_IMPLEMENTATION
#include <stb/stb_truetype.h>
#pragma GCC diagnostic pop

/* ---------------------------------------------------------------- colours */

static const draw_rgb tab10[10] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};

static draw_rgb hsv(double h, double s, double v) {
    h = fmod(h, 360.0) / 60.0;
    int i = (int)h;
    double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f)), r, g, b;
    switch (i) {
    case 0: r = v; g = t; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = t; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = t; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
    }
    return (draw_rgb){(uint8_t)lround(r * 255), (uint8_t)lround(g * 255), (uint8_t)lround(b * 255)};
}

draw_rgb draw_palette(int k) {
    unsigned u = k < 0 ? (unsigned)(-(long)k) : (unsigned)k;
    if (u < 10) return tab10[u];
    u -= 10;
    /* golden-angle hues; saturation and value cycle so that colours whose hues
     * come close again differ in brightness */
    static const double sat[3] = {0.85, 0.6, 0.95}, val[4] = {0.9, 0.7, 1.0, 0.55};
    return hsv(20.0 + 137.508 * u, sat[u % 3], val[(u / 3) % 4]);
}

draw_rgb draw_contrast(draw_rgb bg) {
    double luma = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b;
    return luma > 150 ? DRAW_BLACK : DRAW_WHITE;
}

/* ----------------------------------------------------------------- pixels */

void draw_image_new(data_image *im, int w, int h, draw_rgb c) {
    im->w = w;
    im->h = h;
    im->rgb = cd_xmalloc((size_t)w * (size_t)h * 3);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        im->rgb[3 * i] = c.r;
        im->rgb[3 * i + 1] = c.g;
        im->rgb[3 * i + 2] = c.b;
    }
}

void draw_pixel(data_image *im, int x, int y, draw_rgb c) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    uint8_t *p = im->rgb + 3 * ((size_t)y * (size_t)im->w + (size_t)x);
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void draw_blend(data_image *im, int x, int y, draw_rgb c, float alpha) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h || !(alpha > 0)) return;
    if (alpha >= 1) { draw_pixel(im, x, y, c); return; }
    uint8_t *p = im->rgb + 3 * ((size_t)y * (size_t)im->w + (size_t)x);
    p[0] = (uint8_t)lroundf(c.r * alpha + p[0] * (1 - alpha));
    p[1] = (uint8_t)lroundf(c.g * alpha + p[1] * (1 - alpha));
    p[2] = (uint8_t)lroundf(c.b * alpha + p[2] * (1 - alpha));
}

void draw_fill_rect(data_image *im, int x0, int y0, int x1, int y1, draw_rgb c) {
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    x0 = CD_MAX(x0, 0);
    y0 = CD_MAX(y0, 0);
    x1 = CD_MIN(x1, im->w - 1);
    y1 = CD_MIN(y1, im->h - 1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) draw_pixel(im, x, y, c);
}

void draw_box(data_image *im, int x0, int y0, int x1, int y1, draw_rgb c, int thickness) {
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    int t = CD_MAX(thickness, 1) - 1;
    /* a box thinner than twice the thickness is filled */
    draw_fill_rect(im, x0, y0, x1, CD_MIN(y0 + t, y1), c);          /* top */
    draw_fill_rect(im, x0, CD_MAX(y1 - t, y0), x1, y1, c);          /* bottom */
    draw_fill_rect(im, x0, y0, CD_MIN(x0 + t, x1), y1, c);          /* left */
    draw_fill_rect(im, CD_MAX(x1 - t, x0), y0, x1, y1, c);          /* right */
}

/* ------------------------------------------------------------------ lines */

/* Distance from (px,py) to the segment (ax,ay)-(bx,by). */
static double seg_dist(double px, double py, double ax, double ay, double bx, double by) {
    double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy, t = 0;
    if (l2 > 0) {
        t = ((px - ax) * dx + (py - ay) * dy) / l2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
    }
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return sqrt(ex * ex + ey * ey);
}

/* Coverage mask over a window of the image: max-combined strokes, blended once. */
typedef struct {
    int x0, y0, w, h;   /* window in image pixels */
    float *a;           /* [h, w] */
} cover;

static void cover_segment(cover *m, double ax, double ay, double bx, double by, double width) {
    double r = width / 2 + 0.5;
    int x0 = (int)floor(fmin(ax, bx) - r), x1 = (int)ceil(fmax(ax, bx) + r);
    int y0 = (int)floor(fmin(ay, by) - r), y1 = (int)ceil(fmax(ay, by) + r);
    x0 = CD_MAX(x0, m->x0);
    y0 = CD_MAX(y0, m->y0);
    x1 = CD_MIN(x1, m->x0 + m->w - 1);
    y1 = CD_MIN(y1, m->y0 + m->h - 1);
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            double a = r - seg_dist(x, y, ax, ay, bx, by);
            if (a <= 0) continue;
            float *p = &m->a[(size_t)(y - m->y0) * (size_t)m->w + (size_t)(x - m->x0)];
            if ((float)a > *p) *p = a > 1 ? 1.0f : (float)a;
        }
}

static void cover_blend(const cover *m, data_image *im, draw_rgb c) {
    for (int y = 0; y < m->h; y++)
        for (int x = 0; x < m->w; x++) {
            float a = m->a[(size_t)y * (size_t)m->w + (size_t)x];
            if (a > 0) draw_blend(im, m->x0 + x, m->y0 + y, c, a);
        }
}

/* A window of the image around [xmin,xmax] x [ymin,ymax] grown by pad, or 0 if empty. */
static int cover_init(cover *m, const data_image *im, double xmin, double ymin, double xmax, double ymax,
                      double pad) {
    double fx0 = fmax(floor(xmin - pad), 0), fy0 = fmax(floor(ymin - pad), 0);
    double fx1 = fmin(ceil(xmax + pad), im->w - 1), fy1 = fmin(ceil(ymax + pad), im->h - 1);
    if (!(fx0 <= fx1 && fy0 <= fy1)) return 0;
    m->x0 = (int)fx0;
    m->y0 = (int)fy0;
    m->w = (int)fx1 - m->x0 + 1;
    m->h = (int)fy1 - m->y0 + 1;
    m->a = cd_xcalloc((size_t)m->w * (size_t)m->h, sizeof *m->a);
    return 1;
}

void draw_line(data_image *im, double x0, double y0, double x1, double y1, draw_rgb c, double width) {
    double x[2] = {x0, x1}, y[2] = {y0, y1};
    draw_polyline(im, x, y, 2, c, width);
}

void draw_polyline(data_image *im, const double *x, const double *y, size_t n, draw_rgb c, double width) {
    if (!(width >= 1)) width = 1;
    double xmin = INFINITY, ymin = INFINITY, xmax = -INFINITY, ymax = -INFINITY;
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        xmin = fmin(xmin, x[i]);
        xmax = fmax(xmax, x[i]);
        ymin = fmin(ymin, y[i]);
        ymax = fmax(ymax, y[i]);
        n_ok++;
    }
    cover m;
    if (!n_ok || !cover_init(&m, im, xmin, ymin, xmax, ymax, width / 2 + 1)) return;
    size_t prev = n;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        if (prev == n) cover_segment(&m, x[i], y[i], x[i], y[i], width);   /* a lone point: a dot */
        else cover_segment(&m, x[prev], y[prev], x[i], y[i], width);
        prev = i;
    }
    cover_blend(&m, im, c);
    free(m.a);
}

void draw_disc(data_image *im, double cx, double cy, double radius, draw_rgb c) {
    cover m;
    if (!isfinite(cx) || !isfinite(cy) || !cover_init(&m, im, cx, cy, cx, cy, radius + 1)) return;
    cover_segment(&m, cx, cy, cx, cy, 2 * radius);
    cover_blend(&m, im, c);
    free(m.a);
}

/* ------------------------------------------------------------------- font */

/* Where a TrueType font is looked for when $CLDETR_FONT is not set: the sans
 * fonts of common Debian packages first, then the same fonts where other
 * distributions put them. */
static const char *const font_paths[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",                  /* fonts-dejavu-core */
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf", /* fonts-liberation2 */
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  /* fonts-liberation */
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",              /* fonts-noto-core */
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",                  /* fonts-freefont-ttf */
    "/usr/share/fonts/TTF/DejaVuSans.ttf",                              /* Arch */
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",                /* Fedora */
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",                           /* older Fedora, Alpine */
};

static pthread_once_t font_once = PTHREAD_ONCE_INIT;
static struct {
    int ok;                 /* a TrueType font is loaded; else stb_easy_font */
    unsigned char *data;    /* the file, kept for the process's life (stbtt reads it in place) */
    stbtt_fontinfo info;
    int ascent, descent;    /* font units; ascent - descent is the line height */
    int question;           /* glyph drawn for a character the font lacks: '?' */
    char path[4096];
} font;

/* The whole file at path, or NULL with a reason in why (no cd_errbuf: the
 * caller's error message must survive a first drawing call). */
static unsigned char *font_read(const char *path, size_t *len, char *why, size_t why_size) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(why, why_size, "%s", strerror(errno)); return NULL; }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            if (cap > (size_t)256 << 20) { snprintf(why, why_size, "larger than 256 MiB"); break; }
            buf = cd_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) { snprintf(why, why_size, "read error"); break; }
            fclose(f);
            *len = n;
            return buf;
        }
    }
    fclose(f);
    free(buf);
    return NULL;
}

/* 1 if path is a TrueType/OpenType font stb_truetype can draw Latin text with. */
static int font_try(const char *path, char *why, size_t why_size) {
    size_t len = 0;
    unsigned char *data = font_read(path, &len, why, why_size);
    if (!data) return 0;
    int offset = len >= 12 ? stbtt_GetFontOffsetForIndex(data, 0) : -1;
    if (offset < 0 || !stbtt_InitFont(&font.info, data, offset) || !stbtt_FindGlyphIndex(&font.info, 'A')) {
        snprintf(why, why_size, "not a TrueType font with Latin letters");
        free(data);
        return 0;
    }
    font.data = data;
    stbtt_GetFontVMetrics(&font.info, &font.ascent, &font.descent, NULL);
    if (font.ascent - font.descent <= 0) {
        snprintf(why, why_size, "its ascent and descent give no line height");
        free(data);
        font.data = NULL;
        return 0;
    }
    font.question = stbtt_FindGlyphIndex(&font.info, '?');
    snprintf(font.path, sizeof font.path, "%s", path);
    font.ok = 1;
    return 1;
}

static void font_init(void) {
    char why[256];
    const char *env = getenv("CLDETR_FONT");
    if (env && env[0]) {
        if (font_try(env, why, sizeof why)) return;
        fprintf(stderr,
                "cldetr: note: cannot use the font CLDETR_FONT=%s (%s); text in pictures is drawn in a small bitmap "
                "font instead. Point CLDETR_FONT at a .ttf file, or unset it to use %s (Debian: fonts-dejavu-core)\n",
                env, why, font_paths[0]);
        return;
    }
    for (size_t i = 0; i < CD_ARRAY_LEN(font_paths); i++)
        if (font_try(font_paths[i], why, sizeof why)) return;
    fprintf(stderr,
            "cldetr: note: no TrueType font found (looked for %s and %zu other paths); text in pictures is drawn in "
            "a small bitmap font. For anti-aliased text install fonts-dejavu-core (apt-get install "
            "fonts-dejavu-core) or set CLDETR_FONT to a .ttf file\n",
            font_paths[0], CD_ARRAY_LEN(font_paths) - 1);
}

static int font_ready(void) {
    pthread_once(&font_once, font_init);
    return font.ok;
}

const char *draw_font_path(void) { return font_ready() ? font.path : NULL; }

/* ------------------------------------------------------------------- text */

/* The next character of UTF-8 text: its code point, '?' for a byte that does
 * not start a valid sequence and for control characters. */
static uint32_t utf8_next(const unsigned char **p) {
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    *p += 1;
    if (n < 0) return '?';
    uint32_t cp = n ? c & (0x3Fu >> n) : c;
    for (int i = 1; i <= n; i++) {   /* a NUL is not a continuation byte: this stops at the end */
        if ((s[i] & 0xC0) != 0x80) return '?';
        cp = cp << 6 | (s[i] & 0x3F);
    }
    *p += n;
    static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return '?';
    if (cp < 32 || cp == 127 || (cp >= 0x80 && cp < 0xA0)) return '?';
    return cp;
}

/* Scale of stb_easy_font's 9-pixel-high font for a text size. */
static int easy_scale(int size) { return CD_MAX(1, (int)lround(size / 9.0)); }

/* stb_easy_font wants a mutable string of printable ASCII (it indexes a table
 * by c - 32 and would read outside it for other bytes). */
static char *printable_copy(const char *text) {
    size_t n = 0;
    char *s = cd_xmalloc(strlen(text) + 1);
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        uint32_t cp = utf8_next(&p);
        s[n++] = cp < 127 ? (char)cp : '?';
    }
    s[n] = '\0';
    return s;
}

int draw_text_height(int size) {
    if (size < 1) size = 1;
    return font_ready() ? size : 9 * easy_scale(size);
}

/* Lays out one line of text at this size; with mask (w x h, zeroed, h =
 * draw_text_height(size)) also renders its coverage (0..255) into it. Returns
 * the width: from the left edge of the ink (or the pen start, if further left)
 * to the right edge of the ink. */
static int text_run(const char *text, int size, uint8_t *mask, int mw, int mh) {
    if (size < 1) size = 1;
    if (!text[0]) return 0;
    if (!font_ready()) {
        int s = easy_scale(size);
        char *t = printable_copy(text);
        int w = (stb_easy_font_width(t) - 1) * s;   /* the last glyph's trailing gap is not part of the text */
        if (mask) {
            size_t cap = 12 * 64 * strlen(t) + 64;   /* 64 bytes a quad, at most 11 quads a glyph ('X') */
            float *vb = cd_xmalloc(cap);
            int nq = stb_easy_font_print(0, 0, t, NULL, vb, (int)cap);
            for (int q = 0; q < nq; q++) {   /* vertices 0 and 2: opposite corners of a rectangle */
                const float *v0 = vb + 16 * q, *v2 = vb + 16 * q + 8;
                int x0 = CD_MAX((int)v0[0] * s, 0), y0 = CD_MAX((int)v0[1] * s, 0);
                int x1 = CD_MIN((int)v2[0] * s, mw), y1 = CD_MIN((int)v2[1] * s, mh);
                for (int y = y0; y < y1 && x1 > x0; y++)
                    memset(mask + (size_t)y * (size_t)mw + (size_t)x0, 255, (size_t)(x1 - x0));
            }
            free(vb);
        }
        free(t);
        return CD_MAX(w, 0);
    }
    float scale = stbtt_ScaleForPixelHeight(&font.info, (float)size);
    int base = (int)lroundf((float)font.ascent * scale);   /* baseline, pixels from the top */
    float pen = 0;
    int ink_r = 0, any_ink = 0, prev = -1;
    uint8_t *g_buf = NULL;
    size_t g_cap = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        uint32_t cp = utf8_next(&p);
        int g = stbtt_FindGlyphIndex(&font.info, (int)cp);
        if (!g) g = font.question;
        int adv, lsb;
        stbtt_GetGlyphHMetrics(&font.info, g, &adv, &lsb);
        if (prev < 0 && lsb < 0) pen = -(float)lsb * scale;   /* ink left of the first pen position */
        if (prev >= 0) pen += scale * (float)stbtt_GetGlyphKernAdvance(&font.info, prev, g);
        prev = g;
        float px = floorf(pen), shift = pen - px;
        int ix0, iy0, ix1, iy1;
        stbtt_GetGlyphBitmapBoxSubpixel(&font.info, g, scale, scale, shift, 0, &ix0, &iy0, &ix1, &iy1);
        int gw = ix1 - ix0, gh = iy1 - iy0;
        if (gw > 0 && gh > 0) {
            ink_r = CD_MAX(ink_r, (int)px + ix1);
            any_ink = 1;
            if (mask) {
                size_t need = (size_t)gw * (size_t)gh;
                if (need > g_cap) g_buf = cd_xrealloc(g_buf, g_cap = need);
                stbtt_MakeGlyphBitmapSubpixel(&font.info, g_buf, gw, gh, gw, scale, scale, shift, 0, g);
                for (int y = 0; y < gh; y++) {
                    int my = base + iy0 + y;
                    if (my < 0 || my >= mh) continue;
                    for (int x = 0; x < gw; x++) {
                        int mx = (int)px + ix0 + x;
                        if (mx < 0 || mx >= mw) continue;
                        uint8_t *m = mask + (size_t)my * (size_t)mw + (size_t)mx;
                        int v = *m + g_buf[(size_t)y * (size_t)gw + (size_t)x];   /* touching glyphs add */
                        *m = (uint8_t)(v > 255 ? 255 : v);
                    }
                }
            }
        }
        pen += (float)adv * scale;
    }
    free(g_buf);
    return any_ink ? ink_r : (int)ceilf(pen);
}

int draw_text_width(const char *text, int size) { return text_run(text, size, NULL, 0, 0); }

/* Text as a coverage mask blended over the image; up = 1 turns it 90 degrees
 * counter-clockwise: mask pixel (mx, my) lands on (x + my, y + w - 1 - mx). */
static void text_draw(data_image *im, int x, int y, const char *text, draw_rgb c, int size, int up) {
    int w = draw_text_width(text, size), h = draw_text_height(size);
    if (w <= 0 || h <= 0) return;
    uint8_t *mask = cd_xcalloc((size_t)w * (size_t)h, 1);
    text_run(text, size, mask, w, h);
    for (int my = 0; my < h; my++)
        for (int mx = 0; mx < w; mx++) {
            uint8_t a = mask[(size_t)my * (size_t)w + (size_t)mx];
            if (!a) continue;
            if (up) draw_blend(im, x + my, y + w - 1 - mx, c, a / 255.0f);
            else draw_blend(im, x + mx, y + my, c, a / 255.0f);
        }
    free(mask);
}

void draw_text(data_image *im, int x, int y, const char *text, draw_rgb c, int size) {
    text_draw(im, x, y, text, c, size, 0);
}

void draw_text_up(data_image *im, int x, int y, const char *text, draw_rgb c, int size) {
    text_draw(im, x, y, text, c, size, 1);
}

/* ----------------------------------------------------------------- labels */

int draw_label_text_size(const data_image *im) {
    return CD_MAX(12, (int)lround(0.02 * CD_MIN(im->w, im->h)));
}

/* Padding around a label's text: a sixth of the text size, at least 2 px. */
static int label_pad(int size) { return CD_MAX(2, size / 6); }

void draw_label_size(const data_image *im, const char *text, int *w, int *h) {
    int s = draw_label_text_size(im), pad = label_pad(s);
    *w = draw_text_width(text, s) + 2 * pad;
    /* the text box holds the descenders already: less padding under it */
    *h = draw_text_height(s) + pad + pad / 2;
}

draw_rect draw_label(data_image *im, int x, int y, const char *text, draw_rgb fg, draw_rgb bg) {
    int w, h, s = draw_label_text_size(im), pad = label_pad(s);
    draw_label_size(im, text, &w, &h);
    if (x + w > im->w) x = im->w - w;
    if (y + h > im->h) y = im->h - h;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    draw_rect r = {x, y, CD_MIN(x + w, im->w) - 1, CD_MIN(y + h, im->h) - 1};
    draw_fill_rect(im, r.x0, r.y0, r.x1, r.y1, bg);
    /* text cut at the right edge stays inside: draw_blend clips */
    draw_text(im, x + pad, y + pad, text, fg, s);
    return r;
}

/* A w x h rectangle asked at (x, y), moved to lie inside the image (cut at
 * its right and bottom edges if larger). */
static draw_rect rect_inside(int img_w, int img_h, int x, int y, int w, int h) {
    if (x + w > img_w) x = img_w - w;
    if (y + h > img_h) y = img_h - h;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    return (draw_rect){x, y, CD_MIN(x + w, img_w) - 1, CD_MIN(y + h, img_h) - 1};
}

/* Pixels two rectangles share. */
static long rect_overlap(draw_rect a, draw_rect b) {
    long w = (long)CD_MIN(a.x1, b.x1) - CD_MAX(a.x0, b.x0) + 1, h = (long)CD_MIN(a.y1, b.y1) - CD_MAX(a.y0, b.y0) + 1;
    return w > 0 && h > 0 ? w * h : 0;
}

void draw_place_labels(int img_w, int img_h, const draw_rect *boxes, const int *w, const int *h, size_t n,
                       draw_rect *out) {
    for (size_t i = 0; i < n; i++) {
        draw_rect b = boxes[i];
        if (b.x0 > b.x1) { int t = b.x0; b.x0 = b.x1; b.x1 = t; }
        if (b.y0 > b.y1) { int t = b.y0; b.y0 = b.y1; b.y1 = t; }
        int lw = w[i], lh = h[i], right = b.x1 - lw + 1;
        /* in order of preference: above the box, inside under its top edge,
         * the same at its right end, under the box, inside over its bottom
         * edge; then further above and below, a label's height at a time */
        int cand[8][2] = {{b.x0, b.y0 - lh}, {b.x0, b.y0},          {right, b.y0 - lh}, {right, b.y0},
                          {b.x0, b.y1 + 1},  {b.x0, b.y1 - lh + 1}, {right, b.y1 + 1},  {right, b.y1 - lh + 1}};
        size_t n_cand = 8 + 2 * i;   /* i labels placed: some of these stacked spots is free of them */
        draw_rect best = {0, 0, -1, -1};
        long best_overlap = -1;
        /* first a spot free of other labels that fits where asked (moved
         * sideways at most: "above" needs room above), then the spot that
         * overlaps least, moved into the image */
        for (int pass = 0; pass < 2 && best_overlap != 0; pass++)
            for (size_t c = 0; c < n_cand && best_overlap != 0; c++) {
                int x, y;
                if (c < 8) { x = cand[c][0]; y = cand[c][1]; }
                else {
                    int k = (int)(c - 8) / 2 + 1;
                    x = b.x0;
                    y = c % 2 ? b.y1 + 1 + k * lh : b.y0 - lh - k * lh;
                }
                draw_rect r = rect_inside(img_w, img_h, x, y, lw, lh);
                if (pass == 0 && r.y0 != y) continue;
                long overlap = 0;
                for (size_t j = 0; j < i; j++) overlap += rect_overlap(r, out[j]);
                if (pass == 0 && overlap) continue;
                if (best_overlap < 0 || overlap < best_overlap) { best = r; best_overlap = overlap; }
            }
        out[i] = best;
    }
}

/* ------------------------------------------------------------- detections */

void draw_detections(data_image *im, const float *xyxy, const int *labels, const float *scores, size_t n,
                     const char *const *class_names, float threshold) {
    size_t *order = cd_xmalloc((n ? n : 1) * sizeof *order), m = 0;
    for (size_t i = 0; i < n; i++) {
        const float *b = xyxy + 4 * i;
        if ((!scores || scores[i] >= threshold) && isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) &&
            isfinite(b[3]))
            order[m++] = i;
    }
    /* insertion sort by increasing score: the best are drawn last, on top */
    for (size_t i = 1; scores && i < m; i++)
        for (size_t j = i; j > 0 && scores[order[j - 1]] > scores[order[j]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int side = CD_MAX(im->w, im->h), thick = side < 300 ? 1 : side < 1000 ? 2 : 3;
    /* boxes and labels best first (placement order: the best keep their spots) */
    draw_rect *box = cd_xmalloc((m ? m : 1) * sizeof *box), *lab = cd_xmalloc((m ? m : 1) * sizeof *lab);
    int *lw = cd_xmalloc((m ? m : 1) * sizeof *lw), *lh = cd_xmalloc((m ? m : 1) * sizeof *lh);
    char (*text)[160] = cd_xmalloc((m ? m : 1) * sizeof *text);
    for (size_t k = 0; k < m; k++) {
        size_t i = order[m - 1 - k];
        const float *b = xyxy + 4 * i;
        /* clamp before converting: a wild box must not overflow int */
        int x0 = (int)lroundf(fminf(fmaxf(b[0], -1e6f), 1e6f)), y0 = (int)lroundf(fminf(fmaxf(b[1], -1e6f), 1e6f));
        int x1 = (int)lroundf(fminf(fmaxf(b[2], -1e6f), 1e6f)), y1 = (int)lroundf(fminf(fmaxf(b[3], -1e6f), 1e6f));
        box[k] = (draw_rect){CD_MIN(x0, x1), CD_MIN(y0, y1), CD_MAX(x0, x1), CD_MAX(y0, y1)};
        char num[24];
        const char *name = class_names && labels[i] >= 0 ? class_names[labels[i]] : NULL;
        if (name) snprintf(text[k], sizeof text[k], "%.120s", name);
        else snprintf(text[k], sizeof text[k], "class %d", labels[i]);
        if (scores) {
            snprintf(num, sizeof num, " %.2f", (double)scores[i]);
            strncat(text[k], num, sizeof text[k] - strlen(text[k]) - 1);
        }
        draw_label_size(im, text[k], &lw[k], &lh[k]);
    }
    draw_place_labels(im->w, im->h, box, lw, lh, m, lab);
    /* all boxes, then all labels, so that no box line crosses a label */
    for (size_t k = m; k-- > 0;)
        draw_box(im, box[k].x0, box[k].y0, box[k].x1, box[k].y1, draw_palette(labels[order[m - 1 - k]]), thick);
    for (size_t k = m; k-- > 0;) {
        draw_rgb c = draw_palette(labels[order[m - 1 - k]]);
        draw_label(im, lab[k].x0, lab[k].y0, text[k], draw_contrast(c), c);
    }
    free(text);
    free(lh);
    free(lw);
    free(lab);
    free(box);
    free(order);
}

int draw_detections_png(const char *path, const data_image *im, const float *xyxy, const int *labels,
                        const float *scores, size_t n, const char *const *class_names, float threshold) {
    data_image copy = {im->w, im->h, cd_xmalloc((size_t)im->w * (size_t)im->h * 3)};
    memcpy(copy.rgb, im->rgb, (size_t)im->w * (size_t)im->h * 3);
    draw_detections(&copy, xyxy, labels, scores, n, class_names, threshold);
    int rc = data_write_png(path, &copy);
    data_image_free(&copy);
    return rc;
}
