/* The weights verbs run as subprocesses ($CLDETR_BIN):
 *   cldetr step   vs tests/fixtures/weights/step_ref.safetensors (DETR forward, matcher, set
 *                 criterion and backward in float64 PyTorch, tools/reference/make_weights_fixtures.py)
 *   cldetr export of a checkpoint / run folder, then weights_load: identical parameters
 *   cldetr export --format hf: HF transformers names (loaded back: identical) and config.json
 *   cldetr import of an HF transformers file: the official values
 * and bad input to each: non-zero exit and a message naming the file or tensor. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "../cli_run.h"
#include "cldetr/coco.h"
#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cldetr/train.h"
#include "cldetr/weights.h"

static char dir[256], bin[1024], root[1024];
static char *out_text, *err_text;
static cd_device *dev;

/* Run `cldetr ARGS`; its exit code, and stdout / stderr in out_text / err_text. */
static int run(const char *args) { return t_run_cli(bin, dir, args, &out_text, &err_text); }

static const char *fx(const char *name) {
    char p[1400];
    snprintf(p, sizeof p, "%s/tests/fixtures/weights/%s", root, name);
    return t_keep(cd_xstrdup(p));
}
static const char *tp(const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return t_keep(cd_xstrdup(p));
}

static double scalar(const st_file *f, const char *name) {
    double v = NAN;
    if (st_read_f64(f, name, &v, 0, NULL) < 0) t_diag("%s", cd_errbuf());
    return v;
}

/* Tensor `name` of both files: |a - b| <= tol * max(1, max|ref|). */
static void close_tensor(const st_file *ref, const st_file *got, const char *name, double tol) {
    const st_tensor *t = st_find(ref, name), *u = st_find(got, name);
    if (!t || !u || t->numel != u->numel) { t_ok(0, "%s in both files with the same size", name); return; }
    double *a = malloc(t->numel * sizeof *a), *b = malloc(t->numel * sizeof *b);
    st_read_f64(ref, name, a, -1, NULL);
    st_read_f64(got, name, b, -1, NULL);
    double mx = 1;
    for (size_t i = 0; i < t->numel; i++) mx = fmax(mx, fabs(a[i]));
    char what[256];
    snprintf(what, sizeof what, "step %s vs PyTorch", name);
    t_close_d(what, a, b, t->numel, tol * mx, 0);
    free(a); free(b);
}

