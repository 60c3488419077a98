/* shard.c: the preprocessed dataset file of `alexnet prep` (layout in docs/FORMATS.md, "Shard
 * files"): writing it from an image folder (decoding in parallel, writing in dataset order so the
 * bytes do not depend on the thread count), mapping and validating it for reading, and the image
 * statistics it stores (mean image, RGB covariance eigenpairs for PCA lighting).
 *
 * File order: header (128 bytes) | class names | pad to 4096 | train images | val images |
 * train labels | val labels | pad to 4096 | mean image | PCA | trailer (16 bytes). The header is
 * written last (the offsets are only known once the skipped files are), into path.tmp, which is
 * then renamed over path. The format is little-endian; readers map labels, images and floats
 * directly, so a big-endian host is refused. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shard.h"
#include "dataset.h"
#include "../util/common.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_MAGIC "ALEXSHRD"
#define SHARD_END_MAGIC "ALEXEND!"
#define SHARD_VERSION 1u
#define SHARD_HEADER_BYTES 128u
#define SHARD_TRAILER_BYTES 16u
#define SHARD_ALIGN 4096u
#define SHARD_CHUNK 256 /* images decoded per parallel step: 48 MiB of pixels */

/* ---- little-endian fields and the header ---------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* FNV-1a, 64 bit */
static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

typedef struct Header {
    uint32_t version, header_bytes, size, channels, classes, n[2];
    uint64_t names_off, names_bytes, labels_off[2], images_off[2], mean_off, pca_off, file_size;
} Header;

/* Byte offsets inside the 128-byte header (see docs/FORMATS.md). */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_BYTES = 12, H_SIZE = 16, H_CHANNELS = 20, H_CLASSES = 24,
    H_N_TRAIN = 28, H_N_VAL = 32, H_NAMES_OFF = 40, H_NAMES_BYTES = 48, H_LABELS_OFF = 56,
    H_IMAGES_OFF = 72, H_MEAN_OFF = 88, H_PCA_OFF = 96, H_FILE_SIZE = 104, H_CHECKSUM = 120
};

static void header_pack(const Header *h, uint8_t out[SHARD_HEADER_BYTES]) {
    memset(out, 0, SHARD_HEADER_BYTES);
    memcpy(out + H_MAGIC, SHARD_MAGIC, 8);
    put32(out + H_VERSION, h->version);
    put32(out + H_HEADER_BYTES, h->header_bytes);
    put32(out + H_SIZE, h->size);
    put32(out + H_CHANNELS, h->channels);
    put32(out + H_CLASSES, h->classes);
    put32(out + H_N_TRAIN, h->n[0]);
    put32(out + H_N_VAL, h->n[1]);
    put64(out + H_NAMES_OFF, h->names_off);
    put64(out + H_NAMES_BYTES, h->names_bytes);
    for (int s = 0; s < 2; s++) {
        put64(out + H_LABELS_OFF + 8 * s, h->labels_off[s]);
        put64(out + H_IMAGES_OFF + 8 * s, h->images_off[s]);
    }
    put64(out + H_MEAN_OFF, h->mean_off);
    put64(out + H_PCA_OFF, h->pca_off);
    put64(out + H_FILE_SIZE, h->file_size);
    put64(out + H_CHECKSUM, fnv1a64(out, H_CHECKSUM));
}

static void header_unpack(const uint8_t *in, Header *h) {
    h->version = get32(in + H_VERSION);
    h->header_bytes = get32(in + H_HEADER_BYTES);
    h->size = get32(in + H_SIZE);
    h->channels = get32(in + H_CHANNELS);
    h->classes = get32(in + H_CLASSES);
    h->n[0] = get32(in + H_N_TRAIN);
    h->n[1] = get32(in + H_N_VAL);
    h->names_off = get64(in + H_NAMES_OFF);
    h->names_bytes = get64(in + H_NAMES_BYTES);
    for (int s = 0; s < 2; s++) {
        h->labels_off[s] = get64(in + H_LABELS_OFF + 8 * s);
        h->images_off[s] = get64(in + H_IMAGES_OFF + 8 * s);
    }
    h->mean_off = get64(in + H_MEAN_OFF);
    h->pca_off = get64(in + H_PCA_OFF);
    h->file_size = get64(in + H_FILE_SIZE);
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- reading ------------------------------------------------------------------------------ */

int shard_is_file(const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[8];
    int ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, SHARD_MAGIC, 8) == 0;
    fclose(f);
    return ok;
}

