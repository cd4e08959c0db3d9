/* safetensors reader/writer: round trip, dtype conversions, every class of bad
 * file (each checks the message names the file and the tensor), a file written
 * by Python (tools/reference/make_model_fixtures.py), and the model fixtures. */
#include "cldetr/common.h"
#include "cldetr/safetensors.h"
#include "../check.h"
#include "../fixtures.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

static char tmpdir[64];

static char *tpath(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_raw(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { perror(path); exit(2); }
    fclose(f);
}

/* A file with header text hdr (length prefix computed) followed by ndata zero bytes. */
static void write_hdr(const char *path, const char *hdr, size_t ndata) {
    size_t h = strlen(hdr), n = 8 + h + ndata;
    unsigned char *b = calloc(n, 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, hdr, h);
    write_raw(path, b, n);
    free(b);
}

static int has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* st_open must fail with a message containing every one of the given parts. */
static void expect_open_error(const char *what, const char *path, const char *part1, const char *part2) {
    st_file f;
    int rc = st_open(&f, path);
    const char *m = cd_errbuf();
    int ok = rc == -1 && has(m, path) && (!part1 || has(m, part1)) && (!part2 || has(m, part2));
    if (!ok) t_diag("rc %d, message: %s", rc, m);
    t_ok(ok, "bad file (%s) rejected: %s", what, m);
    if (rc == 0) st_close(&f);
}

static void test_round_trip(void) {
    double f64[6] = {1.0 / 3.0, -0.0, 1e-310, 1e300, -INFINITY, 2.5};
    float f32[6] = {1.0f / 3.0f, -0.0f, 1e-40f, 3.4e38f, INFINITY, -7.25f};
    int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    int32_t i32[4] = {INT32_MIN, 0, 17, INT32_MAX};
    uint8_t u8[3] = {0, 128, 255};
    float scalar = 42.0f;
    int64_t s23[2] = {2, 3}, s3[1] = {3}, s4[1] = {4}, s0[2] = {0, 5};

    st_writer *w = st_writer_new();
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "note", "first");
    st_writer_meta(w, "note", "replaced");
    int rc = st_writer_add(w, "x.f64", ST_F64, 2, s23, f64);
    rc |= st_writer_add(w, "x.f32", ST_F32, 2, s23, f32);
    rc |= st_writer_add(w, "x.i64", ST_I64, 1, s3, i64);
    rc |= st_writer_add(w, "x.i32", ST_I32, 1, s4, i32);
    rc |= st_writer_add(w, "x.u8", ST_U8, 1, s3, u8);
    rc |= st_writer_add(w, "scalar", ST_F32, 0, NULL, &scalar);
    rc |= st_writer_add(w, "empty", ST_F32, 2, s0, NULL);
    t_ok(rc == 0, "writer accepts 7 tensors");
    t_ok(st_writer_add(w, "x.f32", ST_F32, 2, s23, f32) == -1 && has(cd_errbuf(), "x.f32") &&
         has(cd_errbuf(), "twice"), "duplicate name rejected: %s", cd_errbuf());
    t_ok(st_writer_add(w, "__metadata__", ST_F32, 0, NULL, &scalar) == -1, "name __metadata__ rejected");
    t_ok(st_writer_write(w, tpath("rt.safetensors")) == 0, "write %s", cd_errbuf());
    st_writer_free(w);

    /* no temp file left behind */
    DIR *d = opendir(tmpdir);
    int n_tmp = 0;
    for (struct dirent *e; d && (e = readdir(d));) n_tmp += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    t_ok(n_tmp == 0, "no temp file left after an atomic write");

    st_file f;
    rc = st_open(&f, tpath("rt.safetensors"));
    t_ok(rc == 0, "open round-trip file: %s", rc ? cd_errbuf() : "ok");
    if (rc) return;
    t_ok(f.n_tensors == 7 && f.data_start % 8 == 0, "7 tensors, data section 8-byte aligned (%zu)", f.data_start);
    t_ok(st_meta(&f, "format") && strcmp(st_meta(&f, "format"), "pt") == 0 && st_meta(&f, "note") &&
         strcmp(st_meta(&f, "note"), "replaced") == 0 && !st_meta(&f, "nope"), "metadata round trip");
    double g64[6];
    float g32[6];
    int64_t gi64[3];
    int32_t gi32[4];
    t_ok(st_read_f64(&f, "x.f64", g64, 2, s23) == 0 && memcmp(g64, f64, sizeof f64) == 0, "F64 bit-exact");
    t_ok(st_read_f32(&f, "x.f32", g32, 2, s23) == 0 && memcmp(g32, f32, sizeof f32) == 0, "F32 bit-exact");
    t_ok(st_read_i64(&f, "x.i64", gi64, 1, s3) == 0 && memcmp(gi64, i64, sizeof i64) == 0, "I64 exact");
    t_ok(st_read_i32(&f, "x.i32", gi32, 1, s4) == 0 && memcmp(gi32, i32, sizeof i32) == 0, "I32 exact");
    t_ok(st_read_i64(&f, "x.u8", gi64, 1, s3) == 0 && gi64[0] == 0 && gi64[1] == 128 && gi64[2] == 255, "U8 to int64");
    t_ok(st_read_f32(&f, "scalar", g32, 0, NULL) == 0 && g32[0] == 42.0f, "0-dim scalar");
    const st_tensor *t = st_find(&f, "empty");
    t_ok(t && t->numel == 0 && t->ndim == 2 && t->shape[1] == 5 && st_read_f32(&f, "empty", g32, 2, s0) == 0,
         "zero-size tensor");
    t = st_find(&f, "x.f64");
    t_ok(t && t->dtype == ST_F64 && t->numel == 6 && t->nbytes == 48, "st_find gives dtype, numel, nbytes");
    t_ok(st_find(&f, "x.f6") == NULL && st_find(&f, "x.f640") == NULL, "st_find misses near names");
    /* conversions between dtypes on read */
    t_ok(st_read_f32(&f, "x.f64", g32, -1, NULL) == 0 && g32[0] == (float)(1.0 / 3.0) && g32[5] == 2.5f &&
         isinf(g32[4]) && g32[4] < 0, "F64 read as float");
    t_ok(st_read_f64(&f, "x.i64", g64, 1, s3) == 0 && g64[1] == -1.0, "I64 read as double");
    t_ok(st_read_f64(&f, "x.f32", g64, 2, s23) == 0 && g64[0] == (double)(1.0f / 3.0f), "F32 read as double");

    /* errors on read: each names the file and the tensor */
    int64_t s32[2] = {3, 2};
    rc = st_read_f32(&f, "x.f32", g32, 2, s32);
    t_ok(rc == -1 && has(cd_errbuf(), "rt.safetensors") && has(cd_errbuf(), "'x.f32'") &&
         has(cd_errbuf(), "[2, 3]") && has(cd_errbuf(), "expected [3, 2]"), "wrong shape: %s", cd_errbuf());
    rc = st_read_f32(&f, "x.f32", g32, 1, s3);
    t_ok(rc == -1 && has(cd_errbuf(), "expected [3]"), "wrong rank: %s", cd_errbuf());
    rc = st_read_f32(&f, "backbone.0.body.conv1.weight", g32, -1, NULL);
    t_ok(rc == -1 && has(cd_errbuf(), "rt.safetensors") && has(cd_errbuf(), "'backbone.0.body.conv1.weight'") &&
         has(cd_errbuf(), "not found"), "missing tensor: %s", cd_errbuf());
    rc = st_read_i64(&f, "x.f32", gi64, -1, NULL);
    t_ok(rc == -1 && has(cd_errbuf(), "'x.f32'") && has(cd_errbuf(), "F32") && has(cd_errbuf(), "integer"),
         "float read as int: %s", cd_errbuf());
    rc = st_read_i32(&f, "x.i64", gi32, -1, NULL);
    t_ok(rc == -1 && has(cd_errbuf(), "'x.i64'") && has(cd_errbuf(), "int32"), "int32 overflow: %s", cd_errbuf());
    st_close(&f);
    st_close(&f);   /* harmless twice */
}

