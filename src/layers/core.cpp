// Activation, Dense, Flatten, Dropout, Add and InputLayer: forward and backward side by side.
#include "reskit/layers/core.h"

#include <random>

#include "kernels/kernels.h"
#include "layers/util.h"
#include "reskit/error.h"
#include "reskit/random.h"

namespace reskit {

using detail::visit_dtype;

void check_activation_name(const std::string& where, const std::string& name) {
  detail::parse_activation(where, name);
}

// ---------------------------------------------------------------- Activation
// y = act(x), elementwise (softmax over the last axis)

ActivationLayer::ActivationLayer(std::string activation, ActivationOptions options)
    : Layer("Activation", options.name), activation_(std::move(activation)) {
  detail::parse_activation(where(), activation_);
}

Shape ActivationLayer::output_shape(const std::vector<Shape>& inputs) const { return single_input(inputs); }

Tensor ActivationLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  x_ = inputs[0];
  pass_gradient_ = fused_relu_backward();
  if (fused_relu()) {  // the producer applied this ReLU already (relu(relu(z)) = relu(z))
    y_ = x_;
    return y_;
  }
  y_ = Tensor::uninitialized(x_.shape(), dtype());
  detail::activation_forward(detail::parse_activation(where(), activation_), x_, y_);
  return y_;
}

std::vector<Tensor> ActivationLayer::backward(const Tensor& dy) {
  if (pass_gradient_) return {dy};
  return {detail::activation_backward(detail::parse_activation(where(), activation_), x_, y_, dy)};
}

std::vector<Tensor> ActivationLayer::backward_from_logits(const Tensor& grad_logits) { return {grad_logits}; }

Activation::Activation(std::string activation, ActivationOptions options)
    : LayerRef(std::make_shared<ActivationLayer>(std::move(activation), std::move(options))) {}

// ---------------------------------------------------------------- Dense
// x (N,C) · kernel (C,K) + bias (K) -> z (N,K); y = act(z)

DenseLayer::DenseLayer(int units, DenseOptions options)
    : Layer("Dense", options.name), units_(units), options_(std::move(options)) {
  if (units_ <= 0) throw ConfigError(where() + ": expected units > 0, got " + std::to_string(units_));
  detail::parse_activation(where(), options_.activation);
  detail::check_initializer_name(where(), options_.kernel_initializer);
  detail::check_initializer_name(where(), options_.bias_initializer);
}

Shape DenseLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (in.size() != 2) {
    shape_error("a 2-D input (batch, features); add Flatten or global pooling before it",
                "shape " + shape_str(in));
  }
  if (built()) {
    std::int64_t c = params()[0].value.dim(0);
    if (in[1] != c) shape_error(std::to_string(c) + " input features", std::to_string(in[1]));
  }
  return {in[0], units_};
}

void DenseLayer::do_build(const std::vector<Shape>& inputs) {
  const std::int64_t c = inputs[0][1];
  if (c <= 0) shape_error("a known, positive feature count", shape_str(inputs[0]));
  Param& k = add_param("kernel", {c, units_}, true);
  detail::initialize(k.value, where(), options_.kernel_initializer, c, units_, options_.seed);
  if (options_.use_bias) {
    Param& b = add_param("bias", {units_}, true);
    detail::initialize(b.value, where(), options_.bias_initializer, c, units_, options_.seed);
  }
}

Tensor DenseLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  Shape ys = output_shape({x.shape()});
  kernels::DenseParams p{x.dim(0), x.dim(1), units_};
  Tensor z = Tensor::uninitialized(ys, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* b = options_.use_bias ? params()[1].value.data<T>() : nullptr;
    kernels::dense_forward<T>(p, x.data<T>(), params()[0].value.data<T>(), b, z.data<T>());
  });
  x_ = x;
  z_ = z;
  y_ = detail::activated(detail::parse_activation(where(), options_.activation), z_);
  return y_;
}

std::vector<Tensor> DenseLayer::backward_from_logits(const Tensor& dz) {
  kernels::DenseParams p{x_.dim(0), x_.dim(1), units_};
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    T* db = options_.use_bias ? params()[1].grad.data<T>() : nullptr;
    kernels::dense_backward<T>(p, x_.data<T>(), params()[0].value.data<T>(), dz.data<T>(), dx.data<T>(),
                               params()[0].grad.data<T>(), db);
  });
  return {dx};
}

std::vector<Tensor> DenseLayer::backward(const Tensor& dy) {
  auto act = detail::parse_activation(where(), options_.activation);
  return backward_from_logits(detail::activation_backward(act, z_, y_, dy));
}

Dense::Dense(int units, DenseOptions options)
    : LayerRef(std::make_shared<DenseLayer>(units, std::move(options))) {}

// ---------------------------------------------------------------- Flatten
// x (N, d1, d2, ...) -> y (N, d1·d2·...), NHWC order kept

FlattenLayer::FlattenLayer(FlattenOptions options) : Layer("Flatten", options.name) {}

