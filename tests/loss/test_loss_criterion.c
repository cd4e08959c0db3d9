/* criterion_loss: every output vs the PyTorch/scipy reference fixture (aux
 * layers, an image without targets, more targets than queries, identical
 * boxes, other weights, aux off, an empty batch); gradients vs central
 * differences of the total; NaN and bad-input messages; degenerate boxes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/loss.h"
#include "../check.h"
#include "fixture.h"

static float *to_float(const double *x, size_t n) {
    float *f = cd_xmalloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static double *to_double(const float *x, size_t n) {
    double *d = cd_xmalloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static const fx_array *need(const fx_file *fx, int k, const char *what) {
    char name[64];
    snprintf(name, sizeof name, "c%d.%s", k, what);
    const fx_array *a = fx_get(fx, name);
    if (!a) { t_ok(0, "fixture array %s present", name); exit(t_done()); }
    return a;
}

static void test_fixture(void) {
    fx_file fx;
    if (fx_load(&fx, "criterion.bin")) { t_ok(0, "load criterion.bin"); return; }
    const fx_array *count = fx_get(&fx, "count");
    criterion_result res = {0};   /* one result reused across cases of different sizes */
    for (int k = 0; count && k < (int)count->data[0]; k++) {
        const fx_array *sz = need(&fx, k, "sizes");
        size_t L = (size_t)sz->data[0], B = (size_t)sz->data[1], Q = (size_t)sz->data[2], K1 = (size_t)sz->data[3];
        const double *n = need(&fx, k, "n")->data, *o = need(&fx, k, "opts")->data;
        const fx_array *lab = need(&fx, k, "labels"), *tb = need(&fx, k, "tboxes");
        int *labels = cd_xmalloc((lab->n + 1) * sizeof *labels);
        for (size_t i = 0; i < lab->n; i++) labels[i] = (int)lab->data[i];
        float *tboxes = to_float(tb->data, tb->n);
        float *logits = to_float(need(&fx, k, "logits")->data, L * B * Q * K1);
        float *boxes = to_float(need(&fx, k, "boxes")->data, L * B * Q * 4);
        criterion_target *tg = cd_xcalloc(B, sizeof *tg);
        for (size_t b = 0, s = 0; b < B; b++) {
            tg[b] = (criterion_target){labels + s, tboxes + 4 * s, (size_t)n[b]};
            s += (size_t)n[b];
        }
        criterion_opts opt = {o[0], o[1], o[2], o[3], {o[4], o[5], o[6]}, (int)o[7], 0, 0};
        float *dl = cd_xmalloc(L * B * Q * K1 * sizeof *dl), *db = cd_xmalloc(L * B * Q * 4 * sizeof *db);
        memset(dl, 0x7f, L * B * Q * K1 * sizeof *dl);   /* garbage: every element must be written */
        memset(db, 0x7f, L * B * Q * 4 * sizeof *db);
        int rc = criterion_loss(&res, dl, db, logits, boxes, tg, L, B, Q, K1, &opt);
        t_ok(rc == 0, "case %d (L=%zu B=%zu Q=%zu K1=%zu): criterion_loss succeeds %s", k, L, B, Q, K1,
             rc ? cd_errbuf() : "");
        if (rc) continue;

        char name[64];
        double got_terms[64 * 7];
        for (size_t l = 0; l < L; l++) {
            const criterion_layer_terms *t = &res.layer[l];
            double v[7] = {t->loss_ce, t->loss_bbox, t->loss_giou, t->weighted_ce, t->weighted_bbox,
                           t->weighted_giou, t->cardinality_error};
            memcpy(got_terms + 7 * l, v, sizeof v);
        }
        /* double math from the same float inputs: only summation order differs */
        snprintf(name, sizeof name, "case %d loss terms per layer", k);
        t_close_d(name, need(&fx, k, "terms")->data, got_terms, 7 * L, 1e-14, 1e-12);
        double sc[3] = {res.total, res.class_error, res.num_boxes};
        snprintf(name, sizeof name, "case %d total, class_error, num_boxes", k);
        t_close_d(name, need(&fx, k, "scalars")->data, sc, 3, 1e-14, 1e-12);

        const fx_array *m = need(&fx, k, "match");
        size_t P = m->dims[0], bad = 0, pi = 0;
        for (size_t l = 0; l < L; l++)
            for (size_t b = 0; b < B; b++)
                for (size_t j = res.match_start[l * B + b]; j < res.match_start[l * B + b + 1]; j++, pi++) {
                    const double *r = m->data + 4 * pi;
                    if (pi >= P || r[0] != (double)l || r[1] != (double)b ||
                        r[2] != (double)res.match_query[j] || r[3] != (double)res.match_target[j]) {
                        if (bad++ < 3) t_diag("pair %zu: got (layer %zu, image %zu, query %zu, target %zu)",
                                              pi, l, b, res.match_query[j], res.match_target[j]);
                    }
                }
        t_ok(bad == 0 && pi == P, "case %d: %zu matched pairs of every layer and image equal scipy's (%zu)",
             k, pi, P);

        /* float outputs of a double computation: one rounding to float */
        double *dld = to_double(dl, L * B * Q * K1), *dbd = to_double(db, L * B * Q * 4);
        snprintf(name, sizeof name, "case %d dtotal/dlogits", k);
        t_close_d(name, need(&fx, k, "dlogits")->data, dld, L * B * Q * K1, 1e-12, 1.2e-7);
        snprintf(name, sizeof name, "case %d dtotal/dboxes", k);
        t_close_d(name, need(&fx, k, "dboxes")->data, dbd, L * B * Q * 4, 1e-12, 1.2e-7);

        double total = res.total;
        rc = criterion_loss(&res, NULL, NULL, logits, boxes, tg, L, B, Q, K1, &opt);
        t_ok(rc == 0 && res.total == total, "case %d: same total without gradient outputs", k);

        free(dld); free(dbd); free(dl); free(db); free(tg);
        free(labels); free(tboxes); free(logits); free(boxes);
    }
    criterion_result_free(&res);
    fx_free(&fx);
}

