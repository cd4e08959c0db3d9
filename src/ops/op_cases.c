/* The one table of op cases (cd_op_cases, cldetr/selftest.h): each case runs an
 * op forward and backward on the device, at an odd shape and nonzero offsets,
 * and compares every output with the host reference of src/ops/op_ref.h.
 * `cldetr selftest` runs the whole table; tests/ops/test_<op>.c runs the cases
 * of its op next to its thorough checks (finite differences, acc, edge sizes);
 * bench/ times the ops at the shapes of the table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/ops.h"
#include "cldetr/selftest.h"
#include "ops/op_check.h"
#include "ops/op_ref.h"

#define OFF 3                   /* every tensor sits this many floats after its guard */
#define SEED 0x853C49E6748FEA9BULL

/* A case's host arrays and device copies, released in one call. */
typedef struct { cd_device *dev; cd_mem m[16]; int n; void *h[32]; int nh; } uploads;
static cd_mem up(uploads *u, const double *h, size_t n) {
    if (u->n == (int)CD_ARRAY_LEN(u->m)) cd_fatal("op case: more than %zu device tensors", CD_ARRAY_LEN(u->m));
    cd_mem m = op_upload(u->dev, h, n, OFF);
    u->m[u->n++] = m;
    return m;
}
static void *keep(uploads *u, void *p) {
    if (u->nh == (int)CD_ARRAY_LEN(u->h)) cd_fatal("op case: more than %zu host arrays", CD_ARRAY_LEN(u->h));
    u->h[u->nh++] = p;
    return p;
}
static double *u_rand(uploads *u, uint64_t *rng, size_t n, double lo, double hi) {
    return keep(u, op_rand(rng, n, lo, hi));
}
static double *u_zeros(uploads *u, size_t n) { return keep(u, op_zeros(n)); }
static void release_all(uploads *u) {
    for (int i = 0; i < u->n; i++) op_release(u->dev, u->m[i]);
    for (int i = 0; i < u->nh; i++) free(u->h[i]);
}

/* Run checks in order until one fails: CHECK(...) is op_check_device with dev, msg, len. */
#define CHECK(what, m, ref, n, atol, rtol) \
    (rc = rc ? rc : op_check_device(u.dev, what, m, ref, n, atol, rtol, msg, len))

/* d = {n} */
static int run_elementwise(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t n = t->d[0];
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -3, 3), *g = u_rand(&u, &rng, n, -1, 1), *r = u_zeros(&u, n), *r2 = u_zeros(&u, n);
    cd_mem mx = up(&u, x, n), mg = up(&u, g, n), my = up(&u, NULL, n), mo = up(&u, NULL, n);
    int rc = 0;
    op_add(dev, mo, mx, mg, n);
    op_add_ref(r, x, g, n);
    CHECK("add", mo, r, n, 1e-6, 1e-6);
    op_relu_forward(dev, mo, mx, n);
    op_relu_forward_ref(r, x, n);
    CHECK("relu", mo, r, n, 0, 0);
    op_relu_backward(dev, my, mg, mo, n, 0);
    op_relu_backward_ref(r2, g, r, n, 0);
    CHECK("relu backward", my, r2, n, 1e-6, 1e-6);
    op_sigmoid_forward(dev, mo, mx, n);
    op_sigmoid_forward_ref(r, x, n);
    CHECK("sigmoid", mo, r, n, 1e-6, 1e-5);
    op_sigmoid_backward(dev, my, mg, mo, n, 1);
    op_sigmoid_backward_ref(r2, g, r, n, 1);
    CHECK("sigmoid backward acc", my, r2, n, 1e-6, 1e-5);
    if (!rc) snprintf(msg, len, "add, relu, sigmoid forward/backward, n=%zu", n);
    release_all(&u);
    return rc;
}

/* d = {B, C, HW} */
static int run_channels(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], C = t->d[1], HW = t->d[2], n = B * C * HW;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -1, 1), *g = u_rand(&u, &rng, n, -1, 1), *s = u_rand(&u, &rng, C, -1, 1);
    double *ds = u_rand(&u, &rng, C, -1, 1), *r = u_zeros(&u, n);
    cd_mem mx = up(&u, x, n), mg = up(&u, g, n), mo = up(&u, NULL, n), ms = up(&u, s, C), mds = up(&u, ds, C);
    int rc = 0;
    op_mul_channels_forward(dev, mo, mx, ms, B, C, HW);
    op_mul_channels_forward_ref(r, x, s, B, C, HW);
    CHECK("mul_channels", mo, r, n, 1e-6, 1e-6);
    op_mul_channels_backward(dev, mo, mds, mg, mx, ms, B, C, HW, 0);
    op_mul_channels_backward_ref(r, ds, g, x, s, B, C, HW, 0);
    CHECK("mul_channels dx", mo, r, n, 1e-6, 1e-6);
    CHECK("mul_channels dscale", mds, ds, C, 1e-5, 1e-5);
    op_add_channels_backward(dev, cd_none(), mds, mg, B, C, HW, 0);
    op_add_channels_backward_ref(NULL, ds, g, B, C, HW, 0);
    CHECK("add_channels dbias", mds, ds, C, 1e-5, 1e-5);
    if (!rc) snprintf(msg, len, "mul/add_channels forward/backward (%zu,%zu,%zu)", B, C, HW);
    release_all(&u);
    return rc;
}

/* d = {n, p in thousandths} */
static int run_dropout(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t n = t->d[0];
    float p = (float)t->d[1] / 1000.0f;
    uint64_t rng = SEED, seed = 0x123456789ABCDEFULL, stream = 42;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -1, 1), *r = u_zeros(&u, n);
    cd_mem mx = up(&u, x, n), mo = up(&u, NULL, n);
    int rc = 0;
    op_dropout_forward(dev, mo, mx, n, p, seed, stream);
    op_dropout_forward_ref(r, x, n, p, seed, stream);
    CHECK("dropout", mo, r, n, 0, 1e-6);
    if (!rc) snprintf(msg, len, "Philox mask identical to the host's, n=%zu p=%g", n, p);
    release_all(&u);
    return rc;
}

