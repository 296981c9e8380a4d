// The Keras Applications ResNets: parameter and weight counts as Keras prints them, layer names,
// epsilons and row order of the summary; preprocess_input and decode_predictions.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "reskit/models/applications.h"
#include "reskit/models/registry.h"
#include "reskit/reskit.h"

using namespace reskit;
namespace app = reskit::applications;

namespace {
std::vector<std::string> summary_names(const Model& m) {
  std::vector<std::string> names;
  for (const auto& l : m.layers()) names.push_back(l->name());
  return names;
}

std::size_t position(const std::vector<std::string>& names, const std::string& name) {
  auto it = std::find(names.begin(), names.end(), name);
  EXPECT_NE(it, names.end()) << name;
  return static_cast<std::size_t>(it - names.begin());
}
}  // namespace

// Totals and non-trainable counts as Keras 2.x's model.summary() prints them, and
// len(model.weights), at 224x224 with the top; without it, 2,049,000 (Dense 2048 x 1000 + 1000)
// fewer and two weights fewer. tests/io/gen_keras_app_weights.py counts the same layer lists in
// Python and finds the same. (Building is the cost here: the weights' initialisation.)
namespace {
struct CountCase {
  const char* name;
  std::int64_t total, non_trainable;
  std::size_t weights;
};

void check_counts(const CountCase& c, bool also_notop) {
  clear_session();
  Model top = app::build(c.name, {.input_shape = {32, 32, 3}});
  EXPECT_EQ(top.name(), c.name);
  EXPECT_EQ(top.count_params(), c.total) << c.name;
  EXPECT_EQ(top.count_params() - top.count_trainable_params(), c.non_trainable) << c.name;
  EXPECT_EQ(top.parameters().size(), c.weights) << c.name;
  EXPECT_EQ(top.outputs()[0].shape(), (Shape{-1, 1000}));
  if (!also_notop) return;
  clear_session();
  Model notop = app::build(c.name, {.include_top = false});
  EXPECT_EQ(notop.count_params(), c.total - 2049000) << c.name;
  EXPECT_EQ(notop.parameters().size(), c.weights - 2) << c.name;
  EXPECT_EQ(notop.outputs()[0].shape(), (Shape{-1, 7, 7, 2048})) << c.name;
}
}  // namespace

// One test per architecture, each a few seconds.
TEST(Applications, ResNet50ParameterCounts) { check_counts({"resnet50", 25636712, 53120, 320}, true); }
TEST(Applications, ResNet101ParameterCounts) { check_counts({"resnet101", 44707176, 105344, 626}, false); }
TEST(Applications, ResNet152ParameterCounts) { check_counts({"resnet152", 60419944, 151424, 932}, false); }
TEST(Applications, ResNet50V2ParameterCounts) { check_counts({"resnet50v2", 25613800, 45440, 272}, true); }
TEST(Applications, ResNet101V2ParameterCounts) { check_counts({"resnet101v2", 44675560, 97664, 544}, false); }
TEST(Applications, ResNet152V2ParameterCounts) {
  check_counts({"resnet152v2", 60380648, 143744, 816}, false);
}

