/* Permute: all 24 orders of 4 axes vs the host reference (odd sizes, offsets,
 * acc 0 and 1; rows of 32 on the CPU row kernel and the element kernel); the
 * inverse permutation gives x back exactly and is the backward (finite
 * differences); attention's (L, B, NH, hd) -> (B, NH, L, hd); fewer axes
 * padded with 1. Values move, never change: tolerance 0 (acc 1: one float
 * add). */
#include "op_test.h"
#include "ops/reduce_util.h"

static void inverse(const int perm[4], int inv[4]) {
    for (int a = 0; a < 4; a++) inv[perm[a]] = a;
}

static void test_all_orders(const size_t dims[4]) {
    size_t n = dims[0] * dims[1] * dims[2] * dims[3];
    ot_tensor x = ot_rand(n, 3, -1, 1), out = ot_nan(n, 1), back = ot_nan(n, 2);
    double *r = malloc(n * sizeof *r);
    int failures = 0, count = 0;
    for (int p = 0; p < 24; p++) {
        /* the p-th permutation of {0,1,2,3} (factorial number system) */
        int avail[4] = {0, 1, 2, 3}, perm[4], inv[4], q = p;
        for (int a = 0, left = 4; a < 4; a++, left--) {
            int f = 1;
            for (int k = 2; k < left; k++) f *= k;
            int pick = q / f;
            q %= f;
            perm[a] = avail[pick];
            for (int k = pick; k < left - 1; k++) avail[k] = avail[k + 1];
        }
        char name[128];
        snprintf(name, sizeof name, "permute (%zu,%zu,%zu,%zu) by {%d,%d,%d,%d} acc 0", dims[0], dims[1], dims[2],
                 dims[3], perm[0], perm[1], perm[2], perm[3]);
        op_permute(ot_dev, out.d, x.d, dims, perm, 0);
        op_permute_ref(r, x.h, dims, perm, 0);
        failures += !ot_check(name, &out, r, 0, 0);
        /* back with the inverse; out's dims are dims[perm[a]] */
        size_t od[4] = {dims[perm[0]], dims[perm[1]], dims[perm[2]], dims[perm[3]]};
        inverse(perm, inv);
        op_permute(ot_dev, back.d, out.d, od, inv, 0);
        snprintf(name, sizeof name, "permute by {%d,%d,%d,%d} then its inverse is the identity", perm[0], perm[1],
                 perm[2], perm[3]);
        failures += !ot_check(name, &back, x.h, 0, 0);
        count += 2;
    }
    t_diag("%d of %d permute checks failed", failures, count);
    free(r);
    ot_free(&x); ot_free(&out); ot_free(&back);
}

static void test_acc(void) {
    size_t dims[4] = {33, 2, 8, 17}, n = 33 * 2 * 8 * 17;      /* (L, B, NH, hd) */
    int perm[4] = {1, 2, 0, 3};                                  /* -> (B, NH, L, hd) */
    ot_tensor x = ot_rand(n, 5, -1, 1), out = ot_rand(n, 6, -1, 1);
    op_permute(ot_dev, out.d, x.d, dims, perm, 1);
    op_permute_ref(out.h, x.h, dims, perm, 1);
    ot_check("permute (L,B,NH,hd) -> (B,NH,L,hd) acc 1", &out, out.h, 0, 1e-7);
    size_t d3[4] = {1, 7, 1000, 3}, n3 = 7 * 1000 * 3;        /* a 3-axis transpose padded with 1 */
    int p3[4] = {0, 2, 1, 3};
    ot_tensor y = ot_rand(n3, 1, -1, 1), o3 = ot_nan(n3, 2);
    double *r = malloc(n3 * sizeof *r);
    op_permute(ot_dev, o3.d, y.d, d3, p3, 0);
    op_permute_ref(r, y.h, d3, p3, 0);
    ot_check("permute (7,1000,3) -> (1000,7,3), padded to 4 axes", &o3, r, 0, 0);
    free(r);
    ot_free(&x); ot_free(&out); ot_free(&y); ot_free(&o3);
}

/* FD of L = sum dout * permute(x): linear, h = 1e-3; the backward is the inverse
 * permutation of dout: atol 1e-9 (FD rounding only). */
typedef struct { double *x, *dout; const size_t *dims; const int *perm; } pm_ctx;
static double pm_loss(void *p) {
    pm_ctx *c = p;
    size_t n = c->dims[0] * c->dims[1] * c->dims[2] * c->dims[3];
    double *out = malloc(n * sizeof *out);
    op_permute_ref(out, c->x, c->dims, c->perm, 0);
    double L = op_dot(c->dout, out, n);
    free(out);
    return L;
}

static void test_fd(void) {
    size_t dims[4] = {3, 4, 2, 5}, n = 120;
    int perm[4] = {2, 0, 3, 1}, inv[4];
    inverse(perm, inv);
    size_t od[4] = {dims[2], dims[0], dims[3], dims[1]};
    ot_tensor x = ot_rand(n, 1, -1, 1), g = ot_rand(n, 2, -1, 1), dx = ot_nan(n, 3);
    op_permute(ot_dev, dx.d, g.d, od, inv, 0);
    double *fd = malloc(n * sizeof *fd);
    pm_ctx c = {x.h, g.h, dims, perm};
    op_fd_grad(fd, x.h, n, 1e-3, pm_loss, &c);
    ot_check("permute backward (inverse permutation) vs finite differences", &dx, fd, 1e-9, 0);
    free(fd);
    ot_free(&x); ot_free(&g); ot_free(&dx);
}

/* Rows of 32 that stay last (attention's head dim): the CPU row kernel
 * (permute4_rows) and the element kernel, acc 0 over every order and acc 1
 * for (L, B, NH, hd) -> (B, NH, L, hd). */
static void test_rows(void) {
    static const size_t d[4] = {5, 3, 2, 32}, n = 5 * 3 * 2 * 32;
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        t_diag("row kernels %s", rows ? "on (permute4_rows where the last axis stays last)" : "off");
        test_all_orders(d);
        ot_tensor x = ot_rand(n, 8, -1, 1), out = ot_rand(n, 9, -1, 1);
        op_permute(ot_dev, out.d, x.d, d, (int[]){1, 2, 0, 3}, 1);
        op_permute_ref(out.h, x.h, d, (int[]){1, 2, 0, 3}, 1);
        ot_check(rows ? "permute (5,3,2,32) -> (3,2,5,32) acc 1, row kernel" : "the same, element kernel", &out,
                 out.h, 0, 1e-7);
        ot_free(&x); ot_free(&out);
        ops_set_row_kernels(old);
    }
}

int main(void) {
    ot_open();
    t_seed(606);
    static const size_t d1[4] = {3, 1, 4, 5}, d2[4] = {7, 2, 3, 5};
    test_all_orders(d1);
    test_all_orders(d2);
    test_acc();
    test_rows();
    /* the 1-D kernel that tensors past permute4_3d's 32-bit limits take */
    int old = op_permute_set_1d(1);
    test_all_orders(d2);
    test_acc();
    op_permute_set_1d(old);
    test_fd();
    ot_cases("permute");
    return ot_finish();
}
