/* Plain C host references of the ops-A families (element-wise, dropout,
 * reductions, softmax, layer norm, permute), for tests and `cldetr selftest`.
 *
 * They work on double arrays so that the tests' central finite differences on
 * the reference forward are exact to ~1e-10; each mirrors the device op of the
 * same name in include/cldetr/ops.h (same argument order, same accumulate rule:
 * acc 0 writes, acc 1 adds; parameter gradients always add). NULL = "not
 * needed" where the device op takes cd_none(). */
#ifndef CLDETR_OPS_REF_H
#define CLDETR_OPS_REF_H

#include <stddef.h>
#include <stdint.h>

/* element-wise (src/ops/elementwise.c) */
void op_add_ref(double *out, const double *a, const double *b, size_t n);
void op_axpby_ref(double *y, double alpha, const double *x, double beta, size_t n);
void op_scale_ref(double *y, const double *x, double alpha, size_t n, int acc);
void op_relu_forward_ref(double *out, const double *x, size_t n);
void op_relu_backward_ref(double *dx, const double *dout, const double *out, size_t n, int acc);
void op_sigmoid_forward_ref(double *out, const double *x, size_t n);
void op_sigmoid_backward_ref(double *dx, const double *dout, const double *out, size_t n, int acc);
/* x, out (B,C,HW); bias, scale (C) */
void op_add_channels_forward_ref(double *out, const double *x, const double *bias, size_t B, size_t C, size_t HW);
void op_add_channels_backward_ref(double *dx, double *dbias, const double *dout, size_t B, size_t C, size_t HW,
                                  int acc);
void op_mul_channels_forward_ref(double *out, const double *x, const double *scale, size_t B, size_t C, size_t HW);
void op_mul_channels_backward_ref(double *dx, double *dscale, const double *dout, const double *x,
                                  const double *scale, size_t B, size_t C, size_t HW, int acc);

/* dropout (src/ops/dropout.c); the uniforms are op_dropout_uniform_ref (ops.h) */
void op_dropout_forward_ref(double *out, const double *x, size_t n, float p, uint64_t seed, uint64_t stream);
void op_dropout_backward_ref(double *dx, const double *dout, size_t n, float p, uint64_t seed, uint64_t stream,
                             int acc);

/* reductions (src/ops/reduce.c): x (O,R,I), out (O,I) */
void op_reduce_sum_ref(double *out, const double *x, size_t O, size_t R, size_t I, double alpha, int acc);
void op_broadcast_ref(double *dx, const double *dout, size_t O, size_t R, size_t I, double alpha, int acc);
double op_sumsq_ref(const double *x, size_t n);

/* softmax (src/ops/softmax.c): x, out (B,H,Lq,Lk); mask (B,Lk) 1 = padding, or NULL */
void op_softmax_forward_ref(double *out, const double *x, const double *mask, size_t B, size_t H, size_t Lq,
                            size_t Lk, double scale);
void op_softmax_backward_ref(double *dx, const double *dout, const double *out, size_t B, size_t H, size_t Lq,
                             size_t Lk, double scale, int acc);

/* layer norm (src/ops/layernorm.c): x, out (N,C); mean, rstd (N) (either may be NULL); w, b (C) */
void op_layernorm_forward_ref(double *out, double *mean, double *rstd, const double *x, const double *w,
                              const double *b, size_t N, size_t C, double eps);
void op_layernorm_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                               const double *mean, const double *rstd, const double *w, size_t N, size_t C,
                               int acc);

/* permute (src/ops/permute.c): out's axis a is x's axis perm[a]; dims are x's */
void op_permute_ref(double *out, const double *x, const size_t dims[4], const int perm[4], int acc);

#endif
