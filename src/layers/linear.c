/* linear.c: fully connected layer, y (n, out) = x (n, in) w^T (in, out) + b, via gemm. */
#include "layers.h"
#include "../cpu/gemm.h"
#include "../util/common.h"

/* Forward as y^T (out, n) = w (out, in) x^T (in, n): the weights are the row operand, read in
 * their stored order (packing w as the column operand would transpose all of it on every call),
 * and there are enough rows for every thread even at batch 1. Then y = transpose + bias. */
/* A few rows (batch-1 inference): dot products that read each weight row once, in parallel over
 * outputs; a packed product would pad the batch to a 32-column strip and copy all the weights. */
enum { LINEAR_DOT_MAX_N = 4 };
/* sum over k < n of a[k] b[k]: 32 running sums (lane j takes k = j mod 32, in order), then a fixed
 * tree. A batch-1 layer only streams its weights (fc6: 151 MB), and one 4-lane sum chain (what the
 * plain loop compiled to) held a core to 19 GB/s where the memory gives 25. Lanes are independent,
 * so every instruction set gives the same bits. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dot_f32(int n, const float *restrict a, const float *restrict b) {
    float acc[32] = {0};
    int k = 0;
    for (; k + 32 <= n; k += 32)
        for (int j = 0; j < 32; j++) acc[j] += a[k + j] * b[k + j];
    for (int j = 0; k + j < n; j++) acc[j] += a[k + j] * b[k + j];
    for (int h = 16; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) acc[j] += acc[j + h];
    return acc[0];
}

/* The same sums of the operands rounded to bfloat16 (bf16 mode: what float32 mode computes on
 * rounded tensors, bit for bit) */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float dot_bf16(int n, const float *restrict a, const float *restrict b) {
    float acc[32] = {0};
    int k = 0;
    for (; k + 32 <= n; k += 32)
        for (int j = 0; j < 32; j++) acc[j] += gemm_round_bf16(a[k + j]) * gemm_round_bf16(b[k + j]);
    for (int j = 0; k + j < n; j++) acc[j] += gemm_round_bf16(a[k + j]) * gemm_round_bf16(b[k + j]);
    for (int h = 16; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) acc[j] += acc[j + h];
    return acc[0];
}

/* In bfloat16 mode both operands are rounded as they are read, as the packed products do. */
static void linear_dots(int n, int in, int out, const float *x, const float *w, float *y) {
    int bf = gemm_bf16();
#pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        const float *wo = w + (size_t)o * in;
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * in;
            float acc = bf ? dot_bf16(in, wo, xi) : dot_f32(in, wo, xi);
            y[(size_t)i * out + o] = acc;
        }
    }
}

/* sums over k < len of float(w16[k]) * xr[i * in + k] for the n <= LINEAR_BF16W_MAX_N rows of xr
 * (already rounded), the bf16 weights widened by a shift: the plain reference, and the kernel
 * below (its tail). */
static void dots_bf16w_ref(int n, int len, int in, const uint16_t *restrict w16, const float *restrict xr, float *acc) {
    for (int i = 0; i < n; i++) {
        float s = 0.0f;
        for (int k = 0; k < len; k++) {
            uint32_t bits = (uint32_t)w16[k] << 16;
            float wk;
            memcpy(&wk, &bits, 4);
            s += wk * xr[(size_t)i * in + k];
        }
        acc[i] = s;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* The weight row is read once for all n rows of x, 32 weights (one 64-byte line) at a time into
 * two vectors, each feeding its own sums per row (two chains per row hide the FMA latency); the
 * lines ahead are prefetched. A batch-1 layer only streams its weights (fc6: 75 MB in bf16), and
 * one sum chain per row held the layer to 22 GB/s where two threads read 30. */
__attribute__((target("avx512f,avx512bw")))
static void dots_bf16w_avx512(int n, int in, const uint16_t *restrict w16, const float *restrict xr, float *acc) {
    __m512 s0[LINEAR_BF16W_MAX_N], s1[LINEAR_BF16W_MAX_N];
    for (int i = 0; i < LINEAR_BF16W_MAX_N; i++) s0[i] = s1[i] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= in; k += 32) {
        _mm_prefetch((const char *)(w16 + k) + 4096, _MM_HINT_T0);
        __m512i raw = _mm512_loadu_si512(w16 + k);
        __m512 w0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(raw)), 16));
        __m512 w1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(raw, 1)), 16));
        for (int i = 0; i < n; i++) {
            const float *x = xr + (size_t)i * in + k;
            s0[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), s0[i]);
            s1[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), s1[i]);
        }
    }
    float tail[LINEAR_BF16W_MAX_N] = {0};
    if (k < in) dots_bf16w_ref(n, in - k, in, w16 + k, xr + k, tail);
    for (int i = 0; i < n; i++) acc[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0[i], s1[i])) + tail[i];
}
#endif

int linear_forward_bf16w(int n, int in, int out, const float *x, const uint16_t *w16, const float *b, float *y) {
    float *xr = an_thread_buffer(AN_BUF_LINEAR_T, (size_t)n * in * sizeof(float)); /* x rounded */
    if (!xr) return -1;
    for (size_t k = 0; k < (size_t)n * in; k++) xr[k] = gemm_round_bf16(x[k]);
    int avx512 = an_cpu_avx512();
    (void)avx512;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < out; o++) {
        float acc[LINEAR_BF16W_MAX_N];
#if defined(__x86_64__) && defined(__GNUC__)
        if (avx512) dots_bf16w_avx512(n, in, w16 + (size_t)o * in, xr, acc);
        else
#endif
            dots_bf16w_ref(n, in, in, w16 + (size_t)o * in, xr, acc);
        for (int i = 0; i < n; i++) y[(size_t)i * out + o] = acc[i] + (b ? b[o] : 0.0f);
    }
    return 0;
}

