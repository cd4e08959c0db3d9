/* Self-checks of conv2d, batch norm and max pool for `cldetr selftest`: one case of conv2d, batch norm
 * (frozen and trainable) and max pool, forward and backward, against the host
 * references, and im2col / col2im alone on an odd shape with offsets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/ops.h"
#include "cldetr/selftest.h"
#include "ops/op_ref.h"

static uint64_t rng_state = 0x13198A2E03707344ULL;
static double drand_pm1(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* n random values in [-1, 1), exactly representable in float. */
static double *rand_vec(size_t n) {
    double *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)drand_pm1();
    return v;
}

/* A device copy of v at offset `off` in its buffer (the offset tests cd_at). */
static cd_mem upload(cd_device *dev, const double *v, size_t n, size_t off) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)v[i];
    cd_mem m = cd_alloc(dev, n + off, "selftest tensor");
    m = cd_at(m, off);
    cd_write(dev, m, f, n);
    free(f);
    return m;
}

static void release(cd_device *dev, cd_mem m, size_t off) { m.off -= off; cd_free(dev, m); }

/* Compare device tensor with the reference; tol = atol + rtol*|ref|. */
static int compare(cd_device *dev, const char *what, cd_mem m, const double *ref, size_t n, double atol,
                   double rtol, char *msg, size_t msg_len) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    cd_read(dev, f, m, n);
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        if (!(fabs(f[i] - ref[i]) <= atol + rtol * fabs(ref[i]))) {
            snprintf(msg, msg_len, "%s[%zu] = %.8g, reference %.8g", what, i, f[i], ref[i]);
            bad = 1;
        }
    free(f);
    return bad ? -1 : 0;
}

#define OFF 13   /* every device tensor sits at this offset in its buffer */

static int selftest_im2col(cd_device *dev, char *msg, size_t n) {
    conv_shape s = {.B = 2, .C = 3, .H = 7, .W = 5, .K = 1, .R = 3, .S = 2, .stride = 2, .pad = 1, .dil = 2};
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s), P = Ho * Wo, CRS = s.C * s.R * s.S;
    size_t nx = s.B * s.C * s.H * s.W, ncol = CRS * s.B * P;
    double *x = rand_vec(nx), *col = malloc(ncol * sizeof *col), *dcol = rand_vec(ncol);
    double *dx = calloc(nx, sizeof *dx), *x0 = rand_vec(nx);
    /* reference im2col and its adjoint */
    for (size_t c = 0; c < s.C; c++)
        for (size_t r = 0; r < s.R; r++)
            for (size_t q = 0; q < s.S; q++)
                for (size_t b = 0; b < s.B; b++)
                    for (size_t p = 0; p < P; p++) {
                        long ih = (long)((p / Wo) * s.stride + r * s.dil) - (long)s.pad;
                        long iw = (long)((p % Wo) * s.stride + q * s.dil) - (long)s.pad;
                        size_t row = (c * s.R + r) * s.S + q, j = b * P + p;
                        int in = ih >= 0 && ih < (long)s.H && iw >= 0 && iw < (long)s.W;
                        size_t xi = in ? ((b * s.C + c) * s.H + (size_t)ih) * s.W + (size_t)iw : 0;
                        col[row * s.B * P + j] = in ? x[xi] : 0.0;
                        if (in) dx[xi] += dcol[row * s.B * P + j];
                    }
    for (size_t i = 0; i < nx; i++) dx[i] += x0[i];   /* col2im with acc = 1 onto x0 */
    double *colT = malloc(ncol * sizeof *colT);
    for (size_t row = 0; row < CRS; row++)
        for (size_t j = 0; j < s.B * P; j++) colT[j * CRS + row] = col[row * s.B * P + j];
    cd_mem dxm = upload(dev, x, nx, OFF), dcm = upload(dev, dcol, ncol, OFF);
    cd_mem dcolm = cd_at(cd_alloc(dev, ncol + OFF, "selftest col"), OFF), ddx = upload(dev, x0, nx, OFF);
    int rc = 0;
    op_conv2d_im2col(dev, dcolm, dxm, &s, 0);
    rc = compare(dev, "im2col", dcolm, col, ncol, 0, 0, msg, n);
    if (!rc) { op_conv2d_im2col(dev, dcolm, dxm, &s, 1); rc = compare(dev, "im2col transposed", dcolm, colT, ncol, 0, 0, msg, n); }
    if (!rc) { op_conv2d_col2im(dev, ddx, dcm, &s, 1); rc = compare(dev, "col2im", ddx, dx, nx, 1e-6, 1e-6, msg, n); }
    release(dev, dxm, OFF); release(dev, dcm, OFF); release(dev, dcolm, OFF); release(dev, ddx, OFF);
    free(x); free(col); free(colT); free(dcol); free(dx); free(x0);
    if (!rc) snprintf(msg, n, "2x3x7x5, 3x2 kernel, stride 2, pad 1, dilation 2, both layouts, col2im acc");
    return rc;
}

