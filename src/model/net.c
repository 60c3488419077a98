/* net.c: builds a network from a ModelSpec and runs it: shapes, the parameter block, buffers,
 * initialisation, forward, loss, backward, named tensors, the layer table. */
#include "model.h"
#include "../cpu/gemm.h"
#include "../cuda/gpu_net.h"
#include "../train/sgd.h"
#include "../util/common.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(LayerKind k) {
    static const char *names[] = {"conv", "relu", "tanh", "lrn", "maxpool", "avgpool", "dropout", "linear", "gather"};
    return names[k];
}


/* Shapes, parameter offsets and FLOPs for every layer. */
static int plan(Net *net) {
    int c = net->in_c, h = net->in_size, w = net->in_size;
    size_t off = 0;
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layers[i];
        const LayerSpec *s = l->spec = &net->spec.layers[i];
        l->in_c = c, l->in_h = h, l->in_w = w;
        l->out_c = c, l->out_h = h, l->out_w = w;
        switch (s->kind) {
        case LAYER_CONV:
            if (c % s->groups || s->out % s->groups)
                return an_error("model %s: %s: %d input channels do not split into %d groups",
                                net->spec.name, s->name, c, s->groups);
            l->out_c = s->out;
            l->out_h = (h + 2 * s->pad - s->k) / s->stride + 1;
            l->out_w = (w + 2 * s->pad - s->k) / s->stride + 1;
            if (h + 2 * s->pad < s->k) l->out_h = 0;
            l->fan_in = c / s->groups * s->k * s->k;
            l->w_size = (size_t)s->out * l->fan_in, l->b_size = s->out;
            l->flops = 2.0 * l->w_size * l->out_h * l->out_w;
            break;
        case LAYER_MAXPOOL:
            l->out_h = h < s->k ? 0 : (h - s->k) / s->stride + 1;
            l->out_w = w < s->k ? 0 : (w - s->k) / s->stride + 1;
            break;
        case LAYER_AVGPOOL: l->out_h = l->out_w = s->out; break;
        case LAYER_GATHER: l->out_c = s->out; break;
        case LAYER_LRN:
            if (s->groups > 1 && c % s->groups)
                return an_error("model %s: layer %d (lrn): %d channels do not split into %d groups", net->spec.name,
                                i + 1, c, s->groups);
            break;
        case LAYER_LINEAR:
            l->fan_in = c * h * w;
            l->out_c = s->out ? s->out : net->classes, l->out_h = l->out_w = 1;
            l->w_size = (size_t)l->out_c * l->fan_in, l->b_size = l->out_c;
            l->flops = 2.0 * l->w_size;
            break;
        default: break;
        }
        if (l->out_h <= 0 || l->out_w <= 0)
            return an_error("model %s: input %dx%d is too small: layer %d (%s) gets %dx%d", net->spec.name,
                            net->in_size, net->in_size, i + 1, kind_name(s->kind), h, w);
        l->w_off = off, off += l->w_size;
        l->b_off = off, off += l->b_size;
        c = l->out_c, h = l->out_h, w = l->out_w;
    }
    net->nparams = off;
    return 0;
}

