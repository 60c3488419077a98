/* test_layers.c: every layer of layers.h against a float64 reference written here straight from the
 * definitions (direct loops), and every backward pass against central finite differences of that
 * float64 reference for the loss L = sum(y * r), r fixed and random (so dL/dy = r). The finite
 * differences are taken on the double reference, not on the float code, so they are accurate to
 * ~1e-9 and the comparison measures only the float implementation's error. */
#include "harness.h"
#include "../src/cpu/gemm.h"
#include "../src/layers/layers.h"
#include "../src/util/common.h"
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define FD_EPS 1e-4      /* finite-difference step, on the float64 reference */
#define FD_RTOL 1e-4     /* backward vs finite differences */
#define FWD_RTOL 1e-5    /* forward vs float64 reference */
#define FD_SAMPLES 96    /* at most this many entries of each gradient are checked */

/* ---------------------------------------------------------------- helpers ---- */

static float *frand(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * an_uniform(seed, i);
    return p;
}

static float *fnan(size_t n) { /* output buffers start as NaN: every entry must be overwritten */
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

static double *dup_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double *dalloc(size_t n) { return calloc(n + 1, sizeof(double)); }

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Worst |got - want| / (|want| + floor_frac * max|want|); fails the test above rtol, or when the
 * reference is all zero (the check would be vacuous). Non-finite values count as infinite error. */
static double check_close(const char *what, const float *got, const double *want, size_t n, double rtol,
                          double floor_frac) {
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
    CHECK(n > 0 && mx > 0.0, "%s: the reference is all zero (%zu values)", what, n);
    double worst = 0.0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = isfinite(got[i]) ? fabs(got[i] - want[i]) / (fabs(want[i]) + floor_frac * mx + 1e-300)
                                    : INFINITY;
        if (!(e <= worst)) { worst = e; wi = i; }
    }
    CHECK(worst <= rtol, "%s: worst relative error %.3g at %zu (got %.9g, want %.9g, max|want| %.3g)", what,
          worst, wi, n ? got[wi] : 0.0f, n ? want[wi] : 0.0, mx);
    return worst;
}

/* |got - want| <= rtol * bound per element (bound: sum of |terms| of the exact computation). */
static void check_bound(const char *what, const float *got, const double *want, const double *bound, size_t n,
                        double rtol) {
    double worst = 0.0;
    size_t wi = 0, nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        double e = isfinite(got[i]) ? fabs(got[i] - want[i]) / (bound[i] + 1e-300) : INFINITY;
        if (!(e <= worst)) { worst = e; wi = i; }
        nonzero += want[i] != 0.0;
    }
    CHECK(nonzero > 0, "%s: the reference is all zero", what);
    CHECK(worst <= rtol, "%s: worst error %.3g of the bound at %zu (got %.9g, want %.9g)", what, worst, wi,
          n ? got[wi] : 0.0f, n ? want[wi] : 0.0);
}

/* Central differences of loss(ctx) with respect to param[0..n) at up to FD_SAMPLES entries (always the
 * first and last), compared with the analytic gradient from the float code. */
typedef double (*LossFn)(void *ctx);
static void check_fd(const char *what, LossFn loss, void *ctx, double *param, size_t n, const float *analytic,
                     double rtol, double floor_frac) {
    size_t m = n <= FD_SAMPLES ? n : FD_SAMPLES;
    float *got = malloc(m * sizeof(float) + 4);
    double *fd = dalloc(m);
    for (size_t s = 0; s < m; s++) {
        size_t i = s;
        if (m < n) {
            size_t lo = s * n / m, hi = (s + 1) * n / m; /* one entry per stratum, at random inside it */
            i = s == m - 1 ? n - 1 : lo + an_hash64(0xFD, s) % (hi - lo);
        }
        double save = param[i];
        param[i] = save + FD_EPS;
        double lp = loss(ctx);
        param[i] = save - FD_EPS;
        double lm = loss(ctx);
        param[i] = save;
        fd[s] = (lp - lm) / (2.0 * FD_EPS);
        got[s] = analytic[i];
    }
    check_close(what, got, fd, m, rtol, floor_frac);
    free(got);
    free(fd);
}

/* A shuffled ramp: n distinct values spread over [-1, 1], gaps 2/n, for max pooling without ties. */
static float *distinct(size_t n, uint64_t seed) {
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) p[i] = -1.0f + 2.0f * (float)i / (float)n;
    for (size_t i = n; i > 1; i--) {
        size_t j = an_hash64(seed, i) % i;
        float t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

/* ---------------------------------------------------------------- convolution ---- */

typedef struct ConvCtx {
    ConvShape s;
    double *x, *w, *b, *r, *y;
} ConvCtx;

/* y[n][o][oy][ox] = b[o] + sum_{ci < c/groups, ky, kx} w[o][ci][ky][kx] x[n][g*c/groups + ci][iy][ix],
 * g = o / (out_c/groups), iy = oy*stride - pad + ky (zero outside). bound: |b| + sum |w x|. */
static void ref_conv(const ConvShape *s, const double *x, const double *w, const double *b, double *y,
                     double *bound) {
    int cg = s->c / s->groups, og = s->out_c / s->groups, k = s->k;
    for (int n = 0; n < s->n; n++)
        for (int o = 0; o < s->out_c; o++) {
            int g = o / og;
            for (int oy = 0; oy < s->out_h; oy++)
                for (int ox = 0; ox < s->out_w; ox++) {
                    double acc = b[o], ab = fabs(b[o]);
                    for (int ci = 0; ci < cg; ci++) {
                        int c = g * cg + ci;
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * s->stride - s->pad + ky;
                            if (iy < 0 || iy >= s->h) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * s->stride - s->pad + kx;
                                if (ix < 0 || ix >= s->w) continue;
                                double t = w[(((size_t)o * cg + ci) * k + ky) * k + kx] *
                                           x[(((size_t)n * s->c + c) * s->h + iy) * s->w + ix];
                                acc += t;
                                ab += fabs(t);
                            }
                        }
                    }
                    size_t yi = (((size_t)n * s->out_c + o) * s->out_h + oy) * s->out_w + ox;
                    y[yi] = acc;
                    if (bound) bound[yi] = ab;
                }
        }
}

static double conv_loss(void *p) {
    ConvCtx *c = p;
    ref_conv(&c->s, c->x, c->w, c->b, c->y, NULL);
    return dot(c->y, c->r, (size_t)c->s.n * c->s.out_c * c->s.out_h * c->s.out_w);
}

typedef struct ConvCase { int n, c, h, w, out_c, k, stride, pad, groups, oh, ow; } ConvCase;

static void conv_case(const ConvCase *cc, uint64_t seed) {
    char what[160];
    ConvShape s = {cc->n, cc->c, cc->h, cc->w, cc->out_c, cc->k, cc->stride, cc->pad, cc->groups, 0, 0, 0};
    conv_shape_init(&s);
    snprintf(what, sizeof what, "conv n%d c%d %dx%d oc%d k%d s%d p%d g%d", cc->n, cc->c, cc->h, cc->w,
             cc->out_c, cc->k, cc->stride, cc->pad, cc->groups);
    CHECK(s.out_h == cc->oh && s.out_w == cc->ow, "%s: output %dx%d, want %dx%d", what, s.out_h, s.out_w,
          cc->oh, cc->ow);
    if (s.out_h != cc->oh || s.out_w != cc->ow) return;
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.out_c * (s.c / s.groups) * s.k * s.k;
    size_t ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    float *x = frand(nx, seed, -1, 1), *w = frand(nw, seed + 1, -0.5f, 0.5f);
    float *b = frand(s.out_c, seed + 2, -0.5f, 0.5f), *r = frand(ny, seed + 3, -1, 1);
    float *y = fnan(ny), *dx = fnan(nx), *dw = fnan(nw), *db = fnan(s.out_c);
    ConvCtx ctx = {s, dup_d(x, nx), dup_d(w, nw), dup_d(b, s.out_c), dup_d(r, ny), dalloc(ny)};
    double *want = dalloc(ny), *bound = dalloc(ny);
    ref_conv(&s, ctx.x, ctx.w, ctx.b, want, bound);

    CHECK(conv_forward(&s, x, w, b, y) == 0, "%s: forward failed: %s", what, an_last_error());
    char lab[200];
    snprintf(lab, sizeof lab, "%s forward", what);
    check_bound(lab, y, want, bound, ny, FWD_RTOL);

    CHECK(conv_backward(&s, x, w, r, dx, dw, db) == 0, "%s: backward failed: %s", what, an_last_error());
    snprintf(lab, sizeof lab, "%s dx", what);
    check_fd(lab, conv_loss, &ctx, ctx.x, nx, dx, FD_RTOL, 1e-2);
    snprintf(lab, sizeof lab, "%s dw", what);
    check_fd(lab, conv_loss, &ctx, ctx.w, nw, dw, FD_RTOL, 1e-2);
    snprintf(lab, sizeof lab, "%s db", what);
    check_fd(lab, conv_loss, &ctx, ctx.b, s.out_c, db, FD_RTOL, 1e-2);

    /* without dx: the same parameter gradients, bit for bit, and overwritten rather than added to */
    float *dw2 = fnan(nw), *db2 = fnan(s.out_c);
    CHECK(conv_backward(&s, x, w, r, NULL, dw2, db2) == 0, "%s: backward (dx NULL) failed", what);
    CHECK(memcmp(dw, dw2, nw * 4) == 0 && memcmp(db, db2, s.out_c * 4) == 0,
          "%s: dw/db differ when dx is NULL", what);
    CHECK(conv_backward(&s, x, w, r, dx, dw2, db2) == 0, "%s: second backward failed", what);
    CHECK(memcmp(dw, dw2, nw * 4) == 0 && memcmp(db, db2, s.out_c * 4) == 0,
          "%s: dw/db accumulate across calls instead of being overwritten", what);

    free(x); free(w); free(b); free(r); free(y); free(dx); free(dw); free(db); free(dw2); free(db2);
    free(ctx.x); free(ctx.w); free(ctx.b); free(ctx.r); free(ctx.y); free(want); free(bound);
}

