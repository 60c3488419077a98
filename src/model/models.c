/* models.c: the architectures, by name. Each is a plain list of layers (see model.h).
 *   alexnet        the paper's network: 227x227 input, two towers as groups=2 in conv2/4/5,
 *                  LRN after conv1 and conv2 within each tower (the paper's two GPUs normalised
 *                  their own 48 and 128 kernel maps; Caffe's one-GPU bvlc_alexnet crosses the
 *                  tower edge), overlapping 3/2 max pooling, 60,965,224 parameters
 *   alexnet-owt    torchvision's "one weird trick" layout: 224x224, 64/192/384/256/256 filters,
 *                  no LRN or groups, adaptive average pool to 6x6, 61,100,840 parameters
 *   convnet4       the four-layer CIFAR-style network of the paper's Figure 1 (ReLU), for quick runs
 *   convnet4-tanh  the same with tanh, the other curve of Figure 1 */
#include "model.h"
#include "../util/common.h"
#include <string.h>

const LrnParams PAPER_LRN = {5, 1e-4f, 0.75f, 2.0f, 0};

#define CONV(nm, o, kk, st, pd, g, std, b) \
    {.kind = LAYER_CONV, .name = nm, .out = o, .k = kk, .stride = st, .pad = pd, .groups = g, .w_std = std, .b_init = b}
#define FC(nm, o, std, b) {.kind = LAYER_LINEAR, .name = nm, .out = o, .w_std = std, .b_init = b}
#define RELU {.kind = LAYER_RELU}
#define TANH {.kind = LAYER_TANH}
#define LRN {.kind = LAYER_LRN}
#define LRN_TOWERS {.kind = LAYER_LRN, .groups = 2} /* each tower over its own kernel maps */
#define MAXPOOL(kk, st) {.kind = LAYER_MAXPOOL, .k = kk, .stride = st}
#define AVGPOOL(o) {.kind = LAYER_AVGPOOL, .out = o}
#define DROPOUT(pp) {.kind = LAYER_DROPOUT, .p = pp}

static const ModelSpec MODELS[] = {
    {.name = "alexnet",
     .about = "the paper's network (two towers as groups, LRN, overlapping pooling), 227x227 input",
     .in_size = 227,
     .nlayers = 21,
     .layers = {CONV("conv1", 96, 11, 4, 0, 1, 0.01f, 0.0f), RELU, LRN_TOWERS, MAXPOOL(3, 2),
                CONV("conv2", 256, 5, 1, 2, 2, 0.01f, 1.0f), RELU, LRN_TOWERS, MAXPOOL(3, 2),
                CONV("conv3", 384, 3, 1, 1, 1, 0.01f, 0.0f), RELU,
                CONV("conv4", 384, 3, 1, 1, 2, 0.01f, 1.0f), RELU,
                CONV("conv5", 256, 3, 1, 1, 2, 0.01f, 1.0f), RELU, MAXPOOL(3, 2),
                FC("fc6", 4096, 0.01f, 1.0f), RELU, DROPOUT(0.5f),
                FC("fc7", 4096, 0.01f, 1.0f), RELU, DROPOUT(0.5f)}},
    {.name = "alexnet-owt",
     .about = "torchvision's AlexNet (one weird trick layout, torchvision tensor names), 224x224 input",
     .in_size = 224,
     .nlayers = 20,
     .layers = {CONV("features.0", 64, 11, 4, 2, 1, 0.01f, 0.0f), RELU, MAXPOOL(3, 2),
                CONV("features.3", 192, 5, 1, 2, 1, 0.01f, 1.0f), RELU, MAXPOOL(3, 2),
                CONV("features.6", 384, 3, 1, 1, 1, 0.01f, 0.0f), RELU,
                CONV("features.8", 256, 3, 1, 1, 1, 0.01f, 1.0f), RELU,
                CONV("features.10", 256, 3, 1, 1, 1, 0.01f, 1.0f), RELU, MAXPOOL(3, 2), AVGPOOL(6),
                DROPOUT(0.5f), FC("classifier.1", 4096, 0.01f, 1.0f), RELU,
                DROPOUT(0.5f), FC("classifier.4", 4096, 0.01f, 1.0f), RELU}},
    {.name = "convnet4",
     .about = "four-layer CIFAR-style network of the paper's Figure 1, ReLU (input: the dataset's size)",
     .in_size = 0,
     .paper_input_scale = 1.0f / 64.0f, /* He init expects inputs of about unit variance */
     .nlayers = 9,
     .layers = {CONV("conv1", 32, 5, 1, 2, 1, 0.0f, 0.0f), RELU, MAXPOOL(3, 2),
                CONV("conv2", 32, 5, 1, 2, 1, 0.0f, 0.0f), RELU, MAXPOOL(3, 2),
                CONV("conv3", 64, 5, 1, 2, 1, 0.0f, 0.0f), RELU, MAXPOOL(3, 2)}},
    {.name = "convnet4-tanh",
     .about = "the same four-layer network with tanh units (Figure 1's slower curve)",
     .in_size = 0,
     .paper_input_scale = 1.0f / 64.0f,
     .nlayers = 9,
     .layers = {CONV("conv1", 32, 5, 1, 2, 1, 0.0f, 0.0f), TANH, MAXPOOL(3, 2),
                CONV("conv2", 32, 5, 1, 2, 1, 0.0f, 0.0f), TANH, MAXPOOL(3, 2),
                CONV("conv3", 64, 5, 1, 2, 1, 0.0f, 0.0f), TANH, MAXPOOL(3, 2)}},
};
#define NMODELS ((int)(sizeof MODELS / sizeof MODELS[0]))

