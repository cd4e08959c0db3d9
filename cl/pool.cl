/* Max pool k x k, stride s, padding p (padded cells are -inf). Conventions as
 * in common.cl. The forward saves the argmax (index h*W + w in its input
 * plane, as a float: exact below 2^24 cells per plane); the backward is a
 * gather: each input cell sums dout over the windows whose argmax it is.
 *
 * Why this shape: PoCL vectorises across dim 0 only a body without loops or
 * calls, and division per element is scalar; so the range is (w, h, plane)
 * (nothing decoded), the window loops are unrolled for k = 3 (ResNet's pool,
 * the *_k3 kernels; other k use the same body with loops), and the backward
 * finds its windows with div_nonneg (cl/common.cl). History: bench/README.md. */

/* out, argmax (BC, Ho, Wo) from x (BC, H, W), range (Wo, Ho, BC). Ties keep the
 * first maximum in row-major window order and a NaN wins (the last one), as
 * PyTorch's CPU kernel. */
static inline __attribute__((always_inline)) void maxpool_fwd(__global float *out, __global float *argmax,
                                                              __global const float *x, const int BC, const int H,
                                                              const int W, const int Ho, const int Wo, const int k,
                                                              const int s, const int p) {
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), pl = (int)get_global_id(2);
    if (ow >= Wo || oh >= Ho || pl >= BC) return;
    __global const float *xp = x + (ulong)pl * H * W;
    const int ih0 = oh * s - p, iw0 = ow * s - p;
    float best = -INFINITY;
    int arg = -1;
#pragma unroll
    for (int i = 0; i < k; i++) {
        const int ih = ih0 + i;
#pragma unroll
        for (int j = 0; j < k; j++) {
            const int iw = iw0 + j;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
                const float v = xp[ih * W + iw];
                if (arg < 0 || v > best || isnan(v)) { best = v; arg = ih * W + iw; }
            }
        }
    }
    const ulong o = ((ulong)pl * Ho + oh) * Wo + ow;
    out[o] = best;
    argmax[o] = (float)arg;
}

__kernel void maxpool_forward(__global float *out, const ulong out_off, __global float *argmax, const ulong argmax_off,
                              __global const float *x, const ulong x_off, const int BC, const int H, const int W,
                              const int Ho, const int Wo, const int k, const int s, const int p) {
    maxpool_fwd(out + out_off, argmax + argmax_off, x + x_off, BC, H, W, Ho, Wo, k, s, p);
}

/* k = 3 with any stride and p: the body above with the window unrolled. */
__kernel void maxpool_forward_k3(__global float *out, const ulong out_off, __global float *argmax,
                                 const ulong argmax_off, __global const float *x, const ulong x_off, const int BC,
                                 const int H, const int W, const int Ho, const int Wo, const int k, const int s,
                                 const int p) {
    maxpool_fwd(out + out_off, argmax + argmax_off, x + x_off, BC, H, W, Ho, Wo, 3, s, p);
}

/* k = 3, s = 2, p = 1 (ResNet's stem pool) with W even and Wo a multiple of 8:
 * range (Wo/8, Ho, BC), a work-item writes 8 outputs of a row from one
 * float16 load per input row (columns 2*ow0 .. 2*ow0+15, split into .even and
 * .odd) plus the column before: maxpool_fwd's loads are stride 2 across
 * work-items and guarded, which PoCL turns into a masked gather of every cell
 * (timings: bench/README.md). Same result as maxpool_fwd: first
 * maximum in row-major window order, the last NaN wins. */
