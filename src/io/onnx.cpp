// ONNX export: the model's graph as ONNX nodes (opset 13..17), weights as float32 initializers.
//
// Activations are NCHW inside the graph (what ONNX's Conv and pooling ops take); the graph input
// is NHWC and is transposed once at the start, and every place where Keras's NHWC order shows
// (Flatten, a 4-D output) is transposed back. Each layer's output value is named after the layer
// ("conv1"), the values in between after the layer and the step ("conv1/Conv" before its fused
// activation). The rules OpenCV 4.6 needs (no empty optional inputs, Gemm with transB = 1) are in
// shared/KERAS.md; the op semantics in ONNX's Operators.md.
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

#include "reskit/error.h"
#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"
#include "reskit/layers/normalization.h"
#include "reskit/layers/pooling.h"
#include "util/atomic_file.h"

#ifndef RESKIT_VERSION_STRING
#define RESKIT_VERSION_STRING "unknown"
#endif

namespace reskit {

namespace {

constexpr int kMinOpset = 13;
constexpr int kMaxOpset = 17;  // the newest opset of Debian's ONNX 1.12

// A value of the ONNX graph: its name and rank; rank 4 means NCHW.
struct Value {
  std::string name;
  int rank = 0;
};

// Keras padding for one spatial axis (TensorFlow's rule for "same": the extra cell at the end).
struct AxisPads {
  std::int64_t before = 0, after = 0;
};

AxisPads axis_pads(const std::string& padding, std::int64_t in, std::int64_t window, std::int64_t stride) {
  if (padding != "same") return {};
  const std::int64_t out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + window - in, 0);
  return {total / 2, total - total / 2};
}

class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, std::string context) : graph_(graph), context_(std::move(context)) {}

  // A fresh value name: base, or base_1, base_2, ... when taken.
  std::string unique(const std::string& base) { return fresh(values_, base); }

  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output, const std::string& name) {
    onnx::NodeProto& n = *graph_.add_node();
    n.set_op_type(op);
    n.set_name(fresh(nodes_, name));
    for (const auto& in : inputs) n.add_input(in);
    n.add_output(output);
    return n;
  }

  // A float32 initializer (values already in the order of dims).
  const std::string& initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                                 std::span<const float> values) {
    if (!initializers_.insert(name).second) return name;  // a shared layer's weight, already there
    values_.insert(name);
    onnx::TensorProto& t = *graph_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t.add_dims(d);
    t.set_raw_data(values.data(), values.size() * sizeof(float));
    return name;
  }

  std::string int64_initializer(const std::string& base, const std::vector<std::int64_t>& values) {
    const std::string name = unique(base);
    onnx::TensorProto& t = *graph_.add_initializer();
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    t.add_dims(static_cast<std::int64_t>(values.size()));
    for (auto v : values) t.add_int64_data(v);
    initializers_.insert(name);
    return name;
  }

  const std::string& context() const { return context_; }

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
};

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

// A parameter's values in float32, in its own (Keras) order.
std::vector<float> float_values(const Param& p) {
  Tensor t = p.value.to(DType::float32);
  auto v = t.values<float>();
  return {v.begin(), v.end()};
}

// Exports one node of the model; returns the ONNX value holding its output.
class NodeExporter {
 public:
  NodeExporter(GraphBuilder& g, const graph::Node& node, std::vector<Value> inputs)
      : g_(g), node_(node), layer_(*node.layer), in_(std::move(inputs)) {
    base_ = layer_.name() + (node.node_index > 0 ? "_" + std::to_string(node.node_index) : "");
  }

  Value run() {
    const std::string& k = layer_.class_name();
    if (k == "Conv2D") return conv2d();
    if (k == "BatchNormalization") return batch_norm();
    if (k == "Activation") {
      return activation(dynamic_cast<ActivationLayer&>(layer_).activation(), in_.at(0), true);
    }
    if (k == "Add") return add();
    if (k == "MaxPooling2D" || k == "AveragePooling2D") return pooling(k == "MaxPooling2D");
    if (k == "GlobalMaxPooling2D" || k == "GlobalAveragePooling2D")
      return global_pooling(k == "GlobalMaxPooling2D");
    if (k == "ZeroPadding2D") return zero_padding();
    if (k == "Flatten") return flatten();
    if (k == "Dense") return dense();
    if (k == "Dropout") return in_.at(0);  // the identity in inference
    fail(
        "has no ONNX export (export_onnx covers InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, "
        "Activation, Add, MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D, "
        "Flatten, Dense and Dropout)");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(g_.context() + ": " + layer_.where() + " " + what);
  }

