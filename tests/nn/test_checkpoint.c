/* Checkpoints: an exact round trip (parameters, buffers, moments, steps, RNG,
 * config text), damaged files (truncated, a flipped byte, wrong magic and
 * version), models of another config (name, shape, trainable flag), weights
 * without optimizer state, and crash safety: a stale partial temp file, and a
 * writer killed (SIGKILL) at random moments while it saves again and again. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cldetr/checkpoint.h"
#include "cldetr/train.h"
#include "../check.h"
#include "../fixtures.h"

/* The checkpoint view of an optimizer state. */
#define MOMENTS(opt) (&(ckpt_moments){(opt)->m, (opt)->v, (opt)->n, &(opt)->step})

static char dir[256];

/* dir/name, in one of 4 rotating buffers: copy it to keep it longer */
static const char *tpath(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static int copy_file(const char *from, const char *to, long keep /* bytes, -1 all */) {
    size_t len;
    char *data = cd_read_file(from, &len);
    if (!data) return -1;
    if (keep >= 0 && (size_t)keep < len) len = (size_t)keep;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f) fclose(f);
    free(data);
    return rc;
}

static void flip_byte(const char *path, long pos) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, pos, SEEK_SET);
    int c = fgetc(f);
    fseek(f, pos, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
}

/* A small DETR-like registry. variant 0: the reference; 1: the class head has
 * another shape; 2: one more decoder layer; 3: one decoder layer fewer; 4: the
 * backbone frozen (same shapes, other trainable flags); 5: registered in
 * another order (same names and shapes). big: a large tensor for the kill test. */
static void build_model(nn_params *ps, cd_device *dev, int variant, size_t big) {
    memset(ps, 0, sizeof *ps);
    int bb_train = variant != 4;
    if (variant == 5) nn_param_add(ps, "class_embed.bias", NN_GROUP_REST, 1, 0, 1, 4, 0, 0, 0);
    nn_param_add(ps, "backbone.0.body.conv1.weight", NN_GROUP_BACKBONE, 0, 0, 4, 4, 3, 3, 3);
    nn_param_add(ps, "backbone.0.body.bn1.running_mean", NN_GROUP_BACKBONE, 0, 1, 1, 4, 0, 0, 0);
    nn_param_add(ps, "backbone.0.body.layer2.0.conv1.weight", NN_GROUP_BACKBONE, bb_train, 0, 4, 6, 4, 3, 3);
    nn_param_add(ps, "input_proj.weight", NN_GROUP_REST, 1, 0, 4, 8, 6, 1, 1);
    int layers = variant == 2 ? 3 : variant == 3 ? 1 : 2;
    for (int l = 0; l < layers; l++) {
        char name[112];
        snprintf(name, sizeof name, "transformer.decoder.layers.%d.linear1.weight", l);
        nn_param_add(ps, name, NN_GROUP_REST, 1, 0, 2, 16, 8, 0, 0);
        snprintf(name, sizeof name, "transformer.decoder.layers.%d.linear1.bias", l);
        nn_param_add(ps, name, NN_GROUP_REST, 1, 0, 1, 16, 0, 0, 0);
    }
    nn_param_add(ps, "class_embed.weight", NN_GROUP_REST, 1, 0, 2, variant == 1 ? 5 : 4, 8, 0, 0);
    if (variant != 5) nn_param_add(ps, "class_embed.bias", NN_GROUP_REST, 1, 0, 1, 4, 0, 0, 0);
    if (big) nn_param_add(ps, "big.weight", NN_GROUP_REST, 1, 0, 1, big, 0, 0, 0);
    nn_params_finalize(ps, dev);
}

/* Parameters from the name and index (so a reordered registry gets the same
 * values per name), moments from two AdamW steps with random gradients. */
