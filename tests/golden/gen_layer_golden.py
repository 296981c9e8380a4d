"""Golden values for reskit's elementwise Keras layers, from an independent implementation
(PyTorch autograd, float64): ReLU with max_value/negative_slope/threshold, LeakyReLU,
Normalization (weights or given statistics, any kept axes, invert), Rescaling, Softmax over an
inner axis and Concatenate.

Regenerate with:  /usr/bin/python3 tests/golden/gen_layer_golden.py
(Debian's python3-torch; writes tests/golden/fixtures/layers.json, read by test_layer_golden.cpp.)

The Keras facts it encodes (keras/backend.py relu, keras/layers/activation/*.py,
keras/layers/preprocessing/normalization.py, rescaling.py, keras/layers/merging/concatenate.py):
  - ReLU(max_value, negative_slope, threshold) is backend.relu(x, alpha=negative_slope, max_value,
    threshold): x·[x > threshold] (relu(x) when threshold is 0), clipped to [0, max_value] when
    max_value is given, minus negative_slope·relu(threshold − x).
  - LeakyReLU(alpha) (Keras 3: negative_slope), default 0.3: x for x > 0, alpha·x otherwise.
  - Normalization(axis, mean, variance, invert): (x − mean) / max(sqrt(variance), 1e-7) with mean
    and variance shaped like the kept axes (input_shape[d] for d in axis) and broadcast over the
    rest; invert gives mean + x·max(sqrt(variance), 1e-7). backend.epsilon() is 1e-7.
  - Rescaling(scale, offset): x·scale + offset.  Softmax(axis), Concatenate(axis): as named.
Each case backpropagates sum(y ⊙ G) for a fixed G. Inputs stay away from every kink (values
k/4 + 0.013), so the gradients are unique.

Fixture (JSON): {"cases": [{"name", "class_name", "config" (Keras config without name),
"inputs": [{"shape" (with the batch), "values" (row-major)}], "weights": {short name: {"shape",
"values"}}, "upstream" (G), "output", "input_grads": [values per input]}]}.
"""
import json
import os

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "layers.json")
EPSILON = 1e-7  # keras.backend.epsilon()


def values(shape, seed):
    """Deterministic inputs k/4 + 0.013, k in [-12, 12]: never on a kink (0, 0.5, 1, 2, 6)."""
    n = 1
    for d in shape:
        n *= d
    v = [((i * 7919 + seed * 104729) % 25 - 12) / 4 + 0.013 for i in range(n)]
    return torch.tensor(v, dtype=torch.float64).reshape(shape)


def upstream(shape):
    n = 1
    for d in shape:
        n *= d
    g = [((i * 31 + 7) % 17 - 8) / 8 for i in range(n)]
    return torch.tensor(g, dtype=torch.float64).reshape(shape)


def keras_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return torch.where(x > 0, x, negative_slope * x)
    negative_part = torch.relu(threshold - x)
    y = x * (x > threshold).to(x.dtype) if threshold != 0.0 else torch.relu(x)
    if max_value is not None:
        y = torch.clamp(y, 0.0, max_value)
    if negative_slope != 0.0:
        y = y - negative_slope * negative_part
    return y


def normalization(x, axis, mean, variance, invert):
    ndim = x.dim()
    keep = sorted(a % ndim for a in axis)
    bshape = [x.shape[d] if d in keep else 1 for d in range(ndim)]
    kshape = [x.shape[d] for d in keep]
    m = (torch.as_tensor(mean, dtype=torch.float64) * torch.ones(kshape, dtype=torch.float64)).reshape(bshape)
    v = (torch.as_tensor(variance, dtype=torch.float64) * torch.ones(kshape, dtype=torch.float64)).reshape(bshape)
    denom = torch.clamp(torch.sqrt(v), min=EPSILON)
    return m + x * denom if invert else (x - m) / denom


def case(name, class_name, config, inputs, fn, weights=None):
    xs = [t.clone().requires_grad_(True) for t in inputs]
    y = fn(*xs)
    g = upstream(list(y.shape))
    (y * g).sum().backward()
    return {
        "name": name,
        "class_name": class_name,
        "config": config,
        "inputs": [{"shape": list(t.shape), "values": t.flatten().tolist()} for t in inputs],
        "weights": {k: {"shape": list(torch.as_tensor(v).shape), "values": torch.as_tensor(v, dtype=torch.float64).flatten().tolist()}
                    for k, v in (weights or {}).items()},
        "upstream": g.flatten().tolist(),
        "output": y.detach().flatten().tolist(),
        "input_grads": [t.grad.flatten().tolist() for t in xs],
    }


