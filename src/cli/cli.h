/* One function per verb; each returns the process exit code. argv[0] is the verb. */
#ifndef CLDETR_CLI_H
#define CLDETR_CLI_H

#include <stdio.h>

#include "cldetr/common.h"

/* An error from the library: "cldetr: error: <cd_errbuf()>" on stderr; returns
 * the exit code, 1. (Usage errors go through args.h and exit 2.) */
static inline int cli_error(void) {
    fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
    return 1;
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
