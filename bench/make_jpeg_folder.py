#!/usr/bin/python3
"""Writes a folder of synthetic photo-like JPEGs for the input-pipeline benchmarks (issue 15).

  bench/make_jpeg_folder.py OUT [--count 2000] [--classes 4] [--size 500x375] [--quality 85] [--seed 0]

One sub-folder per class (class_0, class_1, ...), files img_00000.jpg ... spread over them in turn.
Each picture is a smooth two-colour gradient with a few soft ellipses and rectangles, fine
grain noise and a blur of detail, so that its JPEG is about as large as a photo of that size
(30-60 KB at 500x375, quality 85, 4:2:0), not the few KB of a flat synthetic picture.
Needs Debian's python3-numpy and python3-pil (scripts/setup.sh --bench).
"""
import argparse
import os

import numpy as np
from PIL import Image


def picture(rng, rows, cols):
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * x / cols + np.sin(angle) * y / rows)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = (a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]).astype(np.float32)
    for _ in range(rng.integers(3, 8)):  # soft ellipses
        cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
        ry, rx = rng.uniform(rows / 12, rows / 3), rng.uniform(cols / 12, cols / 3)
        d = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
        w = np.clip(1.5 - d, 0, 1)[..., None].astype(np.float32)
        img = img * (1 - w) + rng.uniform(0, 255, 3).astype(np.float32)[None, None, :] * w
    for _ in range(rng.integers(2, 5)):  # hard-edged rectangles
        r0, c0 = rng.integers(0, rows - 20), rng.integers(0, cols - 20)
        img[r0:r0 + rng.integers(10, rows // 2), c0:c0 + rng.integers(10, cols // 2)] = rng.uniform(0, 255, 3)
    # texture: a sum of a few sinusoids per picture, then grain
    for _ in range(3):
        f = rng.uniform(0.02, 0.3, 2)
        img += rng.uniform(4, 14) * np.sin(f[0] * x + f[1] * y + rng.uniform(0, 6.3))[..., None]
    img += 6 * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--size", default="500x375", help="WIDTHxHEIGHT")
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cols, rows = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(args.seed)
    total = 0
    for i in range(args.count):
        sub = os.path.join(args.out, f"class_{i % args.classes}")
        os.makedirs(sub, exist_ok=True)
        path = os.path.join(sub, f"img_{i:05d}.jpg")
        Image.fromarray(picture(rng, rows, cols)).save(path, quality=args.quality)
        total += os.path.getsize(path)
    print(f"wrote {args.count} JPEGs of {cols}x{rows} in {args.classes} classes to {args.out} "
          f"(mean {total / args.count / 1024:.1f} KB)")


if __name__ == "__main__":
    main()
