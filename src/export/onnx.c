/* onnx.c: `alexnet export`: a network as an ONNX ModelProto (onnx.h says what the model holds).
 *
 * Two parts: a minimal protobuf encoder (varints, length-delimited fields, little-endian raw
 * data) that writes straight to the file, and a graph builder that turns the layers into ONNX
 * nodes and initializers. Sub-messages are written as tag, length, body; the length comes from
 * running the same writer once in counting mode (no FILE), so nothing is buffered: the weights go
 * from net->params to the file once. Repeated integers are written unpacked (proto2's default, as
 * onnx.proto declares them); readers accept either form. Field numbers are onnx.proto's. */
#include "onnx.h"
#include "../../include/alexnet.h"
#include "../util/common.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf encoding ---- */

typedef struct PbWriter {
    FILE *f;    /* NULL: count bytes only */
    uint64_t n; /* bytes written (or counted) */
    int err;    /* a write failed (errno kept in err_no) */
    int err_no;
} PbWriter;

enum { PB_VARINT = 0, PB_LEN = 2, PB_I32 = 5 };

static void pb_bytes(PbWriter *w, const void *p, size_t n) {
    w->n += n;
    if (w->f && !w->err && n && fwrite(p, 1, n, w->f) != n) w->err = 1, w->err_no = errno;
}

static void pb_varint(PbWriter *w, uint64_t v) {
    uint8_t b[10];
    int k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    pb_bytes(w, b, (size_t)k);
}

static void pb_tag(PbWriter *w, int field, int wire) { pb_varint(w, (uint64_t)field << 3 | (uint64_t)wire); }

/* int32/int64/enum fields: negative values as 10-byte two's complement, as protobuf does */
static void pb_int(PbWriter *w, int field, int64_t v) {
    pb_tag(w, field, PB_VARINT);
    pb_varint(w, (uint64_t)v);
}

static void pb_float(PbWriter *w, int field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_tag(w, field, PB_I32);
    pb_bytes(w, b, 4);
}

static void pb_string(PbWriter *w, int field, const char *s) {
    size_t n = strlen(s);
    pb_tag(w, field, PB_LEN);
    pb_varint(w, n);
    pb_bytes(w, s, n);
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* count elements of elem bytes each (4 or 8) as a length-delimited field, little endian */
static void pb_raw_le(PbWriter *w, int field, const void *data, size_t count, size_t elem) {
    pb_tag(w, field, PB_LEN);
    pb_varint(w, count * elem);
    if (!w->f || host_is_little_endian()) { pb_bytes(w, data, count * elem); return; }
    const uint8_t *p = data;
    for (size_t i = 0; i < count; i++) { /* big-endian host: reverse each element's bytes */
        uint8_t b[8];
        for (size_t j = 0; j < elem; j++) b[j] = p[i * elem + elem - 1 - j];
        pb_bytes(w, b, elem);
    }
}

typedef void (*PbMsgFn)(PbWriter *w, const void *ctx);

/* A sub-message: its length is counted first by running fn without a file */
static void pb_message(PbWriter *w, int field, PbMsgFn fn, const void *ctx) {
    PbWriter count = {0};
    fn(&count, ctx);
    pb_tag(w, field, PB_LEN);
    pb_varint(w, count.n);
    if (w->f) fn(w, ctx);
    else w->n += count.n;
}

/* ---- the graph, before it is encoded ---- */

enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };              /* TensorProto.DataType */
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS = 7 }; /* AttributeProto.AttributeType */
#define NAME_LEN 96
#define MAX_ATTRS 6

typedef struct Attr {
    const char *name;
    int type;
    float f;
    int64_t ints[4]; /* ATTR_INT: ints[0] */
    int nints;
} Attr;

typedef struct Node {
    const char *op;
    char name[NAME_LEN], out[NAME_LEN];
    char in[3][NAME_LEN];
    int nin, nattr;
    Attr attr[MAX_ATTRS];
} Node;

