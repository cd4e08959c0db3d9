/* The DETR model (Carion et al. 2020) exactly as the official PyTorch code
 * defines it (docs/model.md): ResNet backbone, 1x1 input projection, sine
 * position encoding, transformer encoder and decoder with object queries,
 * class head (+ no-object) and 3-layer box MLP on every decoder layer. Parameter names are the official state_dict names.
 *
 * Layouts on the device: images (B, 3, H, W) NCHW; transformer tensors are
 * batch-first (B, S, d) / (B, Q, d) (the official code is sequence-first;
 * the parity test permutes); logits (B, Q, K+1) and boxes (B, Q, 4) cxcywh
 * per decoder layer. */
#ifndef CLDETR_DETR_H
#define CLDETR_DETR_H

#include <stdint.h>
#include "cldetr/nn.h"

typedef struct {
    /* backbone */
    int depth;                  /* 18, 34 (basic blocks), 50, 101 (bottlenecks) */
    int width;                  /* base width: 64 in torchvision; smaller for small configs */
    int dilation;               /* DC5: layer4 stride replaced by dilation (bottlenecks only) */
    int bn_trainable;           /* 0: FrozenBatchNorm2d (buffers); 1: BatchNorm2d with batch statistics */
    int train_stem;             /* 0 (official): conv1, bn1 and layer1 are frozen; 1: trained too */
    int freeze_backbone;        /* 1: the whole backbone is frozen (lr_backbone <= 0) */
    int learned_pos;            /* 0: sine position encoding; 1: learned (row/col embeddings, 50 each) */
    /* transformer */
    int d, nheads, enc_layers, dec_layers, dim_ff;
    float dropout;
    int pre_norm;
    /* heads */
    int num_queries, num_classes;  /* num_classes = max category id + 1; logits have num_classes + 1 */
} detr_opts;

void detr_opts_default(detr_opts *o);   /* DETR-R50 as the official main.py, num_classes 91 */

typedef struct { int w, b, mean, var; } detr_bn;
typedef struct {
    int nconv;                  /* 2 basic, 3 bottleneck */
    int conv[3];
    detr_bn bn[3];
    int ds_conv; detr_bn ds_bn; /* downsample, ds_conv < 0 when none */
    size_t out_c, stride, dilation;
    int stage;                  /* 0..3: layer1..layer4 */
} detr_block;

typedef struct { int in_w, in_b, out_w, out_b; } detr_mha;
typedef struct {
    detr_mha self_attn, cross_attn;       /* cross only in the decoder */
    int l1_w, l1_b, l2_w, l2_b;
    int n_w[3], n_b[3];
} detr_tlayer;

typedef struct {
    detr_opts o;
    nn_params params;
    /* backbone */
    int conv1; detr_bn bn1;
    detr_block *blocks; int n_blocks;
    size_t backbone_channels;
    /* transformer */
    detr_tlayer *enc, *dec;
    int enc_norm_w, enc_norm_b;           /* pre-norm only, else -1 */
    int dec_norm_w, dec_norm_b;
    int row_embed, col_embed;             /* learned position encoding, else -1 */
    /* heads */
    int class_w, class_b, bbox_w[3], bbox_b[3], query_embed, proj_w, proj_b;
} detr_model;

/* Declare every parameter (finalizing the registry on dev) and initialize them
 * as the official code does, from seed. Returns 0, or -1 with cd_errbuf() for
 * options that make no model. */
int detr_build(detr_model *m, const detr_opts *o, cd_device *dev, uint64_t seed);
void detr_free(detr_model *m, cd_device *dev);

/* Backbone feature size for an input size: ceil(H/32) (ceil(H/16) with DC5). */
size_t detr_feature_size(const detr_model *m, size_t H);

#define DETR_MAX_LAYERS 16
/* The outputs of one forward pass; tensors live in the context's arena. */
typedef struct {
    size_t B, Hf, Wf, S, Q, K1, L;
    nn_tensor *stage_out[4];              /* (B, C_i, H_i, W_i) output of layer1..layer4 */
    nn_tensor *features;                  /* (B, C, Hf, Wf) backbone output (= stage_out[3]) */
    nn_tensor *proj;                      /* (B, d, Hf, Wf) input_proj output */
    nn_tensor *mask;                      /* (B, S) 1 = padding */
    nn_tensor *pos;                       /* (B, S, d) */
    nn_tensor *enc_out[DETR_MAX_LAYERS];  /* (B, S, d) each encoder layer */
    nn_tensor *enc_ffn[DETR_MAX_LAYERS];  /* (B, S, dim_ff) each encoder layer's FFN hidden (after the ReLU) */
    nn_tensor *dec_ffn[DETR_MAX_LAYERS];  /* (B, Q, dim_ff) each decoder layer's FFN hidden (after the ReLU) */
    nn_tensor *memory;                    /* (B, S, d) */
    nn_tensor *dec_out[DETR_MAX_LAYERS];  /* (B, Q, d) each decoder layer, before the shared norm */
    nn_tensor *hs[DETR_MAX_LAYERS];       /* (B, Q, d) after the shared decoder norm */
    nn_tensor *logits[DETR_MAX_LAYERS];   /* (B, Q, K1) */
    nn_tensor *boxes[DETR_MAX_LAYERS];    /* (B, Q, 4) cxcywh in [0, 1] */
} detr_out;

/* Forward a padded batch: images (B, 3, H, W) normalized, mask (B, H, W) with
 * 1 = padding. Records the tape when ctx->record. */
void detr_forward(detr_model *m, nn_ctx *ctx, const float *images, const float *mask,
                  size_t B, size_t H, size_t W, detr_out *out);

/* Host helpers (src/nn/position.c), exposed for tests:
 * mask_f (B, Hf, Wf) = nearest downsampling of mask (B, H, W), as F.interpolate;
 * pos (B, Hf*Wf, d) = the sine encoding of mask_f ([y-half, x-half] channels). */
void detr_mask_downsample(float *mask_f, const float *mask, size_t B, size_t H, size_t W, size_t Hf, size_t Wf);
void detr_sine_pos(float *pos, const float *mask_f, size_t B, size_t Hf, size_t Wf, size_t d);

/* Parameter counts: all (excluding buffers) and trainable. */
void detr_count(const detr_model *m, size_t *all, size_t *trainable);

#endif
