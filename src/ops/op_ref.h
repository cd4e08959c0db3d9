/* Plain C host references of every op in include/cldetr/ops.h, for the tests,
 * `cldetr selftest` and the benchmarks, plus the test hooks of conv2d.
 *
 * Element-wise, dropout, reductions, softmax, layer norm, permute, conv2d,
 * batch norm and max pool work on double arrays so that central finite
 * differences of a reference forward are exact to ~1e-10. The element-wise ..
 * permute references mirror the device op of the same name (same argument
 * order, same accumulate rule: acc 0 writes, acc 1 adds; parameter gradients
 * always add); the conv2d, batch norm and max pool references WRITE every
 * output (=, no accumulate flag). NULL = "not needed" where the device op
 * takes cd_none(). The linear and batched-matmul references work on float
 * arrays with sums in double. */
#ifndef CLDETR_OPS_OP_REF_H
#define CLDETR_OPS_OP_REF_H

#include <stddef.h>
#include <stdint.h>
#include "cldetr/ops.h"

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

/* fused attention (src/ops/attention.c), layouts as op_attention_forward's; the
 * backward adds to dq, dk, dv when acc, else writes them */
void op_attention_forward_ref(double *o, const double *q, const double *k, const double *v, const double *mask,
                              const double *bias, const op_attention_args *a);
void op_attention_backward_ref(double *dq, double *dk, double *dv, const double *dout, const double *q,
                               const double *k, const double *v, const double *mask, const double *bias,
                               const op_attention_args *a, int acc);

/* layer norm (src/ops/layernorm.c): x, out (N,C); mean, rstd (N) (either may be NULL); w, b (C) */
void op_layernorm_forward_ref(double *out, double *mean, double *rstd, const double *x, const double *w,
                              const double *b, size_t N, size_t C, double eps);
void op_layernorm_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                               const double *mean, const double *rstd, const double *w, size_t N, size_t C,
                               int acc);

/* permute (src/ops/permute.c): out's axis a is x's axis perm[a]; dims are x's */
void op_permute_ref(double *out, const double *x, const size_t dims[4], const int perm[4], int acc);
/* 1: every permute through the 1-D kernel (permute4, otherwise kept for
 * tensors past permute4_3d's 32-bit limits); returns the old setting. */
int op_permute_set_1d(int on);

/* linear and batched matmul (src/ops/linear.c), float in and out */
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

/* conv2d, batch norm, max pool (src/ops/{conv,batchnorm,pool}.c) */
/* The input cell under tap (r, q) of output pixel (oh, ow), image n, channel c:
 * 1 and its index in x (B, C, H, W) in *xi, or 0 when it is padding. */
int conv2d_tap_ref(const conv_shape *s, size_t n, size_t c, size_t oh, size_t ow, size_t r, size_t q, size_t *xi);
/* out (B, K, Ho, Wo) = conv(x (B, C, H, W), w (K, C, R, S)) + b (K) (b may be NULL) */
void conv2d_forward_ref(double *out, const double *x, const double *w, const double *b, const conv_shape *s);
/* dx (B, C, H, W), dw (K, C, R, S), db (K) from dout (B, K, Ho, Wo); any may be NULL */
void conv2d_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                         const double *w, const conv_shape *s);

/* Frozen: out = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))   x, out (B, C, HW) */
void batchnorm_frozen_forward_ref(double *out, const double *x, const double *w, const double *b,
                                  const double *mean, const double *var, size_t B, size_t C, size_t HW, double eps);
void batchnorm_frozen_backward_ref(double *dx, const double *dout, const double *w, const double *var,
                                   size_t B, size_t C, size_t HW, double eps);
/* Trainable with batch statistics: save_mean, save_rstd (C); running_mean and
 * running_var (C) are updated in place when not NULL (PyTorch: unbiased var). */
void batchnorm_train_forward_ref(double *out, double *save_mean, double *save_rstd, double *running_mean,
                                 double *running_var, const double *x, const double *w, const double *b,
                                 size_t B, size_t C, size_t HW, double eps, double momentum);
void batchnorm_train_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                                  const double *save_mean, const double *save_rstd, const double *w,
                                  size_t B, size_t C, size_t HW);

/* Max pool k x k / s, padding p (-inf); argmax (B, C, Ho, Wo) = h*W + w of the
 * first maximum in row-major window order (a NaN wins), -1 if the window is all padding. */
void maxpool_forward_ref(double *out, double *argmax, const double *x, size_t B, size_t C, size_t H, size_t W,
                         size_t k, size_t s, size_t p);
void maxpool_backward_ref(double *dx, const double *dout, const double *argmax, size_t B, size_t C, size_t H,
                          size_t W, size_t k, size_t s, size_t p);
/* maxpool's backward: the row kernel where the shape allows (-1, the default)
 * or never (0); returns the old value. */
int op_maxpool_set_backward_rows(int mode);

/* The im2col / col2im kernels alone (for tests and the selftest):
 * col (CRS, B*P), or colT (B*P, CRS) when transposed, from x (B, C, H, W);
 * dx (B, C, H, W) (=/+= by acc) gathers dcol (CRS, B*P). */
void op_conv2d_im2col(cd_device *dev, cd_mem col, cd_mem x, const conv_shape *s, int transposed);
void op_conv2d_col2im(cd_device *dev, cd_mem dx, cd_mem dcol, const conv_shape *s, int acc);
/* Set how many floats of im2col scratch one group of images may use (default
 * 2^24); returns the old value. Tests use it to exercise groups with a remainder. */
size_t op_conv2d_set_scratch_limit(size_t floats);
/* Choose the weight gradient's path: 1 = conv_dw_nt (from im2col's layout),
 * 0 = CLBlast (from the transposed im2col), -1 = by device type (the default:
 * conv_dw_nt on CPUs); returns the old value. */
int op_conv2d_set_dw_path(int path);
/* conv_dw_nt's long reductions split into cached chunks (1, the default) or
 * run whole (0); returns the old value. */
int op_conv2d_set_dw_chunks(int on);
/* conv_dw_nt's short reductions (a group of at most 256 pixels, 64 or more
 * output channels) through the row GEMM on transposed operands (1, the
 * default on CPUs) or always conv_dw_nt (0); returns the old value. */
int op_conv2d_set_dw_gemm(int on);
/* im2col and col2im in their CPU shape (1: a work-item per row with vector
 * copies), the work-item-per-element kernels (0), or by device type (-1, the
 * default: the CPU shape on devices that are not GPUs); returns the old value. */
int op_conv2d_set_cpu_movers(int mode);
/* The implicit 3x3 stride-1 pad-1 convolution (forward and weight gradient
 * from a zero-padded copy of the input, no im2col; output widths 8 or a
 * multiple of 16): 1 wherever the shape allows, 0 never, -1 by device type (the
 * default: on devices that are not GPUs); returns the old value. */
int op_conv2d_set_implicit(int mode);
/* The GPU tile kernels reading the conv's operands in place (cd_gemm_conv): 1
 * on, 0 off (im2col's columns), -1 by CLDETR_CONV_TILES (the default: off);
 * returns the old value. */
int op_conv2d_set_tile_operands(int mode);

/* stats.c: {sum, sum of squares, zeros} of x (n) */
void op_moments_ref(double out[3], const double *x, size_t n);

#endif
