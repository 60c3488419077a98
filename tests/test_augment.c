/* test_augment.c: data augmentation and test views (src/data/augment.c) against hand-written
 * coordinates and direct computations: the 10 test views, crop/flip/mean/scale of augment_apply,
 * the random view streams and the PCA colour lighting (values and statistics). */
#include "harness.h"
#include "../src/data/augment.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Eigenpairs of ImageNet RGB pixel covariance (0..255 units), as used by fb.resnet.torch;
 * eigvec[i] is the i-th eigenvector. */
static const PcaLighting k_pca = {
    {0.2175f * 65025.0f, 0.0188f * 65025.0f, 0.0045f * 65025.0f}, /* variances: x 255^2 */
    {{-0.5675f, -0.5808f, -0.5836f}, {0.7192f, -0.0045f, -0.6948f}, {0.4009f, -0.8140f, 0.4203f}},
};

static int view_eq(View a, View b) { return a.x == b.x && a.y == b.y && a.flip == b.flip; }

TEST(augment_test_views) {
    /* 256 -> 224: margin 32, centre 16.  256 -> 227: margin 29, centre 14 (29 / 2). */
    static const int want224[10][3] = {{0, 0, 0},  {32, 0, 0},  {0, 32, 0},  {32, 32, 0},  {16, 16, 0},
                                       {0, 0, 1},  {32, 0, 1},  {0, 32, 1},  {32, 32, 1},  {16, 16, 1}};
    static const int want227[10][3] = {{0, 0, 0},  {29, 0, 0},  {0, 29, 0},  {29, 29, 0},  {14, 14, 0},
                                       {0, 0, 1},  {29, 0, 1},  {0, 29, 1},  {29, 29, 1},  {14, 14, 1}};
    for (int k = 0; k < 10; k++) {
        View v = augment_test_view(256, 224, k);
        CHECK(v.x == want224[k][0] && v.y == want224[k][1] && v.flip == want224[k][2],
              "224 view %d = (%d,%d,%d)", k, v.x, v.y, v.flip);
        v = augment_test_view(256, 227, k);
        CHECK(v.x == want227[k][0] && v.y == want227[k][1] && v.flip == want227[k][2],
              "227 view %d = (%d,%d,%d)", k, v.x, v.y, v.flip);
    }
    View c = augment_center_view(256, 224);
    CHECK(c.x == 16 && c.y == 16 && c.flip == 0, "centre 224 = (%d,%d,%d)", c.x, c.y, c.flip);
    c = augment_center_view(256, 227);
    CHECK(c.x == 14 && c.y == 14 && c.flip == 0, "centre 227 = (%d,%d,%d)", c.x, c.y, c.flip);
    c = augment_center_view(32, 32);
    CHECK(c.x == 0 && c.y == 0 && c.flip == 0, "centre 32/32 = (%d,%d,%d)", c.x, c.y, c.flip);

    /* views 5..9 are views 0..4 mirrored, pixel for pixel, on a random image with a mean image */
    enum { S = 40, C = 31 };
    uint8_t *img = malloc(3 * S * S);
    float *mean = malloc(3 * S * S * sizeof(float));
    float *d0 = malloc(3 * C * C * sizeof(float)), *d1 = malloc(3 * C * C * sizeof(float));
    for (int i = 0; i < 3 * S * S; i++) {
        img[i] = (uint8_t)(an_hash64(7, (uint64_t)i) & 255);
        mean[i] = 100.0f + 0.01f * (float)i;
    }
    AugmentConfig a = {S, C, 0, 0, 0.0f, NULL, mean, 1.0f / 64.0f};
    float rgb[3] = {1.0f, -2.0f, 0.5f};
    int bad = 0;
    for (int k = 0; k < 5; k++) {
        View v0 = augment_test_view(S, C, k), v1 = augment_test_view(S, C, k + 5);
        CHECK(v0.x == v1.x && v0.y == v1.y && !v0.flip && v1.flip, "view %d vs %d", k, k + 5);
        augment_apply(&a, img, v0, rgb, d0);
        augment_apply(&a, img, v1, rgb, d1);
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < C; y++)
                for (int x = 0; x < C; x++)
                    bad += d1[(ch * C + y) * C + x] != d0[(ch * C + y) * C + (C - 1 - x)];
    }
    CHECK(bad == 0, "%d mirrored pixels differ", bad);
    free(img); free(mean); free(d0); free(d1);
}

