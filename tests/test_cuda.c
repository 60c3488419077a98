/* test_cuda.c: every GPU kernel against its CPU twin in src/layers, on odd shapes. Float32 within
 * 1e-4 relative (the GPU fuses multiply-adds the CPU code rounds twice); masks, argmax indices,
 * ranks and the max-pooling gradients (same sums in the same order) exactly; max pooling also with
 * NaNs in the windows. The whole network (one training step: logits, loss, every parameter's
 * gradient, the updated parameters) against net.c: fp32 within 1e-4 of each tensor's norm, TF32
 * within 5e-3, bf16 (against the CPU's bf16 mode) within 2e-2; gradients below max pooling get more
 * (net_step_case); also at a batch smaller than the network's largest, with Caffe's bias learning
 * rates, and with convolution algorithms cuDNN refuses put first (the pass must fall back).
 * Data parallel through NCCL on one rank (cuda_nccl_*: the all-reduce a copy, so the parameters
 * as without it, bit for bit) and the logits' gradient scaling it relies on.
 * Each GPU test is reported as skipped, with the reason, where the build has no CUDA support or the
 * machine no GPU; `make test-cuda` runs these alone and fails when any of them was skipped. The
 * host logic around them runs everywhere: the choice of convolution algorithms (conv_choice.h)
 * and the loader's allocator hooks for pinned batches. */
#include "harness.h"
#include "../src/cpu/gemm.h"
#include "../src/cuda/conv_choice.h"
#include "../src/cuda/cuda_api.h"
#include "../src/cuda/gpu_net.h"
#include "../src/data/loader.h"
#include "../src/model/model.h"
#include "../src/layers/layers.h"
#include "../src/train/sgd.h"
#include "../src/train/train.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char g_gpu_why[256]; /* why there is no GPU */
static int have_gpu(void) {
    static int state = -1; /* -1 unknown, 0 no, 1 yes */
    char *why = g_gpu_why;
    if (state < 0) {
        char name[128];
        state = cuda_init(name, sizeof name) == 0;
        if (state) fprintf(stderr, "[GPU: %s] ", name);
        else snprintf(why, sizeof g_gpu_why, "%s", an_last_error());
    }
    return state;
}
/* skip the current test where there is no GPU (or no CUDA in this build) */
#define NEED_GPU()                                                              \
    do {                                                                        \
        if (!have_gpu()) SKIP("%s", g_gpu_why);                                 \
    } while (0)

static float *frand(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * an_uniform(seed, i);
    return p;
}

/* device copy of n floats (or bytes, with size) */
static void *up(const void *h, size_t bytes) {
    void *d = cuda_alloc(bytes, "test");
    if (d && cuda_upload(d, h, bytes)) { cuda_free(d); d = NULL; }
    return d;
}
static void *down(const void *d, size_t bytes) {
    void *h = malloc(bytes);
    if (cuda_download(h, d, bytes)) memset(h, 0xFF, bytes); /* NaN floats: the comparison fails */
    return h;
}

/* worst |got - want| / (|want| + floor) */
static double rel_err(const float *got, const float *want, size_t n, double floor) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (fabs((double)want[i]) + floor);
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

TEST(cuda_build_and_device_report) {
    char name[128];
    int rc = cuda_init(name, sizeof name);
    if (!cuda_built()) {
        CHECK(rc == -1 && strstr(an_last_error(), "no CUDA support"), "stub build: %s", an_last_error());
        SKIP("CPU-only build");
    }
    /* cuDNN and cuBLAS load, with every function the network calls (no GPU needed for that) */
    char why[256];
    snprintf(why, sizeof why, "%s", an_last_error());
    CHECK(cuda_load_libraries() == 0, "%s", an_last_error());
    an_error("%s", why); /* cuda_init's message again, for the checks below */
    if (rc) {
        CHECK(strstr(an_last_error(), "no CUDA GPU") != NULL, "message: %s", an_last_error());
        SKIP("%s", an_last_error());
    }
    CHECK(strstr(name, "sm_") != NULL, "name %s", name);
    void *d = cuda_alloc((size_t)1 << 62, "a test of the failure message");
    CHECK(d == NULL && strstr(an_last_error(), "out of GPU memory"), "huge alloc: %s", an_last_error());
}

TEST(cuda_relu_dropout_sgd_match_cpu) {
    NEED_GPU();
    long n = 100003;
    float *x = frand(n, 1, -1, 1), *dy = frand(n, 2, -1, 1), *y = malloc(n * 4), *dx = malloc(n * 4);
    uint8_t *mask = malloc(n);
    float *dX = up(x, n * 4), *dDy = up(dy, n * 4), *dY = cuda_alloc(n * 4, "y"), *dDx = cuda_alloc(n * 4, "dx");
    uint8_t *dMask = cuda_alloc(n, "mask");
    relu_forward(n, x, y);
    relu_backward(n, y, dy, dx);
    CHECK(cuda_relu_forward(n, dX, dY) == 0 && cuda_relu_backward(n, dY, dDy, dDx) == 0, "%s", an_last_error());
    float *gy = down(dY, n * 4), *gdx = down(dDx, n * 4);
    CHECK(memcmp(gy, y, n * 4) == 0 && memcmp(gdx, dx, n * 4) == 0, "relu differs");
    free(gy), free(gdx);
    dropout_forward(n, 0.5f, 99, x, y, mask);
    dropout_backward(n, 0.5f, mask, dy, dx);
    CHECK(cuda_dropout_forward(n, 0.5f, 99, (DropoutAt){0, n, n}, dX, dY, dMask) == 0 && cuda_dropout_backward(n, 0.5f, dMask, dDy, dDx) == 0,
          "%s", an_last_error());
    uint8_t *gm = down(dMask, n);
    gy = down(dY, n * 4), gdx = down(dDx, n * 4);
    CHECK(memcmp(gm, mask, n) == 0, "dropout masks differ from the CPU's for the same seed");
    CHECK(memcmp(gy, y, n * 4) == 0 && memcmp(gdx, dx, n * 4) == 0, "dropout values differ");
    free(gm), free(gy), free(gdx);
    /* SGD: w, v from x and dy, gradient y */
    float *w = frand(n, 3, -1, 1), *v = frand(n, 4, -0.1f, 0.1f), *g = frand(n, 5, -1, 1);
    float *dW = up(w, n * 4), *dV = up(v, n * 4), *dG = up(g, n * 4);
    sgd_update(n, w, g, v, 0.01f, 0.9f, 0.0005f);
    CHECK(cuda_sgd_update(n, dW, dG, dV, 0.01f, 0.9f, 0.0005f) == 0, "%s", an_last_error());
    float *gw = down(dW, n * 4), *gv = down(dV, n * 4);
    CHECK(rel_err(gw, w, n, 1e-3) <= 1e-5 && rel_err(gv, v, n, 1e-3) <= 1e-4, "sgd: w %.3g v %.3g",
          rel_err(gw, w, n, 1e-3), rel_err(gv, v, n, 1e-3));
    free(gw), free(gv);
    cuda_free(dX), cuda_free(dDy), cuda_free(dY), cuda_free(dDx), cuda_free(dMask), cuda_free(dW), cuda_free(dV),
        cuda_free(dG);
    free(x), free(dy), free(y), free(dx), free(mask), free(w), free(v), free(g);
}

