// Activation, Dense, Flatten, Dropout, Add, InputLayer and Input: forward and backward side by
// side, then their registry entries (Keras config, ONNX export, fusion).
#include "reskit/layers/core.h"

#include <random>
#include <utility>

#include "kernels/kernels.h"
#include "layers/keras_regularizers.h"
#include "layers/registry.h"
#include "layers/symbolic_call.h"
#include "layers/util.h"
#include "reskit/error.h"
#include "reskit/random.h"
#include "util/unique_names.h"

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

Tensor ActivationLayer::forward(const std::vector<Tensor>& inputs, bool training) {
  x_ = inputs[0];
  pass_gradient_ = fused_relu_backward();
  bf16_only_dx_ = training && bf16_only_input_gradient_ && !pass_gradient_ && mixed_bfloat16() &&
                  dtype() == DType::float32 &&
                  detail::parse_activation(where(), activation_) == detail::Act::relu;
  if (fused_relu()) {  // the producer applied this ReLU already (relu(relu(z)) = relu(z))
    y_ = x_;
    return y_;
  }
  y_ = Tensor::uninitialized(x_.shape(), dtype());
  detail::activation_forward(detail::parse_activation(where(), activation_), x_, y_);
  return y_;
}

// float32's ReLU reads gradients that are bfloat16 roundings alone as they are (mixed precision).
std::vector<Tensor> ActivationLayer::backward(const Tensor& dy) {
  if (pass_gradient_) return {dy};
  const detail::Act act = detail::parse_activation(where(), activation_);
  if (act == detail::Act::relu && dtype() == DType::float32)
    return {detail::relu_backward_f32(x_, dy, nullptr, bf16_only_dx_)};
  return {detail::activation_backward(act, x_, y_, dy)};
}

// The ReLU's mask applied to a + b in the same pass (a residual block's output feeds the next
// block's convolution and its shortcut).
std::vector<Tensor> ActivationLayer::backward_sum(const Tensor& a, const Tensor& b) {
  if (pass_gradient_ || detail::parse_activation(where(), activation_) != detail::Act::relu)
    return Layer::backward_sum(a, b);
  if (dtype() == DType::float32) return {detail::relu_backward_f32(x_, a, &b, bf16_only_dx_)};
  return {detail::relu_backward_sum(x_, a, b)};
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
  if (options_.activity_regularizer) check_regularizer(*options_.activity_regularizer, where());
}

Shape DenseLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (in.size() != 2) {
    shape_error("a 2-D input (batch, features); add Flatten or global pooling before it",
                "shape " + shape_str(in));
  }
  if (built()) {
    std::int64_t c = kernel().value.dim(0);
    if (in[1] != c) shape_error(std::to_string(c) + " input features", std::to_string(in[1]));
  }
  return {in[0], units_};
}

void DenseLayer::do_build(const std::vector<Shape>& inputs) {
  const std::int64_t c = inputs[0][1];
  if (c <= 0) shape_error("a known, positive feature count", shape_str(inputs[0]));
  Param& k = add_param("kernel", {c, units_}, true);
  detail::initialize(k.value, where(), options_.kernel_initializer, c, units_, options_.seed);
  detail::set_weight_rules(k, options_.kernel_regularizer, options_.kernel_constraint, where());
  if (options_.use_bias) {
    Param& b = add_param("bias", {units_}, true);
    detail::initialize(b.value, where(), options_.bias_initializer, c, units_, options_.seed);
    detail::set_weight_rules(b, options_.bias_regularizer, options_.bias_constraint, where());
  }
}

const Regularizer* DenseLayer::activity_regularizer() const {
  return options_.activity_regularizer ? &*options_.activity_regularizer : nullptr;
}

// The weights by name, at the positions do_build gives them.
Param& DenseLayer::kernel() { return built_param(0, "kernel"); }
const Param& DenseLayer::kernel() const { return built_param(0, "kernel"); }
const Param& DenseLayer::bias() const { return built_bias(options_.use_bias); }
Param& DenseLayer::bias() { return const_cast<Param&>(std::as_const(*this).bias()); }

