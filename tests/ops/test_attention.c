/* Fused attention: forward and backward (acc 0 and 1) against the host
 * references in double, with and without key mask, attention bias and
 * dropout, at every head width the kernels take; a fully padded image gives
 * o = 0, lse = -inf and zero gradients, no NaN; dropped weights are those of
 * nn_dropout's mask; the backward against finite differences of the
 * reference forward. */
#include "op_test.h"
#include "cldetr/detr.h"
#include "ops/reduce_util.h"

/* Bias (Lq, Lk) in [-2, 2), about one entry in five DETR_MASKED (as the
 * decoder's group mask), never a whole row. */
static ot_tensor make_bias(size_t Lq, size_t Lk, size_t off) {
    double *x = ot_randv(Lq * Lk, -2, 2);
    for (size_t i = 0; i < Lq; i++)
        for (size_t j = 0; j < Lk; j++)
            if (j != i % Lk && (i * 31 + j * 17) % 5 == 0) x[i * Lk + j] = DETR_MASKED;
    ot_tensor t = ot_from(x, Lq * Lk, off);
    free(x);
    return t;
}

enum { WITH_MASK = 1, WITH_BIAS = 2, WITH_DROPOUT = 4 };

static void describe(char *buf, size_t len, const op_attention_args *a, int with) {
    snprintf(buf, len, "(B %zu, heads %zu, Lq %zu, Lk %zu, hd %zu)%s%s%s", a->B, a->NH, a->Lq, a->Lk, a->hd,
             with & WITH_MASK ? " mask" : "", with & WITH_BIAS ? " bias" : "",
             with & WITH_DROPOUT ? " dropout" : "");
}

