/* test_folder_val.c: flat validation folders labelled by a ground-truth file (ImageNet's
 * val/ILSVRC2012_val_00000001.JPEG ... with val_labels.txt, val/labels.txt or LOC_val_solution.csv
 * lines), and the built-in ILSVRC-2012 class names (src/data/imagenet_classes.c). */
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/data/imagenet_classes.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int has(const char *text, const char *part) { return strstr(text, part) != NULL; }

#define mkdirs harness_mkdirs

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* a small flat-coloured PNG (the extension may say .JPEG: images are sniffed) */
static void write_png(const char *path, uint8_t v) {
    uint8_t px[6 * 5 * 3];
    memset(px, v, sizeof px);
    CHECK(png_write_rgb(path, px, 6, 5) == 0, "%s: %s", path, an_last_error());
}

#define WNID0 "n01440764"
#define WNID1 "n01443537"
#define WNID2 "n01484850"

/* root/train/{WNID0,WNID1,WNID2}/t.png and root/val/ILSVRC2012_val_0000000{1,2,3}.JPEG (pixel
 * values 11, 22, 33) plus a non-image val/readme.txt. Returns root (a static buffer per call). */
static const char *make_tree(const char *name) {
    static char roots[16][512];
    static int next;
    char *root = roots[next++ & 15], p[600];
    snprintf(root, sizeof roots[0], "%s/%s", harness_tmpdir(), name);
    static const char *wnids[3] = {WNID0, WNID1, WNID2};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/train/%s", root, wnids[k]);
        mkdirs(p);
        snprintf(p, sizeof p, "%s/train/%s/t.png", root, wnids[k]);
        write_png(p, (uint8_t)(100 + k));
    }
    snprintf(p, sizeof p, "%s/val", root);
    mkdirs(p);
    for (int i = 1; i <= 3; i++) {
        snprintf(p, sizeof p, "%s/val/ILSVRC2012_val_%08d.JPEG", root, i);
        write_png(p, (uint8_t)(11 * i));
    }
    snprintf(p, sizeof p, "%s/val/readme.txt", root);
    write_text(p, "not an image\n");
    return root;
}

static void put(const char *root, const char *rel, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    write_text(p, text);
}

static void rm(const char *root, const char *rel) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    unlink(p);
}

/* The val split loads with ds.labels = want (3 images, in sorted-name order). */
static void check_val(const char *root, int a, int b, int c, const char *what) {
    Dataset ds;
    int rc = dataset_load(&ds, root, 0);
    CHECK(rc == 0, "%s: %s", what, an_last_error());
    if (rc) return;
    int want[3] = {a, b, c};
    CHECK(ds.kind == DATASET_FOLDER && ds.n == 3 && ds.classes == 3 && ds.c == 3, "%s: n %d classes %d",
          what, ds.n, ds.classes);
    CHECK(!strcmp(ds.class_names[0], WNID0) && !strcmp(ds.class_names[2], WNID2), "%s: class names", what);
    for (int i = 0; i < 3 && i < ds.n; i++) {
        char tail[64];
        snprintf(tail, sizeof tail, "/val/ILSVRC2012_val_%08d.JPEG", i + 1);
        size_t lp = strlen(ds.paths[i]), lt = strlen(tail);
        CHECK(lp > lt && !strcmp(ds.paths[i] + lp - lt, tail), "%s: path %d = %s", what, i, ds.paths[i]);
        CHECK(ds.labels[i] == want[i], "%s: label %d = %d, want %d", what, i, ds.labels[i], want[i]);
    }
    /* the paths decode: a flat image stays flat */
    uint8_t out[3 * 4 * 4];
    CHECK(ds.n < 2 || (dataset_get_image(&ds, 1, 3, 4, out) == 0 && out[0] == 22 && out[47] == 22),
          "%s: image 1: %s", what, an_last_error());
    dataset_free(&ds);
}

