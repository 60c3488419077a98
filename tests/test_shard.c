/* test_shard.c: shard files (`alexnet prep`): a tiny image folder (PNG and JPEG of odd sizes, one
 * corrupt and one empty file) is prepped, and the shard must hold exactly the folder's base images
 * and labels, the float64 mean image and the RGB covariance eigenpairs (checked against direct
 * computations here), be byte-identical for 1 and 3 threads, reject truncated and foreign files with
 * the file name in the message, and load through dataset_load for both splits. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/data/shard.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BASE_BYTES ((size_t)3 * 256 * 256)

/* ---- helpers ------------------------------------------------------------------------------- */

#define mkdirs harness_mkdirs
#define write_bytes harness_write

static const char *tmp(const char *rel) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ & 7];
    snprintf(p, sizeof buf[0], "shard/%s", rel);
    return harness_path(p);
}

#define read_all(path, n) ((uint8_t *)harness_read_file(path, n))

static int has(const char *s, const char *what) { return strstr(s, what) != NULL; }

/* A colourful test picture: a smooth gradient per channel plus a little hashed texture, with the
 * channels correlated (as in photos) so the covariance has three distinct eigenvalues. */
static uint8_t *picture(int w, int h, unsigned seed) {
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int y = 0; px && y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned noise = ((unsigned)x * 2654435761u ^ (unsigned)y * 40503u ^ seed * 97u) >> 7;
            int base = (x * 255 / (w > 1 ? w - 1 : 1) + seed * 37) % 256;
            int r = base, g = (base * 3 + y * 255 / (h > 1 ? h - 1 : 1)) / 4, b = (255 - base + (int)(noise % 64)) % 256;
            uint8_t *p = px + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)r;
            p[1] = (uint8_t)g;
            p[2] = (uint8_t)b;
        }
    return px;
}

static void put_picture(const char *path, int w, int h, unsigned seed, int jpeg) {
    uint8_t *px = picture(w, h, seed);
    int rc = jpeg ? harness_write_jpeg(path, px, w, h, 3, 90) : png_write_rgb(path, px, w, h);
    CHECK(rc == 0, "write %s: %s", path, an_last_error());
    free(px);
}

/* The test folder: 2 classes, 6 good training images (one of them in a corrupt and one in an
 * empty file beside them), 3 validation images. Built once per run. */
static const char *tree(void) {
    static int built;
    const char *root = tmp("folder");
    if (built) return root;
    built = 1;
    char p[600];
#define P(rel) (snprintf(p, sizeof p, "%s/%s", root, rel), p)
    mkdirs(P("train/cat"));
    mkdirs(P("train/dog"));
    mkdirs(P("val/cat"));
    mkdirs(P("val/dog"));
    put_picture(P("train/cat/a.png"), 40, 30, 1, 0);
    put_picture(P("train/cat/b.jpg"), 300, 200, 2, 1);
    write_bytes(P("train/cat/broken.jpg"), "\xff\xd8\xff\xe0 not really a JPEG at all", 29);
    put_picture(P("train/cat/c.png"), 256, 300, 3, 0);
    put_picture(P("train/dog/d.png"), 500, 256, 4, 0);
    write_bytes(P("train/dog/empty.png"), "", 0);
    put_picture(P("train/dog/e.jpg"), 64, 64, 5, 1);
    put_picture(P("train/dog/f.png"), 257, 513, 6, 0);
    put_picture(P("val/cat/v1.png"), 100, 90, 7, 0);
    put_picture(P("val/cat/v2.jpg"), 33, 47, 8, 1);
    put_picture(P("val/dog/v3.png"), 256, 256, 9, 0);
#undef P
    return root;
}

