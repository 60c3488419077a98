/* winograd.c: Winograd (Toom-Cook) convolution for the stride-1 3x3 and 5x5 layers (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016). An m x m block of outputs of an r x r
 * filter is computed from an a x a input tile (a = m + r - 1) with a^2 multiplications per channel
 * pair instead of m^2 r^2:  Y = A^T [ (G g G^T) . (B^T d B) ] A.  Summed over input channels, the
 * a^2 elementwise products become a^2 matrix products (out_c x in_c) x (in_c x tiles), run by gemm.
 * F(4x4, 3x3) (a = 6, the points 0, +-1, +-2 and infinity) does 4 times fewer multiplications than
 * direct 3x3, F(4x4, 5x5) (a = 8, also +-1/2) 6.25 times fewer than direct 5x5, before edge tiles
 * (13x13 outputs take 16x16 of tiles: 2.6x; 27x27 take 28x28: 5.8x).
 *   forward          y = conv(x, w): the transforms above.
 *   input gradient   dx = conv(dy padded by r - 1 - pad, w flipped and transposed): the forward again.
 *   weight gradient  dw = A'^T [ sum over tiles (G' dy G'^T) . (B^T d B) ] A', the same algorithm with
 *                    the roles of filter and output swapped, F(r x r, m x m): the sum over tiles and
 *                    images is the a^2 products (out_c x tiles) x (tiles x in_c), in the transformed
 *                    domain, and A' is applied once per chunk of images.
 * The matrices are built from the points (transposition of Toom-Cook linear convolution): with V(k)
 * the a x k matrix that evaluates a polynomial of k coefficients at the points (the row of infinity
 * takes the leading coefficient), F(m, r) is A^T = V(m)^T, G = V(r), B^T = V(a)^-T, each row of B^T
 * scaled to small integers and the same row of G divided by that scale. Built in double. */
#include "layers.h"
#include "winograd.h"
#include "../cpu/gemm.h"
#include "../util/common.h"
#include "../util/hash64.h"
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { AMAX = 8 };                          /* the largest tile size a */
enum { DW_BLOCK = 256 };                     /* (o, c) pairs per block of the weight gradient's last transform */
enum { FWD_COLS = 128, DW_COLS = 512 };      /* columns (tiles) per product: forward and input gradient; weight gradient */
/* the finite points, in order of use (a - 1 of them for tile size a), and infinity */
static const double POINTS[AMAX - 1] = {0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};

/* Transform matrices of F(m, r), a = m + r - 1, row-major */
typedef struct Wino {
    int m, r, a;
    float at[AMAX * AMAX];   /* A^T: m x a  (outputs from the product) */
    float g[AMAX * AMAX];    /* G: a x r    (filter transform) */
    float bt[AMAX * AMAX];   /* B^T: a x a  (input transform) */
    signed char bt_pair[AMAX], g_pair[AMAX]; /* row pairs of B^T and G (row_pairs) */
    /* B^T's, A^T's and G's planes by a function compiled for this very matrix, or NULL (mat_planes) */
    void (*bt_fn)(const float *src, size_t ss, float *out, size_t os, int N);
    void (*at_fn)(const float *src, size_t ss, float *out, size_t os, int N);
    void (*g_fn)(const float *src, size_t ss, float *out, size_t os, int N);
} Wino;

/* Rows of the points +p and -p come in pairs: row i2 = (-1)^j row i, entry by entry (B^T's rows are
 * the Lagrange polynomials of the points, G's the points' powers). pair[i] = i2 for the first row of
 * such a pair (with non-zero entries at both even and odd j), -2 for the second, -1 for a row alone.
 * mat_planes then computes the pair from the sums over even and odd j, E +- O: half the products. */
static void row_pairs(int rows, int cols, const float *mat, signed char *pair) {
    for (int i = 0; i < rows; i++) pair[i] = -1;
    for (int i = 0; i < rows; i++) {
        if (pair[i] != -1) continue;
        int even = 0, odd = 0;
        for (int j = 0; j < cols; j++)
            if (mat[i * cols + j] != 0.0f) {
                if (j & 1) odd = 1;
                else even = 1;
            }
        if (!even || !odd) continue;
        for (int i2 = i + 1; i2 < rows; i2++) {
            int same = pair[i2] == -1;
            for (int j = 0; j < cols && same; j++) same = mat[i2 * cols + j] == (j & 1 ? -mat[i * cols + j] : mat[i * cols + j]);
            if (same) { pair[i] = (signed char)i2, pair[i2] = -2; break; }
        }
    }
}

/* V(k): a x k, row j = (1, p_j, p_j^2, ..., p_j^(k-1)); the last row (infinity) = e_(k-1) */
static void vander(int a, int k, double *v) {
    for (int j = 0; j < a; j++)
        for (int i = 0; i < k; i++) v[j * k + i] = j < a - 1 ? pow(POINTS[j], i) : (i == k - 1);
}

/* inverse of the a x a matrix m (Gauss-Jordan with partial pivoting; distinct points make it regular) */
static void invert(int a, const double *m, double *inv) {
    double t[AMAX][2 * AMAX];
    for (int i = 0; i < a; i++)
        for (int j = 0; j < 2 * a; j++) t[i][j] = j < a ? m[i * a + j] : (j - a == i);
    for (int c = 0; c < a; c++) {
        int p = c;
        for (int i = c + 1; i < a; i++)
            if (fabs(t[i][c]) > fabs(t[p][c])) p = i;
        for (int j = 0; j < 2 * a; j++) { double x = t[c][j]; t[c][j] = t[p][j], t[p][j] = x; }
        double d = t[c][c];
        for (int j = 0; j < 2 * a; j++) t[c][j] /= d;
        for (int i = 0; i < a; i++)
            if (i != c && t[i][c] != 0.0) {
                double f = t[i][c];
                for (int j = 0; j < 2 * a; j++) t[i][j] -= f * t[c][j];
            }
    }
    for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++) inv[i * a + j] = t[i][a + j];
}

