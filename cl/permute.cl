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

/* The same over the range (od3, od2, od0*od1) with int indices (every size
 * below 2^24 and n below 2^31; the host checks): dim 0 is the output's last
 * axis, so the stores of a vector of work-items are contiguous, and the one
 * division per work-item (div_nonneg) splits a value uniform across it (the
 * 1-D kernel's 64-bit divisions run scalar on PoCL: 104 us for the decoder's
 * 61,440 floats in training with query groups). inv_od1 = 1/od1. */
__kernel void permute4_3d(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                          const int od1, const int od2, const int od3, const int xs0, const int xs1, const int xs2,
                          const int xs3, const int n12, const float inv_od1, const int acc) {
    out += out_off; x += x_off;
    const int i3 = (int)get_global_id(0), i2 = (int)get_global_id(1), z = (int)get_global_id(2);
    if (i3 >= od3 || i2 >= od2 || z >= n12) return;
    const int i0 = div_nonneg(z, od1, inv_od1), i1 = z - i0 * od1;
    const float v = x[i0 * xs0 + i1 * xs1 + i2 * xs2 + i3 * xs3];
    const int o = (z * od2 + i2) * od3 + i3;
    out[o] = acc ? out[o] + v : v;
}

/* CPUs, when out's last axis is also x's (xs3 == 1) and a multiple of 16
 * long (attention's head dim): a work-item per output row of od3 floats, one
 * vector load and store per 16, over the range (od2, od0*od1). permute4_3d's
 * element per work-item paid PoCL's per-item cost on attention's small
 * tensors. The same values moved: the same bits. */
__kernel void permute4_rows(__global float *out, const ulong out_off, __global const float *x, const ulong x_off,
                            const int od1, const int od2, const int od3, const int xs0, const int xs1,
                            const int xs2, const int n12, const float inv_od1, const int acc) {
    out += out_off; x += x_off;
    const int i2 = (int)get_global_id(0), z = (int)get_global_id(1);
    if (i2 >= od2 || z >= n12) return;
    const int i0 = div_nonneg(z, od1, inv_od1), i1 = z - i0 * od1;
    __global const float *src = x + i0 * xs0 + i1 * xs1 + i2 * xs2;
    __global float *dst = out + (z * od2 + i2) * od3;
    for (int j = 0; j < od3; j += 16) {
        const float16 v = vload16(0, src + j);
        vstore16(acc ? vload16(0, dst + j) + v : v, 0, dst + j);
    }
}