static void test_half(void) {
    static const struct { uint16_t h; float f; } f16[] = {
        {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f}, {0x0001, 5.9604644775390625e-8f},
        {0x0400, 6.103515625e-5f}, {0x03FF, 6.0975551605224609375e-5f}, {0x3555, 0.333251953125f},
        {0x8000, -0.0f}, {0x7C00, INFINITY}, {0xFC00, -INFINITY},
    };
    int ok = 1;
    for (size_t i = 0; i < CD_ARRAY_LEN(f16); i++) {
        float g = st_f16_to_f32(f16[i].h);
        uint16_t back = st_f32_to_f16(f16[i].f);
        if (g != f16[i].f || signbit(g) != signbit(f16[i].f) || back != f16[i].h) {
            t_diag("f16 0x%04x: got %.9g (want %.9g), back 0x%04x", f16[i].h, g, f16[i].f, back);
            ok = 0;
        }
    }
    t_ok(ok, "F16 <-> F32 on 10 exact values (normal, subnormal, max, signed zero, inf)");
    t_ok(isnan(st_f16_to_f32(0x7E00)) && (st_f32_to_f16(NAN) & 0x7C00) == 0x7C00 && (st_f32_to_f16(NAN) & 0x3FF),
         "F16 NaN both ways");
    /* rounding to nearest even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 */
    t_ok(st_f32_to_f16(1.0f + 0x1p-11f) == 0x3C00 && st_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3C02 &&
         st_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3C01, "F16 rounds to nearest even");
    t_ok(st_f32_to_f16(65520.0f) == 0x7C00 && st_f32_to_f16(65519.0f) == 0x7BFF && st_f32_to_f16(1e-9f) == 0 &&
         st_f32_to_f16(0x1p-25f) == 0 && st_f32_to_f16(0x1p-25f + 0x1p-35f) == 1, "F16 overflow and underflow");
    t_ok(st_bf16_to_f32(0x3F80) == 1.0f && st_bf16_to_f32(0xC049) == -3.140625f && st_f32_to_bf16(1.0f) == 0x3F80 &&
         st_f32_to_bf16(1.0f + 0x1p-8f) == 0x3F80 && st_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3F82 &&
         isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))) && st_f32_to_bf16(INFINITY) == 0x7F80, "BF16 conversions");

    /* F16/BF16 through a file */
    float v[5] = {1.0f, -2.5f, 0.1f, 1e-6f, 70000.0f}, g[5];
    int64_t s5[1] = {5};
    st_writer *w = st_writer_new();
    int rc = st_writer_add_f32(w, "h", ST_F16, 1, s5, v) | st_writer_add_f32(w, "b", ST_BF16, 1, s5, v) |
             st_writer_add_f32(w, "f", ST_F32, 1, s5, v);
    t_ok(rc == 0 && st_writer_add_f32(w, "i", ST_I32, 1, s5, v) == -1, "add_f32 takes F32/F16/BF16 only");
    t_ok(st_writer_write(w, tpath("half.safetensors")) == 0, "write half file");
    st_writer_free(w);
    st_file f;
    if (st_open(&f, tpath("half.safetensors"))) { t_ok(0, "open half file: %s", cd_errbuf()); return; }
    ok = st_read_f32(&f, "h", g, 1, s5) == 0;
    for (int i = 0; i < 5; i++) ok &= g[i] == st_f16_to_f32(st_f32_to_f16(v[i]));
    t_ok(ok && g[2] == 0.0999755859375f && isinf(g[4]), "F16 tensor read as float (0.1 -> %.9g)", g[2]);
    ok = st_read_f32(&f, "b", g, 1, s5) == 0;
    for (int i = 0; i < 5; i++) ok &= g[i] == st_bf16_to_f32(st_f32_to_bf16(v[i])) && fabsf(g[i] - v[i]) <= 0.004f * fabsf(v[i]);
    t_ok(ok, "BF16 tensor read as float (0.1 -> %.9g)", g[2]);
    ok = st_read_f32(&f, "f", g, 1, s5) == 0 && memcmp(g, v, sizeof v) == 0;
    t_ok(ok, "F32 tensor exact");
    st_close(&f);
}

