/* Batch norm over (B, C, HW): frozen (the statistics are buffers) and trainable
 * with batch statistics (alone, or with the ReLU after it fused in), and plain
 * C references. Kernels in cl/batchnorm.cl: the per-channel sums are
 * work-group trees on GPUs, a work-item per channel on CPUs (ops_row_kernels). */
#include <math.h>
#include <string.h>

#include "cldetr/ops.h"
#include "ops/op_ref.h"
#include "ops/reduce_util.h"

/* ---- reference ----------------------------------------------------------- */

void batchnorm_frozen_forward_ref(double *out, const double *x, const double *w, const double *b,
                                  const double *mean, const double *var, size_t B, size_t C, size_t HW, double eps) {
    for (size_t n = 0; n < B; n++)
        for (size_t c = 0; c < C; c++) {
            double scale = w[c] / sqrt(var[c] + eps), shift = b[c] - mean[c] * scale;
            for (size_t i = 0; i < HW; i++) out[(n * C + c) * HW + i] = x[(n * C + c) * HW + i] * scale + shift;
        }
}

void batchnorm_frozen_backward_ref(double *dx, const double *dout, const double *w, const double *var,
                                   size_t B, size_t C, size_t HW, double eps) {
    for (size_t n = 0; n < B; n++)
        for (size_t c = 0; c < C; c++) {
            double scale = w[c] / sqrt(var[c] + eps);
            for (size_t i = 0; i < HW; i++) dx[(n * C + c) * HW + i] = dout[(n * C + c) * HW + i] * scale;
        }
}

void batchnorm_train_forward_ref(double *out, double *save_mean, double *save_rstd, double *running_mean,
                                 double *running_var, const double *x, const double *w, const double *b,
                                 size_t B, size_t C, size_t HW, double eps, double momentum) {
    double N = (double)(B * HW);
    for (size_t c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (size_t n = 0; n < B; n++)
            for (size_t i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
        double mean = s / N;
        for (size_t n = 0; n < B; n++)
            for (size_t i = 0; i < HW; i++) {
                double d = x[(n * C + c) * HW + i] - mean;
                ss += d * d;
            }
        double var = ss / N, rstd = 1.0 / sqrt(var + eps);
        if (save_mean) save_mean[c] = mean;
        if (save_rstd) save_rstd[c] = rstd;
        if (running_mean) running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean;
        if (running_var) running_var[c] = (1 - momentum) * running_var[c] + momentum * ss / (N - 1);
        for (size_t n = 0; n < B; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t a = (n * C + c) * HW + i;
                out[a] = (x[a] - mean) * rstd * w[c] + b[c];
            }
    }
}

void batchnorm_train_backward_ref(double *dx, double *dw, double *db, const double *dout, const double *x,
                                  const double *save_mean, const double *save_rstd, const double *w,
                                  size_t B, size_t C, size_t HW) {
    double N = (double)(B * HW);
    for (size_t c = 0; c < C; c++) {
        double sd = 0, sdx = 0, m = save_mean[c], r = save_rstd[c];
        for (size_t n = 0; n < B; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t a = (n * C + c) * HW + i;
                sd += dout[a];
                sdx += dout[a] * (x[a] - m) * r;
            }
        if (db) db[c] = sd;
        if (dw) dw[c] = sdx;
        if (dx)
            for (size_t n = 0; n < B; n++)
                for (size_t i = 0; i < HW; i++) {
                    size_t a = (n * C + c) * HW + i;
                    dx[a] = w[c] * r * (dout[a] - sd / N - (x[a] - m) * r * sdx / N);
                }
    }
}

/* ---- device -------------------------------------------------------------- */

/* Local size of a one-work-group-per-channel reduction: a power of two <= 256;
 * on CPUs at most 16: PoCL runs each barrier-separated region as a loop over
 * the work-items, so the tree's cost grows with the local size while the
 * float8 loads of cl/batchnorm.cl already vectorise each work-item's share. */
static size_t reduce_local(cd_device *dev, const char *kernel) {
    size_t cap = (dev->info.type & CL_DEVICE_TYPE_CPU) ? 16 : 256;
    size_t wg = CD_MIN(cd_kernel_wg_size(dev, kernel), cap), l = 1;
    while (l * 2 <= wg) l *= 2;
    return l;
}

/* Local size of the element-wise kernels over (HW, C, B): (l, 1, 1) with l the
 * largest power of two <= 256 dividing HW, so the range is exact along HW and
 * a work-group holds one channel (the kernels rely on both: BN_CHANNEL_FIRST
 * in cl/batchnorm.cl). */
static const size_t *plane_local(cd_device *dev, const char *kernel, size_t HW, size_t *local) {
    size_t cap = CD_MIN(cd_kernel_wg_size(dev, kernel), (size_t)256), l = 1;
    while (l * 2 <= cap && HW % (l * 2) == 0) l *= 2;
    local[0] = l; local[1] = 1; local[2] = 1;
    return local;
}

/* Planes whose work-groups would hold fewer work-items than this take the
 * frozen kernels' flat form (one work-item per element, the channel computed):
 * (l,1,1) groups of 1-16 items left an H200 at a tenth of its bandwidth on
 * DETR-R50's 25x25 and 50x50 planes. */
#define BN_FLAT_BELOW 32

/* The kernels index a plane and the batch with int. */
static void check_sizes(size_t B, size_t C, size_t HW) {
    if (B > INT32_MAX || C > INT32_MAX || HW > INT32_MAX)
        cd_fatal("batch norm: a (%zu, %zu, %zu) tensor has a dimension beyond 2^31 (the kernels' int indexing)",
                 B, C, HW);
}

/* out = x * scale + shift, then ReLU when relu   x, out (B, C, HW); w, b, mean, var (C) */
static void frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, cd_mem mean, cd_mem var,
                           size_t B, size_t C, size_t HW, float eps, int relu) {
    check_sizes(B, C, HW);
    size_t loc[3];
    if (plane_local(dev, "bn_frozen_forward", HW, loc)[0] < BN_FLAT_BELOW) {
        CD_LAUNCH1(dev, "bn_frozen_forward_flat", B * C * HW, KM(out), KM(x), KM(w), KM(b), KM(mean), KM(var),
                   KI(C), KI(HW), KUL(B * C * HW), KF(eps), KI(relu));
        return;
    }
    CD_LAUNCH_WG(dev, "bn_frozen_forward", 3, ((size_t[]){HW, C, B}), plane_local(dev, "bn_frozen_forward", HW, loc),
                 KM(out), KM(x), KM(w), KM(b), KM(mean), KM(var), KI(B), KI(C), KI(HW), KF(eps), KI(relu));
}

