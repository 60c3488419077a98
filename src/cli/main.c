/* main.c: `alexnet <command> [flags]`: dispatch to the commands; `alexnet --version` prints the version. */
#include "args.h"
#include "commands.h"
#include "../cpu/bind.h"
#include "../util/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int fail(void) {
    fprintf(stderr, "alexnet: %s\n", an_last_error());
    return 1;
}

static const char *USAGE =
    "usage: alexnet <command> [flags]     (alexnet <command> --help for its flags; alexnet --version)\n"
    "\n"
    "AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) in C: train, evaluate and run the paper's\n"
    "network and its relatives on the CPU (and NVIDIA GPUs in a CUDA build).\n"
    "\n"
    "commands:\n"
    "  train     train a model on a dataset folder (IDX, CIFAR-10 binary, or ImageNet-style folders)\n"
    "  eval      top-1 and top-5 error of saved weights on a dataset's test/validation split\n"
    "  classify  the top classes of image files (JPEG, PNG)\n"
    "  info      a model's layer table: shapes, parameters, FLOPs\n"
    "  prep      preprocess an image folder once into a shard file (256x256 images, mean, PCA)\n"
    "  bench     benchmarks: --model NAME times training or inference steps against the CPU's peak,\n"
    "            --loader decode + augmentation in images/s, --peak the CPU's FMA (and bf16) peak\n"
    "  viz       pictures: viz filters draws the first layer's kernels (the paper's Figure 3)\n"
    "  features  a layer's activations (fc7: 4096 numbers) of every image of a split, to a file\n"
    "  neighbours  query images beside the images nearest by those features (the paper's Figure 4)\n"
    "  experiment  the paper's experiments: relu-vs-tanh (Figure 1), ablate (LRN, pooling, towers, lighting)\n"
    "  export    saved weights as an ONNX model (opset 13) for other runtimes\n";

/* How OpenMP threads wait at a barrier: libgomp spins for GOMP_SPINCOUNT iterations (300,000 by
 * default) before it sleeps. On a machine shared with another busy process that spinning takes
 * the time slices the thread being waited for needs: the README's main job (convnet4, many short
 * barriers) fell to 0.40 of its speed beside one busy process, 0.54 with a spin count of 1,000,
 * and nothing changes alone (docs/PERFORMANCE.md). libgomp reads the setting once, when it
 * loads, before main: so the program sets it and runs itself again (same process, same
 * arguments), unless the user's environment already says GOMP_SPINCOUNT or OMP_WAIT_POLICY, or
 * binds the threads (OMP_PROC_BIND other than false, OMP_PLACES, GOMP_CPU_AFFINITY): libgomp has
 * then bound this thread to its first place before main, and the re-run would inherit that one-CPU
 * mask and put every thread there. The fuzz build (main renamed by -Dmain=...) never does. */
#define ALEXNET_SPINCOUNT "1000"
#ifndef main
static void set_openmp_waiting(char **argv) {
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    const char *bind = getenv("OMP_PROC_BIND");
    if ((bind && strcasecmp(bind, "false") != 0) || getenv("OMP_PLACES") || getenv("GOMP_CPU_AFFINITY")) return;
    /* by its own path, so that the process keeps its name (ps, pgrep -x alexnet), not "exe" */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || n >= (ssize_t)sizeof self - 1) return;
    self[n] = 0;
    if (setenv("GOMP_SPINCOUNT", ALEXNET_SPINCOUNT, 1) != 0) return;
    execv(self, argv);
    unsetenv("GOMP_SPINCOUNT"); /* no exec (the file replaced meanwhile): libgomp's default, as before */
}
#endif

/* One OpenMP thread per CPU (src/cpu/bind.c: a busy neighbour then costs about its share), unless
 * the user's environment says how OpenMP binds its threads (OMP_PROC_BIND, even false, OMP_PLACES,
 * GOMP_CPU_AFFINITY): that is the user's choice to keep. */
#ifndef main
static void bind_openmp_threads(void) {
    if (getenv("OMP_PROC_BIND") || getenv("OMP_PLACES") || getenv("GOMP_CPU_AFFINITY")) return;
    cpu_bind_threads();
}
#endif

int main(int argc, char **argv) {
#ifndef main
    set_openmp_waiting(argv);
    bind_openmp_threads();
#endif
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (strcmp(c, "--version") == 0 || strcmp(c, "version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "alexnet: %s takes no arguments\n", c);
            return 2;
        }
        printf("alexnet %s\n", ALEXNET_VERSION);
        return 0;
    }
    if (strcmp(c, "train") == 0) return cmd_train(argc, argv);
    if (strcmp(c, "eval") == 0) return cmd_eval(argc, argv);
    if (strcmp(c, "classify") == 0) return cmd_classify(argc, argv);
    if (strcmp(c, "info") == 0) return cmd_info(argc, argv);
    if (strcmp(c, "prep") == 0) return cmd_prep(argc, argv);
    if (strcmp(c, "bench") == 0) return cmd_bench(argc, argv);
    if (strcmp(c, "viz") == 0) return cmd_viz(argc, argv);
    if (strcmp(c, "features") == 0) return cmd_features(argc, argv);
    if (strcmp(c, "experiment") == 0) return cmd_experiment(argc, argv);
    if (strcmp(c, "neighbours") == 0) return cmd_neighbours(argc, argv);
    if (strcmp(c, "export") == 0) return cmd_export(argc, argv);
    fprintf(stderr, "alexnet: unknown command '%s' (commands: train, eval, classify, info, prep, bench, viz, features, "
            "neighbours, experiment, export)\n", c);
    return 2;
}
