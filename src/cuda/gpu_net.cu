/* gpu_net.cu: the network on the GPU (see gpu_net.h): cuDNN convolutions with groups, cuBLAS
 * products for the fully connected layers, our kernels for everything else, all on one stream.
 * Mirrors net.c layer by layer, with its fusions: a ReLU after a convolution is applied with the
 * bias, a ReLU before an LRN has its backward pass done by the LRN. In bf16 mode the convolutions
 * and products take bfloat16 copies of their operands (cast kernels around them, the weights'
 * copy refreshed by the SGD step) and everything else stays float32. Each convolution pass runs
 * the best of its measured candidate algorithms that cuDNN accepts at the batch size at hand
 * (conv_choice.h). Host memory the stream reads later (labels) is pinned and owned by the GpuNet.
 * Data parallel (gpu_net_dp_start): each layer's gradients are summed over the ranks by NCCL on a
 * second stream as soon as the backward pass has made them, while the layers below run. */
#include "cuda_internal.h"
#include "conv_choice.h"
#include "gpu_net.h"
#include "gpu_libs.h"
#include <cuda_bf16.h>
#include <stdlib.h>
#include <string.h>

static_assert(CONV_MATH_DEFAULT == (int)CUDNN_DEFAULT_MATH && CONV_MATH_TENSOR == (int)CUDNN_TENSOR_OP_MATH &&
                  CONV_MATH_TENSOR_CONVERT == (int)CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
                  CONV_MATH_FMA == (int)CUDNN_FMA_MATH,
              "conv_choice.h numbers the math types as cuDNN does");

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_FILTER }; /* a convolution's three passes */

