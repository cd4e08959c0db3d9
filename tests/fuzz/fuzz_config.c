/* Fuzz the config loader (src/config.c over inih): INI files through
 * config_load on a temporary file, from the configs the project ships and the
 * tests' tiny.ini; and `--set section.key=value` overrides, one per line of
 * the input. A config that loads must pass config_validate, and its effective
 * config (config_write) must load back to the same hash. */
#include "../check.h"
#include "fuzz.h"

#include "cldetr/config.h"

/* The loaded config's own checks: valid, and written out it loads back the same. */
static int check_loaded(const config *cfg) {
    if (config_validate(cfg) != 0) {
        t_diag("loaded, but config_validate refuses it: %s", cd_errbuf());
        return 1;
    }
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f || config_write(cfg, f) != 0) {
        if (f) fclose(f);
        free(text);
        t_diag("config_write failed");
        return 1;
    }
    fclose(f);
    config back;
    int rc = config_load_text(&back, text, "the effective config", NULL, 0);
    int same = rc == 0 && config_hash(&back) == config_hash(cfg);
    if (!same) t_diag("the effective config %s", rc ? cd_errbuf() : "loads back with another hash");
    free(text);
    return same ? 0 : 1;
}

static int target_file(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    if (fz_write_file(fz_file, data, len) != 0) return cd_seterr("cannot write %s", fz_file);
    config cfg;
    if (config_load(&cfg, fz_file, NULL, 0) != 0) return -1;
    return check_loaded(&cfg);
}

/* Each line of the input one --set (at most 8). */
static int target_sets(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    char *text = cd_xmalloc(len + 1);
    memcpy(text, data, len);
    text[len] = 0;
    const char *sets[8];
    size_t n = 0;
    for (char *p = text; p && n < CD_ARRAY_LEN(sets);) {
        sets[n++] = p;
        p = strchr(p, '\n');
        if (p) *p++ = 0;
    }
    config cfg;
    int rc = config_load(&cfg, NULL, sets, n);
    free(text);
    return rc != 0 ? -1 : check_loaded(&cfg);
}

int main(void) {
    if (fz_tmp_init(".ini") != 0) {
        printf("1..0 # SKIP cannot create a temporary folder\n");
        return 0;
    }
    static const char *const files[] = {"tests/fixtures/tiny.ini", "configs/shapes.ini", "configs/detr_r50.ini"};
    fz_buf seeds[CD_ARRAY_LEN(files)];
    size_t n = 0;
    for (size_t i = 0; i < CD_ARRAY_LEN(files); i++)
        if (fz_seed_file(&seeds[n], fz_source(files[i])) == 0) n++;
    static const char *const dict[] = {"[", "]", "=", ":", ";", "#", "\n", "\r\n", " ", "\t", ",", "-", "+", ".",
                                       "e", "1e309", "nan", "inf", "0x10", "-1", "2147483648", "true", "false",
                                       "[model]", "[train]", "[augment]", "[data]", "lr", "scales", "backbone",
                                       "resnet50", "\"", "\\", "\xC3\xA9"};
    fz_spec spec = {"INI file", seeds, n, dict, CD_ARRAY_LEN(dict), NULL, target_file, NULL, 400};
    t_ok(n == CD_ARRAY_LEN(files), "INI: %zu seed files read", n);
    fz_run(&spec);
    for (size_t i = 0; i < n; i++) free(seeds[i].b);

    static const char *const set_text[] = {
        "train.lr=1e-4\nmodel.hidden_dim=64",
        "augment.scales=480,512,544,576\naugment.max_size=1333",
        "model.backbone=resnet50\nmodel.dilation=true\nlog.chart=false",
        "data.root=datasets/coco\ntrain.out_dir=runs/x\ntrain.clip_max_norm=0.1",
        "loss.eos_coef=0.1\nmodel.num_queries=100\ntrain.epochs=300"};
    fz_buf sets[CD_ARRAY_LEN(set_text)];
    for (size_t i = 0; i < CD_ARRAY_LEN(set_text); i++) {
        memset(&sets[i], 0, sizeof sets[i]);
        fz_set(&sets[i], set_text[i], strlen(set_text[i]));
    }
    fz_spec spec2 = {"INI --set", sets, CD_ARRAY_LEN(sets), dict, CD_ARRAY_LEN(dict), NULL, target_sets, NULL, 400};
    fz_run(&spec2);
    for (size_t i = 0; i < CD_ARRAY_LEN(sets); i++) free(sets[i].b);
    fz_tmp_done();
    return t_done();
}