typedef struct Init {
    char name[NAME_LEN];
    int dtype, ndims;
    int64_t dims[4];
    const void *data; /* count elements of dtype */
    size_t count;
    void *owned;      /* data made here (shapes, averaging matrices): freed with the graph */
} Init;

typedef struct Graph {
    const Net *net;
    Node *nodes;
    Init *inits;
    int nnodes, ninits, cap_nodes, cap_inits;
    char cur[NAME_LEN]; /* the tensor the next layer reads */
    int rank;           /* its rank: 4 (batch, c, h, w) or 2 (batch, features) */
} Graph;

static void graph_free(Graph *g) {
    for (int i = 0; i < g->ninits; i++) free(g->inits[i].owned);
    free(g->nodes), free(g->inits);
    memset(g, 0, sizeof *g);
}

static void *grow(void *p, int *cap, size_t elem) {
    int c = *cap ? *cap * 2 : 32;
    void *q = realloc(p, (size_t)c * elem);
    if (q) *cap = c;
    return q;
}

/* A new node op(inputs...) -> out, named out; NULL (an_error) when out of memory. */
static Node *add_node(Graph *g, const char *op, const char *out, const char *in0, const char *in1, const char *in2) {
    if (g->nnodes == g->cap_nodes) {
        Node *n = grow(g->nodes, &g->cap_nodes, sizeof *n);
        if (!n) { an_error("out of memory (ONNX nodes)"); return NULL; }
        g->nodes = n;
    }
    Node *n = &g->nodes[g->nnodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->name, NAME_LEN, "%s", out);
    snprintf(n->out, NAME_LEN, "%s", out);
    const char *in[3] = {in0, in1, in2};
    for (int k = 0; k < 3 && in[k]; k++) snprintf(n->in[n->nin++], NAME_LEN, "%s", in[k]);
    return n;
}

static void attr_int(Node *n, const char *name, int64_t v) {
    n->attr[n->nattr++] = (Attr){.name = name, .type = ATTR_INT, .ints = {v}, .nints = 1};
}

static void attr_float(Node *n, const char *name, float f) {
    n->attr[n->nattr++] = (Attr){.name = name, .type = ATTR_FLOAT, .f = f};
}

/* a list of nints values (2 or 4) */
static void attr_ints(Node *n, const char *name, int nints, int64_t a, int64_t b) {
    n->attr[n->nattr++] = (Attr){.name = name, .type = ATTR_INTS, .ints = {a, b, a, b}, .nints = nints};
}

/* An initializer (dims: ndims values); owned data is freed with the graph, also on failure. */
static int add_init(Graph *g, const char *name, int dtype, int ndims, const int64_t *dims, const void *data,
                    void *owned) {
    if (g->ninits == g->cap_inits) {
        Init *i = grow(g->inits, &g->cap_inits, sizeof *i);
        if (!i) { free(owned); return an_error("out of memory (ONNX initializers)"); }
        g->inits = i;
    }
    Init *t = &g->inits[g->ninits++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, NAME_LEN, "%s", name);
    t->dtype = dtype, t->ndims = ndims, t->data = data, t->owned = owned, t->count = 1;
    for (int k = 0; k < ndims; k++) t->dims[k] = dims[k], t->count *= (size_t)dims[k];
    return 0;
}

/* An int64 vector initializer (a Reshape's shape) */
static int add_shape(Graph *g, const char *name, int n, const int64_t *values) {
    int64_t *v = malloc((size_t)n * sizeof *v), dims[1] = {n};
    if (!v) return an_error("out of memory (ONNX shapes)");
    memcpy(v, values, (size_t)n * sizeof *v);
    return add_init(g, name, ONNX_INT64, 1, dims, v, v);
}

/* Reshape g->cur to the given shape (-1 = the batch) into out */
static int reshape(Graph *g, const char *out, int n, const int64_t *shape) {
    char sname[NAME_LEN + 8];
    snprintf(sname, sizeof sname, "%s.shape", out);
    if (add_shape(g, sname, n, shape) || !add_node(g, "Reshape", out, g->cur, sname, NULL)) return -1;
    snprintf(g->cur, NAME_LEN, "%s", out);
    g->rank = n;
    return 0;
}

