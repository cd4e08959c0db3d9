/* tests/check.h — a minimal TAP harness: every check is one "ok"/"not ok" line,
 * meson (protocol: 'tap') counts them, and the binary exits non-zero when any
 * check failed. Header-only: include it from exactly one .c file per test. */
#ifndef CLDETR_TEST_CHECK_H
#define CLDETR_TEST_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

static int t_count __attribute__((unused)), t_failed __attribute__((unused));

/* One check. `ok` nonzero = pass. The name is printf-style. */
static void t_ok(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void t_ok(int ok, const char *fmt, ...) {
    va_list ap;
    t_count++;
    if (!ok) t_failed++;
    printf("%s %d - ", ok ? "ok" : "not ok", t_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Diagnostics line (TAP comment). */
static void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void t_diag(const char *fmt, ...) {
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* |ref - got| <= atol + rtol*|ref| elementwise; NaN in either fails. Prints the
 * first 5 mismatches with their index, and the max abs/rel error. Returns 1 if close. */
static inline int t_close_d(const char *name, const double *ref, const double *got, size_t n,
                     double atol, double rtol) {
    size_t bad = 0;
    double max_abs = 0, max_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(ref[i] - got[i]);
        double r = d / (fabs(ref[i]) + 1e-30);
        int fine = d <= atol + rtol * fabs(ref[i]);
        if (isnan(ref[i]) || isnan(got[i])) fine = 0;
        if (d > max_abs) max_abs = d;
        if (fabs(ref[i]) > atol && r > max_rel) max_rel = r;
        if (!fine) {
            if (bad < 5) t_diag("%s[%zu]: ref %.9g got %.9g (abs err %.3g)", name, i, ref[i], got[i], d);
            bad++;
        }
    }
    if (bad) t_diag("%s: %zu of %zu mismatched (atol %g rtol %g)", name, bad, n, atol, rtol);
    t_ok(bad == 0, "%s (n=%zu, max abs err %.3g, max rel err %.3g)", name, n, max_abs, max_rel);
    return bad == 0;
}

static inline int t_close_f(const char *name, const float *ref, const float *got, size_t n,
                     double atol, double rtol) {
    double *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
    for (size_t i = 0; i < n; i++) { a[i] = ref[i]; b[i] = got[i]; }
    int r = t_close_d(name, a, b, n, atol, rtol);
    free(a); free(b);
    return r;
}

/* Print the TAP plan and return the exit code for main. */
static inline int t_done(void) {
    printf("1..%d\n", t_count);
    if (t_failed) fprintf(stderr, "%d of %d checks failed\n", t_failed, t_count);
    return t_failed ? 1 : 0;
}

/* Deterministic test random numbers from the one host generator (cd_rng_*,
 * splitmix64), uniform in [lo, hi). */
__attribute__((unused)) static uint64_t t_rng_state = 0x9E3779B97F4A7C15ULL;
static inline void t_seed(unsigned long long s) { t_rng_state = s; }
static inline double t_uniform(double lo, double hi) { return cd_rng_range(&t_rng_state, lo, hi); }

#endif
