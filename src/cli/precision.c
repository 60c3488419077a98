/* precision.c: --precision fp32|bf16 for train, eval, classify and bench. bf16 switches every
 * matrix product to bfloat16 operands with float32 sums (gemm_set_bf16); weights, gradients,
 * the optimizer, LRN, pooling and the loss stay float32. Says once what runs the products here. */
#include "commands.h"
#include "../cpu/gemm.h"
#include "../cpu/peak.h"
#include "../util/common.h"
#include <stdio.h>
#include <string.h>

int precision_select(const char *cmd, const char *precision) {
    if (!strcmp(precision, "fp32")) { gemm_set_bf16(0); return 0; }
    if (strcmp(precision, "bf16")) return an_error("%s: --precision must be fp32 or bf16, not '%s'", cmd, precision);
    gemm_set_bf16(1);
    fprintf(stderr, "%s: bf16: matrix products take bfloat16 operands and sum in float32; weights, optimizer, "
            "LRN and loss stay float32. %s, so the float32 kernels compute them (float32 speed, bf16 numerics).\n",
            cmd, cpu_has_amx_bf16() ? "The AMX tile kernels are not built yet" : "This CPU reports no AMX tiles");
    return 0;
}
