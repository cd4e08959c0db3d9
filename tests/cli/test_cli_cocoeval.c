/* `cldetr cocoeval` run as a subprocess ($CLDETR_BIN): the table equals
 * pycocotools' output, --per-class and --json work, and bad input gives a
 * non-zero exit with a message naming the file and the problem. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "../cli_run.h"
#include "cldetr/coco.h"
#include "cldetr/common.h"

static char dir[256], bin[1024], fix[1200];
static char *out_text, *err_text;

/* Run `cldetr ARGS`; its exit code, and stdout / stderr in out_text / err_text. */
static int run(const char *args) { return t_run_cli(bin, dir, args, &out_text, &err_text); }

static const char *write_tmp(const char *name, const char *text) { return t_write_in(dir, name, text); }

/* cldetr cocoeval on a results file with text must fail naming the problem. */
static void bad_results(const char *what, const char *text, const char *needle) {
    char args[2048];
    const char *res = write_tmp("bad.res.json", text);
    snprintf(args, sizeof args, "cocoeval '%s/handmade.gt.json' '%s'", fix, res);
    int rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "bad.res.json") && strstr(err_text, needle) && out_text[0] == '\0',
         "cocoeval with %s: exit %d, \"%.*s\"", what, rc, (int)strcspn(err_text, "\n"), err_text);
}

static void table_vs_pycocotools(const char *name) {
    char args[3000], path[1300];
    snprintf(path, sizeof path, "%s/%s.expected.json", fix, name);
    cJSON *exp = cd_json_parse_file(path);
    t_ok(exp != NULL, "read %s", path);
    if (!exp) return;
    snprintf(args, sizeof args, "cocoeval '%s/%s.gt.json' '%s/%s.res.json' --json '%s/out.json'", fix, name, fix,
             name, dir);
    int rc = run(args);
    t_ok(rc == 0, "%s: cocoeval exits 0 (%d) %s", name, rc, rc ? err_text : "");
    /* stdout must be exactly pycocotools' 12 summary lines */
    char want[4096] = "";
    for (const cJSON *l = cJSON_GetObjectItem(exp, "summary")->child; l; l = l->next) {
        strncat(want, l->valuestring, sizeof want - strlen(want) - 2);
        strcat(want, "\n");
    }
    int same = !strcmp(out_text, want);
    if (!same) t_diag("got:\n%s\nwant:\n%s", out_text, want);
    t_ok(same, "%s: stdout is pycocotools' summarize() table, byte for byte", name);
    t_ok(strstr(err_text, "detections") != NULL, "%s: a counts line on stderr: %.*s", name,
         (int)strcspn(err_text, "\n"), err_text);

    snprintf(path, sizeof path, "%s/out.json", dir);
    cJSON *js = cd_json_parse_file(path);
    t_ok(js != NULL, "%s: --json wrote valid JSON %s", name, js ? "" : cd_errbuf());
    if (js) {
        double ref[12], got[12];
        const cJSON *a = cJSON_GetObjectItem(exp, "stats"), *b = cJSON_GetObjectItem(js, "stats_list");
        int n = 0;
        for (const cJSON *v = a->child; v && n < 12; v = v->next) ref[n++] = v->valuedouble;
        n = 0;
        for (const cJSON *v = b ? b->child : NULL; v && n < 12; v = v->next) got[n++] = v->valuedouble;
        t_ok(n == 12, "%s: --json has 12 stats", name);
        char label[128];
        snprintf(label, sizeof label, "%s: --json stats equal pycocotools' (exact after the round trip)", name);
        t_close_d(label, ref, got, n == 12 ? 12 : 0, 0, 0);
        const cJSON *ap = cJSON_GetObjectItem(cJSON_GetObjectItem(js, "stats"), "AP");
        t_ok(ap && ap->valuedouble == ref[0], "%s: --json stats.AP", name);
        t_ok(cJSON_GetArraySize(cJSON_GetObjectItem(js, "per_category")) ==
                 cJSON_GetArraySize(cJSON_GetObjectItem(exp, "cat_ids")),
             "%s: --json per_category has every category", name);
        cJSON_Delete(js);
    }
    cJSON_Delete(exp);
}

