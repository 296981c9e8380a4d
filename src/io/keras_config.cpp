// Keras JSON configs: Model <-> model_config, compile state <-> training_config.
//
// Writing follows tf.keras 2.6 (Functional get_config, each layer's get_config with Keras's keys
// and defaults). Reading accepts tf.keras 2.x and Keras 3 legacy .h5 configs: inbound nodes as
// [[name, node, tensor, kwargs], ...] or {"args": [keras tensors with keras_history]},
// input_layers/output_layers as lists of triples, a single triple or a dict, dtypes as strings or
// policy dicts, BatchNormalization axis as [3], 3, -1 or [-1].
#include "io/keras_config.h"

#include <cmath>
#include <deque>
#include <map>
#include <set>

#include "hdf5/api.h"
#include "reskit/error.h"
#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"
#include "reskit/layers/normalization.h"
#include "reskit/layers/pooling.h"

namespace reskit::io {

namespace {

constexpr std::int64_t kMaxDim = std::int64_t{1} << 24;  // any size in a config
constexpr int kMaxJsonDepth = 64;

// ---------------------------------------------------------------- reading helpers

struct LayerCtx {
  std::string class_name, name;
  std::string where() const { return class_name + " '" + name + "'"; }
};

std::string short_dump(const Json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

[[noreturn]] void bad(const LayerCtx& l, const std::string& what) {
  throw FileError("model_config: " + l.where() + ": " + what);
}

[[noreturn]] void unsupported(const LayerCtx& l, const std::string& key, const Json& v,
                              const std::string& supported) {
  bad(l, "unsupported option " + key + "=" + short_dump(v) + " (reskit supports " + supported + ")");
}

const Json* find(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const Json& require(const Json& obj, const char* key, const LayerCtx& l) {
  const Json* v = find(obj, key);
  if (!v) bad(l, std::string("missing option ") + key);
  return *v;
}

std::int64_t as_int(const Json& v, const LayerCtx& l, const std::string& key, std::int64_t lo,
                    std::int64_t hi) {
  std::int64_t x = 0;
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi))
      bad(l, "expected " + key + " <= " + std::to_string(hi) + ", got " + short_dump(v));
    x = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<std::int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             v.get<double>() == std::floor(v.get<double>()) && std::fabs(v.get<double>()) < 9.0e15) {
    x = static_cast<std::int64_t>(v.get<double>());
  } else {
    bad(l, "expected an integer " + key + ", got " + short_dump(v));
  }
  if (x < lo) bad(l, "expected " + key + " >= " + std::to_string(lo) + ", got " + std::to_string(x));
  if (x > hi) bad(l, "expected " + key + " <= " + std::to_string(hi) + ", got " + std::to_string(x));
  return x;
}

std::array<int, 2> as_pair(const Json& v, const LayerCtx& l, const std::string& key, std::int64_t lo,
                           std::int64_t hi) {
  if (v.is_number()) {
    int x = static_cast<int>(as_int(v, l, key, lo, hi));
    return {x, x};
  }
  if (!v.is_array() || v.size() != 2)
    bad(l, "expected " + key + " as an integer or a pair, got " + short_dump(v));
  return {static_cast<int>(as_int(v[0], l, key, lo, hi)), static_cast<int>(as_int(v[1], l, key, lo, hi))};
}

double as_double(const Json& v, const LayerCtx& l, const std::string& key) {
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    bad(l, "expected a number for " + key + ", got " + short_dump(v));
  return v.get<double>();
}

bool as_bool(const Json& v, const LayerCtx& l, const std::string& key) {
  if (!v.is_boolean()) bad(l, "expected true or false for " + key + ", got " + short_dump(v));
  return v.get<bool>();
}

std::string as_string(const Json& v, const LayerCtx& l, const std::string& key) {
  if (!v.is_string()) bad(l, "expected a string for " + key + ", got " + short_dump(v));
  return v.get<std::string>();
}

bool bool_option(const Json& c, const char* key, bool fallback, const LayerCtx& l) {
  const Json* v = find(c, key);
  return v && !v->is_null() ? as_bool(*v, l, key) : fallback;
}

// Options reskit cannot honour unless they hold their neutral value.
void expect_null(const Json& c, const LayerCtx& l, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    const Json* v = find(c, key);
    if (v && !v->is_null()) unsupported(l, key, *v, "null");
  }
}

