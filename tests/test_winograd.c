/* test_winograd.c: the Winograd convolution (src/layers/winograd.c) against float64 sums: forward,
 * input gradient and weight gradient of stride-1 3x3 and 5x5 layers (padding, groups, odd sizes,
 * edge tiles, batches across the product sets and gradient chunks), at AlexNet's own layer shapes,
 * the same bits for any thread count, and the automatic choice; strided layers run as stride-1 layers
 * on their input's phases (conv_phase.c: conv1's 11x11 stride 4) the same way. Errors are measured against the
 * sum of the terms' magnitudes (the scale of float32 rounding), bounded by WINO_RTOL: the transforms
 * multiply float32 rounding by their entries (up to 8 in A^T, 5 in B^T); measured 2e-7 to 5e-6 on
 * these cases (WINO_VERBOSE=1 prints them), where direct sums stay under 1e-6. */
#include "harness.h"
#include "../src/cpu/gemm.h"
#include "../src/layers/layers.h"
#include "../src/layers/winograd.h"
#include "../src/util/common.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINO_RTOL 2e-5

static float *rnd(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(n * sizeof(float) + 4);
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * an_uniform(seed, i);
    return p;
}

/* One entry of y, dx or dw in float64, and its sum of |terms| (*bound): the conv's definitions */
static double ref_y(const ConvShape *s, const float *x, const float *w, const float *b, size_t yi, double *bound) {
    int cg = s->c / s->groups, og = s->out_c / s->groups, k = s->k;
    int ox = yi % s->out_w, oy = yi / s->out_w % s->out_h, o = yi / ((size_t)s->out_w * s->out_h) % s->out_c;
    int n = yi / ((size_t)s->out_w * s->out_h * s->out_c);
    double acc = b[o], ab = fabs(b[o]);
    for (int c = 0; c < cg; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                double t = (double)w[(((size_t)o * cg + c) * k + ky) * k + kx] *
                           x[(((size_t)n * s->c + o / og * cg + c) * s->h + iy) * s->w + ix];
                acc += t, ab += fabs(t);
            }
    *bound = ab;
    return s->relu && acc < 0 ? 0.0 : acc;
}

static double ref_dx(const ConvShape *s, const float *w, const float *dy, size_t xi, double *bound) {
    int cg = s->c / s->groups, og = s->out_c / s->groups, k = s->k;
    int ix = xi % s->w, iy = xi / s->w % s->h, c = xi / ((size_t)s->w * s->h) % s->c;
    int n = xi / ((size_t)s->w * s->h * s->c), g = c / cg;
    double acc = 0.0, ab = 0.0;
    for (int o = g * og; o < (g + 1) * og; o++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int sy = iy + s->pad - ky, sx = ix + s->pad - kx, oy = sy / s->stride, ox = sx / s->stride;
                if (sy < 0 || sx < 0 || sy % s->stride || sx % s->stride || oy >= s->out_h || ox >= s->out_w) continue;
                double t = (double)w[(((size_t)o * cg + c % cg) * k + ky) * k + kx] *
                           dy[(((size_t)n * s->out_c + o) * s->out_h + oy) * s->out_w + ox];
                acc += t, ab += fabs(t);
            }
    *bound = ab;
    return acc;
}

static double ref_dw(const ConvShape *s, const float *x, const float *dy, size_t wi, double *bound) {
    int cg = s->c / s->groups, og = s->out_c / s->groups, k = s->k;
    int kx = wi % k, ky = wi / k % k, c = wi / ((size_t)k * k) % cg, o = wi / ((size_t)k * k * cg);
    double acc = 0.0, ab = 0.0;
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->out_h; oy++)
            for (int ox = 0; ox < s->out_w; ox++) {
                int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                double t = (double)dy[(((size_t)n * s->out_c + o) * s->out_h + oy) * s->out_w + ox] *
                           x[(((size_t)n * s->c + o / og * cg + c) * s->h + iy) * s->w + ix];
                acc += t, ab += fabs(t);
            }
    *bound = ab;
    return acc;
}

