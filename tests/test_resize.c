/* test_resize.c: the resize against bytes Pillow itself produced, and the fast path against the
 * scalar reference.
 *
 * tests/vectors/resize_pillow.safetensors (tools/make_resize_reference.py, Pillow 13.0.0 from PyPI,
 * numpy 2.4.6) holds small synthetic images (noise, gradients, hard edges, flat black and white
 * blocks; RGB and grayscale) with Pillow's Image.resize((ow, oh), BILINEAR, reducing_gap=None) of
 * each, torchvision's Resize(r) + CenterCrop(s) written out with Pillow calls, and Pillow's decode
 * of demo-images/butterfly.jpg with its Resize(256) + CenterCrop(224), a 5.6x reduction and a tall
 * strip of it resized and cropped. Every case must come out byte for byte equal through every
 * path: image_resize_reference (scalar, interleaved), image_resize_checked and image_resize
 * (planar fast path, portable loops; the AVX-512 gathers in their own test, which needs the CPU),
 * image_resize_center_crop (the window resize of classify and the folder datasets) and a crop of
 * the reference's full resize. The cases: wide images and tall ones (h - oh > 2 (w - ow), the
 * height reduced much more than the width: Pillow 13, like image.c, runs the vertical pass first
 * there; Pillow 12 and earlier, Debian 12's 9.4.0 included, go horizontal first and differ in 200
 * to 2016 bytes of each), the two shapes either side of that threshold, upscaling, 5.6x to 9x
 * reductions, odd sizes, one pixel wide or high, one-axis and no-op resizes, centre-crop offsets
 * that round half to even and a crop padded with zeros. In every two-pass case but the one-pixel
 * ones the other pass order changes bytes (metadata pass_order), so taking the wrong order fails.
 *
 * jpeg_decode_matches_pillow compares our libjpeg-turbo decode of the photo with Pillow's (needs
 * the shared data). The two older tests at the end compare the fast path with the reference on
 * random images. */
#include "harness.h"
#include "../src/data/data_internal.h"
#include "../src/data/image.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h> /* after stdio.h; LIBJPEG_TURBO_VERSION_NUMBER */

#define PILLOW_VECTORS "tests/vectors/resize_pillow.safetensors"
#define PILLOW_VERSION "13.0.0" /* the Pillow that wrote the vectors (checked against the file) */

/* ---- Pillow's bytes -------------------------------------------------------------------------- */

static const char *const k_pillow_resize[] = {
    "wide_rgb",      "tall_rgb",    "tall_gray",     "tall_upwidth_rgb", "tall_aspect_rgb", "upscale_rgb",
    "upscale_gray",  "down9x_gray", "down7x_rgb",    "odd_mixed_rgb",    "one_col_rgb",     "one_col_to3_gray",
    "one_row_rgb",   "one_px_rgb",  "width_same_rgb", "height_same_gray", "noop_rgb",        "edge_even_rgb",
    "edge_tall_rgb"};
static const char *const k_pillow_crop[] = {"crop_wide_rgb", "crop_tall_rgb", "crop_up_odd_rgb", "crop_pad_rgb"};
#define N_RESIZE (int)(sizeof k_pillow_resize / sizeof k_pillow_resize[0])
#define N_CROP (int)(sizeof k_pillow_crop / sizeof k_pillow_crop[0])
#define N_PHOTO_TENSORS 6 /* photo.src, .classify, .classify_args, .small, .strip, .strip_args */

typedef struct {
    const uint8_t *px;
    int w, h, c;
} Hwc;

/* The vector file, checked once per test: the Pillow version and exactly the expected tensors. */
static int pillow_open(StFile *f) {
    int rc = st_read(PILLOW_VECTORS, f);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return -1;
    const char *ver = st_meta(f, "pillow_version");
    CHECK(ver && !strcmp(ver, PILLOW_VERSION), "%s comes from Pillow %s, this test names %s", PILLOW_VECTORS,
          ver ? ver : "(none)", PILLOW_VERSION);
    CHECK(f->n == 2 * N_RESIZE + 3 * N_CROP + N_PHOTO_TENSORS,
          "%s has %d tensors, the tests here know %d (a case nobody compares?)", PILLOW_VECTORS, f->n,
          2 * N_RESIZE + 3 * N_CROP + N_PHOTO_TENSORS);
    return 0;
}

static int get_hwc(const StFile *f, const char *name, Hwc *out) {
    const StTensor *t = st_find(f, name);
    int ok = t && t->dtype == ST_U8 && t->ndim == 3 && t->shape[0] > 0 && t->shape[1] > 0 &&
             (t->shape[2] == 1 || t->shape[2] == 3);
    CHECK(ok, "%s: tensor %s missing or not U8 (h, w, 1 or 3)", PILLOW_VECTORS, name);
    if (!ok) return -1;
    *out = (Hwc){t->data, (int)t->shape[1], (int)t->shape[0], (int)t->shape[2]};
    return 0;
}

