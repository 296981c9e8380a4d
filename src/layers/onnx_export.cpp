// The helpers layers share when they export themselves to ONNX.
#include "layers/onnx_export.h"

#include <map>

#include "layers/padding.h"
#include "reskit/error.h"

namespace reskit::onnx_export {

NodeExport::NodeExport(Graph& graph, Layer& layer, int node_index, std::vector<Value> inputs,
                       std::vector<Shape> input_shapes)
    : graph_(graph), layer_(layer), inputs_(std::move(inputs)), input_shapes_(std::move(input_shapes)) {
  base_ = layer_.name() + (node_index > 0 ? "_" + std::to_string(node_index) : "");
}

void NodeExport::fail(const std::string& what) const {
  throw ConfigError(graph_.context() + ": " + layer_.where() + " " + what);
}

const Value& NodeExport::input4d() const {
  if (inputs_.at(0).rank != 4) fail("expected a 4-D input, got rank " + std::to_string(inputs_.at(0).rank));
  return inputs_[0];
}

std::vector<std::int64_t> NodeExport::pads(const std::string& padding, std::array<int, 2> window,
                                           std::array<int, 2> strides) const {
  // Spatial size of the (NHWC) input, as Keras sees it.
  const Shape& s = input_shapes_.at(0);
  if (s.size() != 4 || s[1] <= 0 || s[2] <= 0) fail("expected a known 4-D input shape, got " + shape_str(s));
  const auto h = detail::resolve_padding(padding, s[1], window[0], strides[0]);
  const auto w = detail::resolve_padding(padding, s[2], window[1], strides[1]);
  return {h.before, w.before, h.after, w.after};  // [top, left, bottom, right]
}

Value NodeExport::activation(const std::string& name, const Value& x, bool whole_layer) {
  if (name == "linear") return x;
  static const std::map<std::string, std::string> ops{
      {"relu", "Relu"},         {"sigmoid", "Sigmoid"},   {"tanh", "Tanh"},
      {"softmax", "Softmax"},   {"elu", "Elu"},           {"selu", "Selu"},
      {"softplus", "Softplus"}, {"softsign", "Softsign"}, {"exponential", "Exp"}};
  if (name == "swish" || name == "silu") {  // x·sigmoid(x)
    const std::string s = graph_.unique(base_ + "/Sigmoid");
    graph_.node("Sigmoid", {x.name}, s, base_ + "/Sigmoid");
    Value out{graph_.unique(base_), x.rank};
    graph_.node("Mul", {x.name, s}, out.name, whole_layer ? base_ : base_ + "/Mul");
    return out;
  }
  auto it = ops.find(name);
  if (it == ops.end()) fail("has activation '" + name + "', which has no ONNX export");
  Value out{graph_.unique(base_), x.rank};
  auto& n = graph_.node(it->second, {x.name}, out.name, whole_layer ? base_ : base_ + "/" + it->second);
  // Keras's softmax runs over the last axis: channels, which are axis 1 in NCHW.
  if (name == "softmax") n.set_int("axis", x.rank == 4 ? 1 : x.rank - 1);
  return out;
}

std::string NodeExport::pre_activation_name(const std::string& activation, const std::string& step) {
  return graph_.unique(activation == "linear" ? base_ : base_ + "/" + step);
}

std::vector<float> float_values(const Param& p) {
  Tensor t = p.value.to(DType::float32);
  auto v = t.values<float>();
  return {v.begin(), v.end()};
}

}  // namespace reskit::onnx_export
