/* Line charts as PNG, the CSV tables they read, and a run folder's loss and
 * AP charts: see include/cldetr/chart.h. */
#include "cldetr/chart.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cldetr/common.h"
#include "cldetr/draw.h"

/* -------------------------------------------------------------------- CSV */

/* [*s, *e) without surrounding blanks and '\r'. */
static void trim(const char **s, const char **e) {
    while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

/* Is the line [s, e) the header again (same names, blanks aside)? */
static int is_header(const chart_csv *c, const char *s, const char *e) {
    for (size_t k = 0; k < c->n_cols; k++) {
        const char *f = s;
        while (f < e && *f != ',') f++;
        const char *a = s, *b = f;
        trim(&a, &b);
        if ((size_t)(b - a) != strlen(c->names[k]) || memcmp(a, c->names[k], (size_t)(b - a))) return 0;
        if (f == e) return k + 1 == c->n_cols;
        s = f + 1;
    }
    return 0;
}

/* One data line into row[n_cols]: 0, or -1 if the field count or a cell is wrong. */
static int parse_row(const char *s, const char *e, double *row, size_t n_cols) {
    size_t k = 0;
    for (;;) {
        const char *c = s;
        while (c < e && *c != ',') c++;
        if (k >= n_cols) return -1;
        const char *a = s, *b = c;
        trim(&a, &b);
        if (a == b) {
            row[k] = NAN;
        } else {
            char cell[64];
            if (b - a >= (long)sizeof cell) return -1;
            memcpy(cell, a, (size_t)(b - a));
            cell[b - a] = '\0';
            char *end;
            row[k] = strtod(cell, &end);
            if (*end != '\0') return -1;   /* not a number (or a NUL byte inside) */
        }
        k++;
        if (c == e) break;
        s = c + 1;
    }
    return k == n_cols ? 0 : -1;
}

int chart_csv_read(chart_csv *c, const char *path) {
    memset(c, 0, sizeof *c);
    size_t len;
    char *buf = cd_read_file(path, &len);
    if (!buf) return -1;
    const char *p = buf, *end = buf + len;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;   /* a UTF-8 byte order mark */

    /* header: the first line, terminated or not */
    const char *h0 = p, *h1 = memchr(p, '\n', (size_t)(end - p));
    if (!h1) h1 = end;
    const char *a = h0, *b = h1;
    trim(&a, &b);
    if (a == b) {
        free(buf);
        return cd_seterr("%s: empty first line; expected a header of column names (step,epoch,loss,...)", path);
    }
    c->path = cd_xstrdup(path);
    for (const char *s = a;;) {
        const char *f = s;
        while (f < b && *f != ',') f++;
        const char *n0 = s, *n1 = f;
        trim(&n0, &n1);
        if (n0 == n1) {
            cd_seterr("%s:1: column %zu of the header has no name", path, c->n_cols + 1);
            goto fail;
        }
        char *name = cd_xmalloc((size_t)(n1 - n0) + 1);
        memcpy(name, n0, (size_t)(n1 - n0));
        name[n1 - n0] = '\0';
        if (chart_csv_col(c, name) >= 0) {
            cd_seterr("%s:1: column '%s' appears twice in the header", path, name);
            free(name);
            goto fail;
        }
        c->names = cd_xrealloc(c->names, (c->n_cols + 1) * sizeof *c->names);
        c->names[c->n_cols++] = name;
        if (f == b) break;
        s = f + 1;
    }

    size_t cap = 0, line_no = 1;
    for (const char *s = h1 < end ? h1 + 1 : end; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        line_no++;
        if (!nl) {   /* being written: the last line without its newline */
            c->partial_last = 1;
            break;
        }
        const char *l0 = s, *l1 = nl;
        s = nl + 1;
        trim(&l0, &l1);
        if (l0 == l1 || is_header(c, l0, l1)) continue;
        if (c->n_rows == cap) {
            cap = cap ? 2 * cap : 256;
            c->v = cd_xrealloc(c->v, cap * c->n_cols * sizeof *c->v);
        }
        if (parse_row(l0, l1, c->v + c->n_rows * c->n_cols, c->n_cols)) {
            if (!c->n_bad) c->first_bad = line_no;
            c->n_bad++;
            continue;
        }
        c->n_rows++;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    chart_csv_free(c);
    return -1;
}

void chart_csv_free(chart_csv *c) {
    for (size_t i = 0; i < c->n_cols; i++) free(c->names[i]);
    free(c->names);
    free(c->v);
    free(c->path);
    memset(c, 0, sizeof *c);
}

int chart_csv_col(const chart_csv *c, const char *name) {
    for (size_t i = 0; i < c->n_cols; i++)
        if (!strcmp(c->names[i], name)) return (int)i;
    return -1;
}

void chart_csv_names(const chart_csv *c, char *buf, size_t size) {
    size_t at = 0;
    if (size) buf[0] = '\0';
    for (size_t i = 0; i < c->n_cols && at + 1 < size; i++) {
        int k = snprintf(buf + at, size - at, "%s%s", i ? ", " : "", c->names[i]);
        if (k < 0) break;
        at += (size_t)k;
    }
}

void chart_spread_epochs(double *x, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && x[j] == x[i]) j++;
        double e = x[i];
        for (size_t k = i; k < j; k++) x[k] = e - 1 + (double)(k - i + 1) / (double)(j - i);
        i = j;
    }
}

