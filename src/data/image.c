/* image.c: decoding JPEG (libjpeg-turbo) and PNG (libpng) files to 8-bit RGB, the antialiased
 * bilinear resize of Pillow (so torchvision's Resize + CenterCrop on PIL images is matched), and
 * the resize-shorter-side + centre crop used for evaluation.
 *
 * Decoders never exit or print: libjpeg and libpng errors longjmp back here and become an_error()
 * messages that start with the file name. Results follow what torchvision's PIL loader produces:
 * CMYK JPEGs use Pillow's CMYK -> RGB formula (Adobe files are stored inverted), PNG alpha is
 * dropped (not composited), 16-bit PNG samples keep their high byte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, fileno, strcasecmp, d_type */
#endif
#include "image.h"
#include "data_internal.h"
#include "../util/common.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h> /* after stdio.h, which it needs */
#include <jerror.h>
#include <png.h>

#define IMAGE_MAX_FILE (1L << 30)    /* 1 GiB */

/* ---- reading the file ---------------------------------------------------------------------- */

/* The whole file in a malloc'd buffer. Returns 0 or -1 with an_error() set. */
static int read_file(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return an_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return an_error("%s: not a regular file", path);
    }
    if (st.st_size == 0) { fclose(f); return an_error("%s: empty file", path); }
    if (st.st_size > IMAGE_MAX_FILE) { fclose(f); return an_error("%s: file too large", path); }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n);
    if (!b) { fclose(f); return an_error("%s: out of memory (%zu bytes)", path, n); }
    size_t got = fread(b, 1, n, f);
    fclose(f);
    if (got != n) { free(b); return an_error("%s: read error after %zu of %zu bytes", path, got, n); }
    *buf = b;
    *len = n;
    return 0;
}

/* Header sizes beyond IMAGE_MAX_SIDE / IMAGE_MAX_PIXELS (image.h) are refused before allocating. */
static int too_many_pixels(long w, long h) {
    return w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || w * h > IMAGE_MAX_PIXELS;
}

#define IMAGE_LIMITS_FMT "at most %d pixels a side and %ld megapixels"
#define IMAGE_LIMITS IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS / 1000000L

/* ---- JPEG ---------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub; /* first, so the library's pointer is also ours */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncated;
} JpegErr;

static void jpeg_on_error(j_common_ptr cinfo) {
    JpegErr *e = (JpegErr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->message);
    longjmp(e->jump, 1);
}

/* Warnings: running out of data is an error (as in Pillow); other corrupt-data warnings are
 * tolerated (Pillow tolerates them too). Nothing is printed. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    JpegErr *e = (JpegErr *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        e->truncated = 1;
        longjmp(e->jump, 1);
    }
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

/* Every scan of a progressive (or multi-scan) JPEG is a pass over the whole image, so a small file
 * repeating one scan thousands of times costs minutes of decoding; stop past IMAGE_MAX_JPEG_SCANS.
 * libjpeg calls this while it reads the scans (in jpeg_start_decompress). */
static void jpeg_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (!cinfo->is_decompressor || d->input_scan_number <= IMAGE_MAX_JPEG_SCANS) return;
    JpegErr *e = (JpegErr *)cinfo->err;
    snprintf(e->message, sizeof e->message, "more than %d scans (a well-formed progressive JPEG has about 10)",
             IMAGE_MAX_JPEG_SCANS);
    longjmp(e->jump, 1);
}

static uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* One decoded gray (comps = 1) or CMYK (comps = 4) row to RGB. CMYK as Pillow converts it;
 * Adobe files store the inks inverted. */
static void jpeg_row_to_rgb(const uint8_t *in, int comps, int adobe, int w, uint8_t *out) {
    for (int x = 0; x < w; x++) {
        if (comps == 1) {
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
        } else {
            const uint8_t *p = in + 4 * x;
            int nk = adobe ? p[3] : 255 - p[3];
            for (int ch = 0; ch < 3; ch++) {
                int ink = adobe ? 255 - p[ch] : p[ch];
                out[3 * x + ch] = (uint8_t)(nk - muldiv255(ink, nk));
            }
        }
    }
}

