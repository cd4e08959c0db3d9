/* The op library: forward and backward launchers of every op on the device.
 *
 * Conventions:
 * - tensors are cd_mem (buffer + float offset), row-major, shapes in comments;
 *   the caller allocates outputs (from the step arena or cd_alloc); an op may
 *   take scratch memory from the device pool internally;
 * - argument order: outputs, saved activations, inputs, weights, then sizes;
 * - backward: parameter gradients always ADD (+=) into their buffer; an input
 *   (activation) gradient is written (=) when acc == 0 and added when acc == 1,
 *   for places where branches meet. A cd_mem with .mem == NULL means "not
 *   needed" for an optional output (e.g. dx of the first layer) or input;
 * - masks are float buffers, 1 = padding, 0 = valid (DETR's True = padding);
 * - each op has a plain C reference `*_ref` in its source file (declared in
 *   src/ops/op_ref.h); the shared op cases (src/ops/op_cases.c) and the tests
 *   compare the two, and the tests check the backward with finite differences.
 *
 * Families and files: elementwise/reduce/softmax/attention/layernorm/dropout/permute in
 * src/ops/{elementwise,reduce,softmax,attention,layernorm,dropout,permute}.c with
 * cl/{elementwise,reduce,softmax,attention,layernorm,dropout,permute}.cl; conv/batchnorm/pool in
 * src/ops/{conv,batchnorm,pool}.c with cl/{conv,batchnorm,pool}.cl; linear and
 * batched matmul in src/ops/linear.c (CLBlast, cd_gemm, and cl/linear.cl); helpers
 * every cl/ file shares in cl/common.cl. */
#ifndef CLDETR_OPS_H
#define CLDETR_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "cldetr/device.h"

static inline cd_mem cd_none(void) { cd_mem m = {NULL, 0}; return m; }
static inline int cd_has(cd_mem m) { return m.mem != NULL; }

/* ---- element-wise (src/ops/elementwise.c, cl/elementwise.cl) ------------- */

/* out = a + b                                    out, a, b (n); out may alias a or b */
void op_add(cd_device *dev, cd_mem out, cd_mem a, cd_mem b, size_t n);
/* y = alpha * x + beta * y                        y, x (n)   (beta 0: y is written, never read) */
void op_axpby(cd_device *dev, cd_mem y, float alpha, cd_mem x, float beta, size_t n);
/* y (=/+=) alpha * x, by acc                      y, x (n) */
void op_scale(cd_device *dev, cd_mem y, cd_mem x, float alpha, size_t n, int acc);
/* an add's backward: da (=/+= by acc_a) dout, db (=/+= by acc_b) dout in one
 * launch (either may be none)                     da, db, dout (n) */
void op_add_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dout, size_t n, int acc_a, int acc_b);

/* out = relu(x)                                   out, x (n); out may alias x */
void op_relu_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n);
/* dx (=/+=) dout * (out > 0)                      dx, dout, out (n) */
void op_relu_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out, size_t n, int acc);
/* out = relu(a + b)                              out, a, b (n); out may alias a */
void op_add_relu_forward(cd_device *dev, cd_mem out, cd_mem a, cd_mem b, size_t n);
/* da (=/+= by acc_a), db (=/+= by acc_b) = dout * (out > 0); either may be none */
void op_add_relu_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dout, cd_mem out, size_t n, int acc_a,
                          int acc_b);
/* out = 1 / (1 + exp(-x))                         out, x (n) */
void op_sigmoid_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n);
/* dx (=/+=) dout * out * (1 - out)                dx, dout, out (n) */
void op_sigmoid_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out, size_t n, int acc);

/* Broadcast over channels, x (B, C, HW):
 * out = x + bias[c]                               out, x (B,C,HW), bias (C) */
void op_add_channels_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem bias, size_t B, size_t C, size_t HW);
/* dx (=/+=) dout (if dx given); dbias += sum over B, HW of dout */
void op_add_channels_backward(cd_device *dev, cd_mem dx, cd_mem dbias, cd_mem dout,
                              size_t B, size_t C, size_t HW, int acc);
