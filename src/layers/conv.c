/* conv.c: 2-D convolution with groups, as im2col followed by gemm per image and group.
 * Forward runs images in parallel; the weights are packed once per call and im2col writes straight
 * into the product's packed layout. Backward splits the batch into a fixed number of chunks, each
 * with its own weight-gradient buffer (its images a few at a time per product), and sums the chunks
 * in order, so gradients are identical for any thread count. Stride-1 3x3 and 5x5 layers of enough
 * channels run on Winograd's algorithm instead (winograd.c), in the same chunks, and strided layers
 * whose phases make such a layer (conv1) as that layer (conv_phase.c). */
#include "layers.h"
#include "winograd.h"
#include "../cpu/gemm.h"
#include "../util/common.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The weight gradient is summed over a batch in chunks (each chunk's sum in its own buffer, then
 * the chunks in order: the same bits whatever the thread count): at most CONV_CHUNKS, of at least
 * CONV_CHUNK_MIN images where the batch has them. Chunks of one or two images made small batches
 * pay every chunk's fixed work (Winograd's products of a few columns and its last transform) per
 * image: convnet4 at batch 32 on one thread 1,659 -> 2,350 images/s. */
#define CONV_CHUNKS 16
#define CONV_CHUNK_MIN 4

static int is_pointwise(const ConvShape *s) { return s->k == 1 && s->stride == 1 && s->pad == 0; }

void conv_shape_init(ConvShape *s) {
    s->out_h = (s->h + 2 * s->pad - s->k) / s->stride + 1;
    s->out_w = (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

/* Output columns ox whose input column ox * stride - pad + kx lies inside [0, w): [*lo, *hi). */
static void valid_range(int ow, int stride, int pad, int kx, int w, int *lo, int *hi) {
    int a = pad - kx, b = w + pad - kx; /* need a <= ox * stride < b */
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    *hi = b <= 0 ? 0 : (b + stride - 1) / stride;
    if (*hi > ow) *hi = ow;
    if (*lo > *hi) *lo = *hi;
}

/* dst[i] = src[i * st]; constant strides for the common cases so the loops vectorise */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void copy_strided(float *restrict dst, const float *restrict src, int n, int st) {
    switch (st) {
    case 1: for (int i = 0; i < n; i++) dst[i] = src[i]; break;
    case 2: for (int i = 0; i < n; i++) dst[i] = src[2 * i]; break;
    case 4: for (int i = 0; i < n; i++) dst[i] = src[4 * i]; break;
    default: for (int i = 0; i < n; i++) dst[i] = src[(long)i * st];
    }
}

/* dst[i * st] += src[i] */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void add_strided(float *restrict dst, const float *restrict src, int n, int st) {
    if (st == 1) for (int i = 0; i < n; i++) dst[i] += src[i];
    else for (int i = 0; i < n; i++) dst[(long)i * st] += src[i];
}

/* sum of n floats in float64, in eight fixed interleaved lanes (vectorised; the same order always) */
__attribute__((target_clones("avx512f", "avx2", "default")))
static double sum_plane(const float *x, int n) {
    double acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += x[i + l];
    for (int l = 0; i < n; i++, l++) acc[l] += x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* One row of im2col: the input seen by tap (ky, kx) of one channel's plane at every output
 * position, r (oh*ow), zero where the tap falls in the padding. */
static void im2col_row(const ConvShape *s, const float *plane, int ky, int kx, float *r) {
    int oh = s->out_h, ow = s->out_w, st = s->stride, pad = s->pad, lo, hi;
    valid_range(ow, st, pad, kx, s->w, &lo, &hi);
    for (int oy = 0; oy < oh; oy++, r += ow) {
        int iy = oy * st - pad + ky;
        if (iy < 0 || iy >= s->h) { memset(r, 0, ow * sizeof(float)); continue; }
        long base = (long)iy * s->w - pad + kx; /* input index of ox = 0 */
        for (int ox = 0; ox < lo; ox++) r[ox] = 0.0f;
        copy_strided(r + lo, plane + base + (long)lo * st, hi - lo, st);
        for (int ox = hi; ox < ow; ox++) r[ox] = 0.0f;
    }
}

/* x (cg, h, w) of one image and group -> cols (cg*k*k, oh*ow), rows ld floats apart; parallel
 * over channels when called outside a parallel region (a batch smaller than the thread count) */
static void im2col(const ConvShape *s, int cg, const float *x, float *cols, size_t ld) {
    int k = s->k;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && cg > 1)
    for (int c = 0; c < cg; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++)
                im2col_row(s, x + (size_t)c * s->h * s->w, ky, kx, cols + ((size_t)(c * k + ky) * k + kx) * ld);
}

/* Images per weight-gradient product: enough that the product sums over about CONV_DW_SPAN
 * output positions (13x13 planes: 4 images), so that each pass over the gradient's tiles carries
 * more work; 1 for pointwise convolutions (their input is used in place). */
#define CONV_DW_SPAN 512
static int dw_images(const ConvShape *s, int P) {
    return is_pointwise(s) ? 1 : (CONV_DW_SPAN + P - 1) / P;
}

/* The same straight into gemm's packed layout (gemm_pack_b_row), each row built in a per-thread
 * scratch row first: the product then reads B without a packing pass of its own. Returns -1 when
 * the scratch row cannot be had. */
static int im2col_packed(const ConvShape *s, int cg, const float *x, float *bp) {
    int k = s->k, P = s->out_h * s->out_w, K = cg * k * k, failed = 0;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && cg > 1)
    for (int c = 0; c < cg; c++) {
        float *row = an_thread_buffer(AN_BUF_CONV_ROW, (size_t)P * sizeof(float));
        if (!row) {
#pragma omp atomic write
            failed = 1;
            continue;
        }
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                im2col_row(s, x + (size_t)c * s->h * s->w, ky, kx, row);
                gemm_pack_b_row(bp, K, P, (c * k + ky) * k + kx, row);
            }
    }
    return failed ? -1 : 0;
}

