/* Differentiable ops: each runs an op's forward and records a node whose
 * backward calls the op's backward (src/ops/). */
#include <string.h>

#include "cldetr/nn.h"

#define EPS_NORM 1e-5f           /* LayerNorm and BatchNorm eps, PyTorch's default */
#define BN_MOMENTUM 0.1f

/* Append a node if recording and any input needs a gradient; sets
 * out->requires_grad. Returns the node to fill in, or NULL. */
static nn_node *record(nn_ctx *ctx, nn_backward_fn fn, const char *what, nn_tensor *out,
                       nn_tensor *a, nn_tensor *b, nn_tensor *c) {
    nn_tensor *ins[3] = {a, b, c};
    int rg = 0;
    for (int i = 0; i < 3; i++) if (ins[i] && ins[i]->requires_grad) rg = 1;
    out->requires_grad = rg && ctx->record;
    if (!out->requires_grad) return NULL;
    if (ctx->dry) {           /* count the gradients backward would allocate */
        for (int i = 0; i < 3; i++)
            if (ins[i] && ins[i]->requires_grad && ins[i]->param < 0 && !ins[i]->grad_state) {
                ins[i]->grad_state = 1;
                ctx->dry_grad += (ins[i]->n + 31) & ~(size_t)31;
            }
        return NULL;
    }
    if (ctx->n_nodes == ctx->cap_nodes) {
        ctx->cap_nodes = ctx->cap_nodes ? 2 * ctx->cap_nodes : 1024;
        ctx->nodes = cd_xrealloc(ctx->nodes, ctx->cap_nodes * sizeof *ctx->nodes);
    }
    nn_node *nd = &ctx->nodes[ctx->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->backward = fn;
    nd->what = what;
    nd->out = out;
    for (int i = 0; i < 3; i++) nd->in[i] = ins[i];
    return nd;
}

static int needs(const nn_tensor *t) { return t && t->requires_grad; }

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

/* Parameter view with an offset (rows of a packed matrix). */
static nn_tensor *param_slice(nn_ctx *ctx, int i, size_t off, size_t n) {
    nn_tensor *t = nn_weight(ctx, i);
    t->data = cd_at(t->data, off);
    if (t->grad.mem) t->grad = cd_at(t->grad, off);
    t->n = n;
    return t;
}

/* ---- add, relu, sigmoid, dropout ----------------------------------------- */

static void add_bw(nn_ctx *ctx, nn_node *nd) {
    for (int i = 0; i < 2; i++) {
        if (!needs(nd->in[i])) continue;
        int acc;
        cd_mem g = nn_grad(ctx, nd->in[i], &acc);
        op_scale(ctx->dev, g, nd->out->grad, 1.0f, nd->out->n, acc);
    }
}

nn_tensor *nn_add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b) {
    if (a->n != b->n) cd_fatal("nn_add: sizes differ (%zu vs %zu)", a->n, b->n);
    nn_tensor *out = nn_new(ctx, a->n);
    if (!ctx->dry) op_add(ctx->dev, out->data, a->data, b->data, a->n);
    record(ctx, add_bw, "add", out, a, b, NULL);
    return out;
}

static void relu_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem g = nn_grad(ctx, nd->in[0], &acc);
    op_relu_backward(ctx->dev, g, nd->out->grad, nd->out->data, nd->out->n, acc);
}

nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x) {
    nn_tensor *out = nn_new(ctx, x->n);
    if (!ctx->dry) op_relu_forward(ctx->dev, out->data, x->data, x->n);
    record(ctx, relu_bw, "relu", out, x, NULL, NULL);
    return out;
}

static void sigmoid_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem g = nn_grad(ctx, nd->in[0], &acc);
    op_sigmoid_backward(ctx->dev, g, nd->out->grad, nd->out->data, nd->out->n, acc);
}

nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x) {
    nn_tensor *out = nn_new(ctx, x->n);
    if (!ctx->dry) op_sigmoid_forward(ctx->dev, out->data, x->data, x->n);
    record(ctx, sigmoid_bw, "sigmoid", out, x, NULL, NULL);
    return out;
}

static void dropout_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem g = nn_grad(ctx, nd->in[0], &acc);
    op_dropout_backward(ctx->dev, g, nd->out->grad, nd->out->n, nd->f[0], nd->u[0], nd->u[1], acc);
}

nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p) {
    if (!ctx->training || p <= 0.0f) return x;
    uint64_t stream = (ctx->step << 20) ^ (uint64_t)ctx->dropout_site++;
    nn_tensor *out = nn_new(ctx, x->n);
    if (!ctx->dry) op_dropout_forward(ctx->dev, out->data, x->data, x->n, p, ctx->seed, stream);
    nn_node *nd = record(ctx, dropout_bw, "dropout", out, x, NULL, NULL);
    if (nd) { nd->f[0] = p; nd->u[0] = ctx->seed; nd->u[1] = stream; }
    return out;
}

/* ---- broadcast add over channels ---------------------------------------- */

static void add_channels_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem db = needs(nd->in[1]) ? grad_for_add(ctx, nd->in[1]) : cd_none();
    op_add_channels_backward(ctx->dev, dx, db, nd->out->grad, nd->s[0], nd->s[1], nd->s[2], acc);
}

nn_tensor *nn_add_channels(nn_ctx *ctx, nn_tensor *x, nn_tensor *bias, size_t B, size_t C, size_t HW) {
    nn_tensor *out = nn_new(ctx, B * C * HW);
    if (!ctx->dry) op_add_channels_forward(ctx->dev, out->data, x->data, bias->data, B, C, HW);
    nn_node *nd = record(ctx, add_channels_bw, "add_channels", out, x, bias, NULL);
    if (nd) { nd->s[0] = B; nd->s[1] = C; nd->s[2] = HW; }
    return out;
}

/* ---- linear, conv ---------------------------------------------------------- */

static void linear_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem dw = needs(nd->in[1]) ? nd->in[1]->grad : cd_none();
    cd_mem db = needs(nd->in[2]) ? nd->in[2]->grad : cd_none();
    op_linear_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->in[1]->data,
                       nd->s[0], nd->s[1], nd->s[2], acc);
}

nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, int w, size_t w_row0, int b, size_t N, size_t IN, size_t OUT) {
    nn_tensor *wt = param_slice(ctx, w, w_row0 * IN, OUT * IN);
    nn_tensor *bt = b >= 0 ? param_slice(ctx, b, w_row0, OUT) : NULL;
    nn_tensor *out = nn_new(ctx, N * OUT);
    if (!ctx->dry) op_linear_forward(ctx->dev, out->data, x->data, wt->data, bt ? bt->data : cd_none(), N, IN, OUT);
    nn_node *nd = record(ctx, linear_bw, "linear", out, x, wt, bt);
    if (nd) { nd->s[0] = N; nd->s[1] = IN; nd->s[2] = OUT; }
    return out;
}

static void conv_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem dw = needs(nd->in[1]) ? nd->in[1]->grad : cd_none();
    cd_mem db = needs(nd->in[2]) ? nd->in[2]->grad : cd_none();
    op_conv2d_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->in[1]->data, &nd->conv, acc);
}

nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, int w, int b, const conv_shape *s) {
    nn_tensor *wt = nn_weight(ctx, w);
    nn_tensor *bt = b >= 0 ? nn_weight(ctx, b) : NULL;
    nn_tensor *out = nn_new(ctx, s->B * s->K * conv_out_h(s) * conv_out_w(s));
    if (!ctx->dry) op_conv2d_forward(ctx->dev, out->data, x->data, wt->data, bt ? bt->data : cd_none(), s);
    nn_node *nd = record(ctx, conv_bw, "conv2d", out, x, wt, bt);
    if (nd) nd->conv = *s;
    return out;
}

