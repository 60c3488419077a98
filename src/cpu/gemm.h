/* gemm.h: single-precision matrix multiply, the workhorse of convolution and fully connected layers.
 *   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,  op(X) = X or X^T, row-major.
 * gemm is blocked and packed with an AVX-512-sized micro-kernel (AVX-512, AVX2 with FMA, or GCC
 * vector extensions, chosen at run time), parallel over output tiles with OpenMP. Each element of
 * C is summed in the same order whatever the thread count, so results are reproducible; the AVX-512
 * and AVX2 kernels both sum with fused multiply-adds in that order, so they give the same bits. Called
 * inside an OpenMP parallel region it runs on the calling thread alone. gemm_ref is the plain
 * triple loop (float64 accumulation) it is tested against. */
#ifndef ALEXNET_GEMM_H
#define ALEXNET_GEMM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
          const float *B, int ldb, float beta, float *C, int ldc);
/* A left operand used by many products (a layer's weights for every image) packed once:
 * gemm_pack_a writes alpha*op(A) (M x K) into Ap (gemm_packed_a_floats(M, K) floats), and
 * gemm_packed computes C = Ap * op(B) + beta C exactly as gemm would. */
size_t gemm_packed_a_floats(int M, int K);
void gemm_pack_a(int trans_a, int M, int K, float alpha, const float *A, int lda, float *Ap);
void gemm_packed(int trans_b, int M, int N, int K, const float *Ap, const float *B, int ldb, float beta, float *C,
                 int ldc);
/* B (K x N) packed row by row by its producer (im2col writes each row straight into the layout):
 * gemm_pack_b_row stores row k of B (N floats) into Bp (gemm_packed_b_floats(K, N) floats, 64-byte
 * aligned), and
 * gemm_packed_ab computes C = Ap * B + beta C from both packed operands, as gemm would. */
size_t gemm_packed_b_floats(int K, int N);
void gemm_pack_b_row(float *Bp, int K, int N, int k, const float *row);
void gemm_packed_ab(int M, int N, int K, const float *Ap, const float *Bp, float beta, float *C, int ldc);
void gemm_packed_ref(int trans_b, int M, int N, int K, const float *Ap, const float *B, int ldb, float beta,
                     float *C, int ldc);
/* bfloat16 mode (--precision bf16), process-wide, off by default: every product rounds its
 * operands (alpha op(A) and op(B)) to bfloat16 as it packs them and sums the exact products in
 * float32, the arithmetic of AMX's TDPBF16PS and of the AVX-512 BF16 dot products. The references
 * round the same way. Set it before starting work, not during a product. */
void gemm_set_bf16(int on);
/* bf16 mode for the calling thread's products now: the setting, unless in a float32 scope */
int gemm_bf16(void);
/* The calling thread's products in float32 whatever the setting (on 1), or as set (on 0); returns
 * the previous scope, to restore. A product's own threads (gemm's parallel regions) take the
 * caller's scope. The Winograd layers' products run so (winograd.c). */
int gemm_fp32_scope(int on);
/* Whether bf16 products run on AVX512_BF16 dot products (VDPBF16PS: both exact products of a k pair
 * added to the float32 sum), rather than on the float32 kernels with rounded operands: where the
 * CPU has them and they are the faster instruction (AMD; on Intel they run at half the FMA rate),
 * in bf16 mode. The sums then run over k pairs, so they may differ from the float32 kernels'
 * in the last bits, and operands or sums below 2^-126 (subnormal) count as zero, as in AMX. gemm_bf16_dot_override(1 or 0) forces the choice where the CPU can (tests),
 * -1 restores it. */
int gemm_bf16_dot(void);
int gemm_bf16_dot_hw(void);
void gemm_bf16_dot_override(int on);
/* Whether bf16 products run on AMX tiles (TDPBF16PS, 16x16 float32 sums from 16x32 bf16 tiles; the
 * same pair arithmetic as the dot products): where the CPU reports AMX-BF16, the OS saves the tile
 * state and Linux grants it (gemm_bf16_amx_hw), in bf16 mode, unless dot products were forced;
 * products with K < 32 keep the float32 kernels on rounded operands. gemm_bf16_amx_override(0)
 * turns them off (tests), -1 restores the choice. */
int gemm_bf16_amx(void);
int gemm_bf16_amx_hw(void);
void gemm_bf16_amx_override(int on);
/* x rounded to the nearest bfloat16 (ties to even), as a float; overflow gives inf; NaN stays NaN
 * (made quiet, so that dropping its low 16 bits, as a bf16 copy does, keeps it a NaN) */
static inline float gemm_round_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint32_t r = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
    b = (b & 0x7FFFFFFFu) > 0x7F800000u ? b | 0x00400000u : r;
    memcpy(&x, &b, 4);
    return x;
}
/* Whether float32 products run on the AVX2 + FMA kernel: where the CPU has AVX2 and FMA but no
 * AVX-512 (an_cpu_avx512), unless gemm_avx2_override(0) turned it off for a test, to exercise the
 * portable kernel; gemm_avx2_override(-1) restores it. */
int gemm_avx2(void);
void gemm_avx2_override(int on);
void gemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
#endif
