/* sgd.c: momentum SGD with weight decay, in the paper's form (see sgd.h). */
#include "sgd.h"

void sgd_update(size_t n, float *w, const float *grad, float *v, float lr, float momentum, float weight_decay) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        v[i] = momentum * v[i] - weight_decay * lr * w[i] - lr * grad[i];
        w[i] += v[i];
    }
}
