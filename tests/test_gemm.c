/* test_gemm.c: the blocked gemm against an exact float64 product and against gemm_ref, over the four
 * transpose combinations, sizes that straddle the micro-tile (8x32), the row block (64), the K slice
 * (256) and the N panel (1024), alpha != 1, beta 0 / 1 / 0.5 and padded leading dimensions; then
 * bit-for-bit determinism across repeated calls, thread counts and calls from inside a parallel
 * region. Tolerance: |C - exact| <= 1e-5 * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|), per element. */
#include "harness.h"
#include "../src/cpu/gemm.h"
#include "../src/util/common.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define PAD_SENTINEL 12345.5f

typedef struct GemmCase {
    int ta, tb, M, N, K;
    float alpha, beta;
    int pad_a, pad_b, pad_c; /* extra columns beyond the logical row length */
} GemmCase;

static void fill(float *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = 2.0f * an_uniform(seed, i) - 1.0f;
}

/* element (r, c) of op(X) where X is stored row-major with leading dimension ld */
static double at(const float *X, int ld, int trans, int r, int c) {
    return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c];
}

/* Runs one case through gemm and gemm_ref; returns the worst error / bound seen for gemm. */
static double run_case(const GemmCase *g, uint64_t seed) {
    int M = g->M, N = g->N, K = g->K;
    int a_rows = g->ta ? K : M, a_cols = g->ta ? M : K;
    int b_rows = g->tb ? N : K, b_cols = g->tb ? K : N;
    int lda = a_cols + g->pad_a, ldb = b_cols + g->pad_b, ldc = N + g->pad_c;
    size_t asz = (size_t)a_rows * lda, bsz = (size_t)b_rows * ldb, csz = (size_t)M * ldc;
    float *A = malloc(asz * sizeof(float)), *B = malloc(bsz * sizeof(float));
    float *C0 = malloc(csz * sizeof(float)), *C1 = malloc(csz * sizeof(float));
    float *C2 = malloc(csz * sizeof(float));
    double *want = malloc((size_t)M * N * sizeof(double)), *bound = malloc((size_t)M * N * sizeof(double));
    fill(A, asz, seed * 3 + 1);
    fill(B, bsz, seed * 3 + 2);
    fill(C0, csz, seed * 3 + 3);
    /* padding of A and B is NaN: reading it would poison the result */
    for (int r = 0; r < a_rows; r++)
        for (int c = a_cols; c < lda; c++) A[(size_t)r * lda + c] = NAN;
    for (int r = 0; r < b_rows; r++)
        for (int c = b_cols; c < ldb; c++) B[(size_t)r * ldb + c] = NAN;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float *c = &C0[(size_t)i * ldc + j];
            if (j >= N) *c = PAD_SENTINEL;
            else if (g->beta == 0.0f) *c = NAN; /* beta = 0: C is output only, as in BLAS */
        }
    /* op(A) and op(B)^T copied to contiguous float64 rows so the exact product runs fast */
    double *Ad = malloc((size_t)M * K * sizeof(double) + 8), *Bt = malloc((size_t)N * K * sizeof(double) + 8);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) Ad[(size_t)i * K + k] = at(A, lda, g->ta, i, k);
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) Bt[(size_t)j * K + k] = at(B, ldb, g->tb, k, j);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            const double *ar = Ad + (size_t)i * K, *br = Bt + (size_t)j * K;
            double s = 0.0, sa = 0.0;
            for (int k = 0; k < K; k++) {
                double t = ar[k] * br[k];
                s += t;
                sa += fabs(t);
            }
            double c = g->beta == 0.0f ? 0.0 : (double)g->beta * C0[(size_t)i * ldc + j];
            want[(size_t)i * N + j] = (double)g->alpha * s + c;
            bound[(size_t)i * N + j] = fabs((double)g->alpha) * sa + fabs(c);
        }
    free(Ad);
    free(Bt);
    memcpy(C1, C0, csz * sizeof(float));
    memcpy(C2, C0, csz * sizeof(float));
    gemm(g->ta, g->tb, M, N, K, g->alpha, A, lda, B, ldb, g->beta, C1, ldc);
    gemm_ref(g->ta, g->tb, M, N, K, g->alpha, A, lda, B, ldb, g->beta, C2, ldc);

    double worst = 0.0, worst_ref = 0.0, worst_vs_ref = 0.0;
    int wi = 0, wj = 0, bad_pad = 0, nonzero = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            float c1 = C1[(size_t)i * ldc + j], c2 = C2[(size_t)i * ldc + j];
            if (j >= N) {
                if (c1 != PAD_SENTINEL || c2 != PAD_SENTINEL) bad_pad++;
                continue;
            }
            double w = want[(size_t)i * N + j], b = bound[(size_t)i * N + j] + 1e-30;
            double e1 = isfinite(c1) ? fabs(c1 - w) / b : INFINITY;
            double e2 = isfinite(c2) ? fabs(c2 - w) / b : INFINITY;
            double e3 = (isfinite(c1) && isfinite(c2)) ? fabs((double)c1 - c2) / b : INFINITY;
            if (!(e1 <= worst)) { worst = e1; wi = i; wj = j; }
            if (!(e2 <= worst_ref)) worst_ref = e2;
            if (!(e3 <= worst_vs_ref)) worst_vs_ref = e3;
            if (w != 0.0) nonzero++;
        }
    CHECK(worst <= 1e-5,
          "gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d: error %.3g of the bound at "
          "(%d,%d): got %.9g want %.9g",
          g->ta, g->tb, M, N, K, g->alpha, g->beta, lda, ldb, ldc, worst, wi, wj, C1[(size_t)wi * ldc + wj],
          want[(size_t)wi * N + wj]);
    CHECK(worst_vs_ref <= 1e-5, "gemm vs gemm_ref ta=%d tb=%d M=%d N=%d K=%d: %.3g of the bound", g->ta,
          g->tb, M, N, K, worst_vs_ref);
    CHECK(worst_ref <= 1e-6, "gemm_ref ta=%d tb=%d M=%d N=%d K=%d: %.3g of the bound", g->ta, g->tb, M, N,
          K, worst_ref);
    CHECK(bad_pad == 0, "ta=%d tb=%d M=%d N=%d K=%d ldc=%d: %d padding cells of C were written", g->ta,
          g->tb, M, N, K, ldc, bad_pad);
    CHECK(nonzero > 0, "vacuous case M=%d N=%d K=%d", M, N, K);
    free(A); free(B); free(C0); free(C1); free(C2); free(want); free(bound);
    return worst;
}

