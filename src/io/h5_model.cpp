// Keras 2.x .h5 model and weight files: save_model, load_model, save_weights, load_weights.
//
// Layout (tf.keras 2.6, keras/saving/hdf5_format.py): root attributes keras_version, backend,
// model_config, training_config; group model_weights with layer_names, backend, keras_version and
// one group per layer (weight_names + datasets nested by the "/" in each weight name); group
// optimizer_weights with weight_names [Adam/iter:0, Adam/<param>/m:0..., Adam/<param>/v:0...].
// Weights are matched by the order of layer_names and weight_names, never by group iteration.
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <fstream>
#include <map>

#include "hdf5/api.h"
#include "hdf5/check.h"
#include "io/keras_config.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "util/atomic_file.h"

namespace reskit {

using hdf5::Hid;
using io::Json;

namespace {

constexpr std::array<unsigned char, 8> kHdf5Signature{0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// Opens a Keras .h5 file for reading: a regular, non-empty file carrying the HDF5 signature, whose
// variable-length string attributes (model_config) and groups pass hdf5/check.h's checks.
Hid open_model_file(const std::string& path) {
  const std::string context = "'" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw FileError(context + ": no such file");
  if (!S_ISREG(st.st_mode)) throw FileError(context + ": not a regular file");
  if (st.st_size == 0) throw FileError(context + ": empty file, expected an HDF5 (.h5) file");
  // The superblock signature sits at 0, 512, 1024, 2048, ... (after an optional user block).
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(context + ": cannot open for reading");
  bool found = false;
  for (std::int64_t offset = 0; offset + 8 <= st.st_size && !found; offset = offset == 0 ? 512 : offset * 2) {
    std::array<unsigned char, 8> head{};
    in.seekg(offset);
    in.read(reinterpret_cast<char*>(head.data()), head.size());
    if (!in) break;
    found = head == kHdf5Signature;
  }
  if (!found) throw FileError(context + ": not an HDF5 file (no HDF5 signature; expected a Keras .h5 file)");
  hdf5::check_vlen_attributes(path, context);
  return hdf5::open_file_read(path, context);
}

std::string strip_colon0(const std::string& name) {
  return name.size() > 2 && name.compare(name.size() - 2, 2, ":0") == 0 ? name.substr(0, name.size() - 2)
                                                                        : name;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// What a file may make us allocate for weights: uncompressed weights never exceed the file, and
// a generous factor covers compressed datasets.
std::uint64_t weight_budget(const std::string& path) {
  return 16 * file_size(path) + (std::uint64_t{64} << 20);
}

// ---------------------------------------------------------------- writing

void write_weights(hid_t group, const Model& model, const std::string& context) {
  std::vector<std::string> names;
  for (const auto& l : model.layers()) names.push_back(l->name());
  hdf5::write_name_list_attr(group, "layer_names", names, context);
  hdf5::write_vlen_string_attr(group, "backend", io::kBackend, context);
  hdf5::write_vlen_string_attr(group, "keras_version", io::kKerasVersion, context);
  std::vector<const Layer*> sorted;
  for (const auto& l : model.layers()) sorted.push_back(l.get());
  std::sort(sorted.begin(), sorted.end(),
            [](const Layer* a, const Layer* b) { return a->name() < b->name(); });
  for (const Layer* layer : sorted) {
    const std::string where = context + ": layer '" + layer->name() + "'";
    Hid g = hdf5::create_group(group, layer->name(), where);
    std::vector<std::string> weight_names;
    for (const auto& p : layer->params()) weight_names.push_back(p.name);
    hdf5::write_name_list_attr(g.get(), "weight_names", weight_names, where);
    for (const auto& p : layer->params()) hdf5::write_dataset(g.get(), p.name, p.value, where);
  }
}

// The optimizer's state in Keras's order: iterations, then every trainable parameter's first
// slot, then every second slot. Missing slots (no step taken yet) are zeros, which is what the
// optimizer would create.
void write_optimizer_weights(hid_t file, Model& model, const std::string& context) {
  Optimizer& opt = model.optimizer();
  auto params = model.trainable_parameters();
  const std::string prefix = opt.name();
  std::vector<std::string> names{prefix + "/iter:0"};
  std::vector<Tensor> values;
  auto add_slot = [&](const Param& p, const char* slot, const std::map<std::string, Tensor>& have) {
    names.push_back(prefix + "/" + strip_colon0(p.name) + "/" + slot + ":0");
    auto it = have.find(p.name);
    values.push_back(it != have.end() ? it->second : Tensor(p.value.shape(), p.value.dtype()));
  };
  if (auto* adam = dynamic_cast<Adam*>(&opt)) {
    std::map<std::string, Tensor> m, v;
    for (auto& [name, s] : adam->slots()) m[name] = s.m, v[name] = s.v;
    for (const Param* p : params) add_slot(*p, "m", m);
    for (const Param* p : params) add_slot(*p, "v", v);
  } else if (auto* sgd = dynamic_cast<SGD*>(&opt)) {
    if (sgd->options().momentum != 0.0) {
      for (const Param* p : params) add_slot(*p, "momentum", sgd->velocities());
    }
  } else {
    throw FileError(context + ": cannot save the state of optimizer '" + opt.name() + "'");
  }
  Hid g = hdf5::create_group(file, "optimizer_weights", context);
  hdf5::write_name_list_attr(g.get(), "weight_names", names, context);
  hdf5::write_scalar_int(g.get(), names[0], opt.iterations(), context);
  for (std::size_t i = 0; i < values.size(); ++i)
    hdf5::write_dataset(g.get(), names[i + 1], values[i], context);
}

// ---------------------------------------------------------------- reading weights

struct FileLayer {
  std::string name;
  std::vector<std::string> weight_names;
};

// The group holding layer_names: the root of a save_weights file, or model_weights.
Hid weights_root(hid_t file, const std::string& context) {
  if (hdf5::has_attr(file, "layer_names") || hdf5::has_attr(file, "layer_names0"))
    return Hid(H5Oopen(file, "/", H5P_DEFAULT));
  if (hdf5::exists(file, "model_weights")) return hdf5::open_group(file, "model_weights", context);
  throw FileError(context + ": no weights (neither a model_weights group nor a layer_names attribute)");
}

std::vector<FileLayer> read_layer_list(hid_t root, const std::string& context) {
  auto names = hdf5::read_string_list_attr(root, "layer_names", context);
  if (!names) throw FileError(context + ": missing the layer_names attribute");
  std::vector<FileLayer> layers;
  for (const auto& name : *names) {
    const std::string where = context + ": layer '" + name + "'";
    Hid g = hdf5::open_group(root, name, where);
    auto weights = hdf5::read_string_list_attr(g.get(), "weight_names", where);
    if (!weights) throw FileError(where + ": missing the weight_names attribute");
    layers.push_back({name, std::move(*weights)});
  }
  return layers;
}

// Reads one file layer's weights into fresh tensors shaped like the model layer's parameters.
std::vector<Tensor> read_layer_weights(hid_t root, const FileLayer& fl, Layer& layer,
                                       const std::string& context) {
  const std::string where = context + ": layer '" + fl.name + "'";
  auto& params = layer.params();
  if (fl.weight_names.size() != params.size()) {
    throw FileError(where + ": " + std::to_string(fl.weight_names.size()) + " weights in the file, but " +
                    layer.where() + " has " + std::to_string(params.size()));
  }
  Hid g = hdf5::open_group(root, fl.name, where);
  std::vector<Tensor> values;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string wwhere = where + ", weight '" + fl.weight_names[i] + "' (for " + params[i].name + ")";
    Hid d = hdf5::open_dataset(g.get(), fl.weight_names[i], wwhere);
    Tensor t(params[i].value.shape(), params[i].value.dtype());
    hdf5::read_dataset_into(d.get(), t, wwhere);
    values.push_back(std::move(t));
  }
  return values;
}

// by_name with require_all: the model's layers with weights in model order, each with the file's
// layer of its name; FileError naming the first one the file lacks.
std::vector<std::pair<const FileLayer*, Layer*>> pairs_for_every_layer(
    const std::vector<FileLayer>& file_layers, Model& model, const std::string& context) {
  std::map<std::string, const FileLayer*> by;
  for (const auto& fl : file_layers) by[fl.name] = &fl;
  std::vector<std::pair<const FileLayer*, Layer*>> pairs;
  for (const auto& l : model.layers()) {
    if (l->params().empty()) continue;
    auto it = by.find(l->name());
    if (it == by.end() || it->second->weight_names.empty()) {
      throw FileError(context + ": does not fit model '" + model.name() +
                      "': the file has no weights for layer '" + l->name() + "' (" + l->class_name() +
                      ", first weight '" + l->params()[0].name + "', shape " +
                      shape_str(l->params()[0].value.shape()) + ")");
    }
    pairs.emplace_back(it->second, l.get());
  }
  return pairs;
}

struct Assignment {
  Param* param;
  Tensor value;
  std::string file_name;  // the weight's name in the file
};

// Matches the file's layers to the model's and reads every weight; nothing is changed yet.
std::vector<Assignment> read_weights(hid_t root, Model& model, bool by_name, const std::string& context,
                                     bool require_all = false) {
  auto file_layers = read_layer_list(root, context);
  std::vector<std::pair<const FileLayer*, Layer*>> pairs;
  if (by_name && require_all) {
    pairs = pairs_for_every_layer(file_layers, model, context);
  } else if (by_name) {
    std::map<std::string, Layer*> by;
    for (const auto& l : model.layers()) by[l->name()] = l.get();
    for (const auto& fl : file_layers) {
      auto it = by.find(fl.name);
      if (it != by.end() && !(fl.weight_names.empty() && it->second->params().empty()))
        pairs.emplace_back(&fl, it->second);
    }
  } else {
    std::vector<const FileLayer*> with_file;
    std::vector<Layer*> with_model;
    for (const auto& fl : file_layers)
      if (!fl.weight_names.empty()) with_file.push_back(&fl);
    for (const auto& l : model.layers())
      if (!l->params().empty()) with_model.push_back(l.get());
    if (with_file.size() != with_model.size()) {
      throw FileError(context + ": the file holds weights for " + std::to_string(with_file.size()) +
                      " layers, but model '" + model.name() + "' has " + std::to_string(with_model.size()) +
                      " layers with weights");
    }
    for (std::size_t i = 0; i < with_file.size(); ++i) pairs.emplace_back(with_file[i], with_model[i]);
  }
  std::vector<Assignment> out;
  for (auto [fl, layer] : pairs) {
    auto values = read_layer_weights(root, *fl, *layer, context);
    for (std::size_t i = 0; i < values.size(); ++i) {
      out.push_back({&layer->params()[i], std::move(values[i]), fl->weight_names[i]});
    }
  }
  return out;
}

void assign(const std::vector<Assignment>& weights) {
  for (const auto& a : weights) {
    std::memcpy(a.param->value.raw_data(), a.value.raw_data(),
                static_cast<std::size_t>(a.value.numel()) * dtype_size(a.value.dtype()));
  }
}

// ---------------------------------------------------------------- reading optimizer state

enum class Slot { none, first, second };

// Maps Keras optimizer weight names of several versions to (parameter, slot):
//   tf.keras 2.x   Adam/conv1/kernel/m:0, SGD/conv1/kernel/momentum:0, Adam/iter:0
//   tf.keras 2.11+ Adam/m/conv1/kernel:0, iteration:0
//   Keras 3        adam/conv1_kernel_momentum, adam/conv1_kernel_velocity, adam/iteration
struct SlotRef {
  bool iterations = false;
  int param = -1;
  Slot slot = Slot::none;
};

Slot slot_kind(const std::string& s) {
  if (s == "m" || s == "momentum") return Slot::first;
  if (s == "v" || s == "velocity") return Slot::second;
  return Slot::none;
}

SlotRef classify(const std::string& raw, const std::map<std::string, int>& keys,
                 const std::map<std::string, int>& flat_keys) {
  SlotRef r;
  const std::string name = strip_colon0(raw);
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    std::size_t end = name.find('/', start);
    parts.push_back(name.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  const std::string& last = parts.back();
  if (last == "iter" || last == "iterations" || last == "iteration") {
    r.iterations = true;
    return r;
  }
  auto join = [&](std::size_t from, std::size_t to) {
    std::string s;
    for (std::size_t i = from; i < to; ++i) s += (i > from ? "/" : "") + parts[i];
    return s;
  };
  auto try_key = [&](const std::string& key, Slot slot) {
    auto it = keys.find(key);
    if (it == keys.end() || slot == Slot::none) return false;
    r.param = it->second;
    r.slot = slot;
    return true;
  };
  const std::size_t n = parts.size();
  // <opt>/<param path>/<slot> or <param path>/<slot>
  if (n >= 2 && (try_key(join(1, n - 1), slot_kind(last)) || try_key(join(0, n - 1), slot_kind(last))))
    return r;
  // <opt>/<slot>/<param path> or <slot>/<param path>
  if (n >= 3 && try_key(join(2, n), slot_kind(parts[1]))) return r;
  if (n >= 2 && try_key(join(1, n), slot_kind(parts[0]))) return r;
  // Keras 3: <opt>/<param path with _ for />_<momentum|velocity>
  for (const char* suffix : {"_momentum", "_velocity"}) {
    const std::string sfx(suffix);
    if (last.size() > sfx.size() && last.compare(last.size() - sfx.size(), sfx.size(), sfx) == 0) {
      auto it = flat_keys.find(last.substr(0, last.size() - sfx.size()));
      if (it != flat_keys.end()) {
        r.param = it->second;
        r.slot = slot_kind(sfx.substr(1));
        return r;
      }
    }
  }
  return r;
}

// Restores iterations and the slots of the weights that train now, by weight name. A weight
// that trains now but has no slots in the file (it was frozen when the file was saved) starts
// with fresh ones, and the file's slots of weights that no longer train are left out, as Keras
// restores a checkpoint's slot variables by name. When no slot maps by name (Keras 2.2's
// positional names), all of them must map by position. Otherwise the fresh optimizer is left alone
// (Keras: "a file whose optimizer state cannot be mapped still loads its model") and restored is false.
OptimizerRestore restore_optimizer(hid_t file, Model& model, const std::vector<Assignment>& loaded,
                                   const std::string& context) {
  OptimizerRestore none;
  if (!hdf5::exists(file, "optimizer_weights")) return none;
  Hid g = hdf5::open_group(file, "optimizer_weights", context);
  auto names = hdf5::read_string_list_attr(g.get(), "weight_names", context + ": optimizer_weights");
  if (!names || names->empty()) return none;
  Optimizer& opt = model.optimizer();
  auto params = model.trainable_parameters();
  std::map<std::string, int> keys, flat_keys;
  for (std::size_t i = 0; i < params.size(); ++i) {
    keys[strip_colon0(params[i]->name)] = static_cast<int>(i);
  }
  for (const auto& a : loaded) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (a.param == params[i]) keys.emplace(strip_colon0(a.file_name), static_cast<int>(i));
    }
  }
  for (const auto& [key, i] : keys) {
    std::string flat = key;
    for (auto& ch : flat) ch = ch == '/' ? '_' : ch;
    flat_keys.emplace(flat, i);
  }
  auto* adam = dynamic_cast<Adam*>(&opt);
  auto* sgd = dynamic_cast<SGD*>(&opt);
  const bool needs_second = adam != nullptr;
  const bool needs_first = adam != nullptr || (sgd && sgd->options().momentum != 0.0);
  std::vector<Tensor> first(params.size()), second(params.size());
  std::optional<std::int64_t> iterations;
  std::int64_t unmapped = 0;  // slot names of no weight that trains now
  auto read_slot = [&](const std::string& name, int p) {
    const std::string where = context + ": optimizer weight '" + name + "'";
    Hid d = hdf5::open_dataset(g.get(), name, where);
    Tensor t(params[p]->value.shape(), params[p]->value.dtype());
    hdf5::read_dataset_into(d.get(), t, where);
    return t;
  };
  try {
    bool by_name = true;
    for (const auto& name : *names) {
      SlotRef r = classify(name, keys, flat_keys);
      if (r.iterations) {
        Hid d = hdf5::open_dataset(g.get(), name, context + ": optimizer weight '" + name + "'");
        iterations = hdf5::read_scalar_int(d.get(), context + ": optimizer weight '" + name + "'");
      } else if (r.param >= 0) {
        (r.slot == Slot::first ? first : second)[r.param] = read_slot(name, r.param);
      } else {
        ++unmapped;
      }
    }
    auto has_slots = [&](std::size_t i) {
      return (!needs_first || first[i].defined()) && (!needs_second || second[i].defined());
    };
    std::size_t mapped = 0;
    for (std::size_t i = 0; i < params.size(); ++i) mapped += has_slots(i);
    if (mapped < params.size() && mapped > 0 && iterations) {
      // Another set of weights trained when the file was saved: by name, fresh slots for the rest.
      OptimizerRestore partial{.restored = true, .unused_slots = unmapped};
      opt.set_iterations(*iterations);
      for (std::size_t i = 0; i < params.size(); ++i) {
        if (!has_slots(i)) {
          partial.fresh.push_back(params[i]->name);
          if (adam) adam->slots().erase(params[i]->name);
          if (sgd) sgd->velocities().erase(params[i]->name);
        } else {
          if (adam) adam->slots()[params[i]->name] = Adam::Slots{first[i], second[i]};
          if (sgd && needs_first) sgd->velocities()[params[i]->name] = first[i];
        }
      }
      return partial;
    }
    if (mapped < params.size()) by_name = false;
    // Keras 2.2 names slots training/Adam/Variable_<k>:0: [iterations, m..., v..., (vhat...)] in order.
    const std::size_t np = params.size(), count = names->size();
    if (!by_name && needs_first &&
        (count == 1 + np * (needs_second ? 2 : 1) || (needs_second && count == 1 + 3 * np))) {
      Hid d = hdf5::open_dataset(g.get(), (*names)[0], context + ": optimizer weight '" + (*names)[0] + "'");
      iterations = hdf5::read_scalar_int(d.get(), context + ": optimizer weight '" + (*names)[0] + "'");
      for (std::size_t i = 0; i < np; ++i) {
        first[i] = read_slot((*names)[1 + i], static_cast<int>(i));
        if (needs_second) second[i] = read_slot((*names)[1 + np + i], static_cast<int>(i));
      }
      by_name = true;
    }
    if (!by_name || !iterations) return none;
  } catch (const FileError&) {
    return none;
  }
  opt.set_iterations(*iterations);
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (adam) adam->slots()[params[i]->name] = Adam::Slots{first[i], second[i]};
    if (sgd && needs_first) sgd->velocities()[params[i]->name] = first[i];
  }
  return {.restored = true, .unused_slots = unmapped};
}

std::string context_of(const std::string& path) { return "'" + path + "'"; }

}  // namespace

