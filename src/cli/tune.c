/* cldetr tune: pick CLBlast's Xgemm parameters for a device by measurement and
 * store them in the cache folder, where cd_open applies them from then on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/blas_tune.h"
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
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device")) {
            if (i + 1 >= argc) { fprintf(stderr, "cldetr tune: --device needs a value (see cldetr devices)\n"); return 2; }
            opt.device = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            opt.quick = 1;
        } else if (!strcmp(argv[i], "--budget")) {
            char *end = NULL;
            double v = i + 1 < argc ? strtod(argv[i + 1], &end) : 0;
            if (i + 1 >= argc || *end || !(v > 0)) {
                fprintf(stderr, "cldetr tune: --budget needs a number of seconds > 0, got '%s'\n",
                        i + 1 < argc ? argv[i + 1] : "");
                return 2;
            }
            opt.budget_s = v;
            i++;
        } else if (!strcmp(argv[i], "--dry-run")) {
            opt.store = 0;
        } else if (!strcmp(argv[i], "--list")) {
            const char *list[32];
            int n = cd_gemm_tune_candidates(0, list, 32);
            for (int k = 0; k < n; k++) printf("%2d%s Xgemm GEMMK=0 KREG=1 %s\n", k + 1, k < 4 ? "*" : " ", list[k]);
            printf("(* = also in --quick)\n");
            return 0;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tune_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cldetr tune: unknown option '%s' (see cldetr tune --help)\n", argv[i]);
            return 2;
        }
    }
    cd_tune_result res;
    if (cd_gemm_tune(&opt, &res)) {
        fprintf(stderr, "cldetr: error: %s\n", cd_errbuf());
        return 1;
    }
    if (res.stored)
        printf("stored for %s in %s/gemm-%016llx.bin; applied at every cd_open on this device\n",
               res.device_name, cd_cache_dir(), (unsigned long long)res.key);
    else if (res.best[0])
        printf("--dry-run: not stored. The winning lines:\n%s", res.best);
    return 0;
}
