/* test_onnx.c: `alexnet export` (src/export/onnx.c). A small protobuf reader here parses the
 * written file as an ONNX ModelProto (onnx.proto's field numbers) and checks: ir_version 8, opset
 * 13 of the default domain, the graph input (batch, C, S, S) and outputs logits/probs, the op
 * sequence (Conv, Relu, LRN in towers as Reshape-LRN-Reshape, MaxPool, ... Gemm, Softmax), the
 * attributes that carry the paper's layers (group 2 on conv2/4/5, LRN constants, 3x3/2 pooling),
 * that every node reads only the input, initializers or earlier outputs, every initializer's dims
 * against our layer shapes and sampled values bit for bit; and the one-line errors. */
#include "harness.h"
#include "../src/export/onnx.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/util/common.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a protobuf reader: one field at a time ---- */

typedef struct Pb { const uint8_t *p, *end; int bad; } Pb;
typedef struct PbField { int field, wire; uint64_t v; const uint8_t *data; size_t len; } PbField;

static uint64_t rd_varint(Pb *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

/* the next field into *f: 1, or 0 at the end (r->bad set when malformed) */
static int rd_field(Pb *r, PbField *f) {
    if (r->bad || r->p >= r->end) return 0;
    uint64_t key = rd_varint(r);
    f->field = (int)(key >> 3), f->wire = (int)(key & 7);
    f->data = NULL, f->len = 0, f->v = 0;
    switch (f->wire) {
    case 0: f->v = rd_varint(r); break;
    case 1: case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) { r->bad = 1; return 0; }
        for (size_t k = 0; k < n; k++) f->v |= (uint64_t)r->p[k] << (8 * k);
        r->p += n;
        break;
    }
    case 2:
        f->len = rd_varint(r);
        if (r->bad || f->len > (size_t)(r->end - r->p)) { r->bad = 1; return 0; }
        f->data = r->p, r->p += f->len;
        break;
    default: r->bad = 1; return 0;
    }
    return !r->bad;
}

static Pb sub(const PbField *f) { return (Pb){f->data, f->data + f->len, 0}; }

static void rd_string(const PbField *f, char *out, size_t size) {
    size_t n = f->len < size - 1 ? f->len : size - 1;
    memcpy(out, f->data, n);
    out[n] = 0;
}

/* a repeated int64 field, packed (wire 2) or not (wire 0), appended to v[*n < max] */
static void rd_ints(const PbField *f, int64_t *v, int *n, int max) {
    if (f->wire == 0) { if (*n < max) v[(*n)++] = (int64_t)f->v; return; }
    Pb r = sub(f);
    while (r.p < r.end && !r.bad) {
        int64_t x = (int64_t)rd_varint(&r);
        if (*n < max) v[(*n)++] = x;
    }
}

/* ---- the ONNX messages this test looks at ---- */

typedef struct TAttr { char name[32]; int type; float f; int64_t ints[8]; int nints; } TAttr;
typedef struct TNode {
    char op[32], out[96], in[3][96];
    int nin, nattr;
    TAttr attr[8];
} TNode;
typedef struct TInit { char name[96]; int dtype, ndims; int64_t dims[4]; const uint8_t *raw; size_t raw_len; } TInit;
typedef struct TValue { char name[32]; int elem, ndims; int64_t dims[4]; char param[4][16]; } TValue;
typedef struct TModel {
    int64_t ir, opset;
    char producer[32], opset_domain[16], class_names[256], preprocessing[256];
    int nopsets, nnodes, ninits, nin, nout;
    TNode nodes[64];
    TInit inits[64];
    TValue in[2], out[4];
} TModel;

static void rd_attr(Pb r, TAttr *a) {
    PbField f;
    memset(a, 0, sizeof *a);
    while (rd_field(&r, &f)) {
        if (f.field == 1) rd_string(&f, a->name, sizeof a->name);
        if (f.field == 2) { uint32_t u = (uint32_t)f.v; memcpy(&a->f, &u, 4); }
        if (f.field == 3) a->ints[0] = (int64_t)f.v, a->nints = 1;
        if (f.field == 8) rd_ints(&f, a->ints, &a->nints, 8);
        if (f.field == 20) a->type = (int)f.v;
    }
}

