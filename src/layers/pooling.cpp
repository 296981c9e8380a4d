// Pooling layers: forward and backward side by side, then their registry entries (Keras config,
// ONNX export).
#include "reskit/layers/pooling.h"

#include "kernels/kernels.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

namespace {
const char* pool_class(Pooling2DLayer::Kind k) {
  return k == Pooling2DLayer::Kind::max ? "MaxPooling2D" : "AveragePooling2D";
}
const char* global_class(Pooling2DLayer::Kind k) {
  return k == Pooling2DLayer::Kind::max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D";
}
void check_4d(const Layer& l, const Shape& in) {
  if (in.size() != 4) {
    throw ShapeError(l.where() + ": expected a 4-D input (batch, rows, cols, channels), got shape " +
                     shape_str(in));
  }
}
}  // namespace

// ---------------------------------------------------------------- MaxPooling2D / AveragePooling2D
// x (N,H,W,C) -> y (N,P,Q,C)

Pooling2DLayer::Pooling2DLayer(Kind kind, std::array<int, 2> pool_size, Pooling2DOptions options)
    : Layer(pool_class(kind), options.name),
      kind_(kind),
      pool_(pool_size),
      strides_(options.strides.value_or(pool_size)),
      padding_(options.padding) {
  if (pool_[0] <= 0 || pool_[1] <= 0) {
    throw ConfigError(where() + ": expected a positive pool_size, got (" + std::to_string(pool_[0]) + ", " +
                      std::to_string(pool_[1]) + ")");
  }
  if (strides_[0] <= 0 || strides_[1] <= 0) {
    throw ConfigError(where() + ": expected positive strides, got (" + std::to_string(strides_[0]) + ", " +
                      std::to_string(strides_[1]) + ")");
  }
  detail::check_padding_name(where(), padding_);
}

Shape Pooling2DLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_4d(*this, in);
  auto ph = detail::resolve_padding(padding_, in[1], pool_[0], strides_[0]);
  auto pw = detail::resolve_padding(padding_, in[2], pool_[1], strides_[1]);
  if (ph.out == 0 || pw.out == 0) {
    shape_error("an input of at least " + std::to_string(pool_[0]) + "x" + std::to_string(pool_[1]) +
                    " for padding 'valid'",
                "shape " + shape_str(in));
  }
  return {in[0], ph.out, pw.out, in[3]};
}

namespace {
kernels::Pool2DParams pool_params(const Shape& x, const Shape& y, std::array<int, 2> pool,
                                  std::array<int, 2> strides, const std::string& padding) {
  kernels::Pool2DParams p;
  p.n = x[0], p.h = x[1], p.w = x[2], p.c = x[3], p.p = y[1], p.q = y[2];
  p.r = pool[0], p.s = pool[1], p.stride_h = strides[0], p.stride_w = strides[1];
  auto ph = detail::resolve_padding(padding, p.h, p.r, p.stride_h);
  auto pw = detail::resolve_padding(padding, p.w, p.s, p.stride_w);
  p.pad_top = ph.before, p.pad_bottom = ph.after, p.pad_left = pw.before, p.pad_right = pw.after;
  return p;
}
}  // namespace

Tensor Pooling2DLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  Shape ys = output_shape({x.shape()});
  Tensor y = Tensor::uninitialized(ys, dtype());
  auto p = pool_params(x.shape(), ys, pool_, strides_, padding_);
  visit_dtype(dtype(), [&]<class T>(T) {
    if (kind_ == Kind::max) {
      kernels::max_pool2d_forward<T>(p, x.data<T>(), y.data<T>());
    } else {
      kernels::avg_pool2d_forward<T>(p, x.data<T>(), y.data<T>());
    }
  });
  x_ = x;
  return y;
}

std::vector<Tensor> Pooling2DLayer::backward(const Tensor& dy) {
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  auto p = pool_params(x_.shape(), dy.shape(), pool_, strides_, padding_);
  visit_dtype(dtype(), [&]<class T>(T) {
    if (kind_ == Kind::max) {
      kernels::max_pool2d_backward<T>(p, x_.data<T>(), dy.data<T>(), dx.data<T>());
    } else {
      kernels::avg_pool2d_backward<T>(p, dy.data<T>(), dx.data<T>());
    }
  });
  return {dx};
}