/* dx (=/+=) dout * scale; with y (the ReLU's output) dout is the gradient of that ReLU's output */
static void frozen_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem y, cd_mem w, cd_mem var,
                            size_t B, size_t C, size_t HW, float eps, int acc) {
    check_sizes(B, C, HW);
    int mask = cd_has(y);
    size_t loc[3];
    if (plane_local(dev, "bn_frozen_backward", HW, loc)[0] < BN_FLAT_BELOW) {
        CD_LAUNCH1(dev, "bn_frozen_backward_flat", B * C * HW, KM(dx), KM(dout), KM(mask ? y : dout), KM(w),
                   KM(var), KI(C), KI(HW), KUL(B * C * HW), KF(eps), KI(acc), KI(mask));
        return;
    }
    CD_LAUNCH_WG(dev, "bn_frozen_backward", 3, ((size_t[]){HW, C, B}), plane_local(dev, "bn_frozen_backward", HW, loc),
                 KM(dx), KM(dout), KM(mask ? y : dout), KM(w), KM(var), KI(B), KI(C), KI(HW), KF(eps), KI(acc),
                 KI(mask));
}

void op_batchnorm_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, cd_mem mean,
                                 cd_mem var, size_t B, size_t C, size_t HW, float eps) {
    frozen_forward(dev, out, x, w, b, mean, var, B, C, HW, eps, 0);
}

void op_batchnorm_frozen_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem w, cd_mem var,
                                  size_t B, size_t C, size_t HW, float eps, int acc) {
    frozen_backward(dev, dx, dout, cd_none(), w, var, B, C, HW, eps, acc);
}

void op_batchnorm_relu_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem w, cd_mem b, cd_mem mean,
                                      cd_mem var, size_t B, size_t C, size_t HW, float eps) {
    frozen_forward(dev, out, x, w, b, mean, var, B, C, HW, eps, 1);
}

void op_batchnorm_relu_frozen_backward(cd_device *dev, cd_mem dx, cd_mem dout, cd_mem y, cd_mem w, cd_mem var,
                                       size_t B, size_t C, size_t HW, float eps, int acc) {
    frozen_backward(dev, dx, dout, y, w, var, B, C, HW, eps, acc);
}

void op_batchnorm_add_relu_frozen_forward(cd_device *dev, cd_mem out, cd_mem x, cd_mem s, cd_mem w, cd_mem b,
                                          cd_mem mean, cd_mem var, size_t B, size_t C, size_t HW, float eps) {
    check_sizes(B, C, HW);
    size_t loc[3];
    if (plane_local(dev, "bn_frozen_add_relu_forward", HW, loc)[0] < BN_FLAT_BELOW) {
        CD_LAUNCH1(dev, "bn_frozen_add_relu_forward_flat", B * C * HW, KM(out), KM(x), KM(s), KM(w), KM(b),
                   KM(mean), KM(var), KI(C), KI(HW), KUL(B * C * HW), KF(eps));
        return;
    }
    CD_LAUNCH_WG(dev, "bn_frozen_add_relu_forward", 3, ((size_t[]){HW, C, B}),
                 plane_local(dev, "bn_frozen_add_relu_forward", HW, loc), KM(out), KM(x), KM(s), KM(w), KM(b),
                 KM(mean), KM(var), KI(B), KI(C), KI(HW), KF(eps));
}

