// reskit/layers/core.h — Activation, Dense, Flatten, Dropout, Add, and Input with its InputLayer.
//
// Activations: relu, softmax (over the last axis), sigmoid, tanh, linear, and as Keras 2.x
// defines them elu, selu, softplus, softsign, swish (Keras 3: silu), exponential (gelu is left out:
// tf.keras 2.x computes it exactly, Keras 3 by default approximately). Dense takes a 2-D
// input (N, in) with weight (in, out). Flatten keeps NHWC order (h, w, c). Dropout scales kept
// units by 1/(1 − rate) in training and is the identity in inference. Add sums two or more
// tensors of one shape. Input(shape) is a model's symbolic input, as keras.layers.Input (Keras
// keeps it beside InputLayer); reskit/graph/model.h builds the Model from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "reskit/layers/layer.h"

namespace reskit {

// Throws ConfigError unless name is one of the activations above.
void check_activation_name(const std::string& where, const std::string& name);

struct ActivationOptions {
  std::string name;
};

class ActivationLayer : public Layer {
 public:
  ActivationLayer(std::string activation, ActivationOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  std::vector<Tensor> backward_sum(const Tensor& a, const Tensor& b) override;
  bool outputs_softmax() const override { return activation_ == "softmax"; }
  Tensor logits() const override { return x_; }
  std::vector<Tensor> backward_from_logits(const Tensor& grad_logits) override;
  const std::string& activation() const { return activation_; }
  // Set by the model around a mixed-precision training pass (Model::set_bf16_activations): a
  // ReLU whose backward applies its own mask (not its producer's, fused_relu_backward) writes
  // its input gradient as the bfloat16 rounding alone (Tensor::bf16_shadow_only_written), where
  // every layer that gradient reaches reads it so: Keras's bfloat16 gradient of a residual
  // block's bfloat16 output. Its backward reads operands that are such roundings without
  // widening them.
  void set_bf16_only_input_gradient(bool on) { bf16_only_input_gradient_ = on; }
  // What the last training forward set up: the input gradient written as the rounding alone.
  bool last_input_gradient_bf16_only() const { return bf16_only_dx_; }

 private:
  std::string activation_;
  Tensor x_, y_;
  bool pass_gradient_ = false;             // the producer's backward takes this ReLU's (fused_relu_backward)
  bool bf16_only_input_gradient_ = false;  // set_bf16_only_input_gradient
  bool bf16_only_dx_ = false;              // the last training forward's, for backward
};

struct Activation : LayerRef<ActivationLayer> {
  explicit Activation(std::string activation, ActivationOptions options = {});
};

struct DenseOptions {
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

class DenseLayer : public Layer {
 public:
  DenseLayer(int units, DenseOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  bool outputs_softmax() const override { return options_.activation == "softmax"; }
  Tensor logits() const override { return z_; }
  std::vector<Tensor> backward_from_logits(const Tensor& grad_logits) override;
  const Regularizer* activity_regularizer() const override;
  int units() const { return units_; }
  const DenseOptions& options() const { return options_; }
  // The weights, once built (Keras's layer.kernel, layer.bias): kernel (in, units), bias (units;
  // Error when use_bias is false).
  Param& kernel();
  const Param& kernel() const;
  Param& bias();
  const Param& bias() const;

 protected:
  void do_build(const std::vector<Shape>& inputs) override;

 private:
  int units_;
  DenseOptions options_;
  Tensor x_, z_, y_;
};

struct Dense : LayerRef<DenseLayer> {
  Dense(int units, DenseOptions options = {});
};

struct FlattenOptions {
  std::string name;
};

class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(FlattenOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;

 private:
  Shape input_shape_;
};

struct Flatten : LayerRef<FlattenLayer> {
  explicit Flatten(FlattenOptions options = {});
};

struct DropoutOptions {
  std::optional<std::uint64_t> seed;
  std::string name;
};

class DropoutLayer : public Layer {
 public:
  DropoutLayer(double rate, DropoutOptions options);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  double rate() const { return rate_; }

 private:
  double rate_;
  DropoutOptions options_;
  std::uint64_t calls_ = 0;
  Tensor mask_;  // scale per element of the last training call; undefined in inference
};

struct Dropout : LayerRef<DropoutLayer> {
  explicit Dropout(double rate, DropoutOptions options = {});
};

struct AddOptions {
  std::string name;
};

class AddLayer : public Layer {
 public:
  explicit AddLayer(AddOptions options);
  int expected_inputs() const override { return kAnyInputs; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  // Set by the model around a pass in which the BatchNormalization that is input `i` adds the
  // other input in its own pass (and applies this layer's fused ReLU): forward then returns that
  // input. -1: none.
  void set_sum_input(int i) { sum_input_ = i; }

 private:
  std::size_t inputs_ = 0;
  int sum_input_ = -1;
};

struct Add : LayerRef<AddLayer> {
  explicit Add(AddOptions options = {});
};

struct InputOptions;

// The layer behind Input(): holds the batch-free shape.
class InputLayer : public Layer {
 public:
  InputLayer(Shape shape, std::string name);
  int expected_inputs() const override { return 0; }
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  Tensor forward(const std::vector<Tensor>& inputs, bool training) override;
  std::vector<Tensor> backward(const Tensor& grad_output) override;
  const Shape& shape() const { return shape_; }

 private:
  friend Tensor Input(const Shape& shape, InputOptions options);
  Shape shape_;
};

struct InputOptions {
  std::string name;  // "" -> input_1, input_2, ...
};
// A symbolic input of the given shape without the batch dimension, e.g. Input({64, 64, 3}).
Tensor Input(const Shape& shape, InputOptions options = {});

}  // namespace reskit
