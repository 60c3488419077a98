/* test_finetune.c: train --init / --reset / --freeze, and features + neighbours (Figure 4), through
 * the real binary. Fine-tuning: a convnet4
 * pre-trained on a 3-class folder is fine-tuned on a 2-class one. The frozen layers stay
 * bit-identical to the pre-trained ones, the others move, the classifier starts afresh with the
 * new class count, and the errors name the layer and the flag. Generated PNG folders. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "../src/data/image.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a folder of `classes` classes, 12 training and 4 validation 32x32 images each */
static const char *folder(const char *name, int classes, int salt) {
    static char dirs[2][1200];
    char *dir = dirs[classes == 2];
    snprintf(dir, sizeof dirs[0], "%s", harness_path(name));
    unsigned char px[32 * 32 * 3];
    for (int split = 0; split < 2; split++)
        for (int c = 0; c < classes; c++) {
            char path[1400];
            snprintf(path, sizeof path, "%.900s/%s/c%d", dir, split ? "val" : "train", c);
            harness_mkdirs(path);
            for (int i = 0; i < (split ? 4 : 12); i++) {
                for (int p = 0; p < 32 * 32 * 3; p++)
                    px[p] = (unsigned char)((p % 3 == c ? 160 : 50) + an_hash64(salt + split * 100 + c * 10 + i, p) % 60);
                snprintf(path, sizeof path, "%.900s/%s/c%d/%02d.png", dir, split ? "val" : "train", c, i);
                if (png_write_rgb(path, px, 32, 32)) return NULL;
            }
        }
    return dir;
}

/* tensor name of a checkpoint: its bytes (malloc'd) and size */
static unsigned char *tensor(const char *path, const char *name, size_t *bytes) {
    StFile f;
    unsigned char *out = NULL;
    *bytes = 0;
    if (st_read(path, &f)) return NULL;
    for (int i = 0; i < f.n; i++)
        if (!strcmp(f.tensors[i].name, name) && (out = malloc(f.tensors[i].nbytes))) {
            memcpy(out, f.tensors[i].data, f.tensors[i].nbytes);
            *bytes = f.tensors[i].nbytes;
        }
    st_free(&f);
    return out;
}

#define RUN "--model convnet4 --epochs 1 --batch 8 --seed 2 --quiet"

TEST(finetune_init_reset_freeze) {
    const char *a = folder("ft_three", 3, 1), *b;
    CHECK(a != NULL, "images");
    char a_dir[1200], pre[1200], out[1200], args[5000];
    snprintf(a_dir, sizeof a_dir, "%.1000s", a);
    b = folder("ft_two", 2, 7);
    CHECK(b != NULL, "images");
    snprintf(pre, sizeof pre, "%s", harness_path("ft_pre"));
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3", a_dir, pre);
    CHECK(harness_run(args) == 0, "pre-training: %s", harness_err);
    char pre_ckpt[1300];
    snprintf(pre_ckpt, sizeof pre_ckpt, "%s/checkpoint.safetensors", pre);
    snprintf(out, sizeof out, "%s", harness_path("ft_tuned"));
    /* without --reset the 3-class classifier does not fit 2 classes: named, with the way out */
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3 --init %s", b, out, pre_ckpt);
    harness_expect_error(args, "--reset fc4");
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3 --init %s --reset fc9", b, out, pre_ckpt);
    harness_expect_error(args, "no layer 'fc9'");
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3 --freeze conv1", b, out);
    int rc = harness_run(args); /* --freeze alone (no --init) is allowed: a fixed random layer */
    CHECK(rc == 0, "--freeze without --init: %s", harness_err);
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3 --reset fc4", b, out);
    harness_expect_error(args, "--reset needs --init");
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 3 --init %s --reset fc4 --freeze conv1,conv2",
             b, out, pre_ckpt);
    CHECK(harness_run(args) == 0, "fine-tuning: %s", harness_err);
    char tuned[1300];
    snprintf(tuned, sizeof tuned, "%s/checkpoint.safetensors", out);
    const char *names[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "fc4.weight"};
    for (int k = 0; k < 6; k++) {
        size_t n0, n1;
        unsigned char *t0 = tensor(pre_ckpt, names[k], &n0), *t1 = tensor(tuned, names[k], &n1);
        CHECK(t0 && t1, "%s missing", names[k]);
        if (t0 && t1) {
            int same = n0 == n1 && memcmp(t0, t1, n0) == 0;
            if (k < 4) CHECK(same, "%s (frozen) changed", names[k]);
            if (k == 4) CHECK(!same && n0 == n1, "%s (fine-tuned) did not move", names[k]);
            if (k == 5) CHECK(n1 * 3 == n0 * 2, "%s: %zu bytes, the 2-class classifier has %zu", names[k], n1, n0 * 2 / 3);
        }
        free(t0), free(t1);
    }
    size_t nm;
    unsigned char *m = tensor(tuned, "momentum.conv1.weight", &nm);
    int zero = m != NULL;
    for (size_t i = 0; m && i < nm; i++) zero &= m[i] == 0;
    CHECK(zero, "a frozen layer gathered momentum");
    free(m);
}

