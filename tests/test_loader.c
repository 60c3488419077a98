/* test_loader.c: tests of the threaded batch loader (src/data/loader.c): batches identical
 * whatever the thread count and prefetch depth, every example once per epoch, shuffled order from
 * (seed, epoch), resume at a batch, bad files skipped with a warning, stopping mid-epoch, and the
 * inputs themselves checked against the augmentation functions applied by hand. Datasets are
 * built in memory (or as a few PNG files in the temporary folder). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../src/data/augment.h"
#include "../src/data/dataset.h"
#include "../src/data/loader.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

/* An in-memory IDX-kind set: n examples (c, h, w) of hashed pixels, labels i % 7. */
static Dataset memory_set(int n, int c, int h, int w, uint64_t seed) {
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = DATASET_IDX;
    ds.n = n; ds.c = c; ds.h = h; ds.w = w;
    ds.classes = 7;
    size_t len = (size_t)n * c * h * w;
    ds.pixels = malloc(len);
    ds.labels = malloc((size_t)n * sizeof(int));
    for (size_t i = 0; i < len; i++) ds.pixels[i] = (uint8_t)(an_hash64(seed, i) >> 56);
    for (int i = 0; i < n; i++) ds.labels[i] = i % 7;
    return ds;
}

static int *iota(int n) {
    int *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = i;
    return v;
}

/* Non-paper input: dataset_get_image at (channels, crop), then (x/255 - mean) / std */
static LoaderConfig plain_cfg(const Dataset *ds, const int *idx, int count, int batch,
                              LoaderMode mode, int channels, int crop) {
    LoaderConfig c;
    memset(&c, 0, sizeof c);
    c.ds = ds; c.indices = idx; c.count = count; c.batch = batch; c.mode = mode;
    c.seed = 42; c.epoch = 0; c.threads = 1; c.prefetch = 1;
    c.input.channels = channels;
    c.input.aug.crop = crop;
    for (int i = 0; i < 3; i++) { c.input.mean[i] = 0.25f + 0.1f * i; c.input.std[i] = 0.3f + 0.05f * i; }
    return c;
}

static const PcaLighting PCA = {{0.2175f * 255, 0.0188f * 255, 0.0045f * 255},
                                {{-0.5675f, -0.5808f, -0.5836f},
                                 {0.7192f, -0.0045f, -0.6948f},
                                 {0.4009f, -0.8140f, 0.4203f}}};
static float g_mean_image[3 * 256 * 256];

/* The paper's input: base image 256x256, random crop, flip, lighting, mean image, scale. */
static LoaderConfig paper_cfg(const Dataset *ds, const int *idx, int count, int batch,
                              LoaderMode mode, int crop) {
    LoaderConfig c = plain_cfg(ds, idx, count, batch, mode, 3, crop);
    if (g_mean_image[1] == 0)
        for (int i = 0; i < 3 * 256 * 256; i++) g_mean_image[i] = 100.0f + (float)(i % 37);
    c.input.paper = 1;
    AugmentConfig *a = &c.input.aug;
    a->size = 256; a->crop = crop; a->random_crop = 1; a->flip = 1;
    a->lighting_std = 0.1f; a->pca = &PCA; a->mean_image = g_mean_image; a->scale = 1.0f / 58.0f;
    return c;
}

static size_t example_floats(const LoaderConfig *c) {
    return (size_t)(c->mode == LOADER_TEST10 ? 10 : 1) * c->input.channels * c->input.aug.crop *
           c->input.aug.crop;
}

/* Everything an epoch handed out, concatenated. */
typedef struct Run {
    int batches, examples;
    int number[256], n[256];
    int *labels, *example;
    float *x;
    int skipped;
    int ok;
} Run;

