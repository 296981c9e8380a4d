// Models by name.
#include "reskit/models/registry.h"

#include "reskit/error.h"
#include "reskit/layers/core.h"
#include "reskit/models/applications.h"
#include "reskit/models/resnet.h"

namespace reskit {

namespace {
constexpr const char* kApplicationSuffix = "-imagenet";
}

std::vector<std::string> model_names() {
  std::vector<std::string> names = {"resnet18",  "resnet34",  "resnet50", "resnet50-code",
                                    "resnet101", "resnet152", "resnet20", "resnet32",
                                    "resnet44",  "resnet56",  "resnet110"};
  for (const auto& a : applications::architecture_names()) names.push_back(a + kApplicationSuffix);
  return names;
}

std::string application_architecture(const std::string& name) {
  const std::string suffix = kApplicationSuffix;
  if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  const std::string arch = name.substr(0, name.size() - suffix.size());
  for (const auto& a : applications::architecture_names())
    if (a == arch) return arch;
  return "";
}

namespace {
Model build_application(const std::string& arch, const Shape& input_shape, int classes,
                        const BuildOptions& o) {
  const std::string where = arch + kApplicationSuffix;
  if (o.include_top && (!o.pooling.empty() || o.new_head)) {
    throw ConfigError(where + ": pooling and a new head go with include_top false");
  }
  Model base = applications::build(
      arch,
      {.include_top = o.include_top, .input_shape = input_shape, .pooling = o.pooling, .classes = classes});
  if (!o.new_head) return base;
  if (o.pooling.empty()) {
    throw ConfigError(where + ": a new head needs pooling avg or max (the features must be flat), got none");
  }
  return with_new_head(base, classes);
}
}  // namespace

Model with_new_head(const Model& base, int classes) {
  if (base.outputs().size() != 1 || base.outputs()[0].rank() != 2) {
    throw ShapeError("with_new_head: expected model '" + base.name() +
                     "' to have one output of shape (batch, features), got " +
                     (base.outputs().empty() ? std::string("none") : shape_str(base.outputs()[0].shape())));
  }
  if (classes <= 0) throw ConfigError("with_new_head: expected classes > 0, got " + std::to_string(classes));
  Tensor head = Dense(classes, {.activation = "softmax"})(base.outputs()[0]);
  return Model(base.inputs()[0], head);
}

Model build_model(const std::string& name, const Shape& input_shape, int classes,
                  const BuildOptions& options) {
  if (const std::string arch = application_architecture(name); !arch.empty())
    return build_application(arch, input_shape, classes, options);
  if (!options.include_top || !options.pooling.empty() || options.new_head) {
    throw ConfigError(
        "model: include_top, pooling and new heads are for the -imagenet models (Keras "
        "Applications), not '" +
        name + "'");
  }
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
