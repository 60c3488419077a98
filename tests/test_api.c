/* test_api.c: the public C API (include/alexnet.h), used through that header alone, as a program
 * embedding the library would: the version; creating convnet4 and alexnet-owt; an unknown model
 * failing with a message that names it, in the calling thread only (pthreads); save then load
 * giving bit-identical probabilities; training steps on a fixed synthetic batch lowering the loss;
 * evaluation counts; a layer's features of the documented size; the precision and thread settings;
 * and classification of an image file equal to what `alexnet classify` prints for the same file
 * and weights (weights saved through the API, and, with Debian's dataset-fashion-mnist, weights
 * that `alexnet train` made); and networks used from several threads at once giving the same
 * answers as one alone. Synthetic inputs are (n, 3, 32, 32) floats. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../include/alexnet.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S = 32, C = 3, K = 10 }; /* the synthetic networks: convnet4, 3 x 32 x 32 input, 10 classes */

/* a colour picture (h, w, 3) interleaved, different for each `kind` */
static unsigned char *picture(int w, int h, int kind) {
    unsigned char *px = malloc((size_t)w * h * 3);
    for (int y = 0; px && y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = px + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)(x * 255 / w);
            p[1] = (unsigned char)(y * 255 / h);
            p[2] = (unsigned char)(((x / 8 + y / 8 + kind) & 1) ? 200 : 40);
        }
    return px;
}

/* a fixed batch: example i has class i % K, marked by a bright 8 x 8 patch at the class's place in
 * every channel, over small deterministic noise. x (n, C, S, S), labels (n) */
static void synthetic_batch(int n, float *x, int *labels) {
    unsigned state = 12345u;
    for (int i = 0; i < n; i++) {
        int label = labels[i] = i % K, y0 = (label / 5) * 16 + 4, x0 = (label % 5) * 6;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < S; y++)
                for (int xx = 0; xx < S; xx++) {
                    state = state * 1664525u + 1013904223u;
                    float noise = ((state >> 8) & 0xFFFF) / 65536.0f - 0.5f;
                    int in = y >= y0 && y < y0 + 8 && xx >= x0 && xx < x0 + 8;
                    x[(((size_t)i * C + c) * S + y) * S + xx] = 0.3f * noise + (in ? 2.0f : -0.2f);
                }
    }
}

static alexnet_net *small_net(int max_batch, uint64_t seed) {
    alexnet_net *net = alexnet_create("convnet4", C, K, S, max_batch);
    CHECK(net != NULL, "%s", alexnet_last_error());
    if (net) CHECK(alexnet_init(net, seed) == 0, "%s", alexnet_last_error());
    return net;
}

TEST(api_version) {
    CHECK(strcmp(alexnet_version(), ALEXNET_VERSION_STRING) == 0, "%s", alexnet_version());
    CHECK(strcmp(alexnet_version(), "0.1.0") == 0, "%s", alexnet_version());
    CHECK(harness_run("--version") == 0, "%s", harness_err);
    CHECK(strstr(harness_out, ALEXNET_VERSION_STRING) != NULL, "the program says %s", harness_out);
    CHECK(strstr(alexnet_models(), "convnet4") && strstr(alexnet_models(), "alexnet-owt"), "%s", alexnet_models());
}