int chart_csv_series(const chart_csv *c, const char *x_col, const char *y_col, const char *step_col, double **x,
                     double **y, size_t *n) {
    int xi = chart_csv_col(c, x_col), yi = chart_csv_col(c, y_col), si = step_col ? chart_csv_col(c, step_col) : -1;
    if (xi < 0 || yi < 0) {
        char names[1024];
        chart_csv_names(c, names, sizeof names);
        return cd_seterr("%s: no column '%s' (columns: %s)", c->path, xi < 0 ? x_col : y_col, names);
    }
    size_t m = 0, cap = c->n_rows ? c->n_rows : 1;
    double *xs = cd_xmalloc(cap * sizeof *xs), *ys = cd_xmalloc(cap * sizeof *ys), *st = cd_xmalloc(cap * sizeof *st);
    for (size_t r = 0; r < c->n_rows; r++) {
        const double *row = c->v + r * c->n_cols;
        double s = si >= 0 ? row[si] : NAN;
        if (!isnan(s))   /* a resumed run logs these steps again: the new rows win */
            while (m > 0 && !isnan(st[m - 1]) && st[m - 1] >= s) m--;
        xs[m] = row[xi];
        ys[m] = row[yi];
        st[m] = s;
        m++;
    }
    free(st);
    *x = xs;
    *y = ys;
    *n = m;
    return 0;
}

/* ------------------------------------------------------------------ ticks */

/* Linear ticks: the step m x 10^e giving 5-8 ticks in [lo, hi], with the
 * roundest mantissa m that does. In order of roundness: 1, 2, 5 (enough for
 * ~70% of ranges), 2.5, 4, 1.5, 6; with these, some step always gives 5-8
 * (checked over random ranges; steps only 2x apart cannot guarantee it). */
static double linear_step(double lo, double hi) {
    static const double mant[7] = {1, 2, 5, 2.5, 4, 1.5, 6};
    double range = hi - lo, best = range, best_score = INFINITY;
    int e0 = (int)floor(log10(range));
    for (int e = e0 - 2; e <= e0 + 1; e++)
        for (int k = 0; k < 7; k++) {
            double step = mant[k] * pow(10, e);
            double count = floor(hi / step + 1e-9) - ceil(lo / step - 1e-9) + 1;
            double off = count < 5 ? 5 - count : count > 8 ? count - 8 : 0;
            double score = 10 * off + 0.1 * k + 0.01 * fabs(count - 6);
            if (score < best_score) { best_score = score; best = step; }
        }
    return best;
}

static size_t linear_ticks(double lo, double hi, double *t, size_t max) {
    double step = linear_step(lo, hi);
    size_t n = 0;
    for (double k = ceil(lo / step - 1e-9); k <= floor(hi / step + 1e-9) && n < max; k++) {
        double v = k * step;
        t[n++] = fabs(v) < step * 1e-9 ? 0 : v;   /* no "-0" nor 1e-17 */
    }
    return n;
}

/* Log ticks from mantissa set ms (nm of them) in each decade, every `every`-th decade. */
static size_t log_ticks_set(double lo, double hi, const double *ms, int nm, int every, double *t, size_t max) {
    size_t n = 0;
    int d0 = (int)floor(log10(lo)) - 1, d1 = (int)ceil(log10(hi)) + 1;
    for (int d = d0; d <= d1; d++) {
        if (every > 1 && d % every) continue;
        for (int k = 0; k < nm; k++) {
            double v = ms[k] * pow(10, d);
            if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9)) continue;
            if (t && n < max) t[n] = v;
            n++;
        }
    }
    return n;
}

