/* classify.c: the five most probable classes of image files, through the alexnet library.
 * Build against an installed library and run:
 *     cc classify.c $(pkg-config --cflags --libs alexnet) -o classify
 *     ./classify best.safetensors photo.jpg...
 * It prints what `alexnet classify --weights best.safetensors --top 5 photo.jpg` prints:
 * one line per image, then "rank probability index name" for each of the five. */
#include <alexnet.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s WEIGHTS IMAGE...\n", argv[0]);
        return 2;
    }
    alexnet_net *net = alexnet_load(argv[1], NULL, 1); /* the model the file names; batches of 1 */
    if (!net) {
        fprintf(stderr, "classify: %s\n", alexnet_last_error());
        return 1;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        alexnet_class top[5];
        int r = alexnet_classify_file(net, argv[i], 5, top);
        if (r < 0) { /* a missing or corrupt image: say so, go on with the others */
            fprintf(stderr, "classify: %s\n", alexnet_last_error());
            rc = 1;
            continue;
        }
        printf("%s\n", argv[i]);
        for (int k = 0; k < r; k++)
            printf("%d %.6f %d %s\n", k + 1, top[k].prob, top[k].index, top[k].name ? top[k].name : "-");
    }
    alexnet_free(net);
    return rc;
}
