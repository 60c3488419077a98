/* test_data.c: tests of the datasets (IDX, CIFAR-10, image folders), image decoding (JPEG, PNG,
 * corrupt files), the Pillow-compatible resize and the torchvision-style centre crop. Reference
 * numbers were computed independently with Python (gzip, Pillow 13) and are hard-coded here. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/data/image.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#define tmp harness_path
#define mkdirs harness_mkdirs
#define write_bytes harness_write
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers ------------------------------------------------------------------------------- */

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

#define write_jpeg harness_write_jpeg

static uint8_t *solid_rgb(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; px && i < w * h; i++) {
        px[3 * i] = r;
        px[3 * i + 1] = g;
        px[3 * i + 2] = b;
    }
    return px;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file: `words` header words then `n` body bytes; gzip-compressed when path ends in .gz */
static int write_idx(const char *path, const uint32_t *hdr, int words, const uint8_t *body, size_t n) {
    size_t total = (size_t)words * 4 + n;
    uint8_t *buf = malloc(total);
    if (!buf) return -1;
    for (int i = 0; i < words; i++) be32(buf + 4 * i, hdr[i]);
    if (n) memcpy(buf + 4 * words, body, n);
    int rc;
    size_t len = strlen(path);
    if (len > 3 && !strcmp(path + len - 3, ".gz")) {
        gzFile f = gzopen(path, "wb");
        rc = f && gzwrite(f, buf, (unsigned)total) == (int)total ? 0 : -1;
        if (f && gzclose(f) != Z_OK) rc = -1;
    } else {
        rc = write_bytes(path, buf, total);
    }
    free(buf);
    return rc;
}

static int has(const char *text, const char *part) { return strstr(text, part) != NULL; }

static long plane_sum(const uint8_t *p, size_t n) {
    long s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    return s;
}

/* ---- IDX ----------------------------------------------------------------------------------- */

TEST(data_idx_fashion_mnist) {
    if (!is_dir(FASHION_DIR)) {
        SKIP("no %s (Debian package dataset-fashion-mnist)", FASHION_DIR);
    }
    Dataset tr, te;
    int rc = dataset_load(&tr, FASHION_DIR, 1);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(tr.kind == DATASET_IDX && tr.n == 60000 && tr.c == 1 && tr.h == 28 && tr.w == 28,
          "kind %d n %d shape %dx%dx%d", tr.kind, tr.n, tr.c, tr.h, tr.w);
    CHECK(tr.classes == 10 && tr.paths == NULL && tr.class_names && !strcmp(tr.class_names[0], "T-shirt/top") &&
              !strcmp(tr.class_names[9], "Ankle boot"), "classes %d, names %s", tr.classes,
          tr.class_names ? tr.class_names[0] : "none"); /* Fashion-MNIST's (the folder's name says so) */
    static const int first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++) CHECK(tr.labels[i] == first[i], "label %d is %d", i, tr.labels[i]);
    int count[10] = {0}, bad = 0;
    for (int i = 0; i < tr.n; i++) {
        if (tr.labels[i] < 0 || tr.labels[i] > 9)
            bad++;
        else
            count[tr.labels[i]]++;
    }
    CHECK(bad == 0, "%d labels outside 0..9", bad);
    for (int k = 0; k < 10; k++) CHECK(count[k] == 6000, "class %d has %d", k, count[k]);
    CHECK(plane_sum(tr.pixels, 784) == 76247, "image 0 sums to %ld", plane_sum(tr.pixels, 784));
    CHECK(plane_sum(tr.pixels + 784, 784) == 84598, "image 1 sum %ld", plane_sum(tr.pixels + 784, 784));
    CHECK(plane_sum(tr.pixels + 59999L * 784, 784) == 16684, "image 59999 sum");
    CHECK(tr.pixels[14 * 28 + 12] == 237 && tr.pixels[14 * 28 + 25] == 255 && tr.pixels[14 * 28 + 26] == 77,
          "row 14 of image 0: %d %d %d", tr.pixels[14 * 28 + 12], tr.pixels[14 * 28 + 25],
          tr.pixels[14 * 28 + 26]);

    /* 1 -> 3 channels at the native size: three copies of the gray plane */
    uint8_t *out = malloc(3 * 224 * 224);
    CHECK(dataset_get_image(&tr, 0, 3, 28, out) == 0, "%s", an_last_error());
    CHECK(!memcmp(out, tr.pixels, 784) && !memcmp(out + 784, tr.pixels, 784) &&
              !memcmp(out + 2 * 784, tr.pixels, 784),
          "gray not replicated");
    /* resized as Pillow does (values from PIL Image.resize(BILINEAR)) */
    CHECK(dataset_get_image(&tr, 0, 1, 56, out) == 0, "%s", an_last_error());
    CHECK(plane_sum(out, 56 * 56) == 305484 && out[20 * 56 + 30] == 220, "56x56 sum %ld, (30,20) = %d",
          plane_sum(out, 56 * 56), out[20 * 56 + 30]);
    CHECK(dataset_get_image(&tr, 0, 3, 224, out) == 0, "%s", an_last_error());
    CHECK(plane_sum(out, 224 * 224) == 4881392 && plane_sum(out + 2 * 224 * 224, 224 * 224) == 4881392,
          "224x224 sum %ld", plane_sum(out, 224 * 224));
    CHECK(dataset_get_image(&tr, 60000, 1, 28, out) == -1 && has(an_last_error(), "out of range"), "index");
    free(out);
    dataset_free(&tr);
    CHECK(tr.pixels == NULL && tr.n == 0, "dataset_free clears");

    rc = dataset_load(&te, FASHION_DIR, 0);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(te.n == 10000 && te.classes == 10 && te.labels[0] == 9 && te.labels[1] == 2, "test n %d", te.n);
    CHECK(plane_sum(te.pixels, 784) == 33456 && plane_sum(te.pixels + 9999L * 784, 784) == 24390,
          "test sums %ld", plane_sum(te.pixels, 784));
    dataset_free(&te);
}

