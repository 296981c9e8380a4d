// Models by name.
#include "reskit/models/registry.h"

#include "reskit/error.h"
#include "reskit/models/resnet.h"

namespace reskit {

std::vector<std::string> model_names() {
  return {"resnet18", "resnet34", "resnet50", "resnet50-code", "resnet101", "resnet152",
          "resnet20", "resnet32", "resnet44", "resnet56",      "resnet110"};
}

Model build_model(const std::string& name, const Shape& input_shape, int classes) {
  if (name == "resnet50") return resnet50(input_shape, classes);
  if (name == "resnet50-code") return resnet50(input_shape, classes, resnet50_notebook_code_variant());
  for (int depth : {18, 34, 101, 152})
    if (name == "resnet" + std::to_string(depth)) return resnet_imagenet(depth, input_shape, classes);
  for (int depth : {20, 32, 44, 56, 110})
    if (name == "resnet" + std::to_string(depth)) return resnet_cifar(depth, input_shape, classes);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("model: unknown model '" + name + "'; expected one of " + known);
}

}  // namespace reskit
