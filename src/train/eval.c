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
    return evaluate_ensemble(&net, norm, 1, ds, idx, count, views, progress, r);
}

int evaluate_ensemble(Net *const *nets, const Norm *norms, int k, const Dataset *ds, const int *idx, int count,
                      int views, int progress, EvalResult *r) {
    return evaluate_members(nets, norms, k, ds, idx, count, views, progress, r, NULL);
}

/* One image's result from its mean probabilities a[classes] into the counters */
typedef struct Tally {
    double loss;
    long top1, top5, nonfinite;
} Tally;
static void tally(Tally *t, const float *a, int classes, int label, long *class_count, long *class_wrong) {
    int rank = true_class_rank(a, classes, label), finite = 1;
    for (int j = 0; j < classes; j++) finite &= isfinite(a[j]) != 0;
    t->nonfinite += !finite;
    t->loss -= log(a[label] > 1e-30f ? a[label] : 1e-30f);
    t->top1 += rank >= 1, t->top5 += rank >= 5;
    if (class_count && label >= 0 && label < classes) class_count[label]++, class_wrong[label] += rank >= 1;
}

static void finish(EvalResult *r, const Tally *t, long done) {
    r->count = done;
    r->nonfinite = t->nonfinite;
    r->loss = done ? t->loss / done : 0.0;
    r->top1_err = done ? (double)t->top1 / done : 0.0;
    r->top5_err = done ? (double)t->top5 / done : 0.0;
}

