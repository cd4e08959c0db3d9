/* cldetr devices: a table of every OpenCL platform and device; under mpirun or
 * srun also the device each rank of the job takes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/device.h"
#include "cli/args.h"
#include "cli/cli.h"

/* The table of every platform and device, the default marked with '*'. Returns 0, or 1 with cd_errbuf(). */
static int print_table(void) {
    cd_device_info *list;
    int n = cd_list_devices(&list);
    if (n < 0) return 1;
    int def = cd_select_device(list, n, NULL);
    printf("  %-3s %-5s %-28s %-36s %-5s %9s %4s %6s %-14s %-4s %-4s\n", "#", "P:D", "platform", "device", "type",
           "memory", "CUs", "max wg", "OpenCL C", "fp16", "fp64");
    for (int i = 0; i < n; i++) {
        const cd_device_info *d = &list[i];
        char pd[16];
        snprintf(pd, sizeof pd, "%d:%d", d->platform_index, d->device_index);
        const char *cver = strncmp(d->c_version, "OpenCL C ", 9) ? d->c_version : d->c_version + 9;
        printf("%c %-3d %-5s %-28.28s %-36.36s %-5s %6.1f GiB %4u %6zu %-14.14s %-4s %-4s\n",
               i == def ? '*' : ' ', d->index, pd, d->platform_name, d->name, cd_device_type_name(d->type),
               d->global_mem / 1073741824.0, d->compute_units, d->max_work_group, cver,
               d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no");
    }
    if (def < 0) fprintf(stderr, "note: %s\n", cd_errbuf());
    free(list);
    return 0;
}

/* Under mpirun or srun: rank 0 prints the table, then which device each rank takes by default. */
static int print_ranks(void) {
    enum { W = 256 };
    cd_device_info *list;
    int n = cd_list_devices(&list);
    char line[W];
    if (n < 0) {
        snprintf(line, sizeof line, "rank %d (local rank %d on %.60s): no device: %.120s", dist_rank(),
                 dist_local_rank(), dist_host(), cd_errbuf());
    } else {
        int i = cd_select_device_local(list, n, NULL, dist_local_rank());
        if (i >= 0)
            snprintf(line, sizeof line, "rank %d (local rank %d on %.60s): device %d, %.100s", dist_rank(),
                     dist_local_rank(), dist_host(), list[i].index, list[i].name);
        else
            snprintf(line, sizeof line, "rank %d (local rank %d on %.60s): %.150s", dist_rank(), dist_local_rank(),
                     dist_host(), cd_errbuf());
        free(list);
    }
    char *all = dist_rank() == 0 ? cd_xcalloc((size_t)dist_size(), W) : NULL;
    dist_gather_lines(line, all, W);
    int rc = 0;
    if (dist_rank() == 0) {
        rc = print_table();
        printf("\n%d processes; the device each takes by default (local rank r: device r mod count of the type; "
               "[device] or CLDETR_DEVICE %s):\n", dist_size(), getenv("CLDETR_DEVICE") ? "is set" : "override");
        for (int r = 0; r < dist_size(); r++) printf("  %s\n", all + (size_t)r * W);
        fflush(stdout);
    }
    free(all);
    return rc;
}

int cmd_devices(int argc, char **argv) {
    args a;
    args_init(&a, "devices", argc, argv, 0);
    while (args_next(&a)) {}
    if (a.rc >= 0) return a.rc;
    if (dist_init() < 0) return cli_error();
    if (dist_size() == 1) {
        int rc = print_table();
        return cli_dist_end(rc == 0 ? 0 : 1);
    }
    return cli_dist_end(print_ranks());
}