/* d = {O, R, I, n of sumsq} */
static int run_reduce(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t O = t->d[0], R = t->d[1], I = t->d[2], n = t->d[3];
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, O * R * I, -1, 1), *o = u_rand(&u, &rng, O * I, -1, 1);
    double *big = u_rand(&u, &rng, n, -1, 1);
    cd_mem mx = up(&u, x, O * R * I), mo = up(&u, o, O * I), mbig = up(&u, big, n), ms = up(&u, NULL, 1);
    int rc = 0;
    op_reduce_sum(dev, mo, mx, O, R, I, 0.5f, 1);
    op_reduce_sum_ref(o, x, O, R, I, 0.5, 1);
    CHECK("reduce_sum", mo, o, O * I, 1e-4, 1e-5);
    op_sumsq(dev, ms, mbig, n);
    double ss = op_sumsq_ref(big, n);
    CHECK("sumsq", ms, &ss, 1, 0, 1e-5);
    if (!rc) snprintf(msg, len, "reduce_sum (%zu,%zu,%zu) acc, sumsq n=%zu", O, R, I, n);
    release_all(&u);
    return rc;
}

/* d = {B, H, Lq, Lk, valid keys of image 0, valid keys of the others} */
static int run_softmax(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], H = t->d[1], Lq = t->d[2], Lk = t->d[3], n = B * H * Lq * Lk;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -4, 4), *g = u_rand(&u, &rng, n, -1, 1), *m = u_zeros(&u, B * Lk);
    double *r = u_zeros(&u, n), *dr = u_zeros(&u, n);
    for (size_t k = 0; k < B * Lk; k++) m[k] = (k % Lk) >= (k < Lk ? t->d[4] : t->d[5]);   /* padded tails */
    cd_mem mx = up(&u, x, n), mg = up(&u, g, n), mo = up(&u, NULL, n), mm = up(&u, m, B * Lk), mdx = up(&u, NULL, n);
    float scale = 0.35f;
    int rc = 0;
    op_softmax_forward(dev, mo, mx, mm, B, H, Lq, Lk, scale);
    op_softmax_forward_ref(r, x, m, B, H, Lq, Lk, scale);
    CHECK("softmax", mo, r, n, 1e-7, 1e-5);
    op_softmax_backward(dev, mdx, mg, mo, B, H, Lq, Lk, scale, 0);
    op_softmax_backward_ref(dr, g, r, B, H, Lq, Lk, scale, 0);
    CHECK("softmax backward", mdx, dr, n, 1e-6, 1e-4);
    if (!rc) snprintf(msg, len, "masked softmax forward/backward (%zu,%zu,%zu,%zu)", B, H, Lq, Lk);
    release_all(&u);
    return rc;
}

/* d = {B, heads, Lq, Lk, hd, valid keys of image 0, of the others}: fused
 * attention with key mask, bias and dropout, forward and the three gradients */
static int run_attention(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    op_attention_args a = {t->d[0], t->d[1], t->d[2], t->d[3], t->d[4], 0.3f, 0.2f, 17, 23};
    size_t B = a.B, Lk = a.Lk, nq = B * a.Lq * a.NH * a.hd, nk = B * Lk * a.NH * a.hd, rows = B * a.NH * a.Lq;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *q = u_rand(&u, &rng, nq, -1, 1), *k = u_rand(&u, &rng, nk, -1, 1), *v = u_rand(&u, &rng, nk, -1, 1);
    double *g = u_rand(&u, &rng, nq, -1, 1), *bias = u_rand(&u, &rng, a.Lq * Lk, -1, 1), *m = u_zeros(&u, B * Lk);
    double *r = u_zeros(&u, nq), *rq = u_zeros(&u, nq), *rk = u_zeros(&u, nk), *rv = u_zeros(&u, nk);
    for (size_t x = 0; x < B * Lk; x++) m[x] = (x % Lk) >= (x < Lk ? t->d[5] : t->d[6]);   /* padded tails */
    cd_mem mq = up(&u, q, nq), mk = up(&u, k, nk), mv = up(&u, v, nk), mg = up(&u, g, nq), mm = up(&u, m, B * Lk);
    cd_mem mb = up(&u, bias, a.Lq * Lk), mo = up(&u, NULL, nq), mlse = up(&u, NULL, rows);
    cd_mem mdelta = up(&u, NULL, rows), mdq = up(&u, NULL, nq), mdk = up(&u, NULL, nk), mdv = up(&u, NULL, nk);
    int rc = 0;
    op_attention_forward(dev, mo, mlse, mq, mk, mv, mm, mb, &a);
    op_attention_forward_ref(r, q, k, v, m, bias, &a);
    CHECK("attention", mo, r, nq, 2e-6, 1e-5);
    op_attention_backward(dev, mdq, mdk, mdv, mdelta, mg, mo, mlse, mq, mk, mv, mm, mb, &a, 0, 0, 0);
    op_attention_backward_ref(rq, rk, rv, g, q, k, v, m, bias, &a, 0);
    CHECK("attention dq", mdq, rq, nq, 2e-6, 2e-5);
    CHECK("attention dk", mdk, rk, nk, 2e-6, 2e-5);
    CHECK("attention dv", mdv, rv, nk, 2e-6, 2e-5);
    if (!rc)
        snprintf(msg, len, "fused attention forward/backward (%zu,%zu,%zu,%zu) hd %zu, mask, bias, dropout", B, a.NH,
                 a.Lq, Lk, a.hd);
    release_all(&u);
    return rc;
}

