/* Plain C references of the ops-B family (conv2d, batch norm, max pool), in
 * double: tests and `cldetr selftest` compare the device ops with them, and the
 * tests check their backward with central finite differences of their forward.
 *
 * Every reference WRITES its outputs (=, no accumulate flag); a NULL output is
 * skipped. Shapes are those of the matching op in cldetr/ops.h. */
#ifndef CLDETR_OPS_B_REF_H
#define CLDETR_OPS_B_REF_H

#include <stddef.h>
#include "cldetr/ops.h"

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

#endif
