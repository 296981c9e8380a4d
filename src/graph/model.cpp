// The functional Model: Keras's layer ordering, execution, backward, summary and train step.
#include "reskit/graph/model.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "layers/registry.h"
#include "layers/symbolic_call.h"
#include "reskit/error.h"
#include "reskit/layers/core.h"
#include "reskit/optim/constraints.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/optim/regularizers.h"
#include "util/nearest_names.h"
#include "util/tensor_add.h"
#include "util/unique_names.h"

namespace reskit {

using graph::Node;

Tensor detail::record_call(std::shared_ptr<Layer> layer, int node_index, std::vector<Tensor> inputs,
                           Shape output_shape) {
  auto node = std::make_shared<Node>();
  const DType dtype = layer->dtype();
  node->layer = std::move(layer);
  node->node_index = node_index;
  node->inputs = std::move(inputs);
  node->output_shape = output_shape;
  return Tensor::symbolic(std::move(output_shape), dtype, std::move(node), 0);
}

struct Model::State {
  std::string name;
  std::vector<Tensor> inputs, outputs;
  std::vector<std::shared_ptr<Node>> nodes;  // execution order
  std::vector<std::vector<int>> producers;   // per node: index of the node feeding each input
  std::vector<std::shared_ptr<Layer>> layers;
  std::vector<int> input_nodes, output_nodes;
  std::vector<graph::ModelNode> views;        // nodes() : what nodes and producers hold, read-only
  std::map<const Layer*, int> node_of_layer;  // position in nodes of each layer's node
  // Per node, what its layer may fuse with (the layer registry; nothing for a class it lacks).
  std::vector<const layers::FusionTraits*> traits;
  bool sequential_like = true;
  bool sequential = false;     // Keras's Sequential (set_sequential)
  std::vector<Tensor> values;  // outputs of the last forward, per node
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<Loss> loss;
  std::vector<std::string> metrics;
  std::vector<std::string> class_names;
  bool profiling = false;
  bool profile_by_layer = false;
  std::map<std::string, double> profile;
  TrainStepHooks step_hooks;
  // (producer, ReLU Activation) node pairs whose ReLU the producer applies in its forward;
  // folded: the producer is a BatchNormalization that inference folds (bn_folds), the ReLU with it.
  struct ReluFusion {
    int producer, act;
    bool folded = false;
  };
  std::vector<ReluFusion> relu_fusions;
  bool fuse_relu = true;
  // Inference: (Conv2D, BatchNormalization, ReLU Activation or -1) node chains whose
  // normalization (and ReLU) the convolution applies with folded weights.
  struct Fold {
    int conv, bn, act;
  };
  std::vector<Fold> bn_folds;
  // (BatchNormalization, Add) node pairs where the normalization is the Add's input `bn_index` of
  // two, read by nothing else, and the other input (node `other`) is computed before it: the
  // normalization adds it (and applies the Add's ReLU when that is fused, add_relu) in its own
  // pass, and the Add passes the sum on. Not while inference folds that normalization (bn_folded),
  // nor while the Add is fused into a convolution (add_folded: see FoldedAddFusion).
  struct AddFusion {
    int bn, add, other, bn_index;
    bool bn_folded = false, add_relu = false, add_folded = false;
  };
  std::vector<AddFusion> add_fusions;
  // Inference: (Conv2D, Add) node pairs where the Add's input `bn_index` of two is a normalization
  // (node bn) folded into the convolution (bn_folds), read by nothing else, and the other input
  // (node `other`) is computed before the normalization: the convolution runs in the
  // normalization's place (only that normalization reads it), adds the other input (and applies
  // the Add's fused ReLU, add_relu) as it writes its output, and the Add passes that output on.
  struct FoldedAddFusion {
    int conv, bn, add, other, bn_index;
    bool add_relu = false;
  };
  std::vector<FoldedAddFusion> folded_add_fusions;
  // Mixed precision, training: normalizations (node bn) that write only the bfloat16 rounding of
  // their output where every reader takes that (output: the Conv2Ds after it, or after the ReLU it
  // applies, node act; only while that ReLU is fused), and of their input gradient where the
  // Conv2D before reads it alone (input_gradient). See FusionTraits::set_bf16_only.
  struct Bf16Only {
    int bn, act;
    bool output = false, input_gradient = false;
  };
  std::vector<Bf16Only> bf16_only;
  bool bf16_only_on = true;  // set_bf16_only
  // Mixed precision, training: Keras's bfloat16 activations (Model::set_bf16_activations). A
  // Conv2D (node conv) writes its output as the rounding alone where a BatchNormalization alone
  // reads it (output), and its input gradient where it alone reads a normalization's output
  // (input_gradient; through_relu: after the ReLU the normalization applies, only while fused).
  struct Bf16Activations {
    int conv;
    bool output = false, input_gradient = false, through_relu = false;
  };
  std::vector<Bf16Activations> bf16_activations;
  // Mixed precision, training, with them: ReLU Activations (nodes) after an Add, whose own backward
  // applies the mask, that write their input gradient as the rounding alone (every input of the
  // Add reads it so): Keras's bfloat16 gradient of a residual block's output.
  std::vector<int> bf16_gradients;
  // And normalizations (nodes) on residual blocks' paths that write their output as the rounding
  // alone (while the Add fusions hold): one that absorbs an Add, where every reader of the sum
  // (after the Add's ReLU) takes the rounding (Conv2Ds, and normalizations adding it as their
  // residual); and the other input of such an Add, a normalization read by that Add alone. Keras's
  // bfloat16 residual stream.
  std::vector<int> bf16_sums;
  bool bf16_activations_on = true;  // set_bf16_activations
  bool fold_batch_norm = true;
  bool last_forward_folded = false;
  // During a forward pass: per node, the node whose value a fused BatchNormalization (or
  // convolution) adds, or -1; and the node in whose place it runs (FoldedAddFusion), or -1.
  std::vector<int> residual_of;
  std::vector<int> runs_before;
};

namespace {
// The profile's key of a layer's pass: its class, or its class and name (profiling by layer).
std::string profile_key(const Model::State& s, const Layer& layer, const char* pass) {
  if (!s.profiling) return {};
  return layer.class_name() + (s.profile_by_layer ? " " + layer.name() : std::string()) + " " + pass;
}

// Runs f, adding its wall time to profile[key] when profiling.
template <class F>
decltype(auto) timed(Model::State& s, const std::string& key, F&& f) {
  if (!s.profiling) return f();
  struct Add {
    Model::State& s;
    const std::string& key;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    ~Add() { s.profile[key] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  } add{s, key};
  return f();
}
}  // namespace

Model::Model(const Tensor& input, const Tensor& output, std::string name)
    : Model(std::vector<Tensor>{input}, std::vector<Tensor>{output}, std::move(name)) {}

Model::Model(std::vector<Tensor> inputs, std::vector<Tensor> outputs, std::string name)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.name = name.empty() ? detail::unique_object_name("model") : std::move(name);
  for (const auto& t : inputs) {
    if (!t.is_symbolic() || t.node()->layer->class_name() != "InputLayer") {
      throw Error("Model '" + s.name + "': expected inputs made by Input(), got " +
                  (t.is_symbolic() ? "the output of " + t.node()->layer->where() : "a concrete tensor"));
    }
  }
  for (const auto& t : outputs) {
    if (!t.is_symbolic())
      throw Error("Model '" + s.name + "': expected symbolic outputs, got a concrete tensor");
  }
  if (inputs.empty() || outputs.empty())
    throw Error("Model '" + s.name + "': expected at least one input and output");
  s.inputs = std::move(inputs);
  s.outputs = std::move(outputs);

