/* COCO bbox evaluation exactly as pycocotools' COCOeval (see cocoeval.h and
 * docs/coco-eval.md).
 *
 * Shape of the computation: detections and GT are sorted once by (category,
 * image rank); one category at a time, each image with GT or detections of it
 * is matched for every area range and IoU threshold (evaluateImg), the
 * per-detection flags are kept, and the category is accumulated into
 * precision[T][R][K][A][M] and recall[T][K][A][M] (accumulate). summarize
 * averages slices of those with numpy's summation order, so the 12 numbers
 * agree with pycocotools to the last bit, not only to 1e-12. */
#include "cldetr/cocoeval.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

const char *const coco_stat_names[COCO_N_STATS] = {
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
};

/* np.linspace(.5, .95, 10): these literals are the exact doubles numpy makes
 * (i * ((.95 - .5) / 9) + .5, last = .95); note 0.8999999999999999. */
static const double iou_thrs[COCO_T] = {0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95};
static const double area_lo[COCO_A] = {0.0, 0.0, 1024.0, 9216.0};          /* all, small, medium, large */
static const double area_hi[COCO_A] = {1e10, 1024.0, 9216.0, 1e10};
static const char *const area_names[COCO_A] = {"all", "small", "medium", "large"};
static const int max_dets[COCO_M] = {1, 10, 100};
#define MAX_DET 100        /* maxDets[-1] */

/* np.linspace(0, 1, 101)[r] = r * 0.01 (one rounding), last = 1. */
static double rec_thr(int r) { return r == COCO_R - 1 ? 1.0 : (double)r * (1.0 / 100.0); }

/* numpy's pairwise summation (np.add.reduce over a contiguous float64 array):
 * blocks of <= 128 summed with 8 accumulators, larger halves recursively. */
static double np_pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

/* np.mean(x[x > -1]) for x given as n values; -1 if none. buf has room for n. */
static double mean_valid(const double *x, size_t n, double *buf) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] > -1) buf[m++] = x[i];
    return m ? np_pairwise_sum(buf, m) / (double)m : -1.0;
}

/* ---- sorting keys -------------------------------------------------------- */

typedef struct { size_t k; long rank; size_t ann; } gt_ref;          /* GT annotation of category k */
typedef struct { size_t k; long rank; double score; size_t i; } dt_ref;

static int cmp_gt_ref(const void *pa, const void *pb) {
    const gt_ref *a = pa, *b = pb;
    if (a->k != b->k) return a->k < b->k ? -1 : 1;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    return a->ann < b->ann ? -1 : a->ann > b->ann;
}

/* (category, image, score desc, input order): a stable score sort per (image, category). */
static int cmp_dt_ref(const void *pa, const void *pb) {
    const dt_ref *a = pa, *b = pb;
    if (a->k != b->k) return a->k < b->k ? -1 : 1;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

typedef struct { size_t id; int64_t key; } id_sort;
static int cmp_id_sort(const void *pa, const void *pb) {
    const id_sort *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* One kept detection of the current category: its score, where it came from
 * (image rank, position among that image's score-sorted detections) and per
 * (area, IoU threshold) whether it matched and whether it is ignored. */
enum { F_MATCHED = 1, F_IGNORED = 2 };
typedef struct {
    double score;
    long rank;
    int pos;
    unsigned char flags[COCO_A][COCO_T];
} det_rec;

static int cmp_det_rec(const void *pa, const void *pb) {
    const det_rec *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* ---- evaluateImg ------------------------------------------------------------ */

/* maskApi bbIou: boxes xywh, no +1; crowd GT: union = detection area. */
static double bb_iou(const double *d, const double *g, int crowd) {
    double w = fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]);
    if (w <= 0) return 0.0;
    double h = fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]);
    if (h <= 0) return 0.0;
    double da = d[2] * d[3], ga = g[2] * g[3], in = w * h;
    return in / (crowd ? da : da + ga - in);
}

