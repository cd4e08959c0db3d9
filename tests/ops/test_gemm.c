/* cd_gemm and cd_gemm_batched against a double-precision host product, on
 * every path: cl/blas.cl's row kernels (the default on CPU devices), its tile
 * kernels (the default on GPUs; both tile sizes, k in one part and split in
 * parts) and CLBlast. Every layout, sizes around the kernels' blocks (8 x 32
 * rows, 4 x 4 dot products, 16-wide vectors along k, 64 and 128 tiles, 8-deep
 * slices: tails in M, N and K, N below one stripe, a single element), leading
 * dimensions wider than the matrices, operands at odd offsets inside NaN
 * guards, alpha and beta, and batches with gaps between the matrices.
 * Built a second time with GEMM_TILE_PAIRS (the test ops_gemm_tiles): every
 * tile shape pair of `cldetr tune` against the built-in pair. */
#include "op_test.h"
#include "ops/reduce_util.h"
#include "cldetr/blas_tune.h"

/* Float32 sums of K products of values in [-1, 1]: 4e-6 * sqrt(K) leaves ~10x
 * above the rounding both paths show (printed as max abs err). */
static double sum_tol(size_t K) { return 4e-6 * sqrt((double)K + 1); }

/* the paths: {cd_gemm_set_kernels mode, tile, k parts} */
static const int paths[][3] = {
    {CD_GEMM_ROWS, 0, 0}, {CD_GEMM_CLBLAST, 0, 0}, {CD_GEMM_TILES, CD_TILE_SMALL, 1}, {CD_GEMM_TILES, CD_TILE_LARGE, 1},
    {CD_GEMM_TILES, CD_TILE_SMALL, 3}, {CD_GEMM_TILES, 0, 0},
};

/* C = alpha op(A) op(B) + beta C on one path for every matrix of the batch bt
 * (operands at offsets o * so + i * s, rows ld apart) against a double
 * product; cd_gemm for one matrix, cd_gemm_batched for one level, else
 * cd_gemm_strided. C's padding and gaps keep C0. `what` ends the check's name. */
