/* cmd_train.c: `alexnet train`: flags -> TrainConfig -> train_run, with Ctrl-C checkpointing. */
#include "args.h"
#include "commands.h"
#include "../model/model.h"
#include "../parallel/parallel.h"
#include "../cuda/cuda_api.h"
#include "../train/safetensors.h"
#include "../train/train.h"
#include "../util/common.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *HELP =
    "usage: alexnet train --model NAME --data PATH [flags]\n"
    "       alexnet train --resume FILE [flags]      (continues that run with its flags; give one to change it)\n"
    "\n"
    "Trains with the paper's SGD: v <- momentum v - weight_decay lr w - lr grad, w <- w + v.\n"
    "Shows progress (loss, images/s, ETA), evaluates the validation split after every epoch, and writes\n"
    "OUT/log.csv, OUT/curves.png, OUT/checkpoint.safetensors (every epoch, with momentum and state, for\n"
    "--resume: 8 bytes a parameter, 455 MB for a 10-class alexnet) and OUT/best.safetensors (weights of\n"
    "the best epoch, half that; --save-best-only writes only this one). Ctrl-C or SIGTERM stops after the\n"
    "current step and saves a checkpoint to resume from. A run whose loss or weights turn NaN or infinite\n"
    "stops with an error and leaves the last good checkpoint as it was.\n"
    "\n"
    "  --model NAME        alexnet, alexnet-owt, convnet4, convnet4-tanh, the ablations in models/\n"
    "                      (alexnet info --model NAME shows one), or a description file (docs/FORMATS.md)\n"
    "  --data PATH         folder with IDX files (Fashion-MNIST), CIFAR-10 .bin files, or train/ and val/\n"
    "                      subfolders of images, one subfolder per class\n"
    "  --out DIR           output folder (default runs/MODEL)\n"
    "  --epochs N          epochs to train in total (default 10)\n"
    "  --batch N           batch size (default 128)\n"
    "  --lr X              learning rate (default 0.01; on --resume, replaces the saved rate)\n"
    "  --momentum X        (default 0.9)\n"
    "  --weight-decay X    (default 0.0005)\n"
    "  --lr-drops E1,E2    divide the rate by 10 after these epochs (default: when validation top-1\n"
    "                      error has not improved for --patience epochs, at most --max-drops times)\n"
    "  --patience N        (default 3)      --max-drops N   (default 3)\n"
    "  --recipe NAME       paper: weights N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7, else 0;\n"
    "                      one learning rate and weight decay for every parameter, biases included.\n"
    "                      caffe (default; Caffe's bvlc_alexnet): fc6/fc7 weights N(0, 0.005), biases\n"
    "                      0.1 where the paper has 1; biases at twice the rate and without weight decay.\n"
    "                      With the paper's, alexnet's loss on Imagenette rose from 2.9 to 14 within 8\n"
    "                      steps, while caffe's stays stable. Small networks use He initialisation.\n"
    "  --seed N            seed of initialisation, data order, augmentation and dropout (default 1)\n"
    "\n"
    "Image folders and shard files (alexnet prep) get the paper's input pipeline: the 256x256 image, a\n"
    "random crop of the model's input size, a random mirror, PCA colour lighting, minus the training\n"
    "set's mean image (0..255 units). Each part can be switched off:\n"
    "  --no-random-crop    centre crops only          --no-flip      no mirroring\n"
    "  --lighting X        std of the lighting alphas (default 0.1, the paper's; 0 = off)\n"
    "  --no-mean           do not subtract the mean image\n"
    "  --val-crops 10      also report the 10-crop validation error after every epoch (10x the work)\n"
    "  --resume FILE       continue from a training checkpoint, exactly where it stopped; the run's\n"
    "                      flags (--data, --out, --epochs, ...) come with it: give one to change it\n"
    "  --init FILE         fine-tuning: start from these weights (a checkpoint of the same model);\n"
    "                      the input statistics are the new data's\n"
    "  --reset LAYERS      with --init: these layers (e.g. fc8, for another class count) start afresh\n"
    "  --freeze LAYERS     never update these layers (e.g. conv1,conv2); give it again on --resume\n"
    "  --val-split F       an image folder without val/: hold out this share of each class of train/ for\n"
    "                      validation (a fixed split: eval, features and prep take the same flag)\n"
    "  --limit-train N     train on a fixed random subset of N images (default all)\n"
    "  --limit-val N       validate on a fixed random subset of N images (default all)\n"
    "  --save-every N      also checkpoint every N steps\n"
    "  --save-best-only    at epoch ends write only best.safetensors (the weights, 4 bytes a parameter:\n"
    "                      228 MB for a 10-class alexnet), not checkpoint.safetensors (weights and\n"
    "                      momentum, twice that); Ctrl-C and --max-steps still write one to resume from\n"
    "  --max-steps N       stop after N steps in total, with a checkpoint\n"
    "  --precision P       fp32 (default) or bf16: matrix products with bfloat16 operands and float32\n"
    "                      sums; weights, momentum, LRN and loss stay float32, and so do the Winograd\n"
    "                      convolutions where the CPU has no AMX. On the GPU: fp32, tf32 or bf16\n"
    "  --device D          cpu (default) or cuda: the passes and the update on the GPU (cuDNN, cuBLAS)\n"
    "  --conv C            auto (default), im2col or winograd: how the CPU runs stride-1 3x3 and 5x5\n"
    "                      convolutions (auto: Winograd F(4x4,3x3) / F(4x4,5x5) for layers of 32 or more\n"
    "                      channels per group in fp32, forward at any batch from 6x6 outputs, backward\n"
    "                      from 6x6 for batches of 128 4x4 tiles or more; conv1 (11x11 stride 4) as 3x3\n"
    "                      on its input's 48 phase channels; errors about 1e-6 of the terms' scale)\n"
    "  --quiet             no progress output\n"
    "\n"
    "Several processes (an MPI build; start with mpirun or srun, one process per node or per GPU):\n"
    "  --parallel data     each rank takes its share of every batch (--batch is the global batch) and the\n"
    "                      gradients are summed over the ranks; the result does not depend on the rank\n"
    "                      count. Rank 0 alone prints and writes; any rank count resumes any checkpoint.\n"
    "  --parallel towers   the paper's two towers on 2 ranks (model alexnet): half the kernels each,\n"
    "                      exchanging activations only at conv3 and the fully connected layers\n"
    "  --comm-timeout S    a rank that hears nothing from the others for S seconds stops the job\n"
    "                      (default 300)\n"
    "  --warmup E          raise the rate linearly over the first E epochs (large batches: Goyal et al.;\n"
    "                      with the linear scaling rule, --lr 0.01 x batch / 128)\n"
    "  --optimizer NAME    sgd (default) or lars: each layer's weights step at lr x eta ||w|| /\n"
    "                      (||grad|| + weight_decay ||w||) (You et al.; batches in the thousands; CPU)\n"
    "  --lars-eta X        LARS trust coefficient (default 0.001)\n"
    "Threads per rank: OMP_NUM_THREADS (mpirun -x OMP_NUM_THREADS=N; bind with --map-by and --bind-to).\n";