/* d = {N, C} */
static int run_layernorm(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t N = t->d[0], C = t->d[1];
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, N * C, -2, 3), *g = u_rand(&u, &rng, N * C, -1, 1), *w = u_rand(&u, &rng, C, 0.5, 1.5);
    double *b = u_rand(&u, &rng, C, -1, 1), *dw = u_rand(&u, &rng, C, -1, 1), *db = u_rand(&u, &rng, C, -1, 1);
    double *r = u_zeros(&u, N * C), *mu = u_zeros(&u, N), *rs = u_zeros(&u, N);
    cd_mem mx = up(&u, x, N * C), mg = up(&u, g, N * C), mo = up(&u, NULL, N * C), mw = up(&u, w, C),
           mb = up(&u, b, C), mmu = up(&u, NULL, N), mrs = up(&u, NULL, N), mdw = up(&u, dw, C), mdb = up(&u, db, C);
    int rc = 0;
    op_layernorm_forward(dev, mo, mmu, mrs, mx, mw, mb, N, C, 1e-5f);
    op_layernorm_forward_ref(r, mu, rs, x, w, b, N, C, 1e-5);
    CHECK("layernorm", mo, r, N * C, 1e-5, 1e-5);
    CHECK("layernorm rstd", mrs, rs, N, 0, 1e-5);
    op_layernorm_backward(dev, mo, mdw, mdb, mg, mx, mmu, mrs, mw, N, C, 0);
    op_layernorm_backward_ref(r, dw, db, g, x, mu, rs, w, N, C, 0);
    CHECK("layernorm dx", mo, r, N * C, 1e-5, 1e-4);
    CHECK("layernorm dw", mdw, dw, C, 1e-5, 1e-4);
    CHECK("layernorm db", mdb, db, C, 1e-5, 1e-4);
    if (!rc) snprintf(msg, len, "layer norm forward/backward (%zu,%zu)", N, C);
    release_all(&u);
    return rc;
}

/* A residual add and the norm in one op: the sum a + b, out, da and db (both
 * the input gradient, db added to), dw and db(ias) against the host reference
 * of the sum. d = {N, C} */
static int run_add_layernorm(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t N = t->d[0], C = t->d[1], n = N * C;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *a = u_rand(&u, &rng, n, -2, 3), *b = u_rand(&u, &rng, n, -1, 1), *g = u_rand(&u, &rng, n, -1, 1);
    double *w = u_rand(&u, &rng, C, 0.5, 1.5), *bias = u_rand(&u, &rng, C, -1, 1), *db0 = u_rand(&u, &rng, n, -1, 1);
    double *dw = u_zeros(&u, C), *dbias = u_zeros(&u, C), *x = u_zeros(&u, n), *r = u_zeros(&u, n);
    double *mu = u_zeros(&u, N), *rs = u_zeros(&u, N), *dx = u_zeros(&u, n), *dbr = u_zeros(&u, n);
    for (size_t i = 0; i < n; i++) x[i] = (double)((float)a[i] + (float)b[i]);   /* the float sum, as stored */
    op_layernorm_forward_ref(r, mu, rs, x, w, bias, N, C, 1e-5);
    op_layernorm_backward_ref(dx, dw, dbias, g, x, mu, rs, w, N, C, 0);
    for (size_t i = 0; i < n; i++) dbr[i] = db0[i] + dx[i];
    cd_mem ma = up(&u, a, n), mb = up(&u, b, n), mg = up(&u, g, n), mw = up(&u, w, C), mbias = up(&u, bias, C);
    cd_mem mx = up(&u, NULL, n), mo = up(&u, NULL, n), mmu = up(&u, NULL, N), mrs = up(&u, NULL, N);
    cd_mem mda = up(&u, NULL, n), mdb = up(&u, db0, n), mdw = up(&u, NULL, C), mdbias = up(&u, NULL, C);
    int rc = 0;
    cd_fill(dev, mdw, 0.0f, C);
    cd_fill(dev, mdbias, 0.0f, C);
    op_add_layernorm_forward(dev, mo, mx, mmu, mrs, ma, mb, mw, mbias, N, C, 1e-5f);
    CHECK("add+layernorm sum", mx, x, n, 0, 0);
    CHECK("add+layernorm out", mo, r, n, 1e-5, 1e-5);
    op_add_layernorm_backward(dev, mda, mdb, mdw, mdbias, mg, mx, mmu, mrs, mw, N, C, 0, 1);
    CHECK("add+layernorm da", mda, dx, n, 1e-5, 1e-4);
    CHECK("add+layernorm db +=", mdb, dbr, n, 1e-5, 1e-4);
    CHECK("add+layernorm dw", mdw, dw, C, 1e-5, 1e-4);
    CHECK("add+layernorm dbias", mdbias, dbias, C, 1e-5, 1e-4);
    if (!rc) snprintf(msg, len, "layer norm of a + b (%zu,%zu): sum, out, da, db +=, dw, dbias", N, C);
    release_all(&u);
    return rc;
}

/* d = {dims[4], perm[4]} */
static int run_permute(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t dims[4] = {t->d[0], t->d[1], t->d[2], t->d[3]}, n = dims[0] * dims[1] * dims[2] * dims[3];
    int perm[4] = {(int)t->d[4], (int)t->d[5], (int)t->d[6], (int)t->d[7]};
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -1, 1), *o = u_rand(&u, &rng, n, -1, 1);
    cd_mem mx = up(&u, x, n), mo = up(&u, o, n);
    int rc = 0;
    op_permute(dev, mo, mx, dims, perm, 1);
    op_permute_ref(o, x, dims, perm, 1);
    CHECK("permute", mo, o, n, 1e-6, 1e-6);
    if (!rc)
        snprintf(msg, len, "permute (%zu,%zu,%zu,%zu) by {%d,%d,%d,%d}, acc", dims[0], dims[1], dims[2], dims[3],
                 perm[0], perm[1], perm[2], perm[3]);
    release_all(&u);
    return rc;
}

