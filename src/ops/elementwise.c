/* Element-wise ops: add, axpby, scale, relu, sigmoid, per-channel bias and
 * scale (forward and backward), with plain C references. Kernels:
 * cl/elementwise.cl; the channel sums of the backward use ops_reduce_channels
 * (src/ops/reduce.c). */
#include <math.h>

#include "cldetr/ops.h"
#include "ops/reduce_util.h"
#include "ops/op_ref.h"

void op_add(cd_device *dev, cd_mem out, cd_mem a, cd_mem b, size_t n) {
    CD_LAUNCH1(dev, "ew_add", n, KM(out), KM(a), KM(b), KUL(n));
}

void op_axpby(cd_device *dev, cd_mem y, float alpha, cd_mem x, float beta, size_t n) {
    CD_LAUNCH1(dev, "ew_axpby", n, KM(y), KF(alpha), KM(x), KF(beta), KUL(n));
}

void op_scale(cd_device *dev, cd_mem y, cd_mem x, float alpha, size_t n, int acc) {
    CD_LAUNCH1(dev, "ew_scale", n, KM(y), KM(x), KF(alpha), KUL(n), KI(acc));
}

void op_add_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dout, size_t n, int acc_a, int acc_b) {
    if (!cd_has(da) || !cd_has(db)) {   /* one input wants a gradient: a copy */
        if (cd_has(da)) op_scale(dev, da, dout, 1.0f, n, acc_a);
        if (cd_has(db)) op_scale(dev, db, dout, 1.0f, n, acc_b);
        return;
    }
    CD_LAUNCH1(dev, "add_backward", n, KM(da), KM(db), KM(dout), KUL(n), KI(acc_a), KI(acc_b));
}

void op_relu_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n) {
    CD_LAUNCH1(dev, "relu_forward", n, KM(out), KM(x), KUL(n));
}

void op_relu_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out, size_t n, int acc) {
    CD_LAUNCH1(dev, "relu_backward", n, KM(dx), KM(dout), KM(out), KUL(n), KI(acc));
}

void op_add_relu_forward(cd_device *dev, cd_mem out, cd_mem a, cd_mem b, size_t n) {
    CD_LAUNCH1(dev, "add_relu_forward", n, KM(out), KM(a), KM(b), KUL(n));
}

void op_add_relu_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dout, cd_mem out, size_t n, int acc_a,
                          int acc_b) {
    if (!cd_has(da) || !cd_has(db)) {   /* one input wants a gradient: ReLU's own */
        if (cd_has(da)) op_relu_backward(dev, da, dout, out, n, acc_a);
        if (cd_has(db)) op_relu_backward(dev, db, dout, out, n, acc_b);
        return;
    }
    CD_LAUNCH1(dev, "add_relu_backward", n, KM(da), KM(db), KM(dout), KM(out), KUL(n), KI(acc_a), KI(acc_b));
}

void op_sigmoid_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n) {
    CD_LAUNCH1(dev, "sigmoid_forward", n, KM(out), KM(x), KUL(n));
}

void op_sigmoid_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out, size_t n, int acc) {
    CD_LAUNCH1(dev, "sigmoid_backward", n, KM(dx), KM(dout), KM(out), KUL(n), KI(acc));
}

void op_add_channels_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem bias, size_t B, size_t C, size_t HW) {
    size_t n = B * C * HW;
    if (n == 0) return;
    if (HW == 1) CD_LAUNCH3(dev, "add_channels_forward", C, 1, B, KM(out), KM(x), KM(bias), KUL(C), KUL(1), KUL(B), KI(1));
    else CD_LAUNCH3(dev, "add_channels_forward", HW, C, B, KM(out), KM(x), KM(bias), KUL(HW), KUL(C), KUL(B), KI(0));
}

/* dx (=/+=) dout (if dx given); dbias += sum over B, HW of dout (if dbias given) */
void op_add_channels_backward(cd_device *dev, cd_mem dx, cd_mem dbias, cd_mem dout,
                              size_t B, size_t C, size_t HW, int acc) {
    if (cd_has(dx)) op_scale(dev, dx, dout, 1.0f, B * C * HW, acc);
    if (cd_has(dbias)) ops_reduce_channels(dev, dbias, dout, dout, B, C, HW, 0);
}

