/* Fused attention: o = dropout(softmax(scale * (q k^T + bias), key mask)) v
 * for every head in one kernel, and its backward in two, with the (Lq, Lk)
 * weights never in memory: the forward keeps each row's log-sum-exp, and the
 * backward recomputes the weights from it (src/ops/attention.c has the host
 * side and the plain C reference).
 *
 * Layouts, as the separate path's (cl/softmax.cl, the heads GEMMs):
 *   q, o, dout (B, Lq, d), k, v (B, Lk, d); head h is columns [h*HD, (h+1)*HD),
 *   d = NH * HD; mask (B, Lk), 1 = padding; bias (Lq, Lk) for every head;
 *   lse, delta (B, NH, Lq); weight (b, h, i, j) has dropout counter
 *   ((b*NH + h)*Lq + i)*Lk + j, the element nn_dropout would draw for it.
 * flags: 1 mask, 2 bias, 4 dropout (keep = 1/(1-p), drawn with philox_uniform).
 *
 * CPUs: one work-item per query row (forward, dq) or key row (dk, dv), the
 * head's row of HD floats held as HD/4 float4 in private memory. GPUs: the
 * same with each row split over S work-items (the *_split kernels below).
 * HD is a constant of each kernel (8, 16, 32, 64: the wrappers at the end),
 * so the loops over it unroll and the rows stay in registers; other widths
 * take the separate ops. A work-group's work-items mostly share one head of
 * one image, so on a GPU they read the same key row at once. Conventions:
 * see cl/common.cl. */

/* the inputs every attention kernel takes, after its outputs and row count */
#define ATT_IN __global const float *q, const ulong q_off, __global const float *k, const ulong k_off, \
               __global const float *v, const ulong v_off, __global const float *mask, const ulong mask_off, \
               __global const float *bias, const ulong bias_off, const int flags, const uint NH, const uint Lq, \
               const uint Lk, const uint d, const float scale, const float p, const float keep, const ulong seed, \
               const ulong stream
#define ATT_IN_NAMES q, q_off, k, k_off, v, v_off, mask, mask_off, bias, bias_off, flags, NH, Lq, Lk, d, scale, p, \
                     keep, seed, stream
#define ATT_MASK 1
#define ATT_BIAS 2
#define ATT_DROPOUT 4
#define ATT_HD4_MAX 16

/* the sum of a float4's lanes, (x + z) + (y + w), read back through a
 * volatile copy as hsum16 in cl/common.cl does (and for the same reason) */
static inline __attribute__((always_inline)) float hsum4(const float4 v) {
    const float2 h = v.lo + v.hi;
    volatile float l[2];
    l[0] = h.x;
    l[1] = h.y;
    return l[0] + l[1];
}

/* a (private, HD4 float4) . b (global): lane-wise FMAs from a[0] * b[0], then hsum4 */
static inline __attribute__((always_inline)) float att_dot(const float4 *a, __global const float *b,
                                                           const uint HD4) {
    float4 s = a[0] * vload4(0, b);
#pragma unroll
    for (uint c = 1; c < HD4; c++) s = fma(a[c], vload4(c, b), s);
    return hsum4(s);
}

static inline __attribute__((always_inline)) void att_load(float4 *a, __global const float *b, const uint HD4) {
#pragma unroll
    for (uint c = 0; c < HD4; c++) a[c] = vload4(c, b);
}

/* the logit of query row qr (private) against key row kr: scale * (q . k + bias) */
static inline __attribute__((always_inline)) float att_logit(const float4 *qr, __global const float *kr,
                                                             __global const float *bias_ij, const int flags,
                                                             const float scale, const uint HD4) {
    float s = att_dot(qr, kr, HD4);
    if (flags & ATT_BIAS) s += *bias_ij;
    return scale * s;
}

