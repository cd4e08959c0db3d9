/* DETR forward and backward against PyTorch (fixtures made by
 * tools/reference/make_model_fixtures.py with the official architecture in
 * float64 from float32-exact weights and inputs): every stage's output, every
 * decoder layer's logits and boxes, and the gradient of every trainable
 * parameter for L = sum(logits * w_logits) + sum(boxes * w_boxes).
 *
 * Tolerances (fp32 on the device vs the fp64 reference): activations within
 * 1e-4 * max(1, max|ref|) absolute + 1e-4 relative (the issue asks 1e-4
 * absolute; backbone features of a random ResNet reach ~10, hence the scale);
 * gradients within 1e-3 relative to the largest entry of their tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/detr.h"
#include "cldetr/safetensors.h"
#include "../check.h"

static st_file F;
static const char *meta(const char *k) { const char *v = st_meta(&F, k); return v ? v : ""; }
static int meta_i(const char *k) { return atoi(meta(k)); }

/* Read a whole reference tensor as float. */
static float *ref(const char *name, size_t *n) {
    const st_tensor *t = st_find(&F, name);
    if (!t) { t_ok(0, "fixture has %s", name); return NULL; }
    float *x = malloc(t->numel * sizeof *x);
    if (st_read_f32(&F, name, x, -1, NULL) < 0) { t_ok(0, "%s", cd_errbuf()); free(x); return NULL; }
    if (n) *n = t->numel;
    return x;
}

/* Compare device tensor (layout given by a permutation of a 3-D reference). */
static void compare(const char *what, const float *refv, const float *got, size_t n, double rel_tol) {
    double mx = 1;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(refv[i]));
    t_close_f(what, refv, got, n, rel_tol * mx, rel_tol);
}

/* (S, B, d) seq-first reference -> (B, S, d) */
static float *seq_to_batch(const float *x, size_t S, size_t B, size_t d) {
    float *y = malloc(S * B * d * sizeof *y);
    for (size_t s = 0; s < S; s++)
        for (size_t b = 0; b < B; b++) memcpy(y + (b * S + s) * d, x + (s * B + b) * d, d * sizeof *y);
    return y;
}

static float *read_dev(cd_device *dev, const nn_tensor *t) {
    float *x = malloc(t->n * sizeof *x);
    cd_read(dev, x, t->data, t->n);
    return x;
}

static void check_seq(cd_device *dev, const char *name, const nn_tensor *t, size_t S, size_t B, size_t d) {
    float *r = ref(name, NULL);
    if (!r) return;
    float *rb = seq_to_batch(r, S, B, d), *g = read_dev(dev, t);
    compare(name, rb, g, S * B * d, 1e-4);
    free(r); free(rb); free(g);
}

static void check_plain(cd_device *dev, const char *name, const nn_tensor *t) {
    size_t n;
    float *r = ref(name, &n);
    if (!r) return;
    float *g = read_dev(dev, t);
    if (n != t->n) t_ok(0, "%s: %zu elements, device has %zu", name, n, t->n);
    else compare(name, r, g, n, 1e-4);
    free(r); free(g);
}