/* ---- layers to nodes: each reads g->cur (rank g->rank) and leaves its output there ---- */

/* (batch, features) back to (batch, c, h, w) where a spatial layer follows a linear one */
static int to_rank4(Graph *g, const Layer *l, const char *base) {
    if (g->rank == 4) return 0;
    char out[NAME_LEN];
    snprintf(out, sizeof out, "%.80s.nchw", base);
    const int64_t shape[4] = {-1, l->in_c, l->in_h, l->in_w};
    return reshape(g, out, 4, shape);
}

/* weight (out, in/groups, k, k) or (out, in), bias (out): views of net->params */
static int add_params(Graph *g, const Layer *l, char *wname, char *bname) {
    const float *p = g->net->params;
    int conv = l->spec->kind == LAYER_CONV;
    int64_t wd[4] = {l->out_c, conv ? l->in_c / l->spec->groups : l->fan_in, l->spec->k, l->spec->k};
    int64_t bd[1] = {l->out_c};
    snprintf(wname, NAME_LEN, "%.80s.weight", l->spec->name);
    snprintf(bname, NAME_LEN, "%.80s.bias", l->spec->name);
    return add_init(g, wname, ONNX_FLOAT, conv ? 4 : 2, wd, p + l->w_off, NULL) ||
           add_init(g, bname, ONNX_FLOAT, 1, bd, p + l->b_off, NULL);
}

/* x (batch, c, h, w) -> Conv (batch, out_c, out_h, out_w) */
static int emit_conv(Graph *g, const Layer *l, const char *out) {
    char wname[NAME_LEN], bname[NAME_LEN];
    if (to_rank4(g, l, out) || add_params(g, l, wname, bname)) return -1;
    Node *n = add_node(g, "Conv", out, g->cur, wname, bname);
    if (!n) return -1;
    const LayerSpec *s = l->spec;
    attr_ints(n, "dilations", 2, 1, 1);
    attr_int(n, "group", s->groups > 1 ? s->groups : 1);
    attr_ints(n, "kernel_shape", 2, s->k, s->k);
    attr_ints(n, "pads", 4, s->pad, s->pad); /* top, left, bottom, right */
    attr_ints(n, "strides", 2, s->stride, s->stride);
    snprintf(g->cur, NAME_LEN, "%s", out);
    return 0;
}

/* x (batch, ...) -> Flatten (batch, c h w) -> Gemm: x w^T + b (batch, out) */
static int emit_linear(Graph *g, const Layer *l, const char *out) {
    char wname[NAME_LEN], bname[NAME_LEN], flat[NAME_LEN];
    if (add_params(g, l, wname, bname)) return -1;
    if (g->rank != 2) {
        snprintf(flat, sizeof flat, "%.80s.flatten", out);
        Node *f = add_node(g, "Flatten", flat, g->cur, NULL, NULL);
        if (!f) return -1;
        attr_int(f, "axis", 1);
        snprintf(g->cur, NAME_LEN, "%s", flat);
        g->rank = 2;
    }
    Node *n = add_node(g, "Gemm", out, g->cur, wname, bname);
    if (!n) return -1;
    attr_float(n, "alpha", 1.0f);
    attr_float(n, "beta", 1.0f);
    attr_int(n, "transB", 1);
    snprintf(g->cur, NAME_LEN, "%s", out);
    return 0;
}

/* elementwise: Relu or Tanh, any rank */
static int emit_unary(Graph *g, const char *op, const char *out) {
    if (!add_node(g, op, out, g->cur, NULL, NULL)) return -1;
    snprintf(g->cur, NAME_LEN, "%s", out);
    return 0;
}

