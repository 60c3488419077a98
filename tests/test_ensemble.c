/* test_ensemble.c: `eval` and `classify` with several --weights (the paper's ensembles, section 6):
 * the ensemble of a network with itself is that network; the ensemble's probabilities are the
 * members' mean (classify lists every class: each probability is checked); its loss is at most the
 * members' mean loss (Jensen: -log of a mean <= the mean of -log). Two small convnet4 networks
 * trained on Fashion-MNIST (Debian's dataset-fashion-mnist; skipped without it). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/util/png.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* weights of member m (1 or 2), trained once */
static const char *member(int m) {
    static char paths[2][700];
    static int done[2];
    char *p = paths[m - 1];
    if (!done[m - 1]) {
        char out[600], args[1400];
        snprintf(out, sizeof out, "%s", harness_path(m == 1 ? "ens_1" : "ens_2"));
        snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s --epochs 1 --limit-train 1000 "
                 "--limit-val 100 --seed %d --quiet", out, m + 10);
        int rc = harness_run(args);
        CHECK(rc == 0, "training member %d: %s", m, harness_err);
        snprintf(p, sizeof paths[0], "%s/best.safetensors", out);
        done[m - 1] = rc == 0 ? 1 : -1;
    }
    return done[m - 1] == 1 ? p : NULL;
}

/* "... top-1 error A%, top-5 error B%, loss C ..." of the line containing `label` */
static int parse_eval(const char *out, const char *label, double *top1, double *top5, double *loss) {
    const char *line = strstr(out, label);
    if (!line) return -1;
    const char *t = strstr(line, "top-1 error ");
    return t && sscanf(t, "top-1 error %lf%%, top-5 error %lf%%, loss %lf", top1, top5, loss) == 3 ? 0 : -1;
}

TEST(ensemble_eval_of_a_network_with_itself_is_the_network) {
    NEED_FMNIST();
    const char *a = member(1);
    if (!a) return;
    char args[2000];
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --data " FMNIST " --limit 500", a);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    double t1, t5, l, e1, e5, el;
    CHECK(parse_eval(harness_out, "convnet4 on", &t1, &t5, &l) == 0, "no result: %s", harness_out);
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --weights %s --data " FMNIST " --limit 500", a, a);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    CHECK(parse_eval(harness_out, "(ensemble of 2)", &e1, &e5, &el) == 0, "no ensemble result: %s", harness_out);
    CHECK(e1 == t1 && e5 == t5 && fabs(el - l) <= 1e-4, "ensemble of itself %.2f/%.2f/%.4f vs alone %.2f/%.2f/%.4f", e1,
          e5, el, t1, t5, l);
}

TEST(ensemble_eval_loss_at_most_the_members_mean) {
    NEED_FMNIST();
    const char *a = member(1), *b = member(2);
    if (!a || !b) return;
    char args[2000];
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --weights %s --data " FMNIST " --limit 500", a, b);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    double m1[3], m2[3], e[3];
    CHECK(parse_eval(harness_out, "(member 1 of 2)", &m1[0], &m1[1], &m1[2]) == 0 &&
          parse_eval(harness_out, "(member 2 of 2)", &m2[0], &m2[1], &m2[2]) == 0 &&
          parse_eval(harness_out, "(ensemble of 2)", &e[0], &e[1], &e[2]) == 0, "missing lines: %s", harness_out);
    CHECK(m1[2] != m2[2], "the two members are the same network (loss %.4f)", m1[2]);
    CHECK(e[2] <= (m1[2] + m2[2]) / 2 + 1e-4, "ensemble loss %.4f above the members' mean %.4f", e[2], (m1[2] + m2[2]) / 2);
}

/* members of different networks (the paper's ensembles mixed networks with and without a sixth
 * convolution): --model once per --weights; each member is evaluated as that network alone */
