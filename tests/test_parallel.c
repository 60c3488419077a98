/* test_parallel.c: training over several processes, through the real binary under mpirun:
 *   - data parallel, 2 ranks x 64 images, equals 1 process x 128 after 3 steps of `alexnet` (with
 *     dropout, a partial last batch and the epoch's validation), within 1e-5 on every weight;
 *   - a 2-rank checkpoint resumed by 1 process continues as the 1-process run did;
 *   - the paper's two towers on 2 ranks equal the grouped one-process network after 3 steps;
 *   - a rank killed mid-run makes the job exit non-zero with a message, and the last checkpoint
 *     loads and resumes.
 * Skipped (counted) in a build without MPI or where mpirun is missing. The data: a small folder
 * of generated PNG images (3 classes). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/parallel/parallel.h"
#include "../src/train/safetensors.h"
#include "../src/train/sgd.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int have_mpi(void) { return par_built() && system("command -v mpirun >/dev/null 2>&1") == 0; }
#define NEED_MPI()                                                                                        \
    do {                                                                                                  \
        if (!have_mpi()) SKIP("no MPI in this build, or no mpirun (Debian libopenmpi-dev, openmpi-bin)"); \
    } while (0)
/* the alexnet runs take minutes; under AddressSanitizer (make test-asan) several times more */
#if defined(__SANITIZE_ADDRESS__)
#define NEED_FULL_SPEED() SKIP("alexnet over MPI under AddressSanitizer would take over 10 minutes; make test runs it")
#else
#define NEED_FULL_SPEED() (void)0
#endif

static const char *bin(void) { return getenv("ALEXNET_BIN") ? getenv("ALEXNET_BIN") : "build/alexnet"; }

/* `mpirun -np np alexnet args`, one thread per rank; output in harness_out / harness_err */
static int mpi_run(int np, const char *args) {
    /* CI runs as root; ranks may share cores */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1), setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "mpirun -np %d --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 %s %s >%s 2>%s </dev/null", np,
             bin(), args, harness_path("mpi.out"), harness_path("mpi.err"));
    int st = system(cmd);
    size_t n = 0;
    char *o = (char *)harness_read_file(harness_path("mpi.out"), &n);
    snprintf(harness_out, sizeof harness_out, "%s", o ? o : "");
    free(o);
    char *e = (char *)harness_read_file(harness_path("mpi.err"), &n);
    snprintf(harness_err, sizeof harness_err, "%s", e ? e : "");
    free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A folder of 300 training and 30 validation images, 3 classes, 40x40 PNGs (made once). */
static const char *images(void) {
    static char dir[512];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s", harness_path("par_images"));
    unsigned char px[40 * 40 * 3];
    for (int split = 0; split < 2; split++)
        for (int c = 0; c < 3; c++) {
            char path[700];
            snprintf(path, sizeof path, "%s/%s/class%d", dir, split ? "val" : "train", c);
            harness_mkdirs(path);
            for (int i = 0; i < (split ? 10 : 100); i++) {
                for (int p = 0; p < 40 * 40 * 3; p++) /* noise around a class colour */
                    px[p] = (unsigned char)(p % 3 == c ? 150 : 60) + (unsigned char)(an_hash64(split * 1000 + c * 100 + i, p) % 80);
                snprintf(path, sizeof path, "%s/%s/class%d/%03d.png", dir, split ? "val" : "train", c, i);
                if (png_write_rgb(path, px, 40, 40)) { dir[0] = 0; return NULL; }
            }
        }
    return dir;
}

/* How far checkpoint b is from a: the largest over parameter layers of |a - b| / |a| (2-norms over
 * the layer's weight and bias together); with momentum, every float32 tensor (momentum included)
 * counts on its own. *layers: how many were compared. -1 when a file cannot be read; infinity when
 * a tensor of a is missing in b or has another size. */
