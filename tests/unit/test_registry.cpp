// Every layer the registry knows (layers/registry.h), from its samples below: a float64
// finite-difference gradient check in training and in inference mode, the Keras config round
// trip (config -> layer -> config gives the same config, summary and weights), and an ONNX
// export of the one-layer model that passes ONNX's checker and strict shape inference with
// Keras's output shape (or the documented refusal). A registered layer without samples here
// fails EveryRegisteredLayerHasSamples. The documented list of readable layers (reskit/io/h5.h)
// is held to the registry.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gradcheck/gradcheck.h"
#include "layers/registry.h"
#include "reskit/io/h5.h"
#include "reskit/io/onnx.h"
#include "reskit/reskit.h"
#include "support/error_of.h"

namespace fs = std::filesystem;
using namespace reskit;
using keras::Json;
using reskit::test::error_of;
using reskit::testing::check_gradients;
using reskit::testing::random_tensor;

namespace {

struct Sample {
  Json config;                // the layer's Keras config, without its name
  std::vector<Shape> inputs;  // batch-free input shapes
  // Dropout: a fresh random mask per training call, so its training backward is checked against
  // the mask it used instead of finite differences.
  bool random_in_training = false;
  // The Random* image layers: fresh random parameters per training call, each draw a linear map
  // of the input, so the training backward is checked as that map's adjoint: <y, g> = <x, dx>.
  bool linear_in_training = false;
};

Json seeded(const char* initializer, int seed) {
  return {{"class_name", initializer}, {"config", {{"seed", seed}}}};
}

// Small instances of every registered class; initializers seeded so that a rebuilt layer has the
// same weights. Inputs of rank 2 or 4 (with the batch) so that ONNX exports them.
const std::map<std::string, std::vector<Sample>>& samples() {
  static const std::map<std::string, std::vector<Sample>> all{
      {"InputLayer", {{{{"batch_input_shape", {nullptr, 3, 4, 2}}}, {}}}},
      {"ZeroPadding2D", {{{{"padding", {{1, 2}, {0, 3}}}}, {{3, 4, 2}}}}},
      {"Conv2D",
       {{{{"filters", 3},
          {"kernel_size", {2, 2}},
          {"strides", {2, 2}},
          {"padding", "same"},
          {"activation", "relu"},
          {"kernel_initializer", seeded("GlorotUniform", 7)},
          {"bias_initializer", seeded("RandomNormal", 7)}},
         {{5, 5, 2}}},
        {{{"filters", 4},
          {"kernel_size", 3},
          {"use_bias", false},
          {"activation", "tanh"},
          {"kernel_initializer", seeded("HeNormal", 8)}},
         {{5, 6, 3}}}}},
      {"BatchNormalization",
       {{{{"momentum", 0.9}, {"epsilon", 0.01}}, {{3, 4, 3}}}, {{{"axis", -1}}, {{5}}}}},
      {"SyncBatchNormalization", {{{{"momentum", 0.9}, {"epsilon", 0.01}}, {{3, 4, 3}}}}},
      {"Activation",
       {{{{"activation", "relu"}}, {{2, 3, 4}}},
        {{{"activation", "softmax"}}, {{6}}},
        {{{"activation", "sigmoid"}}, {{6}}},
        {{{"activation", "tanh"}}, {{2, 2, 3}}},
        {{{"activation", "linear"}}, {{6}}},
        {{{"activation", "elu"}}, {{2, 2, 3}}},
        {{{"activation", "selu"}}, {{6}}},
        {{{"activation", "softplus"}}, {{6}}},
        {{{"activation", "softsign"}}, {{2, 2, 3}}},
        {{{"activation", "swish"}}, {{6}}},
        {{{"activation", "silu"}}, {{6}}},
        {{{"activation", "exponential"}}, {{6}}}}},
      {"Add", {{Json::object(), {{3, 2, 2}, {3, 2, 2}, {3, 2, 2}}}, {Json::object(), {{5}, {5}}}}},
      {"MaxPooling2D",
       {{{{"pool_size", {3, 3}}, {"strides", {2, 2}}, {"padding", "same"}}, {{5, 5, 2}}},
        {Json::object(), {{4, 5, 3}}}}},
      {"AveragePooling2D",
       {{{{"pool_size", {3, 3}}, {"strides", {2, 2}}, {"padding", "same"}}, {{5, 4, 2}}},
        {Json::object(), {{4, 5, 3}}}}},
      {"GlobalMaxPooling2D", {{Json::object(), {{3, 4, 5}}}}},
      {"GlobalAveragePooling2D", {{Json::object(), {{3, 4, 5}}}}},
      {"Flatten", {{Json::object(), {{3, 2, 2}}}}},
      {"Dense",
       {{{{"units", 4}, {"activation", "softmax"}, {"kernel_initializer", seeded("GlorotUniform", 9)}},
         {{6}}},
        {{{"units", 3},
          {"activation", "relu"},
          {"use_bias", false},
          {"kernel_initializer", seeded("HeUniform", 9)}},
         {{6}}}}},
      {"Dropout", {{{{"rate", 0.4}, {"seed", 5}}, {{50}}, true}}},
      {"Resizing",
       {{{{"height", 3}, {"width", 5}}, {{4, 6, 2}}},
        {{{"height", 5}, {"width", 4}, {"interpolation", "bicubic"}, {"crop_to_aspect_ratio", true}},
         {{6, 7, 2}}},
        {{{"height", 2}, {"width", 3}, {"interpolation", "nearest"}}, {{5, 5, 1}}},
        // Keras 3's keys, at the values reskit reproduces.
        {{{"height", 3},
          {"width", 2},
          {"interpolation", "bilinear"},
          {"data_format", "channels_last"},
          {"pad_to_aspect_ratio", false},
          {"fill_mode", "constant"},
          {"fill_value", 0.0},
          {"antialias", false},
          {"crop_to_aspect_ratio", false}},
         {{4, 4, 2}}}}},
      {"CenterCrop",
       {{{{"height", 2}, {"width", 3}}, {{4, 6, 2}}}, {{{"height", 5}, {"width", 4}}, {{3, 6, 1}}}}},
      {"RandomFlip",
       {{{{"mode", "horizontal_and_vertical"}, {"seed", 3}}, {{4, 5, 2}}, false, true},
        {{{"mode", "horizontal"}}, {{3, 4, 1}}, false, true}}},
      {"RandomRotation",
       {{{{"factor", 0.2}, {"seed", 4}}, {{5, 6, 2}}, false, true},
        {{{"factor", {-0.1, 0.3}}, {"fill_mode", "constant"}, {"interpolation", "nearest"}},
         {{4, 4, 1}},
         false,
         true}}},
      {"RandomZoom",
       {{{{"height_factor", 0.3}, {"seed", 5}}, {{5, 6, 2}}, false, true},
        {{{"height_factor", {-0.2, 0.1}}, {"width_factor", 0.4}, {"fill_mode", "wrap"}},
         {{4, 5, 1}},
         false,
         true}}},
      {"RandomTranslation",
       {{{{"height_factor", 0.2}, {"width_factor", {-0.3, 0.1}}, {"fill_mode", "nearest"}, {"seed", 6}},
         {{5, 4, 2}},
         false,
         true}}},
      {"RandomContrast",
       {{{{"factor", 0.5}, {"seed", 7}}, {{4, 4, 3}}, false, true},
        {{{"factor", {0.2, 0.4}}, {"value_range", {-100.0, 100.0}}, {"data_format", "channels_last"}},
         {{3, 5, 2}},
         false,
         true}}},
      {"Rescaling",
       {{{{"scale", 0.5}, {"offset", -1.25}}, {{3, 2, 2}}},
        {{{"scale", {2.0, -1.0, 0.25}}, {"offset", {0.5, 0.0, -0.5}}}, {{2, 2, 3}}},
        {{{"scale", 4.0}}, {{5}}},
        {{{"scale",
           {{"class_name", "__numpy__"}, {"config", {{"value", {1.5, 2.0}}, {"dtype", "float32"}}}}}},
         {{2, 2, 2}}}}},
      {"Normalization",
       {{{{"axis", {-1}}}, {{3, 2, 4}}},    // weights, per channel
        {{{"axis", nullptr}}, {{5}}},       // one mean and variance
        {{{"axis", {1, 2}}}, {{3, 2, 2}}},  // per pixel
        {{{"axis", -1}, {"mean", {1.0, -2.0}}, {"variance", {4.0, 0.25}}}, {{3, 2, 2}}},
        {{{"mean", 0.5}, {"variance", 2.0}, {"invert", true}}, {{6}}}}},
      {"ReLU",
       {{Json::object(), {{2, 3, 4}}},
        {{{"max_value", 0.6}, {"negative_slope", 0.1}, {"threshold", 0.2}}, {{2, 2, 3}}},
        {{{"max_value", 6.0}}, {{7}}},
        {{{"negative_slope", 0.2}}, {{7}}},
        {{{"threshold", 0.3}}, {{7}}}}},
      {"LeakyReLU", {{Json::object(), {{2, 3, 4}}}, {{{"alpha", 0.1}}, {{6}}}}},
      {"Softmax",
       {{Json::object(), {{2, 2, 3}}}, {{{"axis", 1}}, {{3, 2, 2}}}, {{{"axis", -2}}, {{4, 3, 2}}}}},
      {"Concatenate",
       {{Json::object(), {{2, 2, 3}, {2, 2, 1}, {2, 2, 2}}},
        {{{"axis", 1}}, {{1, 3, 2}, {2, 3, 2}}},
        {{{"axis", -1}}, {{4}, {3}}}}},
  };
  return all;
}

// The one-layer model of a sample: its inputs named in0, in1, ...; the layer "under_test".
Model build(const layers::LayerEntry& entry, Json config, const std::vector<Shape>& shapes) {
  config["name"] = "under_test";
  std::vector<Tensor> inputs;
  for (std::size_t i = 0; i < shapes.size(); ++i)
    inputs.push_back(Input(shapes[i], {.name = "in" + std::to_string(i)}));
  keras::WeightBudget budget{std::uint64_t{1} << 30, 0, floatx()};
  Tensor out = entry.from_config(config, {entry.class_name, "under_test"}, inputs, budget);
  if (inputs.empty()) inputs.push_back(out);  // an InputLayer is its own model
  return Model(inputs, {out}, "one_layer");
}

Layer& layer_under_test(const Model& model) { return *model.get_layer("under_test"); }

// Concrete float64 inputs (batch 3) for the model's inputs.
std::vector<Tensor> concrete_inputs(const Model& model, std::uint64_t seed) {
  std::vector<Tensor> out;
  for (const auto& t : model.inputs()) {
    Shape s = t.shape();
    s[0] = 3;
    out.push_back(random_tensor(s, seed++, 1.5));
  }
  return out;
}

// Weights made non-trivial (non-zero biases, beta, moving mean; moving variance stays positive).
void randomize_params(Layer& layer, std::uint64_t seed) {
  for (auto& p : layer.params()) {
    Tensor r = random_tensor(p.value.shape(), seed++, 0.5);
    for (std::int64_t i = 0; i < r.numel(); ++i) p.value.set(i, p.value.at(i) + r.at(i) * 0.1);
  }
}

std::string what(const std::string& class_name, std::size_t index) {
  return class_name + " sample " + std::to_string(index);
}

class Registry : public ::testing::Test {
 protected:
  void SetUp() override {
    set_floatx(DType::float64);
    set_random_seed(3);
    clear_session();
  }
  void TearDown() override { set_floatx(DType::float32); }
};

}  // namespace

