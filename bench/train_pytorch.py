#!/usr/bin/python3
"""train_pytorch.py: the PyTorch peer of

    alexnet train --model alexnet --data ../shared/data/imagenette --recipe paper|caffe

for comparing learning curves on equal epochs. Same network, initialisation, input pipeline,
optimiser and learning-rate schedule as the C side (src/model/models.c, src/data/augment.c,
src/train/batch.c, src/train/sgd.c, src/train/train.c, src/train/eval.c):

  model     the paper's AlexNet, 227x227 input: conv1 96@11x11/4 -> ReLU -> LRN -> maxpool 3/2;
            conv2 256@5x5 pad 2 groups 2 -> ReLU -> LRN -> pool; conv3 384@3x3 pad 1;
            conv4 384 groups 2; conv5 256 groups 2 -> ReLU -> pool; fc6 4096 ReLU dropout 0.5;
            fc7 4096 ReLU dropout 0.5; fc8 = classes. LRN(5, alpha 1e-4, beta 0.75, k 2), with
            alpha divided by the size as in the C code (and Caffe, and torch.nn.LocalResponseNorm),
            within each tower's half of the channels (the paper's two GPUs; the C alexnet since 2026-12-02).
  init      paper: every weight N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0; one
            learning rate and weight decay for every parameter.
            caffe: Caffe's bvlc_alexnet (as the C side's --recipe caffe since 2026-12-02): weights
            N(0, 0.01) except fc6/fc7 N(0, 0.005); biases conv1 0, conv2 0.1, conv3 0, conv4 0.1,
            conv5 0.1, fc6 0.1, fc7 0.1, fc8 0; biases learn at twice the rate, without weight decay.
            --bias-variant old (with caffe, a historical variant for experiments): the C side's
            caffe recipe before 2026-12-02 (commit 9653b8f): biases conv2/conv4/conv5 1 (the
            paper's), fc6/fc7 0.1, with fc6/fc7 weights N(0, 0.005); biases share the weights'
            learning rate and weight decay.
  input     each image decoded to RGB, shorter side resized to 256 (Pillow's antialiased
            bilinear, as torchvision's Resize), centre 256x256 crop, uint8. Statistics from the
            training set, in 0..255 units: the (3, 256, 256) mean image and the eigenpairs of the
            RGB covariance of its pixels; by default, like the C side, from 1000 images evenly
            spread over the whole training split (index k * n // 1000), --stats-sample 0 = all.
  train     random 227x227 window, mirrored with p = 1/2, PCA lighting, minus the mean image at
            the same window; no scaling (0..255 units). Lighting as src/data/augment.c's
            augment_lighting: alpha_i ~ N(0, 0.1) per image per epoch, and every pixel gets
            sum_i alpha_i (lambda_i / 255) p_i added: the paper's formula on pixels in [0, 1] (as
            the authors' code), with lambda_i in 0..255^2 units; about 5.7 grey levels for
            Imagenette's first component (lambda_0 = 14430) at alpha = 0.1. One function does
            the whole view (train_view: explicit window, flip and alphas), and
            tools/make_peer_lighting_reference.py + tests/test_peer_pipeline.c check it against
            the C code on the same images.
            Until 2026-12-02 this peer added sum_i alpha_i lambda_i p_i without the division by
            255: 255 times too strong (about 1,440 grey levels at alpha = 0.1 instead of 5.7), so
            its Imagenette runs of 2026-11-27/28 are invalid (docs/RESULTS.md).
            --lighting-scale 255 reproduces that bug, for experiments only.
  test      the centre window (offset (256 - 227) // 2 = 14), and with --val-crops 10 also the
            paper's 10 views (corners at 0 and 29, centre, and their mirrors; softmax averaged).
            Top-1/top-5 count ties against the true class, as the C code does.
  optimiser batch 128, loss = mean cross-entropy, the paper's update written by hand, per
            parameter with its own rate and decay (src/model/net.c's net_sgd, src/train/sgd.c):
            v <- 0.9 v - (0.0005 d) (lr m) w - (lr m) grad;  w <- w + v, with m = 1, d = 1 for
            weights; for biases m = 2, d = 0 with the caffe recipe, m = d = 1 with paper and with
            --bias-variant old.
  schedule  lr 0.01, divided by 10 when the validation (centre) top-1 error has not improved for
            --patience epochs (default 3), at most --max-drops times (default 3).
  subsets   --limit-train N / --limit-val N take the same fixed random subset as the C side
            (its an_hash64 Fisher-Yates permutation with seed 0x5EED, salt 7), so quick checks
            of both sides see the same images.

What differs by design: the random streams (epoch order, windows, flips, lighting alphas, dropout
masks) come from torch generators seeded with --seed, not from the C side's counter-based hash.

Preprocessing cache: the 256x256 base images are decoded once into uint8 .npy memmaps under
--cache (default /tmp/alexnet-pt-cache/<data-name>-<hash>/), one (n, 3, 256, 256) array per split
(about 1.9 GB + 0.8 GB for Imagenette, written sparsely: only the images a run needs are decoded,
the rest are filled in by later runs), with the statistics next to them.

Short runs (bench/short_runs.sh): --step-log FILE writes one row per step (step,loss,top1_err of
the batch); --eval-at-stop N evaluates the centre crop of N validation images spread evenly over
the split (index k * n // N, as `alexnet eval --limit N`) when --max-steps stops the run; and a
fresh run prints the share of fc6 units (after the ReLU) that are zero for every image of its
first batch at initialisation ("fc6 dead at init").

Output: a progress line about every 10 s (images/s, ETA), and per epoch a summary line and a row
of --log (default bench/results/pytorch_<recipe>.csv) in the C side's log.csv format:
    epoch,lr,train_loss,train_top1_err,val_loss,val_top1_err,val_top5_err,images_per_s,
    epoch_seconds[,val10_top1_err,val10_top5_err]
(errors as fractions; lr is the rate used during the epoch; images/s and seconds cover the
training steps only, as in the C log; the evaluation time is printed separately).

Checkpoints: --checkpoint (default runs/pytorch_<recipe>/checkpoint.pt, runs/ is git-ignored) is
written atomically after every epoch and when Ctrl-C stops a run (after the current step): weights,
momentum buffers, epoch, step, lr, schedule state, the epoch's partial sums, RNG state and the
input statistics. --resume CKPT continues exactly where it stopped, mid-epoch included (the
epoch's order and augmentation are drawn up front from (seed, epoch)); --epochs is the total.
--max-steps N stops after N steps in all, with a checkpoint (as the C side's flag).

Usage:
    /usr/bin/python3 bench/train_pytorch.py --recipe paper --epochs 30 --threads 2
    /usr/bin/python3 bench/train_pytorch.py --recipe caffe --val-crops 10
    /usr/bin/python3 bench/train_pytorch.py --resume runs/pytorch_paper/checkpoint.pt --epochs 40
    /usr/bin/python3 bench/train_pytorch.py --limit-train 256 --limit-val 64 --epochs 1   # smoke test
"""
import argparse
import concurrent.futures
import fcntl
import hashlib
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

