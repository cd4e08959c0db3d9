/* The DETR model: parameters under the official names, the official
 * initialization, and the forward pass (transformer and heads here, the
 * backbone in resnet.c, the position encoding in position.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/detr.h"

int detr_declare_backbone(detr_model *m);
nn_tensor *detr_backbone_forward(detr_model *m, nn_ctx *ctx, nn_tensor *x, nn_tensor *stages[4]);

void detr_opts_default(detr_opts *o) {      /* DETR-R50 as the official main.py; everything else 0 */
    *o = (detr_opts){.depth = 50, .width = 64, .d = 256, .nheads = 8, .enc_layers = 6, .dec_layers = 6,
                     .dim_ff = 2048, .dropout = 0.1f, .num_queries = 100, .num_classes = 91};
}

/* ---- declaration ----------------------------------------------------------- */

static int add(nn_params *ps, const char *name, int ndim, size_t s0, size_t s1) {
    return nn_param_add(ps, name, NN_GROUP_REST, 1, 0, ndim, s0, s1, 0, 0);
}

static detr_mha declare_mha(nn_params *ps, const char *pfx, size_t d) {
    char n[128];
    detr_mha a;
    snprintf(n, sizeof n, "%s.in_proj_weight", pfx);  a.in_w = add(ps, n, 2, 3 * d, d);
    snprintf(n, sizeof n, "%s.in_proj_bias", pfx);    a.in_b = add(ps, n, 1, 3 * d, 0);
    snprintf(n, sizeof n, "%s.out_proj.weight", pfx); a.out_w = add(ps, n, 2, d, d);
    snprintf(n, sizeof n, "%s.out_proj.bias", pfx);   a.out_b = add(ps, n, 1, d, 0);
    return a;
}

static void declare_layer(nn_params *ps, detr_tlayer *t, const char *pfx, size_t d, size_t ff, int decoder) {
    char n[128], sub[128];
    snprintf(sub, sizeof sub, "%s.self_attn", pfx);
    t->self_attn = declare_mha(ps, sub, d);
    if (decoder) {
        snprintf(sub, sizeof sub, "%s.multihead_attn", pfx);
        t->cross_attn = declare_mha(ps, sub, d);
    }
    snprintf(n, sizeof n, "%s.linear1.weight", pfx); t->l1_w = add(ps, n, 2, ff, d);
    snprintf(n, sizeof n, "%s.linear1.bias", pfx);   t->l1_b = add(ps, n, 1, ff, 0);
    snprintf(n, sizeof n, "%s.linear2.weight", pfx); t->l2_w = add(ps, n, 2, d, ff);
    snprintf(n, sizeof n, "%s.linear2.bias", pfx);   t->l2_b = add(ps, n, 1, d, 0);
    for (int k = 0; k < (decoder ? 3 : 2); k++) {
        snprintf(n, sizeof n, "%s.norm%d.weight", pfx, k + 1); t->n_w[k] = add(ps, n, 1, d, 0);
        snprintf(n, sizeof n, "%s.norm%d.bias", pfx, k + 1);   t->n_b[k] = add(ps, n, 1, d, 0);
    }
}

/* ---- initialization (the official code's, docs/model.md) ------------------- */

static void fill_uniform(nn_params *ps, int i, double bound, uint64_t *r) {
    float *x = nn_param_host(ps, i);
    for (size_t k = 0; k < ps->p[i].n; k++) x[k] = (float)((2.0 * cd_rng_uniform(r) - 1.0) * bound);
}
static void fill_const(nn_params *ps, int i, float v) {
    float *x = nn_param_host(ps, i);
    for (size_t k = 0; k < ps->p[i].n; k++) x[k] = v;
}
static void fill_normal(nn_params *ps, int i, double std, uint64_t *r) {
    float *x = nn_param_host(ps, i);
    for (size_t k = 0; k < ps->p[i].n; k++) x[k] = (float)(std * cd_rng_normal(r));
}
/* fan_in = shape[1] * receptive field; fan_out = shape[0] * receptive field */
static size_t fan_in(const nn_param *p) { return p->ndim < 2 ? p->n : p->n / p->shape[0]; }
static size_t fan_out(const nn_param *p) { return p->ndim < 2 ? p->n : p->n / p->shape[1]; }

