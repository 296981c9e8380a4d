// Frozen layers (Keras layer.trainable = False) and features from inside a model: training leaves
// frozen weights and BatchNormalization statistics bit for bit, backward stops at a frozen base,
// summary counts, the flag in configs and files, get_layer's errors, Layer::output() and models
// over part of another that share its weights.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "reskit/io/h5.h"
#include "reskit/reskit.h"
#include "support/tiny_training.h"
#include "util/nearest_names.h"

using namespace reskit;
using reskit_test::make_data;

namespace {

// conv -> bn -> relu -> conv -> bn -> relu -> pooling -> head; the "base" is everything before
// the pooling. 266 weights: convs 76 and 148, normalizations 16 each (8 of them moving
// statistics), head 10.
Model base_and_head() {
  clear_session();
  set_random_seed(5);
  Tensor in = Input({4, 4, 2}, {.name = "image"});
  Tensor x = Conv2D(4, {3, 3}, {.padding = "same", .name = "base_conv"})(in);
  x = BatchNormalization({.name = "base_bn"})(x);
  x = Activation("relu", {.name = "base_relu"})(x);
  x = Conv2D(4, {3, 3}, {.padding = "same", .name = "base_conv2"})(x);
  x = BatchNormalization({.name = "base_bn2"})(x);
  x = Activation("relu", {.name = "base_out"})(x);
  x = GlobalAveragePooling2D({.name = "pool"})(x);
  x = Dense(2, {.activation = "softmax", .name = "head"})(x);
  return Model(in, x, "frozen_test");
}

void compile(Model& m, double lr = 0.02) {
  m.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = lr}),
            std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
}

const std::vector<std::string> kBase{"base_conv",  "base_bn",  "base_relu",
                                     "base_conv2", "base_bn2", "base_out"};

void freeze_base(Model& m) {
  for (const auto& name : kBase) m.get_layer(name)->set_trainable(false);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

std::map<std::string, Tensor> weights_of(Model& m) {
  std::map<std::string, Tensor> out;
  for (Param* p : m.parameters()) out[p->name] = p->value.clone();
  return out;
}

Tensor random_images(int n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  std::vector<double> v(static_cast<std::size_t>(n) * 32);
  for (auto& e : v) e = d(gen);
  return Tensor::from_values({n, 4, 4, 2}, v);
}

}  // namespace

TEST(Frozen, FitLeavesFrozenBaseBitIdenticalWhileTheHeadLearns) {
  Model m = base_and_head();
  compile(m);
  freeze_base(m);
  const auto before = weights_of(m);
  Dataset data = make_data(128, 1);
  m.set_profiling(true);
  std::ostringstream out;
  History h = fit(m, data, {.epochs = 3, .batch_size = 32, .seed = 2, .out = &out});
  for (Param* p : m.parameters()) {
    const bool frozen = p->name.rfind("head/", 0) != 0;
    EXPECT_EQ(same_bits(p->value, before.at(p->name)), frozen) << p->name;
  }
  EXPECT_LT(h.history["loss"][2], h.history["loss"][0]);
  // The optimizer never saw the frozen weights: no slots for them.
  auto& adam = dynamic_cast<Adam&>(m.optimizer());
  EXPECT_EQ(adam.slots().count("base_conv/kernel:0"), 0u);
  EXPECT_EQ(adam.slots().count("base_bn/gamma:0"), 0u);
  EXPECT_EQ(adam.slots().count("head/kernel:0"), 1u);
  // Backward stops at the frozen base: no layer below the head ran a backward pass.
  const auto profile = m.profile();
  EXPECT_EQ(profile.count("Dense backward"), 1u);
  for (const char* key : {"Conv2D backward", "BatchNormalization backward", "Activation backward",
                          "GlobalAveragePooling2D backward"})
    EXPECT_EQ(profile.count(key), 0u) << key;
}

// Profiling by layer (reskit bench --profile-layers): one key per layer and pass, named; by kind
// the same steps give one key per layer class and pass, and both account the same passes.
TEST(Profiling, ByLayerNamesEachLayersPasses) {
  std::map<std::string, double> by_kind, by_layer;
  for (bool layers : {false, true}) {
    Model m = base_and_head();
    compile(m);
    m.set_profiling(true, layers);
    m.train_on_batch(random_images(8, 3), Tensor::from_values({8, 2}, std::vector<double>(16, 0.5)));
    (layers ? by_layer : by_kind) = m.profile();
  }
  for (const char* key : {"Conv2D base_conv forward", "Conv2D base_conv2 backward",
                          "BatchNormalization base_bn2 forward", "Dense head backward", "optimizer"})
    EXPECT_EQ(by_layer.count(key), 1u) << key;
  EXPECT_EQ(by_layer.count("Conv2D forward"), 0u);
  EXPECT_EQ(by_kind.count("Conv2D forward"), 1u);
  EXPECT_EQ(by_kind.count("Conv2D base_conv forward"), 0u);
  // Every layer key of a class sums into that class's key: the same passes are timed.
  std::map<std::string, int> passes;
  for (const auto& [key, seconds] : by_layer) {
    const auto first = key.find(' '), last = key.rfind(' ');
    passes[first == last ? key : key.substr(0, first) + key.substr(last)] += 1;
  }
  EXPECT_EQ(passes.size(), by_kind.size());
  for (const auto& [key, seconds] : by_kind) EXPECT_EQ(passes.count(key), 1u) << key;
  EXPECT_EQ(passes["Conv2D forward"], 2);
}