static void special_transforms(Wino *w); /* below, beside the functions it chooses */
static void wino_build(Wino *w, int m, int r) {
    int a = m + r - 1;
    double va[AMAX * AMAX], inv[AMAX * AMAX], vm[AMAX * AMAX], vr[AMAX * AMAX];
    w->m = m, w->r = r, w->a = a;
    vander(a, a, va), vander(a, m, vm), vander(a, r, vr);
    invert(a, va, inv);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < a; j++) w->at[i * a + j] = (float)vm[j * m + i];
    for (int j = 0; j < a; j++) {
        /* B^T row j = column j of V^-1; scaled so that its smallest non-zero entry is +-1 */
        double lo = INFINITY, row[AMAX];
        for (int i = 0; i < a; i++) {
            row[i] = inv[i * a + j];
            if (fabs(row[i]) > 1e-12 && fabs(row[i]) < lo) lo = fabs(row[i]);
        }
        for (int i = 0; i < a; i++) w->bt[j * a + i] = (float)(fabs(row[i]) > 1e-12 ? row[i] / lo : 0.0);
        for (int i = 0; i < r; i++) w->g[j * r + i] = (float)(vr[j * r + i] * lo);
    }
    row_pairs(a, a, w->bt, w->bt_pair);
    row_pairs(a, r, w->g, w->g_pair);
    special_transforms(w);
}

/* F(m, r) for every m + r - 1 = a in {6, 8}, built once: table[a == 8][m] */
static Wino g_table[2][AMAX];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void build_all(void) {
    for (int big = 0; big < 2; big++)
        for (int m = 1; m < (big ? 8 : 6); m++) wino_build(&g_table[big][m], m, (big ? 8 : 6) + 1 - m);
}
static const Wino *wino(int m, int r) {
    pthread_once(&g_once, build_all);
    return &g_table[m + r - 1 == 8][m];
}

/* ------------------------------------------------------------------------------ choice ---- */

static int g_mode = -1; /* -1: automatic; 0: never; 1: wherever the shape allows */
void conv_winograd_override(int on) { g_mode = on < 0 ? -1 : on != 0; }

/* bf16 mode: Winograd's products would round the transformed tiles, whose errors the output
 * transform multiplies (by up to 8 per dimension in F(4x4, 3x3)), so they run in float32 (the
 * wrappers below) wherever that is the faster choice: where bf16 products run at most twice the
 * float32 rate (AVX512_BF16 dot products on AMD Zen 4, the float32 kernels on rounded operands
 * elsewhere), 2.6-5.8 times fewer multiplications win. With AMX tiles (several times the float32
 * rate) the layers stay on im2col with bf16 products. */
static int precision_blocks(void) { return gemm_bf16() && gemm_bf16_amx(); }

/* gemm's calls, in float32 on whichever thread makes them (forward_set sets the scope once per
 * thread for its many calls) */
