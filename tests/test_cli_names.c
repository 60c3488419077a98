/* test_cli_names.c: what a checkpoint knows, used by the commands (issue 18, points 2, 4 and 5),
 * through the real binary: its classes' names (Fashion-MNIST's here) printed by classify; the model
 * taken from the weights when --model is absent, also for a network of a description file that no
 * longer exists; a label file of another class count refused; input that does not fit the network
 * warned about (classify) or refused (eval --crops 10 of 28x28 images). Fashion-MNIST (Debian's
 * dataset-fashion-mnist; skipped without it). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *FASHION[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* a small convnet4 trained on Fashion-MNIST, once */
static const char *weights(void) {
    static char path[800];
    static int state;
    if (!state) {
        char args[1600];
        snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s --epochs 1 --limit-train 512 "
                 "--limit-val 64 --quiet", harness_path("names"));
        state = harness_run(args) == 0 ? 1 : -1;
        CHECK(state == 1, "training: %s", harness_err);
        snprintf(path, sizeof path, "%s/best.safetensors", harness_path("names"));
    }
    return state == 1 ? path : NULL;
}

/* a gray (comps 1) or colour 28x28 JPEG */
static const char *image(const char *name, int comps) {
    static char path[2][800];
    char *p = path[comps == 1 ? 0 : 1];
    snprintf(p, 800, "%s", harness_path(name));
    unsigned char px[28 * 28 * 3];
    for (int i = 0; i < 28 * 28 * comps; i++) px[i] = (unsigned char)((i * 37 + (i % 3) * 80) & 255);
    CHECK(harness_write_jpeg(p, px, 28, 28, comps, 95) == 0, "jpeg");
    return p;
}

TEST(cli_classify_prints_the_checkpoints_class_names) {
    NEED_FMNIST();
    const char *w = weights();
    if (!w) return;
    char args[2400];
    snprintf(args, sizeof args, "classify --weights %s --top 10 %s", w, image("gray.jpg", 1));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    int named = 0;
    for (int k = 0; k < 10; k++) named += strstr(harness_out, FASHION[k]) != NULL;
    CHECK(named == 10 && !strstr(harness_out, " -\n"), "not every class named: %s", harness_out);
    CHECK(!strstr(harness_err, "warning"), "a grey 28x28 image warned about: %s", harness_err);
    /* a 1000-name list for 10 classes is another list */
    const char *labels = harness_path("1000.txt");
    FILE *f = fopen(labels, "w");
    for (int k = 0; f && k < 1000; k++) fprintf(f, "class %d\n", k);
    if (f) fclose(f);
    snprintf(args, sizeof args, "classify --weights %s --labels %s %s", w, labels, image("gray.jpg", 1));
    harness_expect_error(args, "has more than 10 names, the model has 10 classes");
}

/* eval names the hardest classes, and with --per-class every class with its share of errors */
TEST(cli_eval_names_the_classes) {
    NEED_FMNIST();
    const char *w = weights();
    if (!w) return;
    char args[2400];
    snprintf(args, sizeof args, "eval --weights %s --data " FMNIST " --limit 200", w);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    const char *hard = strstr(harness_out, "hardest classes (top-1 error): ");
    int named = 0;
    for (int k = 0; hard && k < 10; k++) named += strstr(hard, FASHION[k]) != NULL;
    CHECK(named == 5, "hardest classes: %s", harness_out);
    snprintf(args, sizeof args, "eval --weights %s --data " FMNIST " --limit 200 --per-class", w);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    /* every class, and the images of the classes add up to the 200 */
    const char *all = strstr(harness_out, "top-1 error by class: ");
    long total = 0;
    named = 0;
    for (int k = 0; all && k < 10; k++) {
        const char *at = strstr(all, FASHION[k]);
        double err;
        long n;
        if (at && sscanf(at + strlen(FASHION[k]), " %lf%% (%ld)", &err, &n) == 2) named++, total += n;
    }
    CHECK(named == 10 && total == 200, "%d classes, %ld images: %s", named, total, harness_out);
}

TEST(cli_model_comes_from_the_weights) {
    NEED_FMNIST();
    const char *w = weights();
    if (!w) return;
    char args[2400];
    snprintf(args, sizeof args, "eval --weights %s --data " FMNIST " --limit 100", w);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "convnet4 on "), "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "eval --model alexnet --weights %s --data " FMNIST " --limit 10", w);
    harness_expect_error(args, "checkpoint is for model 'convnet4', not 'alexnet'");
    /* a network of a description file: its description travels with the weights */
    const char *cfg = harness_path("mine.cfg");
    const char *text = "[model]\nname = mine\ninput = 0\n[conv]\nname = c1\nfilters = 4\nsize = 3\npad = 1\n[relu]\n"
                       "[maxpool]\nsize = 2\nstride = 2\n[linear]\nname = out\nunits = classes\n";
    CHECK(harness_write(cfg, text, strlen(text)) == 0, "write");
    char out[800];
    snprintf(out, sizeof out, "%s", harness_path("mine"));
    snprintf(args, sizeof args, "train --model %s --data " FMNIST " --out %s --epochs 1 --limit-train 128 --limit-val 32 "
             "--quiet", cfg, out);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    remove(cfg);
    snprintf(args, sizeof args, "eval --weights %s/best.safetensors --data " FMNIST " --limit 50", out);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "mine on "), "description not stored: %s %s", harness_out,
          harness_err);
    snprintf(args, sizeof args, "classify --weights %s/best.safetensors %s", out, image("gray.jpg", 1));
    int named = 0;
    CHECK(harness_run(args) == 0, "%s", harness_err);
    for (int k = 0; k < 10; k++) named += strstr(harness_out, FASHION[k]) != NULL;
    CHECK(named == 5, "the top 5 of the description model are not named: %s", harness_out);
}

TEST(cli_input_that_does_not_fit_is_named) {
    NEED_FMNIST();
    const char *w = weights();
    if (!w) return;
    char args[2400];
    snprintf(args, sizeof args, "classify --weights %s %s", w, image("colour.jpg", 3));
    CHECK(harness_run(args) == 0 && strstr(harness_err, "warning: ") && strstr(harness_err, "colour image for a network "
          "of 28x28 grey images"), "no warning: %s", harness_err);
    snprintf(args, sizeof args, "eval --weights %s --data " FMNIST " --crops 10 --limit 10", w);
    harness_expect_error(args, "--crops 10 takes the paper's crops of 256x256 images");
}
