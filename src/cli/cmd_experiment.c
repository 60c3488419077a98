/* cmd_experiment.c: `alexnet experiment`: the paper's experiments as commands that rerun them.
 *   relu-vs-tanh  Figure 1: two networks (ReLU and tanh), no regularisation, each at the learning
 *                 rate a short sweep finds fastest; training error per epoch, the epochs each
 *                 needs to reach the target (25%), their ratio, the curves as a PNG.
 *   ablate        the same budget and seed for a network and its ablations (alexnet-nolrn, ...)
 *                 and the paper's PCA lighting off: top-1 / top-5 beside the paper's claims.
 * Each training run is a train_run into OUT/<run>/ (log.csv, checkpoints), so any run can be
 * looked at or resumed by hand; rerunning the command reads the finished runs back and continues
 * the unfinished ones from their checkpoints (hours of work are not lost to a stop). */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../train/train.h"
#include "../util/common.h"
#include "../util/png.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: alexnet experiment relu-vs-tanh --data PATH [flags]\n"
    "       alexnet experiment ablate --data PATH --epochs N [flags]\n"
    "\n"
    "relu-vs-tanh (the paper's Figure 1): for each model, a learning-rate sweep (--sweep-epochs on\n"
    "--sweep-images images per rate, the lowest training error wins), then training from each seed\n"
    "until the training error reaches --target or --epochs pass. No regularisation: weight decay 0\n"
    "(--weight-decay), no augmentation, a constant rate. Prints each run's training error per epoch,\n"
    "the epochs to the target and the ratio (paper: about 6), and writes OUT/figure1.png, OUT/curves.csv.\n"
    "  --models A,B        (default convnet4,convnet4-tanh; names or description files)\n"
    "  --epochs N          at most (default 30)          --target P    training error % (default 25)\n"
    "  --seeds 1,2         (default 1,2)                 --lrs X,Y,..  (default 0.001,0.003,0.01,0.03,0.1)\n"
    "  --sweep-epochs N    (default 1)                   --sweep-images N (default 10000)\n"
    "\n"
    "ablate: trains every model of --models (the first is the baseline) and, with --lighting-off, the\n"
    "baseline without PCA lighting, from the same seed for --epochs, and prints their best validation\n"
    "top-1 / top-5 error and the difference to the baseline beside the paper's claims.\n"
    "  --models A,B,..     (default: image folders and shards alexnet,alexnet-nolrn,alexnet-pool2,\n"
    "                      alexnet-1tower; CIFAR-10, IDX convnet4,convnet4-lrn,convnet4-pool2,convnet4-2tower)\n"
    "  --seeds N           the one seed of every run (default 1)\n"
    "  --lighting-off      also train the baseline without PCA lighting (the paper's section 4.1; image\n"
    "                      folders and shards: CIFAR-10 and IDX sets train without augmentation)\n"
    "  --limit-train N     train on a fixed subset of N images (both)   --limit-val N  validate on N\n"
    "\n"
    "Both: rerun the same command after a stop: finished runs are read back from OUT/RUN/log.csv,\n"
    "unfinished ones continue from their checkpoints (remove OUT to start again).\n"
    "--out DIR (default runs/experiment-NAME), --batch N (128), --lr X (ablate: 0.01),\n"
    "--momentum X (0.9), --weight-decay X (relu-vs-tanh 0, ablate 0.0005), --recipe NAME (as train: caffe).\n";

enum { MAX_RUN_EPOCHS = 512, MAX_LIST = 8 };

typedef struct Curve { int n; double train_err[MAX_RUN_EPOCHS], val1[MAX_RUN_EPOCHS], val5[MAX_RUN_EPOCHS]; } Curve;

