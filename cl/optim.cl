/* Optimizer kernels: AdamW over a range of the flat parameter buffer.
 * Conventions as in cl/common.cl: (buffer, offset) pairs; the update is split
 * into a kernel without a guard and a guarded tail (see adamw_update). */

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
static inline __attribute__((always_inline)) void adamw_one(
        __global float *p, __global const float *grad, __global float *m, __global float *v, const size_t i,
        const float grad_scale, const float decay, const float omb1, const float beta2, const float omb2,
        const float neg_step, const float bc2_sqrt, const float eps) {
    float g = grad[i] * grad_scale;
    float pi = p[i] * decay;
    float mi = m[i];
    mi = fma(omb1, g - mi, mi);
    float vi = v[i] * beta2;
    vi = vi + omb2 * g * g;
    float denom = sqrt(vi) / bc2_sqrt + eps;
    pi = pi + neg_step * mi / denom;
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
}

/* Launched by CD_LAUNCH1_SPLIT: adamw_update, without a guard, over the
 * largest multiple of its work-group size (a guard there made PoCL run it a
 * work-item at a time, 3.3x slower), adamw_update_tail over the rest. */
__kernel void adamw_update(__global float *p, const ulong p_off, __global const float *grad, const ulong grad_off,
                           __global float *m, const ulong m_off, __global float *v, const ulong v_off,
                           const float grad_scale, const float decay, const float omb1, const float beta2,
                           const float omb2, const float neg_step, const float bc2_sqrt, const float eps,
                           const ulong n) {
    adamw_one(p + p_off, grad + grad_off, m + m_off, v + v_off, get_global_id(0), grad_scale, decay, omb1, beta2,
              omb2, neg_step, bc2_sqrt, eps);
}

__kernel void adamw_update_tail(__global float *p, const ulong p_off, __global const float *grad,
                                const ulong grad_off, __global float *m, const ulong m_off, __global float *v,
                                const ulong v_off, const float grad_scale, const float decay, const float omb1,
                                const float beta2, const float omb2, const float neg_step, const float bc2_sqrt,
                                const float eps, const ulong n) {
    const size_t gid = get_global_id(0);
    if (gid >= n) return;
    adamw_one(p + p_off, grad + grad_off, m + m_off, v + v_off, gid, grad_scale, decay, omb1, beta2, omb2,
              neg_step, bc2_sqrt, eps);
}
