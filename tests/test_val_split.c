/* test_val_split.c: dataset_load_split, the validation split held out of train/ for image folders
 * without val/ (--val-split): per-class sizes, the two splits partitioning train/ exactly, the
 * seed fixing the choice (and only the seed: not the folder's location), class names and labels
 * of train/ in both, val_split == 0 being dataset_load, and the errors (a folder with val/, an IDX
 * or CIFAR-10 set, a fraction outside [0, 1), the hint in the error for a folder without val/). */
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has(const char *text, const char *part) { return strstr(text, part) != NULL; }

/* a small JPEG whose colour depends on v (the loader never needs them distinct, but they decode) */
static void write_jpeg(const char *path, int v) {
    unsigned char px[8 * 6 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (unsigned char)(v * 37 + i);
    CHECK(harness_write_jpeg(path, px, 8, 6, 3, 90) == 0, "cannot write %s", path);
}

/* root/train/<names[k]>/img<i>.jpg for i < counts[k], plus files the loader skips (a readme, a
 * dot file). Returns root (a static buffer per call). */
static const char *make_tree(const char *name, int nclasses, const char *const *names, const int *counts) {
    static char roots[8][512];
    static int next;
    char *root = roots[next++ & 7], p[700];
    snprintf(root, sizeof roots[0], "%s/%s", harness_tmpdir(), name);
    for (int k = 0; k < nclasses; k++) {
        snprintf(p, sizeof p, "%s/train/%s", root, names[k]);
        harness_mkdirs(p);
        for (int i = 0; i < counts[k]; i++) {
            /* mixed extensions and cases: all are images */
            static const char *const ext[3] = {"jpg", "JPEG", "jpeg"};
            snprintf(p, sizeof p, "%s/train/%s/img%03d.%s", root, names[k], i, ext[i % 3]);
            write_jpeg(p, k * 100 + i);
        }
        snprintf(p, sizeof p, "%s/train/%s/readme.txt", root, names[k]);
        harness_write(p, "not an image\n", 13);
        snprintf(p, sizeof p, "%s/train/%s/.hidden.jpg", root, names[k]);
        harness_write(p, "junk", 4);
    }
    return root;
}

/* The part of a path from "train/" on (the same wherever the folder lies). */
static const char *rel(const char *path) {
    const char *t = strstr(path, "/train/");
    return t ? t + 1 : path;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Load one side of the split; CHECKs success. */
static int load(Dataset *ds, const char *root, int train, float frac, unsigned long long seed) {
    int rc = dataset_load_split(ds, root, train, frac, seed);
    CHECK(rc == 0, "%s train=%d split %g seed %llu: %s", root, train, (double)frac, seed, an_last_error());
    return rc;
}

/* Per-class counts of ds into per (classes entries). */
static void class_counts(const Dataset *ds, int *per, int classes) {
    memset(per, 0, (size_t)classes * sizeof *per);
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] >= 0 && ds->labels[i] < classes) per[ds->labels[i]]++;
}

/* tr and va: same classes as names, labels agreeing with the class folder of each path, sorted
 * order, and together exactly the images of `all` (the plain dataset_load of train/), disjoint. */