static void fill_model(nn_params *ps, adamw_state *opt, cd_device *dev, uint64_t seed) {
    for (int i = 0; i < ps->n; i++) {
        t_seed(seed ^ cd_fnv1a(ps->p[i].name, strlen(ps->p[i].name), CD_FNV_SEED));
        float *h = nn_param_host(ps, i);
        for (size_t k = 0; k < ps->p[i].n; k++) h[k] = (float)t_uniform(-1, 1);
    }
    nn_params_upload(ps, dev);
    if (!opt) return;
    float *g = malloc(CD_MAX(ps->n_trainable, 1) * sizeof(float));
    double lr[2] = {1e-3, 1e-2};
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < ps->n_trainable; k++) g[k] = (float)t_uniform(-1, 1);
        cd_write(dev, ps->grad, g, ps->n_trainable);
        adamw_update(opt, dev, ps, lr, 1.0f);
    }
    free(g);
}

typedef struct { float *data, *m, *v; size_t total, n; uint64_t step; } snapshot;

static snapshot snap(nn_params *ps, adamw_state *opt, cd_device *dev) {
    snapshot s = {0};
    s.total = ps->total;
    s.n = ps->n_trainable;
    s.data = malloc(s.total * sizeof(float));
    cd_read(dev, s.data, ps->data, s.total);
    s.m = malloc(CD_MAX(s.n, 1) * sizeof(float));
    s.v = malloc(CD_MAX(s.n, 1) * sizeof(float));
    if (opt) {
        cd_read(dev, s.m, opt->m, s.n);
        cd_read(dev, s.v, opt->v, s.n);
        s.step = opt->step;
    }
    return s;
}
static int snap_equal(const snapshot *a, const snapshot *b) {
    return a->total == b->total && a->n == b->n && a->step == b->step &&
           !memcmp(a->data, b->data, a->total * sizeof(float)) && !memcmp(a->m, b->m, a->n * sizeof(float)) &&
           !memcmp(a->v, b->v, a->n * sizeof(float));
}
static void snap_free(snapshot *s) { free(s->data); free(s->m); free(s->v); }

static ckpt_meta make_meta(uint64_t step) {
    ckpt_meta m = {0};
    m.config_hash = 0x0123456789abcdefULL;
    m.step = step;
    m.epoch = 7;
    for (int i = 0; i < CKPT_RNG_WORDS; i++) m.rng[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) + step;
    m.config_text = "[model]\nhidden_dim = 8\ndec_layers = 2\n\n[train]\nlr = 1e-4\n";
    return m;
}

/* ---- round trip ---------------------------------------------------------- */

