/* shard.h: the preprocessed dataset file written once by `alexnet prep`, so training reads no
 * JPEGs. It holds both splits as 256x256 planar RGB uint8 images (shorter side scaled to 256, centre
 * crop, as the paper), their labels and class names, and the training set's mean image and RGB
 * eigenpairs for PCA lighting. The layout is in docs/FORMATS.md. Reading maps the file (mmap), so
 * opening is instant and the pages are shared between threads and processes; images are copied out
 * with pread (shard_read), so a file truncated while in use is an error, not a SIGBUS. */
#ifndef ALEXNET_SHARD_H
#define ALEXNET_SHARD_H
#include "augment.h"
#include <stddef.h>
#include <stdint.h>

#define SHARD_IMAGE_SIZE 256

typedef struct Shard {
    int size;                     /* 256 */
    int classes;
    char **class_names;           /* (classes) e.g. WordNet ids, from the folder names */
    int n[2];                     /* images in split 0 = train, 1 = val */
    const int32_t *labels[2];     /* (n[s]) */
    const uint8_t *images[2];     /* (n[s], 3, size, size), in the mapping: read them with shard_read */
    const float *mean_image;      /* (3, size, size) over the training split, 0..255 units (a copy) */
    PcaLighting pca;              /* of the training split's pixels */
    void *map;
    size_t map_size;
    int fd;                       /* the open file, for shard_read (closed by shard_close) */
    char *path;                   /* for messages */
} Shard;

/* Is this a shard file (by its magic bytes)? 0 for folders and unreadable paths. */
int shard_is_file(const char *path);
/* Map and validate a shard file (magic, version, sizes against the file length). Returns 0, or -1
 * with an_error() naming the file ("x.shard: truncated: 1200 of 2600000 bytes"). */
int shard_open(const char *path, Shard *s);
void shard_close(Shard *s);
/* Copy the n bytes the mapping holds at `at` (e.g. s->images[1] + k * image bytes) into out, with
 * pread rather than through the mapping: a file truncated since shard_open then gives the error
 * "x.shard: truncated while in use (was 2600000 bytes, now 4096)" instead of a SIGBUS. 0 or -1. */
int shard_read(const Shard *s, const void *at, size_t n, void *out);

/* `alexnet prep`: read the image folder data_dir (train/CLASS/FILE, val/CLASS/FILE), preprocess every
 * image with `threads` threads, compute the statistics, and write out_path (via out_path.tmp and a
 * rename). Files that do not decode are skipped with one warning each on stderr; *skipped gets
 * their count. progress: print images/s and ETA. Returns 0 or -1. */
int shard_prep(const char *data_dir, const char *out_path, int threads, int progress, int *skipped);
/* The same for a folder without val/: val_split of train/ held out (dataset_load_split). */
int shard_prep_split(const char *data_dir, const char *out_path, int threads, int progress, int *skipped,
                     float val_split);

/* Running statistics of planar (3, size, size) uint8 images in float64: the mean image and the
 * RGB covariance of all pixels, whose eigenpairs drive PCA lighting. Used by shard_prep and by
 * training straight from a folder (on a sample). Add images in a fixed order for reproducible
 * results. */
typedef struct ImageStats {
    int size;
    long count;          /* images added */
    double *sum;         /* (3, size, size) */
    double rgb_sum[3], rgb_outer[3][3];
} ImageStats;
int image_stats_init(ImageStats *st, int size);      /* 0 or -1 (out of memory) */
void image_stats_add(ImageStats *st, const uint8_t *image);
/* mean_image (3, size, size); pca: eigenvalues largest first, unit eigenvectors. */
void image_stats_finish(const ImageStats *st, float *mean_image, PcaLighting *pca);
void image_stats_free(ImageStats *st);
/* Eigen-decomposition of a symmetric 3x3 matrix (cyclic Jacobi, float64): values descending,
 * vectors[i] the unit eigenvector of values[i]. */
void sym3_eigen(const double m[3][3], double values[3], double vectors[3][3]);
#endif