static int selftest_conv(cd_device *dev, char *msg, size_t n) {
    conv_shape s = {.B = 3, .C = 5, .H = 9, .W = 7, .K = 6, .R = 3, .S = 3, .stride = 2, .pad = 1, .dil = 1};
    size_t Ho = conv_out_h(&s), Wo = conv_out_w(&s);
    size_t nx = s.B * s.C * s.H * s.W, nw = s.K * s.C * s.R * s.S, no = s.B * s.K * Ho * Wo;
    double *x = rand_vec(nx), *w = rand_vec(nw), *b = rand_vec(s.K), *dout = rand_vec(no);
    double *dw0 = rand_vec(nw), *db0 = rand_vec(s.K);
    double *out = malloc(no * sizeof *out), *dx = malloc(nx * sizeof *dx), *dw = malloc(nw * sizeof *dw),
           *db = malloc(s.K * sizeof *db);
    conv2d_forward_ref(out, x, w, b, &s);
    conv2d_backward_ref(dx, dw, db, dout, x, w, &s);
    for (size_t i = 0; i < nw; i++) dw[i] += dw0[i];   /* parameter gradients add */
    for (size_t i = 0; i < s.K; i++) db[i] += db0[i];
    cd_mem mx = upload(dev, x, nx, OFF), mw = upload(dev, w, nw, OFF), mb = upload(dev, b, s.K, OFF);
    cd_mem mo = upload(dev, out, no, OFF), md = upload(dev, dout, no, OFF), mdx = upload(dev, x, nx, OFF);
    cd_mem mdw = upload(dev, dw0, nw, OFF), mdb = upload(dev, db0, s.K, OFF);
    op_conv2d_forward(dev, mo, mx, mw, mb, &s);
    op_conv2d_backward(dev, mdx, mdw, mdb, md, mx, mw, &s, 0);
    double tol = 1e-5 * sqrt((double)(s.C * s.R * s.S));
    int rc = compare(dev, "conv out", mo, out, no, tol, tol, msg, n);
    if (!rc) rc = compare(dev, "conv dx", mdx, dx, nx, tol, tol, msg, n);
    if (!rc) rc = compare(dev, "conv dw", mdw, dw, nw, 1e-5 * sqrt((double)(s.B * Ho * Wo)), 1e-5, msg, n);
    if (!rc) rc = compare(dev, "conv db", mdb, db, s.K, 1e-5 * sqrt((double)(s.B * Ho * Wo)), 1e-5, msg, n);
    release(dev, mx, OFF); release(dev, mw, OFF); release(dev, mb, OFF); release(dev, mo, OFF);
    release(dev, md, OFF); release(dev, mdx, OFF); release(dev, mdw, OFF); release(dev, mdb, OFF);
    free(x); free(w); free(b); free(dout); free(dw0); free(db0); free(out); free(dx); free(dw); free(db);
    if (!rc) snprintf(msg, n, "3x5x9x7 -> 6, 3x3 stride 2 pad 1, bias; out, dx, dw +=, db +=");
    return rc;
}

