/* The data layer: COCO-format datasets as DETR training targets, image decode,
 * DETR's augmentations, and batches (NCHW float + padding mask) made by
 * background worker threads.
 *
 * Knows nothing of the model or the config file: the caller fills data_opts,
 * augment_opts and loader_opts (every knob, with the official DETR default
 * given next to each field and set by the *_default functions).
 *
 * Boxes travel through the transforms as xyxy in pixels of the current image;
 * a batch holds them as cxcywh normalised by the transformed, unpadded size
 * (official DETR, datasets/transforms.py Normalize; not by the padded size). */
#ifndef CLDETR_DATA_H
#define CLDETR_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "cldetr/coco.h"

/* ---------------------------------------------------------------- dataset */

typedef enum {
    DATA_BAD_ERROR = 0,   /* stop with the file and the reason */
    DATA_BAD_SKIP = 1,    /* log it, count it, go on without it */
} data_bad_policy;

typedef struct {
    const char *ann_file;          /* COCO instances JSON (required) */
    const char *image_dir;         /* folder of the images' file_name (required) */
    int contiguous_labels;         /* 0 (official): label = raw category id, num_classes = max id + 1;
                                      1: labels 0..n_cats-1 in increasing category id */
    data_bad_policy on_bad_sample; /* DATA_BAD_ERROR. Bad samples: missing, corrupt or truncated
                                      image, image size not the one in the JSON (the sample is
                                      dropped); annotation with w or h <= 0, non-finite, lying
                                      outside the image, or of an unknown category (the
                                      annotation is dropped; the official loader drops the
                                      empty ones silently) */
    int quiet;                     /* 0: each skipped sample is logged on stderr */
} data_opts;

void data_opts_default(data_opts *o);

typedef struct data_dataset data_dataset;

/* Load the annotation file and build the training targets as the official
 * ConvertCocoPolysToMask: crowd annotations dropped, xywh -> xyxy, clamped to
 * the image, empty boxes removed, images without annotations kept. Checks that
 * each image file exists. Returns NULL with cd_errbuf() set on failure. */
data_dataset *data_open(const data_opts *o);
void data_close(data_dataset *d);

size_t data_size(const data_dataset *d);            /* usable images */
size_t data_num_boxes(const data_dataset *d);       /* boxes (targets) over the usable images */
int data_num_classes(const data_dataset *d);        /* labels are 0 .. num_classes-1 */
/* Label <-> COCO category: category id of a label (-1 if none, e.g. a gap in
 * raw ids) and its name (NULL if none). */
int64_t data_label_category(const data_dataset *d, int label);
const char *data_label_name(const data_dataset *d, int label);
const coco_dataset *data_coco(const data_dataset *d);
size_t data_coco_index(const data_dataset *d, size_t i);   /* sample i -> coco images[] index */
/* Bad samples met so far (annotations at open, images while loading). */
size_t data_skipped(const data_dataset *d);

/* ------------------------------------------------------ images and boxes */

typedef struct {
    int w, h;
    uint8_t *rgb;                  /* [h, w, 3] */
} data_image;

typedef struct {
    size_t n, cap;
    float *boxes;                  /* [n, 4] xyxy in pixels */
    int32_t *labels;               /* [n] */
    float *area;                   /* [n] pixels^2, follows resize and crop as officially */
} data_boxes;

/* Decode JPEG (baseline, progressive), PNG (8/16-bit, grey, alpha), BMP, ... to
 * RGB uint8 (alpha dropped, grey replicated). Truncated JPEGs are refused.
 * Returns 0, or -1 with cd_errbuf() "PATH: reason". */
int data_image_load(data_image *im, const char *path);
int data_image_decode(data_image *im, const void *bytes, size_t len, const char *name);
void data_image_free(data_image *im);
/* Write an image as PNG (stb_image_write); 0 or -1 with cd_errbuf(). */
int data_write_png(const char *path, const data_image *im);

/* Resize as PIL's BILINEAR (what torchvision's F.resize does on the PIL images
 * of the official loader): triangle filter widened by the scale when
 * shrinking (antialias), same fixed-point rounding, same bytes. In place. */
void data_image_resize(data_image *im, int w, int h);

/* Target from sample i of the dataset: boxes xyxy pixels (copied into b). */
void data_sample_boxes(const data_dataset *d, size_t i, data_boxes *b);
void data_boxes_free(data_boxes *b);

/* ----------------------------------------------------------- augmentation */

#define AUG_MAX_SCALES 32

typedef struct {
    int hflip;                        /* 1: RandomHorizontalFlip */
    double hflip_p;                   /* 0.5 */
    int scales[AUG_MAX_SCALES];       /* 480, 512, ..., 800 (11 values): RandomResize short sides */
    int n_scales;                     /* 11 */
    int max_size;                     /* 1333: cap of the long side (0 = none) */
    int select;                       /* 1: RandomSelect between plain resize and resize-crop-resize;
                                         0: always the plain resize */
    double select_p;                  /* 0.5: probability of the plain resize branch */
    int select_scales[AUG_MAX_SCALES];/* 400, 500, 600: first resize of the crop branch (no cap) */
    int n_select_scales;              /* 3 */
    int crop_min, crop_max;           /* 384, 600: RandomSizeCrop side range (clamped to the image) */
    int val_size, val_max_size;       /* 800, 1333: evaluation resize */
} augment_opts;