typedef struct {                  /* scratch reused across images */
    double *iou;                  /* [D][G] */
    size_t *order;                /* [G] GT indices, non-ignored first */
    unsigned char *gt_ig, *gt_m;  /* [G] in sorted order */
    size_t cap_g;
} scratch;

/* Match dets[D] (score-sorted, D <= 100) of one image and category against
 * gts[G]; append D records to out and add the non-ignored GT count per area
 * to npig. */
static void evaluate_image(det_rec *out, size_t npig[COCO_A], const coco_ann *const *gts, size_t G,
                           const coco_det *const *dets, const double *scores, size_t D, long rank,
                           scratch *s) {
    if (G > s->cap_g) {
        s->cap_g = G;
        s->iou = cd_xrealloc(s->iou, (size_t)MAX_DET * G * sizeof *s->iou);
        s->order = cd_xrealloc(s->order, G * sizeof *s->order);
        s->gt_ig = cd_xrealloc(s->gt_ig, G);
        s->gt_m = cd_xrealloc(s->gt_m, G);
    }
    for (size_t d = 0; d < D; d++)
        for (size_t g = 0; g < G; g++)
            s->iou[d * G + g] = bb_iou(dets[d]->bbox, gts[g]->bbox, gts[g]->iscrowd != 0);
    for (size_t d = 0; d < D; d++) {
        out[d].score = scores[d];
        out[d].rank = rank;
        out[d].pos = (int)d;
    }
    for (int a = 0; a < COCO_A; a++) {
        double lo = area_lo[a], hi = area_hi[a];
        size_t n = 0;
        for (int pass = 0; pass < 2; pass++)          /* stable: non-ignored, then ignored */
            for (size_t g = 0; g < G; g++) {
                int ig = gts[g]->iscrowd || gts[g]->area < lo || gts[g]->area > hi;
                if (ig == pass) { s->order[n] = g; s->gt_ig[n] = (unsigned char)ig; n++; }
            }
        for (size_t i = 0; i < G; i++) npig[a] += !s->gt_ig[i];
        for (int t = 0; t < COCO_T; t++) {
            if (G) memset(s->gt_m, 0, G);
            for (size_t d = 0; d < D; d++) {
                const double *iou_d = s->iou + d * G;
                double best = fmin(iou_thrs[t], 1 - 1e-10);
                long m = -1;
                for (size_t i = 0; i < G; i++) {
                    size_t g = s->order[i];
                    if (s->gt_m[i] && !gts[g]->iscrowd) continue;
                    if (m > -1 && !s->gt_ig[m] && s->gt_ig[i]) break;
                    if (iou_d[g] < best) continue;
                    best = iou_d[g];
                    m = (long)i;
                }
                unsigned char f;
                if (m >= 0) {
                    s->gt_m[m] = 1;
                    f = F_MATCHED | (s->gt_ig[m] ? F_IGNORED : 0);
                } else {
                    double da = dets[d]->bbox[2] * dets[d]->bbox[3];
                    f = (da < lo || da > hi) ? F_IGNORED : 0;
                }
                out[d].flags[a][t] = f;
            }
        }
    }
}

/* ---- accumulate (one category) ------------------------------------------- */