static int selftest_batchnorm(cd_device *dev, char *msg, size_t n) {
    size_t B = 3, C = 5, HW = 19, nx = B * C * HW;
    double eps = 1e-5, momentum = 0.1;
    double *x = rand_vec(nx), *w = rand_vec(C), *b = rand_vec(C), *dout = rand_vec(nx);
    double *rm = rand_vec(C), *rv = rand_vec(C), *dw0 = rand_vec(C), *db0 = rand_vec(C);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(3.0 + 2.0 * x[i]);   /* a mean far from 0 */
    for (size_t c = 0; c < C; c++) rv[c] = (float)(1.5 + rv[c]);
    double *out = malloc(nx * sizeof *out), *fout = malloc(nx * sizeof *fout), *fdx = malloc(nx * sizeof *fdx);
    double *mean = malloc(C * sizeof *mean), *rstd = malloc(C * sizeof *rstd), *dx = malloc(nx * sizeof *dx);
    double *dw = malloc(C * sizeof *dw), *db = malloc(C * sizeof *db), *rm1 = malloc(C * sizeof *rm1),
           *rv1 = malloc(C * sizeof *rv1);
    for (size_t c = 0; c < C; c++) { rm1[c] = rm[c]; rv1[c] = rv[c]; }
    batchnorm_frozen_forward_ref(fout, x, w, b, rm, rv, B, C, HW, eps);
    batchnorm_frozen_backward_ref(fdx, dout, w, rv, B, C, HW, eps);
    batchnorm_train_forward_ref(out, mean, rstd, rm1, rv1, x, w, b, B, C, HW, eps, momentum);
    batchnorm_train_backward_ref(dx, dw, db, dout, x, mean, rstd, w, B, C, HW);
    for (size_t c = 0; c < C; c++) { dw[c] += dw0[c]; db[c] += db0[c]; }
    cd_mem mx = upload(dev, x, nx, OFF), mw = upload(dev, w, C, OFF), mb = upload(dev, b, C, OFF);
    cd_mem mrm = upload(dev, rm, C, OFF), mrv = upload(dev, rv, C, OFF), md = upload(dev, dout, nx, OFF);
    cd_mem mo = upload(dev, x, nx, OFF), mdx = upload(dev, x, nx, OFF), mmean = upload(dev, rm, C, OFF),
           mrstd = upload(dev, rm, C, OFF), mdw = upload(dev, dw0, C, OFF), mdb = upload(dev, db0, C, OFF);
    op_batchnorm_frozen_forward(dev, mo, mx, mw, mb, mrm, mrv, B, C, HW, (float)eps);
    int rc = compare(dev, "frozen out", mo, fout, nx, 1e-5, 1e-5, msg, n);
    op_batchnorm_frozen_backward(dev, mdx, md, mw, mrv, B, C, HW, (float)eps, 0);
    if (!rc) rc = compare(dev, "frozen dx", mdx, fdx, nx, 1e-6, 1e-5, msg, n);
    op_batchnorm_train_forward(dev, mo, mmean, mrstd, mrm, mrv, mx, mw, mb, B, C, HW, (float)eps, (float)momentum);
    op_batchnorm_train_backward(dev, mdx, mdw, mdb, md, mx, mmean, mrstd, mw, B, C, HW, 0);
    if (!rc) rc = compare(dev, "train out", mo, out, nx, 1e-5, 1e-4, msg, n);
    if (!rc) rc = compare(dev, "train mean", mmean, mean, C, 1e-6, 1e-5, msg, n);
    if (!rc) rc = compare(dev, "train rstd", mrstd, rstd, C, 1e-6, 1e-4, msg, n);
    if (!rc) rc = compare(dev, "running mean", mrm, rm1, C, 1e-6, 1e-5, msg, n);
    if (!rc) rc = compare(dev, "running var", mrv, rv1, C, 1e-6, 1e-4, msg, n);
    if (!rc) rc = compare(dev, "train dx", mdx, dx, nx, 1e-5, 1e-4, msg, n);
    if (!rc) rc = compare(dev, "train dw", mdw, dw, C, 1e-5, 1e-4, msg, n);
    if (!rc) rc = compare(dev, "train db", mdb, db, C, 1e-5, 1e-4, msg, n);
    cd_mem all[] = {mx, mw, mb, mrm, mrv, md, mo, mdx, mmean, mrstd, mdw, mdb};
    for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) release(dev, all[i], OFF);
    double *h[] = {x, w, b, dout, rm, rv, dw0, db0, out, fout, fdx, mean, rstd, dx, dw, db, rm1, rv1};
    for (size_t i = 0; i < CD_ARRAY_LEN(h); i++) free(h[i]);
    if (!rc) snprintf(msg, n, "3x5x19: frozen fwd/bwd; train fwd, stats, running update, dx, dw +=, db +=");
    return rc;
}

static int selftest_maxpool(cd_device *dev, char *msg, size_t n) {
    size_t B = 2, C = 3, H = 9, W = 6, k = 3, s = 2, p = 1;
    size_t Ho = pool_out(H, k, s, p), Wo = pool_out(W, k, s, p), nx = B * C * H * W, no = B * C * Ho * Wo;
    double *x = rand_vec(nx), *dout = rand_vec(no);
    for (size_t i = 0; i < nx; i += 4) x[i] = x[i + 1 < nx ? i + 1 : i];   /* ties */
    double *out = malloc(no * sizeof *out), *arg = malloc(no * sizeof *arg), *dx = malloc(nx * sizeof *dx);
    maxpool_forward_ref(out, arg, x, B, C, H, W, k, s, p);
    maxpool_backward_ref(dx, dout, arg, B, C, H, W, k, s, p);
    cd_mem mx = upload(dev, x, nx, OFF), md = upload(dev, dout, no, OFF), mo = upload(dev, dout, no, OFF),
           ma = upload(dev, dout, no, OFF), mdx = upload(dev, x, nx, OFF);
    op_maxpool_forward(dev, mo, ma, mx, B, C, H, W, k, s, p);
    op_maxpool_backward(dev, mdx, md, ma, B, C, H, W, k, s, p, 0);
    int rc = compare(dev, "maxpool out", mo, out, no, 0, 0, msg, n);
    if (!rc) rc = compare(dev, "maxpool argmax", ma, arg, no, 0, 0, msg, n);
    if (!rc) rc = compare(dev, "maxpool dx", mdx, dx, nx, 1e-6, 1e-6, msg, n);
    release(dev, mx, OFF); release(dev, md, OFF); release(dev, mo, OFF); release(dev, ma, OFF); release(dev, mdx, OFF);
    free(x); free(dout); free(out); free(arg); free(dx);
    if (!rc) snprintf(msg, n, "2x3x9x6, 3x3/2 pad 1, with ties; out, argmax, dx");
    return rc;
}

const cd_selftest cd_selftests_conv[] = {
    {"im2col/col2im", selftest_im2col},
    {"conv2d", selftest_conv},
    {"batchnorm", selftest_batchnorm},
    {"maxpool", selftest_maxpool},
    {NULL, NULL},
};
