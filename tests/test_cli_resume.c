/* test_cli_resume.c: training runs stopped and continued as a user does it, through the real binary:
 * --max-steps on --resume never trains past its step (issue 18, point 1); `--resume FILE` alone
 * continues the run with its own flags, and into another --out it carries the log and the best
 * weights (point 3). Fashion-MNIST (Debian's
 * dataset-fashion-mnist; skipped without it). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL "--model convnet4 --data " FMNIST " --limit-train 256 --limit-val 64 --batch 32 --epochs 2"

/* the bytes of a file, compared with another copy */
static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = harness_read_file(a, &na), *y = harness_read_file(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return same;
}

TEST(cli_max_steps_on_resume_never_passes_its_step) {
    NEED_FMNIST();
    char out[700], ckpt[800], copy[800], args[2400];
    snprintf(out, sizeof out, "%s", harness_path("maxsteps"));
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(copy, sizeof copy, "%s/step4.safetensors", out);
    snprintf(args, sizeof args, "train " SMALL " --out %s --max-steps 4", out);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "stopped at step 4"), "%s", harness_err);
    snprintf(args, sizeof args, "cp %s %s", ckpt, copy);
    CHECK(system(args) == 0, "cp");
    /* resumed at step 4: --max-steps 4 and --max-steps 2 have nothing to do; the checkpoint stays */
    for (int max = 4; max >= 2; max -= 2) {
        snprintf(args, sizeof args, "train " SMALL " --out %s --resume %s --max-steps %d", out, ckpt, max);
        CHECK(harness_run(args) == 0, "%s", harness_err);
        CHECK(!strstr(harness_err, "step 5") && strstr(harness_err, "already at step 4"),
              "--max-steps %d from step 4: %s", max, harness_err);
        CHECK(same_file(ckpt, copy), "--max-steps %d from step 4 changed the checkpoint", max);
    }
    snprintf(args, sizeof args, "train " SMALL " --out %s --resume %s --max-steps 6", out, ckpt);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "stopped at step 6") && !strstr(harness_err, "step 7"), "%s",
          harness_err);
}

/* the number of epoch lines of a log.csv (0 when absent) */
static int log_epochs(const char *dir) {
    char path[900];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    size_t n = 0;
    char *text = (char *)harness_read_file(path, &n);
    int lines = 0;
    for (size_t i = 0; text && i < n; i++) lines += text[i] == '\n';
    free(text);
    return lines ? lines - 1 : 0;
}

TEST(cli_resume_alone_continues_the_run) {
    NEED_FMNIST();
    char out[700], other[700], ckpt[800], args[2400];
    snprintf(out, sizeof out, "%s", harness_path("alone"));
    snprintf(other, sizeof other, "%s", harness_path("elsewhere"));
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    /* 8 steps an epoch: stopped in epoch 2 */
    snprintf(args, sizeof args, "train " SMALL " --out %s --max-steps 10 --no-flip --lighting 0", out);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "continue with --resume"), "%s", harness_err);
    /* into another folder: the log and best weights come along, the run ends there */
    snprintf(args, sizeof args, "train --resume %s --out %s", ckpt, other);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "carried log.csv, best.safetensors"), "%s", harness_err);
    CHECK(log_epochs(other) == 2, "%s: %d epochs in the log", other, log_epochs(other));
    /* exactly what the hint says: the flags come from the checkpoint (--data, --out, --epochs 2, ...) */
    snprintf(args, sizeof args, "train --resume %s", ckpt);
    CHECK(harness_run(args) == 0 && strstr(harness_err, "done: 2 epochs"), "%s", harness_err);
    CHECK(log_epochs(out) == 2, "%s: %d epochs in the log", out, log_epochs(out));
    /* the two continuations are one run: the same final log line */
    char a[900], b[900];
    snprintf(a, sizeof a, "%s/log.csv", out);
    snprintf(b, sizeof b, "%s/log.csv", other);
    size_t na = 0, nb = 0;
    char *la = (char *)harness_read_file(a, &na), *lb = (char *)harness_read_file(b, &nb);
    const char *ea = la ? strstr(la, "\n2,") : NULL, *eb = lb ? strstr(lb, "\n2,") : NULL;
    /* epoch, lr, train loss, train error, val loss, val errors: the same numbers (times differ) */
    size_t upto = 0; /* the first 7 fields */
    for (int commas = 0; ea && ea[upto] && commas < 7; upto++) commas += ea[upto] == ',';
    CHECK(ea && eb && upto > 20 && !strncmp(ea, eb, upto), "the two continuations differ: %.80s | %.80s", ea ? ea : "-", eb ? eb : "-");
    free(la), free(lb);
    /* a flag given again wins over the stored one */
    snprintf(args, sizeof args, "train --resume %s --epochs 3 --quiet", ckpt);
    CHECK(harness_run(args) == 0 && log_epochs(out) == 3, "--epochs 3: %d epochs, %s", log_epochs(out), harness_err);
}
