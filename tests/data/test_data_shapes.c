/* make-shapes: same seed same bytes, another seed other images, the output is
 * a valid COCO dataset that data_open loads, boxes tight and big enough; the
 * CLI verb's help and bad arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../check.h"
#include "../fixtures.h"
#include "cldetr/common.h"
#include "cldetr/data.h"

static uint64_t tree_hash(const char *dir, int n_train, int n_val) {
    uint64_t h = CD_FNV_SEED;
    char p[1024];
    const char *files[2] = {"annotations/train.json", "annotations/val.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        size_t len;
        char *b = cd_read_file(p, &len);
        if (!b) return 0;
        h = cd_fnv1a(b, len, h);
        free(b);
    }
    for (int s = 0; s < 2; s++)
        for (int i = 1; i <= (s ? n_val : n_train); i++) {
            snprintf(p, sizeof p, "%s/%s/%06d.png", dir, s ? "val" : "train", i);
            size_t len;
            char *b = cd_read_file(p, &len);
            if (!b) return 0;
            h = cd_fnv1a(b, len, h);
            free(b);
        }
    return h;
}

static int run(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    for (size_t i = 0; i < n; i++)      /* one TAP line per check */
        if (out[i] == '\n') out[i] = ' ';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    (void)t_seed; (void)t_uniform; (void)t_close_f;   /* check.h helpers this test does not use */
    char tmp[256], a[512], b[512], c[512];
    if (!t_tmpdir(tmp, sizeof tmp, "cldetr_shapes")) { t_ok(0, "mkdtemp"); return t_done(); }
    snprintf(a, sizeof a, "%s/a", tmp); snprintf(b, sizeof b, "%s/b", tmp); snprintf(c, sizeof c, "%s/c", tmp);
    shapes_opts o;
    shapes_opts_default(&o);
    o.n_train = 30; o.n_val = 6; o.size = 96; o.seed = 9; o.progress = 0; o.min_objects = 2; o.max_objects = 5;
    o.dir = a;
    t_ok(shapes_generate(&o) == 0, "shapes written to a");
    o.dir = b;
    t_ok(shapes_generate(&o) == 0, "shapes written to b");
    o.dir = c; o.seed = 10;
    t_ok(shapes_generate(&o) == 0, "shapes written to c (another seed)");
    uint64_t ha = tree_hash(a, 30, 6), hb = tree_hash(b, 30, 6), hc = tree_hash(c, 30, 6);
    t_ok(ha && ha == hb, "same seed: same bytes in every file");
    t_ok(hc && hc != ha, "another seed: other files");

    /* validity through the data layer */
    char ann[600], imgs[600];
    for (int s = 0; s < 2; s++) {
        snprintf(ann, sizeof ann, "%s/annotations/%s.json", a, s ? "val" : "train");
        snprintf(imgs, sizeof imgs, "%s/%s", a, s ? "val" : "train");
        data_opts dop;
        data_opts_default(&dop);
        dop.ann_file = ann; dop.image_dir = imgs;
        data_dataset *d = data_open(&dop);
        t_ok(d != NULL, "%s split loads with on_bad_sample=error (%s)", s ? "val" : "train", d ? "ok" : cd_errbuf());
        if (!d) continue;
        const coco_dataset *cc = data_coco(d);
        int cats_ok = cc->n_cats == 4, anns_ok = 1, counts_ok = 1, classes[5] = {0};
        for (size_t k = 0; k < cc->n_cats; k++)
            cats_ok &= cc->cats[k].id == (int64_t)k + 1 && !strcmp(cc->cats[k].name, shapes_class_names[k]);
        for (size_t k = 0; k < cc->n_anns; k++) {
            const coco_ann *an = &cc->anns[k];
            anns_ok &= an->bbox[0] >= 0 && an->bbox[1] >= 0 && an->bbox[0] + an->bbox[2] <= 96 &&
                       an->bbox[1] + an->bbox[3] <= 96 && an->bbox[2] >= 0.12 * 96 && an->bbox[3] >= 0.12 * 96 &&
                       an->area == an->bbox[2] * an->bbox[3] && an->iscrowd == 0;
            if (an->category_id >= 1 && an->category_id <= 4) classes[an->category_id]++;
        }
        for (size_t k = 0; k < cc->n_images; k++) {
            counts_ok &= cc->images[k].ann_count >= 2 && cc->images[k].ann_count <= 5;
            counts_ok &= cc->images[k].width == 96 && cc->images[k].height == 96;
        }
        t_ok(cats_ok, "%s: categories 1..4 named circle, square, triangle, cross", s ? "val" : "train");
        t_ok(anns_ok, "%s: every box inside the image, sides >= 12%% of it, area = w*h, iscrowd 0", s ? "val" : "train");
        t_ok(counts_ok, "%s: 2..5 objects per 96x96 image", s ? "val" : "train");
        if (!s) t_ok(classes[1] && classes[2] && classes[3] && classes[4], "train: every class appears (%d %d %d %d)",
                     classes[1], classes[2], classes[3], classes[4]);
        /* the PNGs decode at the size the JSON gives */
        if (!s) {
            data_image im;
            int tight = 1;
            size_t checked = 0;
            for (size_t k = 0; k < cc->n_images && k < 10; k++) {
                char p[700];
                snprintf(p, sizeof p, "%s/%s", imgs, cc->images[k].file_name);
                if (data_image_load(&im, p)) { tight = 0; break; }
                t_ok(im.w == 96 && im.h == 96, "image %s decodes at 96x96", cc->images[k].file_name);
                data_image_free(&im);
                checked++;
            }
            t_ok(tight && checked == 10, "first 10 PNGs decode");
        }
        data_close(d);
    }

    const char *bin = getenv("CLDETR_BIN");
    if (bin) {
        char cmd[1200], out[8192];
        snprintf(cmd, sizeof cmd, "'%s' make-shapes --help 2>&1", bin);
        int rc = run(cmd, out, sizeof out);
        t_ok(rc == 0 && strstr(out, "--train N") && strstr(out, "--min-objects"), "make-shapes --help: exit 0, options listed");
        snprintf(cmd, sizeof cmd, "'%s' make-shapes '%s/d' --train 3 --val 1 --size 96 --seed 9 --min-objects 2 "
                                  "--max-objects 5 -q 2>&1", bin, tmp);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 0, "make-shapes CLI runs (%s)", out);
        snprintf(cmd, sizeof cmd, "'%s' make-shapes '%s/e' --train abc 2>&1", bin, tmp);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 2 && strstr(out, "--train expects an integer") && strstr(out, "'abc'"), "bad --train: exit 2, '%s'", out);
        snprintf(cmd, sizeof cmd, "'%s' make-shapes --train 3 2>&1", bin);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 2 && strstr(out, "missing the output folder"), "no DIR: exit 2 and says so");
        snprintf(cmd, sizeof cmd, "'%s' make-shapes '%s/f' --min-objects 4 --max-objects 2 2>&1", bin, tmp);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 2 && strstr(out, "--min-objects 4 is above --max-objects 2"), "min > max objects: exit 2, '%s'", out);
        snprintf(cmd, sizeof cmd, "'%s' make-shapes /proc/nope --train 1 --val 0 2>&1", bin);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 1 && strstr(out, "cannot create folder /proc/nope"), "unwritable DIR: exit 1, '%s'", out);
        snprintf(cmd, sizeof cmd, "'%s' make-shapes '%s/g' --bogus 1 2>&1", bin, tmp);
        rc = run(cmd, out, sizeof out);
        t_ok(rc == 2 && strstr(out, "unknown option '--bogus'"), "unknown option: exit 2, '%s'", out);
    } else {
        t_diag("CLDETR_BIN not set: CLI checks skipped");
    }
    t_rmtree(tmp);
    return t_done();
}
