/* Convolution kernels: im2col, col2im (a gather, no atomics), the packing of a
 * group of images between NCHW and the channel-major layout of the GEMMs, and
 * the bias gradient. Conventions as in common.cl.
 *
 * A group of g images is processed at once; the GEMM operands are
 *   col  (CRS, g*P)   CRS = C*R*S rows, columns j = b*P + oh*Wo + ow
 *                     (so row crs, image b starts at (crs*g + b)*P)
 *   colT (g*P, CRS)   the same, transposed (the weight gradient through CLBlast,
 *                     on GPUs; CPUs use conv_dw_nt on col)
 *   tmp  (K, g*P)     the GEMM output, channel-major over the group
 * with P = Ho*Wo. src/ops/conv.c says why each layout was chosen. */

/* Why this shape: PoCL vectorises across dim 0 only a body with no loop or call
 * left, and integer division is scalar; so every element is one work-item,
 * dims 1 and 2 carry what would need a division, and col2im has kernels with
 * the window unrolled for the common shapes (3x3 stride 1 and 2, 1x1).
 * History and timings: bench/README.md. */

/* col (CRS, g*P) from x (g, C, H, W): row crs = (c*R + r)*S + s, column
 * b*P + oh*Wo + ow; cells outside the padded input are 0. Range (P, CRS*g)
 * with z = crs*g + b, so the range writes col in order, the decoding of z is
 * uniform over dim 0, and small images still fill a work-group (a (Wo, Ho, z)
 * range gave 4x4 layers work-groups of 16 items, 2x slower). inv_* = 1/g,
 * 1/(R*S), 1/S, 1/Wo for div_nonneg: a division, even of a value uniform over
 * dim 0, is scalarised and predicated per lane in PoCL's vectorised loop. */
static inline __attribute__((always_inline)) void im2col_body(__global float *col, __global const float *x,
                                                              const int g, const int C, const int H, const int W,
                                                              const int R, const int S, const int Ho, const int Wo,
                                                              const int stride, const int pad, const int dil,
                                                              const float inv_g, const float inv_RS,
                                                              const float inv_S, const float inv_Wo) {
    const int p = (int)get_global_id(0), z = (int)get_global_id(1);
    const int crs = div_nonneg(z, g, inv_g), b = z - crs * g;
    const int c = div_nonneg(crs, R * S, inv_RS), rs = crs - c * (R * S);
    const int r = div_nonneg(rs, S, inv_S), s = rs - r * S;
    const int P = Ho * Wo;
    if (p >= P || z >= C * R * S * g) return;
    const int oh = div_nonneg(p, Wo, inv_Wo), ow = p - oh * Wo;
    const int ih = oh * stride - pad + r * dil, iw = ow * stride - pad + s * dil;
    __global const float *xp = x + ((ulong)b * C + c) * H * W;
    col[(ulong)z * P + p] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xp[ih * W + iw] : 0.0f;
}

__kernel void conv_im2col(__global float *col, const ulong col_off, __global const float *x, const ulong x_off,
                          const int g, const int C, const int H, const int W, const int R, const int S,
                          const int Ho, const int Wo, const int stride, const int pad, const int dil,
                          const float inv_g, const float inv_RS, const float inv_S, const float inv_Wo) {
    im2col_body(col + col_off, x + x_off, g, C, H, W, R, S, Ho, Wo, stride, pad, dil, inv_g, inv_RS, inv_S,
                inv_Wo);
}

/* stride 1: the loads along dim 0 are contiguous within an output row */
__kernel void conv_im2col_s1(__global float *col, const ulong col_off, __global const float *x, const ulong x_off,
                             const int g, const int C, const int H, const int W, const int R, const int S,
                             const int Ho, const int Wo, const int stride, const int pad, const int dil,
                             const float inv_g, const float inv_RS, const float inv_S, const float inv_Wo) {
    im2col_body(col + col_off, x + x_off, g, C, H, W, R, S, Ho, Wo, 1, pad, dil, inv_g, inv_RS, inv_S, inv_Wo);
}

/* The same col over the range (Wo, Ho, CRS*g), for images wide enough to
 * fill a vector: dim 0 is the output column itself, so the stores to a row of
 * col are contiguous across it and so are, at stride 1, the loads from a row
 * of x (over (P, CRS*g) the column comes from a division, and PoCL turns the
 * loads and stores into gathers and scatters). */
static inline __attribute__((always_inline)) void im2col_rows_body(__global float *col, __global const float *x,
                                                                   const int g, const int C, const int H,
                                                                   const int W, const int R, const int S,
                                                                   const int Ho, const int Wo, const int stride,
                                                                   const int pad, const int dil, const float inv_g,
                                                                   const float inv_RS, const float inv_S) {
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), z = (int)get_global_id(2);
    const int crs = div_nonneg(z, g, inv_g), b = z - crs * g;
    const int c = div_nonneg(crs, R * S, inv_RS), rs = crs - c * (R * S);
    const int r = div_nonneg(rs, S, inv_S), s = rs - r * S;
    if (ow >= Wo || oh >= Ho || z >= C * R * S * g) return;
    const int ih = oh * stride - pad + r * dil, iw = ow * stride - pad + s * dil;
    __global const float *xp = x + ((ulong)b * C + c) * H * W;
    col[((ulong)z * Ho + oh) * Wo + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xp[ih * W + iw] : 0.0f;
}

__kernel void conv_im2col_rows(__global float *col, const ulong col_off, __global const float *x, const ulong x_off,
                               const int g, const int C, const int H, const int W, const int R, const int S,
                               const int Ho, const int Wo, const int stride, const int pad, const int dil,
                               const float inv_g, const float inv_RS, const float inv_S, const float inv_Wo) {
    im2col_rows_body(col + col_off, x + x_off, g, C, H, W, R, S, Ho, Wo, stride, pad, dil, inv_g, inv_RS, inv_S);
}

__kernel void conv_im2col_rows_s1(__global float *col, const ulong col_off, __global const float *x,
                                  const ulong x_off, const int g, const int C, const int H, const int W, const int R,
                                  const int S, const int Ho, const int Wo, const int stride, const int pad,
                                  const int dil, const float inv_g, const float inv_RS, const float inv_S,
                                  const float inv_Wo) {
    im2col_rows_body(col + col_off, x + x_off, g, C, H, W, R, S, Ho, Wo, 1, pad, dil, inv_g, inv_RS, inv_S);
}

/* The window plane z = crs*g + b of the plane-per-work-item kernels below: the
 * channel plane of x it copies from, its Ho x Wo plane of col, and its window
 * row r and column s. */
static inline __attribute__((always_inline)) void im2col_plane(__global const float **plane, __global float **dst,
                                                               int *r, int *s, __global float *col,
                                                               __global const float *x, const int z, const int g,
                                                               const int C, const int H, const int W, const int R,
                                                               const int S, const int Ho, const int Wo,
                                                               const float inv_g, const float inv_RS,
                                                               const float inv_S) {
    const int crs = div_nonneg(z, g, inv_g), b = z - crs * g;
    const int c = div_nonneg(crs, R * S, inv_RS), rs = crs - c * (R * S);
    *r = div_nonneg(rs, S, inv_S);
    *s = rs - *r * S;
    *plane = x + ((ulong)b * C + c) * H * W;
    *dst = col + (ulong)z * Ho * Wo;
}

/* The same col at stride 1 in a CPU's shape (devices that are not GPUs): a
 * work-item writes one image's window plane of col, Ho rows of Wo floats,
 * range (CRS*g). Each row is x's input row shifted by s*dil - pad, copied
 * with 16-wide vector loads and stores between its zero edges. The
 * work-item-per-element kernels above ran at 10 GB/s on PoCL, a fifth of a
 * plain copy (bench/README.md). */
__kernel void conv_im2col_cpu_s1(__global float *col, const ulong col_off, __global const float *x,
                                 const ulong x_off, const int g, const int C, const int H, const int W, const int R,
                                 const int S, const int Ho, const int Wo, const int stride, const int pad,
                                 const int dil, const float inv_g, const float inv_RS, const float inv_S,
                                 const float inv_Wo) {
    const int z = (int)get_global_id(0);
    if (z >= C * R * S * g) return;
    int r, s;
    __global const float *plane;
    __global float *dst;
    im2col_plane(&plane, &dst, &r, &s, col + col_off, x + x_off, z, g, C, H, W, R, S, Ho, Wo, inv_g, inv_RS, inv_S);
    const int d = s * dil - pad;   /* iw = ow + d */
    /* outputs [lo, hi) of a row read x, the others are 0 */
    const int lo = clamp(-d, 0, Wo), hi = clamp(W - d, lo, Wo);
    for (int oh = 0; oh < Ho; oh++, dst += Wo) {
        const int ih = oh - pad + r * dil;
        int ow = 0;
        if (ih >= 0 && ih < H) {
            __global const float *src = plane + ih * W;
            for (; ow < lo; ow++) dst[ow] = 0.0f;
            for (; ow + 16 <= hi; ow += 16) vstore16(vload16(0, src + (ow + d)), 0, dst + ow);
            for (; ow < hi; ow++) dst[ow] = src[ow + d];
        }
        for (; ow + 16 <= Wo; ow += 16) vstore16((float16)(0.0f), 0, dst + ow);
        for (; ow < Wo; ow++) dst[ow] = 0.0f;
    }
}

