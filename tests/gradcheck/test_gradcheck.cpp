// Float64 finite-difference gradient checks: every layer, for inputs and parameters, in
// training mode, and whole identity and convolutional blocks.
#include <gtest/gtest.h>

#include "gradcheck/gradcheck.h"

using namespace reskit;
using reskit::testing::check_layer;
using reskit::testing::check_model;
using reskit::testing::random_tensor;

namespace {
class GradCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    set_floatx(DType::float64);
    set_random_seed(3);
  }
  void TearDown() override { set_floatx(DType::float32); }
};

// Conv and Dense weights are glorot-initialised; make biases non-zero so they matter.
void randomize_params(Layer& layer, std::uint64_t seed) {
  for (auto& p : layer.params()) {
    Tensor r = random_tensor(p.value.shape(), seed++, 0.5);
    for (std::int64_t i = 0; i < r.numel(); ++i) p.value.set(i, p.value.at(i) + r.at(i) * 0.1);
  }
}
}  // namespace

TEST_F(GradCheck, ZeroPadding2D) {
  ZeroPadding2D pad(std::array<std::array<int, 2>, 2>{{{1, 2}, {0, 3}}});
  check_layer("ZeroPadding2D", *pad, {random_tensor({2, 3, 4, 2}, 1)});
}

TEST_F(GradCheck, Conv2DValidStride1) {
  Conv2D conv(4, {3, 3});
  check_layer("Conv2D valid", *conv, {random_tensor({2, 5, 6, 3}, 2)});
}

TEST_F(GradCheck, Conv2DSameEvenKernelStride2) {
  Conv2D conv(3, {2, 2}, {.strides = {2, 2}, .padding = "same"});
  check_layer("Conv2D same k2 s2", *conv, {random_tensor({2, 5, 5, 2}, 3)});
}

TEST_F(GradCheck, Conv2DSame7x7WithReluNoBias) {
  Conv2D conv(2, {7, 7}, {.strides = {2, 2}, .padding = "same", .activation = "relu", .use_bias = false});
  check_layer("Conv2D 7x7 relu", *conv, {random_tensor({1, 9, 8, 3}, 4)});
}

TEST_F(GradCheck, Conv2DPointwiseStride2) {
  Conv2D conv(13, {1, 1}, {.strides = {2, 2}});
  randomize_params(*conv, 40);
  check_layer("Conv2D 1x1 s2", *conv, {random_tensor({2, 4, 4, 13}, 5)});
}

TEST_F(GradCheck, BatchNormalizationTraining4D) {
  BatchNormalization bn;
  bn(random_tensor({1, 1, 1, 3}, 0));
  randomize_params(*bn, 50);
  check_layer("BatchNormalization 4-D", *bn, {random_tensor({3, 2, 3, 3}, 6, 2.0)});
}

TEST_F(GradCheck, BatchNormalizationTraining2D) {
  BatchNormalization bn;
  bn(random_tensor({1, 5}, 0));
  randomize_params(*bn, 60);
  check_layer("BatchNormalization 2-D", *bn, {random_tensor({7, 5}, 7)});
}

TEST_F(GradCheck, Activations) {
  for (const char* name : {"relu", "softmax", "sigmoid", "tanh", "linear"}) {
    Activation act(name);
    check_layer(std::string("Activation ") + name, *act, {random_tensor({3, 2, 5}, 8)});
  }
}

TEST_F(GradCheck, AddThreeInputs) {
  Add add;
  check_layer("Add", *add,
              {random_tensor({2, 3, 2}, 9), random_tensor({2, 3, 2}, 10), random_tensor({2, 3, 2}, 11)});
}

TEST_F(GradCheck, MaxPooling2DValidAndSame) {
  MaxPooling2D valid({3, 3}, {.strides = std::array<int, 2>{2, 2}});
  check_layer("MaxPooling2D valid", *valid, {random_tensor({2, 7, 7, 3}, 12)});
  MaxPooling2D same({2, 2}, {.strides = std::array<int, 2>{2, 2}, .padding = "same"});
  check_layer("MaxPooling2D same", *same, {random_tensor({1, 5, 3, 2}, 13)});
}

TEST_F(GradCheck, AveragePooling2DValidAndSame) {
  AveragePooling2D valid({2, 2});
  check_layer("AveragePooling2D valid", *valid, {random_tensor({2, 4, 5, 3}, 14)});
  AveragePooling2D same({3, 3}, {.strides = std::array<int, 2>{2, 2}, .padding = "same"});
  check_layer("AveragePooling2D same", *same, {random_tensor({1, 5, 4, 2}, 15)});
}

TEST_F(GradCheck, GlobalPooling) {
  GlobalMaxPooling2D gmax;
  check_layer("GlobalMaxPooling2D", *gmax, {random_tensor({2, 3, 4, 5}, 16)});
  GlobalAveragePooling2D gavg;
  check_layer("GlobalAveragePooling2D", *gavg, {random_tensor({2, 3, 4, 5}, 17)});
}

TEST_F(GradCheck, Flatten) {
  Flatten flat;
  check_layer("Flatten", *flat, {random_tensor({2, 3, 2, 2}, 18)});
}

