/* Layer norm over the last axis, forward (saving mean and rstd) and backward,
 * with plain C references. Kernels: cl/layernorm.cl; the parameter gradients are a
 * column reduction over rows: on CPUs a work-item per 16 columns down every
 * row, on GPUs work-group trees split into chunks plus a second pass
 * (ops_reduce_axis) when there are few columns and many rows. */
#include <math.h>

#include "cldetr/ops.h"
#include "ops/reduce_util.h"
#include "ops/op_ref.h"

/* out = (x - mean) * rstd * w + b        x, out (N, C); w, b (C); mean, rstd (N) saved;
 * with xa (and xb) given, x = xa + xb is written first */
static void forward(cd_device *dev, cd_mem out, cd_mem mean, cd_mem rstd, cd_mem x, cd_mem xa, cd_mem xb, cd_mem w,
                    cd_mem b, size_t N, size_t C, float eps) {
    if (N == 0 || C == 0) return;
    int add = cd_has(xa) && cd_has(xb);
    if (ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, "layernorm_rows_forward", N, KM(out), KM(mean), KM(rstd), KM(x), KM(w), KM(b), KUL(N),
                   KUL(C), KF(eps), KM(add ? xa : x), KM(add ? xb : x), KI(add));
        return;
    }
    size_t L = ops_reduce_wg(dev, "layernorm_forward", C);
    size_t global = N * L;
    CD_LAUNCH_WG(dev, "layernorm_forward", 1, &global, &L, KM(out), KM(mean), KM(rstd), KM(x), KM(w), KM(b),
                 KUL(C), KF(eps), KLOCAL(L * sizeof(float)), KM(add ? xa : x), KM(add ? xb : x), KI(add));
}

void op_layernorm_forward(cd_device *dev, cd_mem out, cd_mem mean, cd_mem rstd, cd_mem x,
                          cd_mem w, cd_mem b, size_t N, size_t C, float eps) {
    forward(dev, out, mean, rstd, x, cd_none(), cd_none(), w, b, N, C, eps);
}

void op_add_layernorm_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem mean, cd_mem rstd, cd_mem xa, cd_mem xb,
                              cd_mem w, cd_mem b, size_t N, size_t C, float eps) {
    forward(dev, out, mean, rstd, x, xa, xb, w, b, N, C, eps);
}

/* dx (=/+=) (may be none), and dx2 (=/+= by acc2, may be none) the same; dw +=
 * and db += (either may be none) */