/* dst[j] = src[2*j + first] for j < n, 0 where that column is outside [0, W):
 * a block of 16 whose 32 source floats lie inside the row is two vector
 * loads and their even lanes, the edges go one by one. */
static inline __attribute__((always_inline)) void row_s2(__global float *dst, __global const float *src, const int n,
                                                          const int first, const int W) {
    int j = 0;
    while (j < n) {
        const int iw = 2 * j + first;
        if (j + 16 <= n && iw >= 0 && iw + 32 <= W) {
            const float16 a = vload16(0, src + iw), e = vload16(1, src + iw);
            vstore16((float16)(a.even, e.even), 0, dst + j);
            j += 16;
        } else {
            dst[j] = iw >= 0 && iw < W ? src[iw] : 0.0f;
            j++;
        }
    }
}

/* The same at stride 2 (the stem's 7x7 and the stride-2 3x3s on CPUs): a
 * work-item writes one window plane; an output row's 16-float block whose 32
 * source floats lie inside x's row is two vector loads and their even lanes,
 * the edges go one by one. Range (CRS*g). */
__kernel void conv_im2col_cpu_s2(__global float *col, const ulong col_off, __global const float *x,
                                 const ulong x_off, const int g, const int C, const int H, const int W, const int R,
                                 const int S, const int Ho, const int Wo, const int stride, const int pad,
                                 const int dil, const float inv_g, const float inv_RS, const float inv_S,
                                 const float inv_Wo) {
    const int z = (int)get_global_id(0);
    if (z >= C * R * S * g) return;
    int r, s;
    __global const float *plane;
    __global float *dst;
    im2col_plane(&plane, &dst, &r, &s, col + col_off, x + x_off, z, g, C, H, W, R, S, Ho, Wo, inv_g, inv_RS, inv_S);
    const int d = s * dil - pad;   /* iw = 2*ow + d */
    for (int oh = 0; oh < Ho; oh++, dst += Wo) {
        const int ih = 2 * oh - pad + r * dil;
        if (ih < 0 || ih >= H) {
            for (int ow = 0; ow < Wo; ow++) dst[ow] = 0.0f;
            continue;
        }
        row_s2(dst, plane + ih * W, Wo, d, W);
    }
}

/* col at stride 2 from the zero-padded input xp (g, C, H+2*pad, W+2*pad),
 * Wo a multiple of 16 (the stem's 7x7): output row oh of window (r, s) is the
 * even lanes of xp's row 2*oh + r from column s on, so every block of 16 is
 * two vector loads, their even lanes and a store, with no edges to test (the
 * general kernel went one by one at each end of a row). The last block reads
 * one float past its lanes: the host gives xp 16 floats of slack. Range
 * (CRS*g). */
__kernel void conv_im2col_s2_padded(__global float *col, const ulong col_off, __global const float *xp,
                                    const ulong xp_off, const int g, const int C, const int Hp, const int Wp,
                                    const int R, const int S, const int Ho, const int Wo, const float inv_g,
                                    const float inv_RS, const float inv_S) {
    const int z = (int)get_global_id(0);
    if (z >= C * R * S * g) return;
    int r, s;
    __global const float *plane;
    __global float *dst;
    im2col_plane(&plane, &dst, &r, &s, col + col_off, xp + xp_off, z, g, C, Hp, Wp, R, S, Ho, Wo, inv_g, inv_RS,
                 inv_S);
    __global const float *src = plane + r * Wp + s;
    for (int oh = 0; oh < Ho; oh++, dst += Wo, src += 2 * Wp)
        for (int q = 0; q < Wo; q += 16) {
            const float16 a = vload16(0, src + 2 * q), e = vload16(1, src + 2 * q);
            vstore16((float16)(a.even, e.even), 0, dst + q);
        }
}

/* conv_im2col_cpu_s1 for 3x3, pad 1, dilation 1 on rows 4 wide (layer 4 of
 * a 128x128 input), where conv_im2col_cpu_s1's 16-wide copies do not fit and
 * the element kernel ran at 0.45 ns a float: a work-item takes one channel of
 * one image and writes its nine window planes, each row of a plane being the
 * input row (s = 1) or it shifted by one column with a 0 at the edge (s = 0,
 * 2), rows past the top or bottom 0. inv_g = 1/g. Range (C*g). */
__kernel void conv_im2col_k3s1p1_w4(__global float *col, const ulong col_off, __global const float *x,
                                    const ulong x_off, const int g, const int C, const int H, const int W,
                                    const int R, const int S, const int Ho, const int Wo, const int stride,
                                    const int pad, const int dil, const float inv_g, const float inv_RS,
                                    const float inv_S, const float inv_Wo) {
    const int z = (int)get_global_id(0);
    if (z >= C * g) return;
    const int c = div_nonneg(z, g, inv_g), b = z - c * g;
    __global const float *plane = x + x_off + ((ulong)b * C + c) * H * 4;
    const ulong P = (ulong)H * 4;
    for (int r = 0; r < 3; r++) {
        __global float *d0 = col + col_off + ((ulong)(c * 9 + r * 3) * g + b) * P;
        __global float *d1 = d0 + g * P, *d2 = d1 + g * P;
        for (int oh = 0; oh < H; oh++) {
            const int ih = oh - 1 + r;
            const float4 l = ih >= 0 && ih < H ? vload4(ih, plane) : (float4)(0.0f);
            vstore4((float4)(0.0f, l.s012), oh, d0);
            vstore4(l, oh, d1);
            vstore4((float4)(l.s123, 0.0f), oh, d2);
        }
    }
}

/* conv_im2col_cpu_s2 for 3x3, pad 1, dilation 1 with W = 2*Wo and Wo a
 * multiple of 4 (the stride-2 3x3s of ResNet's layers 2-4): output column ow
 * of window column s reads input column 2*ow + s - 1, so a block of outputs
 * is the even lanes (s = 1), the odd lanes (s = 2) or the odd lanes one
 * place later behind the column before the block (s = 0) of the input row.
 * A work-item takes one channel of one image and writes its nine window
 * planes (a plane per work-item left PoCL's per-item cost in charge on small
 * planes), the three of a window row from the same loads, in blocks of 16
 * outputs, then of 4. The general kernel went one by one wherever a block's
 * window crossed the row's edge, the element kernel took the 8- and 4-wide
 * outputs. inv_g = 1/g. Range (C*g). */