/* out = x * scale[c]                              out, x (B,C,HW), scale (C) */
void op_mul_channels_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem scale, size_t B, size_t C, size_t HW);
/* dx (=/+=) dout * scale[c]; dscale += sum over B, HW of dout * x (if dscale given) */
void op_mul_channels_backward(cd_device *dev, cd_mem dx, cd_mem dscale, cd_mem dout, cd_mem x, cd_mem scale,
                              size_t B, size_t C, size_t HW, int acc);

/* ---- dropout (src/ops/dropout.c, cl/dropout.cl) ----------------------------
 * Counter-based: element i is kept iff uniform(seed, stream, i) >= p, where
 * uniform is a hash of the three (Philox-like), so the mask is reproducible on
 * every device and after a resume, and backward recomputes it (no mask saved).
 * Kept elements are scaled by 1/(1-p). `stream` identifies (step, call site). */
void op_dropout_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n, float p, uint64_t seed, uint64_t stream);
void op_dropout_backward(cd_device *dev, cd_mem dx, cd_mem dout, size_t n, float p, uint64_t seed,
                         uint64_t stream, int acc);
/* The same uniform numbers on the host, for tests and references. */
float op_dropout_uniform_ref(uint64_t seed, uint64_t stream, uint64_t i);

/* ---- reductions (src/ops/reduce.c, cl/reduce.cl) ---------------------------
 * out[o, i] (=/+=) alpha * sum_r x[o, r, i]        x (O, R, I), out (O, I)
 * Sum (alpha 1) and mean (alpha 1/R) over any middle axis; bias gradients are
 * O = 1. */
void op_reduce_sum(cd_device *dev, cd_mem out, cd_mem x, size_t O, size_t R, size_t I, float alpha, int acc);
/* The backward of op_reduce_sum: dx[o, r, i] (=/+=) alpha * dout[o, i] */
void op_broadcast(cd_device *dev, cd_mem dx, cd_mem dout, size_t O, size_t R, size_t I, float alpha, int acc);
/* out[0] = sum of x[i]^2 over n elements, one float (deterministic two-pass). */
void op_sumsq(cd_device *dev, cd_mem out, cd_mem x, size_t n);

/* ---- softmax with key-padding mask (src/ops/softmax.c, cl/softmax.cl) -----
 * Attention probabilities: x (B, H, Lq, Lk) scores, mask (B, Lk) 1 = padding
 * or cd_none(). out = softmax over the last axis of (scale * x), with masked
 * keys at -inf (probability exactly 0). A row whose keys are all masked gives
 * all zeros (never NaN). */
void op_softmax_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem mask,
                        size_t B, size_t H, size_t Lq, size_t Lk, float scale);
/* dx (=/+=) scale * out * (dout - sum_k dout*out) */
void op_softmax_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out,
                         size_t B, size_t H, size_t Lq, size_t Lk, float scale, int acc);

/* ---- fused attention (src/ops/attention.c, cl/attention.cl) ---------------
 * o = dropout(softmax(scale * (q k^T + bias), mask)) v for every head, the
 * heads read in place (head h: columns [h*hd, (h+1)*hd)), as nn_heads_scores,
 * nn_softmax, nn_dropout and nn_heads_mix compute it (the same dropout mask:
 * weight (b, h, i, j) is element ((b*NH + h)*Lq + i)*Lk + j of the stream), to
 * rounding, without the (B, NH, Lq, Lk) weights in memory. q, o (B, Lq, NH*hd);
 * k, v (B, Lk, NH*hd); mask (B, Lk) 1 = padding, or cd_none(); bias (Lq, Lk)
 * added to every head's q.k before the scale, or cd_none(); lse (B, NH, Lq)
 * each row's log-sum-exp, saved for the backward (-inf: no valid key, o = 0). */
typedef struct {
    size_t B, NH, Lq, Lk, hd;
    float scale;
    float p;                    /* dropout of the weights, in [0, 1); 0: none */
    uint64_t seed, stream;      /* the dropout's stream, as op_dropout_forward's */
} op_attention_args;
/* The head widths the fused kernels take (8, 16, 32, 64); others take the separate ops. */
int op_attention_fused_ok(size_t hd);
/* Kernels: CPUs a work-item per row; GPUs (not ops_row_kernels) S work-items
 * per row, S by the device's compute units and the rows (at most 8), merged
 * in local memory. For tests: S forced (0: the rule); returns the old value. */