TEST(gemm_matches_reference_all_transposes_and_sizes) {
    static const int sizes[][3] = {
        {1, 1, 1},      {7, 8, 9},     {9, 7, 8},     {8, 9, 7},     {31, 33, 64},  {33, 31, 65},
        {65, 64, 257},  {1, 1030, 257}, {7, 1030, 9}, {9, 31, 1030}, {65, 1030, 33}, {1030, 7, 31},
        {1030, 1, 65},  {64, 65, 31},  {8, 32, 256},  {16, 64, 512},
    };
    static const float betas[] = {0.0f, 1.0f, 0.5f};
    static const float alphas[] = {1.0f, -1.5f, 0.25f, 3.0f};
    int ci = 0, ncase = 0;
    double worst = 0.0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int bi = 0; bi < 3; bi++, ci++) {
                int padded = ci % 5 != 0; /* every fifth case uses tight leading dimensions */
                GemmCase g = {t >> 1, t & 1, sizes[s][0], sizes[s][1], sizes[s][2],
                              alphas[ci % 4], betas[bi],
                              padded ? 1 + ci % 4 : 0, padded ? 2 + ci % 3 : 0, padded ? 3 + ci % 5 : 0};
                double w = run_case(&g, 1000 + ci);
                if (w > worst) worst = w;
                ncase++;
            }
    CHECK(ncase == 16 * 12, "ran %d cases", ncase);
    if (getenv("ALEXNET_TEST_VERBOSE")) fprintf(stderr, "[worst gemm error %.3g of bound] ", worst);
}

/* The float32 kernels: 2 AVX-512, 1 AVX2 with FMA, 0 portable (GCC vector extensions). Selects
 * kernel k through the overrides; returns 0 where the CPU cannot run it. */
static int use_kernel(int k) {
    an_cpu_avx512_override(k == 2 ? -1 : 0);
    gemm_avx2_override(k == 1 ? -1 : 0);
    return k == 2 ? an_cpu_avx512() : k == 1 ? gemm_avx2() : !an_cpu_avx512() && !gemm_avx2();
}

static void default_kernels(void) {
    an_cpu_avx512_override(-1);
    gemm_avx2_override(-1);
}

/* The kernels a machine without AVX-512 runs (AVX2 with FMA, where the CPU has it, and the portable
 * one), forced here through the overrides. Edge tiles of every width class of the AVX2 kernel's
 * masks (nr 1..8, 9..16, 17..24, 25..31) and of both its 6-row blocks (mr 1..6, 7..11). */
TEST(gemm_portable_kernel_matches_reference) {
    static const int sizes[][3] = {{7, 8, 9},      {33, 31, 65}, {65, 1030, 33}, {13, 169, 300},
                                   {12, 32, 256},  {5, 20, 40},  {11, 27, 17},   {18, 57, 3}};
    for (int k = 1; k >= 0; k--) {
        if (!use_kernel(k)) continue;
        CHECK(!an_cpu_avx512() && gemm_avx2() == k, "overrides did not select kernel %d", k);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int t = 0; t < 4; t++) {
                GemmCase g = {t >> 1, t & 1, sizes[s][0], sizes[s][1], sizes[s][2], t == 3 ? -1.5f : 1.0f,
                              t == 0 ? 0.0f : (t == 1 ? 1.0f : 0.5f), (int)s % 2, t % 2, 1};
                run_case(&g, 5000 + s * 4 + t);
            }
    }
    default_kernels();
}

