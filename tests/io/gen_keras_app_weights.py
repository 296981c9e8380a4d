"""Keras Applications weight files, written from known weights, and what they must predict.

Run by CTest (test keras_app_weights_gen) with Debian's /usr/bin/python3 (h5py, numpy, torch):
    /usr/bin/python3 tests/io/gen_keras_app_weights.py OUT_DIR
Nothing is downloaded: this writes, in exactly the layout of Keras's published files
(storage.googleapis.com/tensorflow/keras-applications/resnet/…), two files of made-up weights
    resnet50_weights_tf_dim_ordering_tf_kernels.h5          ResNet50 with its top (1000 classes)
    resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5  ResNet50V2 without the top
and expected.txt: two pictures of 64x64 RGB pixels in [0, 255], and what the models predict for them
after each family's preprocess_input (computed here with NumPy), by an implementation of its own in
PyTorch (NCHW, float64): ResNet50's softmax (2, 1000) and ResNet50V2's average-pooled features
(2, 2048) (include_top=False, pooling='avg').

The layout (Keras's save_weights, as in those files): root attributes layer_names (every layer of
the model, in order, fixed-length byte strings), backend, keras_version; one group per layer with
attribute weight_names ("conv1_conv/kernel:0", "conv1_conv/bias:0"; an empty float64 array for a
layer without weights) and the datasets at <layer>/<layer>/kernel:0 ("/" nests groups). Conv2D
kernels HWIO, Dense (in, out), BatchNormalization gamma, beta, moving_mean, moving_variance.

The architectures follow keras/applications/resnet.py (block1/stack1, block2/stack2): BatchNorm
epsilon 1.001e-5; conv1_pad ZeroPadding2D(3) then a 7x7/2 convolution; pool1_pad ZeroPadding2D(1)
then MaxPooling2D(3, 2) (zeros can win the max: V2 has no ReLU before it); V1 strides the first 1x1
convolution of each stack's first block and pads its 3x3 "same"; V2 normalises before each block
(the conv shortcut and the first 1x1 read the pre-activation, the identity shortcut reads the
block's input, subsampled by MaxPooling2D(1, stride) where the block strides), strides the 3x3
convolution (after ZeroPadding2D(1)) of the last block of conv2..conv4, and ends in post_bn,
post_relu. It also checks the parameter counts Keras prints (25,636,712 and 23,564,800).

The weights: for each weight a NumPy generator seeded with crc32 of its name draws them:
kernels N(0, 1) * 0.9 / sqrt(fan_in), biases and betas U(-0.1, 0.1), gammas U(0.6, 1.0) (the last BN of
a V1 block U(0.2, 0.4), so that the sum stays moderate), moving means U(-0.2, 0.2), moving variances
U(0.5, 1.5).
"""
import os
import sys
import zlib

import h5py
import numpy as np
import torch
import torch.nn.functional as F

EPS = 1.001e-5
SIZE = 64
BATCH = 2


def draw(name, shape, low, high):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.uniform(low, high, size=shape)


class Net:
    """Weights by layer (in model order), and the layer list of the file."""

    def __init__(self):
        self.layers = []  # (name, [(weight name, array)])

    def add(self, name, weights=()):
        self.layers.append((name, list(weights)))

    def weights(self, name):
        for n, w in self.layers:
            if n == name:
                return [a for _, a in w]
        raise KeyError(name)

    def count(self):
        return sum(a.size for _, w in self.layers for _, a in w)


def conv_weights(name, k, cin, cout, bias=True):
    rng = np.random.default_rng(zlib.crc32((name + "/kernel:0").encode()))
    w = [(name + "/kernel:0", rng.standard_normal((k, k, cin, cout)) * 0.9 / np.sqrt(k * k * cin))]
    if bias:
        w.append((name + "/bias:0", draw(name + "/bias:0", (cout,), -0.1, 0.1)))
    return w


def bn_weights(name, c, damp=False):
    lo, hi = (0.2, 0.4) if damp else (0.6, 1.0)
    return [
        (name + "/gamma:0", draw(name + "/gamma:0", (c,), lo, hi)),
        (name + "/beta:0", draw(name + "/beta:0", (c,), -0.1, 0.1)),
        (name + "/moving_mean:0", draw(name + "/moving_mean:0", (c,), -0.2, 0.2)),
        (name + "/moving_variance:0", draw(name + "/moving_variance:0", (c,), 0.5, 1.5)),
    ]


# ---------------------------------------------------------------- forward pieces (NCHW, float64)