/* A small batch whose matching is stable: every target has a query sitting
 * close to it (and a logit favouring its class), the other queries are far. */
enum { FL = 3, FB = 3, FQ = 8, FK1 = 6 };
static float f_logits[FL * FB * FQ * FK1], f_boxes[FL * FB * FQ * 4];
static int f_labels[6] = {1, 3, 0, 4, 2, 2};
static float f_tboxes[6 * 4];
static criterion_target f_tg[FB];

/* A prediction near its target whose cxcywh coordinates and xyxy edges all
 * differ from the target's by >= 0.005: no |.|, max or min of the loss has a
 * kink within the finite-difference step. */
static int near_without_kinks(const float *x, const float *tb) {
    for (int c = 0; c < 4; c++) {
        if (fabsf(x[c] - tb[c]) < 0.005f) return 0;
        double e = (double)x[c % 2] + (c < 2 ? -0.5 : 0.5) * x[c % 2 + 2];
        double et = (double)tb[c % 2] + (c < 2 ? -0.5 : 0.5) * tb[c % 2 + 2];
        if (fabs(e - et) < 0.005) return 0;
    }
    return 1;
}

static void make_fd_batch(int fixed) {
    t_seed(42);
    for (int i = 0; i < 6; i++) {
        f_tboxes[4 * i + 0] = (float)t_uniform(0.25, 0.75);
        f_tboxes[4 * i + 1] = (float)t_uniform(0.25, 0.75);
        f_tboxes[4 * i + 2] = (float)t_uniform(0.1, 0.3);
        f_tboxes[4 * i + 3] = (float)t_uniform(0.1, 0.3);
    }
    f_tg[0] = (criterion_target){f_labels, f_tboxes, 2};
    f_tg[1] = (criterion_target){NULL, NULL, 0};
    f_tg[2] = (criterion_target){f_labels + 2, f_tboxes + 8, 4};
    const size_t tstart[FB] = {0, 2, 2};
    for (size_t l = 0; l < FL; l++)
        for (size_t b = 0; b < FB; b++)
            for (size_t q = 0; q < FQ; q++) {
                float *z = f_logits + ((l * FB + b) * FQ + q) * FK1, *x = f_boxes + ((l * FB + b) * FQ + q) * 4;
                memset(x, 0, 4 * sizeof *x);
                for (size_t c = 0; c < FK1; c++) z[c] = (float)t_uniform(-1.5, 1.5);
                size_t t = fixed ? q : (q + l) % FQ;   /* query of target t differs per layer (Hungarian) */
                if (t < f_tg[b].n) {
                    const float *tb = f_tboxes + 4 * (tstart[b] + t);
                    do {        /* at least one draw: the zero box passes the test below */
                        for (int c = 0; c < 4; c++) x[c] = tb[c] + (float)t_uniform(-0.03, 0.03);
                    } while (!near_without_kinks(x, tb));
                    z[f_tg[b].labels[t]] += 2.0f;
                } else {
                    x[0] = (float)t_uniform(0.05, 0.95);
                    x[1] = (float)t_uniform(0.05, 0.95);
                    x[2] = (float)t_uniform(0.02, 0.08);
                    x[3] = (float)t_uniform(0.02, 0.08);
                }
            }
}

