/* fuzz_idx.c: IDX files (src/data/idx.c: MNIST / Fashion-MNIST, plain or gzip). Input: a 4-byte
 * little-endian split point s, then the images file (the first s mod (rest + 1) bytes) and the
 * labels file (the rest), written as train-images-idx3-ubyte and train-labels-idx1-ubyte of a
 * private folder and loaded through dataset_load. Either may be gzip data (zlib reads both). */
#include "fuzz_util.h"
#include "../src/data/dataset.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    size_t split = fuzz_le32(data) % (size - 4 + 1);
    data += 4, size -= 4;
    fuzz_write(fuzz_path("train-images-idx3-ubyte"), data, split);
    fuzz_write(fuzz_path("train-labels-idx1-ubyte"), data + split, size - split);
    Dataset ds;
    if (fuzz_report("idx", dataset_load(&ds, fuzz_dir(), 1)) == 0) {
        /* the loaded set must be usable: the last image, at its own size and resized small */
        size_t px = (size_t)ds.h * ds.w;
        uint8_t *out = malloc(3 * (px > 256 ? px : 256));
        if (out && ds.h == ds.w) dataset_get_image(&ds, ds.n - 1, 3, ds.h, out);
        if (out && px <= 65536) dataset_get_image(&ds, ds.n - 1, 1, 16, out);
        free(out);
        if (ds.labels[ds.n - 1] < 0 || ds.labels[ds.n - 1] >= ds.classes) abort();
        dataset_free(&ds);
    }
    return 0;
}
