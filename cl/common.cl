/* Prepended by the device layer (src/device/device.c) to every cl/X.cl before
 * it is built, embedded or from CLDETR_KERNEL_DIR; a `#line 1 "X.cl"` after it
 * keeps compiler messages at X.cl:LINE. It holds the helpers that several
 * kernel files use, and states the conventions of them all.
 *
 * Conventions of every cl/ file (the host side is cd_launch in src/device/):
 * - each buffer argument is a pair `__global float *x, const ulong x_off`, and
 *   the kernel starts with `x += x_off;` (offsets count floats, as CLBlast's);
 * - sizes are passed as `const ulong n` (or int/uint where small), and every
 *   kernel guards `if (gid >= n) return;` because global sizes are rounded up;
 * - OpenCL C 1.2, no extensions, no fast-math.
 * Backward kernels take `acc`: 0 writes the gradient (the old value is never
 * read, so garbage or NaN there is harmless), 1 adds to it. */

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
