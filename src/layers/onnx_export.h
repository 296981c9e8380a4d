// What a layer's ONNX export sees (internal): an abstract ONNX graph to add nodes and
// initializers to, and the node being exported with the helpers layers share (pads, fused
// activations, names). io/onnx.cpp implements Graph over ONNX's protobuf types, so that the
// layers, which register their export beside their code (layers/registry.h), never include them.
//
// Activations are NCHW inside the graph (rank 4 means NCHW); each layer's output value is named
// after the layer ("conv1"), the values in between after the layer and the step ("conv1/Conv").
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"

namespace reskit::onnx_export {

// A value of the ONNX graph: its name and rank.
struct Value {
  std::string name;
  int rank = 0;
};

// An ONNX node being written: its attributes, in the order they are set.
class Node {
 public:
  virtual ~Node() = default;
  virtual void set_int(const char* name, std::int64_t v) = 0;
  virtual void set_ints(const char* name, const std::vector<std::int64_t>& v) = 0;
  virtual void set_float(const char* name, double v) = 0;  // stored as float32
  virtual void set_string(const char* name, const std::string& v) = 0;
};

class Graph {
 public:
  virtual ~Graph() = default;
  // A fresh value name: base, or base_1, base_2, ... when taken.
  virtual std::string unique(const std::string& base) = 0;
  // Adds a node (its name made unique); the reference is valid until the next call.
  virtual Node& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& output,
                     const std::string& name) = 0;
  // A float32 initializer (values already in the order of dims); a name added before is kept.
  virtual const std::string& initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                         std::span<const float> values) = 0;
  // A 1-D int64 initializer under a fresh name from base.
  virtual std::string int64_initializer(const std::string& base, const std::vector<std::int64_t>& values) = 0;
  // "export_onnx '<path>'": how errors name the export.
  virtual const std::string& context() const = 0;
};

// One node of the model being exported: its layer, the ONNX values and the Keras (NHWC) shapes of
// its inputs.
class NodeExport {
 public:
  NodeExport(Graph& graph, Layer& layer, int node_index, std::vector<Value> inputs,
             std::vector<Shape> input_shapes);

  Graph& graph() { return graph_; }
  Layer& layer() { return layer_; }
  const std::vector<Value>& inputs() const { return inputs_; }
  // The Keras (NHWC) shapes of the inputs, batch -1.
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  // The layer's name (with "_<node index>" for a second call): what its values are named after.
  const std::string& base() const { return base_; }

  // ConfigError "<context>: <layer> <what>".
  [[noreturn]] void fail(const std::string& what) const;
  // The first input, checked to be 4-D.
  const Value& input4d() const;
  // ONNX pads [top, left, bottom, right] for Keras padding over the input's rows and columns.
  std::vector<std::int64_t> pads(const std::string& padding, std::array<int, 2> window,
                                 std::array<int, 2> strides) const;
  // The activation by Keras name on x; `whole_layer`: x is the layer's only step (an Activation
  // layer), so the output takes the layer's name.
  Value activation(const std::string& name, const Value& x, bool whole_layer);
  // The layer's result before a fused activation: named after the layer when there is none.
  std::string pre_activation_name(const std::string& activation, const std::string& step);

 private:
  Graph& graph_;
  Layer& layer_;
  std::vector<Value> inputs_;
  std::vector<Shape> input_shapes_;
  std::string base_;
};

// A parameter's values in float32, in its own (Keras) order.
std::vector<float> float_values(const Param& p);

}  // namespace reskit::onnx_export