static void init_params(detr_model *m, uint64_t seed) {
    nn_params *ps = &m->params;
    uint64_t r = seed ^ 0x6A09E667F3BCC908ULL;
    for (int i = 0; i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        const char *nm = p->name;
        if (!strncmp(nm, "transformer.", 12)) {
            if (p->ndim > 1) {                       /* xavier_uniform_ on every matrix */
                fill_uniform(ps, i, sqrt(6.0 / (double)(p->shape[0] + p->shape[1])), &r);
            } else if (strstr(nm, "norm")) {         /* LayerNorm: 1 and 0 */
                fill_const(ps, i, strstr(nm, ".weight") ? 1.0f : 0.0f);
            } else if (strstr(nm, "in_proj_bias") || strstr(nm, "out_proj.bias")) {
                fill_const(ps, i, 0.0f);             /* MultiheadAttention's own init */
            } else {                                 /* linear1/2 biases: Linear default */
                int w = i - 1;                       /* the weight is declared just before */
                fill_uniform(ps, i, 1.0 / sqrt((double)fan_in(&ps->p[w])), &r);
            }
        } else if (!strncmp(nm, "backbone.0.", 11)) {
            if (p->ndim == 4) {                      /* kaiming_normal_(fan_out, relu) */
                fill_normal(ps, i, sqrt(2.0 / (double)fan_out(p)), &r);
            } else if (strstr(nm, "running_var") || strstr(nm, ".weight")) {
                fill_const(ps, i, 1.0f);             /* BN at identity */
            } else {
                fill_const(ps, i, 0.0f);
            }
        } else if (!strcmp(nm, "query_embed.weight") || !strcmp(nm, "query_embed_groups.weight")) {
            fill_normal(ps, i, 1.0, &r);
        } else if (!strncmp(nm, "backbone.1.", 11)) {   /* learned PE tables: U[0,1) */
            float *x = nn_param_host(ps, i);
            for (size_t k = 0; k < p->n; k++) x[k] = (float)cd_rng_uniform(&r);
        } else {                                     /* Linear / Conv2d defaults */
            size_t fi = p->ndim > 1 ? fan_in(p) : fan_in(&ps->p[i - 1]);
            fill_uniform(ps, i, 1.0 / sqrt((double)fi), &r);
        }
    }
}

