/* cldetr summary CONFIG: parameters per module (trainable and frozen), totals,
 * and the activation memory of one training step at the config's batch and
 * largest input size (counted by a dry forward: nothing runs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/config.h"
#include "cldetr/detr.h"
#include "cldetr/setup.h"
#include "cli/args.h"
#include "cli/cli.h"

static const char *group_of(const char *name, char *buf, size_t n) {
    static const char *prefixes[] = {
        "backbone.0.body.conv1", "backbone.0.body.bn1", "backbone.0.body.layer1", "backbone.0.body.layer2",
        "backbone.0.body.layer3", "backbone.0.body.layer4", "backbone.1", "input_proj",
        "transformer.encoder", "transformer.decoder", "query_embed", "class_embed", "bbox_embed"};
    for (size_t i = 0; i < CD_ARRAY_LEN(prefixes); i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) { snprintf(buf, n, "%s", prefixes[i]); return buf; }
    snprintf(buf, n, "%s", name);
    return buf;
}

static const char *commas(size_t v, char *buf) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%zu", v), o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

int cmd_summary(int argc, char **argv) {
    const char *path = NULL;
    args a;
    args_init(&a, "summary", argc, argv, ARGS_SETS);
    while (args_next(&a)) args_single(&a, &path, "config file");
    if (a.rc >= 0) return a.rc;
    if (!path) return args_missing(&a, "give a config file");
    static config cfg;
    if (config_load(&cfg, path, a.sets, a.n_sets) < 0) return cli_error();
    int from_data = 0;
    if (cfg.model.num_classes <= 0 && (from_data = setup_num_classes(&cfg)) < 0) return cli_error();
    detr_opts o;
    if (setup_detr_opts(&o, &cfg, from_data) < 0) return cli_error();
    cd_device *dev = cd_open(NULL, 0);      /* any device: nothing runs, only buffers are made */
    if (!dev) return cli_error();
    detr_model m;
    if (detr_build(&m, &o, dev, 0) < 0) return cli_error();

    printf("model: resnet%d (width %d%s, %s BN), d=%d, %d heads, %d+%d layers, FFN %d, %d queries, %d classes + no-object\n",
           o.depth, o.width, o.dilation ? ", DC5" : "", o.bn_trainable ? "trainable" : "frozen", o.d, o.nheads,
           o.enc_layers, o.dec_layers, o.dim_ff, o.num_queries, o.num_classes);
    printf("\n%-30s %14s %14s %14s\n", "module", "trainable", "frozen", "buffers");
    char cur[128] = "", name[128], n1[32], n2[32], n3[32];
    size_t tr = 0, fr = 0, bu = 0, all = 0, trainable = 0;
    for (int i = 0; i <= m.params.n; i++) {
        const nn_param *p = i < m.params.n ? &m.params.p[i] : NULL;
        if (p) group_of(p->name, name, sizeof name);
        if (!p || strcmp(name, cur)) {
            if (cur[0]) printf("%-30s %14s %14s %14s\n", cur, commas(tr, n1), commas(fr, n2), commas(bu, n3));
            if (!p) break;
            snprintf(cur, sizeof cur, "%s", name);
            tr = fr = bu = 0;
        }
        if (p->buffer) bu += p->n;
        else if (p->trainable) tr += p->n;
        else fr += p->n;
    }
    detr_count(&m, &all, &trainable);
    printf("\nparameters: %s trainable, %s frozen, %s in all (buffers such as BN statistics not counted)\n",
           commas(trainable, n1), commas(all - trainable, n2), commas(all, n3));

    setup_step_memory mem;
    setup_estimate_step_memory(&mem, &m, &cfg, dev);
    double mib = 1.0 / 1048576.0;
    printf("training step at batch %zu, worst-case input %zux%zu (features %zux%zu, %zu tokens):\n", mem.B, mem.H,
           mem.W, mem.Hf, mem.Wf, mem.Hf * mem.Wf);
    printf("  activations %.1f MiB, activation gradients %.1f MiB at the backward's peak (%.1f MiB in all), "
           "parameters+grads+Adam %.1f MiB\n", mem.activations * mib, mem.activation_grads * mib,
           mem.activation_grads_all * mib, mem.params * mib);
    printf("  arithmetic %.1f GFLOP in matrix ops (linear, conv, attention products): forward %.1f, backward %.1f\n",
           (mem.flops_fw + mem.flops_bw) * 1e-9, mem.flops_fw * 1e-9, mem.flops_bw * 1e-9);
    detr_free(&m, dev);
    cd_close(dev);
    return 0;
}
