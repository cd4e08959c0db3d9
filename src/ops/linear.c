/* Linear layers and batched matmul on cd_gemm, with plain C references.
 *
 * Every product is one GEMM call (row-major, see cd_gemm); the bias add and its
 * gradient are linear_bias_forward (cl/linear.cl) and ops_reduce_axis, except
 * where cldetr's own GEMM kernels (row kernels on CPUs, tile kernels on GPUs)
 * add the bias in the forward's GEMM (cd_gemm_bias_nt) and the row kernels sum
 * it in the weight gradient's (cd_gemm_tn_sums).
 * Accumulate rules as in ops.h: dw and db add; dx, dA, dB are written (acc 0)
 * or added (acc 1), which maps onto GEMM's beta = acc. */
#include "cldetr/ops.h"
#include "cldetr/selftest.h"
#include "ops/op_ref.h"
#include "ops/reduce_util.h"

/* out (N,OUT) = x (N,IN) w^T (OUT,IN) + b (OUT), then relu(out) when relu */
static void linear_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, size_t N, size_t IN,
                           size_t OUT, int relu) {
    if (cd_has(b) && cd_gemm_bias_nt(dev, N, OUT, IN, x, IN, w, IN, out, OUT, b, relu)) return;   /* one launch */
    cd_gemm(dev, 0, 1, N, OUT, IN, 1.0f, x, IN, w, IN, 0.0f, out, OUT);
    if (cd_has(b) && N * OUT > 0)
        CD_LAUNCH2(dev, "linear_bias_forward", OUT, N, KM(out), KM(b), KUL(N), KUL(OUT), KI(relu));
    else if (relu)
        op_relu_forward(dev, out, out, N * OUT);
}

void op_linear_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, size_t N, size_t IN, size_t OUT) {
    linear_forward(dev, out, x, w, b, N, IN, OUT, 0);
}

void op_linear_relu_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, size_t N, size_t IN,
                            size_t OUT) {
    linear_forward(dev, out, x, w, b, N, IN, OUT, 1);
}

void op_linear_relu_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem out, cd_mem x,
                             cd_mem w, size_t N, size_t IN, size_t OUT, int acc) {
    cd_mem g = cd_alloc(dev, N * OUT, "linear + ReLU pre-activation gradient");
    op_relu_backward(dev, g, dout, out, N * OUT, 0);
    op_linear_backward(dev, dx, dw, db, g, x, w, N, IN, OUT, acc);
    cd_free(dev, g);
}

/* dx (N,IN) (=/+=) dout (N,OUT) w (OUT,IN); dw (OUT,IN) += dout^T x; db (OUT) += sum_n dout */
void op_linear_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                        size_t N, size_t IN, size_t OUT, int acc) {
    if (cd_has(dx)) cd_gemm(dev, 0, 0, N, IN, OUT, 1.0f, dout, OUT, w, IN, acc ? 1.0f : 0.0f, dx, IN);
    /* both in one launch where cldetr's own kernels run: on CPUs the bits of
     * the two launches below, on GPUs the bias sums in another order */
    if (cd_has(dw) && cd_has(db) && cd_gemm_tn_sums(dev, OUT, IN, N, dout, OUT, x, IN, dw, IN, db)) return;
    if (cd_has(dw) && N > 0) cd_gemm(dev, 1, 0, OUT, IN, N, 1.0f, dout, OUT, x, IN, 1.0f, dw, IN);
    if (!cd_has(db) || OUT == 0 || N == 0) return;
    /* column sums: on CPUs reduce_axis_cols (a work-item per 16 columns, each
     * lane summing its column in row order, as the column-per-work-item
     * kernel it replaced did: the same bits, 16x fewer work-items); on GPUs
     * the tiled column reduction, which splits the rows over work-groups */
    ops_reduce_axis(dev, db, dout, dout, 1, N, OUT, 1.0f, 1, 0);
}

/* The batched products: on GPUs, bmm_small (cl/linear.cl) when K <= 32 and
 * M, N are small (attention at DETR's sizes, where CLBlast's tile padding and
 * copies cost 20x the arithmetic), else cd_gemm_batched (the tile kernels); on
 * CPUs cd_gemm_batched's own kernels (cl/blas.cl), faster than bmm_small
 * there (the decoder's 60 x 60 x 32 products with query groups: a training
 * step 87-93 -> 81-82 ms), with bmm_small kept for A^T B^T. */
