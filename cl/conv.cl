/* Convolution kernels: im2col, col2im (a gather, no atomics), the packing of a
 * group of images between NCHW and the channel-major layout of the GEMMs, and
 * the bias gradient. Conventions as in elementwise.cl.
 *
 * A group of g images is processed at once; the GEMM operands are
 *   col  (CRS, g*P)   CRS = C*R*S rows, columns j = b*P + oh*Wo + ow
 *   colT (g*P, CRS)   the same, transposed (for the weight gradient)
 *   tmp  (K, g*P)     the GEMM output, channel-major over the group
 * with P = Ho*Wo. src/ops/conv.c says why each layout was chosen. */

/* col[crs, j] (transposed = 0) or colT[j, crs] (transposed = 1) from x (g, C, H, W);
 * cells outside the padded input are 0. Range (ow, oh, b*C + c); each work-item
 * writes its R*S rows. Integer division is scalar and slow on CPUs: a range of
 * one work-item per element, decoded with div/mod, ran ~20 ns per element on
 * PoCL, so the kernel decodes once (one division) and loops over r, s. */
__kernel void conv_im2col(__global float *col, const ulong col_off, __global const float *x, const ulong x_off,
                          const int g, const int C, const int H, const int W, const int R, const int S,
                          const int Ho, const int Wo, const int stride, const int pad, const int dil,
                          const int transposed) {
    col += col_off;
    x += x_off;
    const int ow = (int)get_global_id(0), oh = (int)get_global_id(1), z = (int)get_global_id(2);
    if (ow >= Wo || oh >= Ho || z >= g * C) return;
    const int b = z / C, c = z - b * C;
    const ulong GP = (ulong)g * Ho * Wo, CRS = (ulong)C * R * S;
    const ulong j = ((ulong)b * Ho + oh) * Wo + ow;      /* column b*P + oh*Wo + ow */
    __global const float *xp = x + (ulong)z * H * W;    /* plane (b, c) */
    ulong crs = (ulong)c * R * S;
    for (int r = 0; r < R; r++) {
        const int ih = oh * stride - pad + r * dil;
        const int row_in = ih >= 0 && ih < H;
        for (int s = 0; s < S; s++, crs++) {
            const int iw = ow * stride - pad + s * dil;
            const float v = (row_in && iw >= 0 && iw < W) ? xp[ih * W + iw] : 0.0f;
            if (transposed) col[j * CRS + crs] = v;
            else col[crs * GP + j] = v;
        }
    }
}

/* dx (g, C, H, W) (=, or += when acc) the sum of every column of dcol (CRS, g*P)
 * that im2col took from that cell: each input cell gathers its own contributions
 * (deterministic, no atomics). Range (iw, ih, b*C + c); stride 1 skips the
 * divisions (see conv_im2col). */
__kernel void conv_col2im(__global float *dx, const ulong dx_off, __global const float *dcol, const ulong dcol_off,
                          const int g, const int C, const int H, const int W, const int R, const int S,
                          const int Ho, const int Wo, const int stride, const int pad, const int dil,
                          const int acc) {
    dx += dx_off;
    dcol += dcol_off;
    const int iw = (int)get_global_id(0), ih = (int)get_global_id(1), z = (int)get_global_id(2);
    if (iw >= W || ih >= H || z >= g * C) return;
    const int b = z / C, c = z - b * C;
    const ulong P = (ulong)Ho * Wo, GP = (ulong)g * P;
    float sum = 0.0f;
    for (int r = 0; r < R; r++) {
        const int th = ih + pad - r * dil;          /* = oh * stride */
        if (th < 0 || (stride > 1 && th % stride)) continue;
        const int oh = stride > 1 ? th / stride : th;
        if (oh >= Ho) continue;
        for (int s = 0; s < S; s++) {
            const int tw = iw + pad - s * dil;
            if (tw < 0 || (stride > 1 && tw % stride)) continue;
            const int ow = stride > 1 ? tw / stride : tw;
            if (ow >= Wo) continue;
            const ulong crs = ((ulong)c * R + r) * S + s;
            sum += dcol[crs * GP + (ulong)b * P + (ulong)oh * Wo + ow];
        }
    }
    const ulong i = ((ulong)z * H + ih) * W + iw;
    dx[i] = acc ? dx[i] + sum : sum;
}

/* out (g, K, P) = tmp (K, g*P) rearranged, plus bias[k] when has_bias. */
__kernel void conv_unpack_out(__global float *out, const ulong out_off, __global const float *tmp, const ulong tmp_off,
                              __global const float *bias, const ulong bias_off, const int has_bias,
                              const int g, const int K, const ulong P) {
    out += out_off;
    tmp += tmp_off;
    bias += bias_off;
    const ulong gid = get_global_id(0);
    if (gid >= (ulong)g * K * P) return;
    const ulong p = gid % P;
    const int k = (int)((gid / P) % K), b = (int)(gid / (P * K));
    float v = tmp[((ulong)k * g + b) * P + p];
    if (has_bias) v += bias[k];
    out[gid] = v;
}

/* y (B, K, P) += bias[k]: the bias of a conv whose GEMM wrote its output in place. */
__kernel void conv_add_bias(__global float *y, const ulong y_off, __global const float *bias, const ulong bias_off,
                            const int K, const ulong P, const ulong n) {
    y += y_off;
    bias += bias_off;
    const ulong gid = get_global_id(0);
    if (gid >= n) return;
    y[gid] += bias[(gid / P) % K];
}

/* tmp (K, g*P) = dout (g, K, P) rearranged (the inverse of conv_unpack_out). */
__kernel void conv_pack_dout(__global float *tmp, const ulong tmp_off, __global const float *dout, const ulong dout_off,
                             const int g, const int K, const ulong P) {
    tmp += tmp_off;
    dout += dout_off;
    const ulong gid = get_global_id(0);
    if (gid >= (ulong)g * K * P) return;
    const ulong GP = (ulong)g * P;
    const int k = (int)(gid / GP);
    const ulong j = gid - (ulong)k * GP;
    const ulong b = j / P, p = j - b * P;
    tmp[gid] = dout[(b * K + k) * P + p];
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
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = nl / 2; h > 0; h /= 2) {
        if (lid < h) part[lid] += part[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) db[k] += part[0];
}
