/* conv2d on the device against the double-precision host reference over a sweep
 * of shapes (kernel 1/3/7 and non-square, stride 1/2, padding 0/1/3, dilation
 * 1/2, odd channel counts, batch 1 and 3, H != W, with and without bias, the
 * direct 1x1 path, groups of images with a remainder, im2col / col2im in both
 * their CPU and GPU shapes), at odd buffer offsets,
 * acc 0 and 1; and the reference's backward against central finite differences. */
#include "op_test.h"

/* Float32 sums of n products of values in [-1, 1]: the rounding error grows
 * like sqrt(n) * 2^-24 * |terms|; 4e-6 * sqrt(n) leaves ~10x above what PoCL
 * and CLBlast show (printed as max abs err). */
static double sum_tol(size_t n) { return 4e-6 * sqrt((double)n); }

/* 1: the forward keeps its im2col columns in a buffer of their own and the
 * backward's weight gradient reads them (op_conv2d_forward_keep) */
static int keep_cols;

static void check_conv(const char *name, conv_shape s, int bias, int acc) {
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s), P = Ho * Wo, CRS = s.C * s.R * s.S;
    size_t nx = s.B * s.C * s.H * s.W, nw = s.K * CRS, no = s.B * s.K * P;
    double *x = ot_randv(nx, -1, 1), *w = ot_randv(nw, -1, 1), *b = ot_randv(s.K, -1, 1), *dout = ot_randv(no, -1, 1);
    double *dx0 = ot_randv(nx, -1, 1), *dw0 = ot_randv(nw, -1, 1), *db0 = ot_randv(s.K, -1, 1);
    double *out = op_zeros(no), *dx = op_zeros(nx), *dw = op_zeros(nw), *db = op_zeros(s.K);
    conv2d_forward_ref(out, x, w, bias ? b : NULL, &s);
    conv2d_backward_ref(dx, dw, db, dout, x, w, &s);
    for (size_t i = 0; i < nx; i++) dx[i] += acc ? dx0[i] : 0;
    for (size_t i = 0; i < nw; i++) dw[i] += dw0[i];      /* parameter gradients add */
    for (size_t i = 0; i < s.K; i++) db[i] += db0[i];

    cd_mem mx = op_upload(ot_dev, x, nx, 7), mw = op_upload(ot_dev, w, nw, 3), mb = op_upload(ot_dev, b, s.K, 11), mo = op_upload(ot_dev, NULL, no, 5);
    cd_mem md = op_upload(ot_dev, dout, no, 9), mdx = op_upload(ot_dev, acc ? dx0 : NULL, nx, 1), mdw = op_upload(ot_dev, dw0, nw, 17), mdb = op_upload(ot_dev, db0, s.K, 2);
    size_t nk = keep_cols ? op_conv2d_keep_floats(ot_dev, &s) : 0;
    cd_mem mk = nk ? op_upload(ot_dev, NULL, nk, 13) : cd_none();
    size_t group = op_conv2d_forward_keep(ot_dev, mo, mx, mw, bias ? mb : cd_none(), &s, mk);
    op_conv2d_backward_kept(ot_dev, mdx, mdw, bias ? mdb : cd_none(), md, mx, mw, mk, group, &s, acc);
    if (nk) t_ok(op_guards_intact(ot_dev, mk, nk), "%s kept columns: nothing written outside them", name);
    if (nk) cd_free(ot_dev, mk);
    double *go = op_download(ot_dev, mo, no), *gdx = op_download(ot_dev, mdx, nx), *gdw = op_download(ot_dev, mdw, nw), *gdb = op_download(ot_dev, mdb, s.K);

    char what[256];
    snprintf(what, sizeof what, "%s B%zu C%zu %zux%zu K%zu %zux%zu s%zu p%zu d%zu%s acc%d%s", name, s.B, s.C, s.H,
             s.W, s.K, s.R, s.S, s.stride, s.pad, s.dil, bias ? " bias" : "", acc, nk ? " kept columns" : "");
    char t[300];
    size_t npix = s.B * P;   /* the weight-gradient reduction length */
    snprintf(t, sizeof t, "%s: out", what);
    ot_close(t, out, go, no, sum_tol(CRS + 1), sum_tol(CRS + 1));
    snprintf(t, sizeof t, "%s: dx", what);
    ot_close(t, dx, gdx, nx, sum_tol(s.K * s.R * s.S + 1), sum_tol(s.K * s.R * s.S + 1));
    snprintf(t, sizeof t, "%s: dw +=", what);
    ot_close(t, dw, gdw, nw, sum_tol(npix), sum_tol(npix));
    if (bias) {
        snprintf(t, sizeof t, "%s: db +=", what);
        ot_close(t, db, gdb, s.K, sum_tol(npix), sum_tol(npix));
    } else {
        ot_close("db untouched without bias", db0, gdb, s.K, 0, 0);
    }
    t_ok(op_guards_intact(ot_dev, mo, no) && op_guards_intact(ot_dev, mdx, nx) && op_guards_intact(ot_dev, mdw, nw) && op_guards_intact(ot_dev, mdb, s.K),
         "%s: nothing written outside the tensors", what);

    cd_mem ms[] = {mx, mw, mb, mo, md, mdx, mdw, mdb};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, w, b, dout, dx0, dw0, db0, out, dx, dw, db, go, gdx, gdw, gdb};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The backward reads the kept columns rather than building its own: with
 * them zeroed after the forward, the weight gradient adds nothing. */
