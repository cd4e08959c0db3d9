/* The tape's tensors and ops: every op gives its output a shape; a wrong input
 * shape is refused with a message naming the op, the tensors and their shapes
 * (run in a child process, which cd_fatal ends); the recorded nodes carry
 * their arguments by name; a view shares its base's gradient; dry mode counts
 * memory without launching anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cldetr/nn.h"
#include "../check.h"

/* A registry of small parameters for the ops to use. */
typedef struct {
    nn_params ps;
    int lin_w, lin_b, ln_w, ln_b, conv_w, bn[4];
} tiny;

static void tiny_make(tiny *t, cd_device *dev) {
    memset(t, 0, sizeof *t);
    nn_params *ps = &t->ps;
    t->lin_w = nn_param_add(ps, "lin.weight", NN_GROUP_REST, 1, 0, 2, 4, 3, 0, 0);
    t->lin_b = nn_param_add(ps, "lin.bias", NN_GROUP_REST, 1, 0, 1, 4, 0, 0, 0);
    t->ln_w = nn_param_add(ps, "ln.weight", NN_GROUP_REST, 1, 0, 1, 3, 0, 0, 0);
    t->ln_b = nn_param_add(ps, "ln.bias", NN_GROUP_REST, 1, 0, 1, 3, 0, 0, 0);
    t->conv_w = nn_param_add(ps, "conv.weight", NN_GROUP_BACKBONE, 1, 0, 4, 5, 2, 3, 3);
    const char *bn[4] = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"};
    for (int i = 0; i < 4; i++) t->bn[i] = nn_param_add(ps, bn[i], NN_GROUP_BACKBONE, i < 2, i >= 2, 1, 5, 0, 0, 0);
    nn_params_finalize(ps, dev);
    for (size_t k = 0; k < ps->total; k++) ps->host[k] = (float)(0.1 * (double)(k % 7) - 0.25);
    nn_params_upload(ps, dev);
}

static nn_tensor *zeros(nn_ctx *ctx, int ndim, const size_t *dims) { return nn_fill(ctx, 0.0f, ndim, dims); }
#define Z(ctx, ...) zeros(ctx, (int)(sizeof((size_t[]){__VA_ARGS__}) / sizeof(size_t)), (size_t[]){__VA_ARGS__})

/* ---- refusals: one child process each ----------------------------------------- */

typedef void (*bad_call)(nn_ctx *ctx, tiny *t);

