/* Max pool forward (with saved argmax) and backward (a gather), and plain C
 * references. Kernels in cl/pool.cl. */
#include <math.h>
#include <string.h>

#include "cldetr/ops.h"
#include "ops/op_ref.h"

/* ---- reference ----------------------------------------------------------- */

void maxpool_forward_ref(double *out, double *argmax, const double *x, size_t B, size_t C, size_t H, size_t W,
                         size_t k, size_t s, size_t p) {
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p);
    for (size_t pl = 0; pl < B * C; pl++)
        for (size_t oh = 0; oh < Ho; oh++)
            for (size_t ow = 0; ow < Wo; ow++) {
                double best = -INFINITY;
                long arg = -1;
                for (size_t i = 0; i < k; i++) {
                    long ih = (long)(oh * s + i) - (long)p;
                    if (ih < 0 || ih >= (long)H) continue;
                    for (size_t j = 0; j < k; j++) {
                        long iw = (long)(ow * s + j) - (long)p;
                        if (iw < 0 || iw >= (long)W) continue;
                        double v = x[pl * H * W + (size_t)ih * W + (size_t)iw];
                        if (arg < 0 || v > best || isnan(v)) { best = v; arg = ih * (long)W + iw; }
                    }
                }
                out[(pl * Ho + oh) * Wo + ow] = best;
                if (argmax) argmax[(pl * Ho + oh) * Wo + ow] = (double)arg;
            }
}

void maxpool_backward_ref(double *dx, const double *dout, const double *argmax, size_t B, size_t C, size_t H,
                          size_t W, size_t k, size_t s, size_t p) {
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p);
    memset(dx, 0, B * C * H * W * sizeof *dx);
    for (size_t pl = 0; pl < B * C; pl++)
        for (size_t o = 0; o < Ho * Wo; o++) {
            double a = argmax[pl * Ho * Wo + o];
            if (a >= 0) dx[pl * H * W + (size_t)a] += dout[pl * Ho * Wo + o];
        }
}

/* ---- device -------------------------------------------------------------- */

static void check_pool(size_t B, size_t C, size_t H, size_t W, size_t k, size_t s, size_t p) {
    if (k == 0 || s == 0 || 2 * p > k || H + 2 * p < k || W + 2 * p < k)
        cd_fatal("max pool: window %zu, stride %zu, padding %zu does not fit a %zux%zu input "
                 "(need k >= 1, s >= 1, padding <= k/2, k <= size + 2*padding)", k, s, p, H, W);
    if (H * W >= ((size_t)1 << 24))
        cd_fatal("max pool: a %zux%zu plane has more cells than a float argmax indexes exactly (2^24)", H, W);
    if (B * C > INT32_MAX) cd_fatal("max pool: %zu x %zu planes are more than the kernels index (2^31)", B, C);
}

/* Ranges are (w, h, plane) so the kernels decode nothing; ResNet's pool (k 3,
 * s 2, p <= 1) has its own kernels (see cl/pool.cl). */
static int pool_is_k3s2(size_t k, size_t s, size_t p) { return k == 3 && s == 2 && p <= 1; }

/* out, argmax (B, C, Ho, Wo) from x (B, C, H, W) */
void op_maxpool_forward(cd_device *dev, cd_mem out, cd_mem argmax, cd_mem x, size_t B, size_t C,
                        size_t H, size_t W, size_t k, size_t s, size_t p) {
    check_pool(B, C, H, W, k, s, p);
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p);
    /* ResNet's pool on even widths: 8 outputs per work-item from float16 row loads (cl/pool.cl) */
    int v8 = k == 3 && s == 2 && p == 1 && W % 2 == 0 && Wo % 8 == 0;
    const char *name = v8 ? "maxpool_forward_k3s2p1_v8" : k == 3 ? "maxpool_forward_k3" : "maxpool_forward";
    CD_LAUNCH3(dev, name, v8 ? Wo / 8 : Wo, Ho, B * C, KM(out), KM(argmax), KM(x), KI(B * C), KI(H), KI(W),
               KI(Ho), KI(Wo), KI(k), KI(s), KI(p));
}

/* maxpool_backward_k3s2_rows (a work-item per row of dx, cl/pool.cl) where the
 * shape allows it (-1, the default; 0.84 -> 0.13 ms for shapes.ini's stem pool
 * on PoCL), or never (0: tests compare the two). */
static int bwd_rows = -1;

int op_maxpool_set_backward_rows(int mode) {
    int old = bwd_rows;
    bwd_rows = mode;
    return old;
}

/* dx (B, C, H, W) (=/+=) from dout, argmax (B, C, Ho, Wo) */
void op_maxpool_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem argmax, size_t B, size_t C,
                         size_t H, size_t W, size_t k, size_t s, size_t p, int acc) {
    check_pool(B, C, H, W, k, s, p);
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p);
    int k3s2 = pool_is_k3s2(k, s, p);
    if (bwd_rows && k3s2 && p == 1 && W == 2 * Wo && Wo % 16 == 0) {
        CD_LAUNCH2(dev, "maxpool_backward_k3s2_rows", H, B * C, KM(dx), KM(dout), KM(argmax), KI(B * C), KI(H),
                   KI(W), KI(Ho), KI(Wo), KI(acc));
        return;
    }
    CD_LAUNCH3(dev, k3s2 ? "maxpool_backward_k3s2" : "maxpool_backward", k3s2 ? (W + 1) / 2 : W, H, B * C, KM(dx),
               KM(dout), KM(argmax), KI(B * C), KI(H), KI(W), KI(Ho), KI(Wo), KI(k), KI(s), KI(p),
               KF(1.0f / (float)s), KI(acc));
}