// ---------------------------------------------------------------- public API

std::string model_to_json(const Model& model) { return io::model_config(model).dump(); }

Model model_from_json(const std::string& json) {
  try {
    return io::model_from_config(io::parse_json(json, "model JSON"), std::uint64_t{4} << 30);
  } catch (const FileError& e) {
    throw ConfigError(e.what());
  }
}

void save_model(Model& model, const std::string& path, SaveModelOptions options) {
  const std::string context = context_of(path);
  // Everything that can fail on the model's side is computed before the file is touched.
  const std::string config = io::model_config(model).dump();
  const bool with_training = options.include_optimizer && model.compiled();
  const std::string training = with_training ? io::training_config(model).dump() : std::string();
  util::write_atomically(path, [&](const std::string& temp) {
    hdf5::Session session;
    Hid file = hdf5::create_file(temp);
    hdf5::write_vlen_string_attr(file.get(), "keras_version", io::kKerasVersion, context);
    hdf5::write_vlen_string_attr(file.get(), "backend", io::kBackend, context);
    hdf5::write_vlen_string_attr(file.get(), "model_config", config, context);
    if (with_training) hdf5::write_vlen_string_attr(file.get(), "training_config", training, context);
    // reskit's own addition (Keras ignores unknown root attributes): the output classes' names.
    if (!model.class_names().empty()) {
      hdf5::write_name_list_attr(file.get(), "class_names", model.class_names(), context);
    }
    {
      Hid weights = hdf5::create_group(file.get(), "model_weights", context);
      write_weights(weights.get(), model, context);
    }
    if (with_training) write_optimizer_weights(file.get(), model, context);
    hdf5::close_file(file, temp);
  });
}