static void pack_a_f32(int M, int K, const float *A, int lda, float *Ap) {
    int was = gemm_fp32_scope(1);
    gemm_pack_a(0, M, K, 1.0f, A, lda, Ap);
    gemm_fp32_scope(was);
}
static void gemm_nt_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc) {
    int was = gemm_fp32_scope(1);
    gemm(0, 1, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    gemm_fp32_scope(was);
}

/* output block m for an r x r filter: F(4x4, 3x3) (a = 6) and F(4x4, 5x5) (a = 8) */
static int block_for(int r) { (void)r; return 4; }

/* automatic, whatever the batch: layers wide enough for the products to run near the kernel's speed,
 * outputs of at least min_out x min_out */
static int auto_shape(const ConvShape *s, int min_out) {
    int cg = s->c / s->groups, og = s->out_c / s->groups;
    return g_mode < 0 && (s->k == 3 || s->k == 5) && s->stride == 1 && s->pad < s->k && !precision_blocks() && cg >= 32 &&
           og >= 32 && s->out_h >= min_out && s->out_w >= min_out;
}

int conv_winograd(const ConvShape *s) {
    if (g_mode == 0 || (s->k != 3 && s->k != 5) || s->stride != 1 || s->pad >= s->k || precision_blocks()) return 0;
    if (g_mode == 1) return 1;
    /* and batches with a full product set of tiles (the backward passes transform the filters on
     * every call; at batch 1 that costs more than it saves) */
    int m = block_for(s->k);
    long tiles = (long)((s->out_h + m - 1) / m) * ((s->out_w + m - 1) / m);
    return auto_shape(s, 6) && s->n * tiles >= FWD_COLS;
}

int conv_winograd_forward(const ConvShape *s) {
    if (g_mode == 0 || (s->k != 3 && s->k != 5) || s->stride != 1 || s->pad >= s->k || precision_blocks()) return 0;
    /* from 6x6 outputs (2x2 tiles for 36 outputs): the README job's conv3 (32 -> 64 channels, 5x5)
     * 2.4 times faster than im2col's per-image products of 36 columns; its backward passes 1.2 times
     * (since the transforms were compiled for their matrices; before, as fast as im2col's) */
    return g_mode == 1 || auto_shape(s, 6);
}

/* --------------------------------------------------------- the forward filters kept ---- */

/* Per thread, the last KEPT filter sets transformed by forward passes: shape, a hash of the
 * weights' bits, the transform in the slot's buffer (AN_BUF_WINO_KEPT0 + slot). A set whose
 * weights are unchanged (inference) is transformed once; training's change every step. The kept
 * transform is the one a fresh call computes, bit for bit: results never depend on what ran before. */
enum { KEPT = AN_BUF_WINO_KEPT_LAST - AN_BUF_WINO_KEPT0 + 1 };
typedef struct Kept {
    int used, out_c, c, groups, k;
    uint64_t hash;
    unsigned long stamp; /* last use, for replacing the oldest */
} Kept;
static _Thread_local Kept g_kept[KEPT];
static _Thread_local unsigned long g_clock;

/* 64-bit hash of n floats' bits: eight multiply-add chains over the 64-bit words (order matters
 * within a chain), then mixed; about one word a cycle */
static uint64_t weights_hash(const float *w, size_t n) {
    uint64_t acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const unsigned char *p = (const unsigned char *)w;
    size_t words = n / 2, i = 0;
    for (; i + 8 <= words; i += 8)
        for (int l = 0; l < 8; l++) {
            uint64_t v;
            memcpy(&v, p + (i + l) * 8, 8);
            acc[l] = (acc[l] + v) * 0x9E3779B97F4A7C15ull;
        }
    uint64_t h = n;
    for (; i < words; i++) {
        uint64_t v;
        memcpy(&v, p + i * 8, 8);
        h = an_hash64_mix(h, v);
    }
    if (n & 1) {
        uint32_t v;
        memcpy(&v, p + (n - 1) * 4, 4);
        h = an_hash64_mix(h, v);
    }
    for (int l = 0; l < 8; l++) h = an_hash64_mix(h, acc[l]);
    return h;
}

/* The slot holding (or now to hold) the transform of these weights; *ready: whether it is there */
static int kept_slot(const ConvShape *s, const float *w, int *ready) {
    size_t count = (size_t)s->out_c * (s->c / s->groups) * s->k * s->k;
    uint64_t h = weights_hash(w, count);
    int oldest = 0;
    for (int i = 0; i < KEPT; i++) {
        Kept *e = &g_kept[i];
        if (e->used && e->hash == h && e->out_c == s->out_c && e->c == s->c && e->groups == s->groups && e->k == s->k) {
            e->stamp = ++g_clock;
            *ready = 1;
            return i;
        }
        if (!e->used || (g_kept[oldest].used && e->stamp < g_kept[oldest].stamp)) oldest = i;
    }
    g_kept[oldest] = (Kept){0, s->out_c, s->c, s->groups, s->k, h, ++g_clock}; /* used once transformed */
    *ready = 0;
    return oldest;
}

/* ------------------------------------------------------------------------------ forward ---- */

/* Work of one product set: nb images of one group, tiles th x tw each: N = nb th tw columns. */
typedef struct Plan {
    const Wino *t;
    int m, r, a, a2, th, tw, tiles, nb, N;
    int cg, og;
} Plan;

static Plan plan_for(const ConvShape *s, int m, int cols, int max_images) {
    Plan p = {.t = wino(m, s->k), .m = m, .r = s->k, .a = m + s->k - 1, .cg = s->c / s->groups, .og = s->out_c / s->groups};
    p.a2 = p.a * p.a;
    p.th = (s->out_h + m - 1) / m, p.tw = (s->out_w + m - 1) / m, p.tiles = p.th * p.tw;
    p.nb = (cols + p.tiles - 1) / p.tiles; /* about `cols` columns or more per product */
    if (p.nb > max_images) p.nb = max_images;
    p.N = p.nb * p.tiles;
    return p;
}

/* The transforms work on planes of N floats (one value per column): out plane i (os floats apart)
 * = sum_j mat[i][j] * src plane j (ss floats apart), i < rows, j < cols; zero coefficients skipped;
 * a pair of rows of +p and -p (pair: row_pairs, or NULL) as E + O and E - O, E and O the sums over
 * the even and the odd j. Columns go 16 at a time with the sums in registers: one load per
 * multiply-add (a plane at a time, each term was a load and a store of the output too, and the
 * transforms took a quarter of a training step). The last N mod 16 columns go one at a time, in
 * the same operations and order: every column's result is the same function of its inputs. */
typedef float v8f __attribute__((vector_size(32), aligned(4))); /* 8 floats, loaded unaligned */

/* acc (+)= f * the 16 floats at q, as two halves (first: acc = f * q) */
#define MAT_TERM(a0, a1, f, q, first)                                  \
    do {                                                               \
        const v8f *q8_ = (const v8f *)(q);                             \
        if (first) a0 = (f) * q8_[0], a1 = (f) * q8_[1];               \
        else       a0 += (f) * q8_[0], a1 += (f) * q8_[1];             \
    } while (0)

static inline __attribute__((always_inline)) void mat_planes_body(int rows, int cols, const float *mat,
                                                                  const float *src, size_t ss, float *out,
                                                                  size_t os, int N, const signed char *pair) {
    enum { CW = 16 };
    int c0 = 0;
    for (; c0 + CW <= N; c0 += CW)
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            int i2 = pair ? pair[i] : -1, first = 1;
            if (i2 == -2) continue; /* done with its pair */
            v8f e0 = {0}, e1 = {0};
            v8f *o = (v8f *)(out + (size_t)i * os + c0);
            if (i2 >= 0) { /* E over the even j, O over the odd j: rows i and i2 = E + O, E - O */
                v8f d0 = {0}, d1 = {0};
#pragma GCC unroll 8
                for (int j = 0; j < cols; j += 2) {
                    float f = mat[i * cols + j];
                    if (f == 0.0f) continue;
                    MAT_TERM(e0, e1, f, src + (size_t)j * ss + c0, first);
                    first = 0;
                }
                first = 1;
#pragma GCC unroll 8
                for (int j = 1; j < cols; j += 2) {
                    float f = mat[i * cols + j];
                    if (f == 0.0f) continue;
                    MAT_TERM(d0, d1, f, src + (size_t)j * ss + c0, first);
                    first = 0;
                }
                v8f *o2 = (v8f *)(out + (size_t)i2 * os + c0);
                o[0] = e0 + d0, o[1] = e1 + d1, o2[0] = e0 - d0, o2[1] = e1 - d1;
                continue;
            }
#pragma GCC unroll 8
            for (int j = 0; j < cols; j++) {
                float f = mat[i * cols + j];
                if (f == 0.0f) continue;
                MAT_TERM(e0, e1, f, src + (size_t)j * ss + c0, first);
                first = 0;
            }
            o[0] = e0, o[1] = e1;
        }
    for (int c = c0; c < N; c++) /* the last columns: the same sums, one column at a time */
        for (int i = 0; i < rows; i++) {
            int i2 = pair ? pair[i] : -1;
            if (i2 == -2) continue;
            float acc = 0.0f, odd = 0.0f;
            int first = 1, first_odd = 1;
            for (int j = 0; j < cols; j++) { /* the odd j apart from the even ones: the same order */
                float f = mat[i * cols + j];
                if (f == 0.0f) continue;
                float q = src[(size_t)j * ss + c];
                if (i2 >= 0 && (j & 1)) {
                    odd = first_odd ? f * q : odd + f * q;
                    first_odd = 0;
                } else {
                    acc = first ? f * q : acc + f * q;
                    first = 0;
                }
            }
            if (i2 < 0) {
                out[(size_t)i * os + c] = acc;
            } else {
                out[(size_t)i * os + c] = acc + odd;
                out[(size_t)i2 * os + c] = acc - odd;
            }
        }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void mat_planes(int rows, int cols, const float *mat, const float *src, size_t ss, float *out, size_t os,
                       int N, const signed char *pair) {
    mat_planes_body(rows, cols, mat, src, ss, out, os, N, pair);
}

/* The same for the transforms that take most of the time, each compiled for its matrix: the zero
 * terms, the tests and the loads of the entries gone, 1 * q and -1 * q as q and -q (exactly what
 * the multiply gives: the same bits). B^T and A^T of F(4x4, 3x3) and F(4x4, 5x5), as wino_build
 * computes them (it uses these only where its own matrix is the same, bit for bit); 3.6 and 1.5
 * times faster than mat_planes on B^T's planes in L1. */
static const float BT6[36] = {4, 0, -5, 0, 1, 0,  0, 4, 4, -1, -1, 0,  0, -4, 4, 1, -1, 0,
                              0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0, 0, 4, 0, -5, 0, 1};
static const float BT8[64] = {1, 0, -5.25f, 0, 5.25f, 0, -1, 0,   0, -1, -1, 4.25f, 4.25f, -1, -1, 0,
                              0, 1, -1, -4.25f, 4.25f, 1, -1, 0,  0, 2, 1, -10, -5, 8, 4, 0,
                              0, -2, 1, 10, -5, -8, 4, 0,         0, 4, 8, -5, -10, 1, 2, 0,
                              0, -4, 8, 5, -10, -1, 2, 0,         0, -1, 0, 5.25f, 0, -5.25f, 0, 1};
static const signed char BT6_PAIR[6] = {-1, 2, -2, 4, -2, -1}, BT8_PAIR[8] = {-1, 2, -2, 4, -2, 6, -2, -1};
static const float AT46[24] = {1, 1, 1, 1, 1, 0, 0, 1, -1, 2, -2, 0, 0, 1, 1, 4, 4, 0, 0, 1, -1, 8, -8, 1};
static const float AT48[32] = {1, 1, 1, 1, 1, 1, 1, 0,  0, 1, -1, 2, -2, 0.5f, -0.5f, 0,
                               0, 1, 1, 4, 4, 0.25f, 0.25f, 0,  0, 1, -1, 8, -8, 0.125f, -0.125f, 1};
/* G of F(3x3, 4x4) and F(5x5, 4x4): the weight gradient's transform of dy's 4x4 tiles (a x 4;
 * 1/6, 2/9, 1/360, 16/45 and their powers of 2 in hexadecimal: the floats wino_build rounds to) */
static const float G64[24] = {0x1p-2, 0, 0, 0,
                              0x1.555556p-3, 0x1.555556p-3, 0x1.555556p-3, 0x1.555556p-3,
                              0x1.555556p-3, -0x1.555556p-3, 0x1.555556p-3, -0x1.555556p-3,
                              0x1.555556p-5, 0x1.555556p-4, 0x1.555556p-3, 0x1.555556p-2,
                              0x1.555556p-5, -0x1.555556p-4, 0x1.555556p-3, -0x1.555556p-2,
                              0, 0, 0, 1};
static const float G84[32] = {1, 0, 0, 0,
                              0x1.c71c72p-3, 0x1.c71c72p-3, 0x1.c71c72p-3, 0x1.c71c72p-3,
                              0x1.c71c72p-3, -0x1.c71c72p-3, 0x1.c71c72p-3, -0x1.c71c72p-3,
                              0x1.6c16c2p-9, 0x1.6c16c2p-8, 0x1.6c16c2p-7, 0x1.6c16c2p-6,
                              0x1.6c16c2p-9, -0x1.6c16c2p-8, 0x1.6c16c2p-7, -0x1.6c16c2p-6,
                              0x1.6c16c2p-2, 0x1.6c16c2p-3, 0x1.6c16c2p-4, 0x1.6c16c2p-5,
                              0x1.6c16c2p-2, -0x1.6c16c2p-3, 0x1.6c16c2p-4, -0x1.6c16c2p-5,
                              0, 0, 0, 1};
#define MAT_PLANES_FOR(name, rows, cols, table, pair)                                    \
    __attribute__((target_clones("avx512f", "avx2", "default")))                         \
    static void name(const float *src, size_t ss, float *out, size_t os, int N) {        \
        mat_planes_body(rows, cols, table, src, ss, out, os, N, pair);                   \
    }
MAT_PLANES_FOR(bt6_planes, 6, 6, BT6, BT6_PAIR)
MAT_PLANES_FOR(bt8_planes, 8, 8, BT8, BT8_PAIR)
MAT_PLANES_FOR(at46_planes, 4, 6, AT46, NULL)
MAT_PLANES_FOR(at48_planes, 4, 8, AT48, NULL)
MAT_PLANES_FOR(g64_planes, 6, 4, G64, BT6_PAIR)
MAT_PLANES_FOR(g84_planes, 8, 4, G84, BT8_PAIR)

/* the specialised functions for the matrices wino_build computed, where they are the tables' */
static void special_transforms(Wino *w) {
    int a = w->a, m = w->m;
    w->bt_fn = w->at_fn = w->g_fn = NULL;
    if (a == 6 && !memcmp(w->bt, BT6, sizeof BT6) && !memcmp(w->bt_pair, BT6_PAIR, 6)) w->bt_fn = bt6_planes;
    if (a == 8 && !memcmp(w->bt, BT8, sizeof BT8) && !memcmp(w->bt_pair, BT8_PAIR, 8)) w->bt_fn = bt8_planes;
    if (m == 4 && a == 6 && !memcmp(w->at, AT46, sizeof AT46)) w->at_fn = at46_planes;
    if (m == 4 && a == 8 && !memcmp(w->at, AT48, sizeof AT48)) w->at_fn = at48_planes;
    if (w->r == 4 && a == 6 && !memcmp(w->g, G64, sizeof G64) && !memcmp(w->g_pair, BT6_PAIR, 6)) w->g_fn = g64_planes;
    if (w->r == 4 && a == 8 && !memcmp(w->g, G84, sizeof G84) && !memcmp(w->g_pair, BT8_PAIR, 8)) w->g_fn = g84_planes;
}

/* out = B^T's rows applied to the planes of src (a x a), or A^T's (m x a) */
static void bt_planes(const Wino *t, const float *src, size_t ss, float *out, size_t os, int N) {
    if (t->bt_fn) t->bt_fn(src, ss, out, os, N);
    else mat_planes(t->a, t->a, t->bt, src, ss, out, os, N, t->bt_pair);
}
static void at_planes(const Wino *t, const float *src, size_t ss, float *out, size_t os, int N) {
    if (t->at_fn) t->at_fn(src, ss, out, os, N);
    else mat_planes(t->m, t->a, t->at, src, ss, out, os, N, NULL);
}
static void g_planes(const Wino *t, const float *src, size_t ss, float *out, size_t os, int N) {
    if (t->g_fn) t->g_fn(src, ss, out, os, N);
    else mat_planes(t->a, t->r, t->g, src, ss, out, os, N, t->g_pair);
}

/* The patches of one bordered plane pb (rows pw floats apart) for m = 4, four tiles at a time: the
 * row's columns 4 tx + j (tx of four tiles, j < 4) are a 4 x 4 block whose transpose is patch
 * columns b = j of the four tiles, and the block one tile on gives b = 4 + j (reads columns up to
 * 4 tw + 3 of every row when k > 4). The same values as the scalar loop of gather. */
static void patches_m4(const float *pb, int pw, int th, int tw, int k, float *d, size_t N, int col0) {
    for (int ty = 0; ty < th; ty++)
        for (int a = 0; a < k; a++) {
            const float *row = pb + (size_t)(ty * 4 + a) * pw;
            float *q = d + (size_t)a * k * N + col0 + ty * tw;
            int tx = 0;
            for (; tx + 4 <= tw; tx += 4) {
                const float *r = row + 4 * tx;
                __m128 r0 = _mm_loadu_ps(r), r1 = _mm_loadu_ps(r + 4), r2 = _mm_loadu_ps(r + 8), r3 = _mm_loadu_ps(r + 12);
                __m128 t0 = r0, t1 = r1, t2 = r2, t3 = r3;
                _MM_TRANSPOSE4_PS(t0, t1, t2, t3);
                __m128 lo[4] = {t0, t1, t2, t3};
                for (int b = 0; b < k && b < 4; b++) _mm_storeu_ps(q + (size_t)b * N + tx, lo[b]);
                if (k <= 4) continue;
                __m128 u0 = r1, u1 = r2, u2 = r3, u3 = _mm_loadu_ps(r + 16);
                _MM_TRANSPOSE4_PS(u0, u1, u2, u3);
                __m128 hi[4] = {u0, u1, u2, u3};
                for (int b = 4; b < k; b++) _mm_storeu_ps(q + (size_t)b * N + tx, hi[b - 4]);
            }
            for (; tx < tw; tx++)
                for (int b = 0; b < k; b++) q[(size_t)b * N + tx] = row[4 * tx + b];
        }
}

/* d (k*k planes: d[a][b] at (a k + b) N): the k x k patches of every column (image, tile) of nb
 * images' plane of one channel (x: the first image's plane, img floats between images), starting at
 * (ty m - pad, tx m - pad); zero outside the plane and for images past nimg. Each image's plane is
 * first copied into a zero border (pb: up to a^2 N floats), so that the patches are read without
 * tests; for m = 4 its rows are 4 tw + 4 wide where patches_m4 needs that and it fits. */
static void gather(const Plan *p, int k, int pad, const float *x, int h, int w, size_t img, int nimg, float *d,
                   float *pb) {
    int N = p->N, m = p->m, ph = (p->th - 1) * m + k, pw = (p->tw - 1) * m + k;
    if (m == 4 && k > 4 && k < 8 && p->tw >= 2) pw = 4 * p->tw + 4; /* ph pw <= a^2 tiles */
    int fast = m == 4 && pw >= 4 * p->tw + (k > 4 ? 4 : 0);
    for (int i = 0; i < p->nb; i++) {
        int col0 = i * p->tiles;
        if (i >= nimg) {
            for (int ab = 0; ab < k * k; ab++) memset(d + (size_t)ab * N + col0, 0, (size_t)p->tiles * sizeof(float));
            continue;
        }
        /* pb (ph, pw) = the plane at offset (pad, pad), zero elsewhere */
        const float *pl = x + (size_t)i * img;
        for (int py = 0; py < ph; py++) {
            float *q = pb + (size_t)py * pw;
            int iy = py - pad, lo = pad < pw ? pad : pw, hi = pad + w < pw ? pad + w : pw;
            if (iy < 0 || iy >= h) { memset(q, 0, (size_t)pw * sizeof(float)); continue; }
            memset(q, 0, (size_t)lo * sizeof(float));
            if (hi > lo) memcpy(q + lo, pl + (size_t)iy * w, (size_t)(hi - lo) * sizeof(float));
            if (hi < pw) memset(q + (hi > lo ? hi : lo), 0, (size_t)(pw - (hi > lo ? hi : lo)) * sizeof(float));
        }
        if (fast) {
            patches_m4(pb, pw, p->th, p->tw, k, d, (size_t)N, col0);
            continue;
        }
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                float *q = d + (size_t)(a * k + b) * N + col0;
                for (int ty = 0; ty < p->th; ty++, q += p->tw) {
                    const float *src = pb + (size_t)(ty * m + a) * pw + b;
                    for (int tx = 0; tx < p->tw; tx++) q[tx] = src[tx * m];
                }
            }
    }
}

