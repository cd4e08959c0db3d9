/* Hyper-parameter sweeps (include/cldetr/sweep.h): the grid's points trained
 * one after another (or --jobs at once, one process per device), then the
 * summary and the charts. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ini.h>

#include "cldetr/chart.h"
#include "cldetr/config.h"
#include "cldetr/device.h"
#include "cldetr/sweep.h"
#include "cldetr/trainer.h"

#define MAX_POINTS 4096

typedef struct {
    int idx[SWEEP_MAX_AXES];     /* value index of each axis */
    char name[512];              /* folder name: key=value+key=value */
    char dir[2048];
    int status;                  /* 0 not run, 1 done, 2 failed, 3 interrupted */
    char why[512];               /* a failure's reason */
    /* from the run's CSVs */
    double final_ap, best_ap, final_ap50, best_ap50, final_ap75, final_loss, minutes;
    long steps;
} point;

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

/* ---- the grid ------------------------------------------------------------------ */

int sweep_parse_axis(sweep_axis *ax, const char *spec) {
    memset(ax, 0, sizeof *ax);
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !strchr(spec, '.') || strchr(spec, '.') > eq)
        return cd_seterr("--grid %s: expected section.key=v1,v2,... (e.g. --grid train.lr=1e-4,2e-4)", spec);
    if ((size_t)(eq - spec) >= sizeof ax->key) return cd_seterr("--grid %s: key too long", spec);
    memcpy(ax->key, spec, (size_t)(eq - spec));
    char sep = strchr(eq + 1, '|') ? '|' : ',';
    const char *p = eq + 1;
    while (1) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) { p++; len--; }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (!len) return cd_seterr("%s: an empty value in the grid", ax->key);
        if (ax->n_values == SWEEP_MAX_VALUES) return cd_seterr("%s: at most %d values", ax->key, SWEEP_MAX_VALUES);
        if (len >= SWEEP_VALUE_LEN) return cd_seterr("%s: value '%.*s' too long", ax->key, (int)len, p);
        memcpy(ax->values[ax->n_values], p, len);
        ax->values[ax->n_values++][len] = '\0';
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

typedef struct {
    sweep_args *a;
    char err[512];
} section_reader;

static int on_ini(void *user, const char *section, const char *name, const char *value) {
    section_reader *r = user;
    if (strcmp(section, "sweep")) return 1;
    if (r->a->n_axes == SWEEP_MAX_AXES) {
        snprintf(r->err, sizeof r->err, "at most %d keys in [sweep]", SWEEP_MAX_AXES);
        return 0;
    }
    char spec[2048];
    snprintf(spec, sizeof spec, "%s=%s", name, value);
    if (sweep_parse_axis(&r->a->axes[r->a->n_axes], spec) < 0) {
        snprintf(r->err, sizeof r->err, "%s", cd_errbuf());
        return 0;
    }
    r->a->n_axes++;
    return 1;
}

int sweep_read_section(sweep_args *a, const char *ini_path) {
    section_reader r = {a, ""};
    int rc = ini_parse(ini_path, on_ini, &r);
    if (rc == -1) return cd_seterr("cannot open %s: %s", ini_path, strerror(errno));
    if (rc > 0 && r.err[0]) return cd_seterr("%s:%d: [sweep]: %s", ini_path, rc, r.err);
    return 0;        /* other syntax errors are config_load's to report */
}

/* The short name of an axis in folder names and titles: the key without its
 * section unless two axes share it. */
static const char *short_key(const sweep_args *a, int k) {
    const char *dot = strchr(a->axes[k].key, '.');
    for (int j = 0; j < a->n_axes; j++)
        if (j != k && !strcmp(strchr(a->axes[j].key, '.') + 1, dot + 1)) return a->axes[k].key;
    return dot + 1;
}

static void point_name(const sweep_args *a, point *p) {
    size_t n = 0;
    p->name[0] = '\0';
    for (int k = 0; k < a->n_axes; k++)
        n += (size_t)snprintf(p->name + n, n < sizeof p->name ? sizeof p->name - n : 0, "%s%s=%s", k ? "+" : "",
                              short_key(a, k), a->axes[k].values[p->idx[k]]);
    for (char *c = p->name; *c; c++)          /* a folder name: no '/' and no spaces */
        if (*c == '/' || *c == ' ' || *c == '\t') *c = '_';
}

