/* safetensors reader and writer; format and API in include/cldetr/safetensors.h. */
#include "cldetr/safetensors.h"
#include "cldetr/common.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct { const char *name; size_t size; int is_int; } dtypes[ST_NDTYPES] = {
    [ST_F64] = {"F64", 8, 0}, [ST_F32] = {"F32", 4, 0}, [ST_F16] = {"F16", 2, 0},
    [ST_BF16] = {"BF16", 2, 0}, [ST_I64] = {"I64", 8, 1}, [ST_I32] = {"I32", 4, 1},
    [ST_I16] = {"I16", 2, 1}, [ST_I8] = {"I8", 1, 1}, [ST_U8] = {"U8", 1, 1},
    [ST_BOOL] = {"BOOL", 1, 1},
};

/* A header larger than this is certainly not a weights file (the spec caps it at 100 MB). */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_NDTYPES ? dtypes[t].name : "?"; }
size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_NDTYPES ? dtypes[t].size : 0; }

/* ------------------------------------------------------------ conversions */
float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    float f;
    if (exp == 0) {                                  /* zero or subnormal: man * 2^-24 */
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31) x = sign | 0x7f800000u | (man << 13);          /* inf, NaN */
    else x = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &x, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t st_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);                /* overflow -> inf */
    if (e <= 0) {                                                  /* f16 subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;           /* a carry into exp is right */
    return (uint16_t)(sign | h);
}

uint16_t st_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);   /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static uint64_t ld_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Element i of a tensor as double (any dtype). */
static double elem_f64(const unsigned char *p, st_dtype t, size_t i) {
    p += i * dtypes[t].size;
    uint64_t u = 0;
    for (int k = (int)dtypes[t].size - 1; k >= 0; k--) u = (u << 8) | p[k];
    switch (t) {
    case ST_F64: { double d; memcpy(&d, &u, 8); return d; }
    case ST_F32: { uint32_t v = (uint32_t)u; float f; memcpy(&f, &v, 4); return f; }
    case ST_F16: return st_f16_to_f32((uint16_t)u);
    case ST_BF16: return st_bf16_to_f32((uint16_t)u);
    case ST_I64: return (double)(int64_t)u;
    case ST_I32: return (int32_t)(uint32_t)u;
    case ST_I16: return (int16_t)(uint16_t)u;
    case ST_I8: return (int8_t)(uint8_t)u;
    default: return (double)u;                       /* U8, BOOL */
    }
}

static int64_t elem_i64(const unsigned char *p, st_dtype t, size_t i) {
    p += i * dtypes[t].size;
    uint64_t u = 0;
    for (int k = (int)dtypes[t].size - 1; k >= 0; k--) u = (u << 8) | p[k];
    switch (t) {
    case ST_I64: return (int64_t)u;
    case ST_I32: return (int32_t)(uint32_t)u;
    case ST_I16: return (int16_t)(uint16_t)u;
    case ST_I8: return (int8_t)(uint8_t)u;
    default: return (int64_t)u;                      /* U8, BOOL */
    }
}

char *st_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ------------------------------------------------------------------ reader */
static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse_entry(st_file *f, const cJSON *e, st_tensor *t, size_t data_len) {
    const char *path = f->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return cd_seterr("%s: tensor '%s': header entry is not an object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd)) return cd_seterr("%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (!cJSON_IsArray(js)) return cd_seterr("%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return cd_seterr("%s: tensor '%s': \"data_offsets\" must be [begin, end]", path, name);
    int dt = -1;
    for (int k = 0; k < ST_NDTYPES; k++)
        if (strcmp(jd->valuestring, dtypes[k].name) == 0) dt = k;
    if (dt < 0)
        return cd_seterr("%s: tensor '%s': unsupported dtype '%s' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
                         path, name, jd->valuestring);
    t->dtype = (st_dtype)dt;
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS)
        return cd_seterr("%s: tensor '%s': %d dimensions, at most %d supported", path, name, nd, ST_MAX_DIMS);
    t->ndim = nd;
    size_t numel = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_uint(cJSON_GetArrayItem(js, i), &d))
            return cd_seterr("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, i);
        t->shape[i] = (int64_t)d;
        if (d && numel > SIZE_MAX / d / dtypes[dt].size)
            return cd_seterr("%s: tensor '%s': shape too large", path, name);
        numel *= (size_t)d;
    }
    t->numel = numel;
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &b) || !json_uint(cJSON_GetArrayItem(jo, 1), &en) || en < b)
        return cd_seterr("%s: tensor '%s': \"data_offsets\" must be two integers 0 <= begin <= end", path, name);
    if (en > data_len)
        return cd_seterr("%s: tensor '%s': data ends at byte %llu of the data section, which has only %zu bytes "
                         "(file truncated?)", path, name, (unsigned long long)en, data_len);
    size_t want = numel * dtypes[dt].size;
    if (en - b != want) {
        char sb[160];
        return cd_seterr("%s: tensor '%s': data_offsets span %llu bytes but %s %s needs %zu", path, name,
                         (unsigned long long)(en - b), dtypes[dt].name, st_shape_str(sb, sizeof sb, nd, t->shape), want);
    }
    t->offset = (size_t)b;
    t->nbytes = want;
    return 0;
}