TEST(cuda_lrn_matches_cpu) {
    NEED_GPU();
    static const int shapes[][3] = {{3, 7, 13}, {2, 96, 55 * 55}, {1, 3, 5}};
    for (int t = 0; t < 3; t++)
        for (int relu = 0; relu < 2; relu++) {
            int n = shapes[t][0], c = shapes[t][1], hw = shapes[t][2];
            size_t cnt = (size_t)n * c * hw;
            LrnParams p = {5, 1e-4f, 0.75f, 2.0f, t == 1 ? 2 : 0}; /* 96 channels: the paper's towers */
            if (t == 0) p = (LrnParams){3, 0.5f, 0.6f, 1.0f, 0}; /* the generic power */
            float *x = frand(cnt, 10 + t, relu ? 0 : -20, 20), *dy = frand(cnt, 20 + t, -1, 1);
            if (relu)
                for (size_t i = 0; i < cnt; i += 3) x[i] = 0.0f; /* ReLU output: some exact zeros */
            float *y = malloc(cnt * 4), *s = malloc(cnt * 4), *dx = malloc(cnt * 4);
            lrn_forward(n, c, hw, p, x, y, s);
            CHECK(lrn_backward(n, c, hw, p, x, y, s, dy, dx, relu) == 0, "cpu");
            float *dX = up(x, cnt * 4), *dDy = up(dy, cnt * 4), *dY = cuda_alloc(cnt * 4, "y");
            float *dS = cuda_alloc(cnt * 4, "s"), *dDx = cuda_alloc(cnt * 4, "dx");
            CHECK(cuda_lrn_forward(n, c, hw, p, dX, dY, dS) == 0 &&
                  cuda_lrn_backward(n, c, hw, p, dX, dY, dS, dDy, dDx, relu) == 0, "%s", an_last_error());
            float *gy = down(dY, cnt * 4), *gs = down(dS, cnt * 4), *gdx = down(dDx, cnt * 4);
            double ey = rel_err(gy, y, cnt, 1e-3), es = rel_err(gs, s, cnt, 1e-3), ed = rel_err(gdx, dx, cnt, 1e-3);
            CHECK(ey <= 1e-4 && es <= 1e-4 && ed <= 1e-4, "lrn n=%d c=%d hw=%d relu=%d: y %.3g scale %.3g dx %.3g", n, c,
                  hw, relu, ey, es, ed);
            free(gy), free(gs), free(gdx), free(x), free(dy), free(y), free(s), free(dx);
            cuda_free(dX), cuda_free(dDy), cuda_free(dY), cuda_free(dS), cuda_free(dDx);
        }
}

TEST(cuda_maxpool_matches_cpu) {
    NEED_GPU();
    static const int shapes[][6] = {{2, 3, 13, 13, 3, 2}, {3, 5, 55, 55, 3, 2}, {2, 4, 8, 7, 2, 2}, {1, 2, 9, 10, 3, 3}};
    for (int t = 0; t < 4; t++) {
        int n = shapes[t][0], c = shapes[t][1], h = shapes[t][2], w = shapes[t][3], k = shapes[t][4], s = shapes[t][5];
        int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
        size_t in = (size_t)n * c * h * w, out = (size_t)n * c * oh * ow;
        float *x = frand(in, 30 + t, -1, 1), *dy = frand(out, 40 + t, -1, 1);
        for (size_t i = 0; i < in; i += 4) x[i] = 0.25f; /* ties: the first maximum wins on both */
        float *y = malloc(out * 4), *dx = malloc(in * 4);
        int32_t *arg = malloc(out * 4);
        maxpool_forward(n, c, h, w, k, s, x, y, arg);
        maxpool_backward(n, c, h, w, k, s, arg, dy, dx, NULL);
        float *dX = up(x, in * 4), *dDy = up(dy, out * 4), *dY = cuda_alloc(out * 4, "y"), *dDx = cuda_alloc(in * 4, "dx");
        int32_t *dA = cuda_alloc(out * 4, "argmax");
        CHECK(cuda_maxpool_forward(n, c, h, w, k, s, dX, dY, dA) == 0 &&
              cuda_maxpool_backward(n, c, h, w, k, s, dA, dDy, dDx) == 0, "%s", an_last_error());
        float *gy = down(dY, out * 4), *gdx = down(dDx, in * 4);
        int32_t *ga = down(dA, out * 4);
        CHECK(memcmp(gy, y, out * 4) == 0 && memcmp(ga, arg, out * 4) == 0 && memcmp(gdx, dx, in * 4) == 0,
              "maxpool %dx%dx%dx%d k%d s%d: GPU differs from CPU", n, c, h, w, k, s);
        free(gy), free(gdx), free(ga), free(x), free(dy), free(y), free(dx), free(arg);
        cuda_free(dX), cuda_free(dDy), cuda_free(dY), cuda_free(dDx), cuda_free(dA);
    }
}

TEST(cuda_softmax_xent_and_rank_match_cpu) {
    NEED_GPU();
    static const int shapes[][2] = {{5, 10}, {37, 1000}, {2, 3}};
    for (int t = 0; t < 3; t++) {
        int n = shapes[t][0], k = shapes[t][1];
        float *z = frand((size_t)n * k, 50 + t, -30, 30), *p = malloc((size_t)n * k * 4), *dz = malloc((size_t)n * k * 4);
        int32_t *lab = malloc(n * 4);
        int *labi = malloc(n * sizeof(int));
        for (int i = 0; i < n; i++) labi[i] = lab[i] = (int)(an_hash64(60 + t, i) % k);
        float loss = softmax_xent(n, k, z, labi, p, dz);
        float *dZ = up(z, (size_t)n * k * 4), *dP = cuda_alloc((size_t)n * k * 4, "p"), *dDz = cuda_alloc((size_t)n * k * 4, "dz");
        float *dL = cuda_alloc(n * 4, "loss");
        int32_t *dLab = up(lab, n * 4), *dR = cuda_alloc(n * 4, "rank");
        CHECK(cuda_softmax_xent(n, k, dZ, dLab, dP, dDz, dL) == 0 && cuda_true_class_rank(n, k, dP, dLab, dR) == 0, "%s",
              an_last_error());
        float *gp = down(dP, (size_t)n * k * 4), *gdz = down(dDz, (size_t)n * k * 4), *gl = down(dL, n * 4);
        int32_t *gr = down(dR, n * 4);
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += gl[i];
        CHECK(fabs(sum / n - loss) <= 1e-5 * (fabs(loss) + 1), "loss %.7g vs %.7g", sum / n, loss);
        CHECK(rel_err(gp, p, (size_t)n * k, 1e-6) <= 1e-4 && rel_err(gdz, dz, (size_t)n * k, 1e-6) <= 1e-4,
              "softmax n=%d k=%d: probs %.3g dlogits %.3g", n, k, rel_err(gp, p, (size_t)n * k, 1e-6),
              rel_err(gdz, dz, (size_t)n * k, 1e-6));
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int rank = 0;
            for (int j = 0; j < k; j++) rank += j != labi[i] && p[(size_t)i * k + j] >= p[(size_t)i * k + labi[i]];
            bad += gr[i] != rank;
        }
        CHECK(bad == 0, "rank differs for %d of %d rows", bad, n);
        free(gp), free(gdz), free(gl), free(gr), free(z), free(p), free(dz), free(lab), free(labi);
        cuda_free(dZ), cuda_free(dP), cuda_free(dDz), cuda_free(dL), cuda_free(dLab), cuda_free(dR);
    }
}

/* ||a - b|| / ||b|| over n floats */
static double norm_err(const float *a, const float *b, size_t n) {
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d) / (sqrt(r) + 1e-30);
}

/* One training step on the CPU and on the GPU from the same parameters, input, labels and
 * dropout seed: the loss, the probabilities, each parameter tensor's gradient and the updated
 * parameters, as ||gpu - cpu|| / ||cpu||. Gradients below a max-pooling layer get conv_tol: a
 * window whose largest values are nearly tied can pick another argmax on either side after a
 * rounding difference, which moves those gradients by up to a few percent (measured on the CPU by
 * scaling the parameters by 1 +- 1e-5: 0.5% in conv1). He initialisation (zero biases) keeps
 * such near-ties rare; the paper's biases of 1 make conv5's outputs nearly equal. */
/* net_step_run: the step at `batch` images on networks built for max_batch (a short last batch
 * when batch < max_batch); bias_mult (lr, decay), unless NULL, as a recipe sets them (then the
 * biases start at 0.1, so that their weight decay shows); hook, unless NULL, is called with the
 * GPU network before the step (after 0) and after it (after 1). The CPU's update is net_sgd's. */
