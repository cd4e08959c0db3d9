/* Charts (chart.h): nice ticks, series drawn where their data lies (linear
 * and log y), NaN points skipped, a lone point drawn as a dot, "no data"
 * charts, PNG size, the legend where it hides no line (or outside the plot),
 * an all-zero AP chart's y axis, readable anti-aliased titles; the CSV
 * reader on files being written, resumed runs and bad lines; run charts from
 * a run folder and their errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/chart.h"
#include "cldetr/common.h"
#include "cldetr/data.h"
#include "cldetr/draw.h"

static char dir[64];

static const char *write_file(const char *name, const char *text) { return t_write_in(dir, name, text); }

static int same(const uint8_t *p, draw_rgb c) { return p[0] == c.r && p[1] == c.g && p[2] == c.b; }

/* Is a pixel of exactly colour c within 1 px of the data point (x, y)? */
static int colour_at(const data_image *im, const chart_frame *f, double x, double y, draw_rgb c) {
    double px, py;
    chart_to_pixel(f, x, y, &px, &py);
    int cx = (int)lround(px), cy = (int)lround(py);
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            int xx = cx + dx, yy = cy + dy;
            if (xx >= 0 && yy >= 0 && xx < im->w && yy < im->h &&
                same(im->rgb + 3 * ((size_t)yy * (size_t)im->w + (size_t)xx), c))
                return 1;
        }
    return 0;
}

static size_t count_colour(const data_image *im, draw_rgb c) {
    size_t n = 0;
    for (size_t i = 0; i < (size_t)im->w * (size_t)im->h; i++) n += same(im->rgb + 3 * i, c);
    return n;
}

/* ------------------------------------------------------------------ ticks */

static void test_ticks(void) {
    double t[64];
    static const double mant[7] = {1, 2, 5, 2.5, 4, 1.5, 6};
    int bad = 0;
    t_seed(7);
    for (int i = 0; i < 2000 && bad < 3; i++) {
        double scale = pow(10, floor(t_uniform(-6, 7)));
        double lo = t_uniform(-0.5, 1) * scale, hi = lo + t_uniform(0.01, 1) * scale;
        size_t n = chart_ticks(lo, hi, 0, t, 64);
        double step = n > 1 ? t[1] - t[0] : 0, e = pow(10, floor(log10(step) + 1e-9)), m = step / e;
        int nice = 0;
        for (int k = 0; k < 7; k++) nice |= fabs(m - mant[k]) < 1e-6 * mant[k] || fabs(m / 10 - mant[k]) < 1e-6;
        int ok = n >= 5 && n <= 8 && nice && t[0] >= lo - 1e-9 * scale && t[n - 1] <= hi + 1e-9 * scale;
        for (size_t k = 1; k < n; k++) ok &= fabs(t[k] - t[k - 1] - step) < 1e-6 * step;
        for (size_t k = 0; k < n; k++) ok &= fabs(t[k] / step - round(t[k] / step)) < 1e-6;
        if (!ok) {
            bad++;
            t_diag("[%g, %g]: %zu ticks, step %g (mantissa %g), first %g last %g", lo, hi, n, step, m, n ? t[0] : 0,
                   n ? t[n - 1] : 0);
        }
    }
    t_ok(!bad, "linear ticks of 2000 random ranges: 5-8, equally spaced multiples of 1|2|5|2.5|4|1.5|6 x 10^k, inside");

    bad = 0;
    for (int i = 0; i < 500 && bad < 3; i++) {   /* loss-like ranges: a factor of 20 to 10^5 */
        double lo = pow(10, t_uniform(-3, 1)), hi = lo * pow(10, t_uniform(log10(20), 5));
        size_t n = chart_ticks(lo, hi, 1, t, 64);
        int ok = n >= 4 && n <= 8 && t[0] >= lo * (1 - 1e-9) && t[n - 1] <= hi * (1 + 1e-9), decades = 1;
        for (size_t k = 0; k < n; k++) {
            double m = t[k] / pow(10, floor(log10(t[k]) + 1e-9));
            ok &= fabs(m - round(m)) < 1e-6;   /* 1..9 x 10^k */
            decades &= fabs(m - 1) < 1e-6;
            if (k) ok &= t[k] > t[k - 1];
        }
        ok &= n >= 5 || decades;   /* 4 only when they are whole decades (4-5 decades in range) */
        if (!ok) { bad++; t_diag("log [%g, %g]: %zu ticks", lo, hi, n); }
    }
    t_ok(!bad, "log ticks of 500 loss-like ranges (20x to 1e5x): 5-8 values d x 10^k (or 4 decades), increasing, inside");
    size_t n = chart_ticks(1e-3, 1e9, 1, t, 64);
    t_ok(n >= 4 && n <= 8 && t[0] >= 1e-3 && fabs(log10(t[1] / t[0]) - round(log10(t[1] / t[0]))) < 1e-9,
         "12 decades: %zu ticks, whole decades apart (%g, %g, ...)", n, t[0], t[1]);
    n = chart_ticks(1.5, 2.2, 1, t, 64);
    t_ok(n >= 5 && n <= 8, "log axis over 1.5..2.2 falls back to %zu linear ticks (%g .. %g)", n, t[0], t[n ? n - 1 : 0]);
    t_ok(chart_ticks(1, 1, 0, t, 64) == 0 && chart_ticks(-1, 5, 1, t, 64) == 0 && chart_ticks(NAN, 5, 0, t, 64) == 0,
         "no ticks for an empty range, a log range through 0, NaN");

    char b[64], all[256] = "";
    struct { double v, step; const char *want; } lab[] = {
        {0.25, 0.25, "0.25"}, {1500, 500, "1500"}, {0, 0.1, "0"}, {0.30000000000000004, 0.1, "0.3"},
        {2e6, 1e6, "2e+06"}, {5, 0, "5"}, {0.02, 0, "0.02"}, {-7.5, 2.5, "-7.5"},
        {1.05e-4, 5e-6, "1.05e-04"}, {9.5e-5, 5e-6, "9.5e-05"}, {2.5e6, 5e5, "2.5e+06"}};
    int ok = 1;
    for (size_t i = 0; i < CD_ARRAY_LEN(lab); i++) {
        chart_tick_label(b, sizeof b, lab[i].v, lab[i].step);
        ok &= !strcmp(b, lab[i].want);
        strcat(all, b);
        strcat(all, " ");
    }
    t_ok(ok, "tick labels: %s", all);
}

