/* `cldetr tune`: choose a device's GEMM parameters by measurement: the tile
 * shapes of cl/blas_tile.cl's kernels where cd_gemm runs them (GPUs), else
 * CLBlast's Xgemm parameters.
 *
 * Why: CLBlast's database has no entry for PoCL on a CPU, and its defaults run
 * 10-20x below OpenBLAS there (docs/performance.md). A small grid
 * around the set found best on the build machine (MWG=128 NWG=64 MDIMC=MDIMA=8
 * NDIMC=NDIMB=4 VWM=VWN=8 KWG=32 KWI=2 SA=SB=0) is enough to recover most of it.
 * The tile kernels' built-in shapes were the better of two tried on one GPU;
 * another GPU (or the same with other shapes) may want others.
 *
 * Every candidate runs in its own child process, forked before this process
 * touches OpenCL: the child opens the device with CLBlast's defaults and the
 * built-in tile shapes, applies the candidate, forces the kind of kernels
 * being tuned, checks GEMM against a double-precision host reference, times
 * the tuning shapes and writes one line to a pipe. The parent kills a child
 * that runs past the budget (some parameter sets take minutes to compile on
 * PoCL), and a crash in a driver compiling a strange set costs only that set. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cldetr/blas_tune.h"
#include "cldetr/selftest.h"
#include "blas_tile.h"

/* ---- the candidate grid -------------------------------------------------- */

#define GEMM_ROUTINE_LINE "GemmRoutine XGEMM_MIN_INDIRECT_SIZE=0"

/* Xgemm lines, GEMMK=0 (the 1-D register tiling kernel) with every parameter
 * CLBlast 1.5.3 requires. The first is the base set; the others change one or
 * two things about it: wider or narrower tiles, K blocking, unrolling, vector
 * widths, work-group shape, local memory. */
static const char *const candidates_cpu[] = {
    "MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=128 KWG=32 MDIMC=8 NDIMC=8 MDIMA=8 NDIMB=8 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=64 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=16 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    /* --quick stops here */
    "MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=4 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=1 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=4 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=64 NWG=128 KWG=32 MDIMC=4 NDIMC=8 MDIMA=4 NDIMB=8 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=16 NDIMC=8 MDIMA=16 NDIMB=8 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=64 MDIMC=8 NDIMC=4 MDIMA=8 NDIMB=4 KWI=2 VWM=8 VWN=8 SA=0 SB=0 STRM=0 STRN=0",
};
/* GPUs (any device that is not a CPU): work-groups of 64-256 work-items, both
 * tiles staged in local memory (SA=SB=1), 2-8 floats per vector and 16-64
 * accumulators per work-item, the shapes GPU SGEMM tuners settle on. Sets that
 * need more local memory or larger work-groups than the device offers are
 * skipped, named, before they are compiled. */
static const char *const candidates_gpu[] = {
    "MWG=64 NWG=64 KWG=16 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=2 VWN=2 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=128 KWG=16 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=4 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=16 NDIMC=8 MDIMA=16 NDIMB=8 KWI=2 VWM=4 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=64 NWG=64 KWG=32 MDIMC=8 NDIMC=8 MDIMA=8 NDIMB=8 KWI=2 VWM=4 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
    /* --quick stops here */
    "MWG=128 NWG=128 KWG=32 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=4 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=128 KWG=16 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=2 VWN=2 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=64 NWG=128 KWG=16 MDIMC=8 NDIMC=16 MDIMA=8 NDIMB=16 KWI=2 VWM=2 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=128 KWG=16 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=4 VWN=4 SA=1 SB=1 STRM=1 STRN=1",
    "MWG=64 NWG=64 KWG=16 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=2 VWM=2 VWN=2 SA=0 SB=0 STRM=0 STRN=0",
    "MWG=32 NWG=32 KWG=16 MDIMC=8 NDIMC=8 MDIMA=8 NDIMB=8 KWI=2 VWM=2 VWN=2 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=128 NWG=64 KWG=32 MDIMC=32 NDIMC=8 MDIMA=32 NDIMB=8 KWI=2 VWM=4 VWN=2 SA=1 SB=1 STRM=0 STRN=0",
    "MWG=64 NWG=64 KWG=32 MDIMC=16 NDIMC=16 MDIMA=16 NDIMB=16 KWI=8 VWM=4 VWN=4 SA=1 SB=1 STRM=0 STRN=0",
};
#define N_QUICK 4