  // Keras functional._map_graph_network: DFS from the outputs, post-order; layers numbered at
  // first visit; depth = longest path to an output.
  std::vector<Node*> post_order;
  std::map<Node*, std::shared_ptr<Node>> owner;
  std::map<const Layer*, int> layer_index;
  std::set<Node*> finished, in_progress;
  std::function<void(const Tensor&)> visit = [&](const Tensor& t) {
    Node* node = t.node().get();
    if (finished.count(node)) return;
    if (in_progress.count(node)) throw Error("Model '" + s.name + "': the graph has a cycle");
    owner[node] = t.node();
    layer_index.emplace(node->layer.get(), static_cast<int>(layer_index.size()));
    in_progress.insert(node);
    for (const auto& in : node->inputs) visit(in);
    in_progress.erase(node);
    finished.insert(node);
    post_order.push_back(node);
  };
  for (const auto& t : s.outputs) visit(t);

  std::map<Node*, int> node_depth;
  std::map<const Layer*, int> layer_depth;
  for (auto it = post_order.rbegin(); it != post_order.rend(); ++it) {
    Node* node = *it;
    int depth = node_depth[node];
    depth = std::max(depth, layer_depth[node->layer.get()]);
    layer_depth[node->layer.get()] = depth;
    node_depth[node] = depth;
    for (const auto& in : node->inputs) {
      int& d = node_depth[in.node().get()];
      d = std::max(d, depth + 1);
    }
  }
  for (const auto& t : s.inputs) {
    if (!finished.count(t.node().get())) {
      throw Error("Model '" + s.name + "': input '" + t.node()->layer->name() +
                  "' is not connected to the outputs");
    }
  }

  // Execution order: decreasing node depth, ties by discovery order.
  std::vector<Node*> order = post_order;
  std::stable_sort(order.begin(), order.end(),
                   [&](Node* a, Node* b) { return node_depth[a] > node_depth[b]; });
  std::map<Node*, int> index_of;
  for (Node* n : order) {
    index_of[n] = static_cast<int>(s.nodes.size());
    s.nodes.push_back(owner[n]);
  }
  for (Node* n : order) {
    std::vector<int> prod;
    for (const auto& in : n->inputs) prod.push_back(index_of.at(in.node().get()));
    s.producers.push_back(std::move(prod));
  }
  for (const auto& t : s.inputs) s.input_nodes.push_back(index_of.at(t.node().get()));
  for (const auto& t : s.outputs) s.output_nodes.push_back(index_of.at(t.node().get()));

  // model.layers: by decreasing depth, then by first-visit index.
  std::vector<const Layer*> layer_order;
  std::map<const Layer*, std::shared_ptr<Layer>> layer_owner;
  for (Node* n : post_order) {
    if (!layer_owner.count(n->layer.get())) layer_order.push_back(n->layer.get());
    layer_owner[n->layer.get()] = n->layer;
  }
  std::stable_sort(layer_order.begin(), layer_order.end(), [&](const Layer* a, const Layer* b) {
    if (layer_depth[a] != layer_depth[b]) return layer_depth[a] > layer_depth[b];
    return layer_index[a] < layer_index[b];
  });
  std::set<std::string> names;
  for (const Layer* l : layer_order) {
    if (!names.insert(l->name()).second) {
      throw Error("Model '" + s.name + "': expected unique layer names, got '" + l->name() + "' twice");
    }
    s.layers.push_back(layer_owner[l]);
  }
  for (const auto& l : s.layers) {
    if (l->node_count() > 1) {
      throw Error("Model '" + s.name + "': " + l->where() +
                  " is called more than once; shared layers are not supported");
    }
  }

  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const Node& n = *s.nodes[i];
    s.views.push_back({n.layer, n.node_index, s.producers[i], n.output_shape});
    s.node_of_layer.emplace(n.layer.get(), static_cast<int>(i));
  }

