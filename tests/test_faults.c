/* test_faults.c: what a user sees when things go wrong during training and evaluation:
 *   - a NaN output never counts as a correct answer (true_class_rank, evaluate, `alexnet eval`);
 *   - a run whose weights turn NaN stops at that step with one error line, and its checkpoint and
 *     best weights stay as they were (the last good ones);
 *   - SIGTERM, as batch schedulers send it, stops after the step with a checkpoint, as Ctrl-C does;
 *   - non-finite or negative numbers on the command line are refused before any work starts.
 * The training tests use Fashion-MNIST (Debian's dataset-fashion-mnist) and skip without it. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/model/model.h"
#include "../src/train/batch.h"
#include "../src/train/eval.h"
#include "../src/train/safetensors.h"
#include "../src/train/train.h"
#include "../src/util/common.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>



static int same_file(const char *path, const unsigned char *want, size_t n) {
    size_t got_n = 0;
    unsigned char *got = harness_read_file(path, &got_n);
    int same = got && got_n == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

/* Copy checkpoint `from` to `to` with every value of tensor `name` set to NaN. 0 or -1. */
static int poison(const char *from, const char *to, const char *name) {
    StFile f;
    if (st_read(from, &f)) return -1;
    StTensor *t = malloc((size_t)f.n * sizeof *t);
    const char **meta = malloc((size_t)(2 * f.n_meta + 1) * sizeof *meta);
    float *nan_data = NULL;
    int rc = t && meta ? 0 : -1;
    for (int i = 0; !rc && i < f.n; i++) {
        t[i] = f.tensors[i];
        if (!strcmp(t[i].name, name) && t[i].dtype == ST_F32) {
            nan_data = malloc(t[i].nbytes);
            if (!nan_data) { rc = -1; break; }
            for (size_t k = 0; k < t[i].nbytes / 4; k++) nan_data[k] = NAN;
            t[i].data = nan_data;
        }
    }
    if (!nan_data) rc = -1;
    for (int k = 0; !rc && k < f.n_meta; k++) meta[2 * k] = f.meta_keys[k], meta[2 * k + 1] = f.meta_values[k];
    if (!rc) meta[2 * f.n_meta] = NULL, rc = st_write(to, t, f.n, meta);
    free(nan_data), free(t), free(meta);
    st_free(&f);
    return rc;
}

static void small_run(TrainConfig *cfg, const char *out) {
    train_config_defaults(cfg);
    cfg->model = "convnet4", cfg->data = FMNIST, cfg->out_dir = out;
    cfg->epochs = 1, cfg->batch = 50, cfg->limit_train = 500, cfg->limit_val = 200, cfg->quiet = 1, cfg->seed = 3;
}

