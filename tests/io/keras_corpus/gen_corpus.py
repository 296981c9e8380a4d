#!/usr/bin/python3
"""Writes the Keras .h5 corpus: small models in the exact layouts Keras versions write, with
known weights, inputs and the outputs they must give (tests/io/test_keras_corpus.cpp reads them).

    /usr/bin/python3 tests/io/keras_corpus/gen_corpus.py OUT_DIR

Needs only numpy and h5py (Debian's python3-numpy, python3-h5py); no Keras or TensorFlow. Every
output comes from this script's own numpy forward of each layer, in float64 on the float32
weights stored in the files.

Layouts (facts from keras-team/keras: keras/engine/saving.py at 2.2.4, keras/saving/hdf5_format.py
at v2.6.0, keras/saving/legacy/hdf5_format.py at v2.11.0, keras/src/legacy/saving/
legacy_h5_format.py in Keras 3):
  keras2.2  standalone Keras 2.2.4: model class "Model"; entries {name, class_name, config,
            inbound_nodes}; "dtype" only on input layers; VarianceScaling initializers; BN axis -1;
            names counted from _1 (conv2d_1); every string attribute fixed-length; optimizer "lr".
  tf2.6     tf.keras 2.6: "Functional"; dtype "float32" on every layer; GlorotUniform; BN axis [3];
            InputLayer "ragged"; Sequential with its InputLayer and batch_input_shape on the first
            layer; root keras_version/backend variable-length strings.
  tf2.11    tf.keras 2.11: as 2.6, and the new optimizer registered as "Custom>Adam".
  keras3    Keras 3.11 model.save("m.h5"): dtype as a DTypePolicy object, initializers with
            "module"/"registered_name", inbound nodes as {"args": [__keras_tensor__...],
            "kwargs": {}}, InputLayer batch_shape, single input/output triples un-nested, weight
            names without ":0" (a lazily built Sequential's carry its "sequential/" path), an empty
            top_level_model_weights group.

Adding a layer: write a function like conv2d() below that returns a Spec (its Keras class, its
config for a layout, its weights, its numpy forward; random=True where training draws random
numbers, as Dropout and the Random* layers do, so no training loss is expected); then use it in a
model in MODELS (with since="tf2.6" where older layouts have no such layer). Resizing's forward is
tests/kernels/gen_resize_golden.py's, written independently of reskit.
"""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kernels"))
import gen_resize_golden as resize_golden  # noqa: E402  (the independent tf.image.resize in numpy)

# ---------------------------------------------------------------- layouts


class Layout:
    def __init__(self, key, version, counted_from_one, entry_name_first, dtype, init, bn_axis, groups,
                 keepdims, input_ragged, model_class, functional_name, colon0, vlen_root, optimizer):
        self.__dict__.update(locals())
        del self.__dict__["self"]

    def initializer(self, cls):
        """A Keras initializer config as this layout writes it."""
        if self.init == "variance_scaling" and cls in ("GlorotUniform", "GlorotNormal"):
            dist = "uniform" if cls == "GlorotUniform" else "normal"
            return {"class_name": "VarianceScaling",
                    "config": {"scale": 1.0, "mode": "fan_avg", "distribution": dist, "seed": None}}
        cfg = {"seed": None} if cls.startswith("Glorot") else {}
        out = {"class_name": cls, "config": cfg}
        if self.init == "module":
            out = {"module": "keras.initializers", "class_name": cls, "config": cfg, "registered_name": None}
        return out

    def dtype_value(self):
        if self.dtype == "policy":
            return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                    "registered_name": None}
        return "float32"

    def weight_name(self, prefix, layer, short):
        return f"{prefix}{layer}/{short}" + (":0" if self.colon0 else "")


LAYOUTS = [
    Layout("keras2.2", "2.2.4", counted_from_one=True, entry_name_first=True, dtype="inputs",
           init="variance_scaling", bn_axis=-1, groups=False, keepdims=False, input_ragged=False,
           model_class="Model", functional_name="model_1", colon0=True, vlen_root=False,
           optimizer="keras2.2"),
    Layout("tf2.6", "2.6.0", counted_from_one=False, entry_name_first=False, dtype="string",
           init="class", bn_axis=[3], groups=True, keepdims=True, input_ragged=True,
           model_class="Functional", functional_name="model", colon0=True, vlen_root=True,
           optimizer="tf2.6"),
    Layout("tf2.11", "2.11.0", counted_from_one=False, entry_name_first=False, dtype="string",
           init="class", bn_axis=[3], groups=True, keepdims=True, input_ragged=True,
           model_class="Functional", functional_name="model", colon0=True, vlen_root=True,
           optimizer="tf2.11"),
    Layout("keras3", "3.11.3", counted_from_one=False, entry_name_first=False, dtype="policy",
           init="module", bn_axis=-1, groups=True, keepdims=True, input_ragged=True,
           model_class="Functional", functional_name="functional", colon0=False, vlen_root=True,
           optimizer="keras3"),
]


