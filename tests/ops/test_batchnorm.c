/* Batch norm on the device against the host reference: frozen forward and
 * backward; trainable forward (output, saved mean and rstd, the running-stat
 * update with momentum 0.1 and unbiased variance) and backward (dx with acc 0
 * and 1, dw +=, db +=), at offsets, on shapes from 1x1 planes to planes longer
 * than a work-group, with a mean far from zero; and the references' backward
 * against central finite differences in double. */
#include "op_test.h"
#include "ops/reduce_util.h"

#define EPS 1e-5
#define MOMENTUM 0.1

static void check_frozen(size_t B, size_t C, size_t HW, int acc) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, -2, 2), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1), *mean = ot_randv(C, -1, 1),
           *var = ot_randv(C, 0.01, 3), *dout = ot_randv(n, -1, 1), *dx0 = ot_randv(n, -1, 1);
    double *out = op_zeros(n), *dx = op_zeros(n);
    batchnorm_frozen_forward_ref(out, x, w, b, mean, var, B, C, HW, EPS);
    batchnorm_frozen_backward_ref(dx, dout, w, var, B, C, HW, EPS);
    for (size_t i = 0; i < n; i++) dx[i] += acc ? dx0[i] : 0;
    cd_mem mx = op_upload(ot_dev, x, n, 3), mw = op_upload(ot_dev, w, C, 1), mb = op_upload(ot_dev, b, C, 2), mm = op_upload(ot_dev, mean, C, 5), mv = op_upload(ot_dev, var, C, 7),
           mo = op_upload(ot_dev, NULL, n, 9), md = op_upload(ot_dev, dout, n, 4), mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 6);
    op_batchnorm_frozen_forward(ot_dev, mo, mx, mw, mb, mm, mv, B, C, HW, (float)EPS);
    op_batchnorm_frozen_backward(ot_dev, mdx, md, mw, mv, B, C, HW, (float)EPS, acc);
    double *go = op_download(ot_dev, mo, n), *gdx = op_download(ot_dev, mdx, n);
    char t[160];
    /* a handful of float roundings of values up to ~20 */
    snprintf(t, sizeof t, "frozen B%zu C%zu HW%zu acc%d: out", B, C, HW, acc);
    ot_close(t, out, go, n, 1e-5, 1e-5);
    ot_close("  ... dx", dx, gdx, n, 1e-5, 1e-5);
    t_ok(op_guards_intact(ot_dev, mo, n) && op_guards_intact(ot_dev, mdx, n), "  ... nothing written outside the tensors");
    cd_mem ms[] = {mx, mw, mb, mm, mv, mo, md, mdx};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, w, b, mean, var, dout, dx0, out, dx, go, gdx};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

