// The Keras .h5 corpus (tests/io/keras_corpus/gen_corpus.py, written into the build folder by the
// io_keras_corpus_files fixture): every file, in the layouts of Keras 2.2, tf.keras 2.6 and 2.11
// and Keras 3, functional and Sequential, with every layer class reskit reads, loads; predicts what
// the script's own numpy forward gives; trains one step (whose loss, for models that draw no random
// numbers in training, is the script's training-mode loss); and survives a round trip.
// The folder comes in RESKIT_KERAS_CORPUS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "reskit/io/h5.h"
#include "reskit/reskit.h"

namespace fs = std::filesystem;
using namespace reskit;
using Json = nlohmann::json;

namespace {

fs::path corpus_dir() {
  const char* dir = std::getenv("RESKIT_KERAS_CORPUS");
  return dir ? fs::path(dir) : fs::path();
}

Json manifest() {
  std::ifstream in(corpus_dir() / "corpus.json");
  if (!in) return Json::array();
  return Json::parse(in);
}

Shape shape_of(const Json& v) {
  Shape s;
  for (const auto& d : v) s.push_back(d.get<std::int64_t>());
  return s;
}

Tensor tensor_of(Shape shape, const Json& values) {
  std::vector<double> v = values.get<std::vector<double>>();
  return Tensor::from_values(std::move(shape), v, DType::float32);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    if (a.at(i) != b.at(i)) return false;
  return true;
}

class KerasCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(corpus_dir().empty()) << "RESKIT_KERAS_CORPUS is not set";
    entries_ = manifest();
    ASSERT_GE(entries_.size(), 15u) << "no corpus in " << corpus_dir();
  }
  std::string file(const Json& e) const { return (corpus_dir() / e["file"].get<std::string>()).string(); }
  Tensor input(const Json& e) const {
    Shape s = shape_of(e["input_shape"]);
    s.insert(s.begin(), e["y_shape"][0].get<std::int64_t>());
    return tensor_of(s, e["x"]);
  }
  Json entries_;
};

}  // namespace

TEST_F(KerasCorpus, CoversEveryLayoutAndEveryLayerClassReskitReads) {
  std::set<std::string> layouts, forms, classes;
  for (const auto& e : entries_) {
    layouts.insert(e["layout"].get<std::string>());
    forms.insert(e["form"].get<std::string>());
    const std::string path = file(e);
    Model m = load_model(path, {.compile = false});
    for (const auto& l : m.layers()) classes.insert(l->class_name());
  }
  EXPECT_EQ(layouts, (std::set<std::string>{"keras2.2", "tf2.6", "tf2.11", "keras3"}));
  EXPECT_EQ(forms, (std::set<std::string>{"functional", "input_layer", "first_layer", "build"}));
  // Every class reskit makes when loading appears.
  for (const auto& cls : keras_layer_classes()) {
    EXPECT_TRUE(classes.count(cls)) << cls << " is in no corpus model: add it to gen_corpus.py's MODELS";
  }
}

// SyncBatchNormalization as each layout writes it: its own class in tf.keras 2.x, Keras 3's
// BatchNormalization(synchronized=True); both load as reskit's SyncBatchNormalization.
TEST_F(KerasCorpus, SyncBatchNormalizationInEveryLayout) {
  int seen = 0;
  for (const auto& e : entries_) {
    if (file(e).find("sync_bn") == std::string::npos) continue;
    Model m = load_model(file(e), {.compile = false});
    int sync = 0;
    for (const auto& l : m.layers()) sync += l->class_name() == "SyncBatchNormalization";
    EXPECT_EQ(sync, 1) << file(e);
    ++seen;
  }
  EXPECT_EQ(seen, 3);  // tf.keras 2.6, 2.11 and Keras 3
}

TEST_F(KerasCorpus, EveryFileLoadsAndPredictsTheNumpyOutputs) {
  for (const auto& e : entries_) {
    SCOPED_TRACE(e["file"].get<std::string>());
    Model m = load_model(file(e));
    EXPECT_EQ(m.name(), e["model_name"].get<std::string>());
    EXPECT_EQ(m.layers().size(), e["layers"].get<std::size_t>());
    EXPECT_EQ(m.layers()[0]->name(), e["input_name"].get<std::string>());
    EXPECT_TRUE(m.compiled());
    EXPECT_EQ(m.sequential(), e["sequential"].get<bool>());
    Tensor y = m.forward(input(e), false);
    Tensor want = tensor_of(shape_of(e["y_shape"]), e["y"]);
    ASSERT_EQ(y.shape(), want.shape());
    for (std::int64_t i = 0; i < y.numel(); ++i)
      EXPECT_NEAR(y.at(i), want.at(i), 2e-5 + 2e-5 * std::fabs(want.at(i))) << "output " << i;
  }
}