/* C = A B (beta 0) and C += A B (beta 1) against the sums the kernels are written to make: per
 * entry and K slice (equal slices of at most 256), k ascending from zero, one fused multiply-add
 * per term (fmaf), then one add to C, slice after slice. Returns how many entries differ in any bit. */
static int fma_order_mismatches(int tb, int M, int N, int K, float beta, uint64_t seed) {
    int ldb = tb ? K : N;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = malloc(sizeof(float) * M * N), *C0 = malloc(sizeof(float) * M * N);
    fill(A, (size_t)M * K, seed), fill(B, (size_t)K * N, seed + 1), fill(C0, (size_t)M * N, seed + 2);
    memcpy(C, C0, sizeof(float) * M * N);
    gemm(0, tb, M, N, K, 1.0f, A, K, B, ldb, beta, C, N);
    int bad = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            /* K slices of equal length <= 256, each a chain from zero added to C in order */
            int slices = (K + 255) / 256, ks = (K + slices - 1) / slices;
            float want = beta == 0.0f ? 0.0f : C0[(size_t)i * N + j];
            for (int p0 = 0; p0 < K; p0 += ks) {
                float acc = 0.0f;
                for (int k = p0; k < K && k < p0 + ks; k++)
                    acc = fmaf(A[(size_t)i * K + k], tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j], acc);
                want = p0 == 0 && beta == 0.0f ? acc : want + acc;
            }
            bad += memcmp(&want, &C[(size_t)i * N + j], sizeof want) != 0;
        }
    free(A), free(B), free(C), free(C0);
    return bad;
}

/* The AVX-512 kernel and the AVX2 one compute those sums bit for bit (fused multiply-adds, as the
 * micro-kernel is written), so both kinds of machine give the same products, and the same
 * training run. Edge tiles (13 x 37: 1 row, 5 columns over; 25 x 70) and a whole tile; several K
 * slices with the slices inside each task (200 x 40, K 700: fc6's forward shape) and with each
 * slice over all tasks (30 x 1100, more columns than a panel). */
TEST(gemm_kernels_fuse_multiply_adds_in_order) {
    static const int sizes[][3] = {{13, 37, 200}, {12, 32, 256}, {25, 70, 9}, {200, 40, 700}, {30, 1100, 520}};
    int ran = 0;
    for (int k = 2; k >= 1; k--) {
        if (!use_kernel(k)) continue;
        ran++;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int v = 0; v < 4; v++) {
                int tb = v & 1, M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                float beta = v & 2 ? 1.0f : 0.0f;
                int bad = fma_order_mismatches(tb, M, N, K, beta, 8000 + s * 4 + v);
                CHECK(bad == 0, "kernel %d (avx512=%d avx2=%d) tb=%d M=%d N=%d K=%d beta=%g: %d of %d entries differ "
                      "from k-ordered fmaf sums", k, an_cpu_avx512(), gemm_avx2(), tb, M, N, K, beta, bad, M * N);
            }
    }
    default_kernels();
    if (!ran) SKIP("neither AVX-512 nor AVX2 with FMA on this CPU (the portable kernel is tested against float64)");
}

/* A packed once (gemm_pack_a) then used by gemm_packed gives gemm's result bit for bit (with alpha 1
 * and A not transposed, gemm reads A in place where B fits whole: micro_kernel_avx512_rows), so does
 * gemm_packed_ab with B packed row by row (gemm_pack_b_row; 100 x 1100 x 600: two N panels of a
 * product too wide for the K-inside path), and
 * gemm_packed_ref (plain loops over the packed layout) matches gemm_ref. */
