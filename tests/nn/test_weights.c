/* Weights by name (src/nn/weights.c): official files, HF transformers files
 * (made by tools/reference/make_weights_fixtures.py, names checked against a real
 * transformers model by tools/reference/check_hf_naming.py), F32/F16/BF16,
 * save -> load round trips under both namings (the HF names written are the
 * PyTorch-made fixtures' names, byte for byte), DETR-R50 with 91 classes under
 * both namings, every kind of bad file, models HF cannot hold, and
 * weights_init_model (fine-tuning). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/coco.h"
#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cldetr/weights.h"
#include "../check.h"
#include "../fixtures.h"

static cd_device *dev;
static char root[1024], tmp[256];

/* Paths (strdup'd: tests keep many at once; freed at exit). */
static const char *fix(const char *area, const char *name) {
    char p[1400];
    snprintf(p, sizeof p, "%s/tests/fixtures/%s/%s", root, area, name);
    return t_keep(cd_xstrdup(p));
}
static const char *tpath(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return t_keep(cd_xstrdup(p));
}

/* Model options from a tests/fixtures/nn file's metadata (as test_detr_parity.c). */
static void opts_from_fixture(detr_opts *o, const char *file) {
    st_file f;
    if (st_open(&f, fix("nn", file)) < 0) cd_fatal("%s", cd_errbuf());
#define M(k) atoi(st_meta(&f, k) ? st_meta(&f, k) : "0")
    detr_opts_default(o);
    o->depth = atoi(st_meta(&f, "backbone") + 6);
    o->width = M("base_width");
    o->dilation = M("dilation");
    o->learned_pos = !strcmp(st_meta(&f, "position_embedding"), "learned");
    o->d = M("hidden_dim");
    o->nheads = M("nheads");
    o->enc_layers = M("enc_layers");
    o->dec_layers = M("dec_layers");
    o->dim_ff = M("dim_feedforward");
    o->dropout = 0;
    o->pre_norm = M("pre_norm");
    o->num_queries = M("num_queries");
    o->num_classes = M("num_classes");
#undef M
    st_close(&f);
}

static void build(detr_model *m, const detr_opts *o, uint64_t seed) {
    if (detr_build(m, o, dev, seed) < 0) cd_fatal("build: %s", cd_errbuf());
}

static int same_host(const detr_model *a, const detr_model *b) {
    return a->params.total == b->params.total &&
           !memcmp(a->params.host, b->params.host, a->params.total * sizeof(float));
}

/* Device copy equals host copy (weights_load uploads). */
static int device_matches_host(detr_model *m) {
    float *d = malloc(m->params.total * sizeof *d);
    cd_read(dev, d, m->params.data, m->params.total);
    int ok = !memcmp(d, m->params.host, m->params.total * sizeof *d);
    free(d);
    return ok;
}

/* Copy a safetensors file, renaming (sub from -> to, first occurrence) and
 * dropping tensors (drop: exact name), or changing one tensor's first dim. */
static void rewrite(const char *in, const char *out, const char *from, const char *to, const char *drop,
                    const char *reshape, int64_t dim0, const char *add_name) {
    st_file f;
    if (st_open(&f, in) < 0) cd_fatal("%s", cd_errbuf());
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        if (drop && !strcmp(t->name, drop)) continue;
        char name[256];
        const char *p = from ? strstr(t->name, from) : NULL;
        if (p) snprintf(name, sizeof name, "%.*s%s%s", (int)(p - t->name), t->name, to, p + strlen(from));
        else snprintf(name, sizeof name, "%s", t->name);
        if (reshape && !strcmp(t->name, reshape)) {
            int64_t s[ST_MAX_DIMS];
            memcpy(s, t->shape, sizeof s);
            size_t row = t->numel / (size_t)t->shape[0];
            s[0] = dim0;
            float *z = calloc((size_t)dim0 * row, sizeof *z);
            st_writer_add(w, name, ST_F32, t->ndim, s, z);
            free(z);
            continue;
        }
        st_writer_add(w, name, t->dtype, t->ndim, t->shape, st_data(&f, t));
    }
    if (add_name) {
        int64_t s[1] = {3};
        float z[3] = {0};
        st_writer_add(w, add_name, ST_F32, 1, s, z);
    }
    if (st_writer_write(w, out) < 0) cd_fatal("%s", cd_errbuf());
    st_writer_free(w);
    st_close(&f);
}

