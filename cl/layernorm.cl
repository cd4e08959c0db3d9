/* Layer norm over the last axis. Forward and input backward: one work-group per
 * row, local-memory tree reductions (work-group size L a power of two, `red` L
 * floats); mean and variance in two passes over the row (no cancellation of
 * E[x^2] - E[x]^2). Parameter gradients: a column reduction over rows, no
 * atomics. Conventions: see cl/common.cl. */

/* out = (x - mean) * rstd * w + b; saves mean, rstd      x, out (N, C); w, b (C); mean, rstd (N) */
__kernel void layernorm_forward(__global float *out, const ulong out_off, __global float *mean, const ulong mean_off,
                                __global float *rstd, const ulong rstd_off, __global const float *x,
                                const ulong x_off, __global const float *w, const ulong w_off,
                                __global const float *b, const ulong b_off, const ulong C, const float eps,
                                __local float *red) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    out += out_off + row * C;
    x += x_off + row * C;
    w += w_off; b += b_off;
    float s = 0.0f;
    for (size_t c = lid; c < C; c += L) s += x[c];
    float mu = wg_sum(red, s) / (float)C;
    float q = 0.0f;
    for (size_t c = lid; c < C; c += L) { float d = x[c] - mu; q += d * d; }
    float rs = 1.0f / sqrt(wg_sum(red, q) / (float)C + eps);
    for (size_t c = lid; c < C; c += L) out[c] = (x[c] - mu) * rs * w[c] + b[c];
    if (lid == 0) { mean[mean_off + row] = mu; rstd[rstd_off + row] = rs; }
}

/* dx (=/+=) rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)), g = dout * w, xhat = (x - mean) * rstd */
__kernel void layernorm_backward_dx(__global float *dx, const ulong dx_off, __global const float *dout,
                                    const ulong dout_off, __global const float *x, const ulong x_off,
                                    __global const float *mean, const ulong mean_off, __global const float *rstd,
                                    const ulong rstd_off, __global const float *w, const ulong w_off,
                                    const ulong C, const int acc, __local float *red) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    dx += dx_off + row * C;
    dout += dout_off + row * C;
    x += x_off + row * C;
    w += w_off;
    float mu = mean[mean_off + row], rs = rstd[rstd_off + row];
    float sg = 0.0f, sgx = 0.0f;
    for (size_t c = lid; c < C; c += L) {
        float g = dout[c] * w[c];
        sg += g;
        sgx += g * (x[c] - mu) * rs;
    }
    float mg = wg_sum(red, sg) / (float)C;
    float mgx = wg_sum(red, sgx) / (float)C;
    for (size_t c = lid; c < C; c += L) {
        float v = rs * (dout[c] * w[c] - mg - (x[c] - mu) * rs * mgx);
        dx[c] = acc ? dx[c] + v : v;
    }
}

/* Partial parameter gradients over a chunk of rows:
 *   pw[s, c] (=/+=) sum_{n in chunk s} dout[n, c] * xhat[n, c];  pb[s, c] (=/+=) sum dout[n, c]
 * with chunks of Rc rows; acc 1 adds (S == 1: straight into dw, db), acc 0 writes
 * partials that the host then sums with reduce_axis. Either of pw, pb is skipped
 * when its has_ flag is 0. Launch like reduce_axis: local (LI, LR), global
 * (ceil(C / LI) * LI, S * LR); lanes is 2 * LI * LR floats. */
__kernel void layernorm_backward_params(__global float *pw, const ulong pw_off, __global float *pb,
                                        const ulong pb_off, __global const float *dout, const ulong dout_off,
                                        __global const float *x, const ulong x_off, __global const float *mean,
                                        const ulong mean_off, __global const float *rstd, const ulong rstd_off,
                                        const ulong N, const ulong C, const ulong Rc, const int has_w,
                                        const int has_b, const int acc, __local float *lanes) {
    pw += pw_off; pb += pb_off; dout += dout_off; x += x_off; mean += mean_off; rstd += rstd_off;
    size_t li = get_local_id(0), lr = get_local_id(1);
    size_t LI = get_local_size(0), LR = get_local_size(1);
    size_t c = get_global_id(0), s = get_group_id(1);
    size_t n0 = s * Rc, n1 = min((size_t)N, n0 + (size_t)Rc);
    float sw = 0.0f, sb = 0.0f;
    if (c < C) {
        for (size_t n = n0 + lr; n < n1; n += LR) {
            float d = dout[n * C + c];
            sw += d * (x[n * C + c] - mean[n]) * rstd[n];
            sb += d;
        }
    }
    __local float *lw = lanes, *lb = lanes + LI * LR;
    lw[lr * LI + li] = sw;
    lb[lr * LI + li] = sb;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = LR / 2; h > 0; h >>= 1) {
        if (lr < h) {
            lw[lr * LI + li] += lw[(lr + h) * LI + li];
            lb[lr * LI + li] += lb[(lr + h) * LI + li];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lr == 0 && c < C) {
        size_t k = s * C + c;
        if (has_w) pw[k] = acc ? pw[k] + lw[li] : lw[li];
        if (has_b) pb[k] = acc ? pb[k] + lb[li] : lb[li];
    }
}