static void check_train(size_t B, size_t C, size_t HW, double center, int acc) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, center - 1.5, center + 2.5), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1);
    double *rm = ot_randv(C, -1, 1), *rv = ot_randv(C, 0.5, 2), *dout = ot_randv(n, -1, 1);
    double *dx0 = ot_randv(n, -1, 1), *dw0 = ot_randv(C, -1, 1), *db0 = ot_randv(C, -1, 1);
    double *out = op_zeros(n), *mean = op_zeros(C), *rstd = op_zeros(C), *dx = op_zeros(n), *dw = op_zeros(C), *db = op_zeros(C);
    double *rm1 = op_zeros(C), *rv1 = op_zeros(C);
    memcpy(rm1, rm, C * sizeof *rm);
    memcpy(rv1, rv, C * sizeof *rv);
    batchnorm_train_forward_ref(out, mean, rstd, rm1, rv1, x, w, b, B, C, HW, EPS, MOMENTUM);
    batchnorm_train_backward_ref(dx, dw, db, dout, x, mean, rstd, w, B, C, HW);
    for (size_t i = 0; i < n; i++) dx[i] += acc ? dx0[i] : 0;
    for (size_t c = 0; c < C; c++) { dw[c] += dw0[c]; db[c] += db0[c]; }

    cd_mem mx = op_upload(ot_dev, x, n, 3), mw = op_upload(ot_dev, w, C, 1), mb = op_upload(ot_dev, b, C, 2), mrm = op_upload(ot_dev, rm, C, 5), mrv = op_upload(ot_dev, rv, C, 7),
           mo = op_upload(ot_dev, NULL, n, 9), mm = op_upload(ot_dev, NULL, C, 4), mr = op_upload(ot_dev, NULL, C, 8), md = op_upload(ot_dev, dout, n, 6),
           mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 10), mdw = op_upload(ot_dev, dw0, C, 12), mdb = op_upload(ot_dev, db0, C, 14);
    op_batchnorm_train_forward(ot_dev, mo, mm, mr, mrm, mrv, mx, mw, mb, B, C, HW, (float)EPS, (float)MOMENTUM);
    op_batchnorm_train_backward(ot_dev, mdx, mdw, mdb, md, mx, mm, mr, mw, B, C, HW, acc);
    double *go = op_download(ot_dev, mo, n), *gm = op_download(ot_dev, mm, C), *gr = op_download(ot_dev, mr, C), *grm = op_download(ot_dev, mrm, C), *grv = op_download(ot_dev, mrv, C);
    double *gdx = op_download(ot_dev, mdx, n), *gdw = op_download(ot_dev, mdw, C), *gdb = op_download(ot_dev, mdb, C);

    /* Per-element values (out, dx, statistics) carry a few float roundings: 2e-6
     * absolute, 1e-5 relative is ~10x what PoCL shows. dw and db are float sums of
     * N = B*HW terms of size ~1: rounding grows like sqrt(N) * 2^-24. */
    double N = (double)(B * HW), tol_sum = 2e-6 * sqrt(N);
    char t[200];
    snprintf(t, sizeof t, "train B%zu C%zu HW%zu mean~%g acc%d: out", B, C, HW, center, acc);
    ot_close(t, out, go, n, 2e-6, 1e-5);
    ot_close("  ... saved mean", mean, gm, C, 2e-6, 1e-5);
    ot_close("  ... saved rstd", rstd, gr, C, 2e-6, 1e-5);
    ot_close("  ... running mean (momentum 0.1)", rm1, grm, C, 2e-6, 1e-5);
    ot_close("  ... running var (unbiased)", rv1, grv, C, 2e-6, 1e-5);
    ot_close("  ... dx", dx, gdx, n, 2e-6, 1e-5);
    ot_close("  ... dw +=", dw, gdw, C, tol_sum, tol_sum);
    ot_close("  ... db +=", db, gdb, C, tol_sum, tol_sum);
    t_ok(op_guards_intact(ot_dev, mo, n) && op_guards_intact(ot_dev, mm, C) && op_guards_intact(ot_dev, mr, C) && op_guards_intact(ot_dev, mdx, n) &&
         op_guards_intact(ot_dev, mdw, C) && op_guards_intact(ot_dev, mdb, C) && op_guards_intact(ot_dev, mrm, C) && op_guards_intact(ot_dev, mrv, C),
         "  ... nothing written outside the tensors");

    /* dw, db and dx given as none: nothing else changes */
    op_batchnorm_train_backward(ot_dev, cd_none(), cd_none(), cd_none(), md, mx, mm, mr, mw, B, C, HW, 0);
    double *gdw2 = op_download(ot_dev, mdw, C);
    ot_close("  ... backward with every output none leaves dw alone", gdw, gdw2, C, 0, 0);

    cd_mem ms[] = {mx, mw, mb, mrm, mrv, mo, mm, mr, md, mdx, mdw, mdb};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    double *hs[] = {x, w, b, rm, rv, dout, dx0, dw0, db0, out, mean, rstd, dx, dw, db, rm1, rv1,
                    go, gm, gr, grm, grv, gdx, gdw, gdb, gdw2};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The fused frozen batch norm + ReLU (op_batchnorm_relu_frozen_*) against the
 * two ops one after the other (op_batchnorm_frozen_* and op_relu_*): out and
 * dx the same bits, nothing written outside them. Channel 0 gives exactly 0
 * (a zero gradient there) and channel 1 a negative scale. */
