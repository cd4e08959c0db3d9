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
    /* training-only queries (docs/accelerators.md); 0/1 = off, DETR exactly */
    int query_groups;           /* Group DETR: this many copies of the query set (extra ones training-only) */
    int dn;                     /* denoising queries (DN-DETR): declare their label and box embeddings */
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
    /* training-only (-1 when off): the extra query groups ((query_groups-1)*Q, d),
     * declared right after query_embed; the denoising queries' label embedding
     * (d, K1) and box embedding (two bias-free layers on the box's sine code) */
    int query_embed_groups, dn_label_w, dn_box_w[2];
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
    size_t B, Hf, Wf, S, Q, K1, L;       /* Q: every query of the forward (DETR's num_queries unless training queries) */
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

/* The training-only queries of one forward. The decoder then runs
 * groups * Q + dn_groups * dn_pad queries per image, in that order: group 0 is
 * DETR's own query set, and a self-attention mask keeps every group to itself
 * and lets no matching query see a denoising one (each denoising group sees
 * itself and the matching queries). Outputs are (B, that many, ...). */
typedef struct {
    int groups;                 /* query groups used (1..opts.query_groups) */
    int dn_groups;              /* denoising groups (0: none) */
    size_t dn_pad;              /* queries per denoising group: the batch's largest box count */
    const float *dn_label;      /* (B, dn_groups*dn_pad, K1): one-hot noised labels, zero rows for padding */
    const float *dn_box;        /* (B, dn_groups*dn_pad, d): detr_box_sine of the noised boxes, zero for padding */
} detr_train_queries;

void detr_forward_train(detr_model *m, nn_ctx *ctx, const float *images, const float *mask,
                        size_t B, size_t H, size_t W, const detr_train_queries *tq, detr_out *out);

/* Whether a parameter exists only for training (the extra query groups, the
 * denoising embeddings): exports to the official layout leave these out. */
int detr_param_training_only(const char *name);

/* The self-attention mask of a training forward as an additive bias (Lq, Lk):
 * 0 where a query may look, DETR_MASKED where it may not. */
#define DETR_MASKED (-1e9f)
void detr_train_attn_mask(float *bias, size_t Q, int groups, int dn_groups, size_t dn_pad);

/* box (cx, cy, w, h) in [0, 1] -> d floats: for each coordinate d/4 channels,
 * sin and cos of 2 pi c / 10000^(2i/(d/4)) interleaved as the image encoding. */
void detr_box_sine(float *out, const float *box, size_t d);

/* Host helpers (src/nn/position.c), exposed for tests:
 * mask_f (B, Hf, Wf) = nearest downsampling of mask (B, H, W), as F.interpolate;
 * pos (B, Hf*Wf, d) = the sine encoding of mask_f ([y-half, x-half] channels). */
void detr_mask_downsample(float *mask_f, const float *mask, size_t B, size_t H, size_t W, size_t Hf, size_t Wf);
void detr_sine_pos(float *pos, const float *mask_f, size_t B, size_t Hf, size_t Wf, size_t d);

/* Parameter counts: all (excluding buffers) and trainable. */
void detr_count(const detr_model *m, size_t *all, size_t *trainable);

#endif