typedef void (*StepHook)(GpuNet *g, int batch, int after);
static void net_step_run(const ModelSpec *spec, int in_c, int size, int classes, int max_batch, int batch, GpuMath math,
                         double tol, double conv_tol, const float *bias_mult, StepHook hook) {
    ModelSpec he = *spec;
    for (int i = 0; i < he.nlayers; i++) he.layers[i].w_std = 0.0f, he.layers[i].b_init = bias_mult ? 0.1f : 0.0f;
    if (bias_mult) he.bias_lr_mult = bias_mult[0], he.bias_decay_mult = bias_mult[1];
    Net net;
    if (batch > max_batch || max_batch > 64) {
        CHECK(0, "net_step_run: batch %d of %d", batch, max_batch);
        return;
    }
    if (net_create(&net, &he, in_c, classes, size, max_batch) != 0) {
        CHECK(0, "%s: %s", spec->name, an_last_error());
        return;
    }
    net_init(&net, 3);
    size_t in_count = (size_t)batch * in_c * net.in_size * net.in_size;
    for (size_t i = 0; i < in_count; i++) net.input[i] = 2.0f * an_uniform(4, i) - 1.0f;
    int labels[64];
    for (int i = 0; i < batch; i++) labels[i] = (int)(an_hash64(5, i) % classes);
    size_t np = net.nparams, nk = (size_t)batch * classes;
    float *p0 = malloc(np * 4), *grads = malloc(np * 4), *probs = malloc(nk * 4), *p1 = malloc(np * 4);
    float *v = calloc(np, 4), loss = 0.0f;
    memcpy(p0, net.params, np * 4);
    /* CPU: one step (for bf16, with the CPU's bf16 products: operands rounded, float32 sums) */
    gemm_set_bf16(math == GPU_BF16);
    CHECK(net_forward(&net, batch, 1, 77) != NULL && net_loss(&net, labels, &loss) == 0 && net_backward(&net) == 0,
          "%s", an_last_error());
    gemm_set_bf16(0);
    memcpy(grads, net.grads, np * 4), memcpy(probs, net.probs, nk * 4);
    CHECK(net_sgd(&net, v, 0.01f, 0.9f, 0.0005f) == 0, "%s", an_last_error());
    memcpy(p1, net.params, np * 4);
    /* GPU: the same from the same parameters */
    memcpy(net.params, p0, np * 4);
    GpuNet *g = gpu_net_create(&net, math);
    CHECK(g != NULL, "%s: %s", spec->name, an_last_error());
    if (g) {
        float gloss = 0.0f;
        if (hook) hook(g, batch, 0);
        int rc = gpu_net_put_input(g, batch) || gpu_net_forward(g, batch, 1, 77, 0) || gpu_net_loss(g, labels, &gloss) ||
                 gpu_net_get_probs(g) || gpu_net_backward(g, 0) || gpu_net_get_grads(g) ||
                 gpu_net_sgd(g, 0.01f, 0.9f, 0.0005f) || gpu_net_get_params(g);
        CHECK(rc == 0, "%s: %s", spec->name, an_last_error());
        double ep = norm_err(net.probs, probs, nk), ew = norm_err(net.params, p1, np);
        const char *mode = math == GPU_TF32 ? "tf32" : math == GPU_BF16 ? "bf16" : "fp32";
        CHECK(fabs(gloss - loss) <= tol * fabs(loss) && ep <= tol && ew <= tol,
              "%s %s batch %d of %d: loss %.7g vs %.7g, probabilities %.3g, updated parameters %.3g", spec->name, mode,
              batch, max_batch, gloss, loss, ep, ew);
        if (hook) hook(g, batch, 1);
        int pool_seen = 0, t = 2 * (net_num_tensors(&net) / 2) - 1; /* last tensor first, as backward goes */
        for (int i = net.nlayers - 1; i >= 0; i--) {
            const Layer *l = &net.layers[i];
            pool_seen |= l->spec->kind == LAYER_MAXPOOL;
            if (!l->w_size) continue;
            for (int part = 1; part >= 0; part--, t--) { /* bias, then weight */
                char name[96];
                int nd;
                int64_t shape[4];
                size_t count;
                float *gg = net_tensor(&net, t, 1, name, &nd, shape, &count);
                double e = norm_err(gg, grads + (gg - net.grads), count), bound = pool_seen ? conv_tol : tol;
                if (conv_tol < 0) continue; /* gradients not compared (see the TF32 and bf16 cases) */
                CHECK(e <= bound, "%s %s: gradient of %s: %.3g of its norm (allowed %.3g)", spec->name, mode, name, e,
                      bound);
            }
        }
        gpu_net_free(g);
    }
    free(p0), free(grads), free(probs), free(p1), free(v);
    net_free(&net);
}

static void net_step_case(const ModelSpec *spec, int in_c, int size, int classes, int batch, GpuMath math, double tol,
                          double conv_tol) {
    net_step_run(spec, in_c, size, classes, batch, batch, math, tol, conv_tol, NULL, NULL);
}

/* a network without pooling (so no argmax can flip): every layer kind with parameters, LRN fused
 * with ReLU, groups, stride and padding, dropout */
static const ModelSpec NO_POOL = {
    "test-no-pool", "conv 7/2 + LRN, grouped conv, linear + dropout", 35, 0.0f, 9,
    {{.kind = LAYER_CONV, .name = "c1", .out = 16, .k = 7, .stride = 2, .pad = 1, .groups = 1}, {.kind = LAYER_RELU},
     {.kind = LAYER_LRN}, {.kind = LAYER_CONV, .name = "c2", .out = 24, .k = 3, .stride = 1, .pad = 1, .groups = 2},
     {.kind = LAYER_RELU}, {.kind = LAYER_LINEAR, .name = "f1", .out = 40},
     {.kind = LAYER_RELU}, {.kind = LAYER_DROPOUT, .p = 0.5f},
     {.kind = LAYER_LINEAR, .name = "f2"}},
    1.0f, 1.0f, 0};

/* the same with tanh: no unit sits at a ReLU's kink, where a rounding difference switches it on or
 * off and moves a gradient by percents (measured on the CPU by rounding as the GPU's bf16 does:
 * 4-17% with ReLU, at most 0.7% with tanh) */
static const ModelSpec NO_POOL_TANH = {
    "test-no-pool-tanh", "NO_POOL with tanh", 35, 0.0f, 9,
    {{.kind = LAYER_CONV, .name = "c1", .out = 16, .k = 7, .stride = 2, .pad = 1, .groups = 1}, {.kind = LAYER_TANH},
     {.kind = LAYER_LRN}, {.kind = LAYER_CONV, .name = "c2", .out = 24, .k = 3, .stride = 1, .pad = 1, .groups = 2},
     {.kind = LAYER_TANH}, {.kind = LAYER_LINEAR, .name = "f1", .out = 40},
     {.kind = LAYER_TANH}, {.kind = LAYER_DROPOUT, .p = 0.5f},
     {.kind = LAYER_LINEAR, .name = "f2"}},
    1.0f, 1.0f, 0};

TEST(cuda_net_training_step_matches_cpu) {
    NEED_GPU();
    net_step_case(&NO_POOL, 3, 35, 10, 6, GPU_FP32, 1e-4, 1e-4);
    net_step_case(model_find("convnet4"), 1, 28, 10, 8, GPU_FP32, 1e-4, 1e-4);
    net_step_case(model_find("alexnet"), 3, 227, 10, 3, GPU_FP32, 1e-4, 2e-2);
    net_step_case(model_find("alexnet-owt"), 3, 224, 10, 2, GPU_FP32, 1e-4, 2e-2);
    /* TF32 (operands rounded to 10 fraction bits) and bf16 (against the CPU's bf16 products; the
     * GPU also rounds the convolutions' outputs and gradients to bfloat16): gradients on the tanh
     * network; AlexNet's loss, probabilities and updated parameters only */
    net_step_case(&NO_POOL_TANH, 3, 35, 10, 6, GPU_TF32, 5e-3, 5e-3);
    net_step_case(model_find("alexnet"), 3, 227, 10, 3, GPU_TF32, 1e-2, -1);
    net_step_case(&NO_POOL_TANH, 3, 35, 10, 6, GPU_BF16, 2e-2, 2e-2);
    net_step_case(model_find("alexnet"), 3, 227, 10, 3, GPU_BF16, 3e-2, -1);
}

