// A tiny learnable problem for the training tests: two classes, the sign of the mean of channel 0
// of a 4x4x2 image, and a small compiled model (Conv2D, BatchNormalization, ReLU, pooling,
// softmax) that learns it in a few steps. Header-only; the tests of fit and of checkpoints share it.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "reskit/reskit.h"

namespace reskit_test {

inline reskit::Dataset make_data(int n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(static_cast<std::size_t>(n) * 4 * 4 * 2);
  std::vector<std::int32_t> labels(n);
  for (int i = 0; i < n; ++i) {
    labels[i] = static_cast<std::int32_t>(gen() % 2);
    for (int j = 0; j < 32; ++j) v[i * 32 + j] = d(gen) + (j % 2 == 0 ? (labels[i] ? 0.8f : -0.8f) : 0.0f);
  }
  return reskit::Dataset::from_float("synthetic", {n, 4, 4, 2}, std::move(v), std::move(labels), 2,
                                     {"neg", "pos"});
}

inline reskit::Model small_model() {
  using namespace reskit;
  clear_session();
  set_random_seed(11);
  Tensor in = Input({4, 4, 2});
  Tensor x = Conv2D(4, {3, 3}, {.padding = "same"})(in);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(2, {.activation = "softmax"})(x);
  Model m(in, x, "small");
  m.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.02}),
            std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return m;
}

}  // namespace reskit_test