TEST(augment_apply_direct) {
    /* 8x8 image, pixel value c*64 + y*8 + x; mean image 0.25*(c+1) + 0.5*y + 0.125*x */
    enum { S = 8, C = 5 };
    uint8_t img[3 * S * S];
    float mean[3 * S * S];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                img[(c * S + y) * S + x] = (uint8_t)(c * 64 + y * 8 + x);
                mean[(c * S + y) * S + x] = 0.25f * (c + 1) + 0.5f * y + 0.125f * x;
            }
    const float rgb[3] = {1.5f, -2.0f, 3.25f};
    const float scale = 1.0f / 64.0f;
    AugmentConfig a = {S, C, 1, 1, 0.0f, NULL, mean, scale};
    static const View views[] = {{0, 0, 0}, {2, 1, 0}, {3, 3, 0}, {0, 0, 1}, {2, 1, 1}, {3, 3, 1}, {1, 2, 1}};
    float out[3 * C * C], plain[3 * C * C], ref;
    int bad = 0;
    for (size_t k = 0; k < sizeof views / sizeof *views; k++) {
        View v = views[k];
        /* with mean image, rgb and scale */
        augment_apply(&a, img, v, rgb, out);
        for (int c = 0; c < 3; c++)
            for (int oy = 0; oy < C; oy++)
                for (int ox = 0; ox < C; ox++) {
                    int sx = v.flip ? v.x + C - 1 - ox : v.x + ox, sy = v.y + oy;
                    double pix = c * 64 + sy * 8 + sx;
                    double mu = 0.25 * (c + 1) + 0.5 * sy + 0.125 * sx;
                    ref = (float)((pix + rgb[c] - mu) * scale);
                    if (fabsf(out[(c * C + oy) * C + ox] - ref) > 1e-6f) {
                        if (bad++ < 5)
                            fprintf(stderr, "  view (%d,%d,%d) c%d (%d,%d): %g vs %g\n", v.x, v.y, v.flip,
                                    c, ox, oy, out[(c * C + oy) * C + ox], ref);
                    }
                }
        /* without mean image and without rgb: raw pixel values */
        AugmentConfig b = a;
        b.mean_image = NULL;
        b.scale = 1.0f;
        augment_apply(&b, img, v, NULL, plain);
        for (int c = 0; c < 3; c++)
            for (int oy = 0; oy < C; oy++)
                for (int ox = 0; ox < C; ox++) {
                    int sx = v.flip ? v.x + C - 1 - ox : v.x + ox, sy = v.y + oy;
                    bad += plain[(c * C + oy) * C + ox] != (float)(c * 64 + sy * 8 + sx);
                }
    }
    CHECK(bad == 0, "%d pixels differ from the direct computation", bad);

    /* spot values: view (2,1), c=1, output (0,0) reads (2,1): (64+8+2 - 2 - (0.5+0.5+0.25)) / 64 */
    augment_apply(&a, img, (View){2, 1, 0}, rgb, out);
    CHECK(fabsf(out[(1 * C + 0) * C + 0] - (74.0f - 2.0f - 1.25f) / 64.0f) < 1e-6f, "spot %g", out[C * C]);
    /* flipped: output (0,0) reads source column 2+5-1 = 6 */
    augment_apply(&a, img, (View){2, 1, 1}, rgb, out);
    CHECK(fabsf(out[(1 * C + 0) * C + 0] - (78.0f - 2.0f - 1.75f) / 64.0f) < 1e-6f, "flip spot %g", out[C * C]);

    /* a flipped crop is the unflipped crop reversed along x */
    float f[3 * C * C];
    bad = 0;
    augment_apply(&a, img, (View){1, 2, 0}, rgb, out);
    augment_apply(&a, img, (View){1, 2, 1}, rgb, f);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < C; y++)
            for (int x = 0; x < C; x++) bad += f[(c * C + y) * C + x] != out[(c * C + y) * C + C - 1 - x];
    CHECK(bad == 0, "%d flipped pixels are not the reversed crop", bad);

    /* a row longer than augment.c's internal mirror chunk (256): size 300, crop 270 */
    {
        enum { BS = 300, BC = 270 };
        uint8_t *big = malloc(3 * BS * BS);
        float *bmean = malloc(3 * BS * BS * sizeof(float)), *bout = malloc(3 * BC * BC * sizeof(float));
        for (int i = 0; i < 3 * BS * BS; i++) {
            big[i] = (uint8_t)(an_hash64(3, (uint64_t)i) >> 56);
            bmean[i] = (float)(i % 1000) * 0.25f;
        }
        AugmentConfig bc = {BS, BC, 1, 1, 0.0f, NULL, bmean, 0.5f};
        int bbad = 0;
        for (int flip = 0; flip < 2; flip++) {
            View v = {17, 5, flip};
            augment_apply(&bc, big, v, rgb, bout);
            for (int c = 0; c < 3; c++)
                for (int oy = 0; oy < BC; oy++)
                    for (int ox = 0; ox < BC; ox++) {
                        int sx = flip ? v.x + BC - 1 - ox : v.x + ox, sy = v.y + oy;
                        size_t si = ((size_t)c * BS + sy) * BS + sx;
                        float r = ((float)big[si] + rgb[c] - bmean[si]) * 0.5f;
                        bbad += fabsf(bout[((size_t)c * BC + oy) * BC + ox] - r) > 1e-4f;
                    }
        }
        CHECK(bbad == 0, "%d pixels differ for crop 270", bbad);
        free(big); free(bmean); free(bout);
    }

    /* rgb NULL equals a zero shift */
    const float zero[3] = {0, 0, 0};
    augment_apply(&a, img, (View){3, 0, 1}, NULL, out);
    augment_apply(&a, img, (View){3, 0, 1}, zero, f);
    CHECK(memcmp(out, f, sizeof out) == 0, "rgb NULL differs from zero shift");
}

