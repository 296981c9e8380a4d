// Keras JSON configs: Model <-> model_config, compile state <-> training_config.
//
// Writing follows tf.keras 2.6 (Functional get_config, each layer's get_config with Keras's keys
// and defaults). Reading accepts what Keras 2.0 … 3.x write: keras_layout.h first rewrites every
// layout into tf.keras 2.6's, the one form read here and by every layer's from_config.
#include "io/keras_config.h"

#include <cmath>
#include <deque>
#include <map>
#include <set>

#include "hdf5/api.h"
#include "io/keras_layout.h"
#include "layers/registry.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"

namespace reskit::io {

namespace {

// The reading and writing helpers the layers' own config readers use (layers/keras_json.h).
using namespace keras;

constexpr int kMaxJsonDepth = 64;

// ---------------------------------------------------------------- reading helpers

DType dtype_option(const Json& c, const LayerCtx& l) {
  const Json* v = find(c, "dtype");
  if (!v || v->is_null() || *v == "float32") return DType::float32;
  if (*v == "float64") return DType::float64;
  unsupported(l, "dtype", *v, "float32 and float64");
}

// ---------------------------------------------------------------- graph references

struct Ref {
  std::string layer;
  std::int64_t node = 0, tensor = 0;
};

Ref parse_triple(const Json& v, const std::string& what) {
  if (!v.is_array() || v.size() < 3 || v.size() > 4 || !v[0].is_string()) {
    throw FileError("model_config: expected " + what + " as [layer_name, node_index, tensor_index], got " +
                    short_dump(v));
  }
  LayerCtx ctx{"model", what};
  return {v[0].get<std::string>(), as_int(v[1], ctx, "node_index", 0, kMaxDim),
          as_int(v[2], ctx, "tensor_index", 0, kMaxDim)};
}

// input_layers / output_layers: [[n, 0, 0], ...] (keras_layout.h turns the other forms into it).
std::vector<Ref> parse_endpoints(const Json& v, const std::string& what) {
  std::vector<Ref> out;
  if (!v.is_array()) throw FileError("model_config: expected " + what + " as a list, got " + short_dump(v));
  for (const auto& item : v) out.push_back(parse_triple(item, what));
  if (out.empty()) throw FileError("model_config: " + what + " is empty");
  return out;
}

std::vector<Ref> parse_inbound(const Json* nodes, const LayerCtx& l) {
  std::vector<Ref> refs;
  if (!nodes || nodes->is_null()) return refs;
  if (!nodes->is_array()) bad(l, "expected inbound_nodes as a list, got " + short_dump(*nodes));
  if (nodes->empty()) return refs;
  if (nodes->size() > 1) {
    bad(l,
        "the layer is called " + std::to_string(nodes->size()) + " times (shared layers are not supported)");
  }
  // tf.keras 2.x: [[name, node, tensor, kwargs], ...] (keras_layout.h turns Keras 3's into it).
  const Json& node = (*nodes)[0];
  if (!node.is_array()) bad(l, "unreadable inbound node " + short_dump(node));
  for (const auto& entry : node) {
    refs.push_back(parse_triple(entry, "an inbound node of " + l.where()));
    if (entry.size() == 4 && entry[3].is_object()) {
      for (const auto& [k, v] : entry[3].items()) {
        if (!v.is_null() && !(v.is_boolean() && !v.get<bool>() && k == "training")) {
          bad(l, "unsupported call argument " + k + "=" + short_dump(v));
        }
      }
    }
  }
  if (refs.empty()) bad(l, "an inbound node without inputs");
  return refs;
}

// ---------------------------------------------------------------- layers

// Calls the layer described by (class, config) on its inputs: the registered reader of the class.
Tensor build_layer(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, WeightBudget& budget) {
  const layers::FromConfig* read = layers::find_reader(l.class_name);
  if (!read) {
    throw FileError("model_config: unsupported layer class '" + l.class_name + "' (layer '" + l.name +
                    "'); reskit reads " + layers::join_names(layers::readable_classes(), ", "));
  }
  return (*read)(c, l, in, budget);
}

struct LayerSpec {
  LayerCtx ctx;
  const Json* config = nullptr;
  std::vector<Ref> inbound;
};

LayerSpec parse_spec(const Json& entry, std::size_t index) {
  LayerSpec s;
  LayerCtx anon{"layer", "#" + std::to_string(index)};
  if (!entry.is_object()) bad(anon, "expected a JSON object, got " + short_dump(entry));
  s.ctx.class_name = as_string(require(entry, "class_name", anon), anon, "class_name");
  anon.class_name = s.ctx.class_name;
  s.config = &require(entry, "config", anon);
  if (!s.config->is_object()) bad(anon, "expected config as a JSON object");
  const Json* name = find(entry, "name");
  if (!name || name->is_null()) name = find(*s.config, "name");
  if (!name || !name->is_string() || name->get<std::string>().empty() ||
      name->get<std::string>().size() > hdf5::kMaxNameBytes) {
    bad(anon, "expected a non-empty layer name");
  }
  s.ctx.name = name->get<std::string>();
  s.inbound = parse_inbound(find(entry, "inbound_nodes"), s.ctx);
  return s;
}

// RAII: layers take floatx() when created; the model's layers are created in the file's dtype.
class FloatxScope {
 public:
  explicit FloatxScope(DType dtype) : saved_(floatx()) { set_floatx(dtype); }
  ~FloatxScope() { set_floatx(saved_); }
  FloatxScope(const FloatxScope&) = delete;
  FloatxScope& operator=(const FloatxScope&) = delete;

