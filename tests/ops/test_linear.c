/* op_linear and op_bmm on the device against the plain C references (odd sizes,
 * odd buffer offsets, every ta/tb, acc 0 and 1), and their backward against
 * central finite differences of a double-precision forward on the host. */
#include "op_test.h"
#include "ops/reduce_util.h"

static float *rnd(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)t_uniform(-1, 1);
    return p;
}
static double *to_d(const float *f, size_t n) {
    double *d = op_zeros(n);
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}
/* A device copy of host data at float offset `off`, NaN around (op_upload). */
static cd_mem up(const float *h, size_t n, size_t off) {
    double *d = to_d(h, n);
    cd_mem m = op_upload(ot_dev, d, n, off);
    free(d);
    return m;
}
static float *down(cd_mem m, size_t n) {
    double *d = op_download(ot_dev, m, n);
    float *h = malloc((n ? n : 1) * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = (float)d[i];
    free(d);
    return h;
}
static void release(cd_mem m) { op_release(ot_dev, m); }

/* L = sum_ij G_ij * out_ij with out = x w^T + b, or relu of it, in double */
static double linear_loss(const float *G, const double *x, const double *w, const double *b,
                          size_t N, size_t IN, size_t OUT, int relu) {
    double L = 0;
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < OUT; o++) {
            double s = b[o];
            for (size_t i = 0; i < IN; i++) s += x[n * IN + i] * w[o * IN + i];
            L += G[n * OUT + o] * (relu && s < 0 ? 0.0 : s);
        }
    return L;
}

typedef struct { const float *G; double *x, *w, *b; size_t N, IN, OUT; int relu; } linear_ctx;
static double linear_loss_cb(void *c) {
    linear_ctx *l = c;
    return linear_loss(l->G, l->x, l->w, l->b, l->N, l->IN, l->OUT, l->relu);
}

