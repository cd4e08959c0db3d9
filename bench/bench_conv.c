/* conv2d timing at a ResNet-ish shape: im2col / col2im alone (against a copy),
 * each GEMM of the chosen layouts alone, the weight-gradient GEMM in its two
 * candidate layouts, and the whole ops with the default grouping of images and
 * image by image. The conv cases of the shared table (cd_op_cases) run first.
 *
 *   bench_conv [B C K H W R stride pad] [--iters N] [--tuned] [--profile] [--movers 0|1] [--implicit 0|1]
 *              [--dw-gemm 0|1]
 *
 * Defaults: 8 64 64 32 32 3 1 1. --tuned applies a good Xgemm set for PoCL on
 * a CPU first (the centre of `cldetr tune`'s grid) instead of whatever
 * `cldetr tune` stored for the device; --profile prints time per kernel;
 * --movers and --implicit force im2col/col2im's CPU shape (1) or the
 * work-item-per-element kernels (0), and the implicit 3x3 path on or off
 * (op_conv2d_set_cpu_movers, op_conv2d_set_implicit), and short weight
 * gradients through the row GEMM or conv_dw_nt (op_conv2d_set_dw_gemm),
 * instead of the device's defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/blas_tune.h"
#include "cldetr/ops.h"
#include "ops/op_ref.h"
#include "bench_util.h"

static cd_device *dev;
static int iters = 5;

static cd_mem rand_dev(size_t n) { return bench_rand_dev(dev, n); }

typedef struct { cd_mem out, x, w, b, dout, dx, dw, db, col, dperm, kept; size_t group; conv_shape s; } bench_ctx;

static void run_fwd(bench_ctx *c) { op_conv2d_forward(dev, c->out, c->x, c->w, c->b, &c->s); }
static void run_bwd(bench_ctx *c) { op_conv2d_backward(dev, c->dx, c->dw, c->db, c->dout, c->x, c->w, &c->s, 0); }
/* dw (K, CRS) += dperm (K, BP) @ colT (BP, CRS): the chosen NN layout */
static void run_dw_nn(bench_ctx *c) {
    size_t P = conv_out_h(&c->s) * conv_out_w(&c->s), CRS = c->s.C * c->s.R * c->s.S, BP = c->s.B * P;
    cd_gemm(dev, 0, 0, c->s.K, CRS, BP, 1.0f, c->dperm, BP, c->col, CRS, 1.0f, c->dw, CRS);
}
/* dw (K, CRS) += dperm (K, BP) @ col^T, col (CRS, BP): the NT alternative */
static void run_dw_nt(bench_ctx *c) {
    size_t P = conv_out_h(&c->s) * conv_out_w(&c->s), CRS = c->s.C * c->s.R * c->s.S, BP = c->s.B * P;
    cd_gemm(dev, 0, 1, c->s.K, CRS, BP, 1.0f, c->dperm, BP, c->col, BP, 1.0f, c->dw, CRS);
}
/* tmp (K, BP) = w (K, CRS) @ col (CRS, BP): the forward GEMM alone */
static void run_fwd_gemm(bench_ctx *c) {
    size_t P = conv_out_h(&c->s) * conv_out_w(&c->s), CRS = c->s.C * c->s.R * c->s.S, BP = c->s.B * P;
    cd_gemm(dev, 0, 0, c->s.K, BP, CRS, 1.0f, c->w, CRS, c->col, BP, 0.0f, c->dperm, BP);
}
/* dcol (CRS, BP) = w^T @ dperm (K, BP): the dx GEMM alone */
static void run_dx_gemm(bench_ctx *c) {
    size_t P = conv_out_h(&c->s) * conv_out_w(&c->s), CRS = c->s.C * c->s.R * c->s.S, BP = c->s.B * P;
    cd_gemm(dev, 1, 0, CRS, BP, c->s.K, 1.0f, c->w, CRS, c->dperm, BP, 0.0f, c->col, BP);
}

/* the weight gradient alone from the forward's kept columns (conv_dw_nt's path) */
static void run_dw_kept(bench_ctx *c) {
    op_conv2d_backward_kept(dev, cd_none(), c->dw, cd_none(), c->dout, c->x, c->w, c->kept, c->group, &c->s, 0);
}

static void run_im2col(bench_ctx *c) { op_conv2d_im2col(dev, c->col, c->x, &c->s, 0); }
static void run_im2col_t(bench_ctx *c) { op_conv2d_im2col(dev, c->col, c->x, &c->s, 1); }
static void run_col2im(bench_ctx *c) { op_conv2d_col2im(dev, c->dx, c->col, &c->s, 0); }
static void run_copy(bench_ctx *c) {
    cd_copy(dev, c->col, cd_at(c->col, c->s.B * c->s.C * c->s.R * c->s.S * conv_out_h(&c->s) * conv_out_w(&c->s) / 2),
            c->s.B * c->s.C * c->s.R * c->s.S * conv_out_h(&c->s) * conv_out_w(&c->s) / 2);
}

static void timeit(const char *name, void (*fn)(bench_ctx *), bench_ctx *c, double flop) {
    fn(c);   /* warm-up: kernel compile, first touch of the pool's buffers */
    cd_finish(dev);
    double t0 = cd_now();
    for (int i = 0; i < iters; i++) fn(c);
    cd_finish(dev);
    double ms = 1e3 * (cd_now() - t0) / iters;
    printf("%-44s %9.2f ms  %7.1f GFLOP/s\n", name, ms, flop / (ms * 1e6));
    fflush(stdout);
}

