/* Hungarian matching of DETR (models/matcher.py): an exact minimum-cost
 * assignment of a rectangular cost matrix, solved like scipy's
 * linear_sum_assignment, and the DETR matching cost that feeds it. */
#ifndef CLDETR_MATCHER_H
#define CLDETR_MATCHER_H

#include <stddef.h>

/* Minimum-cost assignment of an R x C cost matrix in double, by shortest
 * augmenting paths with dual potentials (Jonker-Volgenant style), O(n^2 m)
 * time with n = min(R,C), m = max(R,C), O(m) extra memory.
 *   rows [min(R,C)], cols [min(R,C)]: the pairs (written), sorted by row index,
 *     every row matched when R <= C, every column matched when R > C (the
 *     others stay unmatched), as scipy.optimize.linear_sum_assignment returns.
 *   total: sum of cost over the pairs, may be NULL.
 *   cost [R,C] row-major.
 * R or C may be 0 (no pairs). Returns 0, or -1 with cd_errbuf() naming the
 * first non-finite entry ("cost[3,5] is nan"): NaN or infinite costs have no
 * meaningful assignment and are never silently matched. With ties, the pairs
 * may differ from scipy's; the total does not. */
int matcher_solve(size_t *rows, size_t *cols, double *total,
                  const double *cost, size_t R, size_t C);

/* Weights of DETR's matching cost (--set_cost_class/bbox/giou: 1, 5, 2). */
typedef struct {
    double cost_class, cost_bbox, cost_giou;
} matcher_weights;

/* DETR's matching cost of one image:
 *   cost[q,t] = cost_class * -prob[q, labels[t]]
 *             + cost_bbox  * sum_4 |pbox[q] - tbox[t]|      (cxcywh)
 *             + cost_giou  * -GIoU(xyxy(pbox[q]), xyxy(tbox[t]))
 * cost [Q,T] (written), prob [Q,K1] softmax over all K1 = K+1 logits,
 * pbox [Q,4] predicted cxcywh, labels [T] in [0, K1), tbox [T,4] cxcywh.
 * NaN inputs give NaN costs (matcher_solve then refuses them). */
void matcher_detr_cost(double *cost, const double *prob, const double *pbox,
                       const int *labels, const double *tbox,
                       size_t Q, size_t K1, size_t T, const matcher_weights *w);

#endif
