/* batch.c: batch assembly (decode/resize via the dataset, normalise) and normalisation statistics. */
#include "batch.h"
#include "../util/common.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Norm norm_imagenet(int c) {
    Norm n = {c, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    if (c == 1) n.mean[0] = 0.449f, n.std[0] = 0.226f;
    return n;
}

Norm norm_for_dataset(const Dataset *ds, int c) {
    if (!ds->pixels || ds->c != c) return norm_imagenet(c);
    Norm norm = {c, {0}, {0}};
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
        norm.mean[ch] = (float)mean;
        norm.std[ch] = (float)sqrt(var > 1e-12 ? var : 1.0);
    }
    return norm;
}

void normalize_image(const uint8_t *src, int c, int s, const Norm *norm, float *dst) {
    size_t plane = (size_t)s * s;
    for (int ch = 0; ch < c; ch++) {
        float scale = 1.0f / (255.0f * norm->std[ch]), shift = norm->mean[ch] / norm->std[ch];
        for (size_t q = 0; q < plane; q++) dst[ch * plane + q] = src[ch * plane + q] * scale - shift;
    }
}

int batch_fill(Net *net, const Dataset *ds, const int *idx, int n, const Norm *norm, int *labels) {
    int c = net->in_c, s = net->in_size;
    size_t img = (size_t)c * s * s;
    char first_error[1024] = "";
    int failed_at = -1;
#pragma omp parallel
    {
        uint8_t *pix = malloc(img);
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
            int ok = pix && dataset_get_image(ds, idx[i], c, s, pix) == 0;
            if (!ok) {
#pragma omp critical
                if (failed_at < 0 || i < failed_at) {
                    failed_at = i;
                    snprintf(first_error, sizeof first_error, "%s", pix ? an_last_error() : "out of memory");
                }
                continue;
            }
            normalize_image(pix, c, s, norm, net->input + i * img);
            if (labels) labels[i] = ds->labels[idx[i]];
        }
        free(pix);
    }
    return failed_at >= 0 ? an_error("%s", first_error) : 0;
}