static conv_shape conv_of(const cd_selftest *t) {
    const size_t *d = t->d;
    return (conv_shape){d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]};
}

/* d = conv_shape {B, C, H, W, K, R, S, stride, pad, dil} (K unused) */
static int run_im2col(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    conv_shape s = conv_of(t);
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s), P = Ho * Wo, CRS = s.C * s.R * s.S;
    size_t nx = s.B * s.C * s.H * s.W, ncol = CRS * s.B * P;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, -1, 1), *col = u_zeros(&u, ncol), *dcol = u_rand(&u, &rng, ncol, -1, 1);
    double *x0 = u_rand(&u, &rng, nx, -1, 1), *dx = u_zeros(&u, nx), *colT = u_zeros(&u, ncol);
    /* reference im2col and its adjoint */
    for (size_t c = 0; c < s.C; c++)
        for (size_t r = 0; r < s.R; r++)
            for (size_t q = 0; q < s.S; q++)
                for (size_t b = 0; b < s.B; b++)
                    for (size_t p = 0; p < P; p++) {
                        size_t row = (c * s.R + r) * s.S + q, j = b * P + p, xi = 0;
                        int in = conv2d_tap_ref(&s, b, c, p / Wo, p % Wo, r, q, &xi);
                        col[row * s.B * P + j] = in ? x[xi] : 0.0;
                        if (in) dx[xi] += dcol[row * s.B * P + j];
                    }
    for (size_t i = 0; i < nx; i++) dx[i] += x0[i];   /* col2im with acc = 1 onto x0 */
    for (size_t row = 0; row < CRS; row++)
        for (size_t j = 0; j < s.B * P; j++) colT[j * CRS + row] = col[row * s.B * P + j];
    cd_mem mx = up(&u, x, nx), mdcol = up(&u, dcol, ncol), mcol = up(&u, NULL, ncol), mdx = up(&u, x0, nx);
    int rc = 0;
    op_conv2d_im2col(dev, mcol, mx, &s, 0);
    CHECK("im2col", mcol, col, ncol, 0, 0);
    op_conv2d_im2col(dev, mcol, mx, &s, 1);
    CHECK("im2col transposed", mcol, colT, ncol, 0, 0);
    op_conv2d_col2im(dev, mdx, mdcol, &s, 1);
    CHECK("col2im", mdx, dx, nx, 1e-6, 1e-6);
    if (!rc)
        snprintf(msg, len, "%zux%zux%zux%zu, %zux%zu kernel, stride %zu, pad %zu, dilation %zu, both layouts, col2im acc",
                 s.B, s.C, s.H, s.W, s.R, s.S, s.stride, s.pad, s.dil);
    release_all(&u);
    return rc;
}

/* d = conv_shape {B, C, H, W, K, R, S, stride, pad, dil} */
static int run_conv(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    conv_shape s = conv_of(t);
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s);
    size_t nx = s.B * s.C * s.H * s.W, nw = s.K * s.C * s.R * s.S, no = s.B * s.K * Ho * Wo;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, -1, 1), *w = u_rand(&u, &rng, nw, -1, 1), *b = u_rand(&u, &rng, s.K, -1, 1);
    double *dout = u_rand(&u, &rng, no, -1, 1), *dw0 = u_rand(&u, &rng, nw, -1, 1), *db0 = u_rand(&u, &rng, s.K, -1, 1);
    double *out = u_zeros(&u, no), *dx = u_zeros(&u, nx), *dw = u_zeros(&u, nw), *db = u_zeros(&u, s.K);
    conv2d_forward_ref(out, x, w, b, &s);
    conv2d_backward_ref(dx, dw, db, dout, x, w, &s);
    for (size_t i = 0; i < nw; i++) dw[i] += dw0[i];   /* parameter gradients add */
    for (size_t i = 0; i < s.K; i++) db[i] += db0[i];
    cd_mem mx = up(&u, x, nx), mw = up(&u, w, nw), mb = up(&u, b, s.K), mo = up(&u, NULL, no);
    cd_mem md = up(&u, dout, no), mdx = up(&u, NULL, nx), mdw = up(&u, dw0, nw), mdb = up(&u, db0, s.K);
    op_conv2d_forward(dev, mo, mx, mw, mb, &s);
    op_conv2d_backward(dev, mdx, mdw, mdb, md, mx, mw, &s, 0);
    double tol = 1e-5 * sqrt((double)(s.C * s.R * s.S)), tol_w = 1e-5 * sqrt((double)(s.B * Ho * Wo));
    int rc = 0;
    CHECK("conv out", mo, out, no, tol, tol);
    CHECK("conv dx", mdx, dx, nx, tol, tol);
    CHECK("conv dw", mdw, dw, nw, tol_w, 1e-5);
    CHECK("conv db", mdb, db, s.K, tol_w, 1e-5);
    if (!rc)
        snprintf(msg, len, "%zux%zux%zux%zu -> %zu, %zux%zu stride %zu pad %zu, bias; out, dx, dw +=, db +=", s.B, s.C,
                 s.H, s.W, s.K, s.R, s.S, s.stride, s.pad);
    release_all(&u);
    return rc;
}

