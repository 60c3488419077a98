/* loader.h: batches prepared by worker threads ahead of the training step, through a bounded
 * queue. A batch's content depends only on (dataset, indices, seed, epoch, batch number): never on
 * the thread count or timing. Examples whose image fails to decode are left out of their batch
 * (one warning per file on stderr, counted in loader_skipped), so a bad file never stops training.
 *
 * Modes: LOADER_TRAIN (shuffled order from (seed, epoch); for 3-channel image sets the paper's
 * augmentation from AugmentConfig, for in-memory sets without augmentation the plain normalised
 * image), LOADER_TEST (in order, centre view), LOADER_TEST10 (in order, 10 views per example,
 * consecutive in the batch: x holds n * 10 images). */
#ifndef ALEXNET_LOADER_H
#define ALEXNET_LOADER_H
#include "augment.h"
#include "dataset.h"
#include <stddef.h>
#include <stdint.h>

typedef enum { LOADER_TRAIN, LOADER_TEST, LOADER_TEST10 } LoaderMode;

/* How an example becomes network input. With `paper` set (3-channel images: folders and shards):
 * the 256x256 base image (dataset_get_base) then augment_apply with `aug`. Otherwise:
 * dataset_get_image at (channels, aug.crop) then (x / 255 - mean[c]) / std[c]. */
typedef struct InputConfig {
    int paper;
    AugmentConfig aug;        /* paper: crop = network input size; test modes ignore the random parts */
    int channels;             /* network input channels */
    float mean[3], std[3];    /* not paper */
} InputConfig;

typedef struct LoaderConfig {
    const Dataset *ds;
    const int *indices;       /* examples drawn from (count of them) */
    int count;
    int batch;                /* examples per batch (TEST10: x holds batch * 10 images) */
    LoaderMode mode;
    uint64_t seed;
    int epoch;
    int first_batch;          /* start at this batch of the epoch (resume) */
    /* Several processes (data parallel): parts >= 1 takes share `part` (0 .. parts - 1) of every
     * batch, examples [n part / parts, n (part + 1) / parts) of its n, and hands out every batch,
     * even one left empty (the processes step together). 0: the whole batch; empty ones skipped. */
    int part, parts;
    int threads;              /* worker threads (>= 1) */
    int prefetch;             /* batches prepared ahead (>= 1) */
    InputConfig input;
    /* Where the batches' images (Batch.x, prefetch of them) live: NULL for both, the C heap; set
     * both or neither. The GPU path passes cuda_host_alloc and cuda_host_free (src/cuda/cuda_api.h)
     * so that a batch is copied to the card straight from page-locked memory. alloc_host returns
     * NULL with an_error set on failure. */
    void *(*alloc_host)(size_t bytes);
    void (*free_host)(void *p);
} LoaderConfig;

typedef struct Batch {
    int number;               /* batch number in the epoch */
    int n;                    /* examples in it (a skipped file makes it smaller) */
    int views;                /* 1, or 10 in LOADER_TEST10 */
    float *x;                 /* (n * views, channels, crop, crop) */
    int *labels;              /* (n) */
    int *example;             /* (n) dataset index of each example */
} Batch;

typedef struct Loader Loader;

/* Start the workers for one epoch. Returns 0 or -1 (an_error set). */
int loader_start(Loader **out, const LoaderConfig *cfg);
/* The next pass over the same examples: stops the workers (also mid-epoch), then starts epoch
 * `epoch` (its own order and augmentation) at batch first_batch, reusing the prefetch ring and its
 * memory. Every batch must have been handed back. loader_skipped keeps counting. 0 or -1. */
int loader_restart(Loader *l, int epoch, int first_batch);
/* Number of batches in the epoch: ceil(count / batch). */
int loader_batches(const Loader *l);
/* Next batch in order, waiting for it if needed; NULL at the end of the epoch or on an error
 * (then loader_error returns the message). Hand it back with loader_release. */
Batch *loader_next(Loader *l);
void loader_release(Loader *l, Batch *b);
const char *loader_error(const Loader *l); /* NULL when none */
int loader_skipped(const Loader *l);       /* files skipped so far */
/* Stop the workers (also mid-epoch) and free everything. */
void loader_stop(Loader *l);

/* Fill one example's input(s) at `out` for a view (the function workers call; exposed for tests
 * and benchmarks). counter as in augment_random_view. Returns 0 or -1. */
int loader_prepare_example(const LoaderConfig *cfg, int example, uint64_t counter, float *out);
#endif
