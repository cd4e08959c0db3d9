/* Differentiable ops: each checks its inputs' shapes, fills a node (inputs,
 * output, named arguments, forward and backward) and hands it to nn_run; the
 * forward and backward call the op's kernels (src/ops/). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cldetr/nn.h"

#define EPS_NORM 1e-5f           /* LayerNorm and BatchNorm eps, PyTorch's default */
#define BN_MOMENTUM 0.1f

/* ---- shapes and messages ----------------------------------------------------- */

/* Rotating buffers: a message names up to four tensors. */
static const char *shp(const nn_tensor *t) {
    static char buf[4][64];
    static int k;
    k = (k + 1) % 4;
    return nn_shape_str(t, buf[k], sizeof buf[k]);
}
static const char *lbl(const nn_tensor *t, const char *role) {
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    return nn_label(t, role, buf[k], sizeof buf[k]);
}

/* "op: <role> has shape (...) <why>" */
CD_NORETURN CD_PRINTF(4, 5) static void bad_shape(const char *op, const nn_tensor *t, const char *role,
                                                  const char *fmt, ...) {
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cd_fatal("%s: %s has shape %s %s", op, lbl(t, role), shp(t), why);
}

static int same_shape(const nn_tensor *a, const nn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++) if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

static void need_ndim(const char *op, const nn_tensor *t, const char *role, int ndim, const char *dims) {
    if (t->ndim != ndim) bad_shape(op, t, role, "but must be %s", dims);
}

static nn_tensor *like(nn_ctx *ctx, const nn_tensor *x) { return nn_new(ctx, x->ndim, x->dims); }

/* out over x's memory, for the in-place ops (include/cldetr/nn.h says when) */
static nn_tensor *over(nn_ctx *ctx, nn_tensor *x, const char *op) {
    if (x->param >= 0 || x->base)
        cd_fatal("%s: %s is a parameter or a view; an in-place op needs an activation of its own (a bug in cldetr)",
                 op, x->name ? x->name : "the input");
    if (x->data_needed)
        cd_fatal("%s: the backward of an op reads %s's data, which this op would overwrite (a bug in cldetr)", op,
                 x->name ? x->name : "the input");
    return nn_alias(ctx, x);   /* nn_run marks x overwritten once the op has run */
}

static size_t prod(const size_t *dims, int n) {
    size_t p = 1;
    for (int d = 0; d < n; d++) p *= dims[d];
    return p;
}

/* ---- running and gradients ------------------------------------------------- */

static nn_tensor *run(nn_ctx *ctx, nn_node *nd) {
    nn_run(ctx, nd);
    return nd->out;
}

static int needs(const nn_tensor *t) { return t && t->requires_grad; }

/* A matrix op's arithmetic: f in the forward, f again for each input of a
 * recorded op whose gradient the backward computes. */
static void count_flops(nn_ctx *ctx, double f, const nn_tensor *a, const nn_tensor *b) {
    ctx->flops_fw += f;
    if (ctx->record) ctx->flops_bw += f * (needs(a) + needs(b));
}

/* Gradient buffer of t for an op that can only add (+=): zeroed when it is
 * the first gradient t receives. */
static cd_mem grad_for_add(nn_ctx *ctx, nn_tensor *t) {
    int acc;
    cd_mem g = nn_grad(ctx, t, &acc);
    if (!acc) cd_fill(ctx->dev, g, 0.0f, t->n);
    return g;
}

static cd_mem grad_or_none(nn_ctx *ctx, nn_tensor *t, int *acc) {
    *acc = 0;
    return needs(t) ? nn_grad(ctx, t, acc) : cd_none();
}

/* The gradients of an op on x with a weight and a bias (in[0..2]): dx (its acc
 * flag in *acc), and the parameters' gradients, which always add. */
static void weight_grads(nn_ctx *ctx, nn_node *nd, int *acc, cd_mem *dx, cd_mem *dw, cd_mem *db) {
    *dx = grad_or_none(ctx, nd->in[0], acc);
    *dw = needs(nd->in[1]) ? nd->in[1]->grad : cd_none();
    *db = needs(nd->in[2]) ? nd->in[2]->grad : cd_none();
}

static cd_mem data_or_none(const nn_tensor *t) { return t ? t->data : cd_none(); }

/* Rows [row0, row0 + rows) of parameter i (a packed matrix, or its bias). */
static nn_tensor *param_rows(nn_ctx *ctx, int i, size_t row0, size_t rows) {
    nn_tensor *t = nn_weight(ctx, i);
    size_t row = t->n / t->dims[0];
    t->data = cd_at(t->data, row0 * row);
    if (t->grad.mem) t->grad = cd_at(t->grad, row0 * row);
    t->dims[0] = rows;
    t->n = rows * row;
    return t;
}

/* ---- add, relu, sigmoid, dropout ----------------------------------------- */

static void add_fw(nn_ctx *ctx, nn_node *nd) {
    op_add(ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data, nd->out->n);
}

static void add_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_a, acc_b;
    cd_mem da = grad_or_none(ctx, nd->in[0], &acc_a), db = grad_or_none(ctx, nd->in[1], &acc_b);
    op_add_backward(ctx->dev, da, db, nd->out->grad, nd->out->n, acc_a, acc_b);
}

/* a, b, out: the same shape */
static nn_tensor *add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b, int inplace) {
    if (!same_shape(a, b)) bad_shape("nn_add", a, "a", "but %s has shape %s", lbl(b, "b"), shp(b));
    nn_node nd = {.what = "add", .forward = add_fw, .backward = add_bw,
                  .out = inplace ? over(ctx, a, "nn_add_inplace") : like(ctx, a), .in = {a, b}};
    return run(ctx, &nd);
}

