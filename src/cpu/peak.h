/* peak.h: the measured float32 FMA peak of this machine (see peak.c). */
#ifndef ALEXNET_PEAK_H
#define ALEXNET_PEAK_H
/* GFLOP/s of dense multiply-adds on `threads` threads (0 = OpenMP's default) over about `seconds`. */
double cpu_fma_peak_gflops(int threads, double seconds);
const char *cpu_fma_isa(void); /* "AVX-512", "AVX2" or "scalar": what the measurement used */
/* GFLOP/s of AVX512_BF16 dot products (VDPBF16PS) the same way; 0 where the CPU has none */
double cpu_bf16_dot_gflops(int threads, double seconds);
int cpu_has_avx512_bf16(void);
int cpu_has_amx_bf16(void); /* CPUID reports AMX-TILE and AMX-BF16 */
/* GFLOP/s of AMX TDPBF16PS on tiles (4 independent sums per thread); 0 where AMX is not usable */
double cpu_amx_bf16_gflops(int threads, double seconds);
#endif
