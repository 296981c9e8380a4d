// ONNX export: the model's graph as ONNX nodes (opset 13..17), weights as float32 initializers.
//
// Activations are NCHW inside the graph (what ONNX's Conv and pooling ops take); the graph input
// is NHWC and is transposed once at the start, and every place where Keras's NHWC order shows
// (Flatten, a 4-D output) is transposed back. Each layer's output value is named after the layer
// ("conv1"), the values in between after the layer and the step ("conv1/Conv" before its fused
// activation). Each layer writes its own nodes (its to_onnx in the layer registry) through the
// abstract graph of layers/onnx_export.h, which this file implements over ONNX's protobuf types.
// OpenCV 4.6's dnn module rejects a Pad with an empty-named optional input and a Gemm with
// transB = 0 (opencv/opencv#22096), so the graph has no empty optional inputs and its Gemm takes
// the kernel transposed (transB = 1); the op semantics are in ONNX's Operators.md.
#include "reskit/io/onnx.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <array>
#include <climits>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "layers/registry.h"
#include "reskit/error.h"
#include "util/atomic_file.h"

#ifndef RESKIT_VERSION_STRING
#define RESKIT_VERSION_STRING "unknown"
#endif

namespace reskit {

namespace {

constexpr int kMinOpset = 13;
constexpr int kMaxOpset = 17;  // the newest opset of Debian's ONNX 1.12

using onnx_export::Value;

void set_int(onnx::NodeProto& n, const char* name, std::int64_t v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
}

void set_ints(onnx::NodeProto& n, const char* name, const std::vector<std::int64_t>& v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a.add_ints(x);
}

void set_float(onnx::NodeProto& n, const char* name, double v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(static_cast<float>(v));
}

void set_string(onnx::NodeProto& n, const char* name, const std::string& v) {
  onnx::AttributeProto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(v);
}

// The node a layer is writing.
class NodeWriter final : public onnx_export::Node {
 public:
  onnx::NodeProto* proto = nullptr;
  void set_int(const char* name, std::int64_t v) override { reskit::set_int(*proto, name, v); }
  void set_ints(const char* name, const std::vector<std::int64_t>& v) override {
    reskit::set_ints(*proto, name, v);
  }
  void set_float(const char* name, double v) override { reskit::set_float(*proto, name, v); }
  void set_string(const char* name, const std::string& v) override { reskit::set_string(*proto, name, v); }
};

class GraphBuilder final : public onnx_export::Graph {
 public:
  GraphBuilder(onnx::GraphProto& graph, std::string context) : graph_(graph), context_(std::move(context)) {}

  std::string unique(const std::string& base) override { return fresh(values_, base); }

  onnx::NodeProto& add_node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::string& output, const std::string& name) {
    onnx::NodeProto& n = *graph_.add_node();
    n.set_op_type(op);
    n.set_name(fresh(nodes_, name));
    for (const auto& in : inputs) n.add_input(in);
    n.add_output(output);
    return n;
  }

  onnx_export::Node& node(const std::string& op, const std::vector<std::string>& inputs,
                          const std::string& output, const std::string& name) override {
    writer_.proto = &add_node(op, inputs, output, name);
    return writer_;
  }

  const std::string& initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                 std::span<const float> values) override {
    if (!initializers_.insert(name).second) return name;  // a shared layer's weight, already there
    values_.insert(name);
    onnx::TensorProto& t = *graph_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t.add_dims(d);
    t.set_raw_data(values.data(), values.size() * sizeof(float));
    return name;
  }

  std::string int64_initializer(const std::string& base, const std::vector<std::int64_t>& values) override {
    const std::string name = unique(base);
    onnx::TensorProto& t = *graph_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t.add_int64_data(v);
    initializers_.insert(name);
    return name;
  }

  const std::string& context() const override { return context_; }

 private:
  static std::string fresh(std::set<std::string>& taken, const std::string& base) {
    std::string name = base;
    for (int i = 1; !taken.insert(name).second; ++i) name = base + "_" + std::to_string(i);
    return name;
  }

  onnx::GraphProto& graph_;
  std::string context_;
  std::set<std::string> values_, nodes_;
  std::set<std::string> initializers_;  // weights added so far
  NodeWriter writer_;
};

void set_shape(onnx::ValueInfoProto& v, const std::string& name, const Shape& shape, std::int64_t batch) {
  v.set_name(name);
  onnx::TypeProto_Tensor& t = *v.mutable_type()->mutable_tensor_type();
  t.set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto& s = *t.mutable_shape();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    onnx::TensorShapeProto_Dimension& d = *s.add_dim();
    if (i == 0 && batch == 0)
      d.set_dim_param("N");
    else
      d.set_dim_value(i == 0 ? batch : shape[i]);
  }
}

