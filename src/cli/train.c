/* cldetr train CONFIG [--set k=v ...] | --resume RUN ; --help-config */
#include <stdio.h>
#include <string.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/trainer.h"
#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cldetr train CONFIG.ini [--set section.key=value ...]\n"
               "       cldetr train --resume RUN_FOLDER [--set ...]\n"
               "       cldetr train --help-config\n\n"
               "Trains DETR as the config says and writes a run folder (train.out_dir/NAME-DATE-TIME) with\n"
               "config.ini (every key), metrics.csv, eval.csv, eval.json, log.txt, loss.png, ap.png,\n"
               "last.ckpt and best.ckpt. Ctrl-C finishes the step, writes last.ckpt and exits 130;\n"
               "--resume continues from last.ckpt with the same numbers as an uninterrupted run.\n\n"
               "  --set section.key=value   override a config key (repeatable), e.g. --set train.lr=2e-4\n"
               "  --resume RUN              continue a run folder\n"
               "  --help-config             list every config key with its default and help\n");
}

int cmd_train(int argc, char **argv) {
    const char *sets[128];
    train_args a = {0};
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[i], "--help-config")) { config_print_help(stdout); return 0; }
        if (!strcmp(argv[i], "--set") || !strncmp(argv[i], "--set=", 6)) {
            const char *v = argv[i][5] == '=' ? argv[i] + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) { fprintf(stderr, "cldetr train: --set needs section.key=value\n"); return 2; }
            if (n == 128) { fprintf(stderr, "cldetr train: too many --set options\n"); return 2; }
            sets[n++] = v;
        } else if (!strcmp(argv[i], "--resume")) {
            if (i + 1 >= argc) { fprintf(stderr, "cldetr train: --resume needs a run folder\n"); return 2; }
            a.resume_dir = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "cldetr train: unknown option '%s' (see cldetr train --help)\n", argv[i]);
            return 2;
        } else if (!a.config_path) {
            a.config_path = argv[i];
        } else {
            fprintf(stderr, "cldetr train: one config file only (got '%s' and '%s')\n", a.config_path, argv[i]);
            return 2;
        }
    }
    if (!a.config_path == !a.resume_dir) {
        fprintf(stderr, "cldetr train: give a config file or --resume RUN (not both)\n\n");
        usage(stderr);
        return 2;
    }
    a.sets = sets;
    a.n_sets = n;
    int rc = train_run(&a);
    if (rc < 0) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        return 1;
    }
    return rc == TRAIN_INTERRUPTED ? 130 : 0;
}
