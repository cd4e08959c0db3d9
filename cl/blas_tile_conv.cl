/* The convolution's products on the GPU tile kernels with implicit operands
 * (src/device/blas_tile_conv.c, cd_gemm_conv; src/ops/conv.c with
 * CLDETR_CONV_TILES=implicit). A program of its own, built only when a conv
 * runs this way, with cl/blas_tile.cl before it as a prelude (gemm_tile, the
 * operand views and the tile shapes' constants; its kernels left out). */

/* The convolution's products with implicit operands (cd_gemm_conv), one
 * matrix, k in nsplit parts as above (the forward's parts are written in
 * (B, M, P) order too, and summed as one row of M * N):
 *   conv_fw: out (B, M, P) = alpha W (M, CRS) . im2col(x) (CRS, B*P)      [NN, bv 1, cv 1]
 *   conv_dw: dW (M, CRS) = alpha dout (B, M, P) . im2col(x)^T + beta dW    [NT, av 1, bv 1]
 *   conv_dx: dcol (CRS, B*P) = alpha W^T . dout (B, K, P)                  [TN, bv 2]
 * Each entry is the fma chain over k of the product on im2col's columns and
 * packed copies: the same bits. */
#define GEMM_CONV_ARGS                                                                                        \
    __global float *C, const ulong C_off, __global const float *A, const ulong A_off, __global const float *B, \
        const ulong B_off, const int M, const int N, const int K, const int lda, const int ldb, const int ldc,  \
        const ulong sC, const float alpha, const float beta, const int nsplit, const int kc, const int Cin,    \
        const int H, const int W, const int R, const int S, const int Wo, const int stride, const int pad,     \
        const int dil, const int P, const int nch, const float inv_RS, const float inv_S, const float inv_Wo,  \
        const float inv_P
#define GEMM_CONV_BODY(TA, TB, AV, BV, CV, BM, BN, BK, WX, WY, DB)                                            \
    __local float4 As4[(1 + (DB)) * (BK) * ((BM) + TILE_PAD) / 4];                                            \
    __local float4 Bs4[(1 + (DB)) * (BK) * ((BN) + TILE_PAD) / 4];                                            \
    const conv_geom cg = {Cin, H, W, R, S, Wo, stride, pad, dil, P, nch, inv_RS, inv_S, inv_Wo, inv_P};       \
    gemm_tile(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, 0, 0, sC, alpha, beta, nsplit, kc, 1,  \
              0, 0, 0, C, 0, C, 0, As4, Bs4, TA, TB, BM, BN, BK, WX, WY, DB, AV, BV, CV, cg)
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_conv_fw(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(0, 0, 0, 1, 1, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_conv_dw(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(0, 1, 1, 1, 0, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TS_WX, TS_WY, 1))) void gemm_tile_small_conv_dx(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(1, 0, 0, 2, 0, TS_BM, TS_BN, TS_BK, TS_WX, TS_WY, TS_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_conv_fw(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(0, 0, 0, 1, 1, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_conv_dw(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(0, 1, 1, 1, 0, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
__kernel __attribute__((reqd_work_group_size(TL_WX, TL_WY, 1))) void gemm_tile_large_conv_dx(GEMM_CONV_ARGS) {
    GEMM_CONV_BODY(1, 0, 0, 2, 0, TL_BM, TL_BN, TL_BK, TL_WX, TL_WY, TL_DB);
}