/* a valid 3-image IDX pair in dir (gzip or plain), labels 1 0 4 */
static void make_small_idx(const char *dir, int gz) {
    mkdirs(dir);
    char img[512], lab[512];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte%s", dir, gz ? ".gz" : "");
    uint8_t px[18], labels[3] = {1, 0, 4};
    for (int i = 0; i < 18; i++) px[i] = (uint8_t)(i * 13);
    uint32_t ih[4] = {0x803, 3, 2, 3}, lh[2] = {0x801, 3};
    CHECK(write_idx(img, ih, 4, px, 18) == 0 && write_idx(lab, lh, 2, labels, 3) == 0, "write %s", dir);
}

TEST(data_idx_small_roundtrip) {
    for (int gz = 0; gz < 2; gz++) {
        const char *dir = tmp(gz ? "idx_gz" : "idx_plain");
        make_small_idx(dir, gz);
        Dataset ds;
        int rc = dataset_load(&ds, dir, 1);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc) continue;
        CHECK(ds.n == 3 && ds.c == 1 && ds.h == 2 && ds.w == 3 && ds.classes == 5, "shape gz=%d", gz);
        CHECK(ds.labels[0] == 1 && ds.labels[1] == 0 && ds.labels[2] == 4, "labels");
        CHECK(ds.pixels[0] == 0 && ds.pixels[7] == 91 && ds.pixels[17] == 221, "pixels");
        uint8_t out[3 * 9];
        /* 1 -> 3 channels with a resize 2x3 -> 3x3 */
        CHECK(dataset_get_image(&ds, 1, 3, 3, out) == 0, "%s", an_last_error());
        CHECK(!memcmp(out, out + 9, 9) && !memcmp(out, out + 18, 9), "channels differ");
        dataset_free(&ds);
        Dataset te;
        CHECK(dataset_load(&te, dir, 0) == -1 && has(an_last_error(), "t10k-images-idx3-ubyte") &&
                  has(an_last_error(), "no such file"),
              "missing test split: %s", an_last_error());
    }
}

TEST(data_idx_errors) {
    Dataset ds;
    uint8_t px[10 * 28 * 28] = {0}, labels[10] = {0};
    const char *dir = tmp("idx_magic");
    mkdirs(dir);
    char img[512], lab[512];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", dir);
    uint32_t bad[4] = {0, 10, 28, 28}, lh[2] = {0x801, 10};
    write_idx(img, bad, 4, px, sizeof px);
    write_idx(lab, lh, 2, labels, 10);
    char want[600];
    snprintf(want, sizeof want, "%s: bad IDX magic 0x00000000, expected 0x00000803", img);
    CHECK(dataset_load(&ds, dir, 1) == -1 && !strcmp(an_last_error(), want), "got: %s", an_last_error());

    /* truncated pixels, gzip: the header promises 10 images, the body holds 5 */
    dir = tmp("idx_trunc");
    mkdirs(dir);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    uint32_t ih[4] = {0x803, 10, 28, 28};
    write_idx(img, ih, 4, px, 5 * 784);
    write_idx(lab, lh, 2, labels, 10);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), img) && has(an_last_error(), "truncated"),
          "got: %s", an_last_error());

    /* label count differs from the image count */
    write_idx(img, ih, 4, px, sizeof px);
    uint32_t lh9[2] = {0x801, 9};
    write_idx(lab, lh9, 2, labels, 9);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), "9 labels but"), "got: %s",
          an_last_error());

    /* labels file with the images magic */
    uint32_t lbad[2] = {0x803, 10};
    write_idx(lab, lbad, 2, labels, 10);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), "expected 0x00000801"), "got: %s",
          an_last_error());

    /* a gzip stream cut in the middle */
    write_idx(lab, lh, 2, labels, 10);
    FILE *f = fopen(img, "rb");
    uint8_t raw[4096];
    size_t n = f ? fread(raw, 1, sizeof raw, f) : 0;
    if (f) fclose(f);
    write_bytes(img, raw, n / 2);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), img), "got: %s", an_last_error());

    /* only a header: no pixels at all */
    write_idx(img, ih, 4, px, 0);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), "truncated"), "got: %s", an_last_error());
    /* absurd header: must fail as truncated, not try to allocate terabytes */
    uint32_t huge[4] = {0x803, 0x7fffffff, 65536, 65536};
    write_idx(img, huge, 4, px, 100);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), "truncated"), "got: %s", an_last_error());
}

