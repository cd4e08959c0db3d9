/* Per-kernel timing of the non-GEMM ops at the shapes of configs/shapes.ini
 * (resnet18 width 32, 128x128 images, batch 8, d = 128): device event times per
 * call (the minimum over N runs: the machine is shared), so a kernel variant
 * can be compared without a training run.
 *
 *   bench_perf_kernels [--iters N] [--only SUBSTRING]
 *
 * With CLDETR_KERNEL_DIR=cl a changed .cl file is picked up without a rebuild.
 * The op cases of the shared table (cd_op_cases) for these ops run first: a
 * kernel that no longer matches its host reference is not timed. Each case
 * runs once to warm up (compile, first touch), then N times with the profile
 * on; a line per kernel the case launched: us per call.
 *
 * It sets POCL_AFFINITY=1 (PoCL's worker threads pinned to cores) unless the
 * environment sets it: unpinned, a process of back-to-back small kernels ran
 * in one of two modes on a 2-core VM, the slow one up to 2x slower (dropout at
 * 65536 elements 62-66 us against 33-37; bench/README.md). The training step
 * runs the same either way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/ops.h"
#include "bench_util.h"

static cd_device *dev;
static int iters = 10;
static const char *only;

static cd_mem rand_dev(size_t n) { return bench_rand_dev(dev, n); }

typedef struct {
    const char *name;
    size_t B, C, H, W, K, R, S, stride, pad;   /* conv / pool / bn shapes */
    size_t n;                                  /* element count for flat ops */
} bench_case;

/* The machine is shared: each kernel's time is the minimum over the runs of
 * its mean per call within one run. */
#define MAX_NAMES 32
static const char *min_name[MAX_NAMES];
static double min_us[MAX_NAMES];
static long min_calls[MAX_NAMES];
static int n_min;

static void collect_run(void) {
    cd_profile_collect(dev);
    for (int i = 0; i < dev->n_profile; i++) {
        const cd_profile_entry *e = &dev->profile[i];
        double us = 1e3 * e->ms / (double)e->count;
        int j = 0;
        while (j < n_min && strcmp(min_name[j], e->name)) j++;
        if (j == n_min) {
            if (n_min == MAX_NAMES) continue;
            min_name[n_min] = e->name; min_us[n_min] = us; min_calls[n_min] = e->count; n_min++;
        } else if (us < min_us[j]) min_us[j] = us;
    }
    cd_profile_reset(dev);
}

static void report(const char *label) {
    for (int j = 0; j < n_min; j++)
        printf("%-28s %-26s %9.1f us/call  (%ld calls per run)\n", label, min_name[j], min_us[j], min_calls[j]);
    fflush(stdout);
    n_min = 0;
}

#define RUN(label, stmt)                                                       \
    do {                                                                       \
        if (only && !strstr(label, only)) break;                               \
        stmt;                                                                  \
        cd_finish(dev);                                                        \
        cd_profile_reset(dev);                                                 \
        for (int it_ = 0; it_ < iters; it_++) { stmt; collect_run(); }         \
        report(label);                                                         \
    } while (0)

static void conv_case(size_t C, size_t H, size_t K, size_t R, size_t stride, size_t pad) {
    conv_shape s = {.B = 8, .C = C, .H = H, .W = H, .K = K, .R = R, .S = R, .stride = stride, .pad = pad, .dil = 1};
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s);
    cd_mem x = rand_dev(s.B * C * H * H), w = rand_dev(K * C * R * R), out = rand_dev(s.B * K * Ho * Wo);
    cd_mem dx = rand_dev(s.B * C * H * H), dw = rand_dev(K * C * R * R);
    char label[64];
    snprintf(label, sizeof label, "conv %zux%zu %zu->%zu @%zu s%zu fwd", R, R, C, K, H, stride);
    RUN(label, op_conv2d_forward(dev, out, x, w, cd_none(), &s));
    snprintf(label, sizeof label, "conv %zux%zu %zu->%zu @%zu s%zu bwd", R, R, C, K, H, stride);
    RUN(label, op_conv2d_backward(dev, dx, dw, cd_none(), out, x, w, &s, 0));
    cd_free(dev, x); cd_free(dev, w); cd_free(dev, out); cd_free(dev, dx); cd_free(dev, dw);
}

