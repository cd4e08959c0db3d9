/* Loader throughput (images/s): decode + augment + normalise + pad, through the
 * worker threads, for
 *   1. the synthetic shapes at 128 px with a small training augmentation
 *      (scales 96..160, max 213, crop 64..128), and
 *   2. 640x480 JPEGs with the full official augmentation (scales 480..800,
 *      max 1333, RandomSelect with the 384..600 crop),
 * each with 1 and 2 workers. Data is written to a temporary folder first.
 * usage: bench_data [--shapes N] [--jpegs N] [--batch B] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>   /* implementation compiled in libcldetr (src/data/image.c) */

#include "cldetr/common.h"
#include "cldetr/data.h"
#include "../tests/fixtures.h"   /* the temporary folder, the shapes dataset and its split */

static double run(data_dataset *d, const augment_opts *ao, int workers, size_t batch, size_t *images) {
    loader_opts lo;
    loader_opts_default(&lo, 1);
    lo.batch_size = batch; lo.workers = workers; lo.prefetch = 4;
    data_loader *L = loader_create(d, &lo, ao);
    if (!L) cd_fatal("%s", cd_errbuf());
    const data_batch *b;
    size_t n = 0;
    double t0 = cd_now();
    int rc;
    while ((rc = loader_next(L, &b)) == 1) n += b->B;
    if (rc < 0) cd_fatal("%s", cd_errbuf());
    double dt = cd_now() - t0;
    loader_destroy(L);
    *images = n;
    return n / dt;
}

static void write_jpegs(const char *dir, int n) {
    char p[600];
    snprintf(p, sizeof p, "%s/jpg.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) cd_fatal("cannot write %s", p);
    fprintf(f, "{\"categories\": [{\"id\": 1, \"name\": \"thing\"}],\n \"images\": [");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s{\"id\": %d, \"file_name\": \"%03d.jpg\", \"width\": 640, \"height\": 480}", i ? ",\n" : "", i + 1, i);
    fprintf(f, "],\n \"annotations\": [");
    uint8_t *px = cd_xmalloc(640 * 480 * 3);
    data_rng r = data_rng_make(5, 0, 0);
    for (int i = 0; i < n; i++) {
        for (int y = 0; y < 480; y++)
            for (int x = 0; x < 640; x++)
                for (int c = 0; c < 3; c++)
                    px[(y * 640 + x) * 3 + c] = (uint8_t)(((x * (c + 1) + y * (3 - c) + i * 17) & 255) / 2 +
                                                          (data_rng_u64(&r) & 63));
        snprintf(p, sizeof p, "%s/%03d.jpg", dir, i);
        if (!stbi_write_jpg(p, 640, 480, 3, px, 90)) cd_fatal("cannot write %s", p);
        for (int k = 0; k < 3; k++)
            fprintf(f, "%s{\"id\": %d, \"image_id\": %d, \"category_id\": 1, \"bbox\": [%d, %d, 150, 120], "
                       "\"area\": 18000, \"iscrowd\": 0}", i || k ? ",\n" : "", 3 * i + k + 1, i + 1, 40 + 150 * k,
                    60 + 100 * k);
    }
    fprintf(f, "]}\n");
    fclose(f);
    free(px);
}

int main(int argc, char **argv) {
    int n_shapes = 256, n_jpegs = 48;
    size_t batch = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shapes")) n_shapes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jpegs")) n_jpegs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = (size_t)atoi(argv[i + 1]);
    }
    char tmp[512];
    if (!t_tmpdir(tmp, sizeof tmp, "cldetr_bench_data")) cd_fatal("mkdtemp failed");
    if (t_make_shapes(tmp, n_shapes, 0, 128, 1, 0)) cd_fatal("%s", cd_errbuf());
    write_jpegs(tmp, n_jpegs);
    printf("loader throughput, batch %zu, %ld CPUs online\n", batch, sysconf(_SC_NPROCESSORS_ONLN));

    data_dataset *d = t_open_split(tmp, "train");
    if (!d) cd_fatal("%s", cd_errbuf());
    augment_opts ao;
    augment_opts_default(&ao);
    ao.n_scales = 5;
    for (int i = 0; i < 5; i++) ao.scales[i] = 96 + 16 * i;
    ao.max_size = 213;
    ao.select_scales[0] = 100; ao.select_scales[1] = 125; ao.select_scales[2] = 150;
    ao.crop_min = 64; ao.crop_max = 128;
    for (int w = 1; w <= 2; w++) {
        size_t n;
        double ips = run(d, &ao, w, batch, &n);
        printf("shapes 128px, small train aug : %d worker%s %8.1f images/s (%zu images)\n", w, w > 1 ? "s" : " ", ips, n);
    }
    data_close(d);

    char ann[600];
    snprintf(ann, sizeof ann, "%s/jpg.json", tmp);
    data_opts dop;
    data_opts_default(&dop);
    dop.ann_file = ann; dop.image_dir = tmp;
    d = data_open(&dop);
    if (!d) cd_fatal("%s", cd_errbuf());
    augment_opts_default(&ao);
    for (int w = 1; w <= 2; w++) {
        size_t n;
        double ips = run(d, &ao, w, batch < 2 ? batch : 2, &n);
        printf("640x480 JPEG, full official aug: %d worker%s %8.1f images/s (%zu images)\n", w, w > 1 ? "s" : " ", ips, n);
    }
    data_close(d);
    t_rmtree(tmp);
    return 0;
}
