// Reading and writing helpers for Keras layer configs.
#include "layers/keras_json.h"

#include <cctype>
#include <cmath>
#include <map>

#include "reskit/error.h"

namespace reskit::keras {

// ---------------------------------------------------------------- reading

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

const Tensor& one_input(const std::vector<Tensor>& in, const LayerCtx& l) {
  if (in.size() != 1) bad(l, "expected 1 input, got " + std::to_string(in.size()));
  return in[0];
}

void check_rank(const Tensor& x, std::size_t rank, const LayerCtx& l) {
  if (x.shape().size() != rank) {
    bad(l, "expected a " + std::to_string(rank) + "-D input, got shape " + shape_str(x.shape()));
  }
}

void WeightBudget::add(const LayerCtx& l, long double elements) {
  long double bytes = elements * static_cast<long double>(dtype_size(dtype));
  if (bytes + used > static_cast<long double>(max_bytes)) {
    bad(l, "its weights (" + std::to_string(static_cast<double>(elements)) +
               " values) exceed what this file can hold; refusing to allocate them");
  }
  used += static_cast<std::uint64_t>(bytes);
}

std::optional<Shape> input_shape_option(const Json& c, const LayerCtx& l) {
  const Json* v = nullptr;
  for (const char* key : {"batch_input_shape", "batch_shape"}) {
    if ((v = find(c, key)) && !v->is_null()) break;
    v = nullptr;
  }
  if (!v) return std::nullopt;
  if (!v->is_array() || v->size() < 2 || v->size() > static_cast<std::size_t>(kMaxInputRank)) {
    bad(l, "expected a batch input shape [null, d1, ...] of rank 2 to " + std::to_string(kMaxInputRank) +
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

// ---------------------------------------------------------------- writing

Json base_config(const Layer& layer) {
  return {{"name", layer.name()},
          {"trainable", layer.trainable()},
          {"dtype", std::string(dtype_name(layer.dtype()))}};
}

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

}  // namespace reskit::keras