static int train_command(int argc, char **argv);

/* Ctrl-C (SIGINT) and SIGTERM, which batch schedulers send before they kill a job: stop after the
 * current step with a checkpoint. A second one of the same kind stops at once. */
static void on_stop_signal(int sig) {
    train_request_stop();
    signal(sig, SIG_DFL);
}

/* Print the error; in a parallel run also stop the other ranks (they would wait for this one). */
static int fail_all(void) {
    int rc = fail();
    par_abort(1);
    return rc;
}

/* `--resume FILE` alone continues the run: the flags it was started with (the checkpoint's
 * train_flags, "--flag=value" a line) go before the command line's, less those the command line
 * gives itself, which win. *argv2 (and *store, its strings) malloc'd; argv unchanged without
 * --resume or stored flags. 0, or -1 (the file cannot be read). */
static int with_stored_flags(int argc, char **argv, int *argc2, char ***argv2, char **store) {
    *argc2 = argc, *argv2 = argv, *store = NULL;
    const char *path = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--resume") && i + 1 < argc) path = argv[i + 1];
        else if (!strncmp(argv[i], "--resume=", 9)) path = argv[i] + 9;
    }
    if (!path) return 0;
    StFile f;
    if (st_read_header(path, &f)) return -1;
    const char *flags = st_meta(&f, "train_flags");
    if (!flags || !(*store = strdup(flags))) { st_free(&f); return 0; }
    st_free(&f);
    int lines = 1;
    for (const char *c = *store; *c; c++) lines += *c == '\n';
    char **v = malloc((size_t)(argc + lines) * sizeof *v);
    if (!v) { free(*store), *store = NULL; return an_error("out of memory"); }
    int n = 0;
    v[n++] = argv[0], v[n++] = argv[1];
    for (char *tok = strtok(*store, "\n"); tok; tok = strtok(NULL, "\n")) {
        size_t flen = strcspn(tok, "=");
        int given = 0;
        for (int i = 2; i < argc && !given; i++)
            given = !strncmp(argv[i], tok, flen) && (argv[i][flen] == 0 || argv[i][flen] == '=');
        if (!given) v[n++] = tok;
    }
    for (int i = 2; i < argc; i++) v[n++] = argv[i];
    *argc2 = n, *argv2 = v;
    return 0;
}

int cmd_train(int argc, char **argv) {
    char **stored_argv, *stored = NULL;
    int stored_argc;
    if (with_stored_flags(argc, argv, &stored_argc, &stored_argv, &stored)) return fail();
    int rc = train_command(stored_argc, stored_argv);
    if (stored_argv != argv) free(stored_argv);
    free(stored);
    return rc;
}

