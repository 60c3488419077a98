/* gemm_amx.c: AMX bfloat16 tiles for gemm's bf16 mode (gemm_amx.h): the A packer for tile rows
 * and a task's products, C in 16x16 float32 tiles (up to 2 x 2 of them: tmm0-3), A (tmm4-5) and B
 * (tmm6-7) 16 k pairs deep; TDPBF16PS adds both exact products of each pair to the float32 sums.
 * Linux hands out the tile state only on request (amx_usable asks once, for the whole process). */
#include "gemm_amx.h"
#include "gemm_simd.h"
#include "peak.h"
#include <string.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* XCR0 bits 17 (tile config) and 18 (tile data): the OS saves the tile state */
__attribute__((target("xsave")))
static int os_tile_state(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return 0; /* OSXSAVE */
    unsigned long long xcr0 = _xgetbv(0);
    return (xcr0 >> 17 & 3) == 3;
}

static int amx_probe(void) {
    if (!cpu_has_amx_bf16() || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !os_tile_state())
        return 0;
#if defined(__linux__) && defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}

int amx_usable(void) {
    static int cached = -1; /* a race only repeats the same idempotent request */
    if (cached < 0) cached = amx_probe();
    return cached;
}

/* 16 floats already rounded to bfloat16, as 16 bf16 values (their upper halves) */
__attribute__((target("avx512f")))
static inline __m256i bf16_halves(__m512 x) { return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(x), 16)); }

/* 32 floats (two vectors) rounded to bfloat16, as 16 pair words (element 2p low, 2p+1 high) */
__attribute__((target("avx512f")))
static inline __m512i pairs32(__m512 lo, __m512 hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(bf16_halves(maybe_bf16_512(1, lo))),
                              bf16_halves(maybe_bf16_512(1, hi)), 1);
}

__attribute__((target("avx512f")))
void amx_pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, amx_word *dst) {
    int kp = amx_pairs(kc);
    __m512 va = _mm512_set1_ps(alpha);
    if (!trans_a) { /* rows of A are rows of the layout: 32 k at a time, zeros past kc */
        for (int i = 0; i < mc; i++) {
            const float *src = A + (size_t)(i0 + i) * lda + p0;
            for (int pb = 0; pb < 2 * kp; pb += 32) {
                __m512 x0 = pb < kc ? _mm512_mul_ps(va, _mm512_maskz_loadu_ps(lanes(kc - pb), src + pb)) : _mm512_setzero_ps();
                __m512 x1 = pb + 16 < kc ? _mm512_mul_ps(va, _mm512_maskz_loadu_ps(lanes(kc - pb - 16), src + pb + 16))
                                         : _mm512_setzero_ps();
                _mm512_storeu_si512(dst + (size_t)i * kp + pb / 2, pairs32(x0, x1));
            }
        }
        return;
    }
    for (int mb = 0; mb < mc; mb += 16) { /* A^T: 16 k x 16 rows at a time, transposed */
        int cols = mc - mb < 16 ? mc - mb : 16;
        for (int pb = 0; pb < 2 * kp; pb += 16) {
            __m512 out[16];
            if (pb < kc) load_transpose(A + (size_t)(p0 + pb) * lda + i0 + mb, lda, kc - pb, cols, alpha, 1, out);
            else for (int m = 0; m < 16; m++) out[m] = _mm512_setzero_ps();
            for (int m = 0; m < cols; m++)
                _mm256_storeu_si256((__m256i *)(void *)(dst + (size_t)(mb + m) * kp + pb / 2), bf16_halves(out[m]));
        }
    }
}

typedef struct __attribute__((aligned(64))) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} TileConfig;

/* a constant in memory: GCC does not see LDTILECFG read its operand, and dropped the stores that
 * built a local configuration as dead (the instruction then faulted on a zero palette) */
static const TileConfig tiles_16x64 = {.palette = 1,
                                       .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                       .rows = {16, 16, 16, 16, 16, 16, 16, 16}};

__attribute__((target("amx-tile")))
void amx_tiles_configure(void) { _tile_loadconfig(&tiles_16x64); }

/* an edge tile (rows x cols of C) through a 16x16 scratch tile */
static void edge_in(float *t, const float *c, int ldc, int rows, int cols) {
    memset(t, 0, 256 * sizeof(float));
    for (int i = 0; i < rows; i++) memcpy(t + 16 * i, c + (size_t)i * ldc, cols * sizeof(float));
}
static void edge_out(const float *t, float *c, int ldc, int rows, int cols) {
    for (int i = 0; i < rows; i++) memcpy(c + (size_t)i * ldc, t + 16 * i, cols * sizeof(float));
}

