/* cldetr export RUN|CKPT|WEIGHTS -o FILE.safetensors [--format official|hf]: a
 * checkpoint's (or a weights file's) weights under the official DETR names (loadable by PyTorch's
 * DETR with strict=True) or HF transformers names with a config.json
 * (DetrForObjectDetection.from_pretrained), with the training config in
 * __metadata__ (docs/weights.md). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/coco.h"
#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cldetr/weights.h"
#include "cli/args.h"
#include "cli/cli.h"

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

/* The file starts with magic (a cldetr checkpoint: CKPT_MAGIC). */
static int has_magic(const char *path, const char *magic) {
    char buf[16] = {0};
    size_t n = strlen(magic);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, n, f) : 0;
    if (f) fclose(f);
    return got == n && !memcmp(buf, magic, n);
}

/* num_classes of a weights file's class head (either naming), or -1. */
static int file_num_classes(const st_file *f) {
    const st_tensor *t = st_find(f, "class_embed.bias");
    if (!t) t = st_find(f, "class_labels_classifier.bias");
    return t && t->ndim == 1 && t->shape[0] >= 2 ? (int)t->shape[0] - 1 : -1;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* A DetrConfig field that transformers types as int: the value when it is whole, else the field is left
 * at HF's default with a note. */
static void add_int_field(cJSON *j, const char *key, double v, const char *ours) {
    if (v == floor(v) && fabs(v) < 1e9) cJSON_AddNumberToObject(j, key, v);
    else printf("note: %s = %g is not a whole number; DetrConfig.%s (an int) keeps its default\n", ours, v, key);
}

/* config.json of DetrForObjectDetection for the model of cfg (the fields a transformers 4 config.json of
 * the hub holds; transformers 5 reads them too). Returns 0 or -1 with cd_errbuf(). */
static int write_hf_config(const char *path, const config *cfg, const detr_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("DetrForObjectDetection"));
    cJSON_AddStringToObject(j, "model_type", "detr");
    /* backbone: timm's ResNet, weights from the file (no download) */
    cJSON_AddBoolToObject(j, "use_timm_backbone", 1);
    cJSON_AddStringToObject(j, "backbone", cfg->model.backbone);
    cJSON_AddBoolToObject(j, "use_pretrained_backbone", 0);
    cJSON_AddNumberToObject(j, "num_channels", 3);
    cJSON_AddBoolToObject(j, "dilation", o->dilation);
    cJSON_AddStringToObject(j, "position_embedding_type", o->learned_pos ? "learned" : "sine");
    /* transformer */
    cJSON_AddNumberToObject(j, "d_model", o->d);
    cJSON_AddNumberToObject(j, "encoder_layers", o->enc_layers);
    cJSON_AddNumberToObject(j, "decoder_layers", o->dec_layers);
    cJSON_AddNumberToObject(j, "encoder_attention_heads", o->nheads);
    cJSON_AddNumberToObject(j, "decoder_attention_heads", o->nheads);
    cJSON_AddNumberToObject(j, "encoder_ffn_dim", o->dim_ff);
    cJSON_AddNumberToObject(j, "decoder_ffn_dim", o->dim_ff);
    cJSON_AddStringToObject(j, "activation_function", "relu");
    double p = cfg->model.dropout;           /* the official dropout acts in all three places */
    cJSON_AddNumberToObject(j, "dropout", p);
    cJSON_AddNumberToObject(j, "attention_dropout", p);
    cJSON_AddNumberToObject(j, "activation_dropout", p);
    cJSON_AddBoolToObject(j, "is_encoder_decoder", 1);
    /* heads, labels */
    cJSON_AddNumberToObject(j, "num_queries", o->num_queries);
    cJSON_AddBoolToObject(j, "auxiliary_loss", cfg->model.aux_loss);
    char **names = cd_xcalloc((size_t)o->num_classes, sizeof *names);
    int have_names = setup_class_names(cfg, o->num_classes, names, NULL);
    if (have_names) {
        cJSON *id2 = cJSON_AddObjectToObject(j, "id2label");
        for (int l = 0; l < o->num_classes; l++) {
            char k[24];
            snprintf(k, sizeof k, "%d", l);
            cJSON_AddStringToObject(id2, k, names[l] ? names[l] : "N/A");   /* N/A: no category has this id */
        }
    } else {
        cJSON_AddNumberToObject(j, "num_labels", o->num_classes);
        printf("note: class names unknown (no readable %s/%s): config.json has num_labels = %d and HF's "
               "LABEL_N names\n", cfg->data.root, cfg->data.val_ann, o->num_classes);
    }
    for (int l = 0; l < o->num_classes; l++) free(names[l]);
    free(names);
    /* matcher and loss (HF's names; its cross-entropy weight is 1) */
    add_int_field(j, "class_cost", cfg->matcher.set_cost_class, "matcher.set_cost_class");
    add_int_field(j, "bbox_cost", cfg->matcher.set_cost_bbox, "matcher.set_cost_bbox");
    add_int_field(j, "giou_cost", cfg->matcher.set_cost_giou, "matcher.set_cost_giou");
    add_int_field(j, "bbox_loss_coefficient", cfg->loss.bbox_loss_coef, "loss.bbox_loss_coef");
    add_int_field(j, "giou_loss_coefficient", cfg->loss.giou_loss_coef, "loss.giou_loss_coef");
    cJSON_AddNumberToObject(j, "eos_coefficient", cfg->loss.eos_coef);
    if (cfg->loss.ce_loss_coef != 1)
        printf("note: loss.ce_loss_coef = %g has no DetrConfig field (HF weighs the class loss by 1)\n",
               cfg->loss.ce_loss_coef);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) rc = cd_seterr("%s: %s", tmp, strerror(errno));
    else {
        int bad = fputs(text, f) < 0 || fputc('\n', f) < 0;
        bad |= fclose(f) != 0;
        if (bad) rc = cd_seterr("%s: write failed: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) rc = cd_seterr("%s: %s", path, strerror(errno));
        if (rc) unlink(tmp);
    }
    free(text);
    return rc;
}