static void check_batch(const int *path, int ta, int tb, size_t M, size_t N, size_t K, size_t lda, size_t ldb,
                        size_t ldc, float alpha, float beta, const cd_batch *bt, const char *what) {
    size_t ra = ta ? K : M, rb = tb ? N : K, o1 = bt->outer - 1, i1 = bt->inner - 1;   /* stored rows */
    size_t nA = o1 * bt->sAo + i1 * bt->sA + ra * lda, nB = o1 * bt->sBo + i1 * bt->sB + rb * ldb;
    size_t nC = o1 * bt->sCo + i1 * bt->sC + M * ldc;
    double *A = ot_randv(nA, -1, 1), *B = ot_randv(nB, -1, 1), *C0 = ot_randv(nC, -1, 1), *R = op_zeros(nC);
    memcpy(R, C0, nC * sizeof *R);
    for (size_t o = 0; o < bt->outer; o++)
        for (size_t i = 0; i < bt->inner; i++) {
            const double *a = A + o * bt->sAo + i * bt->sA, *b = B + o * bt->sBo + i * bt->sB;
            double *c = R + o * bt->sCo + i * bt->sC;
            for (size_t m = 0; m < M; m++)
                for (size_t n = 0; n < N; n++) {
                    double acc = 0;
                    for (size_t k = 0; k < K; k++)
                        acc += a[ta ? k * lda + m : m * lda + k] * b[tb ? n * ldb + k : k * ldb + n];
                    c[m * ldc + n] = alpha * acc + beta * c[m * ldc + n];
                }
        }
    cd_mem dA = op_upload(ot_dev, A, nA, 5), dB = op_upload(ot_dev, B, nB, 3), dC = op_upload(ot_dev, C0, nC, 7);
    int old = cd_gemm_set_kernels(path[0]);
    cd_gemm_set_tiles(path[1], path[2]);
    if (bt->inner * bt->outer == 1) cd_gemm(ot_dev, ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
    else if (bt->outer == 1)
        cd_gemm_batched(ot_dev, ta, tb, M, N, K, alpha, dA, lda, bt->sA, dB, ldb, bt->sB, beta, dC, ldc, bt->sC,
                        bt->inner);
    else cd_gemm_strided(ot_dev, ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc, bt);
    cd_gemm_set_kernels(old);
    cd_gemm_set_tiles(0, 0);
    double *got = op_download(ot_dev, dC, nC);
    char name[200], pname[40];
    if (path[0] == CD_GEMM_TILES)
        snprintf(pname, sizeof pname, "tiles %s, %d part(s)",
                 path[1] == CD_TILE_LARGE ? "large" : path[1] ? "small" : "by shape", path[2]);
    snprintf(name, sizeof name, "%s %s%s %zux%zux%zu%s",
             path[0] == CD_GEMM_ROWS ? "rows" : path[0] == CD_GEMM_CLBLAST ? "CLBlast" : pname, ta ? "T" : "N",
             tb ? "T" : "N", M, N, K, what);
    ot_close(name, R, got, nC, sum_tol(K), sum_tol(K));
    t_ok(op_guards_intact(ot_dev, dC, nC), "%s: nothing written outside C", name);
    cd_mem ms[] = {dA, dB, dC};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    free(A); free(B); free(C0); free(R); free(got);
}

/* one level: batch matrices with gaps between them, rows pad wider than the matrices */
static void check_gemm(const int *path, int ta, int tb, size_t M, size_t N, size_t K, size_t pad, float alpha,
                       float beta, size_t batch) {
    size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t ra = ta ? K : M, rb = tb ? N : K;    /* stored rows */
    cd_batch bt = {batch, 1, ra * lda + 3 * pad, rb * ldb + pad, M * ldc + 2 * pad, 0, 0, 0};
    char what[80];
    snprintf(what, sizeof what, " ld+%zu alpha %g beta %g batch %zu", pad, alpha, beta, batch);
    check_batch(path, ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, &bt, what);
}

/* cd_gemm_strided: outer x inner matrices interleaved as attention's heads
 * are in a (B, L, heads * hd) tensor: matrix (o, i) of an operand stored (r, c)
 * starts at o * so + i * c, rows inner * c + pad apart, so = r * ld + gap.
 * Every path and layout; beta 1 with C's gaps kept. */
static void check_gemm_heads(const int *path, int ta, int tb, size_t M, size_t N, size_t K, size_t inner,
                             size_t outer) {
    size_t ra = ta ? K : M, ca = ta ? M : K, rb = tb ? N : K, cb = tb ? K : N;
    size_t lda = inner * ca + 1, ldb = inner * cb + 2, ldc = inner * N + 3;
    cd_batch bt = {inner, outer, ca, cb, N, ra * lda + 5, rb * ldb, M * ldc + 1};
    char what[80];
    snprintf(what, sizeof what, ", %zu x %zu matrices interleaved as heads (two-level batch)", outer, inner);
    check_batch(path, ta, tb, M, N, K, lda, ldb, ldc, 1.0f, 1.0f, &bt, what);
}

/* cd_gemm_bias_nt (a linear layer's forward in one launch) against cd_gemm's
 * row kernels then the bias added in float: the same bits; on devices whose
 * GEMMs are not the row kernels it computes nothing and says so. */
static void check_bias_nt(size_t M, size_t N, size_t K, size_t pad) {
    size_t lda = K + pad, ldb = K + pad, ldc = N + pad, nA = M * lda, nB = N * ldb, nC = M * ldc;
    double *A = ot_randv(nA, -1, 1), *B = ot_randv(nB, -1, 1), *bias = ot_randv(N, -1, 1), *C0 = ot_randv(nC, -1, 1);
    cd_mem dA = op_upload(ot_dev, A, nA, 5), dB = op_upload(ot_dev, B, nB, 3), db = op_upload(ot_dev, bias, N, 2);
    cd_mem dC = op_upload(ot_dev, C0, nC, 7), dR = op_upload(ot_dev, C0, nC, 1);
    int old = cd_gemm_set_kernels(CD_GEMM_ROWS);
    int done = cd_gemm_bias_nt(ot_dev, M, N, K, dA, lda, dB, ldb, dC, ldc, db, 0);
    cd_gemm(ot_dev, 0, 1, M, N, K, 1.0f, dA, lda, dB, ldb, 0.0f, dR, ldc);
    cd_gemm_set_kernels(CD_GEMM_CLBLAST);
    t_ok(!cd_gemm_bias_nt(ot_dev, M, N, K, dA, lda, dB, ldb, dR, ldc, db, 0),
         "cd_gemm_bias_nt declines where the GEMMs are not the row kernels");
    cd_gemm_set_kernels(old);
    double *got = op_download(ot_dev, dC, nC), *ref = op_download(ot_dev, dR, nC);
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) ref[m * ldc + n] = (float)((float)ref[m * ldc + n] + (float)bias[n]);
    char name[120];
    snprintf(name, sizeof name, "gemm_dot_nt with bias %zux%zux%zu ld+%zu: the product, then + bias, bit for bit", M,
             N, K, pad);
    t_ok(done, "cd_gemm_bias_nt runs on the row kernels (%zux%zux%zu)", M, N, K);
    ot_close(name, ref, got, nC, 0, 0);
    t_ok(op_guards_intact(ot_dev, dC, nC), "%s: nothing written outside C", name);
    cd_mem ms[] = {dA, dB, db, dC, dR};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    free(A); free(B); free(bias); free(C0); free(got); free(ref);
}

