/* matcher_solve: brute force over every assignment for all shapes up to 7x7
 * (rectangular both ways), scipy totals and indices on large matrices
 * (fixture), empty shapes and non-finite costs. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/matcher.h"
#include "../check.h"
#include "fixture.h"

/* Minimum over injective maps of the n rows of a (n <= m) into the m columns. */
static double brute_rec(const double *a, size_t n, size_t m, size_t i, unsigned used, double acc) {
    if (i == n) return acc;
    double best = INFINITY;
    for (size_t j = 0; j < m; j++) {
        if (used & (1u << j)) continue;
        double v = brute_rec(a, n, m, i + 1, used | (1u << j), acc + a[i * m + j]);
        if (v < best) best = v;
    }
    return best;
}

static double brute_min(const double *cost, size_t R, size_t C) {
    if (R <= C) return brute_rec(cost, R, C, 0, 0, 0);
    double t[49];
    for (size_t i = 0; i < R; i++)
        for (size_t j = 0; j < C; j++) t[j * R + i] = cost[i * C + j];
    return brute_rec(t, C, R, 0, 0, 0);
}

/* The pairs form a valid assignment of the shape: min(R,C) of them, rows
 * strictly increasing, columns distinct, all in range; *sum = their cost. */
static int valid_assignment(const size_t *rows, const size_t *cols, const double *cost,
                            size_t R, size_t C, double *sum) {
    size_t n = CD_MIN(R, C);
    unsigned char *seen = calloc(C + 1, 1);
    int ok = 1;
    *sum = 0;
    for (size_t k = 0; k < n; k++) {
        if (rows[k] >= R || cols[k] >= C || seen[cols[k]] || (k > 0 && rows[k] <= rows[k - 1])) { ok = 0; break; }
        seen[cols[k]] = 1;
        *sum += cost[rows[k] * C + cols[k]];
    }
    free(seen);
    return ok;
}

static void fill(double *a, size_t n, int kind) {
    for (size_t i = 0; i < n; i++) {
        double u = t_uniform(0, 1);
        a[i] = kind == 0 ? u : kind == 1 ? floor(10 * u) : kind == 2 ? 1e3 * (2 * u - 1) : 0.5;
    }
}

static void test_brute_force(void) {
    double cost[49];
    size_t rows[7], cols[7];
    t_seed(7);
    for (size_t R = 1; R <= 7; R++)
        for (size_t C = 1; C <= 7; C++) {
            int ok = 1;
            double worst = 0;
            /* kinds: 0 uniform, 1 integers 0..9 (ties), 2 wide signed, 3 all equal */
            for (int kind = 0; kind < 4 && ok; kind++)
                for (int trial = 0; trial < (kind == 3 ? 1 : 5) && ok; trial++) {
                    fill(cost, R * C, kind);
                    double total = NAN, sum, ref = brute_min(cost, R, C);
                    if (matcher_solve(rows, cols, &total, cost, R, C) != 0) {
                        t_diag("%zux%zu: unexpected error: %s", R, C, cd_errbuf());
                        ok = 0;
                        break;
                    }
                    if (!valid_assignment(rows, cols, cost, R, C, &sum)) {
                        t_diag("%zux%zu kind %d: not a valid assignment", R, C, kind);
                        ok = 0;
                    }
                    double err = fabs(total - ref), tol = 1e-12 * (1 + fabs(ref));
                    if (err > tol || fabs(sum - total) > tol) {
                        t_diag("%zux%zu kind %d: total %.17g, pairs sum %.17g, brute force %.17g",
                               R, C, kind, total, sum, ref);
                        ok = 0;
                    }
                    if (err > worst) worst = err;
                }
            t_ok(ok, "%zux%zu: optimal vs brute force over all assignments (16 matrices, max err %.2g)",
                 R, C, worst);
        }
}

