/* The configuration: one typed struct generated from the key table
 * (include/cldetr/config_keys.def), loaded from an INI file plus
 * `--set section.key=value` overrides, validated, written back as the
 * effective config of a run, and hashed for checkpoints.
 *
 *   config cfg;
 *   if (config_load(&cfg, "configs/shapes.ini", sets, n_sets)) cd_fatal("%s", cd_errbuf());
 *   ... cfg.train.lr, cfg.model.hidden_dim, cfg.augment.scales.v[i] ...
 *
 * Enum keys are stored as their word (strcmp(cfg.model.backbone, "resnet50")).
 * The struct holds no pointers: copy it with '=', compare it with config_hash. */
#ifndef CLDETR_CONFIG_H
#define CLDETR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#define CFG_STR_LEN  256   /* strings, NUL included */
#define CFG_ENUM_LEN 24
#define CFG_LIST_MAX 32    /* items of a list key */

typedef struct { int n; int v[CFG_LIST_MAX]; } config_ints;
typedef struct { int n; double v[CFG_LIST_MAX]; } config_floats;

#define CFG_FIELD_INT(n)    int n
#define CFG_FIELD_FLOAT(n)  double n
#define CFG_FIELD_BOOL(n)   bool n
#define CFG_FIELD_STR(n)    char n[CFG_STR_LEN]
#define CFG_FIELD_ENUM(n)   char n[CFG_ENUM_LEN]
#define CFG_FIELD_INTS(n)   config_ints n
#define CFG_FIELD_FLOATS(n) config_floats n

/* One struct per section: config_model, config_data, config_augment, ... */
#define SECTION(s, help) typedef struct {
#define X(s, n, type, def, range, help) CFG_FIELD_##type(n);
#define END(s) } config_##s;
#include "cldetr/config_keys.def"

typedef struct {
#define SECTION(s, help) config_##s s;
#define X(s, n, type, def, range, help)
#define END(s)
#include "cldetr/config_keys.def"
} config;

/* Every key at its default (the official DETR values where DETR has the key). */
void config_defaults(config *cfg);

/* Defaults, then the INI file at `path` (NULL: none), then each of
 * sets[0..n_sets) ("section.key=value", later ones win), then validation of
 * the whole. Returns 0, or -1 with every problem found (one per line, at most
 * a dozen) in cd_errbuf(), each naming the key, what was expected, what was
 * given and where: "train.lr: expected a number > 0, got 'abc' (configs/x.ini:12)".
 * Unknown sections and keys are errors that name the closest known one. */
int config_load(config *cfg, const char *path, const char *const *sets, size_t n_sets);

/* Cross-key checks (nheads divides hidden_dim, crop_min <= crop_max, ...) of a
 * config filled in code. config_load runs them. Returns 0 or -1 with cd_errbuf(). */
int config_validate(const config *cfg);

/* config_load of a config held in memory (the text a checkpoint or a weights
 * file stores) with --set overrides; `source` names it in errors. 0 or -1
 * with cd_errbuf(). */
int config_load_text(config *cfg, const char *text, const char *source, const char *const *sets, size_t n_sets);

/* The effective config as INI: every key, defaults included, a comment with
 * the default after each value that differs from it, and the hash in the
 * header. Loads back to the same struct. Returns 0, or -1 on a write error. */
int config_write(const config *cfg, FILE *f);
/* config_write to a file (the run folder's config.ini). 0 or -1 with cd_errbuf(). */
int config_save(const config *cfg, const char *path);

/* Stable 64-bit FNV-1a hash of the canonical text of every key except the
 * [device] and [log] sections (where the work runs and how it is reported do
 * not change what is trained). Same values, same hash, on every platform. */
uint64_t config_hash(const config *cfg);

/* Every key with its type, range, default and help (cldetr train --help-config). */
int config_print_help(FILE *f);

#endif
