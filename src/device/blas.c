/* GEMM through CLBlast, row-major, with a reused temporary buffer for CLBlast's
 * pad/transpose pre-pass (CLBlast otherwise allocates one per call) and the
 * per-device tuning applied at open.
 *
 * Tunings live in the cache folder as "gemm-<device key>.bin" holding text
 * lines "KERNEL PARAM=VALUE PARAM=VALUE ..." (e.g. "Xgemm MWG=128 NWG=64 ...");
 * `cldetr tune` writes them (src/device/blas_tune.c). CLDETR_GEMM_TUNING=off
 * skips them (to compare with CLBlast's defaults).
 *
 * Layout. CLBlast's fast (indirect) Xgemm kernel works column-major and wants
 * C column-major; a row-major call therefore always transposes C into a
 * temporary and back (CLBlast 1.5.3, Xgemm::ProcessArguments: c_do_transpose
 * is true for every row-major call with GEMMK=0). A row-major C[M,N] is the
 * column-major C^T[N,M] = op(B)^T op(A)^T, the same buffers with the operands
 * swapped, so we call CLBlast column-major with (B, A): the same dot products,
 * no C transposes, and A and B are transposed exactly when they were before.
 * The one cost: the swapped call pads N up to MWG and M up to NWG instead of
 * M to MWG and N to NWG, so when that padding is larger (e.g. N = 64 with
 * MWG = 128) we keep the row-major call. `cldetr bench-ops` measures both
 * (bench/README.md). CLDETR_GEMM_LAYOUT=row|swap forces one (for benchmarks). */
#include <stdlib.h>
#include <string.h>
#include <clblast_c.h>

#include "cldetr/blas_tune.h"
#include "cldetr/device.h"
#include "blas_tile.h"

uint64_t cd_blas_tuning_key(const cd_device *dev) {
    uint64_t h = CD_FNV_SEED;
    const char *parts[] = {"gemm-tuning-v1", dev->info.name, dev->info.vendor, dev->info.driver_version,
                           dev->info.platform_version};
    for (size_t i = 0; i < CD_ARRAY_LEN(parts); i++) h = cd_fnv1a(parts[i], strlen(parts[i]) + 1, h);
    return h;
}

/* The Xgemm tile sizes in force per device, for the layout choice. CLBlast's
 * defaults are unknown here (no C API reads them back); 64/64 makes the
 * swapped layout never pad more, so it is always taken. */
typedef struct { cl_device_id id; size_t mwg, nwg; } gemm_tiles;
static gemm_tiles tiles[8];
static int n_tiles;

static gemm_tiles *tiles_of(cl_device_id id) {
    for (int i = 0; i < n_tiles; i++) if (tiles[i].id == id) return &tiles[i];
    if (n_tiles == (int)CD_ARRAY_LEN(tiles)) return NULL;
    tiles[n_tiles] = (gemm_tiles){id, 64, 64};
    return &tiles[n_tiles++];
}

static void record_tiles(cd_device *dev, const char **names, const size_t *values, size_t n) {
    gemm_tiles *t = tiles_of(dev->info.device);
    if (!t) return;
    t->mwg = t->nwg = 64;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(names[i], "MWG") && values[i]) t->mwg = values[i];
        if (!strcmp(names[i], "NWG") && values[i]) t->nwg = values[i];
    }
}

/* Apply "KERNEL P=V P=V ..." lines: CLBlast's kernels, and "Tiles" (the tile
 * GEMM's shapes, cd_gemm_parse_tiles). Returns the number of kernels
 * overridden; *xgemm and *tiles (may be NULL) count Xgemm and Tiles lines. */
