/* Box ops: conversions, IoU, GIoU and the gradients the set criterion needs.
 * See include/cldetr/box.h for the conventions on degenerate boxes. */
#include "cldetr/box.h"

#include <math.h>

/* The clamps and max/min below would turn a NaN into a number; the public
 * functions check first, so that a NaN box gives a NaN result. */
static int any_nan(const double a[4], const double b[4]) {
    return isnan(a[0] + a[1] + a[2] + a[3] + b[0] + b[1] + b[2] + b[3]);
}

void box_cxcywh_to_xyxy(double xyxy[4], const double b[4]) {
    double cx = b[0], cy = b[1], w = b[2], h = b[3];
    xyxy[0] = cx - 0.5 * w;
    xyxy[1] = cy - 0.5 * h;
    xyxy[2] = cx + 0.5 * w;
    xyxy[3] = cy + 0.5 * h;
}

void box_xyxy_to_cxcywh(double cxcywh[4], const double b[4]) {
    double x0 = b[0], y0 = b[1], x1 = b[2], y1 = b[3];
    cxcywh[0] = (x0 + x1) / 2;
    cxcywh[1] = (y0 + y1) / 2;
    cxcywh[2] = x1 - x0;
    cxcywh[3] = y1 - y0;
}

/* An inverted side collapses to its center (box.h). NaN stays NaN. */
static void sanitize_xyxy(double out[4], const double b[4]) {
    for (int k = 0; k < 2; k++) {
        double lo = b[k], hi = b[k + 2];
        if (hi < lo) lo = hi = (lo + hi) / 2;
        out[k] = lo;
        out[k + 2] = hi;
    }
}

double box_area(const double xyxy[4]) {
    double s[4];
    sanitize_xyxy(s, xyxy);
    return (s[2] - s[0]) * (s[3] - s[1]);
}

/* d max(x, y) / dx as PyTorch's autograd defines it (half at a tie). */
static double dmax_dx(double x, double y) { return x > y ? 1.0 : (x == y ? 0.5 : 0.0); }
static double dmin_dx(double x, double y) { return x < y ? 1.0 : (x == y ? 0.5 : 0.0); }
static double max2(double x, double y) { return x > y ? x : y; }
static double min2(double x, double y) { return x < y ? x : y; }

/* GIoU of two sanitized xyxy boxes a (prediction) and b (target); when da is
 * not NULL, writes dGIoU/da[4] (xyxy). Follows DETR's generalized_box_iou:
 *   I = overlap area (sides clamped at 0), U = A_a + A_b - I, IoU = I/U,
 *   C = enclosing area, GIoU = IoU - (C - U)/C. */
static double giou_core(double da[4], const double a[4], const double b[4]) {
    double iw_raw = min2(a[2], b[2]) - max2(a[0], b[0]);
    double ih_raw = min2(a[3], b[3]) - max2(a[1], b[1]);
    double iw = iw_raw > 0 ? iw_raw : 0, ih = ih_raw > 0 ? ih_raw : 0;
    double I = iw * ih;
    double aw = a[2] - a[0], ah = a[3] - a[1];
    double Aa = aw * ah, Ab = (b[2] - b[0]) * (b[3] - b[1]);
    double U = Aa + Ab - I;
    double cw_raw = max2(a[2], b[2]) - min2(a[0], b[0]);
    double ch_raw = max2(a[3], b[3]) - min2(a[1], b[1]);
    double cw = cw_raw > 0 ? cw_raw : 0, ch = ch_raw > 0 ? ch_raw : 0;
    double C = cw * ch;
    double iou = U > 0 ? I / U : 0;
    double pen = C > 0 ? (C - U) / C : 0;
    if (!da) return iou - pen;

    /* Partials of GIoU w.r.t. I, A_a and C; U = A_a + A_b - I. */
    double dI = 0, dAa = 0, dC = 0;
    if (U > 0) {                 /* IoU = I/U */
        dI += 1 / U + I / (U * U);
        dAa += -I / (U * U);
    }
    if (C > 0) {                 /* -pen = U/C - 1 */
        dI += -1 / C;
        dAa += 1 / C;
        dC += -U / (C * C);
    }
    /* I = iw*ih, iw = clamp(min(a2,b2) - max(a0,b0), 0), gradient only where > 0. */
    double diw = iw_raw > 0 ? dI * ih : 0, dih = ih_raw > 0 ? dI * iw : 0;
    double dcw = cw_raw > 0 ? dC * ch : 0, dch = ch_raw > 0 ? dC * cw : 0;
    da[0] = -diw * dmax_dx(a[0], b[0]) - dAa * ah - dcw * dmin_dx(a[0], b[0]);
    da[2] = diw * dmin_dx(a[2], b[2]) + dAa * ah + dcw * dmax_dx(a[2], b[2]);
    da[1] = -dih * dmax_dx(a[1], b[1]) - dAa * aw - dch * dmin_dx(a[1], b[1]);
    da[3] = dih * dmin_dx(a[3], b[3]) + dAa * aw + dch * dmax_dx(a[3], b[3]);
    return iou - pen;
}