/* B^T d B of every column of nb images' plane of channel c: out plane (xi, nu) at (xi a + nu) os.
 * scratch: 2 a^2 N floats. */
static void input_transform(const Plan *p, const ConvShape *s, const float *x, size_t img, int nimg, float *scratch,
                            float *out, size_t os) {
    int a = p->a;
    size_t N = (size_t)p->N;
    float *d = scratch, *t = scratch + p->a2 * N;
    gather(p, a, s->pad, x, s->h, s->w, img, nimg, d, t);
    for (int b = 0; b < a; b++) bt_planes(p->t, d + b * N, a * N, t + b * N, a * N, p->N); /* t = B^T d */
    for (int xi = 0; xi < a; xi++) /* V[xi][nu] = sum_b t[xi][b] bt[nu][b] */
        bt_planes(p->t, t + xi * a * N, N, out + (size_t)xi * a * os, os, p->N);
}

/* U (a^2, og, cg) = G g G^T of every filter of the group (og, cg, r, r) -> packed product operands
 * up (ustride floats apart). tmp: a^2 og cg floats. */
static void filter_transform(const Plan *p, const float *w, float *tmp, float *up, size_t ustride) {
    const float *g = p->t->g;
    int r = p->r, og = p->og, cg = p->cg, A = p->a;
    size_t plane = (size_t)og * cg;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int o = 0; o < og; o++)
        for (int c = 0; c < cg; c++) {
            const float *f = w + ((size_t)o * cg + c) * r * r;
            double t[AMAX][AMAX];  /* t = G f: a x r */
            for (int xi = 0; xi < A; xi++)
                for (int b = 0; b < r; b++) {
                    double acc = 0.0;
                    for (int a = 0; a < r; a++) acc += (double)g[xi * r + a] * f[a * r + b];
                    t[xi][b] = acc;
                }
            for (int xi = 0; xi < A; xi++)
                for (int nu = 0; nu < A; nu++) {
                    double acc = 0.0;
                    for (int b = 0; b < r; b++) acc += t[xi][b] * g[nu * r + b];
                    tmp[(size_t)(xi * A + nu) * plane + (size_t)o * cg + c] = (float)acc;
                }
        }
    for (int k = 0; k < p->a2; k++) pack_a_f32(og, cg, tmp + (size_t)k * plane, cg, up + (size_t)k * ustride);
}

