/* test_preprocess.c: the classify preprocessing (alexnet-owt) against torchvision's.
 * tools/make_preprocess_reference.py (torchvision 0.14.1, Pillow 9.4.0, libjpeg-turbo 2.1.5: Debian
 * 12's packages) ran PIL open .convert('RGB') -> Resize(256) -> CenterCrop(224) -> ToTensor ->
 * Normalize(ImageNet mean, std) on four demo photos and stored, per image, the per-channel mean and
 * std, 256 values at flat indices j*588+13 and the tensor average-pooled over 8x8 blocks (3x28x28)
 * in tests/vectors/preprocess.safetensors. Here the same photos go through our chain (image_load ->
 * image_resize_center_crop(256, 224) -> normalize_image with norm_imagenet(3)), as cmd_classify.c
 * does, and the summaries are compared. None of the photos is more than twice as tall as wide, so
 * Pillow 13, whose pass order image.c follows (test_resize.c checks the uint8 resize byte for byte
 * against Pillow 13.0.0), gives the same pixels as the 9.4.0 that made these vectors.
 *
 * Measured: every difference is float rounding (at most 1.3e-6 in any statistic); our decode and
 * resize reproduce Pillow's pixels exactly. So where that is expected, for the PNGs and, when we
 * decode with libjpeg-turbo, the JPEGs, the tolerance is TOL_EXACT = 1e-5 on every statistic and
 * on the largest sampled difference: one uint8 step anywhere moves its 8x8 block average by
 * 2.7e-4, so any pixel off by one fails. With another libjpeg the JPEGs may round differently and
 * are held to the loose TOL_* below, which leave room for +-1 (0.017-0.018 after normalisation)
 * yet are far below what a real preprocessing mistake costs. preprocess_tolerances_catch_errors
 * checks that a crop shifted by 4 pixels, a resize to 224 instead of 256, a missing normalisation
 * and BGR order each fail the loose tolerances on every image, and that our pixels jittered by +-1
 * pass the loose ones but fail TOL_EXACT. Set ALEXNET_TEST_VERBOSE=1 to print the measured
 * differences. The photos live in <shared data>/demo-images; without them both tests are skipped,
 * naming what is missing. */
#include "harness.h"
#include "../src/data/dataset.h"
#include "../src/data/image.h"
#include "../src/train/batch.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h> /* after stdio.h; LIBJPEG_TURBO_VERSION_NUMBER */

#define PP_VECTORS "tests/vectors/preprocess.safetensors"
#define PP_S 224
#define PP_PLANE (PP_S * PP_S)
#define PP_N (3 * PP_PLANE)
#define PP_SAMPLES 256
#define PP_POOL 8
#define PP_T (PP_S / PP_POOL) /* 28 */
#define PP_MAX_FILES 16

/* Tolerances (normalised units unless stated). Exact pixels: */
#define TOL_EXACT 1e-5      /* mean, std (relative), thumb and the largest sampled difference */
/* a JPEG decoder other than libjpeg-turbo (room for +-1 per pixel): */
#define TOL_MEAN 0.02       /* |mean - ref| per channel */
#define TOL_STD 0.02        /* |std / ref - 1| per channel */
#define TOL_THUMB 0.03      /* max |thumb - ref| over the 3x28x28 8x8-pooled values */
#define TOL_SAMPLES 0.02    /* mean |sample - ref| over the 256 sampled values */

#ifdef LIBJPEG_TURBO_VERSION_NUMBER
#define PP_JPEG_EXACT 1 /* libjpeg-turbo decodes as the reference's did (islow IDCT, fancy upsampling) */
#else
#define PP_JPEG_EXACT 0
#endif

typedef struct { const double *mean, *std; const float *samples, *thumb; } PpRef;
typedef struct { double mean, std, thumb, samp_mean, samp_max; } PpDiff;

/* how a deliberately wrong pipeline differs from ours (PP_OURS is the real one) */
enum { PP_OURS, PP_SHIFT_X, PP_SHIFT_Y, PP_RESIZE_224, PP_NO_NORM, PP_BGR, PP_JITTER, PP_VARIANTS };
static const char *const PP_NAMES[PP_VARIANTS] = {"ours", "crop shifted 4 px right", "crop shifted 4 px down",
                                                  "shorter side 224 not 256", "no Normalize", "BGR order",
                                                  "ours +-1 per pixel"};

