/* Element-wise ops (add, axpby, scale, relu, sigmoid, per-channel bias and
 * scale) on the device vs the host references at odd sizes and nonzero
 * offsets, acc 0 and 1; backward vs central finite differences in double. */
#include "op_test.h"

static const size_t sizes[] = {1, 7, 33, 257, 1000, 4099};

static void test_binary(size_t n, size_t off) {
    ot_tensor a = ot_rand(n, off, -2, 2), b = ot_rand(n, off + 1, -2, 2), o = ot_nan(n, off + 2);
    double *r = malloc(n * sizeof *r);
    op_add(ot_dev, o.d, a.d, b.d, n);
    op_add_ref(r, a.h, b.h, n);
    ot_check("add", &o, r, 0, 1e-7);                       /* one float rounding */
    op_add(ot_dev, a.d, a.d, b.d, n);                      /* out aliases a */
    ot_check("add in place", &a, r, 0, 1e-7);

    ot_tensor y = ot_nan(n, off + 3);                      /* beta 0: y is never read */
    op_axpby(ot_dev, y.d, 0.75f, b.d, 0.0f, n);
    op_axpby_ref(y.h, 0.75, b.h, 0.0, n);
    ot_check("axpby beta 0", &y, y.h, 0, 1e-7);
    double *yr = ot_copy(y.h, n);
    op_axpby(ot_dev, y.d, -1.5f, b.d, 0.5f, n);
    op_axpby_ref(yr, -1.5, b.h, 0.5, n);
    ot_check("axpby", &y, yr, 1e-7, 1e-6);

    ot_tensor s = ot_nan(n, off);
    op_scale(ot_dev, s.d, b.d, 3.0f, n, 0);
    op_scale_ref(r, b.h, 3.0, n, 0);
    ot_check("scale acc 0", &s, r, 0, 1e-7);
    op_scale(ot_dev, s.d, a.d, -0.25f, n, 1);
    op_scale_ref(r, a.h, -0.25, n, 1);
    ot_check("scale acc 1", &s, r, 1e-7, 1e-6);
    free(yr); free(r);
    ot_free(&a); ot_free(&b); ot_free(&o); ot_free(&y); ot_free(&s);
}

static void test_activations(size_t n, size_t off) {
    ot_tensor x = ot_rand(n, off, -10, 10), g = ot_rand(n, off + 1, -1, 1), o = ot_nan(n, off + 2);
    ot_tensor dx = ot_nan(n, off + 3);
    double *r = malloc(n * sizeof *r), *dr = malloc(n * sizeof *dr);
    op_relu_forward(ot_dev, o.d, x.d, n);
    op_relu_forward_ref(r, x.h, n);
    ot_check("relu forward", &o, r, 0, 0);                 /* exact */
    op_relu_backward(ot_dev, dx.d, g.d, o.d, n, 0);
    op_relu_backward_ref(dr, g.h, r, n, 0);
    ot_check("relu backward acc 0", &dx, dr, 0, 0);
    op_relu_backward(ot_dev, dx.d, g.d, o.d, n, 1);
    op_relu_backward_ref(dr, g.h, r, n, 1);
    ot_check("relu backward acc 1", &dx, dr, 0, 1e-7);

    /* sigmoid: OpenCL exp is within 3 ulp; the rest is a few float roundings */
    op_sigmoid_forward(ot_dev, o.d, x.d, n);
    op_sigmoid_forward_ref(r, x.h, n);
    ot_check("sigmoid forward", &o, r, 1e-7, 1e-6);
    ot_get(&o);                                            /* backward from the device's out, as in training */
    op_sigmoid_backward(ot_dev, dx.d, g.d, o.d, n, 0);
    op_sigmoid_backward_ref(dr, g.h, o.h, n, 0);
    ot_check("sigmoid backward acc 0", &dx, dr, 1e-7, 1e-6);
    op_sigmoid_backward(ot_dev, dx.d, g.d, o.d, n, 1);
    op_sigmoid_backward_ref(dr, g.h, o.h, n, 1);
    ot_check("sigmoid backward acc 1", &dx, dr, 1e-7, 1e-6);
    op_relu_forward(ot_dev, x.d, x.d, n);                  /* in place */
    op_relu_forward_ref(r, x.h, n);
    ot_check("relu in place", &x, r, 0, 0);
    free(r); free(dr);
    ot_free(&x); ot_free(&g); ot_free(&o); ot_free(&dx);
}