static void test_empty_and_bad(void) {
    size_t rows[4], cols[4];
    double total = 123, cost[12];
    for (int i = 0; i < 12; i++) cost[i] = i;
    t_ok(matcher_solve(rows, cols, &total, cost, 0, 5) == 0 && total == 0, "0x5: no pairs, total 0");
    t_ok(matcher_solve(rows, cols, &total, cost, 5, 0) == 0 && total == 0, "5x0: no pairs, total 0");
    t_ok(matcher_solve(rows, cols, NULL, cost, 0, 0) == 0, "0x0: no pairs");

    cost[1 * 4 + 2] = NAN;
    int rc = matcher_solve(rows, cols, &total, cost, 3, 4);
    t_ok(rc == -1 && strstr(cd_errbuf(), "cost[1,2] is nan") != NULL,
         "NaN cost is refused, naming the entry: '%s'", cd_errbuf());
    cost[1 * 4 + 2] = 6;
    cost[2 * 4 + 3] = -INFINITY;
    rc = matcher_solve(rows, cols, &total, cost, 3, 4);
    t_ok(rc == -1 && strstr(cd_errbuf(), "cost[2,3] is -inf") != NULL,
         "-inf cost is refused, naming the entry: '%s'", cd_errbuf());
}

static void test_scipy_fixture(void) {
    fx_file fx;
    if (fx_load(&fx, "matcher_scipy.bin")) { t_ok(0, "load matcher_scipy.bin"); return; }
    const fx_array *spec = fx_get(&fx, "spec"), *tot = fx_get(&fx, "total");
    if (!spec || !tot) { t_ok(0, "matcher fixture arrays present"); fx_free(&fx); return; }
    for (size_t i = 0; i < spec->dims[0]; i++) {
        uint64_t s = (uint64_t)spec->data[4 * i];
        size_t R = (size_t)spec->data[4 * i + 1], C = (size_t)spec->data[4 * i + 2];
        int kind = (int)spec->data[4 * i + 3];
        double *cost = malloc(R * C * sizeof *cost);
        for (size_t k = 0; k < R * C; k++) {   /* the kinds of make_loss_fixtures.py */
            double u = cd_rng_uniform(&s)  /* the generator of the matcher fixture */;
            cost[k] = kind == 0 ? u : kind == 1 ? floor(100 * u) : kind == 3 ? 2000 * u - 1000
                    : kind == 4 ? floor(3 * u) : (double)((k / C + 1) * (k % C + 1));
        }
        size_t n = CD_MIN(R, C);
        size_t *rows = malloc(n * sizeof *rows), *cols = malloc(n * sizeof *cols);
        double total = NAN, sum = NAN, ref = tot->data[i];
        double t0 = cd_now();
        int rc = matcher_solve(rows, cols, &total, cost, R, C);
        double ms = 1e3 * (cd_now() - t0);
        int valid = rc == 0 && valid_assignment(rows, cols, cost, R, C, &sum);
        double rel = fabs(total - ref) / CD_MAX(1.0, fabs(ref));
        t_ok(valid && rel <= 1e-9 && fabs(sum - total) <= 1e-9 * CD_MAX(1.0, fabs(ref)),
             "%zux%zu kind %d: total %.12g vs scipy %.12g (rel err %.2g, %.2f ms)",
             R, C, kind, total, ref, rel, ms);
        if (kind == 0 || kind == 3) {   /* continuous costs: the optimum is unique */
            char name[32];
            snprintf(name, sizeof name, "cols%zu", i);
            const fx_array *sc = fx_get(&fx, name);
            size_t diff = 0;
            for (size_t k = 0; sc && k < n; k++) diff += (double)cols[k] != sc->data[k];
            t_ok(sc && sc->n == n && diff == 0, "%zux%zu kind %d: same pairs as scipy (%zu differ)",
                 R, C, kind, diff);
        }
        free(cost); free(rows); free(cols);
    }
    fx_free(&fx);
}

int main(void) {
    (void)t_close_f;   /* check.h helper this test does not need */
    test_brute_force();
    test_empty_and_bad();
    test_scipy_fixture();
    return t_done();
}
