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

/* CPUs: the same two kernels with one work-item per row and float16 vectors
 * along it (a work-group per row costs PoCL a pass of its work-item loop per
 * barrier: 470 us for attention's rows in training with query groups). The
 * maximum is exact in any order; the sums run 16 lanes along the row, then the
 * lanes, then the last Lk % 16 values. Range (rows). */
__kernel void softmax_rows_forward(__global float *out, const ulong out_off, __global const float *x,
                                   const ulong x_off, __global const float *mask, const ulong mask_off,
                                   const int has_mask, const ulong rows, const ulong Lk, const ulong HLq,
                                   const float scale) {
    const ulong row = get_global_id(0);
    if (row >= rows) return;
    out += out_off + row * Lk;
    x += x_off + row * Lk;
    mask += mask_off + (row / HLq) * Lk;
    float16 m16 = (float16)(-INFINITY);
    ulong k = 0;
    for (; k + 16 <= Lk; k += 16) {
        float16 v = scale * vload16(0, x + k);
        if (has_mask) v = select(v, (float16)(-INFINITY), isgreater(vload16(0, mask + k), (float16)(0.5f)));
        m16 = fmax(m16, v);
    }
    float mx = hmax16(m16);
    for (; k < Lk; k++)
        if (!has_mask || !(mask[k] > 0.5f)) mx = fmax(mx, scale * x[k]);
    float16 s16 = (float16)(0.0f);
    for (k = 0; k + 16 <= Lk; k += 16) {
        float16 e = mx != -INFINITY ? exp(scale * vload16(0, x + k) - mx) : (float16)(0.0f);
        if (has_mask) e = select(e, (float16)(0.0f), isgreater(vload16(0, mask + k), (float16)(0.5f)));
        vstore16(e, 0, out + k);
        s16 += e;
    }
    float sum = hsum16(s16);
    for (; k < Lk; k++) {
        float e = 0.0f;
        if (mx != -INFINITY && (!has_mask || !(mask[k] > 0.5f))) e = exp(scale * x[k] - mx);
        out[k] = e;
        sum += e;
    }
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    for (k = 0; k + 16 <= Lk; k += 16) vstore16(vload16(0, out + k) * inv, 0, out + k);
    for (; k < Lk; k++) out[k] *= inv;
}

__kernel void softmax_rows_backward(__global float *dx, const ulong dx_off, __global const float *dout,
                                    const ulong dout_off, __global const float *out, const ulong out_off,
                                    const ulong rows, const ulong Lk, const float scale, const int acc) {
    const ulong row = get_global_id(0);
    if (row >= rows) return;
    dx += dx_off + row * Lk;
    dout += dout_off + row * Lk;
    out += out_off + row * Lk;
    float16 d16 = (float16)(0.0f);
    ulong k = 0;
    for (; k + 16 <= Lk; k += 16) d16 = fma(vload16(0, dout + k), vload16(0, out + k), d16);
    float dot = hsum16(d16);
    for (; k < Lk; k++) dot = fma(dout[k], out[k], dot);
    for (k = 0; k + 16 <= Lk; k += 16) {
        const float16 v = scale * vload16(0, out + k) * (vload16(0, dout + k) - dot);
        vstore16(acc ? vload16(0, dx + k) + v : v, 0, dx + k);
    }
    for (; k < Lk; k++) {
        const float v = scale * out[k] * (dout[k] - dot);
        dx[k] = acc ? dx[k] + v : v;
    }
}
