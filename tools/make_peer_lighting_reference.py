#!/usr/bin/python3
"""Reference vectors of the PyTorch peer's training input pipeline, for tests/test_peer_pipeline.c.

What it is for
--------------
bench/train_pytorch.py (the PyTorch peer of `alexnet train`) must build the same training inputs
as the C pipeline (src/data/augment.c): the 227x227 window of the 256x256 base image, mirrored or
not, plus the PCA lighting shift sum_i alpha_i (lambda_i / 255) p_i, minus the mean image at the
same window, in 0..255 units. Until 2026-12-02 the peer left out the division by 255, a lighting
255 times too strong. This script runs the peer's own functions (imported from
bench/train_pytorch.py: load_base, lighting_shift, train_view) on real Imagenette images with
fixed windows, flips and alphas, a fixed eigen-system and a fixed mean image, and stores inputs,
parameters and a summary of the outputs in tests/vectors/peer_lighting.safetensors; the C test
feeds the same pixels and parameters to augment_lighting and augment_apply and compares.

The alphas are the C side's own draws for (seed, counter) (augment_lighting's stream: sub =
an_hash64(seed, counter), alpha_i = 0.1 * an_normal(sub, 3 + i), an_normal a double-precision
Box-Muller, computed here with the same formula), so the C test can call augment_lighting itself
instead of repeating its formula. They are stored too, and the test checks they are the C draws.

Stored tensors (V views of I images):
  images       U8  [I, 3, 256, 256]  the peer's base images (load_base: Pillow decode to RGB,
                                     shorter side to 256, centre 256x256)
  view_image   I32 [V]               which image each view cuts
  view_xyf     I32 [V, 3]            window left x, top y, flip (0/1)
  view_seed_counter I64 [V, 2]       (seed, counter) of the lighting draws
  alphas       F32 [V, 3]            alpha_i = 0.1 * an_normal(an_hash64(seed, counter), 3 + i)
  eigval       F32 [3]               fixed eigenvalues (0..255^2 units; Imagenette's, rounded)
  eigvec       F32 [3, 3]            fixed unit eigenvectors, eigvec[i] = i-th
  rgb          F32 [V, 3]            the peer's lighting shift (lighting_shift, scale 1)
  rgb_bug      F32 [V, 3]            the same with --lighting-scale 255 (the old bug)
  sample_index I32 [S]               flat indices into the (3, 227, 227) output
  out_samples  F32 [V, S]            the peer's train_view output at those indices
  out_sums     F64 [V, 3]            per-channel sum of the whole output (float64 sum)
  out_abs_sums F64 [V, 3]            per-channel sum of |output|
  bug_samples, bug_sums F32/F64      the same for the old 255x lighting (the C output must NOT
                                     match them)
and, for the recipes (the test compares them with the C side's model_apply_recipe and sgd_update):
  init.<r>     F32 [8, 2]            the peer's (weight std, bias) of conv1..fc8 for recipe r =
                                     paper, caffe (train_pytorch.INIT)
  bias_mult.<r> F32 [2]              the peer's bias (lr multiplier, decay multiplier)
  sgd.w, sgd.b, sgd.gw, sgd.gb, sgd.vw, sgd.vb   F32  a small weight (4, 3) and bias (4), their
                                     gradients and momenta before one step
  sgd.<r>.w, .b, .vw, .vb  F32       after the peer's sgd_step with recipe r's multipliers
                                     (lr 0.01, weight decay 0.0005, momentum 0.9)
Metadata: files (relative to <shared data>/imagenette), the mean image formula, the versions of
torch, numpy and Pillow, what produced it.

The mean image is not stored (786 KB): both sides compute it from the formula
    mean[c][y][x] = 64 + 32 c + 0.5 ((7 y + 3 x) mod 61)
(multiples of 0.5, exact in float32).

How to rerun it
---------------
    apt-get install -y python3-torch python3-numpy python3-pil      # Debian packages
    cd <repo root> && /usr/bin/python3 tools/make_peer_lighting_reference.py
        [--lighting-scale 255 --out /tmp/bugged.safetensors]   # the old bug as "the peer", to see
                                                               # the C test fail on it
It reads two images of ../shared/data/imagenette (relative to the repo root) and writes about
400 KB in under a second. ALEXNET_PEER_VECTORS=FILE makes the C test read FILE instead.
"""
import argparse
import math
import os
import sys

import numpy as np
import PIL
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import train_pytorch as peer  # noqa: E402  (the peer's own functions)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_write import write_safetensors  # noqa: E402  (tools/safetensors_write.py)

