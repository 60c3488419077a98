/* linear.c: fully connected layer, y (n, out) = x (n, in) w^T (in, out) + b, via gemm. */
#include "layers.h"
#include "../cpu/gemm.h"

void linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
    gemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (!b) return;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) y[(size_t)i * out + o] += b[o];
}

void linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in); /* dw (out, in) = dy^T x */
    if (dx) gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in); /* dx (n, in) = dy w */
    for (int o = 0; o < out; o++) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + o];
        db[o] = (float)acc;
    }
}
