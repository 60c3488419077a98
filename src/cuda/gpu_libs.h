/* gpu_libs.h: cuDNN and cuBLAS, loaded with dlopen when a GPU network is first made rather than
 * linked: the binary then starts (and runs on the CPU) where they are missing, and a CPU command
 * does not map their few hundred megabytes. Call through `lib`: lib.cudnnCreate(&h). NCCL (the
 * gradient all-reduce of data-parallel training) is loaded the same way, apart and only when
 * asked for (gpu_nccl_load): a single-GPU run never needs it. */
#ifndef ALEXNET_GPU_LIBS_H
#define ALEXNET_GPU_LIBS_H
#include <cublas_v2.h>
#include <cudnn.h>
#include <nccl.h>

#define GPU_LIB_FUNCS(X) \
    X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream) \
    X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnSetTensor4dDescriptor) \
    X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnSetFilter4dDescriptor) \
    X(cudnnCreateConvolutionDescriptor) X(cudnnDestroyConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor) \
    X(cudnnSetConvolutionGroupCount) X(cudnnSetConvolutionMathType) \
    X(cudnnFindConvolutionForwardAlgorithm) X(cudnnFindConvolutionBackwardDataAlgorithm) \
    X(cudnnFindConvolutionBackwardFilterAlgorithm) X(cudnnGetConvolutionForwardWorkspaceSize) \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize) X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
    X(cudnnConvolutionForward) X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter) \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetMathMode) X(cublasSgemm)

#define GPU_NCCL_FUNCS(X) \
    X(ncclGetUniqueId) X(ncclCommInitRank) X(ncclAllReduce) X(ncclCommDestroy) X(ncclCommAbort) \
    X(ncclGetErrorString) X(ncclCommGetAsyncError)

/* cublasGemmEx is overloaded in C++ (a wrapper for the old compute-type argument): the C one */
typedef cublasStatus_t (*GemmExFn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                   const void *, cudaDataType, int, const void *, cudaDataType, int, const void *,
                                   void *, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

struct GpuLibs {
#define GPU_LIB_POINTER(f) decltype(&::f) f;
    GPU_LIB_FUNCS(GPU_LIB_POINTER)
    GPU_NCCL_FUNCS(GPU_LIB_POINTER) /* set by gpu_nccl_load only */
#undef GPU_LIB_POINTER
    GemmExFn cublasGemmEx;
};
extern GpuLibs lib;

/* Load both libraries (once). 0, or -1 with an_error naming what could not be loaded. */
int gpu_libs_load(void);
/* Load NCCL (libnccl.so.2, once). 0, or -1 with an_error naming what could not be loaded. */
int gpu_nccl_load(void);
#endif
