/* The training step (include/cldetr/step.h): forward, read-back, matching and
 * set criterion, backward, clipping and AdamW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/dist.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"

const char *const step_phase_names[STEP_N_PHASES] = {"forward", "loss", "backward", "optimizer"};

void train_step_init(train_step_state *s, detr_model *m, nn_ctx *ctx, adamw_state *opt, const config *cfg) {
    memset(s, 0, sizeof *s);
    s->model = m;
    s->ctx = ctx;
    s->opt = opt;
    setup_criterion_opts(&s->crit, cfg);
    s->clip_max_norm = cfg->train.clip_max_norm;
    s->query_groups = cfg->train.query_groups;
    s->dn_groups = cfg->train.dn_groups;
    s->dn_box_noise = cfg->train.dn_box_noise;
    s->dn_label_noise = cfg->train.dn_label_noise;
    s->seed = (uint64_t)cfg->train.seed;
    s->crit_dn = s->crit;
    s->crit_dn.fixed_match = 1;
    s->world = 1;
}

void train_step_free(train_step_state *s) {
    criterion_result_free(&s->cr);
    criterion_result_free(&s->cr_dn);
    for (int i = 0; i < TQ_N_BUFS; i++) free(s->tq.buf[i]);
    free(s->tq.mt); free(s->tq.dt);
    free(s->logits); free(s->boxes); free(s->dlogits); free(s->dboxes);
    free(s->mask); free(s->targets); free(s->grads);
    memset(s, 0, sizeof *s);
}

void read_decoder_outputs(cd_device *dev, const detr_out *o, float *logits, float *boxes) {
    size_t nl = o->B * o->Q * o->K1, nb = o->B * o->Q * 4;
    for (size_t l = 0; l < o->L; l++) {
        cd_read(dev, logits + l * nl, o->logits[l]->data, nl);
        cd_read(dev, boxes + l * nb, o->boxes[l]->data, nb);
    }
}

/* Make room for n floats in a pair of host buffers (a tensor and its gradient). */
static void grow_pair(float **x, float **dx, size_t *cap, size_t n) {
    if (n <= *cap) return;
    *cap = n;
    *x = cd_xrealloc(*x, n * sizeof **x);
    *dx = cd_xrealloc(*dx, n * sizeof **dx);
}

/* The mean over the processes of what is logged (official DETR: reduce_dict):
 * each layer's terms, the total and the class error; one all-reduce. */
static void average_losses(criterion_result *cr, int world) {
    enum { T = 7 };                    /* terms per layer */
    size_t L = cr->L, n = T * L + 2;
    double *v = cd_xmalloc(n * sizeof *v);
    for (size_t l = 0; l < L; l++) {
        const criterion_layer_terms *f = &cr->layer[l];
        double t[T] = {f->loss_ce, f->loss_bbox, f->loss_giou, f->weighted_ce, f->weighted_bbox, f->weighted_giou,
                       f->cardinality_error};
        memcpy(v + T * l, t, sizeof t);
    }
    v[T * L] = cr->total;
    v[T * L + 1] = cr->class_error;
    dist_allreduce_sum_f64(v, n);
    for (size_t i = 0; i < n; i++) v[i] /= world;
    for (size_t l = 0; l < L; l++) {
        criterion_layer_terms *f = &cr->layer[l];
        const double *t = v + T * l;
        f->loss_ce = t[0]; f->loss_bbox = t[1]; f->loss_giou = t[2];
        f->weighted_ce = t[3]; f->weighted_bbox = t[4]; f->weighted_giou = t[5];
        f->cardinality_error = t[6];
    }
    cr->total = v[T * L];
    cr->class_error = v[T * L + 1];
    free(v);
}

/* The mean of the flat gradient buffer over the processes (PyTorch DDP's):
 * read back, one all-reduce on the host, written back. */
static void average_gradients(train_step_state *s) {
    nn_params *ps = &s->model->params;
    size_t n = ps->n_trainable;
    if (!s->grads) s->grads = cd_xmalloc(CD_MAX(n, 1) * sizeof *s->grads);
    cd_read(s->ctx->dev, s->grads, ps->grad, n);
    dist_allreduce_sum_f32(s->grads, n);
    float inv = 1.0f / (float)s->world;
    for (size_t i = 0; i < n; i++) s->grads[i] *= inv;
    cd_write(s->ctx->dev, ps->grad, s->grads, n);
}

/* With time_phases: wait for the device, add the phase's seconds, restart the clock. */
static double phase_end(train_step_state *s, int phase, double t0) {
    if (!s->time_phases) return t0;
    cd_finish(s->ctx->dev);
    double t = cd_now();
    s->phase_s[phase] += t - t0;
    return t;
}

/* Scratch buffer i of the training queries with room for n floats. */
static float *tq_buf(train_step_state *s, int i, size_t n) {
    if (n > s->tq.cap[i] || !s->tq.buf[i]) {
        s->tq.cap[i] = CD_MAX(n, (size_t)1);
        s->tq.buf[i] = cd_xrealloc(s->tq.buf[i], s->tq.cap[i] * sizeof(float));
    }
    return s->tq.buf[i];
}

