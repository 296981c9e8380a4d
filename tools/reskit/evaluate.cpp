// reskit evaluate MODEL --data D: the loss and accuracy of a saved model on a dataset, printed as
// Keras's evaluate prints them (a progress bar line ending in "- loss: L - accuracy: A"). MODEL
// may be a built-in name with --weights; a Keras Applications model's data goes through its
// family's preprocess_input (--preprocess).
#include <memory>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/runtime.h"
#include "reskit/training/fit.h"

namespace reskit::cli {

Dataset limited(const Dataset& data, std::int64_t limit) {
  if (limit < 0) throw UsageError("--limit: expected a count >= 0, got " + std::to_string(limit));
  return limit > 0 ? data.subset(0, std::min(limit, data.size())) : data;
}

Model load_for_inference(const std::string& path) {
  Model model = load_model(path);
  if (!model.compiled())
    model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return model;
}

void add_evaluate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("evaluate", "Loss and accuracy of a saved model on a dataset");
  struct Args {
    std::string model, data, input = "224,224,3";
    int batch_size = 32, threads = 0, classes = 1000;
    std::int64_t limit = 0;
    AppFlags app;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "Model file (.h5), or a built-in model name with --weights")
      ->required()
      ->check(model_file_or_name());
  cmd->add_option("--data", a->data, "Data (default split: test)")->required();
  add_batch_size_flag(*cmd, a->batch_size);
  add_threads_flag(*cmd, a->threads);
  add_limit_flag(*cmd, a->limit);
  cmd->add_option("--input", a->input, "With a model name: input shape H,W,C")->capture_default_str();
  cmd->add_option("--classes", a->classes, "With a model name: number of classes")
      ->capture_default_str()
      ->check(integer_at_least(1));
  add_application_flags(*cmd, a->app, {.top = false});
  cmd->callback([a] {
    if (a->threads != 0) set_num_threads(a->threads);
    Model model = model_from_arg(a->model, a->app, parse_shape("--input", a->input), a->classes);
    const auto mode = preprocessing_for(model, a->model, a->app.preprocess);
    const Shape& in = model.inputs()[0].shape();
    LoadOptions lo;
    lo.rows = in[1], lo.cols = in[2], lo.channels = static_cast<int>(in[3]);
    Dataset data = limited(load_dataset(a->data, "test", lo), a->limit);
    if (mode) data = preprocess_dataset(data, *mode);
    evaluate(model, data, {.batch_size = a->batch_size, .verbose = 1});
  });
}

}  // namespace reskit::cli