static void check_frozen_relu(size_t B, size_t C, size_t HW, int acc) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, -1.5, 2.5), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1), *dout = ot_randv(n, -1, 1);
    double *mean = ot_randv(C, -0.5, 0.5), *var = ot_randv(C, 0.2, 2.0), *dx0 = ot_randv(n, -1, 1);
    w[0] = 0.0;
    b[0] = 0.0;
    mean[0] = 0.0;
    w[1] = -fabs(w[1]) - 0.1;
    double *got[2][2];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem mx = op_upload(ot_dev, x, n, 3), mw = op_upload(ot_dev, w, C, 1), mb = op_upload(ot_dev, b, C, 2);
        cd_mem mm = op_upload(ot_dev, mean, C, 4), mv = op_upload(ot_dev, var, C, 5);
        cd_mem mo = op_upload(ot_dev, NULL, n, 9), md = op_upload(ot_dev, dout, n, 6);
        cd_mem mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 10);
        if (fused) {
            op_batchnorm_relu_frozen_forward(ot_dev, mo, mx, mw, mb, mm, mv, B, C, HW, (float)EPS);
            op_batchnorm_relu_frozen_backward(ot_dev, mdx, md, mo, mw, mv, B, C, HW, (float)EPS, acc);
        } else {
            cd_mem mbn = op_upload(ot_dev, NULL, n, 0), mdbn = op_upload(ot_dev, NULL, n, 0);
            op_batchnorm_frozen_forward(ot_dev, mbn, mx, mw, mb, mm, mv, B, C, HW, (float)EPS);
            op_relu_forward(ot_dev, mo, mbn, n);
            op_relu_backward(ot_dev, mdbn, md, mo, n, 0);
            op_batchnorm_frozen_backward(ot_dev, mdx, mdbn, mw, mv, B, C, HW, (float)EPS, acc);
            cd_free(ot_dev, mbn);
            cd_free(ot_dev, mdbn);
        }
        got[fused][0] = op_download(ot_dev, mo, n);
        got[fused][1] = op_download(ot_dev, mdx, n);
        if (fused)
            t_ok(op_guards_intact(ot_dev, mo, n) && op_guards_intact(ot_dev, mdx, n),
                 "frozen+relu B%zu C%zu HW%zu: nothing written outside the tensors", B, C, HW);
        cd_mem ms[] = {mx, mw, mb, mm, mv, mo, md, mdx};
        for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    }
    size_t zeros = 0, negative = 0;
    for (size_t i = 0; i < n; i++) {
        zeros += got[1][0][i] == 0.0;
        negative += got[1][0][i] < 0.0;
    }
    t_ok(zeros > n / 10 && negative == 0, "frozen+relu B%zu C%zu HW%zu: the ReLU cut %zu of %zu outputs to 0, "
         "none below", B, C, HW, zeros, n);
    static const char *what[] = {"out", "dx"};
    for (int k = 0; k < 2; k++) {
        char t[200];
        snprintf(t, sizeof t, "frozen+relu B%zu C%zu HW%zu acc%d: %s, fused = batch norm then ReLU, bit for bit", B,
                 C, HW, acc, what[k]);
        ot_close(t, got[0][k], got[1][k], n, 0, 0);
        free(got[0][k]);
        free(got[1][k]);
    }
    double *hs[] = {x, w, b, dout, mean, var, dx0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* A residual block's tail (op_batchnorm_add_relu_frozen_*) against the frozen
 * batch norm then op_add_relu_*: out, dx and ds the same bits; want selects
 * the gradients asked for (1 dx, 2 ds, 3 both), acc both accumulate. */
static void check_frozen_add_relu(size_t B, size_t C, size_t HW, int acc, int want) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, -1.5, 2.5), *sc = ot_randv(n, -1, 1), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1);
    double *mean = ot_randv(C, -0.5, 0.5), *var = ot_randv(C, 0.2, 2.0), *dout = ot_randv(n, -1, 1);
    double *dx0 = ot_randv(n, -1, 1), *ds0 = ot_randv(n, -1, 1);
    w[0] = -fabs(w[0]) - 0.1;
    double *got[2][3];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem mx = op_upload(ot_dev, x, n, 3), ms = op_upload(ot_dev, sc, n, 7), mw = op_upload(ot_dev, w, C, 1);
        cd_mem mb = op_upload(ot_dev, b, C, 2), mm = op_upload(ot_dev, mean, C, 4), mv = op_upload(ot_dev, var, C, 5);
        cd_mem mo = op_upload(ot_dev, NULL, n, 9), md = op_upload(ot_dev, dout, n, 6);
        cd_mem mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 10), mds = op_upload(ot_dev, acc ? ds0 : NULL, n, 11);
        cd_mem gx = want & 1 ? mdx : cd_none(), gs = want & 2 ? mds : cd_none();
        if (fused) {
            op_batchnorm_add_relu_frozen_forward(ot_dev, mo, mx, ms, mw, mb, mm, mv, B, C, HW, (float)EPS);
            op_batchnorm_add_relu_frozen_backward(ot_dev, gx, gs, md, mo, mw, mv, B, C, HW, (float)EPS, acc, acc);
        } else {
            cd_mem mbn = op_upload(ot_dev, NULL, n, 0), mdbn = op_upload(ot_dev, NULL, n, 0);
            op_batchnorm_frozen_forward(ot_dev, mbn, mx, mw, mb, mm, mv, B, C, HW, (float)EPS);
            op_add_relu_forward(ot_dev, mo, mbn, ms, n);
            op_add_relu_backward(ot_dev, want & 1 ? mdbn : cd_none(), gs, md, mo, n, 0, acc);
            if (want & 1) op_batchnorm_frozen_backward(ot_dev, mdx, mdbn, mw, mv, B, C, HW, (float)EPS, acc);
            cd_free(ot_dev, mbn);
            cd_free(ot_dev, mdbn);
        }
        got[fused][0] = op_download(ot_dev, mo, n);
        got[fused][1] = op_download(ot_dev, mdx, n);
        got[fused][2] = op_download(ot_dev, mds, n);
        if (fused)
            t_ok(op_guards_intact(ot_dev, mo, n) && op_guards_intact(ot_dev, mdx, n) &&
                 op_guards_intact(ot_dev, mds, n),
                 "frozen+add+relu B%zu C%zu HW%zu want %d: nothing written outside the tensors", B, C, HW, want);
        cd_mem all[] = {mx, ms, mw, mb, mm, mv, mo, md, mdx, mds};
        for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) cd_free(ot_dev, all[i]);
    }
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += got[1][0][i] == 0.0;
    t_ok(zeros > n / 10 && zeros < n - n / 10, "frozen+add+relu B%zu C%zu HW%zu: the ReLU cut %zu of %zu outputs", B, C,
         HW, zeros, n);
    static const char *what[] = {"out", "dx", "ds"};
    for (int k = 0; k < 3; k++) {
        char t[200];
        if (k > 0 && !(want & k)) {   /* not asked for: not written (NaN on both sides) */
            free(got[0][k]);
            free(got[1][k]);
            continue;
        }
        snprintf(t, sizeof t, "frozen+add+relu B%zu C%zu HW%zu acc%d want %d: %s, fused = batch norm then add+ReLU, "
                 "bit for bit", B, C, HW, acc, want, what[k]);
        ot_close(t, got[0][k], got[1][k], n, 0, 0);
        free(got[0][k]);
        free(got[1][k]);
    }
    double *hs[] = {x, sc, w, b, mean, var, dout, dx0, ds0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* A residual block's tail after a training batch norm
 * (op_batchnorm_add_relu_train_*) against op_batchnorm_train_* then
 * op_add_relu_*: out, the saved statistics, dx, ds, dw, db the same bits;
 * want selects dx (1) and ds (2). */
static void check_train_add_relu(size_t B, size_t C, size_t HW, int acc, int want) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, -1.5, 2.5), *sc = ot_randv(n, -1, 1), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1);
    double *dout = ot_randv(n, -1, 1), *dx0 = ot_randv(n, -1, 1), *ds0 = ot_randv(n, -1, 1);
    double *dw0 = ot_randv(C, -1, 1), *db0 = ot_randv(C, -1, 1);
    double *got[2][7];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem mx = op_upload(ot_dev, x, n, 3), ms = op_upload(ot_dev, sc, n, 7), mw = op_upload(ot_dev, w, C, 1);
        cd_mem mb = op_upload(ot_dev, b, C, 2), mo = op_upload(ot_dev, NULL, n, 9);
        cd_mem mm = op_upload(ot_dev, NULL, C, 4), mr = op_upload(ot_dev, NULL, C, 8);
        cd_mem md = op_upload(ot_dev, dout, n, 6), mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 10);
        cd_mem mds = op_upload(ot_dev, acc ? ds0 : NULL, n, 11);
        cd_mem mdw = op_upload(ot_dev, dw0, C, 12), mdb = op_upload(ot_dev, db0, C, 14);
        cd_mem gx = want & 1 ? mdx : cd_none(), gs = want & 2 ? mds : cd_none();
        if (fused) {
            op_batchnorm_add_relu_train_forward(ot_dev, mo, mm, mr, cd_none(), cd_none(), mx, ms, mw, mb, B, C, HW,
                                                (float)EPS, (float)MOMENTUM);
            op_batchnorm_add_relu_train_backward(ot_dev, gx, gs, mdw, mdb, md, mo, mx, mm, mr, mw, B, C, HW, acc,
                                                 acc);
        } else {
            cd_mem mbn = op_upload(ot_dev, NULL, n, 0), mdbn = op_upload(ot_dev, NULL, n, 0);
            op_batchnorm_train_forward(ot_dev, mbn, mm, mr, cd_none(), cd_none(), mx, mw, mb, B, C, HW, (float)EPS,
                                       (float)MOMENTUM);
            op_add_relu_forward(ot_dev, mo, mbn, ms, n);
            op_add_relu_backward(ot_dev, mdbn, gs, md, mo, n, 0, acc);
            op_batchnorm_train_backward(ot_dev, gx, mdw, mdb, mdbn, mx, mm, mr, mw, B, C, HW, acc);
            cd_free(ot_dev, mbn);
            cd_free(ot_dev, mdbn);
        }
        cd_mem outs[] = {mo, mm, mr, mdx, mds, mdw, mdb};
        size_t ns[] = {n, C, C, n, n, C, C};
        for (int k = 0; k < 7; k++) got[fused][k] = op_download(ot_dev, outs[k], ns[k]);
        if (fused) {
            int intact = 1;
            for (int k = 0; k < 7; k++) intact &= op_guards_intact(ot_dev, outs[k], ns[k]);
            t_ok(intact, "train+add+relu B%zu C%zu HW%zu want %d: nothing written outside the tensors", B, C, HW,
                 want);
        }
        cd_mem all[] = {mx, ms, mw, mb, mo, mm, mr, md, mdx, mds, mdw, mdb};
        for (size_t i = 0; i < CD_ARRAY_LEN(all); i++) cd_free(ot_dev, all[i]);
    }
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += got[1][0][i] == 0.0;
    t_ok(zeros > n / 10 && zeros < n - n / 10, "train+add+relu B%zu C%zu HW%zu: the ReLU cut %zu of %zu outputs", B,
         C, HW, zeros, n);
    static const char *what[] = {"out", "saved mean", "saved rstd", "dx", "ds", "dw +=", "db +="};
    for (int k = 0; k < 7; k++) {
        int skip = (k == 3 && !(want & 1)) || (k == 4 && !(want & 2));   /* not asked for: NaN on both sides */
        if (!skip) {
            char t[200];
            snprintf(t, sizeof t, "train+add+relu B%zu C%zu HW%zu acc%d want %d: %s, fused = batch norm then "
                     "add+ReLU, bit for bit", B, C, HW, acc, want, what[k]);
            ot_close(t, got[0][k], got[1][k], k == 0 || k == 3 || k == 4 ? n : C, 0, 0);
        }
        free(got[0][k]);
        free(got[1][k]);
    }
    double *hs[] = {x, sc, w, b, dout, dx0, ds0, dw0, db0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The fused batch norm + ReLU (op_batchnorm_relu_train_*) against the two ops
 * one after the other (op_batchnorm_train_* and op_relu_*) on the same
 * inputs: out, saved statistics, dx, dw, db the same bits. Half the outputs
 * are below 0, some exactly 0 (a zero gradient there: ReLU passes y > 0 only). */
static void check_train_relu(size_t B, size_t C, size_t HW, int acc) {
    size_t n = B * C * HW;
    double *x = ot_randv(n, -1.5, 2.5), *w = ot_randv(C, -1, 1), *b = ot_randv(C, -1, 1), *dout = ot_randv(n, -1, 1);
    double *dx0 = ot_randv(n, -1, 1), *dw0 = ot_randv(C, -1, 1), *db0 = ot_randv(C, -1, 1);
    b[0] = 0.0;
    w[0] = 0.0;   /* channel 0: out exactly 0 everywhere */
    double *got[2][6];
    for (int fused = 0; fused < 2; fused++) {
        cd_mem mx = op_upload(ot_dev, x, n, 3), mw = op_upload(ot_dev, w, C, 1), mb = op_upload(ot_dev, b, C, 2);
        cd_mem mo = op_upload(ot_dev, NULL, n, 9), mm = op_upload(ot_dev, NULL, C, 4), mr = op_upload(ot_dev, NULL, C, 8);
        cd_mem md = op_upload(ot_dev, dout, n, 6), mdx = op_upload(ot_dev, acc ? dx0 : NULL, n, 10);
        cd_mem mdw = op_upload(ot_dev, dw0, C, 12), mdb = op_upload(ot_dev, db0, C, 14);
        if (fused) {
            op_batchnorm_relu_train_forward(ot_dev, mo, mm, mr, cd_none(), cd_none(), mx, mw, mb, B, C, HW,
                                            (float)EPS, (float)MOMENTUM);
            op_batchnorm_relu_train_backward(ot_dev, mdx, mdw, mdb, md, mo, mx, mm, mr, mw, B, C, HW, acc);
        } else {
            cd_mem mbn = op_upload(ot_dev, NULL, n, 0), mdbn = op_upload(ot_dev, NULL, n, 0);
            op_batchnorm_train_forward(ot_dev, mbn, mm, mr, cd_none(), cd_none(), mx, mw, mb, B, C, HW, (float)EPS,
                                       (float)MOMENTUM);
            op_relu_forward(ot_dev, mo, mbn, n);
            op_relu_backward(ot_dev, mdbn, md, mo, n, 0);
            op_batchnorm_train_backward(ot_dev, mdx, mdw, mdb, mdbn, mx, mm, mr, mw, B, C, HW, acc);
            cd_free(ot_dev, mbn);
            cd_free(ot_dev, mdbn);
        }
        got[fused][0] = op_download(ot_dev, mo, n);
        got[fused][1] = op_download(ot_dev, mm, C);
        got[fused][2] = op_download(ot_dev, mr, C);
        got[fused][3] = op_download(ot_dev, mdx, n);
        got[fused][4] = op_download(ot_dev, mdw, C);
        got[fused][5] = op_download(ot_dev, mdb, C);
        if (fused)
            t_ok(op_guards_intact(ot_dev, mo, n) && op_guards_intact(ot_dev, mdx, n) &&
                 op_guards_intact(ot_dev, mdw, C) && op_guards_intact(ot_dev, mdb, C),
                 "train+relu B%zu C%zu HW%zu: nothing written outside the tensors", B, C, HW);
        cd_mem ms[] = {mx, mw, mb, mo, mm, mr, md, mdx, mdw, mdb};
        for (size_t i = 0; i < CD_ARRAY_LEN(ms); i++) cd_free(ot_dev, ms[i]);
    }
    static const char *what[] = {"out", "saved mean", "saved rstd", "dx", "dw +=", "db +="};
    for (int k = 0; k < 6; k++) {
        char t[200];
        snprintf(t, sizeof t, "train+relu B%zu C%zu HW%zu acc%d: %s, fused = batch norm then ReLU, bit for bit", B,
                 C, HW, acc, what[k]);
        ot_close(t, got[0][k], got[1][k], k == 0 || k == 3 ? n : C, 0, 0);
        free(got[0][k]);
        free(got[1][k]);
    }
    double *hs[] = {x, w, b, dout, dx0, dw0, db0};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* ---- finite differences of the references ------------------------------- */

typedef struct { double *x, *w, *b, *mean, *var, *G, *out; size_t B, C, HW; int train; } bn_ctx;
static double bn_loss(void *v) {
    bn_ctx *c = v;
    if (c->train)
        batchnorm_train_forward_ref(c->out, NULL, NULL, NULL, NULL, c->x, c->w, c->b, c->B, c->C, c->HW, EPS, 0);
    else
        batchnorm_frozen_forward_ref(c->out, c->x, c->w, c->b, c->mean, c->var, c->B, c->C, c->HW, EPS);
    return op_dot(c->G, c->out, c->B * c->C * c->HW);
}

static void check_fd(size_t B, size_t C, size_t HW) {
    size_t n = B * C * HW;
    bn_ctx c = {ot_randv(n, -2, 2), ot_randv(C, -1, 1), ot_randv(C, -1, 1), ot_randv(C, -1, 1), ot_randv(C, 0.1, 2), ot_randv(n, -1, 1),
                op_zeros(n), B, C, HW, 1};
    double *mean = op_zeros(C), *rstd = op_zeros(C), *dx = op_zeros(n), *dw = op_zeros(C), *db = op_zeros(C);
    double *fx = op_zeros(n), *fw = op_zeros(C), *fb = op_zeros(C);
    batchnorm_train_forward_ref(c.out, mean, rstd, NULL, NULL, c.x, c.w, c.b, B, C, HW, EPS, MOMENTUM);
    batchnorm_train_backward_ref(dx, dw, db, c.G, c.x, mean, rstd, c.w, B, C, HW);
    /* L is smooth: the central difference's error is O(h^2 L''') ~ 1e-10 at h = 1e-5,
     * its rounding ~1e-16 |L| / h ~ 1e-10 */
    op_fd_grad(fx, c.x, n, 1e-5, bn_loss, &c);
    op_fd_grad(fw, c.w, C, 1e-5, bn_loss, &c);
    op_fd_grad(fb, c.b, C, 1e-5, bn_loss, &c);
    char t[160];
    snprintf(t, sizeof t, "train reference backward vs finite differences B%zu C%zu HW%zu: dx", B, C, HW);
    ot_close(t, fx, dx, n, 1e-7, 1e-6);
    ot_close("  ... dw", fw, dw, C, 1e-7, 1e-6);
    ot_close("  ... db", fb, db, C, 1e-7, 1e-6);
    c.train = 0;
    batchnorm_frozen_backward_ref(dx, c.G, c.w, c.var, B, C, HW, EPS);
    op_fd_grad(fx, c.x, n, 1e-5, bn_loss, &c);
    ot_close("frozen reference backward vs finite differences: dx", fx, dx, n, 1e-7, 1e-6);
    double *hs[] = {c.x, c.w, c.b, c.mean, c.var, c.G, c.out, mean, rstd, dx, dw, db, fx, fw, fb};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

/* The fused ops on the device against finite differences of the loss
 * L = sum G * f(x, s), f = relu(bn(x) + s) (tail = 1) or relu(bn(x)) (tail =
 * 0, s unused), in double on the host. Every pre-activation is kept at least
 * 0.05 from the ReLU's kink (through s, which the statistics do not see, or
 * through x for the frozen norm alone), so the difference quotient does not
 * straddle it. */
typedef struct { bn_ctx bn; double *s; int tail; } tail_ctx;

static double tail_loss(void *v) {
    tail_ctx *c = v;
    size_t n = c->bn.B * c->bn.C * c->bn.HW;
    bn_loss(&c->bn);
    for (size_t i = 0; i < n; i++) {
        double p = c->bn.out[i] + (c->tail ? c->s[i] : 0.0);
        c->bn.out[i] = p > 0 ? p : 0.0;
    }
    return op_dot(c->bn.G, c->bn.out, n);
}

static void check_tail_fd(size_t B, size_t C, size_t HW, int train, int tail) {
    size_t n = B * C * HW;
    tail_ctx c = {{ot_randv(n, -2, 2), ot_randv(C, -1, 1), ot_randv(C, -1, 1), ot_randv(C, -1, 1),
                   ot_randv(C, 0.1, 2), ot_randv(n, -1, 1), op_zeros(n), B, C, HW, train},
                  ot_randv(n, -1, 1), tail};
    if (train && !tail) cd_fatal("check_tail_fd: a training norm is checked with its shortcut");
    double *pre = op_zeros(n);   /* move the pre-activations within 0.05 of 0 by 0.2 */
    if (train) batchnorm_train_forward_ref(pre, NULL, NULL, NULL, NULL, c.bn.x, c.bn.w, c.bn.b, B, C, HW, EPS, 0);
    else batchnorm_frozen_forward_ref(pre, c.bn.x, c.bn.w, c.bn.b, c.bn.mean, c.bn.var, B, C, HW, EPS);
    for (size_t i = 0; i < n; i++) {
        size_t ch = i / HW % C;
        if (fabs(pre[i] + (tail ? c.s[i] : 0.0)) >= 0.05) continue;
        if (tail) c.s[i] += 0.2;
        else c.bn.x[i] += 0.2 * sqrt(c.bn.var[ch] + EPS) / (fabs(c.bn.w[ch]) + 1e-3);   /* x * scale moves 0.2 */
    }
    free(pre);
    double *fx = op_zeros(n), *fs = op_zeros(n);
    op_fd_grad(fx, c.bn.x, n, 1e-6, tail_loss, &c);
    if (tail) op_fd_grad(fs, c.s, n, 1e-6, tail_loss, &c);
    cd_mem mx = op_upload(ot_dev, c.bn.x, n, 1), ms = op_upload(ot_dev, c.s, n, 2), mw = op_upload(ot_dev, c.bn.w, C, 3);
    cd_mem mb = op_upload(ot_dev, c.bn.b, C, 4), mm = op_upload(ot_dev, c.bn.mean, C, 5);
    cd_mem mv = op_upload(ot_dev, c.bn.var, C, 6), mg = op_upload(ot_dev, c.bn.G, n, 7);
    cd_mem mo = op_upload(ot_dev, NULL, n, 8), mdx = op_upload(ot_dev, NULL, n, 9), mds = op_upload(ot_dev, NULL, n, 10);
    cd_mem sm = op_upload(ot_dev, NULL, C, 11), sr = op_upload(ot_dev, NULL, C, 12);
    cd_mem mdw = op_upload(ot_dev, NULL, C, 13), mdb = op_upload(ot_dev, NULL, C, 14);
    cd_fill(ot_dev, mdw, 0.0f, C);
    cd_fill(ot_dev, mdb, 0.0f, C);
    if (train && tail) {
        op_batchnorm_add_relu_train_forward(ot_dev, mo, sm, sr, cd_none(), cd_none(), mx, ms, mw, mb, B, C, HW,
                                            (float)EPS, (float)MOMENTUM);
        op_batchnorm_add_relu_train_backward(ot_dev, mdx, mds, mdw, mdb, mg, mo, mx, sm, sr, mw, B, C, HW, 0, 0);
    } else if (tail) {
        op_batchnorm_add_relu_frozen_forward(ot_dev, mo, mx, ms, mw, mb, mm, mv, B, C, HW, (float)EPS);
        op_batchnorm_add_relu_frozen_backward(ot_dev, mdx, mds, mg, mo, mw, mv, B, C, HW, (float)EPS, 0, 0);
    } else {
        op_batchnorm_relu_frozen_forward(ot_dev, mo, mx, mw, mb, mm, mv, B, C, HW, (float)EPS);
        op_batchnorm_relu_frozen_backward(ot_dev, mdx, mg, mo, mw, mv, B, C, HW, (float)EPS, 0);
    }
    double *dx = op_download(ot_dev, mdx, n), *ds = op_download(ot_dev, mds, n);
    char t[160];
    snprintf(t, sizeof t, "%s%s B%zu C%zu HW%zu: device dx vs finite differences", train ? "train" : "frozen",
             tail ? " tail relu(bn(x) + s)" : " + relu", B, C, HW);
    ot_close(t, fx, dx, n, 1e-5, 1e-4);
    if (tail) ot_close("  ... ds", fs, ds, n, 1e-5, 1e-4);
    cd_mem ms_[] = {mx, ms, mw, mb, mm, mv, mg, mo, mdx, mds, sm, sr, mdw, mdb};
    for (size_t i = 0; i < CD_ARRAY_LEN(ms_); i++) cd_free(ot_dev, ms_[i]);
    double *hs[] = {c.bn.x, c.bn.w, c.bn.b, c.bn.mean, c.bn.var, c.bn.G, c.bn.out, c.s, fx, fs, dx, ds};
    for (size_t i = 0; i < CD_ARRAY_LEN(hs); i++) free(hs[i]);
}

int main(void) {
    ot_open();
    t_seed(5);
    check_tail_fd(2, 3, 19, 0, 0);   /* frozen + ReLU */
    check_tail_fd(2, 3, 19, 0, 1);   /* frozen tail */
    check_tail_fd(2, 3, 19, 1, 1);   /* training tail */
    check_fd(3, 2, 5);
    check_fd(2, 3, 1);

    check_frozen(3, 5, 19, 0);       /* planes with a small power of two: the flat kernels */
    check_frozen(1, 17, 63, 1);
    check_frozen(2, 4, 625, 1);      /* 25x25, as DETR-R50's last stage at 800x800 */
    check_frozen(2, 6, 64, 0);       /* (64,1,1) groups: the per-plane kernels */
    check_frozen(2, 3, 256, 1);
    check_frozen_relu(3, 5, 19, 0);  /* the flat kernels */
    check_frozen_relu(2, 4, 625, 1);
    check_frozen_relu(2, 6, 64, 0);  /* the per-plane kernels */
    check_frozen_relu(2, 3, 256, 1);
    check_frozen_add_relu(3, 5, 19, 0, 3);   /* the flat kernels */
    check_frozen_add_relu(2, 4, 625, 1, 3);
    check_frozen_add_relu(2, 6, 64, 0, 3);   /* the per-plane kernels */
    check_frozen_add_relu(2, 3, 256, 1, 3);
    check_frozen_add_relu(2, 3, 256, 1, 1);  /* one gradient wanted: the ops that give it alone */
    check_frozen_add_relu(3, 5, 19, 0, 2);
    /* both shapes of the statistics and gradient sums on every device: a
     * work-item per channel (CPUs), a work-group tree per channel (GPUs) */
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        t_diag("batch norm sums: %s", rows ? "a work-item per channel" : "a work-group per channel");
        check_train(3, 5, 19, 0.0, 0);
        check_train(1, 17, 63, 0.0, 1);
        check_train(4, 3, 1, 0.0, 1);          /* 1x1 planes: N = B = 4 */
        check_train(2, 3, 40 * 33, 10.0, 0);   /* planes longer than a work-group, mean far from 0 */
        check_train(2, 3, 64, 0.0, 1);         /* 16-float vectors only */
        check_train_relu(3, 5, 19, 0);
        check_train_relu(2, 4, 40 * 33, 1);    /* planes longer than a work-group, vector and scalar tails */
        check_train_relu(8, 3, 1024, 0);
        check_train_add_relu(3, 5, 19, 0, 3);
        check_train_add_relu(2, 4, 40 * 33, 1, 3);
        check_train_add_relu(8, 3, 1024, 1, 2);   /* the shortcut's gradient alone */
        check_train_add_relu(2, 3, 64, 0, 1);     /* the norm's alone */
        ops_set_row_kernels(old);
    }
    ot_cases("batchnorm");
    return ot_finish();
}
