/* folder.c: ImageNet-style image folders, PATH/train/<class>/<image> and PATH/val/<class>/<image>.
 * The classes are the sorted subfolder names of train/ (byte order, as torchvision's ImageFolder
 * sorts them); val/ must use the same names. Images are the files ending in .jpg, .jpeg or .png
 * (any case), sorted by name within each class, so the order is the same on every machine.
 * Names starting with '.' are ignored. Only paths are stored; dataset.c decodes on demand.
 *
 * Flat validation folders (ImageNet's val/ILSVRC2012_val_00000001.JPEG ...): when val/ has no
 * class subfolders but image files, the labels come from a ground-truth file, PATH/val_labels.txt
 * or else PATH/val/labels.txt, one `FILENAME CLASS` line per image (separated by whitespace or a
 * comma; further fields are ignored). CLASS is a class name of train/ (e.g. the WordNet id
 * n01440764) or a 0-based class index (a name wins when a class folder is itself called "3").
 * FILENAME may omit the image extension (ILSVRC2012_val_00000001) and any folder part is dropped.
 * Blank lines and lines starting with '#' are skipped, and so is a first line in which neither
 * field resolves (a CSV header such as LOC_val_solution.csv's `ImageId,PredictionString`).
 * Every image needs a label (else an error names it); labels of files not in val/ are ignored,
 * counted in one warning line. The images keep their sorted-name order.
 *
 * Held-out validation (folder_load_split, for folders without val/): each class of train/ gives
 * v = round(frac * n) of its n images (half away from zero; frac taken to 6 decimals), at least 1
 * when n >= 2 and at most n - 1, so every class keeps an image for training (a class of 1 image
 * gives none). The held-out images are the v with the smallest keys an_hash64(seed,
 * FNV-1a("CLASS/FILE")): a seeded shuffle of the names alone, so the split is the same whatever
 * the listing order, the thread count or where the folder lies, and adding an image moves few
 * others. Both splits keep the sorted order (class, then name) and use train/'s classes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, fileno, strcasecmp, d_type */
#endif
#include "data_internal.h"
#include "../util/common.h"
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
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

/* Every subfolder of split must be one of the classes; *nsubs = how many there are. */
static int folder_check_split(const char *split, const StrList *classes, int *nsubs) {
    StrList subs = {0};
    if (list_dir(split, 1, &subs) != 0) { list_free(&subs); return -1; }
    *nsubs = subs.n;
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

/* Which images of a class a held-out split takes (folder_load_split); NULL: all of them. */
typedef struct {
    double frac;   /* fraction of each class held out for validation, in (0, 1) */
    uint64_t seed;
    int train;     /* 1: the images not held out; 0: the held-out ones */
} HoldOut;

/* How many of a class's n images are held out for validation. */
static int held_out_count(double frac, int n) {
    if (n < 2) return 0;
    long v = lround(frac * n);
    if (v < 1) v = 1;
    if (v > n - 1) v = n - 1;
    return (int)v;
}

/* FNV-1a of "cls/file": an image's key depends on its names only, not on where the folder lies. */
static uint64_t name_hash(const char *cls, const char *file) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *s = (const unsigned char *)cls; *s; s++) h = (h ^ *s) * 0x100000001b3ull;
    h = (h ^ '/') * 0x100000001b3ull;
    for (const unsigned char *s = (const unsigned char *)file; *s; s++) h = (h ^ *s) * 0x100000001b3ull;
    return h;
}

typedef struct {
    uint64_t key;
    int index; /* in the sorted file list: equal keys fall back to name order */
} Ranked;