static Run run_epoch(const LoaderConfig *cfg) {
    Run r;
    memset(&r, 0, sizeof r);
    size_t ef = example_floats(cfg);
    r.labels = malloc((size_t)(cfg->count + 1) * sizeof(int));
    r.example = malloc((size_t)(cfg->count + 1) * sizeof(int));
    r.x = malloc(((size_t)cfg->count + 1) * ef * sizeof(float));
    Loader *l;
    if (loader_start(&l, cfg) != 0) {
        CHECK(0, "loader_start: %s", an_last_error());
        return r;
    }
    Batch *b;
    while ((b = loader_next(l))) {
        if (r.batches < 256) { r.number[r.batches] = b->number; r.n[r.batches] = b->n; }
        r.batches++;
        CHECK(b->views == (cfg->mode == LOADER_TEST10 ? 10 : 1), "views %d", b->views);
        memcpy(r.labels + r.examples, b->labels, (size_t)b->n * sizeof(int));
        memcpy(r.example + r.examples, b->example, (size_t)b->n * sizeof(int));
        memcpy(r.x + (size_t)r.examples * ef, b->x, (size_t)b->n * ef * sizeof(float));
        r.examples += b->n;
        loader_release(l, b);
    }
    CHECK(loader_error(l) == NULL, "%s", loader_error(l));
    r.skipped = loader_skipped(l);
    r.ok = loader_error(l) == NULL;
    loader_stop(l);
    return r;
}

static void run_free(Run *r) { free(r->labels); free(r->example); free(r->x); }

static int runs_equal(const Run *a, const Run *b, size_t ef) {
    if (a->batches != b->batches || a->examples != b->examples) return 0;
    for (int i = 0; i < a->batches && i < 256; i++)
        if (a->number[i] != b->number[i] || a->n[i] != b->n[i]) return 0;
    return memcmp(a->labels, b->labels, (size_t)a->examples * sizeof(int)) == 0 &&
           memcmp(a->example, b->example, (size_t)a->examples * sizeof(int)) == 0 &&
           memcmp(a->x, b->x, (size_t)a->examples * ef * sizeof(float)) == 0;
}

/* Same epoch with (threads, prefetch) = (1, 1), (4, 3) and (3, 1): identical batches. */
static void check_thread_invariance(LoaderConfig cfg, const char *what) {
    size_t ef = example_floats(&cfg);
    cfg.threads = 1; cfg.prefetch = 1;
    Run a = run_epoch(&cfg);
    cfg.threads = 4; cfg.prefetch = 3;
    Run b = run_epoch(&cfg);
    cfg.threads = 3; cfg.prefetch = 1;
    Run c = run_epoch(&cfg);
    CHECK(a.examples == cfg.count, "%s: %d of %d examples", what, a.examples, cfg.count);
    CHECK(runs_equal(&a, &b, ef), "%s: threads 1/prefetch 1 differs from threads 4/prefetch 3", what);
    CHECK(runs_equal(&a, &c, ef), "%s: threads 1/prefetch 1 differs from threads 3/prefetch 1", what);
    /* the inputs are not all zero (the batch really was filled) */
    int nonzero = 0;
    for (size_t i = 0; i < (size_t)a.examples * ef; i++) nonzero += a.x[i] != 0.0f;
    CHECK(nonzero > (int)(a.examples * ef / 2), "%s: %d nonzero inputs", what, nonzero);
    run_free(&a); run_free(&b); run_free(&c);
}

static uint64_t counter_of(int epoch, int ex) { return ((uint64_t)epoch << 32) | (uint32_t)ex; }

/* ---- tests --------------------------------------------------------------------------------- */

TEST(loader_same_batches_any_threads) {
    Dataset gray = memory_set(37, 1, 8, 8, 1);
    Dataset rgb = memory_set(23, 3, 10, 10, 2);
    Dataset small = memory_set(11, 3, 16, 16, 3);
    int *idx = iota(37);
    check_thread_invariance(plain_cfg(&gray, idx, 37, 5, LOADER_TRAIN, 1, 8), "plain train, gray");
    check_thread_invariance(plain_cfg(&rgb, idx, 23, 4, LOADER_TRAIN, 3, 6), "plain train, resized");
    check_thread_invariance(plain_cfg(&rgb, idx, 23, 4, LOADER_TRAIN, 1, 10), "plain train, luma");
    check_thread_invariance(plain_cfg(&gray, idx, 37, 6, LOADER_TEST10, 1, 8), "plain test10");
    check_thread_invariance(paper_cfg(&small, idx, 11, 3, LOADER_TRAIN, 40), "paper train");
    check_thread_invariance(paper_cfg(&small, idx, 11, 4, LOADER_TEST10, 24), "paper test10");
    check_thread_invariance(paper_cfg(&small, idx, 11, 4, LOADER_TEST, 24), "paper test");
    free(idx);
    dataset_free(&gray); dataset_free(&rgb); dataset_free(&small);
}

