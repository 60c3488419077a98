#!/usr/bin/env python3
"""Generate PyTorch reference vectors for the C AlexNet implementation.

What it is for
--------------
The C code (src/) implements AlexNet forward, backward and the paper's SGD
update by hand.  This script builds the same two networks in plain PyTorch
(torch.nn, float32), fills every weight and the input with an exact integer
formula that the C side can recompute without sharing any files, runs two SGD
steps, and stores small samples of the results so the C tests can check
themselves against PyTorch:

  tests/vectors/alexnet.safetensors      the paper's network (input 3x227x227,
                                         LRN, grouped conv2/4/5), 60,965,224 params
  tests/vectors/alexnet-owt.safetensors  torchvision's "one weird trick" layout
                                         (input 3x224x224, no LRN, no groups,
                                         AdaptiveAvgPool2d(6,6)), 61,100,840 params

How to rerun it
---------------
    /usr/bin/python3 tools/make_reference.py

regenerates both files (needs only torch and numpy; about a minute on CPU).

Deterministic fill (the C side must compute exactly this)
---------------------------------------------------------
  h = (i * 2654435761 + s * 40503 + 12345) mod 2**32, then murmur3's fmix32 (all mod 2**32):
      h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16
  u(s, i) = h / 2**32                                                  float64 in [0,1)
  (the mixing step keeps weights and inputs uncorrelated, so the two samples differ)
  parameter tensor t (0-based, order below), flat row-major element i:
    weight: w = (2*u(t,i) - 1) * sqrt(6 / fan_in)      (float64, then cast to float32)
            fan_in = (in_channels/groups)*kh*kw for conv, in_features for linear
    bias:   b = (2*u(t,i) - 1) * 0.1                   (float64, then cast to float32)
  input x (N,3,H,W), flat index i: x = 2*u(1000, i) - 1 (float64, then float32)
  labels y[n] = (n*37 + 11) % 1000,  N = 2,  1000 classes.

Parameter order (t):
  alexnet:     conv1.weight, conv1.bias, conv2.*, conv3.*, conv4.*, conv5.*,
               fc6.*, fc7.*, fc8.*
  alexnet-owt: features.0.*, features.3.*, features.6.*, features.8.*,
               features.10.*, classifier.1.*, classifier.4.*, classifier.6.*

Notes for the C side
  * LRN is torch.nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
    i.e. b = a / (k + (alpha/size) * sum_{window} a^2)^beta  -- torch divides
    alpha by size; the window is channels c-2..c+2 clipped at the edges.
    In `alexnet` it runs on each tower's half of the channels separately
    (channels 0-47 and 48-95 after conv1, 0-127 and 128-255 after conv2): the
    paper's GPUs normalised their own kernel maps.
  * Dropout is disabled (identity) in both networks; everything else is as in
    training.  Loss is mean softmax cross-entropy over the batch.
  * Two steps of the paper's SGD (lr 0.01, momentum 0.9, weight decay 0.0005,
    v0 = 0), in float32:
        v <- 0.9*v - 0.0005*lr*w - lr*grad ;  w <- w + v

Stored tensors (safetensors, written by hand with struct + json):
  input_checksum F64 [2]  sum(x), sum(x*x) over the float32 input, in float64
                          (math.fsum: the correctly rounded exact sums)
  logits F32 [2,1000], loss F32 [1] (step 1), loss_step2 F32 [1]
  per parameter P:
    grad.P.norm   F64 [1]   L2 norm of the step-1 gradient
    grad.P.idx    I64 [64]  sample flat indices: first 8 = largest |grad|
                            (descending, ties by lower index), then 56 spread
                            evenly over the tensor
    grad.P.val    F32 [64]  step-1 gradient at those indices
    param2.P.val  F32 [64]  parameter after both updates at those indices
    param2.P.norm F64 [1]   L2 norm of the parameter after both updates
"""

import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_write import write_safetensors as write_st  # noqa: E402  (tools/safetensors_write.py)

N_BATCH = 2
CLASSES = 1000
LR = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0005
INPUT_SEED = 1000
N_SAMPLES = 64
N_TOP = 8

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "vectors")


# --------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------