/* cd_gemm_tn_sums (a linear layer's weight and bias gradients in one launch)
 * against cd_gemm's row kernels then the column sums of the bias gradient
 * (ops_reduce_axis, added): C and the sums the same bits. */
static void check_tn_sums(size_t M, size_t N, size_t K, size_t pad) {
    size_t lda = M + pad, ldb = N + pad, ldc = N + pad, nA = K * lda, nB = K * ldb, nC = M * ldc;
    double *A = ot_randv(nA, -1, 1), *B = ot_randv(nB, -1, 1), *C0 = ot_randv(nC, -1, 1), *s0 = ot_randv(M, -1, 1);
    cd_mem dA = op_upload(ot_dev, A, nA, 5), dB = op_upload(ot_dev, B, nB, 3), dC = op_upload(ot_dev, C0, nC, 7);
    cd_mem dR = op_upload(ot_dev, C0, nC, 1), ds = op_upload(ot_dev, s0, M, 2), dsr = op_upload(ot_dev, s0, M, 4);
    int old = cd_gemm_set_kernels(CD_GEMM_ROWS), rows = ops_set_row_kernels(1);
    int done = cd_gemm_tn_sums(ot_dev, M, N, K, dA, lda, dB, ldb, dC, ldc, ds);
    cd_gemm(ot_dev, 1, 0, M, N, K, 1.0f, dA, lda, dB, ldb, 1.0f, dR, ldc);
    if (pad == 0) ops_reduce_axis(ot_dev, dsr, dA, dA, 1, K, M, 1.0f, 1, 0);
    cd_gemm_set_kernels(CD_GEMM_CLBLAST);
    t_ok(!cd_gemm_tn_sums(ot_dev, M, N, K, dA, lda, dB, ldb, dR, ldc, ds),
         "cd_gemm_tn_sums declines where the GEMMs are not the row kernels");
    cd_gemm_set_kernels(old);
    ops_set_row_kernels(rows);
    double *got = op_download(ot_dev, dC, nC), *ref = op_download(ot_dev, dR, nC);
    double *gs = op_download(ot_dev, ds, M), *rs = op_download(ot_dev, dsr, M);
    if (pad) {   /* A's rows are wider than M: the sums on the host, in k order, in float */
        for (size_t m = 0; m < M; m++) {
            float t = 0.0f;
            for (size_t k = 0; k < K; k++) t += (float)A[k * lda + m];
            rs[m] = (float)((float)s0[m] + t);
        }
    }
    char name[160];
    t_ok(done, "cd_gemm_tn_sums runs on the row kernels (%zux%zux%zu)", M, N, K);
    snprintf(name, sizeof name, "gemm_rows_tn with sums %zux%zux%zu ld+%zu: C += A^T B, bit for bit", M, N, K, pad);
    ot_close(name, ref, got, nC, 0, 0);
    snprintf(name, sizeof name, "gemm_rows_tn with sums %zux%zux%zu ld+%zu: sums += A's columns in k order, bit for "
             "bit", M, N, K, pad);
    ot_close(name, rs, gs, M, 0, 0);
    t_ok(op_guards_intact(ot_dev, dC, nC) && op_guards_intact(ot_dev, ds, M), "%s: nothing written outside", name);
    cd_mem ms[] = {dA, dB, dC, dR, ds, dsr};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    free(A); free(B); free(C0); free(s0); free(got); free(ref); free(gs); free(rs);
}

