/* COCO instances JSON -> coco_dataset (see include/cldetr/coco.h).
 *
 * Speed: COCO train2017 (448 MB, 860k annotations) is mostly segmentation
 * polygons, which neither training nor bbox evaluation reads. Before cJSON
 * parses the file, the value of every "segmentation" key is overwritten in the
 * buffer by the number 0 plus blanks (newlines kept, so line:col of any later
 * syntax error stay right); cJSON then builds a small tree. */
#include "cldetr/coco.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"

/* ---- id -> index hash map (open addressing, int64 keys) ---------------- */

typedef struct {
    int64_t *keys;
    long *vals;          /* -1 = empty slot */
    size_t mask;
} id_map;

struct coco_index {
    id_map images, cats;
};

static void id_map_init(id_map *m, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    m->keys = cd_xmalloc(cap * sizeof *m->keys);
    m->vals = cd_xmalloc(cap * sizeof *m->vals);
    for (size_t i = 0; i < cap; i++) m->vals[i] = -1;
    m->mask = cap - 1;
}

static void id_map_free(id_map *m) {
    free(m->keys); free(m->vals);
    m->keys = NULL; m->vals = NULL;
}

/* Insert key -> val; returns the value already stored for key, or -1 if new. */
static long id_map_put(id_map *m, int64_t key, long val) {
    size_t i = cd_mix64((uint64_t)key) & m->mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & m->mask;
    }
    m->keys[i] = key;
    m->vals[i] = val;
    return -1;
}

static long id_map_get(const id_map *m, int64_t key) {
    size_t i = cd_mix64((uint64_t)key) & m->mask;
    while (m->vals[i] >= 0) {
        if (m->keys[i] == key) return m->vals[i];
        i = (i + 1) & m->mask;
    }
    return -1;
}

/* ---- JSON parsing with file:line:col errors ----------------------------- */

/* Offset -> 1-based line and column (in bytes). */
static void offset_to_line_col(const char *buf, size_t off, size_t *line, size_t *col) {
    size_t l = 1;
    const char *p = buf, *end = buf + off, *line_start = buf;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        l++;
        line_start = ++p;
    }
    *line = l;
    *col = (size_t)(end - line_start) + 1;
}

static cJSON *parse_json_buffer(const char *path, const char *buf, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);   /* +1: the NUL, so trailing junk is an error */
    if (root) return root;
    /* return_parse_end gives the error position (thread-safe, unlike cJSON_GetErrorPtr). */
    size_t off = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
    size_t line, col;
    offset_to_line_col(buf, off, &line, &col);
    /* context: up to 12 bytes either side of the position, within its line
     * (cJSON's position can be one past the offending character) */
    const char *a = buf + off, *b = buf + off;
    while (a > buf && a[-1] != '\n' && buf + off - a < 12) a--;
    while (b < buf + len && *b != '\n' && *b != '\r' && b - (buf + off) < 12) b++;
    char near[32];
    size_t n = 0;
    for (const char *p = a; p < b; p++) near[n++] = (*p >= 32 && *p < 127) ? *p : '?';
    near[n] = '\0';
    if (len == 0 || strspn(buf, " \t\r\n") == len)
        cd_seterr("%s:%zu:%zu: JSON syntax error: the file is empty", path, line, col);
    else if (off >= len)
        cd_seterr("%s:%zu:%zu: JSON syntax error at the end of the file (truncated? unclosed [ or {?)",
                  path, line, col);
    else
        cd_seterr("%s:%zu:%zu: JSON syntax error near '%s'", path, line, col, near);
    return NULL;
}

void *cd_json_parse_file(const char *path) {
    size_t len;
    char *buf = cd_read_file(path, &len);
    if (!buf) return NULL;
    cJSON *root = parse_json_buffer(path, buf, len);
    free(buf);
    return root;
}

/* End of the JSON string starting at s (*s == '"'): the closing quote, or NULL. */
static char *string_end(char *s, const char *end) {
    for (char *p = s + 1; p < end; p++) {
        if (*p == '\\') { p++; continue; }
        if (*p == '"') return p;
    }
    return NULL;
}

/* Overwrite every "segmentation" value with `0` and blanks (see top). A value
 * that does not end where brackets balance is left for cJSON to report. */