static const ConvCase conv_cases[] = {
    /* n  c   h   w  oc   k  s  p  g   oh  ow */
    {3, 3, 23, 23, 8, 11, 4, 2, 1, 5, 5},    /* conv1-like: 11x11 stride 4, pad 2 */
    {3, 3, 19, 19, 4, 11, 4, 0, 1, 3, 3},    /* conv1-like, pad 0 */
    {3, 4, 9, 7, 6, 3, 1, 1, 2, 9, 7},       /* groups 2, odd non-square input */
    {3, 4, 7, 7, 4, 5, 1, 2, 2, 7, 7},       /* conv2-like: 5x5 pad 2, groups 2 */
    {2, 8, 5, 5, 8, 3, 2, 1, 4, 3, 3},       /* groups 4, stride 2 */
    {3, 8, 11, 13, 12, 3, 1, 0, 4, 9, 11},   /* groups 4, pad 0, odd sizes */
    {2, 3, 10, 10, 5, 3, 2, 0, 1, 4, 4},     /* stride 2 with a leftover row and column */
    {3, 5, 6, 6, 7, 1, 1, 0, 1, 6, 6},       /* 1x1 (pointwise path) */
    {2, 6, 5, 3, 4, 1, 1, 0, 2, 5, 3},       /* 1x1 with groups 2 */
    {1, 4, 6, 5, 4, 1, 2, 0, 4, 3, 3},       /* 1x1 stride 2, one channel per group */
    {2, 2, 4, 4, 3, 1, 1, 1, 1, 6, 6},       /* 1x1 with padding 1: a border of bias only */
    {17, 2, 5, 5, 3, 3, 1, 1, 1, 5, 5},      /* batch above the 16 gradient chunks */
    {1, 6, 8, 8, 4, 3, 1, 1, 2, 8, 8},       /* a single image */
    {3, 2, 7, 9, 3, 7, 1, 0, 1, 1, 3},       /* kernel as tall as the input */
};

TEST(layers_conv_forward_backward) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) conv_case(&conv_cases[i], 100 + 10 * i);
}

/* The same through the portable paths (no AVX-512 gathers, packing or micro-kernel). */
TEST(layers_conv_portable_paths) {
    an_cpu_avx512_override(0);
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) conv_case(&conv_cases[i], 100 + 10 * i);
    an_cpu_avx512_override(-1);
}

/* bf16 mode (gemm_set_bf16): a convolution or fully connected layer computes, bit for bit, what
 * float32 mode computes from inputs, weights and output gradients rounded to bfloat16 beforehand
 * (the products round their operands as they pack them, and sum in the same order); only the
 * bias gradient, a plain sum, sees the unrounded dy. */
static float *rounded(const float *x, size_t n) {
    float *r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) r[i] = gemm_round_bf16(x[i]);
    return r;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* With AVX512_BF16 dot products (gemm_bf16_dot) or AMX tiles (gemm_bf16_amx) the sums run over k pairs, so bf16 mode matches
 * float32 on rounded tensors to float32 accuracy instead of bit for bit. */
static int close_or_same(int dot, const float *a, const float *b, size_t n) {
    if (!dot) return same(a, b, n);
    double worst = 0.0, big = 1.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e;
        if (fabs(b[i]) > big) big = fabs(b[i]);
    }
    return worst <= 2e-5 * big;
}

TEST(layers_bf16_products_round_operands) {
    if (!gemm_bf16_dot_hw()) printf("    (no AVX512_BF16 on this CPU: the dot-product kernels are not exercised)\n");
    if (!gemm_bf16_amx_hw()) printf("    (no AMX on this CPU: the tile kernels are not exercised)\n");
    for (int kern = 3; kern >= 0; kern--) { /* AMX tiles, AVX512_BF16 dot products, AVX-512 float32, portable */
        if ((kern == 3 && !gemm_bf16_amx_hw()) || (kern == 2 && !gemm_bf16_dot_hw())) continue;
        int avx = kern > 0, dot = kern >= 2; /* dot: sums over k pairs */
        an_cpu_avx512_override(avx ? -1 : 0);
        gemm_bf16_dot_override(kern == 2);
        gemm_bf16_amx_override(kern == 3);
        for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i += 2) {
            const ConvCase *cc = &conv_cases[i];
            ConvShape s = {cc->n, cc->c, cc->h, cc->w, cc->out_c, cc->k, cc->stride, cc->pad, cc->groups, 0, 0, i % 4 == 0};
            conv_shape_init(&s);
            size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.out_c * (s.c / s.groups) * s.k * s.k;
            size_t ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
            float *x = frand(nx, 11 + i, -1, 1), *w = frand(nw, 12 + i, -1, 1), *b = frand(s.out_c, 13 + i, -1, 1);
            float *dy = frand(ny, 14 + i, -1, 1), *xr = rounded(x, nx), *wr = rounded(w, nw), *dyr = rounded(dy, ny);
            float *y[2], *dx[2], *dw[2], *db[2];
            for (int m = 0; m < 2; m++) { /* m 0: bf16 mode on the raw tensors; 1: float32 on rounded ones */
                y[m] = fnan(ny), dx[m] = fnan(nx), dw[m] = fnan(nw), db[m] = fnan(s.out_c);
                gemm_set_bf16(m == 0);
                CHECK(conv_forward(&s, m ? xr : x, m ? wr : w, b, y[m]) == 0, "forward");
                CHECK(conv_backward(&s, m ? xr : x, m ? wr : w, m ? dyr : dy, dx[m], dw[m], db[m]) == 0, "backward");
            }
            gemm_set_bf16(0);
            CHECK(close_or_same(dot, y[0], y[1], ny) && close_or_same(dot, dx[0], dx[1], nx) &&
                  close_or_same(dot, dw[0], dw[1], nw),
                  "conv case %zu avx512=%d dot=%d: bf16 mode differs from float32 on rounded tensors", i, avx, dot);
            float *y32 = fnan(ny);
            conv_forward(&s, x, w, b, y32);
            CHECK(!same(y[0], y32, ny), "conv case %zu: bf16 output equals the float32 one", i);
            free(x), free(w), free(b), free(dy), free(xr), free(wr), free(dyr), free(y32);
            for (int m = 0; m < 2; m++) free(y[m]), free(dx[m]), free(dw[m]), free(db[m]);
        }
        static const int lin[][3] = {{2, 37, 19}, {40, 70, 33}}; /* batch 2: the dot-product path */
        for (int c = 0; c < 2; c++) {
            int n = lin[c][0], in = lin[c][1], out = lin[c][2];
            float *x = frand((size_t)n * in, 21 + c, -1, 1), *w = frand((size_t)out * in, 22 + c, -1, 1);
            float *b = frand(out, 23 + c, -1, 1), *dy = frand((size_t)n * out, 24 + c, -1, 1);
            float *xr = rounded(x, (size_t)n * in), *wr = rounded(w, (size_t)out * in), *dyr = rounded(dy, (size_t)n * out);
            float *y[2], *dx[2], *dw[2], *db[2];
            for (int m = 0; m < 2; m++) {
                y[m] = fnan((size_t)n * out), dx[m] = fnan((size_t)n * in), dw[m] = fnan((size_t)out * in), db[m] = fnan(out);
                gemm_set_bf16(m == 0);
                linear_forward(n, in, out, m ? xr : x, m ? wr : w, b, y[m]);
                linear_backward(n, in, out, m ? xr : x, m ? wr : w, m ? dyr : dy, dx[m], dw[m], db[m]);
            }
            gemm_set_bf16(0);
            CHECK(close_or_same(dot, y[0], y[1], (size_t)n * out) && close_or_same(dot, dx[0], dx[1], (size_t)n * in) &&
                  close_or_same(dot, dw[0], dw[1], (size_t)out * in),
                  "linear n=%d avx512=%d dot=%d: bf16 mode differs from float32 on rounded tensors", n, avx, dot);
            free(x), free(w), free(b), free(dy), free(xr), free(wr), free(dyr);
            for (int m = 0; m < 2; m++) free(y[m]), free(dx[m]), free(dw[m]), free(db[m]);
        }
    }
    an_cpu_avx512_override(-1);
    gemm_bf16_dot_override(-1);
    gemm_bf16_amx_override(-1);
}