int op_attention_set_split(int S);
void op_attention_forward(cd_device *dev, cd_mem o, cd_mem lse, cd_mem q, cd_mem k, cd_mem v, cd_mem mask,
                          cd_mem bias, const op_attention_args *a);
/* dq, dk, dv (=/+= by acc_*; any may be cd_none()); delta (B, NH, Lq) scratch;
 * dout, o, lse from the forward. Two launches: query rows, then key rows. */
void op_attention_backward(cd_device *dev, cd_mem dq, cd_mem dk, cd_mem dv, cd_mem delta, cd_mem dout, cd_mem o,
                           cd_mem lse, cd_mem q, cd_mem k, cd_mem v, cd_mem mask, cd_mem bias,
                           const op_attention_args *a, int acc_q, int acc_k, int acc_v);

/* ---- layer norm over the last axis (src/ops/layernorm.c, cl/layernorm.cl) --
 * out = (x - mean) * rstd * w + b                 x, out (N, C); mean, rstd (N) saved */
void op_layernorm_forward(cd_device *dev, cd_mem out, cd_mem mean, cd_mem rstd, cd_mem x,
                          cd_mem w, cd_mem b, size_t N, size_t C, float eps);
/* dx (=/+=), dw +=, db += */
void op_layernorm_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x,
                           cd_mem mean, cd_mem rstd, cd_mem w, size_t N, size_t C, int acc);
/* A residual add and the layer norm after it (post-norm transformers):
 * x = xa + xb is written (the backward reads it), then out = layernorm(x);
 * the backward gives da (=/+= by acc_a) and db (=/+= by acc_b) the input
 * gradient (either may be none), dw += and dbias += as op_layernorm_backward.
 * The same bits as op_add then op_layernorm_* and the add's two gradient
 * copies, in one launch each way (the parameter gradients apart). */
void op_add_layernorm_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem mean, cd_mem rstd, cd_mem xa, cd_mem xb,
                              cd_mem w, cd_mem b, size_t N, size_t C, float eps);
void op_add_layernorm_backward(cd_device *dev, cd_mem da, cd_mem db, cd_mem dw, cd_mem dbias, cd_mem dout, cd_mem x,
                               cd_mem mean, cd_mem rstd, cd_mem w, size_t N, size_t C, int acc_a, int acc_b);

/* ---- permute (src/ops/permute.c, cl/permute.cl) ----------------------------
 * out = x with axes reordered: out's axis a is x's axis perm[a]; dims are x's
 * sizes; up to 4 axes (pad with 1). The backward is the inverse permutation,
 * with acc. Attention uses it for (L, B, NH, hd) <-> (B, NH, L, hd). */
void op_permute(cd_device *dev, cd_mem out, cd_mem x, const size_t dims[4], const int perm[4], int acc);

/* ---- linear and matmul (src/ops/linear.c, CLBlast) -----------------------
 * out = x w^T + b                                 x (N, IN), w (OUT, IN), b (OUT) or none, out (N, OUT) */
void op_linear_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, size_t N, size_t IN, size_t OUT);
/* dx (=/+=) dout w; dw += dout^T x; db += sum_n dout        any of dx, db may be none */
void op_linear_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                        size_t N, size_t IN, size_t OUT, int acc);
/* A linear layer and the ReLU after it (the FFN's first layer, the box MLP):
 * out = relu(x w^T + b), the bias and the ReLU in the GEMM's epilogue on the
 * row kernels (in the bias kernel elsewhere). The backward takes dout, the
 * gradient of out, and out itself. The same bits as op_linear_* with
 * op_relu_* around them. */
void op_linear_relu_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, size_t N, size_t IN,
                            size_t OUT);
void op_linear_relu_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem out, cd_mem x,
                             cd_mem w, size_t N, size_t IN, size_t OUT, int acc);
/* Batched: out[b] = op(A[b]) op(B[b]) with A, B, out contiguous batches:
 * A (batch, M, K) or (batch, K, M) if ta; B (batch, K, N) or (batch, N, K) if tb; out (batch, M, N) */
void op_bmm_forward(cd_device *dev, cd_mem out, cd_mem A, cd_mem B, size_t batch, size_t M, size_t N, size_t K,
                    int ta, int tb);