TEST(loader_every_example_once_and_order) {
    Dataset ds = memory_set(50, 1, 6, 6, 4);
    int idx[25];
    for (int i = 0; i < 25; i++) idx[i] = 2 * i + 1; /* odd examples only */
    LoaderConfig cfg = plain_cfg(&ds, idx, 25, 4, LOADER_TRAIN, 1, 6);
    cfg.threads = 3; cfg.prefetch = 2;
    size_t ef = example_floats(&cfg);

    Loader *l;
    CHECK(loader_start(&l, &cfg) == 0, "%s", an_last_error());
    CHECK(loader_batches(l) == 7, "%d batches", loader_batches(l));
    loader_stop(l);

    Run r = run_epoch(&cfg);
    CHECK(r.batches == 7 && r.examples == 25, "%d batches, %d examples", r.batches, r.examples);
    for (int b = 0; b < r.batches; b++)
        CHECK(r.number[b] == b && r.n[b] == (b < 6 ? 4 : 1), "batch %d: number %d n %d", b, r.number[b], r.n[b]);
    int seen[50] = {0};
    float *want = malloc(ef * sizeof(float));
    for (int i = 0; i < r.examples; i++) {
        int ex = r.example[i];
        CHECK(ex >= 0 && ex < 50 && ex % 2 == 1, "example %d", ex);
        if (ex < 0 || ex >= 50) continue;
        seen[ex]++;
        CHECK(r.labels[i] == ex % 7, "label %d of example %d", r.labels[i], ex);
        /* the inputs at position i are example ex's, and counter-independent in plain mode */
        CHECK(loader_prepare_example(&cfg, ex, counter_of(0, ex), want) == 0, "%s", an_last_error());
        CHECK(memcmp(want, r.x + i * ef, ef * sizeof(float)) == 0, "inputs of example %d at %d", ex, i);
        /* spot-check the formula: pixel 7 */
        float v = ds.pixels[ex * 36 + 7] * (1.0f / (255.0f * cfg.input.std[0])) - cfg.input.mean[0] / cfg.input.std[0];
        CHECK(r.x[i * ef + 7] == v, "example %d pixel 7: %g, want %g", ex, r.x[i * ef + 7], v);
    }
    for (int i = 1; i < 50; i += 2) CHECK(seen[i] == 1, "example %d seen %d times", i, seen[i]);
    /* shuffled: not the given order */
    CHECK(memcmp(r.example, idx, sizeof idx) != 0, "epoch 0 not shuffled");

    /* another epoch, another seed: other orders; the same (seed, epoch): the same order */
    cfg.epoch = 1;
    Run e1 = run_epoch(&cfg);
    CHECK(e1.examples == 25 && memcmp(e1.example, r.example, sizeof idx) != 0, "epoch 1 has epoch 0's order");
    cfg.epoch = 0; cfg.seed = 43;
    Run s2 = run_epoch(&cfg);
    CHECK(s2.examples == 25 && memcmp(s2.example, r.example, sizeof idx) != 0, "seed 43 has seed 42's order");
    cfg.seed = 42; cfg.threads = 1; cfg.prefetch = 1;
    Run again = run_epoch(&cfg);
    CHECK(runs_equal(&r, &again, ef), "same seed and epoch, different batches");
    run_free(&e1); run_free(&s2); run_free(&again);

    /* test modes keep the given order */
    for (int m = 0; m < 2; m++) {
        LoaderConfig t = plain_cfg(&ds, idx, 25, 4, m ? LOADER_TEST10 : LOADER_TEST, 1, 6);
        t.threads = 4; t.prefetch = 2;
        Run tr = run_epoch(&t);
        CHECK(tr.examples == 25 && memcmp(tr.example, idx, sizeof idx) == 0, "mode %d: order changed", m);
        for (int i = 0; i < tr.examples; i++) CHECK(tr.labels[i] == idx[i] % 7, "mode %d label %d", m, i);
        run_free(&tr);
    }
    free(want);
    run_free(&r);
    dataset_free(&ds);
}

