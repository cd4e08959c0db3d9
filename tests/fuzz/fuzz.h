/* tests/fuzz/fuzz.h — a deterministic mutation fuzzer for the parsers of
 * untrusted files (one test binary per format, header-only: include it from
 * exactly one .c file, after ../check.h).
 *
 * Each case starts from one of the format's valid seeds and applies a few
 * byte-level mutations (bit flips, byte sets, insertions, deletions,
 * truncation, chunk copies, tokens of the format, little-endian integers at
 * their limits), drawn from the project's RNG (cd_rng_*) with a fixed seed:
 * case k is the same input on every machine and in every run, and can be
 * replayed alone. The parser runs in this process; every input must either
 * parse or fail with a message in cd_errbuf(). A crash (or, in the sanitizer
 * build, any ASan/UBSan report) kills the binary, and meson counts the test
 * as failed; the case number is printed first.
 *
 * Environment:
 *   CLDETR_FUZZ_N=100000   cases per format (default: the count the test
 *                          passes, a few hundred, seconds)
 *   CLDETR_FUZZ_SEED=7     another sequence of cases (default 1)
 *   CLDETR_FUZZ_CASE=k     run case k alone (with CLDETR_FUZZ_DUMP=file: write
 *                          its input there, to look at or to keep as a fixture)
 *   CLDETR_FUZZ_VERBOSE=1  one line per case: parsed, or the message */
#ifndef CLDETR_TEST_FUZZ_H
#define CLDETR_TEST_FUZZ_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/common.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

typedef struct { uint8_t *b; size_t n, cap; } fz_buf;

static inline void fz_reserve(fz_buf *f, size_t n) {
    if (n <= f->cap) return;
    f->cap = n * 2 + 64;
    f->b = cd_xrealloc(f->b, f->cap);
}
static inline void fz_set(fz_buf *f, const void *p, size_t n) {
    fz_reserve(f, n + 1);
    if (n) memcpy(f->b, p, n);
    f->n = n;
}
/* Insert n bytes (p, or zeros when p is NULL) at pos. */
static inline void fz_insert(fz_buf *f, size_t pos, const void *p, size_t n) {
    fz_reserve(f, f->n + n + 1);
    memmove(f->b + pos + n, f->b + pos, f->n - pos);
    if (p) memcpy(f->b + pos, p, n);
    else memset(f->b + pos, 0, n);
    f->n += n;
}
static inline void fz_erase(fz_buf *f, size_t pos, size_t n) {
    if (n > f->n - pos) n = f->n - pos;
    memmove(f->b + pos, f->b + pos + n, f->n - pos - n);
    f->n -= n;
}
/* A NUL after the last byte (not counted in n), for the text APIs. */
static inline const char *fz_cstr(fz_buf *f) {
    fz_reserve(f, f->n + 1);
    f->b[f->n] = 0;
    return (const char *)f->b;
}

/* Where the targets put what they read from a result, so it is read. */
static volatile unsigned fz_sink;

static inline uint64_t fz_below(uint64_t *r, uint64_t n) { return n ? cd_rng_next(r) % n : 0; }

/* A position in [0, n] (insertions may go at the end): half of them in the
 * first 256 bytes, where the headers are. */
static inline size_t fz_pos(uint64_t *r, size_t n) {
    if (cd_rng_next(r) & 1) return (size_t)fz_below(r, (n < 256 ? n : 256) + 1);
    return (size_t)fz_below(r, n + 1);
}