/* cd_gemm_tn_sums on the GPU tile kernels (the first column tile's
 * work-groups sum A's columns as they stage them; with k in parts each part
 * keeps its sums and gemm_split_sum adds them): C the same bits as cd_gemm on
 * the tile kernels, the sums within a float sum's error of the double sums
 * (another order than ops_reduce_axis's, so not its bits). */
static void check_tn_sums_tiles(size_t M, size_t N, size_t K, int nsplit) {
    size_t nA = K * M, nB = K * N, nC = M * N;
    double *A = ot_randv(nA, -1, 1), *B = ot_randv(nB, -1, 1), *C0 = ot_randv(nC, -1, 1), *s0 = ot_randv(M, -1, 1);
    cd_mem dA = op_upload(ot_dev, A, nA, 5), dB = op_upload(ot_dev, B, nB, 3), dC = op_upload(ot_dev, C0, nC, 7);
    cd_mem dR = op_upload(ot_dev, C0, nC, 1), ds = op_upload(ot_dev, s0, M, 2);
    int old = cd_gemm_set_kernels(CD_GEMM_TILES);
    cd_gemm_set_tiles(CD_TILE_SMALL, nsplit);
    int done = cd_gemm_tn_sums(ot_dev, M, N, K, dA, M, dB, N, dC, N, ds);
    cd_gemm(ot_dev, 1, 0, M, N, K, 1.0f, dA, M, dB, N, 1.0f, dR, N);
    cd_gemm_set_tiles(0, 0);
    cd_gemm_set_kernels(old);
    double *got = op_download(ot_dev, dC, nC), *ref = op_download(ot_dev, dR, nC), *gs = op_download(ot_dev, ds, M);
    double *rs = op_zeros(M);
    for (size_t m = 0; m < M; m++) {
        rs[m] = s0[m];
        for (size_t k = 0; k < K; k++) rs[m] += A[k * M + m];
    }
    char name[160];
    t_ok(done, "cd_gemm_tn_sums runs on the tile kernels (%zux%zux%zu, k in %d part%s)", M, N, K, nsplit,
         nsplit > 1 ? "s" : "");
    snprintf(name, sizeof name, "gemm_tile with sums %zux%zux%zu, k in %d part%s: C += A^T B, the product's bits", M,
             N, K, nsplit, nsplit > 1 ? "s" : "");
    ot_close(name, ref, got, nC, 0, 0);
    snprintf(name, sizeof name, "gemm_tile with sums %zux%zux%zu, k in %d part%s: sums += A's columns", M, N, K,
             nsplit, nsplit > 1 ? "s" : "");
    ot_close(name, rs, gs, M, sum_tol(K), 1e-6);
    t_ok(op_guards_intact(ot_dev, dC, nC) && op_guards_intact(ot_dev, ds, M), "%s: nothing written outside", name);
    cd_mem ms[] = {dA, dB, dC, dR, ds};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    free(A); free(B); free(C0); free(s0); free(got); free(ref); free(gs); free(rs);
}

#ifdef GEMM_TILE_PAIRS
/* Every tile shape pair `cldetr tune` may choose gives the built-in pair's bits:
 * each entry of C is one fma chain over k in order, so with the same parts of
 * k the tile shape changes nothing. Per pair: both tile kernels, k in one
 * part and in three, every layout, alpha and beta, tails in M, N and K; the
 * linear epilogue (bias + ReLU) and the column sums. The built-in pair's
 * results are themselves checked against double products above. */
#define PAIR_CASES 64
typedef struct { size_t M, N, K; int ta, tb, tile, nsplit, what; } pair_case;   /* what: 0 C, 1 bias+ReLU, 2 sums */

