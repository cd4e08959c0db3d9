/* The step context: activation arenas, tensors, and the tape. */
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
}

void nn_ctx_free(nn_ctx *ctx) {
    arena_free(ctx->dev, &ctx->act);
    arena_free(ctx->dev, &ctx->grads);
    for (int i = 0; i < ctx->n_tblocks; i++) free(ctx->tblocks[i]);
    free(ctx->tblocks);
    free(ctx->nodes);
    memset(ctx, 0, sizeof *ctx);
}

void nn_ctx_reset(nn_ctx *ctx) {
    arena_reset(&ctx->act);
    arena_reset(&ctx->grads);
    ctx->n_tensors = 0;
    ctx->n_nodes = 0;
    ctx->dropout_site = 0;
    ctx->dry_act = ctx->dry_grad = 0;
}

size_t nn_ctx_bytes(const nn_ctx *ctx) { return arena_bytes(&ctx->act) + arena_bytes(&ctx->grads); }

static nn_tensor *new_tensor(nn_ctx *ctx) {
    int b = ctx->n_tensors / TBLOCK, i = ctx->n_tensors % TBLOCK;
    if (b == ctx->n_tblocks) {
        ctx->tblocks = cd_xrealloc(ctx->tblocks, (ctx->n_tblocks + 1) * sizeof *ctx->tblocks);
        ctx->tblocks[ctx->n_tblocks++] = cd_xmalloc(TBLOCK * sizeof(nn_tensor));
    }
    ctx->n_tensors++;
    nn_tensor *t = &ctx->tblocks[b][i];
    memset(t, 0, sizeof *t);
    t->param = -1;
    return t;
}

nn_tensor *nn_new(nn_ctx *ctx, size_t n) {
    nn_tensor *t = new_tensor(ctx);
    if (ctx->dry) {
        ctx->dry_act += (n + 31) & ~(size_t)31;
        t->n = n;
        return t;
    }
    t->data = arena_alloc(ctx->dev, &ctx->act, n, "activations");
    t->n = n;
    return t;
}

nn_tensor *nn_input(nn_ctx *ctx, const float *host, size_t n) {
    nn_tensor *t = nn_new(ctx, n);
    if (!ctx->dry) cd_write(ctx->dev, t->data, host, n);
    return t;
}

nn_tensor *nn_weight(nn_ctx *ctx, int i) {
    nn_params *ps = ctx->params;
    nn_tensor *t = new_tensor(ctx);
    const nn_param *p = &ps->p[i];
    t->data = cd_at(ps->data, p->off);
    t->n = p->n;
    t->param = i;
    t->requires_grad = p->trainable && ctx->record;
    if (p->trainable) t->grad = cd_at(ps->grad, p->off);
    return t;
}

cd_mem nn_grad(nn_ctx *ctx, nn_tensor *t, int *acc) {
    if (t->param >= 0) { *acc = 1; return t->grad; }
    if (!t->grad.mem) t->grad = arena_alloc(ctx->dev, &ctx->grads, t->n, "activation gradients");
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
    nn_tensor *tmp = nn_input(ctx, host, t->n);
    op_axpby(ctx->dev, g, 1.0f, tmp->data, 1.0f, t->n);
}

void nn_backward(nn_ctx *ctx) {
    for (int i = ctx->n_nodes - 1; i >= 0; i--) {
        nn_node *nd = &ctx->nodes[i];
        if (nd->out->param < 0 && !nd->out->grad_state) continue;   /* nothing flowed here */
        nd->backward(ctx, nd);
    }
}

void nn_zero_grads(nn_ctx *ctx) {
    if (ctx->params->n_trainable) cd_fill(ctx->dev, ctx->params->grad, 0.0f, ctx->params->n_trainable);
}
