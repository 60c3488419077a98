/* png.h: writing PNG pictures (libpng) and drawing the training curves. */
#ifndef ALEXNET_PNG_H
#define ALEXNET_PNG_H
#include <stdint.h>

/* Write interleaved 8-bit RGB (h, w, 3) as a PNG. Returns 0 or -1 with an_error() set. */
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h);

/* Draw training curves to a PNG: left panel training loss per epoch, right panel validation
 * top-1 and top-5 error (%) per epoch, with axes, tick labels and a legend (built-in bitmap font).
 * Arrays have n entries (epochs 1..n); NaN entries are skipped. Returns 0 or -1. */
int plot_curves(const char *path, int n, const double *train_loss, const double *val_top1,
                const double *val_top5);
#endif