DATA = os.path.join(ROOT, "..", "shared", "data", "imagenette")
OUT = os.path.join(ROOT, "tests", "vectors", "peer_lighting.safetensors")

# an RGB tench and a grayscale springer (both 224x224 in this copy, so resized up to 256)
FILES = ["train/n01440764/ILSVRC2012_val_00000293.JPEG", "train/n02102040/n02102040_1408.JPEG"]
# (image, x, y, flip, seed, counter): corners, centre and inner windows, both flips; counters as
# the loader's epoch << 32 | example index
VIEWS = [(0, 0, 0, 0, 1, 0), (0, 29, 29, 1, 1, 1), (0, 7, 22, 1, 2, (3 << 32) | 17), (0, 14, 14, 0, 5, 123),
         (1, 29, 0, 1, 1, 2), (1, 0, 29, 0, 1, 3), (1, 13, 5, 0, 7, (1 << 32) | 9469), (1, 21, 17, 1, 9, 42)]
LIGHTING_STD = 0.1
# Imagenette's eigenpairs (alexnet prep, all 9,469 training images), rounded
EIGVAL = [14430.47, 1140.59, 228.78]
EIGVEC = [[0.5548, 0.5765, 0.5999], [0.7130, 0.0421, -0.6999], [-0.4288, 0.8160, -0.3876]]
N_SAMPLES, SAMPLE_STRIDE, SAMPLE_OFFSET = 256, 601, 7
LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
RECIPES = ["paper", "caffe"]
SGD_LR, SGD_WD, SGD_MOMENTUM = 0.01, 0.0005, 0.9


def mean_image():
    c, y, x = np.meshgrid(np.arange(3), np.arange(peer.BASE), np.arange(peer.BASE), indexing="ij")
    return (64.0 + 32.0 * c + 0.5 * ((7 * y + 3 * x) % 61)).astype(np.float32)


def an_normal(seed, counter):
    """src/util/common.c's an_normal: Box-Muller in double precision from two hashes, as float32."""
    u1 = ((peer.an_hash64(seed, 2 * counter) >> 11) + 1.0) * (1.0 / 9007199254740993.0)
    u2 = (peer.an_hash64(seed, 2 * counter + 1) >> 11) * (1.0 / 9007199254740992.0)
    return np.float32(math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2))


def c_alphas(seed, counter):
    """augment_lighting's alphas for (seed, counter): lighting_std * an_normal(sub, 3 + i) in float32."""
    sub = peer.an_hash64(seed, counter)
    return np.array([np.float32(LIGHTING_STD) * an_normal(sub, 3 + i) for i in range(3)], np.float32)


def sample_index():
    n = 3 * peer.CROP * peer.CROP
    idx = [j * SAMPLE_STRIDE + SAMPLE_OFFSET for j in range(N_SAMPLES)]
    plane = peer.CROP * peer.CROP
    for c in range(3):  # the four corners of each channel (the mirrored edges)
        idx += [c * plane, c * plane + peer.CROP - 1, c * plane + plane - peer.CROP, c * plane + plane - 1]
    assert max(idx) < n
    return np.array(idx, np.int32)

