/* loss.c: softmax cross-entropy averaged over the batch, with its gradient. */
#include "layers.h"
#include <math.h>

float softmax_xent(int n, int classes, const float *logits, const int *labels, float *probs,
                   float *dlogits) {
    return (float)(softmax_xent_rows(n, n, classes, logits, labels, probs, dlogits) / n);
}

double softmax_xent_rows(int n, int divisor, int classes, const float *logits, const int *labels, float *probs,
                         float *dlogits) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        float *pr = probs + (size_t)i * classes;
        float m = z[0];
        for (int j = 1; j < classes; j++) m = z[j] > m ? z[j] : m;
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += exp((double)z[j] - m);
        double log_sum = log(sum);
        for (int j = 0; j < classes; j++) pr[j] = (float)exp((double)z[j] - m - log_sum);
        if (labels) {
            total += log_sum - ((double)z[labels[i]] - m);
            if (dlogits)
                for (int j = 0; j < classes; j++)
                    dlogits[(size_t)i * classes + j] = (pr[j] - (j == labels[i] ? 1.0f : 0.0f)) / divisor;
        }
    }
    return total;
}
