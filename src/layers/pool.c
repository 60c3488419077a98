/* pool.c: max pooling (window k, stride s; the paper's overlapping 3/2) and PyTorch-style adaptive
 * average pooling. Max pooling remembers where each maximum came from for the backward pass. */
#include "layers.h"
#include <string.h>

void maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *argmax) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)n * c; pl++) {
        const float *xp = x + pl * h * w;
        float *yp = y + pl * oh * ow;
        int32_t *ap = argmax + pl * oh * ow;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int best = (oy * s) * w + ox * s;
                float m = xp[best];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int idx = (oy * s + ky) * w + ox * s + kx;
                        if (xp[idx] > m) { m = xp[idx]; best = idx; }
                    }
                yp[oy * ow + ox] = m;
                ap[oy * ow + ox] = best;
            }
    }
}

void maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *argmax, const float *dy,
                      float *dx) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *dxp = dx + pl * h * w;
        memset(dxp, 0, (size_t)h * w * sizeof(float));
        const float *dyp = dy + pl * oh * ow;
        const int32_t *ap = argmax + pl * oh * ow;
        for (int q = 0; q < oh * ow; q++) dxp[ap[q]] += dyp[q];
    }
}

static int bin_start(int i, int in, int out) { return (i * in) / out; }
static int bin_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }

void avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y) {
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)n * c; pl++) {
        const float *xp = x + pl * h * w;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0 = bin_start(oy, h, oh), y1 = bin_end(oy, h, oh);
                int x0 = bin_start(ox, w, ow), x1 = bin_end(ox, w, ow);
                float acc = 0.0f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) acc += xp[iy * w + ix];
                y[pl * oh * ow + oy * ow + ox] = acc / (float)((y1 - y0) * (x1 - x0));
            }
    }
}

void avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx) {
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *dxp = dx + pl * h * w;
        memset(dxp, 0, (size_t)h * w * sizeof(float));
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0 = bin_start(oy, h, oh), y1 = bin_end(oy, h, oh);
                int x0 = bin_start(ox, w, ow), x1 = bin_end(ox, w, ow);
                float g = dy[pl * oh * ow + oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) dxp[iy * w + ix] += g;
            }
    }
}