/* Run shard_prep with stderr captured into *err (a static buffer). */
static int prep_captured(const char *root, const char *out, int threads, int *skipped, const char **err) {
    static char buf[8192];
    const char *log = tmp("prep.err");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(log, "w");
    if (f) dup2(fileno(f), 2);
    int rc = shard_prep(root, out, threads, 0, skipped);
    fflush(stderr);
    if (saved >= 0) { dup2(saved, 2); close(saved); }
    if (f) fclose(f);
    size_t n = 0;
    uint8_t *text = read_all(log, &n);
    if (n >= sizeof buf) n = sizeof buf - 1;
    if (text) memcpy(buf, text, n);
    buf[n] = 0;
    free(text);
    *err = buf;
    return rc;
}

/* The shard of tree(), prepped once with 1 thread. */
static const char *shard1(void) {
    static int done;
    const char *out = tmp("one.shard");
    if (done) return out;
    done = 1;
    int skipped = -1;
    const char *err;
    int rc = prep_captured(tree(), out, 1, &skipped, &err);
    CHECK(rc == 0, "%s", an_last_error());
    CHECK(skipped == 2, "skipped %d", skipped);
    return out;
}

/* ---- sym3_eigen ---------------------------------------------------------------------------- */

static void check_eigen(const double m[3][3], const double want_values[3], const char *what) {
    double values[3], vectors[3][3];
    sym3_eigen(m, values, vectors);
    for (int i = 0; i < 3; i++) {
        CHECK(fabs(values[i] - want_values[i]) <= 1e-12 * (1 + fabs(want_values[i])), "%s: value %d %.17g want %.17g",
              what, i, values[i], want_values[i]);
        if (i) CHECK(values[i] <= values[i - 1], "%s: not descending", what);
        double av[3], big = 0;
        for (int r = 0; r < 3; r++) {
            av[r] = m[r][0] * vectors[i][0] + m[r][1] * vectors[i][1] + m[r][2] * vectors[i][2];
            CHECK(fabs(av[r] - values[i] * vectors[i][r]) <= 1e-12 * (1 + fabs(values[0])), "%s: A v != lambda v (%d)",
                  what, i);
            if (fabs(vectors[i][r]) > fabs(big) + 1e-12) big = vectors[i][r];
        }
        CHECK(big > 0, "%s: vector %d: largest component not positive", what, i);
        for (int j = 0; j < 3; j++) {
            double dot = 0;
            for (int r = 0; r < 3; r++) dot += vectors[i][r] * vectors[j][r];
            CHECK(fabs(dot - (i == j)) <= 1e-12, "%s: v%d . v%d = %g", what, i, j, dot);
        }
    }
}

