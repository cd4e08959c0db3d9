/* cldetr sweep CONFIG --grid section.key=v1,v2 [--grid ...] [--set k=v ...] [--name N] [--metric M] [--jobs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/sweep.h"
#include "cli/args.h"
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
    static sweep_args sa;
    memset(&sa, 0, sizeof sa);
    sa.metric = "AP50";
    static const char *const metrics[] = {"AP50", "AP", "AP75", "loss", NULL};
    int metric = 0, report = 0;
    long jobs = 1;
    const char *grid;
    args a;
    args_init(&a, "sweep", argc, argv, usage, ARGS_SETS);
    while (args_next(&a)) {
        if (args_value(&a, "--grid", &grid)) {
            if (sa.n_axes == SWEEP_MAX_AXES) return args_error(&a, "at most %d --grid keys", SWEEP_MAX_AXES);
            if (sweep_parse_axis(&sa.axes[sa.n_axes++], grid) < 0) return args_error(&a, "%s", cd_errbuf());
        }
        args_value(&a, "--name", &sa.name);
        args_choice(&a, "--metric", &metric, metrics);
        args_long(&a, "--jobs", &jobs, 1, 64);
        if (args_flag(&a, "--report")) report = 1;
        args_single(&a, &sa.config_path, "config file");
    }
    if (a.rc >= 0) return a.rc;
    if (!sa.config_path) return args_missing(&a, "give a config file");
    sa.metric = metrics[metric];
    sa.jobs = (int)jobs;
    sa.sets = a.sets;
    sa.n_sets = a.n_sets;
    if (sweep_read_section(&sa, sa.config_path) < 0) return cli_error();
    int rc = report ? sweep_report(&sa, NULL) : sweep_run(&sa);
    if (rc < 0) return cli_error();
    return rc == 2 ? 130 : rc;
}
