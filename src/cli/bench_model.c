/* bench_model.c: `alexnet bench --model NAME`: images/s of one training step (forward, loss,
 * backward, SGD update) or of inference, on synthetic data, after warm-up steps; with the time
 * and achieved GFLOP/s of every layer beside the machine's measured FMA peak (src/cpu/peak.c).
 * With --device cuda the same steps run on the GPU (src/cuda/gpu_net.h), the synthetic batch
 * uploaded once, and every step waited for.
 * The last line is `images/s: X`, the figure bench/speed.sh puts beside PyTorch's. */
#include "commands.h"
#include "../cpu/bind.h"
#include "../cpu/gemm.h"
#include "../cpu/peak.h"
#include "../cuda/cuda_api.h"
#include "../cuda/gpu_net.h"
#include "../model/model.h"
#include "../train/sgd.h"
#include "../util/common.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The OpenMP waiting policy this process runs with, as its environment gives it to libgomp */
static const char *openmp_waiting(void) {
    static char buf[96];
    const char *spin = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
    if (spin) snprintf(buf, sizeof buf, "GOMP_SPINCOUNT=%.40s", spin);
    else if (policy) snprintf(buf, sizeof buf, "OMP_WAIT_POLICY=%.40s", policy);
    else snprintf(buf, sizeof buf, "libgomp's default");
    return buf;
}

static const char *kind_name(LayerKind k) {
    static const char *names[] = {"conv", "relu", "tanh", "lrn", "maxpool", "avgpool", "dropout", "linear"};
    return names[k];
}

/* Multiply-add FLOPs of layer i's backward pass per image: the weight gradient and, except for
 * the first layer, the input gradient, each as many as the forward pass. */
static double backward_flops(const Net *net, int i) {
    const Layer *l = &net->layers[i];
    return l->flops * (i == 0 ? 1.0 : 2.0);
}

/* Bytes a layer's pass reads and writes at least (floats: the GPU's floor is these over the copy
 * rate): forward x, y and the parameters; backward also dy, dx and the parameter gradients. */
static double layer_bytes(const Layer *l, int batch, int backward) {
    double in = (double)l->in_c * l->in_h * l->in_w * batch, out = (double)l->out_c * l->out_h * l->out_w * batch;
    double p = (double)(l->w_size + l->b_size);
    return 4.0 * (backward ? 2.0 * in + out + 2.0 * p : in + out + p);
}

/* The rate the products can reach: the float32 FMA peak, or in bf16 mode on AVX512_BF16 dot
 * products (gemm_bf16_dot) the rate of those */
static double machine_peak(int threads) {
    return gemm_bf16_dot() ? cpu_bf16_dot_gflops(threads, 0.5) : cpu_fma_peak_gflops(threads, 0.5);
}
static const char *peak_name(void) { return gemm_bf16_dot() ? "bf16 dot-product" : "float32 FMA"; }

/* Per layer: time, GFLOP/s and % of the CPU's FMA peak; on the GPU (peak 0) the bytes instead */
static void print_layers(const Net *net, int train, int steps, int batch, double peak) {
    const char *third = peak > 0 ? "%peak" : "MB";
    printf("\n%-3s %-12s %-8s %10s %9s %8s", "", "layer", "kind", "fwd ms", "GFLOP/s", third);
    if (train) printf(" %10s %9s %8s", "bwd ms", "GFLOP/s", third);
    printf("\n");
    double fsum = 0, bsum = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        for (int pass = 0; pass < 1 + train; pass++) {
            double t = (pass ? l->bwd_seconds : l->fwd_seconds) / steps;
            double flops = pass ? backward_flops(net, i) : l->flops;
            if (pass) bsum += t;
            else fsum += t, printf("%-3d %-12s %-8s", i, l->spec->name ? l->spec->name : "", kind_name(l->spec->kind));
            printf(" %10.3f", t * 1e3);
            double g = flops > 0 && t > 0 ? flops * batch / t / 1e9 : 0.0;
            if (g > 0) printf(" %9.1f", g);
            else printf(" %9s", "-");
            if (peak <= 0) printf(" %8.2f", layer_bytes(l, batch, pass) / 1e6);
            else if (g > 0) printf(" %7.1f%%", 100.0 * g / peak);
            else printf(" %8s", "-");
        }
        printf("\n");
    }
    printf("%-3s %-12s %-8s %10.3f", "", "all layers", "", fsum * 1e3);
    if (train) printf(" %9s %8s %10.3f", "", "", bsum * 1e3);
    printf("\n\n");
}

