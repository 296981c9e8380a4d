// reskit/models/registry.h — models by name, for the command line and files.
#pragma once

#include <string>
#include <vector>

#include "reskit/graph/model.h"

namespace reskit {

// Names build_model knows.
std::vector<std::string> model_names();
// Builds a model by name: "resnet50" (the notebook's text and the paper), "resnet50-code" (the
// notebook's code: 126 filters in stage 3, stride 1 in stage 5), resnet18/34/101/152 (ImageNet
// layout), resnet20/32/44/56/110 (CIFAR layout). Throws ConfigError for an
// unknown name, listing the known ones.
Model build_model(const std::string& name, const Shape& input_shape, int classes);

}  // namespace reskit
