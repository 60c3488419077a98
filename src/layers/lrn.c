/* lrn.c: local response normalisation across channels (the paper's section 3.3).
 * scale_c = k + (alpha / size) * sum over the `size` channels centred on c of x^2, y = x scale^-beta.
 * Backward: dx_c = dy_c scale_c^-beta
 *                  - (2 alpha beta / size) x_c sum over the window of c' containing c of dy_c' y_c' / scale_c'.
 * With p.groups > 1 windows stop at the edges of each group (layers.h: lrn_window).
 * Windows are summed directly (no running sum), so each value is a fixed short sum, and the same
 * sum whatever the thread count. The plane loops are compiled for AVX-512, AVX2 and baseline x86-64
 * and chosen at run time; the backward pass forms dy y / scale once per element of an image (in a
 * per-thread plane buffer) and then sums windows of it. Where the CPU has AVX-512 and beta = 0.75,
 * k > 0 (the paper's LRN), scale^-beta comes without square roots or divisions and each plane is
 * one pass whose output lines are streamed (the forward pass always, the backward pass when one
 * thread has a whole image): the LRN is bound by memory, 100-150 MB a layer at batch 128. */
#include "layers.h"
#include "../util/common.h"
#include <float.h>
#include <stdint.h>
#include <math.h>
#include <omp.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* out[q] = in[q]^-beta over a plane; the paper's beta = 0.75 is 1 / (sqrt(s) sqrt(sqrt(s))),
 * several times faster than powf and vectorised. The reference for lrn_pow_neg075_fast. */
CLONES static void pow_neg_plane_exact(int hw, float beta, const float *restrict in, float *restrict out) {
    if (beta == 0.75f) {
        for (int q = 0; q < hw; q++) {
            float r = sqrtf(in[q]);
            out[q] = 1.0f / (r * sqrtf(r));
        }
    } else {
        for (int q = 0; q < hw; q++) out[q] = powf(in[q], -beta);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* s^-3/4 without square roots or divisions, which take 2 of the 3 cycles per value of the plain
 * form on AVX-512 (conv1's LRN in `alexnet`: 37 million values a step, forward and backward):
 * r = s^-1/2 from the 14-bit estimate and one Newton step, then (s r)^-1/2 = s^-1/4 the same way;
 * s^-3/4 = r s^-1/4, within 3 ulps of the exact float result (test: layers_lrn_pow_fast) for
 * 0 < s; s is taken as at most FLT_MAX (infinity gives about 1.6e-29, where the plain form gives
 * 0); NaN stays NaN. */
__attribute__((target("avx512f"))) static inline __m512 pow_neg075_16(__m512 s) {
    const __m512 half = _mm512_set1_ps(0.5f), three_halves = _mm512_set1_ps(1.5f);
    s = _mm512_min_ps(_mm512_set1_ps(FLT_MAX), s); /* NaN: the second operand */
    __m512 r = _mm512_rsqrt14_ps(s);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(_mm512_mul_ps(half, s), _mm512_mul_ps(r, r), three_halves));
    __m512 t = _mm512_mul_ps(s, r); /* s^1/2 */
    __m512 u = _mm512_rsqrt14_ps(t);
    u = _mm512_mul_ps(u, _mm512_fnmadd_ps(_mm512_mul_ps(half, t), _mm512_mul_ps(u, u), three_halves));
    return _mm512_mul_ps(r, u);
}

/* The first len of 16 lanes */
static inline __mmask16 lanes(int len) { return len >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << len) - 1u); }
/* Values before p's first 64-byte line boundary (0 when p is on one): the one-pass planes below
 * step by 16 values from there, so that their full vectors can be streamed */
static inline int line_lead(const float *p) { return (int)(((64 - ((uintptr_t)p & 63)) & 63) / 4); }

__attribute__((target("avx512f"))) static void pow_neg075_avx512(int hw, const float *in, float *out) {
    for (int q = 0; q < hw; q += 16) {
        __mmask16 m = lanes(hw - q);
        __m512 s = _mm512_mask_blend_ps(m, _mm512_set1_ps(1.0f), _mm512_maskz_loadu_ps(m, in + q));
        _mm512_mask_storeu_ps(out + q, m, pow_neg075_16(s));
    }
}

/* lrn_forward_plane in one pass with the fast power: s and y written by non-temporal stores
 * from y's first 64-byte boundary on (a step's LRN output is 100-150 MB, read back from memory
 * anyway, and ordinary stores first read every line they write). s as lrn_forward_plane forms it
 * (products, then sums in window order: the same bits). */