def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def conv(net, x, name, stride=1, pad=0):
    w = net.weights(name)
    kernel = t(w[0]).permute(3, 2, 0, 1)  # HWIO -> OIHW
    bias = t(w[1]) if len(w) > 1 else None
    return F.conv2d(x, kernel, bias, stride=stride, padding=pad)


def bn(net, x, name):
    gamma, beta, mean, var = (t(a) for a in net.weights(name))
    shape = (1, -1, 1, 1)
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + EPS) * gamma.view(shape) + beta.view(shape)


def zero_pad(x, p):
    return F.pad(x, (p, p, p, p))


# ---------------------------------------------------------------- ResNet50 (v1)

def resnet50_weights(include_top):
    net = Net()
    net.add("input_1")
    net.add("conv1_pad")
    net.add("conv1_conv", conv_weights("conv1_conv", 7, 3, 64))
    net.add("conv1_bn", bn_weights("conv1_bn", 64))
    for n in ("conv1_relu", "pool1_pad", "pool1_pool"):
        net.add(n)
    cin = 64
    for stack, (filters, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(1, blocks + 1):
            name = "conv%d_block%d" % (stack + 2, b)
            if b == 1:
                net.add(name + "_0_conv", conv_weights(name + "_0_conv", 1, cin, 4 * filters))
                net.add(name + "_0_bn", bn_weights(name + "_0_bn", 4 * filters, damp=True))
            net.add(name + "_1_conv", conv_weights(name + "_1_conv", 1, cin, filters))
            net.add(name + "_1_bn", bn_weights(name + "_1_bn", filters))
            net.add(name + "_1_relu")
            net.add(name + "_2_conv", conv_weights(name + "_2_conv", 3, filters, filters))
            net.add(name + "_2_bn", bn_weights(name + "_2_bn", filters))
            net.add(name + "_2_relu")
            net.add(name + "_3_conv", conv_weights(name + "_3_conv", 1, filters, 4 * filters))
            net.add(name + "_3_bn", bn_weights(name + "_3_bn", 4 * filters, damp=True))
            net.add(name + "_add")
            net.add(name + "_out")
            cin = 4 * filters
    if include_top:
        net.add("avg_pool")
        rng = np.random.default_rng(zlib.crc32(b"predictions/kernel:0"))
        net.add("predictions", [("predictions/kernel:0", rng.standard_normal((2048, 1000)) * 5.0 / np.sqrt(2048)),
                                ("predictions/bias:0", draw("predictions/bias:0", (1000,), -0.1, 0.1))])
    return net


def resnet50_forward(net, x):
    x = conv(net, zero_pad(x, 3), "conv1_conv", stride=2)
    x = F.relu(bn(net, x, "conv1_bn"))
    x = F.max_pool2d(zero_pad(x, 1), 3, stride=2)
    for stack, blocks in enumerate((3, 4, 6, 3)):
        for b in range(1, blocks + 1):
            name = "conv%d_block%d" % (stack + 2, b)
            stride = 2 if (b == 1 and stack > 0) else 1
            if b == 1:
                shortcut = bn(net, conv(net, x, name + "_0_conv", stride=stride), name + "_0_bn")
            else:
                shortcut = x
            y = F.relu(bn(net, conv(net, x, name + "_1_conv", stride=stride), name + "_1_bn"))
            y = F.relu(bn(net, conv(net, y, name + "_2_conv", pad=1), name + "_2_bn"))
            y = bn(net, conv(net, y, name + "_3_conv"), name + "_3_bn")
            x = F.relu(shortcut + y)
    features = x.mean(dim=(2, 3))
    kernel, bias = (t(a) for a in net.weights("predictions"))
    logits = features @ kernel + bias
    return torch.softmax(logits, dim=1), logits


# ---------------------------------------------------------------- ResNet50V2

def resnet50v2_weights():
    net = Net()
    net.add("input_1")
    net.add("conv1_pad")
    net.add("conv1_conv", conv_weights("conv1_conv", 7, 3, 64))
    net.add("pool1_pad")
    net.add("pool1_pool")
    cin = 64
    pools = 0
    for stack, (filters, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(1, blocks + 1):
            name = "conv%d_block%d" % (stack + 2, b)
            net.add(name + "_preact_bn", bn_weights(name + "_preact_bn", cin))
            net.add(name + "_preact_relu")
            if b == 1:
                net.add(name + "_0_conv", conv_weights(name + "_0_conv", 1, cin, 4 * filters))
            elif b == blocks and stack < 3:
                net.add("max_pooling2d" + ("_%d" % pools if pools else ""))
                pools += 1
            net.add(name + "_1_conv", conv_weights(name + "_1_conv", 1, cin, filters, bias=False))
            net.add(name + "_1_bn", bn_weights(name + "_1_bn", filters))
            net.add(name + "_1_relu")
            net.add(name + "_2_pad")
            net.add(name + "_2_conv", conv_weights(name + "_2_conv", 3, filters, filters, bias=False))
            net.add(name + "_2_bn", bn_weights(name + "_2_bn", filters))
            net.add(name + "_2_relu")
            net.add(name + "_3_conv", conv_weights(name + "_3_conv", 1, filters, 4 * filters))
            net.add(name + "_out")
            cin = 4 * filters
    net.add("post_bn", bn_weights("post_bn", 2048))
    net.add("post_relu")
    return net


def resnet50v2_forward(net, x):
    x = conv(net, zero_pad(x, 3), "conv1_conv", stride=2)
    x = F.max_pool2d(zero_pad(x, 1), 3, stride=2)
    for stack, blocks in enumerate((3, 4, 6, 3)):
        for b in range(1, blocks + 1):
            name = "conv%d_block%d" % (stack + 2, b)
            stride = 2 if (b == blocks and stack < 3) else 1
            preact = F.relu(bn(net, x, name + "_preact_bn"))
            if b == 1:
                shortcut = conv(net, preact, name + "_0_conv", stride=stride)
            else:
                shortcut = x[:, :, ::stride, ::stride] if stride > 1 else x
            y = F.relu(bn(net, conv(net, preact, name + "_1_conv"), name + "_1_bn"))
            y = F.relu(bn(net, conv(net, zero_pad(y, 1), name + "_2_conv", stride=stride), name + "_2_bn"))
            y = conv(net, y, name + "_3_conv")
            x = shortcut + y
    x = F.relu(bn(net, x, "post_bn"))
    return x.mean(dim=(2, 3))


# ---------------------------------------------------------------- files

def write_weights(net, path):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in net.layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for name, weights in net.layers:
            g = f.create_group(name)
            if weights:
                g.attrs["weight_names"] = np.array([w.encode() for w, _ in weights])
            else:
                g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
            for wname, value in weights:
                g.create_dataset(wname, data=value.astype(np.float32))


def caffe(pixels):  # NHWC RGB in [0, 255] -> BGR minus the ImageNet means
    return pixels[..., ::-1] - np.array([103.939, 116.779, 123.68])


def tf_mode(pixels):
    return pixels / 127.5 - 1.0


def write_tensor(out, name, a):
    a = np.asarray(a, dtype=np.float64)
    out.write("%s %d %s\n" % (name, a.ndim, " ".join(str(d) for d in a.shape)))
    out.write(" ".join(repr(float(v)) for v in a.ravel()) + "\n")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out_dir, exist_ok=True)
    torch.set_grad_enabled(False)

    v1 = resnet50_weights(include_top=True)
    v2 = resnet50v2_weights()
    assert v1.count() == 25636712, v1.count()  # Keras: ResNet50 with the top
    assert v2.count() == 23564800, v2.count()  # Keras: ResNet50V2 without the top
    for net in (v1, v2):  # float32 as stored, float64 from here on
        net.layers = [(n, [(w, a.astype(np.float32).astype(np.float64)) for w, a in ws]) for n, ws in net.layers]

    rng = np.random.default_rng(17)
    pixels = rng.integers(0, 256, size=(BATCH, SIZE, SIZE, 3)).astype(np.float64)
    nchw = lambda a: t(np.transpose(a, (0, 3, 1, 2)))
    probs, logits = resnet50_forward(v1, nchw(caffe(pixels)))
    features = resnet50v2_forward(v2, nchw(tf_mode(pixels)))
    print("resnet50 logits: std %.3f, max prob %.3f; resnet50v2 features: mean %.3f, max %.3f"
          % (logits.std().item(), probs.max().item(), features.mean().item(), features.max().item()))

    write_weights(v1, os.path.join(out_dir, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"))
    write_weights(v2, os.path.join(out_dir, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    with open(os.path.join(out_dir, "expected.txt"), "w") as out:
        write_tensor(out, "pixels", pixels)
        write_tensor(out, "resnet50_predictions", probs.numpy())
        write_tensor(out, "resnet50v2_avg_features", features.numpy())


if __name__ == "__main__":
    main()
