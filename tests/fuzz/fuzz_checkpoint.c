/* Fuzz the checkpoint reader (src/nn/checkpoint.c): ckpt_read_meta,
 * ckpt_num_classes and, when an OpenCL device opens, ckpt_load into a small
 * registry (with and without the optimizer moments), from two files made
 * here byte by byte as include/cldetr/checkpoint.h lays the format out (one
 * with Adam's moments, one weights only). Half the cases get their checksum
 * recomputed after the mutation, so the table and size checks behind it see
 * them. A file ckpt_load takes must also pass ckpt_read_meta, and hold the
 * model's values where its table says. */
#include "../check.h"
#include "fuzz.h"

#include "cldetr/checkpoint.h"

enum { HEADER = 136, ENTRY = 168, NAME = 112, TOTAL = 29, TRAINABLE = 25 };
static const char config_text[] = "[model]\nhidden_dim = 4\nnum_queries = 5\n[train]\nlr = 1e-4\n";

typedef struct {
    cd_device *dev;
    nn_params ps;
    cd_mem m, v;
} model;

static void put(uint8_t *p, uint64_t x, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(x >> (8 * i));
}

/* The parameter table both the files and the registry hold. */
static const struct { const char *name; int trainable, buffer, ndim; uint64_t shape[4], off; } params[] = {
    {"class_embed.weight", 1, 0, 2, {5, 4, 1, 1}, 0},
    {"class_embed.bias", 1, 0, 1, {5, 1, 1, 1}, 20},
    {"backbone.0.body.bn1.running_mean", 0, 1, 1, {4, 1, 1, 1}, 25},
};

static float value(size_t i) { return (float)i * 0.25f - 3.0f; }

static void make_file(fz_buf *f, int with_moments) {
    uint64_t n_moments = with_moments ? TRAINABLE : 0;
    size_t text_len = sizeof config_text - 1;
    size_t len = HEADER + text_len + CD_ARRAY_LEN(params) * ENTRY + TOTAL * 4 + 8 + n_moments * 8 + 8;
    uint8_t *b = cd_xcalloc(len, 1);
    memcpy(b, CKPT_MAGIC, 8);
    put(b + 8, CKPT_VERSION, 4);
    put(b + 12, CD_ARRAY_LEN(params), 4);
    put(b + 16, 0x1234567890ABCDEFULL, 8);     /* config hash */
    put(b + 24, 1000, 8);                       /* step */
    put(b + 32, 3, 8);                          /* epoch */
    for (int i = 0; i < CKPT_RNG_WORDS; i++) put(b + 40 + 8 * i, cd_mix64((uint64_t)i), 8);
    put(b + 104, text_len, 8);
    put(b + 112, TOTAL, 8);
    put(b + 120, TRAINABLE, 8);
    put(b + 128, n_moments, 8);
    uint8_t *p = b + HEADER;
    memcpy(p, config_text, text_len);
    p += text_len;
    for (size_t i = 0; i < CD_ARRAY_LEN(params); i++, p += ENTRY) {
        memcpy(p, params[i].name, strlen(params[i].name));
        put(p + NAME, (uint64_t)params[i].ndim, 4);
        put(p + NAME + 4, (params[i].trainable ? 1u : 0u) | (params[i].buffer ? 2u : 0u) | 1u << 8, 4);
        uint64_t n = 1;
        for (int d = 0; d < 4; d++) {
            put(p + NAME + 8 + 8 * d, params[i].shape[d], 8);
            n *= params[i].shape[d];
        }
        put(p + NAME + 40, params[i].off, 8);
        put(p + NAME + 48, n, 8);
    }
    for (size_t i = 0; i < TOTAL; i++, p += 4) {
        float x = value(i);
        uint32_t u;
        memcpy(&u, &x, 4);
        put(p, u, 4);
    }
    put(p, 42, 8);                              /* Adam's step */
    p += 8;
    for (size_t i = 0; i < n_moments * 2; i++, p += 4) {
        float x = (float)i * 1e-3f;
        uint32_t u;
        memcpy(&u, &x, 4);
        put(p, u, 4);
    }
    put(p, cd_fnv1a(b, len - 8, CD_FNV_SEED), 8);
    memset(f, 0, sizeof *f);
    fz_set(f, b, len);
    free(b);
}

static fz_buf seeds[2];

/* Bytes changed in place (the length kept), mostly in the header and the
 * table: bits, bytes, and sizes, offsets and counts near the real ones. */
static void mutate_in_place(fz_buf *f, uint64_t *r) {
    static const uint64_t sizes[] = {0, 1, 2, 3, 4, 5, 19, 20, 21, 24, 25, 26, 28, 29, 30, 50, 112, 0xFFFFFFFF,
                                     0x100000000ULL, 0x7FFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL};
    size_t meta_end = HEADER + sizeof config_text - 1 + CD_ARRAY_LEN(params) * ENTRY;
    int k = 1 + (int)fz_below(r, 3);
    for (int i = 0; i < k && f->n > 8; i++) {
        size_t pos = (size_t)fz_below(r, fz_below(r, 4) ? CD_MIN(meta_end, f->n - 8) : f->n - 8);
        switch (fz_below(r, 3)) {
        case 0: f->b[pos] ^= (uint8_t)(1u << fz_below(r, 8)); break;
        case 1: f->b[pos] = (uint8_t)cd_rng_next(r); break;
        default: {
            pos &= ~(size_t)3;                  /* the fields are 4-byte aligned */
            int w = fz_below(r, 2) ? 8 : 4;
            if (pos + (size_t)w <= f->n - 8) put(f->b + pos, sizes[fz_below(r, CD_ARRAY_LEN(sizes))], w);
        }
        }
    }
}