Tensor DenseLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  Shape ys = output_shape({x.shape()});
  kernels::DenseParams p{x.dim(0), x.dim(1), units_};
  Tensor z = Tensor::uninitialized(ys, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* b = options_.use_bias ? bias().value.data<T>() : nullptr;
    kernels::dense_forward<T>(p, x.data<T>(), kernel().value.data<T>(), b, z.data<T>());
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
    T* db = options_.use_bias ? bias().grad.data<T>() : nullptr;
    kernels::dense_backward<T>(p, x_.data<T>(), kernel().value.data<T>(), dz.data<T>(), dx.data<T>(),
                               kernel().grad.data<T>(), db);
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

Tensor Input(const Shape& shape, InputOptions options) {
  std::string name = options.name.empty() ? detail::unique_input_name() : std::move(options.name);
  auto layer = std::make_shared<InputLayer>(shape, std::move(name));
  layer->build({});
  Shape out = layer->output_shape({});
  Tensor y = detail::record_call(layer, 0, {}, std::move(out));
  layer->keep_output(y);
  return y;
}

// ---------------------------------------------------------------- registry entries
// The core layers in Keras configs, ONNX and fusion (layers/registry.h).

namespace layers {
namespace {
using keras::Json;
using onnx_export::Value;

// InputLayer

Tensor input_layer_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& /*in*/,
                               keras::WeightBudget& /*budget*/) {
  auto shape = keras::input_shape_option(c, l);
  if (!shape) keras::bad(l, "missing option batch_input_shape");
  for (const char* key : {"sparse", "ragged"}) {
    if (keras::bool_option(c, key, false, l)) keras::unsupported(l, key, true, "false");
  }
  return Input(*shape, {.name = l.name});
}

Json input_layer_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& in = dynamic_cast<const InputLayer&>(layer);
  Json shape = Json::array({nullptr});
  for (auto d : in.shape()) shape.push_back(d);
  return {{"batch_input_shape", shape},
          {"dtype", std::string(dtype_name(layer.dtype()))},
          {"sparse", false},
          {"ragged", false},
          {"name", layer.name()}};
}

// Activation (Keras's ReLU layer is its own class: layers/activations.cpp)

Tensor activation_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                              keras::WeightBudget& /*budget*/) {
  return Activation(keras::activation_option(c, "activation", l), {.name = l.name})(keras::one_input(in, l));
}

Json activation_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["activation"] = dynamic_cast<const ActivationLayer&>(layer).activation();
  return c;
}

// Add

Tensor add_from_config(const Json& /*c*/, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                       keras::WeightBudget& /*budget*/) {
  if (in.size() < 2) keras::bad(l, "expected at least 2 inputs, got " + std::to_string(in.size()));
  return Add({.name = l.name})(in);
}

Value add_to_onnx(onnx_export::NodeExport& e) {
  const auto& in = e.inputs();
  if (in.size() < 2) e.fail("expected two or more inputs, got " + std::to_string(in.size()));
  // ONNX Add takes two inputs: a chain for more.
  Value acc = in[0];
  for (std::size_t i = 1; i < in.size(); ++i) {
    const bool last = i + 1 == in.size();
    Value out{e.graph().unique(last ? e.base() : e.base() + "/sum" + std::to_string(i)), acc.rank};
    e.graph().node("Add", {acc.name, in[i].name}, out.name, e.base());
    acc = out;
  }
  return acc;
}

// Flatten

Tensor flatten_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                           keras::WeightBudget& /*budget*/) {
  keras::expect_channels_last(c, l);
  return Flatten({.name = l.name})(keras::one_input(in, l));
}

Json flatten_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["data_format"] = "channels_last";
  return c;
}

Value flatten_to_onnx(onnx_export::NodeExport& e) {
  auto& g = e.graph();
  const Value& x = e.inputs().at(0);
  if (x.rank != 4 && x.rank != 2) e.fail("expected a 2-D or 4-D input, got rank " + std::to_string(x.rank));
  std::string src = x.name;
  if (x.rank == 4) {  // Keras flattens (h, w, c)
    src = g.unique(e.base() + "/NHWC");
    g.node("Transpose", {x.name}, src, e.base() + "/Transpose").set_ints("perm", {0, 2, 3, 1});
  }
  Value out{g.unique(e.base()), 2};
  g.node("Flatten", {src}, out.name, e.base()).set_int("axis", 1);
  return out;
}

// Dense

Tensor dense_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                         keras::WeightBudget& budget) {
  const Tensor& x = keras::one_input(in, l);
  keras::check_rank(x, 2, l);
  const int units =
      static_cast<int>(keras::as_int(keras::require(c, "units", l), l, "units", 1, keras::kMaxDim));
  DenseOptions o;
  keras::expect_null(c, l, {"lora_rank"});
  keras::read_kernel_bias_rules(c, l, o);
  o.activation = keras::activation_option(c, "activation", l);
  o.use_bias = keras::bool_option(c, "use_bias", true, l);
  o.kernel_initializer = keras::initializer_option(c, "kernel_initializer", "glorot_uniform", &o.seed, l);
  o.bias_initializer = keras::initializer_option(c, "bias_initializer", "zeros", nullptr, l);
  o.name = l.name;
  budget.add(l, (static_cast<long double>(x.shape()[1]) + (o.use_bias ? 1 : 0)) * units);
  return Dense(units, o)(x);
}

Json dense_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& l = dynamic_cast<const DenseLayer&>(layer);
  const auto& o = l.options();
  Json c = keras::base_config(layer);
  c["units"] = l.units();
  c["activation"] = o.activation;
  c["use_bias"] = o.use_bias;
  c["kernel_initializer"] = keras::initializer_json(o.kernel_initializer, o.seed);
  c["bias_initializer"] = keras::initializer_json(o.bias_initializer, o.seed);
  keras::add_kernel_bias_rules(c, l.kernel(), o.use_bias ? l.bias().regularizer : o.bias_regularizer,
                               o.activity_regularizer, o.use_bias ? l.bias().constraint : o.bias_constraint);
  return c;
}

