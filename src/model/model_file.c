/* model_file.c: network description files (models/NAME.cfg, docs/FORMATS.md): one section per layer,
 * as darknet's cfg and cuda-convnet's layer files, read into a ModelSpec and written back.
 *
 *   [model]   name, about, input (0: the dataset's size), input_scale (0: 1)
 *   [conv]    name, filters, size, stride (1), pad (0), groups (1), init_std (0: He), bias (0)
 *   [linear]  name, units (a number, or `classes`: the dataset's), init_std, bias
 *   [relu] [tanh]
 *   [lrn]     groups (1): windows within that many groups of channels (the paper's towers: 2)
 *   [maxpool] size, stride
 *   [avgpool] out (adaptive average pooling to out x out)
 *   [dropout] p
 * Lines: `key = value`, `# comments`, blank lines. Every error names the file and line. */
#include "model.h"
#include "../util/common.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *section; LayerKind kind; } KINDS[] = {
    {"conv", LAYER_CONV},       {"linear", LAYER_LINEAR},   {"relu", LAYER_RELU},       {"tanh", LAYER_TANH},
    {"lrn", LAYER_LRN},         {"maxpool", LAYER_MAXPOOL}, {"avgpool", LAYER_AVGPOOL}, {"dropout", LAYER_DROPOUT},
};
enum { NKINDS = sizeof KINDS / sizeof KINDS[0] };

static const char *section_of(LayerKind k) {
    for (int i = 0; i < NKINDS; i++)
        if (KINDS[i].kind == k) return KINDS[i].section;
    return "?";
}

/* a name the spec owns (model_spec_free), replacing the one it had */
static const char *keep_in(const char **slot, const char *s) {
    free((char *)*slot);
    *slot = strdup(s);
    return *slot ? *slot : "";
}
#define keep_name(slot, s) keep_in(&(slot), s)

static int bad(const char *origin, int line, const char *fmt, const char *a, const char *b) {
    char what[256];
    snprintf(what, sizeof what, fmt, a, b);
    return an_error("%s:%d: %s", origin, line, what);
}

