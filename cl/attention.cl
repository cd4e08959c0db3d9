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

static inline __attribute__((always_inline)) void att_zero(float4 *a, const uint HD4) {
#pragma unroll
    for (uint c = 0; c < HD4; c++) a[c] = (float4)(0.0f);
}

/* Where row r of a (B, NH, L) row space lies: image b, head h, row i of the
 * head, and the head's first column. The remainders as r - q * d, not %: a /
 * and % of one value become a freeze instruction in LLVM, which oclgrind's
 * --uninitialized cannot run. */
typedef struct { ulong bh, b, col; uint i; } att_row;
static inline __attribute__((always_inline)) att_row att_index(const ulong r, const uint L, const uint NH,
                                                               const uint HD4) {
    att_row x;
    x.bh = r / L;
    x.b = x.bh / NH;
    x.i = (uint)(r - x.bh * L);
    x.col = (x.bh - x.b * NH) * HD4 * 4;
    return x;
}

/* ---- the three loops; a row kernel runs them over every key (s = 0, S = 1),
 * a split kernel over every S-th from s ---- */

/* Forward over keys j = s, s + S, ... of query row r: an online softmax (the
 * running maximum m rescales the sum l and the output acc when it grows);
 * dropped weights count in l but not in acc. k, v, mask, bias: at the row's
 * image, head and query. */
static inline __attribute__((always_inline)) void att_forward_keys(
    const float4 *qr, __global const float *k, __global const float *v, __global const float *mask,
    __global const float *bias, const int flags, const float scale, const float p, const float keep,
    const ulong seed, const ulong stream, const ulong r, const uint Lk, const uint d, const uint s, const uint S,
    float *m_out, float *l_out, float4 *acc, const uint HD4) {
    float m = -INFINITY, l = 0.0f;
    att_zero(acc, HD4);
    for (uint j = s; j < Lk; j += S) {
        if ((flags & ATT_MASK) && mask[j] > 0.5f) continue;
        const float x = att_logit(qr, k + (ulong)j * d, bias + j, flags, scale, HD4);
        if (x > m) {            /* m = -inf the first time: a = 0 clears l and acc, which are 0 */
            const float a = exp(m - x);
            l *= a;
#pragma unroll
            for (uint c = 0; c < HD4; c++) acc[c] *= a;
            m = x;
        }
        float e = exp(x - m);
        l += e;
        if (flags & ATT_DROPOUT) {
            if (philox_uniform(seed, stream, r * Lk + j) < p) continue;
            e *= keep;
        }
        __global const float *vr = v + (ulong)j * d;
#pragma unroll
        for (uint c = 0; c < HD4; c++) acc[c] = fma((float4)(e), vload4(c, vr), acc[c]);
    }
    *m_out = m;
    *l_out = l;
}

/* dq's sum over keys j = s, s + S, ... of query row r (lse L, delta D):
 * dS_j = P_j (dP_j - D), dP_j = keep_j * dout . v_j; dqr = sum_j dS_j k_j. */