/* LRN: ONNX's y = x / (bias + alpha / size * sum of x^2 over the window)^beta is ours with
 * bias = k and the same alpha (both divide it by size). Windows within `groups` groups (the
 * towers): (batch, c, h, w) -> Reshape (batch x groups, c / groups, h, w) -> LRN -> Reshape back;
 * a group's channels are contiguous, so each row of the middle tensor is one tower of one image,
 * and ONNX's zero padding at its edges is our window clipped at the tower's edge. */
static int emit_lrn(Graph *g, const Layer *l, const char *out) {
    if (to_rank4(g, l, out)) return -1;
    LrnParams p = layer_lrn(l->spec);
    int groups = p.groups > 1 ? p.groups : 1;
    char towers[NAME_LEN], normed[NAME_LEN];
    snprintf(towers, sizeof towers, "%.80s.towers", out);
    snprintf(normed, sizeof normed, "%.80s.lrn", out);
    if (groups > 1) {
        const int64_t split[4] = {-1, l->in_c / groups, l->in_h, l->in_w};
        if (reshape(g, towers, 4, split)) return -1;
    }
    Node *n = add_node(g, "LRN", groups > 1 ? normed : out, g->cur, NULL, NULL);
    if (!n) return -1;
    attr_float(n, "alpha", p.alpha);
    attr_float(n, "beta", p.beta);
    attr_float(n, "bias", p.k);
    attr_int(n, "size", p.size);
    snprintf(g->cur, NAME_LEN, "%s", n->out);
    if (groups > 1) {
        const int64_t whole[4] = {-1, l->in_c, l->in_h, l->in_w};
        if (reshape(g, out, 4, whole)) return -1;
    }
    return 0;
}

/* (batch, c, h, w) -> MaxPool k/s, no padding, floor rounding as ours: (h - k) / s + 1 */
static int emit_maxpool(Graph *g, const Layer *l, const char *out) {
    if (to_rank4(g, l, out)) return -1;
    Node *n = add_node(g, "MaxPool", out, g->cur, NULL, NULL);
    if (!n) return -1;
    attr_int(n, "ceil_mode", 0);
    attr_ints(n, "kernel_shape", 2, l->spec->k, l->spec->k);
    attr_ints(n, "pads", 4, 0, 0);
    attr_ints(n, "strides", 2, l->spec->stride, l->spec->stride);
    snprintf(g->cur, NAME_LEN, "%s", out);
    return 0;
}

static int bin_start(int i, int in, int out) { return (int)((long)i * in / out); }
static int bin_end(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

/* Adaptive average pooling (PyTorch's bins [floor(i h / oh), ceil((i + 1) h / oh))). Equal bins
 * (h, w multiples of oh, ow): AveragePool of kernel = stride = h / oh. Otherwise (batch, c, h, w)
 * -> Reshape (batch, c, h w) -> MatMul by the (h w, oh ow) matrix of 1 / bin size at each bin's
 * inputs -> Reshape (batch, c, oh, ow). */
static int emit_avgpool(Graph *g, const Layer *l, const char *out) {
    if (to_rank4(g, l, out)) return -1;
    int h = l->in_h, w = l->in_w, oh = l->out_h, ow = l->out_w;
    if (h % oh == 0 && w % ow == 0) {
        Node *n = add_node(g, "AveragePool", out, g->cur, NULL, NULL);
        if (!n) return -1;
        attr_ints(n, "kernel_shape", 2, h / oh, w / ow);
        attr_ints(n, "strides", 2, h / oh, w / ow);
        snprintf(g->cur, NAME_LEN, "%s", out);
        return 0;
    }
    size_t rows = (size_t)h * w, cols = (size_t)oh * ow;
    float *m = calloc(rows * cols, sizeof *m);
    if (!m) return an_error("out of memory (ONNX average pooling matrix)");
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
            int y0 = bin_start(oy, h, oh), y1 = bin_end(oy, h, oh), x0 = bin_start(ox, w, ow), x1 = bin_end(ox, w, ow);
            float v = 1.0f / (float)((y1 - y0) * (x1 - x0));
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) m[((size_t)iy * w + ix) * cols + (size_t)oy * ow + ox] = v;
        }
    char flat[NAME_LEN], bins[NAME_LEN], pooled[NAME_LEN];
    snprintf(flat, sizeof flat, "%.80s.flat", out);
    snprintf(bins, sizeof bins, "%.80s.bins", out);
    snprintf(pooled, sizeof pooled, "%.80s.matmul", out);
    const int64_t fshape[3] = {-1, l->in_c, (int64_t)rows}, mdims[2] = {(int64_t)rows, (int64_t)cols};
    const int64_t oshape[4] = {-1, l->in_c, oh, ow};
    if (reshape(g, flat, 3, fshape) || add_init(g, bins, ONNX_FLOAT, 2, mdims, m, m) ||
        !add_node(g, "MatMul", pooled, g->cur, bins, NULL))
        return -1;
    snprintf(g->cur, NAME_LEN, "%s", pooled);
    return reshape(g, out, 4, oshape);
}