static void test_round_trip(cd_device *dev) {
    nn_params a, b;
    adamw_state oa, ob;
    build_model(&a, dev, 0, 0);
    adamw_init(&oa, dev, &a, 0.9, 0.999, 1e-8, 1e-4);
    fill_model(&a, &oa, dev, 1);
    snapshot sa = snap(&a, &oa, dev);
    ckpt_meta meta = make_meta(1234);
    const char *path = tpath("last.ckpt");
    int rc = ckpt_save(path, &meta, &a, MOMENTS(&oa), dev);
    t_ok(rc == 0, "save %s: %s", path, rc ? cd_errbuf() : "ok");
    t_ok(!file_exists(tpath("last.ckpt.tmp")), "no temporary file left after a save");

    build_model(&b, dev, 0, 0);
    adamw_init(&ob, dev, &b, 0.9, 0.999, 1e-8, 1e-4);
    fill_model(&b, NULL, dev, 99);           /* other values, zero moments */
    ckpt_meta got = {0};
    rc = ckpt_load(path, &got, &b, MOMENTS(&ob), dev);
    t_ok(rc == 0, "load: %s", rc ? cd_errbuf() : "ok");
    snapshot sb = snap(&b, &ob, dev);
    t_ok(sa.step == 2 && snap_equal(&sa, &sb),
         "round trip exact: %zu parameter and buffer floats, %zu floats of m and v, adam step %llu",
         sa.total, sa.n, (unsigned long long)sb.step);
    t_ok(!memcmp(a.host, b.host, a.total * sizeof(float)), "host copy of the parameters loaded too");
    int rng_ok = 1;
    for (int i = 0; i < CKPT_RNG_WORDS; i++) rng_ok &= got.rng[i] == meta.rng[i];
    t_ok(got.step == 1234 && got.epoch == 7 && got.config_hash == meta.config_hash && rng_ok &&
         got.version == CKPT_VERSION && got.n_params == (uint32_t)a.n,
         "meta: step %llu, epoch %llu, config hash, %d RNG words, version %u",
         (unsigned long long)got.step, (unsigned long long)got.epoch, CKPT_RNG_WORDS, got.version);
    t_ok(got.config_text && !strcmp(got.config_text, meta.config_text), "config text round trip");
    ckpt_meta_free(&got);

    ckpt_meta hm = {0};
    rc = ckpt_read_meta(path, &hm);
    t_ok(rc == 0 && hm.step == 1234 && hm.total == a.total && hm.n_moments == a.n_trainable && hm.config_text &&
         strstr(hm.config_text, "dec_layers = 2"), "ckpt_read_meta: header and config text without a model");
    ckpt_meta_free(&hm);

    /* a registry in another order: loaded by name */
    nn_params c;
    adamw_state oc;
    build_model(&c, dev, 5, 0);
    adamw_init(&oc, dev, &c, 0.9, 0.999, 1e-8, 1e-4);
    rc = ckpt_load(path, NULL, &c, MOMENTS(&oc), dev);
    nn_params_download(&c, dev);
    int same = rc == 0;
    float *mc = malloc(c.n_trainable * sizeof(float)), *ma = malloc(a.n_trainable * sizeof(float));
    cd_read(dev, mc, oc.m, c.n_trainable);
    cd_read(dev, ma, oa.m, a.n_trainable);
    for (int i = 0; same && i < a.n; i++) {
        int j = nn_param_find(&c, a.p[i].name);
        same = j >= 0 && !memcmp(nn_param_host(&a, i), nn_param_host(&c, j), a.p[i].n * sizeof(float));
        if (same && a.p[i].trainable)
            same = !memcmp(ma + a.p[i].off, mc + c.p[j].off, a.p[i].n * sizeof(float));
    }
    t_ok(same, "a model registered in another order loads every tensor and moment by name%s%s",
         rc ? ": " : "", rc ? cd_errbuf() : "");
    free(mc); free(ma);
    adamw_free(&oc, dev);
    nn_params_free(&c, dev);

    /* weights only */
    const char *wpath = tpath("weights.ckpt");
    rc = ckpt_save(wpath, &meta, &a, NULL, dev);
    t_ok(rc == 0, "save weights only");
    rc = ckpt_load(wpath, NULL, &b, MOMENTS(&ob), dev);
    t_ok(rc == -1 && strstr(cd_errbuf(), "no optimizer state") && strstr(cd_errbuf(), "weights.ckpt"),
         "weights-only file cannot resume: %s", cd_errbuf());
    rc = ckpt_load(wpath, NULL, &b, NULL, dev);
    t_ok(rc == 0, "weights-only file loads without optimizer state");
    rc = ckpt_load(path, NULL, &b, NULL, dev);
    t_ok(rc == 0, "a full checkpoint loads without optimizer state (eval)");

    /* a folder that does not exist */
    rc = ckpt_save("/nonexistent-cldetr-dir/x/last.ckpt", &meta, &a, MOMENTS(&oa), dev);
    t_ok(rc == -1 && strstr(cd_errbuf(), "/nonexistent-cldetr-dir/x/last.ckpt") && strstr(cd_errbuf(), "folder"),
         "save into a missing folder: %s", cd_errbuf());

    snap_free(&sa); snap_free(&sb);
    adamw_free(&oa, dev); adamw_free(&ob, dev);
    nn_params_free(&a, dev); nn_params_free(&b, dev);
}

/* ---- damaged files ------------------------------------------------------- */

/* Load path into a fresh model (with sentinel values) and expect an error
 * containing want and want2 (may be NULL), and the model untouched. */
