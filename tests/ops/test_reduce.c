/* Reductions: op_reduce_sum (sum and mean over a middle axis) and op_broadcast
 * vs the host references on shapes around work-group and chunk boundaries,
 * nonzero offsets, acc 0 and 1; the broadcast as the backward of the sum vs
 * finite differences; op_sumsq up to ~10^6 elements within 1e-5 relative of a
 * double sum; determinism (bitwise equal results across runs). */
#include "op_test.h"
#include "ops/reduce_util.h"

/* (O, R, I): R around the 256-item work-group and the 4*LR chunking threshold,
 * I = 1 (contiguous rows) and I > 32 (column tiles). */
static const size_t shapes[][3] = {
    {1, 1, 1}, {1, 7, 1}, {3, 33, 1}, {1, 255, 1}, {1, 256, 1}, {1, 257, 1}, {2, 1023, 1}, {1, 1024, 1},
    {1, 1025, 1}, {1, 4097, 1}, {5, 255, 7}, {1, 257, 256}, {2, 1000, 3}, {1, 1, 1000}, {4, 1023, 33},
    {7, 3, 5}, {1, 100003, 1}, {1, 3000, 64}};

/* Sums of R float terms in float: atol grows like sqrt(R) (random-sign terms of size <= 1). */
static double sum_atol(size_t R) { return 1e-6 * sqrt((double)R) + 1e-7; }

static void test_reduce(size_t O, size_t R, size_t I, size_t off) {
    char name[160];
    size_t n = O * R * I;
    ot_tensor x = ot_rand(n, off, -1, 1), out = ot_nan(O * I, off + 2);
    double *r = calloc(O * I, sizeof *r);
    op_reduce_sum(ot_dev, out.d, x.d, O, R, I, 1.0f, 0);
    op_reduce_sum_ref(r, x.h, O, R, I, 1.0, 0);
    snprintf(name, sizeof name, "reduce_sum (%zu,%zu,%zu) acc 0", O, R, I);
    ot_check(name, &out, r, sum_atol(R), 1e-6);
    float mean_alpha = 1.0f / (float)R;
    op_reduce_sum(ot_dev, out.d, x.d, O, R, I, mean_alpha, 1);
    op_reduce_sum_ref(out.h, x.h, O, R, I, mean_alpha, 1);
    snprintf(name, sizeof name, "reduce mean (%zu,%zu,%zu) acc 1", O, R, I);
    ot_check(name, &out, out.h, sum_atol(R), 1e-6);
    free(r);
    ot_free(&x); ot_free(&out);
}

static void test_broadcast(size_t O, size_t R, size_t I, size_t off) {
    char name[160];
    size_t n = O * R * I;
    ot_tensor g = ot_rand(O * I, off, -1, 1), dx = ot_nan(n, off + 1);
    double *r = calloc(n, sizeof *r);
    op_broadcast(ot_dev, dx.d, g.d, O, R, I, 0.5f, 0);
    op_broadcast_ref(r, g.h, O, R, I, 0.5, 0);
    snprintf(name, sizeof name, "broadcast (%zu,%zu,%zu) acc 0", O, R, I);
    ot_check(name, &dx, r, 0, 0);
    op_broadcast(ot_dev, dx.d, g.d, O, R, I, -2.0f, 1);
    op_broadcast_ref(r, g.h, O, R, I, -2.0, 1);
    snprintf(name, sizeof name, "broadcast (%zu,%zu,%zu) acc 1", O, R, I);
    ot_check(name, &dx, r, 1e-7, 1e-7);
    free(r);
    ot_free(&g); ot_free(&dx);
}

/* FD of L = sum dout * reduce_sum(x, alpha): linear, h = 1e-3; the device
 * gradient is one float product: atol 1e-6, rtol 1e-6. */
typedef struct { double *x, *dout; size_t O, R, I; double alpha; } red_ctx;
static double red_loss(void *p) {
    red_ctx *c = p;
    double *out = malloc(c->O * c->I * sizeof *out);
    op_reduce_sum_ref(out, c->x, c->O, c->R, c->I, c->alpha, 0);
    double L = op_dot(c->dout, out, c->O * c->I);
    free(out);
    return L;
}

