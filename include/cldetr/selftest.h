/* Self-checks that `cldetr selftest` runs on a device: each compares one case of
 * an op (or GEMM) on the device with its plain C host reference. */
#ifndef CLDETR_SELFTEST_H
#define CLDETR_SELFTEST_H

#include <stddef.h>
#include "cldetr/device.h"

typedef struct {
    const char *name;
    /* 0 = pass; -1 = fail with a one-line reason (first mismatch, index, values) in msg */
    int (*run)(cd_device *dev, char *msg, size_t msg_len);
} cd_selftest;

/* Each family's table ends with {NULL, NULL}. */
extern const cd_selftest cd_selftests_gemm[];
extern const cd_selftest cd_selftests_conv[];   /* conv2d, batch norm, max pool */
extern const cd_selftest cd_selftests_ops[];   /* element-wise, dropout, reductions, softmax, layer norm, permute */

#endif
