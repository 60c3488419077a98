/* train.c: the training loop: data order, steps, progress, validation, schedule, logs, checkpoints. */
#include "train.h"
#include "../cpu/gemm.h"
#include "../cuda/cuda_api.h"
#include "../data/dataset.h"
#include "../model/model.h"
#include "../util/common.h"
#include "../util/png.h"
#include "batch.h"
#include "checkpoint.h"
#include "eval.h"
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

void train_config_defaults(TrainConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->recipe = "caffe";
    cfg->epochs = 10, cfg->batch = 128;
    cfg->lr = 0.01f, cfg->momentum = 0.9f, cfg->weight_decay = 0.0005f;
    cfg->seed = 1, cfg->patience = 3, cfg->max_drops = 3;
    cfg->lighting = 0.1f, cfg->val_crops = 1;
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
    if (cfg->batch < 1 || cfg->epochs < 1) return an_error("train: --batch and --epochs must be at least 1");
    if (cfg->patience < 1 || cfg->max_drops < 0) return an_error("train: --patience must be at least 1, --max-drops at least 0");
    if (cfg->limit_train < 0 || cfg->limit_val < 0 || cfg->save_every < 0 || cfg->max_steps < 0)
        return an_error("train: --limit-train, --limit-val, --save-every and --max-steps must not be negative");
    if (cfg->val_crops != 1 && cfg->val_crops != 10) return an_error("train: --val-crops must be 1 or 10");
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
} Run;

/* The one-line error of a run that went non-finite: what happened, and which checkpoint is kept. */
static int diverged(const Run *r, const char *what) {
    char kept[1200];
    if (r->saved_step >= 0) snprintf(kept, sizeof kept, "kept the last checkpoint, %s (step %ld)", r->kept_path, r->saved_step);
    else snprintf(kept, sizeof kept, "no checkpoint was written yet");
    return an_error("training diverged in step %ld (epoch %d): %s; stopped without saving (try a lower --lr); %s",
                    r->st.step + 1, r->st.epoch + 1, what, kept);
}

static int save(Run *r) {
    if (net_from_gpu(&r->net, r->momentum)) return -1;
    long bad = net_nonfinite_params(&r->net); /* never write a checkpoint that cannot be resumed */
    if (bad) {
        char what[96];
        snprintf(what, sizeof what, "%ld weights are NaN or infinite", bad);
        return diverged(r, what);
    }
    if (checkpoint_save(r->ckpt_path, &r->net, r->momentum, &r->st, &r->norm, r->recipe)) return -1;
    r->saved_step = r->st.step, r->kept_path = r->ckpt_path;
    return 0;
}

