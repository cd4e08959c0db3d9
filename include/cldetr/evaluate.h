/* Inference: DETR's post-processing, and a model run over a dataset giving the
 * validation loss, COCO detections and the COCO AP (src/eval/). */
#ifndef CLDETR_EVALUATE_H
#define CLDETR_EVALUATE_H

#include <stddef.h>
#include "cldetr/cocoeval.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/loss.h"

/* The official PostProcess (docs/model.md §10): softmax over K+1, drop the no-object
 * column, best class and its score per query, boxes to absolute xyxy of the
 * target size (the original image size for COCO). One image:
 *   logits (Q, K1), boxes (Q, 4) cxcywh in [0, 1]
 *   -> scores (Q), labels (Q) in [0, K), xyxy (Q, 4) in pixels of (w, h). */
void detr_postprocess(float *scores, int *labels, float *xyxy, const float *logits, const float *boxes,
                      size_t Q, size_t K1, double w, double h);

/* Read every decoder layer's logits (L, B, Q, K1) and boxes (L, B, Q, 4) of a
 * forward pass back to the host (blocking). */
void eval_read_outputs(cd_device *dev, const detr_out *o, float *logits, float *boxes);

typedef struct {
    double loss;                  /* mean of the weighted total over the batches */
    double loss_ce, loss_bbox, loss_giou, class_error;   /* final layer, means */
    coco_eval_result coco;        /* COCO bbox evaluation (stats[COCO_AP50] ...) */
    int have_coco;                /* 0 when the dataset had no annotated image */
    coco_det *dets; size_t n_dets;/* every detection (all queries of every image) */
    size_t n_images;
    double seconds;
} eval_result;

/* Run the model (eval mode: no dropout, running BN statistics, no tape) over
 * every batch of the loader (a validation loader: no shuffle, no drop_last),
 * compute the loss with `crit` and the COCO AP of the detections against the
 * dataset's annotations. max_batches > 0 stops early. Returns 0 or -1 with
 * cd_errbuf(). */
int eval_run(eval_result *res, detr_model *m, nn_ctx *ctx, data_dataset *ds, data_loader *L,
             const criterion_opts *crit, size_t max_batches, int progress);
void eval_result_free(eval_result *res);

/* Write detections as a COCO results JSON file. 0 or -1 with cd_errbuf(). */
int eval_write_results(const char *path, const coco_det *dets, size_t n);

#endif
