/* The step context: activation arenas, tensors, and the tape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/nn.h"

#define TBLOCK 1024
#define ARENA_CHUNK (16u << 20)     /* floats: 64 MiB chunks, larger on demand */

/* ---- arena: chunks kept across steps, a bump pointer reset each step ----- */

static cd_mem arena_alloc(cd_device *dev, nn_arena *a, size_t n, const char *what) {
    n = (n + 31) & ~(size_t)31;      /* 128-byte alignment of every tensor */
    while (a->cur < a->n) {
        if (a->used + n <= a->cap[a->cur]) {
            cd_mem m = {a->chunks[a->cur], a->used};
            a->used += n;
            return m;
        }
        a->cur++;
        a->used = 0;
    }
    size_t cap = CD_MAX((size_t)ARENA_CHUNK, n);
    cap = CD_MIN(cap, CD_MAX(n, (size_t)(dev->info.max_alloc / sizeof(float))));
    cd_mem m = cd_alloc(dev, cap, what);
    a->chunks = cd_xrealloc(a->chunks, (a->n + 1) * sizeof *a->chunks);
    a->cap = cd_xrealloc(a->cap, (a->n + 1) * sizeof *a->cap);
    a->chunks[a->n] = m.mem;
    a->cap[a->n] = cap;
    a->cur = a->n++;
    a->used = n;
    return m;
}

static void arena_reset(nn_arena *a) { a->cur = 0; a->used = 0; }

static void arena_free(cd_device *dev, nn_arena *a) {
    for (int i = 0; i < a->n; i++) cd_free(dev, (cd_mem){a->chunks[i], 0});
    free(a->chunks);
    free(a->cap);
    memset(a, 0, sizeof *a);
}

static size_t arena_bytes(const nn_arena *a) {
    size_t s = 0;
    for (int i = 0; i < a->n; i++) s += a->cap[i] * sizeof(float);
    return s;
}

/* ---- context ------------------------------------------------------------- */

void nn_ctx_init(nn_ctx *ctx, cd_device *dev, nn_params *ps) {
    memset(ctx, 0, sizeof *ctx);
    ctx->dev = dev;
    ctx->params = ps;
    ctx->record = 1;
    static const char *const modes[] = {"fused", "separate"};
    int mode = cd_env_choice("CLDETR_ATTENTION", modes, 2, NULL);
    if (mode >= 0) ctx->attention = mode == 0 ? NN_ATTENTION_FUSED : NN_ATTENTION_SEPARATE;
}

void nn_ctx_free(nn_ctx *ctx) {
    arena_free(ctx->dev, &ctx->act);
    arena_free(ctx->dev, &ctx->grads);
    free(ctx->free_grads);
    for (int i = 0; i < ctx->n_tblocks; i++) free(ctx->tblocks[i]);
    free(ctx->tblocks);
    free(ctx->nodes);
    memset(ctx, 0, sizeof *ctx);
}

void nn_ctx_reset(nn_ctx *ctx) {
    arena_reset(&ctx->act);
    arena_reset(&ctx->grads);
    ctx->n_free = 0;
    ctx->n_tensors = 0;
    ctx->n_nodes = 0;
    ctx->dropout_site = 0;
    ctx->dry_act = ctx->dry_grad = 0;
    ctx->kept_cols = 0;
    ctx->flops_fw = ctx->flops_bw = 0;
}

size_t nn_ctx_bytes(const nn_ctx *ctx) { return arena_bytes(&ctx->act) + arena_bytes(&ctx->grads); }
size_t nn_ctx_grad_bytes(const nn_ctx *ctx) { return arena_bytes(&ctx->grads); }

static nn_tensor *new_tensor(nn_ctx *ctx, int ndim, const size_t *dims) {
    if (ndim < 1 || ndim > NN_MAX_DIMS) cd_fatal("a tensor has 1 to %d dims, not %d (a bug in cldetr)", NN_MAX_DIMS, ndim);
    int b = ctx->n_tensors / TBLOCK, i = ctx->n_tensors % TBLOCK;
    if (b == ctx->n_tblocks) {
        ctx->tblocks = cd_xrealloc(ctx->tblocks, (ctx->n_tblocks + 1) * sizeof *ctx->tblocks);
        ctx->tblocks[ctx->n_tblocks++] = cd_xmalloc(TBLOCK * sizeof(nn_tensor));
    }
    ctx->n_tensors++;
    nn_tensor *t = &ctx->tblocks[b][i];
    memset(t, 0, sizeof *t);
    t->param = -1;
    t->ndim = ndim;
    t->n = 1;
    for (int d = 0; d < ndim; d++) {
        t->dims[d] = dims[d];
        t->n *= dims[d];
    }
    return t;
}

static size_t padded(size_t n) { return (n + 31) & ~(size_t)31; }

nn_tensor *nn_new(nn_ctx *ctx, int ndim, const size_t *dims) {
    nn_tensor *t = new_tensor(ctx, ndim, dims);
    if (ctx->dry) ctx->dry_act += padded(t->n);
    else t->data = arena_alloc(ctx->dev, &ctx->act, t->n, "activations");
    return t;
}

