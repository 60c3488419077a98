/* batch.h: how dataset images become network input, and the statistics that go with it.
 * Two kinds, chosen by the dataset and stored in checkpoints:
 *   per-channel (IDX, CIFAR-10, converted torchvision weights): (x / 255 - mean[c]) / std[c];
 *   the paper's (3-channel image folders and shard files): the 256x256 base image, a crop window,
 *     minus the training set's mean image at that window, in 0..255 units (times `scale`, 1),
 *     with PCA lighting from the training set's RGB eigenpairs during training. */
#ifndef ALEXNET_BATCH_H
#define ALEXNET_BATCH_H
#include "../data/augment.h"
#include "../data/dataset.h"
#include "../data/loader.h"
#include "../model/model.h"

typedef struct Norm {
    int c;
    float mean[3], std[3];   /* per-channel mode */
    int paper;               /* 1: the paper's mode */
    float scale;             /* paper: output = (pixel + lighting - mean image) * scale */
    float *mean_image;       /* paper: (3, 256, 256), owned (norm_free) */
    PcaLighting pca;         /* paper: eigenpairs of the training pixels' RGB covariance */
} Norm;

/* ImageNet statistics (torchvision's), for converted torchvision weights. */
Norm norm_imagenet(int c);
/* The input statistics of a training set: per-channel mean and std over every pixel of an
 * in-memory set; for 3-channel image sets the paper's mode with the shard's stored mean image and
 * eigenpairs, or, for a folder, computed from a fixed sample of up to `sample` images.
 * Returns 0 or -1 (an image of the sample failed to decode, out of memory). */
int norm_for_dataset(const Dataset *ds, int c, int sample, Norm *norm);
void norm_free(Norm *norm);

/* Loader input settings for a net of `channels` x crop x crop fed with this norm. Training
 * augmentation: random_crop, flip and lighting_std (paper mode only). */
InputConfig norm_input_config(const Norm *norm, int channels, int crop, int random_crop, int flip,
                              float lighting_std);
/* Normalise one uint8 planar image (c, s, s) into dst (per-channel mode). */
void normalize_image(const uint8_t *src, int c, int s, const Norm *norm, float *dst);
/* A decoded image (any size, (h, w, 3) interleaved) as network input (in_c, S, S): torchvision's
 * Resize(256-style) + centre crop + per-channel normalisation (grey by luma for one channel), or
 * for the paper's input the 256x256 base image's centre crop minus the mean image. Errors name
 * `who`. 0 or -1. */
struct Image;
int norm_image_input(const Net *net, const Norm *norm, const struct Image *img, const char *who, float *out);
#endif
