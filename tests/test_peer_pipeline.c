/* test_peer_pipeline.c: the PyTorch peer's training input pipeline (bench/train_pytorch.py)
 * against the C one (src/data/augment.c) on the same images and parameters.
 * tools/make_peer_lighting_reference.py ran the peer's own functions (load_base, lighting_shift,
 * train_view) on two Imagenette images with fixed windows, flips and alphas, a fixed eigen-system
 * and a fixed mean image, and stored the pixels, the parameters, the peer's lighting shifts, and
 * samples and per-channel sums of its (3, 227, 227) outputs in
 * tests/vectors/peer_lighting.safetensors (or the file named by ALEXNET_PEER_VECTORS). Here the
 * same pixels and parameters go through augment_lighting and augment_apply (both the AVX-512 and
 * the plain loops) and must agree to 1e-4 relative; the outputs of the peer's old lighting (255
 * times too strong, before 2026-12-02; stored as rgb_bug / bug_*) must not.
 * Measured 2026-12-02 (torch 1.13, numpy 1.24.2, Pillow 9.4.0, gcc 12.2): bit-identical, every
 * difference in shifts, samples and sums is 0 (the tolerances leave room for another BLAS or
 * compiler); the C output misses the old bug's samples by up to 75 to 1,315 grey levels per view
 * (its shifts are 255 times the C ones), and the stored base images equal the C side's decode
 * pixel for pixel. ALEXNET_TEST_VERBOSE=1 prints the figures.
 * The same file holds the peer's recipes (per-layer weight std and bias of conv1..fc8, the bias
 * learning-rate and decay multipliers, for paper and caffe) and one step of its sgd_step on a small
 * weight and bias: peer_recipes_match_c compares them with model_apply_recipe on `alexnet` and with
 * sgd_update at the recipe's multipliers, as net_sgd calls it. */
#include "harness.h"
#include "../src/data/augment.h"
#include "../src/data/image.h"
#include "../src/model/model.h"
#include "../src/train/sgd.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_VECTORS "tests/vectors/peer_lighting.safetensors"
#define PEER_SIZE 256
#define PEER_CROP 227
#define PEER_REL 1e-4 /* relative tolerance: |c - peer| <= PEER_REL * max(1, |peer|) */

static const char *peer_path(void) {
    const char *p = getenv("ALEXNET_PEER_VECTORS");
    return p && *p ? p : PEER_VECTORS;
}

/* The tensor `name` as dtype with `count` elements, or NULL (with a failed CHECK). */
static const void *peer_need(const StFile *f, const char *name, StDtype dt, size_t count) {
    const StTensor *t = st_find(f, name);
    int ok = t && t->dtype == dt && t->nbytes == count * st_dtype_size(dt);
    CHECK(ok, "%s: missing or not %s[%zu]", name, st_dtype_name(dt), count);
    return ok ? t->data : NULL;
}

/* The mean image of the vectors: mean[c][y][x] = 64 + 32 c + 0.5 ((7 y + 3 x) mod 61). */
static float *peer_mean_image(void) {
    float *m = malloc((size_t)3 * PEER_SIZE * PEER_SIZE * sizeof(float));
    if (!m) return NULL;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < PEER_SIZE; y++)
            for (int x = 0; x < PEER_SIZE; x++)
                m[((size_t)c * PEER_SIZE + y) * PEER_SIZE + x] = 64.0f + 32.0f * c + 0.5f * (float)((7 * y + 3 * x) % 61);
    return m;
}

static int close_rel(double c, double ref, double rel) { return fabs(c - ref) <= rel * fmax(1.0, fabs(ref)); }

typedef struct {
    StFile f;
    int nimg, nviews, ns;
    const uint8_t *images;
    const int32_t *view_image, *view_xyf, *sidx;
    const int64_t *seed_counter;
    const float *eigval, *eigvec, *alphas, *rgb, *rgb_bug, *out_samples, *bug_samples;
    const double *out_sums, *out_abs_sums, *bug_sums;
} PeerRef;