MaxPooling2D::MaxPooling2D(std::array<int, 2> pool_size, Pooling2DOptions options)
    : LayerRef(std::make_shared<Pooling2DLayer>(Pooling2DLayer::Kind::max, pool_size, std::move(options))) {}
AveragePooling2D::AveragePooling2D(std::array<int, 2> pool_size, Pooling2DOptions options)
    : LayerRef(
          std::make_shared<Pooling2DLayer>(Pooling2DLayer::Kind::average, pool_size, std::move(options))) {}

// ---------------------------------------------------------------- Global pooling
// x (N,H,W,C) -> y (N,C): one window covering H x W

GlobalPooling2DLayer::GlobalPooling2DLayer(Pooling2DLayer::Kind kind, GlobalPooling2DOptions options)
    : Layer(global_class(kind), options.name), kind_(kind) {}

Shape GlobalPooling2DLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  check_4d(*this, in);
  if (in[1] == 0 || in[2] == 0) shape_error("non-empty rows and cols", "shape " + shape_str(in));
  return {in[0], in[3]};
}

namespace {
kernels::Pool2DParams global_params(const Shape& x) {
  kernels::Pool2DParams p;
  p.n = x[0], p.h = x[1], p.w = x[2], p.c = x[3], p.p = 1, p.q = 1;
  p.r = x[1], p.s = x[2], p.stride_h = x[1], p.stride_w = x[2];
  return p;
}
}  // namespace

Tensor GlobalPooling2DLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  Tensor y = Tensor::uninitialized(output_shape({x.shape()}), dtype());
  auto p = global_params(x.shape());
  visit_dtype(dtype(), [&]<class T>(T) {
    if (kind_ == Pooling2DLayer::Kind::max) {
      kernels::max_pool2d_forward<T>(p, x.data<T>(), y.data<T>());
    } else {
      kernels::avg_pool2d_forward<T>(p, x.data<T>(), y.data<T>());
    }
  });
  x_ = x;
  return y;
}

std::vector<Tensor> GlobalPooling2DLayer::backward(const Tensor& dy) {
  Tensor dx = Tensor::uninitialized(x_.shape(), dtype());
  auto p = global_params(x_.shape());
  visit_dtype(dtype(), [&]<class T>(T) {
    if (kind_ == Pooling2DLayer::Kind::max) {
      kernels::max_pool2d_backward<T>(p, x_.data<T>(), dy.data<T>(), dx.data<T>());
    } else {
      kernels::avg_pool2d_backward<T>(p, dy.data<T>(), dx.data<T>());
    }
  });
  return {dx};
}

GlobalMaxPooling2D::GlobalMaxPooling2D(GlobalPooling2DOptions options)
    : LayerRef(std::make_shared<GlobalPooling2DLayer>(Pooling2DLayer::Kind::max, std::move(options))) {}
GlobalAveragePooling2D::GlobalAveragePooling2D(GlobalPooling2DOptions options)
    : LayerRef(std::make_shared<GlobalPooling2DLayer>(Pooling2DLayer::Kind::average, std::move(options))) {}

// ---------------------------------------------------------------- registry entries
// The pooling layers in Keras configs and ONNX (layers/registry.h).

