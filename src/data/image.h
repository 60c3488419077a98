/* image.h: decoding JPEG (libjpeg-turbo) and PNG (libpng) files to RGB, resizing and cropping. */
#ifndef ALEXNET_IMAGE_H
#define ALEXNET_IMAGE_H
#include <stdint.h>

typedef struct Image {
    int w, h, c;   /* c = 3 (RGB) after image_load */
    uint8_t *data; /* interleaved (h, w, c) */
} Image;

/* Decode a JPEG or PNG file, chosen by its first bytes (not its extension), to 8-bit RGB.
 * Grayscale, palette, 16-bit and alpha PNGs and grayscale/CMYK JPEGs all become RGB.
 * Returns 0, or -1 with an_error() naming the file ("x.jpg: truncated JPEG data"). Never crashes
 * on corrupt input. */
int image_load(const char *path, Image *img);
void image_free(Image *img);

/* Resize interleaved (h, w, c) uint8 to (oh, ow, c) with an antialiased bilinear (triangle) filter
 * like Pillow's BILINEAR, so downscaling averages rather than aliases. */
void image_resize(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh);

/* Scale the shorter side to `resize`, then take the centre crop x crop, as planar (c, crop, crop).
 * Returns 0 or -1 (out of memory). */
int image_resize_center_crop(const Image *img, int resize, int crop, uint8_t *planar_out);
#endif
