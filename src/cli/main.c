/* cldetr: one binary, many verbs. main() only dispatches; every verb lives in
 * its own file (src/cli/<verb>.c) and calls the library. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} verb;

static const verb verbs[] = {
    {"devices",  cmd_devices,  "list every OpenCL platform and device"},
    {"selftest", cmd_selftest, "build every kernel and check GEMM and ops against host references"},
    {"train",    cmd_train,    "train a model as a config says; resume a run folder"},
    {"summary",  cmd_summary,  "parameter counts per module and the memory of one training step"},
    {"make-shapes", cmd_make_shapes, "write a synthetic COCO-format dataset of coloured shapes"},
    {"cocoeval", cmd_cocoeval, "COCO bbox AP of a results file against a ground-truth file (as pycocotools)"},
    {"plot",     cmd_plot,     "loss or AP curves of one or more run folders on one chart (PNG)"},
    {"config",   cmd_config,   "load, validate and print a config's effective values (--set k=v overrides)"},
    {"tune",     cmd_tune,     "choose the GEMM parameters of a device by measurement (stored in the cache)"},
    {"bench-ops", cmd_bench_ops, "GFLOP/s of GEMM at DETR's shapes (and conv), beside OpenBLAS"},
    {"import",   cmd_import,   "official (PyTorch) or HF transformers DETR weights -> checked, official names"},
    {"export",   cmd_export,   "a run's or checkpoint's weights -> safetensors under the official DETR names"},
    {"step",     cmd_step,     "one forward, loss and backward on given images, everything dumped for PyTorch"},
    {"eval",     cmd_eval,     "COCO AP of a trained run on its validation (or training) split"},
    {"predict",  cmd_predict,  "detections on images of any size: boxes drawn to PNGs, a JSON list"},
    {"sweep",    cmd_sweep,    "train every point of a grid of config values; summary table and charts"},
    {"bench",    cmd_bench,    "ms per training step, images/s, phases and per-kernel profile of a config"},
};

static void usage(FILE *f) {
    fprintf(f, "cldetr — DETR training and inference on OpenCL\n\n"
               "usage: cldetr VERB [options]   (cldetr VERB --help for a verb's options)\n\nverbs:\n");
    for (size_t i = 0; i < CD_ARRAY_LEN(verbs); i++)
        fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\nenvironment:\n"
               "  CLDETR_DEVICE      device to use: an index, a name substring, gpu, cpu or any\n"
               "  CLDETR_KERNEL_DIR  load kernel sources from this folder instead of the embedded copy\n"
               "  XDG_CACHE_HOME     compiled kernels and GEMM tunings go to $XDG_CACHE_HOME/cldetr\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("cldetr 0.1.0\n"); return 0; }
    for (size_t i = 0; i < CD_ARRAY_LEN(verbs); i++)
        if (!strcmp(argv[1], verbs[i].name)) return verbs[i].fn(argc - 1, argv + 1);
    const char *names[CD_ARRAY_LEN(verbs)];
    for (size_t i = 0; i < CD_ARRAY_LEN(verbs); i++) names[i] = verbs[i].name;
    const char *near = args_closest(argv[1], names, (int)CD_ARRAY_LEN(verbs));
    fprintf(stderr, "cldetr: unknown verb '%s'%s%s%s (cldetr --help lists the verbs)\n", argv[1],
            near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
    return 2;
}
