/* Box ops: conversions, IoU/GIoU values worked out by hand, pairwise forms,
 * gradients of GIoU and L1 vs central differences, degenerate boxes. */
#include <math.h>
#include <string.h>

#include "cldetr/box.h"
#include "../check.h"

static int all_finite(const double *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void random_cxcywh(double b[4]) {
    b[0] = t_uniform(0.2, 0.8);
    b[1] = t_uniform(0.2, 0.8);
    b[2] = t_uniform(0.05, 0.5);
    b[3] = t_uniform(0.05, 0.5);
}

static void test_conversions(void) {
    double worst = 0;
    t_seed(1);
    for (int i = 0; i < 100; i++) {
        double b[4], x[4], back[4];
        random_cxcywh(b);
        box_cxcywh_to_xyxy(x, b);
        box_xyxy_to_cxcywh(back, x);
        for (int k = 0; k < 4; k++) worst = fmax(worst, fabs(back[k] - b[k]));
    }
    t_ok(worst < 1e-15, "cxcywh -> xyxy -> cxcywh round trip (max err %.2g)", worst);
    double b[4] = {0.5, 0.25, 0.2, 0.1}, x[4];
    box_cxcywh_to_xyxy(x, b);
    t_ok(x[0] == 0.4 && x[1] == 0.2 && x[2] == 0.6 && x[3] == 0.3,
         "cxcywh (0.5,0.25,0.2,0.1) -> xyxy (%g,%g,%g,%g)", x[0], x[1], x[2], x[3]);
    double a1[4] = {1, 2, 4, 7}, inv[4] = {3, 0, 1, 5};
    t_ok(box_area(a1) == 15, "area of (1,2,4,7) = 15");
    t_ok(box_area(inv) == 0, "area of an inverted box is 0");
}

static void test_values(void) {
    const struct { double a[4], b[4], iou, giou; const char *what; } cases[] = {
        {{0, 0, 2, 2}, {1, 1, 3, 3}, 1.0 / 7, 1.0 / 7 - 2.0 / 9, "partial overlap"},
        {{0, 0, 1, 1}, {2, 0, 3, 1}, 0, -1.0 / 3, "disjoint"},
        {{0, 0, 4, 4}, {1, 1, 2, 2}, 1.0 / 16, 1.0 / 16, "contained"},
        {{0, 0, 1, 1}, {1, 0, 2, 1}, 0, 0, "touching"},
        {{.1, .2, .5, .9}, {.1, .2, .5, .9}, 1, 1, "identical"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double iou = box_iou(cases[i].a, cases[i].b), giou = box_giou(cases[i].a, cases[i].b);
        double iou2 = box_iou(cases[i].b, cases[i].a), giou2 = box_giou(cases[i].b, cases[i].a);
        t_ok(fabs(iou - cases[i].iou) < 1e-15 && fabs(giou - cases[i].giou) < 1e-15 &&
             iou == iou2 && giou == giou2,
             "%s: IoU %.17g (want %.17g), GIoU %.17g (want %.17g), symmetric",
             cases[i].what, iou, cases[i].iou, giou, cases[i].giou);
    }
}

static void test_pairwise(void) {
    double a[3 * 4], b[2 * 4], iou[6], giou[6];
    t_seed(2);
    for (int i = 0; i < 3; i++) { double c[4]; random_cxcywh(c); box_cxcywh_to_xyxy(a + 4 * i, c); }
    for (int j = 0; j < 2; j++) { double c[4]; random_cxcywh(c); box_cxcywh_to_xyxy(b + 4 * j, c); }
    box_pairwise_iou(iou, a, b, 3, 2);
    box_pairwise_giou(giou, a, b, 3, 2);
    int ok = 1;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            ok &= iou[i * 2 + j] == box_iou(a + 4 * i, b + 4 * j) &&
                  giou[i * 2 + j] == box_giou(a + 4 * i, b + 4 * j) &&
                  giou[i * 2 + j] <= iou[i * 2 + j] && giou[i * 2 + j] >= -1;
    t_ok(ok, "pairwise IoU/GIoU [3,2] equal the single-pair values, -1 <= GIoU <= IoU");
}

/* GIoU of two cxcywh boxes through the public xyxy function (no gradient path). */
static double giou_of(const double p[4], const double t[4]) {
    double px[4], tx[4];
    box_cxcywh_to_xyxy(px, p);
    box_cxcywh_to_xyxy(tx, t);
    return box_giou(px, tx);
}

static void test_gradients(void) {
    const double h = 1e-6;
    double worst = 0;
    int ok = 1, n = 0;
    t_seed(3);
    for (int trial = 0; trial < 200; trial++) {
        double p[4], t[4], d[4];
        random_cxcywh(p);
        random_cxcywh(t);
        if (trial % 4 == 0) p[0] += 0.6;   /* some disjoint pairs: only the penalty term acts */
        double g = box_giou_grad_cxcywh(d, p, t);
        ok &= fabs(g - giou_of(p, t)) < 1e-15;
        for (int k = 0; k < 4; k++) {
            double pp[4], pm[4];
            memcpy(pp, p, sizeof pp);
            memcpy(pm, p, sizeof pm);
            pp[k] += h;
            pm[k] -= h;
            double fd = (giou_of(pp, t) - giou_of(pm, t)) / (2 * h);
            double err = fabs(fd - d[k]) / (1 + fabs(fd));
            worst = fmax(worst, err);
            if (err > 1e-6) {
                if (ok) t_diag("trial %d coord %d: analytic %.10g, central difference %.10g", trial, k, d[k], fd);
                ok = 0;
            }
            n++;
        }
    }
    t_ok(ok, "dGIoU/dpred (cxcywh) vs central differences, %d coords (max rel err %.2g)", n, worst);

    double p[4] = {0.5, 0.4, 0.3, 0.2}, t[4] = {0.4, 0.4, 0.1, 0.3}, d[4];
    double l1 = box_l1_grad_cxcywh(d, p, t);
    t_ok(fabs(l1 - 0.4) < 1e-15 && d[0] == 1 && d[1] == 0 && d[2] == 1 && d[3] == -1,
         "L1 = %.17g (want 0.4), gradient sign(pred - tgt) with 0 at equality (%g %g %g %g)",
         l1, d[0], d[1], d[2], d[3]);
}

static void test_degenerate(void) {
    double d[4], g;
    double tgt[4] = {0.5, 0.5, 0.2, 0.2};

    double line[4] = {0.5, 0.5, 0.0, 0.2};   /* zero width, inside the target */
    g = box_giou_grad_cxcywh(d, line, tgt);
    t_ok(g == 0 && all_finite(d, 4), "zero-width prediction inside the target: GIoU %g (0), finite gradient", g);

    double point[4] = {0.1, 0.1, 0, 0};       /* a point outside: -(C - U)/C */
    g = box_giou_grad_cxcywh(d, point, tgt);
    t_ok(fabs(g - -(0.25 - 0.04) / 0.25) < 1e-15 && all_finite(d, 4),
         "point prediction outside the target: GIoU %.17g (-0.84), finite gradient", g);

    double inv[4] = {0.1, 0.1, -0.3, -0.2}, dz[4];
    double gi = box_giou_grad_cxcywh(d, inv, tgt), gz = box_giou_grad_cxcywh(dz, point, tgt);
    t_ok(gi == gz && d[0] == dz[0] && d[1] == dz[1] && d[2] == 0 && d[3] == 0,
         "inverted prediction = the point at its center; no gradient on negative w, h");

    double p0[4] = {0.3, 0.3, 0, 0};
    g = box_giou_grad_cxcywh(d, p0, p0);
    t_ok(g == 0 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0,
         "identical points (union 0, enclosing 0): GIoU 0, zero gradient");
    double p1[4] = {0.6, 0.7, 0, 0};
    g = box_giou_grad_cxcywh(d, p0, p1);
    t_ok(g == -1 && all_finite(d, 4), "two distinct points (union 0): GIoU %g (-1), finite gradient", g);
    double seg0[4] = {0.3, 0.3, 0.2, 0}, seg1[4] = {0.6, 0.3, 0.2, 0};   /* collinear: C = 0 */
    g = box_giou_grad_cxcywh(d, seg0, seg1);
    t_ok(g == 0 && all_finite(d, 4), "collinear segments (enclosing area 0): GIoU %g (0), finite gradient", g);

    g = box_giou_grad_cxcywh(d, tgt, tgt);
    t_ok(g == 1 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0,
         "identical boxes: GIoU 1, gradient 0 (ties split as autograd does)");

    double nanbox[4] = {NAN, 0.5, 0.2, 0.2}, nanw[4] = {0.5, 0.5, NAN, 0.2};
    g = box_giou_grad_cxcywh(d, nanbox, tgt);
    t_ok(isnan(g) && isnan(d[0]), "NaN center gives NaN GIoU and gradient, never a number");
    g = box_giou_grad_cxcywh(d, nanw, tgt);
    double x[4], tx[4];
    box_cxcywh_to_xyxy(x, nanw);
    box_cxcywh_to_xyxy(tx, tgt);
    t_ok(isnan(g) && isnan(box_giou(x, tx)) && isnan(box_iou(x, tx)),
         "NaN width is not clamped away: GIoU and IoU are NaN");
}

int main(void) {
    (void)t_close_f;   /* check.h helper this test does not need */
    test_conversions();
    test_values();
    test_pairwise();
    test_gradients();
    test_degenerate();
    return t_done();
}
