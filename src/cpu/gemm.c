/* gemm.c: packed, blocked SGEMM with a 12x32 register-tile micro-kernel (see gemm.h).
 * Blocking: K in equal slices of at most KC (sequential, so summation order is fixed), N in NC
 * panels (B packed once per slice and shared), then tasks of MC rows x a column block spread over threads; each task packs its
 * own A block. Edge tiles are written with masks (AVX-512, AVX2) or through a scratch tile; with beta 0
 * the first K slice overwrites C instead of clearing it first. */
/* a * b + c as one fused multiply-add in the micro-kernel (ISO C mode turns contraction off) */
#pragma GCC optimize("fp-contract=fast")
#include "gemm.h"
#include "gemm_amx.h"
#include "../util/common.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MR 12
#define NR 32
#define MC 96
#define KC 256
#define NC 1024
#define AHEAD_CALLS 8 /* split products: kernel calls between fetching B rows and packing them */

typedef float v16 __attribute__((vector_size(64), aligned(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

/* ---- bfloat16 mode: operands rounded as they are packed ---- */
static int g_bf16;
/* the calling thread's float32 scope (gemm_fp32_scope): products in float32 whatever the setting;
 * gemm's own threads take their caller's scope */
static _Thread_local int t_fp32;
static inline int bf16_here(void) { return g_bf16 && !t_fp32; }
void gemm_set_bf16(int on) { g_bf16 = on != 0; }
int gemm_bf16(void) { return bf16_here(); }
int gemm_fp32_scope(int on) {
    int was = t_fp32;
    t_fp32 = on != 0;
    return was;
}

/* AVX512_BF16 dot products (VDPBF16PS) for bf16 products: on where the CPU has them and they are
 * the faster instruction (AMD Zen 4 and later: twice the float32 FMA rate; Intel's run at half the
 * FMA rate), or as a test asked. Packed operands then hold bf16 pairs (see dot_mode). */
static int g_dot_choice = -1;
static int g_avx2_choice = -1; /* gemm_avx2_override: -1 as the CPU allows, 0 off */
int gemm_bf16_dot_hw(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return an_cpu_avx512_hw() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}
void gemm_bf16_dot_override(int on) { g_dot_choice = on < 0 ? -1 : on != 0; }
static int dot_preferred(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return g_dot_choice < 0 ? __builtin_cpu_is("amd") : g_dot_choice;
#else
    return 0;
#endif
}
/* Dot mode: every packed k-row pair (k, k+1) of a slice is one 32-bit word per row of A or column
 * of B, k in the low half and k+1 in the high half (a zero high half after an odd slice's last
 * row), at the offsets the float32 layout gives row k/2 of the slice (the second half of each
 * strip stays unused). */
static inline int dot_mode(void) { return bf16_here() && an_cpu_avx512() && gemm_bf16_dot_hw() && dot_preferred(); }
int gemm_bf16_dot(void) { return dot_mode(); }

/* AMX tiles for bf16 products (gemm_amx.c): where the CPU and the OS allow them, unless dot mode
 * was forced or a test turned them off. Slices shorter than 31 rows (K < 32) keep the float32
 * kernels on rounded operands (AMX layout pads k to 32 and would not fit their buffers). */
static int g_amx_choice = -1;
int gemm_bf16_amx_hw(void) { return an_cpu_avx512_hw() && amx_usable(); }
void gemm_bf16_amx_override(int on) { g_amx_choice = on < 0 ? -1 : on != 0; }
static inline int amx_mode(void) { return bf16_here() && g_amx_choice != 0 && an_cpu_avx512() && !dot_mode() && gemm_bf16_amx_hw(); }
static inline int amx_on(int kc) { return kc >= 32 && amx_mode(); }
int gemm_bf16_amx(void) { return amx_mode(); }
/* k pairs in a packed slice: the dot layout's, zero-padded to AMX's 16 (B's rows past them zeroed) */
static inline int slice_pairs(int kc) { return amx_on(kc) ? amx_pairs(kc) : (kc + 1) / 2; }
/* AMX layout: zero the pad pairs of a B strip (NR words a pair row) */
static void zero_pad_pairs(float *strip, int kc) {
    memset(strip + (size_t)(kc + 1) / 2 * NR, 0, (size_t)(amx_pairs(kc) - (kc + 1) / 2) * NR * sizeof(float));
}

static inline float maybe_bf16(int bf, float x) { return bf ? gemm_round_bf16(x) : x; }

/* c (MR x NR tile, row stride ldc) += a_pack (kc x MR) * b_pack (kc x NR): the portable version
 * (GCC vector extensions), for CPUs with neither AVX-512 nor AVX2 and FMA (and the tests). */
static void micro_kernel_generic(int kc, const float *restrict a, const float *restrict b, float *restrict c,
                                 int ldc) {
    v16 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = (v16){0};
    for (int p = 0; p < kc; p++) {
        v16 b0 = *(const v16 *)(b + p * NR);
        v16 b1 = *(const v16 *)(b + p * NR + 16);
        for (int i = 0; i < MR; i++) {
            float av = a[p * MR + i];
            acc[i][0] += av * b0;
            acc[i][1] += av * b1;
        }
    }
    for (int i = 0; i < MR; i++) {
        v16u *row = (v16u *)(c + (size_t)i * ldc);
        row[0] += acc[i][0];
        row[1] += acc[i][1];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include "gemm_simd.h"
/* The same with AVX-512 intrinsics: 24 accumulators (12 rows x 2 vectors of 16), per k two loads
 * of B and twelve broadcasts of A feeding 24 FMAs, so both FMA ports stay busy; the sums run in the
 * same order as the portable kernel's. Edge tiles are written straight to C with masks (rows below
 * mr, columns below nr); a tile at most 16 wide runs a half-width kernel. overwrite: C = the
 * product (its old contents, NaN included, are never read), else C += the product. The _pf form
 * also prefetches pf_lines 64-byte lines into L2, one every 4 k (at most kc / 4), pf_row_lines of
 * them from each row of pf (rows pf_ld floats apart): another panel's B rows, for packing next. */
/* at every 4th k, line l = p / 4 of the prefetch list into L2: row l / row_lines of pf (rows ld
 * floats apart), its (l % row_lines)-th 64-byte line */
static inline void prefetch_line(int p, const float *pf, size_t ld, int row_lines, int lines) {
    if ((p & 3) == 0 && (p >> 2) < lines) {
        int l = p >> 2;
        _mm_prefetch((const char *)(pf + (size_t)(l / row_lines) * ld + (size_t)(l % row_lines) * 16), _MM_HINT_T1);
    }
}

__attribute__((target("avx512f")))
static void micro_kernel_avx512_pf(int kc, const float *restrict a, const float *restrict b, float *restrict c,
                                   int ldc, int mr, int nr, int overwrite, const float *pf, size_t pf_ld, int pf_row_lines,
                                   int pf_lines) {
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define ZERO(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
#define FMA2(i) { __m512 av = _mm512_set1_ps(a[i]); \
                  c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1); }
#define FMA1(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, c##i##0);
#define STORE(i) if ((i) < mr) { float *r = c + (size_t)(i) * ldc; \
        if (overwrite) { _mm512_mask_storeu_ps(r, m0, c##i##0); _mm512_mask_storeu_ps(r + 16, m1, c##i##1); } \
        else { _mm512_mask_storeu_ps(r, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, r), c##i##0)); \
               _mm512_mask_storeu_ps(r + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, r + 16), c##i##1)); } }
    ROWS(ZERO)
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
    if (mr <= 8 && nr > 16) { /* a last panel of at most 8 rows (the fc layers' dx, batch 128: 10 panels
                               * and 8 rows) skips the 4 rows of padding: dx 1.5% */
        for (int p = 0; p < kc; p++, a += MR, b += NR) {
            prefetch_line(p, pf, pf_ld, pf_row_lines, pf_lines);
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            ROWS8(FMA2)
        }
    } else if (nr > 16 && pf_lines > 0) {
        for (int p = 0; p < kc; p++, a += MR, b += NR) {
            prefetch_line(p, pf, pf_ld, pf_row_lines, pf_lines);
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            ROWS(FMA2)
        }
    } else if (nr > 16) {
        for (int p = 0; p < kc; p++, a += MR, b += NR) {
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            ROWS(FMA2)
        }
    } else {
        for (int p = 0; p < kc; p++, a += MR, b += NR) {
            __m512 b0 = _mm512_load_ps(b);
            ROWS(FMA1)
        }
    }
    ROWS(STORE)
}
__attribute__((target("avx512f")))
static void micro_kernel_avx512(int kc, const float *restrict a, const float *restrict b, float *restrict c,
                                int ldc, int mr, int nr, int overwrite) {
    micro_kernel_avx512_pf(kc, a, b, c, ldc, mr, nr, overwrite, NULL, 0, 1, 0);
}

/* The same kernel reading A where it lies, row i of the tile at a + i lda (k along each row), not
 * from a packed panel: for a big A used by few columns (fc6's forward: 151 MB of weights times a
 * batch of 128), packing it costs a pass over memory in 1 KB pieces that the hardware prefetchers
 * follow badly, while twelve rows read in step are twelve long streams they do follow. The same
 * products in the same order as packing first (alpha 1, float32 mode): the same bits. Rows past mr
 * read row 0 and are not stored. */
__attribute__((target("avx512f")))
static void micro_kernel_avx512_rows(int kc, const float *restrict a, size_t lda, const float *restrict b,
                                     float *restrict c, int ldc, int mr, int nr, int overwrite, const float *pf) {
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
    const float *ar[MR];
    for (int i = 0; i < MR; i++) ar[i] = a + (size_t)(i < mr ? i : 0) * lda;
#define FMA2R(i) { __m512 av = _mm512_set1_ps(ar[i][p]); \
                   c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1); }
#define FMA1R(i) c##i##0 = _mm512_fmadd_ps(_mm512_set1_ps(ar[i][p]), b0, c##i##0);
    ROWS(ZERO)
    if (nr > 16) {
        for (int p = 0; p < kc; p++, b += NR) {
            if (pf && (p & 15) == 0) /* the next 12 rows' line at p */
                for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(pf + i * lda + p), _MM_HINT_T0);
            __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
            ROWS(FMA2R)
        }
    } else {
        for (int p = 0; p < kc; p++, b += NR) {
            __m512 b0 = _mm512_load_ps(b);
            ROWS(FMA1R)
        }
    }
    ROWS(STORE)
#undef FMA2R
#undef FMA1R
}

/* The same for 6 rows and 64 columns (two adjacent B strips, b and b + NR kc): 24 accumulators
 * again, per k 4 loads of B and 6 broadcasts. Reading A in place, 12 rows lda apart (fc6's 36 KB,
 * a multiple of 4 KB) put every row's current line in the same L1 set; 6 rows leave room for B's
 * lines there: fc6's forward 9% faster (a scratch program, one and two threads). The same products
 * in the same order: the same bits. nr in (NR, 2 NR]; rows past mr read row 0 and are not stored. */
__attribute__((target("avx512f")))
static void micro_kernel_avx512_rows6(int kc, const float *restrict a, size_t lda, const float *restrict b,
                                      float *restrict c, int ldc, int mr, int nr, int overwrite, const float *pf) {
    __mmask16 m[4] = {0xFFFF, 0xFFFF, lanes(nr - 32), lanes(nr - 48)};
    const float *ar[6], *bh = b + (size_t)NR * kc;
    for (int i = 0; i < 6; i++) ar[i] = a + (size_t)(i < mr ? i : 0) * lda;
#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define ZERO6(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps(), \
                        c##i##2 = _mm512_setzero_ps(), c##i##3 = _mm512_setzero_ps();
#define FMA6(i) { __m512 av = _mm512_set1_ps(ar[i][p]); \
                  c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1); \
                  c##i##2 = _mm512_fmadd_ps(av, b2, c##i##2); c##i##3 = _mm512_fmadd_ps(av, b3, c##i##3); }
#define PUT6(r, q, v) { if (overwrite) _mm512_mask_storeu_ps((r) + 16 * (q), m[q], v); \
                        else _mm512_mask_storeu_ps((r) + 16 * (q), m[q], _mm512_add_ps(_mm512_maskz_loadu_ps(m[q], (r) + 16 * (q)), v)); }
#define STORE6(i) if ((i) < mr) { float *r = c + (size_t)(i) * ldc; \
        PUT6(r, 0, c##i##0) PUT6(r, 1, c##i##1) PUT6(r, 2, c##i##2) PUT6(r, 3, c##i##3) }
    ROWS6(ZERO6)
    for (int p = 0; p < kc; p++, b += NR, bh += NR) {
        if (pf && (p & 15) == 0) /* the next 6 rows' line at p */
            for (int i = 0; i < 6; i++) _mm_prefetch((const char *)(pf + i * lda + p), _MM_HINT_T0);
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(bh), b3 = _mm512_load_ps(bh + 16);
        ROWS6(FMA6)
    }
    ROWS6(STORE6)
#undef ROWS6
#undef ZERO6
#undef FMA6
#undef PUT6
#undef STORE6
}

/* AVX2 with FMA (every x86-64 CPU with AVX2 since 2013): the kernel below runs where there is no
 * AVX-512 and no test turned it off (g_avx2_choice, gemm_avx2_override) */
static int avx2_hw(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return known;
}

/* mask of the first n of 8 lanes (n clamped to 0..8) */
__attribute__((target("avx2")))
static inline __m256i lanes8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 16 columns of one row of C = or += x0, x1, the first lanes of m0, m1 only where not full */
__attribute__((target("avx2")))
static inline void store_row16(float *q, __m256 x0, __m256 x1, __m256i m0, __m256i m1, int full, int overwrite) {
    if (full) {
        if (!overwrite) x0 = _mm256_add_ps(_mm256_loadu_ps(q), x0), x1 = _mm256_add_ps(_mm256_loadu_ps(q + 8), x1);
        _mm256_storeu_ps(q, x0);
        _mm256_storeu_ps(q + 8, x1);
        return;
    }
    if (!overwrite) x0 = _mm256_add_ps(_mm256_maskload_ps(q, m0), x0), x1 = _mm256_add_ps(_mm256_maskload_ps(q + 8, m1), x1);
    _mm256_maskstore_ps(q, m0, x0);
    _mm256_maskstore_ps(q + 8, m1, x1);
}

/* The same arithmetic with AVX2 and FMA. Sixteen 8-float registers do not hold the 12 x 32 tile,
 * so it runs in blocks of 6 rows x 16 columns (12 accumulators, two loads of B and six broadcasts
 * of A per k), each over the whole kc; every entry of C is still one fused multiply-add per k from
 * zero, k in order, then one add to C, as in the AVX-512 kernel: both give the same bits. rows:
 * how many of the 6 rows to store; m0, m1, full: the columns (masks where not full). */
__attribute__((target("avx2,fma"), always_inline))
static inline void block6x16_avx2(int kc, const float *restrict ap, const float *restrict bp, float *restrict c,
                                  int ldc, int rows, __m256i m0, __m256i m1, int full, int overwrite) {
#define R6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define Z6(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
#define F6(i) { __m256 av = _mm256_broadcast_ss(ap + (i)); \
                c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0); c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1); }
#define S6(i) if ((i) < rows) store_row16(c + (size_t)(i) * ldc, c##i##0, c##i##1, m0, m1, full, overwrite);
    R6(Z6)
    for (int i = 0; i < rows; i++) _mm_prefetch((const char *)(c + (size_t)i * ldc), _MM_HINT_T0);
    for (int p = 0; p < kc; p++, ap += MR, bp += NR) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        R6(F6)
    }
    R6(S6)
