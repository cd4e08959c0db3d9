/* The processes of a data-parallel job (src/dist/dist.c): which one this is,
 * how many there are, and the few collectives training needs. Built on MPI
 * when cldetr is compiled with it (CLDETR_MPI); without MPI, or when the
 * program was not started by a launcher (mpirun, srun), the world is one
 * process and every collective is a copy. docs/parallel.md has the picture.
 *
 *   dist_init()                        once, before anything of a verb that may run under mpirun
 *   dist_size(), dist_rank(), dist_local_rank()
 *   dist_allreduce_sum_f32(grads, n)   the gradient average's sum, on the host
 *   dist_abort(1)                      an error on one rank ends the whole job
 *   dist_finalize()                    once, at the end of a verb that succeeded
 *
 * Every collective must be called by every process in the same order; an MPI
 * error inside one ends the job (MPI's default error handler). */
#ifndef CLDETR_DIST_H
#define CLDETR_DIST_H

#include <stddef.h>

#include "cldetr/common.h"

/* Join the job: MPI_Init when a launcher started this process (its
 * environment says so), otherwise a world of one. The local rank (the index
 * among the job's processes on this node) comes from OMPI_COMM_WORLD_LOCAL_RANK,
 * else SLURM_LOCALID, else a split of the world by shared memory. Returns 0,
 * or -1 with cd_errbuf() when a launcher started several processes that
 * cannot form one job (a build without MPI; srun without an MPI plugin).
 * A second call does nothing. */
int dist_init(void);
void dist_finalize(void);               /* MPI_Finalize (nothing in a world of one) */

int dist_size(void);                    /* processes in the job (1 before dist_init) */
int dist_rank(void);                    /* this one's index, 0 .. size-1 */
int dist_local_rank(void);              /* its index among the job's processes on this node */
const char *dist_host(void);            /* the node's name */
int dist_has_mpi(void);                 /* 1 when built with MPI */

/* x[i] = sum over processes of x[i], in place, on every process. */
void dist_allreduce_sum_f32(float *x, size_t n);
void dist_allreduce_sum_f64(double *x, size_t n);
void dist_barrier(void);
/* Rank 0's n bytes at p, on every process. */
void dist_bcast_bytes(void *p, size_t n);

/* Rank 0 receives every process's line (up to width-1 characters, cut
 * there) in rank order, lines[r * width]; the other ranks' lines is unused
 * (may be NULL). */
void dist_gather_lines(const char *line, char *lines, size_t width);

/* End every process of the job with this exit code (MPI_Abort); exit(code)
 * in a world of one. Print the reason, with dist_who(), before calling it. */
CD_NORETURN void dist_abort(int code);

/* "rank 1 of 2 (host node3)" for messages; "" in a world of one. */
const char *dist_who(void);

#endif
