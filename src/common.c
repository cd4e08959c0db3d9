#include "cldetr/common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct { void (*fn)(void *); void *ctx; } fatal_hooks[8];
static int n_fatal_hooks;
static _Thread_local char errbuf[2048];

void cd_atfatal(void (*fn)(void *), void *ctx) {
    for (int i = 0; i < n_fatal_hooks; i++)       /* once per (fn, ctx): a sweep trains many runs */
        if (fatal_hooks[i].fn == fn && fatal_hooks[i].ctx == ctx) return;
    if (n_fatal_hooks < (int)CD_ARRAY_LEN(fatal_hooks)) {
        fatal_hooks[n_fatal_hooks].fn = fn;
        fatal_hooks[n_fatal_hooks].ctx = ctx;
        n_fatal_hooks++;
    }
}

void cd_atfatal_remove(void (*fn)(void *), void *ctx) {
    for (int i = 0; i < n_fatal_hooks; i++)
        if (fatal_hooks[i].fn == fn && fatal_hooks[i].ctx == ctx) {
            for (int j = i + 1; j < n_fatal_hooks; j++) fatal_hooks[j - 1] = fatal_hooks[j];
            n_fatal_hooks--;
            return;
        }
}

void cd_fatal(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fputs("cldetr: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    for (int i = n_fatal_hooks - 1; i >= 0; i--) fatal_hooks[i].fn(fatal_hooks[i].ctx);
    exit(1);
}

int cd_seterr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *cd_errbuf(void) { return errbuf; }

int cd_env_choice(const char *name, const char *const *choices, int n, const char *unset_note) {
    const char *v = getenv(name);
    if (!v || !*v || !strcmp(v, "auto")) return -1;
    char list[256] = "";
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(v, choices[i])) return i;
        o += (size_t)snprintf(list + o, o < sizeof list ? sizeof list - o : 0, "%s, ", choices[i]);
    }
    if (o >= 2 && o < sizeof list) list[o - 2] = '\0';   /* "a, b" */
    cd_fatal("%s=%s: unknown; use %s or auto (unset: auto%s)", name, v, list, unset_note ? unset_note : "");
}

void *cd_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) cd_fatal("out of host memory allocating %zu bytes", n);
    return p;
}

void *cd_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) cd_fatal("out of host memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *cd_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) cd_fatal("out of host memory reallocating to %zu bytes", n);
    return q;
}

char *cd_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(cd_xmalloc(n), s, n);
}

char *cd_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { cd_seterr("cannot open %s: %s", path, strerror(errno)); return NULL; }
    size_t cap = 1 << 16, n = 0;
    char *buf = cd_xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        cap *= 2;
        buf = cd_xrealloc(buf, cap + 1);
    }
    if (ferror(f)) {
        cd_seterr("cannot read %s: %s", path, strerror(errno));
        fclose(f); free(buf); return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int cd_mkdir_p(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) { errno = ENAMETOOLONG; return -1; }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(tmp, 0755) && errno != EEXIST) ? -1 : 0;
}

int cd_free_bytes(const char *path, uint64_t *bytes) {
    struct statvfs sv;
    if (statvfs(path, &sv) != 0) return -1;
    *bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return 0;
}

int cd_lock_file(const char *path, long *holder) {
    if (holder) *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK && holder) {
            char buf[32] = {0};
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            if (n > 0) *holder = strtol(buf, NULL, 10);
        }
        close(fd);
        errno = e;
        return e == EWOULDBLOCK ? -2 : -1;
    }
    return fd;
}

int cd_lock_note_pid(int fd) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) return -1;
    return 0;
}

void cd_unlock_file(int fd) {
    if (fd >= 0) close(fd);            /* closing the descriptor releases the flock */
}

double cd_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t cd_fnv1a(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}

double cd_rng_normal(uint64_t *state) {
    double u1 = cd_rng_uniform(state), u2 = cd_rng_uniform(state);
    return sqrt(-2.0 * log(u1 + 1e-300)) * cos(2.0 * M_PI * u2);
}

int cd_edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63) return 99;
    int prev[64], cur[64];
    for (size_t j = 0; j <= nb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = CD_MIN(sub, CD_MIN(del, ins));
        }
        memcpy(prev, cur, (nb + 1) * sizeof *prev);
    }
    return prev[nb];
}

int cd_contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}