/* Every model ends in a classifier layer sized by the dataset; appended here so the tables above
 * stay short. */
static ModelSpec g_complete[NMODELS];

const ModelSpec *model_find(const char *name) {
    for (int i = 0; i < NMODELS; i++) {
        if (strcmp(MODELS[i].name, name) != 0) continue;
        ModelSpec *m = &g_complete[i];
        if (!m->name) {
            *m = MODELS[i];
            const char *last = strcmp(name, "alexnet") == 0       ? "fc8"
                               : strcmp(name, "alexnet-owt") == 0 ? "classifier.6"
                                                                  : "fc4";
            m->layers[m->nlayers++] = (LayerSpec)FC(last, 0, 0.01f, 0.0f);
        }
        return m;
    }
    an_error("unknown model '%s' (choose from %s)", name, model_names());
    return NULL;
}

const char *model_names(void) { return "alexnet, alexnet-owt, convnet4, convnet4-tanh"; }

int model_apply_recipe(const ModelSpec *spec, const char *recipe, ModelSpec *out) {
    *out = *spec;
    out->bias_lr_mult = 1.0f, out->bias_decay_mult = 1.0f;
    if (strcmp(recipe, "paper") == 0) return 0;
    if (strcmp(recipe, "caffe") != 0) return an_error("unknown recipe '%s' (choose paper or caffe)", recipe);
    int last_fc = -1;
    for (int i = 0; i < out->nlayers; i++)
        if (out->layers[i].kind == LAYER_LINEAR) last_fc = i;
    for (int i = 0; i < out->nlayers; i++) {
        LayerSpec *l = &out->layers[i];
        if (l->kind == LAYER_LINEAR && i < last_fc) l->w_std = 0.005f; /* fc6, fc7 */
        if ((l->kind == LAYER_LINEAR || l->kind == LAYER_CONV) && l->b_init == 1.0f) l->b_init = 0.1f;
    }
    out->bias_lr_mult = 2.0f, out->bias_decay_mult = 0.0f; /* lr_mult: 2, decay_mult: 0 on every bias */
    return 0;
}
