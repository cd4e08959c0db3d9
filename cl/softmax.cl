/* Softmax over the last axis with a key-padding mask, one work-group per row.
 * The work-group size L is a power of two (the host picks it from the device);
 * `red` is L floats of local memory. Conventions: see cl/common.cl.
 * IEEE behaviour matters here (-INFINITY, exp underflow): no fast-math. */

/* out = softmax(scale * x) per row of Lk; masked keys (mask > 0.5) get exactly 0;
 * a row with no valid key gets zeros.
 *   x, out (rows = B*H*Lq, Lk); mask (B, Lk), row r belongs to image r / HLq. */
__kernel void softmax_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                              __global const float *mask, const ulong mask_off, const int has_mask,
                              const ulong Lk, const ulong HLq, const float scale, __local float *red) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    out += out_off + row * Lk;
    x += x_off + row * Lk;
    mask += mask_off + (row / HLq) * Lk;
    float mx = -INFINITY;
    for (size_t k = lid; k < Lk; k += L)
        if (!has_mask || !(mask[k] > 0.5f)) mx = fmax(mx, scale * x[k]);
    mx = wg_max(red, mx);
    float sum = 0.0f;
    for (size_t k = lid; k < Lk; k += L) {
        float e = 0.0f;
        if (mx != -INFINITY && (!has_mask || !(mask[k] > 0.5f))) e = exp(scale * x[k] - mx);
        out[k] = e;
        sum += e;
    }
    sum = wg_sum(red, sum);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (size_t k = lid; k < Lk; k += L) out[k] *= inv;   /* each item rescales only what it wrote */
}

/* dx (=/+=) scale * out * (dout - sum_k dout*out)          dx, dout, out (rows, Lk) */
__kernel void softmax_backward(__global float *dx, const ulong dx_off, __global const float *dout,
                               const ulong dout_off, __global const float *out, const ulong out_off,
                               const ulong Lk, const float scale, const int acc, __local float *red) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    dx += dx_off + row * Lk;
    dout += dout_off + row * Lk;
    out += out_off + row * Lk;
    float dot = 0.0f;
    for (size_t k = lid; k < Lk; k += L) dot += dout[k] * out[k];
    dot = wg_sum(red, dot);
    for (size_t k = lid; k < Lk; k += L) {
        float v = scale * out[k] * (dout[k] - dot);
        dx[k] = acc ? dx[k] + v : v;
    }
}
