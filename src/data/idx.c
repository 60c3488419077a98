/* idx.c: MNIST / Fashion-MNIST IDX files (gzip-compressed or plain, read through zlib's gzread).
 * Images: magic 0x00000803 (unsigned bytes, 3 dimensions), count, rows, cols, then the pixels;
 * labels: magic 0x00000801, count, then one byte per label. Everything is big-endian. The split
 * is held in memory as (n, 1, rows, cols). Buffers grow with the data actually read, so a header
 * that claims more than the file holds gives a "truncated" error, never a huge allocation. */
#include "data_internal.h"
#include "../util/common.h"
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_MAX_SIDE 65536u
#define IDX_FIRST_CHUNK ((size_t)1 << 26)

/* The file names of one split, tried with ".gz" first, and also in the dotted spelling
 * ("train-images.idx3-ubyte") some MNIST mirrors use. */
static const char *const idx_names[2][2][2] = {
    /* test */  {{"t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"},
                 {"t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"}},
    /* train */ {{"train-images-idx3-ubyte", "train-images.idx3-ubyte"},
                 {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"}},
};

/* The first existing file among the spellings of (split, labels); 0 if found, else -1 and out
 * holds the canonical name (for the error message). */
static int idx_find(const char *dir, int train, int labels, char *out, size_t n) {
    static const char *const suffix[2] = {".gz", ""};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", idx_names[train][labels][s], suffix[k]);
            if (data_path_join(out, n, dir, name) == 0 && data_path_kind(out) == 2) return 0;
        }
    snprintf(out, n, "%s/%s[.gz]", dir, idx_names[train][labels][0]);
    return -1;
}

int idx_detect(const char *path) {
    char file[4096];
    for (int train = 0; train < 2; train++)
        for (int labels = 0; labels < 2; labels++)
            if (idx_find(path, train, labels, file, sizeof file) == 0) return 1;
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read up to n bytes; returns the count read, or -1 with an_error() set on a zlib error. */
static long long gz_read(gzFile f, const char *file, uint8_t *dst, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t want = n - done > (1u << 30) ? (1u << 30) : n - done;
        int got = gzread(f, dst + done, (unsigned)want);
        if (got < 0) {
            int errnum;
            const char *msg = gzerror(f, &errnum);
            return an_error("%s: %s", file, errnum == Z_ERRNO ? strerror(errno) : msg);
        }
        if (got == 0) break;
        done += (size_t)got;
    }
    return (long long)done;
}

/* Read exactly n bytes of `what` into a new buffer that grows as data arrives. */
static int gz_read_body(gzFile f, const char *file, size_t n, const char *what, uint8_t **out) {
    size_t cap = n < IDX_FIRST_CHUNK ? n : IDX_FIRST_CHUNK, done = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return an_error("%s: out of memory (%zu bytes of %s)", file, cap, what);
    for (;;) {
        long long got = gz_read(f, file, buf + done, cap - done);
        if (got < 0) { free(buf); return -1; }
        done += (size_t)got;
        if (done == n) break;
        if (done < cap) {
            free(buf);
            return an_error("%s: truncated IDX file: %s need %zu bytes, found %zu", file, what, n, done);
        }
        size_t next = cap * 2 < n ? cap * 2 : n;
        uint8_t *grown = realloc(buf, next);
        if (!grown) {
            free(buf);
            return an_error("%s: out of memory (%zu bytes of %s)", file, next, what);
        }
        buf = grown;
        cap = next;
    }
    *out = buf;
    return 0;
}

/* Open `file` and read its header of `words` big-endian 32-bit words; checks the magic. */
static gzFile idx_open(const char *file, uint32_t magic, uint32_t *hdr, int words) {
    errno = 0;
    gzFile f = gzopen(file, "rb");
    if (!f) {
        an_error("%s: cannot open: %s", file, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    uint8_t raw[16];
    long long got = gz_read(f, file, raw, (size_t)words * 4);
    if (got < 0) { gzclose(f); return NULL; }
    if (got < 4 || be32(raw) != magic) {
        if (got < 4) an_error("%s: truncated IDX file: no header", file);
        else an_error("%s: bad IDX magic 0x%08x, expected 0x%08x", file, be32(raw), magic);
        gzclose(f);
        return NULL;
    }
    if (got < words * 4) {
        an_error("%s: truncated IDX file: header cut short", file);
        gzclose(f);
        return NULL;
    }
    for (int i = 0; i < words; i++) hdr[i] = be32(raw + 4 * i);
    return f;
}

static int idx_read_images(Dataset *ds, const char *file) {
    uint32_t hdr[4];
    gzFile f = idx_open(file, IDX_IMAGES_MAGIC, hdr, 4);
    if (!f) return -1;
    uint32_t n = hdr[1], rows = hdr[2], cols = hdr[3];
    int rc = 0;
    if (n == 0 || n > INT_MAX)
        rc = an_error("%s: bad image count %u", file, n);
    else if (rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE ||
             SIZE_MAX / rows / cols < n)
        rc = an_error("%s: bad image size %ux%u", file, rows, cols);
    else
        rc = gz_read_body(f, file, (size_t)n * rows * cols, "pixels", &ds->pixels);
    gzclose(f);
    if (rc != 0) return -1;
    ds->n = (int)n;
    ds->c = 1;
    ds->h = (int)rows;
    ds->w = (int)cols;
    return 0;
}

static int idx_read_labels(Dataset *ds, const char *file, const char *images_file) {
    uint32_t hdr[2];
    gzFile f = idx_open(file, IDX_LABELS_MAGIC, hdr, 2);
    if (!f) return -1;
    uint8_t *raw = NULL;
    int rc = 0;
    if (hdr[1] != (uint32_t)ds->n)
        rc = an_error("%s: %u labels but %s has %d images", file, hdr[1], images_file, ds->n);
    else
        rc = gz_read_body(f, file, (size_t)ds->n, "labels", &raw);
    gzclose(f);
    if (rc != 0) return -1;
    ds->labels = malloc((size_t)ds->n * sizeof(int));
    if (!ds->labels) { free(raw); return an_error("%s: out of memory for %d labels", file, ds->n); }
    int max = 0;
    for (int i = 0; i < ds->n; i++) {
        ds->labels[i] = raw[i];
        if (raw[i] > max) max = raw[i];
    }
    ds->classes = max + 1;
    free(raw);
    return 0;
}

/* IDX files carry no class names. A folder whose name says Fashion-MNIST ("fashion" or "fmnist",
 * any case, as Debian's /usr/share/datasets/fashion-mnist) with 10 classes gets Zalando's names;
 * any other IDX set has none (MNIST's digits are their indices). */
static int fashion_names(Dataset *ds, const char *path) {
    static const char *names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    char lower[4096];
    size_t n = 0;
    for (; path[n] && n + 1 < sizeof lower; n++) lower[n] = (char)tolower((unsigned char)path[n]);
    lower[n] = 0;
    if (ds->classes != 10 || (!strstr(lower, "fashion") && !strstr(lower, "fmnist"))) return 0;
    if (!(ds->class_names = calloc(10, sizeof *ds->class_names))) return an_error("%s: out of memory", path);
    for (int k = 0; k < 10; k++)
        if (!(ds->class_names[k] = strdup(names[k]))) return an_error("%s: out of memory", path);
    return 0;
}

int idx_load(Dataset *ds, const char *path, int train) {
    char images[4096], labels[4096];
    train = train ? 1 : 0;
    ds->kind = DATASET_IDX;
    if (idx_find(path, train, 0, images, sizeof images) != 0)
        return an_error("%s: no such file", images);
    if (idx_find(path, train, 1, labels, sizeof labels) != 0)
        return an_error("%s: no such file", labels);
    if (idx_read_images(ds, images) != 0 || idx_read_labels(ds, labels, images) != 0) return -1;
    return fashion_names(ds, path);
}
