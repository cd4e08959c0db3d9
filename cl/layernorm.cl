/* Layer norm over the last axis. Forward and input backward: one work-group per
 * row, local-memory tree reductions (work-group size L a power of two, `red` L
 * floats); mean and variance in two passes over the row (no cancellation of
 * E[x^2] - E[x]^2). Parameter gradients: a column reduction over rows, no
 * atomics. Conventions: see cl/common.cl. */

/* out = (x - mean) * rstd * w + b; saves mean, rstd      x, out (N, C); w, b (C); mean, rstd (N)
 * With add = 1 (a residual add before the norm), x is first written as xa + xb
 * (N, C), each work-item the elements it reads afterwards. */
__kernel void layernorm_forward(__global float *out, const ulong out_off, __global float *mean, const ulong mean_off,
                                __global float *rstd, const ulong rstd_off, __global float *x,
                                const ulong x_off, __global const float *w, const ulong w_off,
                                __global const float *b, const ulong b_off, const ulong C, const float eps,
                                __local float *red, __global const float *xa, const ulong xa_off,
                                __global const float *xb, const ulong xb_off, const int add) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    out += out_off + row * C;
    x += x_off + row * C;
    w += w_off; b += b_off;
    if (add) {
        xa += xa_off + row * C;
        xb += xb_off + row * C;
        for (size_t c = lid; c < C; c += L) x[c] = xa[c] + xb[c];
    }
    float s = 0.0f;
    for (size_t c = lid; c < C; c += L) s += x[c];
    float mu = wg_sum(red, s) / (float)C;
    float q = 0.0f;
    for (size_t c = lid; c < C; c += L) { float d = x[c] - mu; q += d * d; }
    float rs = 1.0f / sqrt(wg_sum(red, q) / (float)C + eps);
    for (size_t c = lid; c < C; c += L) out[c] = (x[c] - mu) * rs * w[c] + b[c];
    if (lid == 0) { mean[mean_off + row] = mu; rstd[rstd_off + row] = rs; }
}

/* dx (=/+=) rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)), g = dout * w, xhat = (x - mean) * rstd;
 * with two = 1 the same value also to dx2 (=/+= by acc2): both inputs of a
 * residual add before the norm. */
__kernel void layernorm_backward_dx(__global float *dx, const ulong dx_off, __global const float *dout,
                                    const ulong dout_off, __global const float *x, const ulong x_off,
                                    __global const float *mean, const ulong mean_off, __global const float *rstd,
                                    const ulong rstd_off, __global const float *w, const ulong w_off,
                                    const ulong C, const int acc, __local float *red, __global float *dx2,
                                    const ulong dx2_off, const int two, const int acc2) {
    size_t row = get_group_id(0), lid = get_local_id(0), L = get_local_size(0);
    dx += dx_off + row * C;
    dx2 += dx2_off + row * C;
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
        if (two) dx2[c] = acc2 ? dx2[c] + v : v;
    }
}

/* CPUs: one work-item per row, float16 vectors along it (a work-group per row
 * costs PoCL a pass of its work-item loop per barrier: 370 us for the
 * decoder's 480 rows of 128 in training with query groups, against ~20 us
 * this way). Sums: 16 lanes along the row, then the lanes (hsum16), then the
 * row's last C % 16 values. Range (N). */
static inline __attribute__((always_inline)) float row_sum(__global const float *x, const ulong C) {
    float16 s = (float16)(0.0f);
    ulong c = 0;
    for (; c + 16 <= C; c += 16) s += vload16(0, x + c);
    float t = hsum16(s);
    for (; c < C; c++) t += x[c];
    return t;
}

__kernel void layernorm_rows_forward(__global float *out, const ulong out_off, __global float *mean,
                                     const ulong mean_off, __global float *rstd, const ulong rstd_off,
                                     __global float *x, const ulong x_off, __global const float *w,
                                     const ulong w_off, __global const float *b, const ulong b_off, const ulong N,
                                     const ulong C, const float eps, __global const float *xa, const ulong xa_off,
                                     __global const float *xb, const ulong xb_off, const int add) {
    const ulong row = get_global_id(0);
    if (row >= N) return;
    out += out_off + row * C;
    x += x_off + row * C;
    w += w_off; b += b_off;
    if (add) {   /* x = xa + xb first (layernorm_forward) */
        xa += xa_off + row * C;
        xb += xb_off + row * C;
        ulong c = 0;
        for (; c + 16 <= C; c += 16) vstore16(vload16(0, xa + c) + vload16(0, xb + c), 0, x + c);
        for (; c < C; c++) x[c] = xa[c] + xb[c];
    }
    const float mu = row_sum(x, C) / (float)C;
    float16 q = (float16)(0.0f);
    ulong c = 0;
    for (; c + 16 <= C; c += 16) {
        const float16 d = vload16(0, x + c) - mu;
        q = fma(d, d, q);
    }
    float qs = hsum16(q);
    for (; c < C; c++) { const float d = x[c] - mu; qs = fma(d, d, qs); }
    const float rs = 1.0f / sqrt(qs / (float)C + eps);
    for (c = 0; c + 16 <= C; c += 16)
        vstore16((vload16(0, x + c) - mu) * rs * vload16(0, w + c) + vload16(0, b + c), 0, out + c);
    for (; c < C; c++) out[c] = (x[c] - mu) * rs * w[c] + b[c];
    mean[mean_off + row] = mu;
    rstd[rstd_off + row] = rs;
}

