/* loader.c: worker threads that prepare batches ahead of the training step (see loader.h).
 *
 * The epoch's example order is fixed when the loader starts: LOADER_TRAIN shuffles the given
 * indices with a Fisher-Yates permutation driven by an_hash64 of (seed, epoch); the test modes
 * keep the given order. Batch b holds order[b * batch ...] (the last one may be short).
 *
 * Ring: `prefetch` preallocated slots; batch b always lives in slot b % prefetch, so batch b is
 * started only once batch b - prefetch has been handed back. Work is handed out in chunks of a
 * few examples of the oldest unfinished batch (a shared cursor: batch, example), so every thread
 * helps with whatever batches are in flight, even with prefetch 1. Each example is written at its
 * position in the batch; the worker that finishes a batch's last chunk compacts away the examples
 * that failed (keeping order) and marks the slot ready. The consumer takes batches strictly in
 * order. What a batch holds therefore depends only on (dataset, indices, seed, epoch, batch
 * number), never on threads or timing.
 *
 * Failures: an example whose image fails to load is left out, with one warning line on stderr
 * ("alexnet: warning: <message>; skipped") and counted in loader_skipped. Each loader visits an
 * example once, so a bad file warns once per loader (per epoch): a file still bad in the next
 * epoch warns again. A batch left with no examples at all is not handed out (loader_next moves
 * on to the next batch; Batch.number tells which one it is). */
#include "loader.h"
#include "../cpu/bind.h"
#include "../util/common.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE_SIZE 256 /* dataset_get_base: (3, 256, 256) */
#define VIEWS_TEST10 10

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct Slot {
    Batch batch;        /* what the consumer gets; x, labels, example preallocated */
    int state;
    int lo;             /* its first example within the whole batch (parts: this process's share) */
    int total;          /* examples the batch starts with (before failures are removed) */
    int pending;        /* examples not yet prepared */
    unsigned char *ok;  /* (batch) 1 when example e prepared fine */
} Slot;

struct Loader {
    LoaderConfig cfg;
    int *indices;       /* (count) the caller's example list, kept for loader_restart */
    int *order;         /* (count) the epoch's example order */
    int nbatches, views;
    size_t example_floats; /* views * channels * crop * crop */
    size_t scratch_bytes;  /* one source image */
    int chunk;          /* examples per piece of work */
    Slot *slots;        /* (prefetch) */
    pthread_t *threads;
    struct Worker *workers; /* (threads) */
    uint8_t **scratch;  /* (threads) one image buffer per worker */
    int nthreads;       /* threads started */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* workers: a slot became free, or stop */
    pthread_cond_t ready_cv; /* consumer: a batch became ready, or an error */
    int claim_batch, claim_example; /* next work to hand out */
    int next;           /* next batch loader_next returns */
    int stop;
    int skipped;
    int failed;         /* a fatal error happened (message in error) */
    char error[512];
};

typedef struct Worker { Loader *l; int id; } Worker;

/* ---- preparing one example ---- */

static size_t source_bytes(const LoaderConfig *cfg) {
    if (cfg->input.paper) return (size_t)3 * BASE_SIZE * BASE_SIZE;
    return (size_t)cfg->input.channels * cfg->input.aug.crop * cfg->input.aug.crop;
}

static int views_of(LoaderMode mode) { return mode == LOADER_TEST10 ? VIEWS_TEST10 : 1; }

/* Plain input: (x / 255 - mean[c]) / std[c], written as normalize_image in train/batch.c does
 * (x * (1 / (255 std)) - mean / std) so both give the same floats. mirror: flip left-right. */
static void normalize(const InputConfig *in, const uint8_t *src, int mirror, float *dst) {
    int c = in->channels, s = in->aug.crop;
    size_t plane = (size_t)s * s;
    for (int ch = 0; ch < c; ch++) {
        float scale = 1.0f / (255.0f * in->std[ch]), shift = in->mean[ch] / in->std[ch];
        const uint8_t *p = src + ch * plane;
        float *q = dst + ch * plane;
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
                q[(size_t)y * s + x] = p[(size_t)y * s + (mirror ? s - 1 - x : x)] * scale - shift;
    }
}

