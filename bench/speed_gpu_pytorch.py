#!/usr/bin/env python3
"""speed_gpu_pytorch.py: the PyTorch peer of `alexnet bench --device cuda`: images/s of one
training step (forward, cross-entropy, backward, SGD with momentum and weight decay) or of
inference on a GPU, synthetic data already on the card, after warm-up steps, each step waited for
(torch.cuda.synchronize). The last line is `images/s: X`, as the C benchmark's.

Models as PyTorch users write them: `alexnet` is the paper's network (groups, nn.LocalResponseNorm,
overlapping pooling, 227x227), `alexnet-owt` torchvision's AlexNet (224x224).
Precisions: fp32 (TF32 off), tf32 (TF32 on for matmul and cuDNN), bf16 (torch.autocast on
bfloat16, float32 master weights). --channels-last: the model and input in NHWC.

    python3 bench/speed_gpu_pytorch.py --model alexnet --mode train --batch 128 --precision bf16
"""
import argparse
import time
from collections import OrderedDict

import torch
import torch.nn as nn


def paper_alexnet(classes):
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, 11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
        ("norm1", nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)), ("pool1", nn.MaxPool2d(3, 2)),
        ("conv2", nn.Conv2d(96, 256, 5, padding=2, groups=2)), ("relu2", nn.ReLU(inplace=True)),
        ("norm2", nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)), ("pool2", nn.MaxPool2d(3, 2)),
        ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
        ("conv4", nn.Conv2d(384, 384, 3, padding=1, groups=2)), ("relu4", nn.ReLU(inplace=True)),
        ("conv5", nn.Conv2d(384, 256, 3, padding=1, groups=2)), ("relu5", nn.ReLU(inplace=True)),
        ("pool5", nn.MaxPool2d(3, 2)), ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(0.5)),
        ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(0.5)),
        ("fc8", nn.Linear(4096, classes)),
    ]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["alexnet", "alexnet-owt"], required=True)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    dev = torch.device("cuda")
    tf32 = args.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    if args.model == "alexnet":
        model, size = paper_alexnet(1000), 227
    else:
        import torchvision
        model, size = torchvision.models.alexnet(weights=None, num_classes=1000), 224
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(dev, memory_format=fmt)
    x = (torch.randn(args.batch, 3, size, size, device=dev) * 50.0).to(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    train = args.mode == "train"
    model.train(train)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9, weight_decay=5e-4)
    lossf = nn.CrossEntropyLoss()
    bf16 = args.precision == "bf16"

    def step():
        if not train:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                return model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = lossf(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"pytorch {torch.__version__} on {torch.cuda.get_device_name()}: {args.model}, {args.mode}, batch "
          f"{args.batch}, {args.precision}{', channels-last' if args.channels_last else ''}", flush=True)
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)  # the mean, as alexnet bench reports
    print(f"pytorch: {args.steps} timed steps after {args.warmup} warm-up: {dt * 1e3:.2f} ms per step")
    print(f"images/s: {args.batch / dt:.1f}")


if __name__ == "__main__":
    main()