static void packed_a_cases(int kern) {
    static const int sizes[][3] = {{7, 8, 9}, {128, 169, 300}, {97, 40, 520}, {1200, 33, 128}, {12, 32, 256},
                                   {100, 1100, 600}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int ta = t >> 1, tb = t & 1, M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
            int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
            float alpha = t == 3 ? -1.5f : t < 2 ? 1.0f : 0.75f, beta = t == 0 ? 0.0f : 0.5f;
            float *A = malloc(sizeof(float) * (ta ? K : M) * lda), *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
            float *C1 = malloc(sizeof(float) * M * ldc), *C2 = malloc(sizeof(float) * M * ldc);
            float *C3 = malloc(sizeof(float) * M * ldc), *C4 = malloc(sizeof(float) * M * ldc);
            float *Ap = malloc(sizeof(float) * gemm_packed_a_floats(M, K));
            fill(A, (size_t)(ta ? K : M) * lda, 90 + s * 4 + t);
            fill(B, (size_t)(tb ? N : K) * ldb, 190 + s * 4 + t);
            fill(C1, (size_t)M * ldc, 290 + s * 4 + t);
            memcpy(C2, C1, sizeof(float) * M * ldc);
            memcpy(C3, C1, sizeof(float) * M * ldc);
            memcpy(C4, C1, sizeof(float) * M * ldc);
            gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
            gemm_pack_a(ta, M, K, alpha, A, lda, Ap);
            gemm_packed(tb, M, N, K, Ap, B, ldb, beta, C2, ldc);
            gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C3, ldc);
            gemm_packed_ref(tb, M, N, K, Ap, B, ldb, beta, C4, ldc);
            int differ_ab = 0;
            if (!tb) { /* B packed row by row as im2col does: gemm_packed_ab */
                float *Bp = aligned_alloc(64, (sizeof(float) * gemm_packed_b_floats(K, N) + 63) / 64 * 64), *C5 = malloc(sizeof(float) * M * ldc);
                fill(C5, (size_t)M * ldc, 290 + s * 4 + t);
                for (int k = 0; k < K; k++) gemm_pack_b_row(Bp, K, N, k, B + (size_t)k * ldb);
                gemm_packed_ab(M, N, K, Ap, Bp, beta, C5, ldc);
                for (size_t i = 0; i < (size_t)M * ldc; i++) differ_ab += memcmp(&C1[i], &C5[i], sizeof(float)) != 0;
                free(Bp); free(C5);
            }
            CHECK(differ_ab == 0, "kernel %d: gemm_packed_ab ta=%d M=%d N=%d K=%d: %d entries differ from gemm", kern, ta,
                  M, N, K, differ_ab);
            int differ = 0;
            double worst = 0.0;
            for (size_t i = 0; i < (size_t)M * ldc; i++) {
                differ += memcmp(&C1[i], &C2[i], sizeof(float)) != 0;
                double e = fabs((double)C4[i] - C3[i]) / (fabs((double)C3[i]) + 1.0);
                if (e > worst) worst = e;
            }
            CHECK(differ == 0, "kernel %d: gemm_packed ta=%d tb=%d M=%d N=%d K=%d: %d entries differ from gemm", kern, ta,
                  tb, M, N, K, differ);
            CHECK(worst <= 1e-5, "kernel %d: gemm_packed_ref ta=%d tb=%d M=%d N=%d K=%d: %.3g from gemm_ref", kern, ta, tb,
                  M, N, K, worst);
            free(A); free(B); free(C1); free(C2); free(C3); free(C4); free(Ap);
        }
}

/* with each float32 kernel the CPU can run (use_kernel), so the portable packing is tested too */
TEST(gemm_packed_a_matches_gemm) {
    for (int k = 2; k >= 0; k--)
        if (use_kernel(k)) packed_a_cases(k);
    default_kernels();
}

/* Cases large in every direction at once: several K slices, N panels, row blocks and edge tiles. */
TEST(gemm_matches_reference_large) {
    GemmCase a = {0, 0, 70, 1030, 520, 0.5f, 0.5f, 3, 5, 7};
    GemmCase b = {1, 1, 70, 1030, 520, -2.0f, 1.0f, 1, 0, 2};
    run_case(&a, 77);
    run_case(&b, 78);
    /* K inside the tasks (fc6's forward shape, smaller): 20 slices of 250 in spans of 8, A read in
     * place (alpha 1) and packed (alpha 0.5) */
    GemmCase c = {0, 1, 200, 128, 5000, 1.0f, 0.0f, 0, 0, 0};
    GemmCase d = {0, 1, 200, 128, 5000, 0.5f, 0.5f, 1, 2, 3};
    run_case(&c, 79);
    run_case(&d, 80);
}

TEST(gemm_degenerate_k_and_alpha) {
    /* K = 0 and alpha = 0 only scale C by beta; beta = 0 then clears it (even NaN) */
    float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8};
    float C[6] = {1, -2, 3, NAN, 5, 6}, R[6] = {1, -2, 3, NAN, 5, 6};
    gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, C, 3);
    gemm_ref(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.5f, R, 3);
    CHECK(C[0] == 0.5f && C[1] == -1.0f && C[2] == 1.5f && C[4] == 2.5f && C[5] == 3.0f,
          "K=0 beta=0.5: %g %g %g %g %g", C[0], C[1], C[2], C[4], C[5]);
    CHECK(R[0] == 0.5f && R[5] == 3.0f, "gemm_ref K=0: %g %g", R[0], R[5]);
    float D[4] = {NAN, 7, 8, 9};
    gemm(0, 0, 2, 2, 2, 0.0f, A, 2, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 0.0f && D[1] == 0.0f && D[2] == 0.0f && D[3] == 0.0f, "alpha=0 beta=0: %g %g %g %g", D[0],
          D[1], D[2], D[3]);
    float E[4] = {1, 1, 1, 1};
    gemm(0, 0, 2, 2, 2, 2.0f, A, 2, B, 2, 1.0f, E, 2); /* [1 2;3 4][5 6;7 8] = [19 22;43 50] */
    CHECK(E[0] == 39.0f && E[1] == 45.0f && E[2] == 87.0f && E[3] == 101.0f, "2x2: %g %g %g %g", E[0], E[1],
          E[2], E[3]);
    float F[4] = {1, 1, 1, 1};
    gemm(1, 1, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, F, 2); /* [1 3;2 4][5 7;6 8] = [23 31;34 46] */
    CHECK(F[0] == 23.0f && F[1] == 31.0f && F[2] == 34.0f && F[3] == 46.0f, "2x2 TT: %g %g %g %g", F[0], F[1],
          F[2], F[3]);
}