int detr_build(detr_model *m, const detr_opts *o, cd_device *dev, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->o = *o;
    if (o->d < 2 || o->d % 2) return cd_seterr("model.hidden_dim must be even and >= 2, got %d", o->d);
    if (o->nheads < 1 || o->d % o->nheads)
        return cd_seterr("model.nheads (%d) must divide model.hidden_dim (%d)", o->nheads, o->d);
    if (o->dec_layers < 1 || o->dec_layers > DETR_MAX_LAYERS || o->enc_layers < 0 || o->enc_layers > DETR_MAX_LAYERS)
        return cd_seterr("model.enc_layers must be 0..%d and model.dec_layers 1..%d", DETR_MAX_LAYERS, DETR_MAX_LAYERS);
    if (o->num_queries < 1 || o->num_classes < 1 || o->dim_ff < 1)
        return cd_seterr("model.num_queries, model.num_classes and model.dim_feedforward must be >= 1");
    if (o->query_groups < 0 || o->query_groups > 64)
        return cd_seterr("train.query_groups must be 1..64 (1 = off), got %d", o->query_groups);
    if (o->dn && o->d % 8)
        return cd_seterr("denoising queries need model.hidden_dim divisible by 8 (the box code), got %d", o->d);
    nn_params *ps = &m->params;
    size_t d = (size_t)o->d, ff = (size_t)o->dim_ff;
    char pfx[96];
    /* state_dict order: transformer, class_embed, bbox_embed, query_embed, input_proj, backbone */
    m->enc = cd_xcalloc(CD_MAX(o->enc_layers, 1), sizeof *m->enc);
    m->dec = cd_xcalloc(o->dec_layers, sizeof *m->dec);
    for (int l = 0; l < o->enc_layers; l++) {
        snprintf(pfx, sizeof pfx, "transformer.encoder.layers.%d", l);
        declare_layer(ps, &m->enc[l], pfx, d, ff, 0);
    }
    m->enc_norm_w = m->enc_norm_b = -1;
    if (o->pre_norm && o->enc_layers > 0) {
        m->enc_norm_w = add(ps, "transformer.encoder.norm.weight", 1, d, 0);
        m->enc_norm_b = add(ps, "transformer.encoder.norm.bias", 1, d, 0);
    }
    for (int l = 0; l < o->dec_layers; l++) {
        snprintf(pfx, sizeof pfx, "transformer.decoder.layers.%d", l);
        declare_layer(ps, &m->dec[l], pfx, d, ff, 1);
    }
    m->dec_norm_w = add(ps, "transformer.decoder.norm.weight", 1, d, 0);
    m->dec_norm_b = add(ps, "transformer.decoder.norm.bias", 1, d, 0);
    size_t K1 = (size_t)o->num_classes + 1;
    m->class_w = add(ps, "class_embed.weight", 2, K1, d);
    m->class_b = add(ps, "class_embed.bias", 1, K1, 0);
    for (int k = 0; k < 3; k++) {
        char n[64];
        size_t out = k == 2 ? 4 : d;
        snprintf(n, sizeof n, "bbox_embed.layers.%d.weight", k); m->bbox_w[k] = add(ps, n, 2, out, d);
        snprintf(n, sizeof n, "bbox_embed.layers.%d.bias", k);   m->bbox_b[k] = add(ps, n, 1, out, 0);
    }
    m->query_embed = add(ps, "query_embed.weight", 2, (size_t)o->num_queries, d);
    m->query_embed_groups = m->dn_label_w = m->dn_box_w[0] = m->dn_box_w[1] = -1;
    if (o->query_groups > 1)    /* right after query_embed: nn_weight_stack takes both as one */
        m->query_embed_groups = add(ps, "query_embed_groups.weight", 2, (size_t)(o->query_groups - 1) * (size_t)o->num_queries, d);
    if (o->dn) {
        m->dn_label_w = add(ps, "dn_label_embed.weight", 2, d, K1);
        m->dn_box_w[0] = add(ps, "dn_box_embed.layers.0.weight", 2, d, d);
        m->dn_box_w[1] = add(ps, "dn_box_embed.layers.1.weight", 2, d, d);
    }
    m->row_embed = m->col_embed = -1;
    if (detr_declare_backbone(m) < 0) { detr_free(m, NULL); return -1; }
    m->proj_w = nn_param_add(ps, "input_proj.weight", NN_GROUP_REST, 1, 0, 4, d, m->backbone_channels, 1, 1);
    m->proj_b = add(ps, "input_proj.bias", 1, d, 0);
    if (o->learned_pos) {
        /* backbone.1.{row,col}_embed.weight: Embedding(50, d/2) each */
        m->row_embed = nn_param_add(ps, "backbone.1.row_embed.weight", NN_GROUP_REST, 1, 0, 2, 50, d / 2, 0, 0);
        m->col_embed = nn_param_add(ps, "backbone.1.col_embed.weight", NN_GROUP_REST, 1, 0, 2, 50, d / 2, 0, 0);
    }
    nn_params_finalize(ps, dev);
    init_params(m, seed);
    nn_params_upload(ps, dev);
    return 0;
}

void detr_free(detr_model *m, cd_device *dev) {
    nn_params_free(&m->params, dev);      /* the registry always; the device buffers when finalized */
    free(m->blocks);
    free(m->enc);
    free(m->dec);
    memset(m, 0, sizeof *m);
}