TEST(api_create_convnet4_and_alexnet_owt) {
    alexnet_net *net = alexnet_create("convnet4", C, K, S, 4);
    CHECK(net != NULL, "%s", alexnet_last_error());
    if (net) {
        CHECK(alexnet_last_error()[0] == 0, "a success leaves '%s'", alexnet_last_error());
        CHECK(strcmp(alexnet_model_name(net), "convnet4") == 0, "%s", alexnet_model_name(net));
        CHECK(alexnet_channels(net) == C && alexnet_classes(net) == K && alexnet_input_size(net) == S &&
              alexnet_max_batch(net) == 4, "%d %d %d %d", alexnet_channels(net), alexnet_classes(net),
              alexnet_input_size(net), alexnet_max_batch(net));
        /* conv1 32x3x5x5+32, conv2 32x32x5x5+32, conv3 64x32x5x5+64, fc4 10x(64x3x3)+10 */
        size_t want = (32 * 3 * 25 + 32) + (32 * 32 * 25 + 32) + (64 * 32 * 25 + 64) + (10 * 576 + 10);
        CHECK(alexnet_num_params(net) == want, "%zu parameters, expected %zu", alexnet_num_params(net), want);
        CHECK(alexnet_class_name(net, 0) == NULL, "no names yet: %s", alexnet_class_name(net, 0));
    }
    alexnet_free(net);
    net = alexnet_create("convnet4", C, K, 0, 4); /* no size of its own: it must be given */
    CHECK(net == NULL && strstr(alexnet_last_error(), "input"), "%s", alexnet_last_error());
    alexnet_free(net);
    net = alexnet_create("alexnet-owt", 3, 1000, 0, 1);
    CHECK(net != NULL, "%s", alexnet_last_error());
    if (net) {
        CHECK(alexnet_input_size(net) == 224, "%d", alexnet_input_size(net));
        CHECK(alexnet_num_params(net) == 61100840, "%zu (torchvision's AlexNet has 61,100,840)", alexnet_num_params(net));
        CHECK(alexnet_feature_size(net, NULL) == 4096, "%ld", alexnet_feature_size(net, NULL));
        CHECK(alexnet_class_name(net, 0) && strstr(alexnet_class_name(net, 0), "tench"), "1000 classes: ILSVRC's names");
    }
    alexnet_free(net);
    net = alexnet_create("alexnet-owt", 3, 1000, 227, 1); /* not its size */
    CHECK(net == NULL && strstr(alexnet_last_error(), "224"), "%s", alexnet_last_error());
    alexnet_free(NULL);
}

/* ---- errors are per thread ---- */

typedef struct { char before[256], own[256]; int created; } ThreadSeen;

static void *other_thread(void *arg) {
    ThreadSeen *t = arg;
    snprintf(t->before, sizeof t->before, "%s", alexnet_last_error()); /* nothing failed here yet */
    alexnet_net *net = alexnet_create("other-missing-model", C, K, S, 1);
    t->created = net != NULL;
    alexnet_free(net);
    snprintf(t->own, sizeof t->own, "%s", alexnet_last_error());
    return NULL;
}

TEST(api_unknown_model_fails_with_a_per_thread_message) {
    alexnet_net *net = alexnet_create("no-such-model", C, K, S, 1);
    CHECK(net == NULL, "an unknown model was created");
    alexnet_free(net);
    char mine[1024];
    snprintf(mine, sizeof mine, "%s", alexnet_last_error());
    CHECK(strstr(mine, "no-such-model") != NULL, "the message does not name the model: '%s'", mine);
    CHECK(strstr(mine, "convnet4") != NULL, "the message does not list the built-ins: '%s'", mine);
    ThreadSeen seen = {{0}, {0}, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other_thread, &seen) == 0, "pthread_create");
    pthread_join(th, NULL);
    CHECK(seen.before[0] == 0, "another thread sees this thread's error: '%s'", seen.before);
    CHECK(!seen.created && strstr(seen.own, "other-missing-model"), "the other thread's own error: '%s'", seen.own);
    CHECK(strcmp(alexnet_last_error(), mine) == 0, "another thread's failure changed this thread's error: '%s'",
          alexnet_last_error());
    CHECK(alexnet_load(harness_path("api_no_such_file.safetensors"), NULL, 1) == NULL &&
              strstr(alexnet_last_error(), "api_no_such_file.safetensors"),
          "a missing file: '%s'", alexnet_last_error());
}

/* ---- save and load ---- */