/* weights_load must fail, with every needle in the message, and leave m as it was. */
static void load_fails(detr_model *m, const char *path, const weights_opts *o, const char *what, const char *n1,
                       const char *n2) {
    float *before = malloc(m->params.total * sizeof *before);
    memcpy(before, m->params.host, m->params.total * sizeof *before);
    int rc = weights_load(m, dev, path, o, NULL);
    const char *e = cd_errbuf();
    int unchanged = !memcmp(before, m->params.host, m->params.total * sizeof *before);
    t_ok(rc < 0 && strstr(e, path) && (!n1 || strstr(e, n1)) && (!n2 || strstr(e, n2)) && unchanged,
         "%s: error naming the file%s%s%s%s, model unchanged: \"%.300s\"", what, n1 ? " and " : "", n1 ? n1 : "",
         n2 ? ", " : "", n2 ? n2 : "", e);
    free(before);
}

static void test_official_and_roundtrip(void) {
    detr_opts o;
    opts_from_fixture(&o, "tiny_detr.safetensors");
    detr_model a, b;
    build(&a, &o, 1);
    const char *fx = fix("nn", "tiny_detr.safetensors");
    load_fails(&a, fx, NULL, "strict load of a file with reference tensors", "not used by the model", "'grad.");
    weights_opts lo = {0};
    lo.allow_unexpected = 1;
    weights_report r;
    int rc = weights_load(&a, dev, fx, &lo, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_OFFICIAL && r.loaded == a.params.n && r.missing == 0 && r.unexpected > 0,
         "official file with extra tensors loads when allowed: %d of %d tensors, %d ignored (%s)", r.loaded,
         a.params.n, r.unexpected, rc ? cd_errbuf() : "");
    st_file f;
    st_open(&f, fx);
    int bad = 0;
    for (int i = 0; i < a.params.n; i++) {
        const nn_param *p = &a.params.p[i];
        float *x = malloc(p->n * sizeof *x);
        st_read_f32(&f, p->name, x, -1, NULL);
        bad += memcmp(x, nn_param_host(&a.params, i), p->n * sizeof *x) != 0;
        free(x);
    }
    st_close(&f);
    t_ok(bad == 0 && device_matches_host(&a), "every tensor equals the file's, on the host and the device (%d differ)",
         bad);

    /* save -> load into a model of another seed: identical */
    const char *saved = tpath("tiny.safetensors");
    const char *kv[] = {"producer", "test", NULL};
    weights_save_opts so = {0};
    so.meta = kv;
    rc = weights_save(&a, dev, saved, &so);
    build(&b, &o, 7);
    t_ok(rc == 0 && !same_host(&a, &b), "saved; a model of another seed differs before loading");
    rc = weights_load(&b, dev, saved, NULL, &r);
    t_ok(rc == 0 && same_host(&a, &b) && device_matches_host(&b) && r.unexpected == 0,
         "save then strict load gives identical parameters and buffers (%s)", rc ? cd_errbuf() : "ok");
    st_open(&f, saved);
    t_ok(f.n_tensors == (size_t)a.params.n && st_meta(&f, "producer") && !strcmp(st_meta(&f, "producer"), "test") &&
         st_find(&f, "backbone.0.body.layer1.0.bn1.running_var") && !st_find(&f, "backbone.0.body.bn1.num_batches_tracked"),
         "the file holds exactly the model's %d tensors (frozen BN: no counters) and the metadata", a.params.n);
    st_close(&f);

    /* F16 and BF16 */
    st_dtype dts[2] = {ST_F16, ST_BF16};
    for (int k = 0; k < 2; k++) {
        so.dtype = dts[k];
        const char *p16 = tpath("tiny16.safetensors");
        rc = weights_save(&a, dev, p16, &so);
        rc |= weights_load(&b, dev, p16, NULL, NULL);
        int diff = 0;
        for (size_t i = 0; i < a.params.total; i++) {
            float x = a.params.host[i];
            float want = k == 0 ? st_f16_to_f32(st_f32_to_f16(x)) : st_bf16_to_f32(st_f32_to_bf16(x));
            diff += memcmp(&want, &b.params.host[i], sizeof want) != 0;
        }
        t_ok(rc == 0 && diff == 0, "%s save -> load gives the rounded values exactly (%d differ)", st_dtype_name(dts[k]),
             diff);
    }

    /* bad files */
    char *buf;
    size_t len;
    buf = cd_read_file(saved, &len);
    const char *trunc = tpath("truncated.safetensors");
    FILE *t = fopen(trunc, "wb");
    fwrite(buf, 1, len / 2, t);
    fclose(t);
    load_fails(&b, trunc, NULL, "truncated file", NULL, NULL);
    const char *garbage = tpath("garbage.safetensors");
    t = fopen(garbage, "wb");
    unsigned char hdr[8] = {12, 0, 0, 0, 0, 0, 0, 0};
    fwrite(hdr, 1, 8, t);
    fwrite("{not json!!}", 1, 12, t);
    fclose(t);
    load_fails(&b, garbage, NULL, "malformed header", NULL, NULL);
    free(buf);
    const char *miss = tpath("missing.safetensors");
    rewrite(saved, miss, NULL, NULL, "transformer.decoder.layers.1.linear1.bias", NULL, 0, NULL);
    load_fails(&b, miss, NULL, "a missing tensor", "'transformer.decoder.layers.1.linear1.bias'", "missing");
    const char *shp = tpath("shape.safetensors");
    rewrite(saved, shp, NULL, NULL, NULL, "query_embed.weight", 6, NULL);
    load_fails(&b, shp, NULL, "a wrong shape", "'query_embed.weight' is [6, 32]", "model.num_queries");
    const char *mixed = tpath("mixed.safetensors");
    rewrite(saved, mixed, NULL, NULL, NULL, NULL, 0, "class_labels_classifier.bias");
    load_fails(&b, mixed, NULL, "official and HF names mixed", "mixes", NULL);
    const char *extra = tpath("extra.safetensors");
    rewrite(saved, extra, NULL, NULL, NULL, NULL, 0, "transformer.decoder.layers.9.norm1.bias");
    load_fails(&b, extra, NULL, "an unexpected tensor", "'transformer.decoder.layers.9.norm1.bias'", "not used");
    lo.allow_unexpected = 1;
    t_ok(weights_load(&b, dev, extra, &lo, &r) == 0 && r.unexpected == 1, "... which allow_unexpected ignores");
    /* checkpoints of other configs */
    detr_opts o2 = o;
    o2.dec_layers = 1;
    detr_model c;
    build(&c, &o2, 1);
    load_fails(&c, saved, NULL, "a file with more decoder layers", "'transformer.decoder.layers.1.", "another config");
    detr_free(&c, dev);
    o2.dec_layers = 3;
    build(&c, &o2, 1);
    load_fails(&c, saved, NULL, "a file with fewer decoder layers", "'transformer.decoder.layers.2.", "missing");
    detr_free(&c, dev);
    o2 = o;
    o2.d = 16;
    o2.dim_ff = 24;
    build(&c, &o2, 1);
    load_fails(&c, saved, NULL, "a file of another hidden size", "another shape", "model.hidden_dim");
    detr_free(&c, dev);
    load_fails(&b, fix("weights", "r50_dc5_hf.safetensors"), NULL, "an HF file of another config", "another shape",
               NULL);

    /* ---- weights_init_model: fine-tuning */
    o2 = o;
    o2.num_classes = 3;
    build(&c, &o2, 11);
    int ci = nn_param_find(&c.params, "class_embed.weight"), bi = nn_param_find(&c.params, "class_embed.bias");
    float *cls = malloc((c.params.p[ci].n + c.params.p[bi].n) * sizeof *cls);
    memcpy(cls, nn_param_host(&c.params, ci), c.params.p[ci].n * sizeof *cls);
    memcpy(cls + c.params.p[ci].n, nn_param_host(&c.params, bi), c.params.p[bi].n * sizeof *cls);
    char *logtext = NULL;
    size_t loglen = 0;
    FILE *log = open_memstream(&logtext, &loglen);
    rc = weights_init_model(&c, dev, saved, log);
    fclose(log);
    int kept = !memcmp(cls, nn_param_host(&c.params, ci), c.params.p[ci].n * sizeof *cls) &&
               !memcmp(cls + c.params.p[ci].n, nn_param_host(&c.params, bi), c.params.p[bi].n * sizeof *cls);
    int qi = nn_param_find(&c.params, "query_embed.weight"), qa = nn_param_find(&a.params, "query_embed.weight");
    int loaded = !memcmp(nn_param_host(&c.params, qi), nn_param_host(&a.params, qa), a.params.p[qa].n * sizeof(float));
    t_ok(rc == 0 && kept && loaded && strstr(logtext, "class head for 5 classes, the model 3") &&
         strstr(logtext, "re-initialized"),
         "init with another num_classes: class_embed keeps its init, the rest loads, the log says so: \"%s\"",
         logtext);
    free(logtext);
    free(cls);
    detr_free(&c, dev);
    /* backbone only: a ResNet classifier file (torchvision/timm names + fc) */
    st_open(&f, saved);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < f.n_tensors; i++)
        if (!strncmp(f.tensors[i].name, "backbone.0.body.", 16))
            st_writer_add(w, f.tensors[i].name + 16, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape,
                          st_data(&f, &f.tensors[i]));
    int64_t fcs[2] = {10, 64};
    float *fcw = calloc(640, sizeof *fcw);
    st_writer_add(w, "fc.weight", ST_F32, 2, fcs, fcw);
    st_writer_add(w, "fc.bias", ST_F32, 1, fcs, fcw);
    free(fcw);
    const char *rn = tpath("resnet.safetensors");
    st_writer_write(w, rn);
    st_writer_free(w);
    st_close(&f);
    build(&c, &o, 13);
    detr_model fresh;
    build(&fresh, &o, 13);
    log = open_memstream(&logtext, &loglen);
    rc = weights_init_model(&c, dev, rn, log);
    fclose(log);
    int bb_ok = 1, rest_ok = 1;
    for (int i = 0; i < c.params.n; i++) {
        const nn_param *p = &c.params.p[i];
        const float *want = !strncmp(p->name, "backbone.0.body.", 16) ? nn_param_host(&a.params, i)
                                                                      : nn_param_host(&fresh.params, i);
        int same = !memcmp(want, nn_param_host(&c.params, i), p->n * sizeof(float));
        if (!strncmp(p->name, "backbone.0.body.", 16)) bb_ok &= same; else rest_ok &= same;
    }
    t_ok(rc == 0 && bb_ok && rest_ok && strstr(logtext, "backbone only") && strstr(logtext, "ResNet"),
         "init from a ResNet file: backbone loaded, transformer and heads keep their init: \"%s\" %s", logtext,
         rc ? cd_errbuf() : "");
    free(logtext);
    load_fails(&c, rn, NULL, "a ResNet file in a strict load", "missing", "'transformer.");
    detr_free(&fresh, dev);
    detr_free(&c, dev);
    /* a whole model with class_embed deleted (DETR's recipe for a new dataset): the head keeps its init */
    st_open(&f, saved);
    w = st_writer_new();
    for (size_t i = 0; i < f.n_tensors; i++)
        if (strncmp(f.tensors[i].name, "class_embed.", 12))
            st_writer_add(w, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim, f.tensors[i].shape,
                          st_data(&f, &f.tensors[i]));
    const char *headless = tpath("headless.safetensors");
    st_writer_write(w, headless);
    st_writer_free(w);
    st_close(&f);
    build(&c, &o, 17);
    build(&fresh, &o, 17);
    log = open_memstream(&logtext, &loglen);
    rc = weights_init_model(&c, dev, headless, log);
    fclose(log);
    int head_ok = 1, body_ok = 1;
    for (int i = 0; i < c.params.n; i++) {
        const nn_param *p = &c.params.p[i];
        int head = !strncmp(p->name, "class_embed.", 12);
        const float *want = head ? nn_param_host(&fresh.params, i) : nn_param_host(&a.params, i);
        int same = !memcmp(want, nn_param_host(&c.params, i), p->n * sizeof(float));
        if (head) head_ok &= same; else body_ok &= same;
    }
    t_ok(rc == 0 && head_ok && body_ok && strstr(logtext, "has no class head: class_embed is re-initialized"),
         "init from a file without class_embed: everything else loads, the class head keeps its init: \"%s\" %s",
         logtext, rc ? cd_errbuf() : "");
    free(logtext);
    load_fails(&c, headless, NULL, "a file without class_embed in a strict load", "missing", "'class_embed.");
    detr_free(&fresh, dev);
    detr_free(&c, dev);
    o2 = o;
    o2.num_queries = 4;
    build(&c, &o2, 1);
    rc = weights_init_model(&c, dev, saved, NULL);
    t_ok(rc < 0 && !strncmp(cd_errbuf(), "model.init: ", 12) && strstr(cd_errbuf(), "'query_embed.weight'"),
         "init with another num_queries is an error naming the tensor: \"%.200s\"", cd_errbuf());
    detr_free(&c, dev);
    detr_free(&a, dev);
    detr_free(&b, dev);
}