/* Read and check the shapes. Returns 0, or -1 (CHECKs failed; the file is freed). */
static int peer_load(PeerRef *r) {
    memset(r, 0, sizeof *r);
    const char *path = peer_path();
    int rc = st_read(path, &r->f);
    CHECK(rc == 0, "%s: %s", path, an_last_error());
    if (rc) return -1;
    const StTensor *im = st_find(&r->f, "images"), *vi = st_find(&r->f, "view_image"),
                   *si = st_find(&r->f, "sample_index");
    CHECK(im && im->ndim == 4 && im->shape[1] == 3 && im->shape[2] == PEER_SIZE && im->shape[3] == PEER_SIZE,
          "images: not U8 [n, 3, 256, 256]");
    CHECK(vi && vi->ndim == 1 && si && si->ndim == 1, "view_image / sample_index missing");
    CHECK(st_meta(&r->f, "torch") && st_meta(&r->f, "numpy"), "metadata without the torch / numpy versions");
    if (!(im && im->ndim == 4 && vi && vi->ndim == 1 && si && si->ndim == 1)) return st_free(&r->f), -1;
    int nimg = r->nimg = (int)im->shape[0], v = r->nviews = (int)vi->shape[0], ns = r->ns = (int)si->shape[0];
    r->images = peer_need(&r->f, "images", ST_U8, (size_t)nimg * 3 * PEER_SIZE * PEER_SIZE);
    r->view_image = peer_need(&r->f, "view_image", ST_I32, v);
    r->view_xyf = peer_need(&r->f, "view_xyf", ST_I32, (size_t)v * 3);
    r->seed_counter = peer_need(&r->f, "view_seed_counter", ST_I64, (size_t)v * 2);
    r->eigval = peer_need(&r->f, "eigval", ST_F32, 3);
    r->eigvec = peer_need(&r->f, "eigvec", ST_F32, 9);
    r->alphas = peer_need(&r->f, "alphas", ST_F32, (size_t)v * 3);
    r->rgb = peer_need(&r->f, "rgb", ST_F32, (size_t)v * 3);
    r->rgb_bug = peer_need(&r->f, "rgb_bug", ST_F32, (size_t)v * 3);
    r->sidx = peer_need(&r->f, "sample_index", ST_I32, ns);
    r->out_samples = peer_need(&r->f, "out_samples", ST_F32, (size_t)v * ns);
    r->out_sums = peer_need(&r->f, "out_sums", ST_F64, (size_t)v * 3);
    r->out_abs_sums = peer_need(&r->f, "out_abs_sums", ST_F64, (size_t)v * 3);
    r->bug_samples = peer_need(&r->f, "bug_samples", ST_F32, (size_t)v * ns);
    r->bug_sums = peer_need(&r->f, "bug_sums", ST_F64, (size_t)v * 3);
    int ok = r->images && r->view_image && r->view_xyf && r->seed_counter && r->eigval && r->eigvec && r->alphas &&
             r->rgb && r->rgb_bug && r->sidx && r->out_samples && r->out_sums && r->out_abs_sums && r->bug_samples &&
             r->bug_sums && v > 0 && ns > 0;
    for (int k = 0; ok && k < v; k++) {
        const int32_t *p = r->view_xyf + 3 * k;
        ok = r->view_image[k] >= 0 && r->view_image[k] < nimg && p[0] >= 0 && p[0] <= PEER_SIZE - PEER_CROP &&
             p[1] >= 0 && p[1] <= PEER_SIZE - PEER_CROP && (p[2] == 0 || p[2] == 1);
        CHECK(ok, "view %d: image %d window (%d, %d) flip %d out of range", k, r->view_image[k], p[0], p[1], p[2]);
    }
    for (int j = 0; ok && j < ns; j++) {
        ok = r->sidx[j] >= 0 && r->sidx[j] < 3 * PEER_CROP * PEER_CROP;
        CHECK(ok, "sample_index[%d] = %d out of range", j, r->sidx[j]);
    }
    if (!ok) return st_free(&r->f), -1;
    return 0;
}

/* The C pipeline on view k: the lighting shift for the view's (seed, counter) and the output.
 * fast: augment_apply (AVX-512 where the CPU has it), else augment_apply_reference. */
