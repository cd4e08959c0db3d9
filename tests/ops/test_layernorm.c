/* Layer norm: forward (out, saved mean and rstd) and backward (dx with acc 0
 * and 1, dw and db added) vs the host references on odd sizes and offsets,
 * including many rows (the chunked parameter-gradient path) and rows with a
 * large mean (two-pass variance); backward vs finite differences. */
#include "op_test.h"
#include "ops/reduce_util.h"

#define LN_EPS 1e-5f

static void test_shape(size_t N, size_t C, double shift, size_t off) {
    char name[160], what[64];
    snprintf(what, sizeof what, "(%zu,%zu)%s", N, C, shift != 0 ? " shifted mean" : "");
    ot_tensor x = ot_rand(N * C, off, shift - 2, shift + 3), w = ot_rand(C, off + 1, 0.5, 1.5);
    ot_tensor b = ot_rand(C, off + 2, -1, 1), out = ot_nan(N * C, off + 3), mean = ot_nan(N, off + 4);
    ot_tensor rstd = ot_nan(N, off + 5), g = ot_rand(N * C, off + 6, -1, 1), dx = ot_nan(N * C, off + 7);
    ot_tensor dw = ot_rand(C, off + 8, -1, 1), db = ot_rand(C, off + 9, -1, 1);
    double *r = malloc(N * C * sizeof *r), *mr = malloc(N * sizeof *mr), *sr = malloc(N * sizeof *sr);
    double *dr = malloc(N * C * sizeof *dr);

    op_layernorm_forward(ot_dev, out.d, mean.d, rstd.d, x.d, w.d, b.d, N, C, LN_EPS);
    op_layernorm_forward_ref(r, mr, sr, x.h, w.h, b.h, N, C, LN_EPS);
    /* normalized values are O(1): a few float roundings of the row sums. A float
     * mean of values near `shift` is only good to about ulp(shift), which
     * (x - mean) * rstd * w carries (rstd < 1, w < 1.5 here): atol 2 ulp(shift) * 1.5.
     * The variance is two-pass, so rstd stays accurate (checked below). */
    double atol = 2e-6 + (shift != 0 ? 2 * ldexp(1.0, ilogb(shift) - 23) * 1.5 : 0);
    snprintf(name, sizeof name, "layernorm forward %s", what);
    ot_check(name, &out, r, atol, 1e-5);
    snprintf(name, sizeof name, "layernorm saved mean %s", what);
    ot_check(name, &mean, mr, 1e-6, 1e-6);
    snprintf(name, sizeof name, "layernorm saved rstd %s", what);
    ot_check(name, &rstd, sr, 0, 1e-6);

    /* backward from the device's saved statistics, as in training */
    op_layernorm_backward(ot_dev, dx.d, dw.d, db.d, g.d, x.d, mean.d, rstd.d, w.d, N, C, 0);
    op_layernorm_backward_ref(dr, dw.h, db.h, g.h, x.h, mean.h, rstd.h, w.h, N, C, 0);
    snprintf(name, sizeof name, "layernorm backward dx acc 0 %s", what);
    ot_check(name, &dx, dr, 1e-5, 1e-4);
    /* dw, db: sums over N rows of O(1) terms, atol grows like sqrt(N) */
    double sum_atol = 2e-6 * sqrt((double)N) + 1e-6;
    snprintf(name, sizeof name, "layernorm backward dw += %s", what);
    ot_check(name, &dw, dw.h, sum_atol, 1e-5);
    snprintf(name, sizeof name, "layernorm backward db += %s", what);
    ot_check(name, &db, db.h, sum_atol, 1e-5);

    /* acc 1 and optional outputs: dx only, then dw only, then db only */
    op_layernorm_backward(ot_dev, dx.d, cd_none(), cd_none(), g.d, x.d, mean.d, rstd.d, w.d, N, C, 1);
    op_layernorm_backward_ref(dr, NULL, NULL, g.h, x.h, mean.h, rstd.h, w.h, N, C, 1);
    snprintf(name, sizeof name, "layernorm backward dx acc 1 (no dw, db) %s", what);
    ot_check(name, &dx, dr, 1e-5, 1e-4);
    op_layernorm_backward(ot_dev, cd_none(), dw.d, cd_none(), g.d, x.d, mean.d, rstd.d, w.d, N, C, 0);
    op_layernorm_backward(ot_dev, cd_none(), cd_none(), db.d, g.d, x.d, mean.d, rstd.d, w.d, N, C, 0);
    op_layernorm_backward_ref(NULL, dw.h, db.h, g.h, x.h, mean.h, rstd.h, w.h, N, C, 0);
    snprintf(name, sizeof name, "layernorm backward dw alone += %s", what);
    ot_check(name, &dw, dw.h, sum_atol, 1e-5);
    snprintf(name, sizeof name, "layernorm backward db alone += %s", what);
    ot_check(name, &db, db.h, sum_atol, 1e-5);
    free(r); free(mr); free(sr); free(dr);
    ot_free(&x); ot_free(&w); ot_free(&b); ot_free(&out); ot_free(&mean); ot_free(&rstd);
    ot_free(&g); ot_free(&dx); ot_free(&dw); ot_free(&db);
}

