#!/usr/bin/python3
"""Writes Fashion-MNIST (the reskit CLI's default data, Debian's dataset-fashion-mnist IDX files)
as PNG folders that `reskit train --data` streams (issue 15, item 6a).

  bench/fmnist_to_png.py OUT [--train 60000] [--test 10000] [--idx /usr/share/datasets/fashion-mnist]

Writes OUT/train and OUT/test, each with one sub-folder per class named "<label>_<name>" (so that
the sorted folder names give Fashion-MNIST's label order), holding the first --train (--test)
samples of that split as 28x28 grayscale PNGs: the same pictures and labels that
`reskit train --limit N` reads in memory.
Needs Debian's python3-numpy and python3-pil (scripts/setup.sh --bench).
"""
import argparse
import gzip
import os

import numpy as np
from PIL import Image

NAMES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
         "ankle_boot"]


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_split(idx_dir, prefix, out, count):
    images = read_idx(os.path.join(idx_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(idx_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    count = min(count, len(images))
    for k, name in enumerate(NAMES):
        os.makedirs(os.path.join(out, f"{k}_{name}"), exist_ok=True)
    for i in range(count):
        k = int(labels[i])
        Image.fromarray(images[i], mode="L").save(os.path.join(out, f"{k}_{NAMES[k]}", f"{i:05d}.png"))
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--idx", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    n = write_split(args.idx, "train", os.path.join(args.out, "train"), args.train)
    m = write_split(args.idx, "t10k", os.path.join(args.out, "test"), args.test)
    print(f"wrote {n} training and {m} test PNGs to {args.out}/train and {args.out}/test")


if __name__ == "__main__":
    main()