TEST(api_save_load_round_trip_is_bit_identical) {
    alexnet_net *net = small_net(2, 7);
    if (!net) return;
    const char *names[K] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
    CHECK(alexnet_set_class_names(net, names) == 0, "%s", alexnet_last_error());
    const float mean[3] = {0.5f, 0.4f, 0.3f}, std[3] = {0.2f, 0.25f, 0.3f};
    CHECK(alexnet_set_normalization(net, mean, std) == 0, "%s", alexnet_last_error());
    unsigned char *px = picture(45, 37, 0);
    alexnet_class a[K], b[K];
    int na = alexnet_classify_rgb(net, px, 45, 37, K, a);
    CHECK(na == K, "%d: %s", na, alexnet_last_error());
    double sum = 0.0;
    for (int i = 0; i < na; i++) sum += a[i].prob;
    CHECK(fabs(sum - 1.0) < 1e-5, "probabilities sum to %g", sum);
    for (int i = 1; i < na; i++) CHECK(a[i].prob <= a[i - 1].prob, "not sorted at %d", i);
    CHECK(na > 0 && a[0].name && strcmp(a[0].name, names[a[0].index]) == 0, "names");
    const char *path = harness_path("api_roundtrip.safetensors");
    CHECK(alexnet_save(net, path) == 0, "%s", alexnet_last_error());
    alexnet_net *back = alexnet_load(path, NULL, 1); /* the model from the file */
    CHECK(back != NULL, "%s", alexnet_last_error());
    if (back) {
        CHECK(strcmp(alexnet_model_name(back), "convnet4") == 0 && alexnet_channels(back) == C &&
              alexnet_classes(back) == K && alexnet_input_size(back) == S, "shape after loading");
        int nb = alexnet_classify_rgb(back, px, 45, 37, K, b);
        CHECK(nb == na, "%d: %s", nb, alexnet_last_error());
        for (int i = 0; i < na && i < nb; i++)
            CHECK(a[i].index == b[i].index && memcmp(&a[i].prob, &b[i].prob, sizeof(float)) == 0,
                  "rank %d: %d %.9g before, %d %.9g after", i, a[i].index, a[i].prob, b[i].index, b[i].prob);
        CHECK(alexnet_class_name(back, 3) && strcmp(alexnet_class_name(back, 3), "three") == 0, "names kept");
        /* the same batch through predict: equal probabilities too */
        float x[2 * C * S * S], p1[2 * K], p2[2 * K];
        CHECK(alexnet_preprocess_rgb(net, px, 45, 37, x) == 0 && alexnet_preprocess_rgb(back, px, 45, 37, x + C * S * S) == 0,
              "%s", alexnet_last_error());
        CHECK(memcmp(x, x + C * S * S, sizeof(float) * C * S * S) == 0, "the normalisation was not kept");
        CHECK(alexnet_predict(net, x, 2, p1) == 0 && alexnet_predict(back, x, 2, p2) == 0, "%s", alexnet_last_error());
        CHECK(memcmp(p1, p2, sizeof p1) == 0, "predict differs after the round trip");
    }
    alexnet_free(back);
    back = alexnet_load(path, "alexnet-owt", 1); /* another model */
    CHECK(back == NULL && strstr(alexnet_last_error(), path) && strstr(alexnet_last_error(), "convnet4"), "%s",
          alexnet_last_error());
    alexnet_free(back);
    free(px);
    alexnet_free(net);
}

/* ---- training and evaluation ---- */

