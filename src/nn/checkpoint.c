/* Checkpoints: parameters, buffers, optimizer state and run state in one
 * versioned, checksummed file, written atomically. The format is described in
 * include/cldetr/checkpoint.h.
 *
 * Writing: everything goes to "<path>.tmp" in the same folder, is flushed and
 * fsync'ed, then renamed over <path> and the folder fsync'ed; a kill at any
 * moment leaves either the old or the new file at <path>, never a mix (a stale
 * .tmp is overwritten by the next save).
 *
 * Reading: the header's sizes must add up to the file's length, the checksum
 * must match (one pass over the file), and every parameter of the model must
 * be in the table with its shape; only then is anything copied into the model
 * (a second pass, parameter by parameter, from the page cache). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/checkpoint.h"

#define HEADER_BYTES 136
#define ENTRY_BYTES 168
#define NAME_BYTES 112
#define CHUNK_FLOATS ((size_t)1 << 18)      /* 1 MiB staging for device reads and hashing */

static int host_is_little_endian(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put_u32(unsigned char *p, uint32_t x) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(x >> (8 * i)); }
static void put_u64(unsigned char *p, uint64_t x) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(x >> (8 * i)); }
static uint32_t get_u32(const unsigned char *p) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) x |= (uint32_t)p[i] << (8 * i);
    return x;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x |= (uint64_t)p[i] << (8 * i);
    return x;
}

/* A table entry as stored. */
typedef struct {
    char name[NAME_BYTES];
    uint32_t ndim, flags;
    uint64_t shape[4], off, n;
} ckpt_entry;

#define FLAG_TRAINABLE 1u
#define FLAG_BUFFER 2u

static uint32_t param_flags(const nn_param *p) {
    return (p->trainable ? FLAG_TRAINABLE : 0u) | (p->buffer ? FLAG_BUFFER : 0u) | ((uint32_t)(p->group & 0xff) << 8);
}

/* "[3, 64, 7, 7]" */
static const char *shape_str(char *buf, size_t cap, uint32_t ndim, const uint64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < ndim && d < 4 && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRIu64, d ? ", " : "", shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct {
    FILE *f;
    const char *tmp;
    uint64_t hash;
    int failed;
    int err;                    /* errno of the first failure */
} ck_writer;

static void w_bytes(ck_writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) { w->failed = 1; w->err = errno ? errno : EIO; return; }
    w->hash = cd_fnv1a(p, n, w->hash);
}

static void w_u64(ck_writer *w, uint64_t x) {
    unsigned char b[8];
    put_u64(b, x);
    w_bytes(w, b, 8);
}

/* n floats of a device buffer, through a host chunk. */
static void w_device(ck_writer *w, cd_device *dev, cd_mem src, size_t n, float *chunk) {
    for (size_t i = 0; i < n && !w->failed; i += CHUNK_FLOATS) {
        size_t k = CD_MIN(CHUNK_FLOATS, n - i);
        cd_read(dev, chunk, cd_at(src, i), k);
        w_bytes(w, chunk, k * sizeof(float));
    }
}