/* The denoising queries of a batch (DN-DETR): dn_groups noised copies of each
 * image's boxes and labels, padded to the batch's largest box count. Centres
 * move by up to dn_box_noise times half the box's size, sides scale by up to
 * 1 +- dn_box_noise (clamped to [0, 1]); a label becomes a random class with
 * probability dn_label_noise. The noise is drawn from (seed, step, image), so
 * a step is the same on every device and after a resume. */
static void make_dn_queries(train_step_state *s, const data_batch *b, uint64_t step, detr_train_queries *tq) {
    size_t B = b->B, K1 = s->model->o.num_classes + 1, d = (size_t)s->model->o.d, pad = 0;
    for (size_t i = 0; i < B; i++) pad = CD_MAX(pad, b->targets[i].n);
    size_t G = (size_t)s->dn_groups, n = B * G * pad;
    float *label = tq_buf(s, TQ_DN_LABEL, n * K1), *code = tq_buf(s, TQ_DN_BOX, n * d);
    memset(label, 0, n * K1 * sizeof *label);
    memset(code, 0, n * d * sizeof *code);
    for (size_t i = 0; i < B; i++) {
        uint64_t r = s->seed * 0x9E3779B97F4A7C15ULL ^ (step + 1) * 0xD1B54A32D192ED03ULL ^ (i + 1) * 0x2545F4914F6CDD1DULL;
        const data_target *t = &b->targets[i];
        for (size_t g = 0; g < G; g++)
            for (size_t k = 0; k < t->n; k++) {
                size_t row = (i * G + g) * pad + k;
                int lab = t->labels[k];
                if (cd_rng_uniform(&r) < s->dn_label_noise) lab = (int)(cd_rng_uniform(&r) * (double)(K1 - 1)) % (int)(K1 - 1);
                label[row * K1 + (size_t)lab] = 1.0f;
                const float *bx = t->boxes + 4 * k;
                float nb[4];
                for (int c = 0; c < 4; c++) {
                    double u = 2.0 * cd_rng_uniform(&r) - 1.0;
                    double v = bx[c] + u * (c < 2 ? 0.5 * bx[c + 2] : bx[c]) * s->dn_box_noise;
                    nb[c] = (float)CD_MIN(CD_MAX(v, 0.0), 1.0);
                }
                detr_box_sine(code + row * d, nb, d);
            }
    }
    s->dn_pad = pad;
    tq->dn_groups = pad ? s->dn_groups : 0;
    tq->dn_pad = pad;
    tq->dn_label = label;
    tq->dn_box = code;
}

/* Rows [0, nm) and [nm, nm + nd) of each (layer, image) block of x (L*B, Lq, w)
 * to m (L*B, nm, w) and d (L*B, nd, w), or back with `join`. */
static void tq_rows(float *x, float *m, float *d, size_t LB, size_t Lq, size_t nm, size_t nd, size_t w, int join) {
    for (size_t k = 0; k < LB; k++) {
        float *xm = x + k * Lq * w, *xd = xm + nm * w, *pm = m + k * nm * w, *pd = d + k * nd * w;
        memcpy(join ? xm : pm, join ? pm : xm, nm * w * sizeof(float));
        if (nd) memcpy(join ? xd : pd, join ? pd : xd, nd * w * sizeof(float));
    }
}

/* The loss of a forward with training queries: the (L, B, G*Q + Gd*pad, ...)
 * outputs are split into the matching groups, scored as B*G images (one-to-one
 * matching per group, the terms averaged over the groups as their box count is
 * G times the batch's), and the denoising groups, scored as B*Gd images with
 * fixed matching. cr holds the matching terms (what the log shows per term)
 * and the total of both; dlogits/dboxes the joined gradient. */
static int train_queries_loss(train_step_state *s, const detr_train_queries *tq, size_t B) {
    const detr_out *o = &s->out;
    size_t L = o->L, Lq = o->Q, K1 = o->K1, Q = (size_t)s->model->o.num_queries;
    size_t G = (size_t)CD_MAX(tq->groups, 1), Gd = (size_t)tq->dn_groups, pad = tq->dn_pad, nm = G * Q, nd = Gd * pad;
    size_t nmax = L * B * Lq * CD_MAX(K1, (size_t)4);   /* room for any of the split arrays */
    float *ml = tq_buf(s, TQ_ML, nmax), *mb = tq_buf(s, TQ_MB, nmax), *dml = tq_buf(s, TQ_DML, nmax);
    float *dmb = tq_buf(s, TQ_DMB, nmax), *dl = tq_buf(s, TQ_DL, nmax), *db = tq_buf(s, TQ_DB, nmax);
    float *ddl = tq_buf(s, TQ_DDL, nmax), *ddb = tq_buf(s, TQ_DDB, nmax);
    size_t nt = B * CD_MAX(G, Gd);
    if (nt > s->tq.cap_t || !s->tq.mt) {
        s->tq.cap_t = nt;
        s->tq.mt = cd_xrealloc(s->tq.mt, nt * sizeof *s->tq.mt);
        s->tq.dt = cd_xrealloc(s->tq.dt, nt * sizeof *s->tq.dt);
    }
    tq_rows(s->logits, ml, dl, L * B, Lq, nm, nd, K1, 0);
    tq_rows(s->boxes, mb, db, L * B, Lq, nm, nd, 4, 0);
    for (size_t i = 0; i < B; i++) {
        for (size_t g = 0; g < G; g++) s->tq.mt[i * G + g] = s->targets[i];
        for (size_t g = 0; g < Gd; g++) s->tq.dt[i * Gd + g] = s->targets[i];
    }
    if (criterion_loss(&s->cr, dml, dmb, ml, mb, s->tq.mt, L, B * G, Q, K1, &s->crit) < 0) return -1;
    if (nd) {
        if (criterion_loss(&s->cr_dn, ddl, ddb, dl, db, s->tq.dt, L, B * Gd, pad, K1, &s->crit_dn) < 0) return -1;
        s->cr.total += s->cr_dn.total;
    }
    tq_rows(s->dlogits, dml, ddl, L * B, Lq, nm, nd, K1, 1);
    tq_rows(s->dboxes, dmb, ddb, L * B, Lq, nm, nd, 4, 1);
    return 0;
}