TEST(api_training_steps_lower_the_loss) {
    enum { N = 10, STEPS = 10 };
    alexnet_net *net = small_net(N, 3);
    if (!net) return;
    float *x = malloc(sizeof(float) * N * C * S * S);
    int labels[N];
    synthetic_batch(N, x, labels);
    alexnet_eval before, after;
    CHECK(alexnet_evaluate(net, x, labels, N, &before) == 0, "%s", alexnet_last_error());
    CHECK(before.count == N && before.top1 >= 0 && before.top1 <= before.top5 && before.top5 <= N,
          "counts %d %d %d", before.count, before.top1, before.top5);
    float first = 0.0f, last = 0.0f;
    for (int step = 0; step < STEPS; step++) {
        float loss = -1.0f;
        CHECK(alexnet_train_step(net, x, labels, N, 0.01f, 0.9f, 0.0005f, &loss) == 0, "step %d: %s", step,
              alexnet_last_error());
        CHECK(isfinite(loss) && loss >= 0.0f, "step %d: loss %g", step, loss);
        if (step == 0) first = loss;
        last = loss;
    }
    CHECK(alexnet_evaluate(net, x, labels, N, &after) == 0, "%s", alexnet_last_error());
    CHECK(after.count == N && after.top1 >= 0 && after.top1 <= after.top5 && after.top5 <= N, "counts %d %d %d",
          after.count, after.top1, after.top5);
    CHECK(after.loss < before.loss, "evaluation loss %g before, %g after %d steps", before.loss, after.loss, STEPS);
    CHECK(last < first, "training loss %g at the first step, %g at the last", first, last);
    CHECK(fabs(first - before.loss) < 1e-4, "the first step's loss %g is the evaluation's %g (no dropout in convnet4)",
          first, before.loss);
    /* evaluation in batches of max_batch gives the same as in one */
    alexnet_net *small = small_net(3, 3);
    alexnet_eval split;
    if (small) {
        CHECK(alexnet_evaluate(small, x, labels, N, &split) == 0, "%s", alexnet_last_error());
        CHECK(split.count == N && split.top1 == before.top1 && split.top5 == before.top5 &&
              fabs(split.loss - before.loss) < 1e-5, "split %d %d %g, whole %d %d %g", split.top1, split.top5, split.loss,
              before.top1, before.top5, before.loss);
        alexnet_free(small);
    }
    /* bad arguments fail with a message, the network unchanged */
    labels[4] = K;
    CHECK(alexnet_train_step(net, x, labels, N, 0.01f, 0.9f, 0.0f, NULL) == -1 && strstr(alexnet_last_error(), "labels[4]"),
          "%s", alexnet_last_error());
    labels[4] = 4;
    CHECK(alexnet_train_step(net, x, labels, N + 1, 0.01f, 0.9f, 0.0f, NULL) == -1 && strstr(alexnet_last_error(), "11"),
          "%s", alexnet_last_error());
    CHECK(alexnet_train_step(net, x, labels, N, -1.0f, 0.9f, 0.0f, NULL) == -1 && strstr(alexnet_last_error(), "lr"), "%s",
          alexnet_last_error());
    CHECK(alexnet_evaluate(net, x, labels, N, &split) == 0 && split.loss == after.loss, "changed by failed steps");
    /* the same seed, the same steps: the same weights */
    alexnet_net *again = small_net(N, 3);
    if (again) {
        for (int step = 0; step < STEPS; step++) alexnet_train_step(again, x, labels, N, 0.01f, 0.9f, 0.0005f, NULL);
        alexnet_eval e;
        CHECK(alexnet_evaluate(again, x, labels, N, &e) == 0 && e.loss == after.loss, "%g vs %g", e.loss, after.loss);
        alexnet_free(again);
    }
    free(x);
    alexnet_free(net);
}

/* ---- features ---- */

TEST(api_features_have_the_documented_size) {
    alexnet_net *net = small_net(2, 5);
    if (!net) return;
    /* conv3's output at 32 x 32 input: conv1 32 -> pool 15 -> conv2 15 -> pool 7 -> conv3 7 (its pool not taken) */
    CHECK(alexnet_feature_size(net, NULL) == 64 * 7 * 7, "default (conv3): %ld", alexnet_feature_size(net, NULL));
    CHECK(alexnet_feature_size(net, "conv3") == 64 * 7 * 7, "%ld", alexnet_feature_size(net, "conv3"));
    CHECK(alexnet_feature_size(net, "conv1") == 32 * 32 * 32, "%ld", alexnet_feature_size(net, "conv1"));
    CHECK(alexnet_feature_size(net, "fc4") == K, "%ld", alexnet_feature_size(net, "fc4"));
    CHECK(alexnet_feature_size(net, "fc9") == -1 && strstr(alexnet_last_error(), "fc9") &&
              strstr(alexnet_last_error(), "conv2"), "%s", alexnet_last_error());
    enum { N = 5 };
    float *x = malloc(sizeof(float) * N * C * S * S);
    int labels[N];
    synthetic_batch(N, x, labels);
    long dim = alexnet_feature_size(net, "conv3");
    float *all = malloc(sizeof(float) * N * dim), *one = malloc(sizeof(float) * dim);
    CHECK(alexnet_features(net, "conv3", x, N, all) == 0, "%s", alexnet_last_error()); /* 3 batches of <= 2 */
    int negative = 0, positive = 0;
    for (long j = 0; j < N * dim; j++) negative += all[j] < 0.0f, positive += all[j] > 0.0f;
    CHECK(negative == 0 && positive > 0, "after the ReLU: %d negative, %d positive", negative, positive);
    for (int i = 0; i < N; i++) {
        CHECK(alexnet_features(net, "conv3", x + (size_t)i * C * S * S, 1, one) == 0, "%s", alexnet_last_error());
        CHECK(memcmp(one, all + (size_t)i * dim, sizeof(float) * dim) == 0, "image %d alone differs", i);
    }
    free(x), free(all), free(one);
    alexnet_free(net);
}