static void add_relu_fw(nn_ctx *ctx, nn_node *nd) {
    op_add_relu_forward(ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data, nd->out->n);
}

static void add_relu_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_a, acc_b;
    cd_mem da = grad_or_none(ctx, nd->in[0], &acc_a), db = grad_or_none(ctx, nd->in[1], &acc_b);
    op_add_relu_backward(ctx->dev, da, db, nd->out->grad, nd->out->data, nd->out->n, acc_a, acc_b);
}

/* relu(a + b) over a's memory: one node for nn_add_inplace then nn_relu_inplace */
nn_tensor *nn_add_relu_inplace(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) {
    if (!same_shape(a, b)) bad_shape("nn_add_relu_inplace", a, "a", "but %s has shape %s", lbl(b, "b"), shp(b));
    nn_node nd = {.what = "add_relu", .forward = add_relu_fw, .backward = add_relu_bw, .reads = NN_READS_OUT,
                  .out = over(ctx, a, "nn_add_relu_inplace"), .in = {a, b}};
    return run(ctx, &nd);
}

nn_tensor *nn_add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) { return add(ctx, a, b, 0); }
nn_tensor *nn_add_inplace(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) { return add(ctx, a, b, 1); }

static void act_fw(nn_ctx *ctx, nn_node *nd) {
    nd->a.act.forward(ctx->dev, nd->out->data, nd->in[0]->data, nd->out->n);
}

static void act_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem g = nn_grad(ctx, nd->in[0], &acc);
    nd->a.act.backward(ctx->dev, g, nd->out->grad, nd->out->data, nd->out->n, acc);
}

/* x, out: any shape */
nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x) {
    nn_node nd = {.what = "relu", .forward = act_fw, .backward = act_bw, .out = like(ctx, x), .in = {x},
                  .reads = NN_READS_OUT,
                  .a.act = {op_relu_forward, op_relu_backward}};
    return run(ctx, &nd);
}

nn_tensor *nn_relu_inplace(nn_ctx *ctx, nn_tensor *x) {
    nn_node nd = {.what = "relu", .forward = act_fw, .backward = act_bw, .out = over(ctx, x, "nn_relu_inplace"),
                  .reads = NN_READS_OUT,
                  .in = {x}, .a.act = {op_relu_forward, op_relu_backward}};
    return run(ctx, &nd);
}

/* x, out: any shape */
nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x) {
    nn_node nd = {.what = "sigmoid", .forward = act_fw, .backward = act_bw, .out = like(ctx, x), .in = {x},
                  .reads = NN_READS_OUT,
                  .a.act = {op_sigmoid_forward, op_sigmoid_backward}};
    return run(ctx, &nd);
}

static void dropout_fw(nn_ctx *ctx, nn_node *nd) {
    op_dropout_forward(ctx->dev, nd->out->data, nd->in[0]->data, nd->out->n, nd->a.dropout.p, nd->a.dropout.seed,
                       nd->a.dropout.stream);
}

static void dropout_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem g = nn_grad(ctx, nd->in[0], &acc);
    op_dropout_backward(ctx->dev, g, nd->out->grad, nd->out->n, nd->a.dropout.p, nd->a.dropout.seed,
                        nd->a.dropout.stream, acc);
}

/* the stream of the next dropout site of the step: (step, site) */
static uint64_t dropout_stream(nn_ctx *ctx) { return (ctx->step << 20) ^ (uint64_t)ctx->dropout_site++; }

/* x, out: any shape */
nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p) {
    if (!ctx->training || p <= 0.0f) return x;
    uint64_t stream = dropout_stream(ctx);
    nn_node nd = {.what = "dropout", .forward = dropout_fw, .backward = dropout_bw, .out = like(ctx, x), .in = {x},
                  .a.dropout = {p, ctx->seed, stream}};
    return run(ctx, &nd);
}

/* ---- broadcast add over channels ---------------------------------------- */

static void add_channels_fw(nn_ctx *ctx, nn_node *nd) {
    op_add_channels_forward(ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data, nd->a.channels.B,
                            nd->a.channels.C, nd->a.channels.HW);
}

static void add_channels_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem db = needs(nd->in[1]) ? grad_for_add(ctx, nd->in[1]) : cd_none();
    op_add_channels_backward(ctx->dev, dx, db, nd->out->grad, nd->a.channels.B, nd->a.channels.C,
                             nd->a.channels.HW, acc);
}

/* x (B, C..., HW...) viewed as (B, C, HW), bias (C...) */
nn_tensor *nn_add_channels(nn_ctx *ctx, nn_tensor *x, nn_tensor *bias) {
    int ok = bias->ndim < x->ndim;
    for (int d = 0; ok && d < bias->ndim; d++) ok = bias->dims[d] == x->dims[1 + d];
    if (!ok) bad_shape("nn_add_channels", x, "x", "but %s has shape %s (it must match x's dims from the second on)",
                       lbl(bias, "bias"), shp(bias));
    size_t B = x->dims[0], C = bias->n;
    nn_node nd = {.what = "add_channels", .forward = add_channels_fw, .backward = add_channels_bw,
                  .out = like(ctx, x), .in = {x, bias}, .a.channels = {B, C, x->n / (B * C)}};
    return run(ctx, &nd);
}

/* ---- linear, conv ---------------------------------------------------------- */

/* a linear layer, and with a.linear.relu the ReLU after it */
static void linear_fw(nn_ctx *ctx, nn_node *nd) {
    (nd->a.linear.relu ? op_linear_relu_forward : op_linear_forward)(
        ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data, data_or_none(nd->in[2]), nd->a.linear.N,
        nd->a.linear.IN, nd->a.linear.OUT);
}

