/* The gradient average of a data-parallel step, timed as train_step does it
 * (src/app/step.c): the flat gradient buffer read back from the device, one
 * MPI all-reduce (sum) on the host, the scale by 1/N, written back. The
 * default size is DETR-R50's 41.3M parameters (165 MB of float32).
 *   mpirun -np 2 build/bench/bench_allreduce [--floats N] [--iters K]
 * Rank 0 prints the median over K iterations (after one warm-up) of each part
 * and of the whole; every rank checks the sum. docs/parallel.md has the numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/device.h"
#include "cldetr/dist.h"

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    size_t n = 41300000;
    int iters = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--floats") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_allreduce [--floats N] [--iters K]\n"); return 2; }
    }
    if (n == 0 || iters < 1 || iters > 1000) { fprintf(stderr, "bench_allreduce: need N >= 1, 1 <= K <= 1000\n"); return 2; }
    if (dist_init() < 0) { fprintf(stderr, "bench_allreduce: %s\n", cd_errbuf()); return 1; }
    int rank = dist_rank(), world = dist_size();
    cd_device *dev = cd_open_local(NULL, 0, dist_local_rank());
    if (!dev) { fprintf(stderr, "bench_allreduce: %s: %s\n", dist_who(), cd_errbuf()); dist_abort(1); }
    float *h = cd_xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = (float)(rank + 1) * (float)(i % 1000) * 1e-3f;
    cd_mem g = cd_alloc(dev, n, "gradients");
    cd_write(dev, g, h, n);
    double *t_read = cd_xcalloc((size_t)iters, sizeof(double)), *t_reduce = cd_xcalloc((size_t)iters, sizeof(double));
    double *t_write = cd_xcalloc((size_t)iters, sizeof(double)), *t_all = cd_xcalloc((size_t)iters, sizeof(double));
    for (int it = -1; it < iters; it++) {       /* iteration -1: the warm-up */
        dist_barrier();
        double t0 = cd_now();
        cd_read(dev, h, g, n);
        double t1 = cd_now();
        dist_allreduce_sum_f32(h, n);
        float inv = 1.0f / (float)world;
        for (size_t i = 0; i < n; i++) h[i] *= inv;
        double t2 = cd_now();
        cd_write(dev, g, h, n);
        cd_finish(dev);
        double t3 = cd_now();
        if (it >= 0) { t_read[it] = t1 - t0; t_reduce[it] = t2 - t1; t_write[it] = t3 - t2; t_all[it] = t3 - t0; }
        /* the mean of (r + 1) * x over r = 0..N-1 is (N + 1) / 2 * x; put the gradients back for the next round */
        size_t i = 999;
        float want = (float)(world + 1) / 2 * 0.999f;
        if (i < n && !(h[i] > want * 0.999f && h[i] < want * 1.001f)) {
            fprintf(stderr, "bench_allreduce: %s: element %zu is %g, expected %g\n", dist_who(), i, h[i], want);
            dist_abort(1);
        }
        for (size_t k = 0; k < n; k++) h[k] = (float)(rank + 1) * (float)(k % 1000) * 1e-3f;
        cd_write(dev, g, h, n);
    }
    if (rank == 0) {
        double mb = n * 4.0 / 1e6;
        printf("%d process%s, %zu floats (%.1f MB), device %s, median of %d:\n", world, world == 1 ? "" : "es", n, mb,
               dev->info.name, iters);
        printf("  read back     %8.1f ms\n", 1e3 * median(t_read, iters));
        printf("  all-reduce    %8.1f ms  (with the 1/N scale; ring traffic 2(N-1)/N x %.0f MB = %.0f MB a process)\n",
               1e3 * median(t_reduce, iters), mb, 2.0 * (world - 1) / world * mb);
        printf("  write back    %8.1f ms\n", 1e3 * median(t_write, iters));
        printf("  per step      %8.1f ms\n", 1e3 * median(t_all, iters));
    }
    cd_free(dev, g);
    cd_close(dev);
    free(h); free(t_read); free(t_reduce); free(t_write); free(t_all);
    dist_finalize();
    return 0;
}