  // The fusion plan, from what the registry says each layer may fuse with.
  static const layers::FusionTraits kNoFusion;
  for (const auto& n : s.nodes) {
    const layers::LayerEntry* entry = layers::find_layer(n->layer->class_name());
    s.traits.push_back(entry ? &entry->fusion : &kNoFusion);
  }
  // ReLU fusion: a ReLU whose single input is the output of a layer that can apply it
  // (takes_relu), read by nothing else and not a model output.
  std::vector<int> consumers(s.nodes.size(), 0);
  for (const auto& ps : s.producers)
    for (int p : ps) ++consumers[p];
  for (int o : s.output_nodes) ++consumers[o];
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const Layer& act = *s.nodes[i]->layer;
    if (!s.traits[i]->is_relu || !s.traits[i]->is_relu(act) || s.producers[i].size() != 1) continue;
    const int p = s.producers[i][0];
    const Layer& producer = *s.nodes[p]->layer;
    if (s.traits[p]->takes_relu && consumers[p] == 1 && producer.dtype() == act.dtype()) {
      s.relu_fusions.push_back({p, static_cast<int>(i)});
    }
  }

  // BatchNormalization folding (inference): a convolution that can take it (a linear Conv2D)
  // whose output only the normalization reads, with the ReLU fused above when there is one.
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const Layer& bn = *s.nodes[i]->layer;
    if (!s.traits[i]->folded_into_conv || s.producers[i].size() != 1) continue;
    const int c = s.producers[i][0];
    const Layer& conv = *s.nodes[c]->layer;
    if (!s.traits[c]->can_fold_batch_norm || !s.traits[c]->can_fold_batch_norm(conv) || consumers[c] != 1 ||
        conv.dtype() != bn.dtype()) {
      continue;
    }
    int act = -1;
    for (auto& f : s.relu_fusions) {
      if (f.producer != static_cast<int>(i)) continue;
      act = f.act;
      f.folded = true;
    }
    s.bn_folds.push_back({c, static_cast<int>(i), act});
  }

  // BatchNormalization + Add fusion (see AddFusion and FoldedAddFusion).
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const Layer& add = *s.nodes[i]->layer;
    if (!s.traits[i]->set_sum_input || s.producers[i].size() != 2) continue;
    bool relu = false;
    for (const auto& f : s.relu_fusions) relu = relu || f.producer == static_cast<int>(i);
    bool add_folded = false;
    for (int k : {1, 0}) {
      const int bn = s.producers[i][k], other = s.producers[i][1 - k];
      for (const auto& f : s.bn_folds) {
        if (add_folded || f.bn != bn || consumers[bn] != 1 || !s.traits[f.conv]->set_folded_residual ||
            other >= bn || s.nodes[f.conv]->layer->dtype() != add.dtype())
          continue;
        s.folded_add_fusions.push_back({f.conv, bn, static_cast<int>(i), other, k, relu});
        add_folded = true;
      }
    }
    for (int k : {1, 0}) {
      const int bn = s.producers[i][k], other = s.producers[i][1 - k];
      const Layer& layer = *s.nodes[bn]->layer;
      if (!s.traits[bn]->absorbs_add_input || consumers[bn] != 1 || other >= bn ||
          layer.dtype() != add.dtype())
        continue;
      bool folded = false;
      for (const auto& f : s.bn_folds) folded = folded || f.bn == bn;
      s.add_fusions.push_back({bn, static_cast<int>(i), other, k, folded, relu, add_folded});
      break;
    }
  }

  // bfloat16-only outputs and input gradients (see Bf16Only).
  std::vector<std::vector<int>> readers(s.nodes.size());
  for (std::size_t i = 0; i < s.nodes.size(); ++i)
    for (int p : s.producers[i]) readers[p].push_back(static_cast<int>(i));
  const auto reads_bf16_only = [&](int node) {
    return s.traits[node]->reads_bf16_only && s.traits[node]->reads_bf16_only(*s.nodes[node]->layer);
  };
  const auto is_output = [&](int node) {
    return std::find(s.output_nodes.begin(), s.output_nodes.end(), node) != s.output_nodes.end();
  };
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    if (!s.traits[i]->set_bf16_only || s.producers[i].size() != 1) continue;
    const int bn = static_cast<int>(i);
    Model::State::Bf16Only plan{bn, -1};
    for (const auto& f : s.relu_fusions)
      if (f.producer == bn) plan.act = f.act;
    const int value = plan.act >= 0 ? plan.act : bn;  // the node whose readers read this output
    plan.output = !is_output(value) && !readers[value].empty() &&
                  std::all_of(readers[value].begin(), readers[value].end(), reads_bf16_only);
    const int conv = s.producers[i][0];
    plan.input_gradient = reads_bf16_only(conv) && consumers[conv] == 1;
    if (plan.output || plan.input_gradient) s.bf16_only.push_back(plan);
    // Keras's bfloat16 activations: the Conv2D before (read by this normalization alone), and the
    // one Conv2D that alone reads its output.
    const auto activations = [&](int node) -> Model::State::Bf16Activations& {
      for (auto& a : s.bf16_activations)
        if (a.conv == node) return a;
      return s.bf16_activations.emplace_back(Model::State::Bf16Activations{node});
    };
    if (plan.input_gradient && !is_output(conv) && s.traits[conv]->set_bf16_activations)
      activations(conv).output = true;
    if (!is_output(value) && readers[value].size() == 1 && reads_bf16_only(readers[value][0]) &&
        s.traits[readers[value][0]]->set_bf16_activations) {
      auto& a = activations(readers[value][0]);
      a.input_gradient = true;
      a.through_relu = plan.act >= 0;
    }
  }

  // Keras's bfloat16 gradients of residual blocks' outputs (see bf16_gradients). A ReLU that
  // applies its own mask in backward: its producer does not take it (takes_relu_backward).
  const auto own_mask_relu = [&](int node) {
    return s.traits[node]->set_bf16_only_input_gradient && s.traits[node]->is_relu(*s.nodes[node]->layer) &&
           s.producers[node].size() == 1 && !s.traits[s.producers[node][0]]->takes_relu_backward;
  };
  // A node that reads a bfloat16-only gradient of its output as it is: a layer that does so
  // alone, or such a ReLU reading two (backward_sum); a third would be summed in float32.
  const auto takes_bf16_gradient = [&](int node) {
    const layers::FusionTraits& t = *s.traits[node];
    if (!t.reads_bf16_gradient || !t.reads_bf16_gradient(*s.nodes[node]->layer) || is_output(node))
      return false;
    return consumers[node] == 1 || (consumers[node] == 2 && own_mask_relu(node));
  };
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const int act = static_cast<int>(i);
    if (!own_mask_relu(act)) continue;
    const int add = s.producers[i][0];
    if (!s.traits[add]->passes_gradient || consumers[add] != 1 || s.producers[add].empty() ||
        !std::all_of(s.producers[add].begin(), s.producers[add].end(), takes_bf16_gradient))
      continue;
    s.bf16_gradients.push_back(act);
  }
  // A linear Conv2D whose input such a ReLU gives (one of at most two readers) writes its input
  // gradient as the rounding alone: the ReLU's backward reads it so.
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    if (!reads_bf16_only(static_cast<int>(i)) || !s.traits[i]->set_bf16_activations ||
        s.producers[i].size() != 1)
      continue;
    const int act = s.producers[i][0];
    if (!own_mask_relu(act) || consumers[act] > 2 || is_output(act)) continue;
    bool found = false;
    for (auto& a : s.bf16_activations) {
      if (a.conv != static_cast<int>(i)) continue;
      a.input_gradient = true;
      found = true;
    }
    if (!found) s.bf16_activations.push_back({static_cast<int>(i), false, true, false});
  }

  // The residual stream (see bf16_sums).
  const auto reads_as_residual = [&](int reader, int value) {
    return std::any_of(s.add_fusions.begin(), s.add_fusions.end(),
                       [&](const auto& g) { return g.add == reader && g.other == value; });
  };
  const auto relu_after = [&](int node) {
    for (const auto& r : s.relu_fusions)
      if (r.producer == node) return r.act;
    return -1;
  };
  for (const auto& f : s.add_fusions) {
    if (!s.traits[f.bn]->set_bf16_only_sum) continue;
    const int value = relu_after(f.add) >= 0 ? relu_after(f.add) : f.add;
    const auto takes = [&](int reader) {
      return reads_bf16_only(reader) || reads_as_residual(reader, value);
    };
    if (!is_output(value) && !readers[value].empty() &&
        std::all_of(readers[value].begin(), readers[value].end(), takes))
      s.bf16_sums.push_back(f.bn);
    if (s.traits[f.other]->set_bf16_only_sum && relu_after(f.other) < 0 && readers[f.other].size() == 1 &&
        !is_output(f.other))
      s.bf16_sums.push_back(f.other);
  }

  // Keras print_summary: sequential-like when every depth has one node of at most one input.
  std::map<int, int> nodes_at_depth;
  for (Node* n : order) ++nodes_at_depth[node_depth[n]];
  for (Node* n : order) {
    if (nodes_at_depth[node_depth[n]] > 1 || n->inputs.size() > 1) s.sequential_like = false;
  }
}