static void bad_linear(nn_ctx *ctx, tiny *t) { nn_linear(ctx, Z(ctx, 2, 5), t->lin_w, t->lin_b); }
static void bad_linear_named(nn_ctx *ctx, tiny *t) { nn_linear(ctx, nn_name(Z(ctx, 800, 256), "memory"), t->lin_w, -1); }
static void bad_linear_rows(nn_ctx *ctx, tiny *t) { nn_linear_rows(ctx, Z(ctx, 6, 2), t->lin_w, t->lin_b, 2, 2); }
static void bad_add(nn_ctx *ctx, tiny *t) { (void)t; nn_add(ctx, Z(ctx, 2, 3), nn_name(Z(ctx, 3, 2), "pos")); }
static void bad_add_ndim(nn_ctx *ctx, tiny *t) { (void)t; nn_add(ctx, Z(ctx, 6), Z(ctx, 2, 3)); }
static void bad_layernorm(nn_ctx *ctx, tiny *t) { nn_layernorm(ctx, Z(ctx, 2, 4), t->ln_w, t->ln_b); }
static void bad_conv(nn_ctx *ctx, tiny *t) { nn_conv2d(ctx, Z(ctx, 1, 3, 8, 8), t->conv_w, -1, 1, 1, 1); }
static void bad_conv_ndim(nn_ctx *ctx, tiny *t) { nn_conv2d(ctx, Z(ctx, 2, 8, 8), t->conv_w, -1, 1, 1, 1); }
static void bad_bn(nn_ctx *ctx, tiny *t) { nn_batchnorm(ctx, Z(ctx, 2, 4, 3, 3), t->bn[0], t->bn[1], t->bn[2], t->bn[3], 0); }
static void bad_pool(nn_ctx *ctx, tiny *t) { (void)t; nn_maxpool(ctx, Z(ctx, 2, 8, 8), 3, 2, 1); }
static void bad_bmm(nn_ctx *ctx, tiny *t) { (void)t; nn_bmm(ctx, Z(ctx, 2, 4, 3), Z(ctx, 2, 5, 6), 0, 0); }
static void bad_bmm_batch(nn_ctx *ctx, tiny *t) { (void)t; nn_bmm(ctx, Z(ctx, 2, 4, 3), Z(ctx, 3, 6, 3), 0, 1); }
static void bad_softmax(nn_ctx *ctx, tiny *t) { (void)t; nn_softmax(ctx, Z(ctx, 1, 2, 3, 4), nn_name(Z(ctx, 1, 3), "padding"), 1.0f); }
static void bad_heads_k(nn_ctx *ctx, tiny *t) { (void)t; nn_heads_scores(ctx, Z(ctx, 2, 5, 8), Z(ctx, 2, 7, 6), 2); }
static void bad_heads_nh(nn_ctx *ctx, tiny *t) { (void)t; nn_heads_scores(ctx, Z(ctx, 2, 5, 8), Z(ctx, 2, 7, 8), 3); }
static void bad_attention_k(nn_ctx *ctx, tiny *t) {
    (void)t;
    nn_attention(ctx, Z(ctx, 2, 5, 16), Z(ctx, 3, 7, 16), Z(ctx, 3, 7, 16), 2, NULL, NULL, 1.0f, 0.0f);
}
static void bad_attention_width(nn_ctx *ctx, tiny *t) {
    (void)t;
    nn_attention(ctx, Z(ctx, 2, 5, 24), Z(ctx, 2, 7, 24), Z(ctx, 2, 7, 24), 2, NULL, NULL, 1.0f, 0.0f);
}
static void bad_channels(nn_ctx *ctx, tiny *t) { (void)t; nn_add_channels(ctx, Z(ctx, 2, 3, 4), Z(ctx, 4)); }
static void bad_inplace_relu(nn_ctx *ctx, tiny *t) {
    (void)t;
    nn_add_inplace(ctx, nn_relu(ctx, Z(ctx, 2, 3)), Z(ctx, 2, 3));
}
static void bad_read_overwritten(nn_ctx *ctx, tiny *t) {
    (void)t;
    nn_tensor *a = Z(ctx, 2, 3);
    nn_relu_inplace(ctx, a);
    nn_sigmoid(ctx, a);
}
static void bad_inplace_twice(nn_ctx *ctx, tiny *t) {
    (void)t;
    nn_tensor *a = Z(ctx, 2, 3);
    nn_relu_inplace(ctx, a);
    nn_relu_inplace(ctx, a);
}
static void bad_view(nn_ctx *ctx, tiny *t) { (void)t; nn_view(ctx, nn_name(Z(ctx, 2, 3), "logits"), 2, (size_t[]){4, 2}); }

/* Run call in a child with a fresh device and context; returns its exit
 * status and its stderr in msg. */
static int run_child(bad_call call, char *msg, size_t cap) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        cd_device *dev = cd_open(NULL, 0);
        if (!dev) _exit(3);
        tiny t;
        tiny_make(&t, dev);
        nn_ctx ctx;
        nn_ctx_init(&ctx, dev, &t.ps);
        call(&ctx, &t);
        _exit(0);                                   /* not refused */
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd[0], msg + n, cap - 1 - n)) > 0) n += (size_t)r;
    msg[n] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* The call is refused (exit 1) with a message holding every part. */
static void refused(const char *what, bad_call call, const char *const *parts) {
    char msg[2048];
    int rc = run_child(call, msg, sizeof msg);
    int ok = rc == 1;
    for (int i = 0; parts[i]; i++)
        if (!strstr(msg, parts[i])) {
            t_diag("%s: the message lacks \"%s\"", what, parts[i]);
            ok = 0;
        }
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    t_ok(ok, "%s is refused (exit %d): %s", what, rc, msg);
}

