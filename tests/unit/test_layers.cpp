// Layer shapes, Keras auto-names, the notebook's block checks and bad input.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "reskit/reskit.h"
#include "support/error_of.h"

using namespace reskit;
using reskit::test::error_of;

namespace {
Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::float64) {
  Tensor t(shape, dtype);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, d(gen));
  return t;
}

class LayersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_session();
    set_floatx(DType::float64);
  }
  void TearDown() override { set_floatx(DType::float32); }
};
}  // namespace

TEST_F(LayersTest, NotebookIdentityBlockKeepsShape) {
  Tensor x = random_tensor({3, 4, 4, 6}, 1);
  Tensor y = identity_block(x, 2, {2, 4, 6}, "1", "a");
  EXPECT_EQ(y.shape(), (Shape{3, 4, 4, 6}));
  EXPECT_FALSE(y.is_symbolic());
  for (double v : y.to_vector()) EXPECT_GE(v, 0.0);  // ends in a ReLU
}

TEST_F(LayersTest, NotebookConvolutionalBlockHalvesWithStride2) {
  Tensor x = random_tensor({3, 4, 4, 6}, 2);
  Tensor y = convolutional_block(x, 2, {2, 4, 6}, 2, "1", "a");
  EXPECT_EQ(y.shape(), (Shape{3, 2, 2, 6}));
}

TEST_F(LayersTest, KerasAutoNames) {
  Tensor in = Input({8, 8, 3});
  EXPECT_EQ(in.node()->layer->name(), "input_1");
  Conv2D a(4, {3, 3});
  Conv2D b(4, {3, 3});
  EXPECT_EQ(a->name(), "conv2d");
  EXPECT_EQ(b->name(), "conv2d_1");
  EXPECT_EQ(ZeroPadding2D(1)->name(), "zero_padding2d");
  EXPECT_EQ(BatchNormalization()->name(), "batch_normalization");
  EXPECT_EQ(MaxPooling2D()->name(), "max_pooling2d");
  EXPECT_EQ(GlobalAveragePooling2D()->name(), "global_average_pooling2d");
  EXPECT_EQ(Input({2}).node()->layer->name(), "input_2");
  EXPECT_EQ(to_snake_case("AveragePooling2D"), "average_pooling2d");
}

// Keras's to_snake_case (two re.sub calls), as Python gives it for these names.
TEST(SnakeCase, MatchesKerasRegexes) {
  const std::pair<const char*, const char*> cases[] = {
      {"Conv2D", "conv2d"},
      {"BatchNormalization", "batch_normalization"},
      {"GlobalAveragePooling2D", "global_average_pooling2d"},
      {"InputLayer", "input_layer"},
      {"Add", "add"},
      {"HTTPServer", "http_server"},
      {"ABCd", "ab_cd"},
      {"aB", "a_b"},
      {"Conv2DTranspose", "conv2d_transpose"},
      {"A", "a"},
      {"", ""},
      {"ReLU", "re_lu"},
      {"PReLU", "p_re_lu"},
      {"LSTMCell", "lstm_cell"},
      {"ResNet50V2", "res_net50v2"},
      {"aBcDe", "a_bc_de"},
      {"X1y2Z", "x1y2z"},
  };
  for (const auto& [name, snake] : cases) EXPECT_EQ(to_snake_case(name), snake) << name;
}

TEST_F(LayersTest, SamePaddingFollowsTensorFlowRule) {
  // in 7, k 4, s 2 -> out 4, pad_total (4-1)*2+4-7 = 3 -> 1 before, 2 after
  Conv2D conv(1, {4, 4}, {.strides = {2, 2}, .padding = "same", .use_bias = false});
  Tensor x({1, 7, 7, 1});
  x.fill(1.0);
  Tensor y = conv(x);
  EXPECT_EQ(y.shape(), (Shape{1, 4, 4, 1}));
  conv->param("kernel").value.fill(1.0);
  y = conv(x);
  // output (0,0) covers rows -1..2 and cols -1..2: 3x3 in-bounds ones
  EXPECT_DOUBLE_EQ(y.at(0), 9.0);
  // output (3,3) covers rows 5..8: rows 5,6 in bounds -> 2x2
  EXPECT_DOUBLE_EQ(y.at(15), 4.0);
}

