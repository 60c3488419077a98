/* make_seeds.c: writes the seed corpora of fuzz/corpus/<name>/ (run by fuzz/make_seeds.sh). Every
 * seed is a small valid input of its harness, in the harness's input layout (see each
 * fuzz/fuzz_<name>.c): the fuzzer starts from files the readers accept and mutates from there.
 * Deterministic: running it again gives the same bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../src/model/model.h"
#include "../src/train/checkpoint.h"
#include "../src/train/safetensors.h"
#include "../src/util/common.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

static const char *g_out;

typedef struct Buf { uint8_t *p; size_t n, cap; } Buf;

static void put(Buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void put8(Buf *b, unsigned v) { uint8_t c = (uint8_t)v; put(b, &c, 1); }
static void put_be32(Buf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, p, 4);
}
static void put_le32(Buf *b, uint32_t v) {
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, p, 4);
}
static void put_le64(Buf *b, uint64_t v) { put_le32(b, (uint32_t)v), put_le32(b, (uint32_t)(v >> 32)); }

static void save(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_out, dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", g_out, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f)) { perror(path); exit(1); }
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    if (!p || (len > 0 && fread(p, 1, (size_t)len, f) != (size_t)len)) { perror(path); exit(1); }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void gzip(const Buf *in, Buf *out) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    uLong bound = deflateBound(&z, in->n) + 32;
    out->n = 0;
    put(out, NULL, 0);
    uint8_t *tmp = malloc(bound);
    z.next_in = in->p, z.avail_in = (uInt)in->n, z.next_out = tmp, z.avail_out = (uInt)bound;
    if (!tmp || deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    put(out, tmp, bound - z.avail_out);
    deflateEnd(&z);
    free(tmp);
}

/* ---- idx: [split][images][labels] ------------------------------------------------------------- */

static void idx_seed(const char *name, int n, int rows, int cols, int gz) {
    Buf im = {0}, lb = {0}, seed = {0};
    put_be32(&im, 0x803), put_be32(&im, (uint32_t)n), put_be32(&im, (uint32_t)rows), put_be32(&im, (uint32_t)cols);
    for (int i = 0; i < n * rows * cols; i++) put8(&im, (unsigned)(i * 37 % 256));
    put_be32(&lb, 0x801), put_be32(&lb, (uint32_t)n);
    for (int i = 0; i < n; i++) put8(&lb, (unsigned)(i * 3 % 10));
    if (gz) {
        Buf a = {0}, b = {0};
        gzip(&im, &a), gzip(&lb, &b);
        free(im.p), free(lb.p);
        im = a, lb = b;
    }
    put_le32(&seed, (uint32_t)im.n);
    put(&seed, im.p, im.n);
    put(&seed, lb.p, lb.n);
    save("idx", name, seed.p, seed.n);
    free(im.p), free(lb.p), free(seed.p);
}

/* ---- cifar10: records of label + 3072 bytes -------------------------------------------------- */

static void cifar_seed(const char *name, int records) {
    Buf b = {0};
    for (int r = 0; r < records; r++) {
        put8(&b, (unsigned)(r * 7 % 10));
        for (int i = 0; i < 3072; i++) put8(&b, (unsigned)((i / 32 + i % 32 + r * 50) % 256));
    }
    save("cifar10", name, b.p, b.n);
    free(b.p);
}

/* ---- safetensors -------------------------------------------------------------------------- */

static void st_seed(const char *name, const StTensor *t, int n, const char *const *kv) {
    char path[1024];
    snprintf(path, sizeof path, "%s/.seed.safetensors", g_out);
    if (st_write(path, t, n, kv)) { fprintf(stderr, "%s\n", an_last_error()); exit(1); }
    size_t len;
    uint8_t *p = slurp(path, &len);
    remove(path);
    save("safetensors", name, p, len);
    free(p);
}

