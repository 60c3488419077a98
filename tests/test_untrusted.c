/* test_untrusted.c: sizes and bytes from untrusted files. Every reader must turn a crafted or
 * damaged file into a one-line error naming the file, never a crash, a hang or a huge allocation:
 *   - a checkpoint whose tensor shapes or input size would make checkpoint_load_net allocate
 *     hundreds of megabytes before finding out the file does not fit the model;
 *   - JPEG and PNG headers that declare more pixels than IMAGE_MAX_PIXELS or a side above
 *     IMAGE_MAX_SIDE (the decoder must refuse before allocating);
 *   - a shard file truncated after it was opened (reads must report it, not die of SIGBUS);
 *   - the inputs the libFuzzer harnesses of fuzz/ found (regressions, one test each).
 * The risky calls run in a child process, so a crash on old code is reported as a failure with
 * the signal instead of ending the test run. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/data/image.h"
#include "../src/data/shard.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <jpeglib.h> /* after stdio.h */

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *tmp(const char *rel) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ & 7];
    snprintf(p, sizeof buf[0], "untrusted/%s", rel);
    harness_mkdirs(harness_path("untrusted"));
    return harness_path(p);
}

static int has(const char *s, const char *what) { return s && strstr(s, what) != NULL; }

/* Run fn(arg) in a child process. fn writes a verdict line into msg ("" = passed). Returns 0 when
 * the child passed; else msg says why (its verdict, or the signal that killed it). */
typedef void (*ChildFn)(void *arg, char *msg, size_t n);
static int in_child(ChildFn fn, void *arg, char *msg, size_t n) {
    int fd[2];
    msg[0] = 0;
    fflush(stdout), fflush(stderr);
    if (pipe(fd) != 0) { snprintf(msg, n, "pipe failed"); return -1; }
    pid_t pid = fork();
    if (pid < 0) { close(fd[0]), close(fd[1]); snprintf(msg, n, "fork failed"); return -1; }
    if (pid == 0) {
        char out[1024] = "";
        close(fd[0]);
        fn(arg, out, sizeof out);
        ssize_t w = write(fd[1], out, strlen(out));
        (void)w;
        close(fd[1]);
        _exit(out[0] ? 1 : 0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd[0], msg + got, n - 1 - got)) > 0) got += (size_t)r;
    msg[got] = 0;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        snprintf(msg, n, "the child died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (!msg[0]) snprintf(msg, n, "the child exited with status %d", WEXITSTATUS(status));
        return -1;
    }
    return 0;
}

/* Peak resident memory of this process in KiB (VmHWM), after resetting it where the kernel
 * allows (echo 5 > /proc/self/clear_refs). */
static long peak_rss_kib(int reset) {
    if (reset) {
        FILE *c = fopen("/proc/self/clear_refs", "w");
        if (c) { fputs("5", c); fclose(c); }
    }
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kib;
}

#define read_all(path, n) ((uint8_t *)harness_read_file(path, n))

/* ---- (a) checkpoints: shapes validated before any allocation ------------------------------- */

/* A valid convnet4 checkpoint (3 channels, 10 classes, 32x32) at path. 0 or -1. */
static int write_convnet4(const char *path) {
    const ModelSpec *spec = model_find("convnet4");
    Net net;
    if (!spec || net_create(&net, spec, 3, 10, 32, 1)) return -1;
    net_init(&net, 1);
    Norm norm = norm_imagenet(3);
    int rc = checkpoint_save(path, &net, NULL, NULL, &norm, NULL);
    net_free(&net);
    return rc;
}

/* Rewrite the checkpoint src into dst with tensor `name` given `shape` (nbytes from the shape, the
 * data zeros) and metadata key `key` set to `value` (either may be NULL: unchanged). */
