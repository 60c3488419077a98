/* mpi_stub.c: parallel.h in a build without MPI (mpicc not found, or `make MPICC=`): one process,
 * and --parallel answered with one line saying what the build needs. */
#include "parallel.h"
#include "../util/common.h"

int par_built(void) { return 0; }
int par_start(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return an_error("--parallel needs an MPI build: install libopenmpi-dev and openmpi-bin, then rebuild (make clean all)");
}
void par_finish(void) {}
int par_rank(void) { return 0; }
int par_size(void) { return 1; }
int par_local_rank(void) { return 0; }
void par_set_timeout(double seconds) { (void)seconds; }
void par_abort(int code) { (void)code; }
static int none(void) { return an_error("this build has no MPI"); }
int par_sum_doubles(double *v, int n) { (void)v, (void)n; return 0; }
int par_max_int(int *v) { (void)v; return 0; }
int par_allgather_int(int v, int *all) { all[0] = v; return 0; }
int par_bcast(void *p, size_t bytes, int root) { (void)p, (void)bytes, (void)root; return 0; }
int par_allgatherv_floats(const float *send, float *recv, const int *counts) { (void)send, (void)recv, (void)counts; return none(); }
int par_reduce_scatter_floats(const float *send, float *recv, const int *counts) { (void)send, (void)recv, (void)counts; return none(); }
int par_gatherv_floats(const float *send, int count, float *recv, const int *counts, int root) {
    (void)send, (void)count, (void)recv, (void)counts, (void)root;
    return none();
}
void par_grads_start(float *grads) { (void)grads; }
void par_grads_ready(void *unused, size_t off, size_t count) { (void)unused, (void)off, (void)count; }
int par_grads_wait(void) { return 0; }
ParStats par_stats(void) { return (ParStats){0, 0, 0}; }