static inline __attribute__((always_inline)) void att_q_keys(
    const float4 *qr, const float4 *gr, const float D, const float L, __global const float *k,
    __global const float *v, __global const float *mask, __global const float *bias, const int flags,
    const float scale, const float p, const float keep, const ulong seed, const ulong stream, const ulong r,
    const uint Lk, const uint d, const uint s, const uint S, float4 *dqr, const uint HD4) {
    att_zero(dqr, HD4);
    for (uint j = s; L != -INFINITY && j < Lk; j += S) {
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
}

/* dk's and dv's sums over queries i = s, s + S, ... for key j of head row
 * space bh: dvr = sum_i keep_i P_i dout_i, dkr = sum_i dS_i q_i. q, dout, lse,
 * delta: at the head's first query; bias at column j. */
static inline __attribute__((always_inline)) void att_kv_queries(
    const float4 *kr, const float4 *vr, __global const float *q, __global const float *dout,
    __global const float *lse, __global const float *delta, __global const float *bias, const int flags,
    const float scale, const float p, const float keep, const ulong seed, const ulong stream, const ulong bh,
    const uint j, const uint Lq, const uint Lk, const uint d, const uint s, const uint S, float4 *dkr,
    float4 *dvr, const uint HD4) {
    att_zero(dkr, HD4);
    att_zero(dvr, HD4);
    for (uint i = s; i < Lq; i += S) {
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
}

/* ---- the stores ---- */

/* o = acc / l (0 when no key was valid) and lse = m + log l (-inf then) */
static inline __attribute__((always_inline)) void att_store_o(__global float *o, __global float *lse,
                                                              const float4 *acc, const float m, const float l,
                                                              const uint HD4) {
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(acc[c] * inv, c, o);
    *lse = l > 0.0f ? m + log(l) : -INFINITY;
}

/* dst (=/+= by acc) scale * a */
static inline __attribute__((always_inline)) void att_store_grad(__global float *dst, const float4 *a,
                                                                 const float scale, const int acc,
                                                                 const uint HD4) {
#pragma unroll
    for (uint c = 0; c < HD4; c++) {
        const float4 g = scale * a[c];
        vstore4(acc ? vload4(c, dst) + g : g, c, dst);
    }
}

/* dk (=/+= by acc bit 0) scale * dkr if which bit 0, dv (bit 1) dvr if which bit 1 */
static inline __attribute__((always_inline)) void att_store_kv(__global float *dk, __global float *dv,
                                                               const float4 *dkr, const float4 *dvr,
                                                               const float scale, const int which, const int acc,
                                                               const uint HD4) {
    if (which & 1) att_store_grad(dk, dkr, scale, acc & 1, HD4);
    if (which & 2) att_store_grad(dv, dvr, 1.0f, acc & 2, HD4);
}

/* ---- CPUs: a work-item per row (row r = (b*NH + h)*Lq + i, or *Lk + j) ---- */

/* o and the row's log-sum-exp. A row whose keys are all masked gives o = 0 and
 * lse = -inf, as the separate softmax's zeros. */
static inline __attribute__((always_inline)) void att_forward(__global float *o, const ulong o_off,
                                                              __global float *lse, const ulong lse_off,
                                                              const ulong rows, ATT_IN, const uint HD4) {
    const ulong r = get_global_id(0);
    if (r >= rows) return;
    const att_row x = att_index(r, Lq, NH, HD4);
    const ulong qrow = (x.b * Lq + x.i) * d + x.col, kv = x.b * Lk * d + x.col;
    float4 qr[ATT_HD4_MAX], acc[ATT_HD4_MAX];
    float m, l;
    att_load(qr, q + q_off + qrow, HD4);
    att_forward_keys(qr, k + k_off + kv, v + v_off + kv, mask + mask_off + x.b * Lk,
                     bias + bias_off + (ulong)x.i * Lk, flags, scale, p, keep, seed, stream, r, Lk, d, 0, 1, &m, &l,
                     acc, HD4);
    att_store_o(o + o_off + qrow, lse + lse_off + r, acc, m, l, HD4);
}

/* dq for query row r (acc -1: not written), and delta[r] = dout_r . o_r
 * (= sum_j P_j dP_j), which the key kernel reads */
static inline __attribute__((always_inline)) void att_backward_q(__global float *dq, const ulong dq_off,
                                                                 __global float *delta, const ulong delta_off,
                                                                 __global const float *dout, const ulong dout_off,
                                                                 __global const float *o, const ulong o_off,
                                                                 __global const float *lse, const ulong lse_off,
                                                                 const ulong rows, const int acc, ATT_IN,
                                                                 const uint HD4) {
    const ulong r = get_global_id(0);
    if (r >= rows) return;
    const att_row x = att_index(r, Lq, NH, HD4);
    const ulong qrow = (x.b * Lq + x.i) * d + x.col, kv = x.b * Lk * d + x.col;
    float4 qr[ATT_HD4_MAX], gr[ATT_HD4_MAX], dqr[ATT_HD4_MAX];
    att_load(qr, q + q_off + qrow, HD4);
    att_load(gr, dout + dout_off + qrow, HD4);
    const float D = att_dot(gr, o + o_off + qrow, HD4);
    delta[delta_off + r] = D;
    att_q_keys(qr, gr, D, lse[lse_off + r], k + k_off + kv, v + v_off + kv, mask + mask_off + x.b * Lk,
               bias + bias_off + (ulong)x.i * Lk, flags, scale, p, keep, seed, stream, r, Lk, d, 0, 1, dqr, HD4);
    if (acc >= 0) att_store_grad(dq + dq_off + qrow, dqr, scale, acc, HD4);
}

/* dk and dv for key row r over the queries of its head; which: bit 0 write
 * dk, 1 write dv; acc: bit 0 adds to dk, bit 1 to dv. A masked key gets 0. */
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
    const att_row x = att_index(r, Lk, NH, HD4);
    const ulong krow = (x.b * Lk + x.i) * d + x.col, qs = x.b * Lq * d + x.col;
    float4 kr[ATT_HD4_MAX], vr[ATT_HD4_MAX], dkr[ATT_HD4_MAX], dvr[ATT_HD4_MAX];
    att_load(kr, k + k_off + krow, HD4);
    att_load(vr, v + v_off + krow, HD4);
    const int live = !(flags & ATT_MASK) || !(mask[mask_off + x.b * Lk + x.i] > 0.5f);
    att_kv_queries(kr, vr, q + q_off + qs, dout + dout_off + qs, lse + lse_off + x.bh * Lq,
                   delta + delta_off + x.bh * Lq, bias + bias_off + x.i, flags, scale, p, keep, seed, stream, x.bh,
                   x.i, live ? Lq : 0, Lk, d, 0, 1, dkr, dvr, HD4);
    att_store_kv(dk + dk_off + krow, dv + dv_off + krow, dkr, dvr, scale, which, acc, HD4);
}

/* ---- GPUs: the split kernels ----
 * A row's keys (forward, dq) or queries (dk, dv) split over S work-items, dim
 * 0 of an (S, R) work-group whose dim 1 holds R rows, so that a short batch
 * of rows still fills the device. The S partial results meet in local memory
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
    const att_row x = att_index(valid ? r : 0, Lq, NH, HD4);
    const ulong qrow = (x.b * Lq + x.i) * d + x.col, kv = x.b * Lk * d + x.col;
    float4 qr[ATT_HD4_MAX], acc[ATT_HD4_MAX];
    float m, l;
    att_load(qr, q + q_off + qrow, HD4);
    att_forward_keys(qr, k + k_off + kv, v + v_off + kv, mask + mask_off + x.b * Lk,
                     bias + bias_off + (ulong)x.i * Lk, flags, scale, p, keep, seed, stream, r, valid ? Lk : 0, d,
                     s, S, &m, &l, acc, HD4);
    __local float *row = part + (ulong)get_local_id(1) * S * (HD + 2);
#pragma unroll
    for (uint c = 0; c < HD4; c++) vstore4(acc[c], c, row + s * (HD + 2));
    row[s * (HD + 2) + HD] = m;
    row[s * (HD + 2) + HD + 1] = l;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (s != 0 || !valid) return;
    float M = -INFINITY, L = 0.0f;
    for (uint t = 0; t < S; t++) M = fmax(M, row[t * (HD + 2) + HD]);
    att_zero(acc, HD4);
    for (uint t = 0; t < S; t++) {
        const float mt = row[t * (HD + 2) + HD];
        if (mt == -INFINITY) continue;
        const float w = exp(mt - M);
        L = fma(row[t * (HD + 2) + HD + 1], w, L);
#pragma unroll
        for (uint c = 0; c < HD4; c++) acc[c] = fma((float4)(w), vload4(c, row + t * (HD + 2)), acc[c]);
    }
    att_store_o(o + o_off + qrow, lse + lse_off + r, acc, M, L, HD4);
}

/* dq and delta: the parts' sums added in the order of s */
static inline __attribute__((always_inline)) void att_backward_q_split(
    __global float *dq, const ulong dq_off, __global float *delta, const ulong delta_off, __global const float *dout,
    const ulong dout_off, __global const float *o, const ulong o_off, __global const float *lse, const ulong lse_off,
    const ulong rows, const int acc, ATT_IN, __local float *part, const uint HD4) {
    const uint s = get_local_id(0), S = get_local_size(0), HD = 4 * HD4;
    const ulong r = get_global_id(1);
    const int valid = r < rows;
    const ulong rr = valid ? r : 0;
    const att_row x = att_index(rr, Lq, NH, HD4);
    const ulong qrow = (x.b * Lq + x.i) * d + x.col, kv = x.b * Lk * d + x.col;
    float4 qr[ATT_HD4_MAX], gr[ATT_HD4_MAX], dqr[ATT_HD4_MAX];
    att_load(qr, q + q_off + qrow, HD4);
    att_load(gr, dout + dout_off + qrow, HD4);
    const float D = att_dot(gr, o + o_off + qrow, HD4);
    att_q_keys(qr, gr, D, lse[lse_off + rr], k + k_off + kv, v + v_off + kv, mask + mask_off + x.b * Lk,
               bias + bias_off + (ulong)x.i * Lk, flags, scale, p, keep, seed, stream, rr, valid ? Lk : 0, d, s, S,
               dqr, HD4);
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
    att_store_grad(dq + dq_off + qrow, dqr, scale, acc, HD4);
}

/* dk and dv: the parts' sums added in the order of s */
static inline __attribute__((always_inline)) void att_backward_kv_split(
    __global float *dk, const ulong dk_off, __global float *dv, const ulong dv_off, __global const float *dout,
    const ulong dout_off, __global const float *lse, const ulong lse_off, __global const float *delta,
    const ulong delta_off, const ulong rows, const int which, const int acc, ATT_IN, __local float *part,
    const uint HD4) {
    const uint s = get_local_id(0), S = get_local_size(0), HD = 4 * HD4;
    const ulong r = get_global_id(1);
    const int valid = r < rows;
    const att_row x = att_index(valid ? r : 0, Lk, NH, HD4);
    const ulong krow = (x.b * Lk + x.i) * d + x.col, qs = x.b * Lq * d + x.col;
    float4 kr[ATT_HD4_MAX], vr[ATT_HD4_MAX], dkr[ATT_HD4_MAX], dvr[ATT_HD4_MAX];
    att_load(kr, k + k_off + krow, HD4);
    att_load(vr, v + v_off + krow, HD4);
    const int live = valid && (!(flags & ATT_MASK) || !(mask[mask_off + x.b * Lk + x.i] > 0.5f));
    att_kv_queries(kr, vr, q + q_off + qs, dout + dout_off + qs, lse + lse_off + x.bh * Lq,
                   delta + delta_off + x.bh * Lq, bias + bias_off + x.i, flags, scale, p, keep, seed, stream, x.bh,
                   x.i, live ? Lq : 0, Lk, d, s, S, dkr, dvr, HD4);
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
    att_store_kv(dk + dk_off + krow, dv + dv_off + krow, dkr, dvr, scale, which, acc, HD4);
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
