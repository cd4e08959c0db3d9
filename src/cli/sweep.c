/* cldetr sweep CONFIG --grid section.key=v1,v2 [--grid ...] [--set k=v ...] [--name N] [--metric M] [--jobs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/sweep.h"
#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cldetr sweep CONFIG.ini [--grid section.key=v1,v2,... ...] [--set section.key=value ...]\n"
               "                    [--name NAME] [--metric AP50|AP|AP75|loss] [--jobs N] [--report]\n\n"
               "Trains every point of a grid of config values as its own run under train.out_dir/sweep-NAME/\n"
               "(NAME: the config's name unless --name), one after another, showing the point and the ETA of\n"
               "the whole sweep; then writes summary.csv and summary.md (one row per point: its values, status,\n"
               "final and best AP and AP50, final loss, steps, minutes; sorted by --metric) and, for every key\n"
               "with two or more values, curves-KEY.png (loss and AP50 against step, a line per value, the\n"
               "other keys averaged) and best-KEY.png (the final metric against the value).\n"
               "Run it again to continue: finished points are skipped, an interrupted one resumes from its\n"
               "last.ckpt. A point that fails (a bad value, divergence) is recorded with its reason.\n\n"
               "  --grid k=v1,v2  a key and its values (repeatable); values that are lists themselves are\n"
               "                  separated by '|': --grid augment.scales=96,128|128. The grid can also be a\n"
               "                  [sweep] section of CONFIG, one key per line: train.lr = 1e-4,2e-4\n"
               "  --set k=v       a config override for every point (repeatable)\n"
               "  --name NAME     the sweep's folder is train.out_dir/sweep-NAME\n"
               "  --metric M      the summary's sort key and best-KEY.png's y: AP50 (default), AP, AP75, loss\n"
               "  --jobs N        train N points at once, each on its own device of the config's device.type\n"
               "  --report        write the summary and charts of the runs there are, train nothing\n");
}

int cmd_sweep(int argc, char **argv) {
    static sweep_args a;
    memset(&a, 0, sizeof a);
    a.metric = "AP50";
    a.jobs = 1;
    const char *sets[128];
    int report = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL;
        int has = i + 1 < argc;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) { usage(stdout); return 0; }
        if (!strcmp(arg, "--report")) { report = 1; continue; }
        if (arg[0] == '-' && strcmp(arg, "--grid") && strcmp(arg, "--set") && strcmp(arg, "--name") &&
            strcmp(arg, "--metric") && strcmp(arg, "--jobs")) {
            fprintf(stderr, "cldetr sweep: unknown option '%s' (see cldetr sweep --help)\n", arg);
            return 2;
        }
        if (arg[0] == '-') {
            if (!has) { fprintf(stderr, "cldetr sweep: %s needs a value\n", arg); return 2; }
            val = argv[++i];
        }
        if (!val) {
            if (a.config_path) { fprintf(stderr, "cldetr sweep: one config file only (got '%s' and '%s')\n",
                                         a.config_path, arg); return 2; }
            a.config_path = arg;
        } else if (!strcmp(arg, "--grid")) {
            if (a.n_axes == SWEEP_MAX_AXES) { fprintf(stderr, "cldetr sweep: at most %d --grid keys\n", SWEEP_MAX_AXES); return 2; }
            if (sweep_parse_axis(&a.axes[a.n_axes++], val) < 0) { fprintf(stderr, "cldetr sweep: %s\n", cd_errbuf()); return 2; }
        } else if (!strcmp(arg, "--set")) {
            if (a.n_sets == 128) { fprintf(stderr, "cldetr sweep: at most 128 --set\n"); return 2; }
            sets[a.n_sets++] = val;
        } else if (!strcmp(arg, "--name")) a.name = val;
        else if (!strcmp(arg, "--metric")) {
            if (strcmp(val, "AP50") && strcmp(val, "AP") && strcmp(val, "AP75") && strcmp(val, "loss")) {
                fprintf(stderr, "cldetr sweep: --metric expects AP50, AP, AP75 or loss, got '%s'\n", val);
                return 2;
            }
            a.metric = val;
        } else {
            char *end;
            long j = strtol(val, &end, 10);
            if (*end || j < 1 || j > 64) { fprintf(stderr, "cldetr sweep: --jobs expects 1-64, got '%s'\n", val); return 2; }
            a.jobs = (int)j;
        }
    }
    if (!a.config_path) { fprintf(stderr, "cldetr sweep: give a config file (see cldetr sweep --help)\n"); return 2; }
    a.sets = sets;
    if (sweep_read_section(&a, a.config_path) < 0) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    int rc = report ? sweep_report(&a, NULL) : sweep_run(&a);
    if (rc < 0) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    return rc == 2 ? 130 : rc;
}