/* Forward, one query row r = (b*NH + h)*Lq + i: an online softmax over the
 * keys (the running maximum m rescales the sum l and the output when it
 * grows), dropped weights count in l but not in the output. A row whose keys
 * are all masked gives o = 0 and lse = -inf, as the separate softmax's zeros. */
static inline __attribute__((always_inline)) void att_forward(__global float *o, const ulong o_off,
                                                              __global float *lse, const ulong lse_off,
                                                              const ulong rows, ATT_IN, const uint HD4) {
    const ulong r = get_global_id(0);
    if (r >= rows) return;
    /* the remainders as r - q * d, not %: a / and % of one value become a
     * freeze instruction in LLVM, which oclgrind's --uninitialized cannot run */
    const ulong bh = r / Lq, b = bh / NH;
    const uint i = (uint)(r - bh * Lq), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4;
    const ulong qrow = (b * Lq + i) * d + col;
    q += q_off + qrow;
    o += o_off + qrow;
    k += k_off + b * Lk * d + col;
    v += v_off + b * Lk * d + col;
    mask += mask_off + b * Lk;
    bias += bias_off + (ulong)i * Lk;
    float4 qr[ATT_HD4_MAX], acc[ATT_HD4_MAX];
    att_load(qr, q, HD4);
#pragma unroll
    for (uint c = 0; c < HD4; c++) acc[c] = (float4)(0.0f);
    float m = -INFINITY, l = 0.0f;
    for (uint j = 0; j < Lk; j++) {
        if ((flags & ATT_MASK) && mask[j] > 0.5f) continue;
        const float s = att_logit(qr, k + (ulong)j * d, bias + j, flags, scale, HD4);
        if (s > m) {            /* m = -inf the first time: a = 0 clears l and acc, which are 0 */
            const float a = exp(m - s);
            l *= a;
#pragma unroll
            for (uint c = 0; c < HD4; c++) acc[c] *= a;
            m = s;
        }
        float e = exp(s - m);
        l += e;
        if (flags & ATT_DROPOUT) {
            if (philox_uniform(seed, stream, r * Lk + j) < p) continue;
            e *= keep;
        }
        __global const float *vr = v + (ulong)j * d;
#pragma unroll
        for (uint c = 0; c < HD4; c++) acc[c] = fma((float4)(e), vload4(c, vr), acc[c]);
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(acc[c] * inv, c, o);
    lse[lse_off + r] = l > 0.0f ? m + log(l) : -INFINITY;
}

/* dq for query row r, and delta[r] = dout_r . o_r (= sum_j P_ij dP_ij) for the
 * key kernel: dS_ij = P_ij (dP_ij - delta), dP_ij = keep_ij * dout_r . v_j,
 * dq (=/+=) scale * sum_j dS_ij k_j; acc -1: dq is not written. */
static inline __attribute__((always_inline)) void att_backward_q(__global float *dq, const ulong dq_off,
                                                                 __global float *delta, const ulong delta_off,
                                                                 __global const float *dout, const ulong dout_off,
                                                                 __global const float *o, const ulong o_off,
                                                                 __global const float *lse, const ulong lse_off,
                                                                 const ulong rows, const int acc, ATT_IN,
                                                                 const uint HD4) {
    const ulong r = get_global_id(0);
    if (r >= rows) return;
    const ulong bh = r / Lq, b = bh / NH;            /* no %: see att_forward */
    const uint i = (uint)(r - bh * Lq), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4;
    const ulong qrow = (b * Lq + i) * d + col;
    q += q_off + qrow;
    dq += dq_off + qrow;
    k += k_off + b * Lk * d + col;
    v += v_off + b * Lk * d + col;
    mask += mask_off + b * Lk;
    bias += bias_off + (ulong)i * Lk;
    float4 qr[ATT_HD4_MAX], gr[ATT_HD4_MAX], dqr[ATT_HD4_MAX];
    att_load(qr, q, HD4);
    att_load(gr, dout + dout_off + qrow, HD4);
    const float D = att_dot(gr, o + o_off + qrow, HD4), L = lse[lse_off + r];
    delta[delta_off + r] = D;
#pragma unroll
    for (uint c = 0; c < HD4; c++) dqr[c] = (float4)(0.0f);
    for (uint j = 0; L != -INFINITY && j < Lk; j++) {
        if ((flags & ATT_MASK) && mask[j] > 0.5f) continue;
        __global const float *kr = k + (ulong)j * d;
        const float P = exp(att_logit(qr, kr, bias + j, flags, scale, HD4) - L);
        float dP = 0.0f;
        if (!(flags & ATT_DROPOUT) || philox_uniform(seed, stream, r * Lk + j) >= p)
            dP = keep * att_dot(gr, v + (ulong)j * d, HD4);
        const float dS = P * (dP - D);
#pragma unroll
        for (uint c = 0; c < HD4; c++) dqr[c] = fma((float4)(dS), vload4(c, kr), dqr[c]);
    }
    if (acc < 0) return;
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        const float4 g = scale * dqr[c];
        vstore4(acc ? vload4(c, dq) + g : g, c, dq);
    }
}

