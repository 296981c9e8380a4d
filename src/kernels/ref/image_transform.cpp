// Reference image kernels of the augmentation layers (kernels/image.h states each definition):
// TF's projective transform with its fill modes (tensorflow/core/kernels/image/image_ops.h's
// MapCoordinate and ProjectiveGenerator, rewritten here), flips, crops and contrast. Every output
// value is a weighted sum of input pixels (plus fill_value), so each backward scatters the same
// weights: the adjoint.
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels {

namespace {

// TF's MapCoordinate for one fill mode: an input coordinate outside [0, len − 1] mapped back.
float map_coordinate(FillMode mode, float in, std::int64_t len) {
  switch (mode) {
    case FillMode::reflect:
      if (in < 0) {
        if (len <= 1) {
          in = 0;
        } else {
          const std::int64_t sz2 = 2 * len;
          if (in < static_cast<float>(sz2)) {
            in = static_cast<float>(sz2 * static_cast<std::int64_t>(-in / static_cast<float>(sz2))) + in;
          }
          in = (in < static_cast<float>(-len)) ? in + static_cast<float>(sz2) : -in - 1;
        }
      } else if (in > static_cast<float>(len - 1)) {
        if (len <= 1) {
          in = 0;
        } else {
          const std::int64_t sz2 = 2 * len;
          in -= static_cast<float>(sz2 * static_cast<std::int64_t>(in / static_cast<float>(sz2)));
          if (in >= static_cast<float>(len)) in = static_cast<float>(sz2) - in - 1;
        }
      }
      return std::min(std::max(in, 0.0f), static_cast<float>(len - 1));
    case FillMode::wrap:
      if (in < 0) {
        if (len <= 1) {
          in = 0;
        } else {
          const std::int64_t sz = len - 1;
          in += static_cast<float>(len * (static_cast<std::int64_t>(-in / static_cast<float>(sz)) + 1));
        }
      } else if (in > static_cast<float>(len - 1)) {
        if (len <= 1) {
          in = 0;
        } else {
          const std::int64_t sz = len - 1;
          in -= static_cast<float>(len * static_cast<std::int64_t>(in / static_cast<float>(sz)));
        }
      }
      return std::min(std::max(in, 0.0f), static_cast<float>(len - 1));
    case FillMode::constant:
      return in;
    case FillMode::nearest:
      return std::min(std::max(in, 0.0f), static_cast<float>(len - 1));
  }
  return in;
}

// The input pixels (flat index of the pixel, −1 outside the image: fill_value) and weights that
// output pixel (row, col) of an image reads; at most four.
struct Sample {
  int count = 0;
  std::int64_t pixel[4] = {0, 0, 0, 0};
  double weight[4] = {0, 0, 0, 0};
};

Sample sample_at(const TransformParams& p, const float* t, std::int64_t row, std::int64_t col) {
  Sample s;
  const auto ox = static_cast<float>(col), oy = static_cast<float>(row);
  const float k = t[6] * ox + t[7] * oy + 1.f;
  if (k == 0) {
    s.count = 1;
    s.pixel[0] = -1;
    s.weight[0] = 1.0;
    return s;
  }
  const float x = map_coordinate(p.fill_mode, (t[0] * ox + t[1] * oy + t[2]) / k, p.w);
  const float y = map_coordinate(p.fill_mode, (t[3] * ox + t[4] * oy + t[5]) / k, p.h);
  auto add = [&](std::int64_t r, std::int64_t c, double weight) {
    const bool inside = 0 <= r && r < p.h && 0 <= c && c < p.w;
    s.pixel[s.count] = inside ? r * p.w + c : -1;
    s.weight[s.count] = weight;
    ++s.count;
  };
  if (p.interpolation == Interpolation::nearest) {
    add(static_cast<std::int64_t>(std::round(y)), static_cast<std::int64_t>(std::round(x)), 1.0);
    return s;
  }
  const float y_floor = std::floor(y), x_floor = std::floor(x);
  const float y_ceil = y_floor + 1, x_ceil = x_floor + 1;
  const auto r0 = static_cast<std::int64_t>(y_floor), r1 = static_cast<std::int64_t>(y_ceil);
  const auto c0 = static_cast<std::int64_t>(x_floor), c1 = static_cast<std::int64_t>(x_ceil);
  const double wy0 = y_ceil - y, wy1 = y - y_floor, wx0 = x_ceil - x, wx1 = x - x_floor;
  add(r0, c0, wy0 * wx0);
  add(r0, c1, wy0 * wx1);
  add(r1, c0, wy1 * wx0);
  add(r1, c1, wy1 * wx1);
  return s;
}

}  // namespace

// y[N,H,W,C] = Σ weight · (x pixel or fill_value)
template <class T>
void projective_transform_forward(const TransformParams& p, const float* transforms, const T* x, T* y) {
  for (std::int64_t n = 0; n < p.n; ++n) {
    const float* t = transforms + n * 8;
    const T* image = x + n * p.h * p.w * p.c;
    for (std::int64_t row = 0; row < p.h; ++row)
      for (std::int64_t col = 0; col < p.w; ++col) {
        const Sample s = sample_at(p, t, row, col);
        T* out = y + ((n * p.h + row) * p.w + col) * p.c;
        for (std::int64_t c = 0; c < p.c; ++c) {
          double acc = 0.0;
          for (int i = 0; i < s.count; ++i) {
            const double v = s.pixel[i] < 0 ? p.fill_value : static_cast<double>(image[s.pixel[i] * p.c + c]);
            if (s.weight[i] != 0.0) acc += s.weight[i] * v;
          }
          out[c] = static_cast<T>(acc);
        }
      }
  }
}

// dx[pixel] = Σ over the outputs that read it of weight · dy
template <class T>
void projective_transform_backward(const TransformParams& p, const float* transforms, const T* dy, T* dx) {
  const std::int64_t image_size = p.h * p.w * p.c;
  std::vector<double> acc(static_cast<std::size_t>(image_size));
  for (std::int64_t n = 0; n < p.n; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const float* t = transforms + n * 8;
    for (std::int64_t row = 0; row < p.h; ++row)
      for (std::int64_t col = 0; col < p.w; ++col) {
        const Sample s = sample_at(p, t, row, col);
        const T* g = dy + ((n * p.h + row) * p.w + col) * p.c;
        for (int i = 0; i < s.count; ++i) {
          if (s.pixel[i] < 0 || s.weight[i] == 0.0) continue;
          double* d = acc.data() + s.pixel[i] * p.c;
          for (std::int64_t c = 0; c < p.c; ++c) d[c] += s.weight[i] * static_cast<double>(g[c]);
        }
      }
    T* out = dx + n * image_size;
    for (std::int64_t i = 0; i < image_size; ++i) out[i] = static_cast<T>(acc[i]);
  }
}

template <class T>
void flip_images(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                 const std::uint8_t* flip_rows, const std::uint8_t* flip_cols, const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t row = 0; row < h; ++row) {
      const std::int64_t from_row = flip_rows[i] ? h - 1 - row : row;
      for (std::int64_t col = 0; col < w; ++col) {
        const std::int64_t from_col = flip_cols[i] ? w - 1 - col : col;
        const T* in = x + ((i * h + from_row) * w + from_col) * c;
        T* out = y + ((i * h + row) * w + col) * c;
        for (std::int64_t k = 0; k < c; ++k) out[k] = in[k];
      }
    }
}