int net_create(Net *net, const ModelSpec *spec, int in_c, int classes, int in_size, int max_batch) {
    memset(net, 0, sizeof *net);
    net->spec = *spec;
    net->spec.owns_names = 0; /* a copy: the names stay the original's */
    net->nlayers = spec->nlayers;
    net->in_c = in_c, net->classes = classes, net->max_batch = max_batch;
    net->in_size = spec->in_size ? spec->in_size : in_size;
    /* the bounds keep every size below in range of an int (channels x k x k, classes x 4096, ...) */
    if (in_c < 1 || in_c > 4096 || classes < 2 || classes > (1 << 24) || net->in_size < 1 || net->in_size > 4096 ||
        max_batch < 1 || max_batch > 65536)
        return an_error("model %s: bad configuration (%d channels, %d classes, input %d, batch %d; the limits: "
                        "1-4096 channels, 2-16777216 classes, input 1-4096, batch 1-65536)",
                        spec->name, in_c, classes, net->in_size, max_batch);
    if (plan(net)) return -1;
    size_t largest = (size_t)in_c * net->in_size * net->in_size;
    net->params = an_alloc(net->nparams * sizeof(float), "parameters");
    net->grads = an_alloc(net->nparams * sizeof(float), "gradients");
    net->input = an_alloc((size_t)max_batch * largest * sizeof(float), "input batch");
    net->probs = an_alloc((size_t)max_batch * classes * sizeof(float), "probabilities");
    net->dlogits = an_alloc((size_t)max_batch * classes * sizeof(float), "logit gradients");
    if (!net->params || !net->grads || !net->input || !net->probs || !net->dlogits) goto fail;
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layers[i];
        LayerKind prev = i ? net->layers[i - 1].spec->kind : LAYER_RELU;
        LayerKind next = i + 1 < net->nlayers ? net->layers[i + 1].spec->kind : LAYER_RELU;
        l->relu_in_conv = (l->spec->kind == LAYER_RELU && prev == LAYER_CONV && i > 0) ||
                          (l->spec->kind == LAYER_CONV && next == LAYER_RELU && i + 1 < net->nlayers);
        l->relu_in_lrn = (l->spec->kind == LAYER_RELU && next == LAYER_LRN && i + 1 < net->nlayers) ||
                         (l->spec->kind == LAYER_LRN && prev == LAYER_RELU && i > 0);
        l->relu_in_pool = (l->spec->kind == LAYER_RELU && next == LAYER_MAXPOOL && i + 1 < net->nlayers) ||
                          (l->spec->kind == LAYER_MAXPOOL && prev == LAYER_RELU && i > 0);
        size_t count = (size_t)max_batch * layer_out_count(l);
        if (layer_out_count(l) > largest) largest = layer_out_count(l);
        if (l->spec->kind == LAYER_RELU && l->relu_in_conv) l->out = net->layers[i - 1].out; /* shared */
        else if (!(l->out = an_alloc(count * sizeof(float), "activations"))) goto fail;
        size_t aux = l->spec->kind == LAYER_LRN       ? count * sizeof(float)
                     : l->spec->kind == LAYER_MAXPOOL ? count * sizeof(int32_t)
                     : l->spec->kind == LAYER_DROPOUT ? count
                                                      : 0;
        if (aux && !(l->aux = an_alloc(aux, "layer state"))) goto fail;
    }
    net->act_floats = largest;
    for (int k = 0; k < 2; k++)
        if (!(net->dbuf[k] = an_alloc((size_t)max_batch * largest * sizeof(float), "activation gradients")))
            goto fail;
    return 0;
fail:
    net_free(net);
    return -1;
}

int net_set_class_names(Net *net, char *const *names) {
    if (net->class_names)
        for (int j = 0; j < net->classes; j++) free(net->class_names[j]);
    free(net->class_names);
    net->class_names = NULL;
    if (!names) return 0;
    char **v = calloc((size_t)net->classes, sizeof *v);
    if (!v) return an_error("out of memory (class names)");
    for (int j = 0; j < net->classes; j++)
        if (!(v[j] = strdup(names[j] ? names[j] : ""))) {
            for (int i = 0; i < j; i++) free(v[i]);
            free(v);
            return an_error("out of memory (class names)");
        }
    net->class_names = v;
    return 0;
}

void net_free(Net *net) {
    net_set_class_names(net, NULL);
    gpu_net_free(net->gpu);
    an_free(net->params), an_free(net->grads), an_free(net->input);
    an_free(net->probs), an_free(net->dlogits);
    an_free(net->dbuf[0]), an_free(net->dbuf[1]), an_free(net->frozen_bf16), an_free(net->chunk_grads);
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layers[i];
        if (!(l->spec && l->spec->kind == LAYER_RELU && l->relu_in_conv)) an_free(l->out);
        an_free(l->aux);
    }
    memset(net, 0, sizeof *net);
}

void net_init(Net *net, uint64_t seed) {
    an_free(net->frozen_bf16);
    net->frozen_bf16 = NULL;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        if (!l->w_size) continue;
        float std = l->spec->w_std > 0.0f ? l->spec->w_std : sqrtf(2.0f / l->fan_in);
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < l->w_size; j++)
            net->params[l->w_off + j] = std * an_normal(seed, l->w_off + j);
        for (size_t j = 0; j < l->b_size; j++) net->params[l->b_off + j] = l->spec->b_init;
    }
}

