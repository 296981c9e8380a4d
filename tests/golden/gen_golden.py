"""Golden values for reskit from an independent implementation (PyTorch, float64).

Regenerate with:  /usr/bin/python3 tests/golden/gen_golden.py
(Debian's python3-torch; the output goes to tests/golden/fixtures/, read by test_golden.cpp.)

What it builds, with Keras 2.x semantics:
  identity_block     (3,4,4,6), f=2, filters [2,4,6], stage "1", block "a"
  convolutional_block(3,4,4,6), f=2, filters [2,4,6], s=2, stage "1", block "a"
  resnet50           reskit's resnet50({64,64,3}, 6) (the notebook text / paper variant), batch 8
                     (from 8 images on, reskit runs the 4x4 and 2x2 stages as row products)
The Keras facts it relies on:
  - Conv2D has a bias (use_bias=True); its kernel is HWIO (kh, kw, cin, cout), a Dense kernel (in, out).
  - "same" padding by TensorFlow's rule: out = ceil(in / s), total = max((out - 1) * s + k - in, 0),
    total // 2 before and the rest after (asymmetric for even kernels: f=2 pads (0, 1)).
  - Pooling strides default to the pool size, padding "valid"; Flatten is in NHWC order (h, w, c).
  - BatchNormalization: epsilon 1e-3, momentum 0.99 (torch momentum 0.01); weights gamma, beta,
    moving_mean, moving_variance. Training normalises with the batch mean and the biased batch variance
    and updates moving = 0.99 * moving + 0.01 * batch with the unbiased variance, as reskit does (so
    does TF's fused float32 kernel; its float64 path takes the biased one).
  - Categorical cross-entropy on a softmax output is computed from the logits, mean over the batch.
NHWC inputs are transposed to NCHW inside; everything runs in training mode.

Weights and inputs come from one formula that golden_weights.h computes identically in C++:
  h   = splitmix64(fnv1a64(name) + i)   for element i of the tensor (Keras layout, row-major);
                                        splitmix64(s) is SplitMix64's output for state s: z = s + golden
                                        gamma, then its two xor-shift-multiply rounds (uint64 arithmetic)
  u   = (h >> 11) * 2^-52 - 1           exact, in [-1, 1)
  kernel (conv HWIO, dense (in, out))   u / sqrt(fan_in), fan_in = product of all dims but the last
  bias, beta, moving_mean               u / 8
  gamma                                 1 + u / 4
  moving_variance                       1 + u / 2
  input "x", block output gradient "G"  u
Every step is exact or one correctly rounded IEEE operation, so both sides get the same bits.

Blocks backpropagate sum(out * G); ResNet-50 backpropagates the categorical cross-entropy (from the
softmax logits, mean over the batch) against fixed one-hot targets, class (5n + 2) mod 6 for sample n.

Fixture format (little endian), one file per case:
  magic "RKGOLD1\\0", uint32 count, then per tensor:
  uint32 name length, name (utf-8), uint32 rank, int64 dims[rank], uint8 sampled, int64 n,
  if sampled: int64 flat indices[n]; float64 values[n] (the full tensor in row-major order when not
  sampled, else the values at those flat indices).
Names: "output", "loss" (rank 0), "grad/input", "grad/<keras param name>", "value/<keras param name>" (a
parameter's value after the training forward: the updated moving statistics), and per BN layer of
those "batch_mean/<layer>", "batch_variance/<layer>" (unbiased): the batch statistics that the moving
averages took in, which the C++ test recovers as (moving_after − 0.99·moving_before) / 0.01 so that
float32 runs check them too (in moving_* itself they hide behind the 0.99·moving_before term).
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MASK = (1 << 64) - 1
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SAMPLE_ABOVE = 4096  # tensors with more elements are subsampled
SAMPLE_TARGET = 2000


# ---------------------------------------------------------------- the shared formula

def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def uniform(name, n):
    """u in [-1, 1) for elements 0..n-1 of the tensor called name (float64, exact)."""
    z = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-52 - 1.0


def formula_value(name, shape):
    """The value of the Keras parameter (or input) `name` of Keras-layout `shape`."""
    n = int(np.prod(shape)) if shape else 1
    u = uniform(name, n)
    short = name.split("/")[-1].split(":")[0]
    if short == "kernel":
        fan_in = int(np.prod(shape[:-1]))
        v = u / np.sqrt(np.float64(fan_in))
    elif short in ("bias", "beta", "moving_mean"):
        v = u / 8.0
    elif short == "gamma":
        v = 1.0 + u / 4.0
    elif short == "moving_variance":
        v = 1.0 + u / 2.0
    else:
        v = u
    return v.reshape(shape)


# ---------------------------------------------------------------- Keras-semantics layers

class Params:
    """Keras name -> (torch tensor, layout) for every parameter, in creation order."""

    def __init__(self):
        self.entries = {}

    def add(self, name, tensor, layout):
        assert name not in self.entries, name
        self.entries[name] = (tensor, layout)

    @staticmethod
    def to_keras(t, layout):
        if layout == "conv":  # torch OIHW -> Keras HWIO
            return t.permute(2, 3, 1, 0)
        if layout == "dense":  # torch (out, in) -> Keras (in, out)
            return t.t()
        return t

    @staticmethod
    def from_keras(a, layout):
        if layout == "conv":
            return a.permute(3, 2, 0, 1)
        if layout == "dense":
            return a.t()
        return a

    def fill(self):
        with torch.no_grad():
            for name, (t, layout) in self.entries.items():
                shape = tuple(self.to_keras(t, layout).shape)
                v = torch.from_numpy(formula_value(name, shape))
                t.copy_(self.from_keras(v, layout))

    def keras(self, name, grad):
        t, layout = self.entries[name]
        src = t.grad if grad else t
        return self.to_keras(src.detach(), layout).contiguous().numpy()


def tf_same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class KConv2D(nn.Module):
    def __init__(self, params, name, cin, filters, k, s=1, padding="valid"):
        super().__init__()
        self.conv = nn.Conv2d(cin, filters, k, s, padding=0, bias=True, dtype=torch.float64)
        self.k, self.s, self.padding = k, s, padding
        params.add(name + "/kernel:0", self.conv.weight, "conv")
        params.add(name + "/bias:0", self.conv.bias, "plain")

    def forward(self, x):
        if self.padding == "same":
            top, bottom = tf_same_pads(x.shape[2], self.k, self.s)
            left, right = tf_same_pads(x.shape[3], self.k, self.s)
            x = F.pad(x, (left, right, top, bottom))
        return self.conv(x)


class KBatchNorm(nn.Module):
    def __init__(self, params, name, c):
        super().__init__()
        self.name = name
        self.bn = nn.BatchNorm2d(c, eps=1e-3, momentum=0.01, dtype=torch.float64)
        self.batch_mean = self.batch_variance = None
        params.add(name + "/gamma:0", self.bn.weight, "plain")
        params.add(name + "/beta:0", self.bn.bias, "plain")
        params.add(name + "/moving_mean:0", self.bn.running_mean, "plain")
        params.add(name + "/moving_variance:0", self.bn.running_var, "plain")

    def forward(self, x):
        # The batch statistics the moving averages take in: mean and unbiased variance.
        self.batch_mean = x.detach().mean(dim=(0, 2, 3))
        self.batch_variance = x.detach().var(dim=(0, 2, 3), unbiased=True)
        return self.bn(x)


class Block(nn.Module):
    """The notebook's identity_block (shortcut=False) or convolutional_block (shortcut=True)."""

    def __init__(self, params, cin, f, filters, s, stage, block, shortcut):
        super().__init__()
        f1, f2, f3 = filters
        conv, bn = "conv_" + stage + block, "bn_" + stage + block
        self.c2a = KConv2D(params, conv + "2a", cin, f1, 1, s)
        self.b2a = KBatchNorm(params, bn + "2a", f1)
        self.c2b = KConv2D(params, conv + "2b", f1, f2, f, 1, "same")
        self.b2b = KBatchNorm(params, bn + "2b", f2)
        self.c2c = KConv2D(params, conv + "2c", f2, f3, 1, 1)
        self.b2c = KBatchNorm(params, bn + "2c", f3)
        self.shortcut = shortcut
        if shortcut:
            self.c1 = KConv2D(params, conv + "1", cin, f3, 1, s)
            self.b1 = KBatchNorm(params, bn + "1", f3)

    def forward(self, x):
        y = F.relu(self.b2a(self.c2a(x)))
        y = F.relu(self.b2b(self.c2b(y)))
        y = self.b2c(self.c2c(y))
        sc = self.b1(self.c1(x)) if self.shortcut else x
        return F.relu(y + sc)


