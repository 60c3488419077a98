/* pool.c: max pooling (window k, stride s; the paper's overlapping 3/2) and PyTorch-style adaptive
 * average pooling. Max pooling remembers where each maximum came from for the backward pass.
 * NaN propagates as in PyTorch: a window holding a NaN outputs NaN (a NaN is larger than any
 * number), so a diverged network shows in its loss instead of being hidden by the pooling. */
#include "layers.h"
#include "../util/common.h"
#include <immintrin.h>
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

/* the even (odd) lanes of a then b: a0 a2 a4 a6 b0 b2 b4 b6 */
__attribute__((target("avx2"), always_inline)) static inline __m256 even_lanes(__m256 a, __m256 b) {
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
__attribute__((target("avx2"), always_inline)) static inline __m256 odd_lanes(__m256 a, __m256 b) {
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* the candidate (v at flat indices id) replaces the maximum so far (m, b) where it is larger or is
 * the first NaN: candidates come in row-major order, so a tie keeps the earlier (smaller) index */
__attribute__((target("avx2"), always_inline)) static inline void take_larger(__m256 v, __m256i id, __m256 *m,
                                                                              __m256i *b) {
    __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, *m, _CMP_GT_OQ),
                            _mm256_andnot_ps(_mm256_cmp_ps(*m, *m, _CMP_UNORD_Q), _mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
    *m = _mm256_blendv_ps(*m, v, t);
    *b = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*b), _mm256_castsi256_ps(id), t));
}

/* lanes j of 0..7 with off + j < lim, as a load/store mask */
__attribute__((target("avx2"), always_inline)) static inline __m256i lanes_below(int lim, int off) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lim - off), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One plane of the paper's overlapping 3/2 pooling (h x w -> oh x ow), 8 outputs a vector: each
 * of the window's 3 rows gives its even columns 2ox, odd columns 2ox+1 and the next even columns
 * 2ox+2 by deinterleaving two pairs of loads, and the 9 candidates are taken in row-major order,
 * the order of the plain scan (the same values and indices, NaN rule included). The last vector
 * of a row loads and stores under masks, so nothing past the plane is touched. */
__attribute__((target("avx2"))) static void maxpool32_plane_avx2(int w, int oh, int ow, const float *xp, float *yp,
                                                                int32_t *ap) {
    const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), one = _mm256_set1_epi32(1);
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox += 8) {
            int c0 = 2 * ox, lim = w - c0; /* columns c0 .. c0 + 16 are read; c0 + lim is past the row */
            int full = ox + 8 <= ow && lim >= 18;
            __m256i m0 = lanes_below(lim, 0), m1 = lanes_below(lim, 8), m2 = lanes_below(lim, 2), m3 = lanes_below(lim, 10);
            __m256 m = _mm256_setzero_ps();
            __m256i b = _mm256_setzero_si256();
            for (int r = 0; r < 3; r++) {
                const float *row = xp + (size_t)(2 * oy + r) * w + c0;
                __m256 a0, a1, a2, a3;
                if (full) {
                    a0 = _mm256_loadu_ps(row), a1 = _mm256_loadu_ps(row + 8);
                    a2 = _mm256_loadu_ps(row + 2), a3 = _mm256_loadu_ps(row + 10);
                } else {
                    a0 = _mm256_maskload_ps(row, m0), a1 = _mm256_maskload_ps(row + 8, m1);
                    a2 = _mm256_maskload_ps(row + 2, m2), a3 = _mm256_maskload_ps(row + 10, m3);
                }
                __m256i id = _mm256_add_epi32(_mm256_set1_epi32((2 * oy + r) * w + c0), lane2);
                __m256 e = even_lanes(a0, a1);
                if (r == 0) {
                    m = e, b = id;
                } else {
                    take_larger(e, id, &m, &b);
                }
                take_larger(odd_lanes(a0, a1), _mm256_add_epi32(id, one), &m, &b);
                take_larger(even_lanes(a2, a3), _mm256_add_epi32(id, _mm256_add_epi32(one, one)), &m, &b);
            }
            float *yo = yp + (size_t)oy * ow + ox;
            int32_t *ao = ap + (size_t)oy * ow + ox;
            if (ox + 8 <= ow) {
                _mm256_storeu_ps(yo, m);
                _mm256_storeu_si256((__m256i *)ao, b);
            } else {
                __m256i sm = lanes_below(ow - ox, 0);
                _mm256_maskstore_ps(yo, sm, m);
                _mm256_maskstore_epi32((int *)ao, sm, b);
            }
        }
}

/* AVX2 (without a test's override): the vector 3/2 pooling above */
static int g_pool_avx2_off;
void maxpool_avx2_override(int off) { g_pool_avx2_off = off; }
static int pool_avx2(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2");
    return known && !g_pool_avx2_off;
}

void maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *argmax) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    if (k == 3 && s == 2 && pool_avx2()) {
#pragma omp parallel for schedule(static)
        for (long pl = 0; pl < (long)n * c; pl++)
            maxpool32_plane_avx2(w, oh, ow, x + pl * h * w, y + pl * oh * ow, argmax + pl * oh * ow);
        return;
    }
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