void op_batchnorm_add_relu_frozen_backward(cd_device *dev, cd_mem dx, cd_mem ds, cd_mem dout, cd_mem y, cd_mem w,
                                           cd_mem var, size_t B, size_t C, size_t HW, float eps, int acc,
                                           int acc_s) {
    if (!cd_has(dx) || !cd_has(ds)) {   /* one input wants a gradient: the ops that give it alone */
        if (cd_has(dx)) frozen_backward(dev, dx, dout, y, w, var, B, C, HW, eps, acc);
        if (cd_has(ds)) op_relu_backward(dev, ds, dout, y, B * C * HW, acc_s);
        return;
    }
    check_sizes(B, C, HW);
    size_t loc[3];
    if (plane_local(dev, "bn_frozen_add_relu_backward", HW, loc)[0] < BN_FLAT_BELOW) {
        CD_LAUNCH1(dev, "bn_frozen_add_relu_backward_flat", B * C * HW, KM(dx), KM(ds), KM(dout), KM(y), KM(w),
                   KM(var), KI(C), KI(HW), KUL(B * C * HW), KF(eps), KI(acc), KI(acc_s));
        return;
    }
    CD_LAUNCH_WG(dev, "bn_frozen_add_relu_backward", 3, ((size_t[]){HW, C, B}),
                 plane_local(dev, "bn_frozen_add_relu_backward", HW, loc), KM(dx), KM(ds), KM(dout), KM(y), KM(w),
                 KM(var), KI(B), KI(C), KI(HW), KF(eps), KI(acc), KI(acc_s));
}

/* out (B, C, HW), then ReLU when relu, or relu(. + sc) when sc is given;
 * save_mean, save_rstd (C) written; running_mean, running_var (C) updated in
 * place (skipped when either is none). */
static void train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd, cd_mem running_mean,
                          cd_mem running_var, cd_mem x, cd_mem sc, cd_mem w, cd_mem b, size_t B, size_t C, size_t HW,
                          float eps, float momentum, int relu) {
    if (B * HW < 2)
        cd_fatal("batch norm (training): expected more than 1 value per channel, got batch %zu x %zu; "
                 "use a larger batch or input, or freeze the batch norm", B, HW);
    check_sizes(B, C, HW);
    int run = cd_has(running_mean) && cd_has(running_var);
    if (ops_row_kernels(dev)) {   /* CPUs: a work-item per channel, no work-group tree */
        CD_LAUNCH1(dev, "bn_cols_stats", C, KM(save_mean), KM(save_rstd), KM(run ? running_mean : save_mean),
                   KM(run ? running_var : save_rstd), KM(x), KI(B), KI(C), KI(HW), KF(eps), KF(momentum), KI(run));
    } else {
        size_t l = reduce_local(dev, "bn_train_stats");
        CD_LAUNCH_WG(dev, "bn_train_stats", 1, (size_t[]){C * l}, (size_t[]){l}, KM(save_mean), KM(save_rstd),
                     KM(run ? running_mean : save_mean), KM(run ? running_var : save_rstd), KM(x),
                     KLOCAL(l * sizeof(float)), KI(B), KI(C), KI(HW), KF(eps), KF(momentum), KI(run));
    }
    size_t loc[3];
    if (cd_has(sc))
        CD_LAUNCH_WG(dev, "bn_train_apply_add_relu", 3, ((size_t[]){HW, C, B}),
                     plane_local(dev, "bn_train_apply_add_relu", HW, loc), KM(out), KM(x), KM(sc), KM(save_mean),
                     KM(save_rstd), KM(w), KM(b), KI(B), KI(C), KI(HW));
    else
        CD_LAUNCH_WG(dev, "bn_train_apply", 3, ((size_t[]){HW, C, B}), plane_local(dev, "bn_train_apply", HW, loc),
                     KM(out), KM(x), KM(save_mean), KM(save_rstd), KM(w), KM(b), KI(B), KI(C), KI(HW), KI(relu));
}

/* dx (=/+=, may be none), dw += and db += (either may be none); with y (the
 * ReLU's output) dout is the gradient of that ReLU's output; ds (=/+= by
 * acc_s, may be none; only with y): the gradient of a shortcut added before
 * that ReLU */