nn_tensor *nn_alias(nn_ctx *ctx, nn_tensor *x) {
    nn_tensor *t = new_tensor(ctx, x->ndim, x->dims);
    t->data = x->data;    /* no new memory, in dry mode none counted */
    t->over = x;
    return t;
}

const char *nn_shape_str(const nn_tensor *t, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    for (int d = 0; d < t->ndim && k < size; d++)
        k += (size_t)snprintf(buf + k, size - k, "%s%zu", d ? ", " : "(", t->dims[d]);
    if (k < size) snprintf(buf + k, size - k, ")");
    return buf;
}

const char *nn_label(const nn_tensor *t, const char *role, char *buf, size_t size) {
    if (t->name) snprintf(buf, size, "%s %s", role, t->name);
    else snprintf(buf, size, "%s", role);
    return buf;
}

static void input_fw(nn_ctx *ctx, nn_node *nd) { cd_write(ctx->dev, nd->out->data, nd->a.input.host, nd->out->n); }

nn_tensor *nn_input(nn_ctx *ctx, const float *host, int ndim, const size_t *dims) {
    nn_node nd = {.what = "input", .forward = input_fw, .out = nn_new(ctx, ndim, dims), .a.input = {host}};
    nn_run(ctx, &nd);
    return nd.out;
}

static void fill_fw(nn_ctx *ctx, nn_node *nd) { cd_fill(ctx->dev, nd->out->data, nd->a.fill.value, nd->out->n); }

nn_tensor *nn_fill(nn_ctx *ctx, float value, int ndim, const size_t *dims) {
    nn_node nd = {.what = "fill", .forward = fill_fw, .out = nn_new(ctx, ndim, dims), .a.fill = {value}};
    nn_run(ctx, &nd);
    return nd.out;
}

nn_tensor *nn_weight(nn_ctx *ctx, int i) {
    nn_params *ps = ctx->params;
    const nn_param *p = &ps->p[i];
    nn_tensor *t = new_tensor(ctx, p->ndim, p->shape);
    t->data = cd_at(ps->data, p->off);
    t->name = p->name;
    t->param = i;
    t->requires_grad = p->trainable && ctx->record;
    if (p->trainable) t->grad = cd_at(ps->grad, p->off);
    return t;
}

nn_tensor *nn_weight_stack(nn_ctx *ctx, int i, int j) {
    nn_params *ps = ctx->params;
    const nn_param *a = &ps->p[i], *b = &ps->p[j];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1] || b->off != a->off + a->n ||
        a->trainable != b->trainable)
        cd_fatal("nn_weight_stack: %s and %s are not adjacent matrices of one width in the parameter buffer",
                 a->name, b->name);
    nn_tensor *t = nn_weight(ctx, i);
    t->dims[0] += b->shape[0];
    t->n += b->n;
    return t;
}

nn_tensor *nn_view(nn_ctx *ctx, nn_tensor *x, int ndim, const size_t *dims) {
    while (x->base) x = x->base;
    nn_tensor *t = new_tensor(ctx, ndim, dims);
    if (t->n != x->n) {
        char l[160], a[64], b[64];
        cd_fatal("nn_view: %s has shape %s (%zu elements), which cannot be viewed as %s", nn_label(x, "x", l, sizeof l),
                 nn_shape_str(x, a, sizeof a), x->n, nn_shape_str(t, b, sizeof b));
    }
    t->data = x->data;
    t->name = x->name;
    t->base = x;
    t->param = x->param;
    t->requires_grad = x->requires_grad;
    return t;
}

/* ---- activation gradients: reused once their tensor's backward has run ----
 * Only the op that made a tensor reads its gradient (every node's output is a
 * new tensor; views share their base's gradient), so once that op's backward
 * has run the gradient is dead: nn_backward returns its block here, and later
 * gradients take the smallest block that holds them (the rest of it goes back
 * to the list). The tape is the same every step, so the placement is too; a
 * step never takes more than the arena without reuse would. On DETR-R50 at
 * 800x800, batch 2, the gradients' arena went from 3.4 GiB to 320 MiB. */
static void grad_free_block(nn_ctx *ctx, cd_mem m, size_t n) {
    if (ctx->n_free == ctx->cap_free) {
        ctx->cap_free = ctx->cap_free ? 2 * ctx->cap_free : 256;
        ctx->free_grads = cd_xrealloc(ctx->free_grads, ctx->cap_free * sizeof *ctx->free_grads);
    }
    ctx->free_grads[ctx->n_free++] = (struct nn_block){m, n};
}

static cd_mem grad_alloc(nn_ctx *ctx, size_t n) {
    n = padded(n);
    int best = -1;
    for (int i = 0; i < ctx->n_free; i++)
        if (ctx->free_grads[i].n >= n && (best < 0 || ctx->free_grads[i].n < ctx->free_grads[best].n)) best = i;
    if (best < 0) {
        /* the arena's current chunk too short: its rest joins the free blocks */
        nn_arena *a = &ctx->grads;
        if (a->cur < a->n && a->used + n > a->cap[a->cur] && a->cap[a->cur] - a->used >= 32) {
            grad_free_block(ctx, (cd_mem){a->chunks[a->cur], a->used}, a->cap[a->cur] - a->used);
            a->used = a->cap[a->cur];
        }
        return arena_alloc(ctx->dev, a, n, "activation gradients");
    }
    struct nn_block *b = &ctx->free_grads[best];
    cd_mem m = b->m;
    if (b->n > n) {
        b->m = cd_at(b->m, n);
        b->n -= n;
    } else {
        *b = ctx->free_grads[--ctx->n_free];
    }
    return m;
}