Model load_model(const std::string& path, LoadModelOptions options) {
  const std::string context = context_of(path);
  hdf5::Session session;
  Hid file = open_model_file(path);
  auto version = hdf5::read_string_attr(file.get(), "keras_version", context);
  if (version && !version->empty() && (*version)[0] == '1') {
    throw FileError(context + ": written by Keras " + *version + "; reskit reads files of Keras 2.x and 3.x");
  }
  auto backend = hdf5::read_string_attr(file.get(), "backend", context);
  if (backend && *backend == "theano") {
    throw FileError(context + ": written with the theano backend (flipped kernels); not supported");
  }
  auto config_text = hdf5::read_string_attr(file.get(), "model_config", context);
  if (!config_text) {
    throw FileError(context + ": no model_config attribute (a weights-only file? use load_weights)");
  }
  Model model = [&] {
    try {
      return io::model_from_config(io::parse_json(*config_text, "model_config"), weight_budget(path));
    } catch (const FileError& e) {
      throw FileError(context + ": " + e.what());
    }
  }();
  Hid root = weights_root(file.get(), context);
  auto loaded = read_weights(root.get(), model, false, context);
  assign(loaded);
  if (auto classes = hdf5::read_string_list_attr(file.get(), "class_names", context);
      classes && !classes->empty()) {
    try {
      model.set_class_names(std::move(*classes));
    } catch (const Error& e) {
      throw FileError(context + ": class_names: " + e.what());
    }
  }
  if (!options.compile) return model;
  auto training_text = hdf5::read_string_attr(file.get(), "training_config", context);
  if (!training_text) return model;
  try {
    io::TrainingSetup setup = io::training_from_config(io::parse_json(*training_text, "training_config"));
    model.compile(setup.optimizer, setup.loss, setup.metrics);
  } catch (const FileError& e) {
    throw FileError(context + ": " + e.what() + "; load with compile = false to skip it");
  }
  restore_optimizer(file.get(), model, loaded, context);
  return model;
}