void expect_channels_last(const Json& c, const LayerCtx& l) {
  const Json* v = find(c, "data_format");
  if (v && !v->is_null() && *v != "channels_last") unsupported(l, "data_format", *v, "\"channels_last\"");
}

std::string padding_option(const Json& c, const LayerCtx& l) {
  const Json* v = find(c, "padding");
  if (!v || v->is_null()) return "valid";
  std::string p = as_string(*v, l, "padding");
  for (auto& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (p != "valid" && p != "same") unsupported(l, "padding", *v, "\"valid\" and \"same\"");
  return p;
}

std::string activation_option(const Json& c, const char* key, const LayerCtx& l) {
  const Json* v = find(c, key);
  if (!v || v->is_null()) return "linear";
  if (!v->is_string()) unsupported(l, key, *v, "linear, relu, softmax, sigmoid, tanh");
  std::string a = v->get<std::string>();
  if (a != "linear" && a != "relu" && a != "softmax" && a != "sigmoid" && a != "tanh") {
    unsupported(l, key, *v, "linear, relu, softmax, sigmoid, tanh");
  }
  return a;
}

// A Keras initializer (string or {"class_name", "config"}) as a reskit initializer name; those
// reskit lacks fall back to `fallback` (loaded weights overwrite them anyway).
std::string initializer_option(const Json& c, const char* key, const std::string& fallback,
                               std::optional<std::uint64_t>* seed, const LayerCtx& l) {
  static const std::map<std::string, std::string> kNames{{"GlorotUniform", "glorot_uniform"},
                                                         {"GlorotNormal", "glorot_normal"},
                                                         {"HeUniform", "he_uniform"},
                                                         {"HeNormal", "he_normal"},
                                                         {"RandomUniform", "random_uniform"},
                                                         {"RandomNormal", "random_normal"},
                                                         {"Zeros", "zeros"},
                                                         {"Ones", "ones"}};
  const Json* v = find(c, key);
  if (!v || v->is_null()) return fallback;
  if (v->is_string()) {
    for (const auto& [cls, name] : kNames)
      if (name == v->get<std::string>()) return name;
    return fallback;
  }
  const Json* cls = find(*v, "class_name");
  if (!cls || !cls->is_string()) return fallback;
  auto it = kNames.find(cls->get<std::string>());
  if (it == kNames.end()) return fallback;
  if (seed) {
    const Json* cfg = find(*v, "config");
    const Json* s = cfg ? find(*cfg, "seed") : nullptr;
    if (s && !s->is_null())
      *seed = static_cast<std::uint64_t>(as_int(*s, l, std::string(key) + ".seed", 0, INT64_MAX));
  }
  return it->second;
}

DType dtype_option(const Json& c, const LayerCtx& l) {
  const Json* v = find(c, "dtype");
  if (!v || v->is_null()) return DType::float32;
  const Json* name = v;
  if (v->is_object()) {
    const Json* cfg = find(*v, "config");
    name = cfg ? find(*cfg, "name") : nullptr;
  }
  if (name && *name == "float32") return DType::float32;
  if (name && *name == "float64") return DType::float64;
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

// input_layers / output_layers: [[n, 0, 0], ...], a single [n, 0, 0], or {key: [n, 0, 0], ...}.
std::vector<Ref> parse_endpoints(const Json& v, const std::string& what) {
  std::vector<Ref> out;
  if (v.is_array() && !v.empty() && v[0].is_string()) {
    out.push_back(parse_triple(v, what));
  } else if (v.is_array() || v.is_object()) {
    for (const auto& item : v) out.push_back(parse_triple(item, what));
  } else {
    throw FileError("model_config: expected " + what + " as a list, got " + short_dump(v));
  }
  if (out.empty()) throw FileError("model_config: " + what + " is empty");
  return out;
}

// Keras 3: keras tensors anywhere inside "args" carry keras_history [layer, node, tensor].
void collect_keras_tensors(const Json& v, std::vector<Ref>& out, int depth, const LayerCtx& l) {
  if (depth > kMaxJsonDepth) bad(l, "inbound_nodes nested too deeply");
  if (v.is_object()) {
    const Json* cls = find(v, "class_name");
    if (cls && *cls == "__keras_tensor__") {
      const Json* cfg = find(v, "config");
      const Json* hist = cfg ? find(*cfg, "keras_history") : nullptr;
      if (!hist) bad(l, "a keras tensor in inbound_nodes lacks keras_history");
      out.push_back(parse_triple(*hist, "keras_history of " + l.where()));
      return;
    }
    for (const auto& item : v) collect_keras_tensors(item, out, depth + 1, l);
  } else if (v.is_array()) {
    for (const auto& item : v) collect_keras_tensors(item, out, depth + 1, l);
  }
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
  const Json& node = (*nodes)[0];
  if (node.is_object()) {  // Keras 3
    const Json* args = find(node, "args");
    if (args) collect_keras_tensors(*args, refs, 0, l);
    std::vector<Ref> in_kwargs;
    if (const Json* kwargs = find(node, "kwargs")) collect_keras_tensors(*kwargs, in_kwargs, 0, l);
    if (!in_kwargs.empty()) bad(l, "tensors passed as keyword arguments are not supported");
  } else if (node.is_array()) {  // tf.keras 2.x: [[name, node, tensor, kwargs], ...]
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
  } else {
    bad(l, "unreadable inbound node " + short_dump(node));
  }
  if (refs.empty()) bad(l, "an inbound node without inputs");
  return refs;
}

// ---------------------------------------------------------------- layers

// Bounds the memory that the layers' weights take before they are created.
struct WeightBudget {
  std::uint64_t max_bytes;
  std::uint64_t used = 0;
  DType dtype;
  void add(const LayerCtx& l, long double elements) {
    long double bytes = elements * static_cast<long double>(dtype_size(dtype));
    if (bytes + used > static_cast<long double>(max_bytes)) {
      bad(l, "its weights (" + std::to_string(static_cast<double>(elements)) +
                 " values) exceed what this file can hold; refusing to allocate them");
    }
    used += static_cast<std::uint64_t>(bytes);
  }
};

const Tensor& one_input(const std::vector<Tensor>& in, const LayerCtx& l) {
  if (in.size() != 1) bad(l, "expected 1 input, got " + std::to_string(in.size()));
  return in[0];
}

void check_rank(const Tensor& x, std::size_t rank, const LayerCtx& l) {
  if (x.shape().size() != rank) {
    bad(l, "expected a " + std::to_string(rank) + "-D input, got shape " + shape_str(x.shape()));
  }
}

Tensor build_conv2d(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, WeightBudget& budget) {
  const Tensor& x = one_input(in, l);
  check_rank(x, 4, l);
  const int filters = static_cast<int>(as_int(require(c, "filters", l), l, "filters", 1, kMaxDim));
  const auto kernel = as_pair(require(c, "kernel_size", l), l, "kernel_size", 1, kMaxDim);
  Conv2DOptions o;
  if (const Json* v = find(c, "strides"); v && !v->is_null())
    o.strides = as_pair(*v, l, "strides", 1, kMaxDim);
  o.padding = padding_option(c, l);
  expect_channels_last(c, l);
  if (const Json* v = find(c, "dilation_rate");
      v && !v->is_null() && as_pair(*v, l, "dilation_rate", 1, kMaxDim) != std::array<int, 2>{1, 1}) {
    unsupported(l, "dilation_rate", *v, "[1, 1]");
  }
  if (const Json* v = find(c, "groups"); v && !v->is_null() && as_int(*v, l, "groups", 1, kMaxDim) != 1) {
    unsupported(l, "groups", *v, "1");
  }
  expect_null(c, l,
              {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
               "bias_constraint", "lora_rank"});
  o.activation = activation_option(c, "activation", l);
  o.use_bias = bool_option(c, "use_bias", true, l);
  o.kernel_initializer = initializer_option(c, "kernel_initializer", "glorot_uniform", &o.seed, l);
  o.bias_initializer = initializer_option(c, "bias_initializer", "zeros", nullptr, l);
  o.name = l.name;
  const long double cin = static_cast<long double>(x.shape()[3]);
  budget.add(l, (static_cast<long double>(kernel[0]) * kernel[1] * cin + (o.use_bias ? 1 : 0)) * filters);
  return Conv2D(filters, kernel, o)(x);
}

Tensor build_dense(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, WeightBudget& budget) {
  const Tensor& x = one_input(in, l);
  check_rank(x, 2, l);
  const int units = static_cast<int>(as_int(require(c, "units", l), l, "units", 1, kMaxDim));
  DenseOptions o;
  expect_null(c, l,
              {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
               "bias_constraint", "lora_rank"});
  o.activation = activation_option(c, "activation", l);
  o.use_bias = bool_option(c, "use_bias", true, l);
  o.kernel_initializer = initializer_option(c, "kernel_initializer", "glorot_uniform", &o.seed, l);
  o.bias_initializer = initializer_option(c, "bias_initializer", "zeros", nullptr, l);
  o.name = l.name;
  budget.add(l, (static_cast<long double>(x.shape()[1]) + (o.use_bias ? 1 : 0)) * units);
  return Dense(units, o)(x);
}

Tensor build_batch_norm(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in,
                        WeightBudget& budget) {
  const Tensor& x = one_input(in, l);
  const auto rank = static_cast<std::int64_t>(x.shape().size());
  if (rank < 2) bad(l, "expected an input of rank >= 2, got shape " + shape_str(x.shape()));
  BatchNormalizationOptions o;
  if (const Json* v = find(c, "axis"); v && !v->is_null()) {
    const Json& a = v->is_array() && v->size() == 1 ? (*v)[0] : *v;
    std::int64_t axis = a.is_number() ? as_int(a, l, "axis", -rank, rank - 1) : rank;
    if (axis != -1 && axis != rank - 1)
      unsupported(l, "axis", *v, "the last axis: [" + std::to_string(rank - 1) + "] or -1");
  }
  o.axis = -1;
  if (const Json* v = find(c, "momentum"); v && !v->is_null()) o.momentum = as_double(*v, l, "momentum");
  if (const Json* v = find(c, "epsilon"); v && !v->is_null()) o.epsilon = as_double(*v, l, "epsilon");
  for (const char* key : {"center", "scale"}) {
    const Json* v = find(c, key);
    if (v && !v->is_null() && !as_bool(*v, l, key)) unsupported(l, key, *v, "true");
  }
  if (const Json* v = find(c, "renorm"); v && !v->is_null() && as_bool(*v, l, "renorm"))
    unsupported(l, "renorm", *v, "false");
  expect_null(c, l,
              {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
               "virtual_batch_size", "adjustment"});
  o.name = l.name;
  budget.add(l, 4.0L * static_cast<long double>(x.shape().back()));
  return BatchNormalization(o)(x);
}

Tensor build_pooling(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, bool max) {
  const Tensor& x = one_input(in, l);
  check_rank(x, 4, l);
  std::array<int, 2> pool{2, 2};
  if (const Json* v = find(c, "pool_size"); v && !v->is_null())
    pool = as_pair(*v, l, "pool_size", 1, kMaxDim);
  Pooling2DOptions o;
  if (const Json* v = find(c, "strides"); v && !v->is_null())
    o.strides = as_pair(*v, l, "strides", 1, kMaxDim);
  o.padding = padding_option(c, l);
  expect_channels_last(c, l);
  o.name = l.name;
  return max ? MaxPooling2D(pool, o)(x) : AveragePooling2D(pool, o)(x);
}

Tensor build_global_pooling(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, bool max) {
  const Tensor& x = one_input(in, l);
  check_rank(x, 4, l);
  expect_channels_last(c, l);
  if (bool_option(c, "keepdims", false, l)) unsupported(l, "keepdims", true, "false");
  GlobalPooling2DOptions o{.name = l.name};
  return max ? GlobalMaxPooling2D(o)(x) : GlobalAveragePooling2D(o)(x);
}

Tensor build_zero_padding(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in) {
  const Tensor& x = one_input(in, l);
  check_rank(x, 4, l);
  expect_channels_last(c, l);
  std::array<std::array<int, 2>, 2> pad{{{1, 1}, {1, 1}}};
  if (const Json* v = find(c, "padding"); v && !v->is_null()) {
    if (v->is_number()) {
      int p = static_cast<int>(as_int(*v, l, "padding", 0, kMaxDim));
      pad = {{{p, p}, {p, p}}};
    } else if (v->is_array() && v->size() == 2 && (*v)[0].is_number()) {
      auto hw = as_pair(*v, l, "padding", 0, kMaxDim);
      pad = {{{hw[0], hw[0]}, {hw[1], hw[1]}}};
    } else if (v->is_array() && v->size() == 2) {
      pad = {as_pair((*v)[0], l, "padding", 0, kMaxDim), as_pair((*v)[1], l, "padding", 0, kMaxDim)};
    } else {
      bad(l, "expected padding as an integer, a pair or a pair of pairs, got " + short_dump(*v));
    }
  }
  return ZeroPadding2D(pad, {.name = l.name})(x);
}

Tensor build_dropout(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in) {
  const Tensor& x = one_input(in, l);
  const double rate = as_double(require(c, "rate", l), l, "rate");
  if (!(rate >= 0.0 && rate < 1.0)) bad(l, "expected rate in [0, 1), got " + std::to_string(rate));
  expect_null(c, l, {"noise_shape"});
  DropoutOptions o;
  if (const Json* v = find(c, "seed"); v && !v->is_null())
    o.seed = static_cast<std::uint64_t>(as_int(*v, l, "seed", 0, INT64_MAX));
  o.name = l.name;
  return Dropout(rate, o)(x);
}

Tensor build_relu(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in) {
  const Tensor& x = one_input(in, l);
  expect_null(c, l, {"max_value"});
  for (const char* key : {"negative_slope", "threshold"}) {
    const Json* v = find(c, key);
    if (v && !v->is_null() && as_double(*v, l, key) != 0.0) unsupported(l, key, *v, "0");
  }
  return Activation("relu", {.name = l.name})(x);
}

// Calls the layer described by (class, config) on its inputs.
Tensor build_layer(const Json& c, const LayerCtx& l, const std::vector<Tensor>& in, WeightBudget& budget) {
  const std::string& k = l.class_name;
  if (k == "Conv2D" || k == "Convolution2D") return build_conv2d(c, l, in, budget);
  if (k == "Dense") return build_dense(c, l, in, budget);
  if (k == "BatchNormalization") return build_batch_norm(c, l, in, budget);
  if (k == "Activation")
    return Activation(activation_option(c, "activation", l), {.name = l.name})(one_input(in, l));
  if (k == "ReLU") return build_relu(c, l, in);
  if (k == "Add") {
    if (in.size() < 2) bad(l, "expected at least 2 inputs, got " + std::to_string(in.size()));
    return Add({.name = l.name})(in);
  }
  if (k == "MaxPooling2D" || k == "MaxPool2D") return build_pooling(c, l, in, true);
  if (k == "AveragePooling2D" || k == "AvgPool2D") return build_pooling(c, l, in, false);
  if (k == "GlobalMaxPooling2D" || k == "GlobalMaxPool2D") return build_global_pooling(c, l, in, true);
  if (k == "GlobalAveragePooling2D" || k == "GlobalAvgPool2D") return build_global_pooling(c, l, in, false);
  if (k == "Flatten") {
    expect_channels_last(c, l);
    return Flatten({.name = l.name})(one_input(in, l));
  }
  if (k == "ZeroPadding2D") return build_zero_padding(c, l, in);
  if (k == "Dropout") return build_dropout(c, l, in);
  throw FileError("model_config: unsupported layer class '" + k + "' (layer '" + l.name +
                  "'); reskit reads InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, Activation, ReLU, "
                  "Add, MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D, Flatten, "
                  "Dense, Dropout");
}

// The batch-free input shape of an InputLayer (or of a Sequential model's first layer).
std::optional<Shape> input_shape_option(const Json& c, const LayerCtx& l) {
  const Json* v = nullptr;
  for (const char* key : {"batch_input_shape", "batch_shape"}) {
    if ((v = find(c, key)) && !v->is_null()) break;
    v = nullptr;
  }
  if (!v) return std::nullopt;
  if (!v->is_array() || v->size() < 2 || v->size() > static_cast<std::size_t>(hdf5::kMaxRank)) {
    bad(l, "expected a batch input shape [null, d1, ...] of rank 2 to " + std::to_string(hdf5::kMaxRank) +
               ", got " + short_dump(*v));
  }
  Shape shape;
  long double total = 1;
  for (std::size_t i = 1; i < v->size(); ++i) {
    if ((*v)[i].is_null()) bad(l, "unknown (None) input dimensions are not supported: " + short_dump(*v));
    shape.push_back(as_int((*v)[i], l, "input dimension", 1, kMaxDim));
    total *= static_cast<long double>(shape.back());
  }
  if (total > static_cast<long double>(std::int64_t{1} << 40))
    bad(l, "input shape too large: " + short_dump(*v));
  return shape;
}

Tensor build_input(const Json& c, const LayerCtx& l) {
  auto shape = input_shape_option(c, l);
  if (!shape) bad(l, "missing option batch_input_shape");
  for (const char* key : {"sparse", "ragged"}) {
    if (bool_option(c, key, false, l)) unsupported(l, key, true, "false");
  }
  return Input(*shape, {.name = l.name});
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

// Keras layer.trainable = False: the layer's weights become non-trainable.
void apply_trainable(const Json& c, const LayerCtx& l, const Tensor& out) {
  if (bool_option(c, "trainable", true, l)) return;
  Layer& layer = *out.node()->layer;
  if (layer.params().empty()) return;
  if (l.class_name == "BatchNormalization") {
    unsupported(l, "trainable", false, "true (a frozen BatchNormalization runs in inference mode in Keras)");
  }
  for (auto& p : layer.params()) p.trainable = false;
}

// Calls build, turning reskit's own config and shape errors into FileErrors naming the layer.
Tensor build_checked(const LayerSpec& s, const std::vector<Tensor>& in, WeightBudget& budget) {
  try {
    Tensor out = s.ctx.class_name == "InputLayer" ? build_input(*s.config, s.ctx)
                                                  : build_layer(*s.config, s.ctx, in, budget);
    apply_trainable(*s.config, s.ctx, out);
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
  return make_model({input}, {x}, model_name(cfg, "sequential"));
}

// ---------------------------------------------------------------- writing helpers

Json initializer_json(const std::string& name, std::optional<std::uint64_t> seed) {
  Json s = seed ? Json(*seed) : Json(nullptr);
  if (name == "zeros") return {{"class_name", "Zeros"}, {"config", Json::object()}};
  if (name == "ones") return {{"class_name", "Ones"}, {"config", Json::object()}};
  if (name == "random_uniform") {
    return {{"class_name", "RandomUniform"}, {"config", {{"minval", -0.05}, {"maxval", 0.05}, {"seed", s}}}};
  }
  if (name == "random_normal") {
    return {{"class_name", "RandomNormal"}, {"config", {{"mean", 0.0}, {"stddev", 0.05}, {"seed", s}}}};
  }
  static const std::map<std::string, std::string> kClasses{{"glorot_uniform", "GlorotUniform"},
                                                           {"glorot_normal", "GlorotNormal"},
                                                           {"he_uniform", "HeUniform"},
                                                           {"he_normal", "HeNormal"}};
  auto it = kClasses.find(name);
  if (it == kClasses.end()) throw FileError("model_config: cannot save initializer '" + name + "'");
  return {{"class_name", it->second}, {"config", {{"seed", s}}}};
}

Json pair_json(std::array<int, 2> p) { return Json::array({p[0], p[1]}); }

void add_no_regularizers(Json& c, bool bias) {
  c["kernel_regularizer"] = nullptr;
  if (bias) c["bias_regularizer"] = nullptr;
  c["activity_regularizer"] = nullptr;
  c["kernel_constraint"] = nullptr;
  c["bias_constraint"] = nullptr;
}

// tf.keras 2.6 get_config of one layer.
Json layer_config_json(const Layer& layer, const graph::Node& node) {
  const std::string& k = layer.class_name();
  const std::string dtype(dtype_name(layer.dtype()));
  if (k == "InputLayer") {
    const auto& in = dynamic_cast<const InputLayer&>(layer);
    Json shape = Json::array({nullptr});
    for (auto d : in.shape()) shape.push_back(d);
    return {{"batch_input_shape", shape},
            {"dtype", dtype},
            {"sparse", false},
            {"ragged", false},
            {"name", layer.name()}};
  }
  bool trainable = layer.params().empty();
  for (const auto& p : layer.params()) trainable = trainable || p.trainable;
  Json c = {{"name", layer.name()}, {"trainable", trainable}, {"dtype", dtype}};
  if (k == "Conv2D") {
    const auto& l = dynamic_cast<const Conv2DLayer&>(layer);
    const auto& o = l.options();
    c["filters"] = l.filters();
    c["kernel_size"] = pair_json(l.kernel_size());
    c["strides"] = pair_json(o.strides);
    c["padding"] = o.padding;
    c["data_format"] = "channels_last";
    c["dilation_rate"] = Json::array({1, 1});
    c["groups"] = 1;
    c["activation"] = o.activation;
    c["use_bias"] = o.use_bias;
    c["kernel_initializer"] = initializer_json(o.kernel_initializer, o.seed);
    c["bias_initializer"] = initializer_json(o.bias_initializer, o.seed);
    add_no_regularizers(c, true);
  } else if (k == "Dense") {
    const auto& l = dynamic_cast<const DenseLayer&>(layer);
    const auto& o = l.options();
    c["units"] = l.units();
    c["activation"] = o.activation;
    c["use_bias"] = o.use_bias;
    c["kernel_initializer"] = initializer_json(o.kernel_initializer, o.seed);
    c["bias_initializer"] = initializer_json(o.bias_initializer, o.seed);
    add_no_regularizers(c, true);
  } else if (k == "BatchNormalization") {
    const auto& o = dynamic_cast<const BatchNormalizationLayer&>(layer).options();
    c["axis"] = Json::array({static_cast<std::int64_t>(node.output_shape.size()) - 1});
    c["momentum"] = o.momentum;
    c["epsilon"] = o.epsilon;
    c["center"] = true;
    c["scale"] = true;
    c["beta_initializer"] = initializer_json("zeros", std::nullopt);
    c["gamma_initializer"] = initializer_json("ones", std::nullopt);
    c["moving_mean_initializer"] = initializer_json("zeros", std::nullopt);
    c["moving_variance_initializer"] = initializer_json("ones", std::nullopt);
    c["beta_regularizer"] = nullptr;
    c["gamma_regularizer"] = nullptr;
    c["beta_constraint"] = nullptr;
    c["gamma_constraint"] = nullptr;
  } else if (k == "Activation") {
    c["activation"] = dynamic_cast<const ActivationLayer&>(layer).activation();
  } else if (k == "Add") {
  } else if (k == "MaxPooling2D" || k == "AveragePooling2D") {
    const auto& l = dynamic_cast<const Pooling2DLayer&>(layer);
    c["pool_size"] = pair_json(l.pool_size());
    c["padding"] = l.padding();
    c["strides"] = pair_json(l.strides());
    c["data_format"] = "channels_last";
  } else if (k == "GlobalMaxPooling2D" || k == "GlobalAveragePooling2D") {
    c["data_format"] = "channels_last";
    c["keepdims"] = false;
  } else if (k == "Flatten") {
    c["data_format"] = "channels_last";
  } else if (k == "ZeroPadding2D") {
    const auto& p = dynamic_cast<const ZeroPadding2DLayer&>(layer).padding();
    c["padding"] = Json::array({pair_json(p[0]), pair_json(p[1])});
    c["data_format"] = "channels_last";
  } else if (k == "Dropout") {
    c["rate"] = dynamic_cast<const DropoutLayer&>(layer).rate();
    c["noise_shape"] = nullptr;
    c["seed"] = nullptr;
  } else {
    throw FileError("model_config: cannot save layer class '" + k + "' (layer '" + layer.name() + "')");
  }
  return c;
}

std::map<const Layer*, const graph::Node*> nodes_by_layer(const Model& model) {
  std::map<const Layer*, const graph::Node*> out;
  std::vector<const graph::Node*> stack;
  for (const auto& t : model.outputs()) stack.push_back(t.node().get());
  while (!stack.empty()) {
    const graph::Node* n = stack.back();
    stack.pop_back();
    if (!out.emplace(n->layer.get(), n).second) continue;
    for (const auto& in : n->inputs) stack.push_back(in.node().get());
  }
  return out;
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
  auto nodes = nodes_by_layer(model);
  Json layers = Json::array();
  for (const auto& layer : model.layers()) {
    const graph::Node* node = nodes.at(layer.get());
    Json entry = {{"class_name", layer->class_name()},
                  {"config", layer_config_json(*layer, *node)},
                  {"name", layer->name()}};
    Json inbound = Json::array();
    if (!node->inputs.empty()) {
      Json call = Json::array();
      for (const auto& t : node->inputs) {
        call.push_back(
            Json::array({t.node()->layer->name(), t.node()->node_index, t.output_index(), Json::object()}));
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

Model model_from_config(const Json& root, std::uint64_t max_weight_bytes) {
  try {
    if (!root.is_object()) throw FileError("model_config: expected a JSON object");
    const Json* cls = find(root, "class_name");
    const Json* cfg = find(root, "config");
    if (!cls || !cls->is_string() || !cfg)
      throw FileError("model_config: expected {\"class_name\", \"config\"}");
    const std::string k = cls->get<std::string>();
    if (k == "Functional" || k == "Model") return functional_from_config(*cfg, max_weight_bytes);
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

TrainingSetup training_from_config(const Json& config) {
  try {
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
