/* checkpoint.c: saving and loading weights and training state as safetensors (see checkpoint.h). */
#include "checkpoint.h"
#include "../util/common.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_MAX 48

/* metadata key/value pairs for st_write; the values are owned (meta_free) */
typedef struct Meta { const char *kv[2 * META_MAX + 1]; char *val[META_MAX]; int n, oom; } Meta;

static void meta_add(Meta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_add(Meta *m, const char *key, const char *fmt, ...) {
    if (m->n == META_MAX) { m->oom = 1; return; }
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    if (vasprintf(&v, fmt, ap) < 0) v = NULL, m->oom = 1;
    va_end(ap);
    if (!v) return;
    m->val[m->n] = v;
    m->kv[2 * m->n] = key;
    m->kv[2 * m->n + 1] = v;
    m->n++;
    m->kv[2 * m->n] = NULL;
}

static void meta_free(Meta *m) {
    for (int i = 0; i < m->n; i++) free(m->val[i]);
}

/* the model's description (model_print) and the classes' names, one a line, as metadata */
static void meta_model(Meta *m, const Net *net) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) { m->oom = 1; return; }
    model_print(&net->spec, f);
    fclose(f);
    meta_add(m, "model_config", "%s", text);
    free(text);
    if (!net->class_names) return;
    f = open_memstream(&text, &len);
    if (!f) { m->oom = 1; return; }
    for (int j = 0; j < net->classes; j++) {
        for (const char *c = net->class_names[j]; *c; c++) fputc(*c == '\n' || *c == '\r' ? ' ' : *c, f);
        if (j + 1 < net->classes) fputc('\n', f);
    }
    fclose(f);
    meta_add(m, "class_names", "%s", text);
    free(text);
}

int checkpoint_save(const char *path, const Net *net, const float *momentum, const TrainState *st,
                    const Norm *norm, const char *recipe) {
    return checkpoint_save_run(path, net, momentum, st, norm, recipe, NULL);
}

int checkpoint_save_run(const char *path, const Net *net, const float *momentum, const TrainState *st,
                        const Norm *norm, const char *recipe, const char *run_flags) {
    int nt = net_num_tensors(net), total = (momentum ? 2 * nt : nt) + (norm->paper ? 1 : 0);
    StTensor *t = calloc(total, sizeof *t);
    char (*names)[96] = calloc(total, sizeof *names);
    if (!t || !names) { free(t), free(names); return an_error("%s: out of memory", path); }
    for (int i = 0; i < nt; i++) {
        size_t count;
        int64_t shape[4];
        int ndim;
        const float *p = net_tensor(net, i, 0, names[i], &ndim, shape, &count);
        t[i] = (StTensor){.name = names[i], .dtype = ST_F32, .ndim = ndim, .nbytes = count * 4, .data = p};
        memcpy(t[i].shape, shape, sizeof shape);
        if (momentum) {
            t[nt + i] = t[i];
            char base[96];
            memcpy(base, names[i], sizeof base);
            snprintf(names[nt + i], 96, "momentum.%.80s", base);
            t[nt + i].name = names[nt + i];
            t[nt + i].data = momentum + (p - net->params);
        }
    }
    if (norm->paper) {
        StTensor *mi = &t[total - 1];
        *mi = (StTensor){.name = "input.mean_image", .dtype = ST_F32, .ndim = 3,
                         .nbytes = (size_t)3 * 256 * 256 * sizeof(float), .data = norm->mean_image};
        mi->shape[0] = 3, mi->shape[1] = mi->shape[2] = 256;
    }
    Meta m = {.n = 0};
    meta_add(&m, "format", "alexnet-c checkpoint 1");
    meta_add(&m, "model", "%s", net->spec.name);
    meta_model(&m, net);
    meta_add(&m, "in_size", "%d", net->in_size);
    meta_add(&m, "channels", "%d", net->in_c);
    meta_add(&m, "classes", "%d", net->classes);
    meta_add(&m, "input", "%s", norm->paper ? "paper" : "channel");
    if (norm->paper) {
        const PcaLighting *p = &norm->pca;
        meta_add(&m, "input_scale", "%a", (double)norm->scale);
        meta_add(&m, "pca_eigval", "%a,%a,%a", (double)p->eigval[0], (double)p->eigval[1], (double)p->eigval[2]);
        for (int i = 0; i < 3; i++)
            meta_add(&m, i == 0 ? "pca_eigvec0" : i == 1 ? "pca_eigvec1" : "pca_eigvec2", "%a,%a,%a",
                     (double)p->eigvec[i][0], (double)p->eigvec[i][1], (double)p->eigvec[i][2]);
    }
    meta_add(&m, "mean", "%.9g,%.9g,%.9g", norm->mean[0], norm->mean[1], norm->mean[2]);
    meta_add(&m, "std", "%.9g,%.9g,%.9g", norm->std[0], norm->std[1], norm->std[2]);
    if (st) {
        meta_add(&m, "recipe", "%s", recipe ? recipe : "paper");
        meta_add(&m, "epoch", "%d", st->epoch);
        meta_add(&m, "step_in_epoch", "%d", st->step_in_epoch);
        meta_add(&m, "step", "%ld", st->step);
        meta_add(&m, "batch", "%d", net->max_batch);
        meta_add(&m, "lr", "%a", (double)st->lr);
        meta_add(&m, "seed", "%llu", st->seed);
        meta_add(&m, "best_err", "%a", st->best_err);
        meta_add(&m, "bad_epochs", "%d", st->bad_epochs);
        meta_add(&m, "drops", "%d", st->drops);
        meta_add(&m, "loss_sum", "%a", st->loss_sum);
        meta_add(&m, "err_sum", "%a", st->err_sum);
        meta_add(&m, "seen", "%ld", st->seen);
        meta_add(&m, "seconds", "%a", st->seconds);
        if (run_flags) meta_add(&m, "train_flags", "%s", run_flags);
    }
    int rc = m.oom ? an_error("%s: out of memory", path) : st_write(path, t, total, m.kv);
    meta_free(&m);
    free(t), free(names);
    return rc;
}

