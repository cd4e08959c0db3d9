/* tests/cli_run.h — run the cldetr binary as a subprocess in a CLI test: its
 * exit code (128 when it did not exit normally, e.g. a crash), and its stdout
 * and stderr as strings (replacing *out and *err; never NULL). Output goes
 * through files in `dir`. And the set-up every CLI test starts with. */
#ifndef CLDETR_TEST_CLI_RUN_H
#define CLDETR_TEST_CLI_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "cldetr/common.h"
#include "fixtures.h"

static inline int t_run_cli_at(const char *bin, const char *dir, int in_dir, const char *args, char **out,
                               char **err) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s%s%s'%s' %s >'%s/out.txt' 2>'%s/err.txt'", in_dir ? "cd '" : "", in_dir ? dir : "",
             in_dir ? "' && " : "", bin, args, dir, dir);
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

/* From this folder; t_run_cli_at(..., 1, ...) runs in dir (relative paths in args are inside it). */
static inline int t_run_cli(const char *bin, const char *dir, const char *args, char **out, char **err) {
    return t_run_cli_at(bin, dir, 0, args, out, err);
}

/* The start of a CLI test: $CLDETR_BIN into bin, $CLDETR_SOURCE_ROOT into root
 * (root NULL: not needed) and a fresh temporary folder STEM-XXXXXX into dir.
 * Unset variables (not run through meson test) end the test with a TAP skip
 * plan; a folder that cannot be made ends it with exit code 1. */
static inline void t_cli_setup(char *bin, size_t nb, char *root, size_t nr, char *dir, size_t nd, const char *stem) {
    const char *b = getenv("CLDETR_BIN"), *r = getenv("CLDETR_SOURCE_ROOT");
    if (!b || (root && !r)) {
        printf("1..0 # SKIP CLDETR_BIN%s not set (run through meson test)\n", root ? " or CLDETR_SOURCE_ROOT" : "");
        exit(0);
    }
    snprintf(bin, nb, "%s", b);
    if (root) snprintf(root, nr, "%s", r);
    if (!t_tmpdir(dir, nd, stem)) { perror("mkdtemp"); exit(1); }
}

#endif
