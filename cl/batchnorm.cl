/* Batch norm over (B, C, HW): frozen (affine from stored statistics) and
 * trainable with batch statistics. Conventions as in common.cl.
 *
 * The per-channel reductions run one work-group per channel with a tree in
 * local memory (local size a power of two, chosen by the host from the
 * device); the statistics are two-pass (mean, then squared deviations) so a
 * large mean does not cancel the variance. 1/sqrt rather than rsqrt: rsqrt's
 * error bound is implementation-defined.
 *
 * Why this shape: the element-wise kernels run over (HW, C, B) with local size
 * (l, 1, 1), l a power of two dividing HW (src/ops/batchnorm.c), so c and b
 * are work-item ids (no per-element div/mod, which PoCL runs scalar) and dim 0
 * needs no guard (a guarded body made PoCL gather each parameter load);
 * the reductions walk (b, i) with two loops. History: bench/README.md. */

/* This work-item's share of sum_n sum_i f(row n of channel c)[i]: float8 loads
 * along each row (explicit SIMD: PoCL does not vectorise a loop inside a
 * work-item), work-item lid taking chunks lid, lid + nl, ...; a scalar tail
 * for HW % 8. The lanes are added in a fixed order (deterministic). */
#define BN_ROW_SUM(acc8, acc1, B, C, HW, c, lid, nl, EXPR8, EXPR1)                               \
    do {                                                                                          \
        const int hw8_ = (HW) & ~7;                                                               \
        for (int n_ = 0; n_ < (B); n_++) {                                                        \
            const ulong row = ((ulong)n_ * (C) + (c)) * (HW);                                     \
            for (int i = 8 * (lid); i < hw8_; i += 8 * (nl)) { acc8 += (EXPR8); }                 \
            for (int i = hw8_ + (lid); i < (HW); i += (nl)) { acc1 += (EXPR1); }                  \
        }                                                                                         \
    } while (0)

/* ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), the lanes through a volatile copy (common.cl) */
static inline float sum8(const float8 v) {
    volatile float l[8];
    l[0] = v.s0; l[1] = v.s1; l[2] = v.s2; l[3] = v.s3; l[4] = v.s4; l[5] = v.s5; l[6] = v.s6; l[7] = v.s7;
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* The frozen scale of channel c, one expression for all four frozen kernels. */
static inline float frozen_scale(__global const float *w, __global const float *var, const int c, const float eps) {
    return w[c] / sqrt(var[c] + eps);
}

/* out = x * scale[c] + shift[c], scale = w / sqrt(var + eps), shift = b - mean * scale,
 * then ReLU when relu (as relu_forward computes it on the stored value).
 * Range (HW, C, B), as every element-wise kernel here. */
static inline float frozen_out(const float x, const float scale, const float shift, const int relu) {
    const float v = x * scale + shift;
    return relu && v < 0.0f ? 0.0f : v;
}

__kernel void bn_frozen_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                                __global const float *w, const ulong w_off, __global const float *b, const ulong b_off,
                                __global const float *mean, const ulong mean_off,
                                __global const float *var, const ulong var_off,
                                const int B, const int C, const int HW, const float eps, const int relu) {
    out += out_off; x += x_off; w += w_off; b += b_off; mean += mean_off; var += var_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float scale = frozen_scale(w, var, cc, eps), shift = b[cc] - mean[cc] * scale;
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    out[a] = frozen_out(x[a], scale, shift, relu);
}

/* dx (=/+=) g * scale[c], g = dout; with mask (a ReLU after the batch norm,
 * whose output is y), g = dout where y > 0, else 0, as relu_backward gives it */
static inline float frozen_grad(__global const float *dout, __global const float *y, const ulong a,
                                const float scale, const int mask) {
    const float g = mask ? (y[a] > 0.0f ? dout[a] : 0.0f) : dout[a];
    return g * scale;
}