int main(void) {
    (void)t_close_f; (void)t_seed; (void)t_uniform;   /* check.h helpers this test does not use */
    char root[1024];
    t_cli_setup(bin, sizeof bin, root, sizeof root, dir, sizeof dir, "cldetr-test-evalcli");
    snprintf(fix, sizeof fix, "%s/tests/fixtures/eval", root);

    int rc = run("cocoeval --help");
    t_ok(rc == 0 && strstr(out_text, "usage: cldetr cocoeval GT.json RESULTS.json") && strstr(out_text, "--per-class"),
         "cocoeval --help exits 0 with the usage");
    rc = run("cocoeval");
    t_ok(rc == 2 && strstr(err_text, "give GT.json and RESULTS.json"), "cocoeval without files: exit 2 and usage");
    rc = run("cocoeval a.json b.json --bogus");
    t_ok(rc == 2 && strstr(err_text, "unknown option '--bogus'"), "unknown option: exit 2, named");
    rc = run("cocoeval a.json b.json --json");
    t_ok(rc == 2 && strstr(err_text, "cldetr cocoeval: --json needs a value"), "--json without a file: exit 2");
    rc = run("");
    t_ok(strstr(err_text, "cocoeval") != NULL, "cocoeval listed in cldetr's verbs");

    table_vs_pycocotools("handmade");
    table_vs_pycocotools("random");

    char args[3000];
    snprintf(args, sizeof args, "cocoeval '%s/handmade.gt.json' '%s/handmade.res.json' --per-class", fix, fix);
    rc = run(args);
    const char *fish = strstr(out_text, " fish "), *bird = strstr(out_text, " bird ");
    t_ok(rc == 0 && strstr(out_text, "per-category AP") && fish && bird, "--per-class prints the categories by name");
    t_ok(fish && strstr(fish, "n/a") && strcspn(fish, "\n") > (size_t)(strstr(fish, "n/a") - fish),
         "--per-class: a category without GT shows n/a");
    t_ok(bird && strstr(bird, "0.000") && strcspn(bird, "\n") > (size_t)(strstr(bird, "0.000") - bird),
         "--per-class: a category with GT and no detections shows 0.000");
    t_ok(strstr(err_text, "1 of a category not in") != NULL, "detections of unknown categories are reported: %.*s",
         (int)strcspn(err_text, "\n"), err_text);

    /* bad input: message naming the file and problem, non-zero exit, nothing on stdout */
    bad_results("broken JSON", "[\n {\"image_id\": 1, \"category_id\": 1,\n  \"bbox\": [1, 2, 3 4], \"score\": 1}\n]",
                "bad.res.json:3:20: JSON syntax error");
    bad_results("an unknown image id",
                "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1,2,3,4], \"score\": 1},\n"
                " {\"image_id\": 12345, \"category_id\": 1, \"bbox\": [1,2,3,4], \"score\": 1}]",
                "[1]: image_id 12345 is not an image of the ground truth");
    bad_results("a bad bbox", "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1,2,3], \"score\": 1}]",
                "[0]: bad bbox");
    bad_results("a negative bbox size", "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [10,10,5,-3], \"score\": 1}]",
                "width and height must be >= 0");
    bad_results("a missing score", "[{\"image_id\": 1, \"category_id\": 1, \"bbox\": [1,2,3,4]}]",
                "missing \"score\"");
    bad_results("a GT file as results", "{\"images\": [], \"annotations\": []}", "must be a JSON list");

    snprintf(args, sizeof args, "cocoeval '%s/missing.gt.json' '%s/handmade.res.json'", dir, fix);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "cannot open") && strstr(err_text, "missing.gt.json"),
         "missing GT file: exit %d, \"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "cocoeval '%s/handmade.gt.json' '%s/missing.res.json'", fix, dir);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "cannot open") && strstr(err_text, "missing.res.json"),
         "missing results file: exit %d, \"%.*s\"", rc, (int)strcspn(err_text, "\n"), err_text);
    const char *gt = write_tmp("broken.gt.json", "{\"images\": [\n{\"id\": 1, \"file_name\": \"a\"}\n],,\n}");
    snprintf(args, sizeof args, "cocoeval '%s' '%s/handmade.res.json'", gt, fix);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "broken.gt.json:3:4: JSON syntax error near '],,'"), "broken GT: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);
    snprintf(args, sizeof args, "cocoeval '%s/handmade.gt.json' '%s/handmade.res.json' --json '%s/no/such/dir/x.json'",
             fix, fix, dir);
    rc = run(args);
    t_ok(rc == 1 && strstr(err_text, "cannot write"), "unwritable --json: exit %d, \"%.*s\"", rc,
         (int)strcspn(err_text, "\n"), err_text);

    free(out_text); free(err_text);
    t_rmtree(dir);
    return t_done();
}