static void run_pair_case(const pair_case *c, const double *A, const double *B, const double *C0, double **out,
                          size_t *nout) {
    size_t lda = (c->ta ? c->M : c->K) + 1, ldb = (c->tb ? c->K : c->N) + 2, ldc = c->N + 3;
    size_t nA = (c->ta ? c->K : c->M) * lda, nB = (c->tb ? c->N : c->K) * ldb, nC = c->M * ldc;
    cd_mem dA = op_upload(ot_dev, A, nA, 5), dB = op_upload(ot_dev, B, nB, 3), dC = op_upload(ot_dev, C0, nC, 7);
    cd_mem ds = op_upload(ot_dev, C0, c->M, 2), db = op_upload(ot_dev, B, c->N, 4);
    int old = cd_gemm_set_kernels(CD_GEMM_TILES);
    cd_gemm_set_tiles(c->tile, c->nsplit);
    if (c->what == 1) cd_gemm_bias_nt(ot_dev, c->M, c->N, c->K, dA, lda, dB, ldb, dC, ldc, db, 1);
    else if (c->what == 2) cd_gemm_tn_sums(ot_dev, c->M, c->N, c->K, dA, lda, dB, ldb, dC, ldc, ds);
    else cd_gemm(ot_dev, c->ta, c->tb, c->M, c->N, c->K, 0.5f, dA, lda, dB, ldb, 0.25f, dC, ldc);
    cd_gemm_set_tiles(0, 0);
    cd_gemm_set_kernels(old);
    double *got = op_download(ot_dev, dC, nC), *sums = op_download(ot_dev, ds, c->M);
    *out = realloc(got, (nC + c->M) * sizeof *got);
    memcpy(*out + nC, sums, c->M * sizeof *sums);
    *nout = nC + c->M;
    t_ok(op_guards_intact(ot_dev, dC, nC) && op_guards_intact(ot_dev, ds, c->M), "tile pair case %zux%zux%zu: "
         "nothing written outside", c->M, c->N, c->K);
    cd_mem ms[] = {dA, dB, dC, ds, db};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    free(sums);
}

static void check_tile_pairs(void) {
    static const size_t sizes[][3] = {{130, 70, 20}, {67, 200, 129}, {9, 33, 17}, {140, 260, 40}};
    pair_case cases[PAIR_CASES];
    int nc = 0;
    for (int tile = CD_TILE_SMALL; tile <= CD_TILE_LARGE; tile++)
        for (int lay = 0; lay < 4; lay++)
            for (size_t z = 0; z < CD_ARRAY_LEN(sizes); z++)
                cases[nc++] = (pair_case){sizes[z][0], sizes[z][1], sizes[z][2], lay >> 1, lay & 1, tile,
                                          z == 1 ? 3 : 1, 0};
    cases[nc++] = (pair_case){67, 200, 129, 0, 1, CD_TILE_SMALL, 1, 1};
    cases[nc++] = (pair_case){140, 130, 300, 0, 1, CD_TILE_LARGE, 3, 1};
    cases[nc++] = (pair_case){70, 33, 37, 1, 0, CD_TILE_SMALL, 1, 2};
    cases[nc++] = (pair_case){130, 140, 300, 1, 0, CD_TILE_LARGE, 3, 2};
    double *in[PAIR_CASES][3], *ref[PAIR_CASES];
    size_t nref[PAIR_CASES];
    for (int i = 0; i < nc; i++) {
        const pair_case *c = &cases[i];
        size_t lda = (c->ta ? c->M : c->K) + 1, ldb = (c->tb ? c->K : c->N) + 2;
        in[i][0] = ot_randv((c->ta ? c->K : c->M) * lda, -1, 1);
        in[i][1] = ot_randv(CD_MAX((c->tb ? c->N : c->K) * ldb, c->N), -1, 1);
        in[i][2] = ot_randv(CD_MAX(c->M * (c->N + 3), c->M), -1, 1);
    }
    const char *list[32];
    int np = cd_gemm_tile_candidates(0, list, 32);
    cd_tile_shape builtin[2];
    memcpy(builtin, ot_dev->tiles, sizeof builtin);
    for (int p = 0; p < np; p++) {
        cd_tile_shape t[2];
        if (cd_gemm_parse_tiles(list[p], t) || cd_gemm_set_tile_shapes(ot_dev, t)) {
            t_diag("tile pair %d not run on this device: %s", p, cd_errbuf());
            continue;
        }
        int same = 1, first_bad = -1;
        for (int i = 0; i < nc; i++) {
            double *got;
            size_t n;
            run_pair_case(&cases[i], in[i][0], in[i][1], in[i][2], &got, &n);
            if (p == 0) { ref[i] = got; nref[i] = n; continue; }
            int eq = n == nref[i] && !memcmp(got, ref[i], n * sizeof *got);
            if (!eq && same) first_bad = i;
            same &= eq;
            free(got);
        }
        if (p == 0) {
            char line[256];
            cd_gemm_tiles_line(builtin, line, sizeof line);
            t_ok(!strcmp(line, list[0]), "the tuning grid's first pair is the built-in one: %s", line);
            continue;
        }
        const pair_case *b = first_bad >= 0 ? &cases[first_bad] : &cases[0];
        t_ok(same, "tile pair %d (%s): the built-in pair's bits in %d products%s (first difference: %s %c%c "
             "%zux%zux%zu, %d part(s), what %d)", p, list[p] + 6, nc, same ? "" : " NOT", b->tile == CD_TILE_LARGE ?
             "large" : "small", b->ta ? 'T' : 'N', b->tb ? 'T' : 'N', b->M, b->N, b->K, b->nsplit, b->what);
    }
    cd_gemm_set_tile_shapes(ot_dev, builtin);
    for (int i = 0; i < nc; i++) {
        free(ref[i]);
        for (int k = 0; k < 3; k++) free(in[i][k]);
    }
}
#endif

