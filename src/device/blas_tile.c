/* cd_gemm on GPUs: cl/blas_tile.cl's tile kernels, the tile size and the
 * split of k chosen per product (src/device/blas.c calls blas_tile_gemm when
 * cd_gemm_kernels says CD_GEMM_TILES). */
#include "cldetr/device.h"
#include "blas_tile.h"

static int tile_force = 0, split_force = 0;

void cd_gemm_set_tiles(int tile, int nsplit) {
    tile_force = tile;
    split_force = nsplit;
}

#define SPLIT_MIN_KC 128                    /* k per part at least */
#define SPLIT_MAX 32
#define SPLIT_MAX_FLOATS ((size_t)64 << 20) /* 256 MB of parts at most */

/* gemm_tile*, sizes chosen from measurements on an H200 (bench/README.md):
 * 64 x 64 tiles by default, 128 x 128 for one long product (k >= 1024) that
 * fills both tiles (m, n >= 128) but has too few 64-tiles to keep four
 * work-groups on every compute unit (128 tiles do twice the arithmetic per
 * local-memory read: 20 against 15 TFLOP/s on 256 x 2500 x 2304); and k of
 * a single product split in parts (summed by gemm_split_sum) while there are
 * fewer tiles than two per compute unit (weight gradients: 64 x 576 x 40000
 * ran at 1.4 TFLOP/s in CLBlast, 18.2 in this rule's 30 parts). */
int blas_tile_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                   size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt,
                   cd_mem bias, int relu, cd_mem sums) {
    int epi = bias.mem ? 1 + !!relu : 0, has_sums = sums.mem != NULL;
    cd_mem bm = bias.mem ? bias : C, sm = has_sums ? sums : C;
    if (has_sums && (!ta || tb || bt->inner * bt->outer != 1))
        cd_fatal("blas_tile_gemm: column sums only for one A^T B product (a bug in cldetr)");
    size_t batch = bt->inner * bt->outer;
    size_t cus = CD_MAX((size_t)dev->info.compute_units, (size_t)1);
    size_t t64 = ((M + 63) / 64) * ((N + 63) / 64) * batch;
    int big = batch == 1 && M >= 128 && N >= 128 && K >= 1024 && t64 < 4 * cus;
    int tile = tile_force ? tile_force : big ? 128 : 64;
    size_t tiles = ((M + tile - 1) / tile) * ((N + tile - 1) / tile) * batch;
    size_t nsplit = 1;
    if (split_force > 0 && batch == 1) nsplit = (size_t)split_force;
    else if (tiles < 2 * cus && batch == 1)
        nsplit = CD_MIN(CD_MIN((2 * cus + tiles - 1) / tiles, K / SPLIT_MIN_KC), (size_t)SPLIT_MAX);
    while (nsplit > 1 && nsplit * M * N > SPLIT_MAX_FLOATS) nsplit /= 2;
    nsplit = CD_MAX(CD_MIN(nsplit, K), (size_t)1);
    size_t kc = (K + nsplit - 1) / nsplit;
    kc = (kc + 7) / 8 * 8;
    nsplit = (K + kc - 1) / kc;
    static const char *names[2][4] = {{"gemm_tile64_nn", "gemm_tile64_nt", "gemm_tile64_tn", "gemm_tile64_tt"},
                                      {"gemm_tile128_nn", "gemm_tile128_nt", "gemm_tile128_tn", "gemm_tile128_tt"}};
    const char *name = names[tile == 128][ta * 2 + tb];
    /* a compiler that cannot give the kernel its 16 x 16 group (registers,
     * local memory) leaves the product to CLBlast */
    if (cd_kernel_wg_size(dev, name) < 256) return 0;
    size_t global[3] = {(N + tile - 1) / tile * 16, (M + tile - 1) / tile * 16, batch * nsplit};
    size_t local[3] = {16, 16, 1};
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
