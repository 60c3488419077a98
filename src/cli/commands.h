/* commands.h: the subcommands of `alexnet`, one file each. Each returns the process exit status. */
#ifndef ALEXNET_COMMANDS_H
#define ALEXNET_COMMANDS_H
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_prep(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_viz(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_neighbours(int argc, char **argv);
int cmd_export(int argc, char **argv);
struct Net;
struct Norm;
/* One image file as the network's input (classify's preprocessing: torchvision's resize + centre
 * crop + normalisation, or the paper's base image minus the mean image). 0 or -1 (an_error). */
int image_input(const struct Net *net, const struct Norm *norm, const char *path, float *input);
/* bench --model (bench_model.c). Returns 0 or -1 (an_error set). */
int bench_model(const char *model, const char *mode, int batch, const char *precision, const char *device,
                int steps, int warmup, int classes, int layers, const char *input);
/* --precision (precision.c): "fp32" or "bf16" (products with bfloat16 operands, and a note on
 * stderr saying what computes them); anything else: -1 with an error naming cmd. */
int precision_select(const char *cmd, const char *precision);
/* --conv auto|im2col|winograd: how the CPU runs stride-1 3x3 and 5x5 convolutions (auto: Winograd for
 * layers of 32 channels or more per group in float32 and batches of 8 images or more at 13x13, else
 * im2col + gemm; winograd: wherever the
 * shape allows). 0, or -1 with an_error set for another word. */
int conv_select(const char *cmd, const char *conv);
/* --device cpu (then precision_select) or cuda (precision fp32, tf32 or bf16; the GPU must answer,
 * and its name goes to stderr): sets *gpu and *gpu_math (a GpuMath). -1 with an error naming cmd. */
int device_select(const char *cmd, const char *device, const char *precision, int *gpu, int *gpu_math);
/* Print "alexnet: <last error>" and return 1. */
int fail(void);
#endif
