/* batch.c: input statistics (per-channel or the paper's mean image and eigenpairs) and the loader
 * settings that apply them. */
#include "batch.h"
#include "../data/image.h"
#include "../data/shard.h"
#include "../util/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

Norm norm_imagenet(int c) {
    Norm n = {c, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}, 0, 1.0f, NULL, {{0}, {{0}}}};
    if (c == 1) n.mean[0] = 0.449f, n.std[0] = 0.226f;
    return n;
}

void norm_free(Norm *norm) {
    free(norm->mean_image);
    norm->mean_image = NULL;
}

static void channel_stats(const Dataset *ds, int c, Norm *norm) {
    size_t plane = (size_t)ds->h * ds->w;
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0, ss = 0.0;
#pragma omp parallel for reduction(+ : s, ss) schedule(static)
        for (int i = 0; i < ds->n; i++) {
            const uint8_t *p = ds->pixels + ((size_t)i * c + ch) * plane;
            long a = 0, b = 0;
            for (size_t q = 0; q < plane; q++) a += p[q], b += p[q] * p[q];
            s += a, ss += b;
        }
        double count = (double)ds->n * plane, mean = s / count / 255.0;
        double var = ss / count / (255.0 * 255.0) - mean * mean;
        norm->mean[ch] = (float)mean;
        norm->std[ch] = (float)sqrt(var > 1e-12 ? var : 1.0);
    }
}

/* Mean image and eigenpairs from a fixed, evenly spread sample of a folder's base images; images
 * that fail to decode are left out (the loader warns about them when it meets them). */
static int sample_stats(const Dataset *ds, int sample, Norm *norm) {
    int n = ds->n < sample ? ds->n : sample;
    size_t img = (size_t)3 * SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE;
    uint8_t *buf = malloc(img * (n ? n : 1));
    char *ok = calloc(n ? n : 1, 1);
    ImageStats st;
    if (!buf || !ok || image_stats_init(&st, SHARD_IMAGE_SIZE)) {
        free(buf), free(ok);
        return an_error("out of memory (image statistics)");
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int k = 0; k < n; k++) ok[k] = dataset_get_base(ds, (int)((long)k * ds->n / n), buf + img * k) == 0;
    for (int k = 0; k < n; k++)
        if (ok[k]) image_stats_add(&st, buf + img * k);
    free(buf), free(ok);
    int rc = st.count ? 0 : an_error("no image of the training set decodes");
    if (!rc) image_stats_finish(&st, norm->mean_image, &norm->pca);
    image_stats_free(&st);
    return rc;
}

int norm_for_dataset(const Dataset *ds, int c, int sample, Norm *norm) {
    *norm = norm_imagenet(c);
    int images = ds->kind == DATASET_FOLDER || ds->kind == DATASET_SHARD;
    if (!images || c != 3) {
        if (ds->pixels && ds->c == c) channel_stats(ds, c, norm);
        return 0;
    }
    norm->paper = 1, norm->scale = 1.0f;
    size_t count = (size_t)3 * SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE;
    if (!(norm->mean_image = malloc(count * sizeof(float)))) return an_error("out of memory (mean image)");
    if (ds->mean_image && ds->pca) {
        memcpy(norm->mean_image, ds->mean_image, count * sizeof(float));
        norm->pca = *ds->pca;
        return 0;
    }
    if (sample_stats(ds, sample, norm)) { norm_free(norm); return -1; }
    return 0;
}

InputConfig norm_input_config(const Norm *norm, int channels, int crop, int random_crop, int flip,
                              float lighting_std) {
    InputConfig in;
    memset(&in, 0, sizeof in);
    in.paper = norm->paper;
    in.channels = channels;
    memcpy(in.mean, norm->mean, sizeof in.mean);
    memcpy(in.std, norm->std, sizeof in.std);
    in.aug = (AugmentConfig){.size = SHARD_IMAGE_SIZE, .crop = crop, .random_crop = random_crop, .flip = flip,
                             .lighting_std = norm->paper ? lighting_std : 0.0f, .pca = &norm->pca,
                             .mean_image = norm->mean_image, .scale = norm->paper ? norm->scale : 1.0f};
    return in;
}

void normalize_image(const uint8_t *src, int c, int s, const Norm *norm, float *dst) {
    size_t plane = (size_t)s * s;
    for (int ch = 0; ch < c; ch++) {
        float scale = 1.0f / (255.0f * norm->std[ch]), shift = norm->mean[ch] / norm->std[ch];
        for (size_t q = 0; q < plane; q++) dst[ch * plane + q] = src[ch * plane + q] * scale - shift;
    }
}

/* A decoded image as network input (`classify`, the library's alexnet_preprocess_*): torchvision's Resize + CenterCrop + per-channel
 * normalisation (grey by luma for one channel), or the paper's 256x256 base image's centre crop
 * minus the mean image. img: (h, w, 3) interleaved; out: (in_c, S, S). */
int norm_image_input(const Net *net, const Norm *norm, const Image *img, const char *name, float *out) {
    int s = net->in_size;
    if (net->in_c != 1 && net->in_c != 3)
        return an_error("%s: images are input for networks of 1 or 3 channels, this one has %d", name, net->in_c);
    if (norm->paper && (net->in_c != 3 || s > 256))
        return an_error("%s: the paper's input needs 3 channels and an input of at most 256 (this network: %d, %d)",
                        name, net->in_c, s);
    int base = norm->paper ? 256 : s, resize = norm->paper ? 256 : image_resize_size(s);
    uint8_t *pix = malloc((size_t)3 * base * base); /* (3, base, base) planar */
    if (!pix || image_resize_center_crop(img, resize, base, pix)) {
        free(pix);
        return an_error("%s: out of memory", name);
    }
    if (norm->paper) {
        InputConfig in = norm_input_config(norm, 3, s, 0, 0, 0.0f);
        augment_apply(&in.aug, pix, augment_center_view(256, s), NULL, out);
    } else {
        if (net->in_c == 1) /* luma, as the datasets do (and classify) */
            for (int q = 0; q < s * s; q++)
                pix[q] = (uint8_t)(0.299f * pix[q] + 0.587f * pix[s * s + q] + 0.114f * pix[2 * s * s + q] + 0.5f);
        normalize_image(pix, net->in_c, s, norm, out);
    }
    free(pix);
    return 0;
}
