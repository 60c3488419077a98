/* train.c: the training loop: data order, steps, progress, validation, schedule, logs, checkpoints. */
#include "train.h"
#include "../cpu/gemm.h"
#include "../cuda/cuda_api.h"
#include "../cuda/gpu_net.h"
#include "../data/dataset.h"
#include "../model/model.h"
#include "../parallel/parallel.h"
#include "../parallel/towers.h"
#include "../util/common.h"
#include "../util/png.h"
#include "batch.h"
#include "checkpoint.h"
#include "eval.h"
#include "finetune.h"
#include "sgd.h"
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
void train_request_stop(void) { g_stop = 1; }
static int g_error_agreed;
int train_error_agreed(void) { return g_error_agreed; }

void train_config_defaults(TrainConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->recipe = "caffe";
    cfg->epochs = 10, cfg->batch = 128;
    cfg->lr = 0.01f, cfg->momentum = 0.9f, cfg->weight_decay = 0.0005f;
    cfg->seed = 1, cfg->patience = 3, cfg->max_drops = 3;
    cfg->lighting = 0.1f, cfg->val_crops = 1;
    cfg->lars_eta = 0.001f;
}

int train_config_check(const TrainConfig *cfg) {
    /* written so that NaN fails every test: !(x > 0) is true for NaN */
    if (!(cfg->lr > 0.0f) || isinf(cfg->lr)) return an_error("train: --lr must be a positive finite number, not %g", cfg->lr);
    if (!(cfg->momentum >= 0.0f && cfg->momentum < 1.0f))
        return an_error("train: --momentum must be at least 0 and below 1, not %g", cfg->momentum);
    if (!(cfg->weight_decay >= 0.0f) || isinf(cfg->weight_decay))
        return an_error("train: --weight-decay must be a finite number of at least 0, not %g", cfg->weight_decay);
    if (!(cfg->lighting >= 0.0f) || isinf(cfg->lighting))
        return an_error("train: --lighting must be a finite number of at least 0, not %g", cfg->lighting);
    const struct { const char *flag; long value, least; } counts[] = {
        {"--batch", cfg->batch, 1},          {"--epochs", cfg->epochs, 1},        {"--patience", cfg->patience, 1},
        {"--max-drops", cfg->max_drops, 0}, {"--limit-train", cfg->limit_train, 0}, {"--limit-val", cfg->limit_val, 0},
        {"--save-every", cfg->save_every, 0}, {"--max-steps", cfg->max_steps, 0}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (counts[i].value < counts[i].least)
            return an_error("train: %s must be at least %ld, not %ld", counts[i].flag, counts[i].least, counts[i].value);
    if (cfg->val_crops != 1 && cfg->val_crops != 10)
        return an_error("train: --val-crops must be 1 or 10, not %d", cfg->val_crops);
    if (!(cfg->warmup >= 0.0f) || isinf(cfg->warmup))
        return an_error("train: --warmup must be a finite number of epochs, at least 0, not %g", cfg->warmup);
    if (!(cfg->lars_eta > 0.0f) || isinf(cfg->lars_eta))
        return an_error("train: --lars-eta must be a positive finite number, not %g", cfg->lars_eta);
    return 0;
}

/* A fixed permutation of 0..n-1 drawn from (seed, salt), Fisher-Yates with counter-based draws. */
static void permutation(int *p, int n, uint64_t seed, uint64_t salt) {
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(an_hash64(seed ^ (salt * 0x9E3779B97F4A7C15ull), (uint64_t)i) % (uint64_t)(i + 1));
        int t = p[i]; p[i] = p[j]; p[j] = t;
    }
}

/* Examples used from a split: all, or a fixed random subset (independent of the seed). */
static int *subset(int n, int limit, int *count) {
    int *p = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!p) return NULL;
    if (limit > 0 && limit < n) {
        permutation(p, n, 0x5EED, 7);
        *count = limit;
    } else {
        for (int i = 0; i < n; i++) p[i] = i;
        *count = n;
    }
    return p;
}

static void fmt_time(double s, char *buf, size_t size) {
    if (s < 0 || s > 1e7) s = 0;
    if (s >= 3600) snprintf(buf, size, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
    else snprintf(buf, size, "%dm%02ds", (int)s / 60, (int)s % 60);
}

/* mkdir -p: create dir and its missing parents. */
static int make_dirs(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) && errno != EEXIST) return an_error("%s: cannot create folder: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0755) && errno != EEXIST) return an_error("%s: cannot create folder: %s", path, strerror(errno));
    return 0;
}

typedef struct History { int n; double loss[4096], top1[4096], top5[4096]; } History;

/* Keep log.csv lines of epochs <= upto (a resumed run may be behind its log), read the history. */
static int log_reopen(const char *path, int upto, History *h) {
    h->n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512], *kept = NULL;
    size_t kept_len = 0;
    while (fgets(line, sizeof line, f)) {
        int epoch;
        double lr, loss, terr, vloss, t1, t5;
        int ok = sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &epoch, &lr, &loss, &terr, &vloss, &t1, &t5) == 7;
        if (ok && (epoch > upto || epoch < 1 || epoch > 4096)) continue;
        if (ok) h->loss[epoch - 1] = loss, h->top1[epoch - 1] = 100 * t1, h->top5[epoch - 1] = 100 * t5, h->n = epoch;
        size_t len = strlen(line);
        char *grown = realloc(kept, kept_len + len + 1);
        if (!grown) { free(kept); fclose(f); return an_error("%s: out of memory", path); }
        kept = grown;
        memcpy(kept + kept_len, line, len + 1);
        kept_len += len;
    }
    fclose(f);
    f = fopen(path, "w");
    if (!f) { free(kept); return an_error("%s: cannot write: %s", path, strerror(errno)); }
    if (kept) fputs(kept, f);
    free(kept);
    return fclose(f) ? an_error("%s: cannot write", path) : 0;
}

