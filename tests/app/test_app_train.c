/* The training loop end to end on a tiny config and a tiny shapes dataset:
 * - overfitting 4 images with the training step (train_step): the loss falls by 10x and every matched box ends
 *   with IoU > 0.8 against its target;
 * - resume: a run stopped at step 3 and resumed to step 8 ends with exactly
 *   the parameters and optimizer state of a run that went to step 8 at once. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/box.h"
#include "cldetr/checkpoint.h"
#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/loss.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"
#include "cldetr/train.h"
#include "cldetr/trainer.h"
#include "../check.h"
#include "step_fixture.h"
#include "../fixtures.h"

static char dir[200], ini[4096], data_root[256];

static void make_data(void) {
    t_ok(t_tmpdir(dir, sizeof dir, "cldetr-train-test") != NULL, "temp folder %s", dir);
    snprintf(data_root, sizeof data_root, "%s/shapes", dir);
    t_ok(t_make_shapes(data_root, 4, 4, 64, 3, 2) == 0, "4+4 shapes images of 64 px");
    snprintf(ini, sizeof ini, "%s/tests/fixtures/tiny.ini", getenv("CLDETR_SOURCE_ROOT"));
}

/* Overfit the 4 training images with the library pieces directly; with
 * `accel`, with 3 query groups and 2 denoising groups in training, and DETR's
 * own queries alone (detr_forward) checked after it. */
static void test_overfit(int accel) {
    char root_set[300];
    snprintf(root_set, sizeof root_set, "data.root=%s", data_root);
    const char *sets[] = {root_set, "model.dropout=0", "augment.hflip=0", "augment.scales=64",
                          accel ? "train.query_groups=3" : "train.query_groups=1",
                          accel ? "train.dn_groups=2" : "train.dn_groups=0"};
    static t_step f;                         /* the step `cldetr train` runs, on 4 images */
    if (t_step_open(&f, ini, sets, 6) < 0) return;
    train_step_state *st = &f.st;
    criterion_opts_default(&st->crit);
    st->crit_dn = st->crit;
    st->crit_dn.fixed_match = 1;
    st->clip_max_norm = 1.0;
    const data_batch *bt = &f.batch;
    detr_model *m = &f.m;
    nn_ctx *ctx = &f.ctx;
    size_t B = bt->B, H = bt->H, W = bt->W, Q = (size_t)f.o.num_queries, K1 = (size_t)f.o.num_classes + 1;
    size_t L = (size_t)f.o.dec_layers;
    double first = 0, last = 0;
    const int steps = 300;
    double t0 = cd_now();
    for (int s = 0; s < steps; s++) {
        double lr[2] = {1e-3, 1e-3};
        if (train_step(st, bt, (uint64_t)s, lr) < 0) { t_ok(0, "step %d: %s", s, cd_errbuf()); break; }
        if (s == 0) first = st->cr.total;
        last = st->cr.total;
        if (s == 0 && accel) {
            size_t pad = 0;
            for (size_t b = 0; b < B; b++) pad = CD_MAX(pad, bt->targets[b].n);
            t_ok(st->out.Q == 3 * Q + 2 * pad, "training forward: 3 groups of %zu + 2 denoising groups of %zu "
                 "queries (%zu)", Q, pad, st->out.Q);
            t_ok(st->cr_dn.total > 0, "the denoising loss is part of the total (%.4f of %.4f)", st->cr_dn.total,
                 st->cr.total);
        }
    }
    t_diag("%d steps in %.1f s", steps, cd_now() - t0);
    t_ok(last < first / 10, "%sthe loss falls by more than 10x overfitting 4 images: %.4f -> %.4f",
         accel ? "query groups and denoising: " : "", first, last);
    /* the final layer's matched boxes, after one more forward (training mode: batch statistics) */
    nn_ctx_reset(ctx);
    detr_out out;
    detr_forward(m, ctx, bt->images, st->mask, B, H, W, &out);
    float *bx = st->boxes;
    read_decoder_outputs(f.dev, &out, st->logits, bx);
    criterion_result cr = {0};
    criterion_loss(&cr, NULL, NULL, st->logits, bx, st->targets, L, B, Q, K1, &st->crit);
    double min_iou = 1;
    size_t n_match = 0;
    for (size_t b = 0; b < B; b++) {
        size_t l = L - 1;
        for (size_t k = cr.match_start[l * B + b]; k < cr.match_start[l * B + b + 1]; k++) {
            double p[4], t[4], pc[4], tc[4];
            for (int j = 0; j < 4; j++) {
                pc[j] = bx[((l * B + b) * Q + cr.match_query[k]) * 4 + j];
                tc[j] = st->targets[b].boxes[cr.match_target[k] * 4 + j];
            }
            box_cxcywh_to_xyxy(p, pc);
            box_cxcywh_to_xyxy(t, tc);
            min_iou = fmin(min_iou, box_iou(p, t));
            n_match++;
        }
    }
    t_ok(n_match > 0 && min_iou > 0.8, "%severy matched box (%zu) of DETR's own queries has IoU > 0.8 with its "
         "target (min %.3f)", accel ? "after training with the accelerators: " : "", n_match, min_iou);
    t_ok(cr.class_error < 1e-9, "every matched query predicts its class (class_error %.1f%%)", cr.class_error);
    criterion_result_free(&cr);
    t_step_close(&f);
}

