// Rescaling, Normalization, ReLU with options, LeakyReLU, Softmax and Concatenate inside models:
// .h5 round trips (Normalization's mean, variance and the scalar count), Keras configs of both
// layouts, the refusals that name the key, ReLU fusion, a Softmax output trained from its
// logits, and the mixed_bfloat16 policy. (Values against PyTorch: tests/golden/test_layer_golden.cpp;
// gradients, config round trips and ONNX of every sample: tests/unit/test_registry.cpp.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "gradcheck/gradcheck.h"
#include "reskit/io/h5.h"
#include "reskit/reskit.h"
#include "support/error_of.h"

namespace fs = std::filesystem;
using namespace reskit;
using reskit::test::error_of;
using reskit::testing::random_tensor;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

// input (6, 6, 3) -> Rescaling -> Normalization (weights) -> {ReLU(options), LeakyReLU} ->
// Concatenate -> Conv2D 1x1 -> BatchNormalization -> ReLU() -> GlobalAveragePooling2D -> Dense
// -> Softmax
Model small_model() {
  Tensor in = Input({6, 6, 3}, {.name = "image"});
  Tensor x = Rescaling(1.0 / 255, {.offset = {-0.5}})(in);
  auto norm = Normalization();
  x = norm(x);
  for (std::int64_t c = 0; c < 3; ++c) {
    norm->mean().value.set(c, 0.1 * static_cast<double>(c) - 0.1);
    norm->variance().value.set(c, 0.5 + static_cast<double>(c));
  }
  norm->count().value.set(0, 120.0);
  Tensor a = ReLU({.max_value = 1.0, .negative_slope = 0.1, .threshold = 0.05})(x);
  Tensor b = LeakyReLU({.alpha = 0.2})(x);
  x = Concatenate()(std::vector<Tensor>{a, b});
  x = Conv2D(4, {1, 1})(x);
  x = BatchNormalization()(x);
  x = ReLU()(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(3)(x);
  return Model(in, Softmax()(x), "small");
}

class PreprocessingLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_session();
    set_random_seed(11);
    dir_ = fs::temp_directory_path() / ("reskit_prep_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    set_floatx(DType::float32);
    set_global_policy("float32");
  }
  fs::path dir_;
};

}  // namespace

TEST_F(PreprocessingLayers, SaveAndLoadKeepEveryLayerAndTheNormalizationWeights) {
  Model m = small_model();
  const auto& norm = dynamic_cast<const NormalizationLayer&>(*m.get_layer("normalization"));
  ASSERT_EQ(norm.params().size(), 3u);
  EXPECT_EQ(norm.params()[0].name, "normalization/mean:0");
  EXPECT_EQ(norm.params()[1].name, "normalization/variance:0");
  EXPECT_EQ(norm.params()[2].name, "normalization/count:0");
  EXPECT_EQ(norm.count().value.shape(), Shape{});
  for (const auto& p : norm.params()) EXPECT_FALSE(p.trainable);

  const std::string path = (dir_ / "m.h5").string();
  save_model(m, path);
  Model back = load_model(path);
  ASSERT_EQ(back.layers().size(), m.layers().size());
  for (std::size_t i = 0; i < m.layers().size(); ++i)
    EXPECT_EQ(back.layers()[i]->class_name(), m.layers()[i]->class_name());
  EXPECT_EQ(back.get_layer("normalization")->param("count").value.at(0), 120.0);
  EXPECT_EQ(model_to_json(back), model_to_json(m));
  Tensor x = random_tensor({2, 6, 6, 3}, 3, 60.0).to(DType::float32);
  EXPECT_TRUE(same_bits(back.forward(x, false), m.forward(x, false)));
}

// The Keras 3 forms: LeakyReLU's negative_slope, Normalization's axis as a list with given
// statistics (no weights), invert, Softmax's axis as a one-element list (tf.keras 2.x).
TEST_F(PreprocessingLayers, ReadsKeras3ConfigForms) {
  const std::string json = R"({"class_name": "Functional", "config": {"name": "k3", "layers": [
    {"class_name": "InputLayer", "name": "in", "config": {"batch_shape": [null, 4], "dtype": "float32", "name": "in"},
     "inbound_nodes": []},
    {"class_name": "Normalization", "name": "norm", "config": {"name": "norm", "trainable": true, "dtype": "float32",
     "axis": [-1], "invert": false, "mean": [1.0, 2.0, 3.0, 4.0], "variance": 4.0}, "inbound_nodes": [[["in", 0, 0, {}]]]},
    {"class_name": "LeakyReLU", "name": "leaky", "config": {"name": "leaky", "trainable": true, "dtype": "float32",
     "negative_slope": 0.5}, "inbound_nodes": [[["norm", 0, 0, {}]]]},
    {"class_name": "Softmax", "name": "soft", "config": {"name": "soft", "trainable": true, "dtype": "float32",
     "axis": [-1]}, "inbound_nodes": [[["leaky", 0, 0, {}]]]}],
    "input_layers": [["in", 0, 0]], "output_layers": [["soft", 0, 0]]}})";
  Model m = model_from_json(json);
  EXPECT_EQ(m.count_params(), 0);
  const auto& leaky = dynamic_cast<const LeakyReLULayer&>(*m.get_layer("leaky"));
  EXPECT_EQ(leaky.options().alpha, 0.5);
  Tensor x = Tensor::from_values({1, 4}, {3.0, 2.0, 3.0, 8.0});
  // (x − mean) / 2 = (1, 0, 0, 2); leaky: (1, 0, 0, 2); softmax of that.
  Tensor y = m.forward(x, false);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), s = e1 + 2.0 + e2;
  EXPECT_NEAR(y.at(0), e1 / s, 1e-6);
  EXPECT_NEAR(y.at(1), 1.0 / s, 1e-6);
  EXPECT_NEAR(y.at(3), e2 / s, 1e-6);
  EXPECT_TRUE(m.get_layer("soft")->outputs_softmax());
  // Written back in tf.keras 2.6's form: LeakyReLU's alpha, Normalization's statistics as given.
  const std::string out = model_to_json(m);
  EXPECT_NE(out.find(R"("alpha":0.5)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("axis":[-1],"mean":[1.0,2.0,3.0,4.0],"variance":4.0)"), std::string::npos) << out;
}

