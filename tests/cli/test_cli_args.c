/* The verbs' shared argument parsing (src/cli/args.c), through the binary
 * ($CLDETR_BIN): --opt=value is --opt value; a missing value, a number out of
 * range, a value not among the choices, an unknown option (with a
 * did-you-mean when one is close) and a mistyped verb each give one message
 * "cldetr VERB: ..." (or "cldetr: ..." for the verb) and exit 2; --set=k=v
 * works; -h/--help prints the verb's usage to stdout and exits 0. No device
 * is needed: every run here stops before one is opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../cli_run.h"
#include "cldetr/common.h"

static char dir[256], bin[1024], root[1024];
static char *out_text, *err_text;

static int run(const char *args) { return t_run_cli(bin, dir, args, &out_text, &err_text); }

/* `cldetr ARGS` exits want_rc with exactly want_err on stderr. */
static void expect(const char *args, int want_rc, const char *want_err) {
    int rc = run(args);
    t_ok(rc == want_rc && !strcmp(err_text, want_err), "cldetr %s: exit %d (want %d), stderr \"%s\"", args, rc, want_rc,
         err_text);
}

/* Two command lines give the same exit code and stdout. */
static void same(const char *what, const char *args1, const char *args2) {
    int rc1 = run(args1);
    char *out1 = cd_xstrdup(out_text);
    int rc2 = run(args2);
    t_ok(rc1 == rc2 && !strcmp(out1, out_text), "%s: exit %d and %d, the same output", what, rc1, rc2);
    free(out1);
}

static char *file_text(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = cd_read_file(path, NULL);
    return s ? s : cd_xstrdup("(missing)");
}

