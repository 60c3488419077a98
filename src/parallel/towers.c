/* towers.c: the two-tower split of towers.h: the tower specs, the gather layers' exchanges
 * (all-gather forward, reduce-scatter backward, through parallel.h) and the weights' mapping to
 * and from the whole network's tensors. */
#include "towers.h"
#include "parallel.h"
#include "../util/common.h"
#include <stdlib.h>
#include <string.h>

enum { TOWERS = 2 };

struct Towers {
    int tower;
    float *pack, *unpack; /* (max_batch, largest gathered tensor) each */
    size_t pack_floats;
};

/* Tower t's share of `whole` channels or units: [lo, lo + count) */
static int share_lo(int whole, int t) { return whole * t / TOWERS; }
static int share(int whole, int t) { return share_lo(whole, t + 1) - share_lo(whole, t); }

int towers_spec(const Net *full, int tower, ModelSpec *out) {
    const ModelSpec *fs = &full->spec;
    *out = *fs;
    out->owns_names = 0; /* a copy: the names stay the original's */
    out->nlayers = 0;
    int split = 0; /* whether the current activation is divided between the towers */
#define ADD(spec_value)                                                                            \
    do {                                                                                           \
        if (out->nlayers == MAX_LAYERS) return an_error("model %s: too many layers for the towers", fs->name); \
        out->layers[out->nlayers++] = (spec_value);                                                \
    } while (0)
    for (int i = 0; i < full->nlayers; i++) {
        const Layer *l = &full->layers[i];
        LayerSpec s = *l->spec;
        switch (s.kind) {
        case LAYER_CONV:
        case LAYER_LINEAR:
            if (s.kind == LAYER_CONV && s.groups == TOWERS && !split)
                return an_error("model %s: %s: groups on an input the towers share (--parallel towers needs the "
                                "towers split before)", fs->name, s.name);
            if (s.kind == LAYER_CONV && s.groups != 1 && s.groups != TOWERS)
                return an_error("model %s: %s: %d groups (--parallel towers splits layers in 2)", fs->name, s.name,
                                s.groups);
            if (l->out_c % TOWERS && s.kind == LAYER_CONV)
                return an_error("model %s: %s: %d kernels do not split into 2 towers", fs->name, s.name, l->out_c);
            if (split && (s.kind == LAYER_LINEAR || s.groups == 1)) /* this layer reads both towers */
                ADD(((LayerSpec){.kind = LAYER_GATHER, .out = l->in_c}));
            s.out = share(l->out_c, tower);
            s.groups = 1;
            split = 1;
            break;
        case LAYER_LRN:
            if (split && s.groups != TOWERS)
                return an_error("model %s: layer %d: LRN across the towers' maps (--parallel towers needs LRN per "
                                "tower)", fs->name, i + 1);
            if (split) s.groups = 1;
            break;
        case LAYER_DROPOUT:
            if (split) { /* this tower's columns of the whole batch's rows */
                long plane = (long)l->in_h * l->in_w;
                s.col0 = share_lo(l->in_c, tower) * plane;
                s.row_stride = (long)l->in_c * plane;
            }
            s.rng_layer = i + 1;
            break;
        case LAYER_GATHER: return an_error("model %s: already split", fs->name);
        default: break;
        }
        ADD(s);
    }
    if (split) ADD(((LayerSpec){.kind = LAYER_GATHER, .out = full->layers[full->nlayers - 1].out_c, .replicated = 1}));
#undef ADD
    return 0;
}

/* ---- the exchanges (Net.gather / Net.scatter) ---- */

/* channels of every tower at a gather layer: counts[r] = n x share x plane */
static void counts_of(const Layer *l, int n, int *counts) {
    for (int r = 0; r < TOWERS; r++) counts[r] = n * share(l->out_c, r) * l->in_h * l->in_w;
}

/* x (n, own channels, plane) of every tower -> y (n, all channels, plane) */
static int gather(void *comm, const Layer *l, int n, const float *x, float *y) {
    Towers *t = comm;
    int counts[TOWERS];
    counts_of(l, n, counts);
    if (par_allgatherv_floats(x, t->unpack, counts)) return -1;
    size_t plane = (size_t)l->in_h * l->in_w, whole = (size_t)l->out_c * plane;
    const float *block = t->unpack;
    for (int r = 0; r < TOWERS; r++) { /* rank blocks (n, share, plane) into each image's channels */
        size_t own = (size_t)share(l->out_c, r) * plane, at = (size_t)share_lo(l->out_c, r) * plane;
        for (int i = 0; i < n; i++) memcpy(y + i * whole + at, block + i * own, own * sizeof(float));
        block += (size_t)n * own;
    }
    return 0;
}

