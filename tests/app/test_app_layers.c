/* Per-layer statistics (src/app/layer_stats.c):
 * - the parameter groups of a model, in network order;
 * - after a training step that measures them, each group's weight RMS,
 *   gradient RMS and update ratio equal a host computation from the
 *   parameters read before and after the step, and the activation statistics
 *   of the FFNs and backbone stages equal the host's from the tapped tensors;
 * - a training run with log.layers_every writes a row per group per logged
 *   step with finite values, and layers.png; layer_stats_chart draws two runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cldetr/config.h"
#include "cldetr/data.h"
#include "cldetr/layer_stats.h"
#include "cldetr/setup.h"
#include "cldetr/step.h"
#include "cldetr/trainer.h"
#include "../check.h"
#include "step_fixture.h"
#include "../fixtures.h"

static char dir[200], ini[4096], root[256];

static int group_index(const layer_stats *ls, const char *name) {
    for (int k = 0; k < ls->n_groups; k++)
        if (!strcmp(ls->g[k].name, name)) return k;
    return -1;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

static void test_measure(void) {
    char set_root[300];
    snprintf(set_root, sizeof set_root, "data.root=%s", root);
    const char *sets[] = {set_root, "model.dropout=0"};
    static t_step f;
    if (t_step_open(&f, ini, sets, 2) < 0) return;
    detr_model *mp = &f.m;
    cd_device *dev = f.dev;
    layer_stats ls;
    layer_stats_init(&ls, &mp->params, dev);

    const char *want[] = {"backbone.stem", "backbone.layer1", "backbone.layer2", "backbone.layer3",
                          "backbone.layer4", "input_proj", "enc.0.attn", "enc.0.ffn", "dec.0.self_attn",
                          "dec.0.cross_attn", "dec.0.ffn", "dec.1.self_attn", "dec.1.cross_attn", "dec.1.ffn",
                          "dec.norm", "query_embed", "class_head", "box_mlp.0", "box_mlp.1", "box_mlp.2"};
    int in_order = ls.n_groups == (int)CD_ARRAY_LEN(want);
    for (int k = 0; in_order && k < ls.n_groups; k++) in_order = !strcmp(ls.g[k].name, want[k]);
    t_ok(in_order, "%d parameter groups in network order (stem, stages, input_proj, encoder and decoder layers' "
         "attention and FFN, heads, each box-MLP layer)", ls.n_groups);

    train_step_state *st = &f.st;
    st->stats = &ls;
    st->measure = 1;
    size_t nt = mp->params.n_trainable, total = mp->params.total;
    float *before = malloc(total * sizeof *before), *after = malloc(total * sizeof *after), *grad = malloc(nt * sizeof *grad);
    cd_read(dev, before, mp->params.data, total);
    double lr[2] = {1e-3, 1e-3};
    t_ok(train_step(st, &f.batch, 0, lr) == 0, "a training step that measures: %s", cd_errbuf());
    cd_read(dev, after, mp->params.data, total);
    cd_read(dev, grad, mp->params.grad, nt);

    /* the host's numbers for two groups: one in the backbone, one in the decoder */
    const char *check[] = {"backbone.layer2", "dec.1.ffn", "class_head"};
    for (size_t c = 0; c < CD_ARRAY_LEN(check); c++) {
        int k = group_index(&ls, check[c]);
        double w2 = 0, n = 0, g2 = 0, u2 = 0, wt2 = 0;
        for (int i = 0; i < mp->params.n; i++) {
            if (ls.group_of_param[i] != k) continue;
            const nn_param *p = &mp->params.p[i];
            for (size_t j = 0; j < p->n; j++) {
                double w = after[p->off + j];
                w2 += w * w;
                n += 1;
                if (!p->trainable) continue;
                double g = grad[p->off + j], u = after[p->off + j] - before[p->off + j];
                g2 += g * g;
                u2 += u * u;
                wt2 += w * w;
            }
        }
        const layer_group_stats *gs = &ls.g[k];
        t_ok(k >= 0 && rel(gs->weight_rms, sqrt(w2 / n)) < 1e-4 && rel(gs->grad_rms, sqrt(g2 / n)) < 1e-4 &&
             fabs(gs->update_ratio_log10 - 0.5 * log10(u2 / wt2)) < 1e-3,
             "%s: weight RMS %.6g (host %.6g), gradient RMS %.6g (host %.6g), log10 update/weight %.4f (host %.4f)",
             check[c], gs->weight_rms, sqrt(w2 / n), gs->grad_rms, sqrt(g2 / n), gs->update_ratio_log10,
             0.5 * log10(u2 / wt2));
    }
    /* activations: the tapped tensors are still in the arena */
    struct { const char *group; nn_tensor *t; } taps[] = {{"backbone.layer3", st->out.stage_out[2]},
                                                           {"enc.0.ffn", st->out.enc_ffn[0]},
                                                           {"dec.0.ffn", st->out.dec_ffn[0]}};
    for (size_t c = 0; c < CD_ARRAY_LEN(taps); c++) {
        size_t n = taps[c].t->n;
        float *x = malloc(n * sizeof *x);
        cd_read(dev, x, taps[c].t->data, n);
        double s = 0, s2 = 0, z = 0;
        for (size_t i = 0; i < n; i++) { s += x[i]; s2 += (double)x[i] * x[i]; z += x[i] == 0.0f; }
        double mean = s / n, sd = sqrt(fmax(0, s2 / n - mean * mean));
        const layer_group_stats *gs = &ls.g[group_index(&ls, taps[c].group)];
        t_ok(rel(gs->act_mean, mean) < 1e-4 && rel(gs->act_std, sd) < 1e-3 && fabs(gs->act_zero_frac - z / n) < 1e-6,
             "%s activations: mean %.5g (host %.5g), std %.5g (host %.5g), zeros %.4f (host %.4f)", taps[c].group,
             gs->act_mean, mean, gs->act_std, sd, gs->act_zero_frac, z / n);
        free(x);
    }
    t_ok(isnan(ls.g[group_index(&ls, "input_proj")].act_mean), "groups without tapped activations have none");
    free(before); free(after); free(grad);
    layer_stats_free(&ls, dev);
    t_step_close(&f);
}