static void bn_case(size_t C, size_t HW) {
    size_t B = 8, n = B * C * HW;
    cd_mem x = rand_dev(n), out = rand_dev(n), dx = rand_dev(n), dout = rand_dev(n);
    cd_mem w = rand_dev(C), b = rand_dev(C), rm = rand_dev(C), rv = rand_dev(C), sm = rand_dev(C), sr = rand_dev(C);
    cd_mem var = rand_dev(C), dw = rand_dev(C), db = rand_dev(C);
    cd_fill(dev, var, 1.0f, C);
    char label[64];
    snprintf(label, sizeof label, "bn %zu x %zu train fwd", C, HW);
    RUN(label, op_batchnorm_train_forward(dev, out, sm, sr, rm, rv, x, w, b, B, C, HW, 1e-5f, 0.1f));
    snprintf(label, sizeof label, "bn %zu x %zu train bwd", C, HW);
    RUN(label, op_batchnorm_train_backward(dev, dx, dw, db, dout, x, sm, sr, w, B, C, HW, 0));
    snprintf(label, sizeof label, "bn %zu x %zu frozen fwd", C, HW);
    RUN(label, op_batchnorm_frozen_forward(dev, out, x, w, b, rm, var, B, C, HW, 1e-5f));
    cd_mem ms[] = {x, out, dx, dout, w, b, rm, rv, sm, sr, var, dw, db};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(dev, ms[i]);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else { fprintf(stderr, "usage: bench_perf_kernels [--iters N] [--only SUBSTRING]\n"); return 2; }
    }
    int pinned = !getenv("POCL_AFFINITY");
    if (pinned) setenv("POCL_AFFINITY", "1", 0);   /* before the ICD loads PoCL */
    dev = cd_open(NULL, 1);
    if (!dev) { fprintf(stderr, "%s\n", cd_errbuf()); return 1; }
    printf("device: %s%s\n", dev->info.name, pinned ? " (POCL_AFFINITY=1 set here: pinned PoCL threads)" : "");
    if (bench_check_ops(dev, "pool dropout batchnorm conv layernorm permute elementwise")) return 1;

    /* max pool of the stem: (8, 32, 64, 64) -> 32x32 */
    {
        size_t B = 8, C = 32, H = 64, Ho = pool_out(H, 3, 2, 1);
        cd_mem x = rand_dev(B * C * H * H), out = rand_dev(B * C * Ho * Ho), am = rand_dev(B * C * Ho * Ho);
        cd_mem dx = rand_dev(B * C * H * H);
        RUN("maxpool fwd", op_maxpool_forward(dev, out, am, x, B, C, H, H, 3, 2, 1));
        RUN("maxpool bwd", op_maxpool_backward(dev, dx, out, am, B, C, H, H, 3, 2, 1, 0));
        cd_free(dev, x); cd_free(dev, out); cd_free(dev, am); cd_free(dev, dx);
    }
    /* dropout of the FFN hidden (16 tokens x 8 x 512) */
    {
        size_t n = 65536;
        cd_mem x = rand_dev(n), out = rand_dev(n), dx = rand_dev(n);
        RUN("dropout fwd", op_dropout_forward(dev, out, x, n, 0.1f, 42, 7));
        RUN("dropout bwd", op_dropout_backward(dev, dx, out, n, 0.1f, 42, 7, 0));
        cd_free(dev, x); cd_free(dev, out); cd_free(dev, dx);
    }
    /* batch norm at each stage */
    bn_case(32, 64 * 64);
    bn_case(32, 32 * 32);
    bn_case(64, 16 * 16);
    bn_case(128, 8 * 8);
    bn_case(256, 4 * 4);
    /* convs: stem, each stage's 3x3 and strided ones, downsample 1x1, input_proj */
    conv_case(3, 128, 32, 7, 2, 3);
    conv_case(32, 32, 32, 3, 1, 1);
    conv_case(32, 32, 64, 3, 2, 1);
    conv_case(64, 16, 64, 3, 1, 1);
    conv_case(32, 32, 64, 1, 2, 0);
    conv_case(64, 16, 128, 3, 2, 1);
    conv_case(128, 8, 128, 3, 1, 1);
    conv_case(128, 8, 256, 3, 2, 1);
    conv_case(256, 4, 256, 3, 1, 1);
    conv_case(256, 4, 128, 1, 1, 0);
    /* layer norm over the encoder tokens (16 x 8, d 128) and decoder (20 x 8) */
    {
        size_t N = 160, C = 128;
        cd_mem x = rand_dev(N * C), out = rand_dev(N * C), w = rand_dev(C), b = rand_dev(C);
        cd_mem mean = rand_dev(N), rstd = rand_dev(N), dx = rand_dev(N * C), dw = rand_dev(C), db = rand_dev(C);
        RUN("layernorm fwd", op_layernorm_forward(dev, out, mean, rstd, x, w, b, N, C, 1e-5f));
        RUN("layernorm bwd", op_layernorm_backward(dev, dx, dw, db, out, x, mean, rstd, w, N, C, 0));
        cd_free(dev, x); cd_free(dev, out); cd_free(dev, w); cd_free(dev, b); cd_free(dev, mean);
        cd_free(dev, rstd); cd_free(dev, dx); cd_free(dev, dw); cd_free(dev, db);
    }
    /* attention head split: (B, L, NH, hd) -> (B, NH, L, hd), and relu on the FFN hidden */
    {
        cd_mem x = rand_dev(65536), out = rand_dev(65536);
        RUN("permute heads", op_permute(dev, out, x, (size_t[]){8, 20, 4, 32}, (int[]){0, 2, 1, 3}, 0));
        RUN("relu 65536", op_relu_forward(dev, out, x, 65536));
        RUN("add 65536", op_add(dev, out, x, out, 65536));
        cd_free(dev, x); cd_free(dev, out);
    }
    cd_close(dev);
    return 0;
}