/* ---- batch norm ------------------------------------------------------------ */

static void bn_frozen_bw(nn_ctx *ctx, nn_node *nd) {
    if (!needs(nd->in[0])) return;
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_batchnorm_frozen_backward(ctx->dev, dx, nd->out->grad, nd->saved[0], nd->saved[1],
                                 nd->s[0], nd->s[1], nd->s[2], EPS_NORM, acc);
}

static void bn_train_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem dw = needs(nd->in[1]) ? nd->in[1]->grad : cd_none();
    cd_mem db = needs(nd->in[2]) ? nd->in[2]->grad : cd_none();
    op_batchnorm_train_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->saved[0],
                                nd->saved[1], nd->in[1]->data, nd->s[0], nd->s[1], nd->s[2], acc);
}

nn_tensor *nn_batchnorm(nn_ctx *ctx, nn_tensor *x, int w, int b, int mean, int var, int trainable,
                        size_t B, size_t C, size_t HW) {
    nn_tensor *wt = nn_weight(ctx, w), *bt = nn_weight(ctx, b);
    nn_tensor *mt = nn_weight(ctx, mean), *vt = nn_weight(ctx, var);
    nn_tensor *out = nn_new(ctx, B * C * HW);
    if (trainable && ctx->training) {
        cd_mem save_mean = nn_new(ctx, C)->data, save_rstd = nn_new(ctx, C)->data;
        if (!ctx->dry) op_batchnorm_train_forward(ctx->dev, out->data, save_mean, save_rstd, mt->data, vt->data, x->data,
                                   wt->data, bt->data, B, C, HW, EPS_NORM, BN_MOMENTUM);
        nn_node *nd = record(ctx, bn_train_bw, "batchnorm", out, x, wt, bt);
        if (nd) { nd->saved[0] = save_mean; nd->saved[1] = save_rstd; nd->s[0] = B; nd->s[1] = C; nd->s[2] = HW; }
        return out;
    }
    if (!ctx->dry) op_batchnorm_frozen_forward(ctx->dev, out->data, x->data, wt->data, bt->data, mt->data, vt->data,
                                B, C, HW, EPS_NORM);
    if (trainable && ctx->record && (needs(wt) || needs(bt)))
        cd_fatal("backward through a trainable batch norm in eval mode is not supported: "
                 "run the step in training mode or freeze the backbone's batch norms");
    nn_node *nd = record(ctx, bn_frozen_bw, "batchnorm_frozen", out, x, NULL, NULL);
    if (nd) { nd->saved[0] = wt->data; nd->saved[1] = vt->data; nd->s[0] = B; nd->s[1] = C; nd->s[2] = HW; }
    return out;
}

/* ---- max pool -------------------------------------------------------------- */

static void maxpool_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_maxpool_backward(ctx->dev, dx, nd->out->grad, nd->saved[0], nd->s[0], nd->s[1], nd->s[2], nd->s[3],
                        nd->s[4], nd->s[5], nd->s[6], acc);
}

nn_tensor *nn_maxpool(nn_ctx *ctx, nn_tensor *x, size_t B, size_t C, size_t H, size_t W,
                      size_t k, size_t s, size_t p) {
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p);
    nn_tensor *out = nn_new(ctx, B * C * Ho * Wo);
    cd_mem argmax = nn_new(ctx, B * C * Ho * Wo)->data;
    if (!ctx->dry) op_maxpool_forward(ctx->dev, out->data, argmax, x->data, B, C, H, W, k, s, p);
    nn_node *nd = record(ctx, maxpool_bw, "maxpool", out, x, NULL, NULL);
    if (nd) {
        nd->saved[0] = argmax;
        size_t v[7] = {B, C, H, W, k, s, p};
        memcpy(nd->s, v, sizeof v);
    }
    return out;
}

/* ---- layer norm ------------------------------------------------------------ */