static int train_command(int argc, char **argv) {
    TrainConfig cfg;
    train_config_defaults(&cfg);
    int help = 0, ndrops = 0;
    const char *precision = "fp32", *device = "cpu", *parallel = NULL, *optimizer = "sgd", *conv = "auto";
    float comm_timeout = 300.0f;
    ArgIntList drops = {cfg.drop_epochs, MAX_LR_DROPS, &ndrops};
    ArgSpec specs[] = {
        {"--model", ARG_STR, &cfg.model, NULL},       {"--data", ARG_STR, &cfg.data, NULL},
        {"--out", ARG_STR, &cfg.out_dir, NULL},       {"--resume", ARG_STR, &cfg.resume, NULL},
        {"--recipe", ARG_STR, &cfg.recipe, NULL},     {"--epochs", ARG_INT, &cfg.epochs, NULL},
        {"--batch", ARG_INT, &cfg.batch, NULL},       {"--lr", ARG_FLOAT, &cfg.lr, &cfg.lr_set},
        {"--momentum", ARG_FLOAT, &cfg.momentum, NULL}, {"--weight-decay", ARG_FLOAT, &cfg.weight_decay, NULL},
        {"--seed", ARG_U64, &cfg.seed, NULL},         {"--patience", ARG_INT, &cfg.patience, NULL},
        {"--max-drops", ARG_INT, &cfg.max_drops, NULL}, {"--lr-drops", ARG_INTLIST, &drops, NULL},
        {"--val-split", ARG_FLOAT, &cfg.val_split, NULL},
        {"--limit-train", ARG_INT, &cfg.limit_train, NULL}, {"--limit-val", ARG_INT, &cfg.limit_val, NULL},
        {"--save-every", ARG_INT, &cfg.save_every, NULL}, {"--save-best-only", ARG_FLAG, &cfg.save_best_only, NULL}, {"--max-steps", ARG_LONG, &cfg.max_steps, NULL},
        {"--quiet", ARG_FLAG, &cfg.quiet, NULL},
        {"--no-random-crop", ARG_FLAG, &cfg.no_random_crop, NULL}, {"--no-flip", ARG_FLAG, &cfg.no_flip, NULL},
        {"--no-mean", ARG_FLAG, &cfg.no_mean, NULL}, {"--lighting", ARG_FLOAT, &cfg.lighting, NULL},
        {"--val-crops", ARG_INT, &cfg.val_crops, NULL}, {"--precision", ARG_STR, &precision, NULL},
        {"--device", ARG_STR, &device, NULL},
        {"--parallel", ARG_STR, &parallel, NULL},     {"--comm-timeout", ARG_FLOAT, &comm_timeout, NULL},
        {"--warmup", ARG_FLOAT, &cfg.warmup, NULL},   {"--optimizer", ARG_STR, &optimizer, NULL},
        {"--lars-eta", ARG_FLOAT, &cfg.lars_eta, NULL},
        {"--init", ARG_STR, &cfg.init, NULL},         {"--reset", ARG_STR, &cfg.reset, NULL},
        {"--freeze", ARG_STR, &cfg.freeze, NULL},     {"--conv", ARG_STR, &conv, NULL},
    };
    if (args_parse("train", argc, argv, 2, specs, sizeof specs / sizeof specs[0], NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    cfg.n_drop_epochs = ndrops;
    char out[512];
    if (!cfg.out_dir && cfg.model) {
        snprintf(out, sizeof out, "runs/%s", cfg.model);
        cfg.out_dir = out;
    }
    if (!cfg.out_dir && cfg.resume)
        return an_error("train: --out is required with --resume (%s holds no flags of its run: written before "
                        "2026-12-02?)", cfg.resume), fail();
    if (strcmp(optimizer, "sgd") != 0 && strcmp(optimizer, "lars") != 0)
        return an_error("train: --optimizer must be sgd or lars, not '%s'", optimizer), fail();
    cfg.lars = strcmp(optimizer, "lars") == 0;
    if (parallel && strcmp(parallel, "data") != 0 && strcmp(parallel, "towers") != 0)
        return an_error("train: --parallel must be data or towers, not '%s'", parallel), fail();
    if (!(comm_timeout > 0.0)) return an_error("train: --comm-timeout must be a positive number of seconds"), fail();
    if (train_config_check(&cfg)) return fail();
    if (parallel) {
        cfg.parallel = strcmp(parallel, "data") == 0 ? PARALLEL_DATA : PARALLEL_TOWERS;
        if (par_start(NULL, NULL)) return fail();
        par_set_timeout(comm_timeout);
        /* one GPU per rank: the node's n-th process takes GPU n (mod the GPUs there), before any GPU work */
        if (!strcmp(device, "cuda") && cuda_select_device(par_local_rank())) return fail_all();
    }
    if (device_select("train", device, precision, &cfg.gpu, &cfg.gpu_math) || conv_select("train", conv))
        return fail_all();
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
    int rc = train_run(&cfg);
    if (rc && cfg.parallel) {
        /* an error every rank reached together: each prints (rank 0 says what; the others that they
         * follow) and all end; an error of this rank alone: print it and stop the whole job */
        if (par_rank() == 0 || !train_error_agreed()) fail();
        if (!train_error_agreed()) par_abort(1);
        par_finish();
        return 1;
    }
    par_finish();
    return rc ? fail() : 0;
}