static int parse3(const char *s, float v[3]) {
    return s && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3;
}

/* The shape a tensor must have, from a probe net built with the file's channels and classes. */
static int check_tensor(const char *path, const StFile *f, const char *name, int ndim, const int64_t *shape,
                        const StTensor **out) {
    const StTensor *t = st_find(f, name);
    if (!t) return an_error("%s: no tensor '%s' (is this a checkpoint of another model?)", path, name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[64] = "", want[64] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
        for (int d = 0; d < ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)shape[d]);
        return an_error("%s: tensor '%s' has shape [%s], the model needs [%s]", path, name, got, want);
    }
    if (t->dtype != ST_F32)
        return an_error("%s: tensor '%s' is %s, expected F32", path, name, st_dtype_name(t->dtype));
    *out = t;
    return 0;
}

/* The paper's input statistics: mean image tensor, scale and eigenpairs. */
static int read_paper_input(const char *path, const StFile *file, Norm *norm) {
    const int64_t shape[3] = {3, 256, 256};
    const StTensor *t = NULL;
    float scale[3];
    if (check_tensor(path, file, "input.mean_image", 3, shape, &t)) return -1;
    PcaLighting *p = &norm->pca;
    if (!parse3(st_meta(file, "pca_eigval"), p->eigval) || !parse3(st_meta(file, "pca_eigvec0"), p->eigvec[0]) ||
        !parse3(st_meta(file, "pca_eigvec1"), p->eigvec[1]) || !parse3(st_meta(file, "pca_eigvec2"), p->eigvec[2]) ||
        sscanf(st_meta(file, "input_scale") ? st_meta(file, "input_scale") : "", "%f", &scale[0]) != 1)
        return an_error("%s: incomplete input statistics in the metadata", path);
    if (!(norm->mean_image = malloc(t->nbytes))) return an_error("%s: out of memory", path);
    memcpy(norm->mean_image, t->data, t->nbytes);
    norm->paper = 1, norm->scale = scale[0];
    return 0;
}