/* cl/blas_tile.cl's tile shapes on GPUs (the default GEMM kernels there):
 * the built-in pair first, then k staged 16 or 32 deep (fewer barriers per
 * multiply-add), rectangular tiles (8 x 4 or 4 x 8 per work-item), 128-item
 * work-groups, 32 x 64 small tiles (more work-groups for a small model's
 * products), and the slices double-buffered (one barrier a slice). Pairs
 * that need more local memory or larger work-groups than the device offers
 * are skipped, named. */
static const char *const candidates_tiles[] = {
    "Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
    "Tiles S_BM=64 S_BN=64 S_BK=16 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=16 L_WX=16 L_WY=16",
    "Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=8 S_WY=16 L_BM=128 L_BN=64 L_BK=8 L_WX=16 L_WY=16",
    "Tiles S_BM=128 S_BN=64 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=16 L_WX=16 L_WY=16",
    /* --quick stops here */
    "Tiles S_BM=64 S_BN=64 S_BK=32 S_WX=16 S_WY=16 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
    "Tiles S_BM=64 S_BN=128 S_BK=8 S_WX=16 S_WY=16 L_BM=128 L_BN=64 L_BK=16 L_WX=16 L_WY=16",
    "Tiles S_BM=32 S_BN=64 S_BK=16 S_WX=16 S_WY=8 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16",
    "Tiles S_BM=64 S_BN=64 S_BK=16 S_WX=8 S_WY=16 L_BM=128 L_BN=64 L_BK=16 L_WX=8 L_WY=16",
    "Tiles S_BM=64 S_BN=64 S_BK=8 S_WX=16 S_WY=16 S_DB=1 L_BM=128 L_BN=128 L_BK=8 L_WX=16 L_WY=16 L_DB=1",
    "Tiles S_BM=64 S_BN=64 S_BK=16 S_WX=16 S_WY=16 S_DB=1 L_BM=128 L_BN=128 L_BK=16 L_WX=16 L_WY=16 L_DB=1",
};

int cd_gemm_tile_candidates(int quick, const char **out, int max) {
    int n = quick ? N_QUICK : (int)CD_ARRAY_LEN(candidates_tiles);
    for (int i = 0; i < n && i < max; i++) out[i] = candidates_tiles[i];
    return CD_MIN(n, max);
}

/* The tuning lines of a candidate, as `cldetr tune` stores the winner. On a CPU
 * the Xgemm kernel also takes the small products (GemmRoutine: CLBlast's direct
 * kernel is slower there at every size); a GPU keeps CLBlast's own choice, since
 * the indirect path's padding and transposing kernels cost more than a small
 * product itself (on an H200 they doubled DETR-R50's GEMM time). */
static void tuning_text(char *text, size_t n, const char *candidate, int gpu) {
    snprintf(text, n, "Xgemm GEMMK=0 KREG=1 %s\n%s", candidate, gpu ? "" : GEMM_ROUTINE_LINE "\n");
}

const char *cd_blas_builtin_tuning(const cd_device *dev) {
    static char text[256];
    if (!(dev->info.type & CL_DEVICE_TYPE_CPU)) return NULL;
    tuning_text(text, sizeof text, candidates_cpu[0], 0);
    return text;
}

int cd_gemm_tune_candidates(int gpu, int quick, const char **out, int max) {
    const char *const *grid = gpu ? candidates_gpu : candidates_cpu;
    int n = quick ? N_QUICK : gpu ? (int)CD_ARRAY_LEN(candidates_gpu) : (int)CD_ARRAY_LEN(candidates_cpu);
    for (int i = 0; i < n && i < max; i++) out[i] = grid[i];
    return CD_MIN(n, max);
}

/* Value of NAME in a "P=V P=V" line, or -1 (absent, or not a whole number). */
static long param(const char *line, const char *name) {
    long v;
    return blas_line_value(line, name, &v) == 1 ? v : -1;
}

