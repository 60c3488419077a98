/* conv_choice.c: the convolution algorithm candidates and their fallback (see conv_choice.h). */
#include "conv_choice.h"
#include "gpu_net.h"
#include "../util/common.h"
#include <stdio.h>
#include <string.h>

static int has(const ConvChoice *c, int algo, int math) {
    for (int k = 0; k < c->count; k++)
        if (c->cand[k].algo == algo && c->cand[k].math == math) return 1;
    return 0;
}

int conv_choice_init(ConvChoice *c, const ConvPerf *perf, int count, int mode, int need_det) {
    memset(c, 0, sizeof *c);
    int fp32 = mode == GPU_FP32;
    /* fp32: round 0 takes the FMA measurements, round 1 the default-math ones; else one round */
    for (int round = 0; round < (fp32 ? 2 : 1); round++)
        for (int k = 0; k < count && c->count < CONV_MAX_CANDIDATES; k++) {
            const ConvPerf *p = &perf[k];
            if (!p->ok || (need_det && !p->deterministic) || p->math == CONV_MATH_TENSOR_CONVERT) continue;
            int math = p->math;
            if (fp32) {
                if (p->transform || p->math != (round == 0 ? CONV_MATH_FMA : CONV_MATH_DEFAULT)) continue;
                math = CONV_MATH_FMA;
            } else if (math != CONV_MATH_DEFAULT && math != CONV_MATH_TENSOR && math != CONV_MATH_FMA) {
                continue; /* a math type this code does not know */
            }
            if (has(c, p->algo, math)) continue;
            c->cand[c->count++] = (ConvCandidate){.algo = p->algo, .math = math, .memory = p->memory};
        }
    return c->count;
}

void conv_choice_prepend(ConvChoice *c, int algo, int math) {
    int keep = c->count < CONV_MAX_CANDIDATES ? c->count : CONV_MAX_CANDIDATES - 1;
    memmove(&c->cand[1], &c->cand[0], (size_t)keep * sizeof c->cand[0]);
    c->cand[0] = (ConvCandidate){.algo = algo, .math = math, .memory = 0};
    c->count = keep + 1;
    c->cached = c->next_slot = 0;
}

int conv_choice_cached(const ConvChoice *c, int n) {
    for (int k = 0; k < c->cached; k++)
        if (c->size[k] == n) return c->pick[k];
    return -1;
}

static void remember(ConvChoice *c, int n, int pick) {
    for (int k = 0; k < c->cached; k++)
        if (c->size[k] == n) {
            c->pick[k] = pick;
            return;
        }
    int slot;
    if (c->cached < CONV_CACHED_SIZES) {
        slot = c->cached++;
    } else { /* all in use: replace the oldest entry */
        slot = c->next_slot;
        c->next_slot = (c->next_slot + 1) % CONV_CACHED_SIZES;
    }
    c->size[slot] = n;
    c->pick[slot] = pick;
}

int conv_choice_run(ConvChoice *c, int n, ConvTryFn try_fn, void *ctx, const char *what, int layer) {
    if (c->count == 0) return an_error("cuDNN: layer %d: no usable %s algorithm", layer, what);
    int start = conv_choice_cached(c, n);
    if (start < 0) start = 0;
    char first[256] = "";
    for (int k = start; k < c->count; k++) {
        int r = try_fn(ctx, &c->cand[k]);
        if (r == CONV_TRY_DONE) {
            remember(c, n, k);
            return k;
        }
        if (r != CONV_TRY_REFUSED) return -1;
        if (!first[0]) snprintf(first, sizeof first, "%s", an_last_error());
    }
    return an_error("cuDNN: layer %d: every %s algorithm was refused at batch %d (%d tried; the first: %s)", layer,
                    what, n, c->count - start, first[0] ? first : "no reason given");
}
