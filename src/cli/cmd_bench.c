/* cmd_bench.c: `alexnet bench`: benchmarks. --model: a training step or inference in images/s
 * (bench_model.c; beside PyTorch in bench/speed.sh); --loader: the training input pipeline (decode
 * + the paper's augmentation) in images/s, to compare with Pillow + torchvision transforms
 * (bench/loader_pillow.py, side by side in bench/loader.sh); --peak: the FMA peak. */
#include "args.h"
#include "commands.h"
#include "../data/augment.h"
#include "../data/dataset.h"
#include "../data/loader.h"
#include "../cpu/peak.h"
#include "../util/common.h"
#include <omp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *HELP =
    "usage: alexnet bench --model NAME [--mode train|infer] [--batch N] [--precision fp32|bf16 (GPU: |tf32)]\n"
    "                     [--device cpu|cuda] [--steps N] [--warmup N] [--classes N] [--layers]\n"
    "                     [--conv auto|im2col|winograd] [--input CxS]\n"
    "       alexnet bench --loader --data PATH [--threads N] [--limit N] [--crop N] [--epochs N]\n"
    "       alexnet bench --peak\n"
    "\n"
    "--model times one training step (forward, loss, backward, SGD update; --mode train, the default)\n"
    "or one forward pass (--mode infer) on synthetic data, batch 128 by default, 1000 classes, after\n"
    "--warmup steps (default 2); --steps N timed steps (default: at least 3 steps and 3 seconds).\n"
    "Training steps of small networks (at most 1M parameters, no dropout, batches of 32-256: convnet4)\n"
    "run as training does, chunks of the batch through every layer, one thread a chunk.\n"
    "--layers adds each layer's time and GFLOP/s beside the measured FMA peak (small networks then\n"
    "run layer by layer). OMP_NUM_THREADS sets the threads. bench/speed.sh runs it beside PyTorch.\n"
    "--precision bf16 gives the products bfloat16 operands with float32 sums: AMX tiles where the CPU\n"
    "and Linux allow them (Intel Sapphire Rapids and later; percentages of the float32 FMA peak),\n"
    "AVX512_BF16 dot products where they beat float32 FMAs (AMD Zen 4 and later; the percentages are\n"
    "then of their measured peak), else the float32 kernels. With AMX, bf16 runs 3x3 and 5x5 layers\n"
    "on im2col; without, their Winograd products stay float32 (fewer products beat bf16's 2x).\n"
    "--conv: how the CPU runs stride-1 3x3 and 5x5 convolutions: auto (the default: Winograd F(4x4,3x3)\n"
    "and F(4x4,5x5) for layers of 32 or more channels per group in float32, the forward pass at any\n"
    "batch from 6x6 outputs (the filters' transform kept while the weights do not change: inference),\n"
    "the backward passes from 6x6 outputs for batches of 128 4x4 tiles or more (8 images of 13x13);\n"
    "strided layers as stride-1 layers on their input's phases where those qualify: conv1, 11x11 of\n"
    "stride 4, as 3x3 over 48 phase channels; else im2col + gemm),\n"
    "im2col, or winograd (wherever the shape allows); --layers then counts Winograd layers' GFLOP/s as\n"
    "direct convolution's.\n"
    "--input CxS: C channels of S x S pixels (default: the model's, 3x32 for the small networks;\n"
    "1x28 is Fashion-MNIST's, the README's main job).\n"
    "--device cuda runs the steps on the GPU (the batch uploaded once, every step waited for;\n"
    "--precision fp32, tf32 or bf16); --layers then prints each layer's bytes instead of % of peak.\n"
    "\n"
    "--loader times the training input pipeline: the real loader in training mode with the paper's\n"
    "augmentation (base image 256x256, random crop, mirror, PCA lighting 0.1, mean image) over the\n"
    "first N images of the training split, batches of 128, 4 batches prefetched. PATH is an image\n"
    "folder (its train/ split, JPEGs decoded every time) or a shard file written by `alexnet prep`.\n"
    "An untimed warm-up pass runs first, then --epochs timed passes of the same loader (new order\n"
    "and augmentation each, the prefetch ring reused as in training). Compare with\n"
    "bench/loader_pillow.py (Pillow + torchvision), or run both with bench/loader.sh.\n"
    "  --threads N  loader worker threads (default: the online CPUs)\n"
    "  --limit N    the first N training images in sorted order (default all)\n"
    "  --crop N     network input size (default 224)     --epochs N   timed passes (default 1)\n"
    "\n"
    "--peak measures the float32 FMA peak (GFLOP/s) on OpenMP's threads, the AVX512_BF16 dot-product\n"
    "rate, and the AMX bfloat16 tiles' rate where the CPU has them (else whether it reports them).\n"
    "Every benchmark ends with a line `images/s: X` (--peak: `GFLOP/s: X`).\n";