static int run_train(const char *name, int max_steps, const char *resume) {
    char s_root[300], s_out[300], s_name[100], s_steps[100];
    snprintf(s_root, sizeof s_root, "data.root=%s", data_root);
    snprintf(s_out, sizeof s_out, "train.out_dir=%s/runs", dir);
    snprintf(s_name, sizeof s_name, "train.name=%s", name);
    snprintf(s_steps, sizeof s_steps, "train.max_steps=%d", max_steps);
    const char *sets[] = {s_root, s_out, s_name, s_steps, "log.progress=off"};
    char run[400];
    snprintf(run, sizeof run, "%s/runs/%s", dir, name);
    train_args a = {resume ? NULL : ini, resume ? sets + 3 : sets, resume ? 2 : 5, resume ? run : NULL};
    return train_run(&a);
}

static size_t n_moments;
static int load_ckpt(const char *name, float **params, float **m, float **v, uint64_t *step) {
    static config cfg;
    char path[512];
    snprintf(path, sizeof path, "%s/runs/%s/config.ini", dir, name);
    if (config_load(&cfg, path, NULL, 0) < 0) return -1;
    cd_device *dev = cd_open(NULL, 0);
    detr_opts o;
    setup_detr_opts(&o, &cfg, setup_num_classes(&cfg));
    detr_model mdl;
    detr_build(&mdl, &o, dev, 99);            /* another seed: everything must come from the file */
    adamw_state opt;
    adamw_init(&opt, dev, &mdl.params, 0.9, 0.999, 1e-8, 1e-4);
    snprintf(path, sizeof path, "%s/runs/%s/last.ckpt", dir, name);
    ckpt_meta meta = {0};
    ckpt_moments moments = adamw_moments(&opt);
    int rc = ckpt_load(path, &meta, &mdl.params, &moments, dev);
    *step = meta.step;
    size_t n = mdl.params.total, nt = mdl.params.n_trainable;
    n_moments = nt;
    *params = malloc(n * sizeof(float));
    *m = malloc(nt * sizeof(float));
    *v = malloc(nt * sizeof(float));
    memcpy(*params, mdl.params.host, n * sizeof(float));
    cd_read(dev, *m, opt.m, nt);
    cd_read(dev, *v, opt.v, nt);
    ckpt_meta_free(&meta);
    adamw_free(&opt, dev);
    detr_free(&mdl, dev);
    cd_close(dev);
    return rc < 0 ? -1 : (int)n;
}

/* Set the u64 at byte pos of run name's last.ckpt and recompute the checksum:
 * a forged header only range checks catch. */
static int forge_ckpt(const char *name, long pos, uint64_t value) {
    char path[512];
    snprintf(path, sizeof path, "%s/runs/%s/last.ckpt", dir, name);
    return t_forge_ckpt_u64(path, path, pos, value);
}

/* The run state a checkpoint's rng words hold is checked before a resume:
 * out of range, the resume is refused naming the field, and the run folder
 * (its last.ckpt) is left as it was. */