static void test_step(void) {
    const char *ref_path = fx("step_ref.safetensors"), *dump = tp("step.safetensors");
    char args[6000];
    snprintf(args, sizeof args, "step '%s' --weights '%s/tests/fixtures/nn/tiny_detr.safetensors' --image '%s' '%s' "
             "--targets '%s' --dump '%s'", fx("step_tiny.ini"), root, fx("step_a.png"), fx("step_b.png"),
             fx("step_coco.json"), dump);
    int rc = run(args);
    t_ok(rc == 0 && strstr(out_text, "loss"), "cldetr step on the tiny fixture: exit %d %s", rc, err_text);
    st_file R, G;
    if (rc || st_open(&R, ref_path) < 0 || st_open(&G, dump) < 0) { t_ok(0, "open dumps: %s", cd_errbuf()); return; }
    /* losses: float32 forward vs float64 reference */
    static const char *terms[] = {"loss", "loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_bbox_0", "loss_giou_0"};
    for (size_t k = 0; k < CD_ARRAY_LEN(terms); k++) {
        double a = scalar(&R, terms[k]), b = scalar(&G, terms[k]);
        t_ok(fabs(a - b) <= 1e-5 * fmax(1, fabs(a)), "%s: cldetr %.9g, PyTorch %.9g", terms[k], b, a);
    }
    double w = scalar(&G, "weighted.loss_bbox"), u = scalar(&G, "loss_bbox");
    t_ok(fabs(w - 5 * u) <= 1e-12 * fabs(w), "weighted.loss_bbox = 5 * loss_bbox (%.9g)", w);
    t_ok(scalar(&R, "num_boxes") == scalar(&G, "num_boxes") && scalar(&G, "num_boxes") == 3,
         "num_boxes = 3 (the crowd box dropped, the box past the edge clamped and kept)");
    t_ok(scalar(&R, "class_error") == scalar(&G, "class_error"), "class_error %.1f", scalar(&G, "class_error"));
    static const char *idx[] = {"indices", "indices_0"};
    for (int k = 0; k < 2; k++) {
        const st_tensor *a = st_find(&R, idx[k]), *b = st_find(&G, idx[k]);
        int same = a && b && a->numel == b->numel;
        if (same) {
            int64_t *x = malloc(a->numel * 8), *y = malloc(b->numel * 8);
            st_read_i64(&R, idx[k], x, -1, NULL);
            st_read_i64(&G, idx[k], y, -1, NULL);
            same = !memcmp(x, y, a->numel * 8);
            free(x); free(y);
        }
        t_ok(same, "%s: the matched (image, query, target) triples equal scipy's", idx[k]);
    }
    close_tensor(&R, &G, "pred_logits", 1e-5);
    close_tensor(&R, &G, "pred_boxes", 1e-5);
    close_tensor(&R, &G, "aux_outputs.0.pred_logits", 1e-5);
    close_tensor(&R, &G, "aux_outputs.0.pred_boxes", 1e-5);
    /* gradients: every reference one, within 1e-4 of the tensor's largest entry */
    int n_grad = 0, n_dump = 0;
    for (size_t i = 0; i < R.n_tensors; i++) {
        const char *n = R.tensors[i].name;
        if (strncmp(n, "grad.", 5)) continue;
        const st_tensor *t = st_find(&R, n);
        double *a = malloc(t->numel * sizeof *a), *b = malloc(t->numel * sizeof *b);
        st_read_f64(&R, n, a, -1, NULL);
        int ok = st_read_f64(&G, n, b, t->ndim, t->shape) == 0;
        double mx = 1e-30;
        for (size_t k = 0; k < t->numel; k++) mx = fmax(mx, fabs(a[k]));
        char what[256];
        snprintf(what, sizeof what, "step %s vs PyTorch (tolerance 1e-4 of its largest entry %.3g)", n, mx);
        if (ok) t_close_d(what, a, b, t->numel, 1e-4 * mx, 0);
        else t_ok(0, "%s: %s", n, cd_errbuf());
        free(a); free(b);
        n_grad++;
    }
    for (size_t i = 0; i < G.n_tensors; i++) n_dump += !strncmp(G.tensors[i].name, "grad.", 5);
    t_ok(n_grad == 9 && n_dump > 60 && !st_find(&G, "grad.backbone.0.body.conv1.weight") &&
         !st_find(&G, "grad.backbone.0.body.layer1.0.conv1.weight") && st_find(&G, "grad.class_embed.weight"),
         "the dump holds grad.<name> of the %d trainable parameters only (conv1, layer1 frozen)", n_dump);
    int64_t lab[4] = {0};
    t_ok(st_read_i64(&G, "targets.0.labels", lab, -1, NULL) == 0 && lab[0] == 1 && lab[1] == 3 &&
         st_find(&G, "targets.0.labels")->numel == 2, "image a's targets: labels 1, 3 (crowd dropped)");
    const char *mode = st_meta(&G, "mode");
    t_ok(mode && strstr(mode, "dropout off") && strstr(mode, "frozen"), "metadata says the mode: %s", mode ? mode : "");
    st_close(&R);
    st_close(&G);

    /* bad input */
    snprintf(args, sizeof args, "step '%s' --weights '%s/tests/fixtures/nn/tiny_detr.safetensors' --image '%s' "
             "--targets '%s' --dump '%s'", fx("step_tiny.ini"), root, fx("step_ref.safetensors"),
             fx("step_coco.json"), dump);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "step_ref.safetensors") && strstr(err_text, "file_name"),
         "step with an image not in the COCO file: exit %d, \"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "step '%s' --weights '%s' --image '%s' --targets '%s' --dump '%s'", fx("step_tiny.ini"),
             fx("r50_dc5_hf.safetensors"), fx("step_a.png"), fx("step_coco.json"), dump);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "r50_dc5_hf.safetensors") && strstr(err_text, "another"),
         "step with weights of another config: exit %d, \"%.*s\"", rc, 160, err_text);
    rc = run("step");
    t_ok(rc == 2 && strstr(err_text, "usage"), "step without arguments: exit %d and the usage", rc);
}

