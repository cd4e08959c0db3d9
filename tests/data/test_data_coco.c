/* coco_load, cd_json_parse_file and coco_results_load on good and bad files:
 * grouping of annotations per image, defaults, and the message of every
 * error class (file, line:col, index, field). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/coco.h"
#include "cldetr/cocoeval.h"
#include "cldetr/common.h"

static char dir[256];

static const char *write_tmp(const char *name, const char *text) { return t_write_in(dir, name, text); }

/* coco_load of text must fail with a message containing every needle. */
static void load_fails(const char *what, const char *text, const char *needle1, const char *needle2) {
    const char *path = write_tmp("bad.json", text);
    coco_dataset ds;
    int rc = coco_load(&ds, path);
    const char *msg = cd_errbuf();
    int ok = rc == -1 && strstr(msg, path) && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2));
    t_ok(ok, "coco_load %s -> \"%s\"", what, rc ? msg : "(loaded!)");
    if (!rc) coco_free(&ds);
}

#define IMGS "\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 64, \"height\": 48}, " \
             "{\"id\": 7, \"file_name\": \"b.jpg\"}]"
#define CATS "\"categories\": [{\"id\": 3, \"name\": \"cat\"}, {\"id\": 1, \"name\": \"dog\", \"supercategory\": \"animal\"}]"

static void good_file(void) {
    const char *text =
        "{" IMGS ",\n" CATS ",\n\"annotations\": [\n"
        " {\"id\": 10, \"image_id\": 7, \"category_id\": 3, \"bbox\": [1, 2, 3, 4], \"area\": 5.5, \"iscrowd\": 0,\n"
        "  \"segmentation\": [[1, 2, 3, 4, 5, 6]]},\n"
        " {\"id\": 11, \"image_id\": 1, \"category_id\": 1, \"bbox\": [0, 0, 10, 20], \"segmentation\": "
        "{\"counts\": \"a]b[}{\\\"\", \"size\": [4, 4]}, \"iscrowd\": 1},\n"
        " {\"id\": 12, \"image_id\": 7, \"category_id\": 1, \"bbox\": [5, 5, 2, 2], \"iscrowd\": true}\n"
        "], \"info\": {\"year\": 2017}}\n";
    const char *path = write_tmp("good.json", text);
    coco_dataset ds;
    int rc = coco_load(&ds, path);
    t_ok(rc == 0, "coco_load a small valid file %s", rc ? cd_errbuf() : "");
    if (rc) return;
    t_ok(ds.n_images == 2 && ds.n_anns == 3 && ds.n_cats == 2, "counts 2 images, 3 annotations, 2 categories");
    t_ok(ds.images[0].id == 1 && ds.images[0].width == 64 && ds.images[0].height == 48 &&
         !strcmp(ds.images[0].file_name, "a.jpg") && ds.images[1].width == 0,
         "image fields (width/height optional)");
    t_ok(ds.images[0].ann_start == 0 && ds.images[0].ann_count == 1 && ds.images[1].ann_start == 1 &&
         ds.images[1].ann_count == 2, "annotations grouped per image in images[] order");
    t_ok(ds.anns[0].id == 11 && ds.anns[1].id == 10 && ds.anns[2].id == 12, "file order kept within an image");
    t_ok(ds.anns[0].image_index == 0 && ds.anns[1].image_index == 1 && ds.anns[2].image_index == 1,
         "image_index points into images[]");
    t_ok(ds.anns[0].area == 200 && ds.anns[1].area == 5.5, "area: the file's, w*h when absent");
    t_ok(ds.anns[0].iscrowd == 1 && ds.anns[1].iscrowd == 0 && ds.anns[2].iscrowd == 1, "iscrowd (0/1/true)");
    t_ok(ds.anns[1].bbox[0] == 1 && ds.anns[1].bbox[3] == 4, "bbox kept as xywh");
    t_ok(!strcmp(ds.cats[1].name, "dog") && !strcmp(ds.cats[1].supercategory, "animal") &&
         !strcmp(ds.cats[0].supercategory, ""), "category names");
    t_ok(coco_find_image(&ds, 7) == 1 && coco_find_image(&ds, 2) == -1 && coco_find_category(&ds, 1) == 1 &&
         coco_find_category(&ds, 2) == -1, "coco_find_image / coco_find_category");
    t_ok(!strcmp(ds.path, path), "path kept");
    coco_free(&ds);

    /* no annotations list at all (an image-info file) */
    path = write_tmp("noanns.json", "{" IMGS ", " CATS "}");
    rc = coco_load(&ds, path);
    t_ok(rc == 0 && ds.n_anns == 0 && ds.images[1].ann_count == 0, "a file without annotations loads %s",
         rc ? cd_errbuf() : "");
    if (!rc) coco_free(&ds);
}