static void test_fd(void) {
    size_t O = 2, R = 5, I = 3, n = O * R * I;
    ot_tensor x = ot_rand(n, 1, -1, 1), g = ot_rand(O * I, 2, -1, 1), dx = ot_nan(n, 3);
    op_broadcast(ot_dev, dx.d, g.d, O, R, I, 0.2f, 0);
    double *fd = malloc(n * sizeof *fd);
    red_ctx c = {x.h, g.h, O, R, I, 0.2f};
    op_fd_grad(fd, x.h, n, 1e-3, red_loss, &c);
    ot_check("broadcast is the reduce_sum backward (finite differences)", &dx, fd, 1e-6, 1e-6);
    free(fd);
    ot_free(&x); ot_free(&g); ot_free(&dx);
}

/* sumsq within 1e-5 relative of the double sum (as the gradient-norm clip needs) */
static void test_sumsq(size_t n) {
    ot_tensor x = ot_rand(n, 7, -1, 1), out = ot_nan(1, 1);
    op_sumsq(ot_dev, out.d, x.d, n);
    double ref = op_sumsq_ref(x.h, n);
    char name[64];
    snprintf(name, sizeof name, "sumsq n=%zu", n);
    ot_check(name, &out, &ref, 0, 1e-5);
    ot_free(&x); ot_free(&out);
}

static void test_determinism(void) {
    size_t n = 1000003, O = 3, R = 5001, I = 7;
    ot_tensor x = ot_rand(n, 3, -1, 1), a = ot_nan(O * I, 1);
    float s1, s2, r1[21], r2[21];
    op_sumsq(ot_dev, a.d, x.d, n);
    cd_read(ot_dev, &s1, a.d, 1);
    op_sumsq(ot_dev, a.d, x.d, n);
    cd_read(ot_dev, &s2, a.d, 1);
    t_ok(memcmp(&s1, &s2, sizeof s1) == 0, "sumsq is bitwise deterministic (%.9g, %.9g)", s1, s2);
    op_reduce_sum(ot_dev, a.d, x.d, O, R, I, 1.0f, 0);
    cd_read(ot_dev, r1, a.d, O * I);
    op_reduce_sum(ot_dev, a.d, x.d, O, R, I, 1.0f, 0);
    cd_read(ot_dev, r2, a.d, O * I);
    t_ok(memcmp(r1, r2, sizeof r1) == 0, "reduce_sum (3,5001,7) is bitwise deterministic");
    ot_free(&x); ot_free(&a);
}

static void test_empty(void) {
    ot_tensor x = ot_rand(1, 1, -1, 1), out = ot_nan(5, 2);
    double zero[5] = {0};
    op_reduce_sum(ot_dev, out.d, x.d, 1, 0, 5, 1.0f, 0);
    ot_check("reduce_sum over an empty axis gives 0", &out, zero, 0, 0);
    ot_free(&x); ot_free(&out);
}

int main(void) {
    ot_open();
    t_seed(303);
    /* both kernel shapes on every device: a work-item per 16 columns or per row (CPUs), work-group trees (GPUs) */
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        t_diag("reduce_axis kernels: %s", rows ? "reduce_axis_cols" : "reduce_axis (work-group trees)");
        for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++) test_reduce(shapes[s][0], shapes[s][1], shapes[s][2], s + 1);
        ops_set_row_kernels(old);
    }
    for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++)
        if (shapes[s][0] * shapes[s][1] * shapes[s][2] <= 100000) test_broadcast(shapes[s][0], shapes[s][1], shapes[s][2], s + 2);
    test_fd();
    static const size_t sq[] = {1, 7, 255, 256, 257, 1025, 65537, 1000003};
    for (size_t i = 0; i < CD_ARRAY_LEN(sq); i++) test_sumsq(sq[i]);
    test_determinism();
    test_empty();
    ot_cases("reduce");
    return ot_finish();
}