/* The HF naming of weights_save on the DC5 / learned-position model loaded from the PyTorch-made
 * HF fixture hf: the same tensors (less the BatchNorm counters; the learned position embedding
 * under transformers 5's model.position_embedding.), the same BF16 bytes, and back. */
static void test_hf_save(detr_model *m, const char *hf) {
    const char *out = tpath("hf_saved.safetensors");
    weights_save_opts so = {0};
    so.dtype = ST_BF16;
    so.naming = WEIGHTS_NAMING_HF;
    int rc = weights_save(m, dev, out, &so);
    st_file F, G;
    if (rc < 0 || st_open(&G, out) < 0 || st_open(&F, hf) < 0) { t_ok(0, "HF save: %s", cd_errbuf()); return; }
    int n_ref = 0, bad = 0, pos = 0;
    for (size_t i = 0; i < F.n_tensors; i++) {
        const st_tensor *t = &F.tensors[i];
        if (strstr(t->name, "num_batches_tracked")) continue;
        n_ref++;
        char name[256];
        const char *legacy = "model.backbone.position_embedding.";
        if (!strncmp(t->name, legacy, strlen(legacy))) {
            snprintf(name, sizeof name, "model.position_embedding.%s", t->name + strlen(legacy));
            pos++;
        } else snprintf(name, sizeof name, "%s", t->name);
        const st_tensor *u = st_find(&G, name);
        int ok = u && u->dtype == ST_BF16 && t->dtype == ST_BF16 && u->ndim == t->ndim && u->numel == t->numel &&
                 !memcmp(u->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) &&
                 !memcmp(st_data(&G, u), st_data(&F, t), t->numel * 2);
        if (!ok && bad++ < 3) t_diag("%s: not in the saved file with the fixture's shape and bytes", name);
    }
    int counters = 0, in_proj = 0;
    for (size_t i = 0; i < G.n_tensors; i++) {
        counters += strstr(G.tensors[i].name, "num_batches_tracked") != NULL;
        in_proj += strstr(G.tensors[i].name, "in_proj") != NULL;
    }
    t_ok(bad == 0 && (size_t)n_ref == G.n_tensors && pos == 2 && counters == 0 && in_proj == 0,
         "HF save (BF16) of the model read from the HF fixture: its %d tensors with the same names, shapes and "
         "bytes (q/k/v rows split back in order, %d position embeddings as model.position_embedding.*), no "
         "counters, no in_proj (%d differ)", n_ref, pos, bad);
    t_ok(st_meta(&G, "format") && !strcmp(st_meta(&G, "format"), "pt"),
         "__metadata__ has format = pt (from_pretrained wants it) when the caller gave none");
    st_close(&F);
    st_close(&G);
    detr_model b;
    build(&b, &m->o, 3);
    weights_report r;
    rc = weights_load(&b, dev, out, NULL, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_HF && r.loaded == b.params.n && same_host(m, &b),
         "the HF file loads back strictly into a fresh model, detected as HF names: identical (%s)",
         rc ? cd_errbuf() : "ok");
    detr_free(&b, dev);
}

