/* The ResNet backbone (torchvision v1.5: stride on the 3x3 conv), declared
 * under the official names backbone.0.body.*, and its forward. */
#include <stdio.h>
#include <string.h>

#include "cldetr/detr.h"

#define PFX "backbone.0.body."

static detr_bn declare_bn(nn_params *ps, const char *name, size_t C, int trainable, int bn_trainable) {
    char buf[128];
    detr_bn bn;
    /* FrozenBatchNorm2d holds all four as buffers; BatchNorm2d trains weight and bias */
    snprintf(buf, sizeof buf, "%s.weight", name);
    bn.w = nn_param_add(ps, buf, NN_GROUP_BACKBONE, trainable, !bn_trainable, 1, C, 0, 0, 0);
    snprintf(buf, sizeof buf, "%s.bias", name);
    bn.b = nn_param_add(ps, buf, NN_GROUP_BACKBONE, trainable, !bn_trainable, 1, C, 0, 0, 0);
    snprintf(buf, sizeof buf, "%s.running_mean", name);
    bn.mean = nn_param_add(ps, buf, NN_GROUP_BACKBONE, 0, 1, 1, C, 0, 0, 0);
    snprintf(buf, sizeof buf, "%s.running_var", name);
    bn.var = nn_param_add(ps, buf, NN_GROUP_BACKBONE, 0, 1, 1, C, 0, 0, 0);
    return bn;
}

/* The 3x3 convs of a block: both of a basic block, the middle one of a bottleneck (1x1 otherwise). */
static int is_3x3(const detr_block *b, int c) { return b->nconv == 2 || c == 1; }

static int declare_conv(nn_params *ps, const char *name, size_t K, size_t C, size_t R, int trainable) {
    return nn_param_add(ps, name, NN_GROUP_BACKBONE, trainable, 0, 4, K, C, R, R);
}

/* Declare the backbone's parameters in state_dict order. */
int detr_declare_backbone(detr_model *m) {
    const detr_opts *o = &m->o;
    nn_params *ps = &m->params;
    int bottleneck;
    int counts[4];
    switch (o->depth) {
    case 18: bottleneck = 0; memcpy(counts, (int[]){2, 2, 2, 2}, sizeof counts); break;
    case 34: bottleneck = 0; memcpy(counts, (int[]){3, 4, 6, 3}, sizeof counts); break;
    case 50: bottleneck = 1; memcpy(counts, (int[]){3, 4, 6, 3}, sizeof counts); break;
    case 101: bottleneck = 1; memcpy(counts, (int[]){3, 4, 23, 3}, sizeof counts); break;
    default: return cd_seterr("model.backbone: resnet%d is not supported (choose resnet18, resnet34, resnet50 "
                              "or resnet101)", o->depth);
    }
    if (o->dilation && !bottleneck)
        return cd_seterr("model.dilation: DC5 needs a bottleneck ResNet (resnet50/101), as torchvision's "
                         "BasicBlock has no dilation");
    if (o->width < 1) return cd_seterr("model.width must be >= 1, got %d", o->width);
    int all_frozen = o->freeze_backbone;
    int stem_trainable = !all_frozen && o->train_stem;
    size_t w = (size_t)o->width, expansion = bottleneck ? 4 : 1;
    m->conv1 = declare_conv(ps, PFX "conv1.weight", w, 3, 7, stem_trainable);
    m->bn1 = declare_bn(ps, PFX "bn1", w, stem_trainable, o->bn_trainable);
    int total = counts[0] + counts[1] + counts[2] + counts[3];
    m->blocks = cd_xcalloc(total, sizeof *m->blocks);
    m->n_blocks = 0;
    size_t in_c = w, dilation = 1;
    for (int L = 0; L < 4; L++) {
        size_t planes = w << L, stride = L == 0 ? 1 : 2, prev_dilation = dilation;
        if (L == 3 && o->dilation) { dilation *= stride; stride = 1; }
        int trainable = !all_frozen && (L > 0 || o->train_stem);
        for (int i = 0; i < counts[L]; i++) {
            detr_block *b = &m->blocks[m->n_blocks++];
            char name[128];
            b->nconv = bottleneck ? 3 : 2;
            b->stage = L;
            b->out_c = planes * expansion;
            b->stride = i == 0 ? stride : 1;
            b->dilation = i == 0 ? prev_dilation : dilation;
            for (int c = 0; c < b->nconv; c++) {
                size_t cin = c == 0 ? in_c : planes, cout = c == b->nconv - 1 ? b->out_c : planes;
                size_t R = is_3x3(b, c) ? 3 : 1;
                snprintf(name, sizeof name, PFX "layer%d.%d.conv%d.weight", L + 1, i, c + 1);
                b->conv[c] = declare_conv(ps, name, cout, cin, R, trainable);
                snprintf(name, sizeof name, PFX "layer%d.%d.bn%d", L + 1, i, c + 1);
                b->bn[c] = declare_bn(ps, name, cout, trainable, o->bn_trainable);
            }
            b->ds_conv = -1;
            if (i == 0 && (b->stride != 1 || in_c != b->out_c)) {
                snprintf(name, sizeof name, PFX "layer%d.%d.downsample.0.weight", L + 1, i);
                b->ds_conv = declare_conv(ps, name, b->out_c, in_c, 1, trainable);
                snprintf(name, sizeof name, PFX "layer%d.%d.downsample.1", L + 1, i);
                b->ds_bn = declare_bn(ps, name, b->out_c, trainable, o->bn_trainable);
            }
            in_c = b->out_c;
        }
    }
    m->backbone_channels = in_c;
    return 0;
}

