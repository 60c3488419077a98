/* dataset.h: the datasets training and evaluation read, behind one interface.
 *
 * Four on-disk kinds, detected from the folder passed as --data:
 *   IDX (Fashion-MNIST/MNIST): train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 *                              t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]
 *   CIFAR-10 binary:           data_batch_1..5.bin, test_batch.bin (in PATH or PATH/cifar-10-batches-bin)
 *   image folder (ImageNet):   PATH/train/CLASS/FILE.{JPEG,jpg,png}, PATH/val/CLASS/FILE, or a flat
 *                              PATH/val/ with PATH/val_labels.txt ("FILE CLASS" lines)
 *                              (or no val/: dataset_load_split holds out part of train/)
 *   shard file:                PATH is a file written by `alexnet prep` (see shard.h)
 * IDX and CIFAR are held in memory as uint8 (n, c, h, w). Folder sets hold file paths and decode
 * each image when it is asked for. */
#ifndef ALEXNET_DATASET_H
#define ALEXNET_DATASET_H
#include <stdint.h>

typedef enum { DATASET_IDX, DATASET_CIFAR10, DATASET_FOLDER, DATASET_SHARD } DatasetKind;
struct PcaLighting;

typedef struct Dataset {
    DatasetKind kind;
    int n;              /* number of examples */
    int c, h, w;        /* native shape of in-memory sets; folder sets: c = 3, h = w = 0 */
    int classes;        /* number of classes (max label + 1 for IDX/CIFAR; subfolder count for folders) */
    uint8_t *pixels;    /* (n, c, h, w), in-memory sets only, else NULL */
    int *labels;        /* (n) */
    char **paths;       /* (n) file paths, folder sets only, else NULL */
    char **class_names; /* (classes) names: subfolder names (e.g. WordNet ids), CIFAR-10 names, or NULL */
    const float *mean_image;        /* shard files: the training mean image (3, 256, 256); else NULL */
    const struct PcaLighting *pca;  /* shard files: RGB eigenpairs of the training set; else NULL */
    void *owner;                    /* shard files: the open Shard (both splits share the mapping) */
} Dataset;

/* Load the training (train = 1) or test/validation (train = 0) split of the dataset in folder
 * `path`. Returns 0, or -1 with an_error() set to a one-line message naming the file and problem
 * (missing folder, wrong IDX magic, truncated file, no images, ...). */
int dataset_load(Dataset *ds, const char *path, int train);

/* dataset_load with a validation split held out of train/, for image folders without val/ (what
 * torchvision users split by hand). val_split == 0: exactly dataset_load. val_split in (0, 1),
 * folder datasets only: of each class of train/ with n images, round(val_split * n) (half away
 * from zero) but at least 1 when n >= 2 and at most n - 1 are held out for validation (train = 0);
 * train = 1 gives the rest, so the two calls with the same arguments partition train/ exactly, and
 * a class of 1 image stays in training. Which images: a shuffle seeded by `seed` and keyed on the
 * names CLASS/FILE alone, so the same (seed, files) give the same split whatever the file system's
 * listing order, the thread count or where the folder lies; another seed, another split. Both
 * splits keep the sorted (class, name) order and train/'s class names and indices, as dataset_load
 * does. Errors (-1, an_error() set): val_split outside [0, 1) (naming the value); a folder that has
 * a val/ folder ("PATH has a val/ folder: --val-split is for folders without one"); IDX, CIFAR-10
 * and shard datasets ("--val-split is for image folders"); a split that would be empty (train/
 * without images, or no class with 2 or more); and whatever dataset_load reports. */
/* The seed of every --val-split: one fixed split of a folder, whatever the run's --seed. */
#define DATASET_SPLIT_SEED 2012ull
int dataset_load_split(Dataset *ds, const char *path, int train, float val_split, unsigned long long seed);
void dataset_free(Dataset *ds);

/* The image of example i as uint8 (out_c, size, size), planar RGB (or gray when out_c = 1).
 * In-memory sets are resized (antialiased bilinear) when size differs from the native h, w.
 * Folder sets are decoded, the shorter side resized to image_resize_size(size), and centre-cropped.
 * 1 -> 3 channels replicates gray; 3 -> 1 takes luma (0.299 R + 0.587 G + 0.114 B).
 * Returns 0, or -1 with an_error() set (e.g. "val/n01/x.JPEG: not a JPEG or PNG file"). */
int dataset_get_image(const Dataset *ds, int i, int out_c, int size, uint8_t *out);

/* The paper's base image of example i: (3, 256, 256) planar RGB uint8. Shards copy it; folders
 * decode, scale the shorter side to 256 and take the centre 256x256 (exactly what `alexnet prep`
 * stores); in-memory sets are resized (gray replicated). Returns 0 or -1 (an_error names the file). */
int dataset_get_base(const Dataset *ds, int i, uint8_t *out);
/* The same image in `scratch` (3 * 256 * 256 bytes), filled by dataset_get_base (shards are read
 * with pread, not through their mapping, so a file truncated while in use is an error rather than
 * a SIGBUS); returns scratch, or NULL on failure (an_error set). */
const uint8_t *dataset_base(const Dataset *ds, int i, uint8_t *scratch);

/* Shorter-side size an image is scaled to before the centre crop of `crop`:
 * 256 for crops of 224 and 227 (the paper, torchvision), crop * 8 / 7 rounded otherwise. */
int image_resize_size(int crop);
#endif