TEST(loader_first_batch_resumes) {
    Dataset ds = memory_set(30, 1, 5, 5, 5);
    int *idx = iota(30);
    LoaderConfig cfg = plain_cfg(&ds, idx, 30, 4, LOADER_TRAIN, 1, 5);
    cfg.threads = 2; cfg.prefetch = 2; cfg.epoch = 3;
    size_t ef = example_floats(&cfg);
    Run full = run_epoch(&cfg);
    CHECK(full.batches == 8, "%d batches", full.batches);
    for (int k = 1; k <= 8; k++) {
        cfg.first_batch = k;
        Run part = run_epoch(&cfg);
        int skip = 4 * k < 30 ? 4 * k : 30;
        CHECK(part.batches == 8 - k && part.examples == 30 - skip, "first %d: %d batches", k, part.batches);
        for (int b = 0; b < part.batches; b++) CHECK(part.number[b] == k + b, "first %d: number %d", k, part.number[b]);
        CHECK(memcmp(part.example, full.example + skip, (size_t)part.examples * sizeof(int)) == 0 &&
              memcmp(part.labels, full.labels + skip, (size_t)part.examples * sizeof(int)) == 0 &&
              memcmp(part.x, full.x + skip * ef, (size_t)part.examples * ef * sizeof(float)) == 0,
              "first batch %d differs from the full run's tail", k);
        run_free(&part);
    }
    cfg.first_batch = 9;
    Loader *l;
    CHECK(loader_start(&l, &cfg) == -1 && strstr(an_last_error(), "first batch"), "%s", an_last_error());
    run_free(&full);
    free(idx);
    dataset_free(&ds);
}

/* Write an RGB PNG of hashed pixels to tmp/name. */
static char *write_png(const char *name, int w, int h, uint64_t seed) {
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", harness_tmpdir(), name);
    uint8_t *px = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(an_hash64(seed, (uint64_t)i) >> 56);
    CHECK(png_write_rgb(path, px, w, h) == 0, "%s", an_last_error());
    free(px);
    return path;
}

static char *write_garbage(const char *name) {
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", harness_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) { fputs("this is not an image at all, just some garbage bytes", f); fclose(f); }
    return path;
}

/* stderr into a file while fn runs; returns what was written (caller frees). */
static char *capture_stderr(Run (*fn)(const LoaderConfig *), const LoaderConfig *cfg, Run *out) {
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", harness_tmpdir());
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    *out = fn(cfg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "rb");
    char *text = calloc(1, 4096);
    if (f) { size_t n = fread(text, 1, 4095, f); text[n] = 0; fclose(f); }
    return text;
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

TEST(loader_skips_bad_files) {
    /* folder-kind set: a, b, x.png (garbage), c, d, e */
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = DATASET_FOLDER;
    ds.n = 6; ds.c = 3; ds.classes = 3;
    ds.paths = calloc(6, sizeof(char *));
    ds.labels = malloc(6 * sizeof(int));
    const char *names[6] = {"a.png", "b.png", "x.png", "c.png", "d.png", "e.png"};
    for (int i = 0; i < 6; i++) {
        ds.paths[i] = i == 2 ? write_garbage(names[i]) : write_png(names[i], 12 + i, 10, (uint64_t)i);
        ds.labels[i] = i % 3;
    }
    int *idx = iota(6);
    LoaderConfig cfg = plain_cfg(&ds, idx, 6, 3, LOADER_TEST, 3, 8);
    cfg.threads = 4; cfg.prefetch = 2;
    size_t ef = example_floats(&cfg);
    Run r;
    char *err = capture_stderr(run_epoch, &cfg, &r);
    CHECK(r.batches == 2 && r.n[0] == 2 && r.n[1] == 3, "%d batches, n %d %d", r.batches, r.n[0], r.n[1]);
    int want_ex[5] = {0, 1, 3, 4, 5};
    CHECK(r.examples == 5 && memcmp(r.example, want_ex, sizeof want_ex) == 0, "examples %d", r.examples);
    for (int i = 0; i < r.examples && i < 5; i++) {
        CHECK(r.labels[i] == want_ex[i] % 3, "label %d", i);
        float *want = malloc(ef * sizeof(float));
        CHECK(loader_prepare_example(&cfg, want_ex[i], 0, want) == 0, "%s", an_last_error());
        CHECK(memcmp(want, r.x + i * ef, ef * sizeof(float)) == 0, "inputs of example %d", want_ex[i]);
        free(want);
    }
    CHECK(r.skipped == 1, "skipped %d", r.skipped);
    CHECK(count_of(err, "alexnet: warning: ") == 1 && count_of(err, "x.png") == 1 &&
          count_of(err, "; skipped\n") == 1, "stderr: [%s]", err);
    free(err);
    run_free(&r);
    float *tmpx = malloc(ef * sizeof(float));
    CHECK(loader_prepare_example(&cfg, 2, 0, tmpx) == -1 && strstr(an_last_error(), "x.png"), "%s", an_last_error());
    free(tmpx);

    /* train mode: every good example once, one skip */
    cfg.mode = LOADER_TRAIN;
    err = capture_stderr(run_epoch, &cfg, &r);
    CHECK(r.examples == 5 && r.skipped == 1 && count_of(err, "x.png") == 1, "train: %d examples, %d skipped",
          r.examples, r.skipped);
    int seen[6] = {0};
    for (int i = 0; i < r.examples; i++) seen[r.example[i]]++;
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 0 && seen[3] == 1 && seen[4] == 1 && seen[5] == 1, "train seen");
    free(err);
    run_free(&r);

    /* a batch of nothing but bad files is not handed out: order x, y (bad), a, b */
    free(ds.paths[1]);
    ds.paths[1] = write_garbage("y.png");
    int order[4] = {2, 1, 0, 3};
    LoaderConfig t = plain_cfg(&ds, order, 4, 2, LOADER_TEST, 3, 8);
    t.threads = 2; t.prefetch = 2;
    err = capture_stderr(run_epoch, &t, &r);
    CHECK(r.batches == 1 && r.number[0] == 1 && r.n[0] == 2 && r.example[0] == 0 && r.example[1] == 3,
          "all-bad batch: %d batches, first number %d", r.batches, r.number[0]);
    CHECK(r.skipped == 2 && count_of(err, "alexnet: warning: ") == 2, "skipped %d: [%s]", r.skipped, err);
    free(err);
    run_free(&r);
    free(idx);
    dataset_free(&ds);
}