/* Is [off, off + len) inside [lo, hi)? (no overflow) */
static int in_range(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi) {
    return off >= lo && off <= hi && len <= hi - off;
}

/* Check the header of the mapped file m (len bytes) and its sections against the file's length;
 * fill *h. Returns 0 or -1. */
static int shard_validate(const char *path, const uint8_t *m, uint64_t len, Header *h) {
    if (len < 8 || memcmp(m, SHARD_MAGIC, 8) != 0) {
        if (len < 8 && len > 0 && memcmp(m, SHARD_MAGIC, (size_t)len) == 0)
            return an_error("%s: truncated: %llu bytes, shorter than the %u-byte shard header", path,
                            (unsigned long long)len, SHARD_HEADER_BYTES);
        return an_error("%s: not a shard file (no \"%s\" magic; write one with `alexnet prep`)", path,
                        SHARD_MAGIC);
    }
    if (len < SHARD_HEADER_BYTES)
        return an_error("%s: truncated: %llu bytes, shorter than the %u-byte shard header", path,
                        (unsigned long long)len, SHARD_HEADER_BYTES);
    header_unpack(m, h);
    if (h->version != SHARD_VERSION)
        return an_error("%s: unsupported shard version %u (this build reads version %u; run `alexnet "
                        "prep` again)", path, h->version, SHARD_VERSION);
    if (h->header_bytes != SHARD_HEADER_BYTES)
        return an_error("%s: corrupt shard header (header size %u, expected %u)", path, h->header_bytes,
                        SHARD_HEADER_BYTES);
    uint64_t sum = get64(m + H_CHECKSUM);
    if (sum != fnv1a64(m, H_CHECKSUM)) return an_error("%s: corrupt shard header (checksum mismatch)", path);
    if (len < h->file_size)
        return an_error("%s: truncated: %llu of %llu bytes", path, (unsigned long long)len,
                        (unsigned long long)h->file_size);
    if (len > h->file_size)
        return an_error("%s: %llu bytes, but its header says %llu (extra data after the end)", path,
                        (unsigned long long)len, (unsigned long long)h->file_size);
    const uint8_t *tail = m + len - SHARD_TRAILER_BYTES; /* len >= 128 here */
    if (len < SHARD_HEADER_BYTES + SHARD_TRAILER_BYTES || memcmp(tail, SHARD_END_MAGIC, 8) != 0 ||
        get64(tail + 8) != sum)
        return an_error("%s: no valid end marker (the file was not completely written)", path);
    if (h->size != SHARD_IMAGE_SIZE || h->channels != 3)
        return an_error("%s: images of %u channels %ux%u (this build reads 3 channels %dx%d)", path,
                        h->channels, h->size, h->size, SHARD_IMAGE_SIZE, SHARD_IMAGE_SIZE);
    if (h->classes < 1 || h->classes > (1u << 24))
        return an_error("%s: corrupt shard header (%u classes)", path, h->classes);
    if (h->n[0] > (uint32_t)0x7fffffff || h->n[1] > (uint32_t)0x7fffffff)
        return an_error("%s: corrupt shard header (%u + %u images)", path, h->n[0], h->n[1]);
    uint64_t lo = SHARD_HEADER_BYTES, hi = len - SHARD_TRAILER_BYTES;
    uint64_t image_bytes = 3ull * h->size * h->size;
    const char *bad = NULL;
    if (!in_range(h->names_off, h->names_bytes, lo, hi) || h->names_bytes < 2ull * h->classes)
        bad = "class names";
    for (int s = 0; s < 2 && !bad; s++) {
        if (!in_range(h->labels_off[s], 4ull * h->n[s], lo, hi) || h->labels_off[s] % 4) bad = "labels";
        else if (!in_range(h->images_off[s], image_bytes * h->n[s], lo, hi) || h->images_off[s] % SHARD_ALIGN)
            bad = "images";
    }
    if (!bad && (!in_range(h->mean_off, 4 * image_bytes, lo, hi) || h->mean_off % 4)) bad = "mean image";
    if (!bad && (!in_range(h->pca_off, 48, lo, hi) || h->pca_off % 4)) bad = "PCA eigenpairs";
    if (bad) return an_error("%s: corrupt shard header (the %s section lies outside the file)", path, bad);
    return 0;
}

