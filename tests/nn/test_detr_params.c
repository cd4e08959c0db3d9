/* The DETR model's parameter registry: official names and shapes, the counts
 * of the paper's model (reference §8), the freezing rule, initialization. */
#include <math.h>
#include <string.h>

#include "cldetr/detr.h"
#include "../check.h"

static void check_r50(cd_device *dev) {
    detr_opts o;
    detr_opts_default(&o);
    detr_model m;
    t_ok(detr_build(&m, &o, dev, 1) == 0, "DETR-R50 builds");
    size_t all, trainable;
    detr_count(&m, &all, &trainable);
    t_ok(all == 41524768, "DETR-R50 has 41,524,768 parameters (got %zu)", all);
    t_ok(trainable == 41302368, "DETR-R50 has 41,302,368 trainable parameters (got %zu)", trainable);
    static const struct { const char *name; size_t s0, s1; int trainable; } names[] = {
        {"backbone.0.body.conv1.weight", 64, 3, 0},
        {"backbone.0.body.layer1.0.conv1.weight", 64, 64, 0},
        {"backbone.0.body.layer2.0.conv1.weight", 128, 256, 1},
        {"backbone.0.body.layer2.0.downsample.0.weight", 512, 256, 1},
        {"backbone.0.body.layer4.2.conv3.weight", 2048, 512, 1},
        {"backbone.0.body.layer3.5.bn2.running_mean", 256, 1, 0},
        {"transformer.encoder.layers.0.self_attn.in_proj_weight", 768, 256, 1},
        {"transformer.encoder.layers.5.linear1.weight", 2048, 256, 1},
        {"transformer.decoder.layers.5.multihead_attn.out_proj.bias", 256, 1, 1},
        {"transformer.decoder.layers.0.norm3.weight", 256, 1, 1},
        {"transformer.decoder.norm.weight", 256, 1, 1},
        {"class_embed.weight", 92, 256, 1},
        {"bbox_embed.layers.2.bias", 4, 1, 1},
        {"query_embed.weight", 100, 256, 1},
        {"input_proj.weight", 256, 2048, 1},
    };
    for (size_t i = 0; i < CD_ARRAY_LEN(names); i++) {
        int k = nn_param_find(&m.params, names[i].name);
        const nn_param *p = k >= 0 ? &m.params.p[k] : NULL;
        t_ok(p && p->shape[0] == names[i].s0 && p->shape[1] == names[i].s1 && p->trainable == names[i].trainable,
             "%s: shape (%zu, %zu), trainable %d", names[i].name, names[i].s0, names[i].s1, names[i].trainable);
    }
    t_ok(nn_param_find(&m.params, "transformer.encoder.norm.weight") < 0, "post-norm: no encoder norm");
    /* init: xavier bound of in_proj, LN at 1/0, BN identity, N(0,1) queries */
    int k = nn_param_find(&m.params, "transformer.encoder.layers.0.self_attn.in_proj_weight");
    float *w = nn_param_host(&m.params, k);
    double mx = 0, bound = sqrt(6.0 / 1024.0);
    for (size_t i = 0; i < m.params.p[k].n; i++) mx = fmax(mx, fabs(w[i]));
    t_ok(mx <= bound && mx > 0.95 * bound, "in_proj_weight xavier: max |w| %.4f within bound %.4f", mx, bound);
    k = nn_param_find(&m.params, "query_embed.weight");
    w = nn_param_host(&m.params, k);
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < m.params.p[k].n; i++) { s1 += w[i]; s2 += w[i] * w[i]; }
    double n = (double)m.params.p[k].n, mean = s1 / n, var = s2 / n - mean * mean;
    t_ok(fabs(mean) < 0.03 && fabs(var - 1) < 0.05, "query_embed ~ N(0,1): mean %.3f var %.3f", mean, var);
    k = nn_param_find(&m.params, "backbone.0.body.layer3.5.bn2.running_var");
    t_ok(nn_param_host(&m.params, k)[7] == 1.0f, "BN running_var at identity");
    size_t Hf = detr_feature_size(&m, 800);
    t_ok(Hf == 25 && detr_feature_size(&m, 1333) == 42, "feature size ceil(H/32): 800 -> %zu, 1333 -> %zu",
         Hf, detr_feature_size(&m, 1333));
    detr_free(&m, dev);

    o.dilation = 1;
    o.pre_norm = 1;
    t_ok(detr_build(&m, &o, dev, 1) == 0, "DETR-DC5-R50 pre-norm builds");
    detr_count(&m, &all, &trainable);
    t_ok(all == 41524768 + 512, "DC5 pre-norm: same count plus the encoder norm (%zu)", all);
    t_ok(detr_feature_size(&m, 800) == 50, "DC5 features at stride 16");
    detr_free(&m, dev);

    o.dilation = 0;
    o.pre_norm = 0;
    o.depth = 101;
    t_ok(detr_build(&m, &o, dev, 1) == 0, "DETR-R101 builds");
    detr_count(&m, &all, &trainable);
    t_ok(all == 60464672 && trainable == 60242272, "DETR-R101: 60,464,672 / 60,242,272 (got %zu / %zu)",
         all, trainable);
    detr_free(&m, dev);
}

