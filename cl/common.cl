/* Prepended by the device layer (src/device/device.c) to every cl/X.cl before
 * it is built, embedded or from CLDETR_KERNEL_DIR; a `#line 1 "X.cl"` after it
 * keeps compiler messages at X.cl:LINE. It holds the helpers that several
 * kernel files use, and states the conventions of them all.
 *
 * Conventions of every cl/ file (the host side is cd_launch in src/device/):
 * - each buffer argument is a pair `__global float *x, const ulong x_off`, and
 *   the kernel starts with `x += x_off;` (offsets count floats, as CLBlast's);
 * - sizes are passed as `const ulong n` (or int/uint where small), and every
 *   kernel guards `if (gid >= n) return;` because global sizes are rounded up
 *   (the one exception: a kernel launched by CD_LAUNCH1_SPLIT has no guard and
 *   a guarded twin, NAME_tail, that runs the rest: see cl/optim.cl);
 * - OpenCL C 1.2, no extensions, no fast-math.
 * Backward kernels take `acc`: 0 writes the gradient (the old value is never
 * read, so garbage or NaN there is harmless), 1 adds to it. */

/* Offset of matrix z of a batched GEMM whose batch is outer x inner: z = o *
 * zi + i lies at o * so + i * s (one level, as most calls: zi = the batch, so
 * unused). Attention's heads read (B, L, heads * hd) tensors in place this
 * way: inner = heads (s = hd), outer = images. */
static inline ulong batch_offset(const ulong z, const uint zi, const ulong s, const ulong so) {
    const ulong o = (ulong)((uint)z / zi);
    return o * so + (z - o * zi) * s;
}

/* The sum (op 0) or maximum (op 1) of v over the work-group, returned to every
 * work-item: a tree in `red` (local size floats; the local size is a power of
 * two), so the order of the sum, and the result, are fixed for a local size.
 * red may be reused after the call. */
static inline __attribute__((always_inline)) float wg_reduce(__local float *red, float v, const int op) {
    const size_t lid = get_local_id(0), L = get_local_size(0);
    red[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = L / 2; h > 0; h >>= 1) {
        if (lid < h) red[lid] = op ? fmax(red[lid], red[lid + h]) : red[lid] + red[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}
#define wg_sum(red, v) wg_reduce(red, v, 0)
#define wg_max(red, v) wg_reduce(red, v, 1)

/* a / d for d >= 1 and 0 <= a < 2^24 without an integer divide (scalar on CPUs)
 * or floor() (a library call on PoCL): the truncated float quotient is within
 * 1 of the true one there, and one step either way corrects it. inv_d = 1.0f / d
 * from the host. Negative a gives some q; callers reject a < 0 themselves. */
static inline __attribute__((always_inline)) int div_nonneg(int a, int d, float inv_d) {
    int q = (int)((float)a * inv_d);
    if ((q + 1) * d <= a) q++;
    if (q * d > a) q--;
    return q;
}

/* Horizontal sums of a vector's lanes (cl/batchnorm.cl's sum8, conv_dw_nt) add
 * lanes read back from a volatile private copy: from the vector itself, LLVM's
 * vector combining turns `v.s0 + v.s1` into a shufflevector with undefined
 * lanes, on which oclgrind's --uninitialized (21.10) crashes (docs/testing.md).
 * Not out-of-line helpers either: PoCL (3.1) then needs its inline-kernels
 * pass, which fails in a forked process. Same sums, same order, same rounding;
 * a few private stores per work-item. */

/* A 4 x 4 block of dot products of rows with a contiguous reduction index
 * (conv_dw_nt, gemm_dot_nt): a work-item runs along the reduction with float16
 * loads and 16 float16 FMAs per 8 loads (explicit vectors: PoCL does not
 * vectorise across work-items a body with a run-time loop).
 * dot4x4_zero: both set to 0. dot4x4_add: acc and tail += the products of the rows a[i] and c[j] over
 * [p0, p1), 16 at a time, then one by one. dot4x4_sums: the sixteen totals. */
static inline __attribute__((always_inline)) void dot4x4_zero(float16 acc[4][4], float tail[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) { acc[i][j] = (float16)(0.0f); tail[i][j] = 0.0f; }
}

static inline __attribute__((always_inline)) void dot4x4_add(float16 acc[4][4], float tail[4][4],
                                                             __global const float *a[4],
                                                             __global const float *c[4], const int p0,
                                                             const int p1) {
    int p = p0;
    for (; p + 16 <= p1; p += 16) {
        float16 av[4], cv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) { av[i] = vload16(0, a[i] + p); cv[i] = vload16(0, c[i] + p); }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], cv[j], acc[i][j]);
    }
    for (; p < p1; p++)
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) tail[i][j] = fma(a[i][p], c[j][p], tail[i][j]);
}

