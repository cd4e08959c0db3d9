/* cldetr tune: pick the GEMM parameters of a device by measurement (the tile
 * kernels' shapes where cd_gemm runs them, CLBlast's Xgemm parameters
 * otherwise) and store them in the cache folder, where cd_open applies them
 * from then on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/blas_tune.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_tune(int argc, char **argv) {
    cd_tune_options opt = {NULL, 0, 120, 1, stdout, -1};
    args a;
    args_init(&a, "tune", argc, argv, 0);
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
        } else if (args_value(&a, "--kernels", &v)) {
            if (!strcmp(v, "tiles")) opt.kernels = CD_GEMM_TILES;
            else if (!strcmp(v, "clblast")) opt.kernels = CD_GEMM_CLBLAST;
            else if (strcmp(v, "auto")) args_error(&a, "--kernels needs tiles, clblast or auto, got '%s'", v);
        } else if (args_flag(&a, "--dry-run")) {
            opt.store = 0;
        } else if (args_flag(&a, "--list")) {
            const char *list[32];
            for (int gpu = 0; gpu < 2; gpu++) {
                int n = cd_gemm_tune_candidates(gpu, 0, list, 32), nq = cd_gemm_tune_candidates(gpu, 1, list + 16, 16);
                printf("%sfor %s:\n", gpu ? "\n" : "", gpu ? "GPUs and other accelerators" : "CPUs");
                for (int k = 0; k < n; k++) printf("%2d%s Xgemm GEMMK=0 KREG=1 %s\n", k + 1, k < nq ? "*" : " ", list[k]);
            }
            int n = cd_gemm_tile_candidates(0, list, 32), nq = cd_gemm_tile_candidates(1, list + 16, 16);
            printf("\ntile shapes for cldetr's tile GEMM kernels (GPUs; the first is the built-in pair):\n");
            for (int k = 0; k < n; k++) printf("%2d%s %s\n", k, k < nq ? "*" : " ", list[k]);
            printf("(* = also in --quick; sets that need larger work-groups or more local memory than the device "
                   "offers are skipped)\n");
            return 0;
        }
    }
    if (a.rc >= 0) return a.rc;
    cd_tune_result res;
    if (cd_gemm_tune(&opt, &res)) return cli_error();
    if (res.stored)
        printf("%s stored for %s in %s/gemm-%016llx.bin; applied at every cd_open on this device\n",
               res.kind == CD_GEMM_TILES ? "tile shapes" : "CLBlast's parameters", res.device_name, cd_cache_dir(),
               (unsigned long long)res.key);
    else if (res.best[0])
        printf("--dry-run: not stored. The winning lines:\n%s", res.best);
    return 0;
}