static void test_linear(size_t N, size_t IN, size_t OUT, int with_bias, int acc) {
    char name[128];
    float *x = rnd(N * IN), *w = rnd(OUT * IN), *b = rnd(OUT), *G = rnd(N * OUT);
    float *dx0 = rnd(N * IN), *dw0 = rnd(OUT * IN), *db0 = rnd(OUT);   /* what the gradients start from */
    cd_mem dX = up(x, N * IN, 5), dW = up(w, OUT * IN, 7), dBias = up(b, OUT, 3), dOut = up(G, N * OUT, 11);
    cd_mem dG = up(G, N * OUT, 2), ddx = up(dx0, N * IN, 9), ddw = up(dw0, OUT * IN, 1), ddb = up(db0, OUT, 13);

    op_linear_forward(ot_dev, dOut, dX, dW, with_bias ? dBias : cd_none(), N, IN, OUT);
    float *out = down(dOut, N * OUT), *ref = malloc(N * OUT * sizeof *ref);
    op_linear_forward_ref(ref, x, w, with_bias ? b : NULL, N, IN, OUT);
    snprintf(name, sizeof name, "linear forward N=%zu IN=%zu OUT=%zu bias=%d", N, IN, OUT, with_bias);
    ot_close_f(name, ref, out, N * OUT, 1e-5, 1e-4);

    op_linear_backward(ot_dev, ddx, ddw, with_bias ? ddb : cd_none(), dG, dX, dW, N, IN, OUT, acc);
    float *gx = down(ddx, N * IN), *gw = down(ddw, OUT * IN), *gb = down(ddb, OUT);
    /* reference backward (float ref) */
    float *rx = malloc(N * IN * sizeof *rx), *rw = malloc(OUT * IN * sizeof *rw), *rb = malloc(OUT * sizeof *rb);
    memcpy(rx, dx0, N * IN * sizeof *rx); memcpy(rw, dw0, OUT * IN * sizeof *rw); memcpy(rb, db0, OUT * sizeof *rb);
    op_linear_backward_ref(rx, rw, with_bias ? rb : NULL, G, x, w, N, IN, OUT, acc);
    snprintf(name, sizeof name, "linear backward dx acc=%d vs ref", acc);
    ot_close_f(name, rx, gx, N * IN, 1e-5, 1e-4);
    ot_close_f("linear backward dw (+=) vs ref", rw, gw, OUT * IN, 1e-5, 1e-4);
    if (with_bias) ot_close_f("linear backward db (+=) vs ref", rb, gb, OUT, 1e-5, 1e-4);
    else ot_close_f("linear backward without bias leaves db alone", db0, gb, OUT, 0, 0);

    /* finite differences in double: the device gradient minus its start value */
    double *xd = to_d(x, N * IN), *wd = to_d(w, OUT * IN), *bd = to_d(b, OUT);
    if (!with_bias) for (size_t o = 0; o < OUT; o++) bd[o] = 0;
    linear_ctx c = {G, xd, wd, bd, N, IN, OUT, 0};
    double *fx = malloc(N * IN * sizeof *fx), *fw = malloc(OUT * IN * sizeof *fw), *fb = malloc(OUT * sizeof *fb);
    double *ex = malloc(N * IN * sizeof *ex), *ew = malloc(OUT * IN * sizeof *ew), *eb = malloc(OUT * sizeof *eb);
    op_fd_grad(fx, xd, N * IN, 1e-3, linear_loss_cb, &c);
    op_fd_grad(fw, wd, OUT * IN, 1e-3, linear_loss_cb, &c);
    op_fd_grad(fb, bd, OUT, 1e-3, linear_loss_cb, &c);
    for (size_t i = 0; i < N * IN; i++) ex[i] = (double)gx[i] - (acc ? dx0[i] : 0.0);
    for (size_t i = 0; i < OUT * IN; i++) ew[i] = (double)gw[i] - dw0[i];
    for (size_t i = 0; i < OUT; i++) eb[i] = (double)gb[i] - db0[i];
    /* float GEMM error ~ 1e-6 * sqrt(K) * |terms|, plus the float subtraction of the start value */
    ot_close("linear dx vs finite differences", fx, ex, N * IN, 1e-4, 1e-4);
    ot_close("linear dw vs finite differences", fw, ew, OUT * IN, 1e-4, 1e-4);
    if (with_bias) ot_close("linear db vs finite differences", fb, eb, OUT, 1e-4, 1e-4);

    cd_mem all[] = {dX, dW, dBias, dOut, dG, ddx, ddw, ddb};
    for (int i = 0; i < 8; i++) release(all[i]);
    free(x); free(w); free(b); free(G); free(dx0); free(dw0); free(db0); free(out); free(ref);
    free(gx); free(gw); free(gb); free(rx); free(rw); free(rb); free(xd); free(wd); free(bd);
    free(fx); free(fw); free(fb); free(ex); free(ew); free(eb);
}

/* L = sum G * op(A) op(B) over batches, in double */
typedef struct { const float *G; double *A, *B; size_t batch, M, N, K; int ta, tb; } bmm_ctx;
static double bmm_loss_cb(void *cv) {
    bmm_ctx *c = cv;
    size_t M = c->M, N = c->N, K = c->K, lda = c->ta ? M : K, ldb = c->tb ? K : N;
    double L = 0;
    for (size_t b = 0; b < c->batch; b++) {
        const double *A = c->A + b * M * K, *B = c->B + b * K * N;
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) {
                double s = 0;
                for (size_t k = 0; k < K; k++)
                    s += (c->ta ? A[k * lda + i] : A[i * lda + k]) * (c->tb ? B[j * ldb + k] : B[k * ldb + j]);
                L += c->G[b * M * N + i * N + j] * s;
            }
    }
    return L;
}