 private:
  DType saved_;
};

// Keras layer.trainable = False: a frozen layer (Layer::set_trainable).
void apply_trainable(const Json& c, const LayerCtx& l, const Tensor& out) {
  out.node()->layer->set_trainable(bool_option(c, "trainable", true, l));
}

// Calls build, turning reskit's own config and shape errors into FileErrors naming the layer.
Tensor build_checked(const LayerSpec& s, const std::vector<Tensor>& in, WeightBudget& budget) {
  try {
    Tensor out = build_layer(*s.config, s.ctx, in, budget);
    apply_trainable(*s.config, s.ctx, out);
    // Keras lets any layer carry an activity_regularizer: refused where reskit's layer takes none.
    if (const Json* a = find(*s.config, "activity_regularizer");
        a && !a->is_null() && !out.node()->layer->activity_regularizer()) {
      unsupported(s.ctx, "activity_regularizer", *a,
                  "null on " + s.ctx.class_name + " (Conv2D and Dense take one)");
    }
    return out;
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    // reskit's own messages usually start with the layer ("Conv2D 'c': expected ...").
    const std::string msg = e.what();
    const std::string where = s.ctx.where();
    throw FileError("model_config: " + (msg.rfind(where, 0) == 0 ? msg : where + ": " + msg));
  }
}

DType model_dtype(const std::vector<LayerSpec>& specs) {
  std::optional<DType> dtype;
  std::optional<DType> input_dtype;
  for (const auto& s : specs) {
    DType d = dtype_option(*s.config, s.ctx);
    if (s.ctx.class_name == "InputLayer") {
      input_dtype = input_dtype.value_or(d);
      continue;
    }
    if (dtype && *dtype != d) {
      bad(s.ctx, "dtype " + std::string(dtype_name(d)) + " differs from the other layers' " +
                     std::string(dtype_name(*dtype)) + " (mixed dtypes are not supported)");
    }
    dtype = d;
  }
  return dtype.value_or(input_dtype.value_or(DType::float32));
}

const Json& layers_array(const Json& cfg) {
  const Json* layers = cfg.is_array() ? &cfg : find(cfg, "layers");
  if (!layers || !layers->is_array()) throw FileError("model_config: expected a list of layers");
  if (layers->size() > kMaxLayers) {
    throw FileError("model_config: " + std::to_string(layers->size()) + " layers exceed the limit of " +
                    std::to_string(kMaxLayers));
  }
  return *layers;
}

std::string model_name(const Json& cfg, const std::string& fallback) {
  const Json* n = find(cfg, "name");
  return n && n->is_string() && !n->get<std::string>().empty() ? n->get<std::string>() : fallback;
}

Model make_model(std::vector<Tensor> inputs, std::vector<Tensor> outputs, const std::string& name) {
  try {
    return Model(std::move(inputs), std::move(outputs), name);
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(std::string("model_config: ") + e.what());
  }
}

Model functional_from_config(const Json& cfg, std::uint64_t max_weight_bytes) {
  const Json& layers = layers_array(cfg);
  std::vector<LayerSpec> specs;
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    specs.push_back(parse_spec(layers[i], i));
    if (!index.emplace(specs.back().ctx.name, i).second) {
      throw FileError("model_config: two layers are named '" + specs.back().ctx.name + "'");
    }
  }
  // Kahn's algorithm over the inbound references, in config order where free to choose.
  std::vector<std::vector<std::size_t>> consumers(specs.size());
  std::vector<std::size_t> waiting(specs.size(), 0);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& s = specs[i];
    if (s.ctx.class_name == "InputLayer" && !s.inbound.empty()) bad(s.ctx, "an InputLayer has no inputs");
    if (s.ctx.class_name != "InputLayer" && s.inbound.empty())
      bad(s.ctx, "the layer is not connected (no inbound nodes)");
    for (const auto& r : s.inbound) {
      auto it = index.find(r.layer);
      if (it == index.end()) bad(s.ctx, "inbound layer '" + r.layer + "' does not exist");
      if (r.node != 0 || r.tensor != 0) {
        bad(s.ctx, "inbound [" + r.layer + ", " + std::to_string(r.node) + ", " + std::to_string(r.tensor) +
                       "] refers to a second call or output (not supported)");
      }
      consumers[it->second].push_back(i);
      ++waiting[i];
    }
  }
  WeightBudget budget{max_weight_bytes, 0, model_dtype(specs)};
  FloatxScope scope(budget.dtype);
  std::vector<Tensor> outputs(specs.size());
  std::deque<std::size_t> ready;
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (waiting[i] == 0) ready.push_back(i);
  std::size_t built = 0;
  while (!ready.empty()) {
    std::size_t i = ready.front();
    ready.pop_front();
    std::vector<Tensor> in;
    for (const auto& r : specs[i].inbound) in.push_back(outputs[index.at(r.layer)]);
    outputs[i] = build_checked(specs[i], in, budget);
    ++built;
    for (std::size_t c : consumers[i])
      if (--waiting[c] == 0) ready.push_back(c);
  }
  if (built != specs.size()) {
    for (std::size_t i = 0; i < specs.size(); ++i)
      if (waiting[i] != 0) bad(specs[i].ctx, "its inputs form a cycle");
  }
  auto endpoints = [&](const char* key) {
    const Json* v = find(cfg, key);
    if (!v) throw FileError(std::string("model_config: missing ") + key);
    std::vector<Tensor> out;
    for (const auto& r : parse_endpoints(*v, key)) {
      auto it = index.find(r.layer);
      if (it == index.end())
        throw FileError(std::string("model_config: ") + key + " names no layer '" + r.layer + "'");
      if (r.node != 0 || r.tensor != 0)
        throw FileError(std::string("model_config: ") + key + " refers to a second call or output of '" +
                        r.layer + "'");
      out.push_back(outputs[it->second]);
    }
    return out;
  };
  auto ins = endpoints("input_layers");
  auto outs = endpoints("output_layers");
  return make_model(std::move(ins), std::move(outs), model_name(cfg, "model"));
}

