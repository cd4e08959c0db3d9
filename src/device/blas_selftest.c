/* GEMM self-checks: CLBlast against a plain C reference on odd sizes, nonzero
 * offsets, every transpose pair, alpha/beta, and strided batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/selftest.h"

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static float frand(void) { return (float)cd_rng_range(&rng_state, -1, 1); }

double cd_gemm_ref_dot(int ta, int tb, size_t i, size_t j, size_t K, const float *A, size_t lda, const float *B,
                       size_t ldb) {
    double s = 0;
    for (size_t k = 0; k < K; k++)
        s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)(tb ? B[j * ldb + k] : B[k * ldb + j]);
    return s;
}

void cd_gemm_ref(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                 const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double s = alpha * cd_gemm_ref_dot(ta, tb, i, j, K, A, lda, B, ldb);
            C[i * ldc + j] = (float)(beta == 0.0f ? s : s + (double)beta * C[i * ldc + j]);
        }
}

/* One GEMM case with leading dimensions padded by 3 and offsets of 5/7/11. */
static int check_case(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K, size_t batch,
                      char *msg, size_t n) {
    size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    size_t lda = ac + 3, ldb = bc + 3, ldc = N + 3;
    size_t oa = 5, ob = 7, oc = 11;
    size_t sa = ar * lda + 2, sb = br * ldb + 1, sc = M * ldc + 4;
    size_t na = oa + sa * batch, nb = ob + sb * batch, nc = oc + sc * batch;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C),
          *R = malloc(nc * sizeof *R);
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < nc; i++) R[i] = C[i] = frand();
    float alpha = 0.75f, beta = 0.5f;
    cd_mem dA = cd_alloc(dev, na, "selftest A"), dB = cd_alloc(dev, nb, "selftest B"), dC = cd_alloc(dev, nc, "selftest C");
    cd_write(dev, dA, A, na);
    cd_write(dev, dB, B, nb);
    cd_write(dev, dC, C, nc);
    if (batch == 1)
        cd_gemm(dev, ta, tb, M, N, K, alpha, cd_at(dA, oa), lda, cd_at(dB, ob), ldb, beta, cd_at(dC, oc), ldc);
    else
        cd_gemm_batched(dev, ta, tb, M, N, K, alpha, cd_at(dA, oa), lda, sa, cd_at(dB, ob), ldb, sb,
                        beta, cd_at(dC, oc), ldc, sc, batch);
    cd_read(dev, C, dC, nc);
    for (size_t b = 0; b < batch; b++)
        cd_gemm_ref(ta, tb, M, N, K, alpha, A + oa + b * sa, lda, B + ob + b * sb, ldb, beta, R + oc + b * sc, ldc);
    int bad = 0;
    for (size_t i = 0; i < nc && !bad; i++) {
        double tol = 1e-5 + 1e-4 * sqrt((double)K) * (1 + fabs(R[i]));
        if (!(fabs((double)C[i] - R[i]) <= tol)) {   /* also catches NaN */
            snprintf(msg, n, "%c%c M=%zu N=%zu K=%zu batch=%zu: C[%zu] = %g, reference %g",
                     ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, batch, i, C[i], R[i]);
            bad = 1;
        }
    }
    cd_free(dev, dA); cd_free(dev, dB); cd_free(dev, dC);
    free(A); free(B); free(C); free(R);
    return bad ? -1 : 0;
}

static int gemm_transposes(cd_device *dev, const cd_selftest *self, char *msg, size_t n) {
    (void)self;
    static const size_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {17, 33, 65}, {64, 31, 129}, {3, 200, 9}};
    for (int t = 0; t < 4; t++)
        for (size_t s = 0; s < CD_ARRAY_LEN(shapes); s++)
            if (check_case(dev, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 1, msg, n)) return -1;
    snprintf(msg, n, "NN NT TN TT x %zu odd shapes, offsets and padded strides", CD_ARRAY_LEN(shapes));
    return 0;
}

static int gemm_batched(cd_device *dev, const cd_selftest *self, char *msg, size_t n) {
    (void)self;
    for (int t = 0; t < 4; t++)
        if (check_case(dev, t & 1, t >> 1, 13, 9, 32, 5, msg, n)) return -1;
    snprintf(msg, n, "strided-batched, 5 x (13,9,32), all transposes");
    return 0;
}

static int gemm_large(cd_device *dev, const cd_selftest *self, char *msg, size_t n) {
    (void)self;
    if (check_case(dev, 1, 0, 96, 70, 300, 1, msg, n)) return -1;
    if (check_case(dev, 0, 1, 130, 64, 257, 1, msg, n)) return -1;
    snprintf(msg, n, "TN 96x70x300, NT 130x64x257");
    return 0;
}

const cd_selftest cd_selftests_gemm[] = {
    {"gemm transposes", "gemm", gemm_transposes, {0}},
    {"gemm strided-batched", "gemm", gemm_batched, {0}},
    {"gemm larger", "gemm", gemm_large, {0}},
    {NULL, NULL, NULL, {0}},
};
