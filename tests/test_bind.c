/* test_bind.c: one OpenMP thread pinned per CPU (src/cpu/bind.c): each thread of the team on its
 * own CPU of the process's mask while pinned; a thread created by the pinned main thread inherits
 * one CPU until cpu_bind_release_self gives it the whole mask; cpu_bind_undo gives every thread
 * the whole mask back. */
#include "harness.h"
#include "../src/cpu/bind.h"
#include <omp.h>
#include <pthread.h>
#include <sched.h>

static int mask_cpus(cpu_set_t *set) {
    CPU_ZERO(set);
    return pthread_getaffinity_np(pthread_self(), sizeof *set, set) == 0 ? CPU_COUNT(set) : -1;
}

typedef struct { int inherited, released; } Outside;

static void *outside_thread(void *arg) {
    Outside *o = arg;
    cpu_set_t set;
    o->inherited = mask_cpus(&set);
    cpu_bind_release_self();
    o->released = mask_cpus(&set);
    return NULL;
}

TEST(cpu_bind_one_thread_per_cpu) {
    cpu_set_t all;
    CPU_ZERO(&all);
    int cpus = sched_getaffinity(0, sizeof all, &all) == 0 ? CPU_COUNT(&all) : 1;
    if (cpus < 2) SKIP("this process may run on one CPU only");
    if (omp_get_max_threads() != cpus) SKIP("%d OpenMP threads on %d CPUs: no pinning then", omp_get_max_threads(), cpus);
    CHECK(!cpu_bind_active(), "pinned before the test");
    CHECK(cpu_bind_threads() == cpus, "not every thread pinned");
    CHECK(cpu_bind_active() && cpu_bind_cpus() == cpus, "active %d, cpus %d", cpu_bind_active(), cpu_bind_cpus());

    int count[CPU_SETSIZE], cpu_of[CPU_SETSIZE], team = 0;
#pragma omp parallel
    {
        cpu_set_t set;
        int t = omp_get_thread_num();
        count[t] = mask_cpus(&set);
        cpu_of[t] = -1;
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) cpu_of[t] = c;
#pragma omp single
        team = omp_get_num_threads();
    }
    CHECK(team == cpus, "team %d", team);
    cpu_set_t seen;
    CPU_ZERO(&seen);
    for (int t = 0; t < team; t++) {
        CHECK(count[t] == 1, "thread %d may run on %d CPUs", t, count[t]);
        CHECK(cpu_of[t] >= 0 && CPU_ISSET(cpu_of[t], &all), "thread %d on CPU %d, not in the process's mask", t, cpu_of[t]);
        CHECK(cpu_of[t] >= 0 && !CPU_ISSET(cpu_of[t], &seen), "thread %d shares CPU %d", t, cpu_of[t]);
        if (cpu_of[t] >= 0) CPU_SET(cpu_of[t], &seen);
    }

    Outside o = {0, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, outside_thread, &o) == 0, "pthread_create");
    pthread_join(th, NULL);
    CHECK(o.inherited == 1 && o.released == cpus, "a thread outside the team: %d CPUs inherited, %d released", o.inherited,
          o.released);

    cpu_bind_undo();
    CHECK(!cpu_bind_active(), "still active after undo");
    int wrong = 0;
#pragma omp parallel reduction(+ : wrong)
    {
        cpu_set_t set;
        wrong += mask_cpus(&set) != cpus;
    }
    CHECK(wrong == 0, "%d threads without the whole mask after undo", wrong);
}
