/* mpi_comm.c: parallel.h on Open MPI. Every collective is started non-blocking and waited for
 * here, with a deadline: MPI_Test in a loop that backs off to short sleeps (so a waiting rank
 * leaves its core to a busy neighbour, which matters when ranks share cores), and MPI_Abort of the
 * whole job with a one-line message when the others stay silent past the deadline. */
#include "parallel.h"
#include "../util/common.h"
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int g_started, g_rank, g_size = 1, g_local_rank;
static double g_timeout = 300.0;
static ParStats g_stats;

int par_built(void) { return 1; }
int par_rank(void) { return g_rank; }
int par_size(void) { return g_size; }
int par_local_rank(void) { return g_local_rank; }
void par_set_timeout(double seconds) { g_timeout = seconds > 0 ? seconds : 300.0; }
ParStats par_stats(void) { return g_stats; }

static int mpi_failed(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return an_error("rank %d: MPI %s failed: %s", g_rank, what, msg);
}

int par_start(int *argc, char ***argv) {
    if (g_started) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return an_error("MPI could not start (run under mpirun or srun)");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &g_local_rank);
        MPI_Comm_free(&node);
    }
    g_started = 1;
    return 0;
}

void par_finish(void) {
    if (g_started) MPI_Finalize();
    g_started = 0;
}

void par_abort(int code) {
    if (g_started) MPI_Abort(MPI_COMM_WORLD, code);
}

/* Wait for n requests with the deadline. 0, -1 (an MPI error) or never returns (deadline). */
static int wait_all(int n, MPI_Request *reqs, const char *what) {
    double t0 = an_now();
    long polls = 0;
    for (;;) {
        int done = 0;
        int rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_failed(rc, what);
        if (done) break;
        double waited = an_now() - t0;
        if (waited > g_timeout) {
            fprintf(stderr, "alexnet: rank %d of %d: no answer from the other ranks for %.0f s in %s (a rank "
                    "stopped or hangs); stopping all ranks\n", g_rank, g_size, waited, what);
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        if (++polls > 2000) { /* after a short spin, sleep: 20 us growing to 1 ms */
            long us = polls > 20000 ? 1000 : 20 + (polls - 2000) / 20;
            struct timespec ts = {0, us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    g_stats.wait_seconds += an_now() - t0;
    g_stats.calls++;
    return 0;
}

static int started(const char *what) {
    return g_started ? 0 : an_error("%s: MPI is not started", what);
}

int par_sum_doubles(double *v, int n) {
    if (g_size == 1) return 0;
    if (started("sum")) return -1;
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "all-reduce");
    g_stats.bytes += 2.0 * (g_size - 1) / g_size * n * sizeof(double);
    return wait_all(1, &r, "an all-reduce of step statistics");
}

int par_max_int(int *v) {
    if (g_size == 1) return 0;
    if (started("max")) return -1;
    MPI_Request r;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &r);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "all-reduce");
    return wait_all(1, &r, "an all-reduce of flags");
}

int par_allgather_int(int v, int *all) {
    if (g_size == 1) { all[0] = v; return 0; }
    if (started("allgather")) return -1;
    MPI_Request r;
    int rc = MPI_Iallgather(&v, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD, &r);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "all-gather");
    return wait_all(1, &r, "an all-gather of batch sizes");
}

int par_bcast(void *p, size_t bytes, int root) {
    if (g_size == 1) return 0;
    if (started("broadcast")) return -1;
    for (size_t off = 0; off < bytes;) { /* MPI counts are ints: 1 GiB pieces */
        size_t piece = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        MPI_Request r;
        int rc = MPI_Ibcast((char *)p + off, (int)piece, MPI_BYTE, root, MPI_COMM_WORLD, &r);
        if (rc != MPI_SUCCESS) return mpi_failed(rc, "broadcast");
        if (g_rank == root) g_stats.bytes += (double)piece;
        if (wait_all(1, &r, "a broadcast")) return -1;
        off += piece;
    }
    return 0;
}

enum { MAX_RANKS = 4096 };

/* where each rank's block starts: counts[0] + ... + counts[r - 1] (static: it must outlive the
 * non-blocking call, which is waited for before the next); NULL past MAX_RANKS */
static const int *offsets(const int *counts) {
    static int displs[MAX_RANKS];
    if (g_size > MAX_RANKS) {
        an_error("more than %d ranks", MAX_RANKS);
        return NULL;
    }
    for (int r = 0, total = 0; r < g_size; r++) displs[r] = total, total += counts[r];
    return displs;
}

int par_allgatherv_floats(const float *send, float *recv, const int *counts) {
    const int *displs = started("allgatherv") ? NULL : offsets(counts);
    if (!displs) return -1;
    MPI_Request q;
    int rc = MPI_Iallgatherv(send, counts[g_rank], MPI_FLOAT, recv, counts, displs, MPI_FLOAT, MPI_COMM_WORLD, &q);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "all-gather");
    g_stats.bytes += (double)counts[g_rank] * (g_size - 1) * sizeof(float);
    return wait_all(1, &q, "an all-gather of tower activations");
}

int par_reduce_scatter_floats(const float *send, float *recv, const int *counts) {
    if (started("reduce-scatter")) return -1;
    MPI_Request q;
    int rc = MPI_Ireduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &q);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "reduce-scatter");
    long total = 0;
    for (int r = 0; r < g_size; r++) total += counts[r];
    g_stats.bytes += (double)(total - counts[g_rank]) * sizeof(float);
    return wait_all(1, &q, "a reduce-scatter of tower gradients");
}

int par_gatherv_floats(const float *send, int count, float *recv, const int *counts, int root) {
    const int *displs = started("gatherv") ? NULL : offsets(counts);
    if (!displs) return -1;
    MPI_Request q;
    int rc = MPI_Igatherv(send, count, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root, MPI_COMM_WORLD, &q);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "gather");
    if (g_rank != root) g_stats.bytes += (double)count * sizeof(float);
    return wait_all(1, &q, "a gather of tower weights");
}

/* ---- gradient buckets ---- */

enum { MAX_BUCKETS = 64 };
static float *g_grads;
static MPI_Request g_reqs[MAX_BUCKETS];
static int g_nreqs, g_req_error;

void par_grads_start(float *grads) {
    g_grads = grads;
    g_nreqs = 0;
    g_req_error = 0;
}

void par_grads_ready(void *unused, size_t off, size_t count) {
    (void)unused;
    if (g_size == 1 || !g_grads) return;
    if (g_nreqs == MAX_BUCKETS || count > 0x7fffffff) { g_req_error = 1; return; }
    int rc = MPI_Iallreduce(MPI_IN_PLACE, g_grads + off, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                            &g_reqs[g_nreqs]);
    if (rc != MPI_SUCCESS) { g_req_error = 1; return; }
    g_nreqs++;
    g_stats.bytes += 2.0 * (g_size - 1) / g_size * (double)count * sizeof(float);
    int done; /* let the started reductions progress while the next layers compute */
    MPI_Testall(g_nreqs, g_reqs, &done, MPI_STATUSES_IGNORE);
}

int par_grads_wait(void) {
    if (g_size == 1) return 0;
    if (g_req_error) return an_error("rank %d: a gradient all-reduce could not start", g_rank);
    int rc = wait_all(g_nreqs, g_reqs, "the gradient all-reduce");
    g_nreqs = 0;
    g_grads = NULL;
    return rc;
}
