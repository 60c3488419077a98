/* cuda_stub.c: the GPU interface (cuda_api.h, gpu_net.h) in a build made without nvcc: every call
 * says so and fails. */
#include "cuda_api.h"
#include "gpu_net.h"
#include "../util/common.h"

#define NO_CUDA an_error("this build has no CUDA support (nvcc was not found when it was built); rebuild with the CUDA toolkit")

int cuda_built(void) { return 0; }
int cuda_init(char *name, size_t name_size) { (void)name, (void)name_size; return NO_CUDA; }
int cuda_select_device(int local_rank) { (void)local_rank; return NO_CUDA; }
int cuda_load_libraries(void) { return NO_CUDA; }
void *cuda_alloc(size_t bytes, const char *what) { (void)bytes, (void)what; NO_CUDA; return NULL; }
void cuda_free(void *d) { (void)d; }
void *cuda_host_alloc(size_t bytes) { (void)bytes; NO_CUDA; return NULL; }
void cuda_host_free(void *p) { (void)p; }
int cuda_upload(void *d, const void *h, size_t b) { (void)d, (void)h, (void)b; return NO_CUDA; }
int cuda_download(void *h, const void *d, size_t b) { (void)d, (void)h, (void)b; return NO_CUDA; }
int cuda_memset0(void *d, size_t b) { (void)d, (void)b; return NO_CUDA; }
int cuda_sync(void) { return NO_CUDA; }
int cuda_relu_forward(long c, const float *x, float *y) { (void)c, (void)x, (void)y; return NO_CUDA; }
int cuda_relu_backward(long c, const float *y, const float *dy, float *dx) { (void)c, (void)y, (void)dy, (void)dx; return NO_CUDA; }
int cuda_lrn_forward(int n, int c, int hw, LrnParams p, const float *x, float *y, float *s) {
    (void)n, (void)c, (void)hw, (void)p, (void)x, (void)y, (void)s;
    return NO_CUDA;
}
int cuda_lrn_backward(int n, int c, int hw, LrnParams p, const float *x, const float *y, const float *s,
                      const float *dy, float *dx, int r) {
    (void)n, (void)c, (void)hw, (void)p, (void)x, (void)y, (void)s, (void)dy, (void)dx, (void)r;
    return NO_CUDA;
}
int cuda_maxpool_forward(int n, int c, int h, int w, int k, int s, const float *x, float *y, int32_t *a) {
    (void)n, (void)c, (void)h, (void)w, (void)k, (void)s, (void)x, (void)y, (void)a;
    return NO_CUDA;
}
int cuda_maxpool_backward(int n, int c, int h, int w, int k, int s, const int32_t *a, const float *dy, float *dx) {
    (void)n, (void)c, (void)h, (void)w, (void)k, (void)s, (void)a, (void)dy, (void)dx;
    return NO_CUDA;
}
int cuda_bias_grad(int n, int c, int plane, const float *dy, float *db) {
    (void)n, (void)c, (void)plane, (void)dy, (void)db;
    return NO_CUDA;
}
int cuda_dropout_forward(long c, float p, uint64_t seed, DropoutAt at, const float *x, float *y, uint8_t *m) {
    (void)c, (void)p, (void)seed, (void)at, (void)x, (void)y, (void)m;
    return NO_CUDA;
}
int cuda_dropout_backward(long c, float p, const uint8_t *m, const float *dy, float *dx) {
    (void)c, (void)p, (void)m, (void)dy, (void)dx;
    return NO_CUDA;
}
int cuda_softmax_xent(int n, int k, const float *z, const int32_t *l, float *p, float *dz, float *loss) {
    (void)n, (void)k, (void)z, (void)l, (void)p, (void)dz, (void)loss;
    return NO_CUDA;
}
int cuda_true_class_rank(int n, int k, const float *p, const int32_t *l, int32_t *r) {
    (void)n, (void)k, (void)p, (void)l, (void)r;
    return NO_CUDA;
}
int cuda_sgd_update(size_t n, float *w, const float *g, float *v, float lr, float m, float wd) {
    (void)n, (void)w, (void)g, (void)v, (void)lr, (void)m, (void)wd;
    return NO_CUDA;
}

/* the network on the GPU (gpu_net.h) */
GpuNet *gpu_net_create(Net *net, GpuMath math) { (void)net, (void)math; NO_CUDA; return NULL; }
void gpu_net_free(GpuNet *g) { (void)g; }
int gpu_net_put_params(GpuNet *g) { (void)g; return NO_CUDA; }
int gpu_net_get_params(GpuNet *g) { (void)g; return NO_CUDA; }
int gpu_net_get_grads(GpuNet *g) { (void)g; return NO_CUDA; }
int gpu_net_put_momentum(GpuNet *g, const float *v) { (void)g, (void)v; return NO_CUDA; }
int gpu_net_get_momentum(GpuNet *g, float *v) { (void)g, (void)v; return NO_CUDA; }
int gpu_net_forward(GpuNet *g, int n, int train, uint64_t seed, int timing) {
    (void)g, (void)n, (void)train, (void)seed, (void)timing;
    return NO_CUDA;
}
int gpu_net_upload(GpuNet *g, const float *host, int n) { (void)g, (void)host, (void)n; return NO_CUDA; }
int gpu_net_put_input(GpuNet *g, int n) { (void)g, (void)n; return NO_CUDA; }
int gpu_net_get_probs(GpuNet *g) { (void)g; return NO_CUDA; }
int gpu_net_loss(GpuNet *g, const int *labels, float *loss) { (void)g, (void)labels, (void)loss; return NO_CUDA; }
int gpu_net_backward(GpuNet *g, int timing) { (void)g, (void)timing; return NO_CUDA; }
int gpu_net_sgd(GpuNet *g, float lr, float m, float wd) { (void)g, (void)lr, (void)m, (void)wd; return NO_CUDA; }
int gpu_net_sync(GpuNet *g) { (void)g; return NO_CUDA; }
int gpu_net_scale_dlogits(GpuNet *g, float factor) { (void)g, (void)factor; return NO_CUDA; }
int gpu_nccl_unique_id(void *id, size_t size) { (void)id, (void)size; return NO_CUDA; }
int gpu_net_dp_start(GpuNet *g, const void *id, int rank, int size) {
    (void)g, (void)id, (void)rank, (void)size;
    return NO_CUDA;
}
void gpu_net_dp_stop(GpuNet *g) { (void)g; }
double gpu_net_dp_bytes(const GpuNet *g) { (void)g; return 0.0; }
int gpu_net_conv_candidates(GpuNet *g, int layer, int pass, int k, int *algo, int *math) {
    (void)g, (void)layer, (void)pass, (void)k, (void)algo, (void)math;
    return NO_CUDA;
}
int gpu_net_conv_force_candidate(GpuNet *g, int layer, int pass, int algo, int math) {
    (void)g, (void)layer, (void)pass, (void)algo, (void)math;
    return NO_CUDA;
}
int gpu_net_conv_algo_used(GpuNet *g, int layer, int pass, int n) {
    (void)g, (void)layer, (void)pass, (void)n;
    return NO_CUDA;
}
