/* The nn layer: parameters in one flat buffer, tensors with lazily allocated
 * gradients, a per-step arena, and a tape that records every forward op so
 * that backward walks it in reverse.
 *
 * Gradient rule: parameter gradients live in one flat buffer (zeroed once per
 * step) and always add. An activation's gradient is written by the first
 * backward that reaches it and added by every later one (grad_state), so
 * branches that meet (residuals, pos added to q and k) need no special care.
 * A node whose output received no gradient is skipped. */
#ifndef CLDETR_NN_H
#define CLDETR_NN_H

#include <stddef.h>
#include <stdint.h>
#include "cldetr/device.h"
#include "cldetr/ops.h"

/* ---- parameters ---------------------------------------------------------- */

enum { NN_GROUP_BACKBONE = 0, NN_GROUP_REST = 1 };

typedef struct {
    char name[112];             /* the official state_dict name */
    int ndim;
    size_t shape[4];
    size_t n;                   /* number of floats */
    size_t off;                 /* offset in the flat buffer (after nn_params_finalize) */
    int group;                  /* NN_GROUP_BACKBONE / NN_GROUP_REST (separate lr) */
    int trainable;              /* updated by the optimizer, has a gradient */
    int buffer;                 /* a buffer (BN running statistics): never trained */
} nn_param;

typedef struct {
    nn_param *p;
    int n, cap;
    size_t total;               /* floats in the flat buffer */
    /* The flat layout: [trainable backbone | trainable rest | frozen params | buffers] */
    size_t train_begin[2], train_end[2];   /* per group, floats */
    size_t n_trainable;
    cd_mem data, grad;          /* grad covers [0, n_trainable) */
    float *host;                /* host copy used for init and I/O */
    int finalized;
} nn_params;

/* Declare a parameter; returns its index. Shapes are PyTorch's. */
int nn_param_add(nn_params *ps, const char *name, int group, int trainable, int buffer,
                 int ndim, size_t s0, size_t s1, size_t s2, size_t s3);
int nn_param_find(const nn_params *ps, const char *name);
/* Assign offsets (trainable first, by group), allocate the device buffers. */
void nn_params_finalize(nn_params *ps, cd_device *dev);
void nn_params_upload(nn_params *ps, cd_device *dev);     /* host -> device */
void nn_params_download(nn_params *ps, cd_device *dev);   /* device -> host */
void nn_params_free(nn_params *ps, cd_device *dev);
static inline float *nn_param_host(nn_params *ps, int i) { return ps->host + ps->p[i].off; }

/* ---- tensors and the step context ---------------------------------------- */

#define NN_MAX_DIMS 4

/* A tensor: up to 4 dims, outermost first (row-major, contiguous). */
typedef struct nn_tensor {
    cd_mem data;
    cd_mem grad;                /* allocated on first use in backward */
    size_t n;                   /* number of floats: the product of dims */
    int ndim;
    size_t dims[NN_MAX_DIMS];
    const char *name;           /* for messages: a parameter's name, or one given by nn_name (may be NULL) */
    struct nn_tensor *base;     /* a view (nn_view): shares data and gradient with base */
    int param;                  /* >= 0: a parameter view (index), -1 otherwise */
    int requires_grad;
    int grad_state;             /* 0: no gradient yet, 1: written (later ones add) */
    int data_needed;            /* a recorded op's backward reads this data: no in-place op may overwrite it */
    int overwritten;            /* an in-place op wrote over this data: no op may read it */
    struct nn_tensor *over;     /* nn_alias: the tensor whose memory this one takes (overwritten once its op runs) */
} nn_tensor;

struct nn_ctx;
typedef struct nn_node nn_node;
typedef void (*nn_node_fn)(struct nn_ctx *ctx, nn_node *node);

/* One op: its inputs, output and arguments, named per op. The forward runs
 * when the op is called; the node is kept on the tape for the backward. */
