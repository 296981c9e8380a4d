// One Adam and one SGD step against the formulas; a fixed-seed tiny ResNet learns; the same
// seed gives bit-identical weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>

#include "kernels/kernels.h"
#include "reskit/reskit.h"

using namespace reskit;

namespace {
Param make_param(std::vector<double> w, std::vector<double> g) {
  Param p;
  p.name = "w/kernel:0";
  p.value =
      Tensor::from_values({static_cast<std::int64_t>(w.size())}, std::span<const double>(w), DType::float64);
  p.grad =
      Tensor::from_values({static_cast<std::int64_t>(g.size())}, std::span<const double>(g), DType::float64);
  return p;
}
}  // namespace

// Weights that carry a bfloat16 rounding (a mixed-precision Conv2D's kernel) keep it current
// through an Adam step, equal to the rounding of the updated weights; others get none.
TEST(Optimizers, AdamKeepsABf16RoundingCurrent) {
  Adam adam({.learning_rate = 0.01});
  Param with, without;
  for (Param* p : {&with, &without}) {
    p->name = p == &with ? "with/kernel:0" : "without/kernel:0";
    p->value = Tensor::from_values({5}, {0.5, -1.0, 2.0, 3e-3, 1e5}, DType::float32);
    p->grad = Tensor::from_values({5}, {0.1, -0.2, 0.3, 0.0, -4.0}, DType::float32);
  }
  std::fill_n(with.value.bf16_shadow_buffer(), 5, std::uint16_t{0});
  with.value.bf16_shadow_written();
  std::vector<Param*> ps{&with, &without};
  adam.apply(ps);
  EXPECT_EQ(without.value.bf16_shadow(), nullptr);
  const std::uint16_t* bits = with.value.bf16_shadow();
  ASSERT_NE(bits, nullptr);
  for (int i = 0; i < 5; ++i) {
    const float w = std::as_const(with.value).data<float>()[i];
    std::uint16_t want = 0;
    kernels::round_to_bf16(&w, 1, &want);
    EXPECT_EQ(bits[i], want) << "weight " << i << " = " << w;
  }
}

TEST(Optimizers, AdamTwoStepsMatchKerasFormula) {
  Adam adam({.learning_rate = 0.01, .beta_1 = 0.8, .beta_2 = 0.9, .epsilon = 1e-3});
  std::vector<double> w{0.5, -1.0, 2.0}, g1{0.1, -0.2, 0.3}, g2{-0.4, 0.0, 0.25};
  Param p = make_param(w, g1);
  std::vector<Param*> ps{&p};
  adam.apply(ps);
  p.grad = Tensor::from_values({3}, std::span<const double>(g2), DType::float64);
  adam.apply(ps);
  EXPECT_EQ(adam.iterations(), 2);
  for (int i = 0; i < 3; ++i) {
    double m = 0, v = 0, x = w[i];
    const double gs[2] = {g1[i], g2[i]};
    for (int t = 1; t <= 2; ++t) {
      const double alpha = 0.01 * std::sqrt(1 - std::pow(0.9, t)) / (1 - std::pow(0.8, t));
      m = 0.8 * m + 0.2 * gs[t - 1];
      v = 0.9 * v + 0.1 * gs[t - 1] * gs[t - 1];
      x -= alpha * m / (std::sqrt(v) + 1e-3);
    }
    EXPECT_NEAR(p.value.at(i), x, 1e-14) << i;
  }
}

