/* Work-group sizing and axis reductions shared by the launchers of
 * src/ops/{elementwise,reduce,softmax,layernorm}.c; not part of the public op API. */
#ifndef CLDETR_OPS_REDUCE_UTIL_H
#define CLDETR_OPS_REDUCE_UTIL_H

#include <stddef.h>
#include "cldetr/device.h"

/* Largest power of two <= x (x >= 1), and smallest >= x. */
static inline size_t ops_pow2_floor(size_t x) { size_t p = 1; while (p * 2 <= x) p *= 2; return p; }
static inline size_t ops_pow2_ceil(size_t x) { size_t p = 1; while (p < x) p *= 2; return p; }

/* Work-group size of a kernel that reduces in local memory: a power of two, at
 * most the kernel's limit on this device and 256, and no larger than needed for
 * `work` items (so short rows don't idle hundreds of items). */
static inline size_t ops_reduce_wg(cd_device *dev, const char *kernel, size_t work) {
    size_t cap = ops_pow2_floor(CD_MIN(cd_kernel_wg_size(dev, kernel), (size_t)256));
    return CD_MIN(cap, ops_pow2_ceil(CD_MAX(work, (size_t)1)));
}

/* Row-wise kernels (layer norm, softmax; the linear bias gradient's column
 * sums) in their CPU shape, one work-item per row (column) with vectors along
 * it, instead of work-groups with local-memory tree reductions (GPUs): by
 * device type (not a GPU), or forced
 * for tests by ops_set_row_kernels (1 CPU shape, 0 GPU shape, -1 by device;
 * returns the old setting). Defined in src/ops/reduce.c. */
int ops_row_kernels(const cd_device *dev);
int ops_set_row_kernels(int mode);

/* Split a 2-D tiled column reduction (I columns, R rows to sum, O independent
 * problems) into a local size (LI, LR) and S chunks of Rc rows, so that there
 * are enough work-groups to fill a device when O * I is small. */
typedef struct { size_t LI, LR, S, Rc; } ops_tiling;
ops_tiling ops_tile_reduction(cd_device *dev, const char *kernel, size_t O, size_t R, size_t I);

/* out[o, i] (=/+=) alpha * sum_r f(x[o, r, i]) with f = x (mode 0), x^2 (mode 1),
 * x * y (mode 2); x, y (O, R, I), out (O, I). Deterministic for a given device. */
void ops_reduce_axis(cd_device *dev, cd_mem out, cd_mem x, cd_mem y, size_t O, size_t R, size_t I,
                     float alpha, int acc, int mode);

/* out[c] += sum over b, hw of f(x[b, c, hw]) (mode as ops_reduce_axis)     x, y (B, C, HW), out (C) */
void ops_reduce_channels(cd_device *dev, cd_mem out, cd_mem x, cd_mem y, size_t B, size_t C, size_t HW, int mode);

#endif