/* ---- reading a finished run ---------------------------------------------------------- */

static double col_last(const chart_csv *c, const char *name) {
    int j = chart_csv_col(c, name);
    return j < 0 || !c->n_rows ? NAN : c->v[(c->n_rows - 1) * c->n_cols + (size_t)j];
}

static double col_max(const chart_csv *c, const char *name) {
    int j = chart_csv_col(c, name);
    double m = NAN;
    for (size_t i = 0; j >= 0 && i < c->n_rows; i++) {
        double v = c->v[i * c->n_cols + (size_t)j];
        if (isfinite(v) && !(m >= v)) m = v;
    }
    return m;
}

static void read_results(point *p) {
    char path[2300];
    chart_csv c;
    p->final_ap = p->best_ap = p->final_ap50 = p->best_ap50 = p->final_ap75 = p->final_loss = p->minutes = NAN;
    p->steps = 0;
    snprintf(path, sizeof path, "%s/eval.csv", p->dir);
    if (chart_csv_read(&c, path) == 0) {
        p->final_ap = col_last(&c, "AP");
        p->best_ap = col_max(&c, "AP");
        p->final_ap50 = col_last(&c, "AP50");
        p->best_ap50 = col_max(&c, "AP50");
        p->final_ap75 = col_last(&c, "AP75");
        chart_csv_free(&c);
    }
    snprintf(path, sizeof path, "%s/metrics.csv", p->dir);
    if (chart_csv_read(&c, path) == 0) {
        p->final_loss = col_last(&c, "loss");
        double s = col_last(&c, "step"), t = col_last(&c, "time_s");
        p->steps = isfinite(s) ? (long)s : 0;
        p->minutes = t / 60.0;
        chart_csv_free(&c);
    }
}

/* Where a point stands, from the files in its folder. */
static void read_status(point *p) {
    char path[2300];
    p->status = 0;
    p->why[0] = '\0';
    snprintf(path, sizeof path, "%s/sweep.done", p->dir);
    if (file_exists(path)) { p->status = 1; return; }
    snprintf(path, sizeof path, "%s/sweep.failed", p->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        p->status = 2;
        if (!fgets(p->why, sizeof p->why, f)) p->why[0] = '\0';
        p->why[strcspn(p->why, "\n")] = '\0';
        fclose(f);
    }
}

static void mark(const point *p, const char *file, const char *text) {
    char path[2300];
    snprintf(path, sizeof path, "%s/%s", p->dir, file);
    FILE *f = fopen(path, "w");
    if (f) { fprintf(f, "%s\n", text); fclose(f); }
}

/* ---- training one point ------------------------------------------------------------- */

/* train_run for point p: a fresh run, or the resumption of one that stopped. */
static int train_point(const sweep_args *a, const char *dir, point *p, int quiet) {
    const char *sets[128 + SWEEP_MAX_AXES + 3];
    char grid[SWEEP_MAX_AXES][SWEEP_VALUE_LEN + 100], out_dir[2100], name[600];
    size_t n = 0;
    for (size_t i = 0; i < a->n_sets && n < 128; i++) sets[n++] = a->sets[i];
    for (int k = 0; k < a->n_axes; k++) {
        snprintf(grid[k], sizeof grid[k], "%s=%s", a->axes[k].key, a->axes[k].values[p->idx[k]]);
        sets[n++] = grid[k];
    }
    snprintf(out_dir, sizeof out_dir, "train.out_dir=%s", dir);
    snprintf(name, sizeof name, "train.name=%s", p->name);
    sets[n++] = out_dir;
    sets[n++] = name;
    if (quiet) sets[n++] = "log.progress=off";
    char ckpt[2300];
    snprintf(ckpt, sizeof ckpt, "%s/last.ckpt", p->dir);
    train_args ta = {0};
    ta.sets = sets;
    ta.n_sets = n;
    if (file_exists(ckpt)) ta.resume_dir = p->dir;
    else ta.config_path = a->config_path;
    int rc = train_run(&ta);
    if (rc == TRAIN_DONE) {
        mark(p, "sweep.done", "finished");
        p->status = 1;
    } else if (rc == TRAIN_INTERRUPTED) {
        p->status = 3;
    } else {
        snprintf(p->why, sizeof p->why, "%s", cd_errbuf());
        for (char *c = p->why; *c; c++) if (*c == '\n') *c = ' ';
        if (cd_mkdir_p(p->dir) == 0) mark(p, "sweep.failed", p->why);
        p->status = 2;
    }
    return p->status;
}

