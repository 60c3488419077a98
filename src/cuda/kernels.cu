/* kernels.cu: our own GPU kernels beside cuDNN/cuBLAS: ReLU, LRN (forward and backward, the
 * ReLU before it fused into its backward), overlapping max pooling, bias gradients, dropout from
 * the counter-based RNG, softmax cross-entropy, the true class's rank (top-k) and the SGD update.
 * One thread per output element (reductions: a block per row or per channel); every sum runs in a
 * fixed order, so results do not change from run to run. Shapes as in layers.h, NCHW. */
#include "cuda_internal.h"
#include "../util/hash64.h"

#define GRID_STRIDE(i, count) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (count); \
                                   i += (long)gridDim.x * blockDim.x)

/* ---- ReLU ---- */
__global__ void relu_fwd_k(long count, const float *x, float *y) {
    GRID_STRIDE(i, count) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
__global__ void relu_bwd_k(long count, const float *y, const float *dy, float *dx) {
    GRID_STRIDE(i, count) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
extern "C" int cuda_relu_forward(long count, const float *x, float *y) {
    relu_fwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, x, y);
    return LAUNCHED("relu forward");
}
extern "C" int cuda_relu_backward(long count, const float *y, const float *dy, float *dx) {
    relu_bwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, y, dy, dx);
    return LAUNCHED("relu backward");
}

/* ---- LRN across channels (lrn.c has the formulas) ---- */
__device__ __forceinline__ float pow_neg(float s, float beta) {
    if (beta == 0.75f) { /* as lrn.c: 1 / (sqrt(s) sqrt(sqrt(s))) */
        float r = sqrtf(s);
        return 1.0f / (r * sqrtf(r));
    }
    return powf(s, -beta);
}

__global__ void lrn_fwd_k(long count, int c, int hw, LrnParams p, float k, float a, float beta, const float *x,
                          float *y, float *scale) {
    GRID_STRIDE(e, count) {
        int q = (int)(e % hw), ch = (int)((e / hw) % c);
        long img = e - q - (long)ch * hw; /* offset of this image's channel 0 */
        int lo, hi;
        lrn_window(ch, c, p, &lo, &hi);
        float s = 0.0f;
        for (int j = lo; j <= hi; j++) {
            float v = x[img + (long)j * hw + q];
            s += v * v;
        }
        s = k + a * s;
        scale[e] = s;
        y[e] = x[e] * pow_neg(s, beta);
    }
}

__global__ void lrn_bwd_k(long count, int c, int hw, LrnParams p, float coef, float beta, const float *x,
                          const float *y, const float *scale, const float *dy, float *dx, int relu_input) {
    GRID_STRIDE(e, count) {
        int q = (int)(e % hw), ch = (int)((e / hw) % c);
        long img = e - q - (long)ch * hw;
        int lo, hi;
        lrn_window(ch, c, p, &lo, &hi);
        float t = 0.0f;
        for (int j = lo; j <= hi; j++) {
            long f = img + (long)j * hw + q;
            t += dy[f] * y[f] / scale[f];
        }
        float d = dy[e] * pow_neg(scale[e], beta) - coef * x[e] * t;
        dx[e] = relu_input && !(x[e] > 0.0f) ? 0.0f : d;
    }
}

extern "C" int cuda_lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *scale) {
    long count = (long)n * c * hw;
    lrn_fwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, c, hw, p, p.k, p.alpha / p.size,
                                                                p.beta, x, y, scale);
    return LAUNCHED("LRN forward");
}

extern "C" int cuda_lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y,
                                 const float *scale, const float *dy, float *dx, int relu_input) {
    long count = (long)n * c * hw;
    lrn_bwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, c, hw, p,
                                                                2.0f * p.alpha * p.beta / p.size, p.beta, x, y,
                                                                scale, dy, dx, relu_input);
    return LAUNCHED("LRN backward");
}

/* ---- max pooling, window k, stride s, floor mode ---- */
/* The window scanned in row-major order from its first element, as pool.c: the first maximum
 * wins; a NaN propagates as PyTorch's does: the first NaN of the window is taken (its value and
 * its position, where the gradient goes) and nothing replaces it (NaN compares greater than
 * nothing, and a later NaN does not move the position). */
__global__ void maxpool_fwd_k(long count, int h, int w, int oh, int ow, int k, int s, const float *x, float *y,
                              int32_t *argmax) {
    GRID_STRIDE(o, count) {
        int ox = (int)(o % ow), oy = (int)((o / ow) % oh);
        const float *xp = x + (o / ((long)oh * ow)) * h * w;
        int best = oy * s * w + ox * s;
        float m = xp[best];
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                int idx = (oy * s + ky) * w + ox * s + kx;
                float v = xp[idx];
                if (v > m || (isnan(v) && !isnan(m))) { m = v; best = idx; }
            }
        y[o] = m;
        argmax[o] = best;
    }
}