static void layernorm_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = grad_or_none(ctx, nd->in[0], &acc);
    cd_mem dw = needs(nd->in[1]) ? nd->in[1]->grad : cd_none();
    cd_mem db = needs(nd->in[2]) ? nd->in[2]->grad : cd_none();
    op_layernorm_backward(ctx->dev, dx, dw, db, nd->out->grad, nd->in[0]->data, nd->saved[0], nd->saved[1],
                          nd->in[1]->data, nd->s[0], nd->s[1], acc);
}

nn_tensor *nn_layernorm(nn_ctx *ctx, nn_tensor *x, int w, int b, size_t N, size_t C) {
    nn_tensor *wt = nn_weight(ctx, w), *bt = nn_weight(ctx, b);
    nn_tensor *out = nn_new(ctx, N * C);
    cd_mem mean = nn_new(ctx, N)->data, rstd = nn_new(ctx, N)->data;
    if (!ctx->dry) op_layernorm_forward(ctx->dev, out->data, mean, rstd, x->data, wt->data, bt->data, N, C, EPS_NORM);
    nn_node *nd = record(ctx, layernorm_bw, "layernorm", out, x, wt, bt);
    if (nd) { nd->saved[0] = mean; nd->saved[1] = rstd; nd->s[0] = N; nd->s[1] = C; }
    return out;
}

/* ---- permute, bmm, softmax ------------------------------------------------- */

static void permute_bw(nn_ctx *ctx, nn_node *nd) {
    size_t out_dims[4];
    int perm[4], inv[4];
    for (int a = 0; a < 4; a++) perm[a] = (int)nd->s[4 + a];
    for (int a = 0; a < 4; a++) { out_dims[a] = nd->s[perm[a]]; inv[perm[a]] = a; }
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_permute(ctx->dev, dx, nd->out->grad, out_dims, inv, acc);
}

nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const size_t dims[4], const int perm[4]) {
    nn_tensor *out = nn_new(ctx, x->n);
    if (!ctx->dry) op_permute(ctx->dev, out->data, x->data, dims, perm, 0);
    nn_node *nd = record(ctx, permute_bw, "permute", out, x, NULL, NULL);
    if (nd) for (int a = 0; a < 4; a++) { nd->s[a] = dims[a]; nd->s[4 + a] = (size_t)perm[a]; }
    return out;
}

static void bmm_bw(nn_ctx *ctx, nn_node *nd) {
    int acc_a, acc_b;
    cd_mem dA = grad_or_none(ctx, nd->in[0], &acc_a);
    cd_mem dB = grad_or_none(ctx, nd->in[1], &acc_b);
    op_bmm_backward(ctx->dev, dA, dB, nd->out->grad, nd->in[0]->data, nd->in[1]->data,
                    nd->s[0], nd->s[1], nd->s[2], nd->s[3], (int)nd->s[4], (int)nd->s[5], acc_a, acc_b);
}

nn_tensor *nn_bmm(nn_ctx *ctx, nn_tensor *A, nn_tensor *B, size_t batch, size_t M, size_t N, size_t K,
                  int ta, int tb) {
    nn_tensor *out = nn_new(ctx, batch * M * N);
    if (!ctx->dry) op_bmm_forward(ctx->dev, out->data, A->data, B->data, batch, M, N, K, ta, tb);
    nn_node *nd = record(ctx, bmm_bw, "bmm", out, A, B, NULL);
    if (nd) { size_t v[6] = {batch, M, N, K, (size_t)ta, (size_t)tb}; memcpy(nd->s, v, sizeof v); }
    return out;
}

static void softmax_bw(nn_ctx *ctx, nn_node *nd) {
    int acc;
    cd_mem dx = nn_grad(ctx, nd->in[0], &acc);
    op_softmax_backward(ctx->dev, dx, nd->out->grad, nd->out->data, nd->s[0], nd->s[1], nd->s[2], nd->s[3],
                        nd->f[0], acc);
}