Shape FlattenLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (in.size() < 2) shape_error("an input of rank >= 2", "shape " + shape_str(in));
  std::int64_t n = 1;
  for (std::size_t i = 1; i < in.size(); ++i) {
    if (in[i] < 0) shape_error("known non-batch dimensions", "shape " + shape_str(in));
    n *= in[i];
  }
  return {in[0], n};
}

Tensor FlattenLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  input_shape_ = inputs[0].shape();
  return inputs[0].reshape(output_shape({input_shape_}));
}

std::vector<Tensor> FlattenLayer::backward(const Tensor& dy) { return {dy.reshape(input_shape_)}; }

Flatten::Flatten(FlattenOptions options) : LayerRef(std::make_shared<FlattenLayer>(std::move(options))) {}

// ---------------------------------------------------------------- Dropout
// training: y = x·mask, mask ∈ {0, 1/(1 − rate)}; inference: y = x

DropoutLayer::DropoutLayer(double rate, DropoutOptions options)
    : Layer("Dropout", options.name), rate_(rate), options_(std::move(options)) {
  if (!(rate_ >= 0.0 && rate_ < 1.0)) {
    throw ConfigError(where() + ": expected rate in [0, 1), got " + std::to_string(rate_));
  }
  if (!options_.seed) options_.seed = next_random_seed();
}

Shape DropoutLayer::output_shape(const std::vector<Shape>& inputs) const { return single_input(inputs); }

Tensor DropoutLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  const Tensor& x = inputs[0];
  if (!training || rate_ == 0.0) {
    mask_ = Tensor();
    return x;
  }
  // A fresh stream per call, reproducible from (seed, call count).
  std::mt19937_64 gen(*options_.seed + 0x9e3779b97f4a7c15ULL * ++calls_);
  std::bernoulli_distribution keep(1.0 - rate_);
  mask_ = Tensor::uninitialized(x.shape(), dtype());
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  const double scale = 1.0 / (1.0 - rate_);
  visit_dtype(dtype(), [&]<class T>(T) {
    T* m = mask_.data<T>();
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      m[i] = keep(gen) ? static_cast<T>(scale) : T(0);
      out[i] = in[i] * m[i];
    }
  });
  return y;
}

std::vector<Tensor> DropoutLayer::backward(const Tensor& dy) {
  if (!mask_.defined()) return {dy};
  Tensor dx = Tensor::uninitialized(dy.shape(), dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* m = mask_.data<T>();
    const T* g = dy.data<T>();
    T* o = dx.data<T>();
    for (std::int64_t i = 0; i < dy.numel(); ++i) o[i] = g[i] * m[i];
  });
  return {dx};
}

Dropout::Dropout(double rate, DropoutOptions options)
    : LayerRef(std::make_shared<DropoutLayer>(rate, std::move(options))) {}

// ---------------------------------------------------------------- Add
// y = Σ_i x_i (one shape); dx_i = dy

AddLayer::AddLayer(AddOptions options) : Layer("Add", options.name) {}

Shape AddLayer::output_shape(const std::vector<Shape>& inputs) const {
  if (inputs.size() < 2) shape_error("at least 2 inputs", std::to_string(inputs.size()));
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].size() != inputs[0].size()) {
      shape_error("inputs of one shape", shape_str(inputs[0]) + " and " + shape_str(inputs[i]));
    }
    for (std::size_t d = 0; d < inputs[0].size(); ++d) {
      auto a = inputs[0][d], b = inputs[i][d];
      if (a >= 0 && b >= 0 && a != b) {
        shape_error("inputs of one shape", shape_str(inputs[0]) + " and " + shape_str(inputs[i]));
      }
    }
  }
  return inputs[0];
}

Tensor AddLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  output_shape([&] {
    std::vector<Shape> s;
    for (auto& t : inputs) s.push_back(t.shape());
    return s;
  }());
  inputs_ = inputs.size();
  if (sum_input_ >= 0) return inputs[static_cast<std::size_t>(sum_input_)];  // summed by its producer
  if (inputs.size() == 2) return detail::add(inputs[0], inputs[1], fused_relu());
  Tensor y = detail::add(inputs[0], inputs[1]);
  for (std::size_t i = 2; i < inputs.size(); ++i) detail::add_inplace(y, inputs[i]);
  if (fused_relu()) detail::activation_forward(detail::Act::relu, y, y);
  return y;
}

std::vector<Tensor> AddLayer::backward(const Tensor& dy) { return std::vector<Tensor>(inputs_, dy); }

Add::Add(AddOptions options) : LayerRef(std::make_shared<AddLayer>(std::move(options))) {}

// ---------------------------------------------------------------- InputLayer

InputLayer::InputLayer(Shape shape, std::string name)
    : Layer("InputLayer", std::move(name)), shape_(std::move(shape)) {
  for (auto d : shape_)
    if (d <= 0) throw ConfigError(where() + ": expected positive dimensions, got shape " + shape_str(shape_));
}

Shape InputLayer::output_shape(const std::vector<Shape>& /*inputs*/) const {
  Shape s{-1};
  s.insert(s.end(), shape_.begin(), shape_.end());
  return s;
}

Tensor InputLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) { return inputs[0]; }
std::vector<Tensor> InputLayer::backward(const Tensor& dy) { return {dy}; }

}  // namespace reskit