TEST_F(Registry, EveryRegisteredLayerHasSamples) {
  std::set<std::string> registered;
  for (const auto& e : layers::layer_entries()) {
    registered.insert(e.class_name);
    EXPECT_TRUE(samples().count(e.class_name) && !samples().at(e.class_name).empty())
        << e.class_name << " is registered but has no sample in tests/unit/test_registry.cpp";
    EXPECT_TRUE(e.from_config && e.to_config) << e.class_name;
    EXPECT_TRUE(e.to_onnx || !e.no_onnx.empty()) << e.class_name << ": neither to_onnx nor why not";
  }
  for (const auto& [name, list] : samples())
    EXPECT_TRUE(registered.count(name)) << name << " is not registered";
}

TEST_F(Registry, GradientsInTrainingAndInferenceMode) {
  for (const auto& entry : layers::layer_entries()) {
    const auto& list = samples().at(entry.class_name);
    for (std::size_t k = 0; k < list.size(); ++k) {
      const Sample& sample = list[k];
      Model model = build(entry, sample.config, sample.inputs);
      Layer& layer = layer_under_test(model);
      if (layer.expected_inputs() == 0) continue;  // an InputLayer computes nothing
      randomize_params(layer, 40 + k);
      std::vector<Tensor> x = concrete_inputs(model, 10 + k);
      std::vector<Param*> params;
      for (auto& p : layer.params()) params.push_back(&p);
      for (bool training : {true, false}) {
        const std::string name = what(entry.class_name, k) + (training ? " training" : " inference");
        SCOPED_TRACE(name);
        if (training && sample.random_in_training) {
          // dx = dy · y / x elementwise: the mask of the forward pass.
          Tensor y = layer.forward(x, true);
          Tensor g = random_tensor(y.shape(), 5);
          Tensor dx = layer.backward(g)[0];
          for (std::int64_t i = 0; i < y.numel(); ++i)
            EXPECT_NEAR(dx.at(i), g.at(i) * y.at(i) / x[0].at(i), 1e-12);
          continue;
        }
        if (training && sample.linear_in_training) {
          Tensor y = layer.forward(x, true);
          Tensor g = random_tensor(y.shape(), 5);
          Tensor dx = layer.backward(g)[0];
          double lhs = 0, rhs = 0;
          for (std::int64_t i = 0; i < y.numel(); ++i) lhs += y.at(i) * g.at(i);
          for (std::int64_t i = 0; i < dx.numel(); ++i) rhs += x[0].at(i) * dx.at(i);
          EXPECT_NEAR(lhs, rhs, 1e-10 * (std::abs(lhs) + 1));
          continue;
        }
        check_gradients(
            name, [&] { return layer.forward(x, training); },
            [&](const Tensor& g) { return layer.backward(g); }, x, params);
      }
    }
  }
}