__kernel void bn_frozen_backward(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                                 __global const float *y, const ulong y_off,
                                 __global const float *w, const ulong w_off, __global const float *var, const ulong var_off,
                                 const int B, const int C, const int HW, const float eps, const int acc,
                                 const int mask) {
    dx += dx_off; dout += dout_off; y += y_off; w += w_off; var += var_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float scale = frozen_scale(w, var, cc, eps);
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    const float v = frozen_grad(dout, y, a, scale, mask);
    dx[a] = acc ? dx[a] + v : v;
}

/* The two above over a flat range of B*C*HW (rounded up), the channel of each
 * element computed: for planes whose size has only a small power of two in it
 * (25x25, 50x50 at 800x800 input), where (l,1,1) groups would hold 1-16
 * work-items and a GPU runs 10x below its bandwidth. Same arithmetic, same
 * results. */
__kernel void bn_frozen_forward_flat(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                                     __global const float *w, const ulong w_off, __global const float *b, const ulong b_off,
                                     __global const float *mean, const ulong mean_off,
                                     __global const float *var, const ulong var_off,
                                     const int C, const int HW, const ulong total, const float eps,
                                     const int relu) {
    out += out_off; x += x_off; w += w_off; b += b_off; mean += mean_off; var += var_off;
    const ulong a = get_global_id(0);
    if (a >= total) return;
    const int c = (int)((a / (ulong)HW) % (ulong)C);
    const float scale = frozen_scale(w, var, c, eps), shift = b[c] - mean[c] * scale;
    out[a] = frozen_out(x[a], scale, shift, relu);
}

__kernel void bn_frozen_backward_flat(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                                      __global const float *y, const ulong y_off,
                                      __global const float *w, const ulong w_off, __global const float *var, const ulong var_off,
                                      const int C, const int HW, const ulong total, const float eps, const int acc,
                                      const int mask) {
    dx += dx_off; dout += dout_off; y += y_off; w += w_off; var += var_off;
    const ulong a = get_global_id(0);
    if (a >= total) return;
    const int c = (int)((a / (ulong)HW) % (ulong)C);
    const float scale = frozen_scale(w, var, c, eps);
    const float v = frozen_grad(dout, y, a, scale, mask);
    dx[a] = acc ? dx[a] + v : v;
}

/* A residual block's tail with a frozen batch norm on its main branch:
 * out = relu(bn(x) + s), the values of bn_frozen_forward then
 * add_relu_forward. Backward: g = dout where out > 0, else 0 (as
 * add_relu_backward gives it); ds (=/+= by acc_s) g and dx (=/+= by acc) g *
 * scale, as bn_frozen_backward gives it. Both gradients are always written
 * (the host takes bn_frozen_backward or relu_backward when one is not
 * wanted). Ranges as the kernels above: (HW, C, B), or flat. */
static inline float frozen_add_relu(const float x, const float sc, const float scale, const float shift) {
    const float y = x * scale + shift;
    const float v = y + sc;
    return v < 0.0f ? 0.0f : v;
}

static inline void frozen_add_relu_grads(__global float *dx, __global float *ds, __global const float *dout,
                                         __global const float *out, const ulong a, const float scale, const int acc,
                                         const int acc_s) {
    const float g = out[a] > 0.0f ? dout[a] : 0.0f, v = g * scale;
    ds[a] = acc_s ? ds[a] + g : g;
    dx[a] = acc ? dx[a] + v : v;
}

__kernel void bn_frozen_add_relu_forward(__global float *out, const ulong out_off, __global const float *x,
                                         const ulong x_off, __global const float *sc, const ulong sc_off,
                                         __global const float *w, const ulong w_off, __global const float *b,
                                         const ulong b_off, __global const float *mean, const ulong mean_off,
                                         __global const float *var, const ulong var_off, const int B, const int C,
                                         const int HW, const float eps) {
    out += out_off; x += x_off; sc += sc_off; w += w_off; b += b_off; mean += mean_off; var += var_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float scale = frozen_scale(w, var, cc, eps), shift = b[cc] - mean[cc] * scale;
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    out[a] = frozen_add_relu(x[a], sc[a], scale, shift);
}

