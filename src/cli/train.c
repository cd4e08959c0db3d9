/* cldetr train CONFIG [--set k=v ...] | --resume RUN ; --help-config */
#include <stdio.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/trainer.h"
#include "cli/args.h"
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
    train_args t = {0};
    args a;
    args_init(&a, "train", argc, argv, usage, ARGS_SETS);
    while (args_next(&a)) {
        if (args_flag(&a, "--help-config")) {
            config_print_help(stdout);
            return 0;
        }
        args_value(&a, "--resume", &t.resume_dir);
        args_single(&a, &t.config_path, "config file");
    }
    if (a.rc >= 0) return a.rc;
    if (!t.config_path == !t.resume_dir) return args_missing(&a, "give a config file or --resume RUN (not both)");
    t.sets = a.sets;
    t.n_sets = a.n_sets;
    int rc = train_run(&t);
    if (rc < 0) return cli_error();
    return rc == TRAIN_INTERRUPTED ? 130 : 0;
}