static int parse_int(const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static int parse_float(const char *v, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

/* key = value of the current section into spec (layer < 0: [model]) */
static int set_key(ModelSpec *spec, int layer, const char *key, const char *v, const char *origin, int line) {
    if (layer < 0) {
        if (!strcmp(key, "name")) keep_name(spec->name, v);
        else if (!strcmp(key, "about")) keep_name(spec->about, v);
        else if (!strcmp(key, "input")) {
            if (parse_int(v, 0, 4096, &spec->in_size)) return bad(origin, line, "input must be 0-4096, not '%s'%s", v, "");
        } else if (!strcmp(key, "input_scale")) {
            if (parse_float(v, 0.0f, 1e6f, &spec->paper_input_scale))
                return bad(origin, line, "input_scale must be a number from 0, not '%s'%s", v, "");
        } else return bad(origin, line, "unknown key '%s' in [model] (name, about, input, input_scale)%s", key, "");
        return 0;
    }
    LayerSpec *l = &spec->layers[layer];
    const char *sec = section_of(l->kind);
    int ok = 1, *ip = NULL, lo = 1, hi = 1 << 20;
    float *fp = NULL, flo = 0.0f, fhi = 1e6f;
    switch (l->kind) {
    case LAYER_CONV:
    case LAYER_LINEAR:
        if (!strcmp(key, "name")) { keep_name(l->name, v); return 0; }
        if (!strcmp(key, "init_std")) fp = &l->w_std;
        else if (!strcmp(key, "bias")) fp = &l->b_init, flo = -1e6f;
        else if (l->kind == LAYER_LINEAR && !strcmp(key, "units")) {
            if (!strcmp(v, "classes")) { l->out = 0; return 0; }
            ip = &l->out;
        } else if (l->kind == LAYER_CONV && !strcmp(key, "filters")) ip = &l->out;
        else if (l->kind == LAYER_CONV && !strcmp(key, "size")) ip = &l->k, hi = 64;
        else if (l->kind == LAYER_CONV && !strcmp(key, "stride")) ip = &l->stride, hi = 64;
        else if (l->kind == LAYER_CONV && !strcmp(key, "pad")) ip = &l->pad, lo = 0, hi = 64;
        else if (l->kind == LAYER_CONV && !strcmp(key, "groups")) ip = &l->groups, hi = 4096;
        else ok = 0;
        break;
    case LAYER_LRN:
        if (!strcmp(key, "groups")) ip = &l->groups, hi = 4096;
        else if (!strcmp(key, "size")) ip = &l->k, hi = 63;
        else if (!strcmp(key, "alpha")) fp = &l->lrn_alpha, flo = 1e-12f;
        else if (!strcmp(key, "beta")) fp = &l->lrn_beta, flo = 1e-6f, fhi = 16.0f;
        else if (!strcmp(key, "k")) fp = &l->lrn_k, flo = 1e-6f;
        else ok = 0;
        break;
    case LAYER_MAXPOOL:
        if (!strcmp(key, "size")) ip = &l->k, hi = 64;
        else if (!strcmp(key, "stride")) ip = &l->stride, hi = 64;
        else ok = 0;
        break;
    case LAYER_AVGPOOL:
        if (!strcmp(key, "out")) ip = &l->out, hi = 4096;
        else ok = 0;
        break;
    case LAYER_DROPOUT:
        if (!strcmp(key, "p")) fp = &l->p, fhi = 0.999f;
        else ok = 0;
        break;
    default: ok = 0; break;
    }
    if (!ok) return bad(origin, line, "unknown key '%s' in [%s]", key, sec);
    if (ip && parse_int(v, lo, hi, ip)) {
        char range[64];
        snprintf(range, sizeof range, "a whole number %d-%d", lo, hi);
        return bad(origin, line, "'%s' must be %s", key, range);
    }
    if (fp && parse_float(v, flo, fhi, fp)) return bad(origin, line, "'%s' must be a number in range, not '%s'", key, v);
    if (l->kind == LAYER_LRN && ip == &l->k && l->k % 2 == 0)
        return bad(origin, line, "[lrn] size must be odd (a window centred on its channel), not %s%s", v, "");
    return 0;
}

/* what a finished layer section must hold */
static int check_layer(const ModelSpec *spec, int layer, const char *origin, int line) {
    const LayerSpec *l = &spec->layers[layer];
    const char *sec = section_of(l->kind);
    if ((l->kind == LAYER_CONV || l->kind == LAYER_LINEAR) && !l->name)
        return bad(origin, line, "[%s] needs a name (its tensors are NAME.weight and NAME.bias)%s", sec, "");
    if (l->kind == LAYER_CONV && (!l->out || !l->k))
        return bad(origin, line, "[conv] %s needs filters and size%s", l->name, "");
    if (l->kind == LAYER_CONV && l->out % l->groups) {
        char what[96];
        snprintf(what, sizeof what, "%d filters do not split into %d groups", l->out, l->groups);
        return bad(origin, line, "[conv] %s: %s", l->name, what);
    }
    if (l->kind == LAYER_MAXPOOL && (!l->k || !l->stride)) return bad(origin, line, "[maxpool] needs size and stride%s%s", "", "");
    if (l->kind == LAYER_AVGPOOL && !l->out) return bad(origin, line, "[avgpool] needs out%s%s", "", "");
    for (int i = 0; i < layer; i++) /* two layers of one name would share their tensors' names */
        if (l->name && spec->layers[i].name && !strcmp(spec->layers[i].name, l->name))
            return bad(origin, line, "two layers are named '%s'%s", l->name, "");
    return 0;
}

void model_spec_free(ModelSpec *spec) {
    if (!spec->owns_names) return;
    free((char *)spec->name), free((char *)spec->about);
    for (int i = 0; i < spec->nlayers; i++) free((char *)spec->layers[i].name);
    memset(spec, 0, sizeof *spec);
}

static int parse(const char *text, const char *origin, ModelSpec *out);

int model_parse(const char *text, const char *origin, ModelSpec *out) {
    memset(out, 0, sizeof *out);
    out->owns_names = 1;
    if (parse(text, origin, out)) {
        model_spec_free(out);
        return -1;
    }
    return 0;
}

static int parse(const char *text, const char *origin, ModelSpec *out) {
    int layer = -2, line = 0, section_line = 0; /* -2: before any section, -1: [model] */
    const char *p = text;
    while (*p) {
        char buf[512];
        size_t len = strcspn(p, "\n");
        line++;
        if (len >= sizeof buf) return bad(origin, line, "line longer than %s characters%s", "511", "");
        memcpy(buf, p, len);
        buf[len] = 0;
        p += len + (p[len] == '\n');
        char *s = buf, *hash = strchr(s, '#');
        if (hash) *hash = 0;
        while (isspace((unsigned char)*s)) s++;
        for (char *e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);) *--e = 0;
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1]) return bad(origin, line, "bad section line '%s'%s", s, "");
            *close = 0;
            if (layer >= 0 && check_layer(out, layer, origin, section_line)) return -1;
            section_line = line;
            if (!strcmp(s + 1, "model")) {
                if (layer != -2) return bad(origin, line, "[model] must come first, once%s%s", "", "");
                layer = -1;
                continue;
            }
            int kind = -1;
            for (int i = 0; i < NKINDS; i++)
                if (!strcmp(s + 1, KINDS[i].section)) kind = (int)KINDS[i].kind;
            if (kind < 0)
                return bad(origin, line, "unknown section [%s] (model, conv, linear, relu, tanh, lrn, maxpool, avgpool, "
                           "dropout)%s", s + 1, "");
            if (layer == -2) return bad(origin, line, "the file must start with [model]%s%s", "", "");
            if (out->nlayers == MAX_LAYERS) return bad(origin, line, "more than %s layers%s", "32", "");
            layer = out->nlayers++;
            out->layers[layer] = (LayerSpec){.kind = (LayerKind)kind, .stride = 1, .groups = 1};
            if (kind == LAYER_MAXPOOL) out->layers[layer].stride = 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return bad(origin, line, "expected key = value, got '%s'%s", s, "");
        char *key = s, *v = eq + 1;
        *eq = 0;
        for (char *e = key + strlen(key); e > key && isspace((unsigned char)e[-1]);) *--e = 0;
        while (isspace((unsigned char)*v)) v++;
        if (layer == -2) return bad(origin, line, "the file must start with [model]%s%s", "", "");
        if (set_key(out, layer, key, v, origin, line)) return -1;
    }
    if (layer >= 0 && check_layer(out, layer, origin, section_line)) return -1;
    if (layer == -2 || !out->name) return an_error("%s: no [model] section with a name", origin);
    if (!out->nlayers || out->layers[out->nlayers - 1].kind != LAYER_LINEAR)
        return an_error("%s: the last layer must be the [linear] classifier (units = classes)", origin);
    if (!out->about) keep_name(out->about, "");
    return 0;
}

