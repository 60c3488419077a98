/* gpu_net.cu: the network on the GPU (see gpu_net.h): cuDNN convolutions with groups, cuBLAS
 * products for the fully connected layers, our kernels for everything else, all on one stream.
 * Mirrors net.c layer by layer, with its fusions: a ReLU after a convolution is applied with the
 * bias, a ReLU before an LRN has its backward pass done by the LRN. In bf16 mode the convolutions
 * and products take bfloat16 copies of their operands (cast kernels around them, the weights'
 * copy refreshed by the SGD step) and everything else stays float32. */
#include "cuda_internal.h"
#include "gpu_net.h"
#include "gpu_libs.h"
#include <cuda_bf16.h>
#include <stdlib.h>
#include <string.h>

typedef struct GpuLayer {
    float *out;    /* (max_batch, out_c, out_h, out_w); a fused ReLU shares its convolution's */
    void *aux;     /* LRN scale, pool argmax, dropout mask */
    int nd;        /* batch the descriptors are set for */
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
} GpuLayer;

struct GpuNet {
    Net *net;
    GpuMath math;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    float *params, *grads, *momentum, *input, *probs, *dlogits, *row_loss, *dbuf[2];
    /* the input batch, double-buffered: the next batch is copied on copy_stream into inbuf[cur ^ 1]
     * while the compute stream still works on inbuf[cur] (input = inbuf[cur]) */
    float *inbuf[2];
    int cur;
    cudaStream_t copy_stream;
    cudaEvent_t copied[2], used[2];
    int32_t *labels;
    __nv_bfloat16 *params16, *s16[3]; /* bf16 mode: the weights' copy; scratch for cast operands */
    size_t w16_off[MAX_LAYERS];       /* each layer's weights in params16, 256-byte aligned */
    void *ws;
    size_t ws_bytes, input_bytes;
    int n, train, pinned;
    GpuLayer layers[MAX_LAYERS];
};

static int dnn_check(cudnnStatus_t st, const char *what) {
    return st == CUDNN_STATUS_SUCCESS ? 0 : an_error("cuDNN: %s: %s", what, lib.cudnnGetErrorString(st));
}
static int blas_check(cublasStatus_t st, const char *what) {
    return st == CUBLAS_STATUS_SUCCESS ? 0 : an_error("cuBLAS: %s: status %d", what, (int)st);
}

/* ---- small kernels of the network's own ---- */
#define GRID_STRIDE(i, count) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (count); \
                                   i += (long)gridDim.x * blockDim.x)

