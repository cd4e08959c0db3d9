/* Self-checks of element-wise, dropout, reduction, softmax, layer norm and
 * permute ops for `cldetr selftest`: one case of each op
 * (forward and backward) on the device against its host reference, at odd sizes
 * and nonzero offsets. The thorough checks (finite differences, acc, edge
 * sizes) are tests/ops/test_<op>.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/ops.h"
#include "cldetr/selftest.h"
#include "ops/op_ref.h"

#define ST_OFF 3            /* every tensor starts at this float offset in its buffer */

static uint64_t st_rng = 0x853C49E6748FEA9BULL;
static double st_rand(void) {
    st_rng ^= st_rng << 13; st_rng ^= st_rng >> 7; st_rng ^= st_rng << 17;
    return (double)(st_rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;   /* [-1, 1) */
}

/* A host tensor (double) and its device copy (float, at offset ST_OFF). */
typedef struct { double *h; cd_mem d; size_t n; } st_tensor;

static st_tensor st_new(cd_device *dev, size_t n, double lo, double hi) {
    st_tensor t = {cd_xcalloc(n ? n : 1, sizeof(double)), {NULL, 0}, n};
    float *f = cd_xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) { f[i] = (float)(lo + (hi - lo) * 0.5 * (st_rand() + 1.0)); t.h[i] = f[i]; }
    t.d = cd_at(cd_alloc(dev, n + ST_OFF, "selftest tensor"), ST_OFF);
    cd_write(dev, t.d, f, n);
    free(f);
    return t;
}

static void st_free(cd_device *dev, st_tensor *t) { cd_free(dev, t->d); free(t->h); }

/* Device tensor vs host reference: |d - r| <= atol + rtol |r| everywhere. */
static int st_cmp(cd_device *dev, const char *what, const st_tensor *t, const double *ref, double atol, double rtol,
                  char *msg, size_t msg_len) {
    float *f = cd_xmalloc((t->n ? t->n : 1) * sizeof(float));
    cd_read(dev, f, t->d, t->n);
    int bad = 0;
    for (size_t i = 0; i < t->n && !bad; i++)
        if (!(fabs(f[i] - ref[i]) <= atol + rtol * fabs(ref[i]))) {
            snprintf(msg, msg_len, "%s[%zu] = %.7g, reference %.7g", what, i, f[i], ref[i]);
            bad = 1;
        }
    free(f);
    return bad ? -1 : 0;
}

static int st_elementwise(cd_device *dev, char *msg, size_t len) {
    size_t n = 1001;
    st_tensor x = st_new(dev, n, -3, 3), g = st_new(dev, n, -1, 1), y = st_new(dev, n, -1, 1), o = st_new(dev, n, 0, 0);
    double *r = cd_xmalloc(n * sizeof *r), *r2 = cd_xmalloc(n * sizeof *r2);
    int rc = 0;
    op_add(dev, o.d, x.d, g.d, n);
    op_add_ref(r, x.h, g.h, n);
    rc |= st_cmp(dev, "add", &o, r, 1e-6, 1e-6, msg, len);
    op_relu_forward(dev, o.d, x.d, n);
    op_relu_forward_ref(r, x.h, n);
    if (!rc) rc |= st_cmp(dev, "relu", &o, r, 0, 0, msg, len);
    op_relu_backward(dev, y.d, g.d, o.d, n, 1);
    op_relu_backward_ref(y.h, g.h, r, n, 1);
    if (!rc) rc |= st_cmp(dev, "relu backward", &y, y.h, 1e-6, 1e-6, msg, len);
    op_sigmoid_forward(dev, o.d, x.d, n);
    op_sigmoid_forward_ref(r, x.h, n);
    if (!rc) rc |= st_cmp(dev, "sigmoid", &o, r, 1e-6, 1e-5, msg, len);
    op_sigmoid_backward(dev, y.d, g.d, o.d, n, 0);
    op_sigmoid_backward_ref(r2, g.h, r, n, 0);
    if (!rc) rc |= st_cmp(dev, "sigmoid backward", &y, r2, 1e-6, 1e-5, msg, len);
    if (!rc) snprintf(msg, len, "add, relu, sigmoid forward/backward, n=%zu", n);
    free(r); free(r2);
    st_free(dev, &x); st_free(dev, &g); st_free(dev, &y); st_free(dev, &o);
    return rc;
}

