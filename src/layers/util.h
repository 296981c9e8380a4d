// Internal helpers of the layers only: initializers and activation functions, with the dtype
// visitor and tensor sums they use (util/; padding rules: layers/padding.h). Not part of the
// public API; optimizers, data and the graph include util/ directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "layers/padding.h"
#include "reskit/error.h"
#include "reskit/layers/layer.h"
#include "reskit/tensor.h"
#include "util/dtype_visit.h"
#include "util/tensor_add.h"

namespace reskit::detail {

// Fills t per a Keras initializer name: zeros, ones, glorot_uniform, glorot_normal,
// he_uniform, he_normal, random_uniform (±0.05), random_normal (stddev 0.05). Throws
// ConfigError naming `where` for an unknown name.
void initialize(Tensor& t, const std::string& where, const std::string& initializer, std::int64_t fan_in,
                std::int64_t fan_out, std::optional<std::uint64_t> seed);
void check_initializer_name(const std::string& where, const std::string& initializer);

// Gives a weight its layer's regularizer and constraint options (Param::regularizer,
// ::constraint), checked against the weight's rank: ConfigError naming `where` and the weight.
void set_weight_rules(Param& p, const std::optional<Regularizer>& regularizer,
                      const std::optional<Constraint>& constraint, const std::string& where);

enum class Act { linear, relu, softmax, sigmoid, tanh, elu, selu, softplus, softsign, swish, exponential };
// The Keras activation names parse_activation takes, as messages list them.
inline constexpr const char* kActivationNames =
    "linear, relu, softmax, sigmoid, tanh, elu, selu, softplus, softsign, swish (silu), exponential";
Act parse_activation(const std::string& where, const std::string& name);
// y = act(z); softmax over the last axis.
void activation_forward(Act act, const Tensor& z, Tensor& y);
// z itself when act is linear, else a new tensor holding act(z).
Tensor activated(Act act, const Tensor& z);
// dz from dy, z and y = act(z).
Tensor activation_backward(Act act, const Tensor& z, const Tensor& y, const Tensor& dy);
// The ReLU's dz for dy = a + b, in one pass: the bits of activation_backward(relu, z, z, a + b).
Tensor relu_backward_sum(const Tensor& z, const Tensor& a, const Tensor& b);
// The same for float32 tensors, any of which may hold its bfloat16 rounding alone (only_rounding:
// read so, not widened): dz = (z > 0)·(a + b), or (z > 0)·a without b; bf16_out: dz written as
// its rounding alone (Keras's bfloat16 gradient of a bfloat16 activation). On float32 operands
// the bits of relu_backward_sum and activation_backward.
Tensor relu_backward_f32(const Tensor& z, const Tensor& a, const Tensor* b, bool bf16_out);

// An operand's float32 values for the kernels. Where its bfloat16 rounding goes with it (bits:
// Conv2DParams::x_bf16, dy_bf16; BatchNormParams::x_bf16, dy_bf16), the kernels read that
// instead, so a tensor whose rounding is its only copy (Tensor::bf16_shadow_only_written) is not
// widened for them.
template <class T>
const T* operand(const Tensor& t, const std::uint16_t* bits) {
  if constexpr (std::is_same_v<T, float>) {
    if (bits != nullptr) return t.storage_behind_shadow();
  }
  return t.data<T>();
}
// A float32 tensor's bfloat16 rounding where that is its only copy (Tensor::float32_current
// false: Keras's bfloat16 activations, Model::set_bf16_activations), else null: for a kernel
// that reads float32 values when it has them and the rounding otherwise (BatchNormalization).
inline const std::uint16_t* only_rounding(const Tensor& t) {
  return t.dtype() == DType::float32 && !t.float32_current() ? t.bf16_shadow() : nullptr;
}

}  // namespace reskit::detail
