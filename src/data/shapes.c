/* Synthetic COCO-format detection data: circles, squares, triangles and
 * crosses of varied colour and size, partly overlapping, on noisy or textured
 * backgrounds. Every image comes from its own random stream (seed, split,
 * index), so the same seed gives the same bytes. */
#include "cldetr/common.h"
#include "cldetr/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const shapes_class_names[SHAPES_NUM_CLASSES] = {"circle", "square", "triangle", "cross"};

#define MIN_SIDE_FRAC 0.12   /* visible box sides at least this fraction of the image */
#define MIN_VISIBLE 0.6      /* an occluded shape keeps at least this fraction of its pixels */
#define MAX_SHAPES 16

void shapes_opts_default(shapes_opts *o) {
    *o = (shapes_opts){.n_train = 2000, .n_val = 200, .size = 128, .seed = 1, .min_objects = 1, .max_objects = 4,
                       .progress = 1};
}

typedef struct {
    int cls;                  /* 0..3 = category id - 1 */
    double cx, cy, s, ang;    /* centre, size (pixels), rotation (triangle) */
} shape;

static int inside(const shape *sh, double px, double py) {
    double dx = px - sh->cx, dy = py - sh->cy, h = sh->s / 2;
    switch (sh->cls) {
    case 0: return dx * dx + dy * dy <= h * h;
    case 1: return fabs(dx) <= h && fabs(dy) <= h;
    case 2: {   /* triangle with circumradius 0.6 s, rotated by ang */
        double R = 0.6 * sh->s, vx[3], vy[3];
        for (int k = 0; k < 3; k++) {
            vx[k] = R * cos(sh->ang + k * 2.0943951023931953);
            vy[k] = R * sin(sh->ang + k * 2.0943951023931953);
        }
        int pos = 0, neg = 0;
        for (int k = 0; k < 3; k++) {
            int n = (k + 1) % 3;
            double c = (vx[n] - vx[k]) * (dy - vy[k]) - (vy[n] - vy[k]) * (dx - vx[k]);
            if (c > 0) pos++; else if (c < 0) neg++;
        }
        return !(pos && neg);
    }
    default: {  /* cross: two bars of thickness 0.34 s */
        double t = 0.17 * sh->s;
        return (fabs(dx) <= h && fabs(dy) <= t) || (fabs(dy) <= h && fabs(dx) <= t);
    }
    }
}

static double reach(const shape *sh) { return sh->cls == 2 ? 0.6 * sh->s : sh->s / 2; }

static uint8_t clamp8(double v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5); }

static double noise(data_rng *r, double amp) {   /* roughly gaussian: sum of uniforms */
    return amp * (data_rng_uniform(r) + data_rng_uniform(r) + data_rng_uniform(r) - 1.5);
}

static void background(data_rng *r, data_image *im, double bg[3]) {
    int S = im->w, kind = data_rng_int(r, 0, 2);
    double a[3], b[3];
    for (int c = 0; c < 3; c++) {
        a[c] = 30 + 195 * data_rng_uniform(r);
        b[c] = CD_MIN(255.0, CD_MAX(0.0, a[c] + noise(r, 120)));
        bg[c] = (a[c] + b[c]) / 2;
    }
    int period = data_rng_int(r, 6, 20);
    double gx = data_rng_uniform(r) - 0.5, gy = data_rng_uniform(r) - 0.5;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double t;
            if (kind == 0) t = 0.5;                                   /* flat + noise */
            else if (kind == 1) t = 0.5 + (gx * x + gy * y) / S;      /* gradient */
            else t = ((x / period + y / period) & 1) ? 0.2 : 0.8;     /* checker */
            t = CD_MIN(1.0, CD_MAX(0.0, t));
            for (int c = 0; c < 3; c++)
                im->rgb[((size_t)y * S + x) * 3 + c] = clamp8(a[c] * (1 - t) + b[c] * t + noise(r, 40));
        }
}

/* One image: draws its shapes, returns how many, with their tight visible boxes
 * (x0, y0, x1, y1 inclusive pixels) and classes. */