static void accumulate_category(coco_eval_result *res, size_t k, det_rec *recs, size_t n_recs,
                                const size_t npig[COCO_A], double *rc, double *pr) {
    size_t K = res->n_cats;
    if (n_recs) qsort(recs, n_recs, sizeof *recs, cmp_det_rec);
    for (int a = 0; a < COCO_A; a++) {
        if (npig[a] == 0) continue;                      /* precision/recall stay -1 */
        for (int m = 0; m < COCO_M; m++) {
            for (int t = 0; t < COCO_T; t++) {
                double tp = 0, fp = 0;
                size_t nd = 0;
                for (size_t i = 0; i < n_recs; i++) {
                    if (recs[i].pos >= max_dets[m]) continue;
                    unsigned char f = recs[i].flags[a][t];
                    if (!(f & F_IGNORED)) {
                        if (f & F_MATCHED) tp += 1; else fp += 1;
                    }
                    rc[nd] = tp / (double)npig[a];
                    pr[nd] = tp / (fp + tp + DBL_EPSILON);
                    nd++;
                }
                res->recall[((size_t)t * K + k) * COCO_A * COCO_M + (size_t)a * COCO_M + (size_t)m] =
                    nd ? rc[nd - 1] : 0.0;
                for (size_t i = nd; i-- > 1;)
                    if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
                size_t j = 0;
                for (int r = 0; r < COCO_R; r++) {
                    double thr = rec_thr(r);
                    while (j < nd && rc[j] < thr) j++;   /* np.searchsorted(rc, thr, 'left') */
                    res->precision[(((size_t)t * COCO_R + (size_t)r) * K + k) * COCO_A * COCO_M +
                                   (size_t)a * COCO_M + (size_t)m] = j < nd ? pr[j] : 0.0;
                }
            }
        }
    }
}

/* ---- summarize ------------------------------------------------------------ */

/* pycocotools _summarize: mean of the entries > -1 of precision[t?, :, :, a, m]
 * (ap) or recall[t?, :, a, m], in C order of the slice. t < 0: all thresholds. */
static double summarize_one(const coco_eval_result *res, int ap, int t, int a, int m, double *buf, double *tmp) {
    size_t K = res->n_cats, n = 0;
    int t0 = t < 0 ? 0 : t, t1 = t < 0 ? COCO_T : t + 1;
    for (int ti = t0; ti < t1; ti++) {
        if (ap) {
            for (int r = 0; r < COCO_R; r++)
                for (size_t k = 0; k < K; k++)
                    buf[n++] = res->precision[(((size_t)ti * COCO_R + (size_t)r) * K + k) * COCO_A * COCO_M +
                                              (size_t)a * COCO_M + (size_t)m];
        } else {
            for (size_t k = 0; k < K; k++)
                buf[n++] = res->recall[((size_t)ti * K + k) * COCO_A * COCO_M + (size_t)a * COCO_M + (size_t)m];
        }
    }
    return mean_valid(buf, n, tmp);
}

static void summarize(coco_eval_result *res) {
    size_t K = res->n_cats, cap = (size_t)COCO_T * COCO_R * (K ? K : 1);
    double *buf = cd_xmalloc(cap * sizeof *buf), *tmp = cd_xmalloc(cap * sizeof *tmp);
    /* (ap, IoU index or -1, area, maxDets index) of the 12 stats; .75 = iou_thrs[5] exactly */
    static const int spec[COCO_N_STATS][4] = {
        {1, -1, 0, 2}, {1, 0, 0, 2}, {1, 5, 0, 2}, {1, -1, 1, 2}, {1, -1, 2, 2}, {1, -1, 3, 2},
        {0, -1, 0, 0}, {0, -1, 0, 1}, {0, -1, 0, 2}, {0, -1, 1, 2}, {0, -1, 2, 2}, {0, -1, 3, 2},
    };
    for (int i = 0; i < COCO_N_STATS; i++)
        res->stats[i] = summarize_one(res, spec[i][0], spec[i][1], spec[i][2], spec[i][3], buf, tmp);
    /* per category: precision[:, :, k, area all, maxDets 100] (as DETR / detectron2 report it) */
    for (size_t k = 0; k < K; k++) {
        size_t n = 0;
        for (int t = 0; t < COCO_T; t++)
            for (int r = 0; r < COCO_R; r++)
                buf[n++] = res->precision[(((size_t)t * COCO_R + (size_t)r) * K + k) * COCO_A * COCO_M + 2];
        res->cat_ap[k] = mean_valid(buf, n, tmp);
        res->cat_ap50[k] = mean_valid(buf, COCO_R, tmp);
    }
    free(buf);
    free(tmp);
}

/* ---- evaluate -------------------------------------------------------------- */