TEST(augment_random_views) {
    AugmentConfig a = {256, 227, 1, 1, 0.0f, NULL, NULL, 1.0f};
    const uint64_t seed = 1234;
    enum { N = 10000, R = 29 };
    int seen_x[R + 1] = {0}, seen_y[R + 1] = {0}, flips = 0, same_next = 0, out_of_range = 0;
    View prev = {-1, -1, -1};
    for (uint64_t i = 0; i < N; i++) {
        View v = augment_random_view(&a, seed, i);
        View w = augment_random_view(&a, seed, i);
        if (!view_eq(v, w)) { CHECK(0, "counter %llu not reproducible", (unsigned long long)i); break; }
        if (v.x < 0 || v.x > R || v.y < 0 || v.y > R || (v.flip != 0 && v.flip != 1)) { out_of_range++; continue; }
        seen_x[v.x]++;
        seen_y[v.y]++;
        flips += v.flip;
        same_next += view_eq(v, prev);
        prev = v;
    }
    CHECK(out_of_range == 0, "%d views out of range", out_of_range);
    for (int x = 0; x <= R; x++) {
        /* expected N / 30 = 333 each */
        CHECK(seen_x[x] > 250 && seen_x[x] < 420, "x = %d seen %d times", x, seen_x[x]);
        CHECK(seen_y[x] > 250 && seen_y[x] < 420, "y = %d seen %d times", x, seen_y[x]);
    }
    CHECK(flips > 0.45 * N && flips < 0.55 * N, "flips %d of %d", flips, N);
    /* 1800 possible views: consecutive counters agree about 5.6 times in 10000 by chance */
    CHECK(same_next < 25, "consecutive counters gave the same view %d times", same_next);

    /* different seeds and different epochs (counter = epoch << 32 | index) give different views */
    int same_seed = 0, same_epoch = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        View v = augment_random_view(&a, seed, i);
        same_seed += view_eq(v, augment_random_view(&a, seed + 1, i));
        same_epoch += view_eq(v, augment_random_view(&a, seed, (1ull << 32) | i));
    }
    CHECK(same_seed < 10 && same_epoch < 10, "same view for other seed %d, other epoch %d", same_seed, same_epoch);

    /* x and y are not the same stream */
    int xy_equal = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        View v = augment_random_view(&a, seed, i);
        xy_equal += v.x == v.y;
    }
    CHECK(xy_equal < 80, "x == y in %d of 1000 (expect ~33)", xy_equal);

    /* random_crop 0: always centre; flip 0: never mirrored; 224 covers [0, 32] */
    AugmentConfig c = a;
    c.random_crop = 0;
    c.flip = 0;
    int off = 0;
    for (uint64_t i = 0; i < 200; i++) off += !view_eq(augment_random_view(&c, seed, i), (View){14, 14, 0});
    CHECK(off == 0, "%d non-centre views with random_crop = flip = 0", off);
    c.flip = 1;
    int cf = 0;
    off = 0;
    for (uint64_t i = 0; i < 200; i++) {
        View v = augment_random_view(&c, seed, i);
        off += v.x != 14 || v.y != 14;
        cf += v.flip;
    }
    CHECK(off == 0 && cf > 60 && cf < 140, "centre+flip: %d moved, %d flipped of 200", off, cf);
    AugmentConfig d = a;
    d.crop = 224;
    int lo = 0, hi = 0, over = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        View v = augment_random_view(&d, seed, i);
        lo += v.x == 0;
        hi += v.x == 32;
        over += v.x > 32 || v.y > 32;
    }
    CHECK(lo > 0 && hi > 0 && over == 0, "224: x=0 %d, x=32 %d, beyond %d", lo, hi, over);
}

