/* Box operations of DETR (util/box_ops.py), in double on the host.
 *
 * A box is 4 doubles. cxcywh = (center x, center y, width, height), the form
 * the model predicts and the targets use (normalized to [0,1] by the unpadded
 * image size); xyxy = (x0, y0, x1, y1), corners.
 *
 * Degenerate boxes (DETR asserts on them; we define them instead, so that a
 * diverging model or a bad target gives finite numbers and the caller's NaN
 * checks decide what to do):
 *   - An inverted box (width or height < 0, i.e. x1 < x0 or y1 < y0) is
 *     collapsed to its center along that axis: a zero-width segment or point.
 *     In gradients, a negative width/height gets no gradient from IoU/GIoU
 *     (it still gets one from the L1 term, which pulls it back).
 *   - IoU of two boxes whose union has zero area is 0 (both have zero area).
 *   - The GIoU penalty (C - U)/C of boxes whose enclosing box C has zero area
 *     is 0, so two zero-area boxes inside a zero-area hull have GIoU 0.
 *   The terms so defined contribute zero gradient. For valid boxes (w, h > 0)
 *   values equal DETR's formulas with no epsilon anywhere.
 *
 * Gradients at kinks follow PyTorch autograd, so they match DETR's loss to
 * rounding: max/min of two equal coordinates sends half the gradient to each
 * side; an overlap clamped at exactly 0 passes no gradient; |0| has gradient 0. */
#ifndef CLDETR_BOX_H
#define CLDETR_BOX_H

#include <stddef.h>

void box_cxcywh_to_xyxy(double xyxy[4], const double cxcywh[4]);
void box_xyxy_to_cxcywh(double cxcywh[4], const double xyxy[4]);

/* (x1-x0)*(y1-y0) of an xyxy box, with inverted sides counted as 0. */
double box_area(const double xyxy[4]);

/* IoU and generalized IoU of two xyxy boxes (GIoU in [-1, 1]). */
double box_iou(const double a[4], const double b[4]);
double box_giou(const double a[4], const double b[4]);

/* Pairwise over two sets of xyxy boxes.
 * out [N,M] row-major, a [N,4], b [M,4]. */
void box_pairwise_iou(double *out, const double *a, const double *b, size_t N, size_t M);
void box_pairwise_giou(double *out, const double *a, const double *b, size_t N, size_t M);

/* GIoU of a predicted and a target box, both cxcywh, and its gradient w.r.t.
 * the prediction: dpred[4] = dGIoU/d(cx, cy, w, h) (written). Returns GIoU. */
double box_giou_grad_cxcywh(double dpred[4], const double pred[4], const double tgt[4]);

/* L1 distance sum_4 |pred - tgt| of two cxcywh boxes and its gradient w.r.t.
 * pred: dpred[4] = sign(pred - tgt), 0 where equal (written). Returns the sum. */
double box_l1_grad_cxcywh(double dpred[4], const double pred[4], const double tgt[4]);

#endif