static void test_bmm(size_t batch, size_t M, size_t N, size_t K, int ta, int tb, int acc_a, int acc_b) {
    char name[160], what[64];
    size_t nA = batch * M * K, nB = batch * K * N, nC = batch * M * N;
    float *A = rnd(nA), *B = rnd(nB), *G = rnd(nC), *dA0 = rnd(nA), *dB0 = rnd(nB);
    cd_mem mA = up(A, nA, 3), mB = up(B, nB, 17), mC = up(G, nC, 1), mG = up(G, nC, 6);
    cd_mem mdA = up(dA0, nA, 4), mdB = up(dB0, nB, 10);
    snprintf(what, sizeof what, "%c%c batch=%zu M=%zu N=%zu K=%zu", ta ? 'T' : 'N', tb ? 'T' : 'N', batch, M, N, K);

    op_bmm_forward(ot_dev, mC, mA, mB, batch, M, N, K, ta, tb);
    float *C = down(mC, nC), *R = malloc(nC * sizeof *R);
    op_bmm_forward_ref(R, A, B, batch, M, N, K, ta, tb);
    snprintf(name, sizeof name, "bmm forward %s", what);
    ot_close_f(name, R, C, nC, 1e-5, 1e-4);

    op_bmm_backward(ot_dev, mdA, mdB, mG, mA, mB, batch, M, N, K, ta, tb, acc_a, acc_b);
    float *gA = down(mdA, nA), *gB = down(mdB, nB);
    float *rA = malloc(nA * sizeof *rA), *rB = malloc(nB * sizeof *rB);
    memcpy(rA, dA0, nA * sizeof *rA); memcpy(rB, dB0, nB * sizeof *rB);
    op_bmm_backward_ref(rA, rB, G, A, B, batch, M, N, K, ta, tb, acc_a, acc_b);
    snprintf(name, sizeof name, "bmm backward dA acc=%d vs ref %s", acc_a, what);
    ot_close_f(name, rA, gA, nA, 1e-5, 1e-4);
    snprintf(name, sizeof name, "bmm backward dB acc=%d vs ref %s", acc_b, what);
    ot_close_f(name, rB, gB, nB, 1e-5, 1e-4);

    double *Ad = to_d(A, nA), *Bd = to_d(B, nB);
    bmm_ctx c = {G, Ad, Bd, batch, M, N, K, ta, tb};
    double *fA = malloc(nA * sizeof *fA), *fB = malloc(nB * sizeof *fB);
    double *eA = malloc(nA * sizeof *eA), *eB = malloc(nB * sizeof *eB);
    op_fd_grad(fA, Ad, nA, 1e-3, bmm_loss_cb, &c);
    op_fd_grad(fB, Bd, nB, 1e-3, bmm_loss_cb, &c);
    for (size_t i = 0; i < nA; i++) eA[i] = (double)gA[i] - (acc_a ? dA0[i] : 0.0);
    for (size_t i = 0; i < nB; i++) eB[i] = (double)gB[i] - (acc_b ? dB0[i] : 0.0);
    snprintf(name, sizeof name, "bmm dA vs finite differences %s", what);
    ot_close(name, fA, eA, nA, 1e-4, 1e-4);
    snprintf(name, sizeof name, "bmm dB vs finite differences %s", what);
    ot_close(name, fB, eB, nB, 1e-4, 1e-4);

    /* a gradient that is not asked for is not touched */
    if (ta == 0 && tb == 0) {
        cd_write(ot_dev, mdB, dB0, nB);
        op_bmm_backward(ot_dev, mdA, cd_none(), mG, mA, mB, batch, M, N, K, ta, tb, acc_a, acc_b);
        float *keep = down(mdB, nB);
        ot_close_f("bmm backward with dB none leaves dB alone", dB0, keep, nB, 0, 0);
        free(keep);
    }
    release(mA); release(mB); release(mC); release(mG); release(mdA); release(mdB);
    free(A); free(B); free(G); free(dA0); free(dB0); free(C); free(R); free(gA); free(gB); free(rA); free(rB);
    free(Ad); free(Bd); free(fA); free(fB); free(eA); free(eB);
}

/* op_linear_relu_* (the bias and the ReLU in the GEMM's epilogue on the row
 * kernels, in linear_bias_forward elsewhere) against op_linear_* with op_relu_*
 * around them: out, dx (added to), dw and db the same bits. */
