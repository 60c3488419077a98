/* test_net_chunked.c: the chunked training pass (src/model/net_chunked.c) against the layer-by-layer
 * passes (net_forward, net_loss, net_backward): the same probabilities and loss, the gradients within
 * float32 rounding of a different grouping of the sums; the same bits for 1 and 2 threads; and the
 * networks and batches it is for. convnet4 and convnet4-lrn (LRN with the ReLU folded into it) on
 * 28x28 one-channel images, batches of 128 (chunks 32, 32, 32, 16, 8, 8) and 44 (16, 8, 8, 12). */
#include "harness.h"
#include "../src/model/model.h"
#include "../src/util/common.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int make(Net *net, const char *model, int batch) {
    if (net_create(net, model_find(model), 1, 10, 28, batch)) return -1;
    net_init(net, 7);
    for (size_t i = 0; i < (size_t)batch * 28 * 28; i++) net->input[i] = 2.0f * an_uniform(11, i) - 1.0f;
    return 0;
}

static void labels_for(int n, int *labels) {
    for (int i = 0; i < n; i++) labels[i] = (int)(an_uniform(13, (uint64_t)i) * 10) % 10;
}

/* worst |a - b| / (|b| + the tensor's mean |b|) */
static double worst_rel(const float *a, const float *b, size_t n) {
    double mean = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) mean += fabs(b[i]);
    mean = mean / (double)n + 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs(b[i]) + mean);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static void compare_passes(const char *model, int batch) {
    Net net;
    CHECK(make(&net, model, batch) == 0, "%s: %s", model, an_last_error());
    if (net.nparams == 0) return;
    int *labels = malloc(batch * sizeof(int));
    labels_for(batch, labels);
    CHECK(net_chunked_ok(&net, batch), "%s at batch %d should take the chunked pass", model, batch);
    size_t np = net.nparams, nc = (size_t)batch * net.classes;
    float *g_layer = malloc(np * 4), *p_layer = malloc(nc * 4), loss_layer = 0.0f, loss_chunk = 0.0f;
    CHECK(net_forward(&net, batch, 1, 0) != NULL, "%s: forward: %s", model, an_last_error());
    CHECK(net_loss(&net, labels, &loss_layer) == 0 && net_backward(&net) == 0, "%s: %s", model, an_last_error());
    memcpy(g_layer, net.grads, np * 4), memcpy(p_layer, net.probs, nc * 4);
    memset(net.grads, 0xFF, np * 4); /* NaN: the chunked pass must write every gradient */
    memset(net.probs, 0xFF, nc * 4);
    CHECK(net_train_chunked(&net, batch, labels, &loss_chunk) == 0, "%s: chunked: %s", model, an_last_error());
    CHECK(memcmp(p_layer, net.probs, nc * 4) == 0, "%s batch %d: probabilities differ from the layer-by-layer pass",
          model, batch);
    CHECK(fabsf(loss_chunk - loss_layer) <= 1e-6f * fabsf(loss_layer), "%s: loss %.9g vs %.9g", model, loss_chunk,
          loss_layer);
    CHECK(net.batch == batch, "%s: net.batch %d after the chunked pass", model, net.batch);
    for (int i = 0; i < net.nlayers; i++) {
        const Layer *l = &net.layers[i];
        if (!l->w_size) continue;
        double ew = worst_rel(net.grads + l->w_off, g_layer + l->w_off, l->w_size);
        double eb = worst_rel(net.grads + l->b_off, g_layer + l->b_off, l->b_size);
        CHECK(ew <= 1e-4 && eb <= 1e-4, "%s batch %d layer %d: gradients %.3g / %.3g from the layer-by-layer pass",
              model, batch, i + 1, ew, eb);
    }
    free(labels), free(g_layer), free(p_layer);
    net_free(&net);
}

TEST(net_chunked_matches_layer_by_layer) {
    compare_passes("convnet4", 128);
    compare_passes("convnet4", 44);
    compare_passes("convnet4-lrn", 128);
}

TEST(net_chunked_same_bits_any_threads) {
    int saved = omp_get_max_threads(), threads[2] = {1, saved > 2 ? saved : 2};
    float *g[2] = {NULL, NULL}, loss[2];
    size_t np = 0;
    int labels[96];
    labels_for(96, labels);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(threads[t]);
        Net net;
        CHECK(make(&net, "convnet4", 96) == 0, "%s", an_last_error());
        np = net.nparams;
        CHECK(net_train_chunked(&net, 96, labels, &loss[t]) == 0, "%s", an_last_error());
        g[t] = malloc(np * 4);
        memcpy(g[t], net.grads, np * 4);
        net_free(&net);
    }
    omp_set_num_threads(saved);
    CHECK(memcmp(g[0], g[1], np * 4) == 0 && loss[0] == loss[1], "1 thread and %d threads give different gradients",
          threads[1]);
    free(g[0]), free(g[1]);
}

/* Inference chunk by chunk: the probabilities of the layer-by-layer forward pass and softmax, the
 * same bits, on 1 and on 2 or more threads (convnet4 and convnet4-lrn, batches of 128 and 44) */
TEST(net_infer_chunked_same_probabilities) {
    static const struct { const char *model; int batch; } cases[] = {{"convnet4", 128}, {"convnet4", 44}, {"convnet4-lrn", 128}};
    int saved = omp_get_max_threads(), threads[2] = {1, saved > 2 ? saved : 2};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        Net net;
        int n = cases[k].batch;
        CHECK(make(&net, cases[k].model, n) == 0, "%s", an_last_error());
        size_t count = (size_t)n * net.classes;
        float *want = malloc(count * sizeof(float));
        CHECK(net_forward(&net, n, 0, 0) != NULL && net_loss(&net, NULL, NULL) == 0, "%s", an_last_error());
        memcpy(want, net.probs, count * sizeof(float));
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(threads[t]);
            memset(net.probs, 0, count * sizeof(float));
            CHECK(net_infer_chunked(&net, n) == 0, "%s", an_last_error());
            CHECK(memcmp(net.probs, want, count * sizeof(float)) == 0, "%s batch %d, %d threads: other probabilities",
                  cases[k].model, n, threads[t]);
        }
        omp_set_num_threads(saved);
        free(want);
        net_free(&net);
    }
}

TEST(net_chunked_only_where_it_applies) {
    Net net;
    CHECK(make(&net, "convnet4", 256) == 0, "%s", an_last_error());
    CHECK(net_chunked_ok(&net, 128) && net_chunked_ok(&net, 32) && net_chunked_ok(&net, 256), "convnet4");
    CHECK(!net_chunked_ok(&net, 31), "a batch of 31 is under two chunks' worth");
    net.layerwise = 1;
    CHECK(!net_chunked_ok(&net, 128), "layerwise set (bench --layers)");
    int labels[16] = {0};
    CHECK(net_train_chunked(&net, 16, labels, &(float){0}) == -1, "net_train_chunked where it does not apply");
    net_free(&net);
    /* dropout (masks by row of the whole batch) and large networks keep the layer-by-layer passes */
    CHECK(net_create(&net, model_find("alexnet-owt"), 3, 10, 0, 64) == 0, "%s", an_last_error());
    CHECK(!net_chunked_ok(&net, 64), "alexnet-owt (dropout, 57M parameters)");
    net_free(&net);
}