/* Largest input side a checkpoint's metadata may ask for (the models take 224 or 227, the small
 * ones their dataset's 28 or 32); and bounds on the channels and classes read from tensor shapes. */
#define CKPT_MAX_IN_SIZE 4096
#define CKPT_MAX_CHANNELS 4096
#define CKPT_MAX_CLASSES (1 << 24)

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    buf[0] = 0;
    for (int d = 0; d < ndim && strlen(buf) + 24 < size; d++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%lld", d ? "," : "", (long long)shape[d]);
}

/* Walk the layers of spec as net_create does (shapes only, nothing allocated) for in_c channels,
 * `classes` outputs and input in_size, and check that the file holds every weight and bias tensor
 * with exactly the shape the model needs. Since each tensor's bytes lie inside the file, the
 * parameter block net_create then allocates is no larger than the file; and the activations are
 * bounded too, because the classifier's fan-in (checked here) grows with the input size. A layer
 * that gets no pixels is left to net_create, which refuses it before allocating. */
static int check_shapes(const char *path, const StFile *f, const ModelSpec *spec, int64_t in_c, int64_t classes,
                        int64_t in_size) {
    int64_t c = in_c, h = in_size, w = in_size;
    for (int i = 0; i < spec->nlayers; i++) {
        const LayerSpec *s = &spec->layers[i];
        int64_t shape[4], oc = c, oh = h, ow = w;
        int ndim = 0;
        switch (s->kind) {
        case LAYER_CONV:
            if (s->groups < 1 || c % s->groups || s->out % s->groups) return 0; /* net_create says why */
            oc = s->out;
            oh = h + 2 * s->pad < s->k ? 0 : (h + 2 * s->pad - s->k) / s->stride + 1;
            ow = w + 2 * s->pad < s->k ? 0 : (w + 2 * s->pad - s->k) / s->stride + 1;
            ndim = 4, shape[0] = s->out, shape[1] = c / s->groups, shape[2] = shape[3] = s->k;
            break;
        case LAYER_MAXPOOL:
            oh = h < s->k ? 0 : (h - s->k) / s->stride + 1;
            ow = w < s->k ? 0 : (w - s->k) / s->stride + 1;
            break;
        case LAYER_AVGPOOL: oh = ow = s->out; break;
        case LAYER_LINEAR:
            oc = s->out ? s->out : classes, oh = ow = 1;
            ndim = 2, shape[0] = oc, shape[1] = c * h * w;
            break;
        default: break;
        }
        if (oh <= 0 || ow <= 0) return 0;
        if (ndim) {
            char name[128];
            const StTensor *t;
            snprintf(name, sizeof name, "%s.weight", s->name);
            if (check_tensor(path, f, name, ndim, shape, &t)) return -1;
            snprintf(name, sizeof name, "%s.bias", s->name);
            if (check_tensor(path, f, name, 1, shape, &t)) return -1;
        }
        c = oc, h = oh, w = ow;
    }
    return 0;
}

/* "class_names" (one a line), when there are exactly `classes` of them; other counts are ignored
 * (weights of another tool may say something else) */
static int read_class_names(const char *path, const StFile *file, Net *net) {
    const char *text = st_meta(file, "class_names");
    if (!text) return 0;
    int lines = 1;
    for (const char *c = text; *c; c++) lines += *c == '\n';
    if (lines != net->classes) return 0;
    char *copy = strdup(text);
    char **names = calloc((size_t)lines, sizeof *names);
    int rc = copy && names ? 0 : an_error("%s: out of memory", path);
    char *p = copy;
    for (int j = 0; !rc && j < lines; j++) {
        names[j] = p;
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0, p = nl + 1;
    }
    if (!rc) rc = net_set_class_names(net, names);
    free(names), free(copy);
    return rc;
}

