/* test_png.c: tests of PNG writing (read back with libpng itself) and of the training-curve chart
 * (size, and that the curves, legend colours and lettering are really drawn). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

/* Read a PNG as 8-bit RGB with libpng's simplified API; returns the pixels (free them) or NULL. */
static uint8_t *read_png_rgb(const char *path, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(im));
    if (!px || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&im);
        return NULL;
    }
    *w = (int)im.width;
    *h = (int)im.height;
    return px;
}

TEST(png_write_readback) {
    char path[512];
    snprintf(path, sizeof path, "%s/pattern.png", harness_tmpdir());
    int w = 13, h = 7;
    uint8_t px[13 * 7 * 3];
    for (int i = 0; i < w * h * 3; i++) px[i] = (uint8_t)(i * 31 + i / 3);
    CHECK(png_write_rgb(path, px, w, h) == 0, "%s", an_last_error());
    int rw = 0, rh = 0;
    uint8_t *back = read_png_rgb(path, &rw, &rh);
    CHECK(back && rw == w && rh == h, "read back %dx%d", rw, rh);
    if (back) CHECK(!memcmp(back, px, sizeof px), "pixels differ");
    free(back);

    const char *bad = "/nonexistent-dir/x.png";
    CHECK(png_write_rgb(bad, px, w, h) == -1 && strstr(an_last_error(), bad), "got: %s", an_last_error());
    CHECK(png_write_rgb(path, px, 0, h) == -1, "zero width accepted");
}

/* pixel census of a chart: non-white, bluish (the top-1 and loss curves), orange (top-5) */
typedef struct {
    long ink, blue, orange;
} Census;

static Census census(const uint8_t *px, int w, int x0, int x1, int y0, int y1) {
    Census c = {0, 0, 0};
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = px + ((size_t)y * w + x) * 3;
            if (p[0] != 255 || p[1] != 255 || p[2] != 255) c.ink++;
            if (p[2] > p[0] + 80) c.blue++;
            if (p[0] > p[2] + 80) c.orange++;
        }
    return c;
}

TEST(png_plot_curves) {
    char path[512];
    snprintf(path, sizeof path, "%s/curves.png", harness_tmpdir());
    double loss[12], top1[12], top5[12];
    for (int i = 0; i < 12; i++) {
        loss[i] = 2.3 * exp(-i / 4.0) + 0.2;
        top1[i] = 80 * exp(-i / 5.0) + 15;
        top5[i] = 60 * exp(-i / 4.0) + 4;
    }
    loss[3] = NAN;
    top5[7] = NAN;
    CHECK(plot_curves(path, 12, loss, top1, top5) == 0, "%s", an_last_error());
    int w = 0, h = 0;
    uint8_t *px = read_png_rgb(path, &w, &h);
    CHECK(px && w == 1000 && h == 420, "size %dx%d", w, h);
    if (!px) return;
    Census left = census(px, w, 0, 500, 0, 420), right = census(px, w, 500, 1000, 0, 420);
    Census title = census(px, w, 100, 400, 0, 40);
    CHECK(left.ink > 3000 && right.ink > 3000, "ink %ld %ld", left.ink, right.ink);
    CHECK(left.blue > 200 && left.orange == 0, "loss curve %ld blue, %ld orange", left.blue, left.orange);
    CHECK(right.blue > 200 && right.orange > 200, "error curves %ld blue %ld orange", right.blue,
          right.orange);
    CHECK(title.ink > 100 && title.blue == 0, "title lettering %ld", title.ink);
    free(px);
}

TEST(png_plot_edge_cases) {
    char path[512];
    snprintf(path, sizeof path, "%s/one.png", harness_tmpdir());
    double l = 2.1, t1 = 60, t5 = 30;
    CHECK(plot_curves(path, 1, &l, &t1, &t5) == 0, "%s", an_last_error());
    int w = 0, h = 0;
    uint8_t *px = read_png_rgb(path, &w, &h);
    CHECK(px && w == 1000 && h == 420, "size %dx%d", w, h);
    if (px) {
        Census left = census(px, w, 0, 500, 0, 420), right = census(px, w, 500, 1000, 0, 420);
        CHECK(left.blue > 10 && right.orange > 10, "single points drawn: %ld %ld", left.blue, right.orange);
    }
    free(px);
    /* all missing, constant values, and huge values still give a picture */
    double nan3[3] = {NAN, NAN, NAN}, flat[3] = {5, 5, 5}, huge[3] = {1e300, -1e300, 0};
    CHECK(plot_curves(path, 3, nan3, nan3, nan3) == 0, "%s", an_last_error());
    CHECK(plot_curves(path, 3, flat, flat, flat) == 0, "%s", an_last_error());
    CHECK(plot_curves(path, 3, huge, huge, huge) == 0, "%s", an_last_error());
    CHECK(plot_curves(path, 0, NULL, NULL, NULL) == 0, "%s", an_last_error());
    CHECK(plot_curves("/nonexistent-dir/c.png", 1, &l, &t1, &t5) == -1, "bad path accepted");
}