BASE = 256          # base image side
CROP = 227          # the paper's AlexNet input
EXTENSIONS = (".jpg", ".jpeg", ".png")
MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------------
# the C side's hash (src/util/common.c) and subset permutation (src/train/train.c)


def an_hash64(seed, counter):
    z = (seed * 0x9E3779B97F4A7C15 + counter + 0x632BE59BD9B4E019) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def c_permutation(n, seed, salt):
    p = list(range(n))
    s = (seed ^ ((salt * 0x9E3779B97F4A7C15) & MASK64)) & MASK64
    for i in range(n - 1, 0, -1):
        j = an_hash64(s, i) % (i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def c_subset(n, limit):
    """The examples the C side uses from a split: all, or a fixed random subset (seed-independent)."""
    if 0 < limit < n:
        return c_permutation(n, 0x5EED, 7)[:limit]
    return list(range(n))


# ---------------------------------------------------------------------------------------------
# dataset listing (src/data/folder.c) and base images (src/data/image.c)


def list_split(root, split, classes=None):
    d = os.path.join(root, split)
    if classes is None:
        classes = sorted(e for e in os.listdir(d) if not e.startswith(".") and os.path.isdir(os.path.join(d, e)))
    files, labels = [], []
    for label, c in enumerate(classes):
        cd = os.path.join(d, c)
        if not os.path.isdir(cd):
            continue
        names = sorted(f for f in os.listdir(cd)
                       if not f.startswith(".") and f.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(cd, f)))
        files += [os.path.join(split, c, f) for f in names]
        labels += [label] * len(names)
    return classes, files, np.array(labels, dtype=np.int64)


def load_base(path):
    """Decode to RGB, shorter side to 256 (torchvision Resize(256) on a PIL image), centre 256x256:
    planar (3, 256, 256) uint8."""
    with Image.open(path) as im:
        im = im.convert("RGB")
    w, h = im.size
    if w <= h:
        nw, nh = BASE, int(BASE * h / w)
    else:
        nw, nh = int(BASE * w / h), BASE
    nw, nh = max(nw, 1), max(nh, 1)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    a = np.asarray(im)
    out = np.zeros((BASE, BASE, 3), np.uint8)    # zero padding if a side came out short
    left, top = int(round((nw - BASE) / 2.0)), int(round((nh - BASE) / 2.0))
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + BASE, nw), min(top + BASE, nh)
    out[y0 - top:y1 - top, x0 - left:x1 - left] = a[y0:y1, x0:x1]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


