/* The command-line parsing every verb shares (see args.h). */
#include "cli/args.h"
#include "cli/help.h"
#include "cldetr/safetensors.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int args_dtype(args *a, const char *name, int *out, const char **label) {
    static const char *const names[] = {"f32", "f16", "bf16", NULL};
    static const st_dtype dtypes[] = {ST_F32, ST_F16, ST_BF16};
    int k;
    if (!args_choice(a, name, &k, names)) return 0;
    *out = (int)dtypes[k];
    *label = names[k];
    return 1;
}

const char *cli_help(const char *verb) {
    char file[64];
    snprintf(file, sizeof file, "%s.txt", verb);
    for (const cli_help_text *h = cli_help_texts; h->file; h++)
        if (!strcmp(h->file, file)) return h->text;
    return NULL;
}

static void print_help(const args *a, FILE *f) {
    const char *text = cli_help(a->verb);
    if (text) fputs(text, f);
}

void args_init(args *a, const char *verb, int argc, char **argv, int flags) {
    int sets = (flags & ARGS_SETS) != 0;
    *a = (args){.verb = verb, .argc = argc, .argv = argv, .next = 1, .rc = -1, .with_sets = sets,
                .asked = {"--help", "--set"}, .n_asked = 1 + sets};
}

int args_report(args *a, int with_usage, const char *fmt, ...) {
    if (a->rc >= 0) return a->rc;          /* one message per run */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cldetr %s: ", a->verb);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (with_usage && cli_help(a->verb)) {
        fputc('\n', stderr);
        print_help(a, stderr);
    }
    return a->rc = 2;
}

const char *args_closest(const char *typed, const char *const *names, int n) {
    const char *best = NULL;
    int best_d = INT_MAX, len = (int)strlen(typed + strspn(typed, "-"));
    for (int i = 0; i < n; i++) {
        int d = cd_edit_distance(typed, names[i]);
        if (d < best_d) { best_d = d; best = names[i]; }
    }
    return best && best_d <= 1 + len / 4 && best_d < len ? best : NULL;
}

/* Whether the current argument is the option `name` or `name=...`; *eq gets
 * the text after '=' (NULL without one). Records the name for did-you-mean. */
static int match(args *a, const char *name, const char **eq) {
    int k = 0;
    while (k < a->n_asked && strcmp(a->asked[k], name)) k++;
    if (k == a->n_asked && k < ARGS_MAX_ASKED) a->asked[a->n_asked++] = name;
    if (a->rc >= 0 || !a->cur || a->taken) return 0;
    size_t n = strlen(name);
    if (strncmp(a->cur, name, n) || (a->cur[n] && a->cur[n] != '=')) return 0;
    *eq = a->cur[n] ? a->cur + n + 1 : NULL;
    return 1;
}

/* The value of option `name` when it is the current argument; NULL when it is
 * not, or after the error of a missing value. */
static const char *value(args *a, const char *name, const char *what) {
    const char *eq;
    if (!match(a, name, &eq)) return NULL;
    a->taken = 1;
    if (eq) return eq;
    if (a->next < a->argc) return a->argv[a->next++];
    args_error(a, "%s needs %s", name, what);
    return NULL;
}

int args_next(args *a) {
    if (a->rc >= 0) return 0;
    if (a->cur && !a->taken) {
        if (a->cur[0] == '-' && a->cur[1]) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(a->cur, "="), a->cur);
            const char *near = args_closest(name, a->asked, a->n_asked);
            args_error(a, "unknown option '%s'%s%s%s (see cldetr %s --help)", a->cur, near ? "; did you mean '" : "",
                       near ? near : "", near ? "'?" : "", a->verb);
        } else {
            args_error(a, "unexpected argument '%s' (see cldetr %s --help)", a->cur, a->verb);
        }
        return 0;
    }
    while (a->next < a->argc) {
        a->pos = a->next++;
        a->cur = a->argv[a->pos];
        a->taken = 0;
        if (!strcmp(a->cur, "-h") || !strcmp(a->cur, "--help")) {
            print_help(a, stdout);
            a->rc = 0;
            return 0;
        }
        const char *v;
        if (!a->with_sets || !(v = value(a, "--set", "section.key=value"))) return a->rc < 0;
        if (a->n_sets == ARGS_MAX_SETS) return args_error(a, "at most %d --set options", ARGS_MAX_SETS), 0;
        a->sets[a->n_sets++] = v;
    }
    a->cur = NULL;
    return 0;
}

int args_flag(args *a, const char *name) {
    const char *eq;
    if (!match(a, name, &eq)) return 0;
    if (eq) return args_error(a, "%s takes no value, got '%s'", name, a->cur), 0;
    return a->taken = 1;
}

int args_value(args *a, const char *name, const char **out) {
    const char *v = value(a, name, "a value");
    if (v) *out = v;
    return v != NULL;
}

int args_long(args *a, const char *name, long *out, long lo, long hi) {
    const char *s = value(a, name, "a value");
    if (!s) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        if (hi == LONG_MAX) args_error(a, "%s expects an integer >= %ld, got '%s'", name, lo, s);
        else args_error(a, "%s expects an integer in %ld..%ld, got '%s'", name, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int args_double(args *a, const char *name, double *out, double lo, double hi) {
    const char *s = value(a, name, "a value");
    if (!s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi)
        return args_error(a, "%s expects a number in [%g, %g], got '%s'", name, lo, hi, s), 0;
    *out = v;
    return 1;
}

int args_choice(args *a, const char *name, int *out, const char *const *choices) {
    const char *s = value(a, name, "a value");
    if (!s) return 0;
    char list[256] = "";
    size_t o = 0;
    for (int k = 0; choices[k]; k++) {
        if (!strcmp(s, choices[k])) { *out = k; return 1; }
        if (o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", !k ? "" : choices[k + 1] ? ", " : " or ", choices[k]);
    }
    return args_error(a, "%s expects %s, got '%s'", name, list, s), 0;
}

int args_positional(args *a, const char **out) {
    if (a->rc >= 0 || !a->cur || a->taken || (a->cur[0] == '-' && a->cur[1])) return 0;
    *out = a->cur;
    return a->taken = 1;
}

int args_single(args *a, const char **slot, const char *what) {
    const char *v;
    if (!args_positional(a, &v)) return 0;
    if (*slot) return args_error(a, "one %s only (got '%s' and '%s')", what, *slot, v), 0;
    *slot = v;
    return 1;
}
