/* Permute up to 4 axes (attention's (L, B, NH, hd) <-> (B, NH, L, hd)), with
 * acc; the backward is the same op with the inverse permutation. Kernels:
 * permute4_3d in cl/permute.cl (permute4 past its 32-bit limits; on CPUs
 * permute4_rows when rows of a multiple of 16 stay last). */
#include "cldetr/ops.h"
#include "ops/op_ref.h"
#include "ops/reduce_util.h"

/* Check perm is a permutation of 0..3; out dims and x strides of out's axes. */
static void permute_plan(const size_t dims[4], const int perm[4], size_t od[4], size_t xs[4]) {
    size_t stride[4];
    int seen[4] = {0, 0, 0, 0};
    stride[3] = 1;
    for (int a = 2; a >= 0; a--) stride[a] = stride[a + 1] * dims[a + 1];
    for (int a = 0; a < 4; a++) {
        if (perm[a] < 0 || perm[a] > 3 || seen[perm[a]]++)
            cd_fatal("op_permute: perm {%d, %d, %d, %d} is not a permutation of 0..3 (a bug in the caller)",
                     perm[0], perm[1], perm[2], perm[3]);
        od[a] = dims[perm[a]];
        xs[a] = stride[perm[a]];
    }
}

static int permute_1d;

int op_permute_set_1d(int on) {
    int old = permute_1d;
    permute_1d = on;
    return old;
}

/* out (dims[perm[0]], .., dims[perm[3]]) (=/+=) x (dims[0], .., dims[3]) permuted */
void op_permute(cd_device *dev, cd_mem out, cd_mem x, const size_t dims[4], const int perm[4], int acc) {
    size_t od[4], xs[4];
    permute_plan(dims, perm, od, xs);
    size_t n = dims[0] * dims[1] * dims[2] * dims[3];
    if (n == 0) return;
    size_t lim24 = (size_t)1 << 24;   /* od[0] * od[1] below it bounds od[1] too */
    if (!permute_1d && n < ((size_t)1 << 31) && od[0] * od[1] < lim24 && od[2] < lim24 && od[3] < lim24) {
        if (ops_row_kernels(dev) && xs[3] == 1 && od[3] % 16 == 0) {   /* CPUs: a row per work-item */
            CD_LAUNCH2(dev, "permute4_rows", od[2], od[0] * od[1], KM(out), KM(x), KI(od[1]), KI(od[2]), KI(od[3]),
                       KI(xs[0]), KI(xs[1]), KI(xs[2]), KI(od[0] * od[1]), KF(1.0f / (float)od[1]), KI(acc));
            return;
        }
        CD_LAUNCH3(dev, "permute4_3d", od[3], od[2], od[0] * od[1], KM(out), KM(x), KI(od[1]), KI(od[2]), KI(od[3]),
                   KI(xs[0]), KI(xs[1]), KI(xs[2]), KI(xs[3]), KI(od[0] * od[1]), KF(1.0f / (float)od[1]), KI(acc));
        return;
    }
    CD_LAUNCH1(dev, "permute4", n, KM(out), KM(x), KUL(n), KUL(od[1]), KUL(od[2]), KUL(od[3]), KUL(xs[0]),
               KUL(xs[1]), KUL(xs[2]), KUL(xs[3]), KI(acc));
}

void op_permute_ref(double *out, const double *x, const size_t dims[4], const int perm[4], int acc) {
    size_t od[4], xs[4];
    permute_plan(dims, perm, od, xs);
    size_t k = 0;
    for (size_t a = 0; a < od[0]; a++)
        for (size_t b = 0; b < od[1]; b++)
            for (size_t c = 0; c < od[2]; c++)
                for (size_t d = 0; d < od[3]; d++, k++)
                    out[k] = (acc ? out[k] : 0.0) + x[a * xs[0] + b * xs[1] + c * xs[2] + d * xs[3]];
}
