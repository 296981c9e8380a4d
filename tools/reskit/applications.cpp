// Keras Applications on the command line: a built-in model name with --weights FILE.h5 (loaded by
// layer name, every layer required) wherever a model file is taken; the input preprocessing of the
// model's family (caffe for ResNet, tf for ResNetV2) for pictures and datasets; ImageNet class
// names from a Keras imagenet_class_index.json.
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "reskit/data/loaders.h"
#include "reskit/error.h"
#include "reskit/io/h5.h"
#include "reskit/models/fine_tune.h"
#include "reskit/models/registry.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"

namespace reskit::cli {

namespace app = reskit::applications;

BuildOptions build_options(const AppFlags& f, bool new_head) {
  BuildOptions o;
  o.include_top = f.include_top;
  o.pooling = f.pooling == "none" ? "" : f.pooling;
  if (o.include_top && !o.pooling.empty())
    throw UsageError("--pooling: goes with --include-top false (the top pools itself), got " + f.pooling);
  o.new_head = new_head && !o.include_top;
  if (o.new_head && o.pooling.empty())
    throw UsageError(
        "--include-top false: expected --pooling avg or max to put a new classifier on, got none");
  return o;
}

void load_app_weights(Model& model, const AppFlags& f) {
  if (f.weights.empty()) return;
  load_weights(model, f.weights, {.by_name = true, .require_all = true});
}

bool is_model_name(const std::string& arg) {
  for (const auto& n : model_names())
    if (n == arg) return true;
  return false;
}

Model model_from_arg(const std::string& arg, const AppFlags& f, const Shape& input, int classes) {
  if (!is_model_name(arg)) {
    if (!f.weights.empty())
      throw UsageError("--weights: goes with a built-in model name, got the model file '" + arg + "'");
    return load_for_inference(arg);
  }
  if (f.weights.empty() && !application_architecture(arg).empty()) {
    std::cerr << "reskit: warning: " << arg << " without --weights has random weights\n";
  }
  Model model = build_model(arg, input, classes, build_options(f, false));
  load_app_weights(model, f);
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return model;
}

std::optional<app::PreprocessMode> preprocessing_for(const Model& model, const std::string& model_arg,
                                                     const std::string& flag) {
  if (flag == "none") return std::nullopt;
  if (flag != "auto") return app::preprocess_mode(flag);
  if (const std::string arch = application_architecture(model_arg); !arch.empty())
    return app::preprocess_mode_of(arch);
  // A saved model: a Keras Applications ResNet by its stem's names (conv1_conv; then conv1_bn in
  // the post-activation family, post_bn in the pre-activation one).
  auto has = [&](const char* name) {
    for (const auto& l : model.layers())
      if (l->name() == name) return true;
    return false;
  };
  if (has("conv1_conv") && has("conv1_bn")) return app::PreprocessMode::caffe;
  if (has("conv1_conv") && has("post_bn")) return app::PreprocessMode::tf;
  return std::nullopt;
}

Tensor picture_input(const std::string& path, const Shape& input, std::optional<app::PreprocessMode> mode) {
  if (!mode) return load_image(path, input[1], input[2], static_cast<int>(input[3]));
  Image image = read_image(path, 3);
  if (input[1] > 0 && input[2] > 0) image = resize_nearest(image, input[1], input[2]);
  Tensor x({1, image.rows, image.cols, 3}, DType::float32);
  float* p = x.data<float>();
  for (std::size_t i = 0; i < image.pixels.size(); ++i) p[i] = static_cast<float>(image.pixels[i]);
  return app::preprocess_input(x, *mode);
}

Dataset preprocess_dataset(const Dataset& data, app::PreprocessMode mode) {
  if (data.empty()) return data;
  if (data.sample_shape().size() != 3 || data.sample_shape()[2] != 3) {
    throw ConfigError(data.source() + ": " + app::preprocess_mode_name(mode) +
                      " preprocessing expects RGB pictures, got samples of shape " +
                      shape_str(data.sample_shape()));
  }
  // The batches' values are the pixels scaled by 1/255; back to [0, 255], then the model's mode.
  Tensor x = data.images(DType::float32);
  float* p = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) p[i] *= 255.0f;
  x = app::preprocess_input(x, mode);
  std::vector<float> values(x.data<float>(), x.data<float>() + x.numel());
  std::vector<std::int32_t> ids(static_cast<std::size_t>(data.size()));
  for (std::int64_t i = 0; i < data.size(); ++i) ids[static_cast<std::size_t>(i)] = data.label(i);
  Shape shape = data.sample_shape();
  shape.insert(shape.begin(), data.size());
  return Dataset::from_float(data.source(), shape, std::move(values), std::move(ids), data.num_classes(),
                             data.class_names());
}