/* dk and dv for key row r = (b*NH + h)*Lk + j, over the queries of its head:
 * dv_j (=/+=) sum_i keep_ij P_ij dout_i, dk_j (=/+=) scale * sum_i dS_ij q_i.
 * which: bit 0 write dk, 1 write dv; acc: bit 0 adds to dk, bit 1 to dv. */
static inline __attribute__((always_inline)) void att_backward_kv(__global float *dk, const ulong dk_off,
                                                                  __global float *dv, const ulong dv_off,
                                                                  __global const float *dout, const ulong dout_off,
                                                                  __global const float *lse, const ulong lse_off,
                                                                  __global const float *delta,
                                                                  const ulong delta_off, const ulong rows,
                                                                  const int which, const int acc, ATT_IN,
                                                                  const uint HD4) {
    const ulong r = get_global_id(0);
    if (r >= rows) return;
    const ulong bh = r / Lk, b = bh / NH;            /* no %: see att_forward */
    const uint j = (uint)(r - bh * Lk), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4;
    const ulong krow = (b * Lk + j) * d + col;
    q += q_off + b * Lq * d + col;
    dout += dout_off + b * Lq * d + col;
    lse += lse_off + bh * Lq;
    delta += delta_off + bh * Lq;
    bias += bias_off + j;
    float4 kr[ATT_HD4_MAX], vr[ATT_HD4_MAX], dkr[ATT_HD4_MAX], dvr[ATT_HD4_MAX];
    att_load(kr, k + k_off + krow, HD4);
    att_load(vr, v + v_off + krow, HD4);
#pragma unroll
    for (uint c = 0; c < HD4; c++) { dkr[c] = (float4)(0.0f); dvr[c] = (float4)(0.0f); }
    const int valid = !(flags & ATT_MASK) || !(mask[mask_off + b * Lk + j] > 0.5f);
    for (uint i = 0; valid && i < Lq; i++) {
        const float L = lse[i];
        if (L == -INFINITY) continue;
        __global const float *qi = q + (ulong)i * d, *gi = dout + (ulong)i * d;
        const float P = exp(att_logit(kr, qi, bias + (ulong)i * Lk, flags, scale, HD4) - L);
        float dP = 0.0f;
        if (!(flags & ATT_DROPOUT) || philox_uniform(seed, stream, (bh * Lq + i) * Lk + j) >= p) {
            dP = keep * att_dot(vr, gi, HD4);
            const float Pk = keep * P;
#pragma unroll
            for (uint c = 0; c < HD4; c++) dvr[c] = fma((float4)(Pk), vload4(c, gi), dvr[c]);
        }
        const float dS = P * (dP - delta[i]);
#pragma unroll
        for (uint c = 0; c < HD4; c++) dkr[c] = fma((float4)(dS), vload4(c, qi), dkr[c]);
    }
    dk += dk_off + krow;
    dv += dv_off + krow;
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        const float4 gk = scale * dkr[c];
        if (which & 1) vstore4((acc & 1) ? vload4(c, dk) + gk : gk, c, dk);
        if (which & 2) vstore4((acc & 2) ? vload4(c, dv) + dvr[c] : dvr[c], c, dv);
    }
}