TEST(Applications, LayerNamesEpsilonsAndOrderAreKeras) {
  clear_session();
  Model m = app::resnet50();
  const auto names = summary_names(m);
  ASSERT_GE(names.size(), 10u);
  const std::vector<std::string> stem = {"input_1",    "conv1_pad", "conv1_conv", "conv1_bn",
                                         "conv1_relu", "pool1_pad", "pool1_pool", "conv2_block1_1_conv"};
  for (std::size_t i = 0; i < stem.size(); ++i) EXPECT_EQ(names[i], stem[i]);
  // Keras orders the shortcut after the main path's first two convolutions (by depth).
  const std::vector<std::string> block = {"conv2_block1_2_relu", "conv2_block1_0_conv", "conv2_block1_3_conv",
                                          "conv2_block1_0_bn",   "conv2_block1_3_bn",   "conv2_block1_add",
                                          "conv2_block1_out"};
  const std::size_t at = position(names, block[0]);
  for (std::size_t i = 0; i < block.size(); ++i) EXPECT_EQ(names[at + i], block[i]);
  EXPECT_EQ(names[names.size() - 2], "avg_pool");
  EXPECT_EQ(names.back(), "predictions");
  for (const auto& l : m.layers()) {
    if (auto* bn = dynamic_cast<BatchNormalizationLayer*>(l.get())) {
      EXPECT_DOUBLE_EQ(bn->options().epsilon, 1.001e-5) << l->name();
    }
  }
  EXPECT_EQ(m.get_layer("conv1_conv")->param("kernel").name, "conv1_conv/kernel:0");
  EXPECT_EQ(m.get_layer("conv5_block3_3_bn")->params()[3].name, "conv5_block3_3_bn/moving_variance:0");
  auto summary = m.summary_string();
  EXPECT_NE(summary.find("conv1_pad (ZeroPadding2D)       (None, 230, 230, 3)  0           input_1[0][0]"),
            std::string::npos);
  EXPECT_NE(summary.find("pool1_pool (MaxPooling2D)       (None, 56, 56, 64)   0           pool1_pad[0][0]"),
            std::string::npos);
  EXPECT_NE(summary.find("Total params: 25,636,712"), std::string::npos);

  // V2: pre-activation, the conv shortcut reads the pre-activation, 1x1 max pooling on the
  // identity shortcut where a block strides (the last block of conv2..conv4), post_bn at the end.
  clear_session();
  Model v2 = app::resnet50_v2({.include_top = false, .input_shape = {64, 64, 3}, .pooling = "max"});
  const auto n2 = summary_names(v2);
  EXPECT_EQ(n2[1], "conv1_pad");
  EXPECT_EQ(n2[2], "conv1_conv");
  EXPECT_EQ(n2[3], "pool1_pad");
  EXPECT_EQ(n2.back(), "max_pool");
  EXPECT_EQ(n2[n2.size() - 3], "post_bn");
  EXPECT_EQ(n2[n2.size() - 2], "post_relu");
  const auto& shortcut = v2.node_of(*v2.get_layer("conv2_block1_0_conv"));
  EXPECT_EQ(v2.nodes()[shortcut.inputs[0]].layer->name(), "conv2_block1_preact_relu");
  EXPECT_FALSE(dynamic_cast<Conv2DLayer&>(*v2.get_layer("conv2_block1_1_conv")).options().use_bias);
  EXPECT_TRUE(dynamic_cast<Conv2DLayer&>(*v2.get_layer("conv2_block1_3_conv")).options().use_bias);
  int pools = 0;
  for (const auto& name : n2) pools += name.rfind("max_pooling2d", 0) == 0;
  EXPECT_EQ(pools, 3);
  EXPECT_EQ(v2.node_of(*v2.get_layer("conv4_block5_2_conv")).output_shape, (Shape{-1, 4, 4, 256}));
  EXPECT_EQ(v2.node_of(*v2.get_layer("conv4_block6_2_conv")).output_shape, (Shape{-1, 2, 2, 256}));
  EXPECT_EQ(v2.node_of(*v2.get_layer("conv5_block3_2_conv")).output_shape, (Shape{-1, 2, 2, 512}));
  EXPECT_EQ(v2.outputs()[0].shape(), (Shape{-1, 2048}));
}

TEST(Applications, OptionsAreChecked) {
  clear_session();
  EXPECT_THROW(app::resnet50({.input_shape = {31, 64, 3}}), ShapeError);
  EXPECT_THROW(app::resnet50({.input_shape = {64, 64, 1}}), ShapeError);
  EXPECT_THROW(app::resnet50({.include_top = false, .pooling = "mean"}), ConfigError);
  EXPECT_THROW(app::resnet50({.classifier_activation = "relu6"}), ConfigError);
  EXPECT_THROW(app::build("resnet18"), ConfigError);
  clear_session();
  Model logits = app::resnet50({.input_shape = {32, 32, 3}, .classes = 7, .classifier_activation = "linear"});
  EXPECT_FALSE(logits.layers().back()->outputs_softmax());
  EXPECT_EQ(logits.outputs()[0].shape(), (Shape{-1, 7}));
  // The CLI's names.
  clear_session();
  Model transfer = build_model("resnet50-imagenet", {32, 32, 3}, 4,
                               {.include_top = false, .pooling = "avg", .new_head = true});
  EXPECT_EQ(transfer.layers().back()->name(), "dense");
  EXPECT_EQ(transfer.count_params(), 23587712 + 2048 * 4 + 4);
  EXPECT_THROW(build_model("resnet50-imagenet", {32, 32, 3}, 4, {.include_top = false, .new_head = true}),
               ConfigError);
  EXPECT_THROW(build_model("resnet20", {32, 32, 3}, 4, {.include_top = false}), ConfigError);
  EXPECT_EQ(application_architecture("resnet152v2-imagenet"), "resnet152v2");
  EXPECT_EQ(application_architecture("resnet50"), "");
}

