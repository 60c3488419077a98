/* bind.h: one OpenMP thread per CPU, so that a busy neighbour process shares a core with one of
 * our threads instead of leaving two of them on one core (see bind.c). */
#ifndef ALEXNET_CPU_BIND_H
#define ALEXNET_CPU_BIND_H

/* Pins OpenMP thread i to the i-th CPU of the process's affinity mask, when the team
 * (omp_get_max_threads) is exactly as large as that mask and has at least 2 threads. Returns the
 * number of threads pinned (0: nothing done). Called again it re-pins; cpu_bind_undo undoes it. */
int cpu_bind_threads(void);

/* Gives every thread of the OpenMP team the process's whole mask again. */
void cpu_bind_undo(void);

/* For threads that are not in the OpenMP team (the loader's workers): runs the calling thread on
 * every CPU of the process's mask as it was before cpu_bind_threads, which threads created by a
 * pinned thread would otherwise inherit. Does nothing when no thread was pinned. */
void cpu_bind_release_self(void);

/* 1 while the OpenMP threads are pinned */
int cpu_bind_active(void);

/* The CPUs of the process's mask as it was before any pinning (omp_get_num_procs reads the
 * calling thread's mask, one CPU once pinned) */
int cpu_bind_cpus(void);

#endif