typedef struct Run {
    const TrainConfig *cfg;
    Dataset train, val;
    Net net;
    float *momentum;
    Norm norm;
    TrainState st;
    int *train_all, *val_idx;
    int skipped;
    int n_train, n_val;
    char recipe[16];
    char log_path[1024], ckpt_path[1024], best_path[1024], curves_path[1024];
    History hist;
    long saved_step; /* step of the last checkpoint written or resumed from; -1: none yet */
    const char *kept_path; /* that checkpoint */
    /* several processes: rank 0 alone prints and writes (quiet on the others) */
    int par, rank, size, quiet;
    int *counts;     /* (size) images of each rank in the current step (data parallel) */
    Net full;        /* towers: the whole network (weights for checkpoints; built for batch 1) */
    float *full_momentum;
    Towers *towers;
    float *lars_scale; /* (nlayers) LARS: each layer's rate multiplier of the step */
    double *lars_norms;
    int stop_all;    /* a stop agreed by every rank in the last step */
    /* this session's training steps: count, images, seconds; and (several ranks) the seconds this
     * rank waited for the others within them and the bytes it sent */
    long steps_done;
    double images_done, step_seconds, step_wait, step_bytes, last_images;
} Run;

static int lead(const Run *r) { return r->rank == 0; }

/* Every rank learns whether any failed (rc != 0 on some rank); a rank that did not fail gets an
 * error naming the one that did (which printed its own message). 0 or -1. */
static int agree(const Run *r, int rc, const char *what) {
    int failed = rc != 0;
    if (r->size == 1) return rc;
    if (par_max_int(&failed)) return -1;
    g_error_agreed = failed;
    if (failed && !rc) return an_error("rank %d: stopping: %s failed on another rank", r->rank, what);
    return failed ? -1 : 0;
}

/* The one-line error of a run that went non-finite: what happened, and which checkpoint is kept. */
static int diverged(const Run *r, const char *what) {
    char kept[1200];
    if (r->saved_step >= 0) snprintf(kept, sizeof kept, "kept the last checkpoint, %s (step %ld)", r->kept_path, r->saved_step);
    else snprintf(kept, sizeof kept, "no checkpoint was written yet");
    g_error_agreed = 1; /* every rank sees the same numbers and stops here too */
    return an_error("training diverged in step %ld (epoch %d): %s; stopped without saving (try a lower --lr); %s",
                    r->st.step + 1, r->st.epoch + 1, what, kept);
}

/* The whole network's weights and momentum to write: the towers' gathered on rank 0. */
static const Net *whole_net(const Run *r) { return r->towers ? &r->full : &r->net; }

/* The flags that define this run, "--flag=value" a line, for `train --resume FILE` alone (the
 * checkpoint's train_flags): not those of one session (--max-steps, --quiet, --resume, --init,
 * --reset, --lr: the rate is state), nor the machine's (--device, --precision, --parallel).
 * nor the model (the checkpoint names it and holds its description). Paths are made absolute, so
 * the run continues from any folder. malloc'd, or NULL. */
static char *run_flags(const TrainConfig *cfg) {
    char *text = NULL, abs_data[4096], abs_out[4096];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    fprintf(f, "--data=%s\n--out=%s\n", realpath(cfg->data, abs_data) ? abs_data : cfg->data,
            realpath(cfg->out_dir, abs_out) ? abs_out : cfg->out_dir);
    fprintf(f, "--epochs=%d\n--batch=%d\n--momentum=%.9g\n--weight-decay=%.9g\n--recipe=%s\n", cfg->epochs, cfg->batch,
            cfg->momentum, cfg->weight_decay, cfg->recipe);
    fprintf(f, "--patience=%d\n--max-drops=%d\n--lighting=%.9g\n--val-crops=%d\n", cfg->patience, cfg->max_drops,
            cfg->lighting, cfg->val_crops);
    if (cfg->n_drop_epochs) {
        fprintf(f, "--lr-drops=");
        for (int i = 0; i < cfg->n_drop_epochs; i++) fprintf(f, "%s%d", i ? "," : "", cfg->drop_epochs[i]);
        fprintf(f, "\n");
    }
    if (cfg->limit_train) fprintf(f, "--limit-train=%d\n", cfg->limit_train);
    if (cfg->limit_val) fprintf(f, "--limit-val=%d\n", cfg->limit_val);
    if (cfg->val_split > 0) fprintf(f, "--val-split=%.9g\n", cfg->val_split);
    if (cfg->save_every) fprintf(f, "--save-every=%d\n", cfg->save_every);
    if (cfg->save_best_only) fprintf(f, "--save-best-only\n");
    if (cfg->no_random_crop) fprintf(f, "--no-random-crop\n");
    if (cfg->no_flip) fprintf(f, "--no-flip\n");
    if (cfg->no_mean) fprintf(f, "--no-mean\n");
    if (cfg->freeze) fprintf(f, "--freeze=%s\n", cfg->freeze);
    if (cfg->warmup > 0) fprintf(f, "--warmup=%.9g\n", cfg->warmup);
    if (cfg->lars) fprintf(f, "--optimizer=lars\n--lars-eta=%.9g\n", cfg->lars_eta);
    fclose(f);
    if (len) text[len - 1] = 0; /* no newline after the last */
    return text;
}

