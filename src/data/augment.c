/* augment.c: the paper's data augmentation (Krizhevsky et al. 2012, section 4.1) and test views:
 * random crop windows, horizontal mirroring, PCA colour lighting and mean-image subtraction.
 *
 * Random streams. Every random draw for one image in one epoch comes from (seed, counter):
 *     sub = an_hash64(seed, counter)                      one sub-seed per image per epoch
 *     x       = an_hash64(sub, 0) % (size - crop + 1)     window left, uniform in [0, size-crop]
 *     y       = an_hash64(sub, 1) % (size - crop + 1)     window top,  uniform in [0, size-crop]
 *     flip    = an_uniform(sub, 2) < 0.5                  mirrored with probability 1/2
 *     alpha_i = lighting_std * an_normal(sub, 3 + i)      i = 0, 1, 2 (an_normal(s, k) hashes
 *                                                         counters 2k and 2k+1, i.e. 6..11 here,
 *                                                         so it never reuses counters 0..2)
 * The view and the lighting of an image are therefore independent of each other, of the other
 * images and of thread scheduling.
 * Lighting: the paper's sum_i alpha_i lambda_i p_i is applied to pixels scaled to [0, 1], as the
 * authors' code and fb.resnet.torch do; with lambda_i stored in 0..255 units (variance, so x 255^2)
 * that is a shift of sum_i alpha_i (lambda_i / 255) p_i in 0..255 units: about 5 grey levels for
 * ImageNet's first component at alpha = 0.1. The loader passes counter = epoch << 32 | example index. */
#include "augment.h"
#include "../util/common.h"

View augment_center_view(int size, int crop) {
    View v = {(size - crop) / 2, (size - crop) / 2, 0};
    return v;
}

View augment_test_view(int size, int crop, int k) {
    int m = size - crop;
    View v = {0, 0, k >= 5};
    switch (k % 5) {
    case 0: v.x = 0; v.y = 0; break;         /* top-left */
    case 1: v.x = m; v.y = 0; break;         /* top-right */
    case 2: v.x = 0; v.y = m; break;         /* bottom-left */
    case 3: v.x = m; v.y = m; break;         /* bottom-right */
    default: v.x = m / 2; v.y = m / 2; break; /* centre */
    }
    return v;
}

View augment_random_view(const AugmentConfig *a, uint64_t seed, uint64_t counter) {
    uint64_t sub = an_hash64(seed, counter);
    View v = augment_center_view(a->size, a->crop);
    if (a->random_crop) {
        int range = a->size - a->crop;
        uint64_t n = range > 0 ? (uint64_t)range + 1 : 1;
        v.x = (int)(an_hash64(sub, 0) % n);
        v.y = (int)(an_hash64(sub, 1) % n);
    }
    if (a->flip) v.flip = an_uniform(sub, 2) < 0.5f;
    return v;
}

void augment_lighting(const AugmentConfig *a, uint64_t seed, uint64_t counter, float rgb[3]) {
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    if (!(a->lighting_std > 0.0f) || !a->pca) return;
    uint64_t sub = an_hash64(seed, counter);
    for (int i = 0; i < 3; i++) {
        float alpha = a->lighting_std * an_normal(sub, 3 + (uint64_t)i);
        float w = alpha * a->pca->eigval[i] * (1.0f / 255.0f); /* the formula in [0, 1] pixel units */
        for (int c = 0; c < 3; c++) rgb[c] += w * a->pca->eigvec[i][c];
    }
}

/* One output row: d[ox] = (s[ox] + add - m[ox]) * scale, with s and m at the window's left edge. */
static void row_forward(const uint8_t *restrict s, const float *restrict m, float add, float scale,
                        float *restrict d, int n) {
    if (m) for (int i = 0; i < n; i++) d[i] = ((float)s[i] + add - m[i]) * scale;
    else   for (int i = 0; i < n; i++) d[i] = ((float)s[i] + add) * scale;
}

/* A mirrored row: d[ox] = (s[n-1-ox] + add - m[n-1-ox]) * scale. GCC does not vectorise a loop
 * that mixes a reversed access with a uint8 -> float widening, so each chunk of the source is first
 * widened to floats, then the chunk (and the mean) is read forwards and its output written
 * backwards, a float reversal the compiler does with a shuffle; both loops vectorise, even on
 * baseline x86-64 (about 1.7x faster than the scalar reversed loop). */
