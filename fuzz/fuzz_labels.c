/* fuzz_labels.c: the label files. Byte 0 picks the reader, the rest is the file:
 *   even: the ground truth of a flat validation folder, PATH/val_labels.txt ("FILE CLASS" lines,
 *         or ImageNet's LOC_val_solution.csv as is; src/data/folder.c), loaded through
 *         dataset_load on a fixed folder: train/ has classes n01440764, n01443537 and "3";
 *         val/ holds five image files (two with the stem "dup").
 *   odd:  a class-name list for `alexnet classify --labels FILE` (src/cli/cmd_classify.c), run
 *         through the command itself with a 10-class convnet4 checkpoint written once, and an
 *         image that does not exist (so nothing is decoded or computed). */
#include "fuzz_util.h"
#include "../src/cli/commands.h"
#include "../src/data/dataset.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/util/common.h"
#include <stdlib.h>

int alexnet_main(int argc, char **argv); /* src/cli/main.c, built with -Dmain=alexnet_main */

static void make_tree(void) {
    static const char *const dirs[] = {"tree", "tree/train", "tree/train/n01440764", "tree/train/n01443537",
                                       "tree/train/3", "tree/val"};
    static const char *const files[] = {"tree/val/ILSVRC2012_val_00000001.JPEG", "tree/val/ILSVRC2012_val_00000002.JPEG",
                                        "tree/val/ILSVRC2012_val_00000003.png", "tree/val/dup.jpg", "tree/val/dup.png"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        if (mkdir(fuzz_path(dirs[i]), 0755) != 0) { perror(dirs[i]); exit(2); }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) fuzz_write(fuzz_path(files[i]), "x", 1);
    const ModelSpec *spec = model_find("convnet4");
    Net net;
    if (!spec || net_create(&net, spec, 3, 10, 32, 1)) { fprintf(stderr, "%s\n", an_last_error()); exit(2); }
    Norm norm = norm_imagenet(3);
    if (checkpoint_save(fuzz_path("c4.safetensors"), &net, NULL, NULL, &norm, NULL)) exit(2);
    net_free(&net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) make_tree(), ready = 1;
    if (size < 1) return 0;
    if ((data[0] & 1) == 0) {
        fuzz_write(fuzz_path("tree/val_labels.txt"), data + 1, size - 1);
        Dataset ds;
        if (fuzz_report("val_labels.txt", dataset_load(&ds, fuzz_path("tree"), 0)) == 0) {
            if (ds.n != 5) abort();
            for (int i = 0; i < ds.n; i++)
                if (ds.labels[i] < 0 || ds.labels[i] >= ds.classes) abort();
            dataset_free(&ds);
        }
        return 0;
    }
    const char *labels = fuzz_memfd(0, data + 1, size - 1);
    char weights[512], labels_arg[64];
    snprintf(weights, sizeof weights, "%s", fuzz_path("c4.safetensors"));
    snprintf(labels_arg, sizeof labels_arg, "%s", labels);
    char *argv[] = {"alexnet", "classify", "--model", "convnet4", "--weights", weights, "--labels", labels_arg,
                    "/nonexistent/alexnet-fuzz.png", NULL};
    fuzz_report("classify --labels", alexnet_main(9, argv) == 1 && strstr(an_last_error(), "alexnet-fuzz.png") ? 0 : -1);
    return 0;
}