/* ---- the summary ------------------------------------------------------------------------ */

static const char *sort_metric;

static double metric_of(const point *p) {
    if (!strcmp(sort_metric, "AP")) return p->final_ap;
    if (!strcmp(sort_metric, "AP75")) return p->final_ap75;
    if (!strcmp(sort_metric, "loss")) return -p->final_loss;
    return p->final_ap50;
}

static int cmp_points(const void *x, const void *y) {
    const point *a = *(point *const *)x, *b = *(point *const *)y;
    double va = a->status == 1 ? metric_of(a) : NAN, vb = b->status == 1 ? metric_of(b) : NAN;
    if (isnan(va) != isnan(vb)) return isnan(va) ? 1 : -1;   /* finished and measured first */
    if (!isnan(va) && va != vb) return va > vb ? -1 : 1;
    return strcmp(a->name, b->name);
}

static const char *status_name(int s) {
    return s == 1 ? "done" : s == 2 ? "failed" : s == 3 ? "interrupted" : "not run";
}

static void fmt(char *buf, size_t n, double v, const char *f) {
    if (isfinite(v)) snprintf(buf, n, f, v);
    else snprintf(buf, n, "-");
}

static int write_summary(const sweep_args *a, const char *dir, point *pts, size_t np) {
    point **order = cd_xmalloc(np * sizeof *order);
    for (size_t i = 0; i < np; i++) order[i] = &pts[i];
    sort_metric = a->metric;
    qsort(order, np, sizeof *order, cmp_points);
    char path[2200];
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/summary.md", dir);
    FILE *md = fopen(path, "w");
    if (!csv || !md) {
        if (csv) fclose(csv);
        if (md) fclose(md);
        free(order);
        return cd_seterr("cannot write the summary in %s: %s", dir, strerror(errno));
    }
    fprintf(md, "# Sweep %s\n\nBase config `%s`; %zu points, sorted by the final %s.\n\n|", dir, a->config_path, np,
            a->metric);
    for (int k = 0; k < a->n_axes; k++) {
        fprintf(csv, "%s,", a->axes[k].key);
        fprintf(md, " %s |", a->axes[k].key);
    }
    fprintf(csv, "status,AP,best_AP,AP50,best_AP50,AP75,loss,steps,minutes,run,reason\n");
    fprintf(md, " status | AP | best AP | AP50 | best AP50 | AP75 | loss | steps | min |\n|");
    for (int k = 0; k < a->n_axes + 9; k++) fprintf(md, "---|");
    fputc('\n', md);
    for (size_t i = 0; i < np; i++) {
        const point *p = order[i];
        char v[8][32];
        fmt(v[0], 32, p->final_ap, "%.4f");
        fmt(v[1], 32, p->best_ap, "%.4f");
        fmt(v[2], 32, p->final_ap50, "%.4f");
        fmt(v[3], 32, p->best_ap50, "%.4f");
        fmt(v[4], 32, p->final_ap75, "%.4f");
        fmt(v[5], 32, p->final_loss, "%.4f");
        fmt(v[6], 32, p->minutes, "%.1f");
        fputc('|', md);
        for (int k = 0; k < a->n_axes; k++) {
            fprintf(csv, "%s,", a->axes[k].values[p->idx[k]]);
            fprintf(md, " %s |", a->axes[k].values[p->idx[k]]);
        }
        char why[520];                         /* no commas or quotes inside a CSV cell */
        snprintf(why, sizeof why, "%s", p->why);
        for (char *c = why; *c; c++) if (*c == ',' || *c == '"') *c = ';';
        fprintf(csv, "%s,%s,%s,%s,%s,%s,%s,%ld,%s,%s,%s\n", status_name(p->status), v[0], v[1], v[2], v[3], v[4], v[5],
                p->steps, v[6], p->name, why);
        fprintf(md, " %s%s%s | %s | %s | %s | %s | %s | %s | %ld | %s |\n", status_name(p->status),
                p->status == 2 ? ": " : "", p->status == 2 ? p->why : "", v[0], v[1], v[2], v[3], v[4], v[5], p->steps,
                v[6]);
    }
    fclose(csv);
    fclose(md);
    free(order);
    return 0;
}