static int rewrite_checkpoint(const char *src, const char *dst, const char *name, int ndim,
                              const int64_t *shape, const char *key, const char *value) {
    StFile f;
    if (st_read(src, &f)) return -1;
    StTensor *t = calloc((size_t)f.n, sizeof *t);
    const char **kv = calloc((size_t)2 * f.n_meta + 3, sizeof *kv);
    void *zeros = NULL;
    int rc = t && kv ? 0 : -1, nkv = 0;
    for (int i = 0; rc == 0 && i < f.n; i++) {
        t[i] = f.tensors[i];
        if (name && !strcmp(t[i].name, name)) {
            t[i].ndim = ndim;
            size_t count = 1;
            for (int d = 0; d < ndim; d++) t[i].shape[d] = shape[d], count *= (size_t)shape[d];
            t[i].nbytes = count * 4;
            free(zeros);
            zeros = calloc(count ? count : 1, 4);
            t[i].data = zeros;
            if (!zeros) rc = -1;
        }
    }
    int replaced = 0;
    for (int i = 0; rc == 0 && i < f.n_meta; i++) {
        kv[nkv++] = f.meta_keys[i];
        if (key && !strcmp(f.meta_keys[i], key)) kv[nkv++] = value, replaced = 1;
        else kv[nkv++] = f.meta_values[i];
    }
    if (key && !replaced) kv[nkv++] = key, kv[nkv++] = value;
    kv[nkv] = NULL;
    if (rc == 0) rc = st_write(dst, t, f.n, kv);
    free(zeros), free(t), free(kv);
    st_free(&f);
    return rc;
}

typedef struct { const char *path, *expect; } LoadCase;

/* In a child: checkpoint_load_net must fail with a message naming the file (and containing
 * `expect`), and must not have grown the peak memory by more than 64 MiB on the way. */
static void load_in_child(void *arg, char *msg, size_t n) {
    const LoadCase *c = arg;
    const ModelSpec *spec = model_find("convnet4");
    Net net;
    Norm norm;
    StFile file;
    long before = peak_rss_kib(1);
    int rc = checkpoint_load_net(c->path, spec, 1, &net, &norm, &file);
    long grown = peak_rss_kib(0) - before;
    if (rc == 0) {
        snprintf(msg, n, "%s: loaded", c->path);
        net_free(&net), norm_free(&norm), st_free(&file);
        return;
    }
    if (!has(an_last_error(), c->path) || !has(an_last_error(), c->expect))
        snprintf(msg, n, "message '%s' should name the file and say '%s'", an_last_error(), c->expect);
    else if (before > 0 && grown > 64 * 1024)
        snprintf(msg, n, "peak memory grew by %ld MiB before the error '%s'", grown / 1024, an_last_error());
}

TEST(untrusted_checkpoint_in_size_checked_before_allocation) {
    const char *good = tmp("c4.safetensors"), *bad = tmp("c4-in1000.safetensors");
    CHECK(write_convnet4(good) == 0, "%s", an_last_error());
    /* the weights are those of a 32x32 input; the metadata claims 1000x1000: the old loader built
     * the whole network (about 540 MB of activations) before noticing the classifier's shape */
    CHECK(rewrite_checkpoint(good, bad, NULL, 0, NULL, "in_size", "1000") == 0, "%s", an_last_error());
    LoadCase c = {bad, "fc4.weight"};
    char msg[1024];
    CHECK(in_child(load_in_child, &c, msg, sizeof msg) == 0, "%s", msg);
    /* and an input size that is no number at all, or absurd */
    CHECK(rewrite_checkpoint(good, bad, NULL, 0, NULL, "in_size", "99999999999") == 0, "%s", an_last_error());
    c.expect = "input size";
    CHECK(in_child(load_in_child, &c, msg, sizeof msg) == 0, "%s", msg);
}