int main(void) {
    ot_open();
    t_seed(11);
#ifdef GEMM_TILE_PAIRS   /* the test ops_gemm_tiles: the tile shape pairs alone */
    check_tile_pairs();
    return ot_finish();
#endif
    t_diag("GEMM kernels by default on this device: %s", cd_gemm_kernels_name(ot_dev));
    static const size_t shapes[][3] = {
        {1, 1, 1},      /* one element: every block clamped */
        {8, 32, 16},    /* exactly one 8 x 32 block, one vector of k */
        {9, 33, 17},    /* one past each: a scalar stripe, a clamped row, a k tail */
        {7, 31, 40},    /* N below one stripe: all scalar columns */
        {37, 64, 129},  /* two stripes, five row blocks, 8 vectors of k and one left */
        {80, 128, 128}, /* a decoder linear (10 queries x 8 images) */
        {16, 100, 3},   /* short k */
        {130, 70, 20},  /* one past a 128 tile, two 64 tiles and a tail, k slices 8 + 8 + 4 */
        {64, 128, 8},   /* exactly one tile of each size, one slice */
    };
    for (size_t q = 0; q < CD_ARRAY_LEN(paths); q++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++)
                    check_gemm(paths[q], ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], s % 3 == 1 ? 5 : 0, 1.0f,
                               s % 2 ? 1.0f : 0.0f, 1);
    /* alpha, beta other than 0 and 1; batches with gaps (the strides exceed the matrices) */
    for (size_t q = 0; q < CD_ARRAY_LEN(paths); q++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_gemm(paths[q], ta, tb, 19, 45, 23, 2, 0.5f, 0.25f, 1);
                check_gemm(paths[q], ta, tb, 13, 70, 33, 1, 1.0f, 0.0f, 3);
                check_gemm(paths[q], ta, tb, 20, 16, 64, 0, 1.0f, 1.0f, 4);
            }
    for (size_t q = 0; q < CD_ARRAY_LEN(paths); q++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_gemm_heads(paths[q], ta, tb, 20, 16, 32, 4, 3);   /* attention's scores per head */
                check_gemm_heads(paths[q], ta, tb, 9, 33, 7, 2, 2);
            }
    check_tn_sums(128, 128, 160, 0);   /* a linear layer's dW and db over 160 rows */
    check_tn_sums(13, 70, 33, 0);      /* a row block past M, a scalar stripe */
    check_tn_sums(9, 31, 5, 3);
    check_tn_sums_tiles(128, 128, 160, 1);   /* a linear layer's dW and db, whole tiles */
    check_tn_sums_tiles(70, 33, 37, 1);      /* a tile past M, k slices 8 x 4 + 5 */
    check_tn_sums_tiles(70, 33, 300, 3);     /* k in parts: the sums through gemm_split_sum */
    check_bias_nt(9, 33, 17, 0);
    check_bias_nt(80, 128, 128, 3);
    check_bias_nt(1, 5, 40, 1);
    /* k split by the shape rule: few tiles and a long k (a weight gradient) */
    int old = cd_gemm_set_kernels(CD_GEMM_TILES);
    check_gemm(paths[5], 0, 1, 24, 40, 1500, 3, 0.5f, 0.5f, 1);
    check_gemm(paths[5], 1, 0, 24, 40, 1500, 0, 1.0f, 0.0f, 2);
    cd_gemm_set_kernels(old);
    return ot_finish();
}
