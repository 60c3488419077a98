/* fuzz_safetensors.c: the safetensors reader (src/train/safetensors.c: header length, the JSON
 * header, dtypes, shapes, data offsets, metadata). The input is the whole file. What st_read
 * accepts must be consistent: every tensor's bytes inside the file and matching its shape, and
 * st_write must be able to write it back and read it again. */
#include "fuzz_util.h"
#include "../src/train/safetensors.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd(0, data, size);
    StFile f;
    if (fuzz_report("st_read", st_read(path, &f)) != 0) return 0;
    volatile uint8_t sum = 0;
    for (int i = 0; i < f.n; i++) {
        const StTensor *t = &f.tensors[i];
        size_t want = st_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++) want *= (size_t)t->shape[d];
        if (want != t->nbytes || st_find(&f, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (t->nbytes && (p < f.buffer || p + t->nbytes > f.buffer + f.size)) abort();
        if (t->nbytes) sum ^= p[0] ^ p[t->nbytes - 1];
    }
    for (int i = 0; i < f.n_meta; i++)
        if (st_meta(&f, f.meta_keys[i]) != f.meta_values[i]) abort();
    /* write it back (small files only) and read the copy */
    if (size < (1u << 20)) {
        const char **kv = calloc((size_t)2 * f.n_meta + 1, sizeof *kv);
        for (int i = 0; kv && i < f.n_meta; i++) kv[2 * i] = f.meta_keys[i], kv[2 * i + 1] = f.meta_values[i];
        const char *out = fuzz_path("copy.safetensors");
        if (kv && st_write(out, f.tensors, f.n, kv) == 0) {
            StFile g;
            if (st_read(out, &g) != 0 || g.n != f.n || g.n_meta != f.n_meta) abort();
            st_free(&g);
        }
        free(kv);
    }
    (void)sum;
    st_free(&f);
    return 0;
}