__kernel void conv_im2col_k3s2p1_cpu(__global float *col, const ulong col_off, __global const float *x,
                                     const ulong x_off, const int g, const int C, const int H, const int W,
                                     const int R, const int S, const int Ho, const int Wo, const int stride,
                                     const int pad, const int dil, const float inv_g, const float inv_RS,
                                     const float inv_S, const float inv_Wo) {
    const int z = (int)get_global_id(0);
    if (z >= C * g) return;
    const int c = div_nonneg(z, g, inv_g), b = z - c * g;
    __global const float *plane = x + x_off + ((ulong)b * C + c) * H * W;
    const ulong P = (ulong)Ho * Wo;
    const uint16 after = (uint16)(0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
    for (int r = 0; r < 3; r++) {
        __global float *d0 = col + col_off + ((ulong)(c * 9 + r * 3) * g + b) * P;
        __global float *d1 = d0 + g * P, *d2 = d1 + g * P;
        for (int oh = 0; oh < Ho; oh++, d0 += Wo, d1 += Wo, d2 += Wo) {
            const int ih = 2 * oh - 1 + r;
            int q = 0;
            if (ih < 0 || ih >= H) {
                for (; q < Wo; q += 4) {
                    vstore4((float4)(0.0f), 0, d0 + q);
                    vstore4((float4)(0.0f), 0, d1 + q);
                    vstore4((float4)(0.0f), 0, d2 + q);
                }
                continue;
            }
            __global const float *src = plane + ih * W;
            for (; q + 16 <= Wo; q += 16) {
                const float16 a = vload16(0, src + 2 * q), e = vload16(1, src + 2 * q);
                const float16 odd = (float16)(a.odd, e.odd);
                vstore16(shuffle2((float16)(q > 0 ? src[2 * q - 1] : 0.0f), odd, after), 0, d0 + q);
                vstore16((float16)(a.even, e.even), 0, d1 + q);
                vstore16(odd, 0, d2 + q);
            }
            for (; q < Wo; q += 4) {
                const float8 a = vload8(0, src + 2 * q);
                vstore4((float4)(q > 0 ? src[2 * q - 1] : 0.0f, a.s1, a.s3, a.s5), 0, d0 + q);
                vstore4(a.even, 0, d1 + q);
                vstore4(a.odd, 0, d2 + q);
            }
        }
    }
}

/* colT (g*P, CRS) from x (g, C, H, W), the transpose of conv_im2col's col.
 * Range (CRS, Wo, Ho*g): dim 0 runs along a row of colT, so the stores are
 * contiguous. */
__kernel void conv_im2col_t(__global float *colT, const ulong colT_off, __global const float *x, const ulong x_off,
                            const int g, const int C, const int H, const int W, const int R, const int S,
                            const int Ho, const int Wo, const int stride, const int pad, const int dil,
                            const float inv_g, const float inv_RS, const float inv_S, const float inv_Ho) {
    colT += colT_off;
    x += x_off;
    const int crs = (int)get_global_id(0), ow = (int)get_global_id(1), y = (int)get_global_id(2);
    const int b = div_nonneg(y, Ho, inv_Ho), oh = y - b * Ho;
    const int CRS = C * R * S;
    if (crs >= CRS || ow >= Wo || y >= Ho * g) return;
    const int c = div_nonneg(crs, R * S, inv_RS), rs = crs - c * (R * S);
    const int r = div_nonneg(rs, S, inv_S), s = rs - r * S;
    const int ih = oh * stride - pad + r * dil, iw = ow * stride - pad + s * dil;
    const ulong j = (ulong)y * Wo + ow;                   /* = b*P + oh*Wo + ow */
    __global const float *xb = x + (ulong)b * C * H * W;
    colT[j * CRS + crs] = ih >= 0 && ih < H && iw >= 0 && iw < W ? xb[(c * H + ih) * W + iw] : 0.0f;
}

/* dx (g, C, H, W) (=, or += when acc) the sum of every entry of dcol (CRS, g*P)
 * that im2col took from that cell: each input cell gathers its own
 * contributions (deterministic, no atomics), in increasing (r, s). Range
 * (W, H, g*C), z = b*C + c. The *_k3s1, *_k3s2 and *_k1 kernels fix R = S and
 * the stride so the window loops unroll and the body vectorises. */
static inline __attribute__((always_inline)) void col2im_body(__global float *dx, __global const float *dcol,
                                                              const int g, const int C, const int H, const int W,
                                                              const int R, const int S, const int Ho, const int Wo,
                                                              const int stride, const int pad, const int dil,
                                                              const float inv_stride, const float inv_C,
                                                              const int acc) {
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), z = (int)get_global_id(2);
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    if (iw >= W || ih >= H || z >= g * C) return;
    const int P = Ho * Wo;
    float sum = 0.0f;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int th = ih + pad - r * dil;          /* = oh * stride */
        const int oh = stride == 1 ? th : div_nonneg(th, stride, inv_stride);
        const int row_ok = th >= 0 && oh * stride == th && oh < Ho;
#pragma unroll
        for (int s = 0; s < S; s++) {
            const int tw = iw + pad - s * dil;
            const int ow = stride == 1 ? tw : div_nonneg(tw, stride, inv_stride);
            if (row_ok && tw >= 0 && ow * stride == tw && ow < Wo)
                sum += dcol[(((ulong)(c * R + r) * S + s) * g + b) * P + oh * Wo + ow];
        }
    }
    const ulong i = ((ulong)z * H + ih) * W + iw;
    dx[i] = acc ? dx[i] + sum : sum;
}

/* Any window: the same sum without unrolling (the loops have run-time bounds,
 * so this one runs scalar on PoCL); rows and columns whose offset is not a
 * multiple of the stride are skipped. */
static inline __attribute__((always_inline)) void col2im_generic(__global float *dx, __global const float *dcol,
                                                                 const int g, const int C, const int H, const int W,
                                                                 const int R, const int S, const int Ho,
                                                                 const int Wo, const int stride, const int pad,
                                                                 const int dil, const float inv_stride,
                                                                 const float inv_C, const int acc) {
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), z = (int)get_global_id(2);
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    if (iw >= W || ih >= H || z >= g * C) return;
    const int P = Ho * Wo;
    float sum = 0.0f;
    for (int r = 0; r < R; r++) {
        const int th = ih + pad - r * dil, oh = div_nonneg(th, stride, inv_stride);
        if (th < 0 || oh * stride != th || oh >= Ho) continue;
        for (int s = 0; s < S; s++) {
            const int tw = iw + pad - s * dil, ow = div_nonneg(tw, stride, inv_stride);
            if (tw < 0 || ow * stride != tw || ow >= Wo) continue;
            sum += dcol[(((ulong)(c * R + r) * S + s) * g + b) * P + oh * Wo + ow];
        }
    }
    const ulong i = ((ulong)z * H + ih) * W + iw;
    dx[i] = acc ? dx[i] + sum : sum;
}

__kernel void conv_col2im(__global float *dx, const ulong dx_off, __global const float *dcol, const ulong dcol_off,
                          const int g, const int C, const int H, const int W, const int R, const int S,
                          const int Ho, const int Wo, const int stride, const int pad, const int dil,
                          const float inv_stride, const float inv_C, const int acc) {
    col2im_generic(dx + dx_off, dcol + dcol_off, g, C, H, W, R, S, Ho, Wo, stride, pad, dil, inv_stride, inv_C,
                   acc);
}

__kernel void conv_col2im_k3s1(__global float *dx, const ulong dx_off, __global const float *dcol,
                               const ulong dcol_off, const int g, const int C, const int H, const int W, const int R,
                               const int S, const int Ho, const int Wo, const int stride, const int pad,
                               const int dil, const float inv_stride, const float inv_C, const int acc) {
    col2im_body(dx + dx_off, dcol + dcol_off, g, C, H, W, 3, 3, Ho, Wo, 1, pad, dil, 1.0f, inv_C, acc);
}

__kernel void conv_col2im_k3s2(__global float *dx, const ulong dx_off, __global const float *dcol,
                               const ulong dcol_off, const int g, const int C, const int H, const int W, const int R,
                               const int S, const int Ho, const int Wo, const int stride, const int pad,
                               const int dil, const float inv_stride, const float inv_C, const int acc) {
    col2im_body(dx + dx_off, dcol + dcol_off, g, C, H, W, 3, 3, Ho, Wo, 2, pad, dil, 0.5f, inv_C, acc);
}

__kernel void conv_col2im_k1(__global float *dx, const ulong dx_off, __global const float *dcol,
                             const ulong dcol_off, const int g, const int C, const int H, const int W, const int R,
                             const int S, const int Ho, const int Wo, const int stride, const int pad,
                             const int dil, const float inv_stride, const float inv_C, const int acc) {
    col2im_body(dx + dx_off, dcol + dcol_off, g, C, H, W, 1, 1, Ho, Wo, stride, pad, dil, inv_stride, inv_C, acc);
}

/* conv_col2im_k3s1 in a CPU's shape for pad 1, dilation 1 (so Ho = H and
 * Wo = W): a work-item sums one row of dx, range (H, g*C). Per 16 columns and
 * per kernel row r it loads the three dcol rows (s = 0, 1, 2) as vectors and
 * shifts the outer two by one column (shuffle2 with the neighbour, 0 past the
 * edges); the sums run in conv_col2im_k3s1's order, increasing (r, s), with
 * 0 added where that kernel skips a term, so dx is bit-identical to it. */
