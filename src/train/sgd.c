/* sgd.c: momentum SGD with weight decay, in the paper's form (see sgd.h). */
#include "sgd.h"

long sgd_update(size_t n, float *w, const float *grad, float *v, float lr, float momentum, float weight_decay) {
    long bad = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] - weight_decay * lr * w[i] - lr * grad[i];
        w[i] += v[i];
        bad += w[i] - w[i] != 0.0f; /* NaN or infinite (x - x is NaN, never 0) */
    }
    return bad;
}