TEST(Applications, PreprocessInputModes) {
  Tensor x = Tensor::from_values({1, 1, 2, 3}, {0, 127.5, 255, 10, 20, 30}, DType::float32);
  Tensor caffe = app::preprocess_input(x, app::PreprocessMode::caffe);
  const double expect_caffe[] = {255 - 103.939, 127.5 - 116.779, 0 - 123.68,
                                 30 - 103.939,  20 - 116.779,    10 - 123.68};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(caffe.at(i), expect_caffe[i], 1e-4) << i;
  Tensor tf = app::preprocess_input(x, app::PreprocessMode::tf);
  EXPECT_NEAR(tf.at(0), -1.0, 1e-6);
  EXPECT_NEAR(tf.at(1), 0.0, 1e-6);
  EXPECT_NEAR(tf.at(2), 1.0, 1e-6);
  Tensor torch = app::preprocess_input(x.to(DType::float64), app::PreprocessMode::torch);
  EXPECT_NEAR(torch.at(1), (0.5 - 0.456) / 0.224, 1e-12);
  EXPECT_EQ(x.at(0), 0.0);  // the input is left alone
  EXPECT_THROW(app::preprocess_input(Tensor({2, 4}), app::PreprocessMode::tf), ShapeError);
  EXPECT_EQ(app::preprocess_mode_of("resnet101"), app::PreprocessMode::caffe);
  EXPECT_EQ(app::preprocess_mode_of("resnet101v2"), app::PreprocessMode::tf);
  EXPECT_EQ(app::preprocess_mode("torch"), app::PreprocessMode::torch);
  EXPECT_THROW(app::preprocess_mode("keras"), ConfigError);
}

TEST(Applications, DecodePredictions) {
  const std::string json =
      R"({"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"], "2": ["n01484850", "great_white_shark"]})";
  const auto path = std::filesystem::temp_directory_path() / "reskit_class_index_test.json";
  { std::ofstream(path) << json; }
  app::ClassIndex index = app::read_class_index(path.string());
  std::filesystem::remove(path);
  ASSERT_EQ(index.size(), 3u);
  EXPECT_EQ(index[1].first, "n01443537");
  EXPECT_EQ(index[2].second, "great_white_shark");
  Tensor preds = Tensor::from_values({2, 3}, {0.2, 0.5, 0.3, 0.4, 0.2, 0.4});
  auto d = app::decode_predictions(preds, index, 2);
  ASSERT_EQ(d.size(), 2u);
  ASSERT_EQ(d[0].size(), 2u);
  EXPECT_EQ(d[0][0].class_id, "n01443537");
  EXPECT_EQ(d[0][0].name, "goldfish");
  EXPECT_NEAR(d[0][0].score, 0.5, 1e-6);
  EXPECT_EQ(d[0][1].name, "great_white_shark");
  EXPECT_EQ(d[1][0].name, "tench");  // a tie: the lower class first
  EXPECT_EQ(d[1][1].name, "great_white_shark");
  EXPECT_EQ(app::decode_predictions(preds, index, 10)[0].size(), 3u);
  EXPECT_THROW(app::decode_predictions(Tensor({2, 4}), index), ShapeError);
  EXPECT_THROW(app::decode_predictions(preds, index, 0), ConfigError);
  EXPECT_THROW(app::parse_class_index(R"({"0": ["n1", "a"], "2": ["n2", "b"]})", "t"), ConfigError);
  EXPECT_THROW(app::parse_class_index(R"({"0": "tench"})", "t"), ConfigError);
  EXPECT_THROW(app::parse_class_index("[1, 2]", "t"), ConfigError);
  EXPECT_THROW(app::read_class_index("/nonexistent/imagenet_class_index.json"), FileError);
}
