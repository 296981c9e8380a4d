// ReLU (with options), LeakyReLU and Softmax: forward and backward side by side, then their
// registry entries (Keras config, ONNX export, fusion). A ReLU without options computes as
// Activation("relu") does (layers/util.h), so that a producer may fuse it the same way.
#include "reskit/layers/activations.h"

#include <cmath>
#include <utility>

#include "kernels/kernels.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

namespace {

// A number reskit can print in a message.
std::string num(double v) {
  std::string s = std::to_string(v);
  return s;
}

Tensor relu_kernel_forward(const kernels::ReluParams& p, const Tensor& x, DType dtype) {
  Tensor y = Tensor::uninitialized(x.shape(), dtype);
  visit_dtype(dtype, [&]<class T>(T) { kernels::relu_forward<T>(p, x.data<T>(), y.data<T>()); });
  return y;
}

Tensor relu_kernel_backward(const kernels::ReluParams& p, const Tensor& x, const Tensor& dy, DType dtype) {
  Tensor dx = Tensor::uninitialized(dy.shape(), dtype);
  visit_dtype(dtype,
              [&]<class T>(T) { kernels::relu_backward<T>(p, x.data<T>(), dy.data<T>(), dx.data<T>()); });
  return dx;
}

}  // namespace

// ---------------------------------------------------------------- ReLU
// y = min(x·[x > t], max_value) − negative_slope·max(t − x, 0), elementwise

ReLULayer::ReLULayer(ReLUOptions options) : Layer("ReLU", options.name), options_(std::move(options)) {
  auto check = [&](const char* key, double v) {
    if (!std::isfinite(v) || v < 0)
      throw ConfigError(where() + ": expected " + key + " >= 0 (as Keras), got " + num(v));
  };
  if (options_.max_value) check("max_value", *options_.max_value);
  check("negative_slope", options_.negative_slope);
  check("threshold", options_.threshold);
}

bool ReLULayer::plain() const {
  return !options_.max_value && options_.negative_slope == 0.0 && options_.threshold == 0.0;
}

Shape ReLULayer::output_shape(const std::vector<Shape>& inputs) const { return single_input(inputs); }

namespace {
kernels::ReluParams relu_params(const ReLUOptions& o, std::int64_t n) {
  return {n, o.negative_slope, o.threshold, o.max_value.has_value(), o.max_value.value_or(0.0)};
}
}  // namespace

Tensor ReLULayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  x_ = inputs[0];
  pass_gradient_ = fused_relu_backward();
  if (fused_relu()) return x_;  // the producer applied this ReLU already
  if (plain()) return detail::activated(detail::Act::relu, x_);
  return relu_kernel_forward(relu_params(options_, x_.numel()), x_, dtype());
}

std::vector<Tensor> ReLULayer::backward(const Tensor& dy) {
  if (pass_gradient_) return {dy};
  if (plain()) return {detail::activation_backward(detail::Act::relu, x_, x_, dy)};
  return {relu_kernel_backward(relu_params(options_, x_.numel()), x_, dy, dtype())};
}

ReLU::ReLU(ReLUOptions options) : LayerRef(std::make_shared<ReLULayer>(std::move(options))) {}

// ---------------------------------------------------------------- LeakyReLU
// y = x for x > 0, alpha·x otherwise (Keras backend.relu with negative_slope = alpha)

LeakyReLULayer::LeakyReLULayer(LeakyReLUOptions options)
    : Layer("LeakyReLU", options.name), options_(std::move(options)) {
  if (!std::isfinite(options_.alpha) || options_.alpha < 0)
    throw ConfigError(where() + ": expected alpha (negative_slope) >= 0, got " + num(options_.alpha));
}

Shape LeakyReLULayer::output_shape(const std::vector<Shape>& inputs) const { return single_input(inputs); }

Tensor LeakyReLULayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  x_ = inputs[0];
  return relu_kernel_forward({x_.numel(), options_.alpha, 0.0, false, 0.0}, x_, dtype());
}