class AlexNetPaper(nn.Module):
    """The 2012 paper's network (single-tower view of the two-GPU layout)."""

    def __init__(self, classes=CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4, padding=0)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.fc6 = nn.Linear(9216, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, classes)
        self.lrn = nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(3, 2)

    def tower_lrn(self, x):
        # each tower normalises over its own half of the kernel maps (the paper's two GPUs)
        return torch.cat([self.lrn(h) for h in x.chunk(2, dim=1)], dim=1)

    def forward(self, x, trace=None):
        def rec(name, t):
            if trace is not None:
                trace.append((name, t.detach()))
            return t
        x = rec("pool1", self.pool(self.tower_lrn(F.relu(self.conv1(x)))))
        x = rec("pool2", self.pool(self.tower_lrn(F.relu(self.conv2(x)))))
        x = rec("conv3", F.relu(self.conv3(x)))
        x = rec("conv4", F.relu(self.conv4(x)))
        x = rec("pool5", self.pool(F.relu(self.conv5(x))))
        x = torch.flatten(x, 1)                       # NCHW order
        x = rec("fc6", F.relu(self.fc6(x)))           # dropout disabled
        x = rec("fc7", F.relu(self.fc7(x)))           # dropout disabled
        return self.fc8(x)


class AlexNetOWT(nn.Module):
    """torchvision.models.AlexNet layout (parameter names match torchvision)."""

    def __init__(self, classes=CLASSES):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),   # 0
            nn.ReLU(inplace=False),                      # 1
            nn.MaxPool2d(3, 2),                          # 2
            nn.Conv2d(64, 192, 5, padding=2),            # 3
            nn.ReLU(inplace=False),                      # 4
            nn.MaxPool2d(3, 2),                          # 5
            nn.Conv2d(192, 384, 3, padding=1),           # 6
            nn.ReLU(inplace=False),                      # 7
            nn.Conv2d(384, 256, 3, padding=1),           # 8
            nn.ReLU(inplace=False),                      # 9
            nn.Conv2d(256, 256, 3, padding=1),           # 10
            nn.ReLU(inplace=False),                      # 11
            nn.MaxPool2d(3, 2),                          # 12
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Identity(),                               # 0: dropout, disabled
            nn.Linear(9216, 4096),                       # 1
            nn.ReLU(inplace=False),                      # 2
            nn.Identity(),                               # 3: dropout, disabled
            nn.Linear(4096, 4096),                       # 4
            nn.ReLU(inplace=False),                      # 5
            nn.Linear(4096, classes),                    # 6
        )

    def tower_lrn(self, x):
        # each tower normalises over its own half of the kernel maps (the paper's two GPUs)
        return torch.cat([self.lrn(h) for h in x.chunk(2, dim=1)], dim=1)

    def forward(self, x, trace=None):
        def rec(name, t):
            if trace is not None:
                trace.append((name, t.detach()))
            return t
        names = {2: "pool1", 5: "pool2", 7: "conv3", 9: "conv4", 12: "pool5"}
        for k, layer in enumerate(self.features):
            x = layer(x)
            if k in names:
                rec(names[k], x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        for k, layer in enumerate(self.classifier):
            x = layer(x)
            if k == 2:
                rec("fc6", x)
            elif k == 5:
                rec("fc7", x)
        return x


MODELS = [
    {
        "name": "alexnet",
        "cls": AlexNetPaper,
        "hw": 227,
        "total": 60965224,
        "order": ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                  "conv3.weight", "conv3.bias", "conv4.weight", "conv4.bias",
                  "conv5.weight", "conv5.bias", "fc6.weight", "fc6.bias",
                  "fc7.weight", "fc7.bias", "fc8.weight", "fc8.bias"],
        "shapes": [(96, 3, 11, 11), (96,), (256, 48, 5, 5), (256,),
                   (384, 256, 3, 3), (384,), (384, 192, 3, 3), (384,),
                   (256, 192, 3, 3), (256,), (4096, 9216), (4096,),
                   (4096, 4096), (4096,), (1000, 4096), (1000,)],
    },
    {
        "name": "alexnet-owt",
        "cls": AlexNetOWT,
        "hw": 224,
        "total": 61100840,
        "order": ["features.0.weight", "features.0.bias",
                  "features.3.weight", "features.3.bias",
                  "features.6.weight", "features.6.bias",
                  "features.8.weight", "features.8.bias",
                  "features.10.weight", "features.10.bias",
                  "classifier.1.weight", "classifier.1.bias",
                  "classifier.4.weight", "classifier.4.bias",
                  "classifier.6.weight", "classifier.6.bias"],
        "shapes": [(64, 3, 11, 11), (64,), (192, 64, 5, 5), (192,),
                   (384, 192, 3, 3), (384,), (256, 384, 3, 3), (256,),
                   (256, 256, 3, 3), (256,), (4096, 9216), (4096,),
                   (4096, 4096), (4096,), (1000, 4096), (1000,)],
    },
]


