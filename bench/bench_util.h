/* Helpers of the op benchmarks (bench_conv.c, bench_perf_kernels.c): device
 * buffers of random inputs from the one host generator, and a check of the
 * kernels about to be timed with the shared table of op cases (the same cases
 * `cldetr selftest` and tests/ops run). Include it from one .c per binary. */
#ifndef CLDETR_BENCH_UTIL_H
#define CLDETR_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/selftest.h"
#include "ops/op_check.h"

/* n floats uniform in [-1, 1) at offset 0 of a fresh buffer (offset 0 keeps
 * CLBlast from copying GEMM operands, as in training). */
static cd_mem bench_rand_dev(cd_device *dev, size_t n) {
    static uint64_t rng = 0xB5AD4ECEDA1CE2A9ULL;
    double *h = op_rand(&rng, n, -1, 1);
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)h[i];
    cd_mem m = cd_alloc(dev, n, "bench");
    cd_write(dev, m, f, n);
    free(f);
    free(h);
    return m;
}

/* Run the op cases of cd_op_cases whose op is in `ops` (a space-separated list
 * of src/ops/<op>.c names, NULL = all) on dev; prints each failure and returns
 * the number that failed, so a benchmark never times a wrong kernel. */
static int bench_check_ops(cd_device *dev, const char *ops) {
    int failed = 0, n = 0;
    for (const cd_selftest *c = cd_op_cases; c->name; c++) {
        if (ops) {
            const char *hit = strstr(ops, c->op);
            size_t len = strlen(c->op);
            if (!hit || (hit != ops && hit[-1] != ' ') || (hit[len] && hit[len] != ' ')) continue;
        }
        char msg[1024] = "";
        n++;
        if (c->run(dev, c, msg, sizeof msg)) { printf("FAIL %s: %s\n", c->name, msg); failed++; }
    }
    printf("checked %d op case(s) of the shared table against the host references: %d failed\n", n, failed);
    fflush(stdout);
    return failed;
}

#endif