ConvShape net_conv_shape(const Layer *l, int n) {
    ConvShape s = {.n = n, .c = l->in_c, .h = l->in_h, .w = l->in_w, .out_c = l->out_c,
                   .k = l->spec->k, .stride = l->spec->stride, .pad = l->spec->pad,
                   .groups = l->spec->groups};
    conv_shape_init(&s);
    return s;
}

int net_layer_forward(Net *net, int i, int i0, int n, const float *x, int train, uint64_t dropout_seed) {
    Layer *l = &net->layers[i];
    const LayerSpec *s = l->spec;
    const float *w = net->params + l->w_off, *b = net->params + l->b_off;
    long in_count = (long)n * l->in_c * l->in_h * l->in_w;
    size_t off = (size_t)i0 * layer_out_count(l); /* rows i0.. of the output and of the layer's state */
    float *out = l->out + off;
    switch (s->kind) {
    case LAYER_CONV: {
        ConvShape cs = net_conv_shape(l, n);
        cs.relu = l->relu_in_conv;
        return conv_forward(&cs, x, w, b, out);
    }
    case LAYER_LINEAR:
        if (net->frozen_bf16 && gemm_bf16() && n <= LINEAR_BF16W_MAX_N &&
            !linear_forward_bf16w(n, l->fan_in, l->out_c, x, net->frozen_bf16 + l->w_off, b, out))
            break;
        linear_forward(n, l->fan_in, l->out_c, x, w, b, out);
        break;
    case LAYER_RELU:
        if (!l->relu_in_conv) relu_forward(in_count, x, out); /* else done, in place */
        break;
    case LAYER_TANH: tanh_forward(in_count, x, out); break;
    case LAYER_LRN: lrn_forward(n, l->in_c, l->in_h * l->in_w, layer_lrn(s), x, out, (float *)l->aux + off); break;
    case LAYER_MAXPOOL:
        maxpool_forward(n, l->in_c, l->in_h, l->in_w, s->k, s->stride, x, out, (int32_t *)l->aux + off);
        break;
    case LAYER_AVGPOOL: avgpool_forward(n, l->in_c, l->in_h, l->in_w, l->out_h, l->out_w, x, out); break;
    case LAYER_DROPOUT:
        if (train && s->p > 0.0f) {
            DropoutAt at = net_dropout_at(net, l);
            at.first += (uint64_t)i0 * (uint64_t)at.row_stride;
            dropout_forward_at(in_count, s->p, net_dropout_seed(net, i, dropout_seed), at, x, out, (uint8_t *)l->aux + off);
        } else {
            memcpy(out, x, in_count * sizeof(float));
        }
        break;
    case LAYER_GATHER:
        if (!net->gather || net->gather(net->comm, l, n, x, out)) return -1;
        break;
    }
    return 0;
}

const float *net_forward(Net *net, int n, int train, uint64_t dropout_seed) {
    if (n < 1 || n > net->max_batch) {
        an_error("batch of %d does not fit the network's buffers (1..%d)", n, net->max_batch);
        return NULL;
    }
    net->batch = n;
    net->train = train;
    if (net->gpu) { /* the logits stay on the GPU: net_loss brings the probabilities */
        int sent = net->gpu_input_sent;
        net->gpu_input_sent = 0;
        return (!sent && gpu_net_put_input(net->gpu, n)) || gpu_net_forward(net->gpu, n, train, dropout_seed, 0)
                   ? NULL : net->layers[net->nlayers - 1].out;
    }
    const float *x = net->input;
    for (int i = 0; i < net->nlayers; i++) {
        Layer *l = &net->layers[i];
        double t0 = an_now();
        if (net_layer_forward(net, i, 0, n, x, train, dropout_seed)) return NULL;
        l->fwd_seconds += an_now() - t0;
        x = l->out;
    }
    return x;
}

int net_loss(Net *net, const int *labels, float *loss) {
    if (net->gpu)
        return gpu_net_loss(net->gpu, labels, labels ? loss : NULL) || gpu_net_get_probs(net->gpu) ? -1 : 0;
    const float *logits = net->layers[net->nlayers - 1].out;
    float l = softmax_xent(net->batch, net->classes, logits, labels, net->probs, labels ? net->dlogits : NULL);
    if (loss) *loss = l;
    return 0;
}