/* One mutation of f. dict: tokens of the format (may be NULL). */
static inline void fz_mutate_once(fz_buf *f, uint64_t *r, const char *const *dict, size_t n_dict) {
    static const uint8_t interesting8[] = {0, 1, 0x7F, 0x80, 0xFF, '0', '9', '-', ' ', '\n', '"', '\\', '['};
    static const uint64_t interesting64[] = {0, 1, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
                                             0x80000000, 0xFFFFFFFF, 0x100000000ULL, 0x7FFFFFFFFFFFFFFFULL,
                                             0x8000000000000000ULL, 0xFFFFFFFFFFFFFFFFULL};
    size_t pos = fz_pos(r, f->n);
    int op = (int)fz_below(r, 9);
    if (f->n == 0 || pos == f->n) op = op % 3 == 0 ? 6 : 3;   /* only growth makes sense */
    switch (op) {
    case 0:   /* flip a bit */
        f->b[pos] ^= (uint8_t)(1u << fz_below(r, 8));
        break;
    case 1:   /* a random byte */
        f->b[pos] = (uint8_t)cd_rng_next(r);
        break;
    case 2:   /* an interesting byte */
        f->b[pos] = interesting8[fz_below(r, sizeof interesting8)];
        break;
    case 3: { /* insert 1..8 random bytes */
        uint8_t tmp[8];
        size_t k = 1 + (size_t)fz_below(r, 8);
        for (size_t i = 0; i < k; i++) tmp[i] = (uint8_t)cd_rng_next(r);
        fz_insert(f, pos, tmp, k);
        break;
    }
    case 4:   /* delete 1..16 bytes */
        fz_erase(f, pos, 1 + (size_t)fz_below(r, 16));
        break;
    case 5:   /* truncate */
        f->n = pos;
        break;
    case 6:   /* insert a token of the format, or a copy of a chunk of the input */
        if (dict && n_dict) {
            const char *t = dict[fz_below(r, n_dict)];
            fz_insert(f, pos, t, strlen(t));
        } else if (f->n) {
            size_t from = (size_t)fz_below(r, f->n), k = 1 + (size_t)fz_below(r, 32);
            if (k > f->n - from) k = f->n - from;
            uint8_t tmp[32];
            memcpy(tmp, f->b + from, k);
            fz_insert(f, pos, tmp, k);
        }
        break;
    case 7: { /* overwrite with a chunk of the input from elsewhere */
        size_t from = (size_t)fz_below(r, f->n), k = 1 + (size_t)fz_below(r, 32);
        if (k > f->n - from) k = f->n - from;
        if (k > f->n - pos) k = f->n - pos;
        memmove(f->b + pos, f->b + from, k);
        break;
    }
    default: { /* a little-endian integer at a limit (or one off it), 1, 2, 4 or 8 bytes */
        uint64_t v = interesting64[fz_below(r, CD_ARRAY_LEN(interesting64))];
        v += (uint64_t)fz_below(r, 3) - 1;
        size_t w = (size_t)1 << fz_below(r, 4);
        for (size_t i = 0; i < w && pos + i < f->n; i++) f->b[pos + i] = (uint8_t)(v >> (8 * i));
        break;
    }
    }
}

/* 1 to 4 mutations, sometimes (1 case in 8) up to 16. */
static inline void fz_mutate(fz_buf *f, uint64_t *r, const char *const *dict, size_t n_dict) {
    int k = 1 + (int)fz_below(r, 4);
    if (fz_below(r, 8) == 0) k = 1 + (int)fz_below(r, 16);
    for (int i = 0; i < k; i++) fz_mutate_once(f, r, dict, n_dict);
}

/* For JSON: one to three values (what follows a ':' in bytes [from, to) of
 * f) replaced by values of other types and sizes, so that the input stays
 * JSON and reaches the checks of its fields. Returns the new end of the range. */
static inline size_t fz_json_swap(fz_buf *f, size_t from, size_t to, uint64_t *r) {
    static const char *const values[] = {
        "0", "-1", "1", "2", "3", "1.5", "-0.5", "1e308", "-1e308", "9007199254740992", "9007199254740993",
        "2147483648", "-2147483649", "18446744073709551616", "\"x\"", "\"\"", "\"1\"", "\"F32\"", "\"I64\"",
        "null", "true", "false", "[]", "{}", "[1, 2, 3]", "[0, 0, -5, 2]", "[1, 2, 3, 4, 5]", "[1, 2, 3, \"4\"]",
        "[[1, 2]]", "[0, 4]", "[4, 0]", "[-1, 2]", "[1, 1, 1, 1, 1, 1, 1, 1, 1]", "{\"counts\": \"x\"}", "7", "90"};
    int k = 1 + (int)fz_below(r, 3);
    for (int i = 0; i < k && to > from; i++) {
        size_t v = from + (size_t)fz_below(r, to - from);
        while (v < to && f->b[v] != ':') v++;
        if (v >= to) continue;
        v++;
        while (v < to && (f->b[v] == ' ' || f->b[v] == '\n')) v++;
        size_t e = v;
        if (e < to && f->b[e] == '"') {                       /* a string */
            for (e++; e < to && f->b[e] != '"'; e++)
                if (f->b[e] == '\\') e++;
            e++;
        } else if (e < to && (f->b[e] == '[' || f->b[e] == '{')) {   /* a list or an object */
            int depth = 0;
            for (; e < to; e++) {
                if (f->b[e] == '[' || f->b[e] == '{') depth++;
                if ((f->b[e] == ']' || f->b[e] == '}') && --depth == 0) { e++; break; }
            }
        } else {
            while (e < to && !strchr(",}] \n", f->b[e])) e++;
        }
        if (e > to) e = to;
        const char *nv = values[fz_below(r, CD_ARRAY_LEN(values))];
        fz_erase(f, v, e - v);
        fz_insert(f, v, nv, strlen(nv));
        to = to - (e - v) + strlen(nv);
    }
    return to;
}