/* One example's input(s) at out (views images), using scratch (source_bytes) for the source. */
static int prepare(const LoaderConfig *cfg, int example, uint64_t counter, float *out,
                   uint8_t *scratch) {
    const InputConfig *in = &cfg->input;
    const AugmentConfig *a = &in->aug;
    int views = views_of(cfg->mode);
    size_t img = (size_t)in->channels * a->crop * a->crop;
    if (in->paper) {
        const uint8_t *base = dataset_base(cfg->ds, example, scratch);
        if (!base) return -1;
        if (cfg->mode == LOADER_TRAIN) {
            float rgb[3];
            View v = augment_random_view(a, cfg->seed, counter);
            augment_lighting(a, cfg->seed, counter, rgb);
            augment_apply(a, base, v, rgb, out);
        } else if (cfg->mode == LOADER_TEST) {
            augment_apply(a, base, augment_center_view(a->size, a->crop), NULL, out);
        } else {
            for (int k = 0; k < views; k++)
                augment_apply(a, base, augment_test_view(a->size, a->crop, k), NULL, out + k * img);
        }
        return 0;
    }
    if (dataset_get_image(cfg->ds, example, in->channels, a->crop, scratch) != 0) return -1;
    /* no augmentation: TEST10 gives the image 5 times, then mirrored 5 times */
    for (int k = 0; k < views; k++) normalize(in, scratch, k >= 5, out + k * img);
    return 0;
}

int loader_prepare_example(const LoaderConfig *cfg, int example, uint64_t counter, float *out) {
    uint8_t *scratch = malloc(source_bytes(cfg));
    if (!scratch) return an_error("out of memory (loader image buffer)");
    int rc = prepare(cfg, example, counter, out, scratch);
    free(scratch);
    return rc;
}

/* ---- the epoch's order ---- */

static void make_order(const LoaderConfig *cfg, const int *indices, int *order) {
    memcpy(order, indices, (size_t)cfg->count * sizeof *order);
    if (cfg->mode != LOADER_TRAIN) return;
    /* Fisher-Yates; the salt keeps this stream apart from the augmentation's (seed, counter) */
    uint64_t s = cfg->seed ^ an_hash64(0x73687566666c6521ull, (uint64_t)(uint32_t)cfg->epoch);
    for (int i = cfg->count - 1; i > 0; i--) {
        int j = (int)(an_hash64(s, (uint64_t)i) % (uint64_t)(i + 1));
        int t = order[i]; order[i] = order[j]; order[j] = t;
    }
}

/* ---- workers ---- */

static void set_failed(Loader *l, const char *msg) { /* call with mu held */
    if (!l->failed) {
        l->failed = 1;
        snprintf(l->error, sizeof l->error, "%s", msg);
    }
    pthread_cond_broadcast(&l->ready_cv);
    pthread_cond_broadcast(&l->work_cv);
}

/* Drop the failed examples of a finished slot, keeping order. Only the finishing worker
 * touches the slot now. */
static void compact(Loader *l, Slot *s) {
    Batch *b = &s->batch;
    size_t ef = l->example_floats;
    int n = 0;
    for (int e = 0; e < s->total; e++) {
        if (!s->ok[e]) continue;
        if (n != e) {
            memcpy(b->x + n * ef, b->x + e * ef, ef * sizeof(float));
            b->labels[n] = b->labels[e];
            b->example[n] = b->example[e];
        }
        n++;
    }
    b->n = n;
}