static void train_backward(cd_device *dev, cd_mem dx, cd_mem ds, cd_mem dw, cd_mem db, cd_mem dout, cd_mem y,
                           cd_mem x, cd_mem save_mean, cd_mem save_rstd, cd_mem w, size_t B, size_t C, size_t HW,
                           int acc, int acc_s) {
    check_sizes(B, C, HW);
    int mask = cd_has(y);
    cd_mem sums = cd_alloc(dev, 2 * C, "batch norm gradient sums");
    if (ops_row_kernels(dev)) {
        CD_LAUNCH1(dev, "bn_cols_backward_reduce", C, KM(sums), KM(cd_has(dw) ? dw : sums),
                   KM(cd_has(db) ? db : sums), KM(dout), KM(mask ? y : dout), KM(x), KM(save_mean), KM(save_rstd),
                   KI(B), KI(C), KI(HW), KI(cd_has(dw)), KI(cd_has(db)), KI(mask));
    } else {
        size_t l = reduce_local(dev, "bn_train_backward_reduce");
        CD_LAUNCH_WG(dev, "bn_train_backward_reduce", 1, (size_t[]){C * l}, (size_t[]){l}, KM(sums),
                     KM(cd_has(dw) ? dw : sums), KM(cd_has(db) ? db : sums), KM(dout), KM(mask ? y : dout), KM(x),
                     KM(save_mean), KM(save_rstd), KLOCAL(l * sizeof(float)), KI(B), KI(C), KI(HW),
                     KI(cd_has(dw)), KI(cd_has(db)), KI(mask));
    }
    size_t loc[3];
    if (cd_has(dx) && cd_has(ds))
        CD_LAUNCH_WG(dev, "bn_train_backward_dx_tail", 3, ((size_t[]){HW, C, B}),
                     plane_local(dev, "bn_train_backward_dx_tail", HW, loc), KM(dx), KM(ds), KM(dout), KM(y), KM(x),
                     KM(sums), KM(save_mean), KM(save_rstd), KM(w), KI(B), KI(C), KI(HW), KI(acc), KI(acc_s));
    else if (cd_has(ds))
        op_relu_backward(dev, ds, dout, y, B * C * HW, acc_s);
    else if (cd_has(dx))
        CD_LAUNCH_WG(dev, "bn_train_backward_dx", 3, ((size_t[]){HW, C, B}),
                     plane_local(dev, "bn_train_backward_dx", HW, loc), KM(dx), KM(dout), KM(mask ? y : dout), KM(x),
                     KM(sums), KM(save_mean), KM(save_rstd), KM(w), KI(B), KI(C), KI(HW), KI(acc), KI(mask));
    cd_free(dev, sums);
}

void op_batchnorm_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem w, cd_mem b,
                                size_t B, size_t C, size_t HW, float eps, float momentum) {
    train_forward(dev, out, save_mean, save_rstd, running_mean, running_var, x, cd_none(), w, b, B, C, HW, eps,
                  momentum, 0);
}

void op_batchnorm_train_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem x,
                                 cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                 size_t B, size_t C, size_t HW, int acc) {
    train_backward(dev, dx, cd_none(), dw, db, dout, cd_none(), x, save_mean, save_rstd, w, B, C, HW, acc, 0);
}

void op_batchnorm_relu_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                     cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem w, cd_mem b,
                                     size_t B, size_t C, size_t HW, float eps, float momentum) {
    train_forward(dev, out, save_mean, save_rstd, running_mean, running_var, x, cd_none(), w, b, B, C, HW, eps,
                  momentum, 1);
}

void op_batchnorm_relu_train_backward(cd_device *dev, cd_mem dx, cd_mem dw, cd_mem db, cd_mem dout, cd_mem y,
                                      cd_mem x, cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                      size_t B, size_t C, size_t HW, int acc) {
    train_backward(dev, dx, cd_none(), dw, db, dout, y, x, save_mean, save_rstd, w, B, C, HW, acc, 0);
}

void op_batchnorm_add_relu_train_forward(cd_device *dev, cd_mem out, cd_mem save_mean, cd_mem save_rstd,
                                         cd_mem running_mean, cd_mem running_var, cd_mem x, cd_mem s, cd_mem w,
                                         cd_mem b, size_t B, size_t C, size_t HW, float eps, float momentum) {
    train_forward(dev, out, save_mean, save_rstd, running_mean, running_var, x, s, w, b, B, C, HW, eps, momentum,
                  1);
}

void op_batchnorm_add_relu_train_backward(cd_device *dev, cd_mem dx, cd_mem ds, cd_mem dw, cd_mem db, cd_mem dout,
                                          cd_mem y, cd_mem x, cd_mem save_mean, cd_mem save_rstd, cd_mem w,
                                          size_t B, size_t C, size_t HW, int acc, int acc_s) {
    train_backward(dev, dx, ds, dw, db, dout, y, x, save_mean, save_rstd, w, B, C, HW, acc, acc_s);
}
