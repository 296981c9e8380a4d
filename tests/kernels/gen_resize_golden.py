"""Golden values for reskit's resize kernel (src/kernels/ref/resize.cpp), written independently from
TensorFlow's definitions of tf.image.resize (TF2, antialias=False) in numpy.

Regenerate with:  /usr/bin/python3 tests/kernels/gen_resize_golden.py
(writes tests/kernels/resize_golden.h, read by tests/kernels/test_resize.cpp).

The facts (TensorFlow core/kernels/image/*.cc; tf.image.resize calls these ops for TF2):
  scale = float32(in) / float32(out), coordinates in float32.
  bilinear  resize_bilinear(half_pixel_centers=True): in = (o + 0.5) * scale - 0.5;
            lower = max(floor(in), 0), upper = min(ceil(in), in_size - 1), lerp = in - floor(in);
            top + (bottom - top) * lerp along x, then along y.
  nearest   resize_nearest_neighbor(half_pixel_centers=True): i = max(min(floor((o + 0.5) * scale),
            in_size - 1), 0).
  bicubic   resize_bicubic(half_pixel_centers=True): in = (o + 0.5) * scale - 0.5, loc = floor(in),
            offset = lrintf((in - loc) * 1024); weights from the Keys (a = -0.5) table at distances
            offset/1024 (+1) and (1024 - offset)/1024 (+1); a tap outside [0, in_size) gets 0 and the
            four are renormalised (float32) to sum 1; first the columns, then the rows (here both
            directions at once: the value is the same up to rounding).
  area      resize_area: box [o * scale, (o + 1) * scale), cell i covers (i < start ? (i + 1 > end ?
            scale : i + 1 - start) : (i + 1 > end ? end - i : 1)), indices clamped; the sum times
            1 / (scale_y * scale_x).
  Keras smart_resize (crop_to_aspect_ratio): crop_h = int(float32(w * th) / tw), crop_w = int(float32(
  h * tw) / th), each min'd with the image and at least 1; start = int(float32(h - crop_h) / 2).
Inputs: x[i] = ((37 i + 11) mod 97) / 16 - 3 over the flat NHWC index (exact in float32).
"""
import os

import numpy as np

F = np.float32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resize_golden.h")


def image(h, w, c):
    i = np.arange(h * w * c, dtype=np.int64)
    return (((37 * i + 11) % 97) / 16.0 - 3.0).reshape(h, w, c)


def keys_table():
    a = -0.5
    t = np.zeros((1025, 2), dtype=np.float32)
    for i in range(1025):
        x = F(i * 1.0 / 1024)
        t[i, 0] = F(((a + 2) * float(x) - (a + 3)) * float(x) * float(x) + 1)
        x = F(x + F(1.0))
        t[i, 1] = F(((a * float(x) - 5 * a) * float(x) + 8 * a) * float(x) - 4 * a)
    return t


TABLE = keys_table()


def bilinear(x, oh, ow):
    h, w, _ = x.shape
    sy, sx = F(h) / F(oh), F(w) / F(ow)

    def coords(o, scale, n):
        pos = (F(o) + F(0.5)) * scale - F(0.5)
        fl = np.floor(pos)
        return max(int(fl), 0), min(int(np.ceil(pos)), n - 1), float(pos - fl)

    y = np.zeros((oh, ow, x.shape[2]))
    for r in range(oh):
        top, bottom, ly = coords(r, sy, h)
        for c in range(ow):
            left, right, lx = coords(c, sx, w)
            t = x[top, left] + (x[top, right] - x[top, left]) * lx
            b = x[bottom, left] + (x[bottom, right] - x[bottom, left]) * lx
            y[r, c] = t + (b - t) * ly
    return y


def nearest(x, oh, ow):
    h, w, _ = x.shape
    sy, sx = F(h) / F(oh), F(w) / F(ow)
    rows = [max(min(int(np.floor((F(r) + F(0.5)) * sy)), h - 1), 0) for r in range(oh)]
    cols = [max(min(int(np.floor((F(c) + F(0.5)) * sx)), w - 1), 0) for c in range(ow)]
    return x[rows][:, cols]


def cubic_weights(o, scale, n):
    pos = (F(o) + F(0.5)) * scale - F(0.5)
    loc = int(np.floor(pos))
    delta = F(pos - F(loc))
    off = int(np.rint(F(delta * F(1024))))
    coeff = [TABLE[off, 1], TABLE[off, 0], TABLE[1024 - off, 0], TABLE[1024 - off, 1]]
    idx, wts = [], []
    for k in range(4):
        i = loc - 1 + k
        inside = 0 <= i < n
        idx.append(min(max(i, 0), n - 1))
        wts.append(coeff[k] if inside else F(0))
    s = F(wts[0] + wts[1] + wts[2] + wts[3])
    if abs(s) >= 1000 * np.finfo(np.float32).tiny:
        inv = F(F(1) / s)
        wts = [F(v * inv) for v in wts]
    return idx, [float(v) for v in wts]