/* Runs gemm on a copy of C0 with the given thread count. */
static void run_threads(int threads, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                        int lda, const float *B, int ldb, float beta, const float *C0, float *C, int ldc) {
    memcpy(C, C0, (size_t)M * ldc * sizeof(float));
    omp_set_num_threads(threads);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Thread counts for the determinism checks: 1 against T = max(2, the default). Only these two, in
 * this order: a team smaller than an earlier one (other than 1) makes libgomp end the surplus threads,
 * and the thread-local packing buffers of gemm.c then show up as leaks under LeakSanitizer. */
static int multi_threads(void) {
    int saved = omp_get_max_threads();
    return saved > 2 ? saved : 2;
}

TEST(gemm_deterministic_across_calls_and_threads) {
    int saved = omp_get_max_threads(), T = multi_threads();
    static const int shapes[][5] = {/* ta, tb, M, N, K */
                                    {0, 0, 130, 1030, 600}, {1, 1, 67, 300, 513}, {0, 1, 200, 40, 1000},
                                    {1, 0, 9, 2100, 257}, {0, 1, 200, 128, 5000}};
    /* the last with alpha 1: A read in place, its 34 six-row panels in 3 row blocks on 1 thread, 4
     * on 2 (K inside the tasks); the others' alpha 0.75 packs A */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], M = shapes[s][2], N = shapes[s][3], K = shapes[s][4];
        int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
        size_t asz = (size_t)(ta ? K : M) * lda, bsz = (size_t)(tb ? N : K) * ldb, csz = (size_t)M * ldc;
        float *A = malloc(asz * 4), *B = malloc(bsz * 4), *C0 = malloc(csz * 4);
        float *r1 = malloc(csz * 4), *r2 = malloc(csz * 4), *r3 = malloc(csz * 4);
        fill(A, asz, 500 + s);
        fill(B, bsz, 600 + s);
        fill(C0, csz, 700 + s);
        float alpha = s == 4 ? 1.0f : 0.75f;
        run_threads(T, ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.5f, C0, r1, ldc);
        run_threads(T, ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.5f, C0, r2, ldc);
        run_threads(1, ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.5f, C0, r3, ldc);
        CHECK(memcmp(r1, r2, csz * 4) == 0, "shape %zu: two identical calls differ", s);
        CHECK(memcmp(r1, r3, csz * 4) == 0, "shape %zu: 1 thread differs from %d threads", s, T);
        CHECK(memcmp(r1, C0, csz * 4) != 0, "shape %zu: gemm left C unchanged", s);
        free(A); free(B); free(C0); free(r1); free(r2); free(r3);
    }
    omp_set_num_threads(saved);
}

/* Called from inside a parallel region, each thread runs its own gemm alone: results equal the
 * serial ones bit for bit (thread-local packing buffers must not be shared). */
TEST(gemm_inside_parallel_region) {
    int saved = omp_get_max_threads(), nt = multi_threads();
    enum { T = 4, M = 70, N = 300, K = 300 };
    float *A = malloc((size_t)T * M * K * 4), *B = malloc((size_t)K * N * 4);
    float *Cs = malloc((size_t)T * M * N * 4), *Cp = malloc((size_t)T * M * N * 4);
    fill(A, (size_t)T * M * K, 11);
    fill(B, (size_t)K * N, 12);
    omp_set_num_threads(nt);
    for (int t = 0; t < T; t++)
        gemm(0, 0, M, N, K, 1.0f, A + (size_t)t * M * K, K, B, N, 0.0f, Cs + (size_t)t * M * N, N);
    int nthreads = 0;
#pragma omp parallel num_threads(nt)
    {
#pragma omp single
        nthreads = omp_get_num_threads();
#pragma omp for schedule(static)
        for (int t = 0; t < T; t++)
            gemm(0, 0, M, N, K, 1.0f, A + (size_t)t * M * K, K, B, N, 0.0f, Cp + (size_t)t * M * N, N);
    }
    CHECK(nthreads > 1, "the parallel region ran on %d thread(s)", nthreads);
    CHECK(memcmp(Cs, Cp, (size_t)T * M * N * 4) == 0, "gemm inside a parallel region differs from serial");
    double s = 0.0; /* spot-check one value against the exact product */
    for (int k = 0; k < K; k++) s += (double)A[(size_t)2 * M * K + 5 * K + k] * B[(size_t)k * N + 17];
    CHECK(fabs(Cp[(size_t)2 * M * N + 5 * N + 17] - s) < 1e-4, "C[2][5][17] = %g, want %g",
          Cp[(size_t)2 * M * N + 5 * N + 17], s);
    free(A); free(B); free(Cs); free(Cp);
    omp_set_num_threads(saved);
}

