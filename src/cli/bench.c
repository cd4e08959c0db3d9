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
#include "cldetr/step.h"
#include "cldetr/train.h"
#include "cli/args.h"
#include "cli/cli.h"

/* Random images (values of a normalized image) without padding, 1-4 boxes
 * each, as a loader batch. */
static void synthetic_batch(data_batch *b, size_t B, size_t H, size_t W, int num_classes, uint64_t seed) {
    memset(b, 0, sizeof *b);
    b->B = B; b->H = H; b->W = W;
    b->images = cd_xmalloc(B * 3 * H * W * sizeof(float));
    b->mask = cd_xcalloc(B * H * W, 1);
    b->targets = cd_xcalloc(B, sizeof *b->targets);
    uint64_t s = seed;
    for (size_t i = 0; i < B * 3 * H * W; i++) b->images[i] = (float)cd_rng_range(&s, -2.0, 2.0);
    for (size_t i = 0; i < B; i++) {
        data_target *t = &b->targets[i];
        t->n = 1 + cd_rng_next(&s) % 4;
        t->boxes = cd_xmalloc(t->n * 4 * sizeof *t->boxes);
        t->labels = cd_xmalloc(t->n * sizeof *t->labels);
        t->area = cd_xcalloc(t->n, sizeof *t->area);
        for (size_t k = 0; k < t->n; k++) {
            float w = (float)cd_rng_range(&s, 0.1, 0.5), h = (float)cd_rng_range(&s, 0.1, 0.5);
            float *bx = t->boxes + k * 4;
            bx[0] = w / 2 + (1 - w) * (float)cd_rng_uniform(&s);
            bx[1] = h / 2 + (1 - h) * (float)cd_rng_uniform(&s);
            bx[2] = w;
            bx[3] = h;
            t->labels[k] = (int32_t)(cd_rng_next(&s) % (uint64_t)num_classes);
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL;
    long steps = 10, warmup = 2;
    int profile = 0, phases = 0, real = 0;
    args a;
    args_init(&a, "bench", argc, argv, ARGS_SETS);
    while (args_next(&a)) {
        args_long(&a, "--steps", &steps, 1, 100000);
        args_long(&a, "--warmup", &warmup, 0, 100000);
        if (args_flag(&a, "--profile")) profile = 1;
        if (args_flag(&a, "--phases")) phases = 1;
        if (args_flag(&a, "--real")) real = 1;
        args_single(&a, &path, "config file");
    }
    if (a.rc >= 0) return a.rc;
    if (!path) return args_missing(&a, "give a config file");

    static config cfg;
    if (config_load(&cfg, path, a.sets, a.n_sets) < 0) return cli_error();
    int from_data = 0;
    if (cfg.model.num_classes <= 0 && (from_data = setup_num_classes(&cfg)) < 0) {
        fprintf(stderr, "cldetr: error: %s\n  (for a synthetic benchmark without the dataset: "
                        "--set model.num_classes=N)\n", cd_errbuf());
        return 1;
    }
    detr_opts mo;
    if (setup_detr_opts(&mo, &cfg, from_data) < 0) return cli_error();

    data_dataset *ds = NULL;
    data_loader *loader = NULL;
    if (real) {
        loader_opts lo;
        augment_opts ao;
        setup_loader_opts(&lo, &cfg, 1);
        setup_augment_opts(&ao, &cfg);
        if (!(ds = setup_open_split(&cfg, "train")) || !(loader = loader_create(ds, &lo, &ao))) {
            fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
            data_close(ds);
            return 1;
        }
        loader_begin_epoch(loader, 0);
    }
    cd_device *dev = cd_open(setup_device_spec(&cfg), profile);
    if (!dev) return cli_error();
    dev->oom_hint = "lower train.batch_size, the input size (augment.scales, augment.max_size) or the model";
    detr_model m;
    if (detr_build(&m, &mo, dev, (uint64_t)cfg.train.seed) < 0) return cli_error();
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m.params);
    ctx.training = 1;
    ctx.seed = (uint64_t)cfg.train.seed;
    adamw_state opt;
    adamw_init(&opt, dev, &m.params, 0.9, 0.999, 1e-8, cfg.train.weight_decay);
    train_step_state st;                 /* the step `cldetr train` runs */
    train_step_init(&st, &m, &ctx, &opt, &cfg);
    st.time_phases = phases;
    double lr[2];
    lr[NN_GROUP_BACKBONE] = cfg.train.lr_backbone;
    lr[NN_GROUP_REST] = cfg.train.lr;

    size_t B = (size_t)cfg.train.batch_size, H, W;
    setup_max_input(&cfg, &H, &W);      /* the worst padded batch */
    data_batch batches[2];
    memset(batches, 0, sizeof batches);
    if (!real)
        for (int k = 0; k < 2; k++) synthetic_batch(&batches[k], B, H, W, mo.num_classes, 1000 + (uint64_t)k);

    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    printf("device: %s (%s); GEMM: %s (%s); attention: %s\n", dev->info.name,
           dev->info.platform_name, cd_gemm_kernels_name(dev), cd_gemm_params(dev),
           nn_fused_attention(&ctx, (size_t)(mo.d / mo.nheads)) ? "fused (CLDETR_ATTENTION)" : "separate kernels");
    if (cd_gemm_kernels(dev) == CD_GEMM_TILES)
        printf("convolutions on the tile kernels: %s\n", op_conv2d_reads_in_place(dev)
               ? "operands read in place (CLDETR_CONV_TILES=implicit)" : "through im2col's columns");
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
            memset(st.phase_s, 0, sizeof st.phase_s);
        }
        const data_batch *b = &batches[k & 1];
        if (real) {
            double tw = cd_now();
            int got = loader_next(loader, &b);
            if (got == 0) { loader_begin_epoch(loader, (uint64_t)k); got = loader_next(loader, &b); }
            if (got <= 0) {
                fprintf(stderr, "cldetr: error: %s\n", got < 0 ? cd_errbuf() : "the training set holds no batch");
                rc = 1;
                break;
            }
            if (k >= warmup) t_wait += cd_now() - tw;
        }
        double t0 = cd_now();
        if (train_step(&st, b, (uint64_t)k, lr) < 0) {
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
               1e3 * med, steps, 1e3 * t_timed / steps, 1e3 * t_steps[0], (double)images / steps / med, st.cr.total);
        if (phases) {
            printf("  ");
            for (int p = 0; p < STEP_N_PHASES; p++)
                printf("%s %.1f ms%s", step_phase_names[p], 1e3 * st.phase_s[p] / steps,
                       p + 1 < STEP_N_PHASES ? ", " : "\n");
        }
        if (real) printf("  waiting for the loader: %.1f ms per step (not in the step time)\n", 1e3 * t_wait / steps);
        double gf = (ctx.flops_fw + ctx.flops_bw) * 1e-9;    /* the last step's */
        printf("arithmetic: %.1f GFLOP per step in matrix ops (forward %.1f, backward %.1f): %.1f GFLOP/s at the "
               "median step\n", gf, ctx.flops_fw * 1e-9, ctx.flops_bw * 1e-9, gf / med);
        if (profile) {
            double mib = 1.0 / 1048576.0;
            printf("\nmemory: activations %.1f MiB + their gradients %.1f MiB (arenas), parameters+grads+Adam "
                   "%.1f MiB, device peak %.1f MiB\n", (nn_ctx_bytes(&ctx) - nn_ctx_grad_bytes(&ctx)) * mib,
                   nn_ctx_grad_bytes(&ctx) * mib,
                   (m.params.total + 3.0 * m.params.n_trainable) * sizeof(float) * mib, dev->bytes_peak * mib);
            printf("\nper-kernel device time over the %ld timed steps:\n", steps);
            cd_profile_print(dev, stdout);
            double dev_ms = 0;
            long launches = 0;
            for (int i = 0; i < dev->n_profile; i++) {
                dev_ms += dev->profile[i].ms;
                launches += dev->profile[i].count;
            }
            const char *clblast_note = cd_gemm_kernels(dev) == CD_GEMM_TILES
                                           ? "" : "; gemm_NN/NT/TN/TT/batched: CLBlast's main kernel only";
            printf("device time %.1f ms per step = %.0f%% of the step (the rest: launches, host work, waits), "
                   "%.0f kernel launches per step%s\n", dev_ms / steps, 100 * dev_ms / (1e3 * t_timed),
                   (double)launches / steps, clblast_note);
            double mm_ms = 0;
            for (int i = 0; i < dev->n_profile; i++)
                if (!strncmp(dev->profile[i].name, "gemm", 4) || !strncmp(dev->profile[i].name, "bmm_small", 9))
                    mm_ms += dev->profile[i].ms;
            if (mm_ms > 0)
                printf("matrix kernels (gemm_*, bmm_small_*): %.1f ms per step, %.0f GFLOP/s on the matrix ops' "
                       "arithmetic (im2col and CLBlast's copies not counted as their time)\n", mm_ms / steps,
                       gf / (mm_ms / steps * 1e-3));
        }
    }
    free(t_steps);
    train_step_free(&st);
    if (!real) for (int k = 0; k < 2; k++) data_batch_free(&batches[k]);
    loader_destroy(loader);
    data_close(ds);
    adamw_free(&opt, dev);
    nn_ctx_free(&ctx);
    detr_free(&m, dev);
    cd_close(dev);
    return rc;
}
