/* tests/app/step_fixture.h — a training step built by hand on the first 4
 * images of a split at their validation transform (no augmentation): the
 * config, the batch, the device, a model of seed 7, its context in training
 * mode, AdamW (weight decay 1e-4) and the train_step state. For the tests
 * of src/app that drive train_step directly. */
#ifndef CLDETR_TEST_STEP_FIXTURE_H
#define CLDETR_TEST_STEP_FIXTURE_H

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"
#include "../check.h"

typedef struct {
    config cfg;
    data_dataset *ds;
    data_batch batch;
    cd_device *dev;
    detr_opts o;
    detr_model m;
    nn_ctx ctx;
    adamw_state opt;
    train_step_state st;
} t_step;

/* Open it from ini with sets; 0, or -1 after a failed check. */
static inline int t_step_open(t_step *s, const char *ini, const char *const *sets, size_t n_sets) {
    memset(s, 0, sizeof *s);
    t_ok(config_load(&s->cfg, ini, sets, n_sets) == 0, "the config loads: %s", cd_errbuf());
    s->ds = setup_open_split(&s->cfg, "train");
    t_ok(s->ds != NULL, "the dataset opens");
    if (!s->ds) return -1;
    loader_opts lo;
    augment_opts ao;
    setup_loader_opts(&lo, &s->cfg, 0);           /* validation transforms: no augmentation */
    setup_augment_opts(&ao, &s->cfg);
    lo.workers = 0;
    size_t samples[4] = {0, 1, 2, 3};
    t_ok(data_make_batch(s->ds, &lo, &ao, 0, samples, 4, &s->batch) == 0, "a batch of 4 images");
    s->dev = cd_open(NULL, 0);
    t_ok(s->dev && setup_detr_opts(&s->o, &s->cfg, data_num_classes(s->ds)) == 0, "model options: %s", cd_errbuf());
    t_ok(detr_build(&s->m, &s->o, s->dev, 7) == 0, "the model builds: %s", cd_errbuf());
    nn_ctx_init(&s->ctx, s->dev, &s->m.params);
    s->ctx.training = 1;
    adamw_init(&s->opt, s->dev, &s->m.params, 0.9, 0.999, 1e-8, 1e-4);
    train_step_init(&s->st, &s->m, &s->ctx, &s->opt, &s->cfg);
    return 0;
}

static inline void t_step_close(t_step *s) {
    train_step_free(&s->st);
    adamw_free(&s->opt, s->dev);
    nn_ctx_free(&s->ctx);
    detr_free(&s->m, s->dev);
    cd_close(s->dev);
    data_batch_free(&s->batch);
    data_close(s->ds);
}

#endif