/* batch memory handed out and taken back through LoaderConfig's allocator hooks */
static int g_host_allocs, g_host_frees;
static void *counting_alloc(size_t bytes) { g_host_allocs++; return malloc(bytes); }
static void counting_free(void *p) { if (p) g_host_frees++; free(p); }

/* Stopping mid-epoch, in every state (workers blocked on a full ring, a batch held by the caller, a
 * slot just freed): loader_stop returns (a worker left waiting would hang the join) and gives back
 * every batch buffer it took (counted through the allocator hooks; ASan checks the rest). */
TEST(loader_stops_mid_epoch) {
    Dataset ds = memory_set(400, 3, 12, 12, 6);
    int *idx = iota(400);
    LoaderConfig cfg = plain_cfg(&ds, idx, 400, 2, LOADER_TRAIN, 3, 12);
    cfg.threads = 4; cfg.prefetch = 1;
    cfg.alloc_host = counting_alloc, cfg.free_host = counting_free;
    for (int rep = 0; rep < 20; rep++) {
        Loader *l;
        g_host_allocs = g_host_frees = 0;
        CHECK(loader_start(&l, &cfg) == 0, "%s", an_last_error());
        if (rep % 4 != 0) {
            Batch *b = loader_next(l);
            CHECK(b && b->number == 0 && b->n == 2, "first batch");
            if (rep % 4 == 1) loader_release(l, b);  /* workers wake to fill the freed slot */
            if (rep % 4 == 3) {                      /* stop while holding a batch */
                loader_release(l, b);
                b = loader_next(l);
                CHECK(b && b->number == 1, "second batch");
            }
            usleep(1000); /* let the workers block on the full ring */
        }
        loader_stop(l);
        CHECK(g_host_allocs > 0 && g_host_frees == g_host_allocs, "rep %d: %d batch buffers taken, %d given back", rep,
              g_host_allocs, g_host_frees);
    }
    /* prefetch 3, threads 2: same */
    cfg.prefetch = 3; cfg.threads = 2;
    Loader *l;
    g_host_allocs = g_host_frees = 0;
    CHECK(loader_start(&l, &cfg) == 0, "%s", an_last_error());
    Batch *b = loader_next(l);
    CHECK(b != NULL, "batch");
    loader_stop(l);
    CHECK(g_host_allocs >= 3 && g_host_frees == g_host_allocs, "%d batch buffers taken, %d given back", g_host_allocs,
          g_host_frees);
    free(idx);
    dataset_free(&ds);
}