__global__ void bias_k(long count, int plane, int channels, const float *b, float *y, int relu) {
    GRID_STRIDE(e, count) {
        float v = y[e] + b[(e / plane) % channels];
        y[e] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}

/* db[o] = sum over images and positions of dy (n, channels, plane): one block per channel, float64
 * partial sums in a fixed tree */
__global__ void bias_grad_k(int n, int channels, int plane, const float *dy, float *db) {
    __shared__ double part[THREADS];
    int o = blockIdx.x;
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        const float *p = dy + ((long)i * channels + o) * plane;
        for (int q = threadIdx.x; q < plane; q += THREADS) acc += p[q];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int step = THREADS / 2; step > 0; step /= 2) {
        if (threadIdx.x < step) part[threadIdx.x] += part[threadIdx.x + step];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[o] = (float)part[0];
}

__global__ void tanh_fwd_k(long count, const float *x, float *y) { GRID_STRIDE(i, count) y[i] = tanhf(x[i]); }
__global__ void tanh_bwd_k(long count, const float *y, const float *dy, float *dx) {
    GRID_STRIDE(i, count) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* adaptive average pooling, PyTorch's bins (pool.c) */
__device__ __forceinline__ int bin_start(int i, int in, int out) { return (i * in) / out; }
__device__ __forceinline__ int bin_end(int i, int in, int out) { return ((i + 1) * in + out - 1) / out; }
__global__ void avgpool_fwd_k(long count, int h, int w, int oh, int ow, const float *x, float *y) {
    GRID_STRIDE(o, count) {
        int ox = (int)(o % ow), oy = (int)((o / ow) % oh);
        const float *xp = x + (o / ((long)oh * ow)) * h * w;
        int y0 = bin_start(oy, h, oh), y1 = bin_end(oy, h, oh), x0 = bin_start(ox, w, ow), x1 = bin_end(ox, w, ow);
        float acc = 0.0f;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) acc += xp[iy * w + ix];
        y[o] = acc / (float)((y1 - y0) * (x1 - x0));
    }
}
/* each input gathers the bins that contain it, in the order pool.c scatters them */
__global__ void avgpool_bwd_k(long count, int h, int w, int oh, int ow, const float *dy, float *dx) {
    GRID_STRIDE(e, count) {
        int ix = (int)(e % w), iy = (int)((e / w) % h);
        const float *dp = dy + (e / ((long)h * w)) * oh * ow;
        float acc = 0.0f;
        for (int oy = 0; oy < oh; oy++) {
            int y0 = bin_start(oy, h, oh), y1 = bin_end(oy, h, oh);
            if (iy < y0 || iy >= y1) continue;
            for (int ox = 0; ox < ow; ox++) {
                int x0 = bin_start(ox, w, ow), x1 = bin_end(ox, w, ow);
                if (ix >= x0 && ix < x1) acc += dp[oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
            }
        }
        dx[e] = acc;
    }
}

/* ---- bf16 mode: casts ---- */
__global__ void to_bf16_k(long count, const float *x, __nv_bfloat16 *y) {
    GRID_STRIDE(i, count) y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void from_bf16_k(long count, const __nv_bfloat16 *x, float *y) {
    GRID_STRIDE(i, count) y[i] = __bfloat162float(x[i]);
}
/* y = float(y16) + b, ReLU'd if relu: a bf16 convolution's output into the float32 activations */
__global__ void bias_from_bf16_k(long count, int plane, int channels, const __nv_bfloat16 *y16, const float *b,
                                 float *y, int relu) {
    GRID_STRIDE(e, count) {
        float v = __bfloat162float(y16[e]) + b[(e / plane) % channels];
        y[e] = relu && !(v > 0.0f) ? 0.0f : v;
    }
}
static int to_bf16(const float *x, __nv_bfloat16 *y, long count) {
    to_bf16_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, x, y);
    return LAUNCHED("cast to bfloat16");
}
static int from_bf16(const __nv_bfloat16 *x, float *y, long count) {
    from_bf16_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, x, y);
    return LAUNCHED("cast from bfloat16");
}

/* C (m, n) = op(A) op(B) column-major, A and B bf16, C float32, float32 sums on tensor cores */
static int gemm_bf16(GpuNet *g, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                     const __nv_bfloat16 *A, int lda, const __nv_bfloat16 *B, int ldb, float *C, int ldc,
                     const char *what) {
    const float one = 1.0f, zero = 0.0f;
    return blas_check(lib.cublasGemmEx(g->blas, ta, tb, m, n, k, &one, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb, &zero,
                                       C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), what);
}

/* ---- setup ---- */
static size_t out_count(const Layer *l) { return (size_t)l->out_c * l->out_h * l->out_w; }

static int set_descriptors(GpuNet *g, int i, int n) {
    const Layer *l = &g->net->layers[i];
    GpuLayer *gl = &g->layers[i];
    if (gl->nd == n) return 0;
    gl->nd = 0;
    cudnnDataType_t t = g->math == GPU_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    if (dnn_check(lib.cudnnSetTensor4dDescriptor(gl->x_desc, CUDNN_TENSOR_NCHW, t, n, l->in_c, l->in_h, l->in_w),
                  "input descriptor") ||
        dnn_check(lib.cudnnSetTensor4dDescriptor(gl->y_desc, CUDNN_TENSOR_NCHW, t, n, l->out_c, l->out_h, l->out_w),
                  "output descriptor"))
        return -1;
    gl->nd = n;
    return 0;
}

/* Whether a measured algorithm may be used: it ran; for the backward passes it is deterministic (a
 * training run repeats exactly); in fp32 mode it is not an FFT or Winograd transform, whose
 * rounding differs from a direct sum's by more than the 1e-4 the CPU comparison allows. */
static int usable(cudnnStatus_t st, cudnnDeterminism_t det, int need_det, int transform, GpuMath math) {
    return st == CUDNN_STATUS_SUCCESS && (!need_det || det == CUDNN_DETERMINISTIC) && !(math == GPU_FP32 && transform);
}

/* The fastest usable algorithm of each pass, measured by cuDNN at max_batch, and the math type it
 * was measured with (TF32 mode: set before each pass, as the descriptor serves all three). */
static int choose_algorithms(GpuNet *g, int i) {
    GpuLayer *gl = &g->layers[i];
    int got = 0, k;
    cudnnConvolutionFwdAlgoPerf_t f[8];
    cudnnConvolutionBwdDataAlgoPerf_t d[8];
    cudnnConvolutionBwdFilterAlgoPerf_t w[8];
    if (dnn_check(lib.cudnnFindConvolutionForwardAlgorithm(g->dnn, gl->x_desc, gl->w_desc, gl->conv, gl->y_desc, 8,
                                                           &got, f), "choosing the forward algorithm"))
        return -1;
    for (k = 0; k < got; k++) {
        cudnnConvolutionFwdAlgo_t a = f[k].algo;
        int transform = a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                        a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
        if (usable(f[k].status, f[k].determinism, 0, transform, g->math)) break;
    }
    if (k == got) return an_error("cuDNN: no usable forward algorithm for layer %d", i + 1);
    gl->fwd = f[k].algo, gl->fwd_math = f[k].mathType;
    size_t need = f[k].memory;
    got = 0; /* the first layer's input gradient is never computed: no search for it */
    if (i > 0 && dnn_check(lib.cudnnFindConvolutionBackwardDataAlgorithm(g->dnn, gl->w_desc, gl->y_desc, gl->conv,
                                                                         gl->x_desc, 8, &got, d),
                           "choosing the backward data algorithm"))
        return -1;
    for (k = 0; k < got; k++) {
        cudnnConvolutionBwdDataAlgo_t a = d[k].algo;
        int transform = a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
                        a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
                        a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
        if (usable(d[k].status, d[k].determinism, 1, transform, g->math)) break;
    }
    if (i > 0) {
        if (k == got) return an_error("cuDNN: no usable deterministic backward data algorithm for layer %d", i + 1);
        gl->bwd_data = d[k].algo, gl->bwd_data_math = d[k].mathType;
        if (d[k].memory > need) need = d[k].memory;
    }
    if (dnn_check(lib.cudnnFindConvolutionBackwardFilterAlgorithm(g->dnn, gl->x_desc, gl->y_desc, gl->conv, gl->w_desc,
                                                                  8, &got, w), "choosing the backward filter algorithm"))
        return -1;
    for (k = 0; k < got; k++) {
        cudnnConvolutionBwdFilterAlgo_t a = w[k].algo;
        int transform = a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
                        a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
        if (usable(w[k].status, w[k].determinism, 1, transform, g->math)) break;
    }
    if (k == got) return an_error("cuDNN: no usable deterministic backward filter algorithm for layer %d", i + 1);
    gl->bwd_filter = w[k].algo, gl->bwd_filter_math = w[k].mathType;
    if (w[k].memory > need) need = w[k].memory;
    if (need > g->ws_bytes) g->ws_bytes = need;
    return 0;
}

/* before a pass: the math type its algorithm was measured with (fp32 mode: always FMA only) */
static int pass_math(GpuNet *g, GpuLayer *gl, cudnnMathType_t measured) {
    cudnnMathType_t m = g->math == GPU_FP32 ? CUDNN_FMA_MATH : measured;
    return dnn_check(lib.cudnnSetConvolutionMathType(gl->conv, m), "math type");
}

static int setup_conv(GpuNet *g, int i) {
    const Layer *l = &g->net->layers[i];
    const LayerSpec *s = l->spec;
    GpuLayer *gl = &g->layers[i];
    if (dnn_check(lib.cudnnCreateTensorDescriptor(&gl->x_desc), "descriptor") ||
        dnn_check(lib.cudnnCreateTensorDescriptor(&gl->y_desc), "descriptor") ||
        dnn_check(lib.cudnnCreateFilterDescriptor(&gl->w_desc), "descriptor") ||
        dnn_check(lib.cudnnCreateConvolutionDescriptor(&gl->conv), "descriptor") ||
        dnn_check(lib.cudnnSetFilter4dDescriptor(gl->w_desc, g->math == GPU_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT,
                                                 CUDNN_TENSOR_NCHW, l->out_c,
                                             l->in_c / s->groups, s->k, s->k), "filter descriptor") ||
        dnn_check(lib.cudnnSetConvolution2dDescriptor(gl->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT), "convolution") ||
        dnn_check(lib.cudnnSetConvolutionGroupCount(gl->conv, s->groups), "groups") ||
        dnn_check(lib.cudnnSetConvolutionMathType(gl->conv, g->math == GPU_FP32   ? CUDNN_FMA_MATH
                                                            : g->math == GPU_BF16 ? CUDNN_TENSOR_OP_MATH
                                                                                  : CUDNN_DEFAULT_MATH),
                  "math type") ||
        set_descriptors(g, i, g->net->max_batch))
        return -1;
    return choose_algorithms(g, i);
}

extern "C" GpuNet *gpu_net_create(Net *net, GpuMath math) {
    if (cuda_init(NULL, 0) || gpu_libs_load()) return NULL;
    GpuNet *g = (GpuNet *)calloc(1, sizeof *g);
    if (!g) { an_error("out of memory (GPU network)"); return NULL; }
    g->net = net, g->math = math;
    int B = net->max_batch;
    size_t largest = (size_t)net->in_c * net->in_size * net->in_size;
    for (int i = 0; i < net->nlayers; i++)
        if (out_count(&net->layers[i]) > largest) largest = out_count(&net->layers[i]);
    if (cuda_check(cudaStreamCreateWithFlags(&g->copy_stream, cudaStreamNonBlocking), "creating a stream") ||
        cuda_check(cudaEventCreateWithFlags(&g->copied[0], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->copied[1], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->used[0], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->used[1], cudaEventDisableTiming), "creating an event"))
        goto fail;
    if (dnn_check(lib.cudnnCreate(&g->dnn), "creating a handle") || dnn_check(lib.cudnnSetStream(g->dnn, g_cuda_stream), "stream") ||
        blas_check(lib.cublasCreate(&g->blas), "creating a handle") || blas_check(lib.cublasSetStream(g->blas, g_cuda_stream), "stream") ||
        blas_check(lib.cublasSetMathMode(g->blas, math == GPU_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                   "math mode"))
        goto fail;
    if (!(g->params = (float *)cuda_alloc(net->nparams * 4, "parameters")) ||
        !(g->grads = (float *)cuda_alloc(net->nparams * 4, "gradients")) ||
        !(g->momentum = (float *)cuda_alloc(net->nparams * 4, "momentum")) ||
        !(g->inbuf[0] = (float *)cuda_alloc((size_t)B * net->in_c * net->in_size * net->in_size * 4, "input batch")) ||
        !(g->inbuf[1] = (float *)cuda_alloc((size_t)B * net->in_c * net->in_size * net->in_size * 4, "input batch")) ||
        !(g->probs = (float *)cuda_alloc((size_t)B * net->classes * 4, "probabilities")) ||
        !(g->dlogits = (float *)cuda_alloc((size_t)B * net->classes * 4, "logit gradients")) ||
        !(g->row_loss = (float *)cuda_alloc((size_t)B * 4, "losses")) ||
        !(g->labels = (int32_t *)cuda_alloc((size_t)B * 4, "labels")) ||
        !(g->dbuf[0] = (float *)cuda_alloc((size_t)B * largest * 4, "activation gradients")) ||
        !(g->dbuf[1] = (float *)cuda_alloc((size_t)B * largest * 4, "activation gradients")))
        goto fail;
    if (math == GPU_BF16) {
        /* s16[0], s16[1]: activations and their gradients; s16[2] also a layer's weight gradient */
        size_t act = (size_t)B * largest, off16 = 0, wmax = 0;
        for (int i = 0; i < net->nlayers; i++) {
            g->w16_off[i] = off16;
            off16 += (net->layers[i].w_size + 127) / 128 * 128;
            if (net->layers[i].w_size > wmax) wmax = net->layers[i].w_size;
        }
        if (!(g->params16 = (__nv_bfloat16 *)cuda_alloc(off16 * 2 + 2, "bfloat16 weights"))) goto fail;
        for (int k = 0; k < 3; k++)
            if (!(g->s16[k] = (__nv_bfloat16 *)cuda_alloc((k == 2 && wmax > act ? wmax : act) * 2, "bfloat16 operands")))
                goto fail;
    }
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        GpuLayer *gl = &g->layers[i];
        size_t count = (size_t)B * out_count(l);
        if (l->spec->kind == LAYER_RELU && l->relu_in_conv) gl->out = g->layers[i - 1].out;
        else if (!(gl->out = (float *)cuda_alloc(count * 4, "activations"))) goto fail;
        size_t aux = l->spec->kind == LAYER_LRN ? count * 4 : l->spec->kind == LAYER_MAXPOOL ? count * 4
                     : l->spec->kind == LAYER_DROPOUT ? count : 0;
        if (aux && !(gl->aux = cuda_alloc(aux, "layer state"))) goto fail;
    }
    g->input = g->inbuf[0];
    /* the input batch pinned, so its copies are DMA from host memory (best effort: pageable works) */
    g->input_bytes = (size_t)B * net->in_c * net->in_size * net->in_size * 4;
    if (cudaHostRegister(net->input, g->input_bytes, cudaHostRegisterDefault) == cudaSuccess) g->pinned = 1;
    else (void)cudaGetLastError();
    /* parameters in place before the algorithm search, which runs the convolutions */
    if (gpu_net_put_params(g) || gpu_net_put_momentum(g, NULL)) goto fail;
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i].spec->kind == LAYER_CONV && setup_conv(g, i)) goto fail;
    if (g->ws_bytes && !(g->ws = cuda_alloc(g->ws_bytes, "cuDNN workspace"))) goto fail;
    return g;