static void linear_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx, dw, db;
    weight_grads(ctx, nd, &acc, &dx, &dw, &db);
    if (nd->a.linear.relu)   /* where the output is > 0 the ReLU passed the gradient */
        op_linear_relu_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->out->data, nd->in[0]->data,
                                nd->in[1]->data, nd->a.linear.N, nd->a.linear.IN, nd->a.linear.OUT, acc);
    else
        op_linear_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->in[1]->data, nd->a.linear.N,
                           nd->a.linear.IN, nd->a.linear.OUT, acc);
}

/* x (..., IN), wt (OUT, IN), bt (OUT) or NULL -> (..., OUT), then ReLU when relu */
static nn_tensor *linear(nn_ctx *ctx, nn_tensor *x, nn_tensor *wt, nn_tensor *bt, int relu) {
    size_t OUT = wt->dims[0], IN = wt->dims[1];
    if (x->dims[x->ndim - 1] != IN)
        bad_shape("nn_linear", x, "x", "but %s %s expects (*, %zu)", lbl(wt, "the weight"), shp(wt), IN);
    size_t dims[NN_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    dims[x->ndim - 1] = OUT;
    count_flops(ctx, 2.0 * (double)(x->n / IN) * (double)IN * (double)OUT, x, wt);
    nn_node nd = {.what = relu ? "linear_relu" : "linear", .forward = linear_fw, .backward = linear_bw,
                  .reads = relu ? 1 | NN_READS_OUT : 1, .out = nn_new(ctx, x->ndim, dims),
                  .in = {x, wt, bt}, .a.linear = {x->n / IN, IN, OUT, relu}};
    return run(ctx, &nd);
}

nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, int w, int b) {
    return linear(ctx, x, nn_weight(ctx, w), b >= 0 ? nn_weight(ctx, b) : NULL, 0);
}

nn_tensor *nn_linear_relu(nn_ctx *ctx, nn_tensor *x, int w, int b) {
    return linear(ctx, x, nn_weight(ctx, w), b >= 0 ? nn_weight(ctx, b) : NULL, 1);
}

nn_tensor *nn_linear_rows(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t row0, size_t rows) {
    return linear(ctx, x, param_rows(ctx, w, row0, rows), b >= 0 ? param_rows(ctx, b, row0, rows) : NULL, 0);
}

/* Floats of im2col columns a step may keep from the forward for the weight
 * gradients (1 GiB): beyond it the backward builds them again. */
#define NN_KEEP_COLS_MAX ((size_t)1 << 28)

static void conv_fw(nn_ctx *ctx, nn_node *nd) {
    nd->a.conv.group = op_conv2d_forward_keep(ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data,
                                              data_or_none(nd->in[2]), &nd->a.conv.s, nd->a.conv.cols);
}

static void conv_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx, dw, db;
    weight_grads(ctx, nd, &acc, &dx, &dw, &db);
    op_conv2d_backward_kept(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->in[1]->data,
                            nd->a.conv.cols, nd->a.conv.group, &nd->a.conv.s, acc);
}

/* x (B, C, H, W), w (K, C, R, S), b (K) -> (B, K, Ho, Wo) */
nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t stride, size_t pad, size_t dil) {
    nn_tensor *wt = nn_weight(ctx, w);
    nn_tensor *bt = b >= 0 ? nn_weight(ctx, b) : NULL;
    if (x->ndim != 4 || x->dims[1] != wt->dims[1])
        bad_shape("nn_conv2d", x, "x", "but %s %s expects (B, %zu, H, W)", lbl(wt, "the weight"), shp(wt), wt->dims[1]);
    conv_shape s = {x->dims[0], x->dims[1], x->dims[2], x->dims[3], wt->dims[0], wt->dims[2], wt->dims[3],
                    stride, pad, dil};
    size_t dims[4] = {s.B, s.K, conv_out_h(&s), conv_out_w(&s)};
    count_flops(ctx, 2.0 * (double)(s.B * s.K * dims[2] * dims[3]) * (double)(s.C * s.R * s.S), x, wt);
    nn_node nd = {.what = "conv2d", .forward = conv_fw, .backward = conv_bw, .reads = 1, .out = nn_new(ctx, 4, dims),
                  .in = {x, wt, bt}, .a.conv = {.s = s, .cols = cd_none()}};
    /* the forward's im2col, kept for the weight gradient when it will be needed */
    size_t keep = ctx->record && ctx->dev && needs(wt) ? op_conv2d_keep_floats(ctx->dev, &s) : 0;
    if (keep && ctx->kept_cols + keep <= NN_KEEP_COLS_MAX) {
        nd.a.conv.cols = nn_new1(ctx, keep)->data;
        ctx->kept_cols += keep;
    }
    return run(ctx, &nd);
}

/* ---- batch norm ------------------------------------------------------------ */

#define BN(nd) (nd)->a.bn.B, (nd)->a.bn.C, (nd)->a.bn.HW

/* One node for every batch norm: in = {x, w, b} and, for a residual block's
 * tail, in[3] = the shortcut: relu(bn(x) + shortcut); else with a.bn.relu
 * relu(bn(x)), else bn(x). Frozen: the stored statistics (running_mean,
 * running_var); training: the batch's, saved in save_mean, save_rstd. */
static void bn_frozen_fw(nn_ctx *ctx, nn_node *nd) {
    cd_mem x = nd->in[0]->data, w = nd->in[1]->data, b = nd->in[2]->data;
    if (nd->in[3])
        op_batchnorm_add_relu_frozen_forward(ctx->dev, nd->out->data, x, nd->in[3]->data, w, b,
                                             nd->a.bn.running_mean, nd->a.bn.running_var, BN(nd), EPS_NORM);
    else
        (nd->a.bn.relu ? op_batchnorm_relu_frozen_forward : op_batchnorm_frozen_forward)(
            ctx->dev, nd->out->data, x, w, b, nd->a.bn.running_mean, nd->a.bn.running_var, BN(nd), EPS_NORM);
}