static double checkpoint_diff(const char *a, const char *b, int momentum, int *layers) {
    StFile fa, fb;
    *layers = 0;
    if (st_read(a, &fa)) return -1;
    if (st_read(b, &fb)) { st_free(&fa); return -1; }
    double worst = 0.0, d2 = 0.0, a2 = 0.0;
    char layer[128] = "";
    for (int i = 0; i <= fa.n; i++) {
        const StTensor *ta = i < fa.n ? &fa.tensors[i] : NULL;
        int is_param = ta && ta->dtype == ST_F32 && strncmp(ta->name, "input.", 6) != 0 &&
                       (momentum || strncmp(ta->name, "momentum.", 9) != 0);
        char name[128] = "";
        if (is_param) { /* the group: the tensor (momentum) or the layer ("conv1" of "conv1.weight") */
            snprintf(name, sizeof name, "%s", ta->name);
            char *dot = strrchr(name, '.');
            if (!momentum && dot) *dot = 0;
        }
        if (layer[0] && strcmp(name, layer) != 0) { /* a group ends */
            double d = a2 > 0 ? sqrt(d2 / a2) : sqrt(d2);
            worst = fmax(worst, d == d ? d : INFINITY);
            (*layers)++;
            d2 = a2 = 0.0, layer[0] = 0;
        }
        if (!is_param) continue;
        snprintf(layer, sizeof layer, "%s", name);
        const StTensor *tb = NULL;
        for (int j = 0; j < fb.n; j++)
            if (!strcmp(fb.tensors[j].name, ta->name)) tb = &fb.tensors[j];
        if (!tb || tb->nbytes != ta->nbytes) { d2 = INFINITY; continue; }
        const float *x = ta->data, *y = tb->data;
        for (size_t k = 0; k < ta->nbytes / 4; k++) {
            double e = (double)x[k] - y[k];
            d2 += e * e, a2 += (double)x[k] * x[k];
        }
    }
    st_free(&fa), st_free(&fb);
    return worst;
}

