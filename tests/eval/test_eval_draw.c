/* Drawing (draw.h): box outlines land exactly on their edges and clip at the
 * image border, labels stay inside the image, lines and text put ink where
 * they should, the TrueType font is found and its text is anti-aliased, a
 * missing font falls back to the bitmap font with a note, labels of
 * overlapping boxes do not cover each other, palette colours are distinct,
 * and draw_detections_png writes the boxes above the threshold only. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "cldetr/common.h"
#include "cldetr/data.h"
#include "cldetr/draw.h"

static const draw_rgb RED = {255, 0, 0}, BG = {10, 20, 30};

/* Three detections to draw, labels 0, 1 and 2 (labels3): boxes (x0, y0, x1, y1), scores, class names. */
typedef struct {
    float xyxy[12], scores[3];
    const char *names[3];
} three_dets;
static const int labels3[3] = {0, 1, 2};

static int is(const data_image *im, int x, int y, draw_rgb c) {
    const uint8_t *p = im->rgb + 3 * ((size_t)y * (size_t)im->w + (size_t)x);
    return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

/* Every pixel is c exactly where inside(x, y) says, else BG; reports the first wrong pixel. */
static int only_where(const data_image *im, draw_rgb c, int x0, int y0, int x1, int y1, int t, const char *what) {
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            int in_outer = x >= x0 && x <= x1 && y >= y0 && y <= y1;
            int in_inner = x >= x0 + t && x <= x1 - t && y >= y0 + t && y <= y1 - t;
            int want_c = in_outer && !in_inner;
            if (!is(im, x, y, want_c ? c : BG)) {
                t_diag("%s: pixel (%d,%d) should be %s", what, x, y, want_c ? "the box colour" : "background");
                return 0;
            }
        }
    return 1;
}

static void test_box(void) {
    data_image im;
    draw_image_new(&im, 50, 40, BG);
    draw_box(&im, 10, 5, 30, 20, RED, 1);
    t_ok(only_where(&im, RED, 10, 5, 30, 20, 1, "box t=1"), "draw_box thickness 1: the pixels of x=10,30 and y=5,20 and no others");
    data_image_free(&im);

    draw_image_new(&im, 50, 40, BG);
    draw_box(&im, 30, 20, 10, 5, RED, 3);   /* corners in any order */
    t_ok(only_where(&im, RED, 10, 5, 30, 20, 3, "box t=3"), "draw_box thickness 3 grows inward, corners swapped");
    data_image_free(&im);

    /* partly outside: only the edges inside the image are drawn */
    draw_image_new(&im, 50, 40, BG);
    draw_box(&im, -10, -7, 20, 60, RED, 2);
    int ok = 1;
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            int want = x == 19 || x == 20 ? 1 : 0;   /* only the right edge (2 px) crosses the image */
            if (x > 20) want = 0;
            if (is(&im, x, y, want ? RED : BG) != 1) { ok = 0; t_diag("clip: pixel (%d,%d)", x, y); y = im.h; break; }
        }
    t_ok(ok, "box from (-10,-7) to (20,60): only its right edge, columns 19-20, all rows");
    data_image_free(&im);

    draw_image_new(&im, 50, 40, BG);
    draw_box(&im, 40, 30, 70, 90, RED, 1);   /* top-left corner inside, rest outside */
    ok = is(&im, 40, 30, RED) && is(&im, 49, 30, RED) && is(&im, 40, 39, RED) && is(&im, 41, 31, BG) &&
         is(&im, 39, 30, BG) && is(&im, 40, 29, BG);
    t_ok(ok, "box reaching past the bottom-right corner: its top and left edges run to the border");
    draw_box(&im, -100, -100, -50, -50, RED, 4);
    draw_box(&im, 1000000, 5, 2000000, 8, RED, 4);
    t_ok(is(&im, 0, 0, BG) && is(&im, 49, 5, BG), "boxes wholly outside draw nothing (and do not crash)");
    data_image_free(&im);
}

