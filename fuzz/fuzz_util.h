/* fuzz_util.h: helpers shared by the libFuzzer harnesses of fuzz/ (header-only, one copy per
 * harness). Readers that take a path get the fuzz input in a memfd, named /proc/self/fd/N (made
 * once per process, rewritten for every input); readers of folders get a private folder under
 * /dev/shm (or $TMPDIR, /tmp), made once per process and removed at exit. */
#ifndef ALEXNET_FUZZ_UTIL_H
#define ALEXNET_FUZZ_UTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A memfd holding exactly bytes[0..n): its path (/proc/self/fd/N). slot picks one of 4 files, so
 * a harness can hand a reader several at once. Exits on failure (the harness cannot work). */
static inline const char *fuzz_memfd_sized(int slot, const uint8_t *bytes, size_t n, size_t total);
static inline const char *fuzz_memfd(int slot, const uint8_t *bytes, size_t n) {
    return fuzz_memfd_sized(slot, bytes, n, n);
}

/* The same, the file then extended with zeros to `total` bytes (a hole: nothing is written). */
static inline const char *fuzz_memfd_sized(int slot, const uint8_t *bytes, size_t n, size_t total) {
    static int fd[4] = {-1, -1, -1, -1};
    static char path[4][64];
    if (fd[slot] < 0) {
        fd[slot] = memfd_create("alexnet-fuzz", 0);
        if (fd[slot] < 0) { perror("memfd_create"); exit(2); }
        snprintf(path[slot], sizeof path[slot], "/proc/self/fd/%d", fd[slot]);
    }
    if (ftruncate(fd[slot], 0) != 0) { perror("ftruncate"); exit(2); }
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd[slot], bytes + done, n - done, (off_t)done);
        if (w <= 0) { perror("pwrite"); exit(2); }
        done += (size_t)w;
    }
    if (total > n && ftruncate(fd[slot], (off_t)total) != 0) { perror("ftruncate"); exit(2); }
    return path[slot];
}

static char g_fuzz_dir[256];

static inline void fuzz_dir_remove(void) {
    if (!g_fuzz_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_fuzz_dir);
}

/* This process's private folder (created on the first call). */
static inline const char *fuzz_dir(void) {
    if (!g_fuzz_dir[0]) {
        struct stat st;
        const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : getenv("TMPDIR");
        snprintf(g_fuzz_dir, sizeof g_fuzz_dir, "%s/alexnet-fuzz-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(g_fuzz_dir)) { perror("mkdtemp"); exit(2); }
        atexit(fuzz_dir_remove);
    }
    return g_fuzz_dir;
}

/* fuzz_dir() + "/" + rel in a static buffer (one of 8, rotating). */
static inline const char *fuzz_path(const char *rel) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", fuzz_dir(), rel);
    return p;
}

/* Write n bytes to path (replacing it). Exits on failure. */
static inline void fuzz_write(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(bytes, 1, n, f) != n) || fclose(f) != 0) { perror(path); exit(2); }
}

/* With FUZZ_VERBOSE set in the environment, say on stderr what the reader made of the input (to
 * check that seeds are accepted, or what a crash input is rejected for). Returns rc. */
const char *an_last_error(void);
static inline int fuzz_report(const char *what, int rc) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, rc == 0 ? "accepted" : an_last_error());
    return rc;
}

static inline uint32_t fuzz_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
#endif
