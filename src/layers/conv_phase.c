/* conv_phase.c: strided convolutions as stride-1 convolutions on the input's phases (space to
 * depth), so that AlexNet's conv1 (11x11, stride 4) runs on Winograd's F(4x4, 3x3).
 * With stride s, tap ky = s a + p (p < s) of output row oy reads input row s (oy + a) + p: row
 * oy + a of phase p. So a k x k filter of stride s over c channels is a kk x kk filter of stride 1,
 * kk = ceil(k / s), over the c s^2 phase planes:
 *   xs[n][(c s + p) s + q][i][j] = x[n][c][s i + p - pad][s j + q - pad]   (0 in the padding)
 *   ws[o][(c s + p) s + q][a][b] = w[o][c][s a + p][s b + q]                (0 where s a + p >= k)
 * and y = conv_stride1(xs, ws) exactly (the zero taps add exact zeros; Winograd rounds as it does for
 * any layer). Backward: dw[o][c][ky][kx] = dws[o][(c s + ky % s) s + kx % s][ky / s][kx / s], dx the
 * same fold of dxs; the bias gradient is dy's, unchanged. conv1 (3 channels, 227x227, stride 4)
 * becomes 48 channels of 57x57 with a 3x3 filter: 432 taps instead of 363, 4 times fewer products. */
#include "layers.h"
#include "winograd.h"
#include "../util/common.h"
#include <string.h>

/* The stride-1 layer on the phases: out_h + kk - 1 phase rows give out_h outputs. Rows past the
 * padded input (its last s - 1 rows at most) meet only zero taps. */
static ConvShape phase_shape(const ConvShape *s) {
    int st = s->stride, kk = (s->k + st - 1) / st;
    ConvShape t = {s->n, s->c * st * st, s->out_h + kk - 1, s->out_w + kk - 1, s->out_c, kk, 1, 0, s->groups, 0, 0,
                   s->relu};
    conv_shape_init(&t);
    return t;
}

int conv_phase(const ConvShape *s, int backward) {
    if (s->stride < 2 || s->k <= s->stride) return 0;
    ConvShape t = phase_shape(s);
    return backward ? conv_winograd(&t) : conv_winograd_forward(&t);
}

/* x (n, c, h, w) -> xs (n, c s^2, t->h, t->w); images, channels and row phases in parallel */
static void phase_input(const ConvShape *s, const ConvShape *t, const float *x, float *xs) {
    int st = s->stride, pad = s->pad;
#pragma omp parallel for collapse(3) schedule(static)
    for (int i = 0; i < s->n; i++)
        for (int c = 0; c < s->c; c++)
            for (int p = 0; p < st; p++) {
                const float *plane = x + ((size_t)i * s->c + c) * s->h * s->w;
                for (int q = 0; q < st; q++) {
                    float *out = xs + (((size_t)i * t->c + (c * st + p) * st + q) * t->h) * t->w;
                    /* columns j with s j + q - pad inside [0, w): [lo, hi) */
                    int lo = q >= pad ? 0 : (pad - q + st - 1) / st;
                    int hi = s->w + pad - q <= 0 ? 0 : (s->w + pad - q + st - 1) / st;
                    if (hi > t->w) hi = t->w;
                    if (lo > hi) lo = hi;
                    for (int r = 0; r < t->h; r++, out += t->w) {
                        int iy = st * r + p - pad;
                        if (iy < 0 || iy >= s->h) { memset(out, 0, t->w * sizeof(float)); continue; }
                        long base = (long)iy * s->w + q - pad; /* input index of column j = 0 */
                        for (int j = 0; j < lo; j++) out[j] = 0.0f;
                        for (int j = lo; j < hi; j++) out[j] = plane[base + (long)st * j];
                        for (int j = hi; j < t->w; j++) out[j] = 0.0f;
                    }
                }
        }
}