/* cols (cg*k*k, oh*ow), rows ld floats apart, accumulated into dx (cg, h, w) */
static void col2im(const ConvShape *s, int cg, const float *cols, size_t ld, float *dx) {
    int k = s->k, oh = s->out_h, ow = s->out_w, st = s->stride, pad = s->pad;
    for (int c = 0; c < cg; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = cols + ((size_t)(c * k + ky) * k + kx) * ld;
                float *plane = dx + (size_t)c * s->h * s->w;
                int lo, hi;
                valid_range(ow, st, pad, kx, s->w, &lo, &hi);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * st - pad + ky;
                    if (iy < 0 || iy >= s->h) continue;
                    long base = (long)iy * s->w - pad + kx;
                    const float *r = row + oy * ow;
                    add_strided(plane + base + (long)lo * st, r + lo, hi - lo, st);
                }
            }
}

/* One image: x (c, h, w) -> y (out_c, oh, ow), with the packed weights (wp floats per group) and
 * cols as the packed im2col workspace (NULL for pointwise); then bias and the fused ReLU while it
 * is in cache. -1 when out of memory. */
static int forward_image(const ConvShape *s, const float *x, const float *wpack, size_t wp, const float *b,
                         float *cols, float *y) {
    int G = s->groups, cg = s->c / G, og = s->out_c / G, K = cg * s->k * s->k, P = s->out_h * s->out_w;
    for (int g = 0; g < G; g++) {
        const float *xg = x + (size_t)g * cg * s->h * s->w;
        float *yg = y + (size_t)g * og * P;
        if (!cols) { gemm_packed(0, og, P, K, wpack + g * wp, xg, P, 0.0f, yg, P); continue; }
        if (im2col_packed(s, cg, xg, cols)) return -1;
        gemm_packed_ab(og, P, K, wpack + g * wp, cols, 0.0f, yg, P);
    }
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int o = 0; o < s->out_c; o++) {
        float *yo = y + (size_t)o * P, bo = b ? b[o] : 0.0f;
        if (s->relu) for (int p = 0; p < P; p++) yo[p] = yo[p] + bo > 0.0f ? yo[p] + bo : 0.0f;
        else         for (int p = 0; p < P; p++) yo[p] += bo;
    }
    return 0;
}