fail:
    gpu_net_free(g);
    return NULL;
}

extern "C" void gpu_net_free(GpuNet *g) {
    if (!g) return;
    for (int i = 0; i < g->net->nlayers; i++) {
        GpuLayer *gl = &g->layers[i];
        const Layer *l = &g->net->layers[i];
        if (!(l->spec->kind == LAYER_RELU && l->relu_in_conv)) cuda_free(gl->out);
        cuda_free(gl->aux);
        if (gl->x_desc) lib.cudnnDestroyTensorDescriptor(gl->x_desc);
        if (gl->y_desc) lib.cudnnDestroyTensorDescriptor(gl->y_desc);
        if (gl->w_desc) lib.cudnnDestroyFilterDescriptor(gl->w_desc);
        if (gl->conv) lib.cudnnDestroyConvolutionDescriptor(gl->conv);
    }
    cudaStreamSynchronize(g->copy_stream);
    float *bufs[] = {g->params, g->grads, g->momentum, g->inbuf[0], g->inbuf[1], g->probs, g->dlogits, g->row_loss,
                     g->dbuf[0], g->dbuf[1]};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) cuda_free(bufs[k]);
    cuda_free(g->labels);
    cuda_free(g->params16);
    for (int k = 0; k < 3; k++) cuda_free(g->s16[k]);
    cuda_free(g->ws);
    if (g->pinned) cudaHostUnregister(g->net->input);
    for (int k = 0; k < 2; k++) {
        if (g->copied[k]) cudaEventDestroy(g->copied[k]);
        if (g->used[k]) cudaEventDestroy(g->used[k]);
    }
    if (g->copy_stream) cudaStreamDestroy(g->copy_stream);
    if (g->dnn) lib.cudnnDestroy(g->dnn);
    if (g->blas) lib.cublasDestroy(g->blas);
    free(g);
}