/* Y = A^T M A of every column of the products mb (a^2, og, N) -> y of nimg images (og planes of
 * oh x ow each, img floats apart), plus bias and the fused ReLU, for output channel o; 4 x 4 output
 * blocks (every forward pass: block_for). scratch:
 * (a + 1) m N floats. */
static void output_transform(const Plan *p, const ConvShape *s, const float *mb, int nimg, const float *bias,
                             float *y, size_t img, float *scratch, int o) {
    int m = p->m, oh = s->out_h, ow = s->out_w, og = p->og, a = p->a;
    size_t N = (size_t)p->N, P = (size_t)oh * ow;
    float *t = scratch, *yy = scratch + (size_t)m * a * N; /* t[i][nu], then Y[i][j] */
    for (int nu = 0; nu < a; nu++) /* t[i][nu] = sum_xi at[i][xi] M[xi][nu] */
        at_planes(p->t, mb + ((size_t)nu * og + o) * N, a * og * N, t + nu * N, a * N, p->N);
    for (int i = 0; i < m; i++) /* Y[i][j] = sum_nu t[i][nu] at[j][nu] */
        at_planes(p->t, t + (size_t)i * a * N, N, yy + (size_t)i * m * N, N, p->N);
    float bo = bias ? bias[o] : 0.0f;
    __m128 b4 = _mm_set1_ps(bo), zero = _mm_setzero_ps();
    for (int im = 0; im < nimg; im++)
        for (int ty = 0; ty < p->th; ty++)
            for (int i = 0; i < m && ty * m + i < oh; i++) {
                float *row = y + (size_t)im * img + (size_t)o * P + (size_t)(ty * m + i) * ow;
                size_t col0 = (size_t)(im * p->th + ty) * p->tw;
                /* four tiles at a time: a 4 x 4 transpose gives 16 columns of the row (m is 4: block_for) */
                const float *q = yy + (size_t)i * 4 * N + col0;
                for (int tx = 0; tx < p->tw; tx += 4) {
                    int nt = p->tw - tx < 4 ? p->tw - tx : 4;
                    __m128 r[4];
                    for (int j = 0; j < 4; j++) {
                        float v[4] = {0};
                        const float *qj = q + (size_t)j * N + tx;
                        if (nt == 4) r[j] = _mm_loadu_ps(qj);
                        else {
                            for (int k = 0; k < nt; k++) v[k] = qj[k];
                            r[j] = _mm_loadu_ps(v);
                        }
                    }
                    _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); /* r[k]: the 4 columns of tile tx + k */
                    for (int k = 0; k < nt; k++) {
                        __m128 v = _mm_add_ps(r[k], b4);
                        if (s->relu) v = _mm_max_ps(v, zero); /* NaN and -0 give +0, as v > 0 ? v : 0 */
                        int c = (tx + k) * 4;
                        if (c + 4 <= ow) {
                            _mm_storeu_ps(row + c, v);
                        } else {
                            float t4[4];
                            _mm_storeu_ps(t4, v);
                            for (int jj = 0; c + jj < ow; jj++) row[c + jj] = t4[jj];
                        }
                    }
                }
            }
}

