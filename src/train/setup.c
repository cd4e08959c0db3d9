/* Config -> model options and device spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/coco.h"
#include "cldetr/setup.h"

int setup_detr_opts(detr_opts *o, const config *cfg, int from_data) {
    const config_model *mc = &cfg->model;
    detr_opts_default(o);
    if (sscanf(mc->backbone, "resnet%d", &o->depth) != 1)
        return cd_seterr("model.backbone: unknown backbone '%s'", mc->backbone);
    o->width = mc->width;
    o->dilation = mc->dilation;
    o->bn_trainable = !strcmp(mc->backbone_bn, "trainable");
    o->train_stem = !strcmp(mc->freeze_backbone, "none");
    o->freeze_backbone = !strcmp(mc->freeze_backbone, "all") || cfg->train.lr_backbone <= 0;
    o->learned_pos = !strcmp(mc->position_embedding, "learned");
    o->d = mc->hidden_dim;
    o->nheads = mc->nheads;
    o->enc_layers = mc->enc_layers;
    o->dec_layers = mc->dec_layers;
    o->dim_ff = mc->dim_feedforward;
    o->dropout = (float)mc->dropout;
    o->pre_norm = mc->pre_norm;
    o->num_queries = mc->num_queries;
    o->num_classes = mc->num_classes > 0 ? mc->num_classes : from_data;
    if (o->num_classes < 1)
        return cd_seterr("model.num_classes is 0 (from the dataset) but no dataset was read; "
                         "set it, e.g. --set model.num_classes=91");
    return 0;
}

int setup_num_classes(const config *cfg) {
    char path[2 * CFG_STR_LEN + 2];
    snprintf(path, sizeof path, "%s/%s", cfg->data.root, cfg->data.train_ann);
    coco_dataset ds;
    if (coco_load(&ds, path) < 0) {
        char why[1024];
        snprintf(why, sizeof why, "%s", cd_errbuf());
        return cd_seterr("model.num_classes = 0 takes the class count from the training set, but %s\n"
                         "  (make the dataset first, or set model.num_classes)", why);
    }
    int64_t max_id = 0;
    for (size_t i = 0; i < ds.n_cats; i++) if (ds.cats[i].id > max_id) max_id = ds.cats[i].id;
    int n = cfg->data.contiguous_labels ? (int)ds.n_cats : (int)(max_id + 1);
    coco_free(&ds);
    if (n < 1) return cd_seterr("%s has no categories", path);
    return n;
}

const char *setup_device_spec(const config *cfg) {
    if (cfg->device.device[0]) {
        if (cfg->device.platform[0]) {
            static char spec[2 * CFG_STR_LEN + 2];
            snprintf(spec, sizeof spec, "%s:%s", cfg->device.platform, cfg->device.device);
            return spec;
        }
        return cfg->device.device;
    }
    if (strcmp(cfg->device.type, "any")) return cfg->device.type;
    return NULL;
}
