/* precision.c: --device cpu|cuda, --precision fp32|bf16|tf32 and --conv for train, eval, classify and bench. bf16 switches every
 * matrix product to bfloat16 operands with float32 sums (gemm_set_bf16); weights, gradients,
 * the optimizer, LRN, pooling and the loss stay float32. Says once what runs the products here
 * (AMX tiles where the CPU and the OS allow them, AVX512_BF16 dot products where they are the
 * faster instruction, else the float32 kernels). */
#include "commands.h"
#include "../cpu/gemm.h"
#include "../cpu/peak.h"
#include "../cuda/cuda_api.h"
#include "../cuda/gpu_net.h"
#include "../layers/winograd.h"
#include "../util/common.h"
#include <stdio.h>
#include <string.h>

int device_select(const char *cmd, const char *device, const char *precision, int *gpu, int *gpu_math) {
    *gpu = *gpu_math = 0;
    if (!strcmp(device, "cpu")) return precision_select(cmd, precision);
    if (strcmp(device, "cuda")) return an_error("%s: --device must be cpu or cuda, not '%s'", cmd, device);
    if (strcmp(precision, "fp32") && strcmp(precision, "tf32") && strcmp(precision, "bf16"))
        return an_error("%s: --device cuda: --precision must be fp32, tf32 or bf16, not '%s'", cmd, precision);
    char name[160], why[256];
    if (cuda_init(name, sizeof name)) {
        snprintf(why, sizeof why, "%s", an_last_error());
        return an_error("%s: --device cuda: %s", cmd, why);
    }
    fprintf(stderr, "%s: on the GPU: %s, %s\n", cmd, name, precision);
    *gpu = 1, *gpu_math = !strcmp(precision, "tf32") ? GPU_TF32 : !strcmp(precision, "bf16") ? GPU_BF16 : GPU_FP32;
    return 0;
}

int precision_select(const char *cmd, const char *precision) {
    if (!strcmp(precision, "fp32")) { gemm_set_bf16(0); return 0; }
    if (strcmp(precision, "bf16")) return an_error("%s: --precision must be fp32 or bf16, not '%s'", cmd, precision);
    gemm_set_bf16(1);
    const char *what = "bf16: matrix products take bfloat16 operands and sum in float32; weights, optimizer, LRN and "
                       "loss stay float32.";
    const char *amx = cpu_has_amx_bf16() ? "The AMX tiles are not granted here" : "This CPU reports no AMX tiles";
    const char *wino = "3x3/5x5 layers keep Winograd, in float32 (fewer products than bf16 would gain)";
    if (gemm_bf16_amx())
        fprintf(stderr, "%s: %s The AMX tile kernels (TDPBF16PS) compute them (products with fewer than 32 terms: "
                "the float32 kernels), 3x3/5x5 layers on im2col, not Winograd.\n", cmd, what);
    else if (gemm_bf16_dot())
        fprintf(stderr, "%s: %s %s; the AVX512_BF16 dot-product kernels (VDPBF16PS) compute them; %s.\n", cmd, what,
                amx, wino);
    else
        fprintf(stderr, "%s: %s %s%s, so the float32 kernels compute them (float32 speed, bf16 numerics); %s.\n", cmd,
                what, amx, cpu_has_avx512_bf16() ? " and its AVX512_BF16 dot products run at half its FMA rate" : "",
                wino);
    return 0;
}

int conv_select(const char *cmd, const char *conv) {
    if (!strcmp(conv, "auto")) conv_winograd_override(-1);
    else if (!strcmp(conv, "im2col")) conv_winograd_override(0);
    else if (!strcmp(conv, "winograd")) conv_winograd_override(1);
    else return an_error("%s: --conv must be auto, im2col or winograd, not '%s'", cmd, conv);
    return 0;
}