/* GPUs (the split kernels): a row's keys (forward, dq) or queries (dk, dv)
 * split over S work-items, dim 0 of an (S, R) work-group whose dim 1 holds R
 * rows, so that a short batch of rows still fills the device. Work-item s
 * takes every S-th key from s; the S partial results meet in local memory
 * (`part`, R * S slots), where s = 0 merges them in the order of s. With
 * S = 1 the results are the row kernels' bits. Every work-item reaches the
 * barrier: rows past the end compute nothing but do not return early. */

/* the forward: partial (acc, m, l) per work-item; the merge rescales each by
 * exp(m_s - max m) (a part with no valid key, m_s = -inf, adds nothing) */
static inline __attribute__((always_inline)) void att_forward_split(__global float *o, const ulong o_off,
                                                                    __global float *lse, const ulong lse_off,
                                                                    const ulong rows, ATT_IN,
                                                                    __local float *part, const uint HD4) {
    const uint s = get_local_id(0), S = get_local_size(0), HD = 4 * HD4;
    const ulong r = get_global_id(1);
    const int valid = r < rows;
    const ulong rr = valid ? r : 0;
    const ulong bh = rr / Lq, b = bh / NH;
    const uint i = (uint)(rr - bh * Lq), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4, qrow = (b * Lq + i) * d + col;
    k += k_off + b * Lk * d + col;
    v += v_off + b * Lk * d + col;
    mask += mask_off + b * Lk;
    bias += bias_off + (ulong)i * Lk;
    float4 qr[ATT_HD4_MAX], acc[ATT_HD4_MAX];
    att_load(qr, q + q_off + qrow, HD4);
#pragma unroll
    for (uint c = 0; c < HD4; c++) acc[c] = (float4)(0.0f);
    float m = -INFINITY, l = 0.0f;
    for (uint j = s; valid && j < Lk; j += S) {
        if ((flags & ATT_MASK) && mask[j] > 0.5f) continue;
        const float x = att_logit(qr, k + (ulong)j * d, bias + j, flags, scale, HD4);
        if (x > m) {
            const float a = exp(m - x);
            l *= a;
#pragma unroll
            for (uint c = 0; c < HD4; c++) acc[c] *= a;
            m = x;
        }
        float e = exp(x - m);
        l += e;
        if (flags & ATT_DROPOUT) {
            if (philox_uniform(seed, stream, rr * Lk + j) < p) continue;
            e *= keep;
        }
        __global const float *vr = v + (ulong)j * d;
#pragma unroll
        for (uint c = 0; c < HD4; c++) acc[c] = fma((float4)(e), vload4(c, vr), acc[c]);
    }
    __local float *row = part + (ulong)get_local_id(1) * S * (HD + 2);
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(acc[c], c, row + s * (HD + 2));
    row[s * (HD + 2) + HD] = m;
    row[s * (HD + 2) + HD + 1] = l;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s != 0 || !valid) return;
    float M = -INFINITY, L = 0.0f;
    for (uint t = 0; t < S; t++) M = fmax(M, row[t * (HD + 2) + HD]);
#pragma unroll
    for (uint c = 0; c < HD4; c++) acc[c] = (float4)(0.0f);
    for (uint t = 0; t < S; t++) {
        const float mt = row[t * (HD + 2) + HD];
        if (mt == -INFINITY) continue;
        const float w = exp(mt - M);
        L = fma(row[t * (HD + 2) + HD + 1], w, L);
#pragma unroll
        for (uint c = 0; c < HD4; c++) acc[c] = fma((float4)(w), vload4(c, row + t * (HD + 2)), acc[c]);
    }
    const float inv = L > 0.0f ? 1.0f / L : 0.0f;
    o += o_off + qrow;
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(acc[c] * inv, c, o);
    lse[lse_off + r] = L > 0.0f ? M + log(L) : -INFINITY;
}

