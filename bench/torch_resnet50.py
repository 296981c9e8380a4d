#!/usr/bin/env python3
"""The PyTorch peer for ResNet-50 speed: the same network as `reskit bench --model resnet50`.

bench/compare_torch.py runs this script beside `reskit bench` and divides the two rates, so the
network here has to be the one reskit builds, with Keras's semantics rather than torchvision's:

  - ZeroPadding2D(3), then a 7x7 stride-2 conv1, BatchNormalization, ReLU, MaxPooling2D(3, 2);
  - four stages of bottleneck blocks (3, 4, 6, 3 blocks); the first block of each stage has a
    1x1 projection shortcut, the others add their input;
  - AveragePooling2D(2), Flatten, Dense(classes);
  - every Conv2D has a bias (Keras's default use_bias=True); BatchNormalization has epsilon 1e-3
    and momentum 0.99, which is momentum 0.01 in PyTorch's convention.

Two variants, as `reskit summary resnet50` and `resnet50-code` build them: 'text' (the notebook's
text and the paper: stage 3 has 128 filters, stage 5 strides by 2) and 'code' (the notebook's code:
126 filters in stage 3, stage 5 strides by 1).

PyTorch computes in NCHW, so the random input batch is made in that layout (reskit takes NHWC);
the work per step is the same. What is measured: one step (a training step: forward, cross-entropy,
backward, Adam; or an inference forward) runs once as a warm-up, then --steps timed steps; the
median step time gives images per second.

  /usr/bin/python3 bench/torch_resnet50.py [--mode train|infer] [--dtype float32|float64]
      [--batch 32] [--steps 5] [--threads 2] [--variant text|code] [--hw 64]

Prints a parameter-count line, then the line compare_torch.py reads:
  train float32 batch=32 median_step_s=0.3190 images_per_s=100.3

Needs Debian's python3-torch (scripts/setup.sh --bench).
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 6
IN_CHANNELS = 3
BN_EPSILON = 1e-3  # Keras's BatchNormalization default
BN_MOMENTUM = 0.01  # Keras's momentum 0.99: PyTorch weighs the new batch statistic instead


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)


class Bottleneck(nn.Module):
    """The notebook's identity block (shortcut=False) or convolutional block (shortcut=True).

    1x1 conv (stride s) -> BN -> ReLU -> fxf conv ('same') -> BN -> ReLU -> 1x1 conv -> BN,
    plus the input (or its 1x1 stride-s conv + BN), then ReLU.
    """

    def __init__(self, in_channels, filters, kernel_size, stride, shortcut):
        super().__init__()
        f1, f2, f3 = filters
        self.conv_a = nn.Conv2d(in_channels, f1, 1, stride)
        self.bn_a = batch_norm(f1)
        self.conv_b = nn.Conv2d(f1, f2, kernel_size, 1, padding="same")
        self.bn_b = batch_norm(f2)
        self.conv_c = nn.Conv2d(f2, f3, 1, 1)
        self.bn_c = batch_norm(f3)
        self.shortcut_conv = nn.Conv2d(in_channels, f3, 1, stride) if shortcut else None
        self.shortcut_bn = batch_norm(f3) if shortcut else None

    def forward(self, x):
        y = F.relu(self.bn_a(self.conv_a(x)))
        y = F.relu(self.bn_b(self.conv_b(y)))
        y = self.bn_c(self.conv_c(y))
        if self.shortcut_conv is None:
            shortcut = x
        else:
            shortcut = self.shortcut_bn(self.shortcut_conv(x))
        return F.relu(y + shortcut)


def stage_config(variant):
    """(filters, stride of the first block, number of blocks) for stages 2 to 5."""
    stage3_filters = 128 if variant == "text" else 126
    stage5_stride = 2 if variant == "text" else 1
    return [
        ([64, 64, 256], 1, 3),
        ([stage3_filters, stage3_filters, 512], 2, 4),
        ([256, 256, 1024], 2, 6),
        ([512, 512, 2048], stage5_stride, 3),
    ]


class ResNet50(nn.Module):
    def __init__(self, in_channels=IN_CHANNELS, classes=CLASSES, hw=64, variant="text"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2)
        self.bn1 = batch_norm(64)
        blocks = []
        channels = 64
        for filters, stride, count in stage_config(variant):
            blocks.append(Bottleneck(channels, filters, 3, stride, shortcut=True))
            channels = filters[2]
            for _ in range(count - 1):
                blocks.append(Bottleneck(channels, filters, 3, 1, shortcut=False))
        self.body = nn.Sequential(*blocks)
        self.fc = nn.Linear(self.flat_features(in_channels, hw), classes)

    def flat_features(self, in_channels, hw):
        """The Flatten width for hw x hw inputs, from one probe image in inference mode (so that
        the probe leaves the BatchNormalization moving statistics as they start)."""
        self.eval()
        with torch.no_grad():
            width = self.features(torch.zeros(1, in_channels, hw, hw)).shape[1]
        self.train()
        return width

    def features(self, x):
        x = F.pad(x, (3, 3, 3, 3))
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.body(x)
        x = F.avg_pool2d(x, 2)
        return torch.flatten(x, 1)

    def forward(self, x):
        return self.fc(self.features(x))


def parameter_counts(model):
    """(trainable, non-trainable) as Keras counts them: BN's moving mean and variance are the
    non-trainable ones (PyTorch's num_batches_tracked is not counted)."""
    trainable = sum(p.numel() for p in model.parameters())
    moving = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    return trainable, moving


def make_step(model, mode, x, y):
    """The function that runs one measured step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    def infer_step():
        model.eval()
        with torch.no_grad():
            model(x)

    return train_step if mode == "train" else infer_step


def median_step_seconds(step, steps):
    """One warm-up step, then the median of `steps` timed ones (the upper middle one for an even
    count, as compare_torch.py's figures have always been taken)."""
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["text", "code"], default="text")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--hw", type=int, default=64, help="input height and width")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    model = ResNet50(variant=args.variant, hw=args.hw).to(dtype)
    trainable, non_trainable = parameter_counts(model)
    print(f"params trainable={trainable} nontrainable={non_trainable} total={trainable + non_trainable}")

    x = torch.randn(args.batch, IN_CHANNELS, args.hw, args.hw, dtype=dtype)
    y = torch.randint(0, CLASSES, (args.batch,))
    median = median_step_seconds(make_step(model, args.mode, x, y), args.steps)
    print(f"{args.mode} {args.dtype} batch={args.batch} median_step_s={median:.4f} "
          f"images_per_s={args.batch / median:.1f}")


if __name__ == "__main__":
    main()
