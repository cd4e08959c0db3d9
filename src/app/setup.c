/* Config -> model options and device spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/coco.h"
#include "cldetr/setup.h"

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

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
    o->query_groups = cfg->train.query_groups;
    o->dn = cfg->train.dn_groups > 0;
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

void setup_criterion_opts(criterion_opts *o, const config *cfg) {
    criterion_opts_default(o);
    o->w_ce = cfg->loss.ce_loss_coef;
    o->w_bbox = cfg->loss.bbox_loss_coef;
    o->w_giou = cfg->loss.giou_loss_coef;
    o->eos_coef = cfg->loss.eos_coef;
    o->cost.cost_class = cfg->matcher.set_cost_class;
    o->cost.cost_bbox = cfg->matcher.set_cost_bbox;
    o->cost.cost_giou = cfg->matcher.set_cost_giou;
    o->aux_loss = cfg->model.aux_loss;
}

void setup_lr_schedule(lr_schedule *s, const config *cfg, long total_steps) {
    memset(s, 0, sizeof *s);
    s->kind = lr_schedule_kind(cfg->train.schedule);
    s->base_lr[NN_GROUP_REST] = cfg->train.lr;
    s->base_lr[NN_GROUP_BACKBONE] = cfg->train.lr_backbone;
    s->warmup_steps = cfg->train.warmup_steps;
    s->lr_drop = cfg->train.lr_drop;
    s->gamma = cfg->train.lr_gamma;
    s->total_steps = total_steps;
}

void setup_shapes_opts(shapes_opts *o, const config *cfg) {
    const config_data *dc = &cfg->data;
    shapes_opts_default(o);
    *o = (shapes_opts){.dir = dc->root, .n_train = dc->shapes_train, .n_val = dc->shapes_val,
                       .size = dc->shapes_size, .seed = (uint64_t)dc->shapes_seed,
                       .min_objects = dc->shapes_min_objects, .max_objects = dc->shapes_max_objects,
                       .progress = o->progress};
}

int setup_class_names(const config *c, int K, char **names, int64_t *cats) {
    const char *anns[2] = {c->data.val_ann, c->data.train_ann};
    char path[2 * CFG_STR_LEN + 2];
    coco_dataset ds;
    int got = 0;
    for (int i = 0; i < 2 && !got; i++) {
        snprintf(path, sizeof path, "%s/%s", c->data.root, anns[i]);
        got = is_file(path) && coco_load(&ds, path) == 0;
    }
    if (!got) return 0;
    for (size_t i = 0; i < ds.n_cats; i++) {
        int64_t label = ds.cats[i].id;
        if (c->data.contiguous_labels) {     /* the rank of its id */
            label = 0;
            for (size_t j = 0; j < ds.n_cats; j++) label += ds.cats[j].id < ds.cats[i].id;
        }
        if (label < 0 || label >= K || names[label]) continue;
        names[label] = cd_xstrdup(ds.cats[i].name);
        if (cats) cats[label] = ds.cats[i].id;
    }
    coco_free(&ds);
    return 1;
}

#define CLASS_LINE "; class "

char *setup_class_names_comment(const config *c, int K) {
    char **names = cd_xcalloc((size_t)CD_MAX(K, 1), sizeof *names);
    int64_t *cats = cd_xcalloc((size_t)CD_MAX(K, 1), sizeof *cats);
    char *text = NULL;
    size_t len = 0;
    if (setup_class_names(c, K, names, cats)) {
        FILE *f = open_memstream(&text, &len);
        if (f) {
            fprintf(f, "\n; the class names of the training set (label, category id, name): kept here for\n"
                       "; cldetr eval and predict when the dataset is elsewhere\n");
            for (int l = 0; l < K; l++)
                if (names[l]) fprintf(f, CLASS_LINE "%d %lld %s\n", l, (long long)cats[l], names[l]);
            fclose(f);
        }
    }
    for (int l = 0; l < K; l++) free(names[l]);
    free(names);
    free(cats);
    return text;
}

int setup_class_names_from_text(const char *text, int K, char **names, int64_t *cats) {
    int found = 0;
    for (const char *p = text ? strstr(text, CLASS_LINE) : NULL; p; p = strstr(p + 1, CLASS_LINE)) {
        if (p != text && p[-1] != '\n') continue;
        int l, used = 0;
        long long id;
        if (sscanf(p + strlen(CLASS_LINE), "%d %lld %n", &l, &id, &used) != 2 || !used || l < 0 || l >= K || names[l])
            continue;
        const char *name = p + strlen(CLASS_LINE) + used;
        size_t n = strcspn(name, "\n");
        if (!n) continue;
        names[l] = cd_xmalloc(n + 1);
        memcpy(names[l], name, n);
        names[l][n] = '\0';
        if (cats) cats[l] = id;
        found++;
    }
    return found;
}

void setup_max_input(const config *cfg, size_t *H, size_t *W) {
    size_t h = 0;
    for (int i = 0; i < cfg->augment.scales.n; i++) h = CD_MAX(h, (size_t)cfg->augment.scales.v[i]);
    *H = h;
    *W = cfg->augment.max_size > 0 ? CD_MAX((size_t)cfg->augment.max_size, h) : h;
}

