/* `cldetr plot` run as a subprocess ($CLDETR_BIN) on two fake run folders:
 * one line per run on the chart, metrics from metrics.csv or eval.csv, the x
 * axes, and bad input (missing folder or CSV, unknown metric, bad options)
 * giving a non-zero exit and a message naming the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "../cli_run.h"
#include "cldetr/chart.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

static char dir[64], bin[1024];
static char *out_text, *err_text;

/* Run `cldetr plot ARGS` in dir; exit code, stdout and stderr in out_text / err_text. */
static int run(const char *args) {
    char plot[4096];
    snprintf(plot, sizeof plot, "plot %s", args);
    return t_run_cli_at(bin, dir, 1, plot, &out_text, &err_text);
}

static void write_file(const char *rel, const char *text) { t_write_in(dir, rel, text); }

/* A run folder: metrics.csv with a loss falling at `rate`, eval.csv with 3 evaluations. */
static void make_run(const char *name, double rate) {
    char path[256], buf[65536], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(path, 0755);
    strcpy(buf, "step,epoch,lr,lr_backbone,loss,loss_ce,loss_bbox,loss_giou,class_error,cardinality_error,grad_norm,"
                "images_per_s,time_s\n");
    for (int s = 0; s < 300; s += 3) {
        double l = 4 * exp(-s * rate) + 0.2;
        snprintf(line, sizeof line, "%d,%d,1e-4,1e-5,%g,%g,%g,%g,40,2,1.5,50,%g\n", s, s / 100, l, l / 2, l / 4, l / 5,
                 s * 2.0);
        strcat(buf, line);
    }
    strcat(buf, "300,3,1e-4");   /* being written */
    snprintf(path, sizeof path, "%s/metrics.csv", name);
    write_file(path, buf);
    strcpy(buf, "step,epoch,val_loss,AP,AP50,AP75,AP_small,AP_medium,AP_large,AR1,AR10,AR100,time_s\n");
    for (int s = 100; s <= 300; s += 100) {
        snprintf(line, sizeof line, "%d,%d,%g,%g,%g,%g,-1,0.1,0.2,0.1,0.2,0.3,%g\n", s, s / 100, 1.0 - s / 400.0,
                 rate * s, rate * s * 2, rate * s * 1.5, s * 2.0);
        strcat(buf, line);
    }
    snprintf(path, sizeof path, "%s/eval.csv", name);
    write_file(path, buf);
}

static size_t count_colour(const data_image *im, draw_rgb c) {
    size_t n = 0;
    for (size_t i = 0; i < (size_t)im->w * (size_t)im->h; i++)
        n += im->rgb[3 * i] == c.r && im->rgb[3 * i + 1] == c.g && im->rgb[3 * i + 2] == c.b;
    return n;
}

/* The chart dir/name: 900x500 with lines of the first n_runs colours. */
static void check_png(const char *name, size_t n_runs, const char *what) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    data_image im = {0};
    int rc = data_image_load(&im, path);
    size_t c0 = rc ? 0 : count_colour(&im, chart_color(0)), c1 = rc ? 0 : count_colour(&im, chart_color(1));
    t_ok(rc == 0 && im.w == 900 && im.h == 500 && c0 > 200 && (n_runs < 2 || c1 > 200),
         "%s: %s 900x500 (%dx%d), run colours %zu and %zu px", what, name, im.w, im.h, c0, c1);
    data_image_free(&im);
    remove(path);
}

static void first_line(const char *what, int rc, int want_rc, const char *needle1, const char *needle2) {
    t_ok(rc == want_rc && strstr(err_text, needle1) && (!needle2 || strstr(err_text, needle2)),
         "%s: exit %d (want %d), \"%.*s\"", what, rc, want_rc, (int)strcspn(err_text, "\n"), err_text);
}

