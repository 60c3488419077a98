/* test_experiment.c: `alexnet experiment relu-vs-tanh` and `ablate` on a small slice of
 * Fashion-MNIST: the sweep picks a rate per model, the runs report epochs to the target and the
 * ratio, the curves are written (CSV rows, a PNG of the chart's size); ablate prints each run's
 * best errors and its change against the baseline. Skipped without dataset-fashion-mnist. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/data/image.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TEST(experiment_relu_vs_tanh_small) {
    NEED_FMNIST();
    char out[1200], args[3000];
    snprintf(out, sizeof out, "%.1000s", harness_path("exp_fig1"));
    snprintf(args, sizeof args, "experiment relu-vs-tanh --data " FMNIST " --out %s --sweep-images 300 --lrs 0.01,0.05 "
             "--epochs 2 --limit-train 600 --limit-val 100 --seeds 3 --target 90", out);
    int rc = harness_run(args);
    CHECK(rc == 0, "exit %d: %s", rc, harness_err);
    CHECK(strstr(harness_out, "convnet4: learning rate ") && strstr(harness_out, "convnet4-tanh: learning rate "),
          "no sweep result: %s", harness_out);
    int seed = 0, e1 = 0, e2 = 0;
    double ratio = 0;
    const char *row = strstr(harness_out, "| 3 |");
    CHECK(row && sscanf(row, "| %d | %d | %d | %lf |", &seed, &e1, &e2, &ratio) == 4 && e1 >= 1 && e2 >= 1 &&
              ratio == (double)e2 / e1, "no result row: %s", harness_out);
    char path[1300];
    snprintf(path, sizeof path, "%s/curves.csv", out);
    size_t n = 0;
    char *csv = (char *)harness_read_file(path, &n);
    int lines = 0;
    for (size_t i = 0; csv && i < n; i++) lines += csv[i] == '\n';
    CHECK(csv && lines >= 3 && strstr(csv, "convnet4-tanh,3,"), "curves.csv: %d lines", lines);
    free(csv);
    snprintf(path, sizeof path, "%s/figure1.png", out);
    Image img;
    CHECK(image_load(path, &img) == 0 && img.w == 840 && img.h == 420, "figure1.png: %dx%d", img.w, img.h);
    image_free(&img);
    harness_expect_error("experiment relu-vs-tanh --data " FMNIST " --lrs 0.01,-1", "--lrs");
    harness_expect_error("experiment fig9 --data " FMNIST, "relu-vs-tanh or ablate");
}

TEST(experiment_ablate_small) {
    NEED_FMNIST();
    char out[1200], args[3000];
    snprintf(out, sizeof out, "%.1000s", harness_path("exp_ablate"));
    snprintf(args, sizeof args, "experiment ablate --data " FMNIST " --out %s --models convnet4,convnet4-tanh --epochs 1 "
             "--limit-train 600 --limit-val 100", out);
    int rc = harness_run(args);
    CHECK(rc == 0, "exit %d: %s", rc, harness_err);
    double t1, t5, c1, c5;
    const char *base = strstr(harness_out, "| convnet4 | "), *var = strstr(harness_out, "| convnet4-tanh | ");
    CHECK(base && sscanf(base, "| convnet4 | %lf%% | %lf%% | (baseline)", &t1, &t5) == 2, "%s", harness_out);
    double v1 = 0, v5 = 0;
    CHECK(var && sscanf(var, "| convnet4-tanh | %lf%% | %lf%% | %lf / %lf", &v1, &v5, &c1, &c5) == 4, "%s", harness_out);
    CHECK(var && base && c1 > v1 - t1 - 0.01 && c1 < v1 - t1 + 0.01, "change %.2f, not %.2f - %.2f", c1, v1, t1);
    /* a rerun reads the finished runs back (the same table), and a larger budget continues them */
    CHECK(harness_run(args) == 0, "rerun: %s", harness_err);
    double r1 = -1, r5 = -1;
    base = strstr(harness_out, "| convnet4 | ");
    CHECK(strstr(harness_out, "convnet4-seed1: done before (1 epochs)") && base &&
              sscanf(base, "| convnet4 | %lf%% | %lf%%", &r1, &r5) == 2 && r1 == t1 && r5 == t5,
          "rerun did not reuse the runs: %s", harness_out);
    snprintf(args, sizeof args, "experiment ablate --data " FMNIST " --out %s --models convnet4 --epochs 2 "
             "--limit-train 600 --limit-val 100", out);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "convnet4-seed1: continuing from epoch 1") &&
              strstr(harness_out, "in 2 epochs"), "a larger budget did not continue: %s %s", harness_out, harness_err);
    harness_expect_error("experiment ablate --data " FMNIST, "--epochs N is required");
    /* without --models an in-memory set gets the four-layer network's variants */
    snprintf(args, sizeof args, "experiment ablate --data " FMNIST " --out %s-default --epochs 1 --limit-train 60 "
             "--limit-val 20", out);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "| convnet4 | ") && strstr(harness_out, "| convnet4-lrn | ") &&
              strstr(harness_out, "| convnet4-pool2 | ") && strstr(harness_out, "| convnet4-2tower | "),
          "default models on Fashion-MNIST: %s %s", harness_out, harness_err);
    /* in-memory sets train without augmentation: lighting off would repeat the baseline exactly */
    harness_expect_error("experiment ablate --data " FMNIST " --models convnet4 --epochs 1 --limit-train 10 "
                         "--limit-val 10 --lighting-off", "no PCA lighting to turn off");
}