static void expect_fail(cd_device *dev, const char *path, int variant, int with_opt, const char *what,
                        const char *want, const char *want2) {
    nn_params ps;
    adamw_state opt;
    build_model(&ps, dev, variant, 0);
    adamw_init(&opt, dev, &ps, 0.9, 0.999, 1e-8, 1e-4);
    fill_model(&ps, &opt, dev, 5);
    snapshot before = snap(&ps, &opt, dev);
    int rc = ckpt_load(path, NULL, &ps, with_opt ? MOMENTS(&opt) : NULL, dev);
    const char *e = cd_errbuf();
    snapshot after = snap(&ps, &opt, dev);
    t_ok(rc == -1 && strstr(e, path) && strstr(e, want) && (!want2 || strstr(e, want2)) && snap_equal(&before, &after),
         "%s: rejected, model untouched: %s", what, rc ? e : "(loaded!)");
    snap_free(&before); snap_free(&after);
    adamw_free(&opt, dev);
    nn_params_free(&ps, dev);
}

static void test_damaged(cd_device *dev) {
    const char *good = tpath("last.ckpt");
    size_t len;
    char *raw = cd_read_file(good, &len);
    free(raw);
    const char *p = tpath("bad.ckpt");

    copy_file(good, p, (long)len - 100);
    expect_fail(dev, p, 0, 1, "truncated by 100 bytes", "truncated", "interrupted");
    copy_file(good, p, 20);
    expect_fail(dev, p, 0, 1, "truncated to 20 bytes", "too short", NULL);
    copy_file(good, p, 0);
    expect_fail(dev, p, 0, 1, "empty file", "too short", NULL);

    long data_byte = (long)len - 8 - 2 * 4 * 100;         /* inside m or v (well past the table) */
    copy_file(good, p, -1);
    flip_byte(p, data_byte);
    expect_fail(dev, p, 0, 1, "a flipped byte in the optimizer state", "checksum mismatch", NULL);
    copy_file(good, p, -1);
    flip_byte(p, 300);                                     /* in the config text or the table */
    expect_fail(dev, p, 0, 1, "a flipped byte in the table", "checksum", NULL);
    copy_file(good, p, -1);
    flip_byte(p, (long)len - 3);
    expect_fail(dev, p, 0, 1, "a flipped byte in the checksum", "checksum mismatch", NULL);
    copy_file(good, p, -1);
    flip_byte(p, 104);                                     /* text_len */
    expect_fail(dev, p, 0, 1, "a damaged size in the header", "damaged", NULL);
    copy_file(good, p, -1);
    flip_byte(p, 2);
    expect_fail(dev, p, 0, 1, "wrong magic", "not a cldetr checkpoint", NULL);
    copy_file(good, p, -1);
    flip_byte(p, 8);
    expect_fail(dev, p, 0, 1, "another format version", "format version 17", "reads version 1");
    expect_fail(dev, tpath("no-such.ckpt"), 0, 1, "a missing file", "cannot open", "No such file");

    /* forged headers with a correct checksum: every field's range is checked, the field named */
    ckpt_meta hm = {0};
    ckpt_read_meta(good, &hm);
    const struct { long pos; uint64_t value; const char *what, *field; } forged[] = {
        {24, (uint64_t)1 << 63, "step 2^63", "header field step = 9223372036854775808"},
        {24, CKPT_MAX_COUNT, "step 2^62", "header field step ="},
        {32, CKPT_MAX_COUNT + 5, "epoch 2^62 + 5", "header field epoch ="},
        {104, (uint64_t)len + 1, "text_len past the end of the file", "header field text_len ="},
        {120, hm.total + 1, "n_trainable above total", "header field n_trainable ="},
        {128, hm.n_trainable - 1, "n_moments neither 0 nor n_trainable", "header field n_moments ="},
        {112, 0, "total 0", "header field total = 0"},
    };
    ckpt_meta_free(&hm);
    for (size_t i = 0; i < CD_ARRAY_LEN(forged); i++) {
        t_ok(t_forge_ckpt_u64(good, p, forged[i].pos, forged[i].value) == 0, "forge %s", forged[i].what);
        expect_fail(dev, p, 0, 1, forged[i].what, forged[i].field, "out of range");
        ckpt_meta fm = {0};
        int rc = ckpt_read_meta(p, &fm);
        ckpt_meta_free(&fm);
        t_ok(rc == -1 && strstr(cd_errbuf(), forged[i].field), "ckpt_read_meta refuses it too: %s", cd_errbuf());
    }
    t_ok(t_forge_ckpt_u64(good, p, 24, CKPT_MAX_COUNT - 1) == 0 && ckpt_read_meta(p, &hm) == 0 &&
         hm.step == CKPT_MAX_COUNT - 1, "step 2^62 - 1, the largest in range, is accepted");
    ckpt_meta_free(&hm);
    expect_fail(dev, dir, 0, 1, "a folder", "not a regular file", NULL);

    /* models of another config */
    expect_fail(dev, good, 1, 1, "class head of another shape", "'class_embed.weight' has shape [4, 8] in the file",
                "[5, 8] in the model");
    expect_fail(dev, good, 2, 0, "a model with one more decoder layer",
                "no parameter 'transformer.decoder.layers.2.linear1.weight' [16, 8]", "another model config");
    expect_fail(dev, good, 3, 0, "a model with one decoder layer fewer",
                "parameter 'transformer.decoder.layers.1.linear1.weight', which the model lacks", NULL);
    expect_fail(dev, good, 4, 1, "resume with the backbone frozen",
                "'backbone.0.body.layer2.0.conv1.weight' is trained in the file and frozen in the model", NULL);
    remove(p);
}

