/* test_cli.c: the command line as a user meets it: the layer tables, classify's output, and a
 * one-line "alexnet: <file>: <problem>" error with a non-zero exit for every kind of bad input. */
#include "harness.h"
#include "../src/cuda/cuda_api.h"
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/util/common.h"
#include "../src/util/png.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define g_out harness_out
#define g_err harness_err
#define run harness_run
#define expect_error harness_expect_error

#define write_bytes harness_write
#define tmp harness_path

TEST(cli_info_parameter_counts) {
    CHECK(run("info --model alexnet") == 0, "%s", g_err);
    CHECK(strstr(g_out, "total parameters: 60,965,224"), "alexnet:\n%s", g_out);
    CHECK(strstr(g_out, "96x55x55") && strstr(g_out, "256x6x6"), "alexnet shapes:\n%s", g_out);
    CHECK(run("info --model alexnet-owt") == 0, "%s", g_err);
    CHECK(strstr(g_out, "total parameters: 61,100,840"), "alexnet-owt:\n%s", g_out);
    CHECK(run("info --model convnet4 --classes 10 --channels 1 --size 28") == 0, "%s", g_err);
    CHECK(strstr(g_out, "64x2x2"), "convnet4 on 28x28:\n%s", g_out);
    CHECK(run("train --help") == 0 && strstr(g_out, "--resume"), "train --help");
}

TEST(cli_bad_arguments) {
    expect_error("info --model alexnet9", "unknown model 'alexnet9'");
    expect_error("info --model alexnet --frobnicate 3", "unknown flag '--frobnicate'");
    expect_error("train --model convnet4 --data /usr/share/datasets/fashion-mnist --epochs x", "bad value 'x'");
    expect_error("frobnicate", "unknown command");
    expect_error("info --model convnet4 --size 4", "too small");
}

TEST(cli_bad_datasets) {
    char args[1200];
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s", tmp("no-such-folder"), tmp("o1"));
    expect_error(args, "no-such-folder");
    /* wrong IDX magic */
    char dir[400];
    snprintf(dir, sizeof dir, "%s", tmp("badidx"));
    snprintf(args, sizeof args, "mkdir -p %s", dir);
    CHECK(system(args) == 0, "mkdir");
    unsigned char hdr[16] = {0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28};
    char p[500];
    const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        write_bytes(p, hdr, sizeof hdr);
    }
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s", dir, tmp("o2"));
    expect_error(args, "train-images-idx3-ubyte");
    expect_error(args, "magic");
    /* truncated CIFAR-10 */
    snprintf(dir, sizeof dir, "%s", tmp("badcifar"));
    snprintf(args, sizeof args, "mkdir -p %s", dir);
    CHECK(system(args) == 0, "mkdir");
    static unsigned char rec[3073 * 2];
    for (int i = 1; i <= 5; i++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", dir, i);
        write_bytes(p, rec, i == 3 ? 3073 + 100 : 3073 * 2);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", dir);
    write_bytes(p, rec, 3073);
    snprintf(args, sizeof args, "train --model convnet4 --data %s --out %s", dir, tmp("o3"));
    expect_error(args, "data_batch_3.bin");
}

