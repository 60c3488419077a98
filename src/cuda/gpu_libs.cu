/* gpu_libs.cu: loads cuDNN, cuBLAS and (on demand) NCCL at run time (see gpu_libs.h). */
#include "cuda_internal.h"
#include "gpu_libs.h"
#include <dlfcn.h>

GpuLibs lib;

#define STR2(x) #x
#define STR(x) STR2(x) /* the name after macro expansion: cublasCreate is cublasCreate_v2 */

int gpu_libs_load(void) {
    static int loaded;
    if (loaded) return 0;
    const char *dnn_name = "libcudnn.so." STR(CUDNN_MAJOR), *blas_name = "libcublas.so." STR(CUBLAS_VER_MAJOR);
    void *dnn = dlopen(dnn_name, RTLD_NOW | RTLD_GLOBAL);
    if (!dnn) return an_error("cannot load cuDNN (%s): %s", dnn_name, dlerror());
    void *blas = dlopen(blas_name, RTLD_NOW | RTLD_GLOBAL);
    if (!blas) return an_error("cannot load cuBLAS (%s): %s", blas_name, dlerror());
#define GPU_LIB_LOAD(f)                                                                       \
    {                                                                                         \
        void *p = dlsym(dnn, STR(f));                                                         \
        if (!p) p = dlsym(blas, STR(f));                                                      \
        if (!p) return an_error("%s or %s lacks %s: a different version?", dnn_name, blas_name, STR(f)); \
        lib.f = (decltype(lib.f))p;                                                           \
    }
    GPU_LIB_FUNCS(GPU_LIB_LOAD)
    GPU_LIB_LOAD(cublasGemmEx)
#undef GPU_LIB_LOAD
    loaded = 1;
    return 0;
}

int gpu_nccl_load(void) {
    static int loaded;
    if (loaded) return 0;
    const char *name = "libnccl.so." STR(NCCL_MAJOR);
    void *nccl = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!nccl) return an_error("cannot load NCCL (%s), which data-parallel training on GPUs needs: %s", name, dlerror());
#define GPU_NCCL_LOAD(f)                                                                      \
    {                                                                                         \
        void *p = dlsym(nccl, STR(f));                                                        \
        if (!p) return an_error("%s lacks %s: a different version?", name, STR(f));          \
        lib.f = (decltype(lib.f))p;                                                           \
    }
    GPU_NCCL_FUNCS(GPU_NCCL_LOAD)
#undef GPU_NCCL_LOAD
    loaded = 1;
    return 0;
}

extern "C" int cuda_load_libraries(void) { return gpu_libs_load(); }