__kernel void maxpool_forward_k3s2p1_v8(__global float *out, const ulong out_off, __global float *argmax,
                                        const ulong argmax_off, __global const float *x, const ulong x_off,
                                        const int BC, const int H, const int W, const int Ho, const int Wo,
                                        const int k, const int s, const int p) {
    out += out_off; argmax += argmax_off; x += x_off;
    const int q = (int)get_global_id(0), oh = (int)get_global_id(1), pl = (int)get_global_id(2);
    const int ow0 = q * 8;
    if (ow0 >= Wo || oh >= Ho || pl >= BC) return;
    __global const float *xp = x + (ulong)pl * H * W;
    const int8 lane = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    const int8 col_b = 2 * (ow0 + lane);                 /* column of the window's middle cell */
    const int8 left_ok = col_b - 1 >= 0;
    float8 best = (float8)(-INFINITY);
    int8 arg = (int8)(-1);
#pragma unroll
    for (int i = 0; i < 3; i++) {
        const int ih = oh * 2 - 1 + i;
        if (ih < 0 || ih >= H) continue;                   /* uniform over the work-item's 8 outputs */
        __global const float *row = xp + ih * W;
        const float16 v = vload16(0, row + 2 * ow0);
        const float8 mid = v.even, right = v.odd;
        const float before = ow0 > 0 ? row[2 * ow0 - 1] : 0.0f;
        /* lane by lane: a literal of sub-vectors compiles to shuffles with undefined
         * lanes, on which oclgrind's --uninitialized (21.10) crashes */
        const float8 left = (float8)(before, right.s0, right.s1, right.s2, right.s3, right.s4, right.s5, right.s6);
        const int8 base = ih * W + col_b;
        int8 take = left_ok & ((arg < 0) | isgreater(left, best) | isnan(left));
        best = select(best, left, take);
        arg = select(arg, base - 1, take);
        take = (arg < 0) | isgreater(mid, best) | isnan(mid);
        best = select(best, mid, take);
        arg = select(arg, base, take);
        take = isgreater(right, best) | isnan(right);
        best = select(best, right, take);
        arg = select(arg, base + 1, take);
    }
    const ulong o = ((ulong)pl * Ho + oh) * Wo + ow0;
    vstore8(best, 0, out + o);
    vstore8(convert_float8(arg), 0, argmax + o);
}

/* dx (BC, H, W) (=/+= by acc), range (W, H, BC). Window row oh holds input row
 * ih at offset i = ih + p - oh*s in [0, k); the loops run i down so the windows
 * are summed in increasing oh (and ow), as the host reference adds them. */
static inline __attribute__((always_inline)) void maxpool_bwd(__global float *dx, __global const float *dout,
                                                              __global const float *argmax, const int BC,
                                                              const int H, const int W, const int Ho, const int Wo,
                                                              const int k, const int s, const int p,
                                                              const float inv_s, const int acc) {
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), pl = (int)get_global_id(2);
    if (iw >= W || ih >= H || pl >= BC) return;
    const float self = (float)(ih * W + iw);
    __global const float *ap = argmax + (ulong)pl * Ho * Wo, *dp = dout + (ulong)pl * Ho * Wo;
    float sum = 0.0f;
#pragma unroll
    for (int i = k - 1; i >= 0; i--) {
        const int th = ih + p - i, oh = div_nonneg(th, s, inv_s);
        const int row_ok = th >= 0 && oh * s == th && oh < Ho;
#pragma unroll
        for (int j = k - 1; j >= 0; j--) {
            const int tw = iw + p - j, ow = div_nonneg(tw, s, inv_s);
            if (row_ok && tw >= 0 && ow * s == tw && ow < Wo) {
                const int o = oh * Wo + ow;
                if (ap[o] == self) sum += dp[o];
            }
        }
    }
    const ulong i = ((ulong)pl * H + ih) * W + iw;
    dx[i] = acc ? dx[i] + sum : sum;
}

__kernel void maxpool_backward(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                               __global const float *argmax, const ulong argmax_off, const int BC,
                               const int H, const int W, const int Ho, const int Wo, const int k, const int s,
                               const int p, const float inv_s, const int acc) {
    maxpool_bwd(dx + dx_off, dout + dout_off, argmax + argmax_off, BC, H, W, Ho, Wo, k, s, p, inv_s, acc);
}

/* k = 3, s = 2 (ResNet's stem pool), p <= 1: range (ceil(W/2), H, BC); work-item q
 * writes dx columns 2q and 2q+1 of row ih. Their windows lie among columns
 * q-1..q+1 and rows r-1..r (r = (ih+p)/2), so the loads are contiguous across
 * work-items (no gathers); a window that does not hold a cell cannot have it
 * as argmax, so the superset needs no containment test. Windows are summed in
 * increasing (oh, ow), as the host reference. */