static int decode_jpeg(const char *path, const uint8_t *buf, size_t len, Image *img) {
    struct jpeg_decompress_struct cinfo;
    JpegErr err;
    uint8_t *volatile out = NULL;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    err.pub.output_message = jpeg_silent;
    err.truncated = 0;
    err.message[0] = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        if (err.truncated) return an_error("%s: truncated JPEG data", path);
        return an_error("%s: bad JPEG data: %s", path, err.message);
    }
    jpeg_create_decompress(&cinfo);
    struct jpeg_progress_mgr progress = {.progress_monitor = jpeg_on_progress};
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (too_many_pixels(cinfo.image_width, cinfo.image_height)) {
        jpeg_destroy_decompress(&cinfo);
        return an_error("%s: JPEG of %ux%u pixels is too large (" IMAGE_LIMITS_FMT ")", path,
                        cinfo.image_width, cinfo.image_height, IMAGE_LIMITS);
    }
    if (cinfo.jpeg_color_space == JCS_GRAYSCALE)
        cinfo.out_color_space = JCS_GRAYSCALE;
    else if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK)
        cinfo.out_color_space = JCS_CMYK;
    else
        cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, comps = cinfo.output_components;
    if (comps != 1 && comps != 3 && comps != 4) {
        jpeg_destroy_decompress(&cinfo);
        return an_error("%s: unsupported JPEG with %d colour components", path, comps);
    }
    out = malloc((size_t)w * h * 3);
    row = malloc((size_t)w * comps);
    if (!out || !row) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return an_error("%s: out of memory for a %dx%d image", path, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = out + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW r = comps == 3 ? dst : row; /* RGB rows go straight to their place */
        if (jpeg_read_scanlines(&cinfo, &r, 1) != 1) break;
        if (comps != 3) jpeg_row_to_rgb(row, comps, cinfo.saw_Adobe_marker, w, dst);
    }
    int complete = cinfo.output_scanline == cinfo.output_height;
    /* all rows are in; whatever follows (EOI, trailing bytes) is not needed */
    jpeg_destroy_decompress(&cinfo);
    free(row);
    if (!complete) {
        free(out);
        return an_error("%s: truncated JPEG data", path);
    }
    img->w = w;
    img->h = h;
    img->c = 3;
    img->data = out;
    return 0;
}

/* ---- PNG ----------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char message[256];
} PngSrc;

static void png_mem_read(png_structp png, png_bytep dst, png_size_t n) {
    PngSrc *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated PNG data");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    PngSrc *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* Ask libpng for 8-bit RGB whatever the file holds. */
static void png_request_rgb8(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    if (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

static int decode_png(const char *path, const uint8_t *buf, size_t len, Image *img) {
    PngSrc src = {buf, len, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return an_error("%s: out of memory starting the PNG decoder", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(out);
        free(rows);
        return an_error("%s: bad PNG data: %s", path, src.message);
    }
    png_set_read_fn(png, &src, png_mem_read);
    png_read_info(png, info);
    long w = (long)png_get_image_width(png, info), h = (long)png_get_image_height(png, info);
    if (too_many_pixels(w, h)) {
        png_destroy_read_struct(&png, &info, NULL);
        return an_error("%s: PNG of %ldx%ld pixels is too large (" IMAGE_LIMITS_FMT ")", path, w, h,
                        IMAGE_LIMITS);
    }
    png_request_rgb8(png, info);
    if (png_get_channels(png, info) != 3 || png_get_rowbytes(png, info) != (size_t)w * 3) {
        png_destroy_read_struct(&png, &info, NULL);
        return an_error("%s: unsupported PNG pixel format", path);
    }
    out = malloc((size_t)w * h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!out || !rows) {
        png_destroy_read_struct(&png, &info, NULL);
        free(out);
        free(rows);
        return an_error("%s: out of memory for a %ldx%ld image", path, w, h);
    }
    for (long y = 0; y < h; y++) rows[y] = out + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    img->w = (int)w;
    img->h = (int)h;
    img->c = 3;
    img->data = out;
    return 0;
}

/* ---- public decoding ----------------------------------------------------------------------- */

int image_decode(const char *name, const uint8_t *buf, size_t len, Image *img) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(img, 0, sizeof *img);
    if (!name) name = "(image)";
    if (!buf || len == 0) return an_error("%s: empty file", name);
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return decode_jpeg(name, buf, len, img);
    if (len >= 8 && memcmp(buf, png_magic, 8) == 0) return decode_png(name, buf, len, img);
    return an_error("%s: not a JPEG or PNG file", name);
}

int image_load(const char *path, Image *img) {
    memset(img, 0, sizeof *img);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len) != 0) return -1;
    int rc = image_decode(path, buf, len, img);
    free(buf);
    return rc;
}