/* log.csv of a run: per epoch training top-1 error and validation top-1 / top-5 (as %) */
static int read_curve(const char *dir, Curve *c) {
    char path[1200], line[512];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return an_error("%s: cannot open", path);
    c->n = 0;
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double lr, loss, terr, vloss, t1, t5;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &epoch, &lr, &loss, &terr, &vloss, &t1, &t5) != 7) continue;
        if (epoch < 1 || epoch > MAX_RUN_EPOCHS) continue;
        c->train_err[epoch - 1] = 100 * terr, c->val1[epoch - 1] = 100 * t1, c->val5[epoch - 1] = 100 * t5;
        if (epoch > c->n) c->n = epoch;
    }
    fclose(f);
    return 0;
}

typedef struct Common {
    const char *data, *out, *recipe;
    int batch, limit_train, limit_val;
    float lr, momentum, weight_decay;
} Common;

/* One run into out/name: `epochs` in total (continued from its checkpoint when it has one and
 * resume is set), read back into c. 0, or -1 when it failed (diverged runs included). */
static int run(const Common *k, const char *name, const char *model, float lr, int epochs, unsigned long long seed,
               int limit_train, float lighting, int resume, Curve *c) {
    char dir[1200], ckpt[1300];
    snprintf(dir, sizeof dir, "%s/%s", k->out, name);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    FILE *f = fopen(ckpt, "rb");
    if (f) { /* an earlier invocation's run: read back when finished, else continued */
        fclose(f);
        Curve have;
        if (read_curve(dir, &have) == 0 && have.n >= epochs) {
            if (!resume) printf("%s: done before (%d epochs), read back from %s/log.csv\n", name, have.n, dir);
            *c = have;
            return 0;
        }
        if (!resume) printf("%s: continuing from epoch %d (%s)\n", name, have.n, ckpt);
        resume = 1;
    }
    TrainConfig cfg;
    train_config_defaults(&cfg);
    cfg.model = model, cfg.data = k->data, cfg.out_dir = dir, cfg.recipe = k->recipe;
    cfg.epochs = epochs, cfg.batch = k->batch, cfg.lr = lr, cfg.lr_set = 1, cfg.momentum = k->momentum;
    cfg.weight_decay = k->weight_decay, cfg.seed = seed, cfg.max_drops = 0; /* a constant rate */
    cfg.limit_train = limit_train, cfg.limit_val = k->limit_val, cfg.lighting = lighting, cfg.quiet = 1;
    if (resume) cfg.resume = ckpt, cfg.model = model;
    if (train_run(&cfg)) return -1;
    return read_curve(dir, c);
}

static int parse_list(const char *s, const char **items, int max, char *buf, size_t size) {
    snprintf(buf, size, "%s", s);
    int n = 0;
    for (char *p = strtok(buf, ","); p && n < max; p = strtok(NULL, ",")) items[n++] = p;
    return n;
}