/* dq and delta: partial sums of dS_ij k_j over every S-th key, added in the order of s */
static inline __attribute__((always_inline)) void att_backward_q_split(
    __global float *dq, const ulong dq_off, __global float *delta, const ulong delta_off, __global const float *dout,
    const ulong dout_off, __global const float *o, const ulong o_off, __global const float *lse, const ulong lse_off,
    const ulong rows, const int acc, ATT_IN, __local float *part, const uint HD4) {
    const uint s = get_local_id(0), S = get_local_size(0), HD = 4 * HD4;
    const ulong r = get_global_id(1);
    const int valid = r < rows;
    const ulong rr = valid ? r : 0;
    const ulong bh = rr / Lq, b = bh / NH;
    const uint i = (uint)(rr - bh * Lq), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4, qrow = (b * Lq + i) * d + col;
    k += k_off + b * Lk * d + col;
    v += v_off + b * Lk * d + col;
    mask += mask_off + b * Lk;
    bias += bias_off + (ulong)i * Lk;
    float4 qr[ATT_HD4_MAX], gr[ATT_HD4_MAX], dqr[ATT_HD4_MAX];
    att_load(qr, q + q_off + qrow, HD4);
    att_load(gr, dout + dout_off + qrow, HD4);
    const float D = att_dot(gr, o + o_off + qrow, HD4), L = lse[lse_off + rr];
#pragma unroll
    for (uint c = 0; c < HD4; c++) dqr[c] = (float4)(0.0f);
    for (uint j = s; valid && L != -INFINITY && j < Lk; j += S) {
        if ((flags & ATT_MASK) && mask[j] > 0.5f) continue;
        __global const float *kr = k + (ulong)j * d;
        const float P = exp(att_logit(qr, kr, bias + j, flags, scale, HD4) - L);
        float dP = 0.0f;
        if (!(flags & ATT_DROPOUT) || philox_uniform(seed, stream, rr * Lk + j) >= p)
            dP = keep * att_dot(gr, v + (ulong)j * d, HD4);
        const float dS = P * (dP - D);
#pragma unroll
        for (uint c = 0; c < HD4; c++) dqr[c] = fma((float4)(dS), vload4(c, kr), dqr[c]);
    }
    __local float *row = part + (ulong)get_local_id(1) * S * HD;
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(dqr[c], c, row + s * HD);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s != 0 || !valid) return;
    delta[delta_off + r] = D;
    if (acc < 0) return;
    for (uint t = 1; t < S; t++)
#pragma unroll
        for (uint c = 0; c < HD4; c++) dqr[c] += vload4(c, row + t * HD);
    dq += dq_off + qrow;
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        const float4 g = scale * dqr[c];
        vstore4(acc ? vload4(c, dq) + g : g, c, dq);
    }
}