enum { MIRROR_CHUNK = 256 };
static void row_mirrored(const uint8_t *restrict s, const float *restrict m, float add, float scale,
                         float *restrict d, int n) {
    float t[MIRROR_CHUNK];
    for (int i0 = 0; i0 < n; i0 += MIRROR_CHUNK) {
        int k = n - i0 < MIRROR_CHUNK ? n - i0 : MIRROR_CHUNK;
        const uint8_t *sc = s + (n - i0 - k);           /* source span for outputs i0 .. i0+k-1 */
        for (int j = 0; j < k; j++) t[j] = (float)sc[j];
        float *restrict dc = d + i0 + k - 1;             /* written backwards */
        if (m) {
            const float *restrict mc = m + (n - i0 - k);
            for (int j = 0; j < k; j++) dc[-j] = (t[j] + add - mc[j]) * scale;
        } else {
            for (int j = 0; j < k; j++) dc[-j] = (t[j] + add) * scale;
        }
    }
}

/* src is (3, size, size) uint8, dst is (3, crop, crop) float. Output pixel (ox, oy) reads source
 * column v.flip ? v.x + crop - 1 - ox : v.x + ox and row v.y + oy; each row of the window is the
 * source span [v.x, v.x + crop). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AUG_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* The two rows above with AVX-512: 16 pixels per step (bytes widened to floats, the same
 * operations in the same order, so the results are bit-identical), the mirrored row reversing each
 * vector with a permute; the last partial vector is masked. */
AUG_AVX512 static void row_avx512(const uint8_t *s, const float *m, float add, float scale, float *d,
                                  int n, int mirrored) {
    const __m512 vadd = _mm512_set1_ps(add), vscale = _mm512_set1_ps(scale);
    const __m512i rev = _mm512_set_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int i = 0, r; i < n; i += r) {
        /* r outputs: up to the next 64-byte boundary of d, so that full vectors are aligned and
         * go out as streaming stores (no read for ownership of the batch, which is not read again
         * before the training step); a short head or tail vector is a masked store */
        int to_line = (int)((64 - ((uintptr_t)(d + i) & 63)) & 63) / 4;
        r = to_line ? to_line : 16;
        if (r > n - i) r = n - i;
        __mmask16 k = (__mmask16)((1u << r) - 1);
        /* forward: source [i, i + r); mirrored: outputs i.. read source n-1-i down to n-i-r */
        int at = mirrored ? n - i - r : i;
        __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, s + at)));
        __m512 v = _mm512_add_ps(x, vadd);
        if (m) v = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(k, m + at));
        v = _mm512_mul_ps(v, vscale);
        if (mirrored) /* lane j holds source at + j; output lane j wants source at + r - 1 - j */
            v = _mm512_permutexvar_ps(_mm512_sub_epi32(rev, _mm512_set1_epi32(16 - r)), v);
        if (r == 16) _mm512_stream_ps(d + i, v);
        else _mm512_mask_storeu_ps(d + i, k, v);
    }
}

AUG_AVX512 static void stores_done(void) { _mm_sfence(); } /* streaming stores visible to others */

#else
static void row_avx512(const uint8_t *s, const float *m, float add, float scale, float *d, int n,
                       int mirrored) { (void)s, (void)m, (void)add, (void)scale, (void)d, (void)n, (void)mirrored; }
static void stores_done(void) {}
#endif

static void apply(const AugmentConfig *a, const uint8_t *src, View v, const float rgb[3], float *dst, int fast) {
    const int size = a->size, crop = a->crop;
    const size_t plane = (size_t)size * size;
    for (int c = 0; c < 3; c++) {
        const float add = rgb ? rgb[c] : 0.0f;
        for (int oy = 0; oy < crop; oy++) {
            size_t off = c * plane + (size_t)(v.y + oy) * size + v.x;
            const uint8_t *s = src + off;
            const float *m = a->mean_image ? a->mean_image + off : NULL;
            float *d = dst + ((size_t)c * crop + oy) * crop;
            if (fast)        row_avx512(s, m, add, a->scale, d, crop, v.flip);
            else if (v.flip) row_mirrored(s, m, add, a->scale, d, crop);
            else        row_forward(s, m, add, a->scale, d, crop);
        }
    }
    if (fast) stores_done();
}

void augment_apply(const AugmentConfig *a, const uint8_t *src, View v, const float rgb[3], float *dst) {
    apply(a, src, v, rgb, dst, an_cpu_avx512());
}

void augment_apply_reference(const AugmentConfig *a, const uint8_t *src, View v, const float rgb[3], float *dst) {
    apply(a, src, v, rgb, dst, 0);
}
