/* COCO file -> DETR training targets (official ConvertCocoPolysToMask), the
 * label <-> category mapping, and the checks of bad input. */
#include "dataset_internal.h"

#include "cldetr/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Raw category ids become labels directly, so they size the class head. */
#define MAX_RAW_CATEGORY_ID 100000

void data_opts_default(data_opts *o) {
    memset(o, 0, sizeof *o);
    o->contiguous_labels = 0;
    o->on_bad_sample = DATA_BAD_ERROR;
    o->quiet = 0;
}

char *data_image_path(const data_dataset *d, size_t i) {
    const char *f = d->coco.images[d->img[i]].file_name;
    size_t n = strlen(d->image_dir) + strlen(f) + 2;
    char *p = cd_xmalloc(n);
    snprintf(p, n, "%s/%s", d->image_dir, f);
    return p;
}

void data_note_skip(data_dataset *d, const char *msg) {
    pthread_mutex_lock(&d->lock);
    d->skipped++;
    if (!d->quiet) fprintf(stderr, "cldetr: warning: skipping %s\n", msg);
    pthread_mutex_unlock(&d->lock);
}

void data_note_bad_image(data_dataset *d, size_t i, const char *msg) {
    pthread_mutex_lock(&d->lock);
    if (!d->bad_image[i]) {
        d->bad_image[i] = 1;
        d->skipped++;
        if (!d->quiet) fprintf(stderr, "cldetr: warning: skipping %s\n", msg);
    }
    pthread_mutex_unlock(&d->lock);
}

/* A bad sample: -1 with the message under DATA_BAD_ERROR, else logged, 0. */
static int bad(data_dataset *d, const char *hint, const char *fmt, ...) CD_PRINTF(3, 4);
static int bad(data_dataset *d, const char *hint, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (d->on_bad == DATA_BAD_ERROR) return cd_seterr("%s; %s, or set on_bad_sample=skip to leave it out", msg, hint);
    data_note_skip(d, msg);
    return 0;
}

static int build_labels(data_dataset *d, int contiguous) {
    const coco_dataset *c = &d->coco;
    if (c->n_cats == 0)
        return cd_seterr("%s: the \"categories\" list is empty; it must list every class with its id and name", c->path);
    if (contiguous) {
        /* labels in increasing category id */
        size_t *ord = cd_xmalloc(c->n_cats * sizeof *ord);
        for (size_t i = 0; i < c->n_cats; i++) ord[i] = i;
        for (size_t i = 1; i < c->n_cats; i++)   /* insertion sort: category lists are short */
            for (size_t j = i; j > 0 && c->cats[ord[j - 1]].id > c->cats[ord[j]].id; j--) {
                size_t t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t;
            }
        d->num_classes = (int)c->n_cats;
        d->label_cat = cd_xmalloc(c->n_cats * sizeof *d->label_cat);
        d->label_name = cd_xmalloc(c->n_cats * sizeof *d->label_name);
        for (size_t i = 0; i < c->n_cats; i++) {
            d->label_cat[i] = c->cats[ord[i]].id;
            d->label_name[i] = c->cats[ord[i]].name;
        }
        free(ord);
        return 0;
    }
    int64_t max_id = -1;
    for (size_t i = 0; i < c->n_cats; i++) {
        int64_t id = c->cats[i].id;
        if (id < 0 || id > MAX_RAW_CATEGORY_ID)
            return cd_seterr("%s: category \"%s\" has id %lld; raw ids are used as labels and must be in "
                             "0..%d: use contiguous labels (data.contiguous_labels=1) instead",
                             c->path, c->cats[i].name, (long long)id, MAX_RAW_CATEGORY_ID);
        if (id > max_id) max_id = id;
    }
    d->num_classes = (int)max_id + 1;
    d->label_cat = cd_xmalloc((size_t)d->num_classes * sizeof *d->label_cat);
    d->label_name = cd_xcalloc((size_t)d->num_classes, sizeof *d->label_name);
    for (int l = 0; l < d->num_classes; l++) d->label_cat[l] = -1;
    for (size_t i = 0; i < c->n_cats; i++) {
        d->label_cat[c->cats[i].id] = c->cats[i].id;
        d->label_name[c->cats[i].id] = c->cats[i].name;
    }
    return 0;
}