static void test_shape(size_t B, size_t NH, size_t Lq, size_t Lk, size_t hd, int with, size_t off) {
    op_attention_args a = {B, NH, Lq, Lk, hd, 1.0f / sqrtf((float)hd), with & WITH_DROPOUT ? 0.3f : 0.0f,
                           0x5eed0000u + off, (7ull << 20) ^ off};
    size_t d = NH * hd, nq = B * Lq * d, nk = B * Lk * d, rows = B * NH * Lq;
    char what[128], name[256];
    describe(what, sizeof what, &a, with);
    ot_tensor q = ot_rand(nq, off, -1, 1), k = ot_rand(nk, off + 1, -1, 1), v = ot_rand(nk, off + 2, -1, 1);
    ot_tensor mask = with & WITH_MASK ? ot_key_mask(B, Lk, off + 3) : ot_nan(0, 0);
    ot_tensor bias = with & WITH_BIAS ? make_bias(Lq, Lk, off + 4) : ot_nan(0, 0);
    ot_tensor o = ot_nan(nq, off + 5), lse = ot_nan(rows, off + 6), g = ot_rand(nq, off + 7, -1, 1);
    ot_tensor dq = ot_nan(nq, off + 8), dk = ot_nan(nk, off + 9), dv = ot_nan(nk, off + 10);
    ot_tensor delta = ot_nan(rows, off + 11);
    const double *mh = with & WITH_MASK ? mask.h : NULL, *bh = with & WITH_BIAS ? bias.h : NULL;
    cd_mem md = with & WITH_MASK ? mask.d : cd_none(), bd = with & WITH_BIAS ? bias.d : cd_none();

    double *r = op_zeros(nq);
    op_attention_forward(ot_dev, o.d, lse.d, q.d, k.d, v.d, md, bd, &a);
    op_attention_forward_ref(r, q.h, k.h, v.h, mh, bh, &a);
    /* o is a weighted mean of v in [-1, 1] (times 1/(1-p) with dropout): float
     * logits and exp within a few ulp, a sum of Lk terms: atol 2e-6, rtol 1e-5 */
    snprintf(name, sizeof name, "attention forward %s", what);
    ot_check(name, &o, r, 2e-6, 1e-5);
    ot_get(&lse);
    size_t bad_pad = 0, nans = 0;
    for (size_t row = 0; row < rows; row++) {
        size_t b = row / (NH * Lq), i = row % Lq, h = row / Lq % NH;
        int padded = (with & WITH_MASK) && b == 1;
        if (isnan(lse.h[row])) nans++;
        if (padded && !(lse.h[row] == -INFINITY)) bad_pad++;
        for (size_t c = 0; padded && c < hd; c++) bad_pad += o.h[(b * Lq + i) * d + h * hd + c] != 0.0;
    }
    t_ok(bad_pad == 0 && nans == 0, "attention %s: a fully padded image gives o = 0 and lse = -inf (%zu not), "
         "no NaN in lse (%zu)", what, bad_pad, nans);

    /* backward: dq, dk, dv are sums over Lk (Lq) terms of products of values in
     * [-1, 1] and weights; atol 2e-6, rtol 2e-5 */
    double *rq = op_zeros(nq), *rk = op_zeros(nk), *rv = op_zeros(nk);
    for (int acc = 0; acc < 2; acc++) {
        op_attention_backward(ot_dev, dq.d, dk.d, dv.d, delta.d, g.d, o.d, lse.d, q.d, k.d, v.d, md, bd, &a, acc,
                              acc, acc);
        op_attention_backward_ref(rq, rk, rv, g.h, q.h, k.h, v.h, mh, bh, &a, acc);
        const char *which[3] = {"dq", "dk", "dv"};
        ot_tensor *got[3] = {&dq, &dk, &dv};
        double *ref[3] = {rq, rk, rv};
        for (int t = 0; t < 3; t++) {
            snprintf(name, sizeof name, "attention backward %s acc %d %s", which[t], acc, what);
            ot_check(name, got[t], ref[t], 2e-6, 2e-5);
            memcpy(ref[t], got[t]->h, got[t]->n * sizeof *ref[t]);   /* acc 1 adds to the device's values */
        }
    }
    /* only dk: dq and dv untouched (their device values stay what acc 1 left) */
    op_attention_backward(ot_dev, cd_none(), dk.d, cd_none(), delta.d, g.d, o.d, lse.d, q.d, k.d, v.d, md, bd, &a,
                          0, 0, 0);
    op_attention_backward_ref(rq, rk, rv, g.h, q.h, k.h, v.h, mh, bh, &a, 0);
    double *keep_q = ot_copy(dq.h, nq);
    snprintf(name, sizeof name, "attention backward dk alone %s", what);
    ot_check(name, &dk, rk, 2e-6, 2e-5);
    snprintf(name, sizeof name, "attention backward dk alone leaves dq as it was %s", what);
    ot_check(name, &dq, keep_q, 0, 0);
    free(keep_q);
    free(r); free(rq); free(rk); free(rv);
    ot_free(&q); ot_free(&k); ot_free(&v); ot_free(&mask); ot_free(&bias); ot_free(&o); ot_free(&lse);
    ot_free(&g); ot_free(&dq); ot_free(&dk); ot_free(&dv); ot_free(&delta);
}

/* With p = 0.3, the output is the one the separate ops give with nn_dropout's
 * mask: the forward against the reference checks that; here, that the dropout
 * is there at all (with p close to 1 most weights drop and o shrinks). */
static void test_dropout_drops(void) {
    op_attention_args a = {1, 2, 4, 64, 16, 0.25f, 0.0f, 99, 5};
    size_t nq = a.B * a.Lq * a.NH * a.hd, nk = a.B * a.Lk * a.NH * a.hd;
    ot_tensor q = ot_rand(nq, 1, -1, 1), k = ot_rand(nk, 2, -1, 1), v = ot_rand(nk, 3, 1, 2);
    ot_tensor o = ot_nan(nq, 4), lse = ot_nan(a.B * a.NH * a.Lq, 5);
    double sum[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        a.p = t ? 0.9f : 0.0f;
        op_attention_forward(ot_dev, o.d, lse.d, q.d, k.d, v.d, cd_none(), cd_none(), &a);
        ot_get(&o);
        for (size_t x = 0; x < nq; x++) sum[t] += o.h[x];
    }
    /* v in [1, 2): o = a mean of v without dropout; with p = 0.9 each weight
     * is kept (x10) with probability 0.1: the same mean in expectation, but
     * not the same numbers */
    t_ok(fabs(sum[0] - sum[1]) > 1e-3 * fabs(sum[0]), "attention dropout p = 0.9 changes o (sum %.6f, was %.6f)",
         sum[1], sum[0]);
    ot_free(&q); ot_free(&k); ot_free(&v); ot_free(&o); ot_free(&lse);
}