/* dk and dv: partial sums over every S-th query, added in the order of s */
static inline __attribute__((always_inline)) void att_backward_kv_split(
    __global float *dk, const ulong dk_off, __global float *dv, const ulong dv_off, __global const float *dout,
    const ulong dout_off, __global const float *lse, const ulong lse_off, __global const float *delta,
    const ulong delta_off, const ulong rows, const int which, const int acc, ATT_IN, __local float *part,
    const uint HD4) {
    const uint s = get_local_id(0), S = get_local_size(0), HD = 4 * HD4;
    const ulong r = get_global_id(1);
    const int valid = r < rows;
    const ulong rr = valid ? r : 0;
    const ulong bh = rr / Lk, b = bh / NH;
    const uint j = (uint)(rr - bh * Lk), h = (uint)(bh - b * NH);
    const ulong col = (ulong)h * HD4 * 4, krow = (b * Lk + j) * d + col;
    q += q_off + b * Lq * d + col;
    dout += dout_off + b * Lq * d + col;
    lse += lse_off + bh * Lq;
    delta += delta_off + bh * Lq;
    bias += bias_off + j;
    float4 kr[ATT_HD4_MAX], vr[ATT_HD4_MAX], dkr[ATT_HD4_MAX], dvr[ATT_HD4_MAX];
    att_load(kr, k + k_off + krow, HD4);
    att_load(vr, v + v_off + krow, HD4);
#pragma unroll
    for (uint c = 0; c < HD4; c++) { dkr[c] = (float4)(0.0f); dvr[c] = (float4)(0.0f); }
    const int live = valid && (!(flags & ATT_MASK) || !(mask[mask_off + b * Lk + j] > 0.5f));
    for (uint i = s; live && i < Lq; i += S) {
        const float L = lse[i];
        if (L == -INFINITY) continue;
        __global const float *qi = q + (ulong)i * d, *gi = dout + (ulong)i * d;
        const float P = exp(att_logit(kr, qi, bias + (ulong)i * Lk, flags, scale, HD4) - L);
        float dP = 0.0f;
        if (!(flags & ATT_DROPOUT) || philox_uniform(seed, stream, (bh * Lq + i) * Lk + j) >= p) {
            dP = keep * att_dot(vr, gi, HD4);
            const float Pk = keep * P;
#pragma unroll
            for (uint c = 0; c < HD4; c++) dvr[c] = fma((float4)(Pk), vload4(c, gi), dvr[c]);
        }
        const float dS = P * (dP - delta[i]);
#pragma unroll
        for (uint c = 0; c < HD4; c++) dkr[c] = fma((float4)(dS), vload4(c, qi), dkr[c]);
    }
    __local float *row = part + (ulong)get_local_id(1) * S * 2 * HD;
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        vstore4(dkr[c], c, row + s * 2 * HD);
        vstore4(dvr[c], c, row + s * 2 * HD + HD);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s != 0 || !valid) return;
    for (uint t = 1; t < S; t++)
#pragma unroll
        for (uint c = 0; c < HD4; c++) {
            dkr[c] += vload4(c, row + t * 2 * HD);
            dvr[c] += vload4(c, row + t * 2 * HD + HD);
        }
    dk += dk_off + krow;
    dv += dv_off + krow;
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        const float4 gk = scale * dkr[c];
        if (which & 1) vstore4((acc & 1) ? vload4(c, dk) + gk : gk, c, dk);
        if (which & 2) vstore4((acc & 2) ? vload4(c, dv) + dvr[c] : dvr[c], c, dv);
    }
}

/* The kernels, one per head width HD = 4 * HD4 (the host picks by name). */
#define ATT_FW_ARGS __global float *o, const ulong o_off, __global float *lse, const ulong lse_off, \
                    const ulong rows, ATT_IN
#define ATT_FW_NAMES o, o_off, lse, lse_off, rows, ATT_IN_NAMES
#define ATT_BQ_ARGS __global float *dq, const ulong dq_off, __global float *delta, const ulong delta_off, \
                    __global const float *dout, const ulong dout_off, __global const float *o, const ulong o_off, \
                    __global const float *lse, const ulong lse_off, const ulong rows, const int acc, ATT_IN
#define ATT_BQ_NAMES dq, dq_off, delta, delta_off, dout, dout_off, o, o_off, lse, lse_off, rows, acc, ATT_IN_NAMES
#define ATT_BKV_ARGS __global float *dk, const ulong dk_off, __global float *dv, const ulong dv_off, \
                     __global const float *dout, const ulong dout_off, __global const float *lse, \
                     const ulong lse_off, __global const float *delta, const ulong delta_off, const ulong rows, \
                     const int which, const int acc, ATT_IN
#define ATT_BKV_NAMES dk, dk_off, dv, dv_off, dout, dout_off, lse, lse_off, delta, delta_off, rows, which, acc, \
                      ATT_IN_NAMES