/* Folders carry no statistics; the benchmark then uses fixed, plausible ones so that it does the
 * same work as training: the ImageNet RGB eigenpairs of fb.resnet.torch (eigenvalues 0.2175,
 * 0.0188, 0.0045 on 0..1 pixels, times 255^2: variances in 0..255 units, as shards store them;
 * eigvec[i] is the i-th eigenvector) and a mean image filled with the ImageNet channel means (0.485, 0.456, 0.406
 * times 255). Shard files supply their own. */
static const PcaLighting k_imagenet_pca = {
    {0.2175f * 65025.0f, 0.0188f * 65025.0f, 0.0045f * 65025.0f},
    {{-0.5675f, -0.5808f, -0.5836f}, {0.7192f, -0.0045f, -0.6948f}, {0.4009f, -0.8140f, 0.4203f}},
};
static const float k_imagenet_mean[3] = {0.485f * 255.0f, 0.456f * 255.0f, 0.406f * 255.0f};

static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* One pass of the loader: drain every batch into *images. */
static int drain(Loader *l, long *images) {
    Batch *b;
    while ((b = loader_next(l)) != NULL) {
        *images += b->n;
        loader_release(l, b);
    }
    return loader_error(l) ? an_error("%s", loader_error(l)) : 0;
}

static int bench_loader(const char *data, int threads, int limit, int crop, int epochs) {
    Dataset ds;
    if (dataset_load(&ds, data, 1)) return -1;
    int count = limit && limit < ds.n ? limit : ds.n;
    int *indices = malloc((size_t)(count > 0 ? count : 1) * sizeof *indices);
    float *mean = NULL;
    int rc = 0;
    if (!indices) { rc = an_error("out of memory (%d indices)", count); goto done; }
    for (int i = 0; i < count; i++) indices[i] = i;
    if (crop > 256) { rc = an_error("bench: --crop %d is larger than the 256x256 base image", crop); goto done; }
    const float *mean_image = ds.mean_image;
    if (!mean_image) {
        size_t plane = (size_t)256 * 256;
        if (!(mean = an_alloc(3 * plane * sizeof *mean, "mean image"))) { rc = -1; goto done; }
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < plane; i++) mean[c * plane + i] = k_imagenet_mean[c];
        mean_image = mean;
    }
    LoaderConfig cfg = {0};
    cfg.ds = &ds;
    cfg.indices = indices;
    cfg.batch = 128;
    cfg.mode = LOADER_TRAIN;
    cfg.seed = 1;
    cfg.threads = threads;
    cfg.prefetch = 4;
    cfg.input.paper = 1;
    cfg.input.channels = 3;
    AugmentConfig *a = &cfg.input.aug;
    a->size = 256;
    a->crop = crop;
    a->random_crop = 1;
    a->flip = 1;
    a->lighting_std = 0.1f;
    a->pca = ds.pca ? ds.pca : &k_imagenet_pca;
    a->mean_image = mean_image;
    a->scale = 1.0f;
    const char *kind = ds.kind == DATASET_SHARD ? "shard file" : ds.kind == DATASET_FOLDER ? "image folder" : "in-memory set";
    printf("loader: %s (%s, train split, %d images), %d x %d images, crop %d, batch %d, prefetch %d, %d thread%s\n",
           data, kind, ds.n, epochs, count, crop, cfg.batch, cfg.prefetch, threads, threads == 1 ? "" : "s");
    if (!ds.pca || !ds.mean_image)
        printf("loader: no statistics in %s: fixed ImageNet PCA eigenpairs and channel-mean image\n", data);
    fflush(stdout);

    /* warm-up: one untimed pass (page cache, allocator, the prefetch ring's first touch); the
     * timed passes reuse the same loader, as training does from one epoch to the next */
    long warm = 0, images = 0;
    cfg.count = count;
    cfg.epoch = 0;
    Loader *l = NULL;
    if ((rc = loader_start(&l, &cfg)) != 0) goto done;
    rc = drain(l, &warm);
    double c0 = cpu_seconds(), t0 = an_now();
    for (int e = 1; e <= epochs && rc == 0; e++)
        if ((rc = loader_restart(l, e, 0)) == 0) rc = drain(l, &images);
    double secs = an_now() - t0, cpu = cpu_seconds() - c0;
    loader_stop(l);
    if (rc) goto done;
    double rate = secs > 0 ? images / secs : 0;
    printf("loader: %ld images in %.3f s: %.1f images/s, %.1f images/s per thread "
           "(cpu %.3f s: %.1f images per cpu-second)\n",
           images, secs, rate, rate / threads, cpu, cpu > 0 ? images / cpu : 0);
    if (images < (long)count * epochs)
        printf("loader: %ld images skipped (undecodable files, see the warnings above)\n",
               (long)count * epochs - images);
    printf("images/s: %.1f\n", rate);