static int label_of(const data_dataset *d, int64_t cat_id) {
    if (d->contiguous) {
        /* binary search over the increasing category ids */
        int lo = 0, hi = d->num_classes - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (d->label_cat[mid] == cat_id) return mid;
            if (d->label_cat[mid] < cat_id) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }
    if (cat_id < 0 || cat_id >= d->num_classes) return -1;
    return d->label_cat[cat_id] == cat_id ? (int)cat_id : -1;
}

data_dataset *data_open(const data_opts *o) {
    if (!o->ann_file || !o->image_dir) {
        cd_seterr("data: both the annotation file and the image folder must be given");
        return NULL;
    }
    data_dataset *d = cd_xcalloc(1, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    d->on_bad = o->on_bad_sample;
    d->quiet = o->quiet;
    d->contiguous = o->contiguous_labels != 0;
    d->image_dir = cd_xstrdup(o->image_dir);
    if (coco_load(&d->coco, o->ann_file)) { free(d->image_dir); free(d); return NULL; }
    const coco_dataset *c = &d->coco;
    if (c->n_images == 0) {
        cd_seterr("%s: the dataset has no images (the \"images\" list is empty)", c->path);
        goto fail;
    }
    if (build_labels(d, o->contiguous_labels)) goto fail;

    d->img = cd_xmalloc(c->n_images * sizeof *d->img);
    d->box_start = cd_xmalloc(c->n_images * sizeof *d->box_start);
    d->box_count = cd_xmalloc(c->n_images * sizeof *d->box_count);
    d->boxes = cd_xmalloc((c->n_anns + 1) * 4 * sizeof *d->boxes);
    d->labels = cd_xmalloc((c->n_anns + 1) * sizeof *d->labels);
    d->area = cd_xmalloc((c->n_anns + 1) * sizeof *d->area);
    size_t nb = 0;
    for (size_t ii = 0; ii < c->n_images; ii++) {
        const coco_image *im = &c->images[ii];
        d->img[d->n] = ii;
        char *path = data_image_path(d, d->n);
        if (access(path, R_OK) != 0) {
            int rc = bad(d, "check the image folder", "%s: image file not found or not readable (image id %lld in %s)",
                         path, (long long)im->id, c->path);
            free(path);
            if (rc) goto fail;
            continue;
        }
        free(path);
        d->box_start[d->n] = nb;
        /* no size in the file (0): clamp to the decoded size when loading */
        int sized = im->width > 0 && im->height > 0;
        float W = sized ? (float)im->width : INFINITY, H = sized ? (float)im->height : INFINITY;
        for (size_t a = im->ann_start; a < im->ann_start + im->ann_count; a++) {
            const coco_ann *an = &c->anns[a];
            if (an->iscrowd) continue;                       /* official: crowd boxes dropped */
            const double *bb = an->bbox;
            int label = label_of(d, an->category_id);
            if (label < 0) {
                if (bad(d, "add the category to \"categories\" or fix the id",
                        "%s: annotation id %lld (image id %lld): category_id %lld is not in \"categories\"",
                        c->path, (long long)an->id, (long long)im->id, (long long)an->category_id)) goto fail;
                continue;
            }
            if (!isfinite(bb[0]) || !isfinite(bb[1]) || !isfinite(bb[2]) || !isfinite(bb[3]) || bb[2] <= 0 || bb[3] <= 0) {
                if (bad(d, "fix or remove the annotation",
                        "%s: annotation id %lld (image id %lld): bbox [%g, %g, %g, %g] has a width or height <= 0",
                        c->path, (long long)an->id, (long long)im->id, bb[0], bb[1], bb[2], bb[3])) goto fail;
                continue;
            }
            /* float32 as the official tensors: xyxy = xy + wh, clamped */
            float x0 = (float)bb[0], y0 = (float)bb[1];
            float x1 = x0 + (float)bb[2], y1 = y0 + (float)bb[3];
            x0 = CD_MIN(CD_MAX(x0, 0.0f), W); x1 = CD_MIN(CD_MAX(x1, 0.0f), W);
            y0 = CD_MIN(CD_MAX(y0, 0.0f), H); y1 = CD_MIN(CD_MAX(y1, 0.0f), H);
            if (!(x1 > x0 && y1 > y0)) {
                if (bad(d, "fix or remove the annotation",
                        "%s: annotation id %lld (image id %lld): bbox [%g, %g, %g, %g] lies outside the %dx%d image",
                        c->path, (long long)an->id, (long long)im->id, bb[0], bb[1], bb[2], bb[3],
                        im->width, im->height)) goto fail;
                continue;
            }
            float *o4 = d->boxes + 4 * nb;
            o4[0] = x0; o4[1] = y0; o4[2] = x1; o4[3] = y1;
            d->labels[nb] = label;
            d->area[nb] = (float)an->area;
            nb++;
        }
        d->box_count[d->n] = nb - d->box_start[d->n];
        d->n++;
    }
    d->bad_image = cd_xcalloc(d->n ? d->n : 1, 1);
    if (d->n == 0) {
        cd_seterr("%s: no usable images: every image was left out as bad (see the warnings above)", c->path);
        goto fail;
    }
    return d;
fail:
    data_close(d);
    return NULL;
}

void data_close(data_dataset *d) {
    if (!d) return;
    coco_free(&d->coco);
    free(d->image_dir); free(d->img); free(d->box_start); free(d->box_count);
    free(d->boxes); free(d->labels); free(d->area);
    free(d->label_cat); free(d->label_name); free(d->bad_image);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

size_t data_size(const data_dataset *d) { return d->n; }
size_t data_num_boxes(const data_dataset *d) {
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) n += d->box_count[i];
    return n;
}
int data_num_classes(const data_dataset *d) { return d->num_classes; }
const coco_dataset *data_coco(const data_dataset *d) { return &d->coco; }
size_t data_coco_index(const data_dataset *d, size_t i) { return d->img[i]; }

int64_t data_label_category(const data_dataset *d, int label) {
    return label >= 0 && label < d->num_classes ? d->label_cat[label] : -1;
}

const char *data_label_name(const data_dataset *d, int label) {
    return label >= 0 && label < d->num_classes ? d->label_name[label] : NULL;
}

size_t data_skipped(const data_dataset *d) {
    pthread_mutex_lock((pthread_mutex_t *)&d->lock);
    size_t n = d->skipped;
    pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
    return n;
}

static void boxes_reserve(data_boxes *b, size_t n) {
    if (n <= b->cap) return;
    b->cap = n;
    b->boxes = cd_xrealloc(b->boxes, n * 4 * sizeof *b->boxes);
    b->labels = cd_xrealloc(b->labels, n * sizeof *b->labels);
    b->area = cd_xrealloc(b->area, n * sizeof *b->area);
}

void data_sample_boxes(const data_dataset *d, size_t i, data_boxes *b) {
    size_t s = d->box_start[i], n = d->box_count[i];
    b->n = n;
    if (n == 0) return;
    boxes_reserve(b, n);
    memcpy(b->boxes, d->boxes + 4 * s, n * 4 * sizeof *b->boxes);
    memcpy(b->labels, d->labels + s, n * sizeof *b->labels);
    memcpy(b->area, d->area + s, n * sizeof *b->area);
    b->n = n;
}

void data_boxes_free(data_boxes *b) {
    free(b->boxes); free(b->labels); free(b->area);
    memset(b, 0, sizeof *b);
}
