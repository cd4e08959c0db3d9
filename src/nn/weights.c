/* Model weights <-> safetensors by name (include/cldetr/weights.h): naming
 * detection, the official <- HF / ResNet name map, checks, load and save. */
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/weights.h"

#define NAME_CAP 192
#define LIST_MAX 5          /* names quoted in one message */

const char *weights_naming_name(weights_naming n) {
    switch (n) {
    case WEIGHTS_NAMING_OFFICIAL: return "official DETR names";
    case WEIGHTS_NAMING_HF: return "HF transformers names";
    case WEIGHTS_NAMING_RESNET: return "ResNet classifier names (backbone only)";
    }
    return "?";
}

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }
static int ends(const char *s, const char *p) {
    size_t a = strlen(s), b = strlen(p);
    return a >= b && !strcmp(s + a - b, p);
}

/* The file tensor(s) holding one model tensor: one, or q/k/v stacked on dim 0. */
typedef struct {
    char name[3][NAME_CAP];
    int nparts;
} src_names;

static void src_one(src_names *s, const char *a, const char *b) {
    s->nparts = 1;
    snprintf(s->name[0], NAME_CAP, "%s%s", a, b);
}

/* transformer.{encoder,decoder}.layers.N.<rest> -> model.{encoder,decoder}.layers.N.<hf rest> */
static int map_hf_layer(const char *name, src_names *s) {
    int enc = starts(name, "transformer.encoder.layers.");
    if (!enc && !starts(name, "transformer.decoder.layers.")) return -1;
    const char *p = name + strlen("transformer.encoder.layers.");   /* same length for decoder */
    char *end;
    long layer = strtol(p, &end, 10);
    if (end == p || *end != '.') return -1;
    const char *rest = end + 1;
    char prefix[96];
    snprintf(prefix, sizeof prefix, "model.%s.layers.%ld.", enc ? "encoder" : "decoder", layer);
    static const struct { const char *from, *to_enc, *to_dec; } sub[] = {
        {"linear1.", "fc1.", "fc1."},
        {"linear2.", "fc2.", "fc2."},
        {"norm1.", "self_attn_layer_norm.", "self_attn_layer_norm."},
        {"norm2.", "final_layer_norm.", "encoder_attn_layer_norm."},
        {"norm3.", NULL, "final_layer_norm."},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(sub); i++) {
        if (!starts(rest, sub[i].from)) continue;
        const char *to = enc ? sub[i].to_enc : sub[i].to_dec;
        if (!to) return -1;
        char a[128];
        snprintf(a, sizeof a, "%s%s", prefix, to);
        src_one(s, a, rest + strlen(sub[i].from));
        return 0;
    }
    const char *attn = starts(rest, "self_attn.") ? "self_attn." : starts(rest, "multihead_attn.") ? "encoder_attn." : NULL;
    if (!attn || (enc && strcmp(attn, "self_attn."))) return -1;
    const char *tail = strchr(rest, '.') + 1;
    if (!strcmp(tail, "in_proj_weight") || !strcmp(tail, "in_proj_bias")) {
        const char *wb = !strcmp(tail, "in_proj_weight") ? "weight" : "bias";
        static const char qkv[3] = {'q', 'k', 'v'};
        s->nparts = 3;
        for (int j = 0; j < 3; j++) snprintf(s->name[j], NAME_CAP, "%s%s%c_proj.%s", prefix, attn, qkv[j], wb);
        return 0;
    }
    char a[128];
    snprintf(a, sizeof a, "%s%s", prefix, attn);
    src_one(s, a, tail);     /* out_proj.weight / out_proj.bias */
    return 0;
}