TEST(shard_sym3_eigen) {
    const double diag[3][3] = {{1, 0, 0}, {0, 3, 0}, {0, 0, 2}};
    const double want_diag[3] = {3, 2, 1};
    check_eigen(diag, want_diag, "diagonal");
    double values[3], vectors[3][3];
    sym3_eigen(diag, values, vectors);
    CHECK(vectors[0][1] == 1 && vectors[1][2] == 1 && vectors[2][0] == 1, "diagonal: unit axes expected");

    /* M = Q diag(5, 2, 0.5) Q^T with Q a rotation about (1, 2, 2)/3 by 40 degrees */
    double axis[3] = {1 / 3.0, 2 / 3.0, 2 / 3.0}, ang = 40 * M_PI / 180, c = cos(ang), s = sin(ang);
    double q[3][3], k[3][3] = {{0, -axis[2], axis[1]}, {axis[2], 0, -axis[0]}, {-axis[1], axis[0], 0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) q[i][j] = (i == j) * c + s * k[i][j] + (1 - c) * axis[i] * axis[j];
    const double d[3] = {2, 5, 0.5}, want[3] = {5, 2, 0.5};
    double m[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) m[i][j] = q[i][0] * d[0] * q[j][0] + q[i][1] * d[1] * q[j][1] + q[i][2] * d[2] * q[j][2];
    check_eigen(m, want, "rotation");
    sym3_eigen(m, values, vectors);
    /* the eigenvector of 5 is column 1 of Q, up to sign */
    double dot = 0;
    for (int r = 0; r < 3; r++) dot += vectors[0][r] * q[r][1];
    CHECK(fabs(fabs(dot) - 1) < 1e-12, "rotation: eigenvector of 5: |dot| %.15f", fabs(dot));

    const double iso[3][3] = {{2, 0, 0}, {0, 2, 0}, {0, 0, 2}}, want_iso[3] = {2, 2, 2};
    check_eigen(iso, want_iso, "isotropic");
    const double zero[3][3] = {{0}}, want_zero[3] = {0, 0, 0};
    check_eigen(zero, want_zero, "zero");
    /* a covariance-like matrix with a large dynamic range (pixel variances in 0..255 units) */
    const double cov[3][3] = {{4700, 4300, 3900}, {4300, 4600, 4200}, {3900, 4200, 5100}};
    double vals[3], vecs[3][3];
    sym3_eigen(cov, vals, vecs);
    CHECK(fabs(vals[0] + vals[1] + vals[2] - 14400) < 1e-8, "trace %.10f", vals[0] + vals[1] + vals[2]);
}

/* ---- prep ------------------------------------------------------------------------------------ */

TEST(shard_prep_folder) {
    const char *root = tree(), *out = tmp("one.shard");
    int skipped = -1;
    const char *err;
    int rc = prep_captured(root, out, 1, &skipped, &err);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(skipped == 2, "skipped %d", skipped);
    /* one warning line per bad file, naming it */
    int lines = 0;
    for (const char *p = err; *p; p++) lines += *p == '\n';
    CHECK(lines == 2 && has(err, "alexnet: warning: ") && has(err, "train/cat/broken.jpg: ") &&
              has(err, "train/dog/empty.png: ") && has(err, "; skipped\n"),
          "warnings:\n%s", err);
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", out);
    CHECK(access(tmpname, F_OK) != 0, "%s left behind", tmpname);

    Shard s;
    rc = shard_open(out, &s);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(s.size == 256 && s.classes == 2 && s.n[0] == 6 && s.n[1] == 3, "size %d classes %d n %d %d", s.size,
          s.classes, s.n[0], s.n[1]);
    CHECK(s.classes == 2 && !strcmp(s.class_names[0], "cat") && !strcmp(s.class_names[1], "dog"), "class names");
    static const int want_train[6] = {0, 0, 0, 1, 1, 1}, want_val[3] = {0, 0, 1};
    for (int i = 0; i < 6 && i < s.n[0]; i++) CHECK(s.labels[0][i] == want_train[i], "train label %d", i);
    for (int i = 0; i < 3 && i < s.n[1]; i++) CHECK(s.labels[1][i] == want_val[i], "val label %d", i);
    CHECK(((uintptr_t)s.images[0] & 4095) == 0 && ((uintptr_t)s.images[1] & 4095) == 0, "images not page aligned");

    /* every stored image is the folder's base image, byte for byte; statistics computed directly */
    uint8_t *base = malloc(BASE_BYTES);
    double *mean = calloc(BASE_BYTES, sizeof *mean);
    uint8_t *train_imgs = malloc(6 * BASE_BYTES);
    for (int split = 0; split < 2; split++) {
        Dataset ds;
        rc = dataset_load(&ds, root, split == 0);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc) break;
        int k = 0, failed = 0;
        for (int i = 0; i < ds.n; i++) {
            if (dataset_get_base(&ds, i, base) != 0) {
                failed++;
                CHECK(has(an_last_error(), ds.paths[i]), "error without the file name: %s", an_last_error());
                continue;
            }
            CHECK(k < s.n[split] && !memcmp(base, s.images[split] + (size_t)k * BASE_BYTES, BASE_BYTES),
                  "split %d image %d (%s) differs from the folder's", split, k, ds.paths[i]);
            CHECK(k < s.n[split] && s.labels[split][k] == ds.labels[i], "label of %s", ds.paths[i]);
            if (split == 0 && k < 6) {
                memcpy(train_imgs + (size_t)k * BASE_BYTES, base, BASE_BYTES);
                for (size_t j = 0; j < BASE_BYTES; j++) mean[j] += base[j];
            }
            k++;
        }
        CHECK(k == s.n[split] && failed == (split == 0 ? 2 : 0), "split %d: %d decoded, %d failed", split, k, failed);
        dataset_free(&ds);
    }
    double worst = 0;
    for (size_t j = 0; j < BASE_BYTES; j++) {
        double e = fabs(mean[j] / 6 - s.mean_image[j]);
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-4, "mean image off by %g", worst);

    /* RGB covariance in float64, two passes, straight from the definition */
    const size_t plane = 256 * 256;
    double m3[3] = {0, 0, 0}, cov[3][3] = {{0}};
    for (int k = 0; k < 6; k++)
        for (int c = 0; c < 3; c++)
            for (size_t j = 0; j < plane; j++) m3[c] += train_imgs[(size_t)k * BASE_BYTES + c * plane + j];
    for (int c = 0; c < 3; c++) m3[c] /= 6.0 * plane;
    for (int k = 0; k < 6; k++)
        for (size_t j = 0; j < plane; j++) {
            const uint8_t *img = train_imgs + (size_t)k * BASE_BYTES;
            double x[3] = {img[j] - m3[0], img[plane + j] - m3[1], img[2 * plane + j] - m3[2]};
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) cov[a][b] += x[a] * x[b];
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) cov[a][b] /= 6.0 * plane;
    const PcaLighting *p = &s.pca;
    CHECK(p->eigval[0] >= p->eigval[1] && p->eigval[1] >= p->eigval[2] && p->eigval[2] > 0, "eigenvalues %g %g %g",
          p->eigval[0], p->eigval[1], p->eigval[2]);
    CHECK(fabs(p->eigval[0] + p->eigval[1] + p->eigval[2] - (cov[0][0] + cov[1][1] + cov[2][2])) <=
              1e-4 * (cov[0][0] + cov[1][1] + cov[2][2]),
          "sum of eigenvalues %g, trace %g", p->eigval[0] + p->eigval[1] + p->eigval[2], cov[0][0] + cov[1][1] + cov[2][2]);
    for (int i = 0; i < 3; i++) {
        const float *v = p->eigvec[i];
        double res = 0, lam = p->eigval[i];
        for (int a = 0; a < 3; a++) {
            double av = cov[a][0] * v[0] + cov[a][1] * v[1] + cov[a][2] * v[2];
            res += (av - lam * v[a]) * (av - lam * v[a]);
        }
        CHECK(sqrt(res) <= 1e-4 * lam, "eigenpair %d: |A v - lambda v| = %g, lambda %g", i, sqrt(res), lam);
        for (int j = 0; j < 3; j++) {
            double dot = v[0] * p->eigvec[j][0] + v[1] * p->eigvec[j][1] + v[2] * p->eigvec[j][2];
            CHECK(fabs(dot - (i == j)) <= 1e-5, "v%d . v%d = %g", i, j, dot);
        }
    }
    free(base);
    free(mean);
    free(train_imgs);
    shard_close(&s);
}