int cd_gemm_check_xgemm(const char *line) {
    static const char *const names[] = {"MWG", "NWG", "KWG", "MDIMC", "NDIMC", "MDIMA", "NDIMB", "KWI",
                                        "VWM", "VWN", "SA", "SB", "STRM", "STRN"};
    long v[CD_ARRAY_LEN(names)];
    for (size_t i = 0; i < CD_ARRAY_LEN(names); i++) {
        v[i] = param(line, names[i]);
        if (v[i] < 0 || (i < 10 && v[i] == 0))
            return cd_seterr("Xgemm parameters '%s': %s is missing or not a positive number", line, names[i]);
    }
    long MWG = v[0], NWG = v[1], KWG = v[2], MDIMC = v[3], NDIMC = v[4], MDIMA = v[5], NDIMB = v[6], KWI = v[7],
         VWM = v[8], VWN = v[9];
    /* the rules of CLBlast's Xgemm tuner (src/tuning/kernels/xgemm.hpp) */
    if (KWG % KWI) return cd_seterr("Xgemm: KWG (%ld) must be a multiple of KWI (%ld)", KWG, KWI);
    if (MWG % (MDIMC * VWM)) return cd_seterr("Xgemm: MWG (%ld) must be a multiple of MDIMC*VWM (%ld)", MWG, MDIMC * VWM);
    if (NWG % (NDIMC * VWN)) return cd_seterr("Xgemm: NWG (%ld) must be a multiple of NDIMC*VWN (%ld)", NWG, NDIMC * VWN);
    if (MWG % (MDIMA * VWM)) return cd_seterr("Xgemm: MWG (%ld) must be a multiple of MDIMA*VWM (%ld)", MWG, MDIMA * VWM);
    if (NWG % (NDIMB * VWN)) return cd_seterr("Xgemm: NWG (%ld) must be a multiple of NDIMB*VWN (%ld)", NWG, NDIMB * VWN);
    if ((MDIMC * NDIMC) % MDIMA || KWG % ((MDIMC * NDIMC) / MDIMA))
        return cd_seterr("Xgemm: KWG (%ld) must be a multiple of MDIMC*NDIMC/MDIMA", KWG);
    if ((MDIMC * NDIMC) % NDIMB || KWG % ((MDIMC * NDIMC) / NDIMB))
        return cd_seterr("Xgemm: KWG (%ld) must be a multiple of MDIMC*NDIMC/NDIMB", KWG);
    return 0;
}

/* Whether an Xgemm set fits a device: its work-group (MDIMC*NDIMC) within the
 * device's largest, its local tiles (KWG*MWG and KWG*NWG floats when SA/SB)
 * within its local memory. Returns 1, or 0 with the reason in why. */
static int xgemm_fits(const char *line, size_t local_mem, size_t max_wg, char *why, size_t n) {
    long wg = param(line, "MDIMC") * param(line, "NDIMC");
    long lmem = 4 * (param(line, "SA") * param(line, "KWG") * param(line, "MWG") +
                     param(line, "SB") * param(line, "KWG") * param(line, "NWG"));
    if (max_wg && (size_t)wg > max_wg) {
        snprintf(why, n, "skipped: work-groups of %ld, the device allows %zu", wg, max_wg);
        return 0;
    }
    if (local_mem && (size_t)lmem > local_mem) {
        snprintf(why, n, "skipped: needs %ld bytes of local memory, the device has %zu", lmem, local_mem);
        return 0;
    }
    return 1;
}

/* ---- the child: check and time one candidate ----------------------------- */

typedef struct { size_t M, N, K; int ta, tb; const char *what; } tune_shape;
/* DETR's GEMMs as the ops issue them: linear forward (x w^T), conv forward
 * (w . col), linear dw (dout^T x), and im2col columns on the left. */
static const tune_shape shapes_cpu[] = {
    {256, 2048, 256, 0, 1, "FFN 256x2048x256 NT"},
    {64, 4096, 576, 0, 0, "conv 64x4096x576 NN"},
    {256, 256, 256, 1, 0, "256x256x256 TN"},
    {4096, 64, 576, 0, 0, "im2col 4096x64x576 NN"},
};
/* On a GPU, DETR-R50's at 800x800, batch 2 (small shapes would time launches):
 * the encoder FFN over 1250 tokens, a 3x3 conv of stage 1 and of stage 3, and a
 * stage-3 conv's weight gradient. */
static const tune_shape shapes_gpu[] = {
    {1250, 2048, 256, 0, 1, "FFN 1250x2048x256 NT"},
    {64, 20000, 576, 0, 0, "conv 64x20000x576 NN"},
    {256, 5000, 2304, 0, 0, "conv 256x5000x2304 NN"},
    {256, 2304, 5000, 0, 1, "dW 256x2304x5000 NT"},
};
#define N_SHAPES ((int)CD_ARRAY_LEN(shapes_cpu))

static uint64_t rng = 0x853C49E6748FEA9BULL;
static float urand(void) { return (float)cd_rng_range(&rng, -1, 1); }