/* FD of L = sum g * attention(q, k, v) through the double reference, h = 1e-5:
 * atol 1e-6, rtol 1e-4 cover the float backward (as test_softmax's). */
typedef struct { double *q, *k, *v, *mask, *bias, *g; op_attention_args a; } fd_ctx;
static double fd_loss(void *p) {
    fd_ctx *c = p;
    size_t n = c->a.B * c->a.Lq * c->a.NH * c->a.hd;
    double *o = op_zeros(n);
    op_attention_forward_ref(o, c->q, c->k, c->v, c->mask, c->bias, &c->a);
    double L = op_dot(c->g, o, n);
    free(o);
    return L;
}

static void test_fd(size_t B, size_t NH, size_t Lq, size_t Lk, size_t hd, int with) {
    op_attention_args a = {B, NH, Lq, Lk, hd, 0.4f, with & WITH_DROPOUT ? 0.25f : 0.0f, 3, 11};
    size_t nq = B * Lq * NH * hd, nk = B * Lk * NH * hd, rows = B * NH * Lq;
    ot_tensor q = ot_rand(nq, 1, -2, 2), k = ot_rand(nk, 2, -2, 2), v = ot_rand(nk, 3, -1, 1);
    ot_tensor mask = with & WITH_MASK ? ot_key_mask(B, Lk, 4) : ot_nan(0, 0);
    ot_tensor bias = with & WITH_BIAS ? make_bias(Lq, Lk, 5) : ot_nan(0, 0);
    ot_tensor g = ot_rand(nq, 6, -1, 1), o = ot_nan(nq, 7), lse = ot_nan(rows, 8), delta = ot_nan(rows, 9);
    ot_tensor dq = ot_nan(nq, 10), dk = ot_nan(nk, 11), dv = ot_nan(nk, 12);
    cd_mem md = with & WITH_MASK ? mask.d : cd_none(), bd = with & WITH_BIAS ? bias.d : cd_none();
    op_attention_forward(ot_dev, o.d, lse.d, q.d, k.d, v.d, md, bd, &a);
    op_attention_backward(ot_dev, dq.d, dk.d, dv.d, delta.d, g.d, o.d, lse.d, q.d, k.d, v.d, md, bd, &a, 0, 0, 0);
    fd_ctx c = {q.h, k.h, v.h, with & WITH_MASK ? mask.h : NULL, with & WITH_BIAS ? bias.h : NULL, g.h, a};
    ot_tensor *got[3] = {&dq, &dk, &dv};
    double *x[3] = {q.h, k.h, v.h};
    const char *which[3] = {"dq", "dk", "dv"};
    char what[128], name[256];
    describe(what, sizeof what, &a, with);
    for (int t = 0; t < 3; t++) {
        double *fd = op_zeros(got[t]->n);
        op_fd_grad(fd, x[t], got[t]->n, 1e-5, fd_loss, &c);
        snprintf(name, sizeof name, "attention backward %s vs finite differences %s", which[t], what);
        ot_check(name, got[t], fd, 1e-6, 1e-4);
        free(fd);
    }
    ot_free(&q); ot_free(&k); ot_free(&v); ot_free(&mask); ot_free(&bias); ot_free(&g); ot_free(&o);
    ot_free(&lse); ot_free(&delta); ot_free(&dq); ot_free(&dk); ot_free(&dv);
}

/* The split kernels with S = 1 give the row kernels' bits (forward and the
 * three gradients): the merge of one part is exact. */