/* add_relu (a residual block's tail): forward = add then relu, and the
 * gradient to both inputs = relu_backward's, written or added by acc, the
 * same bits (the gradient of relu(a + b) to a and to b is that of relu) */
static void test_add_relu(size_t n, size_t off) {
    ot_tensor a = ot_rand(n, off, -2, 2), b = ot_rand(n, off + 1, -2, 2), o = ot_nan(n, off + 2);
    ot_tensor g = ot_rand(n, off + 3, -1, 1), da = ot_rand(n, off + 4, -1, 1), db = ot_nan(n, off + 5);
    ot_tensor ref = ot_nan(n, off + 6), dref = ot_nan(n, off + 7);
    op_add(ot_dev, ref.d, a.d, b.d, n);
    op_relu_forward(ot_dev, ref.d, ref.d, n);
    ot_get(&ref);
    op_add_relu_forward(ot_dev, o.d, a.d, b.d, n);
    ot_check("add_relu forward = add then relu, bit for bit", &o, ref.h, 0, 0);
    double *hr = malloc(n * sizeof *hr), *hd = malloc(n * sizeof *hd);   /* the host references, in double */
    op_add_ref(hr, a.h, b.h, n);
    op_relu_forward_ref(hr, hr, n);
    ot_check("add_relu forward against the host reference", &o, hr, 0, 1e-7);   /* one float rounding */
    op_relu_backward(ot_dev, dref.d, g.d, o.d, n, 0);
    ot_get(&dref);
    op_relu_backward_ref(hd, g.h, ref.h, n, 0);   /* ref.h: the device's forward, as in training */
    ot_check("add_relu's gradient (relu_backward) against the host reference", &dref, hd, 0, 0);
    free(hr); free(hd);
    double *da1 = malloc(n * sizeof *da1);
    for (size_t i = 0; i < n; i++) da1[i] = (float)((float)da.h[i] + (float)dref.h[i]);
    op_add_relu_backward(ot_dev, da.d, db.d, g.d, o.d, n, 1, 0);
    ot_check("add_relu backward: da += relu's gradient, bit for bit", &da, da1, 0, 0);
    ot_check("add_relu backward: db = relu's gradient, bit for bit", &db, dref.h, 0, 0);
    op_add_relu_backward(ot_dev, cd_none(), db.d, g.d, o.d, n, 0, 1);   /* da none: db += */
    for (size_t i = 0; i < n; i++) da1[i] = (float)((float)dref.h[i] + (float)dref.h[i]);
    ot_check("add_relu backward with da none: db += relu's gradient", &db, da1, 0, 0);
    op_add_relu_forward(ot_dev, a.d, a.d, b.d, n);                      /* out aliases a */
    ot_check("add_relu in place", &a, ref.h, 0, 0);
    free(da1);
    ot_free(&a); ot_free(&b); ot_free(&o); ot_free(&g); ot_free(&da); ot_free(&db); ot_free(&ref); ot_free(&dref);
}

/* FD of L = sum dout * f(x) for relu and sigmoid; h = 1e-4 in double (truncation
 * ~1e-9). Tolerance atol 1e-6, rtol 1e-5: the device backward is a float product. */
typedef struct { double *x, *dout; size_t n; int which; } act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    double *out = malloc(c->n * sizeof *out);
    if (c->which) op_sigmoid_forward_ref(out, c->x, c->n); else op_relu_forward_ref(out, c->x, c->n);
    double L = op_dot(c->dout, out, c->n);
    free(out);
    return L;
}