int checkpoint_load_net(const char *path, const ModelSpec *spec, int max_batch, Net *net, Norm *norm,
                        StFile *file) {
    if (st_read(path, file)) return -1;
    const char *model = st_meta(file, "model");
    if (model && strcmp(model, spec->name) != 0) {
        an_error("%s: checkpoint is for model '%s', not '%s'", path, model, spec->name);
        goto fail;
    }
    /* channels from the first layer's weights, classes from the last layer's */
    const LayerSpec *first = &spec->layers[0], *last = &spec->layers[spec->nlayers - 1];
    char name[128];
    snprintf(name, sizeof name, "%s.weight", first->name);
    const StTensor *w0 = st_find(file, name);
    snprintf(name, sizeof name, "%s.weight", last->name);
    const StTensor *wl = st_find(file, name);
    if (!w0 || !wl || w0->ndim < 2 || wl->ndim != 2) {
        an_error("%s: no tensor '%s.weight' of model %s (is this a checkpoint of another model?)", path,
                 w0 ? last->name : first->name, spec->name);
        goto fail;
    }
    /* Sizes from the file are checked before anything is allocated from them. */
    int64_t in_c = w0->shape[1], classes = wl->shape[0];
    if (in_c < 1 || in_c > CKPT_MAX_CHANNELS || classes < 2 || classes > CKPT_MAX_CLASSES) {
        char got0[64], gotl[64];
        shape_text(got0, sizeof got0, w0->ndim, w0->shape);
        shape_text(gotl, sizeof gotl, wl->ndim, wl->shape);
        an_error("%s: tensor shapes %s.weight [%s] and %s.weight [%s] give %lld input channels and %lld classes "
                 "(expected 1..%d and 2..%d)", path, first->name, got0, last->name, gotl, (long long)in_c,
                 (long long)classes, CKPT_MAX_CHANNELS, CKPT_MAX_CLASSES);
        goto fail;
    }
    int in_size = spec->in_size;
    const char *s = st_meta(file, "in_size");
    if (!spec->in_size) {
        char *end = NULL;
        long v = s ? strtol(s, &end, 10) : 0;
        if (!s || !*s || *end || v < 1 || v > CKPT_MAX_IN_SIZE) {
            char shown[32];
            snprintf(shown, sizeof shown, "%s", s ? s : "");
            an_error("%s: %s input size in the checkpoint metadata ('%s%s'; expected 1..%d)", path,
                     s ? "bad" : "no", shown, s && strlen(s) >= sizeof shown ? "..." : "", CKPT_MAX_IN_SIZE);
            goto fail;
        }
        in_size = (int)v;
    }
    if (check_shapes(path, file, spec, in_c, classes, in_size)) goto fail;
    if (net_create(net, spec, (int)in_c, (int)classes, in_size, max_batch)) {
        char why[512];
        snprintf(why, sizeof why, "%s", an_last_error());
        an_error("%s: %s", path, why);
        goto fail;
    }
    for (int i = 0; i < net_num_tensors(net); i++) {
        int ndim;
        int64_t shape[4];
        size_t count;
        float *dst = net_tensor(net, i, 0, name, &ndim, shape, &count);
        const StTensor *t;
        if (check_tensor(path, file, name, ndim, shape, &t)) { net_free(net); goto fail; }
        memcpy(dst, t->data, count * sizeof(float));
    }
    *norm = norm_imagenet(net->in_c);
    float mean[3], std[3];
    if (parse3(st_meta(file, "mean"), mean) && parse3(st_meta(file, "std"), std)) {
        memcpy(norm->mean, mean, sizeof mean);
        memcpy(norm->std, std, sizeof std);
    }
    const char *input = st_meta(file, "input");
    if ((input && strcmp(input, "paper") == 0 && read_paper_input(path, file, norm)) ||
        read_class_names(path, file, net)) {
        net_free(net);
        goto fail;
    }
    return 0;
fail:
    st_free(file);
    return -1;
}

static int meta_int(const StFile *f, const char *key, long *v) {
    const char *s = st_meta(f, key);
    char *end;
    if (!s) return -1;
    *v = strtol(s, &end, 10);
    return *end ? -1 : 0;
}

