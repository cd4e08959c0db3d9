/* DETR's set criterion (models/detr.py SetCriterion + HungarianMatcher) on the
 * host: per decoder layer, Hungarian matching per image, then
 *   loss_ce   = sum_q w[y_q] * -log softmax(logits_q)[y_q] / sum_q w[y_q]
 *               over all B*Q queries, y_q = matched label or K (no-object),
 *               w = 1 for a label, eos_coef for no-object (PyTorch's weighted mean);
 *   loss_bbox = sum_matched sum_4 |box - tbox| / num_boxes   (cxcywh);
 *   loss_giou = sum_matched (1 - GIoU) / num_boxes;
 * num_boxes = max(1, total targets in the batch), or opt->num_boxes when given
 * (a data-parallel job gives the targets of all its processes). Each aux layer is matched on
 * its own. total = sum over layers of the weighted terms. Everything is
 * computed in double; the gradient of total w.r.t. every layer's logits and
 * boxes is returned in float, ready to upload.
 *
 * Typical use, once per training step after reading logits/boxes back:
 *     criterion_opts opt; criterion_opts_default(&opt);
 *     criterion_result res = {0};              // reused across steps
 *     if (criterion_loss(&res, dlogits, dboxes, logits, boxes, targets,
 *                        L, B, Q, K1, &opt)) cd_fatal("%s", cd_errbuf());
 *     ... res.total, res.layer[L-1].loss_ce, res.class_error ...
 *     criterion_result_free(&res);             // at the end
 *
 * Sizes: L decoder layers whose outputs are given (last = final, 0..L-2 = aux,
 * DETR's loss suffixes _0.._{L-2}), B images, Q queries, K1 = K+1 logits per
 * query (index K = no-object). */
#ifndef CLDETR_LOSS_H
#define CLDETR_LOSS_H

#include <stddef.h>

#include "cldetr/matcher.h"

typedef struct {
    double w_ce, w_bbox, w_giou;     /* loss weights: 1, 5, 2 (weight_dict) */
    double eos_coef;                 /* no-object class weight in CE: 0.1, must be > 0 */
    matcher_weights cost;            /* matching cost weights: 1, 5, 2 */
    int aux_loss;                    /* 1: all L layers; 0: only the final one (the
                                        others get zero loss, no matches, zero gradient) */
    int fixed_match;                 /* 1 (denoising queries): no Hungarian matching, query k
                                        answers target k, and queries past an image's
                                        targets (padding) are left out of every term */
    double num_boxes;                /* > 0: the box terms' normaliser as given (a data-parallel
                                        job's: max(1, targets of all processes / processes));
                                        0 (the default): max(1, this batch's targets) */
} criterion_opts;

void criterion_opts_default(criterion_opts *opt);

/* The targets of one image. */
typedef struct {
    const int *labels;    /* [n] raw class ids in [0, K) */
    const float *boxes;   /* [n,4] cxcywh, normalized to [0,1] */
    size_t n;             /* may be 0; may exceed Q (extra targets stay unmatched) */
} criterion_target;

/* Loss terms of one decoder layer. */
typedef struct {
    double loss_ce, loss_bbox, loss_giou;            /* unweighted */
    double weighted_ce, weighted_bbox, weighted_giou; /* times w_ce, w_bbox, w_giou */
    double cardinality_error;  /* mean over images of |#{q: argmax != no-object} - n|; log only */
} criterion_layer_terms;

/* Results of criterion_loss. Zero-initialize once; criterion_loss (re)sizes
 * the arrays; criterion_result_free releases them. */
typedef struct {
    size_t L, B;                    /* sizes of the last call */
    criterion_layer_terms *layer;   /* [L] */
    double total;                   /* sum of every used layer's weighted terms */
    double class_error;             /* final layer: 100 - top-1 accuracy (%) of matched
                                       queries; 100 when the batch has no targets */
    double num_boxes;               /* max(1, total targets) */
    /* Matches of layer l, image b: pairs k in [match_start[l*B+b], match_start[l*B+b+1])
     * with query match_query[k] and target index match_target[k], sorted by query. */
    size_t *match_start;            /* [L*B+1] */
    size_t *match_query, *match_target;
    /* workspace, reused across calls */
    size_t match_cap, work_cap;
    double *work;
} criterion_result;

/* Compute all loss terms, the matches and the gradient of res->total.
 *   dlogits [L,B,Q,K1], dboxes [L,B,Q,4]: d total / d logits, d boxes (written,
 *     every element, zero where a layer is unused); either may be NULL.
 *   logits [L,B,Q,K1]: class logits of every decoder layer.
 *   boxes  [L,B,Q,4]: predicted cxcywh boxes (after the sigmoid).
 *   targets [B].
 * Returns 0, or -1 with cd_errbuf() naming what is wrong: a NaN or infinite
 * prediction or matching cost ("criterion: decoder layer 3 (aux _3), image 1,
 * query 7: predicted box[2] is nan"), a target label outside [0, K) or a
 * non-finite target box (image and target index), bad options or sizes.
 * On error res keeps its arrays but its values are not meaningful. */
int criterion_loss(criterion_result *res, float *dlogits, float *dboxes,
                   const float *logits, const float *boxes,
                   const criterion_target *targets,
                   size_t L, size_t B, size_t Q, size_t K1,
                   const criterion_opts *opt);

void criterion_result_free(criterion_result *res);

#endif