static void test_activation_fd(void) {
    size_t n = 33;
    for (int which = 0; which < 2; which++) {
        double xh[33];
        for (size_t i = 0; i < n; i++) {        /* keep relu's kink out of reach of the step */
            xh[i] = t_uniform(-4, 4);
            if (fabs(xh[i]) < 1e-2) xh[i] = 0.5;
        }
        ot_tensor x = ot_from(xh, n, 3), g = ot_rand(n, 1, -1, 1), o = ot_nan(n, 2), dx = ot_nan(n, 4);
        if (which) op_sigmoid_forward(ot_dev, o.d, x.d, n); else op_relu_forward(ot_dev, o.d, x.d, n);
        if (which) op_sigmoid_backward(ot_dev, dx.d, g.d, o.d, n, 0);
        else op_relu_backward(ot_dev, dx.d, g.d, o.d, n, 0);
        double *fd = malloc(n * sizeof *fd);
        act_ctx c = {x.h, g.h, n, which};
        op_fd_grad(fd, x.h, n, 1e-4, act_loss, &c);
        ot_check(which ? "sigmoid backward vs finite differences" : "relu backward vs finite differences",
                 &dx, fd, 1e-6, 1e-5);
        free(fd);
        ot_free(&x); ot_free(&g); ot_free(&o); ot_free(&dx);
    }
}

/* FD of L = sum dout * (a + b) (op_add_ref) against op_add_backward's da and
 * db, h = 1e-4 in double; atol 1e-6, rtol 1e-5 as above */
typedef struct { double *a, *b, *dout; size_t n; } add_ctx;
static double add_loss(void *p) {
    add_ctx *c = p;
    double *out = malloc(c->n * sizeof *out);
    op_add_ref(out, c->a, c->b, c->n);
    double L = op_dot(c->dout, out, c->n);
    free(out);
    return L;
}

static void test_add_fd(void) {
    size_t n = 33;
    ot_tensor a = ot_rand(n, 1, -2, 2), b = ot_rand(n, 2, -2, 2), g = ot_rand(n, 3, -1, 1);
    ot_tensor da = ot_nan(n, 4), db = ot_nan(n, 5);
    op_add_backward(ot_dev, da.d, db.d, g.d, n, 0, 0);
    add_ctx c = {a.h, b.h, g.h, n};
    double *fd = malloc(n * sizeof *fd);
    op_fd_grad(fd, a.h, n, 1e-4, add_loss, &c);
    ot_check("add backward da vs finite differences", &da, fd, 1e-6, 1e-5);
    op_fd_grad(fd, b.h, n, 1e-4, add_loss, &c);
    ot_check("add backward db vs finite differences", &db, fd, 1e-6, 1e-5);
    free(fd);
    ot_free(&a); ot_free(&b); ot_free(&g); ot_free(&da); ot_free(&db);
}

