/* COCO bbox evaluation vs pycocotools: for every case of
 * tests/fixtures/eval/index.json (made by tools/reference/make_cocoeval_fixtures.py)
 * the 12 stats, per-category AP / AP50 and the printed summary must equal
 * pycocotools' (stats within 1e-12; the summation order is numpy's, so they
 * are expected to be bit-identical, and the test reports how many are).
 * Plus small hand-checked cases built in C (perfect detections, empty results). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "cldetr/coco.h"
#include "cldetr/cocoeval.h"
#include "cldetr/common.h"

static char root_dir[1024];

static int read_doubles(const cJSON *arr, double *out, size_t n) {
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return -1;
    size_t i = 0;
    for (const cJSON *v = arr->child; v; v = v->next) out[i++] = v->valuedouble;
    return 0;
}

static void check_case(const char *name) {
    char gt_path[1200], res_path[1200], exp_path[1200];
    snprintf(gt_path, sizeof gt_path, "%s/tests/fixtures/eval/%s.gt.json", root_dir, name);
    snprintf(res_path, sizeof res_path, "%s/tests/fixtures/eval/%s.res.json", root_dir, name);
    snprintf(exp_path, sizeof exp_path, "%s/tests/fixtures/eval/%s.expected.json", root_dir, name);
    cJSON *exp = cd_json_parse_file(exp_path);
    t_ok(exp != NULL, "%s: read expected %s", name, exp ? "" : cd_errbuf());
    if (!exp) return;
    coco_dataset gt;
    int rc = coco_load(&gt, gt_path);
    t_ok(rc == 0, "%s: coco_load %s", name, rc ? cd_errbuf() : "");
    if (rc) { cJSON_Delete(exp); return; }
    coco_det *dets = NULL;
    size_t n_dets = 0;
    rc = coco_results_load(&dets, &n_dets, res_path, &gt);
    t_ok(rc == 0, "%s: coco_results_load %s", name, rc ? cd_errbuf() : "");
    if (rc) { coco_free(&gt); cJSON_Delete(exp); return; }
    coco_eval_opts opts = {0};
    int64_t *img_ids = NULL;
    const cJSON *ids = cJSON_GetObjectItem(exp, "img_ids");
    if (ids) {
        opts.n_img_ids = (size_t)cJSON_GetArraySize(ids);
        img_ids = malloc(opts.n_img_ids * sizeof *img_ids);
        size_t i = 0;
        for (const cJSON *v = ids->child; v; v = v->next) img_ids[i++] = (int64_t)v->valuedouble;
        opts.img_ids = img_ids;
    }
    coco_eval_result res;
    rc = coco_evaluate(&res, &gt, dets, n_dets, ids ? &opts : NULL);
    t_ok(rc == 0, "%s: coco_evaluate %s", name, rc ? cd_errbuf() : "");
    if (rc) goto out;

    double ref[COCO_N_STATS];
    t_ok(read_doubles(cJSON_GetObjectItem(exp, "stats"), ref, COCO_N_STATS) == 0, "%s: 12 expected stats", name);
    char label[128];
    snprintf(label, sizeof label, "%s: 12 stats vs pycocotools", name);
    t_close_d(label, ref, res.stats, COCO_N_STATS, 1e-12, 0);
    int exact = 0;
    for (int i = 0; i < COCO_N_STATS; i++) exact += ref[i] == res.stats[i];
    t_diag("%s: %d of 12 stats bit-identical to pycocotools; AP %.6f AP50 %.6f", name, exact, res.stats[0],
           res.stats[1]);

    size_t K = res.n_cats;
    double *cid = malloc((K + 1) * sizeof *cid), *got_id = malloc((K + 1) * sizeof *got_id);
    double *ap = malloc((K + 1) * sizeof *ap), *ap50 = malloc((K + 1) * sizeof *ap50);
    int ok_k = read_doubles(cJSON_GetObjectItem(exp, "cat_ids"), cid, K) == 0;
    t_ok(ok_k, "%s: %zu categories, as pycocotools", name, K);
    if (ok_k) {
        for (size_t k = 0; k < K; k++) got_id[k] = (double)res.cat_ids[k];
        snprintf(label, sizeof label, "%s: category ids sorted", name);
        t_close_d(label, cid, got_id, K, 0, 0);
        read_doubles(cJSON_GetObjectItem(exp, "cat_ap"), ap, K);
        read_doubles(cJSON_GetObjectItem(exp, "cat_ap50"), ap50, K);
        snprintf(label, sizeof label, "%s: per-category AP", name);
        t_close_d(label, ap, res.cat_ap, K, 1e-12, 0);
        snprintf(label, sizeof label, "%s: per-category AP50", name);
        t_close_d(label, ap50, res.cat_ap50, K, 1e-12, 0);
    }
    free(cid); free(got_id); free(ap); free(ap50);

    /* the printed table, byte for byte */
    char *text = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&text, &len);
    coco_eval_print_summary(mf, &res);
    fclose(mf);
    const cJSON *lines = cJSON_GetObjectItem(exp, "summary");
    int same = cJSON_GetArraySize(lines) == COCO_N_STATS;
    char *p = text;
    for (const cJSON *l = lines ? lines->child : NULL; l && same; l = l->next) {
        size_t n = strlen(l->valuestring);
        if (strncmp(p, l->valuestring, n) != 0 || p[n] != '\n') {
            t_diag("expected: '%s'", l->valuestring);
            t_diag("got:      '%.*s'", (int)strcspn(p, "\n"), p);
            same = 0;
        }
        p += n + 1;
    }
    t_ok(same && *p == '\0', "%s: summary table identical to pycocotools' summarize()", name);
    free(text);
    coco_eval_result_free(&res);