/* ----------------------------------------------------------------- charts */

static void test_render(void) {
    double x[11], y[11];
    for (int i = 0; i <= 10; i++) { x[i] = i; y[i] = 2 * i + 1; }
    chart_series s[2] = {{"up", x, y, 11}, {NULL, NULL, NULL, 0}};
    double y2[11];
    for (int i = 0; i <= 10; i++) y2[i] = 21 - 2 * i;
    s[1] = (chart_series){"down", x, y2, 11};
    chart_opts o;
    chart_opts_default(&o);
    o.title = "test";
    o.x_label = "step";
    o.y_label = "value";
    data_image im;
    chart_frame f;
    chart_render(&im, &f, &o, s, 2);
    t_ok(im.w == 900 && im.h == 500 && f.has_data, "default chart is 900x500 (%dx%d)", im.w, im.h);
    t_ok(f.x_lo <= 0 && f.x_hi >= 10 && f.y_lo <= 1 && f.y_hi >= 21 && f.px1 - f.px0 > 600 && f.py1 - f.py0 > 300,
         "frame holds the data: x [%g, %g], y [%g, %g], plot %dx%d px", f.x_lo, f.x_hi, f.y_lo, f.y_hi,
         f.px1 - f.px0, f.py1 - f.py0);
    int on = 1, off = 0;
    double probe[4] = {0.5, 3.25, 6.7, 7.3};   /* between data points too; clear of the legend */
    for (int k = 0; k < 4; k++) {
        int a = colour_at(&im, &f, probe[k], 2 * probe[k] + 1, chart_color(0));
        int b = colour_at(&im, &f, probe[k], 21 - 2 * probe[k], chart_color(1));
        int c = colour_at(&im, &f, probe[k], 2 * probe[k] + 6, chart_color(0));   /* 5 units above the line */
        if (!a || !b || c) t_diag("x = %g: on series 0 %d, on series 1 %d, off series 0 %d", probe[k], a, b, c);
        on &= a && b;
        off += c;
    }
    t_ok(on && !off, "series 0 and 1 colours on their lines at x = 0.5, 3.25, 6.7, 7.3, not 5 units off them");
    t_ok(count_colour(&im, (draw_rgb){255, 255, 255}) > (size_t)im.w * (size_t)im.h / 2, "white background");
    data_image_free(&im);

    /* log y: y = 10^(x/2) is a straight line on it */
    double ly[11];
    for (int i = 0; i <= 10; i++) ly[i] = pow(10, i / 2.0);
    ly[3] = 0;    /* not drawable on a log axis: skipped */
    ly[4] = -5;
    chart_series sl = {"exp", x, ly, 11};
    o.log_y = 1;
    chart_render(&im, &f, &o, &sl, 1);
    on = 1;
    double lp[3] = {1.5, 6.3, 8.8};
    for (int k = 0; k < 3; k++) on &= colour_at(&im, &f, lp[k], pow(10, lp[k] / 2), chart_color(0));
    t_ok(f.log_y && f.y_lo <= 0 && f.y_lo > -0.5 && f.y_hi >= 5 && f.y_hi < 5.5 && on,
         "log y: frame in log10 [%g, %g]; line at 10^(x/2) for x = 1.5, 6.3, 8.8; y <= 0 skipped", f.y_lo, f.y_hi);
    /* 2 -> 5 (skipping 3 and 4): the joining segment is straight in log space */
    t_ok(colour_at(&im, &f, 3.5, pow(10, 1 + (3.5 - 2) / 3 * 1.5), chart_color(0)),
         "the line joins its neighbours across the skipped points");
    data_image_free(&im);
    o.log_y = 0;

    /* NaN points: skipped, the range unaffected, neighbours joined */
    double ny[11];
    memcpy(ny, y, sizeof ny);
    ny[5] = NAN;
    ny[6] = INFINITY;
    chart_series sn = {"nan", x, ny, 11};
    chart_render(&im, &f, &o, &sn, 1);
    t_ok(isfinite(f.y_lo) && isfinite(f.y_hi) && f.y_hi < 30 && colour_at(&im, &f, 5, 11, chart_color(0)) &&
             colour_at(&im, &f, 9, 19, chart_color(0)),
         "NaN and inf points skipped: y range [%g, %g], line through (5, 11) joining 4 and 7", f.y_lo, f.y_hi);
    data_image_free(&im);

    /* one point: a dot */
    double px1[1] = {3}, py1[1] = {0.7};
    chart_series s1[2] = {{"a", x, y, 11}, {"val", px1, py1, 1}};
    chart_render(&im, &f, &o, s1, 2);
    double cx, cy;
    chart_to_pixel(&f, 3, 0.7, &cx, &cy);
    size_t dot = 0;
    for (int dy = -3; dy <= 3; dy++)
        for (int dx = -3; dx <= 3; dx++) {
            int xx = (int)lround(cx) + dx, yy = (int)lround(cy) + dy;
            dot += same(im.rgb + 3 * ((size_t)yy * (size_t)im.w + (size_t)xx), chart_color(1));
        }
    t_ok(dot >= 9, "a series of one point is a dot (%zu px of its colour around it)", dot);
    data_image_free(&im);

    /* no data at all: a chart that says so */
    double nn[3] = {NAN, NAN, NAN};
    chart_series se[2] = {{"empty", nn, nn, 3}, {"none", NULL, NULL, 0}};
    for (int k = 0; k < 2; k++) {
        chart_render(&im, &f, &o, se, k ? 2 : 0);
        size_t grey = count_colour(&im, (draw_rgb){120, 120, 120});
        t_ok(!f.has_data && grey > 100, "%s: \"no data\" written (%zu grey text px)", k ? "all-NaN series" : "no series",
             grey);
        data_image_free(&im);
    }

    /* PNG of a custom size, read back */
    char path[256];
    snprintf(path, sizeof path, "%s/c.png", dir);
    o.width = 640;
    o.height = 360;
    int rc = chart_write_png(path, &o, s, 2);
    data_image got = {0};
    if (!rc) rc = data_image_load(&got, path);
    t_ok(rc == 0 && got.w == 640 && got.h == 360, "chart_write_png 640x360, read back: %dx%d", got.w, got.h);
    data_image_free(&got);
    snprintf(path, sizeof path, "%s/no/such/dir/c.png", dir);
    t_ok(chart_write_png(path, &o, s, 2) == -1 && strstr(cd_errbuf(), "no/such/dir"), "unwritable path: \"%s\"",
         cd_errbuf());

    /* pinned y_min (AP from 0): values under it (pycocotools' -1) are skipped */
    double ap[4] = {-1, 0.2, 0.3, 0.4};
    chart_series sa = {"AP", x, ap, 4};
    chart_opts_default(&o);
    o.y_min = 0;
    chart_render(&im, &f, &o, &sa, 1);
    t_ok(f.y_lo == 0 && f.y_hi >= 0.4 && f.x_lo >= 0 && f.x_lo <= 1, "y_min = 0 pins the axis: y [%g, %g], x from %g",
         f.y_lo, f.y_hi, f.x_lo);
    data_image_free(&im);
}

