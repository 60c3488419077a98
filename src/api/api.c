/* api.c: the public C API (include/alexnet.h) over the library's internals.
 *
 * An alexnet_net wraps a Net (src/model/model.h) with what the command line keeps beside it: the
 * input normalisation of its weights (Norm, src/train/batch.h), the SGD momentum buffer and the
 * dropout stream (seed, step) of src/train/train.c's train_step. Each function does what one of
 * the commands does, with the same library calls, so that the numbers are the same:
 *   alexnet_preprocess_* / classify_*  norm_image_input (batch.c, as `classify`), classify_one
 *   alexnet_features                   net_feature_layer (net.c, as `features`), the forward pass
 *   alexnet_train_step                 src/train/train.c (train_step: forward, loss, backward, sgd)
 *   alexnet_evaluate                   src/train/eval.c (ranks, loss)
 *   alexnet_set_precision              src/cli/precision.c (gemm_set_bf16), without its messages.
 * Errors: the internals record a message with an_error() (src/util/common.c), whose buffer is
 * already _Thread_local, so alexnet_last_error() is an_last_error(). Each public function that can
 * fail clears it on entry (an_error("%s", "")) and, if an internal failure left no message (one
 * recorded on an OpenMP worker thread lands in that thread's buffer), writes a generic one.
 * The model caches behind model_find and checkpoint_model are process-wide and unlocked; every
 * call to them from here holds g_models. Nothing here prints or exits. */
#include "../../include/alexnet.h"
#include "../cpu/gemm.h"
#include "../data/augment.h"
#include "../data/dataset.h"
#include "../data/image.h"
#include "../data/imagenet_classes.h"
#include "../model/model.h"
#include "../train/batch.h"
#include "../train/checkpoint.h"
#include "../train/eval.h"
#include "../util/common.h"
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct alexnet_net {
    Net net;          /* layers, parameters, buffers for max_batch images */
    Norm norm;        /* the input normalisation that goes with the weights (owned: norm_free) */
    float *momentum;  /* (nparams) SGD velocity; NULL until the first training step (= zero) */
    uint64_t seed;    /* dropout masks of step s: an_hash64(seed, 2^32 + s), as train_step */
    uint64_t step;    /* training steps since create, load or init */
};

/* model_find's and checkpoint_model's caches are plain static arrays */
static pthread_mutex_t g_models = PTHREAD_MUTEX_INITIALIZER;

static void clear_error(void) { an_error("%s", ""); }

/* -1, making sure the calling thread has a message */
static int failed(const char *what) {
    if (!an_last_error()[0]) an_error("%s failed", what);
    return -1;
}

static int need_net(const alexnet_net *a, const char *fn) {
    return a ? 0 : an_error("%s: the network is NULL", fn);
}

/* floats of one network input: C x S x S */
static size_t image_floats(const Net *net) { return (size_t)net->in_c * net->in_size * net->in_size; }

/* ---- library ---- */

const char *alexnet_version(void) { return ALEXNET_VERSION_STRING; }

const char *alexnet_last_error(void) { return an_last_error(); }

const char *alexnet_models(void) { return model_names(); }

int alexnet_set_threads(int threads) {
    clear_error();
    if (threads < 1) return an_error("alexnet_set_threads: %d threads (at least 1)", threads);
    omp_set_num_threads(threads);
    return 0;
}

int alexnet_set_precision(const char *precision) {
    clear_error();
    if (precision && !strcmp(precision, "fp32")) { gemm_set_bf16(0); return 0; }
    if (precision && !strcmp(precision, "bf16")) { gemm_set_bf16(1); return 0; }
    return an_error("alexnet_set_precision: precision must be fp32 or bf16, not '%s'", precision ? precision : "(null)");
}

const char *alexnet_precision(void) { return gemm_bf16() ? "bf16" : "fp32"; }

/* ---- networks ---- */