static int parse_floats(const char *s, float *v, int max) {
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        char *end;
        v[n] = strtof(p, &end);
        if (end == p || !(v[n] > 0.0f) || !isfinite(v[n])) return -1;
        n++;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

/* a short label the chart font can draw: the model's last path part without .cfg */
static void label_of(const char *model, char *out, size_t n) {
    const char *slash = strrchr(model, '/');
    snprintf(out, n, "%s", slash ? slash + 1 : model);
    char *dot = strstr(out, ".cfg");
    if (dot) *dot = 0;
    for (char *p = out; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
}

static int relu_vs_tanh(Common *k, const char *models_s, const char *seeds_s, const char *lrs_s, int epochs,
                        int sweep_epochs, int sweep_images, double target) {
    const char *models[2];
    char mbuf[512];
    if (parse_list(models_s, models, 2, mbuf, sizeof mbuf) != 2) return an_error("experiment: --models needs two models");
    float lrs[MAX_LIST];
    int nlr = parse_floats(lrs_s, lrs, MAX_LIST);
    if (nlr < 1) return an_error("experiment: --lrs must be positive numbers, e.g. 0.001,0.01,0.1");
    int seeds[MAX_LIST], nseeds = 0;
    for (const char *p = seeds_s; *p && nseeds < MAX_LIST;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0) return an_error("experiment: --seeds must be numbers, e.g. 1,2");
        seeds[nseeds++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (!nseeds) return an_error("experiment: --seeds must be numbers, e.g. 1,2");
    float best_lr[2];
    for (int m = 0; m < 2; m++) { /* the sweep */
        double best = INFINITY;
        best_lr[m] = lrs[0];
        char lab[64];
        label_of(models[m], lab, sizeof lab);
        for (int i = 0; i < nlr; i++) {
            char name[128];
            snprintf(name, sizeof name, "sweep-%s-lr%g", lab, lrs[i]);
            Curve c;
            int rc = run(k, name, models[m], lrs[i], sweep_epochs, (unsigned long long)seeds[0], sweep_images, 0.0f, 0, &c);
            double err = rc || c.n < 1 ? INFINITY : c.train_err[c.n - 1];
            printf("sweep %s lr %g: training error %s%.2f%% after %d epoch(s) on %d images\n", lab, lrs[i],
                   rc ? "(diverged) " : "", isfinite(err) ? err : 100.0, sweep_epochs, sweep_images);
            fflush(stdout);
            if (err < best) best = err, best_lr[m] = lrs[i];
        }
        printf("%s: learning rate %g\n", lab, best_lr[m]);
    }
    static Curve curves[2][MAX_LIST];
    int reach[2][MAX_LIST];
    for (int s = 0; s < nseeds; s++)
        for (int m = 0; m < 2; m++) { /* epoch by epoch until the target, then one more to see the trend */
            char lab[64], name[128];
            label_of(models[m], lab, sizeof lab);
            snprintf(name, sizeof name, "%s-seed%d", lab, seeds[s]);
            Curve *c = &curves[m][s];
            reach[m][s] = 0;
            for (int e = 1; e <= epochs; e++) {
                if (run(k, name, models[m], best_lr[m], e, (unsigned long long)seeds[s], k->limit_train, 0.0f, e > 1, c))
                    return -1;
                if (!reach[m][s] && c->n >= e && c->train_err[e - 1] <= target) reach[m][s] = e;
                if (reach[m][s] && e >= reach[m][s] + 1) break;
            }
            printf("%s seed %d (lr %g): training error per epoch", lab, seeds[s], best_lr[m]);
            for (int e = 0; e < c->n; e++) printf(" %.2f", c->train_err[e]);
            if (reach[m][s]) printf("; %g%% reached in epoch %d\n", target, reach[m][s]);
            else printf("; %g%% not reached in %d epochs\n", target, c->n);
            fflush(stdout);
        }
    printf("\n| seed | %s: epochs to %g%% | %s: epochs to %g%% | ratio |\n| --- | --- | --- | --- |\n", models[0], target,
           models[1], target);
    for (int s = 0; s < nseeds; s++) {
        char ratio[32] = "-";
        if (reach[0][s] && reach[1][s]) snprintf(ratio, sizeof ratio, "%.2f", (double)reach[1][s] / reach[0][s]);
        printf("| %d | %d | %d | %s |\n", seeds[s], reach[0][s], reach[1][s], ratio);
    }
    /* curves.csv and figure1.png */
    char path[1200];
    snprintf(path, sizeof path, "%s/curves.csv", k->out);
    FILE *f = fopen(path, "w");
    if (!f) return an_error("%s: cannot write", path);
    fprintf(f, "model,seed,lr,epoch,train_top1_err\n");
    int n = 0;
    const double *series[6];
    const char *names[6];
    static char namebuf[6][64];
    for (int s = 0; s < nseeds; s++)
        for (int m = 0; m < 2; m++) {
            const Curve *c = &curves[m][s];
            for (int e = 0; e < c->n; e++)
                fprintf(f, "%s,%d,%g,%d,%.4f\n", models[m], seeds[s], best_lr[m], e + 1, c->train_err[e]);
            if (c->n > n) n = c->n;
            int i = s * 2 + m;
            if (i < 6) {
                char lab[48];
                label_of(models[m], lab, sizeof lab);
                snprintf(namebuf[i], sizeof namebuf[i], "%s seed %d", lab, seeds[s]);
                series[i] = c->train_err, names[i] = namebuf[i];
            }
        }
    fclose(f);
    int ns = 2 * nseeds < 6 ? 2 * nseeds : 6;
    static double padded[6][MAX_RUN_EPOCHS];
    for (int i = 0; i < ns; i++) { /* shorter runs end with gaps */
        const Curve *c = &curves[i % 2][i / 2];
        for (int e = 0; e < n; e++) padded[i][e] = e < c->n ? c->train_err[e] : NAN;
        series[i] = padded[i];
    }
    snprintf(path, sizeof path, "%s/figure1.png", k->out);
    if (plot_lines(path, "training error (%)", n, ns, series, names, target)) return -1;
    printf("\nwrote %s/curves.csv and %s\n", k->out, path);
    return 0;
}

/* the paper's claimed top-1 / top-5 gains of what an ablation removes, by its name */
static const char *claim(const char *model) {
    if (strstr(model, "nolrn")) return "LRN: 1.4 / 1.2 points (section 3.3)";
    if (strstr(model, "lrn")) return "LRN: CIFAR-10, a four-layer net: 13% -> 11% test error (section 3.3)";
    if (strstr(model, "pool2")) return "overlapping pooling: 0.4 / 0.3 (section 3.4)";
    if (strstr(model, "1tower")) return "two towers: 1.7 / 1.2 (section 3.2; against half the kernels)";
    if (strstr(model, "2tower")) return "two towers: 1.7 / 1.2 (section 3.2; this: the same kernels, half the connections)";
    return "";
}

static int ablate(Common *k, const char *models_s, int seed, int epochs, int lighting_off) {
    Dataset ds; /* the kind of set: image folders and shards get alexnet and augmentation */
    if (dataset_load(&ds, k->data, 0)) return -1;
    int images = ds.kind == DATASET_FOLDER || ds.kind == DATASET_SHARD;
    dataset_free(&ds);
    if (lighting_off && !images) /* in-memory sets train without augmentation: it would repeat the baseline */
        return an_error("experiment ablate: --lighting-off: %s is an in-memory set (CIFAR-10, IDX), trained "
                        "without augmentation, so there is no PCA lighting to turn off", k->data);
    if (!models_s)
        models_s = images ? "alexnet,alexnet-nolrn,alexnet-pool2,alexnet-1tower"
                          : "convnet4,convnet4-lrn,convnet4-pool2,convnet4-2tower";
    const char *models[MAX_LIST];
    char mbuf[512];
    int nm = parse_list(models_s, models, MAX_LIST - 1, mbuf, sizeof mbuf);
    if (nm < 1) return an_error("experiment: --models needs at least one model");
    double best1[MAX_LIST], best5[MAX_LIST];
    int runs = nm + (lighting_off != 0);
    for (int i = 0; i < runs; i++) {
        const char *model = i < nm ? models[i] : models[0];
        char lab[64], name[128];
        label_of(model, lab, sizeof lab);
        snprintf(name, sizeof name, "%s%s-seed%d", lab, i < nm ? "" : "-nolighting", seed);
        Curve c;
        if (run(k, name, model, k->lr, epochs, (unsigned long long)seed, k->limit_train, i < nm ? 0.1f : 0.0f, 0, &c))
            return -1;
        best1[i] = best5[i] = INFINITY;
        for (int e = 0; e < c.n; e++)
            if (c.val1[e] < best1[i]) best1[i] = c.val1[e], best5[i] = c.val5[e];
        printf("%s: best validation top-1 %.2f%%, top-5 %.2f%% in %d epochs\n", name, best1[i], best5[i], c.n);
        fflush(stdout);
    }
    printf("\n| run | top-1 error | top-5 error | top-1 / top-5 change against %s | the paper's gain |\n"
           "| --- | --- | --- | --- | --- |\n", models[0]);
    for (int i = 0; i < runs; i++) {
        const char *model = i < nm ? models[i] : models[0];
        char change[64] = "(baseline)";
        if (i) snprintf(change, sizeof change, "%+.2f / %+.2f", best1[i] - best1[0], best5[i] - best5[0]);
        printf("| %s%s | %.2f%% | %.2f%% | %s | %s |\n", model, i < nm ? "" : " without PCA lighting", best1[i], best5[i],
               change, i < nm ? claim(model) : "lighting: over 1 point top-1 (section 4.1)");
    }
    printf("(each run: seed %d, %d epochs; a difference within the seed-to-seed spread is noise)\n", seed, epochs);
    return 0;
}

int cmd_experiment(int argc, char **argv) {
    const char *what[1], *models = NULL, *seeds = NULL, *lrs = "0.001,0.003,0.01,0.03,0.1";
    Common k = {.recipe = "caffe", .batch = 128, .lr = 0.01f, .momentum = 0.9f, .weight_decay = -1.0f};
    int epochs = 0, sweep_epochs = 1, sweep_images = 10000, help = 0, lighting_off = 0;
    float target = 25.0f;
    ArgSpec specs[] = {{"--data", ARG_STR, &k.data, NULL},          {"--out", ARG_STR, &k.out, NULL},
                       {"--models", ARG_STR, &models, NULL},        {"--seeds", ARG_STR, &seeds, NULL},
                       {"--lrs", ARG_STR, &lrs, NULL},              {"--epochs", ARG_INT, &epochs, NULL},
                       {"--sweep-epochs", ARG_INT, &sweep_epochs, NULL}, {"--sweep-images", ARG_INT, &sweep_images, NULL},
                       {"--target", ARG_FLOAT, &target, NULL},      {"--batch", ARG_INT, &k.batch, NULL},
                       {"--lr", ARG_FLOAT, &k.lr, NULL},            {"--momentum", ARG_FLOAT, &k.momentum, NULL},
                       {"--weight-decay", ARG_FLOAT, &k.weight_decay, NULL}, {"--recipe", ARG_STR, &k.recipe, NULL},
                       {"--limit-train", ARG_INT, &k.limit_train, NULL}, {"--limit-val", ARG_INT, &k.limit_val, NULL},
                       {"--lighting-off", ARG_FLAG, &lighting_off, NULL}};
    int npos = args_parse("experiment", argc, argv, 2, specs, sizeof specs / sizeof specs[0], what, 1, &help);
    if (npos < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    int fig1 = npos == 1 && !strcmp(what[0], "relu-vs-tanh"), abl = npos == 1 && !strcmp(what[0], "ablate");
    if (!fig1 && !abl) return an_error("experiment: say which: relu-vs-tanh or ablate"), fail();
    if (!k.data) return an_error("experiment: --data is required"), fail();
    if (abl && epochs < 1) return an_error("experiment ablate: --epochs N is required (the budget every run gets)"), fail();
    if (epochs < 0 || epochs > MAX_RUN_EPOCHS || sweep_epochs < 1 || sweep_images < 0 || k.batch < 1 ||
        k.limit_train < 0 || k.limit_val < 0 || !(target > 0 && target < 100))
        return an_error("experiment: --epochs 1-%d, --sweep-epochs and --batch at least 1, --target between 0 and "
                        "100, limits not negative", MAX_RUN_EPOCHS), fail();
    char out[512];
    if (!k.out) snprintf(out, sizeof out, "runs/experiment-%s", what[0]), k.out = out;
    if (k.weight_decay < 0) k.weight_decay = fig1 ? 0.0f : 0.0005f;
    int rc = fig1 ? relu_vs_tanh(&k, models ? models : "convnet4,convnet4-tanh", seeds ? seeds : "1,2", lrs,
                                 epochs ? epochs : 30, sweep_epochs, sweep_images, target)
                  : ablate(&k, models, seeds ? atoi(seeds) : 1, epochs, lighting_off);
    return rc ? fail() : 0;
}