/* A 3x3 kernel of ones with bias 0 on a 3x3 input of ones, pad 1: the output counts the in-range taps. */
TEST(layers_conv_hand_computed) {
    ConvShape s = {1, 1, 3, 3, 1, 3, 1, 1, 1, 0, 0, 0};
    conv_shape_init(&s);
    float x[9], w[9], b[1] = {0.5f}, y[9];
    for (int i = 0; i < 9; i++) x[i] = w[i] = 1.0f;
    CHECK(conv_forward(&s, x, w, b, y) == 0, "forward failed");
    static const float want[9] = {4.5f, 6.5f, 4.5f, 6.5f, 9.5f, 6.5f, 4.5f, 6.5f, 4.5f};
    for (int i = 0; i < 9; i++) CHECK(y[i] == want[i], "y[%d] = %g, want %g", i, y[i], want[i]);
}

/* The backward pass over many images: each chunk of the batch sums several images per product
 * (conv_backward's dw_images; 15x15 outputs: 3 images, so 4-image chunks split 3 + 1), checked
 * against float64 sums (1e-5 of the sum of |terms|), with groups and without. */
TEST(layers_conv_backward_batched_images) {
    static const ConvCase cases[] = {{64, 3, 15, 15, 4, 3, 1, 1, 1, 15, 15}, {38, 4, 15, 15, 6, 3, 1, 1, 2, 15, 15}};
    for (int ci = 0; ci < 2; ci++) {
        const ConvCase *cc = &cases[ci];
        ConvShape s = {cc->n, cc->c, cc->h, cc->w, cc->out_c, cc->k, cc->stride, cc->pad, cc->groups, 0, 0, 0};
        conv_shape_init(&s);
        int cg = s.c / s.groups, og = s.out_c / s.groups, k = s.k;
        size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.out_c * cg * k * k;
        size_t ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
        float *x = frand(nx, 41 + ci, -1, 1), *w = frand(nw, 43 + ci, -1, 1), *dy = frand(ny, 45 + ci, -1, 1);
        float *dx = fnan(nx), *dw = fnan(nw), *db = fnan(s.out_c);
        CHECK(conv_backward(&s, x, w, dy, dx, dw, db) == 0, "backward failed: %s", an_last_error());
        double *wdx = dalloc(nx), *bdx = dalloc(nx), *wdw = dalloc(nw), *bdw = dalloc(nw);
        double *wdb = dalloc(s.out_c), *bdb = dalloc(s.out_c);
        for (int n = 0; n < s.n; n++)
            for (int o = 0; o < s.out_c; o++)
                for (int oy = 0; oy < s.out_h; oy++)
                    for (int ox = 0; ox < s.out_w; ox++) {
                        double g = dy[(((size_t)n * s.out_c + o) * s.out_h + oy) * s.out_w + ox];
                        wdb[o] += g, bdb[o] += fabs(g);
                        for (int c = 0; c < cg; c++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy - s.pad + ky, ix = ox - s.pad + kx;
                                    if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                                    size_t xi = (((size_t)n * s.c + o / og * cg + c) * s.h + iy) * s.w + ix;
                                    size_t wi = (((size_t)o * cg + c) * k + ky) * k + kx;
                                    wdw[wi] += g * x[xi], bdw[wi] += fabs(g * x[xi]);
                                    wdx[xi] += g * w[wi], bdx[xi] += fabs(g * w[wi]);
                                }
                    }
        check_bound(ci ? "batched backward, groups 2: dx" : "batched backward: dx", dx, wdx, bdx, nx, FWD_RTOL);
        check_bound(ci ? "batched backward, groups 2: dw" : "batched backward: dw", dw, wdw, bdw, nw, FWD_RTOL);
        check_bound(ci ? "batched backward, groups 2: db" : "batched backward: db", db, wdb, bdb, s.out_c, FWD_RTOL);
        free(x), free(w), free(dy), free(dx), free(dw), free(db);
        free(wdx), free(bdx), free(wdw), free(bdw), free(wdb), free(bdb);
    }
}

/* the same gradients whatever the thread count; the second shape sums several images per product */
static void conv_threads_case(ConvShape s) {
    int saved = omp_get_max_threads();
    conv_shape_init(&s);
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.out_c * (s.c / s.groups) * s.k * s.k;
    size_t ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    float *x = frand(nx, 1, -1, 1), *w = frand(nw, 2, -1, 1), *b = frand(s.out_c, 3, -1, 1);
    float *dy = frand(ny, 4, -1, 1);
    float *y[3], *dx[3], *dw[3], *db[3];
    /* 1 thread against T = max(2, default), never a team smaller than an earlier one other than 1:
     * libgomp would end the surplus threads and LeakSanitizer would report gemm's thread-local buffers */
    int T = saved > 2 ? saved : 2, threads[3] = {T, 1, T};
    for (int t = 0; t < 3; t++) {
        y[t] = fnan(ny); dx[t] = fnan(nx); dw[t] = fnan(nw); db[t] = fnan(s.out_c);
        omp_set_num_threads(threads[t]);
        CHECK(conv_forward(&s, x, w, b, y[t]) == 0, "forward failed");
        CHECK(conv_backward(&s, x, w, dy, dx[t], dw[t], db[t]) == 0, "backward failed");
    }
    omp_set_num_threads(saved);
    for (int t = 1; t < 3; t++) {
        CHECK(memcmp(y[0], y[t], ny * 4) == 0, "forward: %d threads vs %d differ", threads[t], T);
        CHECK(memcmp(dx[0], dx[t], nx * 4) == 0, "dx: %d threads vs %d differ", threads[t], T);
        CHECK(memcmp(dw[0], dw[t], nw * 4) == 0, "dw: %d threads vs %d differ", threads[t], T);
        CHECK(memcmp(db[0], db[t], s.out_c * 4) == 0, "db: %d threads vs %d differ", threads[t], T);
    }
    for (int t = 0; t < 3; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
    free(x); free(w); free(b); free(dy);
}

TEST(layers_conv_deterministic_across_threads) {
    conv_threads_case((ConvShape){5, 4, 12, 12, 6, 5, 1, 2, 2, 0, 0, 0});
    conv_threads_case((ConvShape){40, 4, 8, 8, 6, 3, 1, 1, 2, 0, 0, 0});
}

/* ---------------------------------------------------------------- linear ---- */

typedef struct LinCtx { int n, in, out; double *x, *w, *b, *r, *y; } LinCtx;

static void ref_linear(int n, int in, int out, const double *x, const double *w, const double *b, double *y,
                       double *bound) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b[o], ab = fabs(b[o]);
            for (int k = 0; k < in; k++) {
                double t = x[(size_t)i * in + k] * w[(size_t)o * in + k];
                acc += t;
                ab += fabs(t);
            }
            y[(size_t)i * out + o] = acc;
            if (bound) bound[(size_t)i * out + o] = ab;
        }
}

