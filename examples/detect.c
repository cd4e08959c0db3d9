/* examples/detect.c: the objects in one image, found by a trained cldetr
 * model, using only the installed library and its public headers.
 *
 *   detect RUN|WEIGHTS IMAGE [THRESHOLD]
 *
 * RUN is a run folder of `cldetr train` (its best.ckpt, else last.ckpt);
 * WEIGHTS is a checkpoint (.ckpt) or a safetensors file (`cldetr export`).
 * THRESHOLD (0..1) defaults to the model's eval.threshold. Prints one line
 * for the image, then one line per detection with score >= THRESHOLD, best
 * first, the box in pixels of the image (clipped to it):
 *
 *   IMAGE: WxH, N detections with score >= T
 *   SCORE X0 Y0 X1 Y1 CLASS
 *
 * Build it against an installed libcldetr (see examples/README.md):
 *   cc detect.c -o detect $(pkg-config --cflags --libs cldetr) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cldetr/common.h>
#include <cldetr/infer.h>

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s RUN|WEIGHTS IMAGE [THRESHOLD]\n", argv[0]);
        return 2;
    }
    double threshold = -1;
    if (argc == 4) {
        char *end;
        threshold = strtod(argv[3], &end);
        if (*end != '\0' || !(threshold >= 0 && threshold <= 1)) {
            fprintf(stderr, "detect: THRESHOLD must be a number in [0, 1], got '%s'\n", argv[3]);
            return 2;
        }
    }

    /* A folder is a run (its config.ini and checkpoints); a file is weights. */
    static infer_model im;   /* large (paths, config): not on the stack */
    struct stat st;
    int is_run = stat(argv[1], &st) == 0 && S_ISDIR(st.st_mode);
    if ((is_run ? infer_open_run(&im, argv[1], NULL, stderr)
                : infer_open_weights(&im, argv[1], NULL, stderr)) < 0) {
        fprintf(stderr, "detect: %s\n", cd_errbuf());
        return 1;
    }
    if (threshold < 0) threshold = im.cfg.eval.threshold;

    data_image img;
    if (data_image_load(&img, argv[2]) < 0) {
        fprintf(stderr, "detect: %s\n", cd_errbuf());
        infer_close(&im);
        return 1;
    }
    /* One score, label and box (x0, y0, x1, y1) per object query. */
    int Q = im.model.o.num_queries;
    float *scores = malloc((size_t)Q * sizeof *scores), *xyxy = malloc((size_t)Q * 4 * sizeof *xyxy);
    int *labels = malloc((size_t)Q * sizeof *labels), *order = malloc((size_t)Q * sizeof *order);
    if (!scores || !xyxy || !labels || !order || infer_image(&im, &img, scores, labels, xyxy) < 0) {
        fprintf(stderr, "detect: %s\n", scores && xyxy && labels && order ? cd_errbuf() : "out of memory");
        return 1;
    }

    /* The queries above the threshold, best first (stable for equal scores). */
    int n = 0;
    for (int q = 0; q < Q; q++) if (scores[q] >= threshold) order[n++] = q;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && scores[order[b - 1]] < scores[order[b]]; b--) {
            int t = order[b]; order[b] = order[b - 1]; order[b - 1] = t;
        }
    printf("%s: %dx%d, %d detection%s with score >= %.3f\n", argv[2], img.w, img.h, n, n == 1 ? "" : "s", threshold);
    for (int k = 0; k < n; k++) {
        float *b = xyxy + 4 * order[k];
        for (int c = 0; c < 4; c++) {             /* clip to the image */
            float lim = (float)(c % 2 ? img.h : img.w);
            b[c] = b[c] < 0 ? 0 : b[c] > lim ? lim : b[c];
        }
        char buf[32];                              /* "class 7" when the names are unknown */
        printf("%.3f %.1f %.1f %.1f %.1f %s\n", scores[order[k]], b[0], b[1], b[2], b[3],
               infer_label_name(&im, labels[order[k]], buf, sizeof buf));
    }

    free(order); free(labels); free(xyxy); free(scores);
    data_image_free(&img);
    infer_close(&im);
    return 0;
}