/* The label's box: inside the image, filled with bg where the text is not. */
static void label_inside(int w, int h, int x, int y, const char *text) {
    data_image im;
    draw_image_new(&im, w, h, BG);
    draw_rect r = draw_label(&im, x, y, text, DRAW_WHITE, RED);
    int inside = r.x0 >= 0 && r.y0 >= 0 && r.x1 < w && r.y1 < h && r.x0 <= r.x1 && r.y0 <= r.y1;
    size_t fg = 0, bg = 0, outside = 0;   /* fg: text ink, white blended over red */
    for (int yy = 0; yy < h; yy++)
        for (int xx = 0; xx < w; xx++) {
            int in = xx >= r.x0 && xx <= r.x1 && yy >= r.y0 && yy <= r.y1;
            if (!in) outside += !is(&im, xx, yy, BG);
            else if (is(&im, xx, yy, RED)) bg++;
            else fg++;
        }
    int lw, lh;
    draw_label_size(&im, text, &lw, &lh);
    int full = r.x1 - r.x0 + 1 == CD_MIN(lw, w) && r.y1 - r.y0 + 1 == CD_MIN(lh, h);
    t_ok(inside && full && fg > 0 && bg > 0 && outside == 0,
         "label '%s' asked at (%d,%d) on %dx%d: box [%d,%d]-[%d,%d] inside, full size %dx%d, %zu text px, none outside",
         text, x, y, w, h, r.x0, r.y0, r.x1, r.y1, lw, lh, fg);
    data_image_free(&im);
}

static void test_label(void) {
    label_inside(128, 128, 100, 120, "square 0.93");   /* bottom-right: moved left and up */
    label_inside(128, 128, -20, -30, "circle 0.50");   /* top-left: moved in */
    label_inside(640, 480, 600, -5, "triangle 1.00");  /* larger text on a large image */
    label_inside(60, 40, 0, 0, "a very long class name 0.99");   /* wider than the image: cut at the right */

    data_image small, large;
    draw_image_new(&small, 128, 96, BG);
    draw_image_new(&large, 1600, 1200, BG);
    int ws, hs, wl, hl;
    draw_label_size(&small, "cat 0.93", &ws, &hs);
    draw_label_size(&large, "cat 0.93", &wl, &hl);
    int ss = draw_label_text_size(&small), sl = draw_label_text_size(&large);
    t_ok(ss == 12 && sl == 24 && wl > ws && hl > hs && hl >= draw_text_height(sl),
         "label text %d px on 128x96 (label %dx%d), %d px (2%% of 1200) on 1600x1200 (label %dx%d)", ss, ws, hs, sl,
         wl, hl);
    data_image_free(&small);
    data_image_free(&large);
}

/* Ink (pixels that are not white) of im: its bounding box, and how many ink
 * pixels are grey (neither white nor black: anti-aliased edges). */
static size_t ink_box(const data_image *im, int *minx, int *maxx, int *miny, int *maxy, size_t *grey) {
    size_t n = 0;
    *minx = *miny = 1 << 20;
    *maxx = *maxy = -1;
    *grey = 0;
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            if (is(im, x, y, DRAW_WHITE)) continue;
            n++;
            *grey += !is(im, x, y, DRAW_BLACK);
            *minx = CD_MIN(*minx, x); *maxx = CD_MAX(*maxx, x);
            *miny = CD_MIN(*miny, y); *maxy = CD_MAX(*maxy, y);
        }
    return n;
}

static void test_text_and_lines(void) {
    data_image im;
    draw_image_new(&im, 80, 30, DRAW_WHITE);
    draw_text(&im, 2, 2, "0.93", DRAW_BLACK, 18);
    int w = draw_text_width("0.93", 18), h = draw_text_height(18);
    int minx, maxx, miny, maxy;
    size_t grey;
    size_t n = ink_box(&im, &minx, &maxx, &miny, &maxy, &grey);
    /* digits: from the box's left edge to its right one, in its upper part
     * (the text box holds the descenders below them) */
    t_ok(n > 0 && minx >= 2 && minx <= 3 && maxx == 2 + w - 1 && miny >= 2 && miny <= 2 + h / 3 && maxy <= 2 + h - 1,
         "text '0.93' at 18 px: ink in [%d,%d]x[%d,%d], box %dx%d from (2,2)", minx, maxx, miny, maxy, w, h);
    int w9 = draw_text_width("0.93", 9), h9 = draw_text_height(9);
    t_ok(w > w9 && h > h9 && draw_text_width("", 18) == 0, "text grows with its size: %dx%d at 18 px, %dx%d at 9 px",
         w, h, w9, h9);
    /* a byte outside printable ASCII must not read outside stb_easy_font's table, nor stop the UTF-8 decoder */
    draw_text(&im, 2, 2, "\x01\xff\n\t\xe2\x82", DRAW_BLACK, 12);
    int wq = draw_text_width("?", 12);
    t_ok(draw_text_width("\xff", 12) == wq && draw_text_width("\n", 12) == wq,
         "non-printable bytes and broken UTF-8 are drawn as '?' without a crash");
    data_image_free(&im);

    /* text turned up: the box is h wide and w high */
    draw_image_new(&im, 40, 80, DRAW_WHITE);
    draw_text_up(&im, 5, 3, "loss", DRAW_BLACK, 16);
    int wu = draw_text_width("loss", 16), hu = draw_text_height(16);
    n = ink_box(&im, &minx, &maxx, &miny, &maxy, &grey);
    t_ok(n > 0 && minx >= 5 && maxx <= 5 + hu - 1 && miny == 3 && maxy <= 3 + wu - 1 && maxy >= 3 + wu - 2,
         "text up 'loss' at 16 px: ink in [%d,%d]x[%d,%d], box %dx%d from (5,3)", minx, maxx, miny, maxy, hu, wu);
    data_image_free(&im);

    draw_image_new(&im, 60, 60, DRAW_WHITE);
    draw_line(&im, 5, 10, 55, 10, RED, 2);
    int on = is(&im, 30, 10, RED) || (im.rgb[3 * (10 * 60 + 30)] == 255 && im.rgb[3 * (10 * 60 + 30) + 1] < 80);
    int off = is(&im, 30, 14, DRAW_WHITE) && is(&im, 2, 10, DRAW_WHITE);
    t_ok(on && off, "2 px horizontal line: red on it, white 4 px away and past its end");
    double x[4] = {5, NAN, 30, 50}, y[4] = {50, 0, 30, 50};
    draw_polyline(&im, x, y, 4, DRAW_BLACK, 2);
    t_ok(im.rgb[3 * (42 * 60 + 15)] < 100 && im.rgb[3 * (40 * 60 + 40)] < 100 && im.rgb[3 * (25 * 60 + 17)] == 255,
         "polyline skips its NaN point and joins (5,50)-(30,30)-(50,50)");
    data_image_free(&im);
}

