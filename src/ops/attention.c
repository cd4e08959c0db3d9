/* Fused attention (cl/attention.cl): softmax(scale * (q k^T + bias), key
 * mask), the dropout of the weights and the product with v in one launch
 * forward and two backward, the weights recomputed from each row's saved
 * log-sum-exp, never stored. The same function as the separate ops that
 * nn_heads_scores, nn_softmax, nn_dropout and nn_heads_mix chain (same
 * dropout mask), to rounding. Plain C references at the end. */
#include <math.h>
#include <stdio.h>

#include "cldetr/ops.h"
#include "ops/op_ref.h"
#include "ops/reduce_util.h"

enum { ATT_MASK = 1, ATT_BIAS = 2, ATT_DROPOUT = 4 };   /* as in cl/attention.cl */

int op_attention_fused_ok(size_t hd) { return hd == 8 || hd == 16 || hd == 32 || hd == 64; }

static void check_args(const op_attention_args *a) {
    if (!op_attention_fused_ok(a->hd))
        cd_fatal("fused attention: head width %zu has no kernel (8, 16, 32 or 64; a bug in the caller, which "
                 "should have taken the separate ops)", a->hd);
    if (!(a->p >= 0.0f && a->p < 1.0f))
        cd_fatal("fused attention: dropout probability %g is outside [0, 1) (a bug in the caller)", a->p);
    if (a->NH * a->Lq > 0xffffffffu || a->Lk > 0xffffffffu || a->NH * a->hd > 0xffffffffu)
        cd_fatal("fused attention: %zu heads x %zu queries x %zu keys is beyond the kernels' 32-bit sizes",
                 a->NH, a->Lq, a->Lk);
}

/* name of kernel `base` for the head width, e.g. attention_forward_hd32 */
static const char *kname(char *buf, size_t len, const char *base, size_t hd) {
    snprintf(buf, len, "%s_hd%zu", base, hd);
    return buf;
}

/* the inputs every kernel takes (ATT_IN in cl/attention.cl), 20 arguments */
#define ATT_IN_ARGS(q, k, v, mask, bias, a)                                                                       \
    KM(q), KM(k), KM(v), KM(cd_has(mask) ? (mask) : (q)), KM(cd_has(bias) ? (bias) : (q)),                        \
        KI((cd_has(mask) ? ATT_MASK : 0) | (cd_has(bias) ? ATT_BIAS : 0) | ((a)->p > 0.0f ? ATT_DROPOUT : 0)),   \
        KU((a)->NH), KU((a)->Lq), KU((a)->Lk), KU((a)->NH * (a)->hd), KF((a)->scale), KF((a)->p),                 \
        KF(1.0f / (1.0f - (a)->p)), KUL((a)->seed), KUL((a)->stream)

/* ---- GPUs: the split kernels ---- */

static int split_force;     /* op_attention_set_split */

int op_attention_set_split(int S) {
    int old = split_force;
    split_force = S;
    return old;
}

/* The (S, R) work-group of a split kernel over `rows` rows of `len` keys (or
 * queries): S work-items share a row, enough to give each compute unit about
 * 1024 work-items (a short batch of long rows otherwise leaves a GPU mostly
 * idle), at most 8 and at most len; R = 64 / S rows, within the kernel's
 * work-group limit and 16 KB of local memory for the S * R partial results of
 * `slot` floats each (half of OpenCL's least local memory). Returns the
 * launch's global and local sizes. */
#define SPLIT_LOCAL_BYTES 16384
static void split_shape(cd_device *dev, const char *name, size_t rows, size_t len, size_t slot, size_t global[2],
                        size_t local[2]) {
    size_t S = split_force > 0 ? (size_t)split_force : 0;
    if (!S) {
        size_t target = 1024 * CD_MAX((size_t)dev->info.compute_units, (size_t)1);
        S = CD_MIN(CD_MIN((target + rows - 1) / rows, (size_t)8), CD_MAX(len, (size_t)1));
    }
    size_t limit = cd_kernel_wg_size(dev, name);
    S = CD_MAX(CD_MIN(S, limit), (size_t)1);
    size_t R = CD_MAX((size_t)64 / S, (size_t)1);
    while (R > 1 && (S * R > limit || S * R * slot * sizeof(float) > SPLIT_LOCAL_BYTES)) R /= 2;
    local[0] = S;
    local[1] = R;
    global[0] = S;
    global[1] = (rows + R - 1) / R * R;
}

