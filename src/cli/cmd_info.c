/* cmd_info.c: `alexnet info`: the layer table of a model (shapes, parameters, FLOPs). */
#include "args.h"
#include "commands.h"
#include "../model/model.h"
#include "../util/common.h"
#include <stdio.h>

static const char *HELP =
    "usage: alexnet info --model NAME [--classes N] [--channels C] [--size S]\n"
    "\n"
    "Prints every layer's input and output shape, parameter count and forward FLOPs, and the totals.\n"
    "Defaults: 1000 classes, 3 channels, the model's own input size (32 for the small networks).\n"
    "Models: alexnet (paper, 227x227, groups + LRN), alexnet-owt (torchvision, 224x224),\n"
    "convnet4 and convnet4-tanh (the paper's Figure 1 four-layer network).\n";

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    int classes = 1000, channels = 3, size = 32, help = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL}, {"--classes", ARG_INT, &classes, NULL},
                       {"--channels", ARG_INT, &channels, NULL}, {"--size", ARG_INT, &size, NULL}};
    if (args_parse("info", argc, argv, 2, specs, 4, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!model) return an_error("info: --model is required (%s)", model_names()), fail();
    const ModelSpec *spec = model_find(model);
    if (!spec) return fail();
    Net net;
    if (net_create(&net, spec, channels, classes, size, 1)) return fail();
    net_print_table(&net, stdout);
    net_free(&net);
    return 0;
}
