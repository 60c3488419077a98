/* main.c: runs every registered test (or those whose name contains argv[1]) and prints
 * "N passed, N failed". Exit status is non-zero when any test failed. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/util/common.h"
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TESTS 512
static struct { const char *name; TestFn fn; } g_tests[MAX_TESTS];
static int g_ntests;
int harness_failures;

void harness_register(const char *name, TestFn fn) {
    if (g_ntests < MAX_TESTS) { g_tests[g_ntests].name = name; g_tests[g_ntests].fn = fn; g_ntests++; }
}

const char *harness_shared_data(void) {
    static const char *candidates[] = {"../shared/data", "../../shared/data", NULL};
    const char *env = getenv("ALEXNET_SHARED_DATA");
    struct stat st;
    if (env && stat(env, &st) == 0) return env;
    for (int i = 0; candidates[i]; i++)
        if (stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode)) return candidates[i];
    return NULL;
}

const char *harness_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/alexnet-test-XXXXXX");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(2); }
    }
    return dir;
}

const char *harness_path(const char *rel) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", harness_tmpdir(), rel);
    return p;
}

void harness_mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

int harness_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && put == n ? 0 : -1;
}

/* JPEG of interleaved pixels with comps = 1 (gray), 3 (RGB) or 4 (CMYK, with libjpeg's Adobe
 * marker, so the samples are read back as Adobe-inverted inks) */
int harness_write_jpeg(const char *path, const uint8_t *px, int w, int h, int comps, int quality) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f);
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (int i = 0; i < g_ntests; i++) {
        if (argc > 1 && !strstr(g_tests[i].name, argv[1])) continue;
        harness_failures = 0;
        double t0 = an_now();
        fprintf(stderr, "%-40s ", g_tests[i].name);
        g_tests[i].fn();
        fprintf(stderr, "%s (%.2fs)\n", harness_failures ? "FAILED" : "ok", an_now() - t0);
        if (harness_failures) failed++; else passed++;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", harness_tmpdir());
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", harness_tmpdir());
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