/* The HF naming on the tiny model: F32 round trip with trainable BatchNorm (no counters), and the
 * models HF's DETR cannot hold. */
static void test_hf_save_tiny(void) {
    detr_opts o;
    opts_from_fixture(&o, "tiny_detr.safetensors");
    o.bn_trainable = 1;
    detr_model a, b;
    build(&a, &o, 21);
    build(&b, &o, 22);
    const char *out = tpath("tiny_hf.safetensors");
    const char *kv[] = {"format", "pt", "producer", "test", NULL};
    weights_save_opts so = {0};
    so.naming = WEIGHTS_NAMING_HF;
    so.num_batches_tracked = 9;
    so.meta = kv;
    int rc = weights_save(&a, dev, out, &so);
    st_file f;
    int ok = rc == 0 && st_open(&f, out) == 0;
    int counters = 0, official = 0, qkv = 0;
    if (ok) {
        for (size_t i = 0; i < f.n_tensors; i++) {
            const char *n = f.tensors[i].name;
            counters += strstr(n, "num_batches_tracked") != NULL;
            official += !strncmp(n, "backbone.", 9) || !strncmp(n, "transformer.", 12) || strstr(n, "in_proj");
            qkv += strstr(n, "_proj.weight") && (strstr(n, ".q_proj.") || strstr(n, ".k_proj.") || strstr(n, ".v_proj."));
        }
        const st_tensor *q = st_find(&f, "model.decoder.layers.1.encoder_attn.v_proj.weight");
        ok = q && q->ndim == 2 && q->shape[0] == o.d && q->shape[1] == o.d && f.n_tensors == (size_t)a.params.n +
             4 * (size_t)(o.enc_layers + 2 * o.dec_layers) && st_find(&f, "model.decoder.layernorm.weight") &&
             st_find(&f, "class_labels_classifier.bias") && st_find(&f, "model.backbone.conv_encoder.model.bn1.running_var");
        /* v_proj rows are the last third of in_proj_weight */
        int ip = nn_param_find(&a.params, "transformer.decoder.layers.1.multihead_attn.in_proj_weight");
        float *v = malloc((size_t)o.d * o.d * sizeof *v);
        ok = ok && st_read_f32(&f, "model.decoder.layers.1.encoder_attn.v_proj.weight", v, -1, NULL) == 0 &&
             !memcmp(v, nn_param_host(&a.params, ip) + 2 * (size_t)o.d * o.d, (size_t)o.d * o.d * sizeof *v);
        free(v);
        st_close(&f);
    }
    t_ok(ok && counters == 0 && official == 0 && qkv == 3 * (o.enc_layers + 2 * o.dec_layers),
         "HF save of a tiny model with trainable BatchNorm: HF names only, q/k/v split (v_proj = the last rows of "
         "in_proj_weight), no num_batches_tracked (%d counters, %d official names) %s", counters, official,
         rc ? cd_errbuf() : "");
    weights_report r;
    rc = weights_load(&b, dev, out, NULL, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_HF && r.unexpected == 0 && same_host(&a, &b) && device_matches_host(&b),
         "... which loads back into a fresh model: every parameter and buffer identical (%s)", rc ? cd_errbuf() : "ok");
    detr_free(&a, dev);
    detr_free(&b, dev);

    /* pre-norm: the encoder's final norm has no HF name; nothing is written */
    o.bn_trainable = 0;
    o.pre_norm = 1;
    build(&a, &o, 23);
    const char *pre = tpath("prenorm_hf.safetensors");
    rc = weights_save(&a, dev, pre, &so);
    const char *e = cd_errbuf();
    t_ok(rc < 0 && strstr(e, pre) && strstr(e, "'transformer.encoder.norm.weight'") && strstr(e, "pre-norm") &&
         strstr(e, "--format official") && access(pre, F_OK) != 0,
         "HF save of a pre-norm model is refused naming the tensor, no file written: \"%.300s\"", e);
    weights_save_opts off = so;
    off.naming = WEIGHTS_NAMING_OFFICIAL;
    rc = weights_save(&a, dev, pre, &off);
    t_ok(rc == 0 && weights_load(&a, dev, pre, NULL, NULL) == 0, "... the official names hold it (%s)",
         rc ? cd_errbuf() : "ok");
    detr_free(&a, dev);
    o.enc_layers = 0;   /* pre-norm without encoder: no encoder norm, but HF would compute post-norm */
    build(&a, &o, 24);
    rc = weights_save(&a, dev, pre, &so);
    e = cd_errbuf();
    t_ok(rc < 0 && strstr(e, "pre-norm") && strstr(e, "'transformer.decoder.layers.0.") && strstr(e, "post-norm"),
         "HF save of a pre-norm model without encoder layers is refused too: \"%.300s\"", e);
    so.naming = WEIGHTS_NAMING_RESNET;
    rc = weights_save(&a, dev, pre, &so);
    t_ok(rc < 0 && strstr(cd_errbuf(), "official DETR or HF"), "saving under ResNet names is an error: \"%s\"",
         cd_errbuf());
    detr_free(&a, dev);
}