/* dA (=/+=), dB (=/+=) (either may be none), each with its own acc flag */
void op_bmm_backward(cd_device *dev, cd_mem dA, cd_mem dB, cd_mem dout, cd_mem A, cd_mem B,
                     size_t batch, size_t M, size_t N, size_t K, int ta, int tb, int acc_a, int acc_b);
/* The same over a batch of outer x inner products whose operands are laid
 * out in place: matrix (o, i) of an operand starts at o * so + i * s, rows ld
 * apart (cd_gemm_strided). Attention's heads: q (B, Lq, NH*hd) as NH x B
 * matrices (Lq, hd): ld NH*hd, s hd, so Lq*NH*hd. Gradients take the layouts
 * of their operands. */
typedef struct { size_t ld, s, so; } op_bmm_layout;
void op_bmm_strided_forward(cd_device *dev, cd_mem out, cd_mem A, cd_mem B, size_t inner, size_t outer, size_t M,
                            size_t N, size_t K, int ta, int tb, const op_bmm_layout *la, const op_bmm_layout *lb,
                            const op_bmm_layout *lc);
void op_bmm_strided_backward(cd_device *dev, cd_mem dA, cd_mem dB, cd_mem dout, cd_mem A, cd_mem B, size_t inner,
                             size_t outer, size_t M, size_t N, size_t K, int ta, int tb, const op_bmm_layout *la,
                             const op_bmm_layout *lb, const op_bmm_layout *lc, int acc_a, int acc_b);

/* ---- conv2d (src/ops/conv.c, cl/conv.cl) ---------------------------------- */
typedef struct {
    size_t B, C, H, W;          /* input (B, C, H, W) */
    size_t K, R, S;             /* K output channels, R x S kernel: w (K, C, R, S) */
    size_t stride, pad, dil;    /* same in both directions */
} conv_shape;
static inline size_t conv_out_h(const conv_shape *s) { return (s->H + 2 * s->pad - s->dil * (s->R - 1) - 1) / s->stride + 1; }
static inline size_t conv_out_w(const conv_shape *s) { return (s->W + 2 * s->pad - s->dil * (s->S - 1) - 1) / s->stride + 1; }
/* out (B, K, Ho, Wo) = conv(x, w) + b (b may be none) */
void op_conv2d_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, const conv_shape *s);
/* dx (=/+=) (may be none), dw += , db += (may be none) */
void op_conv2d_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                        const conv_shape *s, int acc);
/* Training on a device whose weight gradient reads im2col's layout (CPUs):
 * the forward can keep its im2col columns for the backward instead of
 * building them twice. op_conv2d_keep_floats: the floats they take (0 when
 * there are none to keep: a direct 1x1 conv, or the GPU path). The forward
 * writes them into keep (or scratch when keep is none) and returns the images
 * per group it used; pass both to the backward (cols none: rebuilt there). */
size_t op_conv2d_keep_floats(cd_device *dev, const conv_shape *s);
size_t op_conv2d_forward_keep(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, const conv_shape *s,
                              cd_mem keep);
void op_conv2d_backward_kept(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x, cd_mem w,
                             cd_mem cols, size_t cols_group, const conv_shape *s, int acc);
/* 1 when the convs' products on dev read their operands in place (the tile
 * GEMM kernels with CLDETR_CONV_TILES=implicit), 0 with im2col's columns. */
int op_conv2d_reads_in_place(cd_device *dev);

/* ---- batch norm (src/ops/batchnorm.c, cl/batchnorm.cl) -------------------
 * Frozen: y = x * scale + shift with scale = w * rsqrt(var + eps), shift = b - mean * scale
 * (the statistics are buffers, not trained).     x, out (B, C, HW); w, b, mean, var (C) */
void op_batchnorm_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, cd_mem mean,
                                 cd_mem var, size_t B, size_t C, size_t HW, float eps);
/* dx (=/+=) dout * scale */
void op_batchnorm_frozen_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem w, cd_mem var,
                                  size_t B, size_t C, size_t HW, float eps, int acc);
/* The same followed by a ReLU (DETR-R50's conv -> frozen BN -> ReLU): out =
 * relu(bn(x)); the backward takes dout, the gradient of that output, and y,
 * the output itself. The same bits as op_batchnorm_frozen_* with op_relu_*
 * around them, in one pass each way. */
