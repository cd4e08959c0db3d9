/* Per-layer statistics of a training run (include/cldetr/layer_stats.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/chart.h"
#include "cldetr/layer_stats.h"
#include "cldetr/ops.h"

/* The group of a parameter, from its official name. */
static void group_of(const char *p, char *out, size_t n) {
    int i;
    char sub[64];
    if (sscanf(p, "backbone.0.body.layer%d.", &i) == 1) snprintf(out, n, "backbone.layer%d", i);
    else if (!strncmp(p, "backbone.0.body.", 16)) snprintf(out, n, "backbone.stem");
    else if (!strncmp(p, "backbone.1.", 11)) snprintf(out, n, "pos_embed");
    else if (sscanf(p, "transformer.encoder.layers.%d.%63[^.]", &i, sub) == 2)
        snprintf(out, n, "enc.%d.%s", i, !strcmp(sub, "self_attn") || !strcmp(sub, "norm1") ? "attn" : "ffn");
    else if (sscanf(p, "transformer.decoder.layers.%d.%63[^.]", &i, sub) == 2)
        snprintf(out, n, "dec.%d.%s", i, !strcmp(sub, "self_attn") || !strcmp(sub, "norm1") ? "self_attn" :
                 !strcmp(sub, "multihead_attn") || !strcmp(sub, "norm2") ? "cross_attn" : "ffn");
    else if (!strncmp(p, "transformer.encoder.norm", 24)) snprintf(out, n, "enc.norm");
    else if (!strncmp(p, "transformer.decoder.norm", 24)) snprintf(out, n, "dec.norm");
    else if (sscanf(p, "bbox_embed.layers.%d.", &i) == 1) snprintf(out, n, "box_mlp.%d", i);
    else if (!strncmp(p, "class_embed.", 12)) snprintf(out, n, "class_head");
    else {                                   /* query_embed, input_proj, anything new: the module's name */
        snprintf(out, n, "%.47s", p);
        char *dot = strrchr(out, '.');
        if (dot) *dot = '\0';
    }
}

static int find_group(const layer_stats *ls, const char *name) {
    for (int k = 0; k < ls->n_groups; k++)
        if (!strcmp(ls->g[k].name, name)) return k;
    return -1;
}

#define N_TAPS(o) (4 + 2 * DETR_MAX_LAYERS)

void layer_stats_init(layer_stats *ls, const nn_params *ps, cd_device *dev) {
    memset(ls, 0, sizeof *ls);
    ls->g = cd_xcalloc((size_t)ps->n, sizeof *ls->g);
    ls->group_of_param = cd_xmalloc((size_t)ps->n * sizeof *ls->group_of_param);
    for (int i = 0; i < ps->n; i++) {
        ls->group_of_param[i] = -1;
        if (ps->p[i].buffer) continue;       /* BN running statistics are not weights */
        char name[sizeof ls->g[0].name];
        group_of(ps->p[i].name, name, sizeof name);
        int k = find_group(ls, name);
        if (k < 0) {
            k = ls->n_groups++;
            snprintf(ls->g[k].name, sizeof ls->g[k].name, "%s", name);
        }
        ls->group_of_param[i] = k;
    }
    /* network order: backbone, input projection, encoder, decoder, heads (stable within each) */
    int *rank = cd_xmalloc((size_t)CD_MAX(ls->n_groups, 1) * sizeof *rank), *pos = cd_xmalloc((size_t)CD_MAX(ls->n_groups, 1) * sizeof *pos);
    static const char *order[] = {"backbone.stem", "backbone.layer", "pos_embed", "input_proj", "enc.", "dec.",
                                  "query_embed", "class_head", "box_mlp"};
    for (int k = 0; k < ls->n_groups; k++) {
        rank[k] = (int)CD_ARRAY_LEN(order);
        for (int j = 0; j < (int)CD_ARRAY_LEN(order); j++)
            if (!strncmp(ls->g[k].name, order[j], strlen(order[j]))) { rank[k] = j; break; }
    }
    layer_group_stats *sorted = cd_xcalloc((size_t)CD_MAX(ls->n_groups, 1), sizeof *sorted);
    int n = 0;
    for (int r = 0; r <= (int)CD_ARRAY_LEN(order); r++)
        for (int k = 0; k < ls->n_groups; k++)
            if (rank[k] == r) { pos[k] = n; sorted[n++] = ls->g[k]; }
    for (int i = 0; i < ps->n; i++)
        if (ls->group_of_param[i] >= 0) ls->group_of_param[i] = pos[ls->group_of_param[i]];
    free(ls->g);
    ls->g = sorted;
    free(rank);
    free(pos);
    ls->sums = cd_alloc(dev, 3 * (size_t)CD_MAX(ps->n, 1), "per-layer statistics");
    ls->moments = cd_alloc(dev, 3 * N_TAPS(), "per-layer activation statistics");
    if (ps->n_trainable) ls->prev = cd_alloc(dev, ps->n_trainable, "weights before the update (per-layer statistics)");
}

