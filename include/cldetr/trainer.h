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
 * log.txt. The run folder is locked (flock on RUN/.lock, which holds the pid)
 * for the whole run: a second process on it is refused. On resume the
 * --set overrides are saved into RUN/config.ini (they hold for the rest of
 * the run), and metrics.csv and eval.csv are cut back to the checkpoint's
 * step; a finished run (step or epoch at the config's end) is left as it is.
 * Epochs count from 1 in the console and both CSV files; time_s in both is
 * the seconds into the run, continued across resumes (the checkpoint keeps
 * it), and eval.csv's val_seconds is a validation's own duration.
 * Returns TRAIN_DONE (also for a finished run resumed: nothing done);
 * TRAIN_INTERRUPTED after Ctrl-C or SIGTERM (the step finished and last.ckpt
 * was written); or -1 with cd_errbuf() saying what went wrong (a bad config
 * or dataset, a training set without a box under data.on_bad_sample=error,
 * a run folder in use or that cannot be written, a damaged checkpoint, a
 * checkpoint that could not be written (the run stops; the previous one is
 * kept), a diverging loss with advice and the last good checkpoint). */
int train_run(const train_args *a);

#endif
