/* cmd_eval.c: `alexnet eval`: top-1 and top-5 error of saved weights on a test/validation split. */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../train/checkpoint.h"
#include "../train/eval.h"
#include "../util/common.h"
#include <stdio.h>

static const char *HELP =
    "usage: alexnet eval --model NAME --weights FILE --data PATH [--batch N] [--limit N]\n"
    "\n"
    "Prints the top-1 and top-5 error of the weights (a training checkpoint or weights file, e.g.\n"
    "torchvision weights converted by tools/torchvision_to_safetensors.py) on the test split of an IDX\n"
    "or CIFAR-10 folder or the val/ folder of an image folder. Images are centre-cropped.\n"
    "  --batch N   images per forward pass (default 100)     --limit N   a fixed subset of N images\n";

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *weights = NULL, *data = NULL;
    int batch = 100, limit = 0, help = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL}, {"--weights", ARG_STR, &weights, NULL},
                       {"--data", ARG_STR, &data, NULL},   {"--batch", ARG_INT, &batch, NULL},
                       {"--limit", ARG_INT, &limit, NULL}};
    if (args_parse("eval", argc, argv, 2, specs, 5, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!model || !weights || !data) return an_error("eval: --model, --weights and --data are required"), fail();
    if (batch < 1 || limit < 0) return an_error("eval: --batch must be at least 1 and --limit not negative"), fail();
    const ModelSpec *spec = model_find(model);
    if (!spec) return fail();
    Net net;
    Norm norm;
    StFile file;
    if (checkpoint_load_net(weights, spec, batch, &net, &norm, &file)) return fail();
    st_free(&file);
    Dataset ds;
    if (dataset_load(&ds, data, 0)) { net_free(&net); return fail(); }
    int rc = 0;
    if (ds.classes > net.classes) {
        rc = an_error("%s: the dataset has %d classes, the weights %d", data, ds.classes, net.classes);
    } else {
        int count = limit && limit < ds.n ? limit : ds.n;
        EvalResult r;
        double t0 = an_now();
        rc = evaluate(&net, &ds, NULL, count, &norm, 1, &r);
        if (!rc)
            printf("%s on %s (%ld images): top-1 error %.2f%%, top-5 error %.2f%%, loss %.4f (%.0f images/s)\n",
                   model, data, r.count, 100 * r.top1_err, 100 * r.top5_err, r.loss, r.count / (an_now() - t0));
    }
    dataset_free(&ds);
    net_free(&net);
    return rc ? fail() : 0;
}
