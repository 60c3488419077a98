#!/usr/bin/env python3
"""Record Pillow's own uint8 resize output for tests/test_resize.c.

What it is for
--------------
src/data/image.c claims to reproduce, byte for byte, what torchvision's PIL
path computes with Pillow 13:

    Image.resize((ow, oh), Image.BILINEAR, reducing_gap=None)
        (antialiased triangle filter, two separable passes with the
         intermediate rounded to uint8; a pass whose size does not change is
         skipped)
    torchvision Resize(r) + CenterCrop(s) on a PIL image
        (shorter side to r, the longer int(r * long / short); crop offset
         int(round((size - s) / 2.0)); zero padding when s is larger)

The pass order is where Pillow versions differ: Pillow 13 (PR #9549) runs the
vertical pass first when h - oh > 0 and h - oh > 2 (w - ow) (an image reduced
much more in height than in width), Pillow 12 and earlier always run the
horizontal pass first. The rounded intermediate makes the two orders differ
by one in some values, so the tall cases below have different bytes in Pillow
9.4 .. 12. This script checks on every case that Pillow's single call equals
its two single-axis resizes in the order that condition predicts, and checks
the condition itself on 1500 random shapes.

It makes small synthetic images (seeded noise plus gradients, hard edges,
flat black and white blocks; RGB and grayscale), runs exactly those Pillow
calls on them and stores the inputs AND Pillow's outputs in
tests/vectors/resize_pillow.safetensors, so the C test compares against bytes
Pillow produced and needs no JPEG decoder for them. It also stores Pillow's
decode of one demo photo (butterfly.jpg) and Pillow's resizes of those decoded
pixels: the C test resizes the same stored pixels (exact), and separately
compares its own libjpeg-turbo decode of the file with Pillow's.

Cases (h: horizontal pass first, v: vertical first, -: one pass or none):
  wide_rgb         97x61x3   -> 40x25    h  downscale 2.4x
  tall_rgb         45x160x3  -> 36x40    v  height reduced 4x, width 1.25x
  tall_gray        40x300x1  -> 30x45    v  grayscale, 6.7x in height
  tall_upwidth_rgb 20x120x3  -> 45x50    v  width up, height down
  tall_aspect_rgb  60x150x3  -> 24x60    v  shorter side to 24, aspect kept
  upscale_rgb      23x17x3   -> 64x47    h
  upscale_gray     28x28x1   -> 227x227  h  Fashion-MNIST into the paper's AlexNet
  down9x_gray      180x135x1 -> 20x15    h  9x
  down7x_rgb       119x84x3  -> 17x12    h  7x
  odd_mixed_rgb    37x23x3   -> 19x41    h  width down, height up
  one_col_rgb      1x50x3    -> 1x13     -  1 pixel wide, vertical pass only
  one_col_to3_gray 1x50x1    -> 3x20     v  1 pixel wide, both passes
  one_row_rgb      50x1x3    -> 13x1     -  1 pixel high, horizontal pass only
  one_px_rgb       1x1x3     -> 5x3      h
  width_same_rgb   40x64x3   -> 40x23    -  vertical pass only
  height_same_gray 64x40x1   -> 23x40    -  horizontal pass only
  noop_rgb         17x13x3   -> 17x13    -  no resize (a copy)
  edge_even_rgb    30x60x3   -> 20x40    h  h - oh = 2 (w - ow): the last shape of h first
  edge_tall_rgb    30x61x3   -> 20x40    v  one more row: the first of v first
Resize + centre crop (torchvision Resize(r), CenterCrop(s)), RGB:
  crop_wide_rgb    96x72   r 48 s 40     h
  crop_tall_rgb    60x150  r 40 s 36     v  (resized to 40x100)
  crop_up_odd_rgb  48x40   r 64 s 59     h  upscale to 76x64; both offsets are ties (8.5,
                                            2.5) that round half to even, down
  crop_pad_rgb     100x40  r 32 s 48     h  crop taller than the image: zero rows
Photo (Pillow's decode of <shared data>/demo-images/butterfly.jpg, 493x356):
  photo.classify   r 256 s 224           h  what `alexnet classify` feeds alexnet-owt
  photo.small      to 88x64              h  5.6x down
  photo.strip      columns 200..299 (a 100x356 strip), r 64 s 56   v

Stored tensors (U8 are (height, width, channels), row-major, interleaved):
  <case>.src  U8        the input pixels
  <case>.out  U8        Pillow's result
  <case>.args I32 [2]   resize, crop (the crop cases only)
  photo.src U8 (356, 493, 3), photo.classify U8, photo.classify_args I32 [2],
  photo.small U8, photo.strip U8, photo.strip_args I32 [4] = x0, w, resize, crop
Metadata (strings): pillow_version, numpy_version, libjpeg_turbo_version (the
  one Pillow decoded with), generator, call, cases, crop_cases, photo,
  photo_bytes, pass_order ("case:h|v:N" for every two-pass case: the order
  Pillow took and how many stored bytes the other order would change, so
  N > 0 means a resize taking the wrong order fails the C test; for the v
  cases it is what Pillow 12 and earlier give differently) and
  pass_order_checked.

How to rerun it
---------------
Pillow 13 is not in Debian 12 (python3-pil is 9.4.0, whose horizontal-first
order this script refuses); from PyPI, in a throwaway virtual environment:

    python3 -m venv /tmp/pillow13
    /tmp/pillow13/bin/pip install pillow==13.0.0 numpy
    cd <repo root> && /tmp/pillow13/bin/python tools/make_resize_reference.py

It reads ../shared/data/demo-images/butterfly.jpg (relative to the repo root),
is deterministic (numpy's legacy RandomState stream: numpy 1.24 and 2.4 give
the same images) and rewrites tests/vectors/resize_pillow.safetensors in about
a second. With Pillow 13.0.0 (libjpeg-turbo 3.2.0) the file is byte-identical
from run to run; Pillow 9.4.0 (libjpeg-turbo 2.1.5) decodes the photo to the
same bytes and differs only in the v cases.
"""
import os
import sys

