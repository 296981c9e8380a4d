#!/usr/bin/env python3
"""The PyTorch peer for the default training job: ResNet-20 on Fashion-MNIST, one epoch's time.

bench/compare_torch.py runs this script beside one epoch of `reskit train` (whose default model is
the CIFAR-style ResNet-20 on Fashion-MNIST) and compares images per second over the epoch, the
60,000 training images plus the 10,000 test images.

The network is He et al. 2016's CIFAR ResNet (section 4.2) with n = 3 blocks per stage: a 3x3
conv to 16 channels, three stages of basic blocks (16, 32, 64 channels; the first block of stages 2
and 3 strides by 2), global average pooling and a linear layer to 10 classes. Shortcuts that change
shape are 1x1 stride-2 projections with BatchNormalization (the paper's option B). Convolutions
have no bias; BatchNormalization keeps PyTorch's defaults.

The data are Debian's dataset-fashion-mnist IDX files; pixels are scaled to [0, 1]. Training runs
Adam (lr 1e-3) over a fresh shuffle each epoch, batches of --batch (the last one partial); the test
set is evaluated in chunks of 500. Each epoch prints:

  epoch 1 train_s=47.9 imgs_per_s=1253 eval_s=2.6 test_acc=0.8801

(train_s and eval_s are wall-clock seconds; imgs_per_s counts the training images only).

  /usr/bin/python3 bench/torch_fmnist.py [--epochs 1] [--batch 128] [--lr 1e-3] [--n 3]
      [--limit N] [--threads 2]

Needs Debian's python3-torch and dataset-fashion-mnist (scripts/setup.sh --bench).
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist/"
CLASSES = 10
EVAL_CHUNK = 500


def read_idx(name):
    """A gzipped IDX file as a uint8 array. Header: two zero bytes, the element type, the number
    of dimensions, then each dimension as a big-endian uint32; the data follow."""
    with gzip.open(DATA_DIR + name) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(prefix):
    """Images as float32 (N, 1, 28, 28) in [0, 1] and labels as int64, for 'train' or 't10k'."""
    images = torch.tensor(read_idx(f"{prefix}-images-idx3-ubyte.gz"), dtype=torch.float32)
    labels = torch.tensor(read_idx(f"{prefix}-labels-idx1-ubyte.gz"), dtype=torch.long)
    return images.unsqueeze(1) / 255.0, labels


class BasicBlock(nn.Module):
    """3x3 conv (stride s) -> BN -> ReLU -> 3x3 conv -> BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv_a = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(out_channels)
        self.conv_b = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.projection = None
        else:
            self.projection = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        y = F.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        shortcut = x if self.projection is None else self.projection(x)
        return F.relu(y + shortcut)


class ResNetC(nn.Module):
    """CIFAR-style ResNet-(6n+2): ResNet-20 for n = 3."""

    def __init__(self, n=3, classes=CLASSES, in_channels=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks = []
        channels = 16
        for stage, width in enumerate([16, 32, 64]):
            for block in range(n):
                stride = 2 if (block == 0 and stage > 0) else 1
                blocks.append(BasicBlock(channels, width, stride))
                channels = width
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.body(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def train_epoch(model, optimizer, images, labels, batch):
    """One pass over a fresh shuffle; returns the wall-clock seconds."""
    model.train()
    order = torch.randperm(len(images))
    start = time.perf_counter()
    for first in range(0, len(images), batch):
        indices = order[first:first + batch]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[indices]), labels[indices])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def evaluate(model, images, labels):
    """(accuracy, wall-clock seconds) over the whole set, in chunks of EVAL_CHUNK."""
    model.eval()
    correct = 0
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(images), EVAL_CHUNK):
            predicted = model(images[first:first + EVAL_CHUNK]).argmax(1)
            correct += (predicted == labels[first:first + EVAL_CHUNK]).sum().item()
    return correct / len(images), time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n", type=int, default=3, help="blocks per stage (3: ResNet-20)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training and test images (0: all), as reskit train --limit")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("t10k")
    if args.limit:
        train_images, train_labels = train_images[:args.limit], train_labels[:args.limit]
        test_images, test_labels = test_images[:args.limit], test_labels[:args.limit]

    model = ResNetC(args.n)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print("params", sum(p.numel() for p in model.parameters()))
    for epoch in range(args.epochs):
        train_s = train_epoch(model, optimizer, train_images, train_labels, args.batch)
        accuracy, eval_s = evaluate(model, test_images, test_labels)
        print(f"epoch {epoch + 1} train_s={train_s:.1f} imgs_per_s={len(train_images) / train_s:.0f} "
              f"eval_s={eval_s:.1f} test_acc={accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