size_t chart_ticks(double lo, double hi, int log, double *t, size_t max) {
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo) || !max) return 0;
    if (!log) return linear_ticks(lo, hi, t, max);
    if (!(lo > 0)) return 0;
    /* the sparsest set of log ticks with 5-8 in range: decades (every k-th
     * when there are many), 1-3, 1-2-5, 1-2-3-5, 1..9 in each decade; else plain
     * linear ticks (a range under a decade or so); else the set closest to 5-8 */
    static const double m1[1] = {1}, m13[2] = {1, 3}, m125[3] = {1, 2, 5}, m1235[4] = {1, 2, 3, 5},
                        m19[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static const struct { const double *m; int n; } sets[5] = {{m1, 1}, {m13, 2}, {m125, 3}, {m1235, 4}, {m19, 9}};
    int every = 1;
    while (log_ticks_set(lo, hi, m1, 1, every, NULL, 0) > 8) every++;
    int best = -1;
    size_t best_off = (size_t)-1;
    for (int k = 0; k < 5; k++) {
        size_t c = log_ticks_set(lo, hi, sets[k].m, sets[k].n, k ? 1 : every, NULL, 0);
        size_t off = c < 5 ? 5 - c : c > 8 ? c - 8 : 0;
        if (!off) return CD_MIN(log_ticks_set(lo, hi, sets[k].m, sets[k].n, k ? 1 : every, t, max), max);
        if (off < best_off) { best_off = off; best = k; }
    }
    if (hi / lo < 20) return linear_ticks(lo, hi, t, max);
    return CD_MIN(log_ticks_set(lo, hi, sets[best].m, sets[best].n, best ? 1 : every, t, max), max);
}

void chart_tick_label(char *buf, size_t size, double v, double step) {
    if (v == 0) { snprintf(buf, size, "0"); return; }
    if (step <= 0) { snprintf(buf, size, "%g", v); return; }
    double mag = fmax(fabs(v), step);
    /* enough decimals to tell ticks step apart: 0.25 needs 2 */
    if (mag >= 1e6 || step < 1e-4) {   /* 1.05e-04: the decimals of step in units of v's exponent */
        double u = step / pow(10, floor(log10(fabs(v))));
        int dec = 0;
        while (dec < 6 && fabs(u * pow(10, dec) - round(u * pow(10, dec))) > 1e-6 * u * pow(10, dec)) dec++;
        snprintf(buf, size, "%.*e", dec, v);
        return;
    }
    int dec = 0;
    while (dec < 6 && fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-6 * step * pow(10, dec)) dec++;
    snprintf(buf, size, "%.*f", dec, v);
}

/* ----------------------------------------------------------------- charts */

void chart_smooth(double *y, size_t n, double w) {
    double ema = 0, wk = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) continue;
        ema = w * ema + (1 - w) * y[i];
        wk *= w;
        y[i] = ema / (1 - wk);
    }
}

void chart_opts_default(chart_opts *o) {
    memset(o, 0, sizeof *o);
    o->width = 900;
    o->height = 500;
    o->y_min = NAN;
    o->y_max = NAN;
}

draw_rgb chart_color(size_t i) { return draw_palette((int)(i % 100000)); }

void chart_to_pixel(const chart_frame *f, double x, double y, double *px, double *py) {
    if (f->log_y) y = y > 0 ? log10(y) : NAN;
    *px = f->px0 + (x - f->x_lo) / (f->x_hi - f->x_lo) * (f->px1 - f->px0);
    *py = f->py1 - (y - f->y_lo) / (f->y_hi - f->y_lo) * (f->py1 - f->py0);
}

/* Is point (x, y) drawn on this chart? */
static int point_ok(const chart_opts *o, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return 0;
    if (o->log_y && !(y > 0)) return 0;
    if (y < o->y_min || y > o->y_max) return 0;   /* outside a pinned end (false for NaN pins) */
    return 1;
}

/* Grow a linear range to the next ticks outside it when that adds at most 5% of it. */
static void loosen(double *lo, double *hi) {
    double step = linear_step(*lo, *hi), range = *hi - *lo;
    double l = floor(*lo / step + 1e-9) * step, h = ceil(*hi / step - 1e-9) * step;
    if (*lo - l <= 0.05 * range) *lo = l;
    if (h - *hi <= 0.05 * range) *hi = h;
}

/* Length of the segment (ax, ay)-(bx, by) inside the rectangle [x0, x1] x
 * [y0, y1] (Liang-Barsky clipping): 0 for a segment that touches it or a
 * point (a = b) inside it, -1 for one that misses it. */
static double clip_len(double ax, double ay, double bx, double by, double x0, double y0, double x1, double y1) {
    double dx = bx - ax, dy = by - ay, t0 = 0, t1 = 1;
    double p[4] = {-dx, dx, -dy, dy}, q[4] = {ax - x0, x1 - ax, ay - y0, y1 - ay};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return -1;   /* parallel to this edge and outside it */
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0) {
            if (r > t1) return -1;
            if (r > t0) t0 = r;
        } else {
            if (r < t0) return -1;
            if (r < t1) t1 = r;
        }
    }
    return (t1 - t0) * hypot(dx, dy);
}

