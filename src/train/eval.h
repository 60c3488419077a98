/* eval.h: top-1 / top-5 error and loss of a network over (part of) a dataset, from the centre
 * view or the paper's 10 views (four corners, centre, and their mirrors, softmax averaged). */
#ifndef ALEXNET_EVAL_H
#define ALEXNET_EVAL_H
#include "batch.h"

typedef struct EvalResult {
    double top1_err, top5_err, loss;
    long count;
    int skipped;
    long nonfinite; /* images whose outputs hold a NaN or infinity (counted as errors) */
    /* optional, set by the caller before the call (classes entries each, or NULL): images and top-1
     * errors per true class */
    long *class_count, *class_wrong;
} EvalResult;

/* Rank of the true class among the probabilities (0 = best); ties count against the prediction,
 * and so do NaNs: a NaN probability, the true class's or another's, ranks above it, so a NaN
 * output can never be counted as correct. */
int true_class_rank(const float *probs, int classes, int label);
/* Evaluate examples idx[0 .. count) (all when idx is NULL) in test mode with views = 1 or 10, in
 * batches of net->max_batch images (max_batch / 10 examples with 10 views). Files that fail to
 * decode are skipped and counted. progress: a progress line on stderr. Returns 0 or -1. */
int evaluate(Net *net, const Dataset *ds, const int *idx, int count, const Norm *norm, int views,
             int progress, EvalResult *r);
/* The same for an ensemble of k networks (the paper's 5 CNNs, section 6): each with its own input
 * statistics norms[m], all with the same classes and max_batch; the softmax outputs of every
 * member (and view) are averaged before the ranking and the loss. evaluate is the ensemble of one. */
enum { EVAL_MAX_MEMBERS = 16 };
int evaluate_ensemble(Net *const *nets, const Norm *norms, int k, const Dataset *ds, const int *idx, int count,
                      int views, int progress, EvalResult *r);
/* evaluate_ensemble that also reports each member alone from the same forward passes: each[m] (k
 * results; their class_count / class_wrong as in r) as evaluate(nets[m]) would give it, or NULL */
int evaluate_members(Net *const *nets, const Norm *norms, int k, const Dataset *ds, const int *idx, int count,
                     int views, int progress, EvalResult *r, EvalResult *each);
#endif