__kernel void conv_col2im_k3s1p1_cpu(__global float *dx, const ulong dx_off, __global const float *dcol,
                                     const ulong dcol_off, const int g, const int C, const int H, const int W,
                                     const int R, const int S, const int Ho, const int Wo, const int stride,
                                     const int pad, const int dil, const float inv_stride, const float inv_C,
                                     const int acc) {
    const int ih = (int)get_global_id(0), z = (int)get_global_id(1);
    if (ih >= H || z >= g * C) return;
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    const ulong P = (ulong)H * W;
    __global float *out = dx + dx_off + ((ulong)z * H + ih) * W;
    /* row (r, s) of dcol for this output row oh = ih + 1 - r, when it exists */
    __global const float *row[3][3];
    int ok[3];
#pragma unroll
    for (int r = 0; r < 3; r++) {
        const int oh = ih + 1 - r;
        ok[r] = oh >= 0 && oh < H;
#pragma unroll
        for (int s = 0; s < 3; s++)
            row[r][s] = dcol + dcol_off + (((ulong)(c * 3 + r) * 3 + s) * g + b) * P + (ok[r] ? oh : 0) * W;
    }
    const uint16 left1 = (uint16)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const uint16 right1 = (uint16)(0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
    int iw = 0;
    for (; iw + 16 <= W; iw += 16) {
        float16 sum = (float16)(0.0f);
#pragma unroll
        for (int r = 0; r < 3; r++) {
            if (!ok[r]) continue;
            /* s = 0 reads column iw + 1, s = 1 column iw, s = 2 column iw - 1 */
            const float after = iw + 16 < W ? row[r][0][iw + 16] : 0.0f;
            sum += shuffle2(vload16(0, row[r][0] + iw), (float16)(after), left1);
            sum += vload16(0, row[r][1] + iw);
            const float before = iw > 0 ? row[r][2][iw - 1] : 0.0f;
            sum += shuffle2((float16)(before), vload16(0, row[r][2] + iw), right1);
        }
        if (acc) sum += vload16(0, out + iw);
        vstore16(sum, 0, out + iw);
    }
    for (; iw < W; iw++) {
        float sum = 0.0f;
#pragma unroll
        for (int r = 0; r < 3; r++) {
            if (!ok[r]) continue;
            if (iw + 1 < W) sum += row[r][0][iw + 1];
            sum += row[r][1][iw];
            if (iw > 0) sum += row[r][2][iw - 1];
        }
        out[iw] = acc ? out[iw] + sum : sum;
    }
}

/* out (g, K, P) = tmp (K, g*P) rearranged, plus bias[k] when has_bias. Range (P, K, g). */
__kernel void conv_unpack_out(__global float *out, const ulong out_off, __global const float *tmp, const ulong tmp_off,
                              __global const float *bias, const ulong bias_off, const int has_bias,
                              const int g, const int K, const int P) {
    out += out_off;
    tmp += tmp_off;
    bias += bias_off;
    const int p = (int)get_global_id(0), k = (int)get_global_id(1), b = (int)get_global_id(2);
    if (p >= P || k >= K || b >= g) return;
    const float v = tmp[((ulong)k * g + b) * P + p];
    out[((ulong)b * K + k) * P + p] = has_bias ? v + bias[k] : v;
}

/* y (B, K, P) += bias[k]: the bias of a conv whose GEMM wrote its output in place. Range (P, K, B). */
__kernel void conv_add_bias(__global float *y, const ulong y_off, __global const float *bias, const ulong bias_off,
                            const int B, const int K, const int P) {
    y += y_off;
    bias += bias_off;
    const int p = (int)get_global_id(0), k = (int)get_global_id(1), b = (int)get_global_id(2);
    if (p >= P || k >= K || b >= B) return;
    y[((ulong)b * K + k) * P + p] += bias[k];
}

/* The kernel rows r of a 3x3 stride-2 pad-1 window that reach input row ih,
 * increasing, and the output row oh of each: r = 1 at an even row, r = 0
 * (when that output row exists) and 2 at an odd one. Returns how many. */
static inline __attribute__((always_inline)) int k3s2p1_rows(const int ih, const int Ho, int rr[2], int oh[2]) {
    int nr = 0;
    if (ih & 1) {
        if ((ih + 1) / 2 < Ho) { rr[nr] = 0; oh[nr] = (ih + 1) / 2; nr++; }
        rr[nr] = 2; oh[nr] = (ih - 1) / 2; nr++;
    } else {
        rr[0] = 1; oh[0] = ih / 2; nr = 1;
    }
    return nr;
}

/* conv_col2im_k3s2 in a CPU's shape for pad 1, dilation 1, W = 2*Wo with Wo a
 * multiple of 16 (layer 2's first conv): a work-item sums one row of dx, 32
 * columns per step. Column 2q takes window column s = 1 at ow = q; column 2q+1
 * takes s = 0 at ow = q+1 and s = 2 at ow = q; row ih takes r = 1 (ih even)
 * or r = 0 and 2 (ih odd). The terms are added in conv_col2im_k3s2's order,
 * increasing (r, s), with 0 where it skips one (past the last ow), so dx is
 * bit-identical to it. Range (H, g*C). */
__kernel void conv_col2im_k3s2p1_cpu(__global float *dx, const ulong dx_off, __global const float *dcol,
                                     const ulong dcol_off, const int g, const int C, const int H, const int W,
                                     const int R, const int S, const int Ho, const int Wo, const int stride,
                                     const int pad, const int dil, const float inv_stride, const float inv_C,
                                     const int acc) {
    const int ih = (int)get_global_id(0), z = (int)get_global_id(1);
    if (ih >= H || z >= g * C) return;
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    const ulong P = (ulong)Ho * Wo;
    __global float *out = dx + dx_off + ((ulong)z * H + ih) * W;
    int rr[2], oh[2];
    const int nr = k3s2p1_rows(ih, Ho, rr, oh);
    const uint16 next = (uint16)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15);
    const uint16 lo = (uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const uint16 hi = (uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int q0 = 0; q0 < Wo; q0 += 16) {
        float16 e = (float16)(0.0f), o = (float16)(0.0f);
        for (int k = 0; k < nr; k++) {
            __global const float *row =
                dcol + dcol_off + (((ulong)(c * 3 + rr[k]) * 3) * g + b) * P + oh[k] * Wo + q0;
            const ulong sstep = (ulong)g * P;   /* from window column s to s + 1 */
            e += vload16(0, row + sstep);                       /* s = 1, ow = q */
            float16 t;                                          /* s = 0, ow = q + 1; none past the row's end */
            if (q0 + 16 < Wo) {
                t = vload16(0, row + 1);
            } else {
                t = shuffle(vload16(0, row), next);
                t.sf = 0.0f;
            }
            o += t;
            o += vload16(0, row + 2 * sstep);                   /* s = 2, ow = q */
        }
        const float16 v0 = shuffle2(e, o, lo), v1 = shuffle2(e, o, hi);
        __global float *d = out + 2 * q0;
        vstore16(acc ? vload16(0, d) + v0 : v0, 0, d);
        vstore16(acc ? vload16(1, d) + v1 : v1, 1, d);
    }
}

/* conv_col2im_k1 for a 1x1 stride-2 conv (a ResNet downsample) with W =
 * 2*Wo, Wo a multiple of 4, on CPUs: a work-item writes one plane of dx, its
 * even rows the dcol row interleaved with zeros, its odd rows zeros, 4
 * outputs (8 floats of dx) a step. Each dx element has at most one term; it
 * is added to 0 as conv_col2im_k1 adds it (so -0 becomes +0 there too): the
 * same bits. Range (g*C). */
__kernel void conv_col2im_k1s2_cpu(__global float *dx, const ulong dx_off, __global const float *dcol,
                                   const ulong dcol_off, const int g, const int C, const int H, const int W,
                                   const int R, const int S, const int Ho, const int Wo, const int stride,
                                   const int pad, const int dil, const float inv_stride, const float inv_C,
                                   const int acc) {
    const int z = (int)get_global_id(0);
    if (z >= g * C) return;
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    __global float *out = dx + dx_off + (ulong)z * H * W;
    __global const float *src = dcol + dcol_off + ((ulong)c * g + b) * Ho * Wo;
    const uint8 mix = (uint8)(0, 4, 1, 5, 2, 6, 3, 7);
    for (int ih = 0; ih < H; ih++, out += W) {
        const int even = (ih & 1) == 0 && ih / 2 < Ho;
        for (int q = 0; q < Wo; q += 4) {
            const float4 v = even ? vload4(0, src + (ih / 2) * Wo + q) : (float4)(0.0f);
            const float8 t = shuffle2((float4)(0.0f) + v, (float4)(0.0f), mix);
            vstore8(acc ? vload8(0, out + 2 * q) + t : t, 0, out + 2 * q);
        }
    }
}

/* conv_col2im_k3s1p1_cpu on rows 4 wide: a work-item sums one plane of dx
 * (every row, not one), each row a vector of 4; the terms in its order,
 * increasing (r, s), with 0 for the columns past an edge (a sum that starts at
 * +0 is unchanged by adding 0), so dx is bit-identical to it. Range (g*C). */
__kernel void conv_col2im_k3s1p1_w4(__global float *dx, const ulong dx_off, __global const float *dcol,
                                    const ulong dcol_off, const int g, const int C, const int H, const int W,
                                    const int R, const int S, const int Ho, const int Wo, const int stride,
                                    const int pad, const int dil, const float inv_stride, const float inv_C,
                                    const int acc) {
    const int z = (int)get_global_id(0);
    if (z >= g * C) return;
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    const ulong P = (ulong)H * 4, sstep = (ulong)g * P;
    __global float *out = dx + dx_off + (ulong)z * P;
    for (int ih = 0; ih < H; ih++) {
        float4 sum = (float4)(0.0f);
        for (int r = 0; r < 3; r++) {
            const int oh = ih + 1 - r;
            if (oh < 0 || oh >= H) continue;
            __global const float *row = dcol + dcol_off + ((ulong)(c * 3 + r) * 3 * g + b) * P + oh * 4;
            const float4 d0 = vload4(0, row), d1 = vload4(0, row + sstep), d2 = vload4(0, row + 2 * sstep);
            sum += (float4)(d0.s123, 0.0f);   /* s = 0 reads column iw + 1 */
            sum += d1;                        /* s = 1, column iw */
            sum += (float4)(0.0f, d2.s012);   /* s = 2, column iw - 1 */
        }
        vstore4(acc ? vload4(ih, out) + sum : sum, ih, out);
    }
}

/* conv_col2im_k3s2p1_cpu in blocks of 4 outputs (8 columns of dx) for Wo a
 * multiple of 4 but not of 16 (layers 3 and 4: 8 and 4 wide), the same
 * terms in the same order: bit-identical to conv_col2im_k3s2. Range (H, g*C). */
__kernel void conv_col2im_k3s2p1_cpu4(__global float *dx, const ulong dx_off, __global const float *dcol,
                                      const ulong dcol_off, const int g, const int C, const int H, const int W,
                                      const int R, const int S, const int Ho, const int Wo, const int stride,
                                      const int pad, const int dil, const float inv_stride, const float inv_C,
                                      const int acc) {
    const int ih = (int)get_global_id(0), z = (int)get_global_id(1);
    if (ih >= H || z >= g * C) return;
    const int b = div_nonneg(z, C, inv_C), c = z - b * C;
    const ulong P = (ulong)Ho * Wo;
    __global float *out = dx + dx_off + ((ulong)z * H + ih) * W;
    int rr[2], oh[2];
    const int nr = k3s2p1_rows(ih, Ho, rr, oh);
    const uint8 mix = (uint8)(0, 4, 1, 5, 2, 6, 3, 7);
    for (int q0 = 0; q0 < Wo; q0 += 4) {
        float4 e = (float4)(0.0f), o = (float4)(0.0f);
        for (int k = 0; k < nr; k++) {
            __global const float *row =
                dcol + dcol_off + (((ulong)(c * 3 + rr[k]) * 3) * g + b) * P + oh[k] * Wo + q0;
            const ulong sstep = (ulong)g * P;
            e += vload4(0, row + sstep);                        /* s = 1, ow = q */
            float4 t;                                           /* s = 0, ow = q + 1; none past the row's end */
            if (q0 + 4 < Wo) {
                t = vload4(0, row + 1);
            } else {
                const float4 l = vload4(0, row);
                t = (float4)(l.s1, l.s2, l.s3, 0.0f);
            }
            o += t;
            o += vload4(0, row + 2 * sstep);                    /* s = 2, ow = q */
        }
        const float8 v = shuffle2(e, o, mix);
        __global float *d = out + 2 * q0;
        vstore8(acc ? vload8(0, d) + v : v, 0, d);
    }
}

/* tmp (K, g*P) = dout (g, K, P) rearranged (the inverse of conv_unpack_out). Range (P, K, g). */
__kernel void conv_pack_dout(__global float *tmp, const ulong tmp_off, __global const float *dout, const ulong dout_off,
                             const int g, const int K, const int P) {
    tmp += tmp_off;
    dout += dout_off;
    const int p = (int)get_global_id(0), k = (int)get_global_id(1), b = (int)get_global_id(2);
    if (p >= P || k >= K || b >= g) return;
    tmp[((ulong)k * g + b) * P + p] = dout[((ulong)b * K + k) * P + p];
}

/* db[k] += sum over b, p of dout (B, K, P). One work-group per channel; the
 * local size is a power of two (the host picks it from the device). */
__kernel void conv_bias_backward(__global float *db, const ulong db_off, __global const float *dout, const ulong dout_off,
                                 __local float *part, const int B, const int K, const ulong P) {
    db += db_off;
    dout += dout_off;
    const int k = (int)get_group_id(0);
    const int lid = (int)get_local_id(0), nl = (int)get_local_size(0);
    float sum = 0.0f;
    for (int b = 0; b < B; b++) {
        __global const float *row = dout + ((ulong)b * K + k) * P;
        for (ulong p = lid; p < P; p += nl) sum += row[p];
    }
    sum = wg_sum(part, sum);
    if (lid == 0) db[k] += sum;
}

/* The weight gradient's 4 x 4 blocks (rows k0.., columns c0.. of dw) are
 * cl/common.cl's dot4x4_* over dout's and col's rows. dw_block_rows: the
 * block's row pointers for image b, dout (g, K, P) and col with row stride cs
 * and image stride cb; rows past K or CRS point at the last row, and the
 * kernels store nothing for them. */
static inline __attribute__((always_inline)) void dw_block_rows(__global const float *a[4], __global const float *c[4],
                                                                __global const float *dout,
                                                                __global const float *col, const int b,
                                                                const int k0, const int c0, const int K,
                                                                const int CRS, const int P, const ulong cs,
                                                                const ulong cb) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
        a[i] = dout + ((ulong)b * K + min(k0 + i, K - 1)) * P;
        c[i] = col + (ulong)min(c0 + i, CRS - 1) * cs + (ulong)b * cb;
    }
}