Model sequential_from_config(const Json& cfg, std::uint64_t max_weight_bytes) {
  const Json& layers = layers_array(cfg);
  std::vector<LayerSpec> specs;
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    specs.push_back(parse_spec(layers[i], i));
    if (!names.insert(specs.back().ctx.name).second) {
      throw FileError("model_config: two layers are named '" + specs.back().ctx.name + "'");
    }
  }
  if (specs.empty()) throw FileError("model_config: a Sequential model without layers");
  WeightBudget budget{max_weight_bytes, 0, model_dtype(specs)};
  FloatxScope scope(budget.dtype);
  Tensor input, x;
  std::size_t first = 0;
  if (specs[0].ctx.class_name == "InputLayer") {
    input = x = build_checked(specs[0], {}, budget);
    first = 1;
  } else {
    auto shape = input_shape_option(*specs[0].config, specs[0].ctx);
    if (!shape)
      shape = input_shape_option(
          cfg.is_object() ? Json{{"batch_shape", cfg.value("build_input_shape", Json())}} : Json(),
          specs[0].ctx);
    if (!shape)
      bad(specs[0].ctx, "the Sequential model's input shape is unknown (no InputLayer or batch_input_shape)");
    input = x = Input(*shape, {.name = specs[0].ctx.name + "_input"});
  }
  for (std::size_t i = first; i < specs.size(); ++i) {
    if (specs[i].ctx.class_name == "InputLayer") bad(specs[i].ctx, "an InputLayer inside a Sequential model");
    x = build_checked(specs[i], {x}, budget);
  }
  if (first == specs.size()) throw FileError("model_config: a Sequential model without layers");
  Model model = make_model({input}, {x}, model_name(cfg, "sequential"));
  model.set_sequential(true);
  return model;
}

