/* Softmax over the last axis with a key-padding mask (attention
 * probabilities), forward and backward, one work-group per row on GPUs and
 * one work-item per row on CPUs (cl/softmax.cl), with plain C references. */
#include <math.h>

#include "cldetr/ops.h"
#include "ops/reduce_util.h"
#include "ops/op_ref.h"

/* x, out (B, H, Lq, Lk); mask (B, Lk) 1 = padding, or cd_none() */
void op_softmax_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem mask,
                        size_t B, size_t H, size_t Lq, size_t Lk, float scale) {
    size_t rows = B * H * Lq;
    if (rows == 0 || Lk == 0) return;
    int has_mask = cd_has(mask);
    if (ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, "softmax_rows_forward", rows, KM(out), KM(x), KM(has_mask ? mask : x), KI(has_mask),
                   KUL(rows), KUL(Lk), KUL(H * Lq), KF(scale));
        return;
    }
    size_t L = ops_reduce_wg(dev, "softmax_forward", Lk);
    size_t global = rows * L;
    CD_LAUNCH_WG(dev, "softmax_forward", 1, &global, &L, KM(out), KM(x), KM(has_mask ? mask : x), KI(has_mask),
                 KUL(Lk), KUL(H * Lq), KF(scale), KLOCAL(L * sizeof(float)));
}

/* dx (=/+=) scale * out * (dout - sum_k dout*out)      dx, dout, out (B, H, Lq, Lk) */
void op_softmax_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out,
                         size_t B, size_t H, size_t Lq, size_t Lk, float scale, int acc) {
    size_t rows = B * H * Lq;
    if (rows == 0 || Lk == 0) return;
    if (ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, "softmax_rows_backward", rows, KM(dx), KM(dout), KM(out), KUL(rows), KUL(Lk), KF(scale),
                   KI(acc));
        return;
    }
    size_t L = ops_reduce_wg(dev, "softmax_backward", Lk);
    size_t global = rows * L;
    CD_LAUNCH_WG(dev, "softmax_backward", 1, &global, &L, KM(dx), KM(dout), KM(out), KUL(Lk), KF(scale), KI(acc),
                 KLOCAL(L * sizeof(float)));
}

/* ---- host references ---------------------------------------------------- */

void op_softmax_forward_ref(double *out, const double *x, const double *mask, size_t B, size_t H, size_t Lq,
                            size_t Lk, double scale) {
    for (size_t row = 0; row < B * H * Lq; row++) {
        const double *xr = x + row * Lk, *m = mask ? mask + row / (H * Lq) * Lk : NULL;
        double *o = out + row * Lk;
        double mx = -INFINITY, sum = 0;
        for (size_t k = 0; k < Lk; k++)
            if (!m || !(m[k] > 0.5) ) mx = fmax(mx, scale * xr[k]);
        for (size_t k = 0; k < Lk; k++) {
            o[k] = (mx != -INFINITY && (!m || !(m[k] > 0.5))) ? exp(scale * xr[k] - mx) : 0.0;
            sum += o[k];
        }
        for (size_t k = 0; k < Lk; k++) o[k] = sum > 0 ? o[k] / sum : 0.0;
    }
}

void op_softmax_backward_ref(double *dx, const double *dout, const double *out, size_t B, size_t H, size_t Lq,
                             size_t Lk, double scale, int acc) {
    for (size_t row = 0; row < B * H * Lq; row++) {
        const double *g = dout + row * Lk, *p = out + row * Lk;
        double *d = dx + row * Lk, dot = 0;
        for (size_t k = 0; k < Lk; k++) dot += g[k] * p[k];
        for (size_t k = 0; k < Lk; k++) d[k] = (acc ? d[k] : 0.0) + scale * p[k] * (g[k] - dot);
    }
}
