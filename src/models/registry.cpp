// Models by name.
#include "reskit/models/registry.h"

#include "reskit/error.h"
#include "reskit/models/resnet.h"

namespace reskit {

std::vector<std::string> model_names() { return {"resnet50", "resnet50-code"}; }

Model build_model(const std::string& name, const Shape& input_shape, int classes) {
  if (name == "resnet50") return resnet50(input_shape, classes);
  if (name == "resnet50-code") return resnet50(input_shape, classes, resnet50_notebook_code_variant());
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("model: unknown model '" + name + "'; expected one of " + known);
}

}  // namespace reskit