/* Layer i's nodes, its output named out (dropout: no node, g->cur stays). */
static int emit_layer(Graph *g, int i, const char *out, const char *path) {
    const Layer *l = &g->net->layers[i];
    switch (l->spec->kind) {
    case LAYER_CONV: return emit_conv(g, l, out);
    case LAYER_LINEAR: return emit_linear(g, l, out);
    case LAYER_RELU: return emit_unary(g, "Relu", out);
    case LAYER_TANH: return emit_unary(g, "Tanh", out);
    case LAYER_LRN: return emit_lrn(g, l, out);
    case LAYER_MAXPOOL: return emit_maxpool(g, l, out);
    case LAYER_AVGPOOL: return emit_avgpool(g, l, out);
    case LAYER_DROPOUT: return 0; /* identity at inference */
    default:
        return an_error("%s: cannot export layer %d of model %s to ONNX: unsupported layer kind (the towers' "
                        "gather exists only inside --parallel towers)", path, i + 1, g->net->spec.name);
    }
}

/* The tensor name of layer i's output: a conv or linear layer's own name ("NAME.out" where that is
 * one of the graph's own names), else kind + number ("relu2") */
static void layer_tensor_name(const Layer *l, int i, char *out) {
    static const char *kinds[] = {"conv", "relu", "tanh", "lrn", "maxpool", "avgpool", "dropout", "linear", "gather"};
    const char *name = l->spec->name;
    if (!name) snprintf(out, NAME_LEN, "%s%d", kinds[l->spec->kind], i + 1);
    else if (!strcmp(name, "input") || !strcmp(name, "logits") || !strcmp(name, "probs"))
        snprintf(out, NAME_LEN, "%.80s.out", name);
    else snprintf(out, NAME_LEN, "%.80s", name);
}

/* Every layer's nodes, then "logits" (batch, classes) and Softmax -> "probs" */
static int build_graph(Graph *g, const Net *net, const char *path) {
    memset(g, 0, sizeof *g);
    g->net = net;
    snprintf(g->cur, NAME_LEN, "input");
    g->rank = 4;
    for (int i = 0; i < net->nlayers; i++) {
        char name[NAME_LEN];
        layer_tensor_name(&net->layers[i], i, name);
        if (emit_layer(g, i, name, path)) return -1;
    }
    if (g->rank != 2) { /* a network that ends in a spatial layer */
        Node *f = add_node(g, "Flatten", "logits", g->cur, NULL, NULL);
        if (!f) return -1;
        attr_int(f, "axis", 1);
    } else { /* the last node is the last layer: its output becomes "logits" (nothing reads it yet) */
        Node *last = &g->nodes[g->nnodes - 1];
        snprintf(last->out, NAME_LEN, "logits");
    }
    Node *s = add_node(g, "Softmax", "probs", "logits", NULL, NULL);
    if (!s) return -1;
    attr_int(s, "axis", 1);
    return 0;
}

