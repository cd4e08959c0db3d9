/* Bias kernels of the linear op (src/ops/linear.c); the products themselves are
 * CLBlast GEMMs. Conventions as in elementwise.cl: (buffer, float offset) pairs,
 * ulong sizes, a guard on every global id. */

/* out[n, o] += b[o]                              out (N, OUT), b (OUT) */
__kernel void linear_bias_forward(__global float *out, const ulong out_off,
                                  __global const float *b, const ulong b_off,
                                  const ulong N, const ulong OUT) {
    out += out_off;
    b += b_off;
    size_t gid = get_global_id(0);
    if (gid >= N * OUT) return;
    out[gid] += b[gid % OUT];
}

/* db[o] += sum_n dout[n, o]                       dout (N, OUT), db (OUT)
 * One work-item per column; neighbouring work-items read neighbouring floats. */
__kernel void linear_bias_backward(__global float *db, const ulong db_off,
                                   __global const float *dout, const ulong dout_off,
                                   const ulong N, const ulong OUT) {
    db += db_off;
    dout += dout_off;
    size_t o = get_global_id(0);
    if (o >= OUT) return;
    float s = 0.0f;
    for (ulong n = 0; n < N; n++) s += dout[n * OUT + o];
    db[o] += s;
}