TEST_F(GradCheck, DenseLinearAndSoftmax) {
  Dense lin(4);
  randomize_params(*lin, 70);
  check_layer("Dense linear", *lin, {random_tensor({3, 6}, 19)});
  Dense soft(5, {.activation = "softmax"});
  randomize_params(*soft, 80);
  check_layer("Dense softmax", *soft, {random_tensor({3, 6}, 20)});
}

// Dropout's mask is drawn anew each training call, so check its backward against the mask it
// used: dx = dy · y / x elementwise, and the identity in inference.
TEST_F(GradCheck, DropoutBackwardUsesItsMask) {
  Dropout drop(0.4, {.seed = 5});
  Tensor x = random_tensor({4, 50}, 21);
  Tensor y = drop->forward({x}, true);
  Tensor g = random_tensor(x.shape(), 22);
  Tensor dx = drop->backward(g)[0];
  int dropped = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double scale = y.at(i) / x.at(i);
    EXPECT_TRUE(std::abs(scale) < 1e-12 || std::abs(scale - 1.0 / 0.6) < 1e-12) << scale;
    dropped += std::abs(scale) < 1e-12;
    EXPECT_NEAR(dx.at(i), g.at(i) * scale, 1e-12);
  }
  EXPECT_GT(dropped, 40);
  EXPECT_LT(dropped, 120);
  Tensor yi = drop->forward({x}, false);
  EXPECT_EQ(yi.to_vector(), x.to_vector());
}

TEST_F(GradCheck, IdentityBlock) {
  Tensor in = Input({4, 4, 6});
  Model model(in, identity_block(in, 2, {2, 4, 6}, "1", "a"), "id_block");
  for (auto& l : model.layers()) randomize_params(*l, 90);
  // Whole blocks sum many terms: round-off in f is ~1e-14, i.e. ~1e-8 after dividing by the step.
  check_model("identity_block", model, random_tensor({3, 4, 4, 6}, 23), {.rtol = 1e-5, .atol = 1e-7});
}

TEST_F(GradCheck, ConvolutionalBlock) {
  Tensor in = Input({4, 4, 6});
  Model model(in, convolutional_block(in, 2, {2, 4, 6}, 2, "1", "a"), "conv_block");
  for (auto& l : model.layers()) randomize_params(*l, 100);
  check_model("convolutional_block", model, random_tensor({3, 4, 4, 6}, 24), {.rtol = 1e-5, .atol = 1e-7});
}

// The loss gradient from the logits of a softmax head matches finite differences of the loss.
TEST_F(GradCheck, CrossEntropyFromLogitsThroughModel) {
  Tensor in = Input({3, 3, 2});
  Tensor x = Conv2D(3, {2, 2}, {.padding = "same"})(in);
  x = BatchNormalization()(x);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(4, {.activation = "softmax", .name = "head"})(x);
  Model model(in, x);
  Tensor input = random_tensor({5, 3, 3, 2}, 25);
  Tensor target({5, 4}, DType::float64);
  for (int i = 0; i < 5; ++i) target.set(i * 4 + (i * 3) % 4, 1.0);
  CategoricalCrossentropy ce;
  auto& head = *model.get_layer("head");
  auto loss = [&] {
    model.forward(input, true);
    return ce.compute_from_logits(head.logits(), target, nullptr);
  };
  loss();
  Tensor grad({5, 4}, DType::float64);
  ce.compute_from_logits(head.logits(), target, &grad);
  Tensor dx = model.backward(grad, {.from_logits = true})[0];
  // The probability path gives the same gradient.
  Tensor probs = model.forward(input, true);
  Tensor grad_p({5, 4}, DType::float64);
  EXPECT_NEAR(ce.compute(probs, target, &grad_p), loss(), 1e-9);
  Tensor dx_p = model.backward(grad_p, {.from_logits = false})[0];
  for (std::int64_t i = 0; i < dx.numel(); i += 3) {
    const double h = 1e-6, v = input.at(i);
    input.set(i, v + h);
    double fp = loss();
    input.set(i, v - h);
    double fm = loss();
    input.set(i, v);
    EXPECT_NEAR(dx.at(i), (fp - fm) / (2 * h), 1e-7);
    EXPECT_NEAR(dx_p.at(i), dx.at(i), 1e-9);
  }
}

// Keras normalises probabilities by their row sum before the log: the gradient of that path
// against finite differences, for outputs that do not sum to 1.
TEST_F(GradCheck, CrossEntropyFromProbabilitiesNormalises) {
  CategoricalCrossentropy ce;
  Tensor y = Tensor::from_values({2, 3}, {0.2, 0.5, 0.9, 0.3, 0.3, 0.1}, DType::float64);
  Tensor t = Tensor::from_values({2, 3}, {0, 1, 0, 0, 0, 1}, DType::float64);
  Tensor grad({2, 3}, DType::float64);
  const double loss = ce.compute(y, t, &grad);
  EXPECT_NEAR(loss, -(std::log(0.5 / 1.6) + std::log(0.1 / 0.7)) / 2, 1e-12);
  for (std::int64_t i = 0; i < 6; ++i) {
    const double h = 1e-6, v = y.at(i);
    y.set(i, v + h);
    const double fp = ce.compute(y, t, nullptr);
    y.set(i, v - h);
    const double fm = ce.compute(y, t, nullptr);
    y.set(i, v);
    EXPECT_NEAR(grad.at(i), (fp - fm) / (2 * h), 1e-7) << i;
  }
}