def bicubic(x, oh, ow):
    h, w, _ = x.shape
    sy, sx = F(h) / F(oh), F(w) / F(ow)
    y = np.zeros((oh, ow, x.shape[2]))
    for r in range(oh):
        ri, rw = cubic_weights(r, sy, h)
        for c in range(ow):
            ci, cw = cubic_weights(c, sx, w)
            y[r, c] = sum(rw[a] * sum(cw[b] * x[ri[a], ci[b]] for b in range(4)) for a in range(4))
    return y


def area_cells(o, scale, n):
    start, end = F(o) * scale, F(o + 1) * scale
    cells = []
    for i in range(int(np.floor(start)), int(np.ceil(end))):
        fi = F(i)
        if fi < start:
            cover = scale if fi + 1 > end else F(fi + 1 - start)
        else:
            cover = F(end - fi) if fi + 1 > end else F(1)
        cells.append((min(max(i, 0), n - 1), float(cover)))
    return cells


def area(x, oh, ow):
    h, w, _ = x.shape
    sy, sx = F(h) / F(oh), F(w) / F(ow)
    y = np.zeros((oh, ow, x.shape[2]))
    for r in range(oh):
        for c in range(ow):
            total = sum(cy * sum(cx * x[iy, ix] for ix, cx in area_cells(c, sx, w)) for iy, cy in area_cells(r, sy, h))
            y[r, c] = total * (1.0 / (float(sy) * float(sx)))
    return y


def crop_box(h, w, th, tw):
    rows = max(min(h, int(F(w * th) / F(tw))), 1)
    cols = max(min(w, int(F(h * tw) / F(th))), 1)
    return int(F(h - rows) / F(2)), int(F(w - cols) / F(2)), rows, cols


METHODS = {"bilinear": bilinear, "nearest": nearest, "bicubic": bicubic, "area": area}
# (method, H, W, C, P, Q, crop to the P x Q aspect ratio)
CASES = [
    ("bilinear", 5, 7, 2, 3, 4, False),
    ("bilinear", 5, 7, 2, 9, 11, False),
    ("bilinear", 1, 3, 1, 2, 5, False),
    ("nearest", 5, 7, 2, 3, 4, False),
    ("nearest", 5, 7, 2, 8, 13, False),
    ("bicubic", 5, 7, 2, 3, 4, False),
    ("bicubic", 5, 7, 2, 9, 11, False),
    ("bicubic", 6, 6, 1, 7, 5, False),
    ("area", 5, 7, 2, 3, 4, False),
    ("area", 5, 7, 2, 8, 9, False),
    ("area", 9, 6, 3, 4, 4, False),
    ("bilinear", 6, 10, 1, 4, 4, True),
    ("bicubic", 11, 5, 2, 3, 6, True),
]
# Crop boxes alone: (H, W, target H, target W)
BOXES = [(6, 10, 4, 4), (11, 5, 3, 6), (480, 640, 224, 224), (7, 7, 3, 5), (3, 1000, 1000, 1), (5, 5, 5, 5)]


def main():
    out = ["// Written by tests/kernels/gen_resize_golden.py (numpy, TensorFlow's definitions); do not edit.",
           "#pragma once", "", "#include <cstdint>", "#include <vector>", "", "namespace resize_golden {", "",
           "struct Case {", "  const char* method;", "  std::int64_t h, w, c, p, q;", "  bool crop;",
           "  std::int64_t top, left, rows, cols;", "  std::vector<double> y;", "};", "",
           "inline const std::vector<Case>& cases() {", "  static const std::vector<Case> all = {"]
    for method, h, w, c, p, q, crop in CASES:
        x = image(h, w, c)
        top, left, rows, cols = crop_box(h, w, p, q) if crop else (0, 0, h, w)
        y = METHODS[method](x[top:top + rows, left:left + cols], p, q)
        values = ", ".join(repr(float(v)) for v in y.reshape(-1))
        out.append(f'      {{"{method}", {h}, {w}, {c}, {p}, {q}, {"true" if crop else "false"}, {top}, {left}, '
                   f"{rows}, {cols}, {{{values}}}}},")
    out += ["  };", "  return all;", "}", "", "struct Box {", "  std::int64_t h, w, th, tw, top, left, rows, cols;",
            "};", "", "inline const std::vector<Box>& boxes() {", "  static const std::vector<Box> all = {"]
    for h, w, th, tw in BOXES:
        top, left, rows, cols = crop_box(h, w, th, tw)
        out.append(f"      {{{h}, {w}, {th}, {tw}, {top}, {left}, {rows}, {cols}}},")
    out += ["  };", "  return all;", "}", "", "}  // namespace resize_golden", ""]
    with open(OUT, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