static void test_bad_files(void) {
    unsigned char four[4] = {1, 2, 3, 4};
    write_raw(tpath("short.st"), four, 4);
    expect_open_error("4 bytes", tpath("short.st"), "8-byte", NULL);

    write_hdr(tpath("hugehdr.st"), "{}", 0);
    {   /* header length larger than the file */
        unsigned char b[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        write_raw(tpath("hugehdr.st"), b, 10);
    }
    expect_open_error("header length past the end", tpath("hugehdr.st"), "header length 255", "10 bytes");

    /* a header text and the data bytes after it; the message must hold part1 and part2 */
    static const struct {
        const char *what, *file, *hdr;
        size_t ndata;
        const char *part1, *part2;
    } bad[] = {
        {"broken JSON", "badjson.st", "{\"a\": {\"dtype\": \"F32\", ", 0, "not valid JSON", NULL},
        {"header is an array", "array.st", "[1, 2]", 0, "not a JSON object", NULL},
        {"trailing bytes", "trail.st", "{} xyz", 0, "trailing", NULL},
        {"unknown dtype", "dtype.st", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "'w'",
         "F8_E4M3"},
        {"missing dtype", "nodtype.st", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'", "dtype"},
        {"negative dimension", "negshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
         "'w'", "shape entry 0"},
        {"fractional dimension", "fracshape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}",
         8, "'w'", "shape entry 0"},
        {"one offset", "offs.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "'w'",
         "data_offsets"},
        {"end < begin", "revoffs.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "'w'",
         "begin <= end"},
        {"span != numel*size", "span.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24,
         "'w'", "[2, 3] needs 24"},
        {"data past the end", "past.st", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[0,32]}}", 16, "'w'",
         "only 16 bytes"},
        {"duplicate name", "dup.st",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, "'w'", "twice"},
        {"metadata value not a string", "meta.st", "{\"__metadata__\":{\"epoch\":3}}", 0, "epoch", "not a string"},
        {"entry not an object", "entry.st", "{\"w\":[1,2]}", 0, "'w'", "not an object"},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(bad); i++) {
        write_hdr(tpath(bad[i].file), bad[i].hdr, bad[i].ndata);
        expect_open_error(bad[i].what, tpath(bad[i].file), bad[i].part1, bad[i].part2);
    }
    expect_open_error("missing file", tpath("does_not_exist.safetensors"), "cannot open", NULL);

    /* a valid file cut short: the message names the first tensor past the end */
    int64_t s[1] = {100};
    float z[100] = {0};
    st_writer *w = st_writer_new();
    st_writer_add(w, "first", ST_F32, 1, s, z);
    st_writer_add(w, "second", ST_F32, 1, s, z);
    st_writer_write(w, tpath("cut.st"));
    st_writer_free(w);
    size_t len;
    char *buf = cd_read_file(tpath("cut.st"), &len);
    write_raw(tpath("cut.st"), buf, len - 10);
    free(buf);
    expect_open_error("truncated file", tpath("cut.st"), "'second'", "truncated");

    /* writer: unwritable destination names the path, leaves nothing */
    w = st_writer_new();
    st_writer_add(w, "a", ST_F32, 1, s, z);
    int rc = st_writer_write(w, "/nonexistent_dir_cldetr/x.safetensors");
    t_ok(rc == -1 && has(cd_errbuf(), "/nonexistent_dir_cldetr/x.safetensors"), "write to a missing folder: %s",
         cd_errbuf());
    st_writer_free(w);
}

