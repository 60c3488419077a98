/* cuda_internal.h: what runtime.cu and kernels.cu share: the stream, error checks, launch sizes. */
#ifndef ALEXNET_CUDA_INTERNAL_H
#define ALEXNET_CUDA_INTERNAL_H
#include <cuda_runtime.h>
#include "cuda_api.h"
extern "C" {
#include "../util/common.h"
}

extern cudaStream_t g_cuda_stream;

/* -1 with "CUDA: what: message" when err is not cudaSuccess. The runtime keeps the last error for
 * cudaGetLastError, which LAUNCHED reads after each launch: it is read (cleared) here, so that a
 * failure already reported does not resurface as the next kernel's. */
static inline int cuda_check(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return 0;
    (void)cudaGetLastError();
    return an_error("CUDA: %s: %s", what, cudaGetErrorString(err));
}
/* after a kernel launch: a bad configuration shows here, a fault at the next sync */
#define LAUNCHED(what) cuda_check(cudaGetLastError(), what)

/* blocks of THREADS for count items, grid-stride loops beyond the cap */
enum { THREADS = 256 };
static inline unsigned blocks_for(long count) {
    long b = (count + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : (b > 65536L * 16 ? 65536L * 16 : b));
}
#endif