/* n int32 values into out (copied: the tensor need not be 4-byte aligned in the file). 0 or -1. */
static int get_i32(const StFile *f, const char *name, int n, int32_t *out) {
    const StTensor *t = st_find(f, name);
    int ok = t && t->dtype == ST_I32 && t->ndim == 1 && t->shape[0] == n;
    CHECK(ok, "%s: tensor %s missing or not I32[%d]", PILLOW_VECTORS, name, n);
    if (ok) memcpy(out, t->data, (size_t)n * sizeof *out);
    return ok ? 0 : -1;
}

/* got (interleaved, or planar (c, h, w) when planar) against Pillow's interleaved want; names the
 * first differing pixel. Returns the number of differing bytes. */
static size_t compare_pillow(const char *what, const char *path, const uint8_t *got, int planar, const Hwc *want) {
    size_t bad = 0, plane = (size_t)want->w * want->h;
    int fx = 0, fy = 0, fc = 0, fg = 0, fw = 0;
    for (int y = 0; y < want->h; y++)
        for (int x = 0; x < want->w; x++)
            for (int ch = 0; ch < want->c; ch++) {
                size_t q = (size_t)y * want->w + x;
                int g = planar ? got[ch * plane + q] : got[q * want->c + ch], p = want->px[q * want->c + ch];
                if (g != p && bad++ == 0) fx = x, fy = y, fc = ch, fg = g, fw = p;
            }
    CHECK(bad == 0, "%s via %s: %zu of %zu bytes differ from Pillow %s; first at x=%d y=%d channel %d: ours %d, "
          "Pillow %d", what, path, bad, plane * want->c, PILLOW_VERSION, fx, fy, fc, fg, fw);
    return bad;
}

/* The window [x0, x0 + cw) x [y0, y0 + ch) of an interleaved (h, w, c) image, as a new buffer. */
static uint8_t *window(const Hwc *src, int x0, int y0, int cw, int chh) {
    uint8_t *o = malloc((size_t)cw * chh * src->c);
    if (o)
        for (int y = 0; y < chh; y++)
            memcpy(o + (size_t)y * cw * src->c, src->px + ((size_t)(y0 + y) * src->w + x0) * src->c,
                   (size_t)cw * src->c);
    return o;
}

/* A plain resize of src to want's size through the reference, image_resize_checked and
 * image_resize (whatever an_cpu_avx512() says now). Returns the differing bytes over all paths. */
static size_t resize_all_paths(const char *what, const Hwc *src, const Hwc *want) {
    size_t n = (size_t)want->w * want->h * want->c, bad = 0;
    uint8_t *got = malloc(n);
    CHECK(got && src->c == want->c, "%s: out of memory or channel mismatch", what);
    if (!got || src->c != want->c) { free(got); return 1; }
    static const char *const paths[] = {"image_resize_reference", "image_resize_checked", "image_resize"};
    for (int p = 0; p < 3; p++) {
        memset(got, 0xA5, n);
        int rc = 0;
        if (p == 0) rc = image_resize_reference(src->px, src->w, src->h, src->c, got, want->w, want->h);
        if (p == 1) rc = image_resize_checked(src->px, src->w, src->h, src->c, got, want->w, want->h);
        if (p == 2) image_resize(src->px, src->w, src->h, src->c, got, want->w, want->h);
        CHECK(rc == 0, "%s via %s: %s", what, paths[p], an_last_error());
        bad += rc ? 1 : compare_pillow(what, paths[p], got, 0, want);
    }
    free(got);
    return bad;
}

/* torchvision's centre-crop offset along one side (padding when negative). */
static int centre(int size, int crop) {
    if (size < crop) return -((crop - size) / 2);
    int d = size - crop, k = d / 2;
    return (d & 1) && (k & 1) ? k + 1 : k;
}

/* Resize(resize) + CenterCrop(crop) of src through image_resize_center_crop (planar) and through a
 * crop of the reference's full resize (padding zero). Returns the differing bytes. */