/* Half the cases change bytes in place, half mutate freely (lengths too);
 * half of all get their checksum made right again. */
static void make(fz_buf *out, uint64_t *r, void *ctx) {
    (void)ctx;
    const fz_buf *seed = &seeds[fz_below(r, 2)];
    fz_set(out, seed->b, seed->n);
    if (cd_rng_next(r) & 1) mutate_in_place(out, r);
    else fz_mutate(out, r, NULL, 0);
    if ((cd_rng_next(r) & 1) && out->n >= 8) put(out->b + out->n - 8, cd_fnv1a(out->b, out->n - 8, CD_FNV_SEED), 8);
}

static int target(const uint8_t *data, size_t len, void *ctx) {
    model *md = ctx;
    if (fz_write_file(fz_file, data, len) != 0) return cd_seterr("cannot write %s", fz_file);
    ckpt_meta meta = {0};
    int rc_meta = ckpt_read_meta(fz_file, &meta);
    if (rc_meta != 0 && !cd_errbuf()[0]) {
        t_diag("ckpt_read_meta refused without a message");
        return 1;
    }
    if (rc_meta == 0 && (!meta.config_text || meta.n_trainable > meta.total)) {
        t_diag("ckpt_read_meta: config text %p, %llu trainable of %llu", (void *)meta.config_text,
               (unsigned long long)meta.n_trainable, (unsigned long long)meta.total);
        ckpt_meta_free(&meta);
        return 1;
    }
    ckpt_meta_free(&meta);
    cd_seterr("%s", "");
    if (ckpt_num_classes(fz_file) < 0 && !cd_errbuf()[0]) {
        t_diag("ckpt_num_classes failed without a message");
        return 1;
    }
    if (!md->dev) {
        if (rc_meta != 0) cd_seterr("%s", "ckpt_read_meta refused it (message checked above)");
        return rc_meta;
    }
    /* with the moments or without, by the input */
    int with_opt = (int)(cd_fnv1a(data, len, CD_FNV_SEED) & 1);
    uint64_t step = 0;
    ckpt_moments opt = {md->m, md->v, md->ps.n_trainable, &step};
    memset(md->ps.host, 0, md->ps.total * sizeof(float));
    cd_seterr("%s", "");
    int rc = ckpt_load(fz_file, &meta, &md->ps, with_opt ? &opt : NULL, md->dev);
    if (rc != 0) return -1;
    int bad = rc_meta != 0;
    if (bad) t_diag("ckpt_load took a file ckpt_read_meta refused");
    ckpt_meta_free(&meta);
    return bad;
}

int main(void) {
    if (fz_tmp_init(".ckpt") != 0) {
        printf("1..0 # SKIP cannot create a temporary folder\n");
        return 0;
    }
    make_file(&seeds[0], 1);
    make_file(&seeds[1], 0);
    model md = {0};
    md.dev = cd_open(NULL, 0);
    if (md.dev) {
        for (size_t i = 0; i < CD_ARRAY_LEN(params); i++)
            nn_param_add(&md.ps, params[i].name, NN_GROUP_REST, params[i].trainable, params[i].buffer,
                         params[i].ndim, params[i].shape[0], params[i].ndim > 1 ? params[i].shape[1] : 0, 0, 0);
        nn_params_finalize(&md.ps, md.dev);
        md.m = cd_alloc(md.dev, md.ps.n_trainable, "fuzz m");
        md.v = cd_alloc(md.dev, md.ps.n_trainable, "fuzz v");
        /* the seed loads, each value where the table puts it */
        fz_write_file(fz_file, seeds[0].b, seeds[0].n);
        ckpt_meta meta = {0};
        int rc = ckpt_load(fz_file, &meta, &md.ps, NULL, md.dev);
        int same = rc == 0 && meta.step == 1000 && meta.config_text && !strcmp(meta.config_text, config_text);
        for (int i = 0; same && i < md.ps.n; i++)
            for (size_t k = 0; k < md.ps.p[i].n; k++)
                same = same && nn_param_host(&md.ps, i)[k] == value(params[i].off + k);
        ckpt_meta_free(&meta);
        t_ok(same, "checkpoint: the seed made here loads into the registry, every value in place (%s)",
             rc ? cd_errbuf() : "ok");
    } else {
        t_diag("no OpenCL device (%s): ckpt_read_meta and ckpt_num_classes only", cd_errbuf());
    }
    fz_spec spec = {md.dev ? "checkpoint (ckpt_read_meta, ckpt_num_classes, ckpt_load)"
                           : "checkpoint (ckpt_read_meta, ckpt_num_classes)",
                    seeds, 2, NULL, 0, make, target, &md, 400};
    fz_run(&spec);
    if (md.dev) {
        cd_free(md.dev, md.m);
        cd_free(md.dev, md.v);
        nn_params_free(&md.ps, md.dev);
        cd_close(md.dev);
    }
    for (size_t i = 0; i < 2; i++) free(seeds[i].b);
    fz_tmp_done();
    return t_done();
}