def recipe_tensors():
    """The peer's initialisation table, bias multipliers and one sgd_step per recipe."""
    out = []
    rng = np.random.default_rng(2026)
    start = {k: rng.normal(0.0, s, shape).astype(np.float32) for k, s, shape in
             (("w", 0.5, (4, 3)), ("b", 0.5, (4,)), ("gw", 0.1, (4, 3)), ("gb", 0.1, (4,)),
              ("vw", 0.01, (4, 3)), ("vb", 0.01, (4,)))}
    out += [(f"sgd.{k}", v) for k, v in start.items()]
    for r in RECIPES:
        out.append((f"init.{r}", np.array([peer.INIT[r][name] for name in LAYERS], np.float32)))
        out.append((f"bias_mult.{r}", np.array(peer.bias_multipliers(r), np.float32)))
        layer = torch.nn.Linear(3, 4)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(start["w"]))
            layer.bias.copy_(torch.from_numpy(start["b"]))
        layer.weight.grad = torch.from_numpy(start["gw"].copy())
        layer.bias.grad = torch.from_numpy(start["gb"].copy())
        moms = [torch.from_numpy(start["vw"].copy()), torch.from_numpy(start["vb"].copy())]
        peer.sgd_step(list(layer.parameters()), moms, peer.param_multipliers(layer, r), SGD_LR, SGD_WD,
                      SGD_MOMENTUM)
        out += [(f"sgd.{r}.w", layer.weight.detach().numpy().copy()),
                (f"sgd.{r}.b", layer.bias.detach().numpy().copy()),
                (f"sgd.{r}.vw", moms[0].numpy()), (f"sgd.{r}.vb", moms[1].numpy())]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--lighting-scale", type=float, default=1.0,
                    help="the peer's --lighting-scale for the 'peer' tensors (255 = the old bug, to see the test fail)")
    args = ap.parse_args()

    images = np.stack([peer.load_base(os.path.join(DATA, f)) for f in FILES])
    mean = torch.from_numpy(mean_image())
    eigval = torch.tensor(EIGVAL, dtype=torch.float32)
    eigvec = torch.tensor(EIGVEC, dtype=torch.float32)
    sidx = sample_index()
    rows = {k: [] for k in ("alphas", "rgb", "rgb_bug", "out_samples", "out_sums", "out_abs_sums",
                            "bug_samples", "bug_sums")}
    for im, x, y, flip, seed, counter in VIEWS:
        a = torch.from_numpy(c_alphas(seed, counter))
        outs = {}
        for key, scale in (("out", args.lighting_scale), ("bug", 255.0)):
            v = peer.train_view(images[im], mean, x, y, bool(flip), a, eigval, eigvec, scale)
            assert v.shape == (3, peer.CROP, peer.CROP) and v.dtype == torch.float32
            outs[key] = v.numpy().reshape(3, -1)
        rows["alphas"].append(a.numpy())
        rows["rgb"].append(peer.lighting_shift(a, eigval, eigvec, args.lighting_scale).numpy())
        rows["rgb_bug"].append(peer.lighting_shift(a, eigval, eigvec, 255.0).numpy())
        for key in ("out", "bug"):
            o = outs[key]
            rows[f"{key}_samples"].append(o.reshape(-1)[sidx])
            rows[f"{key}_sums"].append(o.astype(np.float64).sum(1))
        rows["out_abs_sums"].append(np.abs(outs["out"].astype(np.float64)).sum(1))
        print(f"image {im} window ({x:2d},{y:2d}) flip {flip}: alphas {np.round(a.numpy(), 4)} -> shift "
              f"{np.round(rows['rgb'][-1], 3)} grey levels (old bug: {np.round(rows['rgb_bug'][-1], 1)})")
    tensors = [
        ("images", images.astype(np.uint8)),
        ("view_image", np.array([v[0] for v in VIEWS], np.int32)),
        ("view_xyf", np.array([v[1:4] for v in VIEWS], np.int32)),
        ("view_seed_counter", np.array([v[4:6] for v in VIEWS], np.int64)),
        ("eigval", eigval.numpy()), ("eigvec", eigvec.numpy()),
        ("alphas", np.stack(rows["alphas"]).astype(np.float32)),
        ("rgb", np.stack(rows["rgb"]).astype(np.float32)),
        ("rgb_bug", np.stack(rows["rgb_bug"]).astype(np.float32)),
        ("sample_index", sidx),
        ("out_samples", np.stack(rows["out_samples"]).astype(np.float32)),
        ("out_sums", np.stack(rows["out_sums"])),
        ("out_abs_sums", np.stack(rows["out_abs_sums"])),
        ("bug_samples", np.stack(rows["bug_samples"]).astype(np.float32)),
        ("bug_sums", np.stack(rows["bug_sums"])),
    ] + recipe_tensors()
    metadata = {
        "files": ",".join(FILES),
        "data": "<shared data>/imagenette",
        "mean_image": "mean[c][y][x] = 64 + 32 c + 0.5 ((7 y + 3 x) mod 61), (3, 256, 256) float32",
        "lighting_std": repr(LIGHTING_STD),
        "lighting_scale": repr(args.lighting_scale),
        "crop": str(peer.CROP),
        "init_layers": ",".join(LAYERS),
        "sgd": f"lr {SGD_LR}, weight decay {SGD_WD}, momentum {SGD_MOMENTUM}",
        "torch": torch.__version__, "numpy": np.__version__, "PIL": PIL.__version__,
        "producer": "tools/make_peer_lighting_reference.py (bench/train_pytorch.py: load_base, lighting_shift, "
                    "train_view)",
    }
    write_safetensors(args.out, tensors, metadata)
    print(f"wrote {os.path.relpath(args.out, ROOT)} ({os.path.getsize(args.out)} bytes; torch {torch.__version__}, "
          f"numpy {np.__version__}, Pillow {PIL.__version__})")


if __name__ == "__main__":
    sys.exit(main())