/* How much of the drawn lines lies in the rectangle [x0, x1] x [y0, y1]: for
 * every segment between consecutive drawn points (and every series' first
 * point) that meets it, 1 plus the length inside. 0: the rectangle hides no
 * data. Series whose px[k] or py[k] is NULL are skipped. */
static double data_under(double *const *px, double *const *py, const size_t *n, size_t n_series, double x0,
                         double y0, double x1, double y1) {
    double score = 0;
    for (size_t k = 0; k < n_series; k++) {
        if (!px[k] || !py[k]) continue;
        size_t prev = n[k];
        for (size_t i = 0; i < n[k]; i++) {
            if (isnan(px[k][i]) || isnan(py[k][i])) continue;
            size_t a = prev < n[k] ? prev : i;
            double len = clip_len(px[k][a], py[k][a], px[k][i], py[k][i], x0, y0, x1, y1);
            if (len >= 0) score += 1 + len;
            prev = i;
        }
    }
    return score;
}

/* A degenerate range [v, v] made visible: grown away from a pinned end (an
 * all-zero AP from 0 gives 0..1), else both ways. */
static void widen(double *lo, double *hi, int pin_lo, int pin_hi) {
    if (*hi > *lo) return;
    double d = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 1;
    if (pin_lo && !pin_hi) *hi = *lo + d;
    else if (pin_hi && !pin_lo) *lo = *hi - d;
    else {
        *lo -= d;
        *hi += d;
    }
}

#define MAX_TICKS 32

/* A legend entry cut to max_w pixels: "...end" (the end of a path tells runs apart). */
static void legend_name(char *buf, size_t size, const char *name, int max_w, int fs) {
    size_t n = strlen(name);
    snprintf(buf, size, "%s", name);
    for (size_t cut = 1; cut < n && (draw_text_width(buf, fs) > max_w || strlen(buf) + 1 >= size); cut++) {
        while (cut < n && (name[cut] & 0xC0) == 0x80) cut++;   /* not inside a UTF-8 character */
        snprintf(buf, size, "...%s", name + cut);
    }
}

/* Series in pixels: bx, by (NaN where a point is not drawn), bm[k] points
 * drawn, and sm[k] the smoothed pixel y (NULL when the series is drawn raw). */
typedef struct {
    double **bx, **by, **sm;
    size_t *bn, *bm;
} projected;

static void project(projected *p, const chart_frame *f, const chart_opts *o, const chart_series *s, size_t n_series) {
    for (size_t k = 0; k < n_series; k++) {
        p->bn[k] = s[k].n;
        p->bm[k] = 0;
        p->bx[k] = cd_xrealloc(p->bx[k], (s[k].n ? s[k].n : 1) * sizeof **p->bx);
        p->by[k] = cd_xrealloc(p->by[k], (s[k].n ? s[k].n : 1) * sizeof **p->by);
        for (size_t i = 0; i < s[k].n; i++) {
            if (!point_ok(o, s[k].x[i], s[k].y[i])) {
                p->bx[k][i] = p->by[k][i] = NAN;
                continue;
            }
            chart_to_pixel(f, s[k].x[i], s[k].y[i], &p->bx[k][i], &p->by[k][i]);
            p->bm[k]++;
        }
        double w = o->smooth < 0 ? (p->bm[k] > 200 ? 1 - 100.0 / (double)p->bm[k] : 0) : o->smooth;
        free(p->sm[k]);
        p->sm[k] = NULL;
        if (w > 0 && w < 1 && p->bm[k] > 1) {
            /* pixel y is affine in the axis value (log10 y on a log axis), so
             * smoothing it is smoothing on the axis */
            p->sm[k] = cd_xmalloc(s[k].n * sizeof **p->sm);
            memcpy(p->sm[k], p->by[k], s[k].n * sizeof **p->sm);
            chart_smooth(p->sm[k], s[k].n, w);
        }
    }
}

/* How much data the rectangle hides: the raw lines and the smoothed ones. */
static double projected_under(const projected *p, size_t n_series, double x0, double y0, double x1, double y1) {
    return data_under(p->bx, p->by, p->bn, n_series, x0, y0, x1, y1) +
           data_under(p->bx, p->sm, p->bn, n_series, x0, y0, x1, y1);
}