TEST(ensemble_eval_of_different_networks) {
    NEED_FMNIST();
    const char *a = member(1);
    if (!a) return;
    char out[600], args[2400], c[700];
    snprintf(out, sizeof out, "%s", harness_path("ens_pool2"));
    snprintf(args, sizeof args, "train --model convnet4-pool2 --data " FMNIST " --out %s --epochs 1 --limit-train 1000 "
             "--limit-val 100 --seed 12 --quiet", out);
    CHECK(harness_run(args) == 0, "training the pool2 member: %s", harness_err);
    snprintf(c, sizeof c, "%s/best.safetensors", out);
    snprintf(args, sizeof args, "eval --model convnet4-pool2 --weights %s --data " FMNIST " --limit 500", c);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    double alone[3], alone1[3], m1[3], m2[3], e[3];
    CHECK(parse_eval(harness_out, "convnet4-pool2 on", &alone[0], &alone[1], &alone[2]) == 0, "%s", harness_out);
    snprintf(args, sizeof args, "eval --weights %s --data " FMNIST " --limit 500", a);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    CHECK(parse_eval(harness_out, "convnet4 on", &alone1[0], &alone1[1], &alone1[2]) == 0, "%s", harness_out);
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --model convnet4-pool2 --weights %s --data " FMNIST
             " --limit 500", a, c);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    CHECK(parse_eval(harness_out, "convnet4 (member 1 of 2)", &m1[0], &m1[1], &m1[2]) == 0 &&
          parse_eval(harness_out, "convnet4-pool2 (member 2 of 2)", &m2[0], &m2[1], &m2[2]) == 0 &&
          parse_eval(harness_out, "(ensemble of 2)", &e[0], &e[1], &e[2]) == 0, "missing lines: %s", harness_out);
    /* members are reported from the ensemble's own passes: each as that network evaluated alone */
    CHECK(m2[0] == alone[0] && m2[1] == alone[1] && fabs(m2[2] - alone[2]) <= 1e-4,
          "member 2 %.2f%% / %.4f, alone %.2f%% / %.4f", m2[0], m2[2], alone[0], alone[2]);
    CHECK(m1[0] == alone1[0] && m1[1] == alone1[1] && fabs(m1[2] - alone1[2]) <= 1e-4,
          "member 1 %.2f%% / %.4f, alone %.2f%% / %.4f", m1[0], m1[2], alone1[0], alone1[1]);
    CHECK(e[0] != m1[0] || e[2] != m1[2], "the ensemble's line is member 1's (%.2f%% / %.4f)", e[0], e[2]);
    /* a convnet4 checkpoint given as convnet4-pool2 */
    snprintf(args, sizeof args, "eval --model convnet4-pool2 --weights %s --data " FMNIST " --limit 10", a);
    harness_expect_error(args, "checkpoint is for model 'convnet4', not 'convnet4-pool2'");
    snprintf(args, sizeof args, "eval --model convnet4 --model convnet4-pool2 --weights %s --data " FMNIST, a);
    harness_expect_error(args, "--model once, or once per --weights");
    snprintf(args, sizeof args, "classify --model convnet4 --model convnet4-pool2 --weights %s x.png", a);
    harness_expect_error(args, "--model once, or once per --weights");
}

/* class -> probability from classify's "rank prob class name" lines (10 classes listed) */
static int parse_classify(const char *out, double p[10]) {
    int n = 0;
    for (const char *line = strchr(out, '\n'); line && *++line; line = strchr(line, '\n')) {
        int rank, cls;
        double prob;
        if (sscanf(line, "%d %lf %d", &rank, &prob, &cls) == 3 && cls >= 0 && cls < 10) p[cls] = prob, n++;
    }
    return n;
}

TEST(ensemble_classify_probabilities_are_the_members_mean) {
    NEED_FMNIST();
    const char *a = member(1), *b = member(2);
    if (!a || !b) return;
    const char *img = harness_path("ens_img.png"); /* a grey ramp */
    unsigned char px[64 * 48 * 3];
    for (int i = 0; i < 64 * 48 * 3; i++) px[i] = (unsigned char)(i / 3 % 64 * 4);
    CHECK(png_write_rgb(img, px, 64, 48) == 0, "png");
    double pa[10] = {0}, pb[10] = {0}, pe[10] = {0}, pself[10] = {0};
    char args[2000];
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s --top 10 %s", a, img);
    CHECK(harness_run(args) == 0 && parse_classify(harness_out, pa) == 10, "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s --top 10 %s", b, img);
    CHECK(harness_run(args) == 0 && parse_classify(harness_out, pb) == 10, "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s --weights %s --top 10 %s", a, b, img);
    CHECK(harness_run(args) == 0 && parse_classify(harness_out, pe) == 10, "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s --weights %s --top 10 %s", a, a, img);
    CHECK(harness_run(args) == 0 && parse_classify(harness_out, pself) == 10, "%s %s", harness_out, harness_err);
    double worst = 0, self = 0, differ = 0;
    for (int c = 0; c < 10; c++) {
        worst = fmax(worst, fabs(pe[c] - (pa[c] + pb[c]) / 2));
        self = fmax(self, fabs(pself[c] - pa[c]));
        differ = fmax(differ, fabs(pa[c] - pb[c]));
    }
    CHECK(differ > 1e-3, "the members agree to %g: a weak test", differ);
    CHECK(worst <= 2e-6, "ensemble probabilities off the members' mean by %g", worst);
    CHECK(self <= 1e-6, "a network with itself differs from it by %g", self);
}