static void refusals(void) {
    /* the call, and the parts its message must hold (a NULL after the last) */
    static const struct {
        const char *what;
        bad_call call;
        const char *const parts[3];
    } bad[] = {
        {"linear with x (2, 5) and w (4, 3)", bad_linear,
         {"nn_linear: x has shape (2, 5) but the weight lin.weight (4, 3) expects (*, 3)"}},
        {"linear with a named x", bad_linear_named,
         {"nn_linear: x memory has shape (800, 256) but the weight lin.weight (4, 3) expects (*, 3)"}},
        {"linear on rows of a packed weight", bad_linear_rows,
         {"nn_linear: x has shape (6, 2)", "lin.weight (2, 3) expects (*, 3)"}},
        {"add of (2, 3) and (3, 2)", bad_add, {"nn_add: a has shape (2, 3) but b pos has shape (3, 2)"}},
        {"add of (6) and (2, 3)", bad_add_ndim, {"nn_add: a has shape (6) but b has shape (2, 3)"}},
        {"layernorm over 4 with 3 weights", bad_layernorm,
         {"nn_layernorm: x has shape (2, 4) but the weight ln.weight (3) expects (*, 3)"}},
        {"conv2d with 3 input channels for a 2-channel weight", bad_conv,
         {"nn_conv2d: x has shape (1, 3, 8, 8) but the weight conv.weight (5, 2, 3, 3) expects (B, 2, H, W)"}},
        {"conv2d on a 3-d x", bad_conv_ndim, {"nn_conv2d: x has shape (2, 8, 8)", "(B, 2, H, W)"}},
        {"batchnorm of 4 channels with 5", bad_bn,
         {"nn_batchnorm: x has shape (2, 4, 3, 3) but the weight bn.weight (5) expects (B, 5, ...)"}},
        {"maxpool on a 3-d x", bad_pool, {"nn_maxpool: x has shape (2, 8, 8) but must be (B, C, H, W)"}},
        {"bmm with K 3 and 5", bad_bmm,
         {"nn_bmm: B has shape (2, 5, 6) but A has shape (2, 4, 3): B must be (2, 3, *)"}},
        {"bmm with batches 2 and 3", bad_bmm_batch,
         {"nn_bmm: B has shape (3, 6, 3) but A has shape (2, 4, 3): B must be (2, *, 3) (transposed)"}},
        {"softmax with a mask of the wrong length", bad_softmax,
         {"nn_softmax: mask padding has shape (1, 3) but x has shape (1, 2, 3, 4): the mask must be (1, 4)"}},
        {"attention scores with k of another width", bad_heads_k,
         {"nn_heads_scores: k has shape (2, 7, 6) but q has shape (2, 5, 8): k must be (2, *, 8)"}},
        {"attention scores over 3 heads of 8 columns", bad_heads_nh,
         {"nn_heads_scores: q has shape (2, 5, 8) but its width is not a multiple of 3 heads"}},
        {"fused attention with k of another batch", bad_attention_k,
         {"nn_attention: k has shape (3, 7, 16) but q has shape (2, 5, 16): k must be (2, *, 16)"}},
        {"fused attention with heads 12 wide", bad_attention_width,
         {"nn_attention: q has shape (2, 5, 24) but 2 heads of it are not 8, 16, 32 or 64 wide"}},
        {"an in-place add over a ReLU's output (its backward reads it)", bad_inplace_relu,
         {"nn_add_inplace: the backward of an op reads the input's data, which this op would overwrite"}},
        {"reading a tensor an in-place op overwrote", bad_read_overwritten,
         {"sigmoid reads a tensor that an in-place op has overwritten"}},
        {"a second in-place op over the same tensor", bad_inplace_twice,
         {"relu reads a tensor that an in-place op has overwritten"}},
        {"add_channels with a bias of x's last dim", bad_channels,
         {"nn_add_channels: x has shape (2, 3, 4) but bias has shape (4)"}},
        {"a view of another size", bad_view, {"nn_view: x logits has shape (2, 3)", "(4, 2)"}},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) refused(bad[i].what, bad[i].call, bad[i].parts);
}

/* ---- shapes, node arguments, views, dry mode ------------------------------------ */

static int dims_are(const nn_tensor *t, int ndim, size_t d0, size_t d1, size_t d2, size_t d3) {
    size_t want[4] = {d0, d1, d2, d3}, n = 1;
    if (t->ndim != ndim) return 0;
    for (int d = 0; d < ndim; d++) {
        if (t->dims[d] != want[d]) return 0;
        n *= want[d];
    }
    return t->n == n;
}