int train_step(train_step_state *s, const data_batch *b, uint64_t step, const double lr[2]) {
    nn_ctx *ctx = s->ctx;
    size_t B = b->B, H = b->H, W = b->W;
    double t = cd_now();
    nn_ctx_reset(ctx);
    ctx->step = step;
    nn_zero_grads(ctx);
    if (B * H * W > s->cap_m) {
        s->cap_m = B * H * W;
        s->mask = cd_xrealloc(s->mask, s->cap_m * sizeof *s->mask);
    }
    for (size_t i = 0; i < B * H * W; i++) s->mask[i] = b->mask[i];
    detr_train_queries tq = {s->query_groups, 0, 0, NULL, NULL};
    if (s->dn_groups > 0) make_dn_queries(s, b, step, &tq);
    int with_tq = tq.groups > 1 || tq.dn_groups > 0;
    detr_forward_train(s->model, ctx, b->images, s->mask, B, H, W, with_tq ? &tq : NULL, &s->out);
    t = phase_end(s, STEP_FORWARD, t);

    const detr_out *o = &s->out;
    size_t L = o->L, Q = o->Q, K1 = o->K1;
    grow_pair(&s->logits, &s->dlogits, &s->cap_l, L * B * Q * K1);
    grow_pair(&s->boxes, &s->dboxes, &s->cap_b, L * B * Q * 4);
    if (B > s->cap_t) {
        s->cap_t = B;
        s->targets = cd_xrealloc(s->targets, B * sizeof *s->targets);
    }
    read_decoder_outputs(ctx->dev, o, s->logits, s->boxes);
    for (size_t i = 0; i < B; i++)
        s->targets[i] = (criterion_target){b->targets[i].labels, b->targets[i].boxes, b->targets[i].n};
    /* a job: the targets of the whole global batch normalise the box terms (docs/parallel.md §2); the G
     * matching groups and the Gd denoising groups are scored as B*G and B*Gd images, so count them G and Gd
     * times, as one process does */
    double own = s->crit.num_boxes, own_dn = s->crit_dn.num_boxes;
    if (s->world > 1) {
        s->crit.num_boxes = CD_MAX(1.0, s->num_boxes * (with_tq ? CD_MAX(tq.groups, 1) : 1));
        s->crit_dn.num_boxes = CD_MAX(1.0, s->num_boxes * (with_tq ? tq.dn_groups : 0));
    }
    int rc = with_tq ? train_queries_loss(s, &tq, B)
                     : criterion_loss(&s->cr, s->dlogits, s->dboxes, s->logits, s->boxes, s->targets, L, B, Q, K1,
                                      &s->crit);
    s->crit.num_boxes = own;          /* (validation uses crit too, with its own batches' counts) */
    s->crit_dn.num_boxes = own_dn;
    if (rc < 0)
        return -1;
    if (!isfinite(s->cr.total)) return cd_seterr("the loss is %g", s->cr.total);
    for (size_t l = s->crit.aux_loss ? 0 : L - 1; l < L; l++) {
        nn_set_grad(ctx, o->logits[l], s->dlogits + l * B * Q * K1);
        nn_set_grad(ctx, o->boxes[l], s->dboxes + l * B * Q * 4);
    }
    t = phase_end(s, STEP_LOSS, t);

    nn_backward(ctx);
    if (s->world > 1) {                /* the losses while the device runs backward, then the gradients */
        average_losses(&s->cr, s->world);
        average_gradients(s);
    }
    t = phase_end(s, STEP_BACKWARD, t);

    s->grad_norm = 0;
    int measure = s->stats && s->measure;
    if (measure) layer_stats_before_update(s->stats, ctx->dev, &s->model->params);
    if (s->opt && adamw_step(s->opt, ctx->dev, &s->model->params, lr, s->clip_max_norm, &s->grad_norm) < 0)
        return -1;
    if (measure) layer_stats_measure(s->stats, ctx->dev, &s->model->params, o);
    phase_end(s, STEP_OPTIMIZER, t);
    return 0;
}
