/* safetensors reader and writer (https://github.com/huggingface/safetensors).
 *
 * File layout: u64 little-endian N, then N bytes of UTF-8 JSON header, then
 * the data section. The header maps each tensor name to
 *   {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
 * (byte offsets relative to the start of the data section, row-major,
 * little-endian) plus an optional "__metadata__": {"key": "value", ...}.
 *
 * Reader: st_open reads the whole file and validates every entry against the
 * file length (dtype known, shape non-negative, end - begin == numel * size,
 * end <= data length, no duplicate names). The st_read_* functions convert
 * to the caller's type (F64/F32/F16/BF16 and integer dtypes to float/double;
 * integer dtypes to int64/int32) and check the shape the caller expects.
 * Every error returns -1 with a message in cd_errbuf() that names the file
 * and the tensor.
 *
 * Writer: collect tensors and metadata, then st_writer_write writes
 * path.tmp.<pid>, fsyncs it and renames it over path, so a crash never leaves
 * a half-written file under the final name. Tensors are written in the order
 * they were added; the header is padded with spaces to a multiple of 8. */
#ifndef CLDETR_SAFETENSORS_H
#define CLDETR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum {
    ST_F64, ST_F32, ST_F16, ST_BF16,
    ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_NDTYPES
} st_dtype;

const char *st_dtype_name(st_dtype t);   /* "F32", ... */
size_t st_dtype_size(st_dtype t);        /* bytes per element */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t offset;          /* byte offset in the data section */
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;
    unsigned char *buf;     /* the whole file */
    size_t len;
    size_t data_start;      /* 8 + header length */
    st_tensor *tensors;     /* sorted by name */
    size_t n_tensors;
    char **meta_keys, **meta_vals;
    size_t n_meta;
} st_file;

/* Open and validate. On error returns -1 (message names the file) and leaves
 * f closed (st_close on it is harmless). */
int st_open(st_file *f, const char *path);
void st_close(st_file *f);

/* NULL when absent (no error set). */
const st_tensor *st_find(const st_file *f, const char *name);
/* Metadata value or NULL. */
const char *st_meta(const st_file *f, const char *key);
/* Raw little-endian bytes of a tensor (the tensor must come from f). */
const void *st_data(const st_file *f, const st_tensor *t);

/* Read tensor `name` into dst, converting. ndim/shape is the shape the caller
 * expects: a mismatch is an error naming both shapes. ndim < 0 (shape may be
 * NULL) skips the shape check; then dst must hold st_find(...)->numel values.
 * A missing tensor is an error. */
int st_read_f32(const st_file *f, const char *name, float *dst, int ndim, const int64_t *shape);
int st_read_f64(const st_file *f, const char *name, double *dst, int ndim, const int64_t *shape);
/* Integer dtypes (I64/I32/I16/I8/U8/BOOL) only; a float tensor is an error.
 * st_read_i32 fails on a value outside the int32 range. */
int st_read_i64(const st_file *f, const char *name, int64_t *dst, int ndim, const int64_t *shape);
int st_read_i32(const st_file *f, const char *name, int32_t *dst, int ndim, const int64_t *shape);

/* Formats a shape as "[2, 3, 4]" into buf (for messages); returns buf. */
char *st_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

/* ------------------------------------------------------------------ writer */
typedef struct st_writer st_writer;

st_writer *st_writer_new(void);
void st_writer_free(st_writer *w);
/* Adds (or replaces) a __metadata__ entry. */
void st_writer_meta(st_writer *w, const char *key, const char *value);
/* Adds a tensor; copies data (numel * dtype size bytes, little-endian).
 * Returns -1 on a duplicate or empty name, a bad dtype or ndim. */
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                  const int64_t *shape, const void *data);
/* Same without the copy: data must stay valid until st_writer_write. */
int st_writer_add_ref(st_writer *w, const char *name, st_dtype dtype, int ndim,
                      const int64_t *shape, const void *data);
/* Stores float data as dtype F32, F16 or BF16 (round to nearest even). */
int st_writer_add_f32(st_writer *w, const char *name, st_dtype dtype, int ndim,
                      const int64_t *shape, const float *data);
/* Writes atomically (temp file + fsync + rename). -1 with a message naming
 * the path on failure; the temp file is removed. */
int st_writer_write(st_writer *w, const char *path);

/* Half-precision conversions (exposed for tests). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
uint16_t st_f32_to_bf16(float f);

#endif