template <class T>
void crop_forward(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const CropBox& box,
                  const T* x, T* y) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t row = 0; row < box.rows; ++row) {
      const T* in = x + ((i * h + box.top + row) * w + box.left) * c;
      T* out = y + (i * box.rows + row) * box.cols * c;
      for (std::int64_t k = 0; k < box.cols * c; ++k) out[k] = in[k];
    }
}

template <class T>
void crop_backward(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const CropBox& box,
                   const T* dy, T* dx) {
  for (std::int64_t k = 0; k < n * h * w * c; ++k) dx[k] = T(0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t row = 0; row < box.rows; ++row) {
      const T* in = dy + (i * box.rows + row) * box.cols * c;
      T* out = dx + ((i * h + box.top + row) * w + box.left) * c;
      for (std::int64_t k = 0; k < box.cols * c; ++k) out[k] = in[k];
    }
}

namespace {
// Per channel: the mean over the image's pixels of v.
template <class T>
std::vector<double> channel_means(const ContrastParams& p, const T* v) {
  std::vector<double> mean(static_cast<std::size_t>(p.c), 0.0);
  for (std::int64_t i = 0; i < p.h * p.w; ++i)
    for (std::int64_t c = 0; c < p.c; ++c) mean[c] += static_cast<double>(v[i * p.c + c]);
  for (auto& m : mean) m /= static_cast<double>(p.h * p.w);
  return mean;
}
}  // namespace

