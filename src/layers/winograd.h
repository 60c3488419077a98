/* winograd.h: Winograd convolution (winograd.c) for stride-1 3x3 and 5x5 layers in float32, chosen
 * by conv_forward / conv_backward where conv_winograd says so. Same shapes and layouts as conv.c. */
#ifndef ALEXNET_WINOGRAD_H
#define ALEXNET_WINOGRAD_H
#include "layers.h"

/* Whether the layer runs on Winograd: a 3x3 or 5x5 filter, stride 1, padding below the filter size,
 * float32 products (not bf16 mode), and (automatic) at least 32 channels in and out per group,
 * outputs of 6x6 or more and a batch of at least 128 output tiles of 4x4 (13x13 layers: 8 images;
 * 6x6: 32).
 * This is the backward passes' choice. conv_winograd_override(0) turns it off, (1) on wherever the
 * shape allows (tests, benchmarks), (-1) back to automatic. */
int conv_winograd(const ConvShape *s);
void conv_winograd_override(int on);
/* The same for the forward pass, whatever the batch (automatic: the same shapes). The forward pass
 * keeps the last 6 filter sets it transformed, per thread, by shape and a 64-bit hash of the weights'
 * bits: weights unchanged since an earlier call (inference, batch 1 included) are not transformed
 * again, weights changed in place are never served stale, and the kept transform is the one a
 * fresh call computes, bit for bit. */
int conv_winograd_forward(const ConvShape *s);
/* y = conv(x, w) + b (and the fused ReLU), F(4x4, 3x3) or F(4x4, 5x5). 0 or -1 (out of memory). */
int winograd_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y);
/* dx (n, c, h, w) = the input gradient of dy (n, out_c, oh, ow), overwritten. 0 or -1. */
int winograd_backward_data(const ConvShape *s, const float *w, const float *dy, float *dx);
/* dw (out_c, c/groups, k, k) = the weight gradient of images [i0, i1), overwritten; on the calling
 * thread alone (conv_backward runs chunks of images in parallel). 0 or -1. */
int winograd_weight_grad(const ConvShape *s, const float *x, const float *dy, int i0, int i1, float *dw);
/* Tests: how many of the transforms compiled for their matrices (B^T and A^T of F(4x4, 3x3) and
 * F(4x4, 5x5); B^T and G of the weight gradients' F(3x3, 4x4) and F(5x5, 4x4): 8 in all) are in use
 * and give the bits of the generic transform on the same planes. */
int winograd_special_transforms_check(void);
/* Strided layers as stride-1 layers on their input's phases (conv_phase.c): a k x k filter of stride s
 * over c channels is a ceil(k/s) x ceil(k/s) filter of stride 1 over c s^2 channels, exactly, so
 * AlexNet's conv1 (11x11, stride 4) runs on F(4x4, 3x3). conv_phase: whether the layer runs so, its
 * forward pass (backward 0) or backward passes (1): where the phase layer runs on Winograd. */
int conv_phase(const ConvShape *s, int backward);
int phase_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y);
int phase_backward(const ConvShape *s, const float *x, const float *w, const float *dy, float *dx, float *dw,
                   float *db);
#endif
