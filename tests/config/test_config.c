/* Config system: defaults, the shipped configs, --set, the round trip through
 * the effective-config writer, the hash, the help, and every class of bad
 * input with its exact message (key, what was expected, file:line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/common.h"
#include "cldetr/config.h"

static char tmpdir[256];
static int n_files;

/* Write `text` to a fresh file in tmpdir; returns its path (static storage per call). */
static const char *write_ini(const char *text) {
    static char paths[64][300];
    char *p = paths[n_files++ % 64];
    snprintf(p, 300, "%s/c%d.ini", tmpdir, n_files);
    FILE *f = fopen(p, "w");
    if (!f) { perror(p); exit(2); }
    fputs(text, f);
    fclose(f);
    return p;
}

static const char *source_path(const char *rel) {
    static char buf[2][1024];
    static int i;
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    char *b = buf[i++ % 2];
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : ".", rel);
    return b;
}

/* Load `text` (NULL: no file) with sets; check it fails with exactly `want`
 * (every %s in `want` is replaced by the file's path). */
static void expect_error(const char *what, const char *text, const char *const *sets, size_t n_sets,
                         const char *want) {
    config cfg;
    const char *path = text ? write_ini(text) : "";
    char expected[4096];
    size_t o = 0;
    for (const char *p = want; *p && o + strlen(path) + 1 < sizeof expected; p++) {
        if (p[0] == '%' && p[1] == 's') o += (size_t)sprintf(expected + o, "%s", path), p++;
        else expected[o++] = *p;
    }
    expected[o] = '\0';
    if (!text) path = NULL;
    int rc = config_load(&cfg, path, sets, n_sets);
    int ok = rc == -1 && !strcmp(cd_errbuf(), expected);
    if (!ok) t_diag("rc %d\n#   got:  %s\n#   want: %s", rc, rc ? cd_errbuf() : "(success)", expected);
    t_ok(ok, "%s", what);
}

static int same_config(const config *a, const config *b) {
    return !memcmp(a, b, sizeof *a) && config_hash(a) == config_hash(b);
}

static char *written(const config *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_write(cfg, f);
    fclose(f);
    return buf;
}