int net_layer_backward(Net *net, int i, int i0, int n, const float *dy, float *dx, float *g) {
    Layer *l = &net->layers[i];
    const LayerSpec *s = l->spec;
    size_t in_img = (size_t)l->in_c * l->in_h * l->in_w, off = (size_t)i0 * layer_out_count(l);
    const float *x = (i ? net->layers[i - 1].out : net->input) + (size_t)i0 * in_img;
    const float *w = net->params + l->w_off;
    float *dw = g + l->w_off, *db = g + l->b_off;
    long in_count = (long)n * (long)in_img;
    if (!dx && s->kind != LAYER_CONV && s->kind != LAYER_LINEAR) return 2; /* nothing to learn below */
    if (s->kind == LAYER_RELU && (l->relu_in_lrn || l->relu_in_pool)) return 1; /* the layer above did it */
    switch (s->kind) {
    case LAYER_CONV: {
        ConvShape cs = net_conv_shape(l, n);
        if (conv_backward(&cs, x, w, dy, dx, dw, db)) return -1;
        break;
    }
    case LAYER_LINEAR: linear_backward(n, l->fan_in, l->out_c, x, w, dy, dx, dw, db); break;
    case LAYER_GATHER:
        if (!net->scatter || net->scatter(net->comm, l, n, dy, dx)) return -1;
        break;
    case LAYER_RELU: relu_backward(in_count, l->out + off, dy, dx); break;
    case LAYER_TANH: tanh_backward(in_count, l->out + off, dy, dx); break;
    case LAYER_LRN:
        if (lrn_backward(n, l->in_c, l->in_h * l->in_w, layer_lrn(s), x, l->out + off, (float *)l->aux + off, dy, dx,
                         l->relu_in_lrn))
            return -1;
        break;
    case LAYER_MAXPOOL:
        maxpool_backward(n, l->in_c, l->in_h, l->in_w, s->k, s->stride, (int32_t *)l->aux + off, dy, dx,
                         l->relu_in_pool ? l->out + off : NULL);
        break;
    case LAYER_AVGPOOL: avgpool_backward(n, l->in_c, l->in_h, l->in_w, l->out_h, l->out_w, dy, dx); break;
    case LAYER_DROPOUT:
        if (net->train && s->p > 0.0f) dropout_backward(in_count, s->p, (uint8_t *)l->aux + off, dy, dx);
        else memcpy(dx, dy, in_count * sizeof(float));
        break;
    }
    return 0;
}

int net_backward(Net *net) {
    if (net->gpu) return gpu_net_backward(net->gpu, 0);
    const float *dy = net->dlogits;
    int which = 0;
    for (int i = net->nlayers - 1; i >= 0; i--) {
        Layer *l = &net->layers[i];
        float *dx = i ? net->dbuf[which] : NULL;
        double t0 = an_now();
        int rc = net_layer_backward(net, i, 0, net->batch, dy, dx, net->grads);
        if (rc < 0) return -1;
        if (rc == 2) break;
        if (rc == 1) continue;
        l->bwd_seconds += an_now() - t0;
        if (net->grads_ready && l->w_size) net->grads_ready(net->comm, l->w_off, l->w_size + l->b_size);
        dy = dx;
        which ^= 1;
    }
    return 0;
}

DropoutAt net_dropout_at(const Net *net, const Layer *l) {
    const LayerSpec *s = l->spec;
    long row_len = (long)l->in_c * l->in_h * l->in_w, stride = s->row_stride ? s->row_stride : row_len;
    return (DropoutAt){(uint64_t)net->row0 * (uint64_t)stride + (uint64_t)s->col0, row_len, stride};
}

uint64_t net_dropout_seed(const Net *net, int i, uint64_t dropout_seed) {
    int rl = net->layers[i].spec->rng_layer;
    return an_hash64(dropout_seed, (uint64_t)(rl ? rl - 1 : i));
}

int net_set_input(Net *net, const float *x, int n) {
    if (n < 1 || n > net->max_batch)
        return an_error("batch of %d does not fit the network's buffers (1..%d)", n, net->max_batch);
    if (!net->gpu) {
        memcpy(net->input, x, (size_t)n * net->in_c * net->in_size * net->in_size * sizeof(float));
        return 0;
    }
    if (gpu_net_upload(net->gpu, x, n)) return -1;
    net->gpu_input_sent = 1;
    return 0;
}

