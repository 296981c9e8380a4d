// plot_model and model_to_dot: the DOT text Keras builds (one record node per layer, one edge per
// inbound connection, labels with and without shapes), drawings through Graphviz (.svg, .png),
// and the errors for a bad extension or option.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/onnx_models.h"
#include "reskit/io/plot.h"
#include "reskit/reskit.h"

namespace fs = std::filesystem;
using namespace reskit;

namespace {

class Plot : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("reskit_plot_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    clear_session();  // auto names from input_1, add, ...
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// How many times `what` occurs in `text`, without overlaps.
int count_matches(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Inbound connections of the model: the inputs of every node.
int inbound_connections(const Model& model) {
  int edges = 0;
  std::set<const graph::Node*> seen;
  std::vector<const graph::Node*> stack;
  for (const auto& t : model.outputs()) stack.push_back(t.node().get());
  while (!stack.empty()) {
    const graph::Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    edges += static_cast<int>(n->inputs.size());
    for (const auto& in : n->inputs) stack.push_back(in.node().get());
  }
  return edges;
}

}  // namespace

TEST_F(Plot, ResNet50DotHasOneNodePerLayerAndEveryConnection) {
  Model model = resnet50({64, 64, 3}, 6);
  const std::string dot = model_to_dot(model);
  EXPECT_EQ(dot.rfind("digraph G {\n", 0), 0u);
  EXPECT_NE(dot.find("rankdir=TB;\n"), std::string::npos);
  EXPECT_NE(dot.find("dpi=96;\n"), std::string::npos);
  EXPECT_NE(dot.find("node [shape=record];\n"), std::string::npos);
  EXPECT_EQ(count_matches(dot, "[label="), static_cast<int>(model.layers().size()));
  const int edges = count_matches(dot, " -> ");
  EXPECT_EQ(edges, inbound_connections(model));
  EXPECT_EQ(edges, static_cast<int>(model.layers().size()) - 1 + 16);  // a chain, plus 16 shortcuts
  EXPECT_NE(dot.find(R"("conv1" [label="conv1: Conv2D"];)"), std::string::npos);
  EXPECT_NE(dot.find(R"("input_1" -> "zero_padding2d";)"), std::string::npos) << dot.substr(0, 400);
  EXPECT_NE(dot.find(R"("bn_2a1" -> "add";)"), std::string::npos);
  EXPECT_NE(dot.find(R"("fc6" [label="fc6: Dense"];)"), std::string::npos);
}

TEST_F(Plot, LabelsWithShapesAndWithoutNames) {
  Tensor in = Input({8, 8, 3}, {.name = "img"});
  Tensor x = Conv2D(4, {3, 3}, {.padding = "same", .name = "c"})(in);
  Tensor y = Add({.name = "sum"})({x, Conv2D(4, {1, 1}, {.name = "s"})(in)});
  y = Flatten({.name = "flat"})(y);
  Model model(in, y, "m");
  const std::string dot = model_to_dot(model, {.show_shapes = true});
  // Keras: '%s\n|{input:|output:}|{{%s}|{%s}}'; an InputLayer's and a merge layer's shapes as lists.
  EXPECT_NE(dot.find("\"img\" [label=\"img: InputLayer\n|{input:|output:}|{{[(None, 8, 8, 3)]}|{[(None, 8, "
                     "8, 3)]}}\"];"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("\"c\" [label=\"c: Conv2D\n|{input:|output:}|{{(None, 8, 8, 3)}|{(None, 8, 8, 4)}}\"];"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("\"sum\" [label=\"sum: Add\n|{input:|output:}|{{[(None, 8, 8, 4), (None, 8, 8, "
                     "4)]}|{(None, 8, 8, 4)}}\"];"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("{(None, 256)}"), std::string::npos);
  const std::string bare = model_to_dot(model, {.show_layer_names = false, .rankdir = "LR"});
  EXPECT_NE(bare.find(R"("c" [label="Conv2D"];)"), std::string::npos) << bare;
  EXPECT_NE(bare.find("rankdir=LR;"), std::string::npos);
  EXPECT_EQ(count_matches(bare, " -> "), 5);
}

TEST_F(Plot, WritesDotSvgAndPng) {
  Model model = onnx_test::small_resnet();
  plot_model(model, path("m.dot"));
  EXPECT_EQ(read(path("m.dot")), model_to_dot(model));

  plot_model(model, path("m.svg"), {.show_shapes = true});
  const std::string svg = read(path("m.svg"));
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("conv1: Conv2D"), std::string::npos);
  EXPECT_NE(svg.find("(None, 10, 10, 8)"), std::string::npos);
  // One drawn group per layer and per edge.
  EXPECT_EQ(count_matches(svg, "class=\"node\""), static_cast<int>(model.layers().size()));

  plot_model(model, path("M.PNG"));
  const std::string png = read(path("M.PNG"));
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST_F(Plot, BadExtensionAndOptionsAreConfigErrors) {
  Model model = onnx_test::conv_softmax();
  try {
    plot_model(model, path("m.jpg"));
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(".dot, .svg or .png"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'.jpg'"), std::string::npos) << msg;
  }
  EXPECT_THROW(plot_model(model, path("noext")), ConfigError);
  EXPECT_THROW(plot_model(model, path("m.svg"), {.rankdir = "XY"}), ConfigError);
  EXPECT_THROW(model_to_dot(model, {.dpi = 0}), ConfigError);
  EXPECT_THROW(plot_model(model, path("missing/m.svg")), FileError);
  EXPECT_FALSE(fs::exists(path("m.jpg")));
}