/* Does any line segment of the series (or a lone point), grown by half a
 * line width, reach into the rectangle r? */
static int hides_data(const chart_frame *f, const chart_series *s, size_t n_series, draw_rect r, double half_w) {
    for (size_t k = 0; k < n_series; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double ax, ay, bx, by;
            chart_to_pixel(f, s[k].x[i ? i - 1 : 0], s[k].y[i ? i - 1 : 0], &ax, &ay);
            chart_to_pixel(f, s[k].x[i], s[k].y[i], &bx, &by);
            for (double t = 0; t <= 1; t += 1.0 / 4096) {
                double x = ax + t * (bx - ax), y = ay + t * (by - ay);
                if (x >= r.x0 - half_w && x <= r.x1 + half_w && y >= r.y0 - half_w && y <= r.y1 + half_w) return 1;
            }
        }
    return 0;
}

static void test_legend(void) {
    /* a line along the top fills both top corners, one along the bottom's right half the bottom-right corner:
     * only the bottom-left corner is free */
    double tx[2] = {0, 10}, ty[2] = {10, 10}, bx[2] = {6, 10}, by[2] = {0, 0}, lx[2] = {0, 4}, ly[2] = {0, 0};
    chart_series s[3] = {{"along the top", tx, ty, 2}, {"bottom right", bx, by, 2}, {"bottom left", lx, ly, 2}};
    chart_opts o;
    chart_opts_default(&o);
    o.title = "legend";
    data_image im;
    chart_frame f;
    chart_render(&im, &f, &o, s, 2);
    draw_rect r = f.legend;
    int mid_x = (f.px0 + f.px1) / 2, mid_y = (f.py0 + f.py1) / 2;
    t_ok(f.has_legend && r.x0 >= f.px0 && r.x1 < mid_x && r.y0 > mid_y && r.y1 <= f.py1,
         "three corners occupied: legend in the free bottom-left one ([%d,%d]-[%d,%d], plot [%d,%d]-[%d,%d])", r.x0,
         r.y0, r.x1, r.y1, f.px0, f.py0, f.px1, f.py1);
    t_ok(!hides_data(&f, s, 2, r, 1.0), "the legend covers no point of either line");
    /* sized by the real extents of its text (16 px on 900x500) */
    t_ok(r.x1 - r.x0 + 1 > draw_text_width("along the top", 16) && r.y1 - r.y0 + 1 > 2 * draw_text_height(16),
         "the legend box (%dx%d) holds its names in the chart's font", r.x1 - r.x0 + 1, r.y1 - r.y0 + 1);
    data_image_free(&im);

    /* all four corners occupied: outside the plot, on its right, the plot narrowed for it */
    chart_render(&im, &f, &o, s, 3);
    r = f.legend;
    t_ok(f.has_legend && r.x0 > f.px1 + 1 && r.x1 < im.w && r.y0 >= f.py0 - 1 && f.px1 - f.px0 > 500 &&
             !hides_data(&f, s, 3, r, 1.0),
         "four corners occupied: legend right of the plot ([%d,%d]-[%d,%d], plot to x = %d)", r.x0, r.y0, r.x1, r.y1,
         f.px1);
    data_image_free(&im);

    /* long segments crossing the corners between their end points count as much as points */
    double cx[2] = {-1, 5}, cy[2] = {5, 11}, dx[2] = {0, 10}, dy[2] = {0, 10}, ex[2] = {0, 10}, ey[2] = {10, 0};
    chart_series c[3] = {{"cross", cx, cy, 2}, {"diag up", dx, dy, 2}, {"diag down", ex, ey, 2}};
    o.title = NULL;
    chart_render(&im, &f, &o, c, 3);
    r = f.legend;
    t_ok(f.has_legend && !hides_data(&f, c, 3, r, 1.0),
         "two diagonals and a segment crossing the top-left corner: legend [%d,%d]-[%d,%d] hides none",
         r.x0, r.y0, r.x1, r.y1);
    data_image_free(&im);
}

