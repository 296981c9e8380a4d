// The Keras Applications ResNets (keras/applications/resnet.py, resnet_v2.py), written from their
// layer lists: names, paddings, epsilons and block layouts are Keras's so that its weight files
// load by name. Also preprocess_input and decode_predictions (keras/applications/imagenet_utils.py).
#include "reskit/models/applications.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <type_traits>

#include "reskit/error.h"
#include "reskit/layers/conv.h"
#include "reskit/layers/core.h"
#include "reskit/layers/normalization.h"
#include "reskit/layers/pooling.h"

namespace reskit::applications {

namespace {

// Keras Applications' BatchNormalization epsilon (not the layer's default 1e-3).
constexpr double kEpsilon = 1.001e-5;

Tensor bn(const Tensor& x, const std::string& name) {
  return BatchNormalization({.axis = 3, .epsilon = kEpsilon, .name = name})(x);
}

Tensor relu(const Tensor& x, const std::string& name) { return Activation("relu", {.name = name})(x); }

Tensor conv(const Tensor& x, int filters, int k, int stride, bool use_bias, const std::string& name,
            const std::string& padding = "valid") {
  return Conv2D(filters, {k, k},
                {.strides = {stride, stride}, .padding = padding, .use_bias = use_bias, .name = name})(x);
}

// resnet.py block1: post-activation bottleneck; the stride in the first 1x1 convolution.
Tensor block1(const Tensor& x, int filters, int stride, bool conv_shortcut, const std::string& name) {
  Tensor shortcut = x;
  if (conv_shortcut) shortcut = bn(conv(x, 4 * filters, 1, stride, true, name + "_0_conv"), name + "_0_bn");
  Tensor y = relu(bn(conv(x, filters, 1, stride, true, name + "_1_conv"), name + "_1_bn"), name + "_1_relu");
  y = relu(bn(conv(y, filters, 3, 1, true, name + "_2_conv", "same"), name + "_2_bn"), name + "_2_relu");
  y = bn(conv(y, 4 * filters, 1, 1, true, name + "_3_conv"), name + "_3_bn");
  y = Add({.name = name + "_add"})({shortcut, y});
  return relu(y, name + "_out");
}

Tensor stack1(Tensor x, int filters, int blocks, int stride1, const std::string& name) {
  x = block1(x, filters, stride1, true, name + "_block1");
  for (int i = 2; i <= blocks; ++i) x = block1(x, filters, 1, false, name + "_block" + std::to_string(i));
  return x;
}

// resnet.py block2: pre-activation bottleneck; the conv shortcut and the first 1x1 convolution
// read the pre-activation, an identity shortcut reads x (subsampled by a 1x1 max pooling where the
// block strides); the stride is in the 3x3 convolution, after an explicit padding of 1.
Tensor block2(const Tensor& x, int filters, int stride, bool conv_shortcut, const std::string& name) {
  Tensor preact = relu(bn(x, name + "_preact_bn"), name + "_preact_relu");
  Tensor shortcut = x;
  if (conv_shortcut) {
    shortcut = conv(preact, 4 * filters, 1, stride, true, name + "_0_conv");
  } else if (stride > 1) {
    shortcut = MaxPooling2D({1, 1}, {.strides = std::array<int, 2>{stride, stride}})(x);
  }
  Tensor y = relu(bn(conv(preact, filters, 1, 1, false, name + "_1_conv"), name + "_1_bn"), name + "_1_relu");
  y = ZeroPadding2D(std::array<int, 2>{1, 1}, {.name = name + "_2_pad"})(y);
  y = relu(bn(conv(y, filters, 3, stride, false, name + "_2_conv"), name + "_2_bn"), name + "_2_relu");
  y = conv(y, 4 * filters, 1, 1, true, name + "_3_conv");
  return Add({.name = name + "_out"})({shortcut, y});
}

Tensor stack2(Tensor x, int filters, int blocks, int stride1, const std::string& name) {
  x = block2(x, filters, 1, true, name + "_block1");
  for (int i = 2; i < blocks; ++i) x = block2(x, filters, 1, false, name + "_block" + std::to_string(i));
  return block2(x, filters, stride1, false, name + "_block" + std::to_string(blocks));
}

struct Architecture {
  std::string name;
  bool preact;
  std::array<int, 4> blocks;
};

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> list = {
      {"resnet50", false, {3, 4, 6, 3}},    {"resnet101", false, {3, 4, 23, 3}},
      {"resnet152", false, {3, 8, 36, 3}},  {"resnet50v2", true, {3, 4, 6, 3}},
      {"resnet101v2", true, {3, 4, 23, 3}}, {"resnet152v2", true, {3, 8, 36, 3}},
  };
  return list;
}

// resnet.py ResNet(): the stem, the four stacks, then the top or the pooling.
Model build_resnet(const Architecture& arch, const ApplicationOptions& o) {
  const std::string& where = arch.name;
  if (o.input_shape.size() != 3 || o.input_shape[2] != 3) {
    throw ShapeError(where + ": expected input_shape (rows, cols, 3), got " + shape_str(o.input_shape));
  }
  if (o.input_shape[0] < 32 || o.input_shape[1] < 32) {
    throw ShapeError(where + ": expected an input of at least 32x32 (Keras's minimum), got " +
                     shape_str(o.input_shape));
  }
  if (o.include_top && o.classes <= 0)
    throw ConfigError(where + ": expected classes > 0, got " + std::to_string(o.classes));
  if (o.pooling != "" && o.pooling != "avg" && o.pooling != "max")
    throw ConfigError(where + ": expected pooling '', 'avg' or 'max', got '" + o.pooling + "'");
  if (o.classifier_activation != "softmax" && o.classifier_activation != "linear") {
    throw ConfigError(where + ": expected classifier_activation 'softmax' or 'linear', got '" +
                      o.classifier_activation + "'");
  }
  Tensor input = Input(o.input_shape);
  Tensor x = ZeroPadding2D(std::array<int, 2>{3, 3}, {.name = "conv1_pad"})(input);
  x = conv(x, 64, 7, 2, true, "conv1_conv");
  if (!arch.preact) x = relu(bn(x, "conv1_bn"), "conv1_relu");
  x = ZeroPadding2D(std::array<int, 2>{1, 1}, {.name = "pool1_pad"})(x);
  x = MaxPooling2D({3, 3}, {.strides = std::array<int, 2>{2, 2}, .name = "pool1_pool"})(x);
  const int filters[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    const std::string name = "conv" + std::to_string(s + 2);
    if (arch.preact) {
      x = stack2(x, filters[s], arch.blocks[s], s == 3 ? 1 : 2, name);
    } else {
      x = stack1(x, filters[s], arch.blocks[s], s == 0 ? 1 : 2, name);
    }
  }
  if (arch.preact) x = relu(bn(x, "post_bn"), "post_relu");
  if (o.include_top) {
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
    x = Dense(o.classes, {.activation = o.classifier_activation, .name = "predictions"})(x);
  } else if (o.pooling == "avg") {
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  } else if (o.pooling == "max") {
    x = GlobalMaxPooling2D({.name = "max_pool"})(x);
  }
  return Model(input, x, arch.name);
}

}  // namespace