import numpy as np
import PIL
from PIL import Image, features
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_write import write_safetensors  # noqa: E402  (tools/safetensors_write.py)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO_DIR = os.path.join(ROOT, "..", "shared", "data", "demo-images")
PHOTO = "butterfly.jpg"
OUT = os.path.join(ROOT, "tests", "vectors", "resize_pillow.safetensors")
BILINEAR = getattr(Image, "Resampling", Image).BILINEAR

# name, w, h, channels, ow, oh
RESIZE_CASES = [
    ("wide_rgb", 97, 61, 3, 40, 25),
    ("tall_rgb", 45, 160, 3, 36, 40),
    ("tall_gray", 40, 300, 1, 30, 45),
    ("tall_upwidth_rgb", 20, 120, 3, 45, 50),
    ("tall_aspect_rgb", 60, 150, 3, 24, 60),
    ("upscale_rgb", 23, 17, 3, 64, 47),
    ("upscale_gray", 28, 28, 1, 227, 227),
    ("down9x_gray", 180, 135, 1, 20, 15),
    ("down7x_rgb", 119, 84, 3, 17, 12),
    ("odd_mixed_rgb", 37, 23, 3, 19, 41),
    ("one_col_rgb", 1, 50, 3, 1, 13),
    ("one_col_to3_gray", 1, 50, 1, 3, 20),
    ("one_row_rgb", 50, 1, 3, 13, 1),
    ("one_px_rgb", 1, 1, 3, 5, 3),
    ("width_same_rgb", 40, 64, 3, 40, 23),
    ("height_same_gray", 64, 40, 1, 23, 40),
    ("noop_rgb", 17, 13, 3, 17, 13),
    ("edge_even_rgb", 30, 60, 3, 20, 40),
    ("edge_tall_rgb", 30, 61, 3, 20, 40),
]
# name, w, h, resize, crop (RGB)
CROP_CASES = [
    ("crop_wide_rgb", 96, 72, 48, 40),
    ("crop_tall_rgb", 60, 150, 40, 36),
    ("crop_up_odd_rgb", 48, 40, 64, 59),
    ("crop_pad_rgb", 100, 40, 32, 48),
]
PHOTO_CLASSIFY = (256, 224)
PHOTO_SMALL = (88, 64)
PHOTO_STRIP = (200, 100, 64, 56)  # x0, width, resize, crop


