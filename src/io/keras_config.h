// Keras JSON configs (internal): a Model to and from model_config, compile state to and from
// training_config. Used by the .h5 reader and writer (h5_model.cpp) and model_to_json.
//
// Reading accepts what tf.keras 2.x and Keras 3 (legacy .h5) write; each layer class reads and
// writes its own config (its entry in layers/registry.h). Every problem is a FileError whose message names
// the layer class, the layer and the option; the caller prefixes the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/keras_json.h"
#include "reskit/graph/model.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"

namespace reskit::io {

using Json = keras::Json;

inline constexpr const char* kKerasVersion = "2.6.0";
inline constexpr const char* kBackend = "tensorflow";
inline constexpr std::size_t kMaxLayers = 20000;

// Parses JSON text, refusing nesting deeper than 64 levels; FileError naming `what` otherwise.
Json parse_json(const std::string& text, const std::string& what);

// {"class_name": "Functional", "config": {"name", "layers", "input_layers", "output_layers"}}
Json model_config(const Model& model);

// Rebuilds a Functional ("Model") or Sequential model from its config. Weights are freshly
// initialised; their total size may not exceed max_weight_bytes.
Model model_from_config(const Json& config, std::uint64_t max_weight_bytes);

// {"loss", "metrics", "weighted_metrics", "loss_weights", "optimizer_config"} of a compiled model.
Json training_config(Model& model);

struct TrainingSetup {
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<Loss> loss;
  std::vector<std::string> metrics;
};
// The optimizer, loss and metrics of a training_config (metrics reskit lacks are dropped).
TrainingSetup training_from_config(const Json& config);

}  // namespace reskit::io
