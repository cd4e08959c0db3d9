/* The processes of a data-parallel job (include/cldetr/dist.h): MPI when
 * built with it (CLDETR_MPI) and started by a launcher, else a world of one. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cldetr/dist.h"

#ifdef CLDETR_MPI
#include <mpi.h>
#endif

static int world_size = 1, world_rank = 0, local_rank = 0, started;
static char host[256], who[320];

/* A positive count from the environment, or 0. */
static long env_count(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return *end == '\0' && n > 0 ? n : 0;
}

/* How many processes the launcher says it started (0: no launcher), and which one named it. */
static long launcher_size(const char **from) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < CD_ARRAY_LEN(vars); i++) {
        long n = env_count(vars[i]);
        if (n > 0) { *from = vars[i]; return n; }
    }
    *from = NULL;
    return 0;
}

int dist_has_mpi(void) {
#ifdef CLDETR_MPI
    return 1;
#else
    return 0;
#endif
}

#ifdef CLDETR_MPI
static int mpi_on;               /* MPI_Init was called (and MPI_Finalize not yet) */

static void abort_on_fatal(void *arg) {
    (void)arg;
    fprintf(stderr, "cldetr: %s: the error above ends the job (MPI_Abort)\n", who);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}
#endif

int dist_init(void) {
    if (started) return 0;
    started = 1;
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "unknown");
    const char *from;
    long want = launcher_size(&from);
#ifdef CLDETR_MPI
    /* only under a launcher: a plain `cldetr train` stays a process without MPI, as in a build without it */
    if (want > 0 || getenv("PMI_RANK") || getenv("PMIX_RANK")) {
        int provided;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return cd_seterr("MPI_Init failed (%s=%ld)", from ? from : "PMI_RANK", want);
        mpi_on = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &world_size);
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
        const char *lv = getenv("OMPI_COMM_WORLD_LOCAL_RANK") ? getenv("OMPI_COMM_WORLD_LOCAL_RANK")
                                                              : getenv("SLURM_LOCALID");
        if (lv && *lv) {
            local_rank = atoi(lv);
        } else {                             /* every process takes this branch or none: one launcher */
            MPI_Comm node;
            MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
            MPI_Comm_rank(node, &local_rank);
            MPI_Comm_free(&node);
        }
        if (world_size > 1) {
            snprintf(who, sizeof who, "rank %d of %d (host %s)", world_rank, world_size, host);
            cd_atfatal(abort_on_fatal, NULL);
        }
    }
#endif
    if (want > 1 && world_size == 1) {
        int n = (int)want;
#ifdef CLDETR_MPI
        dist_finalize();
        return cd_seterr("%s says %d processes were started, but MPI sees only this one: under Slurm start "
                         "them with `srun --mpi=pmix` (or pmi2; `srun --mpi=list` shows the plugins), "
                         "see docs/parallel.md", from, n);
#else
        return cd_seterr("%s says %d processes were started, but this cldetr was built without MPI, so each "
                         "would train alone: install an MPI (Debian: libopenmpi-dev openmpi-bin), run "
                         "`meson setup --reconfigure BUILD` and rebuild (docs/parallel.md)", from, n);
#endif
    }
    return 0;
}

void dist_finalize(void) {
#ifdef CLDETR_MPI
    if (mpi_on) MPI_Finalize();
    mpi_on = 0;
#endif
}

int dist_size(void) { return world_size; }
int dist_rank(void) { return world_rank; }
int dist_local_rank(void) { return local_rank; }
const char *dist_host(void) { return host; }
const char *dist_who(void) { return who; }

/* MPI counts are ints: big buffers go in pieces. */
#define CHUNK ((size_t)1 << 30)

#ifdef CLDETR_MPI
static void allreduce_sum(char *x, size_t n, size_t size, MPI_Datatype type) {
    if (world_size > 1)
        for (size_t i = 0; i < n; i += CHUNK)
            MPI_Allreduce(MPI_IN_PLACE, x + i * size, (int)CD_MIN(CHUNK, n - i), type, MPI_SUM, MPI_COMM_WORLD);
}
void dist_allreduce_sum_f32(float *x, size_t n) { allreduce_sum((char *)x, n, sizeof *x, MPI_FLOAT); }
void dist_allreduce_sum_f64(double *x, size_t n) { allreduce_sum((char *)x, n, sizeof *x, MPI_DOUBLE); }
#else
void dist_allreduce_sum_f32(float *x, size_t n) { (void)x; (void)n; }
void dist_allreduce_sum_f64(double *x, size_t n) { (void)x; (void)n; }
#endif

void dist_barrier(void) {
#ifdef CLDETR_MPI
    if (world_size > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void dist_bcast_bytes(void *p, size_t n) {
#ifdef CLDETR_MPI
    if (world_size > 1)
        for (size_t i = 0; i < n; i += CHUNK)
            MPI_Bcast((char *)p + i, (int)CD_MIN(CHUNK, n - i), MPI_BYTE, 0, MPI_COMM_WORLD);
#else
    (void)p; (void)n;
#endif
}

void dist_gather_lines(const char *line, char *lines, size_t width) {
    char *mine = cd_xcalloc(width, 1);
    snprintf(mine, width, "%s", line);
#ifdef CLDETR_MPI
    if (world_size > 1) {
        MPI_Gather(mine, (int)width, MPI_CHAR, lines, (int)width, MPI_CHAR, 0, MPI_COMM_WORLD);
        free(mine);
        return;
    }
#endif
    memcpy(lines, mine, width);
    free(mine);
}

void dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef CLDETR_MPI
    if (mpi_on) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}