// ---------------------------------------------------------------- writing helpers

// tf.keras 2.6 get_config of one layer.
Json layer_config_json(const Layer& layer, const Shape& output_shape) {
  const layers::LayerEntry* entry = layers::find_layer(layer.class_name());
  if (!entry || !entry->to_config)
    throw FileError("model_config: cannot save layer class '" + layer.class_name() + "' (layer '" +
                    layer.name() + "')");
  return entry->to_config(layer, output_shape);
}

Json endpoint_json(const Tensor& t) {
  return Json::array({t.node()->layer->name(), t.node()->node_index, t.output_index()});
}

// ---------------------------------------------------------------- training config

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string loss_name(const Json& v) {
  const LayerCtx ctx{"training_config", "loss"};
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() && v.size() == 1) return loss_name(v[0]);
  if (v.is_object() && !find(v, "class_name") && v.size() == 1) return loss_name(v.begin().value());
  if (v.is_object() && find(v, "class_name") && find(v, "class_name")->is_string()) {
    std::string cls = find(v, "class_name")->get<std::string>();
    const Json* cfg = find(v, "config");
    if (cfg) {
      if (bool_option(*cfg, "from_logits", false, ctx)) unsupported(ctx, "from_logits", true, "false");
      const Json* ls = find(*cfg, "label_smoothing");
      if (ls && !ls->is_null() && as_double(*ls, ctx, "label_smoothing") != 0.0)
        unsupported(ctx, "label_smoothing", *ls, "0");
      const Json* axis = find(*cfg, "axis");
      if (axis && !axis->is_null() && *axis != -1) unsupported(ctx, "axis", *axis, "-1");
      const Json* ignore = find(*cfg, "ignore_class");
      if (ignore && !ignore->is_null()) unsupported(ctx, "ignore_class", *ignore, "null");
    }
    if (cls == "CategoricalCrossentropy") return "categorical_crossentropy";
    if (cls == "SparseCategoricalCrossentropy") return "sparse_categorical_crossentropy";
    return cls;
  }
  throw FileError("training_config: unreadable loss " + short_dump(v));
}

void collect_metrics(const Json& v, std::vector<std::string>& out, int depth) {
  if (depth > kMaxJsonDepth) return;
  std::string name;
  if (v.is_string()) {
    name = v.get<std::string>();
  } else if (v.is_object() && find(v, "class_name")) {
    const Json* cfg = find(v, "config");
    const Json* fn = cfg ? find(*cfg, "fn") : nullptr;
    const Json* n = cfg ? find(*cfg, "name") : nullptr;
    const Json* cls = find(v, "class_name");
    if (cls->is_string() && cls->get<std::string>() == "CategoricalAccuracy") name = "accuracy";
    if (cls->is_string() && cls->get<std::string>() == "TopKCategoricalAccuracy")
      name = "top_k_categorical_accuracy";
    if (fn && fn->is_string()) name = fn->get<std::string>();
    if (name.empty() && n && n->is_string()) name = n->get<std::string>();
  } else if (v.is_array() || v.is_object()) {
    for (const auto& item : v) collect_metrics(item, out, depth + 1);
    return;
  }
  if (name == "acc" || name == "categorical_accuracy") name = "accuracy";
  if (name == "top_k_categorical_accuracy") {
    const Json* cfg = v.is_object() ? find(v, "config") : nullptr;
    const Json* k = cfg ? find(*cfg, "k") : nullptr;
    if (k && *k != 5) return;
  }
  if ((name == "accuracy" || name == "top_k_categorical_accuracy") &&
      std::find(out.begin(), out.end(), name) == out.end()) {
    out.push_back(name);
  }
}

