/* The op-check helpers (see src/ops/op_check.h): random inputs, device buffers
 * with NaN guards at an offset, comparison and finite differences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/op_check.h"

double *op_rand(uint64_t *rng, size_t n, double lo, double hi) {
    double *v = cd_xmalloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)cd_rng_range(rng, lo, hi);
    return v;
}

double *op_zeros(size_t n) { return cd_xcalloc(n ? n : 1, sizeof(double)); }

/* The guards and the values go in one write of the whole buffer: oclgrind (21.10)
 * forgets what a buffer's earlier writes initialised when the host writes part of
 * it, and would report the guards and the tensor's tail as uninitialised. */
cd_mem op_upload(cd_device *dev, const double *h, size_t n, size_t off) {
    size_t before = OP_GUARD + off, total = before + n + OP_GUARD;
    cd_mem base = cd_alloc(dev, total, "op check tensor");
    float *f = cd_xmalloc(total * sizeof *f);
    for (size_t i = 0; i < total; i++) f[i] = NAN;
    if (h)
        for (size_t i = 0; i < n; i++) f[before + i] = (float)h[i];
    cd_write(dev, base, f, total);
    free(f);
    return cd_at(base, before);
}

double *op_download(cd_device *dev, cd_mem m, size_t n) {
    float *f = cd_xmalloc((n ? n : 1) * sizeof *f);
    double *d = op_zeros(n);
    if (n) cd_read(dev, f, m, n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    free(f);
    return d;
}

int op_guards_intact(cd_device *dev, cd_mem m, size_t n) {
    size_t before = m.off, total = before + n + OP_GUARD;
    float *f = cd_xmalloc(total * sizeof *f);
    cd_mem base = m;
    base.off = 0;
    cd_read(dev, f, base, total);
    int ok = 1;
    for (size_t i = 0; i < total; i++)
        if ((i < before || i >= before + n) && !isnan(f[i])) ok = 0;
    free(f);
    return ok;
}

void op_release(cd_device *dev, cd_mem m) { cd_free(dev, m); }   /* cd_free ignores the offset */

size_t op_compare(const char *what, const double *ref, const double *got, size_t n, double atol, double rtol,
                  char *msg, size_t msg_len) {
    size_t bad = 0, o = 0;
    double max_abs = 0;
    char first[512] = "";
    for (size_t i = 0; i < n; i++) {
        double d = fabs(ref[i] - got[i]);
        if (d > max_abs) max_abs = d;
        if (d <= atol + rtol * fabs(ref[i])) continue;   /* NaN on either side fails here */
        if (bad < 5 && o < sizeof first)
            o += (size_t)snprintf(first + o, sizeof first - o, "%s[%zu] got %.9g, reference %.9g",
                                  bad ? "; " : "", i, got[i], ref[i]);
        bad++;
    }
    if (msg && msg_len) {
        if (bad)
            snprintf(msg, msg_len, "%s: %zu of %zu mismatched (atol %g rtol %g): %s", what, bad, n, atol, rtol, first);
        else
            snprintf(msg, msg_len, "%s: n=%zu, max abs err %.3g", what, n, max_abs);
    }
    return bad;
}

int op_check_device(cd_device *dev, const char *what, cd_mem m, const double *ref, size_t n, double atol,
                    double rtol, char *msg, size_t msg_len) {
    double *got = op_download(dev, m, n);
    size_t bad = op_compare(what, ref, got, n, atol, rtol, msg, msg_len);
    free(got);
    if (bad) return -1;
    if (!op_guards_intact(dev, m, n)) {
        snprintf(msg, msg_len, "%s: the op wrote outside its tensor (the NaN guards changed)", what);
        return -1;
    }
    return 0;
}

void op_fd_grad(double *grad, double *x, size_t n, double h, double (*loss)(void *ctx), void *ctx) {
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

double op_dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