/* One GEMM C = alpha op(A) op(B) + beta C on the device with offsets and padded
 * strides, compared with the host at `samples` entries (0 = every entry). */
static int check_gemm(cd_device *dev, size_t M, size_t N, size_t K, int ta, int tb, size_t samples,
                      char *msg, size_t n) {
    size_t lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3, oa = 3, ob = 5, oc = 7;
    size_t na = oa + (ta ? K : M) * lda, nb = ob + (tb ? N : K) * ldb, nc = oc + M * ldc;
    float *A = cd_xmalloc(na * 4), *B = cd_xmalloc(nb * 4), *C = cd_xmalloc(nc * 4), *C0 = cd_xmalloc(nc * 4);
    for (size_t i = 0; i < na; i++) A[i] = urand();
    for (size_t i = 0; i < nb; i++) B[i] = urand();
    for (size_t i = 0; i < nc; i++) C0[i] = urand();
    cd_mem dA = cd_alloc(dev, na, "tune A"), dB = cd_alloc(dev, nb, "tune B"), dC = cd_alloc(dev, nc, "tune C");
    cd_write(dev, dA, A, na); cd_write(dev, dB, B, nb); cd_write(dev, dC, C0, nc);
    const float alpha = 0.5f, beta = 0.25f;
    cd_gemm(dev, ta, tb, M, N, K, alpha, cd_at(dA, oa), lda, cd_at(dB, ob), ldb, beta, cd_at(dC, oc), ldc);
    cd_read(dev, C, dC, nc);
    int bad = 0;
    size_t total = samples ? samples : M * N;
    for (size_t s = 0; s < total && !bad; s++) {
        size_t idx = samples ? (size_t)((urand() + 1.0f) * 0.5f * (float)(M * N)) % (M * N) : s;
        size_t i = idx / N, j = idx % N;
        double ref = alpha * cd_gemm_ref_dot(ta, tb, i, j, K, A + oa, lda, B + ob, ldb) + beta * C0[oc + i * ldc + j];
        double got = C[oc + i * ldc + j];
        if (!(fabs(got - ref) <= 1e-4 * sqrt((double)K) * (1 + fabs(ref)))) {
            snprintf(msg, n, "wrong result: %c%c %zux%zux%zu C[%zu,%zu] = %g, reference %g",
                     ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, i, j, got, ref);
            bad = 1;
        }
    }
    /* the padding between rows of C must be untouched */
    for (size_t i = 0; i < M && !bad; i++)
        for (size_t j = N; j < ldc; j++)
            if (C[oc + i * ldc + j] != C0[oc + i * ldc + j]) {
                snprintf(msg, n, "wrote outside C: %c%c %zux%zux%zu row %zu column %zu",
                         ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, i, j);
                bad = 1;
                break;
            }
    cd_free(dev, dA); cd_free(dev, dB); cd_free(dev, dC);
    free(A); free(B); free(C); free(C0);
    return bad ? -1 : 0;
}