void op_mul_channels_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem scale, size_t B, size_t C, size_t HW) {
    size_t n = B * C * HW;
    if (n == 0) return;
    if (HW == 1) CD_LAUNCH3(dev, "mul_channels_forward", C, 1, B, KM(out), KM(x), KM(scale), KUL(C), KUL(1), KUL(B), KI(1));
    else CD_LAUNCH3(dev, "mul_channels_forward", HW, C, B, KM(out), KM(x), KM(scale), KUL(HW), KUL(C), KUL(B), KI(0));
}

/* dx (=/+=) dout * scale[c] (if dx given); dscale += sum over B, HW of dout * x (if dscale given) */
void op_mul_channels_backward(cd_device *dev, cd_mem dx, cd_mem dscale, cd_mem dout, cd_mem x, cd_mem scale,
                              size_t B, size_t C, size_t HW, int acc) {
    size_t n = B * C * HW;
    if (cd_has(dx))
        CD_LAUNCH1(dev, "mul_channels_backward", n, KM(dx), KM(dout), KM(scale), KUL(C), KUL(HW), KUL(n), KI(acc));
    if (cd_has(dscale)) ops_reduce_channels(dev, dscale, dout, x, B, C, HW, 2);
}

/* ---- host references ---------------------------------------------------- */

void op_add_ref(double *out, const double *a, const double *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void op_axpby_ref(double *y, double alpha, const double *x, double beta, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = alpha * x[i] + (beta == 0 ? 0.0 : beta * y[i]);
}

void op_scale_ref(double *y, const double *x, double alpha, size_t n, int acc) {
    for (size_t i = 0; i < n; i++) y[i] = (acc ? y[i] : 0.0) + alpha * x[i];
}

void op_relu_forward_ref(double *out, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] < 0 ? 0.0 : x[i];
}

void op_relu_backward_ref(double *dx, const double *dout, const double *out, size_t n, int acc) {
    for (size_t i = 0; i < n; i++) dx[i] = (acc ? dx[i] : 0.0) + (out[i] > 0 ? dout[i] : 0.0);
}

void op_sigmoid_forward_ref(double *out, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = 1.0 / (1.0 + exp(-x[i]));
}

void op_sigmoid_backward_ref(double *dx, const double *dout, const double *out, size_t n, int acc) {
    for (size_t i = 0; i < n; i++) dx[i] = (acc ? dx[i] : 0.0) + dout[i] * out[i] * (1.0 - out[i]);
}

void op_add_channels_forward_ref(double *out, const double *x, const double *bias, size_t B, size_t C, size_t HW) {
    for (size_t i = 0; i < B * C * HW; i++) out[i] = x[i] + bias[(i / HW) % C];
}

void op_add_channels_backward_ref(double *dx, double *dbias, const double *dout, size_t B, size_t C, size_t HW,
                                  int acc) {
    if (dx) op_scale_ref(dx, dout, 1.0, B * C * HW, acc);
    if (dbias)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t b = 0; b < B; b++)
                for (size_t k = 0; k < HW; k++) s += dout[(b * C + c) * HW + k];
            dbias[c] += s;
        }
}

void op_mul_channels_forward_ref(double *out, const double *x, const double *scale, size_t B, size_t C, size_t HW) {
    for (size_t i = 0; i < B * C * HW; i++) out[i] = x[i] * scale[(i / HW) % C];
}

void op_mul_channels_backward_ref(double *dx, double *dscale, const double *dout, const double *x,
                                  const double *scale, size_t B, size_t C, size_t HW, int acc) {
    if (dx)
        for (size_t i = 0; i < B * C * HW; i++) dx[i] = (acc ? dx[i] : 0.0) + dout[i] * scale[(i / HW) % C];
    if (dscale)
        for (size_t c = 0; c < C; c++) {
            double s = 0;
            for (size_t b = 0; b < B; b++)
                for (size_t k = 0; k < HW; k++) s += dout[(b * C + c) * HW + k] * x[(b * C + c) * HW + k];
            dscale[c] += s;
        }
}
