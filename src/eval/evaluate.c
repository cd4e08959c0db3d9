/* DETR's post-processing and COCO results files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
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