void chart_render(data_image *im, chart_frame *frame, const chart_opts *o, const chart_series *s, size_t n_series) {
    chart_opts def;
    if (!o) { chart_opts_default(&def); o = &def; }
    int W = o->width > 0 ? o->width : 900, H = o->height > 0 ? o->height : 500;
    W = CD_MAX(W, 200);
    H = CD_MAX(H, 150);
    int sc = W >= 600 && H >= 300 ? 2 : 1;         /* gaps and tick marks */
    double lw = sc == 2 ? 2.0 : 1.5;               /* line width */
    /* text sizes (line heights, pixels): matplotlib's 10 and 12 pt at 100 dpi on 900 x 500, scaled with the chart */
    double u = fmin(W / 900.0, H / 500.0);
    int fs_tick = CD_MAX(10, (int)lround(16 * u)), fs_axis = CD_MAX(11, (int)lround(17 * u)),
        fs_title = CD_MAX(12, (int)lround(20 * u)), fs_leg = fs_tick;
    const draw_rgb ink = {40, 40, 40}, grid = {225, 225, 225}, frame_c = {90, 90, 90};
    draw_image_new(im, W, H, DRAW_WHITE);

    /* data ranges */
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    size_t n_pts = 0;
    for (size_t k = 0; k < n_series; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!point_ok(o, x, y)) continue;
            xmin = fmin(xmin, x);
            xmax = fmax(xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
            n_pts++;
        }
    chart_frame f = {0};
    f.log_y = o->log_y;
    f.has_data = n_pts > 0;
    int pin_lo = isfinite(o->y_min) && (!o->log_y || o->y_min > 0), pin_hi = isfinite(o->y_max) && (!o->log_y || o->y_max > 0);
    if (!f.has_data) { xmin = 0; xmax = 1; ymin = o->log_y ? 1 : 0; ymax = o->log_y ? 10 : 1; }
    if (pin_lo) ymin = o->y_min;
    if (pin_hi) ymax = o->y_max;
    widen(&xmin, &xmax, 0, 0);
    if (f.has_data) loosen(&xmin, &xmax);
    double yt[MAX_TICKS], xt[MAX_TICKS];
    size_t nyt, nxt;
    if (o->log_y) {
        if (!(ymax > ymin)) { ymin /= 2; ymax *= 2; }
        double l0 = log10(ymin), l1 = log10(ymax), pad = 0.03 * (l1 - l0);
        f.y_lo = pin_lo ? l0 : l0 - pad;
        f.y_hi = pin_hi ? l1 : l1 + pad;
        nyt = chart_ticks(pow(10, f.y_lo), pow(10, f.y_hi), 1, yt, MAX_TICKS);
    } else {
        int flat = !(ymax > ymin);
        widen(&ymin, &ymax, pin_lo, pin_hi);
        /* lines clear of the frame; a flat series's made-up range is not padded */
        double pad = f.has_data && !flat ? 0.04 * (ymax - ymin) : 0;
        f.y_lo = pin_lo ? ymin : ymin - pad;
        f.y_hi = pin_hi ? ymax : ymax + pad;
        nyt = chart_ticks(f.y_lo, f.y_hi, 0, yt, MAX_TICKS);
    }
    f.x_lo = xmin;
    f.x_hi = xmax;
    nxt = chart_ticks(xmin, xmax, 0, xt, MAX_TICKS);
    if (!f.has_data) nxt = nyt = 0;
    /* linear labels show as many decimals as the step needs; log ones are %g */
    double ystep = !o->log_y && nyt > 1 ? yt[1] - yt[0] : 0, xstep = nxt > 1 ? xt[1] - xt[0] : 1;

    /* layout: title on top, y title and tick labels on the left, x tick
     * labels and title under the plot */
    int th_tick = draw_text_height(fs_tick), th_axis = draw_text_height(fs_axis), th_title = draw_text_height(fs_title);
    int th_leg = draw_text_height(fs_leg), gap = 4 * sc;
    char lab[64];
    int ylab_w = 0;
    for (size_t i = 0; i < nyt; i++) {
        chart_tick_label(lab, sizeof lab, yt[i], ystep);
        ylab_w = CD_MAX(ylab_w, draw_text_width(lab, fs_tick));
    }
    int has_title = o->title && o->title[0], has_xl = o->x_label && o->x_label[0], has_yl = o->y_label && o->y_label[0];
    f.py0 = has_title ? gap * 2 + th_title + gap * 2 : CD_MAX(gap * 2, th_tick / 2 + gap);
    f.px0 = gap * 2 + (has_yl ? th_axis + gap * 2 : 0) + ylab_w + gap + 3 * sc;
    f.py1 = H - 1 - (gap * 2 + th_tick + gap + 3 * sc + (has_xl ? th_axis + gap * 2 : 0));
    int last_w = 0;
    if (nxt) {
        chart_tick_label(lab, sizeof lab, xt[nxt - 1], xstep);
        last_w = draw_text_width(lab, fs_tick);
    }
    f.px1 = W - 1 - CD_MAX(gap * 4, last_w / 2 + gap);

    /* series in pixels, kept for the legend */
    size_t ns1 = n_series ? n_series : 1;
    projected pr = {cd_xcalloc(ns1, sizeof(double *)), cd_xcalloc(ns1, sizeof(double *)),
                    cd_xcalloc(ns1, sizeof(double *)), cd_xcalloc(ns1, sizeof(size_t)),
                    cd_xcalloc(ns1, sizeof(size_t))};
    project(&pr, &f, o, s, n_series);

    /* legend: in the corner of the plot that hides the least data (nothing,
     * if one can), else right of the plot, which is narrowed for it */
    size_t n_leg = 0;
    int name_w = 0, max_name_w = CD_MIN((f.px1 - f.px0) / 2, W / 4);
    char leg_name[256];
    for (size_t k = 0; k < n_series; k++)
        if (s[k].name) {
            n_leg++;
            legend_name(leg_name, sizeof leg_name, s[k].name, max_name_w, fs_leg);
            name_w = CD_MAX(name_w, draw_text_width(leg_name, fs_leg));
        }
    int row = th_leg + sc * 2, sample = 14 * sc;
    int lw_box = gap + sample + gap + name_w + gap * 2, lh_box = (int)n_leg * row - sc * 2 + gap * 2;
    int leg_x = 0, leg_y = 0;
    if (n_leg && f.has_data) {
        int inset = 3 * sc;
        int cx[4] = {f.px1 - inset - lw_box, f.px0 + inset, f.px1 - inset - lw_box, f.px0 + inset};
        int cy[4] = {f.py0 + inset, f.py0 + inset, f.py1 - inset - lh_box, f.py1 - inset - lh_box};
        int best = 0;
        double best_score = INFINITY;
        for (int c = 0; c < 4; c++) {
            /* grown by the line width: a line along its edge is hidden too */
            double score = projected_under(&pr, n_series, cx[c] - lw, cy[c] - lw, cx[c] + lw_box - 1 + lw,
                                           cy[c] + lh_box - 1 + lw);
            if (score < best_score) { best_score = score; best = c; }
        }
        leg_x = cx[best];
        leg_y = cy[best];
        int out_x = W - gap * 2 - lw_box, out_px1 = out_x - gap * 3;
        if (best_score > 0 && out_px1 - f.px0 >= (W - f.px0) / 2) {   /* outside, when the plot keeps half its width */
            f.px1 = CD_MIN(f.px1, out_px1);
            project(&pr, &f, o, s, n_series);
            leg_x = out_x;
            leg_y = f.py0;
        }
        f.has_legend = 1;
        f.legend = (draw_rect){leg_x, leg_y, leg_x + lw_box - 1, leg_y + lh_box - 1};
    }

    /* grid */
    double px, py;
    for (size_t i = 0; i < nyt; i++) {
        chart_to_pixel(&f, f.x_lo, yt[i], &px, &py);
        draw_fill_rect(im, f.px0, (int)lround(py), f.px1, (int)lround(py), grid);
    }
    for (size_t i = 0; i < nxt; i++) {
        chart_to_pixel(&f, xt[i], f.y_lo, &px, &py);
        draw_fill_rect(im, (int)lround(px), f.py0, (int)lround(px), f.py1, grid);
    }

    /* series, in order (the first under the others); smoothed: the raw lines
     * pale first, then the smoothed ones */
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < n_series; k++) {
            draw_rgb c = chart_color(k), pale = {(uint8_t)(c.r * 0.3 + 178.5), (uint8_t)(c.g * 0.3 + 178.5),
                                                 (uint8_t)(c.b * 0.3 + 178.5)};
            if (pass == 0 && pr.sm[k]) {
                draw_polyline(im, pr.bx[k], pr.by[k], s[k].n, pale, lw / 2 < 1 ? 1 : lw / 2);
            } else if (pass == 1 && pr.sm[k]) {
                draw_polyline(im, pr.bx[k], pr.sm[k], s[k].n, c, lw);
            } else if (pass == 1 && pr.bm[k] == 1) {
                for (size_t i = 0; i < s[k].n; i++)
                    if (!isnan(pr.bx[k][i])) draw_disc(im, pr.bx[k][i], pr.by[k][i], 2 * lw, c);
            } else if (pass == 1 && pr.bm[k] > 1) {
                draw_polyline(im, pr.bx[k], pr.by[k], s[k].n, c, lw);
            }
        }

    /* frame, ticks and their labels */
    draw_box(im, f.px0 - 1, f.py0 - 1, f.px1 + 1, f.py1 + 1, frame_c, 1);
    for (size_t i = 0; i < nyt; i++) {
        chart_to_pixel(&f, f.x_lo, yt[i], &px, &py);
        int y = (int)lround(py);
        draw_fill_rect(im, f.px0 - 1 - 3 * sc, y, f.px0 - 2, y + (sc - 1), frame_c);
        chart_tick_label(lab, sizeof lab, yt[i], ystep);
        draw_text(im, f.px0 - 1 - 3 * sc - gap - draw_text_width(lab, fs_tick), y + (sc - 1) / 2 - th_tick / 2, lab,
                  ink, fs_tick);
    }
    /* x labels: every other one when they would crowd */
    size_t every = 1;
    int max_xw = 0;
    for (size_t i = 0; i < nxt; i++) {
        chart_tick_label(lab, sizeof lab, xt[i], xstep);
        max_xw = CD_MAX(max_xw, draw_text_width(lab, fs_tick));
    }
    if (nxt > 1) {
        double spacing = (double)(f.px1 - f.px0) * xstep / (f.x_hi - f.x_lo);
        while (every < nxt && spacing * (double)every < max_xw + 3 * gap) every++;
    }
    for (size_t i = 0; i < nxt; i++) {
        chart_to_pixel(&f, xt[i], f.y_lo, &px, &py);
        int x = (int)lround(px);
        draw_fill_rect(im, x, f.py1 + 2, x + (sc - 1), f.py1 + 1 + 3 * sc, frame_c);
        if (i % every) continue;
        chart_tick_label(lab, sizeof lab, xt[i], xstep);
        draw_text(im, x + (sc - 1) / 2 - draw_text_width(lab, fs_tick) / 2, f.py1 + 2 + 3 * sc + gap, lab, ink,
                  fs_tick);
    }

    /* titles */
    if (has_title) {
        int tw = draw_text_width(o->title, fs_title);
        int tx = CD_MAX((f.px0 + f.px1) / 2 - tw / 2, gap);
        draw_text(im, tx, gap * 2, o->title, DRAW_BLACK, fs_title);
    }
    if (has_xl)
        draw_text(im, (f.px0 + f.px1) / 2 - draw_text_width(o->x_label, fs_axis) / 2, H - 1 - gap * 2 - th_axis,
                  o->x_label, ink, fs_axis);
    if (has_yl)
        draw_text_up(im, gap * 2, (f.py0 + f.py1) / 2 - draw_text_width(o->y_label, fs_axis) / 2, o->y_label, ink,
                     fs_axis);

    if (!f.has_data) {
        const char *msg = "no data";
        int fs = fs_title * 3 / 2;
        draw_text(im, (f.px0 + f.px1) / 2 - draw_text_width(msg, fs) / 2,
                  (f.py0 + f.py1) / 2 - draw_text_height(fs) / 2, msg, (draw_rgb){120, 120, 120}, fs);
    }

    if (f.has_legend) {
        draw_rect r = f.legend;
        draw_fill_rect(im, r.x0, r.y0, r.x1, r.y1, DRAW_WHITE);
        draw_box(im, r.x0, r.y0, r.x1, r.y1, (draw_rgb){190, 190, 190}, 1);
        int y = r.y0 + gap;
        for (size_t k = 0; k < n_series; k++) {
            if (!s[k].name) continue;
            double ly = y + th_leg / 2.0;
            draw_line(im, r.x0 + gap, ly, r.x0 + gap + sample, ly, chart_color(k), lw + 1);
            legend_name(leg_name, sizeof leg_name, s[k].name, max_name_w, fs_leg);
            draw_text(im, r.x0 + gap + sample + gap, y, leg_name, ink, fs_leg);
            y += row;
        }
    }
    for (size_t k = 0; k < n_series; k++) {
        free(pr.bx[k]);
        free(pr.by[k]);
        free(pr.sm[k]);
    }
    free(pr.bx);
    free(pr.by);
    free(pr.sm);
    free(pr.bn);
    free(pr.bm);
    if (frame) *frame = f;
}