/* ---- encoding the messages (onnx.proto field numbers in the comments) ---- */

/* AttributeProto: name 1, f 2, i 3, ints 8, type 20 */
static void attr_msg(PbWriter *w, const void *ctx) {
    const Attr *a = ctx;
    pb_string(w, 1, a->name);
    if (a->type == ATTR_FLOAT) pb_float(w, 2, a->f);
    if (a->type == ATTR_INT) pb_int(w, 3, a->ints[0]);
    if (a->type == ATTR_INTS)
        for (int k = 0; k < a->nints; k++) pb_int(w, 8, a->ints[k]);
    pb_int(w, 20, a->type);
}

/* NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 */
static void node_msg(PbWriter *w, const void *ctx) {
    const Node *n = ctx;
    for (int k = 0; k < n->nin; k++) pb_string(w, 1, n->in[k]);
    pb_string(w, 2, n->out);
    pb_string(w, 3, n->name);
    pb_string(w, 4, n->op);
    for (int k = 0; k < n->nattr; k++) pb_message(w, 5, attr_msg, &n->attr[k]);
}

/* TensorProto: dims 1, data_type 2, name 8, raw_data 9 */
static void init_msg(PbWriter *w, const void *ctx) {
    const Init *t = ctx;
    for (int k = 0; k < t->ndims; k++) pb_int(w, 1, t->dims[k]);
    pb_int(w, 2, t->dtype);
    pb_string(w, 8, t->name);
    pb_raw_le(w, 9, t->data, t->count, t->dtype == ONNX_INT64 ? 8 : 4);
}

/* A graph input or output: a float tensor of known dims, dim 0 the symbolic "batch" */
typedef struct ValueInfo {
    const char *name;
    int ndims;
    int64_t dims[4];
} ValueInfo;

typedef struct DimCtx { const ValueInfo *v; int k; } DimCtx;

/* TensorShapeProto.Dimension: dim_value 1, dim_param 2 */
static void dim_msg(PbWriter *w, const void *ctx) {
    const DimCtx *d = ctx;
    if (d->k == 0) pb_string(w, 2, "batch");
    else pb_int(w, 1, d->v->dims[d->k]);
}

/* TensorShapeProto: dim 1 */
static void shape_msg(PbWriter *w, const void *ctx) {
    const ValueInfo *v = ctx;
    for (int k = 0; k < v->ndims; k++) {
        DimCtx d = {v, k};
        pb_message(w, 1, dim_msg, &d);
    }
}

/* TypeProto.Tensor: elem_type 1, shape 2 */
static void tensor_type_msg(PbWriter *w, const void *ctx) {
    pb_int(w, 1, ONNX_FLOAT);
    pb_message(w, 2, shape_msg, ctx);
}

/* TypeProto: tensor_type 1 */
static void type_msg(PbWriter *w, const void *ctx) { pb_message(w, 1, tensor_type_msg, ctx); }

/* ValueInfoProto: name 1, type 2 */
static void value_info_msg(PbWriter *w, const void *ctx) {
    const ValueInfo *v = ctx;
    pb_string(w, 1, v->name);
    pb_message(w, 2, type_msg, v);
}

/* GraphProto: node 1, name 2, initializer 5, doc_string 10, input 11, output 12 */
static void graph_msg(PbWriter *w, const void *ctx) {
    const Graph *g = ctx;
    const Net *net = g->net;
    for (int i = 0; i < g->nnodes; i++) pb_message(w, 1, node_msg, &g->nodes[i]);
    pb_string(w, 2, net->spec.name);
    for (int i = 0; i < g->ninits; i++) pb_message(w, 5, init_msg, &g->inits[i]);
    pb_string(w, 10, "input: the network input as alexnet's forward pass takes it, already normalised "
                     "(batch, channels, height, width); logits: the last layer; probs: their softmax");
    ValueInfo in = {"input", 4, {0, net->in_c, net->in_size, net->in_size}};
    ValueInfo logits = {"logits", 2, {0, net->classes}}, probs = {"probs", 2, {0, net->classes}};
    pb_message(w, 11, value_info_msg, &in);
    pb_message(w, 12, value_info_msg, &logits);
    pb_message(w, 12, value_info_msg, &probs);
}