static void shapes(cd_device *dev, tiny *t, int dry) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &t->ps);
    ctx.dry = dry;
    const char *mode = dry ? "dry" : "real";
    nn_tensor *x = Z(&ctx, 2, 6, 3);
    nn_tensor *y = nn_linear(&ctx, x, t->lin_w, t->lin_b);
    t_ok(dims_are(y, 3, 2, 6, 4, 0) && y->requires_grad, "%s: linear (2, 6, 3) -> (2, 6, 4), needs a gradient", mode);
    /* dry mode records the tape too (nn_dry_grad_peak walks it), without running it */
    t_ok(ctx.n_nodes == 1 && ctx.nodes[0].a.linear.N == 12 && ctx.nodes[0].a.linear.IN == 3 &&
             ctx.nodes[0].a.linear.OUT == 4 && ctx.nodes[0].in[0] == x,
         "%s: the linear node holds N 12, IN 3, OUT 4 (%d nodes)", mode, ctx.n_nodes);
    nn_tensor *r = nn_linear_rows(&ctx, x, t->lin_w, t->lin_b, 1, 2);
    t_ok(dims_are(r, 3, 2, 6, 2, 0), "%s: linear on rows 1..2 -> (2, 6, 2)", mode);
    nn_tensor *c = nn_conv2d(&ctx, Z(&ctx, 1, 2, 8, 7), t->conv_w, -1, 2, 1, 1);
    t_ok(dims_are(c, 4, 1, 5, 4, 4), "%s: conv2d 3x3 stride 2 pad 1 (1, 2, 8, 7) -> (1, 5, 4, 4)", mode);
    nn_tensor *b = nn_batchnorm(&ctx, c, t->bn[0], t->bn[1], t->bn[2], t->bn[3], 0);
    t_ok(dims_are(b, 4, 1, 5, 4, 4), "%s: batchnorm keeps the shape", mode);
    nn_tensor *p = nn_maxpool(&ctx, b, 3, 2, 1);
    t_ok(dims_are(p, 4, 1, 5, 2, 2), "%s: maxpool 3/2/1 (1, 5, 4, 4) -> (1, 5, 2, 2)", mode);
    nn_tensor *pm = nn_permute(&ctx, p, (int[]){0, 2, 3, 1});
    t_ok(dims_are(pm, 4, 1, 2, 2, 5), "%s: permute (0, 2, 3, 1) -> (1, 2, 2, 5)", mode);
    nn_tensor *v = nn_view(&ctx, pm, 3, (size_t[]){1, 4, 5});
    t_ok(dims_are(v, 3, 1, 4, 5, 0) && v->data.mem == pm->data.mem && v->data.off == pm->data.off,
         "%s: a view (1, 4, 5) shares its base's data", mode);
    nn_tensor *s = nn_bmm(&ctx, v, v, 0, 1);
    nn_tensor *s2 = nn_bmm(&ctx, v, v, 1, 0);
    t_ok(dims_are(s, 3, 1, 4, 4, 0) && dims_are(s2, 3, 1, 5, 5, 0), "%s: bmm A B^T -> (1, 4, 4), A^T B -> (1, 5, 5)",
         mode);
    nn_tensor *sm = nn_softmax(&ctx, nn_view(&ctx, s, 4, (size_t[]){1, 1, 4, 4}), Z(&ctx, 1, 4), 0.5f);
    t_ok(dims_are(sm, 4, 1, 1, 4, 4), "%s: softmax keeps the shape", mode);
    nn_tensor *ln = nn_layernorm(&ctx, x, t->ln_w, t->ln_b);
    t_ok(dims_are(ln, 3, 2, 6, 3, 0), "%s: layernorm keeps the shape", mode);
    t_ok(dims_are(nn_add_channels(&ctx, c, nn_weight(&ctx, t->bn[0])), 4, 1, 5, 4, 4) &&
         dims_are(nn_add_channels(&ctx, Z(&ctx, 3, 2, 6, 3), x), 4, 3, 2, 6, 3),
         "%s: add_channels of (5) to (1, 5, 4, 4) and of (2, 6, 3) to (3, 2, 6, 3)", mode);
    t_ok(!dry || (!y->data.mem && !c->data.mem && ctx.act.n == 0),
         "%s: dry mode allocates no device memory", mode);
    nn_ctx_free(&ctx);
}

/* Dry mode counts what a real step allocates: activations as nn_new pads
 * them (to 32 floats), and the gradient of every activation an op with a
 * gradient reads. */
static void dry_counts(cd_device *dev, tiny *t) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &t->ps);
    ctx.dry = 1;
    nn_tensor *x = Z(&ctx, 2, 6, 3);                               /* 36 -> 64 */
    nn_tensor *y = nn_linear(&ctx, x, t->lin_w, t->lin_b);         /* 48 -> 64 */
    size_t act = ctx.dry_act, grad = ctx.dry_grad;
    nn_relu(&ctx, nn_relu(&ctx, y));                               /* 2 x 64; y's and the first relu's gradients */
    t_ok(act == 128 && grad == 0 && ctx.dry_act == 256 && ctx.dry_grad == 128,
         "dry: activations %zu then %zu floats (want 128, 256), gradients %zu then %zu (want 0, 128)", act,
         ctx.dry_act, grad, ctx.dry_grad);
    /* the backward holds two of the three 64-float gradients at once (the
     * loss's into the last relu, and each op's input's), as grad_reuse runs it */
    size_t peak = nn_dry_grad_peak(&ctx);
    t_ok(peak == 128, "dry: activation gradients alive at once in the backward %zu floats (want 128)", peak);
    nn_ctx_free(&ctx);
}

