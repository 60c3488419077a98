/* filters.h: a network's first-layer kernels drawn as a picture (the paper's Figure 3). */
#ifndef ALEXNET_FILTERS_H
#define ALEXNET_FILTERS_H
#include <stdint.h>

/* The grid of `count` kernels w (count, channels, k, k) as RGB (1 channel: grey): each kernel
 * stretched to 0..255 over its own minimum and maximum (all channels together, so its colour
 * stays), every weight a square of `scale` pixels, `per_row` kernels a row, 1-pixel gaps; with
 * towers > 1 the kernels split into that many equal blocks (the paper: GPU 1's 48 above GPU 2's),
 * each starting a new row, 4 pixels apart. *rgb (malloc'd, (*height, *width, 3)). 0 or -1. */
int filters_grid(const float *w, int count, int channels, int k, int towers, int per_row, int scale, uint8_t **rgb,
                 int *width, int *height);
#endif