int shard_open(const char *path, Shard *s) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (!path) return an_error("shard: no file given");
    if (!host_is_little_endian()) return an_error("%s: shard files need a little-endian machine", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return an_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return an_error("%s: not a regular file", path);
    }
    uint64_t len = (uint64_t)st.st_size;
    if (len == 0) {
        close(fd);
        return an_error("%s: not a shard file (empty)", path);
    }
    void *map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    int err = errno;
    if (map == MAP_FAILED) {
        close(fd);
        return an_error("%s: cannot map: %s", path, strerror(err));
    }
    /* the file stays open: images are read with pread (shard_read), so a file truncated while in
     * use is reported instead of killing the process with SIGBUS on a mapped page */
    s->map = map;
    s->map_size = (size_t)len;
    s->fd = fd;
    if (!(s->path = strdup(path))) {
        shard_close(s);
        return an_error("%s: out of memory", path);
    }
    const uint8_t *m = map;
    Header h;
    memset(&h, 0, sizeof h);
    if (shard_validate(path, m, len, &h) != 0) {
        shard_close(s);
        return -1;
    }
    s->size = (int)h.size;
    s->classes = (int)h.classes;
    /* class names: `classes` NUL-terminated, non-empty strings filling the section */
    s->class_names = calloc(h.classes, sizeof *s->class_names);
    if (!s->class_names) {
        shard_close(s);
        return an_error("%s: out of memory (class names)", path);
    }
    const char *p = (const char *)m + h.names_off, *end = p + h.names_bytes;
    for (uint32_t k = 0; k < h.classes; k++) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        if (!z || z == p) {
            shard_close(s);
            return an_error("%s: corrupt class-name table (name %u)", path, k);
        }
        s->class_names[k] = (char *)p;
        p = z + 1;
    }
    if (p != end) {
        shard_close(s);
        return an_error("%s: corrupt class-name table (%zu bytes left over)", path, (size_t)(end - p));
    }
    for (int sp = 0; sp < 2; sp++) {
        s->n[sp] = (int)h.n[sp];
        s->labels[sp] = (const int32_t *)(m + h.labels_off[sp]);
        s->images[sp] = m + h.images_off[sp];
        for (int i = 0; i < s->n[sp]; i++)
            if (s->labels[sp][i] < 0 || s->labels[sp][i] >= s->classes) {
                int bad = s->labels[sp][i];
                shard_close(s);
                return an_error("%s: %s label %d is %d (expected 0..%u)", path, sp ? "val" : "train", i,
                                bad, h.classes - 1);
            }
    }
    float *mean = malloc(4 * 3 * (size_t)SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE);
    if (!mean) {
        shard_close(s);
        return an_error("%s: out of memory (mean image)", path);
    }
    memcpy(mean, m + h.mean_off, 4 * 3 * (size_t)SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE);
    s->mean_image = mean;
    float pca[12];
    memcpy(pca, m + h.pca_off, sizeof pca);
    for (int i = 0; i < 3; i++) {
        s->pca.eigval[i] = pca[i];
        for (int j = 0; j < 3; j++) s->pca.eigvec[i][j] = pca[3 + 3 * i + j];
    }
    return 0;
}

