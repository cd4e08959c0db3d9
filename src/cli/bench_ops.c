/* cldetr bench-ops: GFLOP/s of GEMM at DETR's shapes as the ops issue them
 * (cd_gemm: CLBlast, and cldetr's own kernels where cd_gemm takes them: the
 * row kernels on CPUs, the tile kernels on GPUs), beside OpenBLAS's sgemm on the same shapes in the same run,
 * and of conv2d forward/backward.
 *
 * OpenBLAS is loaded with dlopen (libopenblas.so.0, or CLDETR_OPENBLAS=path), so
 * the cldetr binary does not depend on it; without it the ratio column is left
 * out. For OpenBLAS's real ceiling on the build machine, run as
 *     env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE cldetr bench-ops
 * (the machine presets an older core type that halves OpenBLAS's speed, and a
 * process cannot undo that after libopenblas has loaded). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/blas_tune.h"
#include "cldetr/ops.h"
#include "cli/args.h"
#include "cli/cli.h"

typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef struct {
    sgemm_fn sgemm;
    int (*threads)(void);
    char *(*config)(void);
} openblas;

static int load_openblas(openblas *ob) {
    memset(ob, 0, sizeof *ob);
    const char *env = getenv("CLDETR_OPENBLAS");
    const char *names[] = {env, "libopenblas.so.0", "libopenblas.so"};
    void *h = NULL;
    for (size_t i = 0; i < CD_ARRAY_LEN(names) && !h; i++)
        if (names[i] && *names[i]) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) return -1;
    *(void **)&ob->sgemm = dlsym(h, "cblas_sgemm");
    *(void **)&ob->threads = dlsym(h, "openblas_get_num_threads");
    *(void **)&ob->config = dlsym(h, "openblas_get_config");
    return ob->sgemm ? 0 : -1;
}

typedef struct { size_t M, N, K; int ta, tb; size_t batch; const char *what; } gemm_shape;
static const gemm_shape gemm_shapes[] = {
    {256, 256, 256, 0, 0, 1, "256x256x256 NN"},
    {256, 2048, 256, 0, 1, 1, "FFN 256x2048x256 NT"},
    {256, 256, 2048, 0, 0, 1, "FFN back 256x256x2048 NN"},
    {4096, 64, 576, 0, 0, 1, "im2col 4096x64x576 NN"},
    {16384, 64, 576, 0, 0, 1, "im2col 16384x64x576 NN"},
    {64, 4096, 576, 0, 0, 1, "conv w.col 64x4096x576 NN"},
    {256, 256, 32, 0, 1, 8, "attn 8x(256x256x32) NT"},
};
#define N_GEMM ((int)CD_ARRAY_LEN(gemm_shapes))

static double min_seconds = 0.2;

/* Best-of-3 GFLOP/s of the device GEMM on one shape (a warm-up call first). */
static double bench_device(cd_device *dev, const gemm_shape *s) {
    size_t sa = s->M * s->K, sb = s->K * s->N, sc = s->M * s->N;
    cd_mem A = cd_alloc(dev, sa * s->batch, "bench A"), B = cd_alloc(dev, sb * s->batch, "bench B"),
           C = cd_alloc(dev, sc * s->batch, "bench C");
    cd_fill(dev, A, 0.5f, sa * s->batch);
    cd_fill(dev, B, 0.25f, sb * s->batch);
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flop = 2.0 * s->M * s->N * s->K * s->batch, best = 0;
    for (int r = -1; r < 3; r++) {
        int calls = 0;
        double t0 = cd_now(), t;
        do {
            cd_gemm_batched(dev, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, sa, B, ldb, sb, 0.0f, C, s->N, sc,
                            s->batch);
            calls++;
            cd_finish(dev);
            t = cd_now() - t0;
        } while (r >= 0 && t < min_seconds);
        if (r >= 0) best = CD_MAX(best, calls * flop / t * 1e-9);
    }
    cd_free(dev, A); cd_free(dev, B); cd_free(dev, C);
    return best;
}