/* Where the model tensor `name` (official) lives in a file of naming nm; -1: nowhere. */
static int map_name(weights_naming nm, const char *name, src_names *s) {
    memset(s, 0, sizeof *s);
    if (nm == WEIGHTS_NAMING_OFFICIAL) { src_one(s, name, ""); return 0; }
    if (nm == WEIGHTS_NAMING_RESNET) {
        if (!starts(name, "backbone.0.body.")) return -1;
        src_one(s, name + strlen("backbone.0.body."), "");
        return 0;
    }
    static const struct { const char *from, *to; } simple[] = {
        {"backbone.0.body.", "model.backbone.conv_encoder.model."},
        {"backbone.1.row_embed.", "model.backbone.position_embedding.row_embeddings."},
        {"backbone.1.col_embed.", "model.backbone.position_embedding.column_embeddings."},
        {"input_proj.", "model.input_projection."},
        {"query_embed.", "model.query_position_embeddings."},
        {"transformer.decoder.norm.", "model.decoder.layernorm."},
        {"class_embed.", "class_labels_classifier."},
        {"bbox_embed.", "bbox_predictor."},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(simple); i++)
        if (starts(name, simple[i].from)) { src_one(s, simple[i].to, name + strlen(simple[i].from)); return 0; }
    return map_hf_layer(name, s);    /* transformer.encoder.norm (pre-norm) has no HF counterpart: -1 */
}

/* The name transformers 5 gives a tensor in memory (and in files written from a
 * bare state_dict); its save_pretrained writes the legacy names above, except
 * the learned position embedding: model.position_embedding.* */
static void hf_v5_name(char *out, size_t cap, const char *name) {
    static const struct { const char *from, *to; } sub[] = {
        {"model.backbone.conv_encoder.model.", "model.backbone.model."},
        {"model.backbone.position_embedding.", "model.position_embedding."},
        {".out_proj.", ".o_proj."}, {".fc1.", ".mlp.fc1."}, {".fc2.", ".mlp.fc2."},
    };
    char a[NAME_CAP], b[NAME_CAP];
    snprintf(a, sizeof a, "%s", name);
    for (size_t i = 0; i < CD_ARRAY_LEN(sub); i++) {
        char *p = strstr(a, sub[i].from);
        if (!p) continue;
        snprintf(b, sizeof b, "%.*s%s%s", (int)(p - a), a, sub[i].to, p + strlen(sub[i].from));
        memcpy(a, b, sizeof a);
    }
    snprintf(out, cap, "%s", a);
}

/* ---- naming detection ------------------------------------------------------------ */

static int is_counter(const char *name) { return ends(name, "num_batches_tracked"); }

static int detect_naming(const st_file *f, weights_naming *nm) {
    static const char *official[] = {"backbone.0.", "backbone.1.", "transformer.", "input_proj.", "query_embed.",
                                     "class_embed.", "bbox_embed."};
    static const char *hf[] = {"model.backbone.", "model.encoder.", "model.decoder.", "model.input_projection.",
                               "model.query_position_embeddings.", "model.position_embedding.", "class_labels_classifier.",
                               "bbox_predictor."};
    size_t n_off = 0, n_hf = 0;
    const char *ex_off = NULL, *ex_hf = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *n = f->tensors[i].name;
        for (size_t k = 0; k < CD_ARRAY_LEN(official); k++)
            if (starts(n, official[k])) { n_off++; if (!ex_off) ex_off = n; break; }
        for (size_t k = 0; k < CD_ARRAY_LEN(hf); k++)
            if (starts(n, hf[k])) { n_hf++; if (!ex_hf) ex_hf = n; break; }
    }
    if (n_off && n_hf)
        return cd_seterr("%s: the file mixes official DETR names (%zu, e.g. '%s') and HF transformers names "
                         "(%zu, e.g. '%s'); convert it with tools/convert_detr_checkpoint.py",
                         f->path, n_off, ex_off, n_hf, ex_hf);
    if (n_off) { *nm = WEIGHTS_NAMING_OFFICIAL; return 0; }
    if (n_hf) { *nm = WEIGHTS_NAMING_HF; return 0; }
    if (st_find(f, "conv1.weight") && (st_find(f, "layer1.0.conv1.weight"))) { *nm = WEIGHTS_NAMING_RESNET; return 0; }
    return cd_seterr("%s: no DETR tensor names found (%zu tensors, first '%s'): expected official DETR names "
                     "(backbone.0.body.conv1.weight, transformer.encoder.layers.0..., class_embed.weight), HF "
                     "transformers names (model.backbone.conv_encoder.model.conv1.weight, ...) or a ResNet's "
                     "(conv1.weight, layer1.0.conv1.weight, ...)", f->path, f->n_tensors,
                     f->n_tensors ? f->tensors[0].name : "(none)");
}