/* ---- the driver ------------------------------------------------------------ */

typedef struct {
    const char *format;                 /* "INI", "COCO JSON", ... */
    fz_buf *seeds;                      /* valid inputs */
    size_t n_seeds;
    const char *const *dict;            /* tokens to insert (NULL: chunk copies) */
    size_t n_dict;
    /* Case input from its RNG; NULL: a seed with fz_mutate. */
    void (*make)(fz_buf *out, uint64_t *r, void *ctx);
    /* Parse one input: 0 parsed (and the result passed the harness's own
     * checks), -1 refused (cd_errbuf() must say why), anything else a failed
     * check of the result (the harness prints what, with t_diag). */
    int (*target)(const uint8_t *data, size_t len, void *ctx);
    void *ctx;
    size_t default_n;                   /* cases without CLDETR_FUZZ_N */
} fz_spec;

static volatile long fz_case = -1;
static const char *fz_format = "";

/* Async-signal-safe: which case died. */
static inline void fz_say_case(void) {
    char msg[160];
    long k = fz_case;
    if (k < 0) return;
    char num[24];
    int nd = 0;
    do { num[nd++] = (char)('0' + k % 10); k /= 10; } while (k);
    size_t n = 0;
    const char *a = "\n# fuzz ", *b = ": died in case ", *c = "; replay it alone with CLDETR_FUZZ_CASE=";
    for (const char *s = a; *s && n < sizeof msg; s++) msg[n++] = *s;
    for (const char *s = fz_format; *s && n < 60; s++) msg[n++] = *s;
    for (const char *s = b; *s; s++) msg[n++] = *s;
    for (int i = nd - 1; i >= 0; i--) msg[n++] = num[i];
    for (const char *s = c; *s && n < sizeof msg - 24; s++) msg[n++] = *s;
    for (int i = nd - 1; i >= 0; i--) msg[n++] = num[i];
    msg[n++] = '\n';
    if (write(2, msg, n) < 0) { /* nothing more to do */ }
    if (write(1, msg, n) < 0) { /* ditto */ }
}

#ifndef __SANITIZE_ADDRESS__
static inline void fz_on_signal(int sig) {
    fz_say_case();
    signal(sig, SIG_DFL);
    raise(sig);
}
#endif

static inline void fz_install_handlers(void) {
#ifdef __SANITIZE_ADDRESS__
    __sanitizer_set_death_callback(fz_say_case);   /* ASan and UBSan reports end here */
#else
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < CD_ARRAY_LEN(sigs); i++) signal(sigs[i], fz_on_signal);
#endif
}

static inline uint64_t fz_env_u64(const char *name, uint64_t def) {
    const char *s = getenv(name);
    if (!s || !*s) return def;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return *end ? def : (uint64_t)v;
}

/* Run the seeds, then the mutated cases; two checks: the seeds parse, and
 * every case parsed or failed with a message. */