typedef struct GpuLayer {
    float *out;    /* (max_batch, out_c, out_h, out_w); a fused ReLU shares its convolution's */
    void *aux;     /* LRN scale, pool argmax, dropout mask */
    int nd;        /* batch the descriptors are set for */
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv;
    ConvChoice pass[3]; /* candidate algorithms of each pass (PASS_*), and which worked at each batch size */
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
    /* pinned host buffers (max_batch): the labels on their way up (reused only once labels_sent,
     * recorded after their copy, has passed) and the rows' losses on their way down */
    int32_t *h_labels;
    float *h_rows;
    cudaEvent_t labels_sent;
    __nv_bfloat16 *params16, *s16[3]; /* bf16 mode: the weights' copy; scratch for cast operands */
    size_t w16_off[MAX_LAYERS];       /* each layer's weights in params16, 256-byte aligned */
    void *ws;
    size_t ws_bytes, input_bytes;
    int n, train, pinned;
    /* data parallel: the communicator and its stream; grads_made is recorded on the compute stream
     * after a layer's gradients, reduced on comm_stream after the latest all-reduce (the update
     * waits for it); dp_failed: NCCL reported an error (the communicator is aborted, not ended) */
    ncclComm_t comm;
    cudaStream_t comm_stream;
    cudaEvent_t grads_made, reduced;
    int dp_failed;
    double dp_bytes;
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

__global__ void scale_k(long count, float f, float *x) { GRID_STRIDE(i, count) x[i] *= f; }

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

static const char *mode_name(GpuMath m) { return m == GPU_TF32 ? "tf32" : m == GPU_BF16 ? "bf16" : "fp32"; }

static int transform_fwd(cudnnConvolutionFwdAlgo_t a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
static int transform_bwd_data(cudnnConvolutionBwdDataAlgo_t a) {
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
static int transform_bwd_filter(cudnnConvolutionBwdFilterAlgo_t a) {
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

/* cuDNN's measurements (any of its three perf structs) as conv_choice.h's */
template <typename P, typename A>
static void to_perf(const P *r, int got, int (*transform)(A), ConvPerf *p) {
    for (int k = 0; k < got; k++) {
        p[k].algo = (int)r[k].algo;
        p[k].ok = r[k].status == CUDNN_STATUS_SUCCESS;
        p[k].deterministic = r[k].determinism == CUDNN_DETERMINISTIC;
        p[k].transform = transform(r[k].algo);
        p[k].math = (int)r[k].mathType;
        p[k].ms = r[k].time;
        p[k].memory = r[k].memory;
    }
}

/* Each pass's candidates, from cuDNN's measurements at max_batch (the descriptor's math type set
 * for the mode: Find may still measure other math types, which conv_choice_init sorts out); the
 * backward passes deterministic (a training run repeats exactly); in fp32 mode no FFT or Winograd
 * transform, whose rounding differs from a direct sum's by more than the 1e-4 the CPU comparison
 * allows. The workspace: the largest the first candidates measured. */
static int choose_algorithms(GpuNet *g, int i) {
    enum { FIND_MAX = 32 }; /* every algorithm, with each math type it may be measured with */
    GpuLayer *gl = &g->layers[i];
    ConvPerf p[FIND_MAX];
    int got = 0;
    {
        cudnnConvolutionFwdAlgoPerf_t r[FIND_MAX];
        if (dnn_check(lib.cudnnFindConvolutionForwardAlgorithm(g->dnn, gl->x_desc, gl->w_desc, gl->conv, gl->y_desc,
                                                               FIND_MAX, &got, r),
                      "measuring the forward algorithms"))
            return -1;
        to_perf(r, got, transform_fwd, p);
        if (!conv_choice_init(&gl->pass[PASS_FWD], p, got, g->math, 0))
            return an_error("cuDNN: layer %d: none of the %d forward algorithms measured is usable in %s mode", i + 1, got,
                            mode_name(g->math));
    }
    if (i > 0) { /* the first layer's input gradient is never computed: no search for it */
        cudnnConvolutionBwdDataAlgoPerf_t r[FIND_MAX];
        if (dnn_check(lib.cudnnFindConvolutionBackwardDataAlgorithm(g->dnn, gl->w_desc, gl->y_desc, gl->conv, gl->x_desc,
                                                                    FIND_MAX, &got, r),
                      "measuring the backward data algorithms"))
            return -1;
        to_perf(r, got, transform_bwd_data, p);
        if (!conv_choice_init(&gl->pass[PASS_BWD_DATA], p, got, g->math, 1))
            return an_error("cuDNN: layer %d: none of the %d backward data algorithms measured is deterministic and "
                            "usable in %s mode", i + 1, got, mode_name(g->math));
    }
    {
        cudnnConvolutionBwdFilterAlgoPerf_t r[FIND_MAX];
        if (dnn_check(lib.cudnnFindConvolutionBackwardFilterAlgorithm(g->dnn, gl->x_desc, gl->y_desc, gl->conv,
                                                                      gl->w_desc, FIND_MAX, &got, r),
                      "measuring the backward filter algorithms"))
            return -1;
        to_perf(r, got, transform_bwd_filter, p);
        if (!conv_choice_init(&gl->pass[PASS_BWD_FILTER], p, got, g->math, 1))
            return an_error("cuDNN: layer %d: none of the %d backward filter algorithms measured is deterministic and "
                            "usable in %s mode", i + 1, got, mode_name(g->math));
    }
    for (int k = 0; k < 3; k++)
        if (gl->pass[k].count && gl->pass[k].cand[0].memory > g->ws_bytes) g->ws_bytes = gl->pass[k].cand[0].memory;
    return 0;
}

/* What cuDNN says when it refuses an algorithm rather than fails: not supported (for this shape,
 * batch size, math type, ...: cuDNN 9 has a family of such codes), or memory (or a run-time
 * compiled kernel) it could not get. The next candidate may then work. */
static int refusal(cudnnStatus_t st) {
#if CUDNN_MAJOR >= 9
    return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED ||
           st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
           st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ||
           st == CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED;
#else
    return st == CUDNN_STATUS_NOT_SUPPORTED || st == CUDNN_STATUS_ALLOC_FAILED;
#endif
}
static int dnn_try(cudnnStatus_t st, const char *what) {
    if (st == CUDNN_STATUS_SUCCESS) return CONV_TRY_DONE;
    an_error("cuDNN: %s: %s", what, lib.cudnnGetErrorString(st));
    return refusal(st) ? CONV_TRY_REFUSED : CONV_TRY_ERROR;
}

static int workspace(GpuNet *g, size_t need);

/* one convolution pass with its operands: forward (in1 x, in2 w, out y), input gradient (in1 w,
 * in2 dy, out dx), weight gradient (in1 x, in2 dy, out dw) */
typedef struct ConvRun {
    GpuNet *g;
    GpuLayer *gl;
    int pass;
    const void *in1, *in2;
    void *out;
} ConvRun;

/* one candidate (conv_choice.h's ConvTryFn): its math type on the descriptor, its workspace at the
 * descriptors' batch (asking also tells whether cuDNN supports it there), then the pass */
static int conv_try(void *ctx, const ConvCandidate *c) {
    ConvRun *r = (ConvRun *)ctx;
    GpuNet *g = r->g;
    GpuLayer *gl = r->gl;
    const float one = 1.0f, zero = 0.0f;
    size_t need = 0;
    int t = dnn_try(lib.cudnnSetConvolutionMathType(gl->conv, (cudnnMathType_t)c->math), "math type");
    if (t != CONV_TRY_DONE) return t;
    cudnnStatus_t st;
    switch (r->pass) {
    case PASS_FWD:
        st = lib.cudnnGetConvolutionForwardWorkspaceSize(g->dnn, gl->x_desc, gl->w_desc, gl->conv, gl->y_desc,
                                                         (cudnnConvolutionFwdAlgo_t)c->algo, &need);
        break;
    case PASS_BWD_DATA:
        st = lib.cudnnGetConvolutionBackwardDataWorkspaceSize(g->dnn, gl->w_desc, gl->y_desc, gl->conv, gl->x_desc,
                                                              (cudnnConvolutionBwdDataAlgo_t)c->algo, &need);
        break;
    default:
        st = lib.cudnnGetConvolutionBackwardFilterWorkspaceSize(g->dnn, gl->x_desc, gl->y_desc, gl->conv, gl->w_desc,
                                                                (cudnnConvolutionBwdFilterAlgo_t)c->algo, &need);
        break;
    }
    if ((t = dnn_try(st, "workspace size")) != CONV_TRY_DONE) return t;
    int w = workspace(g, need);
    if (w) return w < 0 ? CONV_TRY_ERROR : CONV_TRY_REFUSED;
    switch (r->pass) {
    case PASS_FWD:
        st = lib.cudnnConvolutionForward(g->dnn, &one, gl->x_desc, r->in1, gl->w_desc, r->in2, gl->conv,
                                         (cudnnConvolutionFwdAlgo_t)c->algo, g->ws, g->ws_bytes, &zero, gl->y_desc, r->out);
        return dnn_try(st, "convolution forward");
    case PASS_BWD_DATA:
        st = lib.cudnnConvolutionBackwardData(g->dnn, &one, gl->w_desc, r->in1, gl->y_desc, r->in2, gl->conv,
                                              (cudnnConvolutionBwdDataAlgo_t)c->algo, g->ws, g->ws_bytes, &zero,
                                              gl->x_desc, r->out);
        return dnn_try(st, "convolution input gradient");
    default:
        st = lib.cudnnConvolutionBackwardFilter(g->dnn, &one, gl->x_desc, r->in1, gl->y_desc, r->in2, gl->conv,
                                                (cudnnConvolutionBwdFilterAlgo_t)c->algo, g->ws, g->ws_bytes, &zero,
                                                gl->w_desc, r->out);
        return dnn_try(st, "convolution weight gradient");
    }
}

/* pass (PASS_*) of convolution layer i at batch n: the candidate that worked at n before, else the
 * best that cuDNN accepts at n (conv_choice_run) */
static int conv_pass(GpuNet *g, int i, int n, int pass, const void *in1, const void *in2, void *out) {
    static const char *const names[] = {"forward", "input gradient", "weight gradient"};
    GpuLayer *gl = &g->layers[i];
    ConvRun r = {g, gl, pass, in1, in2, out};
    if (set_descriptors(g, i, n)) return -1;
    return conv_choice_run(&gl->pass[pass], n, conv_try, &r, names[pass], i + 1) < 0 ? -1 : 0;
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
    size_t largest = net->act_floats;
    if (cuda_check(cudaStreamCreateWithFlags(&g->copy_stream, cudaStreamNonBlocking), "creating a stream") ||
        cuda_check(cudaEventCreateWithFlags(&g->copied[0], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->copied[1], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->used[0], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->used[1], cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->labels_sent, cudaEventDisableTiming), "creating an event"))
        goto fail;
    if (!(g->h_labels = (int32_t *)cuda_host_alloc((size_t)B * 4)) || !(g->h_rows = (float *)cuda_host_alloc((size_t)B * 4)))
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
        size_t count = (size_t)B * layer_out_count(l);
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
    /* the workspace the first candidates measured; where it cannot be had, each pass asks for its
     * own and falls back to a candidate that needs less (conv_try) */
    if (g->ws_bytes && !(g->ws = cuda_alloc(g->ws_bytes, "cuDNN workspace"))) g->ws_bytes = 0;
    return g;
fail:
    gpu_net_free(g);
    return NULL;
}

static void dp_release(GpuNet *g);

extern "C" void gpu_net_free(GpuNet *g) {
    if (!g) return;
    dp_release(g); /* first: an aborted communicator no longer holds the streams up */
    /* nothing queued may still read or write what is freed below (pinned host buffers included) */
    (void)cudaStreamSynchronize(g_cuda_stream);
    if (g->copy_stream) (void)cudaStreamSynchronize(g->copy_stream);
    (void)cudaGetLastError();
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
    float *bufs[] = {g->params, g->grads, g->momentum, g->inbuf[0], g->inbuf[1], g->probs, g->dlogits, g->row_loss,
                     g->dbuf[0], g->dbuf[1]};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) cuda_free(bufs[k]);
    cuda_free(g->labels);
    cuda_free(g->params16);
    for (int k = 0; k < 3; k++) cuda_free(g->s16[k]);
    cuda_free(g->ws);
    if (g->pinned) cudaHostUnregister(g->net->input);
    cuda_host_free(g->h_labels);
    cuda_host_free(g->h_rows);
    if (g->labels_sent) cudaEventDestroy(g->labels_sent);
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
static int dp_wait(GpuNet *g);
extern "C" int gpu_net_get_grads(GpuNet *g) {
    return dp_wait(g) || cuda_download(g->net->grads, g->grads, g->net->nparams * 4) ? -1 : 0;
}
extern "C" int gpu_net_put_momentum(GpuNet *g, const float *v) {
    return v ? cuda_upload(g->momentum, v, g->net->nparams * 4) : cuda_memset0(g->momentum, g->net->nparams * 4);
}
extern "C" int gpu_net_get_momentum(GpuNet *g, float *v) { return cuda_download(v, g->momentum, g->net->nparams * 4); }
extern "C" int gpu_net_sync(GpuNet *g) { (void)g; return cuda_sync(); }

/* The workspace a pass needs at the batch at hand (it can differ from max_batch's), grown when
 * short: 0; 1 when `need` bytes cannot be had (an_error set: the caller may try an algorithm that
 * needs less; the workspace is then empty and grows again on demand); -1 when the work queued
 * before failed. */
static int workspace(GpuNet *g, size_t need) {
    if (need <= g->ws_bytes) return 0;
    if (cuda_sync()) return -1; /* queued passes may still use the old one */
    cuda_free(g->ws);
    g->ws = NULL, g->ws_bytes = 0;
    if (!(g->ws = cuda_alloc(need, "cuDNN workspace"))) return 1;
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
     * waits for the copy. From pinned memory (the loader's batches on the GPU path, net->input) the
     * DMA reads `host` after cudaMemcpyAsync returns: the copy is waited for here, so the caller
     * may reuse or free `host` (hand the batch back to the loader) as soon as this returns. The
     * compute stream is not waited for: the copy still overlaps the passes queued before it. */
    if (cuda_check(cudaStreamWaitEvent(g->copy_stream, g->used[next], 0), "ordering the input copy") ||
        cuda_check(cudaMemcpyAsync(g->inbuf[next], host, bytes, cudaMemcpyHostToDevice, g->copy_stream),
                   "copy of the input batch") ||
        cuda_check(cudaEventRecord(g->copied[next], g->copy_stream), "recording an event") ||
        cuda_check(cudaStreamWaitEvent(g_cuda_stream, g->copied[next], 0), "ordering the input copy"))
        return -1;
    g->cur = next, g->input = g->inbuf[next];
    return cuda_check(cudaEventSynchronize(g->copied[next]), "copy of the input batch");
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
        long in_count = (long)n * l->in_c * l->in_h * l->in_w, out_n = (long)n * (long)layer_out_count(l);
        double t0 = timing && !cuda_sync() ? an_now() : 0.0;
        int rc = 0;
        switch (s->kind) {
        case LAYER_CONV: { /* bf16: x cast into s16[0], the product into s16[1], cast back with the bias */
            const void *cx = x, *cw = w;
            void *cy = gl->out;
            if (bf) rc = to_bf16(x, g->s16[0], in_count), cx = g->s16[0], cw = g->params16 + g->w16_off[i], cy = g->s16[1];
            rc = rc || conv_pass(g, i, n, PASS_FWD, cx, cw, cy);
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
        case LAYER_LRN: rc = cuda_lrn_forward(n, l->in_c, l->in_h * l->in_w, layer_lrn(l->spec), x, gl->out, (float *)gl->aux); break;
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
                rc = cuda_dropout_forward(in_count, s->p, net_dropout_seed(g->net, i, dropout_seed),
                                          net_dropout_at(g->net, l), x, gl->out, (uint8_t *)gl->aux);
            else
                rc = cuda_check(cudaMemcpyAsync(gl->out, x, in_count * 4, cudaMemcpyDeviceToDevice, g_cuda_stream), "copy");
            break;
        case LAYER_GATHER: rc = an_error("the two-tower split runs on the CPU (--parallel towers without --gpu)"); break;
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

/* The labels go up from g->h_labels, pinned and owned by g: the copy reads it after cuda_upload
 * returns, so it is written again only once the previous copy has passed (labels_sent). Without
 * labels the kernel gets class 0 for each row (a memset, no host memory), its losses unread. */
extern "C" int gpu_net_loss(GpuNet *g, const int *labels, float *loss) {
    Net *net = g->net;
    int n = g->n, k = net->classes;
    const float *logits = g->layers[net->nlayers - 1].out;
    size_t bytes = (size_t)n * sizeof(int32_t);
    if (n < 1) return an_error("GPU loss without a forward pass");
    if (labels) {
        if (cuda_check(cudaEventSynchronize(g->labels_sent), "copy of the labels")) return -1;
        for (int i = 0; i < n; i++) g->h_labels[i] = labels[i];
        if (cuda_upload(g->labels, g->h_labels, bytes) ||
            cuda_check(cudaEventRecord(g->labels_sent, g_cuda_stream), "recording an event"))
            return -1;
    } else if (cuda_memset0(g->labels, bytes)) {
        return -1;
    }
    if (cuda_softmax_xent(n, k, logits, g->labels, g->probs, labels ? g->dlogits : NULL, g->row_loss)) return -1;
    if (labels && loss) {
        if (cuda_download(g->h_rows, g->row_loss, (size_t)n * sizeof(float))) return -1;
        double total = 0.0;
        for (int i = 0; i < n; i++) total += g->h_rows[i];
        *loss = (float)(total / n);
    }
    return 0;
}

static int dp_reduce(GpuNet *g, const Layer *l);

/* Each layer with parameters makes its weight and bias gradients first, then (data parallel)
 * hands them to dp_reduce, so that their sum also overlaps this layer's input gradient; in every
 * math mode these are the float32 gradients in g->grads that the update reads (bf16 products are
 * cast back into them). */
extern "C" int gpu_net_backward(GpuNet *g, int timing) {
    Net *net = g->net;
    int n = g->n, which = 0, bf = g->math == GPU_BF16;
    const float *dy = g->dlogits;
    const float one = 1.0f, zero = 0.0f;
    if (dp_wait(g)) return -1; /* the previous step's sums, should no update have waited for them */
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
        case LAYER_CONV: { /* each pass through conv_pass (its algorithm at this batch size, its math type and
                            * workspace); bf16: x and dy cast into s16[0] and s16[1], each gradient made in
                            * s16[2] and cast back */
            long out_n = (long)n * (long)layer_out_count(l);
            const void *cx = x, *cdy = dy, *cw = w;
            void *cdw = dw, *cdx = dx;
            if (bf) {
                rc = to_bf16(x, g->s16[0], in_count) || to_bf16(dy, g->s16[1], out_n);
                cx = g->s16[0], cdy = g->s16[1], cw = g->params16 + g->w16_off[i], cdw = cdx = g->s16[2];
            }
            rc = rc || conv_pass(g, i, n, PASS_BWD_FILTER, cx, cdy, cdw) || (bf && from_bf16(g->s16[2], dw, (long)l->w_size)) ||
                 cuda_bias_grad(n, l->out_c, l->out_h * l->out_w, dy, db) || dp_reduce(g, l);
            if (!rc && dx) rc = conv_pass(g, i, n, PASS_BWD_DATA, cw, cdy, cdx) || (bf && from_bf16(g->s16[2], dx, in_count));
            break;
        }
        case LAYER_LINEAR: /* dw^T (in, out) = x^T dy; db = column sums of dy; dx^T (in, n) = w^T dy^T */
            if (bf)
                rc = to_bf16(x, g->s16[0], in_count) || to_bf16(dy, g->s16[1], (long)n * l->out_c) ||
                     gemm_bf16(g, CUBLAS_OP_N, CUBLAS_OP_T, l->fan_in, l->out_c, n, g->s16[0], l->fan_in, g->s16[1],
                               l->out_c, dw, l->fan_in, "linear weight gradient");
            else
                rc = blas_check(lib.cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, l->fan_in, l->out_c, n, &one, x, l->fan_in, dy,
                                        l->out_c, &zero, dw, l->fan_in), "linear weight gradient");
            rc = rc || cuda_bias_grad(n, l->out_c, 1, dy, db) || dp_reduce(g, l);
            if (!rc && dx)
                rc = bf ? gemm_bf16(g, CUBLAS_OP_N, CUBLAS_OP_N, l->fan_in, n, l->out_c, g->params16 + g->w16_off[i],
                                    l->fan_in, g->s16[1], l->out_c, dx, l->fan_in, "linear input gradient")
                        : blas_check(lib.cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, l->fan_in, n, l->out_c, &one, w,
                                                     l->fan_in, dy, l->out_c, &zero, dx, l->fan_in), "linear input gradient");
            break;
        case LAYER_RELU: rc = cuda_relu_backward(in_count, gl->out, dy, dx); break;
        case LAYER_TANH:
            tanh_bwd_k<<<blocks_for(in_count), THREADS, 0, g_cuda_stream>>>(in_count, gl->out, dy, dx);
            rc = LAUNCHED("tanh backward");
            break;
        case LAYER_LRN:
            rc = cuda_lrn_backward(n, l->in_c, l->in_h * l->in_w, layer_lrn(l->spec), x, gl->out, (const float *)gl->aux, dy, dx,
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
        case LAYER_GATHER: rc = an_error("the two-tower split runs on the CPU (--parallel towers without --gpu)"); break;
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

/* As net_sgd: weights with (lr, weight_decay), biases with (lr x bias_lr_mult, weight_decay x
 * bias_decay_mult) from the model spec (both 0: a spec made by hand, 1 and 1); one update over the
 * whole block when both are 1, else one per layer's weights and biases. */
static int dp_health(GpuNet *g);

extern "C" int gpu_net_sgd(GpuNet *g, float lr, float momentum, float weight_decay) {
    const Net *net = g->net;
    if (g->comm && (dp_health(g) || dp_wait(g))) return -1;
    float blr = net->spec.bias_lr_mult, bwd = net->spec.bias_decay_mult;
    if (blr == 0.0f && bwd == 0.0f) blr = bwd = 1.0f;
    if (blr == 1.0f && bwd == 1.0f) {
        if (cuda_sgd_update(net->nparams, g->params, g->grads, g->momentum, lr, momentum, weight_decay)) return -1;
    } else {
        for (int i = 0; i < net->nlayers; i++) {
            const Layer *l = &net->layers[i];
            if (l->w_size && cuda_sgd_update(l->w_size, g->params + l->w_off, g->grads + l->w_off, g->momentum + l->w_off,
                                             lr, momentum, weight_decay))
                return -1;
            if (l->b_size && cuda_sgd_update(l->b_size, g->params + l->b_off, g->grads + l->b_off, g->momentum + l->b_off,
                                             lr * blr, momentum, weight_decay * bwd))
                return -1;
        }
    }
    return refresh_bf16(g);
}

extern "C" int gpu_net_scale_dlogits(GpuNet *g, float factor) {
    long count = (long)g->n * g->net->classes;
    if (g->n < 1) return an_error("the logits' gradient scaled before any loss");
    if (factor == 1.0f) return 0;
    scale_k<<<blocks_for(count), THREADS, 0, g_cuda_stream>>>(count, factor, g->dlogits);
    return LAUNCHED("scaling the logits' gradient");
}

/* ---- data parallel through NCCL (gpu_net.h) ---- */
static int nccl_check(ncclResult_t r, const char *what) {
    return r == ncclSuccess ? 0 : an_error("NCCL: %s: %s", what, lib.ncclGetErrorString(r));
}

extern "C" int gpu_nccl_unique_id(void *id, size_t size) {
    if (size != sizeof(ncclUniqueId))
        return an_error("an NCCL id has %zu bytes, not %zu", sizeof(ncclUniqueId), size);
    if (gpu_nccl_load()) return -1;
    ncclUniqueId u;
    if (nccl_check(lib.ncclGetUniqueId(&u), "making the communicator's id")) return -1;
    memcpy(id, &u, sizeof u);
    return 0;
}

extern "C" int gpu_net_dp_start(GpuNet *g, const void *id, int rank, int size) {
    if (g->comm) return an_error("data parallel is already started on this GPU network");
    if (size < 1 || rank < 0 || rank >= size) return an_error("data parallel: no rank %d of %d", rank, size);
    if (gpu_nccl_load()) return -1;
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    /* the sums at the GPU's highest stream priority: where both streams have work ready they go
     * first, so that the last one (conv1's, after the backward pass) has less left to do */
    int least = 0, greatest = 0;
    ncclComm_t comm = NULL;
    if (cuda_check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "reading stream priorities") ||
        cuda_check(cudaStreamCreateWithPriority(&g->comm_stream, cudaStreamNonBlocking, greatest), "creating a stream") ||
        cuda_check(cudaEventCreateWithFlags(&g->grads_made, cudaEventDisableTiming), "creating an event") ||
        cuda_check(cudaEventCreateWithFlags(&g->reduced, cudaEventDisableTiming), "creating an event") ||
        nccl_check(lib.ncclCommInitRank(&comm, size, u, rank), "joining the ranks' communicator")) {
        dp_release(g);
        return -1;
    }
    g->comm = comm, g->dp_failed = 0, g->dp_bytes = 0.0;
    return 0;
}

/* NCCL's errors so far (a rank gone, a network failure): 0, or -1 naming NCCL's */
static int dp_health(GpuNet *g) {
    ncclResult_t st = ncclSuccess, r = lib.ncclCommGetAsyncError(g->comm, &st);
    if (r == ncclSuccess) r = st;
    if (r == ncclSuccess || r == ncclInProgress) return 0;
    g->dp_failed = 1;
    return nccl_check(r, "summing the gradients over the ranks");
}

/* the compute stream waits for the all-reduces queued so far (none: nothing to wait for) */
static int dp_wait(GpuNet *g) {
    return g->comm ? cuda_check(cudaStreamWaitEvent(g_cuda_stream, g->reduced, 0), "waiting for the gradients' sums") : 0;
}

/* layer l's weight and bias gradients (w_off .. w_off + w_size + b_size, contiguous) summed over
 * the ranks in place, on comm_stream once the compute stream has made them (without data
 * parallel: nothing) */
static int dp_reduce(GpuNet *g, const Layer *l) {
    size_t count = l->w_size + l->b_size;
    if (!g->comm || !count) return 0;
    float *p = g->grads + l->w_off;
    if (l->b_size && l->b_off != l->w_off + l->w_size)
        return an_error("data parallel: a layer's weights and biases are not one range of the parameter block");
    if (cuda_check(cudaEventRecord(g->grads_made, g_cuda_stream), "recording an event") ||
        cuda_check(cudaStreamWaitEvent(g->comm_stream, g->grads_made, 0), "ordering the gradients' sum") ||
        nccl_check(lib.ncclAllReduce(p, p, count, ncclFloat, ncclSum, g->comm, g->comm_stream),
                   "summing the gradients over the ranks") ||
        cuda_check(cudaEventRecord(g->reduced, g->comm_stream), "recording an event"))
        return -1;
    g->dp_bytes += (double)count * 4.0;
    return 0;
}

/* the communicator ended (aborted after an error: ending it would wait for the ranks), its stream
 * and events destroyed; safe on a GpuNet without (or partly made) data parallel */
static void dp_release(GpuNet *g) {
    if (g->comm) {
        ncclResult_t st = ncclSuccess; /* read without an_error: the caller's error stays the last */
        if (!g->dp_failed && lib.ncclCommGetAsyncError(g->comm, &st) == ncclSuccess && st == ncclSuccess) {
            (void)cudaStreamSynchronize(g->comm_stream);
            lib.ncclCommDestroy(g->comm);
        } else {
            lib.ncclCommAbort(g->comm);
        }
        g->comm = NULL;
    }
    if (g->comm_stream) {
        (void)cudaStreamSynchronize(g->comm_stream);
        cudaStreamDestroy(g->comm_stream);
    }
    if (g->grads_made) cudaEventDestroy(g->grads_made);
    if (g->reduced) cudaEventDestroy(g->reduced);
    g->comm_stream = NULL, g->grads_made = g->reduced = NULL;
    (void)cudaGetLastError();
}

extern "C" void gpu_net_dp_stop(GpuNet *g) {
    if (g) dp_release(g);
}

extern "C" double gpu_net_dp_bytes(const GpuNet *g) { return g ? g->dp_bytes : 0.0; }

/* ---- for tests and diagnostics (gpu_net.h) ---- */
static ConvChoice *choice_of(GpuNet *g, int layer, int pass) {
    if (!g || layer < 0 || layer >= g->net->nlayers || g->net->layers[layer].spec->kind != LAYER_CONV || pass < 0 ||
        pass > 2)
        return NULL;
    return &g->layers[layer].pass[pass];
}

extern "C" int gpu_net_conv_candidates(GpuNet *g, int layer, int pass, int k, int *algo, int *math) {
    const ConvChoice *c = choice_of(g, layer, pass);
    if (!c) return an_error("layer %d is not a convolution, or pass %d is not 0, 1 or 2", layer, pass);
    if (k >= 0 && k < c->count) {
        if (algo) *algo = c->cand[k].algo;
        if (math) *math = c->cand[k].math;
    }
    return c->count;
}

extern "C" int gpu_net_conv_force_candidate(GpuNet *g, int layer, int pass, int algo, int math) {
    ConvChoice *c = choice_of(g, layer, pass);
    if (!c) return an_error("layer %d is not a convolution, or pass %d is not 0, 1 or 2", layer, pass);
    conv_choice_prepend(c, algo, math);
    return 0;
}

extern "C" int gpu_net_conv_algo_used(GpuNet *g, int layer, int pass, int n) {
    const ConvChoice *c = choice_of(g, layer, pass);
    int k = c ? conv_choice_cached(c, n) : -1;
    return k < 0 ? -1 : c->cand[k].algo;
}
