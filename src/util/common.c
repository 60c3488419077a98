/* common.c: error messages, aligned allocation, counter-based RNG, clock. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "hash64.h"
#include <pthread.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static _Thread_local char g_error[1024];

int an_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_error, sizeof g_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *an_last_error(void) { return g_error; }

/* 64-byte aligned memory; from 2 MB on, 2 MB aligned and advised to the kernel as huge pages
 * (where transparent huge pages are "madvise", as on Debian): streaming fc6's 151 MB of weights
 * through 4 KB pages cost a TLB walk every 64 lines (batch-1 inference read them at 19-22 GB/s
 * instead of 25-27 here), and packing reads rows tens of KB apart. The advice may be refused. */
static int aligned_block(void **p, size_t bytes) {
    size_t huge = (size_t)2 << 20;
    if (bytes < huge) return posix_memalign(p, 64, bytes);
    if (posix_memalign(p, huge, bytes) != 0) return -1;
#ifdef MADV_HUGEPAGE
    (void)madvise(*p, bytes, MADV_HUGEPAGE);
#endif
    return 0;
}

void *an_alloc(size_t bytes, const char *what) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = NULL;
    if (rounded < bytes || aligned_block(&p, rounded) != 0) {
        an_error("out of memory (%zu bytes for %s)", bytes, what ? what : "buffer");
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void an_free(void *p) { free(p); }

typedef struct ThreadBuffers { void *p[AN_BUF_COUNT]; size_t cap[AN_BUF_COUNT]; } ThreadBuffers;
static pthread_key_t g_buf_key;
static pthread_once_t g_buf_once = PTHREAD_ONCE_INIT;

static void thread_buffers_free(void *v) {
    ThreadBuffers *b = v;
    for (int i = 0; i < AN_BUF_COUNT; i++) free(b->p[i]);
    free(b);
}

static void buf_key_init(void) { pthread_key_create(&g_buf_key, thread_buffers_free); }

void *an_thread_buffer(int slot, size_t bytes) {
    if (slot < 0 || slot >= AN_BUF_COUNT) { an_error("an_thread_buffer: no slot %d", slot); return NULL; }
    pthread_once(&g_buf_once, buf_key_init);
    ThreadBuffers *b = pthread_getspecific(g_buf_key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b)) || pthread_setspecific(g_buf_key, b) != 0) {
            free(b);
            an_error("out of memory (thread buffers)");
            return NULL;
        }
    }
    if (bytes > b->cap[slot] || !b->p[slot]) {
        size_t rounded = (bytes + 63) & ~(size_t)63;
        if (rounded == 0) rounded = 64;
        free(b->p[slot]);
        b->p[slot] = NULL, b->cap[slot] = 0;
        if (rounded < bytes || aligned_block(&b->p[slot], rounded) != 0) {
            b->p[slot] = NULL;
            an_error("out of memory (%zu bytes of thread scratch)", bytes);
            return NULL;
        }
        b->cap[slot] = rounded;
    }
    return b->p[slot];
}

uint64_t an_hash64(uint64_t seed, uint64_t counter) { return an_hash64_mix(seed, counter); }

float an_uniform(uint64_t seed, uint64_t counter) {
    return an_uniform_mix(seed, counter);
}

float an_normal(uint64_t seed, uint64_t counter) {
    double u1 = ((double)(an_hash64(seed, 2 * counter) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(an_hash64(seed, 2 * counter + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

double an_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void an_with_commas(double v, char *buf, size_t size) {
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    int len = (int)strlen(digits), o = 0;
    for (int i = 0; i < len && o + 2 < (int)size; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

static int avx512_known = -1;

void an_cpu_avx512_override(int on) { avx512_known = on < 0 ? -1 : (on && an_cpu_avx512_hw()); }

int an_cpu_avx512(void) {
    if (avx512_known < 0) avx512_known = an_cpu_avx512_hw();
    return avx512_known;
}

int an_cpu_avx512_hw(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    static int known = -1;
    if (known < 0)
        known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl");
    return known;
#else
    return 0;
#endif
}