void shard_close(Shard *s) {
    if (!s) return;
    free(s->class_names);
    free((void *)s->mean_image);
    free(s->path);
    if (s->map && s->map != MAP_FAILED) {
        munmap(s->map, s->map_size);
        if (s->fd >= 0) close(s->fd); /* open exactly when mapped (a zeroed Shard closes nothing) */
    }
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

int shard_read(const Shard *s, const void *at, size_t n, void *out) {
    const char *path = s && s->path ? s->path : "shard";
    if (!s || !s->map || s->fd < 0) return an_error("%s: not open", path);
    const uint8_t *base = s->map, *p = at;
    if (p < base || (size_t)(p - base) > s->map_size || n > s->map_size - (size_t)(p - base))
        return an_error("%s: read of %zu bytes outside the file", path, n);
    off_t off = (off_t)(p - base);
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(s->fd, (uint8_t *)out + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return an_error("%s: read failed: %s", path, strerror(errno));
        if (r == 0) {
            struct stat st;
            long long now = fstat(s->fd, &st) == 0 ? (long long)st.st_size : -1;
            return an_error("%s: truncated while in use (was %zu bytes, now %lld)", path, s->map_size, now);
        }
        done += (size_t)r;
    }
    return 0;
}

/* ---- image statistics ---------------------------------------------------------------------- */

int image_stats_init(ImageStats *st, int size) {
    memset(st, 0, sizeof *st);
    if (size <= 0) return an_error("image statistics: bad image size %d", size);
    st->size = size;
    st->sum = calloc((size_t)3 * size * size, sizeof *st->sum);
    if (!st->sum) return an_error("out of memory (image statistics of %dx%d)", size, size);
    return 0;
}

/* Every sum is a sum of integers, kept exactly (per-block uint32, per-image uint64, and totals in
 * float64, exact below 2^53 = 1.3 million ImageNet images' worth of squared pixels), so the result
 * does not even depend on the order images are added in. */
void image_stats_add(ImageStats *st, const uint8_t *image) {
    size_t plane = (size_t)st->size * st->size;
    const uint8_t *r = image, *g = image + plane, *b = image + 2 * plane;
    uint64_t s[3] = {0, 0, 0}, o[6] = {0, 0, 0, 0, 0, 0};
    /* 65536 * 255 * 255 < 2^32: blocks of 65536 pixels fit uint32 accumulators */
    for (size_t start = 0; start < plane; start += 65536) {
        size_t stop = plane - start < 65536 ? plane : start + 65536;
        uint32_t sr = 0, sg = 0, sb = 0, rr = 0, rg = 0, rb = 0, gg = 0, gb = 0, bb = 0;
        for (size_t i = start; i < stop; i++) {
            uint32_t R = r[i], G = g[i], B = b[i];
            sr += R; sg += G; sb += B;
            rr += R * R; rg += R * G; rb += R * B;
            gg += G * G; gb += G * B; bb += B * B;
        }
        s[0] += sr; s[1] += sg; s[2] += sb;
        o[0] += rr; o[1] += rg; o[2] += rb; o[3] += gg; o[4] += gb; o[5] += bb;
    }
    for (int c = 0; c < 3; c++) st->rgb_sum[c] += (double)s[c];
    static const int ij[6][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}};
    for (int k = 0; k < 6; k++) {
        st->rgb_outer[ij[k][0]][ij[k][1]] += (double)o[k];
        if (ij[k][0] != ij[k][1]) st->rgb_outer[ij[k][1]][ij[k][0]] += (double)o[k];
    }
    double *sum = st->sum;
    for (size_t i = 0; i < 3 * plane; i++) sum[i] += image[i];
    st->count++;
}

void image_stats_finish(const ImageStats *st, float *mean_image, PcaLighting *pca) {
    size_t n = (size_t)3 * st->size * st->size;
    double count = st->count > 0 ? (double)st->count : 1.0;
    if (mean_image)
        for (size_t i = 0; i < n; i++) mean_image[i] = (float)(st->sum[i] / count);
    if (!pca) return;
    double pixels = count * st->size * st->size, mean[3], cov[3][3], values[3], vectors[3][3];
    for (int i = 0; i < 3; i++) mean[i] = st->rgb_sum[i] / pixels;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) cov[i][j] = st->rgb_outer[i][j] / pixels - mean[i] * mean[j];
    sym3_eigen(cov, values, vectors);
    for (int i = 0; i < 3; i++) {
        pca->eigval[i] = (float)values[i];
        for (int j = 0; j < 3; j++) pca->eigvec[i][j] = (float)vectors[i][j];
    }
}

void image_stats_free(ImageStats *st) {
    if (!st) return;
    free(st->sum);
    memset(st, 0, sizeof *st);
}

