/* bind.c: OpenMP thread i pinned to the i-th CPU of the process's mask.
 *
 * Why: beside another busy process (one runnable thread) our two threads and it share two cores.
 * Left to the scheduler, our two threads often sit on the same core while the neighbour has the
 * other one to itself: the README's main job got 1.20 CPUs of the 1.33 an even share gives, and
 * ran at 0.58 of its speed alone (docs/PERFORMANCE.md). Pinned one per core, the neighbour always
 * shares a core with one of our threads, and the training's chunks of the batch go to whichever
 * thread is free (src/model/net_chunked.c): 0.72-0.76 of the speed alone on the same machine.
 * Alone, pinned or not runs at the same speed.
 *
 * Only when the team is exactly as large as the mask: with fewer threads some CPUs would be left
 * out, and with more several threads would share a CPU for good. Threads outside the team (the
 * loader's workers, created by the pinned main thread) take the whole mask back with
 * cpu_bind_release_self. */
#include "bind.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>

static cpu_set_t g_all; /* the process's mask before any pinning */
static int g_saved, g_active;

/* The whole mask, read once (afterwards the main thread's own mask is its one CPU) */
static int whole_mask(void) {
    if (!g_saved) {
        if (sched_getaffinity(0, sizeof g_all, &g_all) != 0) return 0;
        g_saved = 1;
    }
    return CPU_COUNT(&g_all);
}

int cpu_bind_threads(void) {
    int n = whole_mask();
    if (n < 2 || omp_get_max_threads() != n) return 0;
    int cpus[CPU_SETSIZE], k = 0;
    for (int c = 0; c < CPU_SETSIZE && k < n; c++)
        if (CPU_ISSET(c, &g_all)) cpus[k++] = c;
    int pinned = 0;
#pragma omp parallel num_threads(n) reduction(+ : pinned)
    if (omp_get_num_threads() == n) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[omp_get_thread_num()], &one);
        pinned += pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
    }
    if (pinned != n) {
        g_active = 1; /* so that the threads that were pinned get the mask back */
        cpu_bind_undo();
        return 0;
    }
    g_active = 1;
    return n;
}

void cpu_bind_undo(void) {
    if (!g_active) return;
#pragma omp parallel
    pthread_setaffinity_np(pthread_self(), sizeof g_all, &g_all);
    g_active = 0;
}

void cpu_bind_release_self(void) {
    if (g_active) pthread_setaffinity_np(pthread_self(), sizeof g_all, &g_all);
}

int cpu_bind_active(void) { return g_active; }

int cpu_bind_cpus(void) {
    int n = whole_mask();
    return n > 0 ? n : 1;
}