static void test_linear_relu(size_t N, size_t IN, size_t OUT) {
    size_t nx = N * IN, nw = OUT * IN, no = N * OUT;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(OUT), *g = rnd(no), *dx0 = rnd(nx), *dw0 = rnd(nw), *db0 = rnd(OUT);
    float *got[2][4];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem mx = up(x, nx, 1), mw = up(w, nw, 2), mb = up(b, OUT, 3), mg = up(g, no, 4);
        cd_mem mo = op_upload(ot_dev, NULL, no, 5), mdx = up(dx0, nx, 6), mdw = up(dw0, nw, 7), mdb = up(db0, OUT, 8);
        if (fused) {
            op_linear_relu_forward(ot_dev, mo, mx, mw, mb, N, IN, OUT);
            op_linear_relu_backward(ot_dev, mdx, mdw, mdb, mg, mo, mx, mw, N, IN, OUT, 1);
        } else {
            cd_mem mh = op_upload(ot_dev, NULL, no, 0), mdh = op_upload(ot_dev, NULL, no, 0);
            op_linear_forward(ot_dev, mh, mx, mw, mb, N, IN, OUT);
            op_relu_forward(ot_dev, mo, mh, no);
            op_relu_backward(ot_dev, mdh, mg, mo, no, 0);
            op_linear_backward(ot_dev, mdx, mdw, mdb, mdh, mx, mw, N, IN, OUT, 1);
            release(mh); release(mdh);
        }
        got[fused][0] = down(mo, no);
        got[fused][1] = down(mdx, nx);
        got[fused][2] = down(mdw, nw);
        got[fused][3] = down(mdb, OUT);
        if (fused)
            t_ok(op_guards_intact(ot_dev, mo, no) && op_guards_intact(ot_dev, mdx, nx),
                 "linear+relu (%zu,%zu,%zu): nothing written outside the tensors", N, IN, OUT);
        release(mx); release(mw); release(mb); release(mg); release(mo); release(mdx); release(mdw); release(mdb);
    }
    size_t zeros = 0;
    for (size_t i = 0; i < no; i++) zeros += got[1][0][i] == 0.0f;
    t_ok(zeros > no / 10 && zeros < no - no / 10, "linear+relu (%zu,%zu,%zu): the ReLU cut %zu of %zu outputs", N, IN,
         OUT, zeros, no);
    /* and the fused gradients (less what they were added to) against finite
     * differences of sum G * relu(x w^T + b) in double (small sizes only: each
     * difference evaluates the whole loss) */
    double *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, OUT);
    int small = no * IN <= 100000;
    linear_ctx c = {g, xd, wd, bd, N, IN, OUT, 1};
    double *params[] = {xd, wd, bd};
    const float *init[] = {dx0, dw0, db0};
    static const char *grads[] = {"dx", "dw", "db"};
    for (int k = 0; k < 3 && small; k++) {
        size_t n = k == 0 ? nx : k == 1 ? nw : OUT;
        double *fd = op_zeros(n), *dev = op_zeros(n);
        op_fd_grad(fd, params[k], n, 1e-6, linear_loss_cb, &c);
        for (size_t i = 0; i < n; i++) dev[i] = (double)got[1][k + 1][i] - init[k][i];
        char name[160];
        snprintf(name, sizeof name, "linear+relu (%zu,%zu,%zu): %s vs finite differences", N, IN, OUT, grads[k]);
        ot_close(name, fd, dev, n, 1e-4, 1e-4);
        free(fd); free(dev);
    }
    free(xd); free(wd); free(bd);
    static const char *what[] = {"out", "dx +=", "dw +=", "db +="};
    size_t ns[] = {no, nx, nw, OUT};
    for (int k = 0; k < 4; k++) {
        char name[160];
        snprintf(name, sizeof name, "linear+relu (%zu,%zu,%zu): %s, fused = linear then ReLU, bit for bit", N, IN, OUT,
                 what[k]);
        ot_close_f(name, got[0][k], got[1][k], ns[k], 0, 0);
        free(got[0][k]);
        free(got[1][k]);
    }
    free(x); free(w); free(b); free(g); free(dx0); free(dw0); free(db0);
}

/* op_bmm_strided_* as attention uses it, against op_bmm_* on dense copies:
 * scores = q k^T per head, q (B, Lq, NH*hd) and k (B, Lk, NH*hd) read in place,
 * scores (B, NH, Lq, Lk) dense; then o = p v per head, p dense, v in place,
 * o (B, Lq, NH*hd) written in place. Forward and both gradients (dA added to,
 * dB written). The dense path is checked against references and finite
 * differences above. */