TEST(shard_prep_threads_identical) {
    const char *a = shard1(), *b = tmp("three.shard");
    int skipped = -1;
    const char *err;
    int rc = prep_captured(tree(), b, 3, &skipped, &err);
    CHECK(rc == 0 && skipped == 2, "%s (skipped %d)", an_last_error(), skipped);
    size_t na, nb;
    uint8_t *x = read_all(a, &na), *y = read_all(b, &nb);
    CHECK(x && y && na == nb && na > 0 && !memcmp(x, y, na), "1 and 3 threads differ (%zu vs %zu bytes)", na, nb);
    free(x);
    free(y);
}

/* More images than one decoding chunk (256), a corrupt one past the chunk boundary. */
TEST(shard_prep_chunks) {
    const char *root = tmp("chunks");
    char p[600];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/train/c%d", root, k);
        mkdirs(p);
        snprintf(p, sizeof p, "%s/val/c%d", root, k);
        mkdirs(p);
    }
    for (int i = 0; i < 262; i++) {
        snprintf(p, sizeof p, "%s/train/c%d/%03d.png", root, i < 130 ? 0 : 1, i);
        if (i == 258) write_bytes(p, "\x89PNG\r\n\x1a\n broken", 16);
        else put_picture(p, 8 + i % 5, 8 + i % 3, (unsigned)i, 0);
    }
    snprintf(p, sizeof p, "%s/val/c1/v.png", root);
    put_picture(p, 10, 10, 1000, 0);
    const char *one = tmp("chunks1.shard"), *three = tmp("chunks3.shard");
    int sk1 = -1, sk3 = -1;
    const char *err;
    int rc = prep_captured(root, one, 1, &sk1, &err);
    CHECK(rc == 0 && sk1 == 1 && has(err, "258.png"), "%s (skipped %d): %s", an_last_error(), sk1, err);
    rc = prep_captured(root, three, 3, &sk3, &err);
    CHECK(rc == 0 && sk3 == 1, "%s (skipped %d)", an_last_error(), sk3);
    size_t na, nb;
    uint8_t *x = read_all(one, &na), *y = read_all(three, &nb);
    CHECK(x && y && na == nb && !memcmp(x, y, na), "1 and 3 threads differ (%zu vs %zu bytes)", na, nb);
    free(x);
    free(y);
    Shard s;
    rc = shard_open(one, &s);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    CHECK(s.n[0] == 261 && s.n[1] == 1 && s.labels[1][0] == 1, "n %d %d", s.n[0], s.n[1]);
    int labels_ok = 1;
    for (int i = 0; i < s.n[0]; i++) labels_ok &= s.labels[0][i] == (i < 130 ? 0 : 1);
    CHECK(labels_ok, "train labels");
    /* image 257 is file 257, image 258 is file 259 (258 was skipped) */
    Dataset ds;
    rc = dataset_load(&ds, root, 1);
    CHECK(rc == 0, "%s", an_last_error());
    uint8_t *base = malloc(BASE_BYTES);
    CHECK(rc == 0 && dataset_get_base(&ds, 257, base) == 0 && !memcmp(base, s.images[0] + 257 * BASE_BYTES, BASE_BYTES),
          "image 257");
    CHECK(rc == 0 && dataset_get_base(&ds, 259, base) == 0 && !memcmp(base, s.images[0] + 258 * BASE_BYTES, BASE_BYTES),
          "image 258 = file 259");
    free(base);
    if (rc == 0) dataset_free(&ds);
    shard_close(&s);
}