/* The weights on the host (and, with towers, gathered on rank 0), then the training checkpoint;
 * at an epoch's end with --save-best-only only the former (best.safetensors is written after),
 * and a checkpoint an earlier stop left is removed, being older than the run. */
static int save(Run *r, int epoch_end) {
    int rc = net_from_gpu(&r->net, r->momentum);
    if (!rc && r->towers) rc = towers_to_full(&r->net, &r->full, r->rank, r->momentum, r->full_momentum);
    if (rc) return -1; /* an MPI or GPU failure of this rank */
    if (epoch_end && r->cfg->save_best_only) {
        if (lead(r)) remove(r->ckpt_path);
        r->saved_step = -1;
        return 0;
    }
    if (lead(r)) {
        long bad = net_nonfinite_params(whole_net(r)); /* never write a checkpoint that cannot be resumed */
        if (bad) {
            char what[96];
            snprintf(what, sizeof what, "%ld weights are NaN or infinite", bad);
            rc = diverged(r, what);
        } else {
            char *flags = run_flags(r->cfg);
            rc = flags ? checkpoint_save_run(r->ckpt_path, whole_net(r), r->towers ? r->full_momentum : r->momentum,
                                             &r->st, &r->norm, r->recipe, flags)
                       : an_error("out of memory");
            free(flags);
        }
    }
    if (agree(r, rc, "writing the checkpoint")) return -1;
    r->saved_step = r->st.step, r->kept_path = r->ckpt_path;
    return 0;
}

/* Resuming into another --out than the checkpoint's folder: its log.csv, best.safetensors and
 * curves.png come along (copied; files already in out are kept), so the new folder holds the whole
 * run. 0, or -1 when a copy fails. */
static int carry_run_files(const char *resume, const char *out, int quiet) {
    char from[4096], real_from[4096], real_out[4096];
    snprintf(from, sizeof from, "%s", resume);
    char *slash = strrchr(from, '/');
    if (slash) *slash = 0;
    else snprintf(from, sizeof from, ".");
    if (!realpath(from, real_from) || !realpath(out, real_out) || !strcmp(real_from, real_out)) return 0;
    static const char *files[] = {"log.csv", "best.safetensors", "curves.png"};
    char carried[128] = "";
    for (int i = 0; i < 3; i++) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/%s", real_from, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", real_out, files[i]);
        FILE *in = fopen(src, "rb"), *probe = fopen(dst, "rb");
        if (probe) fclose(probe);
        if (!in || probe) {
            if (in) fclose(in);
            continue;
        }
        FILE *o = fopen(dst, "wb");
        if (!o) { fclose(in); return an_error("%s: cannot write: %s", dst, strerror(errno)); }
        char buf[1 << 16];
        size_t n;
        int bad = 0;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0) bad |= fwrite(buf, 1, n, o) != n;
        bad |= ferror(in);
        fclose(in);
        if (fclose(o) || bad) return an_error("%s: cannot copy to %s", src, dst);
        snprintf(carried + strlen(carried), sizeof carried - strlen(carried), "%s%s", carried[0] ? ", " : "", files[i]);
    }
    if (!quiet && carried[0]) fprintf(stderr, "resuming into %s: carried %s from %s\n", out, carried, real_from);
    char src_log[4200];
    snprintf(src_log, sizeof src_log, "%s/log.csv", real_from);
    FILE *l = fopen(src_log, "r");
    if (l) fclose(l);
    else if (!quiet) fprintf(stderr, "note: %s has no log.csv: the log in %s starts where this run resumes\n", real_from, out);
    return 0;
}