TEST_F(PreprocessingLayers, RefusalsNameTheLayerAndTheKey) {
  auto json_with = [](const std::string& cls, const std::string& config) {
    return R"({"class_name": "Functional", "config": {"name": "m", "layers": [
      {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [null, 4], "name": "in"},
       "inbound_nodes": []},
      {"class_name": ")" +
           cls + R"(", "name": "l", "config": {"name": "l", )" + config +
           R"(}, "inbound_nodes": [[["in", 0, 0, {}]]]}],
      "input_layers": [["in", 0, 0]], "output_layers": [["l", 0, 0]]}})";
  };
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("ReLU", R"("threshold": -1.0)"));
            }).find("ReLU 'l': unsupported option threshold=-1.0"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("Normalization", R"("mean": 1.0)"));
            }).find("Normalization 'l': expected both mean and variance or neither, got only mean"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("Normalization", R"("mean": [1, 2], "variance": 1)"));
            }).find("Normalization 'l': expected 1 or 4 mean and variance values"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("Softmax", R"("axis": [1, 2])"));
            }).find("Softmax 'l': unsupported option axis=[1,2]"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("Rescaling", R"("offset": 1.0)"));
            }).find("Rescaling 'l': missing option scale"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              model_from_json(json_with("LeakyReLU", R"("alpha": 0.1, "negative_slope": 0.2)"));
            }).find("LeakyReLU 'l': expected one of alpha and negative_slope"),
            std::string::npos);
}

// A ReLU layer without options after BatchNormalization fuses as Activation("relu") does: the same
// bits as the Activation model, in training (forward, backward) and inference.
TEST_F(PreprocessingLayers, PlainReluFusesLikeActivationRelu) {
  auto build = [](bool relu_layer) {
    clear_session();
    set_random_seed(5);
    Tensor in = Input({5, 5, 2});
    Tensor x = Conv2D(3, {3, 3}, {.padding = "same"})(in);
    x = BatchNormalization()(x);
    x = relu_layer ? ReLU()(x) : Activation("relu")(x);
    x = Flatten()(x);
    return Model(in, Dense(2)(x));
  };
  Model a = build(true), b = build(false);
  Tensor x = random_tensor({3, 5, 5, 2}, 8).to(DType::float32);
  EXPECT_TRUE(same_bits(a.forward(x, true), b.forward(x, true)));
  Tensor g = random_tensor({3, 2}, 9).to(DType::float32);
  a.backward(g);
  b.backward(g);
  ASSERT_EQ(a.parameters().size(), b.parameters().size());
  for (std::size_t i = 0; i < a.parameters().size(); ++i) {
    if (!a.parameters()[i]->trainable) continue;
    EXPECT_TRUE(same_bits(a.parameters()[i]->grad, b.parameters()[i]->grad)) << a.parameters()[i]->name;
  }
  EXPECT_TRUE(same_bits(a.forward(x, false), b.forward(x, false)));
}

// A model ending in a Softmax layer trains from its logits (as Activation("softmax")), and its
// loss falls.
TEST_F(PreprocessingLayers, SoftmaxOutputTrains) {
  Model m = small_model();
  m.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.05}),
            std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  Tensor x = random_tensor({6, 6, 6, 3}, 4, 80.0).to(DType::float32);
  Tensor y({6, 3}, DType::float32);
  for (std::int64_t n = 0; n < 6; ++n) y.set(n * 3 + n % 3, 1.0);
  const double first = m.train_on_batch(x, y).loss;
  double last = first;
  for (int i = 0; i < 30; ++i) last = m.train_on_batch(x, y).loss;
  EXPECT_LT(last, first * 0.7);
}

// Under mixed_bfloat16 these layers keep float32 (reskit's policy: only convolutions compute in
// bfloat16), giving the float32 model's bits.
TEST_F(PreprocessingLayers, MixedBfloat16PolicyComputesInFloat32) {
  auto head = [] {
    clear_session();
    Tensor in = Input({4, 4, 3});
    Tensor x = Normalization({.mean = std::vector<double>{0.5, 1.0, -1.0},
                              .variance = std::vector<double>{2.0}})(Rescaling(0.5)(in));
    x = Concatenate()(std::vector<Tensor>{ReLU({.max_value = 1.5, .threshold = 0.1})(x), LeakyReLU()(x)});
    return Model(in, Softmax({.axis = 1})(x));
  };
  Model f32 = head();
  set_global_policy("mixed_bfloat16");
  Model mixed = head();
  set_global_policy("float32");
  for (const auto& l : mixed.layers()) {
    EXPECT_EQ(l->dtype(), DType::float32) << l->name();
    EXPECT_TRUE(l->class_name() == "InputLayer" || l->mixed_bfloat16()) << l->name();
  }
  Tensor x = random_tensor({2, 4, 4, 3}, 6, 2.0).to(DType::float32);
  EXPECT_TRUE(same_bits(mixed.forward(x, true), f32.forward(x, true)));
  Tensor g = random_tensor({2, 4, 4, 6}, 7).to(DType::float32);
  EXPECT_TRUE(same_bits(mixed.backward(g, {.input_gradients = true})[0],
                        f32.backward(g, {.input_gradients = true})[0]));
}