TEST(shard_prep_errors) {
    int skipped = 7;
    CHECK(shard_prep(tmp("no-such-folder"), tmp("x.shard"), 1, 0, &skipped) == -1 && has(an_last_error(), "no-such-folder"),
          "%s", an_last_error());
    CHECK(skipped == 0, "skipped %d", skipped);
    CHECK(shard_prep(tree(), tmp("no-such-dir/x.shard"), 1, 0, &skipped) == -1 && has(an_last_error(), "x.shard.tmp"),
          "%s", an_last_error());
    CHECK(shard_prep(tree(), tmp("y.shard"), 0, 0, &skipped) == -1, "0 threads accepted");
}

/* ---- reading bad files ----------------------------------------------------------------------- */

static void expect_open_error(const char *path, const char *what) {
    Shard s;
    int rc = shard_open(path, &s);
    CHECK(rc == -1 && has(an_last_error(), path) && has(an_last_error(), what), "%s: %s", path, an_last_error());
    if (rc == 0) shard_close(&s);
    Dataset ds;
    if (shard_is_file(path)) {
        rc = dataset_load(&ds, path, 1);
        CHECK(rc == -1 && has(an_last_error(), path), "dataset_load %s: %s", path, an_last_error());
        if (rc == 0) dataset_free(&ds);
    }
}

