/* Max pool on the device against the host reference: several k/s/p, H != W,
 * ties (the first maximum in row-major window order wins), all-negative and
 * -inf inputs (padding must act as -inf, not 0), NaN (wins, as PyTorch),
 * offsets, acc 0 and 1; and the reference's backward against finite differences. */
#include "op_test.h"

/* Exact equality, with NaN == NaN and inf == inf of the same sign. */
static int same(double a, double b) { return a == b || (isnan(a) && isnan(b)); }
static void check_exact(const char *name, const double *ref, const double *got, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!same(ref[i], got[i])) {
            if (bad < 5) t_diag("%s[%zu]: ref %.9g got %.9g", name, i, ref[i], got[i]);
            bad++;
        }
    t_ok(bad == 0, "%s (n=%zu, exact, %zu differ)", name, n, bad);
}

/* kind 0: continuous values; 1: integers in [-4, -1] (many ties, all < 0, so a
 * zero padding would show);
 * 2: like 1 with -inf cells and a NaN */
static void check_pool(size_t B, size_t C, size_t H, size_t W, size_t k, size_t s, size_t p, int kind, int acc) {
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p), nx = B * C * H * W, no = B * C * Ho * Wo;
    double *x = ot_randv(nx, -1, 1), *dout = ot_randv(no, -1, 1), *dx0 = ot_randv(nx, -1, 1);
    if (kind >= 1)
        for (size_t i = 0; i < nx; i++) x[i] = floor(t_uniform(-4, 0));
    if (kind == 2) {
        for (size_t i = 0; i < nx; i += 3) x[i] = -INFINITY;
        for (size_t i = 0; i < H * W; i++) x[i] = -INFINITY;   /* a whole plane of -inf */
        x[nx / 2] = NAN;
    }
    double *out = op_zeros(no), *arg = op_zeros(no), *dx = op_zeros(nx);
    maxpool_forward_ref(out, arg, x, B, C, H, W, k, s, p);
    maxpool_backward_ref(dx, dout, arg, B, C, H, W, k, s, p);
    for (size_t i = 0; i < nx; i++) dx[i] += acc ? dx0[i] : 0;
    cd_mem mx = op_upload(ot_dev, x, nx, 3), mo = op_upload(ot_dev, NULL, no, 5), ma = op_upload(ot_dev, NULL, no, 7), md = op_upload(ot_dev, dout, no, 1),
           mdx = op_upload(ot_dev, acc ? dx0 : NULL, nx, 9);
    op_maxpool_forward(ot_dev, mo, ma, mx, B, C, H, W, k, s, p);
    op_maxpool_backward(ot_dev, mdx, md, ma, B, C, H, W, k, s, p, acc);
    double *go = op_download(ot_dev, mo, no), *ga = op_download(ot_dev, ma, no), *gdx = op_download(ot_dev, mdx, nx);
    static const char *kinds[] = {"continuous", "ties, all < 0", "ties, -inf and NaN"};
    char t[200];
    snprintf(t, sizeof t, "B%zu C%zu %zux%zu k%zu s%zu p%zu %s acc%d: out", B, C, H, W, k, s, p, kinds[kind], acc);
    check_exact(t, out, go, no);
    check_exact("  ... argmax", arg, ga, no);
    /* dx sums at most ceil(k/s)^2 values of dout: a few float roundings */
    ot_close("  ... dx", dx, gdx, nx, 1e-6, 1e-6);
    t_ok(op_guards_intact(ot_dev, mo, no) && op_guards_intact(ot_dev, ma, no) && op_guards_intact(ot_dev, mdx, nx),
         "  ... nothing written outside the tensors");
    cd_mem ms[] = {mx, mo, ma, md, mdx};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, dout, dx0, out, arg, dx, go, ga, gdx};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* maxpool_backward_k3s2_rows against maxpool_backward_k3s2 on the same
 * forward: the same bits (it adds the same terms in the same order). */