static void check_kept_columns_are_read(conv_shape s) {
    size_t P = conv_out_h(&s) * conv_out_w(&s), nx = s.B * s.C * s.H * s.W, nw = s.K * s.C * s.R * s.S;
    size_t no = s.B * s.K * P, nk = op_conv2d_keep_floats(ot_dev, &s);
    double *x = ot_randv(nx, -1, 1), *w = ot_randv(nw, -1, 1), *dout = ot_randv(no, -1, 1), *dw0 = ot_randv(nw, -1, 1);
    cd_mem mx = op_upload(ot_dev, x, nx, 0), mw = op_upload(ot_dev, w, nw, 0), mo = op_upload(ot_dev, NULL, no, 0);
    cd_mem md = op_upload(ot_dev, dout, no, 0), mdw = op_upload(ot_dev, dw0, nw, 0), mk = op_upload(ot_dev, NULL, nk, 0);
    size_t group = op_conv2d_forward_keep(ot_dev, mo, mx, mw, cd_none(), &s, mk);
    cd_fill(ot_dev, mk, 0.0f, nk);
    op_conv2d_backward_kept(ot_dev, cd_none(), mdw, cd_none(), md, mx, mw, mk, group, &s, 0);
    double *gdw = op_download(ot_dev, mdw, nw);
    ot_close("kept columns zeroed after the forward: the weight gradient adds nothing", dw0, gdw, nw, 0, 0);
    cd_mem ms[] = {mx, mw, mo, md, mdw, mk};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, w, dout, dw0, gdw};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The implicit 3x3 path (forward and weight gradient from a padded copy of
 * the input, dx as the conv of the padded dout with flipped weights) against
 * the im2col path on the same inputs: out, dw and db the same bits, with the
 * columns kept or not; dx sums its products in another order (k, r, s in one
 * sum, not 9 sums over k gathered by col2im), so within the float tolerance.
 * The stem's stride-2 path (forward and weight gradient from the
 * column-parity split; dx through im2col's col2im either way): all four the
 * same bits. */