/* OperatorSetIdProto: domain 1 ("", the default), version 2 */
static void opset_msg(PbWriter *w, const void *ctx) {
    (void)ctx;
    pb_string(w, 1, "");
    pb_int(w, 2, ONNX_OPSET);
}

typedef struct Entry { const char *key, *value; } Entry;

/* StringStringEntryProto: key 1, value 2 */
static void entry_msg(PbWriter *w, const void *ctx) {
    const Entry *e = ctx;
    pb_string(w, 1, e->key);
    pb_string(w, 2, e->value);
}

/* the classes' names one a line, or NULL (none known, or out of memory) */
static char *class_names_text(const Net *net) {
    if (!net->class_names) return NULL;
    size_t n = 1;
    for (int j = 0; j < net->classes; j++) n += strlen(net->class_names[j]) + 1;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    for (int j = 0; j < net->classes; j++) p += sprintf(p, "%s%s", j ? "\n" : "", net->class_names[j]);
    *p = 0;
    return s;
}

typedef struct ModelCtx { const Graph *g; const char *class_names, *preprocessing; } ModelCtx;

/* ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
 * opset_import 8, metadata_props 14 */
static void model_msg(PbWriter *w, const void *ctx) {
    const ModelCtx *m = ctx;
    const Net *net = m->g->net;
    pb_int(w, 1, ONNX_IR_VERSION);
    pb_string(w, 2, "alexnet");
    pb_string(w, 3, ALEXNET_VERSION_STRING);
    pb_string(w, 6, net->spec.about ? net->spec.about : net->spec.name);
    pb_message(w, 7, graph_msg, m->g);
    pb_message(w, 8, opset_msg, NULL);
    Entry model = {"model", net->spec.name}, names = {"class_names", m->class_names},
          pre = {"preprocessing", m->preprocessing};
    pb_message(w, 14, entry_msg, &model);
    if (m->preprocessing) pb_message(w, 14, entry_msg, &pre);
    if (m->class_names) pb_message(w, 14, entry_msg, &names);
}

/* ---- the file ---- */

/* The encoded model into path (through path.tmp); *bytes its size. 0 or -1 naming the file. */
static int write_file(const ModelCtx *m, const char *path, long long *bytes) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return an_error("%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return an_error("cannot write %s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20); /* large writes: the weights go out in few system calls */
    if (buf) setvbuf(f, buf, _IOFBF, 1 << 20);
    PbWriter w = {.f = f};
    model_msg(&w, m);
    if (!w.err && fflush(f)) w.err = 1, w.err_no = errno;
    if (fclose(f) && !w.err) w.err = 1, w.err_no = errno;
    free(buf);
    if (w.err || rename(tmp, path)) {
        int e = w.err ? w.err_no : errno;
        remove(tmp);
        return an_error("cannot write %s: %s", path, strerror(e ? e : EIO));
    }
    *bytes = (long long)w.n;
    return 0;
}

int onnx_export(const Net *net, const char *preprocessing, const char *path, OnnxSummary *summary) {
    Graph g;
    if (net->gpu) return an_error("%s: the network's weights are on the GPU (copy them back first)", path);
    int rc = build_graph(&g, net, path);
    long long bytes = 0;
    if (!rc) {
        ModelCtx m = {&g, class_names_text(net), preprocessing};
        rc = write_file(&m, path, &bytes);
        free((char *)m.class_names);
    }
    if (!rc && summary)
        *summary = (OnnxSummary){.nodes = g.nnodes, .initializers = g.ninits, .opset = ONNX_OPSET,
                                 .params = net->nparams, .bytes = bytes};
    graph_free(&g);
    return rc;
}
