// golden_weights.h — the C++ twin of gen_golden.py's weight formula: fills a reskit Model's
// parameters by their Keras names and makes the inputs and targets the golden fixtures were made from.
//
// For element i (row-major, Keras layout) of the tensor called `name`:
//   h = splitmix64(fnv1a64(name) + i),  u = (h >> 11)·2^-52 − 1   (exact, in [−1, 1))
//   kernel: u / sqrt(fan_in), fan_in = product of all dims but the last (conv HWIO, Dense (in, out))
//   bias, beta, moving_mean: u / 8;  gamma: 1 + u / 4;  moving_variance: 1 + u / 2;  anything else: u
// Every step is exact or one correctly rounded IEEE operation, so Python and C++ agree bit for bit
// in float64; float32 tensors take the float64 value rounded once.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "reskit/reskit.h"

namespace reskit::golden {

inline std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

// SplitMix64's output function applied to state + the golden gamma (Steele et al. 2014).
inline std::uint64_t splitmix64(std::uint64_t state) {
  std::uint64_t z = state + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// u in [−1, 1) for element i of the tensor called name.
inline double formula_uniform(std::uint64_t name_hash, std::int64_t i) {
  const std::uint64_t k = splitmix64(name_hash + static_cast<std::uint64_t>(i)) >> 11;
  return static_cast<double>(k) * 0x1p-52 - 1.0;
}

// "conv1/kernel:0" -> "kernel"; "x" -> "x".
inline std::string_view short_name(std::string_view name) {
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  if (auto colon = name.find(':'); colon != std::string_view::npos) name = name.substr(0, colon);
  return name;
}

// Overwrites t (of any dtype) with the formula values of the tensor called name.
inline void fill_formula(std::string_view name, Tensor& t) {
  const std::uint64_t hash = fnv1a64(name);
  const std::string_view kind = short_name(name);
  const Shape& shape = t.shape();
  double sqrt_fan_in = 0.0, scale = 1.0, offset = 0.0;
  if (kind == "kernel") {
    std::int64_t fan_in = 1;
    for (std::size_t d = 0; d + 1 < shape.size(); ++d) fan_in *= shape[d];
    sqrt_fan_in = std::sqrt(static_cast<double>(fan_in));
  } else if (kind == "bias" || kind == "beta" || kind == "moving_mean") {
    scale = 0.125;
  } else if (kind == "gamma") {
    scale = 0.25, offset = 1.0;
  } else if (kind == "moving_variance") {
    scale = 0.5, offset = 1.0;
  }
  // A kernel divides by sqrt(fan_in) (one rounding, as numpy does); the rest scale by powers of two.
  auto value = [&](std::int64_t i) {
    const double u = formula_uniform(hash, i);
    return sqrt_fan_in != 0.0 ? u / sqrt_fan_in : offset + u * scale;
  };
  const std::int64_t n = t.numel();
  if (t.dtype() == DType::float64) {
    double* p = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = value(i);
  } else {
    float* p = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(value(i));
  }
}

// A new tensor of shape and dtype holding the formula values of name (inputs "x", gradients "G").
inline Tensor formula_tensor(std::string_view name, const Shape& shape, DType dtype) {
  Tensor t = Tensor::uninitialized(shape, dtype);
  fill_formula(name, t);
  return t;
}

// Every parameter of the model (trainable or not), by its Keras name.
inline void fill_parameters(Model& model) {
  for (Param* p : model.parameters()) fill_formula(p->name, p->value);
}

// One-hot targets (batch, classes): sample n is of class (5n + 2) mod classes.
inline Tensor one_hot_targets(int batch, int classes, DType dtype) {
  Tensor y({batch, classes}, dtype);
  for (int n = 0; n < batch; ++n) y.set(static_cast<std::int64_t>(n) * classes + (5 * n + 2) % classes, 1.0);
  return y;
}

}  // namespace reskit::golden
