/* cldetr import FILE -o OUT.safetensors: weights from PyTorch (official DETR
 * names) or HF transformers (DetrForObjectDetection) -> the official names in
 * F32, checked tensor by tensor against a config's model. */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cldetr/weights.h"
#include "cli/args.h"
#include "cli/cli.h"

/* num_classes of a file's class head (either naming), or -1. */
static int file_num_classes(const st_file *f) {
    const st_tensor *t = st_find(f, "class_embed.bias");
    if (!t) t = st_find(f, "class_labels_classifier.bias");
    return t && t->ndim == 1 && t->shape[0] >= 2 ? (int)t->shape[0] - 1 : -1;
}

int cmd_import(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *cfg_path = NULL;
    int allow_unexpected = 0, dtype = ST_F32;
    const char *dtype_name = "f32";
    args a;
    args_init(&a, "import", argc, argv, ARGS_SETS);
    while (args_next(&a)) {
        args_value(&a, "-o", &out);
        args_value(&a, "--config", &cfg_path);
        args_dtype(&a, "--dtype", &dtype, &dtype_name);
        if (args_flag(&a, "--allow-unexpected")) allow_unexpected = 1;
        args_single(&a, &in, "input file");
    }
    if (a.rc >= 0) return a.rc;
    if (!in || !out) return args_missing(&a, "give FILE.safetensors and -o OUT.safetensors");
    static config cfg;
    st_file f;
    if (st_open(&f, in) < 0) return cli_error();
    /* the model: --config, else the config a file written by cldetr carries, else the official DETR-R50 */
    const char *stored = cfg_path ? NULL : st_meta(&f, "config");
    if (stored && *stored) {
        if (config_load_text(&cfg, stored, in, a.sets, a.n_sets) < 0) return cli_error();
        printf("%s: the model of the config stored in the file (--config CONFIG to use another)\n", in);
    } else if (config_load(&cfg, cfg_path, a.sets, a.n_sets) < 0) {
        return cli_error();
    }
    int ncls = cfg.model.num_classes > 0 ? cfg.model.num_classes : file_num_classes(&f);
    if (ncls < 0) {
        fprintf(stderr, "cldetr: error: %s has no class head (class_embed.bias): set model.num_classes\n", in);
        return 1;
    }
    detr_opts o;
    if (setup_detr_opts(&o, &cfg, ncls) < 0) return cli_error();
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) return cli_error();
    detr_model m;
    if (detr_build(&m, &o, dev, 0) < 0) return cli_error();
    weights_opts wo = {0};
    wo.allow_unexpected = allow_unexpected;
    weights_report rep;
    if (weights_load_file(&m, NULL, &f, &wo, &rep) < 0) return cli_error();
    char *text = NULL;
    size_t text_len = 0;
    FILE *mf = open_memstream(&text, &text_len);
    if (mf) { config_write(&cfg, mf); fclose(mf); }
    const char *kv[] = {"format", "pt", "producer", "cldetr import", "source", in, "source_naming",
                        weights_naming_name(rep.naming), "config", text ? text : "", NULL};
    weights_save_opts so = {0};
    so.dtype = (st_dtype)dtype;
    so.meta = kv;
    if (weights_save(&m, NULL, out, &so) < 0) return cli_error();
    printf("wrote %s: %d tensors under the official DETR names (%s), from %s (%s%s)\n", out, m.params.n, dtype_name, in,
           weights_naming_name(rep.naming), rep.unexpected ? ", some tensors ignored" : "");
    free(text);
    st_close(&f);
    detr_free(&m, dev);
    cd_close(dev);
    return 0;
}
