/* The training step (include/cldetr/step.h): forward, read-back, matching and
 * set criterion, backward, clipping and AdamW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
}

void train_step_free(train_step_state *s) {
    criterion_result_free(&s->cr);
    free(s->logits); free(s->boxes); free(s->dlogits); free(s->dboxes);
    free(s->mask); free(s->targets);
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
    if (criterion_loss(&s->cr, s->dlogits, s->dboxes, s->logits, s->boxes, s->targets, L, B, Q, K1, &s->crit) < 0)
        return -1;
    if (!isfinite(s->cr.total)) return cd_seterr("the loss is %g", s->cr.total);
    for (size_t l = s->crit.aux_loss ? 0 : L - 1; l < L; l++) {
        nn_set_grad(ctx, o->logits[l], s->dlogits + l * B * Q * K1);
        nn_set_grad(ctx, o->boxes[l], s->dboxes + l * B * Q * 4);
    }
    t = phase_end(s, STEP_LOSS, t);

    nn_backward(ctx);
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