int chart_write_png(const char *path, const chart_opts *o, const chart_series *s, size_t n_series) {
    data_image im;
    chart_render(&im, NULL, o, s, n_series);
    int rc = data_write_png(path, &im);
    data_image_free(&im);
    return rc;
}

/* ------------------------------------------------------------ run charts */

void chart_run_name(const char *run_dir, char *buf, size_t size) {
    size_t n = strlen(run_dir);
    while (n > 1 && run_dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && run_dir[b - 1] != '/') b--;
    snprintf(buf, size, "%.*s", (int)(n - b), run_dir + b);
}

/* Read RUN/name; optional = 1: a file that does not exist gives 1 (not an error). */
static int read_run_csv(chart_csv *c, const char *run_dir, const char *name, int optional) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", run_dir, name);
    struct stat st;
    if (optional && stat(path, &st) != 0 && errno == ENOENT) return 1;
    return chart_csv_read(c, path);
}

/* Every name in cols must be a column of c: else -1 naming all that are missing. */
static int require_cols(const chart_csv *c, const char *const *cols, size_t n) {
    char missing[512] = "", names[1024];
    size_t n_missing = 0;
    for (size_t i = 0; i < n; i++)
        if (chart_csv_col(c, cols[i]) < 0) {
            size_t at = strlen(missing);
            snprintf(missing + at, sizeof missing - at, "%s'%s'", n_missing ? ", " : "", cols[i]);
            n_missing++;
        }
    if (!n_missing) return 0;
    chart_csv_names(c, names, sizeof names);
    return cd_seterr("%s: no column%s %s (columns: %s)", c->path, n_missing > 1 ? "s" : "", missing, names);
}

