/* cmd_features.c: `alexnet features` (a layer's activations of every image of a split, to a
 * safetensors file) and `alexnet neighbours` (the paper's Figure 4: query images beside the
 * images whose features are nearest in Euclidean distance, drawn as a PNG). */
#include "args.h"
#include "commands.h"
#include "../data/dataset.h"
#include "../data/image.h"
#include "../data/loader.h"
#include "../train/checkpoint.h"
#include "../train/safetensors.h"
#include "../util/common.h"
#include "../util/png.h"
#include <math.h>
#include <omp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *FEATURES_HELP =
    "usage: alexnet features --weights FILE --data PATH --out FILE [--layer NAME] [--split train|val]\n"
    "                        [--model NAME] [--limit N] [--val-split F]\n"
    "\n"
    "Writes the activations of one layer (after its ReLU) for every image of a split, centre crop,\n"
    "as safetensors: features F32 (images, units), index I32 (each image's place in the split),\n"
    "labels I32; the metadata names the model, layer, weights, data and split. The paper's Figure 4\n"
    "used the last hidden layer (fc7, 4096 units). Images that cannot be read are left out.\n"
    "  --layer NAME   a layer with weights (default: the last hidden one, fc7 for alexnet)\n"
    "  --split S      train (default) or val       --limit N   the first N images only\n"
    "  --val-split F  a folder without val/: its fixed held-out share of train/ (as train --val-split F)\n";

static const char *NEIGHBOURS_HELP =
    "usage: alexnet neighbours --features FILE --query IMAGE [--query IMAGE...] [--k N] --out PNG\n"
    "\n"
    "For each query image, its features from the same network and layer (the weights the features\n"
    "file names), and the k images of the features file nearest to it in Euclidean distance: printed\n"
    "(rank, distance, index, class, path) and drawn, one row per query: the query, a gap, then its\n"
    "neighbours, nearest first (the paper's Figure 4).\n"
    "  --k N   neighbours per query (default 6)\n";

/* A model from --model or the checkpoint's metadata, the net (batch max_batch) and its input statistics. */
static int load_weights(const char *weights, const char *model, int max_batch, Net *net, Norm *norm) {
    StFile file;
    const ModelSpec *spec = model ? model_find(model) : checkpoint_model(weights);
    if (!spec || checkpoint_load_net(weights, spec, max_batch, net, norm, &file)) return -1;
    st_free(&file);
    return 0;
}