/* Written by tools/reference/make_model_fixtures.py (safetensors_io.py), values documented there. */
static void test_python_fixture(const char *root) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/st_python.safetensors", root);
    st_file f;
    if (st_open(&f, path)) { t_ok(0, "open Python fixture: %s", cd_errbuf()); return; }
    t_ok(f.n_tensors == 7, "Python fixture has 7 tensors (%zu)", f.n_tensors);
    const char *note = st_meta(&f, "note");
    t_ok(st_meta(&f, "producer") && strcmp(st_meta(&f, "producer"), "safetensors_io.py") == 0 && note &&
         strcmp(note, "unicode ok: \xc3\xa9") == 0, "Python metadata (note = %s)", note ? note : "(none)");
    float a[6], c[5], d[3], gs;
    double b[4];
    int64_t e[4], u[3];
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s5[1] = {5}, s3[1] = {3}, s22[2] = {2, 2};
    int ok = st_read_f32(&f, "a.f32", a, 2, s23) == 0;
    for (int i = 0; i < 6; i++) ok &= a[i] == (float)((i - 2.5) * 0.375);
    t_ok(ok, "F32 from Python");
    ok = st_read_f64(&f, "b.f64", b, 1, s4) == 0 && b[0] == 1.0 / 3.0 && b[1] == -2.5e-10 && b[2] == M_PI &&
         b[3] == 1e100;
    t_ok(ok, "F64 from Python");
    ok = st_read_f32(&f, "c.f16", c, 1, s5) == 0 && c[0] == 1.0f && c[1] == -2.0f && c[2] == 65504.0f &&
         c[3] == 0x1p-24f && c[4] == 0.333251953125f;
    t_ok(ok, "F16 from Python");
    ok = st_read_f32(&f, "d.bf16", d, 1, s3) == 0 && d[0] == 1.0f && d[1] == -3.140625f && d[2] == 0.0078125f;
    t_ok(ok, "BF16 from Python");
    ok = st_read_i64(&f, "e.i64", e, 2, s22) == 0 && e[0] == -5 && e[1] == 0 && e[2] == (int64_t)1 << 40 && e[3] == 7;
    t_ok(ok, "I64 from Python");
    ok = st_read_i64(&f, "f.u8", u, 1, s3) == 0 && u[0] == 0 && u[1] == 1 && u[2] == 255;
    t_ok(ok, "U8 from Python");
    ok = st_read_f32(&f, "g.scalar", &gs, 0, NULL) == 0 && gs == 42.5f;
    t_ok(ok, "0-dim F32 from Python");
    st_close(&f);
}