/* d = {B, C, HW} */
static int run_batchnorm(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], C = t->d[1], HW = t->d[2], nx = B * C * HW;
    double eps = 1e-5, momentum = 0.1;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, 1, 5);   /* a mean far from 0 */
    double *w = u_rand(&u, &rng, C, -1, 1), *b = u_rand(&u, &rng, C, -1, 1);
    double *dout = u_rand(&u, &rng, nx, -1, 1), *rm = u_rand(&u, &rng, C, -1, 1), *rv = u_rand(&u, &rng, C, 0.5, 2.5);
    double *dw0 = u_rand(&u, &rng, C, -1, 1), *db0 = u_rand(&u, &rng, C, -1, 1);
    double *out = u_zeros(&u, nx), *fout = u_zeros(&u, nx), *fdx = u_zeros(&u, nx), *mean = u_zeros(&u, C),
           *rstd = u_zeros(&u, C);
    double *dx = u_zeros(&u, nx), *dw = u_zeros(&u, C), *db = u_zeros(&u, C), *rm1 = u_zeros(&u, C),
           *rv1 = u_zeros(&u, C);
    memcpy(rm1, rm, C * sizeof *rm);
    memcpy(rv1, rv, C * sizeof *rv);
    batchnorm_frozen_forward_ref(fout, x, w, b, rm, rv, B, C, HW, eps);
    batchnorm_frozen_backward_ref(fdx, dout, w, rv, B, C, HW, eps);
    batchnorm_train_forward_ref(out, mean, rstd, rm1, rv1, x, w, b, B, C, HW, eps, momentum);
    batchnorm_train_backward_ref(dx, dw, db, dout, x, mean, rstd, w, B, C, HW);
    for (size_t c = 0; c < C; c++) { dw[c] += dw0[c]; db[c] += db0[c]; }
    cd_mem mx = up(&u, x, nx), mw = up(&u, w, C), mb = up(&u, b, C), mrm = up(&u, rm, C), mrv = up(&u, rv, C);
    cd_mem md = up(&u, dout, nx), mo = up(&u, NULL, nx), mdx = up(&u, NULL, nx), mmean = up(&u, NULL, C),
           mrstd = up(&u, NULL, C), mdw = up(&u, dw0, C), mdb = up(&u, db0, C);
    int rc = 0;
    op_batchnorm_frozen_forward(dev, mo, mx, mw, mb, mrm, mrv, B, C, HW, (float)eps);
    CHECK("frozen out", mo, fout, nx, 1e-5, 1e-5);
    op_batchnorm_frozen_backward(dev, mdx, md, mw, mrv, B, C, HW, (float)eps, 0);
    CHECK("frozen dx", mdx, fdx, nx, 1e-6, 1e-5);
    op_batchnorm_train_forward(dev, mo, mmean, mrstd, mrm, mrv, mx, mw, mb, B, C, HW, (float)eps, (float)momentum);
    op_batchnorm_train_backward(dev, mdx, mdw, mdb, md, mx, mmean, mrstd, mw, B, C, HW, 0);
    CHECK("train out", mo, out, nx, 1e-5, 1e-4);
    CHECK("train mean", mmean, mean, C, 1e-6, 1e-5);
    CHECK("train rstd", mrstd, rstd, C, 1e-6, 1e-4);
    CHECK("running mean", mrm, rm1, C, 1e-6, 1e-5);
    CHECK("running var", mrv, rv1, C, 1e-6, 1e-4);
    CHECK("train dx", mdx, dx, nx, 1e-5, 1e-4);
    CHECK("train dw", mdw, dw, C, 1e-5, 1e-4);
    CHECK("train db", mdb, db, C, 1e-5, 1e-4);
    if (!rc) snprintf(msg, len, "%zux%zux%zu: frozen fwd/bwd; train fwd, stats, running update, dx, dw +=, db +=", B, C, HW);
    release_all(&u);
    return rc;
}

/* The fused batch norm + ReLU and residual tails relu(bn(x) + s), frozen and
 * training, against the host references composed: g = dout where the output
 * is > 0, else 0; ds = g, and dx as the batch norm's backward of g.
 * d = {B, C, HW} */
