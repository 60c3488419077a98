/* cmd_classify.c: `alexnet classify`: top-K classes of image files with saved weights. */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../data/image.h"
#include "../data/imagenet_classes.h"
#include "../train/checkpoint.h"
#include "../util/common.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: alexnet classify [--model NAME] --weights FILE [[--model NAME] --weights FILE...] [--labels FILE]\n"
    "                        [--top K] IMAGE...\n"
    "\n"
    "For each image prints its path, then K lines (default 5): rank probability class-index name.\n"
    "Images are preprocessed as torchvision does for ImageNet: shorter side resized to 256,\n"
    "centre crop of the model's input size (224, or 227 for alexnet), normalised with the mean and\n"
    "std stored in the weights (ImageNet's for converted torchvision weights).\n"
    "  --weights FILE  given several times: an ensemble (the paper's 5 CNNs): the probabilities are the\n"
    "                  mean of the networks' softmax outputs; --model once for all, or once per --weights\n"
    "  --model NAME    default: the model the weights name (a built-in, or the description stored\n"
    "                  with them)\n"
    "  --labels FILE   class names, one per line, in class-index order (default: the names stored\n"
    "                  with the weights, the training data's; else for 1000 classes ILSVRC-2012's)\n"
    "  --precision fp32|bf16   bf16: matrix products with bfloat16 operands, float32 sums\n"
    "  --device cpu|cuda       cuda: on the GPU (--precision fp32, tf32 or bf16)\n";

#define MAX_IMAGES 4096

static char **read_labels(const char *path, int classes) {
    FILE *f = fopen(path, "r");
    if (!f) { an_error("%s: cannot open labels file", path); return NULL; }
    char **names = calloc(classes, sizeof *names), line[512];
    int n = 0;
    while (names && n < classes && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        names[n++] = strdup(line);
    }
    int more = names && n == classes && fgets(line, sizeof line, f) != NULL; /* a longer list is another one */
    fclose(f);
    if (names && (n < classes || more)) {
        an_error("%s: has %s%d names, the model has %d classes", path, more ? "more than " : "", n, classes);
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return NULL;
    }
    return names;
}

/* One image as network input: torchvision's Resize(256) + CenterCrop + per-channel normalisation,
 * or, for weights trained with the paper's input, the 256x256 base image's centre crop minus the
 * mean image. */
int image_input(const Net *net, const Norm *norm, const char *path, float *input) {
    Image img;
    if (image_load(path, &img)) return -1;
    int colour = 0;
    for (size_t q = 0; !colour && q < (size_t)img.w * img.h; q++)
        colour = img.data[3 * q] != img.data[3 * q + 1] || img.data[3 * q] != img.data[3 * q + 2];
    int small = img.w < img.h ? img.w : img.h;
    if ((net->in_c == 1 && colour) || (net->in_size < 64 && small > 4 * net->in_size))
        fprintf(stderr, "warning: %s: a %dx%d %s image for a network of %dx%d %s images: it sees it %s, and its "
                "answer may mean little\n", path, img.w, img.h, colour ? "colour" : "grey", net->in_size, net->in_size,
                net->in_c == 1 ? "grey" : "colour", net->in_c == 1 && colour ? "in grey, shrunk" : "shrunk");
    int rc = norm_image_input(net, norm, &img, path, input);
    image_free(&img);
    return rc;
}

/* The top K classes of one image: the mean of the k networks' softmax outputs (probs: classes). */
static int classify_one(Net *const *nets, const Norm *norms, int k, const char *path, int top, char **labels,
                        double *probs) {
    int classes = nets[0]->classes;
    for (int j = 0; j < classes; j++) probs[j] = 0.0;
    for (int m = 0; m < k; m++) {
        Net *net = nets[m];
        if (image_input(net, &norms[m], path, net->input) || !net_forward(net, 1, 0, 0) || net_loss(net, NULL, NULL))
            return -1;
        for (int j = 0; j < classes; j++) probs[j] += net->probs[j] / k;
    }
    printf("%s\n", path);
    char *used = calloc(classes, 1);
    if (!used) return an_error("out of memory");
    for (int r = 0; r < top && r < classes; r++) {
        int best = -1;
        for (int j = 0; j < classes; j++)
            if (!used[j] && (best < 0 || probs[j] > probs[best])) best = j;
        if (best < 0) break;
        used[best] = 1;
        const char *name = labels                             ? labels[best]
                           : nets[0]->class_names            ? nets[0]->class_names[best]
                           : classes == IMAGENET_NUM_CLASSES ? IMAGENET_CLASSES[best]
                                                             : "-";
        printf("%d %.6f %d %s\n", r + 1, (float)probs[best], best, name);
    }
    free(used);
    return 0;
}

