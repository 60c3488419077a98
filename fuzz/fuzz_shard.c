/* fuzz_shard.c: shard files of `alexnet prep` (src/data/shard.c: the 128-byte header, section
 * offsets, class-name table, labels; docs/FORMATS.md), opened with shard_open and through
 * dataset_load for both splits, images read with dataset_get_base / dataset_get_image.
 *
 * The input is the start of the file. Valid shards are at least 790 KB (the float mean image),
 * and the header carries a checksum repeated in a trailer, so the harness completes the file as
 * prep would: when the header's checksum field (bytes 120..127) is zero it is computed; when the
 * header's file size is larger than the input (up to 8 MiB) the file is extended with zeros to it
 * and ends in the trailer. A nonzero checksum field, or a file size the input already reaches, is
 * left alone (so corrupt checksums and trailers are fuzzed too). Bit 0 of header byte 36 (a
 * reserved byte) truncates the file after it was opened, before the images are read: the readers
 * must report "truncated while in use", not die of SIGBUS. */
#include "fuzz_util.h"
#include "../src/data/dataset.h"
#include "../src/data/shard.h"
#include <stdlib.h>

#define FILE_MAX (8u << 20)

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void read_split(const char *path, int train, int truncate_after) {
    Dataset ds;
    if (fuzz_report(train ? "dataset_load train" : "dataset_load val", dataset_load(&ds, path, train)) != 0) return;
    if (truncate_after) {
        int fd = open(path, O_RDWR);
        if (fd >= 0) {
            if (ftruncate(fd, 4096) != 0) abort();
            close(fd);
        }
    }
    uint8_t *base = malloc((size_t)3 * 256 * 256);
    if (!base) abort();
    int rc = fuzz_report("dataset_get_base", dataset_get_base(&ds, ds.n - 1, base));
    if (truncate_after && rc == 0) abort(); /* the images lie beyond 4096 bytes */
    dataset_get_image(&ds, 0, 1, 16, base);
    for (int i = 0; i < ds.n; i++)
        if (ds.labels[i] < 0 || ds.labels[i] >= ds.classes) abort();
    free(base);
    dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FILE_MAX) return 0;
    size_t len = size;
    int truncate_after = 0;
    if (size >= 128) {
        uint64_t want = le64(data + 104);
        if (want > size && want <= FILE_MAX && want >= 144) len = (size_t)want;
        truncate_after = data[36] & 1;
    }
    uint8_t *file = malloc(size ? size : 1);
    if (!file) abort();
    memcpy(file, data, size);
    if (size >= 128 && le64(file + 120) == 0) put64(file + 120, fnv1a64(file, 120));
    const char *path = fuzz_memfd_sized(0, file, size, len); /* the rest: a hole of zeros */
    if (len > size) {
        uint8_t trailer[16];
        memcpy(trailer, "ALEXEND!", 8);
        memcpy(trailer + 8, file + 120, 8);
        int fd = open(path, O_WRONLY);
        if (fd < 0 || pwrite(fd, trailer, 16, (off_t)(len - 16)) != 16) abort();
        close(fd);
    }
    free(file);
    Shard s;
    if (fuzz_report("shard_open", shard_open(path, &s)) == 0) {
        for (int sp = 0; sp < 2; sp++)
            for (int i = 0; i < s.n[sp]; i++)
                if (s.labels[sp][i] < 0 || s.labels[sp][i] >= s.classes) abort();
        for (int k = 0; k < s.classes; k++)
            if (!s.class_names[k][0]) abort();
        shard_close(&s);
        read_split(path, 1, 0);
        read_split(path, 0, truncate_after);
    }
    return 0;
}