static int st_channels(cd_device *dev, char *msg, size_t len) {
    size_t B = 2, C = 7, HW = 33, n = B * C * HW;
    st_tensor x = st_new(dev, n, -1, 1), g = st_new(dev, n, -1, 1), o = st_new(dev, n, 0, 0);
    st_tensor s = st_new(dev, C, -1, 1), ds = st_new(dev, C, -1, 1);
    double *r = cd_xmalloc(n * sizeof *r);
    op_mul_channels_forward(dev, o.d, x.d, s.d, B, C, HW);
    op_mul_channels_forward_ref(r, x.h, s.h, B, C, HW);
    int rc = st_cmp(dev, "mul_channels", &o, r, 1e-6, 1e-6, msg, len);
    op_mul_channels_backward(dev, o.d, ds.d, g.d, x.d, s.d, B, C, HW, 0);
    op_mul_channels_backward_ref(r, ds.h, g.h, x.h, s.h, B, C, HW, 0);
    if (!rc) rc |= st_cmp(dev, "mul_channels dx", &o, r, 1e-6, 1e-6, msg, len);
    if (!rc) rc |= st_cmp(dev, "mul_channels dscale", &ds, ds.h, 1e-5, 1e-5, msg, len);
    op_add_channels_backward(dev, cd_none(), ds.d, g.d, B, C, HW, 0);
    op_add_channels_backward_ref(NULL, ds.h, g.h, B, C, HW, 0);
    if (!rc) rc |= st_cmp(dev, "add_channels dbias", &ds, ds.h, 1e-5, 1e-5, msg, len);
    if (!rc) snprintf(msg, len, "mul/add_channels forward/backward (%zu,%zu,%zu)", B, C, HW);
    free(r);
    st_free(dev, &x); st_free(dev, &g); st_free(dev, &o); st_free(dev, &s); st_free(dev, &ds);
    return rc;
}

static int st_dropout(cd_device *dev, char *msg, size_t len) {
    size_t n = 777;
    uint64_t seed = 0x123456789ABCDEFULL, stream = 42;
    st_tensor x = st_new(dev, n, -1, 1), o = st_new(dev, n, 0, 0);
    double *r = cd_xmalloc(n * sizeof *r);
    op_dropout_forward(dev, o.d, x.d, n, 0.3f, seed, stream);
    op_dropout_forward_ref(r, x.h, n, 0.3f, seed, stream);
    int rc = st_cmp(dev, "dropout", &o, r, 0, 1e-6, msg, len);
    if (!rc) snprintf(msg, len, "Philox mask identical to the host's, n=%zu p=0.3", n);
    free(r);
    st_free(dev, &x); st_free(dev, &o);
    return rc;
}

static int st_reduce(cd_device *dev, char *msg, size_t len) {
    size_t O = 3, R = 257, I = 5, n = 100003;
    st_tensor x = st_new(dev, O * R * I, -1, 1), o = st_new(dev, O * I, -1, 1);
    st_tensor big = st_new(dev, n, -1, 1), s = st_new(dev, 1, 0, 0);
    op_reduce_sum(dev, o.d, x.d, O, R, I, 0.5f, 1);
    op_reduce_sum_ref(o.h, x.h, O, R, I, 0.5, 1);
    int rc = st_cmp(dev, "reduce_sum", &o, o.h, 1e-4, 1e-5, msg, len);
    op_sumsq(dev, s.d, big.d, n);
    double ss = op_sumsq_ref(big.h, n);
    if (!rc) rc |= st_cmp(dev, "sumsq", &s, &ss, 0, 1e-5, msg, len);
    if (!rc) snprintf(msg, len, "reduce_sum (%zu,%zu,%zu) acc, sumsq n=%zu", O, R, I, n);
    st_free(dev, &x); st_free(dev, &o); st_free(dev, &big); st_free(dev, &s);
    return rc;
}

