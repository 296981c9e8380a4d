// Internal helpers shared by the layers: dtype visiting, parallel element loops, initializers
// and activation functions (padding rules: layers/padding.h). Not part of the public API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "layers/padding.h"
#include "reskit/error.h"
#include "reskit/tensor.h"

namespace reskit::detail {

// Calls f(T{}) with T = float or double according to dtype.
template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  if (dtype == DType::float32) return f(float{});
  return f(double{});
}

// Fills t per a Keras initializer name: zeros, ones, glorot_uniform, glorot_normal,
// he_uniform, he_normal, random_uniform (±0.05), random_normal (stddev 0.05). Throws
// ConfigError naming `where` for an unknown name.
void initialize(Tensor& t, const std::string& where, const std::string& initializer, std::int64_t fan_in,
                std::int64_t fan_out, std::optional<std::uint64_t> seed);
void check_initializer_name(const std::string& where, const std::string& initializer);

enum class Act { linear, relu, softmax, sigmoid, tanh };
Act parse_activation(const std::string& where, const std::string& name);
// y = act(z); softmax over the last axis.
void activation_forward(Act act, const Tensor& z, Tensor& y);
// z itself when act is linear, else a new tensor holding act(z).
Tensor activated(Act act, const Tensor& z);
// dz from dy, z and y = act(z).
Tensor activation_backward(Act act, const Tensor& z, const Tensor& y, const Tensor& dy);

// a += b (same shape and dtype)
void add_inplace(Tensor& a, const Tensor& b);
// a + b in a new tensor (one pass, where clone-then-add takes two), then max(0, ·) when relu.
Tensor add(const Tensor& a, const Tensor& b, bool relu = false);

}  // namespace reskit::detail

namespace reskit::detail {
// Keras backend.unique_object_name: base, base_1, base_2, ... (reset by clear_session()).
std::string unique_object_name(const std::string& base);
// input_1, input_2, ...
std::string unique_input_name();
}  // namespace reskit::detail