static int setup(Run *r) {
    const TrainConfig *cfg = r->cfg;
    StFile file = {0};
    const char *model = cfg->model;
    const ModelSpec *base = NULL;
    if (train_config_check(cfg)) return -1;
    r->par = cfg->parallel, r->rank = par_rank(), r->size = par_size();
    r->quiet = cfg->quiet || r->rank != 0;
    if (r->par == PARALLEL_TOWERS && r->size != 2)
        return an_error("train: --parallel towers runs the paper's two towers on exactly 2 ranks (mpirun -np 2), not %d",
                        r->size);
    if (r->par == PARALLEL_TOWERS && cfg->gpu) return an_error("train: --parallel towers runs on the CPU (no --device cuda)");
    if (cfg->lars && cfg->gpu) return an_error("train: --optimizer lars runs on the CPU (no --device cuda)");
    if (r->par == PARALLEL_DATA && !(r->counts = calloc((size_t)r->size, sizeof(int)))) return an_error("out of memory");
    if (!cfg->data) return an_error("train: --data is required");
    if (cfg->init && cfg->resume) return an_error("train: --init starts a new run; --resume continues one (not both)");
    if (cfg->reset && !cfg->init) return an_error("train: --reset needs --init (a fresh run initialises every layer)");
    if (cfg->freeze && r->par == PARALLEL_TOWERS) return an_error("train: --freeze with --parallel towers is not supported");
    if (cfg->freeze && cfg->gpu) return an_error("train: --freeze runs on the CPU (no --device cuda)");
    if (!cfg->out_dir) return an_error("train: --out is required");
    if (cfg->save_best_only && cfg->save_every)
        return an_error("train: --save-best-only writes no checkpoints along the way: not with --save-every");
    if (cfg->resume) { /* the model of a resumed run comes from its checkpoint */
        if (st_read(cfg->resume, &file)) return -1;
        const char *m = st_meta(&file, "model"), *rc = st_meta(&file, "recipe");
        if (!m || !rc) { st_free(&file); return an_error("%s: not a training checkpoint (no model or recipe)", cfg->resume); }
        const ModelSpec *given = model ? model_find(model) : NULL; /* a name, or a description file */
        if (model && (!given || strcmp(given->name, m) != 0)) {
            if (given) an_error("%s: checkpoint is for model '%s', not '%s'", cfg->resume, m, given->name);
            st_free(&file);
            return -1;
        }
        snprintf(r->recipe, sizeof r->recipe, "%s", rc);
        st_free(&file);
        const ModelSpec *found = given ? given : checkpoint_model(cfg->resume); /* built in, or stored with it */
        if (!found) return -1;
        base = found;
    } else {
        if (!model) return an_error("train: --model is required (%s)", model_names());
        snprintf(r->recipe, sizeof r->recipe, "%s", cfg->recipe);
        base = model_find(model);
    }
    ModelSpec spec;
    if (!base || model_apply_recipe(base, r->recipe, &spec)) return -1;
    if (dataset_load_split(&r->train, cfg->data, 1, cfg->val_split, DATASET_SPLIT_SEED) ||
        dataset_load_split(&r->val, cfg->data, 0, cfg->val_split, DATASET_SPLIT_SEED))
        return -1;
    if (r->val.classes > r->train.classes) r->train.classes = r->val.classes;
    if (make_dirs(cfg->out_dir)) return -1;
    if (cfg->resume && lead(r) && carry_run_files(cfg->resume, cfg->out_dir, r->quiet)) return -1;
    snprintf(r->log_path, sizeof r->log_path, "%s/log.csv", cfg->out_dir);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/checkpoint.safetensors", cfg->out_dir);
    snprintf(r->best_path, sizeof r->best_path, "%s/best.safetensors", cfg->out_dir);
    snprintf(r->curves_path, sizeof r->curves_path, "%s/curves.png", cfg->out_dir);
    int in_c = r->train.c;
    /* towers: the whole network is read or initialised as one, then each rank takes its half */
    Net *whole = r->par == PARALLEL_TOWERS ? &r->full : &r->net;
    float **whole_momentum = r->par == PARALLEL_TOWERS ? &r->full_momentum : &r->momentum;
    int whole_batch = r->par == PARALLEL_TOWERS ? 1 : cfg->batch;
    if (cfg->resume) {
        if (checkpoint_load_net(cfg->resume, &spec, whole_batch, whole, &r->norm, &file)) return -1;
        if (whole->classes != r->train.classes || whole->in_c != in_c) {
            st_free(&file);
            return an_error("%s: checkpoint has %d channels and %d classes, the dataset %d and %d", cfg->resume,
                            whole->in_c, whole->classes, in_c, r->train.classes);
        }
        if (!(*whole_momentum = an_alloc(whole->nparams * sizeof(float), "momentum"))) { st_free(&file); return -1; }
        int rc = checkpoint_read_state(cfg->resume, &file, whole, *whole_momentum, &r->st);
        st_free(&file);
        if (rc) return -1;
        if (cfg->lr_set) r->st.lr = cfg->lr;
        r->saved_step = r->st.step, r->kept_path = cfg->resume;
    } else {
        /* models without a fixed input size take in-memory images as they are, and crops of 224
         * from the 256x256 images of folders and shards */
        int images = r->train.kind == DATASET_FOLDER || r->train.kind == DATASET_SHARD;
        if (net_create(whole, &spec, in_c, r->train.classes, images ? 224 : r->train.h, whole_batch)) return -1;
        if (!(*whole_momentum = an_alloc(whole->nparams * sizeof(float), "momentum"))) return -1;
        net_init(whole, cfg->seed);
        unsigned char reset[MAX_LAYERS];
        if (cfg->init && (finetune_layers(whole, cfg->reset, "--reset", reset) || finetune_init(whole, cfg->init, reset)))
            return -1;
        if (norm_for_dataset(&r->train, in_c, 1000, &r->norm)) return -1;
        if (spec.paper_input_scale > 0.0f) r->norm.scale = spec.paper_input_scale;
        if (cfg->no_mean && r->norm.paper) /* keep it consistent for eval: a zero mean image */
            memset(r->norm.mean_image, 0, (size_t)3 * 256 * 256 * sizeof(float));
        r->st = (TrainState){.lr = cfg->lr, .seed = cfg->seed, .best_err = 1.0};
    }
    /* the classes' names go with every checkpoint: the dataset's (a resumed run's may be older) */
    if (r->train.class_names && net_set_class_names(whole, r->train.class_names)) return -1;
    if (r->par == PARALLEL_TOWERS) { /* this rank's tower of the whole network */
        ModelSpec tspec;
        if (towers_spec(&r->full, r->rank, &tspec) ||
            net_create(&r->net, &tspec, in_c, r->full.classes, r->full.in_size, cfg->batch) ||
            towers_attach(&r->net, &r->full, r->rank, &r->towers))
            return -1;
        if (!(r->momentum = an_alloc(r->net.nparams * sizeof(float), "momentum"))) return -1;
        towers_from_full(&r->net, &r->full, r->rank, r->momentum, r->full_momentum);
    }
    if (finetune_layers(&r->net, cfg->freeze, "--freeze", r->net.frozen)) return -1;
    if (r->par == PARALLEL_DATA && !cfg->gpu) r->net.grads_ready = par_grads_ready; /* the GPU's: NCCL's own */
    if (cfg->lars && (!(r->lars_scale = calloc(MAX_LAYERS, sizeof(float))) ||
                      !(r->lars_norms = calloc(2 * MAX_LAYERS, sizeof(double)))))
        return an_error("out of memory");
    if (cfg->gpu && net_to_gpu(&r->net, cfg->gpu_math, r->momentum)) return -1;
    if (cfg->gpu && r->par == PARALLEL_DATA) { /* NCCL: rank 0's id to every rank, then one communicator */
        unsigned char id[128];
        int rc = lead(r) ? gpu_nccl_unique_id(id, sizeof id) : 0;
        if (agree(r, rc, "making the NCCL id") || par_bcast(id, sizeof id, 0) ||
            gpu_net_dp_start(r->net.gpu, id, r->rank, r->size))
            return -1;
    }
    r->train_all = subset(r->train.n, cfg->limit_train, &r->n_train);
    r->val_idx = subset(r->val.n, cfg->limit_val, &r->n_val);
    if (!r->train_all || !r->val_idx) return an_error("out of memory");
    if (r->n_train == 0) return an_error("%s: the training split is empty", cfg->data);
    if (!lead(r)) return 0; /* the log is rank 0's */
    if (log_reopen(r->log_path, r->st.epoch, &r->hist)) return -1;
    if (r->st.epoch == 0 && r->st.step_in_epoch == 0) {
        FILE *f = fopen(r->log_path, "w");
        if (!f) return an_error("%s: cannot write: %s", r->log_path, strerror(errno));
        fprintf(f, "epoch,lr,train_loss,train_top1_err,val_loss,val_top1_err,val_top5_err,images_per_s,epoch_seconds,"
                   "val10_top1_err,val10_top5_err\n");
        fclose(f);
    }
    return 0;
}