int alexnet_init(alexnet_net *a, uint64_t seed) {
    clear_error();
    if (need_net(a, "alexnet_init")) return -1;
    net_init(&a->net, seed);
    if (a->momentum) memset(a->momentum, 0, a->net.nparams * sizeof(float));
    a->seed = seed, a->step = 0;
    return 0;
}

alexnet_net *alexnet_create(const char *model, int channels, int classes, int input_size, int max_batch) {
    clear_error();
    if (!model) { an_error("alexnet_create: no model given (built in: %s)", model_names()); return NULL; }
    pthread_mutex_lock(&g_models);
    const ModelSpec *spec = model_find(model);
    pthread_mutex_unlock(&g_models);
    if (!spec) { failed("alexnet_create"); return NULL; }
    if (input_size < 0) {
        an_error("alexnet_create: input_size %d (a side in pixels, or 0 for the model's own)", input_size);
        return NULL;
    }
    if (spec->in_size && input_size && input_size != spec->in_size) {
        an_error("alexnet_create: model %s takes %dx%d input (input_size %d, or 0), not %d", spec->name, spec->in_size,
                 spec->in_size, spec->in_size, input_size);
        return NULL;
    }
    if (!spec->in_size && !input_size) {
        an_error("alexnet_create: model %s has no input size of its own: give input_size", spec->name);
        return NULL;
    }
    alexnet_net *a = calloc(1, sizeof *a);
    if (!a) { an_error("alexnet_create: out of memory"); return NULL; }
    if (net_create(&a->net, spec, channels, classes, input_size, max_batch)) { /* frees what it made */
        free(a);
        failed("alexnet_create");
        return NULL;
    }
    a->norm = norm_imagenet(channels);
    alexnet_init(a, 1);
    return a;
}

void alexnet_free(alexnet_net *a) {
    if (!a) return;
    net_free(&a->net);
    norm_free(&a->norm);
    an_free(a->momentum);
    free(a);
}

alexnet_net *alexnet_load(const char *path, const char *model, int max_batch) {
    clear_error();
    if (!path) { an_error("alexnet_load: no file given"); return NULL; }
    pthread_mutex_lock(&g_models);
    const ModelSpec *spec = model ? model_find(model) : checkpoint_model(path);
    pthread_mutex_unlock(&g_models);
    if (!spec) { failed("alexnet_load"); return NULL; }
    alexnet_net *a = calloc(1, sizeof *a);
    if (!a) { an_error("%s: out of memory", path); return NULL; }
    StFile file;
    if (checkpoint_load_net(path, spec, max_batch, &a->net, &a->norm, &file)) { /* frees what it made */
        free(a);
        failed("alexnet_load");
        return NULL;
    }
    st_free(&file);
    a->seed = 1;
    return a;
}

int alexnet_save(const alexnet_net *a, const char *path) {
    clear_error();
    if (need_net(a, "alexnet_save")) return -1;
    if (!path) return an_error("alexnet_save: no file given");
    /* weights only: no momentum, no training state (as best.safetensors) */
    return checkpoint_save(path, &a->net, NULL, NULL, &a->norm, NULL) ? failed("alexnet_save") : 0;
}

/* ---- what a network is ---- */

const char *alexnet_model_name(const alexnet_net *a) { return a ? a->net.spec.name : NULL; }
int alexnet_channels(const alexnet_net *a) { return a ? a->net.in_c : 0; }
int alexnet_classes(const alexnet_net *a) { return a ? a->net.classes : 0; }
int alexnet_input_size(const alexnet_net *a) { return a ? a->net.in_size : 0; }
int alexnet_max_batch(const alexnet_net *a) { return a ? a->net.max_batch : 0; }
size_t alexnet_num_params(const alexnet_net *a) { return a ? a->net.nparams : 0; }

const char *alexnet_class_name(const alexnet_net *a, int index) {
    if (!a || index < 0 || index >= a->net.classes) return NULL;
    if (a->net.class_names) return a->net.class_names[index];
    return a->net.classes == IMAGENET_NUM_CLASSES ? IMAGENET_CLASSES[index] : NULL; /* as classify names them */
}