static void bad_files(void) {
    load_fails("broken JSON (missing comma)", "{\"images\": [\n  {\"id\": 1 \"file_name\": \"a\"}\n]}",
               ":2:12: JSON syntax error near '", "{\"id\": 1 \"file_name\"");
    load_fails("broken JSON (truncated)", "{\"images\": [\n{\"id\": 1,", ":2:", "end of the file");
    load_fails("broken JSON (trailing junk)", "{\"images\": [], \"categories\": []}\n}\n", ":2:1: JSON syntax error",
               NULL);
    /* segmentation values are skipped unparsed (speed); positions after them stay exact */
    load_fails("broken JSON after a multi-line segmentation",
               "{\"annotations\": [{\"segmentation\": [[1, 2,\n 3, 4],\n [5]], \"id\": 1}]\n  ]}",
               ":4:3: JSON syntax error", NULL);
    load_fails("empty file", "", "the file is empty", NULL);
    load_fails("a list, not an object", "[{\"image_id\": 1}]", "expected a COCO instances object", "results file");
    load_fails("missing images", "{" CATS "}", "missing the top-level \"images\" list", NULL);
    load_fails("missing categories", "{" IMGS "}", "missing the top-level \"categories\" list", NULL);
    load_fails("images not a list", "{\"images\": {}, " CATS "}", "\"images\" must be a list", NULL);
    load_fails("image without id", "{\"images\": [{\"file_name\": \"x\"}], " CATS "}", "images[0]: missing \"id\"",
               NULL);
    load_fails("image id a string", "{\"images\": [{\"id\": \"12\", \"file_name\": \"x\"}], " CATS "}",
               "images[0]: \"id\" must be an integer, got the string \"12\"", NULL);
    load_fails("image id fractional", "{\"images\": [{\"id\": 1.5, \"file_name\": \"x\"}], " CATS "}",
               "\"id\" must be an integer, got 1.5", NULL);
    load_fails("image without file_name", "{\"images\": [{\"id\": 1}], " CATS "}",
               "images[0]: missing \"file_name\"", NULL);
    load_fails("duplicate image id",
               "{\"images\": [{\"id\": 1, \"file_name\": \"a\"}, {\"id\": 1, \"file_name\": \"b\"}], " CATS "}",
               "images[1]: duplicate image id 1", NULL);
    load_fails("duplicate category id", "{" IMGS ", \"categories\": [{\"id\": 3, \"name\": \"a\"}, {\"id\": 3, "
               "\"name\": \"b\"}]}", "categories[1]: duplicate category id 3", NULL);
    load_fails("category without name", "{" IMGS ", \"categories\": [{\"id\": 3}]}",
               "categories[0]: missing \"name\"", NULL);
    load_fails("annotation of an unknown image",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,0,1,1]}, {\"id\": 2, \"image_id\": 99, \"category_id\": 3, \"bbox\": [0,0,1,1]}]}",
               "annotations[1]: image_id 99 is not in images", NULL);
    load_fails("annotation of an unknown category",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 4, \"bbox\": "
               "[0,0,1,1]}]}", "annotations[0]: category_id 4 is not in categories", NULL);
    load_fails("duplicate annotation id",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,0,1,1]}, {\"id\": 5, \"image_id\": 7, \"category_id\": 3, \"bbox\": [0,0,1,1]}]}",
               "annotations[1]: duplicate annotation id 5 (also annotations[0])", NULL);
    load_fails("bbox of 3 numbers",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,0,1]}]}", "annotations[0]: \"bbox\" must be a list of 4 numbers", NULL);
    load_fails("bbox with a string",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,\"0\",1,1]}]}", "\"bbox\"[1] must be a number, got a string", NULL);
    load_fails("annotation without bbox",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3}]}",
               "annotations[0]: missing \"bbox\"", NULL);
    load_fails("annotation without category_id",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"bbox\": [0,0,1,1]}]}",
               "annotations[0]: missing \"category_id\"", NULL);
    load_fails("area a string",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,0,1,1], \"area\": \"big\"}]}", "\"area\" must be a number", NULL);
    load_fails("iscrowd 2",
               "{" IMGS ", " CATS ", \"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": "
               "[0,0,1,1], \"iscrowd\": 2}]}", "\"iscrowd\" must be 0 or 1", NULL);

    coco_dataset ds;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/does-not-exist.json", dir);
    int rc = coco_load(&ds, missing);
    t_ok(rc == -1 && strstr(cd_errbuf(), "cannot open") && strstr(cd_errbuf(), "does-not-exist.json"),
         "coco_load of a missing file -> \"%s\"", cd_errbuf());
    void *j = cd_json_parse_file(missing);
    t_ok(j == NULL && strstr(cd_errbuf(), "cannot open"), "cd_json_parse_file of a missing file");
}

