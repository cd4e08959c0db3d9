/* The training loop: what `cldetr train` runs (src/app/train.c). */
#ifndef CLDETR_TRAINER_H
#define CLDETR_TRAINER_H

#include <stddef.h>

typedef struct {
    const char *config_path;        /* the INI file (ignored with resume_dir) */
    const char *const *sets;        /* "section.key=value" overrides */
    size_t n_sets;
    const char *resume_dir;         /* continue this run folder from its last.ckpt */
} train_args;

enum { TRAIN_DONE = 0, TRAIN_INTERRUPTED = 1 };

/* Train as the config says, logging progress to stderr and the run's
 * log.txt. Returns TRAIN_DONE; TRAIN_INTERRUPTED after Ctrl-C or SIGTERM
 * (the step finished and last.ckpt was written); or -1 with cd_errbuf()
 * saying what went wrong (a bad config or dataset, a run folder that cannot
 * be written, a diverging loss with advice and the last good checkpoint). */
int train_run(const train_args *a);

#endif
