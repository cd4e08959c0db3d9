/* cldetr bench CONFIG: the speed of DETR training steps as the config defines
 * them (model, batch size, largest input, loss, AdamW with clipping), on
 * synthetic batches (random images at the largest input, 1-4 random boxes per
 * image) or, with --real, batches from the training set. Prints ms/step and
 * images/s; --phases times forward, loss (read-back + matching + criterion +
 * gradient upload), backward and the optimizer separately (a cd_finish after
 * each, so the whole step is a little slower); --profile adds the per-kernel
 * table and the memory of a step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/loss.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cli/cli.h"

enum { PH_FWD, PH_LOSS, PH_BWD, PH_OPT, N_PH };
static const char *phase_names[N_PH] = {"forward", "loss", "backward", "optimizer"};

typedef struct {
    size_t B, H, W;
    float *images, *mask;          /* (B, 3, H, W), (B, H, W) */
    size_t mask_cap;
    int *labels;                   /* per image: up to 4 */
    float *boxes;
    criterion_target *targets;     /* [B] */
} bench_batch;

/* Random images (values of a normalized image) without padding, 1-4 boxes each. */
static void synthetic_batch(bench_batch *b, size_t B, size_t H, size_t W, int num_classes, uint64_t seed) {
    b->B = B; b->H = H; b->W = W;
    b->images = cd_xmalloc(B * 3 * H * W * sizeof(float));
    b->mask = cd_xcalloc(B * H * W, sizeof(float));
    b->labels = cd_xmalloc(B * 4 * sizeof(int));
    b->boxes = cd_xmalloc(B * 4 * 4 * sizeof(float));
    b->targets = cd_xmalloc(B * sizeof *b->targets);
    uint64_t s = seed;
    for (size_t i = 0; i < B * 3 * H * W; i++) b->images[i] = (float)(4.0 * cd_rng_uniform(&s) - 2.0);
    for (size_t i = 0; i < B; i++) {
        size_t n = 1 + cd_rng_next(&s) % 4;
        for (size_t k = 0; k < n; k++) {
            float w = (float)(0.1 + 0.4 * cd_rng_uniform(&s)), h = (float)(0.1 + 0.4 * cd_rng_uniform(&s));
            float *bx = b->boxes + (i * 4 + k) * 4;
            bx[0] = w / 2 + (1 - w) * (float)cd_rng_uniform(&s);
            bx[1] = h / 2 + (1 - h) * (float)cd_rng_uniform(&s);
            bx[2] = w;
            bx[3] = h;
            b->labels[i * 4 + k] = (int)(cd_rng_next(&s) % (uint64_t)num_classes);
        }
        b->targets[i] = (criterion_target){b->labels + i * 4, b->boxes + i * 16, n};
    }
}

static void batch_free(bench_batch *b) {
    free(b->images); free(b->mask); free(b->labels); free(b->boxes); free(b->targets);
    memset(b, 0, sizeof *b);
}

/* --real: a batch from the loader, in the bench_batch shape (mask as float). */
static void from_loader(bench_batch *b, const data_batch *db) {
    size_t n = db->B * db->H * db->W;
    if (n > b->mask_cap) {
        b->mask_cap = n;
        b->mask = cd_xrealloc(b->mask, n * sizeof(float));
    }
    free(b->targets);
    b->targets = cd_xmalloc(db->B * sizeof *b->targets);
    b->B = db->B; b->H = db->H; b->W = db->W;
    b->images = db->images;
    for (size_t i = 0; i < n; i++) b->mask[i] = db->mask[i];
    for (size_t i = 0; i < db->B; i++)
        b->targets[i] = (criterion_target){db->targets[i].labels, db->targets[i].boxes, db->targets[i].n};
}