#define NN_NODE_IN 4
#define NN_READS_OUT 0x80u
struct nn_node {
    const char *what;           /* op name, for messages */
    nn_node_fn forward, backward;
    nn_tensor *out;
    nn_tensor *in[NN_NODE_IN];  /* inputs (may be NULL); only these receive gradients */
    unsigned reads;             /* the data the backward reads: bit k in[k], NN_READS_OUT out (guards in place) */
    union {
        struct { const float *host; } input;                       /* host data to upload (forward only) */
        struct { float value; } fill;
        struct {                                                    /* relu, sigmoid */
            void (*forward)(cd_device *dev, cd_mem out, cd_mem x, size_t n);
            void (*backward)(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem out, size_t n, int acc);
        } act;
        struct { float p; uint64_t seed, stream; } dropout;
        struct { size_t B, C, HW; } channels;                       /* x (B, C, HW), bias (C) */
        struct { size_t N, IN, OUT; int relu; } linear;             /* x (N, IN), w (OUT, IN); relu after */
        struct {                    /* cols: the forward's im2col kept for the weight gradient, or none */
            conv_shape s;
            cd_mem cols;
            size_t group;           /* images per group of cols (op_conv2d_forward_keep) */
        } conv;
        struct {                    /* x (B, C, HW); running stats (C); batch stats (C) saved in training */
            size_t B, C, HW;
            cd_mem running_mean, running_var, save_mean, save_rstd;
            int relu;               /* a ReLU after the norm, in the same node (in[3]: relu(. + shortcut)) */
        } bn;
        struct { size_t B, C, H, W, k, s, p; cd_mem argmax; } pool; /* x (B, C, H, W), k x k, stride s, pad p */
        struct { size_t N, C; cd_mem mean, rstd, sum; } ln;         /* x (N, C); sum: nn_add_layernorm's x */
        struct { size_t dims[4]; int perm[4]; } permute;            /* dims: x's */
        struct { size_t inner, outer, M, N, K; int ta, tb; op_bmm_layout la, lb, lc; } heads;   /* nn_bmm, nn_heads_* */
        struct { size_t B, H, Lq, Lk; float scale; } softmax;       /* x (B, H, Lq, Lk), mask (B, Lk) */
        struct { op_attention_args args; cd_mem bias, lse, delta; } attn;   /* nn_attention; mask: in[3] */
        struct { size_t B, Hf, Wf, F; } pos;                        /* out (B, Hf*Wf, 2F) */
    } a;                        /* the op's arguments */
};

typedef struct { cl_mem *chunks; size_t *cap; int n; int cur; size_t used; } nn_arena;

typedef struct nn_ctx {
    cd_device *dev;
    nn_params *params;
    int training;               /* dropout on, trainable BN uses batch statistics */
    int record;                 /* record a tape for backward */
    int dry;                    /* count memory only: no device memory, no launches (see nn_run) */
    size_t dry_act, dry_grad;   /* floats a real step would take (dry mode) */
    double flops_fw, flops_bw;  /* multiply-adds x 2 of the matrix ops (linear, conv, bmm) since the
                                   reset: forward, and the backward the tape will run */
    uint64_t seed, step;        /* dropout streams: (seed, step, site) */
    uint32_t dropout_site;
    int attention;              /* NN_ATTENTION_*: CLDETR_ATTENTION, read by nn_ctx_init */
    size_t kept_cols;           /* floats of conv columns kept for the backward this step (NN_KEEP_COLS_MAX) */
    nn_arena act, grads;
    /* activation gradients whose tensor's backward has run, for later gradients of the step */
    struct nn_block { cd_mem m; size_t n; } *free_grads; int n_free, cap_free;
    nn_tensor **tblocks; int n_tblocks; int n_tensors;
    nn_node *nodes; int n_nodes, cap_nodes;
} nn_ctx;

void nn_ctx_init(nn_ctx *ctx, cd_device *dev, nn_params *ps);
/* How attention runs: CLDETR_ATTENTION=fused (nn_attention wherever the head
 * width has a kernel), separate (scores, softmax, dropout, products) or auto
 * (unset: nn_fused_attention's rule). */
enum { NN_ATTENTION_AUTO, NN_ATTENTION_FUSED, NN_ATTENTION_SEPARATE };
/* Does attention with heads hd wide run fused (nn_attention) in this context? */
int nn_fused_attention(const nn_ctx *ctx, size_t hd);
void nn_ctx_free(nn_ctx *ctx);
/* Start a step: reset the arenas and the tape (does not zero parameter grads). */
void nn_ctx_reset(nn_ctx *ctx);
/* Bytes the arenas hold (activations and activation gradients) */
size_t nn_ctx_bytes(const nn_ctx *ctx);
size_t nn_ctx_grad_bytes(const nn_ctx *ctx);   /* the activation gradients' part */
/* Dry mode, after the forward: the floats of activation gradients alive at
 * once during the backward, which reuses the blocks of gradients it is done
 * with (ctx->dry_grad counts them all). */