TEST(untrusted_checkpoint_zero_dim_shape_checked_before_allocation) {
    const char *good = tmp("c4b.safetensors"), *bad = tmp("c4-zero.safetensors");
    CHECK(write_convnet4(good) == 0, "%s", an_last_error());
    /* conv1.weight [0, 20000, 5, 5] holds no bytes, so the file is consistent, but the old loader
     * took 20000 input channels from it and allocated ~370 MB first */
    const int64_t shape[4] = {0, 20000, 5, 5};
    CHECK(rewrite_checkpoint(good, bad, "conv1.weight", 4, shape, NULL, NULL) == 0, "%s", an_last_error());
    LoadCase c = {bad, "conv1.weight"};
    char msg[1024];
    CHECK(in_child(load_in_child, &c, msg, sizeof msg) == 0, "%s", msg);
    /* a classifier of [2000000000, 0]: 2e9 classes from a tensor of no bytes */
    const int64_t fc[2] = {2000000000, 0};
    CHECK(rewrite_checkpoint(good, bad, "fc4.weight", 2, fc, NULL, NULL) == 0, "%s", an_last_error());
    c.expect = "fc4.weight";
    CHECK(in_child(load_in_child, &c, msg, sizeof msg) == 0, "%s", msg);
    /* the untouched file still loads */
    Net net;
    Norm norm;
    StFile file;
    CHECK(checkpoint_load_net(good, model_find("convnet4"), 2, &net, &norm, &file) == 0, "%s", an_last_error());
    if (!an_last_error()[0] || net.params) {
        CHECK(net.in_c == 3 && net.classes == 10 && net.in_size == 32, "%d %d %d", net.in_c, net.classes, net.in_size);
        net_free(&net), norm_free(&norm), st_free(&file);
    }
}

/* A convnet4 training checkpoint (momentum and state) at path. 0 or -1. */
static int write_convnet4_training(const char *path) {
    const ModelSpec *spec = model_find("convnet4");
    Net net;
    if (!spec || net_create(&net, spec, 3, 10, 32, 1)) return -1;
    net_init(&net, 1);
    Norm norm = norm_imagenet(3);
    float *momentum = calloc(net.nparams, sizeof(float));
    TrainState st = {.epoch = 3, .step = 30, .lr = 0.01f, .seed = 5, .best_err = 0.25};
    int rc = momentum ? checkpoint_save(path, &net, momentum, &st, &norm, "caffe") : -1;
    free(momentum);
    net_free(&net);
    return rc;
}

TEST(untrusted_checkpoint_training_state_ranges) {
    const char *good = tmp("c4t.safetensors"), *bad = tmp("c4t-bad.safetensors");
    CHECK(write_convnet4_training(good) == 0, "%s", an_last_error());
    /* counters that would overflow the training loop's int arithmetic, and a learning rate that
     * does not fit a float (converting it is undefined behaviour) */
    static const char *const cases[][2] = {{"epoch", "2147483647"}, {"step_in_epoch", "-1"}, {"lr", "1e300"},
                                           {"lr", "nan"}, {"drops", "-5"}, {"best_err", "inf"}};
    for (int i = 0; i < 6; i++) {
        CHECK(rewrite_checkpoint(good, bad, NULL, 0, NULL, cases[i][0], cases[i][1]) == 0, "%s", an_last_error());
        Net net;
        Norm norm;
        StFile file;
        int rc = checkpoint_load_net(bad, model_find("convnet4"), 1, &net, &norm, &file);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc != 0) continue;
        float *momentum = calloc(net.nparams, sizeof(float));
        TrainState st;
        rc = momentum ? checkpoint_read_state(bad, &file, &net, momentum, &st) : 0;
        CHECK(rc == -1 && has(an_last_error(), bad) && has(an_last_error(), "corrupt training state") &&
                  has(an_last_error(), cases[i][0]),
              "%s = %s: rc %d, '%s'", cases[i][0], cases[i][1], rc, an_last_error());
        free(momentum);
        net_free(&net), norm_free(&norm), st_free(&file);
    }
    /* the untouched checkpoint resumes */
    Net net;
    Norm norm;
    StFile file;
    CHECK(checkpoint_load_net(good, model_find("convnet4"), 1, &net, &norm, &file) == 0, "%s", an_last_error());
    float *momentum = calloc(net.nparams, sizeof(float));
    TrainState st;
    CHECK(momentum && checkpoint_read_state(good, &file, &net, momentum, &st) == 0 && st.epoch == 3 && st.step == 30,
          "%s", an_last_error());
    free(momentum);
    net_free(&net), norm_free(&norm), st_free(&file);
}

/* ---- (b) image headers: refuse absurd sizes before allocating ------------------------------ */

