// Reference elementwise kernels: broadcast scale/offset and normalization (Rescaling,
// Normalization), Keras's ReLU with options, softmax over any axis, concatenation. Plain loops,
// float and double; the only implementation (kernels/dispatch.cpp routes here).
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/ref/bf16.h"

namespace reskit::kernels::ref {

// ---------------------------------------------------------------- scale/offset, normalize
// x, y, dx, dy: n values; tables: period values, read at i % period

template <class T>
void scale_offset_forward(const BroadcastParams& p, const T* x, const T* scale, const T* offset, T* y) {
  for (std::int64_t i = 0; i < p.n; ++i) {
    const std::int64_t j = i % p.period;
    y[i] = x[i] * scale[j] + offset[j];
  }
}

template <class T>
void scale_backward(const BroadcastParams& p, const T* dy, const T* scale, T* dx) {
  for (std::int64_t i = 0; i < p.n; ++i) dx[i] = dy[i] * scale[i % p.period];
}

template <class T>
void normalize_forward(const BroadcastParams& p, const T* x, const T* mean, const T* denom, T* y) {
  for (std::int64_t i = 0; i < p.n; ++i) {
    const std::int64_t j = i % p.period;
    y[i] = (x[i] - mean[j]) / denom[j];
  }
}

template <class T>
void normalize_backward(const BroadcastParams& p, const T* dy, const T* denom, T* dx) {
  for (std::int64_t i = 0; i < p.n; ++i) dx[i] = dy[i] / denom[i % p.period];
}

// ---------------------------------------------------------------- ReLU with options
// x, y, dx, dy: n values

template <class T>
void relu_forward(const ReluParams& p, const T* x, T* y) {
  const T slope = static_cast<T>(p.negative_slope), t = static_cast<T>(p.threshold);
  const T mx = static_cast<T>(p.max_value);
  for (std::int64_t i = 0; i < p.n; ++i) {
    T v = x[i] > t ? x[i] : T(0);
    if (p.has_max) v = std::min(std::max(v, T(0)), mx);
    if (slope != T(0)) v -= slope * std::max(t - x[i], T(0));
    y[i] = v;
  }
}

template <class T>
void relu_backward(const ReluParams& p, const T* x, const T* dy, T* dx) {
  const T slope = static_cast<T>(p.negative_slope), t = static_cast<T>(p.threshold);
  const T mx = static_cast<T>(p.max_value);
  for (std::int64_t i = 0; i < p.n; ++i) {
    T d = T(0);
    if (x[i] > t) {
      if (!p.has_max || (x[i] >= T(0) && x[i] < mx)) d = dy[i];
    } else if (x[i] < t) {
      d = slope * dy[i];
    }
    dx[i] = d;
  }
}

// ---------------------------------------------------------------- softmax
// x, y, dx, dy: [outer, dim, inner]; sums in double, as the Activation's softmax

template <class T>
void softmax_forward(const SoftmaxParams& p, const T* x, T* y) {
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t in = 0; in < p.inner; ++in) {
      const T* a = x + o * p.dim * p.inner + in;
      T* b = y + o * p.dim * p.inner + in;
      T mx = a[0];
      for (std::int64_t j = 1; j < p.dim; ++j) mx = std::max(mx, a[j * p.inner]);
      double sum = 0.0;
      for (std::int64_t j = 0; j < p.dim; ++j) {
        b[j * p.inner] = std::exp(a[j * p.inner] - mx);
        sum += static_cast<double>(b[j * p.inner]);
      }
      for (std::int64_t j = 0; j < p.dim; ++j)
        b[j * p.inner] = static_cast<T>(static_cast<double>(b[j * p.inner]) / sum);
    }
}

template <class T>
void softmax_backward(const SoftmaxParams& p, const T* y, const T* dy, T* dx) {
  for (std::int64_t o = 0; o < p.outer; ++o)
    for (std::int64_t in = 0; in < p.inner; ++in) {
      const std::int64_t base = o * p.dim * p.inner + in;
      double dot = 0.0;
      for (std::int64_t j = 0; j < p.dim; ++j)
        dot += static_cast<double>(dy[base + j * p.inner]) * static_cast<double>(y[base + j * p.inner]);
      for (std::int64_t j = 0; j < p.dim; ++j) {
        const std::int64_t k = base + j * p.inner;
        dx[k] = static_cast<T>(static_cast<double>(y[k]) * (static_cast<double>(dy[k]) - dot));
      }
    }
}

// ---------------------------------------------------------------- concatenation
// x, dx: [outer, part]; y, dy: [outer, width]

template <class T>
void concat_forward(const ConcatParams& p, const T* x, T* y) {
  for (std::int64_t o = 0; o < p.outer; ++o) std::copy_n(x + o * p.part, p.part, y + o * p.width + p.offset);
}

template <class T>
void concat_backward(const ConcatParams& p, const T* dy, T* dx) {
  for (std::int64_t o = 0; o < p.outer; ++o)
    std::copy_n(dy + o * p.width + p.offset, p.part, dx + o * p.part);
}

// ---------------------------------------------------------------- ReLU backward, float32

inline void relu_backward_f32(const ReluBackwardParams& p) {
  const auto value = [](const float* v, const std::uint16_t* bits, std::int64_t i) {
    return bits != nullptr ? from_bf16_bits(bits[i]) : v[i];
  };
  const bool sum = p.b != nullptr || p.b_bits != nullptr;
  for (std::int64_t i = 0; i < p.n; ++i) {
    float g = value(p.a, p.a_bits, i);
    if (sum) g += value(p.b, p.b_bits, i);
    const float dz = value(p.z, p.z_bits, i) > 0.0f ? g : 0.0f * g;  // 0·g: a NaN gradient stays NaN
    if (p.dz_bits != nullptr) {
      p.dz_bits[i] = bf16_bits(dz);
    } else {
      p.dz[i] = dz;
    }
  }
}

}  // namespace reskit::kernels::ref
