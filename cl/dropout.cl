/* Counter-based random numbers and dropout. philox_uniform is in
 * cl/common.cl (fused attention draws the same masks):
 *
 * uniform(seed, stream, i) = Philox-4x32-10 (Salmon et al. 2011) of the counter
 * (i_lo, i_hi, stream_lo, stream_hi) under the key (seed_lo, seed_hi); the
 * first output word's top 24 bits, times 2^-24, in [0, 1). Integer operations
 * and one exact float conversion: every device gives the same bits, and
 * op_dropout_uniform_ref in src/ops/dropout.c is the same function on the host.
 * Conventions: see cl/common.cl.
 *
 * Why this shape: philox_uniform is always_inline with the rounds unrolled so
 * PoCL vectorises the kernel across work-items (a call left in the body keeps
 * it scalar), and the 32x32 -> 64 products are 64-bit multiplies of
 * zero-extended words, which vectorise better than mul_hi. Timings:
 * bench/README.md. */

/* u[j] = uniform(seed, stream, first + j), for tests and other random needs */
__kernel void random_uniform(__global float *u, const ulong u_off, const ulong seed, const ulong stream,
                             const ulong first, const ulong n) {
    u += u_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    u[gid] = philox_uniform(seed, stream, first + gid);
}

/* out = x * scale where uniform >= p, else 0; scale = 1/(1-p) (0 when p = 1).
 * A select, not a multiply by the mask, so inf/NaN in dropped x give 0. */
__kernel void dropout_forward(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                              const ulong n, const float p, const float scale, const ulong seed, const ulong stream) {
    out += out_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    out[gid] = philox_uniform(seed, stream, gid) >= p ? x[gid] * scale : 0.0f;
}

/* dx (=/+=) dout * scale where the forward kept the element (same mask, recomputed) */
__kernel void dropout_backward(__global float *dx, const ulong dx_off, __global const float *dout,
                               const ulong dout_off, const ulong n, const float p, const float scale,
                               const ulong seed, const ulong stream, const int acc) {
    dx += dx_off; dout += dout_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float v = philox_uniform(seed, stream, gid) >= p ? dout[gid] * scale : 0.0f;
    dx[gid] = acc ? dx[gid] + v : v;
}