static void bn_frozen_bw(nn_ctx *ctx, nn_node *nd) {
    int acc, acc_s;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc), w = nd->in[1]->data, var = nd->a.bn.running_var;
    if (nd->in[3]) {
        cd_mem ds = grad_or_none(ctx, nd->in[3], &acc_s);
        op_batchnorm_add_relu_frozen_backward(ctx->dev, dx, ds, nd->out->grad, nd->out->data, w, var, BN(nd),
                                              EPS_NORM, acc, acc_s);
    } else if (!cd_has(dx)) {
        return;
    } else if (nd->a.bn.relu) {   /* where the output is > 0 the ReLU passed the gradient */
        op_batchnorm_relu_frozen_backward(ctx->dev, dx, nd->out->grad, nd->out->data, w, var, BN(nd), EPS_NORM,
                                          acc);
    } else {
        op_batchnorm_frozen_backward(ctx->dev, dx, nd->out->grad, w, var, BN(nd), EPS_NORM, acc);
    }
}

static void bn_train_fw(nn_ctx *ctx, nn_node *nd) {
    cd_mem x = nd->in[0]->data, w = nd->in[1]->data, b = nd->in[2]->data;
    if (nd->in[3])
        op_batchnorm_add_relu_train_forward(ctx->dev, nd->out->data, nd->a.bn.save_mean, nd->a.bn.save_rstd,
                                            nd->a.bn.running_mean, nd->a.bn.running_var, x, nd->in[3]->data, w, b,
                                            BN(nd), EPS_NORM, BN_MOMENTUM);
    else
        (nd->a.bn.relu ? op_batchnorm_relu_train_forward : op_batchnorm_train_forward)(
            ctx->dev, nd->out->data, nd->a.bn.save_mean, nd->a.bn.save_rstd, nd->a.bn.running_mean,
            nd->a.bn.running_var, x, w, b, BN(nd), EPS_NORM, BN_MOMENTUM);
}

static void bn_train_bw(nn_ctx *ctx, nn_node *nd) {
    int acc, acc_s;
    cd_mem dx, dw, db;
    weight_grads(ctx, nd, &acc, &dx, &dw, &db);
    cd_mem x = nd->in[0]->data, w = nd->in[1]->data, mean = nd->a.bn.save_mean, rstd = nd->a.bn.save_rstd;
    if (nd->in[3]) {
        cd_mem ds = grad_or_none(ctx, nd->in[3], &acc_s);
        op_batchnorm_add_relu_train_backward(ctx->dev, dx, ds, dw, db, nd->out->grad, nd->out->data, x, mean, rstd,
                                             w, BN(nd), acc, acc_s);
    } else if (nd->a.bn.relu) {
        op_batchnorm_relu_train_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->out->data, x, mean, rstd, w,
                                         BN(nd), acc);
    } else {
        op_batchnorm_train_backward(ctx->dev, dx, dw, db, nd->out->grad, x, mean, rstd, w, BN(nd), acc);
    }
}

/* x (B, C, ...) viewed as (B, C, HW); w, b, mean, var (C); relu and shortcut
 * (only with inplace, as nn_batchnorm_relu_inplace and
 * nn_batchnorm_add_relu_inplace ask): a ReLU after it, or relu(. + shortcut),
 * in the same node */
static nn_tensor *batchnorm(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable, int inplace,
                            int relu, nn_tensor *shortcut) {
    nn_tensor *wt = nn_weight(ctx, w), *bt = nn_weight(ctx, b);
    nn_tensor *mt = nn_weight(ctx, mean), *vt = nn_weight(ctx, var);
    if (x->ndim < 2 || x->dims[1] != wt->n)
        bad_shape("nn_batchnorm", x, "x", "but %s %s expects (B, %zu, ...)", lbl(wt, "the weight"), shp(wt), wt->n);
    if (shortcut && !same_shape(x, shortcut))
        bad_shape("nn_batchnorm_add_relu_inplace", x, "x", "but %s has shape %s", lbl(shortcut, "the shortcut"),
                  shp(shortcut));
    size_t B = x->dims[0], C = x->dims[1];
    int frozen = !(trainable && ctx->training);   /* the backward reads no data of x */
    int masked = relu || shortcut;                /* the backward reads the output: the ReLU's mask */
    static const char *const names[2][3] = {{"batchnorm", "batchnorm_relu", "batchnorm_add_relu"},
                                            {"batchnorm_frozen", "batchnorm_relu_frozen",
                                             "batchnorm_add_relu_frozen"}};
    nn_node nd = {.what = names[frozen][shortcut ? 2 : relu ? 1 : 0],
                  .out = inplace && frozen ? over(ctx, x, "nn_batchnorm_inplace") : like(ctx, x),
                  .in = {x, wt, bt, shortcut},
                  .a.bn = {B, C, x->n / (B * C), mt->data, vt->data, cd_none(), cd_none(), relu}};
    if (!frozen) {
        nd.reads = masked ? 1 | NN_READS_OUT : 1;
        nd.forward = bn_train_fw;
        nd.backward = bn_train_bw;
        nd.a.bn.save_mean = nn_new1(ctx, C)->data;
        nd.a.bn.save_rstd = nn_new1(ctx, C)->data;
        return run(ctx, &nd);
    }
    if (trainable && ctx->record && (needs(wt) || needs(bt)))
        cd_fatal("backward through a trainable batch norm in eval mode is not supported: "
                 "run the step in training mode or freeze the backbone's batch norms");
    nd.forward = bn_frozen_fw;
    nd.backward = bn_frozen_bw;
    if (masked) nd.reads = NN_READS_OUT;
    return run(ctx, &nd);
}

