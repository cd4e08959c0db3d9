/* cldetr tune: pick CLBlast's Xgemm parameters for a device by measurement and
 * store them in the cache folder, where cd_open applies them from then on. */
#include <stdio.h>
#include <stdlib.h>

#include "cldetr/blas_tune.h"
#include "cli/args.h"
#include "cli/cli.h"

static void tune_usage(FILE *f) {
    fprintf(f, "usage: cldetr tune [--device D] [--quick] [--budget SECONDS] [--dry-run] [--list]\n\n"
               "Chooses CLBlast's GEMM kernel parameters for one OpenCL device by measurement: each\n"
               "candidate set is compiled, checked against a host reference (odd sizes, offsets, every\n"
               "transpose) and timed on DETR's GEMM shapes; the fastest is stored in the cache folder\n"
               "($XDG_CACHE_HOME/cldetr or ~/.cache/cldetr) and used by every later run on that device.\n"
               "CLBlast's defaults are often 10x slower on CPUs (PoCL); run this once per device and driver.\n\n"
               "  --device D      index, gpu, cpu, any, or part of a device name (default: as cldetr devices)\n"
               "  --quick         4 candidates and shorter timing instead of %d candidates\n"
               "  --budget S      give up on a candidate after S seconds of compile + check + timing (default 120)\n"
               "  --dry-run       measure and print, store nothing\n"
               "  --list          print the candidate parameter sets and exit\n\n"
               "The first use of a parameter set compiles for seconds (PoCL keeps compiled kernels in\n"
               "~/.cache/pocl); a full run takes a few minutes on a 2-core CPU. CLDETR_GEMM_TUNING=off makes\n"
               "later runs ignore the stored tuning.\n",
            cd_gemm_tune_candidates(0, (const char *[32]){0}, 32));
}

int cmd_tune(int argc, char **argv) {
    cd_tune_options opt = {NULL, 0, 120, 1, stdout};
    args a;
    args_init(&a, "tune", argc, argv, tune_usage, 0);
    while (args_next(&a)) {
        const char *v;
        if (args_value(&a, "--device", &opt.device)) continue;
        if (args_flag(&a, "--quick")) {
            opt.quick = 1;
        } else if (args_value(&a, "--budget", &v)) {
            char *end;
            opt.budget_s = strtod(v, &end);
            if (*end || end == v || !(opt.budget_s > 0))
                args_error(&a, "--budget needs a number of seconds > 0, got '%s'", v);
        } else if (args_flag(&a, "--dry-run")) {
            opt.store = 0;
        } else if (args_flag(&a, "--list")) {
            const char *list[32];
            int n = cd_gemm_tune_candidates(0, list, 32);
            for (int k = 0; k < n; k++) printf("%2d%s Xgemm GEMMK=0 KREG=1 %s\n", k + 1, k < 4 ? "*" : " ", list[k]);
            printf("(* = also in --quick)\n");
            return 0;
        }
    }
    if (a.rc >= 0) return a.rc;
    cd_tune_result res;
    if (cd_gemm_tune(&opt, &res)) return cli_error();
    if (res.stored)
        printf("stored for %s in %s/gemm-%016llx.bin; applied at every cd_open on this device\n",
               res.device_name, cd_cache_dir(), (unsigned long long)res.key);
    else if (res.best[0])
        printf("--dry-run: not stored. The winning lines:\n%s", res.best);
    return 0;
}