static void test_zero_ap(void) {
    double x[5] = {100, 200, 300, 400, 500}, z[5] = {0, 0, 0, 0, 0};
    chart_series s[3] = {{"AP", x, z, 5}, {"AP50", x, z, 5}, {"AP75", x, z, 5}};
    chart_opts o;
    chart_opts_default(&o);
    o.y_min = 0;   /* as chart_run_ap */
    data_image im;
    chart_frame f;
    chart_render(&im, &f, &o, s, 3);
    double t[32];
    size_t n = chart_ticks(f.y_lo, f.y_hi, 0, t, 32);
    int has0 = 0;
    for (size_t i = 0; i < n; i++) has0 |= t[i] == 0;
    t_ok(f.y_lo == 0 && f.y_hi > 0 && f.y_hi <= 1.1 && n >= 5 && has0,
         "all-zero AP from 0: y [%g, %g], %zu ticks from %g to %g", f.y_lo, f.y_hi, n, n ? t[0] : NAN,
         n ? t[n - 1] : NAN);
    t_ok(colour_at(&im, &f, 300, 0, chart_color(2)), "the zero line is drawn at y = 0");
    data_image_free(&im);
    /* without a pin, a flat series is still centred */
    o.y_min = NAN;
    chart_render(&im, &f, &o, s, 1);
    t_ok(f.y_lo < 0 && f.y_hi > 0, "a flat series at 0 without a pin: y [%g, %g] around it", f.y_lo, f.y_hi);
    data_image_free(&im);
}

