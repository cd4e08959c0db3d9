/* Inference outside training: a trained model opened from a run folder, a
 * checkpoint or a safetensors weights file, the evaluation pipeline of a run's
 * config (dataset splits, the validation loader), and detections of single
 * images of any size, and a model run over a whole dataset split. Used by
 * `cldetr eval`, `cldetr predict` and the trainer's validation
 * (src/app/infer.c, src/app/infer_dataset.c).
 *
 * One image goes through the official evaluation transform: resize with the
 * official rule (shorter side -> augment.val_size, longer side capped at
 * augment.val_max_size; PIL-exact bilinear), x/255 then ImageNet mean/std
 * (augment.mean, augment.std), no padding (batch of one); the forward runs in
 * eval mode (no dropout, no tape) and the final decoder layer is
 * post-processed as the official PostProcess to pixels of the original image. */
#ifndef CLDETR_INFER_H
#define CLDETR_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "cldetr/config.h"
#include "cldetr/setup.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/device.h"
#include "cldetr/cocoeval.h"
#include "cldetr/loss.h"
#include "cldetr/nn.h"

typedef struct {
    config cfg;                   /* the config the model was trained with */
    cd_device *dev;
    detr_model model;
    nn_ctx ctx;                   /* eval mode: training = 0, record = 0 */
    int num_classes;              /* labels 0 .. num_classes-1 (logits have num_classes + 1) */
    char **class_names;           /* [num_classes]: names from the dataset's categories, NULL = unknown */
    int64_t *label_cat;           /* [num_classes]: COCO category id of each label, -1 = unknown */
    int have_names;               /* 1: the dataset's categories were read */
    char weights[4096];           /* the file the weights came from */
    char run[4096];               /* the run folder, or "" */
    uint64_t step;                /* training step of the checkpoint (0 for safetensors) */
} infer_model;

/* The checkpoint `which` of a run folder: "best" (best.ckpt), "last"
 * (last.ckpt), NULL (best.ckpt, else last.ckpt) or a file path. Writes the
 * path to out and a short tag for output names to tag ("best", "last", or the
 * file's name without .ckpt). Returns 0, or -1 with cd_errbuf(): run is not a
 * run folder (no config.ini), or the checkpoint is missing. */
int infer_find_checkpoint(char *out, size_t n_out, char *tag, size_t n_tag, const char *run, const char *which);

/* Open a run folder: its config.ini, the checkpoint chosen as in
 * infer_find_checkpoint, the device of the config (CLDETR_DEVICE overrides),
 * the model (num_classes from the checkpoint's class head) with the weights
 * loaded, and the class names of the config's dataset when it can be read.
 * `log` (may be NULL) gets one line saying what was opened and, when the
 * dataset is missing, that names are unknown. Returns 0, or -1 with cd_errbuf(). */
int infer_open_run(infer_model *im, const char *run, const char *which, FILE *log);

/* Open a weights file: a cldetr checkpoint (.ckpt: the config stored in it is
 * used when config_path is NULL) or a safetensors file under the official (or
 * HF) DETR names (the config from config_path, else the "config" metadata
 * that `cldetr export` writes; num_classes from its class head). Returns 0,
 * or -1 with cd_errbuf(). */
int infer_open_weights(infer_model *im, const char *weights, const char *config_path, FILE *log);

void infer_close(infer_model *im);

/* Name of label l: the dataset's category name, or "class l" written to buf. */
const char *infer_label_name(const infer_model *im, int label, char *buf, size_t n);
/* COCO category id of label l: the dataset's, else l itself. */
int64_t infer_label_category(const infer_model *im, int label);

/* The evaluation transform of one image: resized copy's size (*h, *w) and the
 * normalised pixels written to *chw (3, h, w), malloc'd (free()). The same
 * numbers as a validation batch of one image (data_make_batch, train = 0). */
void infer_prepare(float **chw, int *h, int *w, const data_image *img, const config *cfg);

/* Detections of one image (RGB, any size): for every query q of the model's
 * num_queries, scores[q], labels[q] and the box xyxy[4q..4q+3] in pixels of
 * img. Returns the number of queries, or -1 with cd_errbuf(). */
int infer_image(infer_model *im, const data_image *img, float *scores, int *labels, float *xyxy);

/* The data pipeline of a config (augmentation, loader options, splits) is
 * in setup.h: setup_augment_opts, setup_loader_opts, setup_open_split. */


/* ---- a model over a dataset (src/app/infer_dataset.c) ---------------------- */

typedef struct {
    double loss;                  /* mean of the weighted total over the batches */
    double loss_ce, loss_bbox, loss_giou, class_error;   /* final layer, means */
    coco_eval_result coco;        /* COCO bbox evaluation (stats[COCO_AP50] ...) */
    int have_coco;                /* 0 when the dataset had no annotated image */
    coco_det *dets; size_t n_dets;/* every detection (all queries of every image) */
    size_t n_images;
    double seconds;
} infer_dataset_result;

/* Run the model (eval mode: no dropout, running BN statistics, no tape) over
 * every batch of the loader (a validation loader: no shuffle, no drop_last),
 * compute the loss with `crit` and the COCO AP of the detections against the
 * dataset's annotations. max_batches > 0 stops early. Returns 0 or -1 with
 * cd_errbuf(). */
int infer_dataset(infer_dataset_result *res, detr_model *m, nn_ctx *ctx, data_dataset *ds, data_loader *L,
                  const criterion_opts *crit, size_t max_batches, int progress);
void infer_dataset_result_free(infer_dataset_result *res);

#endif