static int meta_double(const StFile *f, const char *key, double *v) {
    const char *s = st_meta(f, key);
    char *end;
    if (!s) return -1;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

int checkpoint_read_state(const char *path, const StFile *file, const Net *net, float *momentum,
                          TrainState *st) {
    long epoch, sie, step, bad, drops, seen;
    double lr, best, loss_sum, err_sum, seconds;
    const char *seed = st_meta(file, "seed");
    if (meta_int(file, "epoch", &epoch) || meta_int(file, "step_in_epoch", &sie) || meta_int(file, "step", &step) ||
        meta_int(file, "bad_epochs", &bad) || meta_int(file, "drops", &drops) || meta_int(file, "seen", &seen) ||
        meta_double(file, "lr", &lr) || meta_double(file, "best_err", &best) ||
        meta_double(file, "loss_sum", &loss_sum) || meta_double(file, "err_sum", &err_sum) ||
        meta_double(file, "seconds", &seconds) || !seed)
        return an_error("%s: not a training checkpoint (no training state in its metadata)", path);
    /* counts within what a run can reach (so later arithmetic on them cannot overflow), finite numbers */
    const long big = 1L << 30, huge = 1L << 50;
    const char *field = epoch < 0 || epoch > big ? "epoch"
                      : sie < 0 || sie > big ? "step_in_epoch"
                      : step < 0 || step > huge ? "step"
                      : bad < 0 || bad > big ? "bad_epochs"
                      : drops < 0 || drops > big ? "drops"
                      : seen < 0 || seen > huge ? "seen"
                      : !(lr > 0 && lr < 1e30) ? "lr"
                      : !isfinite(best) ? "best_err"
                      : !isfinite(loss_sum) ? "loss_sum"
                      : !isfinite(err_sum) ? "err_sum"
                      : !isfinite(seconds) ? "seconds"
                      : NULL;
    if (field) {
        char shown[48];
        snprintf(shown, sizeof shown, "%s", st_meta(file, field));
        return an_error("%s: corrupt training state: %s is '%s'", path, field, shown);
    }
    long batch = 0; /* the position inside an epoch is counted in batches of the saved size */
    if (sie > 0 && (meta_int(file, "batch", &batch) || batch != net->max_batch))
        return an_error("%s: stopped in the middle of an epoch with batch %ld; resume with --batch %ld", path,
                        batch, batch);
    *st = (TrainState){.epoch = (int)epoch, .step_in_epoch = (int)sie, .step = step, .lr = (float)lr,
                       .seed = strtoull(seed, NULL, 10), .best_err = best, .bad_epochs = (int)bad,
                       .drops = (int)drops, .loss_sum = loss_sum, .err_sum = err_sum, .seen = seen,
                       .seconds = seconds};
    char name[128], mname[140];
    for (int i = 0; i < net_num_tensors(net); i++) {
        int ndim;
        int64_t shape[4];
        size_t count;
        float *p = net_tensor(net, i, 0, name, &ndim, shape, &count);
        snprintf(mname, sizeof mname, "momentum.%s", name);
        const StTensor *t;
        if (check_tensor(path, file, mname, ndim, shape, &t)) return -1;
        memcpy(momentum + (p - net->params), t->data, count * sizeof(float));
    }
    return 0;
}

const ModelSpec *checkpoint_model(const char *path) {
    enum { CACHE = 16 };
    static struct { char *path; ModelSpec spec; } cache[CACHE];
    static int ncache;
    for (int i = 0; i < ncache; i++)
        if (!strcmp(cache[i].path, path)) return &cache[i].spec;
    StFile f;
    if (st_read_header(path, &f)) return NULL;
    const char *name = st_meta(&f, "model"), *text = st_meta(&f, "model_config");
    const ModelSpec *spec = NULL;
    if (!name) an_error("%s: the file does not name its model (weights of another tool?): give --model", path);
    else if (model_builtin_text(name)) spec = model_find(name);
    else if (!text)
        an_error("%s: model '%s' is not built in and the file holds no description of it: give --model FILE", path,
                 name);
    else if (ncache == CACHE) an_error("%s: too many description models at once", path);
    else if (model_parse(text, path, &cache[ncache].spec) == 0 && (cache[ncache].path = strdup(path)))
        spec = &cache[ncache++].spec;
    st_free(&f);
    return spec;
}
