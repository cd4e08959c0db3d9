/* cldetr train CONFIG [--set k=v ...] | --resume RUN ; --help-config (one process, or one of a job's: mpirun, srun) */
#include <stdio.h>

#include "cldetr/common.h"
#include "cldetr/config.h"
#include "cldetr/trainer.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_train(int argc, char **argv) {
    train_args t = {0};
    args a;
    args_init(&a, "train", argc, argv, ARGS_SETS);
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
    if (dist_init() < 0) return cli_error();      /* under mpirun or srun: one of the job's processes */
    int rc = train_run(&t);
    return cli_dist_end(rc < 0 ? 1 : rc == TRAIN_INTERRUPTED ? 130 : 0);
}