static int render(data_rng *r, const shapes_opts *o, data_image *im, int boxes[][4], int cls[]) {
    int S = o->size, n_want = data_rng_int(r, o->min_objects, o->max_objects), n = 0;
    double bg[3];
    background(r, im, bg);
    int16_t *id = cd_xmalloc((size_t)S * S * sizeof *id);
    uint8_t *cand = cd_xmalloc((size_t)S * S);
    for (size_t i = 0; i < (size_t)S * S; i++) id[i] = -1;
    long full[MAX_SHAPES], vis[MAX_SHAPES];
    shape shapes[MAX_SHAPES];
    for (int want = 0; want < n_want && n < MAX_SHAPES; want++) {
        for (int attempt = 0; attempt < 60; attempt++) {
            shape sh;
            sh.cls = data_rng_int(r, 0, SHAPES_NUM_CLASSES - 1);
            sh.s = S * (0.2 + 0.3 * data_rng_uniform(r));
            sh.ang = 6.283185307179586 * data_rng_uniform(r);
            double m = reach(&sh) + 1;
            sh.cx = m + (S - 2 * m) * data_rng_uniform(r);
            sh.cy = m + (S - 2 * m) * data_rng_uniform(r);
            long area = 0, lost[MAX_SHAPES] = {0};
            int bx0 = S, by0 = S, bx1 = -1, by1 = -1;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    size_t p = (size_t)y * S + x;
                    cand[p] = (uint8_t)inside(&sh, x + 0.5, y + 0.5);
                    if (!cand[p]) continue;
                    area++;
                    if (id[p] >= 0) lost[id[p]]++;
                    bx0 = CD_MIN(bx0, x); bx1 = CD_MAX(bx1, x); by0 = CD_MIN(by0, y); by1 = CD_MAX(by1, y);
                }
            if (bx1 - bx0 + 1 < MIN_SIDE_FRAC * S || by1 - by0 + 1 < MIN_SIDE_FRAC * S) continue;
            int ok = 1;
            for (int j = 0; j < n && ok; j++) ok = vis[j] - lost[j] >= MIN_VISIBLE * full[j];
            if (!ok) continue;
            /* the occluded shapes' visible boxes must stay big enough */
            for (int j = 0; j < n && ok; j++) {
                if (!lost[j]) continue;
                int x0 = S, y0 = S, x1 = -1, y1 = -1;
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        size_t p = (size_t)y * S + x;
                        if (id[p] != j || cand[p]) continue;
                        x0 = CD_MIN(x0, x); x1 = CD_MAX(x1, x); y0 = CD_MIN(y0, y); y1 = CD_MAX(y1, y);
                    }
                ok = x1 - x0 + 1 >= MIN_SIDE_FRAC * S && y1 - y0 + 1 >= MIN_SIDE_FRAC * S;
            }
            if (!ok) continue;
            double col[3], dist = 0;
            for (int tries = 0; tries < 20 && dist < 150; tries++) {
                dist = 0;
                for (int c = 0; c < 3; c++) { col[c] = 255 * data_rng_uniform(r); dist += fabs(col[c] - bg[c]); }
            }
            for (int j = 0; j < n; j++) vis[j] -= lost[j];
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    size_t p = (size_t)y * S + x;
                    if (!cand[p]) continue;
                    id[p] = (int16_t)n;
                    for (int c = 0; c < 3; c++) im->rgb[p * 3 + c] = clamp8(col[c] + noise(r, 24));
                }
            shapes[n] = sh;
            full[n] = vis[n] = area;
            n++;
            break;
        }
    }
    for (int j = 0; j < n; j++) {
        boxes[j][0] = S; boxes[j][1] = S; boxes[j][2] = -1; boxes[j][3] = -1;
        cls[j] = shapes[j].cls;
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int j = id[(size_t)y * S + x];
            if (j < 0) continue;
            boxes[j][0] = CD_MIN(boxes[j][0], x); boxes[j][1] = CD_MIN(boxes[j][1], y);
            boxes[j][2] = CD_MAX(boxes[j][2], x); boxes[j][3] = CD_MAX(boxes[j][3], y);
        }
    free(id); free(cand);
    return n;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return cd_seterr("%s exists and is not a folder", path);
    }
    return cd_seterr("cannot create folder %s: %s", path, strerror(errno));
}