/* dw (K, CRS) += sum over b < g and p < P of dout[b][k][p] * col[crs*cs + b*cb + p]:
 * the weight gradient read from dout (g, K, P) as it is and from col in
 * conv_im2col's layout (CRS, g*P) (cs = g*P, cb = P), from the forward's kept
 * columns of single images (cs = P, cb = CRSp*P), or from x itself for a 1x1
 * stride-1 conv (cs = P, cb = C*P), all with the reduction index contiguous.
 * CLBlast wants one of the two operands the other way round (a transposed
 * im2col, and a padded small dw; bench/README.md has the costs). A work-item
 * owns a 4 x 4 block of dw over the whole reduction. Range (ceil(CRS/4), ceil(K/4)). */
__kernel void conv_dw_nt(__global float *dw, const ulong dw_off, __global const float *dout, const ulong dout_off,
                         __global const float *col, const ulong col_off, const int g, const int K, const int CRS,
                         const int P, const ulong cs, const ulong cb) {
    dw += dw_off; dout += dout_off; col += col_off;
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4;
    if (c0 >= CRS || k0 >= K) return;
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    for (int b = 0; b < g; b++) {
        __global const float *a[4], *c[4];
        dw_block_rows(a, c, dout, col, b, k0, c0, K, CRS, P, cs, cb);
        dot4x4_add(acc, tail, a, c, 0, P);
    }
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(dw + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 1);
}

/* The same products split along the reduction: part (g*cpi, K, CRS), part[ch]
 * the sum over chunk ch = b*cpi + q, pixels [q*chunk, min(P, (q+1)*chunk)) of
 * image b. With a work-group over every block of one chunk, the chunk's rows
 * of col (CRS x chunk floats, sized by the host to stay in a core's cache) are
 * read from cache by every block of k instead of streaming the whole of col
 * from memory once per 4 rows of dw. conv_dw_sum adds the chunks to dw in
 * order. Range (ceil(CRS/4), ceil(K/4), g*cpi). */
__kernel void conv_dw_nt_chunks(__global float *part, const ulong part_off, __global const float *dout,
                                const ulong dout_off, __global const float *col, const ulong col_off, const int K,
                                const int CRS, const int P, const ulong cs, const ulong cb, const int chunk,
                                const int cpi) {
    part += part_off; dout += dout_off; col += col_off;
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4, ch = (int)get_global_id(2);
    if (c0 >= CRS || k0 >= K) return;
    const int b = ch / cpi, p0 = (ch - b * cpi) * chunk, p1 = min(P, p0 + chunk);
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    __global const float *a[4], *c[4];
    dw_block_rows(a, c, dout, col, b, k0, c0, K, CRS, P, cs, cb);
    dot4x4_add(acc, tail, a, c, p0, p1);
    __global float *pc = part + (ulong)ch * K * CRS;
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(pc + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 0);
}

/* dw (n) += the sum over ch < nch of part (nch, n), in increasing ch. A
 * work-item adds 16 elements with float16 loads (one element each, with the
 * loop, ran scalar on PoCL: 90 us for layer 1's 24 chunks); every element
 * keeps its order. Range (ceil(n/16)). */
