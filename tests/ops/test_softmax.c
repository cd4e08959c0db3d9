/* Softmax with key-padding mask: forward and backward vs the host references
 * (odd sizes, nonzero offsets, acc 0 and 1, with and without mask); masked keys
 * get exactly 0, a fully padded row gives zeros and no NaN, valid rows sum to 1,
 * large scores don't overflow; backward vs finite differences. */
#include "op_test.h"
#include "ops/reduce_util.h"

static void test_shape(size_t B, size_t H, size_t Lq, size_t Lk, int masked, size_t off) {
    char name[160], what[64];
    size_t n = B * H * Lq * Lk;
    float scale = 1.0f / sqrtf((float)Lk);
    snprintf(what, sizeof what, "(%zu,%zu,%zu,%zu)%s", B, H, Lq, Lk, masked ? " masked" : "");
    ot_tensor x = ot_rand(n, off, -8, 8), out = ot_nan(n, off + 1), g = ot_rand(n, off + 2, -1, 1);
    ot_tensor dx = ot_nan(n, off + 3);
    ot_tensor mask = masked ? ot_key_mask(B, Lk, off + 4) : ot_nan(0, 0);
    double *r = malloc(n * sizeof *r), *dr = malloc(n * sizeof *dr);
    op_softmax_forward(ot_dev, out.d, x.d, masked ? mask.d : cd_none(), B, H, Lq, Lk, scale);
    op_softmax_forward_ref(r, x.h, masked ? mask.h : NULL, B, H, Lq, Lk, scale);
    /* probabilities in [0,1]: exp within 3 ulp, a sum of Lk terms: atol 1e-7, rtol 2e-6 */
    snprintf(name, sizeof name, "softmax forward %s", what);
    ot_check(name, &out, r, 1e-7, 2e-6);

    size_t masked_nonzero = 0, bad_rows = 0, nans = 0;
    for (size_t row = 0; row < B * H * Lq; row++) {
        size_t b = row / (H * Lq);
        double sum = 0;
        int any_valid = 0;
        for (size_t k = 0; k < Lk; k++) {
            double p = out.h[row * Lk + k];
            int pad = masked && mask.h[b * Lk + k] > 0.5;
            if (isnan(p)) nans++;
            if (pad && p != 0.0) masked_nonzero++;
            any_valid |= !pad;
            sum += p;
        }
        if (any_valid ? fabs(sum - 1) > 1e-5 : sum != 0.0) bad_rows++;
    }
    t_ok(masked_nonzero == 0 && nans == 0 && bad_rows == 0,
         "softmax %s: masked keys exactly 0 (%zu not), no NaN (%zu), rows sum to 1 or 0 if fully padded (%zu not)",
         what, masked_nonzero, nans, bad_rows);

    /* backward from the device's probabilities, as in training: atol 1e-7, rtol 1e-5 */
    op_softmax_backward(ot_dev, dx.d, g.d, out.d, B, H, Lq, Lk, scale, 0);
    op_softmax_backward_ref(dr, g.h, out.h, B, H, Lq, Lk, scale, 0);
    snprintf(name, sizeof name, "softmax backward acc 0 %s", what);
    ot_check(name, &dx, dr, 1e-7, 1e-5);
    op_softmax_backward(ot_dev, dx.d, g.d, out.d, B, H, Lq, Lk, scale, 1);
    op_softmax_backward_ref(dr, g.h, out.h, B, H, Lq, Lk, scale, 1);
    snprintf(name, sizeof name, "softmax backward acc 1 %s", what);
    ot_check(name, &dx, dr, 1e-7, 1e-5);
    free(r); free(dr);
    ot_free(&x); ot_free(&out); ot_free(&g); ot_free(&dx); ot_free(&mask);
}

/* Rows of scores in [9990, 10000], [-10000, -9990] and [-1e4, 1e4] (scale 1):
 * the max subtraction keeps exp from overflowing (row 0) or underflowing to an
 * all-zero sum (row 1). */
