/* The training loop: `cldetr train` (src/train/loop.c). */
#ifndef CLDETR_TRAINER_H
#define CLDETR_TRAINER_H

#include <stddef.h>

typedef struct {
    const char *config_path;        /* the INI file (ignored with resume_dir) */
    const char *const *sets;        /* "section.key=value" overrides */
    size_t n_sets;
    const char *resume_dir;         /* continue this run folder from its last.ckpt */
} train_args;

/* Train as the config says. Returns the process exit code: 0 done, 1 error
 * (message printed), 130 interrupted (a checkpoint was written). */
int train_main(const train_args *a);

#endif
