/* Model weights in safetensors files, by name: load a DETR model's parameters
 * and buffers from a file written by cldetr, by PyTorch (the official DETR
 * state_dict names, tools/convert_detr_checkpoint.py), by HF transformers
 * (DetrForObjectDetection's model.safetensors) or an ImageNet ResNet
 * (torchvision / timm names: backbone only), and save them under the official
 * names so that PyTorch's DETR loads them with strict=True, or under HF
 * transformers names so that DetrForObjectDetection.from_pretrained loads them
 * (docs/weights.md).
 *
 * Names (official <- HF transformers):
 *   backbone.0.body.X                 <- model.backbone.conv_encoder.model.X (timm ResNet names)
 *   backbone.1.{row,col}_embed.weight <- model.backbone.position_embedding.{row,column}_embeddings.weight
 *   input_proj.*                      <- model.input_projection.*
 *   query_embed.weight                <- model.query_position_embeddings.weight
 *   transformer.encoder.layers.N.self_attn.in_proj_{weight,bias}
 *                                     <- model.encoder.layers.N.self_attn.{q,k,v}_proj.{weight,bias}
 *                                        (rows stacked q, k, v as nn.MultiheadAttention packs them)
 *   ... .self_attn.out_proj.*         <- ... .self_attn.out_proj.*
 *   ... decoder .multihead_attn.*     <- ... decoder .encoder_attn.* (q/k/v as above)
 *   ... .linear1 / .linear2           <- ... .fc1 / .fc2
 *   encoder norm1, norm2              <- self_attn_layer_norm, final_layer_norm
 *   decoder norm1, norm2, norm3       <- self_attn_layer_norm, encoder_attn_layer_norm, final_layer_norm
 *   transformer.decoder.norm.*        <- model.decoder.layernorm.*
 *   class_embed.*                     <- class_labels_classifier.*
 *   bbox_embed.layers.N.*             <- bbox_predictor.layers.N.*
 * transformers 5 names (model.backbone.model.X, model.position_embedding.*, o_proj, mlp.fc1, mlp.fc2)
 * are read too; the legacy ones above are what the hub's files and save_pretrained hold.
 * ResNet files (conv1.weight, layer1.0.conv1.weight, ..., fc.*): backbone.0.body.X <- X, fc.* ignored.
 * `num_batches_tracked` (BatchNorm2d's counter) is ignored in every file.
 * Which naming a file uses is detected from its names; a file mixing them is an error.
 * Any float dtype of the file (F32, F16, BF16, F64) is read into float32. */
#ifndef CLDETR_WEIGHTS_H
#define CLDETR_WEIGHTS_H

#include <stdint.h>
#include <stdio.h>

#include "cldetr/detr.h"
#include "cldetr/safetensors.h"

typedef enum {
    WEIGHTS_NAMING_OFFICIAL = 0,   /* facebookresearch/detr state_dict names (what cldetr writes) */
    WEIGHTS_NAMING_HF = 1,         /* HF transformers DetrForObjectDetection */
    WEIGHTS_NAMING_RESNET = 2,     /* a torchvision / timm ResNet classifier: backbone only */
} weights_naming;

const char *weights_naming_name(weights_naming n);   /* "official DETR", ... */

typedef struct {
    int allow_missing;        /* 1: model tensors absent from the file keep their current values */
    int allow_unexpected;     /* 1: file tensors the model does not use are ignored (and counted) */
    int allow_backbone_only;  /* 1: a file holding backbone tensors only (a ResNet, or DETR names under
                                 backbone.0.body.) loads the whole backbone; the rest keeps its values.
                                 Every backbone tensor must still be there. */
    int reinit_class_head;    /* 1: class_embed.{weight,bias} with another number of classes keep their
                                 current values (fine-tuning on a new dataset) instead of an error */
    FILE *log;                /* one line per decision taken (naming, ignored, kept); NULL: silent */
} weights_opts;

typedef struct {
    weights_naming naming;
    int loaded;               /* model tensors read from the file */
    int missing;              /* model tensors not in the file (kept) */
    int unexpected;           /* file tensors not used (ignored) */
    int class_head_kept;      /* 1: the class head was left as it was (another num_classes) */
    int file_classes;         /* num_classes of the file's class head (rows - 1), -1 if it has none */
} weights_report;

/* Read the weights in path into m's parameters and buffers (host copy, then
 * the device when dev is not NULL; with dev, the host copy is refreshed from
 * the device first so that tensors the file lacks keep their current values).
 * Checks every tensor before changing anything: a missing tensor, a shape
 * that differs from the model's, or a tensor the model has no use for is an
 * error (unless opts allow it) whose message names the file, the model's
 * tensor and the file's tensor. opts may be NULL (all checks strict, silent);
 * rep may be NULL. Returns 0, or -1 with cd_errbuf(); m is unchanged on error. */
int weights_load(detr_model *m, cd_device *dev, const char *path, const weights_opts *opts, weights_report *rep);

/* Same on a file already opened with st_open. */
int weights_load_file(detr_model *m, cd_device *dev, const st_file *f, const weights_opts *opts, weights_report *rep);

typedef struct {
    st_dtype dtype;                 /* ST_F32 (default when 0), ST_F16 or ST_BF16 */
    weights_naming naming;          /* WEIGHTS_NAMING_OFFICIAL (default when 0) or WEIGHTS_NAMING_HF */
    int64_t num_batches_tracked;    /* official names: written for every trainable BatchNorm2d (PyTorch's
                                       strict load wants the key; cldetr does not count batches) */
    const char *const *meta;        /* __metadata__: key, value, key, value, ..., NULL (may be NULL) */
} weights_save_opts;

/* Write every parameter and buffer of m, in the registry's order (PyTorch's
 * state_dict order), atomically. With dev the values are read back from the
 * device first. opts may be NULL (F32, official names, no metadata).
 * Official names: the state_dict of facebookresearch/detr.
 * HF names: the names above read the other way (the same map), as
 * transformers' save_pretrained writes them: in_proj_{weight,bias} split into
 * q_proj/k_proj/v_proj rows, no num_batches_tracked (HF's DETR has frozen
 * BatchNorm), the learned position embedding as model.position_embedding.*
 * (transformers 5; transformers 4 had it under model.backbone.); __metadata__
 * gets format = pt when meta has no format. A model HF's DETR cannot hold
 * (pre-norm: transformer.encoder.norm.*) is an error naming the tensor; the
 * file is not written. Returns 0 or -1 with cd_errbuf() naming the file. */
int weights_save(detr_model *m, cd_device *dev, const char *path, const weights_save_opts *opts);

/* [model] init = FILE before training: load pretrained weights for fine-tuning.
 * Accepts official, HF or ResNet names; a file of the backbone only loads the
 * backbone (the transformer and heads keep their random init); a class head
 * of another number of classes keeps its random init (the custom-dataset
 * case). Each such decision is one line in log ("model.init: ..."). Any other
 * missing tensor, shape mismatch or unused tensor is an error naming it.
 * Uploads to dev. Returns 0 or -1 with cd_errbuf(). */
int weights_init_model(detr_model *m, cd_device *dev, const char *path, FILE *log);

#endif
