#!/usr/bin/env python3
"""torchvision_to_safetensors.py: convert a torchvision AlexNet checkpoint (a .pth state_dict such as
alexnet-owt-7be5be79.pth) into a safetensors file with the same tensor names (features.0.weight ...
classifier.6.bias), float32 and contiguous, plus metadata {"model": "alexnet-owt", "source": <input
file name>}. The file is written by hand with struct + json, so only torch is needed (not the
safetensors package), and goes through OUTPUT.tmp + fsync + rename.

usage: torchvision_to_safetensors.py INPUT.pth [OUTPUT.safetensors]
"""
import argparse
import ctypes
import importlib.util
import json
import os
import struct
import sys

PROG = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "torchvision_to_safetensors.py"

# torchvision.models.alexnet (the "one weird trick" layout), 1000 classes, in network order.
EXPECTED = [
    ("features.0.weight", (64, 3, 11, 11)), ("features.0.bias", (64,)),
    ("features.3.weight", (192, 64, 5, 5)), ("features.3.bias", (192,)),
    ("features.6.weight", (384, 192, 3, 3)), ("features.6.bias", (384,)),
    ("features.8.weight", (256, 384, 3, 3)), ("features.8.bias", (256,)),
    ("features.10.weight", (256, 256, 3, 3)), ("features.10.bias", (256,)),
    ("classifier.1.weight", (4096, 9216)), ("classifier.1.bias", (4096,)),
    ("classifier.4.weight", (4096, 4096)), ("classifier.4.bias", (4096,)),
    ("classifier.6.weight", (1000, 4096)), ("classifier.6.bias", (1000,)),
]


class ConvertError(Exception):
    pass


def load_state_dict(path):
    """The state_dict in `path`: a plain state_dict or a {"state_dict": ...} / {"model": ...} wrapper;
    a "module." prefix (DataParallel) is removed."""
    import torch

    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        try:  # weights_only: a checkpoint cannot run code while it loads
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch older than 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise ConvertError(f"{path}: cannot load with torch.load: {msg[0] if msg else type(e).__name__}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: not a state_dict (got {type(obj).__name__})")
    if obj and all(isinstance(k, str) and k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def check_tensors(path, sd):
    """Validates names and shapes; returns [(name, float32 contiguous CPU tensor)] in network order."""
    import torch

    want = dict(EXPECTED)
    problems = []
    missing = [n for n, _ in EXPECTED if n not in sd]
    unexpected = sorted(str(k) for k in sd if k not in want)
    if missing:
        problems.append("missing " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected[:10]) + (" ..." if len(unexpected) > 10 else ""))
    out = []
    for name, shape in EXPECTED:
        if name not in sd:
            continue
        t = sd[name]
        if not isinstance(t, torch.Tensor):
            problems.append(f"{name} is a {type(t).__name__}, not a tensor")
            continue
        if tuple(t.shape) != shape:
            problems.append(f"{name} has shape {list(t.shape)}, expected {list(shape)}")
            continue
        if not t.is_floating_point():
            problems.append(f"{name} has dtype {t.dtype}, expected a floating-point type")
            continue
        out.append((name, t.detach().to(device="cpu", dtype=torch.float32).contiguous()))
    if problems:
        raise ConvertError(f"{path}: not a torchvision AlexNet state_dict with 1000 classes: " + "; ".join(problems))
    return out


def write_safetensors(path, tensors, metadata):
    """Writes [(name, float32 contiguous CPU tensor)] and string metadata as safetensors."""
    if sys.byteorder != "little":
        raise ConvertError("big-endian hosts are not supported (safetensors data is little-endian)")
    header = {"__metadata__": metadata}
    offset = 0
    for name, t in tensors:
        n = t.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)  # as the Rust implementation: data starts 8-aligned
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for _, t in tensors:
                f.write(ctypes.string_at(t.data_ptr(), t.numel() * 4))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ConvertError(f"{path}: cannot write: {e.strerror or e}") from None
    return 8 + len(hj) + offset


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a torchvision AlexNet checkpoint (.pth state_dict, e.g. alexnet-owt-7be5be79.pth) "
        "into a safetensors file with the same tensor names, float32, and metadata "
        '{"model": "alexnet-owt", "source": <input file name>}.',
        epilog="example: %(prog)s alexnet-owt-7be5be79.pth alexnet-owt.safetensors")
    ap.add_argument("input", help="torchvision AlexNet state_dict (.pth), 1000 classes")
    ap.add_argument("output", nargs="?",
                    help="safetensors file to write (default: INPUT with its extension replaced by .safetensors)")
    args = ap.parse_args(argv)
    out = args.output or os.path.splitext(args.input)[0] + ".safetensors"
    try:
        if importlib.util.find_spec("torch") is None:
            raise ConvertError("this tool needs PyTorch (pip install torch)")
        sd = load_state_dict(args.input)
        tensors = check_tensors(args.input, sd)
        size = write_safetensors(out, tensors, {"model": "alexnet-owt", "source": os.path.basename(args.input)})
    except ConvertError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    params = sum(t.numel() for _, t in tensors)
    print(f"wrote {out}: {len(tensors)} tensors, {params:,} parameters, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
