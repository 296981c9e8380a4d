// reskit/layers/conv.h — Conv2D and ZeroPadding2D (NHWC, Keras 2.x semantics).
//
// Conv2D: kernel HWIO (kh, kw, cin, cout), bias (cout); padding "valid" or "same" with
// TensorFlow's rule: out = ceil(in / stride), pad_total = max((out − 1)·stride + k − in, 0),
// pad_before = pad_total / 2, the extra row/column at the bottom/right.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

class BatchNormalizationLayer;

struct Conv2DOptions {
  std::array<int, 2> strides{1, 1};
  std::string padding = "valid";  // "valid" | "same"
  std::string activation = "linear";
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string bias_initializer = "zeros";
  std::optional<std::uint64_t> seed;  // initializer seed; none: the global generator
  // Keras's regularizers and constraints (reskit/optim/regularizers.h, constraints.h): the
  // weights' are copied to their Params when the layer builds (Param::regularizer, ::constraint,
  // which training and files then read); the activity regularizer penalises the output.
  std::optional<Regularizer> kernel_regularizer, bias_regularizer, activity_regularizer;
  std::optional<Constraint> kernel_constraint, bias_constraint;
  std::string name;
};

class Conv2DLayer : public Layer {
 public:
  Conv2DLayer(int filters, std::array<int, 2> kernel_size, Conv2DOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  bool outputs_softmax() const override;
  Tensor logits() const override;
  std::vector<Tensor> backward_from_logits(const Tensor& grad_logits) override;
  const Regularizer* activity_regularizer() const override;

  int filters() const { return filters_; }
  std::array<int, 2> kernel_size() const { return kernel_size_; }
  const Conv2DOptions& options() const { return options_; }
  // The weights, once built (Keras's layer.kernel, layer.bias): kernel (R, S, C, K), bias (K;
  // Error when use_bias is false).
  Param& kernel();
  const Param& kernel() const;
  Param& bias();
  const Param& bias() const;

  // Inference with the BatchNormalization that alone reads this layer's output folded in (set
  // by the model around an inference pass; nullptr clears it): forward in inference mode runs
  // on kernel·s and (bias − mean)·s + beta, s = gamma / sqrt(moving_variance + epsilon), then
  // max(0, ·) when relu (the ReLU after the normalization). The folded weights are kept while
  // the weights and statistics they came from are unchanged.
  void set_folded_batch_norm(const BatchNormalizationLayer* bn, bool relu);
  // With a normalization folded in, the Add that alone reads it fused too (set by the model
  // around an inference pass): forward takes the Add's other input as its second input and adds
  // it before the ReLU, then max(0, ·) when relu (the Add's ReLU); on false clears it.
  void set_folded_residual(bool on, bool relu);
  // Set by the model around a mixed-precision training pass (Model::set_bf16_activations): the
  // output written as its bfloat16 rounding alone (Tensor::bf16_shadow_only_written) where a
  // BatchNormalization alone reads it, and the input gradient where the BatchNormalization whose
  // output this layer alone reads (after its fused ReLU) takes it. These are Keras's bfloat16
  // activations: the normalization then computes on the rounded values.
  void set_bf16_only(bool output, bool input_gradient) {
    bf16_only_output_ = output;
    bf16_only_input_gradient_ = input_gradient;
  }
  // What the last training forward did so: its output written as the rounding alone, and its
  // input gradient to be.
  bool last_output_bf16_only() const { return last_output_bf16_only_; }
  bool last_input_gradient_bf16_only() const { return bf16_only_dx_; }

 protected:
  void do_build(const std::vector<Shape>& inputs) override;

 private:
  int filters_;
  std::array<int, 2> kernel_size_;
  Conv2DOptions options_;
  Tensor x_, z_, y_;  // kept for backward: input, pre-activation, output
  const BatchNormalizationLayer* folded_bn_ = nullptr;
  bool folded_relu_ = false;
  bool folded_residual_ = false, folded_residual_relu_ = false;
  Tensor folded_kernel_, folded_bias_;
  bool bf16_only_output_ = false, bf16_only_input_gradient_ = false;  // set_bf16_only
  bool last_output_bf16_only_ = false;
  bool bf16_only_dx_ = false;  // the last training forward's bf16_only_input_gradient_, for backward
  std::array<std::uint64_t, 6> folded_from_{};  // versions of kernel, bias, gamma, beta, mean, variance
  void refresh_folded();
};

struct Conv2D : LayerRef<Conv2DLayer> {
  Conv2D(int filters, std::array<int, 2> kernel_size, Conv2DOptions options = {});
};

struct ZeroPadding2DOptions {
  std::string name;
};

class ZeroPadding2DLayer : public Layer {
 public:
  // ((top, bottom), (left, right))
  ZeroPadding2DLayer(std::array<std::array<int, 2>, 2> padding, ZeroPadding2DOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const std::array<std::array<int, 2>, 2>& padding() const { return padding_; }

 private:
  std::array<std::array<int, 2>, 2> padding_;
  Shape input_shape_;
};

struct ZeroPadding2D : LayerRef<ZeroPadding2DLayer> {
  // The same padding on all four sides.
  explicit ZeroPadding2D(int padding = 1, ZeroPadding2DOptions options = {});
  // (rows above and below, columns left and right): Keras ZeroPadding2D((3, 3)).
  explicit ZeroPadding2D(std::array<int, 2> padding, ZeroPadding2DOptions options = {});
  // ((top, bottom), (left, right))
  explicit ZeroPadding2D(std::array<std::array<int, 2>, 2> padding, ZeroPadding2DOptions options = {});
};

}  // namespace reskit
