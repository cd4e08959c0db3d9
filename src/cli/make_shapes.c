/* cldetr make-shapes DIR --train N --val M [...]: synthetic COCO-format data. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/data.h"
#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cldetr make-shapes DIR [--train N] [--val M] [--size S] [--seed K]\n"
            "                          [--min-objects A] [--max-objects B]\n\n"
            "Write a synthetic COCO-format detection dataset: images with 1 to several\n"
            "circles, squares, triangles and crosses (category ids 1-4) of varied colour and\n"
            "size, partly overlapping, on noisy or textured backgrounds.\n\n"
            "  DIR/train/NNNNNN.png, DIR/val/NNNNNN.png\n"
            "  DIR/annotations/train.json, DIR/annotations/val.json\n\n"
            "options:\n"
            "  --train N        training images (default 2000)\n"
            "  --val M          validation images (default 200)\n"
            "  --size S         image side in pixels (default 128)\n"
            "  --seed K         random seed; the same seed gives the same bytes (default 1)\n"
            "  --min-objects A  fewest shapes per image (default 1)\n"
            "  --max-objects B  most shapes per image, at most 16 (default 4)\n"
            "  -q, --quiet      no progress lines\n");
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "cldetr: error: make-shapes: %s expects an integer in %ld..%ld, got '%s'\n", opt, lo, hi,
                s ? s : "(nothing)");
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_make_shapes(int argc, char **argv) {
    shapes_opts o;
    shapes_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o.progress = 0; continue; }
        if (a[0] == '-' && a[1]) {
            const char *val = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "--train")) { if (parse_int(a, val, 0, 10000000, &v)) return 2; o.n_train = (int)v; }
            else if (!strcmp(a, "--val")) { if (parse_int(a, val, 0, 10000000, &v)) return 2; o.n_val = (int)v; }
            else if (!strcmp(a, "--size")) { if (parse_int(a, val, 16, 4096, &v)) return 2; o.size = (int)v; }
            else if (!strcmp(a, "--seed")) { if (parse_int(a, val, 0, 2147483647L, &v)) return 2; o.seed = (uint64_t)v; }
            else if (!strcmp(a, "--min-objects")) { if (parse_int(a, val, 1, 16, &v)) return 2; o.min_objects = (int)v; }
            else if (!strcmp(a, "--max-objects")) { if (parse_int(a, val, 1, 16, &v)) return 2; o.max_objects = (int)v; }
            else {
                fprintf(stderr, "cldetr: error: make-shapes: unknown option '%s' (see cldetr make-shapes --help)\n", a);
                return 2;
            }
            i++;
            continue;
        }
        if (o.dir) {
            fprintf(stderr, "cldetr: error: make-shapes: one output folder expected, got '%s' and '%s'\n", o.dir, a);
            return 2;
        }
        o.dir = a;
    }
    if (!o.dir) {
        fprintf(stderr, "cldetr: error: make-shapes: missing the output folder DIR\n\n");
        usage(stderr);
        return 2;
    }
    if (o.min_objects > o.max_objects) {
        fprintf(stderr, "cldetr: error: make-shapes: --min-objects %d is above --max-objects %d\n", o.min_objects,
                o.max_objects);
        return 2;
    }
    double t0 = cd_now();
    if (shapes_generate(&o)) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        return 1;
    }
    if (o.progress)
        fprintf(stderr, "make-shapes: wrote %d train and %d val images (%dx%d) to %s in %.1f s\n", o.n_train, o.n_val,
                o.size, o.size, o.dir, cd_now() - t0);
    return 0;
}