TEST(Frozen, FrozenBatchNormRunsInInferenceModeBetweenTrainableLayers) {
  // Only the normalizations frozen: they normalise with their moving statistics (unchanged) in
  // training, and their backward (fused with the ReLU's or not) still trains the convolutions.
  std::vector<std::map<std::string, Tensor>> after;
  for (bool fuse : {true, false}) {
    Model m = base_and_head();
    compile(m);
    m.set_fuse_relu(fuse);
    for (const char* bn : {"base_bn", "base_bn2"}) m.get_layer(bn)->set_trainable(false);
    const auto before = weights_of(m);
    Tensor x = random_images(8, 3);
    Tensor y = Tensor::from_values({8, 2}, {1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1});
    // A frozen normalization in a training pass computes what inference does.
    const auto inference = m.forward(x, false).to_vector(), training = m.forward(x, true).to_vector();
    for (std::size_t i = 0; i < inference.size(); ++i) ASSERT_NEAR(training[i], inference[i], 1e-6) << i;
    for (int step = 0; step < 3; ++step) m.train_on_batch(x, y);
    for (Param* p : m.parameters()) {
      const bool frozen = p->name.rfind("base_bn", 0) == 0;
      EXPECT_EQ(same_bits(p->value, before.at(p->name)), frozen) << p->name << " fuse " << fuse;
    }
    after.push_back(weights_of(m));
  }
  // The fused ReLU backward of a frozen normalization equals the unfused one.
  for (const auto& [name, value] : after[0]) {
    const auto a = value.to_vector(), b = after[1].at(name).to_vector();
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6) << name << "[" << i << "]";
  }
}

TEST(Frozen, FlagsAreReadAtEachStepAndSlotsKept) {
  Model m = base_and_head();
  compile(m);
  m.set_trainable(false);
  for (const auto& l : m.layers()) EXPECT_FALSE(l->trainable()) << l->name();
  m.get_layer("head")->set_trainable(true);
  Tensor x = random_images(8, 4);
  Tensor y = Tensor::from_values({8, 2}, {1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1});
  m.train_on_batch(x, y);
  auto& adam = dynamic_cast<Adam&>(m.optimizer());
  const Tensor head_m = adam.slots().at("head/kernel:0").m.clone();
  const Tensor conv = m.get_layer("base_conv")->param("kernel").value.clone();
  // Unfrozen after compile: the next step trains the base too (no compile again), the head's
  // slots carry on and the base's start fresh.
  m.set_trainable(true);
  m.train_on_batch(x, y);
  EXPECT_EQ(adam.iterations(), 2);
  EXPECT_FALSE(same_bits(m.get_layer("base_conv")->param("kernel").value, conv));
  EXPECT_FALSE(same_bits(adam.slots().at("head/kernel:0").m, head_m));
  EXPECT_EQ(adam.slots().count("base_conv/kernel:0"), 1u);
}

TEST(Frozen, SummaryCountsFrozenWeightsAsNonTrainable) {
  Model m = base_and_head();
  EXPECT_EQ(m.count_params(), 266);
  EXPECT_EQ(m.count_trainable_params(), 250);  // the 16 moving statistics are not trainable
  freeze_base(m);
  EXPECT_EQ(m.count_trainable_params(), 10);
  EXPECT_EQ(m.get_layer("base_bn")->count_trainable_params(), 0);
  const std::string s = m.summary_string();
  EXPECT_NE(s.find("Total params: 266\nTrainable params: 10\nNon-trainable params: 256\n"), std::string::npos)
      << s;
  m.set_trainable(false);
  EXPECT_EQ(m.count_trainable_params(), 0);
  EXPECT_TRUE(m.trainable_parameters().empty());
  EXPECT_EQ(m.parameters().size(), 14u);
}