/* A tiny model's checkpoint, as the training loop writes it (sets: --set overrides, may be NULL). */
static int make_ckpt_sets(const char *path, uint64_t seed, detr_model *m, uint64_t step, const char **sets,
                          size_t n_sets) {
    static config cfg;
    if (config_load(&cfg, fx("step_tiny.ini"), sets, n_sets) < 0) return -1;
    detr_opts o;
    if (setup_detr_opts(&o, &cfg, 0) < 0 || detr_build(m, &o, dev, seed) < 0) return -1;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_write(&cfg, f);
    fclose(f);
    ckpt_meta meta = {0};
    meta.config_hash = config_hash(&cfg);
    meta.step = step;
    meta.epoch = 2;
    meta.config_text = text;
    int rc = ckpt_save(path, &meta, &m->params, NULL, dev);
    free(text);
    return rc;
}
static int make_ckpt(const char *path, uint64_t seed, detr_model *m, uint64_t step) {
    return make_ckpt_sets(path, seed, m, step, NULL, 0);
}

static int json_num(const cJSON *j, const char *key, double want) {
    const cJSON *v = cJSON_GetObjectItem(j, key);
    if (cJSON_IsNumber(v) && v->valuedouble == want) return 1;
    t_diag("config.json: %s is not %g", key, want);
    return 0;
}
static int json_str(const cJSON *j, const char *key, const char *want) {
    const cJSON *v = cJSON_GetObjectItem(j, key);
    if (cJSON_IsString(v) && !strcmp(v->valuestring, want)) return 1;
    t_diag("config.json: %s is not \"%s\"", key, want);
    return 0;
}
static int json_bool(const cJSON *j, const char *key, int want) {
    const cJSON *v = cJSON_GetObjectItem(j, key);
    if (cJSON_IsBool(v) && !!cJSON_IsTrue(v) == !!want) return 1;
    t_diag("config.json: %s is not %s", key, want ? "true" : "false");
    return 0;
}

/* export --format hf: a width-64 ResNet-18 under the tiny transformer (HF's DETR builds timm's
 * ResNets at width 64), with class names from a COCO file of categories 1 and 3. */