const std::string& Model::name() const { return state_->name; }
const std::vector<std::shared_ptr<Layer>>& Model::layers() const { return state_->layers; }
const std::vector<Tensor>& Model::inputs() const { return state_->inputs; }
const std::vector<Tensor>& Model::outputs() const { return state_->outputs; }
DType Model::dtype() const { return state_->outputs[0].dtype(); }
const std::vector<graph::ModelNode>& Model::nodes() const { return state_->views; }
const std::vector<int>& Model::input_nodes() const { return state_->input_nodes; }
const std::vector<int>& Model::output_nodes() const { return state_->output_nodes; }

const graph::ModelNode& Model::node_of(const Layer& layer) const {
  auto it = state_->node_of_layer.find(&layer);
  if (it == state_->node_of_layer.end())
    throw Error("Model '" + state_->name + "': " + layer.where() + " is not one of its layers");
  return state_->views[it->second];
}

std::shared_ptr<Layer> Model::get_layer(std::string_view name) const {
  for (const auto& l : state_->layers)
    if (l->name() == name) return l;
  std::vector<std::string> names;
  for (const auto& l : state_->layers) names.push_back(l->name());
  throw ConfigError("Model '" + state_->name + "': expected the name of one of its " +
                    std::to_string(names.size()) + " layers, got '" + std::string(name) + "'" +
                    detail::nearest_names_hint(name, names));
}