/* ---- the charts ------------------------------------------------------------------------- */

/* The mean over runs of column y of file (metrics.csv or eval.csv) against
 * step, at the steps of the first run that has the file (a run missing a
 * step adds nothing there). */
static size_t mean_curve(point *const *runs, size_t nr, const char *file, const char *y, double **xs, double **ys) {
    *xs = *ys = NULL;
    size_t n = 0;
    double *cnt = NULL;
    for (size_t r = 0; r < nr; r++) {
        char path[2300];
        snprintf(path, sizeof path, "%s/%s", runs[r]->dir, file);
        chart_csv c;
        if (chart_csv_read(&c, path) < 0) continue;
        double *x, *v;
        size_t m;
        if (chart_csv_series(&c, "step", y, "step", &x, &v, &m) == 0) {
            if (!*xs) {
                n = m;
                *xs = cd_xmalloc((n ? n : 1) * sizeof **xs);
                *ys = cd_xcalloc(n ? n : 1, sizeof **ys);
                cnt = cd_xcalloc(n ? n : 1, sizeof *cnt);
                memcpy(*xs, x, n * sizeof *x);
            }
            for (size_t i = 0, j = 0; i < n && j < m; i++) {     /* both sorted by step */
                while (j < m && x[j] < (*xs)[i]) j++;
                if (j < m && x[j] == (*xs)[i] && isfinite(v[j])) { (*ys)[i] += v[j]; cnt[i] += 1; }
            }
            free(x);
            free(v);
        }
        chart_csv_free(&c);
    }
    for (size_t i = 0; i < n; i++) (*ys)[i] = cnt[i] > 0 ? (*ys)[i] / cnt[i] : NAN;
    free(cnt);
    return n;
}

/* Two charts one above the other in one PNG. */
static int write_stacked(const char *path, const chart_opts *top, const chart_series *ts, size_t nt,
                         const chart_opts *bottom, const chart_series *bs, size_t nb) {
    data_image a, b;
    chart_render(&a, NULL, top, ts, nt);
    chart_render(&b, NULL, bottom, bs, nb);
    data_image both = {a.w, a.h + b.h, cd_xmalloc((size_t)a.w * (size_t)(a.h + b.h) * 3)};
    memcpy(both.rgb, a.rgb, (size_t)a.w * (size_t)a.h * 3);
    memcpy(both.rgb + (size_t)a.w * (size_t)a.h * 3, b.rgb, (size_t)b.w * (size_t)b.h * 3);
    int rc = data_write_png(path, &both);
    data_image_free(&a);
    data_image_free(&b);
    data_image_free(&both);
    return rc;
}

/* "averaged over model.num_queries, train.lr" or "the only key" */
static void others_text(const sweep_args *a, int k, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int j = 0; j < a->n_axes; j++)
        if (j != k && a->axes[j].n_values > 1)
            len += (size_t)snprintf(buf + len, len < n ? n - len : 0, "%s%s", len ? ", " : "averaged over ",
                                    a->axes[j].key);
    if (!len) snprintf(buf, n, "other keys fixed");
}

