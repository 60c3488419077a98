/* test_reference.c: the whole alexnet and alexnet-owt networks against PyTorch.
 * tools/make_reference.py filled every weight and the input by an integer formula (recomputed
 * here), ran forward, loss, backward and two steps of the paper's SGD in PyTorch, and stored the
 * logits, losses, gradient norms and sampled entries in tests/vectors/<model>.safetensors.
 * Dropout is off on both sides (identity); everything else is the training path. */
#include "harness.h"
#include "../src/model/model.h"
#include "../src/train/safetensors.h"
#include "../src/train/sgd.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The script's formula: murmur3-mixed multiplicative hash, u in [0, 1). */
static double ref_u(uint64_t s, uint64_t i) {
    uint32_t h = (uint32_t)((i * 2654435761ull + s * 40503ull + 12345ull) & 0xFFFFFFFFull);
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h / 4294967296.0;
}

static const StTensor *need(const StFile *f, const char *name, size_t count) {
    const StTensor *t = st_find(f, name);
    CHECK(t != NULL, "vector file has no %s", name);
    if (t) CHECK(t->nbytes / st_dtype_size(t->dtype) == count, "%s has %zu values", name, t->nbytes / st_dtype_size(t->dtype));
    return t && t->nbytes / st_dtype_size(t->dtype) == count ? t : NULL;
}

/* max |a - b| over the entries, relative to max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (m > 0 ? m : 1.0);
}

static double norm2(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static void check_samples(const StFile *f, const char *prefix, const char *pname, const float *values, size_t count) {
    char key[160], idxkey[160];
    snprintf(idxkey, sizeof idxkey, "grad.%s.idx", pname);
    snprintf(key, sizeof key, "%s.%s.val", prefix, pname);
    const StTensor *ti = need(f, idxkey, 64), *tv = need(f, key, 64);
    if (!ti || !tv) return;
    int64_t idx[64];
    memcpy(idx, ti->data, sizeof idx);
    float got[64];
    for (int j = 0; j < 64; j++) {
        CHECK(idx[j] >= 0 && (size_t)idx[j] < count, "%s index %lld out of range", idxkey, (long long)idx[j]);
        got[j] = idx[j] >= 0 && (size_t)idx[j] < count ? values[idx[j]] : NAN;
    }
    double e = rel_err(got, tv->data, 64);
    CHECK(e < 1e-4, "%s: sampled entries differ, relative error %.3g", key, e);
    snprintf(key, sizeof key, "%s.%s.norm", prefix, pname);
    const StTensor *tn = need(f, key, 1);
    if (tn) {
        double want, have = norm2(values, count);
        memcpy(&want, tn->data, sizeof want);
        CHECK(fabs(have - want) <= 1e-4 * want, "%s: %.8g vs PyTorch %.8g", key, have, want);
    }
}

static void check_model(const char *model) {
    char path[256];
    snprintf(path, sizeof path, "tests/vectors/%s.safetensors", model);
    StFile f;
    int rc = st_read(path, &f);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    Net net;
    rc = net_create(&net, model_find(model), 3, 1000, 0, 2);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) { st_free(&f); return; }
    /* weights and input by the formula */
    char name[96];
    int ndim;
    int64_t shape[4];
    size_t count;
    for (int t = 0; t < net_num_tensors(&net); t++) {
        float *p = net_tensor(&net, t, 0, name, &ndim, shape, &count);
        double scale = (t % 2 == 0) ? sqrt(6.0 / (double)(count / shape[0])) : 0.1;
        for (size_t i = 0; i < count; i++) p[i] = (float)((2.0 * ref_u(t, i) - 1.0) * scale);
    }
    size_t in_count = (size_t)2 * 3 * net.in_size * net.in_size;
    double sum = 0, sumsq = 0;
    for (size_t i = 0; i < in_count; i++) {
        net.input[i] = (float)(2.0 * ref_u(1000, i) - 1.0);
        sum += net.input[i], sumsq += (double)net.input[i] * net.input[i];
    }
    const StTensor *ck = need(&f, "input_checksum", 2);
    if (ck) {
        double c[2];
        memcpy(c, ck->data, sizeof c);
        CHECK(fabs(sum - c[0]) < 1e-6 * fabs(sumsq) && fabs(sumsq - c[1]) < 1e-9 * c[1],
              "input formula differs: sum %.10g vs %.10g, sumsq %.10g vs %.10g", sum, c[0], sumsq, c[1]);
    }
    int labels[2] = {11, 48};
    /* step 1: logits, loss, gradients */
    const float *logits = net_forward(&net, 2, 0, 0);
    CHECK(logits != NULL, "%s", an_last_error());
    if (!logits) goto done;
    float loss = 0.0f;
    net_loss(&net, labels, &loss);
    const StTensor *tl = need(&f, "logits", 2000), *ts = need(&f, "loss", 1);
    if (tl) {
        double e = rel_err(logits, tl->data, 2000);
        CHECK(e < 1e-4, "%s logits differ from PyTorch: relative error %.3g", model, e);
    }
    if (ts) {
        float want = *(const float *)ts->data;
        CHECK(fabsf(loss - want) <= 1e-4f * fabsf(want), "%s loss %.7f vs PyTorch %.7f", model, loss, want);
    }
    CHECK(net_backward(&net) == 0, "%s", an_last_error());
    for (int t = 0; t < net_num_tensors(&net); t++) {
        const float *g = net_tensor(&net, t, 1, name, &ndim, shape, &count);
        check_samples(&f, "grad", name, g, count);
    }
    /* two SGD steps of the paper's rule */
    float *v = calloc(net.nparams, sizeof(float));
    sgd_update(net.nparams, net.params, net.grads, v, 0.01f, 0.9f, 0.0005f);
    net_forward(&net, 2, 0, 0);
    float loss2 = 0.0f;
    net_loss(&net, labels, &loss2);
    const StTensor *ts2 = need(&f, "loss_step2", 1);
    if (ts2) {
        float want = *(const float *)ts2->data;
        CHECK(fabsf(loss2 - want) <= 1e-4f * fabsf(want), "%s loss after one step %.7f vs PyTorch %.7f", model, loss2, want);
    }
    net_backward(&net);
    sgd_update(net.nparams, net.params, net.grads, v, 0.01f, 0.9f, 0.0005f);
    for (int t = 0; t < net_num_tensors(&net); t++) {
        const float *p = net_tensor(&net, t, 0, name, &ndim, shape, &count);
        check_samples(&f, "param2", name, p, count);
    }
    free(v);
done:
    net_free(&net);
    st_free(&f);
}

TEST(reference_alexnet_vs_pytorch) { check_model("alexnet"); }
TEST(reference_alexnet_owt_vs_pytorch) { check_model("alexnet-owt"); }

TEST(parameter_counts) {
    const char *models[] = {"alexnet", "alexnet-owt"};
    size_t want[] = {60965224, 61100840};
    for (int i = 0; i < 2; i++) {
        Net net;
        int rc = net_create(&net, model_find(models[i]), 3, 1000, 0, 1);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc) continue;
        CHECK(net.nparams == want[i], "%s has %zu parameters, want %zu", models[i], net.nparams, want[i]);
        CHECK(net.layers[net.nlayers - 1].out_c == 1000, "classifier outputs");
        net_free(&net);
    }
}
