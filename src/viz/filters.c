/* filters.c: the kernels grid of filters.h. */
#include "filters.h"
#include "../util/common.h"
#include <stdlib.h>
#include <string.h>

enum { GAP = 1, TOWER_GAP = 4, BACKGROUND = 40 };

int filters_grid(const float *w, int count, int channels, int k, int towers, int per_row, int scale, uint8_t **rgb,
                 int *width, int *height) {
    if (count < 1 || k < 1 || scale < 1 || per_row < 1 || (channels != 1 && channels != 3))
        return an_error("filters: %d kernels of %d channels, %dx%d (1 or 3 channels)", count, channels, k, k);
    if (towers < 1 || count % towers) return an_error("filters: %d kernels do not split into %d towers", count, towers);
    int per_tower = count / towers, cols = per_tower < per_row ? per_tower : per_row;
    int rows = (per_tower + cols - 1) / cols, cell = k * scale + GAP;
    *width = GAP + cols * cell;
    *height = GAP + towers * rows * cell + (towers - 1) * TOWER_GAP;
    if ((long)*width * *height > 64L << 20) return an_error("filters: a %dx%d picture is too large", *width, *height);
    uint8_t *img = malloc((size_t)*width * *height * 3);
    if (!img) return an_error("out of memory");
    memset(img, BACKGROUND, (size_t)*width * *height * 3);
    size_t plane = (size_t)k * k;
    for (int f = 0; f < count; f++) {
        const float *kw = w + (size_t)f * channels * plane;
        float lo = kw[0], hi = kw[0];
        for (size_t i = 0; i < channels * plane; i++) lo = kw[i] < lo ? kw[i] : lo, hi = kw[i] > hi ? kw[i] : hi;
        float span = hi > lo ? hi - lo : 1.0f;
        int t = f / per_tower, j = f % per_tower;
        int x0 = GAP + (j % cols) * cell, y0 = GAP + (t * rows + j / cols) * cell + t * TOWER_GAP;
        for (int y = 0; y < k * scale; y++)
            for (int x = 0; x < k * scale; x++)
                for (int c = 0; c < 3; c++) {
                    float v = kw[(size_t)(channels == 3 ? c : 0) * plane + (size_t)(y / scale) * k + x / scale];
                    img[((size_t)(y0 + y) * *width + x0 + x) * 3 + c] = (uint8_t)(255.0f * (v - lo) / span + 0.5f);
                }
    }
    *rgb = img;
    return 0;
}