static void safetensors_seeds(void) {
    static float f[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    static double d[2] = {0.25, -1};
    static uint16_t h[4] = {0x3c00, 0xc000, 0x3f80, 0};
    static int64_t l[3] = {1, -2, 1LL << 40};
    static int32_t i32[2] = {5, -6};
    static uint8_t u[3] = {0, 1, 255};
    StTensor one[1] = {{.name = "w", .dtype = ST_F32, .ndim = 2, .shape = {2, 3}, .nbytes = 24, .data = f}};
    const char *kv1[] = {"format", "pt", NULL};
    st_seed("f32.safetensors", one, 1, kv1);
    StTensor all[] = {
        {.name = "f32", .dtype = ST_F32, .ndim = 1, .shape = {6}, .nbytes = 24, .data = f},
        {.name = "f64", .dtype = ST_F64, .ndim = 1, .shape = {2}, .nbytes = 16, .data = d},
        {.name = "f16", .dtype = ST_F16, .ndim = 2, .shape = {2, 2}, .nbytes = 8, .data = h},
        {.name = "bf16", .dtype = ST_BF16, .ndim = 1, .shape = {4}, .nbytes = 8, .data = h},
        {.name = "i64", .dtype = ST_I64, .ndim = 1, .shape = {3}, .nbytes = 24, .data = l},
        {.name = "i32", .dtype = ST_I32, .ndim = 0, .nbytes = 4, .data = i32},
        {.name = "u8", .dtype = ST_U8, .ndim = 3, .shape = {1, 1, 3}, .nbytes = 3, .data = u},
        {.name = "i8", .dtype = ST_I8, .ndim = 1, .shape = {3}, .nbytes = 3, .data = u},
        {.name = "bool", .dtype = ST_BOOL, .ndim = 1, .shape = {2}, .nbytes = 2, .data = u},
        {.name = "empty", .dtype = ST_F32, .ndim = 2, .shape = {0, 3}, .nbytes = 0, .data = NULL},
    };
    st_seed("dtypes.safetensors", all, (int)(sizeof all / sizeof all[0]), NULL);
    StTensor odd[] = {{.name = "caf\xc3\xa9 \"q\" \\ \xe2\x98\x83\t\x01", .dtype = ST_F32, .ndim = 1, .shape = {1},
                       .nbytes = 4, .data = f},
                      {.name = "\xf0\x9f\x98\x80/x.y", .dtype = ST_U8, .ndim = 1, .shape = {2}, .nbytes = 2, .data = u}};
    const char *kv2[] = {"note", "tab\there \"quoted\" \\ \xe2\x98\x83", "", "empty key", NULL};
    st_seed("escapes.safetensors", odd, 2, kv2);
    st_seed("empty.safetensors", NULL, 0, NULL);
    /* a hand-written header: whitespace, an unknown key with nested values, numbers of every form */
    const char *json = "{ \"__metadata__\" : { \"k\" : \"v\" } ,\n \"t\" : {\"dtype\":\"I8\", \"extra\": [1, -2.5e+3, "
                       "{\"a\": [true, false, null]}, \"\\u00e9\\ud83d\\ude00\"], \"shape\":[2], \"data_offsets\":[0,2]} }";
    Buf b = {0};
    put_le64(&b, strlen(json));
    put(&b, json, strlen(json));
    put(&b, "\x01\x02", 2);
    save("safetensors", "handwritten.safetensors", b.p, b.n);
    free(b.p);
}

/* ---- checkpoint: [model][zeros to append][safetensors header] ------------------------------ */

static void ckpt_seed(const char *name, int model_byte, const char *model, int in_c, int classes, int in_size,
                      int train_state, int paper) {
    Net net;
    if (net_create(&net, model_find(model), in_c, classes, in_size, 1)) { fprintf(stderr, "%s\n", an_last_error()); exit(1); }
    net_init(&net, 7);
    Norm norm = norm_imagenet(in_c);
    if (paper) {
        norm.paper = 1, norm.scale = 1.0f / 64;
        norm.mean_image = calloc((size_t)3 * 256 * 256, sizeof(float));
        norm.pca.eigval[0] = 1, norm.pca.eigvec[0][0] = norm.pca.eigvec[1][1] = norm.pca.eigvec[2][2] = 1;
    }
    float *momentum = train_state ? calloc(net.nparams, sizeof(float)) : NULL;
    TrainState st = {.epoch = 2, .step_in_epoch = 0, .step = 20, .lr = 0.01f, .seed = 3, .best_err = 0.5,
                     .bad_epochs = 1, .drops = 0, .loss_sum = 0, .err_sum = 0, .seen = 0, .seconds = 1.5};
    char path[1024];
    snprintf(path, sizeof path, "%s/.seed.safetensors", g_out);
    if (checkpoint_save(path, &net, momentum, train_state ? &st : NULL, &norm, train_state ? "caffe" : NULL)) {
        fprintf(stderr, "%s\n", an_last_error());
        exit(1);
    }
    size_t len;
    uint8_t *p = slurp(path, &len);
    remove(path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    Buf b = {0};
    put8(&b, (unsigned)model_byte);
    put_le32(&b, (uint32_t)(len - 8 - hlen));
    put(&b, p, 8 + hlen); /* the data (zeros in the harness) is not stored */
    save("checkpoint", name, b.p, b.n);
    free(b.p), free(p), free(momentum), free(norm.mean_image);
    net_free(&net);
}

/* ---- shard: the header and class names; the harness adds the rest ---------------------------- */

static void shard_seed(const char *name, uint32_t n0, uint32_t n1, const char *names, size_t names_len,
                       uint32_t classes, int truncate_flag) {
    const uint64_t img = 3ull * 256 * 256, images0 = 4096, images1 = images0 + n0 * img;
    const uint64_t labels0 = images1 + n1 * img, labels1 = labels0 + 4ull * n0;
    const uint64_t mean = (labels1 + 4ull * n1 + 4095) / 4096 * 4096, pca = mean + 4 * img;
    const uint64_t size = pca + 48 + 16;
    Buf b = {0};
    put(&b, "ALEXSHRD", 8);
    put_le32(&b, 1), put_le32(&b, 128), put_le32(&b, 256), put_le32(&b, 3), put_le32(&b, classes);
    put_le32(&b, n0), put_le32(&b, n1), put_le32(&b, truncate_flag ? 1 : 0);
    put_le64(&b, 128), put_le64(&b, names_len);
    put_le64(&b, labels0), put_le64(&b, labels1), put_le64(&b, images0), put_le64(&b, images1);
    put_le64(&b, mean), put_le64(&b, pca), put_le64(&b, size);
    put_le64(&b, 0), put_le64(&b, 0); /* reserved; checksum 0: the harness computes it */
    put(&b, names, names_len);
    save("shard", name, b.p, b.n);
    free(b.p);
}

/* ---- image: JPEG and PNG ------------------------------------------------------------------- */

static void jpeg_seed(const char *name, int w, int h, int comps, int progressive) {
    unsigned char *mem = NULL;
    unsigned long len = 0;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h, c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 75, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * comps);
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < w * comps; i++) row[i] = (unsigned char)(i * 29 + c.next_scanline * 11);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    save("image", name, mem, len);
    free(row), free(mem);
}