int conv_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y) {
    if (conv_winograd_forward(s)) return winograd_forward(s, x, w, b, y);
    if (conv_phase(s, 0)) return phase_forward(s, x, w, b, y);
    int failed = 0;
    int G = s->groups, cg = s->c / G, og = s->out_c / G, K = cg * s->k * s->k;
    int P = s->out_h * s->out_w;
    size_t in_img = (size_t)s->c * s->h * s->w, out_img = (size_t)s->out_c * P;
    int outer = s->n >= omp_get_max_threads();
    /* the weights packed once for every image's product */
    size_t wp = gemm_packed_a_floats(og, K), bp_bytes = gemm_packed_b_floats(K, P) * sizeof(float);
    float *wpack = an_thread_buffer(AN_BUF_CONV_WT, (size_t)G * wp * sizeof(float));
    if (!wpack) return an_error("out of memory (packed convolution weights, %zu bytes)", (size_t)G * wp * 4);
    for (int g = 0; g < G; g++) gemm_pack_a(0, og, K, 1.0f, w + (size_t)g * og * K, K, wpack + g * wp);
    /* Images in parallel, each product on its thread; a batch smaller than the thread count runs
     * image by image with the product itself parallel. (Not one region with an `if`: products
     * nested in an inactive region get a fresh thread team every call.) */
    if (outer) {
#pragma omp parallel
        {
            float *cols = is_pointwise(s) ? NULL : an_thread_buffer(AN_BUF_CONV_COLS, bp_bytes);
            if (!is_pointwise(s) && !cols) {
#pragma omp atomic write
                failed = 1;
            }
            /* dynamic: a thread the system holds back (a busy neighbour) leaves its images to the other */
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < s->n; i++)
                if (!failed && forward_image(s, x + i * in_img, wpack, wp, b, cols, y + i * out_img)) {
#pragma omp atomic write
                    failed = 1;
                }
        }
    } else {
        float *cols = is_pointwise(s) ? NULL : an_thread_buffer(AN_BUF_CONV_COLS, bp_bytes);
        failed = !is_pointwise(s) && !cols;
        for (int i = 0; i < s->n && !failed; i++)
            failed = forward_image(s, x + i * in_img, wpack, wp, b, cols, y + i * out_img) != 0;
    }
    return failed ? an_error("out of memory (convolution workspace of %zu bytes)", bp_bytes) : 0;
}

