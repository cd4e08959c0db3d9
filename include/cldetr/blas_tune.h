/* GEMM tuning: choosing CLBlast's Xgemm parameters, or the GPU tile GEMM's
 * tile shapes, per device by measurement
 * (src/device/blas_tune.c, `cldetr tune`), and the knobs of src/device/blas.c
 * that benchmarks use. */
#ifndef CLDETR_BLAS_TUNE_H
#define CLDETR_BLAS_TUNE_H

#include <stdio.h>
#include "cldetr/device.h"

/* The cache key of a device's GEMM tuning (name, vendor, driver, platform). */
uint64_t cd_blas_tuning_key(const cd_device *dev);
/* Apply "KERNEL P=V P=V ..." lines now (as cd_blas_init does from the cache).
 * Returns the number of kernels CLBlast accepted. */
int cd_blas_apply_tuning(cd_device *dev, const char *text);
/* The GEMM parameters a device uses when `cldetr tune` stored none: on CPU
 * devices the candidate that won on the CPUs it was measured on (CLBlast's
 * own defaults are 5-10x slower there); NULL (CLBlast's defaults, tuned by its
 * authors for GPUs) elsewhere. Chosen by the device's type, never its vendor. */
const char *cd_blas_builtin_tuning(const cd_device *dev);
/* Force the call layout of cd_gemm: -1 = per shape (default), 0 = CLBlast
 * row-major, 1 = column-major with swapped operands. CLDETR_GEMM_LAYOUT=row|swap
 * sets it from the environment. */
void cd_blas_set_layout(int layout);

/* ---- tuning (src/device/blas_tune.c) ------------------------------------
 * Each candidate parameter set runs in a child process (fork before this
 * process touches OpenCL) that opens the device with CLBlast's defaults,
 * applies the candidate, checks GEMM against a host reference on odd shapes,
 * every transpose and offsets, then times the tuning shapes. A child that runs
 * past the budget (PoCL can compile some sets for minutes) is killed and the
 * set skipped. The fastest valid set (geometric mean over the shapes) is
 * stored with cd_cache_store("gemm", cd_blas_tuning_key(dev), ...) unless
 * CLBlast's defaults win, and cd_blas_init applies it at the next cd_open. */
typedef struct {
    const char *device;     /* as cd_open; NULL = default */
    int quick;              /* fewer candidates, shorter timing */
    double budget_s;        /* per candidate: compile + check + timing; <= 0 = 120 s */
    int store;              /* write the winner to the cache */
    FILE *log;              /* progress and the table; NULL = quiet */
    int kernels;            /* CD_GEMM_TILES or CD_GEMM_CLBLAST; other values: the device's GEMM (the tile
                               kernels where cd_gemm runs them, else CLBlast) */
} cd_tune_options;

typedef struct {
    char device_name[256];
    uint64_t key;
    int n_tried, n_valid;
    double default_gflops, best_gflops;     /* geometric means over the shapes */
    char best[2600];                        /* the stored text ("" when the defaults won) */
    int stored;
    int kind;                               /* what was tuned: CD_GEMM_TILES or CD_GEMM_CLBLAST */
} cd_tune_result;

/* Returns 0, or -1 with cd_errbuf() (no device, every candidate failed). */
int cd_gemm_tune(const cd_tune_options *opt, cd_tune_result *res);

/* The Xgemm candidate grid for CPUs (gpu=0) or for every other device (gpu=1)
 * as tuning lines (for tests and --list): writes up to max pointers to static
 * strings, returns the count. */
int cd_gemm_tune_candidates(int gpu, int quick, const char **out, int max);
/* The tile shape pairs `cldetr tune` tries on the tile kernels ("Tiles ..."
 * lines, the built-in pair first), as cd_gemm_tune_candidates. */
int cd_gemm_tile_candidates(int quick, const char **out, int max);
/* The checks a candidate must pass, with kind's kernels forced (CD_GEMM_CLBLAST
 * or CD_GEMM_TILES): odd sizes, offsets, padded strides, every layout, a
 * product for the large tiles, and (big) the tuning shapes at sampled
 * entries, against a double-precision host product. *first_s (may be NULL):
 * the seconds of the first check, which compiles the kernels. Returns 0, or
 * -1 with the first wrong entry in msg. */
int cd_gemm_tune_check(cd_device *dev, int kind, int big, double *first_s, char *msg, size_t n);
/* A stored tuning text (old, may be NULL) with the lines of kind (CD_GEMM_TILES:
 * "Tiles" lines; CD_GEMM_CLBLAST: Xgemm and GemmRoutine) and their "# cldetr
 * tune" comment replaced by add: a device keeps its CLBlast tuning when its
 * tile shapes are tuned, and the other way round. Returns a malloc'd text. */
char *cd_gemm_tuning_merge(const char *old, int kind, const char *add);
/* Check an Xgemm line against CLBlast's constraints (MWG % (MDIMC*VWM) == 0 ...).
 * Returns 0, or -1 with cd_errbuf() naming the broken rule. */
int cd_gemm_check_xgemm(const char *line);

#endif