/* ---- bfloat16 mode ---- */

static float bits_float(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }

TEST(gemm_round_bf16_ties_to_even) {
    const float one = 1.0f, ulp = 1.0f / 128; /* bfloat16 keeps 7 fraction bits */
    CHECK(gemm_round_bf16(one) == one, "1 changed");
    CHECK(gemm_round_bf16(one + ulp / 2) == one, "1 + ulp/2 (a tie) should go to even 1");
    CHECK(gemm_round_bf16(one + 1.5f * ulp) == one + 2 * ulp, "1 + 1.5 ulp (a tie) should go to even 1 + 2 ulp");
    CHECK(gemm_round_bf16(one + ulp / 2 + ulp / 4096) == one + ulp, "just above a tie should round up");
    CHECK(gemm_round_bf16(-3.0f - ulp) == -3.0f, "-3 - ulp(1) is below half an ulp of 3: -3");
    CHECK(gemm_round_bf16(bits_float(0x3F7FFFFFu)) == 1.0f, "largest float below 1 rounds to 1");
    CHECK(isinf(gemm_round_bf16(3.4e38f)) && gemm_round_bf16(3.4e38f) > 0, "FLT_MAX overflows to inf");
    CHECK(isinf(gemm_round_bf16(-INFINITY)) && gemm_round_bf16(-INFINITY) < 0, "-inf");
    CHECK(isnan(gemm_round_bf16(bits_float(0x7F800001u))), "a NaN with low payload bits must stay NaN");
    float nz = gemm_round_bf16(-0.0f);
    CHECK(nz == 0.0f && signbit(nz), "-0 keeps its sign");
    CHECK(gemm_round_bf16(bits_float(0x00012345u)) == bits_float(0x00010000u), "subnormal rounds in place");
}

/* In bf16 mode every path (AVX-512 and portable kernels, gemm, gemm_packed, gemm_packed_ab,
 * gemm_ref) computes the exact product of the rounded operands to float32 accuracy (1e-5 of
 * sum |a b|), which is within 2^-8 of sum |a b| from the float32-operand product: the documented
 * bf16 tolerance. Alpha is a power of two so that rounding alpha*a equals alpha*rounding a. */
static void bf16_case(int ta, int tb, int M, int N, int K, float alpha, float beta, uint64_t seed) {
    int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
    size_t asz = (size_t)(ta ? K : M) * lda, bsz = (size_t)(tb ? N : K) * ldb, csz = (size_t)M * ldc;
    float *A = malloc(asz * 4), *B = malloc(bsz * 4), *C0 = malloc(csz * 4), *C[5];
    for (int v = 0; v < 5; v++) C[v] = malloc(csz * 4);
    float *Ap = malloc(gemm_packed_a_floats(M, K) * 4);
    float *Bp = aligned_alloc(64, (gemm_packed_b_floats(K, N) * 4 + 63) / 64 * 64);
    fill(A, asz, seed), fill(B, bsz, seed + 1), fill(C0, csz, seed + 2);
    for (int v = 0; v < 5; v++) memcpy(C[v], C0, csz * 4);
    memset(Ap, 0xFF, gemm_packed_a_floats(M, K) * 4); /* NaNs: packing must write every entry it reads */
    memset(Bp, 0xFF, gemm_packed_b_floats(K, N) * 4);
    gemm_set_bf16(1);
    int dot = gemm_bf16_dot() + 2 * gemm_bf16_amx(); /* 1 dot products, 2 AMX */
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[0], ldc);
    gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[1], ldc);
    gemm_pack_a(ta, M, K, alpha, A, lda, Ap);
    gemm_packed(tb, M, N, K, Ap, B, ldb, beta, C[2], ldc);
    int nv = 3;
    if (!tb) {
        for (int k = 0; k < K; k++) gemm_pack_b_row(Bp, K, N, k, B + (size_t)k * ldb);
        gemm_packed_ab(M, N, K, Ap, Bp, beta, C[3], ldc);
        nv = 4;
    }
    gemm_set_bf16(0);
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C[4], ldc); /* float32, to see that bf16 differs */
    double worst[4] = {0}, worst_fp32 = 0.0, max_change = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0, sr = 0.0, sa = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * b;
                sr += (double)gemm_round_bf16(a) * gemm_round_bf16(b);
                sa += fabs((double)a * b);
            }
            double c = beta == 0.0f ? 0.0 : (double)beta * C0[(size_t)i * ldc + j];
            double want_r = alpha * sr + c, want = alpha * s + c, bound = fabs(alpha) * sa + fabs(c) + 1e-30;
            for (int v = 0; v < nv; v++) {
                double e = fabs(C[v][(size_t)i * ldc + j] - want_r) / bound;
                if (!(e <= worst[v])) worst[v] = e;
            }
            double e = fabs(C[0][(size_t)i * ldc + j] - want) / bound;
            if (!(e <= worst_fp32)) worst_fp32 = e;
            e = fabs((double)C[0][(size_t)i * ldc + j] - C[4][(size_t)i * ldc + j]) / bound;
            if (e > max_change) max_change = e;
        }
    static const char *names[] = {"gemm", "gemm_ref", "gemm_packed", "gemm_packed_ab"};
    for (int v = 0; v < nv; v++)
        CHECK(worst[v] <= 1e-5, "bf16 %s ta=%d tb=%d M=%d N=%d K=%d avx512=%d avx2=%d: %.3g of the bound from the "
              "rounded operands' product (dot %d)", names[v], ta, tb, M, N, K, an_cpu_avx512(), gemm_avx2(), worst[v],
              dot);
    CHECK(worst_fp32 <= 1.0 / 256, "bf16 gemm M=%d N=%d K=%d: %.3g of the bound from the float32 product", M, N, K,
          worst_fp32);
    CHECK(max_change > 1e-5, "bf16 gemm M=%d N=%d K=%d equals the float32 one: nothing was rounded", M, N, K);
    free(A), free(B), free(C0), free(Ap), free(Bp);
    for (int v = 0; v < 5; v++) free(C[v]);
}