static double bench_openblas(const openblas *ob, const gemm_shape *s) {
    size_t sa = s->M * s->K, sb = s->K * s->N, sc = s->M * s->N;
    float *A = cd_xmalloc(sa * s->batch * 4), *B = cd_xmalloc(sb * s->batch * 4), *C = cd_xmalloc(sc * s->batch * 4);
    for (size_t i = 0; i < sa * s->batch; i++) A[i] = 0.5f;
    for (size_t i = 0; i < sb * s->batch; i++) B[i] = 0.25f;
    int lda = (int)(s->ta ? s->M : s->K), ldb = (int)(s->tb ? s->K : s->N);
    double flop = 2.0 * s->M * s->N * s->K * s->batch, best = 0;
    for (int r = -1; r < 3; r++) {
        int calls = 0;
        double t0 = cd_now(), t;
        do {
            for (size_t b = 0; b < s->batch; b++)
                ob->sgemm(CBLAS_ROW_MAJOR, s->ta ? CBLAS_TRANS : CBLAS_NO_TRANS, s->tb ? CBLAS_TRANS : CBLAS_NO_TRANS,
                          (int)s->M, (int)s->N, (int)s->K, 1.0f, A + b * sa, lda, B + b * sb, ldb, 0.0f, C + b * sc,
                          (int)s->N);
            calls++;
            t = cd_now() - t0;
        } while (r >= 0 && t < min_seconds);
        if (r >= 0) best = CD_MAX(best, calls * flop / t * 1e-9);
    }
    free(A); free(B); free(C);
    return best;
}

typedef struct { conv_shape s; const char *what; } conv_case;
static const conv_case conv_cases[] = {
    {{2, 64, 64, 64, 64, 3, 3, 1, 1, 1}, "2x64x64x64 -> 64, 3x3"},
    {{8, 128, 16, 16, 128, 3, 3, 1, 1, 1}, "8x128x16x16 -> 128, 3x3"},
    {{8, 256, 8, 8, 128, 1, 1, 1, 0, 1}, "8x256x8x8 -> 128, 1x1"},
};

/* conv2d forward and backward (dx, dw, db) GFLOP/s; the backward counts 2x the forward's FLOPs */
static void bench_conv(cd_device *dev, const conv_case *c, double *fwd, double *bwd) {
    const conv_shape *s = &c->s;
    size_t Ho = conv_out_h(s), Wo = conv_out_w(s);
    size_t nx = s->B * s->C * s->H * s->W, nw = s->K * s->C * s->R * s->S, no = s->B * s->K * Ho * Wo;
    cd_mem x = cd_alloc(dev, nx, "bench x"), w = cd_alloc(dev, nw, "bench w"), b = cd_alloc(dev, s->K, "bench b"),
           out = cd_alloc(dev, no, "bench out"), dx = cd_alloc(dev, nx, "bench dx"), dw = cd_alloc(dev, nw, "bench dw"),
           db = cd_alloc(dev, s->K, "bench db");
    cd_fill(dev, x, 0.5f, nx); cd_fill(dev, w, 0.01f, nw); cd_fill(dev, b, 0.1f, s->K);
    cd_fill(dev, dw, 0, nw); cd_fill(dev, db, 0, s->K);
    double flop = 2.0 * s->B * s->K * s->C * s->R * s->S * Ho * Wo;
    for (int pass = 0; pass < 2; pass++) {
        double best = 0;
        for (int r = -1; r < 3; r++) {
            int calls = 0;
            double t0 = cd_now(), t;
            do {
                if (pass == 0) op_conv2d_forward(dev, out, x, w, b, s);
                else op_conv2d_backward(dev, dx, dw, db, out, x, w, s, 0);
                calls++;
                cd_finish(dev);
                t = cd_now() - t0;
            } while (r >= 0 && t < min_seconds);
            if (r >= 0) best = CD_MAX(best, calls * flop * (pass ? 2 : 1) / t * 1e-9);
        }
        *(pass ? bwd : fwd) = best;
    }
    cd_mem all[] = {x, w, b, out, dx, dw, db};
    for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) cd_free(dev, all[i]);
}

