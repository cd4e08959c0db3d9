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
    s->world = 1;
}

void train_step_free(train_step_state *s) {
    criterion_result_free(&s->cr);
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
    detr_forward(s->model, ctx, b->images, s->mask, B, H, W, &s->out);
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
    criterion_opts crit = s->crit;
    if (s->world > 1) crit.num_boxes = s->num_boxes;     /* the whole global batch's (docs/parallel.md §2) */
    if (criterion_loss(&s->cr, s->dlogits, s->dboxes, s->logits, s->boxes, s->targets, L, B, Q, K1, &crit) < 0)
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