/* The title: anti-aliased text, tall enough to read, above the plot. */
static void test_title(void) {
    double x[3] = {0, 1, 2}, y[3] = {1, 2, 3};
    chart_series s = {NULL, x, y, 3};
    chart_opts o;
    chart_opts_default(&o);
    o.title = "Title of the chart";
    data_image im;
    chart_frame f;
    chart_render(&im, &f, &o, &s, 1);
    int top = im.h, bottom = -1;
    size_t grey = 0, ink = 0;
    for (int yy = 0; yy < f.py0 - 1; yy++)
        for (int xx = f.px0 + 50; xx < f.px1 - 50; xx++) {
            const uint8_t *p = im.rgb + 3 * ((size_t)yy * (size_t)im.w + (size_t)xx);
            if (p[0] == 255 && p[1] == 255 && p[2] == 255) continue;
            ink++;
            grey += p[0] > 0 && p[0] < 255;
            top = CD_MIN(top, yy);
            bottom = CD_MAX(bottom, yy);
        }
    t_ok(ink > 0 && bottom - top + 1 >= 14 && grey > ink / 4,
         "title on 900x500: ink %d px tall (T to f), %zu of %zu ink pixels anti-aliased", bottom - top + 1, grey, ink);
    data_image_free(&im);
}

static void test_smooth(void) {
    double y[6] = {4, 4, NAN, 4, 4, 4};
    chart_smooth(y, 6, 0.9);
    t_ok(y[0] == 4 && fabs(y[5] - 4) < 1e-12 && isnan(y[2]), "debiased EMA: a constant stays itself from the first point; NaN kept");
    double z[3] = {1, 3, 2};
    chart_smooth(z, 3, 0.5);   /* ema 0.5, 1.75, 1.875; debiased: /0.5, /0.75, /0.875 */
    t_ok(fabs(z[0] - 1) < 1e-12 && fabs(z[1] - 1.75 / 0.75) < 1e-12 && fabs(z[2] - 1.875 / 0.875) < 1e-12,
         "EMA values %g %g %g", z[0], z[1], z[2]);

    /* a zigzag 1, 3, 1, 3, ...: the smoothed line runs near 2, the raw one pale through 1 and 3 */
    enum { N = 400 };
    double x[N], v[N];
    for (int i = 0; i < N; i++) { x[i] = i; v[i] = i % 2 ? 3 : 1; }
    chart_series s = {"zigzag", x, v, N};
    chart_opts o;
    chart_opts_default(&o);
    o.smooth = CHART_SMOOTH_AUTO;   /* 400 points: w = 0.75 */
    data_image im;
    chart_frame f;
    chart_render(&im, &f, &o, &s, 1);
    int on = 1, raw = 0;
    for (int k = 0; k < 5; k++) on &= colour_at(&im, &f, 100 + 50 * k, 2, chart_color(0));
    double px, py;
    chart_to_pixel(&f, 201, 3, &px, &py);
    const uint8_t *p = im.rgb + 3 * ((size_t)lround(py) * (size_t)im.w + (size_t)lround(px));
    raw = p[0] > chart_color(0).r && p[2] > 200 && !(p[0] == 255 && p[1] == 255);   /* pale blue, not white */
    t_ok(on && raw, "smoothed zigzag drawn at y = 2 (at x = 100..300), the raw line pale at its peaks (%d,%d,%d)", p[0],
         p[1], p[2]);
    data_image_free(&im);
}

