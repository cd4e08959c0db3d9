/* cldetr's own GEMM kernels (src/device/blas.c, cd_gemm). On CPUs, the row
 * kernels: CLBlast's Xgemm needs its operands padded to its tiles and the
 * reduction index as their row index, so most of DETR's products paid one to
 * three copy kernels besides the GEMM, and small products ran at a fraction
 * of its speed (bench/README.md); these read the operands where they are, in
 * one launch. GPUs run cl/blas_tile.cl's kernels instead. Row-major C (M, N)
 * = alpha op(A) op(B) + beta C for a batch of matrices sA, sB, sC floats apart
 * (dim 2 of the range; in two levels, see batch_offset in common.cl).
 * Conventions as in common.cl. */

/* op(B) = B (K, N) stored with n contiguous; op(A) = A (M, K) (ta = 0) or
 * A^T with A stored (K, M) (ta = 1). A work-item owns 8 rows by 32 columns of
 * C, two float16 per row, and runs along k: per k, two vector loads of B's row
 * and eight broadcasts of A feed 16 vector FMAs. Dim 0 runs over the row
 * blocks, so consecutive work-items read the same columns of B (a 32-column
 * stripe of B stays in cache while every row block uses it). Rows past M read
 * a clamped row and store nothing; a last block narrower than 32 columns runs
 * scalar. Every element sums its products in k order, one fma each. Range
 * (ceil(M/8), ceil(N/32), batch). */
static inline __attribute__((always_inline)) void gemm_rows(__global float *C, __global const float *A,
                                                           __global const float *B, const int M, const int N,
                                                           const int K, const int lda, const int ldb,
                                                           const int ldc, const float alpha, const float beta,
                                                           const int ta) {
    const int m0 = (int)get_global_id(0) * 8, n0 = (int)get_global_id(1) * 32;
    if (m0 >= M || n0 >= N) return;
    __global const float *a[8];
#pragma unroll
    for (int i = 0; i < 8; i++) a[i] = A + (ta ? min(m0 + i, M - 1) : min(m0 + i, M - 1) * lda);
    const int sk = ta ? lda : 1;   /* step of a[i] along k */
    if (n0 + 32 <= N) {
        float16 acc[8][2];
#pragma unroll
        for (int i = 0; i < 8; i++) { acc[i][0] = (float16)(0.0f); acc[i][1] = (float16)(0.0f); }
        __global const float *b = B + n0;
        for (int k = 0; k < K; k++) {
            const float16 b0 = vload16(0, b), b1 = vload16(1, b);
            b += ldb;
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float16 av = (float16)(a[i][k * sk]);
                acc[i][0] = fma(av, b0, acc[i][0]);
                acc[i][1] = fma(av, b1, acc[i][1]);
            }
        }
#pragma unroll
        for (int i = 0; i < 8; i++) {
            if (m0 + i >= M) break;
            __global float *c = C + (m0 + i) * ldc + n0;
            const float16 r0 = alpha * acc[i][0], r1 = alpha * acc[i][1];
            if (beta != 0.0f) {
                vstore16(fma((float16)(beta), vload16(0, c), r0), 0, c);
                vstore16(fma((float16)(beta), vload16(1, c), r1), 1, c);
            } else {
                vstore16(r0, 0, c);
                vstore16(r1, 1, c);
            }
        }
        return;
    }
    for (int i = 0; i < 8; i++) {
        if (m0 + i >= M) break;
        for (int n = n0; n < N; n++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc = fma(a[i][k * sk], B[k * ldb + n], acc);
            __global float *c = C + (m0 + i) * ldc + n;
            if (beta != 0.0f) *c = fma(beta, *c, alpha * acc);
            else *c = alpha * acc;
        }
    }
}

__kernel void gemm_rows_nn(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float alpha, const float beta, const uint zi, const ulong sAo,
                           const ulong sBo, const ulong sCo) {
    const ulong z = get_global_id(2);
    gemm_rows(C + C_off + batch_offset(z, zi, sC, sCo), A + A_off + batch_offset(z, zi, sA, sAo),
              B + B_off + batch_offset(z, zi, sB, sBo), M, N, K, lda, ldb, ldc, alpha, beta, 0);
}