nn_tensor *nn_softmax(nn_ctx *ctx, nn_tensor *x, nn_tensor *mask, size_t B, size_t H, size_t Lq,
                      size_t Lk, float scale) {
    nn_tensor *out = nn_new(ctx, B * H * Lq * Lk);
    if (!ctx->dry) op_softmax_forward(ctx->dev, out->data, x->data, mask ? mask->data : cd_none(), B, H, Lq, Lk, scale);
    nn_node *nd = record(ctx, softmax_bw, "softmax", out, x, NULL, NULL);
    if (nd) { nd->s[0] = B; nd->s[1] = H; nd->s[2] = Lq; nd->s[3] = Lk; nd->f[0] = scale; }
    return out;
}

/* ---- learned position encoding ---------------------------------------------- */

/* pos (B, Hf*Wf, 2F): channels [0, F) = col_embed[j], [F, 2F) = row_embed[i]
 * (x first, as the official PositionEmbeddingLearned). Built from broadcasts
 * and one permute; backward reduces the same way into the two tables. */
static void learned_pos_bw(nn_ctx *ctx, nn_node *nd) {
    size_t B = nd->s[0], Hf = nd->s[1], Wf = nd->s[2], F = nd->s[3], S = Hf * Wf;
    cd_device *dev = ctx->dev;
    cd_mem g1 = nn_new(ctx, S * 2 * F)->data, g2 = nn_new(ctx, 2 * S * F)->data;
    op_reduce_sum(dev, g1, nd->out->grad, 1, B, S * 2 * F, 1.0f, 0);             /* (S, 2, F) */
    op_permute(dev, g2, g1, (size_t[]){S, 2, F, 1}, (int[]){1, 0, 2, 3}, 0);       /* (2, S, F) */
    if (needs(nd->in[1]))   /* col: x-half (Hf, Wf, F) summed over i */
        op_reduce_sum(dev, nd->in[1]->grad, g2, 1, Hf, Wf * F, 1.0f, 1);
    if (needs(nd->in[0]))   /* row: y-half (Hf, Wf, F) summed over j */
        op_reduce_sum(dev, nd->in[0]->grad, cd_at(g2, S * F), Hf, Wf, F, 1.0f, 1);
}

nn_tensor *nn_learned_pos(nn_ctx *ctx, int row, int col, size_t B, size_t Hf, size_t Wf, size_t F) {
    size_t S = Hf * Wf, rows = ctx->params->p[row].shape[0];
    if (Hf > rows || Wf > rows)
        cd_fatal("model.position_embedding = learned supports feature maps up to %zux%zu, got %zux%zu: "
                 "use sine or smaller images", rows, rows, Hf, Wf);
    nn_tensor *rt = param_slice(ctx, row, 0, Hf * F), *ct = param_slice(ctx, col, 0, Wf * F);
    nn_tensor *out = nn_new(ctx, B * S * 2 * F);
    if (!ctx->dry) {
        cd_device *dev = ctx->dev;
        cd_mem halves = nn_new(ctx, 2 * S * F)->data, sp = nn_new(ctx, S * 2 * F)->data;
        op_broadcast(dev, halves, ct->data, 1, Hf, Wf * F, 1.0f, 0);                   /* x: (Hf, Wf, F) */
        op_broadcast(dev, cd_at(halves, S * F), rt->data, Hf, Wf, F, 1.0f, 0);          /* y: (Hf, Wf, F) */
        op_permute(dev, sp, halves, (size_t[]){2, S, F, 1}, (int[]){1, 0, 2, 3}, 0);   /* (S, 2, F) */
        op_broadcast(dev, out->data, sp, 1, B, S * 2 * F, 1.0f, 0);
    }
    nn_node *nd = record(ctx, learned_pos_bw, "learned_pos", out, rt, ct, NULL);
    if (nd) { nd->s[0] = B; nd->s[1] = Hf; nd->s[2] = Wf; nd->s[3] = F; }
    return out;
}