/* attention: NN_ATTENTION_SEPARATE or _FUSED (every fixture's heads are 8 wide, which has a fused kernel) */
static void run_fixture(cd_device *dev, const char *file, int attention) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/%s", getenv("CLDETR_SOURCE_ROOT"), file);
    if (st_open(&F, path) < 0) { t_ok(0, "open %s: %s", path, cd_errbuf()); return; }
    t_diag("fixture %s (%s), attention %s", file, meta("config"),
           attention == NN_ATTENTION_FUSED ? "fused" : "separate ops");
    detr_opts o;
    detr_opts_default(&o);
    o.depth = atoi(meta("backbone") + 6);
    o.width = meta_i("base_width");
    o.dilation = meta_i("dilation");
    o.bn_trainable = !strcmp(meta("batchnorm"), "trainable");
    o.learned_pos = !strcmp(meta("position_embedding"), "learned");
    o.d = meta_i("hidden_dim");
    o.nheads = meta_i("nheads");
    o.enc_layers = meta_i("enc_layers");
    o.dec_layers = meta_i("dec_layers");
    o.dim_ff = meta_i("dim_feedforward");
    o.dropout = 0;
    o.pre_norm = meta_i("pre_norm");
    o.num_queries = meta_i("num_queries");
    o.num_classes = meta_i("num_classes");
    detr_model m;
    if (detr_build(&m, &o, dev, 1) < 0) { t_ok(0, "build: %s", cd_errbuf()); st_close(&F); return; }
    /* weights from the fixture, by official name */
    int loaded = 1;
    for (int i = 0; i < m.params.n; i++) {
        const nn_param *p = &m.params.p[i];
        int64_t shape[4];
        for (int d = 0; d < p->ndim; d++) shape[d] = (int64_t)p->shape[d];
        if (st_read_f32(&F, p->name, nn_param_host(&m.params, i), p->ndim, shape) < 0) {
            t_diag("%s", cd_errbuf());
            loaded = 0;
        }
    }
    t_ok(loaded, "every parameter of the C model is in the fixture with the same shape (%d tensors)", m.params.n);
    nn_params_upload(&m.params, dev);
    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    t_ok(all == (size_t)atol(meta("n_params")) && trainable == (size_t)atol(meta("n_trainable")),
         "parameter counts equal PyTorch's: %zu / %zu", all, trainable);

    const st_tensor *ti = st_find(&F, "input.images");
    size_t B = (size_t)ti->shape[0], H = (size_t)ti->shape[2], W = (size_t)ti->shape[3];
    float *images = ref("input.images", NULL), *mask = ref("input.mask", NULL);
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m.params);
    ctx.training = 1;
    ctx.attention = attention;
    nn_zero_grads(&ctx);
    detr_out out;
    detr_forward(&m, &ctx, images, mask, B, H, W, &out);
    int fused_nodes = 0;
    for (int i = 0; i < ctx.n_nodes; i++) fused_nodes += !strcmp(ctx.nodes[i].what, "attention");
    int want = attention == NN_ATTENTION_FUSED ? 2 * o.dec_layers + o.enc_layers : 0;
    t_ok(fused_nodes == want, "%d fused attention nodes on the tape (want %d)", fused_nodes, want);
    size_t S = out.S, Q = out.Q, K1 = out.K1, L = out.L, d = (size_t)o.d;

    check_plain(dev, "ref.backbone.layer4", out.features);
    check_plain(dev, "ref.mask_f", out.mask);
    {   /* pos: reference (B, d, Hf, Wf), device (B, S, d) */
        float *r = ref("ref.pos", NULL), *g = read_dev(dev, out.pos), *rt = malloc(B * S * d * sizeof *rt);
        for (size_t b = 0; b < B; b++)
            for (size_t c = 0; c < d; c++)
                for (size_t s = 0; s < S; s++) rt[(b * S + s) * d + c] = r[(b * d + c) * S + s];
        compare("ref.pos", rt, g, B * S * d, 1e-4);
        free(r); free(g); free(rt);
    }
    check_plain(dev, "ref.proj", out.proj);
    char name[192];
    for (size_t l = 0; l < (size_t)o.enc_layers; l++) {
        snprintf(name, sizeof name, "ref.enc.%zu", l);
        check_seq(dev, name, out.enc_out[l], S, B, d);
    }
    check_seq(dev, "ref.memory", out.memory, S, B, d);
    for (size_t l = 0; l < L; l++) {
        snprintf(name, sizeof name, "ref.dec.%zu", l);
        check_seq(dev, name, out.dec_out[l], Q, B, d);
        snprintf(name, sizeof name, "ref.dec_norm.%zu", l);
        check_seq(dev, name, out.hs[l], Q, B, d);
    }
    float *rl = ref("ref.logits", NULL), *rbx = ref("ref.boxes", NULL);
    float *wl = ref("ref.w_logits", NULL), *wb = ref("ref.w_boxes", NULL);
    for (size_t l = 0; l < L && rl && rbx; l++) {
        float *g = read_dev(dev, out.logits[l]);
        snprintf(name, sizeof name, "logits of decoder layer %zu", l);
        compare(name, rl + l * B * Q * K1, g, B * Q * K1, 1e-4);
        free(g);
        g = read_dev(dev, out.boxes[l]);
        snprintf(name, sizeof name, "boxes of decoder layer %zu", l);
        compare(name, rbx + l * B * Q * 4, g, B * Q * 4, 1e-4);
        free(g);
    }
    /* trainable BN: running statistics after the forward */
    if (o.bn_trainable) {
        int bad = 0, n = 0;
        for (int i = 0; i < m.params.n; i++) {
            const nn_param *p = &m.params.p[i];
            if (!strstr(p->name, "running_")) continue;
            char rn[160];
            snprintf(rn, sizeof rn, "ref.bn_after.%s", p->name);
            float *r = ref(rn, NULL), *g = malloc(p->n * sizeof *g);
            cd_read(dev, g, cd_at(m.params.data, p->off), p->n);
            for (size_t k = 0; r && k < p->n; k++) bad += !(fabs(r[k] - g[k]) <= 1e-4 * (1 + fabs(r[k])));
            n++;
            free(r); free(g);
        }
        t_ok(bad == 0, "BN running statistics after the forward match in %d tensors (%d mismatches)", n, bad);
    }
    /* backward of L = sum(logits * w_logits) + sum(boxes * w_boxes) */
    for (size_t l = 0; l < L && wl && wb; l++) {
        nn_set_grad(&ctx, out.logits[l], wl + l * B * Q * K1);
        nn_set_grad(&ctx, out.boxes[l], wb + l * B * Q * 4);
    }
    nn_backward(&ctx);
    float *grads = malloc(m.params.n_trainable * sizeof *grads);
    cd_read(dev, grads, m.params.grad, m.params.n_trainable);
    int n_checked = 0, n_bad = 0, n_missing = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < m.params.n; i++) {
        const nn_param *p = &m.params.p[i];
        if (!p->trainable) continue;
        snprintf(name, sizeof name, "grad.%s", p->name);
        const st_tensor *t = st_find(&F, name);
        if (!t) { if (n_missing++ < 5) t_diag("no reference gradient for %s", p->name); continue; }
        float *r = ref(name, NULL);
        double mx = 1e-12, err = 0;
        for (size_t k = 0; k < p->n; k++) mx = fmax(mx, fabs(r[k]));
        for (size_t k = 0; k < p->n; k++) err = fmax(err, fabs(r[k] - grads[p->off + k]) / mx);
        if (!(err <= 1e-3)) {
            n_bad++;
            if (n_bad <= 5) t_diag("%s: max error %.3g of its largest entry %.3g", p->name, err, mx);
        }
        if (err > worst || isnan(err)) { worst = err; worst_name = p->name; }
        n_checked++;
        free(r);
    }
    t_ok(n_missing == 0, "every trainable parameter has a reference gradient (%d missing)", n_missing);
    t_ok(n_bad == 0 && n_checked > 0, "gradients of %d parameters within 1e-3 of their largest entry "
         "(worst %.2e in %s)", n_checked, worst, worst_name);
    /* frozen parameters got no gradient slot at all */
    int frozen_has_grad = 0;
    for (int i = 0; i < m.params.n; i++) {
        snprintf(name, sizeof name, "grad.%s", m.params.p[i].name);
        if (!m.params.p[i].trainable && st_find(&F, name)) frozen_has_grad++;
    }
    t_ok(frozen_has_grad == 0, "frozen parameters (conv1, layer1) have no gradient, as in PyTorch");
    free(grads); free(images); free(mask); free(rl); free(rbx); free(wl); free(wb);
    nn_ctx_free(&ctx);
    detr_free(&m, dev);
    st_close(&F);
}

int main(int argc, char **argv) {
    cd_device *dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "open device");
    if (!dev) return t_done();
    static const char *fixtures[] = {"tiny_detr.safetensors", "tiny_detr_prenorm_bn.safetensors",
                                     "tiny_detr_r50_dc5.safetensors"};
    for (int attention = NN_ATTENTION_FUSED; attention <= NN_ATTENTION_SEPARATE; attention++) {
        if (argc > 1) for (int i = 1; i < argc; i++) run_fixture(dev, argv[i], attention);
        else for (size_t i = 0; i < CD_ARRAY_LEN(fixtures); i++) run_fixture(dev, fixtures[i], attention);
    }
    cd_close(dev);
    return t_done();
}