static void test_resume_ranges(void) {
    t_ok(run_train("forged", 2, NULL) == 0, "a 2-step run to forge");
    const struct { long pos; uint64_t value; const char *what, *want; } cases[] = {
        {40, 1000, "batch_in_epoch past the end of an epoch", "batch_in_epoch (rng[0]) = 1000 (an epoch has 1 batch)"},
        {40, (uint64_t)1 << 63, "batch_in_epoch 2^63", "batch_in_epoch (rng[0]) = 9223372036854775808"},
        {48, 0x7ff8000000000000ULL, "best score NaN", "best score (rng[1]) = NaN"},
        {64, 0xfff0000000000000ULL, "elapsed time -inf", "elapsed seconds (rng[3]) = -inf"},
        {24, (uint64_t)1 << 63, "step 2^63", "header field step = 9223372036854775808"},
        {32, (uint64_t)1 << 62, "epoch 2^62", "header field epoch = 4611686018427387904"},
    };
    uint64_t good_words[6];
    char path[512];
    snprintf(path, sizeof path, "%s/runs/forged/last.ckpt", dir);
    size_t len;
    unsigned char *orig = (unsigned char *)cd_read_file(path, &len);
    if (!orig) { t_ok(0, "read %s", path); return; }
    for (size_t i = 0; i < CD_ARRAY_LEN(cases); i++) {
        good_words[0] = 0;
        for (int b = 0; b < 8; b++) good_words[0] |= (uint64_t)orig[cases[i].pos + b] << (8 * b);
        t_ok(forge_ckpt("forged", cases[i].pos, cases[i].value) == 0, "forge %s", cases[i].what);
        int rc = run_train("forged", 4, "resume");
        t_ok(rc == -1 && strstr(cd_errbuf(), cases[i].want) && strstr(cd_errbuf(), "out of range"),
             "resume with %s: refused naming the field: %s", cases[i].what, rc == -1 ? cd_errbuf() : "(resumed!)");
        forge_ckpt("forged", cases[i].pos, good_words[0]);   /* back to the true value */
    }
    size_t len2;
    unsigned char *now = (unsigned char *)cd_read_file(path, &len2);
    t_ok(now && len2 == len && !memcmp(now, orig, len), "the refused resumes left last.ckpt as it was");
    free(orig);
    free(now);
    t_ok(run_train("forged", 4, "resume") == 0, "and the true checkpoint resumes");
}

static void test_resume(void) {
    t_ok(run_train("straight", 8, NULL) == 0, "a run of 8 steps");
    t_ok(run_train("stopped", 3, NULL) == 0, "a run stopped at step 3");
    t_ok(run_train("stopped", 8, "resume") == 0, "the stopped run resumed to step 8");
    float *pa = NULL, *ma = NULL, *va = NULL, *pb = NULL, *mb = NULL, *vb = NULL, *p0 = NULL, *m0 = NULL, *v0 = NULL;
    uint64_t sa, sb;
    int na = load_ckpt("straight", &pa, &ma, &va, &sa);
    int nb = load_ckpt("stopped", &pb, &mb, &vb, &sb);
    t_ok(na > 0 && na == nb && sa == 8 && sb == 8, "both checkpoints load at step 8 (%d, %d floats)", na, nb);
    if (na <= 0 || na != nb) goto done;
    size_t diff = 0;
    for (int i = 0; i < na; i++) diff += memcmp(&pa[i], &pb[i], sizeof(float)) != 0;
    t_ok(diff == 0, "resumed run's parameters equal the uninterrupted run's bit for bit (%zu differ)", diff);
    t_ok(memcmp(ma, mb, n_moments * sizeof(float)) == 0 && memcmp(va, vb, n_moments * sizeof(float)) == 0,
         "and so do the Adam moments (%zu floats each)", n_moments);
    size_t moved = 0;
    uint64_t s0;
    t_ok(run_train("other", 3, NULL) == 0, "a 3-step run");
    if (load_ckpt("other", &p0, &m0, &v0, &s0) > 0)
        for (int i = 0; i < na; i++) moved += p0[i] != pa[i];
    t_ok(moved > 0, "(and training does change the parameters: %zu of %d differ between step 3 and 8)", moved, na);
done:
    free(pa); free(ma); free(va); free(pb); free(mb); free(vb); free(p0); free(m0); free(v0);
}

int main(void) {
    make_data();
    test_overfit(0);
    test_overfit(1);
    test_resume();
    test_resume_ranges();
    t_rmtree(dir);
    return t_done();
}