/* bf16 mode: the weights' bf16 copy from the float32 master weights (biases stay float32) */
static int refresh_bf16(GpuNet *g) {
    for (int i = 0; g->params16 && i < g->net->nlayers; i++) {
        const Layer *l = &g->net->layers[i];
        if (l->w_size && to_bf16(g->params + l->w_off, g->params16 + g->w16_off[i], (long)l->w_size)) return -1;
    }
    return 0;
}

extern "C" int gpu_net_put_params(GpuNet *g) {
    return cuda_upload(g->params, g->net->params, g->net->nparams * 4) || refresh_bf16(g) ? -1 : 0;
}
extern "C" int gpu_net_get_params(GpuNet *g) { return cuda_download(g->net->params, g->params, g->net->nparams * 4); }
extern "C" int gpu_net_get_grads(GpuNet *g) { return cuda_download(g->net->grads, g->grads, g->net->nparams * 4); }
extern "C" int gpu_net_put_momentum(GpuNet *g, const float *v) {
    return v ? cuda_upload(g->momentum, v, g->net->nparams * 4) : cuda_memset0(g->momentum, g->net->nparams * 4);
}
extern "C" int gpu_net_get_momentum(GpuNet *g, float *v) { return cuda_download(v, g->momentum, g->net->nparams * 4); }
extern "C" int gpu_net_sync(GpuNet *g) { (void)g; return cuda_sync(); }