void sym3_eigen(const double m[3][3], double values[3], double vectors[3][3]) {
    double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) a[i][j] = 0.5 * (m[i][j] + m[j][i]); /* symmetric by construction */
    static const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
    for (int sweep = 0; sweep < 64; sweep++) {
        int rotated = 0;
        for (int k = 0; k < 3; k++) {
            int p = pairs[k][0], q = pairs[k][1];
            double apq = a[p][q];
            /* negligible against the diagonal: treat as zero */
            if (apq == 0 || fabs(apq) <= 1e-18 * (fabs(a[p][p]) + fabs(a[q][q]))) continue;
            double theta = (a[q][q] - a[p][p]) / (2 * apq);
            double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
            double c = 1 / sqrt(t * t + 1), s = t * c;
            for (int r = 0; r < 3; r++) { /* A <- A P */
                double arp = a[r][p], arq = a[r][q];
                a[r][p] = c * arp - s * arq;
                a[r][q] = s * arp + c * arq;
            }
            for (int r = 0; r < 3; r++) { /* A <- P^T A */
                double apr = a[p][r], aqr = a[q][r];
                a[p][r] = c * apr - s * aqr;
                a[q][r] = s * apr + c * aqr;
            }
            a[p][q] = a[q][p] = 0;
            for (int r = 0; r < 3; r++) { /* V <- V P: columns are the eigenvectors */
                double vrp = v[r][p], vrq = v[r][q];
                v[r][p] = c * vrp - s * vrq;
                v[r][q] = s * vrp + c * vrq;
            }
            rotated = 1;
        }
        if (!rotated) break;
    }
    int order[3] = {0, 1, 2}; /* descending eigenvalues (stable for ties) */
    for (int i = 1; i < 3; i++)
        for (int j = i; j > 0 && a[order[j]][order[j]] > a[order[j - 1]][order[j - 1]]; j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    for (int i = 0; i < 3; i++) {
        int col = order[i];
        values[i] = a[col][col];
        double norm = 0;
        int big = 0;
        for (int r = 0; r < 3; r++) {
            norm += v[r][col] * v[r][col];
            if (fabs(v[r][col]) > fabs(v[big][col])) big = r;
        }
        /* unit length, and the sign that makes the largest-magnitude component positive */
        double scale = (v[big][col] < 0 ? -1.0 : 1.0) / sqrt(norm);
        for (int r = 0; r < 3; r++) vectors[i][r] = v[r][col] * scale;
    }
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct Out {
    FILE *f;
    const char *path; /* the .tmp file */
    uint64_t off;
} Out;

static int out_write(Out *o, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, o->f) != n) return an_error("%s: write failed: %s", o->path, strerror(errno));
    o->off += n;
    return 0;
}

static int out_pad(Out *o, uint64_t align) {
    static const uint8_t zeros[SHARD_ALIGN];
    uint64_t pad = (align - o->off % align) % align;
    return out_write(o, zeros, (size_t)pad);
}

typedef struct Progress {
    int on, tty;
    long done, total;
    double t0, last;
} Progress;

static void progress_print(Progress *p, int final) {
    if (!p->on) return;
    double now = an_now();
    if (!final && now - p->last < (p->tty ? 1.0 : 10.0)) return;
    p->last = now;
    double rate = p->done / (now - p->t0 > 1e-9 ? now - p->t0 : 1e-9);
    double eta = rate > 0 ? (p->total - p->done) / rate : 0;
    fprintf(stderr, "%sprep: %ld/%ld images, %.0f images/s, ETA %d:%02d%s", p->tty ? "\r" : "", p->done,
            p->total, rate, (int)(eta / 60), (int)eta % 60, p->tty && !final ? "" : "\n");
    fflush(stderr);
}

#define MSG_LEN 512

/* Decode every image of split ds in chunks of SHARD_CHUNK with `threads` threads; write the
 * decoded ones in dataset order, their labels to labels_out, and (stats != NULL) add them to the
 * statistics. *written gets the count. */
