/* cldetr config [CONFIG.ini] [--set section.key=value ...]: load, validate and
 * print the effective config (every key; the same text a run folder gets). */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cli/args.h"
#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cldetr config [CONFIG.ini] [--set section.key=value ...] [--keys]\n\n"
            "Load CONFIG.ini (none: the defaults), apply the --set overrides in order,\n"
            "check every value, and print the effective config: every key, defaults\n"
            "included, as an INI file that loads back to the same values, with the\n"
            "config hash that checkpoints record.\n\n"
            "options:\n"
            "  --set section.key=value   override one key (also --set=section.key=value); repeatable\n"
            "  --keys                    list every key with its type, range, default and help\n"
            "  -h, --help                this text\n");
}

int cmd_config(int argc, char **argv) {
    const char *path = NULL;
    args a;
    args_init(&a, "config", argc, argv, usage, ARGS_SETS);
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
