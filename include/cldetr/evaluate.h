/* DETR's post-processing of the model's outputs and COCO results files
 * (src/eval/evaluate.c). A model run over a dataset is in infer.h. */
#ifndef CLDETR_EVALUATE_H
#define CLDETR_EVALUATE_H

#include <stddef.h>
#include "cldetr/cocoeval.h"

/* The official PostProcess (docs/model.md §10): softmax over K+1, drop the no-object
 * column, best class and its score per query, boxes to absolute xyxy of the
 * target size (the original image size for COCO). One image:
 *   logits (Q, K1), boxes (Q, 4) cxcywh in [0, 1]
 *   -> scores (Q), labels (Q) in [0, K), xyxy (Q, 4) in pixels of (w, h). */
void detr_postprocess(float *scores, int *labels, float *xyxy, const float *logits, const float *boxes,
                      size_t Q, size_t K1, double w, double h);

/* Write detections as a COCO results JSON file. 0 or -1 with cd_errbuf(). */
int eval_write_results(const char *path, const coco_det *dets, size_t n);

#endif