/* train --device cuda: the small network on real Fashion-MNIST images, 2 short epochs, lands where
 * the CPU run lands (the same seed, data order and dropout; only summation orders differ) */
TEST(cuda_train_convnet4_close_to_cpu) {
    NEED_GPU();
    const char *fmnist = getenv("ALEXNET_FMNIST") ? getenv("ALEXNET_FMNIST") : "/usr/share/datasets/fashion-mnist";
    char probe[400];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte.gz", fmnist);
    FILE *pf = fopen(probe, "rb");
    if (!pf) {
        SKIP("no Fashion-MNIST at %s; set ALEXNET_FMNIST", fmnist);
    }
    fclose(pf);
    double final_err[2] = {1, 1};
    for (int gpu = 0; gpu < 2; gpu++) {
        TrainConfig cfg;
        train_config_defaults(&cfg);
        char out[300];
        snprintf(out, sizeof out, "%s/cuda-train-%d", harness_tmpdir(), gpu);
        cfg.model = "convnet4", cfg.data = fmnist, cfg.out_dir = out;
        cfg.epochs = 2, cfg.batch = 64, cfg.limit_train = 3000, cfg.limit_val = 1000, cfg.quiet = 1, cfg.seed = 7;
        cfg.gpu = gpu;
        CHECK(train_run(&cfg) == 0, "gpu=%d: %s", gpu, an_last_error());
        char path[400], line[512];
        snprintf(path, sizeof path, "%s/log.csv", out);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f)) {
            double v[6];
            if (sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) final_err[gpu] = v[5];
        }
        if (f) fclose(f);
    }
    fprintf(stderr, "(validation error CPU %.3f, GPU %.3f) ", final_err[0], final_err[1]);
    CHECK(final_err[1] < 0.3 && fabs(final_err[1] - final_err[0]) <= 0.03, "GPU %.3f vs CPU %.3f", final_err[1],
          final_err[0]);
}

/* ---- bias gradients, max pooling with NaNs ---- */

/* cuda_bias_grad against float64 sums (conv_backward's and linear_backward's db), and for fully
 * connected shapes against linear_backward itself: the row kernel (plane 1) on narrow, wide and
 * ragged widths and on batches that do not fill its rows of threads; the plane kernel on small
 * and large planes */
TEST(cuda_bias_grad_matches_cpu) {
    NEED_GPU();
    static const int shapes[][3] = {{128, 4096, 1}, {7, 33, 1}, {1, 1, 1},  {200, 10, 1},  {3, 1000, 1},
                                    {3, 5, 169},    {2, 16, 3025}, {5, 7, 36}, {1, 3, 2}, {130, 3, 9}};
    for (int t = 0; t < (int)(sizeof shapes / sizeof shapes[0]); t++) {
        int n = shapes[t][0], c = shapes[t][1], plane = shapes[t][2];
        size_t count = (size_t)n * c * plane;
        float *dy = frand(count, 70 + t, -1, 1), *want = malloc(c * sizeof(float));
        for (int o = 0; o < c; o++) {
            double acc = 0.0;
            for (int i = 0; i < n; i++)
                for (int q = 0; q < plane; q++) acc += dy[((size_t)i * c + o) * plane + q];
            want[o] = (float)acc;
        }
        float *dDy = up(dy, count * 4), *dDb = cuda_alloc((size_t)c * 4, "db");
        CHECK(cuda_bias_grad(n, c, plane, dDy, dDb) == 0, "%s", an_last_error());
        float *got = down(dDb, (size_t)c * 4);
        double e = rel_err(got, want, c, 1e-6);
        CHECK(e <= 1e-6, "bias gradient n=%d channels=%d plane=%d: %.3g from the float64 sums", n, c, plane, e);
        if (plane == 1) { /* linear_backward's own db, with one input feature */
            float *x = frand(n, 80 + t, -1, 1), *w = frand(c, 90 + t, -1, 1), *dw = malloc(c * sizeof(float));
            float *db = malloc(c * sizeof(float));
            linear_backward(n, 1, c, x, w, dy, NULL, dw, db);
            e = rel_err(got, db, c, 1e-6);
            CHECK(e <= 1e-6, "bias gradient n=%d outputs=%d: %.3g from linear_backward's", n, c, e);
            free(x), free(w), free(dw), free(db);
        }
        free(dy), free(want), free(got);
        cuda_free(dDy), cuda_free(dDb);
    }
}

/* the max-pooling semantics with NaNs (PyTorch's): the window is scanned in row-major order from
 * its first element; a larger value or the first NaN takes over, and nothing replaces a NaN */
static void maxpool_reference(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *arg) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    for (long pl = 0; pl < (long)n * c; pl++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                const float *xp = x + pl * h * w;
                int best = oy * s * w + ox * s;
                float m = xp[best];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int idx = (oy * s + ky) * w + ox * s + kx;
                        if (isnan(m)) break;
                        if (xp[idx] > m || isnan(xp[idx])) m = xp[idx], best = idx;
                    }
                y[pl * oh * ow + oy * ow + ox] = m;
                arg[pl * oh * ow + oy * ow + ox] = best;
            }
}

static int same_floats(const float *a, const float *b, size_t n) { /* NaN equals NaN */
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) return 0;
    return 1;
}

TEST(cuda_maxpool_nan_matches_cpu) {
    NEED_GPU();
    static const int shapes[][6] = {{2, 3, 13, 13, 3, 2}, {1, 2, 9, 10, 3, 3}, {2, 4, 8, 7, 2, 2}, {1, 3, 27, 27, 3, 2}};
    for (int t = 0; t < 4; t++) {
        int n = shapes[t][0], c = shapes[t][1], h = shapes[t][2], w = shapes[t][3], k = shapes[t][4], s = shapes[t][5];
        int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
        size_t in = (size_t)n * c * h * w, out = (size_t)n * c * oh * ow;
        float *x = frand(in, 100 + t, -1, 1), *dy = frand(out, 110 + t, -1, 1);
        /* NaNs: scattered ones, a window's first element, two in one window (the first must win),
         * a whole window, a shared row/column of overlapping windows; and infinities */
        for (size_t i = 7; i < in; i += 23) x[i] = NAN;
        x[0] = NAN;
        x[(size_t)w + 1] = -NAN, x[(size_t)w + 2] = NAN;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) x[(size_t)h * w + (size_t)(s + ky) * w + s + kx] = NAN;
        x[2 * (size_t)h * w + (size_t)s * w + s] = NAN;
        size_t last = ((size_t)n * c - 1) * h * w; /* two NaNs in the last plane's first window, neither first in it */
        x[last + 1] = NAN, x[last + (size_t)w] = NAN;
        for (size_t i = 5; i < in; i += 31) x[i] = (i & 1) ? INFINITY : -INFINITY;
        float *y = malloc(out * 4), *ry = malloc(out * 4), *dx = malloc(in * 4);
        int32_t *arg = malloc(out * 4), *rarg = malloc(out * 4);
        maxpool_reference(n, c, h, w, k, s, x, ry, rarg);
        maxpool_forward(n, c, h, w, k, s, x, y, arg);
        maxpool_backward(n, c, h, w, k, s, arg, dy, dx, NULL);
        float *dX = up(x, in * 4), *dDy = up(dy, out * 4), *dY = cuda_alloc(out * 4, "y"), *dDx = cuda_alloc(in * 4, "dx");
        int32_t *dA = cuda_alloc(out * 4, "argmax");
        CHECK(cuda_maxpool_forward(n, c, h, w, k, s, dX, dY, dA) == 0 &&
                  cuda_maxpool_backward(n, c, h, w, k, s, dA, dDy, dDx) == 0,
              "%s", an_last_error());
        float *gy = down(dY, out * 4), *gdx = down(dDx, in * 4);
        int32_t *ga = down(dA, out * 4);
        int nan_out = 0;
        for (size_t i = 0; i < out; i++) nan_out += isnan(ry[i]);
        CHECK(nan_out > 0, "the test puts NaNs in some windows");
        CHECK(same_floats(gy, ry, out) && memcmp(ga, rarg, out * 4) == 0,
              "maxpool %dx%dx%dx%d k%d s%d with NaNs: GPU differs from the reference (first NaN wins)", n, c, h, w, k, s);
        CHECK(same_floats(gy, y, out) && memcmp(ga, arg, out * 4) == 0 && same_floats(gdx, dx, in),
              "maxpool %dx%dx%dx%d k%d s%d with NaNs: GPU differs from pool.c", n, c, h, w, k, s);
        free(gy), free(gdx), free(ga), free(x), free(dy), free(y), free(ry), free(dx), free(arg), free(rarg);
        cuda_free(dX), cuda_free(dDy), cuda_free(dY), cuda_free(dDx), cuda_free(dA);
    }
}