enum { MAX_MEMBERS = 16 };

int cmd_classify(int argc, char **argv) {
    const char *labels_path = NULL, *precision = "fp32", *device = "cpu";
    const char *images[MAX_IMAGES], *weights[MAX_MEMBERS], *models[MAX_MEMBERS];
    int top = 5, help = 0, nweights = 0, nmodels = 0;
    ArgStrList wl = {weights, MAX_MEMBERS, &nweights}, ml = {models, MAX_MEMBERS, &nmodels};
    ArgSpec specs[] = {{"--model", ARG_STRLIST, &ml, NULL}, {"--weights", ARG_STRLIST, &wl, NULL},
                       {"--labels", ARG_STR, &labels_path, NULL}, {"--top", ARG_INT, &top, NULL},
                       {"--precision", ARG_STR, &precision, NULL}, {"--device", ARG_STR, &device, NULL}};
    int nimg = args_parse("classify", argc, argv, 2, specs, 6, images, MAX_IMAGES, &help);
    if (nimg < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!nweights || nimg == 0) return an_error("classify: --weights and at least one IMAGE are required"), fail();
    if (nmodels > 1 && nmodels != nweights)
        return an_error("classify: %d --model for %d --weights: give --model once, or once per --weights", nmodels,
                        nweights), fail();
    if (arg_range("classify", "--top", top, 1, LONG_MAX)) return fail();
    int gpu, gpu_math;
    if (device_select("classify", device, precision, &gpu, &gpu_math)) return fail();
    Net nets[MAX_MEMBERS];
    Net *members[MAX_MEMBERS];
    Norm norms[MAX_MEMBERS];
    int loaded = 0, rc = 0;
    for (int m = 0; m < nweights && !rc; m++) {
        StFile file;
        members[m] = &nets[m];
        const ModelSpec *spec = nmodels ? model_find(models[nmodels == 1 ? 0 : m]) : checkpoint_model(weights[m]);
        if (!spec || checkpoint_load_net(weights[m], spec, 1, &nets[m], &norms[m], &file)) { rc = -1; break; }
        st_free(&file);
        if (gpu ? net_to_gpu(&nets[m], gpu_math, NULL) : net_freeze_bf16(&nets[m])) { /* freeze: bf16 mode only */
            net_free(&nets[m]), norm_free(&norms[m]);
            rc = -1;
            break;
        }
        loaded++;
        if (m && nets[m].classes != nets[0].classes)
            rc = an_error("%s: %d classes, but %s has %d: an ensemble's networks must share their classes", weights[m],
                          nets[m].classes, weights[0], nets[0].classes);
    }
    char **labels = NULL;
    double *probs = NULL;
    if (!rc && labels_path && !(labels = read_labels(labels_path, nets[0].classes))) rc = -1;
    if (!rc && !(probs = malloc((size_t)nets[0].classes * sizeof(double)))) rc = an_error("out of memory");
    int failures = 0;
    for (int i = 0; !rc && i < nimg; i++)
        if (classify_one(members, norms, nweights, images[i], top, labels, probs)) {
            fprintf(stderr, "alexnet: %s\n", an_last_error());
            failures++;
        }
    if (labels)
        for (int i = 0; i < nets[0].classes; i++) free(labels[i]);
    free(labels), free(probs);
    for (int m = 0; m < loaded; m++) net_free(&nets[m]), norm_free(&norms[m]);
    if (rc) return fail();
    return failures ? 1 : 0;
}
