/* lrn.c: local response normalisation across channels (the paper's section 3.3).
 * scale_c = k + (alpha / size) * sum over the `size` channels centred on c of x^2, y = x scale^-beta.
 * Backward: dx_c = dy_c scale_c^-beta
 *                  - (2 alpha beta / size) x_c sum over the window of c' containing c of dy_c' y_c' / scale_c'.
 * Windows are summed directly (no running sum), so each value is a fixed short sum. */
#include "layers.h"
#include <math.h>

/* s^-beta; the paper's beta = 0.75 is 1 / (sqrt(s) sqrt(sqrt(s))), several times faster than powf. */
static inline float pow_neg(float s, float beta) {
    if (beta == 0.75f) {
        float r = sqrtf(s);
        return 1.0f / (r * sqrtf(r));
    }
    return powf(s, -beta);
}

void lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *scale) {
    size_t img = (size_t)c * hw;
    float a = p.alpha / p.size;
    int half = p.size / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            const float *xi = x + i * img;
            float *s = scale + i * img + (size_t)ch * hw, *yc = y + i * img + (size_t)ch * hw;
            int lo = ch - half < 0 ? 0 : ch - half, hi = ch + half >= c ? c - 1 : ch + half;
            for (int q = 0; q < hw; q++) s[q] = 0.0f;
            for (int j = lo; j <= hi; j++) {
                const float *xj = xi + (size_t)j * hw;
                for (int q = 0; q < hw; q++) s[q] += xj[q] * xj[q];
            }
            const float *xc = xi + (size_t)ch * hw;
            for (int q = 0; q < hw; q++) {
                s[q] = p.k + a * s[q];
                yc[q] = xc[q] * pow_neg(s[q], p.beta);
            }
        }
}

void lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y,
                  const float *scale, const float *dy, float *dx, int relu_input) {
    size_t img = (size_t)c * hw;
    float coef = 2.0f * p.alpha * p.beta / p.size;
    int half = p.size / 2;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            size_t off = i * img;
            int lo = ch - half < 0 ? 0 : ch - half, hi = ch + half >= c ? c - 1 : ch + half;
            float *d = dx + off + (size_t)ch * hw;
            for (int q = 0; q < hw; q++) d[q] = 0.0f;
            for (int j = lo; j <= hi; j++) { /* the window is symmetric: j's window holds ch */
                const float *dyj = dy + off + (size_t)j * hw, *yj = y + off + (size_t)j * hw;
                const float *sj = scale + off + (size_t)j * hw;
                for (int q = 0; q < hw; q++) d[q] += dyj[q] * yj[q] / sj[q];
            }
            const float *xc = x + off + (size_t)ch * hw, *sc = scale + off + (size_t)ch * hw;
            const float *dyc = dy + off + (size_t)ch * hw;
            for (int q = 0; q < hw; q++) d[q] = dyc[q] * pow_neg(sc[q], p.beta) - coef * xc[q] * d[q];
            if (relu_input)
                for (int q = 0; q < hw; q++) d[q] = xc[q] > 0.0f ? d[q] : 0.0f;
        }
}