const std::vector<std::string>& architecture_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& a : architectures()) n.push_back(a.name);
    return n;
  }();
  return names;
}

Model build(const std::string& architecture, const ApplicationOptions& options) {
  for (const auto& a : architectures())
    if (a.name == architecture) return build_resnet(a, options);
  std::string known;
  for (const auto& n : architecture_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("applications: unknown architecture '" + architecture + "'; expected one of " + known);
}

Model resnet50(const ApplicationOptions& options) { return build("resnet50", options); }
Model resnet101(const ApplicationOptions& options) { return build("resnet101", options); }
Model resnet152(const ApplicationOptions& options) { return build("resnet152", options); }
Model resnet50_v2(const ApplicationOptions& options) { return build("resnet50v2", options); }
Model resnet101_v2(const ApplicationOptions& options) { return build("resnet101v2", options); }
Model resnet152_v2(const ApplicationOptions& options) { return build("resnet152v2", options); }

// ---------------------------------------------------------------- preprocess_input

PreprocessMode preprocess_mode(const std::string& word) {
  if (word == "caffe") return PreprocessMode::caffe;
  if (word == "tf") return PreprocessMode::tf;
  if (word == "torch") return PreprocessMode::torch;
  throw ConfigError("preprocess_input: expected mode caffe, tf or torch, got '" + word + "'");
}

std::string preprocess_mode_name(PreprocessMode mode) {
  switch (mode) {
    case PreprocessMode::caffe:
      return "caffe";
    case PreprocessMode::tf:
      return "tf";
    case PreprocessMode::torch:
      return "torch";
  }
  return "?";
}

PreprocessMode preprocess_mode_of(const std::string& architecture) {
  for (const auto& a : architectures())
    if (a.name == architecture) return a.preact ? PreprocessMode::tf : PreprocessMode::caffe;
  throw ConfigError("preprocess_mode_of: unknown architecture '" + architecture + "'");
}

Tensor preprocess_input(const Tensor& x, PreprocessMode mode) {
  if (x.rank() < 1 || x.shape().back() != 3) {
    throw ShapeError("preprocess_input: expected RGB pixels with 3 channels last, got shape " +
                     shape_str(x.shape()));
  }
  if (x.dtype() != DType::float32 && x.dtype() != DType::float64) {
    throw ConfigError("preprocess_input: expected float32 or float64 pixels");
  }
  Tensor y = x.clone();
  const std::int64_t pixels = y.numel() / 3;
  auto apply = [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (std::int64_t i = 0; i < pixels; ++i) {
      T* c = p + 3 * i;
      switch (mode) {
        case PreprocessMode::caffe: {
          // 'RGB' -> 'BGR', then zero-centre each channel by the ImageNet mean (in BGR order).
          const T r = c[0], g = c[1], b = c[2];
          c[0] = b - T(103.939);
          c[1] = g - T(116.779);
          c[2] = r - T(123.68);
          break;
        }
        case PreprocessMode::tf:
          for (int k = 0; k < 3; ++k) c[k] = c[k] / T(127.5) - T(1);
          break;
        case PreprocessMode::torch: {
          constexpr double mean[3] = {0.485, 0.456, 0.406}, stdev[3] = {0.229, 0.224, 0.225};
          for (int k = 0; k < 3; ++k) c[k] = (c[k] / T(255) - T(mean[k])) / T(stdev[k]);
          break;
        }
      }
    }
  };
  if (y.dtype() == DType::float32) {
    apply(y.data<float>());
  } else {
    apply(y.data<double>());
  }
  return y;
}

// ---------------------------------------------------------------- decode_predictions

ClassIndex parse_class_index(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw ConfigError(where + ": expected JSON like Keras's imagenet_class_index.json, got: " + e.what());
  }
  if (!j.is_object() || j.empty()) {
    throw ConfigError(where + ": expected an object {\"0\": [\"n01440764\", \"tench\"], ...}, got " +
                      std::string(j.type_name()));
  }
  ClassIndex index(j.size());
  std::vector<bool> seen(j.size(), false);
  for (const auto& [key, value] : j.items()) {
    std::size_t used = 0;
    long long i = -1;
    try {
      i = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || i < 0 || i >= static_cast<long long>(j.size())) {
      throw ConfigError(where + ": expected class numbers 0 to " + std::to_string(j.size() - 1) +
                        " as keys, got '" + key + "'");
    }
    if (!value.is_array() || value.size() != 2 || !value[0].is_string() || !value[1].is_string()) {
      throw ConfigError(where + ": class " + key + ": expected [\"<class id>\", \"<name>\"], got " +
                        value.dump());
    }
    seen[static_cast<std::size_t>(i)] = true;
    index[static_cast<std::size_t>(i)] = {value[0].get<std::string>(), value[1].get<std::string>()};
  }
  for (std::size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) throw ConfigError(where + ": class " + std::to_string(i) + " is missing");
  return index;
}