static int write_charts(const sweep_args *a, const char *dir, point *pts, size_t np) {
    for (int k = 0; k < a->n_axes; k++) {
        const sweep_axis *ax = &a->axes[k];
        if (ax->n_values < 2) continue;
        char others[600], title[900], path[2300];
        others_text(a, k, others, sizeof others);
        chart_series loss[SWEEP_MAX_VALUES], ap[SWEEP_MAX_VALUES];
        char label[SWEEP_MAX_VALUES][SWEEP_VALUE_LEN + 100];
        double *mem[4 * SWEEP_MAX_VALUES];
        int n_mem = 0;
        double bx[SWEEP_MAX_VALUES], by[SWEEP_MAX_VALUES];
        int numeric = 1, nb = 0;
        for (int v = 0; v < ax->n_values; v++) {
            char *end;
            strtod(ax->values[v], &end);
            if (*end) numeric = 0;
        }
        for (int v = 0; v < ax->n_values; v++) {
            point *runs[MAX_POINTS];
            size_t nr = 0;
            double final_sum = 0;
            int final_n = 0;
            for (size_t i = 0; i < np; i++)
                if (pts[i].idx[k] == v && pts[i].status == 1) {
                    runs[nr++] = &pts[i];
                    double m = metric_of(&pts[i]);
                    if (isfinite(m)) { final_sum += m; final_n++; }
                }
            snprintf(label[v], sizeof label[v], "%s = %s", short_key(a, k), ax->values[v]);
            loss[v].name = ap[v].name = label[v];
            loss[v].n = mean_curve(runs, nr, "metrics.csv", "loss", &mem[n_mem], &mem[n_mem + 1]);
            loss[v].x = mem[n_mem];
            loss[v].y = mem[n_mem + 1];
            ap[v].n = mean_curve(runs, nr, "eval.csv", "AP50", &mem[n_mem + 2], &mem[n_mem + 3]);
            ap[v].x = mem[n_mem + 2];
            ap[v].y = mem[n_mem + 3];
            n_mem += 4;
            if (final_n) {
                bx[nb] = numeric ? strtod(ax->values[v], NULL) : v;
                by[nb++] = final_sum / final_n;
            }
        }
        chart_opts top, bottom;
        chart_opts_default(&top);
        chart_opts_default(&bottom);
        snprintf(title, sizeof title, "training loss by %s (%s)", ax->key, others);
        top.title = title;
        top.x_label = "step";
        top.y_label = "loss";
        top.log_y = 1;
        top.smooth = CHART_SMOOTH_AUTO;
        char title2[900];
        snprintf(title2, sizeof title2, "validation AP50 by %s (%s)", ax->key, others);
        bottom.title = title2;
        bottom.x_label = "step";
        bottom.y_label = "AP50";
        bottom.y_min = 0;
        snprintf(path, sizeof path, "%s/curves-%s.png", dir, ax->key);
        int rc = write_stacked(path, &top, loss, (size_t)ax->n_values, &bottom, ap, (size_t)ax->n_values);
        if (rc == 0) {
            chart_opts o;
            chart_opts_default(&o);
            char t3[1200], xl[700];
            if (numeric) snprintf(xl, sizeof xl, "%s", ax->key);
            else {
                size_t len = (size_t)snprintf(xl, sizeof xl, "%s:", ax->key);
                for (int v = 0; v < ax->n_values && len < sizeof xl; v++)
                    len += (size_t)snprintf(xl + len, sizeof xl - len, " %d = %s", v, ax->values[v]);
            }
            snprintf(t3, sizeof t3, "final %s by %s (%s)", a->metric, ax->key, others);
            o.title = t3;
            o.x_label = xl;
            o.y_label = a->metric;
            if (strcmp(a->metric, "loss")) o.y_min = 0;
            for (int i = 0; i < nb && !strcmp(a->metric, "loss"); i++) by[i] = -by[i];
            chart_series s = {NULL, bx, by, (size_t)nb};
            snprintf(path, sizeof path, "%s/best-%s.png", dir, ax->key);
            rc = chart_write_png(path, &o, &s, 1);
        }
        for (int i = 0; i < n_mem; i++) free(mem[i]);
        if (rc < 0) return -1;
    }
    return 0;
}

/* ---- the sweep ------------------------------------------------------------------------- */