/* each input sums the gradients of the windows whose maximum it was, in the row-major order of
 * the outputs: the order of pool.c's scatter, so the sums are the same */
__global__ void maxpool_bwd_k(long count, int h, int w, int oh, int ow, int k, int s, const int32_t *argmax,
                              const float *dy, float *dx) {
    GRID_STRIDE(e, count) {
        int ix = (int)(e % w), iy = (int)((e / w) % h);
        long pl = e / ((long)h * w);
        int oy0 = iy - k + 1 <= 0 ? 0 : (iy - k + s) / s, oy1 = iy / s < oh - 1 ? iy / s : oh - 1;
        int ox0 = ix - k + 1 <= 0 ? 0 : (ix - k + s) / s, ox1 = ix / s < ow - 1 ? ix / s : ow - 1;
        const int32_t *ap = argmax + pl * oh * ow;
        const float *dyp = dy + pl * oh * ow;
        int self = iy * w + ix;
        float acc = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++)
                if (ap[oy * ow + ox] == self) acc += dyp[oy * ow + ox];
        dx[e] = acc;
    }
}

extern "C" int cuda_maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y,
                                    int32_t *argmax) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    long count = (long)n * c * oh * ow;
    maxpool_fwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, h, w, oh, ow, k, s, x, y, argmax);
    return LAUNCHED("max pooling forward");
}

extern "C" int cuda_maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *argmax,
                                     const float *dy, float *dx) {
    int oh = (h - k) / s + 1, ow = (w - k) / s + 1;
    long count = (long)n * c * h * w;
    maxpool_bwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, h, w, oh, ow, k, s, argmax, dy, dx);
    return LAUNCHED("max pooling backward");
}

/* ---- bias gradients: db[o] = sum over images and positions of dy (n, channels, plane) ---- */
/* plane 1 (a fully connected layer: dy is (n, channels)): a block of BG_COLS x BG_ROWS threads per
 * BG_COLS channels; a row of threads reads BG_COLS consecutive channels of an image (coalesced),
 * row r takes images r, r + BG_ROWS, ...; float64 sums, then a fixed tree over the rows */
enum { BG_COLS = 32, BG_ROWS = THREADS / BG_COLS };
__global__ void bias_grad_rows_k(int n, int channels, const float *dy, float *db) {
    __shared__ double part[BG_ROWS][BG_COLS];
    int col = threadIdx.x, row = threadIdx.y, o = blockIdx.x * BG_COLS + col;
    double acc = 0.0;
    if (o < channels)
        for (int i = row; i < n; i += BG_ROWS) acc += dy[(long)i * channels + o];
    part[row][col] = acc;
    __syncthreads();
    for (int step = BG_ROWS / 2; step > 0; step /= 2) {
        if (row < step) part[row][col] += part[row + step][col];
        __syncthreads();
    }
    if (row == 0 && o < channels) db[o] = (float)part[0][col];
}

/* plane > 1 (a convolution): one block per channel, its THREADS threads over all (image, position)
 * pairs of the channel, float64 partial sums in a fixed tree */
template <typename I>
__global__ void bias_grad_planes_k(int n, int channels, int plane, const float *dy, float *db) {
    __shared__ double part[THREADS];
    int o = blockIdx.x;
    I total = (I)n * plane;
    double acc = 0.0;
    for (I e = threadIdx.x; e < total; e += THREADS) {
        I i = e / plane, q = e - i * plane;
        acc += dy[((long)i * channels + o) * plane + q];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int step = THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[o] = (float)part[0];
}

extern "C" int cuda_bias_grad(int n, int channels, int plane, const float *dy, float *db) {
    if (channels < 1) return 0;
    if (n < 1 || plane < 1) return cuda_memset0(db, (size_t)channels * sizeof(float));
    if (plane == 1)
        bias_grad_rows_k<<<(unsigned)((channels + BG_COLS - 1) / BG_COLS), dim3(BG_COLS, BG_ROWS), 0, g_cuda_stream>>>(
            n, channels, dy, db);
    else if ((long)n * plane <= 0x7fffffffL - THREADS) /* 32-bit indices where they fit: cheaper divisions */
        bias_grad_planes_k<int><<<(unsigned)channels, THREADS, 0, g_cuda_stream>>>(n, channels, plane, dy, db);
    else
        bias_grad_planes_k<long><<<(unsigned)channels, THREADS, 0, g_cuda_stream>>>(n, channels, plane, dy, db);
    return LAUNCHED("bias gradient");
}

/* ---- dropout: an_uniform of common.c, bit for bit (the same hash64.h) ---- */

__global__ void dropout_fwd_k(long count, float p, float keep_scale, uint64_t seed, DropoutAt at, const float *x,
                              float *y, uint8_t *mask) {
    GRID_STRIDE(i, count) {
        uint64_t index = at.first + (uint64_t)(i / at.row_len) * (uint64_t)at.row_stride + (uint64_t)(i % at.row_len);
        float u = an_uniform_mix(seed, index);
        uint8_t m = u >= p;
        mask[i] = m;
        y[i] = m ? x[i] * keep_scale : 0.0f;
    }
}
__global__ void dropout_bwd_k(long count, float keep_scale, const uint8_t *mask, const float *dy, float *dx) {
    GRID_STRIDE(i, count) dx[i] = mask[i] ? dy[i] * keep_scale : 0.0f;
}

extern "C" int cuda_dropout_forward(long count, float p, uint64_t seed, DropoutAt at, const float *x, float *y,
                                    uint8_t *mask) {
    dropout_fwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, p, 1.0f / (1.0f - p), seed, at, x, y, mask);
    return LAUNCHED("dropout forward");
}
extern "C" int cuda_dropout_backward(long count, float p, const uint8_t *mask, const float *dy, float *dx) {
    dropout_bwd_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, 1.0f / (1.0f - p), mask, dy, dx);
    return LAUNCHED("dropout backward");
}