static size_t crop_all_paths(const char *what, const Hwc *src, int resize, int crop, const Hwc *want) {
    CHECK(want->w == crop && want->h == crop && want->c == src->c, "%s: Pillow's crop is %dx%dx%d", what, want->w,
          want->h, want->c);
    if (want->w != crop || want->h != crop || want->c != src->c) return 1;
    int w = src->w, h = src->h, c = src->c;
    int nw = w <= h ? resize : (int)((double)resize * w / h), nh = w <= h ? (int)((double)resize * h / w) : resize;
    size_t n = (size_t)crop * crop * c, bad = 0;
    uint8_t *got = malloc(n), *full = malloc((size_t)nw * nh * c), *cut = malloc(n);
    CHECK(got && full && cut, "out of memory");
    if (got && full && cut) {
        memset(got, 0xA5, n);
        Image img = {w, h, c, (uint8_t *)src->px};
        int rc = image_resize_center_crop(&img, resize, crop, got);
        CHECK(rc == 0, "%s: %s", what, an_last_error());
        bad += rc ? 1 : compare_pillow(what, "image_resize_center_crop", got, 1, want);
        rc = image_resize_reference(src->px, w, h, c, full, nw, nh);
        CHECK(rc == 0, "%s: %s", what, an_last_error());
        int left = centre(nw, crop), top = centre(nh, crop);
        for (int y = 0; y < crop; y++)
            for (int x = 0; x < crop; x++)
                for (int ch = 0; ch < c; ch++) {
                    int sx = left + x, sy = top + y;
                    cut[((size_t)y * crop + x) * c + ch] =
                        sx < 0 || sy < 0 || sx >= nw || sy >= nh ? 0 : full[((size_t)sy * nw + sx) * c + ch];
                }
        bad += rc ? 1 : compare_pillow(what, "a crop of image_resize_reference", cut, 0, want);
    }
    free(got), free(full), free(cut);
    return bad;
}

/* Every case of the vector file, with the fast path as an_cpu_avx512() now says. */
static void pillow_all_cases(const char *label) {
    StFile f;
    if (pillow_open(&f)) return;
    char name[96], what[160];
    for (int i = 0; i < N_RESIZE; i++) {
        Hwc src, want;
        snprintf(name, sizeof name, "%s.src", k_pillow_resize[i]);
        if (get_hwc(&f, name, &src)) continue;
        snprintf(name, sizeof name, "%s.out", k_pillow_resize[i]);
        if (get_hwc(&f, name, &want)) continue;
        snprintf(what, sizeof what, "%s (%dx%dx%d -> %dx%d, %s)", k_pillow_resize[i], src.w, src.h, src.c, want.w,
                 want.h, label);
        resize_all_paths(what, &src, &want);
    }
    for (int i = 0; i < N_CROP; i++) {
        Hwc src, want;
        snprintf(name, sizeof name, "%s.src", k_pillow_crop[i]);
        if (get_hwc(&f, name, &src)) continue;
        snprintf(name, sizeof name, "%s.out", k_pillow_crop[i]);
        if (get_hwc(&f, name, &want)) continue;
        snprintf(name, sizeof name, "%s.args", k_pillow_crop[i]);
        int32_t a[2];
        if (get_i32(&f, name, 2, a)) continue;
        snprintf(what, sizeof what, "%s (%dx%d, resize %d, crop %d, %s)", k_pillow_crop[i], src.w, src.h, a[0], a[1],
                 label);
        crop_all_paths(what, &src, a[0], a[1], &want);
    }
    /* the photo, from Pillow's decoded pixels (no JPEG decoder involved) */
    Hwc photo, want;
    int32_t a[4];
    if (get_hwc(&f, "photo.src", &photo) == 0) {
        if (get_hwc(&f, "photo.classify", &want) == 0 && get_i32(&f, "photo.classify_args", 2, a) == 0) {
            snprintf(what, sizeof what, "butterfly.jpg (%dx%d, resize %d, crop %d, %s)", photo.w, photo.h, a[0], a[1],
                     label);
            crop_all_paths(what, &photo, a[0], a[1], &want);
        }
        if (get_hwc(&f, "photo.small", &want) == 0) {
            snprintf(what, sizeof what, "butterfly.jpg (%dx%d -> %dx%d, %s)", photo.w, photo.h, want.w, want.h, label);
            resize_all_paths(what, &photo, &want);
        }
        if (get_hwc(&f, "photo.strip", &want) == 0 && get_i32(&f, "photo.strip_args", 4, a) == 0) {
            int ok = a[0] >= 0 && a[1] > 0 && a[0] + a[1] <= photo.w;
            CHECK(ok, "photo.strip_args %d %d outside the photo", a[0], a[1]);
            uint8_t *strip = ok ? window(&photo, a[0], 0, a[1], photo.h) : NULL;
            if (strip) {
                Hwc s = {strip, a[1], photo.h, 3};
                snprintf(what, sizeof what, "butterfly.jpg columns %d..%d (%dx%d, resize %d, crop %d, %s)", a[0],
                         a[0] + a[1] - 1, a[1], photo.h, a[2], a[3], label);
                crop_all_paths(what, &s, a[2], a[3], &want);
            }
            free(strip);
        }
    }
    st_free(&f);
}

