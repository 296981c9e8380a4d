// The Keras config layouts (internal): every model_config and training_config that tf.keras
// 2.x, standalone Keras 2.0–2.2 and Keras 3 (legacy .h5, to_json) write, rewritten into the one
// form the readers in keras_config.cpp and every layer's from_config see: tf.keras 2.6's.
//
// What is rewritten (and nothing else):
//  - serialized objects lose Keras 3's "module", "registered_name", "build_config",
//    "compile_config" and tf.keras's "__passive_serialization__", at any depth;
//  - "dtype" given as a policy object ({"class_name": "DTypePolicy"/"Policy", "config":
//    {"name": "float32"}}) becomes the policy's name;
//  - InputLayer "batch_shape" (Keras 3) becomes "batch_input_shape";
//  - an "axis" of one element ([3]) becomes that integer, as Keras 3's loader does for every layer;
//  - inbound nodes in Keras 3's {"args": [...keras tensors...], "kwargs": {...}} form become
//    [[layer, node, tensor, kwargs], ...] (non-null keyword arguments travel with the first
//    input, where the reader checks them as it does tf.keras 2.x's);
//  - input_layers/output_layers as one triple or a dict of triples become a list of triples;
//  - the model class "Model" (Keras 2.2) becomes "Functional"; a Sequential config given as a bare
//    list of layers (Keras 2.0/2.1) becomes {"name": "sequential", "layers": [...]};
//  - an optimizer class "Custom>Adam" (tf.keras 2.11+ registers its optimizers under "Custom")
//    becomes "Adam".
// Problems are FileErrors beginning "model_config: " or "training_config: ".
#pragma once

#include "layers/keras_json.h"

namespace reskit::io {

// A model_config ({"class_name", "config"}) in tf.keras 2.6's form.
keras::Json normalize_model_config(const keras::Json& root);

// A training_config in tf.keras 2.6's form.
keras::Json normalize_training_config(const keras::Json& config);

}  // namespace reskit::io
