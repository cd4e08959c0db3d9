/* cldetr config [CONFIG.ini] [--set section.key=value ...]: load, validate and
 * print the effective config (every key; the same text a run folder gets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
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
    const char **sets = cd_xcalloc((size_t)argc, sizeof *sets);
    size_t n_sets = 0;
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); goto done; }
        if (!strcmp(a, "--keys") || !strcmp(a, "--help-config")) { rc = config_print_help(stdout) ? 1 : 0; goto done; }
        if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cldetr: error: config: --set needs section.key=value after it\n");
                rc = 2;
                goto done;
            }
            sets[n_sets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[n_sets++] = a + 6;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cldetr: error: config: unknown option '%s' (see cldetr config --help)\n", a);
            rc = 2;
            goto done;
        } else if (path) {
            fprintf(stderr, "cldetr: error: config: one config file only, got '%s' and '%s'\n", path, a);
            rc = 2;
            goto done;
        } else {
            path = a;
        }
    }
    config *cfg = cd_xmalloc(sizeof *cfg);
    if (config_load(cfg, path, sets, n_sets)) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        rc = 1;
    } else if (config_write(cfg, stdout)) {
        fprintf(stderr, "cldetr: error: config: cannot write to stdout\n");
        rc = 1;
    }
    free(cfg);
done:
    free(sets);
    return rc;
}