void Model::set_trainable(bool trainable) {
  for (const auto& l : state_->layers) l->set_trainable(trainable);
}

Tensor Model::forward(const Tensor& x, bool training) { return forward(std::vector<Tensor>{x}, training)[0]; }

std::vector<Tensor> Model::forward(const std::vector<Tensor>& xs, bool training) {
  State& s = *state_;
  if (xs.size() != s.input_nodes.size()) {
    throw ShapeError("Model '" + s.name + "': expected " + std::to_string(s.input_nodes.size()) +
                     " inputs, got " + std::to_string(xs.size()));
  }
  s.values.assign(s.nodes.size(), Tensor());
  s.residual_of.assign(s.nodes.size(), -1);
  s.runs_before.assign(s.nodes.size(), -1);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Node& node = *s.nodes[s.input_nodes[i]];
    const Shape& want = node.output_shape;
    const Tensor& x = xs[i];
    bool ok = x.defined() && !x.is_symbolic() && x.rank() == static_cast<int>(want.size());
    for (std::size_t d = 1; ok && d < want.size(); ++d) ok = x.shape()[d] == want[d];
    if (!ok) {
      throw ShapeError(
          "Model '" + s.name + "' input '" + node.layer->name() + "': expected shape " + shape_str(want) +
          ", got " +
          (x.defined() ? (x.is_symbolic() ? "a symbolic tensor" : shape_str(x.shape())) : "nothing"));
    }
    s.values[s.input_nodes[i]] = x.to(node.layer->dtype());
  }
  // The fusion flags hold for this pass only: the layers may be called elsewhere, unfused.
  struct FusionScope {
    State& s;
    bool training, fold;
    FusionScope(State& st, bool train) : s(st), training(train), fold(!train && st.fold_batch_norm) {
      s.last_forward_folded = fold && !s.bn_folds.empty();
      set(true);
    }
    ~FusionScope() { set(false); }
    void set(bool on) {
      if (fold) {
        for (const auto& f : s.bn_folds) {
          Layer& bn = *s.nodes[f.bn]->layer;
          s.traits[f.conv]->fold_batch_norm(*s.nodes[f.conv]->layer, on ? &bn : nullptr, f.act >= 0);
          s.traits[f.bn]->folded_into_conv(bn, on);
          if (f.act >= 0) s.nodes[f.act]->layer->set_fused_relu(on);
        }
      }
      for (const auto& f : s.bf16_only) {
        const bool planned = on && training && s.bf16_only_on;
        // The output only while the ReLU is fused: the ReLU itself reads it otherwise.
        const bool output = planned && f.output && (f.act < 0 || s.fuse_relu);
        s.traits[f.bn]->set_bf16_only(*s.nodes[f.bn]->layer, output, planned && f.input_gradient);
      }
      for (int bn : s.bf16_sums) {
        s.traits[bn]->set_bf16_only_sum(*s.nodes[bn]->layer,
                                        on && training && s.bf16_activations_on && s.fuse_relu);
      }
      for (int act : s.bf16_gradients)
        s.traits[act]->set_bf16_only_input_gradient(*s.nodes[act]->layer,
                                                    on && training && s.bf16_activations_on);
      for (const auto& a : s.bf16_activations) {
        const bool planned = on && training && s.bf16_activations_on;
        s.traits[a.conv]->set_bf16_activations(
            *s.nodes[a.conv]->layer, planned && a.output,
            planned && a.input_gradient && (!a.through_relu || s.fuse_relu));
      }
      if (!s.fuse_relu) return;
      for (const auto& f : s.add_fusions) {
        // the convolution applies this normalization (and adds, add_folded)
        if (fold && (f.bn_folded || f.add_folded)) continue;
        s.nodes[f.bn]->layer->set_fused_relu(on && f.add_relu);
        s.traits[f.add]->set_sum_input(*s.nodes[f.add]->layer, on ? f.bn_index : -1);
        s.residual_of[f.bn] = on ? f.other : -1;
      }
      if (fold) {
        for (const auto& f : s.folded_add_fusions) {
          s.traits[f.conv]->set_folded_residual(*s.nodes[f.conv]->layer, on, f.add_relu);
          s.traits[f.add]->set_sum_input(*s.nodes[f.add]->layer, on ? f.bn_index : -1);
          s.residual_of[f.conv] = on ? f.other : -1;
          s.runs_before[f.conv] = on ? f.bn : -1;
        }
      }
      for (const auto& f : s.relu_fusions) {
        if (fold && f.folded) continue;  // the convolution applies this ReLU
        Layer& producer = *s.nodes[f.producer]->layer;
        const bool backward = training && s.traits[f.producer]->takes_relu_backward;
        producer.set_fused_relu(on, backward);
        s.nodes[f.act]->layer->set_fused_relu(on, backward);
      }
    }
  } fusion(s, training);
  const auto run_node = [&](std::size_t i) {
    std::vector<Tensor> ins;
    for (int p : s.producers[i]) ins.push_back(s.values[p]);
    if (s.residual_of[i] >= 0) ins.push_back(s.values[s.residual_of[i]]);
    Layer& layer = *s.nodes[i]->layer;
    s.values[i] = timed(s, profile_key(s, layer, "forward"), [&] { return layer.forward(ins, training); });
  };
  // A node that runs in another's place (runs_before) runs just before that one.
  std::vector<int> moved_here(s.nodes.size(), -1);
  for (std::size_t i = 0; i < s.nodes.size(); ++i)
    if (s.runs_before[i] >= 0) moved_here[s.runs_before[i]] = static_cast<int>(i);
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    if (s.nodes[i]->inputs.empty() || s.runs_before[i] >= 0) continue;
    if (moved_here[i] >= 0) run_node(static_cast<std::size_t>(moved_here[i]));
    run_node(i);
  }
  std::vector<Tensor> out;
  for (int o : s.output_nodes) out.push_back(s.values[o]);
  return out;
}