/* A view's gradient is its base's: relu over a (8) view of a linear's (2, 4)
 * output sends its gradient to the linear, whose bias gradient is checked. */
static void view_grad(cd_device *dev, tiny *t) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &t->ps);
    nn_zero_grads(&ctx);
    const float xin[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    float g[8], y[8], db[4], want[4] = {0};
    for (int k = 0; k < 8; k++) g[k] = (float)(k + 1);
    nn_tensor *x = nn_input(&ctx, xin, 2, (size_t[]){2, 3});
    nn_tensor *lin = nn_linear(&ctx, x, t->lin_w, t->lin_b);
    nn_tensor *v = nn_view(&ctx, lin, 1, (size_t[]){8});
    nn_tensor *r = nn_relu(&ctx, v);
    nn_set_grad(&ctx, r, g);
    nn_backward(&ctx);
    cd_read(dev, y, lin->data, 8);
    cd_read(dev, db, cd_at(t->ps.grad, t->ps.p[t->lin_b].off), 4);
    for (int k = 0; k < 8; k++) if (y[k] > 0) want[k % 4] += g[k];
    t_ok(lin->grad_state == 1 && !v->grad.mem, "the view's gradient went to its base");
    t_ok(!lin->grad.mem && !r->grad.mem, "activation gradients are released once their op's backward has run");
    t_close_f("bias gradient through the view", want, db, 4, 1e-6, 1e-6);
    nn_ctx_free(&ctx);
}

/* Gradient blocks are reused within a step: a chain of four ReLUs over a
 * linear's output needs two gradient blocks at a time (an op's output
 * gradient and its input's), not five, and the bias gradient is still right;
 * a second step takes the same blocks. */
static void grad_reuse(cd_device *dev, tiny *t) {
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &t->ps);
    const float xin[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    float g[8], y[8], db[4];
    for (int k = 0; k < 8; k++) g[k] = (float)(k + 1);
    size_t used[2];
    for (int step = 0; step < 2; step++) {
        nn_ctx_reset(&ctx);
        nn_zero_grads(&ctx);
        nn_tensor *x = nn_input(&ctx, xin, 2, (size_t[]){2, 3});
        nn_tensor *lin = nn_linear(&ctx, x, t->lin_w, t->lin_b), *r = lin;
        for (int k = 0; k < 4; k++) r = nn_relu(&ctx, r);
        nn_set_grad(&ctx, r, g);
        nn_backward(&ctx);
        cd_read(dev, y, lin->data, 8);
        used[step] = ctx.grads.used;
    }
    float want[4] = {0};
    for (int k = 0; k < 8; k++) if (y[k] > 0) want[k % 4] += g[k];
    cd_read(dev, db, cd_at(t->ps.grad, t->ps.p[t->lin_b].off), 4);
    t_ok(used[0] == 2 * 32 && used[1] == used[0],
         "five activation gradients of 8 floats in two 32-float blocks (used %zu, then %zu floats)", used[0], used[1]);
    t_close_f("bias gradient through four ReLUs with reused gradient blocks", want, db, 4, 1e-6, 1e-6);
    nn_ctx_free(&ctx);
}

/* The in-place ops as resnet.c chains them: a block's tail, conv -> frozen
 * batch norm -> add (a second conv) -> ReLU, and conv -> frozen batch norm ->
 * ReLU, run out of place and in place. In place each output is over its
 * chain's conv output, the dry count has five activations fewer, and the
 * outputs and the conv weight's gradient are bit-identical. */
