/* cldetr make-shapes DIR --train N --val M [...]: synthetic COCO-format data. */
#include <stdio.h>

#include "cldetr/common.h"
#include "cldetr/data.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_make_shapes(int argc, char **argv) {
    shapes_opts o;
    shapes_opts_default(&o);
    args a;
    args_init(&a, "make-shapes", argc, argv, 0);
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