__kernel void conv_dw_sum(__global float *dw, const ulong dw_off, __global const float *part, const ulong part_off,
                          const int nch, const int n) {
    dw += dw_off; part += part_off;
    const int i0 = (int)get_global_id(0) * 16;
    if (i0 >= n) return;
    if (i0 + 16 <= n) {
        float16 sum = (float16)(0.0f);
        for (int ch = 0; ch < nch; ch++) sum += vload16(0, part + (ulong)ch * n + i0);
        vstore16(vload16(0, dw + i0) + sum, 0, dw + i0);
        return;
    }
    for (int i = i0; i < n; i++) {
        float sum = 0.0f;
        for (int ch = 0; ch < nch; ch++) sum += part[(ulong)ch * n + i];
        dw[i] += sum;
    }
}

/* wp (K, CRSp) = w (K, CRS) with CRSp - CRS zero columns appended to each row:
 * the conv GEMMs' weight operand with its reduction (forward) or output (dx)
 * dimension rounded up to CLBlast's tile, so CLBlast needs no pad pass over
 * the large im2col operand or output (src/ops/conv.c). Range (CRSp, K). */
__kernel void conv_pad_cols(__global float *wp, const ulong wp_off, __global const float *w, const ulong w_off,
                            const int K, const int CRS, const int CRSp) {
    wp += wp_off; w += w_off;
    const int c = (int)get_global_id(0), k = (int)get_global_id(1);
    if (c >= CRSp || k >= K) return;
    wp[(ulong)k * CRSp + c] = c < CRS ? w[(ulong)k * CRS + min(c, CRS - 1)] : 0.0f;
}

/* ---- implicit 3x3 stride-1 pad-1 convolution on CPUs ----------------------
 * The forward and the weight gradient without im2col: they read the input
 * through a zero-padded copy xp (B, C, H+2, W+2) (conv_pad_input, 1/9 of the
 * columns' size), where row crs = (c*3 + r)*3 + s of the columns, at output
 * pixel (oh, ow), is xp[c][oh + r][ow + s]. Sixteen consecutive pixels of a
 * column row (xrow16) are one unaligned load from a row of xp when the output
 * width Wo is a multiple of 16, and two loads from consecutive rows when Wo
 * is 8. (At Wo = 4, layer 4 of a 128x128 input, four loads per vector made
 * the weight gradient 2.5x slower than conv_dw_nt on kept columns, so that
 * width stays with im2col.) The products, and their order, are those of gemm_rows on the
 * columns and of conv_dw_nt(_chunks) on the kept columns, so the results are
 * the same bits (tests/ops/test_conv.c checks it). */

/* 16 consecutive output pixels of one column row, the first at x in xp. WC is
 * the width class, a literal at every kernel (16: Wo a multiple of 16, or 8),
 * so that the choice folds away: a run-time branch on Wo here made the loops
 * around it 4x slower on PoCL. */
static inline __attribute__((always_inline)) float16 xrow16(__global const float *x, const int WC, const int Wp) {
    if (WC == 8) return (float16)(vload8(0, x), vload8(0, x + Wp));
    return vload16(0, x);
}

/* xp (n, H + 2*pad, W + 2*pad) = x (n, H, W) with a zero border. A work-item
 * writes one plane of xp, row by row, copying x's rows with float16 loads and
 * stores (a work-item per element ran at a quarter of the speed; one per row
 * paid PoCL's per-item cost on every 10-34 floats: 25 -> 22 us a call in the
 * step). Range (n). */
__kernel void conv_pad_input(__global float *xp, const ulong xp_off, __global const float *x, const ulong x_off,
                             const int n, const int H, const int W, const int pad) {
    const int z = (int)get_global_id(0);
    if (z >= n) return;
    const int Hp = H + 2 * pad, Wp = W + 2 * pad;
    __global float *row = xp + xp_off + (ulong)z * Hp * Wp;
    __global const float *src = x + x_off + (ulong)z * H * W;
    for (int i = 0; i < Hp; i++, row += Wp) {
        if (i < pad || i >= H + pad) {
            int j = 0;
            for (; j + 16 <= Wp; j += 16) vstore16((float16)(0.0f), 0, row + j);
            for (; j < Wp; j++) row[j] = 0.0f;
            continue;
        }
        for (int j = 0; j < pad; j++) { row[j] = 0.0f; row[Wp - 1 - j] = 0.0f; }
        int j = 0;
        for (; j + 16 <= W; j += 16) vstore16(vload16(0, src + j), 0, row + pad + j);
        for (; j < W; j++) row[pad + j] = src[j];
        src += W;
    }
}

/* out (B, K, P) = w (K, C*9) applied to the 3x3 windows of xp (B, C, Ho+2, Wo+2),
 * Wo 8 or a multiple of 16, P = Ho*Wo a multiple of 16 and B*P of 32. A
 * work-item owns 8 output channels by 32 pixels (two float16 of 16
 * consecutive pixels of one image each), as gemm_rows does over the columns:
 * per (c, r, s), two xrow16 loads from xp and eight broadcasts of w feed 16
 * FMAs, summed in crs order, one fma each; acc = 1 adds the sums to out.
 * Channels past K read a clamped row and store nothing. The input gradient of
 * the same conv is this kernel too, over the padded output gradient with the
 * weights flipped (conv_flip_weights). Range (ceil(K/8), B*P/32). */
static inline __attribute__((always_inline)) void conv3x3_rows_body(__global float *out, __global const float *xp,
                                                                    __global const float *w, const int B,
                                                                    const int C, const int K, const int Ho,
                                                                    const int Wo, const int acc_out, const int WC) {
    const int m0 = (int)get_global_id(0) * 8, n0 = (int)get_global_id(1) * 32;
    const int P = Ho * Wo, Wp = Wo + 2, HWp = (Ho + 2) * Wp, CRS = C * 9;
    if (m0 >= K || n0 >= B * P) return;
    __global const float *xv[2];
    __global float *ov[2];
#pragma unroll
    for (int v = 0; v < 2; v++) {   /* image, row and column of the vector's first pixel */
        const int q = n0 + 16 * v, b = q / P, p = q - b * P, oh = p / Wo, ow = p - oh * Wo;
        xv[v] = xp + (ulong)b * C * HWp + oh * Wp + ow;
        ov[v] = out + (ulong)b * K * P + p;
    }
    __global const float *x0 = xv[0], *x1 = xv[1];
    __global const float *a[8];
#pragma unroll
    for (int i = 0; i < 8; i++) a[i] = w + (ulong)min(m0 + i, K - 1) * CRS;
    float16 acc[8][2];
#pragma unroll
    for (int i = 0; i < 8; i++) { acc[i][0] = (float16)(0.0f); acc[i][1] = (float16)(0.0f); }
    for (int c = 0; c < C; c++) {
#pragma unroll
        for (int rs = 0; rs < 9; rs++) {
            const int o = (rs / 3) * Wp + rs % 3;
            const float16 b0 = xrow16(x0 + o, WC, Wp), b1 = xrow16(x1 + o, WC, Wp);
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const float16 av = (float16)(a[i][rs]);
                acc[i][0] = fma(av, b0, acc[i][0]);
                acc[i][1] = fma(av, b1, acc[i][1]);
            }
        }
        x0 += HWp;
        x1 += HWp;
#pragma unroll
        for (int i = 0; i < 8; i++) a[i] += 9;
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (m0 + i >= K) break;
        __global float *o0 = ov[0] + (ulong)(m0 + i) * P, *o1 = ov[1] + (ulong)(m0 + i) * P;
        vstore16(acc_out ? vload16(0, o0) + acc[i][0] : acc[i][0], 0, o0);
        vstore16(acc_out ? vload16(0, o1) + acc[i][1] : acc[i][1], 0, o1);
    }
}

/* wf (C, K*9) = w (K, C, 3, 3) with k and c swapped and the window turned by
 * 180 degrees, wf[c][k*9 + 8 - rs] = w[k][c][rs]: dx of a 3x3 stride-1 pad-1
 * conv is conv3x3_s1_rows of the padded dout with wf, dx[c][y][x] = sum over
 * k, r, s of wf[c][k][r][s] * doutp[k][y + r][x + s]. A work-item moves one
 * window of 9 (a work-item per element, with its division by 9, took 63 us
 * at layer 4's 590k weights). Range (C, K). */
__kernel void conv_flip_weights(__global float *wf, const ulong wf_off, __global const float *w, const ulong w_off,
                                const int K, const int C) {
    wf += wf_off;
    w += w_off;
    const int c = (int)get_global_id(0), k = (int)get_global_id(1);
    if (c >= C || k >= K) return;
    __global const float *src = w + ((ulong)k * C + c) * 9;
    __global float *dst = wf + ((ulong)c * K + k) * 9;
#pragma unroll
    for (int rs = 0; rs < 9; rs++) dst[8 - rs] = src[rs];
}

/* the kernels for Wo a multiple of 16 and for Wo = 8 (kernel names stay plain text for the device
 * layer's scan) */
