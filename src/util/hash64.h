/* hash64.h: the counter-based generator's mixing function (splitmix64, two rounds), shared by the
 * CPU (common.c's an_hash64) and the GPU kernels (dropout masks), so that both draw the same bits. */
#ifndef ALEXNET_HASH64_H
#define ALEXNET_HASH64_H
#include <stdint.h>
#ifdef __CUDACC__
#define AN_HOST_DEVICE __host__ __device__
#else
#define AN_HOST_DEVICE
#endif

static inline AN_HOST_DEVICE uint64_t an_hash64_mix(uint64_t seed, uint64_t counter) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + counter + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    /* a second round decorrelates nearby (seed, counter) pairs */
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* its top 24 bits as a float in [0, 1): an_uniform, and the dropout masks on CPU and GPU */
static inline AN_HOST_DEVICE float an_uniform_mix(uint64_t seed, uint64_t counter) {
    return (float)(an_hash64_mix(seed, counter) >> 40) * (1.0f / 16777216.0f);
}
#endif