std::vector<Tensor> LeakyReLULayer::backward(const Tensor& dy) {
  return {relu_kernel_backward({x_.numel(), options_.alpha, 0.0, false, 0.0}, x_, dy, dtype())};
}

LeakyReLU::LeakyReLU(LeakyReLUOptions options)
    : LayerRef(std::make_shared<LeakyReLULayer>(std::move(options))) {}

// ---------------------------------------------------------------- Softmax
// y = exp(x − max) / Σ exp(x − max) along the axis; dx = y ⊙ (dy − Σ dy·y)

SoftmaxLayer::SoftmaxLayer(SoftmaxOptions options)
    : Layer("Softmax", options.name), options_(std::move(options)) {}

namespace {
// The axis, non-negative, for a rank-`rank` input; -1 when out of range or the batch axis.
int softmax_axis(int axis, std::size_t rank) {
  const int r = static_cast<int>(rank);
  const int a = axis < 0 ? axis + r : axis;
  return a >= 1 && a < r ? a : -1;
}

kernels::SoftmaxParams softmax_params(const Shape& s, int axis) {
  kernels::SoftmaxParams p;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    if (d < axis) p.outer *= s[static_cast<std::size_t>(d)];
    if (d == axis) p.dim = s[static_cast<std::size_t>(d)];
    if (d > axis) p.inner *= s[static_cast<std::size_t>(d)];
  }
  return p;
}
}  // namespace

Shape SoftmaxLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  if (softmax_axis(options_.axis, in.size()) < 0) {
    shape_error("an input with a non-batch axis " + std::to_string(options_.axis), "shape " + shape_str(in));
  }
  return in;
}

void SoftmaxLayer::do_build(const std::vector<Shape>& inputs) {
  rank_ = static_cast<int>(inputs.at(0).size());
}

bool SoftmaxLayer::outputs_softmax() const {
  return rank_ > 0 && softmax_axis(options_.axis, static_cast<std::size_t>(rank_)) == rank_ - 1;
}

Tensor SoftmaxLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  x_ = inputs[0];
  output_shape({x_.shape()});
  const auto p = softmax_params(x_.shape(), softmax_axis(options_.axis, x_.shape().size()));
  y_ = Tensor::uninitialized(x_.shape(), dtype());
  visit_dtype(dtype(), [&]<class T>(T) { kernels::softmax_forward<T>(p, x_.data<T>(), y_.data<T>()); });
  return y_;
}

std::vector<Tensor> SoftmaxLayer::backward(const Tensor& dy) {
  const auto p = softmax_params(y_.shape(), softmax_axis(options_.axis, y_.shape().size()));
  Tensor dx = Tensor::uninitialized(dy.shape(), dtype());
  visit_dtype(dtype(),
              [&]<class T>(T) { kernels::softmax_backward<T>(p, y_.data<T>(), dy.data<T>(), dx.data<T>()); });
  return {dx};
}

std::vector<Tensor> SoftmaxLayer::backward_from_logits(const Tensor& grad_logits) { return {grad_logits}; }

Softmax::Softmax(SoftmaxOptions options) : LayerRef(std::make_shared<SoftmaxLayer>(std::move(options))) {}

// ---------------------------------------------------------------- registry entries
// Keras configs (tf.keras 2.x and Keras 3), ONNX export, fusion.