namespace layers {
namespace {
using keras::Json;

Tensor pooling2d_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                             bool max) {
  const Tensor& x = keras::one_input(in, l);
  keras::check_rank(x, 4, l);
  std::array<int, 2> pool{2, 2};
  if (const Json* v = keras::find(c, "pool_size"); v && !v->is_null())
    pool = keras::as_pair(*v, l, "pool_size", 1, keras::kMaxDim);
  Pooling2DOptions o;
  if (const Json* v = keras::find(c, "strides"); v && !v->is_null())
    o.strides = keras::as_pair(*v, l, "strides", 1, keras::kMaxDim);
  o.padding = keras::padding_option(c, l);
  keras::expect_channels_last(c, l);
  o.name = l.name;
  return max ? MaxPooling2D(pool, o)(x) : AveragePooling2D(pool, o)(x);
}

Json pooling2d_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& l = dynamic_cast<const Pooling2DLayer&>(layer);
  Json c = keras::base_config(layer);
  c["pool_size"] = keras::pair_json(l.pool_size());
  c["padding"] = l.padding();
  c["strides"] = keras::pair_json(l.strides());
  c["data_format"] = "channels_last";
  return c;
}

onnx_export::Value pooling2d_to_onnx(onnx_export::NodeExport& e, bool max) {
  auto& pool = dynamic_cast<Pooling2DLayer&>(e.layer());
  auto& g = e.graph();
  const onnx_export::Value& x = e.input4d();
  onnx_export::Value out{g.unique(e.base()), 4};
  auto& n = g.node(max ? "MaxPool" : "AveragePool", {x.name}, out.name, e.base());
  const auto ps = pool.pool_size(), st = pool.strides();
  n.set_ints("kernel_shape", {ps[0], ps[1]});
  n.set_ints("strides", {st[0], st[1]});
  // MaxPool never lets a padded cell win; AveragePool leaves them out of the count (Keras).
  n.set_ints("pads", e.pads(pool.padding(), ps, st));
  if (!max) n.set_int("count_include_pad", 0);
  return out;
}

Tensor global_pooling2d_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                    bool max) {
  const Tensor& x = keras::one_input(in, l);
  keras::check_rank(x, 4, l);
  keras::expect_channels_last(c, l);
  if (keras::bool_option(c, "keepdims", false, l)) keras::unsupported(l, "keepdims", true, "false");
  GlobalPooling2DOptions o{.name = l.name};
  return max ? GlobalMaxPooling2D(o)(x) : GlobalAveragePooling2D(o)(x);
}

Json global_pooling2d_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["data_format"] = "channels_last";
  c["keepdims"] = false;
  return c;
}

onnx_export::Value global_pooling2d_to_onnx(onnx_export::NodeExport& e, bool max) {
  auto& g = e.graph();
  const onnx_export::Value& x = e.input4d();
  const std::string pooled = g.unique(e.base() + (max ? "/GlobalMaxPool" : "/GlobalAveragePool"));
  g.node(max ? "GlobalMaxPool" : "GlobalAveragePool", {x.name}, pooled, e.base());
  onnx_export::Value out{g.unique(e.base()), 2};  // (N, C, 1, 1) -> (N, C)
  g.node("Flatten", {pooled}, out.name, e.base() + "/Flatten").set_int("axis", 1);
  return out;
}
}  // namespace

void register_pooling2d(std::vector<LayerEntry>& out) {
  for (bool max : {true, false}) {
    LayerEntry e;
    e.class_name = max ? "MaxPooling2D" : "AveragePooling2D";
    e.from_config = [max](const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                          keras::WeightBudget&) { return pooling2d_from_config(c, l, in, max); };
    e.aliases = {max ? "MaxPool2D" : "AvgPool2D"};
    e.to_config = pooling2d_to_config;
    e.to_onnx = [max](onnx_export::NodeExport& n) { return pooling2d_to_onnx(n, max); };
    out.push_back(std::move(e));
  }
}

void register_global_pooling2d(std::vector<LayerEntry>& out) {
  for (bool max : {true, false}) {
    LayerEntry e;
    e.class_name = max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D";
    e.from_config = [max](const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                          keras::WeightBudget&) { return global_pooling2d_from_config(c, l, in, max); };
    e.aliases = {max ? "GlobalMaxPool2D" : "GlobalAvgPool2D"};
    e.to_config = global_pooling2d_to_config;
    e.to_onnx = [max](onnx_export::NodeExport& n) { return global_pooling2d_to_onnx(n, max); };
    out.push_back(std::move(e));
  }
}
}  // namespace layers

}  // namespace reskit
