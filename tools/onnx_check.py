#!/usr/bin/env python3
"""onnx_check.py: `alexnet export` against ONNX Runtime (issue 16): for each model, random weights,
exported by build/alexnet, run by ONNX Runtime on a random batch, compared with our own outputs.

For each of alexnet (227x227x3), alexnet-owt (224x224x3) and convnet4 (32x32x3), 1000 classes for
the first two and 10 for convnet4, then convnet4-tanh (28x28x1), convnet4-lrn and towers.cfg (a
description file written here, see TOWERS_CFG: LRN that matters, in towers), 10 classes:
  1. the library (ctypes over build/libalexnet.so, the public API of include/alexnet.h) creates the
     network and saves its weights; the weights are then redrawn here (seeded) as He's
     N(0, 2 / fan-in) (the last layer smaller) and biases N(0, 0.1), so that the signal neither
     vanishes nor saturates through the layers (the models' own N(0, 0.01) makes alexnet's logits
     almost equal) and the comparison means something; the library loads them back;
  2. `build/alexnet export --weights W --onnx M.onnx`;
  3. a random normal input batch of 2 (the network input: already normalised) goes through our
     forward pass (alexnet_predict for the probabilities, alexnet_features of the last linear
     layer for the logits; precision fp32) and through ONNX Runtime's CPU provider;
  4. the table: max |difference| of the logits (absolute, and relative to the largest |logit|) and
     of the probabilities; a model passes when the probabilities differ by at most 1e-5 and the
     logits by at most 1e-5 relative to their largest magnitude (float32 sums in another order).

Needs onnxruntime and numpy (from PyPI). Without them it makes its own virtual environment under
runs/onnx-venv (pip install onnxruntime numpy) and runs itself there. Nothing else of the product
uses Python. With the onnx package present it also runs onnx.checker (full check).

usage: tools/onnx_check.py [--models alexnet,alexnet-owt,convnet4,...] [--keep DIR] [--seed N]
environment: ALEXNET_LIB (default build/libalexnet.so), ALEXNET_BIN (default build/alexnet)
"""
import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
VENV = os.path.join(ROOT, "runs", "onnx-venv")
TOLERANCE = 1e-5

# model: (channels, classes, input size (0: the model's own), the last linear layer: the logits)
MODELS = {
    "alexnet": (3, 1000, 0, "fc8"),
    "alexnet-owt": (3, 1000, 0, "classifier.6"),
    "convnet4": (3, 10, 32, "fc4"),
    "convnet4-tanh": (1, 10, 28, "fc4"),
    "convnet4-lrn": (3, 10, 32, "fc4"),
    "towers.cfg": (3, 10, 20, "fc4"),
}

# A description file (written into the work folder) whose LRN matters: with random weights the
# paper's alpha (1e-4 / 5 per squared activation) leaves alexnet's LRN close to a constant
# division, so a wrong window (across the towers' edge) would hardly show in its outputs. Here
# alpha is large, the windows stop at the edges of 2 and 4 groups, and the adaptive average pool
# (9x9 to 4x4: unequal bins) takes the MatMul form; tanh, dropout and two linear layers too.
TOWERS_CFG = """[model]
name = onnx-check-towers
about = onnx_check.py: LRN in towers with a large alpha, unequal average-pool bins
input = 0

[conv]
name = conv1
filters = 16
size = 3
pad = 1
[relu]
[lrn]
groups = 2
alpha = 1
k = 1
[maxpool]
size = 3
stride = 2

[conv]
name = conv2
filters = 16
size = 3
pad = 1
groups = 2
[tanh]
[lrn]
groups = 4
size = 3
alpha = 0.5
[avgpool]
out = 4

[dropout]
p = 0.5
[linear]
name = fc3
units = 32
[relu]
[linear]
name = fc4
units = classes
"""


