// reskit summary MODEL: prints the Keras summary table of a saved model (MODEL.h5, as Keras's
// load_model(...).summary()) or of a built-in model (a name, with --input H,W,C and --classes K;
// --weights FILE.h5 loads weights into it by layer name first, as load_weights(by_name=True)). The
// -imagenet models (Keras Applications) default to 224,224,3 and 1000 classes, and take
// --include-top and --pooling as keras.applications.ResNet50 does.
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
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
    std::string model, weights, input = "64,64,3";
    int classes = 6;
    AppFlags app;
  };
  auto args = std::make_shared<Args>();
  std::string names;
  for (const auto& n : model_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("model", args->model, "Model file (.h5) or model name (" + names + ")")->required();
  auto* input = cmd->add_option("--input", args->input,
                                "Input shape H,W,C of a model name (-imagenet models: 224,224,3)")
                    ->capture_default_str();
  auto* classes = cmd->add_option("--classes", args->classes,
                                  "Number of classes of a model name (-imagenet models: 1000)")
                      ->capture_default_str()
                      ->check(integer_at_least(1));
  auto* weights = cmd->add_option("--weights", args->weights,
                                  "Weights (.h5) loaded by layer name into the named model before printing")
                      ->check(existing_file());
  add_application_flags(*cmd, args->app, {.weights = false, .preprocess = false});
  cmd->callback([args, input, classes, weights] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool is_file = fs::is_regular_file(args->model, ec) || fs::path(args->model).extension() == ".h5";
    if (std::string name = args->model, problem = model_name()(name); !is_file && !problem.empty())
      throw UsageError("model: " + problem + ", or a model file (.h5)");
    if (is_file) {
      for (const auto* flag : {input, classes, weights}) {
        if (flag->count() > 0)
          throw UsageError(flag->get_name() + ": applies to a model name; '" + args->model +
                           "' is a model file, which holds its own shapes and weights");
      }
      load_model(args->model, {.compile = false}).summary(std::cout);
      return;
    }
    const bool keras_app = !application_architecture(args->model).empty();
    if (keras_app && input->count() == 0) args->input = "224,224,3";
    if (keras_app && classes->count() == 0) args->classes = 1000;
    Model model = build_model(args->model, parse_shape("--input", args->input), args->classes,
                              build_options(args->app, false));
    if (!args->weights.empty()) load_weights(model, args->weights, {.by_name = true});
    model.summary(std::cout);
  });
}

}  // namespace reskit::cli
