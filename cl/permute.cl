/* The 4-axis permute of src/ops/permute.c (conventions: cl/common.cl). */

/* out (=/+=) x with 4 axes reordered. One item per output element (coalesced
 * writes); od1..od3 are out's sizes of axes 1..3, xs0..xs3 the strides in x of
 * the x axis that out's axis a is (x's stride of axis perm[a]). */
__kernel void permute4(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                       const ulong n, const ulong od1, const ulong od2, const ulong od3,
                       const ulong xs0, const ulong xs1, const ulong xs2, const ulong xs3, const int acc) {
    out += out_off; x += x_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    /* remainders as t - q * d: a division and a remainder of the same operands
     * become an LLVM `freeze`, which oclgrind 21.10's --uninitialized stops at */
    ulong t = gid, q;
    q = t / od3; ulong i3 = t - q * od3; t = q;
    q = t / od2; ulong i2 = t - q * od2; t = q;
    q = t / od1; ulong i1 = t - q * od1; t = q;
    float v = x[t * xs0 + i1 * xs1 + i2 * xs2 + i3 * xs3];
    out[gid] = acc ? out[gid] + v : v;
}