static void peer_c_view(const PeerRef *r, const PcaLighting *pca, const float *mean, int k, int fast,
                        float rgb[3], float *out) {
    AugmentConfig a = {PEER_SIZE, PEER_CROP, 0, 0, 0.1f, pca, mean, 1.0f};
    augment_lighting(&a, (uint64_t)r->seed_counter[2 * k], (uint64_t)r->seed_counter[2 * k + 1], rgb);
    View v = {r->view_xyf[3 * k], r->view_xyf[3 * k + 1], r->view_xyf[3 * k + 2]};
    const uint8_t *src = r->images + (size_t)r->view_image[k] * 3 * PEER_SIZE * PEER_SIZE;
    if (fast) augment_apply(&a, src, v, rgb, out);
    else augment_apply_reference(&a, src, v, rgb, out);
}

TEST(peer_pipeline_matches_c) {
    PeerRef r;
    if (peer_load(&r)) return;
    PcaLighting pca;
    for (int i = 0; i < 3; i++) {
        pca.eigval[i] = r.eigval[i];
        for (int c = 0; c < 3; c++) pca.eigvec[i][c] = r.eigvec[3 * i + c];
    }
    float *mean = peer_mean_image();
    float *out = malloc((size_t)3 * PEER_CROP * PEER_CROP * sizeof(float));
    CHECK(mean && out, "out of memory");
    const int plane = PEER_CROP * PEER_CROP;
    for (int k = 0; mean && out && k < r.nviews; k++) {
        /* the stored alphas are the C side's own draws for (seed, counter) */
        uint64_t sub = an_hash64((uint64_t)r.seed_counter[2 * k], (uint64_t)r.seed_counter[2 * k + 1]);
        for (int i = 0; i < 3; i++) {
            float a = 0.1f * an_normal(sub, 3 + (uint64_t)i);
            CHECK(close_rel(a, r.alphas[3 * k + i], 1e-6), "view %d: alpha %d: C draws %.7g, the vector has %.7g", k,
                  i, a, r.alphas[3 * k + i]);
        }
        for (int fast = 1; fast >= 0; fast--) {
            float rgb[3];
            double shift_rel = 0.0, sum_rel = 0.0, sample_abs = 0.0; /* the measured agreement (verbose) */
            peer_c_view(&r, &pca, mean, k, fast, rgb, out);
            for (int c = 0; c < 3; c++) {
                const double tol = PEER_REL * fmax(1.0, fabs(r.rgb[3 * k + c]));
                /* the shift itself: the same formula and units as the peer's lighting_shift */
                CHECK(fabs(rgb[c] - r.rgb[3 * k + c]) <= tol, "view %d channel %d: C shift %.6g, peer %.6g", k, c,
                      rgb[c], r.rgb[3 * k + c]);
                CHECK(fabs(rgb[c] - r.rgb_bug[3 * k + c]) > 1.0, "view %d channel %d: C shift %.6g equals the old "
                      "bug's %.6g", k, c, rgb[c], r.rgb_bug[3 * k + c]);
                double sum = 0.0;
                for (int j = 0; j < plane; j++) sum += out[(size_t)c * plane + j];
                /* float rounding of 51,529 terms, far below one grey level on one pixel */
                double stol = 1e-5 * fmax(r.out_abs_sums[3 * k + c], 1.0);
                shift_rel = fmax(shift_rel, fabs(rgb[c] - r.rgb[3 * k + c]) / fmax(1e-30, fabs(r.rgb[3 * k + c])));
                sum_rel = fmax(sum_rel, fabs(sum - r.out_sums[3 * k + c]) / fmax(r.out_abs_sums[3 * k + c], 1.0));
                CHECK(fabs(sum - r.out_sums[3 * k + c]) <= stol, "view %d channel %d (%s): sum %.9g, peer %.9g", k, c,
                      fast ? "fast" : "reference", sum, r.out_sums[3 * k + c]);
                CHECK(fabs(sum - r.bug_sums[3 * k + c]) > stol, "view %d channel %d: sum %.9g matches the old bug's",
                      k, c, sum);
            }
            int bad = 0, bug_close = 0, worst = -1;
            double bug_max = 0.0;
            for (int j = 0; j < r.ns; j++) {
                double c = out[r.sidx[j]], ref = r.out_samples[(size_t)k * r.ns + j];
                double bug = r.bug_samples[(size_t)k * r.ns + j];
                if (!close_rel(c, ref, PEER_REL)) { if (worst < 0) worst = j; bad++; }
                if (close_rel(c, bug, PEER_REL)) bug_close++;
                sample_abs = fmax(sample_abs, fabs(c - ref));
                if (fabs(c - bug) > bug_max) bug_max = fabs(c - bug);
            }
            CHECK(bad == 0, "view %d (%s): %d of %d samples differ from the peer's; first: index %d, C %.7g, peer %.7g",
                  k, fast ? "fast" : "reference", bad, r.ns, worst, worst >= 0 ? out[r.sidx[worst]] : 0.0,
                  worst >= 0 ? r.out_samples[(size_t)k * r.ns + worst] : 0.0);
            CHECK(bug_close == 0 && bug_max > 1.0, "view %d: %d samples match the old 255x lighting (max difference %.3g)",
                  k, bug_close, bug_max);
            if (getenv("ALEXNET_TEST_VERBOSE") && fast)
                printf("  view %d: C shift %.4f %.4f %.4f (peer %.4f %.4f %.4f, old bug %.1f %.1f %.1f); shift rel "
                       "diff %.2g, samples max abs diff %.2g, sums rel diff %.2g; old-bug samples off by up to %.1f\n",
                       k, rgb[0], rgb[1], rgb[2], r.rgb[3 * k], r.rgb[3 * k + 1], r.rgb[3 * k + 2], r.rgb_bug[3 * k],
                       r.rgb_bug[3 * k + 1], r.rgb_bug[3 * k + 2], shift_rel, sample_abs, sum_rel, bug_max);
        }
    }
    free(mean);
    free(out);
    st_free(&r.f);
}