/* coco_results_load of text must fail with a message containing needle. */
static void results_fail(const coco_dataset *gt, const char *what, const char *text, const char *needle) {
    const char *path = write_tmp("res.json", text);
    coco_det *d = NULL;
    size_t n = 0;
    int rc = coco_results_load(&d, &n, path, gt);
    t_ok(rc == -1 && d == NULL && strstr(cd_errbuf(), path) && strstr(cd_errbuf(), needle),
         "coco_results_load %s -> \"%s\"", what, rc ? cd_errbuf() : "(loaded!)");
    free(d);
}

static void results_files(void) {
    const char *gt_path = write_tmp("gt.json", "{" IMGS ", " CATS "}");
    coco_dataset gt;
    int rc = coco_load(&gt, gt_path);
    t_ok(rc == 0, "load GT for the results tests %s", rc ? cd_errbuf() : "");
    if (rc) return;
    const char *path = write_tmp("res.json",
                                 "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1.5, 2, 3, 4], \"score\": 0.25},\n"
                                 " {\"image_id\": 1, \"category_id\": 42, \"bbox\": [0, 0, 0, 0], \"score\": 1, "
                                 "\"extra\": [1]}]");
    coco_det *d = NULL;
    size_t n = 0;
    rc = coco_results_load(&d, &n, path, &gt);
    t_ok(rc == 0 && n == 2 && d[0].image_id == 7 && d[0].category_id == 3 && d[0].bbox[0] == 1.5 &&
         d[0].score == 0.25 && d[1].category_id == 42, "results file read in order (unknown category kept) %s",
         rc ? cd_errbuf() : "");
    free(d);
    path = write_tmp("res.json", "[]");
    rc = coco_results_load(&d, &n, path, &gt);
    t_ok(rc == 0 && n == 0, "an empty results list is valid");
    free(d);

    /* what, the results text, the message */
    static const char *const bad[][3] = {
        {"broken JSON",
         "[{\"image_id\": 7,\n \"category_id\": 3 \"bbox\": [1,2,3,4]}]",
         ":2:19: JSON syntax error near 'gory_id\": 3 \"bbox\": [1,2'"},
        {"a GT file given as results", "{\"images\": []}", "must be a JSON list of detections"},
        {"unknown image id",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1,2,3,4], \"score\": 0.5},"
         " {\"image_id\": 8, \"category_id\": 3, \"bbox\": [1,2,3,4], \"score\": 0.5}]",
         "[1]: image_id 8 is not an image of the ground truth"},
        {"bbox of 5 numbers",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1,2,3,4,5], \"score\": 1}]",
         "[0]: bad bbox: must be a list of 4 numbers"},
        {"bbox not a list",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": 5, \"score\": 1}]",
         "bad bbox: must be a list of 4 numbers [x, y, w, h], got a number"},
        {"bbox with null",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1,2,null,4], \"score\": 1}]",
         "bad bbox: bbox[2] must be a number, got null"},
        {"negative width (x1y1x2y2?)",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [10,20,5,-4], \"score\": 1}]",
         "width and height must be >= 0"},
        {"missing score", "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1,2,3,4]}]", "[0]: missing \"score\""},
        {"missing image_id", "[{\"category_id\": 3, \"bbox\": [1,2,3,4], \"score\": 1}]", "[0]: missing \"image_id\""},
        {"category_id a string",
         "[{\"image_id\": 7, \"category_id\": \"3\", \"bbox\": [1,2,3,4], \"score\": 1}]",
         "\"category_id\" must be an integer, got a string"},
        {"score a string",
         "[{\"image_id\": 7, \"category_id\": 3, \"bbox\": [1,2,3,4], \"score\": \"hi\"}]",
         "\"score\" must be a number"},
        {"a number in the list", "[3]", "[0]: expected a detection object, got a number"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) results_fail(&gt, bad[i][0], bad[i][1], bad[i][2]);
    coco_free(&gt);
}

int main(void) {
    (void)t_close_f; (void)t_seed; (void)t_uniform;   /* check.h helpers this test does not use */
    if (!t_tmpdir(dir, sizeof dir, "cldetr-test-eval")) { perror("mkdtemp"); return 1; }
    good_file();
    bad_files();
    results_files();
    t_rmtree(dir);
    return t_done();
}