static void inplace(cd_device *dev, tiny *t) {
    size_t nv = t->ps.p[t->bn[3]].n, voff = t->ps.p[t->bn[3]].off;
    float ones[5] = {1, 1, 1, 1, 1}, old_var[5];
    cd_read(dev, old_var, cd_at(t->ps.data, voff), nv);   /* a positive running variance */
    cd_write(dev, cd_at(t->ps.data, voff), ones, nv);
    float xin[2 * 8 * 7], g[5 * 4 * 4], out[2][2][5 * 4 * 4], dw[2][5 * 2 * 9];
    for (size_t k = 0; k < CD_ARRAY_LEN(xin); k++) xin[k] = (float)((k * 37) % 11) / 5.0f - 1.0f;
    for (size_t k = 0; k < CD_ARRAY_LEN(g); k++) g[k] = (float)((k * 13) % 7) - 3.0f;
    size_t dry_act[2];
    int aliased = 1;
    const int *bn = t->bn;
    for (int ip = 0; ip < 2; ip++) {
        for (int dry = 1; dry >= 0; dry--) {
            nn_ctx ctx;
            nn_ctx_init(&ctx, dev, &t->ps);
            ctx.dry = dry;
            nn_zero_grads(&ctx);
            nn_tensor *x = nn_input(&ctx, xin, 4, (size_t[]){1, 2, 8, 7});
            nn_tensor *c[3];
            for (int k = 0; k < 3; k++) c[k] = nn_conv2d(&ctx, x, t->conv_w, -1, 2, 1, 1);
            size_t before = ctx.dry_act;
            nn_tensor *b = ip ? nn_batchnorm_inplace(&ctx, c[0], bn[0], bn[1], bn[2], bn[3], 0)
                              : nn_batchnorm(&ctx, c[0], bn[0], bn[1], bn[2], bn[3], 0);
            nn_tensor *a = ip ? nn_add_inplace(&ctx, b, c[1]) : nn_add(&ctx, b, c[1]);
            nn_tensor *o = ip ? nn_relu_inplace(&ctx, a) : nn_relu(&ctx, a);
            nn_tensor *q = ip ? nn_batchnorm_inplace(&ctx, c[2], bn[0], bn[1], bn[2], bn[3], 0)
                              : nn_batchnorm(&ctx, c[2], bn[0], bn[1], bn[2], bn[3], 0);
            nn_tensor *r = ip ? nn_relu_inplace(&ctx, q) : nn_relu(&ctx, q);
            if (dry) {
                dry_act[ip] = ctx.dry_act - before;
            } else {
                nn_set_grad(&ctx, o, g);
                nn_set_grad(&ctx, r, g);
                nn_backward(&ctx);
                cd_read(dev, out[ip][0], o->data, o->n);
                cd_read(dev, out[ip][1], r->data, r->n);
                cd_read(dev, dw[ip], cd_at(t->ps.grad, t->ps.p[t->conv_w].off), CD_ARRAY_LEN(dw[ip]));
                nn_tensor *on0[] = {b, a, o}, *on2[] = {q, r};
                for (int k = 0; ip && k < 3; k++)
                    aliased &= on0[k]->data.mem == c[0]->data.mem && on0[k]->data.off == c[0]->data.off;
                for (int k = 0; ip && k < 2; k++)
                    aliased &= on2[k]->data.mem == c[2]->data.mem && on2[k]->data.off == c[2]->data.off;
            }
            nn_ctx_free(&ctx);
        }
    }
    cd_write(dev, cd_at(t->ps.data, voff), old_var, nv);
    t_ok(aliased, "in place: batch norm, add and ReLU write over their chain's conv output");
    t_ok(dry_act[0] == 5 * 96 && dry_act[1] == 0, "dry: the chains take %zu floats out of place, %zu in place "
         "(want 480, 0)", dry_act[0], dry_act[1]);
    t_ok(!memcmp(out[0], out[1], sizeof out[0]), "in place: the same outputs, bit for bit");
    t_ok(!memcmp(dw[0], dw[1], sizeof dw[0]), "in place: the same conv weight gradient, bit for bit");
    int nonzero = 0;
    for (size_t k = 0; k < CD_ARRAY_LEN(dw[0]); k++) nonzero |= dw[0][k] != 0.0f;
    t_ok(nonzero, "the conv weight gradient is not all zero (the check above can fail)");
}

int main(void) {
    refusals();                     /* before any OpenCL call in this process: fork and OpenCL do not mix */
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) {
        t_ok(0, "open a device: %s", cd_errbuf());
        return t_done();
    }
    tiny t;
    tiny_make(&t, dev);
    shapes(dev, &t, 0);
    shapes(dev, &t, 1);
    dry_counts(dev, &t);
    view_grad(dev, &t);
    grad_reuse(dev, &t);
    inplace(dev, &t);
    nn_params_free(&t.ps, dev);
    cd_close(dev);
    return t_done();
}
