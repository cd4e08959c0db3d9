/* cldetr selftest: build every kernel for a device and check GEMM and one case
 * of each op against the host reference. One line per check; non-zero exit on
 * any failure. --ops leaves out the GEMM checks and --case picks checks by
 * name: the oclgrind run of tests/device/test_oclgrind.sh uses both. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/selftest.h"
#include "cli/args.h"
#include "cli/cli.h"

/* GEMM, then the one table of op cases. */
static const cd_selftest *const families[] = {
    cd_selftests_gemm,
    cd_op_cases,
};

#define MAX_CASES 32

/* Which checks to run: all, or (--ops) no GEMM family; with --case only the
 * checks whose name contains one of the patterns (case-insensitive). */
typedef struct {
    int ops_only, verbose, n_cases;
    const char *cases[MAX_CASES];
} selection;

static int selected(const selection *sel, const cd_selftest *t) {
    if (!sel->n_cases) return 1;
    for (int i = 0; i < sel->n_cases; i++)
        if (cd_contains_ci(t->name, sel->cases[i])) return 1;
    return 0;
}

static int run_device(const char *spec, const selection *sel) {
    cd_device *dev = cd_open(spec, 0);
    if (!dev) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    printf("device %d: %s (%s, %s)\n", dev->info.index, dev->info.name, dev->info.platform_name,
           dev->info.driver_version);
    int failed = 0, passed = 0;
    const char **files;
    int nf = cd_kernel_files(&files);
    for (int i = 0; i < nf; i++) {
        double t0 = cd_now();
        if (cd_build_file(dev, files[i]) < 0) {
            printf("FAIL build %s\n%s\n", files[i], cd_errbuf());
            failed++;
        } else {
            printf("PASS build %s (%.0f ms)\n", files[i], 1e3 * (cd_now() - t0));
            passed++;
        }
        fflush(stdout);
    }
    for (size_t f = sel->ops_only ? 1 : 0; f < CD_ARRAY_LEN(families); f++) {
        for (const cd_selftest *t = families[f]; t->name; t++) {
            if (!selected(sel, t)) continue;
            char msg[512] = "";
            double t0 = cd_now();
            int rc = t->run(dev, t, msg, sizeof msg);
            if (rc == 0) {
                passed++;
                printf("PASS %s", t->name);
                if (sel->verbose && msg[0]) printf(" — %s", msg);
                printf(" (%.0f ms)\n", 1e3 * (cd_now() - t0));
            } else {
                failed++;
                printf("FAIL %s: %s\n", t->name, msg);
            }
            fflush(stdout);
        }
    }
    printf("%s: %d passed, %d failed\n", dev->info.name, passed, failed);
    cd_close(dev);
    return failed ? 1 : 0;
}

int cmd_selftest(int argc, char **argv) {
    const char *spec = NULL, *pattern = NULL;
    int all = 0;
    selection sel = {0};
    args a;
    args_init(&a, "selftest", argc, argv, 0);
    while (args_next(&a)) {
        args_value(&a, "--device", &spec);
        if (args_flag(&a, "--all-devices")) all = 1;
        if (args_flag(&a, "--ops")) sel.ops_only = 1;
        if (args_value(&a, "--case", &pattern)) {
            if (sel.n_cases == MAX_CASES) args_error(&a, "at most %d --case options", MAX_CASES);
            else sel.cases[sel.n_cases++] = pattern;
        }
        if (args_flag(&a, "-v") || args_flag(&a, "--verbose")) sel.verbose = 1;
    }
    if (a.rc >= 0) return a.rc;
    if (sel.n_cases) {   /* a pattern that names no check is a typo, not an empty pass */
        for (int i = 0; i < sel.n_cases; i++) {
            int hit = 0;
            for (size_t f = sel.ops_only ? 1 : 0; f < CD_ARRAY_LEN(families) && !hit; f++)
                for (const cd_selftest *t = families[f]; t->name && !hit; t++) hit = cd_contains_ci(t->name, sel.cases[i]);
            if (!hit) {
                fprintf(stderr, "cldetr selftest: --case '%s' matches no check%s (see cldetr selftest --help)\n",
                        sel.cases[i], sel.ops_only ? " among the op cases" : "");
                return 2;
            }
        }
    }
    if (!all) return run_device(spec, &sel);
    cd_device_info *list;
    int n = cd_list_devices(&list);
    if (n < 0) { fprintf(stderr, "cldetr: error: %s\n", cd_errbuf()); return 1; }
    free(list);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        unsetenv("CLDETR_DEVICE");
        rc |= run_device(idx, &sel);
    }
    return rc;
}
