/* models.c: the architectures, by name: the description files of models/ (built in), or a file
 * given by path; and the training recipes that set their starting values. The built-ins:
 *   alexnet        the paper's network: 227x227 input, two towers as groups=2 in conv2/4/5,
 *                  LRN after conv1 and conv2 within each tower (the paper's two GPUs normalised
 *                  their own 48 and 128 kernel maps; Caffe's one-GPU bvlc_alexnet crosses the
 *                  tower edge), overlapping 3/2 max pooling, 60,965,224 parameters
 *   alexnet-owt    torchvision's "one weird trick" layout: 224x224, 64/192/384/256/256 filters,
 *                  no LRN or groups, adaptive average pool to 6x6, 61,100,840 parameters
 *   convnet4       the four-layer CIFAR-style network of the paper's Figure 1 (ReLU), for quick runs
 *   convnet4-tanh  the same with tanh, the other curve of Figure 1
 *   alexnet-nolrn, alexnet-pool2, alexnet-1tower, alexnet-conv6: the paper's ablations and its
 *                  section 6 variant (the files say what each changes)
 *   convnet4-lrn, convnet4-pool2, convnet4-2tower: the same ablations of the four-layer network,
 *                  for CIFAR-10 */
#include "model.h"
#include "../util/common.h"
#include <stdio.h>
#include <string.h>

const LrnParams PAPER_LRN = {5, 1e-4f, 0.75f, 2.0f, 0};

extern const char model_cfg_alexnet[], model_cfg_alexnet_owt[], model_cfg_convnet4[], model_cfg_convnet4_tanh[],
    model_cfg_alexnet_nolrn[], model_cfg_alexnet_pool2[], model_cfg_alexnet_1tower[], model_cfg_alexnet_conv6[],
    model_cfg_convnet4_lrn[], model_cfg_convnet4_pool2[], model_cfg_convnet4_2tower[];

/* the built-in models: models/NAME.cfg, embedded (models_embedded.c) */
static const struct { const char *name, *text; } BUILTIN[] = {
    {"alexnet", model_cfg_alexnet},
    {"alexnet-owt", model_cfg_alexnet_owt},
    {"convnet4", model_cfg_convnet4},
    {"convnet4-tanh", model_cfg_convnet4_tanh},
    {"alexnet-nolrn", model_cfg_alexnet_nolrn},
    {"alexnet-pool2", model_cfg_alexnet_pool2},
    {"alexnet-1tower", model_cfg_alexnet_1tower},
    {"alexnet-conv6", model_cfg_alexnet_conv6},
    {"convnet4-lrn", model_cfg_convnet4_lrn},
    {"convnet4-pool2", model_cfg_convnet4_pool2},
    {"convnet4-2tower", model_cfg_convnet4_2tower},
};
#define NMODELS ((int)(sizeof BUILTIN / sizeof BUILTIN[0]))

const char *model_builtin_text(const char *name) {
    for (int i = 0; i < NMODELS; i++)
        if (!strcmp(BUILTIN[i].name, name)) return BUILTIN[i].text;
    return NULL;
}

/* parsed once each: the built-ins, and description files by path */
static ModelSpec g_builtin[NMODELS];
static struct { char path[512]; ModelSpec spec; } g_files[16];
static int g_nfiles;

const ModelSpec *model_find(const char *name) {
    for (int i = 0; i < NMODELS; i++) {
        if (strcmp(BUILTIN[i].name, name) != 0) continue;
        if (!g_builtin[i].name) {
            char origin[64];
            snprintf(origin, sizeof origin, "models/%s.cfg (built in)", name);
            if (model_parse(BUILTIN[i].text, origin, &g_builtin[i])) return NULL;
        }
        return &g_builtin[i];
    }
    if (strchr(name, '/') || (strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".cfg"))) { /* a file */
        for (int i = 0; i < g_nfiles; i++)
            if (!strcmp(g_files[i].path, name)) return &g_files[i].spec;
        if (g_nfiles == 16 || strlen(name) >= sizeof g_files[0].path) {
            an_error("%s: too many model description files, or too long a path", name);
            return NULL;
        }
        if (model_load_file(name, &g_files[g_nfiles].spec)) return NULL;
        snprintf(g_files[g_nfiles].path, sizeof g_files[0].path, "%s", name);
        return &g_files[g_nfiles++].spec;
    }
    an_error("unknown model '%s' (choose from %s, or give a description file: models/*.cfg)", name, model_names());
    return NULL;
}

const char *model_names(void) {
    return "alexnet, alexnet-owt, convnet4, convnet4-tanh, alexnet-nolrn, alexnet-pool2, alexnet-1tower, alexnet-conv6, convnet4-lrn, "
           "convnet4-pool2, convnet4-2tower";
}

int model_apply_recipe(const ModelSpec *spec, const char *recipe, ModelSpec *out) {
    *out = *spec;
    out->owns_names = 0; /* a copy: the names stay the original's */
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