__kernel void attention_forward_hd8(ATT_FW_ARGS) { att_forward(ATT_FW_NAMES, 2); }
__kernel void attention_forward_hd16(ATT_FW_ARGS) { att_forward(ATT_FW_NAMES, 4); }
__kernel void attention_forward_hd32(ATT_FW_ARGS) { att_forward(ATT_FW_NAMES, 8); }
__kernel void attention_forward_hd64(ATT_FW_ARGS) { att_forward(ATT_FW_NAMES, 16); }
__kernel void attention_backward_q_hd8(ATT_BQ_ARGS) { att_backward_q(ATT_BQ_NAMES, 2); }
__kernel void attention_backward_q_hd16(ATT_BQ_ARGS) { att_backward_q(ATT_BQ_NAMES, 4); }
__kernel void attention_backward_q_hd32(ATT_BQ_ARGS) { att_backward_q(ATT_BQ_NAMES, 8); }
__kernel void attention_backward_q_hd64(ATT_BQ_ARGS) { att_backward_q(ATT_BQ_NAMES, 16); }
__kernel void attention_backward_kv_hd8(ATT_BKV_ARGS) { att_backward_kv(ATT_BKV_NAMES, 2); }
__kernel void attention_backward_kv_hd16(ATT_BKV_ARGS) { att_backward_kv(ATT_BKV_NAMES, 4); }
__kernel void attention_backward_kv_hd32(ATT_BKV_ARGS) { att_backward_kv(ATT_BKV_NAMES, 8); }
__kernel void attention_backward_kv_hd64(ATT_BKV_ARGS) { att_backward_kv(ATT_BKV_NAMES, 16); }

/* GPUs: the same with the split over (S, R) work-groups */
#define ATT_FW_SPLIT ATT_FW_ARGS, __local float *part
#define ATT_BQ_SPLIT ATT_BQ_ARGS, __local float *part
#define ATT_BKV_SPLIT ATT_BKV_ARGS, __local float *part
__kernel void attention_forward_split_hd8(ATT_FW_SPLIT) { att_forward_split(ATT_FW_NAMES, part, 2); }
__kernel void attention_forward_split_hd16(ATT_FW_SPLIT) { att_forward_split(ATT_FW_NAMES, part, 4); }
__kernel void attention_forward_split_hd32(ATT_FW_SPLIT) { att_forward_split(ATT_FW_NAMES, part, 8); }
__kernel void attention_forward_split_hd64(ATT_FW_SPLIT) { att_forward_split(ATT_FW_NAMES, part, 16); }
__kernel void attention_backward_q_split_hd8(ATT_BQ_SPLIT) { att_backward_q_split(ATT_BQ_NAMES, part, 2); }
__kernel void attention_backward_q_split_hd16(ATT_BQ_SPLIT) { att_backward_q_split(ATT_BQ_NAMES, part, 4); }
__kernel void attention_backward_q_split_hd32(ATT_BQ_SPLIT) { att_backward_q_split(ATT_BQ_NAMES, part, 8); }
__kernel void attention_backward_q_split_hd64(ATT_BQ_SPLIT) { att_backward_q_split(ATT_BQ_NAMES, part, 16); }
__kernel void attention_backward_kv_split_hd8(ATT_BKV_SPLIT) { att_backward_kv_split(ATT_BKV_NAMES, part, 2); }
__kernel void attention_backward_kv_split_hd16(ATT_BKV_SPLIT) { att_backward_kv_split(ATT_BKV_NAMES, part, 4); }
__kernel void attention_backward_kv_split_hd32(ATT_BKV_SPLIT) { att_backward_kv_split(ATT_BKV_NAMES, part, 8); }
__kernel void attention_backward_kv_split_hd64(ATT_BKV_SPLIT) { att_backward_kv_split(ATT_BKV_NAMES, part, 16); }
