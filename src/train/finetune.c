/* finetune.c: --init, --reset and --freeze of finetune.h. */
#include "finetune.h"
#include "../util/common.h"
#include "safetensors.h"
#include <stdio.h>
#include <string.h>

int finetune_layers(const Net *net, const char *list, const char *flag, unsigned char *mask) {
    memset(mask, 0, MAX_LAYERS);
    if (!list || !*list) return 0;
    char names[512] = "";
    for (int i = 0; i < net->nlayers; i++) /* for the error message */
        if (net->layers[i].w_size && strlen(names) + strlen(net->layers[i].spec->name) + 3 < sizeof names)
            strcat(strcat(names, names[0] ? ", " : ""), net->layers[i].spec->name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < net->nlayers; i++) {
            const char *name = net->layers[i].spec->name;
            if (net->layers[i].w_size && name && strlen(name) == len && !strncmp(name, p, len)) mask[i] = 1, found = 1;
        }
        if (!found)
            return an_error("train: %s: no layer '%.*s' with weights in model %s (its layers: %s)", flag, (int)len, p,
                            net->spec.name, names);
        p += len + (p[len] == ',');
    }
    return 0;
}

int finetune_init(Net *net, const char *path, const unsigned char *reset) {
    StFile f;
    if (st_read(path, &f)) return -1;
    int rc = 0, copied = 0;
    for (int t = 0; t < net_num_tensors(net) && !rc; t++) {
        char name[96];
        int ndim;
        int64_t shape[4];
        size_t count;
        float *dst = net_tensor(net, t, 0, name, &ndim, shape, &count);
        int layer = -1;
        for (int i = 0, k = 0; i < net->nlayers; i++)
            if (net->layers[i].w_size && k++ == t / 2) layer = i;
        if (layer >= 0 && reset[layer]) continue; /* starts afresh */
        const StTensor *src = NULL;
        for (int j = 0; j < f.n; j++)
            if (!strcmp(f.tensors[j].name, name)) src = &f.tensors[j];
        const char *lname = net->layers[layer].spec->name;
        if (!src) {
            rc = an_error("%s: no tensor %s (to start layer %s afresh: --reset %s)", path, name, lname, lname);
            break;
        }
        int same = src->dtype == ST_F32 && src->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = src->shape[d] == shape[d];
        if (!same) {
            char have[64] = "", want[64] = "";
            for (int d = 0; d < src->ndim && d < 4; d++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? "x" : "", (long long)src->shape[d]);
            for (int d = 0; d < ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "", (long long)shape[d]);
            rc = an_error("%s: %s is %s%s, the network's is %s (another class count or input? --reset %s starts it "
                          "afresh)", path, name, have, src->dtype == ST_F32 ? "" : " (not float32)", want, lname);
            break;
        }
        memcpy(dst, src->data, count * sizeof(float));
        copied++;
    }
    st_free(&f);
    if (!rc && !copied) rc = an_error("%s: no tensor taken (every layer reset)", path);
    return rc;
}