TEST(Frozen, FlagRoundTripsThroughConfigsAndFiles) {
  Model m = base_and_head();
  compile(m);
  freeze_base(m);
  const std::string json = model_to_json(m);
  EXPECT_NE(json.find(R"({"name":"base_bn","trainable":false,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"({"name":"base_relu","trainable":false,)"), std::string::npos);
  EXPECT_NE(json.find(R"({"name":"head","trainable":true,)"), std::string::npos);
  Model from_json = model_from_json(json);
  for (const auto& l : from_json.layers())
    EXPECT_EQ(l->trainable(), m.get_layer(l->name())->trainable()) << l->name();

  const auto path = std::filesystem::temp_directory_path() / "reskit_test_frozen.h5";
  save_model(m, path.string());
  Model loaded = load_model(path.string());
  std::filesystem::remove(path);
  EXPECT_FALSE(loaded.get_layer("base_bn")->trainable());
  EXPECT_FALSE(loaded.get_layer("base_conv2")->trainable());
  EXPECT_TRUE(loaded.get_layer("head")->trainable());
  EXPECT_EQ(loaded.count_trainable_params(), 10);
  // Keras saves a layer's weights trainable first, then non-trainable, frozen or not: the same
  // order and values come back.
  auto a = m.parameters(), b = loaded.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->name, b[i]->name);
    EXPECT_TRUE(same_bits(a[i]->value, b[i]->value)) << a[i]->name;
  }
}

TEST(Frozen, GetLayerNamesTheMissingNameAndTheNearestOnes) {
  Model m = base_and_head();
  try {
    m.get_layer("base_bm");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Model 'frozen_test'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("got 'base_bm'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("nearest: 'base_bn', 'base_bn2'"), std::string::npos) << msg;
  }
  try {
    m.get_layer("zzzzzzzzzzzzzzzzzzzzzz");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("nearest"), std::string::npos) << e.what();
  }
  EXPECT_EQ(detail::edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(detail::edit_distance("", "abc"), 3u);
  EXPECT_EQ(detail::nearest_names("conv4_block6", {"conv4_block5_out", "conv4_block6_out", "pool"}),
            (std::vector<std::string>{"conv4_block6_out", "conv4_block5_out"}));
}

TEST(SubModel, PredictGivesTheIntermediateActivations) {
  Model m = base_and_head();
  Model features(m.inputs(), {m.get_layer("base_relu")->output()}, "features");
  EXPECT_EQ(features.layers().size(), 4u);
  EXPECT_EQ(features.count_params(), 76 + 16);
  EXPECT_NE(features.summary_string().find("base_relu (Activation)"), std::string::npos);
  Tensor x = random_images(5, 6);
  Tensor got = predict(features, x, 2);
  ASSERT_EQ(got.shape(), (Shape{5, 4, 4, 4}));
  // The same layers called one by one, eagerly (inference mode, nothing folded or fused).
  Tensor want = x;
  for (const char* name : {"base_conv", "base_bn", "base_relu"}) want = m.get_layer(name)->call({want});
  const auto a = got.to_vector(), b = want.to_vector();
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
  // The input layer's output is the model's input.
  EXPECT_EQ(m.get_layer("image")->output().node(), m.inputs()[0].node());
}

TEST(SubModel, SharesWeightsWithTheModelItCameFrom) {
  Model m = base_and_head();
  // A new head on the first block's features: training it trains the shared layers.
  Tensor f = GlobalAveragePooling2D()(m.get_layer("base_relu")->output());
  Tensor y = Dense(2, {.activation = "softmax", .name = "new_head"})(f);
  Model other(m.inputs(), {y}, "other");
  EXPECT_EQ(&other.get_layer("base_conv")->param("kernel"), &m.get_layer("base_conv")->param("kernel"));
  compile(other);
  Tensor x = random_images(8, 7);
  const Tensor before = predict(m, x);
  const Tensor kernel = m.get_layer("base_conv")->param("kernel").value.clone();
  other.train_on_batch(x, Tensor::from_values({8, 2}, {1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1}));
  EXPECT_FALSE(same_bits(m.get_layer("base_conv")->param("kernel").value, kernel));
  EXPECT_FALSE(same_bits(predict(m, x), before));
}

TEST(SubModel, FromALoadedModel) {
  Model m = base_and_head();
  const auto path = std::filesystem::temp_directory_path() / "reskit_test_submodel.h5";
  save_model(m, path.string());
  Model loaded = load_model(path.string());
  std::filesystem::remove(path);
  Model features(loaded.inputs(), {loaded.get_layer("base_out")->output()});
  Model original(m.inputs(), {m.get_layer("base_out")->output()});
  Tensor x = random_images(3, 8);
  EXPECT_TRUE(same_bits(predict(features, x), predict(original, x)));
}

TEST(SubModel, OutputErrors) {
  clear_session();
  Dense unused(3);
  try {
    unused->output();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Dense 'dense': expected a call on symbolic tensors"),
              std::string::npos)
        << e.what();
  }
  Tensor a = Input({4}), b = Input({4});
  Dense shared(2, {.name = "shared"});
  shared(a);
  shared(b);
  EXPECT_THROW(shared->output(), Error);
  Dense gone(2, {.name = "gone"});
  { gone(Input({4})); }
  try {
    gone->output();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("graph is gone"), std::string::npos) << e.what();
  }
}
