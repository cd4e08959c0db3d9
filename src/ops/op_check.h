/* The op-check harness shared by `cldetr selftest` (src/cli/selftest.c), the
 * tests in tests/ops and the op benchmarks in bench/:
 *
 * - cd_op_cases[] (cldetr/selftest.h, src/ops/op_cases.c): ONE table of op
 *   cases (op, shapes, parameters) with the function that checks each on a
 *   device against the host references of src/ops/op_ref.h;
 * - device buffers: op_upload puts a host array at a float offset inside a
 *   NaN-filled buffer (guards on both sides), op_download reads it back,
 *   op_guards_intact checks the guards, op_check_device compares;
 * - op_compare: |ref - got| <= atol + rtol |ref| (NaN fails), naming the first
 *   mismatches and where;
 * - op_fd_grad: central finite differences in double on the host;
 * - op_rand: inputs from the one host generator (cd_rng_*), rounded to float.
 * The host GEMM reference is cd_gemm_ref (cldetr/selftest.h). */
#ifndef CLDETR_OPS_OP_CHECK_H
#define CLDETR_OPS_OP_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include "cldetr/device.h"

#define OP_GUARD 5   /* NaN floats after each tensor (and at least this many before) */

/* n values uniform in [lo, hi) from *rng, rounded to float so host and device see the same input (malloc'd). */
double *op_rand(uint64_t *rng, size_t n, double lo, double hi);
/* n zeros (calloc'd, never NULL). */
double *op_zeros(size_t n);

/* A device copy of h (n floats; h NULL: NaN, for outputs that must be written, not read) at
 * float offset OP_GUARD + off of a buffer that is NaN elsewhere. Free with op_release. */
cd_mem op_upload(cd_device *dev, const double *h, size_t n, size_t off);
/* The n floats at m as doubles (malloc'd). */
double *op_download(cd_device *dev, cd_mem m, size_t n);
/* Every float of m's buffer before m and the OP_GUARD floats after m + n are still NaN. */
int op_guards_intact(cd_device *dev, cd_mem m, size_t n);
void op_release(cd_device *dev, cd_mem m);

/* Compare got with ref: |ref - got| <= atol + rtol |ref| everywhere, NaN fails. Returns
 * the number of mismatches; msg (may be NULL) gets "what: k of n mismatched: [i] got G,
 * reference R; ..." for the first few, or "what: max abs err E" when all match. */
size_t op_compare(const char *what, const double *ref, const double *got, size_t n, double atol, double rtol,
                  char *msg, size_t msg_len);
/* op_compare of the device tensor m (n floats) with ref, guards included; 0 = pass, -1 = fail. */
int op_check_device(cd_device *dev, const char *what, cd_mem m, const double *ref, size_t n, double atol,
                    double rtol, char *msg, size_t msg_len);

/* grad[j] = (loss(x + h e_j) - loss(x - h e_j)) / 2h for j < n, in double; loss reads x through ctx. */
void op_fd_grad(double *grad, double *x, size_t n, double h, double (*loss)(void *ctx), void *ctx);
/* sum_i a[i] * b[i] in double */
double op_dot(const double *a, const double *b, size_t n);

#endif