static int check_det(const coco_det *d, size_t i, const coco_dataset *gt) {
    if (coco_find_image(gt, d->image_id) < 0)
        return cd_seterr("detection %zu: image_id %lld is not an image of the ground truth %s", i,
                         (long long)d->image_id, gt->path ? gt->path : "");
    if (!isfinite(d->score)) return cd_seterr("detection %zu: score is not a finite number", i);
    for (int j = 0; j < 4; j++)
        if (!isfinite(d->bbox[j])) return cd_seterr("detection %zu: bbox[%d] is not a finite number", i, j);
    if (d->bbox[2] < 0 || d->bbox[3] < 0)
        return cd_seterr("detection %zu: bbox [x, y, w, h] has a negative size %g x %g", i, d->bbox[2],
                         d->bbox[3]);
    return 0;
}

void coco_eval_result_free(coco_eval_result *res) {
    if (!res) return;
    for (size_t k = 0; k < res->n_cats; k++) free(res->cat_names[k]);
    free(res->cat_ids); free(res->cat_names); free(res->cat_ap); free(res->cat_ap50);
    free(res->precision); free(res->recall);
    memset(res, 0, sizeof *res);
}

int coco_evaluate(coco_eval_result *res, const coco_dataset *gt, const coco_det *dets, size_t n_dets,
                  const coco_eval_opts *opts) {
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < n_dets; i++)
        if (check_det(&dets[i], i, gt)) return -1;

    /* evaluated images: sorted by id; rank[image index] = position, -1 = not evaluated */
    long *rank = cd_xmalloc((gt->n_images ? gt->n_images : 1) * sizeof *rank);
    size_t n_eval = 0;
    if (opts && opts->n_img_ids) {
        for (size_t i = 0; i < gt->n_images; i++) rank[i] = -1;
        for (size_t i = 0; i < opts->n_img_ids; i++) {
            long im = coco_find_image(gt, opts->img_ids[i]);
            if (im < 0) {
                free(rank);
                return cd_seterr("image id %lld to evaluate is not an image of the ground truth %s",
                                 (long long)opts->img_ids[i], gt->path ? gt->path : "");
            }
            rank[im] = 0;                                /* selected; duplicates are fine (np.unique) */
        }
    } else {
        for (size_t i = 0; i < gt->n_images; i++) rank[i] = 0;
    }
    id_sort *ord = cd_xmalloc((gt->n_images ? gt->n_images : 1) * sizeof *ord);
    for (size_t i = 0; i < gt->n_images; i++)
        if (rank[i] >= 0) ord[n_eval++] = (id_sort){i, gt->images[i].id};
    qsort(ord, n_eval, sizeof *ord, cmp_id_sort);
    for (size_t r = 0; r < n_eval; r++) rank[ord[r].id] = (long)r;
    free(ord);

    /* categories: sorted by id; catk[category index] = k */
    size_t K = gt->n_cats;
    id_sort *cord = cd_xmalloc((K ? K : 1) * sizeof *cord);
    for (size_t i = 0; i < K; i++) cord[i] = (id_sort){i, gt->cats[i].id};
    qsort(cord, K, sizeof *cord, cmp_id_sort);
    size_t *catk = cd_xmalloc((K ? K : 1) * sizeof *catk);
    res->n_cats = K;
    res->cat_ids = cd_xmalloc((K ? K : 1) * sizeof *res->cat_ids);
    res->cat_names = cd_xmalloc((K ? K : 1) * sizeof *res->cat_names);
    res->cat_ap = cd_xmalloc((K ? K : 1) * sizeof *res->cat_ap);
    res->cat_ap50 = cd_xmalloc((K ? K : 1) * sizeof *res->cat_ap50);
    for (size_t k = 0; k < K; k++) {
        catk[cord[k].id] = k;
        res->cat_ids[k] = gt->cats[cord[k].id].id;
        res->cat_names[k] = cd_xstrdup(gt->cats[cord[k].id].name ? gt->cats[cord[k].id].name : "");
    }
    free(cord);
    size_t np = (size_t)COCO_T * COCO_R * K * COCO_A * COCO_M, nr = (size_t)COCO_T * K * COCO_A * COCO_M;
    res->precision = cd_xmalloc((np ? np : 1) * sizeof *res->precision);
    res->recall = cd_xmalloc((nr ? nr : 1) * sizeof *res->recall);
    for (size_t i = 0; i < np; i++) res->precision[i] = -1;
    for (size_t i = 0; i < nr; i++) res->recall[i] = -1;
    res->n_images = n_eval;
    res->n_dets = n_dets;

    /* GT and detections of evaluated images and known categories, by (k, image rank) */
    gt_ref *gr = cd_xmalloc((gt->n_anns ? gt->n_anns : 1) * sizeof *gr);
    size_t n_gr = 0;
    for (size_t i = 0; i < gt->n_anns; i++) {
        long c = coco_find_category(gt, gt->anns[i].category_id);
        long rk = rank[gt->anns[i].image_index];
        if (c >= 0 && rk >= 0) gr[n_gr++] = (gt_ref){catk[c], rk, i};
    }
    qsort(gr, n_gr, sizeof *gr, cmp_gt_ref);
    dt_ref *dr = cd_xmalloc((n_dets ? n_dets : 1) * sizeof *dr);
    size_t n_dr = 0;
    for (size_t i = 0; i < n_dets; i++) {
        long c = coco_find_category(gt, dets[i].category_id);
        if (c < 0) { res->n_dets_unknown_cat++; continue; }
        long rk = rank[coco_find_image(gt, dets[i].image_id)];
        if (rk >= 0) dr[n_dr++] = (dt_ref){catk[c], rk, dets[i].score, i};
    }
    qsort(dr, n_dr, sizeof *dr, cmp_dt_ref);
    free(rank);
    free(catk);

    scratch s = {0};
    const coco_ann **gts = NULL;
    const coco_det *dptr[MAX_DET];
    double dscore[MAX_DET];
    size_t cap_gts = 0, cap_recs = 0;
    det_rec *recs = NULL;
    double *rc = NULL, *pr = NULL;
    size_t gi = 0, di = 0;
    for (size_t k = 0; k < K; k++) {
        size_t npig[COCO_A] = {0}, n_recs = 0;
        while ((gi < n_gr && gr[gi].k == k) || (di < n_dr && dr[di].k == k)) {
            long rk = LONG_MAX;
            if (gi < n_gr && gr[gi].k == k) rk = gr[gi].rank;
            if (di < n_dr && dr[di].k == k && dr[di].rank < rk) rk = dr[di].rank;
            size_t G = 0, D = 0;
            for (; gi < n_gr && gr[gi].k == k && gr[gi].rank == rk; gi++) {
                if (G == cap_gts) { cap_gts = cap_gts ? 2 * cap_gts : 64; gts = cd_xrealloc(gts, cap_gts * sizeof *gts); }
                gts[G++] = &gt->anns[gr[gi].ann];
            }
            for (; di < n_dr && dr[di].k == k && dr[di].rank == rk; di++)
                if (D < MAX_DET) { dptr[D] = &dets[dr[di].i]; dscore[D] = dr[di].score; D++; }
            if (n_recs + D > cap_recs) {
                cap_recs = 2 * (n_recs + D) + 256;
                recs = cd_xrealloc(recs, cap_recs * sizeof *recs);
                rc = cd_xrealloc(rc, cap_recs * sizeof *rc);
                pr = cd_xrealloc(pr, cap_recs * sizeof *pr);
            }
            evaluate_image(recs + n_recs, npig, gts, G, dptr, dscore, D, rk, &s);
            n_recs += D;
        }
        accumulate_category(res, k, recs, n_recs, npig, rc, pr);
    }
    free(s.iou); free(s.order); free(s.gt_ig); free(s.gt_m);
    free(gts); free(recs); free(rc); free(pr); free(gr); free(dr);
    summarize(res);
    return 0;
}