static double linear_loss(void *p) {
    LinCtx *c = p;
    ref_linear(c->n, c->in, c->out, c->x, c->w, c->b, c->y, NULL);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

TEST(layers_linear_forward_backward) {
    /* n > 4 runs the product transposed, then y = its transpose + b: 16 x 16 blocks through
     * registers where the CPU has AVX-512 (37 x 70: 2 x 4 blocks and edges of 5 rows and 6 outputs;
     * 32 x 48: blocks only), else the plain loop */
    static const int cases[][3] = {{3, 37, 11}, {1, 1, 1}, {5, 300, 65}, {2, 1030, 3}, {3, 5, 1030}, {7, 64, 32},
                                   {37, 50, 70}, {32, 20, 48}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int n = cases[ci][0], in = cases[ci][1], out = cases[ci][2];
        char what[120], lab[160];
        snprintf(what, sizeof what, "linear n%d in%d out%d", n, in, out);
        size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
        float *x = frand(nx, 200 + ci, -1, 1), *w = frand(nw, 300 + ci, -0.5f, 0.5f);
        float *b = frand(out, 400 + ci, -0.5f, 0.5f), *r = frand(ny, 500 + ci, -1, 1);
        float *y = fnan(ny), *dx = fnan(nx), *dw = fnan(nw), *db = fnan(out);
        LinCtx ctx = {n, in, out, dup_d(x, nx), dup_d(w, nw), dup_d(b, out), dup_d(r, ny), dalloc(ny)};
        double *want = dalloc(ny), *bound = dalloc(ny);
        ref_linear(n, in, out, ctx.x, ctx.w, ctx.b, want, bound);
        linear_forward(n, in, out, x, w, b, y);
        snprintf(lab, sizeof lab, "%s forward", what);
        check_bound(lab, y, want, bound, ny, FWD_RTOL);
        linear_backward(n, in, out, x, w, r, dx, dw, db);
        snprintf(lab, sizeof lab, "%s dx", what);
        check_fd(lab, linear_loss, &ctx, ctx.x, nx, dx, FD_RTOL, 1e-2);
        snprintf(lab, sizeof lab, "%s dw", what);
        check_fd(lab, linear_loss, &ctx, ctx.w, nw, dw, FD_RTOL, 1e-2);
        snprintf(lab, sizeof lab, "%s db", what);
        check_fd(lab, linear_loss, &ctx, ctx.b, out, db, FD_RTOL, 1e-2);
        /* overwrite, not accumulate */
        float *dw2 = fnan(nw), *db2 = fnan(out), *dx2 = fnan(nx);
        linear_backward(n, in, out, x, w, r, dx2, dw2, db2);
        linear_backward(n, in, out, x, w, r, dx2, dw2, db2);
        CHECK(memcmp(dw, dw2, nw * 4) == 0 && memcmp(db, db2, out * 4) == 0 && memcmp(dx, dx2, nx * 4) == 0,
              "%s: a second backward call changed the gradients", what);
        free(x); free(w); free(b); free(r); free(y); free(dx); free(dw); free(db); free(dw2); free(db2);
        free(dx2); free(ctx.x); free(ctx.w); free(ctx.b); free(ctx.r); free(ctx.y); free(want); free(bound);
    }
}

/* ---------------------------------------------------------------- activations ---- */

typedef struct ActCtx { long n; double *x, *r; int tanh; } ActCtx;

static double act_loss(void *p) {
    ActCtx *c = p;
    double s = 0.0;
    for (long i = 0; i < c->n; i++) s += (c->tanh ? tanh(c->x[i]) : fmax(c->x[i], 0.0)) * c->r[i];
    return s;
}

TEST(layers_relu_tanh) {
    static const long counts[] = {1, 17, 1001, 4096};
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        long n = counts[ci];
        float *x = frand(n, 600 + ci, -3, 3), *r = frand(n, 700 + ci, -1, 1);
        if (n == 1) x[0] = 0.75f; /* one value: make it positive so the check is not vacuous */
        for (long i = 0; i < n; i++) /* keep clear of the kink at 0 so finite differences are exact */
            if (fabsf(x[i]) < 0.01f) x[i] = x[i] < 0 ? -0.02f : 0.02f;
        float *y = fnan(n), *dx = fnan(n);
        double *want = dalloc(n);
        ActCtx ctx = {n, dup_d(x, n), dup_d(r, n), 0};
        char lab[80];

        relu_forward(n, x, y);
        int exact = 1;
        for (long i = 0; i < n; i++) exact &= y[i] == (x[i] > 0 ? x[i] : 0.0f);
        CHECK(exact, "relu forward n=%ld is not max(x, 0)", n);
        relu_backward(n, y, r, dx);
        snprintf(lab, sizeof lab, "relu n=%ld dx", n);
        check_fd(lab, act_loss, &ctx, ctx.x, n, dx, FD_RTOL, 1e-3);

        ctx.tanh = 1;
        tanh_forward(n, x, y);
        for (long i = 0; i < n; i++) want[i] = tanh((double)x[i]);
        snprintf(lab, sizeof lab, "tanh n=%ld forward", n);
        check_close(lab, y, want, n, FWD_RTOL, 1e-3);
        tanh_backward(n, y, r, dx);
        snprintf(lab, sizeof lab, "tanh n=%ld dx", n);
        check_fd(lab, act_loss, &ctx, ctx.x, n, dx, FD_RTOL, 1e-3);
        free(x); free(r); free(y); free(dx); free(want); free(ctx.x); free(ctx.r);
    }
    float x[4] = {-2.0f, -0.0f, 0.0f, 3.0f}, y[4], d[4] = {1, 1, 1, 1}, dx[4];
    relu_forward(4, x, y);
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 3.0f, "relu: %g %g %g %g", y[0], y[1], y[2], y[3]);
    relu_backward(4, y, d, dx);
    CHECK(dx[0] == 0 && dx[1] == 0 && dx[2] == 0 && dx[3] == 1.0f, "relu backward: %g %g %g %g", dx[0], dx[1],
          dx[2], dx[3]);
}

/* ---------------------------------------------------------------- LRN ---- */

typedef struct LrnCtx { int n, c, hw; LrnParams p; double *x, *r, *y, *scale; } LrnCtx;

/* scale = k + alpha/size * sum_{c' = c - size/2 .. c + size/2, inside c's group} x_c'^2, y = x scale^-beta
 * (groups: p.groups equal blocks of channels, 0 or 1 = one) */
static void ref_lrn(int n, int c, int hw, LrnParams p, const double *x, double *y, double *scale) {
    int half = p.size / 2, gc = p.groups > 1 ? c / p.groups : c;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int q = 0; q < hw; q++) {
                double s = 0.0;
                for (int j = ch - half; j <= ch + half; j++) {
                    int same_group = j >= 0 && j < c && j / gc == ch / gc;
                    double v = same_group ? x[((size_t)i * c + j) * hw + q] : 0.0;
                    s += v * v;
                }
                size_t at = ((size_t)i * c + ch) * hw + q;
                double base = (double)p.k + (double)p.alpha / p.size * s;
                if (scale) scale[at] = base;
                y[at] = x[at] * pow(base, -(double)p.beta);
            }
}

static double lrn_loss(void *pv) {
    LrnCtx *c = pv;
    ref_lrn(c->n, c->c, c->hw, c->p, c->x, c->y, NULL);
    return dot(c->y, c->r, (size_t)c->n * c->c * c->hw);
}

TEST(layers_lrn_forward_backward) {
    static const struct { int n, c, hw; LrnParams p; float xr; } cases[] = {
        {2, 3, 5, {5, 1e-4f, 0.75f, 2.0f, 0}, 1.0f},   /* paper parameters, fewer channels than size */
        {2, 12, 6, {5, 1e-4f, 0.75f, 2.0f, 0}, 1.0f},  /* paper parameters */
        {2, 3, 5, {5, 1.0f, 0.75f, 1.0f, 0}, 2.0f},    /* exaggerated: normalisation dominates */
        {2, 12, 6, {5, 1.0f, 0.75f, 1.0f, 0}, 2.0f},
        {3, 7, 9, {3, 2.0f, 0.5f, 1.0f, 0}, 1.5f},     /* another window size and exponent */
        {1, 4, 1, {5, 1.0f, 0.75f, 2.0f, 0}, 3.0f},    /* one pixel; x large so every window saturates */
        {2, 12, 6, {5, 1.0f, 0.75f, 1.0f, 2}, 2.0f},   /* two towers: windows stop at channel 6 */
        {2, 12, 5, {5, 1.0f, 0.75f, 1.0f, 3}, 2.0f},   /* three groups of 4 */
        {2, 8, 300, {5, 1e-4f, 0.75f, 2.0f, 0}, 1.0f}, /* planes of whole vectors and streamed lines */
        {2, 12, 70, {5, 1.0f, 0.75f, 1.0f, 2}, 2.0f},  /* the same with two towers, exaggerated */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int n = cases[ci].n, c = cases[ci].c, hw = cases[ci].hw;
        LrnParams p = cases[ci].p;
        size_t cnt = (size_t)n * c * hw;
        char what[120], lab[160];
        snprintf(what, sizeof what, "lrn n%d c%d hw%d size%d alpha%g beta%g k%g groups%d", n, c, hw, p.size, p.alpha,
                 p.beta, p.k, p.groups);
        float *x = frand(cnt, 800 + ci, -cases[ci].xr, cases[ci].xr), *r = frand(cnt, 900 + ci, -1, 1);
        float *y = fnan(cnt), *scale = fnan(cnt), *dx = fnan(cnt);
        LrnCtx ctx = {n, c, hw, p, dup_d(x, cnt), dup_d(r, cnt), dalloc(cnt), NULL};
        double *want = dalloc(cnt), *wscale = dalloc(cnt);
        ref_lrn(n, c, hw, p, ctx.x, want, wscale);
        lrn_forward(n, c, hw, p, x, y, scale);
        snprintf(lab, sizeof lab, "%s forward", what);
        check_close(lab, y, want, cnt, FWD_RTOL, 1e-3);
        snprintf(lab, sizeof lab, "%s scale", what);
        check_close(lab, scale, wscale, cnt, FWD_RTOL, 0.0);
        { /* y and scale on 64-byte lines (as the network's buffers are: written by streamed stores
           * where the CPU has AVX-512) give the same bits */
            size_t bytes = (cnt * sizeof(float) + 63) / 64 * 64;
            float *ya = aligned_alloc(64, bytes), *sa = aligned_alloc(64, bytes);
            lrn_forward(n, c, hw, p, x, ya, sa);
            CHECK(memcmp(ya, y, cnt * sizeof(float)) == 0 && memcmp(sa, scale, cnt * sizeof(float)) == 0,
                  "%s: aligned buffers differ", what);
            free(ya); free(sa);
        }
        lrn_backward(n, c, hw, p, x, y, scale, r, dx, 0);
        snprintf(lab, sizeof lab, "%s dx", what);
        check_fd(lab, lrn_loss, &ctx, ctx.x, cnt, dx, FD_RTOL, 1e-2);
        if (n >= omp_get_max_threads() && omp_get_max_threads() > 1) {
            /* images in parallel (one pass per channel where the CPU has AVX-512) against one image
             * with its channels in parallel (the plane passes): the same bits, with and without the
             * ReLU before it fused in */
            size_t img = (size_t)c * hw;
            float *one = fnan(img), *dxr = fnan(cnt), *oner = fnan(img);
            lrn_backward(1, c, hw, p, x + img, y + img, scale + img, r + img, one, 0);
            CHECK(memcmp(one, dx + img, img * sizeof(float)) == 0, "%s: image 1 alone differs", what);
            lrn_backward(n, c, hw, p, x, y, scale, r, dxr, 1);
            lrn_backward(1, c, hw, p, x + img, y + img, scale + img, r + img, oner, 1);
            CHECK(memcmp(oner, dxr + img, img * sizeof(float)) == 0, "%s: relu_input, image 1 alone differs", what);
            int zeroed = 1;
            for (size_t i = 0; i < cnt; i++) zeroed &= x[i] > 0.0f ? dxr[i] == dx[i] : dxr[i] == 0.0f;
            CHECK(zeroed, "%s: relu_input is not dx where x > 0 and 0 elsewhere", what);
            free(one); free(dxr); free(oner);
        }
        if (p.alpha >= 1.0f) { /* the normalisation must visibly change the gradient, or the check is weak */
            double diff = 0.0, mx = 0.0;
            for (size_t i = 0; i < cnt; i++) {
                diff = fmax(diff, fabs(dx[i] - r[i] * pow(wscale[i], -(double)p.beta)));
                mx = fmax(mx, fabs(dx[i]));
            }
            CHECK(diff > 0.05 * mx, "%s: the cross-channel term is negligible (%g vs %g)", what, diff, mx);
        }
        free(x); free(r); free(y); free(scale); free(dx); free(ctx.x); free(ctx.r); free(ctx.y); free(want);
        free(wscale);
    }
}