/* "0" or "1": the switches' values (anything else is a usage error) */
static int is_bit(const char *a) { return (a[0] == '0' || a[0] == '1') && a[1] == 0; }

int main(int argc, char **argv) {
    size_t v[8] = {8, 64, 64, 32, 32, 3, 1, 1};
    int nv = 0, tuned = 0, profile = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tuned")) tuned = 1;
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--movers") && i + 1 < argc && is_bit(argv[i + 1]))
            op_conv2d_set_cpu_movers(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--implicit") && i + 1 < argc && is_bit(argv[i + 1]))
            op_conv2d_set_implicit(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--dw-gemm") && i + 1 < argc && is_bit(argv[i + 1]))
            op_conv2d_set_dw_gemm(atoi(argv[++i]));
        else if (nv < 8 && argv[i][0] >= '0' && argv[i][0] <= '9') v[nv++] = strtoul(argv[i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_conv [B C K H W R stride pad] [--iters N] [--tuned] [--profile] "
                            "[--movers 0|1] [--implicit 0|1] [--dw-gemm 0|1]\n");
            return 2;
        }
    }
    if (iters < 1) iters = 1;
    dev = cd_open(NULL, profile);
    if (!dev) { fprintf(stderr, "bench_conv: %s\n", cd_errbuf()); return 1; }
    if (bench_check_ops(dev, "conv")) return 1;
    if (tuned)
        printf("applied %d tuning line(s)\n",
               cd_blas_apply_tuning(dev, "Xgemm MWG=128 NWG=64 MDIMC=8 MDIMA=8 NDIMC=4 NDIMB=4 VWM=8 VWN=8 KWG=32 "
                                         "KWI=2 SA=0 SB=0 STRM=0 STRN=0 GEMMK=0 KREG=1\n"
                                         "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=0\n"));
    bench_ctx c;
    c.s = (conv_shape){.B = v[0], .C = v[1], .K = v[2], .H = v[3], .W = v[4], .R = v[5], .S = v[5],
                       .stride = v[6], .pad = v[7], .dil = 1};
    size_t P = conv_out_h(&c.s) * conv_out_w(&c.s), CRS = c.s.C * c.s.R * c.s.S;
    size_t nx = c.s.B * c.s.C * c.s.H * c.s.W, no = c.s.B * c.s.K * P, nw = c.s.K * CRS;
    c.x = rand_dev(nx); c.w = rand_dev(nw); c.b = rand_dev(c.s.K); c.dout = rand_dev(no);
    c.out = cd_alloc(dev, no, "out"); c.dx = cd_alloc(dev, nx, "dx");
    c.dw = rand_dev(nw); c.db = rand_dev(c.s.K);
    c.col = rand_dev(CRS * c.s.B * P); c.dperm = rand_dev(no);
    double gemm = 2.0 * c.s.B * c.s.K * CRS * P;
    printf("%s: B=%zu %zu->%zu ch, %zux%zu, %zux%zu stride %zu pad %zu; one GEMM = %.3f GFLOP, %d iterations\n",
           dev->info.name, c.s.B, c.s.C, c.s.K, c.s.H, c.s.W, c.s.R, c.s.S, c.s.stride, c.s.pad, gemm / 1e9, iters);

    double ncol = (double)CRS * c.s.B * P;   /* "GFLOP/s" of the data movers: Gfloat/s written */
    timeit("im2col alone (col)", run_im2col, &c, ncol);
    timeit("im2col alone (colT)", run_im2col_t, &c, ncol);
    timeit("col2im alone", run_col2im, &c, ncol);
    timeit("copy of half the col buffer", run_copy, &c, ncol / 2);
    timeit("forward GEMM alone, NN w @ col", run_fwd_gemm, &c, gemm);
    timeit("dx GEMM alone, TN w^T @ dperm", run_dx_gemm, &c, gemm);
    timeit("dw GEMM alone, NN dperm @ colT (chosen)", run_dw_nn, &c, gemm);
    timeit("dw GEMM alone, NT dperm @ col^T", run_dw_nt, &c, gemm);
    timeit("op_conv2d_forward, default grouping", run_fwd, &c, gemm);
    timeit("op_conv2d_backward (dx, dw, db), default grouping", run_bwd, &c, 2 * gemm);
    size_t nkept = op_conv2d_keep_floats(dev, &c.s);
    if (nkept) {
        c.kept = cd_alloc(dev, nkept, "kept columns");
        c.group = op_conv2d_forward_keep(dev, c.out, c.x, c.w, c.b, &c.s, c.kept);
        timeit("dw alone from kept columns, conv_dw_nt chunks", run_dw_kept, &c, gemm);
        int chunks = op_conv2d_set_dw_chunks(0);
        timeit("dw alone from kept columns, conv_dw_nt whole", run_dw_kept, &c, gemm);
        op_conv2d_set_dw_chunks(chunks);
        cd_free(dev, c.kept);
    }
    size_t old = op_conv2d_set_scratch_limit(CRS * P);
    timeit("op_conv2d_forward, image by image", run_fwd, &c, gemm);
    timeit("op_conv2d_backward (dx, dw, db), image by image", run_bwd, &c, 2 * gemm);
    op_conv2d_set_scratch_limit(old);
    if (profile) { cd_profile_collect(dev); cd_profile_print(dev, stdout); }
    cd_close(dev);
    return 0;
}
