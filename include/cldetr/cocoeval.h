/* COCO bbox evaluation, the same numbers as pycocotools' COCOeval
 * (evaluate / accumulate / summarize with the default bbox parameters), all
 * in float64. See docs/coco-eval.md for the algorithm and its quirks, which
 * are kept:
 *   - evaluated images = every GT image (or the given subset), sorted by id;
 *     evaluated categories = the GT file's categories, sorted by id;
 *   - detections of a category not in the GT categories are dropped silently;
 *     a detection of an image id not in the GT is an error;
 *   - GT area for the area ranges = the annotation's "area" field; detection
 *     area = w*h; IoU uses the boxes; crowd GT: union = detection area;
 *   - GT ignore := iscrowd (an "ignore" field in the file is not read);
 *   - stable sorts by score (ties keep input order), later GT wins IoU ties;
 *   - a category with no non-ignored GT gets -1 and is left out of the means.
 * One deliberate difference: pycocotools marks matches with annotation ids
 * and tests them against 0, so a GT annotation with id 0 never counts as
 * matched there; here matches are explicit flags (ids do not matter). */
#ifndef CLDETR_COCOEVAL_H
#define CLDETR_COCOEVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cldetr/coco.h"

typedef struct {
    int64_t image_id;
    int64_t category_id;
    double bbox[4];        /* x, y, w, h in pixels of the original image; w, h >= 0 */
    double score;
} coco_det;

/* The 12 summary numbers, in pycocotools' order. */
enum {
    COCO_AP, COCO_AP50, COCO_AP75, COCO_AP_SMALL, COCO_AP_MEDIUM, COCO_AP_LARGE,
    COCO_AR1, COCO_AR10, COCO_AR100, COCO_AR_SMALL, COCO_AR_MEDIUM, COCO_AR_LARGE,
    COCO_N_STATS
};
extern const char *const coco_stat_names[COCO_N_STATS];   /* "AP", "AP50", ..., "AR_large" */

#define COCO_T 10          /* IoU thresholds .50:.05:.95 */
#define COCO_R 101         /* recall thresholds 0:.01:1 */
#define COCO_A 4           /* area ranges all, small, medium, large */
#define COCO_M 3           /* maxDets 1, 10, 100 */

typedef struct {
    double stats[COCO_N_STATS];   /* -1 where no category has non-ignored GT */
    size_t n_cats;                /* the GT categories, sorted by id */
    int64_t *cat_ids;             /* [n_cats] */
    char **cat_names;             /* [n_cats] (copies) */
    double *cat_ap;               /* [n_cats] AP@[.50:.95], area all, maxDets 100; -1: no GT */
    double *cat_ap50;             /* [n_cats] AP@.50, area all, maxDets 100; -1: no GT */
    double *precision;            /* [T][R][n_cats][A][M], as pycocotools' eval['precision'] */
    double *recall;               /* [T][n_cats][A][M], as eval['recall'] */
    size_t n_images;              /* images evaluated */
    size_t n_dets;                /* detections given */
    size_t n_dets_unknown_cat;    /* of them, dropped for a category not in the GT */
} coco_eval_result;

/* Optional settings; NULL = pycocotools' defaults. */
typedef struct {
    const int64_t *img_ids;       /* evaluate only these GT images (params.imgIds), as DETR does */
    size_t n_img_ids;             /* 0 = every GT image */
} coco_eval_opts;

/* Read a results file: a JSON list of {"image_id", "category_id", "bbox":
 * [x,y,w,h], "score"} (other keys ignored). On success *dets (free()) holds
 * them in file order. Returns -1 with cd_errbuf() naming the file, the index
 * and the problem: broken JSON (file:line:col), a missing or mistyped field, a
 * bad bbox, an image_id that is not in gt. */
int coco_results_load(coco_det **dets, size_t *n_dets, const char *path, const coco_dataset *gt);

/* Evaluate dets[n_dets] (any order; order only breaks score ties) against gt.
 * Returns 0, or -1 with cd_errbuf() set (an image id not in gt, a non-finite
 * score, a bad bbox, an image id of opts not in gt). */
int coco_evaluate(coco_eval_result *res, const coco_dataset *gt, const coco_det *dets, size_t n_dets,
                  const coco_eval_opts *opts);
void coco_eval_result_free(coco_eval_result *res);

/* The 12 lines pycocotools' summarize() prints, byte for byte. */
void coco_eval_print_summary(FILE *f, const coco_eval_result *res);

/* Per-category AP table (id, name, AP, AP50), "n/a" for categories without GT. */
void coco_eval_print_per_category(FILE *f, const coco_eval_result *res);

/* Write the numbers as JSON: {"stats": {"AP": .., ...}, "stats_list": [12],
 * "per_category": [{"id", "name", "ap", "ap50"}], "n_images", "n_dets",
 * "n_dets_unknown_category"}. Numbers round-trip exactly. Returns 0 or -1. */
int coco_eval_write_json(const char *path, const coco_eval_result *res);

#endif