/* kernels: 3 = AVX512_BF16 dot products (where the CPU has them), 2 = AVX-512 float32 kernels on
 * rounded operands, 1 = AVX2 with FMA, 0 = portable kernels (each where the CPU can run it); AMX
 * off (its own test below). Odd K (65, 33, 9) leaves dot mode a half-empty last pair. */
/* Few row blocks and many columns (the fully connected layers' dx = dy w), or one K slice (their
 * dw = dy^T x): each thread takes whole column strips and runs every panel and K slice of them
 * alone. Strips split unevenly (N 2100: 66 strips, the last 20 wide; two panels for one thread),
 * one K slice (K 256, 40, 100 with 5 row blocks) and several (600: 3 of 200), every transpose, A packed whole or given packed (gemm_packed, the rows NaN-
 * filled first); in float32 against the float64 product, the same bits for 1 thread and 2, and in
 * bf16 (every kernel this CPU has) against the rounded operands' product. */
TEST(gemm_column_split_matches_reference) {
    static const int shapes[][3] = {{24, 2100, 600}, {100, 1100, 256}, {130, 300, 40}, {300, 700, 100}};
    int saved = omp_get_max_threads(), T = multi_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            GemmCase g = {t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], t == 2 ? -0.5f : 1.0f,
                          t == 1 ? 0.5f : 0.0f, 1, 2, 3};
            run_case(&g, 900 + s * 4 + t);
            int M = g.M, N = g.N, K = g.K, lda = (g.ta ? M : K) + 1, ldb = (g.tb ? K : N) + 2, ldc = N + 3;
            size_t asz = (size_t)(g.ta ? K : M) * lda, bsz = (size_t)(g.tb ? N : K) * ldb, csz = (size_t)M * ldc;
            float *A = malloc(asz * 4), *B = malloc(bsz * 4), *C0 = malloc(csz * 4), *r[3];
            for (int v = 0; v < 3; v++) r[v] = malloc(csz * 4);
            float *Ap = malloc(gemm_packed_a_floats(M, K) * 4);
            fill(A, asz, 950 + s), fill(B, bsz, 960 + s), fill(C0, csz, 970 + s);
            run_threads(T, g.ta, g.tb, M, N, K, g.alpha, A, lda, B, ldb, g.beta, C0, r[0], ldc);
            run_threads(1, g.ta, g.tb, M, N, K, g.alpha, A, lda, B, ldb, g.beta, C0, r[1], ldc);
            memset(Ap, 0xFF, gemm_packed_a_floats(M, K) * 4);
            gemm_pack_a(g.ta, M, K, g.alpha, A, lda, Ap);
            memcpy(r[2], C0, csz * 4);
            gemm_packed(g.tb, M, N, K, Ap, B, ldb, g.beta, r[2], ldc);
            CHECK(memcmp(r[0], r[1], csz * 4) == 0, "%dx%dx%d t=%d: 1 thread differs from %d threads", M, N, K, t, T);
            CHECK(memcmp(r[0], r[2], csz * 4) == 0, "%dx%dx%d t=%d: gemm_packed differs from gemm", M, N, K, t);
            free(A), free(B), free(C0), free(Ap);
            for (int v = 0; v < 3; v++) free(r[v]);
            if (t == 0) {
                gemm_bf16_amx_override(0);
                for (int kern = 3; kern >= 0; kern--) {
                    if (kern == 3 ? !gemm_bf16_dot_hw() || !use_kernel(2) : !use_kernel(kern)) continue;
                    gemm_bf16_dot_override(kern == 3);
                    bf16_case(0, 0, M, N, K, 1.0f, 0.0f, 980 + s * 8 + kern);
                }
                default_kernels();
                gemm_bf16_dot_override(-1);
                gemm_bf16_amx_override(-1);
                if (gemm_bf16_amx_hw()) bf16_case(0, 0, M, N, K, 1.0f, 0.0f, 990 + s); /* AMX where there is */
            }
        }
    omp_set_num_threads(saved);
}

