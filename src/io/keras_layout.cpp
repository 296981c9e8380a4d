// Keras config layouts of tf.keras 2.x, Keras 2.0–2.2 and Keras 3, normalized to tf.keras 2.6's.
// Facts from keras-team/keras: keras/src/legacy/saving/legacy_h5_format.py and saving_utils.py
// (Keras 3 writes layers through the legacy serializer, so entries are {"class_name", "config",
// "name", "inbound_nodes"}, while the objects inside a config keep "module"/"registered_name"),
// keras/src/models/functional.py (serialize_node: {"args", "kwargs"}), keras/src/models/
// sequential.py (the InputLayer among the layers, "build_input_shape"), keras/src/saving/
// serialization_lib.py ("__keras_tensor__" with "keras_history"), and Keras 3's loader, which
// turns a one-element axis list into an integer for every layer.
#include "io/keras_layout.h"

#include <string>
#include <vector>

#include "reskit/error.h"

namespace reskit::io {

namespace {

using keras::Json;
using keras::LayerCtx;

constexpr int kMaxDepth = 64;

// Removes what Keras 3 (and tf.keras's passive serialization) add around serialized objects.
void strip_wrappers(Json& v, int depth, const char* what) {
  if (depth > kMaxDepth) throw FileError(std::string(what) + ": JSON nested too deeply");
  if (v.is_object()) {
    if (v.contains("class_name")) {
      for (const char* key : {"build_config", "compile_config", "__passive_serialization__"}) v.erase(key);
      // Keras's own objects only: a custom one (another module, or a registered name of its own)
      // keeps its wrapper, so that the reader of the key it sits under refuses it by name.
      const Json* module = keras::find(v, "module");
      const Json* registered = keras::find(v, "registered_name");
      const bool keras_module = !module || module->is_null() ||
                                (module->is_string() && module->get<std::string>().rfind("keras", 0) == 0);
      const bool keras_name = !registered || registered->is_null() || *registered == v["class_name"];
      if (keras_module && keras_name) {
        v.erase("module");
        v.erase("registered_name");
      }
    }
    for (auto& [key, item] : v.items()) strip_wrappers(item, depth + 1, what);
  } else if (v.is_array()) {
    for (auto& item : v) strip_wrappers(item, depth + 1, what);
  }
}

bool is_policy(const Json& v) {
  const Json* cls = keras::find(v, "class_name");
  return cls && cls->is_string() && cls->get<std::string>().find("Policy") != std::string::npos;
}

// One layer's config: dtype policies to names, batch_shape, one-element axes.
void normalize_layer_config(Json& c, const std::string& class_name) {
  if (!c.is_object()) return;
  if (Json* dtype = c.contains("dtype") ? &c["dtype"] : nullptr;
      dtype && dtype->is_object() && is_policy(*dtype)) {
    const Json* cfg = keras::find(*dtype, "config");
    const Json* name = cfg ? keras::find(*cfg, "name") : nullptr;
    if (name && name->is_string()) *dtype = *name;
  }
  if (class_name == "InputLayer" && c.contains("batch_shape")) {
    if (!c.contains("batch_input_shape")) c["batch_input_shape"] = c["batch_shape"];
    c.erase("batch_shape");
  }
  if (Json* axis = c.contains("axis") ? &c["axis"] : nullptr;
      axis && axis->is_array() && axis->size() == 1 && (*axis)[0].is_number_integer()) {
    *axis = Json((*axis)[0]);
  }
}

// Keras 3: the keras tensors of a node's args, in order (nested lists as Add's [[a, b]]).
void collect_tensors(const Json& v, std::vector<Json>& out, int depth, const LayerCtx& l) {
  if (depth > kMaxDepth) keras::bad(l, "inbound_nodes nested too deeply");
  if (v.is_array()) {
    for (const auto& item : v) collect_tensors(item, out, depth + 1, l);
    return;
  }
  if (v.is_null()) return;
  const Json* cls = keras::find(v, "class_name");
  if (!cls || *cls != "__keras_tensor__") {
    keras::bad(l, "unsupported call argument " + keras::short_dump(v) + " in inbound_nodes");
  }
  const Json* cfg = keras::find(v, "config");
  const Json* hist = cfg ? keras::find(*cfg, "keras_history") : nullptr;
  if (!hist || !hist->is_array()) keras::bad(l, "a keras tensor in inbound_nodes lacks keras_history");
  out.push_back(*hist);
}

bool holds_tensor(const Json& v, int depth) {
  if (depth > kMaxDepth) return false;
  if (v.is_object()) {
    const Json* cls = keras::find(v, "class_name");
    if (cls && *cls == "__keras_tensor__") return true;
  }
  if (v.is_object() || v.is_array()) {
    for (const auto& item : v)
      if (holds_tensor(item, depth + 1)) return true;
  }
  return false;
}

// [{"args": [...], "kwargs": {...}}, ...] -> [[[layer, node, tensor, kwargs], ...], ...]
void normalize_inbound(Json& nodes, const LayerCtx& l) {
  if (!nodes.is_array()) return;
  for (auto& node : nodes) {
    if (!node.is_object()) continue;  // tf.keras 2.x form already
    std::vector<Json> tensors;
    if (const Json* args = keras::find(node, "args")) collect_tensors(*args, tensors, 0, l);
    Json kwargs = Json::object();
    if (const Json* kw = keras::find(node, "kwargs"); kw && kw->is_object()) {
      for (const auto& [key, value] : kw->items()) {
        if (holds_tensor(value, 0)) keras::bad(l, "tensors passed as keyword arguments are not supported");
        kwargs[key] = value;
      }
    }
    Json call = Json::array();
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      Json entry = tensors[i];
      if (entry.size() == 3) entry.push_back(i == 0 ? kwargs : Json::object());
      call.push_back(std::move(entry));
    }
    node = std::move(call);
  }
}

// One triple, or a dict of name -> triple, as a list of triples.
void normalize_endpoints(Json& cfg, const char* key) {
  if (!cfg.contains(key)) return;
  Json& v = cfg[key];
  if (v.is_array() && !v.empty() && v[0].is_string()) {
    v = Json::array({v});
  } else if (v.is_object()) {
    Json list = Json::array();
    for (auto& [name, item] : v.items()) list.push_back(item);
    v = std::move(list);
  }
}

void normalize_layers(Json& layers) {
  if (!layers.is_array()) return;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    Json& entry = layers[i];
    if (!entry.is_object()) continue;
    const Json* cls = keras::find(entry, "class_name");
    const std::string class_name = cls && cls->is_string() ? cls->get<std::string>() : "";
    if (entry.contains("config")) normalize_layer_config(entry["config"], class_name);
    const Json* name = keras::find(entry, "name");
    if (!name || !name->is_string()) {
      const Json* cfg = keras::find(entry, "config");
      name = cfg ? keras::find(*cfg, "name") : nullptr;
    }
    const LayerCtx ctx{class_name.empty() ? "layer" : class_name,
                       name && name->is_string() ? name->get<std::string>() : "#" + std::to_string(i)};
    if (entry.contains("inbound_nodes")) normalize_inbound(entry["inbound_nodes"], ctx);
  }
}

}  // namespace

Json normalize_model_config(const Json& root) {
  Json out = root;
  strip_wrappers(out, 0, "model_config");
  if (!out.is_object()) return out;
  if (out.contains("class_name") && out["class_name"] == "Model") out["class_name"] = "Functional";
  if (!out.contains("config")) return out;
  Json& cfg = out["config"];
  if (cfg.is_array()) cfg = Json{{"name", "sequential"}, {"layers", cfg}};
  if (!cfg.is_object()) return out;
  if (cfg.contains("layers")) normalize_layers(cfg["layers"]);
  normalize_endpoints(cfg, "input_layers");
  normalize_endpoints(cfg, "output_layers");
  return out;
}

Json normalize_training_config(const Json& config) {
  Json out = config;
  strip_wrappers(out, 0, "training_config");
  if (!out.is_object() || !out.contains("optimizer_config")) return out;
  Json& oc = out["optimizer_config"];
  if (oc.is_object() && oc.contains("class_name") && oc["class_name"].is_string()) {
    std::string cls = oc["class_name"].get<std::string>();
    const std::string custom = "Custom>";
    if (cls.rfind(custom, 0) == 0) oc["class_name"] = cls.substr(custom.size());
  }
  return out;
}

}  // namespace reskit::io