/* ---- settings ---- */

static void *set_threads_elsewhere(void *arg) {
    *(int *)arg = alexnet_set_threads(1);
    return NULL;
}

TEST(api_precision_and_threads) {
    CHECK(strcmp(alexnet_precision(), "fp32") == 0, "default %s", alexnet_precision());
    CHECK(alexnet_set_precision("fp16") == -1 && strstr(alexnet_last_error(), "fp16"), "%s", alexnet_last_error());
    CHECK(alexnet_set_threads(0) == -1 && strstr(alexnet_last_error(), "0"), "%s", alexnet_last_error());
    int rc = -1;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, set_threads_elsewhere, &rc) == 0, "pthread_create");
    pthread_join(th, NULL);
    CHECK(rc == 0, "set_threads(1) failed");
    alexnet_net *net = small_net(1, 9);
    if (!net) return;
    unsigned char *px = picture(40, 40, 1);
    alexnet_class f[K], b[K];
    CHECK(alexnet_classify_rgb(net, px, 40, 40, K, f) == K, "%s", alexnet_last_error());
    CHECK(alexnet_set_precision("bf16") == 0 && strcmp(alexnet_precision(), "bf16") == 0, "%s", alexnet_last_error());
    CHECK(alexnet_classify_rgb(net, px, 40, 40, K, b) == K, "%s", alexnet_last_error());
    CHECK(alexnet_set_precision("fp32") == 0 && strcmp(alexnet_precision(), "fp32") == 0, "%s", alexnet_last_error());
    double close = 0.0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++)
            if (f[i].index == b[j].index) close = fmax(close, fabs(f[i].prob - b[j].prob));
    CHECK(close < 0.02, "bf16 probabilities differ from fp32 by %g", close);
    free(px);
    alexnet_free(net);
}

/* ---- classify a file as the command does ---- */

/* `alexnet classify --weights W --top 5 IMAGE` against alexnet_classify_file on the same file:
 * the same classes, the same printed probabilities and names */
static void same_as_cli(const char *weights, const char *image) {
    alexnet_net *net = alexnet_load(weights, NULL, 1);
    CHECK(net != NULL, "%s", alexnet_last_error());
    if (!net) return;
    alexnet_class top[5];
    int n = alexnet_classify_file(net, image, 5, top);
    CHECK(n == 5, "%d: %s", n, alexnet_last_error());
    char args[1400];
    snprintf(args, sizeof args, "classify --weights %s --top 5 %s", weights, image);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    const char *line = strchr(harness_out, '\n'); /* after the path line: "rank prob index name" */
    for (int r = 0; r < n; r++) {
        int rank = 0, index = -1, at = 0;
        char prob[32] = "", api_prob[32], name[512] = "";
        if (!line || sscanf(line + 1, "%d %31s %d %n", &rank, prob, &index, &at) < 3) {
            CHECK(0, "no line %d in: %s", r + 1, harness_out);
            break;
        }
        line++;
        const char *end = strchr(line, '\n');
        snprintf(name, sizeof name, "%.*s", (int)((end ? end : line + strlen(line)) - (line + at)), line + at);
        snprintf(api_prob, sizeof api_prob, "%.6f", top[r].prob);
        CHECK(rank == r + 1 && index == top[r].index && strcmp(prob, api_prob) == 0,
              "rank %d: the command says %d %s %d, the API %d %s %d", r + 1, rank, prob, index, r + 1, api_prob,
              top[r].index);
        CHECK(strcmp(name, top[r].name ? top[r].name : "-") == 0, "rank %d: name '%s' vs '%s'", r + 1, name,
              top[r].name ? top[r].name : "(null)");
        line = end;
    }
    alexnet_free(net);
}