/* fsync the folder that holds path, so the rename itself is durable. */
static int sync_parent_dir(const char *path) {
    char *dir = cd_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = 0;
    if (fd < 0) rc = cd_seterr("checkpoint %s: cannot open its folder %s to sync it: %s", path, dir, strerror(errno));
    else {
        /* some file systems cannot fsync a folder (EINVAL): the rename is still done */
        if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
            rc = cd_seterr("checkpoint %s: fsync of its folder %s failed: %s", path, dir, strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

int ckpt_save(const char *path, const ckpt_meta *meta, nn_params *ps, const ckpt_moments *opt, cd_device *dev) {
    if (!host_is_little_endian()) return cd_seterr("checkpoint %s: big-endian hosts are not supported", path);
    if (!ps->finalized) cd_fatal("ckpt_save before nn_params_finalize (a bug in cldetr)");
    if (opt && opt->n != ps->n_trainable)
        cd_fatal("ckpt_save: optimizer state for %zu parameters, model has %zu (a bug in cldetr)",
                 opt->n, ps->n_trainable);
    const char *text = meta->config_text ? meta->config_text : "";
    uint64_t text_len = strlen(text);
    uint64_t n_moments = opt ? ps->n_trainable : 0;

    size_t tlen = strlen(path) + 5;
    char *tmp = cd_xmalloc(tlen);
    snprintf(tmp, tlen, "%s.tmp", path);
    ck_writer w = {.f = fopen(tmp, "wb"), .tmp = tmp, .hash = CD_FNV_SEED};
    if (!w.f) {
        int e = errno;
        cd_seterr("cannot write checkpoint %s: creating %s failed: %s (does the folder exist and is it writable?)",
                  path, tmp, strerror(e));
        free(tmp);
        return -1;
    }
    nn_params_download(ps, dev);

    unsigned char h[HEADER_BYTES] = {0};
    memcpy(h, CKPT_MAGIC, 8);
    put_u32(h + 8, CKPT_VERSION);
    put_u32(h + 12, (uint32_t)ps->n);
    put_u64(h + 16, meta->config_hash);
    put_u64(h + 24, meta->step);
    put_u64(h + 32, meta->epoch);
    for (int i = 0; i < CKPT_RNG_WORDS; i++) put_u64(h + 40 + 8 * i, meta->rng[i]);
    put_u64(h + 104, text_len);
    put_u64(h + 112, ps->total);
    put_u64(h + 120, ps->n_trainable);
    put_u64(h + 128, n_moments);
    w_bytes(&w, h, sizeof h);
    w_bytes(&w, text, text_len);

    for (int i = 0; i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        unsigned char e[ENTRY_BYTES] = {0};
        memcpy(e, p->name, strlen(p->name));          /* < NAME_BYTES: nn_param_add checks */
        put_u32(e + NAME_BYTES, (uint32_t)p->ndim);
        put_u32(e + NAME_BYTES + 4, param_flags(p));
        for (int d = 0; d < 4; d++) put_u64(e + NAME_BYTES + 8 + 8 * d, p->shape[d]);
        put_u64(e + NAME_BYTES + 40, p->off);
        put_u64(e + NAME_BYTES + 48, p->n);
        w_bytes(&w, e, sizeof e);
    }
    w_bytes(&w, ps->host, ps->total * sizeof(float));
    w_u64(&w, opt ? *opt->step : 0);
    if (opt) {
        float *chunk = cd_xmalloc(CHUNK_FLOATS * sizeof(float));
        w_device(&w, dev, opt->m, n_moments, chunk);
        w_device(&w, dev, opt->v, n_moments, chunk);
        free(chunk);
    }
    unsigned char sum[8];
    put_u64(sum, w.hash);
    if (!w.failed && fwrite(sum, 1, 8, w.f) != 8) { w.failed = 1; w.err = errno ? errno : EIO; }
    if (!w.failed && fflush(w.f) != 0) { w.failed = 1; w.err = errno; }
    if (!w.failed && fsync(fileno(w.f)) != 0) { w.failed = 1; w.err = errno; }
    if (fclose(w.f) != 0 && !w.failed) { w.failed = 1; w.err = errno; }
    if (w.failed) {
        cd_seterr("cannot write checkpoint %s: writing %s failed: %s (disk full?); the previous checkpoint is kept",
                  path, tmp, strerror(w.err));
        remove(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        cd_seterr("cannot write checkpoint %s: renaming %s over it failed: %s", path, tmp, strerror(e));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return sync_parent_dir(path);
}

uint64_t ckpt_file_bytes(const nn_params *ps, size_t text_len, int with_opt) {
    uint64_t n_moments = with_opt ? ps->n_trainable : 0;
    return HEADER_BYTES + (uint64_t)text_len + (uint64_t)ps->n * ENTRY_BYTES + (uint64_t)ps->total * 4 + 8 +
           n_moments * 8 + 8;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct {
    FILE *f;
    const char *path;
    uint64_t len;               /* file length */
    uint64_t hash;
    ckpt_meta meta;
    ckpt_entry *table;
    uint64_t data_pos, opt_pos; /* byte offsets of the data and the optimizer section */
    uint64_t adam_step;
} ck_reader;

static int r_bytes(ck_reader *r, void *dst, size_t n) {
    if (n && fread(dst, 1, n, r->f) != n)
        return cd_seterr("checkpoint %s: read failed: %s", r->path, ferror(r->f) ? strerror(errno) : "unexpected end");
    r->hash = cd_fnv1a(dst, n, r->hash);
    return 0;
}

static void reader_close(ck_reader *r) {
    if (r->f) fclose(r->f);
    free(r->table);
    ckpt_meta_free(&r->meta);
    memset(r, 0, sizeof *r);
}

/* Open, read and check the header, the config text and the table. */
static int reader_open(ck_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->hash = CD_FNV_SEED;
    if (!host_is_little_endian()) return cd_seterr("checkpoint %s: big-endian hosts are not supported", path);
    r->f = fopen(path, "rb");
    if (!r->f) return cd_seterr("cannot open checkpoint %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0) return cd_seterr("checkpoint %s: stat failed: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return cd_seterr("checkpoint %s is not a regular file", path);
    r->len = (uint64_t)st.st_size;
    if (r->len < HEADER_BYTES + 16)
        return cd_seterr("checkpoint %s is too short to be a checkpoint (%" PRIu64 " bytes; an interrupted copy?)",
                         path, r->len);

    unsigned char h[HEADER_BYTES];
    if (r_bytes(r, h, sizeof h)) return -1;
    if (memcmp(h, CKPT_MAGIC, 8) != 0)
        return cd_seterr("%s is not a cldetr checkpoint (it does not start with \"" CKPT_MAGIC "\")", path);
    ckpt_meta *m = &r->meta;
    m->version = get_u32(h + 8);
    if (m->version != CKPT_VERSION)
        return cd_seterr("checkpoint %s has format version %u; this cldetr reads version %u (%s)", path,
                         m->version, CKPT_VERSION, m->version > CKPT_VERSION ? "written by a newer cldetr" : "too old");
    m->n_params = get_u32(h + 12);
    m->config_hash = get_u64(h + 16);
    m->step = get_u64(h + 24);
    m->epoch = get_u64(h + 32);
    for (int i = 0; i < CKPT_RNG_WORDS; i++) m->rng[i] = get_u64(h + 40 + 8 * i);
    uint64_t text_len = get_u64(h + 104);
    m->total = get_u64(h + 112);
    m->n_trainable = get_u64(h + 120);
    m->n_moments = get_u64(h + 128);

    /* Every field in its range, and every size within the file before any is
     * multiplied or allocated; the first field out of range is named. */
    uint64_t L = r->len;
    const char *field = NULL, *why = NULL;
    uint64_t value = 0;
#define CK_RANGE(name, v, bad, rule) \
    if (!field && (bad)) { field = name; value = (uint64_t)(v); why = rule; }
    CK_RANGE("step", m->step, m->step >= CKPT_MAX_COUNT, "it must be below 2^62")
    CK_RANGE("epoch", m->epoch, m->epoch >= CKPT_MAX_COUNT, "it must be below 2^62")
    CK_RANGE("n_params", m->n_params, m->n_params == 0 || m->n_params > L / ENTRY_BYTES,
             "it must be at least 1, with a table entry of 168 bytes each in the file")
    CK_RANGE("text_len", text_len, text_len > L, "the config text must fit in the file")
    CK_RANGE("total", m->total, m->total == 0 || m->total > L / 4,
             "it must be at least 1, with 4 bytes a float in the file")
    CK_RANGE("n_trainable", m->n_trainable, m->n_trainable > m->total, "it must be at most total")
    CK_RANGE("n_moments", m->n_moments, m->n_moments != 0 && m->n_moments != m->n_trainable,
             "it must be 0 or n_trainable")
#undef CK_RANGE
    if (field)
        return cd_seterr("checkpoint %s is damaged: its header field %s = %" PRIu64 " is out of range (%s; "
                         "a file of %" PRIu64 " bytes)", path, field, value, why, L);
    uint64_t want = HEADER_BYTES + text_len + (uint64_t)m->n_params * ENTRY_BYTES + m->total * 4 + 8 +
                    m->n_moments * 8 + 8;
    if (want != L)
        return cd_seterr("checkpoint %s is %s: %" PRIu64 " bytes, its header promises %" PRIu64 "%s", path,
                         L < want ? "truncated" : "damaged (too long)", L, want,
                         L < want ? " (was the copy or the write interrupted?)" : "");

    m->config_text = cd_xmalloc(text_len + 1);
    if (r_bytes(r, m->config_text, text_len)) return -1;
    m->config_text[text_len] = 0;

    r->table = cd_xcalloc(CD_MAX(m->n_params, 1u), sizeof *r->table);
    for (uint32_t i = 0; i < m->n_params; i++) {
        unsigned char e[ENTRY_BYTES];
        if (r_bytes(r, e, sizeof e)) return -1;
        ckpt_entry *t = &r->table[i];
        memcpy(t->name, e, NAME_BYTES);
        t->ndim = get_u32(e + NAME_BYTES);
        t->flags = get_u32(e + NAME_BYTES + 4);
        for (int d = 0; d < 4; d++) t->shape[d] = get_u64(e + NAME_BYTES + 8 + 8 * d);
        t->off = get_u64(e + NAME_BYTES + 40);
        t->n = get_u64(e + NAME_BYTES + 48);
        if (memchr(t->name, 0, NAME_BYTES) == NULL || t->ndim > 4)
            return cd_seterr("checkpoint %s is damaged: table entry %u is malformed", path, i);
        uint64_t prod = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            if (t->shape[d] > m->total) { prod = UINT64_MAX; break; }
            prod *= t->shape[d];
            if (prod > m->total) break;
        }
        uint64_t limit = (t->flags & FLAG_TRAINABLE) ? m->n_trainable : m->total;
        if (prod != t->n || t->off > limit || t->n > limit - t->off)
            return cd_seterr("checkpoint %s is damaged: parameter '%s' has an impossible size or offset", path, t->name);
    }
    r->data_pos = HEADER_BYTES + text_len + (uint64_t)m->n_params * ENTRY_BYTES;
    r->opt_pos = r->data_pos + m->total * 4 + 8;       /* m; the adam step word is just before it */
    return 0;
}

/* Hash the rest of the file (data, optimizer state) and compare with the checksum. */
static int reader_verify(ck_reader *r) {
    uint64_t left = r->len - 8 - r->data_pos;
    unsigned char *buf = cd_xmalloc(CHUNK_FLOATS * sizeof(float));
    int rc = 0;
    while (left > 0 && rc == 0) {
        size_t k = (size_t)CD_MIN(left, (uint64_t)CHUNK_FLOATS * sizeof(float));
        rc = r_bytes(r, buf, k);
        left -= k;
    }
    free(buf);
    if (rc) return -1;
    uint64_t computed = r->hash;
    unsigned char sum[8];
    if (fread(sum, 1, 8, r->f) != 8) return cd_seterr("checkpoint %s: read failed at its checksum", r->path);
    uint64_t stored = get_u64(sum);
    if (stored != computed)
        return cd_seterr("checkpoint %s is damaged: checksum mismatch (stored %016" PRIx64 ", computed %016" PRIx64
                         "); use an older checkpoint", r->path, stored, computed);
    unsigned char st[8];
    if (fseeko(r->f, (off_t)(r->opt_pos - 8), SEEK_SET) != 0 || fread(st, 1, 8, r->f) != 8)
        return cd_seterr("checkpoint %s: read failed: %s", r->path, strerror(errno));
    r->adam_step = get_u64(st);
    return 0;
}

static void give_meta(ck_reader *r, ckpt_meta *meta) {
    if (!meta) return;
    *meta = r->meta;
    r->meta.config_text = NULL;             /* now the caller's */
}

int ckpt_read_meta(const char *path, ckpt_meta *meta) {
    ck_reader r;
    int rc = reader_open(&r, path);
    if (rc == 0) give_meta(&r, meta);
    reader_close(&r);
    return rc;
}

void ckpt_meta_free(ckpt_meta *meta) {
    if (!meta) return;
    free(meta->config_text);
    meta->config_text = NULL;
}

/* Each model parameter's entry in the file, or -1 with the first mismatch named. */
static int match_params(ck_reader *r, const nn_params *ps, int with_opt, uint32_t *match) {
    char a[96], b[96];
    for (int i = 0; i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        uint32_t j = (uint32_t)i < r->meta.n_params && !strcmp(r->table[i].name, p->name) ? (uint32_t)i : UINT32_MAX;
        for (uint32_t k = 0; j == UINT32_MAX && k < r->meta.n_params; k++)
            if (!strcmp(r->table[k].name, p->name)) j = k;
        uint64_t shape[4];
        for (int d = 0; d < 4; d++) shape[d] = p->shape[d];
        if (j == UINT32_MAX)
            return cd_seterr("checkpoint %s does not fit the model: it has no parameter '%s' %s "
                             "(%u tensors in the file, %d in the model: written with another model config?)",
                             r->path, p->name, shape_str(a, sizeof a, (uint32_t)p->ndim, shape),
                             r->meta.n_params, ps->n);
        const ckpt_entry *t = &r->table[j];
        int same = t->ndim == (uint32_t)p->ndim;
        for (uint32_t d = 0; same && d < t->ndim; d++) same = t->shape[d] == shape[d];
        if (!same)
            return cd_seterr("checkpoint %s does not fit the model: parameter '%s' has shape %s in the file, "
                             "%s in the model (written with another model config?)", r->path, p->name,
                             shape_str(a, sizeof a, t->ndim, t->shape),
                             shape_str(b, sizeof b, (uint32_t)p->ndim, shape));
        if (with_opt && !!(t->flags & FLAG_TRAINABLE) != !!p->trainable)
            return cd_seterr("checkpoint %s cannot resume this model: parameter '%s' is %s in the file and %s in "
                             "the model (model.freeze_backbone or train.lr_backbone changed?)", r->path, p->name,
                             (t->flags & FLAG_TRAINABLE) ? "trained" : "frozen", p->trainable ? "trained" : "frozen");
        match[i] = j;
    }
    if (r->meta.n_params != (uint32_t)ps->n) {
        /* every model parameter was found, so the file has more: name the first extra */
        for (uint32_t k = 0; k < r->meta.n_params; k++)
            if (nn_param_find(ps, r->table[k].name) < 0)
                return cd_seterr("checkpoint %s does not fit the model: it holds parameter '%s', which the model "
                                 "lacks (written with another model config?)", r->path, r->table[k].name);
        return cd_seterr("checkpoint %s is damaged: a parameter name appears twice in its table", r->path);
    }
    return 0;
}

static int read_at(ck_reader *r, uint64_t pos, void *dst, size_t n) {
    if (fseeko(r->f, (off_t)pos, SEEK_SET) != 0 || fread(dst, 1, n, r->f) != n)
        return cd_seterr("checkpoint %s: read failed: %s", r->path, strerror(errno));
    return 0;
}

int ckpt_load(const char *path, ckpt_meta *meta, nn_params *ps, const ckpt_moments *opt, cd_device *dev) {
    if (!ps->finalized) cd_fatal("ckpt_load before nn_params_finalize (a bug in cldetr)");
    ck_reader r;
    uint32_t *match = cd_xcalloc(CD_MAX(ps->n, 1), sizeof *match);
    float *buf = NULL;
    if (opt && opt->n != ps->n_trainable)
        cd_fatal("ckpt_load: optimizer state for %zu parameters, model has %zu (a bug in cldetr)",
                 opt->n, ps->n_trainable);
    /* damage first (a flipped byte in a name is damage, not another config) */
    int rc = reader_open(&r, path);
    if (rc == 0) rc = reader_verify(&r);
    if (rc == 0) rc = match_params(&r, ps, opt != NULL, match);
    if (rc == 0 && opt && r.meta.n_moments == 0)
        rc = cd_seterr("checkpoint %s holds no optimizer state (saved as weights only): it cannot resume "
                       "training; use it as model.init instead", path);

    /* Every check passed: copy into the model, parameter by parameter (the
     * file's layout may differ from the model's if the registration order did). */
    size_t maxn = 1;
    for (int i = 0; i < ps->n; i++) maxn = CD_MAX(maxn, ps->p[i].n);
    if (rc == 0) buf = cd_xmalloc(maxn * sizeof(float));
    for (int i = 0; rc == 0 && i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        const ckpt_entry *t = &r.table[match[i]];
        rc = read_at(&r, r.data_pos + t->off * 4, nn_param_host(ps, i), p->n * sizeof(float));
        if (rc || !opt || !p->trainable) continue;
        rc = read_at(&r, r.opt_pos + t->off * 4, buf, p->n * sizeof(float));
        if (rc == 0) cd_write(dev, cd_at(opt->m, p->off), buf, p->n);
        if (rc == 0) rc = read_at(&r, r.opt_pos + (r.meta.n_moments + t->off) * 4, buf, p->n * sizeof(float));
        if (rc == 0) cd_write(dev, cd_at(opt->v, p->off), buf, p->n);
    }
    if (rc == 0) {
        nn_params_upload(ps, dev);
        if (opt) *opt->step = r.adam_step;
        give_meta(&r, meta);
    }
    free(buf);
    free(match);
    reader_close(&r);
    return rc;
}

/* Rows of class_embed.bias in a checkpoint's parameter table (train.h, format
 * version 1: 136-byte header, config text, 168-byte entries name[112], ndim,
 * flags, shape[4], off, n) minus one: the model's num_classes. */
int ckpt_num_classes(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return cd_seterr("%s: cannot open: %s", path, strerror(errno));
    unsigned char h[136], e[168];
    int rc = -1;
    if (fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, CKPT_MAGIC, 8)) {
        uint32_t n_params = 0;
        uint64_t text_len = 0;
        for (int i = 3; i >= 0; i--) n_params = n_params << 8 | h[12 + i];
        for (int i = 7; i >= 0; i--) text_len = text_len << 8 | h[104 + i];
        if (fseek(f, (long)(136 + text_len), SEEK_SET) == 0)
            for (uint32_t k = 0; k < n_params && fread(e, 1, sizeof e, f) == sizeof e; k++) {
                if (strncmp((const char *)e, "class_embed.bias", 112)) continue;
                uint64_t rows = 0;
                for (int i = 7; i >= 0; i--) rows = rows << 8 | e[120 + i];
                rc = rows >= 2 && rows <= 1000001 ? (int)rows - 1 : -1;
                break;
            }
    }
    fclose(f);
    if (rc < 0) cd_seterr("%s: no class_embed.bias in the checkpoint's parameter table", path);
    return rc;
}