static void *worker_main(void *arg) {
    Worker *w = arg;
    Loader *l = w->l;
    const LoaderConfig *cfg = &l->cfg;
    uint8_t *scratch = l->scratch[w->id];
    cpu_bind_release_self(); /* not one CPU inherited from a pinned OpenMP thread */
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->stop || l->failed || l->claim_batch >= l->nbatches) break;
        int bn = l->claim_batch;
        Slot *s = &l->slots[bn % cfg->prefetch];
        if (l->claim_example == 0) {
            if (s->state != SLOT_FREE) { /* batch bn - prefetch not handed back yet */
                pthread_cond_wait(&l->work_cv, &l->mu);
                continue;
            }
            int first = bn * cfg->batch, left = cfg->count - first, whole = left < cfg->batch ? left : cfg->batch;
            int parts = cfg->parts > 1 ? cfg->parts : 1;
            s->state = SLOT_FILLING;
            s->batch.number = bn;
            s->batch.n = 0;
            s->lo = (int)((long)whole * cfg->part / parts);
            s->total = (int)((long)whole * (cfg->part + 1) / parts) - s->lo;
            s->pending = s->total;
            if (s->total == 0) { /* this process's share of the batch is empty: handed out as it is */
                s->state = SLOT_READY;
                l->claim_batch++;
                pthread_cond_broadcast(&l->ready_cv);
                continue;
            }
        }
        int e0 = l->claim_example, e1 = e0 + l->chunk;
        if (e1 >= s->total) {
            e1 = s->total;
            l->claim_batch++;
            l->claim_example = 0;
        } else {
            l->claim_example = e1;
        }
        pthread_mutex_unlock(&l->mu);

        int bad = 0;
        for (int e = e0; e < e1; e++) {
            int ex = l->order[bn * cfg->batch + s->lo + e];
            uint64_t counter = ((uint64_t)(uint32_t)cfg->epoch << 32) | (uint32_t)ex;
            s->batch.example[e] = ex;
            s->batch.labels[e] = cfg->ds->labels ? cfg->ds->labels[ex] : 0;
            s->ok[e] = prepare(cfg, ex, counter, s->batch.x + e * l->example_floats, scratch) == 0;
            if (!s->ok[e]) {
                /* an_last_error() is this thread's: print it from here */
                fprintf(stderr, "alexnet: warning: %s; skipped\n", an_last_error());
                bad++;
            }
        }

        pthread_mutex_lock(&l->mu);
        l->skipped += bad;
        s->pending -= e1 - e0;
        if (s->pending == 0) {
            pthread_mutex_unlock(&l->mu);
            compact(l, s);
            pthread_mutex_lock(&l->mu);
            s->state = SLOT_READY;
            pthread_cond_broadcast(&l->ready_cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- start, next, release, stop ---- */

static int check_config(const LoaderConfig *cfg) {
    if (!cfg || !cfg->ds) return an_error("loader: no dataset");
    const Dataset *ds = cfg->ds;
    const InputConfig *in = &cfg->input;
    if (cfg->count < 0 || (cfg->count > 0 && !cfg->indices))
        return an_error("loader: bad example list (%d examples)", cfg->count);
    if (cfg->batch < 1) return an_error("loader: batch size %d (must be >= 1)", cfg->batch);
    if (cfg->threads < 1) return an_error("loader: %d threads (must be >= 1)", cfg->threads);
    if (cfg->prefetch < 1) return an_error("loader: prefetch %d (must be >= 1)", cfg->prefetch);
    if (cfg->parts < 0 || (cfg->parts > 0 && (cfg->part < 0 || cfg->part >= cfg->parts)))
        return an_error("loader: part %d of %d", cfg->part, cfg->parts);
    if (!cfg->alloc_host != !cfg->free_host) return an_error("loader: alloc_host and free_host must be set together");
    if (cfg->mode != LOADER_TRAIN && cfg->mode != LOADER_TEST && cfg->mode != LOADER_TEST10)
        return an_error("loader: unknown mode %d", (int)cfg->mode);
    if (in->channels != 1 && in->channels != 3)
        return an_error("loader: %d input channels (expected 1 or 3)", in->channels);
    if (in->aug.crop < 1) return an_error("loader: bad crop size %d", in->aug.crop);
    if (in->paper) {
        if (in->channels != 3) return an_error("loader: the paper's input needs 3 channels");
        if (in->aug.size != BASE_SIZE)
            return an_error("loader: augmentation source size %d (base images are %d)", in->aug.size,
                            BASE_SIZE);
        if (in->aug.crop > in->aug.size)
            return an_error("loader: crop %d larger than the image (%d)", in->aug.crop, in->aug.size);
        if (cfg->mode == LOADER_TRAIN && in->aug.lighting_std > 0 && !in->aug.pca)
            return an_error("loader: PCA lighting without eigenpairs");
    } else {
        for (int c = 0; c < in->channels; c++)
            if (!(in->std[c] != 0.0f)) return an_error("loader: std[%d] is zero", c);
    }
    for (int i = 0; i < cfg->count; i++)
        if (cfg->indices[i] < 0 || cfg->indices[i] >= ds->n)
            return an_error("loader: example %d out of range (n = %d)", cfg->indices[i], ds->n);
    int nb = cfg->count / cfg->batch + (cfg->count % cfg->batch != 0);
    if (cfg->first_batch < 0 || cfg->first_batch > nb)
        return an_error("loader: first batch %d out of range (%d batches)", cfg->first_batch, nb);
    return 0;
}

static void free_loader(Loader *l) {
    if (!l) return;
    if (l->slots)
        for (int i = 0; i < l->cfg.prefetch; i++) {
            if (l->cfg.free_host) {
                if (l->slots[i].batch.x) l->cfg.free_host(l->slots[i].batch.x);
            } else {
                free(l->slots[i].batch.x);
            }
            free(l->slots[i].batch.labels);
            free(l->slots[i].batch.example);
            free(l->slots[i].ok);
        }
    if (l->scratch)
        for (int i = 0; i < l->cfg.threads; i++) free(l->scratch[i]);
    free(l->scratch);
    free(l->workers);
    free(l->slots);
    free(l->threads);
    free(l->order);
    free(l->indices);
    pthread_cond_destroy(&l->ready_cv);
    pthread_cond_destroy(&l->work_cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void join_workers(Loader *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
    l->nthreads = 0;
}

/* Starts cfg.threads workers on the loader's current epoch. Returns 0, or -1 with the threads
 * that did start joined again. */
static int start_workers(Loader *l) {
    for (int i = 0; i < l->cfg.threads; i++) {
        l->workers[i].l = l;
        l->workers[i].id = i;
        int e = pthread_create(&l->threads[i], NULL, worker_main, &l->workers[i]);
        if (e != 0) {
            join_workers(l);
            return an_error("loader: cannot start thread %d of %d (%s)", i + 1, l->cfg.threads, strerror(e));
        }
        l->nthreads++;
    }
    return 0;
}

int loader_start(Loader **out, const LoaderConfig *cfg) {
    if (!out) return an_error("loader: no output pointer");
    *out = NULL;
    if (check_config(cfg) != 0) return -1;
    Loader *l = calloc(1, sizeof *l);
    if (!l) return an_error("out of memory (loader)");
    l->cfg = *cfg;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    l->nbatches = cfg->count / cfg->batch + (cfg->count % cfg->batch != 0);
    l->views = views_of(cfg->mode);
    l->example_floats = (size_t)l->views * cfg->input.channels * cfg->input.aug.crop * cfg->input.aug.crop;
    l->scratch_bytes = source_bytes(cfg);
    l->next = l->claim_batch = cfg->first_batch;
    /* a few chunks per thread per batch: small enough to share a batch between threads, large
     * enough that the lock is not taken for every tiny image */
    l->chunk = cfg->batch / (4 * cfg->threads);
    if (l->chunk < 1) l->chunk = 1;

    l->order = malloc(((size_t)cfg->count + 1) * sizeof *l->order);
    l->indices = malloc(((size_t)cfg->count + 1) * sizeof *l->indices);
    l->slots = calloc((size_t)cfg->prefetch, sizeof *l->slots);
    l->scratch = calloc((size_t)cfg->threads, sizeof *l->scratch);
    l->threads = calloc((size_t)cfg->threads, sizeof *l->threads);
    l->workers = calloc((size_t)cfg->threads, sizeof *l->workers);
    int rc = (l->order && l->indices && l->slots && l->scratch && l->threads && l->workers) ? 0
             : an_error("out of memory (loader)");
    for (int i = 0; rc == 0 && i < cfg->prefetch; i++) {
        Slot *s = &l->slots[i];
        s->batch.views = l->views;
        size_t xbytes = (size_t)cfg->batch * l->example_floats * sizeof(float); /* not zeroed: every */
        size_t rounded = (xbytes + 63) & ~(size_t)63;                           /* image is written */
        if (cfg->alloc_host) {
            s->batch.x = cfg->alloc_host(rounded); /* its own error message */
        } else {
            s->batch.x = aligned_alloc(64, rounded);
            if (!s->batch.x) an_error("out of memory (%zu bytes for a loader batch)", xbytes);
        }
        s->batch.labels = malloc((size_t)cfg->batch * sizeof(int));
        s->batch.example = malloc((size_t)cfg->batch * sizeof(int));
        s->ok = malloc((size_t)cfg->batch);
        if (!s->batch.x) rc = -1; /* the error is recorded above */
        else if (!s->batch.labels || !s->batch.example || !s->ok) rc = an_error("out of memory (loader batch)");
    }
    for (int i = 0; rc == 0 && i < cfg->threads; i++)
        if (!(l->scratch[i] = malloc(l->scratch_bytes))) rc = an_error("out of memory (loader image buffer)");
    if (rc != 0) {
        free_loader(l);
        return -1;
    }
    memcpy(l->indices, cfg->indices, (size_t)cfg->count * sizeof *l->indices);
    l->cfg.indices = NULL; /* the caller's array is not needed any more */
    make_order(&l->cfg, l->indices, l->order);
    if (start_workers(l) != 0) {
        free_loader(l);
        return -1;
    }
    *out = l;
    return 0;
}

int loader_restart(Loader *l, int epoch, int first_batch) {
    if (!l) return an_error("loader: restart without a loader");
    join_workers(l);
    for (int i = 0; i < l->cfg.prefetch; i++)
        if (l->slots[i].state == SLOT_HELD)
            return an_error("loader: restart while batch %d is still held", l->slots[i].batch.number);
    if (first_batch < 0 || first_batch > l->nbatches)
        return an_error("loader: first batch %d out of range (%d batches)", first_batch, l->nbatches);
    l->cfg.epoch = epoch;
    l->cfg.first_batch = first_batch;
    for (int i = 0; i < l->cfg.prefetch; i++) l->slots[i].state = SLOT_FREE;
    l->next = l->claim_batch = first_batch;
    l->claim_example = 0;
    l->stop = l->failed = 0;
    l->error[0] = '\0';
    make_order(&l->cfg, l->indices, l->order);
    return start_workers(l);
}

int loader_batches(const Loader *l) { return l ? l->nbatches : 0; }

Batch *loader_next(Loader *l) {
    if (!l) return NULL;
    Batch *out = NULL;
    pthread_mutex_lock(&l->mu);
    while (!l->failed && l->next < l->nbatches) {
        Slot *s = &l->slots[l->next % l->cfg.prefetch];
        if (s->state == SLOT_HELD) { /* would wait for ever: the caller holds its slot */
            char msg[200];
            snprintf(msg, sizeof msg, "loader: batch %d asked for while batch %d is still held "
                     "(at most %d batches may be held)", l->next, s->batch.number, l->cfg.prefetch);
            set_failed(l, msg);
            break;
        }
        if (s->state != SLOT_READY || s->batch.number != l->next) {
            pthread_cond_wait(&l->ready_cv, &l->mu);
            continue;
        }
        l->next++;
        if (s->batch.n == 0 && !l->cfg.parts) { /* every example failed: nothing to hand out */
            s->state = SLOT_FREE;
            pthread_cond_broadcast(&l->work_cv);
            continue;
        }
        s->state = SLOT_HELD;
        out = &s->batch;
        break;
    }
    if (!out && l->failed) an_error("%s", l->error);
    pthread_mutex_unlock(&l->mu);
    return out;
}

void loader_release(Loader *l, Batch *b) {
    if (!l || !b) return;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->cfg.prefetch; i++) {
        Slot *s = &l->slots[i];
        if (&s->batch == b && s->state == SLOT_HELD) {
            s->state = SLOT_FREE;
            pthread_cond_broadcast(&l->work_cv);
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
}

const char *loader_error(const Loader *l) {
    if (!l) return NULL;
    Loader *m = (Loader *)l; /* the lock is not part of the loader's value */
    pthread_mutex_lock(&m->mu);
    const char *e = m->failed ? m->error : NULL;
    pthread_mutex_unlock(&m->mu);
    return e;
}

int loader_skipped(const Loader *l) {
    if (!l) return 0;
    Loader *m = (Loader *)l;
    pthread_mutex_lock(&m->mu);
    int n = m->skipped;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void loader_stop(Loader *l) {
    if (!l) return;
    join_workers(l);
    free_loader(l);
}
