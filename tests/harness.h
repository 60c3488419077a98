/* harness.h: the tiny test harness. Each tests/test_*.c defines test functions and registers them
 * with TEST(name) { ... }; tests/main.c runs them all (or those whose name contains argv[1]) and
 * prints "N passed, N failed, K skipped". CHECK records a failure with file:line and continues;
 * SKIP(...) marks a test that cannot run here (no GPU, no dataset) as skipped, with the reason,
 * and returns from it: a skipped test is never counted as passed. */
#ifndef ALEXNET_HARNESS_H
#define ALEXNET_HARNESS_H
#include <stddef.h>
#include <stdio.h>

typedef void (*TestFn)(void);
void harness_register(const char *name, TestFn fn);
extern int harness_failures; /* failures in the current test */
/* Mark the current test as skipped (printf-style reason); the caller returns. */
void harness_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define SKIP(...)                                                               \
    do {                                                                        \
        harness_skip(__VA_ARGS__);                                              \
        return;                                                                 \
    } while (0)

#define TEST(name)                                                              \
    static void name(void);                                                     \
    __attribute__((constructor)) static void register_##name(void) {           \
        harness_register(#name, name);                                          \
    }                                                                           \
    static void name(void)

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            harness_failures++;                                                 \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, "" __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* Path to the shared data folder (../shared/data relative to the repo), or NULL when absent. */
const char *harness_shared_data(void);
/* A fresh temporary directory for this test run (created once). */
const char *harness_tmpdir(void);
/* harness_tmpdir() + "/" + rel, in one of 8 rotating buffers (valid for the next 7 calls). */
const char *harness_path(const char *rel);
/* mkdir -p path (errors ignored: the test that needs the folder will fail on its own). */
void harness_mkdirs(const char *path);
/* Write n bytes to path. Returns 0 or -1. */
int harness_write(const char *path, const void *data, size_t n);
/* A JPEG of interleaved pixels, comps = 1 (gray), 3 (RGB) or 4 (CMYK, with libjpeg's Adobe marker,
 * read back as Adobe-inverted inks), at the given quality. Returns 0 or -1. */
int harness_write_jpeg(const char *path, const unsigned char *px, int w, int h, int comps, int quality);
/* The whole file at path (malloc'd, a NUL byte after its end) and its size in *n; NULL (*n = 0)
 * when it cannot be read. */
unsigned char *harness_read_file(const char *path, size_t *n);

/* Fashion-MNIST from Debian's dataset-fashion-mnist; NEED_FMNIST() skips the test without it. */
#define FMNIST "/usr/share/datasets/fashion-mnist"
#define NEED_FMNIST()                                                           \
    do {                                                                        \
        if (harness_read_access(FMNIST "/train-images-idx3-ubyte.gz") != 0)     \
            SKIP("no %s (Debian package dataset-fashion-mnist)", FMNIST);       \
    } while (0)
int harness_read_access(const char *path); /* 0 when path can be read, as access(path, R_OK) */

/* Run the alexnet program (ALEXNET_BIN, else build/alexnet) with args through the shell, standard
 * input from /dev/null; returns its exit status (128 + signal when killed), its output and error
 * text in harness_out and harness_err. */
int harness_run(const char *args);
extern char harness_out[1 << 16], harness_err[1 << 16];
/* harness_run, expecting a failure: exit status 1 or 2 and one line "alexnet: ..." naming `what`. */
void harness_expect_error(const char *args, const char *what);
#endif