  const Value& input4d() const {
    if (in_.at(0).rank != 4) fail("expected a 4-D input, got rank " + std::to_string(in_.at(0).rank));
    return in_[0];
  }

  // Spatial size of the (NHWC) input, as Keras sees it.
  std::array<std::int64_t, 2> input_hw() const {
    const Shape& s = node_.inputs.at(0).shape();
    if (s.size() != 4 || s[1] <= 0 || s[2] <= 0)
      fail("expected a known 4-D input shape, got " + shape_str(s));
    return {s[1], s[2]};
  }

  std::vector<std::int64_t> pads(const std::string& padding, std::array<int, 2> window,
                                 std::array<int, 2> strides) const {
    auto hw = input_hw();
    AxisPads h = axis_pads(padding, hw[0], window[0], strides[0]);
    AxisPads w = axis_pads(padding, hw[1], window[1], strides[1]);
    return {h.before, w.before, h.after, w.after};  // [top, left, bottom, right]
  }

  // The activation by Keras name on x; `whole_layer`: x is the layer's only step (an Activation
  // layer), so the output takes the layer's name.
  Value activation(const std::string& name, const Value& x, bool whole_layer) {
    if (name == "linear") return x;
    static const std::map<std::string, std::string> ops{
        {"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"}, {"softmax", "Softmax"}};
    auto it = ops.find(name);
    if (it == ops.end()) fail("has activation '" + name + "', which has no ONNX export");
    Value out{g_.unique(base_), x.rank};
    auto& n = g_.node(it->second, {x.name}, out.name, whole_layer ? base_ : base_ + "/" + it->second);
    // Keras's softmax runs over the last axis: channels, which are axis 1 in NCHW.
    if (name == "softmax") set_int(n, "axis", x.rank == 4 ? 1 : x.rank - 1);
    return out;
  }

  // The layer's result before a fused activation: named after the layer when there is none.
  std::string pre_activation_name(const std::string& activation, const std::string& step) {
    return g_.unique(activation == "linear" ? base_ : base_ + "/" + step);
  }

