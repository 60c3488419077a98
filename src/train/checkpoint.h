/* checkpoint.h: weights and training state in safetensors files.
 * Weight tensors carry the model's names ("conv1.weight", or torchvision's "features.0.weight").
 * Every file's metadata names the model and holds its description (model_config, as model_print
 * writes it) and, when known, the classes' names (class_names, one a line).
 * Training checkpoints add "momentum.<name>" tensors and metadata: model, recipe, in_size,
 * channels, classes, normalisation mean/std, epoch, step, learning rate, seed and the
 * learning-rate schedule's state, so --resume continues the run exactly. */
#ifndef ALEXNET_CHECKPOINT_H
#define ALEXNET_CHECKPOINT_H
#include "../model/model.h"
#include "batch.h"
#include "safetensors.h"

typedef struct TrainState {
    int epoch;           /* epochs completed */
    int step_in_epoch;   /* steps done in the current epoch (0 at an epoch boundary) */
    long step;           /* steps done in the whole run */
    float lr;
    unsigned long long seed;
    double best_err;     /* best validation top-1 error so far (1.0 before any) */
    int bad_epochs;      /* epochs since it last improved */
    int drops;           /* learning-rate drops made */
    double loss_sum;     /* training loss summed over the current epoch's steps (x examples) */
    double err_sum;      /* training top-1 errors counted over the current epoch */
    long seen;           /* examples seen in the current epoch */
    double seconds;      /* training time of the current epoch so far */
} TrainState;

/* Write weights (and, when momentum and st are given, the training state) to path atomically. */
int checkpoint_save(const char *path, const Net *net, const float *momentum, const TrainState *st,
                    const Norm *norm, const char *recipe);

/* The same, with the flags the run was started with ("--flag=value" a line: train_flags), so that
 * `train --resume FILE` alone continues it. */
int checkpoint_save_run(const char *path, const Net *net, const float *momentum, const TrainState *st,
                        const Norm *norm, const char *recipe, const char *run_flags);

/* Read a weights or training checkpoint for model `spec` and build the net from it: channels and
 * classes come from the tensor shapes. Errors name the file: wrong model, missing tensor, wrong
 * shape or dtype. On success *file stays open (for checkpoint_read_state) and *norm holds the
 * stored normalisation (ImageNet's when absent, as for converted torchvision weights). */
int checkpoint_load_net(const char *path, const ModelSpec *spec, int max_batch, Net *net, Norm *norm,
                        StFile *file);
/* The model a checkpoint names ("model" in its metadata): the built-in of that name, or the
 * description stored with it ("model_config", written since 2026-12-02); only the header is read.
 * NULL (an_error names the file) when it names none or an unknown one without a description. */
const ModelSpec *checkpoint_model(const char *path);
/* Momentum buffers and training state from a file opened by checkpoint_load_net. */
int checkpoint_read_state(const char *path, const StFile *file, const Net *net, float *momentum,
                          TrainState *st);
#endif