int alexnet_set_class_names(alexnet_net *a, const char *const *names) {
    clear_error();
    if (need_net(a, "alexnet_set_class_names")) return -1;
    /* net_set_class_names only reads the strings (it copies them) */
    return net_set_class_names(&a->net, (char *const *)names) ? failed("alexnet_set_class_names") : 0;
}

int alexnet_set_normalization(alexnet_net *a, const float *mean, const float *std) {
    clear_error();
    if (need_net(a, "alexnet_set_normalization")) return -1;
    if (!mean || !std) return an_error("alexnet_set_normalization: mean and std are required");
    int c = a->net.in_c;
    if (c > 3) return an_error("alexnet_set_normalization: a network of %d channels (at most 3)", c);
    for (int i = 0; i < c; i++)
        if (!isfinite(mean[i]) || !(std[i] > 0.0f) || isinf(std[i]))
            return an_error("alexnet_set_normalization: channel %d: mean %g, std %g (std must be positive, both finite)",
                            i, mean[i], std[i]);
    norm_free(&a->norm);
    a->norm = norm_imagenet(c); /* per-channel mode; the channels beyond c keep ImageNet's values */
    for (int i = 0; i < c; i++) a->norm.mean[i] = mean[i], a->norm.std[i] = std[i];
    return 0;
}

/* ---- images to network input ---- */

/* the caller's pixels as an Image (only read: image_resize_center_crop takes it const) */
static int rgb_image(const uint8_t *rgb, int width, int height, const char *fn, Image *img) {
    if (!rgb) return an_error("%s: no pixels (rgb is NULL)", fn);
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE ||
        (long)width * height > IMAGE_MAX_PIXELS)
        return an_error("%s: an image of %dx%d pixels (1 to %d a side, at most %ld in all)", fn, width, height,
                        IMAGE_MAX_SIDE, (long)IMAGE_MAX_PIXELS);
    *img = (Image){.w = width, .h = height, .c = 3, .data = (uint8_t *)rgb};
    return 0;
}

int alexnet_preprocess_rgb(const alexnet_net *a, const uint8_t *rgb, int width, int height, float *out) {
    clear_error();
    Image img;
    if (need_net(a, "alexnet_preprocess_rgb") || rgb_image(rgb, width, height, "alexnet_preprocess_rgb", &img))
        return -1;
    if (!out) return an_error("alexnet_preprocess_rgb: out is NULL");
    return norm_image_input(&a->net, &a->norm, &img, "alexnet_preprocess_rgb", out) ? failed("alexnet_preprocess_rgb") : 0;
}

int alexnet_preprocess_file(const alexnet_net *a, const char *path, float *out) {
    clear_error();
    if (need_net(a, "alexnet_preprocess_file")) return -1;
    if (!path || !out) return an_error("alexnet_preprocess_file: %s is NULL", path ? "out" : "path");
    Image img;
    if (image_load(path, &img)) return failed("alexnet_preprocess_file");
    int rc = norm_image_input(&a->net, &a->norm, &img, path, out);
    image_free(&img);
    return rc ? failed("alexnet_preprocess_file") : 0;
}

/* ---- inference ---- */

/* Test-mode forward of images [0, m) already in net->input, softmax into net->probs. */
static int forward_probs(Net *net, int m) {
    return !net_forward(net, m, 0, 0) || net_loss(net, NULL, NULL) ? -1 : 0;
}

/* The top k of probs (classes) into out, as classify_one ranks them: the largest first, the lower
 * index first among equal ones. Returns how many (min(k, classes)) or -1. */