static const char *ckpt(const char *run) {
    static char p[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/checkpoint.safetensors", harness_path(run));
    return p[k];
}

#define COMMON "--model alexnet --epochs 2 --seed 5 --quiet --limit-val 30"

/* the one-process run of 3 steps at batch 128, made once (the data and resume tests share it) */
static const char *one_process_128(void) {
    static int done;
    if (!done) {
        char args[1500];
        snprintf(args, sizeof args, "train " COMMON " --data %s --batch 128 --max-steps 3 --out %s", images(),
                 harness_path("par_one"));
        int rc = harness_run(args);
        CHECK(rc == 0, "one process: exit %d: %s", rc, harness_err);
        done = rc == 0 ? 1 : -1;
    }
    return done == 1 ? ckpt("par_one") : NULL;
}

/* the 3-step weights of run b against a's, per layer, within 1e-5 (the measure printed) */
static void expect_same_weights(const char *a, const char *b, const char *what) {
    int n = 0;
    double d = checkpoint_diff(a, b, 0, &n);
    fprintf(stderr, "(relative difference %.2g) ", d);
    CHECK(d >= 0 && d <= 1e-5 && n == 8, "%s: relative difference %g over %d layers", what, d, n);
}

/* `train --parallel data` on 2 ranks, batch 128, `steps` steps, into run */
static int two_ranks_data(int steps, const char *run) {
    char args[1500];
    snprintf(args, sizeof args, "train --parallel data " COMMON " --data %s --batch 128 --max-steps %d --out %s", images(),
             steps, harness_path(run));
    int rc = mpi_run(2, args);
    CHECK(rc == 0, "2 ranks, %d steps: exit %d: %s", steps, rc, harness_err);
    return rc;
}

TEST(parallel_data_2x64_equals_1x128) {
    NEED_MPI();
    NEED_FULL_SPEED();
    CHECK(images() != NULL, "could not write the images");
    const char *one = one_process_128();
    if (!one) return;
    two_ranks_data(3, "par_data");
    CHECK(strstr(harness_err, "data parallel over 2 ranks (64 images each)") == NULL, "rank 0 printed in --quiet");
    expect_same_weights(one, ckpt("par_data"), "2 ranks x 64 vs 1 x 128 after 3 steps");
}

TEST(parallel_data_checkpoint_resumed_by_one_process) {
    NEED_MPI();
    NEED_FULL_SPEED();
    CHECK(images() != NULL, "could not write the images");
    const char *one = one_process_128();
    if (!one) return;
    two_ranks_data(2, "par_resume");
    char args[1500];
    snprintf(args, sizeof args, "train --resume %s --data %s --batch 128 --max-steps 3 --out %s --quiet --limit-val 30 --epochs 2",
             ckpt("par_resume"), images(), harness_path("par_resume"));
    int rc = harness_run(args);
    CHECK(rc == 0, "1 process resuming: exit %d: %s", rc, harness_err);
    expect_same_weights(one, ckpt("par_resume"), "2 ranks then 1 process vs 1 process");
}

TEST(parallel_towers_equal_grouped_network) {
    NEED_MPI();
    NEED_FULL_SPEED();
    CHECK(images() != NULL, "could not write the images");
    char args[1500];
    snprintf(args, sizeof args, "train " COMMON " --data %s --batch 32 --max-steps 3 --out %s", images(),
             harness_path("par_grouped"));
    int rc = harness_run(args);
    CHECK(rc == 0, "grouped, one process: exit %d: %s", rc, harness_err);
    snprintf(args, sizeof args, "train --parallel towers " COMMON " --data %s --batch 32 --max-steps 3 --out %s",
             images(), harness_path("par_towers"));
    rc = mpi_run(2, args);
    CHECK(rc == 0, "towers: exit %d: %s", rc, harness_err);
    expect_same_weights(ckpt("par_grouped"), ckpt("par_towers"), "towers vs grouped after 3 steps");
    /* the towers need 2 ranks, and say so */
    rc = mpi_run(3, args);
    CHECK(rc != 0 && strstr(harness_err, "exactly 2 ranks"), "towers on 3 ranks: exit %d: %s", rc, harness_err);
}

/* Start a 2-rank run into `out` that checkpoints every 2 steps, kill rank 1's process once a
 * checkpoint is there; *rc: mpirun's exit status, *secs: how long it took to end after the kill;
 * stderr in harness_err. mpirun_flags: e.g. --enable-recovery (mpirun then lets the survivor run on,
 * and it must stop by itself: --comm-timeout). */
static void kill_a_rank(const char *out, const char *mpirun_flags, int *rc, int *secs) {
    char cmd[3000];
    /* the run checkpoints every 2 steps; once a checkpoint is there, rank 1's process is killed */
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout -s KILL 120 mpirun -np 2 %s --oversubscribe --bind-to none "
             "-x OMP_NUM_THREADS=1 %s train --parallel data --model convnet4 --data " FMNIST
             " --out %s --epochs 1 --batch 32 --save-every 2 --comm-timeout 5 --quiet >%s 2>%s </dev/null & job=$!; "
             "for i in $(seq 1 600); do [ -f %s/checkpoint.safetensors ] && break; sleep 0.1; done; sleep 0.5; "
             "for p in $(pgrep -x alexnet); do grep -q %s /proc/$p/cmdline && victim=$p; done; kill -9 $victim; "
             "t0=$(date +%%s); wait $job; rc=$?; echo \"$rc $(( $(date +%%s) - t0 ))\" > %s",
             mpirun_flags, bin(), out, harness_path("kill.out"), harness_path("kill.err"), out, out, harness_path("kill.rc"));
    *rc = *secs = -1;
    if (system(cmd) != 0) return;
    size_t n = 0;
    char *rcs = (char *)harness_read_file(harness_path("kill.rc"), &n), *err = (char *)harness_read_file(harness_path("kill.err"), &n);
    if (rcs) sscanf(rcs, "%d %d", rc, secs);
    snprintf(harness_err, sizeof harness_err, "%s", err ? err : "");
    free(rcs), free(err);
}

/* After one step from the same weights, nothing but summation order differs: every tensor, the
 * momentum (this step's gradient) included, agrees to float32 rounding. (Over more steps, a max
 * pooling window whose two largest inputs differ by less than the rounding can pick the other
 * one, and the gradient of conv1/conv2 moves by more: the 3-step tests compare the weights.)
 * With im2col convolutions the rounding is float32's (2e-6); Winograd's transforms multiply it by
 * their constants (up to 8), and the towers' split sums (conv3's input gradient in two halves) then
 * differ by a few 1e-6: 1e-5 there, and the same runs with --conv im2col hold to 2e-6. */
