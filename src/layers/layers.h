/* layers.h: every operation of the network, forward and backward, float32, NCHW.
 * One file per operation in src/layers/. Backward functions overwrite dx and overwrite (not add
 * to) their parameter gradients dw, db. Shapes are in the comments: x is (n, c, h, w). */
#ifndef ALEXNET_LAYERS_H
#define ALEXNET_LAYERS_H
#include <stddef.h>
#include <stdint.h>

/* ---- convolution (conv.c): im2col + gemm, any kernel, stride, padding and groups ---- */
typedef struct ConvShape {
    int n, c, h, w;        /* input (n, c, h, w) */
    int out_c, k, stride, pad, groups;
    int out_h, out_w;      /* = (h + 2 pad - k) / stride + 1, filled by conv_shape_init */
    int relu;              /* forward writes max(0, conv + b): the ReLU that follows, fused in */
} ConvShape;
void conv_shape_init(ConvShape *s);
/* x (n,c,h,w), w (out_c, c/groups, k, k), b (out_c) -> y (n, out_c, out_h, out_w) */
int conv_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y);
/* dy (n,out_c,oh,ow) -> dx (n,c,h,w) (skipped when dx is NULL), dw, db. Deterministic.
 * Both return 0, or -1 (an_error set) when the im2col workspace cannot be allocated. */
int conv_backward(const ConvShape *s, const float *x, const float *w, const float *dy, float *dx,
                  float *dw, float *db);

/* ---- fully connected (linear.c): x (n, in) -> y (n, out) = x w^T + b, w (out, in) ---- */
void linear_forward(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
/* The same for n <= LINEAR_BF16W_MAX_N from weights already in bfloat16 (w16: the upper halves of
 * the rounded floats), x rounded as read: what bf16 mode computes, reading half the bytes.
 * 0, or -1 (no memory for the rounded x: use linear_forward). */
enum { LINEAR_BF16W_MAX_N = 4 };
int linear_forward_bf16w(int n, int in, int out, const float *x, const uint16_t *w16, const float *b, float *y);
/* w (count floats) rounded to bfloat16 into w16 */
void linear_weights_to_bf16(size_t count, const float *w, uint16_t *w16);
void linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);

/* ---- activations (act.c), elementwise over count values; backward uses the output y ---- */
void relu_forward(long count, const float *x, float *y);
void relu_backward(long count, const float *y, const float *dy, float *dx);
void tanh_forward(long count, const float *x, float *y);
void tanh_backward(long count, const float *y, const float *dy, float *dx);

/* ---- local response normalisation across channels (lrn.c) ----
 * y = x / (k + (alpha / size) * sum_{c' = c - size/2}^{c + size/2} x_c'^2)^beta
 * (alpha divided by size, as cuda-convnet, Caffe and PyTorch compute; channels past the edges
 * count as zero). scale (n,c,h,w) keeps the denominator base for backward. */
/* groups > 1: the channels form that many equal groups (the paper's towers) and a window never
 * crosses a group's edge: each tower normalises over its own kernel maps. 0 or 1: one group. */
typedef struct LrnParams { int size; float alpha, beta, k; int groups; } LrnParams;
#ifdef __CUDACC__
#define LRN_HD __host__ __device__
#else
#define LRN_HD
#endif
/* Channels [*lo, *hi] of the window centred on ch, clipped to the edges of ch's group. */
LRN_HD static inline void lrn_window(int ch, int c, LrnParams p, int *lo, int *hi) {
    int gc = p.groups > 1 ? c / p.groups : c, g0 = ch / gc * gc, half = p.size / 2;
    *lo = ch - half < g0 ? g0 : ch - half;
    *hi = ch + half > g0 + gc - 1 ? g0 + gc - 1 : ch + half;
}
void lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *scale);
/* s^-0.75 of a plane without square roots or divisions (AVX-512; within 3 ulps of 1 / (sqrt(s)
 * sqrt(sqrt(s)))), which the LRN passes use when lrn_pow_fast_ok(beta, k): beta 0.75, k > 0 (so
 * every s is positive) and a CPU with AVX-512; exposed for its test. */
int lrn_pow_fast_ok(float beta, float k);
void lrn_pow_neg075_fast(int hw, const float *in, float *out);
/* relu_input: x is a ReLU's output, and dx is also multiplied by (x > 0): that ReLU's backward
 * pass fused in (the net then skips it). Returns -1 (with a message) when its per-thread plane
 * buffer cannot be had. */
int lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y,
                 const float *scale, const float *dy, float *dx, int relu_input);

/* ---- max pooling (pool.c): window k, stride s, no padding, floor mode;
 * argmax (n, c, oh, ow) records the input index (within the plane) of each maximum ---- */
void maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *argmax);
/* tests: 1 turns the AVX2 path of the 3/2 pooling off (the row pass and the plain scan run), 0 back on */
void maxpool_avx2_override(int off);
/* relu_y: NULL, or the pooled outputs y when the pooling's input is a ReLU's output: dy then passes
 * only where y > 0 (the maximum of a window is positive exactly where the ReLU passed its winner),
 * that ReLU's backward pass fused in, the same bits (the net then skips it) */
void maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *argmax, const float *dy,
                      float *dx, const float *relu_y);
/* adaptive average pooling to (oh, ow), PyTorch's bins [floor(i h/oh), ceil((i+1) h/oh)) */
void avgpool_forward(int n, int c, int h, int w, int oh, int ow, const float *x, float *y);
void avgpool_backward(int n, int c, int h, int w, int oh, int ow, const float *dy, float *dx);

/* ---- dropout (dropout.c): inverted dropout, keep with probability 1 - p and scale by 1/(1-p).
 * The mask comes from the counter-based RNG: element i of the call with `seed` is dropped when
 * an_uniform(seed, i) < p, so masks do not depend on threads. mask (count) is 0 or 1. ---- */
void dropout_forward(long count, float p, uint64_t seed, const float *x, float *y, uint8_t *mask);
/* Where a part of a batch sits in the whole batch (several processes, each with a part): the
 * count values are rows of row_len, and value i draws the RNG at index
 *   first + (i / row_len) * row_stride + i % row_len
 * (a data-parallel rank: rows = its images, first = its first image x row_len; a tower: its
 * columns of each image's row_stride values). {0, count, count} is dropout_forward. */
typedef struct DropoutAt { uint64_t first; long row_len, row_stride; } DropoutAt;
void dropout_forward_at(long count, float p, uint64_t seed, DropoutAt at, const float *x, float *y, uint8_t *mask);
void dropout_backward(long count, float p, const uint8_t *mask, const float *dy, float *dx);

/* ---- softmax cross-entropy (loss.c): logits (n, classes), labels (n) -> mean loss;
 * probs (n, classes) softmax; dlogits = (probs - onehot) / n (may be NULL) ---- */
float softmax_xent(int n, int classes, const float *logits, const int *labels, float *probs,
                   float *dlogits);
/* The same for n rows of a larger batch: returns the rows' summed loss, dlogits divided by
 * `divisor` (the whole batch's size) */
double softmax_xent_rows(int n, int divisor, int classes, const float *logits, const int *labels, float *probs,
                         float *dlogits);
#endif
