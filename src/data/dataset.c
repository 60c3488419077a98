/* dataset.c: the one entry point to every dataset kind: detects which kind a folder holds (or that
 * the path is a shard file), dispatches to idx.c, cifar10.c, folder.c or shard.c, frees datasets,
 * and hands out single images at the size and channel count the network wants (resizing, decoding
 * and centre-cropping), and the paper's 256x256 base images. */
#include "dataset.h"
#include "data_internal.h"
#include "image.h"
#include "shard.h"
#include "../util/common.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int data_path_join(char *out, size_t n, const char *dir, const char *name) {
    int len = snprintf(out, n, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= n) return an_error("%s/%s: path too long", dir, name);
    return 0;
}

int data_path_kind(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) return 1;
    return S_ISREG(st.st_mode) ? 2 : 0;
}

static int shard_load(Dataset *ds, const char *path, int train);

int dataset_load(Dataset *ds, const char *path, int train) {
    return dataset_load_split(ds, path, train, 0.0f, 0);
}

/* The error for --val-split on a dataset that brings its own validation or test split. */
static int split_refused(const char *path, const char *what) {
    return an_error("%s: --val-split is for image folders (train/CLASS/IMAGE without val/), not %s", path,
                    what);
}

int dataset_load_split(Dataset *ds, const char *path, int train, float val_split, unsigned long long seed) {
    memset(ds, 0, sizeof *ds);
    if (!(val_split >= 0.0f && val_split < 1.0f)) /* NaN too */
        return an_error("--val-split %g: expected a fraction in [0, 1) of train/ (e.g. 0.1 holds out 10%%)",
                        (double)val_split);
    int held_out = val_split > 0.0f;
    struct stat st;
    if (!path || !*path) return an_error("dataset: no folder given");
    if (stat(path, &st) != 0) return an_error("%s: no such folder", path);
    if (S_ISREG(st.st_mode) && shard_is_file(path)) {
        if (held_out) return split_refused(path, "shard files (they hold their own validation split)");
        return shard_load(ds, path, train);
    }
    if (!S_ISDIR(st.st_mode)) return an_error("%s: not a folder or shard file", path);
    int rc;
    if (idx_detect(path))
        rc = held_out ? split_refused(path, "IDX files (they have their own test split)") : idx_load(ds, path, train);
    else if (cifar10_detect(path))
        rc = held_out ? split_refused(path, "CIFAR-10 files (they have their own test batch)")
                      : cifar10_load(ds, path, train);
    else if (folder_detect(path))
        rc = held_out ? folder_load_split(ds, path, train, val_split, (uint64_t)seed) : folder_load(ds, path, train);
    else
        return an_error("%s: not a dataset folder (expected IDX files, CIFAR-10 .bin files, "
                        "or train/ and val/ subfolders)", path);
    if (rc != 0) dataset_free(ds);
    return rc;
}

/* A split of a shard file: pixels point into the mapping this dataset owns (read only through
 * shard_read), the statistics into the Shard; labels and class names are copies, so dataset_free
 * treats them like any other set's. */
static int shard_load(Dataset *ds, const char *path, int train) {
    Shard *sh = calloc(1, sizeof *sh);
    if (!sh) return an_error("%s: out of memory", path);
    if (shard_open(path, sh) != 0) {
        free(sh);
        return -1;
    }
    int s = train ? 0 : 1;
    ds->kind = DATASET_SHARD;
    ds->owner = sh;
    ds->n = sh->n[s];
    ds->c = 3;
    ds->h = ds->w = sh->size;
    ds->pixels = (uint8_t *)sh->images[s]; /* read-only mapping */
    ds->mean_image = sh->mean_image;
    ds->pca = &sh->pca;
    ds->labels = malloc(((size_t)ds->n + 1) * sizeof *ds->labels);
    ds->class_names = calloc((size_t)sh->classes, sizeof *ds->class_names);
    int rc = ds->labels && ds->class_names ? 0 : an_error("%s: out of memory", path);
    if (rc == 0) ds->classes = sh->classes;
    for (int k = 0; rc == 0 && k < sh->classes; k++)
        if (!(ds->class_names[k] = strdup(sh->class_names[k]))) rc = an_error("%s: out of memory", path);
    for (int i = 0; rc == 0 && i < ds->n; i++) ds->labels[i] = sh->labels[s][i];
    if (rc == 0 && ds->n == 0)
        rc = an_error("%s: no %s images in this shard", path, train ? "training" : "validation");
    if (rc != 0) dataset_free(ds);
    return rc;
}

static void free_strings(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    if (ds->kind == DATASET_SHARD) {
        ds->pixels = NULL; /* inside the mapping */
        if (ds->owner) shard_close(ds->owner);
        free(ds->owner);
    }
    free(ds->pixels);
    free(ds->labels);
    free_strings(ds->paths, ds->n);
    free_strings(ds->class_names, ds->classes);
    memset(ds, 0, sizeof *ds);
}

int image_resize_size(int crop) {
    if (crop == 224 || crop == 227) return 256;
    return (int)lround(crop * 8.0 / 7.0);
}