static int same_matches(const criterion_result *a, const criterion_result *b, size_t np) {
    return memcmp(a->match_query, b->match_query, np * sizeof *a->match_query) == 0 &&
           memcmp(a->match_target, b->match_target, np * sizeof *a->match_target) == 0;
}

static double total_at(float *x, size_t i, float v, const criterion_opts *opt, criterion_result *res) {
    float keep = x[i];
    x[i] = v;
    if (criterion_loss(res, NULL, NULL, f_logits, f_boxes, f_tg, FL, FB, FQ, FK1, opt))
        cd_fatal("criterion_loss: %s", cd_errbuf());
    x[i] = keep;
    return res->total;
}

static void test_finite_differences(int fixed) {
    make_fd_batch(fixed);
    criterion_opts opt;
    criterion_opts_default(&opt);
    opt.fixed_match = fixed;
    criterion_result res = {0}, probe = {0};
    float dl[FL * FB * FQ * FK1], db[FL * FB * FQ * 4];
    if (criterion_loss(&res, dl, db, f_logits, f_boxes, f_tg, FL, FB, FQ, FK1, &opt)) {
        t_ok(0, "fd batch: %s", cd_errbuf());
        return;
    }
    size_t np = res.match_start[FL * FB];
    t_ok(np == FL * 6, "fd batch%s: %zu pairs matched (3 layers x 6 targets)", fixed ? " (fixed matching)" : "", np);
    if (fixed) {
        /* query k answers target k; padding queries get no gradient; the CE is the
         * plain mean over the answering queries */
        int ident = 1, pad_zero = 1;
        for (size_t l = 0; l < FL; l++)
            for (size_t b = 0; b < FB; b++) {
                size_t end = l * FB + b + 1 < FL * FB ? res.match_start[l * FB + b + 1] : np;
                for (size_t k = res.match_start[l * FB + b], i = 0; k < end; k++, i++)
                    ident &= res.match_query[k] == i && res.match_target[k] == i;
                for (size_t q = f_tg[b].n; q < FQ; q++) {
                    for (size_t c = 0; c < FK1; c++) pad_zero &= dl[((l * FB + b) * FQ + q) * FK1 + c] == 0.0f;
                    for (size_t c = 0; c < 4; c++) pad_zero &= db[((l * FB + b) * FQ + q) * 4 + c] == 0.0f;
                }
            }
        t_ok(ident, "fixed matching: query k answers target k in every image and layer");
        t_ok(pad_zero, "fixed matching: queries past an image's targets get no gradient");
        double ce = 0;
        for (size_t b = 0; b < FB; b++)
            for (size_t q = 0; q < f_tg[b].n; q++) {
                const float *z = f_logits + (((FL - 1) * FB + b) * FQ + q) * FK1;
                double m = z[0], se = 0;
                for (size_t c = 1; c < FK1; c++) m = fmax(m, z[c]);
                for (size_t c = 0; c < FK1; c++) se += exp(z[c] - m);
                ce += m + log(se) - z[f_tg[b].labels[q]];
            }
        ce /= 6;
        t_ok(fabs(res.layer[FL - 1].loss_ce - ce) < 1e-12, "fixed matching: loss_ce %.9f = mean CE of the 6 "
             "answering queries %.9f", res.layer[FL - 1].loss_ce, ce);
    }

    /* Central differences in double on the float inputs: the actual step is
     * (float)(x+h) - (float)(x-h); h = 2^-12 keeps the truncation error
     * (~h^2/6 * f''') near 1e-8 and far above the loss's double rounding
     * (~1e-16 / h); the analytic side is rounded to float (rel 6e-8). */
    const double h = 1.0 / 4096;
    struct { const char *name; float *x; const float *g; size_t n; } sets[] = {
        {"dtotal/dlogits", f_logits, dl, sizeof f_logits / sizeof *f_logits},
        {"dtotal/dboxes", f_boxes, db, sizeof f_boxes / sizeof *f_boxes},
    };
    for (int s = 0; s < 2; s++) {
        double *fd = cd_xmalloc(sets[s].n * sizeof *fd), *an = cd_xmalloc(sets[s].n * sizeof *an);
        size_t rematched = 0;
        for (size_t i = 0; i < sets[s].n; i++) {
            float xp = (float)(sets[s].x[i] + h), xm = (float)(sets[s].x[i] - h);
            double fp = total_at(sets[s].x, i, xp, &opt, &probe);
            rematched += !same_matches(&probe, &res, np);
            double fm = total_at(sets[s].x, i, xm, &opt, &probe);
            rematched += !same_matches(&probe, &res, np);
            fd[i] = (fp - fm) / ((double)xp - (double)xm);
            an[i] = sets[s].g[i];
        }
        t_ok(rematched == 0, "%s: no perturbation changed the matching (%zu did)", sets[s].name, rematched);
        t_close_d(sets[s].name, fd, an, sets[s].n, 1e-6, 1e-5);
        free(fd);
        free(an);
    }
    criterion_result_free(&res);
    criterion_result_free(&probe);
}