nn_tensor *nn_batchnorm(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable) {
    return batchnorm(ctx, x, w, b, mean, var, trainable, 0, 0, NULL);
}

nn_tensor *nn_batchnorm_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable) {
    return batchnorm(ctx, x, w, b, mean, var, trainable, 1, 0, NULL);
}

nn_tensor *nn_batchnorm_relu_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable) {
    return batchnorm(ctx, x, w, b, mean, var, trainable, 1, 1, NULL);
}

nn_tensor *nn_batchnorm_add_relu_inplace(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable,
                                         nn_tensor *shortcut) {
    return batchnorm(ctx, x, w, b, mean, var, trainable, 1, 1, shortcut);
}

/* ---- max pool -------------------------------------------------------------- */

#define POOL(nd) (nd)->a.pool.B, (nd)->a.pool.C, (nd)->a.pool.H, (nd)->a.pool.W, (nd)->a.pool.k, \
                 (nd)->a.pool.s, (nd)->a.pool.p

static void maxpool_fw(nn_ctx *ctx, nn_node *nd) {
    op_maxpool_forward(ctx->dev, nd->out->data, nd->a.pool.argmax, nd->in[0]->data, POOL(nd));
}

static void maxpool_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_maxpool_backward(ctx->dev, dx, nd->out->grad, nd->a.pool.argmax, POOL(nd), acc);
}

/* x (B, C, H, W) -> (B, C, Ho, Wo) */
nn_tensor *nn_maxpool(nn_ctx *ctx, nn_tensor *x, size_t k, size_t s, size_t p) {
    need_ndim("nn_maxpool", x, "x", 4, "(B, C, H, W)");
    size_t B = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    size_t dims[4] = {B, C, pool_out(H, k, s, p), pool_out(W, k, s, p)};
    nn_node nd = {.what = "maxpool", .forward = maxpool_fw, .backward = maxpool_bw, .out = nn_new(ctx, 4, dims),
                  .in = {x}, .a.pool = {B, C, H, W, k, s, p, cd_none()}};
    nd.a.pool.argmax = nn_new(ctx, 4, dims)->data;
    return run(ctx, &nd);
}

/* ---- layer norm ------------------------------------------------------------ */

static void layernorm_fw(nn_ctx *ctx, nn_node *nd) {
    op_layernorm_forward(ctx->dev, nd->out->data, nd->a.ln.mean, nd->a.ln.rstd, nd->in[0]->data, nd->in[1]->data,
                         nd->in[2]->data, nd->a.ln.N, nd->a.ln.C, EPS_NORM);
}

static void layernorm_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx, dw, db;
    weight_grads(ctx, nd, &acc, &dx, &dw, &db);
    op_layernorm_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->a.ln.mean, nd->a.ln.rstd,
                          nd->in[1]->data, nd->a.ln.N, nd->a.ln.C, acc);
}

/* x (..., C), w, b (C) */
nn_tensor *nn_layernorm(nn_ctx *ctx, nn_tensor *x, int w, int b) {
    nn_tensor *wt = nn_weight(ctx, w), *bt = nn_weight(ctx, b);
    size_t C = wt->n, N = x->n / C;
    if (x->dims[x->ndim - 1] != C)
        bad_shape("nn_layernorm", x, "x", "but %s %s expects (*, %zu)", lbl(wt, "the weight"), shp(wt), C);
    nn_node nd = {.what = "layernorm", .forward = layernorm_fw, .backward = layernorm_bw, .reads = 1,
                  .out = like(ctx, x),
                  .in = {x, wt, bt}, .a.ln = {N, C, cd_none(), cd_none()}};
    nd.a.ln.mean = nn_new1(ctx, N)->data;
    nd.a.ln.rstd = nn_new1(ctx, N)->data;
    return run(ctx, &nd);
}

/* in = {a, b, w, bias}; the sum a + b is the node's own tensor (a.ln.sum) */
static void add_layernorm_fw(nn_ctx *ctx, nn_node *nd) {
    op_add_layernorm_forward(ctx->dev, nd->out->data, nd->a.ln.sum, nd->a.ln.mean, nd->a.ln.rstd, nd->in[0]->data,
                             nd->in[1]->data, nd->in[2]->data, nd->in[3]->data, nd->a.ln.N, nd->a.ln.C, EPS_NORM);
}

static void add_layernorm_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_a, acc_b;
    cd_mem da = grad_or_none(ctx, nd->in[0], &acc_a), db = grad_or_none(ctx, nd->in[1], &acc_b);
    cd_mem dw = needs(nd->in[2]) ? nd->in[2]->grad : cd_none(), dbias = needs(nd->in[3]) ? nd->in[3]->grad : cd_none();
    op_add_layernorm_backward(ctx->dev, da, db, dw, dbias, nd->out->grad, nd->a.ln.sum, nd->a.ln.mean, nd->a.ln.rstd,
                              nd->in[2]->data, nd->a.ln.N, nd->a.ln.C, acc_a, acc_b);
}

