/* gemm_amx.h: gemm's AMX bfloat16 tile kernels (internal to src/cpu; gemm.h is the interface).
 * In AMX layout a packed K slice of kc rows holds kc/2 k pairs (a 32-bit word: k even in the low
 * half, k+1 in the high half), zero-padded to amx_pairs(kc), a multiple of 16 (one tile's depth):
 *   A block (mc rows): row i's pairs contiguous, rows amx_pairs(kc) words apart;
 *   B strip (NR = 32 columns): pair row p holds the 32 columns' words (gemm's dot-mode layout).
 * Tile loads read whole 16-row tiles: up to 15 rows past an A block's last row are read (and
 * their results thrown away), so the memory behind a block must be readable (AMX_A_OVERREAD). */
#ifndef ALEXNET_GEMM_AMX_H
#define ALEXNET_GEMM_AMX_H
#include <stddef.h>
#include <stdint.h>

#define AMX_NR 32
#define AMX_A_OVERREAD (16 * 256) /* words: 15 rows of at most 256 pairs (slices of 512), rounded up */
typedef uint32_t amx_word __attribute__((may_alias)); /* a bf16 pair, in a buffer of floats */

/* CPUID reports AMX-TILE and AMX-BF16, the OS enabled the tile state (XCR0 bits 17, 18) and Linux
 * granted this process the tile data (arch_prctl ARCH_REQ_XCOMP_PERM); asked once, then cached */
int amx_usable(void);
/* k pairs of a slice of kc rows (kc >= 31: then amx_pairs(kc) <= kc, so the layout fits where the
 * float32 one does) */
static inline int amx_pairs(int kc) { return ((kc + 1) / 2 + 15) / 16 * 16; }
/* loads the tile configuration both users need: all eight tiles 16 rows of 64 bytes (palette 1);
 * per thread, before its first tile instruction (target amx-tile; x86-64 only) */
void amx_tiles_configure(void);
/* rows [i0, i0+mc) x k [p0, p0+kc) of alpha*op(A), rounded to bfloat16, into dst in AMX layout */
void amx_pack_a(int trans_a, const float *A, int lda, int i0, int mc, int p0, int kc, float alpha, amx_word *dst);
/* C (mc x nt, row stride ldc) = (overwrite) or += the packed A block (mc rows) times nt columns of
 * packed B strips (the strip of column js at b + js * kc words) */
void amx_block(int kc, const amx_word *a, int mc, const amx_word *b, float *c, int ldc, int nt, int overwrite);
#endif