#define BMM_SMALL_MAX_K 32
#define BMM_SMALL_MAX_MN 64
static void bmm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, cd_mem A, size_t lda, cd_mem B,
                size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt) {
    size_t batch = bt->inner * bt->outer;
    if (M == 0 || N == 0 || batch == 0) return;
    size_t lim = (size_t)1 << 31, o = bt->outer - 1, i = bt->inner - 1;
    int own = cd_gemm_kernels(dev) == CD_GEMM_ROWS && !(ta && tb);
    if (own || K == 0 || K > BMM_SMALL_MAX_K || M > BMM_SMALL_MAX_MN || N > BMM_SMALL_MAX_MN ||
        o * bt->sAo + i * bt->sA >= lim || o * bt->sBo + i * bt->sB >= lim || o * bt->sCo + i * bt->sC >= lim) {
        cd_gemm_strided(dev, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, bt);
        return;
    }
    static const char *names[4] = {"bmm_small_nn", "bmm_small_nt", "bmm_small_tn", "bmm_small_tt"};
    CD_LAUNCH3(dev, names[ta * 2 + tb], N, M, batch, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda), KI(ldb),
               KI(ldc), KUL(bt->sA), KUL(bt->sB), KUL(bt->sC), KF(beta), KU(bt->inner), KUL(bt->sAo), KUL(bt->sBo),
               KUL(bt->sCo));
}

/* The batch of a product of operands laid out as la, lb, lc */
static cd_batch batch_of(size_t inner, size_t outer, const op_bmm_layout *la, const op_bmm_layout *lb,
                         const op_bmm_layout *lc) {
    return (cd_batch){inner, outer, la->s, lb->s, lc->s, la->so, lb->so, lc->so};
}

void op_bmm_strided_forward(cd_device *dev, cd_mem out, cd_mem A, cd_mem B, size_t inner, size_t outer, size_t M,
                            size_t N, size_t K, int ta, int tb, const op_bmm_layout *la, const op_bmm_layout *lb,
                            const op_bmm_layout *lc) {
    cd_batch bt = batch_of(inner, outer, la, lb, lc);
    bmm(dev, ta, tb, M, N, K, A, la->ld, B, lb->ld, 0.0f, out, lc->ld, &bt);
}

/* With C = op(A) op(B):  d op(A) = dC op(B)^T  and  d op(B) = op(A)^T dC; a stored
 * transpose is undone by transposing the product, (X Y)^T = Y^T X^T, so each
 * gradient is one GEMM written straight into the stored layout (dA has A's,
 * dB B's). */
void op_bmm_strided_backward(cd_device *dev, cd_mem dA, cd_mem dB, cd_mem dout, cd_mem A, cd_mem B, size_t inner,
                             size_t outer, size_t M, size_t N, size_t K, int ta, int tb, const op_bmm_layout *la,
                             const op_bmm_layout *lb, const op_bmm_layout *lc, int acc_a, int acc_b) {
    size_t lda = la->ld, ldb = lb->ld, ldc = lc->ld;
    if (cd_has(dA)) {
        float beta = acc_a ? 1.0f : 0.0f;
        if (!ta) {  /* dA (M,K) = dC (M,N) op(B)^T (N,K) */
            cd_batch bt = batch_of(inner, outer, lc, lb, la);
            bmm(dev, 0, !tb, M, K, N, dout, ldc, B, ldb, beta, dA, lda, &bt);
        } else {    /* dA (K,M) = op(B) (K,N) dC^T (N,M) */
            cd_batch bt = batch_of(inner, outer, lb, lc, la);
            bmm(dev, tb, 1, K, M, N, B, ldb, dout, ldc, beta, dA, lda, &bt);
        }
    }
    if (cd_has(dB)) {
        float beta = acc_b ? 1.0f : 0.0f;
        if (!tb) {  /* dB (K,N) = op(A)^T (K,M) dC (M,N) */
            cd_batch bt = batch_of(inner, outer, la, lc, lb);
            bmm(dev, !ta, 0, K, N, M, A, lda, dout, ldc, beta, dB, ldb, &bt);
        } else {    /* dB (N,K) = dC^T (N,M) op(A) (M,K) */
            cd_batch bt = batch_of(inner, outer, lc, la, lb);
            bmm(dev, 1, ta, N, K, M, dout, ldc, A, lda, beta, dB, ldb, &bt);
        }
    }
}