/* ---- crash safety -------------------------------------------------------- */

/* A stale, partial temp file (a writer killed mid-write) does not hide the
 * last checkpoint, and the next save replaces it. */
static void test_stale_temp(cd_device *dev) {
    const char *good = tpath("last.ckpt");
    const char *tmp = tpath("last.ckpt.tmp");
    size_t len;
    char *raw = cd_read_file(good, &len);
    free(raw);
    copy_file(good, tmp, (long)len / 2);
    nn_params ps;
    adamw_state opt;
    build_model(&ps, dev, 0, 0);
    adamw_init(&opt, dev, &ps, 0.9, 0.999, 1e-8, 1e-4);
    ckpt_meta m = {0};
    int rc = ckpt_load(good, &m, &ps, MOMENTS(&opt), dev);
    t_ok(rc == 0 && m.step == 1234, "a half-written %s beside it: the last checkpoint still loads (step %llu)",
         tmp, (unsigned long long)m.step);
    ckpt_meta_free(&m);
    ckpt_meta meta = make_meta(1300);
    rc = ckpt_save(good, &meta, &ps, MOMENTS(&opt), dev);
    t_ok(rc == 0 && !file_exists(tmp), "the next save replaces the stale temp file");
    rc = ckpt_load(good, &m, &ps, MOMENTS(&opt), dev);
    t_ok(rc == 0 && m.step == 1300, "and the new checkpoint loads (step %llu)", (unsigned long long)m.step);
    ckpt_meta_free(&m);
    adamw_free(&opt, dev);
    nn_params_free(&ps, dev);
}

#define KILL_ROUNDS 3
#define BIG_FLOATS ((size_t)3 << 20)     /* 12 MB a checkpoint: a save takes a while */

/* The child: save again and again, step k with big.weight[0] = k, until killed. */
static void saver_child(const char *path, uint64_t first) {
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) _exit(3);
    nn_params ps;
    build_model(&ps, dev, 0, BIG_FLOATS);
    adamw_state opt;
    adamw_init(&opt, dev, &ps, 0.9, 0.999, 1e-8, 1e-4);
    int big = nn_param_find(&ps, "big.weight");
    for (uint64_t k = first;; k++) {
        float marker = (float)k;
        cd_write(dev, cd_at(ps.data, ps.p[big].off), &marker, 1);
        cd_fill(dev, opt.m, marker, opt.n);        /* the moments carry the marker too */
        ckpt_meta meta = make_meta(k);
        if (ckpt_save(path, &meta, &ps, MOMENTS(&opt), dev) != 0) _exit(4);
    }
}

/* Before any OpenCL call in this process (fork and OpenCL do not mix): kill a
 * saving child at several moments and keep a copy of what each kill left. */
static int kill_results[KILL_ROUNDS];      /* 1: a .tmp was there after the kill (killed mid-save) */

