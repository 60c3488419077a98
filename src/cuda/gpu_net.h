/* gpu_net.h: a Net (model.h) run on the GPU: the same layers, shapes, parameter block layout and
 * results as net.c's forward, loss, backward and SGD step, with convolutions through cuDNN, fully
 * connected layers through cuBLAS and the rest through kernels.cu. The host Net keeps the shapes
 * and is where parameters travel to and from (checkpoints, tests). Without CUDA (cuda_stub.c),
 * gpu_net_create fails with "this build has no CUDA support". */
#ifndef ALEXNET_GPU_NET_H
#define ALEXNET_GPU_NET_H
#include "../model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct GpuNet GpuNet;
/* fp32: float32 without tensor cores (FMA only); tf32: float32 data, tensor cores rounding the
 * products' operands to TF32; bf16: the products' operands (weights, activations, gradients) cast
 * to bfloat16 for the tensor cores, sums, activations, LRN, loss and the float32 master weights
 * and momentum as in fp32 (the CPU's --precision bf16 numerics, but the convolutions' outputs are
 * rounded to bfloat16 too) */
typedef enum { GPU_FP32, GPU_TF32, GPU_BF16 } GpuMath;

/* For net (already created, max_batch as the host's): device buffers, each convolution pass's
 * candidate algorithms measured by cuDNN at max_batch (deterministic ones for the backward passes;
 * those the math mode allows: conv_choice.h), parameters copied from net->params, momentum zero.
 * Each pass then runs the best candidate cuDNN accepts at the batch size it is called with (a
 * short last batch included), the next one where cuDNN refuses one or its workspace cannot be
 * allocated. NULL with an_error on failure (no GPU, out of GPU memory). */
GpuNet *gpu_net_create(Net *net, GpuMath math);
void gpu_net_free(GpuNet *g);
int gpu_net_put_params(GpuNet *g);              /* net->params -> GPU */
int gpu_net_get_params(GpuNet *g);              /* GPU -> net->params */
int gpu_net_get_grads(GpuNet *g);               /* GPU -> net->grads */
int gpu_net_put_momentum(GpuNet *g, const float *v); /* nparams floats -> GPU (NULL: zero) */
int gpu_net_get_momentum(GpuNet *g, float *v);
/* n images from host memory (a loader's batch, or net->input) to the GPU, on a copy stream into
 * the second input buffer: the copy overlaps the passes still queued on the previous batch, and
 * the next forward pass waits for it. Returns once the copy is done, so the host memory may be
 * reused or freed then, pinned (cuda_host_alloc, net->input) or pageable alike. */
int gpu_net_upload(GpuNet *g, const float *host, int n);
int gpu_net_put_input(GpuNet *g, int n);        /* gpu_net_upload(g, net->input, n) */
/* The forward pass over the n images on the GPU (dropout masks as net_forward's for the same
 * seed). With timing, each layer is waited for and its time added to the host layer's fwd_seconds. */
int gpu_net_forward(GpuNet *g, int n, int train, uint64_t dropout_seed, int timing);
/* Softmax of the last forward pass on the GPU; with labels (n, host; copied before this returns)
 * also the logits' gradient. loss (may be NULL): the mean loss, which waits for the GPU. */
int gpu_net_loss(GpuNet *g, const int *labels, float *loss);
int gpu_net_get_probs(GpuNet *g);               /* GPU -> net->probs (batch x classes) */
int gpu_net_backward(GpuNet *g, int timing);
/* net_sgd's step: biases at lr x net->spec.bias_lr_mult and weight_decay x bias_decay_mult */
int gpu_net_sgd(GpuNet *g, float lr, float momentum, float weight_decay);
int gpu_net_sync(GpuNet *g);

/* Scale the logits' gradient of the last gpu_net_loss (with labels: n x classes) by factor, on
 * the stream, before gpu_net_backward. Data parallel: factor = this rank's images / the global
 * batch's, so that the gradients summed over the ranks are the global batch's mean. */
int gpu_net_scale_dlogits(GpuNet *g, float factor);

/* ---- data parallel over GPUs, one process (rank) per GPU, through NCCL (loaded at run time) ----
 * Rank 0 makes an id with gpu_nccl_unique_id (size: sizeof(ncclUniqueId), 128 bytes) and sends its
 * bytes to the other ranks (MPI); every rank, its GPU already chosen (cuda_select_device before
 * any GPU work) and its GpuNet made, calls gpu_net_dp_start with them (collective: it returns
 * once all `size` ranks have joined). From then on gpu_net_backward sums the gradients over the
 * ranks as it goes: right after each layer with parameters has made its weight and bias gradients
 * (one contiguous range of the block), an in-place all-reduce of that range starts on a
 * communication stream, overlapping the layers below. gpu_net_sgd (and gpu_net_get_grads) wait
 * for the last one, and gpu_net_sgd fails with NCCL's message where a reduction failed (a rank
 * died, a network error). The sum is a sum: scale each rank's logits' gradient first
 * (gpu_net_scale_dlogits). gpu_net_dp_stop (gpu_net_free calls it) ends the communicator. */
int gpu_nccl_unique_id(void *id, size_t size);
int gpu_net_dp_start(GpuNet *g, const void *id, int rank, int size);
void gpu_net_dp_stop(GpuNet *g);
double gpu_net_dp_bytes(const GpuNet *g); /* bytes all-reduced since gpu_net_dp_start (4 per float) */

/* For tests and diagnostics. Convolution layer `layer` (0-based index into net->layers), pass 0
 * forward, 1 input gradient, 2 weight gradient; algorithms and math types in cuDNN's numbering.
 * gpu_net_conv_candidates: how many candidates the pass has (-1 with an_error: not a convolution),
 * and for 0 <= k < that, the k-th's algorithm and math type (either pointer may be NULL).
 * gpu_net_conv_force_candidate: put (algo, math) first, forgetting which worked at which batch size
 * (a test makes it one cuDNN refuses, to see the pass fall back). 0 or -1.
 * gpu_net_conv_algo_used: the algorithm the pass last ran with at batch n (-1: not run at n). */
int gpu_net_conv_candidates(GpuNet *g, int layer, int pass, int k, int *algo, int *math);
int gpu_net_conv_force_candidate(GpuNet *g, int layer, int pass, int algo, int math);
int gpu_net_conv_algo_used(GpuNet *g, int layer, int pass, int n);

#ifdef __cplusplus
}
#endif
#endif
