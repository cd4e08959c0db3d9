/* From a config to the objects it describes: the device, the model's
 * options, the criterion, the data pipeline and the schedule. The one place
 * where the library reads a config for the layers below the application
 * (src/app/setup.c); train, bench, step, eval, predict and summary use it. */
#ifndef CLDETR_SETUP_H
#define CLDETR_SETUP_H

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"
#include "cldetr/loss.h"
#include "cldetr/train.h"

/* Model options from cfg.model. num_classes: cfg.model.num_classes when > 0,
 * else `from_data` (max category id + 1 of the training set, or the number of
 * categories with data.contiguous_labels). Returns 0 or -1 with cd_errbuf(). */
int setup_detr_opts(detr_opts *o, const config *cfg, int from_data);

/* num_classes as the dataset defines it: reads data.root/data.train_ann.
 * Returns >= 1, or -1 with cd_errbuf(). */
int setup_num_classes(const config *cfg);

/* The device spec of cfg.device (index, name substring or type), for cd_open. */
const char *setup_device_spec(const config *cfg);

/* Loss weights, matching costs, eos_coef and aux_loss of [loss], [matcher]
 * and model.aux_loss. */
void setup_criterion_opts(criterion_opts *o, const config *cfg);

/* The learning-rate schedule of [train] for a run of total_steps steps. */
void setup_lr_schedule(lr_schedule *s, const config *cfg, long total_steps);

/* The synthetic shapes dataset a config describes ([data] shapes_*), into data.root. */
void setup_shapes_opts(shapes_opts *o, const config *cfg);

/* Class names of the config's dataset by label, as the data layer numbers
 * labels (raw category ids, or 0..n-1 in increasing id with
 * data.contiguous_labels): names[l] (malloc'd) and cats[l] (the COCO category
 * id; may be NULL) for l < K, names[l] left NULL where no category has label
 * l. The validation file is read first (smaller; its categories are the
 * training file's in COCO-format datasets), then the training file. Returns 1,
 * or 0 when neither can be read (names unknown). */
int setup_class_names(const config *c, int K, char **names, int64_t *cats);

/* The class names of the config's dataset as comment lines to end a config
 * text with, so that a run's config.ini, its checkpoints and the weights
 * exported from them keep the names when the dataset is not at hand:
 *   "; class LABEL CATEGORY_ID NAME" per named label. malloc'd; NULL when
 * the dataset cannot be read. */
char *setup_class_names_comment(const config *c, int K);
/* The names of such lines in a config text (NULL: none) into names[l] and
 * cats[l] (may be NULL) for l < K. Returns how many were found. */
int setup_class_names_from_text(const char *text, int K, char **names, int64_t *cats);

/* The largest padded input of a training batch: the largest of augment.scales
 * by max(augment.max_size, that) (the worst case a batch can reach). */
void setup_max_input(const config *cfg, size_t *H, size_t *W);

/* Device memory of one training step of m at train.batch_size and the largest
 * input, in bytes: activations and their gradients (a dry run of the forward:
 * nothing is allocated or launched) and parameters + gradients + Adam moments. */
typedef struct {
    size_t B, H, W, Hf, Wf;
    size_t activations, activation_grads, params;   /* bytes; activation_grads: alive at once in the backward */
    size_t activation_grads_all;                    /* bytes of every activation gradient of the step */
    double flops_fw, flops_bw;                      /* the matrix ops' arithmetic (linear, conv, bmm) */
} setup_step_memory;
void setup_estimate_step_memory(setup_step_memory *mem, detr_model *m, const config *cfg, cd_device *dev);

/* The data pipeline of a config: augmentation and loader options, and a split
 * ("train" or "val") opened as the trainer does. A missing dataset is named,
 * with the folder it is looked for in and, for shapes configs, the exact
 * `cldetr make-shapes` command. NULL with cd_errbuf() on failure. */
void setup_augment_opts(augment_opts *a, const config *c);
void setup_loader_opts(loader_opts *lo, const config *c, int train);
/* The dataset options of a split: annotation file and image folder under
 * data.root (ann and images are the caller's buffers of n bytes, which o
 * points into), label mapping and the bad-sample policy. */
void setup_data_opts(data_opts *o, const config *c, int train, char *ann, char *images, size_t n);
data_dataset *setup_open_split(const config *c, const char *split);

#endif