  Value conv2d() {
    auto& conv = dynamic_cast<Conv2DLayer&>(layer_);
    const Value& x = input4d();
    const auto& o = conv.options();
    const auto ks = conv.kernel_size();
    // HWIO (R, S, C, K) -> OIHW (K, C, R, S)
    const Param& kp = conv.param("kernel");
    const Shape& ksh = kp.value.shape();
    const std::int64_t R = ksh[0], S = ksh[1], C = ksh[2], K = ksh[3];
    std::vector<float> hwio = float_values(kp), oihw(hwio.size());
    for (std::int64_t r = 0; r < R; ++r)
      for (std::int64_t s = 0; s < S; ++s)
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t k = 0; k < K; ++k)
            oihw[((k * C + c) * R + r) * S + s] = hwio[((r * S + s) * C + c) * K + k];
    std::vector<std::string> inputs{x.name, g_.initializer(kp.name, {K, C, R, S}, oihw)};
    if (o.use_bias) {
      const Param& bp = conv.param("bias");
      inputs.push_back(g_.initializer(bp.name, {K}, float_values(bp)));
    }
    Value z{pre_activation_name(o.activation, "Conv"), 4};
    auto& n = g_.node("Conv", inputs, z.name, base_);
    set_ints(n, "kernel_shape", {ks[0], ks[1]});
    set_ints(n, "strides", {o.strides[0], o.strides[1]});
    set_ints(n, "pads", pads(o.padding, ks, o.strides));
    set_ints(n, "dilations", {1, 1});
    set_int(n, "group", 1);
    return activation(o.activation, z, false);
  }

  Value batch_norm() {
    auto& bn = dynamic_cast<BatchNormalizationLayer&>(layer_);
    const Value& x = in_.at(0);
    if (x.rank != 4 && x.rank != 2) fail("expected a 2-D or 4-D input, got rank " + std::to_string(x.rank));
    std::vector<std::string> inputs{x.name};
    for (const char* w : {"gamma", "beta", "moving_mean", "moving_variance"}) {
      const Param& p = bn.param(w);
      inputs.push_back(g_.initializer(p.name, {p.value.numel()}, float_values(p)));
    }
    Value out{g_.unique(base_), x.rank};
    auto& n = g_.node("BatchNormalization", inputs, out.name, base_);
    set_float(n, "epsilon", bn.options().epsilon);
    set_float(n, "momentum", bn.options().momentum);
    return out;
  }

  Value add() {
    if (in_.size() < 2) fail("expected two or more inputs, got " + std::to_string(in_.size()));
    // ONNX Add takes two inputs: a chain for more.
    Value acc = in_[0];
    for (std::size_t i = 1; i < in_.size(); ++i) {
      const bool last = i + 1 == in_.size();
      Value out{g_.unique(last ? base_ : base_ + "/sum" + std::to_string(i)), acc.rank};
      g_.node("Add", {acc.name, in_[i].name}, out.name, base_);
      acc = out;
    }
    return acc;
  }

  Value pooling(bool max) {
    auto& pool = dynamic_cast<Pooling2DLayer&>(layer_);
    const Value& x = input4d();
    Value out{g_.unique(base_), 4};
    auto& n = g_.node(max ? "MaxPool" : "AveragePool", {x.name}, out.name, base_);
    const auto ps = pool.pool_size(), st = pool.strides();
    set_ints(n, "kernel_shape", {ps[0], ps[1]});
    set_ints(n, "strides", {st[0], st[1]});
    // MaxPool never lets a padded cell win; AveragePool leaves them out of the count (Keras).
    set_ints(n, "pads", pads(pool.padding(), ps, st));
    if (!max) set_int(n, "count_include_pad", 0);
    return out;
  }

  Value global_pooling(bool max) {
    const Value& x = input4d();
    const std::string pooled = g_.unique(base_ + (max ? "/GlobalMaxPool" : "/GlobalAveragePool"));
    g_.node(max ? "GlobalMaxPool" : "GlobalAveragePool", {x.name}, pooled, base_);
    Value out{g_.unique(base_), 2};  // (N, C, 1, 1) -> (N, C)
    set_int(g_.node("Flatten", {pooled}, out.name, base_ + "/Flatten"), "axis", 1);
    return out;
  }

  Value zero_padding() {
    auto& zp = dynamic_cast<ZeroPadding2DLayer&>(layer_);
    const Value& x = input4d();
    const auto& p = zp.padding();  // ((top, bottom), (left, right))
    // ONNX pads: all the begins (N, C, H, W), then all the ends.
    const std::string pads =
        g_.int64_initializer(base_ + "/pads", {0, 0, p[0][0], p[1][0], 0, 0, p[0][1], p[1][1]});
    Value out{g_.unique(base_), 4};
    set_string(g_.node("Pad", {x.name, pads}, out.name, base_), "mode", "constant");
    return out;
  }

  Value flatten() {
    const Value& x = in_.at(0);
    if (x.rank != 4 && x.rank != 2) fail("expected a 2-D or 4-D input, got rank " + std::to_string(x.rank));
    std::string src = x.name;
    if (x.rank == 4) {  // Keras flattens (h, w, c)
      src = g_.unique(base_ + "/NHWC");
      set_ints(g_.node("Transpose", {x.name}, src, base_ + "/Transpose"), "perm", {0, 2, 3, 1});
    }
    Value out{g_.unique(base_), 2};
    set_int(g_.node("Flatten", {src}, out.name, base_), "axis", 1);
    return out;
  }

  Value dense() {
    auto& dense = dynamic_cast<DenseLayer&>(layer_);
    const Value& x = in_.at(0);
    if (x.rank != 2) fail("expected a 2-D input, got rank " + std::to_string(x.rank));
    const Param& kp = dense.param("kernel");
    const std::int64_t in = kp.value.shape()[0], units = kp.value.shape()[1];
    // (in, units) -> (units, in): OpenCV 4.6 runs Gemm only with transB = 1.
    std::vector<float> w = float_values(kp), wt(w.size());
    for (std::int64_t i = 0; i < in; ++i)
      for (std::int64_t u = 0; u < units; ++u) wt[u * in + i] = w[i * units + u];
    std::vector<std::string> inputs{x.name, g_.initializer(kp.name, {units, in}, wt)};
    if (dense.options().use_bias) {
      const Param& bp = dense.param("bias");
      inputs.push_back(g_.initializer(bp.name, {units}, float_values(bp)));
    } else {  // C is optional, but not every runtime takes a Gemm without it
      std::vector<float> zeros(static_cast<std::size_t>(units), 0.0f);
      inputs.push_back(g_.initializer(g_.unique(base_ + "/zero_bias"), {units}, zeros));
    }
    Value z{pre_activation_name(dense.options().activation, "Gemm"), 2};
    auto& n = g_.node("Gemm", inputs, z.name, base_);
    set_float(n, "alpha", 1.0);
    set_float(n, "beta", 1.0);
    set_int(n, "transA", 0);
    set_int(n, "transB", 1);
    return activation(dense.options().activation, z, false);
  }

  GraphBuilder& g_;
  const graph::Node& node_;
  Layer& layer_;
  std::vector<Value> in_;
  std::string base_;
};