class SplitCache:
    """(n, 3, 256, 256) uint8 memmap of one split's base images plus a mask of the decoded ones."""

    def __init__(self, cache_dir, data, split, files):
        self.data, self.files = data, files
        self.path = os.path.join(cache_dir, f"{split}_u8.npy")
        self.done_path = os.path.join(cache_dir, f"{split}_done.npy")
        list_path = os.path.join(cache_dir, f"{split}_files.json")
        n = len(files)
        fresh = True
        if os.path.exists(self.path) and os.path.exists(list_path) and os.path.exists(self.done_path):
            with open(list_path) as f:
                fresh = json.load(f) != files
        if fresh:
            self.arr = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.uint8, shape=(n, 3, BASE, BASE))
            self.done = np.zeros(n, dtype=bool)
            np.save(self.done_path, self.done)
            with open(list_path, "w") as f:
                json.dump(files, f)
        else:
            self.arr = np.load(self.path, mmap_mode="r+")
            self.done = np.load(self.done_path)

    def ensure(self, indices, threads, what):
        todo = sorted(set(int(i) for i in indices if not self.done[i]))
        if not todo:
            return
        t0, last = time.time(), time.time()
        print(f"decoding {len(todo)} {what} images into {self.path} ...", flush=True)
        bad = []

        def work(i):
            try:
                return i, load_base(os.path.join(self.data, self.files[i]))
            except Exception as e:  # noqa: BLE001 (a bad file must not stop the run; reported below)
                return i, e

        with concurrent.futures.ThreadPoolExecutor(max(threads, 1)) as ex:
            for k, (i, img) in enumerate(ex.map(work, todo, chunksize=16)):
                if isinstance(img, Exception):
                    bad.append((i, img))
                    continue
                self.arr[i] = img
                self.done[i] = True
                if time.time() - last > 10:
                    last = time.time()
                    print(f"  {k + 1}/{len(todo)}  {(k + 1) / (last - t0):.0f} img/s", flush=True)
        self.arr.flush()
        np.save(self.done_path, self.done)
        print(f"decoded {len(todo) - len(bad)} images in {time.time() - t0:.1f} s "
              f"({(len(todo) - len(bad)) / max(time.time() - t0, 1e-9):.0f} img/s)", flush=True)
        for i, e in bad:
            print(f"warning: {self.files[i]}: {e}; skipped", file=sys.stderr)


def image_stats(arr, indices):
    """Mean image and RGB eigenpairs (largest first, eigvec[i] = i-th eigenvector) in 0..255 units,
    with exact integer sums as the C side's image_stats_*."""
    total = np.zeros((3, BASE, BASE), np.float64)
    rgb_sum = np.zeros(3, np.float64)
    outer = np.zeros((3, 3), np.float64)
    for i in indices:
        img = np.asarray(arr[i])
        total += img
        p = img.reshape(3, -1).astype(np.float64)  # per-image sums < 2^53: exact
        rgb_sum += p.sum(1)
        outer += p @ p.T
    count = max(len(indices), 1)
    pixels = count * BASE * BASE
    mean = rgb_sum / pixels
    cov = outer / pixels - np.outer(mean, mean)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    return ((total / count).astype(np.float32), vals[order].astype(np.float32),
            vecs[:, order].T.astype(np.float32).copy())


# ---------------------------------------------------------------------------------------------
# model


class FC(nn.Linear):
    """nn.Linear computed as a convolution: y = x W^T + b with x viewed as (n, c, k, k) and W as
    (out, c, k, k), the same dot products. Debian's torch is built with a generic (reference) BLAS,
    which makes nn.Linear's matrix products about 10-30x slower than oneDNN's convolutions; fc6
    alone took about 16 s per batch of 128 forward and backward on 2 cores, as a convolution about
    0.5 s. Parameters, names and initialisation are nn.Linear's."""

    def __init__(self, inp, out, view):
        super().__init__(inp, out)
        assert view[0] * view[1] * view[2] == inp
        self.view = view

    def forward(self, x):
        n = x.shape[0]
        y = F.conv2d(x.reshape(n, *self.view), self.weight.view(self.out_features, *self.view), self.bias)
        return y.view(n, self.out_features)


