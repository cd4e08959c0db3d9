/* tests/cli_run.h — run the cldetr binary as a subprocess in a CLI test: its
 * exit code (128 when it did not exit normally, e.g. a crash), and its stdout
 * and stderr as strings (replacing *out and *err; never NULL). Output goes
 * through files in `dir`. */
#ifndef CLDETR_TEST_CLI_RUN_H
#define CLDETR_TEST_CLI_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "cldetr/common.h"

static inline int t_run_cli(const char *bin, const char *dir, const char *args, char **out, char **err) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out.txt' 2>'%s/err.txt'", bin, args, dir, dir);
    int st = system(cmd);
    free(*out);
    free(*err);
    snprintf(cmd, sizeof cmd, "%s/out.txt", dir);
    *out = cd_read_file(cmd, NULL);
    snprintf(cmd, sizeof cmd, "%s/err.txt", dir);
    *err = cd_read_file(cmd, NULL);
    if (!*out) *out = cd_xstrdup("");
    if (!*err) *err = cd_xstrdup("");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#endif