static int fails_with(const char *want, const criterion_opts *opt, const float *logits, const float *boxes,
                      const criterion_target *tg) {
    criterion_result res = {0};
    int rc = criterion_loss(&res, NULL, NULL, logits, boxes, tg, FL, FB, FQ, FK1, opt);
    criterion_result_free(&res);
    int ok = rc == -1 && strstr(cd_errbuf(), want) != NULL;
    if (!ok) t_diag("rc %d, message '%s', expected it to contain '%s'", rc, rc ? cd_errbuf() : "", want);
    return ok;
}

static void test_bad_inputs(void) {
    make_fd_batch(0);
    criterion_opts opt;
    criterion_opts_default(&opt);
    size_t at = ((1 * FB + 2) * FQ + 5) * FK1 + 3;   /* layer 1, image 2, query 5, logit 3 */
    f_logits[at] = NAN;
    t_ok(fails_with("decoder layer 1 (aux _1), image 2, query 5: predicted logit[3] is nan", &opt,
                    f_logits, f_boxes, f_tg), "NaN logit: error names layer, image, query: '%s'", cd_errbuf());
    f_logits[at] = INFINITY;
    t_ok(fails_with("decoder layer 1 (aux _1), image 2, query 5: predicted logit[3] is inf", &opt,
                    f_logits, f_boxes, f_tg), "inf logit: error names layer, image, query");
    f_logits[at] = 0;
    at = ((2 * FB + 1) * FQ + 7) * 4 + 2;            /* final layer, image 1 (no targets), query 7, w */
    f_boxes[at] = NAN;
    t_ok(fails_with("decoder layer 2 (final), image 1, query 7: predicted box[2] is nan", &opt,
                    f_logits, f_boxes, f_tg), "NaN box in an image without targets: '%s'", cd_errbuf());
    opt.aux_loss = 0;
    f_boxes[at] = 0.5f;
    f_boxes[((0 * FB + 1) * FQ + 7) * 4] = NAN;     /* an unused aux layer is not read */
    criterion_result res = {0};
    t_ok(criterion_loss(&res, NULL, NULL, f_logits, f_boxes, f_tg, FL, FB, FQ, FK1, &opt) == 0 &&
         isfinite(res.total), "aux_loss off: a NaN in an aux layer is ignored");
    criterion_result_free(&res);
    opt.aux_loss = 1;
    t_ok(fails_with("decoder layer 0 (aux _0), image 1, query 7: predicted box[0] is nan", &opt,
                    f_logits, f_boxes, f_tg), "aux_loss on: the same NaN is reported");
    make_fd_batch(0);

    f_tboxes[4 * 1 + 3] = NAN;
    t_ok(fails_with("image 0, target 1: box[3] is nan", &opt, f_logits, f_boxes, f_tg),
         "NaN target box: '%s'", cd_errbuf());
    make_fd_batch(0);
    f_labels[3] = 5;   /* == K: the no-object index */
    t_ok(fails_with("image 2, target 1: label 5 is outside [0, 5)", &opt, f_logits, f_boxes, f_tg),
         "label = no-object index: '%s'", cd_errbuf());
    f_labels[3] = -1;
    t_ok(fails_with("image 2, target 1: label -1 is outside", &opt, f_logits, f_boxes, f_tg),
         "negative label is refused");
    f_labels[3] = 4;
    opt.eos_coef = 0;
    t_ok(fails_with("eos_coef = 0, expected a finite number > 0", &opt, f_logits, f_boxes, f_tg),
         "eos_coef 0 is refused: '%s'", cd_errbuf());
    criterion_opts_default(&opt);
    opt.cost.cost_giou = NAN;
    t_ok(fails_with("cost_giou = nan", &opt, f_logits, f_boxes, f_tg), "NaN cost weight is refused");
}

