/* net_chunked.c: a training step's passes for small networks, chunk of the batch by chunk.
 *
 * Layer by layer, a step of convnet4 (the README job's network, 28x28 images) is some thirty
 * parallel regions of about a millisecond, each ending at a barrier; beside a busy process the
 * thread that shares a core with it is descheduled for whole time slices, and every region waits
 * for it. Here each thread takes whole chunks of the batch through every layer, forward, loss and
 * backward, with no barrier until the step's end: chunks of 32 images while 64 or more remain,
 * then 16 and 8 (the small ones last, so that the end waits at most for a small one). Each chunk's
 * parameter gradients go to a buffer of its own and are summed in chunk order after: the same bits
 * for any number of threads (and not those of the layer-by-layer passes: the sums are grouped by
 * chunk). Activation gradients of chunk rows i0.. sit at i0 * net->act_floats in net->dbuf, so
 * that chunks at different layers never share a float.
 *
 * Used for networks of at most CHUNKED_MAX_PARAMS parameters made of convolutions, ReLU, tanh,
 * pooling, LRN and fully connected layers, batches of CHUNKED_MIN_BATCH to CHUNKED_MAX_BATCH images,
 * on the CPU in one process (net_chunked_ok); larger networks keep the layer-by-layer passes, whose
 * products are large enough to split among the threads. */
#include "model.h"
#include "../layers/layers.h"
#include "../cpu/gemm.h"
#include "../util/common.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>

enum { CHUNKED_MAX_PARAMS = 1 << 20, CHUNKED_MIN_BATCH = 32, CHUNKED_MAX_BATCH = 256, MAX_CHUNKS = 16 };

/* first[k] .. first[k + 1]: chunk k of a batch of n; returns the count */
static int chunk_bounds(int n, int *first) {
    int k = 0;
    for (int i = 0; i < n;) {
        int r = n - i, len = r >= 64 ? 32 : r >= 32 ? 16 : r >= 16 ? 8 : r;
        first[k++] = i;
        i += len;
    }
    first[k] = n;
    return k;
}

int net_chunked_ok(const Net *net, int n) {
    if (net->gpu || net->gather || net->scatter || net->grads_ready || net->layerwise) return 0;
    if (n < CHUNKED_MIN_BATCH || n > CHUNKED_MAX_BATCH || net->nparams > CHUNKED_MAX_PARAMS) return 0;
    for (int i = 0; i < net->nlayers; i++)
        switch (net->layers[i].spec->kind) {
        case LAYER_CONV: case LAYER_RELU: case LAYER_TANH: case LAYER_MAXPOOL: case LAYER_AVGPOOL: case LAYER_LRN:
        case LAYER_LINEAR: break;
        default: return 0; /* dropout (its masks need the step's seed, which this pass has not), gather */
        }
    return 1;
}

/* Rows i0 .. i0+len of the batch (n images) through the network and back: logits, probabilities
 * and dlogits in their rows (dlogits divided by n), this chunk's parameter gradients into g
 * (nparams floats, every one written), its summed loss into *loss. labels NULL (inference): the
 * forward pass and the probabilities only. 0, or -1 with an_error(). */
static int chunk_pass(Net *net, int i0, int len, int n, const int *labels, float *g, double *loss) {
    const float *x = net->input + (size_t)i0 * net->in_c * net->in_size * net->in_size;
    for (int i = 0; i < net->nlayers; i++) {
        if (net_layer_forward(net, i, i0, len, x, labels != NULL, 0)) return -1;
        x = net->layers[i].out + (size_t)i0 * layer_out_count(&net->layers[i]);
    }
    size_t r0 = (size_t)i0 * net->classes;
    if (!labels) {
        softmax_xent_rows(len, n, net->classes, x, NULL, net->probs + r0, NULL);
        return 0;
    }
    *loss = softmax_xent_rows(len, n, net->classes, x, labels + i0, net->probs + r0, net->dlogits + r0);
    const float *dy = net->dlogits + r0;
    int which = 0;
    for (int i = net->nlayers - 1; i >= 0; i--) {
        float *dx = i ? net->dbuf[which] + (size_t)i0 * net->act_floats : NULL;
        int rc = net_layer_backward(net, i, i0, len, dy, dx, g);
        if (rc < 0) return -1;
        if (rc == 2) break;
        if (rc == 1) continue;
        dy = dx;
        which ^= 1;
    }
    return 0;
}

/* net_train_chunked, or with labels NULL net_infer_chunked (no gradients, no loss) */
static int chunked(Net *net, int n, const int *labels, float *loss) {
    if (!net_chunked_ok(net, n)) return an_error("chunked pass: not for this network or batch of %d", n);
    int first[MAX_CHUNKS + 1], chunks = chunk_bounds(n, first);
    size_t np = labels ? net->nparams : 0;
    if (net->chunk_grads_floats < (size_t)chunks * np) {
        an_free(net->chunk_grads);
        net->chunk_grads_floats = 0;
        if (!(net->chunk_grads = an_alloc((size_t)chunks * np * sizeof(float), "gradients of the batch's chunks")))
            return -1;
        net->chunk_grads_floats = (size_t)chunks * np;
    }
    net->batch = n, net->train = labels != NULL;
    (void)an_cpu_avx512(), (void)gemm_avx2(); /* the CPU's features asked once, before the threads do */
    double losses[MAX_CHUNKS];
    float *cg = net->chunk_grads;
    int failed = 0;
    char msg[256] = "";
#pragma omp parallel
    {
        /* dynamic, in order: the large chunks first, each to whichever thread is running */
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < chunks; c++) {
            int stop;
#pragma omp atomic read
            stop = failed;
            if (stop) continue;
            if (chunk_pass(net, first[c], first[c + 1] - first[c], n, labels, labels ? cg + (size_t)c * np : NULL,
                           &losses[c])) {
#pragma omp critical(net_chunked_error)
                {
                    if (!failed) snprintf(msg, sizeof msg, "%s", an_last_error()); /* the worker's message */
#pragma omp atomic write
                    failed = 1;
                }
            }
        }
        if (!failed && labels) {
#pragma omp for schedule(static)
            for (size_t p = 0; p < np; p++) {
                float acc = cg[p];
                for (int c = 1; c < chunks; c++) acc += cg[(size_t)c * np + p];
                net->grads[p] = acc;
            }
        }
    }
    if (failed) return an_error("%s", msg);
    if (!labels) return 0;
    double total = 0.0;
    for (int c = 0; c < chunks; c++) total += losses[c];
    *loss = (float)(total / n);
    return 0;
}

int net_train_chunked(Net *net, int n, const int *labels, float *loss) {
    if (!labels || !loss) return an_error("chunked pass: no labels or loss");
    return chunked(net, n, labels, loss);
}

/* Inference (evaluation) the same way: each thread takes whole chunks through every layer and the
 * softmax, no barrier until the end. The probabilities are those of net_forward and net_loss (the
 * same bits: each image's values do not depend on the chunk it is in). */
int net_infer_chunked(Net *net, int n) { return chunked(net, n, NULL, NULL); }
