/* One function per verb; each returns the process exit code. argv[0] is the verb. */
#ifndef CLDETR_CLI_H
#define CLDETR_CLI_H

#include <stdio.h>

#include "cldetr/common.h"
#include "cldetr/dist.h"

/* An error from the library: "cldetr: error: <cd_errbuf()>" on stderr; returns
 * the exit code, 1. (Usage errors go through args.h and exit 2.) */
static inline int cli_error(void) {
    fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
    return 1;
}

/* The end of a verb that may run in a data-parallel job (include/cldetr/dist.h):
 * rc 0 or 130 (or a usage error's 2): MPI_Finalize and rc; rc 1, an error with
 * cd_errbuf(): in a job of several processes, the message names this process
 * and the whole job ends (MPI_Abort: no process is left waiting for it). */
static inline int cli_dist_end(int rc) {
    if (rc == 1 && dist_size() > 1) {
        fprintf(stderr, "cldetr: error: %s: %s\ncldetr: %s ends the job (MPI_Abort)\n", dist_who(), cd_errbuf(),
                dist_who());
        dist_abort(1);
    }
    if (rc == 1) cli_error();
    dist_finalize();
    return rc;
}

int cmd_devices(int argc, char **argv);
int cmd_selftest(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_make_shapes(int argc, char **argv);
int cmd_cocoeval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_bench_ops(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);

#endif