/* FD of L = sum dout * layernorm(x; w, b) in double w.r.t. x, w and b, h = 1e-4
 * (truncation ~1e-8 for O(1) inputs). Tolerance atol 2e-5, rtol 1e-4: the device
 * backward is float with two row reductions. */
typedef struct { double *x, *w, *b, *dout; size_t N, C; } ln_ctx;
static double ln_loss(void *p) {
    ln_ctx *c = p;
    double *out = malloc(c->N * c->C * sizeof *out);
    op_layernorm_forward_ref(out, NULL, NULL, c->x, c->w, c->b, c->N, c->C, LN_EPS);
    double L = op_dot(c->dout, out, c->N * c->C);
    free(out);
    return L;
}

static void test_fd(size_t N, size_t C) {
    char name[128];
    ot_tensor x = ot_rand(N * C, 1, -2, 2), w = ot_rand(C, 2, 0.5, 1.5), b = ot_rand(C, 3, -1, 1);
    ot_tensor g = ot_rand(N * C, 4, -1, 1), out = ot_nan(N * C, 5), mean = ot_nan(N, 6), rstd = ot_nan(N, 7);
    ot_tensor dx = ot_nan(N * C, 8);
    double *zero = calloc(C, sizeof *zero);
    ot_tensor dw = ot_from(zero, C, 9), db = ot_from(zero, C, 10);
    op_layernorm_forward(ot_dev, out.d, mean.d, rstd.d, x.d, w.d, b.d, N, C, LN_EPS);
    op_layernorm_backward(ot_dev, dx.d, dw.d, db.d, g.d, x.d, mean.d, rstd.d, w.d, N, C, 0);
    double *fd = malloc(N * C * sizeof *fd);
    ln_ctx c = {x.h, w.h, b.h, g.h, N, C};
    op_fd_grad(fd, x.h, N * C, 1e-4, ln_loss, &c);
    snprintf(name, sizeof name, "layernorm dx vs finite differences (%zu,%zu)", N, C);
    ot_check(name, &dx, fd, 2e-5, 1e-4);
    op_fd_grad(fd, w.h, C, 1e-4, ln_loss, &c);
    snprintf(name, sizeof name, "layernorm dw vs finite differences (%zu,%zu)", N, C);
    ot_check(name, &dw, fd, 2e-5, 1e-4);
    op_fd_grad(fd, b.h, C, 1e-4, ln_loss, &c);
    snprintf(name, sizeof name, "layernorm db vs finite differences (%zu,%zu)", N, C);
    ot_check(name, &db, fd, 2e-5, 1e-4);
    free(fd); free(zero);
    ot_free(&x); ot_free(&w); ot_free(&b); ot_free(&g); ot_free(&out); ot_free(&mean); ot_free(&rstd);
    ot_free(&dx); ot_free(&dw); ot_free(&db);
}

/* op_add_layernorm_* on the device against finite differences of
 * L = sum G * layernorm(a + b) in double on the host: da and db. */
typedef struct { double *a, *b, *w, *bias, *G; size_t N, C; } add_ln_ctx;

static double add_ln_loss(void *p) {
    add_ln_ctx *c = p;
    size_t n = c->N * c->C;
    double *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) x[i] = c->a[i] + c->b[i];
    op_layernorm_forward_ref(out, NULL, NULL, x, c->w, c->bias, c->N, c->C, LN_EPS);
    double L = op_dot(c->G, out, n);
    free(x); free(out);
    return L;
}