TEST(Optimizers, SgdMomentumAndNesterovMatchKerasFormula) {
  for (bool nesterov : {false, true}) {
    SGD sgd({.learning_rate = 0.1, .momentum = 0.9, .nesterov = nesterov});
    Param p = make_param({1.0, -2.0}, {0.5, 0.25});
    std::vector<Param*> ps{&p};
    sgd.apply(ps);
    sgd.apply(ps);
    for (int i = 0; i < 2; ++i) {
      double x = i == 0 ? 1.0 : -2.0, g = i == 0 ? 0.5 : 0.25, v = 0;
      for (int t = 0; t < 2; ++t) {
        v = 0.9 * v - 0.1 * g;
        x += nesterov ? 0.9 * v - 0.1 * g : v;
      }
      EXPECT_NEAR(p.value.at(i), x, 1e-14) << "nesterov=" << nesterov;
    }
  }
  SGD plain({.learning_rate = 0.5});
  Param p = make_param({1.0}, {0.5});
  std::vector<Param*> ps{&p};
  plain.apply(ps);
  EXPECT_DOUBLE_EQ(p.value.at(0), 0.75);
}

TEST(Optimizers, RejectBadSettings) {
  EXPECT_THROW(Adam({.learning_rate = -1}), ConfigError);
  EXPECT_THROW(Adam({.beta_1 = 1.0}), ConfigError);
  EXPECT_THROW(SGD({.momentum = 1.5}), ConfigError);
}

namespace {
// A tiny ResNet: conv stem, one identity block, global pooling, softmax.
Model tiny_resnet() {
  Tensor in = Input({8, 8, 3});
  Tensor x = Conv2D(8, {3, 3}, {.padding = "same"})(in);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = identity_block(x, 3, {4, 4, 8}, "2", "a");
  x = GlobalAveragePooling2D()(x);
  x = Dense(2, {.activation = "softmax"})(x);
  return Model(in, x, "tiny_resnet");
}

// Class 1 when the left half of channel 0 is brighter than the right half.
void make_task(int n, std::uint64_t seed, Tensor& x, Tensor& y) {
  x = Tensor({n, 8, 8, 3});
  y = Tensor({n, 2});
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  for (int i = 0; i < n; ++i) {
    const int label = static_cast<int>(gen() % 2);
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 8; ++c)
        for (int ch = 0; ch < 3; ++ch) {
          double v = d(gen);
          if (ch == 0) v += ((c < 4) == (label == 1) ? 1.0 : -1.0);
          x.set(((i * 8 + r) * 8 + c) * 3 + ch, v);
        }
    y.set(i * 2 + label, 1.0);
  }
}

std::vector<double> train_tiny(std::uint64_t seed, double* final_accuracy) {
  clear_session();
  set_random_seed(seed);
  Model model = tiny_resnet();
  model.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.01}),
                std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  Tensor x, y, xt, yt;
  make_task(256, 1, x, y);
  make_task(128, 2, xt, yt);
  for (int epoch = 0; epoch < 4; ++epoch)
    for (int b = 0; b < 8; ++b) {
      Tensor xb({32, 8, 8, 3}), yb({32, 2});
      for (std::int64_t i = 0; i < xb.numel(); ++i) xb.set(i, x.at(b * xb.numel() + i));
      for (std::int64_t i = 0; i < yb.numel(); ++i) yb.set(i, y.at(b * yb.numel() + i));
      model.train_on_batch(xb, yb);
    }
  if (final_accuracy) *final_accuracy = model.test_on_batch(xt, yt).accuracy;
  std::vector<double> weights;
  for (Param* p : model.parameters()) {
    auto v = p->value.to_vector();
    weights.insert(weights.end(), v.begin(), v.end());
  }
  return weights;
}
}  // namespace

TEST(Training, TinyResNetLearnsAndIsDeterministic) {
  double accuracy = 0;
  auto first = train_tiny(7, &accuracy);
  EXPECT_GT(accuracy, 0.9);
  auto second = train_tiny(7, nullptr);
  EXPECT_EQ(first, second);  // same seed, data and threads: bit-identical weights
}

TEST(Training, UntrainedModelIsNearChance) {
  clear_session();
  set_random_seed(7);
  Model model = tiny_resnet();
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>());
  Tensor xt, yt;
  make_task(128, 2, xt, yt);
  StepResult r = model.test_on_batch(xt, yt);
  EXPECT_NEAR(r.loss, std::log(2.0), 0.2);
}