static int write_split(const shapes_opts *o, const char *split, int split_no, int n_images) {
    char path[4096], json[4096];
    snprintf(path, sizeof path, "%s/%s", o->dir, split);
    if (make_dir(path)) return -1;
    snprintf(json, sizeof json, "%s/annotations/%s.json.part", o->dir, split);   /* renamed when both are whole */
    FILE *f = fopen(json, "w");
    if (!f) return cd_seterr("cannot write %s: %s", json, strerror(errno));
    fprintf(f, "{\"info\": {\"description\": \"cldetr synthetic shapes (%s split, seed %llu, %dx%d)\", "
               "\"version\": \"1.0\"},\n \"licenses\": [],\n \"categories\": [",
            split, (unsigned long long)o->seed, o->size, o->size);
    for (int c = 0; c < SHAPES_NUM_CLASSES; c++)
        fprintf(f, "%s\n  {\"id\": %d, \"name\": \"%s\", \"supercategory\": \"shape\"}", c ? "," : "", c + 1,
                shapes_class_names[c]);
    fprintf(f, "],\n \"images\": [");
    for (int i = 0; i < n_images; i++)
        fprintf(f, "%s\n  {\"id\": %d, \"file_name\": \"%06d.png\", \"width\": %d, \"height\": %d}", i ? "," : "",
                i + 1, i + 1, o->size, o->size);
    fprintf(f, "],\n \"annotations\": [");
    data_image im = {o->size, o->size, cd_xmalloc((size_t)o->size * o->size * 3)};
    int boxes[MAX_SHAPES][4], cls[MAX_SHAPES];
    long ann_id = 1;
    int every = n_images >= 500 ? n_images / 10 : 0, rc = 0;
    for (int i = 0; i < n_images && !rc; i++) {
        data_rng r = data_rng_make(o->seed, (uint64_t)split_no, (uint64_t)i);
        int n = render(&r, o, &im, boxes, cls);
        for (int j = 0; j < n; j++) {
            int w = boxes[j][2] - boxes[j][0] + 1, h = boxes[j][3] - boxes[j][1] + 1;
            fprintf(f, "%s\n  {\"id\": %ld, \"image_id\": %d, \"category_id\": %d, \"bbox\": [%d, %d, %d, %d], "
                       "\"area\": %d, \"iscrowd\": 0}",
                    ann_id > 1 ? "," : "", ann_id, i + 1, cls[j] + 1, boxes[j][0], boxes[j][1], w, h, w * h);
            ann_id++;
        }
        snprintf(path, sizeof path, "%s/%s/%06d.png", o->dir, split, i + 1);
        rc = data_write_png(path, &im);
        if (o->progress && every && (i + 1) % every == 0)
            fprintf(stderr, "make-shapes: %s %d/%d images\n", split, i + 1, n_images);
    }
    fprintf(f, "]\n}\n");
    free(im.rgb);
    if (ferror(f) | fclose(f)) return rc ? rc : cd_seterr("cannot write %s: %s", json, strerror(errno));
    return rc;
}

int shapes_generate(const shapes_opts *o) {
    if (o->size < 16 || o->size > 4096) return cd_seterr("make-shapes: --size must be in 16..4096, got %d", o->size);
    if (o->n_train < 0 || o->n_val < 0) return cd_seterr("make-shapes: image counts must be >= 0");
    if (o->min_objects < 1 || o->max_objects < o->min_objects || o->max_objects > MAX_SHAPES)
        return cd_seterr("make-shapes: need 1 <= --min-objects <= --max-objects <= %d, got %d and %d", MAX_SHAPES,
                         o->min_objects, o->max_objects);
    char path[4096];
    /* DIR may be a path whose folders do not exist yet (relative to the current folder) */
    if (cd_mkdir_p(o->dir) != 0)
        return cd_seterr("cannot create folder %s: %s", o->dir, strerror(errno));
    if (make_dir(o->dir)) return -1;
    snprintf(path, sizeof path, "%s/annotations", o->dir);
    if (make_dir(path)) return -1;
    if (write_split(o, "train", 0, o->n_train)) return -1;
    if (write_split(o, "val", 1, o->n_val)) return -1;
    /* the annotations appear only whole, train.json (what `cldetr train` looks for) last: a generation
     * cut short leaves no dataset, and the next run makes it again instead of reading half a file */
    static const char *const splits[2] = {"val", "train"};
    for (int i = 0; i < 2; i++) {
        char part[4096];
        snprintf(part, sizeof part, "%s/annotations/%s.json.part", o->dir, splits[i]);
        snprintf(path, sizeof path, "%s/annotations/%s.json", o->dir, splits[i]);
        if (rename(part, path)) return cd_seterr("cannot rename %s to %s: %s", part, path, strerror(errno));
    }
    return 0;
}