static void rd_node(Pb r, TNode *n) {
    PbField f;
    memset(n, 0, sizeof *n);
    while (rd_field(&r, &f)) {
        if (f.field == 1 && n->nin < 3) rd_string(&f, n->in[n->nin++], 96);
        if (f.field == 2) rd_string(&f, n->out, sizeof n->out);
        if (f.field == 4) rd_string(&f, n->op, sizeof n->op);
        if (f.field == 5 && n->nattr < 8) rd_attr(sub(&f), &n->attr[n->nattr++]);
    }
}

static void rd_init(Pb r, TInit *t) {
    PbField f;
    memset(t, 0, sizeof *t);
    while (rd_field(&r, &f)) {
        if (f.field == 1) rd_ints(&f, t->dims, &t->ndims, 4);
        if (f.field == 2) t->dtype = (int)f.v;
        if (f.field == 8) rd_string(&f, t->name, sizeof t->name);
        if (f.field == 9) t->raw = f.data, t->raw_len = f.len;
    }
}

/* ValueInfoProto { name 1, type 2 { tensor_type 1 { elem_type 1, shape 2 { dim 1 { value 1 | param 2 } } } } } */
static void rd_value(Pb r, TValue *v) {
    PbField f, t, tt, s, d;
    memset(v, 0, sizeof *v);
    while (rd_field(&r, &f)) {
        if (f.field == 1) rd_string(&f, v->name, sizeof v->name);
        if (f.field != 2) continue;
        for (Pb rt = sub(&f); rd_field(&rt, &t);)
            for (Pb rtt = sub(&t); t.field == 1 && rd_field(&rtt, &tt);) {
                if (tt.field == 1) v->elem = (int)tt.v;
                for (Pb rs = sub(&tt); tt.field == 2 && rd_field(&rs, &s);) {
                    if (s.field != 1 || v->ndims == 4) continue;
                    int k = v->ndims++;
                    for (Pb rd = sub(&s); rd_field(&rd, &d);) {
                        if (d.field == 1) v->dims[k] = (int64_t)d.v;
                        if (d.field == 2) rd_string(&d, v->param[k], sizeof v->param[k]);
                    }
                }
            }
    }
}

static void rd_graph(Pb r, TModel *m) {
    PbField f;
    while (rd_field(&r, &f)) {
        if (f.field == 1 && m->nnodes < 64) rd_node(sub(&f), &m->nodes[m->nnodes++]);
        if (f.field == 5 && m->ninits < 64) rd_init(sub(&f), &m->inits[m->ninits++]);
        if (f.field == 11 && m->nin < 2) rd_value(sub(&f), &m->in[m->nin++]);
        if (f.field == 12 && m->nout < 4) rd_value(sub(&f), &m->out[m->nout++]);
    }
}

/* The file's ModelProto into *m (pointers into buf). 0, or -1 when it does not parse. */
static int rd_model(const uint8_t *buf, size_t n, TModel *m) {
    Pb r = {buf, buf + n, 0};
    PbField f, o;
    memset(m, 0, sizeof *m);
    while (rd_field(&r, &f)) {
        if (f.field == 1) m->ir = (int64_t)f.v;
        if (f.field == 2) rd_string(&f, m->producer, sizeof m->producer);
        if (f.field == 7) rd_graph(sub(&f), m);
        if (f.field == 14) { /* metadata_props: StringStringEntryProto { key 1, value 2 } */
            char key[32] = "", value[256] = "";
            for (Pb re = sub(&f); rd_field(&re, &o);) {
                if (o.field == 1) rd_string(&o, key, sizeof key);
                if (o.field == 2) rd_string(&o, value, sizeof value);
            }
            if (!strcmp(key, "class_names")) memcpy(m->class_names, value, sizeof value);
            if (!strcmp(key, "preprocessing")) memcpy(m->preprocessing, value, sizeof value);
        }
        if (f.field != 8) continue;
        m->nopsets++;
        for (Pb ro = sub(&f); rd_field(&ro, &o);) {
            if (o.field == 1) rd_string(&o, m->opset_domain, sizeof m->opset_domain);
            if (o.field == 2) m->opset = (int64_t)o.v;
        }
    }
    return r.bad || r.p != r.end ? -1 : 0;
}