int bench_model(const char *model, const char *mode, int batch, const char *precision, const char *device,
                int steps, int warmup, int classes, int layers, const char *input) {
    int train = 0;
    if (!strcmp(mode, "train")) train = 1;
    else if (strcmp(mode, "infer")) return an_error("bench: --mode must be train or infer, not '%s'", mode);
    if (strcmp(device, "cpu") && strcmp(device, "cuda"))
        return an_error("bench: --device must be cpu or cuda, not '%s'", device);
    int gpu = !strcmp(device, "cuda");
    GpuMath math = GPU_FP32;
    char gpu_name[160] = "";
    if (gpu) {
        if (!strcmp(precision, "tf32")) math = GPU_TF32;
        else if (!strcmp(precision, "bf16")) math = GPU_BF16;
        else if (strcmp(precision, "fp32"))
            return an_error("bench: --device cuda: --precision must be fp32, tf32 or bf16, not '%s'", precision);
        if (cuda_init(gpu_name, sizeof gpu_name)) {
            char why[256];
            snprintf(why, sizeof why, "%s", an_last_error());
            return an_error("bench: --device cuda: %s", why);
        }
    } else if (precision_select("bench", precision)) {
        return -1;
    }
    if (batch < 1 || steps < 0 || warmup < 0 || classes < 2)
        return an_error("bench: --batch must be >= 1, --steps and --warmup >= 0, --classes >= 2");
    const ModelSpec *spec = model_find(model);
    if (!spec) return -1;
    int size = spec->in_size ? spec->in_size : 32, chans = 3; /* the small networks: CIFAR-sized, as `info` */
    if (input) {
        char end;
        if (sscanf(input, "%dx%d%c", &chans, &size, &end) != 2 || chans < 1 || chans > 4 || size < 1 || size > 4096)
            return an_error("bench: --input must be CxS (C channels of S x S pixels, C 1-4), not '%s'", input);
    }

    Net net;
    if (net_create(&net, spec, chans, classes, size, batch)) return -1;
    net.layerwise = layers; /* --layers times each layer: the layer-by-layer passes */
    /* weights: uniform with the paper's standard deviation (net_init's normals take seconds for
     * 61M parameters, and the values do not change the speed) */
    for (int i = 0; i < net.nlayers; i++) {
        const Layer *l = &net.layers[i];
        float a = 0.01f * 1.7320508f;
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < l->w_size; j++) net.params[l->w_off + j] = a * (2.0f * an_uniform(1, l->w_off + j) - 1.0f);
        for (size_t j = 0; j < l->b_size; j++) net.params[l->b_off + j] = 0.1f;
    }
    int rc = 0;
    float *momentum = NULL;
    GpuNet *g = NULL;
    int *labels = malloc((size_t)batch * sizeof *labels);
    if (train && !(momentum = an_alloc(net.nparams * sizeof(float), "momentum"))) { rc = -1; goto done; }
    if (!labels) { rc = an_error("out of memory (labels)"); goto done; }
    if (!train && !gpu && net_freeze_bf16(&net)) { rc = -1; goto done; } /* inference: as classify does */
    /* synthetic images: pixels minus a mean, in the 0..255 units of the paper's input */
    size_t in_count = (size_t)batch * chans * size * size;
    for (size_t i = 0; i < in_count; i++) net.input[i] = 100.0f * (an_uniform(7, i) - 0.5f);
    for (int i = 0; i < batch; i++) labels[i] = (int)(an_hash64(8, (uint64_t)i) % (uint64_t)classes);

    int threads = omp_get_max_threads();
    double flops_image = net_flops(&net) * (train ? 3.0 : 1.0); /* backward: twice the forward */
    double peak = 0.0;
    if (gpu) {
        printf("bench: %s, %s, batch %d, %s, cuda: %s, %d classes, input %dx%dx%d; %.2f GFLOP per image per %s\n",
               model, mode, batch, precision, gpu_name, classes, chans, size, size, flops_image / 1e9, train ? "step" : "forward");
        fflush(stdout);
        if (!(g = gpu_net_create(&net, math)) || gpu_net_put_input(g, batch)) { rc = -1; goto done; }
    } else {
        /* the CPUs the process may run on: once pinned, omp_get_num_procs would read one CPU */
        int cpus = cpu_bind_active() ? cpu_bind_cpus() : omp_get_num_procs();
        printf("bench: %s, %s, batch %d, %s, cpu, %d thread%s on %d CPU%s%s (OpenMP waiting: %s), %d classes, input "
               "%dx%dx%d\n",
               model, mode, batch, precision, threads, threads == 1 ? "" : "s", cpus, cpus == 1 ? "" : "s",
               cpu_bind_active() ? ", one per CPU" : "", openmp_waiting(), classes, chans, size, size);
        peak = machine_peak(threads);
        printf("bench: measured %s peak %.1f GFLOP/s (%d thread%s, %s); %.2f GFLOP per image per %s\n", peak_name(),
               peak, threads, threads == 1 ? "" : "s", gemm_bf16_dot() ? "AVX512_BF16" : cpu_fma_isa(), flops_image / 1e9,
               train ? "step" : "forward");
        fflush(stdout);
    }

    double t_timed = 0.0;
    int timed = 0;
    for (int s = 0; rc == 0; s++) {
        int is_warm = s < warmup;
        if (!is_warm && timed == 0) /* start the clocks, per layer too */
            for (int i = 0; i < net.nlayers; i++) net.layers[i].fwd_seconds = net.layers[i].bwd_seconds = 0.0;
        double t0 = an_now();
        if (gpu) {
            rc = gpu_net_forward(g, batch, train, an_hash64(9, (uint64_t)s), layers);
            if (!rc && train)
                rc = gpu_net_loss(g, labels, NULL) || gpu_net_backward(g, layers) || gpu_net_sgd(g, 1e-6f, 0.9f, 5e-4f);
            if (rc || (rc = gpu_net_sync(g))) break;
        } else if (train && net_chunked_ok(&net, batch)) { /* what training runs for this network */
            float loss;
            if (net_train_chunked(&net, batch, labels, &loss)) { rc = -1; break; }
            sgd_update(net.nparams, net.params, net.grads, momentum, 1e-6f, 0.9f, 5e-4f);
        } else if (!net_forward(&net, batch, train, an_hash64(9, (uint64_t)s))) {
            rc = -1;
            break;
        } else if (train) {
            net_loss(&net, labels, NULL);
            if (net_backward(&net)) { rc = -1; break; }
            sgd_update(net.nparams, net.params, net.grads, momentum, 1e-6f, 0.9f, 5e-4f);
        }
        double dt = an_now() - t0;
        if (is_warm) continue;
        t_timed += dt, timed++;
        /* --steps N: exactly N; 0: at least 3 steps and 3 seconds */
        if (steps ? timed >= steps : (timed >= 3 && t_timed >= 3.0)) break;
    }
    if (rc) goto done;
    if (!gpu) { /* measured again after the steps, keeping the higher: a slow spell of this VM at the start
                 * would otherwise understate the peak (and overstate the percentages) */
        double again = machine_peak(threads);
        if (again > peak) {
            peak = again;
            printf("bench: %s peak measured again after the steps: %.1f GFLOP/s\n", peak_name(), peak);
        }
    }
    if (layers) print_layers(&net, train, timed, batch, peak);
    double per_step = t_timed / timed, rate = batch / per_step;
    double gflops = flops_image * rate / 1e9;
    printf("bench: %d timed step%s after %d warm-up: %.1f ms per step, %.1f GFLOP/s", timed, timed == 1 ? "" : "s",
           warmup, per_step * 1e3, gflops);
    if (peak > 0) printf(" (%.1f%% of the %s peak)", 100.0 * gflops / peak, peak_name());
    printf("\n");
    printf("images/s: %.1f\n", rate);
done:
    gpu_net_free(g);
    an_free(momentum);
    free(labels);
    net_free(&net);
    return rc;
}
