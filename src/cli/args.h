/* The command-line parsing every verb shares: a loop over argv in which the
 * verb asks, argument by argument, for the options it knows.
 *
 *     args a;
 *     args_init(&a, "bench", argc, argv, ARGS_SETS);
 *     while (args_next(&a)) {
 *         args_long(&a, "--steps", &steps, 1, 100000);
 *         if (args_flag(&a, "--profile")) profile = 1;
 *         args_single(&a, &path, "config file");
 *     }
 *     if (a.rc >= 0) return a.rc;      // 0 after --help, 2 after a usage error
 *
 * Options take their value as `--opt value` or `--opt=value`. args_next
 * answers -h/--help itself (the usage to stdout), collects --set k=v into
 * a.sets and a.n_sets (for config_load) when args_init got ARGS_SETS, and
 * reports an argument no question took:
 * "cldetr VERB: unknown option '--x'; did you mean '--y'? (see cldetr VERB
 * --help)". Every usage error reads "cldetr VERB: ..." on stderr and makes
 * the verb exit 2; after one, no question matches and the loop ends. */
#ifndef CLDETR_CLI_ARGS_H
#define CLDETR_CLI_ARGS_H

#include <stdio.h>

#include "cldetr/common.h"

#define ARGS_SETS 1          /* args_init: the verb takes --set section.key=value */
#define ARGS_MAX_SETS 256
#define ARGS_MAX_ASKED 40

typedef struct {
    const char *verb;
    int argc;
    char **argv;
    int pos, next;           /* argv index of the current argument, of the one after it (and its value) */
    const char *cur;         /* the current argument; NULL when none */
    int taken;               /* a question took the current argument */
    int rc;                  /* -1 while parsing; then the verb's exit code (0 after --help, 2 after an error) */
    int with_sets;
    const char *sets[ARGS_MAX_SETS];   /* the --set values in order */
    size_t n_sets;
    const char *asked[ARGS_MAX_ASKED]; /* the option names asked for: the did-you-mean candidates */
    int n_asked;
} args;

/* flags: ARGS_SETS; -h/--help prints the verb's text (src/cli/help/VERB.txt). */
void args_init(args *a, const char *verb, int argc, char **argv, int flags);
/* The next argument to ask about: 1, or 0 at the end, after --help or after an error. */
int args_next(args *a);

/* Each question answers 1 and takes the argument when it matches; 0 otherwise,
 * also when an earlier question took it, so questions may follow one another
 * without else. A bad value is a usage error naming the option and the text. */
int args_flag(args *a, const char *name);
int args_value(args *a, const char *name, const char **out);
int args_long(args *a, const char *name, long *out, long lo, long hi);          /* hi LONG_MAX: no bound */
int args_double(args *a, const char *name, double *out, double lo, double hi);  /* lo <= v <= hi */
int args_choice(args *a, const char *name, int *out, const char *const *choices);   /* NULL-terminated */
/* --dtype f32|f16|bf16: the weight file dtype into *out (st_dtype of cldetr/safetensors.h) and its
 * name into *label (both left as they are when the option is absent). */
int args_dtype(args *a, const char *name, int *out, const char **label);
int args_positional(args *a, const char **out);   /* an argument that is no option ("-" is one) */
/* A positional argument into *slot; a second one is the error "one WHAT only". */
int args_single(args *a, const char **slot, const char *what);

/* Usage errors: "cldetr VERB: <message>" on stderr; args_missing adds a blank
 * line and the usage. Both return 2 and end the loop; after --help or a first
 * error they print nothing and return a.rc. */
#define args_error(a, ...) args_report(a, 0, __VA_ARGS__)
#define args_missing(a, ...) args_report(a, 1, __VA_ARGS__)
int args_report(args *a, int with_usage, const char *fmt, ...) CD_PRINTF(3, 4);

/* The name in names closest to typed when it is close enough to be a likely
 * typo, else NULL: the did-you-mean of options and verbs. */
const char *args_closest(const char *typed, const char *const *names, int n);

#endif