static void test_hf(void) {
    detr_opts o;
    opts_from_fixture(&o, "tiny_detr_r50_dc5.safetensors");
    detr_model m;
    build(&m, &o, 1);
    const char *hf = fix("weights", "r50_dc5_hf.safetensors");
    weights_report r;
    int rc = weights_load(&m, dev, hf, NULL, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_HF && r.loaded == m.params.n && r.unexpected == 0,
         "HF transformers BF16 file (ResNet-50 DC5, learned pos) loads strictly: %d tensors (%s)", r.loaded,
         rc ? cd_errbuf() : "num_batches_tracked ignored");
    st_file f;
    st_open(&f, fix("nn", "tiny_detr_r50_dc5.safetensors"));
    int diff = 0;
    for (int i = 0; i < m.params.n; i++) {
        const nn_param *p = &m.params.p[i];
        float *x = malloc(p->n * sizeof *x);
        st_read_f32(&f, p->name, x, -1, NULL);
        for (size_t k = 0; k < p->n; k++) {
            float want = st_bf16_to_f32(st_f32_to_bf16(x[k]));
            diff += memcmp(&want, nn_param_host(&m.params, i) + k, sizeof want) != 0;
        }
        free(x);
    }
    st_close(&f);
    t_ok(diff == 0, "every value equals the official file's rounded to BF16 (q/k/v joined in order; %d differ)", diff);
    /* transformers 5 names: model.position_embedding.*, o_proj */
    detr_model m2;
    build(&m2, &o, 2);
    const char *v5 = tpath("hf_v5.safetensors"), *v5b = tpath("hf_v5b.safetensors");
    rewrite(hf, v5, "model.backbone.position_embedding.", "model.position_embedding.", NULL, NULL, 0, NULL);
    rewrite(v5, v5b, ".out_proj.", ".o_proj.", NULL, NULL, 0, NULL);
    rc = weights_load(&m2, dev, v5b, NULL, NULL);
    t_ok(rc == 0 && same_host(&m, &m2), "transformers 5 names load to the same values (%s)", rc ? cd_errbuf() : "ok");
    const char *nok = tpath("hf_nok.safetensors");
    rewrite(hf, nok, NULL, NULL, "model.encoder.layers.1.self_attn.k_proj.weight", NULL, 0, NULL);
    load_fails(&m2, nok, NULL, "HF file without a k_proj",
               "'transformer.encoder.layers.1.self_attn.in_proj_weight' (as 'model.encoder.layers.1.self_attn.k_proj.weight')",
               NULL);
    test_hf_save(&m, hf);
    detr_free(&m, dev);
    detr_free(&m2, dev);
}