TEST_F(Registry, ConfigRoundTripKeepsConfigSummaryAndWeights) {
  for (const auto& entry : layers::layer_entries()) {
    const auto& list = samples().at(entry.class_name);
    for (std::size_t k = 0; k < list.size(); ++k) {
      SCOPED_TRACE(what(entry.class_name, k));
      const Sample& sample = list[k];
      clear_session();
      Model a = build(entry, sample.config, sample.inputs);
      const Layer& la = layer_under_test(a);
      const Json config = entry.to_config(la, a.node_of(la).output_shape);
      EXPECT_EQ(config["name"], "under_test");
      clear_session();
      Json reread = config;
      reread.erase("name");
      Model b = build(entry, reread, sample.inputs);
      const Layer& lb = layer_under_test(b);
      EXPECT_EQ(entry.to_config(lb, b.node_of(lb).output_shape), config);
      EXPECT_EQ(a.summary_string(), b.summary_string());
      ASSERT_EQ(la.params().size(), lb.params().size());
      for (std::size_t p = 0; p < la.params().size(); ++p) {
        const Param& pa = la.params()[p];
        const Param& pb = lb.params()[p];
        EXPECT_EQ(pa.name, pb.name);
        EXPECT_EQ(pa.trainable, pb.trainable);
        EXPECT_EQ(pa.value.shape(), pb.value.shape());
        EXPECT_EQ(pa.value.to_vector(), pb.value.to_vector()) << pa.name;
      }
    }
  }
}

