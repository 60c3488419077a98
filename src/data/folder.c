/* folder.c: ImageNet-style image folders, PATH/train/<class>/<image> and PATH/val/<class>/<image>.
 * The classes are the sorted subfolder names of train/ (byte order, as torchvision's ImageFolder
 * sorts them); val/ must use the same names. Images are the files ending in .jpg, .jpeg or .png
 * (any case), sorted by name within each class, so the order is the same on every machine.
 * Names starting with '.' are ignored. Only paths are stored; dataset.c decodes on demand. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, fileno, strcasecmp, d_type */
#endif
#include "data_internal.h"
#include "../util/common.h"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char **v;
    int n, cap;
} StrList;

static void list_free(StrList *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int list_push(StrList *l, const char *s) {
    if (l->n == l->cap) {
        if (l->cap > INT_MAX / 2) return an_error("too many files");
        int cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return an_error("out of memory (list of %d names)", cap);
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return an_error("out of memory (file name)");
    l->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png");
}

/* Is entry e of dir a folder (want_dir) or a regular file? d_type when known, else stat. */
static int entry_is(const char *dir, const struct dirent *e, int want_dir) {
#ifdef _DIRENT_HAVE_D_TYPE
    if (e->d_type == DT_DIR) return want_dir;
    if (e->d_type == DT_REG) return !want_dir;
    if (e->d_type != DT_UNKNOWN && e->d_type != DT_LNK) return 0;
#endif
    char full[4096];
    if (data_path_join(full, sizeof full, dir, e->d_name) != 0) return 0;
    return data_path_kind(full) == (want_dir ? 1 : 2);
}

/* Sorted names in dir of its subfolders (want_dirs = 1) or its image files (0). */
static int list_dir(const char *dir, int want_dirs, StrList *out) {
    DIR *d = opendir(dir);
    if (!d) return an_error("%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !has_image_ext(e->d_name)) continue;
        if (entry_is(dir, e, want_dirs)) rc = list_push(out, e->d_name);
    }
    closedir(d);
    if (rc == 0 && out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_names);
    return rc;
}

int folder_detect(const char *path) {
    char sub[4096];
    if (data_path_join(sub, sizeof sub, path, "train") == 0 && data_path_kind(sub) == 1) return 1;
    return data_path_join(sub, sizeof sub, path, "val") == 0 && data_path_kind(sub) == 1;
}

/* The class list: sorted subfolders of PATH/train. */
static int folder_classes(const char *path, StrList *classes) {
    char train[4096];
    if (data_path_join(train, sizeof train, path, "train") != 0) return -1;
    if (data_path_kind(train) != 1)
        return an_error("%s: no such folder (the class list comes from train/)", train);
    if (list_dir(train, 1, classes) != 0) return -1;
    if (classes->n == 0) return an_error("%s: no class subfolders", train);
    return 0;
}

/* Every subfolder of split must be one of the classes. */
static int folder_check_split(const char *split, const StrList *classes) {
    StrList subs = {0};
    if (list_dir(split, 1, &subs) != 0) { list_free(&subs); return -1; }
    for (int i = 0; i < subs.n; i++) {
        if (!bsearch(&subs.v[i], classes->v, (size_t)classes->n, sizeof *classes->v, cmp_names)) {
            an_error("%s/%s: class folder not in train/", split, subs.v[i]);
            list_free(&subs);
            return -1;
        }
    }
    list_free(&subs);
    return 0;
}

/* Append split/<class k>/<image> for every image of class k, with label k. */
static int folder_add_class(const char *split, const char *name, int k, StrList *paths, int **labels,
                            int *labels_cap) {
    char dir[4096], full[4096];
    StrList files = {0};
    if (data_path_join(dir, sizeof dir, split, name) != 0) return -1;
    if (data_path_kind(dir) != 1) return 0; /* a class with no images in this split */
    int rc = list_dir(dir, 0, &files);
    for (int i = 0; rc == 0 && i < files.n; i++) {
        rc = data_path_join(full, sizeof full, dir, files.v[i]);
        if (rc == 0) rc = list_push(paths, full);
        if (rc == 0 && *labels_cap < paths->cap) {
            int *grown = realloc(*labels, (size_t)paths->cap * sizeof(int));
            if (!grown) rc = an_error("out of memory (labels)");
            else { *labels = grown; *labels_cap = paths->cap; }
        }
        if (rc == 0) (*labels)[paths->n - 1] = k;
    }
    list_free(&files);
    return rc;
}

int folder_load(Dataset *ds, const char *path, int train) {
    StrList classes = {0}, paths = {0};
    int *labels = NULL, labels_cap = 0;
    char split[4096];
    ds->kind = DATASET_FOLDER;
    int rc = folder_classes(path, &classes);
    if (rc == 0) rc = data_path_join(split, sizeof split, path, train ? "train" : "val");
    if (rc == 0 && data_path_kind(split) != 1) rc = an_error("%s: no such folder", split);
    if (rc == 0 && !train) rc = folder_check_split(split, &classes);
    for (int k = 0; rc == 0 && k < classes.n; k++)
        rc = folder_add_class(split, classes.v[k], k, &paths, &labels, &labels_cap);
    if (rc == 0 && paths.n == 0)
        rc = an_error("%s: no images (.jpg, .jpeg or .png files in class subfolders)", split);
    /* hand everything to ds, so dataset_free releases it on error as well */
    ds->class_names = classes.v;
    ds->classes = classes.n;
    ds->paths = paths.v;
    ds->labels = labels;
    ds->n = paths.n;
    ds->c = 3;
    ds->h = ds->w = 0;
    return rc;
}