size_t detr_feature_size(const detr_model *m, size_t H) {
    /* each stride-2 op maps h -> floor((h + 2p - k)/2) + 1 = ceil(h/2) for the ResNet ops:
     * five of them (stride 32), four with DC5 (stride 16) */
    size_t h = H;
    int halvings = m->o.dilation ? 4 : 5;
    for (int i = 0; i < halvings; i++) h = (h + 1) / 2;
    return h;
}

void detr_count(const detr_model *m, size_t *all, size_t *trainable) {
    size_t a = 0, t = 0;
    for (int i = 0; i < m->params.n; i++) {
        const nn_param *p = &m->params.p[i];
        if (p->buffer) continue;
        a += p->n;
        if (p->trainable) t += p->n;
    }
    *all = a;
    *trainable = t;
}

/* ---- forward ----------------------------------------------------------------- */

/* Multi-head attention as nn.MultiheadAttention (batch-first here):
 * q_in (B, Lq, d), k_in and v_in (B, Lk, d), mask (B, Lk) or NULL, attn_bias
 * (Lq, Lk) added to every head's scores (attn_mask) or NULL -> (B, Lq, d) */
static nn_tensor *mha(detr_model *m, nn_ctx *ctx, const detr_mha *a, nn_tensor *q_in, nn_tensor *k_in,
                      nn_tensor *v_in, nn_tensor *mask, nn_tensor *attn_bias) {
    size_t d = (size_t)m->o.d, NH = (size_t)m->o.nheads, hd = d / NH;
    nn_tensor *qkv[3] = {q_in, k_in, v_in};
    for (int i = 0; i < 3; i++)                 /* rows [i*d, (i+1)*d) of the packed in_proj */
        qkv[i] = nn_linear_rows(ctx, qkv[i], a->in_w, a->in_b, (size_t)i * d, d);
    float scale = 1.0f / sqrtf((float)hd);
    if (nn_fused_attention(ctx, hd)) {   /* one node, the weights never stored */
        nn_tensor *o = nn_attention(ctx, qkv[0], qkv[1], qkv[2], NH, mask, attn_bias, scale, m->o.dropout);
        return nn_linear(ctx, o, a->out_w, a->out_b);
    }
    /* the heads are read in place: head h is columns [h*hd, (h+1)*hd) */
    nn_tensor *s = nn_heads_scores(ctx, qkv[0], qkv[1], NH);           /* (B, NH, Lq, Lk) */
    if (attn_bias) {        /* the bias is scaled with the scores: DETR_MASKED stays far below any score */
        size_t sd[4] = {s->dims[0], s->dims[1], s->dims[2], s->dims[3]};
        s = nn_add_channels(ctx, nn_view(ctx, s, 3, (size_t[]){sd[0] * sd[1], sd[2], sd[3]}), attn_bias);
        s = nn_view(ctx, s, 4, sd);
    }
    nn_tensor *p = nn_softmax(ctx, s, mask, scale);
    p = nn_dropout(ctx, p, m->o.dropout);
    nn_tensor *o = nn_heads_mix(ctx, p, qkv[2]);                       /* (B, Lq, d), heads in place */
    return nn_linear(ctx, o, a->out_w, a->out_b);
}

/* x (B, L, d) -> (B, L, d); *hidden gets the (B, L, dim_ff) activation after the ReLU */
static nn_tensor *ffn(detr_model *m, nn_ctx *ctx, const detr_tlayer *t, nn_tensor *x, nn_tensor **hidden) {
    nn_tensor *h = *hidden = nn_linear_relu(ctx, x, t->l1_w, t->l1_b);
    h = nn_dropout(ctx, h, m->o.dropout);
    return nn_linear(ctx, h, t->l2_w, t->l2_b);
}

static nn_tensor *residual(detr_model *m, nn_ctx *ctx, nn_tensor *x, nn_tensor *branch) {
    return nn_add(ctx, x, nn_dropout(ctx, branch, m->o.dropout));
}

