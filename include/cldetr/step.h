/* One training step, the only one: `cldetr train` runs it in its loop,
 * `cldetr bench` times it and `cldetr step` dumps what it computes, so what is
 * timed and what is checked against PyTorch is what trains (src/app/step.c).
 *
 *   upload the padded batch (images, mask)
 *   forward with a tape            detr_forward (src/nn/detr.c)
 *   read every decoder layer's logits and boxes to the host (the one sync)
 *   Hungarian matching, set loss and its gradient on the host
 *                                   criterion_loss (src/loss/criterion.c)
 *   upload the gradient, backward   nn_backward (src/nn/tape.c)
 *   (several processes: the mean of the losses and the gradients over them)
 *   global-norm clip + AdamW        adamw_step (src/train/optim.c)
 */
#ifndef CLDETR_STEP_H
#define CLDETR_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/layer_stats.h"
#include "cldetr/loss.h"
#include "cldetr/train.h"

enum { STEP_FORWARD, STEP_LOSS, STEP_BACKWARD, STEP_OPTIMIZER, STEP_N_PHASES };
/* the training queries' scratch: the denoising inputs; the outputs split into
 * matching (m) and denoising (d) logits and boxes and their gradients */
enum { TQ_DN_LABEL, TQ_DN_BOX, TQ_ML, TQ_MB, TQ_DML, TQ_DMB, TQ_DL, TQ_DB, TQ_DDL, TQ_DDB, TQ_N_BUFS };
extern const char *const step_phase_names[STEP_N_PHASES];

typedef struct {
    detr_model *model;
    nn_ctx *ctx;                   /* training mode, recording */
    adamw_state *opt;              /* NULL: no update (gradients only, as `cldetr step`) */
    criterion_opts crit;           /* from the config: setup_criterion_opts */
    double clip_max_norm;          /* train.clip_max_norm (<= 0: no clipping) */
    int time_phases;               /* 1: a device sync after each phase, seconds added to phase_s */
    int world;                     /* processes of a data-parallel job (include/cldetr/dist.h); > 1:
                                      the losses and the gradients are averaged over them (one
                                      all-reduce each) before clipping */
    double num_boxes;              /* world > 1: the job's targets over its process count for the next
                                      step, set by the caller (the step makes the box normaliser of it;
                                      crit, which validation uses too, keeps its own) */
    layer_stats *stats;            /* per-layer statistics, or NULL */
    int measure;                   /* 1: measure them in the next step (around its update) */
    double phase_s[STEP_N_PHASES];

    /* what the last step computed */
    detr_out out;                  /* the forward's tensors (valid until the next step) */
    criterion_result cr;           /* losses and matches */
    double grad_norm;              /* before clipping (0 without an optimizer) */
    float *logits, *boxes;         /* host copies (L, B, Q, K1), (L, B, Q, 4) */
    float *dlogits, *dboxes;       /* their gradients, same shapes */

    /* training-only queries (train.query_groups, train.dn_*; docs/accelerators.md) */
    int query_groups, dn_groups;
    double dn_box_noise, dn_label_noise;
    uint64_t seed;                 /* train.seed: the denoising noise follows (seed, step) */
    criterion_opts crit_dn;        /* crit with fixed matching */
    criterion_result cr_dn;        /* the denoising queries' terms (cr: the matching queries', averaged
                                      over the groups, and the total of both) */
    size_t dn_pad;                 /* queries per denoising group in the last step */

    /* scratch, grown on demand */
    float *mask;                   /* (B, H, W) */
    float *grads;                  /* (n_trainable): the gradients on the host, for the all-reduce */
    criterion_target *targets;     /* [B] */
    size_t cap_l, cap_b, cap_m, cap_t;
    struct {                       /* the training queries' host arrays, each with its capacity */
        float *buf[TQ_N_BUFS];
        size_t cap[TQ_N_BUFS];
        criterion_target *mt, *dt;                   /* targets repeated per group */
        size_t cap_t;
    } tq;
} train_step_state;

/* A step state over a built model and context; criterion options and the
 * clip norm from cfg. */
void train_step_init(train_step_state *s, detr_model *m, nn_ctx *ctx, adamw_state *opt, const config *cfg);
void train_step_free(train_step_state *s);

/* One training step on batch b at optimizer step `step` (the dropout streams
 * follow it) with learning rates lr[NN_GROUP_BACKBONE], lr[NN_GROUP_REST].
 * Returns 0, or -1 with cd_errbuf(): a non-finite prediction, loss or gradient
 * norm (then the parameters are unchanged). */
int train_step(train_step_state *s, const data_batch *b, uint64_t step, const double lr[2]);

/* Every decoder layer's logits (L, B, Q, K1) and boxes (L, B, Q, 4) of a
 * forward, read back to the host (blocking). */
void read_decoder_outputs(cd_device *dev, const detr_out *o, float *logits, float *boxes);

#endif