static void blank_segmentations(char *buf, size_t len) {
    static const char key[] = "\"segmentation\"";
    const size_t klen = sizeof key - 1;
    char *p = buf, *end = buf + len;
    while (p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        char *q = string_end(p, end);
        if (!q) return;
        if ((size_t)(q + 1 - p) != klen || memcmp(p, key, klen) != 0) { p = q + 1; continue; }
        char *v = q + 1;
        while (v < end && strchr(" \t\r\n", *v)) v++;
        if (v >= end || *v != ':') { p = q + 1; continue; }
        v++;
        while (v < end && strchr(" \t\r\n", *v)) v++;
        if (v >= end || (*v != '[' && *v != '{')) { p = v; continue; }
        int depth = 0;
        char *e = v;
        for (; e < end; e++) {
            if (*e == '"') {
                e = string_end(e, end);
                if (!e) return;
            } else if (*e == '[' || *e == '{') {
                depth++;
            } else if (*e == ']' || *e == '}') {
                if (--depth == 0) break;
            }
        }
        if (e >= end) return;
        for (char *b = v; b <= e; b++)
            if (*b != '\n') *b = ' ';
        *v = '0';
        p = e + 1;
    }
}

/* ---- typed field access with messages ----------------------------------- */

const char *coco_json_type_name(const cJSON *it) {
    if (cJSON_IsString(it)) return "a string";
    if (cJSON_IsNumber(it)) return "a number";
    if (cJSON_IsArray(it)) return "a list";
    if (cJSON_IsObject(it)) return "an object";
    if (cJSON_IsBool(it)) return "a boolean";
    if (cJSON_IsNull(it)) return "null";
    return "an invalid value";
}

/* Integer-valued JSON number within +-2^53 (so that ids round-trip exactly). */
static int json_is_integer(const cJSON *it) {
    if (!cJSON_IsNumber(it)) return 0;
    double v = it->valuedouble;
    return isfinite(v) && v == floor(v) && fabs(v) <= 9007199254740992.0;
}

/* Required (or optional: *out keeps its value) integer field. ctx = "path: annotations[3]". */
static int get_int(const cJSON *obj, const char *key, int required, int64_t *out, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return required ? cd_seterr("%s: missing \"%s\"", ctx, key) : 0;
    if (!json_is_integer(it)) {
        if (cJSON_IsString(it))
            return cd_seterr("%s: \"%s\" must be an integer, got the string \"%.40s\"", ctx, key, it->valuestring);
        if (cJSON_IsNumber(it))
            return cd_seterr("%s: \"%s\" must be an integer, got %.17g", ctx, key, it->valuedouble);
        return cd_seterr("%s: \"%s\" must be an integer, got %s", ctx, key, coco_json_type_name(it));
    }
    *out = (int64_t)it->valuedouble;
    return 0;
}

static int get_number(const cJSON *obj, const char *key, int required, double *out, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return required ? cd_seterr("%s: missing \"%s\"", ctx, key) : 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return cd_seterr("%s: \"%s\" must be a number, got %s", ctx, key, coco_json_type_name(it));
    *out = it->valuedouble;
    return 0;
}

static int get_string(const cJSON *obj, const char *key, int required, const char **out, const char *ctx) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return required ? cd_seterr("%s: missing \"%s\"", ctx, key) : 0;
    if (!cJSON_IsString(it))
        return cd_seterr("%s: \"%s\" must be a string, got %s", ctx, key, coco_json_type_name(it));
    *out = it->valuestring;
    return 0;
}

/* A required top-level list (absent and !required: *out = NULL). */
static int get_list(const cJSON *root, const char *key, int required, const cJSON **out, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = NULL;
    if (!it) {
        return required ? cd_seterr("%s: missing the top-level \"%s\" list (is this a COCO instances file?)",
                                    path, key) : 0;
    }
    if (!cJSON_IsArray(it))
        return cd_seterr("%s: \"%s\" must be a list, got %s", path, key, coco_json_type_name(it));
    *out = it;
    return 0;
}

/* ---- the dataset -------------------------------------------------------- */

void coco_free(coco_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_images; i++) free(ds->images[i].file_name);
    for (size_t i = 0; i < ds->n_cats; i++) { free(ds->cats[i].name); free(ds->cats[i].supercategory); }
    free(ds->images); free(ds->anns); free(ds->cats); free(ds->path);
    if (ds->index) {
        id_map_free(&ds->index->images);
        id_map_free(&ds->index->cats);
        free(ds->index);
    }
    memset(ds, 0, sizeof *ds);
}

int coco_build_index(coco_dataset *ds) {
    const char *path = ds->path ? ds->path : "(dataset)";
    struct coco_index *ix = cd_xcalloc(1, sizeof *ix);
    id_map_init(&ix->images, ds->n_images);
    id_map_init(&ix->cats, ds->n_cats);
    int rc = 0;
    for (size_t i = 0; i < ds->n_images && !rc; i++) {
        long prev = id_map_put(&ix->images, ds->images[i].id, (long)i);
        if (prev >= 0)
            rc = cd_seterr("%s: images[%zu]: duplicate image id %lld (also images[%ld])", path, i,
                           (long long)ds->images[i].id, prev);
    }
    for (size_t i = 0; i < ds->n_cats && !rc; i++) {
        long prev = id_map_put(&ix->cats, ds->cats[i].id, (long)i);
        if (prev >= 0)
            rc = cd_seterr("%s: categories[%zu]: duplicate category id %lld (also categories[%ld])", path, i,
                           (long long)ds->cats[i].id, prev);
    }
    if (ds->index) {
        id_map_free(&ds->index->images);
        id_map_free(&ds->index->cats);
        free(ds->index);
    }
    ds->index = ix;
    return rc;
}