nn_tensor *nn_add_layernorm(nn_ctx *ctx, nn_tensor *a, nn_tensor *b, int w, int bias) {
    if (!same_shape(a, b)) bad_shape("nn_add_layernorm", a, "a", "but %s has shape %s", lbl(b, "b"), shp(b));
    nn_tensor *wt = nn_weight(ctx, w), *bt = nn_weight(ctx, bias);
    size_t C = wt->n, N = a->n / C;
    if (a->dims[a->ndim - 1] != C)
        bad_shape("nn_add_layernorm", a, "a", "but %s %s expects (*, %zu)", lbl(wt, "the weight"), shp(wt), C);
    nn_tensor *sum = like(ctx, a);   /* allocated first, as nn_add's output was */
    nn_node nd = {.what = "add_layernorm", .forward = add_layernorm_fw, .backward = add_layernorm_bw,
                  .out = like(ctx, a), .in = {a, b, wt, bt}, .a.ln = {N, C, cd_none(), cd_none(), sum->data}};
    nd.a.ln.mean = nn_new1(ctx, N)->data;
    nd.a.ln.rstd = nn_new1(ctx, N)->data;
    return run(ctx, &nd);
}

/* ---- permute, bmm, softmax ------------------------------------------------- */

static void permute_fw(nn_ctx *ctx, nn_node *nd) {
    op_permute(ctx->dev, nd->out->data, nd->in[0]->data, nd->a.permute.dims, nd->a.permute.perm, 0);
}

static void permute_bw(nn_ctx *ctx, nn_node *nd) {
    size_t out_dims[4];
    int inv[4];
    for (int a = 0; a < 4; a++) {
        out_dims[a] = nd->a.permute.dims[nd->a.permute.perm[a]];
        inv[nd->a.permute.perm[a]] = a;
    }
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_permute(ctx->dev, dx, nd->out->grad, out_dims, inv, acc);
}

/* x (d0, d1, d2, d3) (fewer dims: padded with 1s) -> (d[perm[0]], ..., d[perm[3]]) */
nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const int perm[4]) {
    nn_node nd = {.what = "permute", .forward = permute_fw, .backward = permute_bw, .in = {x}};
    size_t out[4];
    for (int a = 0; a < 4; a++) nd.a.permute.dims[a] = a < x->ndim ? x->dims[a] : 1;
    for (int a = 0; a < 4; a++) {
        nd.a.permute.perm[a] = perm[a];
        out[a] = nd.a.permute.dims[perm[a]];
    }
    nd.out = nn_new(ctx, 4, out);
    return run(ctx, &nd);
}

/* batched products, dense (nn_bmm) or over attention's heads in place
 * (nn_heads_*): op_bmm_strided_* with the node's layouts */
#define HEADS(nd) (nd)->a.heads.inner, (nd)->a.heads.outer, (nd)->a.heads.M, (nd)->a.heads.N, (nd)->a.heads.K, \
                  (nd)->a.heads.ta, (nd)->a.heads.tb, &(nd)->a.heads.la, &(nd)->a.heads.lb, &(nd)->a.heads.lc

static void heads_fw(nn_ctx *ctx, nn_node *nd) {
    op_bmm_strided_forward(ctx->dev, nd->out->data, nd->in[0]->data, nd->in[1]->data, HEADS(nd));
}

static void heads_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_a, acc_b;
    cd_mem dA = grad_or_none(ctx, nd->in[0], &acc_a);
    cd_mem dB = grad_or_none(ctx, nd->in[1], &acc_b);
    op_bmm_strided_backward(ctx->dev, dA, dB, nd->out->grad, nd->in[0]->data, nd->in[1]->data, HEADS(nd), acc_a,
                            acc_b);
}

/* A (..., M, K) or (..., K, M) if ta; B (..., K, N) or (..., N, K) if tb -> (..., M, N) */
nn_tensor *nn_bmm(nn_ctx *ctx, nn_tensor *A, nn_tensor *B, int ta, int tb) {
    int na = A->ndim;
    if (na < 2) bad_shape("nn_bmm", A, "A", "but must be (..., M, K)");
    size_t M = A->dims[na - 2 + !!ta], K = A->dims[na - 1 - !!ta];
    size_t N = B->ndim == na ? B->dims[na - 1 - !!tb] : 0;
    int ok = B->ndim == na && B->dims[na - 2 + !!tb] == K;
    for (int d = 0; ok && d < na - 2; d++) ok = A->dims[d] == B->dims[d];
    if (!ok) {
        char want[96] = "(";
        size_t k = 1;
        for (int d = 0; d < na - 2; d++) k += (size_t)snprintf(want + k, sizeof want - k, "%zu, ", A->dims[d]);
        snprintf(want + k, sizeof want - k, tb ? "*, %zu)" : "%zu, *)", K);
        bad_shape("nn_bmm", B, "B", "but %s has shape %s%s: B must be %s%s", lbl(A, "A"), shp(A),
                  ta ? " (transposed)" : "", want, tb ? " (transposed)" : "");
    }
    size_t dims[NN_MAX_DIMS];
    memcpy(dims, A->dims, sizeof dims);
    dims[na - 2] = M;
    dims[na - 1] = N;
    count_flops(ctx, 2.0 * (double)prod(A->dims, na - 2) * (double)M * (double)N * (double)K, A, B);
    nn_node nd = {.what = "bmm", .forward = heads_fw, .backward = heads_bw, .reads = 3, .out = nn_new(ctx, na, dims),
                  .in = {A, B},
                  .a.heads = {prod(A->dims, na - 2), 1, M, N, K, ta, tb, {ta ? M : K, M * K, 0},
                              {tb ? K : N, K * N, 0}, {N, M * N, 0}}};
    return run(ctx, &nd);
}

/* q (B, Lq, d) split into NH heads, and k (B, Lk, d): the queries and keys of attention */
static void need_heads(const char *op, const nn_tensor *q, const nn_tensor *k, size_t NH) {
    need_ndim(op, q, "q", 3, "(B, Lq, d)");
    size_t B = q->dims[0], d = q->dims[2];
    if (NH == 0 || d % NH) bad_shape(op, q, "q", "but its width is not a multiple of %zu heads", NH);
    if (k->ndim != 3 || k->dims[0] != B || k->dims[2] != d)
        bad_shape(op, k, "k", "but %s has shape %s: k must be (%zu, *, %zu)", lbl(q, "q"), shp(q), B, d);
}