__kernel void bn_frozen_add_relu_backward(__global float *dx, const ulong dx_off, __global float *ds,
                                          const ulong ds_off, __global const float *dout, const ulong dout_off,
                                          __global const float *out, const ulong out_off, __global const float *w,
                                          const ulong w_off, __global const float *var, const ulong var_off,
                                          const int B, const int C, const int HW, const float eps, const int acc,
                                          const int acc_s) {
    dx += dx_off; ds += ds_off; dout += dout_off; out += out_off; w += w_off; var += var_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float scale = frozen_scale(w, var, cc, eps);
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    frozen_add_relu_grads(dx, ds, dout, out, ((ulong)n * C + c) * HW + i, scale, acc, acc_s);
}

__kernel void bn_frozen_add_relu_forward_flat(__global float *out, const ulong out_off, __global const float *x,
                                              const ulong x_off, __global const float *sc, const ulong sc_off,
                                              __global const float *w, const ulong w_off, __global const float *b,
                                              const ulong b_off, __global const float *mean, const ulong mean_off,
                                              __global const float *var, const ulong var_off, const int C,
                                              const int HW, const ulong total, const float eps) {
    out += out_off; x += x_off; sc += sc_off; w += w_off; b += b_off; mean += mean_off; var += var_off;
    const ulong a = get_global_id(0);
    if (a >= total) return;
    const int c = (int)((a / (ulong)HW) % (ulong)C);
    const float scale = frozen_scale(w, var, c, eps), shift = b[c] - mean[c] * scale;
    out[a] = frozen_add_relu(x[a], sc[a], scale, shift);
}

__kernel void bn_frozen_add_relu_backward_flat(__global float *dx, const ulong dx_off, __global float *ds,
                                               const ulong ds_off, __global const float *dout, const ulong dout_off,
                                               __global const float *out, const ulong out_off,
                                               __global const float *w, const ulong w_off, __global const float *var,
                                               const ulong var_off, const int C, const int HW, const ulong total,
                                               const float eps, const int acc, const int acc_s) {
    dx += dx_off; ds += ds_off; dout += dout_off; out += out_off; w += w_off; var += var_off;
    const ulong a = get_global_id(0);
    if (a >= total) return;
    const float scale = frozen_scale(w, var, (int)((a / (ulong)HW) % (ulong)C), eps);
    frozen_add_relu_grads(dx, ds, dout, out, a, scale, acc, acc_s);
}

/* Batch statistics of channel = group id: save_mean, save_rstd = 1/sqrt(var + eps)
 * (biased var), and the running update with the unbiased var (N > 1). */