def _window_sum(t, size):
    """Sum over the `size` channels centred on each channel (zeros outside), any memory format."""
    s, c = t.clone(), t.shape[1]
    for d in range(1, size // 2 + 1):
        s[:, d:] += t[:, :c - d]
        s[:, :c - d] += t[:, d:]
    return s


def _neg_pow(s, beta):
    if beta == 0.75:                  # s^-0.75 = s^-0.5 * s^-0.25, cheaper than pow
        p = s.rsqrt()
        return p.mul_(p.sqrt())
    return s.pow(-beta)


class _LRNFunction(torch.autograd.Function):
    """scale = k + alpha / size * window_sum(x^2); y = x scale^-beta (as src/layers/lrn.c);
    dx = dy scale^-beta - (2 alpha beta / size) x window_sum(dy y / scale)."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        scale = _window_sum(x * x, size).mul_(alpha / size).add_(k)
        p = _neg_pow(scale, beta)
        ctx.save_for_backward(x, scale, p)
        ctx.params = (size, alpha, beta)
        return x * p

    @staticmethod
    def backward(ctx, dy):
        x, scale, p = ctx.saved_tensors
        size, alpha, beta = ctx.params
        dyp = dy * p
        w = _window_sum(dyp.mul(x).div_(scale), size).mul_(x)
        return dyp.sub_(w, alpha=2.0 * alpha * beta / size), None, None, None, None


class LRN(nn.LocalResponseNorm):
    """nn.LocalResponseNorm (the same function) with a hand-written backward: torch's version,
    built from avg_pool3d, took about 5.5 s forward + backward on conv1's output for a batch of
    128 on 2 cores, this one about 2 s."""

    towers = 2  # the paper's GPUs each normalised their own half of the maps (as the C alexnet)

    def forward(self, x):
        return torch.cat([_LRNFunction.apply(h, self.size, self.alpha, self.beta, self.k)
                          for h in x.chunk(self.towers, dim=1)], dim=1)


# (weight std, bias) per layer; recipes as the C side's model_apply_recipe (src/model/models.c)
INIT = {
    # the paper: N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7
    "paper": {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0), "conv4": (0.01, 1.0),
              "conv5": (0.01, 1.0), "fc6": (0.01, 1.0), "fc7": (0.01, 1.0), "fc8": (0.01, 0.0)},
    # Caffe's bvlc_alexnet (models/bvlc_alexnet/train_val.prototxt)
    "caffe": {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
              "conv5": (0.01, 0.1), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)},
    # historical: the C side's caffe recipe until 2026-12-02 (--bias-variant old)
    "caffe-old": {"conv1": (0.01, 0.0), "conv2": (0.01, 1.0), "conv3": (0.01, 0.0), "conv4": (0.01, 1.0),
                  "conv5": (0.01, 1.0), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)},
}


def recipe_key(recipe, bias_variant="new"):
    """The INIT / bias_multipliers key: paper, caffe, or caffe-old (caffe with --bias-variant old)."""
    return "caffe-old" if recipe == "caffe" and bias_variant == "old" else recipe


def bias_multipliers(recipe, bias_variant="new"):
    """(learning-rate multiplier, weight-decay multiplier) of the biases, as the C side's
    ModelSpec bias_lr_mult / bias_decay_mult: caffe 2 and 0, paper and caffe-old 1 and 1."""
    return (2.0, 0.0) if recipe_key(recipe, bias_variant) == "caffe" else (1.0, 1.0)


def param_multipliers(model, recipe, bias_variant="new"):
    """(learning-rate multiplier, weight-decay multiplier) of each of model's parameters, in the
    order of model.parameters(): weights (1, 1), biases bias_multipliers(recipe, bias_variant)."""
    b = bias_multipliers(recipe, bias_variant)
    return [b if name.rsplit(".", 1)[-1] == "bias" else (1.0, 1.0) for name, _ in model.named_parameters()]


def sgd_step(params, moms, mults, lr, weight_decay, momentum):
    """The C side's update, per parameter tensor with its (lr multiplier m, decay multiplier d)
    (src/model/net.c net_sgd -> src/train/sgd.c sgd_update with lr m and weight_decay d):
        v <- momentum v - (weight_decay d) (lr m) w - (lr m) grad;  w <- w + v."""
    with torch.no_grad():
        for p, v, (m, d) in zip(params, moms, mults):
            plr, pwd = lr * m, weight_decay * d
            v.mul_(momentum).add_(p, alpha=-pwd * plr).add_(p.grad, alpha=-plr)
            p.add_(v)


def alexnet(classes, recipe, bias_variant="new"):
    L = OrderedDict([
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
        ("norm1", LRN(5, alpha=1e-4, beta=0.75, k=2.0)), ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU(inplace=True)),
        ("norm2", LRN(5, alpha=1e-4, beta=0.75, k=2.0)), ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("fc6", FC(256 * 6 * 6, 4096, (256, 6, 6))), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(0.5)),
        ("fc7", FC(4096, 4096, (64, 8, 8))), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, classes)),
    ])
    init = INIT[recipe_key(recipe, bias_variant)]
    with torch.no_grad():
        for name, (std, b) in init.items():
            L[name].weight.normal_(0.0, std)
            L[name].bias.fill_(b)
    return nn.Sequential(L)


# ---------------------------------------------------------------------------------------------
# views (src/data/augment.c)


def test_views(views):
    m = BASE - CROP
    if views == 1:
        return [(m // 2, m // 2, False)]
    corners = [(0, 0), (m, 0), (0, m), (m, m), (m // 2, m // 2)]
    return [(x, y, False) for x, y in corners] + [(x, y, True) for x, y in corners]


def make_view(img, mean, x, y, flip, rgb=None):
    """(3, 227, 227) float: window (x, y) of img, plus lighting, minus the mean image at the same
    source pixels, mirrored if flip (augment_apply with scale 1)."""
    v = torch.from_numpy(np.ascontiguousarray(img[:, y:y + CROP, x:x + CROP])).float()
    if rgb is not None:
        v += rgb.view(3, 1, 1)
    v -= mean[:, y:y + CROP, x:x + CROP]
    return v.flip(2) if flip else v


def lighting_shift(alphas, eigval, eigvec, scale=1.0):
    """The PCA lighting shift in 0..255 units, as src/data/augment.c's augment_lighting:
    rgb[c] = sum_i alpha_i (lambda_i / 255) eigvec[i][c] (the paper's formula on pixels in [0, 1];
    eigval in 0..255^2 units, eigvec[i] the i-th unit eigenvector). alphas (3,) or (n, 3) float32.
    scale multiplies the shift: 1 = the C pipeline; 255 reproduces this peer's bug before
    2026-12-02 (sum_i alpha_i lambda_i eigvec[i], 255 times too strong), for experiments only."""
    w = alphas * eigval * (1.0 / 255.0)   # w_i = alpha_i lambda_i / 255, as the C code's float order
    if scale != 1.0:
        w = w * scale
    return w @ eigvec


def train_view(img, mean, x, y, flip, alphas, eigval, eigvec, lighting_scale=1.0):
    """A training view with explicit parameters: window (x, y) of the (3, 256, 256) uint8 image,
    mirrored if flip, plus the lighting of alphas (3,), minus the mean image at the same source
    pixels: (3, 227, 227) float32 in 0..255 units (augment_lighting + augment_apply)."""
    return make_view(img, mean, x, y, flip, lighting_shift(alphas, eigval, eigvec, lighting_scale))


class Prefetcher:
    """Builds batches in a background thread (torch ops and memmap reads release the GIL)."""

    def __init__(self, make, nbatches, first, depth=2):
        self.q = queue.Queue(depth)
        self.stop = False

        def run():
            for b in range(first, nbatches):
                if self.stop:
                    break
                self.q.put(make(b))
            self.q.put(None)

        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            yield item

    def close(self):
        self.stop = True
        try:
            while True:
                self.q.get_nowait()
        except queue.Empty:
            pass


# ---------------------------------------------------------------------------------------------


def class_rank(scores, labels):
    """How many other classes score at least as high as the true one (ties count against)."""
    true = scores.gather(1, labels.view(-1, 1))
    return (scores >= true).sum(1) - 1


def evaluate(model, arr, labels, idx, mean, views, batch, device):
    """Centre-crop (views 1) or 10-view evaluation. Returns {views: (loss, top1_err, top5_err)};
    with 10 views the centre view (view 4) gives the 1-view result in the same pass."""
    vlist = test_views(views)
    per = max(batch // views, 1)
    model.eval()
    sums = {v: [0.0, 0, 0] for v in ({1, 10} if views == 10 else {1})}
    nb = (len(idx) + per - 1) // per

    def make(b):
        chunk = idx[b * per:(b + 1) * per]
        x = torch.stack([make_view(arr[i], mean, vx, vy, vf) for i in chunk for vx, vy, vf in vlist])
        return x, torch.from_numpy(labels[chunk])

    pf = Prefetcher(make, nb, 0)
    with torch.no_grad():
        for x, y in pf:
            n = y.numel()
            probs = F.softmax(model(x.to(device)).float(), 1).cpu().view(n, len(vlist), -1)
            outs = {1: probs[:, 4 if views == 10 else 0]}
            if views == 10:
                outs[10] = probs.mean(1)
            for v, p in outs.items():
                rank = class_rank(p, y)
                s = sums[v]
                s[0] += float(-torch.log(p.gather(1, y.view(-1, 1)).clamp_min(1e-30)).sum())
                s[1] += int((rank >= 1).sum())
                s[2] += int((rank >= 5).sum())
    n = max(len(idx), 1)
    return {v: (s[0] / n, s[1] / n, s[2] / n) for v, s in sums.items()}


def fmt_time(s):
    s = 0 if s < 0 or s > 1e7 else int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def save_checkpoint(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def log_reopen(path, upto, fresh, header):
    """Fresh run: a new log with the header. Resumed run: keep the rows of epochs <= upto."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fresh or not os.path.exists(path):
        with open(path, "w") as f:
            f.write(header + "\n")
        return
    with open(path) as f:
        lines = f.readlines()
    kept = [ln for ln in lines if not ln[:1].isdigit() or int(ln.split(",")[0]) <= upto]
    with open(path, "w") as f:
        f.writelines(kept)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        description="The PyTorch peer of `alexnet train --model alexnet --recipe paper|caffe` (equal-epoch curves).",
        epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "imagenette"))
    ap.add_argument("--recipe", choices=["paper", "caffe"], default="paper")
    ap.add_argument("--epochs", type=int, default=10, help="total epochs (default 10, as the C side)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.01, help="initial rate (on --resume: replaces the saved one if given)")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0005)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--max-drops", type=int, default=3)
    ap.add_argument("--lighting", type=float, default=0.1, help="std of the PCA lighting alphas (0 = off)")
    ap.add_argument("--lighting-scale", type=float, default=1.0,
                    help="multiplies the lighting shift; 1 (default) = the C pipeline; 255 reproduces this "
                         "peer's bug before 2026-12-02 (alpha_i lambda_i p_i without the / 255), experiments only")
    ap.add_argument("--bias-variant", choices=["new", "old"], default="new",
                    help="with --recipe caffe: new (default) = Caffe's bvlc_alexnet; old = the historical C caffe "
                         "recipe before 2026-12-02 (biases conv2/4/5 1, fc6/7 0.1, biases at the weights' lr "
                         "and decay), experiments only")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and decoding threads")
    ap.add_argument("--limit-train", type=int, default=0, help="fixed random subset of N training images (C's)")
    ap.add_argument("--limit-val", type=int, default=0, help="fixed random subset of N validation images (C's)")
    ap.add_argument("--val-crops", type=int, choices=[1, 10], default=1)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after N steps in all, with a checkpoint")
    ap.add_argument("--step-log", default=None, help="CSV with one row per step: step,loss,top1_err (of the batch)")
    ap.add_argument("--eval-at-stop", type=int, default=0, metavar="N",
                    help="when --max-steps stops the run, evaluate the centre crop of N validation images spread "
                         "evenly (k * n // N, as `alexnet eval --limit N`)")
    ap.add_argument("--stats-sample", type=int, default=1000,
                    help="training images for the mean image and eigenpairs, evenly spread (default 1000, "
                         "as the C side; 0 = all)")
    ap.add_argument("--log", default=None, help="CSV (default bench/results/pytorch_<recipe>.csv)")
    ap.add_argument("--checkpoint", default=None, help="default runs/pytorch_<recipe>/checkpoint.pt")
    ap.add_argument("--resume", default=None, metavar="CKPT")
    ap.add_argument("--cache", default="/tmp/alexnet-pt-cache")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = ap.parse_args()
    if args.bias_variant == "old" and args.recipe != "caffe" and not args.resume:
        ap.error("--bias-variant old applies to --recipe caffe only")
    argv_lr_set = any(a == "--lr" or a.startswith("--lr=") for a in sys.argv[1:])

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ckpt = None
    if args.resume:
        ckpt = torch.load(args.resume, map_location="cpu", weights_only=False)  # our own file: RNG states, args
        args.recipe = ckpt["recipe"]
        # checkpoints written before 2026-12-02 have neither key: they ran with the 255x lighting
        # bug and the old caffe biases, and continue that way
        saved = dict({"lighting_scale": 255.0, "bias_variant": "old"}, **ckpt["args"])
        for k in ("seed", "limit_train", "limit_val", "batch", "stats_sample", "lighting", "lighting_scale",
                  "bias_variant"):
            if getattr(args, k) != saved[k]:
                print(f"note: --{k.replace('_', '-')} {saved[k]} from the checkpoint "
                      f"(not {getattr(args, k)})", flush=True)
                setattr(args, k, saved[k])
    log_path = args.log or os.path.join(here, "results", f"pytorch_{args.recipe}.csv")
    ckpt_path = args.checkpoint or (args.resume if args.resume else
                                    os.path.join(here, "..", "runs", f"pytorch_{args.recipe}", "checkpoint.pt"))

    # --- data
    data = os.path.abspath(args.data)
    classes, train_files, train_labels = list_split(data, "train")
    _, val_files, val_labels = list_split(data, "val", classes)
    if not train_files:
        sys.exit(f"{data}: the training split is empty")
    key = os.path.basename(data.rstrip("/")) + "-" + hashlib.sha1(data.encode()).hexdigest()[:8]
    cache_dir = os.path.join(args.cache, key)
    os.makedirs(cache_dir, exist_ok=True)
    train_idx = c_subset(len(train_files), args.limit_train)
    val_idx = c_subset(len(val_files), args.limit_val)
    ns = len(train_files) if args.stats_sample <= 0 else min(args.stats_sample, len(train_files))
    stats_idx = [k * len(train_files) // ns for k in range(ns)]
    ne = min(args.eval_at_stop, len(val_files))
    stop_eval_idx = [k * len(val_files) // ne for k in range(ne)] if ne > 0 else []
    with open(os.path.join(cache_dir, "lock"), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # one writer per cache at a time
        tc = SplitCache(cache_dir, data, "train", train_files)
        vc = SplitCache(cache_dir, data, "val", val_files)
        tc.ensure(train_idx + ([] if ckpt else stats_idx), args.threads, "training")
        vc.ensure(val_idx + stop_eval_idx, args.threads, "validation")
        if ckpt:
            mean_image, eigval, eigvec = ckpt["mean_image"], ckpt["eigval"], ckpt["eigvec"]
        else:
            stats_path = os.path.join(cache_dir, f"stats_{ns}.npz")
            if os.path.exists(stats_path):
                z = np.load(stats_path)
                mean_image, eigval, eigvec = z["mean_image"], z["eigval"], z["eigvec"]
            else:
                t0 = time.time()
                ok = [i for i in stats_idx if tc.done[i]]
                mean_image, eigval, eigvec = image_stats(tc.arr, ok)
                np.savez(stats_path, mean_image=mean_image, eigval=eigval, eigvec=eigvec)
                print(f"statistics from {len(ok)} training images in {time.time() - t0:.1f} s", flush=True)
    train_idx = [i for i in train_idx if tc.done[i]]
    val_idx = [i for i in val_idx if vc.done[i]]
    stop_eval_idx = [i for i in stop_eval_idx if vc.done[i]]
    tarr, varr = tc.arr, vc.arr
    mean = torch.from_numpy(np.asarray(mean_image, np.float32))
    eigval_t = torch.from_numpy(np.asarray(eigval, np.float32))
    eigvec_t = torch.from_numpy(np.asarray(eigvec, np.float32))
    print(f"eigenvalues {np.round(np.asarray(eigval), 2).tolist()}; mean image average "
          f"{[round(float(c), 2) for c in mean.mean((1, 2))]}", flush=True)

    # --- model and state
    torch.manual_seed(args.seed)
    model = alexnet(len(classes), args.recipe, args.bias_variant)
    blr_mult, bwd_mult = bias_multipliers(args.recipe, args.bias_variant)
    params = list(model.parameters())
    mom = [torch.zeros_like(p) for p in params]
    st = dict(epoch=0, step_in_epoch=0, step=0, lr=args.lr, best_err=1.0, bad_epochs=0, drops=0,
              loss_sum=0.0, err_sum=0.0, seen=0, seconds=0.0)
    if ckpt:
        model.load_state_dict(ckpt["model"])
        for m, s in zip(mom, ckpt["momentum"]):
            m.copy_(s)
        st.update(ckpt["state"])
        if argv_lr_set:
            st["lr"] = args.lr
        torch.set_rng_state(ckpt["rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"])
        print(f"resumed {args.resume}: epoch {st['epoch']}, step {st['step_in_epoch']} of the next, "
              f"lr {st['lr']:g}", flush=True)
    model.to(device)
    mom = [m.to(device) for m in mom]
    params = list(model.parameters())
    nparams = sum(p.numel() for p in params)
    header = ("epoch,lr,train_loss,train_top1_err,val_loss,val_top1_err,val_top5_err,images_per_s,epoch_seconds,"
              "val10_top1_err,val10_top5_err")
    log_reopen(log_path, st["epoch"], ckpt is None, header)
    print(f"training on {len(train_idx)} images ({len(classes)} classes), validating on {len(val_idx)}; "
          f"batch {args.batch}, lr {st['lr']:g}, recipe {recipe_key(args.recipe, args.bias_variant)} (biases: lr x "
          f"{blr_mult:g}, weight decay x {bwd_mult:g}), lighting {args.lighting:g}"
          f"{'' if args.lighting_scale == 1.0 else f' x {args.lighting_scale:g} (the old bug)'}, "
          f"{nparams:,} parameters, {torch.get_num_threads()} threads, device {device}", flush=True)
    mults = param_multipliers(model, args.recipe, args.bias_variant)  # in params' order
    step_log = None
    if args.step_log:
        os.makedirs(os.path.dirname(os.path.abspath(args.step_log)), exist_ok=True)
        step_log = open(args.step_log, "a" if ckpt else "w")
        if not ckpt:
            step_log.write("step,loss,top1_err\n")

    stop = {"flag": False}

    def on_sigint(signum, frame):
        stop["flag"] = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C stops at once
        print("\nstopping after this step (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, on_sigint)

    def checkpoint():
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "momentum": [m.cpu() for m in mom], "state": dict(st),
            "recipe": args.recipe, "classes": classes, "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "mean_image": np.asarray(mean_image), "eigval": np.asarray(eigval), "eigvec": np.asarray(eigvec),
            "args": {k: getattr(args, k) for k in ("seed", "limit_train", "limit_val", "batch",
                                                    "stats_sample", "lighting", "lighting_scale",
                                                    "bias_variant")}})

    n_train = len(train_idx)
    nb = (n_train + args.batch - 1) // args.batch
    t_session, images_session, last_print = time.time(), 0, time.time()
    tty = sys.stdout.isatty()
    train_labels_t = torch.from_numpy(train_labels)
    while st["epoch"] < args.epochs and not (args.max_steps and st["step"] >= args.max_steps):
        epoch = st["epoch"]
        # the epoch's order and augmentation, drawn up front from (seed, epoch): resumable mid-epoch
        g = torch.Generator().manual_seed(args.seed * 1000003 + epoch)
        order = torch.tensor(train_idx)[torch.randperm(n_train, generator=g)]
        xs = torch.randint(0, BASE - CROP + 1, (n_train,), generator=g)
        ys = torch.randint(0, BASE - CROP + 1, (n_train,), generator=g)
        flips = torch.rand(n_train, generator=g) < 0.5
        alphas = torch.randn(n_train, 3, generator=g) * args.lighting

        def make(b):
            s = slice(b * args.batch, min((b + 1) * args.batch, n_train))
            x = torch.stack([train_view(tarr[int(i)], mean, int(xx), int(yy), bool(f), a, eigval_t, eigvec_t,
                                        args.lighting_scale)
                             for i, xx, yy, f, a in zip(order[s], xs[s], ys[s], flips[s], alphas[s])])
            return x, train_labels_t[order[s]]

        model.train()
        pf = Prefetcher(make, nb, st["step_in_epoch"])
        t_step = time.time()
        stopped = False
        for x, y in pf:
            x, y = x.to(device, non_blocking=True), y.to(device)
            hook = None
            if st["step"] == 0:  # a fresh run: fc6 units dead on the whole first batch at initialisation
                def fc6_dead(module, inp, outp):
                    dead = (outp.detach() == 0).all(0)
                    print(f"fc6 dead at init: {int(dead.sum())} of {dead.numel()} units "
                          f"({100.0 * float(dead.float().mean()):.1f}%) are 0 after the ReLU for all "
                          f"{outp.shape[0]} images of the first batch", flush=True)
                hook = model.relu6.register_forward_hook(fc6_dead)
            out = model(x)
            if hook is not None:
                hook.remove()
            loss = F.cross_entropy(out, y)
            if not math.isfinite(loss.item()):
                sys.exit(f"training diverged: loss is {loss.item()} at step {st['step']} (try a lower --lr)")
            for p in params:
                p.grad = None
            loss.backward()
            sgd_step(params, mom, mults, st["lr"], args.weight_decay, args.momentum)
            n = y.numel()
            batch_err = int((class_rank(out.detach(), y) > 0).sum())
            st["err_sum"] += batch_err
            st["loss_sum"] += loss.item() * n
            if step_log:
                step_log.write(f"{st['step'] + 1},{loss.item():.6f},{batch_err / n:.6f}\n")
                step_log.flush()
            st["seen"] += n
            st["step_in_epoch"] += 1
            st["step"] += 1
            images_session += n
            now = time.time()
            st["seconds"] += now - t_step
            t_step = now
            if now - last_print > 10 or st["step_in_epoch"] == nb:
                last_print = now
                ips = images_session / max(now - t_session, 1e-9)
                left = (args.epochs - epoch - 1) * n_train + (n_train - st["seen"])
                msg = (f"epoch {epoch + 1}/{args.epochs}  step {st['step_in_epoch']}/{nb}  "
                       f"loss {st['loss_sum'] / st['seen']:.4f}  train err {100 * st['err_sum'] / st['seen']:.2f}%  "
                       f"lr {st['lr']:.4g}  {ips:.1f} img/s  ETA {fmt_time(left / max(ips, 1e-9))} (training)")
                print(("\r" + msg + "   ") if tty else msg, end="" if tty else "\n", flush=True)
            if stop["flag"] or (args.max_steps and st["step"] >= args.max_steps):
                stopped = True
                break
        pf.close()
        if tty:
            print(flush=True)
        if stopped:
            checkpoint()
            print(f"stopped at step {st['step']} (epoch {epoch + 1}, step {st['step_in_epoch']}/{nb}; train loss "
                  f"{st['loss_sum'] / max(st['seen'], 1):.4f}, train top-1 error "
                  f"{100 * st['err_sum'] / max(st['seen'], 1):.2f}% so far); continue with --resume {ckpt_path}",
                  flush=True)
            if stop_eval_idx and args.max_steps and st["step"] >= args.max_steps:
                vloss, v1, v5 = evaluate(model, varr, val_labels, stop_eval_idx, mean, 1, 100, device)[1]
                print(f"eval at stop: {len(stop_eval_idx)} validation images (centre crop): top-1 error "
                      f"{100 * v1:.2f}%, top-5 error {100 * v5:.2f}%, loss {vloss:.4f}", flush=True)
            return

        # --- end of epoch: validation, log, schedule, checkpoint
        t_eval = time.time()
        ev = evaluate(model, varr, val_labels, val_idx, mean, args.val_crops, args.batch, device)
        eval_s = time.time() - t_eval
        tloss, terr = st["loss_sum"] / st["seen"], st["err_sum"] / st["seen"]
        ips = st["seen"] / max(st["seconds"], 1e-9)
        st["epoch"] += 1
        vloss, v1, v5 = ev[1]
        print(f"epoch {st['epoch']}: train loss {tloss:.4f}, train top-1 error {100 * terr:.2f}%; validation "
              f"({len(val_idx)} images) top-1 error {100 * v1:.2f}%, top-5 error {100 * v5:.2f}%; "
              f"{ips:.1f} img/s, {st['seconds']:.1f} s (+ {eval_s:.1f} s evaluation)", flush=True)
        row = f"{st['epoch']},{st['lr']:.6g},{tloss:.6f},{terr:.6f},{vloss:.6f},{v1:.6f},{v5:.6f},{ips:.1f},{st['seconds']:.1f}"
        if args.val_crops == 10:
            _, t1, t5 = ev[10]
            print(f"epoch {st['epoch']}: validation with 10 crops: top-1 error {100 * t1:.2f}%, "
                  f"top-5 error {100 * t5:.2f}%", flush=True)
            row += f",{t1:.6f},{t5:.6f}"
        with open(log_path, "a") as f:
            f.write(row + "\n")
        if v1 < st["best_err"]:
            st["best_err"], st["bad_epochs"] = v1, 0
        else:
            st["bad_epochs"] += 1
        if st["bad_epochs"] >= args.patience and st["drops"] < args.max_drops:
            st["lr"] /= 10.0
            st["drops"] += 1
            st["bad_epochs"] = 0
            print(f"learning rate divided by 10: now {st['lr']:g}", flush=True)
        st.update(step_in_epoch=0, loss_sum=0.0, err_sum=0.0, seen=0, seconds=0.0)
        checkpoint()
    print(f"done: {st['epoch']} epochs, best validation top-1 error {100 * st['best_err']:.2f}%; "
          f"wrote {log_path}, {ckpt_path}", flush=True)


if __name__ == "__main__":
    main()
