/* cldetr devices: a table of every OpenCL platform and device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/device.h"
#include "cli/args.h"
#include "cli/cli.h"

int cmd_devices(int argc, char **argv) {
    args a;
    args_init(&a, "devices", argc, argv, 0);
    while (args_next(&a)) {}
    if (a.rc >= 0) return a.rc;
    cd_device_info *list;
    int n = cd_list_devices(&list);
    if (n < 0) return cli_error();
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
