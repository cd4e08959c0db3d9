/* The config system: the key table of include/cldetr/config_keys.def drives
 * the INI parser (inih), `--set` overrides, validation, the effective-config
 * writer, the hash and the help.
 *
 * inih parses the file: it finds section headers and their names, splits
 * `key = value` (or `key: value`), trims both, cuts ';' comments, skips blank
 * and comment lines, and calls on_key for every key. Our line reader feeds it
 * (see read_line) and names what inih refuses. Problems are collected, not
 * stopped at, so one run names every mistake in a file. */
#include "cldetr/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "cldetr/common.h"

/* ------------------------------------------------------------ the tables */

typedef enum { T_INT, T_FLOAT, T_BOOL, T_STR, T_ENUM, T_INTS, T_FLOATS } key_type;

typedef struct {
    const char *section, *name;
    key_type type;
    const char *def, *range, *help;
    size_t offset, size;
} key_info;

enum {
#define SECTION(s, help)
#define X(s, n, type, def, range, help) K_##s##_##n,
#define END(s)
#include "cldetr/config_keys.def"
    N_KEYS
};

static const key_info keys[N_KEYS] = {
#define SECTION(s, help)
#define X(s, n, type, def, range, help) \
    {#s, #n, T_##type, def, range, help, offsetof(config, s.n), sizeof(((config *)0)->s.n)},
#define END(s)
#include "cldetr/config_keys.def"
};

static const struct { const char *name, *help; } sections[] = {
#define SECTION(s, help) {#s, help},
#define X(s, n, type, def, range, help)
#define END(s)
#include "cldetr/config_keys.def"
};
#define N_SECTIONS ((int)CD_ARRAY_LEN(sections))

static void *field(config *cfg, int k) { return (char *)cfg + keys[k].offset; }
static const void *cfield(const config *cfg, int k) { return (const char *)cfg + keys[k].offset; }

static int find_section(const char *s) {
    for (int i = 0; i < N_SECTIONS; i++)
        if (!strcmp(sections[i].name, s)) return i;
    return -1;
}

static int find_key(const char *section, const char *name) {
    for (int k = 0; k < N_KEYS; k++)
        if (!strcmp(keys[k].section, section) && !strcmp(keys[k].name, name)) return k;
    return -1;
}

/* ------------------------------------------------- suggestions (did you mean) */

static int close_enough(int d, const char *typed) { return d <= 2 + (int)strlen(typed) / 4; }

/* The known key closest to section.name: by full name, or by the bare name
 * in another section ("[model] lr" -> train.lr). -1 if nothing is close. */
static int suggest_key(const char *section, const char *name) {
    char typed[160];
    snprintf(typed, sizeof typed, "%s.%s", section, name);
    int best = -1, best_d = 1 << 20;
    for (int k = 0; k < N_KEYS; k++) {
        char full[160];
        snprintf(full, sizeof full, "%s.%s", keys[k].section, keys[k].name);
        int d = cd_edit_distance(typed, full);
        int d_name = cd_edit_distance(name, keys[k].name);
        size_t n = strlen(name), kn = strlen(keys[k].name);
        if (n >= 3 && n < kn && !strncmp(name, keys[k].name, n)) d_name = CD_MIN(d_name, 1);   /* "hidden" */
        d_name += strcmp(section, keys[k].section) != 0;
        d = CD_MIN(d, d_name);
        if (d < best_d) { best_d = d; best = k; }
    }
    return best >= 0 && close_enough(best_d, name) ? best : -1;
}

static int suggest_section(const char *s) {
    int best = -1, best_d = 1 << 20;
    for (int i = 0; i < N_SECTIONS; i++) {
        int d = cd_edit_distance(s, sections[i].name);
        if (d < best_d) { best_d = d; best = i; }
    }
    return close_enough(best_d, s) ? best : -1;
}

static void section_list(char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < N_SECTIONS && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s[%s]", i ? " " : "", sections[i].name);
}

/* ------------------------------------------------------- ranges and values */

typedef struct {
    int has_lo, lo_incl, has_hi, hi_incl;
    double lo, hi;
} num_range;

/* "" | ">0" | ">=0" | "<1" | "<=1" | "[a,b]" | "[a,b)" | "(a,b]" | "(a,b)" */
static num_range parse_range(const char *r) {
    num_range q = {0};
    char *end;
    if (r[0] == '>' || r[0] == '<') {
        int incl = r[1] == '=';
        double v = strtod(r + 1 + incl, &end);
        if (r[0] == '>') { q.has_lo = 1; q.lo_incl = incl; q.lo = v; }
        else             { q.has_hi = 1; q.hi_incl = incl; q.hi = v; }
    } else if (r[0] == '[' || r[0] == '(') {
        q.has_lo = q.has_hi = 1;
        q.lo_incl = r[0] == '[';
        q.lo = strtod(r + 1, &end);
        q.hi = strtod(end + 1, &end);           /* skip the comma */
        q.hi_incl = *end == ']';
    }
    return q;
}

static int in_range(const num_range *q, double v) {
    if (q->has_lo && (q->lo_incl ? v < q->lo : v <= q->lo)) return 0;
    if (q->has_hi && (q->hi_incl ? v > q->hi : v >= q->hi)) return 0;
    return 1;
}

static void range_text(const num_range *q, char *out, size_t cap) {
    if (q->has_lo && q->has_hi)
        snprintf(out, cap, " in %c%g, %g%c", q->lo_incl ? '[' : '(', q->lo, q->hi, q->hi_incl ? ']' : ')');
    else if (q->has_lo) snprintf(out, cap, " %s %g", q->lo_incl ? ">=" : ">", q->lo);
    else if (q->has_hi) snprintf(out, cap, " %s %g", q->hi_incl ? "<=" : "<", q->hi);
    else out[0] = '\0';
}

/* "a number > 0", "an integer in [1, 64]", "one of sine, learned", ... */
static void expected_text(int k, char *out, size_t cap) {
    const key_info *K = &keys[k];
    char r[64];
    num_range q = parse_range(K->range);
    range_text(&q, r, sizeof r);
    switch (K->type) {
    case T_INT:   snprintf(out, cap, "an integer%s", r); break;
    case T_FLOAT: snprintf(out, cap, "a number%s", r); break;
    case T_BOOL:  snprintf(out, cap, "true or false (or yes/no, on/off, 1/0)"); break;
    case T_STR:
        snprintf(out, cap, "%s of at most %d characters, without line breaks or ';'/'#' after a space",
                 strcmp(K->range, "nonempty") ? "text" : "non-empty text", CFG_STR_LEN - 1);
        break;
    case T_ENUM: {
        size_t o = (size_t)snprintf(out, cap, "one of ");
        for (const char *p = K->range; *p && o + 3 < cap; p++) {
            if (*p == '|') { if (o + 2 < cap) { out[o++] = ','; out[o++] = ' '; } }
            else out[o++] = *p;
        }
        out[o] = '\0';
        break;
    }
    case T_INTS:
    case T_FLOATS:
        snprintf(out, cap, "a comma-separated list of 1 to %d %s%s%s", CFG_LIST_MAX,
                 K->type == T_INTS ? "integers" : "numbers", r[0] ? ", each" : "", r);
        break;
    }
}

static const char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < -2147483647L - 1 || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* Text that a written INI line carries back unchanged (inih strips the ends
 * and cuts at ';' after whitespace; our reader also cuts at '#' after it). */
static int string_ok(const char *s) {
    size_t n = strlen(s);
    if (n >= CFG_STR_LEN) return 0;
    if (n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' || s[i] == '\r') return 0;
        if ((s[i] == ';' || s[i] == '#') && i && isspace((unsigned char)s[i - 1])) return 0;
    }
    return 1;
}

/* Parse `text` into key k's field; 0, or -1 if it is not what the key takes. */
static int parse_value(int k, const char *text, void *dst) {
    const key_info *K = &keys[k];
    num_range q = parse_range(K->range);
    switch (K->type) {
    case T_INT: {
        int v;
        if (parse_int(text, &v) || !in_range(&q, v)) return -1;
        *(int *)dst = v;
        return 0;
    }
    case T_FLOAT: {
        double v;
        if (parse_double(text, &v) || !in_range(&q, v)) return -1;
        *(double *)dst = v;
        return 0;
    }
    case T_BOOL: {
        static const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
        for (int i = 0; i < 4; i++) {
            if (!strcasecmp(text, yes[i])) { *(bool *)dst = true; return 0; }
            if (!strcasecmp(text, no[i])) { *(bool *)dst = false; return 0; }
        }
        return -1;
    }
    case T_STR:
        if (!string_ok(text) || (!strcmp(K->range, "nonempty") && !*text)) return -1;
        memset(dst, 0, K->size);
        memcpy(dst, text, strlen(text));
        return 0;
    case T_ENUM: {
        size_t n = strlen(text);
        for (const char *p = K->range; *p;) {
            const char *e = strchr(p, '|');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (n && len == n && !strncasecmp(p, text, n)) {
                memset(dst, 0, K->size);
                memcpy(dst, p, len);          /* the table's spelling */
                return 0;
            }
            p += len + (e != NULL);
        }
        return -1;
    }
    case T_INTS:
    case T_FLOATS: {
        config_ints vi;
        config_floats vf;
        memset(&vi, 0, sizeof vi);
        memset(&vf, 0, sizeof vf);
        char buf[4096];
        if (strlen(text) >= sizeof buf) return -1;
        strcpy(buf, text);
        int n = 0;
        for (char *p = buf;;) {
            char *comma = strchr(p, ',');
            if (comma) *comma = '\0';
            const char *item = trim(p);
            if (n == CFG_LIST_MAX) return -1;
            if (K->type == T_INTS) {
                if (parse_int(item, &vi.v[n]) || !in_range(&q, vi.v[n])) return -1;
            } else {
                if (parse_double(item, &vf.v[n]) || !in_range(&q, vf.v[n])) return -1;
            }
            n++;
            if (!comma) break;
            p = comma + 1;
        }
        vi.n = vf.n = n;
        if (K->type == T_INTS) *(config_ints *)dst = vi;
        else *(config_floats *)dst = vf;
        return 0;
    }
    }
    return -1;
}

/* Shortest "%.Ng" that reads back to the same double. */
static int format_double(char *out, size_t cap, double v) {
    int n = 0;
    for (int prec = 6; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    return n;
}

/* Canonical text of key k's value (what the writer and the hash use). */
static void format_value(const config *cfg, int k, char *out, size_t cap) {
    const void *src = cfield(cfg, k);
    size_t o = 0;
    out[0] = '\0';
    switch (keys[k].type) {
    case T_INT:   snprintf(out, cap, "%d", *(const int *)src); break;
    case T_FLOAT: format_double(out, cap, *(const double *)src); break;
    case T_BOOL:  snprintf(out, cap, "%s", *(const bool *)src ? "true" : "false"); break;
    case T_STR:
    case T_ENUM:  snprintf(out, cap, "%s", (const char *)src); break;
    case T_INTS: {
        const config_ints *l = src;
        for (int i = 0; i < l->n && o < cap; i++)
            o += (size_t)snprintf(out + o, cap - o, "%s%d", i ? "," : "", l->v[i]);
        break;
    }
    case T_FLOATS: {
        const config_floats *l = src;
        for (int i = 0; i < l->n && o < cap; i++) {
            if (i && o + 1 < cap) out[o++] = ',';
            o += (size_t)format_double(out + o, cap - o, l->v[i]);
        }
        break;
    }
    }
}

/* ------------------------------------------------------------ defaults */

void config_defaults(config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int k = 0; k < N_KEYS; k++)
        if (parse_value(k, keys[k].def, field(cfg, k)))   /* a bad table entry: a bug, caught by the tests */
            cd_fatal("config_keys.def: default '%s' of %s.%s is not valid", keys[k].def, keys[k].section,
                     keys[k].name);
}

/* --------------------------------------------------------------- errors */

#define MAX_ERRORS 12

typedef struct {
    config *cfg;
    const char *path;
    const char *const *sets;
    const char *pos;              /* reader: the rest of the file text */
    int line;                     /* reader: number of the file line inih is on */
    char *text;                   /* that line as inih got it, whole (see read_line) */
    const char *buf;              /* inih's line buffer, as the reader last filled it */
    int cut;                      /* the line did not fit in that buffer */
    int step;                     /* STEP_*: a section header goes to inih in three steps */
    int probe;                    /* inih is on the probe line after a header */
    int key_line;                 /* neither blank, comment nor header: inih must call on_key */
    int handled;                  /* it did */
    int section;                  /* index of the current [section], or NO_SECTION / SKIP_SECTION */
    int origin[N_KEYS];           /* 0 default, > 0 file line, < 0: --set number -origin-1 */
    int in_code;                  /* config_validate: values set by a program, no place to name */
    int n_errors;
    char msg[2000];
} loader;

static void add_error(loader *L, const char *fmt, ...) CD_PRINTF(2, 3);
static void add_error(loader *L, const char *fmt, ...) {
    size_t o = strlen(L->msg);
    if (L->n_errors++ >= MAX_ERRORS || o + 2 >= sizeof L->msg) return;
    if (o) L->msg[o++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->msg + o, sizeof L->msg - o, fmt, ap);
    va_end(ap);
}

/* "(configs/x.ini:12)", "(--set train.lr=abc)" or "(default)" */
static const char *where(const loader *L, int origin, char *buf, size_t cap) {
    if (origin > 0) snprintf(buf, cap, "(%s:%d)", L->path, origin);
    else if (origin < 0) snprintf(buf, cap, "(--set %s)", L->sets[-origin - 1]);
    else snprintf(buf, cap, "%s", L->in_code ? "(as set by the caller)" : "(default)");
    return buf;
}

static void shorten(const char *s, char *out, size_t cap) {
    size_t n = strlen(s);
    if (n + 1 <= cap) { memcpy(out, s, n + 1); return; }
    snprintf(out, cap, "%.*s...", (int)(cap - 4), s);
}

static void set_value(loader *L, int k, const char *value, int origin) {
    if (parse_value(k, value, field(L->cfg, k))) {
        char exp[256], got[96], w[CFG_STR_LEN + 32];
        expected_text(k, exp, sizeof exp);
        shorten(value, got, sizeof got);
        add_error(L, "%s.%s: expected %s, got '%s' %s", keys[k].section, keys[k].name, exp, got,
                  where(L, origin, w, sizeof w));
        return;
    }
    L->origin[k] = origin;
}

static void unknown_key(loader *L, const char *section, const char *name, int origin) {
    char w[CFG_STR_LEN + 32], hint[200];
    int s = suggest_key(section, name);
    if (s >= 0) snprintf(hint, sizeof hint, ", did you mean %s.%s?", keys[s].section, keys[s].name);
    else snprintf(hint, sizeof hint, " (cldetr train --help-config lists every key)");
    add_error(L, "%s.%s: unknown key%s %s", section, name, hint, where(L, origin, w, sizeof w));
}

static void unknown_section(loader *L, const char *section, int origin) {
    char w[CFG_STR_LEN + 32], hint[300];
    int s = suggest_section(section);
    if (s >= 0) snprintf(hint, sizeof hint, ", did you mean [%s]?", sections[s].name);
    else {
        char list[200];
        section_list(list, sizeof list);
        snprintf(hint, sizeof hint, "; sections are %s", list);
    }
    add_error(L, "[%s]: unknown section%s %s", section, hint, where(L, origin, w, sizeof w));
}

/* ------------------------------------------------------------ INI file */

enum { STEP_LINE, STEP_HEADER, STEP_PROBE };
enum { NO_SECTION = -1, SKIP_SECTION = -2 };   /* before any header; under one already reported */

static void malformed(loader *L, const char *what, const char *expected) {
    char w[CFG_STR_LEN + 32];
    add_error(L, "malformed %s '%s': expected %s %s", what, L->text, expected, where(L, L->line, w, sizeof w));
}

static char *hand(loader *L, char *str, int num, const char *s) {
    size_t n = strlen(s);
    L->cut = n >= (size_t)num;
    if (L->cut) n = (size_t)num - 1;
    memcpy(str, s, n);
    str[n] = '\0';
    L->buf = str;
    return str;
}

/* inih's fgets. The inih we link calls on_key without a line number
 * (INI_HANDLER_LINENO is 0 in its ini.h), so the reader counts the lines. It
 * hands inih each line with the indentation taken off (inih would glue an
 * indented line to the previous value as a multi-line value) and a '#' after
 * a space cut off as a comment (inih's inline comments start with ';' only).
 * A key line inih does not pass to on_key is malformed. A section header goes
 * out between two lines of our own: "[\n]" before it, a section name no file
 * line can hold, which stays if inih refuses the header, and a probe key after
 * it, which gives on_key the section inih read. A line longer than inih's
 * buffer goes in cut short, and on_key finds the rest of its value in L->text. */
static char *read_line(char *str, int num, void *stream) {
    loader *L = stream;
    L->probe = L->step == STEP_PROBE;
    if (L->step == STEP_HEADER) { L->step = STEP_PROBE; return hand(L, str, num, L->text); }
    if (L->step == STEP_PROBE) { L->step = STEP_LINE; return hand(L, str, num, "probe="); }
    if (L->key_line && !L->handled) malformed(L, "line", "'key = value', '[section]' or a comment");
    if (!*L->pos) return NULL;
    const char *nl = strchr(L->pos, '\n');
    size_t len = nl ? (size_t)(nl - L->pos) : strlen(L->pos);
    free(L->text);
    L->text = cd_xmalloc(len + 1);
    memcpy(L->text, L->pos, len);
    L->text[len] = '\0';
    L->pos += len + (nl != NULL);
    L->line++;
    for (char *p = L->text; *p; p++)
        if (*p == '#' && p > L->text && isspace((unsigned char)p[-1])) { *p = '\0'; break; }
    const char *s = trim(L->text);
    memmove(L->text, s, strlen(s) + 1);
    L->key_line = !strchr("[;#", L->text[0]);   /* strchr finds the '\0' of a blank line too */
    L->handled = 0;
    if (L->text[0] == '[') { L->step = STEP_HEADER; return hand(L, str, num, "[\n]"); }
    return hand(L, str, num, L->text);
}

/* The probe after a header: `section` is what inih read from it. */
static void open_section(loader *L, const char *section) {
    if (!strcmp(section, "\n")) {
        L->section = SKIP_SECTION;
        malformed(L, "section header", "'[name]'");
        return;
    }
    char name[CFG_STR_LEN];
    snprintf(name, sizeof name, "%s", section);
    const char *s = trim(name);
    L->section = find_section(s);
    if (L->section < 0 && !strcmp(s, "sweep")) {   /* the grid of `cldetr sweep` (src/app/sweep.c reads it) */
        L->section = SKIP_SECTION;
        return;
    }
    if (L->section < 0) {
        L->section = SKIP_SECTION;
        unknown_section(L, s, L->line);
    }
}

/* The value of a line inih got cut short: where inih's begins in its buffer,
 * on in the whole line up to a ';' after a space (inih's inline comment). */
static const char *whole_value(loader *L, const char *value) {
    char *v = L->text + (value - L->buf), *e = v;
    while (*e && !(*e == ';' && isspace((unsigned char)e[-1]))) e++;
    *e = '\0';
    return trim(v);
}

static int on_key(void *user, const char *section, const char *name, const char *value) {
    loader *L = user;
    char w[CFG_STR_LEN + 32];
    L->handled = 1;
    if (L->probe) { open_section(L, section); return 1; }
    if (!*name) { malformed(L, "line", "'key = value', '[section]' or a comment"); return 1; }
    if (L->section == SKIP_SECTION) return 1;          /* its header was reported */
    if (L->section == NO_SECTION) {
        int s = suggest_key("", name);
        char hint[160] = "";
        if (s >= 0) snprintf(hint, sizeof hint, " (did you mean [%s] %s?)", keys[s].section, keys[s].name);
        add_error(L, "%s: key outside any section: put it under its [section] header%s %s", name, hint,
                  where(L, L->line, w, sizeof w));
        return 1;
    }
    section = sections[L->section].name;
    if (L->cut) value = whole_value(L, value);
    int k = find_key(section, name);
    if (k < 0) { unknown_key(L, section, name, L->line); return 1; }
    if (L->origin[k] > 0) {
        add_error(L, "%s.%s: set twice, first at line %d %s", section, name, L->origin[k],
                  where(L, L->line, w, sizeof w));
        return 1;
    }
    set_value(L, k, value, L->line);
    return 1;
}

static void load_file(loader *L) {
    char *text = cd_read_file(L->path, NULL);
    if (!text) { add_error(L, "%s", cd_errbuf()); return; }
    L->pos = text;
    if (!strncmp(L->pos, "\xEF\xBB\xBF", 3)) L->pos += 3;   /* UTF-8 byte order mark */
    L->section = NO_SECTION;
    int n_before = L->n_errors;
    int rc = ini_parse_stream(read_line, L, on_key, L);
    if (rc && L->n_errors == n_before)   /* inih refused a line we did not name, or ran out of memory */
        add_error(L, "%s: inih failed (%d)", L->path, rc);
    free(L->text);
    L->text = NULL;
    free(text);
}

/* ---------------------------------------------------------------- --set */

static void apply_set(loader *L, int i) {
    const char *a = L->sets[i];
    const char *eq = strchr(a, '=');
    const char *dot = eq ? memchr(a, '.', (size_t)(eq - a)) : strchr(a, '.');
    char lhs[160] = "", section[80] = "", name[80] = "";
    if (eq && (size_t)(eq - a) < sizeof lhs) {
        memcpy(lhs, a, (size_t)(eq - a));
        lhs[eq - a] = '\0';
    }
    if (!eq || !dot) {
        char hint[200] = "";
        const char *key = eq ? trim(lhs) : a;
        if (!dot) {                                    /* "--set lr=1": look for the bare name */
            int s = suggest_key("", key);
            if (s >= 0) snprintf(hint, sizeof hint, "; did you mean %s.%s?", keys[s].section, keys[s].name);
        }
        add_error(L, "--set %s: expected section.key=value, e.g. --set train.lr=2e-4%s", a, hint);
        return;
    }
    size_t slen = (size_t)(dot - a), nlen = (size_t)(eq - dot - 1);
    if (slen >= sizeof section || nlen >= sizeof name) {
        add_error(L, "--set %s: expected section.key=value", a);
        return;
    }
    memcpy(section, a, slen);
    memcpy(name, dot + 1, nlen);
    const char *sec = trim(section), *nm = trim(name);
    if (find_section(sec) < 0) { unknown_section(L, sec, -i - 1); return; }
    int k = find_key(sec, nm);
    if (k < 0) { unknown_key(L, sec, nm, -i - 1); return; }
    size_t vlen = strlen(eq + 1);
    char *value = cd_xmalloc(vlen + 1);
    memcpy(value, eq + 1, vlen + 1);
    set_value(L, k, trim(value), -i - 1);
    free(value);
}

/* ----------------------------------------------------------- validation */

static void cross_check(loader *L, const config *c) {
    char w[CFG_STR_LEN + 32];
#define WHERE(k1, k2) where(L, L->origin[k1] ? L->origin[k1] : L->origin[k2], w, sizeof w)
    if (c->model.hidden_dim % c->model.nheads)
        add_error(L, "model.nheads: %d does not divide model.hidden_dim = %d %s", c->model.nheads,
                  c->model.hidden_dim, WHERE(K_model_nheads, K_model_hidden_dim));
    if (!strcmp(c->model.position_embedding, "sine") && c->model.hidden_dim % 4)
        add_error(L, "model.hidden_dim: sine positions need a multiple of 4, got %d %s", c->model.hidden_dim,
                  WHERE(K_model_hidden_dim, K_model_position_embedding));
    if (!strcmp(c->model.position_embedding, "learned") && c->model.hidden_dim % 2)
        add_error(L, "model.hidden_dim: learned positions need an even number, got %d %s", c->model.hidden_dim,
                  WHERE(K_model_hidden_dim, K_model_position_embedding));
    if (c->augment.crop_min > c->augment.crop_max)
        add_error(L, "augment.crop_min: %d is above augment.crop_max = %d %s", c->augment.crop_min,
                  c->augment.crop_max, WHERE(K_augment_crop_min, K_augment_crop_max));
    if (c->augment.mean.n != 3)
        add_error(L, "augment.mean: expected 3 values (R,G,B), got %d %s", c->augment.mean.n,
                  WHERE(K_augment_mean, K_augment_mean));
    if (c->augment.std.n != 3)
        add_error(L, "augment.std: expected 3 values (R,G,B), got %d %s", c->augment.std.n,
                  WHERE(K_augment_std, K_augment_std));
    if (c->data.shapes_min_objects > c->data.shapes_max_objects)
        add_error(L, "data.shapes_min_objects: %d is above data.shapes_max_objects = %d %s",
                  c->data.shapes_min_objects, c->data.shapes_max_objects,
                  WHERE(K_data_shapes_min_objects, K_data_shapes_max_objects));
    if (c->matcher.set_cost_class == 0 && c->matcher.set_cost_bbox == 0 && c->matcher.set_cost_giou == 0)
        add_error(L, "matcher: set_cost_class, set_cost_bbox and set_cost_giou are all 0; at least one must be > 0 %s",
                  WHERE(K_matcher_set_cost_class, K_matcher_set_cost_bbox));
    if (strchr(c->train.name, '/') || !strcmp(c->train.name, ".") || !strcmp(c->train.name, ".."))
        add_error(L, "train.name: expected a folder name without '/', got '%s' %s", c->train.name,
                  WHERE(K_train_name, K_train_name));
#undef WHERE
}

int config_validate(const config *cfg) {
    loader *L = cd_xcalloc(1, sizeof *L);
    L->path = "?";
    L->in_code = 1;
    cross_check(L, cfg);
    int rc = L->n_errors ? cd_seterr("%s", L->msg) : 0;
    free(L);
    return rc;
}

/* ----------------------------------------------------------------- load */

int config_load(config *cfg, const char *path, const char *const *sets, size_t n_sets) {
    loader *L = cd_xcalloc(1, sizeof *L);
    config_defaults(cfg);
    L->cfg = cfg;
    L->path = path ? path : "?";
    L->sets = sets;
    if (path) load_file(L);
    for (size_t i = 0; i < n_sets; i++) apply_set(L, (int)i);
    if (!L->n_errors) cross_check(L, cfg);
    int rc = 0;
    if (L->n_errors) {
        size_t o = strlen(L->msg);
        if (L->n_errors > MAX_ERRORS && o + 40 < sizeof L->msg)
            snprintf(L->msg + o, sizeof L->msg - o, "\n... and %d more", L->n_errors - MAX_ERRORS);
        rc = cd_seterr("%s", L->msg);
    }
    free(L);
    return rc;
}

/* ---------------------------------------------------------- write, hash */

uint64_t config_hash(const config *cfg) {
    uint64_t h = CD_FNV_SEED;
    char v[8192];
    for (int k = 0; k < N_KEYS; k++) {
        if (!strcmp(keys[k].section, "device") || !strcmp(keys[k].section, "log")) continue;
        format_value(cfg, k, v, sizeof v);
        h = cd_fnv1a(keys[k].section, strlen(keys[k].section), h);
        h = cd_fnv1a(".", 1, h);
        h = cd_fnv1a(keys[k].name, strlen(keys[k].name), h);
        h = cd_fnv1a("=", 1, h);
        h = cd_fnv1a(v, strlen(v), h);
        h = cd_fnv1a("\n", 1, h);
    }
    return h;
}

int config_write(const config *cfg, FILE *f) {
    config def;
    config_defaults(&def);
    char v[8192], d[8192];
    fprintf(f, "# cldetr effective config: every key, defaults included ('; default' marks a changed value).\n"
               "# config hash %016llx\n", (unsigned long long)config_hash(cfg));
    const char *section = "";
    for (int k = 0; k < N_KEYS; k++) {
        if (strcmp(section, keys[k].section)) {
            section = keys[k].section;
            fprintf(f, "\n[%s]\n", section);
        }
        format_value(cfg, k, v, sizeof v);
        format_value(&def, k, d, sizeof d);
        if (strcmp(v, d)) fprintf(f, "%s = %s  ; default %s\n", keys[k].name, v, *d ? d : "(empty)");
        else fprintf(f, "%s = %s\n", keys[k].name, v);
    }
    return fflush(f) || ferror(f) ? -1 : 0;
}

int config_save(const config *cfg, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return cd_seterr("cannot write %s: %s", path, strerror(errno));
    int rc = config_write(cfg, f);
    if (fclose(f) || rc) return cd_seterr("cannot write %s: %s", path, strerror(errno));
    return 0;
}

int config_print_help(FILE *f) {
    static const char *type_names[] = {"int", "float", "bool", "string", "enum", "int list", "float list"};
    fprintf(f, "Config keys: set them in the INI file under [section], or with --set section.key=value.\n"
               "Comments start with ';' or '#' (at the start of a line or after a space).\n");
    const char *section = "";
    for (int k = 0; k < N_KEYS; k++) {
        const key_info *K = &keys[k];
        if (strcmp(section, K->section)) {
            section = K->section;
            fprintf(f, "\n[%s]  %s\n", section, sections[find_section(section)].help);
        }
        char r[80] = "", full[80];
        if (K->type == T_ENUM) snprintf(r, sizeof r, " %s", K->range);
        else if (K->type == T_STR) snprintf(r, sizeof r, "%s", strcmp(K->range, "nonempty") ? "" : ", non-empty");
        else {
            num_range q = parse_range(K->range);
            range_text(&q, r, sizeof r);
        }
        snprintf(full, sizeof full, "%s.%s", K->section, K->name);
        fprintf(f, "  %-26s = %-14s %s%s\n      %s\n", full, *K->def ? K->def : "\"\"", type_names[K->type], r,
                K->help);
    }
    return ferror(f) ? -1 : 0;
}

/* A config from the text stored in a checkpoint or a weights file. */
int config_load_text(config *cfg, const char *text, const char *source, const char *const *sets, size_t n_sets) {
    const char *tmpdir = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/cldetr-config-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(tmp);
    if (fd < 0) return cd_seterr("cannot create a temporary file for the config of %s: %s", source, strerror(errno));
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    int rc = ok ? config_load(cfg, tmp, sets, n_sets) : cd_seterr("cannot write %s", tmp);
    unlink(tmp);
    if (rc < 0) {
        char why[2048];
        snprintf(why, sizeof why, "%s", cd_errbuf());
        return cd_seterr("the config stored in %s does not load: %s", source, why);
    }
    return 0;
}