/* ---- the plan: every model tensor's source, checked ------------------------------- */

enum { P_OK, P_MISSING, P_SHAPE, P_CLASS_HEAD, P_KEPT };

typedef struct {
    int status;
    src_names src;
    const st_tensor *t[3];
    int bad_part;             /* P_MISSING / P_SHAPE: the part at fault */
} plan_entry;

static char *shape_of_param(char *buf, size_t cap, const nn_param *p) {
    int64_t s[4];
    for (int d = 0; d < p->ndim; d++) s[d] = (int64_t)p->shape[d];
    return st_shape_str(buf, cap, p->ndim, s);
}

/* part of a model tensor split in np pieces along dim 0 */
static int part_shape_ok(const nn_param *p, const st_tensor *t, int np) {
    if (t->ndim != p->ndim || p->ndim < 1) return p->ndim == 0 && t->ndim == 0 && np == 1;
    if (p->shape[0] % (size_t)np || (size_t)t->shape[0] != p->shape[0] / (size_t)np) return 0;
    for (int d = 1; d < p->ndim; d++) if ((size_t)t->shape[d] != p->shape[d]) return 0;
    return 1;
}

/* The config keys a tensor's shape depends on, for messages. */
static const char *shape_hint(const char *name) {
    if (starts(name, "class_embed.")) return "model.num_classes (the file's class head has another number of classes)";
    if (starts(name, "query_embed.")) return "model.num_queries";
    if (starts(name, "backbone.0.")) return "model.backbone, model.width, model.dilation";
    if (strstr(name, "linear1") || strstr(name, "linear2")) return "model.dim_feedforward, model.hidden_dim";
    if (starts(name, "input_proj.")) return "model.hidden_dim, model.backbone, model.width";
    return "model.hidden_dim";
}

static int is_backbone(const char *name) { return starts(name, "backbone.0.body."); }

