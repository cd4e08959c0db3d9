/* Softmax over the last axis with a key-padding mask, one work-group per row.
 * The work-group size L is a power of two (the host picks it from the device);
 * `red` is L floats of local memory. Conventions: see cl/elementwise.cl.
 * IEEE behaviour matters here (-INFINITY, exp underflow): no fast-math. */

/* Sum (op 0) or max (op 1) of v over the work-group; every item gets the result. */
float softmax_group_reduce(__local float *red, float v, int op) {
    size_t lid = get_local_id(0), L = get_local_size(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = L / 2; h > 0; h >>= 1) {
        if (lid < h) red[lid] = op ? fmax(red[lid], red[lid + h]) : red[lid] + red[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);       /* red is reused by the next call */
    return r;
}

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
    mx = softmax_group_reduce(red, mx, 1);
    float sum = 0.0f;
    for (size_t k = lid; k < Lk; k += L) {
        float e = 0.0f;
        if (mx != -INFINITY && (!has_mask || !(mask[k] > 0.5f))) e = exp(scale * x[k] - mx);
        out[k] = e;
        sum += e;
    }
    sum = softmax_group_reduce(red, sum, 0);
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
    dot = softmax_group_reduce(red, dot, 0);
    for (size_t k = lid; k < Lk; k += L) {
        float v = scale * out[k] * (dout[k] - dot);
        dx[k] = acc ? dx[k] + v : v;
    }
}
