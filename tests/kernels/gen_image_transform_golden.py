"""Golden values for reskit's projective transform kernel (src/kernels/ref/image_transform.cpp), written
independently in numpy from TensorFlow's definition of ImageProjectiveTransformV3 (what Keras's
RandomRotation, RandomZoom and RandomTranslation call) and Keras's transform matrices.

Regenerate with:  /usr/bin/python3 tests/kernels/gen_image_transform_golden.py
(writes tests/kernels/image_transform_golden.h, read by tests/kernels/test_image_transform.cpp).

The facts (tensorflow/core/kernels/image/image_ops.h; keras/layers/preprocessing/image_preprocessing.py):
  For output pixel (x = column, y = row): k = c0 x + c1 y + 1 (k == 0: fill_value);
  x_in = (a0 x + a1 y + a2) / k, y_in = (b0 x + b1 y + b2) / k, in float32.
  Fill modes map each coordinate (len = that axis's size):
    reflect  c < 0: len <= 1 -> 0; else sz2 = 2 len; if c < sz2: c = sz2 * trunc(-c / sz2) + c;
                    c = c + sz2 if c < -len else -c - 1
             c > len - 1: len <= 1 -> 0; else c -= sz2 * trunc(c / sz2); if c >= len: c = sz2 - c - 1
             then clamp to [0, len - 1]
    wrap     c < 0: c += len * (trunc(-c / (len - 1)) + 1); c > len - 1: c -= len * trunc(c / (len - 1));
             clamp (len <= 1 -> 0)
    constant unchanged;  nearest: clamp to [0, len - 1]
  nearest interpolation reads (round(y), round(x)), half away from zero; bilinear reads floor and
  floor + 1 on each axis with weights (ceil - c) and (c - floor); any pixel outside the image reads
  fill_value.
  Keras rotation (angle a): [cos, -sin, x_off, sin, cos, y_off, 0, 0], x_off = ((W-1) - (cos (W-1) -
  sin (H-1))) / 2, y_off = ((H-1) - (sin (W-1) + cos (H-1))) / 2; zoom (zx, zy): [zx, 0, (W-1)/2 (1-zx),
  0, zy, (H-1)/2 (1-zy), 0, 0]; translation (dx, dy): [1, 0, -dx, 0, 1, -dy, 0, 0].
Inputs: x[i] = ((37 i + 11) mod 97) / 16 - 3 over the flat NHWC index; fill_value 0.5.
"""
import math
import os

import numpy as np

F = np.float32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image_transform_golden.h")
H, W, C = 5, 6, 2
FILL = 0.5


def image():
    i = np.arange(H * W * C, dtype=np.int64)
    return (((37 * i + 11) % 97) / 16.0 - 3.0).reshape(H, W, C)


def clamp(c, n):
    return F(min(max(c, F(0)), F(n - 1)))


def map_coord(mode, c, n):
    c = F(c)
    if mode == "reflect":
        if c < 0:
            if n <= 1:
                c = F(0)
            else:
                sz2 = 2 * n
                if c < sz2:
                    c = F(F(sz2 * int(-c / F(sz2))) + c)
                c = F(c + F(sz2)) if c < -n else F(-c - F(1))
        elif c > n - 1:
            if n <= 1:
                c = F(0)
            else:
                sz2 = 2 * n
                c = F(c - F(sz2 * int(c / F(sz2))))
                if c >= n:
                    c = F(F(sz2) - c - F(1))
        return clamp(c, n)
    if mode == "wrap":
        if c < 0:
            if n <= 1:
                c = F(0)
            else:
                c = F(c + F(n * (int(-c / F(n - 1)) + 1)))
        elif c > n - 1:
            if n <= 1:
                c = F(0)
            else:
                c = F(c - F(n * int(c / F(n - 1))))
        return clamp(c, n)
    if mode == "constant":
        return c
    return clamp(c, n)


def read(x, r, c):
    return x[r, c] if 0 <= r < H and 0 <= c < W else np.full(C, FILL)


def round_half_away(v):
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def transform(x, t, mode, interp):
    t = [F(v) for v in t]
    y = np.zeros((H, W, C))
    for row in range(H):
        for col in range(W):
            ox, oy = F(col), F(row)
            k = F(F(t[6] * ox) + F(t[7] * oy) + F(1))
            if k == 0:
                y[row, col] = FILL
                continue
            xin = F(F(F(t[0] * ox) + F(t[1] * oy) + t[2]) / k)
            yin = F(F(F(t[3] * ox) + F(t[4] * oy) + t[5]) / k)
            xm, ym = map_coord(mode, xin, W), map_coord(mode, yin, H)
            if interp == "nearest":
                y[row, col] = read(x, round_half_away(float(ym)), round_half_away(float(xm)))
                continue
            yf, xf = math.floor(ym), math.floor(xm)
            wy1, wx1 = float(ym) - yf, float(xm) - xf
            wy0, wx0 = 1.0 - wy1, 1.0 - wx1
            top = wx0 * read(x, yf, xf) + wx1 * read(x, yf, xf + 1)
            bottom = wx0 * read(x, yf + 1, xf) + wx1 * read(x, yf + 1, xf + 1)
            y[row, col] = wy0 * top + wy1 * bottom
    return y


def rotation(a):
    c, s = F(math.cos(a)), F(math.sin(a))
    w1, h1 = F(W - 1), F(H - 1)
    return [c, -s, (w1 - (c * w1 - s * h1)) / F(2), s, c, (h1 - (s * w1 + c * h1)) / F(2), 0, 0]


def zoom(zx, zy):
    zx, zy = F(zx), F(zy)
    return [zx, 0, (F(W - 1) / F(2)) * (F(1) - zx), 0, zy, (F(H - 1) / F(2)) * (F(1) - zy), 0, 0]


def translation(dx, dy):
    return [1, 0, -F(dx), 0, 1, -F(dy), 0, 0]


TRANSFORMS = [
    ("rotation 0.7", rotation(0.7)),
    ("rotation -2.5", rotation(-2.5)),
    ("zoom 1.6 0.55", zoom(1.6, 0.55)),
    ("translation 3.3 -2.6", translation(3.3, -2.6)),
    ("translation -13.5 9.25", translation(-13.5, 9.25)),
    ("projective", [0.9, 0.2, -1.5, -0.1, 1.1, 0.7, 0.03, -0.05]),
]


def main():
    x = image()
    out = ["// Written by tests/kernels/gen_image_transform_golden.py (numpy, TensorFlow's definitions); do not edit.",
           "#pragma once", "", "#include <cstdint>", "#include <vector>", "", "namespace image_transform_golden {", "",
           f"constexpr std::int64_t kH = {H}, kW = {W}, kC = {C};", f"constexpr double kFill = {FILL};", "",
           "struct Case {", "  const char* name;", "  const char* fill_mode;", "  const char* interpolation;",
           "  std::vector<float> transform;", "  std::vector<double> y;", "};", "",
           "inline const std::vector<Case>& cases() {", "  static const std::vector<Case> all = {"]
    for name, t in TRANSFORMS:
        for mode in ["reflect", "wrap", "constant", "nearest"]:
            for interp in ["bilinear", "nearest"]:
                y = transform(x, t, mode, interp)
                ts = ", ".join(repr(float(F(v))) + "f" for v in t)
                values = ", ".join(repr(float(v)) for v in y.reshape(-1))
                out.append(f'      {{"{name}", "{mode}", "{interp}", {{{ts}}}, {{{values}}}}},')
    out += ["  };", "  return all;", "}", "", "}  // namespace image_transform_golden", ""]
    with open(OUT, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