int weights_load_file(detr_model *m, cd_device *dev, const st_file *f, const weights_opts *opts, weights_report *rep) {
    static const weights_opts strict = {0};
    const weights_opts *o = opts ? opts : &strict;
    weights_report r = {0};
    r.file_classes = -1;
    if (detect_naming(f, &r.naming) < 0) return -1;
    nn_params *ps = &m->params;
    plan_entry *plan = cd_xcalloc((size_t)(ps->n ? ps->n : 1), sizeof *plan);
    unsigned char *used = cd_xcalloc(f->n_tensors ? f->n_tensors : 1, 1);
    int n_missing = 0, n_shape = 0, n_class = 0, n_nonbackbone_found = 0, n_backbone_missing = 0;
    for (int i = 0; i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        plan_entry *e = &plan[i];
        if (map_name(r.naming, p->name, &e->src) < 0) { e->status = P_MISSING; e->bad_part = -1; }
        for (int j = 0; e->status == P_OK && j < e->src.nparts; j++) {
            e->t[j] = st_find(f, e->src.name[j]);
            if (!e->t[j] && r.naming == WEIGHTS_NAMING_HF) {
                char alt[NAME_CAP];
                hf_v5_name(alt, sizeof alt, e->src.name[j]);
                e->t[j] = st_find(f, alt);
            }
            if (!e->t[j]) { e->status = P_MISSING; e->bad_part = j; }
        }
        for (int j = 0; j < e->src.nparts; j++)
            if (e->t[j]) {
                used[e->t[j] - f->tensors] = 1;
                if (!is_backbone(p->name)) n_nonbackbone_found++;
            }
        if (e->status == P_OK)
            for (int j = 0; j < e->src.nparts; j++)
                if (!part_shape_ok(p, e->t[j], e->src.nparts)) { e->status = P_SHAPE; e->bad_part = j; break; }
        if (!strcmp(p->name, "class_embed.bias") && e->t[0] && e->t[0]->ndim == 1)
            r.file_classes = (int)e->t[0]->shape[0] - 1;
        if (e->status == P_SHAPE && starts(p->name, "class_embed.") && o->reinit_class_head) {
            /* another number of classes: the rows differ, the rest agrees */
            const st_tensor *t = e->t[0];
            int same_rest = t->ndim == p->ndim;
            for (int d = 1; same_rest && d < p->ndim; d++) same_rest = (size_t)t->shape[d] == p->shape[d];
            if (same_rest) e->status = P_CLASS_HEAD;
        }
        n_missing += e->status == P_MISSING && !detr_param_training_only(p->name);   /* those keep their init */
        n_backbone_missing += e->status == P_MISSING && is_backbone(p->name);
        n_shape += e->status == P_SHAPE;
        n_class += e->status == P_CLASS_HEAD;
    }
    /* a whole model without its class head (DETR's recipe for a new dataset deletes it): kept as initialized */
    for (int i = 0; i < ps->n && o->reinit_class_head && n_nonbackbone_found > 0; i++)
        if (plan[i].status == P_MISSING && starts(ps->p[i].name, "class_embed.")) {
            plan[i].status = P_CLASS_HEAD;
            n_missing--;
            n_class++;
        }
    /* a file of the backbone alone */
    int backbone_only = o->allow_backbone_only && n_nonbackbone_found == 0 && n_missing > n_backbone_missing;
    char a[64], b[64];
    int rc = 0;
    if (n_shape) {
        int shown = 0;
        char list[1024] = "";
        const char *first_hint = NULL;
        for (int i = 0; i < ps->n && rc == 0; i++) {
            plan_entry *e = &plan[i];
            if (e->status != P_SHAPE) continue;
            const st_tensor *t = e->t[e->bad_part];
            if (!first_hint) first_hint = shape_hint(ps->p[i].name);
            if (shown++ < LIST_MAX) {
                size_t l = strlen(list);
                if (e->src.nparts > 1)
                    snprintf(list + l, sizeof list - l, "%s'%s' is %s, the model's '%s' is %s (split in %d)",
                             l ? "; " : "", t->name, st_shape_str(a, sizeof a, t->ndim, t->shape), ps->p[i].name,
                             shape_of_param(b, sizeof b, &ps->p[i]), e->src.nparts);
                else
                    snprintf(list + l, sizeof list - l, "%s'%s' is %s, the model's '%s' is %s", l ? "; " : "",
                             t->name, st_shape_str(a, sizeof a, t->ndim, t->shape), ps->p[i].name,
                             shape_of_param(b, sizeof b, &ps->p[i]));
            }
        }
        rc = cd_seterr("%s: %d tensor%s of another shape than the model's: %s%s. The file is from another "
                       "config: check %s", f->path, n_shape, n_shape > 1 ? "s" : "", list,
                       n_shape > LIST_MAX ? " ..." : "", first_hint);
    }
    if (rc == 0 && n_missing && !o->allow_missing && !(backbone_only && n_backbone_missing == 0)) {
        int shown = 0;
        char list[1024] = "";
        for (int i = 0; i < ps->n; i++) {
            plan_entry *e = &plan[i];
            if (e->status != P_MISSING || (backbone_only && !is_backbone(ps->p[i].name))) continue;
            if (shown++ >= LIST_MAX) continue;
            size_t l = strlen(list);
            if (r.naming == WEIGHTS_NAMING_OFFICIAL || e->bad_part < 0)
                snprintf(list + l, sizeof list - l, "%s'%s'", l ? ", " : "", ps->p[i].name);
            else
                snprintf(list + l, sizeof list - l, "%s'%s' (as '%s')", l ? ", " : "", ps->p[i].name,
                         e->src.name[e->bad_part]);
        }
        int n = backbone_only ? n_backbone_missing : n_missing;
        rc = cd_seterr("%s (%s): %d tensor%s of the model %s missing: %s%s. The file is from another config "
                       "(model.backbone, model.enc_layers, model.dec_layers, model.pre_norm, "
                       "model.position_embedding?) or incomplete", f->path, weights_naming_name(r.naming), n,
                       n > 1 ? "s" : "", n > 1 ? "are" : "is", list, n > LIST_MAX ? ", ..." : "");
    }
    int n_unexpected = 0;
    for (size_t k = 0; k < f->n_tensors; k++) {
        const char *n = f->tensors[k].name;
        if (used[k] || is_counter(n)) continue;
        if (r.naming == WEIGHTS_NAMING_RESNET && starts(n, "fc.")) continue;   /* the classifier */
        n_unexpected++;
    }
    if (rc == 0 && n_unexpected && !o->allow_unexpected) {
        int shown = 0;
        char list[1024] = "";
        for (size_t k = 0; k < f->n_tensors && shown < LIST_MAX; k++) {
            const char *n = f->tensors[k].name;
            if (used[k] || is_counter(n) || (r.naming == WEIGHTS_NAMING_RESNET && starts(n, "fc."))) continue;
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s'%s'", shown++ ? ", " : "", n);
        }
        rc = cd_seterr("%s (%s): %d tensor%s of the file %s not used by the model: %s%s. The file is from "
                       "another config (more layers, pre-norm, learned position embedding?)", f->path,
                       weights_naming_name(r.naming), n_unexpected, n_unexpected > 1 ? "s" : "",
                       n_unexpected > 1 ? "are" : "is", list, n_unexpected > LIST_MAX ? ", ..." : "");
    }
    if (rc == 0) {
        if (dev) nn_params_download(ps, dev);
        float *backup = NULL;   /* a conversion error halfway must leave m unchanged */
        backup = cd_xmalloc((ps->total ? ps->total : 1) * sizeof *backup);
        memcpy(backup, ps->host, ps->total * sizeof *backup);
        for (int i = 0; i < ps->n && rc == 0; i++) {
            plan_entry *e = &plan[i];
            if (e->status != P_OK) continue;
            const nn_param *p = &ps->p[i];
            size_t part = p->n / (size_t)e->src.nparts;
            for (int j = 0; j < e->src.nparts && rc == 0; j++)
                if (st_read_f32(f, e->t[j]->name, ps->host + p->off + (size_t)j * part, -1, NULL) < 0) rc = -1;
            r.loaded++;
        }
        if (rc < 0) memcpy(ps->host, backup, ps->total * sizeof *backup);
        free(backup);
        if (rc == 0 && dev) nn_params_upload(ps, dev);
    }
    if (rc == 0) {
        r.missing = n_missing;
        r.unexpected = n_unexpected;
        r.class_head_kept = n_class > 0;
        if (o->log) {
            fprintf(o->log, "%s: %s, %d of the model's %d tensors loaded\n", f->path, weights_naming_name(r.naming),
                    r.loaded, ps->n);
            if (r.class_head_kept && r.file_classes < 0)
                fprintf(o->log, "%s: no class head in the file: class_embed keeps its initialization\n", f->path);
            else if (r.class_head_kept)
                fprintf(o->log, "%s: the class head has %d classes, the model %d: class_embed keeps its "
                                "initialization (fine-tuning on a new set of classes)\n", f->path, r.file_classes,
                        m->o.num_classes);
            if (n_missing)
                fprintf(o->log, "%s: %d tensors of the model are not in the file and keep their values%s\n",
                        f->path, n_missing,
                        backbone_only ? " (the file holds the backbone only: transformer and heads stay as "
                                        "initialized)" : "");
            if (n_unexpected) fprintf(o->log, "%s: %d tensors of the file are not used\n", f->path, n_unexpected);
        }
        if (rep) *rep = r;
    }
    free(plan);
    free(used);
    return rc;
}