nn_tensor *nn_heads_scores(nn_ctx *ctx, nn_tensor *q, nn_tensor *k, size_t NH) {
    need_heads("nn_heads_scores", q, k, NH);
    size_t B = q->dims[0], Lq = q->dims[1], d = q->dims[2], Lk = k->dims[1], hd = d / NH;
    count_flops(ctx, 2.0 * (double)(B * NH) * (double)Lq * (double)Lk * (double)hd, q, k);
    nn_node nd = {.what = "heads_scores", .forward = heads_fw, .backward = heads_bw, .reads = 3,
                  .out = nn_new(ctx, 4, (size_t[]){B, NH, Lq, Lk}), .in = {q, k},
                  .a.heads = {NH, B, Lq, Lk, hd, 0, 1, {d, hd, Lq * d}, {d, hd, Lk * d},
                              {Lk, Lq * Lk, NH * Lq * Lk}}};
    return run(ctx, &nd);
}

nn_tensor *nn_heads_mix(nn_ctx *ctx, nn_tensor *p, nn_tensor *v) {
    need_ndim("nn_heads_mix", p, "p", 4, "(B, NH, Lq, Lk)");
    size_t B = p->dims[0], NH = p->dims[1], Lq = p->dims[2], Lk = p->dims[3];
    if (v->ndim != 3 || v->dims[0] != B || v->dims[1] != Lk || v->dims[2] % NH)
        bad_shape("nn_heads_mix", v, "v", "but %s has shape %s: v must be (%zu, %zu, a multiple of %zu)",
                  lbl(p, "p"), shp(p), B, Lk, NH);
    size_t d = v->dims[2], hd = d / NH;
    count_flops(ctx, 2.0 * (double)(B * NH) * (double)Lq * (double)hd * (double)Lk, p, v);
    nn_node nd = {.what = "heads_mix", .forward = heads_fw, .backward = heads_bw, .reads = 3,
                  .out = nn_new(ctx, 3, (size_t[]){B, Lq, d}), .in = {p, v},
                  .a.heads = {NH, B, Lq, hd, Lk, 0, 0, {Lk, Lq * Lk, NH * Lq * Lk}, {d, hd, Lk * d},
                              {d, hd, Lq * d}}};
    return run(ctx, &nd);
}

#define SOFTMAX(nd) (nd)->a.softmax.B, (nd)->a.softmax.H, (nd)->a.softmax.Lq, (nd)->a.softmax.Lk, (nd)->a.softmax.scale

static void softmax_fw(nn_ctx *ctx, nn_node *nd) {
    op_softmax_forward(ctx->dev, nd->out->data, nd->in[0]->data, data_or_none(nd->in[1]), SOFTMAX(nd));
}

static void softmax_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_softmax_backward(ctx->dev, dx, nd->out->grad, nd->out->data, SOFTMAX(nd), acc);
}

/* x (B, H, Lq, Lk), mask (B, Lk) or NULL */
nn_tensor *nn_softmax(nn_ctx *ctx, nn_tensor *x, nn_tensor *mask, float scale) {
    need_ndim("nn_softmax", x, "x", 4, "(B, H, Lq, Lk)");
    size_t B = x->dims[0], Lk = x->dims[3];
    if (mask && mask->n != B * Lk)
        bad_shape("nn_softmax", mask, "mask", "but x has shape %s: the mask must be (%zu, %zu)", shp(x), B, Lk);
    if (mask && mask->requires_grad) bad_shape("nn_softmax", mask, "mask", "and needs a gradient, which it cannot get");
    nn_node nd = {.what = "softmax", .forward = softmax_fw, .backward = softmax_bw, .reads = NN_READS_OUT,
                  .out = like(ctx, x),
                  .in = {x, mask}, .a.softmax = {B, x->dims[1], x->dims[2], Lk, scale}};
    return run(ctx, &nd);
}

/* ---- fused attention ------------------------------------------------------ */

static void attention_fw(nn_ctx *ctx, nn_node *nd) {
    op_attention_forward(ctx->dev, nd->out->data, nd->a.attn.lse, nd->in[0]->data, nd->in[1]->data,
                         nd->in[2]->data, data_or_none(nd->in[3]), nd->a.attn.bias, &nd->a.attn.args);
}

static void attention_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_q, acc_k, acc_v;
    cd_mem dq = grad_or_none(ctx, nd->in[0], &acc_q), dk = grad_or_none(ctx, nd->in[1], &acc_k);
    cd_mem dv = grad_or_none(ctx, nd->in[2], &acc_v);
    op_attention_backward(ctx->dev, dq, dk, dv, nd->a.attn.delta, nd->out->grad, nd->out->data, nd->a.attn.lse,
                          nd->in[0]->data, nd->in[1]->data, nd->in[2]->data, data_or_none(nd->in[3]),
                          nd->a.attn.bias, &nd->a.attn.args, acc_q, acc_k, acc_v);
}

int nn_fused_attention(const nn_ctx *ctx, size_t hd) {
    return ctx->attention == NN_ATTENTION_FUSED && op_attention_fused_ok(hd);
}

