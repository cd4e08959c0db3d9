/* Drawing on RGB images (data_image): rectangles, anti-aliased lines,
 * anti-aliased text in a TrueType font, labels on a filled box, a palette of
 * distinct colours, and detections drawn as boxes with "name 0.93" labels
 * that do not cover each other. Used by the charts (chart.h) and
 * `cldetr predict`.
 *
 * The font (docs/pictures.md): the file named by $CLDETR_FONT if set, else
 * the first of a list of well-known paths (Debian's fonts-dejavu-core
 * DejaVuSans.ttf first), loaded once per process on first use (thread-safe)
 * and drawn with stb_truetype. Without one, text falls back to stb_easy_font's
 * 9-pixel bitmap font scaled by whole pixels, and a one-time note on stderr
 * says how to get the better font.
 *
 * Coordinates are pixels, x right and y down, (0,0) the top-left pixel.
 * Every function clips to the image: drawing partly or wholly outside is
 * allowed and touches nothing outside. */
#ifndef CLDETR_DRAW_H
#define CLDETR_DRAW_H

#include <stddef.h>
#include <stdint.h>

#include "cldetr/data.h"

typedef struct { uint8_t r, g, b; } draw_rgb;

typedef struct { int x0, y0, x1, y1; } draw_rect;   /* inclusive pixel bounds */

#define DRAW_BLACK ((draw_rgb){0, 0, 0})
#define DRAW_WHITE ((draw_rgb){255, 255, 255})

/* Colour k of a palette of distinct colours (k >= 0; negative k is taken as
 * -k): the 10 of matplotlib's tab10 first, then hues 137.5 degrees apart with
 * varying saturation and value, so neighbouring class ids differ. */
draw_rgb draw_palette(int k);
/* Black or white, whichever reads better on bg. */
draw_rgb draw_contrast(draw_rgb bg);

/* A new image w x h filled with c (w, h > 0). Free with data_image_free. */
void draw_image_new(data_image *im, int w, int h, draw_rgb c);

/* Pixel (x, y) set to c, or blended: c*alpha + old*(1-alpha), alpha in [0,1]. */
void draw_pixel(data_image *im, int x, int y, draw_rgb c);
void draw_blend(data_image *im, int x, int y, draw_rgb c, float alpha);

/* Filled rectangle, corners inclusive (any order). */
void draw_fill_rect(data_image *im, int x0, int y0, int x1, int y1, draw_rgb c);

/* Rectangle outline on the pixels x0..x1, y0..y1 (inclusive), `thickness`
 * pixels wide growing inward from those edges (thickness >= 1). */
void draw_box(data_image *im, int x0, int y0, int x1, int y1, draw_rgb c, int thickness);

/* Anti-aliased line of the given width (pixels, >= 1) from (x0,y0) to
 * (x1,y1), pixel centres at integer coordinates; round caps. */
void draw_line(data_image *im, double x0, double y0, double x1, double y1, draw_rgb c, double width);

/* Polyline through n points with one coverage mask for the whole path, so
 * joints are not blended twice; points with a NaN coordinate are skipped (the
 * line joins their neighbours). */
void draw_polyline(data_image *im, const double *x, const double *y, size_t n, draw_rgb c, double width);

/* Filled anti-aliased disc. */
void draw_disc(data_image *im, double cx, double cy, double radius, draw_rgb c);

/* Path of the TrueType font text is drawn in, or NULL when none could be
 * loaded and text uses the bitmap fallback. The first call (or the first
 * text drawn) finds and loads the font. */
const char *draw_font_path(void);

/* One line of text, UTF-8 (a byte that is not valid UTF-8 and control
 * characters, '\n' too, are drawn as '?'; characters the font lacks too),
 * anti-aliased: the glyphs' coverage blended over the image in colour c.
 * size is the line height in pixels, descenders included (TrueType:
 * ascent - descent; bitmap fallback: 9 x round(size / 9), at least 9). (x, y)
 * is the top-left of the text box: draw_text_height(size) pixels high and
 * draw_text_width(text, size) wide, ink from its left to its right edge. */
void draw_text(data_image *im, int x, int y, const char *text, draw_rgb c, int size);
int draw_text_width(const char *text, int size);
int draw_text_height(int size);
/* Text turned 90 degrees counter-clockwise (reading bottom to top, for a y
 * axis title); (x, y) is the top-left of its box, draw_text_height(size)
 * wide and draw_text_width(text, size) high. */
void draw_text_up(data_image *im, int x, int y, const char *text, draw_rgb c, int size);

/* Text size of labels on this image: 2% of its shorter side, at least 12 px. */
int draw_label_text_size(const data_image *im);

/* Text in colour fg on a box filled with bg, with padding around the text
 * (a sixth of the text size, at least 2 px), at size draw_label_text_size(im).
 * (x, y) asks for the box's top-left; the box is moved to lie inside the
 * image (a label wider than the image is cut at its right edge). Returns the
 * box drawn. */
draw_rect draw_label(data_image *im, int x, int y, const char *text, draw_rgb fg, draw_rgb bg);
/* Size of the box draw_label would draw. */
void draw_label_size(const data_image *im, const char *text, int *w, int *h);

/* Where draw_detections puts labels: for n boxes (inclusive pixel rects, any
 * corner order) in order of priority, the rectangle of a w[i] x h[i] label
 * into out[i], inside the img_w x img_h image (cut at its right and bottom
 * edges when larger). Greedy: each label takes the first spot that overlaps
 * no label placed before it and has room in the image (moved sideways at
 * most), trying above the box's top-left corner, inside under its top edge,
 * the same at the box's right end, under the box, inside over its bottom
 * edge, then further above and below, a label's height at a time; when none
 * does, the spot that overlaps least, moved into the image. */
void draw_place_labels(int img_w, int img_h, const draw_rect *boxes, const int *w, const int *h, size_t n,
                       draw_rect *out);

/* Detections on im: for each i with scores[i] >= threshold (in order of
 * increasing score, so the best lie on top), a box xyxy[4*i..4*i+3] (pixels
 * of im) in the palette colour of labels[i], and the label "name 0.93"
 * (name = class_names[labels[i]], or "class 7" when class_names or that entry
 * is NULL) in contrasting text on the box's colour: above its top-left
 * corner when there is room and no better-scoring label is there, else
 * inside or under the box (draw_place_labels, best score first). Labels are
 * drawn after every box. class_names must hold every label drawn. Boxes with
 * a non-finite coordinate are skipped. Line thickness grows with the image:
 * 1 px under 300 px, 2 under 1000, 3 above. scores may be NULL (all drawn,
 * no score). */
void draw_detections(data_image *im, const float *xyxy, const int *labels, const float *scores, size_t n,
                     const char *const *class_names, float threshold);
/* The same on a copy of im, written as a PNG to path. 0, or -1 with cd_errbuf(). */
int draw_detections_png(const char *path, const data_image *im, const float *xyxy, const int *labels,
                        const float *scores, size_t n, const char *const *class_names, float threshold);

#endif
