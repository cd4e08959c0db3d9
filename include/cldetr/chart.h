/* Line charts as PNG images, and the charts of a run folder.
 *
 * A chart: white background, axes with 5-8 "nice" ticks (1, 2 or 5 x 10^k
 * apart when those give 5-8, else 2.5, 4, 1.5 or 6 x 10^k; on a log axis
 * decades, or 1-2-5 within them), tick labels, axis titles, a
 * title, and a legend: in the first corner of the plot (top right, top left,
 * bottom right, bottom left) that hides no line, measured with the text's
 * real extents; when every corner hides some, right of the plot (narrowed
 * for it), or where it hides least if that would halve the plot. Text is
 * anti-aliased TrueType (draw.h) at sizes that grow with the chart: on
 * 900 x 500, 16 px tick labels and legend, 17 px axis titles, a 20 px title.
 * A y range without extent (every value equal) is grown away from a pinned
 * end (all-zero AP from 0: 0 to 1), else both ways.
 * Series are anti-aliased 2-pixel lines (at 900 px wide) in matplotlib's
 * tab10 colours; points with a NaN or infinite coordinate (or y <= 0 on a log
 * axis) are skipped and the line joins their neighbours; a series of one
 * point is a dot. A chart without any drawable point says "no data".
 *
 * Run charts read RUN/metrics.csv (written by the training loop: step, epoch,
 * lr, lr_backbone, loss, loss_ce, loss_bbox, loss_giou, class_error,
 * cardinality_error, grad_norm, images_per_s, time_s) and RUN/eval.csv (step,
 * epoch, val_loss, AP, AP50, AP75, AP_small, AP_medium, AP_large, AR1, AR10,
 * AR100, time_s). */
#ifndef CLDETR_CHART_H
#define CLDETR_CHART_H

#include <stddef.h>

#include "cldetr/data.h"
#include "cldetr/draw.h"

/* ------------------------------------------------------------ CSV tables */

/* A numeric CSV with a header line. Cells are numbers (strtod: "nan" and
 * "inf" too); an empty cell is NaN. Robust to a file being written while it is
 * read and to runs that were resumed:
 *   - a last line without its '\n' is ignored (partial_last = 1);
 *   - a line equal to the header (a writer that started again) is skipped;
 *   - any other line with the wrong number of fields or a cell that is not a
 *     number is skipped and counted in n_bad (first_bad: its line number), so
 *     that a line torn by a crash does not hide the rest of a run. */
typedef struct {
    char *path;
    size_t n_cols, n_rows;
    char **names;            /* [n_cols] header fields, trimmed */
    double *v;               /* [n_rows, n_cols] */
    size_t n_bad, first_bad; /* malformed lines skipped; line number (1-based) of the first */
    int partial_last;
} chart_csv;

/* 0, or -1 with cd_errbuf() ("PATH: reason"; an empty file has no header). */
int chart_csv_read(chart_csv *c, const char *path);
void chart_csv_free(chart_csv *c);
/* Index of the column named name, or -1. */
int chart_csv_col(const chart_csv *c, const char *name);
/* The column names joined by ", " into buf (cut to fit). */
void chart_csv_names(const chart_csv *c, char *buf, size_t size);

/* Columns x_col and y_col as (x, y) arrays of n points (malloc'd, free
 * them). When step_col is not NULL and that column exists, a row whose step
 * is not greater than an earlier row's replaces those rows (a resumed run
 * logs again from its checkpoint's step), so the steps kept increase.
 * -1 with cd_errbuf() "PATH: no column 'NAME' (columns: ...)" if x_col or
 * y_col is missing. */
int chart_csv_series(const chart_csv *c, const char *x_col, const char *y_col, const char *step_col, double **x,
                     double **y, size_t *n);

/* Against epochs, the rows of metrics.csv logged during epoch e (epochs count
 * from 1) spread evenly over (e - 1, e] in their order, instead of a vertical
 * comb of points at x = e. x (n): the epoch of each row, in step order. */
void chart_spread_epochs(double *x, size_t n);

/* ----------------------------------------------------------------- charts */

typedef struct {
    const char *name;        /* legend label (NULL: no legend entry) */
    const double *x, *y;     /* [n] */
    size_t n;
} chart_series;

typedef struct {
    const char *title, *x_label, *y_label;   /* NULL or "" for none */
    int width, height;       /* 900 x 500 */
    int log_y;               /* 0: linear y; 1: log10 y, points with y <= 0 skipped */
    double y_min, y_max;     /* NaN (default): from the data; set one to pin that end (e.g. AP from 0);
                                points outside a pinned end are skipped (pycocotools' -1: no ground truth) */
    double smooth;           /* 0 (default): raw lines. w in (0, 1): each series drawn pale, and over it
                                its exponential moving average of weight w (TensorBoard's smoothing,
                                debiased; of log10 y on a log axis). CHART_SMOOTH_AUTO: w = 1 - 100/n
                                for series of n > 200 points (a window of ~1% of the run), else raw */
} chart_opts;

#define CHART_SMOOTH_AUTO (-1.0)

/* y[i] <- debiased exponential moving average of weight w over the finite
 * values of y (NaN and inf stay where they are, skipped). */
void chart_smooth(double *y, size_t n, double w);

void chart_opts_default(chart_opts *o);

/* Where the data landed in the picture, for callers that add to it (and tests). */
typedef struct {
    int px0, py0, px1, py1;  /* plot area, pixels, inclusive: x0 left, y0 top */
    double x_lo, x_hi;       /* data x at px0 and px1 */
    double y_lo, y_hi;       /* data y at py1 and py0 (log10 of them when log_y) */
    int log_y;
    int has_data;
    int has_legend;
    draw_rect legend;        /* the legend's box, pixels, when has_legend */
} chart_frame;

/* Data (x, y) -> pixel coordinates (not clipped; NaN for y <= 0 on a log axis). */
void chart_to_pixel(const chart_frame *f, double x, double y, double *px, double *py);

/* Series colour i (tab10, then draw_palette). */
draw_rgb chart_color(size_t i);

/* Draw the chart into a new image (free it with data_image_free); frame may
 * be NULL. */
void chart_render(data_image *im, chart_frame *frame, const chart_opts *o, const chart_series *s, size_t n_series);
/* chart_render and write it as a PNG: 0, or -1 with cd_errbuf(). */
int chart_write_png(const char *path, const chart_opts *o, const chart_series *s, size_t n_series);

/* Nice tick values covering [lo, hi]: up to max of them into t, their count
 * returned. Linear: 5-8 equally spaced multiples of the roundest step that
 * gives that many (see chart.c). Log (lo, hi > 0): the sparsest of decades
 * (every k-th when there are many), 1-3, 1-2-5, 1-2-3-5 or 1..9 in each
 * decade giving 5-8, else linear ticks on a range under 20x, else the set
 * closest to 5-8 (4 whole decades, say); values, not logs. */
size_t chart_ticks(double lo, double hi, int log, double *t, size_t max);
/* Tick label for v on an axis whose ticks are step apart (linear) or any
 * (log: pass step = 0): "0", "0.25", "1500", "2e+06", "1.05e-04". */
void chart_tick_label(char *buf, size_t size, double v, double step);

/* ------------------------------------------------------------ run charts */

/* The name of a run: its folder's last path component ("runs/a/" -> "a"). */
void chart_run_name(const char *run_dir, char *buf, size_t size);

/* Loss terms against steps, log y: loss, loss_ce, loss_bbox, loss_giou from
 * RUN/metrics.csv (smoothed: CHART_SMOOTH_AUTO), and val_loss from
 * RUN/eval.csv when that file has it.
 * 0, or -1 with cd_errbuf() naming the file and a missing column. */
int chart_run_losses(const char *run_dir, const char *png_path);
/* AP, AP50, AP75 from RUN/eval.csv against steps; y from 0. */
int chart_run_ap(const char *run_dir, const char *png_path);

#endif