std::vector<Tensor> Model::backward(const Tensor& grad_output, BackwardOptions options) {
  State& s = *state_;
  const bool from_logits = options.from_logits;
  if (s.output_nodes.size() != 1) throw Error("Model '" + s.name + "': backward expects a single output");
  if (s.values.empty()) throw Error("Model '" + s.name + "': backward called before forward");
  if (s.last_forward_folded) {
    throw Error("Model '" + s.name +
                "': backward after an inference forward with BatchNormalization folded into Conv2D; run "
                "forward(x, true), or set_fold_batch_norm(false) before the inference forward");
  }
  const int out = s.output_nodes[0];
  const Shape& want = s.values[out].shape();
  if (grad_output.shape() != want && !from_logits) {
    throw ShapeError("Model '" + s.name + "': expected an output gradient of shape " + shape_str(want) +
                     ", got " + shape_str(grad_output.shape()));
  }
  std::vector<Tensor> grads(s.nodes.size());
  std::vector<bool> owned(s.nodes.size(), false);
  // A second gradient of a node's output, not yet added to grads[p]: the node's backward_sum adds
  // the two in its own pass. A third arrival sums them here first (the same order).
  std::vector<Tensor> second(s.nodes.size());
  auto settle = [&](int p) {
    if (!second[p].defined()) return;
    grads[p] = detail::add(grads[p], second[p]);
    second[p] = Tensor();
    owned[p] = true;
  };
  grads[out] = grad_output.to(dtype());
  // A tensor needs a gradient when a trainable parameter, or a model input whose gradient is
  // asked for, lies upstream; a layer computes input gradients only when one of its inputs does.
  std::vector<bool> requires_grad(s.nodes.size(), false);
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    const Layer& layer = *s.nodes[i]->layer;
    bool needed = false;
    for (int p : s.producers[i]) needed = needed || requires_grad[p];
    s.nodes[i]->layer->set_input_gradients_needed(needed);
    requires_grad[i] =
        s.nodes[i]->inputs.empty() ? options.input_gradients : needed || layer.count_trainable_params() > 0;
  }
  std::vector<const Layer*> penalised;
  for (int i = static_cast<int>(s.nodes.size()) - 1; i >= 0; --i) {
    Node& node = *s.nodes[i];
    if (node.inputs.empty() || (options.regularization && node.layer->activity_regularizer())) settle(i);
    if (options.regularization && node.layer->activity_regularizer() && !node.inputs.empty() &&
        requires_grad[i]) {
      Tensor g = activity_gradient(*node.layer->activity_regularizer(), s.values[i], from_logits && i == out,
                                   options.regularization_scale);
      grads[i] = grads[i].defined() ? detail::add(grads[i], g) : g;  // grads[i] may be shared
    }
    // Nothing trainable at or behind this node (a frozen base): no backward at all.
    if (!grads[i].defined() || node.inputs.empty() || !requires_grad[i]) continue;
    std::vector<Tensor> gin = timed(s, profile_key(s, *node.layer, "backward"), [&] {
      if (from_logits && i == out) return node.layer->backward_from_logits(grads[i]);
      return second[i].defined() ? node.layer->backward_sum(grads[i], second[i])
                                 : node.layer->backward(grads[i]);
    });
    grads[i] = Tensor();
    second[i] = Tensor();
    // The layer's weight penalties now, so that after_layer_backward sees its gradients final.
    if (options.regularization) {
      std::vector<Param*> own;
      for (Param& p : node.layer->params())
        if (node.layer->trains(p)) own.push_back(&p);
      add_weight_penalty_gradients(own, options.regularization_scale);
      penalised.push_back(node.layer.get());
    }
    if (options.after_layer_backward) options.after_layer_backward(*node.layer);
    for (std::size_t k = 0; k < gin.size(); ++k) {
      int p = s.producers[i][k];
      if (!gin[k].defined() || !requires_grad[p]) continue;
      if (!grads[p].defined()) {
        grads[p] = gin[k];
      } else if (!owned[p] && !second[p].defined()) {
        second[p] = gin[k];
      } else {
        // A layer may hand the same tensor to several inputs (Add): sum into a new tensor first.
        settle(p);
        if (!owned[p]) {
          grads[p] = detail::add(grads[p], gin[k]);
          owned[p] = true;
        } else {
          detail::add_inplace(grads[p], gin[k]);
        }
      }
    }
  }
  for (auto& node : s.nodes) node->layer->set_input_gradients_needed(true);
  if (options.regularization) {  // those of the layers whose backward did not run
    std::vector<Param*> rest;
    for (auto& l : s.layers)
      if (std::find(penalised.begin(), penalised.end(), l.get()) == penalised.end())
        for (Param& p : l->params())
          if (l->trains(p)) rest.push_back(&p);
    add_weight_penalty_gradients(rest, options.regularization_scale);
  }
  std::vector<Tensor> result;
  for (int in : s.input_nodes) result.push_back(grads[in]);
  return result;
}

