/* GEMM at DETR's shapes through cd_gemm on each of its paths: CLBlast,
 * cl/blas.cl's row kernels (the default on CPUs) and its tile kernels (the
 * default on GPUs; by shape, or forced to the small or the large tile
 * shape), same buffers, interleaved, with the largest difference from the
 * first path's result.
 *
 *   bench_gemm [--iters-scale S] [--r50] [--paths clblast,rows,tiles,tiles-small,tiles-large]
 *
 * Each case: M x N x K and the layout (row-major, as the ops call cd_gemm).
 * The default cases are shapes.ini's; --r50 adds DETR-R50's at 800 x 800,
 * batch 2 (the convs' forward, dx and dw products, the transformer's linears
 * and attention). The default paths: CLBlast and the device's default. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/ops.h"
#include "bench_util.h"

typedef struct { size_t M, N, K; int ta, tb; size_t batch; const char *what; } gemm_case;

static const gemm_case cases[] = {
    {128, 128, 128, 0, 1, 1, "encoder linear, x W^T"},
    {80, 128, 128, 0, 1, 1, "decoder linear (10 queries x 8)"},
    {128, 512, 128, 0, 1, 1, "FFN up"},
    {128, 128, 512, 0, 1, 1, "FFN down"},
    {128, 128, 128, 0, 0, 1, "linear dx = dy W"},
    {128, 128, 128, 1, 0, 1, "linear dW = dy^T x"},
    {512, 128, 128, 1, 0, 1, "FFN dW = dy^T x"},
    {32, 1024, 288, 0, 0, 1, "conv fwd layer 1 (w col)"},
    {64, 1024, 576, 0, 0, 1, "conv fwd 64ch 32x32"},
    {320, 1024, 32, 1, 0, 1, "conv dx layer 1 (w^T dout)"},
    {640, 1024, 64, 1, 0, 1, "conv dx 64ch"},
    {256, 256, 256, 0, 0, 1, "256^3"},
    {256, 2048, 256, 0, 1, 1, "FFN 256x2048x256"},
};

static const gemm_case r50_cases[] = {
    {64, 160000, 147, 0, 0, 1, "R50 stem fwd (7x7, 400^2)"},
    {64, 40000, 576, 0, 0, 1, "R50 layer1 3x3 fwd"},
    {256, 40000, 64, 0, 0, 1, "R50 layer1 1x1 expand fwd"},
    {256, 2500, 2304, 0, 0, 1, "R50 layer3 3x3 fwd"},
    {512, 625, 4608, 0, 0, 1, "R50 layer4 3x3 fwd"},
    {576, 40000, 64, 1, 0, 1, "R50 layer1 3x3 dx (w^T dout)"},
    {2304, 2500, 256, 1, 0, 1, "R50 layer3 3x3 dx"},
    {64, 576, 40000, 0, 1, 1, "R50 layer1 3x3 dw (dout col^T)"},
    {64, 576, 40000, 0, 0, 1, "R50 layer1 3x3 dw (dout colT)"},
    {256, 2304, 2500, 0, 0, 1, "R50 layer3 3x3 dw (dout colT)"},
    {512, 4608, 625, 0, 0, 1, "R50 layer4 3x3 dw (dout colT)"},
    {1250, 256, 256, 0, 1, 1, "R50 encoder linear"},
    {1250, 2048, 256, 0, 1, 1, "R50 FFN up"},
    {1250, 256, 2048, 0, 1, 1, "R50 FFN down"},
    {2048, 256, 1250, 1, 0, 1, "R50 FFN up dW"},
    {625, 625, 32, 0, 1, 16, "R50 attention scores (16 heads x img)"},
    {625, 32, 625, 0, 0, 16, "R50 attention x V"},
};

typedef struct { const char *name; int mode, tile; } gemm_path;
static const gemm_path all_paths[] = {
    {"clblast", CD_GEMM_CLBLAST, 0}, {"rows", CD_GEMM_ROWS, 0}, {"tiles", CD_GEMM_TILES, 0},
    {"tiles-small", CD_GEMM_TILES, CD_TILE_SMALL}, {"tiles-large", CD_GEMM_TILES, CD_TILE_LARGE},
};
#define MAX_PATHS 5

static void run_case(cd_device *dev, const gemm_case *g, const gemm_path **paths, int np, double scale) {
    size_t lda = g->ta ? g->M : g->K, ldb = g->tb ? g->K : g->N, mn = g->M * g->N;
    size_t sA = g->M * g->K, sB = g->K * g->N;
    cd_mem A = bench_rand_dev(dev, sA * g->batch), B = bench_rand_dev(dev, sB * g->batch);
    cd_mem C[MAX_PATHS];
    double flop = 2.0 * g->M * g->N * g->K * g->batch, t[MAX_PATHS];
    for (int p = 0; p < np; p++) { C[p] = cd_alloc(dev, mn * g->batch, "C"); t[p] = 1e30; }
    int iters = (int)(scale * 1e9 / flop);
    if (iters < 3) iters = 3;
    for (int round = 0; round < 3; round++)
        for (int p = 0; p < np; p++) {
            int old = cd_gemm_set_kernels(paths[p]->mode);
            cd_gemm_set_tiles(paths[p]->tile, 0);
            cd_gemm_batched(dev, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, sA, B, ldb, sB, 0.0f, C[p], g->N, mn,
                            g->batch);
            cd_finish(dev);
            double t0 = cd_now();
            for (int i = 0; i < iters; i++)
                cd_gemm_batched(dev, g->ta, g->tb, g->M, g->N, g->K, 1.0f, A, lda, sA, B, ldb, sB, 0.0f, C[p], g->N,
                                mn, g->batch);
            cd_finish(dev);
            t[p] = fmin(t[p], (cd_now() - t0) / iters);
            cd_gemm_set_kernels(old);
            cd_gemm_set_tiles(0, 0);
        }
    char shape[48];
    snprintf(shape, sizeof shape, "%zux%zux%zu %s%s%s", g->M, g->N, g->K, g->ta ? "T" : "N", g->tb ? "T" : "N",
             g->batch > 1 ? " b" : "");
    printf("%-38s %-18s", g->what, shape);
    float *ref = malloc(mn * g->batch * sizeof(float)), *got = malloc(mn * g->batch * sizeof(float));
    cd_read(dev, ref, C[0], mn * g->batch);
    for (int p = 0; p < np; p++) {
        cd_read(dev, got, C[p], mn * g->batch);
        double md = 0;
        for (size_t i = 0; i < mn * g->batch; i++) md = fmax(md, fabs((double)ref[i] - got[i]));
        printf(" %9.1f %8.1f", t[p] * 1e6, flop / t[p] * 1e-9);
        if (p > 0) printf(" %8.1e", md);
        cd_free(dev, C[p]);
    }
    printf("\n");
    fflush(stdout);
    free(ref);
    free(got);
    cd_free(dev, A);
    cd_free(dev, B);
}

int main(int argc, char **argv) {
    double scale = 1.0;
    int r50 = 0, np = 0;
    const gemm_path *paths[MAX_PATHS];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters-scale") && i + 1 < argc) scale = atof(argv[++i]);
        else if (!strcmp(argv[i], "--r50")) r50 = 1;
        else if (!strcmp(argv[i], "--paths") && i + 1 < argc) {
            char *list = argv[++i];
            for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                size_t k = 0;
                while (k < CD_ARRAY_LEN(all_paths) && strcmp(all_paths[k].name, tok)) k++;
                if (k == CD_ARRAY_LEN(all_paths) || np == MAX_PATHS) {
                    fprintf(stderr, "bench_gemm: unknown path '%s' (clblast, rows, tiles, tiles-small, "
                                    "tiles-large)\n", tok);
                    return 2;
                }
                paths[np++] = &all_paths[k];
            }
        } else {
            fprintf(stderr,
                    "usage: bench_gemm [--iters-scale S] [--r50] "
                    "[--paths clblast,rows,tiles,tiles-small,tiles-large]\n");
            return 2;
        }
    }
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) { fprintf(stderr, "bench_gemm: %s\n", cd_errbuf()); return 1; }
    if (bench_check_ops(dev, "linear")) return 1;   /* never time a wrong product */
    if (np == 0) {
        paths[np++] = &all_paths[0];
        int mode = cd_gemm_kernels(dev);
        if (mode != CD_GEMM_CLBLAST) paths[np++] = &all_paths[mode];
    }
    printf("%s (default GEMM kernels: %s)\n%-38s %-18s", dev->info.name, cd_gemm_kernels_name(dev), "case",
           "M x N x K");
    for (int p = 0; p < np; p++) printf(" %9s %8s%s", paths[p]->name, "GFLOP/s", p > 0 ? " max diff" : "");
    printf("\n");
    for (size_t ci = 0; ci < CD_ARRAY_LEN(cases); ci++) run_case(dev, &cases[ci], paths, np, scale);
    if (r50)
        for (size_t ci = 0; ci < CD_ARRAY_LEN(r50_cases); ci++) run_case(dev, &r50_cases[ci], paths, np, scale);
    cd_close(dev);
    return 0;
}