__kernel void conv3x3_s1_rows(__global float *out, const ulong out_off, __global const float *xp, const ulong xp_off,
                              __global const float *w, const ulong w_off, const int B, const int C, const int K,
                              const int Ho, const int Wo, const int acc) {
    conv3x3_rows_body(out + out_off, xp + xp_off, w + w_off, B, C, K, Ho, Wo, acc, 16);
}

__kernel void conv3x3_s1_rows_w8(__global float *out, const ulong out_off, __global const float *xp, const ulong xp_off,
                                 __global const float *w, const ulong w_off, const int B, const int C, const int K,
                                 const int Ho, const int Wo, const int acc) {
    conv3x3_rows_body(out + out_off, xp + xp_off, w + w_off, B, C, K, Ho, Wo, acc, 8);
}


/* Offsets in one image's xp of column rows c0..c0+3 at pixel 0 (rows past
 * CRS clamped to the last); computed once per work-item, the divisions are
 * scalar and cost more than a short reduction (layer 4's 16 pixels). */
static inline __attribute__((always_inline)) void dw3_cols(int co[4], const int c0, const int CRS, const int Wp,
                                                           const int HWp) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const int crs = min(c0 + j, CRS - 1), ch = crs / 9, rs = crs - ch * 9;
        co[j] = ch * HWp + (rs / 3) * Wp + rs % 3;
    }
}

/* acc += dout's rows a[i] against the column rows at xpb + co[j] of one
 * image's xp over pixels [p0, p1), 16 at a time (p0 and p1 multiples of 16,
 * pixel p0 at row oh, column ow; Wo 8 or a multiple of 16): the loads of
 * dot4x4_add, in its order. */
static inline __attribute__((always_inline)) void dw3_add(float16 acc[4][4], __global const float *a[4],
                                                          __global const float *xpb, const int co[4], const int p0,
                                                          const int p1, const int oh, int ow, const int Wo,
                                                          const int Wp, const int WC) {
    int off = oh * Wp + ow;
    const int rows16 = WC < 16 ? 16 / WC : 0;   /* xp rows a vector spans when Wo is 8 */
    for (int p = p0; p < p1; p += 16) {
        float16 av[4], cv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) { av[i] = vload16(0, a[i] + p); cv[i] = xrow16(xpb + co[i] + off, WC, Wp); }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], cv[j], acc[i][j]);
        if (rows16) {
            off += rows16 * Wp;
        } else {
            ow += 16;
            off += 16;
            if (ow == Wo) { ow = 0; off += Wp - Wo; }
        }
    }
}

/* conv_dw_nt with the columns read from xp: dw (K, CRS) += the sum over b < g
 * of dout (g, K, P) [b] . the columns of xp (g, C, Ho+2, Wo+2) [b]^T. Range (ceil(CRS/4), ceil(K/4)). */
static inline __attribute__((always_inline)) void dw3_whole(__global float *dw, __global const float *dout,
                                                            __global const float *xp, const int g, const int K,
                                                            const int C, const int Ho, const int Wo, const int WC) {
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4;
    const int CRS = C * 9, P = Ho * Wo, Wp = Wo + 2, HWp = (Ho + 2) * Wp;
    if (c0 >= CRS || k0 >= K) return;
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    int co[4];
    dw3_cols(co, c0, CRS, Wp, HWp);
    for (int b = 0; b < g; b++) {
        __global const float *a[4];
#pragma unroll
        for (int i = 0; i < 4; i++) a[i] = dout + ((ulong)b * K + min(k0 + i, K - 1)) * P;
        dw3_add(acc, a, xp + (ulong)b * C * HWp, co, 0, P, 0, 0, Wo, Wp, WC);
    }
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(dw + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 1);
}

/* Wo a multiple of 16, Wo = 8 */
__kernel void conv_dw3_nt(__global float *dw, const ulong dw_off, __global const float *dout, const ulong dout_off,
                          __global const float *xp, const ulong xp_off, const int g, const int K, const int C,
                          const int Ho, const int Wo) {
    dw3_whole(dw + dw_off, dout + dout_off, xp + xp_off, g, K, C, Ho, Wo, 16);
}

__kernel void conv_dw3_nt_w8(__global float *dw, const ulong dw_off, __global const float *dout, const ulong dout_off,
                             __global const float *xp, const ulong xp_off, const int g, const int K, const int C,
                             const int Ho, const int Wo) {
    dw3_whole(dw + dw_off, dout + dout_off, xp + xp_off, g, K, C, Ho, Wo, 8);
}


/* conv_dw_nt_chunks with the columns read from xp: part[ch] (K, CRS) = the
 * products over chunk ch = b*cpi + q, pixels [q*chunk, min(P, (q+1)*chunk))
 * of image b. Range (ceil(CRS/4), ceil(K/4), g*cpi), a work-group per chunk. */
static inline __attribute__((always_inline)) void dw3_chunks(__global float *part, __global const float *dout,
                                                             __global const float *xp, const int K, const int C,
                                                             const int Ho, const int Wo, const int chunk,
                                                             const int cpi, const int WC) {
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4, ch = (int)get_global_id(2);
    const int CRS = C * 9, P = Ho * Wo, Wp = Wo + 2, HWp = (Ho + 2) * Wp;
    if (c0 >= CRS || k0 >= K) return;
    const int b = ch / cpi, p0 = (ch - b * cpi) * chunk, p1 = min(P, p0 + chunk);
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    __global const float *a[4];
#pragma unroll
    for (int i = 0; i < 4; i++) a[i] = dout + ((ulong)b * K + min(k0 + i, K - 1)) * P;
    int co[4];
    dw3_cols(co, c0, CRS, Wp, HWp);
    const int oh = p0 / Wo;
    dw3_add(acc, a, xp + (ulong)b * C * HWp, co, p0, p1, oh, p0 - oh * Wo, Wo, Wp, WC);
    __global float *pc = part + (ulong)ch * K * CRS;
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(pc + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 0);
}

/* Wo a multiple of 16, Wo = 8 */
__kernel void conv_dw3_nt_chunks(__global float *part, const ulong part_off, __global const float *dout,
                                 const ulong dout_off, __global const float *xp, const ulong xp_off, const int K,
                                 const int C, const int Ho, const int Wo, const int chunk, const int cpi) {
    dw3_chunks(part + part_off, dout + dout_off, xp + xp_off, K, C, Ho, Wo, chunk, cpi, 16);
}

__kernel void conv_dw3_nt_chunks_w8(__global float *part, const ulong part_off, __global const float *dout,
                                    const ulong dout_off, __global const float *xp, const ulong xp_off, const int K,
                                    const int C, const int Ho, const int Wo, const int chunk, const int cpi) {
    dw3_chunks(part + part_off, dout + dout_off, xp + xp_off, K, C, Ho, Wo, chunk, cpi, 8);
}


/* The weight gradient of short reductions through the row GEMM (CPUs):
 * doutT (g*P, K) = dout (g, K, P) transposed (op_permute), so that dwT (CRS,
 * K) = col (CRS, g*P) @ doutT is gemm_rows_nn; conv_dw_add_t then adds dwT to
 * dw (K, CRS). Range (ceil(CRS/16), ceil(K/16)). */
__kernel void conv_dw_add_t(__global float *dw, const ulong dw_off, __global const float *dwT, const ulong dwT_off,
                            const int K, const int CRS) {
    dw += dw_off;
    dwT += dwT_off;
    /* a 16 x 16 tile per work-item through private memory: rows of dwT in,
     * rows of dw out, all 16-float vectors (an element per work-item made
     * PoCL gather the strided reads: 263 us at layer 4's 590k weights) */
    const int c0 = (int)get_global_id(0) * 16, k0 = (int)get_global_id(1) * 16;
    if (c0 >= CRS || k0 >= K) return;
    if (c0 + 16 > CRS || k0 + 16 > K) {
        for (int c = c0; c < min(c0 + 16, CRS); c++)
            for (int k = k0; k < min(k0 + 16, K); k++) dw[(ulong)k * CRS + c] += dwT[(ulong)c * K + k];
        return;
    }
    float t[256];
    for (int i = 0; i < 16; i++) vstore16(vload16(0, dwT + (ulong)(c0 + i) * K + k0), 0, t + 16 * i);
    for (int j = 0; j < 16; j++) {
        const float16 v = (float16)(t[j], t[16 + j], t[32 + j], t[48 + j], t[64 + j], t[80 + j], t[96 + j],
                                    t[112 + j], t[128 + j], t[144 + j], t[160 + j], t[176 + j], t[192 + j],
                                    t[208 + j], t[224 + j], t[240 + j]);
        __global float *d = dw + (ulong)(k0 + j) * CRS + c0;
        vstore16(vload16(0, d) + v, 0, d);
    }
}