/* worst |got - ref| / bound over the entries of one array (every entry, or `samples` spread evenly;
 * infinite for a non-finite entry). which: 0 y, 1 dx, 2 dw */
static double worst(const ConvShape *s, int which, const float *got, size_t n, size_t samples, const float *x,
                    const float *w, const float *b, const float *dy) {
    double e = 0.0;
    size_t count = samples && samples < n ? samples : n;
    for (size_t j = 0; j < count; j++) {
        size_t i = count == n ? j : j * n / count + (j * 7919) % (n / count);
        double bound, want = which == 0 ? ref_y(s, x, w, b, i, &bound)
                           : which == 1 ? ref_dx(s, w, dy, i, &bound) : ref_dw(s, x, dy, i, &bound);
        double d = isfinite(got[i]) ? fabs(got[i] - want) / (bound + 1e-30) : INFINITY;
        if (!(d <= e)) e = d;
    }
    return e;
}

/* one layer through conv_forward / conv_backward with Winograd on: the worst relative errors of y,
 * dx, dw (every entry, or `samples` of each) */
static void wino_case(ConvShape s, uint64_t seed, const char *what, size_t samples) {
    conv_shape_init(&s);
    int cg = s.c / s.groups;
    size_t nx = (size_t)s.n * s.c * s.h * s.w, nw = (size_t)s.out_c * cg * s.k * s.k;
    size_t ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    float *x = rnd(nx, seed, -1, 1), *w = rnd(nw, seed + 1, -0.5f, 0.5f), *b = rnd(s.out_c, seed + 2, -0.5f, 0.5f);
    float *dy = rnd(ny, seed + 3, -1, 1), *y = malloc(ny * 4 + 4), *dx = malloc(nx * 4 + 4), *dw = malloc(nw * 4 + 4);
    float *db = malloc(s.out_c * 4 + 4);
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;
    for (size_t i = 0; i < nw; i++) dw[i] = NAN;
    conv_winograd_override(1);
    CHECK(s.stride == 1 ? conv_winograd(&s) : conv_phase(&s, 0) && conv_phase(&s, 1), "%s: not run on Winograd", what);
    CHECK(conv_forward(&s, x, w, b, y) == 0, "%s: forward: %s", what, an_last_error());
    CHECK(conv_backward(&s, x, w, dy, dx, dw, db) == 0, "%s: backward: %s", what, an_last_error());
    conv_winograd_override(-1);
    double e[3] = {worst(&s, 0, y, ny, samples, x, w, b, dy), worst(&s, 1, dx, nx, samples, x, w, b, dy),
                   worst(&s, 2, dw, nw, samples, x, w, b, dy)};
    CHECK(e[0] <= WINO_RTOL, "%s: forward error %.3g of the terms' magnitude", what, e[0]);
    CHECK(e[1] <= WINO_RTOL, "%s: input gradient error %.3g", what, e[1]);
    CHECK(e[2] <= WINO_RTOL, "%s: weight gradient error %.3g", what, e[2]);
    /* the bias gradient is the plain sum of dy, as without Winograd */
    for (int o = 0; o < s.out_c; o++) {
        double acc = 0.0, ab = 0.0;
        for (int n = 0; n < s.n; n++)
            for (int p = 0; p < s.out_h * s.out_w; p++) {
                double g = dy[((size_t)n * s.out_c + o) * s.out_h * s.out_w + p];
                acc += g, ab += fabs(g);
            }
        CHECK(fabs(db[o] - acc) <= 1e-6 * ab, "%s: db[%d] = %g, want %g", what, o, db[o], acc);
    }
    if (getenv("WINO_VERBOSE")) printf("  %-40s y %.2e  dx %.2e  dw %.2e\n", what, e[0], e[1], e[2]);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
}