/* ---- CIFAR-10 ------------------------------------------------------------------------------ */

#define REC 3073

/* record r of file f: label (f * 3 + r) % 10, pixel j = (f * 31 + r * 7 + j) & 255 */
static void cifar_record(uint8_t *rec, int f, int r) {
    rec[0] = (uint8_t)((f * 3 + r) % 10);
    for (int j = 0; j < 3072; j++) rec[1 + j] = (uint8_t)((f * 31 + r * 7 + j) & 255);
}

static void write_cifar(const char *path, int f, int records) {
    uint8_t *buf = malloc((size_t)records * REC);
    for (int r = 0; r < records; r++) cifar_record(buf + (size_t)r * REC, f, r);
    CHECK(write_bytes(path, buf, (size_t)records * REC) == 0, "write %s", path);
    free(buf);
}

TEST(data_cifar10_roundtrip) {
    const char *root = tmp("cifar"), *dir = tmp("cifar/cifar-10-batches-bin");
    char path[512];
    mkdirs(dir);
    for (int f = 1; f <= 2; f++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f);
        write_cifar(path, f, 3);
    }
    /* test batch: record 0 is a flat colour (200, 100, 50) for the luma check */
    uint8_t recs[2 * REC];
    cifar_record(recs, 0, 0);
    cifar_record(recs + REC, 0, 1);
    memset(recs + 1, 200, 1024);
    memset(recs + 1 + 1024, 100, 1024);
    memset(recs + 1 + 2048, 50, 1024);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    write_bytes(path, recs, sizeof recs);

    Dataset ds;
    int rc = dataset_load(&ds, root, 1);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(ds.kind == DATASET_CIFAR10 && ds.n == 6 && ds.c == 3 && ds.h == 32 && ds.w == 32, "n %d", ds.n);
    CHECK(ds.classes == 10 && ds.class_names && !strcmp(ds.class_names[0], "airplane") &&
              !strcmp(ds.class_names[3], "cat") && !strcmp(ds.class_names[9], "truck"),
          "class names");
    int ok = 1;
    uint8_t rec[REC];
    for (int i = 0; i < 6; i++) {
        cifar_record(rec, 1 + i / 3, i % 3);
        ok &= ds.labels[i] == rec[0] && !memcmp(ds.pixels + (size_t)i * 3072, rec + 1, 3072);
    }
    CHECK(ok, "records differ from what was written");
    /* 3 channels at the native size are the stored planes */
    uint8_t out[3 * 64 * 64];
    CHECK(dataset_get_image(&ds, 4, 3, 32, out) == 0 && !memcmp(out, ds.pixels + 4 * 3072, 3072), "get 4");
    dataset_free(&ds);

    /* the inner folder works too, and the test split is test_batch.bin */
    rc = dataset_load(&ds, dir, 0);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(ds.n == 2 && ds.labels[0] == 0 && ds.labels[1] == 1, "test n %d", ds.n);
    /* 3 -> 1: luma of (200, 100, 50) is 124 (PIL's convert("L")), also after a resize */
    CHECK(dataset_get_image(&ds, 0, 1, 32, out) == 0, "%s", an_last_error());
    int flat = 1;
    for (int i = 0; i < 32 * 32; i++) flat &= out[i] == 124;
    CHECK(flat, "luma %d", out[0]);
    CHECK(dataset_get_image(&ds, 0, 1, 64, out) == 0, "%s", an_last_error());
    flat = 1;
    for (int i = 0; i < 64 * 64; i++) flat &= out[i] == 124;
    CHECK(flat, "resized luma %d", out[0]);
    CHECK(dataset_get_image(&ds, 0, 2, 32, out) == -1, "2 channels accepted");
    dataset_free(&ds);
}

TEST(data_cifar10_errors) {
    const char *dir = tmp("cifar_bad");
    char path[512], want[700];
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    uint8_t *buf = calloc(2 * REC + 100, 1);
    write_bytes(path, buf, 2 * REC + 100);
    Dataset ds;
    snprintf(want, sizeof want, "%s: truncated CIFAR-10 file: 6246 bytes is not a multiple of 3073", path);
    CHECK(dataset_load(&ds, dir, 1) == -1 && !strcmp(an_last_error(), want), "got: %s", an_last_error());
    buf[REC] = 12; /* record 1 has label 12 */
    write_bytes(path, buf, 2 * REC);
    CHECK(dataset_load(&ds, dir, 1) == -1 && has(an_last_error(), path) && has(an_last_error(), "label 12"),
          "got: %s", an_last_error());
    CHECK(dataset_load(&ds, dir, 0) == -1 && has(an_last_error(), "test_batch.bin"), "got: %s",
          an_last_error());
    free(buf);
}

