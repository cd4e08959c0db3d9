/* The training core: AdamW with two parameter groups and global-norm gradient
 * clipping, learning-rate schedules, and checkpoints. The training loop
 * (src/train/loop.c) is built on these.
 *
 *   src/train/optim.c       adamw_*           cl/optim.cl
 *   src/train/schedule.c    lr_*
 *   src/train/checkpoint.c  ckpt_*
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
 * and the AdamW update with lr[group], one kernel launch per group.
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

/* ---- checkpoints (src/train/checkpoint.c) ---------------------------------
 * Format version 1, little-endian, written atomically (a temporary file in the
 * same folder, fsync, rename, fsync of the folder: a kill at any moment leaves
 * the previous checkpoint whole):
 *
 *   header, 136 bytes
 *     char     magic[8]            "CLDETRCK"
 *     u32      version             1
 *     u32      n_params            entries of the table
 *     u64      config_hash         given by the caller
 *     u64      step, epoch         given by the caller
 *     u64      rng[8]              given by the caller (unused words 0)
 *     u64      text_len            bytes of the config text
 *     u64      total               floats of parameter data (params + buffers)
 *     u64      n_trainable         floats of trainable parameters
 *     u64      n_moments           floats in each of m, v (0 or n_trainable)
 *   config text, text_len bytes (the effective config, no terminator)
 *   table, n_params entries of 168 bytes
 *     char     name[112]           NUL-padded
 *     u32      ndim
 *     u32      flags               bit 0 trainable, bit 1 buffer, bits 8-15 group
 *     u64      shape[4]            unused dims 1
 *     u64      off, n              floats, into the data (and into m, v if trainable)
 *   data       f32[total]          the flat parameter buffer as laid out by the registry
 *   optimizer  u64 adam_step, f32 m[n_moments], f32 v[n_moments]
 *   checksum   u64                 cd_fnv1a(CD_FNV_SEED) of every byte before it
 */
#define CKPT_MAGIC "CLDETRCK"
#define CKPT_VERSION 1u
#define CKPT_RNG_WORDS 8

typedef struct {
    uint64_t config_hash;
    uint64_t step, epoch;
    uint64_t rng[CKPT_RNG_WORDS];
    /* ckpt_save: the effective config (may be NULL); ckpt_load / ckpt_read_meta:
     * a malloc'd NUL-terminated copy, for the caller to free */
    char *config_text;
    /* filled by the readers */
    uint32_t version, n_params;
    uint64_t total, n_trainable, n_moments;
} ckpt_meta;

/* Write parameters (ps->data, read back from the device), the optimizer state
 * (opt may be NULL: weights only) and meta to path, atomically. Returns 0 or
 * -1 with cd_errbuf() naming the file and the failed call; on failure the old
 * file at path is untouched. */
int ckpt_save(const char *path, const ckpt_meta *meta, nn_params *ps, const adamw_state *opt, cd_device *dev);

/* Read and check a checkpoint (magic, version, sizes against the file length,
 * the checksum, every parameter's name and shape against ps), then load the
 * parameters into ps (host copy and device) and, when opt is not NULL, the
 * moments and step into opt (the file must hold them, and each parameter's
 * trainable flag must match). meta (may be NULL) receives the header and the
 * config text. Nothing in ps or opt changes unless every check passes.
 * Returns 0 or -1 with cd_errbuf() naming the file and the problem (the first
 * mismatching parameter for a file of another config). */
int ckpt_load(const char *path, ckpt_meta *meta, nn_params *ps, adamw_state *opt, cd_device *dev);

/* Only the header and the config text (checks magic, version and the file
 * length, not the checksum): enough to rebuild the model before ckpt_load. */
int ckpt_read_meta(const char *path, ckpt_meta *meta);

void ckpt_meta_free(ckpt_meta *meta);          /* frees config_text */

/* The model's num_classes from a checkpoint's parameter table (rows of
 * class_embed.bias minus one), without loading it; -1 with cd_errbuf(). */
int ckpt_num_classes(const char *path);

#endif