/* Write cfg, load the text back, compare struct, hash and text. */
static void round_trip(const char *what, const config *cfg) {
    char *text = written(cfg);
    const char *path = write_ini(text);
    config back;
    int rc = config_load(&back, path, NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    char *text2 = rc ? NULL : written(&back);
    int ok = !rc && same_config(cfg, &back) && !strcmp(text, text2);
    t_ok(ok, "round trip: %s loads back to the same struct, hash and text", what);
    free(text);
    free(text2);
}

static void test_defaults(void) {
    config cfg;
    config_defaults(&cfg);   /* cd_fatal on a bad table default */
    t_ok(cfg.train.lr == 1e-4 && cfg.train.lr_backbone == 1e-5 && cfg.train.weight_decay == 1e-4,
         "defaults: official AdamW learning rates and weight decay");
    t_ok(cfg.model.hidden_dim == 256 && cfg.model.nheads == 8 && cfg.model.enc_layers == 6 &&
         cfg.model.dec_layers == 6 && cfg.model.dim_feedforward == 2048 && cfg.model.num_queries == 100 &&
         cfg.model.dropout == 0.1 && !cfg.model.pre_norm && cfg.model.aux_loss,
         "defaults: official transformer");
    t_ok(cfg.train.batch_size == 2 && cfg.train.epochs == 300 && cfg.train.lr_drop == 200 &&
         cfg.train.clip_max_norm == 0.1 && cfg.train.seed == 42, "defaults: official schedule");
    t_ok(cfg.loss.bbox_loss_coef == 5 && cfg.loss.giou_loss_coef == 2 && cfg.loss.eos_coef == 0.1 &&
         cfg.matcher.set_cost_class == 1 && cfg.matcher.set_cost_bbox == 5 && cfg.matcher.set_cost_giou == 2,
         "defaults: official loss and matcher weights");
    t_ok(cfg.augment.scales.n == 11 && cfg.augment.scales.v[0] == 480 && cfg.augment.scales.v[10] == 800 &&
         cfg.augment.select_scales.n == 3 && cfg.augment.max_size == 1333 && cfg.augment.mean.n == 3 &&
         cfg.augment.std.v[2] == 0.225,
         "defaults: official augmentation lists");
    t_ok(!strcmp(cfg.model.backbone, "resnet50") && !strcmp(cfg.model.backbone_bn, "frozen") &&
         !strcmp(cfg.train.schedule, "step") && !strcmp(cfg.data.root, "datasets/coco") && !cfg.model.init[0],
         "defaults: enums and strings");
    t_ok(config_validate(&cfg) == 0, "defaults: pass the cross-key checks");
    config a, b;
    t_ok(config_load(&a, NULL, NULL, 0) == 0 && (config_defaults(&b), same_config(&a, &b)),
         "config_load with no file and no --set gives the defaults");
    round_trip("defaults", &cfg);
}

static void test_shipped(void) {
    config cfg;
    int rc = config_load(&cfg, source_path("configs/shapes.ini"), NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(rc == 0, "configs/shapes.ini loads");
    t_ok(!rc && !strcmp(cfg.model.backbone, "resnet18") && cfg.model.width == 32 && cfg.model.hidden_dim == 128 &&
             cfg.model.enc_layers == 2 && cfg.model.dec_layers == 2 && cfg.model.nheads == 4 &&
             cfg.model.dim_feedforward == 512 && cfg.model.num_queries == 10 && cfg.train.batch_size == 8 &&
             !strcmp(cfg.model.backbone_bn, "trainable") && cfg.data.make_shapes && cfg.augment.val_size == 128 &&
             !strcmp(cfg.data.root, "datasets/shapes"),
         "configs/shapes.ini: the default small run (10 queries: the recipe found for 15 minutes)");
    if (!rc) round_trip("configs/shapes.ini", &cfg);

    rc = config_load(&cfg, source_path("configs/detr_r50.ini"), NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(rc == 0, "configs/detr_r50.ini loads");
    config def;
    config_defaults(&def);
    /* The paper's recipe is the defaults except the COCO class count and the device type. */
    def.model.num_classes = 91;
    strcpy(def.device.type, "gpu");
    t_ok(!rc && same_config(&cfg, &def), "configs/detr_r50.ini: the official recipe (= defaults, 91 classes)");
}

static void test_sets(void) {
    const char *path = write_ini("[train]\nlr = 3e-4\nbatch_size = 4\n[model]\nbackbone = resnet34\n");
    const char *sets[] = {"train.lr=5e-5", "model.hidden_dim = 64", "train.lr=7e-5", "augment.scales=100, 200,300",
                          "data.root=/tmp/some dir/x", "model.backbone=ResNet18", "model.pre_norm=YES",
                          "augment.mean=0.1,0.2,0.30000000000000004", "loss.eos_coef=0.3333333333333333"};
    config cfg;
    int rc = config_load(&cfg, path, sets, CD_ARRAY_LEN(sets));
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(rc == 0, "--set overrides load");
    t_ok(cfg.train.lr == 7e-5, "--set wins over the file, the last --set wins over earlier ones (lr %g)", cfg.train.lr);
    t_ok(cfg.train.batch_size == 4 && cfg.model.hidden_dim == 64, "file values and spaced --set both apply");
    t_ok(cfg.augment.scales.n == 3 && cfg.augment.scales.v[1] == 200, "--set of an int list");
    t_ok(!strcmp(cfg.data.root, "/tmp/some dir/x"), "--set of a string with a space");
    t_ok(!strcmp(cfg.model.backbone, "resnet18"), "enum words are matched without case and stored as listed");
    t_ok(cfg.model.pre_norm, "bool accepts YES");
    round_trip("file + --set with lists, spaces and awkward doubles", &cfg);

    config a = cfg, b = cfg;
    b.train.lr *= 1.0000001;
    t_ok(config_hash(&a) == config_hash(&cfg) && config_hash(&b) != config_hash(&a),
         "hash: equal configs equal, lr changed in the 7th digit differs");
    b = a;
    b.log.every = 123;
    strcpy(b.device.type, "cpu");
    t_ok(config_hash(&b) == config_hash(&a), "hash: [log] and [device] do not change it");
    b = a;
    b.augment.scales.v[2] = 301;
    t_ok(config_hash(&b) != config_hash(&a), "hash: a list item changes it");
}

static void test_syntax(void) {
    /* Indented keys stay keys (inih would glue them to the previous value as a
     * continuation line); '#' after a space and ';' start comments. */
    const char *path = write_ini("\xEF\xBB\xBF# comment\n; comment\n[train]\r\nlr = 2e-4   # inline\r\n"
                                 "   batch_size = 6 ; inline\nepochs: 7\n\n  [ model ]\n\tnheads = 2\ninit = a#b\n");
    config cfg;
    int rc = config_load(&cfg, path, NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(!rc && cfg.train.lr == 2e-4 && cfg.train.batch_size == 6 && cfg.train.epochs == 7 && cfg.model.nheads == 2 &&
             !strcmp(cfg.model.init, "a#b"),
         "BOM, CRLF, comments, indentation, 'key: value', spaced section header, '#' inside a value");

    /* A line longer than inih's 200-byte buffer. */
    char big[600], longpath[240];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    snprintf(big, sizeof big, "[model]\ninit = /%s   ; comment\nnheads = 4\n", longpath);
    rc = config_load(&cfg, write_ini(big), NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(!rc && strlen(cfg.model.init) == sizeof longpath && cfg.model.init[0] == '/' && cfg.model.nheads == 4,
         "a 250-character line loads whole (inih's buffer is 200)");
    if (!rc) round_trip("a 240-character string", &cfg);
    snprintf(big, sizeof big, "[model]\ninit = /short ; %s\n", longpath);
    rc = config_load(&cfg, write_ini(big), NULL, 0);
    if (rc) t_diag("%s", cd_errbuf());
    t_ok(!rc && !strcmp(cfg.model.init, "/short"), "a long line whose comment starts within inih's buffer");
}

/* A file that does not load, and exactly what config_load says (every %s: the file's path). */
static const struct { const char *what, *text, *want; } bad_files[] = {
    {"wrong type: names key, expectation, value, file:line", "[train]\n\nlr = abc\n",
     "train.lr: expected a number > 0, got 'abc' (%s:3)"},
    {"out of range (exclusive bound)", "[train]\nlr = 0\n",
     "train.lr: expected a number > 0, got '0' (%s:2)"},
    {"out of range (interval)", "[model]\nnheads = 0\n",
     "model.nheads: expected an integer in [1, 256], got '0' (%s:2)"},
    {"an int given a fraction", "[train]\nbatch_size = 2.5\n",
     "train.batch_size: expected an integer in [1, 4096], got '2.5' (%s:2)"},
    {"an empty number", "[train]\nepochs =\n",
     "train.epochs: expected an integer in [1, 100000], got '' (%s:2)"},
    {"query groups off is 1, not 0", "[train]\nquery_groups = 0\n",
     "train.query_groups: expected an integer in [1, 64], got '0' (%s:2)"},
    {"denoising label noise is a probability", "[train]\ndn_label_noise = 1.5\n",
     "train.dn_label_noise: expected a number in [0, 1], got '1.5' (%s:2)"},
    {"half-open interval", "[model]\ndropout = 1\n",
     "model.dropout: expected a number in [0, 1), got '1' (%s:2)"},
    {"bool", "[model]\npre_norm = maybe\n",
     "model.pre_norm: expected true or false (or yes/no, on/off, 1/0), got 'maybe' (%s:2)"},
    {"enum lists the words", "[model]\nbackbone = resnet51\n",
     "model.backbone: expected one of resnet18, resnet34, resnet50, resnet101, got 'resnet51' (%s:2)"},
    {"list with an empty item", "[augment]\nscales = 480,,512\n",
     "augment.scales: expected a comma-separated list of 1 to 32 integers, each in [1, 100000], "
     "got '480,,512' (%s:2)"},
    {"list item out of range", "[augment]\nstd = 0.2,0,0.2\n",
     "augment.std: expected a comma-separated list of 1 to 32 numbers, each in (0, 10], "
     "got '0.2,0,0.2' (%s:2)"},
    {"non-empty string", "[data]\nroot =\n",
     "data.root: expected non-empty text of at most 255 characters, without line breaks or "
     "';'/'#' after a space, got '' (%s:2)"},
    {"unknown key with the closest one", "[train]\nlr = 1e-4\nlr_backbon = 1e-5\n",
     "train.lr_backbon: unknown key, did you mean train.lr_backbone? (%s:3)"},
    {"a key in the wrong section", "[model]\nweight_decay = 0\n",
     "model.weight_decay: unknown key, did you mean train.weight_decay? (%s:2)"},
    {"an unknown key far from all", "[train]\nzzzzzzzzzzzz = 1\n",
     "train.zzzzzzzzzzzz: unknown key (cldetr train --help-config lists every key) (%s:2)"},
    {"unknown section with the closest one, on its own line", "[train]\nlr = 1e-4\n\n[modle]\nx = 1\n",
     "[modle]: unknown section, did you mean [model]? (%s:4)"},
    {"unknown section far from all", "[qqqqqqqqqq]\n",
     "[qqqqqqqqqq]: unknown section; sections are [model] [data] [augment] [loss] [matcher] [train] "
     "[eval] [device] [log] (%s:1)"},
    {"malformed line", "[train]\nlr 1e-4\n",
     "malformed line 'lr 1e-4': expected 'key = value', '[section]' or a comment (%s:2)"},
    {"malformed section header", "[train\nlr = 1\n",
     "malformed section header '[train': expected '[name]' (%s:1)"},
    {"key before any section", "lr = 1e-4\n[train]\n",
     "lr: key outside any section: put it under its [section] header (did you mean [train] lr?) (%s:1)"},
    {"key before any section, nothing close", "zzzzzzzzzzzz = 1\n[train]\n",
     "zzzzzzzzzzzz: key outside any section: put it under its [section] header (%s:1)"},
    {"a line with no key before '='", "[train]\n= 5\n",
     "malformed line '= 5': expected 'key = value', '[section]' or a comment (%s:2)"},
    {"keys of an unknown section are not reported again", "[modle]\nhidden_dim = 3\nzz = 1\n",
     "[modle]: unknown section, did you mean [model]? (%s:1)"},
    {"a key set twice", "[train]\nlr = 1e-4\n[model]\n[train]\nlr = 2e-4\n",
     "train.lr: set twice, first at line 2 (%s:5)"},
    {"every problem of a file at once", "[train]\nlr = x\nepochs = y\n[evall]\n",
     "train.lr: expected a number > 0, got 'x' (%s:2)\n"
     "train.epochs: expected an integer in [1, 100000], got 'y' (%s:3)\n"
     "[evall]: unknown section, did you mean [eval]? (%s:4)"},
    {"a ';' comment before the '='", "[train]\nlr ; = 5\n",
     "malformed line 'lr ; = 5': expected 'key = value', '[section]' or a comment (%s:2)"},
    {"a ';' comment before the ']'", "[train ; x]\n",
     "malformed section header '[train ; x]': expected '[name]' (%s:1)"},
    {"every malformed line of a file at once", "[train]\nlr 1\n[model\nepochs 2\n[data]\nroot\n",
     "malformed line 'lr 1': expected 'key = value', '[section]' or a comment (%s:2)\n"
     "malformed section header '[model': expected '[name]' (%s:3)\n"
     "malformed line 'epochs 2': expected 'key = value', '[section]' or a comment (%s:4)\n"
     "malformed line 'root': expected 'key = value', '[section]' or a comment (%s:6)"},
    /* cross-key checks name where the value came from */
    {"crop_min above crop_max", "[augment]\ncrop_max = 100\n",
     "augment.crop_min: 384 is above augment.crop_max = 100 (%s:2)"},
    {"mean needs 3 values", "[augment]\nmean = 0.5\n",
     "augment.mean: expected 3 values (R,G,B), got 1 (%s:2)"},
    {"std needs 3 values", "[augment]\nstd = 0.5,0.5\n",
     "augment.std: expected 3 values (R,G,B), got 2 (%s:2)"},
    {"learned positions need an even width", "[model]\nposition_embedding = learned\nhidden_dim = 5\nnheads = 1\n",
     "model.hidden_dim: learned positions need an even number, got 5 (%s:3)"},
    {"shapes_min_objects above shapes_max_objects", "[data]\nshapes_min_objects = 5\nshapes_max_objects = 2\n",
     "data.shapes_min_objects: 5 is above data.shapes_max_objects = 2 (%s:2)"},
    {"all matcher costs 0", "[matcher]\nset_cost_class = 0\nset_cost_bbox = 0\nset_cost_giou = 0\n",
     "matcher: set_cost_class, set_cost_bbox and set_cost_giou are all 0; at least one must be > 0 (%s:2)"},
    {"run name '..'", "[train]\nname = ..\n",
     "train.name: expected a folder name without '/', got '..' (%s:2)"},
    {"run name without '/'", "[train]\nname = a/b\n",
     "train.name: expected a folder name without '/', got 'a/b' (%s:2)"},
};

/* One --set that does not apply, and exactly what config_load says. */
static const struct { const char *what, *set, *want; } bad_sets[] = {
    {"--set without '='", "train.lr",
     "--set train.lr: expected section.key=value, e.g. --set train.lr=2e-4"},
    {"--set without a section", "lr=2e-4",
     "--set lr=2e-4: expected section.key=value, e.g. --set train.lr=2e-4; did you mean train.lr?"},
    {"--set with an unknown section", "trian.lr=2e-4",
     "[trian]: unknown section, did you mean [train]? (--set trian.lr=2e-4)"},
    {"--set with an unknown key", "train.lrr=2e-4",
     "train.lrr: unknown key, did you mean train.lr? (--set train.lrr=2e-4)"},
    {"--set of a string that cannot be written back", "data.root=a ;b",
     "data.root: expected non-empty text of at most 255 characters, without line breaks or "
     "';'/'#' after a space, got 'a ;b' (--set data.root=a ;b)"},
    {"--set without a section, nothing close", "zzzzzzzzzzzz=1",
     "--set zzzzzzzzzzzz=1: expected section.key=value, e.g. --set train.lr=2e-4"},
};

static void test_errors(void) {
    for (size_t i = 0; i < CD_ARRAY_LEN(bad_files); i++)
        expect_error(bad_files[i].what, bad_files[i].text, NULL, 0, bad_files[i].want);
    for (size_t i = 0; i < CD_ARRAY_LEN(bad_sets); i++)
        expect_error(bad_sets[i].what, NULL, &bad_sets[i].set, 1, bad_sets[i].want);

    {
        config cfg;
        const char *missing = "/nonexistent/cldetr/x.ini";
        int rc = config_load(&cfg, missing, NULL, 0);
        t_ok(rc == -1 && strstr(cd_errbuf(), "cannot open /nonexistent/cldetr/x.ini") != NULL,
             "missing file named (%s)", cd_errbuf());
    }

    const char *bad_value[] = {"train.lr=2e-4", "train.lr=abc"};
    expect_error("--set with a bad value", NULL, bad_value, 2, "train.lr: expected a number > 0, got 'abc' (--set train.lr=abc)");
    char long_set[200];
    snprintf(long_set, sizeof long_set, "%090d.lr=1", 0);
    const char *long_sets[] = {long_set};
    char want_long[300];
    snprintf(want_long, sizeof want_long, "--set %s: expected section.key=value", long_set);
    expect_error("--set with a section name too long to be one", NULL, long_sets, 1, want_long);
    const char *many[14];
    for (int i = 0; i < 14; i++) many[i] = "zzzzzzzzzzzz";
    char want_many[2048] = "";
    for (int i = 0; i < 12; i++)
        strcat(want_many, "--set zzzzzzzzzzzz: expected section.key=value, e.g. --set train.lr=2e-4\n");
    strcat(want_many, "... and 2 more");
    expect_error("at most a dozen problems, then how many more", NULL, many, 14, want_many);
    const char *nheads[] = {"model.nheads=3"};
    expect_error("nheads must divide hidden_dim", "[model]\nhidden_dim = 128\n", nheads, 1,
                 "model.nheads: 3 does not divide model.hidden_dim = 128 (--set model.nheads=3)");

    config cfg;
    config_defaults(&cfg);
    cfg.model.hidden_dim = 102;
    cfg.model.nheads = 8;
    int rc = config_validate(&cfg);
    t_ok(rc == -1 && !strcmp(cd_errbuf(), "model.nheads: 8 does not divide model.hidden_dim = 102 (as set by the caller)\n"
                                          "model.hidden_dim: sine positions need a multiple of 4, got 102 (as set by the caller)"),
         "config_validate on a struct filled in code (%s)", rc ? cd_errbuf() : "passed");
}

static void test_help(void) {
    char *help = NULL, *text;
    size_t len = 0;
    FILE *f = open_memstream(&help, &len);
    int rc = config_print_help(f);
    fclose(f);
    config cfg;
    config_defaults(&cfg);
    text = written(&cfg);
    /* Every key line of the written config ("name = value" under [section]) is in the help. */
    int keys = 0, missing = 0;
    char section[64] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64];
        if (sscanf(line, "[%63[^]]]", section) == 1) continue;
        if (line[0] == '#' || sscanf(line, "%63s =", name) != 1) continue;
        char full[160];
        snprintf(full, sizeof full, "  %s.%s ", section, name);
        keys++;
        if (!strstr(help, full)) { if (missing++ < 5) t_diag("help lacks %s", full); }
    }
    t_ok(rc == 0 && keys >= 70 && missing == 0, "help lists all %d keys of the written config", keys);
    t_ok(strstr(help, "train.lr") && strstr(help, "1e-4") && strstr(help, "AdamW learning rate"),
         "help shows a key's default and help text");
    free(help);
    free(text);
}

int main(void) {
    (void)t_close_f; (void)t_seed; (void)t_uniform;   /* check.h helpers this test does not need */
    if (!t_tmpdir(tmpdir, sizeof tmpdir, "cldetr_test_config")) { perror("mkdtemp"); return 2; }
    test_defaults();
    test_shipped();
    test_sets();
    test_syntax();
    test_errors();
    test_help();
    t_rmtree(tmpdir);
    return t_done();
}