static void progress(const Run *r, int epoch_steps, double t_start, int steps_this_session, double now) {
    const TrainState *st = &r->st;
    double ips = steps_this_session ? (double)steps_this_session * r->cfg->batch / (now - t_start) : 0.0;
    double steps_left = (double)(r->cfg->epochs - st->epoch - 1) * epoch_steps + (epoch_steps - st->step_in_epoch);
    char eta[32];
    fmt_time(ips > 0 ? steps_left * r->cfg->batch / ips : 0, eta, sizeof eta);
    int tty = isatty(2);
    fprintf(stderr, "%sepoch %d/%d  step %d/%d  loss %.4f  train err %.2f%%  lr %.4g  %.0f img/s  ETA %s%s",
            tty ? "\r" : "", st->epoch + 1, r->cfg->epochs, st->step_in_epoch, epoch_steps,
            st->seen ? st->loss_sum / st->seen : 0.0, st->seen ? 100.0 * st->err_sum / st->seen : 0.0, st->lr,
            ips, eta, tty ? "   " : "\n");
}

/* Validation with `views` views. Data parallel: each rank evaluates its share of the images and
 * the sums are combined; towers: both ranks run the same images through their halves. */
static int validate(Run *r, int views, EvalResult *ev) {
    int progress = !r->quiet; /* a line every second on a terminal, every 15 s in a log */
    if (r->par != PARALLEL_DATA)
        return agree(r, evaluate(&r->net, &r->val, r->val_idx, r->n_val, &r->norm, views, progress, ev), "validation");
    int lo = (int)((long)r->n_val * r->rank / r->size), hi = (int)((long)r->n_val * (r->rank + 1) / r->size);
    EvalResult mine = {0};
    int rc = hi > lo ? evaluate(&r->net, &r->val, r->val_idx + lo, hi - lo, &r->norm, views, progress, &mine) : 0;
    if (agree(r, rc, "validation")) return -1;
    double v[6] = {mine.top1_err * mine.count, mine.top5_err * mine.count, mine.loss * mine.count, (double)mine.count,
                   mine.skipped, (double)mine.nonfinite};
    if (par_sum_doubles(v, 6)) return -1;
    double c = v[3] > 0 ? v[3] : 1.0;
    *ev = (EvalResult){.top1_err = v[0] / c, .top5_err = v[1] / c, .loss = v[2] / c, .count = (long)v[3],
                       .skipped = (int)v[4], .nonfinite = (long)v[5]};
    return 0;
}