void linear_weights_to_bf16(size_t count, const float *w, uint16_t *w16) {
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < count; j++) {
        float r = gemm_round_bf16(w[j]);
        uint32_t bits;
        memcpy(&bits, &r, 4);
        w16[j] = (uint16_t)(bits >> 16);
    }
}

/* y (n, out) = yt^T + b, yt (out, n): the plain loop over outputs [o0, o1) and rows [i0, i1) */
static void transpose_bias_ref(int n, int out, const float *yt, const float *b, float *y, int o0, int o1, int i0,
                               int i1) {
    for (int i = i0; i < i1; i++)
        for (int o = o0; o < o1; o++) y[(size_t)i * out + o] = yt[(size_t)o * n + i] + (b ? b[o] : 0.0f);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same for 16 outputs x 16 rows through registers: 16 loads of 64 bytes, a 16 x 16 transpose in
 * 64 shuffles, 16 stores of 64 bytes (the plain loop read each row of yt 4 bytes at a time: fc6's
 * 2 MB took 0.4-2 ms). The same additions: the same bits. */
__attribute__((target("avx512f")))
static void transpose_bias_16(int n, int out, const float *yt, const float *b, float *y, int o0, int i0) {
    __m512 r[16], t[16];
    for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_ps(yt + (size_t)(o0 + k) * n + i0);
    for (int k = 0; k < 16; k += 2) { /* lane l of t[k]: rows k, k+1 at columns 4l, 4l+1; t[k+1]: 4l+2, 4l+3 */
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int g = 0; g < 16; g += 4) { /* lane l of r[g + j]: rows g..g+3 at column 4l + j */
        __m512d a0 = _mm512_castps_pd(t[g]), a1 = _mm512_castps_pd(t[g + 1]);
        __m512d a2 = _mm512_castps_pd(t[g + 2]), a3 = _mm512_castps_pd(t[g + 3]);
        r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    __m512 bias = b ? _mm512_loadu_ps(b + o0) : _mm512_setzero_ps();
    for (int j = 0; j < 4; j++) { /* column 4l + j: lane l of r[j], r[4 + j], r[8 + j], r[12 + j] */
        __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
        __m512 v0 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44), v1 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
        __m512 c[4] = {_mm512_shuffle_f32x4(u0, v0, 0x88), _mm512_shuffle_f32x4(u0, v0, 0xDD),
                       _mm512_shuffle_f32x4(u1, v1, 0x88), _mm512_shuffle_f32x4(u1, v1, 0xDD)};
        for (int l = 0; l < 4; l++)
            _mm512_storeu_ps(y + (size_t)(i0 + 4 * l + j) * out + o0, _mm512_add_ps(c[l], bias));
    }
}
#endif

/* y = yt^T + b, 16 outputs at a time (16 rows of yt read in step, 64 bytes of each row of y) */
static void transpose_bias(int n, int out, const float *yt, const float *b, float *y) {
    int avx512 = an_cpu_avx512();
    (void)avx512;
#pragma omp parallel for schedule(static) if ((size_t)n * out > 65536)
    for (int o0 = 0; o0 < out; o0 += 16) {
        int o1 = out - o0 < 16 ? out : o0 + 16, i0 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if (avx512 && o1 - o0 == 16)
            for (; i0 + 16 <= n; i0 += 16) transpose_bias_16(n, out, yt, b, y, o0, i0);
#endif
        transpose_bias_ref(n, out, yt, b, y, o0, o1, i0, n);
    }
}

void linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
    float *yt = n <= LINEAR_DOT_MAX_N ? NULL : an_thread_buffer(AN_BUF_LINEAR_T, (size_t)out * n * sizeof(float));
    if (n <= LINEAR_DOT_MAX_N) {
        linear_dots(n, in, out, x, w, y);
    } else if (!yt) { /* out of memory for the transpose: the direct product */
        gemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    } else {
        gemm(0, 1, out, n, in, 1.0f, w, in, x, in, 0.0f, yt, n);
        transpose_bias(n, out, yt, b, y);
        return;
    }
    if (!b) return;
#pragma omp parallel for schedule(static) if ((size_t)n * out > 65536)
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) y[(size_t)i * out + o] += b[o];
}

void linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in); /* dw (out, in) = dy^T x */
    if (dx) gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in); /* dx (n, in) = dy w */
    /* db (out) = the sums of dy's columns, each in float64 down the batch, 16 columns at a time */
#pragma omp parallel for schedule(static) if ((size_t)n * out > 65536)
    for (int o0 = 0; o0 < out; o0 += 16) {
        int w16 = out - o0 < 16 ? out - o0 : 16;
        double acc[16] = {0};
        for (int i = 0; i < n; i++)
            for (int k = 0; k < w16; k++) acc[k] += dy[(size_t)i * out + o0 + k];
        for (int k = 0; k < w16; k++) db[o0 + k] = (float)acc[k];
    }
}