__kernel void bn_train_stats(__global float *save_mean, const ulong save_mean_off,
                             __global float *save_rstd, const ulong save_rstd_off,
                             __global float *run_mean, const ulong run_mean_off,
                             __global float *run_var, const ulong run_var_off,
                             __global const float *x, const ulong x_off, __local float *part,
                             const int B, const int C, const int HW, const float eps, const float momentum,
                             const int update_running) {
    save_mean += save_mean_off; save_rstd += save_rstd_off; run_mean += run_mean_off; run_var += run_var_off;
    x += x_off;
    const int c = (int)get_group_id(0), lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    const ulong N = (ulong)B * HW;
    float8 s8 = 0.0f;
    float s1 = 0.0f;
    BN_ROW_SUM(s8, s1, B, C, HW, c, lid, nl, vload8(0, x + row + i), x[row + i]);
    const float mean = wg_sum(part, sum8(s8) + s1) / (float)N;
    s8 = 0.0f;
    s1 = 0.0f;
    BN_ROW_SUM(s8, s1, B, C, HW, c, lid, nl, (vload8(0, x + row + i) - mean) * (vload8(0, x + row + i) - mean),
               (x[row + i] - mean) * (x[row + i] - mean));
    const float s = sum8(s8) + s1;
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

/* out = (x - mean[c]) * rstd[c] * w[c] + b[c], then with relu = 1 ReLU as
 * relu_forward computes it (a batch norm followed by a ReLU in one pass) */
__kernel void bn_train_apply(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                             __global const float *mean, const ulong mean_off, __global const float *rstd,
                             const ulong rstd_off, __global const float *w, const ulong w_off,
                             __global const float *b, const ulong b_off, const int B, const int C, const int HW,
                             const int relu) {
    out += out_off; x += x_off; mean += mean_off; rstd += rstd_off; w += w_off; b += b_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float m = mean[cc], r = rstd[cc], wc = w[cc], bc = b[cc];
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    const float v = (x[a] - m) * r * wc + bc;
    out[a] = relu && v < 0.0f ? 0.0f : v;
}

/* A residual block's tail after a training batch norm: out = relu(bn(x) + s),
 * bn(x) as bn_train_apply computes it, then add_relu_forward's sum and ReLU. */
__kernel void bn_train_apply_add_relu(__global float *out, const ulong out_off, __global const float *x,
                                      const ulong x_off, __global const float *sc, const ulong sc_off,
                                      __global const float *mean, const ulong mean_off, __global const float *rstd,
                                      const ulong rstd_off, __global const float *w, const ulong w_off,
                                      __global const float *b, const ulong b_off, const int B, const int C,
                                      const int HW) {
    out += out_off; x += x_off; sc += sc_off; mean += mean_off; rstd += rstd_off; w += w_off; b += b_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float m = mean[cc], r = rstd[cc], wc = w[cc], bc = b[cc];
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    const float y = (x[a] - m) * r * wc + bc;
    const float v = y + sc[a];
    out[a] = v < 0.0f ? 0.0f : v;
}

/* The output gradient of a batch norm followed by a ReLU whose output is y:
 * dout where y > 0, else 0, as relu_backward computes it; mask = 0: dout.
 * 8, 16 or 1 values from index k. */
static inline __attribute__((always_inline)) float8 bn_dout8(__global const float *dout, __global const float *y,
                                                             const ulong k, const int mask) {
    const float8 d = vload8(0, dout + k);
    return mask ? select((float8)(0.0f), d, vload8(0, y + k) > 0.0f) : d;
}

static inline __attribute__((always_inline)) float16 bn_dout16(__global const float *dout, __global const float *y,
                                                               const ulong k, const int mask) {
    const float16 d = vload16(0, dout + k);
    return mask ? select((float16)(0.0f), d, vload16(0, y + k) > 0.0f) : d;
}

static inline __attribute__((always_inline)) float bn_dout1(__global const float *dout, __global const float *y,
                                                            const ulong k, const int mask) {
    return mask && !(y[k] > 0.0f) ? 0.0f : dout[k];
}

/* Per channel: sums[2c] = sum dout, sums[2c+1] = sum dout * xhat; db += the
 * first, dw += the second (when has_dw / has_db). mask = 1: dout through the
 * ReLU that follows, whose output is y (bn_dout8). */
__kernel void bn_train_backward_reduce(__global float *sums, const ulong sums_off,
                                       __global float *dw, const ulong dw_off, __global float *db, const ulong db_off,
                                       __global const float *dout, const ulong dout_off,
                                       __global const float *y, const ulong y_off,
                                       __global const float *x, const ulong x_off,
                                       __global const float *mean, const ulong mean_off,
                                       __global const float *rstd, const ulong rstd_off, __local float *part,
                                       const int B, const int C, const int HW, const int has_dw, const int has_db,
                                       const int mask) {
    sums += sums_off; dw += dw_off; db += db_off; dout += dout_off; y += y_off; x += x_off; mean += mean_off;
    rstd += rstd_off;
    const int c = (int)get_group_id(0), lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    const float m = mean[c], r = rstd[c];
    float8 d8 = 0.0f, dx8 = 0.0f;
    float d1 = 0.0f, dx1 = 0.0f;
    BN_ROW_SUM(d8, d1, B, C, HW, c, lid, nl, bn_dout8(dout, y, row + i, mask), bn_dout1(dout, y, row + i, mask));
    BN_ROW_SUM(dx8, dx1, B, C, HW, c, lid, nl, bn_dout8(dout, y, row + i, mask) * (vload8(0, x + row + i) - m) * r,
               bn_dout1(dout, y, row + i, mask) * (x[row + i] - m) * r);
    float sd = sum8(d8) + d1, sdx = sum8(dx8) + dx1;
    sd = wg_sum(part, sd);
    sdx = wg_sum(part, sdx);
    if (lid == 0) {
        sums[2 * c] = sd;
        sums[2 * c + 1] = sdx;
        if (has_db) db[c] += sd;
        if (has_dw) dw[c] += sdx;
    }
}

/* dx (=/+=) w rstd (dout - sum_dout / N - xhat * sum_dout_xhat / N); mask as
 * in bn_train_backward_reduce */
__kernel void bn_train_backward_dx(__global float *dx, const ulong dx_off, __global const float *dout,
                                   const ulong dout_off, __global const float *y, const ulong y_off,
                                   __global const float *x, const ulong x_off, __global const float *sums,
                                   const ulong sums_off, __global const float *mean, const ulong mean_off,
                                   __global const float *rstd, const ulong rstd_off, __global const float *w,
                                   const ulong w_off, const int B, const int C, const int HW, const int acc,
                                   const int mask) {
    dx += dx_off; dout += dout_off; y += y_off; x += x_off; sums += sums_off; mean += mean_off; rstd += rstd_off;
    w += w_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float invN = 1.0f / (float)((ulong)B * HW);
    const float m = mean[cc], r = rstd[cc], wr = w[cc] * r, sd = sums[2 * cc] * invN, sdx = sums[2 * cc + 1] * invN;
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    const float xhat = (x[a] - m) * r;
    const float v = wr * (bn_dout1(dout, y, a, mask) - sd - xhat * sdx);
    dx[a] = acc ? dx[a] + v : v;
}

/* bn_train_backward_dx with mask = 1 for a residual block's tail (y = its
 * output), and the shortcut's gradient too: ds (=/+= by acc_s) = dout where
 * y > 0, else 0, as add_relu_backward gives it. */
__kernel void bn_train_backward_dx_tail(__global float *dx, const ulong dx_off, __global float *ds,
                                        const ulong ds_off, __global const float *dout, const ulong dout_off,
                                        __global const float *y, const ulong y_off, __global const float *x,
                                        const ulong x_off, __global const float *sums, const ulong sums_off,
                                        __global const float *mean, const ulong mean_off,
                                        __global const float *rstd, const ulong rstd_off, __global const float *w,
                                        const ulong w_off, const int B, const int C, const int HW, const int acc,
                                        const int acc_s) {
    dx += dx_off; ds += ds_off; dout += dout_off; y += y_off; x += x_off; sums += sums_off; mean += mean_off;
    rstd += rstd_off; w += w_off;
    const int i = (int)get_global_id(0), c = (int)get_global_id(1), n = (int)get_global_id(2);
    const int cc = min(c, C - 1);
    const float invN = 1.0f / (float)((ulong)B * HW);
    const float m = mean[cc], r = rstd[cc], wr = w[cc] * r, sd = sums[2 * cc] * invN, sdx = sums[2 * cc + 1] * invN;
    if (c >= C || n >= B) return;   /* dim 0 is exact: see BN_CHANNEL_FIRST */
    const ulong a = ((ulong)n * C + c) * HW + i;
    const float xhat = (x[a] - m) * r, g = bn_dout1(dout, y, a, 1);
    const float v = wr * (g - sd - xhat * sdx);
    ds[a] = acc_s ? ds[a] + g : g;
    dx[a] = acc ? dx[a] + v : v;
}

/* bn_train_stats and bn_train_backward_reduce in a CPU's shape (the row
 * kernels of devices that are not GPUs): a work-item per channel runs over
 * its B planes with float16 sums and a scalar tail, with no work-group tree
 * (whose barriers cost PoCL 35-90 us a call). The same sums otherwise, in
 * another order. Range (C). */
static inline __attribute__((always_inline)) float bn_plane_sum(__global const float *x, const int B, const int C,
                                                                const int HW, const int c, const float m,
                                                                const int squares) {
    float16 s16 = (float16)(0.0f);
    float s1 = 0.0f;
    for (int n = 0; n < B; n++) {
        const ulong row = ((ulong)n * C + c) * HW;
        int i = 0;
        for (; i + 16 <= HW; i += 16) {
            const float16 v = vload16(0, x + row + i);
            s16 = squares ? fma(v - m, v - m, s16) : s16 + v;   /* (x - m)^2 or x */
        }
        for (; i < HW; i++) {
            const float v = x[row + i];
            s1 = squares ? fma(v - m, v - m, s1) : s1 + v;
        }
    }
    return hsum16(s16) + s1;
}

__kernel void bn_cols_stats(__global float *save_mean, const ulong save_mean_off,
                            __global float *save_rstd, const ulong save_rstd_off,
                            __global float *run_mean, const ulong run_mean_off,
                            __global float *run_var, const ulong run_var_off,
                            __global const float *x, const ulong x_off,
                            const int B, const int C, const int HW, const float eps, const float momentum,
                            const int update_running) {
    save_mean += save_mean_off; save_rstd += save_rstd_off; run_mean += run_mean_off; run_var += run_var_off;
    x += x_off;
    const int c = (int)get_global_id(0);
    if (c >= C) return;
    const ulong N = (ulong)B * HW;
    const float mean = bn_plane_sum(x, B, C, HW, c, 0.0f, 0) / (float)N;
    const float var = bn_plane_sum(x, B, C, HW, c, mean, 1) / (float)N;
    save_mean[c] = mean;
    save_rstd[c] = 1.0f / sqrt(var + eps);
    if (update_running) {
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean;
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (var * (float)N / (float)(N - 1));
    }
}

__kernel void bn_cols_backward_reduce(__global float *sums, const ulong sums_off,
                                      __global float *dw, const ulong dw_off, __global float *db, const ulong db_off,
                                      __global const float *dout, const ulong dout_off,
                                      __global const float *y, const ulong y_off,
                                      __global const float *x, const ulong x_off,
                                      __global const float *mean, const ulong mean_off,
                                      __global const float *rstd, const ulong rstd_off,
                                      const int B, const int C, const int HW, const int has_dw, const int has_db,
                                      const int mask) {
    sums += sums_off; dw += dw_off; db += db_off; dout += dout_off; y += y_off; x += x_off; mean += mean_off;
    rstd += rstd_off;
    const int c = (int)get_global_id(0);
    if (c >= C) return;
    const float m = mean[c], r = rstd[c];
    float16 d16 = (float16)(0.0f), dx16 = (float16)(0.0f);   /* both sums in one pass over dout, y, x */
    float d1 = 0.0f, dx1 = 0.0f;
    for (int n = 0; n < B; n++) {
        const ulong row = ((ulong)n * C + c) * HW;
        int i = 0;
        for (; i + 16 <= HW; i += 16) {
            const ulong k = row + i;
            const float16 d = bn_dout16(dout, y, k, mask);
            d16 += d;
            dx16 += d * ((vload16(0, x + k) - m) * r);
        }
        for (; i < HW; i++) {
            const ulong k = row + i;
            const float d = bn_dout1(dout, y, k, mask);
            d1 += d;
            dx1 += d * ((x[k] - m) * r);
        }
    }
    const float sd = hsum16(d16) + d1, sdx = hsum16(dx16) + dx1;
    sums[2 * c] = sd;
    sums[2 * c + 1] = sdx;
    if (has_db) db[c] += sd;
    if (has_dw) dw[c] += sdx;
}