static void backward(cd_device *dev, cd_mem dx, cd_mem dx2, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x,
                     cd_mem mean, cd_mem rstd, cd_mem w, size_t N, size_t C, int acc, int acc2) {
    if (N == 0 || C == 0) return;
    if (!cd_has(dx) && cd_has(dx2)) {   /* the second gradient alone: as the first */
        dx = dx2;
        acc = acc2;
        dx2 = cd_none();
    }
    int two = cd_has(dx2);
    if (cd_has(dx) && ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, "layernorm_rows_backward_dx", N, KM(dx), KM(dout), KM(x), KM(mean), KM(rstd), KM(w),
                   KUL(N), KUL(C), KI(acc), KM(two ? dx2 : dx), KI(two), KI(acc2));
    } else if (cd_has(dx)) {
        size_t L = ops_reduce_wg(dev, "layernorm_backward_dx", C);
        size_t global = N * L;
        CD_LAUNCH_WG(dev, "layernorm_backward_dx", 1, &global, &L, KM(dx), KM(dout), KM(x), KM(mean), KM(rstd),
                     KM(w), KUL(C), KI(acc), KLOCAL(L * sizeof(float)), KM(two ? dx2 : dx), KI(two), KI(acc2));
    }
    if (!cd_has(dw) && !cd_has(db)) return;
    if (ops_row_kernels(dev)) {
        int has_w = cd_has(dw), has_b = cd_has(db);
        CD_LAUNCH1(dev, "layernorm_cols_backward_params", (C + 15) / 16, KM(has_w ? dw : db), KM(has_b ? db : dw),
                   KM(dout), KM(x), KM(mean), KM(rstd), KUL(N), KUL(C), KI(has_w), KI(has_b));
        return;
    }
    ops_tiling t = ops_tile_reduction(dev, "layernorm_backward_params", 1, N, C);
    size_t local[2] = {t.LI, t.LR};
    size_t global[2] = {(C + t.LI - 1) / t.LI * t.LI, t.S * t.LR};
    int has_w = cd_has(dw), has_b = cd_has(db);
    if (t.S <= 1) {
        CD_LAUNCH_WG(dev, "layernorm_backward_params", 2, global, local, KM(has_w ? dw : db), KM(has_b ? db : dw),
                     KM(dout), KM(x), KM(mean), KM(rstd), KUL(N), KUL(C), KUL(N), KI(has_w), KI(has_b), KI(1),
                     KLOCAL(2 * t.LI * t.LR * sizeof(float)));
        return;
    }
    cd_mem part = cd_alloc(dev, 2 * t.S * C, "layer norm partial gradients");   /* (2, S, C) */
    cd_mem pw = part, pb = cd_at(part, t.S * C);
    CD_LAUNCH_WG(dev, "layernorm_backward_params", 2, global, local, KM(pw), KM(pb), KM(dout), KM(x), KM(mean),
                 KM(rstd), KUL(N), KUL(C), KUL(t.Rc), KI(has_w), KI(has_b), KI(0),
                 KLOCAL(2 * t.LI * t.LR * sizeof(float)));
    if (has_w && has_b && dw.mem == db.mem && db.off == dw.off + C) {
        /* a model's norm: its bias right after its weight, so both in one pass
         * over part's (2, S, C); each column's sum the same as alone */
        ops_reduce_axis(dev, dw, part, part, 2, t.S, C, 1.0f, 1, 0);
    } else {
        if (has_w) ops_reduce_axis(dev, dw, pw, pw, 1, t.S, C, 1.0f, 1, 0);
        if (has_b) ops_reduce_axis(dev, db, pb, pb, 1, t.S, C, 1.0f, 1, 0);
    }
    cd_free(dev, part);
}

void op_layernorm_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x,
                           cd_mem mean, cd_mem rstd, cd_mem w, size_t N, size_t C, int acc) {
    backward(dev, dx, cd_none(), dw, db, dout, x, mean, rstd, w, N, C, acc, 0);
}

void op_add_layernorm_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dw, cd_mem dbias, cd_mem dout, cd_mem x,
                               cd_mem mean, cd_mem rstd, cd_mem w, size_t N, size_t C, int acc_a, int acc_b) {
    backward(dev, da, db, dw, dbias, dout, x, mean, rstd, w, N, C, acc_a, acc_b);
}

/* ---- host references ---------------------------------------------------- */

void op_layernorm_forward_ref(double *out, double *mean, double *rstd, const double *x, const double *w,
                              const double *b, size_t N, size_t C, double eps) {
    for (size_t n = 0; n < N; n++) {
        const double *xr = x + n * C;
        double mu = 0, var = 0;
        for (size_t c = 0; c < C; c++) mu += xr[c];
        mu /= (double)C;
        for (size_t c = 0; c < C; c++) var += (xr[c] - mu) * (xr[c] - mu);
        double rs = 1.0 / sqrt(var / (double)C + eps);
        for (size_t c = 0; c < C; c++) out[n * C + c] = (xr[c] - mu) * rs * w[c] + b[c];
        if (mean) mean[n] = mu;
        if (rstd) rstd[n] = rs;
    }
}

void op_layernorm_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                               const double *mean, const double *rstd, const double *w, size_t N, size_t C,
                               int acc) {
    for (size_t n = 0; n < N; n++) {
        const double *g = dout + n * C, *xr = x + n * C;
        double mg = 0, mgx = 0;
        for (size_t c = 0; c < C; c++) {
            double xh = (xr[c] - mean[n]) * rstd[n];
            mg += g[c] * w[c];
            mgx += g[c] * w[c] * xh;
            if (dw) dw[c] += g[c] * xh;
            if (db) db[c] += g[c];
        }
        mg /= (double)C;
        mgx /= (double)C;
        if (dx)
            for (size_t c = 0; c < C; c++) {
                double xh = (xr[c] - mean[n]) * rstd[n];
                dx[n * C + c] = (acc ? dx[n * C + c] : 0.0) + rstd[n] * (g[c] * w[c] - mg - xh * mgx);
            }
    }
}
