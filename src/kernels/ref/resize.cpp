// Reference tf.image.resize (kernels/image.h states each method's definition). Every method is
// separable: for each output row and column, a list of (input index, weight) taps along that axis,
// computed in float32 as TensorFlow's kernels compute them (resize_bilinear_op, resize_nearest_
// neighbor_op, resize_bicubic_op, resize_area_op); the output is the sum over row taps × column
// taps. The backward is the same sum scattered (the adjoint).
#include "kernels/ref/resize.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "reskit/error.h"

namespace reskit::kernels {

namespace {

struct Tap {
  std::int64_t index;
  double weight;
};

// Taps of output positions 0..out−1: taps[first[o] .. first[o + 1]).
struct AxisTaps {
  std::vector<std::int64_t> first;
  std::vector<Tap> taps;
};

std::int64_t bound(std::int64_t i, std::int64_t limit) {
  return std::min(limit - 1, std::max<std::int64_t>(0, i));
}

// TF's Keys cubic table (resize_bicubic_op.cc): entry 2i is the weight at distance i/1024, entry
// 2i + 1 at distance 1 + i/1024, for a = −0.5.
constexpr int kTableSize = 1024;
const std::array<float, (kTableSize + 1) * 2>& keys_table() {
  static const std::array<float, (kTableSize + 1)* 2> table = [] {
    std::array<float, (kTableSize + 1) * 2> t{};
    const double a = -0.5;
    for (int i = 0; i <= kTableSize; ++i) {
      float x = static_cast<float>(i * 1.0 / kTableSize);
      t[2 * i] = static_cast<float>(((a + 2) * x - (a + 3)) * x * x + 1);
      x += 1.0f;
      t[2 * i + 1] = static_cast<float>(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
    }
    return t;
  }();
  return table;
}

void add_bilinear(AxisTaps& a, std::int64_t o, std::int64_t in, float scale) {
  const float pos = (static_cast<float>(o) + 0.5f) * scale - 0.5f;
  const float pos_floor = std::floor(pos);
  const std::int64_t lower = std::max(static_cast<std::int64_t>(pos_floor), std::int64_t{0});
  const std::int64_t upper = std::min(static_cast<std::int64_t>(std::ceil(pos)), in - 1);
  const float lerp = pos - pos_floor;
  a.taps.push_back({lower, 1.0 - static_cast<double>(lerp)});
  a.taps.push_back({upper, static_cast<double>(lerp)});
}

void add_nearest(AxisTaps& a, std::int64_t o, std::int64_t in, float scale) {
  const float pos = (static_cast<float>(o) + 0.5f) * scale;
  const std::int64_t i = std::min(static_cast<std::int64_t>(std::floor(pos)), in - 1);
  a.taps.push_back({std::max<std::int64_t>(i, 0), 1.0});
}

void add_bicubic(AxisTaps& a, std::int64_t o, std::int64_t in, float scale) {
  const auto& table = keys_table();
  const float pos = (static_cast<float>(o) + 0.5f) * scale - 0.5f;
  const auto loc = static_cast<std::int64_t>(std::floor(pos));
  const float delta = pos - static_cast<float>(loc);
  const long offset = std::lrint(delta * kTableSize);
  const std::array<float, 4> coeff = {table[offset * 2 + 1], table[offset * 2],
                                      table[(kTableSize - offset) * 2], table[(kTableSize - offset) * 2 + 1]};
  std::array<float, 4> weight{};
  std::array<std::int64_t, 4> index{};
  float sum = 0.0f;
  for (int k = 0; k < 4; ++k) {
    index[k] = bound(loc - 1 + k, in);
    weight[k] = index[k] == loc - 1 + k ? coeff[k] : 0.0f;
    sum += weight[k];
  }
  if (std::abs(sum) >= 1000.0f * std::numeric_limits<float>::min()) {
    const float inv = 1.0f / sum;
    for (float& w : weight) w *= inv;
  }
  for (int k = 0; k < 4; ++k) a.taps.push_back({index[k], static_cast<double>(weight[k])});
}

void add_area(AxisTaps& a, std::int64_t o, std::int64_t in, float scale) {
  const float begin = static_cast<float>(o) * scale;
  const float end = static_cast<float>(o + 1) * scale;
  const auto first = static_cast<std::int64_t>(std::floor(begin));
  const auto last = static_cast<std::int64_t>(std::ceil(end));
  for (std::int64_t i = first; i < last; ++i) {
    const auto fi = static_cast<float>(i);
    float cover;
    if (fi < begin) {
      cover = fi + 1 > end ? scale : fi + 1 - begin;
    } else {
      cover = fi + 1 > end ? end - fi : 1.0f;
    }
    a.taps.push_back({bound(i, in), static_cast<double>(cover) / static_cast<double>(scale)});
  }
}

AxisTaps axis_taps(ResizeMethod method, std::int64_t in, std::int64_t out) {
  AxisTaps a;
  a.first.reserve(static_cast<std::size_t>(out + 1));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (std::int64_t o = 0; o < out; ++o) {
    a.first.push_back(static_cast<std::int64_t>(a.taps.size()));
    switch (method) {
      case ResizeMethod::bilinear:
        add_bilinear(a, o, in, scale);
        break;
      case ResizeMethod::nearest:
        add_nearest(a, o, in, scale);
        break;
      case ResizeMethod::bicubic:
        add_bicubic(a, o, in, scale);
        break;
      case ResizeMethod::area:
        add_area(a, o, in, scale);
        break;
    }
  }
  a.first.push_back(static_cast<std::int64_t>(a.taps.size()));
  return a;
}

struct Window {
  std::int64_t top, left, rows, cols;
};

Window checked_window(const ResizeParams& p) {
  const Window win{p.top, p.left, p.rows == 0 ? p.h : p.rows, p.cols == 0 ? p.w : p.cols};
  if (p.n < 0 || p.c < 0 || p.h < 1 || p.w < 1 || p.p < 1 || p.q < 1) {
    throw ShapeError("resize: expected an input of at least 1x1 and an output of at least 1x1, got input " +
                     std::to_string(p.h) + "x" + std::to_string(p.w) + " and output " + std::to_string(p.p) +
                     "x" + std::to_string(p.q));
  }
  if (win.top < 0 || win.left < 0 || win.rows < 1 || win.cols < 1 || win.top + win.rows > p.h ||
      win.left + win.cols > p.w) {
    throw ShapeError("resize: expected a window inside the " + std::to_string(p.h) + "x" +
                     std::to_string(p.w) + " image, got rows [" + std::to_string(win.top) + ", " +
                     std::to_string(win.top + win.rows) + ") and columns [" + std::to_string(win.left) +
                     ", " + std::to_string(win.left + win.cols) + ")");
  }
  return win;
}

}  // namespace

// y[N,P,Q,C] = Σ_row taps Σ_column taps wr·wc·x[N, top + ir, left + ic, C]
template <class T>
void resize_forward(const ResizeParams& p, const T* x, T* y) {
  const Window win = checked_window(p);
  const AxisTaps rows = axis_taps(p.method, win.rows, p.p), cols = axis_taps(p.method, win.cols, p.q);
  std::vector<double> acc(static_cast<std::size_t>(p.c));
  for (std::int64_t n = 0; n < p.n; ++n) {
    const T* image = x + n * p.h * p.w * p.c;
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (std::int64_t tr = rows.first[op]; tr < rows.first[op + 1]; ++tr) {
          const Tap r = rows.taps[tr];
          for (std::int64_t tc = cols.first[oq]; tc < cols.first[oq + 1]; ++tc) {
            const Tap s = cols.taps[tc];
            const double w = r.weight * s.weight;
            const T* px = image + ((win.top + r.index) * p.w + win.left + s.index) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) acc[c] += w * static_cast<double>(px[c]);
          }
        }
        T* out = y + ((n * p.p + op) * p.q + oq) * p.c;
        for (std::int64_t c = 0; c < p.c; ++c) out[c] = static_cast<T>(acc[c]);
      }
  }
}

