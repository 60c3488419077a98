/* eval.c: evaluation in test mode (dropout off) through the loader: mean loss, top-1 and top-5
 * error, with one centre view or 10 views whose softmax outputs are averaged. */
#include "eval.h"
#include "../cuda/cuda_api.h"
#include "../util/common.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int true_class_rank(const float *probs, int classes, int label) {
    int rank = 0;
    for (int j = 0; j < classes; j++)
        if (j != label && !(probs[j] < probs[label])) rank++; /* >=, or a NaN on either side */
    return rank;
}

int evaluate(Net *net, const Dataset *ds, const int *idx, int count, const Norm *norm, int views,
             int progress, EvalResult *r) {
    if (views != 1 && views != 10) return an_error("eval: crops must be 1 or 10, not %d", views);
    int per_batch = net->max_batch / views;
    if (per_batch < 1) return an_error("eval: 10 crops need a batch of at least 10 images");
    int *all = NULL;
    if (!idx) {
        if (!(all = malloc((size_t)(count ? count : 1) * sizeof(int)))) return an_error("out of memory");
        for (int i = 0; i < count; i++) all[i] = i;
        idx = all;
    }
    LoaderConfig lc = {.ds = ds, .indices = idx, .count = count, .batch = per_batch,
                       .mode = views == 10 ? LOADER_TEST10 : LOADER_TEST, .threads = omp_get_max_threads(),
                       .prefetch = 2, .input = norm_input_config(norm, net->in_c, net->in_size, 0, 0, 0.0f)};
    if (net->gpu) lc.alloc_host = cuda_host_alloc, lc.free_host = cuda_host_free; /* pinned: DMA to the GPU */
    Loader *loader;
    if (count == 0 || loader_start(&loader, &lc)) {
        free(all);
        if (count == 0) *r = (EvalResult){0};
        return count == 0 ? 0 : -1;
    }
    float *avg = malloc((size_t)per_batch * net->classes * sizeof(float));
    double loss = 0.0, t0 = an_now(), last = t0;
    long top1 = 0, top5 = 0, done = 0, nonfinite = 0;
    int rc = avg ? 0 : an_error("out of memory");
    Batch *b;
    while (!rc && (b = loader_next(loader))) {
        int n = b->n;
        if (n > 0) {
            if (net_set_input(net, b->x, n * views) || !net_forward(net, n * views, 0, 0) || net_loss(net, NULL, NULL)) rc = -1; /* softmax into probs */
            else {
                for (int i = 0; i < n; i++) {
                    float *a = avg + (size_t)i * net->classes;
                    for (int j = 0; j < net->classes; j++) {
                        double s = 0.0;
                        for (int v = 0; v < views; v++) s += net->probs[((size_t)i * views + v) * net->classes + j];
                        a[j] = (float)(s / views);
                    }
                    int label = b->labels[i], rank = true_class_rank(a, net->classes, label), finite = 1;
                    for (int j = 0; j < net->classes; j++) finite &= isfinite(a[j]) != 0;
                    nonfinite += !finite;
                    loss -= log(a[label] > 1e-30f ? a[label] : 1e-30f);
                    top1 += rank >= 1, top5 += rank >= 5;
                }
                done += n;
            }
        }
        loader_release(loader, b);
        if (progress && an_now() - last > (isatty(2) ? 1.0 : 15.0)) {
            last = an_now();
            double rate = done / (last - t0);
            fprintf(stderr, "%s  eval%s %ld/%d  %.0f img/s  ETA %.0f s%s", isatty(2) ? "\r" : "",
                    views == 10 ? " (10 crops)" : "", done, count, rate * views, rate > 0 ? (count - done) / rate : 0.0,
                    isatty(2) ? "   " : "\n");
        }
    }
    if (!rc && loader_error(loader)) rc = an_error("%s", loader_error(loader));
    if (progress && isatty(2)) fprintf(stderr, "\r%60s\r", "");
    r->skipped = loader_skipped(loader);
    loader_stop(loader);
    free(avg), free(all);
    if (rc) return rc;
    r->count = done;
    r->nonfinite = nonfinite;
    r->loss = done ? loss / done : 0.0;
    r->top1_err = done ? (double)top1 / done : 0.0;
    r->top5_err = done ? (double)top5 / done : 0.0;
    return 0;
}