TEST_F(Registry, OnnxExportOfEachLayer) {
  set_floatx(DType::float32);
  const fs::path dir = fs::temp_directory_path() / ("reskit_registry_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& entry : layers::layer_entries()) {
    const auto& list = samples().at(entry.class_name);
    for (std::size_t k = 0; k < list.size(); ++k) {
      SCOPED_TRACE(what(entry.class_name, k));
      Model model = build(entry, list[k].config, list[k].inputs);
      const std::string path = (dir / (entry.class_name + std::to_string(k) + ".onnx")).string();
      if (!entry.to_onnx) {
        try {
          export_onnx(model, path);
          ADD_FAILURE() << "expected export_onnx to refuse " << entry.class_name;
        } catch (const ConfigError& e) {
          EXPECT_NE(std::string(e.what()).find(entry.no_onnx), std::string::npos) << e.what();
        }
        continue;
      }
      ASSERT_NO_THROW(export_onnx(model, path));
      onnx::ModelProto m;
      std::ifstream in(path, std::ios::binary);
      ASSERT_TRUE(m.ParseFromIstream(&in));
      ASSERT_NO_THROW(onnx::checker::check_model(m));
      ASSERT_NO_THROW(onnx::shape_inference::InferShapes(
          m, onnx::OpSchemaRegistry::Instance(),
          onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1)));
      // The graph's output has Keras's (NHWC) shape; the layer's own value, NCHW when 4-D.
      const Shape& keras = model.nodes()[model.output_nodes()[0]].output_shape;
      ASSERT_EQ(m.graph().output_size(), 1);
      std::vector<std::int64_t> dims;
      for (const auto& d : m.graph().output(0).type().tensor_type().shape().dim())
        dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
      EXPECT_EQ(dims, std::vector<std::int64_t>(keras.begin(), keras.end()));
      for (const auto& v : m.graph().value_info()) {
        if (v.name() != "under_test") continue;
        std::vector<std::int64_t> want(keras.begin(), keras.end());
        if (want.size() == 4) want = {keras[0], keras[3], keras[1], keras[2]};
        std::vector<std::int64_t> got;
        for (const auto& d : v.type().tensor_type().shape().dim())
          got.push_back(d.has_dim_value() ? d.dim_value() : -1);
        EXPECT_EQ(got, want);
      }
    }
  }
  fs::remove_all(dir);
}