void augment_opts_default(augment_opts *o);

/* The official resize rule (get_size_with_aspect_ratio) in exact integer
 * arithmetic: short side -> size, long side truncated; if the long side would
 * pass max_size (> 0), size = round-half-even(max_size * short / long). */
void data_resize_rule(int w, int h, int size, int max_size, int *ow, int *oh);

/* Single transforms, exact on boxes (as datasets/transforms.py). */
void aug_hflip(data_image *im, data_boxes *b);
void aug_resize(data_image *im, data_boxes *b, int w, int h);
/* Crop region (top, left, h, w): boxes shifted, clipped, area recomputed,
 * boxes with zero width or height removed. */
void aug_crop(data_image *im, data_boxes *b, int top, int left, int h, int w);

/* Counter-based randomness: one stream per (seed, epoch, index). */
typedef struct { uint64_t s; } data_rng;
data_rng data_rng_make(uint64_t seed, uint64_t epoch, uint64_t index);
uint64_t data_rng_u64(data_rng *r);
double data_rng_uniform(data_rng *r);            /* [0, 1) */
int data_rng_int(data_rng *r, int lo, int hi);   /* uniform in [lo, hi], inclusive */

/* The whole pipeline: train (flip, RandomSelect(...)) or validation (resize). */
void augment_apply(const augment_opts *o, int train, data_rng *r, data_image *im, data_boxes *b);

/* ---------------------------------------------------------------- batches */

typedef struct {
    int64_t image_id;
    size_t index;                  /* sample index in the dataset */
    int orig_h, orig_w;            /* decoded image size */
    int h, w;                      /* transformed, unpadded size */
    size_t n;
    float *boxes;                  /* [n, 4] cxcywh normalised by (w, h, w, h) */
    int32_t *labels;               /* [n] */
    float *area;                   /* [n] in transformed pixels^2 */
} data_target;

typedef struct {
    size_t B, H, W;                /* H, W: largest transformed size of the batch */
    float *images;                 /* [B, 3, H, W] ImageNet-normalised, 0 in the padding */
    uint8_t *mask;                 /* [B, H, W] 1 = padding, 0 = image */
    data_target *targets;          /* [B] */
    size_t number;                 /* batch number within the epoch */
} data_batch;

typedef struct {
    size_t batch_size;             /* 2 per GPU in the official recipe */
    int workers;                   /* 2 (official num_workers); 0 = load in the caller's thread */
    int prefetch;                  /* 2: batches ready ahead of the consumer */
    int train;                     /* 1: training augmentation; 0: validation resize */
    int shuffle;                   /* 1 for training (epoch order from (seed, epoch)) */
    int drop_last;                 /* 1 for training */
    uint64_t seed;                 /* 42 */
    float mean[3], std[3];         /* ImageNet: 0.485 0.456 0.406 / 0.229 0.224 0.225 */
    /* one share of a data-parallel job's batches (0 and 1: the whole batch):
     * batch k of the epoch is the job's global batch k, images
     * [k * G, (k + 1) * G) of the epoch's order with G = shards * batch_size,
     * and this loader makes its images [shard * batch_size, (shard + 1) * batch_size).
     * The order and the augmentation come from (seed, epoch, sample) only, so
     * the global batch at each step is the same whatever the shard count. */
    int shard, shards;
} loader_opts;

void loader_opts_default(loader_opts *o, int train);

typedef struct data_loader data_loader;

data_loader *loader_create(data_dataset *d, const loader_opts *o, const augment_opts *aug);
void loader_destroy(data_loader *L);
size_t loader_num_batches(const data_loader *L);
/* Start an epoch: the order and every random choice come from (seed, epoch),
 * whatever the worker count. */
void loader_begin_epoch(data_loader *L, uint64_t epoch);
/* Next batch of the epoch: 1 with *out set (valid until the next call), 0 at
 * the end of the epoch, -1 with cd_errbuf() set (a bad sample under
 * DATA_BAD_ERROR). Under DATA_BAD_SKIP a bad image is left out of its batch
 * (B smaller; a batch left empty is skipped). */
int loader_next(data_loader *L, const data_batch **out);

/* Build the batch of the given samples in the caller's thread (what a worker
 * does); for tests and tools. Returns 0 or -1 with cd_errbuf(). */
int data_make_batch(data_dataset *d, const loader_opts *o, const augment_opts *aug,
                    uint64_t epoch, const size_t *samples, size_t n, data_batch *out);
void data_batch_free(data_batch *b);

/* ------------------------------------------------------- synthetic shapes */

typedef struct {
    const char *dir;               /* output folder */
    int n_train, n_val;            /* images per split */
    int size;                      /* 128: image side in pixels */
    uint64_t seed;                 /* 1 */
    int min_objects, max_objects;  /* 1, 4 */
    int progress;                  /* 1: progress lines on stderr for big splits */
} shapes_opts;

void shapes_opts_default(shapes_opts *o);
/* Classes (category ids 1..SHAPES_NUM_CLASSES). */
#define SHAPES_NUM_CLASSES 4
extern const char *const shapes_class_names[SHAPES_NUM_CLASSES];
/* Write DIR/train/NNNNNN.png, DIR/val/NNNNNN.png and DIR/annotations/{train,val}.json. Same seed,
 * same bytes. Returns 0 or -1 with cd_errbuf(). */
int shapes_generate(const shapes_opts *o);

#endif