/* Validation, log line, schedule, curves and checkpoints at the end of an epoch. */
static int end_epoch(Run *r, double ips) {
    TrainState *st = &r->st;
    const TrainConfig *cfg = r->cfg;
    EvalResult ev = {0}, ev10 = {0};
    if (validate(r, 1, &ev)) return -1;
    if (cfg->val_crops == 10 && validate(r, 10, &ev10)) return -1;
    if (ev.nonfinite || ev10.nonfinite) { /* a NaN network is no best epoch */
        char what[128];
        snprintf(what, sizeof what, "the network's outputs are NaN or infinite for %ld validation images",
                 ev.nonfinite > ev10.nonfinite ? ev.nonfinite : ev10.nonfinite);
        return diverged(r, what);
    }
    double loss = st->loss_sum / st->seen, terr = st->err_sum / st->seen;
    st->epoch++;
    char top5[48] = "", top5_10[48] = ""; /* with 5 classes or fewer every image is in the top 5 */
    if (whole_net(r)->classes > 5) {
        snprintf(top5, sizeof top5, ", top-5 error %.2f%%", 100 * ev.top5_err);
        snprintf(top5_10, sizeof top5_10, ", top-5 error %.2f%%", 100 * ev10.top5_err);
    }
    if (!r->quiet)
        fprintf(stderr, "%sepoch %d: train loss %.4f, train top-1 error %.2f%%; validation (%ld images) top-1 error "
                "%.2f%%%s; %.0f img/s, %.0f s\n", isatty(2) ? "\r" : "", st->epoch, loss,
                100 * terr, ev.count, 100 * ev.top1_err, top5, ips, st->seconds);
    if (!r->quiet && cfg->val_crops == 10)
        fprintf(stderr, "epoch %d: validation with 10 crops: top-1 error %.2f%%%s\n", st->epoch, 100 * ev10.top1_err,
                top5_10);
    r->skipped += ev.skipped;
    if (lead(r)) {
        FILE *f = fopen(r->log_path, "a");
        if (!f) return an_error("%s: cannot write: %s", r->log_path, strerror(errno));
        fprintf(f, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f,%.1f", st->epoch, st->lr, loss, terr, ev.loss, ev.top1_err,
                ev.top5_err, ips, st->seconds);
        if (cfg->val_crops == 10) fprintf(f, ",%.6f,%.6f\n", ev10.top1_err, ev10.top5_err);
        else fprintf(f, ",,\n");
        if (fclose(f)) return an_error("%s: cannot write", r->log_path);
    }
    if (st->epoch <= 4096) {
        r->hist.loss[st->epoch - 1] = loss, r->hist.top1[st->epoch - 1] = 100 * ev.top1_err;
        r->hist.top5[st->epoch - 1] = 100 * ev.top5_err, r->hist.n = st->epoch;
    }
    int improved = ev.top1_err < st->best_err;
    if (improved) st->best_err = ev.top1_err, st->bad_epochs = 0;
    else st->bad_epochs++;
    /* learning-rate schedule: given epochs, or divide by 10 when validation error stops improving */
    int drop = 0;
    if (cfg->n_drop_epochs) {
        for (int i = 0; i < cfg->n_drop_epochs; i++) drop |= cfg->drop_epochs[i] == st->epoch;
    } else if (st->bad_epochs >= cfg->patience && st->drops < cfg->max_drops) {
        drop = 1;
    }
    if (drop) {
        st->lr /= 10.0f, st->drops++, st->bad_epochs = 0;
        if (!r->quiet) fprintf(stderr, "learning rate divided by 10: now %g\n", st->lr);
    }
    st->step_in_epoch = 0, st->loss_sum = st->err_sum = 0.0, st->seen = 0, st->seconds = 0.0;
    if (save(r, 1)) return -1; /* (towers: it gathered the whole network on rank 0) */
    int rc = 0;
    if (lead(r)) {
        /* best_err still at its start (100%): no epoch has done better, and this one is the best so far */
        if (improved || st->best_err >= 1.0) rc = checkpoint_save(r->best_path, whole_net(r), NULL, NULL, &r->norm, NULL);
        if (!rc) rc = plot_curves(r->curves_path, r->hist.n, r->hist.loss, r->hist.top1, r->hist.top5);
    }
    return agree(r, rc, "writing best.safetensors and curves.png");
}

/* The step's learning rate: the schedule's, during warm-up (Goyal et al.) scaled by the share of
 * the warm-up steps done, so it rises linearly from lr / steps to lr. */
static float step_lr(const Run *r, int epoch_steps) {
    double total = (double)r->cfg->warmup * epoch_steps, done = (double)r->st.step + 1;
    return total > 0 && done < total ? (float)(r->st.lr * done / total) : r->st.lr;
}

/* LARS (You, Gitman, Ginsburg 2017): each layer's weights step at lr x eta ||w|| / (||g|| +
 * weight_decay ||w||) (1 where a norm is 0); biases at the recipe's rate. The towers sum their
 * halves' squares, so the ratio is the whole layer's. 0 or -1. */
static int lars_scales(Run *r) {
    Net *net = &r->net;
    double *nn = r->lars_norms;
    for (int i = 0; i < net->nlayers; i++) {
        const Layer *l = &net->layers[i];
        double w2 = 0.0, g2 = 0.0;
        const float *w = net->params + l->w_off, *g = net->grads + l->w_off;
#pragma omp parallel for simd schedule(static) reduction(+ : w2, g2)
        for (size_t j = 0; j < l->w_size; j++) w2 += (double)w[j] * w[j], g2 += (double)g[j] * g[j];
        nn[2 * i] = w2, nn[2 * i + 1] = g2;
    }
    if (r->towers && par_sum_doubles(nn, 2 * net->nlayers)) return -1;
    for (int i = 0; i < net->nlayers; i++) {
        r->lars_scale[i] = sgd_lars_ratio(sqrt(nn[2 * i]), sqrt(nn[2 * i + 1]), r->cfg->lars_eta, r->cfg->weight_decay);
    }
    return 0;
}

/* The logits' gradient times f: this rank's mean over its images becomes its share of the mean
 * over every rank's. */
static void scale_dlogits(Net *net, int n, float f) {
    float *d = net->dlogits;
    for (size_t i = 0; i < (size_t)n * net->classes; i++) d[i] *= f;
}

/* One SGD step on batch b (this rank's part of the global batch). *taken: 0 when no rank had an
 * image (no step). Sets r->stop_all. 0, or -1 with an_error. */