// The list in reskit/io/h5.h's header comment is the registry's.
TEST_F(Registry, DocumentedLayerListIsTheRegistry) {
  std::ifstream in(std::string(RESKIT_SOURCE_DIR) + "/include/reskit/io/h5.h");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  const std::string start = "keras_layer_classes() lists:";
  const auto from = doc.find(start);
  ASSERT_NE(from, std::string::npos);
  const auto to = doc.find(" (tests/unit/", from);
  ASSERT_NE(to, std::string::npos);
  std::string list = doc.substr(from + start.size(), to - from - start.size());
  // Read the capitalised words outside comment markers and parenthesised remarks.
  std::vector<std::string> names;
  std::string word;
  int depth = 0;
  for (char c : list + " ") {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    const bool letter = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (depth == 0 && letter && (!word.empty() || std::isupper(static_cast<unsigned char>(c)))) {
      word += c;
    } else if (!letter || depth > 0) {
      if (!word.empty()) names.push_back(word);
      word.clear();
    }
  }
  EXPECT_EQ(names, keras_layer_classes());
  EXPECT_EQ(keras_layer_classes(), layers::readable_classes());
}

namespace {
// A layer class the registry does not know.
class CustomLayer : public Layer {
 public:
  CustomLayer() : Layer("Custom", "custom") {}
  Shape output_shape(const std::vector<Shape>& inputs) const override { return single_input(inputs); }
  Tensor forward(const std::vector<Tensor>& inputs, bool /*training*/) override { return inputs[0]; }
  std::vector<Tensor> backward(const Tensor& dy) override { return {dy}; }
};

}  // namespace

// Files, export and fusion refuse or skip a class the registry lacks; the refusals list the
// registered classes.
TEST_F(Registry, UnregisteredLayerIsRefusedNamingTheRegisteredOnes) {
  Tensor in = Input({4, 4, 2}, {.name = "image"});
  Tensor x = BatchNormalization({.name = "bn"})(in);
  x = LayerRef<CustomLayer>(std::make_shared<CustomLayer>())(x);
  Model model(in, Activation("relu", {.name = "relu"})(x));
  EXPECT_EQ(model.forward(random_tensor({2, 4, 4, 2}, 1), true).shape(), (Shape{2, 4, 4, 2}));

  // Every registered class is named, in registry order (the lists grow with the registry).
  const std::vector<std::string> classes = keras_layer_classes();
  std::string listed;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    listed += (i == 0 ? "" : i + 1 == classes.size() ? " and " : ", ") + classes[i];
  }
  EXPECT_NE(error_of([&] {
              export_onnx(model, "/nonexistent/x.onnx");
            }).find("Custom 'custom' has no ONNX export (export_onnx covers " + listed + ")"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model_to_json(model); }).find("cannot save layer class 'Custom' (layer 'custom')"),
            std::string::npos);

  Model readable(in, BatchNormalization({.name = "bn2"})(in));
  std::string json = model_to_json(readable);
  json.replace(json.find("\"BatchNormalization\""), 20, "\"Custom\"");
  std::string reads;
  for (const auto& c : classes) reads += (reads.empty() ? "" : ", ") + c;
  EXPECT_NE(error_of([&] {
              model_from_json(json);
            }).find("unsupported layer class 'Custom' (layer 'bn2'); reskit reads " + reads),
            std::string::npos);
}