void image_free(Image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---- resizing (Pillow's ImagingResample with the BILINEAR triangle filter) ------------------ */

#define RS_BITS 22 /* fixed-point precision of the weights, as Pillow's PRECISION_BITS */
#define RS_MAX_SCALE 16384.0

/* Weights of outputs [first, first + count) of a 1-D resize from in_size to out_size. Output j
 * reads inputs bounds[2j] .. bounds[2j] + bounds[2j+1] - 1 with weights k[j * ksize + t]. */
typedef struct {
    int ksize;
    int *bounds;
    int32_t *k;
} Coeffs;

static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static void coeffs_free(Coeffs *co) {
    free(co->bounds);
    free(co->k);
    co->bounds = NULL;
    co->k = NULL;
}

static int coeffs_make(int in_size, int out_size, int first, int count, Coeffs *co) {
    double scale = (double)in_size / out_size;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale;  /* the triangle's support, widened when downscaling */
    if (scale > RS_MAX_SCALE)   /* keeps 255 * (sum of weights) well inside 32 bits */
        return an_error("image_resize: %d -> %d is too large a reduction", in_size, out_size);
    int ksize = (int)ceil(support) * 2 + 1;
    co->ksize = ksize;
    co->bounds = malloc((size_t)count * 2 * sizeof(int));
    co->k = calloc((size_t)count * ksize, sizeof(int32_t));
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!co->bounds || !co->k || !w) {
        free(w);
        coeffs_free(co);
        return an_error("out of memory (resize weights for %d -> %d)", in_size, out_size);
    }
    for (int j = 0; j < count; j++) {
        double center = (first + j + 0.5) * scale, sum = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize;
        for (int t = 0; t < xmax; t++) {
            w[t] = triangle((t + xmin - center + 0.5) / fscale);
            sum += w[t];
        }
        for (int t = 0; t < xmax; t++) {
            double v = sum != 0.0 ? w[t] / sum : w[t];
            co->k[(size_t)j * ksize + t] = (int32_t)(v < 0 ? -0.5 + v * (1 << RS_BITS)
                                                          : 0.5 + v * (1 << RS_BITS));
        }
        co->bounds[2 * j] = xmin;
        co->bounds[2 * j + 1] = xmax;
    }
    free(w);
    return 0;
}

static uint8_t clip8(int32_t acc) {
    int32_t v = acc >> RS_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass: nrows rows of src (row stride in bytes), each resampled by co into count
 * pixels of dst (nrows, count, c). src starts at column col_base of the image co refers to. */
static void resample_h(const uint8_t *src, size_t stride, int c, int nrows, const Coeffs *co,
                       int count, int col_base, uint8_t *dst) {
    for (int y = 0; y < nrows; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        uint8_t *o = dst + (size_t)y * count * c;
        for (int j = 0; j < count; j++, o += c) {
            const uint8_t *p = in + (size_t)(co->bounds[2 * j] - col_base) * c;
            const int32_t *k = co->k + (size_t)j * co->ksize;
            int n = co->bounds[2 * j + 1];
            if (c == 3) {
                int32_t a0 = 1 << (RS_BITS - 1), a1 = a0, a2 = a0;
                for (int t = 0; t < n; t++, p += 3) {
                    a0 += p[0] * k[t];
                    a1 += p[1] * k[t];
                    a2 += p[2] * k[t];
                }
                o[0] = clip8(a0);
                o[1] = clip8(a1);
                o[2] = clip8(a2);
            } else {
                for (int ch = 0; ch < c; ch++) {
                    int32_t acc = 1 << (RS_BITS - 1);
                    for (int t = 0; t < n; t++) acc += p[(size_t)t * c + ch] * k[t];
                    o[ch] = clip8(acc);
                }
            }
        }
    }
}

/* Vertical pass: columns of src (width pixels, row stride in bytes) resampled by co into count
 * rows of dst (count, width, c). src starts at row row_base of the image co refers to. Runs
 * along rows in blocks so the inner loop is contiguous and vectorises. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void resample_v(const uint8_t *src, size_t stride, int c, int width, const Coeffs *co,
                       int count, int row_base, uint8_t *dst) {
    enum { BLOCK = 1024 };
    int32_t acc[BLOCK];
    size_t n = (size_t)width * c;
    for (int j = 0; j < count; j++) {
        const uint8_t *p = src + (size_t)(co->bounds[2 * j] - row_base) * stride;
        const int32_t *k = co->k + (size_t)j * co->ksize;
        int taps = co->bounds[2 * j + 1];
        uint8_t *o = dst + (size_t)j * n;
        for (size_t x0 = 0; x0 < n; x0 += BLOCK) {
            size_t m = n - x0 < BLOCK ? n - x0 : BLOCK;
            for (size_t x = 0; x < m; x++) acc[x] = 1 << (RS_BITS - 1);
            for (int t = 0; t < taps; t++) {
                const uint8_t *row = p + (size_t)t * stride + x0;
                int32_t kt = k[t];
                for (size_t x = 0; x < m; x++) acc[x] += row[x] * kt;
            }
            for (size_t x = 0; x < m; x++) o[x0 + x] = clip8(acc[x]);
        }
    }
}

/* Pillow 13 runs the vertical pass first when the height loses more than twice as many pixels
 * as the width (h - oh > 0 and h - oh > 2 (w - ow)); Pillow 12 and earlier always went
 * horizontal first.
 * The order moves some values by one; aspect-preserving resizes of images less than twice as
 * tall as wide are the same either way. */
static int vertical_first(int w, int h, int ow, int oh) {
    return h - oh > 0 && h - oh > 2 * (w - ow);
}

/* The reference: the window [x0, x0 + cw) x [y0, y0 + ch) of src (h, w, c) resized to (oh, ow),
 * into dst (ch, cw, c), interleaved. Two separable passes with the intermediate rounded to 8 bits,
 * as Pillow does; a pass whose size does not change is skipped. resize_window below computes the
 * same bytes faster, in planar layout. */
static int resize_window_ref(const uint8_t *src, int w, int h, int c, int ow, int oh, int x0, int y0,
                         int cw, int chh, uint8_t *dst) {
    Coeffs hx = {0}, vy = {0};
    uint8_t *tmp = NULL;
    size_t stride = (size_t)w * c;
    int rc = -1;
    if (ow != w && coeffs_make(w, ow, x0, cw, &hx) != 0) goto done;
    if (oh != h && coeffs_make(h, oh, y0, chh, &vy) != 0) goto done;
    if (ow == w && oh == h) {
        for (int y = 0; y < chh; y++)
            memcpy(dst + (size_t)y * cw * c, src + (y0 + y) * stride + (size_t)x0 * c, (size_t)cw * c);
    } else if (oh == h) {
        resample_h(src + y0 * stride, stride, c, chh, &hx, cw, 0, dst);
    } else if (ow == w) {
        resample_v(src + (size_t)x0 * c, stride, c, cw, &vy, chh, 0, dst);
    } else if (!vertical_first(w, h, ow, oh)) {
        int r0 = vy.bounds[0], r1 = vy.bounds[2 * (chh - 1)] + vy.bounds[2 * (chh - 1) + 1];
        if (!(tmp = an_thread_buffer(AN_BUF_RESIZE_TMP, (size_t)(r1 - r0) * cw * c))) goto done;
        resample_h(src + r0 * stride, stride, c, r1 - r0, &hx, cw, 0, tmp);
        resample_v(tmp, (size_t)cw * c, c, cw, &vy, chh, r0, dst);
    } else {
        int c0 = hx.bounds[0], c1 = hx.bounds[2 * (cw - 1)] + hx.bounds[2 * (cw - 1) + 1];
        if (!(tmp = an_thread_buffer(AN_BUF_RESIZE_TMP, (size_t)chh * (c1 - c0) * c))) goto done;
        resample_v(src + (size_t)c0 * c, stride, c, c1 - c0, &vy, chh, 0, tmp);
        resample_h(tmp, (size_t)(c1 - c0) * c, c, chh, &hx, cw, c0, dst);
    }
    rc = 0;
done:
    coeffs_free(&hx);
    coeffs_free(&vy);
    return rc;
}

/* ---- the fast path: planar output, the horizontal pass vectorised with gathers ------------- */

/* Planar copy of interleaved pixels: src (nrows, width, c) with row stride `stride` bytes into
 * dst (c, nrows, width). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void deinterleave(const uint8_t *src, size_t stride, int c, int nrows, int width, uint8_t *dst) {
    size_t plane = (size_t)nrows * width;
    for (int y = 0; y < nrows; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        if (c == 3) {
            uint8_t *o0 = dst + (size_t)y * width, *o1 = o0 + plane, *o2 = o1 + plane;
            for (int x = 0; x < width; x++) {
                o0[x] = in[3 * x];
                o1[x] = in[3 * x + 1];
                o2[x] = in[3 * x + 2];
            }
        } else {
            for (int ch = 0; ch < c; ch++)
                for (int x = 0; x < width; x++) dst[ch * plane + (size_t)y * width + x] = in[(size_t)x * c + ch];
        }
    }
}

/* Horizontal pass, planar output: nrows rows of src (interleaved, row stride in bytes, starting at
 * column col_base of the image co refers to), each resampled by co into count pixels, written to
 * dst[ch * plane + y * count + j]. The scalar loop is the reference's arithmetic. */
static void hpass_scalar(const uint8_t *src, size_t stride, int c, int y0, int y1, const Coeffs *co,
                         int count, int col_base, uint8_t *dst, size_t plane) {
    for (int y = y0; y < y1; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        for (int j = 0; j < count; j++) {
            const uint8_t *p = in + (size_t)(co->bounds[2 * j] - col_base) * c;
            const int32_t *k = co->k + (size_t)j * co->ksize;
            int n = co->bounds[2 * j + 1];
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = 1 << (RS_BITS - 1);
                for (int t = 0; t < n; t++) acc += p[(size_t)t * c + ch] * k[t];
                dst[ch * plane + (size_t)y * count + j] = clip8(acc);
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* 16 outputs j of one row and channel at a time: tap t of output j reads the byte at
 * in + off[(ch * ksize + t) * count + j] with weight wt[t * count + j] (zero past its taps). Each
 * gather reads 4 bytes from that offset, so the last row of a buffer is left to the scalar loop.
 * The sums are the scalar loop's, in the same order: the bytes are identical. */
RS_AVX512 static void hpass_avx512(const uint8_t *src, size_t stride, int c, int y0, int y1, int ksize,
                                   const int32_t *off, const int32_t *wt, int count, uint8_t *dst,
                                   size_t plane) {
    const __m512i half = _mm512_set1_epi32(1 << (RS_BITS - 1)), bytes = _mm512_set1_epi32(0xFF);
    for (int y = y0; y < y1; y++) {
        const uint8_t *in = src + (size_t)y * stride;
        for (int ch = 0; ch < c; ch++) {
            uint8_t *o = dst + ch * plane + (size_t)y * count;
            for (int j = 0; j < count; j += 16) {
                int r = count - j < 16 ? count - j : 16;
                __mmask16 m = (__mmask16)((1u << r) - 1);
                __m512i acc = half;
                for (int t = 0; t < ksize; t++) {
                    __m512i idx = _mm512_maskz_loadu_epi32(m, off + (size_t)(ch * ksize + t) * count + j);
                    __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, in, 1);
                    __m512i w = _mm512_maskz_loadu_epi32(m, wt + (size_t)t * count + j);
                    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_and_si512(v, bytes), w));
                }
                acc = _mm512_max_epi32(_mm512_srai_epi32(acc, RS_BITS), _mm512_setzero_si512());
                _mm_mask_storeu_epi8(o + j, m, _mm512_cvtusepi32_epi8(acc));
            }
        }
    }
}
#else
#endif

static int hpass(const uint8_t *src, size_t stride, int c, int nrows, const Coeffs *co, int count,
                 int col_base, uint8_t *dst) {
    size_t plane = (size_t)nrows * count;
    int fast_rows = an_cpu_avx512() ? nrows - 1 : 0; /* the last row by the scalar loop */
#if defined(__x86_64__) && defined(__GNUC__)
    if (fast_rows > 0) {
        int ks = co->ksize;
        size_t n = (size_t)ks * count;
        int32_t *tab = an_thread_buffer(AN_BUF_RESIZE_TABLES, (n * c + n) * sizeof(int32_t));
        if (!tab) return -1;
        int32_t *off = tab, *wt = tab + n * c;
        for (int j = 0; j < count; j++) {
            int b = co->bounds[2 * j] - col_base, taps = co->bounds[2 * j + 1];
            for (int t = 0; t < ks; t++) {
                wt[(size_t)t * count + j] = t < taps ? co->k[(size_t)j * ks + t] : 0;
                for (int ch = 0; ch < c; ch++)
                    off[((size_t)ch * ks + t) * count + j] = (t < taps ? b + t : b) * c + ch;
            }
        }
        hpass_avx512(src, stride, c, 0, fast_rows, ks, off, wt, count, dst, plane);
    }
#endif
    hpass_scalar(src, stride, c, fast_rows, nrows, co, count, col_base, dst, plane);
    return 0;
}

/* The window of resize_window_ref, the same bytes, into dst (c, chh, cw) planar. */
static int resize_window(const uint8_t *src, int w, int h, int c, int ow, int oh, int x0, int y0,
                         int cw, int chh, uint8_t *dst) {
    Coeffs hx = {0}, vy = {0};
    uint8_t *tmp = NULL;
    size_t stride = (size_t)w * c, plane = (size_t)chh * cw;
    int rc = -1;
    if (ow != w && coeffs_make(w, ow, x0, cw, &hx) != 0) goto done;
    if (oh != h && coeffs_make(h, oh, y0, chh, &vy) != 0) goto done;
    if (ow == w && oh == h) {
        deinterleave(src + y0 * stride + (size_t)x0 * c, stride, c, chh, cw, dst);
    } else if (oh == h) {
        if (hpass(src + y0 * stride, stride, c, chh, &hx, cw, 0, dst)) goto done;
    } else if (ow == w) {
        if (!(tmp = an_thread_buffer(AN_BUF_RESIZE_TMP, plane * c))) goto done;
        resample_v(src + (size_t)x0 * c, stride, c, cw, &vy, chh, 0, tmp);
        deinterleave(tmp, (size_t)cw * c, c, chh, cw, dst);
    } else if (!vertical_first(w, h, ow, oh)) {
        int r0 = vy.bounds[0], r1 = vy.bounds[2 * (chh - 1)] + vy.bounds[2 * (chh - 1) + 1];
        size_t tplane = (size_t)(r1 - r0) * cw;
        if (!(tmp = an_thread_buffer(AN_BUF_RESIZE_TMP, tplane * c))) goto done;
        if (hpass(src + r0 * stride, stride, c, r1 - r0, &hx, cw, 0, tmp)) goto done;
        for (int ch = 0; ch < c; ch++) resample_v(tmp + ch * tplane, cw, 1, cw, &vy, chh, r0, dst + ch * plane);
    } else {
        int c0 = hx.bounds[0], c1 = hx.bounds[2 * (cw - 1)] + hx.bounds[2 * (cw - 1) + 1];
        if (!(tmp = an_thread_buffer(AN_BUF_RESIZE_TMP, (size_t)chh * (c1 - c0) * c))) goto done;
        resample_v(src + (size_t)c0 * c, stride, c, c1 - c0, &vy, chh, 0, tmp);
        if (hpass(tmp, (size_t)(c1 - c0) * c, c, chh, &hx, cw, c0, dst)) goto done;
    }
    rc = 0;
done:
    coeffs_free(&hx);
    coeffs_free(&vy);
    return rc;
}

int image_resize_checked(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh) {
    if (w <= 0 || h <= 0 || c <= 0 || ow <= 0 || oh <= 0)
        return an_error("image_resize: bad sizes %dx%d -> %dx%d", w, h, ow, oh);
    size_t plane = (size_t)ow * oh;
    uint8_t *planar = an_thread_buffer(AN_BUF_RESIZE_WINDOW, plane * c);
    if (!planar || resize_window(src, w, h, c, ow, oh, 0, 0, ow, oh, planar) != 0) return -1;
    for (size_t i = 0; i < plane; i++)
        for (int ch = 0; ch < c; ch++) dst[i * c + ch] = planar[ch * plane + i];
    return 0;
}

int image_resize_reference(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh) {
    if (w <= 0 || h <= 0 || c <= 0 || ow <= 0 || oh <= 0)
        return an_error("image_resize: bad sizes %dx%d -> %dx%d", w, h, ow, oh);
    return resize_window_ref(src, w, h, c, ow, oh, 0, 0, ow, oh, dst);
}

/* Out of memory leaves dst black (an_error() is set); use image_resize_checked to detect it. */
void image_resize(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh) {
    if (image_resize_checked(src, w, h, c, dst, ow, oh) != 0 && ow > 0 && oh > 0 && c > 0)
        memset(dst, 0, (size_t)ow * oh * c);
}

/* ---- resize + centre crop (torchvision Resize(resize) + CenterCrop(crop) on a PIL image) ----- */

/* Offset of the centre crop along one side, torchvision's int(round((size - crop) / 2.0)) with
 * Python's round-half-to-even; when the crop is larger it is padded: offset -((crop-size)//2). */
static int crop_offset(int size, int crop) {
    if (size < crop) return -((crop - size) / 2);
    int d = size - crop, k = d / 2;
    if ((d & 1) && (k & 1)) k++;
    return k;
}

int image_resize_center_crop(const Image *img, int resize, int crop, uint8_t *planar_out) {
    int w = img->w, h = img->h, c = img->c;
    if (w <= 0 || h <= 0 || c <= 0 || resize <= 0 || crop <= 0 || !img->data)
        return an_error("image_resize_center_crop: bad sizes %dx%d resize %d crop %d", w, h,
                        resize, crop);
    /* torchvision: the shorter side becomes `resize`, the longer int(resize * long / short) */
    int nw, nh;
    if (w <= h) { nw = resize; nh = (int)((double)resize * h / w); }
    else        { nh = resize; nw = (int)((double)resize * w / h); }
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    int left = crop_offset(nw, crop), top = crop_offset(nh, crop);
    /* the part of the crop that lies inside the resized image; the rest is zero padding */
    int x0 = left < 0 ? 0 : left, y0 = top < 0 ? 0 : top;
    int x1 = left + crop > nw ? nw : left + crop, y1 = top + crop > nh ? nh : top + crop;
    int cw = x1 - x0, chh = y1 - y0;
    if (cw == crop && chh == crop) /* no padding: straight into the output */
        return resize_window(img->data, w, h, c, nw, nh, x0, y0, cw, chh, planar_out);
    uint8_t *win = an_thread_buffer(AN_BUF_RESIZE_WINDOW, (size_t)cw * chh * c);
    if (!win) return -1;
    if (resize_window(img->data, w, h, c, nw, nh, x0, y0, cw, chh, win) != 0) return -1;
    memset(planar_out, 0, (size_t)c * crop * crop);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < chh; y++)
            memcpy(planar_out + ((size_t)ch * crop + (y0 - top + y)) * crop + (x0 - left),
                   win + ((size_t)ch * chh + y) * cw, (size_t)cw);
    return 0;
}
