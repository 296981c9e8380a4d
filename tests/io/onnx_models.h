// The models the ONNX tests export: a small ResNet that uses every layer and option ONNX export
// covers, a fully convolutional model with a 4-D softmax output, and the notebook's ResNet-50;
// weights made non-trivial and batch-norm statistics calibrated so that outputs are not saturated.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "reskit/reskit.h"

namespace reskit::onnx_test {

// ZeroPadding2D (asymmetric), Conv2D "same" with stride 2, MaxPooling2D "same", a convolutional
// block (f = 2: an even "same" kernel, stride 2) and an identity block, AveragePooling2D "same"
// + Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, Dense with tanh/relu (no bias)/sigmoid,
// a three-input Add, Dropout and a Dense softmax.
inline Model small_resnet() {
  Tensor in = Input({17, 17, 3}, {.name = "image"});
  Tensor x = ZeroPadding2D(std::array<std::array<int, 2>, 2>{{{1, 2}, {2, 1}}}, {.name = "pad"})(in);
  x = Conv2D(8, {3, 3}, {.strides = {2, 2}, .padding = "same", .name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({3, 3}, {.strides = std::array<int, 2>{2, 2}, .padding = "same", .name = "pool1"})(x);
  x = convolutional_block(x, 2, {4, 4, 16}, 2, "2", "a");
  x = identity_block(x, 2, {4, 4, 16}, "2", "b");
  Tensor a =
      AveragePooling2D({2, 2}, {.strides = std::array<int, 2>{1, 1}, .padding = "same", .name = "avg"})(x);
  a = Flatten()(a);
  a = Dense(12, {.activation = "tanh", .name = "fc_a"})(a);
  Tensor b = GlobalAveragePooling2D()(x);
  b = Dense(12, {.activation = "relu", .use_bias = false, .name = "fc_b"})(b);
  Tensor c = GlobalMaxPooling2D()(x);
  c = Dense(12, {.activation = "sigmoid", .name = "fc_c"})(c);
  Tensor y = Add()({a, b, c});
  y = Dropout(0.3)(y);
  y = Dense(6, {.activation = "softmax", .name = "fc6"})(y);
  return Model(in, y, "small_resnet");
}

// A 4-D output: conv "same" with a fused softmax over the channels, then a conv with a fused
// relu and an Activation("softmax") on a 4-D tensor.
inline Model conv_softmax() {
  Tensor in = Input({6, 7, 3});
  Tensor x = Conv2D(5, {2, 3}, {.padding = "same", .activation = "relu", .name = "c1"})(in);
  x = Conv2D(4, {1, 1}, {.activation = "linear", .name = "c2"})(x);
  x = Activation("softmax", {.name = "probs"})(x);
  return Model(in, x, "conv_softmax");
}

// The preprocessing and activation layers: Rescaling, Normalization (per-channel weights),
// ReLU(max_value) (a Clip), LeakyReLU, a channel Concatenate, a 1x1 conv and a Softmax layer over
// the channels.
inline Model preprocessing() {
  Tensor in = Input({5, 6, 3}, {.name = "image"});
  Tensor x = Rescaling(4.0, {.offset = {-2.0}})(in);  // the sample inputs in [0, 1) to [-2, 2)
  auto norm = Normalization();
  x = norm(x);
  for (std::int64_t c = 0; c < 3; ++c) {
    norm->mean().value.set(c, 0.1 * static_cast<double>(c));
    norm->variance().value.set(c, 0.05 + 0.1 * static_cast<double>(c));
  }
  Tensor a = ReLU({.max_value = 1.0})(x);
  Tensor b = LeakyReLU({.alpha = 0.2})(x);
  x = Concatenate()(std::vector<Tensor>{a, b});
  x = Conv2D(4, {1, 1}, {.name = "mix"})(x);
  return Model(in, Softmax()(x), "preprocessing");
}

// Deterministic values in [lo, hi).
inline void fill_uniform(Tensor& t, double lo, double hi, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    t.set(i, lo + (hi - lo) * static_cast<double>(s >> 11) / 9007199254740992.0);
  }
}

// Non-trivial biases and batch-norm scales, then moving statistics set to the batch statistics of
// x (a training-mode forward from zero moving statistics leaves (1 - momentum) * batch in them),
// so that every batch norm sees data like a trained model's.
inline void make_weights_interesting(Model& model, const Tensor& x) {
  std::uint64_t seed = 7;
  for (const auto& layer : model.layers()) {
    for (auto& p : layer->params()) {
      const std::string& n = p.name;
      if (n.find("/bias:0") != std::string::npos) fill_uniform(p.value, -0.3, 0.3, ++seed);
      if (n.find("/gamma:0") != std::string::npos) fill_uniform(p.value, 0.5, 1.5, ++seed);
      if (n.find("/beta:0") != std::string::npos) fill_uniform(p.value, -0.5, 0.5, ++seed);
      if (n.find("/moving_") != std::string::npos) p.value.fill(0.0);
    }
  }
  model.forward(x, true);
  for (const auto& layer : model.layers()) {
    auto* bn = dynamic_cast<BatchNormalizationLayer*>(layer.get());
    if (!bn) continue;
    const double scale = 1.0 / (1.0 - bn->options().momentum);
    for (const char* w : {"moving_mean", "moving_variance"}) {
      Tensor& v = bn->param(w).value;
      for (std::int64_t i = 0; i < v.numel(); ++i) v.set(i, v.at(i) * scale);
    }
  }
}

inline Tensor sample_input(const Shape& shape_without_batch, std::int64_t batch, std::uint64_t seed) {
  Shape s{batch};
  s.insert(s.end(), shape_without_batch.begin(), shape_without_batch.end());
  Tensor x(s);
  fill_uniform(x, 0.0, 1.0, seed);
  return x;
}

}  // namespace reskit::onnx_test