TEST(data_not_a_dataset) {
    Dataset ds;
    const char *missing = tmp("no/such/place");
    CHECK(dataset_load(&ds, missing, 1) == -1 && has(an_last_error(), missing) &&
              has(an_last_error(), "no such folder"),
          "got: %s", an_last_error());
    const char *empty = tmp("empty_dir");
    mkdirs(empty);
    char want[700];
    snprintf(want, sizeof want,
             "%s: not a dataset folder (expected IDX files, CIFAR-10 .bin files, or "
             "train/ and val/ subfolders)",
             empty);
    CHECK(dataset_load(&ds, empty, 1) == -1 && !strcmp(an_last_error(), want), "got: %s", an_last_error());
    const char *file = tmp("empty_dir/file.txt");
    write_bytes(file, "x", 1);
    CHECK(dataset_load(&ds, file, 1) == -1 && has(an_last_error(), "not a folder"), "got: %s",
          an_last_error());
}

/* ---- image folders ------------------------------------------------------------------------- */

static void write_png_solid(const char *path, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t *px = solid_rgb(w, h, r, g, b);
    CHECK(png_write_rgb(path, px, w, h) == 0, "%s", an_last_error());
    free(px);
}

static void write_jpeg_solid(const char *path, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t *px = solid_rgb(w, h, r, g, b);
    CHECK(write_jpeg(path, px, w, h, 3, 95) == 0, "write %s", path);
    free(px);
}

static void write_gray_jpeg(const char *path, int w, int h) {
    uint8_t *px = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) px[i] = (uint8_t)(i % w * 255 / (w - 1));
    CHECK(write_jpeg(path, px, w, h, 1, 90) == 0, "write %s", path);
    free(px);
}

static void make_folder_tree(const char *root) {
    char p[512];
#define P(rel) (snprintf(p, sizeof p, "%s/%s", root, rel), p)
    mkdirs(P("train/cat"));
    mkdirs(P("train/dog"));
    mkdirs(P("val/cat"));
    mkdirs(P("val/dog"));
    write_png_solid(P("train/cat/a.png"), 40, 30, 220, 20, 20);
    write_png_solid(P("train/cat/b.JPEG"), 30, 50, 10, 200, 30); /* a PNG with a JPEG name */
    write_jpeg_solid(P("train/cat/c.jpg"), 48, 32, 40, 60, 220);
    write_png_solid(P("train/cat/d.PNG"), 8, 8, 1, 2, 3);
    write_bytes(P("train/cat/notes.txt"), "not an image", 12);
    write_png_solid(P("train/cat/.hidden.png"), 8, 8, 0, 0, 0);
    write_gray_jpeg(P("train/dog/x.jpeg"), 64, 48);
    write_png_solid(P("train/dog/y.png"), 20, 20, 128, 128, 128);
    write_png_solid(P("val/cat/v1.png"), 20, 20, 1, 1, 1);
    write_jpeg_solid(P("val/dog/v2.jpg"), 20, 20, 9, 9, 9);
#undef P
}

TEST(data_folder_dataset) {
    const char *root = tmp("folder");
    make_folder_tree(root);
    Dataset ds;
    int rc = dataset_load(&ds, root, 1);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(ds.kind == DATASET_FOLDER && ds.n == 6 && ds.classes == 2 && ds.c == 3 && ds.pixels == NULL,
          "n %d classes %d", ds.n, ds.classes);
    CHECK(!strcmp(ds.class_names[0], "cat") && !strcmp(ds.class_names[1], "dog"), "class names");
    static const char *names[6] = {"train/cat/a.png", "train/cat/b.JPEG", "train/cat/c.jpg",
                                   "train/cat/d.PNG", "train/dog/x.jpeg", "train/dog/y.png"};
    static const int labels[6] = {0, 0, 0, 0, 1, 1};
    for (int i = 0; i < 6; i++) {
        size_t lp = strlen(ds.paths[i]), ln = strlen(names[i]);
        CHECK(lp > ln && !strcmp(ds.paths[i] + lp - ln, names[i]) && ds.labels[i] == labels[i],
              "entry %d: %s label %d", i, ds.paths[i], ds.labels[i]);
    }
    uint8_t out[3 * 16 * 16];
    /* the PNG named .JPEG decodes, and a flat image stays flat through resize and crop */
    CHECK(dataset_get_image(&ds, 1, 3, 16, out) == 0, "%s", an_last_error());
    int flat = 1;
    for (int i = 0; i < 256; i++) flat &= out[i] == 10 && out[256 + i] == 200 && out[512 + i] == 30;
    CHECK(flat, "b.JPEG: %d %d %d", out[0], out[256], out[512]);
    /* flat JPEG: close to its colour */
    CHECK(dataset_get_image(&ds, 2, 3, 16, out) == 0, "%s", an_last_error());
    CHECK(abs(out[0] - 40) <= 3 && abs(out[256] - 60) <= 3 && abs(out[512] - 220) <= 3, "c.jpg: %d %d %d",
          out[0], out[256], out[512]);
    /* grayscale JPEG: R = G = B, and the horizontal ramp survives */
    CHECK(dataset_get_image(&ds, 4, 3, 16, out) == 0, "%s", an_last_error());
    CHECK(!memcmp(out, out + 256, 256) && !memcmp(out, out + 512, 256), "gray JPEG channels differ");
    CHECK(out[8 * 16 + 0] < 60 && out[8 * 16 + 15] > 195, "ramp %d .. %d", out[8 * 16], out[8 * 16 + 15]);
    /* 3 -> 1 of a flat colour: PIL luma of (220, 20, 20) is 80 */
    CHECK(dataset_get_image(&ds, 0, 1, 16, out) == 0 && out[0] == 80 && out[255] == 80, "luma %d", out[0]);
    dataset_free(&ds);

    rc = dataset_load(&ds, root, 0);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(ds.n == 2 && ds.classes == 2 && ds.labels[0] == 0 && ds.labels[1] == 1, "val n %d", ds.n);
    dataset_free(&ds);

    /* a val class that train does not have */
    char p[512];
    snprintf(p, sizeof p, "%s/val/bird", root);
    mkdirs(p);
    CHECK(dataset_load(&ds, root, 0) == -1 && has(an_last_error(), "val/bird") &&
              has(an_last_error(), "not in train/"),
          "got: %s", an_last_error());
    CHECK(dataset_load(&ds, root, 1) == 0 && ds.n == 6, "train must still load: %s", an_last_error());
    dataset_free(&ds);
}

