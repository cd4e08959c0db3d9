/* Max pool k x k, stride s, padding p (padded cells are -inf). Conventions as
 * in elementwise.cl. The forward saves the argmax (index h*W + w in its input
 * plane, as a float: exact below 2^24 cells per plane); the backward is a
 * gather: each input cell sums dout over the windows whose argmax it is. */

/* out, argmax (B*C, Ho, Wo) from x (B*C, H, W). Ties keep the first maximum in
 * row-major window order and a NaN wins (the last one), as PyTorch's CPU kernel. */
__kernel void maxpool_forward(__global float *out, const ulong out_off, __global float *argmax, const ulong argmax_off,
                              __global const float *x, const ulong x_off, const ulong BC, const int H, const int W,
                              const int Ho, const int Wo, const int k, const int s, const int p) {
    out += out_off; argmax += argmax_off; x += x_off;
    const ulong gid = get_global_id(0);
    if (gid >= BC * Ho * Wo) return;
    const int ow = (int)(gid % Wo), oh = (int)((gid / Wo) % Ho);
    const ulong plane = gid / ((ulong)Ho * Wo);
    __global const float *xp = x + plane * H * W;
    float best = -INFINITY;
    int arg = -1;
    for (int i = 0; i < k; i++) {
        const int ih = oh * s - p + i;
        if (ih < 0 || ih >= H) continue;
        for (int j = 0; j < k; j++) {
            const int iw = ow * s - p + j;
            if (iw < 0 || iw >= W) continue;
            const float v = xp[ih * W + iw];
            if (arg < 0 || v > best || isnan(v)) { best = v; arg = ih * W + iw; }
        }
    }
    out[gid] = best;
    argmax[gid] = (float)arg;
}

/* dx (B*C, H, W) (=/+= by acc) */
__kernel void maxpool_backward(__global float *dx, const ulong dx_off, __global const float *dout, const ulong dout_off,
                               __global const float *argmax, const ulong argmax_off, const ulong BC,
                               const int H, const int W, const int Ho, const int Wo, const int k, const int s,
                               const int p, const int acc) {
    dx += dx_off; dout += dout_off; argmax += argmax_off;
    const ulong gid = get_global_id(0);
    if (gid >= BC * H * W) return;
    const int iw = (int)(gid % W), ih = (int)((gid / W) % H);
    const ulong plane = gid / ((ulong)H * W);
    const float self = (float)(ih * W + iw);
    /* windows oh with oh*s - p <= ih <= oh*s - p + k - 1 */
    const int oh0 = max(0, (ih + p - k + s) / s), oh1 = min(Ho - 1, (ih + p) / s);
    const int ow0 = max(0, (iw + p - k + s) / s), ow1 = min(Wo - 1, (iw + p) / s);
    float sum = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const ulong o = (plane * Ho + oh) * Wo + ow;
            if (argmax[o] == self) sum += dout[o];
        }
    dx[gid] = acc ? dx[gid] + sum : sum;
}