TEST(shard_bad_files) {
    const char *good = shard1();
    size_t n;
    uint8_t *bytes = read_all(good, &n);
    CHECK(bytes && n > 1000000, "read %s", good);
    if (!bytes) return;
    const char *bad = tmp("bad.shard");
    const size_t cuts[] = {4, 100, 127, 128, 200, 4096, 5000, n / 2, n - 17, n - 16, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_bytes(bad, bytes, cuts[i]);
        expect_open_error(bad, "truncated");
    }
    write_bytes(bad, bytes, 0);
    expect_open_error(bad, "not a shard");
    /* wrong magic */
    bytes[0] ^= 0x20;
    write_bytes(bad, bytes, n);
    expect_open_error(bad, "not a shard");
    CHECK(!shard_is_file(bad) && shard_is_file(good) && !shard_is_file(tree()), "shard_is_file");
    Dataset ds;
    CHECK(dataset_load(&ds, bad, 1) == -1 && has(an_last_error(), bad), "%s", an_last_error());
    bytes[0] ^= 0x20;
    /* another version */
    bytes[8] = 2;
    write_bytes(bad, bytes, n);
    expect_open_error(bad, "unsupported shard version 2");
    bytes[8] = 1;
    /* a changed header field: the checksum catches it */
    bytes[24] ^= 1;
    write_bytes(bad, bytes, n);
    expect_open_error(bad, "checksum");
    bytes[24] ^= 1;
    /* a broken end marker (e.g. the tail never written) */
    bytes[n - 16] = 'x';
    write_bytes(bad, bytes, n);
    expect_open_error(bad, "end marker");
    bytes[n - 16] = 'A';
    /* extra bytes after the end */
    uint8_t *longer = malloc(n + 3);
    memcpy(longer, bytes, n);
    memset(longer + n, 0, 3);
    write_bytes(bad, longer, n + 3);
    expect_open_error(bad, "extra data");
    free(longer);
    /* restored: opens again */
    write_bytes(bad, bytes, n);
    Shard s;
    CHECK(shard_open(bad, &s) == 0, "%s", an_last_error());
    shard_close(&s);
    free(bytes);
    CHECK(shard_open(tmp("missing.shard"), &s) == -1 && has(an_last_error(), "missing.shard"), "%s", an_last_error());
}

/* ---- the dataset interface ------------------------------------------------------------------- */

TEST(shard_dataset_load) {
    const char *path = shard1();
    Shard s;
    int rc = shard_open(path, &s);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return;
    uint8_t *base = malloc(BASE_BYTES), *small = malloc(3 * 227 * 227), *small2 = malloc(3 * 227 * 227);
    for (int split = 0; split < 2; split++) {
        Dataset ds;
        rc = dataset_load(&ds, path, split == 0);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc) continue;
        CHECK(ds.kind == DATASET_SHARD && ds.n == s.n[split] && ds.c == 3 && ds.h == 256 && ds.w == 256 &&
                  ds.classes == 2 && ds.paths == NULL,
              "split %d: kind %d n %d shape %d %d %d classes %d", split, ds.kind, ds.n, ds.c, ds.h, ds.w, ds.classes);
        CHECK(ds.class_names && !strcmp(ds.class_names[0], "cat") && !strcmp(ds.class_names[1], "dog"), "names");
        CHECK(ds.mean_image && ds.pca && ds.owner, "mean, pca, owner");
        if (ds.mean_image) CHECK(!memcmp(ds.mean_image, s.mean_image, BASE_BYTES * sizeof(float)), "mean image");
        if (ds.pca) CHECK(!memcmp(ds.pca, &s.pca, sizeof s.pca), "pca");
        for (int i = 0; i < ds.n; i++) {
            CHECK(ds.labels[i] == s.labels[split][i], "label %d", i);
            CHECK(dataset_get_base(&ds, i, base) == 0 && !memcmp(base, s.images[split] + (size_t)i * BASE_BYTES, BASE_BYTES),
                  "base image %d", i);
        }
        /* the ordinary interface: resized images work too */
        CHECK(dataset_get_image(&ds, 0, 3, 227, small) == 0, "%s", an_last_error());
        Dataset folder;
        if (split == 1 && dataset_load(&folder, tree(), 0) == 0) {
            /* val has no bad files, so example i of the folder is example i of the shard */
            CHECK(dataset_get_base(&folder, 2, base) == 0 && !memcmp(base, s.images[1] + 2 * BASE_BYTES, BASE_BYTES),
                  "val image 2");
            dataset_free(&folder);
        }
        CHECK(dataset_get_base(&ds, ds.n, base) == -1, "out of range accepted");
        dataset_free(&ds);
        CHECK(ds.owner == NULL && ds.pixels == NULL, "not cleared");
    }
    free(small);
    free(small2);
    free(base);
    shard_close(&s);
}

