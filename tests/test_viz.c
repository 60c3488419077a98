/* test_viz.c: the kernels grid (Figure 3): where each kernel lands, its stretch to 0..255 and its
 * colour; `alexnet viz filters` on a saved network writes a PNG of the expected size, towers as
 * separate blocks, and refuses bad requests with one line. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/data/image.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/viz/filters.h"
#include <stdlib.h>
#include <string.h>

TEST(viz_filters_grid_places_and_stretches_kernels) {
    /* 4 kernels of 3 channels, 2x2, in 2 towers: tower 1 = kernels 0, 1; tower 2 = kernels 2, 3 */
    float w[4 * 3 * 4];
    for (int i = 0; i < 48; i++) w[i] = 0.0f;
    for (int q = 0; q < 4; q++) w[0 * 12 + 0 * 4 + q] = 1.0f; /* kernel 0: red */
    for (int q = 0; q < 4; q++) w[3 * 12 + 2 * 4 + q] = -2.0f; /* kernel 3: blue at the minimum: yellow */
    w[3 * 12 + 0] = 5.0f; /* ... but its first red weight is the maximum */
    uint8_t *rgb = NULL;
    int width = 0, height = 0, scale = 3;
    CHECK(filters_grid(w, 4, 3, 2, 2, 16, scale, &rgb, &width, &height) == 0, "grid");
    int cell = 2 * scale + 1;
    CHECK(width == 1 + 2 * cell && height == 1 + 2 * cell + 4, "size %dx%d", width, height);
    if (!rgb) return;
    const uint8_t *p = rgb + ((size_t)1 * width + 1) * 3; /* kernel 0's first pixel */
    CHECK(p[0] == 255 && p[1] == 0 && p[2] == 0, "kernel 0 is not red: %d %d %d", p[0], p[1], p[2]);
    /* kernel 3: tower 2 (below the 4-pixel gap), second column */
    int x0 = 1 + cell, y0 = 1 + cell + 4;
    p = rgb + ((size_t)y0 * width + x0) * 3; /* weight (0,0): red 5 (max), green 0, blue -2 (min) */
    CHECK(p[0] == 255 && p[1] == (uint8_t)(255.0f * 2 / 7 + 0.5f) && p[2] == 0, "kernel 3 (0,0): %d %d %d", p[0], p[1], p[2]);
    p = rgb + ((size_t)(y0 + scale) * width + x0 + scale) * 3; /* weight (1,1): red 0, green 0, blue -2 */
    CHECK(p[0] == p[1] && p[1] == (uint8_t)(255.0f * 2 / 7 + 0.5f) && p[2] == 0, "kernel 3 (1,1): %d %d %d", p[0], p[1], p[2]);
    p = rgb + ((size_t)(1 + cell) * width + 1) * 3; /* the gap row between the towers: background */
    CHECK(p[0] == p[1] && p[1] == p[2] && p[0] < 64, "the towers are not apart: %d", p[0]);
    free(rgb);
    CHECK(filters_grid(w, 4, 3, 2, 3, 16, 3, &rgb, &width, &height) != 0, "4 kernels in 3 towers accepted");
    CHECK(filters_grid(w, 4, 2, 2, 1, 16, 3, &rgb, &width, &height) != 0, "2 channels accepted");
}

TEST(viz_filters_command_writes_the_png) {
    const ModelSpec *spec = model_find("alexnet");
    Net net;
    CHECK(spec && net_create(&net, spec, 3, 10, 227, 1) == 0, "net");
    net_init(&net, 3);
    Norm norm = {.c = 3, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
    const char *path = harness_path("viz_alexnet.safetensors");
    CHECK(checkpoint_save(path, &net, NULL, NULL, &norm, NULL) == 0, "save");
    net_free(&net);
    char args[1200], png[600];
    snprintf(png, sizeof png, "%s", harness_path("viz_filters.png"));
    snprintf(args, sizeof args, "viz filters --weights %s --out %s --scale 2", path, png);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    Image img;
    CHECK(image_load(png, &img) == 0, "the PNG does not decode");
    int cell = 11 * 2 + 1; /* 96 kernels, 16 a row, 48 a tower: 3 rows each */
    CHECK(img.w == 1 + 16 * cell && img.h == 1 + 6 * cell + 4, "%dx%d, not %dx%d", img.w, img.h, 1 + 16 * cell,
          1 + 6 * cell + 4);
    image_free(&img);
    snprintf(args, sizeof args, "viz kernels --weights %s --out %s", path, png);
    harness_expect_error(args, "viz filters");
    snprintf(args, sizeof args, "viz filters --weights %s --out %s --scale 0", path, png);
    harness_expect_error(args, "--scale");
}