/* the workspace a call needs at batch n (it can differ from max_batch's), grown when short */
static int workspace(GpuNet *g, size_t need) {
    if (need <= g->ws_bytes) return 0;
    if (cuda_sync()) return -1;
    cuda_free(g->ws);
    g->ws_bytes = 0;
    if (!(g->ws = cuda_alloc(need, "cuDNN workspace"))) return -1;
    g->ws_bytes = need;
    return 0;
}

/* ---- forward, loss, backward, update ---- */
extern "C" int gpu_net_upload(GpuNet *g, const float *host, int n) {
    Net *net = g->net;
    if (n < 1 || n > net->max_batch)
        return an_error("batch of %d does not fit the network's buffers (1..%d)", n, net->max_batch);
    int next = g->cur ^ 1;
    size_t bytes = (size_t)n * net->in_c * net->in_size * net->in_size * 4;
    /* after the passes that read this buffer two batches ago; then the compute stream's next work
     * waits for the copy */
    if (cuda_check(cudaStreamWaitEvent(g->copy_stream, g->used[next], 0), "ordering the input copy") ||
        cuda_check(cudaMemcpyAsync(g->inbuf[next], host, bytes, cudaMemcpyHostToDevice, g->copy_stream),
                   "copy of the input batch") ||
        cuda_check(cudaEventRecord(g->copied[next], g->copy_stream), "recording an event") ||
        cuda_check(cudaStreamWaitEvent(g_cuda_stream, g->copied[next], 0), "ordering the input copy"))
        return -1;
    g->cur = next, g->input = g->inbuf[next];
    return 0;
}

