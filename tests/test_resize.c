/* test_resize.c: the fast resize (planar output, AVX-512 gathers where the CPU has them) against
 * the plain scalar reference (image_resize_reference, Pillow's arithmetic), byte for byte, on
 * random images: upscaling, downscaling, the vertical-first order of tall images, one-axis and
 * no-op resizes, one and three channels; and the resize + centre crop against a crop of the
 * reference's full resize. */
#include "harness.h"
#include "../src/data/data_internal.h"
#include "../src/data/image.h"
#include "../src/util/common.h"
#include <stdlib.h>
#include <string.h>

static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(an_hash64(seed, i) >> 24);
}

/* {w, h, ow, oh} */
static const int k_sizes[][4] = {
    {224, 224, 256, 256}, /* Imagenette: upscaled */
    {500, 375, 341, 256}, /* a typical ImageNet photo: downscaled, horizontal pass first */
    {60, 400, 50, 100},   /* tall: Pillow runs the vertical pass first */
    {256, 300, 256, 280}, /* width unchanged: vertical pass only */
    {300, 256, 37, 256},  /* height unchanged: horizontal pass only */
    {33, 17, 33, 17},     /* no resize at all */
    {1, 1, 9, 4},  {3, 17, 19, 5}, {17, 3, 5, 19}, {101, 77, 16, 15}, {16, 15, 101, 77},
};

TEST(resize_fast_matches_reference) {
    for (size_t k = 0; k < sizeof k_sizes / sizeof k_sizes[0]; k++)
        for (int c = 1; c <= 3; c += 2) {
            int w = k_sizes[k][0], h = k_sizes[k][1], ow = k_sizes[k][2], oh = k_sizes[k][3];
            size_t in = (size_t)w * h * c, out = (size_t)ow * oh * c;
            uint8_t *src = malloc(in), *a = malloc(out), *b = malloc(out);
            fill_random(src, in, k * 7 + (uint64_t)c);
            memset(a, 1, out);
            memset(b, 2, out);
            int ra = image_resize_checked(src, w, h, c, a, ow, oh);
            int rb = image_resize_reference(src, w, h, c, b, ow, oh);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < out; i++)
                if (a[i] != b[i] && bad++ == 0) first = i;
            CHECK(ra == 0 && rb == 0 && bad == 0, "%dx%d -> %dx%d, c=%d: %zu bytes differ (first at %zu: %d vs %d)",
                  w, h, ow, oh, c, bad, first, a[first], b[first]);
            free(src), free(a), free(b);
        }
}

/* torchvision's centre-crop offset for a crop inside the image: round((size - crop) / 2), ties to even */
static int centre(int size, int crop) {
    int d = size - crop, k = d / 2;
    return (d & 1) && (k & 1) ? k + 1 : k;
}

TEST(resize_center_crop_matches_reference) {
    /* {w, h, resize, crop}: crops inside the resized image (straight into the output) */
    static const int cases[][4] = {{224, 224, 256, 256}, {224, 224, 256, 227}, {500, 375, 256, 256},
                                   {375, 500, 256, 224}, {80, 333, 64, 57},    {257, 256, 256, 256}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int w = cases[k][0], h = cases[k][1], resize = cases[k][2], crop = cases[k][3];
        int nw = w <= h ? resize : (int)((double)resize * w / h);
        int nh = w <= h ? (int)((double)resize * h / w) : resize;
        Image img = {w, h, 3, malloc((size_t)w * h * 3)};
        uint8_t *full = malloc((size_t)nw * nh * 3), *got = malloc((size_t)3 * crop * crop);
        fill_random(img.data, (size_t)w * h * 3, 100 + k);
        int rc = image_resize_center_crop(&img, resize, crop, got);
        int rr = image_resize_reference(img.data, w, h, 3, full, nw, nh);
        int x0 = centre(nw, crop), y0 = centre(nh, crop);
        size_t bad = 0;
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < crop; y++)
                for (int x = 0; x < crop; x++)
                    bad += got[((size_t)ch * crop + y) * crop + x] != full[(((size_t)y0 + y) * nw + x0 + x) * 3 + ch];
        CHECK(rc == 0 && rr == 0 && bad == 0, "%dx%d resize %d crop %d: %zu bytes differ", w, h, resize, crop, bad);
        free(img.data), free(full), free(got);
    }
}