int weights_load(detr_model *m, cd_device *dev, const char *path, const weights_opts *opts, weights_report *rep) {
    st_file f;
    if (st_open(&f, path) < 0) return -1;
    int rc = weights_load_file(m, dev, &f, opts, rep);
    st_close(&f);
    return rc;
}

/* The name under which transformers 5's save_pretrained writes an HF tensor: the legacy names of
 * map_name (what transformers 4 reads and writes, and transformers 5 renames on load), except the
 * learned position embedding, which transformers 5 keeps outside the backbone (model.position_embedding.*)
 * and reads nowhere else. weights_load reads either. */
static void hf_file_name(char *out, size_t cap, const char *name) {
    static const char *legacy = "model.backbone.position_embedding.";
    if (starts(name, legacy)) snprintf(out, cap, "model.position_embedding.%s", name + strlen(legacy));
    else snprintf(out, cap, "%s", name);
}

/* Why a model has no HF transformers counterpart, or NULL: the tensor to name in the message. */
static const char *hf_unmappable(const detr_model *m, const char **why) {
    const nn_params *ps = &m->params;
    src_names s;
    for (int i = 0; i < ps->n; i++)
        if (!detr_param_training_only(ps->p[i].name) && map_name(WEIGHTS_NAMING_HF, ps->p[i].name, &s) < 0) {
            *why = starts(ps->p[i].name, "transformer.encoder.norm.")
                       ? "the final encoder norm of a pre-norm transformer (model.pre_norm = true) has no place in "
                         "HF's DetrForObjectDetection, which is post-norm only"
                       : "it has no HF transformers name";
            return ps->p[i].name;
        }
    if (m->o.pre_norm && ps->n > 0) {   /* pre-norm without encoder layers: every name maps, the order does not */
        *why = "the model is pre-norm (model.pre_norm = true); HF's DetrForObjectDetection is post-norm only and "
               "would compute another function with these weights";
        for (int i = 0; i < ps->n; i++)
            if (starts(ps->p[i].name, "transformer.")) return ps->p[i].name;
        return ps->p[0].name;
    }
    return NULL;
}