/* ---- checks ---- */

static const TAttr *attr(const TNode *n, const char *name) {
    for (int k = 0; k < n->nattr; k++)
        if (!strcmp(n->attr[k].name, name)) return &n->attr[k];
    return NULL;
}

static int64_t attr_i(const TNode *n, const char *name, int k) {
    const TAttr *a = attr(n, name);
    return a && k < a->nints ? a->ints[k] : -999;
}

static const TNode *node_out(const TModel *m, const char *out) {
    for (int i = 0; i < m->nnodes; i++)
        if (!strcmp(m->nodes[i].out, out)) return &m->nodes[i];
    return NULL;
}

static const TInit *init_named(const TModel *m, const char *name) {
    for (int i = 0; i < m->ninits; i++)
        if (!strcmp(m->inits[i].name, name)) return &m->inits[i];
    return NULL;
}

/* the ops in order, comma separated */
static void op_sequence(const TModel *m, char *buf, size_t size) {
    buf[0] = 0;
    for (int i = 0; i < m->nnodes; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", m->nodes[i].op);
}

/* every node reads the input, an initializer or an earlier node's output */
static void check_wiring(const TModel *m) {
    for (int i = 0; i < m->nnodes; i++)
        for (int k = 0; k < m->nodes[i].nin; k++) {
            const char *in = m->nodes[i].in[k];
            int ok = !strcmp(in, "input") || init_named(m, in);
            for (int j = 0; j < i && !ok; j++) ok = !strcmp(m->nodes[j].out, in);
            CHECK(ok, "node %d (%s) reads '%s', which nothing before it makes", i, m->nodes[i].op, in);
        }
}

/* header fields, the graph's input (batch, c, s, s) and outputs (batch, classes) */
static void check_header(const TModel *m, int c, int s, int classes) {
    CHECK(m->ir == ONNX_IR_VERSION && m->ir == 8, "ir_version %lld", (long long)m->ir);
    CHECK(m->nopsets == 1 && m->opset_domain[0] == 0 && m->opset == 13, "opset %d '%s' %lld", m->nopsets,
          m->opset_domain, (long long)m->opset);
    CHECK(!strcmp(m->producer, "alexnet"), "producer '%s'", m->producer);
    CHECK(m->nin == 1 && !strcmp(m->in[0].name, "input") && m->in[0].elem == 1 && m->in[0].ndims == 4, "input");
    CHECK(!strcmp(m->in[0].param[0], "batch") && m->in[0].dims[1] == c && m->in[0].dims[2] == s &&
          m->in[0].dims[3] == s, "input shape (%s, %lld, %lld, %lld)", m->in[0].param[0], (long long)m->in[0].dims[1],
          (long long)m->in[0].dims[2], (long long)m->in[0].dims[3]);
    CHECK(m->nout == 2 && !strcmp(m->out[0].name, "logits") && !strcmp(m->out[1].name, "probs"), "outputs");
    for (int k = 0; k < m->nout; k++)
        CHECK(m->out[k].ndims == 2 && !strcmp(m->out[k].param[0], "batch") && m->out[k].dims[1] == classes,
              "output %s shape", m->out[k].name);
    const TNode *logits = node_out(m, "logits"), *probs = node_out(m, "probs");
    CHECK(logits && !strcmp(logits->op, "Gemm") && attr_i(logits, "transB", 0) == 1, "logits: not a Gemm transB=1");
    CHECK(probs && !strcmp(probs->op, "Softmax") && attr_i(probs, "axis", 0) == 1 && !strcmp(probs->in[0], "logits"),
          "probs: not Softmax(logits, axis 1)");
}

/* every weight and bias: an initializer of our name, dims and float32 values (a few, bit for bit) */
static void check_tensors(const TModel *m, const Net *net) {
    int nt = net_num_tensors(net);
    for (int t = 0; t < nt; t++) {
        char name[96];
        int ndim;
        int64_t shape[4];
        size_t count;
        const float *v = net_tensor(net, t, 0, name, &ndim, shape, &count);
        const TInit *in = init_named(m, name);
        CHECK(in, "no initializer %s", name);
        if (!in) continue;
        CHECK(in->dtype == 1 && in->ndims == ndim, "%s: dtype %d, %d dims", name, in->dtype, in->ndims);
        for (int k = 0; k < ndim && k < in->ndims; k++)
            CHECK(in->dims[k] == shape[k], "%s dim %d: %lld, not %lld", name, k, (long long)in->dims[k],
                  (long long)shape[k]);
        CHECK(in->raw_len == count * 4, "%s: %zu bytes of raw data for %zu floats", name, in->raw_len, count);
        if (in->raw_len != count * 4) continue;
        size_t picks[5] = {0, count - 1, count / 2, count / 3, (count * 7919) % count};
        for (int k = 0; k < 5; k++) {
            const uint8_t *b = in->raw + picks[k] * 4; /* little endian */
            uint32_t got = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24, want;
            memcpy(&want, &v[picks[k]], 4);
            CHECK(got == want, "%s[%zu]: %08x, not %08x", name, picks[k], got, want);
        }
    }
}

/* Export with the real binary (weights saved first) and parse the result into *m; buf holds it. */
static uint8_t *export_and_read(const Net *net, const char *stem, TModel *m) {
    char weights[512], onnx[600], args[1300];
    snprintf(weights, sizeof weights, "%s", harness_path(stem));
    snprintf(onnx, sizeof onnx, "%s.onnx", weights);
    Norm norm = norm_imagenet(net->in_c);
    CHECK(checkpoint_save(weights, net, NULL, NULL, &norm, NULL) == 0, "%s", an_last_error());
    snprintf(args, sizeof args, "export --weights %s --onnx %s", weights, onnx);
    CHECK(harness_run(args) == 0, "export: %s", harness_err);
    CHECK(strstr(harness_out, "opset 13") && strstr(harness_out, "nodes"), "summary: %s", harness_out);
    size_t n;
    uint8_t *buf = harness_read_file(onnx, &n);
    CHECK(buf, "no %s", onnx);
    if (buf) CHECK(rd_model(buf, n, m) == 0, "%s does not parse as protobuf", onnx);
    remove(weights);
    remove(onnx);
    return buf;
}

TEST(onnx_export_convnet4_structure) {
    Net net;
    if (net_create(&net, model_find("convnet4"), 1, 10, 28, 1)) { CHECK(0, "%s", an_last_error()); return; }
    net_init(&net, 11);
    char *names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                       "Ankle boot"};
    CHECK(net_set_class_names(&net, names) == 0, "names");
    static TModel m;
    uint8_t *buf = export_and_read(&net, "c4onnx.safetensors", &m);
    if (buf) {
        check_header(&m, 1, 28, 10);
        char ops[1024];
        op_sequence(&m, ops, sizeof ops);
        CHECK(!strcmp(ops, "Conv,Relu,MaxPool,Conv,Relu,MaxPool,Conv,Relu,MaxPool,Flatten,Gemm,Softmax"), "ops: %s", ops);
        const TNode *c1 = node_out(&m, "conv1"), *p = node_out(&m, "maxpool3");
        CHECK(c1 && attr_i(c1, "kernel_shape", 1) == 5 && attr_i(c1, "pads", 3) == 2 && attr_i(c1, "strides", 0) == 1 &&
              attr_i(c1, "group", 0) == 1 && !strcmp(c1->in[0], "input") && !strcmp(c1->in[1], "conv1.weight"),
              "conv1");
        CHECK(p && !strcmp(p->op, "MaxPool") && attr_i(p, "kernel_shape", 0) == 3 && attr_i(p, "strides", 1) == 2 &&
              attr_i(p, "ceil_mode", 0) == 0 && attr_i(p, "pads", 0) == 0, "pool: 3x3/2, floor, no padding");
        check_wiring(&m);
        check_tensors(&m, &net);
        CHECK(m.ninits == net_num_tensors(&net), "%d initializers", m.ninits);
        CHECK(!strncmp(m.class_names, "T-shirt/top\nTrouser\n", 20) && strstr(m.class_names, "\nAnkle boot"),
              "metadata class_names: %s", m.class_names);
        CHECK(strstr(m.preprocessing, "(grey), mean 0.449, std 0.226"), /* norm_imagenet(1) */
              "metadata preprocessing: %s", m.preprocessing);
    }
    free(buf);
    net_free(&net);
}

