#!/usr/bin/python3
"""Writes a class subset of Debian's Fashion-MNIST as a SIGNS-style HDF5 file for reskit train.

Usage: fmnist_split.py OUT.h5 FIRST_CLASS LAST_CLASS TRAIN_COUNT TEST_COUNT [DIR]

Keeps the first TRAIN_COUNT training and TEST_COUNT test pictures of classes FIRST..LAST (labels
renumbered from 0, names in list_classes), zero-padded from 28x28 to 32x32 (Keras Applications'
smallest input) and repeated to 3 channels: train_set_x (N, 32, 32, 3) uint8, train_set_y (N,),
test_set_x, test_set_y. bench/finetune_two_stage.sh pretrains on one class range and transfers to
another. Run with Debian's /usr/bin/python3 (numpy, h5py).
"""
import gzip
import sys

import h5py
import numpy as np

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def subset(images, labels, first, last, count):
    keep = np.flatnonzero((labels >= first) & (labels <= last))[:count]
    x = np.pad(images[keep], ((0, 0), (2, 2), (2, 2)))
    return np.repeat(x[..., None], 3, axis=3), (labels[keep] - first).astype(np.int64)


def main():
    out, first, last, n_train, n_test = sys.argv[1], *map(int, sys.argv[2:6])
    folder = sys.argv[6] if len(sys.argv) > 6 else "/usr/share/datasets/fashion-mnist"
    with h5py.File(out, "w") as f:
        for split, prefix, count in (("train", "train", n_train), ("test", "t10k", n_test)):
            x, y = subset(read_idx(f"{folder}/{prefix}-images-idx3-ubyte.gz"),
                          read_idx(f"{folder}/{prefix}-labels-idx1-ubyte.gz"), first, last, count)
            f[f"{split}_set_x"] = x
            f[f"{split}_set_y"] = y
            print(f"{out}: {split} {len(y)} pictures of classes {first}..{last}, per class {np.bincount(y).tolist()}")
        f["list_classes"] = np.array([n.encode() for n in NAMES[first:last + 1]])


if __name__ == "__main__":
    main()