static void check_partition(const Dataset *tr, const Dataset *va, const Dataset *all, int nclasses,
                            const char *const *names, const char *what) {
    const Dataset *side[2] = {tr, va};
    for (int s = 0; s < 2; s++) {
        const Dataset *d = side[s];
        CHECK(d->kind == DATASET_FOLDER && d->classes == nclasses && d->c == 3, "%s: side %d kind %d classes %d",
              what, s, (int)d->kind, d->classes);
        for (int k = 0; k < nclasses && k < d->classes; k++)
            CHECK(!strcmp(d->class_names[k], names[k]), "%s: side %d class %d = %s", what, s, k, d->class_names[k]);
        for (int i = 0; i < d->n; i++) {
            int k = d->labels[i];
            char want[300];
            snprintf(want, sizeof want, "train/%s/", k >= 0 && k < nclasses ? names[k] : "?");
            CHECK(!strncmp(rel(d->paths[i]), want, strlen(want)), "%s: side %d: %s labelled %d", what, s,
                  d->paths[i], k);
            CHECK(i == 0 || strcmp(d->paths[i - 1], d->paths[i]) < 0, "%s: side %d not sorted at %d", what, s, i);
        }
    }
    CHECK(tr->n + va->n == all->n, "%s: %d + %d images, train/ has %d", what, tr->n, va->n, all->n);
    if (tr->n + va->n != all->n) return;
    char **u = malloc((size_t)all->n * sizeof *u);
    if (!u) return;
    for (int i = 0; i < tr->n; i++) u[i] = tr->paths[i];
    for (int i = 0; i < va->n; i++) u[tr->n + i] = va->paths[i];
    qsort(u, (size_t)all->n, sizeof *u, cmp_str); /* all->paths is sorted: folders and names in byte order */
    for (int i = 0; i < all->n; i++)
        CHECK(!strcmp(u[i], all->paths[i]), "%s: image %d: %s, want %s (overlap or missing)", what, i, u[i],
              all->paths[i]);
    free(u);
}

/* Is the path set of a equal to that of b? (both sorted) */
static int same_paths(const Dataset *a, const Dataset *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(rel(a->paths[i]), rel(b->paths[i]))) return 0;
    return 1;
}

static const char *const NAMES3[3] = {"n01", "n02", "n03"};

TEST(val_split_partition) {
    static const int counts[3] = {7, 7, 7};
    const char *root = make_tree("vs_part", 3, NAMES3, counts);
    Dataset all, tr, va;
    CHECK(dataset_load(&all, root, 1) == 0 && all.n == 21, "train/: %s (n %d)", an_last_error(), all.n);
    if (all.n != 21) return;
    if (load(&tr, root, 1, 0.3f, 42) == 0) {
        if (load(&va, root, 0, 0.3f, 42) == 0) {
            /* round(0.3 * 7) = 2 held out of each class, 5 kept */
            int per[3];
            class_counts(&tr, per, 3);
            CHECK(tr.n == 15 && per[0] == 5 && per[1] == 5 && per[2] == 5, "train: %d (%d %d %d)", tr.n, per[0],
                  per[1], per[2]);
            class_counts(&va, per, 3);
            CHECK(va.n == 6 && per[0] == 2 && per[1] == 2 && per[2] == 2, "val: %d (%d %d %d)", va.n, per[0],
                  per[1], per[2]);
            check_partition(&tr, &va, &all, 3, NAMES3, "0.3 of 3x7");
            /* the held-out paths decode like any folder image */
            uint8_t out[3 * 8 * 8];
            CHECK(va.n > 0 && dataset_get_image(&va, va.n - 1, 3, 8, out) == 0, "%s", an_last_error());
            dataset_free(&va);
        }
        dataset_free(&tr);
    }
    dataset_free(&all);
}