int main(void) {
    t_cli_setup(bin, sizeof bin, NULL, 0, dir, sizeof dir, "cldetr_plot");   /* bin absolute: meson's build root */
    make_run("fast", 0.03);
    make_run("slow", 0.01);

    int rc = run("fast slow");
    t_ok(rc == 0 && strstr(out_text, "wrote chart.png") && strstr(out_text, "2 runs"), "plot fast slow: exit %d, %.*s%s",
         rc, (int)strcspn(out_text, "\n"), out_text, err_text);
    check_png("chart.png", 2, "default metric loss");

    rc = run("fast/ slow --metric AP50 -o ap50.png");
    t_ok(rc == 0 && strstr(out_text, "AP50"), "--metric AP50 (a column of eval.csv): exit %d %s", rc, err_text);
    check_png("ap50.png", 2, "AP50");

    rc = run("fast slow --metric loss_giou --x time --smooth 0.6 -o t.png");
    t_ok(rc == 0, "--x time --smooth 0.6: exit %d %s", rc, err_text);
    check_png("t.png", 2, "loss_giou against time");
    rc = run("slow --x epoch --metric val_loss --linear -o e.png");
    t_ok(rc == 0 && strstr(out_text, "1 run,"), "--x epoch, one run, val_loss: exit %d %s", rc, err_text);
    check_png("e.png", 1, "val_loss against epoch");

    /* --label names the lines in the runs' order: the legend, and so the picture, changes */
    rc = run("fast slow -o a.png");
    int rc2 = run("fast slow --label \"lr 1e-4, warmup 250 steps, 4 query groups\" --label b -o b.png");
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/a.png", dir);
    snprintf(pb, sizeof pb, "%s/b.png", dir);
    data_image ia = {0}, ib = {0};
    int la = data_image_load(&ia, pa), lb = data_image_load(&ib, pb);
    t_ok(rc == 0 && rc2 == 0 && !la && !lb && ia.w == ib.w && ia.h == ib.h &&
             memcmp(ia.rgb, ib.rgb, (size_t)ia.w * ia.h * 3) != 0,
         "--label: exit %d, the legend differs from the folder names' (exit %d)", rc2, rc);
    data_image_free(&ia);
    data_image_free(&ib);
    remove(pa);
    remove(pb);

    rc = run("--help");
    t_ok(rc == 0 && strstr(out_text, "usage: cldetr plot") && strstr(out_text, "--metric"), "--help: exit %d", rc);

    /* bad input */
    rc = run("fast slow --metric nope");
    first_line("unknown metric", rc, 1, "unknown metric 'nope'", NULL);
    t_ok(strstr(err_text, "loss_giou") && strstr(err_text, "AP50") && strstr(err_text, "metrics.csv") &&
             strstr(err_text, "eval.csv"),
         "unknown metric lists the columns of metrics.csv and eval.csv");
    rc = run("fast missing-run");
    first_line("missing run folder", rc, 1, "run folder 'missing-run'", "No such file");
    write_file("notadir", "x");
    rc = run("notadir");
    first_line("a file, not a folder", rc, 1, "'notadir' is not a folder", NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/empty-run", dir);
    mkdir(path, 0755);
    rc = run("fast empty-run");
    first_line("folder without CSVs", rc, 1, "empty-run has neither metrics.csv nor eval.csv", NULL);
    t_ok(strstr(err_text, "empty-run/metrics.csv") != NULL, "and says which files it looked for");
    mkdir(strcat(path, "-2"), 0755);
    write_file("empty-run-2/eval.csv", "step,AP\n1,0.5\n");
    rc = run("empty-run-2");
    first_line("loss asked, only eval.csv present", rc, 1, "unknown metric 'loss'", "empty-run-2/metrics.csv");
    rc = run("fast --x time --metric AP");
    t_ok(rc == 0, "AP against time (eval.csv has time_s): exit %d %s", rc, err_text);
    rc = run("empty-run-2 --metric AP --x time");
    first_line("x column missing", rc, 1, "empty-run-2/eval.csv: no column 'time_s'", NULL);
    static const struct {
        const char *args, *what;
        int want_rc;
        const char *needle1, *needle2;
    } bad[] = {
        {"fast --x wall", "bad --x", 2, "cldetr plot: --x expects step, time or epoch, got 'wall'", NULL},
        {"fast --smooth 1.5", "bad --smooth", 2, "cldetr plot: --smooth expects auto or a number in [0, 1), got '1.5'",
         NULL},
        {"fast --size 10x10", "bad --size", 2, "--size", "got '10x10'"},
        {"fast --bogus", "unknown option", 2, "unknown option '--bogus'", NULL},
        {"", "no run", 2, "give at least one run folder", NULL},
        {"fast -o", "-o without a value", 2, "-o needs a value", NULL},
        {"fast slow --label a --label b --label c", "more labels than runs", 2,
         "cldetr plot: 3 --label for 2 run folders", "in the runs' order"},
        {"fast -o no/such/dir/x.png", "unwritable output", 1, "no/such/dir/x.png", NULL},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++)
        first_line(bad[i].what, run(bad[i].args), bad[i].want_rc, bad[i].needle1, bad[i].needle2);

    /* a torn line in the middle: plotted anyway, with a warning naming it */
    write_file("slow/metrics.csv", "step,loss,time_s\n1,3,1\n2,2.5,2\n3,2.0,\n4,1.1.1,4\n5,1.5,5\n");
    rc = run("slow -o w.png");
    t_ok(rc == 0 && strstr(err_text, "warning") && strstr(err_text, "slow/metrics.csv") &&
             strstr(err_text, "skipped 1 malformed line") && strstr(err_text, "line 5"),
         "torn line: exit %d, \"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);

    /* --layers: the per-layer grid from layers.csv (an empty cell: not measured) */
    write_file("fast/layers.csv", "step,group,weight_rms,grad_rms,update_ratio_log10,act_mean,act_std,act_zero_frac\n"
                                  "10,backbone.layer1,0.2,0.01,-3,0.5,0.7,0.4\n10,class_head,0.1,0.02,-2.5,,,\n"
                                  "20,backbone.layer1,0.21,0.02,-3.1,0.6,0.7,0.38\n20,class_head,0.1,0.03,-2.4,,,\n");
    write_file("slow/layers.csv", "step,group,weight_rms,grad_rms,update_ratio_log10,act_mean,act_std,act_zero_frac\n"
                                  "10,backbone.layer1,0.2,0.02,-3,0.5,0.6,0.45\n10,class_head,0.1,0.03,-2.5,,,\n");
    rc = run("fast slow --layers -o layers.png");
    struct stat sb;
    char png[400];
    snprintf(png, sizeof png, "%s/layers.png", dir);
    t_ok(rc == 0 && strstr(out_text, "per-layer statistics of 2 runs") && stat(png, &sb) == 0 && sb.st_size > 1000,
         "--layers draws the per-layer grid of two runs: exit %d %s", rc, err_text);
    rc = run("empty-run-2 --layers -o l2.png");
    first_line("--layers of a run without layers.csv", rc, 1, "layers.csv", "log.layers_every");

    free(out_text);
    free(err_text);
    t_rmtree(dir);
    return t_done();
}
