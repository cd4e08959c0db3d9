/* tests/loss/fixture.h — reader of the CDFIX001 fixture files written by
 * tools/reference/make_loss_fixtures.py (format in that script's docstring:
 * named float64 arrays with shapes). Header-only, for the loss tests; the
 * helpers are static inline so that a test not using one draws no warning. */
#ifndef CLDETR_TEST_LOSS_FIXTURE_H
#define CLDETR_TEST_LOSS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

typedef struct {
    char name[64];
    size_t ndim, dims[4], n;
    double *data;
} fx_array;

typedef struct {
    fx_array *a;
    size_t count;
} fx_file;

/* Load $CLDETR_SOURCE_ROOT/tests/fixtures/loss/<file>. Returns 0, or -1 with a
 * message on stderr (missing file, bad magic, truncated). */
static inline int fx_load(fx_file *fx, const char *file) {
    const char *root = getenv("CLDETR_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/loss/%s", root ? root : ".", file);
    size_t len;
    char *buf = cd_read_file(path, &len);
    if (!buf) { fprintf(stderr, "%s\n", cd_errbuf()); return -1; }
    size_t pos = 0;
#define FX_NEED(k) do { if (pos + (k) > len) goto truncated; } while (0)
    FX_NEED(12);
    if (memcmp(buf, "CDFIX001", 8) != 0) {
        fprintf(stderr, "%s: not a CDFIX001 fixture\n", path);
        free(buf);
        return -1;
    }
    uint32_t count;
    memcpy(&count, buf + 8, 4);
    pos = 12;
    fx->count = count;
    fx->a = calloc(count, sizeof *fx->a);
    for (uint32_t i = 0; i < count; i++) {
        fx_array *a = &fx->a[i];
        uint32_t nl, nd;
        FX_NEED(4); memcpy(&nl, buf + pos, 4); pos += 4;
        FX_NEED(nl);
        if (nl >= sizeof a->name) goto truncated;
        memcpy(a->name, buf + pos, nl); a->name[nl] = 0; pos += nl;
        FX_NEED(4); memcpy(&nd, buf + pos, 4); pos += 4;
        if (nd > 4) goto truncated;
        a->ndim = nd;
        a->n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            FX_NEED(8); memcpy(&v, buf + pos, 8); pos += 8;
            a->dims[d] = (size_t)v;
            a->n *= (size_t)v;
        }
        FX_NEED(8 * a->n);
        a->data = malloc((a->n ? a->n : 1) * sizeof(double));
        memcpy(a->data, buf + pos, 8 * a->n);
        pos += 8 * a->n;
    }
#undef FX_NEED
    free(buf);
    return 0;
truncated:
    fprintf(stderr, "%s: truncated or malformed at byte %zu\n", path, pos);
    free(buf);
    return -1;
}

/* The array with this name, or NULL (and a message) if absent. */
static inline const fx_array *fx_get(const fx_file *fx, const char *name) {
    for (size_t i = 0; i < fx->count; i++)
        if (strcmp(fx->a[i].name, name) == 0) return &fx->a[i];
    fprintf(stderr, "fixture has no array '%s'\n", name);
    return NULL;
}

static inline void fx_free(fx_file *fx) {
    for (size_t i = 0; i < fx->count; i++) free(fx->a[i].data);
    free(fx->a);
    fx->a = NULL;
    fx->count = 0;
}


#endif