static int run_batchnorm_tails(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], C = t->d[1], HW = t->d[2], nx = B * C * HW;
    double eps = 1e-5, momentum = 0.1;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, -1, 2), *sc = u_rand(&u, &rng, nx, -1, 1);
    double *w = u_rand(&u, &rng, C, -1, 1), *b = u_rand(&u, &rng, C, -1, 1), *dout = u_rand(&u, &rng, nx, -1, 1);
    double *rm = u_rand(&u, &rng, C, -1, 1), *rv = u_rand(&u, &rng, C, 0.5, 2.5);
    double *fr = u_zeros(&u, nx), *fa = u_zeros(&u, nx), *ta = u_zeros(&u, nx), *g = u_zeros(&u, nx);
    double *frdx = u_zeros(&u, nx), *fadx = u_zeros(&u, nx), *fads = u_zeros(&u, nx), *tadx = u_zeros(&u, nx),
           *tads = u_zeros(&u, nx);
    double *mean = u_zeros(&u, C), *rstd = u_zeros(&u, C), *dw = u_zeros(&u, C), *db = u_zeros(&u, C);
    batchnorm_frozen_forward_ref(fr, x, w, b, rm, rv, B, C, HW, eps);
    for (size_t i = 0; i < nx; i++) {
        fa[i] = fr[i] + sc[i] > 0 ? fr[i] + sc[i] : 0.0;   /* frozen tail */
        fr[i] = fr[i] > 0 ? fr[i] : 0.0;                    /* frozen + ReLU */
        g[i] = fr[i] > 0 ? dout[i] : 0.0;
    }
    batchnorm_frozen_backward_ref(frdx, g, w, rv, B, C, HW, eps);
    for (size_t i = 0; i < nx; i++) fads[i] = fa[i] > 0 ? dout[i] : 0.0;
    batchnorm_frozen_backward_ref(fadx, fads, w, rv, B, C, HW, eps);
    batchnorm_train_forward_ref(ta, mean, rstd, NULL, NULL, x, w, b, B, C, HW, eps, momentum);
    for (size_t i = 0; i < nx; i++) {
        ta[i] = ta[i] + sc[i] > 0 ? ta[i] + sc[i] : 0.0;
        tads[i] = g[i] = ta[i] > 0 ? dout[i] : 0.0;
    }
    batchnorm_train_backward_ref(tadx, dw, db, g, x, mean, rstd, w, B, C, HW);
    cd_mem mx = up(&u, x, nx), ms = up(&u, sc, nx), mw = up(&u, w, C), mb = up(&u, b, C), mrm = up(&u, rm, C);
    cd_mem mrv = up(&u, rv, C), md = up(&u, dout, nx), mo = up(&u, NULL, nx), mdx = up(&u, NULL, nx);
    cd_mem mds = up(&u, NULL, nx), mmean = up(&u, NULL, C), mrstd = up(&u, NULL, C), mdw = up(&u, NULL, C),
           mdb = up(&u, NULL, C);
    int rc = 0;
    op_batchnorm_relu_frozen_forward(dev, mo, mx, mw, mb, mrm, mrv, B, C, HW, (float)eps);
    CHECK("frozen+relu out", mo, fr, nx, 1e-5, 1e-5);
    op_batchnorm_relu_frozen_backward(dev, mdx, md, mo, mw, mrv, B, C, HW, (float)eps, 0);
    CHECK("frozen+relu dx", mdx, frdx, nx, 1e-6, 1e-5);
    op_batchnorm_add_relu_frozen_forward(dev, mo, mx, ms, mw, mb, mrm, mrv, B, C, HW, (float)eps);
    CHECK("frozen tail out", mo, fa, nx, 1e-5, 1e-5);
    op_batchnorm_add_relu_frozen_backward(dev, mdx, mds, md, mo, mw, mrv, B, C, HW, (float)eps, 0, 0);
    CHECK("frozen tail dx", mdx, fadx, nx, 1e-6, 1e-5);
    CHECK("frozen tail ds", mds, fads, nx, 0, 0);
    cd_fill(dev, mdw, 0.0f, C);
    cd_fill(dev, mdb, 0.0f, C);
    op_batchnorm_add_relu_train_forward(dev, mo, mmean, mrstd, cd_none(), cd_none(), mx, ms, mw, mb, B, C, HW,
                                        (float)eps, (float)momentum);
    CHECK("train tail out", mo, ta, nx, 1e-5, 1e-4);
    op_batchnorm_add_relu_train_backward(dev, mdx, mds, mdw, mdb, md, mo, mx, mmean, mrstd, mw, B, C, HW, 0, 0);
    CHECK("train tail dx", mdx, tadx, nx, 1e-5, 1e-4);
    CHECK("train tail ds", mds, tads, nx, 0, 0);
    CHECK("train tail dw", mdw, dw, C, 1e-5, 1e-4);
    CHECK("train tail db", mdb, db, C, 1e-5, 1e-4);
    if (!rc)
        snprintf(msg, len, "%zux%zux%zu: frozen + ReLU, relu(frozen + shortcut), relu(train + shortcut); out, dx, ds",
                 B, C, HW);
    release_all(&u);
    return rc;
}

/* d = {B, C, H, W, k, s, p} */
static int run_maxpool(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], C = t->d[1], H = t->d[2], W = t->d[3], k = t->d[4], s = t->d[5], p = t->d[6];
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p), nx = B * C * H * W, no = B * C * Ho * Wo;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, -1, 1), *dout = u_rand(&u, &rng, no, -1, 1);
    for (size_t i = 0; i < nx; i += 4) x[i] = x[i + 1 < nx ? i + 1 : i];   /* ties */
    double *out = u_zeros(&u, no), *arg = u_zeros(&u, no), *dx = u_zeros(&u, nx);
    maxpool_forward_ref(out, arg, x, B, C, H, W, k, s, p);
    maxpool_backward_ref(dx, dout, arg, B, C, H, W, k, s, p);
    cd_mem mx = up(&u, x, nx), md = up(&u, dout, no), mo = up(&u, NULL, no), ma = up(&u, NULL, no),
           mdx = up(&u, NULL, nx);
    op_maxpool_forward(dev, mo, ma, mx, B, C, H, W, k, s, p);
    op_maxpool_backward(dev, mdx, md, ma, B, C, H, W, k, s, p, 0);
    int rc = 0;
    CHECK("maxpool out", mo, out, no, 0, 0);
    CHECK("maxpool argmax", ma, arg, no, 0, 0);
    CHECK("maxpool dx", mdx, dx, nx, 1e-6, 1e-6);
    if (!rc) snprintf(msg, len, "%zux%zux%zux%zu, %zux%zu/%zu pad %zu, with ties; out, argmax, dx", B, C, H, W, k, k, s, p);
    release_all(&u);
    return rc;
}