nn_tensor *nn_attention(nn_ctx *ctx, nn_tensor *q, nn_tensor *k, nn_tensor *v, size_t NH, nn_tensor *mask,
                        nn_tensor *bias, float scale, float p) {
    need_heads("nn_attention", q, k, NH);
    size_t B = q->dims[0], Lq = q->dims[1], d = q->dims[2], Lk = k->dims[1], hd = d / NH;
    if (!op_attention_fused_ok(hd))
        bad_shape("nn_attention", q, "q", "but %zu heads of it are not 8, 16, 32 or 64 wide (use the separate ops)",
                  NH);
    if (v->ndim != 3 || v->dims[0] != B || v->dims[1] != Lk || v->dims[2] != d)
        bad_shape("nn_attention", v, "v", "but k has shape %s: v must be the same", shp(k));
    if (mask && (mask->n != B * Lk || mask->requires_grad))
        bad_shape("nn_attention", mask, "mask", "but must be (%zu, %zu) and without a gradient", B, Lk);
    if (bias && (bias->n != Lq * Lk || bias->requires_grad))
        bad_shape("nn_attention", bias, "bias", "but must be (%zu, %zu) and without a gradient", Lq, Lk);
    /* the useful arithmetic, as the separate ops count it (the backward's recomputed scores are not) */
    double f = 2.0 * (double)(B * NH) * (double)Lq * (double)Lk * (double)hd;
    count_flops(ctx, f, q, k);
    count_flops(ctx, f, needs(q) || needs(k) ? q : NULL, v);
    int drop = ctx->training && p > 0.0f;
    nn_node nd = {.what = "attention", .forward = attention_fw, .backward = attention_bw,
                  .reads = 0xfu | NN_READS_OUT, .out = nn_new(ctx, 3, (size_t[]){B, Lq, d}), .in = {q, k, v, mask},
                  .a.attn = {{B, NH, Lq, Lk, hd, scale, drop ? p : 0.0f, ctx->seed, drop ? dropout_stream(ctx) : 0},
                             bias ? bias->data : cd_none(), nn_new1(ctx, B * NH * Lq)->data, cd_none()}};
    if (ctx->record) nd.a.attn.delta = nn_new1(ctx, B * NH * Lq)->data;
    return run(ctx, &nd);
}

/* ---- learned position encoding ---------------------------------------------- */

/* pos (B, Hf*Wf, 2F): channels [0, F) = col_embed[j], [F, 2F) = row_embed[i]
 * (x first, as the official PositionEmbeddingLearned). Built from broadcasts
 * and one permute; backward reduces the same way into the two tables. */
static void learned_pos_fw(nn_ctx *ctx, nn_node *nd) {
    size_t B = nd->a.pos.B, Hf = nd->a.pos.Hf, Wf = nd->a.pos.Wf, F = nd->a.pos.F, S = Hf * Wf;
    cd_device *dev = ctx->dev;
    cd_mem halves = nn_new1(ctx, 2 * S * F)->data, sp = nn_new1(ctx, S * 2 * F)->data;
    op_broadcast(dev, halves, nd->in[1]->data, 1, Hf, Wf * F, 1.0f, 0);                 /* x: (Hf, Wf, F) */
    op_broadcast(dev, cd_at(halves, S * F), nd->in[0]->data, Hf, Wf, F, 1.0f, 0);       /* y: (Hf, Wf, F) */
    op_permute(dev, sp, halves, (size_t[]){2, S, F, 1}, (int[]){1, 0, 2, 3}, 0);       /* (S, 2, F) */
    op_broadcast(dev, nd->out->data, sp, 1, B, S * 2 * F, 1.0f, 0);
}

static void learned_pos_bw(nn_ctx *ctx, nn_node *nd) {
    size_t B = nd->a.pos.B, Hf = nd->a.pos.Hf, Wf = nd->a.pos.Wf, F = nd->a.pos.F, S = Hf * Wf;
    cd_device *dev = ctx->dev;
    cd_mem g1 = nn_new1(ctx, S * 2 * F)->data, g2 = nn_new1(ctx, 2 * S * F)->data;
    op_reduce_sum(dev, g1, nd->out->grad, 1, B, S * 2 * F, 1.0f, 0);             /* (S, 2, F) */
    op_permute(dev, g2, g1, (size_t[]){S, 2, F, 1}, (int[]){1, 0, 2, 3}, 0);       /* (2, S, F) */
    if (needs(nd->in[1]))   /* col: x-half (Hf, Wf, F) summed over i */
        op_reduce_sum(dev, nd->in[1]->grad, g2, 1, Hf, Wf * F, 1.0f, 1);
    if (needs(nd->in[0]))   /* row: y-half (Hf, Wf, F) summed over j */
        op_reduce_sum(dev, nd->in[0]->grad, cd_at(g2, S * F), Hf, Wf, F, 1.0f, 1);
}

/* row, col: tables (rows, F) -> (B, Hf*Wf, 2F) */
nn_tensor *nn_learned_pos(nn_ctx *ctx, int row, int col, size_t B, size_t Hf, size_t Wf, size_t F) {
    size_t rows = ctx->params->p[row].shape[0];
    if (Hf > rows || Wf > rows)
        cd_fatal("model.position_embedding = learned supports feature maps up to %zux%zu, got %zux%zu: "
                 "use sine or smaller images", rows, rows, Hf, Wf);
    nn_tensor *rt = param_rows(ctx, row, 0, Hf), *ct = param_rows(ctx, col, 0, Wf);
    if (rt->dims[1] != F) bad_shape("nn_learned_pos", rt, "the table", "but the encoding asks for %zu features", F);
    nn_node nd = {.what = "learned_pos", .forward = learned_pos_fw, .backward = learned_pos_bw,
                  .out = nn_new(ctx, 3, (size_t[]){B, Hf * Wf, 2 * F}), .in = {rt, ct}, .a.pos = {B, Hf, Wf, F}};
    return run(ctx, &nd);
}
