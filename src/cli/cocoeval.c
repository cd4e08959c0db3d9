/* cldetr cocoeval GT.json RESULTS.json [--per-class] [--json OUT]
 * COCO bbox evaluation of a results file, the same numbers as pycocotools. */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/coco.h"
#include "cldetr/cocoeval.h"
#include "cldetr/common.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_cocoeval(int argc, char **argv) {
    const char *gt_path = NULL, *res_path = NULL, *json_out = NULL;
    int per_class = 0;
    args a;
    args_init(&a, "cocoeval", argc, argv, 0);
    while (args_next(&a)) {
        if (args_flag(&a, "--per-class")) per_class = 1;
        args_value(&a, "--json", &json_out);
        if (!gt_path) args_positional(&a, &gt_path);
        if (!res_path) args_positional(&a, &res_path);
    }
    if (a.rc >= 0) return a.rc;
    if (!gt_path || !res_path) return args_missing(&a, "give GT.json and RESULTS.json");

    double t0 = cd_now();
    coco_dataset gt;
    if (coco_load(&gt, gt_path)) {
        fprintf(stderr, "cldetr cocoeval: error: %s\n", cd_errbuf());
        return 1;
    }
    coco_det *dets;
    size_t n_dets;
    if (coco_results_load(&dets, &n_dets, res_path, &gt)) {
        fprintf(stderr, "cldetr cocoeval: error: %s\n", cd_errbuf());
        coco_free(&gt);
        return 1;
    }
    double t1 = cd_now();
    coco_eval_result res;
    int rc = 0;
    if (coco_evaluate(&res, &gt, dets, n_dets, NULL)) {
        fprintf(stderr, "cldetr cocoeval: error: %s: %s\n", res_path, cd_errbuf());
        rc = 1;
    } else {
        double t2 = cd_now();
        fprintf(stderr, "cocoeval: %zu images, %zu categories, %zu GT boxes, %zu detections", res.n_images,
                res.n_cats, gt.n_anns, n_dets);
        if (res.n_dets_unknown_cat)
            fprintf(stderr, " (%zu of a category not in %s: ignored)", res.n_dets_unknown_cat, gt_path);
        fprintf(stderr, "; load %.2f s, evaluate %.2f s\n", t1 - t0, t2 - t1);
        coco_eval_print_summary(stdout, &res);
        if (per_class) {
            printf("\n");
            coco_eval_print_per_category(stdout, &res);
        }
        if (json_out && coco_eval_write_json(json_out, &res)) {
            fprintf(stderr, "cldetr cocoeval: error: %s\n", cd_errbuf());
            rc = 1;
        }
        coco_eval_result_free(&res);
    }
    free(dets);
    coco_free(&gt);
    return rc;
}
