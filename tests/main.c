/* main.c: runs every registered test (or those whose name contains argv[1]) and prints
 * "N passed, N failed, K skipped", naming the skipped tests and why above it. Exit status is
 * non-zero when any test failed, or, with --no-skip (make test-cuda), when any was skipped. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/util/common.h"
#include <jpeglib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 512
static struct { const char *name; TestFn fn; } g_tests[MAX_TESTS];
static int g_ntests;
int harness_failures;
static char g_skip_why[512]; /* non-empty: the current test was skipped */

void harness_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_skip_why, sizeof g_skip_why, fmt, ap);
    va_end(ap);
    if (!g_skip_why[0]) snprintf(g_skip_why, sizeof g_skip_why, "(no reason given)");
}

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

unsigned char *harness_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (buf && len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[len] = 0, *n = (size_t)len;
    return buf;
}

int harness_read_access(const char *path) { return access(path, R_OK); }

char harness_out[1 << 16], harness_err[1 << 16];

static void slurp(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

int harness_run(const char *args) {
    const char *bin = getenv("ALEXNET_BIN") ? getenv("ALEXNET_BIN") : "build/alexnet";
    char cmd[4096], o[300], e[300];
    snprintf(o, sizeof o, "%s/cli.out", harness_tmpdir());
    snprintf(e, sizeof e, "%s/cli.err", harness_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, o, e);
    int st = system(cmd);
    slurp(o, harness_out, sizeof harness_out);
    slurp(e, harness_err, sizeof harness_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void harness_expect_error(const char *args, const char *what) {
    int rc = harness_run(args);
    int lines = 0;
    for (const char *p = harness_err; *p; p++) lines += *p == '\n';
    CHECK(rc == 1 || rc == 2, "`alexnet %s` exited %d (stderr: %s)", args, rc, harness_err);
    CHECK(strncmp(harness_err, "alexnet: ", 9) == 0 && lines == 1, "`alexnet %s`: not one error line: %s", args,
          harness_err);
    CHECK(strstr(harness_err, what) != NULL, "`alexnet %s`: error does not mention '%s': %s", args, what, harness_err);
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0, no_skip = 0;
    const char *filter = NULL;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--no-skip")) no_skip = 1;
        else filter = argv[a];
    }
    static char skip_list[MAX_TESTS][600];
    for (int i = 0; i < g_ntests; i++) {
        if (filter && !strstr(g_tests[i].name, filter)) continue;
        harness_failures = 0;
        g_skip_why[0] = 0;
        double t0 = an_now();
        fprintf(stderr, "%-40s ", g_tests[i].name);
        g_tests[i].fn();
        const char *verdict = harness_failures ? "FAILED" : g_skip_why[0] ? "SKIPPED" : "ok";
        fprintf(stderr, "%s (%.2fs)%s%s\n", verdict, an_now() - t0, g_skip_why[0] ? ": " : "", g_skip_why);
        if (harness_failures) failed++;
        else if (g_skip_why[0]) snprintf(skip_list[skipped++], sizeof skip_list[0], "%s: %s", g_tests[i].name, g_skip_why);
        else passed++;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", harness_tmpdir());
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", harness_tmpdir());
    if (skipped) {
        printf("skipped (did not run here):\n");
        for (int i = 0; i < skipped; i++) printf("  %s\n", skip_list[i]);
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    if (no_skip && skipped) printf("--no-skip: %d test%s could not run here\n", skipped, skipped > 1 ? "s" : "");
    return failed || (no_skip && skipped) ? 1 : 0;
}
