/* cldetr common helpers: fatal errors, checked allocation, small utilities.
 *
 * Error policy (docs/code-style.md §5): code that reads user input (files, configs,
 * CLI) returns an error to its caller with a message in cd_errbuf(); code deep
 * in a training step that cannot go on (a failed OpenCL call) calls cd_fatal,
 * which prints the message and exits non-zero (never exit(0) on failure). */
#ifndef CLDETR_COMMON_H
#define CLDETR_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define CD_NORETURN __attribute__((noreturn))
#define CD_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Print "cldetr: error: <msg>" to stderr, run the fatal hooks, exit(1). */
CD_NORETURN void cd_fatal(const char *fmt, ...) CD_PRINTF(1, 2);

/* A hook run by cd_fatal before exiting (e.g. the trainer notes that the last
 * good checkpoint is kept). At most 8 hooks. */
void cd_atfatal(void (*fn)(void *), void *ctx);
/* Forget a hook (fn, ctx) (e.g. a closed device's). */
void cd_atfatal_remove(void (*fn)(void *), void *ctx);

/* A switch read from the environment: the index of its value among the n
 * choices, or -1 when it is unset, empty or "auto". Any other value ends the
 * run: "NAME=value: unknown; use a, b or auto (unset: auto<unset_note>)". */
int cd_env_choice(const char *name, const char *const *choices, int n, const char *unset_note);

/* Recoverable errors: functions that return -1 leave a message here. */
int cd_seterr(const char *fmt, ...) CD_PRINTF(1, 2);   /* always returns -1 */
const char *cd_errbuf(void);

void *cd_xmalloc(size_t n);
void *cd_xcalloc(size_t n, size_t size);
void *cd_xrealloc(void *p, size_t n);
char *cd_xstrdup(const char *s);

/* Read a whole file; returns NULL and sets cd_errbuf on failure. *len may be NULL. */
char *cd_read_file(const char *path, size_t *len);

/* mkdir -p: create path and its missing parents (mode 0755). 0, or -1 with
 * errno set (ENAMETOOLONG for a path over 4095 bytes). */
int cd_mkdir_p(const char *path);

/* Bytes free to an unprivileged writer on the file system that holds path
 * (statvfs: f_bavail x f_frsize). 0, or -1 with errno set. */
int cd_free_bytes(const char *path, uint64_t *bytes);

/* An exclusive lock (flock) on the file at path, created if missing, held
 * until cd_unlock_file; the file's content is left as it is. Returns the file
 * descriptor (>= 0); -2 when another process holds the lock (*holder: the pid
 * its holder wrote with cd_lock_note_pid, 0 when none); -1 with errno set when
 * the file cannot be opened or locked. holder may be NULL. */
int cd_lock_file(const char *path, long *holder);
/* Write our pid into the locked file (for the message of the next one refused): 0 or -1 with errno. */
int cd_lock_note_pid(int fd);
void cd_unlock_file(int fd);

/* Monotonic wall clock in seconds. */
double cd_now(void);

/* 1 when needle occurs in hay ignoring ASCII case (an empty needle always does). */
int cd_contains_ci(const char *hay, const char *needle);

/* Levenshtein distance of two short strings, ignoring ASCII case (99 when
 * either is longer than 63): the "did you mean" of config keys and verbs. */
int cd_edit_distance(const char *a, const char *b);

/* 64-bit FNV-1a, for cache keys and checksums. */
uint64_t cd_fnv1a(const void *data, size_t n, uint64_t h);
#define CD_FNV_SEED 0xcbf29ce484222325ULL

/* The host's one random generator: splitmix64 (Steele, Lea, Flood 2014).
 * cd_mix64 is its output function, usable alone as a counter-based hash
 * (seed, index) -> 64 bits; cd_rng_next steps a state by the golden-ratio
 * increment and mixes it. Parameter init, augmentation, synthetic data, tests
 * and benchmarks all draw from it, so a seed means the same numbers everywhere. */
static inline uint64_t cd_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline uint64_t cd_rng_next(uint64_t *state) { return cd_mix64(*state += 0x9E3779B97F4A7C15ULL); }
/* Uniform in [0, 1) with 53 random bits. */
static inline double cd_rng_uniform(uint64_t *state) {
    return (double)(cd_rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}
/* Uniform in [lo, hi). */
static inline double cd_rng_range(uint64_t *state, double lo, double hi) {
    return lo + (hi - lo) * cd_rng_uniform(state);
}
/* Standard normal (Box-Muller, one value per two uniforms). */
double cd_rng_normal(uint64_t *state);

#define CD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