int weights_save(detr_model *m, cd_device *dev, const char *path, const weights_save_opts *opts) {
    static const weights_save_opts plain = {0};
    const weights_save_opts *o = opts ? opts : &plain;
    st_dtype dt = o->dtype == ST_F64 ? ST_F32 : o->dtype;   /* 0 (= ST_F64) means the default F32 */
    if (dt != ST_F32 && dt != ST_F16 && dt != ST_BF16)
        return cd_seterr("%s: weights are saved as F32, F16 or BF16, not %s", path, st_dtype_name(dt));
    weights_naming nm = o->naming;
    if (nm != WEIGHTS_NAMING_OFFICIAL && nm != WEIGHTS_NAMING_HF)
        return cd_seterr("%s: weights are saved under official DETR or HF transformers names, not %s", path,
                         weights_naming_name(nm));
    if (nm == WEIGHTS_NAMING_HF) {
        const char *why = NULL, *bad = hf_unmappable(m, &why);
        if (bad)
            return cd_seterr("%s: cannot write HF transformers names: '%s': %s. Export with the official names "
                             "(cldetr export --format official)", path, bad, why);
    }
    nn_params *ps = &m->params;
    if (dev) nn_params_download(ps, dev);
    st_writer *w = st_writer_new();
    int has_format = 0;
    for (const char *const *kv = o->meta; kv && kv[0] && kv[1]; kv += 2) {
        st_writer_meta(w, kv[0], kv[1]);
        has_format |= !strcmp(kv[0], "format");
    }
    if (nm == WEIGHTS_NAMING_HF && !has_format) st_writer_meta(w, "format", "pt");   /* from_pretrained wants it */
    int rc = 0;
    int64_t *counter = cd_xmalloc(sizeof *counter);
    *counter = o->num_batches_tracked;
    for (int i = 0; i < ps->n && rc == 0; i++) {
        const nn_param *p = &ps->p[i];
        src_names s;
        if (detr_param_training_only(p->name)) continue;   /* DETR at inference: the accelerators stay behind */
        if (map_name(nm, p->name, &s) < 0) {   /* checked above */
            rc = cd_seterr("'%s' has no name in the file's naming", p->name);
            break;
        }
        int64_t sh[4];
        for (int d = 0; d < p->ndim; d++) sh[d] = (int64_t)p->shape[d];
        if (p->ndim > 0) sh[0] /= s.nparts;    /* in_proj: q, k, v rows, as the import stacks them */
        size_t part = p->n / (size_t)s.nparts;
        for (int j = 0; j < s.nparts && rc == 0; j++) {
            char name[NAME_CAP];
            if (nm == WEIGHTS_NAMING_HF) hf_file_name(name, sizeof name, s.name[j]);
            else snprintf(name, sizeof name, "%s", s.name[j]);
            const float *x = ps->host + p->off + (size_t)j * part;
            rc = dt == ST_F32 ? st_writer_add_ref(w, name, ST_F32, p->ndim, sh, x)
                              : st_writer_add_f32(w, name, dt, p->ndim, sh, x);
        }
        /* nn.BatchNorm2d's state_dict ends each layer with num_batches_tracked; HF's DETR has frozen
         * BatchNorm (buffers without the counter) */
        if (rc == 0 && nm == WEIGHTS_NAMING_OFFICIAL && m->o.bn_trainable && is_backbone(p->name) &&
            ends(p->name, ".running_var")) {
            char n[NAME_CAP];
            snprintf(n, sizeof n, "%.*snum_batches_tracked", (int)(strlen(p->name) - strlen("running_var")), p->name);
            rc = st_writer_add_ref(w, n, ST_I64, 0, NULL, counter);
        }
    }
    if (rc < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cd_errbuf());
        rc = cd_seterr("%s: %s", path, msg);
    } else rc = st_writer_write(w, path);
    st_writer_free(w);
    free(counter);
    return rc;
}