TEST(winograd_matches_float64_sums) {
    /*                n  c   h   w  oc  k  s  p  g */
    wino_case((ConvShape){3, 4, 13, 13, 6, 3, 1, 1, 1, 0, 0, 0}, 1, "3x3 pad 1, 13x13", 0);
    wino_case((ConvShape){2, 6, 9, 7, 4, 3, 1, 1, 2, 0, 0, 0}, 2, "3x3 groups 2, 9x7", 0);
    wino_case((ConvShape){3, 3, 11, 10, 5, 3, 1, 0, 1, 0, 0, 0}, 3, "3x3 pad 0, 11x10", 0);
    wino_case((ConvShape){2, 3, 6, 6, 2, 3, 1, 2, 1, 0, 0, 0}, 4, "3x3 pad 2 (outputs larger)", 0);
    wino_case((ConvShape){2, 4, 3, 2, 3, 3, 1, 1, 1, 0, 0, 0}, 5, "3x3 on a 3x2 input", 0);
    wino_case((ConvShape){3, 4, 27, 27, 6, 5, 1, 2, 2, 0, 0, 0}, 6, "5x5 pad 2 groups 2, 27x27", 0);
    wino_case((ConvShape){2, 3, 8, 11, 4, 5, 1, 0, 1, 0, 0, 0}, 7, "5x5 pad 0, 8x11", 0);
    wino_case((ConvShape){1, 5, 7, 7, 3, 3, 1, 1, 1, 0, 0, 1}, 8, "3x3 with the fused ReLU, one image", 0);
    wino_case((ConvShape){37, 2, 5, 5, 3, 3, 1, 1, 1, 0, 0, 0}, 9, "3x3, 37 images (sets and chunks)", 0);
    wino_case((ConvShape){20, 3, 4, 4, 2, 5, 1, 2, 1, 0, 0, 0}, 10, "5x5, 20 images of 4x4", 0);
}

/* The transforms compiled for their matrices are in use (wino_build's matrices are the tables') and
 * give the generic transform's bits */
TEST(winograd_special_transforms_in_use) {
    int n = winograd_special_transforms_check();
    CHECK(n == 8, "%d of the 8 transforms compiled for their matrices are in use with the generic one's bits", n);
}

/* Strided layers on their phases: conv1's 11x11 stride 4 (both layouts' padding; inputs whose last
 * rows and columns no window reaches, whose gradient must be exactly 0), 5x5 and 6x6 of stride 2
 * (3x3 on the phases), groups, and 10x10 of stride 2 (5x5 on the phases) */
TEST(winograd_strided_layers_on_phases) {
    /*                n  c   h   w  oc  k  s  p  g */
    wino_case((ConvShape){2, 3, 35, 35, 32, 11, 4, 2, 1, 0, 0, 0}, 40, "11x11 stride 4 pad 2 (alexnet-owt conv1)", 0);
    wino_case((ConvShape){3, 3, 46, 45, 32, 11, 4, 0, 1, 0, 0, 1}, 41, "11x11 stride 4 pad 0, rows unreached", 0);
    wino_case((ConvShape){2, 8, 20, 19, 32, 5, 2, 1, 1, 0, 0, 0}, 42, "5x5 stride 2 pad 1", 0);
    wino_case((ConvShape){2, 16, 19, 19, 32, 6, 2, 2, 2, 0, 0, 0}, 43, "6x6 stride 2 groups 2", 0);
    wino_case((ConvShape){1, 8, 21, 22, 32, 10, 2, 3, 1, 0, 0, 0}, 44, "10x10 stride 2 (5x5 phases)", 0);
    wino_case((ConvShape){2, 3, 227, 227, 96, 11, 4, 0, 1, 0, 0, 1}, 45, "alexnet conv1 (11x11 stride 4)", 3000);
}

/* AlexNet's own layers (two images): conv2 of a tower (5x5, 48 -> 128, 27x27), conv3 (3x3, 256 ->
 * 384, 13x13), conv4 of a tower (192 -> 192); inputs as after a ReLU (non-negative) */
TEST(winograd_alexnet_layer_shapes) {
    wino_case((ConvShape){2, 96, 27, 27, 256, 5, 1, 2, 2, 0, 0, 1}, 20, "alexnet conv2 (5x5, towers)", 3000);
    wino_case((ConvShape){2, 256, 13, 13, 384, 3, 1, 1, 1, 0, 0, 1}, 21, "alexnet conv3 (3x3)", 3000);
    wino_case((ConvShape){2, 384, 13, 13, 384, 3, 1, 1, 2, 0, 0, 1}, 22, "alexnet conv4 (3x3, towers)", 3000);
}