/* -------------------------------------------------------------------- CSV */

static void test_csv(void) {
    chart_csv c;
    const char *p = write_file("a.csv", "step, loss ,val\r\n"
                                        "1,2.5,\r\n"
                                        "2,2.0,7\n"
                                        "\n"
                                        "step,loss,val\n"           /* a writer that started again */
                                        "3,1.5,nan\n"
                                        "4,1e-,3\n"                 /* torn */
                                        "5,1.2\n"                   /* short */
                                        "6,1.0,1,9\n"               /* long */
                                        "7,0.9,0.5\n"
                                        "8,0.8,0");                 /* being written */
    int rc = chart_csv_read(&c, p);
    t_ok(rc == 0 && c.n_cols == 3 && !strcmp(c.names[1], "loss") && chart_csv_col(&c, "val") == 2 &&
             chart_csv_col(&c, "nope") == -1,
         "header read and trimmed: %zu columns", c.n_cols);
    t_ok(c.n_rows == 4 && c.partial_last == 1, "4 rows kept (%zu), the unterminated last line ignored (%d)", c.n_rows,
         c.partial_last);
    t_ok(c.n_bad == 3 && c.first_bad == 7, "3 malformed lines skipped (%zu), the first is line 7 (%zu)", c.n_bad,
         c.first_bad);
    double want[4][3] = {{1, 2.5, NAN}, {2, 2.0, 7}, {3, 1.5, NAN}, {7, 0.9, 0.5}};
    int ok = rc == 0;
    for (size_t r = 0; ok && r < 4; r++)
        for (size_t k = 0; k < 3; k++) {
            double g = c.v[r * 3 + k], w = want[r][k];
            ok &= isnan(w) ? isnan(g) : g == w;
        }
    t_ok(ok, "values, empty cells and 'nan' as NaN");
    char names[128];
    chart_csv_names(&c, names, sizeof names);
    t_ok(!strcmp(names, "step, loss, val"), "column list: %s", names);
    chart_csv_free(&c);

    /* a resumed run logs steps 4..5 again: the new rows win */
    p = write_file("r.csv", "step,loss\n1,10\n2,9\n3,8\n4,7\n5,6\n4,5.5\n5,5\n6,4\n");
    double *x = NULL, *y = NULL;
    size_t n = 0;
    rc = chart_csv_read(&c, p) || chart_csv_series(&c, "step", "loss", "step", &x, &y, &n);
    t_ok(rc == 0 && n == 6 && x[3] == 4 && y[3] == 5.5 && y[4] == 5 && x[5] == 6,
         "resumed run: steps 1..6 once each, the newer values of 4 and 5 (%zu points)", n);
    if (!rc) { free(x); free(y); }
    rc = chart_csv_series(&c, "step", "loss_giou", NULL, &x, &y, &n);
    t_ok(rc == -1 && strstr(cd_errbuf(), "r.csv") && strstr(cd_errbuf(), "no column 'loss_giou'") &&
             strstr(cd_errbuf(), "step, loss"),
         "missing column: \"%s\"", cd_errbuf());
    chart_csv_free(&c);

    rc = chart_csv_read(&c, "/nonexistent/metrics.csv");
    t_ok(rc == -1 && strstr(cd_errbuf(), "/nonexistent/metrics.csv"), "missing file: \"%s\"", cd_errbuf());
    p = write_file("e.csv", "");
    rc = chart_csv_read(&c, p);
    t_ok(rc == -1 && strstr(cd_errbuf(), "e.csv") && strstr(cd_errbuf(), "header"), "empty file: \"%s\"", cd_errbuf());
    p = write_file("d.csv", "step,loss,loss\n1,2,3\n");
    rc = chart_csv_read(&c, p);
    t_ok(rc == -1 && strstr(cd_errbuf(), "d.csv:1") && strstr(cd_errbuf(), "'loss' appears twice"),
         "duplicate column: \"%s\"", cd_errbuf());
    p = write_file("h.csv", "step,loss");   /* only a header, still being written */
    rc = chart_csv_read(&c, p);
    t_ok(rc == 0 && c.n_cols == 2 && c.n_rows == 0, "a header alone: 2 columns, 0 rows");
    if (!rc) chart_csv_free(&c);
}

