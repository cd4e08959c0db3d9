/* The training loop: batches from the loader through the one training step
 * (src/app/step.c), with logging, validation, checkpoints, resume and clean
 * stops. Library code: errors come back to the caller (src/cli/train.c) as -1
 * with cd_errbuf(); the progress of the run is logged to stderr and log.txt. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cldetr/chart.h"
#include "cldetr/checkpoint.h"
#include "cldetr/config.h"
#include "cldetr/dist.h"
#include "cldetr/evaluate.h"
#include "cldetr/infer.h"
#include "cldetr/layer_stats.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"
#include "cldetr/tfevents.h"
#include "cldetr/train.h"
#include "cldetr/trainer.h"
#include "cldetr/weights.h"

static volatile sig_atomic_t stop_requested;
static void on_sigint(int sig) {
    (void)sig;
    if (stop_requested) _exit(130);          /* a second Ctrl-C: leave now */
    stop_requested = 1;
}

typedef struct {
    config cfg;
    char run[2048];
    FILE *log, *metrics, *evals;
    int progress;                  /* 2 live line, 1 plain lines, 0 off */
    cd_device *dev;
    detr_model model;
    nn_ctx ctx;
    adamw_state opt;
    lr_schedule sched;
    train_step_state st;           /* the step, and what the last one computed */
    data_dataset *train_ds, *val_ds;
    data_loader *train_ld, *val_ld;
    long step, epoch, batch_in_epoch, last_ckpt_step;
    long last_eval_step;           /* the step of the last row of eval.csv (-1: none) */
    long per_epoch;                /* batches of a training epoch */
    double best;                   /* best validation AP (or -loss without annotations) */
    double elapsed0, t_start;      /* seconds of the run before this process (from the checkpoint); when it began */
    char *config_text;
    int have_model, have_ctx;      /* for the cleanup of a half-opened trainer */
    layer_stats layers;            /* per-layer statistics (log.layers_every > 0) */
    FILE *layers_csv;
    int have_layer_rows;           /* layers.csv holds a row: layers.png can be drawn */
    FILE *jsonl;                   /* metrics.jsonl: the rows of metrics.csv as JSON objects */
    tfevents tb;                   /* TensorBoard event file of this process */
    /* the console line: smoothed loss, step and data-wait times since the last line, ETA */
    double loss_ema, loss_ema_w;   /* exponential moving average of the loss (debiased by its weight) */
    double sec_per_step;           /* moving average of step + wait seconds: the ETA, without validations */
    double step_s, wait_s;         /* sums over the steps since the last logged one */
    long window_steps;
    int lock_fd;                   /* the run folder's lock, held for the whole run (-1: none) */
    /* a data-parallel job (docs/parallel.md): rank 0 alone writes the run folder and validates */
    int rank, world;
    int stop_agreed;               /* world > 1: some process was asked to stop (all stop at the same step) */
    double job_images;             /* world > 1: images of the last global batch */
    long resume_world;             /* processes that wrote the checkpoint resumed from (0: none) */
} trainer;

/* The checkpoint's rng words as the trainer uses them. */
enum { RNG_BATCH_IN_EPOCH = 0, RNG_BEST = 1, RNG_SEED = 2, RNG_ELAPSED = 3,
       RNG_WORLD = 4 /* processes that trained it (0 in older files: 1) */ };
#define LOCK_FILE ".lock"

/* Seconds since the run started, continued across resumes. */
static double run_elapsed(const trainer *t) { return t->elapsed0 + (cd_now() - t->t_start); }

/* The epoch (from 1) the last step ran in: the one just finished at an epoch's end. */
static long epoch_of_last_step(const trainer *t) {
    return t->batch_in_epoch == 0 && t->step > 0 ? t->epoch : t->epoch + 1;
}

static double u64_to_double(uint64_t w) { double d; memcpy(&d, &w, sizeof d); return d; }
static uint64_t double_to_u64(double d) { uint64_t w; memcpy(&w, &d, sizeof w); return w; }