static data_loader *open_loader(const config *cfg, data_dataset **ds) {
    char ann[2 * CFG_STR_LEN + 2], img[2 * CFG_STR_LEN + 2];
    snprintf(ann, sizeof ann, "%s/%s", cfg->data.root, cfg->data.train_ann);
    snprintf(img, sizeof img, "%s/%s", cfg->data.root, cfg->data.train_images);
    data_opts o;
    data_opts_default(&o);
    o.ann_file = ann;
    o.image_dir = img;
    o.contiguous_labels = cfg->data.contiguous_labels;
    o.on_bad_sample = strcmp(cfg->data.on_bad_sample, "skip") ? DATA_BAD_ERROR : DATA_BAD_SKIP;
    if (!(*ds = data_open(&o))) return NULL;
    loader_opts lo;
    loader_opts_default(&lo, 1);
    lo.batch_size = (size_t)cfg->train.batch_size;
    lo.workers = cfg->data.workers;
    lo.prefetch = cfg->data.prefetch;
    lo.seed = (uint64_t)cfg->train.seed;
    for (int i = 0; i < 3; i++) {
        lo.mean[i] = (float)cfg->augment.mean.v[i];
        lo.std[i] = (float)cfg->augment.std.v[i];
    }
    augment_opts a;
    augment_opts_default(&a);
    a.hflip = cfg->augment.hflip > 0;
    a.hflip_p = cfg->augment.hflip;
    a.n_scales = CD_MIN(cfg->augment.scales.n, AUG_MAX_SCALES);
    for (int i = 0; i < a.n_scales; i++) a.scales[i] = cfg->augment.scales.v[i];
    a.max_size = cfg->augment.max_size;
    a.select = cfg->augment.random_select < 1.0;
    a.select_p = cfg->augment.random_select;
    a.n_select_scales = CD_MIN(cfg->augment.select_scales.n, AUG_MAX_SCALES);
    for (int i = 0; i < a.n_select_scales; i++) a.select_scales[i] = cfg->augment.select_scales.v[i];
    a.crop_min = cfg->augment.crop_min;
    a.crop_max = cfg->augment.crop_max;
    data_loader *L = loader_create(*ds, &lo, &a);
    if (L) loader_begin_epoch(L, 0);
    return L;
}

typedef struct {
    detr_model *m;
    nn_ctx *ctx;
    adamw_state *opt;
    criterion_opts crit;
    criterion_result cr;
    double lr[2], clip;
    float *logits, *boxes, *dlogits, *dboxes;
    size_t cap_l, cap_b;
    int phases;
    double t_phase[N_PH];          /* seconds, summed over timed steps */
} bench_state;

static double phase_mark(bench_state *s, int ph, double t0) {
    if (!s->phases) return t0;
    cd_finish(s->ctx->dev);
    double t = cd_now();
    s->t_phase[ph] += t - t0;
    return t;
}

