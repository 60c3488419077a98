#!/usr/bin/env python3
"""speed_pytorch.py: the PyTorch peer of `alexnet bench --model`: images/s of one training step
(forward, cross-entropy, backward, SGD with momentum and weight decay) or of inference, on
synthetic data, after warm-up steps, on the CPU with a given number of threads. The last line is
`images/s: X`, as the C benchmark's, so bench/speed.sh can put them side by side.

Variants: --layout nchw|cl (cl: the model and the input in torch.channels_last memory format) and
--dtype fp32|bf16 (bf16: torch.autocast("cpu", dtype=torch.bfloat16) around the forward pass and
the loss; the weights, gradients and the SGD update stay float32). --info prints one line with the
versions of torch, torchvision, MKL and oneDNN instead of timing anything.

Models: `alexnet-owt` is torchvision's AlexNet as users run it; `alexnet-owt-fcconv` the same with
its Linear layers computed as convolutions (the same dot products: Debian's torch links a generic
BLAS, so nn.Linear is much slower than oneDNN's convolutions; see FC in train_pytorch.py);
`alexnet` is the paper's network (groups, LRN with a hand-written backward) from train_pytorch.py.

    runs/pytorch-venv/bin/python bench/speed_pytorch.py --model alexnet-owt --mode train --batch 128 \
        --threads 2 --layout cl --dtype bf16
Works with Debian's torch 1.13 (/usr/bin/python3) as well as with the pip wheels of
bench/pytorch_venv.sh.
"""
import argparse
import os
import re
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_pytorch import FC, alexnet  # noqa: E402


def owt(fcconv):
    import torchvision
    m = torchvision.models.alexnet(weights=None, num_classes=1000)
    if fcconv:  # classifier: Dropout, Linear(9216, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Linear
        for idx, view in ((1, (256, 6, 6)), (4, (64, 8, 8)), (6, (64, 8, 8))):
            lin = m.classifier[idx]
            fc = FC(lin.in_features, lin.out_features, view)
            with torch.no_grad():
                fc.weight.copy_(lin.weight)
                fc.bias.copy_(lin.bias)
            m.classifier[idx] = fc
    return m


def info():
    """One line: torch and torchvision versions, MKL and oneDNN versions (from
    torch.__config__.show()) and whether torch can use them."""
    cfg = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([0-9][0-9.]*)", cfg)
    blas = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    dnn = re.search(r"(?:MKL-DNN|oneDNN)[^\n]*?v([0-9][0-9.]*)", cfg)
    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:
        tv = "missing"
    print(f"torch {torch.__version__}, torchvision {tv}, "
          f"MKL {mkl.group(1) if mkl else 'none'} (available {torch.backends.mkl.is_available()}"
          f"{', BLAS ' + blas.group(1) if blas else ''}), "
          f"oneDNN {dnn.group(1) if dnn else 'none'} (mkldnn available {torch.backends.mkldnn.is_available()})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--info", action="store_true", help="print the torch, MKL and oneDNN versions and exit")
    ap.add_argument("--model", choices=["alexnet", "alexnet-owt", "alexnet-owt-fcconv"])
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (default 3)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "cl"], default="nchw",
                    help="cl: model and input in torch.channels_last memory format")
    ap.add_argument("--dtype", "--precision", dest="dtype", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: torch.autocast(cpu, bfloat16) around the forward pass and the loss")
    args = ap.parse_args()
    if args.info:
        info()
        return
    if args.model is None:
        ap.error("--model is required")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    if args.model == "alexnet":
        model, size = alexnet(1000, "caffe"), 227
    else:
        model, size = owt(args.model.endswith("fcconv")), 224
    x = torch.randn(args.batch, 3, size, size) * 50.0
    y = torch.randint(0, 1000, (args.batch,))
    if args.layout == "cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    train = args.mode == "train"
    model.train(train)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9, weight_decay=5e-4)
    lossf = nn.CrossEntropyLoss()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            if not train:
                with torch.inference_mode():
                    return model(x)
            out = model(x)
            loss = lossf(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"pytorch {torch.__version__}: {args.model}, {args.mode}, batch {args.batch}, {args.dtype}, "
          f"{args.layout}, {args.threads} threads", flush=True)
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    print(f"pytorch: {args.steps} timed steps after {args.warmup} warm-up: {dt * 1e3:.1f} ms per step")
    print(f"images/s: {args.batch / dt:.1f}")


if __name__ == "__main__":
    main()