static void test_font(void) {
    const char *dejavu = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";   /* fonts-dejavu-core */
    const char *path = draw_font_path();
    if (access(dejavu, R_OK) == 0)
        t_ok(path && !strcmp(path, dejavu), "fonts-dejavu-core installed: text drawn in %s", path ? path : "(none)");
    else
        t_ok(1, "# SKIP %s not installed (tools/install-deps.sh installs it); font: %s", dejavu,
             path ? path : "bitmap fallback");
    if (!path) {
        t_ok(1, "# SKIP no TrueType font: anti-aliasing not checked");
        return;
    }
    /* anti-aliased: a label's text has edge pixels between its colour and the background */
    data_image im;
    draw_image_new(&im, 200, 40, DRAW_WHITE);
    draw_text(&im, 3, 3, "person 0.93", DRAW_BLACK, 14);
    int minx, maxx, miny, maxy;
    size_t grey, n = ink_box(&im, &minx, &maxx, &miny, &maxy, &grey);
    int levels[256] = {0}, n_levels = 0;
    for (size_t i = 0; i < (size_t)im.w * (size_t)im.h; i++) {
        uint8_t v = im.rgb[3 * i];
        if (v > 0 && v < 255 && !levels[v]++) n_levels++;
    }
    t_ok(n > 0 && grey > n / 4 && n_levels >= 20,
         "text is anti-aliased: %zu of %zu ink pixels grey, %d grey levels", grey, n, n_levels);
    data_image_free(&im);
    /* the same in a label: text blended over the label's colour */
    draw_image_new(&im, 300, 200, BG);
    draw_rect r = draw_label(&im, 10, 10, "person 0.93", DRAW_WHITE, RED);
    size_t mixed = 0;
    for (int y = r.y0; y <= r.y1; y++)
        for (int x = r.x0; x <= r.x1; x++) {
            const uint8_t *p = im.rgb + 3 * ((size_t)y * (size_t)im.w + (size_t)x);
            mixed += p[0] == 255 && p[1] > 0 && p[1] < 255 && p[1] == p[2];   /* between red and white */
        }
    t_ok(mixed > 20, "label text anti-aliased over its background: %zu pixels between red and white", mixed);
    data_image_free(&im);
}

/* With CLDETR_FONT naming a missing file: the bitmap font, a note on stderr
 * once, and text still drawn. Run in a child before this process draws any
 * text (the font is chosen once per process). */