/* layers.csv of a short run: every logged step has one row per group with finite weight and gradient RMS. */
static void test_run(const char *name) {
    char s_root[300], s_out[300], s_name[100];
    snprintf(s_root, sizeof s_root, "data.root=%s", root);
    snprintf(s_out, sizeof s_out, "train.out_dir=%s/runs", dir);
    snprintf(s_name, sizeof s_name, "train.name=%s", name);
    const char *sets[] = {s_root, s_out, s_name, "train.max_steps=6", "log.layers_every=2", "log.chart=true",
                          "log.progress=off"};
    train_args a = {ini, sets, CD_ARRAY_LEN(sets), NULL};
    t_ok(train_run(&a) == TRAIN_DONE, "a 6-step run with log.layers_every = 2: %s", cd_errbuf());
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/runs/%s/layers.csv", dir, name);
    FILE *f = fopen(path, "r");
    t_ok(f != NULL, "layers.csv exists");
    if (!f) return;
    int rows[7] = {0}, finite = 1, header = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "step,group,", 11)) { header++; continue; }
        long step;
        char group[64];
        double w, g;
        if (sscanf(line, "%ld,%63[^,],%lf,%lf", &step, group, &w, &g) != 4 || step < 0 || step > 6) { finite = 0; continue; }
        rows[step]++;
        if (!isfinite(w) || !isfinite(g) || w <= 0 || g <= 0) finite = 0;
    }
    fclose(f);
    t_ok(header == 1 && rows[2] == 20 && rows[4] == 20 && rows[6] == 20 && rows[1] == 0 && rows[3] == 0,
         "20 rows (one per group) at steps 2, 4 and 6, none between (got %d, %d, %d)", rows[2], rows[4], rows[6]);
    t_ok(finite, "every row has a finite, positive weight and gradient RMS (every group trains here)");
    struct stat sb;
    snprintf(path, sizeof path, "%s/runs/%s/layers.png", dir, name);
    t_ok(stat(path, &sb) == 0 && sb.st_size > 1000, "layers.png drawn at the final validation");
}

int main(void) {
    t_ok(t_tmpdir(dir, sizeof dir, "cldetr-layers-test") != NULL, "temp folder");
    snprintf(root, sizeof root, "%s/shapes", dir);
    t_ok(t_make_shapes(root, 8, 4, 64, 3, 0) == 0, "a tiny shapes dataset");
    snprintf(ini, sizeof ini, "%s/tests/fixtures/tiny.ini", getenv("CLDETR_SOURCE_ROOT"));
    test_measure();
    test_run("a");
    test_run("b");
    char a[300], b[300], png[300];
    snprintf(a, sizeof a, "%s/runs/a", dir);
    snprintf(b, sizeof b, "%s/runs/b", dir);
    snprintf(png, sizeof png, "%s/two.png", dir);
    const char *runs[] = {a, b};
    struct stat sb;
    t_ok(layer_stats_chart(runs, 2, png) == 0 && stat(png, &sb) == 0 && sb.st_size > 1000,
         "layer_stats_chart draws two runs in one grid: %s", cd_errbuf());
    /* resume: rows after the checkpoint's step (a run killed before its next checkpoint) are cut */
    char s_root[300], s_out[300];
    snprintf(s_root, sizeof s_root, "data.root=%s", root);
    snprintf(s_out, sizeof s_out, "train.out_dir=%s/runs", dir);
    const char *sets[] = {s_root, s_out, "train.name=c", "train.max_steps=4", "log.layers_every=2", "log.progress=off"};
    train_args ta = {ini, sets, CD_ARRAY_LEN(sets), NULL};
    t_ok(train_run(&ta) == TRAIN_DONE, "a 4-step run: %s", cd_errbuf());
    char csv[400], run_c[300];
    snprintf(csv, sizeof csv, "%s/runs/c/layers.csv", dir);
    FILE *f = fopen(csv, "a");
    if (f) { fputs("6,backbone.stem,1,1,1,,,\n6,class_head,1,1,1,,,\n7,cut", f); fclose(f); }
    snprintf(run_c, sizeof run_c, "%s/runs/c", dir);
    const char *more[] = {"train.max_steps=6"};
    train_args tr = {NULL, more, 1, run_c};
    t_ok(train_run(&tr) == TRAIN_DONE, "resumed to step 6: %s", cd_errbuf());
    char *text = cd_read_file(csv, NULL);
    int n6 = 0;
    for (char *p = text; p && (p = strstr(p, "\n6,")) != NULL; p++) n6++;
    t_ok(text && n6 == 20 && !strstr(text, "7,cut"), "after the resume layers.csv has step 6 once per group (%d rows)",
         n6);
    free(text);

    const char *none[] = {dir};
    t_ok(layer_stats_chart(none, 1, png) < 0 && strstr(cd_errbuf(), "layers.csv"),
         "a folder without layers.csv is named: %s", cd_errbuf());
    t_rmtree(dir);
    return t_done();
}