int cmd_features(int argc, char **argv) {
    const char *weights = NULL, *data = NULL, *out = NULL, *layer = NULL, *split = "train", *model = NULL;
    int limit = 0, limit_given = 0, help = 0;
    float val_split = 0.0f;
    ArgSpec specs[] = {{"--weights", ARG_STR, &weights, NULL}, {"--data", ARG_STR, &data, NULL},
                       {"--out", ARG_STR, &out, NULL},         {"--layer", ARG_STR, &layer, NULL},
                       {"--split", ARG_STR, &split, NULL},     {"--model", ARG_STR, &model, NULL},
                       {"--limit", ARG_INT, &limit, &limit_given}, {"--val-split", ARG_FLOAT, &val_split, NULL}};
    if (args_parse("features", argc, argv, 2, specs, 8, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(FEATURES_HELP, stdout); return 0; }
    if (!weights || !data || !out) return an_error("features: --weights, --data and --out are required"), fail();
    if (strcmp(split, "train") && strcmp(split, "val")) return an_error("features: --split must be train or val"), fail();
    if (limit_given && arg_range("features", "--limit", limit, 1, LONG_MAX)) return fail(); /* none: every image */
    Net net;
    Norm norm;
    if (load_weights(weights, model, 64, &net, &norm)) return fail();
    Dataset ds = {0};
    int rc = dataset_load_split(&ds, data, !strcmp(split, "train"), val_split, DATASET_SPLIT_SEED);
    int at = rc ? -1 : net_feature_layer(&net, layer, "features");
    if (at < 0) rc = -1;
    int count = !rc && limit && limit < ds.n ? limit : ds.n;
    const Layer *fl = at >= 0 ? &net.layers[at] : NULL;
    long dim = fl ? (long)fl->out_c * fl->out_h * fl->out_w : 0;
    float *feat = NULL;
    int32_t *index = NULL, *labels = NULL, *order = NULL;
    if (!rc && (!(feat = malloc((size_t)(count ? count : 1) * dim * sizeof(float))) ||
                !(index = malloc((size_t)(count ? count : 1) * sizeof(int32_t))) ||
                !(labels = malloc((size_t)(count ? count : 1) * sizeof(int32_t))) ||
                !(order = malloc((size_t)(count ? count : 1) * sizeof(int32_t)))))
        rc = an_error("out of memory (%d x %ld features)", count, dim);
    for (int i = 0; !rc && i < count; i++) order[i] = i;
    Loader *loader = NULL;
    LoaderConfig lc = {.ds = &ds, .indices = order, .count = count, .batch = net.max_batch, .mode = LOADER_TEST,
                       .threads = omp_get_max_threads(), .prefetch = 2,
                       .input = norm_input_config(&norm, net.in_c, net.in_size, 0, 0, 0.0f)};
    if (!rc && count && loader_start(&loader, &lc)) rc = -1;
    long done = 0;
    double t0 = an_now();
    Batch *b;
    while (!rc && loader && (b = loader_next(loader))) {
        if (net_set_input(&net, b->x, b->n) || !net_forward(&net, b->n, 0, 0)) rc = -1;
        for (int i = 0; !rc && i < b->n; i++) {
            memcpy(feat + (size_t)done * dim, fl->out + (size_t)i * dim, (size_t)dim * sizeof(float));
            index[done] = b->example[i], labels[done] = b->labels[i], done++;
        }
        loader_release(loader, b);
    }
    if (!rc && loader && loader_error(loader)) rc = an_error("%s", loader_error(loader));
    int skipped = loader ? loader_skipped(loader) : 0;
    loader_stop(loader);
    if (!rc) {
        StTensor t[3] = {{"features", ST_F32, 2, {done, dim}, (size_t)done * dim * 4, feat},
                         {"index", ST_I32, 1, {done}, (size_t)done * 4, index},
                         {"labels", ST_I32, 1, {done}, (size_t)done * 4, labels}};
        char vs[32];
        snprintf(vs, sizeof vs, "%.9g", val_split);
        const char *meta[] = {"model", net.spec.name, "layer", fl->spec->name ? fl->spec->name : net.layers[at].spec->name,
                              "weights", weights, "data", data, "split", split, "val_split", vs, NULL};
        for (int i = at; i >= 0; i--) /* the layer with weights the feature comes from */
            if (net.layers[i].w_size) { meta[3] = net.layers[i].spec->name; break; }
        rc = st_write(out, t, 3, meta);
        if (!rc)
            printf("%s: %ld images x %ld units of %s (%s split of %s; %.0f images/s)%s\n", out, done, dim, meta[3], split,
                   data, done / (an_now() - t0), skipped ? "; some files could not be read and were left out" : "");
    }
    free(feat), free(index), free(labels), free(order);
    dataset_free(&ds);
    net_free(&net);
    norm_free(&norm);
    return rc ? fail() : 0;
}

/* ---- neighbours ---- */

enum { THUMB = 96, PAD = 4, QUERY_GAP = 12, MAX_QUERIES = 64 };

/* planar (3, s, s) RGB into the sheet at (x0, y0) as a THUMB x THUMB box average */
static void put_thumb(uint8_t *sheet, int width, int x0, int y0, const uint8_t *planar, int s) {
    for (int y = 0; y < THUMB; y++)
        for (int x = 0; x < THUMB; x++) {
            int ya = y * s / THUMB, yb = (y + 1) * s / THUMB, xa = x * s / THUMB, xb = (x + 1) * s / THUMB;
            for (int c = 0; c < 3; c++) {
                long sum = 0, n = 0;
                for (int yy = ya; yy < (yb > ya ? yb : ya + 1); yy++)
                    for (int xx = xa; xx < (xb > xa ? xb : xa + 1); xx++) sum += planar[((size_t)c * s + yy) * s + xx], n++;
                sheet[((size_t)(y0 + y) * width + x0 + x) * 3 + c] = (uint8_t)((sum + n / 2) / n);
            }
        }
}

int cmd_neighbours(int argc, char **argv) {
    const char *features = NULL, *out = NULL, *weights = NULL, *queries[MAX_QUERIES];
    int k = 6, nq = 0, help = 0;
    ArgStrList ql = {queries, MAX_QUERIES, &nq};
    ArgSpec specs[] = {{"--features", ARG_STR, &features, NULL}, {"--query", ARG_STRLIST, &ql, NULL},
                       {"--k", ARG_INT, &k, NULL}, {"--out", ARG_STR, &out, NULL}, {"--weights", ARG_STR, &weights, NULL}};
    if (args_parse("neighbours", argc, argv, 2, specs, 5, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(NEIGHBOURS_HELP, stdout); return 0; }
    if (!features || !nq || !out) return an_error("neighbours: --features, --query and --out are required"), fail();
    if (k < 1 || k > 100) return an_error("neighbours: --k must be 1-100"), fail();
    StFile f;
    if (st_read(features, &f)) return fail();
    const StTensor *ft = NULL, *it = NULL;
    for (int i = 0; i < f.n; i++) {
        if (!strcmp(f.tensors[i].name, "features") && f.tensors[i].dtype == ST_F32 && f.tensors[i].ndim == 2) ft = &f.tensors[i];
        if (!strcmp(f.tensors[i].name, "index") && f.tensors[i].dtype == ST_I32 && f.tensors[i].ndim == 1) it = &f.tensors[i];
    }
    const char *model = st_meta(&f, "model"), *layer = st_meta(&f, "layer"), *data = st_meta(&f, "data"),
               *split = st_meta(&f, "split");
    if (!weights) weights = st_meta(&f, "weights");
    if (!ft || !it || it->shape[0] != ft->shape[0] || !model || !layer || !data || !split || !weights) {
        st_free(&f);
        return an_error("%s: not a features file of alexnet features (tensors features, index; model, layer, "
                        "weights, data, split)", features), fail();
    }
    long n = (long)ft->shape[0], dim = (long)ft->shape[1];
    if (k > n) k = (int)n;
    Net net;
    Norm norm;
    Dataset ds = {0};
    int rc = load_weights(weights, model, 1, &net, &norm), loaded = !rc;
    int at = rc ? -1 : net_feature_layer(&net, layer, "features");
    if (!rc && at < 0) rc = -1;
    if (!rc && (long)net.layers[at].out_c * net.layers[at].out_h * net.layers[at].out_w != dim)
        rc = an_error("%s: %ld units per image, but layer %s of %s has %d", features, dim, layer, weights,
                      net.layers[at].out_c * net.layers[at].out_h * net.layers[at].out_w);
    const char *vs = st_meta(&f, "val_split"); /* the same images as the features (absent before 2026-12-02: 0) */
    float val_split = vs ? strtof(vs, NULL) : 0.0f;
    if (!rc) rc = dataset_load_split(&ds, data, !strcmp(split, "train"), val_split, DATASET_SPLIT_SEED);
    int width = PAD + THUMB + QUERY_GAP + k * (THUMB + PAD), height = PAD + nq * (THUMB + PAD);
    uint8_t *sheet = rc ? NULL : malloc((size_t)width * height * 3), *pix = malloc((size_t)3 * 256 * 256);
    float *q = malloc((size_t)dim * sizeof(float));
    double *dist = malloc((size_t)(n ? n : 1) * sizeof(double));
    int *best = malloc((size_t)k * sizeof(int));
    if (!rc && (!sheet || !pix || !q || !dist || !best)) rc = an_error("out of memory");
    if (!rc) memset(sheet, 255, (size_t)width * height * 3);
    const float *all = ft->data;
    const int32_t *idx = it->data;
    for (int r = 0; !rc && r < nq; r++) {
        if (image_input(&net, &norm, queries[r], net.input) || !net_forward(&net, 1, 0, 0)) { rc = -1; break; }
        memcpy(q, net.layers[at].out, (size_t)dim * sizeof(float));
        for (long i = 0; i < n; i++) {
            double s = 0.0;
            for (long j = 0; j < dim; j++) {
                double e = (double)all[i * dim + j] - q[j];
                s += e * e;
            }
            dist[i] = sqrt(s);
        }
        for (int m = 0; m < k; m++) { /* the k smallest, nearest first */
            int arg = -1;
            for (long i = 0; i < n; i++) {
                int taken = 0;
                for (int p = 0; p < m; p++) taken |= best[p] == i;
                if (!taken && (arg < 0 || dist[i] < dist[arg])) arg = (int)i;
            }
            best[m] = arg;
        }
        Image img; /* the query as the paper shows it: its centre square */
        if (image_load(queries[r], &img)) { rc = -1; break; }
        rc = image_resize_center_crop(&img, 256, 256, pix);
        image_free(&img);
        if (rc) { rc = an_error("%s: out of memory", queries[r]); break; }
        int y0 = PAD + r * (THUMB + PAD);
        put_thumb(sheet, width, PAD, y0, pix, 256);
        printf("%s\n", queries[r]);
        for (int m = 0; m < k && !rc; m++) {
            int e = idx[best[m]];
            if (e < 0 || e >= ds.n) { rc = an_error("%s: index %d outside the %s split (%d images)", features, e, split, ds.n); break; }
            if (dataset_get_base(&ds, e, pix)) { rc = -1; break; }
            put_thumb(sheet, width, PAD + THUMB + QUERY_GAP + m * (THUMB + PAD), y0, pix, 256);
            const char *cls = ds.class_names && ds.labels ? ds.class_names[ds.labels[e]] : NULL;
            printf("%d %.4f %d %s %s\n", m + 1, dist[best[m]], e, cls ? cls : "-", ds.paths ? ds.paths[e] : "-");
        }
    }
    if (!rc) rc = png_write_rgb(out, sheet, width, height);
    if (!rc) printf("%s: %d queries x %d neighbours by %s (%ld images), %dx%d pixels\n", out, nq, k, layer, n, width, height);
    free(sheet), free(pix), free(q), free(dist), free(best);
    dataset_free(&ds);
    if (loaded) net_free(&net), norm_free(&norm);
    st_free(&f);
    return rc ? fail() : 0;
}