/* dataset_load(root, val) fails with an error containing each of the (up to 3) parts. */
static void check_fails(const char *root, const char *what, const char *p1, const char *p2, const char *p3) {
    Dataset ds;
    int rc = dataset_load(&ds, root, 0);
    const char *e = an_last_error();
    CHECK(rc == -1 && has(e, p1) && (!p2 || has(e, p2)) && (!p3 || has(e, p3)) && !strchr(e, '\n'),
          "%s: rc %d, error: %s", what, rc, e);
    if (rc == 0) dataset_free(&ds);
}

TEST(folder_val_wnid) {
    const char *root = make_tree("fv_wnid");
    /* out of order, with comments, blank lines, tabs, CRLF and a folder part before the name */
    put(root, "val_labels.txt",
        "# ILSVRC-2012 validation ground truth\n"
        "ILSVRC2012_val_00000003.JPEG " WNID0 "\n"
        "\n"
        "   # indented comment\n"
        "val/ILSVRC2012_val_00000001.JPEG\t" WNID2 "\r\n"
        "  ILSVRC2012_val_00000002.JPEG   " WNID1 "   \n");
    check_val(root, 2, 1, 0, "wnid");
    /* the training split is unchanged by a flat val/ */
    Dataset ds;
    CHECK(dataset_load(&ds, root, 1) == 0 && ds.n == 3 && ds.labels[2] == 2, "train: %s", an_last_error());
    if (ds.n == 3) dataset_free(&ds);
    /* a name without its extension, repeated lines that agree, no final newline */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001," WNID1 "\n"
        "ILSVRC2012_val_00000002.JPEG," WNID1 "\n"
        "ILSVRC2012_val_00000001.JPEG " WNID1 "\n"
        "ILSVRC2012_val_00000003 " WNID1);
    check_val(root, 1, 1, 1, "no extension");
}

TEST(folder_val_index) {
    const char *root = make_tree("fv_index");
    /* val/labels.txt when there is no val_labels.txt; comma-separated 0-based indices */
    put(root, "val/labels.txt",
        "ILSVRC2012_val_00000001.JPEG,0\n"
        "ILSVRC2012_val_00000002.JPEG,2\n"
        "ILSVRC2012_val_00000003.JPEG, 1\n");
    check_val(root, 0, 2, 1, "index");
    /* PATH/val_labels.txt comes first when both exist; names and indices mix */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001.JPEG 2\n"
        "ILSVRC2012_val_00000002.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000003.JPEG 002\n");
    check_val(root, 2, 0, 2, "val_labels.txt first");
    /* an index out of range is an unknown class */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001.JPEG 2\n"
        "ILSVRC2012_val_00000002.JPEG 3\n"
        "ILSVRC2012_val_00000003.JPEG 0\n");
    check_fails(root, "index 3", "val_labels.txt:2:", "unknown class", "'3'");
    put(root, "val_labels.txt", "ILSVRC2012_val_00000001.JPEG -1\n");
    check_fails(root, "index -1", "val_labels.txt:1:", "unknown class", NULL);
}

TEST(folder_val_names_before_indices) {
    /* class folders named like numbers: "10" (class 0) and "2" (class 1), byte order */
    char root[512], p[600];
    snprintf(root, sizeof root, "%s/fv_numeric", harness_tmpdir());
    static const char *cls[2] = {"10", "2"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/train/%s", root, cls[k]);
        mkdirs(p);
        snprintf(p, sizeof p, "%s/train/%s/t.png", root, cls[k]);
        write_png(p, 1);
    }
    snprintf(p, sizeof p, "%s/val", root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/val/a.png", root);
    write_png(p, 1);
    snprintf(p, sizeof p, "%s/val/b.png", root);
    write_png(p, 1);
    put(root, "val_labels.txt", "a.png 2\nb.png 0\n"); /* "2" is a folder name; "0" an index */
    Dataset ds;
    int rc = dataset_load(&ds, root, 0);
    CHECK(rc == 0 && ds.n == 2 && ds.labels[0] == 1 && ds.labels[1] == 0, "rc %d n %d: %s", rc, ds.n,
          an_last_error());
    if (rc == 0) dataset_free(&ds);
}

/* Run dataset_load(root, val) with stderr sent to a file; return what was written (static). */
static const char *load_capturing_stderr(const char *root, int *rc, Dataset *ds) {
    static char text[1024];
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", root);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) {
        *rc = dataset_load(ds, root, 0);
        return "";
    }
    dup2(fd, 2);
    close(fd);
    *rc = dataset_load(ds, root, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f) fclose(f);
    return text;
}