def training_config(L):
    if L.optimizer == "keras2.2":  # Keras 2.2 stored the optimizer's float32 values
        return {"optimizer_config": {"class_name": "Adam", "config": {
            "lr": float(np.float32(0.001)), "beta_1": float(np.float32(0.9)), "beta_2": float(np.float32(0.999)),
            "decay": 0.0, "epsilon": 1e-07, "amsgrad": False}},
            "loss": "categorical_crossentropy", "metrics": ["accuracy"], "sample_weight_mode": None,
            "loss_weights": None}
    metrics = [[{"class_name": "MeanMetricWrapper",
                 "config": {"name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]]
    if L.optimizer == "tf2.6":
        opt = {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.001, "decay": 0.0,
                                                "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
                                                "amsgrad": False}}
        return {"loss": "categorical_crossentropy", "metrics": metrics, "weighted_metrics": None,
                "loss_weights": None, "optimizer_config": opt}
    new_opt = {"name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
               "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None}
    if L.optimizer == "tf2.11":
        cfg = {**new_opt, "jit_compile": True, "is_legacy_optimizer": False, "learning_rate": 0.001,
               "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}
        return {"loss": "categorical_crossentropy", "metrics": metrics, "weighted_metrics": None,
                "loss_weights": None, "optimizer_config": {"class_name": "Custom>Adam", "config": cfg}}
    cfg = {**new_opt, "name": "adam", "loss_scale_factor": None, "gradient_accumulation_steps": None,
           "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}
    return {"loss": "categorical_crossentropy", "loss_weights": None, "metrics": ["accuracy"],
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False,
            "optimizer_config": {"class_name": "Adam", "config": cfg}}


# ---------------------------------------------------------------- numpy helpers


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def same_pads(size, k, s):
    """TensorFlow's "same": out = ceil(in / s), the odd pixel of padding at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pads_for(x, k, s, padding):
    if padding == "valid":
        return (0, 0), (0, 0)
    return same_pads(x.shape[1], k[0], s[0]), same_pads(x.shape[2], k[1], s[1])


ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "softmax": lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True),
}


def windows(x, k, s, padding, fill):
    """(N, P, Q, kh, kw, C) windows of x (N, H, W, C), padded with `fill`."""
    (pt, pb), (pl, pr) = pads_for(x, k, s, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    p = (xp.shape[1] - k[0]) // s[0] + 1
    q = (xp.shape[2] - k[1]) // s[1] + 1
    out = np.empty((x.shape[0], p, q, k[0], k[1], x.shape[3]))
    for i in range(p):
        for j in range(q):
            out[:, i, j] = xp[:, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1], :]
    return out


# ---------------------------------------------------------------- layers
# Each returns a Spec: Keras class, the stem of its auto-name, config(L) (the keys after name,
# trainable and dtype), weights(rng, input shapes) -> [(short name, array)], forward(inputs,
# weights, training) -> array, and out(input shapes) -> output shape (batch-free).


class Spec:
    # cls and stem: strings, or functions of the layout where layouts write the layer differently.
    def __init__(self, cls, stem, config, forward, out, weights=lambda rng, shapes: [], random=False,
                 penalty=lambda w: 0.0):
        # random: draws in training (Dropout, the Random* layers), so no training loss is expected.
        # penalty: the layer's weight regularization loss (Keras adds it to the training loss).
        self.cls, self.stem, self.config, self.forward, self.out, self.weights, self.random = (
            cls, stem, config, forward, out, weights, random)
        self.penalty = penalty


def regularizer_config(L, l1, l2):
    """A kernel regularizer as each layout writes it: Keras 2.2's L1L2, tf.keras 2.x's L1/L2/L1L2
    classes, Keras 3's with module and registered_name."""
    if L.key == "keras2.2":
        return {"class_name": "L1L2", "config": {"l1": l1, "l2": l2}}
    cls, cfg = ("L1L2", {"l1": l1, "l2": l2}) if l1 and l2 else ("L1", {"l1": l1}) if l1 else ("L2", {"l2": l2})
    if L.key == "keras3":
        return {"module": "keras.regularizers", "class_name": cls, "config": cfg, "registered_name": None}
    return {"class_name": cls, "config": cfg}


def regularizer_penalty(l1, l2):
    # Keras: l1·Σ|w| + l2·Σw² (no ½), of the float32 values the file holds.
    return lambda w: float(l1 * np.sum(np.abs(w)) + l2 * np.sum(w * w))


def conv2d(filters, kernel, strides=1, padding="valid", activation="linear", l1=0.0, l2=0.0):
    k, s = pair(kernel), pair(strides)

    def config(L):
        c = {"filters": filters, "kernel_size": list(k), "strides": list(s), "padding": padding,
             "data_format": "channels_last", "dilation_rate": [1, 1]}
        if L.groups:
            c["groups"] = 1
        return {**c, "activation": activation, "use_bias": True,
                "kernel_initializer": L.initializer("GlorotUniform"), "bias_initializer": L.initializer("Zeros"),
                "kernel_regularizer": regularizer_config(L, l1, l2) if (l1 or l2) else None,
                "bias_regularizer": None, "activity_regularizer": None,
                "kernel_constraint": None, "bias_constraint": None}

    def weights(rng, shapes):
        return [("kernel", rng.uniform(-0.5, 0.5, (*k, shapes[0][-1], filters))),
                ("bias", rng.uniform(-0.2, 0.2, (filters,)))]

    def forward(xs, w, training):
        win = windows(xs[0], k, s, padding, 0.0)
        return ACTIVATIONS[activation](np.einsum("npqrsc,rsck->npqk", win, w[0]) + w[1])

    def out(shapes):
        h, w_, _ = shapes[0]
        if padding == "same":
            return (-(-h // s[0]), -(-w_ // s[1]), filters)
        return ((h - k[0]) // s[0] + 1, (w_ - k[1]) // s[1] + 1, filters)

    return Spec("Conv2D", "conv2d", config, forward, out, weights,
                penalty=lambda w: regularizer_penalty(l1, l2)(w[0]))


def batch_normalization(epsilon=1e-3):
    def config(L):
        c = {"axis": L.bn_axis, "momentum": 0.99, "epsilon": epsilon, "center": True, "scale": True,
             "beta_initializer": L.initializer("Zeros"), "gamma_initializer": L.initializer("Ones"),
             "moving_mean_initializer": L.initializer("Zeros"),
             "moving_variance_initializer": L.initializer("Ones"),
             "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}
        if L.key == "keras3":
            c["synchronized"] = False
        return c

    def weights(rng, shapes):  # Keras's file order: gamma, beta, moving_mean, moving_variance
        c = shapes[0][-1]
        return [("gamma", rng.uniform(0.5, 1.5, c)), ("beta", rng.uniform(-0.5, 0.5, c)),
                ("moving_mean", rng.uniform(-0.5, 0.5, c)), ("moving_variance", rng.uniform(0.5, 2.0, c))]

    def forward(xs, w, training):
        x = xs[0]
        mean, var = (x.mean((0, 1, 2)), x.var((0, 1, 2))) if training else (w[2], w[3])
        return w[0] * (x - mean) / np.sqrt(var + epsilon) + w[1]

    return Spec("BatchNormalization", "batch_normalization", config, forward, lambda sh: sh[0], weights)


def sync_batch_normalization():
    """tf.keras.layers.experimental.SyncBatchNormalization (tf.keras 2.2-2.15); Keras 3 has no such
    class and writes BatchNormalization(synchronized=True). In one process: BatchNormalization."""
    spec = batch_normalization()
    bn_config = spec.config

    def config(L):
        return {**bn_config(L), "synchronized": True} if L.key == "keras3" else bn_config(L)

    spec.config = config
    spec.cls = lambda L: "BatchNormalization" if L.key == "keras3" else "SyncBatchNormalization"
    spec.stem = lambda L: "batch_normalization" if L.key == "keras3" else "sync_batch_normalization"
    return spec


def activation(name):
    return Spec("Activation", "activation", lambda L: {"activation": name},
                lambda xs, w, t: ACTIVATIONS[name](xs[0]), lambda sh: sh[0])


def relu(max_value=None, negative_slope=0.0, threshold=0.0):
    def forward(xs, w, training):  # Keras: max_value above it, x from threshold, else slope·(x − threshold)
        x = xs[0]
        y = np.where(x >= threshold, x, negative_slope * (x - threshold))
        return y if max_value is None else np.where(x >= max_value, max_value, y)

    return Spec("ReLU", "re_lu", lambda L: {"max_value": max_value, "negative_slope": negative_slope,
                                            "threshold": threshold}, forward, lambda sh: sh[0])


def leaky_relu(alpha=0.3):
    # tf.keras and Keras 2.2 write "alpha"; Keras 3 "negative_slope".
    return Spec("LeakyReLU", "leaky_re_lu",
                lambda L: {"negative_slope" if L.key == "keras3" else "alpha": alpha},
                lambda xs, w, t: np.where(xs[0] >= 0, xs[0], alpha * xs[0]), lambda sh: sh[0])


def softmax(axis=-1):
    return Spec("Softmax", "softmax", lambda L: {"axis": axis}, lambda xs, w, t: ACTIVATIONS["softmax"](xs[0]),
                lambda sh: sh[0])


def concatenate(axis=-1):
    return Spec("Concatenate", "concatenate", lambda L: {"axis": axis},
                lambda xs, w, t: np.concatenate(xs, axis=axis),
                lambda sh: (*sh[0][:-1], sum(s[-1] for s in sh)))


# ---------------------------------------------------------------- preprocessing layers
# Not in Keras 2.2; tf.keras 2.6 and 2.11 (keras.layers.preprocessing) and Keras 3.


def channels_last(L):
    return {"data_format": "channels_last"} if L.key == "keras3" else {}


def rescaling(scale, offset):
    return Spec("Rescaling", "rescaling", lambda L: {"scale": scale, "offset": offset},
                lambda xs, w, t: xs[0] * scale + offset, lambda sh: sh[0])


def normalization():
    """Adapted statistics as weights (mean, variance, count); mean and variance null in the config."""
    def config(L):
        c = {"axis": [-1], "mean": None, "variance": None}
        if L.key != "tf2.6":  # invert: tf.keras 2.10+ and Keras 3
            c["invert"] = False
        return c

    def weights(rng, shapes):
        c = shapes[0][-1]
        return [("mean", rng.uniform(-0.5, 0.5, c)), ("variance", rng.uniform(0.5, 2.0, c)),
                ("count", np.array(40, dtype=np.int64))]

    return Spec("Normalization", "normalization", config,
                lambda xs, w, t: (xs[0] - w[0]) / np.maximum(np.sqrt(w[1]), 1e-7), lambda sh: sh[0], weights)


def resizing(height, width):
    def config(L):
        c = {"height": height, "width": width, "interpolation": "bilinear", "crop_to_aspect_ratio": False}
        if L.key == "keras3":
            c = {"height": height, "width": width, "interpolation": "bilinear", "data_format": "channels_last",
                 "crop_to_aspect_ratio": False, "pad_to_aspect_ratio": False, "fill_mode": "constant",
                 "fill_value": 0.0}
        return c

    return Spec("Resizing", "resizing", config,
                lambda xs, w, t: np.stack([resize_golden.bilinear(im, height, width) for im in xs[0]]),
                lambda sh: (height, width, sh[0][-1]))


def center_crop(height, width):
    def forward(xs, w, training):  # inputs larger than the target: the centred window
        x = xs[0]
        top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
        return x[:, top:top + height, left:left + width, :]

    return Spec("CenterCrop", "center_crop", lambda L: {"height": height, "width": width, **channels_last(L)},
                forward, lambda sh: (height, width, sh[0][-1]))


def random_image(cls, stem, keys):
    """A Random* layer: the identity in inference."""
    def config(L):
        return {**keys(L), "seed": None, **channels_last(L)}

    return Spec(cls, stem, config, lambda xs, w, t: xs[0], lambda sh: sh[0], random=True)


def transform_keys(L):
    return {"fill_mode": "reflect", "fill_value": 0.0, "interpolation": "bilinear"}


def random_flip(mode="horizontal_and_vertical"):
    return random_image("RandomFlip", "random_flip", lambda L: {"mode": mode})


def random_rotation(factor):
    return random_image("RandomRotation", "random_rotation", lambda L: {"factor": factor, **transform_keys(L)})


def random_zoom(height_factor, width_factor=None):
    return random_image("RandomZoom", "random_zoom", lambda L: {
        "height_factor": height_factor, "width_factor": width_factor, **transform_keys(L)})


def random_translation(height_factor, width_factor):
    return random_image("RandomTranslation", "random_translation", lambda L: {
        "height_factor": height_factor, "width_factor": width_factor, **transform_keys(L)})


def random_contrast(factor):
    def keys(L):  # Keras 3 writes its value_range (default [0, 255])
        return {"factor": factor, **({"value_range": [0, 255]} if L.key == "keras3" else {})}

    spec = random_image("RandomContrast", "random_contrast", keys)
    spec.config = lambda L: {**keys(L), "seed": None}  # no data_format
    return spec


def add():
    return Spec("Add", "add", lambda L: {}, lambda xs, w, t: sum(xs), lambda sh: sh[0])


def pooling2d(kind, pool, strides=None, padding="valid"):
    k = pair(pool)
    s = pair(strides) if strides is not None else k
    cls = {"max": "MaxPooling2D", "avg": "AveragePooling2D"}[kind]

    def forward(xs, w, training):
        if kind == "max":
            return windows(xs[0], k, s, padding, -np.inf).max((3, 4))
        win = windows(xs[0], k, s, padding, np.nan)  # padded cells left out of the count
        return np.nanmean(win, (3, 4))

    def out(shapes):
        h, w_, c = shapes[0]
        if padding == "same":
            return (-(-h // s[0]), -(-w_ // s[1]), c)
        return ((h - k[0]) // s[0] + 1, (w_ - k[1]) // s[1] + 1, c)

    return Spec(cls, cls.lower().replace("pooling2d", "_pooling2d"),
                lambda L: {"pool_size": list(k), "padding": padding, "strides": list(s),
                           "data_format": "channels_last"}, forward, out)


def global_pooling2d(kind):
    cls = {"max": "GlobalMaxPooling2D", "avg": "GlobalAveragePooling2D"}[kind]
    stem = {"max": "global_max_pooling2d", "avg": "global_average_pooling2d"}[kind]

    def config(L):
        return {"data_format": "channels_last", **({"keepdims": False} if L.keepdims else {})}

    return Spec(cls, stem, config, lambda xs, w, t: xs[0].max((1, 2)) if kind == "max" else xs[0].mean((1, 2)),
                lambda sh: (sh[0][-1],))


def zero_padding2d(pad):
    (t, b), (l, r) = pad

    return Spec("ZeroPadding2D", "zero_padding2d",
                lambda L: {"padding": [[t, b], [l, r]], "data_format": "channels_last"},
                lambda xs, w, tr: np.pad(xs[0], ((0, 0), (t, b), (l, r), (0, 0))),
                lambda sh: (sh[0][0] + t + b, sh[0][1] + l + r, sh[0][2]))


def flatten():
    return Spec("Flatten", "flatten", lambda L: {"data_format": "channels_last"},
                lambda xs, w, t: xs[0].reshape(xs[0].shape[0], -1), lambda sh: (int(np.prod(sh[0])),))


def dropout(rate):
    def config(L):
        return {"rate": rate, "noise_shape": None, "seed": None}

    # Identity in inference; in training a random mask (no expected training value is written).
    return Spec("Dropout", "dropout", config, lambda xs, w, t: xs[0], lambda sh: sh[0], random=True)


def dense(units, activation_name="linear", l1=0.0, l2=0.0):
    def config(L):
        return {"units": units, "activation": activation_name, "use_bias": True,
                "kernel_initializer": L.initializer("GlorotUniform"), "bias_initializer": L.initializer("Zeros"),
                "kernel_regularizer": regularizer_config(L, l1, l2) if (l1 or l2) else None, "bias_regularizer": None, "activity_regularizer": None,
                "kernel_constraint": None, "bias_constraint": None}

    def weights(rng, shapes):
        return [("kernel", rng.uniform(-0.5, 0.5, (shapes[0][-1], units))), ("bias", rng.uniform(-0.2, 0.2, units))]

    return Spec("Dense", "dense", config, lambda xs, w, t: ACTIVATIONS[activation_name](xs[0] @ w[0] + w[1]),
                lambda sh: (units,), weights, penalty=lambda w: regularizer_penalty(l1, l2)(w[0]))


# ---------------------------------------------------------------- models
# A model: its input shape and its nodes, each (spec, [input node indices]); -1 is the input.
# Functional models may branch; Sequential ones are chains.

MODELS = {
    # A residual block with every layer class reskit reads, Dropout before the classifier.
    "residual": dict(input=(6, 6, 3), nodes=[
        (zero_padding2d(((1, 1), (1, 1))), [-1]),
        (conv2d(4, 3), [0]),
        (batch_normalization(), [1]),
        (activation("relu"), [2]),
        (conv2d(4, 3, padding="same"), [3]),
        (batch_normalization(), [4]),
        (add(), [5, 3]),
        (activation("relu"), [6]),
        (pooling2d("max", 2), [7]),
        (flatten(), [8]),
        (dropout(0.3), [9]),
        (dense(3, "softmax"), [10]),
    ]),
    # Strided "same" convolution, average pooling with padded cells, ReLU, global pooling, two Dense.
    "pooling": dict(input=(7, 7, 2), nodes=[
        (conv2d(3, 2, strides=2, padding="same", activation="tanh"), [-1]),
        (pooling2d("avg", 2, strides=1, padding="same"), [0]),
        (conv2d(4, 1), [1]),
        (relu(), [2]),
        (global_pooling2d("max"), [3]),
        (dense(5, "sigmoid"), [4]),
        (dense(2, "softmax"), [5]),
    ]),
    # The Sequential classic: conv, BN, ReLU, pooling, GAP, softmax.
    "sequential": dict(input=(8, 8, 3), sequential=True, nodes=[
        (conv2d(4, 3, activation="linear"), [-1]),
        (batch_normalization(), [0]),
        (activation("relu"), [1]),
        (pooling2d("avg", 2), [2]),
        (global_pooling2d("avg"), [3]),
        (dense(3, "softmax"), [4]),
    ]),
    # The activation layers with options and a Concatenate of two branches (Keras 2.2 has them all).
    "activations": dict(input=(5, 5, 2), nodes=[
        (conv2d(4, 2), [-1]),
        (relu(max_value=0.6, negative_slope=0.1, threshold=0.05), [0]),
        (leaky_relu(0.2), [0]),
        (concatenate(), [1, 2]),
        (flatten(), [3]),
        (dense(3), [4]),
        (softmax(), [5]),
    ]),
    # A saved image model's preprocessing and augmentation head (tf.keras 2.6+ and Keras 3 only).
    "preprocessing": dict(input=(9, 10, 2), since="tf2.6", nodes=[
        (rescaling(0.5, 0.25), [-1]),
        (normalization(), [0]),
        (resizing(7, 8), [1]),
        (center_crop(6, 6), [2]),
        (random_flip(), [3]),
        (random_rotation(0.1), [4]),
        (random_zoom(0.1, 0.2), [5]),
        (random_translation(0.1, [-0.1, 0.2]), [6]),
        (random_contrast(0.2), [7]),
        (conv2d(3, 3), [8]),
        (relu(), [9]),
        (leaky_relu(), [9]),
        (concatenate(), [10, 11]),
        (global_pooling2d("avg"), [12]),
        (dense(3), [13]),
        (softmax(), [14]),
    ]),
    # SyncBatchNormalization (as Keras 3 writes it: BatchNormalization with synchronized=True).
    # keras.io's CIFAR-10 ResNet: kernel_regularizer=l2(1e-4) on its convolutions (larger here, so
    # that the penalty shows in the loss); L1 and L1L2 on the classifier and a second convolution.
    "regularized": dict(input=(5, 5, 2), nodes=[
        (conv2d(3, 2, l2=1e-2), [-1]),
        (activation("relu"), [0]),
        (conv2d(3, 2, padding="same", l1=1e-3, l2=5e-3), [1]),
        (global_pooling2d("avg"), [2]),
        (dense(2, "softmax", l1=2e-3), [3]),
    ]),
    "sync_bn": dict(input=(5, 5, 2), since="tf2.6", nodes=[
        (conv2d(3, 2), [-1]),
        (sync_batch_normalization(), [0]),
        (global_pooling2d("avg"), [1]),
        (dense(2, "softmax"), [2]),
    ]),
    # The augmentation head as Sequential models begin: flips and rotations, then 1/255.
    "augment": dict(input=(6, 6, 3), sequential=True, since="tf2.6", nodes=[
        (random_flip("horizontal"), [-1]),
        (random_rotation([-0.1, 0.1]), [0]),
        (rescaling(1.0 / 255, 0.0), [1]),
        (conv2d(2, 3), [2]),
        (global_pooling2d("avg"), [3]),
        (dense(2, "softmax"), [4]),
    ]),
}

# Sequential forms: "input_layer" (an InputLayer entry, plus batch_input_shape on the first layer
# in tf.keras 2.x), "first_layer" (no InputLayer; batch_input_shape on the first layer: Keras 2.2,
# or tf.keras 2.x configs with the input layer dropped), "build" (no InputLayer; build_input_shape;
# in Keras 3 the built model lists its InputLayer and the weights carry the "sequential/" path).
SEQUENTIAL_FORMS = {
    "keras2.2": ["first_layer"],
    "tf2.6": ["input_layer", "first_layer", "build"],
    "tf2.11": ["input_layer"],
    "keras3": ["input_layer", "build"],
}

BATCH = 4

# ---------------------------------------------------------------- writing


class Namer:
    def __init__(self, L):
        self.L, self.counts = L, {}

    def __call__(self, stem):
        n = self.counts.get(stem, 0)
        self.counts[stem] = n + 1
        if self.L.counted_from_one:
            return f"{stem}_{n + 1}"
        return stem if n == 0 else f"{stem}_{n}"


def base_config(L, name, first=False, batch_shape=None):
    c = {"name": name, "trainable": True}
    if L.dtype != "inputs" or first:
        c["dtype"] = L.dtype_value()
    if batch_shape is not None:
        c["batch_input_shape"] = batch_shape
    return c


def input_layer_config(L, name, batch_shape):
    if L.key == "keras3":
        return {"batch_shape": batch_shape, "dtype": "float32", "sparse": False, "ragged": False, "name": name,
                "optional": False}
    c = {"batch_input_shape": batch_shape, "dtype": "float32", "sparse": False}
    if L.input_ragged:
        c["ragged"] = False
    return {**c, "name": name}


def class_of(spec, L):
    return spec.cls(L) if callable(spec.cls) else spec.cls


def entry(L, cls, config, name=None, inbound=None):
    if L.entry_name_first and name is not None:
        e = {"name": name, "class_name": cls, "config": config}
    else:
        e = {"class_name": cls, "config": config}
        if name is not None:
            e["name"] = name
    if inbound is not None:
        e["inbound_nodes"] = inbound
    return e


def inbound_json(L, sources, shapes):
    """One call's inbound node: tf.keras [[name, 0, 0, {}], ...] or Keras 3 {"args", "kwargs"}."""
    if L.key != "keras3":
        return [[[src, 0, 0, {}] for src in sources]]
    tensors = [{"class_name": "__keras_tensor__",
                "config": {"shape": [None, *shape], "dtype": "float32", "keras_history": [src, 0, 0]}}
               for src, shape in zip(sources, shapes)]
    return [{"args": [tensors] if len(tensors) > 1 else tensors, "kwargs": {}}]


def attr_string(group, key, text, vlen):
    if vlen:
        group.attrs[key] = text  # h5py: a Python str is a variable-length UTF-8 string
    else:
        group.attrs[key] = text.encode("utf8")  # bytes: fixed-length


def write_model_file(path, L, model_config, layer_weights, layer_order):
    """layer_weights: {layer: [(dataset name, float32 array)]}; layer_order: model.layers' names."""
    with h5py.File(path, "w") as f:
        attr_string(f, "keras_version", L.version, L.vlen_root)
        attr_string(f, "backend", "tensorflow", L.vlen_root)
        f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        f.attrs["training_config"] = json.dumps(training_config(L)).encode("utf8")
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_order])
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = L.version.encode("utf8")
        # Keras 2.2 creates the groups in layer order; tf.keras 2.x and Keras 3 sorted by name.
        for name in (layer_order if L.key == "keras2.2" else sorted(layer_order)):
            lg = g.create_group(name)
            ws = layer_weights.get(name, [])
            if not ws:
                lg.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
                continue
            lg.attrs["weight_names"] = np.array([n.encode("utf8") for n, _ in ws])
            for n, v in ws:
                lg.create_dataset(n, data=v)
        if L.key == "keras3":
            g.create_group("top_level_model_weights").attrs["weight_names"] = np.zeros((0,), dtype=np.float64)


def build(model_key, L, form, seed):
    """Writes one model; returns its manifest entry (inputs and expected outputs)."""
    m = MODELS[model_key]
    rng = np.random.default_rng(seed)
    namer = Namer(L)
    nodes = m["nodes"]
    sequential = m.get("sequential", False)
    in_shape = tuple(m["input"])
    batch_shape = [None, *in_shape]
    input_name = "input_1" if L.key != "keras3" else "input_layer"  # tf.keras counts inputs from 1
    names, shapes, weights = [], [], []
    for spec, srcs in nodes:
        names.append(namer(spec.stem(L) if callable(spec.stem) else spec.stem))
        in_shapes = [in_shape if s < 0 else shapes[s] for s in srcs]
        shapes.append(tuple(spec.out(in_shapes)))
        # Stored as float32; the reference computes with exactly the stored values.
        # Integer weights (Normalization's count) keep their int64.
        weights.append([(n, v if np.asarray(v).dtype == np.int64 else np.asarray(v, dtype=np.float32))
                        for n, v in spec.weights(rng, in_shapes)])
    if sequential and L.key != "keras3":
        input_name = names[0] + "_input"  # tf.keras 2.x names the InputLayer after the first layer

    prefix = "sequential/" if (L.key == "keras3" and form == "build") else ""
    layer_weights = {names[i]: [(L.weight_name(prefix, names[i], n), v) for n, v in weights[i]]
                     for i in range(len(nodes))}

    def cfg(i, first=False, batch=None):
        spec = nodes[i][0]
        return {**base_config(L, names[i], first, batch), **spec.config(L)}

    if sequential:
        seq_name = "sequential_1" if L.counted_from_one else "sequential"
        layers = []
        explicit_input = form == "input_layer" or (L.key == "keras3" and form == "build")
        if explicit_input:
            layers.append(entry(L, "InputLayer", input_layer_config(L, input_name, batch_shape)))
        first_batch = batch_shape if (form == "first_layer" or (form == "input_layer" and L.key != "keras3")) else None
        for i, (spec, _) in enumerate(nodes):
            layers.append(entry(L, class_of(spec, L), cfg(i, first=i == 0, batch=first_batch if i == 0 else None)))
        config = {"name": seq_name, "layers": layers}
        if L.key == "keras3":
            config = {"name": seq_name, "trainable": True, "dtype": L.dtype_value(), "layers": layers}
        if form == "build" or L.key == "keras3":  # Keras 3 writes it for every built Sequential
            config["build_input_shape"] = batch_shape
        model_config = {"class_name": "Sequential", "config": config}
        layer_order = names  # model.layers leaves a Sequential's InputLayer out
    else:
        layers = [entry(L, "InputLayer", input_layer_config(L, input_name, batch_shape), input_name, [])]
        for i, (spec, srcs) in enumerate(nodes):
            src_names = [input_name if s < 0 else names[s] for s in srcs]
            src_shapes = [in_shape if s < 0 else shapes[s] for s in srcs]
            layers.append(entry(L, class_of(spec, L), cfg(i), names[i], inbound_json(L, src_names, src_shapes)))
        ins, outs = [input_name, 0, 0], [names[-1], 0, 0]
        config = {"name": L.functional_name, "layers": layers, "input_layers": [ins], "output_layers": [outs]}
        if L.key == "keras3":
            config = {"name": L.functional_name, "trainable": True, "layers": layers, "input_layers": ins,
                      "output_layers": outs}
        model_config = {"class_name": L.model_class, "config": config}
        layer_order = [input_name] + names

    # Inputs, labels and the numpy forward in inference and in training (batch statistics).
    x = rng.uniform(-1.0, 1.0, (BATCH, *in_shape)).astype(np.float32)
    labels = np.eye(shapes[-1][0], dtype=np.float32)[rng.integers(0, shapes[-1][0], BATCH)]

    def run(training):
        values = []
        for i, (spec, srcs) in enumerate(nodes):
            xs = [x.astype(np.float64) if s < 0 else values[s] for s in srcs]
            values.append(spec.forward(xs, [v.astype(np.float64) for _, v in weights[i]], training))
        return values[-1]

    y = run(False)
    has_random = any(spec.random for spec, _ in nodes)
    y_train = run(True)
    penalty = sum(spec.penalty([v.astype(np.float64) for _, v in weights[i]]) for i, (spec, _) in enumerate(nodes))
    train_loss = None if has_random else float(np.mean(-np.sum(labels * np.log(y_train), axis=-1))) + penalty
    return model_config, layer_weights, layer_order, {
        "model_name": model_config["config"]["name"], "input_name": input_name, "input_shape": list(in_shape), "x": x.ravel().tolist(), "labels": labels.ravel().tolist(),
        "y_shape": [BATCH, *shapes[-1]], "y": y.ravel().tolist(), "train_loss": train_loss, "sequential": sequential,
        "layers": len(nodes) + 1}  # reskit's Model always has its InputLayer


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_corpus.py OUT_DIR")
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    seed = 100
    for L in LAYOUTS:
        for model_key, m in MODELS.items():
            if "since" in m and [x.key for x in LAYOUTS].index(L.key) < [x.key for x in LAYOUTS].index(m["since"]):
                continue
            forms = SEQUENTIAL_FORMS[L.key] if m.get("sequential") else ["functional"]
            for form in forms:
                seed += 1
                model_config, layer_weights, layer_order, expected = build(model_key, L, form, seed)
                file = f"{L.key}_{model_key}_{form}.h5"
                write_model_file(os.path.join(out_dir, file), L, model_config, layer_weights, layer_order)
                manifest.append({"file": file, "layout": L.key, "model": model_key, "form": form, **expected})
    with open(os.path.join(out_dir, "corpus.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(manifest)} models to {out_dir}")


if __name__ == "__main__":
    main()