double box_iou(const double a[4], const double b[4]) {
    if (any_nan(a, b)) return NAN;
    double sa[4], sb[4];
    sanitize_xyxy(sa, a);
    sanitize_xyxy(sb, b);
    double iw = min2(sa[2], sb[2]) - max2(sa[0], sb[0]);
    double ih = min2(sa[3], sb[3]) - max2(sa[1], sb[1]);
    double I = (iw > 0 ? iw : 0) * (ih > 0 ? ih : 0);
    double U = box_area(sa) + box_area(sb) - I;
    return U > 0 ? I / U : 0;
}

double box_giou(const double a[4], const double b[4]) {
    if (any_nan(a, b)) return NAN;
    double sa[4], sb[4];
    sanitize_xyxy(sa, a);
    sanitize_xyxy(sb, b);
    return giou_core(NULL, sa, sb);
}

void box_pairwise_iou(double *out, const double *a, const double *b, size_t N, size_t M) {
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++) out[i * M + j] = box_iou(a + 4 * i, b + 4 * j);
}

void box_pairwise_giou(double *out, const double *a, const double *b, size_t N, size_t M) {
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++) out[i * M + j] = box_giou(a + 4 * i, b + 4 * j);
}

double box_giou_grad_cxcywh(double dpred[4], const double pred[4], const double tgt[4]) {
    if (any_nan(pred, tgt)) {
        dpred[0] = dpred[1] = dpred[2] = dpred[3] = NAN;
        return NAN;
    }
    /* Clamp negative sizes to 0 (collapse to the center) before going to xyxy. */
    double p[4] = {pred[0], pred[1], pred[2] >= 0 ? pred[2] : 0, pred[3] >= 0 ? pred[3] : 0};
    double t[4] = {tgt[0], tgt[1], tgt[2] >= 0 ? tgt[2] : 0, tgt[3] >= 0 ? tgt[3] : 0};
    double px[4], tx[4], d[4];
    box_cxcywh_to_xyxy(px, p);
    box_cxcywh_to_xyxy(tx, t);
    double g = giou_core(d, px, tx);
    /* x0 = cx - w/2, x1 = cx + w/2 */
    dpred[0] = d[0] + d[2];
    dpred[1] = d[1] + d[3];
    dpred[2] = pred[2] >= 0 ? 0.5 * (d[2] - d[0]) : 0;
    dpred[3] = pred[3] >= 0 ? 0.5 * (d[3] - d[1]) : 0;
    return g;
}

double box_l1_grad_cxcywh(double dpred[4], const double pred[4], const double tgt[4]) {
    double s = 0;
    for (int k = 0; k < 4; k++) {
        double d = pred[k] - tgt[k];
        s += d < 0 ? -d : d;
        dpred[k] = d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0);
    }
    return s;
}