#undef R6
#undef Z6
#undef F6
#undef S6
}

/* A task's whole block with AVX2: C (mc x nt) = or += the packed A block (MR-row strips) times nt
 * columns of the packed B panel (NR-wide strips), in 6 x 16 blocks (block6x16_avx2) ordered so that: each 16-column half of a B strip (kc x 16 floats, 16 KB at kc 256) meets every row
 * of the block while it is in L1 (the whole 32-wide strip with the A strip did not fit Zen's 32 KB
 * L1, and the blocks waited on L2: 75% of the FMA peak). Same sums, same bits. */
__attribute__((target("avx2,fma")))
static void block_avx2(int kc, const float *restrict a, int mc, const float *restrict b, float *restrict c, int ldc,
                       int nt, int overwrite) {
    for (int js = 0; js < nt; js += NR) {
        int nr = nt - js < NR ? nt - js : NR;
        for (int h = 0; h < nr; h += 16) {
            __m256i m0 = lanes8(nr - h), m1 = lanes8(nr - h - 8);
            int full = nr - h >= 16;
            const float *bp = b + (size_t)js * kc + h;
            for (int is = 0; is < mc; is += MR) {
                int mr = mc - is < MR ? mc - is : MR;
                for (int r = 0; r < mr; r += 6)
                    block6x16_avx2(kc, a + (size_t)is * kc + r, bp, c + (size_t)(is + r) * ldc + js + h, ldc, mr - r,
                                   m0, m1, full, overwrite);
            }
        }
    }
}