static void test_export_hf(void) {
    const char *cats = tp("cats.json");
    FILE *f = fopen(cats, "w");
    fputs("{\"images\": [{\"id\": 1, \"file_name\": \"a.png\"}], \"annotations\": [], \"categories\": "
          "[{\"id\": 3, \"name\": \"dog\"}, {\"id\": 1, \"name\": \"cat \\\"tabby\\\"\"}]}", f);
    fclose(f);
    char root_set[600];
    snprintf(root_set, sizeof root_set, "data.root=%s", dir);
    const char *sets[] = {"model.width=64", root_set, "data.val_ann=cats.json", "matcher.set_cost_bbox=2.5"};
    detr_model a, c;
    const char *ck = tp("r18.ckpt");
    if (make_ckpt_sets(ck, 5, &a, 30, sets, 4) < 0) { t_ok(0, "checkpoint: %s", cd_errbuf()); return; }
    const char *hfdir = tp("hf");
    mkdir(hfdir, 0755);
    const char *out = tp("hf/model.safetensors"), *cj = tp("hf/config.json");
    char args[4096];
    snprintf(args, sizeof args, "export '%s' --format hf -o '%s'", ck, out);
    int rc = run(args);
    detr_opts o = a.o;
    if (detr_build(&c, &o, dev, 99) < 0) { t_ok(0, "%s", cd_errbuf()); return; }
    weights_report r = {0};
    int lrc = rc == 0 ? weights_load(&c, dev, out, NULL, &r) : -1;
    t_ok(rc == 0 && lrc == 0 && r.naming == WEIGHTS_NAMING_HF &&
         !memcmp(a.params.host, c.params.host, a.params.total * sizeof(float)) && strstr(out_text, "HF transformers"),
         "export --format hf, then a strict weights_load (HF names detected): identical parameters and buffers "
         "(exit %d) %s%s", rc, err_text, lrc ? cd_errbuf() : "");
    st_file sf;
    if (rc == 0 && st_open(&sf, out) == 0) {
        t_ok(st_find(&sf, "model.encoder.layers.1.self_attn.k_proj.bias") && !st_find(&sf, "backbone.0.body.conv1.weight") &&
             st_meta(&sf, "format") && !strcmp(st_meta(&sf, "format"), "pt") && st_meta(&sf, "config"),
             "the file holds HF names (k_proj), format = pt and the config in __metadata__");
        st_close(&sf);
    }
    cJSON *j = cd_json_parse_file(cj);
    int ok = j != NULL;
    if (ok) {
        ok = json_str(j, "model_type", "detr") & json_bool(j, "use_timm_backbone", 1) &
             json_str(j, "backbone", "resnet18") & json_bool(j, "use_pretrained_backbone", 0) &
             json_bool(j, "dilation", 0) & json_str(j, "position_embedding_type", "sine") &
             json_num(j, "d_model", 32) & json_num(j, "encoder_layers", 2) & json_num(j, "decoder_layers", 2) &
             json_num(j, "encoder_attention_heads", 4) & json_num(j, "decoder_attention_heads", 4) &
             json_num(j, "encoder_ffn_dim", 64) & json_num(j, "decoder_ffn_dim", 64) &
             json_num(j, "num_queries", 5) & json_bool(j, "auxiliary_loss", 1) & json_num(j, "dropout", 0) &
             json_num(j, "class_cost", 1) & json_num(j, "giou_cost", 2) & !cJSON_GetObjectItem(j, "bbox_cost");
        cJSON *id2 = cJSON_GetObjectItem(j, "id2label");
        ok = ok && cJSON_GetArraySize(id2) == 5 && json_str(id2, "0", "N/A") && json_str(id2, "1", "cat \"tabby\"") &&
             json_str(id2, "2", "N/A") && json_str(id2, "3", "dog") && json_str(id2, "4", "N/A");
        cJSON_Delete(j);
    }
    t_ok(ok && strstr(out_text, "config.json") && strstr(out_text, "set_cost_bbox = 2.5"),
         "config.json beside model.safetensors: DetrConfig of the model (timm resnet18, d_model 32, 2+2 layers, "
         "4 heads, ffn 64, 5 queries), id2label from the categories (N/A for unused ids), a whole-number cost "
         "only: %s", out_text);
    /* -o FOLDER; -o another file name */
    const char *folder = tp("hf2");
    mkdir(folder, 0755);
    snprintf(args, sizeof args, "export '%s' --format=hf --dtype bf16 -o '%s'", ck, folder);
    rc = run(args);
    t_ok(rc == 0 && access(tp("hf2/model.safetensors"), F_OK) == 0 && access(tp("hf2/config.json"), F_OK) == 0,
         "export --format=hf -o FOLDER writes FOLDER/model.safetensors and FOLDER/config.json (exit %d) %s", rc,
         err_text);
    const char *other = tp("detr_hf.safetensors");
    snprintf(args, sizeof args, "export '%s' --format hf -o '%s'", ck, other);
    rc = run(args);
    t_ok(rc == 0 && access(tp("detr_hf.config.json"), F_OK) == 0 && strstr(out_text, "rename"),
         "-o NAME.safetensors writes NAME.config.json and says how from_pretrained wants them (exit %d) %s", rc,
         out_text);
    /* a weights file as the source: HF names -> official -> HF again, the model from the "config" metadata */
    const char *back = tp("back.safetensors"), *again = tp("hf2/model.safetensors");
    snprintf(args, sizeof args, "export '%s' -o '%s'", out, back);
    rc = run(args);
    lrc = rc == 0 ? weights_load(&c, dev, back, NULL, &r) : -1;
    t_ok(rc == 0 && lrc == 0 && r.naming == WEIGHTS_NAMING_OFFICIAL &&
         !memcmp(a.params.host, c.params.host, a.params.total * sizeof(float)) && strstr(out_text, "from") &&
         strstr(out_text, "HF transformers names"),
         "export of the HF file (a safetensors source, config from its metadata) under official names: identical "
         "(exit %d) %s%s", rc, err_text, lrc ? cd_errbuf() : "");
    /* import of a file cldetr exported: the model from the config it carries, not the default DETR-R50 */
    const char *imported = tp("imported.safetensors");
    snprintf(args, sizeof args, "import '%s' -o '%s'", back, imported);
    rc = run(args);
    lrc = rc == 0 ? weights_load(&c, dev, imported, NULL, &r) : -1;
    t_ok(rc == 0 && lrc == 0 && strstr(out_text, "the model of the config stored in the file") &&
             !memcmp(a.params.host, c.params.host, a.params.total * sizeof(float)),
         "import of an exported file takes the model from its stored config (exit %d) %.300s", rc, err_text);
    snprintf(args, sizeof args, "export '%s' --format hf -o '%s'", back, again);
    rc = run(args);
    st_file s1, s2;
    int same = rc == 0 && st_open(&s1, out) == 0;
    if (same && st_open(&s2, again) == 0) {
        same = s1.n_tensors == s2.n_tensors;
        for (size_t i = 0; same && i < s1.n_tensors; i++) {
            const st_tensor *t = &s1.tensors[i], *u = st_find(&s2, t->name);
            same = u && u->numel == t->numel && u->dtype == t->dtype &&
                   !memcmp(st_data(&s1, t), st_data(&s2, u), t->numel * st_dtype_size(t->dtype));
        }
        st_close(&s2);
        st_close(&s1);
    } else same = 0;
    t_ok(same, "... and that official file exported with --format hf again: the same tensors, byte for byte (exit %d) "
         "%s", rc, err_text);
    snprintf(args, sizeof args, "export '%s/tests/fixtures/nn/tiny_detr.safetensors' -o '%s'", root, back);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "tiny_detr.safetensors") && strstr(err_text, "--config CFG"),
         "export of a safetensors file without a cldetr config in its metadata: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "export '%s/tests/fixtures/nn/tiny_detr.safetensors' --config '%s' -o '%s'", root,
             fx("step_tiny.ini"), back);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "not used by the model"),
         "... with --config: every tensor checked (the fixture's extra tensors are an error): exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "export '%s' --config '%s' -o '%s'", ck, fx("step_tiny.ini"), back);
    rc = run(args);
    t_ok(rc == 2 && strstr(err_text, "checkpoint"), "export CKPT --config is a usage error: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    detr_free(&c, dev);
    detr_free(&a, dev);

    /* what HF's DETR cannot hold */
    const char *pre_sets[] = {"model.width=64", "model.pre_norm=true"};
    const char *pre = tp("pre.ckpt"), *pre_out = tp("pre_hf.safetensors");
    if (make_ckpt_sets(pre, 6, &a, 1, pre_sets, 2) < 0) { t_ok(0, "checkpoint: %s", cd_errbuf()); return; }
    detr_free(&a, dev);
    snprintf(args, sizeof args, "export '%s' --format hf -o '%s'", pre, pre_out);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "'transformer.encoder.norm.weight'") && strstr(err_text, "--format official") &&
         access(pre_out, F_OK) != 0 && access(tp("pre_hf.config.json"), F_OK) != 0,
         "export --format hf of a pre-norm model: exit %d, the tensor named, nothing written: \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    const char *tiny = tp("tiny.ckpt");
    if (make_ckpt(tiny, 7, &a, 1) < 0) { t_ok(0, "checkpoint: %s", cd_errbuf()); return; }
    detr_free(&a, dev);
    snprintf(args, sizeof args, "export '%s' --format hf -o '%s'", tiny, pre_out);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "model.width = 8") && strstr(err_text, "--format official") &&
         access(pre_out, F_OK) != 0, "export --format hf of a width-8 ResNet: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "export '%s' --format onnx -o '%s'", tiny, pre_out);
    rc = run(args);
    t_ok(rc == 2 && strstr(err_text, "--format") && strstr(err_text, "onnx") && access(pre_out, F_OK) != 0,
         "export --format onnx is a usage error: exit %d, \"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "export '%s' --format -o '%s'", tiny, pre_out);
    rc = run(args);
    t_ok(rc == 2 && strstr(err_text, "--format"), "export --format without a value is a usage error: exit %d, "
         "\"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);
}

static void test_export(void) {
    detr_model a, b, c;
    const char *run_dir = tp("run");
    mkdir(run_dir, 0755);
    const char *best = tp("run/best.ckpt"), *last = tp("run/last.ckpt");
    if (make_ckpt(best, 3, &a, 40) < 0 || make_ckpt(last, 4, &b, 50) < 0) { t_ok(0, "checkpoints: %s", cd_errbuf()); return; }
    const char *out = tp("export.safetensors");
    char args[4096];
    snprintf(args, sizeof args, "export '%s' -o '%s'", best, out);
    int rc = run(args);
    detr_opts o = a.o;
    if (detr_build(&c, &o, dev, 99) < 0) { t_ok(0, "%s", cd_errbuf()); return; }
    int lrc = rc == 0 ? weights_load(&c, dev, out, NULL, NULL) : -1;
    t_ok(rc == 0 && lrc == 0 && !memcmp(a.params.host, c.params.host, a.params.total * sizeof(float)),
         "export CKPT then a strict weights_load gives identical parameters and buffers (exit %d) %s", rc,
         lrc ? cd_errbuf() : "");
    st_file f;
    if (st_open(&f, out) == 0) {
        const char *cfgtext = st_meta(&f, "config");
        t_ok(cfgtext && strstr(cfgtext, "hidden_dim = 32") && st_meta(&f, "step") && !strcmp(st_meta(&f, "step"), "40") &&
             f.n_tensors == (size_t)a.params.n, "the file holds the %d tensors, the config and the step in __metadata__",
             a.params.n);
        st_close(&f);
    }
    detr_free(&c, dev);
    snprintf(args, sizeof args, "export '%s' -o '%s'", run_dir, out);
    rc = run(args);
    if (detr_build(&c, &o, dev, 99) < 0) { t_ok(0, "%s", cd_errbuf()); return; }
    lrc = rc == 0 ? weights_load(&c, dev, out, NULL, NULL) : -1;
    t_ok(rc == 0 && lrc == 0 && !memcmp(a.params.host, c.params.host, a.params.total * sizeof(float)) &&
         strstr(out_text, "best.ckpt"), "export RUN takes best.ckpt: %s", out_text);
    snprintf(args, sizeof args, "export '%s' --last -o '%s'", run_dir, out);
    rc = run(args);
    lrc = rc == 0 ? weights_load(&c, dev, out, NULL, NULL) : -1;
    t_ok(rc == 0 && lrc == 0 && !memcmp(b.params.host, c.params.host, b.params.total * sizeof(float)),
         "export RUN --last takes last.ckpt");
    detr_free(&c, dev);
    /* bad input */
    snprintf(args, sizeof args, "export '%s' -o '%s'", fx("step_coco.json"), out);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "step_coco.json"), "export of a file that is no checkpoint: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "export '%s' -o '%s'", dir, out);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "no checkpoint"), "export of a folder without checkpoints: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    detr_free(&a, dev);
    detr_free(&b, dev);
}