/* GFLOP/s of one shape: best of `rounds` rounds of at least `min_s` seconds. */
static double time_gemm(cd_device *dev, const tune_shape *s, int rounds, double min_s) {
    size_t na = s->M * s->K, nb = s->K * s->N, nc = s->M * s->N;
    cd_mem A = cd_alloc(dev, na, "tune A"), B = cd_alloc(dev, nb, "tune B"), C = cd_alloc(dev, nc, "tune C");
    cd_fill(dev, A, 0.5f, na); cd_fill(dev, B, 0.25f, nb);
    size_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    cd_gemm(dev, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);   /* warm-up */
    cd_finish(dev);
    double best = 0, flop = 2.0 * s->M * s->N * s->K;
    for (int r = 0; r < rounds; r++) {
        int calls = 0;
        double t0 = cd_now(), t;
        do {
            cd_gemm(dev, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
            if (++calls % 4 == 0 || calls == 1) cd_finish(dev);
            t = cd_now() - t0;
        } while (t < min_s || calls % 4);
        cd_finish(dev);
        t = cd_now() - t0;
        best = CD_MAX(best, calls * flop / t * 1e-9);
    }
    cd_free(dev, A); cd_free(dev, B); cd_free(dev, C);
    return best;
}

/* The correctness checks of a candidate on the kernels of kind (CD_GEMM_CLBLAST
 * or CD_GEMM_TILES, forced for the calls): odd sizes with offsets and padded
 * strides in every layout, then (big) the tuning shapes at sampled entries. */
int cd_gemm_tune_check(cd_device *dev, int kind, int big, double *first_s, char *msg, size_t n) {
    double t0 = cd_now();
    int old = cd_gemm_set_kernels(kind), bad = check_gemm(dev, 67, 45, 33, 0, 0, 0, msg, n);   /* compiles */
    if (first_s) *first_s = cd_now() - t0;
    for (int t = 1; t < 4 && !bad; t++) bad = check_gemm(dev, 45, 67, 70, t & 1, t >> 1, 0, msg, n);
    if (!bad) bad = check_gemm(dev, 130, 200, 257, 1, 1, 0, msg, n);
    if (!bad) bad = check_gemm(dev, 300, 140, 1100, 1, 0, 0, msg, n);     /* the large tiles (k >= 1024) */
    int gpu = !(dev->info.type & CL_DEVICE_TYPE_CPU);
    const tune_shape *shapes = gpu ? shapes_gpu : shapes_cpu;
    for (int s = 0; big && s < N_SHAPES && !bad; s++)
        bad = check_gemm(dev, shapes[s].M, shapes[s].N, shapes[s].K, shapes[s].ta, shapes[s].tb, 64, msg, n);
    cd_gemm_set_kernels(old);
    return bad;
}

/* Writes "OK <key> <compile_s> <gpu> <local_mem> <max_wg> <kind> <gflops>...\t<device name>\n" or
 * "FAIL <reason>\n" to fd. kind: the kernels to tune (-1: those cd_gemm runs on the device, CLBlast
 * where that is cldetr's CPU kernels); tuning: a candidate of that kind, NULL for the defaults. */
static void child_run(const cd_tune_options *opt, int kind, const char *tuning, int fd) {
    char line[2048], msg[512];
    setenv("CLDETR_GEMM_TUNING", "off", 1);
    cd_device *dev = cd_open(opt->device, 0);
    if (kind < 0 && dev) kind = cd_gemm_kernels(dev) == CD_GEMM_TILES ? CD_GEMM_TILES : CD_GEMM_CLBLAST;
    cd_gemm_set_kernels(kind);                  /* every call below runs the kernels being tuned */
    cd_tile_shape tiles[2];
    if (!dev) {
        snprintf(line, sizeof line, "FAIL cannot open the device: %s\n", cd_errbuf());
    } else if (kind == CD_GEMM_TILES && tuning &&
               (cd_gemm_parse_tiles(tuning, tiles) || cd_gemm_set_tile_shapes(dev, tiles))) {
        snprintf(line, sizeof line, "FAIL %s\n", cd_errbuf());
    } else if (kind == CD_GEMM_TILES && cd_gemm_kernels(dev) != CD_GEMM_TILES) {
        snprintf(line, sizeof line, "FAIL this device cannot run the tile kernels (work-groups of 256, 17 KB of "
                                    "local memory)\n");
    } else if (kind == CD_GEMM_CLBLAST && tuning &&
               cd_blas_apply_tuning(dev, tuning) != 1 + (strstr(tuning, "GemmRoutine") != NULL)) {
        snprintf(line, sizeof line, "FAIL CLBlast did not accept the parameters\n");
    } else {
        double compile_s = 0;
        int bad = cd_gemm_tune_check(dev, kind, 1, &compile_s, msg, sizeof msg);
        int gpu = !(dev->info.type & CL_DEVICE_TYPE_CPU);
        const tune_shape *shapes = gpu ? shapes_gpu : shapes_cpu;
        if (bad) {
            snprintf(line, sizeof line, "FAIL %s\n", msg);
        } else {
            int len = snprintf(line, sizeof line, "OK %016llx %.2f %d %zu %zu %d",
                               (unsigned long long)cd_blas_tuning_key(dev), compile_s, gpu,
                               (size_t)dev->info.local_mem, (size_t)dev->info.max_work_group, kind);
            for (int s = 0; s < N_SHAPES; s++)
                len += snprintf(line + len, sizeof line - len, " %.2f",
                                time_gemm(dev, &shapes[s], opt->quick ? 2 : 3, opt->quick ? 0.05 : 0.15));
            snprintf(line + len, sizeof line - len, "\t%s\n", dev->info.name);
        }
    }
    size_t off = 0, n = strlen(line);
    while (off < n) {
        ssize_t w = write(fd, line + off, n - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
}

/* ---- the parent ---------------------------------------------------------- */

typedef struct {
    int ok, gpu, kind;                      /* kind: the kernels the child tuned (CD_GEMM_*) */
    size_t local_mem, max_wg;               /* the device's, as the child found it */
    double compile_s, gflops[N_SHAPES], geomean, wall_s;
    char reason[512];
} cand_result;

/* Run one candidate in a child; fills r. Returns 0 unless fork/pipe failed. */
static int run_candidate(const cd_tune_options *opt, int kind, const char *tuning, double budget, cand_result *r,
                         uint64_t *key, char *name, size_t name_len) {
    int fds[2];
    memset(r, 0, sizeof *r);
    if (pipe(fds)) return cd_seterr("tune: pipe failed: %s", strerror(errno));
    fflush(NULL);
    double t0 = cd_now();
    pid_t pid = fork();
    if (pid < 0) { close(fds[0]); close(fds[1]); return cd_seterr("tune: fork failed: %s", strerror(errno)); }
    if (pid == 0) {
        close(fds[0]);
        child_run(opt, kind, tuning, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char buf[2048];
    size_t len = 0;
    int timed_out = 0;
    for (;;) {
        double left = budget - (cd_now() - t0);
        if (left <= 0) { timed_out = 1; break; }
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        ssize_t got = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (got <= 0) break;
        len += (size_t)got;
        if (len == sizeof buf - 1) break;
    }
    buf[len] = '\0';
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    r->wall_s = cd_now() - t0;
    if (timed_out) {
        snprintf(r->reason, sizeof r->reason, "skipped: compile + check + timing took over %.0f s", budget);
        return 0;
    }
    if (!strncmp(buf, "OK ", 3)) {
        char *p = buf + 3, *end;
        unsigned long long k = strtoull(p, &end, 16);
        r->compile_s = strtod(end, &end);
        r->gpu = (int)strtol(end, &end, 10);
        r->local_mem = (size_t)strtoull(end, &end, 10);
        r->max_wg = (size_t)strtoull(end, &end, 10);
        r->kind = (int)strtol(end, &end, 10);
        double logsum = 0;
        for (int s = 0; s < N_SHAPES; s++) {
            r->gflops[s] = strtod(end, &end);
            logsum += log(CD_MAX(r->gflops[s], 1e-6));
        }
        r->geomean = exp(logsum / N_SHAPES);
        r->ok = 1;
        *key = k;
        char *tab = strchr(end, '\t');
        if (tab) {
            snprintf(name, name_len, "%s", tab + 1);
            name[strcspn(name, "\n")] = '\0';
        }
    } else if (!strncmp(buf, "FAIL ", 5)) {
        snprintf(r->reason, sizeof r->reason, "%.*s", (int)strcspn(buf + 5, "\n"), buf + 5);
    } else if (WIFSIGNALED(status)) {
        snprintf(r->reason, sizeof r->reason, "the check process died of signal %d", WTERMSIG(status));
    } else {
        snprintf(r->reason, sizeof r->reason, "the check process exited with status %d and no result",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    return 0;
}

/* "MWG=128 NWG=64 ..." without the parameters every candidate shares; a tile pair without "Tiles " */
static void short_name(char *out, size_t n, const char *line) {
    snprintf(out, n, "%s", strncmp(line, "Tiles ", 6) ? line : line + 6);
    char *p = strstr(out, " STRM=0 STRN=0");
    if (p) *p = '\0';
}

/* Whether a tile pair fits the device the first child found (0 = unknown: fits). */
static int tiles_fit_limits(const char *line, size_t local_mem, size_t max_wg, char *why, size_t n) {
    cd_tile_shape t[2];
    char reason[200];
    if (cd_gemm_parse_tiles(line, t)) {
        snprintf(why, n, "skipped: %s", cd_errbuf());
        return 0;
    }
    if (blas_tiles_fit(local_mem, max_wg, t, reason, sizeof reason)) return 1;
    snprintf(why, n, "skipped: %s", reason);
    return 0;
}

/* Is this stored line one of kind's (Tiles for the tile kernels; Xgemm,
 * GemmRoutine for CLBlast), or the comment `cldetr tune` writes above them? */
static int line_of_kind(const char *line, int kind) {
    int tiles_line = !strncmp(line, "Tiles ", 6) || !strncmp(line, "# cldetr tune tiles", 19);
    int clblast_line = !strncmp(line, "Xgemm ", 6) || !strncmp(line, "GemmRoutine ", 12) ||
                       (!strncmp(line, "# cldetr tune ", 14) && !tiles_line);
    return kind == CD_GEMM_TILES ? tiles_line : clblast_line;
}

char *cd_gemm_tuning_merge(const char *old, int kind, const char *add) {
    size_t cap = (old ? strlen(old) : 0) + strlen(add) + 2, o = 0;
    char *out = cd_xmalloc(cap);
    for (const char *l = old ? old : ""; *l;) {
        size_t n = strcspn(l, "\n");
        if (n && !line_of_kind(l, kind)) {
            memcpy(out + o, l, n);
            o += n;
            out[o++] = '\n';
        }
        l += n + (l[n] == '\n');
    }
    memcpy(out + o, add, strlen(add) + 1);
    return out;
}

/* The device's stored tuning with kind's lines replaced by add; 0, or -1 with cd_errbuf(). */
static int store_merged(uint64_t key, int kind, const char *add) {
    size_t len = 0;
    char *old = cd_cache_load("gemm", key, &len);
    if (!old && !*add) return 0;   /* nothing stored, nothing to store */
    if (old) {
        old = cd_xrealloc(old, len + 1);
        old[len] = '\0';
    }
    char *text = cd_gemm_tuning_merge(old, kind, add);
    int rc = cd_cache_store("gemm", key, text, strlen(text));
    free(old);
    free(text);
    return rc ? cd_seterr("cannot write the GEMM tuning to the cache folder %s", cd_cache_dir()) : 0;
}

int cd_gemm_tune(const cd_tune_options *opt, cd_tune_result *res) {
    const char *list[CD_MAX(CD_MAX(CD_ARRAY_LEN(candidates_cpu), CD_ARRAY_LEN(candidates_gpu)),
                            CD_ARRAY_LEN(candidates_tiles))];
    double budget = opt->budget_s > 0 ? opt->budget_s : 120;
    FILE *log = opt->log;
    memset(res, 0, sizeof *res);
    for (int g = 0; g < 2; g++) {
        int n = cd_gemm_tune_candidates(g, 0, list, (int)CD_ARRAY_LEN(list));
        for (int i = 0; i < n; i++)
            if (cd_gemm_check_xgemm(list[i])) return -1;     /* a broken grid is a bug here, not a device problem */
    }
    int nt = cd_gemm_tile_candidates(0, list, (int)CD_ARRAY_LEN(list));
    for (int i = 0; i < nt; i++) {
        cd_tile_shape t[2];
        if (cd_gemm_parse_tiles(list[i], t)) return -1;
    }

    /* the defaults first: the child also says what kind of device it is and which kernels it tuned */
    cand_result def, best_r;
    int want = opt->kernels == CD_GEMM_TILES || opt->kernels == CD_GEMM_CLBLAST ? opt->kernels : -1;
    if (run_candidate(opt, want, NULL, budget, &def, &res->key, res->device_name, sizeof res->device_name)) return -1;
    if (!def.ok && !strncmp(def.reason, "cannot open", 11)) return cd_seterr("%s", def.reason);
    if (!def.ok && want == CD_GEMM_TILES) return cd_seterr("--kernels tiles: %s", def.reason);
    int gpu = def.ok ? def.gpu : 0, kind = def.ok ? def.kind : want < 0 ? CD_GEMM_CLBLAST : want;
    int tiles = kind == CD_GEMM_TILES;
    res->kind = kind;
    int n = tiles ? cd_gemm_tile_candidates(opt->quick, list, (int)CD_ARRAY_LEN(list))
                  : cd_gemm_tune_candidates(gpu, opt->quick, list, (int)CD_ARRAY_LEN(list));
    const tune_shape *shapes = gpu ? shapes_gpu : shapes_cpu;
    const char *deflabel = tiles ? "built-in tile shapes" : "CLBlast's defaults";
    if (log) {
        if (tiles)
            fprintf(log, "cldetr tune on %s: %d tile shape pairs for cldetr's tile GEMM kernels (cl/blas_tile.cl, "
                         "the GEMM of this device), each checked against a host reference, then timed (GFLOP/s; "
                         "budget %.0f s each)\n", res->device_name, n, budget);
        else
            fprintf(log, "cldetr tune on %s: %d Xgemm candidates for CLBlast on %s and CLBlast's defaults, each "
                         "checked against a host reference, then timed (GFLOP/s; budget %.0f s each)\n",
                    res->device_name, n, gpu ? "GPUs" : "CPUs", budget);
        fprintf(log, "%-4s %-86s", "#", tiles ? "tile shapes: small (S_), large (L_) tiles, BM x BN of C per WX x "
                                                "WY work-items, k BK deep"
                                      : gpu ? "Xgemm parameters (all with GEMMK=0 KREG=1)"
                                            : "Xgemm parameters (all with GEMMK=0 KREG=1; " GEMM_ROUTINE_LINE ")");
        for (int s = 0; s < N_SHAPES; s++) fprintf(log, " %22s", shapes[s].what);
        fprintf(log, " %8s %8s\n", "geomean", "compile");
    }
    char win[1024] = "";
    memset(&best_r, 0, sizeof best_r);
    int best = -1;
    /* the tile grid's first pair is the built-in one, timed as the defaults */
    for (int i = tiles ? 0 : -1; i < n; i++) {
        char text[1024] = "", label[256];
        cand_result r;
        int dflt = i == (tiles ? 0 : -1);   /* the defaults' row: the first child's result */
        if (!dflt) {
            if (tiles) snprintf(text, sizeof text, "%s\n", list[i]);
            else tuning_text(text, sizeof text, list[i], gpu);
            short_name(label, sizeof label, list[i]);
        } else {
            snprintf(label, sizeof label, "%s%s%s", deflabel, tiles ? ": " : "", tiles ? list[0] + 6 : "");
        }
        if (log) { fprintf(log, "%-4d %-86s", tiles ? i : i + 1, label); fflush(log); }
        if (dflt) {
            r = def;
        } else if (tiles ? !tiles_fit_limits(list[i], def.local_mem, def.max_wg, r.reason, sizeof r.reason)
                         : !xgemm_fits(list[i], def.local_mem, def.max_wg, r.reason, sizeof r.reason)) {
            r.ok = 0;
            r.wall_s = 0;
        } else if (run_candidate(opt, kind, text, budget, &r, &res->key, res->device_name,
                                 sizeof res->device_name)) {
            return -1;
        }
        res->n_tried += !dflt;
        if (log) {
            if (r.ok) {
                for (int s = 0; s < N_SHAPES; s++) fprintf(log, " %22.1f", r.gflops[s]);
                fprintf(log, " %8.1f %7.1fs\n", r.geomean, r.compile_s);
            } else {
                fprintf(log, " %s (%.0f s)\n", r.reason, r.wall_s);
            }
        }
        if (dflt || !r.ok) continue;
        res->n_valid++;
        if (best < 0 || r.geomean > best_r.geomean) { best = i; best_r = r; memcpy(win, text, sizeof win); }
    }
    res->default_gflops = def.ok ? def.geomean : 0;
    if (best < 0 && !(tiles && def.ok)) {
        return cd_seterr("no %s candidate passed its check on this device%s%s; the %s stay in use",
                         tiles ? "tile shape" : "Xgemm", def.ok ? "" : " (the defaults failed too: ",
                         def.ok ? "" : def.reason, tiles ? "built-in shapes" : "CLBlast's defaults");
    }
    res->best_gflops = best >= 0 ? best_r.geomean : 0;
    if (def.ok && def.geomean >= res->best_gflops) {      /* nothing beats the defaults: none of this kind stored */
        if (log) fprintf(log, "%s are fastest here (%.1f vs %.1f GFLOP/s); %s\n", tiles ? "the built-in tile shapes"
                         : "CLBlast's defaults", def.geomean, res->best_gflops,
                         opt->store ? "no tuning of them stored" : "--dry-run: nothing stored");
        /* drop an earlier tuning of this kind: the defaults were measured best */
        return opt->store ? store_merged(res->key, kind, "") : 0;
    }
    char stored[sizeof res->best];
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", localtime(&now));
    snprintf(stored, sizeof stored, "# cldetr tune%s %s on %s: %.1f GFLOP/s geomean (%s %.1f)\n%s",
             tiles ? " tiles" : "", date, res->device_name, best_r.geomean, tiles ? "built-in shapes" :
             "CLBlast defaults", res->default_gflops, win);
    snprintf(res->best, sizeof res->best, "%s", stored);
    if (opt->store) {
        if (store_merged(res->key, kind, stored)) return -1;
        res->stored = 1;
    }
    if (log) {
        fprintf(log, "best: #%d, %.1f GFLOP/s geomean, %.1fx %s\n", tiles ? best : best + 1, best_r.geomean,
                def.ok && def.geomean > 0 ? best_r.geomean / def.geomean : 0.0,
                tiles ? "the built-in tile shapes" : "CLBlast's defaults");
    }
    return 0;
}