static void test_font_fallback(void) {
    char err_path[] = "/tmp/cldetr_font_XXXXXX";
    int fd = mkstemp(err_path);
    if (fd < 0) { t_ok(0, "mkstemp"); return; }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        setenv("CLDETR_FONT", "/nonexistent/cldetr-test-font.ttf", 1);
        int bad = 0;
        if (draw_font_path() != NULL) bad |= 1;
        data_image im;
        draw_image_new(&im, 120, 30, DRAW_WHITE);
        draw_text(&im, 2, 2, "cat 0.93", DRAW_BLACK, 18);
        size_t ink = 0, grey = 0;
        for (size_t i = 0; i < (size_t)im.w * (size_t)im.h; i++) {
            ink += im.rgb[3 * i] != 255;
            grey += im.rgb[3 * i] != 255 && im.rgb[3 * i] != 0;
        }
        if (ink < 30) bad |= 2;                                      /* text drawn */
        if (grey) bad |= 4;                                          /* in the bitmap font */
        if (draw_text_height(18) != 18) bad |= 8;                    /* 9 x 2 */
        draw_label(&im, 0, 0, "dog", DRAW_WHITE, DRAW_BLACK);        /* a second use: no second note */
        data_image_free(&im);
        _exit(bad);
    }
    close(fd);
    int st = 0;
    waitpid(pid, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    char *err = cd_read_file(err_path, NULL);
    remove(err_path);
    if (!err) err = cd_xstrdup("");
    const char *note = strstr(err, "CLDETR_FONT=/nonexistent/cldetr-test-font.ttf");
    t_ok(code == 0, "CLDETR_FONT missing: no TrueType font (%d), text still drawn (%d), in the bitmap font (%d), "
                    "18 px high (%d)", !(code & 1), !(code & 2), !(code & 4), !(code & 8));
    t_ok(note && strstr(err, "fonts-dejavu-core") && !strstr(note + 1, "CLDETR_FONT=/nonexistent"),
         "the note, once: \"%.*s\"", (int)strcspn(err, "\n"), err);
    free(err);
}

/* Labels of boxes on top of each other: placed without overlapping, inside the image. */
static void test_place_labels(void) {
    enum { N = 6 };
    draw_rect boxes[N] = {{100, 100, 300, 300}, {105, 102, 290, 295}, {100, 100, 300, 300},
                          {110, 0, 200, 80},    {500, 2, 639, 60},    {98, 96, 150, 140}};
    int w[N] = {90, 110, 70, 60, 100, 80}, h[N] = {16, 16, 16, 16, 16, 16};
    draw_rect out[N];
    draw_place_labels(640, 480, boxes, w, h, N, out);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        ok &= out[i].x0 >= 0 && out[i].y0 >= 0 && out[i].x1 < 640 && out[i].y1 < 480;
        ok &= out[i].x1 - out[i].x0 + 1 == w[i] && out[i].y1 - out[i].y0 + 1 == h[i];
        for (int j = 0; j < i; j++)
            if (out[i].x0 <= out[j].x1 && out[j].x0 <= out[i].x1 && out[i].y0 <= out[j].y1 && out[j].y0 <= out[i].y1) {
                t_diag("labels %d [%d,%d]-[%d,%d] and %d [%d,%d]-[%d,%d] overlap", j, out[j].x0, out[j].y0, out[j].x1,
                       out[j].y1, i, out[i].x0, out[i].y0, out[i].x1, out[i].y1);
                ok = 0;
            }
    }
    t_ok(ok, "6 labels of overlapping boxes (two identical): full size, inside the image, none overlapping");
    t_ok(out[0].x0 == 100 && out[0].y1 == 99, "the first label sits right above its box's top-left corner ([%d,%d]-[%d,%d])",
         out[0].x0, out[0].y0, out[0].x1, out[0].y1);
    t_ok(out[4].y0 >= 2 && out[4].x0 >= 500, "a box at the top edge: its label inside it ([%d,%d]-[%d,%d])", out[4].x0,
         out[4].y0, out[4].x1, out[4].y1);

    /* the same through draw_detections: each label keeps its colour visible */
    data_image im;
    draw_image_new(&im, 640, 480, DRAW_WHITE);
    const three_dets d = {{100, 100, 300, 300, 100, 100, 300, 300, 102, 101, 298, 299}, {0.9f, 0.8f, 0.7f},
                          {"person", "bicycle", "car"}};
    const float *xyxy = d.xyxy;
    draw_detections(&im, xyxy, labels3, d.scores, 3, d.names, 0.5f);
    /* where its labels must be: placed best first, as draw_detections says */
    const char *texts[3] = {"person 0.90", "bicycle 0.80", "car 0.70"};
    draw_rect bx[3], lr[3];
    int lw[3], lh[3];
    for (int k = 0; k < 3; k++) {
        bx[k] = (draw_rect){(int)xyxy[4 * k], (int)xyxy[4 * k + 1], (int)xyxy[4 * k + 2], (int)xyxy[4 * k + 3]};
        draw_label_size(&im, texts[k], &lw[k], &lh[k]);
    }
    draw_place_labels(im.w, im.h, bx, lw, lh, 3, lr);
    size_t px[3] = {0, 0, 0}, area[3];
    for (int k = 0; k < 3; k++) {
        area[k] = (size_t)(lr[k].x1 - lr[k].x0 + 1) * (size_t)(lr[k].y1 - lr[k].y0 + 1);
        for (int y = lr[k].y0; y <= lr[k].y1; y++)
            for (int x = lr[k].x0; x <= lr[k].x1; x++) px[k] += is(&im, x, y, draw_palette(k));
    }
    /* the rest of a label's box is its text, blended */
    t_ok(px[0] > area[0] / 2 && px[1] > area[1] / 2 && px[2] > area[2] / 2,
         "three labels on three coinciding boxes all show in their colours (%zu/%zu, %zu/%zu, %zu/%zu px)", px[0],
         area[0], px[1], area[1], px[2], area[2]);
    data_image_free(&im);
}

