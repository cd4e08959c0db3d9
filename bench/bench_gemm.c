/* GEMM at DETR's shapes through cd_gemm: CLBlast against cldetr's own kernels
 * (cl/blas.cl), same buffers, interleaved, with the largest difference between
 * the two results.
 *
 *   bench_gemm [--iters-scale S]
 *
 * Each case: M x N x K and the layout (row-major, as the ops call cd_gemm). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/ops.h"
#include "bench_util.h"

typedef struct { size_t M, N, K; int ta, tb; const char *what; } gemm_case;

static const gemm_case cases[] = {
    {128, 128, 128, 0, 1, "encoder linear, x W^T"},
    {80, 128, 128, 0, 1, "decoder linear (10 queries x 8)"},
    {128, 512, 128, 0, 1, "FFN up"},
    {128, 128, 512, 0, 1, "FFN down"},
    {128, 128, 128, 0, 0, "linear dx = dy W"},
    {128, 128, 128, 1, 0, "linear dW = dy^T x"},
    {512, 128, 128, 1, 0, "FFN dW = dy^T x"},
    {32, 1024, 288, 0, 0, "conv fwd layer 1 (w col)"},
    {64, 1024, 576, 0, 0, "conv fwd 64ch 32x32"},
    {320, 1024, 32, 1, 0, "conv dx layer 1 (w^T dout)"},
    {640, 1024, 64, 1, 0, "conv dx 64ch"},
    {256, 256, 256, 0, 0, "256^3"},
    {256, 2048, 256, 0, 1, "FFN 256x2048x256"},
};

int main(int argc, char **argv) {
    double scale = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters-scale") && i + 1 < argc) scale = atof(argv[++i]);
        else { fprintf(stderr, "usage: bench_gemm [--iters-scale S]\n"); return 2; }
    }
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) { fprintf(stderr, "bench_gemm: %s\n", cd_errbuf()); return 1; }
    if (bench_check_ops(dev, "linear")) return 1;   /* never time a wrong product */
    printf("%s\n%-34s %-16s %10s %8s %10s %8s %9s\n", dev->info.name, "case", "M x N x K", "CLBlast us", "GFLOP/s",
           "own us", "GFLOP/s", "max diff");
    for (size_t ci = 0; ci < CD_ARRAY_LEN(cases); ci++) {
        const gemm_case *g = &cases[ci];
        size_t lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N;
        cd_mem A = bench_rand_dev(dev, g->M * g->K), B = bench_rand_dev(dev, g->K * g->N);
        cd_mem C[2] = {cd_alloc(dev, g->M * g->N, "C"), cd_alloc(dev, g->M * g->N, "C")};
        double flop = 2.0 * g->M * g->N * g->K, t[2] = {1e30, 1e30};
        int iters = (int)(scale * 1e9 / flop);
        if (iters < 3) iters = 3;
        for (int round = 0; round < 3; round++)
            for (int own = 0; own < 2; own++) {
                int old = cd_gemm_set_own(own);
                cd_gemm(dev, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, C[own], g->N);
                cd_finish(dev);
                double t0 = cd_now();
                for (int i = 0; i < iters; i++)
                    cd_gemm(dev, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, B, ldb, 0.0f, C[own], g->N);
                cd_finish(dev);
                t[own] = fmin(t[own], (cd_now() - t0) / iters);
                cd_gemm_set_own(old);
            }
        float *h[2];
        for (int k = 0; k < 2; k++) { h[k] = malloc(g->M * g->N * sizeof(float)); cd_read(dev, h[k], C[k], g->M * g->N); }
        double md = 0;
        for (size_t i = 0; i < g->M * g->N; i++) md = fmax(md, fabs((double)h[0][i] - h[1][i]));
        char shape[32];
        snprintf(shape, sizeof shape, "%zux%zux%zu %s%s", g->M, g->N, g->K, g->ta ? "T" : "N", g->tb ? "T" : "N");
        printf("%-34s %-16s %10.1f %8.1f %10.1f %8.1f %9.2e\n", g->what, shape, t[0] * 1e6, flop / t[0] * 1e-9,
               t[1] * 1e6, flop / t[1] * 1e-9, md);
        fflush(stdout);
        for (int k = 0; k < 2; k++) { free(h[k]); cd_free(dev, C[k]); }
        cd_free(dev, A);
        cd_free(dev, B);
    }
    cd_close(dev);
    return 0;
}
