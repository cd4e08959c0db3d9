/* Reductions over one axis, deterministic (fixed order, no atomics).
 * Conventions: see cl/common.cl. */

/* out[g, i] (=/+=) alpha * sum over r in chunk s of f(x[o, r, i])
 *   x, y (O, R, I); g = o * S + s; out (O, S, I) (the partial sums of S chunks
 *   of Rc rows each, or (O, I) when S == 1);
 *   f = x (mode 0), x*x (mode 1), x*y (mode 2; y unused otherwise).
 * Launch: local (LI, LR), global (ceil(I / LI) * LI, O * S * LR); LR a power of
 * two. Items along dim 0 read consecutive i (coalesced when I > 1); the LR
 * lanes of a column stride over r, then a local-memory tree sums the lanes.
 * Items with i >= I still take part in the barriers. */
__kernel void reduce_axis(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                          __global const float *y, const ulong y_off, const ulong R, const ulong I,
                          const ulong Rc, const ulong S, const float alpha, const int acc, const int mode,
                          __local float *lanes) {
    out += out_off; x += x_off; y += y_off;
    size_t li = get_local_id(0), lr = get_local_id(1);
    size_t LI = get_local_size(0), LR = get_local_size(1);
    size_t i = get_global_id(0);
    size_t g = get_group_id(1);
    /* g - o * S, not g % S: a division and a remainder of the same operands
     * become an LLVM `freeze`, which oclgrind 21.10's --uninitialized stops at. */
    size_t o = g / S, s = g - o * S;
    size_t r0 = s * Rc, r1 = min((size_t)R, r0 + (size_t)Rc);
    float sum = 0.0f;
    if (i < I) {
        size_t base = o * R * I + i;
        for (size_t r = r0 + lr; r < r1; r += LR) {
            float v = x[base + r * I];
            if (mode == 1) v *= v;
            else if (mode == 2) v *= y[base + r * I];
            sum += v;
        }
    }
    lanes[lr * LI + li] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = LR / 2; h > 0; h >>= 1) {
        if (lr < h) lanes[lr * LI + li] += lanes[(lr + h) * LI + li];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lr == 0 && i < I) {
        float v = alpha * lanes[li];
        size_t k = g * I + i;
        out[k] = acc ? out[k] + v : v;
    }
}

/* The same sums (S = 1) in a CPU's shape (the row kernels of devices that are
 * not GPUs): no work-group tree, whose barriers cost PoCL about 300 us a call
 * even for 20k floats. I > 1: a work-item owns 16 columns i0.. of one o and
 * runs down the R rows with a float16 sum (scalar for a last block narrower
 * than 16). I = 1: a work-item sums one row of R contiguous floats, 16 lanes
 * at a time, then the lanes and a scalar tail. Range (ceil(I/16), O). */
static inline __attribute__((always_inline)) float16 reduce_f16(__global const float *x, __global const float *y,
                                                                const ulong k, const int mode) {
    const float16 v = vload16(0, x + k);
    return mode == 1 ? v * v : mode == 2 ? v * vload16(0, y + k) : v;
}

static inline __attribute__((always_inline)) float reduce_f1(__global const float *x, __global const float *y,
                                                             const ulong k, const int mode) {
    const float v = x[k];
    return mode == 1 ? v * v : mode == 2 ? v * y[k] : v;
}

__kernel void reduce_axis_cols(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                               __global const float *y, const ulong y_off, const ulong O, const ulong R,
                               const ulong I, const float alpha, const int acc, const int mode) {
    out += out_off; x += x_off; y += y_off;
    const ulong i0 = get_global_id(0) * 16, o = get_global_id(1);
    if (i0 >= I || o >= O) return;
    const ulong base = o * R * I;
    __global float *po = out + o * I;
    if (I == 1) {
        float16 s16 = (float16)(0.0f);
        ulong r = 0;
        for (; r + 16 <= R; r += 16) s16 += reduce_f16(x, y, base + r, mode);
        float s = hsum16(s16);
        for (; r < R; r++) s += reduce_f1(x, y, base + r, mode);
        po[0] = acc ? po[0] + alpha * s : alpha * s;
        return;
    }
    if (i0 + 16 <= I) {
        float16 s16 = (float16)(0.0f);
        for (ulong r = 0; r < R; r++) s16 += reduce_f16(x, y, base + r * I + i0, mode);
        const float16 v = alpha * s16;
        vstore16(acc ? vload16(0, po + i0) + v : v, 0, po + i0);
        return;
    }
    for (ulong i = i0; i < I; i++) {
        float s = 0.0f;
        for (ulong r = 0; r < R; r++) s += reduce_f1(x, y, base + r * I + i, mode);
        po[i] = acc ? po[i] + alpha * s : alpha * s;
    }
}

/* dx[o, r, i] (=/+=) alpha * dout[o, i]          dx (O, R, I), dout (O, I); n = O*R*I */
__kernel void broadcast_axis(__global float *dx, const ulong dx_off, __global const float *dout,
                             const ulong dout_off, const ulong R, const ulong I, const ulong n,
                             const float alpha, const int acc) {
    dx += dx_off; dout += dout_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    size_t i = gid % I, o = gid / (R * I);
    float v = alpha * dout[o * I + i];
    dx[gid] = acc ? dx[gid] + v : v;
}
