// Rescaling and Normalization: forward and backward side by side, then their registry entries
// (Keras config, ONNX export). Both compute in the layer's dtype through kernels::scale_offset_*
// and kernels::normalize_* over a small table of per-index values.
#include "reskit/layers/preprocessing.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "kernels/kernels.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

namespace {

std::string values_str(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// A table of `n` values in dtype: v broadcast (one value) or copied (n values).
Tensor table_of(const std::vector<double>& v, std::int64_t n, DType dtype) {
  Tensor t({n}, dtype);
  for (std::int64_t i = 0; i < n; ++i) t.set(i, v.size() == 1 ? v[0] : v[static_cast<std::size_t>(i)]);
  return t;
}

}  // namespace

// ---------------------------------------------------------------- Rescaling
// x (N, ..., C) -> y = x·scale + offset; dx = dy·scale (scale, offset: one value or C)

RescalingLayer::RescalingLayer(std::vector<double> scale, RescalingOptions options)
    : Layer("Rescaling", options.name), scale_(std::move(scale)), options_(std::move(options)) {
  for (const auto* v : {&scale_, &options_.offset}) {
    if (v->empty()) throw ConfigError(where() + ": expected a scale and an offset, got an empty list");
    for (double d : *v)
      if (!std::isfinite(d)) throw ConfigError(where() + ": expected finite values, got " + values_str(*v));
  }
}

Shape RescalingLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  for (const auto* v : {&scale_, &options_.offset}) {
    if (v->size() == 1) continue;
    if (in.size() < 2 || in.back() != static_cast<std::int64_t>(v->size())) {
      shape_error(std::to_string(v->size()) + " channels (the last axis) for " + values_str(*v),
                  "shape " + shape_str(in));
    }
  }
  return in;
}

Tensor RescalingLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  output_shape({x.shape()});
  const std::int64_t period = static_cast<std::int64_t>(std::max(scale_.size(), options_.offset.size()));
  scale_table_ = table_of(scale_, period, dtype());
  Tensor offset = table_of(options_.offset, period, dtype());
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  kernels::BroadcastParams p{x.numel(), period};
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::scale_offset_forward<T>(p, x.data<T>(), scale_table_.data<T>(), offset.data<T>(), y.data<T>());
  });
  return y;
}

std::vector<Tensor> RescalingLayer::backward(const Tensor& dy) {
  Tensor dx = Tensor::uninitialized(dy.shape(), dtype());
  kernels::BroadcastParams p{dy.numel(), scale_table_.numel()};
  visit_dtype(dtype(), [&]<class T>(T) {
    kernels::scale_backward<T>(p, dy.data<T>(), scale_table_.data<T>(), dx.data<T>());
  });
  return {dx};
}

Rescaling::Rescaling(double scale, RescalingOptions options)
    : Rescaling(std::vector<double>{scale}, std::move(options)) {}
Rescaling::Rescaling(std::vector<double> scale, RescalingOptions options)
    : LayerRef(std::make_shared<RescalingLayer>(std::move(scale), std::move(options))) {}

// ---------------------------------------------------------------- Normalization
// x (N, d1, ..., dk) -> y = (x − mean) / max(sqrt(variance), eps), mean and variance indexed by
// the kept axes; dx = dy / max(sqrt(variance), eps). invert: y = mean + x·max(...), dx = dy·max(...)

NormalizationLayer::NormalizationLayer(NormalizationOptions options)
    : Layer("Normalization", options.name), options_(std::move(options)) {
  if (options_.mean.has_value() != options_.variance.has_value()) {
    throw ConfigError(where() + ": expected both mean and variance or neither, got only " +
                      (options_.mean ? "mean" : "variance"));
  }
  for (const auto* v : {&options_.mean, &options_.variance}) {
    if (!*v) continue;
    if ((*v)->empty()) throw ConfigError(where() + ": expected mean and variance values, got an empty list");
    for (double d : **v)
      if (!std::isfinite(d)) throw ConfigError(where() + ": expected finite values, got " + values_str(**v));
  }
  if (options_.variance) {
    for (double d : *options_.variance)
      if (d < 0)
        throw ConfigError(where() + ": expected variance >= 0, got " + values_str(*options_.variance));
  }
}