/* r[i] = row i of an 8 x 8 block becomes r[p] = column p (unpack pairs, pairs of pairs, halves) */
__attribute__((target("avx2"), always_inline))
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);     /* columns 0, 1 | 4, 5 of rows 2i, 2i+1 */
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]); /* columns 2, 3 | 6, 7 */
    }
    for (int g = 0; g < 2; g++) { /* rows 4g..4g+3: u[4g + c] = column c | column c + 4 */
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* rows [0, nrows) of an 8-row block, each the first `cols` (<= 8) floats at src + row * ld times
 * alpha (the rest and missing rows zero), transposed: r[p] lane i = row i, column p */
__attribute__((target("avx2"), always_inline))
static inline void load_transpose8(const float *src, size_t ld, int nrows, int cols, float alpha, __m256 r[8]) {
    __m256i m = lanes8(cols);
    __m256 va = _mm256_set1_ps(alpha);
    for (int i = 0; i < 8; i++)
        r[i] = i < nrows ? _mm256_mul_ps(va, cols >= 8 ? _mm256_loadu_ps(src + i * ld) : _mm256_maskload_ps(src + i * ld, m))
                         : _mm256_setzero_ps();
    transpose8(r);
}

/* pack_a with AVX2 (float32 mode): rows of A read 8 floats at a time and transposed (rows 0-7 and
 * 8-11 of each MR strip), or, A transposed, each packed k-row copied from a contiguous run */
__attribute__((target("avx2")))
static void pack_a_avx2(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, float *dst) {
    __m256 va = _mm256_set1_ps(alpha);
    for (int is = 0; is < mc; is += MR) {
        int mr = mc - is < MR ? mc - is : MR;
        float *d = dst + (size_t)is * kc;
        if (trans_a) {
            __m256i m0 = lanes8(mr), m1 = lanes8(mr - 8);
            for (int p = 0; p < kc; p++) {
                const float *src = A + (size_t)(p0 + p) * lda + i0 + is;
                _mm256_storeu_ps(d + p * MR, _mm256_mul_ps(va, _mm256_maskload_ps(src, m0)));
                _mm_storeu_ps(d + p * MR + 8, _mm256_castps256_ps128(_mm256_mul_ps(va, _mm256_maskload_ps(src + 8, m1))));
            }
            continue;
        }
        const float *src = A + (size_t)(i0 + is) * lda + p0;
        for (int pb = 0; pb < kc; pb += 8) {
            int cols = kc - pb < 8 ? kc - pb : 8;
            __m256 lo[8], hi[8];
            load_transpose8(src + pb, lda, mr, cols, alpha, lo);
            load_transpose8(src + 8 * (size_t)lda + pb, lda, mr - 8, cols, alpha, hi);
            for (int p = 0; p < cols; p++) {
                _mm256_storeu_ps(d + (pb + p) * MR, lo[p]);
                _mm_storeu_ps(d + (pb + p) * MR + 8, _mm256_castps256_ps128(hi[p]));
            }
        }
    }
}

/* one NR-wide strip of pack_b with AVX2 (float32 mode): op(B) rows [p0, p0+kc), columns [j, j+nr) */
__attribute__((target("avx2")))
static void pack_b_strip_avx2(int trans_b, const float *B, int ldb, int p0, int kc, int j, int nr, float *d0) {
    if (!trans_b) {
        __m256i m[4];
        for (int q = 0; q < 4; q++) m[q] = lanes8(nr - 8 * q);
        for (int p = 0; p < kc; p++) {
            const float *src = B + (size_t)(p0 + p) * ldb + j;
            for (int q = 0; q < 4; q++)
                _mm256_store_ps(d0 + p * NR + 8 * q, nr >= NR ? _mm256_loadu_ps(src + 8 * q) : _mm256_maskload_ps(src + 8 * q, m[q]));
        }
        return;
    }
    for (int h = 0; h < NR; h += 8) { /* B^T rows j+h .. j+h+7, 8 of its columns at a time */
        int rows = nr - h < 0 ? 0 : (nr - h < 8 ? nr - h : 8);
        for (int pb = 0; pb < kc; pb += 8) {
            int cols = kc - pb < 8 ? kc - pb : 8;
            __m256 out[8];
            load_transpose8(B + (size_t)(j + h) * ldb + p0 + pb, ldb, rows, cols, 1.0f, out);
            for (int p = 0; p < cols; p++) _mm256_store_ps(d0 + (size_t)(pb + p) * NR + h, out[p]);
        }
    }
}

/* The same tile from bf16 pairs (dot mode): kp k-pairs, each a 32-bit word per row of a and per
 * column of b; VDPBF16PS adds both exact products of a pair to each float32 sum. */
typedef uint32_t pair_word __attribute__((may_alias)); /* a bf16 pair in a float buffer */
__attribute__((target("avx512f,avx512bf16")))
static void micro_kernel_dot(int kp, const pair_word *restrict a, const pair_word *restrict b, float *restrict c,
                             int ldc, int mr, int nr, int overwrite) {
    __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
#define DOT2(i) { __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i]); \
                  c##i##0 = _mm512_dpbf16_ps(c##i##0, av, b0); c##i##1 = _mm512_dpbf16_ps(c##i##1, av, b1); }
#define DOT1(i) c##i##0 = _mm512_dpbf16_ps(c##i##0, (__m512bh)_mm512_set1_epi32((int)a[i]), b0);
    ROWS(ZERO)
    if (nr > 16) {
        for (int p = 0; p < kp; p++, a += MR, b += NR) {
            __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 16);
            ROWS(DOT2)
        }
    } else {
        for (int p = 0; p < kp; p++, a += MR, b += NR) {
            __m512bh b0 = (__m512bh)_mm512_load_si512(b);
            ROWS(DOT1)
        }
    }
    ROWS(STORE)
#undef ROWS
#undef ZERO
#undef FMA2
#undef FMA1
#undef DOT2
#undef DOT1
#undef STORE
}
#endif

int gemm_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    return !an_cpu_avx512() && avx2_hw() && g_avx2_choice != 0;
#else
    return 0;
#endif
}
void gemm_avx2_override(int on) { g_avx2_choice = on < 0 ? -1 : on != 0; }

/* C tile (mr x nr) = or += a_pack * b_pack: AVX-512 or AVX2 straight to C, else the portable kernel,
 * through a scratch tile for edges and overwrites. */
static void micro_kernel(int kc, const float *restrict a, const float *restrict b, float *restrict c, int ldc,
                         int mr, int nr, int overwrite, int dot) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (dot) {
        micro_kernel_dot((kc + 1) / 2, (const pair_word *)(const void *)a, (const pair_word *)(const void *)b, c, ldc,
                         mr, nr, overwrite);
        return;
    }
    if (an_cpu_avx512()) { micro_kernel_avx512(kc, a, b, c, ldc, mr, nr, overwrite); return; }