static int apply_tuning_text(cd_device *dev, char *text, int *xgemm, int *tiles) {
    int applied = 0, nx = 0, nt = 0;
    char *lsave = NULL;
    for (char *line = strtok_r(text, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
        char kernel[64];
        const char *names[64];
        size_t values[64], n = 0;
        if (!strncmp(line, "Tiles ", 6)) {
            cd_tile_shape t[2];
            if (!cd_gemm_parse_tiles(line, t) && !cd_gemm_set_tile_shapes(dev, t)) {
                applied++;
                nt++;
            } else if (dev->verbose) {
                fprintf(stderr, "cldetr: stored tile shapes ignored: %s\n", cd_errbuf());
            }
            continue;
        }
        char *save = NULL, *tok = strtok_r(line, " \t", &save);
        if (!tok || tok[0] == '#') continue;
        snprintf(kernel, sizeof kernel, "%s", tok);
        while ((tok = strtok_r(NULL, " \t", &save)) && n < 64) {
            char *eq = strchr(tok, '=');
            if (!eq) continue;
            *eq = '\0';
            names[n] = tok;
            values[n++] = strtoul(eq + 1, NULL, 10);
        }
        if (n && CLBlastOverrideParameters(dev->info.device, kernel, CLBlastPrecisionSingle, n, names, values) == 0) {
            applied++;
            if (!strcmp(kernel, "Xgemm")) {
                record_tiles(dev, names, values, n);
                nx++;
            }
        }
        else if (dev->verbose)
            fprintf(stderr, "cldetr: GEMM tuning for %s was not accepted by CLBlast; ignored\n", kernel);
    }
    if (xgemm) *xgemm = nx;
    if (tiles) *tiles = nt;
    return applied;
}

int cd_blas_apply_tuning(cd_device *dev, const char *text) {
    char *copy = cd_xstrdup(text);
    int n = apply_tuning_text(dev, copy, NULL, NULL);
    free(copy);
    return n;
}

void cd_blas_init(cd_device *dev) {
    const char *env = getenv("CLDETR_GEMM_TUNING");
    dev->gemm_params = "CLBlast's defaults";
    if (env && !strcmp(env, "off")) return;
    size_t len;
    int nx = 0, nt = 0;
    char *text = cd_cache_load("gemm", cd_blas_tuning_key(dev), &len);
    if (text) {
        text = cd_xrealloc(text, len + 1);
        text[len] = '\0';
        int n = apply_tuning_text(dev, text, &nx, &nt);
        if (dev->verbose) fprintf(stderr, "cldetr: applied %d GEMM tuning(s) from the cache\n", n);
        free(text);
    }
    if (nt) dev->tile_params = "tuned (cldetr tune)";
    if (nx) {
        dev->gemm_params = "tuned (cldetr tune)";
    } else {                      /* no Xgemm stored: the built-in set of the device's class, if any */
        const char *builtin = cd_blas_builtin_tuning(dev);
        if (builtin && cd_blas_apply_tuning(dev, builtin) > 0) dev->gemm_params = "built-in for CPUs";
    }
}

static CLBlastTranspose tr(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

void blas_ensure_temp(cd_device *dev, size_t bytes) {
    if (bytes <= dev->blas_temp_bytes) return;
    if (dev->blas_temp) clReleaseMemObject(dev->blas_temp);
    cl_int err;
    dev->blas_temp = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        cd_fatal("out of device memory for the GEMM scratch buffer (%.1f MiB): %s\n  hint: %s",
                 bytes / 1048576.0, cd_cl_status_name(err),
                 dev->oom_hint ? dev->oom_hint : cd_cl_status_hint(err));
    dev->blas_temp_bytes = bytes;
}

/* -1 = choose per shape, 0 = row-major call, 1 = swapped column-major call */
static int layout_force = -2;

void cd_blas_set_layout(int layout) { layout_force = layout; }

static size_t ceil_to(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* 1 = call CLBlast column-major with the operands swapped (see the top). */
static int use_swap(cd_device *dev, size_t M, size_t N) {
    if (layout_force == -2) {
        const char *env = getenv("CLDETR_GEMM_LAYOUT");
        layout_force = env && !strcmp(env, "row") ? 0 : env && !strcmp(env, "swap") ? 1 : -1;
    }
    if (layout_force >= 0) return layout_force;
    gemm_tiles *t = tiles_of(dev->info.device);
    size_t mwg = t ? t->mwg : 64, nwg = t ? t->nwg : 64;
    return ceil_to(N, mwg) * ceil_to(M, nwg) <= ceil_to(M, mwg) * ceil_to(N, nwg);
}

/* CL_DEVICE_MEM_BASE_ADDR_ALIGN in floats (0 = unknown), per device */
typedef struct { cl_device_id id; size_t floats; } base_align;
static base_align aligns[8];
static int n_aligns;

static size_t align_floats(cd_device *dev) {
    for (int i = 0; i < n_aligns; i++) if (aligns[i].id == dev->info.device) return aligns[i].floats;
    cl_uint bits = 0;
    if (clGetDeviceInfo(dev->info.device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof bits, &bits, NULL) != CL_SUCCESS)
        bits = 0;
    size_t f = bits / 8 / sizeof(float);
    if (n_aligns < (int)CD_ARRAY_LEN(aligns)) aligns[n_aligns++] = (base_align){dev->info.device, f};
    return f;
}

/* CLBlast copies an operand through its pad/transpose pre-pass (and C back
 * after) whenever its offset is not 0, even when its sizes and leading
 * dimension already suit the kernel (Xgemm::NoTempBuffer in CLBlast 1.5.3).
 * Tensors in the activation arena and per-image slices always have offsets, so
 * most GEMMs of a training step paid for copies (bench/README.md).
 * An operand whose offset is a multiple of the device's base-address alignment
 * is passed as a sub-buffer starting at it, covering the `extent` floats the
 * matrix spans, so it is at offset 0. Returns the sub-buffer to release after
 * the call, or NULL (then m is unchanged). */
static cl_mem as_sub_buffer(cd_device *dev, cd_mem *m, size_t extent) {
    size_t al = align_floats(dev);
    if (m->off == 0 || al == 0 || m->off % al) return NULL;
    cl_buffer_region r = {m->off * sizeof(float), extent * sizeof(float)};
    cl_int err;
    cl_mem sub = clCreateSubBuffer(m->mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
    if (err != CL_SUCCESS) return NULL;
    m->mem = sub;
    m->off = 0;
    return sub;
}

/* Row-major (ta, tb, M, N, A, B) or column-major (tb, ta, N, M, B, A): the same C.
 * Swaps the arguments in place when use_swap picks the column-major call. */
static CLBlastLayout choose_layout(cd_device *dev, size_t *M, size_t *N, int *ta, int *tb, cd_mem *A, cd_mem *B,
                                   size_t *lda, size_t *ldb) {
    if (!use_swap(dev, *M, *N)) return CLBlastLayoutRowMajor;
    size_t t = *M; *M = *N; *N = t;
    int tt = *ta; *ta = *tb; *tb = tt;
    cd_mem m = *A; *A = *B; *B = m;
    t = *lda; *lda = *ldb; *ldb = t;
    return CLBlastLayoutColMajor;
}

/* ---- cldetr's own kernels (cl/blas.cl) -----------------------------------
 * On a CPU, CLBlast's indirect Xgemm pads and transposes most of DETR's
 * operands in extra kernels (about 350 of a shapes.ini step's 1250 launches)
 * and runs small products far below its large-matrix speed; cl/blas.cl's row
 * kernels read every operand where it is, in one launch, and were faster at
 * every DETR shape measured (bench/README.md, bench/bench_gemm.c). They cover
 * op(A) op(B) except A^T B^T (which CLBlast keeps) with 32-bit indices.
 * On GPUs, cl/blas_tile.cl's tile kernels (src/device/blas_tile.c). */
static int own_force = -1;

int cd_gemm_set_kernels(int mode) {
    int old = own_force;
    own_force = mode;
    return old;
}

/* CLDETR_GEMM_KERNELS=clblast|rows|tiles|auto, read once; -1 = auto */
static int env_mode(void) {
    static int mode = -2;
    static const char *const names[] = {"clblast", "rows", "tiles"};   /* in CD_GEMM_* order */
    if (mode == -2) mode = cd_env_choice("CLDETR_GEMM_KERNELS", names, 3, NULL);
    return mode;
}

/* The tile kernels need their work-groups and local memory (for the built-in
 * shapes 256 work-items and 17 KB). */
static int tiles_fit(const cd_device *dev) {
    char why[160];
    return blas_tiles_fit(dev->info.local_mem, dev->info.max_work_group, dev->tiles, why, sizeof why);
}

int cd_gemm_kernels(const cd_device *dev) {
    int mode = own_force >= 0 ? own_force : env_mode();
    if (mode < 0) mode = cd_cpu_shaped(dev) ? CD_GEMM_ROWS : (tiles_fit(dev) ? CD_GEMM_TILES : CD_GEMM_CLBLAST);
    if (mode == CD_GEMM_TILES && !tiles_fit(dev)) mode = CD_GEMM_CLBLAST;
    return mode;
}

const char *cd_gemm_params(const cd_device *dev) {
    static char buf[128];
    if (cd_gemm_kernels(dev) == CD_GEMM_TILES) snprintf(buf, sizeof buf, "tile shapes: %s", dev->tile_params);
    else snprintf(buf, sizeof buf, "CLBlast's parameters: %s", dev->gemm_params);
    return buf;
}

const char *cd_gemm_kernels_name(const cd_device *dev) {
    switch (cd_gemm_kernels(dev)) {
    case CD_GEMM_ROWS: return "cldetr's CPU kernels; CLBlast for A^T B^T";
    case CD_GEMM_TILES: return "cldetr's tile kernels";
    default: return "CLBlast";
    }
}

/* Do A, B, C (row-major, the given transposes) index below 2^31 floats, as
 * cldetr's GEMM kernels' int indices need? */
static int fits_int_index(int ta, int tb, size_t M, size_t N, size_t K, size_t lda, size_t ldb, size_t ldc) {
    size_t lim = (size_t)1 << 31;
    size_t ea = ((ta ? K : M) - 1) * lda + (ta ? M : K), eb = ((tb ? N : K) - 1) * ldb + (tb ? K : N);
    size_t ec = (M - 1) * ldc + N;
    return ea < lim && eb < lim && ec < lim && K < lim && lda < lim && ldb < lim && ldc < lim;
}

/* 1 when cldetr's kernels computed C (bt: the batch), else 0. */
static int own_gemm_bias(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                         size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt,
                         cd_mem bias, int relu) {
    size_t batch = bt->inner * bt->outer;
    int mode = cd_gemm_kernels(dev);
    if (mode == CD_GEMM_CLBLAST || (mode == CD_GEMM_ROWS && ta && tb)) return 0;
    if (!fits_int_index(ta, tb, M, N, K, lda, ldb, ldc)) return 0;
    if (mode == CD_GEMM_TILES)
        return blas_tile_gemm(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bt, bias, relu,
                              (cd_mem){NULL, 0});
    if (tb) {   /* dot products of rows: 4 x 4 blocks, dim 0 over column blocks */
        size_t nb = (N + 3) / 4, mb = (M + 3) / 4;
        size_t global[3] = {nb, mb, batch}, local[3] = {cd_blocks_local(dev, nb, mb * batch), 1, 1};
        CD_LAUNCH_WG(dev, "gemm_dot_nt", 3, global, local, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda),
                     KI(ldb), KI(ldc), KUL(bt->sA), KUL(bt->sB), KUL(bt->sC), KF(alpha), KF(beta),
                     KM(bias.mem ? bias : C), KI(bias.mem ? 1 + !!relu : 0), KU(bt->inner), KUL(bt->sAo), KUL(bt->sBo),
                     KUL(bt->sCo));
    } else {    /* rows of A against 32-column stripes of B: 8 x 32 blocks, dim 0 over row blocks */
        size_t mb = (M + 7) / 8, nb = (N + 31) / 32;
        size_t global[3] = {mb, nb, batch}, local[3] = {cd_blocks_local(dev, mb, nb * batch), 1, 1};
        if (ta)
            CD_LAUNCH_WG(dev, "gemm_rows_tn", 3, global, local, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda),
                         KI(ldb), KI(ldc), KUL(bt->sA), KUL(bt->sB), KUL(bt->sC), KF(alpha), KF(beta),
                         KU(bt->inner), KUL(bt->sAo), KUL(bt->sBo), KUL(bt->sCo), KM(C), KI(0));
        else
            CD_LAUNCH_WG(dev, "gemm_rows_nn", 3, global, local, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda),
                         KI(ldb), KI(ldc), KUL(bt->sA), KUL(bt->sB), KUL(bt->sC), KF(alpha), KF(beta),
                         KU(bt->inner), KUL(bt->sAo), KUL(bt->sBo), KUL(bt->sCo));
    }
    return 1;
}

static int own_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                    size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt) {
    cd_mem none = {NULL, 0};
    return own_gemm_bias(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bt, none, 0);
}

static const cd_batch one_matrix = {1, 1, 0, 0, 0, 0, 0, 0};

int cd_gemm_bias_nt(cd_device *dev, size_t M, size_t N, size_t K, cd_mem A, size_t lda, cd_mem B, size_t ldb,
                    cd_mem C, size_t ldc, cd_mem bias, int relu) {
    if (M == 0 || N == 0 || K == 0 || cd_gemm_kernels(dev) == CD_GEMM_CLBLAST) return 0;
    return own_gemm_bias(dev, 0, 1, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, &one_matrix, bias, relu);
}

int cd_gemm_tn_sums(cd_device *dev, size_t M, size_t N, size_t K, cd_mem A, size_t lda, cd_mem B, size_t ldb,
                    cd_mem C, size_t ldc, cd_mem sums) {
    int mode = cd_gemm_kernels(dev);
    if (M == 0 || N == 0 || K == 0 || mode == CD_GEMM_CLBLAST || !fits_int_index(1, 0, M, N, K, lda, ldb, ldc))
        return 0;
    if (mode == CD_GEMM_TILES)
        return blas_tile_gemm(dev, 1, 0, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, &one_matrix, (cd_mem){NULL, 0},
                              0, sums);
    size_t mb = (M + 7) / 8, nb = (N + 31) / 32;
    /* the local size of the product alone: the same order of blocks as cd_gemm's;
     * dim 0 covers the ceil(M/16) work-items of the sums too */
    size_t l0 = cd_blocks_local(dev, mb, nb);
    size_t g0 = CD_MAX(mb, (M + 15) / 16);
    size_t global[3] = {(g0 + l0 - 1) / l0 * l0, nb + 1, 1}, local[3] = {l0, 1, 1};
    CD_LAUNCH_WG(dev, "gemm_rows_tn", 3, global, local, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda), KI(ldb),
                 KI(ldc), KUL(0), KUL(0), KUL(0), KF(1.0f), KF(1.0f), KU(1), KUL(0), KUL(0), KUL(0), KM(sums), KI(1));
    return 1;
}

void cd_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
             float alpha, cd_mem A, size_t lda, cd_mem B, size_t ldb,
             float beta, cd_mem C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {   /* C = beta*C; CLBlast rejects K = 0 */
        if (beta == 0.0f) {
            for (size_t i = 0; i < M; i++) cd_fill(dev, cd_at(C, i * ldc), 0.0f, N);
            return;
        }
        cd_fatal("cd_gemm: K = 0 with beta != 0 is not supported");
    }
    if (own_gemm(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &one_matrix)) return;
    /* extents in floats of the stored (row-major) A, B, C */
    cl_mem subs[3] = {
        as_sub_buffer(dev, &A, ((ta ? K : M) - 1) * lda + (ta ? M : K)),
        as_sub_buffer(dev, &B, ((tb ? N : K) - 1) * ldb + (tb ? K : N)),
        as_sub_buffer(dev, &C, (M - 1) * ldc + N),
    };
    CLBlastLayout layout = choose_layout(dev, &M, &N, &ta, &tb, &A, &B, &lda, &ldb);
    size_t temp = 0;
    CLBLAST_CHECK(CLBlastSGemmTempBufferSize(layout, tr(ta), tr(tb), M, N, K,
                                             A.off, lda, B.off, ldb, C.off, ldc, &dev->queue, &temp));
    cl_event ev = NULL, *evp = dev->profiling ? &ev : NULL;
    if (temp > 0) {
        blas_ensure_temp(dev, temp);
        CLBLAST_CHECK(CLBlastSgemmWithTempBuffer(layout, tr(ta), tr(tb), M, N, K, alpha,
                                                 A.mem, A.off, lda, B.mem, B.off, ldb, beta,
                                                 C.mem, C.off, ldc, &dev->queue, evp, dev->blas_temp));
    } else {
        CLBLAST_CHECK(CLBlastSgemm(layout, tr(ta), tr(tb), M, N, K, alpha,
                                   A.mem, A.off, lda, B.mem, B.off, ldb, beta, C.mem, C.off, ldc,
                                   &dev->queue, evp));
    }
    if (ev) cd_profile_add_event(dev, ta ? (tb ? "gemm_TT" : "gemm_TN") : (tb ? "gemm_NT" : "gemm_NN"), ev);
    for (int i = 0; i < 3; i++) if (subs[i]) clReleaseMemObject(subs[i]);
}

void cd_gemm_batched(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
                     float alpha, cd_mem A, size_t lda, size_t strideA,
                     cd_mem B, size_t ldb, size_t strideB,
                     float beta, cd_mem C, size_t ldc, size_t strideC, size_t batch) {
    cd_batch bt = {batch, 1, strideA, strideB, strideC, 0, 0, 0};
    cd_gemm_strided(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &bt);
}

void cd_gemm_strided(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                     size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt) {
    size_t batch = bt->inner * bt->outer;
    if (M == 0 || N == 0 || batch == 0) return;
    if (bt->inner > UINT32_MAX) cd_fatal("cd_gemm_strided: %zu matrices in the inner batch (at most 2^32 - 1)",
                                         bt->inner);
    if (batch == 1) { cd_gemm(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
    if (K == 0) cd_fatal("cd_gemm_batched: K = 0 is not supported");
    if (own_gemm(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bt)) return;
    /* CLBlast: one strided-batched call per outer index */
    size_t sA = bt->sA, sB = bt->sB, sAo = bt->sAo, sBo = bt->sBo;
    CLBlastLayout layout = choose_layout(dev, &M, &N, &ta, &tb, &A, &B, &lda, &ldb);
    if (layout == CLBlastLayoutColMajor) {
        size_t t = sA; sA = sB; sB = t;
        t = sAo; sAo = sBo; sBo = t;
    }
    for (size_t o = 0; o < bt->outer; o++) {
        cl_event ev = NULL, *evp = dev->profiling ? &ev : NULL;
        CLBLAST_CHECK(CLBlastSgemmStridedBatched(layout, tr(ta), tr(tb), M, N, K, alpha, A.mem, A.off + o * sAo,
                                                 lda, sA, B.mem, B.off + o * sBo, ldb, sB, beta, C.mem,
                                                 C.off + o * bt->sCo, ldc, bt->sC, bt->inner, &dev->queue, evp));
        if (ev) cd_profile_add_event(dev, "gemm_batched", ev);
    }
}
