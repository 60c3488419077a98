/* batch.h: turning dataset examples into a normalised float batch for the network. */
#ifndef ALEXNET_BATCH_H
#define ALEXNET_BATCH_H
#include "../data/dataset.h"
#include "../model/model.h"

/* Per-channel normalisation of pixels scaled to [0, 1]: (x / 255 - mean) / std. */
typedef struct Norm { int c; float mean[3], std[3]; } Norm;

/* ImageNet statistics (torchvision's), used for image folders and converted torchvision weights. */
Norm norm_imagenet(int c);
/* Per-channel mean and std over every pixel of an in-memory set (IDX, CIFAR); ImageNet's for
 * folders. */
Norm norm_for_dataset(const Dataset *ds, int c);

/* Fill net->input[0 .. n) with examples idx[0 .. n) of ds at the net's size and channels, and
 * labels[0 .. n). Images are prepared in parallel. Returns 0, or -1 with an_error() naming the
 * first file that failed. */
int batch_fill(Net *net, const Dataset *ds, const int *idx, int n, const Norm *norm, int *labels);
/* Normalise one uint8 planar image (c, s, s) into dst. */
void normalize_image(const uint8_t *src, int c, int s, const Norm *norm, float *dst);
#endif