# --------------------------------------------------------------------------
# deterministic fill
# --------------------------------------------------------------------------

MUL = 2654435761
SEED_MUL = 40503
OFFSET = 12345
TWO32 = 2 ** 32


def fmix_py(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) % TWO32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) % TWO32
    return h ^ (h >> 16)


def u_py(s, i):
    """Reference definition with Python integers (exact)."""
    return fmix_py((i * MUL + s * SEED_MUL + OFFSET) % TWO32) / TWO32


def u_np_u64(s, n):
    """Vectorized, uint64: i*MUL < 2**64 for every i we use, then mod 2**32."""
    assert n * MUL + s * SEED_MUL + OFFSET < 2 ** 64
    i = np.arange(n, dtype=np.uint64)
    m = np.uint64(TWO32)
    k = (i * np.uint64(MUL) + np.uint64(s * SEED_MUL + OFFSET)) % m
    k ^= k >> np.uint64(16)
    k = (k * np.uint64(0x85EBCA6B)) % m
    k ^= k >> np.uint64(13)
    k = (k * np.uint64(0xC2B2AE35)) % m
    k ^= k >> np.uint64(16)
    return k.astype(np.float64) / float(TWO32)


def u_np_u32(s, n):
    """Independent vectorized check: uint32 wrap-around arithmetic."""
    i = np.arange(n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(over="ignore"):
        k = i * np.uint32(MUL) + np.uint32((s * SEED_MUL + OFFSET) % TWO32)
        k ^= k >> np.uint32(16)
        k = k * np.uint32(0x85EBCA6B)
        k ^= k >> np.uint32(13)
        k = k * np.uint32(0xC2B2AE35)
        k ^= k >> np.uint32(16)
    return np.ldexp(k.astype(np.float64), -32)


def fill_values(s, n, scale, which):
    """float32 values (2*u(s,i) - 1) * scale, rounded once from float64.
    scale None means no multiplication (the input)."""
    u = u_np_u64(s, n) if which == 0 else u_np_u32(s, n)
    v = 2.0 * u - 1.0
    if scale is not None:
        v = v * scale
    return v.astype(np.float32)


def fan_in_of(shape):
    # conv weight (out, in/groups, kh, kw) or linear weight (out, in)
    f = 1
    for d in shape[1:]:
        f *= d
    return f


def param_fill(t, shape, is_weight, which=0):
    n = int(np.prod(shape))
    if is_weight:
        scale = math.sqrt(6.0 / fan_in_of(shape))
    else:
        scale = 0.1
    return fill_values(t, n, scale, which).reshape(shape), scale


def check_fill_exact(arr32, s, scale, which_name):
    """Compare against the independent uint32 path and against Python ints on
    a set of sample indices."""
    n = arr32.size
    other = fill_values(s, n, scale, 1)
    flat = arr32.reshape(-1)
    if not np.array_equal(flat.view(np.uint32), other.view(np.uint32)):
        bad = int(np.argmax(flat.view(np.uint32) != other.view(np.uint32)))
        raise SystemExit("fill mismatch for %s at %d" % (which_name, bad))
    probe = sorted(set([0, 1, 2, 3, n // 3, n // 2, n - 2, n - 1] +
                       [(j * 7919 * 104729) % n for j in range(64)]))
    for i in probe:
        v = 2.0 * u_py(s, i) - 1.0
        if scale is not None:
            v = v * scale
        ref = np.float32(v)
        if ref.view(np.uint32) != flat[i].view(np.uint32):
            raise SystemExit("python-int fill mismatch for %s at %d: %r vs %r"
                             % (which_name, i, ref, flat[i]))


# --------------------------------------------------------------------------
# safetensors (hand written)
# --------------------------------------------------------------------------

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype_str, np.ndarray); tools/safetensors_write.py writes them."""
    write_st(path, [(name, np.ascontiguousarray(arr, dtype=DTYPES[dt])) for name, dt, arr in tensors], metadata)


def read_safetensors(path):
    """Tiny independent reader; returns (dict name -> ndarray, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    assert hlen % 8 == 0 and 8 + hlen <= len(raw)
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + hlen:]
    out = {}
    spans = []
    for name, h in header.items():
        dt = DTYPES[h["dtype"]]
        b, e = h["data_offsets"]
        cnt = 1
        for d in h["shape"]:
            cnt *= d
        assert e - b == cnt * dt.itemsize, name
        spans.append((b, e))
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(h["shape"])
    spans.sort()
    pos = 0
    for b, e in spans:
        assert b == pos, "gap/overlap in data section"
        pos = e
    assert pos == len(data), "trailing bytes in data section"
    return out, meta


# --------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------

def sample_indices(g):
    """First 8: largest |g| (descending, ties by lower index); then 56 spread
    evenly (j*n//56, bumped forward past already-used indices)."""
    a = np.abs(g.reshape(-1).astype(np.float64))
    n = a.size
    assert n >= N_SAMPLES
    kth = min(N_TOP * 4, n - 1)
    cand = np.argpartition(-a, kth)[:kth + 1]
    thresh = np.sort(a[cand])[::-1][N_TOP - 1]
    cand = np.nonzero(a >= thresh)[0]                 # includes all ties
    order = sorted(cand.tolist(), key=lambda i: (-a[i], i))
    top = order[:N_TOP]
    used = set(top)
    rest = []
    n_rest = N_SAMPLES - N_TOP
    for j in range(n_rest):
        i = (j * n) // n_rest
        while i in used:
            i = (i + 1) % n
        used.add(i)
        rest.append(i)
    idx = np.array(top + rest, dtype=np.int64)
    assert len(set(idx.tolist())) == N_SAMPLES
    return idx


def norm64(t):
    a = t.detach().reshape(-1).numpy().astype(np.float64)
    return float(np.sqrt(np.sum(a * a)))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def make_input(hw):
    n = N_BATCH * 3 * hw * hw
    x = fill_values(INPUT_SEED, n, None, 0)
    check_fill_exact(x, INPUT_SEED, None, "input")
    return x.reshape(N_BATCH, 3, hw, hw)


def run_model(spec):
    t0 = time.perf_counter()
    name = spec["name"]
    torch.manual_seed(0)  # irrelevant (all weights overwritten), keeps init quiet
    net = spec["cls"]()
    net.train()  # dropout layers are absent/identity; nothing else depends on mode

    params = dict(net.named_parameters())
    assert list(params.keys()) == spec["order"], list(params.keys())
    total = sum(p.numel() for p in params.values())
    assert total == spec["total"], total

    with torch.no_grad():
        for t, pname in enumerate(spec["order"]):
            p = params[pname]
            assert tuple(p.shape) == spec["shapes"][t], (pname, p.shape)
            is_w = pname.endswith(".weight")
            vals, scale = param_fill(t, tuple(p.shape), is_w)
            check_fill_exact(vals, t, scale, pname)
            p.copy_(torch.from_numpy(vals))

    x_np = make_input(spec["hw"])
    x = torch.from_numpy(x_np)
    y = torch.tensor([(n * 37 + 11) % CLASSES for n in range(N_BATCH)],
                     dtype=torch.int64)
    xd = x_np.reshape(-1).astype(np.float64)
    checksum = np.array([math.fsum(xd.tolist()), math.fsum((xd * xd).tolist())],
                        dtype=np.float64)

    vel = {k: torch.zeros_like(p) for k, p in params.items()}

    def sgd_step():
        with torch.no_grad():
            for k, p in params.items():
                v = vel[k]
                v.mul_(MOMENTUM).sub_(p, alpha=WEIGHT_DECAY * LR).sub_(p.grad, alpha=LR)
                p.add_(v)
                p.grad = None

    # step 1
    trace = []
    logits = net(x, trace)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    logits1 = logits.detach().clone().numpy()
    loss1 = float(loss.item())
    grads = {k: p.grad.detach().clone() for k, p in params.items()}
    sgd_step()

    # step 2
    logits2 = net(x)
    loss2_t = F.cross_entropy(logits2, y)
    loss2_t.backward()
    loss2 = float(loss2_t.item())
    sgd_step()

    # checks
    lnorm = float(np.sqrt(np.sum(logits1.astype(np.float64) ** 2)))
    lmaxabs = float(np.max(np.abs(logits1)))
    problems = []
    if not (math.isfinite(loss1) and math.isfinite(loss2)):
        problems.append("non-finite loss")
    if not np.all(np.isfinite(logits1)):
        problems.append("non-finite logits")
    if lmaxabs < 1e-3:
        problems.append("logits tiny (max |logit| %.3g)" % lmaxabs)
    if lmaxabs > 1e3:
        problems.append("logits huge (max |logit| %.3g)" % lmaxabs)

    tensors = [
        ("input_checksum", "F64", checksum),
        ("logits", "F32", logits1),
        ("loss", "F32", np.array([loss1], dtype=np.float32)),
        ("loss_step2", "F32", np.array([loss2], dtype=np.float32)),
    ]
    gnorms = {}
    for k in spec["order"]:
        g = grads[k].reshape(-1).numpy()
        p2 = params[k].detach().reshape(-1).numpy()
        idx = sample_indices(g)
        gnorms[k] = norm64(grads[k])
        if not np.all(np.isfinite(g)):
            problems.append("non-finite grad in " + k)
        tensors += [
            ("grad.%s.norm" % k, "F64", np.array([gnorms[k]])),
            ("grad.%s.idx" % k, "I64", idx),
            ("grad.%s.val" % k, "F32", g[idx]),
            ("param2.%s.val" % k, "F32", p2[idx]),
            ("param2.%s.norm" % k, "F64", np.array([norm64(params[k])])),
        ]

    meta = {"model": name, "batch": str(N_BATCH), "classes": str(CLASSES),
            "generator": "tools/make_reference.py", "torch": torch.__version__}
    path = os.path.join(OUT_DIR, name + ".safetensors")
    write_safetensors(path, tensors, meta)

    # read back and compare bit-for-bit
    back, bmeta = read_safetensors(path)
    assert bmeta == meta, bmeta
    assert set(back.keys()) == set(t[0] for t in tensors)
    for tname, dt, arr in tensors:
        a = np.ascontiguousarray(arr, dtype=DTYPES[dt])
        assert back[tname].shape == a.shape, tname
        assert back[tname].tobytes() == a.tobytes(), tname
    size = os.path.getsize(path)
    assert size < 1 << 20, size

    dt_s = time.perf_counter() - t0
    print("== %s  (%d params, input %dx%d, %.1f s)" % (name, total, spec["hw"],
                                                         spec["hw"], dt_s))
    print("   wrote %s (%d bytes, %d tensors, read back OK)"
          % (os.path.relpath(path, ROOT), size, len(tensors)))
    print("   input_checksum sum=%.17g sumsq=%.17g" % (checksum[0], checksum[1]))
    print("   loss=%.7f  loss_step2=%.7f  (ln 1000 = %.4f)"
          % (loss1, loss2, math.log(CLASSES)))
    print("   logits: L2 norm=%.6g  max|.|=%.4g  std=%.4g"
          % (lnorm, lmaxabs, float(logits1.std())))
    print("   activation std: " + "  ".join(
        "%s=%.3g" % (nm, float(t.std())) for nm, t in trace))
    print("   step-1 grad L2 norms:")
    for k in spec["order"]:
        print("     %-20s %.6e" % (k, gnorms[k]))
    for p in problems:
        print("   WARNING: " + p)
    return problems


def main():
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    os.makedirs(OUT_DIR, exist_ok=True)
    problems = []
    for spec in MODELS:
        problems += run_model(spec)
    print("total runtime %.1f s" % (time.perf_counter() - t0))
    if problems:
        print("PROBLEMS: " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
