/* The dataset's insides, shared by dataset.c and loader.c. */
#ifndef CLDETR_DATA_DATASET_INTERNAL_H
#define CLDETR_DATA_DATASET_INTERNAL_H

#include <pthread.h>

#include "cldetr/data.h"

struct data_dataset {
    coco_dataset coco;
    char *image_dir;
    data_bad_policy on_bad;
    int quiet;
    int contiguous;            /* labels 0..n_cats-1 (else raw category ids) */
    size_t n;                  /* usable images */
    size_t *img;               /* [n] index into coco.images */
    size_t *box_start, *box_count;   /* [n] into the flat arrays below */
    float *boxes;              /* [total, 4] xyxy pixels, clamped to the JSON size */
    int32_t *labels;
    float *area;               /* the file's area, as officially kept */
    int num_classes;
    int64_t *label_cat;        /* [num_classes] category id of a label, -1 if none */
    const char **label_name;   /* [num_classes] points into coco.cats, NULL if none */
    pthread_mutex_t lock;
    size_t skipped;            /* bad samples met (under the lock) */
    uint8_t *bad_image;        /* [n] 1 once sample i's image was found bad and reported (under the lock) */
};

/* Path of sample i's image (caller frees). */
char *data_image_path(const data_dataset *d, size_t i);
/* Report a bad sample under DATA_BAD_SKIP: log (unless quiet) and count. */
void data_note_skip(data_dataset *d, const char *msg);
/* The same for sample i's image, met while loading: logged and counted the
 * first time only (every epoch, and a prefetch, meet it again). */
void data_note_bad_image(data_dataset *d, size_t i, const char *msg);

#endif