// Node positions (Model::nodes()) in an order where every node comes after the nodes it reads:
// depth-first from the outputs, inputs in call order.
std::vector<int> export_order(const Model& model) {
  const auto& nodes = model.nodes();
  std::vector<int> order;
  std::vector<bool> done(nodes.size(), false);
  std::vector<std::pair<int, std::size_t>> stack;
  for (int out : model.output_nodes()) {
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (done[n]) {
        stack.pop_back();
      } else if (next < nodes[n].inputs.size()) {
        const int in = nodes[n].inputs[next++];
        if (!done[in]) stack.emplace_back(in, 0);
      } else {
        done[n] = true;
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

// The layers export_onnx covers: "A, B and C".
std::string covered_layers() {
  std::vector<std::string> names;
  for (const auto& e : layers::layer_entries())
    if (e.to_onnx) names.push_back(e.class_name);
  return layers::join_names(names, " and ");
}

// Exports one node through its layer's registered to_onnx; returns the value holding its output.
Value export_node(GraphBuilder& g, const Model& model, int n, const std::vector<Value>& values) {
  const graph::ModelNode& node = model.nodes()[n];
  std::vector<Value> ins;
  std::vector<Shape> shapes;
  for (int in : node.inputs) {
    ins.push_back(values[in]);
    shapes.push_back(model.nodes()[in].output_shape);
  }
  onnx_export::NodeExport e(g, *node.layer, node.node_index, std::move(ins), std::move(shapes));
  const layers::LayerEntry* entry = layers::find_layer(node.layer->class_name());
  if (!entry || !entry->to_onnx) {
    e.fail(entry && !entry->no_onnx.empty()
               ? "has no ONNX export (" + entry->no_onnx + ")"
               : "has no ONNX export (export_onnx covers " + covered_layers() + ")");
  }
  return entry->to_onnx(e);
}

onnx::ModelProto to_model_proto(const Model& model, const ExportOnnxOptions& options,
                                const std::string& context) {
  onnx::ModelProto proto;
  proto.set_ir_version(options.opset <= 14 ? 7 : 8);  // the IR version each opset came with
  proto.set_producer_name("reskit");
  proto.set_producer_version(RESKIT_VERSION_STRING);
  proto.set_doc_string("Exported by reskit from Keras model '" + model.name() + "'");
  onnx::OperatorSetIdProto& opset = *proto.add_opset_import();
  opset.set_domain("");
  opset.set_version(options.opset);

  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(model.name());
  GraphBuilder g(graph, context);
  const auto& nodes = model.nodes();
  std::vector<Value> values(nodes.size());
  std::vector<bool> have(nodes.size(), false);

  for (int n : model.input_nodes()) {
    const std::string& layer = nodes[n].layer->name();
    const Shape& s = nodes[n].output_shape;
    if (s.size() != 2 && s.size() != 4)
      throw ConfigError(context + ": input '" + layer + "' has shape " + shape_str(s) +
                        "; ONNX export takes (batch, features) or (batch, height, width, channels) inputs");
    const std::string name = g.unique(layer);
    set_shape(*graph.add_input(), name, s, options.batch_size);
    Value v{name, static_cast<int>(s.size())};
    if (v.rank == 4) {
      v.name = g.unique(name + "/NCHW");
      set_ints(g.add_node("Transpose", {name}, v.name, name + "/Transpose"), "perm", {0, 3, 1, 2});
    }
    values[n] = v;
    have[n] = true;
  }

  for (int n : export_order(model)) {
    if (have[n]) continue;  // a model input
    values[n] = export_node(g, model, n, values);
    have[n] = true;
  }

  for (int n : model.output_nodes()) {
    const graph::ModelNode& node = nodes[n];
    const Value& v = values[n];
    const std::string base =
        node.layer->name() + (node.node_index > 0 ? "_" + std::to_string(node.node_index) : "");
    std::string name = v.name;
    if (v.rank == 4) {
      name = g.unique(base + "/NHWC");
      set_ints(g.add_node("Transpose", {v.name}, name, base + "/Transpose"), "perm", {0, 2, 3, 1});
    } else if (name != base) {  // a layer left out (Dropout) or an input as output: name it
      name = g.unique(base);
      g.add_node("Identity", {v.name}, name, base + "/Identity");
    }
    set_shape(*graph.add_output(), name, node.output_shape, options.batch_size);
  }
  return proto;
}

}  // namespace

void export_onnx(const Model& model, const std::string& path, ExportOnnxOptions options) {
  const std::string context = "export_onnx '" + path + "'";
  if (options.opset < kMinOpset || options.opset > kMaxOpset) {
    throw ConfigError(context + ": opset: expected " + std::to_string(kMinOpset) + " to " +
                      std::to_string(kMaxOpset) + ", got " + std::to_string(options.opset));
  }
  if (options.batch_size < 0)
    throw ConfigError(context + ": batch_size: expected >= 0 (0: dynamic), got " +
                      std::to_string(options.batch_size));
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  onnx::ModelProto proto = to_model_proto(model, options, context);
  if (proto.ByteSizeLong() > static_cast<std::size_t>(INT_MAX))
    throw FileError(context + ": the model is larger than the 2 GiB a protobuf file can hold");
  util::write_atomically(path, [&](const std::string& temp) {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw FileError(context + ": cannot open '" + temp + "' for writing");
    if (!proto.SerializeToOstream(&out)) throw FileError(context + ": writing '" + temp + "' failed");
    out.close();
    if (!out) throw FileError(context + ": writing '" + temp + "' failed (disk full?)");
  });
}

}  // namespace reskit