int net_freeze_bf16(Net *net) {
    if (!gemm_bf16() || net->gpu || net->max_batch > LINEAR_BF16W_MAX_N) return 0; /* never used */
    if (!net->frozen_bf16 && !(net->frozen_bf16 = an_alloc(net->nparams * sizeof(uint16_t), "bfloat16 weights")))
        return -1;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        if (l->spec->kind == LAYER_LINEAR)
            linear_weights_to_bf16(l->w_size, net->params + l->w_off, net->frozen_bf16 + l->w_off);
    }
    return 0;
}

static void net_thaw(Net *net) {
    an_free(net->frozen_bf16);
    net->frozen_bf16 = NULL;
}

int net_sgd(Net *net, float *momentum, float lr, float momentum_coef, float weight_decay) {
    return net_sgd_scaled(net, momentum, lr, momentum_coef, weight_decay, NULL);
}

int net_sgd_scaled(Net *net, float *momentum, float lr, float momentum_coef, float weight_decay,
                   const float *weight_lr_scale) {
    net_thaw(net); /* the weights change */
    int any_frozen = 0;
    for (int i = 0; i < net->nlayers; i++) any_frozen |= net->frozen[i];
    if (net->gpu) {
        if (weight_lr_scale || any_frozen) return an_error("per-layer learning rates (LARS, --freeze) run on the CPU only");
        return gpu_net_sgd(net->gpu, lr, momentum_coef, weight_decay);
    }
    float blr = net->spec.bias_lr_mult, bwd = net->spec.bias_decay_mult;
    if (blr == 0.0f && bwd == 0.0f) blr = bwd = 1.0f; /* a spec made by hand: one rule for all */
    long bad = 0;
    if (blr == 1.0f && bwd == 1.0f && !weight_lr_scale && !any_frozen) {
        bad = sgd_update(net->nparams, net->params, net->grads, momentum, lr, momentum_coef, weight_decay);
    } else {
        for (int i = 0; i < net->nlayers; i++) { /* weights and biases with their own rates */
            const Layer *l = &net->layers[i];
            if (net->frozen[i]) continue;
            if (l->w_size)
                bad += sgd_update(l->w_size, net->params + l->w_off, net->grads + l->w_off, momentum + l->w_off,
                                  weight_lr_scale ? lr * weight_lr_scale[i] : lr, momentum_coef, weight_decay);
            if (l->b_size)
                bad += sgd_update(l->b_size, net->params + l->b_off, net->grads + l->b_off, momentum + l->b_off,
                                  lr * blr, momentum_coef, weight_decay * bwd);
        }
    }
    if (bad) return an_error("%ld of %zu weights are NaN or infinite after the update", bad, net->nparams);
    return 0;
}

long net_nonfinite_params(const Net *net) {
    long bad = 0;
    const float *p = net->params;
#pragma omp parallel for simd schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < net->nparams; i++) bad += p[i] - p[i] != 0.0f;
    return bad;
}

int net_to_gpu(Net *net, int math, const float *momentum) {
    if (net->gpu) return 0;
    struct GpuNet *g = gpu_net_create(net, (GpuMath)math);
    if (!g) return -1;
    if (gpu_net_put_momentum(g, momentum)) { gpu_net_free(g); return -1; }
    net->gpu = g;
    return 0;
}

int net_from_gpu(Net *net, float *momentum) {
    if (!net->gpu) return 0;
    return gpu_net_get_params(net->gpu) || (momentum && gpu_net_get_momentum(net->gpu, momentum)) ? -1 : 0;
}

int net_num_tensors(const Net *net) {
    int t = 0;
    for (int i = 0; i < net->nlayers; i++) t += net->layers[i].w_size ? 2 : 0;
    return t;
}

float *net_tensor(const Net *net, int t, int grad, char *name, int *ndim, int64_t shape[4], size_t *count) {
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        if (!l->w_size) continue;
        if (t > 1) { t -= 2; continue; }
        float *base = grad ? net->grads : net->params;
        if (t == 1) {
            snprintf(name, 96, "%s.bias", l->spec->name);
            *ndim = 1, shape[0] = l->b_size, *count = l->b_size;
            return base + l->b_off;
        }
        snprintf(name, 96, "%s.weight", l->spec->name);
        if (l->spec->kind == LAYER_CONV) {
            *ndim = 4;
            shape[0] = l->out_c, shape[1] = l->in_c / l->spec->groups, shape[2] = shape[3] = l->spec->k;
        } else {
            *ndim = 2, shape[0] = l->out_c, shape[1] = l->fan_in;
        }
        *count = l->w_size;
        return base + l->w_off;
    }
    return NULL;
}

