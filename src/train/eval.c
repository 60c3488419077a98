/* eval.c: evaluation in test mode (dropout off): mean loss, top-1 and top-5 error. */
#include "eval.h"
#include "../util/common.h"
#include <stdio.h>
#include <stdlib.h>

int true_class_rank(const float *probs, int classes, int label) {
    int rank = 0;
    for (int j = 0; j < classes; j++)
        if (j != label && probs[j] >= probs[label]) rank++;
    return rank;
}

int evaluate(Net *net, const Dataset *ds, const int *idx, int count, const Norm *norm, int progress,
             EvalResult *r) {
    int B = net->max_batch;
    int *batch_idx = malloc(B * sizeof(int)), *labels = malloc(B * sizeof(int));
    if (!batch_idx || !labels) { free(batch_idx), free(labels); return an_error("out of memory"); }
    double loss = 0.0;
    long top1 = 0, top5 = 0;
    double t0 = an_now(), last = t0;
    int rc = 0;
    for (int start = 0; start < count; start += B) {
        int n = count - start < B ? count - start : B;
        for (int i = 0; i < n; i++) batch_idx[i] = idx ? idx[start + i] : start + i;
        if (batch_fill(net, ds, batch_idx, n, norm, labels) || !net_forward(net, n, 0, 0)) { rc = -1; break; }
        loss += (double)net_loss(net, labels) * n;
        for (int i = 0; i < n; i++) {
            int rank = true_class_rank(net->probs + (size_t)i * net->classes, net->classes, labels[i]);
            top1 += rank >= 1;
            top5 += rank >= 5;
        }
        if (progress && an_now() - last > 1.0) {
            last = an_now();
            fprintf(stderr, "\r  eval %d/%d  %.0f img/s   ", start + n, count, (start + n) / (last - t0));
        }
    }
    if (progress && count > 0) fprintf(stderr, "\r%60s\r", "");
    free(batch_idx), free(labels);
    if (rc) return rc;
    r->count = count;
    r->loss = count ? loss / count : 0.0;
    r->top1_err = count ? (double)top1 / count : 0.0;
    r->top5_err = count ? (double)top5 / count : 0.0;
    return 0;
}
