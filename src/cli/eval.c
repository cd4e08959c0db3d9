/* cldetr eval RUN [--checkpoint best|last|FILE] [--split val|train] [--per-class] [--max-images N]
 * COCO bbox AP of a trained run on a split of its dataset. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/coco.h"
#include "cldetr/cocoeval.h"
#include "cldetr/evaluate.h"
#include "cldetr/infer.h"
#include "cldetr/loss.h"
#include "cldetr/setup.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_eval(int argc, char **argv) {
    static const char *const splits[] = {"val", "train", NULL};
    const char *run = NULL, *which = NULL;
    int per_class = 0, split_k = 0;
    long max_images = 0;
    args a;
    args_init(&a, "eval", argc, argv, 0);
    while (args_next(&a)) {
        if (args_flag(&a, "--per-class")) per_class = 1;
        args_value(&a, "--checkpoint", &which);
        args_choice(&a, "--split", &split_k, splits);
        args_long(&a, "--max-images", &max_images, 1, LONG_MAX);
        args_single(&a, &run, "run folder");
    }
    if (a.rc >= 0) return a.rc;
    if (!run) return args_missing(&a, "give a run folder");
    const char *split = splits[split_k];

    char ckpt[4096], tag[256];
    if (infer_find_checkpoint(ckpt, sizeof ckpt, tag, sizeof tag, run, which) < 0) {
        fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
        return 1;
    }
    static infer_model im;
    if (infer_open_run(&im, run, ckpt, stderr) < 0) {
        fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
        return 1;
    }
    const config *cfg = &im.cfg;
    int rc = 1;
    data_loader *L = NULL;
    data_dataset *ds = setup_open_split(cfg, split);
    coco_det *dets = NULL;
    size_t n_dets = 0;
    infer_dataset_result r;
    memset(&r, 0, sizeof r);
    if (!ds) { fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf()); goto out; }
    loader_opts lo;
    augment_opts ao;
    setup_loader_opts(&lo, cfg, 0);
    setup_augment_opts(&ao, cfg);
    L = loader_create(ds, &lo, &ao);
    if (!L) { fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf()); goto out; }
    criterion_opts crit;
    setup_criterion_opts(&crit, cfg);
    size_t bs = lo.batch_size, max_batches = max_images > 0 ? ((size_t)max_images + bs - 1) / bs : 0;
    fprintf(stderr, "eval: split %s of %s/%s: %zu images%s, batch %zu, input %d (max %d)\n", split, cfg->data.root,
            !strcmp(split, "train") ? cfg->data.train_ann : cfg->data.val_ann, data_size(ds),
            max_batches && max_batches * bs < data_size(ds) ? " (the first ones only: --max-images)" : "", bs,
            cfg->augment.val_size, cfg->augment.val_max_size);
    if (infer_dataset(&r, &im.model, &im.ctx, ds, L, &crit, max_batches, isatty(2)) < 0) {
        fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
        goto out;
    }
    if (!r.n_images) { fprintf(stderr, "cldetr eval: error: the split has no image to evaluate\n"); goto out; }

    char res_path[4400], eval_path[4400];
    snprintf(res_path, sizeof res_path, "%s/results-%s-%s.json", run, split, tag);
    snprintf(eval_path, sizeof eval_path, "%s/eval-%s-%s.json", run, split, tag);
    if (eval_write_results(res_path, r.dets, r.n_dets) < 0) {
        fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
        goto out;
    }
    /* The numbers of the file as written (boxes to 3 decimals, scores to 6), so
     * that eval-*.json and `cldetr cocoeval GT RESULTS` agree exactly. */
    const coco_dataset *gt = data_coco(ds);
    if (coco_results_load(&dets, &n_dets, res_path, gt) < 0) {
        fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
        goto out;
    }
    int64_t *ids = cd_xmalloc(r.n_images * sizeof *ids);
    for (size_t i = 0, k = 0; i < r.n_dets && k < r.n_images; i++)   /* every image has Q detections in order */
        if (!k || ids[k - 1] != r.dets[i].image_id) ids[k++] = r.dets[i].image_id;
    coco_eval_opts eo = {ids, r.n_images};
    coco_eval_result cr;
    /* every GT image when all ran (as cocoeval), else the images that ran (as the trainer) */
    int ok = coco_evaluate(&cr, gt, dets, n_dets, r.n_images == gt->n_images ? NULL : &eo);
    free(ids);
    if (ok < 0) { fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf()); goto out; }
    fprintf(stderr, "eval: %zu images, %zu detections, loss %.4f, %.1f s\n", r.n_images, r.n_dets, r.loss, r.seconds);
    coco_eval_print_summary(stdout, &cr);
    if (per_class) {
        printf("\n");
        coco_eval_print_per_category(stdout, &cr);
    }
    if (coco_eval_write_json(eval_path, &cr) < 0) fprintf(stderr, "cldetr eval: error: %s\n", cd_errbuf());
    else {
        fprintf(stderr, "wrote %s and %s\n", eval_path, res_path);
        rc = 0;
    }
    coco_eval_result_free(&cr);
out:
    free(dets);
    infer_dataset_result_free(&r);
    loader_destroy(L);
    if (ds) data_close(ds);
    infer_close(&im);
    return rc;
}