__kernel void layernorm_rows_backward_dx(__global float *dx, const ulong dx_off, __global const float *dout,
                                         const ulong dout_off, __global const float *x, const ulong x_off,
                                         __global const float *mean, const ulong mean_off,
                                         __global const float *rstd, const ulong rstd_off, __global const float *w,
                                         const ulong w_off, const ulong N, const ulong C, const int acc,
                                         __global float *dx2, const ulong dx2_off, const int two, const int acc2) {
    const ulong row = get_global_id(0);
    if (row >= N) return;
    dx += dx_off + row * C;
    dx2 += dx2_off + row * C;
    dout += dout_off + row * C;
    x += x_off + row * C;
    w += w_off;
    const float mu = mean[mean_off + row], rs = rstd[rstd_off + row];
    float16 sg = (float16)(0.0f), sgx = (float16)(0.0f);
    ulong c = 0;
    for (; c + 16 <= C; c += 16) {
        const float16 g = vload16(0, dout + c) * vload16(0, w + c);
        sg += g;
        sgx = fma(g, (vload16(0, x + c) - mu) * rs, sgx);
    }
    float tg = hsum16(sg), tgx = hsum16(sgx);
    for (; c < C; c++) {
        const float g = dout[c] * w[c];
        tg += g;
        tgx = fma(g, (x[c] - mu) * rs, tgx);
    }
    const float mg = tg / (float)C, mgx = tgx / (float)C;
    for (c = 0; c + 16 <= C; c += 16) {
        const float16 v = rs * (vload16(0, dout + c) * vload16(0, w + c) - mg - (vload16(0, x + c) - mu) * rs * mgx);
        vstore16(acc ? vload16(0, dx + c) + v : v, 0, dx + c);
        if (two) vstore16(acc2 ? vload16(0, dx2 + c) + v : v, 0, dx2 + c);
    }
    for (; c < C; c++) {
        const float v = rs * (dout[c] * w[c] - mg - (x[c] - mu) * rs * mgx);
        dx[c] = acc ? dx[c] + v : v;
        if (two) dx2[c] = acc2 ? dx2[c] + v : v;
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

/* The parameter gradients in a CPU's shape (devices that are not GPUs, as
 * the row kernels above): a work-item owns 16 columns and runs down all N
 * rows with float16 sums, dw[c] += sum_n dout[n, c] * xhat[n, c] and db[c] +=
 * sum_n dout[n, c], in one launch (layernorm_backward_params' work-group tree
 * and the second reduce_axis pass cost 155 us a layer norm on PoCL, this
 * about a tenth). Either of dw, db is skipped when its has_ flag is 0.
 * Range (ceil(C/16)). */
__kernel void layernorm_cols_backward_params(__global float *dw, const ulong dw_off, __global float *db,
                                             const ulong db_off, __global const float *dout, const ulong dout_off,
                                             __global const float *x, const ulong x_off,
                                             __global const float *mean, const ulong mean_off,
                                             __global const float *rstd, const ulong rstd_off, const ulong N,
                                             const ulong C, const int has_w, const int has_b) {
    dw += dw_off; db += db_off; dout += dout_off; x += x_off; mean += mean_off; rstd += rstd_off;
    const ulong c0 = get_global_id(0) * 16;
    if (c0 >= C) return;
    if (c0 + 16 <= C) {
        float16 sw = (float16)(0.0f), sb = (float16)(0.0f);
        for (ulong n = 0; n < N; n++) {
            const float16 d = vload16(0, dout + n * C + c0);
            sw = fma(d, (vload16(0, x + n * C + c0) - mean[n]) * rstd[n], sw);
            sb += d;
        }
        if (has_w) vstore16(vload16(0, dw + c0) + sw, 0, dw + c0);
        if (has_b) vstore16(vload16(0, db + c0) + sb, 0, db + c0);
        return;
    }
    for (ulong c = c0; c < C; c++) {
        float sw = 0.0f, sb = 0.0f;
        for (ulong n = 0; n < N; n++) {
            const float d = dout[n * C + c];
            sw = fma(d, (x[n * C + c] - mean[n]) * rstd[n], sw);
            sb += d;
        }
        if (has_w) dw[c] += sw;
        if (has_b) db[c] += sb;
    }
}