/* ---- results file ----------------------------------------------------------- */

static int res_int(const cJSON *obj, const char *key, int64_t *out, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return cd_seterr("%s: missing \"%s\" (each detection needs image_id, category_id, bbox [x,y,w,h], score)",
                         ctx, key);
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!(isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740992.0))
        return cd_seterr("%s: \"%s\" must be an integer, got %s", ctx, key, coco_json_type_name(it));
    *out = (int64_t)v;
    return 0;
}

int coco_results_load(coco_det **dets, size_t *n_dets, const char *path, const coco_dataset *gt) {
    *dets = NULL;
    *n_dets = 0;
    cJSON *root = cd_json_parse_file(path);
    if (!root) return -1;
    if (!cJSON_IsArray(root)) {
        cd_seterr("%s: a results file must be a JSON list of detections [{\"image_id\": .., \"category_id\": .., "
                  "\"bbox\": [x,y,w,h], \"score\": ..}, ...], got %s%s", path, coco_json_type_name(root),
                  cJSON_IsObject(root) ? " (a ground-truth file?)" : "");
        cJSON_Delete(root);
        return -1;
    }
    size_t n = (size_t)cJSON_GetArraySize(root), i = 0;
    coco_det *out = cd_xmalloc((n ? n : 1) * sizeof *out);
    char ctx[600];
    int rc = 0;
    for (const cJSON *it = root->child; it && !rc; it = it->next, i++) {
        coco_det *d = &out[i];
        snprintf(ctx, sizeof ctx, "%s: [%zu]", path, i);
        if (!cJSON_IsObject(it)) { rc = cd_seterr("%s: expected a detection object, got %s", ctx, coco_json_type_name(it)); break; }
        if (res_int(it, "image_id", &d->image_id, ctx) || res_int(it, "category_id", &d->category_id, ctx)) {
            rc = -1;
            break;
        }
        const cJSON *bb = cJSON_GetObjectItemCaseSensitive(it, "bbox");
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(it, "score");
        if (!bb) { rc = cd_seterr("%s: missing \"bbox\" (a list [x, y, w, h])", ctx); break; }
        if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4) {
            rc = cd_seterr("%s: bad bbox: must be a list of 4 numbers [x, y, w, h], got %s%s", ctx, coco_json_type_name(bb),
                           cJSON_IsArray(bb) ? " of another length" : "");
            break;
        }
        int j = 0;
        for (const cJSON *v = bb->child; v; v = v->next, j++) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                rc = cd_seterr("%s: bad bbox: bbox[%d] must be a number, got %s", ctx, j, coco_json_type_name(v));
                break;
            }
            d->bbox[j] = v->valuedouble;
        }
        if (rc) break;
        if (d->bbox[2] < 0 || d->bbox[3] < 0) {
            rc = cd_seterr("%s: bad bbox [%g, %g, %g, %g]: width and height must be >= 0 (bbox is [x, y, w, h], "
                           "not [x1, y1, x2, y2])", ctx, d->bbox[0], d->bbox[1], d->bbox[2], d->bbox[3]);
            break;
        }
        if (!sc) {
            rc = cd_seterr("%s: missing \"score\" (each detection needs image_id, category_id, bbox [x,y,w,h], "
                           "score)", ctx);
            break;
        }
        if (!cJSON_IsNumber(sc) || !isfinite(sc->valuedouble)) {
            rc = cd_seterr("%s: \"score\" must be a number, got %s", ctx, coco_json_type_name(sc));
            break;
        }
        d->score = sc->valuedouble;
        if (coco_find_image(gt, d->image_id) < 0) {
            rc = cd_seterr("%s: image_id %lld is not an image of the ground truth %s (results must be for its "
                           "images)", ctx, (long long)d->image_id, gt->path ? gt->path : "");
            break;
        }
    }
    cJSON_Delete(root);
    if (rc) { free(out); return -1; }
    *dets = out;
    *n_dets = n;
    return 0;
}

