/* data_internal.h: private declarations shared by the files of src/data (not part of the API).
 * The three dataset loaders, their folder detectors, and the checked variant of image_resize. */
#ifndef ALEXNET_DATA_INTERNAL_H
#define ALEXNET_DATA_INTERNAL_H
#include "dataset.h"
#include <stddef.h>
#include <stdint.h>

/* Detectors: 1 when `path` (an existing folder) looks like that kind of dataset, else 0. */
int idx_detect(const char *path);
int cifar10_detect(const char *path);
int folder_detect(const char *path);

/* Loaders: fill a zeroed *ds for the train (1) or test (0) split. On error they return -1 with
 * an_error() set and leave whatever they allocated in *ds for dataset_free to release. */
int idx_load(Dataset *ds, const char *path, int train);
int cifar10_load(Dataset *ds, const char *path, int train);
int folder_load(Dataset *ds, const char *path, int train);
/* A folder without val/, split into training (train = 1) and held-out validation (0) images of its
 * train/, val_split in (0, 1) of each class (folder.c says how they are chosen). */
int folder_load_split(Dataset *ds, const char *path, int train, float val_split, uint64_t seed);

/* "dir/name" into out (size n). Returns 0, or -1 with an_error() set when it does not fit. */
int data_path_join(char *out, size_t n, const char *dir, const char *name);
/* 1 when path exists and is a folder (after following links), 2 when a regular file, else 0. */
int data_path_kind(const char *path);

/* image_resize that reports failure: returns 0, or -1 with an_error() set (out of memory). */
int image_resize_checked(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh);
/* The plain scalar resize (interleaved passes, as Pillow's code) that the fast planar path is
 * tested against byte for byte. 0 or -1. */
int image_resize_reference(const uint8_t *src, int w, int h, int c, uint8_t *dst, int ow, int oh);
#endif