static const int bf16_sizes[][3] = {{7, 8, 9}, {33, 31, 65}, {13, 169, 300}, {97, 40, 520}, {65, 1030, 33}};
TEST(gemm_bf16_matches_rounded_reference) {
    if (!gemm_bf16_dot_hw()) printf("    (no AVX512_BF16 on this CPU: the dot-product kernels are not exercised)\n");
    gemm_bf16_amx_override(0);
    for (int kern = 3; kern >= 0; kern--) {
        if (kern == 3 ? !gemm_bf16_dot_hw() || !use_kernel(2) : !use_kernel(kern)) continue;
        gemm_bf16_dot_override(kern == 3);
        gemm_set_bf16(1);
        CHECK(gemm_bf16_dot() == (kern == 3) && !gemm_bf16_amx(), "kernel %d: gemm_bf16_dot() = %d, amx %d", kern,
              gemm_bf16_dot(), gemm_bf16_amx());
        gemm_set_bf16(0);
        for (size_t s = 0; s < sizeof bf16_sizes / sizeof bf16_sizes[0]; s++)
            for (int t = 0; t < 4; t++)
                bf16_case(t >> 1, t & 1, bf16_sizes[s][0], bf16_sizes[s][1], bf16_sizes[s][2],
                          t == 3 ? -2.0f : (t == 1 ? 0.5f : 1.0f), t == 0 ? 0.0f : 0.5f, 7000 + s * 8 + t * 2 + kern);
    }
    default_kernels();
    gemm_bf16_dot_override(-1);
    gemm_bf16_amx_override(-1);
}

/* AMX tiles (where the CPU reports AMX-BF16 and Linux grants the tile state; skipped elsewhere):
 * chosen by default in bf16 mode unless dot products are forced, and every path within float32
 * accuracy of the rounded operands' product. K 9 and 31 keep the float32 kernels (K < 32); 65 and
 * 33 pad the pairs to 48 and 32, 300 and 520 run 2 and 3 slices, 1000 4 slices of 250; M 97, 65
 * and 100 leave edge tiles of 1, 17 and 4 rows (and row blocks of 60 and 37 rows), N 31, 169, 1030
 * (two panels) and 70 edge columns; 32 x 32 x 64 is exactly 2 x 2 tiles, 4 pairs of depth. */
TEST(gemm_bf16_amx_tiles_match_reference) {
    if (!gemm_bf16_amx_hw()) SKIP("no AMX-BF16 tiles here (the CPU does not report them or Linux did not grant them)");
    static const int more[][3] = {{32, 32, 64}, {16, 16, 32}, {100, 70, 1000}, {20, 40, 31}};
    gemm_set_bf16(1);
    gemm_bf16_dot_override(0);
    CHECK(gemm_bf16_amx(), "AMX is not chosen by default in bf16 mode");
    gemm_bf16_dot_override(1);
    CHECK(!gemm_bf16_amx() && gemm_bf16_dot(), "forced dot products must turn AMX off");
    gemm_bf16_dot_override(-1);
    gemm_bf16_amx_override(0);
    CHECK(!gemm_bf16_amx(), "gemm_bf16_amx_override(0) must turn AMX off");
    gemm_bf16_amx_override(1);
    gemm_bf16_dot_override(0);
    CHECK(gemm_bf16_amx(), "gemm_bf16_amx_override(1) on a CPU with AMX");
    gemm_set_bf16(0);
    for (size_t s = 0; s < sizeof bf16_sizes / sizeof bf16_sizes[0] + sizeof more / sizeof more[0]; s++) {
        const int *z = s < 5 ? bf16_sizes[s] : more[s - 5];
        for (int t = 0; t < 4; t++)
            bf16_case(t >> 1, t & 1, z[0], z[1], z[2], t == 3 ? -2.0f : (t == 1 ? 0.5f : 1.0f), t == 0 ? 0.0f : 0.5f,
                      7100 + s * 8 + t * 2);
    }
    gemm_bf16_dot_override(-1);
    gemm_bf16_amx_override(-1);
    gemm_bf16_dot_override(-1);
}
