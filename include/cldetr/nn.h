/* The nn layer: parameters in one flat buffer, tensors with lazily allocated
 * gradients, a per-step arena, and a tape that records every forward op so
 * that backward walks it in reverse (DESIGN.md §4 "Backward by recording").
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

typedef struct nn_tensor {
    cd_mem data;
    cd_mem grad;                /* allocated on first use in backward */
    size_t n;
    int param;                  /* >= 0: a parameter view (index), -1 otherwise */
    int requires_grad;
    int grad_state;             /* 0: no gradient yet, 1: written (later ones add) */
} nn_tensor;

struct nn_ctx;
typedef struct nn_node nn_node;
typedef void (*nn_backward_fn)(struct nn_ctx *ctx, nn_node *node);

#define NN_NODE_T 6
#define NN_NODE_S 10
struct nn_node {
    nn_backward_fn backward;
    const char *what;           /* op name, for messages */
    nn_tensor *out;
    nn_tensor *in[NN_NODE_T];   /* inputs (may be NULL) */
    cd_mem saved[NN_NODE_T];    /* saved activations (mean, rstd, argmax, ...) */
    size_t s[NN_NODE_S];        /* sizes */
    float f[4];
    uint64_t u[2];
    conv_shape conv;
};

typedef struct { cl_mem *chunks; size_t *cap; int n; int cur; size_t used; } nn_arena;

typedef struct nn_ctx {
    cd_device *dev;
    nn_params *params;
    int training;               /* dropout on, trainable BN uses batch statistics */
    int record;                 /* record a tape for backward */
    int dry;                    /* count memory only: no device memory, no launches */
    size_t dry_act, dry_grad;   /* floats a real step would take (dry mode) */
    uint64_t seed, step;        /* dropout streams: (seed, step, site) */
    uint32_t dropout_site;
    nn_arena act, grads;
    nn_tensor **tblocks; int n_tblocks; int n_tensors;
    nn_node *nodes; int n_nodes, cap_nodes;
} nn_ctx;

void nn_ctx_init(nn_ctx *ctx, cd_device *dev, nn_params *ps);
void nn_ctx_free(nn_ctx *ctx);
/* Start a step: reset the arenas and the tape (does not zero parameter grads). */
void nn_ctx_reset(nn_ctx *ctx);
/* Bytes the arenas hold (activations and activation gradients) */
size_t nn_ctx_bytes(const nn_ctx *ctx);

/* A new tensor of n floats from the arena (contents undefined). */
nn_tensor *nn_new(nn_ctx *ctx, size_t n);
/* A tensor holding host data (no gradient). */
nn_tensor *nn_input(nn_ctx *ctx, const float *host, size_t n);
/* A view of parameter i (gradient into the flat gradient buffer when trainable). */
nn_tensor *nn_weight(nn_ctx *ctx, int i);
/* The gradient buffer of t, allocated on first use; *acc tells the backward
 * whether to write (0) or add (1), and marks it written. */
cd_mem nn_grad(nn_ctx *ctx, nn_tensor *t, int *acc);
/* Seed the backward: t's gradient = host values. */
void nn_set_grad(nn_ctx *ctx, nn_tensor *t, const float *host);
/* Walk the tape in reverse. */
void nn_backward(nn_ctx *ctx);
/* Zero the flat parameter gradient buffer. */
void nn_zero_grads(nn_ctx *ctx);

/* ---- differentiable ops (src/nn/layers.c) -------------------------------- */

nn_tensor *nn_add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);                       /* a + b */
nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p);                         /* identity unless training */
/* x (B, C, HW) + bias (C) broadcast */
nn_tensor *nn_add_channels(nn_ctx *ctx, nn_tensor *x, nn_tensor *bias, size_t B, size_t C, size_t HW);
/* x (N, IN) w^T + b: w, b parameter indices (b < 0: none); w may be a row slice of a parameter */
nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, int w, size_t w_row0, int b, size_t N, size_t IN, size_t OUT);
nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, int w, int b, const conv_shape *s);
/* BN with the four tensors at indices w, b, mean, var (running stats): frozen,
 * or trainable (batch statistics when ctx->training) */
nn_tensor *nn_batchnorm(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable,
                        size_t B, size_t C, size_t HW);
nn_tensor *nn_maxpool(nn_ctx *ctx, nn_tensor *x, size_t B, size_t C, size_t H, size_t W,
                      size_t k, size_t s, size_t p);
nn_tensor *nn_layernorm(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t N, size_t C);
nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const size_t dims[4], const int perm[4]);
nn_tensor *nn_bmm(nn_ctx *ctx, nn_tensor *A, nn_tensor *B, size_t batch, size_t M, size_t N, size_t K,
                  int ta, int tb);
/* softmax(scale * x) over Lk with key mask (B, Lk) (a tensor without grad, or NULL) */
nn_tensor *nn_softmax(nn_ctx *ctx, nn_tensor *x, nn_tensor *mask, size_t B, size_t H, size_t Lq,
                      size_t Lk, float scale);
/* learned position encoding from row/col tables (parameters) -> (B, Hf*Wf, 2F) */
nn_tensor *nn_learned_pos(nn_ctx *ctx, int row, int col, size_t B, size_t Hf, size_t Wf, size_t F);

#endif