/* ---- softmax cross-entropy and rank: one block of THREADS per row ---- */
template <typename T, typename Op>
__device__ T block_reduce(T v, T *shared, Op op) { /* a fixed tree: the same order every run */
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int step = THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) shared[threadIdx.x] = op(shared[threadIdx.x], shared[threadIdx.x + step]);
        __syncthreads();
    }
    T r = shared[0];
    __syncthreads();
    return r;
}
struct MaxF { __device__ float operator()(float a, float b) const { return b > a ? b : a; } };
struct SumD { __device__ double operator()(double a, double b) const { return a + b; } };
struct SumI { __device__ int operator()(int a, int b) const { return a + b; } };

__global__ void softmax_xent_k(int n, int classes, const float *logits, const int32_t *labels, float *probs,
                               float *dlogits, float *row_loss) {
    __shared__ float fs[THREADS];
    __shared__ double ds[THREADS];
    int i = blockIdx.x;
    const float *z = logits + (long)i * classes;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < classes; j += THREADS) m = z[j] > m ? z[j] : m;
    m = block_reduce(m, fs, MaxF());
    double sum = 0.0;
    for (int j = threadIdx.x; j < classes; j += THREADS) sum += exp((double)z[j] - m);
    sum = block_reduce(sum, ds, SumD());
    double log_sum = log(sum);
    int label = labels[i];
    for (int j = threadIdx.x; j < classes; j += THREADS) {
        float p = (float)exp((double)z[j] - m - log_sum);
        probs[(long)i * classes + j] = p;
        if (dlogits) dlogits[(long)i * classes + j] = (p - (j == label ? 1.0f : 0.0f)) / n;
    }
    if (threadIdx.x == 0)
        row_loss[i] = label >= 0 && label < classes ? (float)(log_sum - ((double)z[label] - m)) : NAN;
}

__global__ void rank_k(int classes, const float *probs, const int32_t *labels, int32_t *rank) {
    __shared__ int is[THREADS];
    int i = blockIdx.x, label = labels[i];
    const float *p = probs + (long)i * classes;
    int count = 0;
    if (label >= 0 && label < classes)
        for (int j = threadIdx.x; j < classes; j += THREADS) count += j != label && p[j] >= p[label];
    count = block_reduce(count, is, SumI());
    if (threadIdx.x == 0) rank[i] = label >= 0 && label < classes ? count : classes;
}

extern "C" int cuda_softmax_xent(int n, int classes, const float *logits, const int32_t *labels, float *probs,
                                 float *dlogits, float *row_loss) {
    if (n < 1) return 0;
    softmax_xent_k<<<n, THREADS, 0, g_cuda_stream>>>(n, classes, logits, labels, probs, dlogits, row_loss);
    return LAUNCHED("softmax cross-entropy");
}

extern "C" int cuda_true_class_rank(int n, int classes, const float *probs, const int32_t *labels, int32_t *rank) {
    if (n < 1) return 0;
    rank_k<<<n, THREADS, 0, g_cuda_stream>>>(classes, probs, labels, rank);
    return LAUNCHED("true class rank");
}

/* ---- SGD over the parameter block ---- */
__global__ void sgd_k(long count, float *w, const float *g, float *v, float lr, float momentum, float wd) {
    GRID_STRIDE(i, count) {
        float vi = momentum * v[i] - wd * lr * w[i] - lr * g[i];
        v[i] = vi;
        w[i] += vi;
    }
}

extern "C" int cuda_sgd_update(size_t n, float *w, const float *grad, float *v, float lr, float momentum,
                               float weight_decay) {
    sgd_k<<<blocks_for((long)n), THREADS, 0, g_cuda_stream>>>((long)n, w, grad, v, lr, momentum, weight_decay);
    return LAUNCHED("SGD update");
}