/* The sum of a float16's lanes: halves, quarters, eighths, then the last two
 * lanes through the volatile copy above. */
static inline __attribute__((always_inline)) float hsum16(const float16 v) {
    const float8 h8 = v.lo + v.hi;
    const float4 h4 = h8.lo + h8.hi;
    const float2 h2 = h4.lo + h4.hi;
    volatile float l[2];
    l[0] = h2.x;
    l[1] = h2.y;
    return l[0] + l[1];
}

/* The largest of a float16's lanes (fmax: NaN lanes are ignored), the same way. */
static inline __attribute__((always_inline)) float hmax16(const float16 v) {
    const float8 h8 = fmax(v.lo, v.hi);
    const float4 h4 = fmax(h8.lo, h8.hi);
    const float2 h2 = fmax(h4.lo, h4.hi);
    volatile float l[2];
    l[0] = h2.x;
    l[1] = h2.y;
    return fmax(l[0], l[1]);
}

/* out[i*ld + j] (add: +=, else =) sums[i][j] for i < rows, j < cols: a
 * vector per row when the block is whole (16 guarded scalar stores were most
 * of a work-item's cost on short reductions), the same values either way. */
static inline __attribute__((always_inline)) void dot4x4_store(__global float *out, const ulong ld, const int rows,
                                                               const int cols, const float sums[4][4],
                                                               const int add) {
    if (rows >= 4 && cols >= 4) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float4 v = (float4)(sums[i][0], sums[i][1], sums[i][2], sums[i][3]);
            __global float *o = out + i * ld;
            vstore4(add ? vload4(0, o) + v : v, 0, o);
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (i < rows && j < cols) out[i * ld + j] = add ? out[i * ld + j] + sums[i][j] : sums[i][j];
}

/* The 16 totals hsum16(acc[i][j]) + tail[i][j], into r[i][j]: the sixteen
 * halvings of hsum16 become four levels of whole-vector adds, two accumulators per add at
 * the first level, four at the second, and so on (15 adds for 16 sums, not
 * 16 x 4 narrowing adds and 16 private round trips). Each lane adds the same
 * two numbers as hsum16 does at that level, so every sum has the same bits. */
static inline __attribute__((always_inline)) void dot4x4_sums(const float16 acc[4][4], const float tail[4][4],
                                                              float r[4][4]) {
    float16 w[8], x[4], y[2];
#pragma unroll
    for (int q = 0; q < 8; q++) {       /* halves: [h8(v 2q) | h8(v 2q+1)], v = 4 i + j */
        const float16 a = acc[q >> 1][(q & 1) * 2], b = acc[q >> 1][(q & 1) * 2 + 1];
        w[q] = (float16)(a.lo, b.lo) + (float16)(a.hi, b.hi);
    }
#pragma unroll
    for (int q = 0; q < 4; q++) {       /* quarters: h4 of four accumulators */
        const float16 a = w[2 * q], b = w[2 * q + 1];
        x[q] = (float16)(a.s0123, a.s89ab, b.s0123, b.s89ab) + (float16)(a.s4567, a.scdef, b.s4567, b.scdef);
    }
#pragma unroll
    for (int q = 0; q < 2; q++) {       /* eighths: h2 of eight */
        const float16 a = x[2 * q], b = x[2 * q + 1];
        y[q] = (float16)(a.s01, a.s45, a.s89, a.scd, b.s01, b.s45, b.s89, b.scd) +
               (float16)(a.s23, a.s67, a.sab, a.sef, b.s23, b.s67, b.sab, b.sef);
    }
    float l[16];
    vstore16((float16)(y[0].even, y[1].even) + (float16)(y[0].odd, y[1].odd), 0, l);
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) r[i][j] = l[4 * i + j] + tail[i][j];
}

/* uniform(seed, stream, i) in [0, 1): dropout's counter-based random numbers
 * (cl/dropout.cl says how and why); cl/attention.cl redraws the same masks. */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline __attribute__((always_inline)) float philox_uniform(ulong seed, ulong stream, ulong i) {
    uint c0 = (uint)i, c1 = (uint)(i >> 32), c2 = (uint)stream, c3 = (uint)(stream >> 32);
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        const ulong p0 = (ulong)PHILOX_M0 * c0, p1 = (ulong)PHILOX_M1 * c2;
        const uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
        const uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    return (float)(c0 >> 8) * (1.0f / 16777216.0f);
}
