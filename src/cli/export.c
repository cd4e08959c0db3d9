/* cldetr export RUN|CKPT -o FILE.safetensors: a checkpoint's weights under the
 * official DETR names (loadable by PyTorch's DETR with strict=True), with the
 * training config in __metadata__. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cldetr/weights.h"
#include "cli/args.h"
#include "cli/cli.h"

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

static void usage(FILE *f) {
    fprintf(f, "usage: cldetr export RUN|CKPT -o FILE.safetensors [--last] [--dtype f32|f16|bf16]\n\n"
               "Writes the weights of a checkpoint (a run folder's best.ckpt, or last.ckpt with --last or\n"
               "when there is no best.ckpt; or a .ckpt file) under the official DETR parameter names\n"
               "(backbone.0.body.conv1.weight, transformer.encoder.layers.0.self_attn.in_proj_weight, ...):\n"
               "PyTorch's DETR loads it with load_state_dict(strict=True). __metadata__ holds the config,\n"
               "the step and the epoch. Trainable BatchNorm gets num_batches_tracked = the step.\n");
}

int cmd_export(int argc, char **argv) {
    static const char *const dtypes[] = {"f32", "f16", "bf16", NULL};
    static const st_dtype st_dtypes[] = {ST_F32, ST_F16, ST_BF16};
    const char *src = NULL, *out = NULL;
    int last = 0, dtype = 0;
    args a;
    args_init(&a, "export", argc, argv, usage, 0);
    while (args_next(&a)) {
        args_value(&a, "-o", &out);
        args_choice(&a, "--dtype", &dtype, dtypes);
        if (args_flag(&a, "--last")) last = 1;
        args_single(&a, &src, "run folder or checkpoint");
    }
    if (a.rc >= 0) return a.rc;
    if (!src || !out) return args_missing(&a, "give a run folder or checkpoint and -o FILE.safetensors");

    char path[4096];
    if (is_dir(src)) {
        snprintf(path, sizeof path, "%s/best.ckpt", src);
        if (last || !is_file(path)) snprintf(path, sizeof path, "%s/last.ckpt", src);
        if (!is_file(path)) {
            fprintf(stderr, "cldetr: error: %s holds no checkpoint (no best.ckpt or last.ckpt): is it a run folder?\n",
                    src);
            return 1;
        }
    } else if (is_file(src)) snprintf(path, sizeof path, "%s", src);
    else { fprintf(stderr, "cldetr: error: %s: no such run folder or checkpoint file\n", src); return 1; }

    ckpt_meta meta = {0};
    if (ckpt_read_meta(path, &meta) < 0) return cli_error();
    static config cfg;
    if (!meta.config_text || !meta.config_text[0]) {
        fprintf(stderr, "cldetr: error: %s holds no config text: cannot tell which model it is\n", path);
        return 1;
    }
    if (config_load_text(&cfg, meta.config_text, path) < 0) return cli_error();
    int ncls = cfg.model.num_classes > 0 ? cfg.model.num_classes : ckpt_num_classes(path);
    detr_opts o;
    if (ncls < 0 || setup_detr_opts(&o, &cfg, ncls) < 0) return cli_error();
    cd_device *dev = cd_open(NULL, 0);      /* any device: the weights only pass through */
    if (!dev) return cli_error();
    detr_model m;
    if (detr_build(&m, &o, dev, 0) < 0) return cli_error();
    ckpt_meta_free(&meta);
    memset(&meta, 0, sizeof meta);
    if (ckpt_load(path, &meta, &m.params, NULL, dev) < 0) return cli_error();
    char step[32], epoch[32], hash[32];
    snprintf(step, sizeof step, "%llu", (unsigned long long)meta.step);
    snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)meta.epoch);
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)meta.config_hash);
    const char *kv[] = {"format", "pt", "producer", "cldetr export", "source", path, "step", step, "epoch", epoch,
                        "config_hash", hash, "config", meta.config_text ? meta.config_text : "", NULL};
    weights_save_opts so = {0};
    so.dtype = st_dtypes[dtype];
    so.num_batches_tracked = (int64_t)meta.step;
    so.meta = kv;
    if (weights_save(&m, dev, out, &so) < 0) return cli_error();
    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    printf("wrote %s: %d tensors (%zu parameters, %s) under the official DETR names, from %s (step %s, epoch %s)\n",
           out, m.params.n, all, dtypes[dtype], path, step, epoch);
    ckpt_meta_free(&meta);
    detr_free(&m, dev);
    cd_close(dev);
    return 0;
}
