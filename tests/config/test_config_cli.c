/* `cldetr config`: runs the built binary ($CLDETR_BIN) and checks its exit
 * code and output: the effective config it prints loads back to what the
 * library loads, and bad input gives a named error and a non-zero exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "../cli_run.h"
#include "cldetr/common.h"
#include "cldetr/config.h"

static const char *bin, *root;
static char tmpdir[256];

/* `cldetr ARGS` (in the source root) exits with want_rc and prints want_text. */
static void expect(const char *what, const char *args, int want_rc, const char *want_text) {
    char *out = NULL, *err = NULL;
    int rc = t_run_cli(bin, tmpdir, args, &out, &err);
    int ok = rc == want_rc && (strstr(out, want_text) || strstr(err, want_text));
    if (!ok)
        t_diag("cldetr %s: exit %d (want %d)\n#   output: %s%s#   want to find: %s", args, rc, want_rc, out, err,
               want_text);
    t_ok(ok, "%s", what);
    free(out);
    free(err);
}

int main(void) {
    (void)t_close_d; (void)t_close_f; (void)t_seed; (void)t_uniform;   /* check.h helpers unused here */
    bin = getenv("CLDETR_BIN");
    root = getenv("CLDETR_SOURCE_ROOT");
    if (!bin || !root) {
        printf("1..0 # SKIP CLDETR_BIN and CLDETR_SOURCE_ROOT must be set (meson test sets them)\n");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cldetr_test_config_cli_XXXXXX");
    if (!mkdtemp(tmpdir) || chdir(root)) { perror(tmpdir); return 2; }   /* the commands name configs/... */
    char out_path[300], err_path[300], bad_path[300];
    snprintf(out_path, sizeof out_path, "%s/out.txt", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/err.txt", tmpdir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.ini", tmpdir);

    /* The printed effective config (t_run_cli leaves stdout in out_path) loads back to the library's own load. */
    char *out = NULL, *err = NULL;
    int rc = t_run_cli(bin, tmpdir, "config configs/shapes.ini --set train.lr=2e-4 --set=model.dec_layers=3", &out, &err);
    free(err);
    const char *sets[] = {"train.lr=2e-4", "model.dec_layers=3"};
    config lib, back;
    int lrc = config_load(&lib, "configs/shapes.ini", sets, 2);
    int brc = config_load(&back, out_path, NULL, 0);
    if (brc) t_diag("%s", cd_errbuf());
    t_ok(rc == 0 && lrc == 0 && brc == 0 && !memcmp(&lib, &back, sizeof lib),
         "config CONFIG --set ...: prints an INI that loads back to the same config");
    char hash_line[64];
    snprintf(hash_line, sizeof hash_line, "# config hash %016llx\n", (unsigned long long)config_hash(&lib));
    t_ok(strstr(out, "\nlr = 0.0002  ; default 0.0001\n") && strstr(out, "\ndec_layers = 3  ; default 6\n") &&
             strstr(out, hash_line),
         "changed values carry their default; the header has the config hash");
    free(out);

    expect("config with no file prints the defaults", "config", 0, "\nbackbone = resnet50\n");
    expect("config --keys lists keys with defaults and help", "config --keys", 0,
           "train.lr                   = 1e-4           float > 0\n");
    expect("the verb is in cldetr --help", "--help", 0, "config ");

    FILE *f = fopen(bad_path, "w");
    fputs("[train]\nlr = abc\n", f);
    fclose(f);
    char args[600], want[600];
    snprintf(args, sizeof args, "config '%s'", bad_path);
    snprintf(want, sizeof want, "cldetr: error: train.lr: expected a number > 0, got 'abc' (%s:2)\n", bad_path);
    expect("a bad value: exit 1, message with file:line", args, 1, want);
    expect("--set without '=': exit 1, named", "config configs/shapes.ini --set train.lr", 1,
           "cldetr: error: --set train.lr: expected section.key=value, e.g. --set train.lr=2e-4\n");
    expect("--set of an unknown key: exit 1, closest key", "config --set model.hidden=64", 1,
           "cldetr: error: model.hidden: unknown key, did you mean model.hidden_dim? (--set model.hidden=64)\n");
    expect("missing config file: exit 1, named", "config configs/no_such.ini", 1,
           "cldetr: error: cannot open configs/no_such.ini");
    expect("unknown option: exit 2", "config --bogus", 2, "unknown option '--bogus'");
    expect("--set at the end without a value: exit 2", "config --set", 2, "--set needs section.key=value");
    expect("two config files: exit 2", "config configs/shapes.ini configs/detr_r50.ini", 2, "one config file only");

    remove(out_path);
    remove(err_path);
    remove(bad_path);
    rmdir(tmpdir);
    return t_done();
}