static void check_rows_same_bits(size_t B, size_t C, size_t H, size_t W, int acc) {
    size_t Ho = pool_out(H, 3, 2, 1), Wo = pool_out(W, 3, 2, 1), nx = B * C * H * W, no = B * C * Ho * Wo;
    double *x = ot_randv(nx, -1, 1), *dout = ot_randv(no, -1, 1), *dx0 = ot_randv(nx, -1, 1), *got[2];
    for (size_t i = 0; i < nx; i += 7) x[i] = x[i + 1 < nx ? i + 1 : i];   /* some ties */
    cd_mem mx = op_upload(ot_dev, x, nx, 3), mo = op_upload(ot_dev, NULL, no, 5), ma = op_upload(ot_dev, NULL, no, 7);
    cd_mem md = op_upload(ot_dev, dout, no, 1);
    op_maxpool_forward(ot_dev, mo, ma, mx, B, C, H, W, 3, 2, 1);
    for (int rows = 0; rows < 2; rows++) {
        cd_mem mdx = op_upload(ot_dev, acc ? dx0 : NULL, nx, 9);
        int old = op_maxpool_set_backward_rows(rows ? -1 : 0);
        op_maxpool_backward(ot_dev, mdx, md, ma, B, C, H, W, 3, 2, 1, acc);
        op_maxpool_set_backward_rows(old);
        got[rows] = op_download(ot_dev, mdx, nx);
        if (rows) t_ok(op_guards_intact(ot_dev, mdx, nx), "  ... row kernel: nothing written outside dx");
        cd_free(ot_dev, mdx);
    }
    char t[200];
    snprintf(t, sizeof t, "B%zu C%zu %zux%zu k3 s2 p1 acc%d: dx of the row kernel = the element kernel's bits", B, C,
             H, W, acc);
    check_exact(t, got[0], got[1], nx);
    cd_mem ms[] = {mx, mo, ma, md};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, dout, dx0, got[0], got[1]};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

typedef struct { double *x, *G, *out; size_t B, C, H, W, k, s, p, no; } pool_ctx;
static double pool_loss(void *v) {
    pool_ctx *c = v;
    maxpool_forward_ref(c->out, NULL, c->x, c->B, c->C, c->H, c->W, c->k, c->s, c->p);
    return op_dot(c->G, c->out, c->no);
}

static void check_fd(size_t B, size_t C, size_t H, size_t W, size_t k, size_t s, size_t p) {
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p), nx = B * C * H * W, no = B * C * Ho * Wo;
    pool_ctx c = {ot_randv(nx, -1, 1), ot_randv(no, -1, 1), op_zeros(no), B, C, H, W, k, s, p, no};
    double *arg = op_zeros(no), *dx = op_zeros(nx), *fx = op_zeros(nx);
    maxpool_forward_ref(c.out, arg, c.x, B, C, H, W, k, s, p);
    maxpool_backward_ref(dx, c.G, arg, B, C, H, W, k, s, p);
    /* with a step far below the gaps between these distinct random values the
     * step never changes which cell is the maximum: L is linear there and the
     * difference exact up to double rounding (~1e-16 |L| / h) */
    op_fd_grad(fx, c.x, nx, 1e-7, pool_loss, &c);
    char t[160];
    snprintf(t, sizeof t, "reference backward vs finite differences, k%zu s%zu p%zu: dx", k, s, p);
    ot_close(t, fx, dx, nx, 1e-6, 1e-6);
    free(c.x); free(c.G); free(c.out); free(arg); free(dx); free(fx);
}

int main(void) {
    ot_open();
    t_seed(11);
    check_fd(2, 2, 7, 6, 3, 2, 1);
    check_fd(1, 3, 5, 8, 2, 2, 0);

    check_pool(3, 5, 9, 7, 3, 2, 1, 0, 0);    /* ResNet's stem pool */
    check_pool(3, 5, 9, 7, 3, 2, 1, 1, 1);
    check_pool(2, 3, 11, 14, 3, 2, 1, 2, 0);
    check_pool(1, 17, 8, 5, 2, 2, 0, 1, 0);
    check_pool(2, 3, 10, 7, 3, 1, 1, 1, 1);   /* overlapping windows, every cell in up to 9 */
    check_pool(3, 2, 13, 9, 5, 3, 2, 2, 1);
    check_pool(1, 3, 1, 1, 3, 2, 1, 0, 0);    /* a 1x1 input: the window is mostly padding */
    /* maxpool_forward_k3s2p1_v8 (k 3 s 2 p 1, W even, Wo a multiple of 8): one and
     * two 8-output work-items per row, ties, -inf planes and a NaN */
    check_pool(2, 3, 9, 16, 3, 2, 1, 0, 0);
    check_pool(2, 3, 9, 16, 3, 2, 1, 1, 1);
    check_pool(1, 4, 6, 32, 3, 2, 1, 2, 0);
    check_pool(2, 2, 32, 32, 3, 2, 1, 2, 1);
    /* maxpool_backward_k3s2_rows (W = 2*Wo, Wo a multiple of 16): one and two
     * 16-output blocks a row, odd and even H, the last block's window q+1 */
    check_pool(2, 3, 9, 32, 3, 2, 1, 0, 0);
    check_pool(2, 3, 9, 32, 3, 2, 1, 2, 1);
    check_pool(1, 4, 6, 64, 3, 2, 1, 1, 0);
    check_pool(2, 2, 64, 64, 3, 2, 1, 0, 1);
    check_rows_same_bits(2, 3, 9, 32, 0);
    check_rows_same_bits(1, 4, 6, 64, 1);
    check_rows_same_bits(8, 4, 64, 64, 0);

    ot_cases("pool");
    return ot_finish();
}
