/* test_cli_resume.c: training runs stopped and continued as a user does it, through the real binary:
 * --max-steps on --resume never trains past its step (issue 18, point 1). Fashion-MNIST (Debian's
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
