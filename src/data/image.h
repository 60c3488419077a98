/* image.h: decoding JPEG (libjpeg-turbo) and PNG (libpng) files to RGB, resizing and cropping. */
#ifndef ALEXNET_IMAGE_H
#define ALEXNET_IMAGE_H
#include <stddef.h>
#include <stdint.h>

/* Largest image a decoder accepts, checked against the header before anything is allocated (a
 * corrupt or hostile header must not make every loader thread allocate gigabytes): at most
 * IMAGE_MAX_SIDE pixels a side and IMAGE_MAX_PIXELS pixels in all (100 megapixels, 300 MB as RGB).
 * Larger files fail with "<file>: JPEG of WxH pixels is too large (...)". */
#define IMAGE_MAX_SIDE 32768
#ifndef IMAGE_MAX_PIXELS /* the fuzz build (fuzz/fuzz.mk) lowers it: instrumented code is ~30x slower */
#define IMAGE_MAX_PIXELS 100000000L
#endif
/* A JPEG with more scans than this is refused ("<file>: bad JPEG data: more than 100 scans"): each
 * scan is a pass over the whole image, so repeated scans make a small file decode for minutes.
 * Encoders write 1 (baseline) to about 10 (progressive). */
#define IMAGE_MAX_JPEG_SCANS 100

typedef struct Image {
    int w, h, c;   /* c = 3 (RGB) after image_load */
    uint8_t *data; /* interleaved (h, w, c) */
} Image;

/* Decode a JPEG or PNG file, chosen by its first bytes (not its extension), to 8-bit RGB.
 * Grayscale, palette, 16-bit and alpha PNGs and grayscale/CMYK JPEGs all become RGB.
 * Returns 0, or -1 with an_error() naming the file ("x.jpg: truncated JPEG data"). Never crashes
 * on corrupt input. */
int image_load(const char *path, Image *img);
/* The same from len bytes in memory; `name` (e.g. the file's path) starts the error messages. */
int image_decode(const char *name, const uint8_t *buf, size_t len, Image *img);
void image_free(Image *img);

/* Resize interleaved (h, w, c) uint8 to (oh, ow, c) with an antialiased bilinear (triangle) filter
 * like Pillow's BILINEAR, so downscaling averages rather than aliases. */
void image_resize(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh);

/* Scale the shorter side to `resize`, then take the centre crop x crop, as planar (c, crop, crop).
 * Returns 0 or -1 (out of memory). */
int image_resize_center_crop(const Image *img, int resize, int crop, uint8_t *planar_out);
#endif