/* ------------------------------------------------------------- run charts */

static const char *METRICS_HEAD = "step,epoch,lr,lr_backbone,loss,loss_ce,loss_bbox,loss_giou,class_error,"
                                  "cardinality_error,grad_norm,images_per_s,time_s\n";
static const char *EVAL_HEAD = "step,epoch,val_loss,AP,AP50,AP75,AP_small,AP_medium,AP_large,AR1,AR10,AR100,time_s\n";

static void make_run(const char *name, int with_eval, int drop_giou) {
    char path[256], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/metrics.csv", dir, name);
    FILE *f = fopen(path, "w");
    fputs(drop_giou ? "step,epoch,lr,loss,loss_ce,loss_bbox\n" : METRICS_HEAD, f);
    for (int s = 0; s < 200; s += 2) {
        double l = 5 * exp(-s / 60.0) + 0.3;
        if (drop_giou) snprintf(line, sizeof line, "%d,%d,1e-4,%g,%g,%g\n", s, s / 50, l, l / 2, l / 4);
        else snprintf(line, sizeof line, "%d,%d,1e-4,1e-5,%g,%g,%g,%g,50,3,1.2,40,%g\n", s, s / 50, l, l / 2, l / 4,
                      l / 5, s * 0.5);
        fputs(line, f);
    }
    fputs("200,4,1e-4,1e-5,0.4", f);   /* partial last line */
    fclose(f);
    if (!with_eval) return;
    snprintf(path, sizeof path, "%s/%s/eval.csv", dir, name);
    f = fopen(path, "w");
    fputs(EVAL_HEAD, f);
    for (int s = 50; s <= 200; s += 50) {
        snprintf(line, sizeof line, "%d,%d,%g,%g,%g,%g,-1,0.1,0.2,0.1,0.2,0.3,%g\n", s, s / 50, 2.0 - s / 200.0,
                 s / 600.0, s / 300.0, s / 500.0, s * 0.5);
        fputs(line, f);
    }
    fclose(f);
}