static nn_tensor *norm(nn_ctx *ctx, const detr_tlayer *t, int k, nn_tensor *x) {
    return nn_layernorm(ctx, x, t->n_w[k], t->n_b[k]);
}

/* post-norm: norm k of x + dropout(branch), the add inside the norm's node */
static nn_tensor *residual_norm(detr_model *m, nn_ctx *ctx, const detr_tlayer *t, int k, nn_tensor *x,
                                nn_tensor *branch) {
    return nn_add_layernorm(ctx, x, nn_dropout(ctx, branch, m->o.dropout), t->n_w[k], t->n_b[k]);
}

/* src, pos (B, S, d), mask (B, S) */
static nn_tensor *encoder_layer(detr_model *m, nn_ctx *ctx, const detr_tlayer *t, nn_tensor *src,
                                nn_tensor *pos, nn_tensor *mask, nn_tensor **ffn_hidden) {
    if (!m->o.pre_norm) {
        nn_tensor *q = nn_add(ctx, src, pos);
        src = residual_norm(m, ctx, t, 0, src, mha(m, ctx, &t->self_attn, q, q, src, mask, NULL));
        return residual_norm(m, ctx, t, 1, src, ffn(m, ctx, t, src, ffn_hidden));
    }
    nn_tensor *s2 = norm(ctx, t, 0, src);
    nn_tensor *q = nn_add(ctx, s2, pos);
    src = residual(m, ctx, src, mha(m, ctx, &t->self_attn, q, q, s2, mask, NULL));
    return residual(m, ctx, src, ffn(m, ctx, t, norm(ctx, t, 1, src), ffn_hidden));
}

/* tgt (B, Q, d), qpos (Q, d) or per image (B, Q, d), memory and mem_pos
 * (B, S, d), mask (B, S), self_bias (Q, Q) or NULL. The three sublayers
 * (self-attention, cross-attention, FFN) each add a residual; post-norm
 * normalizes after it, pre-norm the sublayer's input. */
static nn_tensor *decoder_layer(detr_model *m, nn_ctx *ctx, const detr_tlayer *t, nn_tensor *tgt,
                                nn_tensor *qpos, nn_tensor *memory, nn_tensor *mem_pos, nn_tensor *mask,
                                nn_tensor *self_bias, nn_tensor **ffn_hidden) {
    int pre = m->o.pre_norm;
    for (int k = 0; k < 3; k++) {
        nn_tensor *x = pre ? norm(ctx, t, k, tgt) : tgt, *branch;
        if (k < 2) {
            nn_tensor *q = qpos->ndim == 3 ? nn_add(ctx, x, qpos) : nn_add_channels(ctx, x, qpos);
            branch = k == 0 ? mha(m, ctx, &t->self_attn, q, q, x, NULL, self_bias)
                            : mha(m, ctx, &t->cross_attn, q, mem_pos, memory, mask, NULL);
        } else {
            branch = ffn(m, ctx, t, x, ffn_hidden);
        }
        tgt = pre ? residual(m, ctx, tgt, branch) : residual_norm(m, ctx, t, k, tgt, branch);
    }
    return tgt;
}

int detr_param_training_only(const char *name) {
    return !strncmp(name, "query_embed_groups.", 19) || !strncmp(name, "dn_", 3);
}

void detr_train_attn_mask(float *bias, size_t Q, int groups, int dn_groups, size_t dn_pad) {
    size_t nm = (size_t)groups * Q, L = nm + (size_t)dn_groups * dn_pad;
    for (size_t i = 0; i < L; i++)
        for (size_t j = 0; j < L; j++) {
            int see;
            if (i < nm) see = j < nm && i / Q == j / Q;                 /* a matching query: its own group */
            else see = j < nm || (j - nm) / dn_pad == (i - nm) / dn_pad; /* denoising: matching + own group */
            bias[i * L + j] = see ? 0.0f : DETR_MASKED;
        }
}