namespace layers {
namespace {
using keras::Json;
using onnx_export::Value;

// A float option: absent or null gives `fallback`.
double double_option(const Json& c, const char* key, double fallback, const keras::LayerCtx& l) {
  const Json* v = keras::find(c, key);
  return v && !v->is_null() ? keras::as_double(*v, l, key) : fallback;
}

// A scalar float32 initializer.
std::string scalar(onnx_export::NodeExport& e, const std::string& what, double v) {
  const float f = static_cast<float>(v);
  return e.graph().initializer(e.graph().unique(e.base() + "/" + what), {}, std::span<const float>(&f, 1));
}

// ReLU

Tensor relu_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                        keras::WeightBudget& /*budget*/) {
  ReLUOptions o;
  if (const Json* v = keras::find(c, "max_value"); v && !v->is_null())
    o.max_value = keras::as_double(*v, l, "max_value");
  // Keras refuses None for these two (a null here is a file written otherwise): read as the default.
  o.negative_slope = double_option(c, "negative_slope", 0.0, l);
  o.threshold = double_option(c, "threshold", 0.0, l);
  for (const char* key : {"max_value", "negative_slope", "threshold"}) {
    const Json* v = keras::find(c, key);
    if (v && v->is_number() && v->get<double>() < 0) keras::unsupported(l, key, *v, "values >= 0, as Keras");
  }
  o.name = l.name;
  return ReLU(o)(keras::one_input(in, l));
}

Json relu_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& o = dynamic_cast<const ReLULayer&>(layer).options();
  Json c = keras::base_config(layer);
  c["max_value"] = o.max_value ? Json(*o.max_value) : Json(nullptr);
  c["negative_slope"] = o.negative_slope;
  c["threshold"] = o.threshold;
  return c;
}

// OpenCV 4.6's dnn runs Relu, LeakyRelu and Sub/Add/Mul with constants, but neither Clip with
// min/max inputs (opset 11+) nor Min, Greater or Where. So without a threshold: min(relu(x), m) as
// relu(x) − relu(x − m) (exact up to one rounding), and −slope·relu(−x) as slope·(x − relu(x)).
// A nonzero threshold makes a step at x = threshold that Relu cannot build: Greater and Where
// then (ONNX Runtime runs them; OpenCV 4.6 does not).
Value relu_to_onnx(onnx_export::NodeExport& e) {
  const auto& o = dynamic_cast<const ReLULayer&>(e.layer()).options();
  auto& g = e.graph();
  const Value& x = e.inputs().at(0);
  Value out{g.unique(e.base()), x.rank};
  const bool slope = o.negative_slope != 0.0;
  auto step = [&](const std::string& op, const std::vector<std::string>& in) {
    const std::string v = g.unique(e.base() + "/" + op);
    g.node(op, in, v, e.base() + "/" + op);
    return v;
  };
  if (o.threshold == 0.0 && !o.max_value) {
    if (!slope) {
      g.node("Relu", {x.name}, out.name, e.base());
    } else {
      g.node("LeakyRelu", {x.name}, out.name, e.base()).set_float("alpha", o.negative_slope);
    }
    return out;
  }
  // The part for x > threshold, min(x, max_value), written to the output when it is the last step.
  auto finish = [&](const std::string& op, const std::vector<std::string>& in) {
    if (slope) return step(op, in);
    g.node(op, in, out.name, e.base());
    return out.name;
  };
  std::string pos, above, t;
  if (o.threshold == 0.0) {
    pos = step("Relu", {x.name});
  } else {
    t = scalar(e, "threshold", o.threshold);
    above = step("Greater", {x.name, t});
    pos = x.name;
  }
  if (o.max_value) {
    const std::string over = step("Relu", {step("Sub", {x.name, scalar(e, "max_value", *o.max_value)})});
    pos = above.empty() ? finish("Sub", {pos, over}) : step("Sub", {pos, over});
  }
  if (!above.empty()) pos = finish("Where", {above, pos, scalar(e, "zero", 0.0)});
  if (!slope) return out;
  // − slope·relu(threshold − x): slope·(x − relu(x)) when the threshold is 0.
  std::string neg;
  if (o.threshold == 0.0) {
    neg = step("Sub", {x.name, step("Relu", {x.name})});
    neg = step("Mul", {neg, scalar(e, "negative_slope", o.negative_slope)});
    g.node("Add", {pos, neg}, out.name, e.base());
  } else {
    neg = step("Relu", {step("Sub", {t, x.name})});
    neg = step("Mul", {neg, scalar(e, "negative_slope", o.negative_slope)});
    g.node("Sub", {pos, neg}, out.name, e.base());
  }
  return out;
}

