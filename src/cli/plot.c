/* cldetr plot RUN [RUN...] [-o chart.png] [--metric NAME] [--x step|time|epoch] ...
 * One metric of several run folders on one chart: one line per run, named by
 * its folder. The metric is a column of RUN/metrics.csv, or else of
 * RUN/eval.csv. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cldetr/chart.h"
#include "cldetr/common.h"
#include "cldetr/layer_stats.h"
#include "cli/args.h"
#include "cli/cli.h"

typedef struct {
    const char *dir;
    chart_csv m, e;            /* metrics.csv, eval.csv */
    int has_m, has_e;
    char m_err[1024], e_err[1024];
    double *x, *y;
    size_t n;
    char label[256];
} run_data;

static void run_free(run_data *r) {
    if (r->has_m) chart_csv_free(&r->m);
    if (r->has_e) chart_csv_free(&r->e);
    free(r->x);
    free(r->y);
}

/* Load a run's tables; -1 with a message printed. */
static int run_load(run_data *r) {
    struct stat st;
    if (stat(r->dir, &st) != 0) {
        fprintf(stderr, "cldetr plot: error: run folder '%s': %s\n", r->dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cldetr plot: error: '%s' is not a folder (give run folders, e.g. runs/shapes-...)\n",
                r->dir);
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", r->dir);
    r->has_m = chart_csv_read(&r->m, path) == 0;
    if (!r->has_m) snprintf(r->m_err, sizeof r->m_err, "%s", cd_errbuf());
    snprintf(path, sizeof path, "%s/eval.csv", r->dir);
    r->has_e = chart_csv_read(&r->e, path) == 0;
    if (!r->has_e) snprintf(r->e_err, sizeof r->e_err, "%s", cd_errbuf());
    if (!r->has_m && !r->has_e) {
        fprintf(stderr, "cldetr plot: error: %s has neither metrics.csv nor eval.csv (is it a run folder?)\n  %s\n  %s\n",
                r->dir, r->m_err, r->e_err);
        return -1;
    }
    return 0;
}

static void warn_bad(const chart_csv *c) {
    if (c->n_bad)
        fprintf(stderr, "cldetr plot: warning: %s: skipped %zu malformed line%s (the first is line %zu)\n", c->path,
                c->n_bad, c->n_bad > 1 ? "s" : "", c->first_bad);
}

/* The series of run r: the metric against x_col from the table that has the metric. */
static int run_series(run_data *r, const char *metric, const char *x_col) {
    const chart_csv *c = r->has_m && chart_csv_col(&r->m, metric) >= 0   ? &r->m
                         : r->has_e && chart_csv_col(&r->e, metric) >= 0 ? &r->e
                                                                          : NULL;
    if (!c) {
        char names[1024];
        fprintf(stderr, "cldetr plot: error: unknown metric '%s' in %s; available:\n", metric, r->dir);
        if (r->has_m) {
            chart_csv_names(&r->m, names, sizeof names);
            fprintf(stderr, "  metrics.csv: %s\n", names);
        } else {
            fprintf(stderr, "  (%s)\n", r->m_err);
        }
        if (r->has_e) {
            chart_csv_names(&r->e, names, sizeof names);
            fprintf(stderr, "  eval.csv: %s\n", names);
        } else {
            fprintf(stderr, "  (%s)\n", r->e_err);
        }
        return -1;
    }
    warn_bad(c);
    if (chart_csv_series(c, x_col, metric, "step", &r->x, &r->y, &r->n)) {
        fprintf(stderr, "cldetr plot: error: %s\n", cd_errbuf());
        return -1;
    }
    if (!strcmp(x_col, "epoch") && c == &r->m) chart_spread_epochs(r->x, r->n);
    return 0;
}

static int parse_double(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0' && isfinite(*v);
}

int cmd_plot(int argc, char **argv) {
    static const char *const axes[] = {"step", "time", "epoch", NULL}, *const x_cols[] = {"step", "time_s", "epoch"};
    const char *out = "chart.png", *metric = "loss", *title = NULL, *v;
    int log_mode = -1, width = 900, height = 500, axis = 0, layers = 0;   /* log_mode -1: from the metric's name */
    double smooth_w = CHART_SMOOTH_AUTO;
    run_data *runs = cd_xcalloc((size_t)argc, sizeof *runs);
    const char **labels = cd_xcalloc((size_t)argc, sizeof *labels);
    size_t n_runs = 0, n_labels = 0;
    args a;
    args_init(&a, "plot", argc, argv, 0);
    while (args_next(&a)) {
        args_value(&a, "-o", &out);
        args_value(&a, "--metric", &metric);
        args_choice(&a, "--x", &axis, axes);
        args_value(&a, "--title", &title);
        if (args_value(&a, "--label", &v)) labels[n_labels++] = v;
        if (args_value(&a, "--smooth", &v)) {
            if (!strcmp(v, "auto")) smooth_w = CHART_SMOOTH_AUTO;
            else if (!parse_double(v, &smooth_w) || smooth_w < 0 || smooth_w >= 1)
                args_error(&a, "--smooth expects auto or a number in [0, 1), got '%s'", v);
        }
        if (args_value(&a, "--size", &v)) {
            char tail;
            if (sscanf(v, "%dx%d%c", &width, &height, &tail) != 2 || width < 200 || height < 150 || width > 10000 ||
                height > 10000)
                args_error(&a, "--size expects WxH with 200 <= W, 150 <= H, both <= 10000, got '%s'", v);
        }
        if (args_flag(&a, "--log")) log_mode = 1;
        if (args_flag(&a, "--linear")) log_mode = 0;
        if (args_flag(&a, "--layers")) layers = 1;
        if (args_positional(&a, &v)) runs[n_runs++].dir = v;
    }
    if (!n_runs) args_missing(&a, "give at least one run folder");
    if (n_labels > n_runs)
        args_error(&a, "%zu --label for %zu run folder%s: give at most one label per run, in the runs' order",
                   n_labels, n_runs, n_runs > 1 ? "s" : "");
    if (a.rc >= 0) {
        free(runs);
        free(labels);
        return a.rc;
    }
    const char *x_axis = axes[axis], *x_col = x_cols[axis];
    if (layers) {
        const char **dirs = cd_xmalloc(n_runs * sizeof *dirs);
        for (size_t k = 0; k < n_runs; k++) dirs[k] = runs[k].dir;
        int lrc = layer_stats_chart(dirs, (int)n_runs, out);
        free(dirs);
        free(runs);
        free(labels);
        if (lrc < 0) return cli_error();
        printf("wrote %s: per-layer statistics of %zu run%s\n", out, n_runs, n_runs > 1 ? "s" : "");
        return 0;
    }

    int rc = 1;
    for (size_t k = 0; k < n_runs; k++)
        if (run_load(&runs[k]) || run_series(&runs[k], metric, x_col)) goto done;

    /* labels: the folder names, or the paths as given when two names are the same */
    for (size_t k = 0; k < n_runs; k++) chart_run_name(runs[k].dir, runs[k].label, sizeof runs[k].label);
    int same_names = 0;
    for (size_t k = 0; k < n_runs; k++)
        for (size_t j = k + 1; j < n_runs; j++) same_names |= !strcmp(runs[k].label, runs[j].label);
    if (same_names)
        for (size_t k = 0; k < n_runs; k++) snprintf(runs[k].label, sizeof runs[k].label, "%s", runs[k].dir);
    for (size_t k = 0; k < n_labels; k++) snprintf(runs[k].label, sizeof runs[k].label, "%s", labels[k]);

    /* time in the unit that reads best */
    const char *x_label = x_axis;
    if (!strcmp(x_axis, "time")) {
        double t_max = 0;
        for (size_t k = 0; k < n_runs; k++)
            for (size_t i = 0; i < runs[k].n; i++)
                if (isfinite(runs[k].x[i])) t_max = fmax(t_max, runs[k].x[i]);
        double div = t_max > 3 * 3600 ? 3600 : t_max > 180 ? 60 : 1;
        x_label = div == 3600 ? "time (h)" : div == 60 ? "time (min)" : "time (s)";
        for (size_t k = 0; k < n_runs; k++)
            for (size_t i = 0; i < runs[k].n; i++) runs[k].x[i] /= div;
    }

    chart_series *s = cd_xcalloc(n_runs, sizeof *s);
    for (size_t k = 0; k < n_runs; k++) s[k] = (chart_series){runs[k].label, runs[k].x, runs[k].y, runs[k].n};
    chart_opts o;
    chart_opts_default(&o);
    o.width = width;
    o.height = height;
    o.smooth = smooth_w;
    o.log_y = log_mode >= 0 ? log_mode : strstr(metric, "loss") != NULL;
    if (!o.log_y && (!strncmp(metric, "AP", 2) || !strncmp(metric, "AR", 2))) o.y_min = 0;   /* and -1 = no GT: skipped */
    char tbuf[300], ylab[300];
    if (!title) {
        if (smooth_w > 0) snprintf(tbuf, sizeof tbuf, "%s (smoothed %.2g)", metric, smooth_w);
        else snprintf(tbuf, sizeof tbuf, "%s", metric);
        title = tbuf;
    }
    snprintf(ylab, sizeof ylab, "%s%s", metric, o.log_y ? " (log scale)" : "");
    o.title = title;
    o.x_label = x_label;
    o.y_label = ylab;
    if (chart_write_png(out, &o, s, n_runs)) {
        fprintf(stderr, "cldetr plot: error: %s\n", cd_errbuf());
    } else {
        size_t n_pts = 0;
        for (size_t k = 0; k < n_runs; k++) n_pts += runs[k].n;
        printf("wrote %s: %s against %s, %zu run%s, %zu points\n", out, metric, x_axis, n_runs,
               n_runs > 1 ? "s" : "", n_pts);
        rc = 0;
    }
    free(s);
done:
    for (size_t k = 0; k < n_runs; k++) run_free(&runs[k]);
    free(runs);
    free(labels);
    return rc;
}