__kernel void maxpool_backward_k3s2(__global float *dx, const ulong dx_off, __global const float *dout,
                                    const ulong dout_off, __global const float *argmax, const ulong argmax_off,
                                    const int BC, const int H, const int W, const int Ho, const int Wo, const int k,
                                    const int s, const int p, const float inv_s, const int acc) {
    dx += dx_off; dout += dout_off; argmax += argmax_off;
    const int q = (int)get_global_id(0), ih = (int)get_global_id(1), pl = (int)get_global_id(2);
    const int c0 = 2 * q;
    if (c0 >= W || ih >= H || pl >= BC) return;
    __global const float *ap = argmax + (ulong)pl * Ho * Wo, *dp = dout + (ulong)pl * Ho * Wo;
    const float self0 = (float)(ih * W + c0), self1 = self0 + 1.0f;
    const int r = (ih + p) / 2;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int t = 1; t >= 0; t--) {
        const int oh = r - t, row_ok = oh >= 0 && oh < Ho;
#pragma unroll
        for (int u = -1; u <= 1; u++) {
            const int ow = q + u, ok = row_ok && ow >= 0 && ow < Wo;
            const float a = ok ? ap[oh * Wo + ow] : -1.0f, g = ok ? dp[oh * Wo + ow] : 0.0f;
            sum0 += a == self0 ? g : 0.0f;
            sum1 += a == self1 ? g : 0.0f;
        }
    }
    __global float *d = dx + ((ulong)pl * H + ih) * W + c0;
    d[0] = acc ? d[0] + sum0 : sum0;
    if (c0 + 1 < W) d[1] = acc ? d[1] + sum1 : sum1;
}

/* The same gradient in a CPU's shape, for W = 2*Wo with Wo a multiple of 16 and
 * p = 1 (ResNet's stem pool on even widths): a work-item writes one row of dx,
 * 32 columns per step from float16 loads of the argmax and dout rows. Column
 * 2q lies only in window q of an output row, column 2q+1 in windows q and
 * q+1, and row ih only in output rows r-1 and r (r = (ih+1)/2); the windows
 * that cannot hold a cell only ever added 0 in maxpool_backward_k3s2, so the
 * sums, in its (oh, ow) order, are its bits. Range (H, BC). */
__kernel void maxpool_backward_k3s2_rows(__global float *dx, const ulong dx_off, __global const float *dout,
                                         const ulong dout_off, __global const float *argmax,
                                         const ulong argmax_off, const int BC, const int H, const int W,
                                         const int Ho, const int Wo, const int acc) {
    dx += dx_off; dout += dout_off; argmax += argmax_off;
    const int ih = (int)get_global_id(0), pl = (int)get_global_id(1);
    if (ih >= H || pl >= BC) return;
    const int r = (ih + 1) / 2;
    const float16 lane = (float16)(0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f, 8.0f, 9.0f, 10.0f, 11.0f, 12.0f,
                                   13.0f, 14.0f, 15.0f);
    const uint16 next = (uint16)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15);
    const uint16 lo = (uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const uint16 hi = (uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    __global float *d = dx + ((ulong)pl * H + ih) * W;
    for (int q0 = 0; q0 < Wo; q0 += 16) {
        /* plane indices of columns 2q and 2q+1, q = q0 + lane */
        const float16 self_e = (float)(ih * W + 2 * q0) + 2.0f * lane, self_o = self_e + 1.0f;
        float16 e = (float16)(0.0f), o = (float16)(0.0f);
        for (int oh = r - 1; oh <= r; oh++) {
            if (oh < 0 || oh >= Ho) continue;
            __global const float *ap = argmax + ((ulong)pl * Ho + oh) * Wo + q0;
            __global const float *gp = dout + ((ulong)pl * Ho + oh) * Wo + q0;
            const float16 a0 = vload16(0, ap), g0 = vload16(0, gp);
            float16 a1, g1;   /* window q+1; past the row's end, none */
            if (q0 + 16 < Wo) {
                a1 = vload16(0, ap + 1);
                g1 = vload16(0, gp + 1);
            } else {
                a1 = shuffle(a0, next);
                g1 = shuffle(g0, next);
                a1.sf = -1.0f;
                g1.sf = 0.0f;
            }
            e += select((float16)(0.0f), g0, a0 == self_e);
            o += select((float16)(0.0f), g0, a0 == self_o);
            o += select((float16)(0.0f), g1, a1 == self_o);
        }
        const float16 v0 = shuffle2(e, o, lo), v1 = shuffle2(e, o, hi);
        __global float *dq = d + 2 * q0;
        vstore16(acc ? vload16(0, dq) + v0 : v0, 0, dq);
        vstore16(acc ? vload16(1, dq) + v1 : v1, 1, dq);
    }
}