static void put_float(FILE *f, const char *key, float v) { fprintf(f, "%s = %.9g\n", key, v); }

void model_print(const ModelSpec *spec, FILE *f) {
    fprintf(f, "[model]\nname = %s\n", spec->name);
    if (spec->about && *spec->about) fprintf(f, "about = %s\n", spec->about);
    fprintf(f, "input = %d\n", spec->in_size);
    if (spec->paper_input_scale > 0.0f) put_float(f, "input_scale", spec->paper_input_scale);
    for (int i = 0; i < spec->nlayers; i++) {
        const LayerSpec *l = &spec->layers[i];
        fprintf(f, "%s[%s]\n", l->kind == LAYER_CONV || l->kind == LAYER_LINEAR ? "\n" : "", section_of(l->kind));
        switch (l->kind) {
        case LAYER_CONV:
            fprintf(f, "name = %s\nfilters = %d\nsize = %d\nstride = %d\npad = %d\ngroups = %d\n", l->name, l->out, l->k,
                    l->stride, l->pad, l->groups);
            put_float(f, "init_std", l->w_std);
            put_float(f, "bias", l->b_init);
            break;
        case LAYER_LINEAR:
            fprintf(f, "name = %s\n", l->name);
            if (l->out) fprintf(f, "units = %d\n", l->out);
            else fprintf(f, "units = classes\n");
            put_float(f, "init_std", l->w_std);
            put_float(f, "bias", l->b_init);
            break;
        case LAYER_LRN: {
            LrnParams p = layer_lrn(l);
            if (l->groups > 1) fprintf(f, "groups = %d\n", l->groups);
            if (p.size != PAPER_LRN.size) fprintf(f, "size = %d\n", p.size);
            if (p.alpha != PAPER_LRN.alpha) put_float(f, "alpha", p.alpha);
            if (p.beta != PAPER_LRN.beta) put_float(f, "beta", p.beta);
            if (p.k != PAPER_LRN.k) put_float(f, "k", p.k);
            break;
        }
        case LAYER_MAXPOOL: fprintf(f, "size = %d\nstride = %d\n", l->k, l->stride); break;
        case LAYER_AVGPOOL: fprintf(f, "out = %d\n", l->out); break;
        case LAYER_DROPOUT: put_float(f, "p", l->p); break;
        default: break;
        }
    }
}

int model_load_file(const char *path, ModelSpec *out) {
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return an_error("%s: cannot open the model description: %s", path, strerror(errno));
    char *text = malloc(1 << 16);
    if (!text) { fclose(f); return an_error("out of memory"); }
    n = fread(text, 1, (1 << 16) - 1, f);
    int more = fgetc(f) != EOF;
    fclose(f);
    text[n] = 0;
    int rc = more ? an_error("%s: a model description over 64 KB", path)
             : strlen(text) != n ? an_error("%s: not a text file (a NUL byte)", path)
                                 : model_parse(text, path, out);
    free(text);
    return rc;
}
