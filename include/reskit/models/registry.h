// reskit/models/registry.h — models by name, for the command line and files.
#pragma once

#include <string>
#include <vector>

#include "reskit/graph/model.h"

namespace reskit {

// Names build_model knows.
std::vector<std::string> model_names();

// How build_model shapes a Keras Applications model (the "-imagenet" names); other names take
// only the defaults.
struct BuildOptions {
  // Keep Keras's classifier ("predictions": Dense(classes, softmax) after "avg_pool").
  bool include_top = true;
  // Without the top: "" (the last block's 4-D output), "avg" or "max" (Keras's pooling).
  std::string pooling;
  // Without the top: put a new Dense(classes, softmax) head (Keras's auto-name "dense") on the
  // pooled features, as Keras's transfer-learning guide does; pooling must then be avg or max.
  bool new_head = false;
};

// Builds a model by name: "resnet50" (the notebook's text and the paper), "resnet50-code" (the
// notebook's code: 126 filters in stage 3, stride 1 in stage 5), resnet18/34/101/152 (ImageNet
// layout), resnet20/32/44/56/110 (CIFAR layout), and the Keras Applications ResNets with Keras's
// layer names, which load Keras's weight files by name: resnet50-imagenet, resnet101-imagenet,
// resnet152-imagenet, resnet50v2-imagenet, resnet101v2-imagenet, resnet152v2-imagenet
// (reskit/models/applications.h). Throws ConfigError for an unknown name, listing the known ones,
// and for BuildOptions other than the defaults with a model that is not a Keras Application.
Model build_model(const std::string& name, const Shape& input_shape, int classes,
                  const BuildOptions& options = {});

// Keras's transfer-learning model: base's input, its (flat) output through a new
// Dense(classes, softmax) (auto-named "dense"), sharing base's layers and weights. ShapeError
// unless base has one output of shape (batch, features).
Model with_new_head(const Model& base, int classes);

// For a "-imagenet" name, the Keras Applications architecture ("resnet50", "resnet50v2", …);
// "" for the others.
std::string application_architecture(const std::string& name);

}  // namespace reskit
