/* cldetr config [CONFIG.ini] [--set section.key=value ...]: load, validate and
 * print the effective config (every key; the same text a run folder gets). */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_config(int argc, char **argv) {
    const char *path = NULL;
    args a;
    args_init(&a, "config", argc, argv, ARGS_SETS);
    while (args_next(&a)) {
        if (args_flag(&a, "--keys") || args_flag(&a, "--help-config")) return config_print_help(stdout) ? 1 : 0;
        args_single(&a, &path, "config file");
    }
    if (a.rc >= 0) return a.rc;
    config *cfg = cd_xmalloc(sizeof *cfg);
    int rc = 0;
    if (config_load(cfg, path, a.sets, a.n_sets)) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        rc = 1;
    } else if (config_write(cfg, stdout)) {
        fprintf(stderr, "cldetr: error: config: cannot write to stdout\n");
        rc = 1;
    }
    free(cfg);
    return rc;
}
