/* parallel.h: training over several processes, on Open MPI (mpi_comm.c; mpi_stub.c in a build
 * without MPI, where par_start says that --parallel needs an MPI build).
 *
 * Two ways (src/train/train.c drives them):
 *   data    every rank holds the whole network and takes its share of each global batch; the
 *           gradients are summed over the ranks (non-blocking all-reduces, one per layer with
 *           parameters, started as net_backward finishes that layer, so they overlap the layers
 *           below), and every rank applies the same update.
 *   towers  the paper's split (section 3.2): two ranks, each holding half the kernels of every
 *           layer (towers.c); activations are exchanged forward, and their gradients backward,
 *           only where the paper's towers connect.
 *
 * Every wait on the other ranks has a deadline (par_set_timeout): when a rank dies, the others
 * print one line and stop (MPI_Abort) instead of waiting in a collective for ever. */
#ifndef ALEXNET_PARALLEL_H
#define ALEXNET_PARALLEL_H
#include <stddef.h>
#include <stdint.h>

typedef enum { PARALLEL_NONE = 0, PARALLEL_DATA, PARALLEL_TOWERS } ParallelMode;

int par_built(void);           /* 1 in a build with MPI */
/* MPI_Init (threads: funneled). 0, or -1 with an_error (no MPI in this build, MPI failed). */
int par_start(int *argc, char ***argv);
void par_finish(void);          /* MPI_Finalize, if started */
int par_rank(void);             /* 0 when not started */
int par_size(void);             /* 1 when not started */
int par_local_rank(void);       /* rank among the processes on this node (GPU choice) */
/* Seconds a rank waits for the others before it gives up (default 300, --comm-timeout). */
void par_set_timeout(double seconds);
/* Stop every rank now, with code (after an error on this one that the others cannot know of). */
void par_abort(int code);

/* Blocking collectives, all with the deadline. 0, or -1 with an_error. */
int par_sum_doubles(double *v, int n);                       /* in place, over all ranks */
int par_max_int(int *v);                                     /* in place */
int par_allgather_int(int v, int *all);                      /* all: par_size() ints */
int par_bcast(void *p, size_t bytes, int root);
/* recv (sum of counts) = the ranks' send blocks in rank order (counts[r] floats from rank r) */
int par_allgatherv_floats(const float *send, float *recv, const int *counts);
/* send (sum of counts) summed over ranks; this rank receives block par_rank() (counts[rank]) */
int par_reduce_scatter_floats(const float *send, float *recv, const int *counts);
/* rank `root` receives the ranks' blocks in rank order into recv (others: recv unused) */
int par_gatherv_floats(const float *send, int count, float *recv, const int *counts, int root);

/* Gradient all-reduce of data parallel: par_grads_start(grads) before the backward pass, then
 * par_grads_ready for each finished range (net->grads_ready: a non-blocking sum starts at once),
 * par_grads_wait before the update (0, or -1 with an_error after the deadline). */
void par_grads_start(float *grads);
void par_grads_ready(void *unused, size_t off, size_t count);
int par_grads_wait(void);

/* Communication counters since the start: seconds spent waiting for the others (blocking calls
 * and par_grads_wait: the exposed part) and bytes this rank sent. */
typedef struct ParStats { double wait_seconds, bytes; long calls; } ParStats;
ParStats par_stats(void);
#endif