/* round(frac * n), at least 1 when n >= 2, at most n - 1; classes of 0 or 1 images hold none out */
TEST(val_split_class_sizes) {
    static const char *const names[6] = {"a_one", "b_two", "c_four", "d_ten", "e_none", "f_five"};
    static const int counts[6] = {1, 2, 4, 10, 0, 5};
    const char *root = make_tree("vs_sizes", 6, names, counts);
    static const struct {
        float frac;
        int val[6];
    } cases[] = {
        {0.3f, {0, 1, 1, 3, 0, 2}},   /* 1.2 -> 1, 3.0 -> 3, 1.5 -> 2 */
        {0.01f, {0, 1, 1, 1, 0, 1}},  /* at least one of each class that has two */
        {0.7f, {0, 1, 3, 7, 0, 4}},   /* 0.7 of 5 is 3.5 -> 4, though 0.7f is a hair under 0.7 */
        {0.95f, {0, 1, 3, 9, 0, 4}},  /* at least one stays for training */
        {0.5f, {0, 1, 2, 5, 0, 3}},   /* 2.5 -> 3: half away from zero */
    };
    Dataset all;
    CHECK(dataset_load(&all, root, 1) == 0 && all.n == 22, "train/: %s (n %d)", an_last_error(), all.n);
    if (all.n != 22) return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        Dataset tr, va;
        char what[64];
        snprintf(what, sizeof what, "split %g", (double)cases[c].frac);
        if (load(&tr, root, 1, cases[c].frac, 7) != 0) continue;
        if (load(&va, root, 0, cases[c].frac, 7) == 0) {
            int pt[6], pv[6];
            class_counts(&tr, pt, 6);
            class_counts(&va, pv, 6);
            for (int k = 0; k < 6; k++) {
                CHECK(pv[k] == cases[c].val[k], "%s: class %s: %d held out, want %d", what, names[k], pv[k],
                      cases[c].val[k]);
                CHECK(pt[k] == counts[k] - cases[c].val[k], "%s: class %s: %d kept, want %d", what, names[k],
                      pt[k], counts[k] - cases[c].val[k]);
            }
            check_partition(&tr, &va, &all, 6, names, what);
            dataset_free(&va);
        }
        dataset_free(&tr);
    }
    dataset_free(&all);
}

TEST(val_split_seed) {
    static const char *const names[2] = {"cat", "dog"};
    static const int counts[2] = {40, 30};
    const char *root = make_tree("vs_seed", 2, names, counts);
    Dataset a, b, c, d;
    if (load(&a, root, 0, 0.25f, 1234) != 0) return;
    /* the same seed, the same split; also through another spelling of the folder's path */
    char other[600];
    snprintf(other, sizeof other, "%s/../vs_seed/.", root);
    if (load(&b, other, 0, 0.25f, 1234) == 0) {
        CHECK(a.n == 18 && same_paths(&a, &b), "same seed: %d vs %d images, or other paths", a.n, b.n);
        CHECK(strcmp(a.paths[0], b.paths[0]) != 0, "the other spelling should show in the paths");
        dataset_free(&b);
    }
    if (load(&b, root, 0, 0.25f, 1234) == 0) {
        CHECK(same_paths(&a, &b), "same seed, different split");
        dataset_free(&b);
    }
    /* other seeds: 10 of 40 and 8 of 30, C(40,10) * C(30,8) ~ 4e15 choices, so no collision */
    static const unsigned long long seeds[3] = {1235, 0, 0xffffffffffffffffull};
    for (int s = 0; s < 3; s++) {
        if (load(&c, root, 0, 0.25f, seeds[s]) != 0) continue;
        CHECK(c.n == a.n && !same_paths(&a, &c), "seed %llu gave the split of seed 1234", seeds[s]);
        /* and each seed still partitions train/ */
        Dataset all;
        if (load(&d, root, 1, 0.25f, seeds[s]) == 0) {
            if (dataset_load(&all, root, 1) == 0) {
                check_partition(&d, &c, &all, 2, names, "other seed");
                dataset_free(&all);
            }
            dataset_free(&d);
        }
        dataset_free(&c);
    }
    dataset_free(&a);
}

/* val_split 0 is dataset_load; the missing val/ error suggests --val-split */
TEST(val_split_zero_is_plain_load) {
    static const int counts[3] = {3, 2, 4};
    const char *root = make_tree("vs_zero", 3, NAMES3, counts);
    Dataset a, b;
    CHECK(dataset_load_split(&a, root, 1, 0.0f, 99) == 0 && a.n == 9, "%s", an_last_error());
    CHECK(dataset_load(&b, root, 1) == 0 && b.n == 9, "%s", an_last_error());
    if (a.n == 9 && b.n == 9) {
        for (int i = 0; i < 9; i++)
            CHECK(!strcmp(a.paths[i], b.paths[i]) && a.labels[i] == b.labels[i], "example %d differs", i);
        dataset_free(&a);
        dataset_free(&b);
    }
    char want[700];
    snprintf(want, sizeof want, "%s/val: no such folder", root);
    CHECK(dataset_load(&a, root, 0) == -1 && has(an_last_error(), want) &&
              has(an_last_error(), "--val-split 0.1") && has(an_last_error(), "10% of train/") &&
              !strchr(an_last_error(), '\n'),
          "got: %s", an_last_error());
    CHECK(dataset_load_split(&a, root, 0, 0.0f, 1) == -1 && has(an_last_error(), want), "got: %s",
          an_last_error());
}