void layer_stats_free(layer_stats *ls, cd_device *dev) {
    if (ls->sums.mem) cd_free(dev, ls->sums);
    if (ls->moments.mem) cd_free(dev, ls->moments);
    if (ls->prev.mem) cd_free(dev, ls->prev);
    free(ls->g);
    free(ls->group_of_param);
    memset(ls, 0, sizeof *ls);
}

void layer_stats_before_update(layer_stats *ls, cd_device *dev, const nn_params *ps) {
    if (ps->n_trainable) cd_copy(dev, ls->prev, ps->data, ps->n_trainable);
}

/* The activation taps of a forward, with the group each belongs to. */
static int taps(const detr_out *o, nn_tensor **t, char names[][48]) {
    int n = 0;
    for (int s = 0; s < 4; s++)
        if (o->stage_out[s]) { t[n] = o->stage_out[s]; snprintf(names[n++], 48, "backbone.layer%d", s + 1); }
    for (int l = 0; l < DETR_MAX_LAYERS; l++)
        if (o->enc_ffn[l]) { t[n] = o->enc_ffn[l]; snprintf(names[n++], 48, "enc.%d.ffn", l); }
    for (int l = 0; l < DETR_MAX_LAYERS; l++)
        if (o->dec_ffn[l]) { t[n] = o->dec_ffn[l]; snprintf(names[n++], 48, "dec.%d.ffn", l); }
    return n;
}

void layer_stats_measure(layer_stats *ls, cd_device *dev, const nn_params *ps, const detr_out *o) {
    /* the update: prev = weights after - weights before */
    if (ps->n_trainable) op_axpby(dev, ls->prev, 1.0f, ps->data, -1.0f, ps->n_trainable);
    for (int i = 0; i < ps->n; i++) {
        const nn_param *p = &ps->p[i];
        if (ls->group_of_param[i] < 0) continue;
        op_sumsq(dev, cd_at(ls->sums, 3 * (size_t)i), cd_at(ps->data, p->off), p->n);
        if (!p->trainable) continue;
        op_sumsq(dev, cd_at(ls->sums, 3 * (size_t)i + 1), cd_at(ps->grad, p->off), p->n);
        op_sumsq(dev, cd_at(ls->sums, 3 * (size_t)i + 2), cd_at(ls->prev, p->off), p->n);
    }
    nn_tensor *t[N_TAPS()];
    char names[N_TAPS()][48];
    int nt = o ? taps(o, t, names) : 0;
    for (int k = 0; k < nt; k++) op_moments(dev, cd_at(ls->moments, 3 * (size_t)k), t[k]->data, t[k]->n);

    float *sums = cd_xmalloc(3 * (size_t)CD_MAX(ps->n, 1) * sizeof *sums), mom[3 * N_TAPS()];
    cd_read(dev, sums, ls->sums, 3 * (size_t)CD_MAX(ps->n, 1));
    if (nt) cd_read(dev, mom, ls->moments, 3 * (size_t)nt);
    double (*acc)[5] = cd_xcalloc((size_t)CD_MAX(ls->n_groups, 1), sizeof *acc);   /* w2, n, g2, u2, n_train */
    for (int i = 0; i < ps->n; i++) {
        int k = ls->group_of_param[i];
        if (k < 0) continue;
        acc[k][0] += sums[3 * i];
        acc[k][1] += (double)ps->p[i].n;
        if (ps->p[i].trainable) {
            acc[k][2] += sums[3 * i + 1];
            acc[k][3] += sums[3 * i + 2];
            acc[k][4] += (double)ps->p[i].n;
        }
    }
    for (int k = 0; k < ls->n_groups; k++) {
        layer_group_stats *g = &ls->g[k];
        g->weight_rms = sqrt(acc[k][0] / acc[k][1]);
        g->grad_rms = acc[k][4] > 0 ? sqrt(acc[k][2] / acc[k][4]) : NAN;
        double w2 = 0;                           /* the trained weights' share, for the ratio */
        for (int i = 0; i < ps->n; i++)
            if (ls->group_of_param[i] == k && ps->p[i].trainable) w2 += sums[3 * i];
        g->update_ratio_log10 = acc[k][4] > 0 && w2 > 0 && acc[k][3] > 0 ? 0.5 * log10(acc[k][3] / w2) : NAN;
        g->act_mean = g->act_std = g->act_zero_frac = NAN;
    }
    for (int j = 0; j < nt; j++) {
        int k = find_group(ls, names[j]);
        if (k < 0) continue;
        double n = (double)t[j]->n, mean = mom[3 * j] / n;
        ls->g[k].act_mean = mean;
        ls->g[k].act_std = sqrt(fmax(0.0, mom[3 * j + 1] / n - mean * mean));
        ls->g[k].act_zero_frac = mom[3 * j + 2] / n;
    }
    free(acc);
    free(sums);
}

