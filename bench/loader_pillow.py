#!/usr/bin/python3
"""loader_pillow.py: the baseline for `alexnet bench --loader`: the same decode + augmentation work
done with Pillow + torchvision transforms, in one process and one thread.

    /usr/bin/python3 bench/loader_pillow.py [DATA] [N]

DATA is an image folder (DATA/train/<class>/<file>, default ../shared/data/imagenette); the first N
images of its training split (default all) are taken in the order `alexnet` uses: classes sorted by
name (byte order), files ending in .jpg/.jpeg/.png (any case) sorted by name within each class.
Each image goes through

    PIL.Image.open(f).convert('RGB')
    Resize(256) -> CenterCrop(256)              the paper's 256x256 base image
    RandomCrop(224) -> RandomHorizontalFlip()   the random training view
    ToTensor()                                  float (3, 224, 224) in 0..1
    Lighting(0.1)                               PCA colour lighting, as fb.resnet.torch: alpha ~ N(0, 0.1),
                                                add eigvec @ (alpha * eigval) to each channel
    subtract the mean                           a per-channel mean (ImageNet's), where `alexnet`
                                                subtracts a (3, 256, 256) mean image at the window

A warm-up pass over the first 256 images runs first; then the whole pass is timed. Prints
images/s and, last, `images/s: X`. Needs torch and torchvision (Debian: python3-torchvision,
python3-pil)."""
import os
import sys
import time

import torch
from PIL import Image
from torchvision import transforms

EXTENSIONS = (".jpg", ".jpeg", ".png")
# ImageNet RGB eigenpairs on 0..1 pixels (fb.resnet.torch); the columns of EIGVEC are eigenvectors.
EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                       [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])
MEAN = torch.tensor([0.485, 0.456, 0.406])


class Lighting:
    """AlexNet-style PCA lighting noise (fb.resnet.torch's Lighting): one alpha per image."""

    def __init__(self, alphastd, eigval, eigvec):
        self.alphastd, self.eigval, self.eigvec = alphastd, eigval, eigvec

    def __call__(self, img):
        if self.alphastd == 0:
            return img
        alpha = torch.empty(3).normal_(0, self.alphastd)
        rgb = self.eigvec @ (alpha * self.eigval)
        return img.add_(rgb.view(3, 1, 1))


class SubtractMean:
    def __init__(self, mean):
        self.mean = mean.view(3, 1, 1)

    def __call__(self, img):
        return img.sub_(self.mean)


def train_files(data, limit):
    """The first `limit` files of DATA/train in alexnet's order (see src/data/folder.c)."""
    root = os.path.join(data, "train")
    files = []
    for cls in sorted(os.listdir(root)):
        d = os.path.join(root, cls)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(d, name)):
                files.append(os.path.join(d, name))
                if limit and len(files) >= limit:
                    return files
    return files


def run(files, transform):
    n = 0
    for f in files:
        with open(f, "rb") as fp:
            img = Image.open(fp).convert("RGB")
        x = transform(img)
        n += 1
    return n


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/imagenette"
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    torch.set_num_threads(1)
    torch.manual_seed(1)
    transform = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(256),
        transforms.RandomCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        Lighting(0.1, EIGVAL, EIGVEC),
        SubtractMean(MEAN),
    ])
    files = train_files(data, limit)
    if not files:
        sys.exit(f"loader_pillow.py: {data}/train: no images")
    import PIL
    import torchvision
    print(f"pillow: {data} (image folder, train split), {len(files)} images, Pillow {PIL.__version__}, "
          f"torch {torch.__version__}, torchvision {torchvision.__version__}, 1 process, "
          f"{torch.get_num_threads()} torch thread")
    sys.stdout.flush()
    run(files[:256], transform)  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    n = run(files, transform)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = n / secs
    print(f"pillow: {n} images in {secs:.3f} s: {rate:.1f} images/s "
          f"(cpu {cpu:.3f} s: {n / cpu:.1f} images per cpu-second)")
    print(f"images/s: {rate:.1f}")


if __name__ == "__main__":
    main()
