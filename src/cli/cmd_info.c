/* cmd_info.c: `alexnet info`: the layer table of a model (shapes, parameters, FLOPs). */
#include "args.h"
#include "commands.h"
#include "../model/model.h"
#include "../util/common.h"
#include <stdio.h>

static const char *HELP =
    "usage: alexnet info --model NAME|FILE [--classes N] [--channels C] [--size S] [--print-config]\n"
    "\n"
    "Prints every layer's input and output shape, parameter count and forward FLOPs, and the totals.\n"
    "Defaults: 1000 classes, 3 channels, the model's own input size (32 for the small networks).\n"
    "Models: alexnet (paper, 227x227, groups + LRN), alexnet-owt (torchvision, 224x224),\n"
    "convnet4 and convnet4-tanh (the paper's Figure 1 four-layer network), the ablations\n"
    "alexnet-nolrn, alexnet-pool2, alexnet-1tower, and alexnet-conv6; or a description file (a path:\n"
    "models/*.cfg are the built-in ones, docs/FORMATS.md the format).\n"
    "  --print-config   print the model's description instead (the built-in text as it is; a file's\n"
    "                   as read back), after checking that it builds with the given shape\n";

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    int classes = 1000, channels = 3, size = 32, help = 0, print_config = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL}, {"--classes", ARG_INT, &classes, NULL},
                       {"--channels", ARG_INT, &channels, NULL}, {"--size", ARG_INT, &size, NULL},
                       {"--print-config", ARG_FLAG, &print_config, NULL}};
    if (args_parse("info", argc, argv, 2, specs, 5, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!model) return an_error("info: --model is required (%s)", model_names()), fail();
    const ModelSpec *spec = model_find(model);
    if (!spec) return fail();
    Net net;
    if (net_create(&net, spec, channels, classes, size, 1)) return fail();
    const char *text = model_builtin_text(model);
    if (!print_config) net_print_table(&net, stdout);
    else if (text) fputs(text, stdout);
    else model_print(spec, stdout);
    net_free(&net);
    return 0;
}