static void test_large_scores(void) {
    size_t Lk = 77, n = 3 * Lk;
    double xh[3 * 77];
    for (size_t k = 0; k < Lk; k++) {
        xh[k] = t_uniform(9990, 10000);
        xh[Lk + k] = t_uniform(-10000, -9990);
        xh[2 * Lk + k] = t_uniform(-1e4, 1e4);
    }
    ot_tensor x = ot_from(xh, n, 1), out = ot_nan(n, 2);
    double *r = malloc(n * sizeof *r);
    op_softmax_forward(ot_dev, out.d, x.d, cd_none(), 1, 1, 3, Lk, 1.0f);
    op_softmax_forward_ref(r, x.h, NULL, 1, 1, 3, Lk, 1.0);
    ot_check("softmax of scores near +-1e4 (no overflow or underflow)", &out, r, 1e-7, 2e-6);
    free(r);
    ot_free(&x); ot_free(&out);
}

/* FD of L = sum dout * softmax(scale * x, mask) in double, h = 1e-5 (truncation
 * ~1e-10): atol 1e-6, rtol 1e-4 cover the float backward. Masked scores have
 * gradient exactly 0 on both sides. */
typedef struct { double *x, *mask, *dout; size_t B, H, Lq, Lk; double scale; } sm_ctx;
static double sm_loss(void *p) {
    sm_ctx *c = p;
    size_t n = c->B * c->H * c->Lq * c->Lk;
    double *out = malloc(n * sizeof *out);
    op_softmax_forward_ref(out, c->x, c->mask, c->B, c->H, c->Lq, c->Lk, c->scale);
    double L = op_dot(c->dout, out, n);
    free(out);
    return L;
}

static void test_fd(size_t B, size_t H, size_t Lq, size_t Lk) {
    size_t n = B * H * Lq * Lk;
    float scale = 0.7f;
    ot_tensor x = ot_rand(n, 1, -3, 3), g = ot_rand(n, 2, -1, 1), out = ot_nan(n, 3), dx = ot_nan(n, 4);
    ot_tensor mask = ot_key_mask(B, Lk, 5);
    op_softmax_forward(ot_dev, out.d, x.d, mask.d, B, H, Lq, Lk, scale);
    op_softmax_backward(ot_dev, dx.d, g.d, out.d, B, H, Lq, Lk, scale, 0);
    double *fd = malloc(n * sizeof *fd);
    sm_ctx c = {x.h, mask.h, g.h, B, H, Lq, Lk, scale};
    op_fd_grad(fd, x.h, n, 1e-5, sm_loss, &c);
    char name[128];
    snprintf(name, sizeof name, "softmax backward vs finite differences (%zu,%zu,%zu,%zu) masked", B, H, Lq, Lk);
    ot_check(name, &dx, fd, 1e-6, 1e-4);
    free(fd);
    ot_free(&x); ot_free(&g); ot_free(&out); ot_free(&dx); ot_free(&mask);
}

int main(void) {
    ot_open();
    t_seed(404);
    static const size_t shapes[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 2, 3, 33}, {2, 2, 2, 257}, {3, 1, 2, 1000},
                                       {2, 8, 20, 20}, {4, 1, 1, 1025}};
    /* both kernel shapes on every device: a work-item per row (CPUs), a work-group per row (GPUs) */
    for (int rows = 1; rows >= 0; rows--) {
        int old = ops_set_row_kernels(rows);
        t_diag("softmax kernels: %s", rows ? "a work-item per row" : "a work-group per row");
        for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++)
            for (int masked = 0; masked < 2; masked++)
                test_shape(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], masked, s + 1);
        test_large_scores();
        ops_set_row_kernels(old);
    }
    test_fd(3, 2, 3, 7);
    test_fd(3, 1, 2, 65);
    ot_cases("softmax");
    return ot_finish();
}