/* The decoder's input for training queries: tgt (B, L, d) and qpos (L, d) or
 * (B, L, d), and the self-attention bias (L, L). */
static void train_queries(detr_model *m, nn_ctx *ctx, size_t B, const detr_train_queries *tq, nn_tensor **tgt,
                          nn_tensor **qpos, nn_tensor **bias) {
    size_t d = (size_t)m->o.d, Q = (size_t)m->o.num_queries, K1 = (size_t)m->o.num_classes + 1;
    size_t G = (size_t)tq->groups, nm = G * Q, nd = (size_t)tq->dn_groups * tq->dn_pad, L = nm + nd;
    nn_tensor *qemb = G > 1 ? nn_weight_stack(ctx, m->query_embed, m->query_embed_groups) : nn_weight(ctx, m->query_embed);
    qemb->dims[0] = nm;                 /* the groups in use */
    qemb->n = nm * d;
    float *mask = cd_xmalloc(L * L * sizeof *mask);
    detr_train_attn_mask(mask, Q, tq->groups, tq->dn_groups, tq->dn_pad);
    *bias = nn_name(nn_input(ctx, mask, 2, (size_t[]){L, L}), "decoder self-attention mask");
    free(mask);
    if (!nd) {
        *tgt = nn_fill(ctx, 0.0f, 3, (size_t[]){B, L, d});
        *qpos = qemb;
        return;
    }
    /* denoising: the content is the noised label's embedding (0 for matching
     * queries: their rows of dn_label are absent), the position the box MLP on
     * the box's sine code plus, for matching queries, their learned embedding */
    float *lab = cd_xcalloc(B * L * K1, sizeof *lab), *box = cd_xcalloc(B * L * d, sizeof *box);
    float *sel = cd_xcalloc(L * nm, sizeof *sel);
    for (size_t b = 0; b < B; b++) {
        memcpy(lab + (b * L + nm) * K1, tq->dn_label + b * nd * K1, nd * K1 * sizeof *lab);
        memcpy(box + (b * L + nm) * d, tq->dn_box + b * nd * d, nd * d * sizeof *box);
    }
    for (size_t i = 0; i < nm; i++) sel[i * nm + i] = 1.0f;
    nn_tensor *tl = nn_name(nn_input(ctx, lab, 3, (size_t[]){B, L, K1}), "denoising labels");
    nn_tensor *tb = nn_name(nn_input(ctx, box, 3, (size_t[]){B, L, d}), "denoising boxes");
    nn_tensor *ts = nn_input(ctx, sel, 3, (size_t[]){1, L, nm});
    free(lab); free(box); free(sel);
    *tgt = nn_linear(ctx, tl, m->dn_label_w, -1);
    nn_tensor *pb = nn_linear(ctx, nn_relu(ctx, nn_linear(ctx, tb, m->dn_box_w[0], -1)), m->dn_box_w[1], -1);
    nn_tensor *pq = nn_bmm(ctx, ts, nn_view(ctx, qemb, 3, (size_t[]){1, nm, d}), 0, 0);    /* (1, L, d) */
    *qpos = nn_add_channels(ctx, pb, nn_view(ctx, pq, 2, (size_t[]){L, d}));
}

void detr_forward(detr_model *m, nn_ctx *ctx, const float *images, const float *mask,
                  size_t B, size_t H, size_t W, detr_out *out) {
    detr_forward_train(m, ctx, images, mask, B, H, W, NULL, out);
}