#endif
    (void)dot;
    if (mr == MR && nr == NR && !overwrite) { micro_kernel_generic(kc, a, b, c, ldc); return; }
    float tile[MR * NR] __attribute__((aligned(64))) = {0};
    micro_kernel_generic(kc, a, b, tile, NR);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *cij = c + (size_t)i * ldc + j;
            *cij = overwrite ? tile[i * NR + j] : *cij + tile[i * NR + j];
        }
}

#if defined(__x86_64__) && defined(__GNUC__)

/* dot mode's 32-bit words from two rows of bf16-rounded floats: even in the low half, odd in the
 * high half */
__attribute__((target("avx512f")))
static inline __m512i bf16_pairs(__m512 even, __m512 odd) {
    return _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(even), 16),
                           _mm512_and_si512(_mm512_castps_si512(odd), _mm512_set1_epi32((int)0xFFFF0000u)));
}



/* pack_a for A not transposed: rows of A are read 16 floats at a time and transposed */
__attribute__((target("avx512f")))
static void pack_a_rows_avx512(const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, float *dst) {
    int dot = dot_mode();
    for (int is = 0; is < mc; is += MR) {
        int mr = mc - is < MR ? mc - is : MR;
        for (int pb = 0; pb < kc; pb += 16) {
            int cols = kc - pb < 16 ? kc - pb : 16;
            __m512 out[16];
            load_transpose(A + (size_t)(i0 + is) * lda + p0 + pb, lda, mr, cols, alpha, bf16_here(), out);
            if (dot) { /* pb is even; out[cols] is zero */
                for (int q = 0; q < (cols + 1) / 2; q++)
                    _mm512_mask_storeu_epi32(dst + (size_t)is * kc + (size_t)(pb / 2 + q) * MR, (__mmask16)0x0FFF,
                                             bf16_pairs(out[2 * q], out[2 * q + 1]));
                continue;
            }
            for (int p = 0; p < cols; p++)
                _mm512_mask_storeu_ps(dst + (size_t)is * kc + (size_t)(pb + p) * MR, (__mmask16)0x0FFF, out[p]);
        }
    }
}

/* pack_a for A transposed: each packed k-row is a contiguous run of A */
__attribute__((target("avx512f")))
static void pack_a_cols_avx512(const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, float *dst) {
    __m512 va = _mm512_set1_ps(alpha);
    int bf = bf16_here(), dot = dot_mode();
    for (int is = 0; is < mc; is += MR) {
        int mr = mc - is < MR ? mc - is : MR;
        __mmask16 m = lanes(mr);
        if (dot) {
            for (int p = 0; p < kc; p += 2) {
                const float *r = A + (size_t)(p0 + p) * lda + i0 + is;
                __m512 even = maybe_bf16_512(1, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, r)));
                __m512 odd = p + 1 < kc ? maybe_bf16_512(1, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, r + lda)))
                                        : _mm512_setzero_ps();
                _mm512_mask_storeu_epi32(dst + (size_t)is * kc + (size_t)(p / 2) * MR, (__mmask16)0x0FFF,
                                         bf16_pairs(even, odd));
            }
            continue;
        }
        for (int p = 0; p < kc; p++)
            _mm512_mask_storeu_ps(dst + (size_t)is * kc + (size_t)p * MR, (__mmask16)0x0FFF,
                                  maybe_bf16_512(bf, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, A + (size_t)(p0 + p) * lda + i0 + is))));
    }
}

/* one NR-wide strip of pack_b: op(B) rows [p0, p0+kc), columns [j, j+nr) */
__attribute__((target("avx512f")))
static void pack_b_strip_avx512(int trans_b, const float *B, int ldb, int p0, int kc, int j, int nr, float *d0) {
    if (!trans_b) {
        __mmask16 m0 = lanes(nr), m1 = lanes(nr - 16);
        int bf = bf16_here();
        if (dot_mode() || amx_on(kc)) {
            for (int p = 0; p < 2 * slice_pairs(kc); p += 2) { /* pairs past kc: zero */
                const float *src = B + (size_t)(p0 + p) * ldb + j;
                for (int h = 0; h < 2; h++) {
                    __mmask16 m = h ? m1 : m0;
                    __m512 even = p < kc ? maybe_bf16_512(1, _mm512_maskz_loadu_ps(m, src + 16 * h)) : _mm512_setzero_ps();
                    __m512 odd = p + 1 < kc ? maybe_bf16_512(1, _mm512_maskz_loadu_ps(m, src + ldb + 16 * h))
                                            : _mm512_setzero_ps();
                    _mm512_store_si512(d0 + (p / 2) * NR + 16 * h, bf16_pairs(even, odd));
                }
            }
            return;
        }
        for (int p = 0; p < kc; p++) {
            const float *src = B + (size_t)(p0 + p) * ldb + j;
            _mm512_store_ps(d0 + p * NR, maybe_bf16_512(bf, _mm512_maskz_loadu_ps(m0, src)));
            _mm512_store_ps(d0 + p * NR + 16, maybe_bf16_512(bf, _mm512_maskz_loadu_ps(m1, src + 16)));
        }
        return;
    }
    int dot = dot_mode() || amx_on(kc);
    if (amx_on(kc)) zero_pad_pairs(d0, kc);
    for (int h = 0; h < NR; h += 16) { /* B^T rows j+h .. j+h+15, 16 of its columns at a time */
        int rows = nr - h < 0 ? 0 : (nr - h < 16 ? nr - h : 16);
        for (int pb = 0; pb < kc; pb += 16) {
            int cols = kc - pb < 16 ? kc - pb : 16;
            __m512 out[16];
            load_transpose(B + (size_t)(j + h) * ldb + p0 + pb, ldb, rows, cols, 1.0f, bf16_here(), out);
            if (dot) {
                for (int q = 0; q < (cols + 1) / 2; q++)
                    _mm512_store_si512(d0 + (size_t)(pb / 2 + q) * NR + h, bf16_pairs(out[2 * q], out[2 * q + 1]));
                continue;
            }
            for (int p = 0; p < cols; p++) _mm512_store_ps(d0 + (size_t)(pb + p) * NR + h, out[p]);
        }
    }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* row (n floats) into NR-wide pieces strip_stride floats apart, the last one zero-padded */
__attribute__((target("avx512f")))
static void pack_b_row_avx512(float *d, size_t strip_stride, int n, const float *row) {
    int bf = bf16_here();
    for (int j = 0; j < n; j += NR, d += strip_stride) {
        int r = n - j;
        __mmask16 m0 = lanes(r), m1 = lanes(r - 16);
        _mm512_store_ps(d, maybe_bf16_512(bf, _mm512_maskz_loadu_ps(m0, row + j)));
        _mm512_store_ps(d + 16, maybe_bf16_512(bf, _mm512_maskz_loadu_ps(m1, row + j + 16)));
    }
}

/* the same for dot mode: row k of a slice into the low (k even) or high (k odd) halves of its
 * pair's words; the slice's last row, when kc is odd, writes whole words with a zero high half */
__attribute__((target("avx512f,avx512bw")))
static void pack_b_row_dot_avx512(float *d, size_t strip_stride, int n, const float *row, int odd, int last) {
    __mmask32 halves = last ? 0xFFFFFFFFu : odd ? 0xAAAAAAAAu : 0x55555555u;
    for (int j = 0; j < n; j += NR, d += strip_stride) {
        int r = n - j;
        __mmask16 m0 = lanes(r), m1 = lanes(r - 16);
        __m512i w0 = _mm512_castps_si512(maybe_bf16_512(1, _mm512_maskz_loadu_ps(m0, row + j)));
        __m512i w1 = _mm512_castps_si512(maybe_bf16_512(1, _mm512_maskz_loadu_ps(m1, row + j + 16)));
        if (!odd) w0 = _mm512_srli_epi32(w0, 16), w1 = _mm512_srli_epi32(w1, 16);
        _mm512_mask_storeu_epi16(d, halves, w0);
        _mm512_mask_storeu_epi16(d + 16, halves, w1);
    }
}
#endif

/* Pack rows [i0, i0+mc) x cols [p0, p0+kc) of alpha*op(A) into MR-row strips, k-major, zero-padded. */
static void pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc, float alpha,
                   float *dst) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (amx_on(kc)) { amx_pack_a(trans_a, A, lda, i0, mc, p0, kc, alpha, (amx_word *)dst); return; }
    if (an_cpu_avx512()) {
        if (trans_a) pack_a_cols_avx512(A, lda, i0, mc, p0, kc, alpha, dst);
        else pack_a_rows_avx512(A, lda, i0, mc, p0, kc, alpha, dst);
        return;
    }
    if (gemm_avx2() && !bf16_here()) { pack_a_avx2(trans_a, A, lda, i0, mc, p0, kc, alpha, dst); return; }
