/* cmd_eval.c: `alexnet eval`: top-1 and top-5 error of saved weights on a test/validation split. */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../train/checkpoint.h"
#include <limits.h>
#include <string.h>
#include "../train/eval.h"
#include "../util/common.h"
#include <stdio.h>
#include <stdlib.h>

static const char *HELP =
    "usage: alexnet eval [--model NAME] --weights FILE [[--model NAME] --weights FILE...] --data PATH\n"
    "                    [--crops 1|10] [--batch N] [--limit N]\n"
    "\n"
    "Prints the top-1 and top-5 error of the weights (a training checkpoint or weights file, e.g.\n"
    "torchvision weights converted by tools/torchvision_to_safetensors.py) on the test split of an IDX\n"
    "or CIFAR-10 folder, the val/ folder of an image folder, or the val split of a shard file.\n"
    "  --model NAME the network (default: the one the weights name, built in or stored with them)\n"
    "  --crops 1    the centre crop (default)\n"
    "  --crops 10   the paper's 10-crop test: four corners and centre of the 256x256 image and their\n"
    "               mirrors, softmax outputs averaged\n"
    "  --weights FILE given several times: an ensemble (the paper's 5 CNNs): the networks' softmax\n"
    "               outputs averaged; each member is also reported alone (from the same passes). --model\n"
    "               once: every member is that network; once per --weights (in the same order): members\n"
    "               of different networks\n"
    "  --val-split F the held-out share of train/ of a folder without val/ (as train --val-split F)\n"
    "  --per-class  every class's top-1 error (by the names stored with the weights), hardest first;\n"
    "               without it, the 5 hardest\n"
    "  --batch N   images per forward pass (default 100)     --limit N   N images spread evenly over the split\n"
    "  --precision fp32|bf16   bf16: matrix products with bfloat16 operands, float32 sums\n"
    "  --device cpu|cuda       cuda: on the GPU (--precision fp32, tf32 or bf16)\n";

/* Load one member's network and input statistics (on the GPU or frozen for bf16 as asked). 0 or -1. */
static int load_member(const char *path, const ModelSpec *spec, int batch, int gpu, int gpu_math, Net *net, Norm *norm) {
    StFile file;
    if (checkpoint_load_net(path, spec, batch, net, norm, &file)) return -1;
    st_free(&file);
    if (gpu ? net_to_gpu(net, gpu_math, NULL) : net_freeze_bf16(net)) { /* freeze: bf16 mode only */
        net_free(net), norm_free(norm);
        return -1;
    }
    return 0;
}

/* The result line (with images/s when seconds >= 0), then the classes by top-1 error: the 5 hardest, or with per_class every class
 * (names from the weights, else indices) */
static void print_result(const EvalResult *r, const Net *net, const char *label, const char *model, const char *data,
                         int crops, double seconds, int per_class) {
    char top5[48] = ""; /* with 5 classes or fewer every image is in the top 5 */
    if (net->classes > 5) snprintf(top5, sizeof top5, ", top-5 error %.2f%%", 100 * r->top5_err);
    char rate[48] = ""; /* members share the ensemble's pass: their lines carry no rate */
    if (seconds >= 0) {
        double v = r->count / (seconds > 0 ? seconds : 1e-9);
        snprintf(rate, sizeof rate, " (%.*f images/s)", v < 10 ? 1 : 0, v);
    }
    printf("%s%s on %s (%ld images, %s): top-1 error %.2f%%%s, loss %.4f%s\n", model, label, data, r->count,
           crops == 10 ? "10 crops" : "centre crop", 100 * r->top1_err, top5, r->loss, rate);
    int *order = malloc((size_t)net->classes * sizeof(int)), n = 0;
    if (!order) return;
    for (int j = 0; j < net->classes; j++)
        if (r->class_count[j]) order[n++] = j;
    for (int a = 1; a < n; a++) /* by error, highest first (insertion sort: stable, classes in order on ties) */
        for (int b = a; b > 0; b--) {
            int x = order[b - 1], y = order[b];
            if ((double)r->class_wrong[y] / r->class_count[y] <= (double)r->class_wrong[x] / r->class_count[x]) break;
            order[b - 1] = y, order[b] = x;
        }
    int shown = per_class ? n : n < 5 ? n : 5;
    printf("  %s", per_class ? "top-1 error by class:" : "hardest classes (top-1 error):");
    for (int i = 0; i < shown; i++) {
        int j = order[i];
        char idx[16];
        snprintf(idx, sizeof idx, "class %d", j);
        printf("%s %s %.1f%% (%ld)", i ? "," : "", net->class_names ? net->class_names[j] : idx,
               100.0 * r->class_wrong[j] / r->class_count[j], r->class_count[j]);
    }
    printf("\n");
    free(order);
}

/* A result's NaN check: a NaN network must not be reported as accurate. who: what the error names. */
static int finite_result(const EvalResult *r, const char *who) {
    if (!r->nonfinite) return 0;
    return an_error("%s: the network's outputs are NaN or infinite for %ld of %ld images (are its weights finite?); "
                    "no error rate reported", who, r->nonfinite, r->count);
}

/* Evaluate the k networks in one pass over the images: with k > 1 each member alone (a line each,
 * "(member m of k)") and the ensemble ("(ensemble of k)"), from the same forward passes; with k = 1
 * the network. Prints the lines; 0 or -1. */