typedef struct {
    chart_series s[8];
    double *mem[16];
    size_t n, n_mem;
} series_set;

static int add_series(series_set *ss, const chart_csv *c, const char *col, const char *label) {
    double *x, *y;
    size_t n;
    if (chart_csv_series(c, "step", col, "step", &x, &y, &n)) return -1;
    ss->mem[ss->n_mem++] = x;
    ss->mem[ss->n_mem++] = y;
    ss->s[ss->n++] = (chart_series){label, x, y, n};
    return 0;
}

static void series_set_free(series_set *ss) {
    for (size_t i = 0; i < ss->n_mem; i++) free(ss->mem[i]);
}

/* A run chart: "RUN: what" as its title, against step. */
static int write_run_chart(const char *run_dir, const char *what, chart_opts *o, const series_set *ss,
                           const char *png_path) {
    char name[256], title[300];
    chart_run_name(run_dir, name, sizeof name);
    snprintf(title, sizeof title, "%s: %s", name, what);
    o->title = title;
    o->x_label = "step";
    return chart_write_png(png_path, o, ss->s, ss->n);
}

int chart_run_losses(const char *run_dir, const char *png_path) {
    static const char *const terms[] = {"step", "loss", "loss_ce", "loss_bbox", "loss_giou"};
    chart_csv m, e;
    if (read_run_csv(&m, run_dir, "metrics.csv", 0)) return -1;
    if (require_cols(&m, terms, CD_ARRAY_LEN(terms))) { chart_csv_free(&m); return -1; }
    int has_eval = read_run_csv(&e, run_dir, "eval.csv", 1);
    if (has_eval < 0) { chart_csv_free(&m); return -1; }
    has_eval = has_eval == 0;
    series_set ss = {0};
    int rc = 0;
    for (size_t i = 1; i < CD_ARRAY_LEN(terms) && !rc; i++) rc = add_series(&ss, &m, terms[i], terms[i]);
    if (!rc && has_eval && chart_csv_col(&e, "val_loss") >= 0 && chart_csv_col(&e, "step") >= 0)
        rc = add_series(&ss, &e, "val_loss", "val_loss");
    if (!rc) {
        chart_opts o;
        chart_opts_default(&o);
        o.y_label = "loss (log scale)";
        o.log_y = 1;
        o.smooth = CHART_SMOOTH_AUTO;
        rc = write_run_chart(run_dir, "losses", &o, &ss, png_path);
    }
    series_set_free(&ss);
    chart_csv_free(&m);
    if (has_eval) chart_csv_free(&e);
    return rc;
}

int chart_run_ap(const char *run_dir, const char *png_path) {
    static const char *const cols[] = {"step", "AP", "AP50", "AP75"};
    chart_csv e;
    if (read_run_csv(&e, run_dir, "eval.csv", 0)) return -1;
    if (require_cols(&e, cols, CD_ARRAY_LEN(cols))) { chart_csv_free(&e); return -1; }
    series_set ss = {0};
    int rc = 0;
    for (size_t i = 1; i < CD_ARRAY_LEN(cols) && !rc; i++) rc = add_series(&ss, &e, cols[i], cols[i]);
    if (!rc) {
        chart_opts o;
        chart_opts_default(&o);
        o.y_label = "AP";
        o.y_min = 0;   /* also drops pycocotools' -1 (no ground truth) */
        rc = write_run_chart(run_dir, "COCO AP on the validation set", &o, &ss, png_path);
    }
    series_set_free(&ss);
    chart_csv_free(&e);
    return rc;
}