/* The HF -> official path of import is weights_load (tests/nn/test_weights.c, on an HF file
 * made by PyTorch); here the verb itself: official names in, checked, F32 out. */
static void test_import(void) {
    const char *out = tp("import.safetensors");
    char args[4096], ref[1400];
    snprintf(ref, sizeof ref, "%s/tests/fixtures/nn/tiny_detr.safetensors", root);
    snprintf(args, sizeof args, "import '%s' --config '%s' -o '%s'", ref, fx("step_tiny.ini"), out);
    int rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "not used by the model") && strstr(err_text, "tiny_detr.safetensors"),
         "import of a file with extra tensors: exit %d, \"%.*s\"", rc, 160, err_text);
    snprintf(args, sizeof args, "import '%s' --config '%s' --allow-unexpected --dtype bf16 -o '%s'", ref,
             fx("step_tiny.ini"), out);
    rc = run(args);
    st_file a, b;
    int same = rc == 0 && st_open(&a, out) == 0;
    if (same && st_open(&b, ref) == 0) {
        for (size_t i = 0; i < a.n_tensors && same; i++) {
            const st_tensor *t = &a.tensors[i];
            float *x = malloc(t->numel * 4), *y = malloc(t->numel * 4);
            same = t->dtype == ST_BF16 && st_read_f32(&a, t->name, x, -1, NULL) == 0 &&
                   st_read_f32(&b, t->name, y, t->ndim, t->shape) == 0;
            for (size_t k = 0; same && k < t->numel; k++) same = x[k] == st_bf16_to_f32(st_f32_to_bf16(y[k]));
            free(x); free(y);
        }
        same = same && a.n_tensors == 173 && st_meta(&a, "config");
        st_close(&a);
        st_close(&b);
    } else same = 0;
    t_ok(same, "import --allow-unexpected --dtype bf16: the 173 weights, BF16-rounded, and the config (exit %d) %s",
         rc, err_text);
    snprintf(args, sizeof args, "import '%s' -o '%s'", fx("r50_dc5_hf.safetensors"), out);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "r50_dc5_hf.safetensors") && strstr(err_text, "another shape"),
         "import of an HF file into the default DETR-R50: exit %d, \"%.*s\"", rc, 200, err_text);
}

int main(void) {
    const char *b = getenv("CLDETR_BIN"), *r = getenv("CLDETR_SOURCE_ROOT");
    if (!b || !r) { printf("1..0 # SKIP CLDETR_BIN / CLDETR_SOURCE_ROOT not set\n"); return 0; }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(root, sizeof root, "%s", r);
    snprintf(dir, sizeof dir, "/tmp/cldetr-test-weights-cli-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "open device");
    if (!dev) return t_done();
    test_step();
    test_export();
    test_export_hf();
    test_import();
    cd_close(dev);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) t_diag("could not remove %s", dir);
    return t_done();
}