static void run_kills(void) {
    char path[512], tmp[512];
    snprintf(path, sizeof path, "%s", tpath("kill.ckpt"));
    snprintf(tmp, sizeof tmp, "%s", tpath("kill.ckpt.tmp"));
    const int delay_ms[KILL_ROUNDS] = {37, 113, 251};
    for (int r = 0; r < KILL_ROUNDS; r++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) saver_child(path, 1000u * (uint64_t)(r + 1));
        /* wait for this child's first save (its step is >= 1000 (r+1)) */
        int st = 0, reaped = 0;
        for (int i = 0; i < 6000 && !reaped; i++) {
            ckpt_meta m = {0};
            int ok = ckpt_read_meta(path, &m) == 0 && m.step >= 1000u * (uint64_t)(r + 1);
            ckpt_meta_free(&m);
            if (ok) break;
            reaped = waitpid(pid, &st, WNOHANG) == pid;      /* died early */
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
        if (!reaped) {
            nanosleep(&(struct timespec){0, delay_ms[r] * 1000L * 1000L}, NULL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        kill_results[r] = (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ? 0 : -1 - (WIFEXITED(st) ? WEXITSTATUS(st) : 0);
        if (kill_results[r] == 0 && file_exists(tmp)) kill_results[r] = 1;
        char name[64];
        snprintf(name, sizeof name, "kill%d.ckpt", r);
        copy_file(path, tpath(name), -1);
    }
}

static void check_kills(cd_device *dev) {
    for (int r = 0; r < KILL_ROUNDS; r++) {
        if (kill_results[r] < 0) {
            t_ok(0, "kill round %d: the saving child ended by itself (status %d)", r, -1 - kill_results[r]);
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "kill%d.ckpt", r);
        nn_params ps;
        adamw_state opt;
        build_model(&ps, dev, 0, BIG_FLOATS);
        adamw_init(&opt, dev, &ps, 0.9, 0.999, 1e-8, 1e-4);
        ckpt_meta m = {0};
        int rc = ckpt_load(tpath(name), &m, &ps, MOMENTS(&opt), dev);
        float marker = -1, mm = -1;
        if (rc == 0) {
            cd_read(dev, &marker, cd_at(ps.data, ps.p[nn_param_find(&ps, "big.weight")].off), 1);
            cd_read(dev, &mm, cd_at(opt.m, opt.n - 1), 1);
        }
        t_ok(rc == 0 && m.step >= 1000u * (uint64_t)(r + 1) && marker == (float)m.step && mm == marker,
             "SIGKILL %s saves (round %d): the file at the path loads whole: step %llu, marker %g%s%s",
             kill_results[r] == 1 ? "during one of the" : "between", r, (unsigned long long)m.step, marker,
             rc ? ": " : "", rc ? cd_errbuf() : "");
        ckpt_meta_free(&m);
        adamw_free(&opt, dev);
        nn_params_free(&ps, dev);
        remove(tpath(name));
    }
    remove(tpath("kill.ckpt"));
    remove(tpath("kill.ckpt.tmp"));
}

int main(void) {
    if (!t_tmpdir(dir, sizeof dir, "cldetr_ckpt")) { printf("1..0 # SKIP cannot create a temporary folder\n"); return 0; }
    run_kills();
    cd_device *dev = cd_open(NULL, 0);
    if (!dev) {
        printf("1..0 # SKIP no OpenCL device: %s\n", cd_errbuf());
        rmdir(dir);
        return 0;
    }
    t_diag("device: %s, folder %s", dev->info.name, dir);
    test_round_trip(dev);
    test_damaged(dev);
    test_stale_temp(dev);
    check_kills(dev);
    remove(tpath("last.ckpt"));
    remove(tpath("weights.ckpt"));
    int clean = rmdir(dir) == 0;
    if (!clean) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "ls -la %s | sed 's/^/# /'", dir);
        fflush(stdout);
        if (system(cmd) != 0) t_diag("ls failed");
    }
    t_ok(clean, "no file left behind in %s", dir);
    cd_close(dev);
    return t_done();
}