/* sizes of the per-thread scratch of one product set */
static size_t vp_stride(const Plan *p) { return gemm_packed_b_floats(p->cg, p->N); }

/* One product set: nimg (<= nb) images starting at x / y, group g, with the packed filters up.
 * Called outside a parallel region (a batch of one set: batch-1 inference), its channels, products
 * and output channels are spread over the threads (each product on one thread: the same bits). */
static int forward_set(const Plan *p, const ConvShape *s, const float *x, const float *up, size_t ustride,
                       const float *bias, float *y, int nimg, int g) {
    size_t in_img = (size_t)s->c * s->h * s->w, out_img = (size_t)s->out_c * s->out_h * s->out_w;
    size_t vs = vp_stride(p), N = (size_t)p->N;
    int a2 = p->a2, failed = 0;
    float *vp = an_thread_buffer(AN_BUF_WINO_V, (size_t)a2 * vs * sizeof(float));
    float *mb = an_thread_buffer(AN_BUF_WINO_M, (size_t)a2 * p->og * N * sizeof(float));
    if (!vp || !mb) return -1;
    const float *xg = x + (size_t)g * p->cg * s->h * s->w;
    const float *bg = bias ? bias + (size_t)g * p->og : NULL;
    float *yg = y + (size_t)g * p->og * s->out_h * s->out_w;
#pragma omp parallel if (!omp_in_parallel())
    {
        int was = gemm_fp32_scope(1); /* the products in float32 (precision_blocks) */
        float *scratch = an_thread_buffer(AN_BUF_WINO_T, (size_t)3 * a2 * N * sizeof(float));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
        float *v = scratch ? scratch + 2 * a2 * N : NULL; /* one channel's a^2 planes, packed as row c */
#pragma omp for schedule(static)
        for (int c = 0; c < p->cg; c++) {
            if (!scratch) continue;
            input_transform(p, s, xg + (size_t)c * s->h * s->w, in_img, nimg, scratch, v, N);
            for (int k = 0; k < a2; k++) gemm_pack_b_row(vp + (size_t)k * vs, p->cg, p->N, c, v + (size_t)k * N);
        }
#pragma omp for schedule(static)
        for (int k = 0; k < a2; k++)
            if (!failed)
                gemm_packed_ab(p->og, p->N, p->cg, up + (size_t)k * ustride, vp + (size_t)k * vs, 0.0f,
                               mb + (size_t)k * p->og * N, p->N);
#pragma omp for schedule(static)
        for (int o = 0; o < p->og; o++)
            if (scratch && !failed) output_transform(p, s, mb, nimg, bg, yg, out_img, scratch, o);
        gemm_fp32_scope(was);
    }
    return failed ? -1 : 0;
}