/* One training step; returns 0 or -1 with cd_errbuf(). */
static int bench_step(bench_state *s, const bench_batch *b, uint64_t step) {
    nn_ctx *ctx = s->ctx;
    cd_device *dev = ctx->dev;
    double t = cd_now();
    nn_ctx_reset(ctx);
    ctx->step = step;
    nn_zero_grads(ctx);
    detr_out o;
    detr_forward(s->m, ctx, b->images, b->mask, b->B, b->H, b->W, &o);
    t = phase_mark(s, PH_FWD, t);
    size_t L = o.L, B = o.B, Q = o.Q, K1 = o.K1, nl = B * Q * K1, nb = B * Q * 4;
    if (L * nl > s->cap_l) {
        s->cap_l = L * nl;
        s->logits = cd_xrealloc(s->logits, s->cap_l * sizeof(float));
        s->dlogits = cd_xrealloc(s->dlogits, s->cap_l * sizeof(float));
    }
    if (L * nb > s->cap_b) {
        s->cap_b = L * nb;
        s->boxes = cd_xrealloc(s->boxes, s->cap_b * sizeof(float));
        s->dboxes = cd_xrealloc(s->dboxes, s->cap_b * sizeof(float));
    }
    for (size_t l = 0; l < L; l++) {
        cd_read(dev, s->logits + l * nl, o.logits[l]->data, nl);
        cd_read(dev, s->boxes + l * nb, o.boxes[l]->data, nb);
    }
    if (criterion_loss(&s->cr, s->dlogits, s->dboxes, s->logits, s->boxes, b->targets, L, B, Q, K1, &s->crit) < 0)
        return -1;
    for (size_t l = s->crit.aux_loss ? 0 : L - 1; l < L; l++) {
        nn_set_grad(ctx, o.logits[l], s->dlogits + l * nl);
        nn_set_grad(ctx, o.boxes[l], s->dboxes + l * nb);
    }
    t = phase_mark(s, PH_LOSS, t);
    nn_backward(ctx);
    t = phase_mark(s, PH_BWD, t);
    if (adamw_step(s->opt, dev, &s->m->params, s->lr, s->clip, NULL) < 0) return -1;
    phase_mark(s, PH_OPT, t);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f, "usage: cldetr bench CONFIG.ini [--steps N] [--warmup N] [--set section.key=value ...]\n"
               "                    [--phases] [--profile] [--real]\n\n"
               "Times DETR training steps as CONFIG defines them (model, train.batch_size, the largest input:\n"
               "max of augment.scales by augment.max_size, loss, AdamW with clipping) and prints ms/step and\n"
               "images/s. Batches are synthetic (random images, 1-4 random boxes each) unless --real.\n\n"
               "  --steps N    timed steps (default 10)\n"
               "  --warmup N   untimed steps first: kernel builds, CLBlast compiles, first-touch memory (default 2)\n"
               "  --phases     time forward, loss (read-back, matching, criterion, gradient upload), backward and\n"
               "               the optimizer separately (a device sync after each: the step gets a little slower)\n"
               "  --profile    per-kernel device time table (profiling queue) and the memory of a step\n"
               "  --real       batches from the training set (data.root) through the loader; the time spent\n"
               "               waiting for a batch is reported apart\n"
               "  --set k=v    override a config key, e.g. --set model.num_classes=5 when the dataset is missing\n");
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL, *sets[64];
    size_t n_sets = 0;
    long steps = 10, warmup = 2;
    int profile = 0, phases = 0, real = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--steps") || !strcmp(a, "--warmup")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < (a[2] == 's' ? 1 : 0) || v > 100000) {
                fprintf(stderr, "cldetr bench: %s expects a whole number %s, got '%s'\n", a,
                        a[2] == 's' ? ">= 1" : ">= 0", argv[i]);
                return 2;
            }
            if (a[2] == 's') steps = v; else warmup = v;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            if (n_sets == 64) { fprintf(stderr, "cldetr bench: at most 64 --set\n"); return 2; }
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "--phases")) phases = 1;
        else if (!strcmp(a, "--real")) real = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (a[0] == '-') {
            fprintf(stderr, "cldetr bench: unknown option '%s' or missing value (see cldetr bench --help)\n", a);
            return 2;
        } else if (!path) path = a;
        else { fprintf(stderr, "cldetr bench: one config file only (got '%s' and '%s')\n", path, a); return 2; }
    }
    if (!path) { fprintf(stderr, "usage: cldetr bench CONFIG.ini (see --help)\n"); return 2; }

    static config cfg;
    if (config_load(&cfg, path, sets, n_sets) < 0) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    int from_data = 0;
    if (cfg.model.num_classes <= 0 && (from_data = setup_num_classes(&cfg)) < 0) {
        fprintf(stderr, "cldetr: error: %s\n  (for a synthetic benchmark without the dataset: "
                        "--set model.num_classes=N)\n", cd_errbuf());
        return 1;
    }
    detr_opts mo;
    if (setup_detr_opts(&mo, &cfg, from_data) < 0) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }

    data_dataset *ds = NULL;
    data_loader *loader = NULL;
    if (real && !(loader = open_loader(&cfg, &ds))) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        if (ds) data_close(ds);
        return 1;
    }
    cd_device *dev = cd_open(setup_device_spec(&cfg), profile);
    if (!dev) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    dev->oom_hint = "lower train.batch_size, the input size (augment.scales, augment.max_size) or the model";
    detr_model m;
    if (detr_build(&m, &mo, dev, (uint64_t)cfg.train.seed) < 0) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        return 1;
    }
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m.params);
    ctx.training = 1;
    ctx.seed = (uint64_t)cfg.train.seed;
    adamw_state opt;
    adamw_init(&opt, dev, &m.params, 0.9, 0.999, 1e-8, cfg.train.weight_decay);
    bench_state s;
    memset(&s, 0, sizeof s);
    s.m = &m;
    s.ctx = &ctx;
    s.opt = &opt;
    s.phases = phases;
    s.lr[NN_GROUP_BACKBONE] = cfg.train.lr_backbone;
    s.lr[NN_GROUP_REST] = cfg.train.lr;
    s.clip = cfg.train.clip_max_norm;
    criterion_opts_default(&s.crit);
    s.crit.w_ce = cfg.loss.ce_loss_coef;
    s.crit.w_bbox = cfg.loss.bbox_loss_coef;
    s.crit.w_giou = cfg.loss.giou_loss_coef;
    s.crit.eos_coef = cfg.loss.eos_coef;
    s.crit.cost.cost_class = cfg.matcher.set_cost_class;
    s.crit.cost.cost_bbox = cfg.matcher.set_cost_bbox;
    s.crit.cost.cost_giou = cfg.matcher.set_cost_giou;
    s.crit.aux_loss = cfg.model.aux_loss;

    size_t B = (size_t)cfg.train.batch_size, H = 0;
    for (int i = 0; i < cfg.augment.scales.n; i++) H = CD_MAX(H, (size_t)cfg.augment.scales.v[i]);
    size_t W = cfg.augment.max_size > 0 ? CD_MAX((size_t)cfg.augment.max_size, H) : H;   /* the worst padded batch */
    bench_batch batches[2];
    memset(batches, 0, sizeof batches);
    if (!real)
        for (int k = 0; k < 2; k++) synthetic_batch(&batches[k], B, H, W, mo.num_classes, 1000 + (uint64_t)k);

    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    printf("device: %s (%s)\n", dev->info.name, dev->info.platform_name);
    printf("model: resnet%d width %d (%s BN), d=%d, %d heads, %d+%d layers, FFN %d, %d queries, %d classes; "
           "%.2f M parameters (%.2f M trained)\n", mo.depth, mo.width, mo.bn_trainable ? "trainable" : "frozen", mo.d,
           mo.nheads, mo.enc_layers, mo.dec_layers, mo.dim_ff, mo.num_queries, mo.num_classes, all / 1e6,
           trainable / 1e6);
    if (real) printf("batches: the training set %s, batch %zu\n", cfg.data.root, B);
    else printf("batches: synthetic, %zu x 3x%zux%zu, 1-4 boxes per image\n", B, H, W);
    printf("steps: %ld warm-up + %ld timed%s\n", warmup, steps, phases ? " (phases: a device sync after each)" : "");
    fflush(stdout);

    double t_timed = 0, t_wait = 0, t_first = 0;
    double *t_steps = cd_xmalloc((size_t)steps * sizeof(double));
    long images = 0;
    int rc = 0;
    for (long k = 0; k < warmup + steps; k++) {
        if (k == warmup) {
            cd_finish(dev);
            if (profile) cd_profile_reset(dev);
            memset(s.t_phase, 0, sizeof s.t_phase);
        }
        const bench_batch *b = &batches[k & 1];
        if (real) {
            double tw = cd_now();
            const data_batch *db;
            int got = loader_next(loader, &db);
            if (got == 0) { loader_begin_epoch(loader, (uint64_t)k); got = loader_next(loader, &db); }
            if (got <= 0) {
                fprintf(stderr, "cldetr: error: %s\n", got < 0 ? cd_errbuf() : "the training set holds no batch");
                rc = 1;
                break;
            }
            from_loader(&batches[0], db);
            b = &batches[0];
            if (k >= warmup) t_wait += cd_now() - tw;
        }
        double t0 = cd_now();
        if (bench_step(&s, b, (uint64_t)k) < 0) {
            fprintf(stderr, "cldetr: error: step %ld: %s\n", k, cd_errbuf());
            rc = 1;
            break;
        }
        cd_finish(dev);
        double dt = cd_now() - t0;
        if (k == 0) t_first = dt;
        if (k >= warmup) { t_steps[k - warmup] = dt; t_timed += dt; images += (long)b->B; }
        if (profile && k >= warmup) cd_profile_collect(dev);
    }
    if (rc == 0) {
        printf("\nfirst step %.1f ms (kernel builds and first-touch memory included)\n", 1e3 * t_first);
        qsort(t_steps, (size_t)steps, sizeof *t_steps, cmp_double);
        double med = steps % 2 ? t_steps[steps / 2] : 0.5 * (t_steps[steps / 2 - 1] + t_steps[steps / 2]);
        printf("step %.1f ms (median of %ld; mean %.1f, min %.1f), %.1f images/s at the median; last loss %.4f\n",
               1e3 * med, steps, 1e3 * t_timed / steps, 1e3 * t_steps[0], (double)images / steps / med, s.cr.total);
        if (phases) {
            printf("  ");
            for (int p = 0; p < N_PH; p++)
                printf("%s %.1f ms%s", phase_names[p], 1e3 * s.t_phase[p] / steps, p + 1 < N_PH ? ", " : "\n");
        }
        if (real) printf("  waiting for the loader: %.1f ms per step (not in the step time)\n", 1e3 * t_wait / steps);
        if (profile) {
            double mib = 1.0 / 1048576.0;
            printf("\nmemory: activations + their gradients %.1f MiB (arena), parameters+grads+Adam %.1f MiB, "
                   "device peak %.1f MiB\n", nn_ctx_bytes(&ctx) * mib,
                   (m.params.total + 3.0 * m.params.n_trainable) * sizeof(float) * mib, dev->bytes_peak * mib);
            printf("\nper-kernel device time over the %ld timed steps:\n", steps);
            cd_profile_print(dev, stdout);
            double dev_ms = 0;
            for (int i = 0; i < dev->n_profile; i++) dev_ms += dev->profile[i].ms;
            printf("device time %.1f ms per step = %.0f%% of the step (the rest: launches, host work, waits); "
                   "gemm_* events are CLBlast's main kernel only\n", dev_ms / steps, 100 * dev_ms / (1e3 * t_timed));
        }
    }
    free(t_steps);
    criterion_result_free(&s.cr);
    free(s.logits); free(s.boxes); free(s.dlogits); free(s.dboxes);
    if (real) { batches[0].images = NULL; batch_free(&batches[0]); }
    else for (int k = 0; k < 2; k++) batch_free(&batches[k]);
    if (loader) loader_destroy(loader);
    if (ds) data_close(ds);
    adamw_free(&opt, dev);
    nn_ctx_free(&ctx);
    detr_free(&m, dev);
    cd_close(dev);
    return rc;
}
