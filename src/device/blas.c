/* GEMM through CLBlast, row-major, with a reused temporary buffer for CLBlast's
 * pad/transpose pre-pass (CLBlast otherwise allocates one per call) and the
 * per-device tuning applied at open.
 *
 * Tunings live in the cache folder as "gemm-<device key>.bin" holding text
 * lines "KERNEL PARAM=VALUE PARAM=VALUE ..." (e.g. "Xgemm MWG=128 NWG=64 ...");
 * `cldetr tune` writes them. */
#include <stdlib.h>
#include <string.h>
#include <clblast_c.h>

#include "cldetr/device.h"

uint64_t cd_blas_tuning_key(const cd_device *dev);

uint64_t cd_blas_tuning_key(const cd_device *dev) {
    uint64_t h = CD_FNV_SEED;
    const char *parts[] = {"gemm-tuning-v1", dev->info.name, dev->info.vendor, dev->info.driver_version,
                           dev->info.platform_version};
    for (size_t i = 0; i < CD_ARRAY_LEN(parts); i++) h = cd_fnv1a(parts[i], strlen(parts[i]) + 1, h);
    return h;
}

/* Apply "KERNEL P=V P=V ..." lines. Returns the number of kernels overridden. */
static int apply_tuning_text(cd_device *dev, char *text) {
    int applied = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char kernel[64];
        const char *names[64];
        size_t values[64], n = 0;
        char *save = NULL, *tok = strtok_r(line, " \t", &save);
        if (!tok || tok[0] == '#') continue;
        snprintf(kernel, sizeof kernel, "%s", tok);
        while ((tok = strtok_r(NULL, " \t", &save)) && n < 64) {
            char *eq = strchr(tok, '=');
            if (!eq) continue;
            *eq = '\0';
            names[n] = tok;
            values[n++] = strtoul(eq + 1, NULL, 10);
        }
        if (n && CLBlastOverrideParameters(dev->info.device, kernel, CLBlastPrecisionSingle, n, names, values) == 0)
            applied++;
        else if (dev->verbose)
            fprintf(stderr, "cldetr: GEMM tuning for %s was not accepted by CLBlast; ignored\n", kernel);
    }
    return applied;
}

void cd_blas_init(cd_device *dev) {
    size_t len;
    char *text = cd_cache_load("gemm", cd_blas_tuning_key(dev), &len);
    if (!text) return;
    text = cd_xrealloc(text, len + 1);
    text[len] = '\0';
    int n = apply_tuning_text(dev, text);
    if (dev->verbose) fprintf(stderr, "cldetr: applied %d GEMM tuning(s) from the cache\n", n);
    free(text);
}

static CLBlastTranspose tr(int t) { return t ? CLBlastTransposeYes : CLBlastTransposeNo; }

static void ensure_temp(cd_device *dev, size_t bytes) {
    if (bytes <= dev->blas_temp_bytes) return;
    if (dev->blas_temp) clReleaseMemObject(dev->blas_temp);
    cl_int err;
    dev->blas_temp = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS)
        cd_fatal("out of device memory for the GEMM scratch buffer (%.1f MiB): %s\n  hint: %s",
                 bytes / 1048576.0, cd_cl_status_name(err),
                 dev->oom_hint ? dev->oom_hint : cd_cl_status_hint(err));
    dev->blas_temp_bytes = bytes;
}

void cd_gemm(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
             float alpha, cd_mem A, size_t lda, cd_mem B, size_t ldb,
             float beta, cd_mem C, size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {   /* C = beta*C; CLBlast rejects K = 0 */
        if (beta == 0.0f) {
            for (size_t i = 0; i < M; i++) cd_fill(dev, cd_at(C, i * ldc), 0.0f, N);
            return;
        }
        cd_fatal("cd_gemm: K = 0 with beta != 0 is not supported");
    }
    size_t temp = 0;
    CLBLAST_CHECK(CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K,
                                             A.off, lda, B.off, ldb, C.off, ldc, &dev->queue, &temp));
    cl_event ev = NULL, *evp = dev->profiling ? &ev : NULL;
    if (temp > 0) {
        ensure_temp(dev, temp);
        CLBLAST_CHECK(CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha,
                                                 A.mem, A.off, lda, B.mem, B.off, ldb, beta,
                                                 C.mem, C.off, ldc, &dev->queue, evp, dev->blas_temp));
    } else {
        CLBLAST_CHECK(CLBlastSgemm(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha,
                                   A.mem, A.off, lda, B.mem, B.off, ldb, beta, C.mem, C.off, ldc,
                                   &dev->queue, evp));
    }
    if (ev) cd_profile_add_event(dev, ta ? (tb ? "gemm_TT" : "gemm_TN") : (tb ? "gemm_NT" : "gemm_NN"), ev);
}

void cd_gemm_batched(cd_device *dev, int ta, int tb, size_t M, size_t N, size_t K,
                     float alpha, cd_mem A, size_t lda, size_t strideA,
                     cd_mem B, size_t ldb, size_t strideB,
                     float beta, cd_mem C, size_t ldc, size_t strideC, size_t batch) {
    if (M == 0 || N == 0 || batch == 0) return;
    if (batch == 1) { cd_gemm(dev, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
    if (K == 0) cd_fatal("cd_gemm_batched: K = 0 is not supported");
    cl_event ev = NULL, *evp = dev->profiling ? &ev : NULL;
    CLBLAST_CHECK(CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, tr(ta), tr(tb), M, N, K, alpha,
                                             A.mem, A.off, lda, strideA, B.mem, B.off, ldb, strideB, beta,
                                             C.mem, C.off, ldc, strideC, batch, &dev->queue, evp));
    if (ev) cd_profile_add_event(dev, "gemm_batched", ev);
}