/* index of element (b, h, l, c) in the dense (B, NH, L, hd) layout and in (B, L, NH*hd) */
static size_t dense_at(size_t b, size_t h, size_t l, size_t c, size_t L, size_t NH, size_t hd) {
    return ((b * NH + h) * L + l) * hd + c;
}
static size_t heads_at(size_t b, size_t h, size_t l, size_t c, size_t L, size_t NH, size_t hd) {
    return (b * L + l) * NH * hd + h * hd + c;
}

/* dense (B, NH, L, hd) = t (B, L, NH*hd) permuted (to = 0), or t = dense permuted back (to = 1) */
static void permute_heads(float *dense, float *t, size_t B, size_t L, size_t NH, size_t hd, int to) {
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < NH; h++)
            for (size_t l = 0; l < L; l++)
                for (size_t c = 0; c < hd; c++) {
                    size_t di = dense_at(b, h, l, c, L, NH, hd), ti = heads_at(b, h, l, c, L, NH, hd);
                    if (to) t[ti] = dense[di];
                    else dense[di] = t[ti];
                }
}

/* One product of attention both ways, way 0 op_bmm_* on the dense copies, way
 * 1 op_bmm_strided_* with the layouts la, lb, lc: C = A op(B) (op by tb),
 * then its backward from G into dA and dB, which start as dA0, dB0 (added to
 * by acc_a, acc_b). A[w], Bm[w], G[w], dA0[w], dB0[w]: way w's operands;
 * got[w] = {C, dA, dB} as downloaded. */
static void heads_both_ways(float *got[2][3], float *const A[2], size_t nA, float *const Bm[2], size_t nB,
                            float *const G[2], size_t nC, float *const dA0[2], float *const dB0[2], size_t Bt,
                            size_t NH, size_t M, size_t N, size_t K, int tb, const op_bmm_layout *la,
                            const op_bmm_layout *lb, const op_bmm_layout *lc, int acc_a, int acc_b) {
    for (int strided = 0; strided < 2; strided++) {
        cd_mem ma = up(A[strided], nA, 1), mb = up(Bm[strided], nB, 2), mc = op_upload(ot_dev, NULL, nC, 3);
        cd_mem mg = up(G[strided], nC, 4), mda = up(dA0[strided], nA, 5), mdb = up(dB0[strided], nB, 6);
        if (strided) {
            op_bmm_strided_forward(ot_dev, mc, ma, mb, NH, Bt, M, N, K, 0, tb, la, lb, lc);
            op_bmm_strided_backward(ot_dev, mda, mdb, mg, ma, mb, NH, Bt, M, N, K, 0, tb, la, lb, lc, acc_a, acc_b);
        } else {
            op_bmm_forward(ot_dev, mc, ma, mb, Bt * NH, M, N, K, 0, tb);
            op_bmm_backward(ot_dev, mda, mdb, mg, ma, mb, Bt * NH, M, N, K, 0, tb, acc_a, acc_b);
        }
        got[strided][0] = down(mc, nC);
        got[strided][1] = down(mda, nA);
        got[strided][2] = down(mdb, nB);
        release(ma); release(mb); release(mc); release(mg); release(mda); release(mdb);
    }
}