void op_attention_forward(cd_device *dev, cd_mem o, cd_mem lse, cd_mem q, cd_mem k, cd_mem v, cd_mem mask,
                          cd_mem bias, const op_attention_args *a) {
    check_args(a);
    size_t rows = a->B * a->NH * a->Lq;
    if (rows == 0) return;
    char name[64];
    if (ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, kname(name, sizeof name, "attention_forward", a->hd), rows, KM(o), KM(lse), KUL(rows),
                   ATT_IN_ARGS(q, k, v, mask, bias, a));
        return;
    }
    size_t g[2], l[2];
    kname(name, sizeof name, "attention_forward_split", a->hd);
    split_shape(dev, name, rows, a->Lk, a->hd + 2, g, l);
    CD_LAUNCH_WG(dev, name, 2, g, l, KM(o), KM(lse), KUL(rows), ATT_IN_ARGS(q, k, v, mask, bias, a),
                 KLOCAL(l[0] * l[1] * (a->hd + 2) * sizeof(float)));
}

void op_attention_backward(cd_device *dev, cd_mem dq, cd_mem dk, cd_mem dv, cd_mem delta, cd_mem dout, cd_mem o,
                           cd_mem lse, cd_mem q, cd_mem k, cd_mem v, cd_mem mask, cd_mem bias,
                           const op_attention_args *a, int acc_q, int acc_k, int acc_v) {
    check_args(a);
    size_t qrows = a->B * a->NH * a->Lq, krows = a->B * a->NH * a->Lk;
    if (qrows == 0 || krows == 0) return;
    char name[64];
    int rowk = ops_row_kernels(dev);
    size_t g[2], l[2];
    /* delta is always written (the key kernel reads it); acc -1: dq is not */
    kname(name, sizeof name, rowk ? "attention_backward_q" : "attention_backward_q_split", a->hd);
    if (rowk) {
        CD_LAUNCH1(dev, name, qrows, KM(cd_has(dq) ? dq : delta), KM(delta), KM(dout), KM(o), KM(lse), KUL(qrows),
                   KI(cd_has(dq) ? !!acc_q : -1), ATT_IN_ARGS(q, k, v, mask, bias, a));
    } else {
        split_shape(dev, name, qrows, a->Lk, a->hd, g, l);
        CD_LAUNCH_WG(dev, name, 2, g, l, KM(cd_has(dq) ? dq : delta), KM(delta), KM(dout), KM(o), KM(lse),
                     KUL(qrows), KI(cd_has(dq) ? !!acc_q : -1), ATT_IN_ARGS(q, k, v, mask, bias, a),
                     KLOCAL(l[0] * l[1] * a->hd * sizeof(float)));
    }
    int which = (cd_has(dk) ? 1 : 0) | (cd_has(dv) ? 2 : 0), acc = (acc_k ? 1 : 0) | (acc_v ? 2 : 0);
    if (!which) return;
    cd_mem dk_or = cd_has(dk) ? dk : dv, dv_or = cd_has(dv) ? dv : dk;
    kname(name, sizeof name, rowk ? "attention_backward_kv" : "attention_backward_kv_split", a->hd);
    if (rowk) {
        CD_LAUNCH1(dev, name, krows, KM(dk_or), KM(dv_or), KM(dout), KM(lse), KM(delta), KUL(krows), KI(which),
                   KI(acc), ATT_IN_ARGS(q, k, v, mask, bias, a));
        return;
    }
    split_shape(dev, name, krows, a->Lq, 2 * a->hd, g, l);
    CD_LAUNCH_WG(dev, name, 2, g, l, KM(dk_or), KM(dv_or), KM(dout), KM(lse), KM(delta), KUL(krows), KI(which),
                 KI(acc), ATT_IN_ARGS(q, k, v, mask, bias, a), KLOCAL(l[0] * l[1] * 2 * a->hd * sizeof(float)));
}

/* ---- host references ---------------------------------------------------- */

/* weight j's dropout factor for row r: 0 or 1/(1-p) (1 without dropout) */
static double keep_ref(const op_attention_args *a, size_t r, size_t j) {
    if (a->p <= 0.0f) return 1.0;
    return op_dropout_uniform_ref(a->seed, a->stream, (uint64_t)(r * a->Lk + j)) >= a->p ? 1.0 / (1.0 - a->p) : 0.0;
}