long coco_find_image(const coco_dataset *ds, int64_t image_id) {
    if (ds->index) return id_map_get(&ds->index->images, image_id);
    for (size_t i = 0; i < ds->n_images; i++)
        if (ds->images[i].id == image_id) return (long)i;
    return -1;
}

long coco_find_category(const coco_dataset *ds, int64_t category_id) {
    if (ds->index) return id_map_get(&ds->index->cats, category_id);
    for (size_t i = 0; i < ds->n_cats; i++)
        if (ds->cats[i].id == category_id) return (long)i;
    return -1;
}

/* Each object of a JSON list through one(ds, i, object, "PATH: what[i]"). */
typedef int (*object_fn)(coco_dataset *ds, size_t i, const cJSON *it, const char *ctx);
static int each_object(coco_dataset *ds, const cJSON *list, const char *path, const char *what, object_fn one) {
    char ctx[512];
    size_t i = 0;
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next, i++) {
        snprintf(ctx, sizeof ctx, "%s: %s[%zu]", path, what, i);
        if (!cJSON_IsObject(it)) return cd_seterr("%s: expected an object, got %s", ctx, coco_json_type_name(it));
        if (one(ds, i, it, ctx) < 0) return -1;
    }
    return 0;
}

static int load_image(coco_dataset *ds, size_t i, const cJSON *it, const char *ctx) {
    coco_image *im = &ds->images[i];
    ds->n_images = i + 1;
    const char *fname = NULL;
    int64_t w = 0, h = 0;
    if (get_int(it, "id", 1, &im->id, ctx) || get_string(it, "file_name", 1, &fname, ctx) ||
        get_int(it, "width", 0, &w, ctx) || get_int(it, "height", 0, &h, ctx))
        return -1;
    if (w < 0 || h < 0 || w > 1000000 || h > 1000000)
        return cd_seterr("%s: width/height must be in 0..1000000, got %lld x %lld", ctx, (long long)w, (long long)h);
    im->file_name = cd_xstrdup(fname);
    im->width = (int)w;
    im->height = (int)h;
    return 0;
}

static int load_category(coco_dataset *ds, size_t i, const cJSON *it, const char *ctx) {
    coco_category *c = &ds->cats[i];
    ds->n_cats = i + 1;
    const char *name = NULL, *super = "";
    if (get_int(it, "id", 1, &c->id, ctx) || get_string(it, "name", 1, &name, ctx) ||
        get_string(it, "supercategory", 0, &super, ctx))
        return -1;
    c->name = cd_xstrdup(name);
    c->supercategory = cd_xstrdup(super);
    return 0;
}

static int load_images(coco_dataset *ds, const cJSON *list, const char *path) {
    size_t n = (size_t)cJSON_GetArraySize(list);
    ds->images = cd_xcalloc(n ? n : 1, sizeof *ds->images);
    return each_object(ds, list, path, "images", load_image);
}

static int load_categories(coco_dataset *ds, const cJSON *list, const char *path) {
    size_t n = (size_t)cJSON_GetArraySize(list);
    ds->cats = cd_xcalloc(n ? n : 1, sizeof *ds->cats);
    return each_object(ds, list, path, "categories", load_category);
}