static const void *pp_need(const StFile *f, const char *name, StDtype dt, size_t count) {
    const StTensor *t = st_find(f, name);
    CHECK(t && t->dtype == dt && t->nbytes == count * st_dtype_size(dt), "%s: missing or not %s[%zu]", name,
          st_dtype_name(dt), count);
    return t && t->dtype == dt && t->nbytes == count * st_dtype_size(dt) ? t->data : NULL;
}

/* The uint8 planar crop of a variant: ours, or the resized image cropped off-centre / smaller. */
static int pp_pixels(const Image *img, int variant, uint8_t *pix) {
    if (variant == PP_RESIZE_224) return image_resize_center_crop(img, PP_S, PP_S, pix);
    if (variant != PP_SHIFT_X && variant != PP_SHIFT_Y)
        return image_resize_center_crop(img, image_resize_size(PP_S), PP_S, pix);
    int r = image_resize_size(PP_S), w = img->w, h = img->h, nw, nh;
    if (w <= h) nw = r, nh = (int)((double)r * h / w);
    else nh = r, nw = (int)((double)r * w / h);
    int left = (nw - PP_S) / 2 + (variant == PP_SHIFT_X ? 4 : 0);
    int top = (nh - PP_S) / 2 + (variant == PP_SHIFT_Y ? 4 : 0);
    if (left + PP_S > nw || top + PP_S > nh) return -1;
    uint8_t *full = malloc((size_t)nw * nh * 3);
    if (!full) return -1;
    image_resize(img->data, w, h, 3, full, nw, nh);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < PP_S; y++)
            for (int x = 0; x < PP_S; x++)
                pix[(size_t)ch * PP_PLANE + y * PP_S + x] = full[((size_t)(top + y) * nw + left + x) * 3 + ch];
    free(full);
    return 0;
}

