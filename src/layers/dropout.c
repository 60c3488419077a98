/* dropout.c: inverted dropout with masks from the counter-based RNG (thread-count independent). */
#include "layers.h"
#include "../util/common.h"
#include "../util/hash64.h"

/* values [0, len) of one row piece, counters index0.. : mask = an_uniform(seed, counter) >= p, the
 * same generator inline (a call and two 64-bit divisions per value made fc6's 1.2 million masks
 * 8 ms), in 64-bit vector multiplies where the CPU has AVX-512 DQ (x86-64-v4) */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
static void dropout_piece(long len, float p, float keep_scale, uint64_t seed, uint64_t index0, const float *x, float *y,
                          uint8_t *mask) {
    for (long j = 0; j < len; j++) {
        float u = an_uniform_mix(seed, index0 + (uint64_t)j);
        uint8_t keep = u >= p;
        mask[j] = keep;
        y[j] = keep ? x[j] * keep_scale : 0.0f;
    }
}

void dropout_forward_at(long count, float p, uint64_t seed, DropoutAt at, const float *x, float *y, uint8_t *mask) {
    float keep_scale = 1.0f / (1.0f - p);
    long row_len = at.row_len > 0 ? at.row_len : 1, rows = (count + row_len - 1) / row_len;
    long per_row = (row_len + 4095) / 4096; /* pieces of at most 4096 values within a row */
#pragma omp parallel for schedule(static)
    for (long t = 0; t < rows * per_row; t++) {
        long r = t / per_row, j0 = t % per_row * 4096, j1 = j0 + 4096 < row_len ? j0 + 4096 : row_len;
        long i0 = r * row_len + j0, len = (j1 < count - r * row_len ? j1 : count - r * row_len) - j0;
        if (len > 0)
            dropout_piece(len, p, keep_scale, seed, at.first + (uint64_t)r * (uint64_t)at.row_stride + (uint64_t)j0,
                          x + i0, y + i0, mask + i0);
    }
}

void dropout_forward(long count, float p, uint64_t seed, const float *x, float *y, uint8_t *mask) {
    dropout_forward_at(count, p, seed, (DropoutAt){0, count > 0 ? count : 1, count}, x, y, mask);
}

void dropout_backward(long count, float p, const uint8_t *mask, const float *dy, float *dx) {
    float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; i++) dx[i] = mask[i] ? dy[i] * keep_scale : 0.0f;
}
