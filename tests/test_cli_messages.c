/* test_cli_messages.c: what the command line says, checked through the real binary (issue 18,
 * points 6, 8 and 9): range errors name the flag and the value; --limit 0 is refused rather than
 * meaning "all"; the final summary survives --quiet and names best.safetensors; a 2-class run
 * prints no top-5 error; the help mentions bench --model and --peak and keeps tf32 to the GPU;
 * --save-best-only writes the weights alone at epoch ends and a stop still writes a checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

TEST(cli_range_errors_name_flag_and_value) {
    NEED_FMNIST();
    harness_expect_error("train --model convnet4 --data " FMNIST " --lr -1", "train: --lr must be a positive finite number, not -1");
    harness_expect_error("train --model convnet4 --data " FMNIST " --batch 0", "train: --batch must be at least 1, not 0");
    harness_expect_error("train --model convnet4 --data " FMNIST " --patience 0", "--patience must be at least 1, not 0");
    harness_expect_error("train --model convnet4 --data " FMNIST " --val-crops 3", "--val-crops must be 1 or 10, not 3");
    harness_expect_error("eval --weights x.safetensors --data " FMNIST " --limit -5", "eval: --limit must be at least 1, not -5");
    harness_expect_error("eval --weights x.safetensors --data " FMNIST " --limit 0", "eval: --limit must be at least 1, not 0");
    harness_expect_error("classify --weights x.safetensors --top 0 a.png", "classify: --top must be at least 1, not 0");
    harness_expect_error("bench --loader --data " FMNIST " --threads 0", "bench: --threads must be at least 1, not 0");
}

TEST(cli_help_says_what_runs_where) {
    CHECK(harness_run("--help") == 0 && strstr(harness_out, "bench") && strstr(harness_out, "--model NAME times") &&
              strstr(harness_out, "--peak"), "%s", harness_out);
    CHECK(harness_run("bench --help") == 0 && !strstr(harness_out, "fp32|bf16|tf32") && strstr(harness_out, "GPU"),
          "bench --help lists tf32 as a CPU precision: %s", harness_out);
    CHECK(harness_run("train --help") == 0 && strstr(harness_out, "--save-best-only") && strstr(harness_out, "455 MB"),
          "train --help does not say what checkpoints cost: %s", harness_out);
}

TEST(cli_quiet_run_still_reports_and_save_best_only) {
    NEED_FMNIST();
    char out[700], args[2000], path[800];
    snprintf(out, sizeof out, "%s", harness_path("bestonly"));
    snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s --epochs 1 --limit-train 256 "
             "--limit-val 64 --batch 32 --quiet --save-best-only", out);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    CHECK(strstr(harness_err, "done: 1 epochs") && strstr(harness_err, "best.safetensors") &&
              !strstr(harness_err, "checkpoint.safetensors") && !strstr(harness_err, "epoch 1:"),
          "--quiet summary: %s", harness_err);
    snprintf(path, sizeof path, "%s/best.safetensors", out);
    CHECK(exists(path), "no best.safetensors");
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    CHECK(!exists(path), "--save-best-only wrote a checkpoint at the epoch's end");
    /* a stop still writes one */
    snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s2 --epochs 1 --limit-train 256 "
             "--limit-val 64 --batch 32 --quiet --save-best-only --max-steps 3", out);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    snprintf(path, sizeof path, "%s2/checkpoint.safetensors", out);
    CHECK(exists(path), "a stop under --save-best-only left no checkpoint");
    snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --out %s3 --save-best-only --save-every 5", out);
    harness_expect_error(args, "not with --save-every");
}

