/* Self-checks that `cldetr selftest` runs on a device: each compares one case of
 * an op (or GEMM) on the device with its plain C host reference. The op cases
 * are one table shared with the tests in tests/ops and the benchmarks in bench/. */
#ifndef CLDETR_SELFTEST_H
#define CLDETR_SELFTEST_H

#include <stddef.h>
#include "cldetr/device.h"

typedef struct cd_selftest {
    const char *name;
    const char *op;          /* what it checks: "gemm", or the src/ops/<op>.c of an op case */
    /* 0 = pass; -1 = fail with a one-line reason (first mismatches, index, values) in msg */
    int (*run)(cd_device *dev, const struct cd_selftest *t, char *msg, size_t msg_len);
    size_t d[10];            /* shape and parameters; their meaning is run's (see src/ops/op_cases.c) */
} cd_selftest;

/* Each table ends with {NULL}. */
extern const cd_selftest cd_selftests_gemm[];
extern const cd_selftest cd_op_cases[];   /* every op: element-wise ... max pool, linear and bmm */

/* The host GEMM reference, sums in double: C (M, N, row stride ldc) = alpha op(A) op(B) + beta C
 * (beta 0: C is written, never read), A (M, K) or (K, M) if ta, B (K, N) or (N, K) if tb, row-major. */
void cd_gemm_ref(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                 const float *B, size_t ldb, float beta, float *C, size_t ldc);
/* One entry of op(A) op(B): sum_k op(A)[i, k] op(B)[k, j] in double. */
double cd_gemm_ref_dot(int ta, int tb, size_t i, size_t j, size_t K, const float *A, size_t lda, const float *B,
                       size_t ldb);

#endif