/* conv -> batch norm, then ReLU when relu */
static nn_tensor *conv_bn(detr_model *m, nn_ctx *ctx, nn_tensor *x, int conv, detr_bn bn, size_t stride,
                          size_t pad, size_t dil, int relu) {
    /* the conv's output feeds only the batch norm, and the norm's only the ReLU
     * (or the block's residual add): both are overwritten in place where the
     * backward does not read them (nn_batchnorm_inplace says when) */
    nn_tensor *y = nn_conv2d(ctx, x, conv, -1, stride, pad, dil);
    if (relu) return nn_batchnorm_relu_inplace(ctx, y, bn.w, bn.b, bn.mean, bn.var, m->o.bn_trainable);
    return nn_batchnorm_inplace(ctx, y, bn.w, bn.b, bn.mean, bn.var, m->o.bn_trainable);
}

/* images (B, 3, H, W) -> features (B, C, Hf, Wf); stages[i] (may be NULL)
 * receives the output of layer i+1 */
nn_tensor *detr_backbone_forward(detr_model *m, nn_ctx *ctx, nn_tensor *x, nn_tensor *stages[4]) {
    x = conv_bn(m, ctx, x, m->conv1, m->bn1, 2, 3, 1, 1);
    x = nn_maxpool(ctx, x, 3, 2, 1);
    for (int i = 0; i < m->n_blocks; i++) {
        const detr_block *b = &m->blocks[i];
        nn_tensor *y = x;
        for (int c = 0; c < b->nconv; c++) {
            int is3 = is_3x3(b, c), last = c == b->nconv - 1;
            size_t stride = is3 && (b->nconv == 3 || c == 0) ? b->stride : 1;
            size_t dil = is3 ? b->dilation : 1;
            if (!last) y = conv_bn(m, ctx, y, b->conv[c], b->bn[c], stride, is3 ? dil : 0, dil, 1);
            else y = nn_conv2d(ctx, y, b->conv[c], -1, stride, is3 ? dil : 0, dil);
        }
        /* the shortcut, then the last conv's batch norm with relu(. + shortcut):
         * one node when the norm is frozen. The shortcut's conv runs after the
         * main branch's convs, so its input gradient is added in the same order. */
        nn_tensor *shortcut = b->ds_conv >= 0 ? conv_bn(m, ctx, x, b->ds_conv, b->ds_bn, b->stride, 0, 1, 0) : x;
        const detr_bn *bn = &b->bn[b->nconv - 1];
        x = nn_batchnorm_add_relu_inplace(ctx, y, bn->w, bn->b, bn->mean, bn->var, m->o.bn_trainable, shortcut);
        if (stages) stages[b->stage] = x;
    }
    return x;
}
