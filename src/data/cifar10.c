/* cifar10.c: the CIFAR-10 binary version. Each file is a run of 3073-byte records: one label
 * byte (0..9) then 32x32 red, 32x32 green and 32x32 blue bytes, which is already the planar
 * (3, 32, 32) layout the dataset holds in memory. The training split is data_batch_1..5.bin (those
 * present, in order), the test split test_batch.bin, in PATH or PATH/cifar-10-batches-bin. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, fileno, strcasecmp, d_type */
#endif
#include "data_internal.h"
#include "../util/common.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_BATCHES 5

static const char *const cifar_names[CIFAR_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

/* File `k` of a split: 1..5 -> data_batch_k.bin, 0 -> test_batch.bin. */
static int cifar_file(char *out, size_t n, const char *dir, int k) {
    char name[32];
    if (k == 0) snprintf(name, sizeof name, "test_batch.bin");
    else snprintf(name, sizeof name, "data_batch_%d.bin", k);
    return data_path_join(out, n, dir, name);
}

static int dir_has_cifar(const char *dir) {
    char file[4096];
    for (int k = 0; k <= CIFAR_BATCHES; k++)
        if (cifar_file(file, sizeof file, dir, k) == 0 && data_path_kind(file) == 2) return 1;
    return 0;
}

/* The folder holding the .bin files: PATH/cifar-10-batches-bin when it has them, else PATH. */
static int cifar_dir(const char *path, char *out, size_t n) {
    if (data_path_join(out, n, path, "cifar-10-batches-bin") == 0 && dir_has_cifar(out)) return 1;
    snprintf(out, n, "%s", path);
    return dir_has_cifar(out);
}

int cifar10_detect(const char *path) {
    char dir[4096];
    return cifar_dir(path, dir, sizeof dir);
}

/* Size of a regular file in records; -1 with an_error() set when absent or not whole records. */
static long cifar_records(const char *file) {
    struct stat st;
    if (stat(file, &st) != 0) return an_error("%s: cannot open: %s", file, strerror(errno));
    if (!S_ISREG(st.st_mode)) return an_error("%s: not a regular file", file);
    if (st.st_size == 0) return an_error("%s: empty CIFAR-10 file", file);
    if (st.st_size % CIFAR_RECORD != 0)
        return an_error("%s: truncated CIFAR-10 file: %lld bytes is not a multiple of %d", file,
                        (long long)st.st_size, CIFAR_RECORD);
    return (long)(st.st_size / CIFAR_RECORD);
}

/* Append the records of `file` (count of them) at example `at` of ds. */
static int cifar_read(Dataset *ds, const char *file, int at, long count) {
    FILE *f = fopen(file, "rb");
    if (!f) return an_error("%s: cannot open: %s", file, strerror(errno));
    uint8_t rec[CIFAR_RECORD];
    for (long r = 0; r < count; r++) {
        if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
            fclose(f);
            return an_error("%s: read error in record %ld", file, r);
        }
        if (rec[0] >= CIFAR_CLASSES) {
            fclose(f);
            return an_error("%s: record %ld has label %d (CIFAR-10 labels are 0..9)", file, r, rec[0]);
        }
        ds->labels[at + r] = rec[0];
        memcpy(ds->pixels + (size_t)(at + r) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
    }
    fclose(f);
    return 0;
}

static int cifar_names_copy(Dataset *ds) {
    ds->class_names = calloc(CIFAR_CLASSES, sizeof(char *));
    if (!ds->class_names) return an_error("out of memory (CIFAR-10 class names)");
    ds->classes = CIFAR_CLASSES;
    for (int k = 0; k < CIFAR_CLASSES; k++) {
        ds->class_names[k] = strdup(cifar_names[k]);
        if (!ds->class_names[k]) return an_error("out of memory (CIFAR-10 class names)");
    }
    return 0;
}

int cifar10_load(Dataset *ds, const char *path, int train) {
    char dir[4096], files[CIFAR_BATCHES][4096];
    long counts[CIFAR_BATCHES], total = 0;
    int nfiles = 0;
    ds->kind = DATASET_CIFAR10;
    cifar_dir(path, dir, sizeof dir);
    for (int k = train ? 1 : 0; k <= (train ? CIFAR_BATCHES : 0); k++) {
        if (cifar_file(files[nfiles], sizeof files[0], dir, k) != 0) return -1;
        if (data_path_kind(files[nfiles]) == 0) continue; /* missing batch: use those present */
        counts[nfiles] = cifar_records(files[nfiles]);
        if (counts[nfiles] < 0) return -1;
        total += counts[nfiles++];
    }
    if (nfiles == 0)
        return an_error("%s/%s: no such file", dir, train ? "data_batch_1.bin" : "test_batch.bin");
    if (total > 100000000L) return an_error("%s: too many CIFAR-10 records (%ld)", dir, total);
    ds->pixels = malloc((size_t)total * CIFAR_PIXELS);
    ds->labels = malloc((size_t)total * sizeof(int));
    if (!ds->pixels || !ds->labels) return an_error("%s: out of memory for %ld images", dir, total);
    for (int i = 0, at = 0; i < nfiles; at += (int)counts[i], i++)
        if (cifar_read(ds, files[i], at, counts[i]) != 0) return -1;
    ds->n = (int)total;
    ds->c = 3;
    ds->h = ds->w = CIFAR_SIDE;
    return cifar_names_copy(ds);
}