static void grad_release(nn_ctx *ctx, nn_tensor *t) {
    if (t->param >= 0 || t->base || !t->grad.mem) return;
    grad_free_block(ctx, t->grad, padded(t->n));
    t->grad = cd_none();
}

cd_mem nn_grad(nn_ctx *ctx, nn_tensor *t, int *acc) {
    while (t->base) t = t->base;      /* a view's gradient is its base's */
    if (t->param >= 0) { *acc = 1; return t->grad; }
    if (!t->grad.mem) t->grad = grad_alloc(ctx, t->n);
    *acc = t->grad_state;
    t->grad_state = 1;
    return t->grad;
}

void nn_set_grad(nn_ctx *ctx, nn_tensor *t, const float *host) {
    int acc;
    cd_mem g = nn_grad(ctx, t, &acc);
    if (!acc) {
        cd_write(ctx->dev, g, host, t->n);
        return;
    }
    nn_tensor *tmp = nn_input(ctx, host, 1, &t->n);
    op_axpby(ctx->dev, g, 1.0f, tmp->data, 1.0f, t->n);
}

void nn_run(nn_ctx *ctx, nn_node *node) {
    for (int i = 0; i < NN_NODE_IN; i++) {   /* in-place guards (src/nn/layers.c, over) */
        nn_tensor *t = node->in[i];
        if (!t) continue;
        while (t->base) t = t->base;
        if (t->overwritten)
            cd_fatal("%s reads a tensor that an in-place op has overwritten (a bug in cldetr)", node->what);
        if (node->reads & (1u << i)) t->data_needed = 1;
    }
    if (node->reads & NN_READS_OUT) node->out->data_needed = 1;
    if (!ctx->dry) node->forward(ctx, node);
    if (node->out->over) node->out->over->overwritten = 1;   /* an in-place op's input is gone */
    int rg = 0;
    for (int i = 0; i < NN_NODE_IN; i++) rg |= node->in[i] && node->in[i]->requires_grad;
    node->out->requires_grad = rg && ctx->record;
    if (!node->out->requires_grad) return;
    if (ctx->dry) {           /* count the gradients backward would allocate; keep the node for nn_dry_grad_peak */
        for (int i = 0; i < NN_NODE_IN; i++) {
            nn_tensor *t = node->in[i];
            if (!t || !t->requires_grad) continue;
            while (t->base) t = t->base;
            if (t->param < 0 && !t->grad_state) {
                t->grad_state = 1;
                ctx->dry_grad += padded(t->n);
            }
        }
    }
    if (ctx->n_nodes == ctx->cap_nodes) {
        ctx->cap_nodes = ctx->cap_nodes ? 2 * ctx->cap_nodes : 1024;
        ctx->nodes = cd_xrealloc(ctx->nodes, ctx->cap_nodes * sizeof *ctx->nodes);
    }
    ctx->nodes[ctx->n_nodes++] = *node;
}

size_t nn_dry_grad_peak(nn_ctx *ctx) {
    /* nn_backward's order: a node's input gradients are taken at its backward
     * (the first time each is needed) and its output's is released after it;
     * an output no op reads is taken to have its gradient from the loss.
     * grad_state = 2 marks "taken" during the walk */
    size_t live = 0, peak = 0;
    for (int i = ctx->n_nodes - 1; i >= 0; i--) {
        nn_node *nd = &ctx->nodes[i];
        if (nd->out->grad_state == 0) {
            nd->out->grad_state = 2;
            live += padded(nd->out->n);
        }
        for (int k = 0; k < NN_NODE_IN; k++) {
            nn_tensor *t = nd->in[k];
            if (!t || !t->requires_grad) continue;
            while (t->base) t = t->base;
            if (t->param < 0 && t->grad_state != 2) {
                t->grad_state = 2;
                live += padded(t->n);
            }
        }
        peak = CD_MAX(peak, live);
        if (nd->out->grad_state == 2) {
            nd->out->grad_state = 1;
            live -= padded(nd->out->n);
        }
    }
    return peak;
}

void nn_backward(nn_ctx *ctx) {
    for (int i = ctx->n_nodes - 1; i >= 0; i--) {
        nn_node *nd = &ctx->nodes[i];
        if (nd->out->param < 0 && !nd->out->grad_state) continue;   /* nothing flowed here */
        nd->backward(ctx, nd);
        grad_release(ctx, nd->out);
    }
}

void nn_zero_grads(nn_ctx *ctx) {
    if (ctx->params->n_trainable) cd_fill(ctx->dev, ctx->params->grad, 0.0f, ctx->params->n_trainable);
}