static void test_palette(void) {
    int min_d = 1 << 30, ka = 0, kb = 0;
    for (int a = 0; a < 20; a++)
        for (int b = a + 1; b < 20; b++) {
            draw_rgb p = draw_palette(a), q = draw_palette(b);
            int d = abs(p.r - q.r) + abs(p.g - q.g) + abs(p.b - q.b);
            if (d < min_d) { min_d = d; ka = a; kb = b; }
        }
    t_ok(min_d >= 40, "the first 20 palette colours differ pairwise (closest: %d and %d, L1 distance %d)", ka, kb, min_d);
    draw_rgb c = draw_palette(91);
    t_ok(draw_contrast(DRAW_WHITE).r == 0 && draw_contrast(DRAW_BLACK).r == 255 && (c.r | c.g | c.b),
         "contrast text colour: black on white, white on black; class 91 has a colour");
}

static void test_detections_png(void) {
    char dir[] = "/tmp/cldetr_draw_XXXXXX", path[128];
    if (!mkdtemp(dir)) { t_ok(0, "mkdtemp"); return; }
    snprintf(path, sizeof path, "%s/det.png", dir);
    data_image im;
    draw_image_new(&im, 128, 128, BG);
    const three_dets d = {{10, 40, 60, 100, 70, 60, 120, 120, 90, 10, 110, 30}, {0.93f, 0.71f, 0.2f},
                          {"circle", "square", "triangle"}};
    int rc = draw_detections_png(path, &im, d.xyxy, labels3, d.scores, 3, d.names, 0.5f);
    t_ok(rc == 0, "draw_detections_png on 128x128 %s", rc ? cd_errbuf() : "");
    data_image got = {0};
    rc = data_image_load(&got, path);
    t_ok(rc == 0 && got.w == 128 && got.h == 128, "read back %dx%d", got.w, got.h);
    if (!rc) {
        t_ok(is(&got, 10, 70, draw_palette(0)) && is(&got, 60, 70, draw_palette(0)) && is(&got, 35, 100, draw_palette(0)),
             "box 0 (score 0.93) drawn in palette colour 0 on its left, right and bottom edges");
        t_ok(is(&got, 120, 90, draw_palette(1)) && is(&got, 95, 120, draw_palette(1)),
             "box 1 (score 0.71) drawn in palette colour 1");
        t_ok(is(&got, 90, 20, BG) && is(&got, 110, 20, BG) && is(&got, 100, 10, BG) && is(&got, 100, 30, BG),
             "box 2 (score 0.20, under the 0.5 threshold) not drawn");
        /* label of box 0 sits above its top edge: a filled run in its colour */
        size_t lab = 0;
        for (int y = 40 - 12; y < 40; y++)
            for (int x = 10; x < 60; x++) lab += is(&got, x, y, draw_palette(0));
        t_ok(lab > 100, "label of box 0 above its top edge (%zu px of its colour)", lab);
        t_ok(is(&im, 10, 70, BG), "the caller's image is left as it was");
    }
    data_image_free(&got);
    data_image_free(&im);
    snprintf(path, sizeof path, "/nonexistent-dir-%d/det.png", (int)getpid());
    draw_image_new(&im, 16, 16, BG);
    rc = draw_detections_png(path, &im, d.xyxy, labels3, d.scores, 1, NULL, 0);
    t_ok(rc == -1 && strstr(cd_errbuf(), "nonexistent-dir"), "unwritable path: -1, \"%s\"", cd_errbuf());
    data_image_free(&im);
    snprintf(path, sizeof path, "%s/det.png", dir);
    remove(path);
    rmdir(dir);
}

int main(void) {
    test_font_fallback();   /* first: before this process picks its font */
    test_box();
    test_label();
    test_text_and_lines();
    test_font();
    test_place_labels();
    test_palette();
    test_detections_png();
    return t_done();
}
