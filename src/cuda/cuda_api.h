/* cuda_api.h: the GPU path's C interface, the same in every build. With nvcc present, runtime.cu and
 * kernels.cu implement it; without, cuda_stub.c does, every call failing with "this build has no
 * CUDA support". Pointers to device memory are named d_*. Every int function returns 0, or -1 with
 * an_error() set ("CUDA: <what>: <the runtime's message>"). Work runs in order on one stream
 * (the one cuda_init makes); results are ready after cuda_sync or a download.
 * Each kernel computes what its CPU twin in src/layers (same name without cuda_) computes, and
 * tests/test_cuda.c compares them. */
#ifndef ALEXNET_CUDA_API_H
#define ALEXNET_CUDA_API_H
#include <stddef.h>
#include <stdint.h>
#include "../layers/layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether this build has the CUDA path at all. */
int cuda_built(void);
/* Select the GPU (0, or cuda_select_device's) and make the stream; name (may be NULL) gets the
 * GPU's name. Fails with a one-line reason where there is no usable GPU. Safe to call again (later
 * calls only fill name). */
int cuda_init(char *name, size_t name_size);
/* One GPU per process on a node: select GPU local_rank % (GPUs on this machine) for this thread
 * and for cuda_init. Call it before any other GPU work (a pinned allocation included); after
 * cuda_init it fails unless it picks the GPU already in use. */
int cuda_select_device(int local_rank);

/* Load cuDNN and cuBLAS (dlopen, once; gpu_net_create does it): 0, or -1 naming what is missing.
 * Needs no GPU. */
int cuda_load_libraries(void);

void *cuda_alloc(size_t bytes, const char *what); /* NULL with an_error (names `what`) on failure */
void cuda_free(void *d);
/* Page-locked (pinned) host memory, which the GPU reads by DMA: faster copies, and truly
 * asynchronous ones (see gpu_net_upload). The loader's batch buffers on the GPU path
 * (LoaderConfig.alloc_host / free_host). NULL with an_error on failure. */
void *cuda_host_alloc(size_t bytes);
void cuda_host_free(void *p);
/* From pageable host memory the copy has left `host` when this returns; from pinned memory it has
 * not: keep `host` unchanged until cuda_sync (or a download). */
int cuda_upload(void *d, const void *host, size_t bytes);
int cuda_download(void *host, const void *d, size_t bytes); /* waits for the stream */
int cuda_memset0(void *d, size_t bytes);
int cuda_sync(void);

/* ---- elementwise and small kernels, shapes as in layers.h ---- */
int cuda_relu_forward(long count, const float *d_x, float *d_y);
int cuda_relu_backward(long count, const float *d_y, const float *d_dy, float *d_dx);
int cuda_lrn_forward(int n, int c, int hw, LrnParams p, const float *d_x, float *d_y, float *d_scale);
int cuda_lrn_backward(int n, int c, int hw, LrnParams p, const float *d_x, const float *d_y, const float *d_scale,
                      const float *d_dy, float *d_dx, int relu_input);
/* NaN as PyTorch: a window holding a NaN gives NaN, its argmax the first NaN's (row-major) */
int cuda_maxpool_forward(int n, int c, int h, int w, int k, int s, const float *d_x, float *d_y, int32_t *d_argmax);
/* gathers, in the CPU's order: deterministic, no atomics */
int cuda_maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *d_argmax, const float *d_dy,
                          float *d_dx);
/* d_db (channels) = the sum of d_dy (n, channels, plane) over images and positions: a bias's
 * gradient (convolution: plane = out_h * out_w; fully connected: plane 1), as conv_backward's and
 * linear_backward's db (float64 sums) */
int cuda_bias_grad(int n, int channels, int plane, const float *d_dy, float *d_db);
/* masks from the same counter-based RNG as the CPU's (an_hash64): identical for the same seed */
int cuda_dropout_forward(long count, float p, uint64_t seed, DropoutAt at, const float *d_x, float *d_y, uint8_t *d_mask);
int cuda_dropout_backward(long count, float p, const uint8_t *d_mask, const float *d_dy, float *d_dx);
/* d_labels (n) int32; d_row_loss (n): each row's -log p(label); d_dlogits may be NULL */
int cuda_softmax_xent(int n, int classes, const float *d_logits, const int32_t *d_labels, float *d_probs,
                      float *d_dlogits, float *d_row_loss);
/* d_rank (n): how many other classes have probability >= the true class's (eval.c's rank):
 * top-k error counts rank >= k */
int cuda_true_class_rank(int n, int classes, const float *d_probs, const int32_t *d_labels, int32_t *d_rank);
/* the paper's update over the parameter block: v = m v - wd lr w - lr g; w += v */
int cuda_sgd_update(size_t n, float *d_w, const float *d_grad, float *d_v, float lr, float momentum,
                    float weight_decay);

#ifdef __cplusplus
}
#endif
#endif