static int parse_header(st_file *f, const cJSON *root, size_t data_len) {
    if (!cJSON_IsObject(root)) return cd_seterr("%s: header is not a JSON object", f->path);
    size_t n = 0;
    for (const cJSON *e = root->child; e; e = e->next) n++;
    f->tensors = cd_xcalloc(n, sizeof *f->tensors);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) return cd_seterr("%s: \"__metadata__\" is not an object", f->path);
            size_t m = 0;
            for (const cJSON *kv = e->child; kv; kv = kv->next) m++;
            f->meta_keys = cd_xcalloc(m, sizeof(char *));
            f->meta_vals = cd_xcalloc(m, sizeof(char *));
            for (const cJSON *kv = e->child; kv; kv = kv->next) {
                if (!cJSON_IsString(kv))
                    return cd_seterr("%s: \"__metadata__\" value of '%s' is not a string", f->path, kv->string);
                f->meta_keys[f->n_meta] = cd_xstrdup(kv->string);
                f->meta_vals[f->n_meta] = cd_xstrdup(kv->valuestring);
                f->n_meta++;
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors];
        t->name = cd_xstrdup(e->string);
        f->n_tensors++;
        if (parse_entry(f, e, t, data_len)) return -1;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return cd_seterr("%s: tensor '%s' appears twice in the header", f->path, f->tensors[i].name);
    return 0;
}

int st_open(st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = cd_xstrdup(path);
    f->buf = (unsigned char *)cd_read_file(path, &f->len);
    if (!f->buf) { st_close(f); return -1; }       /* cd_read_file's message names the path */
    if (f->len < 8) {
        cd_seterr("%s: not a safetensors file: %zu bytes, shorter than the 8-byte header length", path, f->len);
        st_close(f);
        return -1;
    }
    uint64_t hlen = ld_u64(f->buf);
    if (hlen > ST_MAX_HEADER || hlen > f->len - 8) {
        cd_seterr("%s: not a safetensors file or truncated: header length %llu but the file has %zu bytes",
                  path, (unsigned long long)hlen, f->len);
        st_close(f);
        return -1;
    }
    const char *hdr = (const char *)f->buf + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= hdr ? (size_t)(end - hdr) : 0;
        cd_seterr("%s: header is not valid JSON (error near byte %zu of the %llu-byte header)",
                  path, at, (unsigned long long)hlen);
        st_close(f);
        return -1;
    }
    for (const char *p = end; p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            cd_seterr("%s: header has trailing bytes after the JSON object (byte %zu)", path, (size_t)(p - hdr));
            cJSON_Delete(root);
            st_close(f);
            return -1;
        }
    f->data_start = 8 + (size_t)hlen;
    int rc = parse_header(f, root, f->len - f->data_start);
    cJSON_Delete(root);
    if (rc) { st_close(f); return -1; }
    return 0;
}

void st_close(st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_vals[i]); }
    free(f->tensors); free(f->meta_keys); free(f->meta_vals);
    free(f->buf); free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    st_tensor key = {.name = (char *)name};
    if (!f->n_tensors) return NULL;
    return bsearch(&key, f->tensors, f->n_tensors, sizeof key, cmp_tensor_name);
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

const void *st_data(const st_file *f, const st_tensor *t) { return f->buf + f->data_start + t->offset; }