size_t nn_dry_grad_peak(nn_ctx *ctx);

/* A new tensor of shape dims[0..ndim) from the arena (contents undefined; in
 * dry mode only counted). */
nn_tensor *nn_new(nn_ctx *ctx, int ndim, const size_t *dims);
static inline nn_tensor *nn_new1(nn_ctx *ctx, size_t n) { return nn_new(ctx, 1, &n); }
/* A new tensor of x's shape over x's memory (for the in-place ops; its own
 * gradient, not a view) */
nn_tensor *nn_alias(nn_ctx *ctx, nn_tensor *x);
/* A tensor holding host data (no gradient). */
nn_tensor *nn_input(nn_ctx *ctx, const float *host, int ndim, const size_t *dims);
/* A tensor filled with value (no gradient). */
nn_tensor *nn_fill(nn_ctx *ctx, float value, int ndim, const size_t *dims);
/* A view of parameter i (gradient into the flat gradient buffer when trainable),
 * with the parameter's shape and name. */
nn_tensor *nn_weight(nn_ctx *ctx, int i);
/* Parameters i and j (matrices of one width, j declared right after i in the
 * same group, so adjacent in the flat buffer) as one (rows_i + rows_j, cols)
 * tensor whose gradient lands in both. */
nn_tensor *nn_weight_stack(nn_ctx *ctx, int i, int j);
/* The same data and gradient as x under another shape of as many elements. */
nn_tensor *nn_view(nn_ctx *ctx, nn_tensor *x, int ndim, const size_t *dims);
/* Name t for messages (a string that outlives the step); returns t. */
static inline nn_tensor *nn_name(nn_tensor *t, const char *name) { t->name = name; return t; }
/* For messages: "(800, 256)"; and "role name" ("weight linear1.weight"), or
 * role alone for a tensor without a name. Both return buf. */
const char *nn_shape_str(const nn_tensor *t, char *buf, size_t size);
const char *nn_label(const nn_tensor *t, const char *role, char *buf, size_t size);
/* The gradient buffer of t, allocated on first use; *acc tells the backward
 * whether to write (0) or add (1), and marks it written. */
cd_mem nn_grad(nn_ctx *ctx, nn_tensor *t, int *acc);
/* Seed the backward: t's gradient = host values. */
void nn_set_grad(nn_ctx *ctx, nn_tensor *t, const float *host);
/* Run an op given its filled node: launch its forward (unless ctx->dry), and
 * when recording and any input needs a gradient, set out->requires_grad and
 * keep the node for the backward (in dry mode: count the activation gradients
 * the backward would allocate). The one place that knows about dry mode,
 * with the allocator (nn_new). */
void nn_run(nn_ctx *ctx, nn_node *node);
/* Walk the tape in reverse. */
void nn_backward(nn_ctx *ctx);
/* Zero the flat parameter gradient buffer. */
void nn_zero_grads(nn_ctx *ctx);

/* ---- differentiable ops (src/nn/layers.c) -------------------------------- *
 * Each checks its inputs' shapes (cd_fatal naming the op, the tensors and
 * their shapes) and gives its output a shape. */

nn_tensor *nn_add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);                       /* a + b, same shapes */
nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p);                         /* identity unless training */
/* x + bias broadcast over x's first dim and its trailing ones: bias's dims are
 * x's dims 1..bias->ndim, e.g. x (B, C, H, W) + bias (C), or x (B, Q, d) + bias (Q, d) */
nn_tensor *nn_add_channels(nn_ctx *ctx, nn_tensor *x, nn_tensor *bias);
/* x (..., IN) w^T + b -> (..., OUT): w (OUT, IN), b (OUT) parameter indices (b < 0: none) */
nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, int w, int b);
/* The same with rows [row0, row0 + rows) of w and b (one part of a packed projection) */
/* nn_relu(nn_linear(x, w, b)) as one node (op_linear_relu_*: the bias and the
 * ReLU in the GEMM's epilogue): the same values */
nn_tensor *nn_linear_relu(nn_ctx *ctx, nn_tensor *x, int w, int b);
nn_tensor *nn_linear_rows(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t row0, size_t rows);
/* x (B, C, H, W) -> (B, K, Ho, Wo) with w (K, C, R, S), b (K) or b < 0 */
nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t stride, size_t pad, size_t dil);
/* BN over x (B, C, ...) with the four tensors at indices w, b, mean, var (running
 * stats): frozen, or trainable (batch statistics when ctx->training) */