TEST(folder_val_csv) {
    const char *root = make_tree("fv_csv");
    /* ImageNet's LOC_val_solution.csv: a header, ImageId without .JPEG, and a PredictionString of
     * "wnid x0 y0 x1 y1" boxes; two rows name images that are not in val/ */
    put(root, "val_labels.txt",
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000002," WNID2 " 10 20 30 40 \n"
        "ILSVRC2012_val_00008726," WNID1 " 255 142 454 329 " WNID1 " 44 21 322 295 \n"
        "ILSVRC2012_val_00000001," WNID0 " 0 0 5 4 " WNID0 " 1 1 3 3 \n"
        "ILSVRC2012_val_00000003," WNID1 " 1 2 3 4\n"
        "ILSVRC2012_val_00009999.JPEG," WNID0 " 1 2 3 4\n");
    Dataset ds;
    int rc;
    const char *err = load_capturing_stderr(root, &rc, &ds);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc == 0) {
        CHECK(ds.n == 3 && ds.labels[0] == 0 && ds.labels[1] == 2 && ds.labels[2] == 1, "n %d labels %d %d %d",
              ds.n, ds.labels[0], ds.labels[1], ds.labels[2]);
        dataset_free(&ds);
    }
    /* one warning line for both absent images, naming the file and the count */
    const char *nl = strchr(err, '\n');
    CHECK(has(err, "warning") && has(err, "val_labels.txt") && has(err, "2 labels") && nl && !nl[1],
          "stderr: %s", err);
    /* the same file with every image present: no warning at all */
    put(root, "val_labels.txt",
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000001," WNID0 " 0 0 5 4\n"
        "ILSVRC2012_val_00000002," WNID2 " 0 0 5 4\n"
        "ILSVRC2012_val_00000003," WNID1 " 1 2 3 4\n");
    err = load_capturing_stderr(root, &rc, &ds);
    CHECK(rc == 0 && ds.n == 3 && ds.labels[1] == 2 && !err[0], "rc %d stderr: %s", rc, err);
    if (rc == 0) dataset_free(&ds);
    /* with a byte-order mark, as spreadsheets write CSV */
    put(root, "val_labels.txt",
        "\xef\xbb\xbfImageId,PredictionString\n"
        "ILSVRC2012_val_00000001," WNID2 " 0 0 5 4\n"
        "ILSVRC2012_val_00000002," WNID2 " 0 0 5 4\n"
        "ILSVRC2012_val_00000003," WNID2 " 1 2 3 4\n");
    check_val(root, 2, 2, 2, "csv with BOM");
}