/* A small real JPEG with its SOF frame patched to declare w x h. 0 or -1. */
static int write_jpeg_declaring(const char *path, int w, int h) {
    uint8_t px[8 * 8 * 3];
    for (int i = 0; i < (int)sizeof px; i++) px[i] = (uint8_t)(i * 7);
    if (harness_write_jpeg(path, px, 8, 8, 3, 90)) return -1;
    size_t n;
    uint8_t *b = read_all(path, &n);
    if (!b) return -1;
    int done = -1;
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC2)) { /* SOF0 / SOF2 */
            b[i + 5] = (uint8_t)(h >> 8), b[i + 6] = (uint8_t)h;
            b[i + 7] = (uint8_t)(w >> 8), b[i + 8] = (uint8_t)w;
            done = harness_write(path, b, n);
            break;
        }
    free(b);
    return done;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Append a PNG chunk (length, type, data, CRC) at out + *n. */
static void png_chunk(uint8_t *out, size_t *n, const char *type, const uint8_t *data, uint32_t len) {
    put_be32(out + *n, len);
    memcpy(out + *n + 4, type, 4);
    if (len) memcpy(out + *n + 8, data, len);
    put_be32(out + *n + 8 + len, (uint32_t)crc32(0, out + *n + 4, 4 + len));
    *n += 12 + len;
}

/* A PNG whose IHDR declares w x h RGB pixels, followed by one small IDAT and IEND. 0 or -1. */
static int write_png_declaring(const char *path, uint32_t w, uint32_t h) {
    uint8_t out[512], ihdr[13], raw[64], z[128];
    size_t n = 0;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, sig, 8);
    n = 8;
    put_be32(ihdr, w), put_be32(ihdr + 4, h);
    ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = ihdr[11] = ihdr[12] = 0;
    png_chunk(out, &n, "IHDR", ihdr, 13);
    memset(raw, 0, sizeof raw);
    uLongf zlen = sizeof z;
    if (compress(z, &zlen, raw, sizeof raw) != Z_OK) return -1;
    png_chunk(out, &n, "IDAT", z, (uint32_t)zlen);
    png_chunk(out, &n, "IEND", NULL, 0);
    return harness_write(path, out, n);
}

typedef struct { const char *path, *size; } ImageCase;

static void image_in_child(void *arg, char *msg, size_t n) {
    const ImageCase *c = arg;
    Image img;
    int rc = image_load(c->path, &img);
    if (rc == 0) {
        snprintf(msg, n, "%s: decoded as %dx%d", c->path, img.w, img.h);
        image_free(&img);
    } else if (!has(an_last_error(), c->path) || !has(an_last_error(), c->size) ||
               !has(an_last_error(), "too large")) {
        snprintf(msg, n, "message '%s' should name the file, say 'too large' and give the size %s",
                 an_last_error(), c->size);
    }
}

TEST(untrusted_image_header_size_limit) {
    /* 16000 x 16000 = 256 megapixels: under the old 2^28 limit, so the old decoder allocated 768 MB
     * for it (in every loader thread) before finding the data truncated */
    const char *jpg = tmp("huge.jpg"), *wide = tmp("wide.jpg"), *png = tmp("huge.png"), *wpng = tmp("wide.png");
    CHECK(write_jpeg_declaring(jpg, 16000, 16000) == 0, "could not write %s", jpg);
    CHECK(write_jpeg_declaring(wide, 40000, 100) == 0, "could not write %s", wide);
    CHECK(write_png_declaring(png, 16000, 16000) == 0, "could not write %s", png);
    CHECK(write_png_declaring(wpng, 100, 40000) == 0, "could not write %s", wpng);
    const ImageCase cases[] = {{jpg, "16000x16000"}, {wide, "40000x100"}, {png, "16000x16000"}, {wpng, "100x40000"}};
    for (int i = 0; i < 4; i++) {
        char msg[1024];
        CHECK(in_child(image_in_child, (void *)&cases[i], msg, sizeof msg) == 0, "%s", msg);
    }
    /* the limits are what image.h says, and a normal picture still decodes */
#if defined(IMAGE_MAX_SIDE) && defined(IMAGE_MAX_PIXELS)
    CHECK(IMAGE_MAX_SIDE == 32768 && IMAGE_MAX_PIXELS == 100000000L, "limits changed");
#else
    CHECK(0, "image.h defines no IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS");
#endif
    const char *ok = tmp("ok.jpg");
    CHECK(write_jpeg_declaring(ok, 8, 8) == 0, "could not write %s", ok);
    Image img;
    CHECK(image_load(ok, &img) == 0 && img.w == 8 && img.h == 8, "%s", an_last_error());
    image_free(&img);
}