static int forward_block(const ConvShape *s, int m, const float *x, const float *w, const float *b, float *y) {
    Plan p = plan_for(s, m, FWD_COLS, s->n);
    int G = s->groups, failed = 0;
    size_t in_img = (size_t)s->c * s->h * s->w, out_img = (size_t)s->out_c * s->out_h * s->out_w;
    size_t ustride = gemm_packed_a_floats(p.og, p.cg), wg = (size_t)p.og * p.cg * p.r * p.r;
    size_t ug = (size_t)p.a2 * ustride; /* one group's packed filters */
    /* the filters as transformed by an earlier call with the same weights, or transformed now */
    int ready, slot = kept_slot(s, w, &ready);
    float *up = an_thread_buffer(AN_BUF_WINO_KEPT0 + slot, (size_t)G * ug * sizeof(float));
    if (!up) return an_error("out of memory (Winograd filters, %zu bytes)", (size_t)G * ug * 4);
    if (!ready) {
        float *tmp = an_thread_buffer(AN_BUF_WINO_UT, (size_t)p.a2 * p.og * p.cg * sizeof(float));
        if (!tmp) return an_error("out of memory (Winograd filters, %zu bytes)", (size_t)p.a2 * p.og * p.cg * 4);
        for (int g = 0; g < G; g++) filter_transform(&p, w + g * wg, tmp, up + (size_t)g * ug, ustride);
        g_kept[slot].used = 1;
    }
    int sets = (s->n + p.nb - 1) / p.nb, work = sets * G;
    /* product sets in parallel, each on its thread; fewer sets than threads: the products parallel */
    if (work >= omp_get_max_threads()) { /* dynamic: sets to whichever thread is running */
#pragma omp parallel for schedule(dynamic, 1)
        for (int t = 0; t < work; t++) {
            int set = t / G, g = t % G, i0 = set * p.nb, nimg = s->n - i0 < p.nb ? s->n - i0 : p.nb;
            if (!failed && forward_set(&p, s, x + i0 * in_img, up + (size_t)g * ug, ustride, b,
                                       y + i0 * out_img, nimg, g)) {
#pragma omp atomic write
                failed = 1;
            }
        }
    } else {
        for (int t = 0; t < work && !failed; t++) {
            int set = t / G, g = t % G, i0 = set * p.nb, nimg = s->n - i0 < p.nb ? s->n - i0 : p.nb;
            failed = forward_set(&p, s, x + i0 * in_img, up + (size_t)g * ug, ustride, b, y + i0 * out_img,
                                 nimg, g) != 0;
        }
    }
    return failed ? an_error("out of memory (Winograd workspace)") : 0;
}

int winograd_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y) {
    return forward_block(s, block_for(s->k), x, w, b, y);
}

/* ------------------------------------------------------------------------------ backward ---- */

int winograd_backward_data(const ConvShape *s, const float *w, const float *dy, float *dx) {
    /* dx = conv(dy, w'), w'[g][ci][o][a][b] = w[g og + o][ci][r-1-a][r-1-b], padding r - 1 - pad */
    int G = s->groups, cg = s->c / G, og = s->out_c / G, r = s->k;
    size_t wsize = (size_t)s->out_c * cg * r * r;
    float *wf = an_thread_buffer(AN_BUF_WINO_FLIP, wsize * sizeof(float));
    if (!wf) return -1;
    for (int g = 0; g < G; g++)
        for (int o = 0; o < og; o++)
            for (int ci = 0; ci < cg; ci++)
                for (int a = 0; a < r; a++)
                    for (int bb = 0; bb < r; bb++)
                        wf[((((size_t)g * cg + ci) * og + o) * r + a) * r + bb] =
                            w[((((size_t)g * og + o) * cg + ci) * r + (r - 1 - a)) * r + (r - 1 - bb)];
    ConvShape t = {s->n, s->out_c, s->out_h, s->out_w, s->c, r, 1, r - 1 - s->pad, G, 0, 0, 0};
    conv_shape_init(&t);
    if (t.out_h != s->h || t.out_w != s->w) return an_error("winograd: input gradient of %dx%d, want %dx%d", t.out_h, t.out_w, s->h, s->w);
    return forward_block(&t, block_for(r), dy, wf, NULL, dx);
}