static int train_step(Run *r, const Batch *b, int epoch_steps, int *taken) {
    const TrainConfig *cfg = r->cfg;
    TrainState *st = &r->st;
    Net *net = &r->net;
    int n = b->n;
    long n_all = n, row0 = 0;
    if (r->par == PARALLEL_DATA) { /* where this rank's images sit in the global batch */
        if (par_allgather_int(n, r->counts)) return -1;
        n_all = 0;
        for (int q = 0; q < r->size; q++) row0 += q < r->rank ? r->counts[q] : 0, n_all += r->counts[q];
        par_grads_start(net->grads);
    }
    *taken = n_all > 0;
    if (!n_all) return 0;
    net->row0 = row0;
    float loss = 0.0f;
    double err = 0.0;
    if (n > 0) {
        int chunked = net_chunked_ok(net, n); /* small networks: chunks of the batch through all layers */
        if (net_set_input(net, b->x, n) ||
            (chunked ? net_train_chunked(net, n, b->labels, &loss)
                     : !net_forward(net, n, 1, an_hash64(st->seed, 0x100000000ull + (uint64_t)st->step)) ||
                           net_loss(net, b->labels, &loss)))
            return -1;
        if (n != n_all && r->par == PARALLEL_DATA) {
            if (net->gpu && gpu_net_scale_dlogits(net->gpu, (float)n / (float)n_all)) return -1;
            if (!net->gpu) scale_dlogits(net, n, (float)n / (float)n_all);
        }
        for (int i = 0; i < n; i++)
            err += true_class_rank(net->probs + (size_t)i * net->classes, net->classes, b->labels[i]) > 0;
        if (!chunked && isfinite(loss) && net_backward(net)) return -1; /* a NaN loss: no update, the ranks stop below */
    } else { /* none of this step's images here: a zero gradient in the same all-reduces */
        if (net->gpu) /* NCCL's sums run inside the backward pass, which needs an image */
            return an_error("rank %d: no images in step %ld (on the GPU every rank needs at least one image of every "
                            "batch: use fewer ranks or a larger batch)", r->rank, st->step + 1);
        memset(net->grads, 0, net->nparams * sizeof(float));
        for (int i = net->nlayers - 1; i >= 0; i--)
            if (net->layers[i].w_size) par_grads_ready(NULL, net->layers[i].w_off, net->layers[i].w_size + net->layers[i].b_size);
    }
    if (r->par == PARALLEL_DATA && par_grads_wait()) return -1;
    int sgd_rc = 0;
    char sgd_msg[256] = "";
    double local_loss = (double)loss * n;
    if (isfinite(local_loss)) {
        if (cfg->lars && lars_scales(r)) return -1;
        sgd_rc = net_sgd_scaled(net, r->momentum, step_lr(r, epoch_steps), cfg->momentum, cfg->weight_decay,
                                cfg->lars ? r->lars_scale : NULL);
        if (sgd_rc && net->gpu) return -1; /* a GPU error, not a diverged run */
        if (sgd_rc) snprintf(sgd_msg, sizeof sgd_msg, "%s", an_last_error());
    }
    /* every rank the same step statistics and decisions (towers: the loss is rank 0's, alike on both) */
    int counts_here = r->par != PARALLEL_TOWERS || lead(r);
    double v[5] = {counts_here ? local_loss : 0.0, counts_here ? err : 0.0, counts_here ? n : 0, g_stop ? 1 : 0,
                   sgd_rc ? 1 : 0};
    if (par_sum_doubles(v, 5)) return -1;
    if (!isfinite(v[0])) return diverged(r, isnan(v[0]) ? "the loss is NaN" : "the loss is infinite");
    if (v[4] > 0) return diverged(r, sgd_rc ? sgd_msg : "weights became NaN or infinite on another rank");
    st->loss_sum += v[0], st->err_sum += v[1], st->seen += (long)v[2], r->last_images = v[2];
    r->stop_all = v[3] > 0;
    return 0;
}

/* One epoch's batches from the loader, from step_in_epoch on. Returns 0 (epoch done or stop
 * requested: *stopped set), -1 on error. */
static int train_epoch(Run *r, double t_start, double *last_print, int *steps_this_session, int *stopped) {
    const TrainConfig *cfg = r->cfg;
    TrainState *st = &r->st;
    LoaderConfig lc = {.ds = &r->train, .indices = r->train_all, .count = r->n_train, .batch = cfg->batch,
                       .mode = LOADER_TRAIN, .seed = st->seed, .epoch = st->epoch, .first_batch = st->step_in_epoch,
                       .threads = omp_get_max_threads(), .prefetch = 3,
                       .input = norm_input_config(&r->norm, r->net.in_c, r->net.in_size, !cfg->no_random_crop,
                                                  !cfg->no_flip, cfg->lighting),
                       .part = r->par == PARALLEL_DATA ? r->rank : 0, .parts = r->par == PARALLEL_DATA ? r->size : 0};
    if (r->net.gpu) lc.alloc_host = cuda_host_alloc, lc.free_host = cuda_host_free; /* pinned: DMA to the GPU */
    Loader *loader;
    if (loader_start(&loader, &lc)) return -1;
    int epoch_steps = loader_batches(loader), rc = 0;
    double t_step = an_now();
    Batch *b;
    *stopped = 0;
    while ((b = loader_next(loader))) {
        int taken = 0;
        ParStats p0 = par_stats();
        double t0 = an_now();
        if (train_step(r, b, epoch_steps, &taken)) { rc = -1; break; }
        ParStats p1 = par_stats();
        r->step_seconds += an_now() - t0, r->step_wait += p1.wait_seconds - p0.wait_seconds;
        r->step_bytes += p1.bytes - p0.bytes, r->steps_done += taken, r->images_done += taken ? r->last_images : 0;
        int number = b->number;
        loader_release(loader, b);
        /* the batch's own number: a batch whose every file failed to decode is never handed out
         * (with several ranks it is, and no rank counts it) */
        st->step_in_epoch = number + 1;
        if (!taken) continue;
        st->step++, (*steps_this_session)++;
        double now = an_now();
        st->seconds += now - t_step, t_step = now;
        if (!r->quiet && (now - *last_print > (isatty(2) ? 1.0 : 15.0) || st->step_in_epoch == epoch_steps)) {
            progress(r, epoch_steps, t_start, *steps_this_session, now);
            *last_print = now;
        }
        if (st->step_in_epoch == epoch_steps) break; /* the epoch end saves */
        int stop = r->stop_all || (cfg->max_steps && st->step >= cfg->max_steps);
        if (stop || (cfg->save_every && st->step % cfg->save_every == 0)) {
            if (save(r, 0)) { rc = -1; break; }
            if (stop) { *stopped = 1; break; }
        }
    }
    if (!rc && !*stopped && st->step_in_epoch < epoch_steps) {
        if (loader_error(loader)) rc = an_error("%s", loader_error(loader));
        else st->step_in_epoch = epoch_steps; /* the last batches held only unreadable files */
    }
    r->skipped += loader_skipped(loader);
    loader_stop(loader);
    return rc;
}