TEST(shard_base_of_memory_sets) {
    /* an in-memory gray set (as IDX): a flat 4x4 image becomes a flat 3x256x256 image */
    uint8_t pixels[2 * 16];
    int labels[2] = {0, 1};
    for (int i = 0; i < 32; i++) pixels[i] = i < 16 ? 77 : (uint8_t)(i * 9);
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = DATASET_IDX;
    ds.n = 2;
    ds.c = 1;
    ds.h = ds.w = 4;
    ds.classes = 2;
    ds.pixels = pixels;
    ds.labels = labels;
    uint8_t *base = malloc(BASE_BYTES);
    CHECK(dataset_get_base(&ds, 0, base) == 0, "%s", an_last_error());
    int flat = 1;
    for (size_t j = 0; j < BASE_BYTES; j++) flat &= base[j] == 77;
    CHECK(flat, "flat gray image not flat in all three channels");
    CHECK(dataset_get_base(&ds, 1, base) == 0, "%s", an_last_error());
    CHECK(!memcmp(base, base + 65536, 65536) && !memcmp(base, base + 131072, 65536), "gray not replicated");
    free(base);
}

/* ---- the command line ------------------------------------------------------------------------ */

TEST(shard_cli_prep) {
    const char *bin = getenv("ALEXNET_BIN") ? getenv("ALEXNET_BIN") : "build/alexnet";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "(no %s; skipped) ", bin);
        return;
    }
    char cmd[2048];
    const char *out = tmp("cli.shard"), *log = tmp("cli.log");
    snprintf(cmd, sizeof cmd, "%s prep --data %s --out %s --threads 2 >%s 2>&1", bin, tree(), out, log);
    int st = system(cmd);
    size_t n;
    char *text = (char *)read_all(log, &n);
    if (text) text[n ? n - 1 : 0] = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit %d: %s", st, text ? text : "");
    CHECK(text && has(text, "6 train + 3 val images, 2 classes, 2 skipped") && has(text, "images/s") &&
              has(text, "eigenvalues"),
          "output: %s", text ? text : "");
    free(text);
    size_t na, nb;
    uint8_t *x = read_all(shard1(), &na), *y = read_all(out, &nb);
    CHECK(x && y && na == nb && !memcmp(x, y, na), "CLI shard differs from the library's");
    free(x);
    free(y);
    snprintf(cmd, sizeof cmd, "%s prep --data %s >%s 2>&1", bin, tree(), log);
    st = system(cmd);
    text = (char *)read_all(log, &n);
    if (text) text[n ? n - 1 : 0] = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && text && has(text, "alexnet: prep: --data and --out are required"),
          "missing --out: %d %s", st, text ? text : "");
    free(text);
    snprintf(cmd, sizeof cmd, "%s prep --help >%s 2>&1", bin, log);
    st = system(cmd);
    text = (char *)read_all(log, &n);
    if (text) text[n ? n - 1 : 0] = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && text && has(text, "usage: alexnet prep"), "help: %s", text ? text : "");
    free(text);
}