TEST(nonfinite_probabilities_rank_last) {
    float p[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    CHECK(true_class_rank(p, 4, 3) == 0 && true_class_rank(p, 4, 0) == 3, "finite ranks");
    p[3] = NAN; /* the true class's probability is NaN: every other class ranks above it */
    CHECK(true_class_rank(p, 4, 3) == 3, "NaN true class ranked %d", true_class_rank(p, 4, 3));
    p[3] = 0.4f, p[1] = NAN; /* another class is NaN: it counts above the true class */
    CHECK(true_class_rank(p, 4, 3) == 1, "a NaN rival: rank %d", true_class_rank(p, 4, 3));
    float all_nan[3] = {NAN, NAN, NAN};
    CHECK(true_class_rank(all_nan, 3, 1) == 2, "all NaN: rank %d", true_class_rank(all_nan, 3, 1));
}

/* evaluate() on a network whose weights are NaN: every image is an error, none is correct */
TEST(nonfinite_network_evaluates_as_all_wrong) {
    NEED_FMNIST();
    Dataset ds;
    if (dataset_load(&ds, FMNIST, 0)) { CHECK(0, "%s", an_last_error()); return; }
    ModelSpec spec;
    Net net;
    Norm norm;
    CHECK(model_apply_recipe(model_find("convnet4"), "caffe", &spec) == 0, "recipe");
    if (net_create(&net, &spec, 1, 10, 28, 50) || norm_for_dataset(&ds, 1, 100, &norm)) {
        CHECK(0, "%s", an_last_error());
        dataset_free(&ds);
        return;
    }
    net_init(&net, 1);
    for (size_t i = 0; i < net.nparams; i++) net.params[i] = NAN;
    EvalResult r = {0};
    CHECK(evaluate(&net, &ds, NULL, 200, &norm, 1, 0, &r) == 0, "%s", an_last_error());
    CHECK(r.count == 200 && r.top1_err == 1.0 && r.top5_err == 1.0 && r.nonfinite == 200,
          "NaN network: %ld images, top-1 error %g, top-5 error %g, %ld non-finite", r.count, r.top1_err, r.top5_err,
          r.nonfinite);
    net_free(&net), norm_free(&norm), dataset_free(&ds);
}

/* A run resumed from a checkpoint whose first layer is NaN (ReLU turns its outputs into 0, so the
 * loss stays finite) must stop at the first update, and leave checkpoint.safetensors and
 * best.safetensors as they were; `alexnet eval` of NaN weights is an error, not 0% error. */
TEST(nonfinite_weights_stop_training_and_keep_checkpoint) {
    NEED_FMNIST();
    char out[400], ckpt[500], best[500], bad[500], bad_fc[500];
    snprintf(out, sizeof out, "%s/nan-run", harness_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(best, sizeof best, "%s/best.safetensors", out);
    snprintf(bad, sizeof bad, "%s/nan-conv1.safetensors", harness_tmpdir());
    snprintf(bad_fc, sizeof bad_fc, "%s/nan-fc4.safetensors", harness_tmpdir());
    TrainConfig cfg;
    small_run(&cfg, out);
    int rc = train_run(&cfg);
    CHECK(rc == 0, "first epoch: %s", an_last_error());
    if (rc) return;
    size_t n_ckpt = 0, n_best = 0;
    unsigned char *ckpt0 = harness_read_file(ckpt, &n_ckpt), *best0 = harness_read_file(best, &n_best);
    CHECK(ckpt0 && best0, "no checkpoint or best weights after one epoch");
    CHECK(poison(ckpt, bad, "conv1.weight") == 0, "%s", an_last_error());
    small_run(&cfg, out);
    cfg.resume = bad, cfg.epochs = 2;
    rc = train_run(&cfg);
    const char *err = an_last_error();
    CHECK(rc == -1 && strstr(err, "diverged") && strstr(err, "NaN") && strstr(err, "kept the last checkpoint"),
          "training on NaN weights: rc %d: %s", rc, err);
    CHECK(!strchr(err, '\n'), "not one line: %s", err);
    CHECK(ckpt0 && same_file(ckpt, ckpt0, n_ckpt), "checkpoint.safetensors was rewritten");
    CHECK(best0 && same_file(best, best0, n_best), "best.safetensors was rewritten");
    free(ckpt0), free(best0);

    /* eval: NaN logits are an error naming the weights */
    CHECK(poison(best, bad_fc, "fc4.weight") == 0, "%s", an_last_error());
    char args[1200];
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --data %s --limit 100", bad_fc, FMNIST);
    harness_expect_error(args, "NaN or infinite");
    CHECK(strstr(harness_err, bad_fc) != NULL, "the error does not name the weights file: %s", harness_err);
    CHECK(!strstr(harness_out, "top-1 error"), "an error rate was reported for NaN weights: %s", harness_out);
}

/* A diverging run (a huge learning rate) stops with one error line and keeps its last checkpoint */
TEST(diverging_run_keeps_last_checkpoint) {
    NEED_FMNIST();
    char out[400], ckpt[500], args[1200];
    snprintf(out, sizeof out, "%s/diverge", harness_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(args, sizeof args,
             "train --model convnet4 --data %s --out %s --limit-train 400 --limit-val 100 --batch 50 --epochs 3 "
             "--save-every 2 --lr 1e4 --quiet", FMNIST, out);
    harness_expect_error(args, "training diverged in step");
    CHECK(strstr(harness_err, "kept the last checkpoint") || strstr(harness_err, "no checkpoint was written yet"),
          "what is kept is not said: %s", harness_err);
    StFile f;
    if (strstr(harness_err, "kept the last checkpoint")) {
        CHECK(st_read(ckpt, &f) == 0, "%s", an_last_error());
        const StTensor *w = st_find(&f, "conv1.weight");
        int finite = w != NULL;
        for (size_t i = 0; w && i < w->nbytes / 4; i++) finite &= isfinite(((const float *)w->data)[i]) != 0;
        CHECK(finite, "the kept checkpoint holds NaN or infinite weights");
        st_free(&f);
    }
}

/* SIGTERM (and SIGINT) during training: the run stops after its current step, writes a checkpoint,
 * says how to resume and exits 0, as Ctrl-C does; the resumed run finishes. */
TEST(sigterm_stops_with_checkpoint) {
    NEED_FMNIST();
    const char *bin = getenv("ALEXNET_BIN") ? getenv("ALEXNET_BIN") : "build/alexnet";
    int sigs[2] = {SIGTERM, SIGINT};
    for (int k = 0; k < 2; k++) {
        char out[400], log[500], ckpt[500], errp[500];
        snprintf(out, sizeof out, "%s/signal%d", harness_tmpdir(), k);
        snprintf(log, sizeof log, "%s/log.csv", out);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
        snprintf(errp, sizeof errp, "%s/signal%d.err", harness_tmpdir(), k);
        pid_t pid = fork();
        if (pid == 0) {
            if (!freopen(errp, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(99);
            execl(bin, bin, "train", "--model", "convnet4", "--data", FMNIST, "--out", out, "--limit-train", "20000",
                  "--limit-val", "100", "--batch", "50", "--epochs", "1", (char *)NULL);
            _exit(98);
        }
        CHECK(pid > 0, "fork");
        if (pid <= 0) return;
        /* log.csv is written once the run is set up (its handlers are in place by then) */
        struct stat st;
        for (int i = 0; i < 1200 && stat(log, &st) != 0; i++) usleep(50 * 1000);
        CHECK(stat(log, &st) == 0, "the run did not start (no %s)", log);
        kill(pid, sigs[k]);
        int status = 0;
        waitpid(pid, &status, 0);
        size_t n = 0;
        char *err = (char *)harness_read_file(errp, &n);
        if (err) err[n ? n - 1 : 0] = 0;
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: exit %d, signal %d: %s", k ? "SIGINT" : "SIGTERM",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
              err ? err : "");
        CHECK(err && strstr(err, "stopped at step") && strstr(err, "--resume"), "no resume hint: %s", err ? err : "");
        StFile f;
        int rc = st_read(ckpt, &f);
        CHECK(rc == 0, "no checkpoint after the signal: %s", an_last_error());
        if (!rc) {
            const char *step = st_meta(&f, "step");
            CHECK(step && atol(step) >= 1 && atol(step) < 400, "checkpoint step %s", step ? step : "(none)");
            st_free(&f);
        }
        free(err);
    }
}

/* Numbers that cannot train are refused when the flags are read, before any data is loaded */
TEST(cli_refuses_nonfinite_numbers) {
    static const struct { const char *flags, *what; } cases[] = {
        {"--lr nan", "--lr"},           {"--lr inf", "--lr"},           {"--lr -0.01", "--lr"},
        {"--lr 0", "--lr"},             {"--lr 1e39", "--lr"},          {"--momentum nan", "--momentum"},
        {"--momentum 1.5", "--momentum"}, {"--weight-decay -1", "--weight-decay"},
        {"--weight-decay inf", "--weight-decay"}, {"--lighting nan", "--lighting"}, {"--lighting -0.1", "--lighting"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[600];
        /* a missing dataset: a check made after loading would name it instead of the flag */
        snprintf(args, sizeof args, "train --model convnet4 --data /nonexistent-data --out %s/x %s", harness_tmpdir(),
                 cases[i].flags);
        harness_expect_error(args, cases[i].what);
        CHECK(!strstr(harness_err, "nonexistent"), "`%s` reached the dataset: %s", cases[i].flags, harness_err);
    }
    TrainConfig cfg; /* the library checks too */
    train_config_defaults(&cfg);
    cfg.model = "convnet4", cfg.data = "/nonexistent-data", cfg.out_dir = harness_path("y");
    cfg.lr = NAN;
    CHECK(train_run(&cfg) == -1 && strstr(an_last_error(), "--lr"), "train_run with lr NaN: %s", an_last_error());
}

/* `alexnet info` with sizes no network can have: one error line, never an overflow or a huge
 * allocation (channels times the kernel area overflowed an int before) */
TEST(cli_info_refuses_impossible_sizes) {
    harness_expect_error("info --model convnet4 --channels 2000000000", "bad configuration");
    harness_expect_error("info --model convnet4 --classes 2000000000", "bad configuration");
    harness_expect_error("info --model convnet4 --size 100000", "bad configuration");
    CHECK(harness_run("info --model convnet4 --channels 4096 --classes 100000 --size 64") == 0, "%s", harness_err);
}