std::vector<int> NormalizationLayer::kept_axes(std::size_t rank) const {
  std::vector<int> out;
  const int r = static_cast<int>(rank);
  for (int a : options_.axis) {
    const int k = a < 0 ? a + r : a;
    if (k < 1 || k >= r) {
      shape_error("axis in [1, " + std::to_string(r) + ") or [-" + std::to_string(r - 1) +
                      ", 0) for a rank-" + std::to_string(r) + " input (not the batch axis)",
                  "axis " + std::to_string(a));
    }
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape NormalizationLayer::output_shape(const std::vector<Shape>& inputs) const {
  const Shape& in = single_input(inputs);
  Shape kept;
  for (int k : kept_axes(in.size())) {
    if (in[static_cast<std::size_t>(k)] < 0)
      shape_error("a known size on axis " + std::to_string(k), shape_str(in));
    kept.push_back(in[static_cast<std::size_t>(k)]);
  }
  if (built() && kept != kept_shape_) {
    shape_error("kept axes of shape " + shape_str(kept_shape_),
                shape_str(kept) + " in input " + shape_str(in));
  }
  const std::int64_t n = shape_numel(kept);
  for (const auto* v : {&options_.mean, &options_.variance}) {
    if (*v && (*v)->size() != 1 && static_cast<std::int64_t>((*v)->size()) != n) {
      shape_error(
          "1 or " + std::to_string(n) + " mean and variance values (kept shape " + shape_str(kept) + ")",
          std::to_string((*v)->size()));
    }
  }
  return in;
}

void NormalizationLayer::do_build(const std::vector<Shape>& inputs) {
  kept_shape_.clear();
  for (int k : kept_axes(inputs[0].size())) kept_shape_.push_back(inputs[0][static_cast<std::size_t>(k)]);
  output_shape(inputs);
  if (options_.mean) {
    const std::int64_t n = shape_numel(kept_shape_);
    given_mean_ = table_of(*options_.mean, n, dtype()).reshape(kept_shape_);
    given_variance_ = table_of(*options_.variance, n, dtype()).reshape(kept_shape_);
    return;
  }
  add_param("mean", kept_shape_, false);
  add_param("variance", kept_shape_, false).value.fill(1.0);
  add_param("count", {}, false);
}

Param& NormalizationLayer::mean() { return built_param(0, "mean"); }
const Param& NormalizationLayer::mean() const { return built_param(0, "mean"); }
Param& NormalizationLayer::variance() { return built_param(1, "variance"); }
const Param& NormalizationLayer::variance() const { return built_param(1, "variance"); }
Param& NormalizationLayer::count() { return built_param(2, "count"); }
const Param& NormalizationLayer::count() const { return built_param(2, "count"); }

const Tensor& NormalizationLayer::statistics_mean() const {
  return options_.mean ? given_mean_ : mean().value;
}
const Tensor& NormalizationLayer::statistics_variance() const {
  return options_.mean ? given_variance_ : variance().value;
}

void NormalizationLayer::make_tables(const Shape& input) {
  const std::vector<int> kept = kept_axes(input.size());
  // The table spans the axes from the first kept one on; the reduced axes before it repeat it.
  const std::size_t first = kept.empty() ? input.size() : static_cast<std::size_t>(kept[0]);
  period_ = 1;
  for (std::size_t d = first; d < input.size(); ++d) period_ *= input[d];
  const Tensor& m = statistics_mean();
  const Tensor& v = statistics_variance();
  mean_table_ = Tensor::uninitialized({period_}, dtype());
  denom_table_ = Tensor::uninitialized({period_}, dtype());
  visit_dtype(dtype(), [&]<class T>(T) {
    const T* mv = m.data<T>();
    const T* vv = v.data<T>();
    T* mt = mean_table_.data<T>();
    T* dt = denom_table_.data<T>();
    for (std::int64_t i = 0; i < period_; ++i) {
      // i's index among the kept axes: its coordinates on them, row-major in the kept shape.
      std::int64_t rest = i, index = 0, stride = 1;
      for (std::size_t d = input.size(); d-- > first;) {
        const std::int64_t coord = rest % input[d];
        rest /= input[d];
        if (std::find(kept.begin(), kept.end(), static_cast<int>(d)) != kept.end()) {
          index += coord * stride;
          stride *= input[d];
        }
      }
      mt[i] = mv[index];
      dt[i] = std::max(std::sqrt(vv[index]), static_cast<T>(kNormalizationEpsilon));
    }
  });
}

Tensor NormalizationLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  const Tensor& x = inputs[0];
  output_shape({x.shape()});
  make_tables(x.shape());
  Tensor y = Tensor::uninitialized(x.shape(), dtype());
  kernels::BroadcastParams p{x.numel(), period_};
  visit_dtype(dtype(), [&]<class T>(T) {
    if (options_.invert) {
      kernels::scale_offset_forward<T>(p, x.data<T>(), denom_table_.data<T>(), mean_table_.data<T>(),
                                       y.data<T>());
    } else {
      kernels::normalize_forward<T>(p, x.data<T>(), mean_table_.data<T>(), denom_table_.data<T>(),
                                    y.data<T>());
    }
  });
  return y;
}

std::vector<Tensor> NormalizationLayer::backward(const Tensor& dy) {
  Tensor dx = Tensor::uninitialized(dy.shape(), dtype());
  kernels::BroadcastParams p{dy.numel(), period_};
  visit_dtype(dtype(), [&]<class T>(T) {
    if (options_.invert) {
      kernels::scale_backward<T>(p, dy.data<T>(), denom_table_.data<T>(), dx.data<T>());
    } else {
      kernels::normalize_backward<T>(p, dy.data<T>(), denom_table_.data<T>(), dx.data<T>());
    }
  });
  return {dx};
}

Normalization::Normalization(NormalizationOptions options)
    : LayerRef(std::make_shared<NormalizationLayer>(std::move(options))) {}

// ---------------------------------------------------------------- registry entries
// Keras configs (tf.keras 2.6+ and Keras 3) and ONNX export.

namespace layers {
namespace {
using keras::Json;
using onnx_export::Value;

// A number or a (nested) list of numbers, flattened row-major; also Keras 3's serialized NumPy
// array {"class_name": "__numpy__", "config": {"value": [...], "dtype": ...}}.
std::vector<double> numbers_option(const Json& given, const keras::LayerCtx& l, const std::string& key) {
  const Json* cls = keras::find(given, "class_name");
  const Json* cfg = keras::find(given, "config");
  const Json& v = cls && *cls == "__numpy__" && cfg ? keras::require(*cfg, "value", l) : given;
  std::vector<double> out;
  auto walk = [&](auto&& self, const Json& j, int depth) -> void {
    if (depth > 8)
      keras::bad(l, "expected " + key + " as a number or a list of numbers, got " + keras::short_dump(v));
    if (j.is_array()) {
      for (const auto& e : j) self(self, e, depth + 1);
    } else {
      out.push_back(keras::as_double(j, l, key));
    }
  };
  walk(walk, v, 0);
  if (out.empty())
    keras::bad(l, "expected " + key + " as a number or a non-empty list, got " + keras::short_dump(v));
  return out;
}

// One value as a number; several as a list shaped like `shape` (row-major; flat when it does not fit).
Json numbers_json(const std::vector<double>& v, const Shape& shape) {
  if (v.size() == 1) return v[0];
  if (shape.size() <= 1 || shape_numel(shape) != static_cast<std::int64_t>(v.size())) return Json(v);
  auto nest = [&](auto&& self, std::size_t dim, std::size_t& at) -> Json {
    Json a = Json::array();
    for (std::int64_t i = 0; i < shape[dim]; ++i)
      a.push_back(dim + 1 == shape.size() ? Json(v[at++]) : self(self, dim + 1, at));
    return a;
  };
  std::size_t at = 0;
  return nest(nest, 0, at);
}

// ONNX dims of a per-channel table of n values for an input of `rank` (NCHW when 4-D).
std::vector<std::int64_t> channel_dims(std::size_t n, int rank) {
  if (n == 1) return {};
  if (rank == 4) return {static_cast<std::int64_t>(n), 1, 1};
  return {static_cast<std::int64_t>(n)};
}

// Rescaling

Tensor rescaling_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                             keras::WeightBudget& /*budget*/) {
  const Tensor& x = keras::one_input(in, l);
  RescalingOptions o;
  const Json* off = keras::find(c, "offset");
  if (off && !off->is_null()) o.offset = numbers_option(*off, l, "offset");
  o.name = l.name;
  return Rescaling(numbers_option(keras::require(c, "scale", l), l, "scale"), o)(x);
}

Json rescaling_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  const auto& r = dynamic_cast<const RescalingLayer&>(layer);
  Json c = keras::base_config(layer);
  c["scale"] = numbers_json(r.scale(), {});
  c["offset"] = numbers_json(r.options().offset, {});
  return c;
}

Value rescaling_to_onnx(onnx_export::NodeExport& e) {
  const auto& r = dynamic_cast<const RescalingLayer&>(e.layer());
  auto& g = e.graph();
  const Value& x = e.inputs().at(0);
  auto init = [&](const char* what, const std::vector<double>& v) {
    std::vector<float> f(v.begin(), v.end());
    return g.initializer(g.unique(e.base() + "/" + what), channel_dims(v.size(), x.rank), f);
  };
  const std::string scaled = g.unique(e.base() + "/Mul");
  g.node("Mul", {x.name, init("scale", r.scale())}, scaled, e.base() + "/Mul");
  Value out{g.unique(e.base()), x.rank};
  g.node("Add", {scaled, init("offset", r.options().offset)}, out.name, e.base());
  return out;
}

// Normalization

Tensor normalization_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                                 keras::WeightBudget& budget) {
  const Tensor& x = keras::one_input(in, l);
  NormalizationOptions o;
  if (const Json* a = keras::find(c, "axis")) {
    o.axis.clear();
    if (a->is_array()) {
      for (const auto& e : *a) o.axis.push_back(static_cast<int>(keras::as_int(e, l, "axis", -8, 8)));
    } else if (!a->is_null()) {
      o.axis.push_back(static_cast<int>(keras::as_int(*a, l, "axis", -8, 8)));
    }
  }
  const Json* m = keras::find(c, "mean");
  const Json* v = keras::find(c, "variance");
  if (m && !m->is_null()) o.mean = numbers_option(*m, l, "mean");
  if (v && !v->is_null()) o.variance = numbers_option(*v, l, "variance");
  o.invert = keras::bool_option(c, "invert", false, l);
  o.name = l.name;
  if (!o.mean) {
    long double n = 1;
    for (int k : NormalizationLayer(o).kept_axes(x.shape().size()))
      n *= static_cast<long double>(std::max<std::int64_t>(x.shape()[static_cast<std::size_t>(k)], 1));
    budget.add(l, 2 * n + 1);
  }
  return Normalization(o)(x);
}

