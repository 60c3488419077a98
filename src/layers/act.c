/* act.c: ReLU and tanh activations; backward passes use the forward output. */
#include "layers.h"
#include <math.h>

void relu_forward(long count, const float *x, float *y) {
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(long count, const float *y, const float *dy, float *dx) {
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < count; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void tanh_forward(long count, const float *x, float *y) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; i++) y[i] = tanhf(x[i]);
}

void tanh_backward(long count, const float *y, const float *dy, float *dx) {
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < count; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}