/* ---- output ------------------------------------------------------------------ */

void coco_eval_print_summary(FILE *f, const coco_eval_result *res) {
    static const int spec[COCO_N_STATS][4] = {      /* ap, IoU (0: all, 50, 75), area, maxDets */
        {1, 0, 0, 100}, {1, 50, 0, 100}, {1, 75, 0, 100}, {1, 0, 1, 100}, {1, 0, 2, 100}, {1, 0, 3, 100},
        {0, 0, 0, 1}, {0, 0, 0, 10}, {0, 0, 0, 100}, {0, 0, 1, 100}, {0, 0, 2, 100}, {0, 0, 3, 100},
    };
    for (int i = 0; i < COCO_N_STATS; i++) {
        const char *iou = spec[i][1] == 0 ? "0.50:0.95" : spec[i][1] == 50 ? "0.50" : "0.75";
        fprintf(f, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                spec[i][0] ? "Average Precision" : "Average Recall", spec[i][0] ? "(AP)" : "(AR)", iou,
                area_names[spec[i][2]], spec[i][3], res->stats[i]);
    }
}

void coco_eval_print_per_category(FILE *f, const coco_eval_result *res) {
    fprintf(f, "per-category AP @[ IoU=0.50:0.95 and 0.50 | area=   all | maxDets=100 ]:\n");
    fprintf(f, "%8s  %-24s %7s %7s\n", "id", "name", "AP", "AP50");
    for (size_t k = 0; k < res->n_cats; k++) {
        char ap[16], ap50[16];
        if (res->cat_ap[k] > -1) snprintf(ap, sizeof ap, "%.3f", res->cat_ap[k]); else snprintf(ap, sizeof ap, "n/a");
        if (res->cat_ap50[k] > -1) snprintf(ap50, sizeof ap50, "%.3f", res->cat_ap50[k]);
        else snprintf(ap50, sizeof ap50, "n/a");
        fprintf(f, "%8lld  %-24s %7s %7s\n", (long long)res->cat_ids[k], res->cat_names[k], ap, ap50);
    }
    fprintf(f, "(n/a: no ground truth of that category, left out of the means)\n");
}