TEST(onnx_export_alexnet_towers) {
    Net net;
    if (net_create(&net, model_find("alexnet"), 3, 10, 227, 1)) { CHECK(0, "%s", an_last_error()); return; }
    net_init(&net, 12);
    static TModel m;
    uint8_t *buf = export_and_read(&net, "anonnx.safetensors", &m);
    if (buf) {
        check_header(&m, 3, 227, 10);
        char ops[1024];
        op_sequence(&m, ops, sizeof ops);
        CHECK(!strcmp(ops, "Conv,Relu,Reshape,LRN,Reshape,MaxPool,Conv,Relu,Reshape,LRN,Reshape,MaxPool,"
                           "Conv,Relu,Conv,Relu,Conv,Relu,MaxPool,Flatten,Gemm,Relu,Gemm,Relu,Gemm,Softmax"),
              "ops: %s", ops);
        const char *convs[5] = {"conv1", "conv2", "conv3", "conv4", "conv5"};
        int groups[5] = {1, 2, 1, 2, 2}, k[5] = {11, 5, 3, 3, 3}, stride[5] = {4, 1, 1, 1, 1}, pad[5] = {0, 2, 1, 1, 1};
        for (int i = 0; i < 5; i++) {
            const TNode *c = node_out(&m, convs[i]);
            CHECK(c && !strcmp(c->op, "Conv"), "%s", convs[i]);
            if (c)
                CHECK(attr_i(c, "group", 0) == groups[i] && attr_i(c, "kernel_shape", 0) == k[i] &&
                      attr_i(c, "strides", 1) == stride[i] && attr_i(c, "pads", 2) == pad[i],
                      "%s: group %lld, kernel %lld, stride %lld, pad %lld", convs[i], (long long)attr_i(c, "group", 0),
                      (long long)attr_i(c, "kernel_shape", 0), (long long)attr_i(c, "strides", 1),
                      (long long)attr_i(c, "pads", 2));
        }
        /* LRN per tower: (batch, 96, 55, 55) -> (batch x 2, 48, 55, 55) -> LRN -> back; the paper's constants */
        const TNode *lrn = NULL;
        for (int i = 0; i < m.nnodes && !lrn; i++)
            if (!strcmp(m.nodes[i].op, "LRN")) lrn = &m.nodes[i];
        const TAttr *a = lrn ? attr(lrn, "alpha") : NULL, *b = lrn ? attr(lrn, "beta") : NULL,
                    *bias = lrn ? attr(lrn, "bias") : NULL;
        CHECK(a && b && bias && a->f == PAPER_LRN.alpha && b->f == 0.75f && bias->f == 2.0f &&
              attr_i(lrn, "size", 0) == 5, "LRN constants");
        const TNode *split = node_out(&m, lrn ? lrn->in[0] : "");
        const TInit *shape = split ? init_named(&m, split->in[1]) : NULL;
        CHECK(shape && shape->dtype == 7 && shape->raw_len == 32, "the towers' Reshape shape");
        if (shape && shape->raw_len == 32) {
            int64_t s[4];
            memcpy(s, shape->raw, 32); /* little-endian host */
            CHECK(s[0] == -1 && s[1] == 48 && s[2] == 55 && s[3] == 55, "towers shape %lld %lld %lld %lld",
                  (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
        }
        const TNode *pool = node_out(&m, "maxpool4");
        CHECK(pool && attr_i(pool, "kernel_shape", 0) == 3 && attr_i(pool, "strides", 0) == 2, "overlapping pool");
        check_wiring(&m);
        check_tensors(&m, &net);
    }
    free(buf);
    net_free(&net);
}

TEST(onnx_export_tanh_and_unsupported_layer) {
    Net net;
    const char *path = harness_path("tanh.onnx");
    if (net_create(&net, model_find("convnet4-tanh"), 3, 10, 32, 1)) { CHECK(0, "%s", an_last_error()); return; }
    net_init(&net, 13);
    OnnxSummary s;
    CHECK(onnx_export(&net, NULL, path, &s) == 0, "%s", an_last_error());
    CHECK(s.nodes == 12 && s.opset == 13 && s.params == net.nparams && s.bytes > (long long)net.nparams * 4,
          "summary: %d nodes, %zu params, %lld bytes", s.nodes, s.params, s.bytes);
    size_t n;
    uint8_t *buf = harness_read_file(path, &n);
    static TModel m;
    CHECK(buf && rd_model(buf, n, &m) == 0 && (long long)n == s.bytes, "parse");
    char ops[1024];
    op_sequence(&m, ops, sizeof ops);
    CHECK(!strcmp(ops, "Conv,Tanh,MaxPool,Conv,Tanh,MaxPool,Conv,Tanh,MaxPool,Flatten,Gemm,Softmax"), "ops: %s", ops);
    free(buf);
    net_free(&net);
    /* a layer with no ONNX form: the towers' gather */
    ModelSpec spec = {.name = "gathered", .about = "", .in_size = 4, .nlayers = 2,
                      .layers = {{.kind = LAYER_GATHER, .out = 1}, {.kind = LAYER_LINEAR, .name = "fc"}}};
    if (net_create(&net, &spec, 1, 2, 4, 1)) { CHECK(0, "%s", an_last_error()); return; }
    CHECK(onnx_export(&net, "pre", path, NULL) == -1, "a gather layer exported");
    CHECK(strstr(an_last_error(), path) && strstr(an_last_error(), "unsupported layer kind"), "%s", an_last_error());
    net_free(&net);
}

TEST(onnx_export_errors) {
    Net net;
    if (net_create(&net, model_find("convnet4"), 1, 10, 28, 1)) { CHECK(0, "%s", an_last_error()); return; }
    net_init(&net, 14);
    Norm norm = norm_imagenet(1);
    char weights[512], args[1400];
    snprintf(weights, sizeof weights, "%s", harness_path("c4err.safetensors"));
    CHECK(checkpoint_save(weights, &net, NULL, NULL, &norm, NULL) == 0, "%s", an_last_error());
    net_free(&net);
    snprintf(args, sizeof args, "export --weights %s --onnx /nonexistent-dir/out.onnx", weights);
    harness_expect_error(args, "cannot write /nonexistent-dir/out.onnx");
    snprintf(args, sizeof args, "export --weights %s --onnx %s", harness_path("missing.safetensors"),
             harness_path("m.onnx"));
    harness_expect_error(args, "missing.safetensors");
    snprintf(args, sizeof args, "export --model alexnet --weights %s --onnx %s", weights, harness_path("m.onnx"));
    harness_expect_error(args, "checkpoint is for model 'convnet4', not 'alexnet'");
    harness_expect_error("export --weigths x --onnx y", "unknown flag '--weigths' (did you mean --weights?)");
    harness_expect_error("export --onnx y", "--weights and --onnx are required");
    harness_expect_error("export --weights x", "--weights and --onnx are required");
    CHECK(harness_run("export --help") == 0 && strstr(harness_out, "opset 13"), "export --help");
}