/* Finds name and checks its shape against the expected one. */
static const st_tensor *lookup(const st_file *f, const char *name, int ndim, const int64_t *shape) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        cd_seterr("%s: tensor '%s' not found (the file has %zu tensors)", f->path, name, f->n_tensors);
        return NULL;
    }
    if (ndim < 0) return t;
    int same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        char a[160], b[160];
        cd_seterr("%s: tensor '%s' has shape %s, expected %s", f->path, name,
                  st_shape_str(a, sizeof a, t->ndim, t->shape), st_shape_str(b, sizeof b, ndim, shape));
        return NULL;
    }
    return t;
}

/* Every element of tensor `name` (with the shape given, ndim < 0: any) into dst
 * as one of four host types; integers must come from integer dtypes and fit. */
enum { AS_F64, AS_F32, AS_I64, AS_I32 };
static int read_as(const st_file *f, const char *name, int ndim, const int64_t *shape, void *dst, int as) {
    const st_tensor *t = lookup(f, name, ndim, shape);
    if (!t) return -1;
    int want_int = as == AS_I64 || as == AS_I32;
    if (want_int && !dtypes[t->dtype].is_int)
        return cd_seterr("%s: tensor '%s' has dtype %s, expected an integer dtype (I64, I32, I16, I8, U8, BOOL)",
                         f->path, name, dtypes[t->dtype].name);
    const unsigned char *p = st_data(f, t);
    for (size_t i = 0; i < t->numel; i++) {
        if (as == AS_F64) ((double *)dst)[i] = elem_f64(p, t->dtype, i);
        else if (as == AS_F32 && t->dtype == ST_F32) {       /* bit-exact, NaN payloads included */
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy((float *)dst + i, &u, 4);
        } else if (as == AS_F32) ((float *)dst)[i] = (float)elem_f64(p, t->dtype, i);
        else if (as == AS_I64) ((int64_t *)dst)[i] = elem_i64(p, t->dtype, i);
        else {
            int64_t v = elem_i64(p, t->dtype, i);
            if (v < INT32_MIN || v > INT32_MAX)
                return cd_seterr("%s: tensor '%s': element %zu = %lld does not fit in int32", f->path, name, i,
                                 (long long)v);
            ((int32_t *)dst)[i] = (int32_t)v;
        }
    }
    return 0;
}

int st_read_f64(const st_file *f, const char *name, double *dst, int ndim, const int64_t *shape) {
    return read_as(f, name, ndim, shape, dst, AS_F64);
}
int st_read_f32(const st_file *f, const char *name, float *dst, int ndim, const int64_t *shape) {
    return read_as(f, name, ndim, shape, dst, AS_F32);
}
int st_read_i64(const st_file *f, const char *name, int64_t *dst, int ndim, const int64_t *shape) {
    return read_as(f, name, ndim, shape, dst, AS_I64);
}
int st_read_i32(const st_file *f, const char *name, int32_t *dst, int ndim, const int64_t *shape) {
    return read_as(f, name, ndim, shape, dst, AS_I32);
}

/* ------------------------------------------------------------------ writer */
typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    const void *data;
    void *owned;            /* data when copied */
} st_wentry;

struct st_writer {
    st_wentry *e;
    size_t n, cap;
    char **mk, **mv;
    size_t nm;
};

st_writer *st_writer_new(void) { return cd_xcalloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) { free(w->e[i].name); free(w->e[i].owned); }
    for (size_t i = 0; i < w->nm; i++) { free(w->mk[i]); free(w->mv[i]); }
    free(w->e); free(w->mk); free(w->mv); free(w);
}

void st_writer_meta(st_writer *w, const char *key, const char *value) {
    for (size_t i = 0; i < w->nm; i++)
        if (strcmp(w->mk[i], key) == 0) { free(w->mv[i]); w->mv[i] = cd_xstrdup(value); return; }
    w->mk = cd_xrealloc(w->mk, (w->nm + 1) * sizeof(char *));
    w->mv = cd_xrealloc(w->mv, (w->nm + 1) * sizeof(char *));
    w->mk[w->nm] = cd_xstrdup(key);
    w->mv[w->nm] = cd_xstrdup(value);
    w->nm++;
}