static void png_to_buf(png_structp png, png_bytep data, png_size_t n) { put(png_get_io_ptr(png), data, n); }
static void png_flush_none(png_structp png) { (void)png; }

static void png_seed(const char *name, int w, int h, int depth, int type, int interlace, int trns) {
    Buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) exit(1);
    png_set_write_fn(png, &b, png_to_buf, png_flush_none);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
        png_set_PLTE(png, info, pal, 4);
        if (trns) {
            png_byte alpha[2] = {0, 128};
            png_set_tRNS(png, info, alpha, 2, NULL);
        }
    }
    png_write_info(png, info);
    int channels = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGBA ? 4
                 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = ((size_t)w * channels * depth + 7) / 8;
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) {
        rows[y] = malloc(rowbytes);
        for (size_t i = 0; i < rowbytes; i++) rows[y][i] = (png_byte)(type == PNG_COLOR_TYPE_PALETTE ? (i + y) & 0x55 : i * 31 + y * 7);
    }
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    save("image", name, b.p, b.n);
    for (int y = 0; y < h; y++) free(rows[y]);
    free(rows), free(b.p);
}

/* ---- labels: [mode][file] ------------------------------------------------------------------- */

static void text_seed(const char *dir, const char *name, int mode, const char *text) {
    Buf b = {0};
    if (mode >= 0) put8(&b, (unsigned)mode);
    put(&b, text, strlen(text));
    save(dir, name, b.p, b.n);
    free(b.p);
}

/* ---- cli: NUL-separated arguments --------------------------------------------------------- */

