/* op_moments (src/ops/stats.c, cl/stats.cl) against its host reference: sum,
 * sum of squares and zero count of tensors from one element to several
 * work-groups' worth, at nonzero offsets, with exact zeros mixed in (as after
 * a ReLU), and no write outside the output. A measurement for the training
 * log, not a model op: no backward to check. */
#include "op_test.h"

int main(void) {
    t_seed(11);
    const size_t sizes[] = {1, 7, 256, 1000, 256 * 64 + 3, 300001};
    for (size_t k = 0; k < CD_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        double *v = ot_randv(n, -1.0, 2.0), ref[3];
        for (size_t i = 0; i < n; i++) v[i] = v[i] < 0 ? 0 : v[i];    /* about a third exact zeros */
        ot_tensor x = ot_from(v, n, 5 + k), out = ot_nan(3, 2);
        op_moments(ot_open(), out.d, x.d, n);
        op_moments_ref(ref, x.h, n);
        char name[96];
        snprintf(name, sizeof name, "moments of %zu values: sum, sum of squares, zeros", n);
        ot_check(name, &out, ref, 1e-6, 1e-5);          /* float sums of non-negative terms */
        t_ok(out.h[2] == ref[2], "the zero count of %zu values is exact: %g (reference %g)", n, out.h[2], ref[2]);
        ot_free(&x);
        ot_free(&out);
        free(v);
    }
    ot_cases("stats");
    return ot_finish();
}