TEST(api_classify_file_equals_the_classify_command) {
    const char *image = harness_path("api_picture.jpg");
    unsigned char *px = picture(71, 53, 2);
    CHECK(px && harness_write_jpeg(image, px, 71, 53, 3, 90) == 0, "writing %s", image);
    free(px);
    /* weights made and saved through the API */
    alexnet_net *net = small_net(1, 11);
    if (!net) return;
    const char *names[K] = {"cat", "dog", "a bird", "fish", "e", "f", "g", "h", "i", "j"};
    CHECK(alexnet_set_class_names(net, names) == 0, "%s", alexnet_last_error());
    const char *weights = harness_path("api_classify.safetensors");
    CHECK(alexnet_save(net, weights) == 0, "%s", alexnet_last_error());
    alexnet_free(net);
    same_as_cli(weights, image);
    /* weights that `alexnet train` made (one channel, 28 x 28, Fashion-MNIST's names) */
    if (harness_read_access(FMNIST "/train-images-idx3-ubyte.gz") != 0) return; /* the first half stands */
    char out[600], args[1400];
    snprintf(out, sizeof out, "%s", harness_path("api_train"));
    snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s --epochs 1 --limit-train 1000 "
             "--limit-val 100 --seed 5 --quiet", out);
    CHECK(harness_run(args) == 0, "training: %s", harness_err);
    char trained[700];
    snprintf(trained, sizeof trained, "%s/best.safetensors", out);
    same_as_cli(trained, image);
}

/* ---- two networks in two threads at once ---- */

typedef struct { const char *weights; const unsigned char *px; alexnet_class top[3]; int n; char error[256]; } Worker;

static void *classify_in_thread(void *arg) {
    Worker *w = arg;
    alexnet_net *net = alexnet_load(w->weights, NULL, 1); /* each thread its own network */
    w->n = -1;
    for (int rep = 0; net && rep < 20; rep++) w->n = alexnet_classify_rgb(net, w->px, 40, 30, 3, w->top);
    snprintf(w->error, sizeof w->error, "%s", alexnet_last_error());
    alexnet_free(net);
    return NULL;
}

TEST(api_networks_in_concurrent_threads) {
    alexnet_net *net = small_net(1, 21);
    if (!net) return;
    const char *weights = harness_path("api_threads.safetensors");
    CHECK(alexnet_save(net, weights) == 0, "%s", alexnet_last_error());
    unsigned char *px = picture(40, 30, 3);
    alexnet_class want[3];
    CHECK(alexnet_classify_rgb(net, px, 40, 30, 3, want) == 3, "%s", alexnet_last_error());
    alexnet_free(net);
    enum { T = 3 };
    Worker w[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        w[t] = (Worker){.weights = weights, .px = px};
        CHECK(pthread_create(&th[t], NULL, classify_in_thread, &w[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++) {
        CHECK(w[t].n == 3 && w[t].error[0] == 0, "thread %d: %d, '%s'", t, w[t].n, w[t].error);
        for (int r = 0; r < 3 && w[t].n == 3; r++)
            CHECK(w[t].top[r].index == want[r].index && w[t].top[r].prob == want[r].prob, "thread %d rank %d: %d %g vs %d %g",
                  t, r, w[t].top[r].index, w[t].top[r].prob, want[r].index, want[r].prob);
    }
    free(px);
}