static int top_classes(const alexnet_net *a, const float *probs, int k, alexnet_class *out) {
    int classes = a->net.classes, r = 0;
    char *used = calloc((size_t)classes, 1);
    if (!used) return an_error("out of memory");
    for (; r < k && r < classes; r++) {
        int best = -1;
        for (int j = 0; j < classes; j++)
            if (!used[j] && (best < 0 || probs[j] > probs[best])) best = j;
        if (best < 0) break;
        used[best] = 1;
        out[r] = (alexnet_class){.index = best, .prob = probs[best], .name = alexnet_class_name(a, best)};
    }
    free(used);
    return r;
}

/* preprocess one image (decoded: img, or from the file path) into the net's input, forward, rank */
static int classify(alexnet_net *a, const Image *img, const char *path, int k, alexnet_class *out, const char *fn) {
    if (k < 1 || !out) return an_error("%s: k = %d, out %s (k >= 1 and an array of k entries)", fn, k, out ? "given" : "NULL");
    Image file_img;
    if (path) {
        if (image_load(path, &file_img)) return -1;
        img = &file_img;
    }
    /* straight into the network's input buffer: (1, C, S, S) */
    int rc = norm_image_input(&a->net, &a->norm, img, path ? path : fn, a->net.input);
    if (path) image_free(&file_img);
    if (rc || forward_probs(&a->net, 1)) return -1;
    return top_classes(a, a->net.probs, k, out);
}

int alexnet_classify_rgb(alexnet_net *a, const uint8_t *rgb, int width, int height, int k, alexnet_class *out) {
    clear_error();
    Image img;
    if (need_net(a, "alexnet_classify_rgb") || rgb_image(rgb, width, height, "alexnet_classify_rgb", &img)) return -1;
    int r = classify(a, &img, NULL, k, out, "alexnet_classify_rgb");
    return r < 0 ? failed("alexnet_classify_rgb") : r;
}

int alexnet_classify_file(alexnet_net *a, const char *path, int k, alexnet_class *out) {
    clear_error();
    if (need_net(a, "alexnet_classify_file")) return -1;
    if (!path) return an_error("alexnet_classify_file: path is NULL");
    int r = classify(a, NULL, path, k, out, "alexnet_classify_file");
    return r < 0 ? failed("alexnet_classify_file") : r;
}

static int check_batch(const alexnet_net *a, const float *input, int n, int limit, const char *fn) {
    if (need_net(a, fn)) return -1;
    if (!input) return an_error("%s: input is NULL", fn);
    if (n < 1 || n > limit) return an_error("%s: a batch of %d images (1 to %d)", fn, n, limit);
    return 0;
}

int alexnet_predict(alexnet_net *a, const float *input, int n, float *probs) {
    clear_error();
    if (check_batch(a, input, n, 1 << 30, "alexnet_predict")) return -1;
    if (!probs) return an_error("alexnet_predict: probs is NULL");
    Net *net = &a->net;
    size_t per = image_floats(net);
    for (int at = 0; at < n; at += net->max_batch) { /* input (m, C, S, S) -> probs (m, classes) */
        int m = n - at < net->max_batch ? n - at : net->max_batch;
        if (net_set_input(net, input + (size_t)at * per, m) || forward_probs(net, m)) return failed("alexnet_predict");
        memcpy(probs + (size_t)at * net->classes, net->probs, (size_t)m * net->classes * sizeof(float));
    }
    return 0;
}

static long layer_units(const Layer *l) { return (long)l->out_c * l->out_h * l->out_w; }

long alexnet_feature_size(const alexnet_net *a, const char *layer) {
    clear_error();
    if (need_net(a, "alexnet_feature_size")) return -1;
    int at = net_feature_layer(&a->net, layer, "alexnet_feature_size");
    return at < 0 ? -1 : layer_units(&a->net.layers[at]);
}

