/* cldetr make-shapes DIR --train N --val M [...]: synthetic COCO-format data. */
#include <stdio.h>

#include "cldetr/common.h"
#include "cldetr/data.h"
#include "cli/args.h"
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

int cmd_make_shapes(int argc, char **argv) {
    shapes_opts o;
    shapes_opts_default(&o);
    args a;
    args_init(&a, "make-shapes", argc, argv, usage, 0);
    while (args_next(&a)) {
        long v;
        if (args_flag(&a, "-q") || args_flag(&a, "--quiet")) o.progress = 0;
        if (args_long(&a, "--train", &v, 0, 10000000)) o.n_train = (int)v;
        if (args_long(&a, "--val", &v, 0, 10000000)) o.n_val = (int)v;
        if (args_long(&a, "--size", &v, 16, 4096)) o.size = (int)v;
        if (args_long(&a, "--seed", &v, 0, 2147483647L)) o.seed = (uint64_t)v;
        if (args_long(&a, "--min-objects", &v, 1, 16)) o.min_objects = (int)v;
        if (args_long(&a, "--max-objects", &v, 1, 16)) o.max_objects = (int)v;
        args_single(&a, &o.dir, "output folder");
    }
    if (a.rc >= 0) return a.rc;
    if (!o.dir) return args_missing(&a, "missing the output folder DIR");
    if (o.min_objects > o.max_objects)
        return args_error(&a, "--min-objects %d is above --max-objects %d", o.min_objects, o.max_objects);
    double t0 = cd_now();
    if (shapes_generate(&o)) return cli_error();
    if (o.progress)
        fprintf(stderr, "make-shapes: wrote %d train and %d val images (%dx%d) to %s in %.1f s\n", o.n_train, o.n_val,
                o.size, o.size, o.dir, cd_now() - t0);
    return 0;
}