int main(void) {
    t_cli_setup(bin, sizeof bin, root, sizeof root, dir, sizeof dir, "cldetr_test_cli_args");
    char args[4096], args2[4096];

    /* --opt=value is --opt value */
    snprintf(args, sizeof args, "config '%s/configs/shapes.ini' --set train.lr=2e-4 --set model.dec_layers=3", root);
    snprintf(args2, sizeof args2, "config '%s/configs/shapes.ini' --set=train.lr=2e-4 --set=model.dec_layers=3", root);
    same("config: --set=k=v as --set k=v", args, args2);
    t_ok(strstr(out_text, "\nlr = 0.0002  ; default 0.0001\n") && strstr(out_text, "\ndec_layers = 3  ; default 6\n"),
         "and both overrides apply");
    snprintf(args, sizeof args, "make-shapes '%s/s1' --train 2 --val 1 --size 32 --seed 5 --max-objects 2 -q", dir);
    snprintf(args2, sizeof args2, "make-shapes '%s/s2' --train=2 --val=1 --size=32 --seed=5 --max-objects=2 --quiet", dir);
    int rc1 = run(args), rc2 = run(args2);
    char *j1 = file_text("s1/annotations/train.json"), *j2 = file_text("s2/annotations/train.json");
    t_ok(rc1 == 0 && rc2 == 0 && !strcmp(j1, j2) && strstr(j1, "\"images\""),
         "make-shapes: --train=2 --size=32 ... writes the same dataset as --train 2 --size 32 ...");
    free(j1);
    free(j2);
    snprintf(args, sizeof args, "cocoeval '%s/tests/fixtures/eval/handmade.gt.json' "
             "'%s/tests/fixtures/eval/handmade.res.json' --json '%s/a.json'", root, root, dir);
    snprintf(args2, sizeof args2, "cocoeval '%s/tests/fixtures/eval/handmade.gt.json' "
             "'%s/tests/fixtures/eval/handmade.res.json' --json='%s/b.json'", root, root, dir);
    same("cocoeval: --json=FILE as --json FILE", args, args2);
    j1 = file_text("a.json");
    j2 = file_text("b.json");
    t_ok(!strcmp(j1, j2) && strstr(j1, "stats"), "and writes the same JSON");
    free(j1);
    free(j2);

    /* a missing value names the option */
    expect("bench x.ini --steps", 2, "cldetr bench: --steps needs a value\n");
    expect("predict run img.png --json", 2, "cldetr predict: --json needs a value\n");
    expect("train x.ini --set", 2, "cldetr train: --set needs section.key=value\n");

    /* a value out of range or not among the choices names the option and the value */
    expect("bench x.ini --steps 0", 2, "cldetr bench: --steps expects an integer in 1..100000, got '0'\n");
    expect("bench x.ini --warmup=-1", 2, "cldetr bench: --warmup expects an integer in 0..100000, got '-1'\n");
    expect("make-shapes d --size=8", 2, "cldetr make-shapes: --size expects an integer in 16..4096, got '8'\n");
    expect("eval run --max-images 0", 2, "cldetr eval: --max-images expects an integer >= 1, got '0'\n");
    expect("predict run img.png --threshold=1.5", 2, "cldetr predict: --threshold expects a number in [0, 1], got '1.5'\n");
    expect("export run -o w.safetensors --dtype f64", 2, "cldetr export: --dtype expects f32, f16 or bf16, got 'f64'\n");
    expect("bench x.ini --profile=yes", 2, "cldetr bench: --profile takes no value, got '--profile=yes'\n");

    /* unknown options: one message, a did-you-mean when one is close */
    expect("summary x.ini --bogus", 2, "cldetr summary: unknown option '--bogus' (see cldetr summary --help)\n");
    expect("bench x.ini --stesp 3", 2,
           "cldetr bench: unknown option '--stesp'; did you mean '--steps'? (see cldetr bench --help)\n");
    expect("eval run --per-clas", 2,
           "cldetr eval: unknown option '--per-clas'; did you mean '--per-class'? (see cldetr eval --help)\n");
    expect("train x.ini --sett=train.lr=1", 2,
           "cldetr train: unknown option '--sett=train.lr=1'; did you mean '--set'? (see cldetr train --help)\n");
    expect("tune --hlep", 2, "cldetr tune: unknown option '--hlep'; did you mean '--help'? (see cldetr tune --help)\n");
    expect("devices extra", 2, "cldetr devices: unexpected argument 'extra' (see cldetr devices --help)\n");
    expect("summary a.ini b.ini", 2, "cldetr summary: one config file only (got 'a.ini' and 'b.ini')\n");

    /* one limit on --set */
    size_t o = (size_t)snprintf(args, sizeof args, "config");
    for (int k = 0; k <= 256 && o < sizeof args; k++) o += (size_t)snprintf(args + o, sizeof args - o, " --set=a.b=%d", k);
    int rc = o < sizeof args ? run(args) : -1;
    t_ok(rc == 2 && !strcmp(err_text, "cldetr config: at most 256 --set options\n"), "257 --set: exit %d, \"%s\"", rc,
         err_text);

    /* a mistyped verb */
    expect("trian x.ini", 2, "cldetr: unknown verb 'trian'; did you mean 'train'? (cldetr --help lists the verbs)\n");
    expect("make-shape d", 2,
           "cldetr: unknown verb 'make-shape'; did you mean 'make-shapes'? (cldetr --help lists the verbs)\n");
    expect("frobnicate", 2, "cldetr: unknown verb 'frobnicate' (cldetr --help lists the verbs)\n");

    /* --help and -h: the verb's usage on stdout, exit 0, whatever follows */
    static const char *const verbs[] = {"devices", "tune", "train", "summary", "config", "make-shapes", "cocoeval",
                                        "eval", "predict", "plot", "export", "import", "step", "bench"};
    for (size_t k = 0; k < CD_ARRAY_LEN(verbs); k++) {
        char want[64];
        snprintf(want, sizeof want, "usage: cldetr %s", verbs[k]);
        snprintf(args, sizeof args, "%s %s --bogus", verbs[k], k % 2 ? "-h" : "--help");
        rc = run(args);
        t_ok(rc == 0 && !strncmp(out_text, want, strlen(want)) && !err_text[0], "%s: exit %d, stdout \"%.*s\"", args, rc,
             (int)strcspn(out_text, "\n"), out_text);
    }

    t_rmtree(dir);
    free(out_text);
    free(err_text);
    return t_done();
}
