/* cldetr predict RUN|--weights FILE [--config CFG] IMAGE... [-o DIR] [--threshold T] [--json FILE]
 *                [--checkpoint best|last|FILE]
 * Detections on images of any size: a PNG with the boxes drawn per image, and
 * optionally a JSON list of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cldetr/draw.h"
#include "cldetr/infer.h"
#include "cli/args.h"
#include "cli/cli.h"

/* DIR/STEM.png for an image path; a name already used in this call gets -2, -3, ... */
static void output_name(char *out, size_t n, const char *dir, const char *image, char **used, size_t n_used) {
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    char stem[1024];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    for (int k = 1;; k++) {
        if (k == 1) snprintf(out, n, "%s/%s.png", dir, stem);
        else snprintf(out, n, "%s/%s-%d.png", dir, stem, k);
        size_t i = 0;
        while (i < n_used && strcmp(used[i], out)) i++;
        if (i == n_used) return;
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int cmd_predict(int argc, char **argv) {
    const char *run = NULL, *weights = NULL, *config_path = NULL, *which = NULL, *out_dir = "predictions";
    const char *json_path = NULL;
    double threshold = -1;
    const char **images = cd_xcalloc((size_t)argc, sizeof *images);
    int n_images = 0;
    args a;
    args_init(&a, "predict", argc, argv, 0);
    while (args_next(&a)) {
        const char *v;
        args_value(&a, "-o", &out_dir);
        args_value(&a, "--json", &json_path);
        args_value(&a, "--checkpoint", &which);
        args_value(&a, "--weights", &weights);
        args_value(&a, "--config", &config_path);
        args_double(&a, "--threshold", &threshold, 0, 1);
        if (!args_positional(&a, &v)) continue;
        if (!weights && !run && n_images == 0) run = v;
        else images[n_images++] = v;
    }
    /* `predict FILE.ckpt IMAGE...`: the first argument is weights, not a run folder */
    if (run && (ends_with(run, ".ckpt") || ends_with(run, ".safetensors")) && !weights) { weights = run; run = NULL; }
    if (run && weights) {                       /* --weights came after the first argument: it was an image */
        images[n_images++] = run;
        run = NULL;
    }
    /* -o FILE.png: one image's picture under that name (its folder is made) */
    int out_file = ends_with(out_dir, ".png") || ends_with(out_dir, ".PNG");
    if (!run && !weights) {               /* (nothing is printed after --help or an error) */
        args_missing(&a, "give a run folder (or --weights FILE) and images");
    } else if (n_images == 0) {
        args_error(&a, "give one or more images after %s", run ? run : weights);
    } else if (config_path && !weights) {
        args_error(&a, "--config goes with --weights (a run folder has its own config.ini)");
    } else if (which && !run) {
        args_error(&a, "--checkpoint goes with a run folder (give the file with --weights)");
    } else if (out_file && n_images > 1) {
        args_error(&a, "-o %s names one PNG but %d images were given; give a folder", out_dir, n_images);
    }
    if (a.rc >= 0) {
        free(images);
        return a.rc;
    }

    struct stat st;
    if (run && stat(run, &st) == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cldetr predict: error: %s is a file, not a run folder: give the run folder first, then the "
                        "images (or the weights with --weights FILE)\n", run);
        free(images);
        return 1;
    }
    static infer_model im;
    int ok = run ? infer_open_run(&im, run, which, stderr) : infer_open_weights(&im, weights, config_path, stderr);
    if (ok < 0) {
        fprintf(stderr, "cldetr predict: error: %s\n", cd_errbuf());
        free(images);
        return 1;
    }
    if (threshold < 0) threshold = im.cfg.eval.threshold;
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", out_dir);
    if (out_file) {
        char *slash = strrchr(folder, '/');
        if (slash) *slash = '\0'; else snprintf(folder, sizeof folder, ".");
    }
    if (cd_mkdir_p(folder) < 0) {
        fprintf(stderr, "cldetr predict: error: cannot create the output folder %s: %s\n", folder, strerror(errno));
        infer_close(&im);
        free(images);
        return 1;
    }
    FILE *jf = NULL;
    char json_tmp[4200];
    if (json_path) {
        snprintf(json_tmp, sizeof json_tmp, "%s.tmp", json_path);
        jf = fopen(json_tmp, "w");
        if (!jf) {
            fprintf(stderr, "cldetr predict: error: cannot write %s: %s\n", json_tmp, strerror(errno));
            infer_close(&im);
            free(images);
            return 1;
        }
        fputc('[', jf);
    }
    size_t Q = (size_t)im.model.o.num_queries, n_json = 0;
    float *scores = cd_xmalloc(Q * sizeof *scores), *xyxy = cd_xmalloc(Q * 4 * sizeof *xyxy);
    int *labels = cd_xmalloc(Q * sizeof *labels);
    size_t *order = cd_xmalloc(Q * sizeof *order);
    char **used = cd_xcalloc((size_t)n_images, sizeof *used);
    int failed = 0, done = 0;
    for (int i = 0; i < n_images; i++) {
        data_image img;
        if (data_image_load(&img, images[i]) < 0) {
            fprintf(stderr, "cldetr predict: error: %s (skipped)\n", cd_errbuf());
            failed++;
            continue;
        }
        if (infer_image(&im, &img, scores, labels, xyxy) < 0) {
            fprintf(stderr, "cldetr predict: error: %s: %s (skipped)\n", images[i], cd_errbuf());
            data_image_free(&img);
            failed++;
            continue;
        }
        for (size_t q = 0; q < Q; q++) {          /* clip to the image */
            float *b = xyxy + 4 * q;
            for (int k = 0; k < 4; k++) {
                float lim = (float)(k % 2 ? img.h : img.w);
                b[k] = b[k] < 0 ? 0 : b[k] > lim ? lim : b[k];
            }
        }
        char png[4400];
        if (out_file) snprintf(png, sizeof png, "%s", out_dir);
        else output_name(png, sizeof png, out_dir, images[i], used, (size_t)done);
        if (draw_detections_png(png, &img, xyxy, labels, scores, Q, (const char *const *)im.class_names,
                                (float)threshold) < 0) {
            fprintf(stderr, "cldetr predict: error: %s\n", cd_errbuf());
            data_image_free(&img);
            failed++;
            continue;
        }
        used[done++] = cd_xstrdup(png);
        /* the kept detections, best first */
        size_t n = 0;
        for (size_t q = 0; q < Q; q++) if (scores[q] >= threshold) order[n++] = q;
        for (size_t a = 1; a < n; a++)
            for (size_t b = a; b > 0 && scores[order[b - 1]] < scores[order[b]]; b--) {
                size_t t = order[b]; order[b] = order[b - 1]; order[b - 1] = t;
            }
        printf("%s (%dx%d): %zu detection%s with score >= %.2f -> %s\n", images[i], img.w, img.h, n,
               n == 1 ? "" : "s", threshold, png);
        char buf[32];
        for (size_t k = 0; k < n; k++) {
            size_t q = order[k];
            const float *b = xyxy + 4 * q;
            printf("  %-16s %.3f  [%.1f, %.1f, %.1f, %.1f]\n", infer_label_name(&im, labels[q], buf, sizeof buf),
                   scores[q], b[0], b[1], b[2], b[3]);
            if (!jf) continue;
            fputs(n_json++ ? ",\n {" : "{", jf);
            fputs("\"file_name\": ", jf);
            json_string(jf, images[i]);
            fprintf(jf, ", \"category_id\": %lld, \"category\": ", (long long)infer_label_category(&im, labels[q]));
            json_string(jf, infer_label_name(&im, labels[q], buf, sizeof buf));
            fprintf(jf, ", \"bbox\": [%.2f, %.2f, %.2f, %.2f], \"score\": %.6f}", b[0], b[1], b[2] - b[0],
                    b[3] - b[1], scores[q]);
        }
        data_image_free(&img);
    }
    int rc = failed ? 1 : 0;
    if (jf) {
        fputs("]\n", jf);
        if (fclose(jf) || rename(json_tmp, json_path)) {
            fprintf(stderr, "cldetr predict: error: cannot write %s: %s\n", json_path, strerror(errno));
            rc = 1;
        } else fprintf(stderr, "wrote %zu detections to %s\n", n_json, json_path);
    }
    if (failed) fprintf(stderr, "cldetr predict: %d of %d images failed (named above)\n", failed, n_images);
    for (int i = 0; i < done; i++) free(used[i]);
    free(used); free(order); free(labels); free(xyxy); free(scores); free(images);
    infer_close(&im);
    return rc;
}
