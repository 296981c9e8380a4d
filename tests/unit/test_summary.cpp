// Model.summary() against the Keras table: ResNet-50's rows and totals, both variants.
#include <gtest/gtest.h>

#include <sstream>

#include "reskit/reskit.h"

using namespace reskit;

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}
std::string pad(std::string s, std::size_t n) {
  s.resize(n, ' ');
  return s;
}
}  // namespace

TEST(Summary, ResNet50MatchesKerasTable) {
  clear_session();
  Model model = resnet50({64, 64, 3}, 6);
  auto lines = lines_of(model.summary_string());
  ASSERT_GT(lines.size(), 20u);
  EXPECT_EQ(lines[0], "Model: \"resnet50\"");
  EXPECT_EQ(lines[1], std::string(98, '_'));
  EXPECT_EQ(lines[2],
            pad("Layer (type)                    Output Shape         Param #     Connected to", 98));
  EXPECT_EQ(lines[3], std::string(98, '='));
  EXPECT_EQ(lines[4], pad("input_1 (InputLayer)            [(None, 64, 64, 3)]  0", 98));
  EXPECT_EQ(lines[5], std::string(98, '_'));
  EXPECT_EQ(lines[6],
            pad("zero_padding2d (ZeroPadding2D)  (None, 70, 70, 3)    0           input_1[0][0]", 98));
  EXPECT_EQ(lines[8],
            pad("conv1 (Conv2D)                  (None, 32, 32, 64)   9472        zero_padding2d[0][0]", 98));
  EXPECT_EQ(lines[10],
            pad("bn1 (BatchNormalization)        (None, 32, 32, 64)   256         conv1[0][0]", 98));
  EXPECT_EQ(lines[12], pad("activation (Activation)         (None, 32, 32, 64)   0           bn1[0][0]", 98));
  EXPECT_EQ(lines[14],
            pad("max_pooling2d (MaxPooling2D)    (None, 15, 15, 64)   0           activation[0][0]", 98));
  const auto n = lines.size();
  EXPECT_EQ(lines[n - 5], std::string(98, '='));
  EXPECT_EQ(lines[n - 4], "Total params: 23,600,006");
  EXPECT_EQ(lines[n - 3], "Trainable params: 23,546,886");
  EXPECT_EQ(lines[n - 2], "Non-trainable params: 53,120");
  EXPECT_EQ(lines[n - 1], std::string(98, '_'));
  // Add shows its second inbound on its own line, other columns blank.
  bool found_add = false;
  for (std::size_t i = 0; i + 1 < n; ++i) {
    if (lines[i].rfind("add (Add)", 0) == 0) {
      found_add = true;
      EXPECT_EQ(lines[i],
                pad("add (Add)                       (None, 15, 15, 256)  0           bn_2a2c[0][0]", 98));
      EXPECT_EQ(lines[i + 1], pad(std::string(65, ' ') + "bn_2a1[0][0]", 98));
    }
  }
  EXPECT_TRUE(found_add);
  for (const auto& l : lines)
    if (l.rfind("Model:", 0) != 0 && l.rfind("Total", 0) != 0 && l.rfind("Trainable", 0) != 0 &&
        l.rfind("Non-trainable", 0) != 0)
      EXPECT_EQ(l.size(), 98u) << l;
}

TEST(Summary, NotebookCodeVariantTotals) {
  clear_session();
  Model model = resnet50({64, 64, 3}, 6, resnet50_notebook_code_variant());
  EXPECT_EQ(model.count_params(), 23610822);
  EXPECT_EQ(model.count_trainable_params(), 23557734);
  EXPECT_EQ(model.count_params() - model.count_trainable_params(), 53088);
}

TEST(Summary, SequentialLikeModelUsesThreeColumns) {
  clear_session();
  Tensor in = Input({4});
  Tensor out = Dense(2, {.name = "d"})(in);
  Model m(in, out, "tiny");
  auto lines = lines_of(m.summary_string());
  EXPECT_EQ(lines[1], std::string(65, '_'));
  EXPECT_EQ(lines[2], pad("Layer (type)                 Output Shape              Param #", 65));
  EXPECT_EQ(lines[6], pad("d (Dense)                    (None, 2)                 10", 65));
  EXPECT_EQ(lines[8], "Total params: 10");
}

// Keras's Sequential.summary() has no InputLayer row (Sequential.layers leaves it out).
TEST(Summary, SequentialModelLeavesOutTheInputLayer) {
  clear_session();
  Tensor in = Input({4});
  Tensor out = Dense(2, {.name = "d"})(in);
  Model m(in, out, "sequential");
  EXPECT_FALSE(m.sequential());
  m.set_sequential(true);
  EXPECT_TRUE(m.sequential());
  auto lines = lines_of(m.summary_string());
  EXPECT_EQ(lines[3], std::string(65, '='));
  EXPECT_EQ(lines[4], pad("d (Dense)                    (None, 2)                 10", 65));
  EXPECT_EQ(lines[5], std::string(65, '='));
  EXPECT_EQ(lines[6], "Total params: 10");
  // A branching model cannot be Sequential.
  Tensor a = Input({4});
  Tensor b = Dense(4)(a);
  Model branched(a, Add()({a, b}), "branched");
  EXPECT_THROW(branched.set_sequential(true), ConfigError);
}