static int st_softmax(cd_device *dev, char *msg, size_t len) {
    size_t B = 2, H = 3, Lq = 5, Lk = 37, n = B * H * Lq * Lk;
    st_tensor x = st_new(dev, n, -4, 4), g = st_new(dev, n, -1, 1), o = st_new(dev, n, 0, 0);
    st_tensor m = st_new(dev, B * Lk, 0, 0);
    for (size_t k = 0; k < B * Lk; k++) m.h[k] = (k % Lk) >= (k < Lk ? 30u : 11u);   /* padded tails */
    float mf[2 * 37];
    for (size_t k = 0; k < B * Lk; k++) mf[k] = (float)m.h[k];
    cd_write(dev, m.d, mf, B * Lk);
    double *r = cd_xmalloc(n * sizeof *r), *dr = cd_xmalloc(n * sizeof *dr);
    float scale = 0.35f;
    op_softmax_forward(dev, o.d, x.d, m.d, B, H, Lq, Lk, scale);
    op_softmax_forward_ref(r, x.h, m.h, B, H, Lq, Lk, scale);
    int rc = st_cmp(dev, "softmax", &o, r, 1e-7, 1e-5, msg, len);
    op_softmax_backward(dev, x.d, g.d, o.d, B, H, Lq, Lk, scale, 0);
    op_softmax_backward_ref(dr, g.h, r, B, H, Lq, Lk, scale, 0);
    if (!rc) rc |= st_cmp(dev, "softmax backward", &x, dr, 1e-6, 1e-4, msg, len);
    if (!rc) snprintf(msg, len, "masked softmax forward/backward (%zu,%zu,%zu,%zu)", B, H, Lq, Lk);
    free(r); free(dr);
    st_free(dev, &x); st_free(dev, &g); st_free(dev, &o); st_free(dev, &m);
    return rc;
}

static int st_layernorm(cd_device *dev, char *msg, size_t len) {
    size_t N = 9, C = 129;
    st_tensor x = st_new(dev, N * C, -2, 3), g = st_new(dev, N * C, -1, 1), o = st_new(dev, N * C, 0, 0);
    st_tensor w = st_new(dev, C, 0.5, 1.5), b = st_new(dev, C, -1, 1), mu = st_new(dev, N, 0, 0),
              rs = st_new(dev, N, 0, 0), dw = st_new(dev, C, -1, 1), db = st_new(dev, C, -1, 1);
    double *r = cd_xmalloc(N * C * sizeof *r);
    op_layernorm_forward(dev, o.d, mu.d, rs.d, x.d, w.d, b.d, N, C, 1e-5f);
    op_layernorm_forward_ref(r, mu.h, rs.h, x.h, w.h, b.h, N, C, 1e-5);
    int rc = st_cmp(dev, "layernorm", &o, r, 1e-5, 1e-5, msg, len);
    if (!rc) rc |= st_cmp(dev, "layernorm rstd", &rs, rs.h, 0, 1e-5, msg, len);
    op_layernorm_backward(dev, o.d, dw.d, db.d, g.d, x.d, mu.d, rs.d, w.d, N, C, 0);
    op_layernorm_backward_ref(r, dw.h, db.h, g.h, x.h, mu.h, rs.h, w.h, N, C, 0);
    if (!rc) rc |= st_cmp(dev, "layernorm dx", &o, r, 1e-5, 1e-4, msg, len);
    if (!rc) rc |= st_cmp(dev, "layernorm dw", &dw, dw.h, 1e-5, 1e-4, msg, len);
    if (!rc) rc |= st_cmp(dev, "layernorm db", &db, db.h, 1e-5, 1e-4, msg, len);
    if (!rc) snprintf(msg, len, "layer norm forward/backward (%zu,%zu)", N, C);
    free(r);
    st_free(dev, &x); st_free(dev, &g); st_free(dev, &o); st_free(dev, &w); st_free(dev, &b);
    st_free(dev, &mu); st_free(dev, &rs); st_free(dev, &dw); st_free(dev, &db);
    return rc;
}

static int st_permute(cd_device *dev, char *msg, size_t len) {
    size_t dims[4] = {7, 2, 3, 5}, n = 7 * 2 * 3 * 5;
    int perm[4] = {1, 2, 0, 3};                         /* (L, B, NH, hd) -> (B, NH, L, hd) */
    st_tensor x = st_new(dev, n, -1, 1), o = st_new(dev, n, -1, 1);
    op_permute(dev, o.d, x.d, dims, perm, 1);
    op_permute_ref(o.h, x.h, dims, perm, 1);
    int rc = st_cmp(dev, "permute", &o, o.h, 1e-6, 1e-6, msg, len);
    if (!rc) snprintf(msg, len, "permute (7,2,3,5) by {1,2,0,3}, acc");
    st_free(dev, &x); st_free(dev, &o);
    return rc;
}

const cd_selftest cd_selftests_ops[] = {
    {"ops element-wise", st_elementwise},
    {"ops channel bias/scale", st_channels},
    {"ops dropout", st_dropout},
    {"ops reductions", st_reduce},
    {"ops masked softmax", st_softmax},
    {"ops layer norm", st_layernorm},
    {"ops permute", st_permute},
    {NULL, NULL},
};
