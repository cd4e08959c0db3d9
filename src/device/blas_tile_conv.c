/* cd_gemm_conv: a convolution's products on the GPU tile kernels with
 * implicit operands (cl/blas_tile_conv.cl): the images and the output
 * gradient read where they lie, the forward's output written in its layout.
 * The tile shape and the parts of k as blas_tile_gemm chooses them. */
#include "cldetr/device.h"
#include "blas_tile.h"

int cd_gemm_conv(cd_device *dev, int which, size_t M, size_t N, size_t K, float alpha, cd_mem A, size_t lda,
                 cd_mem B, float beta, cd_mem C, size_t ldc, const cd_conv_view *v) {
    if (M == 0 || N == 0 || K == 0 || cd_gemm_kernels(dev) != CD_GEMM_TILES) return 0;
    size_t lim24 = (size_t)1 << 24, P = (size_t)v->Ho * (size_t)v->Wo;
    size_t q = which == CD_CONV_DW ? K : N, crs = which == CD_CONV_DW ? N : which == CD_CONV_FW ? K : M;
    if (q >= lim24 || crs >= lim24 || P == 0 || q % P) return 0;   /* div_nonneg's range; whole images */
    tile_plan pl = blas_tile_plan(dev, M, N, K, 1);
    static const char *names[2][3] = {
        {"gemm_tile_small_conv_fw", "gemm_tile_small_conv_dw", "gemm_tile_small_conv_dx"},
        {"gemm_tile_large_conv_fw", "gemm_tile_large_conv_dw", "gemm_tile_large_conv_dx"}};
    const char *name = names[pl.large][which];
    const cd_tile_shape *s = &dev->tiles[pl.large];
    size_t global[3], local[3];
    if (!blas_tile_range(dev, name, s, M, N, pl.nsplit, global, local)) return 0;
    int RS = v->R * v->S;
    cd_mem out = C;
    size_t ldo = ldc;
    if (pl.nsplit > 1) {
        blas_ensure_temp(dev, pl.nsplit * M * N * sizeof(float));
        out = (cd_mem){dev->blas_temp, 0};
        ldo = N;
    }
    CD_LAUNCH_WG(dev, name, 3, global, local, KM(out), KM(A), KM(B), KI(M), KI(N), KI(K), KI(lda), KI(lda),
                 KI(ldo), KUL(pl.nsplit > 1 ? M * N : 0), KF(alpha), KF(pl.nsplit > 1 ? 0.0f : beta),
                 KI(pl.nsplit), KI(pl.kc), KI(v->C), KI(v->H), KI(v->W), KI(v->R), KI(v->S), KI(v->Wo),
                 KI(v->stride), KI(v->pad), KI(v->dil), KI(P), KI(v->K), KF(1.0f / (float)RS),
                 KF(1.0f / (float)v->S), KF(1.0f / (float)v->Wo), KF(1.0f / (float)P));
    if (pl.nsplit > 1 && which == CD_CONV_FW)   /* parts in (B, M, P) order: summed as one row of M * N */
        CD_LAUNCH2(dev, "gemm_split_sum", M * N, 1, KM(C), KM(out), KI(1), KI(M * N), KI(M * N), KI(pl.nsplit),
                   KF(beta), KM(C), KI(0), KM(C), KI(0));
    else if (pl.nsplit > 1)
        CD_LAUNCH2(dev, "gemm_split_sum", N, M, KM(C), KM(out), KI(M), KI(N), KI(ldc), KI(pl.nsplit), KF(beta),
                   KM(C), KI(0), KM(C), KI(0));
    return 1;
}
