/* augment.h: the paper's data augmentation and test views (section 4.1), on 256x256 images.
 * Training views: a random crop x crop window (224, or 227 for `alexnet`) of the size x size image,
 * mirrored with probability 1/2, plus PCA colour lighting: to every pixel add
 * sum_i alpha_i * lambda_i * p_i, with (lambda_i, p_i) the eigenpairs of the training set's RGB
 * pixel covariance and alpha_i ~ N(0, lighting_std) drawn once per image per epoch. Then the mean
 * image (at the same crop window) is subtracted. The lighting formula is applied to pixels in [0, 1]
 * as in the authors' code, so with lambda_i in 0..255 units the shift is sum_i alpha_i (lambda_i /
 * 255) p_i grey levels. Test views: the centre crop, or the paper's 10
 * views (four corners and centre, and their mirrors). All randomness comes from (seed, counter),
 * so a view does not depend on threads or timing. */
#ifndef ALEXNET_AUGMENT_H
#define ALEXNET_AUGMENT_H
#include <stdint.h>

/* Eigenpairs of the RGB covariance of training pixels in 0..255 units, largest eigenvalue first.
 * eigvec[i] is the i-th unit eigenvector (its R, G, B components). */
typedef struct PcaLighting { float eigval[3]; float eigvec[3][3]; } PcaLighting;

typedef struct AugmentConfig {
    int size;                 /* source images are (3, size, size), planar RGB uint8 */
    int crop;                 /* output (3, crop, crop) */
    int random_crop;          /* 1: random window; 0: centre */
    int flip;                 /* 1: mirror with probability 1/2 */
    float lighting_std;       /* std of the alphas (paper 0.1); 0 = no lighting */
    const PcaLighting *pca;   /* required when lighting_std > 0 */
    const float *mean_image;  /* (3, size, size), 0..255 units, subtracted at the window; NULL = none */
    float scale;              /* output = (pixel + lighting - mean) * scale */
} AugmentConfig;

typedef struct View { int x, y, flip; } View; /* window's left, top, and whether mirrored */

/* A training view from (seed, counter): random window if random_crop else centre, random flip if
 * flip. Counter is per image per epoch (the loader uses epoch << 32 | example index). */
View augment_random_view(const AugmentConfig *a, uint64_t seed, uint64_t counter);
/* The centre window: x = y = (size - crop) / 2 (integer division), not mirrored. */
View augment_center_view(int size, int crop);
/* Test view k of 10: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right, 4 centre;
 * 5..9 the same mirrored. */
View augment_test_view(int size, int crop, int k);
/* The lighting shift (R, G, B) for (seed, counter): alphas ~ N(0, lighting_std); zeros when
 * lighting is off. */
void augment_lighting(const AugmentConfig *a, uint64_t seed, uint64_t counter, float rgb[3]);
/* Cut view v out of src (3, size, size), mirror it if v.flip, add rgb (may be NULL), subtract the
 * mean image at the same source pixels, multiply by scale: dst (3, crop, crop) float. */
void augment_apply(const AugmentConfig *a, const uint8_t *src, View v, const float rgb[3], float *dst);
/* The same with the plain C loops only (augment_apply uses AVX-512 where the CPU has it, with
 * streaming stores; the floats are bit-identical). For tests. */
void augment_apply_reference(const AugmentConfig *a, const uint8_t *src, View v, const float rgb[3], float *dst);
#endif
