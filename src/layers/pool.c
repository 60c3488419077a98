/* pool.c: max pooling (window k, stride s; the paper's overlapping 3/2) and PyTorch-style adaptive
 * average pooling. Max pooling remembers where each maximum came from for the backward pass.
 * NaN propagates as in PyTorch: a window holding a NaN outputs NaN (a NaN is larger than any
 * number), so a diverged network shows in its loss instead of being hidden by the pooling. */
#include "layers.h"
#include "../util/common.h"
#include <string.h>

/* One output row of max pooling: the maximum over rows [r0, r0+k) of each input column (value and
 * flat index in vm, vi), then over k columns of that, stride s. Ties go to the smaller flat index,
 * which is the first maximum in row-major order, as a plain scan of the window finds it; NaN beats
 * every number, and of several NaNs the first in row-major order is taken. (v != v: NaN.) */
/* whether (v at flat index id) beats the current (m at b): larger, or NaN over a number, or equal
 * (both NaN included) at a smaller index */
static inline int pool_better(float v, int32_t id, float m, int32_t b) {
    int vnan = v != v, mnan = m != m;
    return (v > m) | (vnan & !mnan) | (((v == m) | (vnan & mnan)) & (id < b));
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void maxpool_row(int w, int ow, int k, int s, int r0, const float *restrict xp, float *restrict vm,
                        int32_t *restrict vi, float *restrict y, int32_t *restrict arg) {
    int iw = (ow - 1) * s + k; /* input columns used */
    for (int ix = 0; ix < iw; ix++) {
        vm[ix] = xp[(size_t)r0 * w + ix];
        vi[ix] = r0 * w + ix;
    }
    for (int ky = 1; ky < k; ky++) {
        const float *row = xp + (size_t)(r0 + ky) * w;
        int base = (r0 + ky) * w;
        for (int ix = 0; ix < iw; ix++) {
            int take = (row[ix] > vm[ix]) | ((row[ix] != row[ix]) & (vm[ix] == vm[ix]));
            vm[ix] = take ? row[ix] : vm[ix];
            vi[ix] = take ? base + ix : vi[ix];
        }
    }
    if (k == 3 && s == 2) { /* the paper's overlapping pooling, with constant strides so it vectorises */
        for (int ox = 0; ox < ow; ox++) {
            float m = vm[2 * ox], v1 = vm[2 * ox + 1], v2 = vm[2 * ox + 2];
            int32_t b = vi[2 * ox], i1 = vi[2 * ox + 1], i2 = vi[2 * ox + 2];
            int t1 = pool_better(v1, i1, m, b);
            m = t1 ? v1 : m;
            b = t1 ? i1 : b;
            int t2 = pool_better(v2, i2, m, b);
            y[ox] = t2 ? v2 : m;
            arg[ox] = t2 ? i2 : b;
        }
        return;
    }
    for (int ox = 0; ox < ow; ox++) {
        float m = vm[ox * s];
        int32_t b = vi[ox * s];
        for (int kx = 1; kx < k; kx++) {
            float v = vm[ox * s + kx];
            int32_t id = vi[ox * s + kx];
            int take = pool_better(v, id, m, b);
            m = take ? v : m;
            b = take ? id : b;
        }
        y[ox] = m;
        arg[ox] = b;
    }
}

void maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *argmax) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
#pragma omp parallel
    {
        /* per-thread row buffers (values, indices); without them, the plain scan */
        float *vm = an_thread_buffer(AN_BUF_POOL, (size_t)w * (sizeof(float) + sizeof(int32_t)));
#pragma omp for schedule(static)
        for (long pl = 0; pl < (long)n * c; pl++) {
            const float *xp = x + pl * h * w;
            float *yp = y + pl * oh * ow;
            int32_t *ap = argmax + pl * oh * ow;
            if (vm && ow >= 8) { /* narrow planes (pool5's 6 outputs a row): the plain scan is faster */
                for (int oy = 0; oy < oh; oy++)
                    maxpool_row(w, ow, k, s, oy * s, xp, vm, (int32_t *)(vm + w), yp + oy * ow, ap + oy * ow);
                continue;
            }
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int best = (oy * s) * w + ox * s;
                    float m = xp[best];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int idx = (oy * s + ky) * w + ox * s + kx;
                            if (pool_better(xp[idx], idx, m, best)) { m = xp[idx]; best = idx; }
                        }
                    yp[oy * ow + ox] = m;
                    ap[oy * ow + ox] = best;
                }
        }
    }
}

void maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *argmax, const float *dy,
                      float *dx, const float *relu_y) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *dxp = dx + pl * h * w;
        memset(dxp, 0, (size_t)h * w * sizeof(float));
        const float *dyp = dy + pl * oh * ow;
        const int32_t *ap = argmax + pl * oh * ow;
        if (relu_y) {
            const float *yp = relu_y + pl * oh * ow;
            for (int q = 0; q < oh * ow; q++)
                if (yp[q] > 0.0f) dxp[ap[q]] += dyp[q];
        } else {
            for (int q = 0; q < oh * ow; q++) dxp[ap[q]] += dyp[q];
        }
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
