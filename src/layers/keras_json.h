// Keras layer configs as JSON (internal): the reading helpers every layer's config reader uses
// (each problem a FileError naming the layer class, the layer and the option, as
// "model_config: Conv2D 'conv1': ..."), and the writing helpers for tf.keras 2.6 get_config.
// nlohmann/json stays inside src/: no public header includes this.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "reskit/layers/layer.h"
#include "reskit/tensor.h"

namespace reskit::keras {

using Json = nlohmann::ordered_json;

inline constexpr std::int64_t kMaxDim = std::int64_t{1} << 24;  // any size in a config
inline constexpr std::size_t kMaxInputRank = 8;                 // batch_input_shape's length

// The layer a config describes: how messages name it.
struct LayerCtx {
  std::string class_name, name;
  std::string where() const { return class_name + " '" + name + "'"; }
};

// ---------------------------------------------------------------- reading

std::string short_dump(const Json& v);
[[noreturn]] void bad(const LayerCtx& l, const std::string& what);
[[noreturn]] void unsupported(const LayerCtx& l, const std::string& key, const Json& v,
                              const std::string& supported);

const Json* find(const Json& obj, const char* key);
const Json& require(const Json& obj, const char* key, const LayerCtx& l);
std::int64_t as_int(const Json& v, const LayerCtx& l, const std::string& key, std::int64_t lo,
                    std::int64_t hi);
// An integer or a pair of integers.
std::array<int, 2> as_pair(const Json& v, const LayerCtx& l, const std::string& key, std::int64_t lo,
                           std::int64_t hi);
double as_double(const Json& v, const LayerCtx& l, const std::string& key);
bool as_bool(const Json& v, const LayerCtx& l, const std::string& key);
std::string as_string(const Json& v, const LayerCtx& l, const std::string& key);
bool bool_option(const Json& c, const char* key, bool fallback, const LayerCtx& l);

// Options reskit cannot honour unless they hold their neutral value.
void expect_null(const Json& c, const LayerCtx& l, std::initializer_list<const char*> keys);
void expect_channels_last(const Json& c, const LayerCtx& l);
// "valid" or "same" (any case); "valid" when absent.
std::string padding_option(const Json& c, const LayerCtx& l);
// A Keras activation name reskit computes (layers/util.h kActivationNames); "linear" when absent.
std::string activation_option(const Json& c, const char* key, const LayerCtx& l);
// A Keras initializer (string or {"class_name", "config"}) as a reskit initializer name; those
// reskit lacks fall back to `fallback` (loaded weights overwrite them anyway). Its seed goes to
// *seed when given.
std::string initializer_option(const Json& c, const char* key, const std::string& fallback,
                               std::optional<std::uint64_t>* seed, const LayerCtx& l);
// The batch-free input shape of an InputLayer (or of a Sequential model's first layer).
std::optional<Shape> input_shape_option(const Json& c, const LayerCtx& l);

// The one input of a single-input layer; the input's rank.
const Tensor& one_input(const std::vector<Tensor>& in, const LayerCtx& l);
void check_rank(const Tensor& x, std::size_t rank, const LayerCtx& l);

// Bounds the memory that a model's weights take before they are created.
struct WeightBudget {
  std::uint64_t max_bytes;
  std::uint64_t used = 0;
  DType dtype;
  void add(const LayerCtx& l, long double elements);
};

// ---------------------------------------------------------------- writing

// {"name", "trainable", "dtype"}: the keys every layer's config starts with.
Json base_config(const Layer& layer);
Json initializer_json(const std::string& name, std::optional<std::uint64_t> seed);
Json pair_json(std::array<int, 2> p);
// kernel/bias regularizers and constraints, all null.
void add_no_regularizers(Json& c, bool bias);

}  // namespace reskit::keras
