/* cldetr sweep CONFIG --grid section.key=v1,v2 [--grid ...] [--set k=v ...] [--name N] [--metric M] [--jobs N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/sweep.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_sweep(int argc, char **argv) {
    static sweep_args sa;
    memset(&sa, 0, sizeof sa);
    sa.metric = "AP50";
    static const char *const metrics[] = {"AP50", "AP", "AP75", "loss", NULL};
    int metric = 0, report = 0;
    long jobs = 1;
    const char *grid;
    args a;
    args_init(&a, "sweep", argc, argv, ARGS_SETS);
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