// LeakyReLU: tf.keras 2.x writes alpha, Keras 3 negative_slope.

Tensor leaky_relu_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                              keras::WeightBudget& /*budget*/) {
  LeakyReLUOptions o;
  const Json* alpha = keras::find(c, "alpha");
  const Json* slope = keras::find(c, "negative_slope");
  if (alpha && !alpha->is_null() && slope && !slope->is_null() && *alpha != *slope) {
    keras::bad(l, "expected one of alpha and negative_slope, got alpha=" + keras::short_dump(*alpha) +
                      " and negative_slope=" + keras::short_dump(*slope));
  }
  o.alpha = double_option(c, "alpha", double_option(c, "negative_slope", 0.3, l), l);
  if (o.alpha < 0)
    keras::unsupported(l, alpha && !alpha->is_null() ? "alpha" : "negative_slope", o.alpha, "values >= 0");
  o.name = l.name;
  return LeakyReLU(o)(keras::one_input(in, l));
}

Json leaky_relu_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["alpha"] = dynamic_cast<const LeakyReLULayer&>(layer).options().alpha;
  return c;
}

Value leaky_relu_to_onnx(onnx_export::NodeExport& e) {
  const Value& x = e.inputs().at(0);
  Value out{e.graph().unique(e.base()), x.rank};
  e.graph()
      .node("LeakyRelu", {x.name}, out.name, e.base())
      .set_float("alpha", dynamic_cast<const LeakyReLULayer&>(e.layer()).options().alpha);
  return out;
}

// Softmax: axis an integer (or a list of one, as tf.keras 2.x allows).

Tensor softmax_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                           keras::WeightBudget& /*budget*/) {
  SoftmaxOptions o;
  if (const Json* a = keras::find(c, "axis"); a && !a->is_null()) {
    const Json* one = a;
    if (a->is_array()) {
      if (a->size() != 1) keras::unsupported(l, "axis", *a, "one axis");
      one = &(*a)[0];
    }
    o.axis = static_cast<int>(keras::as_int(*one, l, "axis", -8, 8));
  }
  o.name = l.name;
  return Softmax(o)(keras::one_input(in, l));
}

Json softmax_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["axis"] = dynamic_cast<const SoftmaxLayer&>(layer).options().axis;
  return c;
}

Value softmax_to_onnx(onnx_export::NodeExport& e) {
  const Value& x = e.inputs().at(0);
  const int r = x.rank;
  int a =
      softmax_axis(dynamic_cast<const SoftmaxLayer&>(e.layer()).options().axis, static_cast<std::size_t>(r));
  if (a < 0) e.fail("has a softmax axis outside its rank-" + std::to_string(r) + " input");
  if (r == 4) a = a == 3 ? 1 : a + 1;  // NHWC axis -> NCHW axis
  Value out{e.graph().unique(e.base()), r};
  e.graph().node("Softmax", {x.name}, out.name, e.base()).set_int("axis", a);
  return out;
}

}  // namespace

void register_relu(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "ReLU";
  e.from_config = relu_from_config;
  e.to_config = relu_to_config;
  e.to_onnx = relu_to_onnx;
  e.fusion.is_relu = [](const Layer& l) { return dynamic_cast<const ReLULayer&>(l).plain(); };
  out.push_back(std::move(e));
}

void register_leaky_relu(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "LeakyReLU";
  e.from_config = leaky_relu_from_config;
  e.to_config = leaky_relu_to_config;
  e.to_onnx = leaky_relu_to_onnx;
  out.push_back(std::move(e));
}

void register_softmax(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Softmax";
  e.from_config = softmax_from_config;
  e.to_config = softmax_to_config;
  e.to_onnx = softmax_to_onnx;
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