TEST_F(KerasCorpus, EveryFileTrainsOneStepThenRoundTrips) {
  const fs::path tmp = fs::temp_directory_path() / ("reskit_corpus_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  for (const auto& e : entries_) {
    SCOPED_TRACE(e["file"].get<std::string>());
    Model m = load_model(file(e));
    ASSERT_TRUE(m.compiled());
    Tensor x = input(e);
    Tensor labels = tensor_of(shape_of(e["y_shape"]), e["labels"]);
    Param* first = m.trainable_parameters().front();
    Tensor before = first->value.clone();
    StepResult r = m.train_on_batch(x, labels);
    ASSERT_TRUE(std::isfinite(r.loss));
    // Models without Dropout or Random* layers: the loss of the training-mode forward (batch
    // statistics); with them the step, the weight change and the round trip are checked alone.
    if (!e["train_loss"].is_null()) EXPECT_NEAR(r.loss, e["train_loss"].get<double>(), 1e-5);
    EXPECT_FALSE(same_bits(first->value, before)) << first->name << " did not change";
    EXPECT_EQ(m.optimizer().iterations(), 1);
    const std::string saved = (tmp / e["file"].get<std::string>()).string();
    save_model(m, saved);
    Model again = load_model(saved);
    EXPECT_EQ(again.name(), m.name());
    EXPECT_EQ(again.sequential(), m.sequential());  // a Sequential is written back as one
    EXPECT_EQ(again.optimizer().iterations(), 1);
    EXPECT_TRUE(same_bits(again.forward(x, false), m.forward(x, false)));
  }
  fs::remove_all(tmp);
}

// ---------------------------------------------------------------- layouts without files

namespace {
// A Keras 3 functional model Input(4) -> Dense(2) with the Dense node's "args" and "kwargs".
std::string keras3_dense(const std::string& args, const std::string& kwargs) {
  return R"({"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
    "build_config": {"input_shape": null}, "config": {"name": "f", "trainable": true, "layers": [
    {"module": "keras.layers", "class_name": "InputLayer", "registered_name": null, "name": "x",
     "config": {"batch_shape": [null, 4], "dtype": "float32", "sparse": false, "name": "x"}, "inbound_nodes": []},
    {"module": "keras.layers", "class_name": "Dense", "registered_name": null, "name": "d",
     "build_config": {"input_shape": [null, 4]},
     "config": {"name": "d", "trainable": true, "units": 2, "activation": "softmax",
       "dtype": {"module": "keras", "class_name": "FloatDTypePolicy", "config": {"name": "float64"}, "registered_name": null}},
     "inbound_nodes": [{"args": )" +
         args + R"(, "kwargs": )" + kwargs + R"(}]}],
    "input_layers": {"x": ["x", 0, 0]}, "output_layers": ["d", 0, 0]}})";
}
const std::string kTensorX =
    R"({"class_name": "__keras_tensor__", "config": {"shape": [null, 4], "dtype": "float32", "keras_history": ["x", 0, 0]}})";

void expect_refused(const std::string& json, const std::string& text) {
  try {
    model_from_json(json);
    ADD_FAILURE() << "expected a ConfigError containing '" << text << "'";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(KerasLayouts, Keras3ToJsonFormLoads) {
  Model m = model_from_json(keras3_dense("[" + kTensorX + "]", R"({"training": false, "mask": null})"));
  EXPECT_EQ(m.name(), "f");
  EXPECT_EQ(m.dtype(), DType::float64);  // the policy object's name
  EXPECT_EQ(m.layers().size(), 2u);
  EXPECT_FALSE(m.sequential());
}

TEST(KerasLayouts, Keras3CallArgumentsAreCheckedAsTfKerasOnes) {
  expect_refused(keras3_dense("[" + kTensorX + "]", R"({"training": true})"),
                 "Dense 'd': unsupported call argument training=true");
  expect_refused(keras3_dense("[" + kTensorX + "]", R"({"mask": )" + kTensorX + "}"),
                 "tensors passed as keyword arguments are not supported");
  expect_refused(keras3_dense("[" + kTensorX + ", 3]", "{}"), "Dense 'd': unsupported call argument 3");
}

TEST(KerasLayouts, OldModelAndSequentialForms) {
  // Keras 2.2: class "Model", entries with the name first.
  Model m = model_from_json(R"({"class_name": "Model", "config": {"name": "model_1", "layers": [
    {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32",
     "sparse": false, "name": "input_1"}, "inbound_nodes": []},
    {"name": "dense_1", "class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "units": 2},
     "inbound_nodes": [[["input_1", 0, 0, {}]]]}],
    "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_1", 0, 0]]}})");
  EXPECT_EQ(m.name(), "model_1");
  // Keras 2.0/2.1: a Sequential config that is a bare list of layers.
  Model s = model_from_json(R"({"class_name": "Sequential", "config": [
    {"class_name": "Dense", "config": {"name": "dense_1", "units": 2, "batch_input_shape": [null, 3]}}]})");
  EXPECT_TRUE(s.sequential());
  EXPECT_EQ(s.layers()[0]->name(), "dense_1_input");
  // Written back as a Sequential, and read again.
  Model again = model_from_json(model_to_json(s));
  EXPECT_TRUE(again.sequential());
  EXPECT_EQ(again.summary_string(), s.summary_string());
}