TEST(data_folder_errors) {
    Dataset ds;
    /* train/ without val/ */
    const char *root = tmp("folder_noval");
    char p[512];
    snprintf(p, sizeof p, "%s/train/a", root);
    mkdirs(p);
    CHECK(dataset_load(&ds, root, 1) == -1 && has(an_last_error(), "train") &&
              has(an_last_error(), "no images"),
          "got: %s", an_last_error());
    snprintf(p, sizeof p, "%s/train/a/img.png", root);
    write_png_solid(p, 4, 4, 1, 2, 3);
    CHECK(dataset_load(&ds, root, 1) == 0 && ds.n == 1, "%s", an_last_error());
    dataset_free(&ds);
    CHECK(dataset_load(&ds, root, 0) == -1 && has(an_last_error(), "/val") &&
              has(an_last_error(), "no such folder"),
          "got: %s", an_last_error());
    /* an undecodable image is an error naming it, not a crash */
    snprintf(p, sizeof p, "%s/train/a/zz.jpg", root);
    write_bytes(p, "\xff\xd8\xff\xe0garbage", 11);
    CHECK(dataset_load(&ds, root, 1) == 0 && ds.n == 2, "%s", an_last_error());
    uint8_t out[3 * 8 * 8];
    CHECK(dataset_get_image(&ds, 1, 3, 8, out) == -1 && has(an_last_error(), "zz.jpg"), "got: %s",
          an_last_error());
    dataset_free(&ds);
}

/* ---- decoding ------------------------------------------------------------------------------ */

static int load_fails_naming(const char *path, const char *what) {
    Image img;
    int rc = image_load(path, &img);
    int ok = rc == -1 && has(an_last_error(), path) && (!what || has(an_last_error(), what));
    if (!ok) fprintf(stderr, "  %s: rc %d, error: %s\n", path, rc, an_last_error());
    if (rc == 0) image_free(&img);
    return ok;
}

TEST(image_decode_errors) {
    char p[512];
    uint8_t junk[4000];
    for (int i = 0; i < 4000; i++) junk[i] = (uint8_t)(an_hash64(7, (uint64_t)i) >> 56);
    snprintf(p, sizeof p, "%s", tmp("junk.jpg"));
    write_bytes(p, junk, sizeof junk);
    CHECK(load_fails_naming(p, "not a JPEG or PNG file"), "random bytes");
    snprintf(p, sizeof p, "%s", tmp("empty.png"));
    write_bytes(p, "", 0);
    CHECK(load_fails_naming(p, "empty"), "empty file");
    CHECK(load_fails_naming(tmp("absent.png"), "cannot open"), "missing file");

    /* a real JPEG cut in half, then its header followed by junk */
    uint8_t *px = malloc(64 * 48 * 3);
    for (int i = 0; i < 64 * 48 * 3; i++) px[i] = (uint8_t)(i * 7);
    snprintf(p, sizeof p, "%s", tmp("whole.jpg"));
    write_jpeg(p, px, 64, 48, 3, 90);
    Image img;
    CHECK(image_load(p, &img) == 0 && img.w == 64 && img.h == 48 && img.c == 3, "%s", an_last_error());
    image_free(&img);
    FILE *f = fopen(p, "rb");
    static uint8_t raw[65536];
    size_t n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    snprintf(p, sizeof p, "%s", tmp("half.jpg"));
    write_bytes(p, raw, n / 2);
    CHECK(load_fails_naming(p, "truncated JPEG data"), "truncated JPEG");
    memcpy(raw + 200, junk, n - 200 < sizeof junk ? n - 200 : sizeof junk);
    snprintf(p, sizeof p, "%s", tmp("junkbody.jpg"));
    write_bytes(p, raw, n);
    { /* corrupt entropy data may decode to noise (as in libjpeg and Pillow) but must not crash */
        int rc = image_load(p, &img);
        CHECK(rc == 0 || has(an_last_error(), p), "junk body: %s", an_last_error());
        if (rc == 0) image_free(&img);
    }
    snprintf(p, sizeof p, "%s", tmp("hdronly.jpg"));
    write_bytes(p, raw, 20);
    CHECK(load_fails_naming(p, NULL), "JPEG header only");

    /* a PNG cut short */
    snprintf(p, sizeof p, "%s", tmp("whole.png"));
    png_write_rgb(p, px, 64, 48);
    f = fopen(p, "rb");
    n = fread(raw, 1, sizeof raw, f);
    fclose(f);
    snprintf(p, sizeof p, "%s", tmp("half.png"));
    write_bytes(p, raw, n / 2);
    CHECK(load_fails_naming(p, "PNG"), "truncated PNG");
    raw[20] ^= 0x55; /* IHDR CRC no longer matches */
    snprintf(p, sizeof p, "%s", tmp("crc.png"));
    write_bytes(p, raw, n);
    CHECK(load_fails_naming(p, "PNG"), "bad CRC");
    free(px);
}

