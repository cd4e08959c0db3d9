/* Drawing on RGB images: see include/cldetr/draw.h.
 *
 * Lines are anti-aliased by coverage: a pixel's alpha is how much of a
 * one-pixel-wide box filter around its centre falls inside the stroke,
 * approximated by clamp(width/2 + 0.5 - distance, 0, 1) (exact for a wide
 * straight edge, close enough at caps). Simpler than Wu's algorithm and it
 * gives any width. */
#include "cldetr/draw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wcast-qual"
#include <stb/stb_easy_font.h>
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

/* ------------------------------------------------------------------- text */

/* stb_easy_font wants a mutable string of printable ASCII (it indexes a table
 * by c - 32 and would read outside it for other bytes). */
static char *printable_copy(const char *text) {
    size_t n = strlen(text);
    char *s = cd_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        s[i] = ch >= 32 && ch < 127 ? (char)ch : '?';
    }
    s[n] = '\0';
    return s;
}

int draw_text_width(const char *text, int scale) {
    if (!text[0]) return 0;
    char *s = printable_copy(text);
    int w = stb_easy_font_width(s);
    free(s);
    return (w - 1) * scale;   /* the last glyph's trailing gap is not part of the text */
}

int draw_text_height(int scale) { return 9 * scale; }   /* rows 0..8 of the font, descenders included */

/* Every quad of the font is an axis-aligned rectangle of font pixels, filled
 * as scale x scale image pixels each. up = 1 turns the text 90 degrees
 * counter-clockwise. */
static void text_quads(data_image *im, int x, int y, const char *text, draw_rgb c, int scale, int up) {
    if (scale < 1) scale = 1;
    char *s = printable_copy(text);
    size_t cap = 12 * 64 * strlen(s) + 64; /* 64 bytes a quad, at most 11 quads a glyph ('X') */
    float *vb = cd_xmalloc(cap);
    int nq = stb_easy_font_print(0, 0, s, NULL, vb, (int)cap);
    int len = draw_text_width(s, 1);
    for (int q = 0; q < nq; q++) {
        const float *v0 = vb + 16 * q, *v2 = vb + 16 * q + 8;    /* vertices 0 and 2: opposite corners */
        int qx0 = (int)v0[0], qy0 = (int)v0[1], qx1 = (int)v2[0], qy1 = (int)v2[1];
        if (!up)
            draw_fill_rect(im, x + qx0 * scale, y + qy0 * scale, x + qx1 * scale - 1, y + qy1 * scale - 1, c);
        else   /* font (fx, fy) -> image (x + fy, y + len - fx) */
            draw_fill_rect(im, x + qy0 * scale, y + (len - qx1) * scale, x + qy1 * scale - 1,
                           y + (len - qx0) * scale - 1, c);
    }
    free(vb);
    free(s);
}

void draw_text(data_image *im, int x, int y, const char *text, draw_rgb c, int scale) {
    text_quads(im, x, y, text, c, scale, 0);
}

void draw_text_up(data_image *im, int x, int y, const char *text, draw_rgb c, int scale) {
    text_quads(im, x, y, text, c, scale, 1);
}

/* ----------------------------------------------------------------- labels */

int draw_label_scale(const data_image *im) { return CD_MAX(im->w, im->h) < 300 ? 1 : 2; }

void draw_label_size(const data_image *im, const char *text, int *w, int *h) {
    int s = draw_label_scale(im);
    *w = draw_text_width(text, s) + 4;
    *h = draw_text_height(s) + 3;   /* 2 above, 1 below: descenders leave room already */
}

draw_rect draw_label(data_image *im, int x, int y, const char *text, draw_rgb fg, draw_rgb bg) {
    int w, h;
    draw_label_size(im, text, &w, &h);
    if (x + w > im->w) x = im->w - w;
    if (y + h > im->h) y = im->h - h;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    draw_rect r = {x, y, CD_MIN(x + w, im->w) - 1, CD_MIN(y + h, im->h) - 1};
    draw_fill_rect(im, r.x0, r.y0, r.x1, r.y1, bg);
    /* text cut at the right edge stays inside: draw_fill_rect clips */
    draw_text(im, x + 2, y + 2, text, fg, draw_label_scale(im));
    return r;
}

/* ------------------------------------------------------------- detections */

void draw_detections(data_image *im, const float *xyxy, const int *labels, const float *scores, size_t n,
                     const char *const *class_names, float threshold) {
    size_t *order = cd_xmalloc((n ? n : 1) * sizeof *order), m = 0;
    for (size_t i = 0; i < n; i++)
        if (!scores || scores[i] >= threshold) order[m++] = i;
    /* insertion sort by increasing score: the best are drawn last, on top */
    for (size_t i = 1; scores && i < m; i++)
        for (size_t j = i; j > 0 && scores[order[j - 1]] > scores[order[j]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int side = CD_MAX(im->w, im->h), thick = side < 300 ? 1 : side < 1000 ? 2 : 3;
    for (size_t k = 0; k < m; k++) {
        size_t i = order[k];
        const float *b = xyxy + 4 * i;
        if (!isfinite(b[0]) || !isfinite(b[1]) || !isfinite(b[2]) || !isfinite(b[3])) continue;
        /* clamp before converting: a wild box must not overflow int */
        int x0 = (int)lroundf(fminf(fmaxf(b[0], -1e6f), 1e6f)), y0 = (int)lroundf(fminf(fmaxf(b[1], -1e6f), 1e6f));
        int x1 = (int)lroundf(fminf(fmaxf(b[2], -1e6f), 1e6f)), y1 = (int)lroundf(fminf(fmaxf(b[3], -1e6f), 1e6f));
        draw_rgb c = draw_palette(labels[i]);
        draw_box(im, x0, y0, x1, y1, c, thick);

        char text[160], num[24];
        const char *name = class_names && labels[i] >= 0 ? class_names[labels[i]] : NULL;
        if (name) snprintf(text, sizeof text, "%.120s", name);
        else snprintf(text, sizeof text, "class %d", labels[i]);
        if (scores) {
            snprintf(num, sizeof num, " %.2f", (double)scores[i]);
            strncat(text, num, sizeof text - strlen(text) - 1);
        }
        int lw, lh;
        draw_label_size(im, text, &lw, &lh);
        int lx = CD_MIN(x0, x1), ly = CD_MIN(y0, y1) - lh;
        if (ly < 0) ly = CD_MIN(y0, y1) + thick;   /* no room above: inside the box, under its top edge */
        draw_label(im, lx, ly, text, draw_contrast(c), c);
    }
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