/* With has_sums, one more column of work-items (dim 1 index ceil(N/32), one
 * matrix) adds the row sums of op(A) = A^T to sums, 16 per work-item (the
 * first ceil(M/16) of the column): sums[m] += sum over k of A[k][m], in k
 * order from 0 (a linear layer's bias gradient with its weight gradient, as
 * reduce_axis_cols sums a column: the same bits). */
__kernel void gemm_rows_tn(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float alpha, const float beta, const uint zi, const ulong sAo,
                           const ulong sBo, const ulong sCo, __global float *sums, const ulong sums_off,
                           const int has_sums) {
    const ulong z = get_global_id(2);
    if (has_sums && (int)get_global_id(1) * 32 >= N) {   /* 16 sums per work-item, a lane each */
        const int m0 = (int)get_global_id(0) * 16;
        if (m0 >= M) return;
        A += A_off + m0;
        sums += sums_off + m0;
        if (m0 + 16 <= M) {
            float16 s16 = (float16)(0.0f);
            for (int k = 0; k < K; k++) s16 += vload16(0, A + (ulong)k * lda);
            vstore16(vload16(0, sums) + s16, 0, sums);
            return;
        }
        for (int i = 0; i < M - m0; i++) {
            float t = 0.0f;
            for (int k = 0; k < K; k++) t += A[(ulong)k * lda + i];
            sums[i] += t;
        }
        return;
    }
    gemm_rows(C + C_off + batch_offset(z, zi, sC, sCo), A + A_off + batch_offset(z, zi, sA, sAo),
              B + B_off + batch_offset(z, zi, sB, sBo), M, N, K, lda, ldb, ldc, alpha, beta, 1);
}

/* op(A) = A (M, K), op(B) = B^T with B stored (N, K): both operands have the
 * reduction index contiguous, so a work-item takes a 4 x 4 block of C as dot
 * products of rows (dot4x4_add, common.cl). Dim 0 runs over the column
 * blocks: consecutive work-items share A's four rows. has_bias: C[m][n] gets
 * bias[n] added to the product (a linear layer's bias, cd_gemm_bias_nt), and
 * with has_bias = 2 a ReLU after it, as relu_forward computes it (beta 0).
 * Range (ceil(N/4), ceil(M/4), batch). */
__kernel void gemm_dot_nt(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                          __global const float *B, const ulong B_off, const int M, const int N, const int K,
                          const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                          const ulong sC, const float alpha, const float beta, __global const float *bias,
                          const ulong bias_off, const int has_bias, const uint zi, const ulong sAo, const ulong sBo,
                          const ulong sCo) {
    const ulong z = get_global_id(2);
    C += C_off + batch_offset(z, zi, sC, sCo);
    A += A_off + batch_offset(z, zi, sA, sAo);
    B += B_off + batch_offset(z, zi, sB, sBo);
    bias += bias_off;
    const int n0 = (int)get_global_id(0) * 4, m0 = (int)get_global_id(1) * 4;
    if (n0 >= N || m0 >= M) return;
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    __global const float *a[4], *b[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        a[i] = A + min(m0 + i, M - 1) * lda;
        b[i] = B + min(n0 + i, N - 1) * ldb;
    }
    dot4x4_add(acc, tail, a, b, 0, K);
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    if (m0 + 4 <= M && n0 + 4 <= N && beta == 0.0f) {   /* a whole block: a vector store per row */
        const float4 bv = has_bias ? vload4(0, bias + n0) : (float4)(0.0f);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float4 r = alpha * (float4)(sums[i][0], sums[i][1], sums[i][2], sums[i][3]);
            if (has_bias) r += bv;
            if (has_bias == 2) r = select(r, (float4)(0.0f), isless(r, (float4)(0.0f)));   /* relu_forward's */
            vstore4(r, 0, C + (m0 + i) * ldc + n0);
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (m0 + i >= M || n0 + j >= N) continue;
            __global float *c = C + (m0 + i) * ldc + n0 + j;
            float r = alpha * sums[i][j];
            if (has_bias) r += bias[n0 + j];   /* after the rounding of the product, as a separate add */
            if (has_bias == 2 && r < 0.0f) r = 0.0f;
            if (beta != 0.0f) *c = fma(beta, *c, r);
            else *c = r;
        }
}
