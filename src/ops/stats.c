/* Summary statistics of a tensor for the per-layer training log: not part of
 * the model, so no backward. Kernels: cl/stats.cl. */
#include "cldetr/ops.h"
#include "ops/op_ref.h"

#define STATS_GROUPS 64          /* pass 1 work-groups: enough to fill a GPU, few to add up */

static size_t pow2_floor(size_t x) { size_t p = 1; while (p * 2 <= x) p *= 2; return p; }

void op_moments(cd_device *dev, cd_mem out, cd_mem x, size_t n) {
    size_t L1 = pow2_floor(CD_MIN(cd_kernel_wg_size(dev, "moments_partial"), (size_t)256));
    size_t L2 = pow2_floor(CD_MIN(cd_kernel_wg_size(dev, "moments_final"), (size_t)64));
    size_t G = CD_MAX((size_t)1, CD_MIN((size_t)STATS_GROUPS, (n + L1 - 1) / L1));
    cd_mem part = cd_alloc(dev, 3 * G, "statistics partial sums");
    size_t global = G * L1;
    CD_LAUNCH_WG(dev, "moments_partial", 1, &global, &L1, KM(part), KM(x), KUL(n), KLOCAL(L1 * sizeof(float)));
    CD_LAUNCH_WG(dev, "moments_final", 1, &L2, &L2, KM(out), KM(part), KUL(G), KLOCAL(L2 * sizeof(float)));
    cd_free(dev, part);          /* the in-order queue finishes pass 2 before any reuse */
}

void op_moments_ref(double out[3], const double *x, size_t n) {
    out[0] = out[1] = out[2] = 0;
    for (size_t i = 0; i < n; i++) {
        out[0] += x[i];
        out[1] += x[i] * x[i];
        out[2] += x[i] == 0.0;
    }
}