/* A progressive JPEG (libjpeg's simple progression) of w x h pixels into a malloc'd buffer. */
static uint8_t *progressive_jpeg(int w, int h, size_t *len) {
    unsigned char *mem = NULL;
    unsigned long n = 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[3 * 64];
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < 3 * w; i++) row[i] = (uint8_t)(i * 13 + c.next_scanline * 5);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *len = n;
    return mem;
}

TEST(untrusted_jpeg_repeated_scans) {
    /* found by hand while fuzzing fuzz_image: a 75 KB file (one scan of a progressive 17x9 JPEG
     * repeated 2000 times, the frame patched to 8000x8000) decoded for 53 s; every scan is a pass
     * over the whole image. Here: 150 copies at 2000x2000. */
    size_t n;
    uint8_t *jpg = progressive_jpeg(16, 16, &n);
    CHECK(jpg != NULL, "could not encode");
    if (!jpg) return;
    size_t last_sos = 0, eoi = 0;
    for (size_t i = 2; i + 1 < n;) {
        if (jpg[i] != 0xFF) { i++; continue; }
        uint8_t m = jpg[i + 1];
        if (m == 0xD9) { eoi = i; break; }
        if (i + 3 >= n) break;
        if (m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF) { i++; continue; } /* inside scan data */
        if (m == 0xC2) { /* SOF2: height, width */
            jpg[i + 5] = 2000 >> 8, jpg[i + 6] = 2000 & 255, jpg[i + 7] = 2000 >> 8, jpg[i + 8] = 2000 & 255;
        }
        if (m == 0xDA) last_sos = i;
        i += 2 + ((size_t)jpg[i + 2] << 8 | jpg[i + 3]);
    }
    CHECK(last_sos > 0 && eoi > last_sos, "no scans found");
    if (!(last_sos > 0 && eoi > last_sos)) { free(jpg); return; }
    size_t scan = eoi - last_sos, copies = 150, total = eoi + copies * scan + 2;
    uint8_t *bomb = malloc(total);
    memcpy(bomb, jpg, eoi);
    for (size_t k = 0; k < copies; k++) memcpy(bomb + eoi + k * scan, jpg + last_sos, scan);
    bomb[total - 2] = 0xFF, bomb[total - 1] = 0xD9;
    const char *path = tmp("scans.jpg");
    CHECK(harness_write(path, bomb, total) == 0, "write");
    Image img;
    double t0 = an_now();
    int rc = image_load(path, &img);
    CHECK(rc == -1 && has(an_last_error(), path) && has(an_last_error(), "scans"), "rc %d in %.2f s: '%s'", rc,
          an_now() - t0, an_last_error());
    if (rc == 0) image_free(&img);
    /* the same file without the copies still decodes */
    bomb[eoi] = 0xFF, bomb[eoi + 1] = 0xD9;
    CHECK(harness_write(path, bomb, eoi + 2) == 0 && image_load(path, &img) == 0 && img.w == 2000, "%s",
          an_last_error());
    image_free(&img);
    free(bomb), free(jpg);
}

/* ---- (c) shard files truncated while in use ------------------------------------------------ */

#define IMG_BYTES ((size_t)3 * 256 * 256)