/* ---- the network at other batch sizes, with Caffe's bias rates, with refused algorithms ---- */

/* a short last batch: the convolutions' descriptors and algorithms checked at that size; several
 * sizes on one GPU network, each remembered */
TEST(cuda_net_short_batch_matches_cpu) {
    NEED_GPU();
    net_step_run(&NO_POOL, 3, 35, 10, 8, 5, GPU_FP32, 1e-4, 1e-4, NULL, NULL);
    net_step_run(&NO_POOL, 3, 35, 10, 8, 1, GPU_FP32, 1e-4, 1e-4, NULL, NULL);
    net_step_run(model_find("convnet4"), 1, 28, 10, 8, 3, GPU_FP32, 1e-4, 1e-4, NULL, NULL);
    net_step_run(&NO_POOL_TANH, 3, 35, 10, 6, 5, GPU_TF32, 5e-3, 5e-3, NULL, NULL);
    net_step_run(&NO_POOL_TANH, 3, 35, 10, 6, 5, GPU_BF16, 2e-2, 2e-2, NULL, NULL);
    /* one network, forward passes at 8, 3, 8, 1: the probabilities as the CPU's at each */
    Net net;
    ModelSpec he = NO_POOL;
    if (net_create(&net, &he, 3, 10, 35, 8) != 0) {
        CHECK(0, "%s", an_last_error());
        return;
    }
    net_init(&net, 3);
    for (size_t i = 0; i < (size_t)8 * 3 * 35 * 35; i++) net.input[i] = 2.0f * an_uniform(6, i) - 1.0f;
    GpuNet *g = gpu_net_create(&net, GPU_FP32);
    CHECK(g != NULL, "%s", an_last_error());
    static const int sizes[] = {8, 3, 8, 1};
    for (int t = 0; g && t < 4; t++) {
        int n = sizes[t];
        CHECK(net_forward(&net, n, 0, 0) != NULL && net_loss(&net, NULL, NULL) == 0, "%s", an_last_error());
        float *want = malloc((size_t)n * 10 * 4);
        memcpy(want, net.probs, (size_t)n * 10 * 4);
        CHECK(gpu_net_put_input(g, n) == 0 && gpu_net_forward(g, n, 0, 0, 0) == 0 && gpu_net_loss(g, NULL, NULL) == 0 &&
                  gpu_net_get_probs(g) == 0,
              "batch %d: %s", n, an_last_error());
        double e = norm_err(net.probs, want, (size_t)n * 10);
        CHECK(e <= 1e-4, "batch %d of 8: probabilities %.3g", n, e);
        CHECK(gpu_net_conv_algo_used(g, 0, 0, n) >= 0 && gpu_net_conv_algo_used(g, 3, 0, n) >= 0,
              "batch %d: no forward algorithm remembered", n);
        free(want);
    }
    if (g) CHECK(gpu_net_conv_algo_used(g, 0, 0, 2) == -1, "batch 2 never ran");
    gpu_net_free(g);
    net_free(&net);
}

/* Caffe's recipe: biases at twice the learning rate, without weight decay (net_sgd's rule) */
TEST(cuda_sgd_bias_multipliers_match_cpu) {
    NEED_GPU();
    static const float caffe[2] = {2.0f, 0.0f}, odd[2] = {0.5f, 3.0f};
    net_step_run(&NO_POOL, 3, 35, 10, 6, 6, GPU_FP32, 1e-4, 1e-4, caffe, NULL);
    net_step_run(&NO_POOL, 3, 35, 10, 6, 6, GPU_FP32, 1e-4, 1e-4, odd, NULL);
    net_step_run(&NO_POOL_TANH, 3, 35, 10, 6, 6, GPU_BF16, 2e-2, 2e-2, caffe, NULL);
}

/* a network whose second convolution has stride 2, where cuDNN supports neither FFT nor (for the
 * weight gradient: never implemented) Winograd: those put first, each pass must fall back to a
 * measured candidate and give the CPU's results */
static const ModelSpec STRIDED = {
    "test-strided", "conv 3/1, conv 5/2, linear", 17, 0.0f, 5,
    {{.kind = LAYER_CONV, .name = "c1", .out = 8, .k = 3, .stride = 1, .pad = 1, .groups = 1}, {.kind = LAYER_RELU},
     {.kind = LAYER_CONV, .name = "c2", .out = 12, .k = 5, .stride = 2, .groups = 1}, {.kind = LAYER_TANH},
     {.kind = LAYER_LINEAR, .name = "f1"}},
    1.0f, 1.0f, 0};
/* cuDNN's numbers (cudnn_ops.h): CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT,
 * CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD; CUDNN_FMA_MATH */
enum { REFUSED_FWD = 4, REFUSED_BWD_DATA = 2, REFUSED_BWD_FILTER = 4, MATH_FMA = 3 };
static void force_refused(GpuNet *g, int batch, int after) {
    static const int forced[3] = {REFUSED_FWD, REFUSED_BWD_DATA, REFUSED_BWD_FILTER};
    for (int pass = 0; pass < 3; pass++) {
        if (!after) {
            CHECK(gpu_net_conv_force_candidate(g, 2, pass, forced[pass], MATH_FMA) == 0, "%s", an_last_error());
            int algo = -1, math = -1;
            CHECK(gpu_net_conv_candidates(g, 2, pass, 0, &algo, &math) >= 2 && algo == forced[pass] && math == MATH_FMA,
                  "pass %d: the forced candidate is not first (%d, %d)", pass, algo, math);
        } else {
            int used = gpu_net_conv_algo_used(g, 2, pass, batch);
            CHECK(used >= 0 && used != forced[pass], "pass %d ran with algorithm %d", pass, used);
        }
    }
}
TEST(cuda_conv_falls_back_from_refused_algorithms) {
    NEED_GPU();
    net_step_run(&STRIDED, 3, 17, 10, 4, 4, GPU_FP32, 1e-4, 1e-4, NULL, force_refused);
    net_step_run(&STRIDED, 3, 17, 10, 4, 3, GPU_FP32, 1e-4, 1e-4, NULL, force_refused);
}

/* the candidates each mode keeps: fp32 only FMA math (never TF32 tensor cores), no mode a
 * down-converting one */