/* ---- the stem (7x7, stride 2) without im2col on CPUs ------------------------
 * A stride-2 window reads every other input column, so no single padded copy
 * gives 16 outputs in one load. Split by column parity, it does: xs (B, C, 2,
 * Hs, Ws) holds the zero-padded input's even (phase 0) and odd (phase 1)
 * columns, xs[b][c][f][i][j] = xpad[b][c][i][2j + f], and the column row crs =
 * (c*R + r)*S + s at output pixel (oh, ow) is xs[b][c][s & 1][2*oh + r][ow +
 * (s >> 1)]: 16 consecutive outputs of one row are one unaligned load. Hs =
 * 2*Ho + R - 2 and Ws = Wo + (S - 1)/2 are the rows and columns the windows
 * reach. The forward's and the weight gradient's products, and their order,
 * are gemm_rows' on the columns and conv_dw_nt(_chunks)' on the kept columns:
 * the same bits (tests/ops/test_conv.c). */

/* xs from x (n = B*C planes of H x W), pad the conv's. A work-item writes one
 * row i of both phases of one plane; the interior of a phase row is the even
 * lanes of two vector loads, its edges one by one. Range (Hs, n). */
__kernel void conv_phase_split_s2(__global float *xs, const ulong xs_off, __global const float *x, const ulong x_off,
                                  const int n, const int H, const int W, const int pad, const int Hs,
                                  const int Ws) {
    const int i = (int)get_global_id(0), z = (int)get_global_id(1);
    if (i >= Hs || z >= n) return;
    const int ih = i - pad;
    __global float *d0 = xs + xs_off + ((ulong)z * 2 * Hs + i) * Ws, *d1 = d0 + (ulong)Hs * Ws;
    if (ih < 0 || ih >= H) {
        for (int j = 0; j < Ws; j++) { d0[j] = 0.0f; d1[j] = 0.0f; }
        return;
    }
    __global const float *src = x + x_off + ((ulong)z * H + ih) * W;
    row_s2(d0, src, Ws, -pad, W);       /* d0[j] = the input column 2*j - pad */
    row_s2(d1, src, Ws, 1 - pad, W);
}

/* out (B, K, P) = w (K, C*R*S) applied to the windows of xs, Wo a multiple of
 * 16, B*P of 32: conv3x3_s1_rows' blocking (8 output channels by 32 pixels,
 * two float16 of one output row each, eight broadcasts of w and 16 FMAs per
 * column row, in crs order). Range (ceil(K/8), B*P/32). */
__kernel void conv_s2_phase_rows(__global float *out, const ulong out_off, __global const float *xs,
                                 const ulong xs_off, __global const float *w, const ulong w_off, const int B,
                                 const int C, const int K, const int Ho, const int Wo, const int R, const int S,
                                 const int Hs, const int Ws) {
    const int m0 = (int)get_global_id(0) * 8, n0 = (int)get_global_id(1) * 32;
    const int P = Ho * Wo, CRS = C * R * S, plane = Hs * Ws;
    if (m0 >= K || n0 >= B * P) return;
    out += out_off;
    xs += xs_off;
    w += w_off;
    __global const float *xv[2];
    __global float *ov[2];
#pragma unroll
    for (int v = 0; v < 2; v++) {   /* image, row and column of the vector's first pixel */
        const int q = n0 + 16 * v, b = q / P, p = q - b * P, oh = p / Wo, ow = p - oh * Wo;
        xv[v] = xs + (ulong)b * C * 2 * plane + 2 * oh * Ws + ow;
        ov[v] = out + (ulong)b * K * P + p;
    }
    __global const float *a[8];
#pragma unroll
    for (int i = 0; i < 8; i++) a[i] = w + (ulong)min(m0 + i, K - 1) * CRS;
    float16 acc[8][2];
#pragma unroll
    for (int i = 0; i < 8; i++) { acc[i][0] = (float16)(0.0f); acc[i][1] = (float16)(0.0f); }
    int crs = 0;
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++, crs++) {
                const int o = 2 * c * plane + (s & 1) * plane + r * Ws + (s >> 1);
                const float16 b0 = vload16(0, xv[0] + o), b1 = vload16(0, xv[1] + o);
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    const float16 av = (float16)(a[i][crs]);
                    acc[i][0] = fma(av, b0, acc[i][0]);
                    acc[i][1] = fma(av, b1, acc[i][1]);
                }
            }
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (m0 + i >= K) break;
        vstore16(acc[i][0], 0, ov[0] + (ulong)(m0 + i) * P);
        vstore16(acc[i][1], 0, ov[1] + (ulong)(m0 + i) * P);
    }
}

/* acc += the dout rows a[i] against the column rows c0..c0+3 of one image's
 * xs over pixels [p0, p1) (multiples of 16, p0 at row oh, column ow), 16 at a
 * time: dot4x4_add's loads and FMAs, in its order. */
static inline __attribute__((always_inline)) void dws2_add(float16 acc[4][4], __global const float *a[4],
                                                           __global const float *xsb, const int c0, const int CRS,
                                                           const int R, const int S, const int Hs, const int Ws,
                                                           const int p0, const int p1, const int Wo) {
    int co[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {   /* offsets of the column rows in xs at pixel 0 (past CRS: the last) */
        const int crs = min(c0 + j, CRS - 1), c = crs / (R * S), rs = crs - c * (R * S), r = rs / S, s = rs % S;
        co[j] = (2 * c + (s & 1)) * Hs * Ws + r * Ws + (s >> 1);
    }
    int oh = p0 / Wo, ow = p0 - oh * Wo, off = 2 * oh * Ws + ow;
    for (int p = p0; p < p1; p += 16) {
        float16 av[4], cv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) { av[i] = vload16(0, a[i] + p); cv[i] = vload16(0, xsb + co[i] + off); }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], cv[j], acc[i][j]);
        ow += 16;
        off += 16;
        if (ow == Wo) { ow = 0; off += 2 * Ws - Wo; }
    }
}

/* conv_dw_nt with the columns read from xs: dw (K, CRS) += the sum over b < g
 * of dout (g, K, P) [b] . the columns of xs [b]^T. Range (ceil(CRS/4),
 * ceil(K/4)). */
__kernel void conv_dws2_nt(__global float *dw, const ulong dw_off, __global const float *dout, const ulong dout_off,
                           __global const float *xs, const ulong xs_off, const int g, const int K, const int C,
                           const int Ho, const int Wo, const int R, const int S, const int Hs, const int Ws) {
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4;
    const int CRS = C * R * S, P = Ho * Wo;
    if (c0 >= CRS || k0 >= K) return;
    dw += dw_off;
    dout += dout_off;
    xs += xs_off;
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    for (int b = 0; b < g; b++) {
        __global const float *a[4];
#pragma unroll
        for (int i = 0; i < 4; i++) a[i] = dout + ((ulong)b * K + min(k0 + i, K - 1)) * P;
        dws2_add(acc, a, xs + (ulong)b * C * 2 * Hs * Ws, c0, CRS, R, S, Hs, Ws, 0, P, Wo);
    }
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(dw + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 1);
}

/* conv_dw_nt_chunks with the columns read from xs: part (g*cpi, K, CRS), part[ch]
 * the sum over chunk ch = b*cpi + q, pixels [q*chunk, min(P, (q+1)*chunk)) of
 * image b; conv_dw_sum adds the chunks in order. Range (ceil(CRS/4),
 * ceil(K/4), g*cpi). */
__kernel void conv_dws2_nt_chunks(__global float *part, const ulong part_off, __global const float *dout,
                                  const ulong dout_off, __global const float *xs, const ulong xs_off, const int K,
                                  const int C, const int Ho, const int Wo, const int R, const int S, const int Hs,
                                  const int Ws, const int chunk, const int cpi) {
    const int c0 = (int)get_global_id(0) * 4, k0 = (int)get_global_id(1) * 4, ch = (int)get_global_id(2);
    const int CRS = C * R * S, P = Ho * Wo;
    if (c0 >= CRS || k0 >= K) return;
    part += part_off;
    dout += dout_off;
    xs += xs_off;
    const int b = ch / cpi, p0 = (ch - b * cpi) * chunk, p1 = min(P, p0 + chunk);
    float16 acc[4][4];
    float tail[4][4];
    dot4x4_zero(acc, tail);
    __global const float *a[4];
#pragma unroll
    for (int i = 0; i < 4; i++) a[i] = dout + ((ulong)b * K + min(k0 + i, K - 1)) * P;
    dws2_add(acc, a, xs + (ulong)b * C * 2 * Hs * Ws, c0, CRS, R, S, Hs, Ws, p0, p1, Wo);
    float sums[4][4];
    dot4x4_sums(acc, tail, sums);
    dot4x4_store(part + (ulong)ch * K * CRS + (ulong)k0 * CRS + c0, CRS, K - k0, CRS - c0, sums, 0);
}
