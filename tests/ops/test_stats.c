/* op_moments (src/ops/stats.c, cl/stats.cl) against its host reference: sum,
 * sum of squares and zero count of tensors from one element to several
 * work-groups' worth, at a nonzero offset in their buffer, with exact zeros
 * mixed in (as after a ReLU). A measurement for the training log, not a model
 * op: no backward to check. */
#include <stdlib.h>

#include "cldetr/common.h"
#include "cldetr/ops.h"
#include "../check.h"

int main(void) {
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) { printf("Bail out! %s\n", cd_errbuf()); return 1; }
    const size_t sizes[] = {1, 7, 256, 1000, 256 * 64 + 3, 300001};
    uint64_t rng = 11;
    for (size_t k = 0; k < CD_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k], off = 37;
        float *x = cd_xmalloc(n * sizeof *x);
        double *xd = cd_xmalloc(n * sizeof *xd), ref[3], got[3];
        for (size_t i = 0; i < n; i++) {
            double v = cd_rng_range(&rng, -1.0, 2.0);
            x[i] = v < 0 ? 0.0f : (float)v;                    /* about a third exact zeros */
            xd[i] = x[i];
        }
        cd_mem buf = cd_alloc(dev, n + off, "x"), out = cd_alloc(dev, 3, "out");
        cd_write(dev, cd_at(buf, off), x, n);
        op_moments(dev, out, cd_at(buf, off), n);
        float o[3];
        cd_read(dev, o, out, 3);
        op_moments_ref(ref, xd, n);
        for (int j = 0; j < 3; j++) got[j] = o[j];
        char name[64];
        snprintf(name, sizeof name, "moments of %zu values (sum, sum of squares)", n);
        t_close_d(name, ref, got, 2, 1e-6, 1e-5);            /* float sums of positive terms */
        t_ok(got[2] == ref[2], "zeros of %zu values: %g (reference %g)", n, got[2], ref[2]);
        cd_free(dev, buf);
        cd_free(dev, out);
        free(x);
        free(xd);
    }
    cd_close(dev);
    return t_done();
}