TEST(cli_two_classes_print_no_top5) {
    /* a folder of 2 classes, 6 training and 2 validation images each */
    const char *root = harness_path("two");
    char dir[900], file[1000];
    unsigned char px[32 * 32 * 3];
    for (int split = 0; split < 2; split++)
        for (int c = 0; c < 2; c++) {
            snprintf(dir, sizeof dir, "%s/%s/c%d", root, split ? "val" : "train", c);
            harness_mkdirs(dir);
            for (int i = 0; i < (split ? 2 : 6); i++) {
                for (int q = 0; q < 32 * 32 * 3; q++) px[q] = (unsigned char)(c ? 200 - q % 50 : 30 + (q * 7 + i) % 40);
                snprintf(file, sizeof file, "%s/%d.jpg", dir, i);
                CHECK(harness_write_jpeg(file, px, 32, 32, 3, 90) == 0, "jpeg");
            }
        }
    char out[900], args[2400];
    snprintf(out, sizeof out, "%s", harness_path("two_run"));
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s --epochs 1 --batch 4", root, out);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "epoch 1: ") && !strstr(harness_err, "top-5"),
          "a 2-class run: %s", harness_err);
    snprintf(args, sizeof args, "eval --weights %s/best.safetensors --data %s", out, root);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "top-1 error") && !strstr(harness_out, "top-5"), "%s %s",
          harness_out, harness_err);
}

/* an image folder without val/: --val-split holds out a fixed share of train/ in train, eval, prep
 * and features alike (issue 18, point 7) */
TEST(cli_val_split_for_folders_without_val) {
    const char *root = harness_path("noval");
    char dir[900], file[1000];
    unsigned char px[32 * 32 * 3];
    for (int c = 0; c < 2; c++) {
        snprintf(dir, sizeof dir, "%s/train/c%d", root, c);
        harness_mkdirs(dir);
        for (int i = 0; i < 8; i++) {
            for (int q = 0; q < 32 * 32 * 3; q++) px[q] = (unsigned char)(c ? 220 - (q + i) % 60 : 20 + (q * 3 + i) % 50);
            snprintf(file, sizeof file, "%s/%d.jpg", dir, i);
            CHECK(harness_write_jpeg(file, px, 32, 32, 3, 90) == 0, "jpeg");
        }
    }
    char out[900], args[2400];
    snprintf(out, sizeof out, "%s", harness_path("noval_run"));
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s --epochs 1 --batch 4", root, out);
    harness_expect_error(args, "--val-split");
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s --epochs 1 --batch 4 --val-split 0.25", root, out);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "training on 12 images") && strstr(harness_err, "validating on 4"),
          "%s", harness_err);
    snprintf(args, sizeof args, "eval --weights %s/best.safetensors --data %s --val-split 0.25", out, root);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "(4 images"), "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "prep --data %s --out %s/s.shard --val-split 0.25 --quiet", root, out);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "12 train + 4 val images"), "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "features --weights %s/best.safetensors --data %s --split val --val-split 0.25 --out %s/f.st",
             out, root, out);
    CHECK(harness_run(args) == 0 && strstr(harness_out, ": 4 images"), "%s %s", harness_out, harness_err);
    snprintf(args, sizeof args, "neighbours --features %s/f.st --query %s/train/c0/0.jpg --k 2 --out %s/n.png", out, root,
             out);
    CHECK(harness_run(args) == 0, "neighbours of val-split features: %s", harness_err);
}

/* the README's command lines and parameter counts against the program (tools/readme_check.sh;
 * its --full mode also walks the main job from a fresh clone, too long for the tests) */
TEST(cli_readme_claims_hold) {
    FILE *p = popen("tools/readme_check.sh 2>&1", "r");
    char line[1024] = "", last[1024] = "";
    while (p && fgets(line, sizeof line, p)) snprintf(last, sizeof last, "%s", line);
    int rc = p ? pclose(p) : -1;
    CHECK(rc == 0 && strstr(last, "claims of the Commands block, the other command lines and the Models table hold"), "%s", last);
}

/* A run whose validation error never falls below 100% (one validation image, a rate too small to
 * move the start) still writes best.safetensors, as its "done:" line says (it said so and wrote
 * none: the best error started at 100% and only a lower one counted). */
TEST(train_best_written_at_full_error) {
    NEED_FMNIST();
    char out[1100], args[2400], best[1200];
    snprintf(out, sizeof out, "%.1000s", harness_path("best_full_error"));
    snprintf(args, sizeof args, "train --model convnet4 --data " FMNIST " --epochs 1 --limit-train 32 --limit-val 1 "
             "--batch 32 --lr 1e-9 --seed 1 --quiet --out %s", out);
    CHECK(harness_run(args) == 0, "%s", harness_err);
    CHECK(strstr(harness_err, "best validation top-1 error 100.00%"), "this run was to miss its one image: %s", harness_err);
    snprintf(best, sizeof best, "%s/best.safetensors", out);
    FILE *f = fopen(best, "rb");
    CHECK(f != NULL, "no %s, though the done line names it: %s", best, harness_err);
    if (f) fclose(f);
}