TEST(cuda_conv_candidates_follow_the_math_mode) {
    NEED_GPU();
    for (int m = 0; m < 3; m++) {
        Net net;
        if (net_create(&net, &NO_POOL, 3, 10, 35, 4) != 0) {
            CHECK(0, "%s", an_last_error());
            return;
        }
        net_init(&net, 3);
        GpuNet *g = gpu_net_create(&net, (GpuMath)m);
        CHECK(g != NULL, "mode %d: %s", m, an_last_error());
        for (int layer = 0; g && layer < net.nlayers; layer++) {
            if (net.layers[layer].spec->kind != LAYER_CONV) continue;
            for (int p = 0; p < 3; p++) {
                if (layer == 0 && p == 1) continue; /* the first layer's input gradient is never computed */
                int count = gpu_net_conv_candidates(g, layer, p, -1, NULL, NULL);
                CHECK(count >= 1, "mode %d layer %d pass %d: %d candidates", m, layer, p, count);
                for (int k = 0; k < count; k++) {
                    int algo, math;
                    gpu_net_conv_candidates(g, layer, p, k, &algo, &math);
                    CHECK(m == GPU_FP32 ? math == MATH_FMA : math != 2, "mode %d layer %d pass %d: candidate %d math %d",
                          m, layer, p, algo, math);
                }
            }
        }
        gpu_net_free(g);
        net_free(&net);
    }
}

/* ---- pinned host memory ---- */

TEST(cuda_pinned_host_memory_roundtrip) {
    NEED_GPU();
    size_t n = 1 << 20;
    float *h = cuda_host_alloc(n * 4), *back = cuda_host_alloc(n * 4);
    CHECK(h && back, "%s", an_last_error());
    if (h && back) {
        for (size_t i = 0; i < n; i++) h[i] = (float)i;
        float *d = cuda_alloc(n * 4, "test");
        CHECK(d && cuda_upload(d, h, n * 4) == 0 && cuda_sync() == 0 && cuda_download(back, d, n * 4) == 0, "%s",
              an_last_error());
        CHECK(memcmp(h, back, n * 4) == 0, "pinned round trip differs");
        cuda_free(d);
    }
    cuda_host_free(h), cuda_host_free(back);
}

/* ---- data parallel over GPUs through NCCL (gpu_net_dp_start) ---- */

/* NO_POOL with He initialisation (as net_step_run) for batches up to max_batch */
static int dp_net(Net *net, int max_batch) {
    ModelSpec he = NO_POOL;
    for (int i = 0; i < he.nlayers; i++) he.layers[i].w_std = 0.0f, he.layers[i].b_init = 0.0f;
    if (net_create(net, &he, 3, 10, 35, max_batch) != 0) return -1;
    net_init(net, 3);
    return 0;
}

/* step t's input batch (into net->input) and labels */
static void dp_batch(Net *net, int batch, int t, int *labels) {
    for (size_t i = 0; i < (size_t)batch * 3 * 35 * 35; i++) net->input[i] = 2.0f * an_uniform(40 + t, i) - 1.0f;
    for (int i = 0; i < batch; i++) labels[i] = (int)(an_hash64(50 + t, i) % 10);
}

/* from parameters p0 and zero momentum, three training steps (dropout on, a seed per step); the
 * parameters after them into net->params */
static int dp_steps(GpuNet *g, Net *net, const float *p0, int batch) {
    int labels[8];
    memcpy(net->params, p0, net->nparams * 4);
    if (gpu_net_put_params(g) || gpu_net_put_momentum(g, NULL)) return -1;
    for (int t = 0; t < 3; t++) {
        dp_batch(net, batch, t, labels);
        if (gpu_net_put_input(g, batch) || gpu_net_forward(g, batch, 1, 77 + t, 0) || gpu_net_loss(g, labels, NULL) ||
            gpu_net_backward(g, 0) || gpu_net_sgd(g, 0.01f, 0.9f, 0.0005f))
            return -1;
    }
    return gpu_net_get_params(g);
}

/* One rank: the all-reduce of each layer's gradients is a copy, so three steps with it end on the
 * very parameters of three steps without, in fp32 and bf16 (whose float32 gradients are the ones
 * reduced), and the bytes counted are each step's whole gradient. Both runs on one GpuNet, so
 * that they run the same convolution algorithms (two GpuNets could measure different fastest
 * ones). Skipped where NCCL cannot be loaded. */
TEST(cuda_nccl_data_parallel_one_rank) {
    NEED_GPU();
    char id[128];
    if (gpu_nccl_unique_id(id, sizeof id) != 0) {
        if (strstr(an_last_error(), "cannot load NCCL")) SKIP("%s", an_last_error());
        CHECK(0, "%s", an_last_error());
        return;
    }
    CHECK(gpu_nccl_unique_id(id, 64) != 0, "an id of 64 bytes was accepted");
    CHECK(cuda_select_device(0) == 0, "the GPU in use chosen again: %s", an_last_error());
    for (int m = 0; m < 2; m++) {
        GpuMath math = m ? GPU_BF16 : GPU_FP32;
        Net net;
        if (dp_net(&net, 6) != 0) {
            CHECK(0, "%s", an_last_error());
            return;
        }
        size_t np = net.nparams;
        float *p0 = malloc(np * 4), *plain = malloc(np * 4);
        memcpy(p0, net.params, np * 4);
        GpuNet *g = gpu_net_create(&net, math);
        CHECK(g != NULL, "%s", an_last_error());
        if (g) {
            CHECK(dp_steps(g, &net, p0, 6) == 0, "without data parallel: %s", an_last_error());
            memcpy(plain, net.params, np * 4);
            CHECK(gpu_net_dp_bytes(g) == 0.0, "bytes counted before the start");
            CHECK(gpu_net_dp_start(g, id, 1, 1) != 0, "rank 1 of 1 accepted");
            int rc = gpu_net_dp_start(g, id, 0, 1);
            CHECK(rc == 0, "%s", an_last_error());
            if (rc == 0) {
                CHECK(gpu_net_dp_start(g, id, 0, 1) != 0, "started twice");
                CHECK(dp_steps(g, &net, p0, 6) == 0, "data parallel: %s", an_last_error());
                size_t differ = 0;
                for (size_t i = 0; i < np; i++) differ += memcmp(&net.params[i], &plain[i], 4) != 0;
                CHECK(differ == 0, "mode %d: %zu of %zu parameters differ from the run without data parallel", m, differ,
                      np);
                CHECK(gpu_net_dp_bytes(g) == 3.0 * np * 4, "mode %d: %.0f bytes all-reduced, not %.0f", m,
                      gpu_net_dp_bytes(g), 3.0 * np * 4);
                gpu_net_dp_stop(g);
                /* stopped: the net trains on alone, and gpu_net_free finds nothing left to end */
                CHECK(dp_steps(g, &net, p0, 6) == 0 && memcmp(net.params, plain, np * 4) == 0,
                      "after gpu_net_dp_stop: %s", an_last_error());
            }
            gpu_net_free(g);
        }
        free(p0), free(plain);
        net_free(&net);
    }
}

/* gpu_net_scale_dlogits(0.5): every gradient of the backward pass halved, exactly (a power of two
 * commutes with each rounding), at a batch short of the network's largest */
TEST(cuda_nccl_scale_dlogits_halves_gradients) {
    NEED_GPU();
    Net net;
    if (dp_net(&net, 6) != 0) {
        CHECK(0, "%s", an_last_error());
        return;
    }
    size_t np = net.nparams;
    float *full = malloc(np * 4);
    int labels[8];
    GpuNet *g = gpu_net_create(&net, GPU_FP32);
    CHECK(g != NULL, "%s", an_last_error());
    if (g) {
        CHECK(gpu_net_scale_dlogits(g, 0.5f) != 0, "scaled before any loss");
        dp_batch(&net, 5, 0, labels);
        CHECK(gpu_net_put_input(g, 5) == 0 && gpu_net_forward(g, 5, 1, 77, 0) == 0 &&
                  gpu_net_loss(g, labels, NULL) == 0 && gpu_net_backward(g, 0) == 0 && gpu_net_get_grads(g) == 0,
              "%s", an_last_error());
        memcpy(full, net.grads, np * 4);
        CHECK(gpu_net_scale_dlogits(g, 0.5f) == 0 && gpu_net_backward(g, 0) == 0 && gpu_net_get_grads(g) == 0, "%s",
              an_last_error());
        size_t bad = 0, nonzero = 0, first = np;
        for (size_t i = 0; i < np; i++) {
            nonzero += full[i] != 0.0f;
            if (!(net.grads[i] == 0.5f * full[i]) && !(fabsf(full[i]) < 1e-30f)) { /* leave subnormal halves */
                if (!bad++) first = i;
            }
        }
        CHECK(nonzero > np / 4, "only %zu of %zu gradients are not zero", nonzero, np);
        CHECK(bad == 0, "%zu of %zu gradients not halved (the first: %zu, %.9g from %.9g)", bad, np, first,
              first < np ? net.grads[first] : 0.0, first < np ? full[first] : 0.0);
        gpu_net_free(g);
    }
    free(full);
    net_free(&net);
}