static void test_add_fd(size_t N, size_t C) {
    size_t n = N * C;
    ot_tensor a = ot_rand(n, 1, -2, 2), b = ot_rand(n, 2, -1, 1), w = ot_rand(C, 3, 0.5, 1.5);
    ot_tensor bias = ot_rand(C, 4, -1, 1), g = ot_rand(n, 5, -1, 1), x = ot_nan(n, 6), out = ot_nan(n, 7);
    ot_tensor mean = ot_nan(N, 8), rstd = ot_nan(N, 9), da = ot_nan(n, 10), db = ot_nan(n, 11);
    op_add_layernorm_forward(ot_dev, out.d, x.d, mean.d, rstd.d, a.d, b.d, w.d, bias.d, N, C, LN_EPS);
    op_add_layernorm_backward(ot_dev, da.d, db.d, cd_none(), cd_none(), g.d, x.d, mean.d, rstd.d, w.d, N, C, 0, 0);
    double *fd = malloc(n * sizeof *fd);
    add_ln_ctx c = {a.h, b.h, w.h, bias.h, g.h, N, C};
    char name[128];
    op_fd_grad(fd, a.h, n, 1e-4, add_ln_loss, &c);
    snprintf(name, sizeof name, "add+layernorm da vs finite differences (%zu,%zu)", N, C);
    ot_check(name, &da, fd, 2e-5, 1e-4);
    op_fd_grad(fd, b.h, n, 1e-4, add_ln_loss, &c);
    snprintf(name, sizeof name, "add+layernorm db vs finite differences (%zu,%zu)", N, C);
    ot_check(name, &db, fd, 2e-5, 1e-4);
    free(fd);
    ot_tensor ts[] = {a, b, w, bias, g, x, out, mean, rstd, da, db};
    for (size_t i = 0; i < CD_ARRAY_LEN(ts); i++) ot_free(&ts[i]);
}

/* The residual add and the norm in one op (op_add_layernorm_*) against op_add,
 * op_layernorm_* and the add's two gradient copies: the sum, out, mean, rstd,
 * da, db, dw, db(ias) the same bits. want: 1 da, 2 db, 3 both; acc: both add. */