/* features + neighbours (Figure 4) on the 3-class folder: one row per readable image, and a
 * training image's nearest neighbour is itself at distance 0; the sheet decodes to its size */
TEST(features_and_neighbours) {
    const char *a = folder("fn_three", 3, 3);
    CHECK(a != NULL, "images");
    char dir[1200], run[1200], feats[1300], png[1300], query[1400], args[6000];
    snprintf(dir, sizeof dir, "%.1000s", a);
    snprintf(run, sizeof run, "%.1000s", harness_path("fn_run"));
    snprintf(args, sizeof args, "train " RUN " --data %s --out %s --max-steps 2", dir, run);
    CHECK(harness_run(args) == 0, "training: %s", harness_err);
    snprintf(feats, sizeof feats, "%.1000s", harness_path("fn_feats.safetensors"));
    snprintf(args, sizeof args, "features --weights %s/checkpoint.safetensors --data %s --out %s", run, dir, feats);
    CHECK(harness_run(args) == 0, "features: %s", harness_err);
    StFile f;
    CHECK(st_read(feats, &f) == 0, "%s", an_last_error());
    long rows = -1, dim = -1;
    for (int i = 0; i < f.n; i++)
        if (!strcmp(f.tensors[i].name, "features")) rows = (long)f.tensors[i].shape[0], dim = (long)f.tensors[i].shape[1];
    CHECK(rows == 36 && dim > 0, "features %ld x %ld (36 training images)", rows, dim);
    CHECK(st_meta(&f, "layer") && !strcmp(st_meta(&f, "layer"), "conv3"), "layer %s", st_meta(&f, "layer"));
    st_free(&f);
    snprintf(png, sizeof png, "%.1000s", harness_path("fn_sheet.png"));
    snprintf(query, sizeof query, "%s/train/c1/05.png", dir);
    snprintf(args, sizeof args, "neighbours --features %s --query %s --query %s --k 3 --out %s", feats, query, query, png);
    CHECK(harness_run(args) == 0, "neighbours: %s", harness_err);
    int rank = 0, index = -1;
    double d = -1;
    char cls[64] = "", path[1400] = "";
    const char *line = strchr(harness_out, '\n');
    CHECK(line && sscanf(line + 1, "%d %lf %d %63s %1399s", &rank, &d, &index, cls, path) == 5, "output: %s", harness_out);
    CHECK(rank == 1 && d == 0.0 && !strcmp(cls, "c1") && !strcmp(path, query), "nearest to itself: %d %g %s %s", rank, d,
          cls, path);
    Image img;
    CHECK(image_load(png, &img) == 0, "the sheet does not decode");
    CHECK(img.w == 4 + 96 + 12 + 3 * 100 && img.h == 4 + 2 * 100, "sheet %dx%d", img.w, img.h);
    image_free(&img);
    snprintf(args, sizeof args, "features --weights %s/checkpoint.safetensors --data %s --out %s --layer fc9", run, dir, feats);
    harness_expect_error(args, "no layer 'fc9'");
}
