/* fuzz_cli.c: the command line (src/cli/main.c dispatch, src/cli/args.c and every command's flag
 * table and checks). The input is split at NUL bytes into argv[1..] (at most 64 arguments;
 * argv[0] is "alexnet"), and the real alexnet main (built with -Dmain=alexnet_main) runs on it.
 *
 * Nothing real is done: the functions where a command's work starts are replaced at link time
 * (ld --wrap, see fuzz/fuzz.mk) by stand-ins that check what they are given and return an error:
 * train_run (runs train_config_check only), checkpoint_load_net, dataset_load(_split), shard_prep(_split),
 * shard_open, bench_model and the peak measurements. net_create (alexnet info) runs for real
 * on the small models up to a bounded size, and is refused above it (the harness's limit, not the
 * program's: see fuzz/README.md). stdout and stderr are discarded by -close_fd_mask=3. */
#include "fuzz_util.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/train/train.h"
#include "../src/data/dataset.h"
#include "../src/data/shard.h"
#include "../src/util/common.h"
#include <signal.h>
#include <stdlib.h>

int alexnet_main(int argc, char **argv);

int __real_net_create(Net *net, const ModelSpec *spec, int in_c, int classes, int in_size, int max_batch);

int __wrap_train_run(const TrainConfig *cfg) {
    if (train_config_check(cfg)) return -1;
    return an_error("fuzz: train_run not run");
}
int __wrap_checkpoint_load_net(const char *path, const ModelSpec *spec, int max_batch, Net *net, Norm *norm,
                               StFile *file) {
    (void)net, (void)norm, (void)file;
    if (!path || !spec || max_batch < 1) abort();
    return an_error("%s: fuzz: not loaded", path);
}
int __wrap_dataset_load(Dataset *ds, const char *path, int train) {
    (void)train;
    memset(ds, 0, sizeof *ds);
    return an_error("%s: fuzz: not loaded", path ? path : "(null)");
}
int __wrap_dataset_load_split(Dataset *ds, const char *path, int train, float val_split, unsigned long long seed) {
    (void)train, (void)val_split, (void)seed;
    memset(ds, 0, sizeof *ds);
    return an_error("%s: fuzz: not loaded", path ? path : "(null)");
}
int __wrap_shard_prep_split(const char *data_dir, const char *out_path, int threads, int progress, int *skipped,
                            float val_split) {
    (void)progress, (void)val_split;
    if (!data_dir || !out_path || threads < 1) abort();
    if (skipped) *skipped = 0;
    return an_error("fuzz: shard_prep not run");
}
int __wrap_shard_prep(const char *data_dir, const char *out_path, int threads, int progress, int *skipped) {
    (void)progress;
    if (!data_dir || !out_path || threads < 1) abort();
    if (skipped) *skipped = 0;
    return an_error("fuzz: shard_prep not run");
}
int __wrap_shard_open(const char *path, Shard *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    return an_error("%s: fuzz: not opened", path);
}
int __wrap_bench_model(const char *model, const char *mode, int batch, const char *precision, const char *device,
                       int steps, int warmup, int classes, int layers) {
    (void)model, (void)mode, (void)batch, (void)precision, (void)device, (void)steps, (void)warmup, (void)classes,
        (void)layers;
    return an_error("fuzz: bench_model not run");
}
double __wrap_cpu_fma_peak_gflops(int threads, double seconds) { (void)threads, (void)seconds; return 1.0; }
double __wrap_cpu_bf16_dot_gflops(int threads, double seconds) { (void)threads, (void)seconds; return 0.0; }
int __wrap_net_create(Net *net, const ModelSpec *spec, int in_c, int classes, int in_size, int max_batch) {
    if (spec->in_size == 0 && in_c <= 16 && classes <= 1000 && in_size <= 64 && max_batch <= 4)
        return __real_net_create(net, spec, in_c, classes, in_size, max_batch);
    memset(net, 0, sizeof *net);
    return an_error("fuzz: net_create(%s, %d channels, %d classes, input %d, batch %d) not run", spec->name, in_c,
                    classes, in_size, max_batch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum { MAX_ARGS = 64 };
    char *copy = malloc(size + 1), *argv[MAX_ARGS + 2];
    if (!copy) abort();
    memcpy(copy, data, size);
    copy[size] = 0;
    int argc = 0;
    argv[argc++] = "alexnet";
    for (size_t at = 0; at <= size && argc <= MAX_ARGS;) {
        argv[argc++] = copy + at;
        at += strlen(copy + at) + 1;
    }
    argv[argc] = NULL;
    struct sigaction old;
    sigaction(SIGINT, NULL, &old); /* cmd_train installs its Ctrl-C handler: give libFuzzer its own back */
    fuzz_report("alexnet", alexnet_main(argc, argv));
    sigaction(SIGINT, &old, NULL);
    free(copy);
    return 0;
}