// Parameter counts against independent implementations: the CIFAR ResNets of the PyTorch peer
// (bench/torch_fmnist.py's ResNetC: trainable = parameters, non-trainable = BN running
// statistics) and torchvision's ResNet-18/34 (11,689,512 and 21,797,672; reskit's conv1 has the
// Keras default bias, 64 more).
TEST(Summary, MoreResNetsMatchIndependentCounts) {
  struct Case {
    const char* name;
    Shape input;
    int classes;
    std::int64_t trainable, non_trainable;
  };
  const Case cases[] = {
      {"resnet20", {28, 28, 1}, 10, 272186, 1568},     {"resnet20", {32, 32, 3}, 10, 272474, 1568},
      {"resnet32", {32, 32, 3}, 10, 466906, 2464},     {"resnet44", {32, 32, 3}, 10, 661338, 3360},
      {"resnet56", {32, 32, 3}, 10, 855770, 4256},     {"resnet110", {32, 32, 3}, 10, 1730714, 8288},
      {"resnet18", {224, 224, 3}, 1000, 11689576, -1}, {"resnet34", {224, 224, 3}, 1000, 21797736, -1},
  };
  for (const auto& c : cases) {
    clear_session();
    Model m = build_model(c.name, c.input, c.classes);
    EXPECT_EQ(m.count_trainable_params(), c.trainable) << c.name;
    if (c.non_trainable >= 0)
      EXPECT_EQ(m.count_params() - m.count_trainable_params(), c.non_trainable) << c.name;
    EXPECT_NE(m.summary_string().find("Total params: "), std::string::npos);
  }
  // ResNet-50 in any input of at least 32x32; the deep ones build and end in a softmax Dense.
  clear_session();
  EXPECT_EQ(resnet50({32, 32, 3}, 10).outputs()[0].shape(), (Shape{-1, 10}));
  clear_session();
  EXPECT_EQ(build_model("resnet152", {32, 32, 3}, 5).outputs()[0].shape(), (Shape{-1, 5}));
  EXPECT_THROW(build_model("resnet18", {16, 16, 3}, 5), ShapeError);
  EXPECT_THROW(resnet_cifar(21, {32, 32, 3}, 10), ConfigError);
}

// The preprocessing and activation layers of saved Keras image models: Keras's rows (auto-names,
// output shapes, parameter counts: Normalization's mean, variance and count are 2·C + 1
// non-trainable values), in the 4-column layout that Concatenate's two inputs bring.
TEST(Summary, PreprocessingActivationAndConcatenateRows) {
  clear_session();
  Tensor in = Input({32, 32, 3});
  Tensor x = Rescaling(1.0 / 255)(in);
  x = Normalization()(x);
  Tensor a = ReLU({.max_value = 6.0})(x);
  Tensor b = LeakyReLU()(x);
  Tensor y = Softmax()(Concatenate()(std::vector<Tensor>{a, b}));
  Model model(in, y, "preprocessing");
  // Keras's print_row: each field placed at its column start, the line cut at the column end.
  auto row = [](const std::vector<std::string>& fields) {
    const std::size_t ends[] = {32, 53, 65, 98};
    std::string line;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i > 0) line = line.substr(0, line.size() - 1) + " ";
      line += fields[i];
      line = line.substr(0, ends[i]);
      line.resize(ends[i], ' ');
    }
    return pad(line, 98);
  };
  auto lines = lines_of(model.summary_string());
  ASSERT_EQ(lines.size(), 23u) << model.summary_string();
  EXPECT_EQ(lines[4], row({"input_1 (InputLayer)", "[(None, 32, 32, 3)]", "0", ""}));
  EXPECT_EQ(lines[6], row({"rescaling (Rescaling)", "(None, 32, 32, 3)", "0", "input_1[0][0]"}));
  EXPECT_EQ(lines[8], row({"normalization (Normalization)", "(None, 32, 32, 3)", "7", "rescaling[0][0]"}));
  EXPECT_EQ(lines[10], row({"re_lu (ReLU)", "(None, 32, 32, 3)", "0", "normalization[0][0]"}));
  EXPECT_EQ(lines[12], row({"leaky_re_lu (LeakyReLU)", "(None, 32, 32, 3)", "0", "normalization[0][0]"}));
  EXPECT_EQ(lines[14], row({"concatenate (Concatenate)", "(None, 32, 32, 6)", "0", "re_lu[0][0]"}));
  EXPECT_EQ(lines[15], row({"", "", "", "leaky_re_lu[0][0]"}));
  EXPECT_EQ(lines[17], row({"softmax (Softmax)", "(None, 32, 32, 6)", "0", "concatenate[0][0]"}));
  EXPECT_EQ(lines[18], std::string(98, '='));
  EXPECT_EQ(lines[19], "Total params: 7");
  EXPECT_EQ(lines[20], "Trainable params: 0");
  EXPECT_EQ(lines[21], "Non-trainable params: 7");
}