int conv_backward(const ConvShape *s, const float *x, const float *w, const float *dy, float *dx,
                  float *dw, float *db) {
    if (conv_phase(s, 1)) return phase_backward(s, x, w, dy, dx, dw, db);
    int failed = 0;
    int G = s->groups, cg = s->c / G, og = s->out_c / G, K = cg * s->k * s->k;
    int P = s->out_h * s->out_w;
    size_t in_img = (size_t)s->c * s->h * s->w, out_img = (size_t)s->out_c * P;
    size_t wsize = (size_t)s->out_c * K;
    int chunks = (s->n + CONV_CHUNK_MIN - 1) / CONV_CHUNK_MIN;
    if (chunks > CONV_CHUNKS) chunks = CONV_CHUNKS;
    /* the calling thread's scratch; every chunk's first image overwrites its part (beta 0) */
    float *partial = an_thread_buffer(AN_BUF_CONV_PARTIAL, (size_t)chunks * wsize * sizeof(float));
    if (!partial) return -1;
    /* w_g^T (K, og) per group, packed once per call: the input gradient's row operand */
    size_t wp = gemm_packed_a_floats(K, og);
    float *wtpack = NULL;
    int wino = conv_winograd(s); /* dw by chunks below, dx after them */
    if (dx && !wino) {
        if (!(wtpack = an_thread_buffer(AN_BUF_CONV_WT, (size_t)G * wp * sizeof(float)))) return -1;
        for (int g = 0; g < G; g++) gemm_pack_a(1, K, og, 1.0f, w + (size_t)g * og * K, K, wtpack + g * wp);
    }
    int m_max = dw_images(s, P); /* images per weight-gradient product */
    size_t span_max = (size_t)m_max * P;
#pragma omp parallel
    {
        /* dynamic: chunks go to whichever thread is running (a chunk's sums do not depend on it) */
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            if (wino) {
                int i0 = (int)((long)s->n * ch / chunks), i1 = (int)((long)s->n * (ch + 1) / chunks);
                if (!failed && winograd_weight_grad(s, x, dy, i0, i1, partial + (size_t)ch * wsize)) {
#pragma omp atomic write
                    failed = 1;
                }
                continue;
            }
            /* cols: im2col of m images side by side (K, m P), later their dcols; dym: their output
             * gradients side by side (og, m P). Taken here, so a thread without a chunk takes none. */
            float *cols = failed ? NULL : an_thread_buffer(AN_BUF_CONV_COLS, (size_t)K * span_max * sizeof(float));
            float *dym = m_max > 1 && cols ? an_thread_buffer(AN_BUF_CONV_DY, (size_t)og * span_max * sizeof(float))
                                           : NULL;
            if (!cols || (m_max > 1 && !dym)) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            float *dwp = partial + (size_t)ch * wsize;
            int i0 = (int)((long)s->n * ch / chunks), i1 = (int)((long)s->n * (ch + 1) / chunks);
            for (int i = i0; i < i1; i += m_max) {
                int m = i1 - i < m_max ? i1 - i : m_max;
                size_t span = (size_t)m * P;
                if (dx) memset(dx + i * in_img, 0, m * in_img * sizeof(float));
                for (int g = 0; g < G; g++) {
                    size_t xoff = (size_t)g * cg * s->h * s->w, yoff = (size_t)g * og * P;
                    /* dw_g (og, K) += dy_g (og, m P) * cols^T (m P, K), over images i .. i+m-1 */
                    const float *A = dy + i * out_img + yoff, *B = x + i * in_img + xoff; /* m = 1, pointwise */
                    if (!is_pointwise(s)) {
                        for (int j = 0; j < m; j++) im2col(s, cg, x + (i + j) * in_img + xoff, cols + (size_t)j * P, span);
                        B = cols;
                    }
                    if (m > 1) {
                        for (int o = 0; o < og; o++)
                            for (int j = 0; j < m; j++)
                                memcpy(dym + o * span + (size_t)j * P, dy + (i + j) * out_img + yoff + (size_t)o * P,
                                       P * sizeof(float));
                        A = dym;
                    }
                    gemm(0, 1, og, K, (int)span, 1.0f, A, (int)span, B, (int)span, i == i0 ? 0.0f : 1.0f,
                         dwp + (size_t)g * og * K, K);
                    if (!dx) continue;
                    const float *wtg = wtpack + g * wp;
                    if (is_pointwise(s)) { /* m = 1: dx_g (K, P) = w_g^T (K, og) * dy_g (og, P) */
                        gemm_packed(0, K, P, og, wtg, A, P, 0.0f, dx + i * in_img + xoff, P);
                        continue;
                    }
                    /* dcols (K, m P) = w_g^T (K, og) * dy_g (og, m P), into cols (done with) */
                    gemm_packed(0, K, (int)span, og, wtg, A, (int)span, 0.0f, cols, (int)span);
                    for (int j = 0; j < m; j++) col2im(s, cg, cols + (size_t)j * P, span, dx + (i + j) * in_img + xoff);
                }
            }
        }
        /* sum the chunks in a fixed order */
#pragma omp for schedule(static)
        for (size_t j = 0; j < wsize; j++) {
            float acc = 0.0f;
            for (int ch = 0; ch < chunks; ch++) acc += partial[(size_t)ch * wsize + j];
            dw[j] = acc;
        }
#pragma omp for schedule(static)
        for (int o = 0; o < s->out_c; o++) {
            double acc = 0.0;
            for (int i = 0; i < s->n; i++) acc += sum_plane(dy + i * out_img + (size_t)o * P, P);
            db[o] = (float)acc;
        }
    }
    if (failed) return an_error("out of memory (convolution workspace of %zu bytes)", (size_t)(K + og) * span_max * 4);
    return wino && dx ? winograd_backward_data(s, w, dy, dx) : 0;
}