void setup_estimate_step_memory(setup_step_memory *mem, detr_model *m, const config *cfg, cd_device *dev) {
    memset(mem, 0, sizeof *mem);
    mem->B = (size_t)cfg->train.batch_size;
    setup_max_input(cfg, &mem->H, &mem->W);
    nn_ctx ctx;
    nn_ctx_init(&ctx, dev, &m->params);
    ctx.dry = 1;
    ctx.training = 1;
    float *dummy = cd_xcalloc(mem->B * 3 * mem->H * mem->W, sizeof(float));
    detr_out out;
    detr_forward(m, &ctx, dummy, dummy, mem->B, mem->H, mem->W, &out);
    free(dummy);
    mem->Hf = out.Hf;
    mem->Wf = out.Wf;
    mem->activations = ctx.dry_act * sizeof(float);
    mem->activation_grads = nn_dry_grad_peak(&ctx) * sizeof(float);
    mem->activation_grads_all = ctx.dry_grad * sizeof(float);
    mem->flops_fw = ctx.flops_fw;
    mem->flops_bw = ctx.flops_bw;
    mem->params = (m->params.total + 3 * m->params.n_trainable) * sizeof(float);
    nn_ctx_free(&ctx);
}

/* ---- the data pipeline of a config ---------------------------------------- */

void setup_augment_opts(augment_opts *a, const config *c) {
    augment_opts_default(a);
    a->hflip = c->augment.hflip > 0;
    a->hflip_p = c->augment.hflip;
    a->n_scales = CD_MIN(c->augment.scales.n, AUG_MAX_SCALES);
    for (int i = 0; i < a->n_scales; i++) a->scales[i] = c->augment.scales.v[i];
    a->max_size = c->augment.max_size;
    a->select = c->augment.random_select < 1.0;
    a->select_p = c->augment.random_select;
    a->n_select_scales = CD_MIN(c->augment.select_scales.n, AUG_MAX_SCALES);
    for (int i = 0; i < a->n_select_scales; i++) a->select_scales[i] = c->augment.select_scales.v[i];
    a->crop_min = c->augment.crop_min;
    a->crop_max = c->augment.crop_max;
    a->val_size = c->augment.val_size;
    a->val_max_size = c->augment.val_max_size;
}

void setup_loader_opts(loader_opts *lo, const config *c, int train) {
    loader_opts_default(lo, train);
    lo->batch_size = (size_t)(train ? c->train.batch_size : c->eval.batch_size);
    lo->workers = c->data.workers;
    lo->prefetch = c->data.prefetch;
    lo->seed = (uint64_t)c->train.seed;
    for (int i = 0; i < 3; i++) {
        lo->mean[i] = (float)c->augment.mean.v[i];
        lo->std[i] = (float)c->augment.std.v[i];
    }
}

void setup_data_opts(data_opts *o, const config *c, int train, char *ann, char *images, size_t n) {
    snprintf(ann, n, "%s/%s", c->data.root, train ? c->data.train_ann : c->data.val_ann);
    snprintf(images, n, "%s/%s", c->data.root, train ? c->data.train_images : c->data.val_images);
    data_opts_default(o);
    o->ann_file = ann;
    o->image_dir = images;
    o->contiguous_labels = c->data.contiguous_labels;
    o->on_bad_sample = strcmp(c->data.on_bad_sample, "skip") ? DATA_BAD_ERROR : DATA_BAD_SKIP;
}

data_dataset *setup_open_split(const config *c, const char *split) {
    int train = !strcmp(split, "train");
    if (!train && strcmp(split, "val")) { cd_seterr("unknown split '%s': use val or train", split); return NULL; }
    char ann[2 * CFG_STR_LEN + 2], images[2 * CFG_STR_LEN + 2], cwd[2048];
    data_opts o;
    setup_data_opts(&o, c, train, ann, images, sizeof ann);
    const char *missing = !is_file(ann) ? ann : !is_dir(images) ? images : NULL;
    if (missing) {
        if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
        if (c->data.make_shapes)
            cd_seterr("the run's dataset is missing: no %s (data.root = %s is taken relative to the current folder, "
                      "%s). Run from the folder the training ran in, or make the same shapes dataset with\n"
                      "  cldetr make-shapes %s --train %d --val %d --size %d --seed %d --min-objects %d "
                      "--max-objects %d",
                      missing, c->data.root, cwd, c->data.root, c->data.shapes_train, c->data.shapes_val,
                      c->data.shapes_size, c->data.shapes_seed, c->data.shapes_min_objects,
                      c->data.shapes_max_objects);
        else
            cd_seterr("the run's dataset is missing: no %s (data.root = %s is taken relative to the current folder, "
                      "%s). Run from the folder the training ran in, or put the COCO-format dataset there "
                      "(annotations %s, images %s)",
                      missing, c->data.root, cwd, train ? c->data.train_ann : c->data.val_ann,
                      train ? c->data.train_images : c->data.val_images);
        return NULL;
    }
    return data_open(&o);
}
