// reskit predict MODEL IMAGE... [--top K]: the top classes of each picture (read and resized as
// Keras load_img does, scaled by 1/255); reskit predict MODEL --data D --output FILE.csv: the
// model's outputs for every sample, one row per sample, one column per class. MODEL may also be a
// built-in name with --weights (reskit predict resnet50-imagenet --weights
// resnet50_weights_tf_dim_ordering_tf_kernels.h5 picture.jpg --top 5): pictures then go through
// the family's preprocess_input, and ImageNet classes print as Keras's decode_predictions does
// (class id and name, from --class-index or Keras's cached imagenet_class_index.json).
#include <fmt/core.h>

#include <algorithm>
#include <iostream>
#include <numeric>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/runtime.h"
#include "reskit/training/callbacks.h"
#include "reskit/training/fit.h"

namespace reskit::cli {

void add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Classify pictures, or write the outputs for a dataset");
  struct Args {
    std::string model, data, output, input = "224,224,3";
    std::vector<std::string> images;
    int top = 3, batch_size = 32, threads = 0, classes = 1000;
    std::int64_t limit = 0;
    AppFlags app;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("model", a->model, "Model file (.h5), or a built-in model name with --weights")
      ->required()
      ->check(model_file_or_name());
  cmd->add_option("images", a->images, "PNG or JPEG pictures")->check(existing_file());
  cmd->add_option("--top", a->top, "Classes to show per picture")
      ->capture_default_str()
      ->check(integer_at_least(1));
  cmd->add_option("--data", a->data, "A dataset to predict (with --output)");
  cmd->add_option("--output", a->output, "CSV file for --data: one row per sample, one column per class")
      ->check(writable_file());
  add_batch_size_flag(*cmd, a->batch_size);
  add_threads_flag(*cmd, a->threads);
  add_limit_flag(*cmd, a->limit);
  cmd->add_option("--input", a->input, "With a model name: input shape H,W,C")->capture_default_str();
  cmd->add_option("--classes", a->classes, "With a model name: number of classes")
      ->capture_default_str()
      ->check(integer_at_least(1));
  add_application_flags(*cmd, a->app, {.top = false, .class_index = true});
  cmd->callback([a] {
    if (a->threads != 0) set_num_threads(a->threads);
    if (a->top < 1) throw UsageError("--top: expected a count >= 1, got " + std::to_string(a->top));
    if (a->images.empty() == a->data.empty()) {
      throw UsageError("predict: expected either pictures or --data (with --output), got " +
                       std::string(a->images.empty() ? "neither" : "both"));
    }
    if (!a->data.empty() && a->output.empty()) throw UsageError("predict: --data needs --output FILE.csv");
    Model model = model_from_arg(a->model, a->app, parse_shape("--input", a->input), a->classes);
    const auto mode = preprocessing_for(model, a->model, a->app.preprocess);
    const Shape& in = model.inputs()[0].shape();
    const std::int64_t k = model.outputs()[0].shape().back();
    std::vector<std::string> names = model.class_names();
    if (names.empty()) {
      if (auto index = find_class_index(a->app.class_index, k)) {
        for (const auto& [id, name] : *index) names.push_back(a->data.empty() ? id + " " + name : id);
      } else {
        if (k == 1000 && !a->images.empty()) {
          std::cerr
              << "reskit: warning: no ImageNet class names (give --class-index imagenet_class_index.json, "
                 "Keras's file); showing class numbers\n";
        }
        for (std::int64_t i = 0; i < k; ++i) names.push_back(std::to_string(i));
      }
    }
    if (!a->data.empty()) {
      LoadOptions lo;
      lo.rows = in[1], lo.cols = in[2], lo.channels = static_cast<int>(in[3]);
      Dataset data = limited(load_dataset(a->data, "test", lo), a->limit);
      if (mode) data = preprocess_dataset(data, *mode);
      Tensor out = predict(model, data, a->batch_size);
      std::string csv;
      for (std::int64_t j = 0; j < k; ++j) csv += (j ? "," : "") + names[j];
      csv += "\n";
      for (std::int64_t i = 0; i < out.dim(0); ++i) {
        for (std::int64_t j = 0; j < k; ++j) csv += fmt::format("{}{:.9g}", j ? "," : "", out.at(i * k + j));
        csv += "\n";
      }
      write_file_atomically(a->output, csv);
      fmt::print("Wrote {} rows of {} classes to {}\n", out.dim(0), k, a->output);
      return;
    }
    for (const auto& path : a->images) {
      Tensor x = picture_input(path, in, mode).to(model.dtype());
      Tensor p = model.forward(x, false);
      std::vector<std::int64_t> order(static_cast<std::size_t>(k));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](auto i, auto j) { return p.at(i) > p.at(j); });
      fmt::print("{}\n", path);
      for (int t = 0; t < std::min<std::int64_t>(a->top, k); ++t)
        fmt::print("  {:>2}. {:<20} {:.4f}\n", t + 1, names[static_cast<std::size_t>(order[t])],
                   p.at(order[t]));
    }
  });
}

}  // namespace reskit::cli
