/* fuzz_cifar10.c: CIFAR-10 binary files (src/data/cifar10.c). The input is test_batch.bin of a
 * private folder, loaded through dataset_load (test split). */
#include "fuzz_util.h"
#include "../src/data/dataset.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write(fuzz_path("test_batch.bin"), data, size);
    Dataset ds;
    if (fuzz_report("cifar10", dataset_load(&ds, fuzz_dir(), 0)) == 0) {
        uint8_t out[3 * 32 * 32];
        dataset_get_image(&ds, ds.n - 1, 3, 32, out);
        for (int i = 0; i < ds.n; i++)
            if (ds.labels[i] < 0 || ds.labels[i] >= ds.classes) abort();
        dataset_free(&ds);
    }
    return 0;
}