/* A layer's sizes and random x, w (in [-wr, wr]), b, dy from seeds seed .. seed + 3 */
typedef struct Case { size_t nx, nw, ny; float *x, *w, *b, *dy; } Case;
static Case case_for(ConvShape *s, uint64_t seed, float wr) {
    conv_shape_init(s);
    Case c = {(size_t)s->n * s->c * s->h * s->w, (size_t)s->out_c * (s->c / s->groups) * s->k * s->k,
              (size_t)s->n * s->out_c * s->out_h * s->out_w, NULL, NULL, NULL, NULL};
    c.x = rnd(c.nx, seed, -1, 1), c.w = rnd(c.nw, seed + 1, -wr, wr), c.b = rnd(s->out_c, seed + 2, -1, 1);
    c.dy = rnd(c.ny, seed + 3, -1, 1);
    return c;
}
static void case_free(Case *c) { free(c->x), free(c->w), free(c->b), free(c->dy); }

/* the same bits for 1 thread and for several; forward, dx, dw */
TEST(winograd_deterministic_across_threads) {
    ConvShape shapes[2] = {{40, 4, 13, 13, 6, 3, 1, 1, 2, 0, 0, 0}, {17, 3, 9, 9, 4, 5, 1, 2, 1, 0, 0, 0}};
    int saved = omp_get_max_threads(), T = saved > 2 ? saved : 2;
    conv_winograd_override(1);
    for (int si = 0; si < 2; si++) {
        ConvShape s = shapes[si];
        Case cs = case_for(&s, 30, 1.0f);
        size_t nx = cs.nx, nw = cs.nw, ny = cs.ny;
        float *x = cs.x, *w = cs.w, *b = cs.b, *dy = cs.dy;
        float *y[2], *dx[2], *dw[2], *db[2];
        int threads[2] = {T, 1};
        for (int t = 0; t < 2; t++) {
            y[t] = malloc(ny * 4), dx[t] = malloc(nx * 4), dw[t] = malloc(nw * 4), db[t] = malloc(s.out_c * 4);
            omp_set_num_threads(threads[t]);
            CHECK(conv_forward(&s, x, w, b, y[t]) == 0 && conv_backward(&s, x, w, dy, dx[t], dw[t], db[t]) == 0, "failed");
        }
        omp_set_num_threads(T);
        CHECK(!memcmp(y[0], y[1], ny * 4), "shape %d: forward differs between %d threads and 1", si, T);
        CHECK(!memcmp(dx[0], dx[1], nx * 4), "shape %d: dx differs between %d threads and 1", si, T);
        CHECK(!memcmp(dw[0], dw[1], nw * 4), "shape %d: dw differs between %d threads and 1", si, T);
        for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
        case_free(&cs);
    }
    omp_set_num_threads(saved);
    conv_winograd_override(-1);
}

/* the automatic choice: AlexNet's conv2-conv5 yes, conv1 (11x11 stride 4) on its phases; narrow
 * layers, small batches, bf16 mode on AMX, and the override off no */