TEST(image_jpeg_colour_spaces) {
    /* CMYK with the Adobe marker (inverted inks): (200, 100, 50, 255) reads as RGB (200, 100, 50) */
    uint8_t cmyk[16 * 16 * 4];
    for (int i = 0; i < 256; i++) {
        cmyk[4 * i] = 200;
        cmyk[4 * i + 1] = 100;
        cmyk[4 * i + 2] = 50;
        cmyk[4 * i + 3] = 255;
    }
    const char *p = tmp("cmyk.jpg");
    CHECK(write_jpeg(p, cmyk, 16, 16, 4, 100) == 0, "write");
    Image img;
    int rc = image_load(p, &img);
    CHECK(rc == 0 && img.c == 3, "%s", an_last_error());
    if (rc == 0) {
        CHECK(abs(img.data[0] - 200) <= 1 && abs(img.data[1] - 100) <= 1 && abs(img.data[2] - 50) <= 1,
              "CMYK -> %d %d %d", img.data[0], img.data[1], img.data[2]);
        image_free(&img);
    }
    /* half-black ink: K stored 127 (inverted) halves every channel */
    for (int i = 0; i < 256; i++) cmyk[4 * i + 3] = 127;
    write_jpeg(p, cmyk, 16, 16, 4, 100);
    rc = image_load(p, &img);
    CHECK(rc == 0 && abs(img.data[0] - 100) <= 1 && abs(img.data[2] - 25) <= 1, "K: %d %d",
          rc ? -1 : img.data[0], rc ? -1 : img.data[2]);
    if (rc == 0) image_free(&img);
    /* grayscale JPEG: three equal channels */
    p = tmp("gray.jpg");
    write_gray_jpeg(p, 33, 9);
    rc = image_load(p, &img);
    CHECK(rc == 0 && img.w == 33 && img.h == 9, "%s", an_last_error());
    int same = 1;
    for (int i = 0; rc == 0 && i < 33 * 9; i++)
        same &= img.data[3 * i] == img.data[3 * i + 1] && img.data[3 * i] == img.data[3 * i + 2];
    CHECK(same, "gray channels differ");
    if (rc == 0) image_free(&img);
}

/* write a PNG with libpng's simplified API in the given format (colormap only for palettes) */
static int write_png_format(const char *path, png_uint_32 format, int w, int h, const void *px,
                            const void *colormap, int colors) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    im.colormap_entries = (png_uint_32)colors;
    return png_image_write_to_file(&im, path, 0, px, 0, colormap) ? 0 : -1;
}

TEST(image_png_formats) {
    Image img;
    /* palette of 3 colours */
    uint8_t idx[6] = {0, 1, 2, 2, 1, 0}, cmap[9] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
    const char *p = tmp("palette.png");
    CHECK(write_png_format(p, PNG_FORMAT_RGB_COLORMAP, 3, 2, idx, cmap, 3) == 0, "write palette");
    int rc = image_load(p, &img);
    CHECK(rc == 0 && img.w == 3 && img.h == 2, "%s", an_last_error());
    if (rc == 0) {
        CHECK(img.data[0] == 255 && img.data[4] == 255 && img.data[8] == 255 && img.data[9] == 0 &&
                  img.data[11] == 255,
              "palette pixels");
        image_free(&img);
    }
    /* 8-bit gray */
    uint8_t gray[4] = {0, 85, 170, 255};
    p = tmp("gray.png");
    write_png_format(p, PNG_FORMAT_GRAY, 2, 2, gray, NULL, 0);
    rc = image_load(p, &img);
    CHECK(rc == 0 && img.data[3] == 85 && img.data[4] == 85 && img.data[5] == 85 && img.data[11] == 255,
          "gray: %s", an_last_error());
    if (rc == 0) image_free(&img);
    /* RGBA: alpha is dropped, colour kept (as PIL's convert("RGB")) */
    uint8_t rgba[8] = {10, 20, 30, 0, 40, 50, 60, 128};
    p = tmp("rgba.png");
    write_png_format(p, PNG_FORMAT_RGBA, 2, 1, rgba, NULL, 0);
    rc = image_load(p, &img);
    CHECK(rc == 0 && img.c == 3 && img.data[0] == 10 && img.data[2] == 30 && img.data[3] == 40 &&
              img.data[5] == 60,
          "rgba: %s", an_last_error());
    if (rc == 0) image_free(&img);
    /* 16-bit gray: the high byte */
    uint16_t g16[3] = {0, 0x8040, 0xFFFF};
    p = tmp("gray16.png");
    write_png_format(p, PNG_FORMAT_LINEAR_Y, 3, 1, g16, NULL, 0);
    rc = image_load(p, &img);
    CHECK(rc == 0 && img.data[0] == 0 && img.data[3] == 0x80 && img.data[6] == 0xFF && img.data[7] == 0xFF,
          "16-bit: %d %d", rc ? -1 : img.data[3], rc ? -1 : img.data[6]);
    if (rc == 0) image_free(&img);
}

