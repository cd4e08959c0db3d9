/* Fuzz the COCO loader (src/data/coco.c: the segmentation blanker, then
 * cJSON, then the field checks) through coco_load on a temporary file, from
 * two evaluation fixtures and a file made here with every optional field and
 * the three kinds of segmentation (polygons, RLE with a counts string, RLE
 * with a counts list). A dataset that loads must hold together: every
 * annotation inside its image's range and pointing at its image, every
 * category and image id found by the index. */
#include "../check.h"
#include "fuzz.h"

#include "cldetr/coco.h"

static const char made[] =
    "{\"info\": {\"description\": \"segmentation \\\"test\\\" [x]\"},\n"
    " \"images\": [{\"id\": 7, \"file_name\": \"a/b \\u00e9.jpg\", \"width\": 64, \"height\": 48},\n"
    "             {\"id\": 9007199254740992, \"file_name\": \"c.png\"}],\n"
    " \"categories\": [{\"id\": 1, \"name\": \"person\", \"supercategory\": \"human\"},\n"
    "                  {\"id\": 90, \"name\": \"tooth\\\"brush\"}],\n"
    " \"annotations\": [\n"
    "  {\"id\": 1, \"image_id\": 7, \"category_id\": 90, \"bbox\": [1.5, 2, 30, 20.25],\n"
    "   \"segmentation\": [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], \"area\": 600, \"iscrowd\": 0},\n"
    "  {\"id\": 2, \"image_id\": 7, \"category_id\": 1, \"bbox\": [0, 0, 64, 48], \"iscrowd\": true,\n"
    "   \"segmentation\": {\"size\": [48, 64], \"counts\": \"a]1[0\\\\ }{ \\\"]\"}},\n"
    "  {\"id\": 3, \"image_id\": 9007199254740992, \"category_id\": 1, \"bbox\": [5, 5, 1e-3, 2e2],\n"
    "   \"segmentation\": {\"size\": [2, 2], \"counts\": [0, 4]}, \"iscrowd\": 1}\n"
    " ]}\n";

static fz_buf seeds[3];
static size_t n_seeds;
static const char *const dict[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "\\\"", "\\u", "\\ud800", "null",
                                   "true", "false", "-", "1e999", "-0", "0.5", "9007199254740993",
                                   "\"segmentation\"", "\"segmentation\": [", "\"segmentation\": {",
                                   "\"id\"", "\"image_id\"", "\"category_id\"", "\"bbox\"", "\"iscrowd\"",
                                   "\"area\"", "\"images\"", "\"annotations\"", "\"categories\"", "\n"};

/* Half the cases keep the JSON valid: one to three values swapped (fz_json_swap). */
static void make(fz_buf *out, uint64_t *r, void *ctx) {
    (void)ctx;
    const fz_buf *seed = &seeds[fz_below(r, n_seeds)];
    fz_set(out, seed->b, seed->n);
    if (cd_rng_next(r) & 1) fz_mutate(out, r, dict, CD_ARRAY_LEN(dict));
    else fz_json_swap(out, 0, out->n, r);
}

static int target(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    if (fz_write_file(fz_file, data, len) != 0) return cd_seterr("cannot write %s", fz_file);
    coco_dataset ds;
    if (coco_load(&ds, fz_file) != 0) return -1;
    int bad = 0;
    for (size_t i = 0; i < ds.n_images && !bad; i++) {
        const coco_image *im = &ds.images[i];
        if (!im->file_name || im->ann_start > ds.n_anns || im->ann_count > ds.n_anns - im->ann_start) {
            t_diag("images[%zu]: annotations [%zu, +%zu) of %zu", i, im->ann_start, im->ann_count, ds.n_anns);
            bad = 1;
        } else if (coco_find_image(&ds, im->id) != (long)i) {
            t_diag("images[%zu]: id %lld found at %ld", i, (long long)im->id, coco_find_image(&ds, im->id));
            bad = 1;
        }
        for (size_t a = im->ann_start; !bad && a < im->ann_start + im->ann_count; a++)
            if (ds.anns[a].image_index != i || ds.anns[a].image_id != im->id) {
                t_diag("annotation %zu in the range of image %zu points at image %zu", a, i, ds.anns[a].image_index);
                bad = 1;
            }
    }
    for (size_t a = 0; a < ds.n_anns && !bad; a++) {
        const coco_ann *an = &ds.anns[a];
        if (an->image_index >= ds.n_images || coco_find_category(&ds, an->category_id) < 0 ||
            (an->iscrowd != 0 && an->iscrowd != 1)) {
            t_diag("annotation %zu: image index %zu of %zu, category %lld, iscrowd %d", a, an->image_index,
                   ds.n_images, (long long)an->category_id, an->iscrowd);
            bad = 1;
        }
    }
    for (size_t c = 0; c < ds.n_cats && !bad; c++)
        if (!ds.cats[c].name || coco_find_category(&ds, ds.cats[c].id) != (long)c) {
            t_diag("categories[%zu]: id %lld not found at its index", c, (long long)ds.cats[c].id);
            bad = 1;
        }
    coco_free(&ds);
    return bad;
}

int main(void) {
    if (fz_tmp_init(".json") != 0) {
        printf("1..0 # SKIP cannot create a temporary folder\n");
        return 0;
    }
    static const char *const files[] = {"tests/fixtures/eval/sparse.gt.json", "tests/fixtures/eval/crowd.gt.json"};
    size_t n = 0;
    for (size_t i = 0; i < CD_ARRAY_LEN(files); i++)
        if (fz_seed_file(&seeds[n], fz_source(files[i])) == 0) n++;
    memset(&seeds[n], 0, sizeof seeds[n]);
    fz_set(&seeds[n++], made, sizeof made - 1);
    n_seeds = n;
    fz_spec spec = {"COCO JSON", seeds, n, dict, CD_ARRAY_LEN(dict), make, target, NULL, 500};
    t_ok(n == CD_ARRAY_LEN(files) + 1, "COCO: %zu seeds (%zu fixtures, 1 made here)", n, CD_ARRAY_LEN(files));
    fz_run(&spec);
    for (size_t i = 0; i < n; i++) free(seeds[i].b);
    fz_tmp_done();
    return t_done();
}