TEST(winograd_automatic_choice) {
    ConvShape conv1 = {8, 3, 227, 227, 96, 11, 4, 0, 1, 0, 0, 0}, conv2 = {8, 96, 27, 27, 256, 5, 1, 2, 2, 0, 0, 0};
    ConvShape conv3 = {8, 256, 13, 13, 384, 3, 1, 1, 1, 0, 0, 0}, narrow = {8, 8, 13, 13, 16, 3, 1, 1, 1, 0, 0, 0};
    ConvShape s2 = {8, 256, 13, 13, 384, 3, 2, 1, 1, 0, 0, 0}, one = {1, 256, 13, 13, 384, 3, 1, 1, 1, 0, 0, 0};
    ConvShape seven = {7, 256, 13, 13, 384, 3, 1, 1, 1, 0, 0, 0}, conv2_3 = {3, 96, 27, 27, 256, 5, 1, 2, 2, 0, 0, 0};
    conv_shape_init(&conv1), conv_shape_init(&conv2), conv_shape_init(&conv3), conv_shape_init(&narrow);
    conv_shape_init(&s2), conv_shape_init(&one), conv_shape_init(&seven), conv_shape_init(&conv2_3);
    CHECK(!conv_winograd(&conv1) && conv_winograd(&conv2) && conv_winograd(&conv3), "conv1/conv2/conv3 choice");
    /* a batch below 128 tiles (13x13: 16 tiles an image; 27x27: 49) stays on im2col */
    CHECK(!conv_winograd(&one) && !conv_winograd(&seven) && conv_winograd(&conv2_3), "batch 1 / 7 / conv2 at 3");
    /* the forward pass at any batch (it keeps the filters' transform between calls) */
    CHECK(conv_winograd_forward(&one) && conv_winograd_forward(&seven) && conv_winograd_forward(&conv3) &&
          !conv_winograd_forward(&conv1) && !conv_winograd_forward(&narrow) && !conv_winograd_forward(&s2),
          "the forward pass's choice");
    CHECK(!conv_winograd(&narrow) && !conv_winograd(&s2), "a narrow or strided layer on Winograd");
    /* conv1 as 48 phase channels of 57x57 (3x3): forward at any batch, backward from 128 tiles (one
     * image of 55x55 outputs has 196) */
    ConvShape conv1_one = conv1, owt1 = {128, 3, 224, 224, 64, 11, 4, 2, 1, 0, 0, 1}, s2_3 = {8, 8, 27, 27, 64, 3, 2, 1, 1, 0, 0, 0};
    ConvShape small = {1, 3, 35, 35, 64, 11, 4, 2, 1, 0, 0, 0}; /* 8x8 outputs: 4 tiles */
    conv1_one.n = 1;
    conv_shape_init(&owt1), conv_shape_init(&s2_3), conv_shape_init(&small);
    CHECK(conv_phase(&conv1, 0) && conv_phase(&conv1, 1) && conv_phase(&owt1, 0) && conv_phase(&owt1, 1) &&
          conv_phase(&conv1_one, 0) && conv_phase(&conv1_one, 1) && conv_phase(&small, 0) && !conv_phase(&small, 1),
          "conv1 on its phases: %d %d %d %d %d %d %d %d", conv_phase(&conv1, 0), conv_phase(&conv1, 1),
          conv_phase(&owt1, 0), conv_phase(&owt1, 1), conv_phase(&conv1_one, 0), conv_phase(&conv1_one, 1),
          conv_phase(&small, 0), conv_phase(&small, 1));
    /* 3x3 of stride 2 is 2x2 on its phases (no Winograd form); stride-1 layers are not phased */
    CHECK(!conv_phase(&s2_3, 0) && !conv_phase(&s2, 0) && !conv_phase(&conv3, 0), "phases of 3x3 stride 2 / stride 1");
    /* small outputs: both passes from 6x6 (convnet4's conv3 on 28x28 images), the backward from 32 images */
    ConvShape six = {128, 32, 6, 6, 64, 5, 1, 2, 1, 0, 0, 1}, five = {128, 32, 5, 5, 64, 5, 1, 2, 1, 0, 0, 1};
    ConvShape six31 = {31, 32, 6, 6, 64, 5, 1, 2, 1, 0, 0, 1}, six32 = {32, 32, 6, 6, 64, 5, 1, 2, 1, 0, 0, 1};
    conv_shape_init(&six), conv_shape_init(&five), conv_shape_init(&six31), conv_shape_init(&six32);
    CHECK(conv_winograd_forward(&six) && !conv_winograd_forward(&five) && conv_winograd(&six) && !conv_winograd(&five) &&
          !conv_winograd(&six31) && conv_winograd(&six32),
          "6x6 / 5x5 outputs: forward %d %d, backward %d %d; 6x6 backward at 31 / 32 images %d %d",
          conv_winograd_forward(&six), conv_winograd_forward(&five), conv_winograd(&six), conv_winograd(&five),
          conv_winograd(&six31), conv_winograd(&six32));
    /* bf16 mode: Winograd (in float32, see winograd_bf16_mode_runs_in_float32) unless AMX tiles run
     * the bf16 products, also inside a parallel region (the chunked pass) */
    gemm_set_bf16(1);
    int amx = gemm_bf16_amx(), inside = -1;
    CHECK(conv_winograd(&conv3) == !amx && conv_phase(&conv1, 0) == !amx, "Winograd in bf16 mode, AMX %d", amx);
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        inside = conv_winograd(&conv3) && conv_phase(&conv1, 0);
    }
    CHECK(inside == !amx, "Winograd in bf16 mode inside a parallel region: %d, AMX %d", inside, amx);
    gemm_set_bf16(0);
    conv_winograd_override(0);
    CHECK(!conv_winograd(&conv3) && !conv_winograd_forward(&one) && !conv_phase(&conv1, 0) && !conv_phase(&conv1, 1),
          "Winograd with the override off");
    conv_winograd_override(1);
    CHECK(conv_winograd(&narrow) && !conv_winograd(&s2), "override on: narrow yes, strided no");
    conv_winograd_override(-1);
}