static void check_bad(cd_device *dev) {
    detr_opts o;
    detr_model m;
    detr_opts_default(&o);
    o.depth = 18;
    o.dilation = 1;
    t_ok(detr_build(&m, &o, dev, 1) == -1 && strstr(cd_errbuf(), "DC5"), "DC5 on resnet18 is refused: %s", cd_errbuf());
    detr_opts_default(&o);
    o.nheads = 7;
    t_ok(detr_build(&m, &o, dev, 1) == -1 && strstr(cd_errbuf(), "nheads"), "nheads not dividing d: %s", cd_errbuf());
    detr_opts_default(&o);
    o.depth = 42;
    t_ok(detr_build(&m, &o, dev, 1) == -1 && strstr(cd_errbuf(), "resnet42"), "unknown depth: %s", cd_errbuf());
}

static void check_trainable_bn(cd_device *dev) {
    detr_opts o;
    detr_opts_default(&o);
    o.depth = 18; o.width = 16; o.d = 64; o.nheads = 4; o.enc_layers = 1; o.dec_layers = 1; o.dim_ff = 128;
    o.num_queries = 10; o.num_classes = 5; o.bn_trainable = 1; o.train_stem = 1;
    detr_model m;
    t_ok(detr_build(&m, &o, dev, 1) == 0, "small resnet18 with trainable BN builds");
    int k = nn_param_find(&m.params, "backbone.0.body.bn1.weight");
    t_ok(k >= 0 && m.params.p[k].trainable && !m.params.p[k].buffer, "trainable BN: bn1.weight is a trained parameter");
    k = nn_param_find(&m.params, "backbone.0.body.conv1.weight");
    t_ok(k >= 0 && m.params.p[k].trainable, "train_stem: conv1 trains");
    k = nn_param_find(&m.params, "backbone.0.body.layer1.0.bn1.running_var");
    t_ok(k >= 0 && m.params.p[k].buffer && !m.params.p[k].trainable, "running_var stays a buffer");
    /* flat layout: trainable backbone first, then the rest, then frozen and buffers */
    int ok = 1;
    for (int i = 0; i < m.params.n; i++) {
        const nn_param *p = &m.params.p[i];
        if (p->trainable && p->group == NN_GROUP_BACKBONE)
            ok &= p->off >= m.params.train_begin[0] && p->off + p->n <= m.params.train_end[0];
        else if (p->trainable)
            ok &= p->off >= m.params.train_begin[1] && p->off + p->n <= m.params.train_end[1];
        else
            ok &= p->off >= m.params.n_trainable;
    }
    t_ok(ok, "flat layout groups: backbone [%zu, %zu), rest [%zu, %zu), frozen after", m.params.train_begin[0],
         m.params.train_end[0], m.params.train_begin[1], m.params.train_end[1]);
    detr_free(&m, dev);
}

int main(void) {
    cd_device *dev = cd_open(NULL, 0);
    t_ok(dev != NULL, "open device");
    if (!dev) return t_done();
    check_r50(dev);
    check_bad(dev);
    check_trainable_bn(dev);
    cd_close(dev);
    return t_done();
}
