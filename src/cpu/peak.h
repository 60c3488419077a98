/* peak.h: the measured float32 FMA peak of this machine (see peak.c). */
#ifndef ALEXNET_PEAK_H
#define ALEXNET_PEAK_H
/* GFLOP/s of dense multiply-adds on `threads` threads (0 = OpenMP's default) over about `seconds`. */
double cpu_fma_peak_gflops(int threads, double seconds);
const char *cpu_fma_isa(void); /* "AVX-512", "AVX2" or "scalar": what the measurement used */
#endif
