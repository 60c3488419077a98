/* train.h: a whole training run as the paper does it (SGD with momentum and weight decay, batch
 * 128, learning rate divided by 10 on a validation plateau or at given epochs), with progress,
 * per-epoch validation, log.csv, curves.png and checkpoints (resumable exactly). */
#ifndef ALEXNET_TRAIN_H
#define ALEXNET_TRAIN_H

#define MAX_LR_DROPS 16

typedef struct TrainConfig {
    const char *model;        /* model name (required unless resuming) */
    const char *data;         /* dataset folder */
    const char *out_dir;      /* where log.csv, curves.png and checkpoints go */
    const char *resume;       /* training checkpoint to continue from, or NULL */
    const char *recipe;       /* "paper" or "caffe" */
    int epochs, batch;
    float lr, momentum, weight_decay;
    int lr_set;               /* lr given on the command line (overrides a resumed lr) */
    unsigned long long seed;
    int patience, max_drops;  /* plateau schedule: drop after `patience` epochs without improvement */
    int drop_epochs[MAX_LR_DROPS], n_drop_epochs; /* or drop at these epochs (then no plateau rule) */
    int limit_train, limit_val; /* use a fixed random subset of this many examples (0 = all) */
    float val_split;          /* image folders without val/: this share of train/ validates (0 = none) */
    long max_steps;           /* stop (with a checkpoint) after this many steps in total (0 = none) */
    int save_every;           /* also checkpoint every this many steps (0 = at epoch ends only) */
    int save_best_only;       /* no checkpoint at epoch ends (best.safetensors only); a stop still writes one */
    int quiet;                /* no progress lines */
    /* the paper's augmentation (3-channel image sets): each can be switched off */
    int no_random_crop, no_flip, no_mean;
    float lighting;           /* std of the PCA lighting alphas (paper 0.1; 0 = off) */
    int val_crops;            /* 1: centre-crop validation each epoch; 10: also the 10-crop test */
    int gpu, gpu_math;        /* run the passes on the GPU (net_to_gpu), gpu_math a GpuMath (0 fp32) */
    /* several processes (src/parallel/parallel.h; par_start first): PARALLEL_DATA or
     * PARALLEL_TOWERS; 0 = one process. Only rank 0 prints, logs and writes files. */
    int parallel;
    /* fine-tuning: start from the weights of init (a checkpoint or weights file of the same model),
     * except the layers named in reset ("fc8" or "conv1,fc8": initialised as a fresh run); the
     * layers named in freeze are never updated. Not saved in checkpoints: give them again on --resume. */
    const char *init, *reset, *freeze;
    float warmup;             /* epochs over which the rate rises linearly to lr (Goyal et al.; 0 none) */
    int lars;                 /* layer-wise trust ratios (LARS, You et al. 2017) on the weights */
    float lars_eta;           /* LARS trust coefficient (default 0.001) */
} TrainConfig;

void train_config_defaults(TrainConfig *cfg);
/* The numbers of a config are usable: a finite positive --lr, momentum in [0, 1), finite
 * non-negative weight decay and lighting, batch and epochs at least 1, limits and steps not
 * negative, 1 or 10 validation crops. 0, or -1 with an_error() naming the flag. train_run checks
 * it first too. */
int train_config_check(const TrainConfig *cfg);
/* Run (or continue) training. Returns 0 when finished or stopped cleanly (max_steps, Ctrl-C after
 * its checkpoint), -1 with an_error() set on failure. */
int train_run(const TrainConfig *cfg);
/* After train_run failed in a parallel run: 1 when every rank came to the same error together (a
 * diverged run, a checkpoint rank 0 could not write), so each can end normally; 0 when it was this
 * rank's alone and the job must be stopped (par_abort). */
int train_error_agreed(void);
/* Ask a running train_run to stop after the current step and checkpoint (signal-safe). */
void train_request_stop(void);
#endif