int evaluate_members(Net *const *nets, const Norm *norms, int k, const Dataset *ds, const int *idx, int count,
                     int views, int progress, EvalResult *r, EvalResult *each) {
    if (views != 1 && views != 10) return an_error("eval: crops must be 1 or 10, not %d", views);
    if (k < 1 || k > EVAL_MAX_MEMBERS) return an_error("eval: %d networks (1 to %d)", k, EVAL_MAX_MEMBERS);
    int per_batch = nets[0]->max_batch / views, classes = nets[0]->classes;
    if (per_batch < 1) return an_error("eval: 10 crops need a batch of at least 10 images");
    for (int m = 1; m < k; m++)
        if (nets[m]->max_batch != nets[0]->max_batch || nets[m]->classes != classes)
            return an_error("eval: the networks of an ensemble must have the same classes (%d and %d)", classes,
                            nets[m]->classes);
    int *all = NULL;
    if (!idx) {
        if (!(all = malloc((size_t)(count ? count : 1) * sizeof(int)))) return an_error("out of memory");
        for (int i = 0; i < count; i++) all[i] = i;
        idx = all;
    }
    long *class_count = r->class_count, *class_wrong = r->class_wrong;
    if (class_count) memset(class_count, 0, (size_t)classes * sizeof(long));
    if (class_wrong) memset(class_wrong, 0, (size_t)classes * sizeof(long));
    for (int m = 0; each && m < k; m++) {
        if (each[m].class_count) memset(each[m].class_count, 0, (size_t)classes * sizeof(long));
        if (each[m].class_wrong) memset(each[m].class_wrong, 0, (size_t)classes * sizeof(long));
        each[m] = (EvalResult){.class_count = each[m].class_count, .class_wrong = each[m].class_wrong};
    }
    if (count == 0) {
        free(all);
        *r = (EvalResult){.class_count = class_count, .class_wrong = class_wrong};
        return 0;
    }
    /* one loader per member (each its own input normalisation), in step: the same examples, and the
     * same files skipped, in every member's batch */
    Loader *loaders[EVAL_MAX_MEMBERS] = {0};
    int rc = 0;
    for (int m = 0; m < k && !rc; m++) {
        LoaderConfig lc = {.ds = ds, .indices = idx, .count = count, .batch = per_batch,
                           .mode = views == 10 ? LOADER_TEST10 : LOADER_TEST,
                           .threads = omp_get_max_threads(), .prefetch = 2,
                           .input = norm_input_config(&norms[m], nets[m]->in_c, nets[m]->in_size, 0, 0, 0.0f)};
        if (nets[m]->gpu) lc.alloc_host = cuda_host_alloc, lc.free_host = cuda_host_free; /* pinned: DMA to the GPU */
        rc = loader_start(&loaders[m], &lc);
    }
    float *avg = malloc((size_t)per_batch * classes * sizeof(float));
    double *sum = malloc((size_t)per_batch * classes * sizeof(double)), *one = malloc((size_t)classes * sizeof(double));
    double t0 = an_now(), last = t0;
    long done = 0;
    Tally all_t = {0}, each_t[EVAL_MAX_MEMBERS] = {{0}};
    if (!rc && (!avg || !sum || !one)) rc = an_error("out of memory");
    while (!rc) {
        Batch *b[EVAL_MAX_MEMBERS] = {0};
        int got = 0;
        for (int m = 0; m < k; m++) got += (b[m] = loader_next(loaders[m])) != NULL;
        if (got < k) {
            for (int m = 0; m < k; m++) loader_release(loaders[m], b[m]);
            break;
        }
        int n = b[0]->n;
        for (int m = 1; m < k; m++)
            if (b[m]->n != n || memcmp(b[m]->example, b[0]->example, (size_t)n * sizeof(int)))
                rc = an_error("eval: the ensemble's members got different images (a file read differently?)");
        if (!rc && n > 0) {
            memset(sum, 0, (size_t)n * classes * sizeof(double));
            for (int m = 0; m < k && !rc; m++) { /* each member: the softmax, averaged over views */
                Net *net = nets[m];
                int nv = n * views; /* small networks: chunks of the batch through all layers */
                if (net_set_input(net, b[m]->x, nv) ||
                    (net_chunked_ok(net, nv) ? net_infer_chunked(net, nv)
                                             : !net_forward(net, nv, 0, 0) || net_loss(net, NULL, NULL))) {
                    rc = -1;
                    break;
                }
                for (int i = 0; i < n; i++) {
                    /* one: this member's views, summed */
                    for (int j = 0; j < classes; j++) one[j] = 0.0;
                    for (int v = 0; v < views; v++) {
                        const float *p = net->probs + ((size_t)i * views + v) * classes;
                        for (int j = 0; j < classes; j++) one[j] += p[j];
                    }
                    for (int j = 0; j < classes; j++) sum[(size_t)i * classes + j] += one[j];
                    if (each) { /* the member alone: its views' mean */
                        float *a = avg + (size_t)i * classes;
                        for (int j = 0; j < classes; j++) a[j] = (float)(one[j] / views);
                        tally(&each_t[m], a, classes, b[m]->labels[i], each[m].class_count, each[m].class_wrong);
                    }
                }
            }
            for (int i = 0; !rc && i < n; i++) { /* the members' and views' mean */
                float *a = avg + (size_t)i * classes;
                for (int j = 0; j < classes; j++) a[j] = (float)(sum[(size_t)i * classes + j] / (views * k));
                tally(&all_t, a, classes, b[0]->labels[i], class_count, class_wrong);
            }
            if (!rc) done += n;
        }
        for (int m = 0; m < k; m++) loader_release(loaders[m], b[m]);
        if (progress && an_now() - last > (isatty(2) ? 1.0 : 15.0)) {
            last = an_now();
            double rate = done / (last - t0);
            /* images/s as the result line counts them; with crops or members, also the passes */
            char passes[48] = "";
            if (views * k > 1) snprintf(passes, sizeof passes, " (%.0f network passes/s)", rate * views * k);
            fprintf(stderr, "%s  eval%s %ld/%d  %.*f images/s%s  ETA %.0f s%s", isatty(2) ? "\r" : "",
                    views == 10 ? " (10 crops)" : "", done, count, rate < 10 ? 1 : 0, rate, passes,
                    rate > 0 ? (count - done) / rate : 0.0, isatty(2) ? "   " : "\n");
        }
    }
    for (int m = 0; m < k && !rc; m++)
        if (loaders[m] && loader_error(loaders[m])) rc = an_error("%s", loader_error(loaders[m]));
    if (progress && isatty(2)) fprintf(stderr, "\r%60s\r", "");
    r->skipped = loaders[0] ? loader_skipped(loaders[0]) : 0;
    for (int m = 0; m < k; m++) loader_stop(loaders[m]);
    free(avg), free(sum), free(one), free(all);
    if (rc) return rc;
    finish(r, &all_t, done);
    for (int m = 0; each && m < k; m++) finish(&each[m], &each_t[m], done), each[m].skipped = r->skipped;
    return 0;
}