TEST(loader_test10_views_by_hand) {
    /* paper: the 10 views are augment_test_view(256, crop, k) cut from the base image */
    Dataset ds = memory_set(5, 3, 20, 20, 7);
    int idx[3] = {4, 0, 2};
    int crop = 48;
    LoaderConfig cfg = paper_cfg(&ds, idx, 3, 2, LOADER_TEST10, crop);
    cfg.threads = 2; cfg.prefetch = 2;
    size_t img = (size_t)3 * crop * crop;
    uint8_t *base = malloc(3 * 256 * 256);
    float *want = malloc(img * sizeof(float));
    Run r = run_epoch(&cfg);
    CHECK(r.batches == 2 && r.examples == 3 && r.n[0] == 2 && r.n[1] == 1, "%d batches", r.batches);
    for (int i = 0; i < r.examples; i++) {
        CHECK(r.example[i] == idx[i], "order");
        CHECK(dataset_get_base(&ds, idx[i], base) == 0, "%s", an_last_error());
        for (int k = 0; k < 10; k++) {
            View v = augment_test_view(256, crop, k);
            augment_apply(&cfg.input.aug, base, v, NULL, want);
            CHECK(memcmp(want, r.x + (size_t)(i * 10 + k) * img, img * sizeof(float)) == 0,
                  "example %d view %d", idx[i], k);
        }
    }
    /* the views really differ (corners, mirrors) */
    CHECK(memcmp(r.x, r.x + img, img * sizeof(float)) != 0 && memcmp(r.x, r.x + 5 * img, img * sizeof(float)) != 0,
          "views 0, 1, 5 identical");
    run_free(&r);

    /* paper TEST: the centre view */
    cfg.mode = LOADER_TEST;
    r = run_epoch(&cfg);
    for (int i = 0; i < r.examples; i++) {
        CHECK(dataset_get_base(&ds, idx[i], base) == 0, "%s", an_last_error());
        augment_apply(&cfg.input.aug, base, augment_center_view(256, crop), NULL, want);
        CHECK(memcmp(want, r.x + i * img, img * sizeof(float)) == 0, "centre view of example %d", idx[i]);
    }
    run_free(&r);

    /* plain: views 0-4 the normalised image, 5-9 mirrored */
    Dataset g = memory_set(4, 1, 7, 7, 8);
    LoaderConfig p = plain_cfg(&g, idx + 1, 2, 2, LOADER_TEST10, 1, 7);
    r = run_epoch(&p);
    CHECK(r.examples == 2, "%d examples", r.examples);
    for (int i = 0; i < r.examples; i++) {
        const uint8_t *px = g.pixels + r.example[i] * 49;
        float s = 1.0f / (255.0f * p.input.std[0]), sh = p.input.mean[0] / p.input.std[0];
        for (int k = 0; k < 10; k++)
            for (int y = 0; y < 7; y++)
                for (int x = 0; x < 7; x++) {
                    float want_v = px[y * 7 + (k >= 5 ? 6 - x : x)] * s - sh;
                    float got = r.x[(size_t)(i * 10 + k) * 49 + y * 7 + x];
                    if (got != want_v) {
                        CHECK(0, "plain example %d view %d (%d,%d): %g want %g", r.example[i], k, x, y, got, want_v);
                        k = 10; y = 7; break;
                    }
                }
    }
    run_free(&r);
    free(base);
    free(want);
    dataset_free(&ds);
    dataset_free(&g);
}

