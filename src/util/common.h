/* common.h: error reporting, aligned allocation and small helpers shared by every module.
 * Library code never exits: it sets a one-line message with an_error() and returns -1 (or NULL).
 * The command line prints "alexnet: <message>" and exits non-zero. */
#ifndef ALEXNET_COMMON_H
#define ALEXNET_COMMON_H
#include <stddef.h>
#include <stdint.h>

/* Record a one-line error (printf-style). Always returns -1 so callers can `return an_error(...)`.
 * Convention: start with the file name when a file is involved: "data/x.bin: truncated at 512 bytes". */
int an_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last recorded error message ("" if none). Thread-local. */
const char *an_last_error(void);

/* 64-byte aligned, zero-filled allocation; on failure records "out of memory (N bytes for WHAT)"
 * and returns NULL. Free with an_free. */
void *an_alloc(size_t bytes, const char *what);
void an_free(void *p);

/* Counter-based random numbers (splitmix64): the same (seed, counter) always gives the same value,
 * whatever the thread count. */
uint64_t an_hash64(uint64_t seed, uint64_t counter);
float an_uniform(uint64_t seed, uint64_t counter);            /* in [0, 1) */
float an_normal(uint64_t seed, uint64_t counter);             /* N(0, 1), Box-Muller on two draws */

double an_now(void); /* monotonic seconds */
/* v (a whole number) in decimal with thousands separated by commas: 61,100,840 */
void an_with_commas(double v, char *buf, size_t size);

/* Whether the fast paths use AVX-512 (F, BW and VL): what the CPU runs (an_cpu_avx512_hw, checked
 * once) unless a test turned it off with an_cpu_avx512_override(0) to exercise the portable
 * kernels; override(-1) restores the hardware answer. */
int an_cpu_avx512(void);
int an_cpu_avx512_hw(void);
void an_cpu_avx512_override(int on);

/* Per-thread scratch memory that lives as long as the thread: slot `slot` of the calling thread,
 * at least `bytes` long, 64-byte aligned, contents undefined (not kept when it grows). Reusing it
 * avoids a fresh mmap and page faults for every large temporary (a 200 KB malloc is an mmap).
 * Freed when the thread exits. NULL when out of memory (an_error set). One owner per slot: */
enum { AN_BUF_GEMM_PACK, AN_BUF_RESIZE_TMP, AN_BUF_RESIZE_WINDOW, AN_BUF_RESIZE_TABLES, AN_BUF_CONV_COLS,
       AN_BUF_CONV_PARTIAL, AN_BUF_CONV_WT, AN_BUF_LINEAR_T, AN_BUF_LRN, AN_BUF_POOL, AN_BUF_CONV_ROW,
       AN_BUF_CONV_DY, AN_BUF_WINO_V, AN_BUF_WINO_M, AN_BUF_WINO_T, AN_BUF_WINO_UT, AN_BUF_WINO_DW,
       AN_BUF_WINO_FLIP, AN_BUF_PHASE_X, AN_BUF_PHASE_W, AN_BUF_PHASE_DX, AN_BUF_WINO_KEPT0,
       AN_BUF_WINO_KEPT_LAST = AN_BUF_WINO_KEPT0 + 5, AN_BUF_COUNT };
void *an_thread_buffer(int slot, size_t bytes);
#endif