__attribute__((target("avx512f"))) static void lrn_forward_plane_avx512(int hw, int nj, const float *x0,
                                                                        const float *xc, float k, float a, float *s,
                                                                        float *y) {
    int lead = line_lead(y);
    int stream = ((uintptr_t)s & 63) == ((uintptr_t)y & 63);
    const __m512 kv = _mm512_set1_ps(k), av = _mm512_set1_ps(a);
    for (int q = 0; q < hw;) {
        int len = q == 0 && lead ? lead : 16;
        if (len > hw - q) len = hw - q;
        __mmask16 m = lanes(len);
        __m512 acc = _mm512_setzero_ps();
        for (int j = 0; j < nj; j++) {
            __m512 v = _mm512_maskz_loadu_ps(m, x0 + (size_t)j * hw + q);
            acc = _mm512_add_ps(acc, _mm512_mul_ps(v, v));
        }
        __m512 sv = _mm512_add_ps(kv, _mm512_mul_ps(av, acc));
        __m512 yv = _mm512_mul_ps(pow_neg075_16(_mm512_mask_blend_ps(m, _mm512_set1_ps(1.0f), sv)),
                                  _mm512_maskz_loadu_ps(m, xc + q));
        if (len == 16 && stream && ((uintptr_t)(y + q) & 63) == 0) {
            _mm512_stream_ps(s + q, sv);
            _mm512_stream_ps(y + q, yv);
        } else {
            _mm512_mask_storeu_ps(s + q, m, sv);
            _mm512_mask_storeu_ps(y + q, m, yv);
        }
        q += len;
    }
    _mm_sfence();
}

/* lrn_backward_plane in one pass with the fast power, the same operations in the same order (the
 * same bits), dx written by non-temporal stores from its first 64-byte boundary on */
__attribute__((target("avx512f"))) static void lrn_backward_plane_avx512(int hw, int nj, const float *t0,
                                                                         const float *x, const float *s,
                                                                         const float *dy, float coef, int relu_input,
                                                                         float *d) {
    int lead = line_lead(d);
    const __m512 cv = _mm512_set1_ps(coef), zero = _mm512_setzero_ps();
    for (int q = 0; q < hw;) {
        int len = q == 0 && lead ? lead : 16;
        if (len > hw - q) len = hw - q;
        __mmask16 m = lanes(len);
        __m512 sv = _mm512_mask_blend_ps(m, _mm512_set1_ps(1.0f), _mm512_maskz_loadu_ps(m, s + q));
        __m512 xv = _mm512_maskz_loadu_ps(m, x + q), cx = _mm512_mul_ps(cv, xv);
        __m512 dv = _mm512_mul_ps(pow_neg075_16(sv), _mm512_maskz_loadu_ps(m, dy + q));
        for (int j = 0; j < nj; j++)
            dv = _mm512_sub_ps(dv, _mm512_mul_ps(cx, _mm512_maskz_loadu_ps(m, t0 + (size_t)j * hw + q)));
        if (relu_input) dv = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(xv, zero, _CMP_GT_OQ), zero, dv);
        if (len == 16 && ((uintptr_t)(d + q) & 63) == 0) _mm512_stream_ps(d + q, dv);
        else _mm512_mask_storeu_ps(d + q, m, dv);
        q += len;
    }
    _mm_sfence();
}
#endif

int lrn_pow_fast_ok(float beta, float k) {
#if defined(__x86_64__) && defined(__GNUC__)
    return beta == 0.75f && k > 0.0f && an_cpu_avx512();
#else
    (void)beta, (void)k;
    return 0;
#endif
}

void lrn_pow_neg075_fast(int hw, const float *in, float *out) {
#if defined(__x86_64__) && defined(__GNUC__)
    pow_neg075_avx512(hw, in, out);
#else
    pow_neg_plane_exact(hw, 0.75f, in, out);
#endif
}

/* in^-beta: the fast form where the sums are known positive (k > 0) and the CPU has AVX-512 */
static void pow_neg_plane(int hw, float beta, float k, const float *restrict in, float *restrict out) {
    if (lrn_pow_fast_ok(beta, k)) lrn_pow_neg075_fast(hw, in, out);
    else pow_neg_plane_exact(hw, beta, in, out);
}

/* s = k + a * sum_j xj^2 over the planes [x0, x0 + nj*hw); y = xc * s^-beta */
CLONES static void lrn_forward_plane(int hw, int nj, const float *restrict x0, const float *restrict xc,
                                     float k, float a, float beta, float *restrict s, float *restrict y) {
    for (int q = 0; q < hw; q++) s[q] = 0.0f;
    for (int j = 0; j < nj; j++) {
        const float *xj = x0 + (size_t)j * hw;
        for (int q = 0; q < hw; q++) s[q] += xj[q] * xj[q];
    }
    for (int q = 0; q < hw; q++) s[q] = k + a * s[q];
    pow_neg_plane(hw, beta, k, s, y);
    for (int q = 0; q < hw; q++) y[q] *= xc[q];
}

void lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *scale) {
    size_t img = (size_t)c * hw;
    int fast = lrn_pow_fast_ok(p.beta, p.k); /* one pass a plane (AVX-512 only) */
    (void)fast;                              /* (no such pass off x86-64) */
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            int lo, hi;
            lrn_window(ch, c, p, &lo, &hi);
            size_t off = i * img + (size_t)ch * hw;
#if defined(__x86_64__) && defined(__GNUC__)
            if (fast) {
                lrn_forward_plane_avx512(hw, hi - lo + 1, x + i * img + (size_t)lo * hw, x + off, p.k, p.alpha / p.size,
                                         scale + off, y + off);
                continue;
            }
#endif
            lrn_forward_plane(hw, hi - lo + 1, x + i * img + (size_t)lo * hw, x + off, p.k, p.alpha / p.size,
                              p.beta, scale + off, y + off);
        }
}

/* t = dy y / s over one plane */
CLONES static void ratio_plane(int hw, const float *restrict dy, const float *restrict y, const float *restrict s,
                               float *restrict t) {
    for (int q = 0; q < hw; q++) t[q] = dy[q] * y[q] / s[q];
}

/* d = dy s^-beta - coef x sum_j tj over the planes [t0, t0 + nj*hw); zero where x <= 0 if relu_input */
CLONES static void lrn_backward_plane(int hw, int nj, const float *restrict t0, const float *restrict x,
                                      const float *restrict s, const float *restrict dy, float coef, float beta,
                                      float k, int relu_input, float *restrict d) {
    pow_neg_plane(hw, beta, k, s, d);
    for (int q = 0; q < hw; q++) d[q] *= dy[q];
    for (int j = 0; j < nj; j++) {
        const float *tj = t0 + (size_t)j * hw;
        for (int q = 0; q < hw; q++) d[q] -= coef * x[q] * tj[q];
    }
    if (relu_input)
        for (int q = 0; q < hw; q++) d[q] = x[q] > 0.0f ? d[q] : 0.0f;
}

/* One image's dx; its channels in parallel when called outside a parallel region. t: (c, hw) scratch. */
static void backward_image(int c, int hw, LrnParams p, const float *x, const float *y, const float *scale,
                           const float *dy, float *dx, int relu_input, float *t) {
    float coef = 2.0f * p.alpha * p.beta / p.size;
    int par = !omp_in_parallel();
#if defined(__x86_64__) && defined(__GNUC__)
    if (!par && lrn_pow_fast_ok(p.beta, p.k)) {
        /* one thread, one image: each channel's dx as soon as the ratios of its window are formed,
         * while its planes of dy and scale are still in cache */
        int next = 0; /* the next channel whose dx is due */
        for (int ch = 0; ch < c; ch++) {
            size_t e = (size_t)ch * hw;
            ratio_plane(hw, dy + e, y + e, scale + e, t + e);
            for (int lo, hi; next < c; next++) {
                lrn_window(next, c, p, &lo, &hi);
                if (hi > ch) break;
                size_t f = (size_t)next * hw;
                lrn_backward_plane_avx512(hw, hi - lo + 1, t + (size_t)lo * hw, x + f, scale + f, dy + f, coef,
                                          relu_input, dx + f);
            }
        }
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (par)
    for (int ch = 0; ch < c; ch++)
        ratio_plane(hw, dy + (size_t)ch * hw, y + (size_t)ch * hw, scale + (size_t)ch * hw, t + (size_t)ch * hw);
#pragma omp parallel for schedule(static) if (par)
    for (int ch = 0; ch < c; ch++) {
        int lo, hi;
        lrn_window(ch, c, p, &lo, &hi);
        size_t e = (size_t)ch * hw;
        lrn_backward_plane(hw, hi - lo + 1, t + (size_t)lo * hw, x + e, scale + e, dy + e, coef, p.beta, p.k, relu_input,
                           dx + e);
    }
}

int lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y,
                 const float *scale, const float *dy, float *dx, int relu_input) {
    size_t img = (size_t)c * hw;
    int failed = 0;
    if (n >= omp_get_max_threads()) { /* images in parallel */
#pragma omp parallel
        {
            float *t = an_thread_buffer(AN_BUF_LRN, img * sizeof(float));
            if (!t) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int i = 0; i < n; i++)
                if (t) backward_image(c, hw, p, x + i * img, y + i * img, scale + i * img, dy + i * img, dx + i * img,
                                      relu_input, t);
        }
    } else { /* image by image, channels in parallel (no region around: see conv_forward) */
        float *t = an_thread_buffer(AN_BUF_LRN, img * sizeof(float));
        failed = !t;
        for (int i = 0; i < n && t; i++)
            backward_image(c, hw, p, x + i * img, y + i * img, scale + i * img, dy + i * img, dx + i * img,
                           relu_input, t);
    }
    return failed ? an_error("out of memory (LRN workspace of %zu bytes)", img * sizeof(float)) : 0;
}