static void test_run_charts(void) {
    char run[256], png[256];
    make_run("run1", 1, 0);
    snprintf(run, sizeof run, "%s/run1", dir);
    snprintf(png, sizeof png, "%s/run1/loss.png", dir);
    int rc = chart_run_losses(run, png);
    data_image im = {0};
    if (!rc) rc = data_image_load(&im, png);
    t_ok(rc == 0 && im.w == 900 && im.h == 500, "chart_run_losses: %s %dx%d", rc ? cd_errbuf() : "loss.png", im.w,
         im.h);
    size_t counts[5];
    for (int k = 0; k < 5; k++) counts[k] = im.rgb ? count_colour(&im, chart_color((size_t)k)) : 0;
    t_ok(counts[0] > 300 && counts[1] > 300 && counts[2] > 300 && counts[3] > 300 && counts[4] > 20,
         "loss, loss_ce, loss_bbox, loss_giou and val_loss all drawn (%zu %zu %zu %zu %zu px)", counts[0], counts[1],
         counts[2], counts[3], counts[4]);
    data_image_free(&im);
    snprintf(png, sizeof png, "%s/run1/ap.png", dir);
    rc = chart_run_ap(run, png);
    t_ok(rc == 0 && data_image_load(&im, png) == 0 && im.w == 900 && count_colour(&im, chart_color(2)) > 100,
         "chart_run_ap: %s", rc ? cd_errbuf() : "ap.png with AP, AP50, AP75");
    data_image_free(&im);

    make_run("run2", 0, 0);   /* no eval.csv yet */
    snprintf(run, sizeof run, "%s/run2", dir);
    snprintf(png, sizeof png, "%s/run2/loss.png", dir);
    rc = chart_run_losses(run, png);
    t_ok(rc == 0, "chart_run_losses without eval.csv %s", rc ? cd_errbuf() : "");
    snprintf(png, sizeof png, "%s/run2/ap.png", dir);
    rc = chart_run_ap(run, png);
    t_ok(rc == -1 && strstr(cd_errbuf(), "run2/eval.csv"), "chart_run_ap without eval.csv: \"%s\"", cd_errbuf());

    make_run("run3", 0, 1);   /* an older writer: no loss_giou, no step... */
    snprintf(run, sizeof run, "%s/run3", dir);
    snprintf(png, sizeof png, "%s/run3/loss.png", dir);
    rc = chart_run_losses(run, png);
    t_ok(rc == -1 && strstr(cd_errbuf(), "run3/metrics.csv") && strstr(cd_errbuf(), "no column 'loss_giou'"),
         "missing column named: \"%s\"", cd_errbuf());
    snprintf(run, sizeof run, "%s/run4", dir);
    rc = chart_run_losses(run, png);
    t_ok(rc == -1 && strstr(cd_errbuf(), "run4/metrics.csv"), "missing run: \"%s\"", cd_errbuf());
    char name[64];
    chart_run_name("runs/shapes-1//", name, sizeof name);
    t_ok(!strcmp(name, "shapes-1"), "run name of 'runs/shapes-1//': %s", name);
}

/* --x epoch: the rows of an epoch spread over (e - 1, e], not stacked at e */
static void test_spread_epochs(void) {
    double x[7] = {1, 1, 1, 1, 2, 2, 3}, want[7] = {0.25, 0.5, 0.75, 1, 1.5, 2, 3};
    chart_spread_epochs(x, 7);
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= fabs(x[i] - want[i]) < 1e-12;
    t_ok(ok, "epochs of metrics rows spread over each epoch: %g %g %g %g | %g %g | %g", x[0], x[1], x[2], x[3], x[4],
         x[5], x[6]);
}

int main(void) {
    test_spread_epochs();
    if (!t_tmpdir(dir, sizeof dir, "cldetr_chart")) { perror("mkdtemp"); return 1; }
    test_ticks();
    test_render();
    test_legend();
    test_zero_ap();
    test_title();
    test_smooth();
    test_csv();
    test_run_charts();
    t_rmtree(dir);
    return t_done();
}