/* w (out_c, cg, k, k) -> ws (out_c, cg s^2, kk, kk) */
static void phase_weights(const ConvShape *s, const ConvShape *t, const float *w, float *ws) {
    int st = s->stride, k = s->k, kk = t->k, cg = s->c / s->groups;
    for (int o = 0; o < s->out_c; o++)
        for (int c = 0; c < cg; c++)
            for (int p = 0; p < st; p++)
                for (int q = 0; q < st; q++)
                    for (int a = 0; a < kk; a++)
                        for (int b = 0; b < kk; b++) {
                            int ky = st * a + p, kx = st * b + q;
                            ws[((((size_t)o * cg + c) * st + p) * st + q) * kk * kk + a * kk + b] =
                                ky < k && kx < k ? w[(((size_t)o * cg + c) * k + ky) * k + kx] : 0.0f;
                        }
}

int phase_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y) {
    ConvShape t = phase_shape(s);
    size_t nxs = (size_t)t.n * t.c * t.h * t.w, nws = (size_t)t.out_c * (t.c / t.groups) * t.k * t.k;
    float *xs = an_thread_buffer(AN_BUF_PHASE_X, nxs * sizeof(float));
    float *ws = an_thread_buffer(AN_BUF_PHASE_W, nws * sizeof(float));
    if (!xs || !ws) return an_error("out of memory (the strided convolution's phases, %zu bytes)", (nxs + nws) * 4);
    phase_input(s, &t, x, xs);
    phase_weights(s, &t, w, ws);
    return conv_forward(&t, xs, ws, b, y);
}

int phase_backward(const ConvShape *s, const float *x, const float *w, const float *dy, float *dx, float *dw,
                   float *db) {
    ConvShape t = phase_shape(s);
    int st = s->stride, k = s->k, kk = t.k, cg = s->c / s->groups, pad = s->pad;
    size_t nxs = (size_t)t.n * t.c * t.h * t.w, nws = (size_t)t.out_c * (t.c / t.groups) * t.k * t.k;
    float *xs = an_thread_buffer(AN_BUF_PHASE_X, nxs * sizeof(float));
    float *ws = an_thread_buffer(AN_BUF_PHASE_W, 2 * nws * sizeof(float)); /* ws, then dws */
    float *dxs = dx ? an_thread_buffer(AN_BUF_PHASE_DX, nxs * sizeof(float)) : NULL;
    if (!xs || !ws || (dx && !dxs))
        return an_error("out of memory (the strided convolution's phases, %zu bytes)", (2 * nxs + 2 * nws) * 4);
    float *dws = ws + nws;
    phase_input(s, &t, x, xs);
    if (dx) phase_weights(s, &t, w, ws);
    if (conv_backward(&t, xs, ws, dy, dxs, dws, db)) return -1;
    for (int o = 0; o < s->out_c; o++)
        for (int c = 0; c < cg; c++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                    dw[(((size_t)o * cg + c) * k + ky) * k + kx] =
                        dws[((((size_t)o * cg + c) * st + ky % st) * st + kx % st) * kk * kk + ky / st * kk + kx / st];
    if (!dx) return 0;
    /* inputs past the last window's reach take no gradient: exactly 0 (dxs holds the rounding of
     * the zero taps' products there) */
    int reach_y = st * (s->out_h - 1) + k - pad, reach_x = st * (s->out_w - 1) + k - pad;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < s->n; i++)
        for (int c = 0; c < s->c; c++) {
            float *plane = dx + ((size_t)i * s->c + c) * s->h * s->w;
            for (int iy = 0; iy < s->h; iy++) {
                int r = (iy + pad) / st, p = (iy + pad) % st;
                for (int ix = 0; ix < s->w; ix++) {
                    int j = (ix + pad) / st, q = (ix + pad) % st;
                    plane[(size_t)iy * s->w + ix] =
                        iy < reach_y && ix < reach_x ? dxs[(((size_t)i * t.c + (c * st + p) * st + q) * t.h + r) * t.w + j]
                                                     : 0.0f;
                }
            }
        }
    return 0;
}
