/* peak.c: the machine's measured float32 multiply-add peak, the yardstick the benchmarks report
 * achieved GFLOP/s against. Each thread runs independent chains of fused multiply-adds on as many
 * registers as hide the FMA latency (24 vectors of 16 floats on AVX-512, 12 of 8 on AVX2), for a
 * fixed time, with the widest instructions the CPU runs. Also the rate of AVX512_BF16 dot products
 * (the only bfloat16 matrix instructions short of AMX), and the rate of AMX bfloat16 tiles where the
 * CPU reports them and Linux grants them. */
#include "peak.h"
#include "gemm_amx.h"
#include "../util/common.h"
#include <omp.h>
#include <stdint.h>

#include <cpuid.h>
#include <immintrin.h>

/* Each returns flops done; 24 (AVX-512) or 12 (AVX2) independent accumulators, written out so
 * they stay in registers. The result depends on every chain, so none is optimised away. */
#define CHAINS24(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11) \
                     OP(12) OP(13) OP(14) OP(15) OP(16) OP(17) OP(18) OP(19) OP(20) OP(21) OP(22) OP(23)
#define CHAINS12(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)

/* One AVX-512 chain kernel: CONSTS declares a and b, STEP(i) advances chain i, FLOPS per iteration. */
#define INIT(i) __m512 c##i = _mm512_set1_ps((float)i);
#define SUM(i) s = _mm512_add_ps(s, c##i);
#define KERNEL512(NAME, TARGET, CONSTS, STEP, FLOPS)                                   \
    __attribute__((target(TARGET), noinline)) static double NAME(long iters, float *out) { \
        CONSTS                                                                         \
        CHAINS24(INIT)                                                                 \
        for (long n = 0; n < iters; n++) { CHAINS24(STEP) }                            \
        __m512 s = _mm512_setzero_ps();                                                \
        CHAINS24(SUM)                                                                  \
        *out += _mm512_reduce_add_ps(s);                                               \
        return (FLOPS) * (double)iters;                                                \
    }
#define FMA_STEP(i) c##i = _mm512_fmadd_ps(c##i, a, b);
KERNEL512(fma_avx512, "avx512f", const __m512 a = _mm512_set1_ps(0.999999f); const __m512 b = _mm512_set1_ps(1e-7f);,
          FMA_STEP, 2.0 * 16 * 24)
/* AVX512_BF16: each VDPBF16PS multiplies 32 bf16 pairs into 16 float sums (64 flops). */
#define DP_STEP(i) c##i = _mm512_dpbf16_ps(c##i, a, b);
KERNEL512(dpbf16_avx512, "avx512f,avx512bf16",
          const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f7f); const __m512bh b = (__m512bh)_mm512_set1_epi32(0x33d633d6);,
          DP_STEP, 2.0 * 32 * 24)
#undef INIT
#undef SUM

__attribute__((target("avx2,fma"), noinline)) static double fma_avx2(long iters, float *out) {
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#define INIT(i) __m256 c##i = _mm256_set1_ps((float)i);
#define STEP(i) c##i = _mm256_fmadd_ps(c##i, a, b);
#define SUM(i) s = _mm256_add_ps(s, c##i);
    CHAINS12(INIT)
    for (long n = 0; n < iters; n++) { CHAINS12(STEP) }
    __m256 s = _mm256_setzero_ps();
    CHAINS12(SUM)
    float v[8];
    _mm256_storeu_ps(v, s);
    for (int i = 0; i < 8; i++) *out += v[i];
    return 2.0 * 8 * 12 * iters;
}

__attribute__((noinline)) static double fma_plain(long iters, float *out) {
    float c[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < 8; i++) c[i] = c[i] * 0.999999f + 1e-7f;
    for (int i = 0; i < 8; i++) *out += c[i];
    return 2.0 * 8 * iters;
}

/* GFLOP/s of `kernel` on `threads` threads (0 = OpenMP's default) over about `seconds`, after a
 * short warm-up that brings the clocks up. */
static double measure(double (*kernel)(long, float *), int threads, double seconds) {
    const long iters = 200000;
    if (threads < 1) threads = omp_get_max_threads();
    double total = 0.0;
    volatile float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        float s = 0.0f;
        kernel(iters / 10, &s);
        double flops = 0.0, t0 = an_now(), t;
        do flops += kernel(iters, &s);
        while ((t = an_now() - t0) < seconds);
        total += flops / t / 1e9;
        sink += s;
    }
    (void)sink;
    return total;
}

static double fma_run(long iters, float *out);

int cpu_has_avx512_bf16(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

/* CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE (what the CPU, or the hypervisor, reports) */
int cpu_has_amx_bf16(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    (void)a, (void)b, (void)c;
    return (d >> 22 & 1) && (d >> 24 & 1);
}

double cpu_bf16_dot_gflops(int threads, double seconds) {
    return cpu_has_avx512_bf16() ? measure(dpbf16_avx512, threads, seconds) : 0.0;
}

/* AMX: four independent 16x16 float32 tiles, each TDPBF16PS of a 16x32 by 32x16 bf16 tile (16,384
 * flops), the operands loaded once (the instructions' rate, as the FMA chains measure theirs) */
__attribute__((target("amx-tile,amx-bf16"), noinline)) static double amx_dp(long iters, float *out) {
    static const uint16_t ones[16 * 32] __attribute__((aligned(64))) = {[0 ... 511] = 0x3a83}; /* ~1e-3 */
    float c[256] __attribute__((aligned(64)));
    amx_tiles_configure();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, ones, 64);
    _tile_loadd(5, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_loadd(7, ones, 64);
    for (long n = 0; n < iters / 16; n++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    _tile_release();
    *out += c[0];
    return 4.0 * 16 * 16 * 32 * 2 * (double)(iters / 16);
}

double cpu_amx_bf16_gflops(int threads, double seconds) {
    return amx_usable() ? measure(amx_dp, threads, seconds) : 0.0;
}

static double fma_run(long iters, float *out) {
    if (__builtin_cpu_supports("avx512f")) return fma_avx512(iters, out);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_avx2(iters, out);
    return fma_plain(iters, out);
}

const char *cpu_fma_isa(void) {
    if (__builtin_cpu_supports("avx512f")) return "AVX-512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "AVX2";
    return "scalar";
}

double cpu_fma_peak_gflops(int threads, double seconds) { return measure(fma_run, threads, seconds); }