__attribute__((target("amx-tile,amx-bf16,avx512f")))
void amx_block(int kc, const amx_word *a, int mc, const amx_word *b, float *c, int ldc, int nt, int overwrite) {
    amx_tiles_configure();
    int kp = amx_pairs(kc);
    size_t sa = (size_t)kp * 4, sc = (size_t)ldc * 4;
    float edge[4][256] __attribute__((aligned(64)));
    /* 32 x 32 blocks of C, row pair by row pair: the pair's A rows (32 x kp words) stay in L1 while
     * the B strips stream past (strip by strip was about a fifth slower on large products) */
    for (int is = 0; is < mc; is += 32) {
        int mr = mc - is < 32 ? mc - is : 32, rt = mr > 16 ? 2 : 1;
        for (int js = 0; js < nt; js += AMX_NR) {
            int nr = nt - js < AMX_NR ? nt - js : AMX_NR, ct = nr > 16 ? 2 : 1;
            const amx_word *bs = b + (size_t)js * kc;
            float *c0 = c + (size_t)is * ldc + js;
            const amx_word *ap = a + (size_t)is * kp;
/* tile T holds C rows 16 ti.., columns 16 tj.. of this 32 x 32 block */
#define TILE_GEOM(ti, tj) \
    int rows = mr - 16 * (ti) < 16 ? mr - 16 * (ti) : 16, cols = nr - 16 * (tj) < 16 ? nr - 16 * (tj) : 16; \
    float *cp = c0 + (size_t)16 * (ti) * ldc + 16 * (tj);
#define TILE_IN(T, ti, tj)                                                                   \
    if ((ti) < rt && (tj) < ct) {                                                            \
        TILE_GEOM(ti, tj)                                                                    \
        if (overwrite) _tile_zero(T);                                                        \
        else if (rows == 16 && cols == 16) _tile_loadd(T, cp, sc);                           \
        else { edge_in(edge[T], cp, ldc, rows, cols); _tile_loadd(T, edge[T], 64); }         \
    }
#define TILE_OUT(T, ti, tj)                                                                  \
    if ((ti) < rt && (tj) < ct) {                                                            \
        TILE_GEOM(ti, tj)                                                                    \
        if (rows == 16 && cols == 16) _tile_stored(T, cp, sc);                               \
        else { _tile_stored(T, edge[T], 64); edge_out(edge[T], cp, ldc, rows, cols); }       \
    }
            TILE_IN(0, 0, 0) TILE_IN(1, 0, 1) TILE_IN(2, 1, 0) TILE_IN(3, 1, 1)
            for (int p = 0; p < kp; p += 16) {
                _tile_loadd(4, ap + p, sa);
                _tile_loadd(6, bs + (size_t)p * AMX_NR, AMX_NR * 4);
                _tile_dpbf16ps(0, 4, 6);
                if (ct > 1) {
                    _tile_loadd(7, bs + (size_t)p * AMX_NR + 16, AMX_NR * 4);
                    _tile_dpbf16ps(1, 4, 7);
                }
                if (rt > 1) {
                    _tile_loadd(5, ap + (size_t)16 * kp + p, sa);
                    _tile_dpbf16ps(2, 5, 6);
                    if (ct > 1) _tile_dpbf16ps(3, 5, 7);
                }
            }
            TILE_OUT(0, 0, 0) TILE_OUT(1, 0, 1) TILE_OUT(2, 1, 0) TILE_OUT(3, 1, 1)
#undef TILE_IN
#undef TILE_OUT
#undef TILE_GEOM
        }
    }
    _tile_release();
}
#else
int amx_usable(void) { return 0; }
void amx_tiles_configure(void) {}
void amx_pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, amx_word *dst) {
    (void)trans_a, (void)A, (void)lda, (void)i0, (void)mc, (void)p0, (void)kc, (void)alpha, (void)dst;
}
void amx_block(int kc, const amx_word *a, int mc, const amx_word *b, float *c, int ldc, int nt, int overwrite) {
    (void)kc, (void)a, (void)mc, (void)b, (void)c, (void)ldc, (void)nt, (void)overwrite;
}
#endif