#endif
    int bf = bf16_here();
    for (int is = 0; is < mc; is += MR) {
        int mr = mc - is < MR ? mc - is : MR;
        for (int p = 0; p < kc; p++) {
            float *d = dst + (size_t)is * kc + p * MR;
            for (int i = 0; i < mr; i++) {
                int r = i0 + is + i, k = p0 + p;
                d[i] = maybe_bf16(bf, alpha * (trans_a ? A[(size_t)k * lda + r] : A[(size_t)r * lda + k]));
            }
            for (int i = mr; i < MR; i++) d[i] = 0.0f;
        }
    }
}

/* One NR-wide strip of op(B): rows [p0, p0+kc), columns [j, j+nr), zero-padded to NR. */
static void pack_b_strip(int trans_b, const float *B, int ldb, int p0, int kc, int j, int nr, float *d0) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (an_cpu_avx512()) { pack_b_strip_avx512(trans_b, B, ldb, p0, kc, j, nr, d0); return; }
    if (gemm_avx2() && !bf16_here()) { pack_b_strip_avx2(trans_b, B, ldb, p0, kc, j, nr, d0); return; }
#endif
    for (int p = 0; p < kc; p++) {
        float *d = d0 + p * NR;
        int k = p0 + p;
        if (!trans_b) {
            memcpy(d, B + (size_t)k * ldb + j, nr * sizeof(float));
        } else {
            for (int jj = 0; jj < nr; jj++) d[jj] = B[(size_t)(j + jj) * ldb + k];
        }
        if (bf16_here()) for (int jj = 0; jj < nr; jj++) d[jj] = gemm_round_bf16(d[jj]);
        for (int jj = nr; jj < NR; jj++) d[jj] = 0.0f;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* k pair q of a panel of nc columns (B not transposed, pair layouts): rows p0+2q and p0+2q+1 read
 * whole (one contiguous run each), into every strip's pair row q; zeros past kc and nc */
__attribute__((target("avx512f")))
static void pack_b_pair_row_avx512(const float *B, int ldb, int p0, int kc, int q, int j0, int nc, float *dst) {
    int p = 2 * q;
    const float *r0 = B + (size_t)(p0 + p) * ldb + j0, *r1 = r0 + ldb;
    for (int js = 0; js < nc; js += 16) {
        __mmask16 m = lanes(nc - js);
        __m512 even = p < kc ? maybe_bf16_512(1, _mm512_maskz_loadu_ps(m, r0 + js)) : _mm512_setzero_ps();
        __m512 odd = p + 1 < kc ? maybe_bf16_512(1, _mm512_maskz_loadu_ps(m, r1 + js)) : _mm512_setzero_ps();
        _mm512_store_si512(dst + (size_t)(js / NR * NR) * kc + (size_t)q * NR + js % NR, bf16_pairs(even, odd));
    }
    if (nc % NR && nc % NR <= 16) /* the last strip's second half */
        _mm512_store_si512(dst + (size_t)(nc / NR * NR) * kc + (size_t)q * NR + 16, _mm512_setzero_si512());
}
#endif

/* a row of B (n floats) in the float32 layout: NR-wide pieces strip_stride floats apart, the last
 * one zero-padded, rounded in bf16 mode */
static void pack_b_row_into(float *d, size_t strip_stride, int n, const float *row) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (an_cpu_avx512()) { pack_b_row_avx512(d, strip_stride, n, row); return; }
#endif
    int j = 0, bf = bf16_here();
    if (!bf) /* whole strips: plain copies (vectorised) */
        for (; j + NR <= n; j += NR, d += strip_stride) memcpy(d, row + j, NR * sizeof(float));
    for (; j < n; j += NR, d += strip_stride)
        for (int jj = 0; jj < NR; jj++) d[jj] = j + jj < n ? maybe_bf16(bf, row[j + jj]) : 0.0f;
}

/* pack_b's work comes in units: k rows (float32 layout), k pairs (pair layouts) or NR-wide strips
 * (B transposed); pack_b_unit packs unit u of pack_b_units(...) */
static int pack_b_units(int trans_b, int kc, int nc) {
    if (trans_b) return (nc + NR - 1) / NR;
#if defined(__x86_64__) && defined(__GNUC__)
    if (dot_mode() || amx_on(kc)) return slice_pairs(kc);
#endif
    return kc;
}
static void pack_b_unit(int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc, float *dst, int u) {
    if (!trans_b) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (dot_mode() || amx_on(kc)) { pack_b_pair_row_avx512(B, ldb, p0, kc, u, j0, nc, dst); return; }
#endif
        pack_b_row_into(dst + (size_t)u * NR, (size_t)NR * kc, nc, B + (size_t)(p0 + u) * ldb + j0);
        return;
    }
    int js = u * NR, nr = nc - js < NR ? nc - js : NR;
    pack_b_strip(trans_b, B, ldb, p0, kc, j0 + js, nr, dst + (size_t)js * kc);
}

/* Pack rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) into NR-column strips, zero-padded, the units
 * shared among the threads of gemm's region, if any. B not transposed is packed by rows (pairs of
 * rows in the pair layouts): each row of B is read as one run (by strips, a panel of a wide B,
 * such as a fully connected layer's weights, read 128 bytes of each of kc rows far apart, at a
 * quarter of the memory's speed). */
static void pack_b(int trans_b, const float *B, int ldb, int p0, int kc, int j0, int nc, float *dst) {
    int units = pack_b_units(trans_b, kc, nc);
#pragma omp for schedule(static)
    for (int u = 0; u < units; u++) pack_b_unit(trans_b, B, ldb, p0, kc, j0, nc, dst, u);
}

/* The B panel buffer is the calling thread's scratch (an_thread_buffer): allocating it per call
 * made every gemm an mmap/munmap pair, and the TLB shootdowns cost more than small products. */
static float *pack_buffer(size_t floats) {
    return an_thread_buffer(AN_BUF_GEMM_PACK, floats * sizeof(float));
}

/* Rows per row block: equal blocks of at most about MC rows, a multiple of MR (so a packed A has
 * the same layout whoever packs it). */
static int row_block(int M) {
    int mblocks = (M + MC - 1) / MC;
    return ((M + mblocks - 1) / mblocks + MR - 1) / MR * MR;
}

/* K slice length: equal slices of at most KC (no short last slice paying the tile stores alone);
 * 2 KC under AMX (the pairs take half the room, and each slice loads and stores the C tiles) */
static int slice_len(int K) {
    int kc = amx_on(K) ? 2 * KC : KC, slices = (K + kc - 1) / kc;
    return slices > 0 ? (K + slices - 1) / slices : kc;
}

/* (with room behind for AMX's tile loads past the last row: AMX_A_OVERREAD) */
size_t gemm_packed_a_floats(int M, int K) {
    return (size_t)((M + MR - 1) / MR * MR) * (K > 0 ? K : 0) + (M > 0 && K > 0 ? AMX_A_OVERREAD : 0);
}

/* Layout: K slice p0 starts at p0 * Mpad (Mpad = M rounded up to MR); inside it the row block at i0
 * starts at i0 * kc, as pack_a writes a block. */