static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t fnv(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* A valid shard (docs/FORMATS.md) with n0 train and n1 val images of two classes; image k of a
 * split is filled with the byte k + 1 (val: k + 101). Returns its size, or 0. */
static size_t write_small_shard(const char *path, uint32_t n0, uint32_t n1) {
    const uint64_t names = 128, images0 = 4096, images1 = images0 + n0 * IMG_BYTES;
    const uint64_t labels0 = images1 + n1 * IMG_BYTES, labels1 = labels0 + 4ull * n0;
    const uint64_t mean = (labels1 + 4ull * n1 + 4095) / 4096 * 4096, pca = mean + 4 * IMG_BYTES;
    const uint64_t size = pca + 48 + 16;
    uint8_t *b = calloc(size, 1);
    if (!b) return 0;
    memcpy(b, "ALEXSHRD", 8);
    le32(b + 8, 1), le32(b + 12, 128), le32(b + 16, 256), le32(b + 20, 3), le32(b + 24, 2);
    le32(b + 28, n0), le32(b + 32, n1);
    le64(b + 40, names), le64(b + 48, 4);
    le64(b + 56, labels0), le64(b + 64, labels1), le64(b + 72, images0), le64(b + 80, images1);
    le64(b + 88, mean), le64(b + 96, pca), le64(b + 104, size);
    le64(b + 120, fnv(b, 120));
    memcpy(b + names, "a\0b\0", 4);
    for (uint32_t k = 0; k < n0; k++) memset(b + images0 + k * IMG_BYTES, (int)(k + 1), IMG_BYTES), le32(b + labels0 + 4 * k, k & 1);
    for (uint32_t k = 0; k < n1; k++) memset(b + images1 + k * IMG_BYTES, (int)(k + 101), IMG_BYTES), le32(b + labels1 + 4 * k, k & 1);
    float one = 1.0f;
    memcpy(b + pca, &one, 4);
    memcpy(b + size - 16, "ALEXEND!", 8);
    memcpy(b + size - 8, b + 120, 8);
    int rc = harness_write(path, b, size);
    free(b);
    return rc == 0 ? (size_t)size : 0;
}

typedef struct { const char *path; size_t size; } ShardCase;

/* Open the shard, truncate the file, then read: every read must report the truncation. */
static void truncated_in_child(void *arg, char *msg, size_t n) {
    const ShardCase *c = arg;
    Dataset ds;
    if (dataset_load(&ds, c->path, 1) != 0) { snprintf(msg, n, "load: %s", an_last_error()); return; }
    uint8_t *buf = malloc(IMG_BYTES);
    if (!buf || dataset_get_base(&ds, 1, buf) != 0 || buf[0] != 2) {
        snprintf(msg, n, "reading before the truncation: %s", an_last_error());
        free(buf), dataset_free(&ds);
        return;
    }
    if (truncate(c->path, 8192) != 0) { snprintf(msg, n, "truncate failed"); free(buf), dataset_free(&ds); return; }
    char want[600];
    snprintf(want, sizeof want, "%s: truncated while in use (was %zu bytes, now 8192)", c->path, c->size);
    int rc = dataset_get_base(&ds, 1, buf);
    if (rc == 0 || !has(an_last_error(), want))
        snprintf(msg, n, "dataset_get_base after the truncation: rc %d, '%s' (expected '%s')", rc, an_last_error(), want);
    else if (dataset_base(&ds, 0, buf) != NULL || !has(an_last_error(), want))
        snprintf(msg, n, "dataset_base after the truncation: '%s'", an_last_error());
    else if (dataset_get_image(&ds, 0, 3, 32, buf) == 0 || !has(an_last_error(), want))
        snprintf(msg, n, "dataset_get_image after the truncation: '%s'", an_last_error());
    free(buf);
    dataset_free(&ds);
}

TEST(untrusted_shard_truncated_while_in_use) {
    const char *path = tmp("small.shard");
    size_t size = write_small_shard(path, 2, 1);
    CHECK(size > 0, "could not write %s", path);
    Shard s;
    CHECK(shard_open(path, &s) == 0, "%s", an_last_error());
    shard_close(&s);
    ShardCase c = {path, size};
    char msg[1024];
    CHECK(in_child(truncated_in_child, &c, msg, sizeof msg) == 0, "%s", msg);
    /* a file shorter than its header says is refused when opening, naming both sizes */
    CHECK(write_small_shard(path, 2, 1) == size && truncate(path, (off_t)size - 4096) == 0, "rewrite");
    CHECK(shard_open(path, &s) == -1 && has(an_last_error(), path) && has(an_last_error(), "truncated"),
          "%s", an_last_error());
}

/* ---- the command line ---------------------------------------------------------------------- */

TEST(untrusted_cli_int_list_out_of_range) {
    /* --lr-drops took any long and kept its low 32 bits: 4294967297 became epoch 1 */
    harness_expect_error("train --model convnet4 --data /nonexistent --lr-drops 4294967297", "--lr-drops");
    harness_expect_error("train --model convnet4 --data /nonexistent --lr-drops 2,99999999999999999999", "--lr-drops");
}
