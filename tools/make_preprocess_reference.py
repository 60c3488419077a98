#!/usr/bin/env python3
"""Generate torchvision reference vectors for the C image preprocessing.

What it is for
--------------
`alexnet classify --model alexnet-owt` must feed the network the same tensor
that torchvision's standard ImageNet evaluation preprocessing produces:

    PIL.Image.open(path).convert('RGB')
    -> transforms.Resize(256)            (shorter side to 256, PIL BILINEAR, antialiased)
    -> transforms.CenterCrop(224)
    -> transforms.ToTensor()             (uint8 HWC -> float CHW in [0, 1])
    -> transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

This script runs exactly that on a few demo photos and stores compact
summaries of each (3, 224, 224) float32 result in
tests/vectors/preprocess.safetensors, which tests/test_preprocess.c compares
against the C pipeline (image_load -> image_resize_center_crop(img, 256, 224)
-> normalize_image with norm_imagenet(3)).  Only summaries are stored, not the
full tensors, so the file stays small (about 42 KB).

Stored tensors, for image i = 0, 1, ... in the order of metadata "files":
  img<i>.mean     F64 [3]          per-channel mean of the normalised tensor
  img<i>.std      F64 [3]          per-channel population std (ddof = 0)
  img<i>.samples  F32 [256]        tensor.flatten()[j * 588 + 13] for j = 0..255
                                   (flat row-major index into (3, 224, 224);
                                   the largest index is 149953 < 150528)
  img<i>.thumb    F32 [3, 28, 28]  the tensor average-pooled over 8x8 blocks
                                   (torch.nn.functional.avg_pool2d(t, 8))
Metadata (all strings):
  files            comma-separated file names, relative to <shared data>/demo-images/
  sizes            comma-separated original WxH of each file
  sample_index     "j*588+13, j<256"
  torchvision, PIL, torch   library versions that produced the file
  pipeline         the transform chain above, in words

The file is written by hand (8-byte little-endian header length, JSON header
padded with spaces to a multiple of 8, raw little-endian tensor bytes), so the
safetensors package is not needed.

How to rerun it
---------------
    apt-get install -y python3-torchvision python3-pil     # Debian packages
    cd <repo root> && /usr/bin/python3 tools/make_preprocess_reference.py

It reads ../shared/data/demo-images/ (relative to the repo root) and rewrites
tests/vectors/preprocess.safetensors in well under a second.
"""
import os
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_write import write_safetensors  # noqa: E402  (tools/safetensors_write.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE_DIR = os.path.join(ROOT, "..", "shared", "data", "demo-images")
OUT = os.path.join(ROOT, "tests", "vectors", "preprocess.safetensors")

# Square PNG, square JPEGs, non-square (451x300) PNG.
FILES = ["astronaut.png", "baboon.jpg", "orange.jpg", "chelsea.png"]

N_SAMPLES, SAMPLE_STRIDE, SAMPLE_OFFSET = 256, 588, 13
POOL = 8

PIPELINE = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
])


def preprocess(path):
    with open(path, "rb") as fh:
        img = Image.open(fh)
        size = img.size
        rgb = img.convert("RGB")
    t = PIPELINE(rgb)
    assert t.shape == (3, 224, 224) and t.dtype == torch.float32
    return t, size

def main():
    idx = np.arange(N_SAMPLES) * SAMPLE_STRIDE + SAMPLE_OFFSET
    assert idx[-1] < 3 * 224 * 224
    tensors, sizes = [], []
    for i, name in enumerate(FILES):
        t, size = preprocess(os.path.join(IMAGE_DIR, name))
        sizes.append("%dx%d" % size)
        a = t.numpy().astype(np.float64).reshape(3, -1)
        thumb = torch.nn.functional.avg_pool2d(t.unsqueeze(0), POOL).squeeze(0)
        tensors += [
            ("img%d.mean" % i, a.mean(axis=1).astype("<f8")),
            ("img%d.std" % i, a.std(axis=1).astype("<f8")),
            ("img%d.samples" % i, t.numpy().reshape(-1)[idx].astype("<f4")),
            ("img%d.thumb" % i, thumb.numpy().astype("<f4")),
        ]
        print("%-14s %-8s mean %s std %s" % (name, sizes[-1], np.round(a.mean(axis=1), 4),
                                            np.round(a.std(axis=1), 4)))
    metadata = {
        "files": ",".join(FILES),
        "sizes": ",".join(sizes),
        "sample_index": "j*%d+%d, j<%d" % (SAMPLE_STRIDE, SAMPLE_OFFSET, N_SAMPLES),
        "torchvision": torchvision.__version__,
        "PIL": PIL.__version__,
        "torch": torch.__version__,
        "pipeline": "PIL open .convert('RGB') -> Resize(256) -> CenterCrop(224) -> ToTensor -> "
                    "Normalize((0.485,0.456,0.406),(0.229,0.224,0.225))",
    }
    write_safetensors(OUT, tensors, metadata)
    print("wrote %s (%d bytes)" % (os.path.relpath(OUT, ROOT), os.path.getsize(OUT)))


if __name__ == "__main__":
    sys.exit(main())