/* The model fixtures open, and their headers hold the config metadata. */
static void test_model_fixtures(const char *root) {
    static const char *names[] = {"tiny_detr.safetensors", "tiny_detr_prenorm_bn.safetensors",
                                  "tiny_detr_r50_dc5.safetensors"};
    for (size_t i = 0; i < CD_ARRAY_LEN(names); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fixtures/nn/%s", root, names[i]);
        st_file f;
        if (st_open(&f, path)) { t_ok(0, "open %s: %s", names[i], cd_errbuf()); continue; }
        const st_tensor *t = st_find(&f, "backbone.0.body.conv1.weight");
        const st_tensor *q = st_find(&f, "query_embed.weight");
        const char *dm = st_meta(&f, "hidden_dim"), *nq = st_meta(&f, "num_queries");
        int ok = t && t->ndim == 4 && t->shape[1] == 3 && t->shape[2] == 7 && q && dm && nq &&
                 q->shape[0] == atoll(nq) && q->shape[1] == atoll(dm) && st_find(&f, "ref.boxes") &&
                 st_find(&f, "grad.class_embed.weight");
        t_ok(ok, "%s: %zu tensors, conv1 7x7, query_embed [%s, %s], refs and grads present", names[i], f.n_tensors,
             nq ? nq : "?", dm ? dm : "?");
        st_close(&f);
    }
}

int main(void) {
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    if (!t_tmpdir(tmpdir, sizeof tmpdir, "cldetr_st")) { perror("mkdtemp"); return 2; }
    test_round_trip();
    test_half();
    test_bad_files();
    if (root) {
        test_python_fixture(root);
        test_model_fixtures(root);
    } else {
        t_ok(0, "CLDETR_SOURCE_ROOT is not set (run through meson test)");
    }
    t_rmtree(tmpdir);
    return t_done();
}