/* With OMP_PROC_BIND set, libgomp binds the main thread to one place before main; the program's
 * re-run of itself (for GOMP_SPINCOUNT) kept that one-CPU mask, so every thread ran on one CPU (half
 * the speed on two). bench names the CPUs OpenMP found when it started: all of this process's. */
TEST(cli_openmp_binding_keeps_every_cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    if (cpus < 2) SKIP("this process may run on one CPU only");
    const char *old_spin = getenv("GOMP_SPINCOUNT"), *old_policy = getenv("OMP_WAIT_POLICY"), *old_bind = getenv("OMP_PROC_BIND");
    char spin[64] = "", policy[64] = "", bind[64] = "";
    if (old_spin) snprintf(spin, sizeof spin, "%s", old_spin);
    if (old_policy) snprintf(policy, sizeof policy, "%s", old_policy);
    if (old_bind) snprintf(bind, sizeof bind, "%s", old_bind);
    unsetenv("GOMP_SPINCOUNT"), unsetenv("OMP_WAIT_POLICY"), setenv("OMP_PROC_BIND", "true", 1);
    char want[64];
    snprintf(want, sizeof want, " on %d CPUs (", cpus);
    CHECK(harness_run("bench --model convnet4 --batch 2 --steps 1 --warmup 0") == 0 && strstr(harness_out, want),
          "OMP_PROC_BIND=true: want \"%s\" in %s %s", want, harness_out, harness_err);
    setenv("OMP_PROC_BIND", "false", 1);
    CHECK(harness_run("bench --model convnet4 --batch 2 --steps 1 --warmup 0") == 0 && strstr(harness_out, want),
          "OMP_PROC_BIND=false: want \"%s\" in %s", want, harness_out);
    /* nothing said: the program pins one thread per CPU itself (src/cpu/bind.c) */
    unsetenv("OMP_PROC_BIND");
    snprintf(want, sizeof want, " on %d CPUs, one per CPU (", cpus);
    CHECK(harness_run("bench --model convnet4 --batch 2 --steps 1 --warmup 0") == 0 && strstr(harness_out, want),
          "no binding said: want \"%s\" in %s", want, harness_out);
    if (*spin) setenv("GOMP_SPINCOUNT", spin, 1);
    if (*policy) setenv("OMP_WAIT_POLICY", policy, 1);
    if (*bind) setenv("OMP_PROC_BIND", bind, 1);
}

/* The program waits at OpenMP barriers with a short spin (GOMP_SPINCOUNT=1000, set by re-running
 * itself, src/cli/main.c), unless the environment says otherwise; bench names what it runs with. */
TEST(cli_openmp_waiting_short_spin) {
    const char *old_spin = getenv("GOMP_SPINCOUNT"), *old_policy = getenv("OMP_WAIT_POLICY");
    char spin[64] = "", policy[64] = "";
    if (old_spin) snprintf(spin, sizeof spin, "%s", old_spin);
    if (old_policy) snprintf(policy, sizeof policy, "%s", old_policy);
    unsetenv("GOMP_SPINCOUNT"), unsetenv("OMP_WAIT_POLICY");
    const char *args = "bench --model convnet4 --batch 2 --steps 1 --warmup 0";
    CHECK(harness_run(args) == 0 && strstr(harness_out, "(OpenMP waiting: GOMP_SPINCOUNT=1000)"), "%s %s", harness_out,
          harness_err);
    setenv("GOMP_SPINCOUNT", "7", 1);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "(OpenMP waiting: GOMP_SPINCOUNT=7)"), "the user's: %s", harness_out);
    unsetenv("GOMP_SPINCOUNT"), setenv("OMP_WAIT_POLICY", "passive", 1);
    CHECK(harness_run(args) == 0 && strstr(harness_out, "(OpenMP waiting: OMP_WAIT_POLICY=passive)"), "policy: %s",
          harness_out);
    unsetenv("OMP_WAIT_POLICY");
    if (*spin) setenv("GOMP_SPINCOUNT", spin, 1);
    if (*policy) setenv("OMP_WAIT_POLICY", policy, 1);
}
