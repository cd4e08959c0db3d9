/* A model run over a whole dataset split: the validation loss, the COCO
 * detections of every image and their AP (include/cldetr/infer.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/evaluate.h"
#include "cldetr/infer.h"
#include "cldetr/step.h"

int infer_dataset(infer_dataset_result *res, detr_model *m, nn_ctx *ctx, data_dataset *ds, data_loader *L,
             const criterion_opts *crit, size_t max_batches, int progress) {
    memset(res, 0, sizeof *res);
    double t0 = cd_now();
    int training = ctx->training, record = ctx->record;
    ctx->training = 0;
    ctx->record = 0;
    criterion_result cr = {0};
    size_t cap = 0, n_batches = loader_num_batches(L), done = 0, n_img_cap = 0;
    int64_t *img_ids = NULL;
    float *logits = NULL, *boxes = NULL, *maskf = NULL;
    int rc = 0;
    loader_begin_epoch(L, 0);
    const data_batch *b;
    int got;
    while ((got = loader_next(L, &b)) == 1) {
        if (max_batches && done >= max_batches) break;
        size_t B = b->B, H = b->H, W = b->W;
        nn_ctx_reset(ctx);
        maskf = cd_xrealloc(maskf, B * H * W * sizeof *maskf);
        for (size_t i = 0; i < B * H * W; i++) maskf[i] = b->mask[i];
        detr_out o;
        detr_forward(m, ctx, b->images, maskf, B, H, W, &o);
        size_t Q = o.Q, K1 = o.K1, Ln = o.L;
        logits = cd_xrealloc(logits, Ln * B * Q * K1 * sizeof *logits);
        boxes = cd_xrealloc(boxes, Ln * B * Q * 4 * sizeof *boxes);
        read_decoder_outputs(ctx->dev, &o, logits, boxes);
        criterion_target *tg = cd_xcalloc(B, sizeof *tg);
        for (size_t i = 0; i < B; i++) {
            tg[i].labels = b->targets[i].labels;
            tg[i].boxes = b->targets[i].boxes;
            tg[i].n = b->targets[i].n;
        }
        if (criterion_loss(&cr, NULL, NULL, logits, boxes, tg, Ln, B, Q, K1, crit) < 0) {
            free(tg);
            rc = -1;
            break;
        }
        free(tg);
        res->loss += cr.total;
        res->loss_ce += cr.layer[Ln - 1].loss_ce;
        res->loss_bbox += cr.layer[Ln - 1].loss_bbox;
        res->loss_giou += cr.layer[Ln - 1].loss_giou;
        res->class_error += cr.class_error;
        /* detections of the final layer, in original image pixels */
        const float *lf = logits + (Ln - 1) * B * Q * K1, *bf = boxes + (Ln - 1) * B * Q * 4;
        float *sc = cd_xmalloc(Q * sizeof *sc), *xy = cd_xmalloc(Q * 4 * sizeof *xy);
        int *lb = cd_xmalloc(Q * sizeof *lb);
        for (size_t i = 0; i < B; i++) {
            const data_target *t = &b->targets[i];
            detr_postprocess(sc, lb, xy, lf + i * Q * K1, bf + i * Q * 4, Q, K1, t->orig_w, t->orig_h);
            if (res->n_dets + Q > cap) {
                cap = CD_MAX(2 * cap, res->n_dets + Q);
                res->dets = cd_xrealloc(res->dets, cap * sizeof *res->dets);
            }
            for (size_t q = 0; q < Q; q++) {
                coco_det *d = &res->dets[res->n_dets++];
                int64_t cid = data_label_category(ds, lb[q]);
                d->image_id = t->image_id;
                d->category_id = cid >= 0 ? cid : lb[q];
                d->bbox[0] = xy[q * 4 + 0];
                d->bbox[1] = xy[q * 4 + 1];
                d->bbox[2] = fmax(0.0, (double)xy[q * 4 + 2] - xy[q * 4 + 0]);
                d->bbox[3] = fmax(0.0, (double)xy[q * 4 + 3] - xy[q * 4 + 1]);
                d->score = sc[q];
            }
            if (res->n_images == n_img_cap) {
                n_img_cap = n_img_cap ? 2 * n_img_cap : 256;
                img_ids = cd_xrealloc(img_ids, n_img_cap * sizeof *img_ids);
            }
            img_ids[res->n_images++] = t->image_id;
        }
        free(sc); free(xy); free(lb);
        done++;
        if (progress) {
            fprintf(stderr, "\r  eval %zu/%zu batches", done, max_batches ? CD_MIN(max_batches, n_batches) : n_batches);
            fflush(stderr);
        }
    }
    if (progress) fputc('\n', stderr);
    if (got < 0) rc = -1;
    if (rc == 0 && done) {
        res->loss /= (double)done;
        res->loss_ce /= (double)done;
        res->loss_bbox /= (double)done;
        res->loss_giou /= (double)done;
        res->class_error /= (double)done;
        coco_eval_opts eo = {img_ids, res->n_images};
        if (coco_evaluate(&res->coco, data_coco(ds), res->dets, res->n_dets, &eo) < 0) rc = -1;
        else res->have_coco = 1;
    }
    free(img_ids); free(logits); free(boxes); free(maskf);
    criterion_result_free(&cr);
    ctx->training = training;
    ctx->record = record;
    res->seconds = cd_now() - t0;
    return rc;
}

void infer_dataset_result_free(infer_dataset_result *res) {
    if (res->have_coco) coco_eval_result_free(&res->coco);
    free(res->dets);
    memset(res, 0, sizeof *res);
}