/* ---------------------------------------------------------------- pooling ---- */

typedef struct PoolCtx { int n, c, h, w, k, s, oh, ow; double *x, *r, *y; } PoolCtx;

static void ref_maxpool(const PoolCtx *p, const double *x, double *y, int32_t *arg) {
    for (int pl = 0; pl < p->n * p->c; pl++)
        for (int oy = 0; oy < p->oh; oy++)
            for (int ox = 0; ox < p->ow; ox++) {
                double m = -INFINITY;
                int best = -1;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int idx = (oy * p->s + ky) * p->w + ox * p->s + kx;
                        double v = x[(size_t)pl * p->h * p->w + idx];
                        if (v > m) { m = v; best = idx; }
                    }
                y[((size_t)pl * p->oh + oy) * p->ow + ox] = m;
                if (arg) arg[((size_t)pl * p->oh + oy) * p->ow + ox] = best;
            }
}

static double maxpool_loss(void *pv) {
    PoolCtx *p = pv;
    ref_maxpool(p, p->x, p->y, NULL);
    return dot(p->y, p->r, (size_t)p->n * p->c * p->oh * p->ow);
}

TEST(layers_maxpool_forward_backward) {
    static const int cases[][8] = {/* n c h w k s oh ow */
                                   {3, 2, 13, 13, 3, 2, 6, 6}, {2, 3, 7, 9, 3, 2, 3, 4}, {1, 2, 8, 8, 2, 2, 4, 4},
                                   {2, 2, 10, 10, 3, 2, 4, 4}, {1, 3, 5, 5, 5, 1, 1, 1}, {2, 2, 6, 7, 3, 3, 2, 2},
                                   {3, 1, 27, 27, 3, 2, 13, 13}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *cs = cases[ci];
        PoolCtx p = {cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[6], cs[7], NULL, NULL, NULL};
        size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * p.oh * p.ow;
        char what[120], lab[160];
        snprintf(what, sizeof what, "maxpool n%d c%d %dx%d k%d s%d", p.n, p.c, p.h, p.w, p.k, p.s);
        float *x = distinct(nx, 1000 + ci), *r = frand(ny, 1100 + ci, -1, 1), *y = fnan(ny), *dx = fnan(nx);
        int32_t *arg = malloc(ny * 4), *warg = malloc(ny * 4);
        for (size_t i = 0; i < ny; i++) arg[i] = -7;
        p.x = dup_d(x, nx);
        p.r = dup_d(r, ny);
        p.y = dalloc(ny);
        double *want = dalloc(ny);
        ref_maxpool(&p, p.x, want, warg);
        maxpool_forward(p.n, p.c, p.h, p.w, p.k, p.s, x, y, arg);
        int bad_y = 0, bad_arg = 0;
        for (size_t i = 0; i < ny; i++) {
            bad_y += y[i] != (float)want[i];
            bad_arg += arg[i] != warg[i];
        }
        CHECK(bad_y == 0, "%s: %d outputs differ from the maximum", what, bad_y);
        CHECK(bad_arg == 0, "%s: %d argmax entries differ (first: got %d want %d)", what, bad_arg, arg[0], warg[0]);
        maxpool_backward(p.n, p.c, p.h, p.w, p.k, p.s, arg, r, dx, NULL);
        snprintf(lab, sizeof lab, "%s dx", what);
        check_fd(lab, maxpool_loss, &p, p.x, nx, dx, 1e-6, 1e-3);
        /* every dx entry is exactly the sum of r over the windows it wins */
        double *wdx = dalloc(nx);
        for (size_t i = 0; i < ny; i++) wdx[(i / ((size_t)p.oh * p.ow)) * p.h * p.w + warg[i]] += r[i];
        snprintf(lab, sizeof lab, "%s dx (direct)", what);
        check_close(lab, dx, wdx, nx, 1e-6, 1e-3);
        free(x); free(r); free(y); free(dx); free(arg); free(warg); free(p.x); free(p.r); free(p.y); free(want);
        free(wdx);
    }
}

/* Ties (after ReLU most windows hold several equal values): the argmax is the first maximum in
 * row-major order, as the reference's plain scan finds it, for the paper's 3/2 pooling and others. */
TEST(layers_maxpool_ties) {
    static const int cases[][6] = {{2, 3, 27, 27, 3, 2}, {1, 2, 13, 13, 3, 2}, {2, 2, 9, 11, 2, 1}, {1, 2, 10, 10, 3, 3},
                                   {1, 2, 55, 55, 3, 2}, {2, 1, 32, 31, 3, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *cs = cases[ci];
        PoolCtx p = {cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], (cs[2] - cs[4]) / cs[5] + 1, (cs[3] - cs[4]) / cs[5] + 1,
                     NULL, NULL, NULL};
        size_t nx = (size_t)p.n * p.c * p.h * p.w, ny = (size_t)p.n * p.c * p.oh * p.ow;
        float *x = frand(nx, 1400 + ci, -1, 1), *y = fnan(ny);
        for (size_t i = 0; i < nx; i++) x[i] = x[i] < 0.0f ? 0.0f : (x[i] < 0.5f ? 0.5f : 1.0f); /* 3 levels */
        int32_t *arg = malloc(ny * 4), *warg = malloc(ny * 4);
        double *xd = dup_d(x, nx), *want = dalloc(ny);
        ref_maxpool(&p, xd, want, warg);
        maxpool_forward(p.n, p.c, p.h, p.w, p.k, p.s, x, y, arg);
        int bad_y = 0, bad_arg = 0, ties = 0;
        for (size_t i = 0; i < ny; i++) {
            bad_y += y[i] != (float)want[i];
            bad_arg += arg[i] != warg[i];
            ties += warg[i] != (int32_t)((i % ((size_t)p.oh * p.ow)) / p.ow * p.s * p.w + (i % p.ow) * p.s);
        }
        CHECK(bad_y == 0 && bad_arg == 0, "maxpool ties %dx%d k%d s%d: %d values and %d argmax differ", p.h, p.w,
              p.k, p.s, bad_y, bad_arg);
        CHECK(ties > 0, "maxpool ties case %zu has no window whose maximum is off its first element", ci);
        free(x); free(y); free(arg); free(warg); free(xd); free(want);
    }
}

/* The ReLU's backward fused into the max pooling's (relu_y): the same bits as the ReLU's backward
 * pass applied to the pooling's, on a ReLU's outputs (windows of zeros, overlapping windows that
 * share a winner), paper's 3/2 and others, wide and narrow planes. */