static void cell(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.6g", v);
    else fputc(',', f);
}

void layer_stats_write(const layer_stats *ls, FILE *csv, long step) {
    for (int k = 0; k < ls->n_groups; k++) {
        const layer_group_stats *g = &ls->g[k];
        fprintf(csv, "%ld,%s", step, g->name);
        cell(csv, g->weight_rms);
        cell(csv, g->grad_rms);
        cell(csv, g->update_ratio_log10);
        cell(csv, g->act_mean);
        cell(csv, g->act_std);
        cell(csv, g->act_zero_frac);
        fputc('\n', csv);
    }
    fflush(csv);
}

/* ---- the chart ------------------------------------------------------------------ */

/* One run's layers.csv: rows (step, group, 6 values). The group column is
 * text, so the file is read here rather than with chart_csv. */
typedef struct { double step; char group[48]; double v[6]; } row;

static int read_layers(const char *run, row **rows, size_t *n) {
    char path[2300];
    snprintf(path, sizeof path, "%s/layers.csv", run);
    FILE *f = fopen(path, "r");
    if (!f) return cd_seterr("%s: cannot open (was the run trained with log.layers_every > 0?)", path);
    char line[1024];
    size_t cap = 0;
    *rows = NULL;
    *n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "step,", 5) || !strchr(line, '\n')) continue;    /* header, or a torn last line */
        row r;
        char *p = line, *end;
        r.step = strtod(p, &end);
        if (end == p || *end != ',') continue;
        p = end + 1;
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof r.group || p[len] != ',') continue;
        memcpy(r.group, p, len);
        r.group[len] = '\0';
        p += len;
        int ok = 1;
        for (int k = 0; k < 6 && ok; k++) {
            if (*p != ',') { ok = 0; break; }
            p++;
            r.v[k] = *p == ',' || *p == '\n' ? NAN : strtod(p, &end);
            if (*p != ',' && *p != '\n') p = end;
        }
        if (!ok) continue;
        if (*n == cap) *rows = cd_xrealloc(*rows, (cap = cap ? 2 * cap : 256) * sizeof **rows);
        (*rows)[(*n)++] = r;
    }
    fclose(f);
    return 0;
}

#define TILE_W 360
#define TILE_H 230
#define COLS 4

