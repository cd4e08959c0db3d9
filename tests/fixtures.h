/* tests/fixtures.h — what tests make at run time: a temporary folder and its
 * removal, text files in it, a tiny synthetic shapes dataset and its splits
 * opened through the data layer, a forged checkpoint header. Header-only and
 * without TAP (the callers check the results), so bench/bench_data.c uses it
 * too. */
#ifndef CLDETR_TEST_FIXTURES_H
#define CLDETR_TEST_FIXTURES_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/common.h"
#include "cldetr/data.h"

/* Keep a malloc'd string until exit (tests that hand out many paths); returns it. */
static char *t_kept[1024];
static int t_n_kept;
static inline void t_free_kept(void) {
    for (int i = 0; i < t_n_kept; i++) free(t_kept[i]);
}
static inline __attribute__((unused)) const char *t_keep(char *p) {
    if (t_n_kept == 0) atexit(t_free_kept);
    if (t_n_kept < (int)CD_ARRAY_LEN(t_kept)) t_kept[t_n_kept++] = p;
    return p;
}

/* A fresh folder $TMPDIR/STEM-XXXXXX (/tmp without TMPDIR) written into dir
 * (n bytes); returns dir, or NULL when it could not be made. */
static inline char *t_tmpdir(char *dir, size_t n, const char *stem) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", stem);
    return mkdtemp(dir);
}

static inline int t_rmtree_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* Remove dir and all below it; a note on stderr when something stays. */
static inline int t_rmtree(const char *dir) {
    int rc = nftw(dir, t_rmtree_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc) fprintf(stderr, "could not remove %s\n", dir);
    return rc ? -1 : 0;
}

/* Write text to DIR/NAME; returns the path (static storage, until the next
 * call). A file that cannot be written ends the test. */
static inline const char *t_write_in(const char *dir, const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
    return path;
}

/* A shapes dataset in root (shapes_generate, no progress lines): n_train +
 * n_val images of size px from seed, 1 to max_objects objects each
 * (max_objects 0: the generator's default). Returns 0 or -1 with cd_errbuf(). */
static inline int t_make_shapes(const char *root, int n_train, int n_val, int size, uint64_t seed, int max_objects) {
    shapes_opts so;
    shapes_opts_default(&so);
    so.dir = root;
    so.n_train = n_train;
    so.n_val = n_val;
    so.size = size;
    so.seed = seed;
    if (max_objects) so.max_objects = max_objects;
    so.progress = 0;
    return shapes_generate(&so);
}

/* The split ("train" or "val") of a shapes-style folder: ROOT/annotations/SPLIT.json
 * with its images in ROOT/SPLIT, default data options. NULL with cd_errbuf(). */
static inline data_dataset *t_open_split(const char *root, const char *split) {
    char ann[1024], images[1024];
    snprintf(ann, sizeof ann, "%s/annotations/%s.json", root, split);
    snprintf(images, sizeof images, "%s/%s", root, split);
    data_opts dop;
    data_opts_default(&dop);
    dop.ann_file = ann;
    dop.image_dir = images;
    return data_open(&dop);
}

/* A copy of the checkpoint from at to with the header's u64 at byte pos set
 * to value and the checksum (cd_fnv1a over every byte before it) recomputed:
 * a forged file that only the range checks can refuse. from may be to. */
static inline int t_forge_ckpt_u64(const char *from, const char *to, long pos, uint64_t value) {
    size_t len;
    unsigned char *data = (unsigned char *)cd_read_file(from, &len);
    if (!data || len < 16 || (size_t)pos + 8 > len - 8) { free(data); return -1; }
    for (int i = 0; i < 8; i++) data[pos + i] = (unsigned char)(value >> (8 * i));
    uint64_t h = cd_fnv1a(data, len - 8, CD_FNV_SEED);
    for (int i = 0; i < 8; i++) data[len - 8 + i] = (unsigned char)(h >> (8 * i));
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f) != 0) rc = -1;
    free(data);
    return rc;
}

#endif