int alexnet_features(alexnet_net *a, const char *layer, const float *input, int n, float *out) {
    clear_error();
    if (check_batch(a, input, n, 1 << 30, "alexnet_features")) return -1;
    if (!out) return an_error("alexnet_features: out is NULL");
    Net *net = &a->net;
    int at = net_feature_layer(net, layer, "alexnet_features");
    if (at < 0) return -1;
    long dim = layer_units(&net->layers[at]);
    size_t per = image_floats(net);
    for (int i = 0; i < n; i += net->max_batch) { /* input (m, C, S, S) -> out (m, dim) */
        int m = n - i < net->max_batch ? n - i : net->max_batch;
        if (net_set_input(net, input + (size_t)i * per, m) || !net_forward(net, m, 0, 0))
            return failed("alexnet_features");
        memcpy(out + (size_t)i * dim, net->layers[at].out, (size_t)m * dim * sizeof(float));
    }
    return 0;
}

/* ---- training ---- */

static int check_labels(const Net *net, const int *labels, int n, const char *fn) {
    if (!labels) return an_error("%s: labels is NULL", fn);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= net->classes)
            return an_error("%s: labels[%d] = %d is not a class (0 to %d)", fn, i, labels[i], net->classes - 1);
    return 0;
}

int alexnet_train_step(alexnet_net *a, const float *input, const int *labels, int n, float lr, float momentum,
                       float weight_decay, float *loss) {
    clear_error();
    const char *fn = "alexnet_train_step";
    if (check_batch(a, input, n, a ? a->net.max_batch : 0, fn) || check_labels(&a->net, labels, n, fn)) return -1;
    /* written so that NaN fails: !(x > 0) holds for NaN */
    if (!(lr > 0.0f) || isinf(lr)) return an_error("%s: lr must be positive and finite, not %g", fn, lr);
    if (!(momentum >= 0.0f && momentum < 1.0f)) return an_error("%s: momentum must be in [0, 1), not %g", fn, momentum);
    if (!(weight_decay >= 0.0f) || isinf(weight_decay))
        return an_error("%s: weight_decay must be finite and at least 0, not %g", fn, weight_decay);
    Net *net = &a->net;
    if (!a->momentum && !(a->momentum = an_alloc(net->nparams * sizeof(float), "momentum"))) return failed(fn);
    float l = 0.0f;
    /* input (n, C, S, S), dropout masks of this step as train_step draws them, logits (n, classes) */
    if (net_set_input(net, input, n) || !net_forward(net, n, 1, an_hash64(a->seed, 0x100000000ull + a->step)) ||
        net_loss(net, labels, &l))
        return failed(fn);
    if (loss) *loss = l;
    if (!isfinite(l)) return an_error("%s: the loss is %s; the weights were not updated", fn, isnan(l) ? "NaN" : "infinite");
    if (net_backward(net) || net_sgd(net, a->momentum, lr, momentum, weight_decay)) return failed(fn);
    a->step++;
    return 0;
}

int alexnet_evaluate(alexnet_net *a, const float *input, const int *labels, int n, alexnet_eval *result) {
    clear_error();
    const char *fn = "alexnet_evaluate";
    if (check_batch(a, input, n, 1 << 30, fn) || check_labels(&a->net, labels, n, fn)) return -1;
    if (!result) return an_error("%s: result is NULL", fn);
    Net *net = &a->net;
    size_t per = image_floats(net);
    double loss = 0.0;
    int top1 = 0, top5 = 0;
    for (int i = 0; i < n; i += net->max_batch) {
        int m = n - i < net->max_batch ? n - i : net->max_batch;
        if (net_set_input(net, input + (size_t)i * per, m) || forward_probs(net, m)) return failed(fn);
        for (int j = 0; j < m; j++) { /* as evaluate_ensemble counts one network's one view */
            const float *p = net->probs + (size_t)j * net->classes;
            int label = labels[i + j], rank = true_class_rank(p, net->classes, label);
            loss -= log(p[label] > 1e-30f ? p[label] : 1e-30f);
            top1 += rank < 1, top5 += rank < 5;
        }
    }
    *result = (alexnet_eval){.count = n, .top1 = top1, .top5 = top5, .loss = loss / n};
    return 0;
}