void PreprocessedBatches::next_batch(std::int64_t step, Tensor& x, Tensor& y) {
  source_.next_batch(step, x, y);
  // The batches' values are the pixels scaled by 1/255; back to [0, 255], then the model's mode.
  if (x.dtype() == DType::float64) {
    for (double& v : x.values<double>()) v *= 255.0;
  } else {
    for (float& v : x.values<float>()) v *= 255.0f;
  }
  x = app::preprocess_input(x, mode_);
}

std::optional<app::ClassIndex> find_class_index(const std::string& flag, std::int64_t classes) {
  if (!flag.empty()) {
    app::ClassIndex index = app::read_class_index(flag);
    if (static_cast<std::int64_t>(index.size()) != classes) {
      throw ConfigError("--class-index: " + flag + " names " + std::to_string(index.size()) +
                        " classes, but the model has " + std::to_string(classes));
    }
    return index;
  }
  if (classes != 1000) return std::nullopt;
  // Where Keras's decode_predictions keeps its copy: $KERAS_HOME/models, else ~/.keras/models.
  namespace fs = std::filesystem;
  std::vector<fs::path> places;
  if (const char* home = std::getenv("KERAS_HOME")) places.push_back(fs::path(home) / "models");
  if (const char* home = std::getenv("HOME")) places.push_back(fs::path(home) / ".keras" / "models");
  for (const auto& dir : places) {
    std::error_code ec;
    const fs::path file = dir / "imagenet_class_index.json";
    if (fs::is_regular_file(file, ec)) return app::read_class_index(file.string());
  }
  return std::nullopt;
}

void apply_freezing(Model& model, const std::string& freeze, const std::string& unfreeze_from,
                    bool unfreeze_batch_norm) {
  if (freeze.empty() || freeze == "none") {
    if (unfreeze_from.empty()) {
      if (unfreeze_batch_norm) throw UsageError("--unfreeze-batch-norm: goes with --unfreeze-from, got none");
      return;
    }
  } else if (!unfreeze_from.empty()) {
    throw UsageError("--freeze base and --unfreeze-from: give one of them, got both");
  } else if (unfreeze_batch_norm) {
    throw UsageError("--unfreeze-batch-norm: goes with --unfreeze-from, got --freeze " + freeze);
  }
  const auto& layers = model.layers();
  std::size_t first_trainable = layers.size() - 1;  // --freeze base: the classifier only
  std::size_t frozen_norms = 0;
  if (!unfreeze_from.empty()) {
    try {
      first_trainable = reskit::unfreeze_from(model, unfreeze_from, {.batch_norm = unfreeze_batch_norm});
    } catch (const ConfigError& e) {
      throw ConfigError("--unfreeze-from: " + std::string(e.what()));
    }
    for (std::size_t i = first_trainable; i < layers.size(); ++i) frozen_norms += !layers[i]->trainable();
  } else {
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i]->set_trainable(i >= first_trainable);
  }
  std::cout << "Training layers " << layers[first_trainable]->name() << " onwards ("
            << layers.size() - first_trainable << " of " << layers.size() << " layers";
  if (frozen_norms > 0)
    std::cout << "; " << frozen_norms
              << " BatchNormalization layers among them stay frozen (--unfreeze-batch-norm trains them)";
  std::cout << "): " << model.count_trainable_params() << " of " << model.count_params()
            << " parameters trainable\n";
}

}  // namespace reskit::cli