def main():
    cases = []
    x = values([2, 3, 3, 4], 1)
    for name, cfg in [
        ("relu_plain", {}),
        ("relu_max6", {"max_value": 6.0}),
        ("relu_max_slope", {"max_value": 2.0, "negative_slope": 0.1}),
        ("relu_threshold", {"threshold": 0.5}),
        ("relu_all", {"max_value": 2.0, "negative_slope": 0.25, "threshold": 0.5}),
        ("relu_slope", {"negative_slope": 0.2}),
        ("relu_max_below_threshold", {"max_value": 0.5, "negative_slope": 0.1, "threshold": 1.0}),
    ]:
        kw = {"max_value": cfg.get("max_value"), "negative_slope": cfg.get("negative_slope", 0.0),
              "threshold": cfg.get("threshold", 0.0)}
        cases.append(case(name, "ReLU", cfg, [x], lambda t, kw=kw: keras_relu(t, **kw)))

    cases.append(case("leaky_relu_default", "LeakyReLU", {}, [x], lambda t: torch.where(t > 0, t, 0.3 * t)))
    cases.append(case("leaky_relu_alpha", "LeakyReLU", {"alpha": 0.1}, [x], lambda t: torch.where(t > 0, t, 0.1 * t)))
    cases.append(case("leaky_relu_keras3", "LeakyReLU", {"negative_slope": 0.05}, [x],
                      lambda t: torch.where(t > 0, t, 0.05 * t)))

    # Normalization with weights (what adapt() leaves and .h5 files store); one variance below
    # epsilon² so that max(sqrt(variance), epsilon) takes epsilon.
    mean = [0.5, -1.0, 2.0, 0.25]
    var = [4.0, 0.25, 1e-16, 2.0]
    cases.append(case("normalization_weights", "Normalization", {"axis": [-1]}, [x],
                      lambda t: normalization(t, [-1], mean, var, False),
                      {"mean": mean, "variance": var, "count": 10.0}))
    cases.append(case("normalization_invert", "Normalization", {"axis": -1, "invert": True}, [x],
                      lambda t: normalization(t, [-1], mean, var, True),
                      {"mean": mean, "variance": var, "count": 0.0}))
    pm = [[0.1 * (i - j) for j in range(3)] for i in range(3)]
    pv = [[0.5 + i + 0.25 * j for j in range(3)] for i in range(3)]
    cases.append(case("normalization_per_pixel", "Normalization", {"axis": [1, 2]}, [x],
                      lambda t: normalization(t, [1, 2], pm, pv, False),
                      {"mean": pm, "variance": pv, "count": 0.0}))
    cases.append(case("normalization_given", "Normalization", {"axis": None, "mean": 1.5, "variance": 0.64}, [x],
                      lambda t: normalization(t, [], 1.5, 0.64, False)))
    cases.append(case("normalization_given_channels", "Normalization",
                      {"axis": -1, "mean": mean, "variance": [1.0, 9.0, 0.04, 2.25]}, [x],
                      lambda t: normalization(t, [-1], mean, [1.0, 9.0, 0.04, 2.25], False)))

    cases.append(case("rescaling", "Rescaling", {"scale": 1.0 / 255, "offset": -0.5}, [x], lambda t: t * (1.0 / 255) + -0.5))
    cases.append(case("softmax_axis1", "Softmax", {"axis": 1}, [x], lambda t: torch.softmax(t, dim=1)))
    cases.append(case("softmax_last", "Softmax", {}, [x], lambda t: torch.softmax(t, dim=-1)))
    x2 = values([2, 3, 3, 2], 2)
    cases.append(case("concatenate_channels", "Concatenate", {}, [x, x2], lambda a, b: torch.cat([a, b], dim=-1)))
    x3 = values([2, 1, 3, 4], 3)
    cases.append(case("concatenate_rows", "Concatenate", {"axis": 1}, [x, x3], lambda a, b: torch.cat([a, b], dim=1)))

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, len(cases), "cases")


if __name__ == "__main__":
    main()