static int report(Net *const *nets, const Norm *norms, const char *const *weights, int k, const Dataset *ds,
                  const int *idx, int count, int crops, const char *data, int per_class) {
    int classes = nets[0]->classes, rc = 0;
    EvalResult r = {0}, each[EVAL_MAX_MEMBERS] = {{0}};
    for (int m = -1; m < k; m++) {
        EvalResult *e = m < 0 ? &r : &each[m];
        e->class_count = calloc((size_t)classes, sizeof(long)), e->class_wrong = calloc((size_t)classes, sizeof(long));
        if (!e->class_count || !e->class_wrong) rc = an_error("out of memory");
    }
    double t0 = an_now();
    if (!rc) rc = evaluate_members(nets, norms, k, ds, idx, count, crops, 1, &r, k > 1 ? each : NULL);
    double seconds = an_now() - t0;
    for (int m = 0; !rc && k > 1 && m < k; m++) rc = finite_result(&each[m], weights[m]);
    if (!rc) rc = finite_result(&r, k > 1 ? "the ensemble" : weights[0]);
    for (int m = 0; !rc && k > 1 && m < k; m++) {
        char label[64];
        snprintf(label, sizeof label, " (member %d of %d)", m + 1, k);
        print_result(&each[m], nets[m], label, nets[m]->spec.name, data, crops, -1.0, per_class);
    }
    if (!rc) {
        char label[64] = "";
        int same = 1;
        for (int m = 1; m < k; m++) same &= !strcmp(nets[m]->spec.name, nets[0]->spec.name);
        if (k > 1) snprintf(label, sizeof label, " (ensemble of %d)", k);
        print_result(&r, nets[0], label, same ? nets[0]->spec.name : "networks", data, crops, seconds, per_class);
        if (r.skipped) fprintf(stderr, "%d image files could not be read and were skipped\n", r.skipped);
    }
    for (int m = -1; m < k; m++) {
        EvalResult *e = m < 0 ? &r : &each[m];
        free(e->class_count), free(e->class_wrong);
    }
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *data = NULL, *precision = "fp32", *device = "cpu";
    const char *weights[EVAL_MAX_MEMBERS], *models[EVAL_MAX_MEMBERS];
    float val_split = 0.0f;
    int per_class = 0;
    int nweights = 0, nmodels = 0, batch = 100, limit = 0, limit_given = 0, crops = 1, help = 0;
    ArgStrList wl = {weights, EVAL_MAX_MEMBERS, &nweights}, ml = {models, EVAL_MAX_MEMBERS, &nmodels};
    ArgSpec specs[] = {{"--model", ARG_STRLIST, &ml, NULL}, {"--weights", ARG_STRLIST, &wl, NULL},
                       {"--data", ARG_STR, &data, NULL},   {"--batch", ARG_INT, &batch, NULL},
                       {"--limit", ARG_INT, &limit, &limit_given}, {"--val-split", ARG_FLOAT, &val_split, NULL},
                       {"--per-class", ARG_FLAG, &per_class, NULL},  {"--crops", ARG_INT, &crops, NULL},
                       {"--precision", ARG_STR, &precision, NULL}, {"--device", ARG_STR, &device, NULL}};
    if (args_parse("eval", argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]), NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!nweights || !data) return an_error("eval: --weights and --data are required"), fail();
    if (nmodels > 1 && nmodels != nweights)
        return an_error("eval: %d --model for %d --weights: give --model once, or once per --weights", nmodels,
                        nweights), fail();
    if (arg_range("eval", "--batch", batch, 1, LONG_MAX) || (limit_given && arg_range("eval", "--limit", limit, 1, LONG_MAX)))
        return fail(); /* no --limit: every image */
    if (crops != 1 && crops != 10) return an_error("eval: --crops must be 1 or 10, not %d", crops), fail();
    int gpu, gpu_math;
    if (device_select("eval", device, precision, &gpu, &gpu_math)) return fail();
    if (crops == 10 && batch < 10) batch = 10;
    Net nets[EVAL_MAX_MEMBERS];
    Net *members[EVAL_MAX_MEMBERS];
    Norm norms[EVAL_MAX_MEMBERS];
    int loaded = 0, rc = 0;
    for (int m = 0; m < nweights && !rc; m++) {
        members[m] = &nets[m];
        const ModelSpec *spec = nmodels ? model_find(models[nmodels == 1 ? 0 : m]) : checkpoint_model(weights[m]);
        if (!spec || load_member(weights[m], spec, batch, gpu, gpu_math, &nets[m], &norms[m])) { rc = -1; break; }
        loaded++;
        if (m && nets[m].classes != nets[0].classes)
            rc = an_error("%s: %d classes, but %s has %d: an ensemble's networks must share their classes", weights[m],
                          nets[m].classes, weights[0], nets[0].classes);
    }
    Dataset ds = {0};
    if (!rc && dataset_load_split(&ds, data, 0, val_split, DATASET_SPLIT_SEED)) rc = -1;
    if (!rc && crops == 10 && (ds.kind == DATASET_IDX || ds.kind == DATASET_CIFAR10))
        rc = an_error("%s: --crops 10 takes the paper's crops of 256x256 images, and this set's images are %dx%d, "
                      "no larger than the network's input: use --crops 1", data, ds.w, ds.h);
    if (!rc && ds.classes > nets[0].classes)
        rc = an_error("%s: the dataset has %d classes, the weights %d", data, ds.classes, nets[0].classes);
    int count = !rc && limit && limit < ds.n ? limit : ds.n;
    int *idx = rc ? NULL : malloc((size_t)(count ? count : 1) * sizeof(int)); /* spread over the whole split */
    if (!rc && !idx) rc = an_error("out of memory");
    for (int k = 0; !rc && k < count; k++) idx[k] = (int)((long)k * ds.n / count);
    if (!rc) rc = report(members, norms, weights, nweights, &ds, idx, count, crops, data, per_class);
    free(idx);
    dataset_free(&ds);
    for (int m = 0; m < loaded; m++) net_free(&nets[m]), norm_free(&norms[m]);
    return rc ? fail() : 0;
}