/* ---- host logic, no GPU needed: the algorithm candidates and their fallback ---- */

static ConvPerf perf(int algo, int ok, int det, int transform, int math, float ms) {
    ConvPerf p = {algo, ok, det, transform, math, ms, (size_t)algo * 1000};
    return p;
}

TEST(cuda_conv_choice_keeps_what_the_mode_allows) {
    const ConvPerf found[] = {
        perf(1, 1, 1, 0, CONV_MATH_TENSOR, 0.1f),         /* tensor cores: not for fp32 */
        perf(6, 1, 1, 1, CONV_MATH_DEFAULT, 0.2f),        /* Winograd: not for fp32 */
        perf(2, 1, 1, 0, CONV_MATH_DEFAULT, 0.3f),        /* default math: fp32 after the FMA ones */
        perf(5, 1, 1, 0, CONV_MATH_TENSOR_CONVERT, 0.35f), /* down-converting: never */
        perf(0, 1, 0, 0, CONV_MATH_FMA, 0.4f),            /* not deterministic */
        perf(3, 1, 1, 0, CONV_MATH_FMA, 0.5f),            /* FMA: fp32's first */
        perf(2, 1, 1, 0, CONV_MATH_FMA, 0.6f),            /* the same algorithm as the default one */
        perf(7, 0, 1, 0, CONV_MATH_FMA, -1.0f),           /* did not run */
    };
    int count = (int)(sizeof found / sizeof found[0]);
    ConvChoice c;
    /* fp32, forward (determinism not needed): FMA measurements first, then default ones, all FMA */
    CHECK(conv_choice_init(&c, found, count, GPU_FP32, 0) == 3, "fp32: %d candidates", c.count);
    CHECK(c.cand[0].algo == 0 && c.cand[1].algo == 3 && c.cand[2].algo == 2, "fp32 order %d %d %d", c.cand[0].algo,
          c.cand[1].algo, c.cand[2].algo);
    for (int k = 0; k < c.count; k++) CHECK(c.cand[k].math == CONV_MATH_FMA, "fp32 candidate %d math %d", k, c.cand[k].math);
    CHECK(c.cand[1].memory == 3000, "memory kept");
    /* fp32, deterministic only */
    CHECK(conv_choice_init(&c, found, count, GPU_FP32, 1) == 2 && c.cand[0].algo == 3 && c.cand[1].algo == 2,
          "fp32 deterministic: %d", c.count);
    /* tf32: cuDNN's order, each with its own math type; no down-conversion */
    CHECK(conv_choice_init(&c, found, count, GPU_TF32, 1) == 5, "tf32: %d candidates", c.count);
    static const int tf_algo[] = {1, 6, 2, 3, 2}, tf_math[] = {CONV_MATH_TENSOR, CONV_MATH_DEFAULT, CONV_MATH_DEFAULT,
                                                                CONV_MATH_FMA, CONV_MATH_FMA};
    for (int k = 0; k < 5 && k < c.count; k++)
        CHECK(c.cand[k].algo == tf_algo[k] && c.cand[k].math == tf_math[k], "tf32 candidate %d: %d/%d", k, c.cand[k].algo,
              c.cand[k].math);
    CHECK(conv_choice_init(&c, found, count, GPU_BF16, 0) == 6, "bf16: %d candidates", c.count);
    /* nothing usable; more than fit */
    CHECK(conv_choice_init(&c, found + 7, 1, GPU_TF32, 0) == 0, "a failed measurement is no candidate");
    CHECK(conv_choice_init(&c, found, 0, GPU_FP32, 0) == 0, "no measurements");
    ConvPerf many[40];
    for (int k = 0; k < 40; k++) many[k] = perf(k, 1, 1, 0, CONV_MATH_FMA, (float)k);
    CHECK(conv_choice_init(&c, many, 40, GPU_FP32, 1) == CONV_MAX_CANDIDATES &&
              c.cand[CONV_MAX_CANDIDATES - 1].algo == CONV_MAX_CANDIDATES - 1,
          "capped at %d: %d", CONV_MAX_CANDIDATES, c.count);
}

/* a stand-in for cuDNN: refuses the algorithms in `refuse` at batch sizes >= refuse_from, fails
 * hard on `broken`, and counts the tries */
typedef struct FakeDnn {
    int refuse[4], nrefuse, refuse_from, broken, n, tries, last;
} FakeDnn;
static int fake_try(void *ctx, const ConvCandidate *cand) {
    FakeDnn *f = ctx;
    f->tries++;
    f->last = cand->algo;
    if (cand->algo == f->broken) return an_error("cuDNN: convolution forward: CUDNN_STATUS_EXECUTION_FAILED"), CONV_TRY_ERROR;
    for (int k = 0; k < f->nrefuse; k++)
        if (cand->algo == f->refuse[k] && f->n >= f->refuse_from) {
            an_error("cuDNN: workspace size: CUDNN_STATUS_NOT_SUPPORTED (algorithm %d)", cand->algo);
            return CONV_TRY_REFUSED;
        }
    return CONV_TRY_DONE;
}
static int fake_run(ConvChoice *c, FakeDnn *f, int n) {
    f->n = n, f->tries = 0;
    return conv_choice_run(c, n, fake_try, f, "forward", 3);
}

