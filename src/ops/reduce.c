/* Reductions over one axis (sum, mean, sum of squares), their broadcast
 * backward, and the per-channel sums used by bias and scale gradients.
 * Deterministic: every sum has a fixed order for a given device (per-item
 * strided sums, then a local-memory tree; large sums with few outputs run in
 * two passes through a partial-sum buffer); no atomics. Kernels: cl/reduce.cl. */
#include <math.h>

#include "cldetr/ops.h"
#include "ops/reduce_util.h"
#include "ops/op_ref.h"

/* Enough work-groups to keep a GPU busy before a sum is split into chunks. */
#define REDUCE_TARGET_GROUPS 256

ops_tiling ops_tile_reduction(cd_device *dev, const char *kernel, size_t O, size_t R, size_t I) {
    ops_tiling t;
    size_t wg = ops_pow2_floor(CD_MIN(cd_kernel_wg_size(dev, kernel), (size_t)256));
    t.LI = CD_MIN(CD_MIN(ops_pow2_ceil(CD_MAX(I, (size_t)1)), (size_t)32), wg);
    t.LR = CD_MIN(wg / t.LI, ops_pow2_ceil(CD_MAX(R, (size_t)1)));
    size_t groups = O * ((I + t.LI - 1) / t.LI);
    t.S = 1;
    if (groups < REDUCE_TARGET_GROUPS && R > 4 * t.LR)
        t.S = CD_MIN((REDUCE_TARGET_GROUPS + groups - 1) / groups, (R + 4 * t.LR - 1) / (4 * t.LR));
    t.Rc = (R + t.S - 1) / t.S;
    if (t.Rc) t.S = (R + t.Rc - 1) / t.Rc;     /* no empty trailing chunk */
    return t;
}

void ops_reduce_axis(cd_device *dev, cd_mem out, cd_mem x, cd_mem y, size_t O, size_t R, size_t I,
                     float alpha, int acc, int mode) {
    if (O == 0 || I == 0) return;
    if (mode != 2) y = x;
    if (ops_row_kernels(dev)) {   /* CPUs: a work-item per 16 columns (or per row when I = 1) */
        CD_LAUNCH2(dev, "reduce_axis_cols", (I + 15) / 16, O, KM(out), KM(x), KM(y), KUL(O), KUL(R), KUL(I),
                   KF(alpha), KI(acc), KI(mode));
        return;
    }
    ops_tiling t = ops_tile_reduction(dev, "reduce_axis", O, R, I);
    size_t local[2] = {t.LI, t.LR};
    size_t global[2] = {(I + t.LI - 1) / t.LI * t.LI, O * t.S * t.LR};
    if (t.S <= 1) {
        CD_LAUNCH_WG(dev, "reduce_axis", 2, global, local, KM(out), KM(x), KM(y), KUL(R), KUL(I), KUL(R), KUL(1),
                     KF(alpha), KI(acc), KI(mode), KLOCAL(t.LI * t.LR * sizeof(float)));
        return;
    }
    /* pass 1: partial sums of S chunks (O, S, I); pass 2: sum the chunks */
    cd_mem part = cd_alloc(dev, O * t.S * I, "reduction partial sums");
    CD_LAUNCH_WG(dev, "reduce_axis", 2, global, local, KM(part), KM(x), KM(y), KUL(R), KUL(I), KUL(t.Rc),
                 KUL(t.S), KF(1.0f), KI(0), KI(mode), KLOCAL(t.LI * t.LR * sizeof(float)));
    ops_reduce_axis(dev, out, part, part, O, t.S, I, alpha, acc, 0);
    cd_free(dev, part);          /* the in-order queue runs pass 2 before any reuse */
}

void ops_reduce_channels(cd_device *dev, cd_mem out, cd_mem x, cd_mem y, size_t B, size_t C, size_t HW, int mode) {
    if (HW == 1) { ops_reduce_axis(dev, out, x, y, 1, B, C, 1.0f, 1, mode); return; }
    if (B == 1) { ops_reduce_axis(dev, out, x, y, C, HW, 1, 1.0f, 1, mode); return; }
    cd_mem plane = cd_alloc(dev, B * C, "per-plane sums");
    ops_reduce_axis(dev, plane, x, y, B * C, HW, 1, 1.0f, 0, mode);    /* (B, C): sum over HW */
    ops_reduce_axis(dev, out, plane, plane, 1, B, C, 1.0f, 1, 0);       /* (C): sum over B */
    cd_free(dev, plane);
}

void op_reduce_sum(cd_device *dev, cd_mem out, cd_mem x, size_t O, size_t R, size_t I, float alpha, int acc) {
    ops_reduce_axis(dev, out, x, x, O, R, I, alpha, acc, 0);
}

void op_broadcast(cd_device *dev, cd_mem dx, cd_mem dout, size_t O, size_t R, size_t I, float alpha, int acc) {
    size_t n = O * R * I;
    if (n == 0) return;
    CD_LAUNCH1(dev, "broadcast_axis", n, KM(dx), KM(dout), KUL(R), KUL(I), KUL(n), KF(alpha), KI(acc));
}

void op_sumsq(cd_device *dev, cd_mem out, cd_mem x, size_t n) {
    ops_reduce_axis(dev, out, x, x, 1, n, 1, 1.0f, 0, 1);
}

/* ---- host references ---------------------------------------------------- */

void op_reduce_sum_ref(double *out, const double *x, size_t O, size_t R, size_t I, double alpha, int acc) {
    for (size_t o = 0; o < O; o++)
        for (size_t i = 0; i < I; i++) {
            double s = 0;
            for (size_t r = 0; r < R; r++) s += x[(o * R + r) * I + i];
            out[o * I + i] = (acc ? out[o * I + i] : 0.0) + alpha * s;
        }
}

void op_broadcast_ref(double *dx, const double *dout, size_t O, size_t R, size_t I, double alpha, int acc) {
    for (size_t o = 0; o < O; o++)
        for (size_t r = 0; r < R; r++)
            for (size_t i = 0; i < I; i++) {
                size_t k = (o * R + r) * I + i;
                dx[k] = (acc ? dx[k] : 0.0) + alpha * dout[o * I + i];
            }
}

double op_sumsq_ref(const double *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

static int row_kernels = -1;

int ops_row_kernels(const cd_device *dev) {
    return row_kernels >= 0 ? row_kernels : cd_cpu_shaped(dev);
}

int ops_set_row_kernels(int mode) {
    int old = row_kernels;
    row_kernels = mode;
    return old;
}
