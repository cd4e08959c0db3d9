/* Helpers shared by the tests of conv2d, batch norm and max pool: random
 * host tensors in double (exactly representable in float), device copies at an
 * offset inside a NaN-filled buffer, read-back, and central finite differences. */
#ifndef CLDETR_CONV_TEST_UTIL_H
#define CLDETR_CONV_TEST_UTIL_H

#include "../check.h"
#include "cldetr/ops.h"
#include "ops/op_ref.h"

static cd_device *dev;

/* n values uniform in [lo, hi), rounded to float so host and device see the same input. */
static double *rnd(size_t n, double lo, double hi) {
    double *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)t_uniform(lo, hi);
    return p;
}

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* A device tensor of n floats at offset `off` in a buffer that is NaN around and,
 * when h is NULL, under it too (so an op that reads what it should write shows). */
static cd_mem up(const double *h, size_t n, size_t off) {
    cd_mem base = cd_alloc(dev, n + off + 5, "test"), m = cd_at(base, off);
    cd_fill(dev, base, NAN, n + off + 5);
    if (h) {
        float *f = malloc((n ? n : 1) * sizeof *f);
        for (size_t i = 0; i < n; i++) f[i] = (float)h[i];
        cd_write(dev, m, f, n);
        free(f);
    }
    return m;
}

static double *down(cd_mem m, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    double *d = dalloc(n);
    cd_read(dev, f, m, n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    free(f);
    return d;
}

/* The floats just before and after a tensor are still NaN (nothing wrote out of bounds). */
static int guards_intact(cd_mem m, size_t n) {
    float before, after;
    cd_read(dev, &before, cd_at(m, (size_t)0 - 1), 1);
    cd_read(dev, &after, cd_at(m, n), 1);
    return isnan(before) && isnan(after);
}

/* d loss / d p[i] by central differences with step h, for every i < n. */
static void fd_grad(double *g, double *p, size_t n, double h, double (*loss)(void *), void *ctx) {
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss(ctx);
        p[i] = keep - h;
        double lm = loss(ctx);
        p[i] = keep;
        g[i] = (lp - lm) / (2 * h);
    }
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

#endif