int weights_init_model(detr_model *m, cd_device *dev, const char *path, FILE *log) {
    weights_opts o = {0};
    o.allow_backbone_only = 1;
    o.reinit_class_head = 1;
    o.log = NULL;
    weights_report r;
    if (weights_load(m, dev, path, &o, &r) < 0) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", cd_errbuf());
        return cd_seterr("model.init: %s", msg);
    }
    if (log) {
        fprintf(log, "model.init: %d of %d tensors loaded from %s (%s)\n", r.loaded, m->params.n, path,
                weights_naming_name(r.naming));
        if (r.class_head_kept && r.file_classes < 0)
            fprintf(log, "model.init: %s has no class head: class_embed is re-initialized\n", path);
        else if (r.class_head_kept)
            fprintf(log, "model.init: %s has a class head for %d classes, the model %d (model.num_classes): "
                         "class_embed is re-initialized\n", path, r.file_classes, m->o.num_classes);
        if (r.missing && !r.class_head_kept)
            fprintf(log, "model.init: %s holds the backbone only: the other %d tensors (transformer, heads) keep "
                         "their random initialization\n", path, r.missing);
        else if (r.missing)
            fprintf(log, "model.init: %d tensors not in %s keep their random initialization\n", r.missing, path);
        fflush(log);
    }
    return 0;
}