std::vector<Param*> Model::parameters() {
  std::vector<Param*> out;
  for (auto& l : state_->layers)
    for (auto& p : l->params()) out.push_back(&p);
  return out;
}

std::vector<Param*> Model::trainable_parameters() {
  std::vector<Param*> out;
  for (auto& l : state_->layers)
    for (auto& p : l->params())
      if (l->trains(p)) out.push_back(&p);
  return out;
}

std::int64_t Model::count_params() const {
  std::int64_t n = 0;
  for (const auto& l : state_->layers) n += l->count_params();
  return n;
}

std::int64_t Model::count_trainable_params() const {
  std::int64_t n = 0;
  for (const auto& l : state_->layers) n += l->count_trainable_params();
  return n;
}

// ---------------------------------------------------------------- summary (tf.keras 2.x)

namespace {
std::string with_commas(std::int64_t v) {
  std::string digits = std::to_string(v), out;
  int count = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (count > 0 && count % 3 == 0 && *it != '-') out.push_back(',');
    out.push_back(*it);
    ++count;
  }
  return {out.rbegin(), out.rend()};
}

// keras.utils.layer_utils.print_summary's print_row.
std::string summary_row(const std::vector<std::string>& fields, const std::vector<int>& positions) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0 && !line.empty()) line.back() = ' ';
    line += fields[i];
    line = line.substr(0, static_cast<std::size_t>(positions[i]));
    line.append(static_cast<std::size_t>(positions[i]) - line.size(), ' ');
  }
  return line;
}
}  // namespace

void Model::summary(std::ostream& out) const {
  const State& s = *state_;
  const int line_length = s.sequential_like ? 65 : 98;
  std::vector<double> fractions =
      s.sequential_like ? std::vector<double>{.45, .85, 1.} : std::vector<double>{.33, .55, .67, 1.};
  std::vector<int> positions;
  for (double f : fractions) positions.push_back(static_cast<int>(line_length * f));
  std::vector<std::string> header{"Layer (type)", "Output Shape", "Param #"};
  if (!s.sequential_like) header.push_back("Connected to");

  out << "Model: \"" << s.name << "\"\n";
  out << std::string(line_length, '_') << "\n";
  out << summary_row(header, positions) << "\n";
  out << std::string(line_length, '=') << "\n";
  for (std::size_t li = 0; li < s.layers.size(); ++li) {
    const Layer& layer = *s.layers[li];
    if (s.sequential && layer.class_name() == "InputLayer") continue;  // not in Sequential.layers
    const graph::ModelNode& node = node_of(layer);
    std::string shape = shape_str(node.output_shape);
    if (layer.class_name() == "InputLayer") shape = "[" + shape + "]";
    std::vector<std::string> fields{layer.name() + " (" + layer.class_name() + ")", shape,
                                    std::to_string(layer.count_params())};
    if (s.sequential_like) {
      out << summary_row(fields, positions) << "\n";
    } else {
      std::vector<std::string> connections;
      for (const int in : node.inputs) {
        const graph::ModelNode& from = s.views[in];
        connections.push_back(from.layer->name() + "[" + std::to_string(from.node_index) + "][0]");
      }
      fields.push_back(connections.empty() ? "" : connections[0]);
      out << summary_row(fields, positions) << "\n";
      for (std::size_t c = 1; c < connections.size(); ++c)
        out << summary_row({"", "", "", connections[c]}, positions) << "\n";
    }
    out << std::string(line_length, li + 1 == s.layers.size() ? '=' : '_') << "\n";
  }
  const std::int64_t total = count_params(), trainable = count_trainable_params();
  out << "Total params: " << with_commas(total) << "\n";
  out << "Trainable params: " << with_commas(trainable) << "\n";
  out << "Non-trainable params: " << with_commas(total - trainable) << "\n";
  out << std::string(line_length, '_') << "\n";
}

void Model::summary() const { summary(std::cout); }

std::string Model::summary_string() const {
  std::ostringstream os;
  summary(os);
  return os.str();
}

// ---------------------------------------------------------------- compile and one step

void Model::compile(std::shared_ptr<Optimizer> optimizer, std::shared_ptr<Loss> loss,
                    std::vector<std::string> metrics) {
  if (!optimizer || !loss)
    throw ConfigError("Model '" + state_->name + "': compile needs an optimizer and a loss");
  for (const auto& m : metrics) {
    if (m != "accuracy" && m != "acc" && m != "top_k_categorical_accuracy") {
      throw ConfigError("Model '" + state_->name + "': unknown metric '" + m +
                        "'; expected 'accuracy' or 'top_k_categorical_accuracy'");
    }
  }
  state_->optimizer = std::move(optimizer);
  state_->loss = std::move(loss);
  state_->metrics = std::move(metrics);
}

Optimizer& Model::optimizer() {
  if (!state_->optimizer) throw Error("Model '" + state_->name + "': not compiled; call compile() first");
  return *state_->optimizer;
}

bool Model::compiled() const { return state_->optimizer && state_->loss; }

const Loss& Model::loss() const {
  if (!state_->loss) throw Error("Model '" + state_->name + "': not compiled; call compile() first");
  return *state_->loss;
}

