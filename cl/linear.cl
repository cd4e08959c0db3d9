/* The bias kernel of the linear op (src/ops/linear.c) and the small batched
 * products of attention on GPUs (bmm_small); the other products are cd_gemm's
 * (cl/blas_tile.cl on GPUs, cl/blas.cl on CPUs). Conventions as in common.cl: (buffer,
 * float offset) pairs, ulong sizes, a guard on every global id. */

/* out[n, o] += b[o]                              out (N, OUT), b (OUT)
 * Range (OUT, N): no division per element (a 64-bit remainder ran scalar on
 * PoCL, 46 us for 480 x 128). */
__kernel void linear_bias_forward(__global float *out, const ulong out_off,
                                  __global const float *b, const ulong b_off,
                                  const ulong N, const ulong OUT, const int relu) {
    out += out_off;
    b += b_off;
    const size_t o = get_global_id(0), n = get_global_id(1);
    if (o >= OUT || n >= N) return;
    const float v = out[n * OUT + o] + b[o];
    out[n * OUT + o] = relu && v < 0.0f ? 0.0f : v;   /* relu = 1: then relu_forward's ReLU */
}

/* C[b] (M, N) = op(A[b]) op(B[b]) (+ beta C[b]) for K <= 32: attention's
 * products in DETR (batch * heads of 16-20 x 16-32 x 16-32). CLBlast pads every
 * one of them to its 128 x 64 x 32 tile and copies A, B and C through pad
 * passes (the cost: bench/README.md). One work-item per element of C,
 * range (N, M, batch); the k loop is unrolled to 32 with a uniform guard, so
 * PoCL vectorises the body across n: loads along n are contiguous when B is
 * stored (K, N) (tb = 0), loads of A are uniform across the lanes. A kernel
 * per (ta, tb) keeps those strides compile-time constants. C sums in k order, one
 * fma per term. */
static inline __attribute__((always_inline)) void bmm_small(__global float *C, __global const float *A,
                                                           __global const float *B, const int M, const int N,
                                                           const int K, const int lda, const int ldb, const int ldc,
                                                           const ulong sA, const ulong sB, const ulong sC,
                                                           const float beta, const int ta, const int tb,
                                                           const uint zi, const ulong sAo, const ulong sBo,
                                                           const ulong sCo) {
    const int n = (int)get_global_id(0), m = (int)get_global_id(1), b = (int)get_global_id(2);
    if (n >= N || m >= M) return;
    __global const float *a = A + batch_offset(b, zi, sA, sAo), *bb = B + batch_offset(b, zi, sB, sBo);
    float acc = 0.0f;
#pragma unroll
    for (int k = 0; k < 32; k++)
        if (k < K) acc = fma(a[ta ? k * lda + m : m * lda + k], bb[tb ? n * ldb + k : k * ldb + n], acc);
    __global float *c = C + batch_offset(b, zi, sC, sCo) + m * ldc + n;
    *c = beta != 0.0f ? beta * *c + acc : acc;
}

/* One kernel per (ta, tb) on purpose: each has its strides as compile-time
 * constants, and the device layer finds kernels by their `__kernel void name(`
 * line, so no macro generates them. */
__kernel void bmm_small_nn(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float beta, const uint zi, const ulong sAo, const ulong sBo,
                           const ulong sCo) {
    bmm_small(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, sA, sB, sC, beta, 0, 0, zi, sAo, sBo,
              sCo);
}

__kernel void bmm_small_nt(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float beta, const uint zi, const ulong sAo, const ulong sBo,
                           const ulong sCo) {
    bmm_small(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, sA, sB, sC, beta, 0, 1, zi, sAo, sBo,
              sCo);
}

__kernel void bmm_small_tn(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float beta, const uint zi, const ulong sAo, const ulong sBo,
                           const ulong sCo) {
    bmm_small(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, sA, sB, sC, beta, 1, 0, zi, sAo, sBo,
              sCo);
}

__kernel void bmm_small_tt(__global float *C, const ulong C_off, __global const float *A, const ulong A_off,
                           __global const float *B, const ulong B_off, const int M, const int N, const int K,
                           const int lda, const int ldb, const int ldc, const ulong sA, const ulong sB,
                           const ulong sC, const float beta, const uint zi, const ulong sAo, const ulong sBo,
                           const ulong sCo) {
    bmm_small(C + C_off, A + A_off, B + B_off, M, N, K, lda, ldb, ldc, sA, sB, sC, beta, 1, 1, zi, sAo, sBo,
              sCo);
}