TEST(loader_train_views_by_hand) {
    /* paper TRAIN: random view + lighting from (seed, epoch << 32 | example), whatever the position */
    Dataset ds = memory_set(6, 3, 16, 16, 9);
    int *idx = iota(6);
    int crop = 32;
    LoaderConfig cfg = paper_cfg(&ds, idx, 6, 4, LOADER_TRAIN, crop);
    cfg.epoch = 2; cfg.seed = 7; cfg.threads = 2; cfg.prefetch = 2;
    size_t img = (size_t)3 * crop * crop;
    uint8_t *base = malloc(3 * 256 * 256);
    float *want = malloc(img * sizeof(float));
    Run r = run_epoch(&cfg);
    CHECK(r.examples == 6, "%d examples", r.examples);
    for (int i = 0; i < r.examples; i++) {
        int ex = r.example[i];
        uint64_t counter = counter_of(2, ex);
        CHECK(dataset_get_base(&ds, ex, base) == 0, "%s", an_last_error());
        float rgb[3];
        View v = augment_random_view(&cfg.input.aug, 7, counter);
        augment_lighting(&cfg.input.aug, 7, counter, rgb);
        augment_apply(&cfg.input.aug, base, v, rgb, want);
        CHECK(memcmp(want, r.x + i * img, img * sizeof(float)) == 0, "example %d at %d", ex, i);
    }
    /* a different batch size moves examples between batches but not their views */
    cfg.batch = 5;
    Run r5 = run_epoch(&cfg);
    CHECK(r5.examples == 6 && memcmp(r5.example, r.example, 6 * sizeof(int)) == 0 &&
          memcmp(r5.x, r.x, 6 * img * sizeof(float)) == 0, "batch size changed the views");
    run_free(&r5);
    run_free(&r);
    free(base);
    free(want);
    free(idx);
    dataset_free(&ds);
}

TEST(loader_errors_and_edges) {
    Dataset ds = memory_set(10, 1, 4, 4, 10);
    int *idx = iota(10);
    Loader *l = (Loader *)&ds;
    LoaderConfig cfg = plain_cfg(&ds, idx, 10, 3, LOADER_TRAIN, 1, 4);

    LoaderConfig bad = cfg; bad.batch = 0;
    CHECK(loader_start(&l, &bad) == -1 && l == NULL && strstr(an_last_error(), "batch"), "%s", an_last_error());
    bad = cfg; bad.threads = 0;
    CHECK(loader_start(&l, &bad) == -1 && strstr(an_last_error(), "threads"), "%s", an_last_error());
    bad = cfg; bad.prefetch = 0;
    CHECK(loader_start(&l, &bad) == -1 && strstr(an_last_error(), "prefetch"), "%s", an_last_error());
    int out_of_range[2] = {3, 10};
    bad = cfg; bad.indices = out_of_range; bad.count = 2;
    CHECK(loader_start(&l, &bad) == -1 && strstr(an_last_error(), "out of range"), "%s", an_last_error());
    bad = cfg; bad.input.channels = 2;
    CHECK(loader_start(&l, &bad) == -1 && strstr(an_last_error(), "channels"), "%s", an_last_error());
    bad = paper_cfg(&ds, idx, 10, 3, LOADER_TRAIN, 24); bad.input.aug.size = 224;
    CHECK(loader_start(&l, &bad) == -1 && strstr(an_last_error(), "256"), "%s", an_last_error());

    /* no examples: no batches */
    LoaderConfig none = cfg; none.count = 0;
    CHECK(loader_start(&l, &none) == 0, "%s", an_last_error());
    CHECK(loader_batches(l) == 0 && loader_next(l) == NULL && loader_error(l) == NULL, "empty epoch");
    loader_stop(l);

    /* holding `prefetch` batches and asking for another is an error, not a hang */
    cfg.prefetch = 2; cfg.threads = 2;
    CHECK(loader_start(&l, &cfg) == 0, "%s", an_last_error());
    Batch *a = loader_next(l), *b = loader_next(l);
    CHECK(a && b && a->number == 0 && b->number == 1, "two batches");
    CHECK(loader_next(l) == NULL && loader_error(l) && strstr(loader_error(l), "held"), "%s",
          loader_error(l) ? loader_error(l) : "(no error)");
    loader_stop(l);

    /* after the last batch: NULL with no error, and NULL again */
    cfg.prefetch = 1;
    CHECK(loader_start(&l, &cfg) == 0, "%s", an_last_error());
    int n = 0;
    Batch *x;
    while ((x = loader_next(l))) { n++; loader_release(l, x); }
    CHECK(n == 4 && loader_next(l) == NULL && loader_error(l) == NULL && loader_skipped(l) == 0, "%d batches", n);
    loader_stop(l);
    loader_stop(NULL);
    free(idx);
    dataset_free(&ds);
}