/* The stored pixels are the same images as the C side decodes: image_load + the 256x256 centre
 * of the shorter side resized to 256, as alexnet prep does (dataset_get_base). Needs the data. */
TEST(peer_pipeline_same_base_images) {
    const char *shared = harness_shared_data();
    if (!shared) SKIP("no shared data folder");
    PeerRef r;
    if (peer_load(&r)) return;
    const char *files = st_meta(&r.f, "files");
    CHECK(files != NULL, "no files metadata");
    char list[4096];
    snprintf(list, sizeof list, "%s", files ? files : "");
    uint8_t *base = malloc((size_t)3 * PEER_SIZE * PEER_SIZE);
    CHECK(base != NULL, "out of memory");
    int i = 0, found = 0;
    for (char *save = NULL, *name = strtok_r(list, ",", &save); base && name && i < r.nimg;
         name = strtok_r(NULL, ",", &save), i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/imagenette/%s", shared, name);
        FILE *t = fopen(path, "rb");
        if (!t) continue;
        fclose(t);
        found++;
        Image img;
        int rc = image_load(path, &img);
        CHECK(rc == 0, "%s: %s", path, an_last_error());
        if (rc) continue;
        rc = image_resize_center_crop(&img, PEER_SIZE, PEER_SIZE, base);
        image_free(&img);
        CHECK(rc == 0, "%s: resize failed", path);
        if (rc) continue;
        const uint8_t *peer = r.images + (size_t)i * 3 * PEER_SIZE * PEER_SIZE;
        int differ = 0, maxd = 0;
        for (size_t j = 0; j < (size_t)3 * PEER_SIZE * PEER_SIZE; j++) {
            int d = abs((int)base[j] - (int)peer[j]);
            differ += d != 0;
            if (d > maxd) maxd = d;
        }
        /* our decode and Pillow-style resize reproduce Pillow's pixels (test_preprocess.c); allow
         * +-1 on a few for another libjpeg */
        CHECK(maxd <= 1 && differ <= 3 * PEER_SIZE * PEER_SIZE / 100, "%s: %d pixels differ from the peer's, by up "
              "to %d", name, differ, maxd);
        if (getenv("ALEXNET_TEST_VERBOSE")) printf("  %s: %d pixels differ, max %d\n", name, differ, maxd);
    }
    free(base);
    st_free(&r.f);
    if (!found) SKIP("the vectors' Imagenette images are not in %s/imagenette", shared);
}

/* The peer's --recipe paper|caffe (initialisation and bias multipliers) and its update are the C
 * side's: model_apply_recipe on `alexnet`, and sgd_update per tensor with lr x mult and decay x mult
 * (src/model/net.c net_sgd). */