def ensure_packages():
    """Import onnxruntime and numpy, or rerun this script in runs/onnx-venv (made if missing)."""
    try:
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("ONNX_CHECK_IN_VENV"):
        sys.exit("onnx_check: onnxruntime or numpy cannot be imported in %s" % VENV)
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        print("onnx_check: making %s (pip install onnxruntime numpy)" % VENV, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "onnxruntime", "numpy"], check=True)
    env = dict(os.environ, ONNX_CHECK_IN_VENV="1")
    os.execve(python, [python, os.path.abspath(__file__)] + sys.argv[1:], env)


class Library:
    """The public API of include/alexnet.h through ctypes (only what this check uses)."""

    def __init__(self, path):
        lib = self.lib = ctypes.CDLL(path)
        P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        F = ctypes.POINTER(ctypes.c_float)
        sigs = {
            "alexnet_create": (P, [S, I, I, I, I]),
            "alexnet_init": (I, [P, ctypes.c_uint64]),
            "alexnet_load": (P, [S, S, I]),
            "alexnet_save": (I, [P, S]),
            "alexnet_free": (None, [P]),
            "alexnet_set_precision": (I, [S]),
            "alexnet_channels": (I, [P]),
            "alexnet_classes": (I, [P]),
            "alexnet_input_size": (I, [P]),
            "alexnet_predict": (I, [P, F, I, F]),
            "alexnet_feature_size": (ctypes.c_long, [P, S]),
            "alexnet_features": (I, [P, S, F, I, F]),
            "alexnet_last_error": (S, []),
        }
        for name, (res, args) in sigs.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args

    def check(self, ok, what):
        if not ok:
            sys.exit("onnx_check: %s: %s" % (what, self.lib.alexnet_last_error().decode()))


def ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def redraw_weights(path, seed, last_layer):
    """Rewrite the float32 tensors of a safetensors file in place: weights N(0, 2 / fan-in) (the
    last layer's N(0, 1 / (16 fan-in)): logits of a few units, probabilities not all 0 or 1),
    biases N(0, 0.1), from a seeded generator."""
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    base = 8 + hlen
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        if t["dtype"] != "F32" or not name.endswith((".weight", ".bias")):
            continue
        a, b = t["data_offsets"]
        shape = t["shape"]
        if name.endswith(".weight"):
            fan_in = int(np.prod(shape[1:]))
            var = 1.0 / (16 * fan_in) if name == last_layer + ".weight" else 2.0 / fan_in
            values = rng.standard_normal(shape) * np.sqrt(var)
        else:
            values = rng.standard_normal(shape) * 0.1
        data[base + a:base + b] = values.astype("<f4").tobytes()
    with open(path, "wb") as f:
        f.write(data)


def our_outputs(lib, weights, x, last_layer):
    """(logits, probs) of our forward pass in fp32 for the batch x (n, C, S, S)."""
    import numpy as np

    net = lib.lib.alexnet_load(weights.encode(), None, x.shape[0])
    lib.check(net, "alexnet_load %s" % weights)
    try:
        classes = lib.lib.alexnet_classes(net)
        size = lib.lib.alexnet_feature_size(net, last_layer.encode())
        lib.check(size == classes, "alexnet_feature_size(%s) = %d, not %d classes" % (last_layer, size, classes))
        probs = np.zeros((x.shape[0], classes), np.float32)
        logits = np.zeros((x.shape[0], classes), np.float32)
        lib.check(lib.lib.alexnet_predict(net, ptr(x), x.shape[0], ptr(probs)) == 0, "alexnet_predict")
        lib.check(lib.lib.alexnet_features(net, last_layer.encode(), ptr(x), x.shape[0], ptr(logits)) == 0,
                  "alexnet_features")
        return logits, probs
    finally:
        lib.lib.alexnet_free(net)


def onnx_outputs(model_path, x):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    logits, probs = sess.run(["logits", "probs"], {"input": x})
    return logits, probs