// dx[N,H,W,C] = Σ over the outputs that read a pixel of weight·dy (0 where none does)
template <class T>
void resize_backward(const ResizeParams& p, const T* dy, T* dx) {
  const Window win = checked_window(p);
  const AxisTaps rows = axis_taps(p.method, win.rows, p.p), cols = axis_taps(p.method, win.cols, p.q);
  const std::int64_t image_size = p.h * p.w * p.c;
  std::vector<double> acc(static_cast<std::size_t>(image_size));
  for (std::int64_t n = 0; n < p.n; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        const T* g = dy + ((n * p.p + op) * p.q + oq) * p.c;
        for (std::int64_t tr = rows.first[op]; tr < rows.first[op + 1]; ++tr) {
          const Tap r = rows.taps[tr];
          for (std::int64_t tc = cols.first[oq]; tc < cols.first[oq + 1]; ++tc) {
            const Tap s = cols.taps[tc];
            const double w = r.weight * s.weight;
            double* px = acc.data() + ((win.top + r.index) * p.w + win.left + s.index) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) px[c] += w * static_cast<double>(g[c]);
          }
        }
      }
    T* out = dx + n * image_size;
    for (std::int64_t i = 0; i < image_size; ++i) out[i] = static_cast<T>(acc[i]);
  }
}

CropBox resize_crop_box(std::int64_t h, std::int64_t w, std::int64_t target_h, std::int64_t target_w) {
  if (h < 1 || w < 1 || target_h < 1 || target_w < 1) {
    throw ShapeError("resize_crop_box: expected an image and a target of at least 1x1, got " +
                     std::to_string(h) + "x" + std::to_string(w) + " and " + std::to_string(target_h) + "x" +
                     std::to_string(target_w));
  }
  // Keras: tf.cast(tf.cast(width * target_height, "float32") / target_width, "int32") (truncation).
  const auto crop_rows =
      static_cast<std::int64_t>(static_cast<float>(w * target_h) / static_cast<float>(target_w));
  const auto crop_cols =
      static_cast<std::int64_t>(static_cast<float>(h * target_w) / static_cast<float>(target_h));
  CropBox box;
  box.rows = std::max<std::int64_t>(std::min(h, crop_rows), 1);
  box.cols = std::max<std::int64_t>(std::min(w, crop_cols), 1);
  box.top = static_cast<std::int64_t>(static_cast<float>(h - box.rows) / 2.0f);
  box.left = static_cast<std::int64_t>(static_cast<float>(w - box.cols) / 2.0f);
  return box;
}

namespace ref {

void resize_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y) {
  const std::vector<float> in(x, x + p.n * p.h * p.w * p.c);
  std::vector<float> out(static_cast<std::size_t>(p.n * p.p * p.q * p.c));
  resize_forward(p, in.data(), out.data());
  for (std::size_t i = 0; i < out.size(); ++i)
    y[i] = static_cast<std::uint8_t>(std::clamp(std::nearbyint(out[i]), 0.0f, 255.0f));
}

}  // namespace ref

template void resize_forward<float>(const ResizeParams&, const float*, float*);
template void resize_forward<double>(const ResizeParams&, const double*, double*);
template void resize_backward<float>(const ResizeParams&, const float*, float*);
template void resize_backward<double>(const ResizeParams&, const double*, double*);

}  // namespace reskit::kernels
