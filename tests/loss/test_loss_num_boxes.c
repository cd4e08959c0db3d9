/* criterion_opts.num_boxes, the normaliser a data-parallel job gives (the
 * targets of every process over the process count): the box
 * terms and their gradient scale by (batch targets / num_boxes), the class
 * term and its gradient do not move, and 0 keeps the batch's own count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/loss.h"
#include "../check.h"

enum { L = 2, B = 2, Q = 5, K1 = 4 };

int main(void) {
    t_seed(11);
    static float logits[L * B * Q * K1], boxes[L * B * Q * 4], tboxes[3 * 4];
    static int labels[3] = {0, 2, 1};
    for (size_t i = 0; i < CD_ARRAY_LEN(logits); i++) logits[i] = (float)t_uniform(-2, 2);
    for (size_t i = 0; i < CD_ARRAY_LEN(boxes); i++) boxes[i] = (float)t_uniform(0.2, 0.6);
    for (size_t i = 0; i < CD_ARRAY_LEN(tboxes); i++) tboxes[i] = (float)t_uniform(0.2, 0.6);
    criterion_target tg[B] = {{labels, tboxes, 2}, {labels + 2, tboxes + 8, 1}};
    criterion_opts opt;
    criterion_opts_default(&opt);
    t_ok(opt.num_boxes == 0, "the default num_boxes is 0: the batch's own count");

    static float dl0[L * B * Q * K1], db0[L * B * Q * 4], dl1[L * B * Q * K1], db1[L * B * Q * 4];
    criterion_result r0 = {0}, r1 = {0};
    int rc0 = criterion_loss(&r0, dl0, db0, logits, boxes, tg, L, B, Q, K1, &opt);
    opt.num_boxes = 7.5;         /* e.g. 15 targets over 2 processes */
    int rc1 = criterion_loss(&r1, dl1, db1, logits, boxes, tg, L, B, Q, K1, &opt);
    t_ok(rc0 == 0 && rc1 == 0, "both losses computed");
    t_ok(r0.num_boxes == 3 && r1.num_boxes == 7.5, "num_boxes %g (3 targets) and %g (given 7.5)", r0.num_boxes,
         r1.num_boxes);
    double f = 3 / 7.5;
    int ok = 1;
    for (size_t l = 0; l < L; l++) {
        const criterion_layer_terms *a = &r0.layer[l], *b = &r1.layer[l];
        ok &= fabs(b->loss_bbox - f * a->loss_bbox) <= 1e-12 * (1 + a->loss_bbox);
        ok &= fabs(b->loss_giou - f * a->loss_giou) <= 1e-12 * (1 + a->loss_giou);
        ok &= b->loss_ce == a->loss_ce && a->loss_bbox > 0 && a->loss_giou > 0;
    }
    t_ok(ok, "every layer's box terms scale by 3/7.5, its class term stays");
    float want[L * B * Q * 4];
    for (size_t i = 0; i < CD_ARRAY_LEN(want); i++) want[i] = (float)(f * db0[i]);
    t_close_f("d boxes scale by 3/7.5", want, db1, CD_ARRAY_LEN(want), 1e-7, 1e-5);
    t_ok(!memcmp(dl0, dl1, sizeof dl0), "d logits do not move");
    criterion_result_free(&r0);
    criterion_result_free(&r1);
    return t_done();
}
