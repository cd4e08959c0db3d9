/* COCO instances JSON (through cJSON): the one in-memory form of a COCO file,
 * shared by the data loader (src/data/) and COCO evaluation (src/eval/).
 *
 * coco_load keeps the file's content as it is (raw xywh boxes, area, iscrowd,
 * raw category ids); sanitizing for training (dropping crowd boxes, clamping,
 * removing empty boxes) is the data layer's job, and evaluation uses the raw
 * values as pycocotools does. */
#ifndef CLDETR_COCO_H
#define CLDETR_COCO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t id;
    char *file_name;
    int width, height;
    size_t ann_start, ann_count;   /* this image's annotations: anns[ann_start .. +ann_count) */
} coco_image;

typedef struct {
    int64_t id;
    int64_t image_id;
    size_t image_index;            /* index into images[] */
    int64_t category_id;
    double bbox[4];                /* x, y, w, h in pixels, as in the file */
    double area;                   /* the file's "area" (w*h if absent) */
    int iscrowd;
} coco_ann;

typedef struct {
    int64_t id;
    char *name;
    char *supercategory;
} coco_category;

typedef struct {
    char *path;                    /* the JSON file it came from */
    coco_image *images;    size_t n_images;
    coco_ann *anns;        size_t n_anns;     /* grouped by image, file order within an image */
    coco_category *cats;   size_t n_cats;
    struct coco_index *index;      /* id -> index tables (private to coco.c); NULL: linear search */
} coco_dataset;

/* Load a COCO instances file. Returns 0, or -1 with cd_errbuf() naming the file
 * and the problem: "x.json:12:5: JSON syntax error", "x.json: annotations[3]:
 * image_id 7 is not in images", missing or mistyped fields, duplicate ids.
 * Required: images[].id, .file_name; categories[].id, .name; annotations[].id,
 * .image_id, .category_id (one of categories), .bbox. Optional: width, height
 * (0 if absent), area, iscrowd (0/1/bool), the "annotations" list itself.
 * "segmentation" values are skipped unparsed (that is most of COCO's bytes). */
int coco_load(coco_dataset *ds, const char *json_path);
void coco_free(coco_dataset *ds);

/* Build the id lookup tables of a dataset filled in memory (coco_load does
 * this itself). Returns 0, or -1 with cd_errbuf() naming a duplicate image or
 * category id. Call again after changing images[] or cats[]. */
int coco_build_index(coco_dataset *ds);

/* Index of the image / category with this id, or -1 (O(1) with the index). */
long coco_find_image(const coco_dataset *ds, int64_t image_id);
long coco_find_category(const coco_dataset *ds, int64_t category_id);

/* Parse a JSON file with cJSON; on a syntax error returns NULL with cd_errbuf()
 * "PATH:LINE:COL: JSON syntax error near '...'". The result is a cJSON* (void*
 * here so that this header does not need cJSON's). */
void *cd_json_parse_file(const char *path);

/* "a string", "a number", "a list", "an object", "a boolean", "null": what a
 * JSON value is, for messages ("must be a number, got a string"). */
struct cJSON;
const char *coco_json_type_name(const struct cJSON *it);

#endif