TEST(resize_matches_pillow) {
    an_cpu_avx512_override(0); /* the portable loops of the fast path */
    pillow_all_cases("portable");
    an_cpu_avx512_override(-1);
}

TEST(resize_matches_pillow_avx512) {
    if (!an_cpu_avx512_hw()) SKIP("no AVX-512 (F, BW, VL) on this CPU: the gather path of the fast resize cannot run");
    an_cpu_avx512_override(1);
    pillow_all_cases("AVX-512");
    an_cpu_avx512_override(-1);
}

/* Our libjpeg decode of the photo against Pillow's (Pillow 13.0.0's wheel, libjpeg-turbo 3.2.0;
 * Debian's Pillow 9.4.0 on libjpeg-turbo 2.1.5 gives the same bytes). With libjpeg-turbo the two
 * must be equal (both run the default islow IDCT and fancy upsampling); another libjpeg may round
 * differently, so there the differences are only reported and the test is skipped. */
TEST(jpeg_decode_matches_pillow) {
    const char *shared = harness_shared_data();
    if (!shared) SKIP("no shared data folder (../shared/data): the photo is not here");
    StFile f;
    if (pillow_open(&f)) return;
    const char *name = st_meta(&f, "photo"), *bytes = st_meta(&f, "photo_bytes");
    const char *pil_jpeg = st_meta(&f, "libjpeg_turbo_version");
    Hwc want;
    CHECK(name && bytes, "%s: no photo metadata", PILLOW_VECTORS);
    if (!name || !bytes || get_hwc(&f, "photo.src", &want)) { st_free(&f); return; }
    char path[1024];
    snprintf(path, sizeof path, "%s/demo-images/%s", shared, name);
    FILE *fp = fopen(path, "rb");
    long size = -1;
    if (fp && fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    if (fp) fclose(fp);
    if (size < 0 || size != atol(bytes)) {
        st_free(&f);
        if (size < 0) SKIP("no %s", path);
        SKIP("%s has %ld bytes, the vectors were made from a %s-byte file", path, size, bytes);
    }
    Image img;
    int rc = image_load(path, &img);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc == 0) {
        CHECK(img.w == want.w && img.h == want.h && img.c == 3, "%s: we decode %dx%dx%d, Pillow %dx%dx%d", name,
              img.w, img.h, img.c, want.w, want.h, want.c);
        if (img.w == want.w && img.h == want.h && img.c == 3) {
            size_t n = (size_t)img.w * img.h * 3, bad = 0, first = 0;
            int maxd = 0;
            for (size_t i = 0; i < n; i++) {
                int d = abs((int)img.data[i] - (int)want.px[i]);
                if (d && bad++ == 0) first = i;
                if (d > maxd) maxd = d;
            }
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
            printf("  decode %s %dx%d: %zu of %zu bytes differ from Pillow %s's (max %d); libjpeg-turbo %d.%d.%d "
                   "here, %s for Pillow\n", name, img.w, img.h, bad, n, PILLOW_VERSION, maxd,
                   LIBJPEG_TURBO_VERSION_NUMBER / 1000000, LIBJPEG_TURBO_VERSION_NUMBER / 1000 % 1000,
                   LIBJPEG_TURBO_VERSION_NUMBER % 1000, pil_jpeg ? pil_jpeg : "?");
            CHECK(bad == 0, "%s: %zu bytes differ from Pillow's decode (max %d); first at x=%zu y=%zu channel %zu: "
                  "ours %d, Pillow %d", name, bad, maxd, first / 3 % img.w, first / 3 / img.w, first % 3,
                  img.data[first], want.px[first]);
#else
            (void)first;
            printf("  decode %s %dx%d: %zu of %zu bytes differ from Pillow's (max %d); not libjpeg-turbo here\n",
                   name, img.w, img.h, bad, n, maxd);
            image_free(&img);
            st_free(&f);
            SKIP("this libjpeg is not libjpeg-turbo (Pillow's was %s): decode differences are reported, not "
                 "checked", pil_jpeg ? pil_jpeg : "?");
#endif
        }
        image_free(&img);
    }
    st_free(&f);
}

/* ---- the fast path against the reference, random images ------------------------------------- */

static void fill_random(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(an_hash64(seed, i) >> 24);
}

/* {w, h, ow, oh} */
static const int k_sizes[][4] = {
    {224, 224, 256, 256}, /* Imagenette: upscaled */
    {500, 375, 341, 256}, /* a typical ImageNet photo: downscaled */
    {60, 400, 50, 100},   /* tall: the vertical pass runs first (as in Pillow 13) */
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
