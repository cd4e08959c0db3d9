/* Optimizer kernels: AdamW over a range of the flat parameter buffer.
 * Conventions as in cl/common.cl: (buffer, offset) pairs, guard on n. */

/* Contraction off: each product and sum rounds as PyTorch's CPU kernels round
 * them (mul_, addcmul_, addcdiv_), so results agree with torch.optim.AdamW to
 * an ulp and are the same on every device. The lerp of the first moment uses
 * fma() on purpose: PyTorch's vectorized lerp is an fmadd. */
#pragma OPENCL FP_CONTRACT OFF

/* One AdamW step on n parameters, clip factor applied to the gradient:
 *   g = grad_scale * grad
 *   p = p * decay                                        decay = 1 - lr * wd
 *   m = m + omb1 * (g - m)                               omb1 = 1 - beta1
 *   v = v * beta2 + omb2 * g * g                         omb2 = 1 - beta2
 *   p = p + (neg_step * m) / (sqrt(v) / bc2_sqrt + eps)  neg_step = -lr / (1 - beta1^t)
 * p, m, v are updated in place; grad is only read.       all (n) */
__kernel void adamw_update(__global float *p, const ulong p_off, __global const float *grad, const ulong grad_off,
                           __global float *m, const ulong m_off, __global float *v, const ulong v_off,
                           const float grad_scale, const float decay, const float omb1, const float beta2,
                           const float omb2, const float neg_step, const float bc2_sqrt, const float eps,
                           const ulong n) {
    p += p_off; grad += grad_off; m += m_off; v += v_off;
    size_t gid = get_global_id(0);
    if (gid >= n) return;
    float g = grad[gid] * grad_scale;
    float pi = p[gid] * decay;
    float mi = m[gid];
    mi = fma(omb1, g - mi, mi);
    float vi = v[gid] * beta2;
    vi = vi + omb2 * g * g;
    float denom = sqrt(vi) / bc2_sqrt + eps;
    pi = pi + neg_step * mi / denom;
    p[gid] = pi;
    m[gid] = mi;
    v[gid] = vi;
}
