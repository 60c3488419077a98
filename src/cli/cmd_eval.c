/* cmd_eval.c: `alexnet eval`: top-1 and top-5 error of saved weights on a test/validation split. */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../train/checkpoint.h"
#include "../train/eval.h"
#include "../util/common.h"
#include <stdio.h>
#include <stdlib.h>

static const char *HELP =
    "usage: alexnet eval --model NAME --weights FILE --data PATH [--crops 1|10] [--batch N] [--limit N]\n"
    "\n"
    "Prints the top-1 and top-5 error of the weights (a training checkpoint or weights file, e.g.\n"
    "torchvision weights converted by tools/torchvision_to_safetensors.py) on the test split of an IDX\n"
    "or CIFAR-10 folder, the val/ folder of an image folder, or the val split of a shard file.\n"
    "  --crops 1    the centre crop (default)\n"
    "  --crops 10   the paper's 10-crop test: four corners and centre of the 256x256 image and their\n"
    "               mirrors, softmax outputs averaged\n"
    "  --batch N   images per forward pass (default 100)     --limit N   N images spread evenly over the split\n"
    "  --precision fp32|bf16   bf16: matrix products with bfloat16 operands, float32 sums\n"
    "  --device cpu|cuda       cuda: on the GPU (--precision fp32, tf32 or bf16)\n";

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *weights = NULL, *data = NULL, *precision = "fp32", *device = "cpu";
    int batch = 100, limit = 0, crops = 1, help = 0;
    ArgSpec specs[] = {{"--model", ARG_STR, &model, NULL}, {"--weights", ARG_STR, &weights, NULL},
                       {"--data", ARG_STR, &data, NULL},   {"--batch", ARG_INT, &batch, NULL},
                       {"--limit", ARG_INT, &limit, NULL},  {"--crops", ARG_INT, &crops, NULL},
                       {"--precision", ARG_STR, &precision, NULL}, {"--device", ARG_STR, &device, NULL}};
    if (args_parse("eval", argc, argv, 2, specs, 8, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!model || !weights || !data) return an_error("eval: --model, --weights and --data are required"), fail();
    if (batch < 1 || limit < 0) return an_error("eval: --batch must be at least 1 and --limit not negative"), fail();
    if (crops != 1 && crops != 10) return an_error("eval: --crops must be 1 or 10"), fail();
    int gpu, gpu_math;
    if (device_select("eval", device, precision, &gpu, &gpu_math)) return fail();
    if (crops == 10 && batch < 10) batch = 10;
    const ModelSpec *spec = model_find(model);
    if (!spec) return fail();
    Net net;
    Norm norm;
    StFile file;
    if (checkpoint_load_net(weights, spec, batch, &net, &norm, &file)) return fail();
    st_free(&file);
    if (gpu ? net_to_gpu(&net, gpu_math, NULL) : net_freeze_bf16(&net)) { /* freeze: bf16 mode only */
        net_free(&net), norm_free(&norm);
        return fail();
    }
    Dataset ds;
    if (dataset_load(&ds, data, 0)) { net_free(&net); return fail(); }
    int rc = 0;
    if (ds.classes > net.classes) {
        rc = an_error("%s: the dataset has %d classes, the weights %d", data, ds.classes, net.classes);
    } else {
        int count = limit && limit < ds.n ? limit : ds.n;
        EvalResult r;
        double t0 = an_now();
        int *idx = malloc((size_t)(count ? count : 1) * sizeof(int)); /* spread over the whole split */
        for (int k = 0; idx && k < count; k++) idx[k] = (int)((long)k * ds.n / count);
        rc = idx ? evaluate(&net, &ds, idx, count, &norm, crops, 1, &r) : an_error("out of memory");
        free(idx);
        if (!rc && r.nonfinite) /* a NaN network must not be reported as accurate */
            rc = an_error("%s: the network's outputs are NaN or infinite for %ld of %ld images (are its weights "
                          "finite?); no error rate reported", weights, r.nonfinite, r.count);
        if (!rc)
            printf("%s on %s (%ld images, %s): top-1 error %.2f%%, top-5 error %.2f%%, loss %.4f (%.0f images/s)\n",
                   model, data, r.count, crops == 10 ? "10 crops" : "centre crop", 100 * r.top1_err,
                   100 * r.top5_err, r.loss, r.count / (an_now() - t0));
        if (!rc && r.skipped) fprintf(stderr, "%d image files could not be read and were skipped\n", r.skipped);
    }
    dataset_free(&ds);
    net_free(&net);
    norm_free(&norm);
    return rc ? fail() : 0;
}