int cmd_export(int argc, char **argv) {
    static const char *const formats[] = {"official", "hf", NULL};
    const char *src = NULL, *out_arg = NULL, *cfg_path = NULL;
    int last = 0, dtype = ST_F32, fmt = 0;
    const char *dtype_name = "f32";
    args a;
    args_init(&a, "export", argc, argv, ARGS_SETS);
    while (args_next(&a)) {
        args_value(&a, "-o", &out_arg);
        args_value(&a, "--config", &cfg_path);
        args_dtype(&a, "--dtype", &dtype, &dtype_name);
        args_choice(&a, "--format", &fmt, formats);
        if (args_flag(&a, "--last")) last = 1;
        args_single(&a, &src, "run folder or checkpoint");
    }
    if (a.rc >= 0) return a.rc;
    if (!src || !out_arg) return args_missing(&a, "give a run folder or checkpoint and -o FILE.safetensors");
    int hf = fmt == 1;

    /* the output file, and config.json's place with --format hf */
    char out[4096], cfg_json[4200] = "";
    if (is_dir(out_arg)) snprintf(out, sizeof out, "%s/model.safetensors", out_arg);
    else snprintf(out, sizeof out, "%s", out_arg);
    if (hf) {
        const char *b = base_name(out);
        size_t stem = strlen(out);
        if (!strcmp(b, "model.safetensors")) stem = (size_t)(b - out);
        else if (stem > 12 && !strcmp(out + stem - 12, ".safetensors")) stem -= 12;
        snprintf(cfg_json, sizeof cfg_json, "%.*s%s", (int)stem, out,
                 !strcmp(b, "model.safetensors") ? "config.json" : ".config.json");
    }

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
    int is_ckpt = is_dir(src) || has_magic(path, CKPT_MAGIC);
    if (is_ckpt && (cfg_path || a.n_sets)) {
        fprintf(stderr, "cldetr export: --config and --set apply to a safetensors input; %s is a checkpoint, which "
                        "holds its config\n", path);
        return 2;
    }

    static config cfg;
    ckpt_meta meta = {0};
    st_file in;
    int ncls = -1;
    char step[32] = "", epoch[32] = "", hash[32] = "";
    char *cfg_text = NULL;        /* the config written to __metadata__ */
    if (is_ckpt) {
        if (ckpt_read_meta(path, &meta) < 0) return cli_error();
        if (!meta.config_text || !meta.config_text[0]) {
            fprintf(stderr, "cldetr: error: %s holds no config text: cannot tell which model it is\n", path);
            return 1;
        }
        if (config_load_text(&cfg, meta.config_text, path, NULL, 0) < 0) return cli_error();
        ncls = cfg.model.num_classes > 0 ? cfg.model.num_classes : ckpt_num_classes(path);
        if (ncls < 0) return cli_error();
        cfg_text = cd_xstrdup(meta.config_text);
        ckpt_meta_free(&meta);
        memset(&meta, 0, sizeof meta);
    } else {                      /* weights under official or HF names (cldetr import / export, PyTorch, HF) */
        if (st_open(&in, path) < 0) {
            fprintf(stderr, "cldetr: error: %s is neither a cldetr checkpoint nor a safetensors file: %s\n", path,
                    cd_errbuf());
            return 1;
        }
        const char *text = st_meta(&in, "config");
        if (cfg_path || a.n_sets || !text) {
            if (!cfg_path && !a.n_sets) {
                fprintf(stderr, "cldetr: error: %s holds no config in its metadata: give the model's config with "
                                "--config CFG\n", path);
                return 1;
            }
            if (config_load(&cfg, cfg_path, a.sets, a.n_sets) < 0) return cli_error();
        } else if (config_load_text(&cfg, text, path, NULL, 0) < 0) {
            fprintf(stderr, "cldetr: error: %s; give the model's config with --config CFG\n", cd_errbuf());
            return 1;
        }
        ncls = cfg.model.num_classes > 0 ? cfg.model.num_classes : file_num_classes(&in);
        if (ncls < 0) {
            fprintf(stderr, "cldetr: error: %s has no class head (class_embed.bias): set model.num_classes\n", path);
            return 1;
        }
        if (st_meta(&in, "step")) snprintf(step, sizeof step, "%s", st_meta(&in, "step"));
        if (st_meta(&in, "epoch")) snprintf(epoch, sizeof epoch, "%s", st_meta(&in, "epoch"));
        size_t len = 0;
        FILE *mf = open_memstream(&cfg_text, &len);
        if (mf) { config_write(&cfg, mf); fclose(mf); }
    }
    detr_opts o;
    if (setup_detr_opts(&o, &cfg, ncls) < 0) return cli_error();
    if (hf && o.width != 64) {   /* DetrConfig has no stem width: transformers builds timm's ResNet as it is */
        fprintf(stderr, "cldetr: error: %s: model.width = %d, but HF's DetrForObjectDetection builds timm's %s "
                        "with width 64 (DetrConfig has no width); export with --format official\n", path, o.width,
                cfg.model.backbone);
        return 1;
    }
    cd_device *dev = cd_open(NULL, 0);      /* any device: the weights only pass through */
    if (!dev) return cli_error();
    detr_model m;
    if (detr_build(&m, &o, dev, 0) < 0) return cli_error();
    weights_report rep = {0};
    if (is_ckpt) {
        if (ckpt_load(path, &meta, &m.params, NULL, dev) < 0) return cli_error();
        snprintf(step, sizeof step, "%llu", (unsigned long long)meta.step);
        snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)meta.epoch);
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)meta.config_hash);
    } else {
        if (weights_load_file(&m, dev, &in, NULL, &rep) < 0) return cli_error();   /* strict: every tensor */
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)config_hash(&cfg));
    }
    const char *kv[20], **k = kv;
    *k++ = "format"; *k++ = "pt";
    *k++ = "producer"; *k++ = "cldetr export";
    *k++ = "naming"; *k++ = formats[fmt];
    *k++ = "source"; *k++ = path;
    if (step[0]) { *k++ = "step"; *k++ = step; }
    if (epoch[0]) { *k++ = "epoch"; *k++ = epoch; }
    *k++ = "config_hash"; *k++ = hash;
    *k++ = "config"; *k++ = cfg_text ? cfg_text : "";
    *k = NULL;
    weights_save_opts so = {0};
    so.dtype = (st_dtype)dtype;
    so.naming = hf ? WEIGHTS_NAMING_HF : WEIGHTS_NAMING_OFFICIAL;
    so.num_batches_tracked = strtoll(step, NULL, 10);
    so.meta = kv;
    if (weights_save(&m, dev, out, &so) < 0) return cli_error();
    if (hf && write_hf_config(cfg_json, &cfg, &o) < 0) return cli_error();
    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    char from[64] = "";
    if (is_ckpt) snprintf(from, sizeof from, "step %s, epoch %s", step, epoch);
    else snprintf(from, sizeof from, "%s", weights_naming_name(rep.naming));
    printf("wrote %s: %d tensors (%zu parameters, %s) under the %s, from %s (%s)\n", out, m.params.n, all,
           dtype_name, hf ? "HF transformers names (q/k/v split)" : "official DETR names", path, from);
    if (hf) {
        printf("wrote %s: DetrConfig of the model\n", cfg_json);
        if (strcmp(base_name(out), "model.safetensors"))
            printf("note: DetrForObjectDetection.from_pretrained(FOLDER) reads FOLDER/model.safetensors and "
                   "FOLDER/config.json: rename the two files so, or export with -o FOLDER/model.safetensors\n");
    }
    ckpt_meta_free(&meta);
    if (!is_ckpt) st_close(&in);
    free(cfg_text);
    detr_free(&m, dev);
    cd_close(dev);
    return 0;
}