int cmd_bench_ops(int argc, char **argv) {
    const char *spec = NULL;
    int with_default = 0, layouts = 0, conv = 1;
    const char *secs;
    args a;
    args_init(&a, "bench-ops", argc, argv, 0);
    while (args_next(&a)) {
        args_value(&a, "--device", &spec);
        if (args_flag(&a, "--default")) with_default = 1;
        if (args_flag(&a, "--layouts")) layouts = 1;
        if (args_flag(&a, "--no-conv")) conv = 0;
        if (args_value(&a, "--seconds", &secs)) {
            char *end;
            double v = strtod(secs, &end);
            if (end == secs || *end || !(v > 0 && v <= 60))
                return args_error(&a, "--seconds needs a number in (0, 60], got '%s'", secs);
            min_seconds = v;
        }
    }
    if (a.rc >= 0) return a.rc;
    if (with_default) setenv("CLDETR_GEMM_TUNING", "off", 1);
    cd_device *dev = cd_open(spec, 0);
    if (!dev) return cli_error();
    size_t len = 0;
    char *tuning = cd_cache_load("gemm", cd_blas_tuning_key(dev), &len);
    if (tuning) { tuning = cd_xrealloc(tuning, len + 1); tuning[len] = '\0'; }
    openblas ob;
    int have_ob = load_openblas(&ob) == 0;
    printf("device: %s (%s)\n", dev->info.name, dev->info.platform_version);
    printf("GEMM parameters: %s%s\n", dev->gemm_params, tuning ? "" : " (cldetr tune measures this device's best)");
    if (have_ob)
        printf("OpenBLAS: %s, %d threads%s\n", ob.config ? ob.config() : "?", ob.threads ? ob.threads() : -1,
               getenv("OPENBLAS_CORETYPE") || getenv("OPENBLAS_L2_SIZE")
                   ? " (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE set: not its ceiling, see --help)" : "");
    else
        printf("OpenBLAS: not found (libopenblas.so.0; set CLDETR_OPENBLAS=path); no ratio column\n");

    double g[N_GEMM][6] = {{0}};        /* default, tuned, row, swap, openblas, own */
    /* the device's own kernels (CD_GEMM_ROWS or _TILES; 0 when cd_gemm runs
     * CLBlast); CLBlast's columns are CLBlast's */
    int own = cd_gemm_kernels(dev), own_old = cd_gemm_set_kernels(CD_GEMM_CLBLAST);
    if (with_default) {
        printf("timing CLBlast defaults...\n");
        fflush(stdout);
        for (int s = 0; s < N_GEMM; s++) g[s][0] = bench_device(dev, &gemm_shapes[s]);
        if (tuning) cd_blas_apply_tuning(dev, tuning);
    }
    printf("timing %s...\n", tuning ? "the stored tuning" : "CLBlast");
    fflush(stdout);
    for (int s = 0; s < N_GEMM; s++) {
        g[s][1] = bench_device(dev, &gemm_shapes[s]);
        if (layouts) {
            cd_blas_set_layout(0); g[s][2] = bench_device(dev, &gemm_shapes[s]);
            cd_blas_set_layout(1); g[s][3] = bench_device(dev, &gemm_shapes[s]);
            cd_blas_set_layout(-1);
        }
        if (have_ob) g[s][4] = bench_openblas(&ob, &gemm_shapes[s]);
        if (own) {
            cd_gemm_set_kernels(own);
            g[s][5] = bench_device(dev, &gemm_shapes[s]);
            cd_gemm_set_kernels(CD_GEMM_CLBLAST);
        }
    }
    cd_gemm_set_kernels(own_old);
    int used = own ? 5 : 1;   /* the column of the path cd_gemm takes on this device */
    printf("\nGEMM GFLOP/s (M x N x K, row-major as the ops call it; best of 3 rounds of %.2g s)\n", min_seconds);
    printf("%-28s", "shape");
    if (with_default) printf(" %9s", "default");
    printf(" %9s", tuning ? "tuned" : "CLBlast");
    if (layouts) printf(" %9s %9s", "row", "swapped");
    if (own) printf(" %9s", "cldetr");
    if (have_ob) printf(" %9s %9s", "OpenBLAS", "ratio");
    printf("\n");
    for (int s = 0; s < N_GEMM; s++) {
        printf("%-28s", gemm_shapes[s].what);
        if (with_default) printf(" %9.1f", g[s][0]);
        printf(" %9.1f", g[s][1]);
        if (layouts) printf(" %9.1f %9.1f", g[s][2], g[s][3]);
        if (own) printf(" %9.1f", g[s][5]);
        if (have_ob) printf(" %9.1f %9.2f", g[s][4], g[s][4] > 0 ? g[s][used] / g[s][4] : 0.0);
        printf("\n");
    }
    if (own) printf("(cldetr = cd_gemm's own kernels on this device: %s)\n", cd_gemm_kernels_name(dev));
    if (have_ob) printf("(ratio = %s / OpenBLAS; attention on OpenBLAS is a loop over the 8 heads)\n",
                        own ? "cldetr" : tuning ? "tuned" : "CLBlast");
    if (conv) {
        printf("\nconv2d GFLOP/s (im2col + GEMM; backward = dx + dw + db, counted as 2x the forward FLOPs)\n");
        printf("%-28s %9s %9s\n", "B x C x H x W -> K, RxS", "forward", "backward");
        for (size_t c = 0; c < CD_ARRAY_LEN(conv_cases); c++) {
            double f = 0, b = 0;
            bench_conv(dev, &conv_cases[c], &f, &b);
            printf("%-28s %9.1f %9.1f\n", conv_cases[c].what, f, b);
            fflush(stdout);
        }
    }
    free(tuning);
    cd_close(dev);
    return 0;
}