/* bf16 mode where Winograd is chosen (no AMX tiles): the layer runs in float32, the same bits as
 * float32 mode (forward, dx, dw; conv1 on its phases and a stride-1 3x3), called by the main thread
 * or by one thread of a parallel region (the chunked pass: its products on that thread), and bf16
 * mode is on again after each pass; a bf16 product right after still rounds its operands. Where AMX
 * runs bf16 products the layer stays on them (skipped here). */
TEST(winograd_bf16_mode_runs_in_float32) {
    gemm_set_bf16(1);
    int amx = gemm_bf16_amx();
    gemm_set_bf16(0);
    if (amx) SKIP("AMX tiles run bf16 mode's convolutions directly");
    ConvShape shapes[2] = {{8, 64, 13, 13, 64, 3, 1, 1, 2, 0, 0, 1}, {4, 3, 99, 99, 32, 11, 4, 2, 1, 0, 0, 0}};
    for (int si = 0; si < 2; si++) {
        ConvShape s = shapes[si];
        Case cs = case_for(&s, 50, 0.3f);
        float *y[3], *dx[3], *dw[3], *db[3];
        for (int run = 0; run < 3; run++) { /* float32; bf16; bf16 on one thread of a parallel region */
            int bf = run > 0;
            y[run] = malloc(cs.ny * 4), dx[run] = malloc(cs.nx * 4), dw[run] = malloc(cs.nw * 4);
            db[run] = malloc(s.out_c * 4);
            gemm_set_bf16(bf);
            CHECK(si == 0 ? conv_winograd(&s) && conv_winograd_forward(&s) : conv_phase(&s, 0) && conv_phase(&s, 1),
                  "shape %d, bf16 %d: not on Winograd", si, bf);
            int ok = 0;
#pragma omp parallel num_threads(2) if (run == 2)
            {
#pragma omp single
                ok = conv_forward(&s, cs.x, cs.w, cs.b, y[run]) == 0 && gemm_bf16() == bf &&
                     conv_backward(&s, cs.x, cs.w, cs.dy, dx[run], dw[run], db[run]) == 0 && gemm_bf16() == bf;
            }
            CHECK(ok, "shape %d, run %d: a pass failed (%s) or left bf16 mode %d", si, run, an_last_error(),
                  gemm_bf16());
        }
        /* a bf16 product after them rounds its operands: 1 + 2^-10 times itself is 1 in bfloat16 */
        float a = 1.0f + 1.0f / 1024, c = 0.0f;
        gemm(0, 0, 1, 1, 1, 1.0f, &a, 1, &a, 1, 0.0f, &c, 1);
        CHECK(c == 1.0f, "a bf16 product after the Winograd passes gave %.9g, not 1", c);
        gemm_set_bf16(0);
        for (int run = 1; run < 3; run++) {
            CHECK(!memcmp(y[0], y[run], cs.ny * 4), "shape %d, run %d: bf16's forward differs from float32's", si, run);
            CHECK(!memcmp(dx[0], dx[run], cs.nx * 4), "shape %d, run %d: bf16's dx differs from float32's", si, run);
            CHECK(!memcmp(dw[0], dw[run], cs.nw * 4), "shape %d, run %d: bf16's dw differs from float32's", si, run);
        }
        for (int t = 0; t < 3; t++) free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
        case_free(&cs);
    }
}

