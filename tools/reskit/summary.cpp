// reskit summary MODEL --input H,W,C --classes K: prints the Keras summary table. The -imagenet
// models (Keras Applications) default to 224,224,3 and 1000 classes, and take --include-top and
// --pooling as keras.applications.ResNet50 does.
#include <iostream>
#include <sstream>

#include "commands.h"
#include "reskit/error.h"
#include "reskit/models/registry.h"

namespace reskit::cli {

Shape parse_shape(const std::string& flag, const std::string& text) {
  Shape shape;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      std::size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v <= 0) throw std::invalid_argument(part);
      shape.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(flag + ": expected positive integers separated by commas (e.g. 64,64,3), got '" +
                       text + "'");
    }
  }
  if (shape.empty()) throw UsageError(flag + ": expected a shape such as 64,64,3, got '" + text + "'");
  return shape;
}

void add_summary_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("summary", "Print a model's Keras summary table");
  struct Args {
    std::string model, input = "64,64,3";
    int classes = 6;
    AppFlags app;
  };
  auto args = std::make_shared<Args>();
  std::string names;
  for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("model", args->model, "Model name (" + names + ")")->required()->check(model_name());
  auto* input = cmd->add_option("--input", args->input, "Input shape H,W,C (-imagenet models: 224,224,3)")
                    ->capture_default_str();
  auto* classes = cmd->add_option("--classes", args->classes, "Number of classes (-imagenet models: 1000)")
                      ->capture_default_str()
                      ->check(integer_at_least(1));
  add_application_flags(*cmd, args->app, {.weights = false, .preprocess = false});
  cmd->callback([args, input, classes] {
    const bool keras_app = !application_architecture(args->model).empty();
    if (keras_app && input->count() == 0) args->input = "224,224,3";
    if (keras_app && classes->count() == 0) args->classes = 1000;
    Model model = build_model(args->model, parse_shape("--input", args->input), args->classes,
                              build_options(args->app, false));
    model.summary(std::cout);
  });
}

}  // namespace reskit::cli