/* configs/detr_r50.ini (91 classes): the registry is PyTorch's state_dict, and
 * files of both namings load with nothing missing or unexpected. */
static void test_r50(void) {
    static config cfg;
    char path[1400];
    snprintf(path, sizeof path, "%s/configs/detr_r50.ini", root);
    detr_opts o;
    if (config_load(&cfg, path, NULL, 0) < 0 || setup_detr_opts(&o, &cfg, 0) < 0) {
        t_ok(0, "%s", cd_errbuf());
        return;
    }
    detr_model m;
    double t0 = cd_now();
    build(&m, &o, 1);
    cJSON *j = cd_json_parse_file(fix("weights", "r50_names.json"));
    cJSON *off = cJSON_GetObjectItem(j, "official"), *hf = cJSON_GetObjectItem(j, "hf");
    int n_off = cJSON_GetArraySize(off), bad = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, off) {
        const char *name = cJSON_GetArrayItem(e, 0)->valuestring;
        cJSON *shape = cJSON_GetArrayItem(e, 1);
        int i = nn_param_find(&m.params, name);
        int ok = i >= 0 && cJSON_GetArraySize(shape) == m.params.p[i].ndim;
        for (int d = 0; ok && d < m.params.p[i].ndim; d++)
            ok = (size_t)cJSON_GetArrayItem(shape, d)->valuedouble == m.params.p[i].shape[d];
        if (!ok && bad++ < 3) t_diag("PyTorch's %s: not in the C model with that shape", name);
    }
    t_ok(n_off == m.params.n && bad == 0, "DETR-R50 (91 classes): the model's %d tensors are PyTorch's state_dict "
         "(%d names, %d differ)", m.params.n, n_off, bad);
    /* an HF-named file with the shapes of PyTorch's model (zeros, BF16) */
    st_writer *w = st_writer_new();
    size_t maxn = 1;
    cJSON_ArrayForEach(e, hf) {
        size_t n = 1;
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetArrayItem(e, 1)) n *= (size_t)d->valuedouble;
        if (n > maxn) maxn = n;
    }
    uint16_t *zeros = calloc(maxn, 8);
    cJSON_ArrayForEach(e, hf) {
        int64_t s[8];
        int nd = 0;
        cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetArrayItem(e, 1)) s[nd++] = (int64_t)d->valuedouble;
        const char *name = cJSON_GetArrayItem(e, 0)->valuestring;
        int counter = strstr(name, "num_batches_tracked") != NULL;
        st_writer_add_ref(w, name, counter ? ST_I64 : ST_BF16, nd, s, zeros);
    }
    const char *hfp = tpath("r50_hf.safetensors");
    int rc = st_writer_write(w, hfp);
    st_writer_free(w);
    free(zeros);
    weights_report r;
    rc |= weights_load(&m, dev, hfp, NULL, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_HF && r.loaded == m.params.n && r.missing == 0 && r.unexpected == 0,
         "HF-named DETR-R50 file (%d tensors) loads into configs/detr_r50.ini's model: %d loaded, 0 missing, "
         "0 unexpected (%s)", cJSON_GetArraySize(hf), r.loaded, rc ? cd_errbuf() : "ok");
    unlink(hfp);
    const char *offp = tpath("r50_official.safetensors");
    weights_save_opts so = {0};
    so.dtype = ST_BF16;
    rc = weights_save(&m, dev, offp, &so);
    rc |= weights_load(&m, dev, offp, NULL, &r);
    t_ok(rc == 0 && r.naming == WEIGHTS_NAMING_OFFICIAL && r.loaded == m.params.n && r.missing == 0 &&
         r.unexpected == 0, "official DETR-R50 file round trip: %d loaded, 0 missing, 0 unexpected (%s)", r.loaded,
         rc ? cd_errbuf() : "ok");
    unlink(offp);
    const char *hfo = tpath("r50_hf_saved.safetensors");
    so.naming = WEIGHTS_NAMING_HF;
    rc = weights_save(&m, dev, hfo, &so);
    st_file f;
    int n_want = 0, bad2 = 0;
    if (rc == 0 && st_open(&f, hfo) == 0) {
        cJSON_ArrayForEach(e, hf) {
            const char *name = cJSON_GetArrayItem(e, 0)->valuestring;
            if (strstr(name, "num_batches_tracked")) continue;
            n_want++;
            const st_tensor *t = st_find(&f, name);
            cJSON *shape = cJSON_GetArrayItem(e, 1);
            int ok = t && t->ndim == cJSON_GetArraySize(shape);
            for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
            if (!ok && bad2++ < 3) t_diag("PyTorch's HF name %s: not in the saved file with that shape", name);
        }
        t_ok(bad2 == 0 && f.n_tensors == (size_t)n_want, "DETR-R50 saved under HF names: the %zu tensors are "
             "PyTorch's HF names and shapes less the BatchNorm counters (%d differ)", f.n_tensors, bad2);
        st_close(&f);
    } else t_ok(0, "DETR-R50 HF save: %s", cd_errbuf());
    unlink(hfo);
    t_diag("DETR-R50 build + 3 files written, 2 loaded in %.1f s", cd_now() - t0);
    cJSON_Delete(j);
    detr_free(&m, dev);
}

int main(void) {
    const char *r = getenv("CLDETR_SOURCE_ROOT");
    snprintf(root, sizeof root, "%s", r ? r : ".");
    snprintf(tmp, sizeof tmp, "/tmp/cldetr-test-weights-XXXXXX");
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "open device");
    if (!dev) return t_done();
    test_official_and_roundtrip();
    test_hf();
    test_hf_save_tiny();
    test_r50();
    cd_close(dev);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) t_diag("could not remove %s", tmp);
    return t_done();
}