/* y of one forward pass: forced im2col (mode 0), forced Winograd (1) or the automatic choice (-1) */
static float *forward_as(int mode, const ConvShape *s, const float *x, const float *w, const float *b) {
    float *y = malloc((size_t)s->n * s->out_c * s->out_h * s->out_w * sizeof(float));
    conv_winograd_override(mode);
    CHECK(conv_forward(s, x, w, b, y) == 0, "forward (mode %d)", mode);
    conv_winograd_override(-1);
    return y;
}

static int same_bits(const float *a, const float *b, const ConvShape *s) {
    return memcmp(a, b, (size_t)s->n * s->out_c * s->out_h * s->out_w * sizeof(float)) == 0;
}

/* The forward pass runs on Winograd at any batch (batch-1 inference included) and keeps the
 * filters' transform while the weights stay the same: every pass gives the bits of a fresh forced
 * Winograd pass, first and later, two layers interleaved (one with groups, one 5x5); weights changed
 * in place give the new weights' bits (never a stale transform); more layers than kept sets (7
 * against 6) still give each layer's own bits. */
TEST(winograd_keeps_filters_between_forward_passes) {
    enum { L = 7 };
    ConvShape ls[L];
    for (int l = 0; l < L; l++) {
        ls[l] = l == 0 ? (ConvShape){1, 64, 13, 13, 96, 3, 1, 1, 2, 0, 0, 1}
              : l == 1 ? (ConvShape){1, 64, 15, 15, 64, 5, 1, 2, 1, 0, 0, 0}
                       : (ConvShape){1 + l % 2, 32, 9 + l, 9 + l, 32 + 8 * l, 3, 1, 1, 1, 0, 0, l % 2};
        conv_shape_init(&ls[l]);
        CHECK(conv_winograd_forward(&ls[l]), "layer %d: not on Winograd forward", l);
    }
    CHECK(!conv_winograd(&ls[0]) && !conv_winograd(&ls[1]), "batch 1's backward passes are on Winograd");
    float *x[L], *w[L], *b[L], *ref[L];
    for (int l = 0; l < L; l++) {
        const ConvShape *s = &ls[l];
        size_t nw = (size_t)s->out_c * (s->c / s->groups) * s->k * s->k;
        x[l] = rnd((size_t)s->n * s->c * s->h * s->w, 70 + l, -1, 1), w[l] = rnd(nw, 80 + l, -0.2f, 0.2f);
        b[l] = rnd(s->out_c, 90 + l, -0.1f, 0.1f);
        ref[l] = forward_as(1, s, x[l], w[l], b[l]);
        float *direct = forward_as(0, s, x[l], w[l], b[l]);
        CHECK(!same_bits(ref[l], direct, s), "layer %d: im2col and Winograd give the same bits", l);
        free(direct);
    }
    for (int pass = 0; pass < 3; pass++)
        for (int l = 0; l < (pass < 2 ? 2 : L); l++) {
            float *y = forward_as(-1, &ls[l], x[l], w[l], b[l]);
            CHECK(same_bits(y, ref[l], &ls[l]), "layer %d pass %d: not a fresh Winograd pass's bits", l, pass);
            free(y);
        }
    /* one weight changed in place (same pointer) */
    w[0][5] += 0.25f;
    float *fresh = forward_as(1, &ls[0], x[0], w[0], b[0]);
    for (int pass = 0; pass < 2; pass++) {
        float *y = forward_as(-1, &ls[0], x[0], w[0], b[0]);
        CHECK(same_bits(y, fresh, &ls[0]), "changed weights, pass %d: not the new weights' bits", pass);
        CHECK(!same_bits(y, ref[0], &ls[0]), "changed weights, pass %d: the old weights' output", pass);
        free(y);
    }
    free(fresh);
    for (int l = 0; l < L; l++) free(x[l]), free(w[l]), free(b[l]), free(ref[l]);
}