static inline void fz_run(const fz_spec *s) {
    fz_format = s->format;
    fz_install_handlers();
    size_t seeds_ok = 0;
    for (size_t i = 0; i < s->n_seeds; i++) {
        cd_seterr("%s", "");
        int rc = s->target(s->seeds[i].b, s->seeds[i].n, s->ctx);
        if (rc == 0) seeds_ok++;
        else t_diag("%s seed %zu (%zu bytes) does not parse: %s", s->format, i, s->seeds[i].n, cd_errbuf());
    }
    t_ok(s->n_seeds > 0 && seeds_ok == s->n_seeds, "%s: the %zu seeds parse", s->format, s->n_seeds);

    uint64_t n = fz_env_u64("CLDETR_FUZZ_N", s->default_n);
    uint64_t base = fz_env_u64("CLDETR_FUZZ_SEED", 1);
    uint64_t first = 0;
    const char *only = getenv("CLDETR_FUZZ_CASE");
    int verbose = getenv("CLDETR_FUZZ_VERBOSE") && *getenv("CLDETR_FUZZ_VERBOSE");
    if (only && *only) { first = fz_env_u64("CLDETR_FUZZ_CASE", 0); n = first + 1; }
    size_t parsed = 0, refused = 0, silent = 0, wrong = 0;
    double slowest = 0;
    uint64_t slowest_case = 0;
    fz_buf in = {0};
    for (uint64_t k = first; k < n; k++) {
        uint64_t r = cd_mix64(base * 0x9E3779B97F4A7C15ULL + k);   /* case k alone decides its input */
        if (s->make) s->make(&in, &r, s->ctx);
        else {
            const fz_buf *seed = &s->seeds[fz_below(&r, s->n_seeds)];
            fz_set(&in, seed->b, seed->n);
            fz_mutate(&in, &r, s->dict, s->n_dict);
        }
        if (only && *only && getenv("CLDETR_FUZZ_DUMP")) {
            FILE *f = fopen(getenv("CLDETR_FUZZ_DUMP"), "wb");
            if (f) { fwrite(in.b, 1, in.n, f); fclose(f); }
            t_diag("case %llu: %zu bytes written to %s", (unsigned long long)k, in.n, getenv("CLDETR_FUZZ_DUMP"));
        }
        cd_seterr("%s", "");
        fz_case = (long)k;
        double t0 = cd_now();
        int rc = s->target(in.b, in.n, s->ctx);
        t0 = cd_now() - t0;
        if (t0 > slowest) { slowest = t0; slowest_case = k; }
        fz_case = -1;
        if (rc == 0) parsed++;
        else if (rc == -1 && cd_errbuf()[0]) refused++;
        else if (rc == -1) {
            if (silent++ < 5) t_diag("%s case %llu: refused without a message", s->format, (unsigned long long)k);
        } else if (wrong++ < 5) {
            t_diag("%s case %llu: parsed, but the result failed the checks above", s->format, (unsigned long long)k);
        }
        if ((only && *only) || verbose)
            t_diag("case %llu: %s%s", (unsigned long long)k,
                   rc == 0 ? "parsed" : rc == -1 ? "refused: " : "parsed, with a wrong result", rc == -1 ? cd_errbuf() : "");
    }
    free(in.b);
    t_diag("%s: the slowest case, %llu, took %.0f ms", s->format, (unsigned long long)slowest_case, slowest * 1e3);
    t_ok(silent == 0 && wrong == 0,
         "%s: %llu mutated inputs (seed %llu): %zu parsed, %zu refused with a message, %zu without one, "
         "%zu wrong results, no crash", s->format, (unsigned long long)(n - first), (unsigned long long)base,
         parsed, refused, silent, wrong);
}

/* A file's bytes as a seed; -1 and a diagnostic when it cannot be read. */
static inline int fz_seed_file(fz_buf *seed, const char *path) {
    size_t len;
    char *b = cd_read_file(path, &len);
    memset(seed, 0, sizeof *seed);
    if (!b) { t_diag("seed %s: %s", path, cd_errbuf()); return -1; }
    fz_set(seed, b, len);
    free(b);
    return 0;
}

static inline int fz_write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int rc = fwrite(p, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

/* CLDETR_SOURCE_ROOT/rel */
static inline const char *fz_source(const char *rel) {
    static char p[4][2048];
    static int k;
    k = (k + 1) % 4;
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    snprintf(p[k], sizeof p[k], "%s/%s", root ? root : ".", rel);
    return p[k];
}

/* A private temporary folder (TMPDIR or /tmp) and a file in it the targets
 * write each input to; both removed by fz_tmp_done. */
static char fz_dir[512], fz_file[600];
static inline int fz_tmp_init(const char *ext) {
    snprintf(fz_dir, sizeof fz_dir, "%s/cldetr_fuzz_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(fz_dir)) return -1;
    snprintf(fz_file, sizeof fz_file, "%s/input%s", fz_dir, ext);
    return 0;
}
static inline void fz_tmp_done(void) {
    remove(fz_file);
    rmdir(fz_dir);
}

#endif
