/* Hyper-parameter sweeps: every point of a grid of config values trained as
 * its own run under one folder, then a summary table and charts of all of
 * them (src/app/sweep.c). What `cldetr sweep` runs.
 *
 *   runs/sweep-NAME/                      (train.out_dir / sweep-NAME)
 *     <point>/                            an ordinary run folder per point,
 *                                         named "key=value+key=value"
 *     summary.csv, summary.md             one row per point, sorted by the metric
 *     curves-KEY.png                      loss and AP50 against step, a line per value of KEY
 *     best-KEY.png                        the final metric against the value of KEY
 *
 * A point that finished is skipped when the sweep runs again, an interrupted
 * one resumes from its last.ckpt, and a failed one (bad value, divergence) is
 * recorded with its reason while the sweep goes on. */
#ifndef CLDETR_SWEEP_H
#define CLDETR_SWEEP_H

#include <stddef.h>

#define SWEEP_MAX_AXES 8
#define SWEEP_MAX_VALUES 16
#define SWEEP_VALUE_LEN 96

/* One key of the grid and its values. */
typedef struct {
    char key[96];                                 /* section.key */
    char values[SWEEP_MAX_VALUES][SWEEP_VALUE_LEN];
    int n_values;
} sweep_axis;

typedef struct {
    const char *config_path;                      /* the base config */
    const char *const *sets;                      /* --set overrides of every point */
    size_t n_sets;
    sweep_axis axes[SWEEP_MAX_AXES];
    int n_axes;
    const char *name;                             /* the sweep's folder: sweep-NAME (default: the config's stem) */
    const char *metric;                           /* sort key of the summary: AP50 (default), AP, AP75 or loss */
    int jobs;                                     /* points trained at once, one per device (default 1) */
} sweep_args;

/* Parse "section.key=v1,v2,..." (values split at '|' instead when the spec
 * holds one, for keys whose values are lists: "augment.scales=96,128|128")
 * into ax. 0, or -1 with cd_errbuf(). */
int sweep_parse_axis(sweep_axis *ax, const char *spec);

/* The axes of the [sweep] section of an INI file ("section.key = v1,v2"),
 * appended to a->axes. 0 (also when there is no such section), or -1 with
 * cd_errbuf() naming the file and line. */
int sweep_read_section(sweep_args *a, const char *ini_path);

/* Run the sweep. Returns 0 when every point finished, 1 when some failed
 * (recorded in the summary), 2 when interrupted (Ctrl-C: the point in
 * progress wrote its checkpoint), or -1 with cd_errbuf() (bad grid, folder
 * not writable, too few devices for jobs). */
int sweep_run(const sweep_args *a);

/* The summary and charts of a sweep folder from the runs it holds (what
 * sweep_run writes at the end). 0 or -1 with cd_errbuf(). */
int sweep_report(const sweep_args *a, const char *dir);

#endif
