#!/usr/bin/python3
"""Checks with h5py that reskit's .h5 files have the Keras 2.x layout.

    check_h5_layout.py MODEL.h5 WEIGHTS.h5 [--iterations N]

MODEL.h5 comes from save_model (a compiled model), WEIGHTS.h5 from save_weights. The checks follow
keras/saving/hdf5_format.py (tf.keras 2.6): root attributes, the model_config JSON schema, the
training_config, model_weights (layer_names, weight_names, dataset shapes: HWIO kernels, Dense
(in, out), BatchNormalization gamma/beta/moving_mean/moving_variance) and optimizer_weights.
Fails when h5py is not installed: scripts/setup.sh installs it (python3-h5py), so a missing
module is a missing install step, not a reason to skip.
"""
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("FAIL: h5py or numpy missing: scripts/setup.sh installs python3-h5py")
    sys.exit(1)

FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)


def text(value):
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def names_attr(group, name):
    """Keras's load_attributes_from_hdf5_group, chunks included."""
    if name in group.attrs:
        return [text(n) for n in group.attrs[name]]
    out, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(text(n) for n in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


COMMON_KEYS = {"name", "trainable", "dtype"}
LAYER_KEYS = {
    "InputLayer": {"batch_input_shape", "dtype", "sparse", "ragged", "name"},
    "ZeroPadding2D": COMMON_KEYS | {"padding", "data_format"},
    "Conv2D": COMMON_KEYS | {"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                             "groups", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                             "kernel_regularizer", "bias_regularizer", "activity_regularizer",
                             "kernel_constraint", "bias_constraint"},
    "BatchNormalization": COMMON_KEYS | {"axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                                         "gamma_initializer", "moving_mean_initializer",
                                         "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
                                         "beta_constraint", "gamma_constraint"},
    "Activation": COMMON_KEYS | {"activation"},
    "Add": COMMON_KEYS,
    "MaxPooling2D": COMMON_KEYS | {"pool_size", "padding", "strides", "data_format"},
    "AveragePooling2D": COMMON_KEYS | {"pool_size", "padding", "strides", "data_format"},
    "GlobalMaxPooling2D": COMMON_KEYS | {"data_format", "keepdims"},
    "GlobalAveragePooling2D": COMMON_KEYS | {"data_format", "keepdims"},
    "Flatten": COMMON_KEYS | {"data_format"},
    "Dense": COMMON_KEYS | {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                            "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                            "bias_constraint"},
    "Dropout": COMMON_KEYS | {"rate", "noise_shape", "seed"},
}


def check_model_config(config):
    check(config.get("class_name") == "Functional", f"model_config class_name {config.get('class_name')!r}")
    cfg = config.get("config", {})
    for key in ("name", "layers", "input_layers", "output_layers"):
        check(key in cfg, f"model_config.config lacks {key!r}")
    layers = cfg.get("layers", [])
    names = [layer.get("name") for layer in layers]
    check(len(set(names)) == len(names), "layer names are not unique")
    shapes = {}  # layer name -> output channels (or features) where known
    for layer in layers:
        cls, lc, name = layer.get("class_name"), layer.get("config", {}), layer.get("name")
        where = f"layer {name!r} ({cls})"
        check(set(layer) == {"class_name", "config", "name", "inbound_nodes"}, f"{where}: keys {sorted(layer)}")
        check(cls in LAYER_KEYS, f"{where}: unexpected class")
        if cls in LAYER_KEYS:
            check(set(lc) == LAYER_KEYS[cls], f"{where}: config keys {sorted(lc)} != {sorted(LAYER_KEYS[cls])}")
        check(lc.get("name") == name, f"{where}: config name {lc.get('name')!r}")
        check(lc.get("dtype") in ("float32", "float64"), f"{where}: dtype {lc.get('dtype')!r}")
        inbound = layer.get("inbound_nodes")
        if cls == "InputLayer":
            check(inbound == [], f"{where}: inbound_nodes {inbound!r}")
            shape = lc.get("batch_input_shape")
            check(isinstance(shape, list) and shape[0] is None and all(isinstance(d, int) for d in shape[1:]),
                  f"{where}: batch_input_shape {shape!r}")
            continue
        check(lc.get("trainable") is True, f"{where}: trainable {lc.get('trainable')!r}")
        check(isinstance(inbound, list) and len(inbound) == 1, f"{where}: inbound_nodes {inbound!r}")
        for entry in (inbound[0] if inbound else []):
            check(isinstance(entry, list) and len(entry) == 4 and entry[0] in names and entry[1] == 0
                  and entry[2] == 0 and entry[3] == {}, f"{where}: inbound entry {entry!r}")
        if cls == "Add":
            check(len(inbound[0]) >= 2, f"{where}: Add with {len(inbound[0])} inputs")
        if cls == "BatchNormalization":
            check(lc.get("axis") == [3], f"{where}: axis {lc.get('axis')!r}, tf.keras 2.x writes [3]")
        if cls == "Conv2D":
            check(isinstance(lc.get("kernel_size"), list) and len(lc["kernel_size"]) == 2, f"{where}: kernel_size")
            check(lc.get("padding") in ("valid", "same"), f"{where}: padding")
            check(lc.get("kernel_initializer", {}).get("class_name") == "GlorotUniform", f"{where}: initializer")
    for key in ("input_layers", "output_layers"):
        for triple in cfg.get(key, []):
            check(isinstance(triple, list) and len(triple) == 3 and triple[0] in names, f"{key} entry {triple!r}")
    return layers


def expected_shapes(layer, in_channels):
    """Keras weight shapes of a layer given its input channels/features."""
    cls, lc = layer["class_name"], layer["config"]
    if cls == "Conv2D":
        kh, kw = lc["kernel_size"]
        shapes = [(kh, kw, in_channels, lc["filters"])]
        return shapes + ([(lc["filters"],)] if lc["use_bias"] else []), lc["filters"]
    if cls == "Dense":
        shapes = [(in_channels, lc["units"])]
        return shapes + ([(lc["units"],)] if lc["use_bias"] else []), lc["units"]
    if cls == "BatchNormalization":
        return [(in_channels,)] * 4, in_channels
    return [], in_channels


def check_weights(group, layers, where):
    layer_names = names_attr(group, "layer_names")
    check(layer_names == [layer["name"] for layer in layers], f"{where}: layer_names {layer_names} differ from the config")
    for key in ("backend", "keras_version"):
        check(key in group.attrs, f"{where}: attribute {key!r} missing")
    by_name = {layer["name"]: layer for layer in layers}
    channels = {}
    # Channels flow along the graph in config order (the config is topologically sorted).
    weights = {}
    for layer in layers:
        name, cls = layer["name"], layer["class_name"]
        if cls == "InputLayer":
            channels[name] = layer["config"]["batch_input_shape"][-1]
            continue
        inbound = [entry[0] for entry in layer["inbound_nodes"][0]]
        cin = channels[inbound[0]]
        if cls == "Flatten":
            cin = None  # filled from the Dense kernel below
        shapes, channels[name] = expected_shapes(layer, cin)
        g = group.get(name)
        check(g is not None, f"{where}: no group for layer {name!r}")
        if g is None:
            continue
        check("weight_names" in g.attrs, f"{where}/{name}: weight_names missing")
        raw = g.attrs.get("weight_names")
        wn = names_attr(g, "weight_names")
        if not shapes:
            check(isinstance(raw, np.ndarray) and raw.dtype == np.float64 and raw.shape == (0,),
                  f"{where}/{name}: weight_names of a layer without weights should be float64 (0,), got {raw!r}")
            continue
        suffixes = {"Conv2D": ["kernel:0", "bias:0"], "Dense": ["kernel:0", "bias:0"],
                    "BatchNormalization": ["gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"]}[cls]
        check(wn == [f"{name}/{s}" for s in suffixes[:len(shapes)]], f"{where}/{name}: weight_names {wn}")
        for w, shape in zip(wn, shapes):
            dset = g.get(w)
            check(isinstance(dset, h5py.Dataset), f"{where}/{name}/{w}: missing dataset")
            if not isinstance(dset, h5py.Dataset):
                continue
            if shape[0] is None:
                shape = (dset.shape[0],) + shape[1:]
            check(dset.shape == shape, f"{where}/{name}/{w}: shape {dset.shape} != {shape}")
            check(dset.dtype in (np.float32, np.float64), f"{where}/{name}/{w}: dtype {dset.dtype}")
            check(np.all(np.isfinite(dset[()])), f"{where}/{name}/{w}: non-finite values")
            weights[w] = dset[()]
        if cls == "BatchNormalization":
            check(np.all(g[wn[3]][()] > 0), f"{where}/{name}: moving_variance not positive")
    return weights


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    model_path, weights_path = argv[1], argv[2]
    iterations = int(argv[argv.index("--iterations") + 1]) if "--iterations" in argv else None
    with h5py.File(model_path, "r") as f:
        for key in ("keras_version", "backend", "model_config", "training_config"):
            check(key in f.attrs, f"root attribute {key!r} missing")
        check(text(f.attrs.get("keras_version", "")).startswith("2."), "keras_version is not 2.x")
        check(text(f.attrs.get("backend", "")) == "tensorflow", "backend is not tensorflow")
        config = json.loads(text(f.attrs["model_config"]))
        layers = check_model_config(config)
        training = json.loads(text(f.attrs["training_config"]))
        check(training.get("loss") == "categorical_crossentropy", f"training_config loss {training.get('loss')!r}")
        check(training.get("metrics") == ["accuracy"], f"training_config metrics {training.get('metrics')!r}")
        oc = training.get("optimizer_config", {})
        check(oc.get("class_name") == "Adam", f"optimizer class {oc.get('class_name')!r}")
        for key in ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"):
            check(key in oc.get("config", {}), f"optimizer_config.config lacks {key!r}")
        check("model_weights" in f, "group model_weights missing")
        weights = check_weights(f["model_weights"], layers, "model_weights")
        check("optimizer_weights" in f, "group optimizer_weights missing")
        og = f["optimizer_weights"]
        onames = names_attr(og, "weight_names")
        check(onames[:1] == ["Adam/iter:0"], f"optimizer weight_names start {onames[:1]}")
        if onames:
            it = og[onames[0]]
            check(it.shape == () and it.dtype == np.int64, f"Adam/iter:0 shape {it.shape} dtype {it.dtype}")
            if iterations is not None:
                check(int(it[()]) == iterations, f"Adam/iter:0 = {it[()]}, expected {iterations}")
        trainable = [w for w in weights if not w.endswith(("moving_mean:0", "moving_variance:0"))]
        expected = ["Adam/iter:0"] + [f"Adam/{w[:-2]}/m:0" for w in trainable] + [f"Adam/{w[:-2]}/v:0" for w in trainable]
        check(sorted(onames) == sorted(expected) and onames[0] == expected[0],
              f"optimizer weight_names differ from Keras's: {len(onames)} vs {len(expected)}")
        for name in onames[1:]:
            param = name.split("/", 1)[1].rsplit("/", 1)[0] + ":0"
            if param in weights and name in og:
                check(og[name].shape == weights[param].shape, f"{name}: shape {og[name].shape}")
        if iterations:
            moved = [n for n in onames[1:] if n.endswith("/m:0") and np.any(og[n][()] != 0)]
            check(moved, "Adam slots are all zero after training")
    with h5py.File(weights_path, "r") as f:
        check("layer_names" in f.attrs or "layer_names0" in f.attrs, "save_weights file lacks layer_names at the root")
        check("model_config" not in f.attrs, "save_weights file carries a model_config")
        loaded = check_weights(f, layers, "weights file")
        for w, value in weights.items():
            check(w in loaded and np.array_equal(loaded[w], value), f"weights file: {w} differs from the model file")
    if FAILURES:
        for failure in FAILURES:
            print("FAIL:", failure)
        return 1
    print(f"OK: {model_path} and {weights_path} have the Keras 2.x layout ({len(layers)} layers)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