static void cli_seed(const char *name, const char *const *args) {
    Buf b = {0};
    for (int i = 0; args[i]; i++) put(&b, args[i], strlen(args[i]) + (args[i + 1] ? 1 : 0));
    save("cli", name, b.p, b.n);
    free(b.p);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: make_seeds OUT_DIR TESTS_VECTORS_DIR\n"); return 2; }
    g_out = argv[1];
    mkdir(g_out, 0755);

    idx_seed("plain-2x4x4", 2, 4, 4, 0);
    idx_seed("gzip-3x28x28", 3, 28, 28, 1);
    idx_seed("plain-1x1x7", 1, 1, 7, 0);

    cifar_seed("one.bin", 1);
    cifar_seed("three.bin", 3);

    safetensors_seeds();
    size_t n;
    char path[1024];
    snprintf(path, sizeof path, "%s/st_python.safetensors", argv[2]);
    uint8_t *p = slurp(path, &n);
    save("safetensors", "python.safetensors", p, n);
    free(p);

    ckpt_seed("convnet4-weights", 0, "convnet4", 3, 10, 32, 0, 0);
    ckpt_seed("convnet4-training", 0, "convnet4", 1, 10, 28, 1, 0);
    ckpt_seed("convnet4-paper-input", 0, "convnet4", 3, 4, 16, 1, 1);
    ckpt_seed("convnet4-tanh-gray", 1, "convnet4-tanh", 1, 2, 20, 0, 0);

    shard_seed("two-classes", 2, 1, "a\0b\0", 4, 2, 0);
    shard_seed("wordnet-ids", 1, 2, "n01440764\0n01443537\0n01484850\0", 30, 3, 0);
    shard_seed("truncated-in-use", 2, 2, "cat\0dog\0", 8, 2, 1);
    shard_seed("no-val", 1, 0, "x\0", 2, 1, 0);

    jpeg_seed("rgb.jpg", 8, 8, 3, 0);
    jpeg_seed("gray-odd.jpg", 5, 3, 1, 0);
    jpeg_seed("cmyk.jpg", 4, 4, 4, 0);
    jpeg_seed("progressive.jpg", 17, 9, 3, 1);
    jpeg_seed("one-pixel.jpg", 1, 1, 3, 0);
    png_seed("rgb.png", 6, 4, 8, PNG_COLOR_TYPE_RGB, 0, 0);
    png_seed("gray1.png", 7, 5, 1, PNG_COLOR_TYPE_GRAY, 0, 0);
    png_seed("palette-trns.png", 4, 4, 2, PNG_COLOR_TYPE_PALETTE, 0, 1);
    png_seed("rgba16.png", 3, 3, 16, PNG_COLOR_TYPE_RGBA, 0, 0);
    png_seed("interlaced.png", 9, 9, 8, PNG_COLOR_TYPE_RGB, 1, 0);
    png_seed("gray-alpha.png", 2, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, 0);

    text_seed("labels", "val-labels", 0,
              "ILSVRC2012_val_00000001.JPEG n01440764\nILSVRC2012_val_00000002.JPEG n01443537\n"
              "ILSVRC2012_val_00000003.png 3\ndup.jpg 0\ndup.png 1\n");
    text_seed("labels", "loc-val-solution", 2,
              "ImageId,PredictionString\r\nILSVRC2012_val_00000001,n01440764 10 20 30 40 n01440764 1 2 3 4\r\n"
              "ILSVRC2012_val_00000002,n01443537 0 0 5 5\r\nILSVRC2012_val_00000003,n01443537 1 1 2 2\r\n"
              "dup.jpg,2\r\ndup.png,n01440764\r\nILSVRC2012_val_00000099,n01440764 1 1 1 1\r\n");
    text_seed("labels", "comments-bom-indices", 4,
              "\xef\xbb\xbf# ground truth\n\n  val/ILSVRC2012_val_00000001.JPEG\t0 extra\n"
              "ILSVRC2012_val_00000002 1\n./x/ILSVRC2012_val_00000003.png,2\ndup.jpg 3\ndup.png 0\nmissing.jpg 1\n");
    text_seed("labels", "classes-list", 1, "tench\ngoldfish\ngreat white shark\ntiger shark\nhammerhead\n"
                                           "electric ray\nstingray\ncock\nhen\nostrich\n");
    text_seed("labels", "classes-crlf-extra", 3, "a\r\nb\r\n\r\nd\r\ne\r\nf\r\ng\r\nh\r\ni\r\nj\r\nk\r\nl\r\n");

    const char *c1[] = {"info", "--model", "convnet4", "--classes", "10", "--channels", "1", "--size", "28", NULL};
    const char *c2[] = {"train", "--model", "convnet4", "--data", "/nonexistent", "--epochs", "3", "--lr-drops",
                        "1,2", "--lr", "0.1", "--batch", "64", "--seed", "18446744073709551615", "--quiet", NULL};
    const char *c3[] = {"eval", "--model", "alexnet", "--weights", "w.safetensors", "--data", "d", "--crops", "10",
                        "--precision", "bf16", NULL};
    const char *c4[] = {"classify", "--model", "alexnet-owt", "--weights", "w", "--top", "3", "--device", "cuda",
                        "a.jpg", "b.png", NULL};
    const char *c5[] = {"prep", "--data", "d", "--out", "o.shard", "--threads", "2", NULL};
    const char *c6[] = {"bench", "--peak", NULL};
    const char *c7[] = {"bench", "--loader", "--data", "d", "--threads", "1", "--limit", "5", NULL};
    const char *c8[] = {"train", "--resume", "r.safetensors", "--out", "o", "--momentum", "0.5", "--lighting", "0",
                        "--no-flip", "--no-mean", "--no-random-crop", "--val-crops", "10", "--max-steps", "9", NULL};
    const char *c9[] = {"bench", "--model", "convnet4", "--mode", "infer", "--layers", NULL};
    const char *c10[] = {"info", "--help", NULL};
    cli_seed("info", c1), cli_seed("train", c2), cli_seed("eval", c3), cli_seed("classify", c4);
    cli_seed("prep", c5), cli_seed("bench-peak", c6), cli_seed("bench-loader", c7), cli_seed("train-resume", c8);
    cli_seed("bench-model", c9), cli_seed("help", c10);
    return 0;
}