/* ---- resize and crop ----------------------------------------------------------------------- */

TEST(image_resize_constant) {
    static const int sizes[][4] = {
        {7, 5, 3, 2}, {10, 10, 23, 17}, {1, 1, 9, 4}, {64, 3, 5, 40}, {300, 200, 17, 256}};
    uint8_t *src = malloc(300 * 200 * 3), *dst = malloc(256 * 300 * 3);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int c = 1; c <= 3; c += 2) {
            int w = sizes[k][0], h = sizes[k][1], ow = sizes[k][2], oh = sizes[k][3];
            for (int i = 0; i < w * h * c; i++) src[i] = (uint8_t)(i % c == 0 ? 77 : 201);
            image_resize(src, w, h, c, dst, ow, oh);
            int ok = 1;
            for (int i = 0; i < ow * oh * c; i++) ok &= dst[i] == (i % c == 0 ? 77 : 201);
            CHECK(ok, "%dx%d -> %dx%d c=%d", w, h, ow, oh, c);
        }
    }
    free(src);
    free(dst);
}

TEST(image_resize_known_values) {
    /* by hand: 4 -> 2 has support 2, weights 3/7 3/7 1/7 and 1/7 3/7 3/7 */
    uint8_t a[4] = {0, 100, 200, 40}, b[4];
    image_resize(a, 4, 1, 1, b, 2, 1);
    CHECK(b[0] == 71 && b[1] == 117, "4->2: %d %d", b[0], b[1]);
    /* upscale 2 -> 4: weights (1), (3/4, 1/4), (1/4, 3/4), (1) */
    uint8_t c[2] = {0, 100};
    image_resize(c, 2, 1, 1, b, 4, 1);
    CHECK(b[0] == 0 && b[1] == 25 && b[2] == 75 && b[3] == 100, "2->4: %d %d %d %d", b[0], b[1], b[2],
          b[3]);
    /* the same along columns */
    image_resize(a, 1, 4, 1, b, 1, 2);
    CHECK(b[0] == 71 && b[1] == 117, "vertical 4->2: %d %d", b[0], b[1]);
    uint8_t sq[4] = {0, 100, 100, 200};
    image_resize(sq, 2, 2, 1, b, 1, 1);
    CHECK(b[0] == 100, "2x2 -> 1x1: %d", b[0]);
    /* Pillow 13 values for a tall image, where the vertical pass runs first (7 of these 20 values
     * differ when the horizontal pass goes first), and for its transpose, horizontal first */
    uint8_t tall[6 * 20], wide[20 * 6], o1[20], o2[20];
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 6; x++)
            tall[y * 6 + x] = wide[x * 20 + y] = (uint8_t)((x * 37 + y * 91 + x * y * 13) % 256);
    static const uint8_t want[20] = {110, 129, 148, 138, 128, 125, 158, 146, 134, 139,
                                     103, 122, 141, 111, 105, 129, 114, 113, 92,  110};
    image_resize(tall, 6, 20, 1, o1, 4, 5);
    image_resize(wide, 20, 6, 1, o2, 5, 4);
    int ok = !memcmp(o1, want, 20);
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 4; x++) ok &= o2[x * 5 + y] == want[y * 4 + x];
    CHECK(ok, "tall: %d %d %d %d ...", o1[0], o1[1], o1[2], o1[3]);
}