const std::vector<std::string>& Model::metrics() const { return state_->metrics; }

void Model::set_train_step_hooks(TrainStepHooks hooks) { state_->step_hooks = std::move(hooks); }

void Model::set_fuse_relu(bool on) { state_->fuse_relu = on; }
void Model::set_bf16_only(bool on) { state_->bf16_only_on = on; }
bool Model::bf16_only() const { return state_->bf16_only_on; }
void Model::set_bf16_activations(bool on) { state_->bf16_activations_on = on; }
bool Model::bf16_activations() const { return state_->bf16_activations_on; }
void Model::set_fold_batch_norm(bool on) { state_->fold_batch_norm = on; }
bool Model::fold_batch_norm() const { return state_->fold_batch_norm; }
bool Model::fuse_relu() const { return state_->fuse_relu; }

void Model::set_profiling(bool on, bool by_layer) {
  state_->profiling = on;
  state_->profile_by_layer = by_layer;
  state_->profile.clear();
}

std::map<std::string, double> Model::profile() const { return state_->profile; }

void Model::set_sequential(bool on) {
  State& s = *state_;
  if (on && (s.inputs.size() != 1 || s.outputs.size() != 1 || !s.sequential_like ||
             s.layers.front()->class_name() != "InputLayer")) {
    throw ConfigError("model '" + s.name +
                      "': cannot be a Sequential model: expected one chain of single-input layers from one "
                      "InputLayer");
  }
  s.sequential = on;
}

bool Model::sequential() const { return state_->sequential; }

const std::vector<std::string>& Model::class_names() const { return state_->class_names; }

void Model::set_class_names(std::vector<std::string> names) {
  const std::int64_t k = state_->outputs[0].shape().back();
  if (!names.empty() && static_cast<std::int64_t>(names.size()) != k) {
    throw ConfigError("Model '" + state_->name + "': expected " + std::to_string(k) + " class names, got " +
                      std::to_string(names.size()));
  }
  state_->class_names = std::move(names);
}

namespace {
void check_targets(const std::string& model, const Tensor& out, const Tensor& y) {
  if (y.shape() != out.shape()) {
    throw ShapeError("Model '" + model + "': expected targets of shape " + shape_str(out.shape()) +
                     " (one-hot), got " + shape_str(y.shape()));
  }
}

// Keras's regularization losses after a forward: the activity penalties of the layers' outputs,
// then the weights' penalties.
double regularization_loss(Model::State& s, const std::vector<Param*>& params) {
  double total = 0.0;
  for (std::size_t i = 0; i < s.nodes.size(); ++i)
    if (const Regularizer* r = s.nodes[i]->layer->activity_regularizer())
      total += activity_penalty(*r, s.values[i]);
  return total + weight_penalty(params);
}

void add_metrics(StepResult& r, const std::vector<std::string>& metrics, const Tensor& out, const Tensor& y) {
  r.accuracy = categorical_accuracy(out, y);
  for (const auto& m : metrics)
    if (m == "top_k_categorical_accuracy") r.top_k_accuracy = top_k_categorical_accuracy(out, y, 5);
}
}  // namespace

StepResult Model::train_on_batch(const Tensor& x, const Tensor& y) {
  State& s = *state_;
  optimizer();
  Tensor out = forward(x, true);
  Tensor target = y.to(out.dtype());
  check_targets(s.name, out, target);
  Layer& head = *s.nodes[s.output_nodes[0]]->layer;
  const bool from_logits = head.outputs_softmax();
  Tensor grad = Tensor::uninitialized(out.shape(), out.dtype());
  StepResult r;
  r.loss = from_logits ? s.loss->compute_from_logits(head.logits(), target, &grad)
                       : s.loss->compute(out, target, &grad);
  r.loss += regularization_loss(s, parameters());
  add_metrics(r, s.metrics, out, target);
  if (s.step_hooks.loss_gradient_scale != 1.0) {
    const double scale = s.step_hooks.loss_gradient_scale;
    if (grad.dtype() == DType::float64) {
      for (double& g : grad.values<double>()) g *= scale;
    } else {
      for (float& g : grad.values<float>()) g = static_cast<float>(g * scale);
    }
  }
  std::vector<Param*> params = trainable_parameters();
  if (s.step_hooks.before_backward) s.step_hooks.before_backward(params);
  backward(grad, {.from_logits = from_logits,
                  .input_gradients = false,
                  .regularization = true,
                  .regularization_scale = s.step_hooks.loss_gradient_scale,
                  .after_layer_backward = s.step_hooks.after_layer_backward});
  if (s.step_hooks.after_backward) s.step_hooks.after_backward(params);
  timed(s, "optimizer", [&] {
    s.optimizer->apply(params);
    apply_constraints(params);
  });
  return r;
}

StepResult Model::test_on_batch(const Tensor& x, const Tensor& y) {
  State& s = *state_;
  if (!s.loss) throw Error("Model '" + s.name + "': not compiled; call compile() first");
  Tensor out = forward(x, false);
  Tensor target = y.to(out.dtype());
  check_targets(s.name, out, target);
  Layer& head = *s.nodes[s.output_nodes[0]]->layer;
  StepResult r;
  r.loss = head.outputs_softmax() ? s.loss->compute_from_logits(head.logits(), target, nullptr)
                                  : s.loss->compute(out, target, nullptr);
  r.loss += regularization_loss(s, parameters());
  add_metrics(r, s.metrics, out, target);
  return r;
}

}  // namespace reskit