class ResNet50(nn.Module):
    """reskit's resnet50(input_shape, classes) with default ResNet50Options; returns the logits."""

    STAGE_FILTERS = [[64, 64, 256], [128, 128, 512], [256, 256, 1024], [512, 512, 2048]]
    STAGE_STRIDES = [1, 2, 2, 2]
    STAGE_BLOCKS = [3, 4, 6, 3]

    def __init__(self, params, hw, cin, classes):
        super().__init__()
        self.conv1 = KConv2D(params, "conv1", cin, 64, 7, 2)
        self.bn1 = KBatchNorm(params, "bn1", 64)
        blocks = []
        c = 64
        for st in range(4):
            stage, filters = str(st + 2), self.STAGE_FILTERS[st]
            blocks.append(Block(params, c, 3, filters, self.STAGE_STRIDES[st], stage, "a", True))
            c = filters[2]
            for b in range(1, self.STAGE_BLOCKS[st]):
                blocks.append(Block(params, c, 3, filters, 1, stage, chr(ord("a") + b), False))
        self.blocks = nn.Sequential(*blocks)
        with torch.no_grad():
            n = self.features(torch.zeros(1, cin, hw, hw, dtype=torch.float64)).shape[1]
        self.fc = nn.Linear(n, classes, dtype=torch.float64)
        params.add("fc%d/kernel:0" % classes, self.fc.weight, "dense")
        params.add("fc%d/bias:0" % classes, self.fc.bias, "plain")

    def features(self, x):
        x = F.pad(x, (3, 3, 3, 3))
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 2)
        x = self.blocks(x)
        x = F.avg_pool2d(x, 2)
        return torch.flatten(x.permute(0, 2, 3, 1), 1)  # Keras Flatten: NHWC order

    def forward(self, x):
        return self.fc(self.features(x))