static void check_implicit_same_bits(const char *name, conv_shape s, int bias, int acc) {
    size_t P = conv_out_h(&s) * conv_out_w(&s), nx = s.B * s.C * s.H * s.W, no = s.B * s.K * P;
    size_t nw = s.K * s.C * s.R * s.S;
    int stem = s.stride == 2;
    size_t nkeep = stem ? s.B * s.C * 2 * (2 * conv_out_h(&s) + s.R - 2) * (conv_out_w(&s) + (s.S - 1) / 2)
                        : s.B * s.C * (s.H + 2) * (s.W + 2);
    double *x = ot_randv(nx, -1, 1), *w = ot_randv(nw, -1, 1), *b = ot_randv(s.K, -1, 1), *dout = ot_randv(no, -1, 1);
    double *dx0 = ot_randv(nx, -1, 1), *dw0 = ot_randv(nw, -1, 1), *db0 = ot_randv(s.K, -1, 1);
    double *got[2][4];
    int path = op_conv2d_set_dw_path(1);
    for (int kept = 0; kept < 2; kept++) {
        for (int imp = 0; imp < 2; imp++) {
            int old = op_conv2d_set_implicit(imp);
            cd_mem mx = op_upload(ot_dev, x, nx, 3), mw = op_upload(ot_dev, w, nw, 5), mb = op_upload(ot_dev, b, s.K, 1);
            cd_mem mo = op_upload(ot_dev, NULL, no, 7), md = op_upload(ot_dev, dout, no, 2);
            cd_mem mdx = op_upload(ot_dev, dx0, nx, 9), mdw = op_upload(ot_dev, dw0, nw, 4), mdb = op_upload(ot_dev, db0, s.K, 6);
            size_t nk = kept ? op_conv2d_keep_floats(ot_dev, &s) : 0;
            cd_mem mk = nk ? op_upload(ot_dev, NULL, nk, 11) : cd_none();
            size_t group = op_conv2d_forward_keep(ot_dev, mo, mx, mw, bias ? mb : cd_none(), &s, mk);
            op_conv2d_backward_kept(ot_dev, mdx, mdw, bias ? mdb : cd_none(), md, mx, mw, mk, group, &s, acc);
            if (imp && kept)
                t_ok(nk == nkeep && op_guards_intact(ot_dev, mk, nk),
                     "%s: the implicit path keeps the %s input (%zu floats), nothing written outside it", name,
                     stem ? "phase-split" : "padded", nk);
            got[imp][0] = op_download(ot_dev, mo, no);
            got[imp][1] = op_download(ot_dev, mdx, nx);
            got[imp][2] = op_download(ot_dev, mdw, nw);
            got[imp][3] = op_download(ot_dev, mdb, s.K);
            if (nk) cd_free(ot_dev, mk);
            cd_mem ms[] = {mx, mw, mb, mo, md, mdx, mdw, mdb};
            for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
            op_conv2d_set_implicit(old);
        }
        const char *what[] = {"out", "dx", "dw +=", "db +="};
        size_t n[] = {no, nx, nw, s.K};
        for (int t = 0; t < 4; t++) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s B%zu C%zu %zux%zu K%zu%s acc%d%s: %s, implicit %s im2col's", name, s.B,
                     s.C, s.H, s.W, s.K, bias ? " bias" : "", acc, kept ? " kept" : "", what[t],
                     t == 1 && !stem ? "close to" : "the same bits as");
            double tol = t == 1 && !stem ? 2 * sum_tol(s.K * 9 + 1) : 0;
            ot_close(msg, got[0][t], got[1][t], n[t], tol, tol);
            free(got[0][t]);
            free(got[1][t]);
        }
    }
    op_conv2d_set_dw_path(path);
    double *hs[] = {x, w, b, dout, dx0, dw0, db0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The GPU tile kernels reading the operands in place (cd_gemm_conv) against
 * the same kernels on im2col's columns and packed copies: the same bits for
 * out, dx and dw when the columns path takes the batch in one group (the
 * products then have the same k order and parts); nsplit forces k in parts.
 * The tile path in its GPU shape (the GEMM kernels, the element-wise im2col
 * and col2im). */
static long conv_launches(int which) {   /* 0 forward, 1 dw, 2 dx: both tile sizes */
    static const char *const names[2][3] = {
        {"gemm_tile_small_conv_fw", "gemm_tile_small_conv_dw", "gemm_tile_small_conv_dx"},
        {"gemm_tile_large_conv_fw", "gemm_tile_large_conv_dw", "gemm_tile_large_conv_dx"}};
    return cd_kernel_launches(ot_dev, names[0][which]) + cd_kernel_launches(ot_dev, names[1][which]);
}

static void check_tile_operands_same_bits(const char *name, conv_shape s, int acc, int nsplit) {
    size_t P = conv_out_h(&s) * conv_out_w(&s), nx = s.B * s.C * s.H * s.W, no = s.B * s.K * P;
    size_t nw = s.K * s.C * s.R * s.S;
    double *x = ot_randv(nx, -1, 1), *w = ot_randv(nw, -1, 1), *dout = ot_randv(no, -1, 1);
    double *dx0 = ot_randv(nx, -1, 1), *dw0 = ot_randv(nw, -1, 1);
    double *got[2][3];
    long launched[3];
    for (int q = 0; q < 3; q++) launched[q] = conv_launches(q);
    int kernels = cd_gemm_set_kernels(CD_GEMM_TILES), path = op_conv2d_set_dw_path(0);
    int movers = op_conv2d_set_cpu_movers(0), imp3 = op_conv2d_set_implicit(0);
    cd_gemm_set_tiles(0, nsplit);
    for (int in_place = 0; in_place < 2; in_place++) {
        int old = op_conv2d_set_tile_operands(in_place);
        cd_mem mx = op_upload(ot_dev, x, nx, 3), mw = op_upload(ot_dev, w, nw, 5), mo = op_upload(ot_dev, NULL, no, 7);
        cd_mem md = op_upload(ot_dev, dout, no, 2), mdx = op_upload(ot_dev, dx0, nx, 9);
        cd_mem mdw = op_upload(ot_dev, dw0, nw, 4);
        size_t group = op_conv2d_forward_keep(ot_dev, mo, mx, mw, cd_none(), &s, cd_none());
        op_conv2d_backward_kept(ot_dev, mdx, mdw, cd_none(), md, mx, mw, cd_none(), group, &s, acc);
        t_ok(op_guards_intact(ot_dev, mo, no) && op_guards_intact(ot_dev, mdx, nx) && op_guards_intact(ot_dev, mdw, nw),
             "%s, operands %s: nothing written outside the tensors", name, in_place ? "in place" : "as columns");
        if (in_place) {   /* the in-place kernels ran */
            int seen = 0;
            for (int q = 0; q < 3; q++)
                seen |= (conv_launches(q) > launched[q]) << q;
            t_ok(seen == 7, "%s: the tile kernels' conv_fw, conv_dw and conv_dx ran (%d)", name, seen);
        }
        got[in_place][0] = op_download(ot_dev, mo, no);
        got[in_place][1] = op_download(ot_dev, mdx, nx);
        got[in_place][2] = op_download(ot_dev, mdw, nw);
        cd_mem ms[] = {mx, mw, mo, md, mdx, mdw};
        for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
        op_conv2d_set_tile_operands(old);
    }
    cd_gemm_set_tiles(0, 0);
    op_conv2d_set_implicit(imp3);
    op_conv2d_set_cpu_movers(movers);
    op_conv2d_set_dw_path(path);
    cd_gemm_set_kernels(kernels);
    const char *what[] = {"out", "dx", "dw +="};
    size_t n[] = {no, nx, nw};
    for (int t = 0; t < 3; t++) {
        char msg[300];
        snprintf(msg, sizeof msg, "tile kernels, %s B%zu C%zu %zux%zu K%zu %zux%zu s%zu p%zu d%zu acc%d, k in %d "
                 "part(s): %s, operands in place = as columns, bit for bit", name, s.B, s.C, s.H, s.W, s.K, s.R, s.S,
                 s.stride, s.pad, s.dil, acc, nsplit ? nsplit : 1, what[t]);
        ot_close(msg, got[0][t], got[1][t], n[t], 0, 0);
        free(got[0][t]);
        free(got[1][t]);
    }
    double *hs[] = {x, w, dout, dx0, dw0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* col2im in its CPU shape against the work-item-per-element kernel on the same
 * dcol: the same bits (conv_col2im_k3s2p1_cpu, _cpu4, conv_col2im_k3s1p1_w4
 * and conv_col2im_k1s2_cpu add the element kernels' terms in their order). */
static void check_col2im_same_bits(conv_shape s, int acc) {
    size_t P = conv_out_h(&s) * conv_out_w(&s), nx = s.B * s.C * s.H * s.W, nc = s.C * s.R * s.S * s.B * P;
    double *dcol = ot_randv(nc, -1, 1), *dx0 = ot_randv(nx, -1, 1), *got[2];
    cd_mem mc = op_upload(ot_dev, dcol, nc, 3);
    for (int cpu = 0; cpu < 2; cpu++) {
        cd_mem mdx = op_upload(ot_dev, dx0, nx, 5);
        int old = op_conv2d_set_cpu_movers(cpu);
        op_conv2d_col2im(ot_dev, mdx, mc, &s, acc);
        op_conv2d_set_cpu_movers(old);
        got[cpu] = op_download(ot_dev, mdx, nx);
        if (cpu) t_ok(op_guards_intact(ot_dev, mdx, nx), "col2im CPU shape: nothing written outside dx");
        cd_free(ot_dev, mdx);
    }
    char t[160];
    snprintf(t, sizeof t, "col2im %zux%zu/%zu pad %zu on B%zu C%zu %zux%zu acc%d: CPU shape = element kernel, bit for bit",
             s.R, s.S, s.stride, s.pad, s.B, s.C, s.H, s.W, acc);
    ot_close(t, got[0], got[1], nx, 0, 0);
    cd_free(ot_dev, mc);
    free(dcol); free(dx0); free(got[0]); free(got[1]);
}

/* ---- finite differences of the reference --------------------------------- */

typedef struct { const conv_shape *s; double *x, *w, *b, *G, *out; } conv_ctx;
static double conv_loss(void *p) {   /* L = sum G * conv(x, w) + b */
    conv_ctx *c = p;
    conv2d_forward_ref(c->out, c->x, c->w, c->b, c->s);
    return op_dot(c->G, c->out, c->s->B * c->s->K * conv_out_h(c->s) * conv_out_w(c->s));
}

static void check_fd(conv_shape s) {
    size_t no = s.B * s.K * conv_out_h(&s) * conv_out_w(&s), nx = s.B * s.C * s.H * s.W, nw = s.K * s.C * s.R * s.S;
    conv_ctx c = {&s, ot_randv(nx, -1, 1), ot_randv(nw, -1, 1), ot_randv(s.K, -1, 1), ot_randv(no, -1, 1), op_zeros(no)};
    double *dx = op_zeros(nx), *dw = op_zeros(nw), *db = op_zeros(s.K);
    double *fx = op_zeros(nx), *fw = op_zeros(nw), *fb = op_zeros(s.K);
    conv2d_backward_ref(dx, dw, db, c.G, c.x, c.w, &s);
    /* L is linear in each of x, w, b: central differences are exact up to
     * double rounding of L (~1e-16 * |L| / h). */
    op_fd_grad(fx, c.x, nx, 1e-3, conv_loss, &c);
    op_fd_grad(fw, c.w, nw, 1e-3, conv_loss, &c);
    op_fd_grad(fb, c.b, s.K, 1e-3, conv_loss, &c);
    char t[200];
    snprintf(t, sizeof t, "reference backward vs finite differences, %zux%zu s%zu p%zu d%zu: dx", s.R, s.S,
             s.stride, s.pad, s.dil);
    ot_close(t, fx, dx, nx, 1e-9, 1e-9);
    ot_close("  ... dw", fw, dw, nw, 1e-9, 1e-9);
    ot_close("  ... db", fb, db, s.K, 1e-9, 1e-9);
    double *hs[] = {c.x, c.w, c.b, c.G, c.out, dx, dw, db, fx, fw, fb};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

int main(void) {
    ot_open();
    t_seed(7);
    /* the im2col paths below; the implicit 3x3 path has its own section */
    int implicit = op_conv2d_set_implicit(0);

    check_fd((conv_shape){.B = 2, .C = 3, .H = 6, .W = 5, .K = 2, .R = 3, .S = 3, .stride = 2, .pad = 1, .dil = 2});
    check_fd((conv_shape){.B = 1, .C = 2, .H = 5, .W = 7, .K = 3, .R = 2, .S = 3, .stride = 1, .pad = 0, .dil = 1});

    /* name, shape (B, C, H, W, K, R, S, stride, pad, dil), bias, acc */
    check_conv("3x3", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("3x3/2", (conv_shape){1, 17, 11, 8, 5, 3, 3, 2, 1, 1}, 0, 1);
    check_conv("3x3 dil 2", (conv_shape){3, 3, 10, 13, 4, 3, 3, 1, 2, 2}, 1, 1);
    check_conv("7x7/2 pad 3", (conv_shape){3, 3, 15, 12, 5, 7, 7, 2, 3, 1}, 1, 0);
    check_conv("7x7 pad 0", (conv_shape){1, 3, 9, 8, 3, 7, 7, 1, 0, 1}, 0, 0);
    check_conv("1x1", (conv_shape){3, 17, 5, 6, 9, 1, 1, 1, 0, 1}, 1, 1);
    check_conv("1x1/2", (conv_shape){3, 5, 7, 9, 6, 1, 1, 2, 0, 1}, 0, 0);
    check_conv("1x1 direct", (conv_shape){3, 5, 24, 23, 7, 1, 1, 1, 0, 1}, 1, 1);
    check_conv("1x1 direct", (conv_shape){1, 3, 17, 33, 4, 1, 1, 1, 0, 1}, 0, 0);
    check_conv("2x3 pad 1 dil 2 /2", (conv_shape){3, 5, 8, 11, 3, 2, 3, 2, 1, 2}, 1, 0);
    check_conv("3x3 on 1x1 input", (conv_shape){3, 5, 1, 1, 4, 3, 3, 1, 1, 1}, 1, 1);
    /* outputs at least 16 wide: im2col over (Wo, Ho, rows), stride 1, 2 and dilated */
    check_conv("3x3 rows", (conv_shape){2, 3, 18, 21, 4, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("3x3/2 rows", (conv_shape){2, 3, 35, 33, 4, 3, 3, 2, 1, 1}, 0, 1);
    check_conv("7x7/2 pad 3 rows", (conv_shape){1, 3, 36, 40, 5, 7, 7, 2, 3, 1}, 1, 1);
    check_conv("3x3 dil 2 rows", (conv_shape){1, 2, 20, 37, 3, 3, 3, 1, 2, 2}, 1, 0);

    /* im2col and col2im in the shape the device does not use by default (the
     * CPU shape on GPUs, the work-item-per-element kernels on CPUs): stride
     * 1 and 2, dilation, 7x7, 1x1, widths below, at and past 16 and 32 */
    int movers = op_conv2d_set_cpu_movers(ot_dev->info.type & CL_DEVICE_TYPE_GPU ? 1 : 0);
    check_conv("other movers 3x3", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("other movers 3x3 rows", (conv_shape){2, 3, 18, 33, 4, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("other movers 3x3/2", (conv_shape){2, 3, 35, 33, 4, 3, 3, 2, 1, 1}, 0, 1);
    check_conv("other movers 3x3 dil 2", (conv_shape){1, 2, 20, 37, 3, 3, 3, 1, 2, 2}, 1, 0);
    check_conv("other movers 7x7/2 pad 3", (conv_shape){1, 3, 36, 40, 5, 7, 7, 2, 3, 1}, 1, 1);
    check_conv("other movers 1x1/2", (conv_shape){3, 5, 7, 9, 6, 1, 1, 2, 0, 1}, 0, 0);
    check_conv("other movers 3x3 on 1x1 input", (conv_shape){3, 5, 1, 1, 4, 3, 3, 1, 1, 1}, 1, 1);
    op_conv2d_set_cpu_movers(movers);
    /* the CPU shape's vector paths: 3x3 pad 1 rows of exactly 16 and 32, and
     * 48 + a tail of 2 (col2im: one, two and three vectors, a scalar tail) */
    movers = op_conv2d_set_cpu_movers(1);
    check_conv("cpu movers 3x3 16 wide", (conv_shape){2, 3, 5, 16, 4, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("cpu movers 3x3 32 wide", (conv_shape){1, 4, 6, 32, 3, 3, 3, 1, 1, 1}, 0, 0);
    check_conv("cpu movers 3x3 50 wide", (conv_shape){2, 2, 4, 50, 3, 3, 3, 1, 1, 1}, 1, 0);
    /* 4 wide: a plane per work-item (conv_im2col_k3s1p1_w4, conv_col2im_k3s1p1_w4) */
    check_conv("cpu movers 3x3 4 wide", (conv_shape){3, 5, 4, 4, 2, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("cpu movers 3x3 4 wide, 6 rows", (conv_shape){2, 2, 6, 4, 3, 3, 3, 1, 1, 1}, 0, 0);
    /* stride 2 at even widths of 32 and 64 (outputs 16 and 32 wide: one and two
     * blocks of conv_col2im_k3s2p1_cpu), odd and even heights */
    check_conv("cpu movers 3x3/2 32 wide", (conv_shape){2, 3, 9, 32, 4, 3, 3, 2, 1, 1}, 1, 1);
    check_conv("cpu movers 3x3/2 64 wide", (conv_shape){1, 4, 10, 64, 3, 3, 3, 2, 1, 1}, 0, 0);
    /* outputs 8, 4, 12 and 20 wide: the blocks of 4 (conv_im2col_k3s2p1_cpu,
     * conv_col2im_k3s2p1_cpu4), alone and after a block of 16 */
    check_conv("cpu movers 3x3/2 16 wide", (conv_shape){2, 3, 16, 16, 4, 3, 3, 2, 1, 1}, 1, 1);
    check_conv("cpu movers 3x3/2 8 wide", (conv_shape){3, 2, 7, 8, 3, 3, 3, 2, 1, 1}, 0, 1);
    check_conv("cpu movers 3x3/2 24 wide", (conv_shape){1, 3, 9, 24, 2, 3, 3, 2, 1, 1}, 1, 0);
    check_conv("cpu movers 3x3/2 40 wide", (conv_shape){2, 2, 6, 40, 3, 3, 3, 2, 1, 1}, 0, 0);
    /* stride 2 from a padded copy (conv_im2col_s2_padded, the stem): 7x7 pad 3
     * to 16 and 32 wide, and a 5x5 whose last block reads one float past the
     * padded row (the buffer's slack) */
    check_conv("cpu movers 7x7/2 pad 3 32 wide", (conv_shape){2, 3, 9, 32, 4, 7, 7, 2, 3, 1}, 1, 1);
    check_conv("cpu movers 7x7/2 pad 3 64 wide", (conv_shape){1, 2, 7, 64, 3, 7, 7, 2, 3, 1}, 0, 0);
    check_conv("cpu movers 5x5/2 pad 1 33 wide", (conv_shape){1, 2, 5, 33, 3, 5, 5, 2, 1, 1}, 1, 0);
    /* a downsample's 1x1 stride 2 (conv_col2im_k1s2_cpu), even and odd heights */
    check_conv("cpu movers 1x1/2 8 wide", (conv_shape){2, 3, 8, 8, 4, 1, 1, 2, 0, 1}, 1, 1);
    check_conv("cpu movers 1x1/2 16 wide, 7 rows", (conv_shape){1, 2, 7, 16, 3, 1, 1, 2, 0, 1}, 0, 0);
    op_conv2d_set_cpu_movers(movers);
    check_col2im_same_bits((conv_shape){2, 3, 9, 32, 4, 3, 3, 2, 1, 1}, 0);
    check_col2im_same_bits((conv_shape){1, 4, 10, 64, 3, 3, 3, 2, 1, 1}, 1);
    check_col2im_same_bits((conv_shape){8, 32, 32, 32, 64, 3, 3, 2, 1, 1}, 0);
    check_col2im_same_bits((conv_shape){2, 3, 16, 16, 4, 3, 3, 2, 1, 1}, 1);
    check_col2im_same_bits((conv_shape){3, 2, 7, 8, 3, 3, 3, 2, 1, 1}, 0);
    check_col2im_same_bits((conv_shape){1, 3, 9, 24, 2, 3, 3, 2, 1, 1}, 1);
    check_col2im_same_bits((conv_shape){2, 2, 6, 40, 3, 3, 3, 2, 1, 1}, 0);
    check_col2im_same_bits((conv_shape){3, 5, 4, 4, 2, 3, 3, 1, 1, 1}, 1);
    check_col2im_same_bits((conv_shape){2, 3, 8, 8, 4, 1, 1, 2, 0, 1}, 0);     /* 1x1/2: 4 wide, then 8 */
    check_col2im_same_bits((conv_shape){1, 2, 7, 16, 3, 1, 1, 2, 0, 1}, 1);
    check_col2im_same_bits((conv_shape){2, 2, 6, 4, 3, 3, 3, 1, 1, 1}, 0);

    /* groups of two images and a remainder of one, through the packed layouts */
    size_t old = op_conv2d_set_scratch_limit(2 * 5 * 9 * 9 * 7);
    check_conv("groups 2+1", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 1);
    op_conv2d_set_scratch_limit(5 * 9 * 9 * 7);
    check_conv("groups 1+1+1", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    op_conv2d_set_scratch_limit(old);

    /* the weight gradient through the path the device does not use by default
     * (conv_dw_nt on CPUs, CLBlast on GPUs), over shapes that reach its tails */
    int path = op_conv2d_set_dw_path(ot_dev->info.type & CL_DEVICE_TYPE_GPU ? 1 : 0);
    check_conv("other dw path 3x3", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("other dw path 7x7/2 pad 3", (conv_shape){3, 3, 15, 12, 5, 7, 7, 2, 3, 1}, 1, 0);
    check_conv("other dw path 1x1 direct", (conv_shape){3, 5, 24, 23, 7, 1, 1, 1, 0, 1}, 0, 1);
    op_conv2d_set_scratch_limit(2 * 5 * 9 * 9 * 7);
    check_conv("other dw path groups 2+1", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    op_conv2d_set_scratch_limit(old);
    op_conv2d_set_dw_path(path);
    /* conv_dw_nt at a layer-1-like width: 16-wide vector loop over P = 256, K and CRS multiples of 4 */
    path = op_conv2d_set_dw_path(1);
    check_conv("conv_dw_nt 3x3 P 256", (conv_shape){2, 8, 16, 16, 8, 3, 3, 1, 1, 1}, 0, 1);
    /* long reductions in cached chunks (conv_dw_nt_chunks + conv_dw_sum): the
     * 7x7's 147 rows give 3 chunks of 720 pixels per image of 2115, the
     * last with a scalar tail; the 3x3 on 64x64 gives chunks in im2col's own
     * layout over a group of images; and the same shapes run whole */
    check_conv("conv_dw_nt chunks 7x7 P 2115", (conv_shape){2, 3, 47, 45, 5, 7, 7, 1, 3, 1}, 1, 1);
    check_conv("conv_dw_nt chunks 3x3 P 4096", (conv_shape){2, 3, 64, 64, 6, 3, 3, 1, 1, 1}, 0, 0);
    check_conv("conv_dw_nt chunks 1x1 direct", (conv_shape){2, 5, 64, 70, 7, 1, 1, 1, 0, 1}, 1, 1);
    int chunks = op_conv2d_set_dw_chunks(0);
    check_conv("conv_dw_nt whole 7x7 P 2115", (conv_shape){2, 3, 47, 45, 5, 7, 7, 1, 3, 1}, 1, 1);
    op_conv2d_set_dw_chunks(chunks);
    op_conv2d_set_dw_path(path);

    /* the weight gradient from the forward's kept columns (conv_dw_nt's path,
     * forced here on GPUs too): one group (the whole batch in one launch over
     * every image's columns), groups 2+1 and 1+1+1, the stem-like 7x7/2 whose
     * columns carry zero rows up to the padded reduction; a direct 1x1 keeps
     * nothing and must still be right */
    path = op_conv2d_set_dw_path(1);
    keep_cols = 1;
    size_t rows45 = cd_gemm_kernels(ot_dev) == CD_GEMM_CLBLAST ? 64 : 45;
    t_ok(op_conv2d_keep_floats(ot_dev, &(conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}) == rows45 * 3 * 63,
         "kept columns of a 3x3 conv: the reduction 45 (padded to 64 for CLBlast), by 3 "
         "images of 63 pixels");
    t_ok(op_conv2d_keep_floats(ot_dev, &(conv_shape){3, 5, 24, 23, 7, 1, 1, 1, 0, 1}) == 0,
         "a direct 1x1 conv keeps no columns");
    check_kept_columns_are_read((conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1});
    check_conv("3x3", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("7x7/2 pad 3", (conv_shape){3, 3, 15, 12, 5, 7, 7, 2, 3, 1}, 1, 1);
    check_conv("1x1 direct", (conv_shape){3, 5, 24, 23, 7, 1, 1, 1, 0, 1}, 0, 1);
    check_conv("3x3 P 256", (conv_shape){2, 8, 16, 16, 8, 3, 3, 1, 1, 1}, 0, 1);
    check_conv("7x7 P 2115 chunks", (conv_shape){2, 3, 47, 45, 5, 7, 7, 1, 3, 1}, 1, 0);
    old = op_conv2d_set_scratch_limit(2 * 5 * 9 * 9 * 7);
    check_conv("groups 2+1", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 1);
    op_conv2d_set_scratch_limit(5 * 9 * 9 * 7);
    check_conv("groups 1+1+1", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 0, 0);
    op_conv2d_set_scratch_limit(old);
    keep_cols = 0;
    op_conv2d_set_dw_path(path);

    /* short weight-gradient reductions through the row GEMM (op_permute,
     * gemm_rows_nn, conv_dw_add_t; on the row-kernel devices): 128 and 256
     * pixels a group, K 64 and 70 (a clamped block), 576 and 1152 rows, kept
     * columns and not, the same shapes through conv_dw_nt */
    path = op_conv2d_set_dw_path(1);
    for (int gemm = 1; gemm >= 0; gemm--) {
        int oldg = op_conv2d_set_dw_gemm(gemm);
        char nm[80];
        for (keep_cols = 0; keep_cols < 2; keep_cols++) {
            snprintf(nm, sizeof nm, "dw %s 3x3 4x4 K64", gemm ? "row GEMM" : "conv_dw_nt");
            check_conv(nm, (conv_shape){8, 64, 4, 4, 64, 3, 3, 1, 1, 1}, 0, 1);
            snprintf(nm, sizeof nm, "dw %s 3x3/2 8x8 K70", gemm ? "row GEMM" : "conv_dw_nt");
            check_conv(nm, (conv_shape){4, 128, 16, 16, 70, 3, 3, 2, 1, 1}, 1, 0);
        }
        keep_cols = 0;
        op_conv2d_set_dw_gemm(oldg);
    }
    op_conv2d_set_dw_path(path);

    /* the implicit 3x3 stride-1 path (conv3x3_s1_rows, conv_dw3_nt and its
     * chunks), forced on every device: output rows of 16 and 32, channels
     * past a block of 8 (K = 6, 13) and of 4 (C = 5: 45 column rows), groups,
     * chunks (64x64), kept padded input and not; against the reference, and
     * against the im2col path bit for bit */
    op_conv2d_set_implicit(1);
    check_conv("implicit 3x3 16 wide", (conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("implicit 3x3 32 wide", (conv_shape){2, 4, 8, 32, 13, 3, 3, 1, 1, 1}, 0, 0);
    check_conv("implicit 3x3 64x64 chunks", (conv_shape){2, 3, 64, 64, 6, 3, 3, 1, 1, 1}, 0, 1);
    check_conv("implicit 3x3 8 wide", (conv_shape){3, 5, 4, 8, 6, 3, 3, 1, 1, 1}, 1, 0);
    path = op_conv2d_set_dw_path(1);
    keep_cols = 1;
    t_ok(op_conv2d_keep_floats(ot_dev, &(conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1}) == 3 * 5 * 8 * 18,
         "implicit 3x3 conv keeps its padded input: 3 images x 5 channels x 8 x 18");
    check_kept_columns_are_read((conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1});
    check_conv("implicit 3x3 16 wide", (conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("implicit 3x3 32 wide", (conv_shape){2, 4, 8, 32, 13, 3, 3, 1, 1, 1}, 1, 1);
    check_conv("implicit 3x3 64x64 chunks", (conv_shape){2, 3, 64, 64, 6, 3, 3, 1, 1, 1}, 0, 0);
    check_conv("implicit 3x3 8 wide", (conv_shape){3, 5, 4, 8, 6, 3, 3, 1, 1, 1}, 0, 1);
    old = op_conv2d_set_scratch_limit(2 * 5 * 9 * 6 * 16);
    check_conv("implicit groups 2+1", (conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1}, 1, 1);
    op_conv2d_set_scratch_limit(old);
    keep_cols = 0;
    op_conv2d_set_dw_path(path);
    /* shapes it does not take, through im2col: 80 pixels in all, 8 wide with 16 pixels in all, 12 and 4 wide
     * (they keep columns, not the padded input) */
    path = op_conv2d_set_dw_path(1);
    conv_shape not_imp[] = {{1, 3, 5, 16, 4, 3, 3, 1, 1, 1}, {1, 3, 2, 8, 4, 3, 3, 1, 1, 1},
                            {2, 3, 8, 12, 4, 3, 3, 1, 1, 1},
                            {8, 4, 4, 4, 4, 3, 3, 1, 1, 1}};
    for (size_t i = 0; i < CD_ARRAY_LEN(not_imp); i++) {
        conv_shape q = not_imp[i];
        t_ok(op_conv2d_keep_floats(ot_dev, &q) >= q.C * 9 * q.B * q.H * q.W,
             "implicit path not taken for B%zu %zux%zu: the backward keeps im2col columns", q.B, q.H, q.W);
    }
    op_conv2d_set_dw_path(path);
    check_conv("implicit not for 3x3 16 x 5, one image", (conv_shape){1, 3, 5, 16, 4, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("implicit 3x3 16 x 5, two images", (conv_shape){2, 3, 5, 16, 4, 3, 3, 1, 1, 1}, 1, 0);
    check_conv("implicit not for 3x3 8 x 2, one image", (conv_shape){1, 3, 2, 8, 4, 3, 3, 1, 1, 1}, 0, 1);
    check_conv("implicit not for 3x3 12 wide", (conv_shape){2, 3, 8, 12, 4, 3, 3, 1, 1, 1}, 1, 1);
    /* the stem's stride-2 path (conv_phase_split_s2, conv_s2_phase_rows,
     * conv_dws2_nt and its chunks): 7x7 pad 3 to 16 and 48 wide (the latter
     * in chunks), 5x5 pad 2, a 4x4 window (even: half a column of slack), kept
     * and not, against the reference */
    conv_shape stems[] = {{2, 3, 9, 32, 4, 7, 7, 2, 3, 1}, {1, 3, 96, 96, 5, 7, 7, 2, 3, 1},
                          {2, 2, 7, 32, 3, 5, 5, 2, 2, 1}, {2, 2, 6, 32, 3, 4, 4, 2, 1, 1}};
    for (int k = 0; k < 2; k++) {
        keep_cols = k;
        path = op_conv2d_set_dw_path(1);
        for (size_t i = 0; i < CD_ARRAY_LEN(stems); i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "implicit %zux%zu/2 pad %zu%s", stems[i].R, stems[i].S, stems[i].pad,
                     k ? " kept" : "");
            check_conv(nm, stems[i], (int)(i & 1), (int)(i >> 1));
        }
        op_conv2d_set_dw_path(path);
    }
    keep_cols = 0;
    path = op_conv2d_set_dw_path(1);    /* as in the loop above: GPUs keep no columns by default */
    t_ok(op_conv2d_keep_floats(ot_dev, &stems[0]) == 2 * 3 * 2 * (2 * 5 + 5) * (16 + 3),
         "the stem's path keeps the phase-split input: 2 images x 3 channels x 2 phases x 15 x 19");
    op_conv2d_set_dw_path(path);
    op_conv2d_set_implicit(0);
    check_implicit_same_bits("3x3 16 wide", (conv_shape){3, 5, 6, 16, 6, 3, 3, 1, 1, 1}, 1, 1);
    check_implicit_same_bits("3x3 32 wide", (conv_shape){8, 8, 32, 32, 8, 3, 3, 1, 1, 1}, 0, 0);
    check_implicit_same_bits("3x3 64x64 chunks", (conv_shape){2, 3, 64, 64, 6, 3, 3, 1, 1, 1}, 0, 1);
    check_implicit_same_bits("3x3 8 wide", (conv_shape){8, 16, 8, 8, 16, 3, 3, 1, 1, 1}, 0, 1);
    old = op_conv2d_set_scratch_limit(2 * 8 * 9 * 256);
    check_implicit_same_bits("3x3 groups 2+2+1", (conv_shape){5, 8, 16, 16, 16, 3, 3, 1, 1, 1}, 1, 0);
    op_conv2d_set_scratch_limit(2 * 147 * 96);
    check_implicit_same_bits("stem 7x7/2 groups 2+2+1", (conv_shape){5, 3, 11, 32, 6, 7, 7, 2, 3, 1}, 0, 1);
    op_conv2d_set_scratch_limit(old);
    check_implicit_same_bits("stem 7x7/2", (conv_shape){2, 3, 9, 32, 4, 7, 7, 2, 3, 1}, 1, 1);
    check_implicit_same_bits("stem 7x7/2 in chunks", (conv_shape){2, 3, 96, 96, 8, 7, 7, 2, 3, 1}, 0, 0);
    check_implicit_same_bits("5x5/2", (conv_shape){2, 2, 7, 32, 3, 5, 5, 2, 2, 1}, 1, 0);
    /* the GPU tile kernels take groups of 32x more columns than the other
     * paths: 4 images of 32 x 32 in one group (one image a group elsewhere),
     * then cut to 2 + 2 by the scratch limit */
    int kernels = cd_gemm_set_kernels(CD_GEMM_TILES);
    check_conv("tile kernels: 4 images of 32 x 32 in one group", (conv_shape){4, 3, 32, 32, 5, 3, 3, 1, 1, 1}, 1, 1);
    old = op_conv2d_set_scratch_limit(2 * 27 * 1024);
    check_conv("tile kernels: groups 2 + 2 (scratch limit)", (conv_shape){4, 3, 32, 32, 5, 3, 3, 1, 1, 1}, 0, 0);
    op_conv2d_set_scratch_limit(old);
    /* the tile kernels reading the operands in place: against the double
     * reference (a batch cut into groups by the scratch limit too), and bit
     * for bit against the columns */
    int operands = op_conv2d_set_tile_operands(1);
    check_conv("tile kernels, operands in place", (conv_shape){4, 3, 32, 32, 5, 3, 3, 1, 1, 1}, 0, 1);
    check_conv("tile kernels, operands in place, stride 2 dil 2", (conv_shape){3, 3, 10, 13, 4, 3, 3, 2, 2, 2}, 0, 0);
    check_conv("tile kernels, operands in place, with bias (columns)", (conv_shape){2, 4, 9, 7, 6, 3, 3, 1, 1, 1}, 1,
               1);
    old = op_conv2d_set_scratch_limit(2 * 27 * 1024);
    check_conv("tile kernels, operands in place, groups 2 + 2", (conv_shape){4, 3, 32, 32, 5, 3, 3, 1, 1, 1}, 0, 1);
    op_conv2d_set_scratch_limit(old);
    op_conv2d_set_tile_operands(operands);
    cd_gemm_set_kernels(kernels);
    check_tile_operands_same_bits("3x3", (conv_shape){4, 8, 16, 16, 8, 3, 3, 1, 1, 1}, 0, 0);
    check_tile_operands_same_bits("3x3 odd sizes", (conv_shape){3, 5, 9, 7, 6, 3, 3, 1, 1, 1}, 1, 0);
    check_tile_operands_same_bits("3x3/2", (conv_shape){2, 17, 11, 8, 5, 3, 3, 2, 1, 1}, 1, 0);
    check_tile_operands_same_bits("3x3 dil 2", (conv_shape){3, 3, 10, 13, 4, 3, 3, 1, 2, 2}, 0, 0);
    check_tile_operands_same_bits("7x7/2 stem", (conv_shape){2, 3, 32, 32, 8, 7, 7, 2, 3, 1}, 0, 0);
    check_tile_operands_same_bits("1x1/2 downsample", (conv_shape){2, 16, 16, 16, 32, 1, 1, 2, 0, 1}, 1, 0);
    check_tile_operands_same_bits("1x1 small plane", (conv_shape){4, 64, 4, 4, 128, 1, 1, 1, 0, 1}, 0, 0);
    check_tile_operands_same_bits("3x3, k in parts", (conv_shape){4, 8, 16, 16, 8, 3, 3, 1, 1, 1}, 1, 3);
    check_tile_operands_same_bits("stem, k in parts", (conv_shape){2, 3, 32, 32, 8, 7, 7, 2, 3, 1}, 0, 2);
    op_conv2d_set_implicit(implicit);

    ot_cases("conv");
    return ot_finish();
}
