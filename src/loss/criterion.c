/* DETR's set criterion with its gradient. See include/cldetr/loss.h. */
#include "cldetr/loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/box.h"
#include "cldetr/common.h"

void criterion_opts_default(criterion_opts *opt) {
    opt->w_ce = 1;
    opt->w_bbox = 5;
    opt->w_giou = 2;
    opt->eos_coef = 0.1;
    opt->cost.cost_class = 1;
    opt->cost.cost_bbox = 5;
    opt->cost.cost_giou = 2;
    opt->aux_loss = 1;
    opt->fixed_match = 0;
    opt->num_boxes = 0;
}

void criterion_result_free(criterion_result *res) {
    free(res->layer);
    free(res->match_start);
    free(res->match_query);
    free(res->match_target);
    free(res->work);
    memset(res, 0, sizeof *res);
}

/* "decoder layer 5 (final)" / "decoder layer 2 (aux _2)" */
static const char *layer_name(size_t l, size_t L) {
    static _Thread_local char buf[64];
    if (l + 1 == L) snprintf(buf, sizeof buf, "decoder layer %zu (final)", l);
    else snprintf(buf, sizeof buf, "decoder layer %zu (aux _%zu)", l, l);
    return buf;
}

static int check_inputs(const float *logits, const float *boxes, const criterion_target *targets,
                        size_t L, size_t B, size_t Q, size_t K1, const criterion_opts *opt) {
    if (L == 0 || B == 0 || Q == 0 || K1 < 2)
        return cd_seterr("criterion: bad sizes L=%zu B=%zu Q=%zu K1=%zu (need L, B, Q >= 1 "
                         "and K1 = num_classes + 1 >= 2)", L, B, Q, K1);
    const double w[] = {opt->w_ce, opt->w_bbox, opt->w_giou, opt->cost.cost_class,
                        opt->cost.cost_bbox, opt->cost.cost_giou};
    const char *wname[] = {"w_ce", "w_bbox", "w_giou", "cost_class", "cost_bbox", "cost_giou"};
    for (size_t i = 0; i < CD_ARRAY_LEN(w); i++)
        if (!isfinite(w[i]) || w[i] < 0)
            return cd_seterr("criterion: option %s = %g, expected a finite number >= 0", wname[i], w[i]);
    if (!(opt->eos_coef > 0) || !isfinite(opt->eos_coef))
        return cd_seterr("criterion: option eos_coef = %g, expected a finite number > 0", opt->eos_coef);

    size_t K = K1 - 1;
    for (size_t b = 0; b < B; b++) {
        const criterion_target *t = &targets[b];
        if (t->n > 0 && (!t->labels || !t->boxes))
            return cd_seterr("criterion: image %zu has %zu targets but no label or box array", b, t->n);
        for (size_t i = 0; i < t->n; i++) {
            if (t->labels[i] < 0 || (size_t)t->labels[i] >= K)
                return cd_seterr("criterion: image %zu, target %zu: label %d is outside [0, %zu) "
                                 "(num_classes = %zu; index %zu is no-object and never a target)",
                                 b, i, t->labels[i], K, K, K);
            for (int k = 0; k < 4; k++)
                if (!isfinite(t->boxes[4 * i + k]))
                    return cd_seterr("criterion: image %zu, target %zu: box[%d] is %g (expected a "
                                     "finite normalized cxcywh box)", b, i, k, (double)t->boxes[4 * i + k]);
        }
    }
    for (size_t l = opt->aux_loss ? 0 : L - 1; l < L; l++)
        for (size_t b = 0; b < B; b++)
            for (size_t q = 0; q < Q; q++) {
                const float *z = logits + ((l * B + b) * Q + q) * K1;
                const float *x = boxes + ((l * B + b) * Q + q) * 4;
                for (size_t k = 0; k < K1; k++)
                    if (!isfinite(z[k]))
                        return cd_seterr("criterion: %s, image %zu, query %zu: predicted logit[%zu] is %g "
                                         "(the model diverged: lower train.lr or check gradient clipping)",
                                         layer_name(l, L), b, q, k, (double)z[k]);
                for (int k = 0; k < 4; k++)
                    if (!isfinite(x[k]))
                        return cd_seterr("criterion: %s, image %zu, query %zu: predicted box[%d] is %g "
                                         "(the model diverged: lower train.lr or check gradient clipping)",
                                         layer_name(l, L), b, q, k, (double)x[k]);
            }
    return 0;
}