TEST(layers_maxpool_backward_fuses_relu) {
    static const int cases[][6] = {{2, 3, 27, 27, 3, 2}, {1, 2, 13, 13, 3, 2}, {2, 2, 9, 11, 2, 1}, {1, 3, 8, 8, 3, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *cs = cases[ci];
        int n = cs[0], c = cs[1], h = cs[2], w = cs[3], k = cs[4], s = cs[5], oh = (h - k) / s + 1, ow = (w - k) / s + 1;
        size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
        float *pre = frand(nx, 1600 + ci, -1, 0.6f), *x = fnan(nx), *y = fnan(ny), *dy = frand(ny, 1700 + ci, -1, 1);
        float *dpool = fnan(nx), *want = fnan(nx), *got = fnan(nx);
        int32_t *arg = malloc(ny * 4);
        relu_forward((long)nx, pre, x);
        maxpool_forward(n, c, h, w, k, s, x, y, arg);
        maxpool_backward(n, c, h, w, k, s, arg, dy, dpool, NULL);
        relu_backward((long)nx, x, dpool, want);
        maxpool_backward(n, c, h, w, k, s, arg, dy, got, y);
        int zero_windows = 0, passed = 0;
        for (size_t i = 0; i < ny; i++) zero_windows += y[i] == 0.0f;
        for (size_t i = 0; i < nx; i++) passed += want[i] != 0.0f;
        CHECK(memcmp(got, want, nx * sizeof(float)) == 0, "maxpool %dx%d k%d s%d with the ReLU fused: differs from "
              "the ReLU's backward after the pooling's", h, w, k, s);
        CHECK(zero_windows > 0 && passed > 0, "case %zu: %d all-zero windows, %d gradients passed (both must occur)",
              ci, zero_windows, passed);
        free(pre); free(x); free(y); free(dy); free(dpool); free(want); free(got); free(arg);
    }
}

/* NaN propagates as in PyTorch: every window that holds a NaN outputs NaN and sends its gradient
 * to the first NaN in row-major order; the other windows are untouched. Wide planes (the
 * vectorised row pass) and narrow ones (the plain scan), the paper's 3/2 and other windows. */
TEST(layers_maxpool_propagates_nan) {
    static const int cases[][6] = {{2, 3, 27, 27, 3, 2}, {1, 2, 13, 13, 3, 2}, {2, 2, 9, 11, 2, 1}, {1, 2, 10, 10, 3, 3},
                                   {1, 1, 33, 40, 3, 2}, {1, 2, 55, 55, 3, 2}, {2, 1, 6, 6, 3, 2}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *cs = cases[ci];
        int n = cs[0], c = cs[1], h = cs[2], w = cs[3], k = cs[4], st = cs[5];
        int oh = (h - k) / st + 1, ow = (w - k) / st + 1;
        size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
        float *x = frand(nx, 1500 + ci, -1, 1), *y = fnan(ny);
        for (size_t i = 0; i < nx; i++)
            if (an_uniform(1600 + ci, i) < 0.04) x[i] = NAN; /* some windows get one NaN, some several */
        int32_t *arg = malloc(ny * 4);
        maxpool_forward(n, c, h, w, k, st, x, y, arg);
        int bad = 0, nan_windows = 0, multi = 0;
        for (int pl = 0; pl < n * c; pl++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    const float *xp = x + (size_t)pl * h * w;
                    int best = -1, first_nan = -1, nans = 0;
                    float m = -INFINITY;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int idx = (oy * st + ky) * w + ox * st + kx;
                            if (isnan(xp[idx])) { nans++; if (first_nan < 0) first_nan = idx; }
                            else if (best < 0 || xp[idx] > m) m = xp[idx], best = idx;
                        }
                    size_t q = ((size_t)pl * oh + oy) * ow + ox;
                    if (nans) {
                        nan_windows++, multi += nans > 1;
                        bad += !isnan(y[q]) || arg[q] != first_nan;
                    } else {
                        bad += y[q] != m || arg[q] != best;
                    }
                }
        CHECK(bad == 0 && nan_windows > 0, "maxpool with NaNs %dx%d k%d s%d: %d of %zu outputs wrong (%d windows with NaN)",
              h, w, k, st, bad, ny, nan_windows);
        if (ci == 0) CHECK(multi > 0, "no window with several NaNs");
        free(x), free(y), free(arg);
    }
}

/* The AVX2 3/2 pooling (8 outputs a vector, masked at the row's end) against the row pass and the
 * plain scan it replaces: the same values and argmax, bit for bit, on widths that end a row at
 * every lane (3..40), alexnet's 55 and 27, ties and NaNs. */
TEST(layers_maxpool_vector_matches_scan) {
    int shapes = 0;
    for (int w = 3; w <= 56; w++) {
        if (w > 40 && w != 55) continue;
        int h = 3 + (w * 7) % 11, n = 2, c = 3, oh = (h - 3) / 2 + 1, ow = (w - 3) / 2 + 1;
        size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * oh * ow;
        float *x = frand(nx, 1900 + w, -1, 1), *y = fnan(ny), *y2 = fnan(ny);
        for (size_t i = 0; i < nx; i++) {
            x[i] = x[i] < -0.2f ? 0.0f : (x[i] < 0.7f ? x[i] : 0.7f); /* ties at 0 and 0.7 */
            if (an_uniform(2000 + w, i) < 0.01) x[i] = NAN;
        }
        int32_t *arg = malloc(ny * 4), *arg2 = malloc(ny * 4);
        maxpool_forward(n, c, h, w, 3, 2, x, y, arg);
        maxpool_avx2_override(1);
        maxpool_forward(n, c, h, w, 3, 2, x, y2, arg2);
        maxpool_avx2_override(0);
        CHECK(memcmp(y, y2, ny * 4) == 0 && memcmp(arg, arg2, ny * 4) == 0,
              "maxpool 3/2 %dx%d: the vector path differs from the scan", h, w);
        shapes++;
        free(x), free(y), free(y2), free(arg), free(arg2);
    }
    CHECK(shapes == 39, "%d shapes", shapes);
}

typedef struct AvgCtx { int n, c, h, w, oh, ow; double *x, *r, *y; } AvgCtx;

/* PyTorch's adaptive bins: start = floor(i in / out), end = ceil((i + 1) in / out) */
static void ref_avgpool(const AvgCtx *a, const double *x, double *y) {
    for (int pl = 0; pl < a->n * a->c; pl++)
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox++) {
                int y0 = (int)floor((double)oy * a->h / a->oh), y1 = (int)ceil((double)(oy + 1) * a->h / a->oh);
                int x0 = (int)floor((double)ox * a->w / a->ow), x1 = (int)ceil((double)(ox + 1) * a->w / a->ow);
                double s = 0.0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) s += x[(size_t)pl * a->h * a->w + iy * a->w + ix];
                y[((size_t)pl * a->oh + oy) * a->ow + ox] = s / ((y1 - y0) * (x1 - x0));
            }
}

static double avgpool_loss(void *pv) {
    AvgCtx *a = pv;
    ref_avgpool(a, a->x, a->y);
    return dot(a->y, a->r, (size_t)a->n * a->c * a->oh * a->ow);
}

TEST(layers_avgpool_forward_backward) {
    static const int cases[][6] = {/* n c h w oh ow */
                                   {2, 3, 13, 13, 6, 6}, {2, 2, 6, 6, 6, 6},  {2, 2, 7, 7, 3, 3},
                                   {1, 2, 13, 7, 6, 3},  {1, 1, 5, 5, 1, 1},  {1, 2, 3, 3, 5, 5},
                                   {3, 4, 1, 1, 6, 6}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int *cs = cases[ci];
        AvgCtx a = {cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], NULL, NULL, NULL};
        size_t nx = (size_t)a.n * a.c * a.h * a.w, ny = (size_t)a.n * a.c * a.oh * a.ow;
        char what[120], lab[160];
        snprintf(what, sizeof what, "avgpool n%d c%d %dx%d -> %dx%d", a.n, a.c, a.h, a.w, a.oh, a.ow);
        float *x = frand(nx, 1200 + ci, -1, 1), *r = frand(ny, 1300 + ci, -1, 1), *y = fnan(ny), *dx = fnan(nx);
        a.x = dup_d(x, nx);
        a.r = dup_d(r, ny);
        a.y = dalloc(ny);
        double *want = dalloc(ny);
        ref_avgpool(&a, a.x, want);
        avgpool_forward(a.n, a.c, a.h, a.w, a.oh, a.ow, x, y);
        snprintf(lab, sizeof lab, "%s forward", what);
        check_close(lab, y, want, ny, FWD_RTOL, 1e-2);
        if (a.h == a.oh && a.w == a.ow)
            CHECK(memcmp(x, y, nx * 4) == 0, "%s: same-size pooling is not the identity", what);
        avgpool_backward(a.n, a.c, a.h, a.w, a.oh, a.ow, r, dx);
        snprintf(lab, sizeof lab, "%s dx", what);
        check_fd(lab, avgpool_loss, &a, a.x, nx, dx, FD_RTOL, 1e-2);
        free(x); free(r); free(y); free(dx); free(a.x); free(a.r); free(a.y); free(want);
    }
}