static void test_bmm_heads(size_t B, size_t NH, size_t Lq, size_t Lk, size_t hd) {
    char name[200];
    size_t d = NH * hd, nq = B * Lq * d, nk = B * Lk * d, ns = B * NH * Lq * Lk;
    float *q = rnd(nq), *k = rnd(nk), *gs = rnd(ns), *dq0 = rnd(nq), *dk0 = rnd(nk);
    float *qh = malloc(nq * sizeof *qh), *kh = malloc(nk * sizeof *kh);
    permute_heads(qh, q, B, Lq, NH, hd, 0);
    permute_heads(kh, k, B, Lk, NH, hd, 0);
    float *dqh0 = malloc(nq * sizeof *dqh0);
    permute_heads(dqh0, dq0, B, Lq, NH, hd, 0);
    op_bmm_layout lq = {d, hd, Lq * d}, lk = {d, hd, Lk * d}, ls = {Lk, Lq * Lk, NH * Lq * Lk};
    /* the strided product and the dense one on the gathered heads */
    float *got[2][3];
    heads_both_ways(got, (float *[]){qh, q}, nq, (float *[]){kh, k}, nk, (float *[]){gs, gs}, ns,
                    (float *[]){dqh0, dq0}, (float *[]){dk0, dk0}, B, NH, Lq, Lk, hd, 1, &lq, &lk, &ls, 1, 0);
    float *back = malloc(nq * sizeof *back), *backk = malloc(nk * sizeof *backk);
    permute_heads(got[0][1], back, B, Lq, NH, hd, 1);    /* the dense result in the heads' places */
    permute_heads(got[0][2], backk, B, Lk, NH, hd, 1);
    snprintf(name, sizeof name, "bmm over heads in place, scores q k^T: B %zu NH %zu Lq %zu Lk %zu hd %zu", B, NH,
             Lq, Lk, hd);
    ot_close_f(name, got[0][0], got[1][0], ns, 0, 0);
    snprintf(name, sizeof name, "bmm over heads in place, dq += (the dense product's, bit for bit)");
    ot_close_f(name, back, got[1][1], nq, 0, 0);
    snprintf(name, sizeof name, "bmm over heads in place, dk (the dense product's, bit for bit)");
    ot_close_f(name, backk, got[1][2], nk, 0, 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) free(got[i][j]);
    free(back); free(backk);
    /* o = p v: p dense (B, NH, Lq, Lk), v (B, Lk, d) and o (B, Lq, d) in place */
    float *p = rnd(ns), *go = rnd(nq), *dv0 = rnd(nk), *goh = malloc(nq * sizeof *goh);
    permute_heads(goh, go, B, Lq, NH, hd, 0);
    float *dvh0 = malloc(nk * sizeof *dvh0);
    permute_heads(dvh0, dv0, B, Lk, NH, hd, 0);
    op_bmm_layout lp = {Lk, Lq * Lk, NH * Lq * Lk}, lv = {d, hd, Lk * d}, lo = {d, hd, Lq * d};
    heads_both_ways(got, (float *[]){p, p}, ns, (float *[]){kh, k}, nk, (float *[]){goh, go}, nq,
                    (float *[]){gs, gs}, (float *[]){dvh0, dv0}, B, NH, Lq, hd, Lk, 0, &lp, &lv, &lo, 0, 1);
    float *oback = malloc(nq * sizeof *oback), *vback = malloc(nk * sizeof *vback);
    permute_heads(got[0][0], oback, B, Lq, NH, hd, 1);
    permute_heads(got[0][2], vback, B, Lk, NH, hd, 1);
    ot_close_f("bmm over heads in place, o = p v written in place (the dense product's, bit for bit)", oback,
               got[1][0], nq, 0, 0);
    ot_close_f("bmm over heads in place, dp (the dense product's, bit for bit)", got[0][1], got[1][1], ns, 0, 0);
    ot_close_f("bmm over heads in place, dv += (the dense product's, bit for bit)", vback, got[1][2], nk, 0, 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) free(got[i][j]);
    free(oback); free(vback);
    free(q); free(k); free(gs); free(dq0); free(dk0); free(qh); free(kh); free(dqh0);
    free(p); free(go); free(dv0); free(goh); free(dvh0);
}

/* The GPU tile kernels' epilogue (cd_gemm_bias_nt: the bias and the ReLU in
 * the product's stores, or in gemm_split_sum when k is split) against the
 * same product followed by linear_bias_forward, bit for bit. */