static void test_channels(size_t B, size_t C, size_t HW) {
    size_t n = B * C * HW;
    char name[128];
    ot_tensor x = ot_rand(n, 3, -2, 2), g = ot_rand(n, 5, -1, 1), o = ot_nan(n, 1), dx = ot_nan(n, 2);
    ot_tensor bias = ot_rand(C, 7, -1, 1), sc = ot_rand(C, 2, -1, 1), dbias = ot_rand(C, 1, -1, 1),
              dsc = ot_rand(C, 4, -1, 1);
    double *r = malloc(n * sizeof *r), *dr = calloc(n, sizeof *dr);
    /* channel sums add up to B*HW float terms (tree): atol 2e-6 * sqrt(B*HW) covers them */
    double sum_atol = 2e-6 * sqrt((double)(B * HW)) + 1e-7;

    op_add_channels_forward(ot_dev, o.d, x.d, bias.d, B, C, HW);
    op_add_channels_forward_ref(r, x.h, bias.h, B, C, HW);
    snprintf(name, sizeof name, "add_channels forward (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &o, r, 0, 1e-7);
    op_add_channels_backward(ot_dev, dx.d, dbias.d, g.d, B, C, HW, 0);
    op_add_channels_backward_ref(dr, dbias.h, g.h, B, C, HW, 0);
    snprintf(name, sizeof name, "add_channels backward dx acc 0 (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dx, dr, 0, 0);
    snprintf(name, sizeof name, "add_channels backward dbias += (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dbias, dbias.h, sum_atol, 1e-6);
    op_add_channels_backward(ot_dev, dx.d, cd_none(), g.d, B, C, HW, 1);
    op_add_channels_backward_ref(dr, NULL, g.h, B, C, HW, 1);
    snprintf(name, sizeof name, "add_channels backward dx acc 1, no dbias (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dx, dr, 0, 1e-7);

    op_mul_channels_forward(ot_dev, o.d, x.d, sc.d, B, C, HW);
    op_mul_channels_forward_ref(r, x.h, sc.h, B, C, HW);
    snprintf(name, sizeof name, "mul_channels forward (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &o, r, 0, 1e-7);
    double *dsr = ot_copy(dsc.h, C);
    op_mul_channels_backward(ot_dev, dx.d, dsc.d, g.d, x.d, sc.d, B, C, HW, 1);
    op_mul_channels_backward_ref(dr, dsr, g.h, x.h, sc.h, B, C, HW, 1);
    snprintf(name, sizeof name, "mul_channels backward dx acc 1 (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dx, dr, 1e-7, 1e-6);
    snprintf(name, sizeof name, "mul_channels backward dscale += (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dsc, dsr, 2 * sum_atol, 1e-6);
    op_mul_channels_backward(ot_dev, dx.d, cd_none(), g.d, x.d, sc.d, B, C, HW, 0);
    op_mul_channels_backward_ref(dr, NULL, g.h, x.h, sc.h, B, C, HW, 0);
    snprintf(name, sizeof name, "mul_channels backward dx acc 0, no dscale (%zu,%zu,%zu)", B, C, HW);
    ot_check(name, &dx, dr, 0, 1e-7);
    free(r); free(dr); free(dsr);
    ot_free(&x); ot_free(&g); ot_free(&o); ot_free(&dx);
    ot_free(&bias); ot_free(&sc); ot_free(&dbias); ot_free(&dsc);
}

/* FD of L = sum dout * (x * scale[c] + bias[c]) w.r.t. x, scale and bias; the
 * loss is linear in each, so FD is exact up to rounding: atol 1e-5, rtol 1e-5. */
typedef struct { double *x, *scale, *bias, *dout; size_t B, C, HW; } ch_ctx;
static double ch_loss(void *p) {
    ch_ctx *c = p;
    size_t n = c->B * c->C * c->HW;
    double *t = malloc(n * sizeof *t), *u = malloc(n * sizeof *u);
    op_mul_channels_forward_ref(t, c->x, c->scale, c->B, c->C, c->HW);
    op_add_channels_forward_ref(u, t, c->bias, c->B, c->C, c->HW);
    double L = op_dot(c->dout, u, n);
    free(t); free(u);
    return L;
}

static void test_channels_fd(void) {
    size_t B = 2, C = 7, HW = 33, n = B * C * HW;
    ot_tensor x = ot_rand(n, 1, -1, 1), sc = ot_rand(C, 2, -1, 1), bias = ot_rand(C, 3, -1, 1);
    ot_tensor g = ot_rand(n, 4, -1, 1), dx = ot_nan(n, 5);
    double zero[7] = {0};
    ot_tensor dsc = ot_from(zero, C, 6), dbias = ot_from(zero, C, 7);
    op_mul_channels_backward(ot_dev, dx.d, dsc.d, g.d, x.d, sc.d, B, C, HW, 0);
    op_add_channels_backward(ot_dev, cd_none(), dbias.d, g.d, B, C, HW, 0);
    ch_ctx c = {x.h, sc.h, bias.h, g.h, B, C, HW};
    double *fd = malloc(n * sizeof *fd);
    op_fd_grad(fd, x.h, n, 1e-3, ch_loss, &c);
    ot_check("mul_channels dx vs finite differences", &dx, fd, 1e-5, 1e-5);
    op_fd_grad(fd, sc.h, C, 1e-3, ch_loss, &c);
    ot_check("mul_channels dscale vs finite differences", &dsc, fd, 1e-5, 1e-5);
    op_fd_grad(fd, bias.h, C, 1e-3, ch_loss, &c);
    ot_check("add_channels dbias vs finite differences", &dbias, fd, 1e-5, 1e-5);
    free(fd);
    ot_free(&x); ot_free(&sc); ot_free(&bias); ot_free(&g); ot_free(&dx); ot_free(&dsc); ot_free(&dbias);
}

/* op_add_backward (both gradients in one launch) against two op_scale
 * copies, bit for bit, for every acc pair; one gradient alone; da and db the
 * same buffer (x + x: the second adds to the first) */
static void test_add_backward(size_t n, size_t off) {
    ot_tensor g = ot_rand(n, off, -2, 2), a0 = ot_rand(n, off + 1, -1, 1), b0 = ot_rand(n, off + 2, -1, 1);
    char name[128];
    for (int acc = 0; acc < 4; acc++) {
        int acc_a = acc & 1, acc_b = acc >> 1;
        ot_tensor da = ot_from(a0.h, n, off + 3), db = ot_from(b0.h, n, off + 4);
        ot_tensor ra = ot_from(a0.h, n, off + 5), rb = ot_from(b0.h, n, off + 6);
        op_add_backward(ot_dev, da.d, db.d, g.d, n, acc_a, acc_b);
        op_scale(ot_dev, ra.d, g.d, 1.0f, n, acc_a);
        op_scale(ot_dev, rb.d, g.d, 1.0f, n, acc_b);
        ot_get(&ra);
        ot_get(&rb);
        snprintf(name, sizeof name, "add backward n=%zu acc %d/%d: da = the copy's, bit for bit", n, acc_a, acc_b);
        ot_check(name, &da, ra.h, 0, 0);
        snprintf(name, sizeof name, "add backward n=%zu acc %d/%d: db = the copy's, bit for bit", n, acc_a, acc_b);
        ot_check(name, &db, rb.h, 0, 0);
        ot_free(&da); ot_free(&db); ot_free(&ra); ot_free(&rb);
    }
    ot_tensor db = ot_from(b0.h, n, off + 7);
    double *r = ot_copy(b0.h, n);
    op_add_backward(ot_dev, cd_none(), db.d, g.d, n, 0, 1);
    for (size_t i = 0; i < n; i++) r[i] = (float)((float)b0.h[i] + (float)g.h[i]);
    snprintf(name, sizeof name, "add backward n=%zu, da none: db += dout", n);
    ot_check(name, &db, r, 0, 0);
    op_add_backward(ot_dev, db.d, db.d, g.d, n, 0, 1);       /* x + x */
    for (size_t i = 0; i < n; i++) r[i] = (float)((float)g.h[i] + (float)g.h[i]);
    snprintf(name, sizeof name, "add backward n=%zu, da and db one buffer (x + x): 2 dout", n);
    ot_check(name, &db, r, 0, 0);
    free(r);
    ot_free(&db); ot_free(&g); ot_free(&a0); ot_free(&b0);
}

int main(void) {
    ot_open();
    t_seed(101);
    for (size_t i = 0; i < CD_ARRAY_LEN(sizes); i++) {
        test_binary(sizes[i], 1 + i);
        test_activations(sizes[i], 2 + 3 * i);
        test_add_relu(sizes[i], 3 + i);
        test_add_backward(sizes[i], 4 + i);
    }
    test_activation_fd();
    test_add_fd();
    static const size_t ch[][3] = {{1, 1, 1}, {2, 7, 33}, {3, 5, 1}, {1, 13, 257}, {2, 3, 1000}, {4, 64, 49},
                                   {4, 300, 1}};   /* whole-row biases: attention's mask bias, query positions */
    for (size_t i = 0; i < CD_ARRAY_LEN(ch); i++) test_channels(ch[i][0], ch[i][1], ch[i][2]);
    test_channels_fd();
    ot_cases("elementwise");
    return ot_finish();
}
