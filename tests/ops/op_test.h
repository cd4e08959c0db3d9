/* TAP glue of the op tests (tests/ops/test_<op>.c) over the library's op-check
 * harness (src/ops/op_check.h): one device per test binary, random inputs from
 * cd_rng_* (t_seed, t_uniform), device tensors at nonzero offsets inside NaN guards (stray writes
 * show, and NaN under an acc = 0 output poisons a kernel that reads it), one
 * comparison (op_compare) and one finite-difference helper (op_fd_grad).
 * ot_cases(op) runs the cases of the shared table cd_op_cases for that op.
 * Include it from exactly one .c file per test binary. */
#ifndef CLDETR_OP_TEST_H
#define CLDETR_OP_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cldetr/ops.h"
#include "cldetr/selftest.h"
#include "ops/op_check.h"
#include "ops/op_ref.h"

#define OT_FN static __attribute__((unused))

static cd_device *ot_dev;

/* Open the default device (CLDETR_DEVICE picks another) once per binary; without one the test is skipped. */
OT_FN cd_device *ot_open(void) {
    if (ot_dev) return ot_dev;
    ot_dev = cd_open(NULL, 0);
    if (!ot_dev) {
        printf("1..0 # SKIP no OpenCL device: %s\n", cd_errbuf());
        exit(0);
    }
    t_diag("device: %s (%s)", ot_dev->info.name, ot_dev->info.platform_name);
    return ot_dev;
}

OT_FN int ot_finish(void) {
    cd_close(ot_dev);
    ot_dev = NULL;
    return t_done();
}

/* n values uniform in [lo, hi) from check.h's t_rng_state (t_seed), rounded to float (malloc'd) */
OT_FN double *ot_randv(size_t n, double lo, double hi) { return op_rand(&t_rng_state, n, lo, hi); }

/* One TAP check: |ref - got| <= atol + rtol |ref| everywhere (NaN fails); the first
 * mismatches and where go to the TAP diagnostics. Returns 1 when close. */
OT_FN int ot_close(const char *name, const double *ref, const double *got, size_t n, double atol, double rtol) {
    char msg[1024];
    size_t bad = op_compare(name, ref, got, n, atol, rtol, msg, sizeof msg);
    if (bad) t_diag("%s", msg);
    t_ok(bad == 0, "%s", bad ? name : msg);
    return bad == 0;
}

/* ot_close of float arrays */
OT_FN int ot_close_f(const char *name, const float *ref, const float *got, size_t n, double atol, double rtol) {
    double *a = op_zeros(n), *b = op_zeros(n);
    for (size_t i = 0; i < n; i++) { a[i] = ref[i]; b[i] = got[i]; }
    int ok = ot_close(name, a, b, n, atol, rtol);
    free(a); free(b);
    return ok;
}

/* A tensor: host values h (doubles holding float values) and the device copy d
 * (op_upload: at float offset `off` past a NaN guard). */
typedef struct { double *h; cd_mem d; size_t n; } ot_tensor;

OT_FN ot_tensor ot_from(const double *h, size_t n, size_t off) {
    ot_tensor t = {op_zeros(n), op_upload(ot_open(), h, n, off), n};
    for (size_t i = 0; i < n; i++) t.h[i] = (float)h[i];
    return t;
}

/* Uniform random values in [lo, hi). */
OT_FN ot_tensor ot_rand(size_t n, size_t off, double lo, double hi) {
    double *h = ot_randv(n, lo, hi);
    ot_tensor t = ot_from(h, n, off);
    free(h);
    return t;
}

/* An output for acc = 0: NaN on the device (reading it would poison the result), 0 on the host. */
OT_FN ot_tensor ot_nan(size_t n, size_t off) {
    ot_tensor t = {op_zeros(n), op_upload(ot_open(), NULL, n, off), n};
    return t;
}

/* Refresh t.h from the device; returns 1 when the guards are intact. */
OT_FN int ot_get(ot_tensor *t) {
    double *d = op_download(ot_dev, t->d, t->n);
    memcpy(t->h, d, t->n * sizeof *d);
    free(d);
    return op_guards_intact(ot_dev, t->d, t->n);
}

OT_FN double *ot_copy(const double *x, size_t n) {
    double *y = op_zeros(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}

/* Compare the device tensor with ref: one TAP check; a write outside the tensor
 * fails it too. ref may be t->h (the host copy updated by a reference op); t->h
 * holds the device values afterwards. */
OT_FN int ot_check(const char *name, ot_tensor *t, const double *ref_in, double atol, double rtol) {
    double *ref = ot_copy(ref_in, t->n);
    int ok;
    if (!ot_get(t)) {
        t_diag("%s: the op wrote outside its tensor (the NaN guards changed)", name);
        t_ok(0, "%s: writes stay inside the tensor", name);
        ok = 0;
    } else {
        ok = ot_close(name, ref, t->h, t->n, atol, rtol);
    }
    free(ref);
    return ok;
}

/* A key-padding mask (B, Lk), 1 = padding (softmax, attention): image b
 * keeps its first valid[b] keys, image 0 all, image 1 none (when B > 1: every
 * test shape has a fully padded image), the others 1 + (7919 b) % Lk. */
OT_FN ot_tensor ot_key_mask(size_t B, size_t Lk, size_t off) {
    double *m = malloc(B * Lk * sizeof *m);
    for (size_t b = 0; b < B; b++) {
        size_t valid = b == 1 ? 0 : b == 0 ? Lk : 1 + (b * 7919) % Lk;
        for (size_t k = 0; k < Lk; k++) m[b * Lk + k] = k >= valid;
    }
    ot_tensor t = ot_from(m, B * Lk, off);
    free(m);
    return t;
}

OT_FN void ot_free(ot_tensor *t) {
    op_release(ot_dev, t->d);
    free(t->h);
    t->h = NULL;
}

/* Every case of the shared table cd_op_cases whose op is `op`: one TAP check each. */
OT_FN void ot_cases(const char *op) {
    for (const cd_selftest *c = cd_op_cases; c->name; c++) {
        if (strcmp(c->op, op)) continue;
        char msg[1024] = "";
        int rc = c->run(ot_open(), c, msg, sizeof msg);
        t_ok(rc == 0, "op case '%s': %s", c->name, msg);
    }
}

#endif