static float *to_float(uploads *u, const double *d, size_t n) {
    float *f = keep(u, cd_xmalloc((n ? n : 1) * sizeof *f));
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}
static double *to_double(uploads *u, const float *f, size_t n) {
    double *d = u_zeros(u, n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

/* d = {N, IN, OUT}: out, dx (acc), dw +=, db += against the float references (sums in double) */
/* d = {N, IN, OUT, relu}: with relu, linear + ReLU in one op (op_linear_relu_*) */
static int run_linear(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t N = t->d[0], IN = t->d[1], OUT = t->d[2], nx = N * IN, nw = OUT * IN, no = N * OUT;
    int relu = t->d[3] != 0;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, nx, -1, 1), *w = u_rand(&u, &rng, nw, -1, 1), *b = u_rand(&u, &rng, OUT, -1, 1);
    double *g = u_rand(&u, &rng, no, -1, 1), *dx0 = u_rand(&u, &rng, nx, -1, 1), *dw0 = u_rand(&u, &rng, nw, -1, 1);
    double *db0 = u_rand(&u, &rng, OUT, -1, 1);
    float *xf = to_float(&u, x, nx), *wf = to_float(&u, w, nw), *bf = to_float(&u, b, OUT), *gf = to_float(&u, g, no);
    float *of = keep(&u, cd_xmalloc(no * sizeof *of)), *dxf = to_float(&u, dx0, nx), *dwf = to_float(&u, dw0, nw),
          *dbf = to_float(&u, db0, OUT);
    op_linear_forward_ref(of, xf, wf, bf, N, IN, OUT);
    if (relu)   /* the ReLU on the float output, its mask on the gradient */
        for (size_t i = 0; i < no; i++) {
            of[i] = of[i] < 0.0f ? 0.0f : of[i];
            gf[i] = of[i] > 0.0f ? gf[i] : 0.0f;
        }
    op_linear_backward_ref(dxf, dwf, dbf, gf, xf, wf, N, IN, OUT, 1);
    double *out = to_double(&u, of, no), *dx = to_double(&u, dxf, nx), *dw = to_double(&u, dwf, nw),
           *db = to_double(&u, dbf, OUT);
    cd_mem mx = up(&u, x, nx), mw = up(&u, w, nw), mb = up(&u, b, OUT), mg = up(&u, g, no), mo = up(&u, NULL, no);
    cd_mem mdx = up(&u, dx0, nx), mdw = up(&u, dw0, nw), mdb = up(&u, db0, OUT);
    if (relu) {
        op_linear_relu_forward(dev, mo, mx, mw, mb, N, IN, OUT);
        op_linear_relu_backward(dev, mdx, mdw, mdb, mg, mo, mx, mw, N, IN, OUT, 1);
    } else {
        op_linear_forward(dev, mo, mx, mw, mb, N, IN, OUT);
        op_linear_backward(dev, mdx, mdw, mdb, mg, mx, mw, N, IN, OUT, 1);
    }
    int rc = 0;
    CHECK("linear out", mo, out, no, 1e-5, 1e-4);
    CHECK("linear dx", mdx, dx, nx, 1e-5, 1e-4);
    CHECK("linear dw", mdw, dw, nw, 1e-5, 1e-4);
    CHECK("linear db", mdb, db, OUT, 1e-5, 1e-4);
    if (!rc) snprintf(msg, len, "(%zu,%zu) -> %zu, bias%s; out, dx +=, dw +=, db +=", N, IN, OUT, relu ? ", ReLU" : "");
    release_all(&u);
    return rc;
}

/* d = {batch, M, N, K, ta, tb}: out, dA (=), dB (+=) against the float references */
static int run_bmm(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t batch = t->d[0], M = t->d[1], N = t->d[2], K = t->d[3];
    int ta = (int)t->d[4], tb = (int)t->d[5];
    size_t nA = batch * M * K, nB = batch * K * N, nC = batch * M * N;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *A = u_rand(&u, &rng, nA, -1, 1), *Bm = u_rand(&u, &rng, nB, -1, 1), *G = u_rand(&u, &rng, nC, -1, 1);
    double *dB0 = u_rand(&u, &rng, nB, -1, 1);
    float *Af = to_float(&u, A, nA), *Bf = to_float(&u, Bm, nB), *Gf = to_float(&u, G, nC), *Cf = keep(&u,
          cd_xmalloc(nC * sizeof *Cf));
    float *dAf = keep(&u, cd_xmalloc(nA * sizeof *dAf)), *dBf = to_float(&u, dB0, nB);
    op_bmm_forward_ref(Cf, Af, Bf, batch, M, N, K, ta, tb);
    op_bmm_backward_ref(dAf, dBf, Gf, Af, Bf, batch, M, N, K, ta, tb, 0, 1);
    double *C = to_double(&u, Cf, nC), *dA = to_double(&u, dAf, nA), *dB = to_double(&u, dBf, nB);
    cd_mem mA = up(&u, A, nA), mB = up(&u, Bm, nB), mG = up(&u, G, nC), mC = up(&u, NULL, nC);
    cd_mem mdA = up(&u, NULL, nA), mdB = up(&u, dB0, nB);
    op_bmm_forward(dev, mC, mA, mB, batch, M, N, K, ta, tb);
    op_bmm_backward(dev, mdA, mdB, mG, mA, mB, batch, M, N, K, ta, tb, 0, 1);
    int rc = 0;
    CHECK("bmm out", mC, C, nC, 1e-5, 1e-4);
    CHECK("bmm dA", mdA, dA, nA, 1e-5, 1e-4);
    CHECK("bmm dB", mdB, dB, nB, 1e-5, 1e-4);
    if (!rc)
        snprintf(msg, len, "%c%c batch %zu (%zu,%zu,%zu); out, dA =, dB +=", ta ? 'T' : 'N', tb ? 'T' : 'N', batch, M,
                 N, K);
    release_all(&u);
    return rc;
}

/* Attention's scores over heads read in place: q (B, Lq, NH*hd), k (B, Lk,
 * NH*hd) -> s (B, NH, Lq, Lk), and both gradients back in the heads' places,
 * against the dense reference on gathered heads. d = {B, NH, Lq, Lk, hd} */
static int run_bmm_heads(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t B = t->d[0], NH = t->d[1], Lq = t->d[2], Lk = t->d[3], hd = t->d[4], d = NH * hd;
    size_t nq = B * Lq * d, nk = B * Lk * d, ns = B * NH * Lq * Lk;
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *q = u_rand(&u, &rng, nq, -1, 1), *k = u_rand(&u, &rng, nk, -1, 1), *g = u_rand(&u, &rng, ns, -1, 1);
    float *qh = keep(&u, cd_xmalloc(nq * sizeof *qh)), *kh = keep(&u, cd_xmalloc(nk * sizeof *kh));
    for (size_t b = 0; b < B; b++)   /* (B, L, NH, hd) -> (B, NH, L, hd) */
        for (size_t h = 0; h < NH; h++)
            for (size_t c = 0; c < hd; c++) {
                for (size_t l = 0; l < Lq; l++)
                    qh[((b * NH + h) * Lq + l) * hd + c] = (float)q[(b * Lq + l) * d + h * hd + c];
                for (size_t l = 0; l < Lk; l++)
                    kh[((b * NH + h) * Lk + l) * hd + c] = (float)k[(b * Lk + l) * d + h * hd + c];
            }
    float *sf = keep(&u, cd_xmalloc(ns * sizeof *sf)), *gf = to_float(&u, g, ns);
    float *dqh = keep(&u, cd_xmalloc(nq * sizeof *dqh)), *dkh = keep(&u, cd_xmalloc(nk * sizeof *dkh));
    op_bmm_forward_ref(sf, qh, kh, B * NH, Lq, Lk, hd, 0, 1);
    op_bmm_backward_ref(dqh, dkh, gf, qh, kh, B * NH, Lq, Lk, hd, 0, 1, 0, 0);
    double *sr = to_double(&u, sf, ns), *dq = u_zeros(&u, nq), *dk = u_zeros(&u, nk);
    for (size_t b = 0; b < B; b++)   /* and back */
        for (size_t h = 0; h < NH; h++)
            for (size_t c = 0; c < hd; c++) {
                for (size_t l = 0; l < Lq; l++)
                    dq[(b * Lq + l) * d + h * hd + c] = dqh[((b * NH + h) * Lq + l) * hd + c];
                for (size_t l = 0; l < Lk; l++)
                    dk[(b * Lk + l) * d + h * hd + c] = dkh[((b * NH + h) * Lk + l) * hd + c];
            }
    cd_mem mq = up(&u, q, nq), mk = up(&u, k, nk), mg = up(&u, g, ns), ms = up(&u, NULL, ns);
    cd_mem mdq = up(&u, NULL, nq), mdk = up(&u, NULL, nk);
    op_bmm_layout lq = {d, hd, Lq * d}, lk = {d, hd, Lk * d}, ls = {Lk, Lq * Lk, NH * Lq * Lk};
    op_bmm_strided_forward(dev, ms, mq, mk, NH, B, Lq, Lk, hd, 0, 1, &lq, &lk, &ls);
    op_bmm_strided_backward(dev, mdq, mdk, mg, mq, mk, NH, B, Lq, Lk, hd, 0, 1, &lq, &lk, &ls, 0, 0);
    int rc = 0;
    CHECK("heads scores", ms, sr, ns, 1e-5, 1e-4);
    CHECK("heads dq", mdq, dq, nq, 1e-5, 1e-4);
    CHECK("heads dk", mdk, dk, nk, 1e-5, 1e-4);
    if (!rc) snprintf(msg, len, "B %zu x %zu heads, (%zu,%zu,%zu), read in place; scores, dq, dk", B, NH, Lq, Lk, hd);
    release_all(&u);
    return rc;
}

/* d = {n}: moments of values with exact zeros among them (as after a ReLU) */
static int run_moments(cd_device *dev, const cd_selftest *t, char *msg, size_t len) {
    size_t n = t->d[0];
    uint64_t rng = SEED;
    uploads u = {.dev = dev};
    double *x = u_rand(&u, &rng, n, -1, 2), *r = u_zeros(&u, 3);
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0 ? 0 : (float)x[i];
    cd_mem mx = up(&u, x, n), mo = up(&u, NULL, 3);
    int rc = 0;
    op_moments(dev, mo, mx, n);
    op_moments_ref(r, x, n);
    CHECK("moments", mo, r, 3, 1e-6, 1e-5);
    release_all(&u);
    return rc;
}

const cd_selftest cd_op_cases[] = {
    {"ops element-wise", "elementwise", run_elementwise, {1001}},
    {"ops channel bias/scale", "elementwise", run_channels, {2, 7, 33}},
    {"ops dropout", "dropout", run_dropout, {777, 300}},
    {"ops reductions", "reduce", run_reduce, {3, 257, 5, 100003}},
    {"ops masked softmax", "softmax", run_softmax, {2, 3, 5, 37, 30, 11}},
    {"ops fused attention", "attention", run_attention, {2, 2, 5, 11, 16, 9, 4}},
    {"ops layer norm", "layernorm", run_layernorm, {9, 129}},
    {"ops add + layer norm", "layernorm", run_add_layernorm, {7, 131}},
    {"ops permute", "permute", run_permute, {7, 2, 3, 5, 1, 2, 0, 3}},   /* (L, B, NH, hd) -> (B, NH, L, hd) */
    {"im2col/col2im", "conv", run_im2col, {2, 3, 7, 5, 1, 3, 2, 2, 1, 2}},
    {"conv2d", "conv", run_conv, {3, 5, 9, 7, 6, 3, 3, 2, 1, 1}},
    {"conv2d 3x3/1, 16 wide (implicit on CPUs)", "conv", run_conv, {2, 3, 6, 16, 5, 3, 3, 1, 1, 1}},
    {"conv2d 7x7/2 pad 3, 16 wide (the stem: column-parity split on CPUs)", "conv", run_conv,
     {2, 3, 9, 32, 4, 7, 7, 2, 3, 1}},
    {"conv2d 3x3/1, 4x4, K 64 (weight gradient by the row GEMM on CPUs)", "conv", run_conv,
     {4, 64, 4, 4, 64, 3, 3, 1, 1, 1}},
    {"batchnorm", "batchnorm", run_batchnorm, {3, 5, 19}},
    {"batchnorm + ReLU, residual tails (flat frozen kernels)", "batchnorm", run_batchnorm_tails, {2, 3, 37}},
    {"batchnorm + ReLU, residual tails (per-plane kernels)", "batchnorm", run_batchnorm_tails, {2, 3, 64}},
    {"maxpool", "pool", run_maxpool, {2, 3, 9, 6, 3, 2, 1}},
    {"linear", "linear", run_linear, {37, 29, 23}},
    {"linear + ReLU", "linear", run_linear, {37, 29, 24, 1}},
    {"bmm", "linear", run_bmm, {3, 13, 11, 7, 1, 0}},
    {"bmm over attention heads in place", "linear", run_bmm_heads, {2, 3, 7, 5, 8}},
    {"moments", "stats", run_moments, {20001}},
    {NULL, NULL, NULL, {0}},
};
