/* dropout.c: inverted dropout with masks from the counter-based RNG (thread-count independent). */
#include "layers.h"
#include "../util/common.h"

void dropout_forward_at(long count, float p, uint64_t seed, DropoutAt at, const float *x, float *y, uint8_t *mask) {
    float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; i++) {
        uint64_t index = at.first + (uint64_t)(i / at.row_len) * (uint64_t)at.row_stride + (uint64_t)(i % at.row_len);
        mask[i] = an_uniform(seed, index) >= p;
        y[i] = mask[i] ? x[i] * keep_scale : 0.0f;
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