extern "C" int gpu_net_put_input(GpuNet *g, int n) { return gpu_net_upload(g, g->net->input, n); }

/* the passes over the current input buffer are queued: its next copy may follow them */
static int input_used(GpuNet *g) {
    return cuda_check(cudaEventRecord(g->used[g->cur], g_cuda_stream), "recording an event");
}

extern "C" int gpu_net_get_probs(GpuNet *g) {
    return cuda_download(g->net->probs, g->probs, (size_t)g->n * g->net->classes * 4);
}

extern "C" int gpu_net_forward(GpuNet *g, int n, int train, uint64_t dropout_seed, int timing) {
    Net *net = g->net;
    if (n < 1 || n > net->max_batch)
        return an_error("batch of %d does not fit the network's buffers (1..%d)", n, net->max_batch);
    g->n = n, g->train = train;
    net->batch = n, net->train = train;
    const float *x = g->input;
    int bf = g->math == GPU_BF16;
    const float one = 1.0f, zero = 0.0f;
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layers[i];
        GpuLayer *gl = &g->layers[i];
        const LayerSpec *s = l->spec;
        const float *w = g->params + l->w_off, *b = g->params + l->b_off;
        long in_count = (long)n * l->in_c * l->in_h * l->in_w, out_n = (long)n * (long)out_count(l);
        double t0 = timing && !cuda_sync() ? an_now() : 0.0;
        int rc = 0;
        switch (s->kind) {
        case LAYER_CONV: { /* bf16: x cast into s16[0], the product into s16[1], cast back with the bias */
            size_t need = 0;
            const void *cx = x, *cw = w;
            void *cy = gl->out;
            if (bf) rc = to_bf16(x, g->s16[0], in_count), cx = g->s16[0], cw = g->params16 + g->w16_off[i], cy = g->s16[1];
            rc = rc || set_descriptors(g, i, n) || pass_math(g, gl, gl->fwd_math) ||
                 dnn_check(lib.cudnnGetConvolutionForwardWorkspaceSize(g->dnn, gl->x_desc, gl->w_desc, gl->conv, gl->y_desc,
                                                                       gl->fwd, &need), "workspace size") ||
                 workspace(g, need) ||
                 dnn_check(lib.cudnnConvolutionForward(g->dnn, &one, gl->x_desc, cx, gl->w_desc, cw, gl->conv, gl->fwd,
                                                       g->ws, g->ws_bytes, &zero, gl->y_desc, cy), "convolution forward");
            if (!rc && bf) {
                bias_from_bf16_k<<<blocks_for(out_n), THREADS, 0, g_cuda_stream>>>(
                    out_n, l->out_h * l->out_w, l->out_c, g->s16[1], b, gl->out, l->relu_in_conv);
                rc = LAUNCHED("bias");
            } else if (!rc) {
                bias_k<<<blocks_for(out_n), THREADS, 0, g_cuda_stream>>>(out_n, l->out_h * l->out_w, l->out_c, b, gl->out,
                                                                         l->relu_in_conv);
                rc = LAUNCHED("bias");
            }
            break;
        }
        case LAYER_LINEAR: /* y^T (out, n) = w (out, in) x^T, column-major as cuBLAS sees it */
            if (bf)
                rc = to_bf16(x, g->s16[0], in_count) ||
                     gemm_bf16(g, CUBLAS_OP_T, CUBLAS_OP_N, l->out_c, n, l->fan_in, g->params16 + g->w16_off[i], l->fan_in,
                               g->s16[0], l->fan_in, gl->out, l->out_c, "linear forward");
            else
                rc = blas_check(lib.cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, l->out_c, n, l->fan_in, &one, w, l->fan_in, x,
                                        l->fan_in, &zero, gl->out, l->out_c), "linear forward");
            if (!rc) {
                bias_k<<<blocks_for(out_n), THREADS, 0, g_cuda_stream>>>(out_n, 1, l->out_c, b, gl->out, 0);
                rc = LAUNCHED("bias");
            }
            break;
        case LAYER_RELU:
            if (!l->relu_in_conv) rc = cuda_relu_forward(in_count, x, gl->out);
            break;
        case LAYER_TANH:
            tanh_fwd_k<<<blocks_for(in_count), THREADS, 0, g_cuda_stream>>>(in_count, x, gl->out);
            rc = LAUNCHED("tanh");
            break;
        case LAYER_LRN: rc = cuda_lrn_forward(n, l->in_c, l->in_h * l->in_w, PAPER_LRN, x, gl->out, (float *)gl->aux); break;
        case LAYER_MAXPOOL:
            rc = cuda_maxpool_forward(n, l->in_c, l->in_h, l->in_w, s->k, s->stride, x, gl->out, (int32_t *)gl->aux);
            break;
        case LAYER_AVGPOOL:
            avgpool_fwd_k<<<blocks_for(out_n), THREADS, 0, g_cuda_stream>>>(out_n, l->in_h, l->in_w, l->out_h, l->out_w,
                                                                            x, gl->out);
            rc = LAUNCHED("average pooling");
            break;
        case LAYER_DROPOUT:
            if (train && s->p > 0.0f)
                rc = cuda_dropout_forward(in_count, s->p, an_hash64(dropout_seed, (uint64_t)i), x, gl->out,
                                          (uint8_t *)gl->aux);
            else
                rc = cuda_check(cudaMemcpyAsync(gl->out, x, in_count * 4, cudaMemcpyDeviceToDevice, g_cuda_stream), "copy");
            break;
        }
        if (rc) return -1;
        if (timing) {
            if (cuda_sync()) return -1;
            l->fwd_seconds += an_now() - t0;
        }
        x = gl->out;
    }
    return input_used(g);
}

