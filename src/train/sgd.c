/* sgd.c: momentum SGD with weight decay, in the paper's form (see sgd.h). */
#include "sgd.h"

float sgd_lars_ratio(double w_norm, double grad_norm, float eta, float weight_decay) {
    if (!(w_norm > 0.0) || !(grad_norm > 0.0)) return 1.0f;
    return (float)(eta * w_norm / (grad_norm + weight_decay * w_norm));
}

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