/* The weights of query row r = (b*NH + h)*Lq + i, in double, as the separate
 * ops compute them: P (Lk) = softmax over the valid keys (all 0 when none). */
static void weights_ref(double *P, const double *q, const double *k, const double *mask, const double *bias,
                        const op_attention_args *a, size_t r) {
    size_t d = a->NH * a->hd, i = r % a->Lq, h = r / a->Lq % a->NH, b = r / a->Lq / a->NH;
    const double *qi = q + (b * a->Lq + i) * d + h * a->hd;
    double mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < a->Lk; j++) {
        P[j] = -INFINITY;
        if (mask && mask[b * a->Lk + j] > 0.5) continue;
        const double *kj = k + (b * a->Lk + j) * d + h * a->hd;
        double s = 0;
        for (size_t c = 0; c < a->hd; c++) s += qi[c] * kj[c];
        P[j] = a->scale * (s + (bias ? bias[i * a->Lk + j] : 0.0));
        mx = fmax(mx, P[j]);
    }
    for (size_t j = 0; j < a->Lk; j++) {
        P[j] = P[j] == -INFINITY ? 0.0 : exp(P[j] - mx);
        sum += P[j];
    }
    for (size_t j = 0; j < a->Lk; j++) P[j] = sum > 0 ? P[j] / sum : 0.0;
}

void op_attention_forward_ref(double *o, const double *q, const double *k, const double *v, const double *mask,
                              const double *bias, const op_attention_args *a) {
    size_t d = a->NH * a->hd;
    double *P = cd_xmalloc((a->Lk + 1) * sizeof *P);
    for (size_t r = 0; r < a->B * a->NH * a->Lq; r++) {
        size_t i = r % a->Lq, h = r / a->Lq % a->NH, b = r / a->Lq / a->NH;
        weights_ref(P, q, k, mask, bias, a, r);
        double *oi = o + (b * a->Lq + i) * d + h * a->hd;
        for (size_t c = 0; c < a->hd; c++) oi[c] = 0;
        for (size_t j = 0; j < a->Lk; j++) {
            double w = P[j] * keep_ref(a, r, j);
            const double *vj = v + (b * a->Lk + j) * d + h * a->hd;
            for (size_t c = 0; c < a->hd; c++) oi[c] += w * vj[c];
        }
    }
    free(P);
}

void op_attention_backward_ref(double *dq, double *dk, double *dv, const double *dout, const double *q,
                               const double *k, const double *v, const double *mask, const double *bias,
                               const op_attention_args *a, int acc) {
    size_t d = a->NH * a->hd, nq = a->B * a->Lq * d, nk = a->B * a->Lk * d;
    if (!acc) {
        for (size_t x = 0; x < nq; x++) dq[x] = 0;
        for (size_t x = 0; x < nk; x++) dk[x] = dv[x] = 0;
    }
    double *P = cd_xmalloc((a->Lk + 1) * sizeof *P), *dP = cd_xmalloc((a->Lk + 1) * sizeof *dP);
    for (size_t r = 0; r < a->B * a->NH * a->Lq; r++) {
        size_t i = r % a->Lq, h = r / a->Lq % a->NH, b = r / a->Lq / a->NH, col = h * a->hd;
        weights_ref(P, q, k, mask, bias, a, r);
        const double *gi = dout + (b * a->Lq + i) * d + col, *qi = q + (b * a->Lq + i) * d + col;
        double D = 0;
        for (size_t j = 0; j < a->Lk; j++) {
            const double *vj = v + (b * a->Lk + j) * d + col;
            double g = 0, keep = keep_ref(a, r, j);
            for (size_t c = 0; c < a->hd; c++) g += gi[c] * vj[c];
            dP[j] = keep * g;
            D += P[j] * dP[j];
            double *dvj = dv + (b * a->Lk + j) * d + col;
            for (size_t c = 0; c < a->hd; c++) dvj[c] += keep * P[j] * gi[c];
        }
        for (size_t j = 0; j < a->Lk; j++) {
            double dS = a->scale * P[j] * (dP[j] - D);
            const double *kj = k + (b * a->Lk + j) * d + col;
            double *dqi = dq + (b * a->Lq + i) * d + col, *dkj = dk + (b * a->Lk + j) * d + col;
            for (size_t c = 0; c < a->hd; c++) {
                dqi[c] += dS * kj[c];
                dkj[c] += dS * qi[c];
            }
        }
    }
    free(P);
    free(dP);
}