static void test_split_one_bits(void) {
    op_attention_args a = {2, 3, 9, 13, 32, 0.2f, 0.25f, 41, 43};
    size_t nq = a.B * a.Lq * a.NH * a.hd, nk = a.B * a.Lk * a.NH * a.hd, rows = a.B * a.NH * a.Lq;
    ot_tensor q = ot_rand(nq, 1, -1, 1), k = ot_rand(nk, 2, -1, 1), v = ot_rand(nk, 3, -1, 1);
    ot_tensor g = ot_rand(nq, 4, -1, 1), mask = ot_key_mask(a.B, a.Lk, 5), bias = make_bias(a.Lq, a.Lk, 6);
    ot_tensor out[2][4];
    int old_rows = ops_set_row_kernels(1), old_split = op_attention_set_split(1);
    for (int t = 0; t < 2; t++) {      /* 0: row kernels, 1: split kernels with S = 1 */
        ops_set_row_kernels(!t);
        ot_tensor lse = ot_nan(rows, 7), delta = ot_nan(rows, 8);
        out[t][0] = ot_nan(nq, 9); out[t][1] = ot_nan(nq, 10); out[t][2] = ot_nan(nk, 11); out[t][3] = ot_nan(nk, 12);
        op_attention_forward(ot_dev, out[t][0].d, lse.d, q.d, k.d, v.d, mask.d, bias.d, &a);
        op_attention_backward(ot_dev, out[t][1].d, out[t][2].d, out[t][3].d, delta.d, g.d, out[t][0].d, lse.d, q.d,
                              k.d, v.d, mask.d, bias.d, &a, 0, 0, 0);
        for (int x = 0; x < 4; x++) ot_get(&out[t][x]);
        ot_free(&lse); ot_free(&delta);
    }
    const char *what[4] = {"o", "dq", "dk", "dv"};
    for (int x = 0; x < 4; x++) {
        char name[128];
        snprintf(name, sizeof name, "attention split kernels with S = 1: %s bit for bit the row kernels'", what[x]);
        ot_close(name, out[0][x].h, out[1][x].h, out[0][x].n, 0, 0);
        ot_free(&out[0][x]); ot_free(&out[1][x]);
    }
    ops_set_row_kernels(old_rows);
    op_attention_set_split(old_split);
    ot_free(&q); ot_free(&k); ot_free(&v); ot_free(&g); ot_free(&mask); ot_free(&bias);
}

int main(void) {
    ot_open();
    t_seed(1207);
    t_ok(op_attention_fused_ok(8) && op_attention_fused_ok(16) && op_attention_fused_ok(32) &&
         op_attention_fused_ok(64) && !op_attention_fused_ok(4) && !op_attention_fused_ok(48) &&
         !op_attention_fused_ok(128), "fused attention takes head widths 8, 16, 32 and 64 only");
    /* B, heads, Lq, Lk, hd: one key; DETR's encoder and decoder shapes in small;
     * more keys than a work-group; the widest head */
    static const size_t shapes[][5] = {{1, 1, 1, 1, 16}, {3, 2, 5, 7, 16},  {2, 4, 16, 16, 32},
                                       {2, 4, 10, 16, 32}, {2, 8, 20, 20, 32}, {3, 1, 3, 300, 32},
                                       {2, 2, 7, 9, 64}, {2, 4, 6, 12, 8}};
    /* both kernel shapes on every device: a work-item per row (CPUs), rows
     * split over S work-items (GPUs; S by the rule, then forced to 1, 3, 8:
     * all features, and none) */
    static const int modes[][2] = {{1, 0}, {0, 0}, {0, 1}, {0, 3}, {0, 8}};   /* row kernels, S */
    size_t off = 1;
    for (size_t md = 0; md < CD_ARRAY_LEN(modes); md++) {
        int old_rows = ops_set_row_kernels(modes[md][0]), old_split = op_attention_set_split(modes[md][1]);
        t_diag("attention kernels: %s, S %s", modes[md][0] ? "a work-item per row" : "rows split",
               modes[md][0] ? "-" : modes[md][1] ? (modes[md][1] == 1 ? "1" : modes[md][1] == 3 ? "3" : "8")
                                                 : "by the rule");
        for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++)
            for (int with = 0; with < 8; with++, off += 13)
                if (md < 2 || with == 0 || with == 7)
                    test_shape(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], with, off % 61);
        ops_set_row_kernels(old_rows);
        op_attention_set_split(old_split);
    }
    test_split_one_bits();
    test_dropout_drops();
    test_fd(3, 2, 3, 5, 16, WITH_MASK | WITH_BIAS);
    test_fd(2, 1, 4, 6, 16, WITH_MASK | WITH_DROPOUT);
    test_fd(1, 2, 2, 3, 32, 0);
    test_fd(2, 3, 3, 4, 8, WITH_BIAS | WITH_DROPOUT);
    ot_cases("attention");
    return ot_finish();
}