template <class T>
void contrast_forward(const ContrastParams& p, const double* factor, const T* x, T* y) {
  const std::int64_t image_size = p.h * p.w * p.c;
  for (std::int64_t n = 0; n < p.n; ++n) {
    const T* in = x + n * image_size;
    T* out = y + n * image_size;
    const auto mean = channel_means(p, in);
    for (std::int64_t i = 0; i < p.h * p.w; ++i)
      for (std::int64_t c = 0; c < p.c; ++c) {
        const double v = (static_cast<double>(in[i * p.c + c]) - mean[c]) * factor[n] + mean[c];
        out[i * p.c + c] = static_cast<T>(std::min(std::max(v, p.lo), p.hi));
      }
  }
}

template <class T>
void contrast_backward(const ContrastParams& p, const double* factor, const T* x, const T* dy, T* dx) {
  const std::int64_t image_size = p.h * p.w * p.c;
  std::vector<double> g(static_cast<std::size_t>(image_size));
  for (std::int64_t n = 0; n < p.n; ++n) {
    const T* in = x + n * image_size;
    const T* grad = dy + n * image_size;
    const auto mean = channel_means(p, in);
    for (std::int64_t i = 0; i < p.h * p.w; ++i)
      for (std::int64_t c = 0; c < p.c; ++c) {
        const double v = (static_cast<double>(in[i * p.c + c]) - mean[c]) * factor[n] + mean[c];
        g[i * p.c + c] = (v >= p.lo && v <= p.hi) ? static_cast<double>(grad[i * p.c + c]) : 0.0;
      }
    const auto g_mean = channel_means(p, g.data());
    T* out = dx + n * image_size;
    for (std::int64_t i = 0; i < p.h * p.w; ++i)
      for (std::int64_t c = 0; c < p.c; ++c)
        out[i * p.c + c] = static_cast<T>(factor[n] * g[i * p.c + c] + (1.0 - factor[n]) * g_mean[c]);
  }
}

#define RESKIT_INSTANTIATE(T)                                                                               \
  template void projective_transform_forward<T>(const TransformParams&, const float*, const T*, T*);        \
  template void projective_transform_backward<T>(const TransformParams&, const float*, const T*, T*);       \
  template void flip_images<T>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const std::uint8_t*, \
                               const std::uint8_t*, const T*, T*);                                          \
  template void crop_forward<T>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const CropBox&,     \
                                const T*, T*);                                                              \
  template void crop_backward<T>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, const CropBox&,    \
                                 const T*, T*);                                                             \
  template void contrast_forward<T>(const ContrastParams&, const double*, const T*, T*);                    \
  template void contrast_backward<T>(const ContrastParams&, const double*, const T*, const T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels
