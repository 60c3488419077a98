/* cmd_export.c: `alexnet export`: saved weights as an ONNX model (src/export/onnx.c). */
#include "args.h"
#include "commands.h"
#include "../export/onnx.h"
#include "../train/checkpoint.h"
#include "../util/common.h"
#include <stdio.h>

static const char *HELP =
    "usage: alexnet export --weights FILE --onnx OUT.onnx [--model NAME|FILE]\n"
    "\n"
    "Writes the network of the weights (a training checkpoint or weights file) as an ONNX model\n"
    "(ir_version 8, opset 13), written by this program: no Python, no protobuf library. The graph\n"
    "input \"input\" is (batch, C, S, S) float, the network input as the forward pass takes it, already\n"
    "normalised (no preprocessing in the graph); the outputs are \"logits\" and \"probs\" (softmax),\n"
    "(batch, classes). Weights and biases keep their checkpoint names. The paper's two towers are\n"
    "Conv groups, its LRN within each tower a Reshape, LRN, Reshape; dropout (training only) is left\n"
    "out. The model's metadata holds the model's name, how images become the input (the weights'\n"
    "normalisation) and the class names when the weights have them. docs/FORMATS.md lists the\n"
    "layers' ONNX operators.\n"
    "  --weights FILE     the weights to export\n"
    "  --onnx OUT.onnx    the ONNX file to write (through OUT.onnx.tmp and a rename)\n"
    "  --model NAME|FILE  the network (default: the one the weights name, built in or stored with\n"
    "                     them; another one is an error)\n";

/* How an image becomes the network input, for the model's metadata ("preprocessing") */
static void preprocessing_text(const Norm *norm, char *buf, size_t size) {
    if (norm->paper) {
        snprintf(buf, size, "the paper's: RGB pixels 0..255, 256x256 image's centre crop minus the training set's "
                 "mean image (in the weights file, not in this model), times %g", (double)norm->scale);
        return;
    }
    int o = snprintf(buf, size, "input = (pixel / 255 - mean) / std per channel (%s), mean",
                     norm->c == 1 ? "grey" : "RGB");
    for (int c = 0; c < norm->c && c < 3 && o < (int)size; c++) o += snprintf(buf + o, size - o, " %g", (double)norm->mean[c]);
    if (o < (int)size) o += snprintf(buf + o, size - o, ", std");
    for (int c = 0; c < norm->c && c < 3 && o < (int)size; c++) o += snprintf(buf + o, size - o, " %g", (double)norm->std[c]);
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *weights = NULL, *out = NULL;
    int help = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL},
                       {"--weights", ARG_STR, &weights, NULL},
                       {"--onnx", ARG_STR, &out, NULL}};
    if (args_parse("export", argc, argv, 2, specs, 3, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!weights || !out) return an_error("export: --weights and --onnx are required"), fail();
    const ModelSpec *spec = model ? model_find(model) : checkpoint_model(weights); /* default: the one it names */
    if (!spec) return fail();
    Net net;
    Norm norm;
    StFile file;
    if (checkpoint_load_net(weights, spec, 1, &net, &norm, &file)) return fail();
    st_free(&file);
    OnnxSummary s;
    char pre[256];
    preprocessing_text(&norm, pre, sizeof pre);
    int rc = onnx_export(&net, pre, out, &s);
    if (!rc) {
        char params[32], bytes[32];
        an_with_commas((double)s.params, params, sizeof params);
        an_with_commas((double)s.bytes, bytes, sizeof bytes);
        printf("%s: model %s, input (batch, %d, %d, %d), %d classes: %d nodes, %s parameters in %d initializers, "
               "%s bytes, ONNX opset %d (ir_version %d)\n",
               out, net.spec.name, net.in_c, net.in_size, net.in_size, net.classes, s.nodes, params,
               s.initializers, bytes, s.opset, ONNX_IR_VERSION);
    }
    net_free(&net);
    norm_free(&norm);
    return rc ? fail() : 0;
}