// Nodes in an order where every node comes after the nodes it reads (depth-first from the
// outputs, inputs in call order).
std::vector<const graph::Node*> topological_nodes(const Model& model) {
  std::vector<const graph::Node*> order;
  std::set<const graph::Node*> done;
  std::vector<std::pair<const graph::Node*, std::size_t>> stack;
  for (const auto& t : model.outputs()) {
    stack.emplace_back(t.node().get(), 0);
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (done.count(n)) {
        stack.pop_back();
      } else if (next < n->inputs.size()) {
        const graph::Node* in = n->inputs[next++].node().get();
        if (!done.count(in)) stack.emplace_back(in, 0);
      } else {
        done.insert(n);
        order.push_back(n);
        stack.pop_back();
      }
    }
  }
  return order;
}

onnx::ModelProto build_model(const Model& model, const ExportOnnxOptions& options,
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
  std::map<const graph::Node*, Value> values;

  for (const auto& t : model.inputs()) {
    const graph::Node* n = t.node().get();
    const Shape& s = t.shape();
    if (s.size() != 2 && s.size() != 4)
      throw ConfigError(context + ": input '" + n->layer->name() + "' has shape " + shape_str(s) +
                        "; ONNX export takes (batch, features) or (batch, height, width, channels) inputs");
    const std::string name = g.unique(n->layer->name());
    set_shape(*graph.add_input(), name, s, options.batch_size);
    Value v{name, static_cast<int>(s.size())};
    if (v.rank == 4) {
      v.name = g.unique(name + "/NCHW");
      set_ints(g.node("Transpose", {name}, v.name, name + "/Transpose"), "perm", {0, 3, 1, 2});
    }
    values[n] = v;
  }

  for (const graph::Node* n : topological_nodes(model)) {
    if (values.count(n)) continue;  // a model input
    if (n->inputs.empty())
      throw ConfigError(context + ": " + n->layer->where() + " is an input the model does not list");
    std::vector<Value> ins;
    for (const auto& t : n->inputs) ins.push_back(values.at(t.node().get()));
    values[n] = NodeExporter(g, *n, std::move(ins)).run();
  }

  for (const auto& t : model.outputs()) {
    const graph::Node* n = t.node().get();
    const Value& v = values.at(n);
    const std::string base =
        n->layer->name() + (n->node_index > 0 ? "_" + std::to_string(n->node_index) : "");
    std::string name = v.name;
    if (v.rank == 4) {
      name = g.unique(base + "/NHWC");
      set_ints(g.node("Transpose", {v.name}, name, base + "/Transpose"), "perm", {0, 2, 3, 1});
    } else if (name != base) {  // a layer left out (Dropout) or an input as output: name it
      name = g.unique(base);
      g.node("Identity", {v.name}, name, base + "/Identity");
    }
    set_shape(*graph.add_output(), name, t.shape(), options.batch_size);
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
  onnx::ModelProto proto = build_model(model, options, context);
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