TEST(image_center_crop) {
    CHECK(image_resize_size(224) == 256 && image_resize_size(227) == 256 && image_resize_size(32) == 37 &&
              image_resize_size(64) == 73 && image_resize_size(28) == 32,
          "resize sizes");
    /* R = 10 x, G = 10 y, B = 77; resize = shorter side, so no resampling happens */
    uint8_t px[9 * 5 * 3], out[3 * 7 * 7];
    Image img = {9, 5, 3, px};
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 9; x++) {
            uint8_t *p = px + (y * 9 + x) * 3;
            p[0] = (uint8_t)(10 * x);
            p[1] = (uint8_t)(10 * y);
            p[2] = 77;
        }
    /* torchvision: left = int(round((9 - 2) / 2)) = round(3.5) = 4, top = round(1.5) = 2 */
    CHECK(image_resize_center_crop(&img, 5, 2, out) == 0, "%s", an_last_error());
    CHECK(out[0] == 40 && out[1] == 50 && out[4] == 20 && out[6] == 30 && out[8] == 77, "crop 2: %d %d",
          out[0], out[4]);
    /* 7 x 5: left = round(2.5) = 2 (half to even, as Python), top = round(1.5) = 2 */
    img.w = 7;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 7; x++) {
            uint8_t *p = px + (y * 7 + x) * 3;
            p[0] = (uint8_t)(10 * x);
            p[1] = (uint8_t)(10 * y);
            p[2] = 77;
        }
    CHECK(image_resize_center_crop(&img, 5, 2, out) == 0 && out[0] == 20 && out[4] == 20, "7x5: %d %d",
          out[0], out[4]);
    /* 7 x 5, crop 3: left = round(2.0) = 2, top = round(1.0) = 1 */
    CHECK(image_resize_center_crop(&img, 5, 3, out) == 0 && out[0] == 20 && out[9] == 10, "crop 3: %d %d",
          out[0], out[9]);
    /* a crop larger than the image is padded with zeros, as torchvision pads before cropping */
    Image small = {5, 5, 3, px};
    for (int i = 0; i < 25; i++) {
        px[3 * i] = 9;
        px[3 * i + 1] = 9;
        px[3 * i + 2] = 77;
    }
    CHECK(image_resize_center_crop(&small, 5, 7, out) == 0, "%s", an_last_error());
    /* one pixel of padding on each side: left = top = -((7 - 5) / 2) = -1 */
    CHECK(out[2 * 49 + 0] == 0 && out[2 * 49 + 1 * 7 + 1] == 77 && out[2 * 49 + 5 * 7 + 5] == 77 &&
              out[2 * 49 + 6 * 7 + 6] == 0,
          "padding");
    /* resize then crop of a flat image stays flat */
    uint8_t *big = solid_rgb(40, 30, 5, 150, 250);
    Image im2 = {40, 30, 3, big};
    CHECK(image_resize_center_crop(&im2, 7, 6, out) == 0, "%s", an_last_error());
    int flat = 1;
    for (int i = 0; i < 36; i++) flat &= out[i] == 5 && out[36 + i] == 150 && out[72 + i] == 250;
    CHECK(flat, "flat crop");
    free(big);
}

/* ---- the shared Imagenette folder ------------------------------------------------------------ */

TEST(data_shared_imagenette) {
    const char *shared = harness_shared_data();
    if (!shared) {
        SKIP("no shared data folder");
    }
    char root[512];
    snprintf(root, sizeof root, "%s/imagenette", shared);
    if (!is_dir(root)) {
        SKIP("no %s", root);
    }
    Dataset tr, va;
    int rc = dataset_load(&tr, root, 1);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(tr.kind == DATASET_FOLDER && tr.n == 9469 && tr.classes == 10, "train n %d classes %d", tr.n,
          tr.classes);
    CHECK(!strcmp(tr.class_names[0], "n01440764") && !strcmp(tr.class_names[9], "n03888257"), "wnids");
    int sorted = 1, tench = 0;
    for (int i = 0; i < tr.n; i++) {
        if (tr.labels[i] == 0) tench++;
        if (i && (tr.labels[i] < tr.labels[i - 1] ||
                  (tr.labels[i] == tr.labels[i - 1] && strcmp(tr.paths[i - 1], tr.paths[i]) >= 0)))
            sorted = 0;
    }
    CHECK(sorted && tench == 963, "order %d, class 0 has %d", sorted, tench);
    dataset_free(&tr);

    rc = dataset_load(&va, root, 0);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(va.n == 3925 && va.classes == 10 && va.labels[0] == 0 && va.labels[va.n - 1] == 9, "val n %d",
          va.n);
    CHECK(has(va.paths[0], "val/n01440764/ILSVRC2012_val_00009111.JPEG"), "first: %s", va.paths[0]);
    /* torchvision Resize(256) + CenterCrop(224) of this image with PIL gives these numbers */
    uint8_t *out = malloc(3 * 224 * 224);
    CHECK(dataset_get_image(&va, 0, 3, 224, out) == 0, "%s", an_last_error());
    size_t pl = 224 * 224;
    CHECK(plane_sum(out, pl) == 6006225 && plane_sum(out + pl, pl) == 5866478 &&
              plane_sum(out + 2 * pl, pl) == 5162527,
          "channel sums %ld %ld %ld", plane_sum(out, pl), plane_sum(out + pl, pl),
          plane_sum(out + 2 * pl, pl));
    CHECK(out[0] == 139 && out[pl] == 150 && out[2 * pl] == 146, "pixel (0,0)");
    CHECK(out[100 * 224 + 223] == 178 && out[pl + 100 * 224 + 223] == 180, "pixel (223,100)");
    CHECK(dataset_get_image(&va, 0, 1, 224, out) == 0 && plane_sum(out, pl) == 5828158, "gray sum %ld",
          plane_sum(out, pl));
    free(out);
    dataset_free(&va);
}
