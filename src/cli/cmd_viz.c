/* cmd_viz.c: `alexnet viz filters`: the first convolution's kernels as a PNG grid (Figure 3). */
#include "args.h"
#include "commands.h"
#include "../model/model.h"
#include "../train/checkpoint.h"
#include "../util/common.h"
#include "../util/png.h"
#include "../viz/filters.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: alexnet viz filters --weights FILE --out PNG [--model NAME] [--scale N] [--per-row N]\n"
    "\n"
    "Draws the first convolution's kernels as a grid (the paper's Figure 3), each stretched to the\n"
    "full brightness range over its own weights. For `alexnet`, the kernels that feed each tower\n"
    "(conv2's groups: kernels 1-48 and 49-96) are drawn as two blocks, tower 1 above tower 2: the\n"
    "paper saw colour-agnostic kernels on one and colour-specific ones on the other.\n"
    "  --model NAME   (default: the one the checkpoint names)\n"
    "  --scale N      pixels per weight (default 4)      --per-row N   kernels a row (default 16)\n";

int cmd_viz(int argc, char **argv) {
    const char *what[1], *model = NULL, *weights = NULL, *out = NULL;
    int scale = 4, per_row = 16, help = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL}, {"--weights", ARG_STR, &weights, NULL},
                       {"--out", ARG_STR, &out, NULL},     {"--scale", ARG_INT, &scale, NULL},
                       {"--per-row", ARG_INT, &per_row, NULL}};
    int npos = args_parse("viz", argc, argv, 2, specs, 5, what, 1, &help);
    if (npos < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (npos != 1 || strcmp(what[0], "filters") != 0) return an_error("viz: say what to draw: viz filters"), fail();
    if (!weights || !out) return an_error("viz filters: --weights and --out are required"), fail();
    if (scale < 1 || scale > 64 || per_row < 1 || per_row > 1024)
        return an_error("viz filters: --scale must be 1-64 and --per-row 1-1024"), fail();
    StFile file;
    const ModelSpec *spec = model ? model_find(model) : checkpoint_model(weights); /* default: the one it names */
    if (!spec) return fail();
    Net net;
    Norm norm;
    if (checkpoint_load_net(weights, spec, 1, &net, &norm, &file)) return fail();
    st_free(&file);
    int first = -1, towers = 1;
    for (int i = 0; i < net.nlayers; i++)
        if (net.layers[i].spec->kind == LAYER_CONV) {
            if (first < 0) first = i;
            else { towers = net.layers[i].spec->groups; break; } /* the next convolution's groups */
        }
    int rc = 0;
    if (first < 0) {
        rc = an_error("model %s has no convolution", model);
    } else {
        const Layer *l = &net.layers[first];
        uint8_t *rgb = NULL;
        int w = 0, h = 0, ch = l->in_c / l->spec->groups;
        if (l->out_c % towers) towers = 1;
        rc = filters_grid(net.params + l->w_off, l->out_c, ch, l->spec->k, towers, per_row, scale, &rgb, &w, &h) ||
             png_write_rgb(out, rgb, w, h);
        if (!rc)
            printf("%s: %d kernels of %s (%dx%dx%d)%s, %dx%d pixels\n", out, l->out_c, l->spec->name, ch, l->spec->k,
                   l->spec->k, towers > 1 ? ", one block per tower" : "", w, h);
        free(rgb);
    }
    net_free(&net);
    norm_free(&norm);
    return rc ? fail() : 0;
}