static int prep_split(const Dataset *ds, Out *o, int threads, ImageStats *stats, int32_t *labels_out,
                      int *written, int *skipped, Progress *prog) {
    const size_t image_bytes = (size_t)3 * SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE;
    uint8_t *buf = malloc(SHARD_CHUNK * image_bytes);
    int *ok = malloc(SHARD_CHUNK * sizeof *ok);
    char(*msg)[MSG_LEN] = malloc(SHARD_CHUNK * sizeof *msg);
    int rc = 0;
    *written = 0;
    if (!buf || !ok || !msg) rc = an_error("out of memory (%d decoded images)", SHARD_CHUNK);
    for (int start = 0; rc == 0 && start < ds->n; start += SHARD_CHUNK) {
        int count = ds->n - start < SHARD_CHUNK ? ds->n - start : SHARD_CHUNK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int j = 0; j < count; j++) {
            ok[j] = dataset_get_base(ds, start + j, buf + (size_t)j * image_bytes) == 0;
            if (!ok[j]) snprintf(msg[j], MSG_LEN, "%s", an_last_error());
        }
        for (int j = 0; j < count && rc == 0; j++) {
            const char *path = ds->paths[start + j];
            if (!ok[j]) {
                /* decoder messages start with the file name; add it when one does not */
                size_t lp = strlen(path);
                int named = strncmp(msg[j], path, lp) == 0;
                if (prog->on && prog->tty) fputc('\n', stderr);
                fprintf(stderr, "alexnet: warning: %s%s%s; skipped\n", named ? "" : path, named ? "" : ": ",
                        msg[j]);
                (*skipped)++;
                continue;
            }
            const uint8_t *img = buf + (size_t)j * image_bytes;
            rc = out_write(o, img, image_bytes);
            if (stats) image_stats_add(stats, img);
            labels_out[(*written)++] = ds->labels[start + j];
        }
        prog->done += count;
        progress_print(prog, 0);
    }
    free(buf);
    free(ok);
    free(msg);
    return rc;
}

int shard_prep(const char *data_dir, const char *out_path, int threads, int progress, int *skipped) {
    return shard_prep_split(data_dir, out_path, threads, progress, skipped, 0.0f);
}