/* The shortest decimal that reads back as exactly v (cJSON's own printing
 * accepts 15 digits that are only within an ulp). */
static cJSON *exact_number(double v) {
    char s[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    return cJSON_CreateRaw(s);
}

int coco_eval_write_json(const char *path, const coco_eval_result *res) {
    cJSON *root = cJSON_CreateObject(), *stats = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray(), *cats = cJSON_CreateArray();
    for (int i = 0; i < COCO_N_STATS; i++) {
        cJSON_AddItemToObject(stats, coco_stat_names[i], exact_number(res->stats[i]));
        cJSON_AddItemToArray(list, exact_number(res->stats[i]));
    }
    cJSON_AddItemToObject(root, "stats", stats);
    cJSON_AddItemToObject(root, "stats_list", list);
    for (size_t k = 0; k < res->n_cats; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "id", (double)res->cat_ids[k]);
        cJSON_AddStringToObject(c, "name", res->cat_names[k]);
        cJSON_AddItemToObject(c, "ap", exact_number(res->cat_ap[k]));
        cJSON_AddItemToObject(c, "ap50", exact_number(res->cat_ap50[k]));
        cJSON_AddItemToArray(cats, c);
    }
    cJSON_AddItemToObject(root, "per_category", cats);
    cJSON_AddNumberToObject(root, "n_images", (double)res->n_images);
    cJSON_AddNumberToObject(root, "n_dets", (double)res->n_dets);
    cJSON_AddNumberToObject(root, "n_dets_unknown_category", (double)res->n_dets_unknown_cat);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) {
        rc = cd_seterr("cannot write %s: %s", path, strerror(errno));
    } else {
        if (fputs(text, f) < 0 || fputc('\n', f) < 0) rc = cd_seterr("cannot write %s: %s", path, strerror(errno));
        if (fclose(f) != 0 && !rc) rc = cd_seterr("cannot write %s: %s", path, strerror(errno));
    }
    free(text);
    return rc;
}