Value dense_to_onnx(onnx_export::NodeExport& e) {
  auto& dense = dynamic_cast<DenseLayer&>(e.layer());
  auto& g = e.graph();
  const Value& x = e.inputs().at(0);
  if (x.rank != 2) e.fail("expected a 2-D input, got rank " + std::to_string(x.rank));
  const Param& kp = dense.kernel();
  const std::int64_t in = kp.value.shape()[0], units = kp.value.shape()[1];
  // (in, units) -> (units, in): OpenCV 4.6 runs Gemm only with transB = 1.
  std::vector<float> w = onnx_export::float_values(kp), wt(w.size());
  for (std::int64_t i = 0; i < in; ++i)
    for (std::int64_t u = 0; u < units; ++u) wt[u * in + i] = w[i * units + u];
  std::vector<std::string> inputs{x.name, g.initializer(kp.name, {units, in}, wt)};
  if (dense.options().use_bias) {
    const Param& bp = dense.bias();
    inputs.push_back(g.initializer(bp.name, {units}, onnx_export::float_values(bp)));
  } else {  // C is optional, but not every runtime takes a Gemm without it
    std::vector<float> zeros(static_cast<std::size_t>(units), 0.0f);
    inputs.push_back(g.initializer(g.unique(e.base() + "/zero_bias"), {units}, zeros));
  }
  Value z{e.pre_activation_name(dense.options().activation, "Gemm"), 2};
  auto& n = g.node("Gemm", inputs, z.name, e.base());
  n.set_float("alpha", 1.0);
  n.set_float("beta", 1.0);
  n.set_int("transA", 0);
  n.set_int("transB", 1);
  return e.activation(dense.options().activation, z, false);
}

// Dropout

Tensor dropout_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                           keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  const double rate = keras::as_double(keras::require(c, "rate", l), l, "rate");
  if (!(rate >= 0.0 && rate < 1.0)) keras::bad(l, "expected rate in [0, 1), got " + std::to_string(rate));
  keras::expect_null(c, l, {"noise_shape"});
  DropoutOptions o;
  if (const Json* v = keras::find(c, "seed"); v && !v->is_null())
    o.seed = static_cast<std::uint64_t>(keras::as_int(*v, l, "seed", 0, INT64_MAX));
  o.name = l.name;
  return Dropout(rate, o)(x);
}

Json dropout_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["rate"] = dynamic_cast<const DropoutLayer&>(layer).rate();
  c["noise_shape"] = nullptr;
  c["seed"] = nullptr;
  return c;
}

// The config of a layer without options of its own.
Json plain_config(const Layer& layer, const Shape& /*output_shape*/) { return keras::base_config(layer); }
}  // namespace

void register_input_layer(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "InputLayer";
  e.from_config = input_layer_from_config;
  e.to_config = input_layer_to_config;
  // The model's inputs become the graph's inputs (io/onnx.cpp); an input node reaches this only
  // when the model does not list it.
  e.to_onnx = [](onnx_export::NodeExport& n) -> Value { n.fail("is an input the model does not list"); };
  out.push_back(std::move(e));
}

void register_activation(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Activation";
  e.from_config = activation_from_config;
  e.to_config = activation_to_config;
  e.to_onnx = [](onnx_export::NodeExport& n) {
    return n.activation(dynamic_cast<ActivationLayer&>(n.layer()).activation(), n.inputs().at(0), true);
  };
  e.fusion.is_relu = [](const Layer& l) {
    return dynamic_cast<const ActivationLayer&>(l).activation() == "relu";
  };
  e.fusion.reads_bf16_gradient = [](const Layer& l) {
    return dynamic_cast<const ActivationLayer&>(l).activation() == "relu" && l.dtype() == DType::float32;
  };
  e.fusion.set_bf16_only_input_gradient = [](Layer& l, bool on) {
    dynamic_cast<ActivationLayer&>(l).set_bf16_only_input_gradient(on);
  };
  out.push_back(std::move(e));
}

void register_add(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Add";
  e.from_config = add_from_config;
  e.to_config = plain_config;
  e.to_onnx = add_to_onnx;
  e.fusion.takes_relu = true;
  e.fusion.set_sum_input = [](Layer& add, int input) { dynamic_cast<AddLayer&>(add).set_sum_input(input); };
  e.fusion.passes_gradient = true;
  out.push_back(std::move(e));
}

void register_flatten(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Flatten";
  e.from_config = flatten_from_config;
  e.to_config = flatten_to_config;
  e.to_onnx = flatten_to_onnx;
  out.push_back(std::move(e));
}

void register_dense(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Dense";
  e.from_config = dense_from_config;
  e.to_config = dense_to_config;
  e.to_onnx = dense_to_onnx;
  out.push_back(std::move(e));
}

void register_dropout(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Dropout";
  e.from_config = dropout_from_config;
  e.to_config = dropout_to_config;
  e.to_onnx = [](onnx_export::NodeExport& n) { return n.inputs().at(0); };  // the identity in inference
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