TEST(folder_val_errors) {
    const char *root = make_tree("fv_errors");
    char want[600];
    /* no ground-truth file */
    snprintf(want, sizeof want, "%s/val: no class subfolders and no val_labels.txt", root);
    check_fails(root, "no labels file", want, NULL, NULL);
    /* unknown class, with the file name and line number */
    put(root, "val_labels.txt",
        "# header comment\n"
        "ILSVRC2012_val_00000001.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000002.JPEG n99999999\n"
        "ILSVRC2012_val_00000003.JPEG " WNID0 "\n");
    check_fails(root, "unknown class", "val_labels.txt:3:", "unknown class", "n99999999");
    /* an image without a label names the image (the first one, in order) */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001.JPEG " WNID0 "\n");
    check_fails(root, "unlabelled image", "val/ILSVRC2012_val_00000002.JPEG", "no label", "2 of 3");
    /* a second, different label for an image */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000002.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000003.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000001 " WNID1 "\n");
    check_fails(root, "conflicting labels", "val_labels.txt:4:", "ILSVRC2012_val_00000001.JPEG", "line 1");
    /* a line with a file name and no class */
    put(root, "val_labels.txt",
        "ILSVRC2012_val_00000001.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000002.JPEG\n");
    check_fails(root, "no class field", "val_labels.txt:2:", "FILENAME CLASS", NULL);
    /* the labels file of val/ itself: errors name it */
    rm(root, "val_labels.txt");
    put(root, "val/labels.txt", "ILSVRC2012_val_00000001.JPEG bogus\n");
    check_fails(root, "val/labels.txt", "val/labels.txt:1:", "unknown class", "bogus");
    /* a stem that matches two images */
    put(root, "val/labels.txt",
        "ILSVRC2012_val_00000001 " WNID0 "\n"
        "ILSVRC2012_val_00000002 " WNID0 "\n"
        "ILSVRC2012_val_00000003 " WNID0 "\n");
    check_val(root, 0, 0, 0, "before the duplicate stem");
    char p[600];
    snprintf(p, sizeof p, "%s/val/ILSVRC2012_val_00000002.png", root);
    write_png(p, 7);
    check_fails(root, "two images one stem", "val/labels.txt:2:", "several images", NULL);
    /* the full name still picks one of them; the other then has no label */
    put(root, "val/labels.txt",
        "ILSVRC2012_val_00000001 " WNID0 "\n"
        "ILSVRC2012_val_00000002.JPEG " WNID0 "\n"
        "ILSVRC2012_val_00000003 " WNID0 "\n");
    check_fails(root, "one of two", "ILSVRC2012_val_00000002.png", "no label", "1 of 4");
    unlink(p);
    /* val/ with neither class folders nor images: the old error */
    char r2[512];
    snprintf(r2, sizeof r2, "%s/fv_empty", harness_tmpdir());
    snprintf(p, sizeof p, "%s/train/" WNID0, r2);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/train/" WNID0 "/t.png", r2);
    write_png(p, 1);
    snprintf(p, sizeof p, "%s/val", r2);
    mkdirs(p);
    check_fails(r2, "empty val", "no images", NULL, NULL);
    /* class subfolders win over loose files and any labels file */
    snprintf(p, sizeof p, "%s/val/" WNID0, root);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/val/" WNID0 "/v.png", root);
    write_png(p, 1);
    Dataset ds;
    int rc = dataset_load(&ds, root, 0);
    CHECK(rc == 0 && ds.n == 1 && ds.labels[0] == 0, "subfolders: rc %d n %d: %s", rc, ds.n, an_last_error());
    if (rc == 0) dataset_free(&ds);
}

TEST(folder_val_imagenet_classes) {
    CHECK(IMAGENET_NUM_CLASSES == 1000, "count %d", IMAGENET_NUM_CLASSES);
    CHECK(!strcmp(IMAGENET_CLASSES[0], "tench, Tinca tinca"), "0: %s", IMAGENET_CLASSES[0]);
    CHECK(!strncmp(IMAGENET_CLASSES[1], "goldfish", 8), "1: %s", IMAGENET_CLASSES[1]);
    CHECK(!strcmp(IMAGENET_CLASSES[281], "tabby, tabby cat"), "281: %s", IMAGENET_CLASSES[281]);
    CHECK(!strcmp(IMAGENET_CLASSES[999], "toilet tissue, toilet paper, bathroom tissue"), "999: %s",
          IMAGENET_CLASSES[999]);
    for (int k = 0; k < 1000; k++) CHECK(IMAGENET_CLASSES[k] && IMAGENET_CLASSES[k][0], "entry %d empty", k);
    const char *shared = harness_shared_data();
    if (!shared) {
        SKIP("no shared data: the full comparison with imagenet1k_classes.txt did not run");
    }
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/demo-images/imagenet1k_classes.txt", shared);
    FILE *f = fopen(path, "r");
    if (!f) {
        SKIP("no %s: the full comparison did not run", path);
    }
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (n < 1000 && strcmp(line, IMAGENET_CLASSES[n]) && bad++ < 5)
            CHECK(0, "line %d: '%s' but IMAGENET_CLASSES[%d] = '%s'", n + 1, line, n, IMAGENET_CLASSES[n]);
        n++;
    }
    fclose(f);
    CHECK(n == 1000 && bad == 0, "%s: %d lines, %d differ (rerun tools/make_class_names.py)", path, n, bad);
}