/* The bins by hand: a ramp x = column index, so each output is the mean index of its bin. */
TEST(layers_avgpool_bins_by_hand) {
    float x[13], y[6];
    for (int i = 0; i < 13; i++) x[i] = (float)i;
    avgpool_forward(1, 1, 1, 7, 1, 3, x, y); /* 7 -> 3: [0,3) [2,5) [4,7), overlapping */
    CHECK(y[0] == 1.0f && y[1] == 3.0f && y[2] == 5.0f, "7->3: %g %g %g, want 1 3 5", y[0], y[1], y[2]);
    avgpool_forward(1, 1, 1, 13, 1, 6, x, y); /* 13 -> 6: [0,3) [2,5) [4,7) [6,9) [8,11) [10,13) */
    for (int i = 0; i < 6; i++) CHECK(y[i] == 1.0f + 2.0f * i, "13->6: y[%d] = %g, want %g", i, y[i], 1.0f + 2.0f * i);
    avgpool_forward(1, 1, 1, 5, 1, 3, x, y); /* 5 -> 3: [0,2) [1,4) [3,5) */
    CHECK(y[0] == 0.5f && y[1] == 2.0f && y[2] == 3.5f, "5->3: %g %g %g, want 0.5 2 3.5", y[0], y[1], y[2]);
    float dy[3] = {3.0f, 6.0f, 9.0f}, dx[7];
    avgpool_backward(1, 1, 1, 7, 1, 3, dy, dx); /* overlaps at 2 and 4 receive two shares */
    static const float wdx[7] = {1, 1, 3, 2, 5, 3, 3};
    for (int i = 0; i < 7; i++) CHECK(dx[i] == wdx[i], "7->3 backward: dx[%d] = %g, want %g", i, dx[i], wdx[i]);
}

/* ---------------------------------------------------------------- dropout ---- */

TEST(layers_dropout) {
    enum { N = 10000 };
    float *x = frand(N, 1400, 0.5f, 1.5f), *y = fnan(N), *y2 = fnan(N), *dy = frand(N, 1401, -1, 1);
    float *dx = fnan(N);
    uint8_t *m = malloc(N), *m2 = malloc(N), *m3 = malloc(N);
    dropout_forward(N, 0.5f, 42, x, y, m);
    long kept = 0, bad_scale = 0, bad_mask = 0, bad_rule = 0;
    for (long i = 0; i < N; i++) {
        kept += m[i] == 1;
        bad_mask += m[i] > 1;
        bad_scale += m[i] ? y[i] != 2.0f * x[i] : y[i] != 0.0f;
        bad_rule += m[i] != (an_uniform(42, (uint64_t)i) >= 0.5f); /* dropped when an_uniform < p */
    }
    CHECK(kept >= 4500 && kept <= 5500, "p=0.5 kept %ld of %d", kept, N);
    CHECK(bad_mask == 0, "%ld mask values are not 0 or 1", bad_mask);
    CHECK(bad_scale == 0, "%ld outputs are not 2x (kept) or 0 (dropped)", bad_scale);
    CHECK(bad_rule == 0, "%ld mask entries disagree with an_uniform(seed, i) >= p", bad_rule);

    dropout_forward(N, 0.5f, 42, x, y2, m2);
    CHECK(memcmp(m, m2, N) == 0 && memcmp(y, y2, N * 4) == 0, "the same seed gave a different mask");
    dropout_forward(N, 0.5f, 43, x, y2, m3);
    long differ = 0;
    for (long i = 0; i < N; i++) differ += m[i] != m3[i];
    CHECK(differ > 4000 && differ < 6000, "seeds 42 and 43 masks differ in %ld of %d places", differ, N);

    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    dropout_forward(N, 0.5f, 42, x, y2, m2);
    omp_set_num_threads(saved);
    CHECK(memcmp(m, m2, N) == 0, "the mask depends on the thread count");

    dropout_backward(N, 0.5f, m, dy, dx);
    long bad_back = 0;
    for (long i = 0; i < N; i++) bad_back += dx[i] != (m[i] ? 2.0f * dy[i] : 0.0f);
    CHECK(bad_back == 0, "%ld backward values are not 2 dy (kept) or 0 (dropped)", bad_back);

    /* p = 0.2: keep about 80%, scaled by 1.25; p = 0: the identity */
    dropout_forward(N, 0.2f, 7, x, y, m);
    kept = 0;
    double worst = 0.0;
    for (long i = 0; i < N; i++) {
        kept += m[i];
        if (m[i]) worst = fmax(worst, fabs(y[i] - 1.25 * x[i]) / (1.25 * x[i]));
        else CHECK(y[i] == 0.0f, "p=0.2: dropped y[%ld] = %g", i, y[i]);
    }
    CHECK(kept >= 7700 && kept <= 8300, "p=0.2 kept %ld of %d", kept, N);
    CHECK(worst < 1e-6, "p=0.2: kept values scaled wrongly (rel err %g)", worst);
    dropout_backward(N, 0.2f, m, dy, dx);
    worst = 0.0;
    for (long i = 0; i < N; i++) worst = fmax(worst, fabs(dx[i] - (m[i] ? 1.25 * dy[i] : 0.0)));
    CHECK(worst < 1e-6, "p=0.2 backward: max error %g", worst);
    dropout_forward(N, 0.0f, 7, x, y, m);
    CHECK(memcmp(x, y, N * 4) == 0, "p=0 is not the identity");
    /* rows of a larger batch (data parallel, towers): value i draws counter first + (i / row_len)
     * row_stride + i % row_len; rows of 300 and of 4,500 (two pieces), a last row cut short */
    static const long shapes[][3] = {{5, 300, 1000}, {77, 4500, 9000}};
    for (int k = 0; k < 2; k++) {
        DropoutAt at = {(uint64_t)shapes[k][0], shapes[k][1], shapes[k][2]};
        dropout_forward_at(N, 0.5f, 11, at, x, y, m);
        long wrong = 0;
        for (long i = 0; i < N; i++) {
            uint64_t c = at.first + (uint64_t)(i / at.row_len) * (uint64_t)at.row_stride + (uint64_t)(i % at.row_len);
            int keep = an_uniform(11, c) >= 0.5f;
            wrong += m[i] != keep || y[i] != (keep ? 2.0f * x[i] : 0.0f);
        }
        CHECK(wrong == 0, "rows of %ld (stride %ld): %ld values differ from an_uniform's rule", at.row_len,
              at.row_stride, wrong);
    }
    free(x); free(y); free(y2); free(dy); free(dx); free(m); free(m2); free(m3);
}

/* ---------------------------------------------------------------- softmax cross-entropy ---- */

typedef struct XentCtx { int n, classes; double *z; const int *labels; } XentCtx;

static double ref_xent(int n, int classes, const double *z, const int *labels, double *probs) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const double *zi = z + (size_t)i * classes;
        double m = zi[0];
        for (int j = 1; j < classes; j++) m = fmax(m, zi[j]);
        double s = 0.0;
        for (int j = 0; j < classes; j++) s += exp(zi[j] - m);
        double lse = m + log(s);
        if (probs)
            for (int j = 0; j < classes; j++) probs[(size_t)i * classes + j] = exp(zi[j] - lse);
        total += lse - zi[labels[i]];
    }
    return total / n;
}

static double xent_loss(void *pv) {
    XentCtx *c = pv;
    return ref_xent(c->n, c->classes, c->z, c->labels, NULL);
}

TEST(layers_softmax_xent) {
    static const int cases[][2] = {{4, 10}, {3, 1000}, {1, 2}, {5, 7}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int n = cases[ci][0], classes = cases[ci][1];
        size_t cnt = (size_t)n * classes;
        char what[80], lab[120];
        snprintf(what, sizeof what, "softmax_xent n%d classes%d", n, classes);
        float *z = frand(cnt, 1500 + ci, -5, 5), *probs = fnan(cnt), *dz = fnan(cnt);
        int *labels = malloc(n * sizeof(int));
        for (int i = 0; i < n; i++) labels[i] = (int)(an_hash64(1600 + ci, i) % classes);
        XentCtx ctx = {n, classes, dup_d(z, cnt), labels};
        double *wprobs = dalloc(cnt);
        double want = ref_xent(n, classes, ctx.z, labels, wprobs);
        float loss = softmax_xent(n, classes, z, labels, probs, dz);
        CHECK(fabs(loss - want) <= 1e-5 * fabs(want), "%s: loss %.9g, want %.9g", what, loss, want);
        snprintf(lab, sizeof lab, "%s probs", what);
        check_close(lab, probs, wprobs, cnt, FWD_RTOL, 1e-3);
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int j = 0; j < classes; j++) s += probs[(size_t)i * classes + j];
            CHECK(fabs(s - 1.0) < 1e-5, "%s: probs of row %d sum to %.9g", what, i, s);
        }
        snprintf(lab, sizeof lab, "%s dlogits", what);
        check_fd(lab, xent_loss, &ctx, ctx.z, cnt, dz, FD_RTOL, 1e-2);
        float *probs2 = fnan(cnt); /* dlogits may be NULL: same loss and probs */
        float loss2 = softmax_xent(n, classes, z, labels, probs2, NULL);
        CHECK(loss2 == loss && memcmp(probs, probs2, cnt * 4) == 0, "%s: dlogits NULL changes the result", what);
        free(z); free(probs); free(probs2); free(dz); free(labels); free(ctx.z); free(wprobs);
    }
}

