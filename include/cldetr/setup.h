/* From a config to the objects it describes: the device and the model's
 * options. Shared by the verbs that build a model (train, eval, predict,
 * summary, step). */
#ifndef CLDETR_SETUP_H
#define CLDETR_SETUP_H

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/detr.h"

/* Model options from cfg.model. num_classes: cfg.model.num_classes when > 0,
 * else `from_data` (max category id + 1 of the training set, or the number of
 * categories with data.contiguous_labels). Returns 0 or -1 with cd_errbuf(). */
int setup_detr_opts(detr_opts *o, const config *cfg, int from_data);

/* num_classes as the dataset defines it: reads data.root/data.train_ann.
 * Returns >= 1, or -1 with cd_errbuf(). */
int setup_num_classes(const config *cfg);

/* The device spec of cfg.device (index, name substring or type), for cd_open. */
const char *setup_device_spec(const config *cfg);

/* The data pipeline of a config: augmentation and loader options, and a split
 * ("train" or "val") opened as the trainer does. A missing dataset is named,
 * with the folder it is looked for in and, for shapes configs, the exact
 * `cldetr make-shapes` command. NULL with cd_errbuf() on failure. */
void setup_augment_opts(augment_opts *a, const config *c);
void setup_loader_opts(loader_opts *lo, const config *c, int train);
data_dataset *setup_open_split(const config *c, const char *split);

#endif