TEST(cuda_conv_choice_falls_back_and_remembers_each_batch_size) {
    ConvPerf found[4];
    for (int k = 0; k < 4; k++) found[k] = perf(10 + k, 1, 1, 0, CONV_MATH_FMA, (float)k);
    ConvChoice c;
    conv_choice_init(&c, found, 4, GPU_FP32, 1);
    /* the best works: one try, remembered */
    FakeDnn f = {{0}, 0, 0, -1, 0, 0, 0};
    CHECK(fake_run(&c, &f, 128) == 0 && f.tries == 1 && conv_choice_cached(&c, 128) == 0, "plain run");
    CHECK(conv_choice_cached(&c, 77) == -1, "batch 77 not seen yet");
    /* the first two refused at large batches: 128 (already remembered with 0) and 100 fall back */
    f = (FakeDnn){{10, 11}, 2, 64, -1, 0, 0, 0};
    CHECK(fake_run(&c, &f, 100) == 2 && f.tries == 3 && f.last == 12, "fallback at 100: %d tries", f.tries);
    CHECK(conv_choice_cached(&c, 100) == 2, "100 remembered with candidate 2");
    CHECK(fake_run(&c, &f, 100) == 2 && f.tries == 1, "100 again: straight to candidate 2 (%d tries)", f.tries);
    CHECK(fake_run(&c, &f, 128) == 2 && f.tries == 3 && conv_choice_cached(&c, 128) == 2, "128 re-checked: %d tries",
          f.tries);
    /* a short last batch is checked at its own size: there the best works */
    CHECK(fake_run(&c, &f, 37) == 0 && f.tries == 1 && conv_choice_cached(&c, 37) == 0, "batch 37");
    /* every candidate refused: the message names the pass, layer, batch and the first reason */
    f = (FakeDnn){{10, 11, 12, 13}, 4, 0, -1, 0, 0, 0};
    CHECK(fake_run(&c, &f, 5) == -1 && f.tries == 4, "all refused: %d tries", f.tries);
    CHECK(strstr(an_last_error(), "layer 3") && strstr(an_last_error(), "forward") && strstr(an_last_error(), "batch 5") &&
              strstr(an_last_error(), "algorithm 10"),
          "message: %s", an_last_error());
    CHECK(conv_choice_cached(&c, 5) == -1, "nothing remembered for a failed size");
    /* a hard error stops at once with the try's message */
    f = (FakeDnn){{10}, 1, 0, 11, 0, 0, 0};
    CHECK(fake_run(&c, &f, 6) == -1 && f.tries == 2 && strstr(an_last_error(), "EXECUTION_FAILED"), "hard error: %s",
          an_last_error());
    /* no candidates at all */
    ConvChoice none;
    conv_choice_init(&none, found, 0, GPU_FP32, 1);
    f = (FakeDnn){{0}, 0, 0, -1, 0, 0, 0};
    CHECK(fake_run(&none, &f, 1) == -1 && f.tries == 0 && strstr(an_last_error(), "no usable forward"), "%s",
          an_last_error());
    /* a forced first candidate (the tests' hook) forgets the sizes; refused, it gives way */
    conv_choice_prepend(&c, 99, CONV_MATH_FMA);
    CHECK(c.count == 5 && c.cand[0].algo == 99 && conv_choice_cached(&c, 128) == -1, "prepend");
    f = (FakeDnn){{99}, 1, 0, -1, 0, 0, 0};
    CHECK(fake_run(&c, &f, 128) == 1 && f.last == 10, "after the forced one: %d", f.last);
    /* more sizes than remembered: the oldest goes, the rest stay */
    f = (FakeDnn){{99}, 1, 0, -1, 0, 0, 0};
    for (int n = 1; n <= CONV_CACHED_SIZES + 2; n++) fake_run(&c, &f, 1000 + n);
    CHECK(conv_choice_cached(&c, 128) == -1 && conv_choice_cached(&c, 1001) == -1 &&
              conv_choice_cached(&c, 1000 + CONV_CACHED_SIZES + 2) == 1,
          "cache of %d sizes", CONV_CACHED_SIZES);
    ConvChoice full;
    ConvPerf many[CONV_MAX_CANDIDATES];
    for (int k = 0; k < CONV_MAX_CANDIDATES; k++) many[k] = perf(k, 1, 1, 0, CONV_MATH_FMA, (float)k);
    conv_choice_init(&full, many, CONV_MAX_CANDIDATES, GPU_FP32, 1);
    conv_choice_prepend(&full, 77, CONV_MATH_FMA);
    CHECK(full.count == CONV_MAX_CANDIDATES && full.cand[0].algo == 77 && full.cand[1].algo == 0 &&
              full.cand[CONV_MAX_CANDIDATES - 1].algo == CONV_MAX_CANDIDATES - 2,
          "prepend to a full list drops the last");
}

/* ---- the loader's allocator hooks (pinned batches on the GPU path), no GPU needed ---- */

static int g_allocs, g_frees, g_fail_after = -1;
static void *g_blocks[8];
static size_t g_block_bytes[8];
static void *counting_alloc(size_t bytes) {
    if (g_fail_after >= 0 && g_allocs >= g_fail_after) {
        an_error("test allocator: no more");
        return NULL;
    }
    void *p = malloc(bytes);
    if (g_allocs < 8) g_blocks[g_allocs] = p, g_block_bytes[g_allocs] = bytes;
    g_allocs++;
    return p;
}
static void counting_free(void *p) {
    g_frees++;
    free(p);
}

/* the images of an epoch, with the given allocator (NULL: the default) */
static float *loader_epoch(const Dataset *ds, const int *idx, int count, void *(*alloc)(size_t), void (*fr)(void *),
                           int *batches, int *inside) {
    LoaderConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ds = ds, cfg.indices = idx, cfg.count = count, cfg.batch = 3, cfg.mode = LOADER_TRAIN, cfg.seed = 5;
    cfg.threads = 2, cfg.prefetch = 2, cfg.input.channels = 1, cfg.input.aug.crop = 4;
    for (int i = 0; i < 3; i++) cfg.input.mean[i] = 0.5f, cfg.input.std[i] = 0.25f;
    cfg.alloc_host = alloc, cfg.free_host = fr;
    float *all = calloc((size_t)count * 16, sizeof(float));
    Loader *l;
    if (loader_start(&l, &cfg) != 0) {
        CHECK(0, "loader_start: %s", an_last_error());
        return all;
    }
    Batch *b;
    size_t done = 0;
    *batches = *inside = 0;
    while ((b = loader_next(l))) {
        (*batches)++;
        for (int k = 0; k < 8 && k < g_allocs; k++) /* the batch lives in one of the allocator's blocks */
            *inside += (char *)b->x >= (char *)g_blocks[k] &&
                       (char *)(b->x + (size_t)b->n * 16) <= (char *)g_blocks[k] + g_block_bytes[k];
        memcpy(all + done * 16, b->x, (size_t)b->n * 16 * sizeof(float));
        done += b->n;
        loader_release(l, b);
    }
    CHECK(loader_error(l) == NULL && done == (size_t)count, "%s (%zu of %d)", loader_error(l), done, count);
    loader_stop(l);
    return all;
}

TEST(cuda_loader_allocator_hooks) {
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = DATASET_IDX, ds.n = 10, ds.c = 1, ds.h = ds.w = 4, ds.classes = 3;
    ds.pixels = malloc(160);
    ds.labels = malloc(10 * sizeof(int));
    for (int i = 0; i < 160; i++) ds.pixels[i] = (uint8_t)(an_hash64(8, i) >> 56);
    for (int i = 0; i < 10; i++) ds.labels[i] = i % 3;
    int idx[10];
    for (int i = 0; i < 10; i++) idx[i] = i;
    int batches, inside;
    g_allocs = g_frees = 0, g_fail_after = -1;
    float *plain = loader_epoch(&ds, idx, 10, NULL, NULL, &batches, &inside);
    CHECK(g_allocs == 0 && batches == 4, "default allocator: %d hook calls, %d batches", g_allocs, batches);
    float *hooked = loader_epoch(&ds, idx, 10, counting_alloc, counting_free, &batches, &inside);
    CHECK(g_allocs == 2 && g_frees == 2, "one block per prefetch slot, all freed: %d allocs, %d frees", g_allocs, g_frees);
    CHECK(g_block_bytes[0] >= 3 * 16 * sizeof(float), "block of %zu bytes", g_block_bytes[0]);
    CHECK(inside == batches && batches == 4, "%d of %d batches in the allocator's blocks", inside, batches);
    CHECK(memcmp(plain, hooked, 10 * 16 * sizeof(float)) == 0, "the same images whatever the allocator");
    /* one hook without the other; an allocator that fails (its message, nothing leaked) */
    LoaderConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.ds = &ds, cfg.indices = idx, cfg.count = 10, cfg.batch = 3, cfg.threads = 1, cfg.prefetch = 2;
    cfg.input.channels = 1, cfg.input.aug.crop = 4, cfg.input.std[0] = 1.0f;
    cfg.alloc_host = counting_alloc;
    Loader *l = NULL;
    CHECK(loader_start(&l, &cfg) == -1 && strstr(an_last_error(), "together"), "alloc without free: %s", an_last_error());
    cfg.free_host = counting_free;
    g_allocs = g_frees = 0, g_fail_after = 1;
    CHECK(loader_start(&l, &cfg) == -1 && strstr(an_last_error(), "test allocator"), "failing allocator: %s",
          an_last_error());
    CHECK(g_allocs == 1 && g_frees == 1, "the block that was allocated is freed: %d allocs, %d frees", g_allocs, g_frees);
    g_fail_after = -1;
    free(plain), free(hooked), free(ds.pixels), free(ds.labels);
}