def structure_check(model_path):
    """onnx.checker with full shape inference, when the onnx package is installed; else None."""
    try:
        import onnx
    except ImportError:
        return None
    onnx.checker.check_model(model_path, full_check=True)
    return "onnx.checker ok"


def check_model(lib, binary, name, work, seed):
    import numpy as np

    channels, classes, size, last_layer = MODELS[name]
    model = name
    if name.endswith(".cfg"):
        model = os.path.join(work, name)
        with open(model, "w") as f:
            f.write(TOWERS_CFG)
    net = lib.lib.alexnet_create(model.encode(), channels, classes, size, 2)
    lib.check(net, "alexnet_create %s" % name)
    weights = os.path.join(work, name.replace(".cfg", "") + ".safetensors")
    try:
        lib.check(lib.lib.alexnet_init(net, seed) == 0, "alexnet_init")
        lib.check(lib.lib.alexnet_save(net, weights.encode()) == 0, "alexnet_save")
        size = lib.lib.alexnet_input_size(net)
    finally:
        lib.lib.alexnet_free(net)
    redraw_weights(weights, seed, last_layer)
    model_path = os.path.join(work, name.replace(".cfg", "") + ".onnx")
    run = subprocess.run([binary, "export", "--weights", weights, "--onnx", model_path], capture_output=True,
                         text=True)
    if run.returncode != 0:
        sys.exit("onnx_check: export of %s failed: %s" % (name, run.stderr.strip()))
    print(run.stdout.strip(), file=sys.stderr)
    checked = structure_check(model_path)
    if checked:
        print("%s: %s" % (model_path, checked), file=sys.stderr)
    x = np.random.default_rng(seed + 1).standard_normal((2, channels, size, size)).astype(np.float32)
    ours = our_outputs(lib, weights, x, last_layer)
    theirs = onnx_outputs(model_path, x)
    d_logits = float(np.max(np.abs(ours[0] - theirs[0])))
    rel_logits = d_logits / float(np.max(np.abs(ours[0])))
    d_probs = float(np.max(np.abs(ours[1] - theirs[1])))
    ok = d_probs <= TOLERANCE and rel_logits <= TOLERANCE
    return {"model": name, "input": "%dx%dx%d" % (size, size, channels), "classes": classes,
            "max_logit": float(np.max(np.abs(ours[0]))), "logits": d_logits, "rel": rel_logits,
            "max_prob": float(np.max(ours[1])), "probs": d_probs, "ok": ok}


def main():
    ap = argparse.ArgumentParser(description="alexnet export against ONNX Runtime")
    ap.add_argument("--models", default=",".join(MODELS), help="comma separated (default: all)")
    ap.add_argument("--keep", help="write the weights and .onnx files into this folder and keep them")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    for m in names:
        if m not in MODELS:
            sys.exit("onnx_check: unknown model %s (known: %s)" % (m, ", ".join(MODELS)))
    ensure_packages()
    import onnxruntime as ort

    lib = Library(os.environ.get("ALEXNET_LIB", os.path.join(ROOT, "build", "libalexnet.so")))
    binary = os.environ.get("ALEXNET_BIN", os.path.join(ROOT, "build", "alexnet"))
    lib.check(lib.lib.alexnet_set_precision(b"fp32") == 0, "alexnet_set_precision")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        for m in names:
            rows.append(check_model(lib, binary, m, work, args.seed))
    print("ONNX Runtime %s, CPU provider; batch 2, random N(0, 1) input; tolerance %g" % (ort.__version__, TOLERANCE))
    print("| model | input | classes | max abs logit | max abs diff logits | relative | max prob | "
          "max abs diff probs | result |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %d | %.4g | %.3g | %.3g | %.4g | %.3g | %s |" % (
            r["model"], r["input"], r["classes"], r["max_logit"], r["logits"], r["rel"], r["max_prob"],
            r["probs"], "pass" if r["ok"] else "FAIL"))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