static int setup(Run *r) {
    const TrainConfig *cfg = r->cfg;
    StFile file = {0};
    const char *model = cfg->model;
    if (train_config_check(cfg)) return -1;
    if (!cfg->data) return an_error("train: --data is required");
    if (!cfg->out_dir) return an_error("train: --out is required");
    if (cfg->resume) { /* the model of a resumed run comes from its checkpoint */
        if (st_read(cfg->resume, &file)) return -1;
        const char *m = st_meta(&file, "model"), *rc = st_meta(&file, "recipe");
        if (!m || !rc) { st_free(&file); return an_error("%s: not a training checkpoint (no model or recipe)", cfg->resume); }
        if (model && strcmp(model, m) != 0) {
            an_error("%s: checkpoint is for model '%s', not '%s'", cfg->resume, m, model);
            st_free(&file);
            return -1;
        }
        snprintf(r->recipe, sizeof r->recipe, "%s", rc);
        const ModelSpec *found = model_find(m);
        st_free(&file);
        if (!found) return -1;
        model = found->name;
    } else {
        if (!model) return an_error("train: --model is required (%s)", model_names());
        snprintf(r->recipe, sizeof r->recipe, "%s", cfg->recipe);
    }
    const ModelSpec *base = model_find(model);
    ModelSpec spec;
    if (!base || model_apply_recipe(base, r->recipe, &spec)) return -1;
    if (dataset_load(&r->train, cfg->data, 1) || dataset_load(&r->val, cfg->data, 0)) return -1;
    if (r->val.classes > r->train.classes) r->train.classes = r->val.classes;
    if (make_dirs(cfg->out_dir)) return -1;
    snprintf(r->log_path, sizeof r->log_path, "%s/log.csv", cfg->out_dir);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/checkpoint.safetensors", cfg->out_dir);
    snprintf(r->best_path, sizeof r->best_path, "%s/best.safetensors", cfg->out_dir);
    snprintf(r->curves_path, sizeof r->curves_path, "%s/curves.png", cfg->out_dir);
    int in_c = r->train.c;
    if (cfg->resume) {
        if (checkpoint_load_net(cfg->resume, &spec, cfg->batch, &r->net, &r->norm, &file)) return -1;
        if (r->net.classes != r->train.classes || r->net.in_c != in_c) {
            st_free(&file);
            return an_error("%s: checkpoint has %d channels and %d classes, the dataset %d and %d", cfg->resume,
                            r->net.in_c, r->net.classes, in_c, r->train.classes);
        }
        if (!(r->momentum = an_alloc(r->net.nparams * sizeof(float), "momentum"))) { st_free(&file); return -1; }
        int rc = checkpoint_read_state(cfg->resume, &file, &r->net, r->momentum, &r->st);
        st_free(&file);
        if (rc) return -1;
        if (cfg->lr_set) r->st.lr = cfg->lr;
        r->saved_step = r->st.step, r->kept_path = cfg->resume;
    } else {
        /* models without a fixed input size take in-memory images as they are, and crops of 224
         * from the 256x256 images of folders and shards */
        int images = r->train.kind == DATASET_FOLDER || r->train.kind == DATASET_SHARD;
        if (net_create(&r->net, &spec, in_c, r->train.classes, images ? 224 : r->train.h, cfg->batch)) return -1;
        if (!(r->momentum = an_alloc(r->net.nparams * sizeof(float), "momentum"))) return -1;
        net_init(&r->net, cfg->seed);
        if (norm_for_dataset(&r->train, in_c, 1000, &r->norm)) return -1;
        if (spec.paper_input_scale > 0.0f) r->norm.scale = spec.paper_input_scale;
        if (cfg->no_mean && r->norm.paper) /* keep it consistent for eval: a zero mean image */
            memset(r->norm.mean_image, 0, (size_t)3 * 256 * 256 * sizeof(float));
        r->st = (TrainState){.lr = cfg->lr, .seed = cfg->seed, .best_err = 1.0};
    }
    if (cfg->gpu && net_to_gpu(&r->net, cfg->gpu_math, r->momentum)) return -1;
    r->train_all = subset(r->train.n, cfg->limit_train, &r->n_train);
    r->val_idx = subset(r->val.n, cfg->limit_val, &r->n_val);
    if (!r->train_all || !r->val_idx) return an_error("out of memory");
    if (r->n_train == 0) return an_error("%s: the training split is empty", cfg->data);
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

/* Validation, log line, schedule, curves and checkpoints at the end of an epoch. */
static int end_epoch(Run *r, double ips) {
    TrainState *st = &r->st;
    const TrainConfig *cfg = r->cfg;
    EvalResult ev = {0}, ev10 = {0};
    int progress = !cfg->quiet; /* a line every second on a terminal, every 15 s in a log */
    if (evaluate(&r->net, &r->val, r->val_idx, r->n_val, &r->norm, 1, progress, &ev)) return -1;
    if (cfg->val_crops == 10 && evaluate(&r->net, &r->val, r->val_idx, r->n_val, &r->norm, 10, progress, &ev10))
        return -1;
    if (ev.nonfinite || ev10.nonfinite) { /* a NaN network is no best epoch */
        char what[128];
        snprintf(what, sizeof what, "the network's outputs are NaN or infinite for %ld validation images",
                 ev.nonfinite > ev10.nonfinite ? ev.nonfinite : ev10.nonfinite);
        return diverged(r, what);
    }
    double loss = st->loss_sum / st->seen, terr = st->err_sum / st->seen;
    st->epoch++;
    if (!cfg->quiet)
        fprintf(stderr, "%sepoch %d: train loss %.4f, train top-1 error %.2f%%; validation (%ld images) top-1 error "
                "%.2f%%, top-5 error %.2f%%; %.0f img/s, %.0f s\n", isatty(2) ? "\r" : "", st->epoch, loss,
                100 * terr, ev.count, 100 * ev.top1_err, 100 * ev.top5_err, ips, st->seconds);
    if (!cfg->quiet && cfg->val_crops == 10)
        fprintf(stderr, "epoch %d: validation with 10 crops: top-1 error %.2f%%, top-5 error %.2f%%\n", st->epoch,
                100 * ev10.top1_err, 100 * ev10.top5_err);
    r->skipped += ev.skipped;
    FILE *f = fopen(r->log_path, "a");
    if (!f) return an_error("%s: cannot write: %s", r->log_path, strerror(errno));
    fprintf(f, "%d,%.6g,%.6f,%.6f,%.6f,%.6f,%.6f,%.1f,%.1f", st->epoch, st->lr, loss, terr, ev.loss, ev.top1_err,
            ev.top5_err, ips, st->seconds);
    if (cfg->val_crops == 10) fprintf(f, ",%.6f,%.6f\n", ev10.top1_err, ev10.top5_err);
    else fprintf(f, ",,\n");
    if (fclose(f)) return an_error("%s: cannot write", r->log_path);
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
        if (!cfg->quiet) fprintf(stderr, "learning rate divided by 10: now %g\n", st->lr);
    }
    st->step_in_epoch = 0, st->loss_sum = st->err_sum = 0.0, st->seen = 0, st->seconds = 0.0;
    if (save(r)) return -1;
    if (improved && checkpoint_save(r->best_path, &r->net, NULL, NULL, &r->norm, NULL)) return -1;
    return plot_curves(r->curves_path, r->hist.n, r->hist.loss, r->hist.top1, r->hist.top5);
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
                                                  !cfg->no_flip, cfg->lighting)};
    if (r->net.gpu) lc.alloc_host = cuda_host_alloc, lc.free_host = cuda_host_free; /* pinned: DMA to the GPU */
    Loader *loader;
    if (loader_start(&loader, &lc)) return -1;
    int epoch_steps = loader_batches(loader), rc = 0;
    double t_step = an_now();
    Batch *b;
    *stopped = 0;
    while ((b = loader_next(loader))) {
        int n = b->n;
        if (n > 0) {
            if (net_set_input(&r->net, b->x, n)) { rc = -1; break; }
            if (!net_forward(&r->net, n, 1, an_hash64(st->seed, 0x100000000ull + (uint64_t)st->step))) { rc = -1; break; }
            float loss = 0.0f;
            if (net_loss(&r->net, b->labels, &loss)) { rc = -1; break; }
            if (!isfinite(loss)) {
                char what[64];
                snprintf(what, sizeof what, "the loss is %s", isnan(loss) ? "NaN" : loss > 0 ? "infinite" : "-infinite");
                rc = diverged(r, what);
                break;
            }
            if (net_backward(&r->net)) { rc = -1; break; }
            if (net_sgd(&r->net, r->momentum, st->lr, cfg->momentum, cfg->weight_decay)) {
                char what[256];
                snprintf(what, sizeof what, "%s", an_last_error());
                rc = r->net.gpu ? -1 : diverged(r, what);
                break;
            }
            for (int i = 0; i < n; i++)
                st->err_sum += true_class_rank(r->net.probs + (size_t)i * r->net.classes, r->net.classes, b->labels[i]) > 0;
            st->loss_sum += (double)loss * n, st->seen += n;
        }
        int number = b->number;
        loader_release(loader, b);
        /* the batch's own number: a batch whose every file failed to decode is never handed out */
        st->step_in_epoch = number + 1, st->step++, (*steps_this_session)++;
        double now = an_now();
        st->seconds += now - t_step, t_step = now;
        if (!cfg->quiet && (now - *last_print > (isatty(2) ? 1.0 : 15.0) || st->step_in_epoch == epoch_steps)) {
            progress(r, epoch_steps, t_start, *steps_this_session, now);
            *last_print = now;
        }
        if (st->step_in_epoch == epoch_steps) break; /* the epoch end saves */
        int stop = g_stop || (cfg->max_steps && st->step >= cfg->max_steps);
        if (stop || (cfg->save_every && st->step % cfg->save_every == 0)) {
            if (save(r)) { rc = -1; break; }
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
    while (st->epoch < cfg->epochs) {
        if (train_epoch(r, t_start, &last_print, &steps_this_session, &stopped)) return -1;
        if (stopped) {
            if (!cfg->quiet) fprintf(stderr, "\nstopped at step %ld; continue with --resume %s\n", st->step, r->ckpt_path);
            return 0;
        }
        double ips = st->seconds > 0 ? st->seen / st->seconds : 0.0;
        if (end_epoch(r, ips)) return -1;
        if (g_stop || (cfg->max_steps && st->step >= cfg->max_steps)) {
            if (!cfg->quiet && st->epoch < cfg->epochs)
                fprintf(stderr, "stopped at step %ld; continue with --resume %s\n", st->step, r->ckpt_path);
            return 0;
        }
    }
    if (!cfg->quiet) {
        fprintf(stderr, "done: %d epochs, best validation top-1 error %.2f%% (accuracy %.2f%%); wrote %s, %s, %s\n",
                st->epoch, 100 * st->best_err, 100 * (1 - st->best_err), r->log_path, r->curves_path, r->ckpt_path);
        if (r->skipped) fprintf(stderr, "%d image files could not be read and were skipped\n", r->skipped);
    }
    return 0;
}

int train_run(const TrainConfig *cfg) {
    Run *r = calloc(1, sizeof *r);
    if (!r) return an_error("out of memory");
    r->cfg = cfg;
    r->saved_step = -1;
    g_stop = 0;
    int rc = setup(r);
    if (!rc && !cfg->quiet) {
        net_print_table(&r->net, stderr);
        fprintf(stderr, "training on %d images (%d classes), validating on %d; batch %d, lr %g, recipe %s, %s, "
                "%d threads\n", r->n_train, r->net.classes, r->n_val, cfg->batch, r->st.lr, r->recipe,
                cfg->gpu ? (cfg->gpu_math == 1 ? "GPU, TF32" : cfg->gpu_math == 2 ? "GPU, bf16" : "GPU, float32") : gemm_bf16() ? "bf16 products" : "float32",
                omp_get_max_threads());
    }
    if (!rc) rc = run_epochs(r);
    net_free(&r->net);
    an_free(r->momentum);
    dataset_free(&r->train), dataset_free(&r->val);
    free(r->train_all), free(r->val_idx);
    norm_free(&r->norm);
    free(r);
    return rc;
}