out:
    free(img_ids);
    free(dets);
    coco_free(&gt);
    cJSON_Delete(exp);
}

/* A dataset built in memory: 3 images, 2 categories; perfect detections give AP 1. */
static void check_in_memory(void) {
    coco_dataset ds = {0};
    ds.n_images = 3;
    ds.images = calloc(3, sizeof *ds.images);
    for (int i = 0; i < 3; i++) { ds.images[i].id = 10 + i; ds.images[i].file_name = cd_xstrdup("x.jpg"); }
    ds.n_cats = 2;
    ds.cats = calloc(2, sizeof *ds.cats);
    ds.cats[0].id = 5; ds.cats[0].name = cd_xstrdup("b"); ds.cats[0].supercategory = cd_xstrdup("");
    ds.cats[1].id = 2; ds.cats[1].name = cd_xstrdup("a"); ds.cats[1].supercategory = cd_xstrdup("");
    ds.n_anns = 4;
    ds.anns = calloc(4, sizeof *ds.anns);
    const double boxes[4][4] = {{0, 0, 10, 10}, {20, 20, 50, 40}, {0, 0, 200, 100}, {5, 5, 30, 30}};
    const size_t img_of[4] = {0, 0, 1, 2};
    const int64_t cat_of[4] = {5, 2, 5, 2};
    for (int i = 0; i < 4; i++) {
        coco_ann *a = &ds.anns[i];
        a->id = i + 1; a->image_index = img_of[i]; a->image_id = 10 + (int64_t)img_of[i]; a->category_id = cat_of[i];
        memcpy(a->bbox, boxes[i], sizeof a->bbox);
        a->area = boxes[i][2] * boxes[i][3];
    }
    ds.images[0].ann_start = 0; ds.images[0].ann_count = 2;
    ds.images[1].ann_start = 2; ds.images[1].ann_count = 1;
    ds.images[2].ann_start = 3; ds.images[2].ann_count = 1;
    t_ok(coco_build_index(&ds) == 0, "coco_build_index on an in-memory dataset");
    t_ok(coco_find_image(&ds, 11) == 1 && coco_find_image(&ds, 13) == -1, "coco_find_image");
    t_ok(coco_find_category(&ds, 2) == 1 && coco_find_category(&ds, 3) == -1, "coco_find_category");

    coco_det dets[4];
    for (int i = 0; i < 4; i++) {
        dets[i].image_id = ds.anns[i].image_id;
        dets[i].category_id = ds.anns[i].category_id;
        memcpy(dets[i].bbox, boxes[i], sizeof dets[i].bbox);
        dets[i].score = 0.5 + 0.1 * i;
    }
    coco_eval_result res;
    t_ok(coco_evaluate(&res, &ds, dets, 4, NULL) == 0, "evaluate perfect detections");
    /* GT areas 100 (small), 2000 (medium), 20000 (large), 900 (small): every range has GT */
    /* at most one GT per (image, category), so AR1 = 1 as well. Not exactly 1: pycocotools'
     * precision is tp / (tp + fp + eps), 1 - 2.2e-16 for a single true positive. */
    double ones[COCO_N_STATS];
    for (int i = 0; i < COCO_N_STATS; i++) ones[i] = 1.0;
    t_close_d("perfect detections: all 12 stats 1", ones, res.stats, COCO_N_STATS, 4e-16, 0);
    t_ok(res.n_cats == 2 && res.cat_ids[0] == 2 && res.cat_ids[1] == 5 && !strcmp(res.cat_names[0], "a"),
         "categories sorted by id with their names");
    coco_eval_result_free(&res);

    /* no detections at all: AP 0 for every range with GT (pycocotools cannot load an empty list) */
    t_ok(coco_evaluate(&res, &ds, NULL, 0, NULL) == 0, "evaluate no detections");
    double zeros[COCO_N_STATS] = {0};
    t_close_d("no detections: all stats 0", zeros, res.stats, COCO_N_STATS, 0, 0);
    coco_eval_result_free(&res);

    /* bad detections are errors with a message */
    coco_det bad = dets[0];
    bad.image_id = 99;
    t_ok(coco_evaluate(&res, &ds, &bad, 1, NULL) == -1 && strstr(cd_errbuf(), "image_id 99"),
         "unknown image id rejected: %s", cd_errbuf());
    bad = dets[0];
    bad.bbox[2] = -1;
    t_ok(coco_evaluate(&res, &ds, &bad, 1, NULL) == -1 && strstr(cd_errbuf(), "negative size"),
         "negative box size rejected: %s", cd_errbuf());
    bad = dets[0];
    bad.score = NAN;
    t_ok(coco_evaluate(&res, &ds, &bad, 1, NULL) == -1 && strstr(cd_errbuf(), "score"),
         "NaN score rejected: %s", cd_errbuf());
    int64_t sub = 77;
    coco_eval_opts o = {&sub, 1};
    t_ok(coco_evaluate(&res, &ds, dets, 4, &o) == -1 && strstr(cd_errbuf(), "77"),
         "unknown image id in opts rejected: %s", cd_errbuf());
    coco_free(&ds);
}

int main(void) {
    (void)t_close_f; (void)t_seed; (void)t_uniform;   /* check.h helpers this test does not use */
    const char *r = getenv("CLDETR_SOURCE_ROOT");
    snprintf(root_dir, sizeof root_dir, "%s", r ? r : ".");
    char index_path[1200];
    snprintf(index_path, sizeof index_path, "%s/tests/fixtures/eval/index.json", root_dir);
    cJSON *index = cd_json_parse_file(index_path);
    t_ok(index != NULL, "read %s %s", index_path, index ? "" : cd_errbuf());
    const cJSON *cases = index ? cJSON_GetObjectItem(index, "cases") : NULL;
    t_ok(cJSON_GetArraySize(cases) >= 7, "at least 7 fixture cases");
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) check_case(c->valuestring);
    cJSON_Delete(index);
    check_in_memory();
    return t_done();
}
