// Concatenate: forward and backward side by side, then its registry entry (Keras config, ONNX
// export). The copies run through kernels::concat_*.
#include "reskit/layers/merge.h"

#include <utility>

#include "kernels/kernels.h"
#include "layers/registry.h"
#include "layers/util.h"
#include "reskit/error.h"

namespace reskit {

using detail::visit_dtype;

// ---------------------------------------------------------------- Concatenate
// x_i (N, ..., a_i, ...) -> y (N, ..., Σ a_i, ...) along the axis; dx_i = dy's slice of x_i

ConcatenateLayer::ConcatenateLayer(ConcatenateOptions options)
    : Layer("Concatenate", options.name), options_(std::move(options)) {}

std::size_t ConcatenateLayer::resolved_axis(std::size_t rank) const {
  const int r = static_cast<int>(rank);
  const int a = options_.axis < 0 ? options_.axis + r : options_.axis;
  if (a < 1 || a >= r) {
    shape_error("inputs of rank >= 2 with a non-batch axis " + std::to_string(options_.axis),
                "rank " + std::to_string(r));
  }
  return static_cast<std::size_t>(a);
}

Shape ConcatenateLayer::output_shape(const std::vector<Shape>& inputs) const {
  if (inputs.size() < 2) shape_error("at least 2 inputs", std::to_string(inputs.size()));
  const std::size_t axis = resolved_axis(inputs[0].size());
  Shape out = inputs[0];
  auto mismatch = [&](std::size_t i) {
    shape_error("inputs that match except on axis " + std::to_string(options_.axis),
                shape_str(inputs[0]) + " and " + shape_str(inputs[i]));
  };
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    if (inputs[i].size() != inputs[0].size()) mismatch(i);
    for (std::size_t d = 1; d < out.size(); ++d) {
      if (d == axis) continue;
      if (inputs[i][d] >= 0 && out[d] >= 0 && inputs[i][d] != out[d]) mismatch(i);
    }
    out[axis] = out[axis] < 0 || inputs[i][axis] < 0 ? -1 : out[axis] + inputs[i][axis];
  }
  return out;
}

namespace {
// y viewed as [outer, width]: outer = the dims before the axis, width = the rest of y's.
kernels::ConcatParams concat_params(const Shape& y, const Shape& x, std::size_t axis, std::int64_t offset) {
  kernels::ConcatParams p;
  p.outer = 1;
  for (std::size_t d = 0; d < axis; ++d) p.outer *= y[d];
  std::int64_t inner = 1;
  for (std::size_t d = axis + 1; d < y.size(); ++d) inner *= y[d];
  p.width = y[axis] * inner;
  p.part = x[axis] * inner;
  p.offset = offset * inner;
  return p;
}
}  // namespace

Tensor ConcatenateLayer::forward(const std::vector<Tensor>& inputs, bool /*training*/) {
  input_shapes_.clear();
  for (const auto& t : inputs) input_shapes_.push_back(t.shape());
  const Shape ys = output_shape(input_shapes_);
  const std::size_t axis = resolved_axis(ys.size());
  Tensor y = Tensor::uninitialized(ys, dtype());
  std::int64_t offset = 0;
  for (const auto& x : inputs) {
    const auto p = concat_params(ys, x.shape(), axis, offset);
    visit_dtype(dtype(), [&]<class T>(T) { kernels::concat_forward<T>(p, x.data<T>(), y.data<T>()); });
    offset += x.shape()[axis];
  }
  return y;
}

std::vector<Tensor> ConcatenateLayer::backward(const Tensor& dy) {
  const std::size_t axis = resolved_axis(dy.shape().size());
  std::vector<Tensor> dxs;
  std::int64_t offset = 0;
  for (const auto& s : input_shapes_) {
    Tensor dx = Tensor::uninitialized(s, dtype());
    const auto p = concat_params(dy.shape(), s, axis, offset);
    visit_dtype(dtype(), [&]<class T>(T) { kernels::concat_backward<T>(p, dy.data<T>(), dx.data<T>()); });
    offset += s[axis];
    dxs.push_back(std::move(dx));
  }
  return dxs;
}

Concatenate::Concatenate(ConcatenateOptions options)
    : LayerRef(std::make_shared<ConcatenateLayer>(std::move(options))) {}

// ---------------------------------------------------------------- registry entry

namespace layers {
namespace {
using keras::Json;
using onnx_export::Value;

Tensor concatenate_from_config(const Json& c, const keras::LayerCtx& l, const std::vector<Tensor>& in,
                               keras::WeightBudget& /*budget*/) {
  if (in.size() < 2) keras::bad(l, "expected at least 2 inputs, got " + std::to_string(in.size()));
  ConcatenateOptions o;
  if (const Json* a = keras::find(c, "axis"); a && !a->is_null())
    o.axis = static_cast<int>(keras::as_int(*a, l, "axis", -8, 8));
  o.name = l.name;
  return Concatenate(o)(in);
}

Json concatenate_to_config(const Layer& layer, const Shape& /*output_shape*/) {
  Json c = keras::base_config(layer);
  c["axis"] = dynamic_cast<const ConcatenateLayer&>(layer).options().axis;
  return c;
}

Value concatenate_to_onnx(onnx_export::NodeExport& e) {
  const auto& in = e.inputs();
  const int r = in.at(0).rank;
  const int axis = dynamic_cast<const ConcatenateLayer&>(e.layer()).options().axis;
  int a = axis < 0 ? axis + r : axis;
  if (a < 1 || a >= r) e.fail("has a concatenation axis outside its rank-" + std::to_string(r) + " inputs");
  if (r == 4) a = a == 3 ? 1 : a + 1;  // NHWC axis -> NCHW axis
  std::vector<std::string> names;
  for (const auto& v : in) names.push_back(v.name);
  Value out{e.graph().unique(e.base()), r};
  e.graph().node("Concat", names, out.name, e.base()).set_int("axis", a);
  return out;
}
}  // namespace

void register_concatenate(std::vector<LayerEntry>& out) {
  LayerEntry e;
  e.class_name = "Concatenate";
  e.from_config = concatenate_from_config;
  e.to_config = concatenate_to_config;
  e.to_onnx = concatenate_to_onnx;
  out.push_back(std::move(e));
}
}  // namespace layers

}  // namespace reskit