static st_wentry *writer_entry(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape) {
    if (!name || !*name || strcmp(name, "__metadata__") == 0) {
        cd_seterr("safetensors writer: invalid tensor name '%s'", name ? name : "(null)");
        return NULL;
    }
    if ((unsigned)dtype >= ST_NDTYPES || ndim < 0 || ndim > ST_MAX_DIMS) {
        cd_seterr("safetensors writer: tensor '%s': bad dtype %d or ndim %d", name, (int)dtype, ndim);
        return NULL;
    }
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0) {
            cd_seterr("safetensors writer: tensor '%s' added twice", name);
            return NULL;
        }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            cd_seterr("safetensors writer: tensor '%s': negative dimension %lld", name, (long long)shape[i]);
            return NULL;
        }
        numel *= (size_t)shape[i];
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->e = cd_xrealloc(w->e, w->cap * sizeof *w->e);
    }
    st_wentry *e = &w->e[w->n++];
    memset(e, 0, sizeof *e);
    e->name = cd_xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = numel * dtypes[dtype].size;
    return e;
}

int st_writer_add_ref(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data) {
    st_wentry *e = writer_entry(w, name, dtype, ndim, shape);
    if (!e) return -1;
    e->data = data;
    return 0;
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data) {
    st_wentry *e = writer_entry(w, name, dtype, ndim, shape);
    if (!e) return -1;
    e->owned = cd_xmalloc(e->nbytes);
    if (e->nbytes) memcpy(e->owned, data, e->nbytes);
    e->data = e->owned;
    return 0;
}

int st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                      const float *data) {
    if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16)
        return cd_seterr("safetensors writer: tensor '%s': st_writer_add_f32 stores F32, F16 or BF16, not %s",
                         name, st_dtype_name(dtype));
    st_wentry *e = writer_entry(w, name, dtype, ndim, shape);
    if (!e) return -1;
    size_t n = e->nbytes / dtypes[dtype].size;
    unsigned char *p = cd_xmalloc(e->nbytes);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (dtype == ST_F32) memcpy(&u, &data[i], 4);
        else u = dtype == ST_F16 ? st_f32_to_f16(data[i]) : st_f32_to_bf16(data[i]);
        for (size_t k = 0; k < dtypes[dtype].size; k++) p[dtypes[dtype].size * i + k] = (unsigned char)(u >> (8 * k));
    }
    e->owned = p;
    e->data = p;
    return 0;
}

static char *writer_header(const st_writer *w) {
    cJSON *root = cJSON_CreateObject();
    if (w->nm) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; i < w->nm; i++) cJSON_AddStringToObject(m, w->mk[i], w->mv[i]);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_wentry *e = &w->e[i];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", dtypes[e->dtype].name);
        cJSON *s = cJSON_AddArrayToObject(t, "shape");
        for (int k = 0; k < e->ndim; k++) cJSON_AddItemToArray(s, cJSON_CreateNumber((double)e->shape[k]));
        cJSON *o = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + e->nbytes)));
        off += e->nbytes;
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) cd_fatal("out of host memory printing a safetensors header");
    return s;
}

/* Makes the rename durable: fsync the folder that holds path (best effort). */
static void sync_parent_dir(const char *path) {
    char *dir = cd_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) { fsync(fd); close(fd); }
    free(dir);
}

int st_writer_write(st_writer *w, const char *path) {
    char *hdr = writer_header(w);
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    size_t tlen = strlen(path) + 32;
    char *tmp = cd_xmalloc(tlen);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        cd_seterr("cannot create %s: %s", tmp, strerror(errno));
        free(hdr); free(tmp);
        return -1;
    }
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(hdr, 1, hlen, fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = w->e[i].nbytes == 0 || fwrite(w->e[i].data, 1, w->e[i].nbytes, fp) == w->e[i].nbytes;
    int err = ok ? 0 : errno;
    if (ok && (fflush(fp) != 0 || fsync(fileno(fp)) != 0)) { ok = 0; err = errno; }
    if (fclose(fp) != 0 && ok) { ok = 0; err = errno; }
    if (ok && rename(tmp, path) != 0) {
        err = errno;
        cd_seterr("cannot rename %s to %s: %s", tmp, path, strerror(err));
        unlink(tmp);
        free(hdr); free(tmp);
        return -1;
    }
    if (!ok) {
        cd_seterr("cannot write %s: %s", path, strerror(err ? err : EIO));
        unlink(tmp);
        free(hdr); free(tmp);
        return -1;
    }
    sync_parent_dir(path);
    free(hdr); free(tmp);
    return 0;
}