std::shared_ptr<Optimizer> optimizer_from_config(const Json& v) {
  const LayerCtx ctx{"training_config", "optimizer_config"};
  if (!v.is_object()) throw FileError("training_config: expected optimizer_config as an object");
  const std::string cls = as_string(require(v, "class_name", ctx), ctx, "class_name");
  const LayerCtx oc{cls, "optimizer"};
  Json empty = Json::object();
  const Json* cfgp = find(v, "config");
  const Json& c = cfgp && cfgp->is_object() ? *cfgp : empty;
  double lr = -1;
  for (const char* key : {"learning_rate", "lr"}) {
    const Json* l = find(c, key);
    if (!l || l->is_null()) continue;
    if (!l->is_number()) unsupported(oc, key, *l, "a constant learning rate (schedules are not read)");
    lr = as_double(*l, oc, key);
    break;
  }
  if (const Json* d = find(c, "decay"); d && !d->is_null() && as_double(*d, oc, "decay") != 0.0)
    unsupported(oc, "decay", *d, "0");
  expect_null(c, oc,
              {"clipnorm", "clipvalue", "global_clipnorm", "ema_overwrite_frequency", "loss_scale_factor",
               "gradient_accumulation_steps"});
  if (bool_option(c, "use_ema", false, oc)) unsupported(oc, "use_ema", true, "false");
  double wd = 0.0;
  if (const Json* w = find(c, "weight_decay"); w && !w->is_null()) wd = as_double(*w, oc, "weight_decay");
  const std::string k = lower(cls);
  try {
    if (k == "adam" || k == "adamw") {
      if (bool_option(c, "amsgrad", false, oc)) unsupported(oc, "amsgrad", true, "false");
      AdamOptions o;
      if (k == "adamw" && !find(c, "weight_decay")) wd = 0.004;
      if (lr > 0) o.learning_rate = lr;
      if (const Json* b = find(c, "beta_1"); b && !b->is_null()) o.beta_1 = as_double(*b, oc, "beta_1");
      if (const Json* b = find(c, "beta_2"); b && !b->is_null()) o.beta_2 = as_double(*b, oc, "beta_2");
      if (const Json* e = find(c, "epsilon"); e && !e->is_null()) o.epsilon = as_double(*e, oc, "epsilon");
      o.weight_decay = wd;
      return std::make_shared<Adam>(o);
    }
    if (k == "sgd") {
      if (wd != 0.0) unsupported(oc, "weight_decay", wd, "null or 0");
      SGDOptions o;
      if (lr > 0) o.learning_rate = lr;
      if (const Json* m = find(c, "momentum"); m && !m->is_null()) o.momentum = as_double(*m, oc, "momentum");
      o.nesterov = bool_option(c, "nesterov", false, oc);
      return std::make_shared<SGD>(o);
    }
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    throw FileError("training_config: " + cls + ": " + e.what());
  }
  throw FileError("training_config: unsupported optimizer '" + cls + "' (reskit reads Adam, AdamW and SGD)");
}

// tf.keras 2.6 Sequential.get_config: the InputLayer first, then each layer's {class_name, config}.
Json sequential_config(const Model& model) {
  Json layers = Json::array();
  for (const auto& layer : model.layers()) {
    layers.push_back({{"class_name", layer->class_name()},
                      {"config", layer_config_json(*layer, model.node_of(*layer).output_shape)}});
  }
  return {{"class_name", "Sequential"}, {"config", {{"name", model.name()}, {"layers", std::move(layers)}}}};
}

}  // namespace

// ---------------------------------------------------------------- public (internal API)

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text, [&](int depth, Json::parse_event_t, Json&) {
      if (depth > kMaxJsonDepth)
        throw FileError(what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      return true;
    });
  } catch (const Json::exception& e) {
    throw FileError(what + ": not valid JSON (" + e.what() + ")");
  }
}

Json model_config(const Model& model) {
  if (model.sequential()) return sequential_config(model);
  const auto& nodes = model.nodes();
  Json layers = Json::array();
  for (const auto& layer : model.layers()) {
    const graph::ModelNode& node = model.node_of(*layer);
    Json entry = {{"class_name", layer->class_name()},
                  {"config", layer_config_json(*layer, node.output_shape)},
                  {"name", layer->name()}};
    Json inbound = Json::array();
    if (!node.inputs.empty()) {
      Json call = Json::array();
      for (const int in : node.inputs) {
        call.push_back(Json::array({nodes[in].layer->name(), nodes[in].node_index, 0, Json::object()}));
      }
      inbound.push_back(std::move(call));
    }
    entry["inbound_nodes"] = std::move(inbound);
    layers.push_back(std::move(entry));
  }
  Json ins = Json::array(), outs = Json::array();
  for (const auto& t : model.inputs()) ins.push_back(endpoint_json(t));
  for (const auto& t : model.outputs()) outs.push_back(endpoint_json(t));
  return {{"class_name", "Functional"},
          {"config",
           {{"name", model.name()},
            {"layers", std::move(layers)},
            {"input_layers", std::move(ins)},
            {"output_layers", std::move(outs)}}}};
}