TEST(parallel_one_step_agrees_to_rounding) {
    NEED_MPI();
    NEED_FULL_SPEED();
    CHECK(images() != NULL, "could not write the images");
    const char *runs[5][2] = {{"", "par1_one"}, {"--parallel data", "par1_data"}, {"--parallel towers", "par1_towers"},
                              {"--conv im2col", "par1_one_im2col"}, {"--parallel towers --conv im2col", "par1_towers_im2col"}};
    for (int k = 0; k < 5; k++) {
        char args[1500];
        snprintf(args, sizeof args, "train %s " COMMON " --data %s --batch 32 --max-steps 1 --out %s", runs[k][0], images(),
                 harness_path(runs[k][1]));
        int rc = k == 0 || k == 3 ? harness_run(args) : mpi_run(2, args);
        CHECK(rc == 0, "%s: exit %d: %s", runs[k][1], rc, harness_err);
    }
    static const int pair[3][2] = {{1, 0}, {2, 0}, {4, 3}};
    static const double tol[3] = {1e-5, 1e-5, 2e-6};
    for (int j = 0; j < 3; j++) {
        int n = 0, a = pair[j][0], b = pair[j][1];
        double d = checkpoint_diff(ckpt(runs[b][1]), ckpt(runs[a][1]), 1, &n);
        CHECK(d >= 0 && d <= tol[j] && n == 32, "%s vs %s after 1 step: relative difference %g over %d tensors (at most %g)",
              runs[a][1], runs[b][1], d, n, tol[j]);
    }
}

TEST(parallel_killed_rank_stops_the_job_and_keeps_the_checkpoint) {
    NEED_MPI();
    NEED_FMNIST();
    char out[600];
    snprintf(out, sizeof out, "%s", harness_path("par_kill"));
    int rc, secs;
    kill_a_rank(out, "", &rc, &secs); /* mpirun stops the job */
    CHECK(rc > 0, "the job exited %d after a rank was killed", rc);
    CHECK(secs >= 0 && secs <= 30, "the job took %d s to stop after a rank was killed", secs);
    CHECK(strstr(harness_err, "rank 1") || strstr(harness_err, "signal 9"), "no message: %s", harness_err);
    /* a launcher that lets the job run on: the survivor stops by itself, with its own line */
    kill_a_rank(harness_path("par_kill2"), "--enable-recovery", &rc, &secs);
    CHECK(secs >= 0 && secs <= 40, "the survivor took %d s to stop after a rank was killed", secs);
    CHECK(strstr(harness_err, "alexnet: rank ") && strstr(harness_err, " of 2: no answer from the other ranks for"),
          "no message: %s", harness_err);
    char args[1500];
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s/checkpoint.safetensors --data " FMNIST " --limit 100", out);
    int erc = harness_run(args);
    CHECK(erc == 0 && (strstr(harness_out, "top-1") || strstr(harness_err, "top-1")), "the kept checkpoint does not "
          "evaluate: %d %s", erc, harness_err);
    StFile f; /* resume it for one more step */
    long step = -1;
    snprintf(args, sizeof args, "%s/checkpoint.safetensors", out);
    if (st_read(args, &f) == 0) {
        const char *m = st_meta(&f, "step");
        step = m ? atol(m) : -1;
        st_free(&f);
    }
    CHECK(step >= 2, "the kept checkpoint has no step (%ld)", step);
    snprintf(args, sizeof args, "train --resume %s/checkpoint.safetensors --data " FMNIST " --out %s --max-steps %ld --batch 32 --quiet",
             out, out, step + 1);
    erc = harness_run(args);
    CHECK(erc == 0, "the kept checkpoint does not resume: %d %s", erc, harness_err);
}

/* ---- large batches: warm-up and LARS ---- */

TEST(lars_ratio_values) {
    CHECK(fabsf(sgd_lars_ratio(3.0, 4.0, 0.001f, 0.0f) - 0.00075f) < 1e-9f, "eta |w| / |g|: %g", sgd_lars_ratio(3.0, 4.0, 0.001f, 0.0f));
    float r = sgd_lars_ratio(3.0, 4.0, 0.001f, 0.5f); /* 0.001 x 3 / (4 + 1.5) */
    CHECK(fabsf(r - 0.003f / 5.5f) < 1e-9f, "with weight decay: %g", r);
    CHECK(sgd_lars_ratio(0.0, 4.0, 0.001f, 0.0f) == 1.0f && sgd_lars_ratio(3.0, 0.0, 0.001f, 0.0f) == 1.0f,
          "a zero norm gives the plain rate");
}

/* tensor `name` of a checkpoint into a new array (count floats), or NULL */
static float *tensor_of(const char *path, const char *name, size_t *count) {
    StFile f;
    if (st_read(path, &f)) return NULL;
    float *out = NULL;
    for (int i = 0; i < f.n; i++)
        if (!strcmp(f.tensors[i].name, name) && f.tensors[i].dtype == ST_F32 && (out = malloc(f.tensors[i].nbytes))) {
            memcpy(out, f.tensors[i].data, f.tensors[i].nbytes);
            *count = f.tensors[i].nbytes / 4;
        }
    st_free(&f);
    return out;
}