int layer_stats_chart(const char *const *run_dirs, int n_runs, const char *png_path) {
    row **rows = cd_xcalloc((size_t)n_runs, sizeof *rows);
    size_t *nrows = cd_xcalloc((size_t)n_runs, sizeof *nrows);
    char (*groups)[48] = NULL;
    int n_groups = 0, rc = 0;
    for (int r = 0; r < n_runs && rc == 0; r++) {
        rc = read_layers(run_dirs[r], &rows[r], &nrows[r]);
        for (size_t i = 0; rc == 0 && i < nrows[r]; i++) {     /* groups in order of first appearance */
            int k = 0;
            while (k < n_groups && strcmp(groups[k], rows[r][i].group)) k++;
            if (k == n_groups) {
                groups = cd_xrealloc(groups, (size_t)(n_groups + 1) * sizeof *groups);
                snprintf(groups[n_groups++], 48, "%s", rows[r][i].group);
            }
        }
    }
    if (rc == 0 && n_groups == 0) rc = cd_seterr("%s/layers.csv: no rows yet", run_dirs[0]);
    /* a tile per group for the weights (3 quantities, log10), and one per group with activations */
    int *act = cd_xcalloc((size_t)CD_MAX(n_groups, 1), sizeof *act), n_tiles = n_groups;
    for (int k = 0; k < n_groups; k++)
        for (int r = 0; r < n_runs && !act[k]; r++)
            for (size_t i = 0; i < nrows[r] && !act[k]; i++)
                if (!strcmp(rows[r][i].group, groups[k]) && isfinite(rows[r][i].v[3])) act[k] = 1;
    for (int k = 0; k < n_groups; k++) n_tiles += act[k];
    int rows_of_tiles = (n_tiles + COLS - 1) / COLS;
    data_image all = {COLS * TILE_W, CD_MAX(rows_of_tiles, 1) * TILE_H, NULL};
    all.rgb = cd_xmalloc((size_t)all.w * (size_t)all.h * 3);
    memset(all.rgb, 255, (size_t)all.w * (size_t)all.h * 3);
    static const char *wq[3] = {"weight RMS", "grad RMS", "update/weight"};   /* all log10 (the y label) */
    static const char *aq[3] = {"mean", "std", "zero fraction"};
    int tile = 0, legend_w = 0, legend_act = 0;
    for (int k = 0; rc == 0 && k < n_groups; k++) {
        for (int pass = 0; pass < 1 + act[k]; pass++, tile++) {
            chart_series s[3 * 8];
            char names[3 * 8][160];
            double *mem[2 * 3 * 8];
            int ns = 0, nm = 0;
            for (int r = 0; r < n_runs && r < 8; r++)
                for (int q = 0; q < 3; q++) {
                    size_t m = 0;
                    double *x = cd_xmalloc((nrows[r] + 1) * sizeof *x), *y = cd_xmalloc((nrows[r] + 1) * sizeof *y);
                    for (size_t i = 0; i < nrows[r]; i++) {
                        const row *w = &rows[r][i];
                        if (strcmp(w->group, groups[k])) continue;
                        double v = pass ? w->v[3 + q] : w->v[q];
                        x[m] = w->step;
                        y[m++] = pass || q == 2 ? v : log10(v);
                    }
                    char run[256];
                    chart_run_name(run_dirs[r], run, sizeof run);
                    if (n_runs > 1) snprintf(names[ns], sizeof names[ns], "%.100s: %s", run, pass ? aq[q] : wq[q]);
                    else snprintf(names[ns], sizeof names[ns], "%s", pass ? aq[q] : wq[q]);
                    /* a legend in the first tile of each kind only: the colours mean the same in every tile */
                    int legend = pass ? !legend_act : !legend_w;
                    s[ns] = (chart_series){legend ? names[ns] : NULL, x, y, m};
                    mem[nm++] = x;
                    mem[nm++] = y;
                    ns++;
                }
            if (pass) legend_act = 1;
            else legend_w = 1;
            chart_opts o;
            chart_opts_default(&o);
            char title[96];
            snprintf(title, sizeof title, "%s%s", groups[k], pass ? " activations" : "");
            o.title = title;
            o.x_label = "step";
            o.y_label = pass ? NULL : "log10";
            o.width = TILE_W;
            o.height = TILE_H;
            data_image im;
            chart_render(&im, NULL, &o, s, (size_t)ns);
            int tx = (tile % COLS) * TILE_W, ty = (tile / COLS) * TILE_H;
            for (int y = 0; y < im.h && ty + y < all.h; y++)
                memcpy(all.rgb + ((size_t)(ty + y) * (size_t)all.w + (size_t)tx) * 3, im.rgb + (size_t)y * (size_t)im.w * 3,
                       (size_t)CD_MIN(im.w, all.w - tx) * 3);
            data_image_free(&im);
            for (int i = 0; i < nm; i++) free(mem[i]);
        }
    }
    if (rc == 0) rc = data_write_png(png_path, &all);
    free(all.rgb);
    for (int r = 0; r < n_runs; r++) free(rows[r]);
    free(rows);
    free(nrows);
    free(groups);
    free(act);
    return rc;
}