Json normalization_to_config(const Layer& layer, const Shape& output_shape) {
  const auto& n = dynamic_cast<const NormalizationLayer&>(layer);
  const auto& o = n.options();
  Json c = keras::base_config(layer);
  c["trainable"] = true;  // Keras's default: the layer has nothing to train either way
  Json axis = Json::array();
  for (int a : o.axis) axis.push_back(a);
  c["axis"] = axis;
  if (o.invert) c["invert"] = true;  // Keras 2.10+ and 3 only
  Shape kept;
  for (int k : n.kept_axes(output_shape.size())) kept.push_back(output_shape[static_cast<std::size_t>(k)]);
  c["mean"] = o.mean ? numbers_json(*o.mean, kept) : Json(nullptr);
  c["variance"] = o.variance ? numbers_json(*o.variance, kept) : Json(nullptr);
  return c;
}

Value normalization_to_onnx(onnx_export::NodeExport& e) {
  auto& n = dynamic_cast<NormalizationLayer&>(e.layer());
  auto& g = e.graph();
  const Value& x = e.inputs().at(0);
  const std::vector<int> kept = n.kept_axes(static_cast<std::size_t>(x.rank));
  const Tensor& mt = n.statistics_mean();
  const Tensor& vt = n.statistics_variance();
  // The broadcast shape without the batch axis (ONNX broadcasts from the right): the kept axes'
  // sizes, 1 elsewhere; the values in Keras's (row-major kept shape) order.
  std::vector<std::int64_t> dims;
  for (int d = 1, k = 0; d < x.rank; ++d) {
    const bool is_kept = std::find(kept.begin(), kept.end(), d) != kept.end();
    dims.push_back(is_kept ? mt.shape()[static_cast<std::size_t>(k++)] : 1);
  }
  std::vector<float> mean = onnx_export::float_values({"mean", mt, Tensor(), false});
  std::vector<float> denom = onnx_export::float_values({"variance", vt, Tensor(), false});
  for (auto& v : denom) v = std::max(std::sqrt(v), static_cast<float>(kNormalizationEpsilon));
  if (x.rank == 4) {  // (H, W, C) -> (C, H, W), the values moved with their axes
    const std::int64_t h = dims[0], w = dims[1], c = dims[2];
    auto to_chw = [&](const std::vector<float>& v) {
      std::vector<float> t(v.size());
      for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t j = 0; j < w; ++j)
          for (std::int64_t k = 0; k < c; ++k) t[(k * h + i) * w + j] = v[(i * w + j) * c + k];
      return t;
    };
    mean = to_chw(mean);
    denom = to_chw(denom);
    dims = {c, h, w};
  }
  const std::string mean_name = g.initializer(g.unique(e.base() + "/mean"), dims, mean);
  const std::string denom_name = g.initializer(g.unique(e.base() + "/denominator"), dims, denom);
  const bool invert = n.options().invert;
  const std::string step = g.unique(e.base() + (invert ? "/Mul" : "/Sub"));
  Value out{g.unique(e.base()), x.rank};
  if (invert) {
    g.node("Mul", {x.name, denom_name}, step, e.base() + "/Mul");
    g.node("Add", {step, mean_name}, out.name, e.base());
  } else {
    g.node("Sub", {x.name, mean_name}, step, e.base() + "/Sub");
    g.node("Div", {step, denom_name}, out.name, e.base());
  }
  return out;
}

}  // namespace

void register_rescaling(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Rescaling";
  e.from_config = rescaling_from_config;
  e.to_config = rescaling_to_config;
  e.to_onnx = rescaling_to_onnx;
  out.push_back(std::move(e));
}

void register_normalization(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Normalization";
  e.from_config = normalization_from_config;
  e.to_config = normalization_to_config;
  e.to_onnx = normalization_to_onnx;
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
