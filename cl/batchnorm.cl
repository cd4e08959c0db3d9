/* Batch norm over (B, C, HW): frozen (affine from stored statistics) and
 * trainable with batch statistics. Conventions as in elementwise.cl.
 *
 * The per-channel reductions run one work-group per channel with a tree in
 * local memory (local size a power of two, chosen by the host from the
 * device); the statistics are two-pass (mean, then squared deviations) so a
 * large mean does not cancel the variance. 1/sqrt rather than rsqrt: rsqrt's
 * error bound is implementation-defined. */

/* The sum of v over the work-group, returned to every work-item. */
static float wg_sum(__local float *part, float v) {
    const int lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = nl / 2; h > 0; h /= 2) {
        if (lid < h) part[lid] += part[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);   /* part is reused by the next call */
    return total;
}

/* Address of element i (of B*HW) of channel c. */
static ulong bn_index(ulong i, int c, int C, ulong HW) {
    const ulong b = i / HW;
    return (b * C + c) * HW + (i - b * HW);
}

/* out = x * scale[c] + shift[c], scale = w / sqrt(var + eps), shift = b - mean * scale */
__kernel void bn_frozen_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                                __global const float *w, const ulong w_off, __global const float *b, const ulong b_off,
                                __global const float *mean, const ulong mean_off,
                                __global const float *var, const ulong var_off,
                                const int C, const ulong HW, const ulong n, const float eps) {
    out += out_off; x += x_off; w += w_off; b += b_off; mean += mean_off; var += var_off;
    const ulong gid = get_global_id(0);
    if (gid >= n) return;
    const int c = (int)((gid / HW) % C);
    const float scale = w[c] / sqrt(var[c] + eps);
    out[gid] = x[gid] * scale + (b[c] - mean[c] * scale);
}

/* dx (=/+=) dout * scale[c] */
__kernel void bn_frozen_backward(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                                 __global const float *w, const ulong w_off, __global const float *var, const ulong var_off,
                                 const int C, const ulong HW, const ulong n, const float eps, const int acc) {
    dx += dx_off; dout += dout_off; w += w_off; var += var_off;
    const ulong gid = get_global_id(0);
    if (gid >= n) return;
    const int c = (int)((gid / HW) % C);
    const float v = dout[gid] * (w[c] / sqrt(var[c] + eps));
    dx[gid] = acc ? dx[gid] + v : v;
}

/* Batch statistics of channel = group id: save_mean, save_rstd = 1/sqrt(var + eps)
 * (biased var), and the running update with the unbiased var (N > 1). */
__kernel void bn_train_stats(__global float *save_mean, const ulong save_mean_off,
                             __global float *save_rstd, const ulong save_rstd_off,
                             __global float *run_mean, const ulong run_mean_off,
                             __global float *run_var, const ulong run_var_off,
                             __global const float *x, const ulong x_off, __local float *part,
                             const int B, const int C, const ulong HW, const float eps, const float momentum,
                             const int update_running) {
    save_mean += save_mean_off; save_rstd += save_rstd_off; run_mean += run_mean_off; run_var += run_var_off;
    x += x_off;
    const int c = (int)get_group_id(0), lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    const ulong N = (ulong)B * HW;
    float s = 0.0f;
    for (ulong i = lid; i < N; i += nl) s += x[bn_index(i, c, C, HW)];
    const float mean = wg_sum(part, s) / (float)N;
    s = 0.0f;
    for (ulong i = lid; i < N; i += nl) {
        const float d = x[bn_index(i, c, C, HW)] - mean;
        s += d * d;
    }
    const float var = wg_sum(part, s) / (float)N;
    if (lid == 0) {
        save_mean[c] = mean;
        save_rstd[c] = 1.0f / sqrt(var + eps);
        if (update_running) {
            run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean;
            run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (var * (float)N / (float)(N - 1));
        }
    }
}

/* out = (x - mean[c]) * rstd[c] * w[c] + b[c] */
__kernel void bn_train_apply(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                             __global const float *mean, const ulong mean_off, __global const float *rstd, const ulong rstd_off,
                             __global const float *w, const ulong w_off, __global const float *b, const ulong b_off,
                             const int C, const ulong HW, const ulong n) {
    out += out_off; x += x_off; mean += mean_off; rstd += rstd_off; w += w_off; b += b_off;
    const ulong gid = get_global_id(0);
    if (gid >= n) return;
    const int c = (int)((gid / HW) % C);
    out[gid] = (x[gid] - mean[c]) * rstd[c] * w[c] + b[c];
}

/* Per channel: sums[2c] = sum dout, sums[2c+1] = sum dout * xhat; db += the
 * first, dw += the second (when has_dw / has_db). */
__kernel void bn_train_backward_reduce(__global float *sums, const ulong sums_off,
                                       __global float *dw, const ulong dw_off, __global float *db, const ulong db_off,
                                       __global const float *dout, const ulong dout_off,
                                       __global const float *x, const ulong x_off,
                                       __global const float *mean, const ulong mean_off,
                                       __global const float *rstd, const ulong rstd_off, __local float *part,
                                       const int B, const int C, const ulong HW, const int has_dw, const int has_db) {
    sums += sums_off; dw += dw_off; db += db_off; dout += dout_off; x += x_off; mean += mean_off; rstd += rstd_off;
    const int c = (int)get_group_id(0), lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    const ulong N = (ulong)B * HW;
    const float m = mean[c], r = rstd[c];
    float sd = 0.0f, sdx = 0.0f;
    for (ulong i = lid; i < N; i += nl) {
        const ulong a = bn_index(i, c, C, HW);
        sd += dout[a];
        sdx += dout[a] * (x[a] - m) * r;
    }
    sd = wg_sum(part, sd);
    sdx = wg_sum(part, sdx);
    if (lid == 0) {
        sums[2 * c] = sd;
        sums[2 * c + 1] = sdx;
        if (has_db) db[c] += sd;
        if (has_dw) dw[c] += sdx;
    }
}

/* dx (=/+=) w rstd (dout - sum_dout / N - xhat * sum_dout_xhat / N) */
__kernel void bn_train_backward_dx(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                                   __global const float *x, const ulong x_off, __global const float *sums, const ulong sums_off,
                                   __global const float *mean, const ulong mean_off, __global const float *rstd, const ulong rstd_off,
                                   __global const float *w, const ulong w_off,
                                   const int B, const int C, const ulong HW, const int acc) {
    dx += dx_off; dout += dout_off; x += x_off; sums += sums_off; mean += mean_off; rstd += rstd_off; w += w_off;
    const ulong n = (ulong)B * C * HW;
    const ulong gid = get_global_id(0);
    if (gid >= n) return;
    const int c = (int)((gid / HW) % C);
    const float invN = 1.0f / (float)((ulong)B * HW);
    const float xhat = (x[gid] - mean[c]) * rstd[c];
    const float v = w[c] * rstd[c] * (dout[gid] - sums[2 * c] * invN - xhat * sums[2 * c + 1] * invN);
    dx[gid] = acc ? dx[gid] + v : v;
}