int shard_prep_split(const char *data_dir, const char *out_path, int threads, int progress, int *skipped,
                     float val_split) {
    int skipped_local = 0;
    if (!skipped) skipped = &skipped_local;
    *skipped = 0;
    if (!data_dir || !*data_dir) return an_error("prep: no data folder given");
    if (!out_path || !*out_path) return an_error("prep: no output file given");
    if (threads < 1) return an_error("prep: %d threads (expected at least 1)", threads);
    if (!host_is_little_endian()) return an_error("%s: shard files need a little-endian machine", out_path);
    Dataset split[2];
    memset(split, 0, sizeof split);
    if (dataset_load_split(&split[0], data_dir, 1, val_split, DATASET_SPLIT_SEED) != 0) return -1;
    if (split[0].kind != DATASET_FOLDER) {
        dataset_free(&split[0]);
        return an_error("%s: not an image folder (prep reads train/<class>/* and val/<class>/*)", data_dir);
    }
    if (dataset_load_split(&split[1], data_dir, 0, val_split, DATASET_SPLIT_SEED) != 0) {
        dataset_free(&split[0]);
        return -1;
    }
    const size_t image_bytes = (size_t)3 * SHARD_IMAGE_SIZE * SHARD_IMAGE_SIZE;
    size_t plen = strlen(out_path);
    char *tmp = malloc(plen + 5);
    int32_t *labels[2] = {malloc(((size_t)split[0].n + 1) * sizeof(int32_t)),
                          malloc(((size_t)split[1].n + 1) * sizeof(int32_t))};
    float *mean = malloc(image_bytes * sizeof(float));
    ImageStats stats;
    memset(&stats, 0, sizeof stats);
    Out o = {NULL, NULL, 0};
    Header h;
    memset(&h, 0, sizeof h);
    int rc = 0;
    if (!tmp || !labels[0] || !labels[1] || !mean) rc = an_error("%s: out of memory", out_path);
    if (rc == 0) rc = image_stats_init(&stats, SHARD_IMAGE_SIZE);
    if (rc == 0) {
        memcpy(tmp, out_path, plen);
        memcpy(tmp + plen, ".tmp", 5);
        o.path = tmp;
        o.f = fopen(tmp, "wb");
        if (!o.f) rc = an_error("%s: cannot create: %s", tmp, strerror(errno));
    }
    Progress prog = {progress, isatty(2), 0, (long)split[0].n + split[1].n, an_now(), an_now()};
    /* a zero header for now (no magic, so an interrupted file is never taken for a shard) */
    uint8_t header[SHARD_HEADER_BYTES];
    memset(header, 0, sizeof header);
    if (rc == 0) rc = out_write(&o, header, sizeof header);
    h.names_off = o.off;
    for (int k = 0; rc == 0 && k < split[0].classes; k++)
        rc = out_write(&o, split[0].class_names[k], strlen(split[0].class_names[k]) + 1);
    h.names_bytes = o.off - h.names_off;
    int written[2] = {0, 0};
    for (int s = 0; s < 2 && rc == 0; s++) {
        rc = out_pad(&o, SHARD_ALIGN);
        h.images_off[s] = o.off;
        if (rc == 0)
            rc = prep_split(&split[s], &o, threads, s == 0 ? &stats : NULL, labels[s], &written[s], skipped,
                            &prog);
    }
    if (rc == 0 && written[0] == 0) rc = an_error("%s/train: no image could be decoded", data_dir);
    for (int s = 0; s < 2 && rc == 0; s++) {
        h.labels_off[s] = o.off;
        rc = out_write(&o, labels[s], (size_t)written[s] * sizeof(int32_t));
    }
    if (rc == 0) rc = out_pad(&o, SHARD_ALIGN);
    h.mean_off = o.off;
    PcaLighting pca;
    if (rc == 0) {
        image_stats_finish(&stats, mean, &pca);
        rc = out_write(&o, mean, image_bytes * sizeof(float));
    }
    h.pca_off = o.off;
    if (rc == 0) {
        float p[12];
        for (int i = 0; i < 3; i++) {
            p[i] = pca.eigval[i];
            for (int j = 0; j < 3; j++) p[3 + 3 * i + j] = pca.eigvec[i][j];
        }
        rc = out_write(&o, p, sizeof p);
    }
    if (rc == 0) {
        h.version = SHARD_VERSION;
        h.header_bytes = SHARD_HEADER_BYTES;
        h.size = SHARD_IMAGE_SIZE;
        h.channels = 3;
        h.classes = (uint32_t)split[0].classes;
        h.n[0] = (uint32_t)written[0];
        h.n[1] = (uint32_t)written[1];
        h.file_size = o.off + SHARD_TRAILER_BYTES;
        header_pack(&h, header);
        uint8_t trailer[SHARD_TRAILER_BYTES];
        memcpy(trailer, SHARD_END_MAGIC, 8);
        memcpy(trailer + 8, header + H_CHECKSUM, 8);
        rc = out_write(&o, trailer, sizeof trailer);
    }
    /* now the header: everything else is on disk first */
    if (rc == 0 && (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0))
        rc = an_error("%s: write failed: %s", tmp, strerror(errno));
    if (rc == 0 && fseeko(o.f, 0, SEEK_SET) != 0) rc = an_error("%s: seek failed: %s", tmp, strerror(errno));
    if (rc == 0 && fwrite(header, 1, sizeof header, o.f) != sizeof header)
        rc = an_error("%s: write failed: %s", tmp, strerror(errno));
    if (rc == 0 && (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0))
        rc = an_error("%s: write failed: %s", tmp, strerror(errno));
    if (o.f && fclose(o.f) != 0 && rc == 0) rc = an_error("%s: write failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, out_path) != 0)
        rc = an_error("%s: cannot rename %s over it: %s", out_path, tmp, strerror(errno));
    if (rc != 0 && o.f) unlink(tmp);
    if (rc == 0) {
        /* make the rename durable; some file systems refuse fsync on a folder, so ignore errors */
        char *dir = strdup(out_path), *slash = dir ? strrchr(dir, '/') : NULL;
        if (dir) {
            if (slash) *(slash == dir ? slash + 1 : slash) = 0;
            int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) { (void)fsync(dfd); close(dfd); }
            free(dir);
        }
        progress_print(&prog, 1);
    } else if (prog.on && prog.tty) {
        fputc('\n', stderr);
    }
    image_stats_free(&stats);
    free(mean);
    free(labels[0]);
    free(labels[1]);
    free(tmp);
    dataset_free(&split[0]);
    dataset_free(&split[1]);
    return rc;
}