TEST(cli_bad_checkpoints) {
    char args[1200];
    const char *fm = "/usr/share/datasets/fashion-mnist";
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --data %s", tmp("missing.safetensors"), fm);
    expect_error(args, "missing.safetensors");
    /* truncated header: says 4096 bytes, has 10 */
    unsigned char trunc[18] = {0, 16, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"', ':', ' ', ' ', ' ', ' ', ' '};
    write_bytes(tmp("trunc.safetensors"), trunc, sizeof trunc);
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --data %s", tmp("trunc.safetensors"), fm);
    expect_error(args, "trunc.safetensors");
    /* corrupt JSON header */
    const char bad[] = "\x10\0\0\0\0\0\0\0{\"a\": [1, 2,,]} ";
    write_bytes(tmp("corrupt.safetensors"), bad, sizeof bad - 1);
    snprintf(args, sizeof args, "eval --model convnet4 --weights %s --data %s", tmp("corrupt.safetensors"), fm);
    expect_error(args, "corrupt.safetensors");
    /* a checkpoint of another model */
    Net net;
    if (net_create(&net, model_find("convnet4"), 1, 10, 28, 1) == 0) {
        net_init(&net, 1);
        Norm norm = norm_imagenet(1);
        CHECK(checkpoint_save(tmp("c4.safetensors"), &net, NULL, NULL, &norm, NULL) == 0, "%s", an_last_error());
        net_free(&net);
    }
    snprintf(args, sizeof args, "eval --model convnet4-tanh --weights %s --data %s", tmp("c4.safetensors"), fm);
    expect_error(args, "checkpoint is for model 'convnet4', not 'convnet4-tanh'");
    snprintf(args, sizeof args, "classify --model alexnet --weights %s x.png", tmp("c4.safetensors"));
    expect_error(args, "c4.safetensors");
    /* a weights file is not a training checkpoint */
    snprintf(args, sizeof args, "train --data %s --resume %s --out %s", fm, tmp("c4.safetensors"), tmp("o4"));
    expect_error(args, "not a training checkpoint");
}

TEST(cli_classify) {
    /* a tiny convnet4 on 3-channel 32x32 input, saved; classify a PNG and a broken file */
    Net net;
    if (net_create(&net, model_find("convnet4"), 3, 10, 32, 1)) { CHECK(0, "%s", an_last_error()); return; }
    net_init(&net, 5);
    Norm norm = norm_imagenet(3);
    CHECK(checkpoint_save(tmp("c43.safetensors"), &net, NULL, NULL, &norm, NULL) == 0, "%s", an_last_error());
    net_free(&net);
    static uint8_t rgb[40 * 50 * 3];
    for (int i = 0; i < 40 * 50 * 3; i++) rgb[i] = (uint8_t)(i * 7);
    CHECK(png_write_rgb(tmp("pic.png"), rgb, 50, 40) == 0, "%s", an_last_error());
    FILE *f = fopen(tmp("labels.txt"), "w");
    for (int i = 0; i < 10; i++) fprintf(f, "class%d\n", i);
    fclose(f);
    char args[1200];
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s --labels %s --top 3 %s", tmp("c43.safetensors"),
             tmp("labels.txt"), tmp("pic.png"));
    CHECK(run(args) == 0, "%s", g_err);
    char path[400];
    int rank[3], cls[3], n = 0;
    float prob[3];
    char name[3][32];
    CHECK(sscanf(g_out, "%399s\n%d %f %d %31s\n%d %f %d %31s\n%d %f %d %31s", path, &rank[0], &prob[0], &cls[0], name[0],
                 &rank[1], &prob[1], &cls[1], name[1], &rank[2], &prob[2], &cls[2], name[2]) == 13,
          "classify output:\n%s", g_out);
    for (int i = 0; i < 3; i++) {
        n += rank[i] == i + 1;
        char want[32];
        snprintf(want, sizeof want, "class%d", cls[i]);
        CHECK(strcmp(want, name[i]) == 0, "name %s for class %d", name[i], cls[i]);
    }
    CHECK(n == 3 && prob[0] >= prob[1] && prob[1] >= prob[2] && prob[0] > 0 && prob[0] <= 1, "ranks/probabilities:\n%s", g_out);
    write_bytes(tmp("broken.jpg"), "\xff\xd8\xff\xe0 this is not really a jpeg", 30);
    snprintf(args, sizeof args, "classify --model convnet4 --weights %s %s", tmp("c43.safetensors"), tmp("broken.jpg"));
    expect_error(args, "broken.jpg");
}

