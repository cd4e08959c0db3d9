/* Private to src/device: the GPU tile GEMM (blas_tile.c) and the scratch
 * buffer it shares with CLBlast's calls (blas.c). */
#ifndef CLDETR_DEVICE_BLAS_TILE_H
#define CLDETR_DEVICE_BLAS_TILE_H
#include "cldetr/device.h"

/* C = alpha op(A) op(B) + beta C by cl/blas_tile.cl, then with a bias
 * (bias.mem set) C's column n += bias[n] and with relu a ReLU; with sums
 * (sums.mem set; one A^T B product only) sums (M) += A's columns summed over
 * k. 0 when the device cannot run the kernel (CLBlast then computes it), 1
 * when launched. */
int blas_tile_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, float alpha, cd_mem A,
                   size_t lda, cd_mem B, size_t ldb, float beta, cd_mem C, size_t ldc, const cd_batch *bt,
                   cd_mem bias, int relu, cd_mem sums);
#define BLAS_TILE_FILE "blas_tile.cl"
#define BLAS_TILE_CONV_FILE "blas_tile_conv.cl"   /* built with BLAS_TILE_FILE before it (device.c) */
/* The built-in small and large tile shapes (64 x 64 and 128 x 128). */
extern const cd_tile_shape blas_tile_builtin[2];
/* The value of NAME in a "NAME=V NAME=V ..." tuning line: 1 and *v, 0 when
 * absent, -1 when V is not a whole number */
int blas_line_value(const char *line, const char *name, long *v);
/* The -D options of cl/blas_tile.cl for dev's tile shapes (device.c builds it with them). */
void blas_tile_options(const cd_device *dev, char *buf, size_t n);
/* 1 when a device with this local memory and largest work-group (0: unknown)
 * can run the shapes t, else 0 and why. */
int blas_tiles_fit(size_t local_mem, size_t max_wg, const cd_tile_shape t[2], char *why, size_t n);
/* How blas_tile_gemm runs a product: the large tiles or the small, k in
 * nsplit parts of kc (a multiple of 8) */
typedef struct { int large; size_t nsplit, kc; } tile_plan;
tile_plan blas_tile_plan(const cd_device *dev, size_t M, size_t N, size_t K, size_t batch);
/* The range of a tile kernel over C (M x N) and z matrices or parts: 0 when
 * the device cannot give the kernel its work-group (the caller falls back) */
int blas_tile_range(cd_device *dev, const char *name, const cd_tile_shape *s, size_t M, size_t N, size_t z,
                    size_t global[3], size_t local[3]);
/* dev->blas_temp holds at least bytes (fatal, naming the buffer, when the device is out of memory) */
void blas_ensure_temp(cd_device *dev, size_t bytes);

#endif
