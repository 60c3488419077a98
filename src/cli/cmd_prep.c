/* cmd_prep.c: `alexnet prep`: turn an image folder into one shard file (256x256 images, labels,
 * class names, mean image and PCA eigenpairs) that training maps instead of decoding JPEGs. */
#include "args.h"
#include "commands.h"
#include "../data/shard.h"
#include "../util/common.h"
#include <omp.h>
#include <stdio.h>
#include <sys/stat.h>

static const char *HELP =
    "usage: alexnet prep --data PATH --out FILE [--threads N] [--quiet]\n"
    "\n"
    "Preprocesses the image folder PATH (train/<class>/*, val/<class>/*; JPEG or PNG) once, as the\n"
    "paper does: every image's shorter side is scaled to 256 and the centre 256x256 kept. Writes FILE\n"
    "(via FILE.tmp and a rename) holding both splits as planar RGB bytes, the labels, the class names,\n"
    "and the training split's mean image and RGB eigenpairs for PCA lighting (docs/FORMATS.md).\n"
    "Pass FILE as --data to train and eval. Files that do not decode are skipped with a warning.\n"
    "The output is byte-identical whatever the thread count.\n"
    "  --threads N   decoding threads (default: all cores)     --quiet   no progress lines\n"
    "  --val-split F a folder without val/: hold out this share of each class of train/ as the val split\n"
    "                (the same fixed split as train --val-split F)\n";

int cmd_prep(int argc, char **argv) {
    const char *data = NULL, *out = NULL;
    int threads = omp_get_max_threads(), quiet = 0, help = 0;
    float val_split = 0.0f;
    ArgSpec specs[] = {{"--data", ARG_STR, &data, NULL},
                       {"--out", ARG_STR, &out, NULL},
                       {"--threads", ARG_INT, &threads, NULL},
                       {"--quiet", ARG_FLAG, &quiet, NULL},
                       {"--val-split", ARG_FLOAT, &val_split, NULL}};
    if (args_parse("prep", argc, argv, 2, specs, 5, NULL, 0, &help) < 0) return fail();
    if (help) { fputs(HELP, stdout); return 0; }
    if (!data || !out) return an_error("prep: --data and --out are required"), fail();
    if (threads < 1) return an_error("prep: --threads must be at least 1"), fail();
    double t0 = an_now();
    int skipped = 0;
    if (shard_prep_split(data, out, threads, !quiet, &skipped, val_split) != 0) return fail();
    double seconds = an_now() - t0;
    Shard s;
    if (shard_open(out, &s) != 0) return fail();
    struct stat st;
    long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : -1;
    long images = (long)s.n[0] + s.n[1];
    printf("%s: %d train + %d val images, %d classes, %d skipped; %.2f GB; %.1f s, %.0f images/s\n", out,
           s.n[0], s.n[1], s.classes, skipped, bytes / 1e9, seconds, (images + skipped) / (seconds > 0 ? seconds : 1));
    printf("PCA (RGB covariance of training pixels, 0..255 units): eigenvalues %.2f %.2f %.2f\n",
           s.pca.eigval[0], s.pca.eigval[1], s.pca.eigval[2]);
    for (int i = 0; i < 3; i++)
        printf("  eigenvector %d: %+.4f %+.4f %+.4f\n", i, s.pca.eigvec[i][0], s.pca.eigvec[i][1],
               s.pca.eigvec[i][2]);
    shard_close(&s);
    return 0;
}