/* alexnet bench --model: a real timed step, the per-layer table and the final images/s line; the
 * FLOPs per image it reports come from the layer table (convnet4 on 32x32: forward x 3 per step). */
TEST(cli_bench_model) {
    CHECK(run("bench --model convnet4 --mode train --batch 8 --steps 2 --warmup 1 --classes 10 --layers") == 0,
          "%s", g_err);
    double rate = -1;
    const char *last = strstr(g_out, "images/s: ");
    if (last) rate = atof(last + 10);
    CHECK(rate > 0, "no images/s line:\n%s", g_out);
    CHECK(strstr(g_out, "2 timed steps after 1 warm-up") && strstr(g_out, "bwd ms") && strstr(g_out, "conv1"),
          "bench output:\n%s", g_out);
    CHECK(strstr(g_out, "FMA peak") != NULL, "no peak:\n%s", g_out);
    CHECK(run("bench --model alexnet-owt --mode infer --batch 1 --steps 1 --warmup 0") == 0, "%s", g_err);
    CHECK(strstr(g_out, "1 timed step after 0 warm-up") && strstr(g_out, "images/s: "), "infer:\n%s", g_out);
    /* --input: the README job's Fashion-MNIST images (1 channel of 28 x 28) */
    CHECK(run("bench --model convnet4 --batch 4 --steps 1 --warmup 0 --classes 10 --input 1x28") == 0, "%s", g_err);
    CHECK(strstr(g_out, "input 1x28x28") && strstr(g_out, "images/s: "), "bench --input 1x28:\n%s", g_out);
    expect_error("bench --model convnet4 --input 28", "--input must be CxS");
    expect_error("bench --model convnet4 --input 5x28", "--input must be CxS");
    expect_error("bench --model alexnet --mode fly", "--mode must be train or infer");
    expect_error("bench --model alexnet --precision fp8", "--precision must be fp32 or bf16");
    /* bf16: runs, and says on stderr what computes the products (AMX, dot products or float32 kernels) */
    CHECK(run("bench --model convnet4 --mode train --batch 8 --steps 1 --warmup 0 --precision bf16") == 0, "%s", g_err);
    CHECK(strstr(g_out, "bf16") && strstr(g_out, "images/s: ") && strstr(g_err, "bfloat16 operands") &&
          strstr(g_err, "AMX"), "bench bf16:\n%s%s", g_out, g_err);
    expect_error("train --model convnet4 --data /nonexistent --precision fp16", "--precision must be fp32 or bf16");
    expect_error("bench --model alexnet --device tpu", "--device must be cpu or cuda");
    /* without a GPU (this build with CUDA, or a CPU-only build), --device cuda says why and stops */
    if (cuda_init(NULL, 0) != 0) {
        const char *why = cuda_built() ? "--device cuda: no CUDA GPU" : "no CUDA support";
        expect_error("bench --model alexnet --device cuda --steps 1", why);
        expect_error("train --model convnet4 --data /usr/share/datasets/fashion-mnist --device cuda --epochs 1", why);
        expect_error("eval --model convnet4 --weights w.safetensors --data d --device cuda --precision bf16", why);
    }
    expect_error("train --model convnet4 --data d --device cuda --precision fp16", "--precision must be fp32, tf32 or bf16");
    expect_error("eval --model convnet4 --weights w --data d --device tpu", "--device must be cpu or cuda");
    expect_error("bench --model alexnet --device cuda --precision fp8", "--precision must be fp32, tf32 or bf16");
    expect_error("bench --model nosuch", "unknown model 'nosuch'");
    expect_error("bench --model alexnet --batch 0", "--batch must be >= 1");
    expect_error("bench", "give one of --model NAME, --loader or --peak");
    CHECK(run("bench --peak") == 0 && strstr(g_out, "GFLOP/s: "), "peak:\n%s%s", g_out, g_err);
    CHECK(atof(strstr(g_out, "GFLOP/s: ") + 9) > 0.5, "peak %s", g_out);
}