TEST_F(LayersTest, PoolingAverageExcludesPadding) {
  AveragePooling2D pool({2, 2}, {.strides = std::array<int, 2>{2, 2}, .padding = "same"});
  Tensor x = Tensor::from_values({1, 3, 3, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor y = pool(x);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 2, 1}));
  EXPECT_DOUBLE_EQ(y.at(0), (1 + 2 + 4 + 5) / 4.0);
  EXPECT_DOUBLE_EQ(y.at(1), (3 + 6) / 2.0);
  EXPECT_DOUBLE_EQ(y.at(3), 9.0);
}

TEST_F(LayersTest, FlattenKeepsNHWCOrder) {
  Tensor x = Tensor::from_values({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor y = Flatten()(x);
  EXPECT_EQ(y.shape(), (Shape{1, 4}));
  EXPECT_EQ(y.to_vector(), (std::vector<double>{1, 2, 3, 4}));
}

TEST_F(LayersTest, ParamNamesAndCounts) {
  Tensor in = Input({8, 8, 3});
  Conv2D conv(5, {3, 3}, {.name = "conv1"});
  BatchNormalization bn({.name = "bn1"});
  Tensor x = bn(conv(in));
  ASSERT_EQ(conv->params().size(), 2u);
  EXPECT_EQ(conv->params()[0].name, "conv1/kernel:0");
  EXPECT_EQ(conv->params()[0].value.shape(), (Shape{3, 3, 3, 5}));
  EXPECT_EQ(conv->params()[1].name, "conv1/bias:0");
  EXPECT_EQ(conv->count_params(), 3 * 3 * 3 * 5 + 5);
  ASSERT_EQ(bn->params().size(), 4u);
  EXPECT_EQ(bn->params()[2].name, "bn1/moving_mean:0");
  EXPECT_FALSE(bn->params()[3].trainable);
  EXPECT_EQ(bn->count_trainable_params(), 10);
}

// The named weight accessors return the weights of those Keras names (the file order stays
// params()); before build and without use_bias they throw, naming the layer.
TEST_F(LayersTest, NamedWeightAccessors) {
  Tensor in = Input({8, 8, 3});
  Conv2D conv(5, {3, 3}, {.name = "conv1"});
  Conv2D plain(5, {1, 1}, {.use_bias = false, .name = "plain"});
  BatchNormalization bn({.name = "bn1"});
  Dense dense(4, {.name = "fc"});
  EXPECT_THROW(conv->kernel(), Error);
  EXPECT_THROW(bn->gamma(), Error);
  Tensor x = dense(Flatten()(bn(plain(conv(in)))));
  EXPECT_EQ(conv->kernel().name, "conv1/kernel:0");
  EXPECT_EQ(conv->bias().name, "conv1/bias:0");
  EXPECT_EQ(plain->kernel().name, "plain/kernel:0");
  EXPECT_THROW(plain->bias(), Error);
  EXPECT_EQ(bn->gamma().name, "bn1/gamma:0");
  EXPECT_EQ(bn->beta().name, "bn1/beta:0");
  EXPECT_EQ(bn->moving_mean().name, "bn1/moving_mean:0");
  EXPECT_EQ(bn->moving_variance().name, "bn1/moving_variance:0");
  EXPECT_EQ(dense->kernel().name, "fc/kernel:0");
  EXPECT_EQ(dense->kernel().value.shape(), (Shape{6 * 6 * 5, 4}));
  EXPECT_EQ(dense->bias().name, "fc/bias:0");
}

TEST_F(LayersTest, GlorotUniformStaysWithinLimitAndSeedRepeats) {
  Conv2D a(8, {3, 3}, {.seed = 7});
  Conv2D b(8, {3, 3}, {.seed = 7});
  a(Tensor({1, 5, 5, 4}));
  b(Tensor({1, 5, 5, 4}));
  const double limit = std::sqrt(6.0 / (9 * 4 + 9 * 8));
  auto va = a->param("kernel").value.to_vector();
  EXPECT_EQ(va, b->param("kernel").value.to_vector());
  double mx = 0;
  for (double v : va) mx = std::max(mx, std::abs(v));
  EXPECT_LE(mx, limit);
  EXPECT_GT(mx, 0.8 * limit);
  for (double v : a->param("bias").value.to_vector()) EXPECT_EQ(v, 0.0);
}

TEST_F(LayersTest, BadInputNamesLayerExpectationAndValue) {
  Tensor in = Input({4, 4, 6});
  std::string msg = error_of<ShapeError>([&] { identity_block(in, 2, {2, 4, 5}, "2", "b"); });
  EXPECT_NE(msg.find("identity_block (stage 2, block 'b')"), std::string::npos) << msg;
  EXPECT_NE(msg.find("6 channels, got 5"), std::string::npos) << msg;

  Tensor a = Input({4, 4, 6});
  Tensor b = Input({4, 4, 3});
  msg = error_of<ShapeError>([&] { Add({.name = "add_x"})({a, b}); });
  EXPECT_NE(msg.find("Add 'add_x': expected inputs of one shape, got (None, 4, 4, 6) and (None, 4, 4, 3)"),
            std::string::npos)
      << msg;

  msg = error_of<ShapeError>([&] { Dense(3, {.name = "fc"})(a); });
  EXPECT_NE(msg.find("Dense 'fc': expected a 2-D input"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(None, 4, 4, 6)"), std::string::npos) << msg;

  msg = error_of<ConfigError>([&] { Activation("gelu"); });
  EXPECT_NE(msg.find("unknown activation 'gelu'"), std::string::npos) << msg;
  msg = error_of<ConfigError>([&] { Conv2D(3, {3, 3}, {.padding = "full", .name = "c"}); });
  EXPECT_NE(msg.find("Conv2D 'c': unknown padding 'full'"), std::string::npos) << msg;
  msg = error_of<ConfigError>([&] { Conv2D(0, {3, 3}, {.name = "c0"}); });
  EXPECT_NE(msg.find("Conv2D 'c0': expected filters > 0, got 0"), std::string::npos) << msg;
  msg = error_of<ConfigError>([&] { Dense(-2); });
  EXPECT_NE(msg.find("expected units > 0, got -2"), std::string::npos) << msg;
  msg = error_of<ConfigError>([&] { MaxPooling2D({0, 2}); });
  EXPECT_NE(msg.find("expected a positive pool_size"), std::string::npos) << msg;

  Conv2D conv(4, {3, 3}, {.name = "c3"});
  conv(Input({8, 8, 3}));
  msg = error_of<ShapeError>([&] { conv(Tensor({1, 8, 8, 2})); });
  EXPECT_NE(msg.find("Conv2D 'c3': expected 3 input channels, got 2"), std::string::npos) << msg;
}

// Inference may keep a reordered copy of conv weights (oneDNN path); any write to the weights
// must be seen by the next call, and results must match the reference kernels.
TEST(LayersFloat32, InferenceSeesEveryWeightChange) {
  clear_session();
  set_floatx(DType::float32);
  Conv2D conv(8, {3, 3}, {.padding = "same", .seed = 3});
  Tensor x = Tensor::uninitialized({2, 6, 6, 16}, DType::float32);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, std::sin(0.37 * static_cast<double>(i)));
  auto reference = [&] {
    kernels::set_backend(kernels::Backend::reference);
    Tensor r = conv->forward({x}, false).clone();
    kernels::set_backend(kernels::Backend::fast);
    return r;
  };
  auto close = [](const Tensor& a, const Tensor& b) {
    for (std::int64_t i = 0; i < a.numel(); ++i)
      if (std::abs(a.at(i) - b.at(i)) > 1e-4) return false;
    return true;
  };
  Tensor first = conv(x).clone();
  EXPECT_TRUE(close(conv(x), first));  // a second call, from the kept weights
  EXPECT_TRUE(close(first, reference()));
  conv->param("kernel").value.set(0, 5.0);  // a write through set()
  Tensor second = conv(x).clone();
  EXPECT_FALSE(close(second, first));
  EXPECT_TRUE(close(second, reference()));
  auto w = conv->param("kernel").value.values<float>();  // a write through values()
  for (auto& v : w) v *= -1.0f;
  EXPECT_TRUE(close(conv(x), reference()));
}

// ReLU fusion (Model::set_fuse_relu) changes no result: the same CIFAR ResNet, fused and not,
// gives the same outputs, parameter gradients and moving statistics, in both dtypes.
class ReluFusion : public ::testing::TestWithParam<DType> {
 protected:
  void TearDown() override { set_floatx(DType::float32); }
};

TEST_P(ReluFusion, ChangesNoResult) {
  const DType dtype = GetParam();
  const double tolerance = dtype == DType::float32 ? 1e-5 : 1e-12;
  auto run = [&](bool fuse) {
    clear_session();
    set_floatx(dtype);
    set_random_seed(4);
    Model model = resnet_cifar(20, {10, 10, 3}, 5);
    model.set_fuse_relu(fuse);
    Tensor x = random_tensor({3, 10, 10, 3}, 9, dtype);
    std::vector<double> out = model.forward(x, true).to_vector();
    model.backward(random_tensor({3, 5}, 10, dtype));
    for (Param* p : model.parameters()) {
      auto v = (p->trainable ? p->grad : p->value).to_vector();  // gradients, moving statistics
      out.insert(out.end(), v.begin(), v.end());
    }
    auto inference = model.forward(x, false).to_vector();
    out.insert(out.end(), inference.begin(), inference.end());
    return out;
  };
  const auto fused = run(true), plain = run(false);
  ASSERT_EQ(fused.size(), plain.size());
  double scale = 0.0;
  for (double v : plain) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < plain.size(); ++i)
    ASSERT_NEAR(fused[i], plain[i], tolerance * scale) << "at " << i;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ReluFusion, ::testing::Values(DType::float32, DType::float64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Mixed precision (Model::set_bf16_only): a normalization writes the bfloat16 rounding alone
// where every reader takes that, and float32 as well elsewhere; training gives the same bits as
// with float32 always written. bn1's output is also read by a MaxPooling2D (float32) and stays
// float32; bn2's only by Conv2Ds; bn3 follows an Add and feeds a pooling, so neither applies.
TEST(MixedPrecisionBf16Only, SparesOnlyConvolutionReadersAndChangesNoBits) {
  struct Run {
    std::map<std::string, std::pair<bool, bool>> flags;  // normalization: output, input gradient
    std::vector<std::vector<float>> weights;
  };
  auto run = [](const std::string& policy, bool on) {
    clear_session();
    set_global_policy(policy);
    set_random_seed(11);
    Tensor in = Input({8, 8, 3});
    Tensor x = Conv2D(8, {3, 3}, {.padding = "same"})(in);
    Tensor r1 = Activation("relu")(BatchNormalization({.name = "bn1"})(x));
    x = Conv2D(8, {3, 3}, {.padding = "same"})(r1);
    Tensor r2 = Activation("relu")(BatchNormalization({.name = "bn2"})(x));
    Tensor sum = Add()({Conv2D(8, {1, 1})(r2), Conv2D(8, {3, 3}, {.padding = "same"})(r2)});
    Tensor r3 = Activation("relu")(BatchNormalization({.name = "bn3"})(sum));
    Tensor pooled = Add()({GlobalAveragePooling2D()(r3), GlobalAveragePooling2D()(MaxPooling2D()(r1))});
    Model model(in, Dense(3, {.activation = "softmax"})(pooled), "bf16_only");
    model.set_bf16_only(on);
    model.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.01}),
                  std::make_shared<CategoricalCrossentropy>());
    Tensor batch = random_tensor({4, 8, 8, 3}, 21, DType::float32);
    Tensor labels = Tensor::from_values({4, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0}, DType::float32);
    Run result;
    for (int step = 0; step < 2; ++step) model.train_on_batch(batch, labels);
    for (const char* name : {"bn1", "bn2", "bn3"}) {
      const auto& bn = dynamic_cast<const BatchNormalizationLayer&>(*model.get_layer(name));
      result.flags[name] = {bn.last_output_bf16_only(), bn.last_input_gradient_bf16_only()};
    }
    for (Param* p : model.parameters()) {
      const auto v = std::as_const(p->value).values<float>();
      result.weights.emplace_back(v.begin(), v.end());
    }
    set_global_policy("float32");
    return result;
  };
  const Run on = run("mixed_bfloat16", true), off = run("mixed_bfloat16", false);
  using Flags = std::pair<bool, bool>;
  EXPECT_EQ(on.flags.at("bn1"), Flags(false, true));
  EXPECT_EQ(on.flags.at("bn2"), Flags(true, true));
  EXPECT_EQ(on.flags.at("bn3"), Flags(false, false));
  for (const auto& [name, flags] : off.flags) EXPECT_EQ(flags, Flags(false, false)) << name;
  for (const auto& [name, flags] : run("float32", true).flags) EXPECT_EQ(flags, Flags(false, false)) << name;
  ASSERT_EQ(on.weights.size(), off.weights.size());
  for (std::size_t i = 0; i < on.weights.size(); ++i)
    EXPECT_EQ(on.weights[i], off.weights[i]) << "weight " << i;
}

namespace {
// Every trainable weight's gradient, in the order of model.parameters().
std::vector<double> trainable_gradients(Model& model) {
  std::vector<double> out;
  for (Param* p : model.parameters()) {
    if (!p->trainable) continue;
    const auto v = p->grad.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// Mixed-precision gradients with a plan on: within 1e-3 of the largest of the reference kernels'
// gradients computing the same definition, and more than min_differ of them unlike those with
// the plan off (float32 tensors); `same` says what equal gradients would mean.
void expect_reference_not_float32(const std::vector<double>& on, const std::vector<double>& reference,
                                  const std::vector<double>& off, std::size_t min_differ, const char* same) {
  ASSERT_EQ(on.size(), reference.size());
  ASSERT_EQ(on.size(), off.size());
  double scale = 0.0;
  std::size_t differ = 0;
  for (double v : reference) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < on.size(); ++i) {
    EXPECT_NEAR(on[i], reference[i], 1e-3 * scale) << "gradient " << i;
    differ += on[i] != off[i];
  }
  EXPECT_GT(differ, min_differ) << same;
}
}  // namespace

// Keras's bfloat16 activations (Model::set_bf16_activations): a linear Conv2D writes its output
// as the rounding alone where a BatchNormalization alone reads it (c1, c2, c3), and its input
// gradient where it alone reads a normalization's output (c3; c2's input r1 is also pooled).
// The normalizations then compute on the rounded values: the gradients differ from those with
// float32 activations, and agree with the reference kernels computing the same definition (a
// Conv2D's float32 result rounded, a normalization on the rounding widened).
TEST(MixedPrecisionBf16Activations, ConvolutionsFeedingNormalizationsWriteBfloat16) {
  struct Run {
    std::map<std::string, std::pair<bool, bool>> flags;  // convolution: output, input gradient
    std::vector<double> grads;
  };
  auto run = [](const std::string& policy, bool on, kernels::Backend backend) {
    clear_session();
    set_global_policy(policy);
    set_random_seed(12);
    Tensor in = Input({8, 8, 3});
    const auto block = [](const std::string& conv, Tensor x) {
      x = Conv2D(8, {3, 3}, {.padding = "same", .name = conv})(x);
      return Activation("relu")(BatchNormalization()(x));
    };
    Tensor r1 = block("c1", in);
    Tensor r3 = block("c3", block("c2", r1));
    Tensor pooled = Add()({GlobalAveragePooling2D()(r3), GlobalAveragePooling2D()(r1)});
    Model model(in, Dense(3, {.activation = "softmax"})(pooled), "bf16_activations");
    model.set_bf16_activations(on);
    kernels::set_backend(backend);
    model.forward(random_tensor({4, 8, 8, 3}, 22, DType::float32), true);
    model.backward(random_tensor({4, 3}, 23, DType::float32));
    kernels::set_backend(kernels::Backend::fast);
    Run result;
    for (const char* name : {"c1", "c2", "c3"}) {
      const auto& conv = dynamic_cast<const Conv2DLayer&>(*model.get_layer(name));
      result.flags[name] = {conv.last_output_bf16_only(), conv.last_input_gradient_bf16_only()};
    }
    result.grads = trainable_gradients(model);
    set_global_policy("float32");
    return result;
  };
  const Run on = run("mixed_bfloat16", true, kernels::Backend::fast);
  using Flags = std::pair<bool, bool>;
  EXPECT_EQ(on.flags.at("c1"), Flags(true, false));
  EXPECT_EQ(on.flags.at("c2"), Flags(true, false));
  EXPECT_EQ(on.flags.at("c3"), Flags(true, true));
  const Run off = run("mixed_bfloat16", false, kernels::Backend::fast);
  for (const auto& [name, flags] : off.flags) EXPECT_EQ(flags, Flags(false, false)) << name;
  for (const auto& [name, flags] : run("float32", true, kernels::Backend::fast).flags)
    EXPECT_EQ(flags, Flags(false, false)) << name;
  const Run reference = run("mixed_bfloat16", true, kernels::Backend::reference);
  expect_reference_not_float32(on.grads, reference.grads, off.grads, on.grads.size() / 2,
                               "float32 activations gave the same gradients");
}

// Keras's bfloat16 residual stream (Model::set_bf16_activations). Forward: a normalization that
// absorbs an Add writes the sum as the rounding alone where every reader takes it (bn_c2: its sum
// out1 feeds c3 and bn_c4's residual; not bn_c4, whose sum is pooled), and so does the
// normalization that Add reads alone as its residual (bn_s1). Backward: a ReLU after an Add,
// whose own backward applies the mask, writes its input gradient as the rounding alone where
// every input of the Add reads it so (out1: two normalizations; out2: a normalization and out1,
// which sums its two gradients in its own pass), and a linear Conv2D reading such a ReLU's output
// writes its input gradient so (c3). c1 reads a ReLU that its normalization applies (its backward
// too), so that does not apply there. The gradients agree with the reference kernels computing
// the same definition, and differ from float32 ones.
TEST(MixedPrecisionBf16Activations, ResidualBlocksRunInBfloat16) {
  struct Run {
    std::map<std::string, bool> flags;  // input gradient written as the rounding alone
    std::vector<double> grads;
  };
  auto run = [](const std::string& policy, bool on, kernels::Backend backend) {
    clear_session();
    set_global_policy(policy);
    set_random_seed(13);
    Tensor in = Input({8, 8, 3});
    const auto conv_bn = [](int filters, std::array<int, 2> k, const std::string& conv, Tensor x) {
      return BatchNormalization({.name = "bn_" + conv})(
          Conv2D(filters, k, {.padding = "same", .name = conv})(x));
    };
    Tensor r0 = Activation("relu")(conv_bn(8, {3, 3}, "c0", in));
    Tensor b2 = conv_bn(8, {3, 3}, "c2", Activation("relu")(conv_bn(8, {3, 3}, "c1", r0)));
    Tensor out1 = Activation("relu", {.name = "out1"})(Add()({b2, conv_bn(8, {1, 1}, "s1", r0)}));
    Tensor b4 = conv_bn(8, {3, 3}, "c4", Activation("relu")(conv_bn(8, {3, 3}, "c3", out1)));
    Tensor out2 = Activation("relu", {.name = "out2"})(Add()({b4, out1}));
    Model model(in, Dense(3, {.activation = "softmax"})(GlobalAveragePooling2D()(out2)), "bf16_gradients");
    model.set_bf16_activations(on);
    kernels::set_backend(backend);
    model.forward(random_tensor({4, 8, 8, 3}, 24, DType::float32), true);
    model.backward(random_tensor({4, 3}, 25, DType::float32));
    kernels::set_backend(kernels::Backend::fast);
    Run result;
    for (const char* name : {"out1", "out2"}) {
      result.flags[name] =
          dynamic_cast<const ActivationLayer&>(*model.get_layer(name)).last_input_gradient_bf16_only();
    }
    for (const char* name : {"c1", "c3"}) {
      result.flags[name] =
          dynamic_cast<const Conv2DLayer&>(*model.get_layer(name)).last_input_gradient_bf16_only();
    }
    for (const char* name : {"bn_c2", "bn_s1", "bn_c4"}) {
      result.flags[name] =
          dynamic_cast<const BatchNormalizationLayer&>(*model.get_layer(name)).last_output_bf16_only();
    }
    result.grads = trainable_gradients(model);
    set_global_policy("float32");
    return result;
  };
  const Run on = run("mixed_bfloat16", true, kernels::Backend::fast);
  EXPECT_TRUE(on.flags.at("out1"));
  EXPECT_TRUE(on.flags.at("out2"));
  EXPECT_TRUE(on.flags.at("c3"));
  EXPECT_FALSE(on.flags.at("c1"));
  EXPECT_TRUE(on.flags.at("bn_c2"));
  EXPECT_TRUE(on.flags.at("bn_s1"));
  EXPECT_FALSE(on.flags.at("bn_c4"));
  const Run off = run("mixed_bfloat16", false, kernels::Backend::fast);
  for (const auto& [name, flag] : off.flags) EXPECT_FALSE(flag) << name;
  for (const auto& [name, flag] : run("float32", true, kernels::Backend::fast).flags)
    EXPECT_FALSE(flag) << name;
  const Run reference = run("mixed_bfloat16", true, kernels::Backend::reference);
  expect_reference_not_float32(on.grads, reference.grads, off.grads, on.grads.size() / 4,
                               "a float32 residual stream gave the same gradients");
}

// The fusion holds only inside the model's forward: the same layer called on its own afterwards
// gives its plain (negative-valued) output.
TEST(ReluFusionScope, LayersCalledOutsideTheModelAreNotFused) {
  clear_session();
  set_floatx(DType::float32);
  Tensor in = Input({4, 4, 3});
  BatchNormalization bn;
  Tensor x = Activation("relu")(bn(in));
  Model model(in, x, "fused");
  Tensor batch = random_tensor({2, 4, 4, 3}, 12, DType::float32);
  Tensor y = model.forward(batch, true);
  double min_model = 0.0, min_alone = 0.0;
  for (std::int64_t i = 0; i < y.numel(); ++i) min_model = std::min(min_model, y.at(i));
  Tensor alone = bn(batch);
  for (std::int64_t i = 0; i < alone.numel(); ++i) min_alone = std::min(min_alone, alone.at(i));
  EXPECT_EQ(min_model, 0.0);
  EXPECT_LT(min_alone, -0.1);
}

// BatchNormalization folding (Model::set_fold_batch_norm): inference with the normalization
// (and the ReLU after it) folded into the convolution gives the unfolded results, and sees every
// change of the weights or statistics it was folded from.
class BatchNormFolding : public ::testing::TestWithParam<DType> {
 protected:
  void TearDown() override { set_floatx(DType::float32); }
  // A fresh session in the test's dtype with the given seed; the tolerance outputs compare at.
  double begin(std::uint64_t seed) {
    clear_session();
    set_floatx(GetParam());
    set_random_seed(seed);
    return GetParam() == DType::float32 ? 1e-5 : 1e-12;
  }
};

// Statistics and scales far from their initial values, so that folding has work to do.
void perturb_batch_norms(Model& model) {
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  for (const auto& layer : model.layers()) {
    if (layer->class_name() != "BatchNormalization") continue;
    for (Param& p : layer->params()) {
      const bool centred =
          p.name.find("beta") != std::string::npos || p.name.find("mean") != std::string::npos;
      for (std::int64_t i = 0; i < p.value.numel(); ++i) p.value.set(i, centred ? u(gen) - 1.0 : u(gen));
    }
  }
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tolerance,
                     const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0.0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  for (std::size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tolerance * scale) << what << " at " << i;
}

TEST_P(BatchNormFolding, InferenceMatchesUnfolded) {
  const DType dtype = GetParam();
  const double tolerance = begin(6);
  Model model = resnet_cifar(20, {10, 10, 3}, 5);
  perturb_batch_norms(model);
  const Tensor x = random_tensor({3, 10, 10, 3}, 13, dtype);
  auto compare = [&](const char* what) {
    model.set_fold_batch_norm(false);
    const auto plain = model.forward(x, false).to_vector();
    model.set_fold_batch_norm(true);
    const auto folded = model.forward(x, false).to_vector();
    expect_near_all(folded, plain, tolerance, what);
  };
  compare("first call");
  compare("second call (kept folded weights)");
  model.get_layer("bn1")->param("gamma").value.set(0, 3.0);
  model.get_layer("bn_2a2b")->param("moving_variance").value.set(1, 0.1);
  model.get_layer("conv_2a2a")->param("kernel").value.set(2, -1.0);
  compare("after changing gamma, a moving variance and a kernel");
  // The layers work unfolded outside the model's pass.
  EXPECT_NE(error_of<Error>([&] {
              model.backward(random_tensor({3, 5}, 1, dtype));
            }).find("folded"),
            std::string::npos);
}

// Inference also fuses a residual block's Add (and its ReLU) into the convolution that its last
// normalization folds into: in an identity block the third convolution; in a convolutional block
// that of whichever branch's normalization comes later, run in that normalization's place. The
// outputs are those of the Add and Activation layers computing them (set_fuse_relu(false), the
// normalizations folded both times) and of the unfolded model. A small ResNet-50 at batch 2 sends
// its 1x1 convolutions to both oneDNN matmuls (stage 2) and convolutions (later stages).
TEST_P(BatchNormFolding, FusedResidualAddMatchesTheAddLayer) {
  const DType dtype = GetParam();
  const double tolerance = begin(7);
  ResNet50Options o;
  o.stage_filters = {{{4, 4, 8}, {4, 4, 8}, {8, 8, 16}, {8, 8, 16}}};
  Model model = resnet50({32, 32, 3}, 3, o);
  perturb_batch_norms(model);
  const Tensor x = random_tensor({2, 32, 32, 3}, 14, dtype);
  model.set_fold_batch_norm(true);
  model.set_fuse_relu(false);
  const auto add_layers = model.forward(x, false).to_vector();
  model.set_fuse_relu(true);
  const auto fused = model.forward(x, false).to_vector();
  expect_near_all(fused, add_layers, tolerance, "fused against the Add layers");
  model.set_fold_batch_norm(false);
  expect_near_all(fused, model.forward(x, false).to_vector(), tolerance, "fused against unfolded");
  // Outside the model's pass a convolution takes one input.
  auto conv = model.get_layer("conv_3a2c");
  const Tensor in = random_tensor({2, 4, 4, 4}, 15, dtype), r = random_tensor({2, 4, 4, 8}, 16, dtype);
  EXPECT_NE(error_of<Error>([&] {
              conv->forward({in, r}, false);
            }).find("expected one input"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BatchNormFolding, ::testing::Values(DType::float32, DType::float64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });
