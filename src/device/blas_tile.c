/* cd_gemm on GPUs: cl/blas_tile.cl's tile kernels, the tile shape and the
 * split of k chosen per product (src/device/blas.c calls blas_tile_gemm when
 * cd_gemm_kernels says CD_GEMM_TILES). The kernels come in two tile shapes
 * per build, small and large, set by the program's -D options: built-in, or
 * the pair `cldetr tune` measured best on the device ("Tiles" lines of the
 * GEMM tuning, src/device/blas_tune.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/device.h"
#include "blas_tile.h"

static int tile_force = 0, split_force = 0;

void cd_gemm_set_tiles(int tile, int nsplit) {
    tile_force = tile;
    split_force = nsplit;
}

/* The built-in shapes, measured on an H200 (bench/README.md): 64 x 64 tiles
 * and 128 x 128 tiles, k 8 deep, 16 x 16 work-groups. */
const cd_tile_shape blas_tile_builtin[2] = {{64, 64, 8, 16, 16, 0}, {128, 128, 8, 16, 16, 0}};

static const char *const shape_names[2] = {"small", "large"};
static const char *const prefixes[2] = {"S_", "L_"};

/* The kernels' rules for one shape (cl/blas_tile.cl): 0, or -1 with cd_errbuf(). */
static int check_shape(const cd_tile_shape *s, const char *which) {
    int nt = s->wx * s->wy;
    const int pow2[] = {s->wx, s->wy, s->bk};
    for (int i = 0; i < 3; i++)
        if (pow2[i] < 1 || pow2[i] > 64 || (pow2[i] & (pow2[i] - 1)))
            return cd_seterr("tile shape %s: WX, WY and BK must be powers of two up to 64 (got WX=%d WY=%d BK=%d)",
                             which, s->wx, s->wy, s->bk);
    if (nt < 32 || nt > 1024)
        return cd_seterr("tile shape %s: work-groups of WX*WY = %d; 32 to 1024 work-items", which, nt);
    if (s->bm != 4 * s->wy && s->bm != 8 * s->wy)
        return cd_seterr("tile shape %s: BM (%d) must be 4 or 8 times WY (%d): rows per work-item", which, s->bm,
                         s->wy);
    if (s->bn != 4 * s->wx && s->bn != 8 * s->wx)
        return cd_seterr("tile shape %s: BN (%d) must be 4 or 8 times WX (%d): columns per work-item", which, s->bn,
                         s->wx);
    if (s->bm > nt || s->bn > nt)
        return cd_seterr("tile shape %s: BM and BN (%d, %d) at most WX*WY (%d): a row's sums need a work-item",
                         which, s->bm, s->bn, nt);
    if (s->db != 0 && s->db != 1)
        return cd_seterr("tile shape %s: DB must be 0 or 1 (one buffer or two for the staged slices), got %d", which,
                         s->db);
    if ((s->bm * s->bk) % nt || (s->bn * s->bk) % nt || s->bm * s->bk / nt > 16 || s->bn * s->bk / nt > 16)
        return cd_seterr("tile shape %s: a slice (BM*BK = %d, BN*BK = %d) must be 1 to 16 whole loads of the "
                         "%d work-items", which, s->bm * s->bk, s->bn * s->bk, nt);
    return 0;
}

/* Local memory of one kernel: both staged slices, rows padded by 4 floats, once or twice (DB). */
static size_t local_bytes(const cd_tile_shape *s) {
    return (size_t)4 * (size_t)(1 + s->db) * (size_t)s->bk * (size_t)(s->bm + 4 + s->bn + 4);
}

int blas_line_value(const char *line, const char *name, long *v) {
    size_t n = strlen(name);
    for (const char *p = line; (p = strstr(p, name)); p += n) {
        if ((p != line && p[-1] != ' ') || p[n] != '=') continue;
        char *end;
        *v = strtol(p + n + 1, &end, 10);
        return end != p + n + 1 && (!*end || *end == ' ' || *end == '\n') ? 1 : -1;
    }
    return 0;
}

int cd_gemm_parse_tiles(const char *line, cd_tile_shape out[2]) {
    while (*line == ' ') line++;
    if (strncmp(line, "Tiles", 5) || (line[5] && line[5] != ' '))
        return cd_seterr("tile shapes '%s': the line must start with 'Tiles'", line);
    static const char *const keys[6] = {"BM", "BN", "BK", "WX", "WY", "DB"};
    for (int c = 0; c < 2; c++) {
        long v[6];
        for (int k = 0; k < 6; k++) {
            char key[8];
            snprintf(key, sizeof key, "%s%s", prefixes[c], keys[k]);
            int got = blas_line_value(line, key, &v[k]);
            if (k == 5) {             /* DB: optional, 0 when absent */
                if (got < 0) return cd_seterr("tile shapes '%s': %s is not a number", line, key);
                if (!got) v[k] = 0;
            } else if (got != 1 || v[k] <= 0 || v[k] > 4096) {
                return cd_seterr("tile shapes '%s': %s is missing or not a positive number", line, key);
            }
        }
        out[c] = (cd_tile_shape){(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5]};
        if (check_shape(&out[c], shape_names[c])) return -1;
    }
    return 0;
}

void cd_gemm_tiles_line(const cd_tile_shape t[2], char *buf, size_t n) {
    snprintf(buf, n, "Tiles S_BM=%d S_BN=%d S_BK=%d S_WX=%d S_WY=%d%s L_BM=%d L_BN=%d L_BK=%d L_WX=%d L_WY=%d%s",
             t[0].bm, t[0].bn, t[0].bk, t[0].wx, t[0].wy, t[0].db ? " S_DB=1" : "", t[1].bm, t[1].bn, t[1].bk,
             t[1].wx, t[1].wy, t[1].db ? " L_DB=1" : "");
}

int blas_tiles_fit(size_t local_mem, size_t max_wg, const cd_tile_shape t[2], char *why, size_t n) {
    for (int c = 0; c < 2; c++) {
        size_t nt = (size_t)(t[c].wx * t[c].wy);
        if (max_wg && nt > max_wg) {
            snprintf(why, n, "the %s tiles need work-groups of %zu, the device allows %zu", shape_names[c], nt,
                     max_wg);
            return 0;
        }
        if (local_mem && local_bytes(&t[c]) > local_mem) {
            snprintf(why, n, "the %s tiles need %zu bytes of local memory, the device has %zu", shape_names[c],
                     local_bytes(&t[c]), local_mem);
            return 0;
        }
    }
    return 1;
}

int cd_gemm_set_tile_shapes(cd_device *dev, const cd_tile_shape t[2]) {
    char why[160];
    for (int c = 0; c < 2; c++)
        if (check_shape(&t[c], shape_names[c])) return -1;
    if (!blas_tiles_fit(dev->info.local_mem, dev->info.max_work_group, t, why, sizeof why))
        return cd_seterr("tile shapes for %s: %s", dev->info.name, why);
    if (!memcmp(dev->tiles, t, sizeof dev->tiles)) return 0;
    cd_drop_program(dev, BLAS_TILE_FILE);
    cd_drop_program(dev, BLAS_TILE_CONV_FILE);
    memcpy(dev->tiles, t, sizeof dev->tiles);
    return 0;
}

void blas_tile_options(const cd_device *dev, char *buf, size_t n) {
    const cd_tile_shape *s = &dev->tiles[0], *l = &dev->tiles[1];
    snprintf(buf, n,
             " -DTS_BM=%d -DTS_BN=%d -DTS_BK=%d -DTS_WX=%d -DTS_WY=%d -DTS_DB=%d"
             " -DTL_BM=%d -DTL_BN=%d -DTL_BK=%d -DTL_WX=%d -DTL_WY=%d -DTL_DB=%d",
             s->bm, s->bn, s->bk, s->wx, s->wy, s->db, l->bm, l->bn, l->bk, l->wx, l->wy, l->db);
}

#define SPLIT_MIN_KC 128                    /* k per part at least */
#define SPLIT_MAX 32
#define SPLIT_MAX_FLOATS ((size_t)64 << 20) /* 256 MB of parts at most */

static size_t tile_count(const cd_tile_shape *s, size_t M, size_t N, size_t batch) {
    return ((M + (size_t)s->bm - 1) / (size_t)s->bm) * ((N + (size_t)s->bn - 1) / (size_t)s->bn) * batch;
}

/* gemm_tile_*, the rule measured on an H200 with the built-in shapes
 * (bench/README.md): small tiles by default, large ones for one long product
 * (k >= 1024) that fills a large tile (m, n at least its size) but has too
 * few small tiles to keep four work-groups on every compute unit (128 tiles
 * do twice the arithmetic per local-memory read: 20 against 15 TFLOP/s on
 * 256 x 2500 x 2304); and k of a single product split in parts (summed by
 * gemm_split_sum) while there are fewer tiles than two per compute unit
 * (weight gradients: 64 x 576 x 40000 ran at 1.4 TFLOP/s in CLBlast, 18.2 in
 * this rule's 30 parts). The parts are whole multiples of 8 of k whatever the
 * shapes, so a product split the same way gives the same bits on every pair. */
int blas_tile_range(cd_device *dev, const char *name, const cd_tile_shape *s, size_t M, size_t N, size_t z,
                    size_t global[3], size_t local[3]) {
    size_t wx = (size_t)s->wx, wy = (size_t)s->wy;
    /* a compiler that cannot give the kernel its work-group (registers,
     * local memory) leaves the product to CLBlast */
    if (cd_kernel_wg_size(dev, name) < wx * wy) return 0;
    global[0] = (N + (size_t)s->bn - 1) / (size_t)s->bn * wx;
    global[1] = (M + (size_t)s->bm - 1) / (size_t)s->bm * wy;
    global[2] = z;
    local[0] = wx;
    local[1] = wy;
    local[2] = 1;
    return 1;
}

tile_plan blas_tile_plan(const cd_device *dev, size_t M, size_t N, size_t K, size_t batch) {
    size_t cus = CD_MAX((size_t)dev->info.compute_units, (size_t)1);
    const cd_tile_shape *L = &dev->tiles[1];
    int big = batch == 1 && M >= (size_t)L->bm && N >= (size_t)L->bn && K >= 1024 &&
              tile_count(&dev->tiles[0], M, N, batch) < 4 * cus;
    tile_plan p = {tile_force ? tile_force == CD_TILE_LARGE : big, 1, K};
    size_t tiles = tile_count(&dev->tiles[p.large], M, N, batch);
    if (split_force > 0 && batch == 1) p.nsplit = (size_t)split_force;
    else if (tiles < 2 * cus && batch == 1)
        p.nsplit = CD_MIN(CD_MIN((2 * cus + tiles - 1) / tiles, K / SPLIT_MIN_KC), (size_t)SPLIT_MAX);
    while (p.nsplit > 1 && p.nsplit * M * N > SPLIT_MAX_FLOATS) p.nsplit /= 2;
    p.nsplit = CD_MAX(CD_MIN(p.nsplit, K), (size_t)1);
    p.kc = (K + p.nsplit - 1) / p.nsplit;
    p.kc = (p.kc + 7) / 8 * 8;
    p.nsplit = (K + p.kc - 1) / p.kc;
    return p;
}

int blas_tile_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                   size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt,
                   cd_mem bias, int relu, cd_mem sums) {
    int epi = bias.mem ? 1 + !!relu : 0, has_sums = sums.mem != NULL;
    cd_mem bm = bias.mem ? bias : C, sm = has_sums ? sums : C;
    if (has_sums && (!ta || tb || bt->inner * bt->outer != 1))
        cd_fatal("blas_tile_gemm: column sums only for one A^T B product (a bug in cldetr)");
    size_t batch = bt->inner * bt->outer;
    tile_plan pl = blas_tile_plan(dev, M, N, K, batch);
    int large = pl.large;
    size_t nsplit = pl.nsplit, kc = pl.kc;
    const cd_tile_shape *s = &dev->tiles[large];
    static const char *names[2][4] = {
        {"gemm_tile_small_nn", "gemm_tile_small_nt", "gemm_tile_small_tn", "gemm_tile_small_tt"},
        {"gemm_tile_large_nn", "gemm_tile_large_nt", "gemm_tile_large_tn", "gemm_tile_large_tt"}};
    const char *name = names[large][ta * 2 + tb];
    size_t global[3], local[3];
    if (!blas_tile_range(dev, name, s, M, N, batch * nsplit, global, local)) return 0;
    if (nsplit == 1) {
        CD_LAUNCH_WG(dev, name, 3, global, local, KM(C), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda), KI(ldb),
                     KI(ldc), KUL(bt->sA), KUL(bt->sB), KUL(bt->sC), KF(alpha), KF(beta), KI(1), KI(K),
                     KU(bt->inner), KUL(bt->sAo), KUL(bt->sBo), KUL(bt->sCo), KM(bm), KI(epi), KM(sm),
                     KI(has_sums));
        return 1;
    }
    blas_ensure_temp(dev, nsplit * (M * N + (has_sums ? M : 0)) * sizeof(float));
    cd_mem W = {dev->blas_temp, 0}, Ws = {dev->blas_temp, nsplit * M * N};   /* the parts, then their sums */
    CD_LAUNCH_WG(dev, name, 3, global, local, KM(W), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda), KI(ldb), KI(N),
                 KUL(0), KUL(0), KUL(M * N), KF(alpha), KF(0.0f), KI(nsplit), KI(kc), KU(1), KUL(0), KUL(0),
                 KUL(0), KM(bm), KI(0), KM(has_sums ? Ws : C), KI(has_sums));
    CD_LAUNCH2(dev, "gemm_split_sum", N, M, KM(C), KM(W), KI(M), KI(N), KI(ldc), KI(nsplit), KF(beta), KM(bm),
               KI(epi), KM(sm), KI(has_sums));
    return 1;
}