ClassIndex read_class_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the class index (imagenet_class_index.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_class_index(ss.str(), path);
  } catch (const ConfigError& e) {
    throw FileError(e.what());
  }
}

std::vector<std::vector<Prediction>> decode_predictions(const Tensor& preds, const ClassIndex& index,
                                                        int top) {
  if (preds.rank() != 2 || preds.dim(1) != static_cast<std::int64_t>(index.size())) {
    throw ShapeError("decode_predictions: expected predictions of shape (samples, " +
                     std::to_string(index.size()) + "), got " + shape_str(preds.shape()));
  }
  if (top < 1) throw ConfigError("decode_predictions: expected top >= 1, got " + std::to_string(top));
  const std::int64_t n = preds.dim(0), k = preds.dim(1);
  Tensor p = preds.to(DType::float64);
  const double* v = p.data<double>();
  std::vector<std::vector<Prediction>> out;
  for (std::int64_t s = 0; s < n; ++s) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    const double* row = v + s * k;
    const auto count = std::min<std::int64_t>(top, k);
    std::partial_sort(order.begin(), order.begin() + count, order.end(),
                      [row](auto a, auto b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::vector<Prediction> best;
    for (std::int64_t t = 0; t < count; ++t) {
      const auto c = static_cast<std::size_t>(order[static_cast<std::size_t>(t)]);
      best.push_back({index[c].first, index[c].second, row[c]});
    }
    out.push_back(std::move(best));
  }
  return out;
}

}  // namespace reskit::applications