nn_tensor *nn_batchnorm(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable);
/* In place: out takes the memory of x (of a for add), whose data is gone once
 * the op has run, so only for an input that nothing reads afterwards, in the
 * forward or the backward (the ops' own backward needs none of it: ReLU reads
 * its output, add and a frozen batch norm no data). out has its own gradient.
 * A trainable batch norm in training mode needs x and runs out of place.
 * resnet.c's conv -> batch norm -> ReLU chains use them: DETR-R50's backbone
 * keeps one tensor of each chain instead of three. */
nn_tensor *nn_relu_inplace(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_add_inplace(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
/* nn_add_inplace then nn_relu_inplace as one node (a residual block's tail): the same values */
nn_tensor *nn_add_relu_inplace(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_batchnorm_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable);
/* nn_batchnorm_inplace then nn_relu_inplace as one node (op_batchnorm_relu_train_*
 * or op_batchnorm_relu_frozen_*): the same values, one pass fewer each way */
nn_tensor *nn_batchnorm_relu_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable);
/* nn_batchnorm_inplace then nn_add_relu_inplace(., shortcut): a residual
 * block's tail, as one node (op_batchnorm_add_relu_frozen_* or
 * op_batchnorm_add_relu_train_*): the same values, one pass fewer each way. */
nn_tensor *nn_batchnorm_add_relu_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable,
                                         nn_tensor *shortcut);
/* x (B, C, H, W) -> (B, C, Ho, Wo): k x k window, stride s, padding p */
nn_tensor *nn_maxpool(nn_ctx *ctx, nn_tensor *x, size_t k, size_t s, size_t p);
/* over x's last dim (C): w, b (C) */
nn_tensor *nn_layernorm(nn_ctx *ctx, nn_tensor *x, int w, int b);
/* nn_layernorm(nn_add(a, b)) as one node (op_add_layernorm_*, a post-norm
 * residual): the same values; the sum is kept inside the node */
nn_tensor *nn_add_layernorm(nn_ctx *ctx, nn_tensor *a, nn_tensor *b, int w, int bias);
/* out's axis a is x's axis perm[a]; x has up to 4 dims (padded with 1s) */
nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const int perm[4]);
/* A (..., M, K) or (..., K, M) if ta; B (..., K, N) or (..., N, K) if tb; the
 * leading dims (the batch) equal -> (..., M, N) */
nn_tensor *nn_bmm(nn_ctx *ctx, nn_tensor *A, nn_tensor *B, int ta, int tb);
/* Attention's two products per head, reading and writing (B, L, NH*hd)
 * tensors in place (op_bmm_strided_*; no permute to (B, NH, L, hd)):
 * nn_heads_scores: q (B, Lq, d), k (B, Lk, d) -> (B, NH, Lq, Lk), q_h k_h^T;
 * nn_heads_mix: p (B, NH, Lq, Lk), v (B, Lk, d) -> (B, Lq, d), p_h v_h. */
nn_tensor *nn_heads_scores(nn_ctx *ctx, nn_tensor *q, nn_tensor *k, size_t NH);
nn_tensor *nn_heads_mix(nn_ctx *ctx, nn_tensor *p, nn_tensor *v);
/* softmax(scale * x) over the last dim of x (B, H, Lq, Lk) with key mask (B, Lk)
 * (a tensor without grad, or NULL) */
nn_tensor *nn_softmax(nn_ctx *ctx, nn_tensor *x, nn_tensor *mask, float scale);
/* Fused attention (op_attention_*): q (B, Lq, d), k and v (B, Lk, d), NH heads
 * read in place -> (B, Lq, d), the same function as nn_heads_scores, the
 * bias add, nn_softmax (scale, mask), nn_dropout (p, the same mask) and
 * nn_heads_mix, without the (B, NH, Lq, Lk) weights; mask (B, Lk) and bias
 * (Lq, Lk, added before the scale) are tensors without grad, or NULL. Only
 * for head widths op_attention_fused_ok takes. */
nn_tensor *nn_attention(nn_ctx *ctx, nn_tensor *q, nn_tensor *k, nn_tensor *v, size_t NH, nn_tensor *mask,
                        nn_tensor *bias, float scale, float p);
/* learned position encoding from row/col tables (parameters) -> (B, Hf*Wf, 2F) */
nn_tensor *nn_learned_pos(nn_ctx *ctx, int row, int col, size_t B, size_t Hf, size_t Wf, size_t F);

#endif
