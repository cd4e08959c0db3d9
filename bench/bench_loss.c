/* bench_loss: time of matcher_solve on a 100x100 matrix and of criterion_loss
 * on DETR-R50's shapes (batch 8, 6 decoder layers, 100 queries, 92 logits,
 * ~7 targets per image). Host code, single thread. Usage: bench_loss [reps]. */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/common.h"
#include "cldetr/loss.h"
#include "cldetr/matcher.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static double uniform(void) { return cd_rng_uniform(&rng); }   /* [0, 1) */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and min of the times of reps runs, in ms. */
static void report(const char *what, double *t, int reps) {
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    printf("%-52s median %8.3f ms   min %8.3f ms   (%d runs)\n", what, 1e3 * t[reps / 2], 1e3 * t[0], reps);
}

static void bench_match(size_t R, size_t C, int reps, const char *what) {
    double *cost = cd_xmalloc(R * C * sizeof *cost), *t = cd_xmalloc((size_t)reps * sizeof *t);
    size_t n = CD_MIN(R, C), *rows = cd_xmalloc(n * sizeof *rows), *cols = cd_xmalloc(n * sizeof *cols);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < R * C; i++) cost[i] = uniform();
        double t0 = cd_now();
        if (matcher_solve(rows, cols, NULL, cost, R, C)) cd_fatal("%s", cd_errbuf());
        t[r] = cd_now() - t0;
    }
    report(what, t, reps);
    free(cost); free(t); free(rows); free(cols);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 50;
    if (reps < 1) cd_fatal("usage: bench_loss [reps >= 1]");

    bench_match(100, 100, reps, "matcher_solve 100x100 uniform");
    bench_match(100, 7, reps, "matcher_solve 100x7 uniform");

    enum { L = 6, B = 8, Q = 100, K1 = 92 };
    float *logits = cd_xmalloc((size_t)L * B * Q * K1 * sizeof *logits);
    float *boxes = cd_xmalloc((size_t)L * B * Q * 4 * sizeof *boxes);
    float *dlogits = cd_xmalloc((size_t)L * B * Q * K1 * sizeof *dlogits);
    float *dboxes = cd_xmalloc((size_t)L * B * Q * 4 * sizeof *dboxes);
    for (size_t i = 0; i < (size_t)L * B * Q * K1; i++) logits[i] = (float)(4 * uniform() - 2);
    for (size_t i = 0; i < (size_t)L * B * Q * 4; i++) boxes[i] = (float)(0.1 + 0.8 * uniform());
    criterion_target tg[B];
    int labels[B * 11];
    float tboxes[B * 11 * 4];
    size_t total = 0;
    for (size_t b = 0; b < B; b++) {   /* 4..10 targets, mean 7 */
        size_t n = 4 + (size_t)(7 * uniform());
        tg[b] = (criterion_target){labels + total, tboxes + 4 * total, n};
        for (size_t i = 0; i < n; i++) {
            labels[total + i] = 1 + (int)(90 * uniform());
            tboxes[4 * (total + i) + 0] = (float)(0.2 + 0.6 * uniform());
            tboxes[4 * (total + i) + 1] = (float)(0.2 + 0.6 * uniform());
            tboxes[4 * (total + i) + 2] = (float)(0.05 + 0.3 * uniform());
            tboxes[4 * (total + i) + 3] = (float)(0.05 + 0.3 * uniform());
        }
        total += n;
    }
    criterion_opts opt;
    criterion_opts_default(&opt);
    criterion_result res = {0};
    double *t = cd_xmalloc((size_t)reps * sizeof *t);
    char what[128];
    for (int grad = 1; grad >= 0; grad--) {
        for (int r = 0; r < reps; r++) {
            double t0 = cd_now();
            if (criterion_loss(&res, grad ? dlogits : NULL, grad ? dboxes : NULL, logits, boxes, tg,
                               L, B, Q, K1, &opt))
                cd_fatal("%s", cd_errbuf());
            t[r] = cd_now() - t0;
        }
        snprintf(what, sizeof what, "criterion_loss 6x8x100x92, %zu targets%s", total,
                 grad ? ", with gradient" : ", loss only");
        report(what, t, reps);
    }
    printf("total %.6f  class_error %.2f  loss_ce %.6f  loss_bbox %.6f  loss_giou %.6f\n", res.total,
           res.class_error, res.layer[L - 1].loss_ce, res.layer[L - 1].loss_bbox, res.layer[L - 1].loss_giou);
    criterion_result_free(&res);
    free(t); free(logits); free(boxes); free(dlogits); free(dboxes);
    return 0;
}