static int run_epochs(Run *r) {
    const TrainConfig *cfg = r->cfg;
    TrainState *st = &r->st;
    double t_start = an_now(), last_print = 0.0;
    int steps_this_session = 0, stopped = 0;
    if (cfg->max_steps && st->step >= cfg->max_steps) { /* a resumed run already there: not one step more */
        if (!r->quiet)
            fprintf(stderr, "already at step %ld (--max-steps %ld): nothing to train; %s is unchanged\n", st->step,
                    cfg->max_steps, r->ckpt_path);
        return 0;
    }
    while (st->epoch < cfg->epochs) {
        if (train_epoch(r, t_start, &last_print, &steps_this_session, &stopped)) return -1;
        if (stopped) {
            if (!r->quiet) fprintf(stderr, "\nstopped at step %ld; continue with --resume %s\n", st->step, r->ckpt_path);
            return 0;
        }
        double ips = st->seconds > 0 ? st->seen / st->seconds : 0.0;
        if (end_epoch(r, ips)) return -1;
        int stop_now = g_stop; /* every rank the same answer */
        if (r->size > 1 && par_max_int(&stop_now)) return -1;
        if (stop_now || (cfg->max_steps && st->step >= cfg->max_steps)) {
            if (!r->quiet && st->epoch < cfg->epochs)
                fprintf(stderr, "stopped at step %ld; continue with --resume %s\n", st->step, r->ckpt_path);
            return 0;
        }
    }
    if (lead(r)) { /* the summary, with --quiet too: it is the result, not progress */
        fprintf(stderr, "done: %d epochs, best validation top-1 error %.2f%% (accuracy %.2f%%); wrote %s, %s, %s%s%s\n",
                st->epoch, 100 * st->best_err, 100 * (1 - st->best_err), r->log_path, r->curves_path, r->best_path,
                cfg->save_best_only ? "" : ", ", cfg->save_best_only ? "" : r->ckpt_path);
        if (r->skipped) fprintf(stderr, "%d image files could not be read and were skipped\n", r->skipped);
    }
    return 0;
}

int train_run(const TrainConfig *cfg) {
    Run *r = calloc(1, sizeof *r);
    if (!r) return an_error("out of memory");
    r->cfg = cfg;
    r->saved_step = -1;
    g_stop = 0, g_error_agreed = 0;
    int rc = setup(r);
    if (r->size > 1) rc = agree(r, rc, "setting up"); /* no rank starts training alone */
    if (!rc && !r->quiet) {
        net_print_table(whole_net(r), stderr);
        char par[128] = "";
        if (r->par == PARALLEL_DATA)
            snprintf(par, sizeof par, "; data parallel over %d ranks (%d images each)", r->size, cfg->batch / r->size);
        if (r->par == PARALLEL_TOWERS) snprintf(par, sizeof par, "; the two towers on ranks 0 and 1");
        fprintf(stderr, "training on %d images (%d classes), validating on %d; batch %d, lr %g%s%s, recipe %s, %s, "
                "%d threads%s%s\n", r->n_train, r->net.classes, r->n_val, cfg->batch, r->st.lr,
                cfg->warmup > 0 ? " after warm-up" : "", cfg->lars ? " (LARS)" : "", r->recipe,
                cfg->gpu ? (cfg->gpu_math == 1 ? "GPU, TF32" : cfg->gpu_math == 2 ? "GPU, bf16" : "GPU, float32") : gemm_bf16() ? "bf16 products" : "float32",
                omp_get_max_threads(), r->size > 1 ? " per rank" : "", par);
    }
    if (!rc) rc = run_epochs(r);
    if (!rc && !r->quiet && r->steps_done) {
        fprintf(stderr, "steps: %ld in %.1f s, %.1f images/s", r->steps_done, r->step_seconds,
                r->images_done / r->step_seconds);
        if (r->size > 1) /* the waits: exchanges not hidden behind computation, and the ranks' imbalance */
            fprintf(stderr, "; rank 0 waited for the others %.1f s (%.1f%% of the steps) and sent %.2f MB a step",
                    r->step_wait, 100.0 * r->step_wait / r->step_seconds, r->step_bytes / r->steps_done / 1e6);
        fprintf(stderr, "\n");
    }
    net_free(&r->net);
    an_free(r->momentum);
    net_free(&r->full);
    an_free(r->full_momentum);
    towers_free(r->towers);
    free(r->counts), free(r->lars_scale), free(r->lars_norms);
    dataset_free(&r->train), dataset_free(&r->val);
    free(r->train_all), free(r->val_idx);
    norm_free(&r->norm);
    free(r);
    return rc;
}