/* The (3, 224, 224) float tensor a variant feeds the network. */
static int pp_tensor(const Image *img, int variant, float *out) {
    uint8_t *pix = malloc(PP_N);
    if (!pix || pp_pixels(img, variant, pix)) { free(pix); return -1; }
    if (variant == PP_JITTER) /* a different decoder's or resize's rounding: must still pass */
        for (int i = 0; i < PP_N; i++) {
            uint32_t h = (uint32_t)i * 2654435761u;
            int v = pix[i] + ((h >> 16) & 1 ? 1 : -1);
            pix[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    if (variant == PP_BGR)
        for (int q = 0; q < PP_PLANE; q++) {
            uint8_t t = pix[q];
            pix[q] = pix[2 * PP_PLANE + q], pix[2 * PP_PLANE + q] = t;
        }
    Norm norm = norm_imagenet(3);
    if (variant == PP_NO_NORM)
        for (int i = 0; i < PP_N; i++) out[i] = pix[i] / 255.0f;
    else
        normalize_image(pix, 3, PP_S, &norm, out);
    free(pix);
    return 0;
}

static PpDiff pp_compare(const float *t, const PpRef *ref) {
    PpDiff d = {0, 0, 0, 0, 0};
    for (int ch = 0; ch < 3; ch++) {
        const float *p = t + (size_t)ch * PP_PLANE;
        double s = 0.0, ss = 0.0;
        for (int q = 0; q < PP_PLANE; q++) s += p[q];
        double mean = s / PP_PLANE;
        for (int q = 0; q < PP_PLANE; q++) ss += (p[q] - mean) * (p[q] - mean);
        double sd = sqrt(ss / PP_PLANE);
        d.mean = fmax(d.mean, fabs(mean - ref->mean[ch]));
        d.std = fmax(d.std, fabs(sd / ref->std[ch] - 1.0));
        for (int ty = 0; ty < PP_T; ty++)
            for (int tx = 0; tx < PP_T; tx++) {
                double a = 0.0;
                for (int y = 0; y < PP_POOL; y++)
                    for (int x = 0; x < PP_POOL; x++) a += p[(ty * PP_POOL + y) * PP_S + tx * PP_POOL + x];
                a /= PP_POOL * PP_POOL;
                d.thumb = fmax(d.thumb, fabs(a - ref->thumb[(ch * PP_T + ty) * PP_T + tx]));
            }
    }
    for (int j = 0; j < PP_SAMPLES; j++) {
        double e = fabs((double)t[j * 588 + 13] - ref->samples[j]);
        d.samp_mean += e / PP_SAMPLES;
        d.samp_max = fmax(d.samp_max, e);
    }
    return d;
}

static int pp_within(const PpDiff *d) {
    return d->mean <= TOL_MEAN && d->std <= TOL_STD && d->thumb <= TOL_THUMB && d->samp_mean <= TOL_SAMPLES;
}

static int pp_within_exact(const PpDiff *d) {
    return d->mean <= TOL_EXACT && d->std <= TOL_EXACT && d->thumb <= TOL_EXACT && d->samp_max <= TOL_EXACT;
}

/* Whether our pixels must equal Pillow's: PNGs always (lossless), JPEGs with libjpeg-turbo. */
static int pp_exact_expected(const char *name) {
    size_t n = strlen(name);
    return n >= 4 && !strcmp(name + n - 4, ".png") ? 1 : PP_JPEG_EXACT;
}

/* Runs fn(name, img, ref, tensor buffer) for every image of the vector file that is present; the
 * names of those that are not go into missing (empty when none). Returns how many ran. */
typedef void (*PpFn)(const char *name, const Image *img, const PpRef *ref, float *buf);
static int pp_each(PpFn fn, char *missing, size_t missing_size) {
    const char *shared = harness_shared_data();
    missing[0] = 0;
    if (!shared) { snprintf(missing, missing_size, "the shared data folder"); return 0; }
    StFile f;
    int rc = st_read(PP_VECTORS, &f);
    CHECK(rc == 0, "%s", an_last_error());
    if (rc) return 0;
    const char *files = st_meta(&f, "files");
    CHECK(files != NULL, "%s has no files metadata", PP_VECTORS);
    char list[1024];
    snprintf(list, sizeof list, "%s", files ? files : "");
    float *buf = malloc(sizeof(float) * PP_N);
    CHECK(buf != NULL, "out of memory");
    int done = 0, i = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name && buf; name = strtok_r(NULL, ",", &save), i++) {
        char path[1200], key[64];
        snprintf(path, sizeof path, "%s/demo-images/%s", shared, name);
        FILE *probe = fopen(path, "rb");
        if (!probe) {
            size_t used = strlen(missing);
            snprintf(missing + used, missing_size - used, "%s%s", used ? ", " : "", name);
            continue;
        }
        fclose(probe);
        PpRef ref;
        snprintf(key, sizeof key, "img%d.mean", i), ref.mean = pp_need(&f, key, ST_F64, 3);
        snprintf(key, sizeof key, "img%d.std", i), ref.std = pp_need(&f, key, ST_F64, 3);
        snprintf(key, sizeof key, "img%d.samples", i), ref.samples = pp_need(&f, key, ST_F32, PP_SAMPLES);
        snprintf(key, sizeof key, "img%d.thumb", i), ref.thumb = pp_need(&f, key, ST_F32, 3 * PP_T * PP_T);
        if (!ref.mean || !ref.std || !ref.samples || !ref.thumb) continue;
        Image img;
        rc = image_load(path, &img);
        CHECK(rc == 0, "%s", an_last_error());
        if (rc) continue;
        CHECK(img.c == 3, "%s: %d channels", name, img.c);
        if (img.c == 3) fn(name, &img, &ref, buf), done++;
        image_free(&img);
    }
    free(buf);
    st_free(&f);
    return done;
}

static void pp_check_ours(const char *name, const Image *img, const PpRef *ref, float *buf) {
    int rc = pp_tensor(img, PP_OURS, buf);
    CHECK(rc == 0, "%s: pipeline failed: %s", name, an_last_error());
    if (rc) return;
    PpDiff d = pp_compare(buf, ref);
    if (getenv("ALEXNET_TEST_VERBOSE"))
        printf("  %-14s %4dx%-4d mean %.2g  std %.2g  thumb max %.2g  samples mean %.2g max %.2g\n", name, img->w,
           img->h, d.mean, d.std, d.thumb, d.samp_mean, d.samp_max);
    if (pp_exact_expected(name)) {
        CHECK(d.mean <= TOL_EXACT, "%s: channel mean off by %.2g (exact pixels: tolerance %g)", name, d.mean,
              TOL_EXACT);
        CHECK(d.std <= TOL_EXACT, "%s: channel std off by %.2g relative (exact pixels: tolerance %g)", name, d.std,
              TOL_EXACT);
        CHECK(d.thumb <= TOL_EXACT, "%s: 8x8-pooled max |diff| %.2g (exact pixels: tolerance %g; one uint8 step "
              "is 2.7e-4)", name, d.thumb, TOL_EXACT);
        CHECK(d.samp_max <= TOL_EXACT, "%s: sampled values max |diff| %.2g (exact pixels: tolerance %g)", name,
              d.samp_max, TOL_EXACT);
        return;
    }
    CHECK(d.mean <= TOL_MEAN, "%s: channel mean off by %.4f (tolerance %.2f)", name, d.mean, TOL_MEAN);
    CHECK(d.std <= TOL_STD, "%s: channel std off by %.2f%% (tolerance %.0f%%)", name, 100 * d.std, 100 * TOL_STD);
    CHECK(d.thumb <= TOL_THUMB, "%s: 8x8-pooled max |diff| %.4f (tolerance %.3f)", name, d.thumb, TOL_THUMB);
    CHECK(d.samp_mean <= TOL_SAMPLES, "%s: sampled values mean |diff| %.4f (tolerance %.3f)", name, d.samp_mean,
          TOL_SAMPLES);
}

TEST(preprocess_matches_torchvision) {
    if (!harness_shared_data()) SKIP("no shared data folder (../shared/data): the demo photos are not here");
    char missing[600];
    int n = pp_each(pp_check_ours, missing, sizeof missing);
    CHECK(n > 0 || missing[0], "%s lists no photo", PP_VECTORS);
    if (missing[0]) SKIP("not found in <shared data>/demo-images: %s (checked the other %d)", missing, n);
}

/* The tolerances must be tight enough to catch the usual preprocessing mistakes. */
static void pp_check_wrong(const char *name, const Image *img, const PpRef *ref, float *buf) {
    for (int v = PP_OURS + 1; v < PP_VARIANTS; v++) {
        int rc = pp_tensor(img, v, buf);
        CHECK(rc == 0, "%s: %s: pipeline failed", name, PP_NAMES[v]);
        if (rc) continue;
        PpDiff d = pp_compare(buf, ref);
        if (getenv("ALEXNET_TEST_VERBOSE"))
            printf("  %-14s %-26s mean %.3g  std %.3g  thumb max %.3g  samples mean %.3g\n", name, PP_NAMES[v],
                   d.mean, d.std, d.thumb, d.samp_mean);
        if (v == PP_JITTER) {
            CHECK(pp_within(&d), "%s: %s fails the tolerances (mean %.4f std %.4f thumb %.4f samples %.4f)", name,
                  PP_NAMES[v], d.mean, d.std, d.thumb, d.samp_mean);
            CHECK(!pp_within_exact(&d), "%s: %s passes the exact-pixel tolerance (mean %.2g std %.2g thumb %.2g "
                  "samples max %.2g)", name, PP_NAMES[v], d.mean, d.std, d.thumb, d.samp_max);
        } else
            CHECK(!pp_within(&d), "%s: %s passes the tolerances (mean %.4f std %.4f thumb %.4f samples %.4f)",
                  name, PP_NAMES[v], d.mean, d.std, d.thumb, d.samp_mean);
    }
}

TEST(preprocess_tolerances_catch_errors) {
    if (!harness_shared_data()) SKIP("no shared data folder (../shared/data): the demo photos are not here");
    char missing[600];
    int n = pp_each(pp_check_wrong, missing, sizeof missing);
    CHECK(n > 0 || missing[0], "%s lists no photo", PP_VECTORS);
    if (missing[0]) SKIP("not found in <shared data>/demo-images: %s (checked the other %d)", missing, n);
}
