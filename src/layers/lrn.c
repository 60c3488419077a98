/* lrn.c: local response normalisation across channels (the paper's section 3.3).
 * scale_c = k + (alpha / size) * sum over the `size` channels centred on c of x^2, y = x scale^-beta.
 * Backward: dx_c = dy_c scale_c^-beta
 *                  - (2 alpha beta / size) x_c sum over the window of c' containing c of dy_c' y_c' / scale_c'.
 * With p.groups > 1 windows stop at the edges of each group (layers.h: lrn_window).
 * Windows are summed directly (no running sum), so each value is a fixed short sum, and the same
 * sum whatever the thread count. The plane loops are compiled for AVX-512, AVX2 and baseline x86-64
 * and chosen at run time; the backward pass forms dy y / scale once per element of an image (in a
 * per-thread plane buffer) and then sums windows of it. */
#include "layers.h"
#include "../util/common.h"
#include <math.h>
#include <omp.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* out[q] = in[q]^-beta over a plane; the paper's beta = 0.75 is 1 / (sqrt(s) sqrt(sqrt(s))),
 * several times faster than powf and vectorised */
CLONES static void pow_neg_plane(int hw, float beta, const float *restrict in, float *restrict out) {
    if (beta == 0.75f) {
        for (int q = 0; q < hw; q++) {
            float r = sqrtf(in[q]);
            out[q] = 1.0f / (r * sqrtf(r));
        }
    } else {
        for (int q = 0; q < hw; q++) out[q] = powf(in[q], -beta);
    }
}

/* s = k + a * sum_j xj^2 over the planes [x0, x0 + nj*hw); y = xc * s^-beta */
CLONES static void lrn_forward_plane(int hw, int nj, const float *restrict x0, const float *restrict xc,
                                     float k, float a, float beta, float *restrict s, float *restrict y) {
    for (int q = 0; q < hw; q++) s[q] = 0.0f;
    for (int j = 0; j < nj; j++) {
        const float *xj = x0 + (size_t)j * hw;
        for (int q = 0; q < hw; q++) s[q] += xj[q] * xj[q];
    }
    for (int q = 0; q < hw; q++) s[q] = k + a * s[q];
    pow_neg_plane(hw, beta, s, y);
    for (int q = 0; q < hw; q++) y[q] *= xc[q];
}

void lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *scale) {
    size_t img = (size_t)c * hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            int lo, hi;
            lrn_window(ch, c, p, &lo, &hi);
            size_t off = i * img + (size_t)ch * hw;
            lrn_forward_plane(hw, hi - lo + 1, x + i * img + (size_t)lo * hw, x + off, p.k, p.alpha / p.size,
                              p.beta, scale + off, y + off);
        }
}

/* t = dy y / s over one plane */
CLONES static void ratio_plane(int hw, const float *restrict dy, const float *restrict y, const float *restrict s,
                               float *restrict t) {
    for (int q = 0; q < hw; q++) t[q] = dy[q] * y[q] / s[q];
}

/* d = dy s^-beta - coef x sum_j tj over the planes [t0, t0 + nj*hw); zero where x <= 0 if relu_input */
CLONES static void lrn_backward_plane(int hw, int nj, const float *restrict t0, const float *restrict x,
                                      const float *restrict s, const float *restrict dy, float coef, float beta,
                                      int relu_input, float *restrict d) {
    pow_neg_plane(hw, beta, s, d);
    for (int q = 0; q < hw; q++) d[q] *= dy[q];
    for (int j = 0; j < nj; j++) {
        const float *tj = t0 + (size_t)j * hw;
        for (int q = 0; q < hw; q++) d[q] -= coef * x[q] * tj[q];
    }
    if (relu_input)
        for (int q = 0; q < hw; q++) d[q] = x[q] > 0.0f ? d[q] : 0.0f;
}

/* One image's dx; its channels in parallel when called outside a parallel region. t: (c, hw) scratch. */
static void backward_image(int c, int hw, LrnParams p, const float *x, const float *y, const float *scale,
                           const float *dy, float *dx, int relu_input, float *t) {
    float coef = 2.0f * p.alpha * p.beta / p.size;
    int par = !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
    for (int ch = 0; ch < c; ch++)
        ratio_plane(hw, dy + (size_t)ch * hw, y + (size_t)ch * hw, scale + (size_t)ch * hw, t + (size_t)ch * hw);
#pragma omp parallel for schedule(static) if (par)
    for (int ch = 0; ch < c; ch++) {
        int lo, hi;
        lrn_window(ch, c, p, &lo, &hi);
        size_t e = (size_t)ch * hw;
        lrn_backward_plane(hw, hi - lo + 1, t + (size_t)lo * hw, x + e, scale + e, dy + e, coef, p.beta, relu_input,
                           dx + e);
    }
}

int lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y,
                 const float *scale, const float *dy, float *dx, int relu_input) {
    size_t img = (size_t)c * hw;
    int failed = 0;
    if (n >= omp_get_max_threads()) { /* images in parallel */
#pragma omp parallel
        {
            float *t = an_thread_buffer(AN_BUF_LRN, img * sizeof(float));
            if (!t) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(static)
            for (int i = 0; i < n; i++)
                if (t) backward_image(c, hw, p, x + i * img, y + i * img, scale + i * img, dy + i * img, dx + i * img,
                                      relu_input, t);
        }
    } else { /* image by image, channels in parallel (no region around: see conv_forward) */
        float *t = an_thread_buffer(AN_BUF_LRN, img * sizeof(float));
        failed = !t;
        for (int i = 0; i < n && t; i++)
            backward_image(c, hw, p, x + i * img, y + i * img, scale + i * img, dy + i * img, dx + i * img,
                           relu_input, t);
    }
    return failed ? an_error("out of memory (LRN workspace of %zu bytes)", img * sizeof(float)) : 0;
}