static void test_add_fused(size_t N, size_t C, int acc, int want) {
    size_t n = N * C;
    double *a = ot_randv(n, -2, 3), *b = ot_randv(n, -1, 1), *w = ot_randv(C, 0.5, 1.5), *bias = ot_randv(C, -1, 1);
    double *g = ot_randv(n, -1, 1), *da0 = ot_randv(n, -1, 1), *db0 = ot_randv(n, -1, 1);
    double *dw0 = ot_randv(C, -1, 1), *dbias0 = ot_randv(C, -1, 1);
    double *got[2][8];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem ma = op_upload(ot_dev, a, n, 1), mb = op_upload(ot_dev, b, n, 2), mw = op_upload(ot_dev, w, C, 3);
        cd_mem mbias = op_upload(ot_dev, bias, C, 4), mg = op_upload(ot_dev, g, n, 5);
        cd_mem mx = op_upload(ot_dev, NULL, n, 6), mo = op_upload(ot_dev, NULL, n, 7);
        cd_mem mm = op_upload(ot_dev, NULL, N, 8), mr = op_upload(ot_dev, NULL, N, 9);
        cd_mem mda = op_upload(ot_dev, acc ? da0 : NULL, n, 10), mdb = op_upload(ot_dev, acc ? db0 : NULL, n, 11);
        cd_mem mdw = op_upload(ot_dev, dw0, C, 12), mdbias = op_upload(ot_dev, dbias0, C, 13);
        cd_mem ga = want & 1 ? mda : cd_none(), gb = want & 2 ? mdb : cd_none();
        if (fused) {
            op_add_layernorm_forward(ot_dev, mo, mx, mm, mr, ma, mb, mw, mbias, N, C, LN_EPS);
            op_add_layernorm_backward(ot_dev, ga, gb, mdw, mdbias, mg, mx, mm, mr, mw, N, C, acc, acc);
        } else {
            cd_mem mdx = op_upload(ot_dev, NULL, n, 0);
            op_add(ot_dev, mx, ma, mb, n);
            op_layernorm_forward(ot_dev, mo, mm, mr, mx, mw, mbias, N, C, LN_EPS);
            op_layernorm_backward(ot_dev, mdx, mdw, mdbias, mg, mx, mm, mr, mw, N, C, 0);
            if (want & 1) op_scale(ot_dev, mda, mdx, 1.0f, n, acc);
            if (want & 2) op_scale(ot_dev, mdb, mdx, 1.0f, n, acc);
            cd_free(ot_dev, mdx);
        }
        cd_mem outs[] = {mx, mo, mm, mr, mda, mdb, mdw, mdbias};
        size_t ns[] = {n, n, N, N, n, n, C, C};
        for (int k = 0; k < 8; k++) got[fused][k] = op_download(ot_dev, outs[k], ns[k]);
        if (fused) {
            int intact = 1;
            for (int k = 0; k < 8; k++) intact &= op_guards_intact(ot_dev, outs[k], ns[k]);
            t_ok(intact, "add+layernorm (%zu,%zu) want %d: nothing written outside the tensors", N, C, want);
        }
        cd_mem all[] = {ma, mb, mw, mbias, mg, mx, mo, mm, mr, mda, mdb, mdw, mdbias};
        for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) cd_free(ot_dev, all[i]);
    }
    static const char *what[] = {"sum", "out", "mean", "rstd", "da", "db", "dw +=", "dbias +="};
    for (int k = 0; k < 8; k++) {
        int skip = (k == 4 && !(want & 1)) || (k == 5 && !(want & 2));   /* not asked for: NaN on both sides */
        if (!skip) {
            char t[200];
            snprintf(t, sizeof t, "add+layernorm (%zu,%zu) acc%d want %d: %s, fused = add then layer norm, bit for bit",
                     N, C, acc, want, what[k]);
            ot_close(t, got[0][k], got[1][k], k < 2 || k == 4 || k == 5 ? n : k < 4 ? N : C, 0, 0);
        }
        free(got[0][k]);
        free(got[1][k]);
    }
    double *hs[] = {a, b, w, bias, g, da0, db0, dw0, dbias0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The parameter gradients with w's and b's gradients side by side in one
 * buffer (as a model's parameters are: the work-group kernels' second pass
 * then sums both in one launch) against apart, bit for bit. */
static void test_params_adjacent(size_t N, size_t C) {
    size_t n = N * C;
    double *x = ot_randv(n, -2, 3), *w = ot_randv(C, 0.5, 1.5), *bias = ot_randv(C, -1, 1), *g = ot_randv(n, -1, 1);
    double *p0 = ot_randv(2 * C, -1, 1);
    cd_mem mx = op_upload(ot_dev, x, n, 1), mw = op_upload(ot_dev, w, C, 2), mb = op_upload(ot_dev, bias, C, 3);
    cd_mem mg = op_upload(ot_dev, g, n, 4), mo = op_upload(ot_dev, NULL, n, 5), mm = op_upload(ot_dev, NULL, N, 6);
    cd_mem mr = op_upload(ot_dev, NULL, N, 7), both = op_upload(ot_dev, p0, 2 * C, 8);
    cd_mem dw = op_upload(ot_dev, p0, C, 9), db = op_upload(ot_dev, p0 + C, C, 10);
    op_layernorm_forward(ot_dev, mo, mm, mr, mx, mw, mb, N, C, LN_EPS);
    op_layernorm_backward(ot_dev, cd_none(), both, cd_at(both, C), mg, mx, mm, mr, mw, N, C, 0);
    op_layernorm_backward(ot_dev, cd_none(), dw, db, mg, mx, mm, mr, mw, N, C, 0);
    double *gb = op_download(ot_dev, both, 2 * C), *gw = op_download(ot_dev, dw, C), *gbb = op_download(ot_dev, db, C);
    char name[160];
    snprintf(name, sizeof name, "layer norm (%zu,%zu): dw and db side by side = apart, bit for bit: dw", N, C);
    ot_close(name, gw, gb, C, 0, 0);
    snprintf(name, sizeof name, "layer norm (%zu,%zu): dw and db side by side = apart, bit for bit: db", N, C);
    ot_close(name, gbb, gb + C, C, 0, 0);
    t_ok(op_guards_intact(ot_dev, both, 2 * C), "layer norm (%zu,%zu): dw and db side by side: nothing written "
         "outside", N, C);
    cd_mem all[] = {mx, mw, mb, mg, mo, mm, mr, both, dw, db};
    for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) cd_free(ot_dev, all[i]);
    free(x); free(w); free(bias); free(g); free(p0); free(gb); free(gw); free(gbb);
}

int main(void) {
    ot_open();
    t_seed(507);
    static const size_t shapes[][2] = {{1, 1}, {3, 7}, {5, 33}, {4, 256}, {7, 257}, {2, 1000}, {300, 64},
                                       {1500, 17}, {64, 128}};
    /* both kernel shapes on every device: a work-item per row (CPUs), a work-group per row (GPUs) */
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        t_diag("layer norm kernels: %s", rows ? "a work-item per row" : "a work-group per row");
        for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++) test_shape(shapes[s][0], shapes[s][1], 0, s + 1);
        test_shape(9, 129, 1000, 3);
        test_add_fused(5, 33, 0, 3);
        test_add_fused(64, 128, 1, 3);
        test_add_fused(7, 257, 1, 2);
        test_add_fused(3, 16, 0, 1);
        test_params_adjacent(1250, 256);   /* DETR-R50's encoder norms: the sums in two passes on GPUs */
        test_params_adjacent(64, 128);
        ops_set_row_kernels(old);
    }
    test_fd(3, 33);
    test_fd(2, 257);
    test_fd(70, 5);
    test_add_fd(3, 33);
    ot_cases("layernorm");
    return ot_finish();
}
