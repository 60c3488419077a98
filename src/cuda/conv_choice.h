/* conv_choice.h: which cuDNN algorithm a convolution pass runs, in plain C without cuDNN's types,
 * so that the tests exercise it on a machine without a GPU (it is built in every build).
 *
 * gpu_net.cu turns cudnnFind*Algorithm's measurements (made at the network's largest batch) into
 * ConvPerf entries; conv_choice_init keeps those the GPU mode may use as candidates, fastest
 * first, each with the math type it will run with. Every pass then runs through conv_choice_run:
 * it tries the candidate that last worked at this batch size (the best one for a size not seen
 * yet), and when cuDNN refuses it there (not supported at this size or with this math type, or
 * its workspace cannot be allocated) the next one, and remembers, per batch size, the one that
 * worked. A short last batch is thereby checked at its own size before its algorithm is used. */
#ifndef ALEXNET_CONV_CHOICE_H
#define ALEXNET_CONV_CHOICE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* math types, numbered as cuDNN's cudnnMathType_t (gpu_net.cu checks that they agree) */
enum { CONV_MATH_DEFAULT = 0, CONV_MATH_TENSOR = 1, CONV_MATH_TENSOR_CONVERT = 2, CONV_MATH_FMA = 3 };

/* one measurement of cudnnFind*Algorithm */
typedef struct ConvPerf {
    int algo;          /* the cuDNN algorithm (its cudnnConvolution*Algo_t value) */
    int ok;            /* it ran (status CUDNN_STATUS_SUCCESS) */
    int deterministic; /* CUDNN_DETERMINISTIC */
    int transform;     /* an FFT or Winograd algorithm */
    int math;          /* CONV_MATH_*: the math type it was measured with */
    float ms;          /* its time */
    size_t memory;     /* its workspace at the measured batch */
} ConvPerf;

typedef struct ConvCandidate {
    int algo;
    int math;          /* CONV_MATH_*: set on the convolution descriptor before it runs */
    size_t memory;     /* workspace measured at the largest batch (a hint: each run asks again) */
} ConvCandidate;

enum { CONV_MAX_CANDIDATES = 16, CONV_CACHED_SIZES = 8 };

typedef struct ConvChoice {
    int count;                                 /* candidates, best first */
    ConvCandidate cand[CONV_MAX_CANDIDATES];
    int cached;                                /* batch sizes remembered */
    int next_slot;                             /* replaced next once all CONV_CACHED_SIZES are used */
    int size[CONV_CACHED_SIZES];               /* batch size ... */
    int pick[CONV_CACHED_SIZES];               /* ... and the candidate that worked at it */
} ConvChoice;

/* Candidates from `count` measurements in cuDNN's order (fastest first), for the GPU mode `mode`
 * (a GpuMath of gpu_net.h). Kept: the ones that ran, deterministic ones only if need_det, never a
 * TENSOR_CONVERT one (it may round float32 operands to half precision). fp32 (float32 products,
 * no tensor cores): no FFT or Winograd transform (their rounding is not a direct sum's), no
 * tensor-op measurement; those measured with FMA math first, then those measured with default
 * math (which may have used TF32 tensor cores), all of them to run with FMA math. tf32 and bf16:
 * each with the math type it was measured with. An (algorithm, math) pair is kept once. Forgets
 * the batch sizes seen. Returns the number of candidates (0: none usable). */
int conv_choice_init(ConvChoice *c, const ConvPerf *perf, int count, int mode, int need_det);

/* Put (algo, math) in front of the candidates (dropping the last one when full) and forget the
 * batch sizes seen: for the tests, which make the first choice one that cuDNN refuses. */
void conv_choice_prepend(ConvChoice *c, int algo, int math);

/* What a try of one candidate reports: it ran; cuDNN refused it (an_error says why: the next one
 * is tried); or an error that ends the pass (an_error set). */
enum { CONV_TRY_DONE = 0, CONV_TRY_REFUSED = 1, CONV_TRY_ERROR = -1 };
typedef int (*ConvTryFn)(void *ctx, const ConvCandidate *cand);

/* Run one pass at batch n through try_fn: from the candidate remembered for n (else the first) on,
 * until one is DONE, which is remembered for n. Returns that candidate's index, or -1 with
 * an_error: the try's own on CONV_TRY_ERROR; when every candidate was refused, a message naming
 * `what`, `layer` (1-based), n and the first refusal's reason. */
int conv_choice_run(ConvChoice *c, int n, ConvTryFn try_fn, void *ctx, const char *what, int layer);

/* The candidate that last worked at batch n, or -1 when there is none yet. */
int conv_choice_cached(const ConvChoice *c, int n);

#ifdef __cplusplus
}
#endif
#endif
