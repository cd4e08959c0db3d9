/* Dropout with a counter-based mask: element i is kept iff
 * uniform(seed, stream, i) >= p (Philox-4x32-10, cl/dropout.cl); kept elements
 * are scaled by 1/(1-p). The backward recomputes the mask, so nothing is saved
 * and the mask is the same on every device and after a resume. */
#include "cldetr/ops.h"
#include "ops/op_ref.h"

static float keep_scale(float p) {
    if (!(p >= 0.0f && p <= 1.0f)) cd_fatal("dropout probability %g is outside [0, 1] (a bug in the caller)", p);
    return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
}

void op_dropout_forward(cd_device *dev, cd_mem out, cd_mem x, size_t n, float p, uint64_t seed, uint64_t stream) {
    float scale = keep_scale(p);
    CD_LAUNCH1(dev, "dropout_forward", n, KM(out), KM(x), KUL(n), KF(p), KF(scale), KUL(seed), KUL(stream));
}

void op_dropout_backward(cd_device *dev, cd_mem dx, cd_mem dout, size_t n, float p, uint64_t seed,
                         uint64_t stream, int acc) {
    float scale = keep_scale(p);
    CD_LAUNCH1(dev, "dropout_backward", n, KM(dx), KM(dout), KUL(n), KF(p), KF(scale), KUL(seed), KUL(stream),
               KI(acc));
}

/* ---- host references ---------------------------------------------------- */

/* Philox-4x32-10 of counter (i, stream) under key seed; must stay bit-identical
 * to philox_uniform in cl/common.cl. */
float op_dropout_uniform_ref(uint64_t seed, uint64_t stream, uint64_t i) {
    uint32_t c0 = (uint32_t)i, c1 = (uint32_t)(i >> 32), c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (float)(c0 >> 8) * (1.0f / 16777216.0f);
}

void op_dropout_forward_ref(double *out, const double *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    double scale = keep_scale(p);
    for (size_t i = 0; i < n; i++) out[i] = op_dropout_uniform_ref(seed, stream, i) >= p ? x[i] * scale : 0.0;
}

void op_dropout_backward_ref(double *dx, const double *dout, size_t n, float p, uint64_t seed, uint64_t stream,
                             int acc) {
    double scale = keep_scale(p);
    for (size_t i = 0; i < n; i++)
        dx[i] = (acc ? dx[i] : 0.0) + (op_dropout_uniform_ref(seed, stream, i) >= p ? dout[i] * scale : 0.0);
}