TEST(peer_recipes_match_c) {
    PeerRef r;
    if (peer_load(&r)) return;
    const char *layers = st_meta(&r.f, "init_layers");
    CHECK(layers != NULL, "no init_layers metadata");
    const char *recipes[2] = {"paper", "caffe"};
    const ModelSpec *base = model_find("alexnet");
    CHECK(base != NULL, "no alexnet model");
    const float *w0 = peer_need(&r.f, "sgd.w", ST_F32, 12), *b0 = peer_need(&r.f, "sgd.b", ST_F32, 4);
    const float *gw = peer_need(&r.f, "sgd.gw", ST_F32, 12), *gb = peer_need(&r.f, "sgd.gb", ST_F32, 4);
    const float *vw0 = peer_need(&r.f, "sgd.vw", ST_F32, 12), *vb0 = peer_need(&r.f, "sgd.vb", ST_F32, 4);
    for (int k = 0; layers && base && k < 2; k++) {
        char name[64];
        snprintf(name, sizeof name, "init.%s", recipes[k]);
        const float *init = peer_need(&r.f, name, ST_F32, 16);
        snprintf(name, sizeof name, "bias_mult.%s", recipes[k]);
        const float *mult = peer_need(&r.f, name, ST_F32, 2);
        ModelSpec spec;
        CHECK(model_apply_recipe(base, recipes[k], &spec) == 0, "recipe %s: %s", recipes[k], an_last_error());
        if (!init || !mult) continue;
        /* one row per conv/linear layer of the C spec, in order, named as the peer's list */
        char list[256];
        snprintf(list, sizeof list, "%s", layers);
        char *save = NULL, *peer_name = strtok_r(list, ",", &save);
        int row = 0;
        for (int i = 0; i < spec.nlayers; i++) {
            const LayerSpec *l = &spec.layers[i];
            if (l->kind != LAYER_CONV && l->kind != LAYER_LINEAR) continue;
            CHECK(row < 8 && peer_name && strcmp(peer_name, l->name) == 0, "%s: C layer %d is %s, the peer's %s",
                  recipes[k], row, l->name, peer_name ? peer_name : "(none)");
            if (row < 8)
                CHECK(init[2 * row] == l->w_std && init[2 * row + 1] == l->b_init,
                      "%s %s: C weights N(0, %g) bias %g, the peer's N(0, %g) bias %g", recipes[k], l->name, l->w_std,
                      l->b_init, init[2 * row], init[2 * row + 1]);
            row++;
            peer_name = strtok_r(NULL, ",", &save);
        }
        CHECK(row == 8 && !peer_name, "%s: %d C layers with parameters, the peer lists more or fewer", recipes[k], row);
        float blr = spec.bias_lr_mult, bwd = spec.bias_decay_mult;
        if (blr == 0.0f && bwd == 0.0f) blr = bwd = 1.0f; /* as net_sgd */
        CHECK(mult[0] == blr && mult[1] == bwd, "%s: C biases lr x %g decay x %g, the peer's x %g and x %g",
              recipes[k], blr, bwd, mult[0], mult[1]);
        if (!w0 || !b0 || !gw || !gb || !vw0 || !vb0) continue;
        /* one step of each side from the same state */
        float w[12], b[4], vw[12], vb[4];
        memcpy(w, w0, sizeof w), memcpy(b, b0, sizeof b), memcpy(vw, vw0, sizeof vw), memcpy(vb, vb0, sizeof vb);
        sgd_update(12, w, gw, vw, 0.01f, 0.9f, 0.0005f);
        sgd_update(4, b, gb, vb, 0.01f * blr, 0.9f, 0.0005f * bwd);
        const char *part[4] = {"w", "b", "vw", "vb"};
        const float *mine[4] = {w, b, vw, vb};
        const int count[4] = {12, 4, 12, 4};
        for (int t = 0; t < 4; t++) {
            snprintf(name, sizeof name, "sgd.%s.%s", recipes[k], part[t]);
            const float *ref = peer_need(&r.f, name, ST_F32, count[t]);
            for (int j = 0; ref && j < count[t]; j++)
                CHECK(close_rel(mine[t][j], ref[j], 1e-6), "%s: %s[%d] after one step: C %.9g, peer %.9g", recipes[k],
                      part[t], j, mine[t][j], ref[j]);
        }
    }
    st_free(&r.f);
}