void gemm_pack_a(int trans_a, int M, int K, float alpha, const float *A, int lda, float *Ap) {
    int mc_blk = row_block(M), mblocks = (M + mc_blk - 1) / mc_blk, ks = slice_len(K), slices = (K + ks - 1) / ks;
    size_t mpad = (size_t)(M + MR - 1) / MR * MR;
    int fp32 = t_fp32;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && slices * mblocks > 1)
    for (int t = 0; t < slices * mblocks; t++) {
        int p0 = (t / mblocks) * ks, i0 = (t % mblocks) * mc_blk, was = gemm_fp32_scope(fp32);
        int kc = K - p0 < ks ? K - p0 : ks, mc = M - i0 < mc_blk ? M - i0 : mc_blk;
        pack_a(trans_a, A, lda, i0, mc, p0, kc, alpha, Ap + (size_t)p0 * mpad + (size_t)i0 * kc);
        gemm_fp32_scope(was);
    }
}

static void gemm_core(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *Ap, const float *B, int ldb, const float *Bp, float beta, float *C, int ldc);

size_t gemm_packed_b_floats(int K, int N) { return (size_t)(K > 0 ? K : 0) * ((N + NR - 1) / NR * NR); }

/* Layout: K slice p0 starts at p0 * Npad (Npad = N rounded up to NR); inside it the NR-wide strip
 * holding column j starts at (j / NR * NR) * kc, row k - p0 of it at (k - p0) * NR. */
void gemm_pack_b_row(float *Bp, int K, int N, int k, const float *row) {
    int ks = slice_len(K), p0 = k / ks * ks, kc = K - p0 < ks ? K - p0 : ks;
    size_t npad = (size_t)(N + NR - 1) / NR * NR;
    float *d = Bp + (size_t)p0 * npad + (size_t)(k - p0) * NR;
#if defined(__x86_64__) && defined(__GNUC__)
    if (dot_mode() || amx_on(kc)) {
        int r = k - p0;
        pack_b_row_dot_avx512(Bp + (size_t)p0 * npad + (size_t)(r / 2) * NR, (size_t)NR * kc, N, row, r & 1,
                              !(r & 1) && r == kc - 1);
        if (r == kc - 1 && amx_on(kc)) /* the slice's pad pairs, in every strip */
            for (size_t js = 0; js < npad; js += NR) zero_pad_pairs(Bp + (size_t)p0 * npad + js * kc, kc);
        return;
    }
#endif
    pack_b_row_into(d, (size_t)NR * kc, N, row);
}

void gemm_packed_ab(int M, int N, int K, const float *Ap, const float *Bp, float beta, float *C, int ldc) {
    gemm_core(0, 0, M, N, K, 1.0f, NULL, 0, Ap, NULL, 0, Bp, beta, C, ldc);
}

/* entry (row p, lane i) of a dot-mode packed strip `width` lanes wide, as a float */
static float packed_pair_at(const float *strip, int width, int p, int i) {
    uint32_t w;
    memcpy(&w, strip + (size_t)(p / 2) * width + i, 4);
    w = p & 1 ? w & 0xFFFF0000u : w << 16;
    float x;
    memcpy(&x, &w, 4);
    return x;
}

/* gemm_packed as plain loops (float64 sums), reading A out of its packed layout */
void gemm_packed_ref(int trans_b, int M, int N, int K, const float *Ap, const float *B, int ldb, float beta,
                     float *C, int ldc) {
    int mc_blk = row_block(M), ks = slice_len(K), dot = dot_mode(), amx = amx_on(K), bf = bf16_here();
    size_t mpad = (size_t)(M + MR - 1) / MR * MR;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                int p0 = k / ks * ks, kc = K - p0 < ks ? K - p0 : ks, i0 = i / mc_blk * mc_blk;
                int is = (i - i0) / MR * MR;
                double a = amx ? packed_pair_at(Ap + (size_t)p0 * mpad + (size_t)i0 * kc + (size_t)(i - i0) * amx_pairs(kc), 1, k - p0, 0)
                         : dot ? packed_pair_at(Ap + (size_t)p0 * mpad + (size_t)(i0 + is) * kc, MR, k - p0, i - i0 - is)
                               : Ap[(size_t)p0 * mpad + (size_t)(i0 + is) * kc + (size_t)(k - p0) * MR + (i - i0 - is)];
                acc += a * maybe_bf16(bf, trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_core(trans_a, trans_b, M, N, K, alpha, A, lda, NULL, B, ldb, NULL, beta, C, ldc);
}

void gemm_packed(int trans_b, int M, int N, int K, const float *Ap, const float *B, int ldb, float beta, float *C,
                 int ldc) {
    gemm_core(0, trans_b, M, N, K, 1.0f, NULL, 0, Ap, B, ldb, NULL, beta, C, ldc);
}

/* Columns per task in a panel of nc columns: the whole panel where there are enough row blocks
 * for every thread (twice over), else split so that all threads have work (multiples of NR). */
static int nt_size_for(int nc, int mblocks, int threads) {
    if (mblocks >= 2 * threads) return nc;
    int want = (2 * threads + mblocks - 1) / mblocks; /* column blocks per row block */
    return ((nc + want - 1) / want + NR - 1) / NR * NR;
}

/* run_task below with A read in place (rows lda apart; see micro_kernel_avx512_rows) */
#if defined(__x86_64__) && defined(__GNUC__)
static void run_task_rows(int kc, const float *a, size_t lda, int mc, const float *bp, float *c, int ldc, int nt,
                          int overwrite) {
    for (int is = 0; is < mc; is += 6) { /* panels of 6 rows, 64 columns at a time (rows6) */
        /* the next rows' piece (this block's next panel, or its first in the next K slice), fetched
         * during the first pair of column strips, when this panel's rows are in cache */
        const float *next = is + 6 < mc ? a + (size_t)(is + 6) * lda : a + kc;
        int mr = mc - is < 6 ? mc - is : 6;
        for (int js = 0; js < nt; js += 2 * NR) {
            int nr = nt - js < 2 * NR ? nt - js : 2 * NR;
            const float *pf = js == 0 ? next : NULL;
            if (nr > NR)
                micro_kernel_avx512_rows6(kc, a + (size_t)is * lda, lda, bp + (size_t)js * kc, c + (size_t)is * ldc + js,
                                          ldc, mr, nr, overwrite, pf);
            else /* a last strip of at most NR columns: the 12-row kernel on these rows */
                micro_kernel_avx512_rows(kc, a + (size_t)is * lda, lda, bp + (size_t)js * kc, c + (size_t)is * ldc + js,
                                         ldc, mr, nr, overwrite, pf);
        }
    }
}
#endif

/* One task's products for one K slice: C (mc x nt, row stride ldc) = or += the packed A block
 * times nt columns of the packed B panel (bp: its first strip) */
static void run_task(int kc, const float *ablk, int mc, const float *bp, float *c, int ldc, int nt, int overwrite,
                     int dot, int avx2, int amx) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (amx) { amx_block(kc, (const amx_word *)ablk, mc, (const amx_word *)bp, c, ldc, nt, overwrite); return; }
    if (avx2 && !dot) { block_avx2(kc, ablk, mc, bp, c, ldc, nt, overwrite); return; }
#endif
    (void)avx2;
    for (int is = 0; is < mc; is += MR) { /* row panel by row panel: C written in whole rows (fc6's dw: 1.3x) */
        int mr = mc - is < MR ? mc - is : MR;
        for (int js = 0; js < nt; js += NR) {
            int nr = nt - js < NR ? nt - js : NR;
            micro_kernel(kc, ablk + (size_t)is * kc, bp + (size_t)js * kc, c + (size_t)is * ldc + js, ldc, mr, nr,
                         overwrite, dot);
        }
    }
}

/* The product, with A given (A, lda, trans_a, alpha) or already packed (Ap, alpha folded in), and
 * B given (B, ldb, trans_b) or already packed (Bp). */