void op_batchnorm_relu_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, cd_mem mean,
                                      cd_mem var, size_t B, size_t C, size_t HW, float eps);
void op_batchnorm_relu_frozen_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem y, cd_mem w, cd_mem var,
                                       size_t B, size_t C, size_t HW, float eps, int acc);
/* A residual block's tail after a frozen batch norm: out = relu(bn(x) + s),
 * s (B, C, HW) the shortcut; the backward takes dout, the gradient of out, and
 * y = out, and gives dx (=/+= by acc) and ds (=/+= by acc_s), either of which
 * may be none. The same bits as op_batchnorm_frozen_* with op_add_relu_*
 * after them, in one pass each way. */
void op_batchnorm_add_relu_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem s, cd_mem w, cd_mem b,
                                          cd_mem mean, cd_mem var, size_t B, size_t C, size_t HW, float eps);
void op_batchnorm_add_relu_frozen_backward(cd_device *dev, cd_mem dx, cd_mem ds, cd_mem dout, cd_mem y, cd_mem w,
                                           cd_mem var, size_t B, size_t C, size_t HW, float eps, int acc,
                                           int acc_s);
/* Trainable, with batch statistics: saves the batch mean and rstd (C); updates the
 * running statistics as PyTorch: running = (1 - momentum) * running + momentum * batch
 * (unbiased variance for running_var). */
void op_batchnorm_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem w, cd_mem b,
                                size_t B, size_t C, size_t HW, float eps, float momentum);
/* dx (=/+=), dw +=, db += */
void op_batchnorm_train_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x,
                                 cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                 size_t B, size_t C, size_t HW, int acc);
/* The same followed by a ReLU, in the same passes (ResNet's conv -> BN -> ReLU):
 * out = relu(bn(x)); the backward takes dout, the gradient of that output, and
 * y, the output itself (where y > 0 the ReLU passed the gradient). The same
 * bits as op_batchnorm_train_* with op_relu_* around them. */
void op_batchnorm_relu_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                     cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem w, cd_mem b,
                                     size_t B, size_t C, size_t HW, float eps, float momentum);
void op_batchnorm_relu_train_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem y,
                                      cd_mem x, cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                      size_t B, size_t C, size_t HW, int acc);
/* A residual block's tail after a training batch norm: out = relu(bn(x) + s);
 * the backward takes dout and y = out and gives dx (=/+= by acc), ds (=/+= by
 * acc_s), dw +=, db += (any may be none). The same bits as the batch norm, then
 * op_add_relu_*. */
void op_batchnorm_add_relu_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                         cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem s, cd_mem w,
                                         cd_mem b, size_t B, size_t C, size_t HW, float eps, float momentum);
void op_batchnorm_add_relu_train_backward(cd_device *dev, cd_mem dx, cd_mem ds, cd_mem dw, cd_mem db, cd_mem dout,
                                          cd_mem y, cd_mem x, cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                          size_t B, size_t C, size_t HW, int acc, int acc_s);

/* ---- max pool (src/ops/pool.c, cl/pool.cl) --------------------------------
 * k x k window, stride s, padding p (ResNet: 3, 2, 1); padded cells are -inf.
 * argmax (B, C, Ho, Wo) saves the index h*W+w of the max in its input plane (as float). */
void op_maxpool_forward(cd_device *dev, cd_mem out, cd_mem argmax, cd_mem x, size_t B, size_t C,
                        size_t H, size_t W, size_t k, size_t s, size_t p);
/* dx (=/+=): each input cell gathers dout of the windows whose argmax it is (no atomics) */
void op_maxpool_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem argmax, size_t B, size_t C,
                         size_t H, size_t W, size_t k, size_t s, size_t p, int acc);
static inline size_t pool_out(size_t H, size_t k, size_t s, size_t p) { return (H + 2 * p - k) / s + 1; }


/* ---- statistics for the training log (src/ops/stats.c, cl/stats.cl) -------
 * out (3) = {sum x, sum x^2, number of x == 0} over x (n), in a fixed order
 * (deterministic for a device). A measurement, not a model op: no backward. */
void op_moments(cd_device *dev, cd_mem out, cd_mem x, size_t n);

#endif
