/* gemm_simd.h: AVX-512 helpers shared by gemm.c and gemm_amx.c (internal to src/cpu): lane masks,
 * bfloat16 rounding of 16 lanes, a 16x16 register transpose. */
#ifndef ALEXNET_GEMM_SIMD_H
#define ALEXNET_GEMM_SIMD_H
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stddef.h>

/* mask of the first n of 16 lanes (n clamped to 0..16) */
static inline __mmask16 lanes(int n) { return n >= 16 ? (__mmask16)0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1) : 0; }

/* gemm_round_bf16 on 16 lanes when bf, else x (NaNs made quiet, as there) */
__attribute__((target("avx512f")))
static inline __m512 maybe_bf16_512(int bf, __m512 x) {
    if (!bf) return x;
    __m512i b = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    r = _mm512_and_si512(r, _mm512_set1_epi32((int)0xFFFF0000u));
    __m512 quiet = _mm512_castsi512_ps(_mm512_or_si512(b, _mm512_set1_epi32(0x00400000)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_castsi512_ps(r), quiet);
}

/* out[p] lane i = r[i] lane p: a 16x16 transpose in registers (unpack pairs, then pairs of pairs,
 * then 128-bit lanes twice) */
__attribute__((target("avx512f")))
static inline void transpose16(const __m512 r[16], __m512 out[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4i + c]: rows 4i..4i+3 of columns c, c+4, c+8, c+12 */
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        out[c] = _mm512_shuffle_f32x4(v0, v1, 0x88);
        out[c + 8] = _mm512_shuffle_f32x4(v0, v1, 0xdd);
        out[c + 4] = _mm512_shuffle_f32x4(w0, w1, 0x88);
        out[c + 12] = _mm512_shuffle_f32x4(w0, w1, 0xdd);
    }
}

/* rows [0, nrows) of a 16-row block, each 16 consecutive floats from src + row * ld (the first
 * `cols` of them, the rest and missing rows zero), scaled by alpha and transposed into out */
__attribute__((target("avx512f")))
static inline void load_transpose(const float *src, size_t ld, int nrows, int cols, float alpha, int bf,
                                   __m512 out[16]) {
    __mmask16 m = lanes(cols);
    __m512 r[16], va = _mm512_set1_ps(alpha);
    for (int i = 0; i < 16; i++)
        r[i] = i < nrows ? maybe_bf16_512(bf, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, src + i * ld)))
                         : _mm512_setzero_ps();
    transpose16(r, out);
}
#endif
#endif
