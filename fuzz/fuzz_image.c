/* fuzz_image.c: JPEG and PNG decoding through image_load (src/data/image.c), the one entry point
 * every image of a dataset folder, `prep` and `classify` goes through; then, for images of at most
 * 1 megapixel, the resize + centre crop that follows it in the loader. The input is the file. The
 * fuzz build accepts images up to 4 megapixels (IMAGE_MAX_PIXELS, set in fuzz/fuzz.mk). */
#include "fuzz_util.h"
#include "../src/data/image.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfd(0, data, size);
    Image img;
    if (fuzz_report("image_load", image_load(path, &img)) != 0) return 0;
    if (img.w < 1 || img.h < 1 || img.c != 3 || (long)img.w * img.h > IMAGE_MAX_PIXELS) abort();
    volatile uint8_t sum = img.data[0] ^ img.data[(size_t)img.w * img.h * 3 - 1];
    (void)sum;
    if ((long)img.w * img.h <= 1L << 20) {
        uint8_t out[3 * 32 * 32];
        image_resize_center_crop(&img, 36, 32, out);
    }
    image_free(&img);
    return 0;
}