done:
    an_free(mean);
    free(indices);
    dataset_free(&ds);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    const char *data = NULL, *model = NULL, *mode = "train", *precision = "fp32", *device = "cpu", *conv = "auto",
               *input = NULL;
    int loader = 0, peak = 0, threads = 0, limit = 0, limit_given = 0, crop = 224, epochs = 1, help = 0, threads_seen = 0;
    int batch = 128, steps = 0, warmup = 2, classes = 1000, layers = 0;
    ArgSpec specs[] = {{"--loader", ARG_FLAG, &loader, NULL},   {"--data", ARG_STR, &data, NULL},
                       {"--threads", ARG_INT, &threads, &threads_seen}, {"--limit", ARG_INT, &limit, &limit_given},
                       {"--crop", ARG_INT, &crop, NULL},         {"--epochs", ARG_INT, &epochs, NULL},
                       {"--model", ARG_STR, &model, NULL},       {"--mode", ARG_STR, &mode, NULL},
                       {"--batch", ARG_INT, &batch, NULL},       {"--precision", ARG_STR, &precision, NULL},
                       {"--device", ARG_STR, &device, NULL},     {"--steps", ARG_INT, &steps, NULL},
                       {"--warmup", ARG_INT, &warmup, NULL},     {"--classes", ARG_INT, &classes, NULL},
                       {"--layers", ARG_FLAG, &layers, NULL},    {"--peak", ARG_FLAG, &peak, NULL},
                       {"--conv", ARG_STR, &conv, NULL},         {"--input", ARG_STR, &input, NULL}};
    if (args_parse("bench", argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]), NULL, 0, &help) < 0)
        return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (loader + peak + (model != NULL) != 1)
        return an_error("bench: give one of --model NAME, --loader or --peak (see alexnet bench --help)"), fail();
    if (peak) {
        double g = cpu_fma_peak_gflops(0, 2.0);
        double h = cpu_bf16_dot_gflops(0, 1.0);
        if (h > 0.0) printf("bfloat16 AVX512_BF16 dot products: %.1f GFLOP/s (%.2fx the float32 FMA peak)\n", h, h / g);
        else printf("bfloat16 AVX512_BF16 dot products: not on this CPU\n");
        double x = cpu_amx_bf16_gflops(0, 1.0);
        if (x > 0.0) printf("AMX bfloat16 tiles: reported by the CPU, %.1f GFLOP/s (%.2fx the float32 FMA peak)\n", x, x / g);
        else printf("AMX bfloat16 tiles: %s\n", cpu_has_amx_bf16() ? "reported by the CPU, not granted by the OS"
                                                                    : "not reported by the CPU");
        printf("float32 FMA peak: %.1f GFLOP/s on %d threads (%s)\nGFLOP/s: %.1f\n", g, omp_get_max_threads(),
               cpu_fma_isa(), g);
        return 0;
    }
    if (conv_select("bench", conv)) return fail();
    if (model) return bench_model(model, mode, batch, precision, device, steps, warmup, classes, layers, input) ? fail() : 0;
    if (!data) return an_error("bench: --loader needs --data PATH (an image folder or a shard file)"), fail();
    if (!threads_seen) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (arg_range("bench", "--threads", threads, 1, LONG_MAX) || arg_range("bench", "--crop", crop, 1, LONG_MAX) ||
        arg_range("bench", "--epochs", epochs, 1, LONG_MAX) ||
        (limit_given && arg_range("bench", "--limit", limit, 1, LONG_MAX)))
        return fail();
    return bench_loader(data, threads, limit, crop, epochs) ? fail() : 0;
}
