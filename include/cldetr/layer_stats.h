/* Per-layer statistics of a training run (src/app/layer_stats.c): for each
 * group of parameters — the backbone's stem and stages, the input projection,
 * each encoder and decoder layer's attention and feed-forward, the query
 * embeddings, the class head and each box-MLP layer — the RMS of the weights,
 * of their gradients, and the update-to-weight ratio of the optimizer step
 * (log10); and for the backbone stages and every FFN the mean, standard
 * deviation and fraction of zeros of the activations. All computed on the
 * device and read back as a few numbers per group; the trainer logs them
 * every log.layers_every steps to layers.csv and draws layers.png.
 *
 * layers.csv columns: step, group, weight_rms, grad_rms, update_ratio_log10,
 * act_mean, act_std, act_zero_frac (an empty cell: not measured for that
 * group, e.g. no gradient for a frozen stage). */
#ifndef CLDETR_LAYER_STATS_H
#define CLDETR_LAYER_STATS_H

#include <stdio.h>

#include "cldetr/detr.h"
#include "cldetr/nn.h"

#define LAYER_STATS_HEADER "step,group,weight_rms,grad_rms,update_ratio_log10,act_mean,act_std,act_zero_frac"

typedef struct {
    char name[48];               /* "backbone.layer2", "enc.0.attn", "dec.1.ffn", "box_mlp.2", ... */
    double weight_rms, grad_rms, update_ratio_log10;     /* NaN when not measured */
    double act_mean, act_std, act_zero_frac;              /* NaN for groups without tapped activations */
} layer_group_stats;

typedef struct {
    int n_groups;
    layer_group_stats *g;
    int *group_of_param;         /* [ps->n] group index of each parameter */
    cd_mem sums;                 /* (3 * n_params): sum of squares of weights, gradients, updates */
    cd_mem moments;              /* (3 * DETR taps): sum, sum of squares, zeros of each activation */
    cd_mem prev;                 /* (n_trainable) the weights before the update */
} layer_stats;

/* Groups from the parameter registry's official names. */
void layer_stats_init(layer_stats *ls, const nn_params *ps, cd_device *dev);
void layer_stats_free(layer_stats *ls, cd_device *dev);

/* Around one optimizer step: keep the weights before it (a device copy),
 * then measure weights, gradients, the update and the activations of the
 * forward `o`, and fill ls->g. */
void layer_stats_before_update(layer_stats *ls, cd_device *dev, const nn_params *ps);
void layer_stats_measure(layer_stats *ls, cd_device *dev, const nn_params *ps, const detr_out *o);

/* One row per group for `step`. */
void layer_stats_write(const layer_stats *ls, FILE *csv, long step);

/* A grid of small charts, one per group, against step, from the layers.csv of
 * one or more runs (a line per run and quantity). 0 or -1 with cd_errbuf(). */
int layer_stats_chart(const char *const *run_dirs, int n_runs, const char *png_path);

#endif