/* dataset_load_split fails with an error containing each of the (up to 2) parts. */
static void check_fails(const char *root, int train, float frac, const char *p1, const char *p2) {
    Dataset ds;
    int rc = dataset_load_split(&ds, root, train, frac, 5);
    const char *e = an_last_error();
    CHECK(rc == -1 && has(e, p1) && (!p2 || has(e, p2)) && !strchr(e, '\n'), "%s train=%d split %g: rc %d, error: %s",
          root, train, (double)frac, rc, e);
    if (rc == 0) dataset_free(&ds);
}

TEST(val_split_errors) {
    static const int counts[3] = {3, 3, 3};
    const char *root = make_tree("vs_err", 3, NAMES3, counts);
    /* fractions outside [0, 1), whatever the dataset */
    check_fails(root, 1, 1.0f, "--val-split 1:", "[0, 1)");
    check_fails(root, 0, 1.5f, "--val-split 1.5", "[0, 1)");
    check_fails(root, 1, -0.1f, "--val-split -0.1", "[0, 1)");
    check_fails(root, 0, NAN, "--val-split nan", NULL);
    /* a folder with val/: the split is refused (naming the folder), the plain load still works */
    char p[700], want[800];
    snprintf(p, sizeof p, "%s/val/n01", root);
    harness_mkdirs(p);
    snprintf(p, sizeof p, "%s/val/n01/v.jpg", root);
    write_jpeg(p, 3);
    snprintf(want, sizeof want, "%s has a val/ folder: --val-split is for folders without one", root);
    check_fails(root, 1, 0.2f, want, NULL);
    check_fails(root, 0, 0.2f, want, NULL);
    Dataset ds;
    CHECK(dataset_load_split(&ds, root, 0, 0.0f, 5) == 0 && ds.n == 1, "%s", an_last_error());
    if (ds.n == 1) dataset_free(&ds);
    /* train/ with one image per class: no validation image to hold out; train/ without images */
    static const int ones[2] = {1, 1};
    const char *single = make_tree("vs_single", 2, NAMES3, ones);
    check_fails(single, 0, 0.5f, "no class has 2 or more images", "/train");
    CHECK(dataset_load_split(&ds, single, 1, 0.5f, 5) == 0 && ds.n == 2, "%s", an_last_error());
    if (ds.n == 2) dataset_free(&ds);
    static const int none[2] = {0, 0};
    const char *empty = make_tree("vs_empty", 2, NAMES3, none);
    check_fails(empty, 1, 0.5f, "/train: no images", NULL);
    /* IDX and CIFAR-10 sets have their own test split (detection alone decides: the files may be
     * empty), and so does Fashion-MNIST when installed */
    const char *idx = harness_path("vs_idx");
    harness_mkdirs(idx);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", idx);
    harness_write(p, "", 0);
    check_fails(idx, 1, 0.1f, idx, "--val-split is for image folders");
    const char *cifar = harness_path("vs_cifar");
    harness_mkdirs(cifar);
    snprintf(p, sizeof p, "%s/data_batch_1.bin", cifar);
    harness_write(p, "", 0);
    check_fails(cifar, 0, 0.1f, cifar, "--val-split is for image folders");
    if (harness_read_access(FMNIST "/train-images-idx3-ubyte.gz") == 0) {
        check_fails(FMNIST, 1, 0.1f, FMNIST, "--val-split is for image folders");
        check_fails(FMNIST, 0, 0.1f, FMNIST, "--val-split is for image folders");
    } else {
        fprintf(stderr, "  (no %s: the fake IDX folder stands in for it)\n", FMNIST);
    }
}