/* PIL's "L" conversion: 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point, rounded */
static uint8_t luma(uint8_t r, uint8_t g, uint8_t b) {
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

/* planar (in_c, n) -> planar (out_c, n) with in_c, out_c in {1, 3} */
static void convert_channels(const uint8_t *in, int in_c, uint8_t *out, int out_c, size_t n) {
    if (in_c == out_c) {
        memcpy(out, in, (size_t)in_c * n);
    } else if (in_c == 1) {
        for (int ch = 0; ch < out_c; ch++) memcpy(out + ch * n, in, n);
    } else {
        for (size_t i = 0; i < n; i++) out[i] = luma(in[i], in[n + i], in[2 * n + i]);
    }
}

/* In-memory example src (ds->c, ds->h, ds->w) as planar (out_c, size, size): channels first (fewer
 * to resize), then an antialiased bilinear resize of each plane when size differs from the native
 * h, w. */
static int get_memory_image(const Dataset *ds, const uint8_t *src, int out_c, int size, uint8_t *out) {
    size_t plane = (size_t)ds->h * ds->w;
    if (size == ds->h && size == ds->w) {
        convert_channels(src, ds->c, out, out_c, plane);
        return 0;
    }
    int mid_c = out_c < ds->c ? out_c : ds->c;
    uint8_t *mid = malloc(mid_c * plane);
    if (!mid) return an_error("out of memory (image of %dx%d)", ds->w, ds->h);
    convert_channels(src, ds->c, mid, mid_c, plane);
    size_t out_plane = (size_t)size * size;
    int rc = 0;
    for (int ch = 0; ch < mid_c && rc == 0; ch++)
        rc = image_resize_checked(mid + ch * plane, ds->w, ds->h, 1, out + ch * out_plane, size, size);
    for (int ch = mid_c; ch < out_c && rc == 0; ch++) memcpy(out + ch * out_plane, out, out_plane);
    free(mid);
    return rc;
}

/* Folder example i: decode, shorter side to image_resize_size(size), centre crop. */
static int get_folder_image(const Dataset *ds, int i, int out_c, int size, uint8_t *out) {
    Image img;
    if (image_load(ds->paths[i], &img) != 0) return -1;
    size_t plane = (size_t)size * size;
    uint8_t *rgb = out_c == 3 ? out : malloc(3 * plane);
    int rc = rgb ? image_resize_center_crop(&img, image_resize_size(size), size, rgb)
                 : an_error("%s: out of memory", ds->paths[i]);
    if (rc == 0 && rgb != out) convert_channels(rgb, 3, out, out_c, plane);
    if (rgb != out) free(rgb);
    image_free(&img);
    return rc;
}

int dataset_get_image(const Dataset *ds, int i, int out_c, int size, uint8_t *out) {
    if (!ds || i < 0 || i >= ds->n)
        return an_error("dataset: example %d out of range (n = %d)", i, ds ? ds->n : 0);
    if (out_c != 1 && out_c != 3)
        return an_error("dataset: %d output channels (expected 1 or 3)", out_c);
    if (size <= 0) return an_error("dataset: bad image size %d", size);
    if (ds->kind == DATASET_FOLDER) return get_folder_image(ds, i, out_c, size, out);
    if (!ds->pixels || (ds->c != 1 && ds->c != 3)) return an_error("dataset: no pixels in memory");
    size_t bytes = (size_t)ds->c * ds->h * ds->w;
    if (ds->kind != DATASET_SHARD) return get_memory_image(ds, ds->pixels + (size_t)i * bytes, out_c, size, out);
    /* shards: read with pread, never through the mapping (a truncated file must not be a SIGBUS) */
    if (out_c == ds->c && size == ds->h && size == ds->w)
        return shard_read(ds->owner, ds->pixels + (size_t)i * bytes, bytes, out);
    uint8_t *buf = malloc(bytes);
    if (!buf) return an_error("out of memory (image of %dx%d)", ds->w, ds->h);
    int rc = shard_read(ds->owner, ds->pixels + (size_t)i * bytes, bytes, buf);
    if (rc == 0) rc = get_memory_image(ds, buf, out_c, size, out);
    free(buf);
    return rc;
}

int dataset_get_base(const Dataset *ds, int i, uint8_t *out) {
    const int size = SHARD_IMAGE_SIZE;
    const size_t bytes = (size_t)3 * size * size;
    if (!ds || i < 0 || i >= ds->n)
        return an_error("dataset: example %d out of range (n = %d)", i, ds ? ds->n : 0);
    if (ds->kind == DATASET_SHARD) /* pread, so a file truncated while in use is an error */
        return shard_read(ds->owner, ds->pixels + (size_t)i * bytes, bytes, out);
    if (ds->kind == DATASET_FOLDER) { /* shorter side to 256, centre 256x256 */
        Image img;
        if (image_load(ds->paths[i], &img) != 0) return -1;
        int rc = image_resize_center_crop(&img, size, size, out);
        image_free(&img);
        return rc;
    }
    return dataset_get_image(ds, i, 3, size, out); /* in memory: resized to 256x256, gray replicated */
}

/* Shards too are copied (with pread): handing out a pointer into the mapping would turn a file
 * truncated while in use into a SIGBUS wherever the pointer is read. */
const uint8_t *dataset_base(const Dataset *ds, int i, uint8_t *scratch) {
    return dataset_get_base(ds, i, scratch) == 0 ? scratch : NULL;
}
