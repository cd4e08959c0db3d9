/* The training core: AdamW with two parameter groups and global-norm gradient
 * clipping, and learning-rate schedules. The training step and loop
 * (src/app/step.c, src/app/train.c) are built on these.
 *
 *   src/train/optim.c       adamw_*           cl/optim.cl
 *   src/train/schedule.c    lr_*
 *
 * Everything works on the flat parameter registry of nn.h: parameters in
 * ps->data laid out [trainable backbone | trainable rest | frozen | buffers],
 * gradients in ps->grad over [0, n_trainable), and the two Adam moments in flat
 * buffers of n_trainable floats with the same offsets. */
#ifndef CLDETR_TRAIN_H
#define CLDETR_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "cldetr/device.h"
#include "cldetr/checkpoint.h"
#include "cldetr/nn.h"

/* ---- AdamW (src/train/optim.c, cl/optim.cl) -------------------------------
 * Exactly torch.optim.AdamW (amsgrad off) after torch.nn.utils.clip_grad_norm_:
 *   total = sqrt(sum g^2) over every trainable gradient (one reduction)
 *   c     = min(1, max_norm / (total + 1e-6))      (1 when max_norm <= 0)
 *   g     = c * g                                   (inside the update kernel;
 *                                                    ps->grad itself is not scaled)
 *   p    *= 1 - lr * wd
 *   m     = lerp(m, g, 1 - b1)                      (= b1 m + (1 - b1) g)
 *   v     = b2 v + (1 - b2) g^2
 *   p    -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with lr per group (NN_GROUP_BACKBONE, NN_GROUP_REST) and one weight decay
 * for every trainable parameter (as the official DETR). */
typedef struct {
    double beta1, beta2, eps, weight_decay;
    cd_mem m, v;                /* (n) first and second moments, zero at start */
    size_t n;                   /* = ps->n_trainable */
    uint64_t step;              /* updates applied so far (bias correction t = step + 1) */
    cd_mem norm_buf;            /* (1) scratch for the squared gradient norm */
} adamw_state;

/* Allocate and zero the moments for the trainable parameters of ps
 * (finalized). PyTorch's defaults: beta1 0.9, beta2 0.999, eps 1e-8. */
void adamw_init(adamw_state *st, cd_device *dev, const nn_params *ps,
                double beta1, double beta2, double eps, double weight_decay);
void adamw_free(adamw_state *st, cd_device *dev);

/* The global L2 norm of ps->grad over [0, n_trainable) (one reduction on the
 * device, one read of one float). */
double adamw_grad_norm(adamw_state *st, cd_device *dev, const nn_params *ps);

/* One optimizer step: the gradient norm, clipping to max_norm (<= 0: none),
 * and the AdamW update with lr[group], one kernel per group (and a tail launch
 * for the last few parameters, see cl/optim.cl).
 * *grad_norm (may be NULL) receives the norm before clipping, which is what
 * gets logged. Returns 0, or -1 when the norm is not finite: then nothing is
 * changed (parameters, moments, step) and cd_errbuf() says so; the caller
 * decides whether to stop or skip the batch. */
int adamw_step(adamw_state *st, cd_device *dev, nn_params *ps, const double lr[2], double max_norm,
               double *grad_norm);

/* The update alone, gradients multiplied by grad_scale (the clip factor).
 * Increments st->step. adamw_step = adamw_grad_norm + this. */
void adamw_update(adamw_state *st, cd_device *dev, nn_params *ps, const double lr[2], float grad_scale);

/* The clip factor PyTorch applies for this norm: min(1, max_norm / (norm + 1e-6))
 * in float32 as torch computes it; 1 when max_norm <= 0. */
float adamw_clip_scale(double norm, double max_norm);

/* Plain C reference of adamw_update on n host floats (for tests): t is the
 * 1-based step, lr the group's learning rate. */
void adamw_update_ref(float *p, float *m, float *v, const float *g, size_t n, float grad_scale,
                      double lr, double beta1, double beta2, double eps, double weight_decay, uint64_t t);

/* ---- learning-rate schedules (src/train/schedule.c) -----------------------
 * factor(step, epoch) multiplies each group's base lr:
 *   warmup: (step + 1) / warmup_steps while step < warmup_steps (linear from
 *           near 0 to 1; the first step already moves), then 1;
 *   step:   gamma ^ floor(epoch / lr_drop)   (PyTorch StepLR stepped per epoch,
 *           as the official DETR; lr_drop <= 0: never drops);
 *   cosine: floor + (1 - floor) * (1 + cos(pi * progress)) / 2, progress =
 *           (step - warmup_steps) / (total_steps - warmup_steps) clamped to
 *           [0, 1], floor = min_lr_ratio (0 = down to 0).
 * step counts optimizer steps from 0, epoch counts epochs from 0. */
enum { LR_SCHED_STEP = 0, LR_SCHED_COSINE = 1 };

typedef struct {
    int kind;                   /* LR_SCHED_STEP or LR_SCHED_COSINE */
    double base_lr[2];          /* per group: [NN_GROUP_BACKBONE], [NN_GROUP_REST] */
    long warmup_steps;          /* 0 = none */
    long lr_drop;               /* step: epochs between drops */
    double gamma;               /* step: factor at each drop */
    long total_steps;           /* cosine: optimizer steps of the whole run */
    double min_lr_ratio;        /* cosine: the floor, as a fraction of the base lr */
} lr_schedule;

/* Parse a schedule name ("step" or "cosine"); -1 with cd_errbuf() otherwise. */
int lr_schedule_kind(const char *name);
double lr_factor(const lr_schedule *s, long step, long epoch);
/* lr[g] = base_lr[g] * lr_factor(s, step, epoch) for both groups. */
void lr_at(const lr_schedule *s, long step, long epoch, double lr[2]);

/* The optimizer state as a checkpoint holds it (include/cldetr/checkpoint.h):
 * a view of st's moments and update count, for ckpt_save and ckpt_load. */
static inline ckpt_moments adamw_moments(adamw_state *st) {
    ckpt_moments m = {st->m, st->v, st->n, &st->step};
    return m;
}

#endif