/* Parse one annotation into *a (image_index = index into images[]). */
static int parse_annotation(coco_ann *a, const cJSON *it, const coco_dataset *ds, const char *ctx) {
    if (!cJSON_IsObject(it)) return cd_seterr("%s: expected an object, got %s", ctx, coco_json_type_name(it));
    if (get_int(it, "id", 1, &a->id, ctx) || get_int(it, "image_id", 1, &a->image_id, ctx) ||
        get_int(it, "category_id", 1, &a->category_id, ctx))
        return -1;
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(it, "bbox");
    if (!bb) return cd_seterr("%s: missing \"bbox\" (a list [x, y, w, h])", ctx);
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4)
        return cd_seterr("%s: \"bbox\" must be a list of 4 numbers [x, y, w, h], got %s%s", ctx,
                         coco_json_type_name(bb), cJSON_IsArray(bb) ? " of another length" : "");
    int k = 0;
    for (const cJSON *v = bb->child; v; v = v->next, k++) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return cd_seterr("%s: \"bbox\"[%d] must be a number, got %s", ctx, k, coco_json_type_name(v));
        a->bbox[k] = v->valuedouble;
    }
    a->area = a->bbox[2] * a->bbox[3];
    if (get_number(it, "area", 0, &a->area, ctx)) return -1;
    const cJSON *crowd = cJSON_GetObjectItemCaseSensitive(it, "iscrowd");
    a->iscrowd = 0;
    if (crowd) {
        if (cJSON_IsBool(crowd)) a->iscrowd = cJSON_IsTrue(crowd);
        else if (json_is_integer(crowd) && (crowd->valuedouble == 0 || crowd->valuedouble == 1))
            a->iscrowd = (int)crowd->valuedouble;
        else
            return cd_seterr("%s: \"iscrowd\" must be 0 or 1, got %s", ctx, coco_json_type_name(crowd));
    }
    long img = coco_find_image(ds, a->image_id);
    if (img < 0)
        return cd_seterr("%s: image_id %lld is not in images", ctx, (long long)a->image_id);
    a->image_index = (size_t)img;
    if (coco_find_category(ds, a->category_id) < 0)
        return cd_seterr("%s: category_id %lld is not in categories", ctx, (long long)a->category_id);
    return 0;
}

/* Parse every annotation, then group them per image (counting sort: stable,
 * so file order is kept within an image), and reject duplicate ids. */
static int load_annotations(coco_dataset *ds, const cJSON *list, const char *path) {
    char ctx[512];
    size_t n = list ? (size_t)cJSON_GetArraySize(list) : 0, i = 0;
    coco_ann *tmp = cd_xmalloc((n ? n : 1) * sizeof *tmp);
    int rc = 0;
    for (const cJSON *it = list ? list->child : NULL; it; it = it->next, i++) {
        snprintf(ctx, sizeof ctx, "%s: annotations[%zu]", path, i);
        if (parse_annotation(&tmp[i], it, ds, ctx)) { rc = -1; break; }
    }
    if (!rc) {
        id_map ids;
        id_map_init(&ids, n);
        for (i = 0; i < n; i++) {
            long prev = id_map_put(&ids, tmp[i].id, (long)i);
            if (prev >= 0) {
                rc = cd_seterr("%s: annotations[%zu]: duplicate annotation id %lld (also annotations[%ld])",
                               path, i, (long long)tmp[i].id, prev);
                break;
            }
        }
        id_map_free(&ids);
    }
    if (rc) { free(tmp); return -1; }

    for (i = 0; i < ds->n_images; i++) ds->images[i].ann_count = 0;
    for (i = 0; i < n; i++) ds->images[tmp[i].image_index].ann_count++;
    size_t start = 0;
    for (i = 0; i < ds->n_images; i++) {
        ds->images[i].ann_start = start;
        start += ds->images[i].ann_count;
    }
    size_t *fill = cd_xcalloc(ds->n_images ? ds->n_images : 1, sizeof *fill);
    ds->anns = cd_xmalloc((n ? n : 1) * sizeof *ds->anns);
    for (i = 0; i < n; i++) {
        size_t im = tmp[i].image_index;
        ds->anns[ds->images[im].ann_start + fill[im]++] = tmp[i];
    }
    ds->n_anns = n;
    free(fill);
    free(tmp);
    return 0;
}

int coco_load(coco_dataset *ds, const char *json_path) {
    memset(ds, 0, sizeof *ds);
    size_t len;
    char *buf = cd_read_file(json_path, &len);
    if (!buf) return -1;
    blank_segmentations(buf, len);
    cJSON *root = parse_json_buffer(json_path, buf, len);
    free(buf);
    if (!root) return -1;

    ds->path = cd_xstrdup(json_path);
    const cJSON *images, *anns, *cats;
    int rc = 0;
    if (!cJSON_IsObject(root))
        rc = cd_seterr("%s: expected a COCO instances object {\"images\": [...], \"annotations\": [...], "
                       "\"categories\": [...]}, got %s%s", json_path, coco_json_type_name(root),
                       cJSON_IsArray(root) ? " (a results file?)" : "");
    else if (get_list(root, "images", 1, &images, json_path) || get_list(root, "categories", 1, &cats, json_path) ||
             get_list(root, "annotations", 0, &anns, json_path))
        rc = -1;
    else if (load_images(ds, images, json_path) || load_categories(ds, cats, json_path) ||
             coco_build_index(ds) || load_annotations(ds, anns, json_path))
        rc = -1;
    cJSON_Delete(root);
    if (rc) {
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", cd_errbuf());
        coco_free(ds);
        cd_seterr("%s", msg);
    }
    return rc;
}