void save_weights(const Model& model, const std::string& path) {
  const std::string context = context_of(path);
  util::write_atomically(path, [&](const std::string& temp) {
    hdf5::Session session;
    Hid file = hdf5::create_file(temp);
    write_weights(file.get(), model, context);
    hdf5::close_file(file, temp);
  });
}

void load_weights(Model& model, const std::string& path, LoadWeightsOptions options) {
  const std::string context = context_of(path);
  hdf5::Session session;
  Hid file = open_model_file(path);
  Hid root = weights_root(file.get(), context);
  assign(read_weights(root.get(), model, options.by_name, context, options.require_all));
}

OptimizerRestore load_training_state(Model& model, const std::string& path) {
  const std::string context = context_of(path);
  if (!model.compiled()) {
    throw Error(context + ": cannot restore a training state into model '" + model.name() +
                "': it is not compiled");
  }
  hdf5::Session session;
  Hid file = open_model_file(path);
  Hid root = weights_root(file.get(), context);
  auto loaded = read_weights(root.get(), model, false, context);
  OptimizerRestore restored = restore_optimizer(file.get(), model, loaded, context);
  if (!restored.restored) {
    throw FileError(context + ": has no state of optimizer '" + model.optimizer().name() +
                    "' to resume from");
  }
  assign(loaded);
  return restored;
}

}  // namespace reskit
