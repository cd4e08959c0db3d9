/* Plain C references of the linear and batched-matmul ops (src/ops/linear.c),
 * for tests and self-checks. Same shapes and accumulate rules as the device
 * ops in include/cldetr/ops.h; sums in double. */
#ifndef CLDETR_OPS_LINEAR_REF_H
#define CLDETR_OPS_LINEAR_REF_H

#include <stddef.h>

/* out (N,OUT) = x (N,IN) w^T (OUT,IN) + b (OUT, or NULL) */
void op_linear_forward_ref(float *out, const float *x, const float *w, const float *b,
                           size_t N, size_t IN, size_t OUT);
/* dx (N,IN) (=/+= by acc) dout w; dw (OUT,IN) += dout^T x; db (OUT) += sum_n dout.
 * dx, dw, db may be NULL. */
void op_linear_backward_ref(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, size_t N, size_t IN, size_t OUT, int acc);
/* out[b] (M,N) = op(A[b]) op(B[b]); A (batch,M,K) or (batch,K,M) if ta; B (batch,K,N) or (batch,N,K) if tb */
void op_bmm_forward_ref(float *out, const float *A, const float *B, size_t batch, size_t M, size_t N,
                        size_t K, int ta, int tb);
/* dA (=/+= by acc_a), dB (=/+= by acc_b), either may be NULL */
void op_bmm_backward_ref(float *dA, float *dB, const float *dout, const float *A, const float *B,
                         size_t batch, size_t M, size_t N, size_t K, int ta, int tb, int acc_a, int acc_b);

#endif
