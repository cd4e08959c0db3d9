/* Element-wise kernels: add, axpby, scale, relu, sigmoid, per-channel bias and
 * scale (the 4-axis permute is cl/permute.cl). Conventions: cl/common.cl.
 * They share a prologue (offsets, id, guard) but stay one small kernel per op
 * on purpose: a body with no loop, call or branch on the op is what PoCL
 * vectorises across work-items. */

__kernel void fill(__global float *y, const ulong y_off, const float value, const ulong n) {
    y += y_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    y[gid] = value;
}

/* out = a + b; out may alias a or b (each item reads before it writes its own element) */
__kernel void ew_add(__global float *out, const ulong out_off, __global const float *a, const ulong a_off,
                     __global const float *b, const ulong b_off, const ulong n) {
    out += out_off; a += a_off; b += b_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    out[gid] = a[gid] + b[gid];
}

/* y = alpha * x + beta * y; beta == 0 never reads y */
__kernel void ew_axpby(__global float *y, const ulong y_off, const float alpha,
                       __global const float *x, const ulong x_off, const float beta, const ulong n) {
    y += y_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = alpha * x[gid];
    y[gid] = beta == 0.0f ? v : v + beta * y[gid];
}

/* y (=/+=) alpha * x */
__kernel void ew_scale(__global float *y, const ulong y_off, __global const float *x, const ulong x_off,
                       const float alpha, const ulong n, const int acc) {
    y += y_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = alpha * x[gid];
    y[gid] = acc ? y[gid] + v : v;
}

/* da (=/+= by acc_a) dout and db (=/+= by acc_b) dout: an add's two input
 * gradients in one launch, the values of two ew_scale copies (alpha 1) */
__kernel void add_backward(__global float *da, const ulong da_off, __global float *db, const ulong db_off,
                           __global const float *dout, const ulong dout_off, const ulong n, const int acc_a,
                           const int acc_b) {
    da += da_off; db += db_off; dout += dout_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    const float v = dout[gid];
    da[gid] = acc_a ? da[gid] + v : v;
    db[gid] = acc_b ? db[gid] + v : v;
}

__kernel void relu_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                           const ulong n) {
    out += out_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = x[gid];
    out[gid] = v < 0.0f ? 0.0f : v;      /* NaN stays NaN (as PyTorch), so divergence shows */
}

/* dx (=/+=) dout * (out > 0) */
__kernel void relu_backward(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                            __global const float *out, const ulong out_off, const ulong n, const int acc) {
    dx += dx_off; dout += dout_off; out += out_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = out[gid] > 0.0f ? dout[gid] : 0.0f;
    dx[gid] = acc ? dx[gid] + v : v;
}

/* out = relu(a + b), as ew_add then relu_forward (ResNet's block tail). out may alias a. */
__kernel void add_relu_forward(__global float *out, const ulong out_off, __global const float *a, const ulong a_off,
                               __global const float *b, const ulong b_off, const ulong n) {
    out += out_off; a += a_off; b += b_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = a[gid] + b[gid];
    out[gid] = v < 0.0f ? 0.0f : v;
}

/* The gradient of relu(a + b) to both inputs: v = dout where out > 0, else 0
 * (relu_backward's value); da (=/+= by acc_a) and db (=/+= by acc_b) get v.
 * Both are always written (no per-input flag: a guarded store kept PoCL from
 * vectorising, 93 us a call at layer 1); with one input the host calls
 * relu_backward. */
__kernel void add_relu_backward(__global float *da, const ulong da_off, __global float *db, const ulong db_off,
                                __global const float *dout, const ulong dout_off, __global const float *out,
                                const ulong out_off, const ulong n, const int acc_a, const int acc_b) {
    da += da_off; db += db_off; dout += dout_off; out += out_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = out[gid] > 0.0f ? dout[gid] : 0.0f;
    da[gid] = acc_a ? da[gid] + v : v;
    db[gid] = acc_b ? db[gid] + v : v;
}

/* out = 1 / (1 + exp(-x)); exp(-x) overflows to inf for x < -88, giving exactly 0 */
__kernel void sigmoid_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                              const ulong n) {
    out += out_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    out[gid] = 1.0f / (1.0f + exp(-x[gid]));
}

/* dx (=/+=) dout * out * (1 - out) */
__kernel void sigmoid_backward(__global float *dx, const ulong dx_off, __global const float *dout,
                               const ulong dout_off, __global const float *out, const ulong out_off,
                               const ulong n, const int acc) {
    dx += dx_off; dout += dout_off; out += out_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float s = out[gid];
    float v = dout[gid] * s * (1.0f - s);
    dx[gid] = acc ? dx[gid] + v : v;
}

/* out = x + bias[c]                    x, out (B, C, HW), bias (C)
 * Range (HW, C, B) with the channel from dim 1 (by0 = 0), or, for HW = 1 (a
 * bias over whole rows: attention's mask bias, query positions), (C, 1, B)
 * with the channel from dim 0 (by0 = 1): dim 0 always runs along memory and
 * nothing is divided (a 64-bit division per element ran scalar on PoCL). */
__kernel void add_channels_forward(__global float *out, const ulong out_off, __global const float *x,
                                   const ulong x_off, __global const float *bias, const ulong bias_off,
                                   const ulong I, const ulong J, const ulong B, const int by0) {
    out += out_off; x += x_off; bias += bias_off;
    const size_t i = get_global_id(0), j = get_global_id(1), b = get_global_id(2);
    if (i >= I || j >= J || b >= B) return;
    const size_t k = (b * J + j) * I + i;
    out[k] = x[k] + bias[by0 ? i : j];
}

/* out = x * scale[c]                   x, out (B, C, HW), scale (C); ranges as add_channels_forward */
__kernel void mul_channels_forward(__global float *out, const ulong out_off, __global const float *x,
                                   const ulong x_off, __global const float *scale, const ulong scale_off,
                                   const ulong I, const ulong J, const ulong B, const int by0) {
    out += out_off; x += x_off; scale += scale_off;
    const size_t i = get_global_id(0), j = get_global_id(1), b = get_global_id(2);
    if (i >= I || j >= J || b >= B) return;
    const size_t k = (b * J + j) * I + i;
    out[k] = x[k] * scale[by0 ? i : j];
}

/* dx (=/+=) dout * scale[c] */
__kernel void mul_channels_backward(__global float *dx, const ulong dx_off, __global const float *dout,
                                    const ulong dout_off, __global const float *scale, const ulong scale_off,
                                    const ulong C, const ulong HW, const ulong n, const int acc) {
    dx += dx_off; dout += dout_off; scale += scale_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = dout[gid] * scale[(gid / HW) % C];
    dx[gid] = acc ? dx[gid] + v : v;
}