/* The sweep's folder and its points, in grid order. */
static int plan(const sweep_args *a, char *dir, size_t n_dir, point **out, size_t *np) {
    if (a->n_axes < 1) return cd_seterr("no grid: give --grid section.key=v1,v2,... or a [sweep] section");
    static config cfg;
    if (config_load(&cfg, a->config_path, a->sets, a->n_sets) < 0) return -1;
    for (int k = 0; k < a->n_axes; k++) {     /* every value must be valid before anything trains */
        for (int j = 0; j < k; j++)
            if (!strcmp(a->axes[j].key, a->axes[k].key)) return cd_seterr("%s is in the grid twice", a->axes[k].key);
        for (int v = 0; v < a->axes[k].n_values; v++) {
            char set[SWEEP_VALUE_LEN + 100];
            snprintf(set, sizeof set, "%s=%s", a->axes[k].key, a->axes[k].values[v]);
            const char *one[1] = {set};
            static config probe;
            if (config_load(&probe, a->config_path, one, 1) < 0) {
                char why[1024];
                snprintf(why, sizeof why, "%s", cd_errbuf());
                return cd_seterr("grid value %s: %s", set, why);
            }
        }
    }
    char stem[256];
    const char *base = strrchr(a->config_path, '/');
    snprintf(stem, sizeof stem, "%s", a->name ? a->name : base ? base + 1 : a->config_path);
    char *dot = a->name ? NULL : strrchr(stem, '.');
    if (dot) *dot = '\0';
    if (snprintf(dir, n_dir, "%s/sweep-%s", cfg.train.out_dir, stem) >= (int)n_dir)
        return cd_seterr("sweep folder name too long");
    size_t total = 1;
    for (int k = 0; k < a->n_axes; k++) total *= (size_t)a->axes[k].n_values;
    if (total > MAX_POINTS) return cd_seterr("the grid has %zu points; at most %d", total, MAX_POINTS);
    point *pts = cd_xcalloc(total, sizeof *pts);
    for (size_t i = 0; i < total; i++) {
        size_t r = i;
        for (int k = a->n_axes - 1; k >= 0; k--) {     /* the last axis varies fastest */
            pts[i].idx[k] = (int)(r % (size_t)a->axes[k].n_values);
            r /= (size_t)a->axes[k].n_values;
        }
        point_name(a, &pts[i]);
        snprintf(pts[i].dir, sizeof pts[i].dir, "%s/%s", dir, pts[i].name);
        read_status(&pts[i]);
    }
    *out = pts;
    *np = total;
    return 0;
}

int sweep_report(const sweep_args *a, const char *dir) {
    point *pts;
    size_t np;
    char d[2048];
    if (plan(a, d, sizeof d, &pts, &np) < 0) return -1;
    for (size_t i = 0; i < np; i++) read_results(&pts[i]);
    int rc = write_summary(a, dir ? dir : d, pts, np);
    if (rc == 0) rc = write_charts(a, dir ? dir : d, pts, np);
    free(pts);
    return rc;
}

/* The device indices a job may take: the devices of the config's type. */
static int job_devices(const sweep_args *a, int *ids, int max) {
    static config cfg;
    if (config_load(&cfg, a->config_path, a->sets, a->n_sets) < 0) return -1;
    cd_device_info *list;
    int n = cd_list_devices(&list);
    if (n < 0) return -1;
    int k = 0;
    for (int i = 0; i < n && k < max; i++) {
        const char *t = cd_device_type_name(list[i].type);
        if (!strcmp(cfg.device.type, "any") || !strcmp(cfg.device.type, t)) ids[k++] = i;
    }
    free(list);
    return k;
}