TEST(layers_softmax_xent_large_logits) {
    /* row 0: huge spread, the label on the smallest logit; row 1: all equal and huge */
    float z[8] = {1e4f, -1e4f, 0.0f, 1e4f - 2.0f, 1e4f, 1e4f, 1e4f, 1e4f}, probs[8], dz[8];
    int labels[2] = {1, 2};
    double zd[8];
    for (int i = 0; i < 8; i++) zd[i] = z[i];
    double wprobs[8];
    double want = ref_xent(2, 4, zd, labels, wprobs);
    float loss = softmax_xent(2, 4, z, labels, probs, dz);
    CHECK(isfinite(loss), "loss is %g", loss);
    CHECK(fabs(loss - want) <= 1e-5 * want, "loss %.9g, want %.9g", loss, want);
    CHECK(fabs(want - (20000.0 + log1p(exp(-2.0)) + log(4.0)) / 2) < 1e-9, "reference loss %.12g", want);
    for (int i = 0; i < 8; i++) {
        CHECK(isfinite(probs[i]) && isfinite(dz[i]), "probs[%d] = %g, dlogits[%d] = %g", i, probs[i], i, dz[i]);
        CHECK(fabs(probs[i] - wprobs[i]) < 1e-6, "probs[%d] = %.9g, want %.9g", i, probs[i], wprobs[i]);
    }
    CHECK(probs[1] == 0.0f && probs[2] == 0.0f, "tiny probabilities: %g %g", probs[1], probs[2]);
    CHECK(fabs(dz[1] - (-0.5)) < 1e-7, "dlogits of the label far below the max: %g, want -0.5", dz[1]);
    CHECK(fabs(dz[6] - (0.25 - 1.0) / 2) < 1e-7 && fabs(dz[4] - 0.125) < 1e-7, "equal logits: dlogits %g %g",
          dz[6], dz[4]);
}

/* The fusions the net uses: conv with .relu = 1 gives relu(conv) exactly; lrn_backward with
 * relu_input = 1 gives the LRN's dx times (x > 0), i.e. the ReLU below it folded in. */
TEST(layers_fused_relu) {
    ConvShape s = {3, 4, 9, 9, 6, 3, 2, 1, 2, 0, 0, 0};
    conv_shape_init(&s);
    size_t xn = (size_t)s.n * s.c * s.h * s.w, yn = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    float *x = frand(xn, 41, -1, 1), *w = frand((size_t)s.out_c * (s.c / s.groups) * 9, 42, -1, 1);
    float *b = frand((size_t)s.out_c, 43, -0.5f, 0.5f), *y0 = fnan(yn), *y1 = fnan(yn);
    CHECK(conv_forward(&s, x, w, b, y0) == 0, "conv");
    s.relu = 1;
    CHECK(conv_forward(&s, x, w, b, y1) == 0, "conv + relu");
    int ok = 1, neg = 0;
    for (size_t i = 0; i < yn; i++) {
        ok &= y1[i] == (y0[i] > 0.0f ? y0[i] : 0.0f);
        neg += y0[i] < 0.0f;
    }
    CHECK(ok && neg > 0, "fused conv + relu differs from relu(conv) (%d negatives)", neg);
    LrnParams p = {5, 1.0f, 0.75f, 1.0f, 0};
    int n = 2, c = 7, hw = 5;
    size_t cnt = (size_t)n * c * hw;
    float *lx = frand(cnt, 44, -2, 2), *dy = frand(cnt, 45, -1, 1), *ly = fnan(cnt), *sc = fnan(cnt);
    float *d0 = fnan(cnt), *d1 = fnan(cnt);
    lrn_forward(n, c, hw, p, lx, ly, sc);
    lrn_backward(n, c, hw, p, lx, ly, sc, dy, d0, 0);
    lrn_backward(n, c, hw, p, lx, ly, sc, dy, d1, 1);
    ok = 1;
    for (size_t i = 0; i < cnt; i++) ok &= d1[i] == (lx[i] > 0.0f ? d0[i] : 0.0f);
    CHECK(ok, "lrn backward with the relu mask differs from mask * lrn backward");
    free(x), free(w), free(b), free(y0), free(y1), free(lx), free(dy), free(ly), free(sc), free(d0), free(d1);
}

/* Small batches from bfloat16 weights (net_freeze_bf16's path): the products bf16 mode computes,
 * to float32 accuracy (1e-5 of sum |w x|), plus the bias; and the weights converted exactly. */
TEST(layers_linear_bf16_weights) {
    static const int shapes[][2] = {{37, 19}, {1030, 33}};
    for (int s = 0; s < 2; s++)
        for (int n = 1; n <= LINEAR_BF16W_MAX_N; n++) {
            int in = shapes[s][0], out = shapes[s][1];
            float *x = frand((size_t)n * in, 31 + s, -1, 1), *w = frand((size_t)out * in, 32 + s, -1, 1);
            float *b = frand(out, 33 + s, -1, 1), *y = fnan((size_t)n * out);
            uint16_t *w16 = malloc((size_t)out * in * sizeof *w16);
            linear_weights_to_bf16((size_t)out * in, w, w16);
            for (size_t j = 0; j < (size_t)out * in; j++) {
                float r = gemm_round_bf16(w[j]);
                uint32_t bits;
                memcpy(&bits, &r, 4);
                CHECK(w16[j] == bits >> 16 && (bits & 0xFFFFu) == 0, "w16[%zu] = %04x, want %08x", j, w16[j], bits);
                if (w16[j] != bits >> 16) break;
            }
            CHECK(linear_forward_bf16w(n, in, out, x, w16, b, y) == 0, "linear_forward_bf16w failed");
            double worst = 0.0;
            for (int i = 0; i < n; i++)
                for (int o = 0; o < out; o++) {
                    double sr = 0.0, sa = 0.0;
                    for (int k = 0; k < in; k++) {
                        double p = (double)gemm_round_bf16(w[(size_t)o * in + k]) * gemm_round_bf16(x[(size_t)i * in + k]);
                        sr += p, sa += fabs(p);
                    }
                    double e = fabs(y[(size_t)i * out + o] - (sr + b[o])) / (sa + fabs(b[o]));
                    if (!(e <= worst)) worst = e;
                }
            CHECK(worst <= 1e-5, "in=%d out=%d n=%d: %.3g of sum |w x| from the rounded operands' product", in, out, n,
                  worst);
            free(x), free(w), free(b), free(y), free(w16);
        }
}

/* The LRN's s^-0.75 without square roots or divisions (lrn.c, AVX-512) against pow in double:
 * within 3 ulps (relative 3 * 2^-24 ~ 1.8e-7, and the plain float form's own error is about 1
 * ulp) from 1e-30 to FLT_MAX; infinity gives a tiny positive value, NaN stays NaN; a plane of 37
 * values (two full vectors and a masked tail) leaves what follows it alone. */
TEST(layers_lrn_pow_fast) {
    if (!lrn_pow_fast_ok(0.75f, 2.0f)) SKIP("no AVX-512 here: the LRN uses the plain square roots");
    CHECK(!lrn_pow_fast_ok(0.75f, 0.0f) && !lrn_pow_fast_ok(0.5f, 2.0f), "used where s may be 0, or another exponent");
    enum { N = 4096 };
    static float in[N + 8], out[N + 8];
    for (int i = 0; i < N; i++) in[i] = (float)pow(10.0, -30.0 + 68.5 * i / (N - 1)); /* 1e-30 .. 3e38 */
    in[N - 1] = FLT_MAX;
    in[0] = 2.0f, in[1] = 2.0f + 1e-4f, in[2] = 1.0f, in[3] = 3.999f; /* the paper's k = 2 and just above */
    for (int i = 0; i < N + 8; i++) out[i] = -1.0f;
    lrn_pow_neg075_fast(N, in, out);
    double worst = 0.0;
    int at = 0;
    for (int i = 0; i < N; i++) {
        double want = pow((double)in[i], -0.75), e = fabs(out[i] - want) / want;
        if (!(e <= worst)) worst = e, at = i;
    }
    CHECK(worst <= 3.0 * pow(2.0, -24), "relative error %g at s = %g (%g, want %g)", worst, in[at], out[at],
          pow((double)in[at], -0.75));
    CHECK(out[N] == -1.0f, "wrote past the plane");
    float odd[37], res[40];
    for (int i = 0; i < 37; i++) odd[i] = 2.0f + (float)i;
    odd[5] = INFINITY, odd[6] = NAN;
    for (int i = 0; i < 40; i++) res[i] = -1.0f;
    lrn_pow_neg075_fast(37, odd, res);
    CHECK(res[5] >= 0.0f && res[5] < 1e-28f, "infinity: %g", res[5]);
    CHECK(isnan(res[6]), "NaN: %g", res[6]);
    CHECK(fabsf(res[36] - powf(38.0f, -0.75f)) < 1e-6f * powf(38.0f, -0.75f), "the tail: %g", res[36]);
    CHECK(res[37] == -1.0f && res[38] == -1.0f && res[39] == -1.0f, "wrote past 37 values");
}