/* contiguous batches: matrix b at b * rows * cols */
static op_bmm_layout dense(size_t rows, size_t cols) { return (op_bmm_layout){cols, rows * cols, 0}; }

/* out[b] (M,N) = op(A[b]) op(B[b]), contiguous batches */
void op_bmm_forward(cd_device *dev, cd_mem out, cd_mem A, cd_mem B, size_t batch, size_t M, size_t N, size_t K,
                    int ta, int tb) {
    op_bmm_layout la = dense(ta ? K : M, ta ? M : K), lb = dense(tb ? N : K, tb ? K : N), lc = dense(M, N);
    op_bmm_strided_forward(dev, out, A, B, batch, 1, M, N, K, ta, tb, &la, &lb, &lc);
}

void op_bmm_backward(cd_device *dev, cd_mem dA, cd_mem dB, cd_mem dout, cd_mem A, cd_mem B,
                     size_t batch, size_t M, size_t N, size_t K, int ta, int tb, int acc_a, int acc_b) {
    op_bmm_layout la = dense(ta ? K : M, ta ? M : K), lb = dense(tb ? N : K, tb ? K : N), lc = dense(M, N);
    op_bmm_strided_backward(dev, dA, dB, dout, A, B, batch, 1, M, N, K, ta, tb, &la, &lb, &lc, acc_a, acc_b);
}

/* ---- plain C references ------------------------------------------------- */

/* C (M,N) (= or +=) op(A) op(B), one batch, densely stored: the host GEMM reference */
static void matmul_ref(float *C, const float *A, const float *B, size_t M, size_t N, size_t K,
                       int ta, int tb, int acc) {
    cd_gemm_ref(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, acc ? 1.0f : 0.0f, C, N);
}

void op_linear_forward_ref(float *out, const float *x, const float *w, const float *b,
                           size_t N, size_t IN, size_t OUT) {
    matmul_ref(out, x, w, N, OUT, IN, 0, 1, 0);
    if (b)
        for (size_t n = 0; n < N; n++)
            for (size_t o = 0; o < OUT; o++) out[n * OUT + o] += b[o];
}

void op_linear_backward_ref(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, size_t N, size_t IN, size_t OUT, int acc) {
    if (dx) matmul_ref(dx, dout, w, N, IN, OUT, 0, 0, acc);
    if (dw) matmul_ref(dw, dout, x, OUT, IN, N, 1, 0, 1);
    if (db)
        for (size_t o = 0; o < OUT; o++) {
            double s = db[o];
            for (size_t n = 0; n < N; n++) s += dout[n * OUT + o];
            db[o] = (float)s;
        }
}

void op_bmm_forward_ref(float *out, const float *A, const float *B, size_t batch, size_t M, size_t N,
                        size_t K, int ta, int tb) {
    for (size_t b = 0; b < batch; b++)
        matmul_ref(out + b * M * N, A + b * M * K, B + b * K * N, M, N, K, ta, tb, 0);
}

void op_bmm_backward_ref(float *dA, float *dB, const float *dout, const float *A, const float *B,
                         size_t batch, size_t M, size_t N, size_t K, int ta, int tb, int acc_a, int acc_b) {
    for (size_t b = 0; b < batch; b++) {
        const float *Ab = A + b * M * K, *Bb = B + b * K * N, *dC = dout + b * M * N;
        if (dA) {
            if (!ta) matmul_ref(dA + b * M * K, dC, Bb, M, K, N, 0, !tb, acc_a);
            else     matmul_ref(dA + b * M * K, Bb, dC, K, M, N, tb, 1, acc_a);
        }
        if (dB) {
            if (!tb) matmul_ref(dB + b * K * N, Ab, dC, K, N, M, !ta, 0, acc_b);
            else     matmul_ref(dB + b * K * N, dC, Ab, N, K, M, 1, ta, acc_b);
        }
    }
}