void detr_forward_train(detr_model *m, nn_ctx *ctx, const float *images, const float *mask,
                        size_t B, size_t H, size_t W, const detr_train_queries *tq, detr_out *out) {
    const detr_opts *o = &m->o;
    size_t d = (size_t)o->d, Q = (size_t)o->num_queries, K1 = (size_t)o->num_classes + 1;
    if (tq && tq->groups <= 1 && tq->dn_groups <= 0) tq = NULL;    /* DETR's own forward */
    if (tq && (tq->groups > CD_MAX(o->query_groups, 1) || (tq->dn_groups > 0 && !o->dn)))
        cd_fatal("detr_forward_train: %d query groups and %d denoising groups asked of a model built with %d and %s",
                 tq->groups, tq->dn_groups, o->query_groups, o->dn ? "denoising" : "no denoising");
    memset(out, 0, sizeof *out);
    nn_tensor *x = nn_name(nn_input(ctx, images, 4, (size_t[]){B, 3, H, W}), "images");
    out->features = nn_name(detr_backbone_forward(m, ctx, x, out->stage_out), "features");
    size_t Hf = out->features->dims[2], Wf = out->features->dims[3], S = Hf * Wf;
    if (tq) Q = (size_t)CD_MAX(tq->groups, 1) * Q + (size_t)CD_MAX(tq->dn_groups, 0) * tq->dn_pad;
    out->B = B; out->Hf = Hf; out->Wf = Wf; out->S = S; out->Q = Q; out->K1 = K1;
    out->L = (size_t)o->dec_layers;

    /* mask and position encoding at feature resolution (host) */
    float *mask_f = cd_xmalloc(B * S * sizeof *mask_f), *pos = cd_xmalloc(B * S * d * sizeof *pos);
    detr_mask_downsample(mask_f, mask, B, H, W, Hf, Wf);
    out->mask = nn_name(nn_input(ctx, mask_f, 2, (size_t[]){B, S}), "mask");
    if (o->learned_pos) {
        out->pos = nn_learned_pos(ctx, m->row_embed, m->col_embed, B, Hf, Wf, d / 2);
    } else {
        detr_sine_pos(pos, mask_f, B, Hf, Wf, d);
        out->pos = nn_input(ctx, pos, 3, (size_t[]){B, S, d});
    }
    nn_name(out->pos, "pos");
    free(mask_f);
    free(pos);

    out->proj = nn_name(nn_conv2d(ctx, out->features, m->proj_w, m->proj_b, 1, 0, 1), "proj");
    nn_tensor *src = nn_permute(ctx, nn_view(ctx, out->proj, 3, (size_t[]){B, d, S}), (int[]){0, 2, 1, 3});
    src = nn_view(ctx, src, 3, (size_t[]){B, S, d});
    for (int l = 0; l < o->enc_layers; l++)
        src = out->enc_out[l] = encoder_layer(m, ctx, &m->enc[l], src, out->pos, out->mask, &out->enc_ffn[l]);
    if (m->enc_norm_w >= 0) src = nn_layernorm(ctx, src, m->enc_norm_w, m->enc_norm_b);
    out->memory = nn_name(src, "memory");

    nn_tensor *mem_pos = nn_add(ctx, out->memory, out->pos);
    nn_tensor *qpos, *tgt, *self_bias = NULL;
    if (tq) {
        train_queries(m, ctx, B, tq, &tgt, &qpos, &self_bias);
    } else {
        qpos = nn_weight(ctx, m->query_embed);
        tgt = nn_fill(ctx, 0.0f, 3, (size_t[]){B, Q, d});
    }
    for (int l = 0; l < o->dec_layers; l++) {
        tgt = out->dec_out[l] = decoder_layer(m, ctx, &m->dec[l], tgt, qpos, out->memory, mem_pos, out->mask,
                                              self_bias, &out->dec_ffn[l]);
        nn_tensor *hs = out->hs[l] = nn_layernorm(ctx, tgt, m->dec_norm_w, m->dec_norm_b);
        out->logits[l] = nn_linear(ctx, hs, m->class_w, m->class_b);
        nn_tensor *h = nn_linear_relu(ctx, hs, m->bbox_w[0], m->bbox_b[0]);
        h = nn_linear_relu(ctx, h, m->bbox_w[1], m->bbox_b[1]);
        out->boxes[l] = nn_sigmoid(ctx, nn_linear(ctx, h, m->bbox_w[2], m->bbox_b[2]));
    }
}