TEST(augment_pca_lighting) {
    AugmentConfig a = {256, 224, 1, 1, 0.1f, &k_pca, NULL, 1.0f};
    const uint64_t seed = 99;
    /* direct computation with the documented stream scheme:
     * sub = an_hash64(seed, counter), alpha_i = lighting_std * an_normal(sub, 3 + i) */
    double maxerr = 0;
    for (uint64_t ctr = 0; ctr < 100; ctr++) {
        uint64_t counter = ctr * 7919 + (ctr << 32);
        float rgb[3];
        augment_lighting(&a, seed, counter, rgb);
        uint64_t sub = an_hash64(seed, counter);
        for (int c = 0; c < 3; c++) {
            double ref = 0;
            for (int i = 0; i < 3; i++)
                ref += (double)(0.1f * an_normal(sub, 3 + (uint64_t)i)) * (k_pca.eigval[i] / 255.0) * k_pca.eigvec[i][c];
            double err = fabs(rgb[c] - ref) / fmax(1.0, fabs(ref));
            if (err > maxerr) maxerr = err;
        }
    }
    CHECK(maxerr < 1e-5, "lighting differs from direct computation by %g", maxerr);

    /* reproducible, and lighting_std 0 (or no pca) gives zeros */
    float r1[3], r2[3];
    augment_lighting(&a, seed, 5, r1);
    augment_lighting(&a, seed, 5, r2);
    CHECK(memcmp(r1, r2, sizeof r1) == 0, "lighting not reproducible");
    CHECK(r1[0] != 0 || r1[1] != 0 || r1[2] != 0, "lighting is zero with std 0.1");
    AugmentConfig z = a;
    z.lighting_std = 0.0f;
    for (uint64_t i = 0; i < 10; i++) {
        float r[3] = {7, 7, 7};
        augment_lighting(&z, seed, i, r);
        CHECK(r[0] == 0 && r[1] == 0 && r[2] == 0, "std 0 gives (%g,%g,%g)", r[0], r[1], r[2]);
    }

    /* empirical std over 20000 counters vs sqrt(sum_i (0.1 lambda_i)^2 p_i[c]^2) */
    enum { N = 20000 };
    double sum[3] = {0}, sq[3] = {0};
    for (uint64_t i = 0; i < N; i++) {
        float r[3];
        augment_lighting(&a, seed, i, r);
        for (int c = 0; c < 3; c++) { sum[c] += r[c]; sq[c] += (double)r[c] * r[c]; }
    }
    for (int c = 0; c < 3; c++) {
        double theory = 0;
        for (int i = 0; i < 3; i++) {
            double t = 0.1 * (k_pca.eigval[i] / 255.0) * k_pca.eigvec[i][c];
            theory += t * t;
        }
        theory = sqrt(theory);
        double m = sum[c] / N, sd = sqrt(sq[c] / N - m * m);
        CHECK(fabs(sd / theory - 1.0) < 0.03, "channel %d: std %g, theory %g", c, sd, theory);
        CHECK(fabs(m) < 4.0 * theory / sqrt((double)N), "channel %d: mean %g (std %g)", c, m, theory);
    }

    /* the lighting feeds augment_apply as a per-channel shift */
    enum { S = 8, C = 5 };
    uint8_t img[3 * S * S];
    for (int i = 0; i < 3 * S * S; i++) img[i] = (uint8_t)(i * 3);
    AugmentConfig b = {S, C, 1, 1, 0.1f, &k_pca, NULL, 1.0f};
    float rgb[3], with[3 * C * C], without[3 * C * C];
    augment_lighting(&b, seed, 42, rgb);
    View v = augment_random_view(&b, seed, 42);
    augment_apply(&b, img, v, rgb, with);
    augment_apply(&b, img, v, NULL, without);
    double worst = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < C * C; i++) worst = fmax(worst, fabs(with[c * C * C + i] - without[c * C * C + i] - rgb[c]));
    CHECK(worst < 1e-4, "lighting shift in augment_apply off by %g", worst);
}

