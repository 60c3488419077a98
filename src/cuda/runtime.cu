/* runtime.cu: device selection, the stream and memory for the GPU path (see cuda_api.h). */
#include "cuda_internal.h"
#include <stdio.h>

cudaStream_t g_cuda_stream;
static int g_ready;

extern "C" int cuda_built(void) { return 1; }

/* the GPU cuda_init selects: 0, or cuda_select_device's choice */
static int g_device;

/* How many GPUs: 0, or -1 with a one-line reason where there is none (no driver, none found). */
static int device_count(int *count) {
    *count = 0;
    cudaError_t err = cudaGetDeviceCount(count);
    if (err != cudaSuccess) (void)cudaGetLastError(); /* not the next launch's error (cuda_check) */
    if (err == cudaErrorNoDevice) return an_error("no CUDA GPU on this machine");
    if (err == cudaErrorInsufficientDriver) {
        int rt = 0;
        cudaRuntimeGetVersion(&rt);
        return an_error("no CUDA GPU: no NVIDIA driver, or one older than this build's CUDA runtime %d.%d", rt / 1000,
                        rt % 1000 / 10);
    }
    if (err != cudaSuccess) return an_error("no CUDA GPU: %s", cudaGetErrorString(err));
    if (*count < 1) return an_error("no CUDA GPU: the driver reports none");
    return 0;
}

extern "C" int cuda_select_device(int local_rank) {
    int count;
    if (device_count(&count)) return -1;
    if (local_rank < 0) return an_error("GPU for local rank %d: not a rank", local_rank);
    int d = local_rank % count;
    if (g_ready && d != g_device)
        return an_error("GPU %d chosen after GPU %d was already in use (choose it before the first GPU work)", d,
                        g_device);
    g_device = d;
    char what[48];
    snprintf(what, sizeof what, "selecting GPU %d", d);
    return cuda_check(cudaSetDevice(d), what);
}

extern "C" int cuda_init(char *name, size_t name_size) {
    int count;
    if (device_count(&count)) return -1;
    if (!g_ready) {
        char what[48];
        snprintf(what, sizeof what, "selecting GPU %d", g_device);
        if (cuda_check(cudaSetDevice(g_device), what) ||
            cuda_check(cudaStreamCreateWithFlags(&g_cuda_stream, cudaStreamNonBlocking), "creating a stream"))
            return -1;
        g_ready = 1;
    }
    if (name && name_size) {
        cudaDeviceProp prop;
        if (cuda_check(cudaGetDeviceProperties(&prop, g_device), "reading the GPU's properties")) return -1;
        snprintf(name, name_size, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
                 prop.totalGlobalMem / 1073741824.0);
    }
    return 0;
}

extern "C" void *cuda_alloc(size_t bytes, const char *what) {
    void *d = NULL;
    cudaError_t err = cudaMalloc(&d, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        (void)cudaGetLastError(); /* not the next launch's error (cuda_check) */
        an_error("CUDA: out of GPU memory (%zu bytes for %s): %s", bytes, what, cudaGetErrorString(err));
        return NULL;
    }
    return d;
}

extern "C" void cuda_free(void *d) {
    if (d) cudaFree(d);
}

extern "C" void *cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t err = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        an_error("CUDA: cannot allocate %zu bytes of page-locked host memory: %s", bytes, cudaGetErrorString(err));
        return NULL;
    }
    return p;
}

extern "C" void cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

extern "C" int cuda_upload(void *d, const void *host, size_t bytes) {
    return cuda_check(cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, g_cuda_stream), "copy to the GPU");
}

extern "C" int cuda_download(void *host, const void *d, size_t bytes) {
    if (cuda_check(cudaMemcpyAsync(host, d, bytes, cudaMemcpyDeviceToHost, g_cuda_stream), "copy from the GPU"))
        return -1;
    return cuda_sync();
}

extern "C" int cuda_memset0(void *d, size_t bytes) {
    return cuda_check(cudaMemsetAsync(d, 0, bytes, g_cuda_stream), "clearing GPU memory");
}

extern "C" int cuda_sync(void) {
    return cuda_check(cudaStreamSynchronize(g_cuda_stream), "running GPU work");
}
