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
/* One panel of up to 6 series over epochs 1..n (each n values; non-finite skipped), with a legend
 * of their names to the right and, where hline is finite, a dashed line at that value (a target).
 * Names use the chart font: lower-case letters, digits, space and . % - + ( ) / : _. 0 or -1. */
int plot_lines(const char *path, const char *title, int n, int nseries, const double *const *series,
               const char *const *names, double hline);
#endif