/* The vectorised augment_apply against the plain loops, bit for bit: both crop sizes, every test
 * view (corners, centre, mirrored), odd sizes, with and without the mean image and lighting, and
 * outputs that start off a 64-byte boundary (the masked head and tail around streaming stores). */
TEST(augment_fast_matches_reference) {
    const int size = 256;
    size_t plane = (size_t)size * size;
    uint8_t *src = malloc(3 * plane);
    float *mean = malloc(3 * plane * sizeof(float));
    for (size_t i = 0; i < 3 * plane; i++) {
        src[i] = (uint8_t)(an_hash64(5, i) >> 40);
        mean[i] = 100.0f + (float)(an_hash64(6, i) % 5000) * 0.01f;
    }
    static const int crops[] = {224, 227, 31, 17, 256};
    const float rgb[3] = {1.25f, -3.5f, 0.75f};
    for (size_t ci = 0; ci < sizeof crops / sizeof crops[0]; ci++) {
        int crop = crops[ci];
        size_t n = (size_t)3 * crop * crop;
        float *a = malloc((n + 16) * sizeof(float)), *b = malloc((n + 16) * sizeof(float));
        for (int k = 0; k < 10; k++)
            for (int variant = 0; variant < 2; variant++) {
                AugmentConfig cfg = {.size = size, .crop = crop, .scale = variant ? 0.0157f : 1.0f,
                                     .mean_image = variant ? mean : NULL};
                View v = augment_test_view(size, crop, k);
                int shift = (k + variant) % 3; /* float offsets 0, 1, 2 from an aligned start */
                memset(a, 0, (n + 16) * sizeof(float));
                memset(b, 0xff, (n + 16) * sizeof(float));
                augment_apply(&cfg, src, v, variant ? rgb : NULL, a + shift);
                augment_apply_reference(&cfg, src, v, variant ? rgb : NULL, b + shift);
                CHECK(memcmp(a + shift, b + shift, n * sizeof(float)) == 0, "crop %d view %d variant %d differs",
                      crop, k, variant);
                CHECK(a[shift + n] == 0.0f, "crop %d view %d: wrote past the end", crop, k);
            }
        free(a), free(b);
    }
    free(src), free(mean);
}