int sweep_run(const sweep_args *a) {
    point *pts;
    size_t np;
    char dir[2048];
    if (plan(a, dir, sizeof dir, &pts, &np) < 0) return -1;
    if (cd_mkdir_p(dir) < 0) {
        free(pts);
        return cd_seterr("cannot create the sweep folder %s: %s", dir, strerror(errno));
    }
    int jobs = a->jobs > 0 ? a->jobs : 1, ids[64];
    if (jobs > 1) {
        int nd = job_devices(a, ids, 64);
        if (nd < 0) { free(pts); return -1; }
        if (jobs > nd) {
            free(pts);
            return cd_seterr("--jobs %d trains one point per device, but there %s only %d device%s of the config's "
                             "type (device.type); see cldetr devices", jobs, nd == 1 ? "is" : "are", nd,
                             nd == 1 ? "" : "s");
        }
    }
    size_t todo = 0, done_before = 0;
    for (size_t i = 0; i < np; i++) {
        if (pts[i].status == 1) done_before++;
        else todo++;
    }
    fprintf(stderr, "sweep %s: %zu points (%zu finished before, %zu to train)%s\n", dir, np, done_before, todo,
            jobs > 1 ? ", several at once" : "");
    double t0 = cd_now();
    size_t trained = 0;
    int interrupted = 0;
    if (jobs == 1) {
        for (size_t i = 0; i < np && !interrupted; i++) {
            if (pts[i].status == 1) continue;
            double eta = trained ? (cd_now() - t0) / (double)trained * (double)(todo - trained) : NAN;
            if (isfinite(eta))
                fprintf(stderr, "sweep point %zu/%zu: %s (ETA of the sweep %.0f min)\n", trained + 1, todo,
                        pts[i].name, eta / 60);
            else fprintf(stderr, "sweep point %zu/%zu: %s\n", trained + 1, todo, pts[i].name);
            int s = train_point(a, dir, &pts[i], 0);
            if (s == 3) interrupted = 1;
            else if (s == 2) fprintf(stderr, "sweep point %s failed: %s (the sweep goes on)\n", pts[i].name, pts[i].why);
            trained++;
        }
    } else {
        pid_t pid_of[64] = {0};
        size_t point_of[64], next = 0;
        int running = 0;
        while (1) {
            for (int j = 0; j < jobs && !interrupted; j++) {
                if (pid_of[j]) continue;
                while (next < np && pts[next].status == 1) next++;
                if (next >= np) break;
                fflush(NULL);
                pid_t pid = fork();
                if (pid < 0) { interrupted = 1; break; }
                if (pid == 0) {
                    char spec[16];
                    snprintf(spec, sizeof spec, "%d", ids[j]);
                    setenv("CLDETR_DEVICE", spec, 1);
                    int s = train_point(a, dir, &pts[next], 1);
                    _exit(s == 1 ? 0 : s == 3 ? 130 : 1);
                }
                fprintf(stderr, "sweep point %zu/%zu: %s on device %d\n", trained + (size_t)running + 1, todo,
                        pts[next].name, ids[j]);
                pid_of[j] = pid;
                point_of[j] = next++;
                running++;
            }
            if (!running) break;
            int st;
            pid_t pid = wait(&st);
            if (pid < 0) break;
            for (int j = 0; j < jobs; j++) {
                if (pid_of[j] != pid) continue;
                point *p = &pts[point_of[j]];
                read_status(p);
                if (WIFEXITED(st) && WEXITSTATUS(st) == 130) { interrupted = 1; p->status = 3; }
                else if (p->status == 2) fprintf(stderr, "sweep point %s failed: %s (the sweep goes on)\n", p->name,
                                                p->why);
                else if (p->status != 1) {
                    p->status = 2;
                    snprintf(p->why, sizeof p->why, "the training process ended with %s %d",
                             WIFSIGNALED(st) ? "signal" : "exit code", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
                    mark(p, "sweep.failed", p->why);
                }
                pid_of[j] = 0;
                running--;
                trained++;
                double eta = (cd_now() - t0) / (double)trained * (double)(todo - trained) / jobs;
                if (trained < todo) fprintf(stderr, "sweep: %zu/%zu points trained, ETA %.0f min\n", trained, todo,
                                            eta / 60);
            }
        }
    }
    size_t failed = 0;
    for (size_t i = 0; i < np; i++) {
        read_results(&pts[i]);
        if (pts[i].status == 2) failed++;
    }
    int rc = write_summary(a, dir, pts, np);
    if (rc == 0) rc = write_charts(a, dir, pts, np);
    free(pts);
    if (rc < 0) return -1;
    fprintf(stderr, "sweep %s: %s; summary.csv, summary.md, curves-KEY.png and best-KEY.png written\n", dir,
            interrupted ? "interrupted (run the same command again to continue)" :
            failed ? "finished with failed points (see summary.md)" : "every point finished");
    return interrupted ? 2 : failed ? 1 : 0;
}