extern "C" int gpu_net_loss(GpuNet *g, const int *labels, float *loss) {
    Net *net = g->net;
    int n = g->n, k = net->classes;
    const float *logits = g->layers[net->nlayers - 1].out;
    int32_t *lab = (int32_t *)malloc((size_t)n * 4);
    float *rows = (float *)malloc((size_t)n * 4);
    int rc = !lab || !rows ? an_error("out of memory (labels)") : 0;
    for (int i = 0; !rc && i < n; i++) lab[i] = labels ? labels[i] : 0;
    if (!rc) rc = cuda_upload(g->labels, lab, (size_t)n * 4);
    if (!rc) rc = cuda_softmax_xent(n, k, logits, g->labels, g->probs, labels ? g->dlogits : NULL, g->row_loss);
    if (!rc && labels && loss) {
        rc = cuda_download(rows, g->row_loss, (size_t)n * 4);
        double total = 0.0;
        for (int i = 0; i < n; i++) total += rows[i];
        *loss = (float)(total / n);
    }
    free(lab), free(rows);
    return rc;
}

extern "C" int gpu_net_backward(GpuNet *g, int timing) {
    Net *net = g->net;
    int n = g->n, which = 0, bf = g->math == GPU_BF16;
    const float *dy = g->dlogits;
    const float one = 1.0f, zero = 0.0f;
    for (int i = net->nlayers - 1; i >= 0; i--) {
        Layer *l = &net->layers[i];
        GpuLayer *gl = &g->layers[i];
        const LayerSpec *s = l->spec;
        const float *x = i ? g->layers[i - 1].out : g->input;
        float *dx = i ? g->dbuf[which] : NULL;
        const float *w = g->params + l->w_off;
        float *dw = g->grads + l->w_off, *db = g->grads + l->b_off;
        long in_count = (long)n * l->in_c * l->in_h * l->in_w;
        if (!dx && s->kind != LAYER_CONV && s->kind != LAYER_LINEAR) break;
        if (s->kind == LAYER_RELU && l->relu_in_lrn) continue;
        double t0 = timing && !cuda_sync() ? an_now() : 0.0;
        int rc = 0;
        switch (s->kind) {
        case LAYER_CONV: { /* each pass: its math type, its workspace (grown if short), the pass; bf16: x and
                            * dy cast into s16[0] and s16[1], each gradient made in s16[2] and cast back */
            size_t need = 0;
            long out_n = (long)n * (long)out_count(l);
            const void *cx = x, *cdy = dy, *cw = w;
            void *cdw = dw, *cdx = dx;
            if (bf) {
                rc = to_bf16(x, g->s16[0], in_count) || to_bf16(dy, g->s16[1], out_n);
                cx = g->s16[0], cdy = g->s16[1], cw = g->params16 + g->w16_off[i], cdw = cdx = g->s16[2];
            }
            rc = rc || set_descriptors(g, i, n) || pass_math(g, gl, gl->bwd_filter_math) ||
                 dnn_check(lib.cudnnGetConvolutionBackwardFilterWorkspaceSize(g->dnn, gl->x_desc, gl->y_desc, gl->conv,
                                                                              gl->w_desc, gl->bwd_filter, &need),
                           "workspace size") ||
                 workspace(g, need) ||
                 dnn_check(lib.cudnnConvolutionBackwardFilter(g->dnn, &one, gl->x_desc, cx, gl->y_desc, cdy, gl->conv,
                                                              gl->bwd_filter, g->ws, g->ws_bytes, &zero, gl->w_desc, cdw),
                           "convolution weight gradient") ||
                 (bf && from_bf16(g->s16[2], dw, (long)l->w_size));
            if (!rc && dx)
                rc = pass_math(g, gl, gl->bwd_data_math) ||
                     dnn_check(lib.cudnnGetConvolutionBackwardDataWorkspaceSize(g->dnn, gl->w_desc, gl->y_desc, gl->conv,
                                                                                gl->x_desc, gl->bwd_data, &need),
                               "workspace size") ||
                     workspace(g, need) ||
                     dnn_check(lib.cudnnConvolutionBackwardData(g->dnn, &one, gl->w_desc, cw, gl->y_desc, cdy, gl->conv,
                                                                gl->bwd_data, g->ws, g->ws_bytes, &zero, gl->x_desc, cdx),
                               "convolution input gradient") ||
                     (bf && from_bf16(g->s16[2], dx, in_count));
            if (!rc) {
                bias_grad_k<<<l->out_c, THREADS, 0, g_cuda_stream>>>(n, l->out_c, l->out_h * l->out_w, dy, db);
                rc = LAUNCHED("bias gradient");
            }
            break;
        }
        case LAYER_LINEAR: /* dw^T (in, out) = x^T dy; dx^T (in, n) = w^T dy^T; db = column sums of dy */
            if (bf)
                rc = to_bf16(x, g->s16[0], in_count) || to_bf16(dy, g->s16[1], (long)n * l->out_c) ||
                     gemm_bf16(g, CUBLAS_OP_N, CUBLAS_OP_T, l->fan_in, l->out_c, n, g->s16[0], l->fan_in, g->s16[1],
                               l->out_c, dw, l->fan_in, "linear weight gradient") ||
                     (dx && gemm_bf16(g, CUBLAS_OP_N, CUBLAS_OP_N, l->fan_in, n, l->out_c, g->params16 + g->w16_off[i],
                                      l->fan_in, g->s16[1], l->out_c, dx, l->fan_in, "linear input gradient"));
            else
                rc = blas_check(lib.cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, l->fan_in, l->out_c, n, &one, x, l->fan_in, dy,
                                        l->out_c, &zero, dw, l->fan_in), "linear weight gradient") ||
                 (dx && blas_check(lib.cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, l->fan_in, n, l->out_c, &one, w,
                                               l->fan_in, dy, l->out_c, &zero, dx, l->fan_in), "linear input gradient"));
            if (!rc) {
                bias_grad_k<<<l->out_c, THREADS, 0, g_cuda_stream>>>(n, l->out_c, 1, dy, db);
                rc = LAUNCHED("bias gradient");
            }
            break;
        case LAYER_RELU: rc = cuda_relu_backward(in_count, gl->out, dy, dx); break;
        case LAYER_TANH:
            tanh_bwd_k<<<blocks_for(in_count), THREADS, 0, g_cuda_stream>>>(in_count, gl->out, dy, dx);
            rc = LAUNCHED("tanh backward");
            break;
        case LAYER_LRN:
            rc = cuda_lrn_backward(n, l->in_c, l->in_h * l->in_w, PAPER_LRN, x, gl->out, (const float *)gl->aux, dy, dx,
                                   l->relu_in_lrn);
            break;
        case LAYER_MAXPOOL:
            rc = cuda_maxpool_backward(n, l->in_c, l->in_h, l->in_w, s->k, s->stride, (const int32_t *)gl->aux, dy, dx);
            break;
        case LAYER_AVGPOOL:
            avgpool_bwd_k<<<blocks_for(in_count), THREADS, 0, g_cuda_stream>>>(in_count, l->in_h, l->in_w, l->out_h,
                                                                               l->out_w, dy, dx);
            rc = LAUNCHED("average pooling backward");
            break;
        case LAYER_DROPOUT:
            if (g->train && s->p > 0.0f) rc = cuda_dropout_backward(in_count, s->p, (const uint8_t *)gl->aux, dy, dx);
            else rc = cuda_check(cudaMemcpyAsync(dx, dy, in_count * 4, cudaMemcpyDeviceToDevice, g_cuda_stream), "copy");
            break;
        }
        if (rc) return -1;
        if (timing) {
            if (cuda_sync()) return -1;
            l->bwd_seconds += an_now() - t0;
        }
        dy = dx;
        which ^= 1;
    }
    return input_used(g); /* conv1's weight gradient was the last to read it */
}

extern "C" int gpu_net_sgd(GpuNet *g, float lr, float momentum, float weight_decay) {
    return cuda_sgd_update(g->net->nparams, g->params, g->grads, g->momentum, lr, momentum, weight_decay) ||
           refresh_bf16(g) ? -1 : 0;
}