# ---------------------------------------------------------------- fixtures

class Fixture:
    def __init__(self):
        self.tensors = []

    def add(self, name, value, sample=True):
        a = np.asarray(value, dtype=np.float64)
        flat = np.ascontiguousarray(a).reshape(-1)
        idx = None
        if sample and flat.size > SAMPLE_ABOVE:
            step = -(-flat.size // SAMPLE_TARGET) | 1  # odd, so channel counts of 2^k all get hit
            idx = np.arange(0, flat.size, step, dtype=np.int64)
            flat = flat[idx]
        self.tensors.append((name, a.shape, idx, flat))

    def write(self, path):
        with open(path, "wb") as f:
            f.write(b"RKGOLD1\0")
            f.write(struct.pack("<I", len(self.tensors)))
            for name, shape, idx, flat in self.tensors:
                nb = name.encode("utf-8")
                f.write(struct.pack("<I", len(nb)) + nb)
                f.write(struct.pack("<I", len(shape)))
                f.write(struct.pack("<%dq" % len(shape), *shape))
                f.write(struct.pack("<B", 0 if idx is None else 1))
                f.write(struct.pack("<q", flat.size))
                if idx is not None:
                    f.write(idx.astype("<i8").tobytes())
                f.write(flat.astype("<f8").tobytes())
        print("wrote %s (%d tensors, %d bytes)" % (path, len(self.tensors), os.path.getsize(path)))


def add_batch_stats(fx, model, names):
    for m in model.modules():
        if isinstance(m, KBatchNorm) and (names is None or m.name in names):
            fx.add("batch_mean/" + m.name, m.batch_mean.numpy())
            fx.add("batch_variance/" + m.name, m.batch_variance.numpy())


def nhwc_input(name, shape):
    x = torch.from_numpy(formula_value(name, tuple(shape))).requires_grad_(True)
    return x, x.permute(0, 3, 1, 2)


def block_case(shortcut, path):
    params = Params()
    s = 2 if shortcut else 1
    model = Block(params, 6, 2, [2, 4, 6], s, "1", "a", shortcut)
    params.fill()
    model.train()
    x, x_nchw = nhwc_input("x", (3, 4, 4, 6))
    out = model(x_nchw).permute(0, 2, 3, 1)  # back to NHWC
    g = torch.from_numpy(formula_value("G", tuple(out.shape)))
    objective = (out * g).sum()
    objective.backward()
    fx = Fixture()
    fx.add("output", out.detach().numpy())
    fx.add("loss", objective.detach().numpy())
    fx.add("grad/input", x.grad.numpy())
    for name, (t, _) in params.entries.items():
        if t.requires_grad:
            fx.add("grad/" + name, params.keras(name, grad=True))
        else:
            fx.add("value/" + name, params.keras(name, grad=False))
    add_batch_stats(fx, model, None)
    fx.write(path)


def resnet50_case(path):
    params = Params()
    classes, hw, batch = 6, 64, 8
    model = ResNet50(params, hw, 3, classes)
    params.fill()
    model.train()
    x, x_nchw = nhwc_input("x", (batch, hw, hw, 3))
    logits = model(x_nchw)
    target = torch.tensor([(5 * n + 2) % classes for n in range(batch)])
    loss = F.cross_entropy(logits, target)  # mean over the batch
    loss.backward()
    fx = Fixture()
    fx.add("output", torch.softmax(logits, dim=1).detach().numpy())
    fx.add("loss", loss.detach().numpy())
    fx.add("grad/input", x.grad.numpy())
    for name in ["conv1/kernel:0", "bn1/gamma:0", "bn1/beta:0", "conv_2a2a/kernel:0", "bn_2c2c/gamma:0",
                 "conv_3a1/kernel:0", "conv_3b2b/kernel:0", "bn_3d2c/beta:0", "conv_4f2b/kernel:0",
                 "conv_5a2b/kernel:0", "conv_5c2c/kernel:0", "bn_5c2c/gamma:0", "bn_5c2c/beta:0",
                 "fc6/kernel:0", "fc6/bias:0"]:
        fx.add("grad/" + name, params.keras(name, grad=True), sample=not name.startswith(("conv1/", "fc6/")))
    for name in ["bn1", "bn_3a1", "bn_4c2b", "bn_5c2c"]:
        for stat in ["moving_mean", "moving_variance"]:
            key = "%s/%s:0" % (name, stat)
            fx.add("value/" + key, params.keras(key, grad=False))
    add_batch_stats(fx, model, ["bn1", "bn_3a1", "bn_4c2b", "bn_5c2c"])
    fx.write(path)


def main():
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT_DIR, exist_ok=True)
    block_case(False, os.path.join(OUT_DIR, "identity_block.bin"))
    block_case(True, os.path.join(OUT_DIR, "convolutional_block.bin"))
    resnet50_case(os.path.join(OUT_DIR, "resnet50.bin"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
