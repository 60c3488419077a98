/* train_loop.c: training a network from your own program, through the alexnet library: the
 * four-layer network (convnet4) learns a made-up task, a bright bar whose row band is the class,
 * on 28 x 28 grey images with noise; then it is evaluated on images it never saw and saved.
 * Build against an installed library and run:
 *     cc train_loop.c $(pkg-config --cflags --libs alexnet) -o train_loop
 *     ./train_loop [OUT.safetensors]         (then: alexnet eval / classify --weights OUT...)
 * Your own data goes where make_batch is: (n, 1, 28, 28) floats, normalised, and n labels. */
#include <alexnet.h>
#include <stdio.h>
#include <stdlib.h>

enum { CLASSES = 10, SIZE = 28, BATCH = 32, STEPS = 300 };

/* a uniform number in [0, 1) from a linear congruential generator */
static float uniform(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 16777216.0f;
}

/* n images of (1, SIZE, SIZE) and their labels: noise in [-0.5, 0.5), plus 2 on the rows of the
 * bar of class label (rows 2 + 2 label, 3 + 2 label). */
static void make_batch(float *x, int *labels, int n, unsigned *seed) {
    for (int i = 0; i < n; i++) {
        int c = (int)(uniform(seed) * CLASSES);
        labels[i] = c;
        for (int p = 0; p < SIZE * SIZE; p++) {
            int row = p / SIZE;
            x[(size_t)i * SIZE * SIZE + p] = uniform(seed) - 0.5f + (row / 2 == 1 + c ? 2.0f : 0.0f);
        }
    }
}

static int fail(alexnet_net *net) {
    fprintf(stderr, "train_loop: %s\n", alexnet_last_error());
    alexnet_free(net);
    return 1;
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "train_loop.safetensors";
    alexnet_net *net = alexnet_create("convnet4", 1, CLASSES, SIZE, BATCH); /* He init, seed 1 */
    if (!net) return fail(NULL);
    float *x = malloc(sizeof(float) * BATCH * SIZE * SIZE);
    int labels[BATCH];
    unsigned seed = 1;
    if (!x) return fprintf(stderr, "train_loop: out of memory\n"), alexnet_free(net), 1;
    for (int step = 1; step <= STEPS; step++) {
        float loss;
        make_batch(x, labels, BATCH, &seed);
        if (alexnet_train_step(net, x, labels, BATCH, 0.01f, 0.9f, 0.0005f, &loss)) return free(x), fail(net);
        if (step % 50 == 0) printf("step %d  loss %.4f\n", step, loss);
    }
    alexnet_eval ev = {0}, sum = {0}; /* 10 batches of new images */
    for (int b = 0; b < 10; b++) {
        make_batch(x, labels, BATCH, &seed);
        if (alexnet_evaluate(net, x, labels, BATCH, &ev)) return free(x), fail(net);
        sum.count += ev.count, sum.top1 += ev.top1, sum.loss += ev.loss / 10;
    }
    free(x);
    printf("held-out: %d images, top-1 accuracy %.2f%%, loss %.4f\n", sum.count, 100.0 * sum.top1 / sum.count, sum.loss);
    if (alexnet_save(net, out)) return fail(net);
    printf("wrote %s\n", out);
    alexnet_free(net);
    return 0;
}