/* dy (n, all channels, plane): this tower's channels of dy summed over the towers (each computed
 * its part of the gradient of the layer after), or just taken (replicated: the loss) -> dx */
static int scatter(void *comm, const Layer *l, int n, const float *dy, float *dx) {
    Towers *t = comm;
    size_t plane = (size_t)l->in_h * l->in_w, whole = (size_t)l->out_c * plane;
    if (l->spec->replicated) {
        size_t own = (size_t)share(l->out_c, t->tower) * plane, at = (size_t)share_lo(l->out_c, t->tower) * plane;
        for (int i = 0; i < n; i++) memcpy(dx + i * own, dy + i * whole + at, own * sizeof(float));
        return 0;
    }
    int counts[TOWERS];
    counts_of(l, n, counts);
    float *block = t->pack;
    for (int r = 0; r < TOWERS; r++) {
        size_t own = (size_t)share(l->out_c, r) * plane, at = (size_t)share_lo(l->out_c, r) * plane;
        for (int i = 0; i < n; i++) memcpy(block + i * own, dy + i * whole + at, own * sizeof(float));
        block += (size_t)n * own;
    }
    return par_reduce_scatter_floats(t->pack, dx, counts);
}

int towers_attach(Net *net, const Net *full, int tower, Towers **out) {
    (void)full;
    Towers *t = calloc(1, sizeof *t);
    if (!t) return an_error("out of memory");
    t->tower = tower;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        size_t whole = (size_t)net->max_batch * l->out_c * l->out_h * l->out_w;
        if (l->spec->kind == LAYER_GATHER && whole > t->pack_floats) t->pack_floats = whole;
    }
    t->pack = an_alloc(t->pack_floats * sizeof(float), "tower exchange buffer");
    t->unpack = an_alloc(t->pack_floats * sizeof(float), "tower exchange buffer");
    if (!t->pack || !t->unpack) { towers_free(t); return -1; }
    net->comm = t, net->gather = gather, net->scatter = scatter;
    *out = t;
    return 0;
}

void towers_free(Towers *t) {
    if (!t) return;
    an_free(t->pack), an_free(t->unpack);
    free(t);
}

/* ---- weights: a tower's tensors are row blocks of the whole network's ---- */

/* The k-th layer with parameters of a net, or NULL */
static const Layer *param_layer(const Net *net, int k) {
    for (int i = 0; i < net->nlayers; i++)
        if (net->layers[i].w_size && k-- == 0) return &net->layers[i];
    return NULL;
}

void towers_from_full(const Net *net, const Net *full, int tower, float *momentum, const float *full_momentum) {
    const Layer *tl, *fl;
    for (int k = 0; (tl = param_layer(net, k)) && (fl = param_layer(full, k)); k++) {
        size_t row0 = (size_t)share_lo(fl->out_c, tower);
        memcpy(net->params + tl->w_off, full->params + fl->w_off + row0 * fl->fan_in, tl->w_size * sizeof(float));
        memcpy(net->params + tl->b_off, full->params + fl->b_off + row0, tl->b_size * sizeof(float));
        if (momentum && full_momentum) {
            memcpy(momentum + tl->w_off, full_momentum + fl->w_off + row0 * fl->fan_in, tl->w_size * sizeof(float));
            memcpy(momentum + tl->b_off, full_momentum + fl->b_off + row0, tl->b_size * sizeof(float));
        }
    }
}

int towers_to_full(const Net *net, Net *full, int tower, const float *momentum, float *full_momentum) {
    (void)tower;
    const Layer *tl, *fl;
    for (int k = 0; (tl = param_layer(net, k)) && (fl = param_layer(full, k)); k++) {
        int wc[TOWERS], bc[TOWERS];
        for (int r = 0; r < TOWERS; r++) wc[r] = share(fl->out_c, r) * fl->fan_in, bc[r] = share(fl->out_c, r);
        if (par_gatherv_floats(net->params + tl->w_off, (int)tl->w_size, full->params + fl->w_off, wc, 0) ||
            par_gatherv_floats(net->params + tl->b_off, (int)tl->b_size, full->params + fl->b_off, bc, 0))
            return -1;
        if (momentum && full_momentum &&
            (par_gatherv_floats(momentum + tl->w_off, (int)tl->w_size, full_momentum + fl->w_off, wc, 0) ||
             par_gatherv_floats(momentum + tl->b_off, (int)tl->b_size, full_momentum + fl->b_off, bc, 0)))
            return -1;
    }
    return 0;
}