double net_flops(const Net *net) {
    double f = 0.0;
    for (int i = 0; i < net->nlayers; i++) f += net->layers[i].flops;
    return f;
}

static void describe(const Layer *l, char *buf, size_t size) {
    const LayerSpec *s = l->spec;
    switch (s->kind) {
    case LAYER_CONV:
        snprintf(buf, size, "%-12s conv %dx%d/%d pad %d%s", s->name, s->k, s->k, s->stride, s->pad,
                 s->groups > 1 ? (s->groups == 2 ? " groups 2" : " grouped") : "");
        break;
    case LAYER_LINEAR: snprintf(buf, size, "%-12s linear", s->name); break;
    case LAYER_MAXPOOL: snprintf(buf, size, "%-12s maxpool %dx%d/%d", "", s->k, s->k, s->stride); break;
    case LAYER_AVGPOOL: snprintf(buf, size, "%-12s adaptive avgpool", ""); break;
    case LAYER_DROPOUT: snprintf(buf, size, "%-12s dropout %.1f", "", s->p); break;
    case LAYER_LRN: {
        LrnParams p = layer_lrn(s);
        char g[16] = "";
        if (s->groups > 1) snprintf(g, sizeof g, " /%d", s->groups); /* per tower */
        snprintf(buf, size, "%-12s lrn n=%d k=%g a=%g b=%g%s", "", p.size, p.k, p.alpha, p.beta, g);
        break;
    }
    default: snprintf(buf, size, "%-12s %s", "", kind_name(s->kind)); break;
    }
}

void net_print_table(const Net *net, FILE *f) {
    char desc[96], params[32], flops[32];
    fprintf(f, "model %s: %s\n", net->spec.name, net->spec.about);
    fprintf(f, "%-3s %-40s %16s -> %-16s %12s %15s\n", "#", "layer", "input", "output", "params", "FLOPs");
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        char in[32], out[32];
        describe(l, desc, sizeof desc);
        snprintf(in, sizeof in, "%dx%dx%d", l->in_c, l->in_h, l->in_w);
        snprintf(out, sizeof out, "%dx%dx%d", l->out_c, l->out_h, l->out_w);
        an_with_commas((double)(l->w_size + l->b_size), params, sizeof params);
        an_with_commas(l->flops, flops, sizeof flops);
        fprintf(f, "%-3d %-40s %16s -> %-16s %12s %15s\n", i + 1, desc, in, out, params, flops);
    }
    an_with_commas((double)net->nparams, params, sizeof params);
    an_with_commas(net_flops(net), flops, sizeof flops);
    fprintf(f, "total parameters: %s\n", params);
    fprintf(f, "total FLOPs per image (forward, 2 x multiply-adds of conv and linear layers): %s\n", flops);
    fprintf(f, "input %dx%dx%d, %d classes\n", net->in_c, net->in_size, net->in_size, net->classes);
}

/* The layer named `name` (one with weights; NULL: the last one
 * before the classifier), then past the ReLU, tanh and dropout layers right after it. The index, or
 * -1 naming the layers there are. */
int net_feature_layer(const Net *net, const char *name, const char *fn) {
    int at = -1, last = -1, before_last = -1;
    for (int i = 0; i < net->nlayers; i++) {
        if (!net->layers[i].w_size) continue;
        before_last = last, last = i;
        if (name && !strcmp(net->layers[i].spec->name, name)) at = i;
    }
    if (!name) at = before_last;
    if (at < 0) {
        char names[512] = "";
        for (int i = 0; i < net->nlayers; i++)
            if (net->layers[i].w_size && strlen(names) + strlen(net->layers[i].spec->name) + 3 < sizeof names)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "",
                         net->layers[i].spec->name);
        return an_error("%s: no layer '%s' with weights in model %s (it has: %s)", fn, name ? name : "(hidden)",
                        net->spec.name, names);
    }
    while (at + 1 < net->nlayers) {
        LayerKind k = net->layers[at + 1].spec->kind;
        if (k != LAYER_RELU && k != LAYER_TANH && k != LAYER_DROPOUT) break;
        at++;
    }
    return at;
}
