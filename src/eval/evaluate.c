/* Post-processing and the evaluation run of a model over a dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cldetr/evaluate.h"

void detr_postprocess(float *scores, int *labels, float *xyxy, const float *logits, const float *boxes,
                      size_t Q, size_t K1, double w, double h) {
    for (size_t q = 0; q < Q; q++) {
        const float *l = logits + q * K1;
        double mx = l[0];
        for (size_t k = 1; k < K1; k++) mx = fmax(mx, l[k]);
        double sum = 0;
        for (size_t k = 0; k < K1; k++) sum += exp(l[k] - mx);
        size_t best = 0;                      /* argmax over the real classes, no-object dropped */
        for (size_t k = 1; k + 1 < K1; k++) if (l[k] > l[best]) best = k;
        scores[q] = (float)(exp(l[best] - mx) / sum);
        labels[q] = (int)best;
        const float *b = boxes + q * 4;
        xyxy[q * 4 + 0] = (float)((b[0] - 0.5 * b[2]) * w);
        xyxy[q * 4 + 1] = (float)((b[1] - 0.5 * b[3]) * h);
        xyxy[q * 4 + 2] = (float)((b[0] + 0.5 * b[2]) * w);
        xyxy[q * 4 + 3] = (float)((b[1] + 0.5 * b[3]) * h);
    }
}

void eval_read_outputs(cd_device *dev, const detr_out *o, float *logits, float *boxes) {
    size_t nl = o->B * o->Q * o->K1, nb = o->B * o->Q * 4;
    for (size_t l = 0; l < o->L; l++) {
        cd_read(dev, logits + l * nl, o->logits[l]->data, nl);
        cd_read(dev, boxes + l * nb, o->boxes[l]->data, nb);
    }
}

int eval_run(eval_result *res, detr_model *m, nn_ctx *ctx, data_dataset *ds, data_loader *L,
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
        eval_read_outputs(ctx->dev, &o, logits, boxes);
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

void eval_result_free(eval_result *res) {
    if (res->have_coco) coco_eval_result_free(&res->coco);
    free(res->dets);
    memset(res, 0, sizeof *res);
}

int eval_write_results(const char *path, const coco_det *dets, size_t n) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cd_seterr("cannot write %s", tmp);
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{\"image_id\": %lld, \"category_id\": %lld, \"bbox\": [%.3f, %.3f, %.3f, %.3f], \"score\": %.6f}",
                i ? ",\n " : "", (long long)dets[i].image_id, (long long)dets[i].category_id, dets[i].bbox[0],
                dets[i].bbox[1], dets[i].bbox[2], dets[i].bbox[3], dets[i].score);
    fputs("]\n", f);
    if (fclose(f) || rename(tmp, path)) return cd_seterr("cannot write %s", path);
    return 0;
}