static void test_degenerate_predictions(void) {
    make_fd_batch(0);
    criterion_opts opt;
    criterion_opts_default(&opt);
    /* zero-area and inverted predictions on the queries matched to targets,
     * a zero-area target, and a prediction identical to a zero-area target */
    float *x = f_boxes + ((2 * FB + 0) * FQ + 6) * 4;   /* final layer, image 0, query 6 (-> target 0) */
    x[2] = 0; x[3] = 0;
    x = f_boxes + ((1 * FB + 0) * FQ + 7) * 4;           /* layer 1, image 0, query 7 (-> target 0) */
    x[2] = -0.2f; x[3] = -0.1f;
    f_tboxes[8 + 2] = 0;                                  /* image 2, target 0: zero width */
    for (size_t l = 0; l < FL; l++) {                     /* the query near it copies it exactly */
        float *p = f_boxes + ((l * FB + 2) * FQ + (FQ - l) % FQ) * 4;
        memcpy(p, f_tboxes + 8, 4 * sizeof *p);
    }
    criterion_result res = {0};
    float dl[FL * FB * FQ * FK1], db[FL * FB * FQ * 4];
    int rc = criterion_loss(&res, dl, db, f_logits, f_boxes, f_tg, FL, FB, FQ, FK1, &opt);
    int finite = rc == 0 && isfinite(res.total);
    for (size_t i = 0; finite && i < sizeof dl / sizeof *dl; i++) finite = isfinite(dl[i]);
    for (size_t i = 0; finite && i < sizeof db / sizeof *db; i++) finite = isfinite(db[i]);
    t_ok(finite, "zero-area, inverted and zero-area-identical boxes: finite loss %.6g and gradients %s",
         res.total, rc ? cd_errbuf() : "");
    criterion_result_free(&res);
    make_fd_batch(0);
}

static void test_many_targets(void) {
    /* 130 targets, 100 queries: 100 pairs, each query once, targets distinct */
    enum { Q = 100, T = 130, K1 = 4 };
    float *logits = cd_xmalloc(Q * K1 * sizeof *logits), *boxes = cd_xmalloc(Q * 4 * sizeof *boxes);
    float *tb = cd_xmalloc(T * 4 * sizeof *tb);
    int *lab = cd_xmalloc(T * sizeof *lab);
    t_seed(5);
    for (size_t i = 0; i < Q * K1; i++) logits[i] = (float)t_uniform(-2, 2);
    for (size_t i = 0; i < Q * 4; i++) boxes[i] = (float)t_uniform(0.1, 0.6);
    for (size_t i = 0; i < T * 4; i++) tb[i] = (float)t_uniform(0.1, 0.6);
    for (size_t i = 0; i < T; i++) lab[i] = (int)(i % 3);
    criterion_target tg = {lab, tb, T};
    criterion_opts opt;
    criterion_opts_default(&opt);
    criterion_result res = {0};
    int rc = criterion_loss(&res, NULL, NULL, logits, boxes, &tg, 1, 1, Q, K1, &opt);
    int ok = rc == 0 && res.match_start[1] == Q && res.num_boxes == T;
    unsigned char seen[T] = {0};
    for (size_t k = 0; ok && k < Q; k++) {
        ok = res.match_query[k] == k && res.match_target[k] < T && !seen[res.match_target[k]];
        if (ok) seen[res.match_target[k]] = 1;
    }
    t_ok(ok, "130 targets, 100 queries: every query matched once, distinct targets, num_boxes 130");
    criterion_result_free(&res);
    free(logits); free(boxes); free(tb); free(lab);
}

int main(void) {
    (void)t_close_f;   /* check.h helper this test does not need */
    test_fixture();
    test_finite_differences(0);
    test_finite_differences(1);     /* the denoising queries' fixed matching */
    test_bad_inputs();
    test_degenerate_predictions();
    test_many_targets();
    return t_done();
}