static int cmp_ranked(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* held[i] = 1 for the images of class `name` (sorted files) that `ho` holds out for validation. */
static int mark_held_out(const HoldOut *ho, const char *name, const StrList *files, char *held) {
    int n = files->n, v = held_out_count(ho->frac, n);
    memset(held, 0, (size_t)n);
    if (v == 0) return 0;
    Ranked *r = malloc((size_t)n * sizeof *r);
    if (!r) return an_error("out of memory (%d images of class %s)", n, name);
    for (int i = 0; i < n; i++) r[i] = (Ranked){an_hash64(ho->seed, name_hash(name, files->v[i])), i};
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    for (int i = 0; i < v; i++) held[r[i].index] = 1;
    free(r);
    return 0;
}

/* Append split/<class k>/<image> for every image of class k (or, with ho, those of its side of
 * the held-out split), with label k. *count (when not NULL) += the class's image count. */
static int folder_add_class(const char *split, const char *name, int k, const HoldOut *ho, StrList *paths,
                            int **labels, int *labels_cap, int *count) {
    char dir[4096], full[4096];
    StrList files = {0};
    char *held = NULL;
    if (data_path_join(dir, sizeof dir, split, name) != 0) return -1;
    if (data_path_kind(dir) != 1) return 0; /* a class with no images in this split */
    int rc = list_dir(dir, 0, &files);
    if (rc == 0 && count) *count += files.n;
    if (rc == 0 && ho && files.n > 0) {
        if (!(held = malloc((size_t)files.n))) rc = an_error("out of memory (%d images of class %s)", files.n, name);
        else rc = mark_held_out(ho, name, &files, held);
    }
    for (int i = 0; rc == 0 && i < files.n; i++) {
        if (held && held[i] == ho->train) continue; /* on the other side of the split */
        rc = data_path_join(full, sizeof full, dir, files.v[i]);
        if (rc == 0) rc = list_push(paths, full);
        if (rc == 0 && *labels_cap < paths->cap) {
            int *grown = realloc(*labels, (size_t)paths->cap * sizeof(int));
            if (!grown) rc = an_error("out of memory (labels)");
            else { *labels = grown; *labels_cap = paths->cap; }
        }
        if (rc == 0) (*labels)[paths->n - 1] = k;
    }
    free(held);
    list_free(&files);
    return rc;
}

/* ---- flat validation folders: labels from a ground-truth file ---------------------------- */

/* An image's name without its image extension, for ground-truth names like ImageNet's CSV
 * ImageId (ILSVRC2012_val_00000001 for ILSVRC2012_val_00000001.JPEG). */
typedef struct {
    const char *name;
    size_t len;
    int index; /* in the sorted file list */
} Stem;

static size_t stem_len(const char *name) {
    return has_image_ext(name) ? (size_t)(strrchr(name, '.') - name) : strlen(name);
}

static int cmp_stems(const void *a, const void *b) {
    const Stem *x = a, *y = b;
    int c = memcmp(x->name, y->name, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* The index in files (sorted) of the image `name` names: an exact file name, or, when name has no
 * image extension, the one image with that stem. -1: no such image; -2: several (error set). */
static int find_image(const StrList *files, const Stem *stems, const char *name, const char *gt,
                      long line) {
    char **hit = bsearch(&name, files->v, (size_t)files->n, sizeof *files->v, cmp_names);
    if (hit) return (int)(hit - files->v);
    if (has_image_ext(name)) return -1;
    Stem key = {name, strlen(name), 0};
    const Stem *s = bsearch(&key, stems, (size_t)files->n, sizeof *stems, cmp_stems);
    if (!s) return -1;
    int several = (s > stems && !cmp_stems(s - 1, &key)) ||
                  (s + 1 < stems + files->n && !cmp_stems(s + 1, &key));
    if (several) {
        an_error("%s:%ld: '%s' matches several images (give the extension)", gt, line, name);
        return -2;
    }
    return s->index;
}

/* The class a ground-truth CLASS field names: a class name, else a 0-based index; -1 if neither. */
static int find_class(const StrList *classes, const char *name) {
    char **hit = bsearch(&name, classes->v, (size_t)classes->n, sizeof *classes->v, cmp_names);
    if (hit) return (int)(hit - classes->v);
    size_t n = strlen(name);
    if (n == 0 || n > 9 || strspn(name, "0123456789") != n) return -1;
    long k = strtol(name, NULL, 10);
    return k < classes->n ? (int)k : -1;
}

/* PATH/val_labels.txt, else PATH/val/labels.txt, into gt; -1 with an_error() set when neither. */
static int find_ground_truth(const char *path, const char *split, char *gt, size_t n) {
    if (data_path_join(gt, n, path, "val_labels.txt") != 0) return -1;
    if (data_path_kind(gt) == 2) return 0;
    if (data_path_join(gt, n, split, "labels.txt") != 0) return -1;
    if (data_path_kind(gt) == 2) return 0;
    return an_error("%s: no class subfolders and no val_labels.txt (nor val/labels.txt) to label "
                    "its images", split);
}

/* Read the ground-truth file gt for the sorted images `files` of split: label[i] for each. */
static int read_ground_truth(const char *gt, const char *split, const StrList *files,
                             const StrList *classes, int *label) {
    static const char SEP[] = " \t\r\n\v\f,", SPACE[] = " \t\r\n\v\f";
    int n = files->n, rc = 0;
    long *line_of = malloc((size_t)n * sizeof *line_of);
    Stem *stems = malloc((size_t)n * sizeof *stems);
    FILE *f = line_of && stems ? fopen(gt, "r") : NULL;
    if (!line_of || !stems) rc = an_error("%s: out of memory (%d images)", gt, n);
    else if (!f) rc = an_error("%s: cannot open: %s", gt, strerror(errno));
    for (int i = 0; rc == 0 && i < n; i++) {
        label[i] = -1;
        stems[i] = (Stem){files->v[i], stem_len(files->v[i]), i};
    }
    if (rc == 0 && n > 1) qsort(stems, (size_t)n, sizeof *stems, cmp_stems);
    char *buf = NULL;
    size_t cap = 0;
    long line = 0, absent = 0, first_absent = 0, content = 0;
    while (rc == 0 && getline(&buf, &cap, f) != -1) {
        line++;
        char *p = buf;
        if (line == 1 && !strncmp(p, "\xef\xbb\xbf", 3)) p += 3; /* UTF-8 byte-order mark */
        p += strspn(p, SPACE);
        if (!*p || *p == '#') continue;
        content++;
        size_t fl = strcspn(p, SEP);
        char *cls = p + fl;
        cls += strspn(cls, SEP);
        size_t cl = strcspn(cls, SEP);
        if (cl == 0) {
            rc = an_error("%s:%ld: expected 'FILENAME CLASS'", gt, line);
            break;
        }
        p[fl] = '\0';
        cls[cl] = '\0';
        char *slash = strrchr(p, '/');
        const char *name = slash ? slash + 1 : p;
        int img = find_image(files, stems, name, gt, line);
        if (img == -2) { rc = -1; break; }
        int k = find_class(classes, cls);
        if (k < 0 && img < 0 && content == 1) continue; /* a header line */
        if (k < 0) {
            rc = an_error("%s:%ld: unknown class '%s' (not a class folder of train/, nor an index "
                          "below %d)", gt, line, cls, classes->n);
        } else if (img < 0) {
            if (absent++ == 0) first_absent = line;
        } else if (label[img] >= 0 && label[img] != k) {
            rc = an_error("%s:%ld: %s labelled again, as %s (line %ld says %s)", gt, line, files->v[img],
                          classes->v[k], line_of[img], classes->v[label[img]]);
        } else if (label[img] < 0) {
            label[img] = k;
            line_of[img] = line;
        }
    }
    if (rc == 0 && f && ferror(f)) rc = an_error("%s: read error: %s", gt, strerror(errno));
    free(buf);
    if (f) fclose(f);
    int missing = 0, first_missing = -1;
    for (int i = 0; rc == 0 && i < n; i++)
        if (label[i] < 0 && missing++ == 0) first_missing = i;
    if (rc == 0 && missing)
        rc = an_error("%s/%s: no label in %s (%d of %d images have none)", split,
                      files->v[first_missing], gt, missing, n);
    if (rc == 0 && absent)
        fprintf(stderr, "alexnet: warning: %s: %ld label%s for files not in %s ignored (first at line %ld)\n",
                gt, absent, absent == 1 ? "" : "s", split, first_absent);
    free(line_of);
    free(stems);
    return rc;
}

/* split has no class subfolders: take its images (sorted) with labels from the ground truth. */
static int folder_add_flat(const char *path, const char *split, const StrList *classes,
                           const StrList *files, StrList *paths, int **labels, int *labels_cap) {
    char gt[4096], full[4096];
    if (find_ground_truth(path, split, gt, sizeof gt) != 0) return -1;
    if (!(*labels = malloc((size_t)files->n * sizeof **labels)))
        return an_error("out of memory (labels)");
    *labels_cap = files->n;
    int rc = read_ground_truth(gt, split, files, classes, *labels);
    for (int i = 0; rc == 0 && i < files->n; i++) {
        rc = data_path_join(full, sizeof full, split, files->v[i]);
        if (rc == 0) rc = list_push(paths, full);
    }
    return rc;
}

/* The lists become the dataset's (so dataset_free releases them on an error as well); returns rc. */
static int hand_over(Dataset *ds, StrList *classes, StrList *paths, int *labels, int rc) {
    ds->class_names = classes->v;
    ds->classes = classes->n;
    ds->paths = paths->v;
    ds->labels = labels;
    ds->n = paths->n;
    ds->c = 3;
    ds->h = ds->w = 0;
    return rc;
}

int folder_load(Dataset *ds, const char *path, int train) {
    StrList classes = {0}, paths = {0}, flat = {0};
    int *labels = NULL, labels_cap = 0, nsubs = -1;
    char split[4096];
    ds->kind = DATASET_FOLDER;
    int rc = folder_classes(path, &classes);
    if (rc == 0) rc = data_path_join(split, sizeof split, path, train ? "train" : "val");
    if (rc == 0 && data_path_kind(split) != 1)
        rc = train ? an_error("%s: no such folder", split)
                   : an_error("%s: no such folder (give --val-split 0.1 to hold out 10%% of train/ for "
                              "validation)", split);
    if (rc == 0 && !train) rc = folder_check_split(split, &classes, &nsubs);
    if (rc == 0 && nsubs == 0) rc = list_dir(split, 0, &flat); /* val/ without class folders */
    if (rc == 0 && flat.n > 0)
        rc = folder_add_flat(path, split, &classes, &flat, &paths, &labels, &labels_cap);
    for (int k = 0; rc == 0 && flat.n == 0 && k < classes.n; k++)
        rc = folder_add_class(split, classes.v[k], k, NULL, &paths, &labels, &labels_cap, NULL);
    list_free(&flat);
    if (rc == 0 && paths.n == 0)
        rc = an_error("%s: no images (.jpg, .jpeg or .png files in class subfolders)", split);
    return hand_over(ds, &classes, &paths, labels, rc);
}

int folder_load_split(Dataset *ds, const char *path, int train, float val_split, uint64_t seed) {
    StrList classes = {0}, paths = {0};
    int *labels = NULL, labels_cap = 0, total = 0;
    char split[4096];
    /* to 6 decimals, so that 0.7 (0.69999999 as a float) of 5 images rounds as 3.5 does */
    HoldOut ho = {round((double)val_split * 1e6) / 1e6, seed, train ? 1 : 0};
    ds->kind = DATASET_FOLDER;
    int rc = data_path_join(split, sizeof split, path, "val");
    if (rc == 0 && data_path_kind(split) == 1)
        rc = an_error("%s has a val/ folder: --val-split is for folders without one", path);
    if (rc == 0) rc = folder_classes(path, &classes);
    if (rc == 0) rc = data_path_join(split, sizeof split, path, "train");
    for (int k = 0; rc == 0 && k < classes.n; k++)
        rc = folder_add_class(split, classes.v[k], k, &ho, &paths, &labels, &labels_cap, &total);
    if (rc == 0 && total == 0)
        rc = an_error("%s: no images (.jpg, .jpeg or .png files in class subfolders)", split);
    else if (rc == 0 && paths.n == 0) /* only the validation side can be empty */
        rc = an_error("%s: no class has 2 or more images, so --val-split %g holds none out for "
                      "validation", split, (double)val_split);
    return hand_over(ds, &classes, &paths, labels, rc);
}