static void test_tile_epilogue(size_t N, size_t IN, size_t OUT, int nsplit) {
    int old_kernels = cd_gemm_set_kernels(CD_GEMM_TILES);
    cd_gemm_set_tiles(CD_TILE_SMALL, nsplit);
    size_t nx = N * IN, nw = OUT * IN, no = N * OUT;
    float *x = rnd(nx), *w = rnd(nw), *b = rnd(OUT);
    cd_mem mx = up(x, nx, 1), mw = up(w, nw, 2), mb = up(b, OUT, 3);
    for (int relu = 0; relu < 2; relu++) {
        cd_mem mo = op_upload(ot_dev, NULL, no, 5), mr = op_upload(ot_dev, NULL, no, 6);
        if (relu) op_linear_relu_forward(ot_dev, mo, mx, mw, mb, N, IN, OUT);
        else op_linear_forward(ot_dev, mo, mx, mw, mb, N, IN, OUT);
        cd_gemm(ot_dev, 0, 1, N, OUT, IN, 1.0f, mx, IN, mw, IN, 0.0f, mr, OUT);
        CD_LAUNCH2(ot_dev, "linear_bias_forward", OUT, N, KM(mr), KM(mb), KUL(N), KUL(OUT), KI(relu));
        float *got = down(mo, no), *ref = down(mr, no);
        char name[160];
        snprintf(name, sizeof name, "tile kernels' epilogue, %s (%zu,%zu,%zu), k in %d part%s: the product then "
                 "linear_bias_forward, bit for bit", relu ? "bias + ReLU" : "bias", N, IN, OUT, nsplit,
                 nsplit > 1 ? "s" : "");
        ot_close_f(name, ref, got, no, 0, 0);
        t_ok(op_guards_intact(ot_dev, mo, no), "%s: nothing written outside the output", name);
        free(got); free(ref);
        release(mo); release(mr);
    }
    release(mx); release(mw); release(mb);
    free(x); free(w); free(b);
    cd_gemm_set_tiles(0, 0);
    cd_gemm_set_kernels(old_kernels);
}

int main(void) {
    ot_open();
    t_seed(42);
    test_tile_epilogue(37, 29, 23, 1);      /* the scalar tails */
    test_tile_epilogue(64, 128, 512, 1);    /* an FFN's first layer: whole float4 stores */
    test_tile_epilogue(20, 300, 70, 3);     /* k in parts: the epilogue in gemm_split_sum */
    /* the bias gradient in both shapes: a column per work-item (CPUs) and the
     * tiled column reduction (GPUs) */
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        test_linear(37, 29, 23, 1, 0);
        test_linear(5, 70, 3, 1, 1);
        test_linear(1, 1, 1, 0, 1);
        test_linear(65, 33, 130, 0, 0);
        test_linear(300, 4, 9, 1, 1);
        ops_set_row_kernels(old);
    }
    int t = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++, t++)
            test_bmm(3, 13, 11, 7 + t, ta, tb, t & 1, (t >> 1) ^ 1);
    test_bmm(2, 33, 65, 40, 0, 1, 0, 0);     /* larger than one 32-wide tile */
    test_bmm(1, 17, 9, 5, 1, 0, 1, 1);       /* batch 1 goes through cd_gemm */
    /* bmm_small (K <= 32, M, N <= 64; GPUs, and A^T B^T on CPUs) at attention's
     * sizes in DETR (batch * heads, 20 queries, 16 tokens, head width 32), every
     * transpose, and the K = 32 / 33 boundary between bmm_small and CLBlast; then
     * the same through the products' path on this device (cl/blas.cl on CPUs) */
    for (int own = 0; own < 2; own++) {
        int old = cd_gemm_set_kernels(own ? -1 : 0);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) test_bmm(32, 20, 16, 32, ta, tb, ta, tb);
        test_bmm(4, 20, 20, 33, 0, 1, 1, 0);
        test_bmm(4, 64, 64, 32, 1, 0, 0, 1);
        test_linear_relu(37, 29, 23);        /* the epilogue's scalar tails */
        test_linear_relu(64, 128, 512);      /* an FFN's first layer: whole 4 x 4 blocks */
        test_bmm_heads(2, 4, 20, 16, 32);    /* bmm_small on GPUs, the row kernels on CPUs */
        test_bmm_heads(3, 2, 9, 70, 8);      /* Lk past bmm_small's 64: the GEMM paths */
        cd_gemm_set_kernels(old);
    }
    ot_cases("linear");
    return ot_finish();
}