/* G' dy G'^T of every m x m tile of nb images' output gradient of one channel (F(r, m): G' is a x m):
 * out plane (xi, nu) at (xi a + nu) os. scratch: 2 a^2 N floats. */
static void grad_transform(const Plan *p, const Wino *f, const ConvShape *s, const float *dy, size_t img, int nimg,
                           float *scratch, float *out, size_t os) {
    int m = p->m, a = p->a;
    size_t N = (size_t)p->N;
    float *d = scratch, *t = scratch + p->a2 * N; /* d[a][b] (m x m), t[xi][b] (a x m) */
    gather(p, m, 0, dy, s->out_h, s->out_w, img, nimg, d, t);
    for (int b = 0; b < m; b++) g_planes(f, d + b * N, m * N, t + b * N, m * N, p->N);
    for (int xi = 0; xi < a; xi++) g_planes(f, t + xi * m * N, N, out + (size_t)xi * a * os, os, p->N);
}

int winograd_weight_grad(const ConvShape *s, const float *x, const float *dy, int i0, int i1, float *dw) {
    int m = block_for(s->k), G = s->groups;
    Plan p = plan_for(s, m, DW_COLS, i1 - i0 > 0 ? i1 - i0 : 1);
    const Wino *f = wino(s->k, m); /* F(r, m): output r x r (the filter), "filter" m x m (dy's tile) */
    size_t in_img = (size_t)s->c * s->h * s->w, out_img = (size_t)s->out_c * s->out_h * s->out_w, N = (size_t)p.N;
    size_t xs = (size_t)p.cg * N, ys = (size_t)p.og * N, ws = (size_t)p.og * p.cg;
    int r = s->k, a = p.a, a2 = p.a2;
    float *xh = an_thread_buffer(AN_BUF_WINO_V, (size_t)a2 * xs * sizeof(float));
    float *yh = an_thread_buffer(AN_BUF_WINO_M, (size_t)a2 * ys * sizeof(float));
    size_t sc = 2 * a2 * N, sc_dw = (size_t)(r * a + r * r) * DW_BLOCK;
    float *scratch = an_thread_buffer(AN_BUF_WINO_T, (sc > sc_dw ? sc : sc_dw) * sizeof(float));
    float *dwh = an_thread_buffer(AN_BUF_WINO_DW, (size_t)a2 * ws * sizeof(float));
    if (!xh || !yh || !scratch || !dwh) return -1;
    for (int g = 0; g < G; g++) {
        const float *xg = x + (size_t)g * p.cg * s->h * s->w, *dyg = dy + (size_t)g * p.og * s->out_h * s->out_w;
        for (int i = i0; i < i1; i += p.nb) {
            int nimg = i1 - i < p.nb ? i1 - i : p.nb;
            for (int c = 0; c < p.cg; c++)
                input_transform(&p, s, xg + i * in_img + (size_t)c * s->h * s->w, in_img, nimg, scratch, xh + c * N, xs);
            for (int o = 0; o < p.og; o++)
                grad_transform(&p, f, s, dyg + i * out_img + (size_t)o * s->out_h * s->out_w, out_img, nimg, scratch,
                               yh + o * N, ys);
            /* dW^[k] (og, cg) (+)= dY^[k] (og, N) X^[k]^T (N, cg) */
            for (int k = 0; k < a2; k++)
                gemm_nt_f32(p.og, p.cg, p.N, yh + (size_t)k * ys, p.N, xh + (size_t)k * xs, p.N, i == i0 ? 0.0f : 1.0f,
                            dwh + (size_t)k * ws, p.cg);
        }
        /* dw[o][c] = A'^T dW^[o][c] A' (r x r), A'^T: r x a; over blocks of the (o, c) pairs */
        const float *at = f->at;
        float *dwg = dw + (size_t)g * ws * r * r, *t = scratch, *q = scratch + (size_t)r * a * DW_BLOCK;
        for (size_t oc0 = 0; oc0 < ws; oc0 += DW_BLOCK) {
            int nb = ws - oc0 < DW_BLOCK ? (int)(ws - oc0) : DW_BLOCK;
            for (int nu = 0; nu < a; nu++) /* t[i][nu] = sum_xi at[i][xi] dW[xi][nu] */
                mat_planes(r, a, at, dwh + nu * ws + oc0, a * ws, t + nu * DW_BLOCK, a * DW_BLOCK, nb, NULL);
            for (int i = 0; i < r; i++) /* q[i][j] = sum_nu t[i][nu] at[j][nu] */
                mat_planes(r, a, at, t + (size_t)i * a * DW_BLOCK, DW_BLOCK, q + (size_t)i * r * DW_BLOCK, DW_BLOCK, nb, NULL);
            for (int j = 0; j < nb; j++)
                for (int ab = 0; ab < r * r; ab++) dwg[(oc0 + j) * r * r + ab] = q[(size_t)ab * DW_BLOCK + j];
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------- test hook ---- */

int winograd_special_transforms_check(void) {
    enum { N = 37, ROWS = AMAX * AMAX }; /* two 16-column blocks and 5 columns one at a time */
    float src[ROWS * N], want[ROWS * N], got[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) src[i] = (float)((i * 7919) % 2003) / 1001.0f - 1.0f;
    const Wino *set[4] = {wino(4, 3), wino(4, 5), wino(3, 4), wino(5, 4)};
    int same = 0;
    for (int k = 0; k < 4; k++) {
        const Wino *t = set[k];
        void (*fn[3])(const float *, size_t, float *, size_t, int) = {t->bt_fn, t->at_fn, t->g_fn};
        int rows[3] = {t->a, t->m, t->a}, cols[3] = {t->a, t->a, t->r};
        const float *mat[3] = {t->bt, t->at, t->g};
        const signed char *pair[3] = {t->bt_pair, NULL, t->g_pair};
        for (int j = 0; j < 3; j++) {
            if (!fn[j]) continue;
            memset(want, 0, sizeof want), memset(got, 0, sizeof got);
            mat_planes(rows[j], cols[j], mat[j], src, N, want, N, N, pair[j]);
            fn[j](src, N, got, N, N);
            same += !memcmp(want, got, sizeof want);
        }
    }
    return same;
}