static size_t argmax_f(const float *z, size_t n) {
    size_t best = 0;
    for (size_t k = 1; k < n; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* One decoder layer: match every image, fill the layer's terms, matches from
 * res->match_query/target[*mpos], and the gradient (if wanted). */
static int layer_loss(criterion_result *res, size_t *mpos, float *dlogits, float *dboxes,
                      const float *logits, const float *boxes, const criterion_target *targets,
                      const double *tbox, const size_t *tstart, size_t l, size_t L,
                      size_t B, size_t Q, size_t K1, const criterion_opts *opt,
                      double *prob, double *lse, double *pbox, double *cost, int *tclass) {
    size_t K = K1 - 1;
    criterion_layer_terms *lt = &res->layer[l];
    double nb = res->num_boxes;

    /* softmax in double, and predicted boxes */
    for (size_t bq = 0; bq < B * Q; bq++) {
        const float *z = logits + (l * B * Q + bq) * K1;
        double *p = prob + bq * K1, m = z[0], s = 0;
        for (size_t k = 1; k < K1; k++) m = z[k] > m ? z[k] : m;
        for (size_t k = 0; k < K1; k++) s += p[k] = exp((double)z[k] - m);
        for (size_t k = 0; k < K1; k++) p[k] /= s;
        lse[bq] = m + log(s);
        for (int k = 0; k < 4; k++) pbox[4 * bq + k] = boxes[(l * B * Q + bq) * 4 + k];
        tclass[bq] = (int)K;
    }

    /* matching */
    for (size_t b = 0; b < B; b++) {
        const criterion_target *t = &targets[b];
        size_t T = t->n, start = *mpos;
        res->match_start[l * B + b] = start;
        if (T == 0) continue;
        if (opt->fixed_match) {
            size_t n = CD_MIN(Q, T);
            for (size_t k = 0; k < n; k++) {
                res->match_query[start + k] = k;
                res->match_target[start + k] = k;
                tclass[b * Q + k] = t->labels[k];
            }
            *mpos = start + n;
            continue;
        }
        matcher_detr_cost(cost, prob + b * Q * K1, pbox + b * Q * 4, t->labels, tbox + 4 * tstart[b],
                          Q, K1, T, &opt->cost);
        /* Inputs were checked finite, so a non-finite cost means an overflow;
         * matcher_solve refuses it rather than match silently. */
        if (matcher_solve(res->match_query + start, res->match_target + start, NULL, cost, Q, T)) {
            char why[256];
            snprintf(why, sizeof why, "%s", cd_errbuf());
            return cd_seterr("criterion: %s, image %zu: %s (rows are queries, columns targets)",
                             layer_name(l, L), b, why);
        }
        size_t n = CD_MIN(Q, T);
        for (size_t k = 0; k < n; k++)
            tclass[b * Q + res->match_query[start + k]] = t->labels[res->match_target[start + k]];
        *mpos = start + n;
    }

    /* classification: weighted mean CE over all B*Q queries (fixed matching:
     * over the queries that answer a target; padding weighs 0) */
    double eos_w = opt->fixed_match ? 0.0 : opt->eos_coef, wsum = 0, ce = 0;
    for (size_t bq = 0; bq < B * Q; bq++) {
        double w = tclass[bq] == (int)K ? eos_w : 1.0;
        const float *z = logits + (l * B * Q + bq) * K1;
        wsum += w;
        ce += w * (lse[bq] - (double)z[tclass[bq]]);   /* -log p[y], exact even when p[y] underflows */
    }
    if (wsum == 0) wsum = 1;     /* fixed matching without targets: no term */
    lt->loss_ce = ce / wsum;
    if (dlogits) {
        for (size_t bq = 0; bq < B * Q; bq++) {
            double w = tclass[bq] == (int)K ? eos_w : 1.0, g = opt->w_ce * w / wsum;
            float *dz = dlogits + (l * B * Q + bq) * K1;
            const double *p = prob + bq * K1;
            for (size_t k = 0; k < K1; k++)
                dz[k] = (float)(g * (p[k] - (k == (size_t)tclass[bq] ? 1.0 : 0.0)));
        }
    }

    /* boxes: L1 and GIoU over the matched pairs */
    if (dboxes) memset(dboxes + l * B * Q * 4, 0, B * Q * 4 * sizeof *dboxes);
    double l1 = 0, giou = 0;
    for (size_t b = 0; b < B; b++) {
        size_t end = b + 1 < B ? res->match_start[l * B + b + 1] : *mpos;
        for (size_t k = res->match_start[l * B + b]; k < end; k++) {
            size_t q = res->match_query[k], t = res->match_target[k];
            const double *pb = pbox + (b * Q + q) * 4, *tb = tbox + 4 * (tstart[b] + t);
            double dl1[4], dg[4];
            l1 += box_l1_grad_cxcywh(dl1, pb, tb);
            giou += 1 - box_giou_grad_cxcywh(dg, pb, tb);
            if (dboxes) {
                float *d = dboxes + ((l * B + b) * Q + q) * 4;
                for (int c = 0; c < 4; c++)
                    d[c] = (float)((opt->w_bbox * dl1[c] - opt->w_giou * dg[c]) / nb);
            }
        }
    }
    lt->loss_bbox = l1 / nb;
    lt->loss_giou = giou / nb;
    lt->weighted_ce = opt->w_ce * lt->loss_ce;
    lt->weighted_bbox = opt->w_bbox * lt->loss_bbox;
    lt->weighted_giou = opt->w_giou * lt->loss_giou;

    /* logs: cardinality (every layer), class error (final layer) */
    double card = 0;
    size_t correct = 0, matched = 0;
    for (size_t b = 0; b < B; b++) {
        size_t n_obj = 0;
        for (size_t q = 0; q < Q; q++)
            n_obj += argmax_f(logits + ((l * B + b) * Q + q) * K1, K1) != K;
        card += fabs((double)n_obj - (double)targets[b].n);
    }
    lt->cardinality_error = card / (double)B;
    if (l + 1 == L) {
        for (size_t bq = 0; bq < B * Q; bq++) {
            if (tclass[bq] == (int)K) continue;
            matched++;
            correct += argmax_f(logits + (l * B * Q + bq) * K1, K1) == (size_t)tclass[bq];
        }
        res->class_error = matched ? 100.0 - 100.0 * (double)correct / (double)matched : 100.0;
    }
    return 0;
}

int criterion_loss(criterion_result *res, float *dlogits, float *dboxes,
                   const float *logits, const float *boxes,
                   const criterion_target *targets,
                   size_t L, size_t B, size_t Q, size_t K1,
                   const criterion_opts *opt) {
    if (check_inputs(logits, boxes, targets, L, B, Q, K1, opt)) return -1;

    /* (re)size the result */
    if (res->L != L || res->B != B || !res->layer) {
        free(res->layer);
        free(res->match_start);
        res->layer = cd_xcalloc(L, sizeof *res->layer);
        res->match_start = cd_xcalloc(L * B + 1, sizeof *res->match_start);
        res->L = L;
        res->B = B;
    }
    memset(res->layer, 0, L * sizeof *res->layer);
    size_t n_all = 0, n_pairs = 0, max_n = 0;
    size_t *tstart = cd_xmalloc(B * sizeof *tstart);
    for (size_t b = 0; b < B; b++) {
        tstart[b] = n_all;
        n_all += targets[b].n;
        n_pairs += CD_MIN(Q, targets[b].n);
        max_n = CD_MAX(max_n, targets[b].n);
    }
    if (res->match_cap < L * n_pairs || !res->match_query) {
        res->match_cap = CD_MAX(L * n_pairs, 1);
        res->match_query = cd_xrealloc(res->match_query, res->match_cap * sizeof *res->match_query);
        res->match_target = cd_xrealloc(res->match_target, res->match_cap * sizeof *res->match_target);
    }
    size_t need = B * Q * K1 + B * Q + B * Q * 4 + Q * max_n + 4 * n_all;
    if (res->work_cap < need || !res->work) {
        res->work_cap = CD_MAX(need, 1);
        res->work = cd_xrealloc(res->work, res->work_cap * sizeof *res->work);
    }
    double *prob = res->work, *lse = prob + B * Q * K1, *pbox = lse + B * Q, *cost = pbox + B * Q * 4, *tbox = cost + Q * max_n;
    int *tclass = cd_xmalloc(B * Q * sizeof *tclass);
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < 4 * targets[b].n; i++) tbox[4 * tstart[b] + i] = targets[b].boxes[i];

    res->num_boxes = opt->num_boxes > 0 ? opt->num_boxes : n_all > 0 ? (double)n_all : 1.0;
    res->total = 0;
    res->class_error = 100.0;
    size_t mpos = 0, first = opt->aux_loss ? 0 : L - 1;
    int rc = 0;
    for (size_t l = 0; l < L; l++) {
        if (l < first) {   /* unused aux layer: no matches, zero gradient */
            for (size_t b = 0; b < B; b++) res->match_start[l * B + b] = mpos;
            if (dlogits) memset(dlogits + l * B * Q * K1, 0, B * Q * K1 * sizeof *dlogits);
            if (dboxes) memset(dboxes + l * B * Q * 4, 0, B * Q * 4 * sizeof *dboxes);
            continue;
        }
        rc = layer_loss(res, &mpos, dlogits, dboxes, logits, boxes, targets, tbox, tstart, l, L,
                        B, Q, K1, opt, prob, lse, pbox, cost, tclass);
        if (rc) break;
        const criterion_layer_terms *lt = &res->layer[l];
        res->total += lt->weighted_ce + lt->weighted_bbox + lt->weighted_giou;
    }
    res->match_start[L * B] = mpos;
    free(tstart);
    free(tclass);
    return rc;
}
