/* fuzz_checkpoint.c: loading a checkpoint into a network (src/train/checkpoint.c
 * checkpoint_load_net, then checkpoint_read_state), the path of `eval`, `classify` and
 * `train --resume`. Input: one byte choosing the model (convnet4, convnet4-tanh, alexnet,
 * alexnet-owt), four bytes (little-endian, modulo 4 MiB) of zeros to append, then a safetensors
 * file. The zeros stand for the tensor data, so a seed of a few KB (the header) still makes a
 * complete 300 KB convnet4 checkpoint; the fuzzer mutates the header, not megabytes of floats. */
#include "fuzz_util.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include <stdlib.h>

#define PAD_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const models[4] = {"convnet4", "convnet4-tanh", "alexnet", "alexnet-owt"};
    if (size < 5) return 0;
    const ModelSpec *spec = model_find(models[data[0] & 3]);
    uint32_t pad = fuzz_le32(data + 1) % PAD_MAX;
    data += 5, size -= 5;
    if (!spec) abort();
    const char *path = fuzz_memfd_sized(0, data, size, size + pad);
    Net net;
    Norm norm;
    StFile st;
    if (fuzz_report("checkpoint_load_net", checkpoint_load_net(path, spec, 1, &net, &norm, &st)) == 0) {
        float *momentum = calloc(net.nparams ? net.nparams : 1, sizeof(float));
        TrainState state;
        if (!momentum) abort();
        fuzz_report("checkpoint_read_state", checkpoint_read_state(path, &st, &net, momentum, &state));
        free(momentum);
        net_free(&net);
        norm_free(&norm);
        st_free(&st);
    }
    return 0;
}