Model model_from_config(const Json& raw, std::uint64_t max_weight_bytes) {
  try {
    const Json root = normalize_model_config(raw);
    if (!root.is_object()) throw FileError("model_config: expected a JSON object");
    const Json* cls = find(root, "class_name");
    const Json* cfg = find(root, "config");
    if (!cls || !cls->is_string() || !cfg)
      throw FileError("model_config: expected {\"class_name\", \"config\"}");
    const std::string k = cls->get<std::string>();
    if (k == "Functional") return functional_from_config(*cfg, max_weight_bytes);
    if (k == "Sequential") return sequential_from_config(*cfg, max_weight_bytes);
    throw FileError("model_config: unsupported model class '" + k +
                    "' (reskit reads Functional, Model and Sequential)");
  } catch (const Json::exception& e) {
    throw FileError(std::string("model_config: unexpected structure (") + e.what() + ")");
  }
}

Json training_config(Model& model) {
  Optimizer& opt = model.optimizer();
  Json oc;
  if (auto* adam = dynamic_cast<Adam*>(&opt)) {
    const auto& o = adam->options();
    if (o.weight_decay > 0.0) {
      oc = {{"class_name", "AdamW"},
            {"config",
             {{"name", "AdamW"},
              {"weight_decay", o.weight_decay},
              {"clipnorm", nullptr},
              {"global_clipnorm", nullptr},
              {"clipvalue", nullptr},
              {"use_ema", false},
              {"ema_momentum", 0.99},
              {"ema_overwrite_frequency", nullptr},
              {"jit_compile", false},
              {"is_legacy_optimizer", false},
              {"learning_rate", opt.learning_rate()},
              {"beta_1", o.beta_1},
              {"beta_2", o.beta_2},
              {"epsilon", o.epsilon},
              {"amsgrad", false}}}};
    } else {
      oc = {{"class_name", "Adam"},
            {"config",
             {{"name", "Adam"},
              {"learning_rate", opt.learning_rate()},
              {"decay", 0.0},
              {"beta_1", o.beta_1},
              {"beta_2", o.beta_2},
              {"epsilon", o.epsilon},
              {"amsgrad", false}}}};
    }
  } else if (auto* sgd = dynamic_cast<SGD*>(&opt)) {
    const auto& o = sgd->options();
    oc = {{"class_name", "SGD"},
          {"config",
           {{"name", "SGD"},
            {"learning_rate", opt.learning_rate()},
            {"decay", 0.0},
            {"momentum", o.momentum},
            {"nesterov", o.nesterov}}}};
  } else {
    throw FileError("training_config: cannot save optimizer '" + opt.name() +
                    "'; save with include_optimizer = false");
  }
  Json metrics = Json::array();
  for (const auto& m : model.metrics()) metrics.push_back(m);
  return {{"loss", model.loss().name()},
          {"metrics", std::move(metrics)},
          {"weighted_metrics", nullptr},
          {"loss_weights", nullptr},
          {"optimizer_config", std::move(oc)}};
}

TrainingSetup training_from_config(const Json& raw) {
  try {
    const Json config = normalize_training_config(raw);
    if (!config.is_object()) throw FileError("training_config: expected a JSON object");
    TrainingSetup setup;
    const Json* loss = find(config, "loss");
    if (!loss || loss->is_null()) throw FileError("training_config: missing loss");
    const std::string name = loss_name(*loss);
    try {
      setup.loss = make_loss(name);
    } catch (const Error&) {
      throw FileError("training_config: unsupported loss '" + name +
                      "' (reskit reads categorical_crossentropy and sparse_categorical_crossentropy)");
    }
    if (const Json* m = find(config, "metrics")) collect_metrics(*m, setup.metrics, 0);
    const Json* oc = find(config, "optimizer_config");
    if (!oc) throw FileError("training_config: missing optimizer_config");
    setup.optimizer = optimizer_from_config(*oc);
    return setup;
  } catch (const Json::exception& e) {
    throw FileError(std::string("training_config: unexpected structure (") + e.what() + ")");
  }
}

}  // namespace reskit::io

namespace reskit {
std::vector<std::string> keras_layer_classes() { return layers::readable_classes(); }
}  // namespace reskit
