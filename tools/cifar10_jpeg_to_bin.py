#!/usr/bin/env python3
"""cifar10_jpeg_to_bin.py: CIFAR-10 as JPEG folders -> the official binary layout.

../shared/data/cifar10/cifar10-jpg.tar.gz unpacks to cifar10/{train,val}/<class>/NNNN.jpg with the
classes in the official label order (airplane automobile bird cat deer dog frog horse ship truck).
`alexnet train --data DIR` reads CIFAR-10 in its binary layout (data_batch_1..5.bin, test_batch.bin:
each record one label byte, then 1024 R, 1024 G, 1024 B bytes, rows top to bottom), held in memory
as the paper's small-image experiments need; this writes that layout from the JPEG folders. The
training records are shuffled with a fixed seed (the official files are not sorted by class
either), 10,000 per batch file; the test records stay in folder order.

    /usr/bin/python3 tools/cifar10_jpeg_to_bin.py EXTRACTED/cifar10 OUT_DIR

Needs Pillow (Debian python3-pil) and numpy (python3-numpy). The JPEGs are lossy (quality 75, 4:2:0
chroma, see the README beside the archive), so pixels differ slightly from the official release.
"""
import os
import random
import sys

import numpy as np
from PIL import Image

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def records(root, split):
    out = []
    for label, name in enumerate(CLASSES):
        folder = os.path.join(root, split, name)
        for f in sorted(os.listdir(folder)):
            img = np.asarray(Image.open(os.path.join(folder, f)).convert("RGB"), dtype=np.uint8)
            if img.shape != (32, 32, 3):
                raise SystemExit(f"{folder}/{f}: {img.shape}, not 32x32 RGB")
            out.append(bytes([label]) + img.transpose(2, 0, 1).tobytes())
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    root, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    train = records(root, "train")
    random.Random(2009).shuffle(train)
    if len(train) != 50000:
        raise SystemExit(f"{root}/train: {len(train)} images, not 50,000")
    for b in range(5):
        with open(os.path.join(out, f"data_batch_{b + 1}.bin"), "wb") as f:
            f.write(b"".join(train[b * 10000:(b + 1) * 10000]))
    test = records(root, "val")
    with open(os.path.join(out, "test_batch.bin"), "wb") as f:
        f.write(b"".join(test))
    with open(os.path.join(out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    print(f"{out}: 50,000 training and {len(test)} test records")


if __name__ == "__main__":
    main()