def synthetic(w, h, c, seed):
    """Gradients, a checkerboard of hard edges, flat 0 and 255 blocks, Gaussian noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for ch in range(c):
        gx, gy = [(0.6, 0.3), (-0.4, 0.5), (0.2, -0.6)][ch]
        p = 128 + 120 * (gx * (2 * x / max(w - 1, 1) - 1) + gy * (2 * y / max(h - 1, 1) - 1))
        cell = 3 + (seed + ch) % 5
        p += np.where(((x // cell + y // (cell + 1)) % 2) == 1, 60.0, -60.0)
        p += rng.normal(0.0, 30.0, size=(h, w))
        planes.append(p)
    img = np.stack(planes, axis=-1)
    img[(x >= w * 0.7) & (y < h * 0.2)] = 255.0  # flat white block (edges against the rest)
    img[(x < w * 0.2) & (y >= h * 0.8)] = 0.0  # flat black block
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def to_pil(arr):
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")


def to_arr(im):
    a = np.asarray(im, dtype=np.uint8)
    return a.reshape(a.shape[0], a.shape[1], -1).copy()


def pil_resize(arr, ow, oh):
    return to_arr(to_pil(arr).resize((ow, oh), BILINEAR, reducing_gap=None))


def resize_center_crop(arr, resize, crop):
    """torchvision Resize(resize) + CenterCrop(crop) on a PIL image, written out with Pillow calls."""
    h, w = arr.shape[:2]
    short, long_ = (w, h) if w <= h else (h, w)
    new_long = int(resize * long_ / short)
    nw, nh = (resize, new_long) if w <= h else (new_long, resize)
    im = to_pil(arr).resize((nw, nh), BILINEAR, reducing_gap=None)
    if crop > nw or crop > nh:  # CenterCrop pads with zeros first, (crop - size) // 2 before
        pw, ph = max(crop, nw), max(crop, nh)
        padded = Image.new(im.mode, (pw, ph), 0)
        padded.paste(im, ((crop - nw) // 2 if crop > nw else 0, (crop - nh) // 2 if crop > nh else 0))
        im, nw, nh = padded, pw, ph
    top, left = int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0))
    return to_arr(im.crop((left, top, left + crop, top + crop)))


def vertical_first(w, h, ow, oh):
    """Pillow 13's pass order (src/data/image.c's vertical_first): vertical pass first when the
    height loses more than twice as many pixels as the width."""
    return h - oh > 0 and h - oh > 2 * (w - ow)


def other_order_differs(arr, ow, oh, crop=None):
    """Checks that Pillow's single call equals its two single-axis resizes in the order
    vertical_first() predicts (Pillow skips a pass whose size does not change, so a one-axis
    resize is exactly one pass), and returns how many output bytes (inside the centre crop when
    one is given) the other order would change: for a tall case, what Pillow 12 and earlier
    (always horizontal first) give differently. None when there is only one pass."""
    h, w = arr.shape[:2]
    if ow == w or oh == h:
        return None
    single = pil_resize(arr, ow, oh)
    hv = pil_resize(pil_resize(arr, ow, h), ow, oh)
    vh = pil_resize(pil_resize(arr, w, oh), ow, oh)
    mine, other = (vh, hv) if vertical_first(w, h, ow, oh) else (hv, vh)
    assert np.array_equal(single, mine), "Pillow %s does not take the predicted pass order" % PIL.__version__
    if crop is not None:
        assert crop <= ow and crop <= oh
        top, left = int(round((oh - crop) / 2.0)), int(round((ow - crop) / 2.0))
        single, other = single[top:top + crop, left:left + crop], other[top:top + crop, left:left + crop]
    return int(np.count_nonzero(other != single))


def check_order_condition(n):
    """vertical_first() against this Pillow on n random shapes; returns how many told the two
    orders apart (the rest give the same bytes either way)."""
    rng = np.random.RandomState(2026)
    decided = 0
    for _ in range(n):
        w, h, ow, oh = (int(v) for v in rng.randint(2, 48, size=4))
        if ow == w or oh == h:
            continue
        a = rng.randint(0, 256, size=(h, w, 1)).astype(np.uint8)
        single = pil_resize(a, ow, oh)
        hv = np.array_equal(single, pil_resize(pil_resize(a, ow, h), ow, oh))
        vh = np.array_equal(single, pil_resize(pil_resize(a, w, oh), ow, oh))
        assert hv or vh, (w, h, ow, oh)
        if hv != vh:
            assert vh == vertical_first(w, h, ow, oh), \
                "Pillow %s: %dx%d -> %dx%d runs %s first" % (PIL.__version__, w, h, ow, oh, "vertical" if vh else "horizontal")
            decided += 1
    return decided

def main():
    if int(PIL.__version__.split(".")[0]) < 13:
        sys.exit("Pillow %s runs the horizontal pass first for every shape; src/data/image.c follows "
                 "Pillow 13 (vertical first for tall reductions): run this under Pillow 13, see the "
                 "top of this file" % PIL.__version__)
    tensors, orders = [], []

    def note(name, w, h, nw, nh, d):
        vf = vertical_first(w, h, nw, nh)
        # the tall two-pass cases are there for the vertical-first order, the others (1-pixel
        # sources aside) for horizontal first
        assert d is None or name.startswith("one_") or vf == ("tall" in name or name == "photo.strip"), name
        if d is not None:
            orders.append("%s:%s:%d" % (name, "v" if vf else "h", d))
        return "" if d is None else "  (%s first; the other order changes %d bytes)" % ("vertical" if vf else "horizontal", d)

    for seed, (name, w, h, c, ow, oh) in enumerate(RESIZE_CASES, start=1):
        src = synthetic(w, h, c, seed)
        out = pil_resize(src, ow, oh)
        assert out.shape == (oh, ow, c)
        tensors += [(name + ".src", src), (name + ".out", out)]
        print("%-18s %4dx%-4d x%d -> %4dx%-4d" % (name, w, h, c, ow, oh)
              + note(name, w, h, ow, oh, other_order_differs(src, ow, oh)))
    for seed, (name, w, h, resize, crop) in enumerate(CROP_CASES, start=100):
        src = synthetic(w, h, 3, seed)
        tensors += [(name + ".src", src), (name + ".out", resize_center_crop(src, resize, crop)),
                    (name + ".args", np.array([resize, crop], dtype="<i4"))]
        nw = resize if w <= h else int(resize * w / h)
        nh = resize if w > h else int(resize * h / w)
        d = other_order_differs(src, nw, nh, crop if crop <= min(nw, nh) else None)
        print("%-18s %4dx%-4d resize %d crop %d" % (name, w, h, resize, crop) + note(name, w, h, nw, nh, d))

    photo_path = os.path.join(PHOTO_DIR, PHOTO)
    with Image.open(photo_path) as im:
        decoded = to_arr(im.convert("RGB"))
    h, w = decoded.shape[:2]
    x0, sw, sr, sc = PHOTO_STRIP
    strip = np.ascontiguousarray(decoded[:, x0:x0 + sw])
    cr, cc = PHOTO_CLASSIFY
    tensors += [
        ("photo.src", decoded),
        ("photo.classify", resize_center_crop(decoded, cr, cc)),
        ("photo.classify_args", np.array(PHOTO_CLASSIFY, dtype="<i4")),
        ("photo.small", pil_resize(decoded, *PHOTO_SMALL)),
        ("photo.strip", resize_center_crop(strip, sr, sc)),
        ("photo.strip_args", np.array(PHOTO_STRIP, dtype="<i4")),
    ]
    print("%-18s %4dx%-4d decoded by Pillow" % (PHOTO, w, h))
    print("%-18s resize %d crop %d" % ("photo.classify", cr, cc)
          + note("photo.classify", w, h, int(cr * w / h), cr, other_order_differs(decoded, int(cr * w / h), cr, cc)))
    print("%-18s -> %dx%d" % ("photo.small", *PHOTO_SMALL)
          + note("photo.small", w, h, *PHOTO_SMALL, other_order_differs(decoded, *PHOTO_SMALL)))
    snh = int(sr * h / sw)
    print("%-18s columns %d..%d, resize %d crop %d" % ("photo.strip", x0, x0 + sw - 1, sr, sc)
          + note("photo.strip", sw, h, sr, snh, other_order_differs(strip, sr, snh, sc)))
    # every two-pass case tells the orders apart, except those from a single column or pixel
    # (upscaling it horizontally only repeats it)
    assert all(not o.endswith(":0") for o in orders if not o.startswith("one_")), orders
    decided = check_order_condition(1500)
    print("pass order: vertical first iff h - oh > 0 and h - oh > 2 (w - ow), as in Pillow %s "
          "on %d random shapes that tell the orders apart" % (PIL.__version__, decided))

    metadata = {
        "pillow_version": PIL.__version__,
        "numpy_version": np.__version__,
        "libjpeg_turbo_version": str(features.version_feature("libjpeg_turbo")),
        "generator": "python3 -m venv /tmp/pillow13 && /tmp/pillow13/bin/pip install pillow==%s numpy && "
                     "/tmp/pillow13/bin/python tools/make_resize_reference.py" % PIL.__version__,
        "call": "Image.resize((ow, oh), Image.BILINEAR, reducing_gap=None); crops: torchvision "
                "Resize(r) + CenterCrop(s) written out with Image.resize, Image.new + paste, Image.crop",
        "cases": ",".join(c[0] for c in RESIZE_CASES),
        "crop_cases": ",".join(c[0] for c in CROP_CASES),
        "photo": PHOTO,
        "photo_bytes": str(os.path.getsize(photo_path)),
        "pass_order": ",".join(orders),
        "pass_order_checked": "vertical first iff h - oh > 0 and h - oh > 2 (w - ow): %d random shapes" % decided,
    }
    write_safetensors(OUT, tensors, metadata)
    print("wrote %s (%d bytes), Pillow %s" % (os.path.relpath(OUT, ROOT), os.path.getsize(OUT), PIL.__version__))


if __name__ == "__main__":
    sys.exit(main())
