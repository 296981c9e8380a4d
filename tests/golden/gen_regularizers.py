"""Golden values for reskit's regularizers and constraints, from an independent implementation
(PyTorch autograd, float64).

Regenerate with:  /usr/bin/python3 tests/golden/gen_regularizers.py
(Debian's python3-torch; writes tests/golden/fixtures/regularizers.json, which
tests/unit/test_regularizers.cpp reads.)

The model, as Keras would build it (NHWC, channels last):
  x (3, 4, 4, 2) -> Conv2D "conv" 3 filters 2x2 "valid", relu,
                      kernel_regularizer L1L2(l1=0.003, l2=0.02), bias_regularizer L1(0.01),
                      activity_regularizer L2(0.005), kernel_constraint MaxNorm(0.5, axis=[0, 1, 2])
                 -> BatchNormalization "bn", gamma_regularizer L2(0.02), beta_regularizer L1(0.01),
                      gamma_constraint NonNeg
                 -> Flatten -> Dense "fc" 4 softmax, kernel_regularizer L2(0.01),
                      activity_regularizer L2(0.05), kernel_constraint UnitNorm(axis=0),
                      bias_constraint MinMaxNorm(0.1, 0.3, rate=0.5, axis=0)
One training step (Keras 2.x semantics):
  - loss = categorical cross-entropy (mean over the batch, from the softmax's logits)
         + Σ weight penalties (l1·Σ|w| + l2·Σw², no 1/2)
         + Σ activity penalties of the layers' outputs (after the activation) / batch size;
    the reported loss is that total, taken before the update;
  - gradients of the total (autograd), then Adam (lr 0.01, β1 0.9, β2 0.999, ε 1e-7, Keras's
    "epsilon hat" form: θ ← θ − lr·sqrt(1 − β2^t)/(1 − β1^t)·m/(sqrt(v) + ε));
  - then each constraint on its updated weight (norms over the axes, ε = 1e-7):
      MaxNorm w·clip(n, 0, max)/(ε + n); NonNeg w·(w >= 0); UnitNorm w/(ε + n);
      MinMaxNorm w·(rate·clip(n, min, max) + (1 − rate)·n)/(ε + n).
BatchNormalization trains on the batch statistics (biased variance) and moves its moving
statistics by momentum 0.99 with the unbiased variance (as reskit does). After the step the
script evaluates the same batch in inference mode (moving statistics); Keras's evaluate
includes the regularization losses too (test_step passes model.losses), with the activity
penalties of the inference outputs.

Fixture (JSON): "x", "y" (nested lists), "weights" (Keras name -> nested list, before the step),
"loss" (the step's reported loss), "data_loss" (the cross-entropy alone), "after" (Keras name ->
weights after the step and the constraints), "eval_loss" (the inference loss after the step).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "regularizers.json")
EPS = 1e-7


def l1l2(w, l1, l2):
    return l1 * w.abs().sum() + l2 * (w * w).sum()


def norms(w, axes):
    return torch.sqrt((w * w).sum(dim=axes, keepdim=True))


def max_norm(w, max_value, axes):
    n = norms(w, axes)
    return w * (torch.clamp(n, 0, max_value) / (EPS + n))


def unit_norm(w, axes):
    return w / (EPS + norms(w, axes))


def min_max_norm(w, lo, hi, rate, axes):
    n = norms(w, axes)
    desired = rate * torch.clamp(n, lo, hi) + (1 - rate) * n
    return w * (desired / (EPS + n))


def non_neg(w):
    return w * (w >= 0).to(w.dtype)


def forward(p, x, training, stats):
    """Returns (logits, conv output, fc output); x NHWC."""
    xc = x.permute(0, 3, 1, 2)
    k = p["conv/kernel:0"].permute(3, 2, 0, 1)  # HWIO -> OIHW
    conv = F.relu(F.conv2d(xc, k, p["conv/bias:0"]))  # (N, C, H, W)
    if training:
        mean = conv.mean(dim=(0, 2, 3))
        var = conv.var(dim=(0, 2, 3), unbiased=False)
        n = conv.numel() / conv.shape[1]
        stats["mean"] = mean.detach()
        stats["var_unbiased"] = (var * n / (n - 1)).detach()
    else:
        mean, var = p["bn/moving_mean:0"], p["bn/moving_variance:0"]
    shape = (1, -1, 1, 1)
    bn = (conv - mean.view(shape)) / torch.sqrt(var.view(shape) + 1e-3) * p["bn/gamma:0"].view(shape) + \
        p["bn/beta:0"].view(shape)
    flat = bn.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flattens (h, w, c)
    logits = flat @ p["fc/kernel:0"] + p["fc/bias:0"]
    return logits, conv.permute(0, 2, 3, 1), torch.softmax(logits, dim=1)


def total_loss(p, x, y, training, stats):
    logits, conv_out, fc_out = forward(p, x, training, stats)
    data = -(y * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    n = x.shape[0]
    reg = (l1l2(p["conv/kernel:0"], 0.003, 0.02) + l1l2(p["conv/bias:0"], 0.01, 0.0) +
           l1l2(p["bn/gamma:0"], 0.0, 0.02) + l1l2(p["bn/beta:0"], 0.01, 0.0) +
           l1l2(p["fc/kernel:0"], 0.0, 0.01))
    activity = l1l2(conv_out, 0.0, 0.005) / n + l1l2(fc_out, 0.0, 0.05) / n
    return data + reg + activity, data


def main():
    rng = np.random.default_rng(20261203)
    x = rng.uniform(-1, 1, size=(3, 4, 4, 2))
    y = np.eye(4)[[1, 3, 0]]
    w = {
        "conv/kernel:0": rng.uniform(-0.5, 0.5, size=(2, 2, 2, 3)),
        "conv/bias:0": rng.uniform(-0.1, 0.1, size=(3,)),
        "bn/gamma:0": np.array([1.1, -0.02, 0.9]),  # one step (±0.01) keeps the middle one < 0: NonNeg
        "bn/beta:0": rng.uniform(-0.1, 0.1, size=(3,)),
        "bn/moving_mean:0": rng.uniform(-0.1, 0.1, size=(3,)),
        "bn/moving_variance:0": rng.uniform(0.8, 1.2, size=(3,)),
        "fc/kernel:0": rng.uniform(-0.3, 0.3, size=(27, 4)),
        "fc/bias:0": rng.uniform(-0.5, 0.5, size=(4,)),  # norm above MinMaxNorm's 0.3
    }
    trainable = ["conv/kernel:0", "conv/bias:0", "bn/gamma:0", "bn/beta:0", "fc/kernel:0", "fc/bias:0"]
    p = {k: torch.tensor(v, requires_grad=k in trainable) for k, v in w.items()}
    xt, yt = torch.tensor(x), torch.tensor(y)
    stats = {}
    loss, data = total_loss(p, xt, yt, True, stats)
    loss.backward()

    lr, b1, b2, t = 0.01, 0.9, 0.999, 1
    alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    after = {}
    with torch.no_grad():
        for k in trainable:
            g = p[k].grad
            m = (1 - b1) * g
            v = (1 - b2) * g * g
            after[k] = p[k] - alpha * m / (torch.sqrt(v) + EPS)
        assert float(norms(after["conv/kernel:0"], (0, 1, 2)).max()) > 0.5, "MaxNorm must clip"
        assert float(norms(after["fc/bias:0"], (0,))) > 0.3, "MinMaxNorm must clip"
        after["conv/kernel:0"] = max_norm(after["conv/kernel:0"], 0.5, (0, 1, 2))
        after["bn/gamma:0"] = non_neg(after["bn/gamma:0"])
        after["fc/kernel:0"] = unit_norm(after["fc/kernel:0"], (0,))
        after["fc/bias:0"] = min_max_norm(after["fc/bias:0"], 0.1, 0.3, 0.5, (0,))
        after["bn/moving_mean:0"] = 0.99 * p["bn/moving_mean:0"] + 0.01 * stats["mean"]
        after["bn/moving_variance:0"] = 0.99 * p["bn/moving_variance:0"] + 0.01 * stats["var_unbiased"]
        assert float(after["bn/gamma:0"][1]) == 0.0, "the NonNeg case must clip"
        eval_loss, _ = total_loss(after, xt, yt, False, {})

    out = {
        "x": x.tolist(),
        "y": y.tolist(),
        "weights": {k: v.tolist() for k, v in w.items()},
        "loss": float(loss),
        "data_loss": float(data),
        "after": {k: v.detach().numpy().tolist() for k, v in after.items()},
        "eval_loss": float(eval_loss),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", OUT, "loss", out["loss"], "data_loss", out["data_loss"], "eval_loss", out["eval_loss"])


if __name__ == "__main__":
    main()
