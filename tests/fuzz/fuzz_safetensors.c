/* Fuzz the safetensors reader (src/nn/safetensors.c over cJSON) through
 * st_open on a temporary file, from the fixture Python wrote and a file
 * written here by st_writer (every dtype, a scalar, an empty tensor,
 * metadata). Half the cases change only the JSON header and keep its length
 * field right (two thirds of those keep it valid JSON, values swapped), so the
 * entry checks see them. A file that opens must hold together: every tensor
 * inside the data section, found by name, readable as doubles (and integer
 * ones as integers, or refused with a message). */
#include "../check.h"
#include "fuzz.h"

#include "cldetr/safetensors.h"

static fz_buf seeds[2];
static size_t n_seeds;
static const char *const dict[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "\\u0000", "null", "-1", "0",
                                   "1e999", "18446744073709551615", "\"dtype\"", "\"shape\"", "\"data_offsets\"",
                                   "\"__metadata__\"", "\"F32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"",
                                   "\"I32\"", "\"I16\"", "\"I8\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", " "};

static uint64_t ld_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void make(fz_buf *out, uint64_t *r, void *ctx) {
    (void)ctx;
    const fz_buf *seed = &seeds[fz_below(r, n_seeds)];
    fz_set(out, seed->b, seed->n);
    uint64_t hlen = ld_u64(seed->b);
    if ((cd_rng_next(r) & 1) || hlen > seed->n - 8) {
        fz_mutate(out, r, dict, CD_ARRAY_LEN(dict));
        return;
    }
    /* the header alone, its length field kept right */
    fz_buf h = {0};
    fz_set(&h, seed->b + 8, (size_t)hlen);
    if (fz_below(r, 3) != 0) h.n = fz_json_swap(&h, 0, h.n, r);
    else fz_mutate(&h, r, dict, CD_ARRAY_LEN(dict));
    out->n = 8;
    for (int i = 0; i < 8; i++) out->b[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    fz_insert(out, 8, h.b, h.n);
    fz_insert(out, out->n, seed->b + 8 + hlen, seed->n - 8 - (size_t)hlen);
    free(h.b);
}

static int target(const uint8_t *data, size_t len, void *ctx) {
    (void)ctx;
    if (fz_write_file(fz_file, data, len) != 0) return cd_seterr("cannot write %s", fz_file);
    st_file f;
    if (st_open(&f, fz_file) != 0) return -1;
    int bad = 0;
    size_t data_len = f.len - f.data_start;
    for (size_t i = 0; i < f.n_tensors && !bad; i++) {
        const st_tensor *t = &f.tensors[i];
        if (t->nbytes != t->numel * st_dtype_size(t->dtype) || t->offset > data_len ||
            t->nbytes > data_len - t->offset || st_find(&f, t->name) != t) {
            t_diag("tensor '%s': %zu bytes at %zu of a %zu-byte data section", t->name, t->nbytes, t->offset,
                   data_len);
            bad = 1;
            break;
        }
        double *d = cd_xmalloc((t->numel ? t->numel : 1) * sizeof *d);
        float *fl = cd_xmalloc((t->numel ? t->numel : 1) * sizeof *fl);
        int64_t *i64 = cd_xmalloc((t->numel ? t->numel : 1) * sizeof *i64);
        int32_t *i32 = cd_xmalloc((t->numel ? t->numel : 1) * sizeof *i32);
        if (st_read_f64(&f, t->name, d, t->ndim, t->shape) != 0 || st_read_f32(&f, t->name, fl, -1, NULL) != 0) {
            t_diag("tensor '%s' opens but does not read: %s", t->name, cd_errbuf());
            bad = 1;
        }
        int is_int = t->dtype >= ST_I64 && t->dtype <= ST_BOOL;
        int rc64 = st_read_i64(&f, t->name, i64, -1, NULL);
        if (is_int != (rc64 == 0)) {
            t_diag("tensor '%s' (%s): st_read_i64 %s", t->name, st_dtype_name(t->dtype), rc64 ? "refused" : "read");
            bad = 1;
        }
        cd_seterr("%s", "");
        int rc32 = st_read_i32(&f, t->name, i32, -1, NULL);   /* may be out of the int32 range */
        if (rc32 != 0 && !cd_errbuf()[0]) {
            t_diag("tensor '%s': st_read_i32 refused without a message", t->name);
            bad = 1;
        }
        unsigned sum = 0;
        for (size_t k = 0; k < t->numel; k++) sum += (unsigned)(d[k] == d[k]);
        fz_sink = sum;
        free(d); free(fl); free(i64); free(i32);
    }
    for (size_t i = 0; i < f.n_meta && !bad; i++)
        if (!st_meta(&f, f.meta_keys[i])) {
            t_diag("metadata '%s' not found", f.meta_keys[i]);
            bad = 1;
        }
    st_close(&f);
    return bad;
}

/* Every dtype, a scalar and an empty tensor, two metadata entries. */
static int make_seed(fz_buf *seed) {
    char path[700];
    snprintf(path, sizeof path, "%s/seed.safetensors", fz_dir);
    st_writer *w = st_writer_new();
    st_writer_meta(w, "format", "pt");
    st_writer_meta(w, "note", "quote \" backslash \\ and \xC3\xA9");
    float f32[6] = {1, -2, 3.5f, 0, 1e-30f, -1e30f};
    double f64[2] = {1.0 / 3, -7};
    int64_t i64[3] = {-1, 0, INT64_MAX}, s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s0[2] = {0, 3};
    int32_t i32[2] = {INT32_MIN, 5};
    int16_t i16[2] = {-300, 300};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[3] = {0, 200, 255}, b[2] = {0, 1};
    int rc = st_writer_add_f32(w, "a.f32", ST_F32, 2, s23, f32) | st_writer_add_f32(w, "b.f16", ST_F16, 1, s3, f32) |
             st_writer_add_f32(w, "c.bf16", ST_BF16, 1, s2, f32) | st_writer_add(w, "d.f64", ST_F64, 1, s2, f64) |
             st_writer_add(w, "e.i64", ST_I64, 1, s3, i64) | st_writer_add(w, "f.i32", ST_I32, 1, s2, i32) |
             st_writer_add(w, "g.i16", ST_I16, 1, s2, i16) | st_writer_add(w, "h.i8", ST_I8, 1, s3, i8) |
             st_writer_add(w, "i.u8", ST_U8, 1, s3, u8) | st_writer_add(w, "j.bool", ST_BOOL, 1, s2, b) |
             st_writer_add(w, "k.scalar", ST_F32, 0, NULL, f32) | st_writer_add(w, "l.empty", ST_F32, 2, s0, f32);
    if (rc == 0) rc = st_writer_write(w, path);
    st_writer_free(w);
    if (rc == 0) rc = fz_seed_file(seed, path);
    remove(path);
    return rc;
}

int main(void) {
    if (fz_tmp_init(".safetensors") != 0) {
        printf("1..0 # SKIP cannot create a temporary folder\n");
        return 0;
    }
    size_t n = 0;
    if (fz_seed_file(&seeds[n], fz_source("tests/fixtures/nn/st_python.safetensors")) == 0) n++;
    if (make_seed(&seeds[n]) == 0) n++;
    else t_diag("the seed written here: %s", cd_errbuf());
    n_seeds = n;
    fz_spec spec = {"safetensors", seeds, n, dict, CD_ARRAY_LEN(dict), make, target, NULL, 500};
    t_ok(n == 2, "safetensors: %zu seeds (1 fixture, 1 written here)", n);
    if (n) fz_run(&spec);
    for (size_t i = 0; i < n; i++) free(seeds[i].b);
    fz_tmp_done();
    return t_done();
}