/* Messages go to stderr and to the run's log.txt. */
static void say(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(trainer *t, const char *fmt, ...) {
    va_list ap;
    if (t->rank > 0) return;                 /* rank 0 speaks for the job */
    if (t->progress == 2) fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (t->log) {
        va_start(ap, fmt);
        vfprintf(t->log, fmt, ap);
        va_end(ap);
        fputc('\n', t->log);
        fflush(t->log);
    }
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

/* A stop was asked for: this process's Ctrl-C, or in a job any process's (agreed at each batch). */
static int stopping(const trainer *t) { return t->world > 1 ? t->stop_agreed : stop_requested != 0; }

/* "a/b" into out; a path longer than the buffer is an error, never a silent cut. */
static void join(char *out, size_t n, const char *a, const char *b) {
    if (snprintf(out, n, "%s/%s", a, b) >= (int)n) cd_fatal("path too long: %s/%s", a, b);
}

/* ---- setup ------------------------------------------------------------------- */

static int make_shapes_if_missing(trainer *t) {
    const config_data *dc = &t->cfg.data;
    char ann[1024];
    join(ann, sizeof ann, dc->root, dc->train_ann);
    if (file_exists(ann) || !dc->make_shapes) return 0;
    say(t, "making the shapes dataset in %s (%d train + %d val images, %d px; data.make_shapes = true)",
        dc->root, dc->shapes_train, dc->shapes_val, dc->shapes_size);
    shapes_opts so;
    setup_shapes_opts(&so, &t->cfg);
    so.progress = t->progress > 0;
    return shapes_generate(&so);
}

/* The shapes dataset when data.make_shapes asks for it; in a job, rank 0 makes it while the others wait. */
static int ensure_shapes(trainer *t) {
    if (t->world == 1) return make_shapes_if_missing(t);
    if (!t->cfg.data.make_shapes) return 0;
    if (t->rank == 0 && make_shapes_if_missing(t) < 0) return -1;   /* (the job ends: the others are killed) */
    dist_barrier();
    return 0;
}

static data_loader *make_loader(trainer *t, data_dataset *ds, int train) {
    loader_opts lo;
    augment_opts ao;
    setup_loader_opts(&lo, &t->cfg, train);
    setup_augment_opts(&ao, &t->cfg);
    if (train) { lo.shard = t->rank; lo.shards = t->world; }
    return loader_create(ds, &lo, &ao);
}

/* ---- checkpoints ------------------------------------------------------------- */

static int save_checkpoint(trainer *t, const char *name) {
    if (t->rank > 0) {                       /* rank 0 writes the checkpoints; the weights are the same */
        if (!strcmp(name, "last.ckpt")) t->last_ckpt_step = t->step;
        return 0;
    }
    char path[4096];
    join(path, sizeof path, t->run, name);
    ckpt_meta meta = {0};
    meta.config_hash = config_hash(&t->cfg);
    meta.step = (uint64_t)t->step;
    meta.epoch = (uint64_t)t->epoch;
    meta.rng[RNG_BATCH_IN_EPOCH] = (uint64_t)t->batch_in_epoch;
    meta.rng[RNG_BEST] = double_to_u64(t->best);
    meta.rng[RNG_SEED] = (uint64_t)t->cfg.train.seed;
    meta.rng[RNG_ELAPSED] = double_to_u64(run_elapsed(t));
    if (t->world > 1) meta.rng[RNG_WORLD] = (uint64_t)t->world;   /* (0 reads as 1: files stay as before) */
    meta.config_text = t->config_text;
    ckpt_moments moments = adamw_moments(&t->opt);
    if (ckpt_save(path, &meta, &t->model.params, &moments, t->dev) < 0) {
        /* the run stops: a run that goes on without its checkpoints would lose its work at the next stop */
        char why[1536], space[2400] = "", kept[4400];
        snprintf(why, sizeof why, "%s", cd_errbuf());
        uint64_t need = ckpt_file_bytes(&t->model.params, strlen(t->config_text), 1), avail = 0;
        if (cd_free_bytes(t->run, &avail) == 0)
            snprintf(space, sizeof space, "\n  %s needs %.1f MB free in %s, which has %.1f MB free%s", name,
                     need / 1e6, t->run, avail / 1e6, avail < need ? ": free some space" : "");
        if (t->last_ckpt_step >= 0)
            snprintf(kept, sizeof kept, "the previous %s/last.ckpt (step %ld) is kept whole; continue with "
                     "`cldetr train --resume %s`", t->run, t->last_ckpt_step, t->run);
        else
            snprintf(kept, sizeof kept, "no checkpoint of this run was written");
        return cd_seterr("training stopped at step %ld: %s%s\n  %s", t->step, why, space, kept);
    }
    if (!strcmp(name, "last.ckpt")) t->last_ckpt_step = t->step;
    return 0;
}

static void on_fatal(void *arg) {
    trainer *t = arg;
    if (t->last_ckpt_step >= 0)
        fprintf(stderr, "the last good checkpoint is %s/last.ckpt (step %ld); continue with "
                        "`cldetr train --resume %s`\n", t->run, t->last_ckpt_step, t->run);
}

/* ---- validation ---------------------------------------------------------------- */

/* Validation of the model at t->step; -1 (the run stops) only when best.ckpt cannot be written. */
static int validate(trainer *t, int final) {
    if (t->rank > 0) return 0;                   /* rank 0 validates on the whole validation set */
    if (t->step == t->last_eval_step) return 0;    /* done before the resume (eval.csv has it) */
    t->last_eval_step = t->step;
    infer_dataset_result r;
    if (infer_dataset(&r, &t->model, &t->ctx, t->val_ds, t->val_ld, &t->st.crit, 0, t->progress == 2) < 0) {
        say(t, "warning: validation failed: %s", cd_errbuf());
        return 0;
    }
    const double *s = r.coco.stats;
    long epoch = epoch_of_last_step(t);
    if (r.have_coco) {
        say(t, "validation at step %ld (epoch %ld, %zu images, %.1f s): loss %.4f  AP %.3f  AP50 %.3f  AP75 %.3f",
            t->step, epoch, r.n_images, r.seconds, r.loss, s[COCO_AP], s[COCO_AP50], s[COCO_AP75]);
        fprintf(t->evals, "%ld,%ld,%.6g", t->step, epoch, r.loss);
        for (int i = 0; i < COCO_N_STATS; i++) fprintf(t->evals, ",%.6f", s[i]);
        fprintf(t->evals, ",%.1f,%.2f\n", run_elapsed(t), r.seconds);
        if (t->tb.f) {
            static const char *tags[] = {"val/AP", "val/AP50", "val/AP75", "val/AP_small", "val/AP_medium",
                                         "val/AP_large", "val/AR1", "val/AR10", "val/AR100"};
            for (int i = 0; i < (int)CD_ARRAY_LEN(tags); i++) tfevents_scalar(&t->tb, tags[i], t->step, s[i]);
            tfevents_scalar(&t->tb, "val/loss", t->step, r.loss);
            tfevents_flush(&t->tb);
        }
        fflush(t->evals);
        char path[4096];
        join(path, sizeof path, t->run, "eval.json");
        coco_eval_write_json(path, &r.coco);
        join(path, sizeof path, t->run, "val_results.json");
        eval_write_results(path, r.dets, r.n_dets);
        if (final) {                      /* the AP table, as pycocotools prints it */
            coco_eval_print_summary(stdout, &r.coco);
            if (t->log) coco_eval_print_summary(t->log, &r.coco);
        }
    }
    double score = r.have_coco ? s[COCO_AP] : -r.loss;
    if (score > t->best) {
        t->best = score;
        if (save_checkpoint(t, "best.ckpt") < 0) { infer_dataset_result_free(&r); return -1; }
    }
    if (t->cfg.log.chart) {
        char path[4096];
        join(path, sizeof path, t->run, "loss.png");
        if (chart_run_losses(t->run, path) < 0) say(t, "warning: loss.png: %s", cd_errbuf());
        join(path, sizeof path, t->run, "ap.png");
        if (r.have_coco && chart_run_ap(t->run, path) < 0) say(t, "warning: ap.png: %s", cd_errbuf());
        join(path, sizeof path, t->run, "layers.png");
        const char *runs[1] = {t->run};
        if (t->have_layer_rows && layer_stats_chart(runs, 1, path) < 0) say(t, "warning: layers.png: %s", cd_errbuf());
    }
    infer_dataset_result_free(&r);
    return 0;
}

/* The per-layer statistics of the last step: layers.csv and TensorBoard (layers/GROUP/QUANTITY). */
static void log_layers(trainer *t) {
    layer_stats_write(&t->layers, t->layers_csv, t->step);
    t->have_layer_rows = 1;
    if (!t->tb.f) return;
    static const char *q[] = {"weight_rms", "grad_rms", "update_ratio_log10", "act_mean", "act_std", "act_zero_frac"};
    for (int k = 0; k < t->layers.n_groups; k++) {
        const layer_group_stats *g = &t->layers.g[k];
        double v[] = {g->weight_rms, g->grad_rms, g->update_ratio_log10, g->act_mean, g->act_std, g->act_zero_frac};
        for (int j = 0; j < 6; j++) {
            if (!isfinite(v[j])) continue;
            char tag[128];
            snprintf(tag, sizeof tag, "layers/%s/%s", g->name, q[j]);
            tfevents_scalar(&t->tb, tag, t->step, v[j]);
        }
    }
    tfevents_flush(&t->tb);
}

/* "1:05:10" or "4m10s" */
static void fmt_duration(char *buf, size_t n, double s) {
    long t = s > 0 && isfinite(s) ? (long)(s + 0.5) : 0;
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* A logged step: a row of metrics.csv and metrics.jsonl, the TensorBoard
 * scalars, and the console line (under 80 columns):
 *   step 1250/7500 17% epoch 6 loss 7.104 (7.420) 95+3ms 312MiB 4m10s ETA 20m51s
 * with the loss smoothed in brackets, the mean step time + data wait since
 * the last line, the device memory's peak, the run's time, and the ETA from
 * the moving average of step times (validations do not make it jump). */
static void log_step(trainer *t, const double lr[2], double ips, long total_steps) {
    if (t->rank > 0) return;                     /* rank 0 logs the job's (averaged) losses */
    const criterion_result *cr = &t->st.cr;
    double grad_norm = t->st.grad_norm, elapsed = run_elapsed(t);
    const criterion_layer_terms *f = &cr->layer[cr->L - 1];
    double card = f->cardinality_error;
    long epoch = epoch_of_last_step(t);
    fprintf(t->metrics, "%ld,%ld,%.6g,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.3f,%.6g,%.2f,%.1f\n", t->step, epoch,
            lr[NN_GROUP_REST], lr[NN_GROUP_BACKBONE], cr->total, f->loss_ce, f->loss_bbox, f->loss_giou,
            cr->class_error, card, grad_norm, ips, elapsed);
    fflush(t->metrics);
    double step_ms = 1e3 * t->step_s / CD_MAX(t->window_steps, 1), wait_ms = 1e3 * t->wait_s / CD_MAX(t->window_steps, 1);
    double mib = (double)t->dev->bytes_peak / 1048576.0, smooth = t->loss_ema / CD_MAX(t->loss_ema_w, 1e-12);
    if (t->jsonl) {
        fprintf(t->jsonl, "{\"step\": %ld, \"epoch\": %ld, \"lr\": %.6g, \"lr_backbone\": %.6g, \"loss\": %.6f, "
                          "\"loss_smoothed\": %.6f, \"loss_ce\": %.6f, \"loss_bbox\": %.6f, \"loss_giou\": %.6f, "
                          "\"class_error\": %.3f, \"cardinality_error\": %.3f, \"grad_norm\": %.6g, "
                          "\"images_per_s\": %.2f, \"step_ms\": %.2f, \"data_wait_ms\": %.2f, \"device_peak_mib\": %.1f, "
                          "\"time_s\": %.1f}\n", t->step, epoch, lr[NN_GROUP_REST], lr[NN_GROUP_BACKBONE], cr->total,
                smooth, f->loss_ce, f->loss_bbox, f->loss_giou, cr->class_error, card, isfinite(grad_norm) ? grad_norm : -1,
                ips, step_ms, wait_ms, mib, elapsed);
        fflush(t->jsonl);
    }
    if (t->tb.f) {
        static const char *tags[] = {"train/loss", "train/loss_smoothed", "train/loss_ce", "train/loss_bbox",
                                     "train/loss_giou", "train/class_error", "train/cardinality_error", "train/lr",
                                     "train/lr_backbone", "train/grad_norm", "train/images_per_s", "train/step_ms",
                                     "train/data_wait_ms"};
        double v[] = {cr->total, smooth, f->loss_ce, f->loss_bbox, f->loss_giou, cr->class_error, card,
                      lr[NN_GROUP_REST], lr[NN_GROUP_BACKBONE], grad_norm, ips, step_ms, wait_ms};
        for (size_t k = 0; k < CD_ARRAY_LEN(tags); k++) tfevents_scalar(&t->tb, tags[k], t->step, v[k]);
        tfevents_flush(&t->tb);
    }
    t->step_s = t->wait_s = 0;
    t->window_steps = 0;
    if (!t->progress) return;
    char line[256], el[32], eta[32];
    fmt_duration(el, sizeof el, elapsed);
    fmt_duration(eta, sizeof eta, (double)(total_steps - t->step) * t->sec_per_step);
    snprintf(line, sizeof line, "step %ld/%ld %.0f%% epoch %ld loss %.3f (%.3f) %.0f+%.0fms %.0fMiB %s ETA %s",
             t->step, total_steps, 100.0 * (double)t->step / (double)CD_MAX(total_steps, 1), epoch, cr->total, smooth,
             step_ms, wait_ms, mib, el, eta);
    if (t->progress == 2) { fprintf(stderr, "\r\033[K%s", line); fflush(stderr); }
    else fprintf(stderr, "%s\n", line);
    if (t->log) fprintf(t->log, "%s\n", line);
}

/* ---- opening and closing ------------------------------------------------------- */

/* The config: a fresh run from the INI file, or the run folder's own config. */
static int open_config(trainer *t, const train_args *a, char *cfg_file, size_t n) {
    const char *cfg_path = a->config_path;
    char path[4096];
    if (a->resume_dir) {
        snprintf(t->run, sizeof t->run, "%s", a->resume_dir);
        size_t len = strlen(t->run);
        while (len > 1 && t->run[len - 1] == '/') t->run[--len] = '\0';
        join(path, sizeof path, t->run, "config.ini");
        if (!file_exists(path)) return cd_seterr("%s is not a run folder (no config.ini)", t->run);
        cfg_path = path;
    }
    snprintf(cfg_file, n, "%s", cfg_path);
    if (config_load(&t->cfg, cfg_file, a->sets, a->n_sets) < 0) return -1;
    const char *prog = t->cfg.log.progress;
    t->progress = !strcmp(prog, "off") ? 0 : !strcmp(prog, "plain") ? 1 : (isatty(2) ? 2 : 1);
    return 0;
}

static int open_data(trainer *t, size_t *per_epoch) {
    if (ensure_shapes(t) < 0) return -1;
    if (!(t->train_ds = setup_open_split(&t->cfg, "train"))) return -1;
    if (data_num_boxes(t->train_ds) == 0) {
        char ann[2 * CFG_STR_LEN + 2];
        snprintf(ann, sizeof ann, "%s/%s", t->cfg.data.root, t->cfg.data.train_ann);
        if (strcmp(t->cfg.data.on_bad_sample, "skip"))
            return cd_seterr("%s: the training set has no boxes (its \"annotations\" list is empty, or every box "
                             "was left out): DETR would learn only 'no object'. Add annotations, or set "
                             "data.on_bad_sample=skip to train on it anyway", ann);
        say(t, "warning: the training set has no boxes: DETR will learn only 'no object' (%s has no usable box)", ann);
    }
    if (!(t->val_ds = setup_open_split(&t->cfg, "val"))) return -1;
    t->train_ld = make_loader(t, t->train_ds, 1);
    if (t->rank == 0) t->val_ld = make_loader(t, t->val_ds, 0);   /* rank 0 alone validates */
    if (!t->train_ld || (t->rank == 0 && !t->val_ld)) return -1;
    *per_epoch = loader_num_batches(t->train_ld);
    if (*per_epoch == 0) {
        if (t->world > 1)
            return cd_seterr("the training set (%zu images) holds no full global batch of %d processes x %d; lower "
                             "train.batch_size or the process count", data_size(t->train_ds), t->world,
                             t->cfg.train.batch_size);
        return cd_seterr("the training set (%zu images) holds no full batch of %d; lower train.batch_size",
                         data_size(t->train_ds), t->cfg.train.batch_size);
    }
    return 0;
}

static int open_model(trainer *t, detr_opts *mo, int fine_tune) {
    t->dev = cd_open_local(setup_device_spec(&t->cfg), t->cfg.device.profile, dist_local_rank());
    if (!t->dev) return -1;
    t->dev->oom_hint = "lower train.batch_size, the input size (augment.scales, augment.max_size) or the model "
                       "(model.hidden_dim, model.dim_feedforward, model.num_queries)";
    int classes = data_num_classes(t->train_ds);
    if (setup_detr_opts(mo, &t->cfg, classes) < 0 || detr_build(&t->model, mo, t->dev, (uint64_t)t->cfg.train.seed) < 0)
        return -1;
    t->have_model = 1;
    setup_step_memory mem;             /* a model too big for the device is refused before it starts */
    setup_estimate_step_memory(&mem, &t->model, &t->cfg, t->dev);
    double need = (double)(mem.activations + mem.activation_grads + mem.params), have = (double)t->dev->info.global_mem;
    if (need > have)
        return cd_seterr("a training step needs about %.1f GiB of device memory (activations %.1f, their gradients %.1f, "
                         "parameters with gradients and Adam %.1f GiB at batch %zu of %zux%zu) but %s has %.1f GiB: %s",
                         need / 1073741824.0, mem.activations / 1073741824.0, mem.activation_grads / 1073741824.0,
                         mem.params / 1073741824.0, mem.B, mem.H, mem.W, t->dev->info.name, have / 1073741824.0,
                         t->dev->oom_hint);
    if (mo->num_classes < classes)
        return cd_seterr("model.num_classes = %d but the training set has labels up to %d; set model.num_classes = 0 "
                         "(from the data) or >= %d", mo->num_classes, classes - 1, classes);
    if (fine_tune && t->cfg.model.init[0] && weights_init_model(&t->model, t->dev, t->cfg.model.init, stderr) < 0)
        return -1;
    nn_ctx_init(&t->ctx, t->dev, &t->model.params);
    t->have_ctx = 1;
    t->ctx.training = 1;
    /* dropout: each process of a job its own streams (rank 0 the single process's), not N copies of one */
    t->ctx.seed = (uint64_t)t->cfg.train.seed + (uint64_t)t->rank * 0x9E3779B97F4A7C15ull;
    adamw_init(&t->opt, t->dev, &t->model.params, 0.9, 0.999, 1e-8, t->cfg.train.weight_decay);
    train_step_init(&t->st, &t->model, &t->ctx, &t->opt, &t->cfg);
    t->st.world = t->world;
    return 0;
}

/* The run folder's lock, held until trainer_close: a second process on the
 * same folder is refused with our pid, written into the lock file when
 * note_pid (later with note_pid_of_lock for a resume that may find nothing to do). */
static int note_pid_of_lock(trainer *t) {
    if (cd_lock_note_pid(t->lock_fd) == 0) return 0;
    return cd_seterr("cannot write in the run folder %s (its lock file %s): %s", t->run, LOCK_FILE, strerror(errno));
}

static int lock_run_folder(trainer *t, int note_pid) {
    char path[4096];
    join(path, sizeof path, t->run, LOCK_FILE);
    long holder = 0;
    t->lock_fd = cd_lock_file(path, &holder);
    if (t->lock_fd == -2) {
        char who[64] = "another process";
        if (holder > 0) snprintf(who, sizeof who, "another process (pid %ld)", holder);
        return cd_seterr("run folder %s is in use: %s is training in it and holds its lock %s; wait for it to "
                         "finish or stop it (Ctrl-C%s), then resume with `cldetr train --resume %s`", t->run, who,
                         path, holder > 0 ? ", or kill the pid" : "", t->run);
    }
    if (t->lock_fd < 0) return cd_seterr("cannot lock the run folder %s (%s): %s", t->run, path, strerror(errno));
    return note_pid ? note_pid_of_lock(t) : 0;
}

/* Processes that wrote a checkpoint (older files: 0, one). */
static long ckpt_world(const ckpt_meta *meta) { return meta->rng[RNG_WORLD] ? (long)meta->rng[RNG_WORLD] : 1; }

/* Where this job continues the checkpoint's epoch. batch_in_epoch counts the
 * global batches of the processes that wrote it; under another process count
 * the global batches are other ones, so the epoch goes on at the batch that
 * holds the first image not yet seen (whole batches: up to a batch of images
 * is seen again). */
static long resume_batch_in_epoch(const trainer *t, const ckpt_meta *meta) {
    long bie = (long)meta->rng[RNG_BATCH_IN_EPOCH], old = ckpt_world(meta);
    if (old == t->world || meta->rng[RNG_BATCH_IN_EPOCH] > ((uint64_t)1 << 40)) return bie;   /* (a damaged one: refused) */
    return bie * old / t->world;          /* images bie * old * batch over a global batch of world * batch */
}

/* The header of a run's last.ckpt, its rng words checked against this run's
 * data: the values a resume starts from. */
static int read_resume_meta(trainer *t, ckpt_meta *meta) {
    char path[4096];
    join(path, sizeof path, t->run, "last.ckpt");
    if (ckpt_read_meta(path, meta) < 0) {
        char why[2048];
        snprintf(why, sizeof why, "%s", cd_errbuf());
        return cd_seterr("cannot resume: %s", why);
    }
    if (meta->rng[RNG_WORLD] > 1000000) {
        char p2[4200];
        snprintf(p2, sizeof p2, "%s", path);
        ckpt_meta_free(meta);
        return cd_seterr("cannot resume: checkpoint %s: its header field processes (rng[4]) = %" PRIu64 " is out of "
                         "range (the file is damaged)", p2, meta->rng[RNG_WORLD]);
    }
    uint64_t bie = (uint64_t)resume_batch_in_epoch(t, meta);
    double best = u64_to_double(meta->rng[RNG_BEST]), elapsed = u64_to_double(meta->rng[RNG_ELAPSED]);
    const char *bad = NULL, *hint = "the file is damaged";
    char val[64];
    if (bie > (uint64_t)t->per_epoch) {
        bad = "batch_in_epoch (rng[0])";
        snprintf(val, sizeof val, "%" PRIu64 " (an epoch has %ld batch%s)", bie, t->per_epoch,
                 t->per_epoch == 1 ? "" : "es");
        hint = "were the dataset or train.batch_size changed since the checkpoint?";
    } else if (isnan(best)) {
        bad = "best score (rng[1])";
        snprintf(val, sizeof val, "NaN");
    } else if (!(elapsed >= 0 && elapsed < 1e15)) {
        bad = "elapsed seconds (rng[3])";
        snprintf(val, sizeof val, "%g", elapsed);
    }
    ckpt_meta_free(meta);
    if (bad)
        return cd_seterr("cannot resume: checkpoint %s: its header field %s = %s is out of range (%s)", path, bad,
                         val, hint);
    return 0;
}

/* config.ini: every key, then the class names of the training set (comments). */
static int save_config(trainer *t, const char *path, const char *classes) {
    if (config_save(&t->cfg, path) < 0) return -1;
    if (!classes) return 0;
    FILE *f = fopen(path, "a");
    if (!f || fputs(classes, f) < 0 || fclose(f) != 0) return cd_seterr("cannot write %s: %s", path, strerror(errno));
    return 0;
}

/* A new run folder with its config.ini, or the state of the run to resume;
 * classes (may be NULL) ends config.ini (the class names, as comments). */
static int open_run_folder_with(trainer *t, const char *cfg_file, int resume, int n_sets, const char *classes) {
    char path[4096];
    if (resume) {                       /* (the folder is locked: train_run) */
        join(path, sizeof path, t->run, "last.ckpt");
        ckpt_meta meta = {0};
        ckpt_moments moments = adamw_moments(&t->opt);
        if (ckpt_load(path, &meta, &t->model.params, &moments, t->dev) < 0) {
            char why[2048];
            snprintf(why, sizeof why, "%s", cd_errbuf());
            return cd_seterr("cannot resume: %s", why);
        }
        t->step = (long)meta.step;
        t->epoch = (long)meta.epoch;
        t->batch_in_epoch = resume_batch_in_epoch(t, &meta);
        t->resume_world = ckpt_world(&meta);
        t->best = u64_to_double(meta.rng[RNG_BEST]);
        t->elapsed0 = u64_to_double(meta.rng[RNG_ELAPSED]);
        t->last_ckpt_step = t->step;
        ckpt_meta_free(&meta);
        if (n_sets == 0 || t->rank > 0) return 0;
        /* the overrides of the resume (more epochs, another lr) hold for the rest of the run and its next resume */
        char tmp[4200];
        join(path, sizeof path, t->run, "config.ini");
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        if (save_config(t, tmp, classes) < 0) return -1;
        if (rename(tmp, path) != 0) return cd_seterr("cannot replace %s: %s", path, strerror(errno));
        return 0;
    }
    char name[1200];
    if (t->cfg.train.name[0]) join(name, sizeof name, ".", t->cfg.train.name);
    else {
        const char *base = strrchr(cfg_file, '/');
        base = base ? base + 1 : cfg_file;
        char stem[1200];
        if (snprintf(stem, sizeof stem, "%s", base) >= (int)sizeof stem) return cd_seterr("config name too long");
        char *dot = strrchr(stem, '.');
        if (dot) *dot = '\0';
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        if (snprintf(name, sizeof name, "./%s-%04d%02d%02d-%02d%02d%02d", stem, tmv.tm_year + 1900, tmv.tm_mon + 1,
                     tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec) >= (int)sizeof name)
            return cd_seterr("run name too long");
    }
    join(t->run, sizeof t->run, t->cfg.train.out_dir, name + 2);
    if (t->rank > 0) return 0;                  /* rank 0 makes the run folder and writes in it */
    join(path, sizeof path, t->run, "last.ckpt");
    if (cd_mkdir_p(t->run) < 0)
        return cd_seterr("cannot create the run folder %s: %s", t->run, strerror(errno));
    if (lock_run_folder(t, 0) < 0) return -1;    /* a run in progress there: named with its pid */
    if (file_exists(path))
        return cd_seterr("%s already holds a run; resume it with `cldetr train --resume %s` or choose another "
                         "train.name", t->run, t->run);
    if (note_pid_of_lock(t) < 0) return -1;
    join(path, sizeof path, t->run, "config.ini");
    return save_config(t, path, classes);
}

/* The effective config with the class names (what checkpoints keep), and the run folder. */
static int open_run_folder(trainer *t, const char *cfg_file, int resume, int n_sets) {
    size_t cap = 1 << 16;
    t->config_text = cd_xcalloc(cap, 1);
    FILE *mf = fmemopen(t->config_text, cap - 1, "w");
    if (mf) { config_write(&t->cfg, mf); fclose(mf); }
    char *classes = setup_class_names_comment(&t->cfg, t->model.o.num_classes);
    if (classes && strlen(t->config_text) + strlen(classes) < cap - 1) strcat(t->config_text, classes);
    int rc = open_run_folder_with(t, cfg_file, resume, n_sets, classes);
    free(classes);
    return rc;
}

#define METRICS_HEADER "step,epoch,lr,lr_backbone,loss,loss_ce,loss_bbox,loss_giou,class_error," \
                       "cardinality_error,grad_norm,images_per_s,time_s\n"
#define EVAL_HEADER "step,epoch,val_loss,AP,AP50,AP75,AP_small,AP_medium,AP_large,AR1,AR10,AR100," \
                    "AR_small,AR_medium,AR_large,time_s,val_seconds\n"
/* eval.csv before val_seconds: its time_s was the validation's duration */
#define EVAL_HEADER_V0 "step,epoch,val_loss,AP,AP50,AP75,AP_small,AP_medium,AP_large,AR1,AR10,AR100," \
                       "AR_small,AR_medium,AR_large,time_s\n"

/* On resume: keep the header and the rows of a run's CSV file up to the
 * checkpoint's step; rows logged after it (a run killed before its next
 * checkpoint) are done again and would repeat, and a last line cut by the
 * kill is dropped. An eval.csv of the old layout gets the new header, its
 * durations moved to val_seconds (time_s unknown: nan). Rewritten through a
 * temporary file and a rename. */
enum { ROWS_CSV, ROWS_EVAL_CSV, ROWS_JSONL };
static int keep_rows_upto(const char *path, long step, int kind, long *last_kept) {
    int is_eval = kind == ROWS_EVAL_CSV;
    *last_kept = -1;
    if (!file_exists(path)) return 0;
    size_t len;
    char *text = cd_read_file(path, &len);
    if (!text) return -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) { free(text); return cd_seterr("cannot write %s: %s", tmp, strerror(errno)); }
    char *line = text, *end;
    int first = kind != ROWS_JSONL, old_layout = 0;   /* metrics.jsonl has no header */
    for (; (end = strchr(line, '\n')) != NULL; line = end + 1) {
        *end = '\0';
        if (first) {
            first = 0;
            old_layout = is_eval && strlen(line) + 1 == strlen(EVAL_HEADER_V0) &&
                         !strncmp(line, EVAL_HEADER_V0, strlen(line));
            fputs(old_layout ? EVAL_HEADER : line, f);
            if (!old_layout) fputc('\n', f);
            continue;
        }
        char *num = kind == ROWS_JSONL && !strncmp(line, "{\"step\": ", 9) ? line + 9 : line, *num_end;
        long s = strtol(num, &num_end, 10);
        if (num_end == num || *num_end != ',' || s > step) continue;
        *last_kept = s;
        if (old_layout) {
            char *last = strrchr(line, ',');
            *last = '\0';
            fprintf(f, "%s,nan,%s\n", line, last + 1);
        } else {
            fprintf(f, "%s\n", line);
        }
    }
    free(text);                                 /* (a last line without its newline is dropped) */
    if (ferror(f) | fclose(f)) { remove(tmp); return cd_seterr("cannot write %s: %s", tmp, strerror(errno)); }
    if (rename(tmp, path) != 0) { remove(tmp); return cd_seterr("cannot replace %s: %s", path, strerror(errno)); }
    return 0;
}

/* log.txt, metrics.csv and eval.csv, appended to on resume (the CSV files cut
 * back to the checkpoint's step first). */
static int open_logs(trainer *t, int resume) {
    char path[4096];
    if (resume) {
        long last;
        join(path, sizeof path, t->run, "metrics.csv");
        if (keep_rows_upto(path, t->step, ROWS_CSV, &last) < 0) return -1;
        join(path, sizeof path, t->run, "metrics.jsonl");
        if (keep_rows_upto(path, t->step, ROWS_JSONL, &last) < 0) return -1;
        join(path, sizeof path, t->run, "eval.csv");
        if (keep_rows_upto(path, t->step, ROWS_EVAL_CSV, &t->last_eval_step) < 0) return -1;
    }
    join(path, sizeof path, t->run, "log.txt");
    t->log = fopen(path, "a");
    join(path, sizeof path, t->run, "metrics.csv");
    int fresh = !file_exists(path);
    t->metrics = fopen(path, "a");
    if (t->metrics && fresh) fputs(METRICS_HEADER, t->metrics);
    join(path, sizeof path, t->run, "eval.csv");
    fresh = !file_exists(path);
    t->evals = fopen(path, "a");
    if (t->evals && fresh) fputs(EVAL_HEADER, t->evals);
    join(path, sizeof path, t->run, "metrics.jsonl");
    t->jsonl = fopen(path, "a");
    if (!t->log || !t->metrics || !t->evals || !t->jsonl)
        return cd_seterr("cannot write in the run folder %s: %s", t->run, strerror(errno));
    return tfevents_open(&t->tb, t->run);
}

/* layers.csv and the per-layer statistics, when log.layers_every > 0 (on
 * resume, its rows cut to the checkpoint's step as metrics.csv's). */
static int open_layer_log(trainer *t, int resume) {
    if (t->cfg.log.layers_every <= 0) return 0;
    char path[4096];
    join(path, sizeof path, t->run, "layers.csv");
    long last = -1;
    if (resume && keep_rows_upto(path, t->step, ROWS_CSV, &last) < 0) return -1;
    t->have_layer_rows = last >= 0;
    int fresh = !file_exists(path);
    if (!(t->layers_csv = fopen(path, "a"))) return cd_seterr("cannot write %s: %s", path, strerror(errno));
    if (fresh) fprintf(t->layers_csv, "%s\n", LAYER_STATS_HEADER);
    layer_stats_init(&t->layers, &t->model.params, t->dev);
    t->st.stats = &t->layers;
    return 0;
}

static void trainer_close(trainer *t) {
    if (t->dev && t->cfg.device.profile) cd_profile_print(t->dev, stderr);
    train_step_free(&t->st);
    if (t->layers_csv) { fclose(t->layers_csv); layer_stats_free(&t->layers, t->dev); }
    loader_destroy(t->train_ld);
    loader_destroy(t->val_ld);
    data_close(t->train_ds);
    data_close(t->val_ds);
    if (t->dev) adamw_free(&t->opt, t->dev);
    if (t->have_ctx) nn_ctx_free(&t->ctx);
    if (t->have_model) detr_free(&t->model, t->dev);
    cd_close(t->dev);
    if (t->log) fclose(t->log);
    if (t->metrics) fclose(t->metrics);
    if (t->evals) fclose(t->evals);
    if (t->jsonl) fclose(t->jsonl);
    tfevents_close(&t->tb);
    free(t->config_text);
    cd_unlock_file(t->lock_fd);
    t->lock_fd = -1;
}

/* ---- the loop --------------------------------------------------------------------- */

/* A job's processes agree before each batch and at each epoch's end (got:
 * loader_next's 1 or 0), in one all-reduce of (has a batch, asked to stop,
 * targets, images): every process stops at the same step, the loss is
 * normalised by the targets of the whole global batch as in the official
 * code (summed over the processes, over their count, at least 1), and a
 * process whose epoch ended early (a share of bad images, all skipped) is an
 * error, never a silent mismatch of the processes' collectives. */
static int agree(trainer *t, int got, const data_batch *b) {
    if (t->world == 1) return 0;
    double v[4] = {got == 1, stop_requested != 0, 0, got == 1 ? (double)b->B : 0};
    for (size_t i = 0; got == 1 && i < b->B; i++) v[2] += (double)b->targets[i].n;
    dist_allreduce_sum_f64(v, 4);
    if (v[0] != 0 && v[0] != t->world)
        return cd_seterr("%s %s a batch at step %ld (epoch %ld) but %.0f of the %d processes %s: their epochs "
                         "differ in length (was a whole share of a batch bad and skipped? data.on_bad_sample); "
                         "fix or remove the bad images and resume", dist_who(), got == 1 ? "has" : "has no",
                         t->step, t->epoch + 1, got == 1 ? t->world - v[0] : v[0], t->world,
                         got == 1 ? "have none" : "have one");
    t->stop_agreed = v[1] > 0;
    t->st.num_boxes = v[2] / t->world;        /* (the step clamps it at 1 after counting its groups) */
    t->job_images = v[3];
    return 0;
}

/* Train until total_steps, the last epoch or a stop request. */
static int train_loop(trainer *t, long total_steps) {
    double t_start = cd_now(), t_window = t_start, t_mark = t_start;
    t->t_start = t_start;
    long imgs_window = 0;
    int eval_every = t->cfg.train.eval_every, ckpt_every = t->cfg.train.checkpoint_every;
    while (t->step < total_steps && t->epoch < t->cfg.train.epochs && !stopping(t)) {
        loader_begin_epoch(t->train_ld, (uint64_t)t->epoch);
        const data_batch *b;
        int got;
        long skip = t->batch_in_epoch;          /* resuming mid-epoch: the loader order is deterministic */
        while ((got = loader_next(t->train_ld, &b)) == 1 && skip > 0) skip--;
        for (; got == 1; got = loader_next(t->train_ld, &b)) {
            if (agree(t, got, b) < 0) return -1;
            if (stopping(t)) break;                 /* (a job: a process was asked to stop) */
            double t0 = cd_now(), lr[2];
            t->wait_s += t0 - t_mark;
            lr_at(&t->sched, t->step, t->epoch, lr);
            int every = t->cfg.log.layers_every;
            t->st.measure = t->layers_csv && (t->step + 1) % every == 0;
            if (train_step(&t->st, b, (uint64_t)t->step, lr) < 0) {
                char why[1024], kept[1200] = "";
                snprintf(why, sizeof why, "%s", cd_errbuf());
                if (t->last_ckpt_step >= 0)
                    snprintf(kept, sizeof kept, "\n  the last good checkpoint is %s/last.ckpt (step %ld)", t->run,
                             t->last_ckpt_step);
                return cd_seterr("training stopped at step %ld (epoch %ld): %s\n  advice: lower train.lr or "
                                 "train.clip_max_norm, and check the data (cldetr eval, data.on_bad_sample)%s",
                                 t->step, t->epoch + 1, why, kept);
            }
            double dt = cd_now() - t0, dw = t0 - t_mark;
            t->step_s += dt;
            t->window_steps++;
            t->sec_per_step = t->sec_per_step > 0 ? 0.95 * t->sec_per_step + 0.05 * (dt + dw) : dt + dw;
            t->loss_ema = 0.98 * t->loss_ema + 0.02 * t->st.cr.total;
            t->loss_ema_w = 0.98 * t->loss_ema_w + 0.02;
            t->step++;
            t->batch_in_epoch++;
            imgs_window += t->world > 1 ? (long)t->job_images : (long)b->B;
            if (t->st.measure) log_layers(t);
            if (t->step % t->cfg.log.every == 0 || t->step == total_steps) {
                double now = cd_now();
                log_step(t, lr, imgs_window / CD_MAX(now - t_window, 1e-9), total_steps);
                t_window = now;
                imgs_window = 0;
            }
            t_mark = cd_now();
            if (t->step >= total_steps || (t->world == 1 && stop_requested)) break;
        }
        if (got < 0) return cd_seterr("training stopped at step %ld: %s", t->step, cd_errbuf());
        if (got == 0 && agree(t, got, NULL) < 0) return -1;
        if (got == 0) {            /* the epoch ended */
            t->epoch++;
            t->batch_in_epoch = 0;
            int last = t->step >= total_steps || t->epoch >= t->cfg.train.epochs;
            if (ckpt_every > 0 && t->epoch % ckpt_every == 0 && !last && save_checkpoint(t, "last.ckpt") < 0)
                return -1;
            if (eval_every > 0 && t->epoch % eval_every == 0 && !last && validate(t, 0) < 0) return -1;
            t_mark = cd_now();      /* a validation is no data wait */
        }
    }
    if (t->progress == 2) fputc('\n', stderr);
    if (save_checkpoint(t, "last.ckpt") < 0) return -1;
    if (stopping(t)) {
        say(t, "interrupted at step %ld: checkpoint written; continue with `cldetr train --resume %s`", t->step, t->run);
        return TRAIN_INTERRUPTED;
    }
    say(t, "done: %ld steps in %.1f min; validation of the final model:", t->step, (cd_now() - t_start) / 60.0);
    if (validate(t, 1) < 0) return -1;
    say(t, "run folder %s: config.ini, metrics.csv, eval.csv, eval.json, log.txt, loss.png, ap.png, last.ckpt, "
           "best.ckpt", t->run);
    return TRAIN_DONE;
}

/* Which process took which device, in one line each (gathered to rank 0). */
static void say_processes(trainer *t) {
    enum { W = 200 };
    char line[W], *all = t->rank == 0 ? cd_xcalloc((size_t)t->world, W) : NULL;
    snprintf(line, sizeof line, "rank %d (local rank %d on %.60s): device %d, %.100s", t->rank, dist_local_rank(),
             dist_host(), t->dev->info.index, t->dev->info.name);
    dist_gather_lines(line, all, W);
    say(t, "%d processes:", t->world);
    for (int r = 0; all && r < t->world; r++) say(t, "  %s", all + (size_t)r * W);
    free(all);
}

int train_run(const train_args *a) {
    static trainer T;
    trainer *t = &T;
    memset(t, 0, sizeof *t);
    t->lock_fd = -1;
    t->last_ckpt_step = -1;
    t->last_eval_step = -1;
    t->best = -INFINITY;
    t->rank = dist_rank();
    t->world = dist_size();
    static char cfg_file[4096];
    size_t per_epoch = 0;
    detr_opts mo;
    int rc = open_config(t, a, cfg_file, sizeof cfg_file);
    if (t->rank > 0) t->progress = 0;              /* rank 0 shows the job's progress */
    if (rc == 0) rc = open_data(t, &per_epoch);
    t->per_epoch = (long)per_epoch;
    long total_steps = (long)per_epoch * t->cfg.train.epochs;
    if (t->cfg.train.max_steps > 0 && t->cfg.train.max_steps < total_steps) total_steps = t->cfg.train.max_steps;
    if (rc == 0 && a->resume_dir) {
        /* the checkpoint's header first: a damaged one, or a finished run, before building anything */
        ckpt_meta meta = {0};
        rc = t->rank == 0 ? lock_run_folder(t, 0) : 0;
        if (rc == 0) rc = read_resume_meta(t, &meta);
        if (rc == 0 && ((long)meta.step >= total_steps || (long)meta.epoch >= t->cfg.train.epochs)) {
            long bie = (long)meta.rng[RNG_BATCH_IN_EPOCH];
            long epoch = (long)meta.epoch + (bie > 0 || meta.step == 0);     /* the epoch of its last step */
            say(t, "run %s is finished: step %ld of %ld (epoch %ld of %d); nothing to do, its files are left as "
                   "they are.\nTo train it longer, resume with more epochs or steps, e.g. `cldetr train --resume %s "
                   "--set train.epochs=%d` (or --set train.max_steps=N with N > %ld)", t->run, (long)meta.step,
                total_steps, epoch, t->cfg.train.epochs, t->run, 2 * t->cfg.train.epochs, (long)meta.step);
            trainer_close(t);
            return TRAIN_DONE;
        }
        if (rc == 0 && t->rank == 0) rc = note_pid_of_lock(t);     /* (a finished run's files are left as they are) */
    }
    if (rc == 0) rc = open_model(t, &mo, !a->resume_dir);
    if (rc == 0) {
        setup_lr_schedule(&t->sched, &t->cfg, total_steps);
        rc = open_run_folder(t, cfg_file, a->resume_dir != NULL, (int)a->n_sets);
        if (rc == 0 && t->world > 1) dist_bcast_bytes(t->run, sizeof t->run);   /* rank 0's name (its clock) */
    }
    if (rc == 0 && t->rank == 0) rc = open_logs(t, a->resume_dir != NULL);
    if (rc == 0 && t->rank == 0) rc = open_layer_log(t, a->resume_dir != NULL);
    if (rc < 0) { trainer_close(t); return -1; }
    cd_atfatal(on_fatal, t);

    size_t all, trainable;
    detr_count(&t->model, &all, &trainable);
    say(t, "%s run %s on %s (GEMM: %s; %s)", a->resume_dir ? "resuming" : "starting", t->run, t->dev->info.name,
        cd_gemm_kernels_name(t->dev), cd_gemm_params(t->dev));
    say(t, "model: resnet%d width %d, d=%d, %d+%d layers, %d queries, %d classes; %.2fM parameters (%.2fM trainable)",
        mo.depth, mo.width, mo.d, mo.enc_layers, mo.dec_layers, mo.num_queries, mo.num_classes, all / 1e6,
        trainable / 1e6);
    if (t->world > 1) say_processes(t);
    if (t->world > 1)
        say(t, "data: %zu train / %zu val images, batch %d per process x %d processes = %d, %zu steps per epoch, "
               "%ld steps in all", data_size(t->train_ds), data_size(t->val_ds), t->cfg.train.batch_size, t->world,
            t->world * t->cfg.train.batch_size, per_epoch, total_steps);
    else
        say(t, "data: %zu train / %zu val images, batch %d, %zu steps per epoch, %ld steps in all",
            data_size(t->train_ds), data_size(t->val_ds), t->cfg.train.batch_size, per_epoch, total_steps);
    const config_train *ct = &t->cfg.train;
    if (ct->query_groups > 1 || ct->dn_groups > 0) {
        char gr[96] = "off", dn[160] = "off";
        if (ct->query_groups > 1)
            snprintf(gr, sizeof gr, "%d groups of %d queries (the first kept for inference)", ct->query_groups,
                     mo.num_queries);
        if (ct->dn_groups > 0)
            snprintf(dn, sizeof dn, "%d groups (box noise %g, label noise %g)", ct->dn_groups, ct->dn_box_noise,
                     ct->dn_label_noise);
        say(t, "training-only accelerators: query groups %s; denoising queries %s", gr, dn);
    } else {
        say(t, "training-only accelerators: none (plain DETR: train.query_groups = 1, train.dn_groups = 0)");
    }
    if (a->resume_dir)
        say(t, "continuing at step %ld (epoch %ld, batch %ld, %.0f s into the run)", t->step, t->epoch + 1,
            t->batch_in_epoch, t->elapsed0);
    if (a->resume_dir && t->resume_world != t->world)
        say(t, "the checkpoint was written by %ld process%s, this job has %d: the global batch is now %d images "
               "(it was %ld), so the run goes on with other batches and does not continue bit for bit; the epoch "
               "goes on at its batch %ld", t->resume_world, t->resume_world == 1 ? "" : "es", t->world,
            t->world * t->cfg.train.batch_size, t->resume_world * t->cfg.train.batch_size, t->batch_in_epoch);
    else if (a->resume_dir && t->world > 1)
        say(t, "the checkpoint was written by the same %d processes: the run continues as if it never stopped",
            t->world);

    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    rc = train_loop(t, total_steps);
    if (rc < 0) {                 /* the message goes to log.txt too; the caller prints it */
        char why[2048];
        snprintf(why, sizeof why, "%s", cd_errbuf());
        if (t->log) fprintf(t->log, "%s\n", why);
        cd_seterr("%s", why);
    }
    trainer_close(t);
    return rc;
}