static void gemm_core(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *Ap, const float *B, int ldb, const float *Bp, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (Ap && K > 0) alpha = 1.0f;
    int work = K > 0 && alpha != 0.0f, dot = dot_mode(), avx2 = gemm_avx2(), amx = amx_on(K);
    int ks = slice_len(K), kc_max = K < ks ? K : ks, nc_max = N < NC ? N : NC;
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    size_t mpad = (size_t)(M + MR - 1) / MR * MR, npad = (size_t)(N + NR - 1) / NR * NR;
    /* Tasks of MC rows x nt_size columns of a panel of nc columns; each packs its A block once for
     * all its columns. Enough row blocks for every thread: whole panels (A packed once per slice);
     * otherwise the columns are split so that all threads have work. */
    int mc_blk = row_block(M), mblocks = (M + mc_blk - 1) / mc_blk;
    /* K inside the tasks (kinner): where one panel holds all columns and a task's C block is small
     * (fc6 forward: 4096 x 128, K 9216), B is packed whole up front (or was: Bp) and each task runs
     * all K slices on its block of C, which stays in L2, instead of every slice passing over all of
     * C with two barriers. The same slices in the same order: the same bits. */
    int kinner = work && N <= NC && K > ks && (size_t)mc_blk * nt_size_for(N, mblocks, threads) <= 32768 &&
                 (Bp || (size_t)K * npad <= ((size_t)4 << 20));
    /* A read in place in the K-inside products (see micro_kernel_avx512_rows), where packing would
     * only copy it: float32 operands unscaled, the AVX-512 kernel */
    int in_place = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    in_place = kinner && !Ap && !trans_a && alpha == 1.0f && !bf16_here() && !dot && !amx && !avx2 && an_cpu_avx512();
#endif
    (void)in_place;
    /* Columns split, where a product has few row blocks (the fully connected layers' dx = dy w,
     * 128 x 9216, K 4096) or one K slice (their dw = dy^T x, 4096 x 9216, K 128), and not K inside:
     * each thread takes whole strips of columns and runs all panels and slices of them alone,
     * packing its own B pieces, so a product is not two barriers per panel and slice (a B panel
     * packed by all threads, then its tasks; 288 in fc6's dx) with a thread waiting at each. A is
     * packed whole first (at most 16 MB), unless given packed. The same slices in the same order:
     * the same bits. fc6's dx 38.3 -> 34.5 ms, dw 27.5 -> 26.5 (2 threads, Xeon with AMX). */
    int split = work && !kinner && threads > 1 && (mblocks < 2 * threads || K <= ks) &&
                npad >= (size_t)threads * 4 * NR && (Ap || mpad * (size_t)K <= ((size_t)4 << 20));
    /* Split, B not transposed, float32 on the AVX-512 kernel: each thread packs its next B panel
     * while it runs the current one, a few rows after each kernel call, rows that the kernel call
     * AHEAD_CALLS before fetched into L2 (the kernel prefetches a few lines every 4 k). fc6's
     * dx = dy w packs all 151 MB of w, in 2 KB runs of rows 36 KB apart, and packing each panel
     * before its calls waited on memory for about a sixth of the time; the whole next panel
     * prefetched during the current one did better (fc6's dx 30-31 -> 28.5 ms) but not for fc7, whose
     * rows 16 KB apart fell into an eighth of L2's sets and evicted each other; row by row, a few
     * calls ahead: fc7's dx 13-13.6 -> 12.4-12.6 ms, fc6's 29-30 -> 26.7-28.2 (memory cold, 2
     * threads, Xeon with AMX). Panels of NC / 2 columns (two per thread). The same kernel calls in
     * the same order: the same bits. */
    int ahead = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    ahead = split && !Bp && !trans_b && !dot && !amx && !avx2 && an_cpu_avx512();
#endif
    int ncs = ahead ? NC / 2 : NC, ncs_max = N < ncs ? N : ncs;
    size_t own1 = Bp ? 0 : ((size_t)kc_max * (ncs_max + NR) + 15) / 16 * 16; /* a thread's B panel (split) */
    size_t own = ahead ? 2 * own1 : own1;                                        /* (ahead: two) */
    size_t a_room = Ap ? 0 : (gemm_packed_a_floats(M, K) + 15) / 16 * 16 + 16;  /* A packed whole (split) */
    float *bpack = !work || (Bp && (!split || Ap)) ? NULL
                   : split ? pack_buffer(a_room + own * threads)
                   : pack_buffer(kinner ? (size_t)K * npad : (size_t)kc_max * (nc_max + NR));
    if (work && !bpack && !Bp) {
        if (!Ap) { gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
        gemm_packed_ref(trans_b, M, N, K, Ap, B, ldb, beta, C, ldc); /* no room for the B panel */
        return;
    }
    /* One parallel region for the whole product (waking threads costs more than a small slice):
     * the B panel is packed by all threads, then the tasks run, with a barrier between. */
    int fp32 = t_fp32;
#pragma omp parallel if (threads > 1)
    {
        int was_fp32 = gemm_fp32_scope(fp32); /* the caller's scope (restored below) */
        if (beta != 1.0f && !(beta == 0.0f && work)) { /* beta 0 with work: the first K slice overwrites */
#pragma omp for schedule(static)
            for (int i = 0; i < M; i++) {
                float *c = C + (size_t)i * ldc;
                if (beta == 0.0f) memset(c, 0, N * sizeof(float));
                else for (int j = 0; j < N; j++) c[j] *= beta;
            }
        }
        float apack[(MC + MR + 16) * KC] __attribute__((aligned(64))); /* 112 KB (AMX: 16 rows read past) */
        if (kinner) {
            const float *ball = Bp;
            if (!Bp) { /* all of op(B) in gemm_pack_b_row's layout */
                int strips = (int)(npad / NR), slices = (K + ks - 1) / ks;
#pragma omp for schedule(static)
                for (int t = 0; t < slices * strips; t++) {
                    int p0 = (t / strips) * ks, kc = K - p0 < ks ? K - p0 : ks, js = (t % strips) * NR;
                    pack_b_strip(trans_b, B, ldb, p0, kc, js, N - js < NR ? N - js : NR, bpack + (size_t)p0 * npad + (size_t)js * kc);
                }
                ball = bpack;
            }
            int nt_size = nt_size_for(N, mblocks, threads), nblocks = (N + nt_size - 1) / nt_size;
            /* K in spans of B of at most 512 KB a task (4 slices of fc6's forward) that stay in L2 while
             * the thread runs its blocks (2-3%); every span gives each thread the same tasks
             * (static schedule, same count), so no barrier between spans */
            int span = (int)(((size_t)128 << 10) / ((size_t)ks * nt_size)) * ks;
            if (span < ks) span = ks;
            /* A read in place has no block layout to keep: its rows go in 6-row panels to a multiple of
             * the threads' count of blocks (fc6's 4096 rows were 43 blocks of 96: 2112 rows for one
             * thread, 1984 for the other) */
            int panels = (M + 5) / 6, rblocks = mblocks;
            if (in_place) {
                rblocks = ((panels + 15) / 16 + threads - 1) / threads * threads;
                if (rblocks > panels) rblocks = panels;
            }
            for (int k0 = 0; k0 < K; k0 += span)
#pragma omp for schedule(static) nowait
            for (int t = 0; t < rblocks * nblocks; t++) {
                int i0 = (t % rblocks) * mc_blk, jt = (t / rblocks) * nt_size;
                int mc = M - i0 < mc_blk ? M - i0 : mc_blk, nt = N - jt < nt_size ? N - jt : nt_size;
                if (in_place) {
                    int rb = t % rblocks, i1 = (int)((long)panels * (rb + 1) / rblocks) * 6;
                    i0 = (int)((long)panels * rb / rblocks) * 6;
                    mc = (i1 < M ? i1 : M) - i0;
                }
                for (int p0 = k0; p0 < K && p0 < k0 + span; p0 += ks) {
                    int kc = K - p0 < ks ? K - p0 : ks;
                    const float *ablk = apack;
#if defined(__x86_64__) && defined(__GNUC__)
                    if (in_place) {
                        run_task_rows(kc, A + (size_t)i0 * lda + p0, (size_t)lda, mc, ball + (size_t)p0 * npad + (size_t)jt * kc,
                                      C + (size_t)i0 * ldc + jt, ldc, nt, p0 == 0 && beta == 0.0f);
                        continue;
                    }
#endif
                    if (Ap) ablk = Ap + (size_t)p0 * mpad + (size_t)i0 * kc;
                    else pack_a(trans_a, A, lda, i0, mc, p0, kc, alpha, apack);
                    run_task(kc, ablk, mc, ball + (size_t)p0 * npad + (size_t)jt * kc, C + (size_t)i0 * ldc + jt, ldc,
                             nt, p0 == 0 && beta == 0.0f, dot, avx2, amx);
                }
            }
        }
        if (split) {
            const float *apk = Ap; /* bpack: [A packed whole] [thread 0's B panel] [thread 1's] ... */
            if (!Ap) { /* A packed whole (gemm_pack_a's layout), shared */
                int slices = (K + ks - 1) / ks;
                float *a_all = bpack;
#pragma omp for schedule(static)
                for (int t = 0; t < slices * mblocks; t++) {
                    int p0 = (t / mblocks) * ks, i0 = (t % mblocks) * mc_blk;
                    pack_a(trans_a, A, lda, i0, M - i0 < mc_blk ? M - i0 : mc_blk, p0, K - p0 < ks ? K - p0 : ks, alpha,
                           a_all + (size_t)p0 * mpad + (size_t)i0 * (K - p0 < ks ? K - p0 : ks));
                }
                apk = a_all;
            }
            int me = omp_get_thread_num(), team = omp_get_num_threads(), strips = (int)(npad / NR);
            int jlo = strips * me / team * NR, jhi = strips * (me + 1) / team * NR;
            if (jhi > N) jhi = N;
            float *bown = Bp ? NULL : bpack + a_room + (size_t)me * own;
#if defined(__x86_64__) && defined(__GNUC__)
            if (ahead && jlo < jhi) { /* steps s: column panels of ncs, K slices inside; in kernel call q of a
                                        * step, rpc rows of the next step's B fetched, and the rows
                                        * fetched AHEAD_CALLS calls before packed into the other panel */
                int per = (K + ks - 1) / ks, steps = (jhi - jlo + ncs - 1) / ncs * per, calls = 0;
                for (int i0 = 0; i0 < M; i0 += mc_blk) calls += ((M - i0 < mc_blk ? M - i0 : mc_blk) + MR - 1) / MR;
                calls *= (ncs_max + NR - 1) / NR;
                for (int s = 0; s < steps; s++) {
                    int j0 = jlo + s / per * ncs, p0 = s % per * ks;
                    int nc = jhi - j0 < ncs ? jhi - j0 : ncs, kc = K - p0 < ks ? K - p0 : ks;
                    int nj0 = jlo + (s + 1) / per * ncs, np0 = (s + 1) % per * ks;
                    int nnc = jhi - nj0 < ncs ? jhi - nj0 : ncs, nkc = K - np0 < ks ? K - np0 : ks;
                    int rows = s + 1 < steps ? nkc : 0, rpc = (rows + calls - 1) / calls, lpr = (nnc + 15) / 16, q = 0;
                    float *cur = bown + (size_t)(s & 1) * own1, *nxt = bown + (size_t)((s + 1) & 1) * own1;
                    if (s == 0)
                        for (int u = 0; u < kc; u++) pack_b_unit(0, B, ldb, p0, kc, j0, nc, cur, u);
                    for (int i0 = 0; i0 < M; i0 += mc_blk)
                        for (int is = i0; is < M && is < i0 + mc_blk; is += MR)
                            for (int js = 0; js < nc; js += NR, q++) {
                                int r0 = q * rpc, nrow = rows - r0 < rpc ? rows - r0 : rpc;
                                const float *pf = nrow > 0 ? B + (size_t)(np0 + r0) * ldb + nj0 : NULL;
                                micro_kernel_avx512_pf(kc, apk + (size_t)p0 * mpad + (size_t)is * kc, cur + (size_t)js * kc,
                                                       C + (size_t)is * ldc + j0 + js, ldc, M - is < MR ? M - is : MR,
                                                       nc - js < NR ? nc - js : NR, p0 == 0 && beta == 0.0f,
                                                       pf, (size_t)ldb, lpr, pf ? nrow * lpr : 0);
                                if (q >= AHEAD_CALLS) /* the rows fetched AHEAD_CALLS calls back */
                                    for (int u = (q - AHEAD_CALLS) * rpc; u < rows && u < (q - AHEAD_CALLS + 1) * rpc; u++)
                                        pack_b_unit(0, B, ldb, np0, nkc, nj0, nnc, nxt, u);
                            }
                    for (int u = (q > AHEAD_CALLS ? q - AHEAD_CALLS : 0) * rpc; u < rows; u++) /* any left */
                        pack_b_unit(0, B, ldb, np0, nkc, nj0, nnc, nxt, u);
                }
            }
#endif
            for (int j0 = jlo; !ahead && j0 < jhi; j0 += NC) {
                int nc = jhi - j0 < NC ? jhi - j0 : NC;
                for (int p0 = 0; p0 < K; p0 += ks) {
                    int kc = K - p0 < ks ? K - p0 : ks, overwrite = p0 == 0 && beta == 0.0f;
                    const float *panel = bown;
                    if (Bp) panel = Bp + (size_t)p0 * npad + (size_t)j0 * kc;
                    else
                        for (int u = 0, units = pack_b_units(trans_b, kc, nc); u < units; u++)
                            pack_b_unit(trans_b, B, ldb, p0, kc, j0, nc, bown, u);
                    for (int i0 = 0; i0 < M; i0 += mc_blk)
                        run_task(kc, apk + (size_t)p0 * mpad + (size_t)i0 * kc, M - i0 < mc_blk ? M - i0 : mc_blk, panel,
                                 C + (size_t)i0 * ldc + j0, ldc, nc, overwrite, dot, avx2, amx);
                }
            }
        }
        for (int j0 = 0; work && !kinner && !split && j0 < N; j0 += NC) {
            int nc = N - j0 < NC ? N - j0 : NC, nt_size = nt_size_for(nc, mblocks, threads), nblocks = (nc + nt_size - 1) / nt_size;
            for (int p0 = 0; p0 < K; p0 += ks) {
                int kc = K - p0 < ks ? K - p0 : ks, overwrite = p0 == 0 && beta == 0.0f;
                const float *panel = bpack;
                if (Bp) panel = Bp + (size_t)p0 * npad + (size_t)j0 * kc;
                else pack_b(trans_b, B, ldb, p0, kc, j0, nc, bpack); /* ends with a barrier */
#pragma omp for schedule(static)
                for (int t = 0; t < mblocks * nblocks; t++) {
                    /* consecutive tasks (one thread's share) cover all row blocks of a column block */
                    int i0 = (t % mblocks) * mc_blk, jt = (t / mblocks) * nt_size;
                    int mc = M - i0 < mc_blk ? M - i0 : mc_blk;
                    int nt = nc - jt < nt_size ? nc - jt : nt_size;
                    const float *ablk = apack;
                    if (Ap) ablk = Ap + (size_t)p0 * mpad + (size_t)i0 * kc;
                    else pack_a(trans_a, A, lda, i0, mc, p0, kc, alpha, apack);
                    run_task(kc, ablk, mc, panel + (size_t)jt * kc, C + (size_t)i0 * ldc + j0 + jt, ldc, nt, overwrite,
                             dot, avx2, amx);
                } /* the barrier here keeps the panel until every task is done with it */
            }
        }
        gemm_fp32_scope(was_fp32);
    }
}

void gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    int bf = bf16_here();
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)maybe_bf16(bf, alpha * a) * maybe_bf16(bf, b);
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}
