/* Helpers of the tests of element-wise, dropout, reduction, softmax, layer norm
 * and permute ops (tests/ops/test_<op>.c): one device per test
 * binary, device tensors at nonzero offsets with sentinels around them (stray
 * writes show), NaN-filled outputs for acc = 0 (a kernel that reads what it
 * should only write shows), and central finite differences in double.
 * Include it from exactly one .c file per test binary. */
#ifndef CLDETR_OPS_TEST_UTIL_H
#define CLDETR_OPS_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cldetr/ops.h"
#include "ops/op_ref.h"

#define OT_FN static __attribute__((unused))
#define OT_GUARD 5                  /* sentinel floats before and after each tensor */
#define OT_SENTINEL 1234.5f

static cd_device *ot_dev;

/* Open the default device (CLDETR_DEVICE picks another) once per binary. */
OT_FN cd_device *ot_open(void) {
    /* every binary uses every check.h helper through here, so -Wunused stays quiet */
    (void)t_close_f; (void)t_close_d; (void)t_seed; (void)t_uniform; (void)t_diag;
    if (ot_dev) return ot_dev;
    ot_dev = cd_open(NULL, 0);
    if (!ot_dev) {
        printf("Bail out! no OpenCL device: %s\n", cd_errbuf());
        exit(1);
    }
    t_diag("device: %s (%s)", ot_dev->info.name, ot_dev->info.platform_name);
    return ot_dev;
}

OT_FN int ot_finish(void) {
    cd_close(ot_dev);
    ot_dev = NULL;
    return t_done();
}

/* A tensor: host values h (doubles holding float values) and the device copy d
 * at float offset `off` of its buffer, with OT_GUARD sentinels on each side. */
typedef struct { double *h; cd_mem buf, d; size_t n, off; } ot_tensor;

OT_FN ot_tensor ot_from(const double *h, size_t n, size_t off) {
    ot_tensor t;
    t.n = n;
    t.off = off + OT_GUARD;
    t.h = malloc((n ? n : 1) * sizeof *t.h);
    size_t total = t.off + n + OT_GUARD;
    float *f = malloc(total * sizeof *f);
    for (size_t i = 0; i < total; i++) f[i] = OT_SENTINEL;
    for (size_t i = 0; i < n; i++) { f[t.off + i] = (float)h[i]; t.h[i] = f[t.off + i]; }
    t.buf = cd_alloc(ot_open(), total, "test tensor");
    cd_write(ot_dev, t.buf, f, total);
    t.d = cd_at(t.buf, t.off);
    free(f);
    return t;
}

/* Uniform random values in [lo, hi). */
OT_FN ot_tensor ot_rand(size_t n, size_t off, double lo, double hi) {
    double *h = malloc((n ? n : 1) * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = t_uniform(lo, hi);
    ot_tensor t = ot_from(h, n, off);
    free(h);
    return t;
}

/* An output for acc = 0: NaN on the device (reading it would poison the result), 0 on the host. */
OT_FN ot_tensor ot_nan(size_t n, size_t off) {
    double *h = calloc(n ? n : 1, sizeof *h);
    ot_tensor t = ot_from(h, n, off);
    free(h);
    if (n) cd_fill(ot_dev, t.d, NAN, n);
    return t;
}

/* Refresh t.h from the device; returns 1 when the sentinels are intact. */
OT_FN int ot_get(ot_tensor *t) {
    size_t total = t->off + t->n + OT_GUARD;
    float *f = malloc(total * sizeof *f);
    cd_read(ot_dev, f, t->buf, total);
    int guard_ok = 1;
    for (size_t i = 0; i < total; i++) {
        if (i >= t->off && i < t->off + t->n) t->h[i - t->off] = f[i];
        else if (f[i] != OT_SENTINEL) guard_ok = 0;
    }
    free(f);
    return guard_ok;
}

OT_FN double *ot_copy(const double *x, size_t n) {
    double *y = malloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* Compare the device tensor with ref: one TAP check; a write outside the tensor
 * fails it too. ref may be t->h (the host copy updated by a reference op); t->h
 * holds the device values afterwards. */
OT_FN int ot_check(const char *name, ot_tensor *t, const double *ref_in, double atol, double rtol) {
    double *ref = ot_copy(ref_in, t->n), *got = malloc((t->n ? t->n : 1) * sizeof *got);
    int guard_ok = ot_get(t);
    memcpy(got, t->h, t->n * sizeof *got);
    if (!guard_ok) t_diag("%s: the op wrote outside its tensor (sentinels changed)", name);
    int ok = 1;
    if (!guard_ok) {
        t_ok(0, "%s: writes stay inside the tensor", name);
        ok = 0;
    } else {
        ok = t_close_d(name, ref, got, t->n, atol, rtol);
    }
    free(got);
    free(ref);
    return ok;
}

OT_FN void ot_free(ot_tensor *t) {
    cd_free(ot_dev, t->buf);
    free(t->h);
    t->h = NULL;
}

/* Central differences of a scalar loss(ctx) with respect to x[0..n): grad[j] =
 * (L(x + h e_j) - L(x - h e_j)) / 2h, in double. loss reads x through ctx. */
typedef double (*ot_loss_fn)(void *ctx);
OT_FN void ot_fd_grad(double *x, size_t n, double h, ot_loss_fn loss, void *ctx, double *grad) {
    for (size_t j = 0; j < n; j++) {
        double keep = x[j];
        x[j] = keep + h;
        double lp = loss(ctx);
        x[j] = keep - h;
        double lm = loss(ctx);
        x[j] = keep;
        grad[j] = (lp - lm) / (2 * h);
    }
}

/* sum_i dout[i] * out[i] */
OT_FN double ot_dot(const double *dout, const double *out, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += dout[i] * out[i];
    return s;
}

#endif
