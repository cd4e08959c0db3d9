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