#define SMALL "--model convnet4 --data " FMNIST " --batch 64 --limit-train 640 --limit-val 64 --epochs 1 --seed 4 --quiet"

/* --warmup 1 over 10 steps an epoch: the first step is taken at lr / 10 */
TEST(warmup_first_step_at_lr_over_warmup_steps) {
    NEED_FMNIST();
    char args[1200];
    snprintf(args, sizeof args, "train " SMALL " --lr 0.05 --warmup 1 --max-steps 1 --out %s", harness_path("warm_a"));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    snprintf(args, sizeof args, "train " SMALL " --lr 0.005 --max-steps 1 --out %s", harness_path("warm_b"));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    snprintf(args, sizeof args, "train " SMALL " --lr 0.05 --max-steps 1 --out %s", harness_path("warm_c"));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    int n = 0;
    double same = checkpoint_diff(ckpt("warm_b"), ckpt("warm_a"), 1, &n);
    CHECK(same >= 0 && same <= 1e-7 && n > 0, "warm-up step 1 vs lr / 10: difference %g", same);
    double differs = checkpoint_diff(ckpt("warm_c"), ckpt("warm_a"), 1, &n);
    CHECK(differs > 0.1, "warm-up step 1 vs the full rate: difference only %g", differs);
}

/* --optimizer lars, one step from zero momentum: each layer's weight step is the plain SGD step
 * times eta |w| / (|g| + wd |w|), with g recovered from the SGD run; bias steps are SGD's */
TEST(lars_step_is_sgd_step_times_trust_ratio) {
    NEED_FMNIST();
    char args[1200];
    snprintf(args, sizeof args, "train " SMALL " --lr 0.5 --max-steps 1 --out %s", harness_path("lars_sgd"));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    snprintf(args, sizeof args, "train " SMALL " --lr 0.5 --max-steps 1 --optimizer lars --lars-eta 0.002 --out %s",
             harness_path("lars_lars"));
    CHECK(harness_run(args) == 0, "%s", harness_err);
    const char *layers[] = {"conv1", "conv2", "conv3", "fc4"};
    for (int k = 0; k < 4; k++) {
        char name[64];
        size_t n = 0, m = 0;
        snprintf(name, sizeof name, "%s.weight", layers[k]);
        float *w1 = tensor_of(ckpt("lars_sgd"), name, &n), *wl = tensor_of(ckpt("lars_lars"), name, &m);
        snprintf(name, sizeof name, "momentum.%s.weight", layers[k]);
        float *v1 = tensor_of(ckpt("lars_sgd"), name, &n), *vl = tensor_of(ckpt("lars_lars"), name, &m);
        CHECK(w1 && wl && v1 && vl && n == m, "%s: tensors missing", layers[k]);
        if (!(w1 && wl && v1 && vl && n == m)) { free(w1), free(wl), free(v1), free(vl); continue; }
        /* sgd: v1 = -lr (g + wd w0), w1 = w0 + v1 */
        double w2 = 0, g2 = 0, lr = 0.5, wd = 0.0005;
        for (size_t i = 0; i < n; i++) {
            double w0 = (double)w1[i] - v1[i], g = -v1[i] / lr - wd * w0;
            w2 += w0 * w0, g2 += g * g;
        }
        double ratio = sgd_lars_ratio(sqrt(w2), sqrt(g2), 0.002f, 0.0005f), worst = 0, vmax = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(vl[i] - ratio * v1[i])), vmax = fmax(vmax, fabs(v1[i] * ratio));
        CHECK(ratio < 0.5 && worst <= 1e-4 * vmax, "%s: LARS step vs SGD step x %g: off by %g of %g", layers[k], ratio, worst, vmax);
        free(w1), free(wl), free(v1), free(vl);
    }
    size_t n = 0, m = 0;
    float *b1 = tensor_of(ckpt("lars_sgd"), "momentum.conv1.bias", &n), *bl = tensor_of(ckpt("lars_lars"), "momentum.conv1.bias", &m);
    CHECK(b1 && bl && n == m && memcmp(b1, bl, n * 4) == 0, "the biases' step is not SGD's");
    free(b1), free(bl);
}
