// ONNX export: the files pass ONNX's own checker and strict shape inference (libonnx, C++), every
// layer's output has Keras's shape in the graph, the rules OpenCV 4.6 needs hold (explicit
// asymmetric pads, Pad without empty inputs, Gemm with transB = 1, no Dropout), weights are the
// Keras weights in ONNX's layout, float64 models export as float32, and bad options and paths
// give the documented errors. Running the files in OpenCV is check_onnx.py's job.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/onnx_models.h"
#include "reskit/io/onnx.h"
#include "reskit/reskit.h"

namespace fs = std::filesystem;
using namespace reskit;

namespace {

class OnnxExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("reskit_onnx_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    set_random_seed(1);
    clear_session();  // auto names from flatten, add, ...
  }
  void TearDown() override {
    set_floatx(DType::float32);
    fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

onnx::ModelProto load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

const onnx::NodeProto* find_node(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& n : m.graph().node())
    if (n.name() == name) return &n;
  return nullptr;
}

const onnx::TensorProto* find_initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

std::vector<std::int64_t> ints(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = attr(n, name);
  return a ? std::vector<std::int64_t>(a->ints().begin(), a->ints().end()) : std::vector<std::int64_t>{};
}

std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const auto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

// Runs the checker and strict shape inference; returns the inferred shape of every value
// (-1 for the symbolic batch dimension).
std::map<std::string, std::vector<std::int64_t>> check_and_infer(onnx::ModelProto m) {
  onnx::checker::check_model(m);
  onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                     onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
  std::map<std::string, std::vector<std::int64_t>> shapes;
  auto add = [&](const onnx::ValueInfoProto& v) {
    std::vector<std::int64_t> s;
    for (const auto& d : v.type().tensor_type().shape().dim())
      s.push_back(d.has_dim_value() ? d.dim_value() : -1);
    shapes[v.name()] = s;
  };
  for (const auto& v : m.graph().value_info()) add(v);
  for (const auto& v : m.graph().output()) add(v);
  return shapes;
}

// Keras's output shape of every layer (batch -1), from the graph's nodes.
std::map<std::string, Shape> keras_shapes(const Model& model) {
  std::map<std::string, Shape> out;
  std::vector<const graph::Node*> stack;
  for (const auto& t : model.outputs()) stack.push_back(t.node().get());
  while (!stack.empty()) {
    const graph::Node* n = stack.back();
    stack.pop_back();
    out[n->layer->name()] = n->output_shape;
    for (const auto& in : n->inputs) stack.push_back(in.node().get());
  }
  return out;
}

// Every layer's output value (named after the layer) has Keras's shape, NCHW inside the graph.
// Returns how many layers were compared.
int expect_keras_shapes(const Model& model, const std::map<std::string, std::vector<std::int64_t>>& shapes) {
  int checked = 0;
  for (const auto& [name, keras] : keras_shapes(model)) {
    auto it = shapes.find(name);
    if (it == shapes.end()) continue;  // the input (declared NHWC), Dropout (left out)
    std::vector<std::int64_t> want(keras.begin(), keras.end());
    if (want.size() == 4) want = {keras[0], keras[3], keras[1], keras[2]};
    EXPECT_EQ(it->second, want) << "layer " << name;
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_F(OnnxExport, SmallResNetPassesCheckerAndShapeInference) {
  Model model = onnx_test::small_resnet();
  export_onnx(model, path("small.onnx"));
  onnx::ModelProto m = load(path("small.onnx"));
  EXPECT_EQ(m.opset_import(0).version(), 13);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.producer_name(), "reskit");
  std::map<std::string, std::vector<std::int64_t>> shapes;
  ASSERT_NO_THROW(shapes = check_and_infer(m));

  // Every layer's output has Keras's shape; inside the graph 4-D values are NCHW.
  EXPECT_EQ(expect_keras_shapes(model, shapes), static_cast<int>(model.layers().size()) - 2);
  EXPECT_EQ(shapes.at("pad"), (std::vector<std::int64_t>{-1, 3, 20, 20}));
  EXPECT_EQ(shapes.at("conv1"), (std::vector<std::int64_t>{-1, 8, 10, 10}));
  EXPECT_EQ(shapes.at("pool1"), (std::vector<std::int64_t>{-1, 8, 5, 5}));
  EXPECT_EQ(shapes.at("conv_2a2b"), (std::vector<std::int64_t>{-1, 4, 3, 3}));
  EXPECT_EQ(shapes.at("avg"), (std::vector<std::int64_t>{-1, 16, 3, 3}));
  EXPECT_EQ(shapes.at("flatten"), (std::vector<std::int64_t>{-1, 144}));
  EXPECT_EQ(shapes.at("global_average_pooling2d"), (std::vector<std::int64_t>{-1, 16}));
  EXPECT_EQ(shapes.at("fc6"), (std::vector<std::int64_t>{-1, 6}));

  // The graph's input and output: NHWC float32 with a dynamic batch, and (N, 6).
  ASSERT_EQ(m.graph().input_size(), 1);
  const auto& in = m.graph().input(0);
  EXPECT_EQ(in.name(), "image");
  EXPECT_EQ(in.type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  const auto& dims = in.type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 4);
  EXPECT_EQ(dims[0].dim_param(), "N");
  EXPECT_EQ(dims[1].dim_value(), 17);
  EXPECT_EQ(dims[3].dim_value(), 3);
  ASSERT_EQ(m.graph().output_size(), 1);
  EXPECT_EQ(m.graph().output(0).name(), "fc6");
  EXPECT_EQ(m.graph().node(0).op_type(), "Transpose");
  EXPECT_EQ(ints(m.graph().node(0), "perm"), (std::vector<std::int64_t>{0, 3, 1, 2}));
}

TEST_F(OnnxExport, NodesFollowKerasAndOpenCvRules) {
  Model model = onnx_test::small_resnet();
  export_onnx(model, path("small.onnx"));
  onnx::ModelProto m = load(path("small.onnx"));
  auto counts = op_counts(m);
  EXPECT_EQ(counts["Conv"], 8);
  EXPECT_EQ(counts["BatchNormalization"], 8);
  EXPECT_EQ(counts["Gemm"], 4);
  EXPECT_EQ(counts["Add"], 4);  // two block shortcuts, a three-input Add as two
  EXPECT_EQ(counts["Pad"], 1);
  EXPECT_EQ(counts["MaxPool"], 1);
  EXPECT_EQ(counts["AveragePool"], 1);
  EXPECT_EQ(counts["GlobalAveragePool"], 1);
  EXPECT_EQ(counts["GlobalMaxPool"], 1);
  EXPECT_EQ(counts["Dropout"], 0);
  EXPECT_EQ(counts["Softmax"], 1);
  EXPECT_EQ(counts["Tanh"], 1);
  EXPECT_EQ(counts["Sigmoid"], 1);
  for (const auto& n : m.graph().node()) {
    for (const auto& in : n.input()) EXPECT_FALSE(in.empty()) << n.name() << " has an empty input";
  }

  // ZeroPadding2D(((1, 2), (2, 1))): constant zeros, pads as an int64 initializer, two inputs.
  const auto* pad = find_node(m, "pad");
  ASSERT_NE(pad, nullptr);
  ASSERT_EQ(pad->input_size(), 2);
  const auto* pads = find_initializer(m, pad->input(1));
  ASSERT_NE(pads, nullptr);
  EXPECT_EQ(pads->data_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(std::vector<std::int64_t>(pads->int64_data().begin(), pads->int64_data().end()),
            (std::vector<std::int64_t>{0, 0, 1, 2, 0, 0, 2, 1}));
  EXPECT_EQ(attr(*pad, "mode")->s(), "constant");

  // "same" with TensorFlow's rule: the extra row/column at the bottom/right.
  // conv1: 3x3 stride 2 on 20x20 -> 10x10, total 1 -> [0, 0, 1, 1].
  EXPECT_EQ(ints(*find_node(m, "conv1"), "pads"), (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(ints(*find_node(m, "conv1"), "strides"), (std::vector<std::int64_t>{2, 2}));
  // conv_2a2b: the block's f = 2 kernel on 3x3 -> total 1, all of it after.
  EXPECT_EQ(ints(*find_node(m, "conv_2a2b"), "kernel_shape"), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(ints(*find_node(m, "conv_2a2b"), "pads"), (std::vector<std::int64_t>{0, 0, 1, 1}));
  // The block's 1x1 stride-2 convolutions are "valid".
  EXPECT_EQ(ints(*find_node(m, "conv_2a2a"), "pads"), (std::vector<std::int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(ints(*find_node(m, "conv_2a2a"), "strides"), (std::vector<std::int64_t>{2, 2}));
  // pool1: 3x3 stride 2 "same" on 10x10 -> 5x5, total 1.
  EXPECT_EQ(ints(*find_node(m, "pool1"), "pads"), (std::vector<std::int64_t>{0, 0, 1, 1}));
  // avg: 2x2 stride 1 "same" on 3x3 -> total 1; padded cells are not counted.
  const auto* avg = find_node(m, "avg");
  EXPECT_EQ(ints(*avg, "pads"), (std::vector<std::int64_t>{0, 0, 1, 1}));
  EXPECT_EQ(attr(*avg, "count_include_pad")->i(), 0);

  // Flatten sees NHWC, as Keras flattens (h, w, c).
  const auto* flatten = find_node(m, "flatten");
  ASSERT_NE(flatten, nullptr);
  const auto* transpose = find_node(m, "flatten/Transpose");
  ASSERT_NE(transpose, nullptr);
  EXPECT_EQ(ints(*transpose, "perm"), (std::vector<std::int64_t>{0, 2, 3, 1}));
  EXPECT_EQ(flatten->input(0), transpose->output(0));

  // Dense: Gemm with transB = 1; no bias -> a zero C, never a missing one; activations apart.
  for (const char* name : {"fc_a", "fc_b", "fc_c", "fc6"}) {
    const auto* g = find_node(m, name);
    ASSERT_NE(g, nullptr) << name;
    EXPECT_EQ(g->op_type(), "Gemm");
    EXPECT_EQ(attr(*g, "transB")->i(), 1);
    EXPECT_EQ(g->input_size(), 3);
  }
  const auto* zero = find_initializer(m, find_node(m, "fc_b")->input(2));
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->dims(0), 12);
  const auto* softmax = find_node(m, "fc6/Softmax");
  ASSERT_NE(softmax, nullptr);
  EXPECT_EQ(attr(*softmax, "axis")->i(), 1);
  EXPECT_EQ(softmax->input(0), "fc6/Gemm");

  // BatchNormalization: the layer's epsilon, the moving statistics by their Keras names.
  const auto* bn = find_node(m, "bn_conv1");
  ASSERT_NE(bn, nullptr);
  EXPECT_FLOAT_EQ(attr(*bn, "epsilon")->f(), 1e-3f);
  EXPECT_EQ(std::vector<std::string>(bn->input().begin(), bn->input().end()),
            (std::vector<std::string>{"conv1", "bn_conv1/gamma:0", "bn_conv1/beta:0",
                                      "bn_conv1/moving_mean:0", "bn_conv1/moving_variance:0"}));
}

TEST_F(OnnxExport, WeightsAreKerasWeightsInOnnxLayout) {
  Model model = onnx_test::small_resnet();
  export_onnx(model, path("small.onnx"));
  onnx::ModelProto m = load(path("small.onnx"));
  // One initializer per parameter (+ the pads and a zero bias), named after it.
  std::int64_t params = 0;
  for (const auto& layer : model.layers()) params += static_cast<std::int64_t>(layer->params().size());
  EXPECT_EQ(m.graph().initializer_size(), params + 2);
  auto value = [](const onnx::TensorProto& t, std::int64_t i) {
    float v;
    std::memcpy(&v, t.raw_data().data() + i * sizeof(float), sizeof(float));
    return v;
  };
  // Conv kernel HWIO (3, 3, 3, 8) -> OIHW (8, 3, 3, 3).
  const Tensor& k = model.get_layer("conv1")->param("kernel").value;
  const auto* kt = find_initializer(m, "conv1/kernel:0");
  ASSERT_NE(kt, nullptr);
  EXPECT_EQ(std::vector<std::int64_t>(kt->dims().begin(), kt->dims().end()),
            (std::vector<std::int64_t>{8, 3, 3, 3}));
  for (std::int64_t r = 0; r < 3; ++r)
    for (std::int64_t s = 0; s < 3; ++s)
      for (std::int64_t c = 0; c < 3; ++c)
        for (std::int64_t o = 0; o < 8; ++o)
          ASSERT_EQ(value(*kt, ((o * 3 + c) * 3 + r) * 3 + s),
                    static_cast<float>(k.at(((r * 3 + s) * 3 + c) * 8 + o)));
  // Dense kernel (in, units) = (12, 6) -> (6, 12).
  const Tensor& d = model.get_layer("fc6")->param("kernel").value;
  const auto* dt = find_initializer(m, "fc6/kernel:0");
  ASSERT_NE(dt, nullptr);
  EXPECT_EQ(std::vector<std::int64_t>(dt->dims().begin(), dt->dims().end()),
            (std::vector<std::int64_t>{6, 12}));
  for (std::int64_t i = 0; i < 12; ++i)
    for (std::int64_t u = 0; u < 6; ++u)
      ASSERT_EQ(value(*dt, u * 12 + i), static_cast<float>(d.at(i * 6 + u)));
  const auto* mv = find_initializer(m, "bn_conv1/moving_variance:0");
  ASSERT_NE(mv, nullptr);
  EXPECT_EQ(mv->data_type(), onnx::TensorProto::FLOAT);
}

TEST_F(OnnxExport, Float64ModelExportsAsFloat32) {
  set_floatx(DType::float64);
  Model model = onnx_test::small_resnet();
  ASSERT_EQ(model.dtype(), DType::float64);
  export_onnx(model, path("small64.onnx"));
  onnx::ModelProto m = load(path("small64.onnx"));
  ASSERT_NO_THROW(check_and_infer(m));
  for (const auto& t : m.graph().initializer()) {
    if (t.data_type() == onnx::TensorProto::INT64) continue;  // pads
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << t.name();
  }
  const auto* bias = find_initializer(m, "conv1/bias:0");
  ASSERT_NE(bias, nullptr);
  float first;
  std::memcpy(&first, bias->raw_data().data(), sizeof(float));
  EXPECT_EQ(first, static_cast<float>(model.get_layer("conv1")->param("bias").value.at(0)));
}

TEST_F(OnnxExport, FourDimensionalOutputIsNhwcWithChannelSoftmax) {
  Model model = onnx_test::conv_softmax();
  export_onnx(model, path("conv.onnx"));
  onnx::ModelProto m = load(path("conv.onnx"));
  std::map<std::string, std::vector<std::int64_t>> shapes;
  ASSERT_NO_THROW(shapes = check_and_infer(m));
  EXPECT_EQ(expect_keras_shapes(model, shapes), 3);
  ASSERT_EQ(m.graph().output_size(), 1);
  const std::string out = m.graph().output(0).name();
  EXPECT_EQ(shapes.at(out), (std::vector<std::int64_t>{-1, 6, 7, 4}));
  EXPECT_EQ(attr(*find_node(m, "probs"), "axis")->i(), 1);  // channels in NCHW
  EXPECT_EQ(find_node(m, "c1/Relu")->input(0), "c1/Conv");
  // c2 is linear: its Conv output is the layer's value.
  EXPECT_EQ(find_node(m, "c2")->output(0), "c2");
  // c1: 2x3 "same" at stride 1 -> pads total (1, 2): [0, 1, 1, 1].
  EXPECT_EQ(ints(*find_node(m, "c1"), "pads"), (std::vector<std::int64_t>{0, 1, 1, 1}));
}

TEST_F(OnnxExport, ResNet50PassesChecker) {
  Model model = resnet50({64, 64, 3}, 6);
  export_onnx(model, path("resnet50.onnx"));
  onnx::ModelProto m = load(path("resnet50.onnx"));
  std::map<std::string, std::vector<std::int64_t>> shapes;
  ASSERT_NO_THROW(shapes = check_and_infer(m));
  EXPECT_GT(expect_keras_shapes(model, shapes), 170);
  auto counts = op_counts(m);
  EXPECT_EQ(counts["Conv"], 53);
  EXPECT_EQ(counts["BatchNormalization"], 53);
  EXPECT_EQ(counts["Add"], 16);
  EXPECT_EQ(counts["Relu"], 49);
  EXPECT_EQ(counts["Gemm"], 1);
  EXPECT_EQ(counts["Pad"], 1);
  EXPECT_EQ(shapes.at("fc6"), (std::vector<std::int64_t>{-1, 6}));
  std::int64_t floats = 0;
  for (const auto& t : m.graph().initializer())
    if (t.data_type() == onnx::TensorProto::FLOAT)
      floats += static_cast<std::int64_t>(t.raw_data().size() / 4);
  EXPECT_EQ(floats, model.count_params());
}

TEST_F(OnnxExport, OpsetAndFixedBatch) {
  Model model = onnx_test::small_resnet();
  export_onnx(model, path("o17.onnx"), {.opset = 17, .batch_size = 3});
  onnx::ModelProto m = load(path("o17.onnx"));
  EXPECT_EQ(m.opset_import(0).version(), 17);
  std::map<std::string, std::vector<std::int64_t>> shapes;
  ASSERT_NO_THROW(shapes = check_and_infer(m));
  EXPECT_EQ(shapes.at("fc6"), (std::vector<std::int64_t>{3, 6}));
  EXPECT_EQ(m.graph().input(0).type().tensor_type().shape().dim(0).dim_value(), 3);
}

TEST_F(OnnxExport, BadOptionsAndPathsAreErrors) {
  Model model = onnx_test::conv_softmax();
  EXPECT_THROW(export_onnx(model, path("a.onnx"), {.opset = 12}), ConfigError);
  EXPECT_THROW(export_onnx(model, path("a.onnx"), {.opset = 18}), ConfigError);
  EXPECT_THROW(export_onnx(model, path("a.onnx"), {.batch_size = -1}), ConfigError);
  try {
    export_onnx(model, path("a.onnx"), {.opset = 12});
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("opset: expected 13 to 17, got 12"), std::string::npos) << e.what();
  }
  EXPECT_THROW(export_onnx(model, path("missing/a.onnx")), FileError);
  EXPECT_FALSE(fs::exists(path("a.onnx")));

  // A 3-D input has no ONNX layout here.
  Tensor in = Input({4, 5});
  Tensor y = Dense(3)(Flatten()(in));
  Model seq(in, y, "seq");
  try {
    export_onnx(seq, path("seq.onnx"));
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("(None, 4, 5)"), std::string::npos) << e.what();
  }

  // A failed write leaves the old file and no temporary file behind.
  { std::ofstream(path("keep.onnx")) << "old"; }
  EXPECT_THROW(export_onnx(model, path("keep.onnx"), {.opset = 99}), ConfigError);
  std::ifstream kept(path("keep.onnx"));
  std::string text;
  kept >> text;
  EXPECT_EQ(text, "old");
  export_onnx(model, path("keep.onnx"));
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);  // keep.onnx only: no temporary left
}

TEST_F(OnnxExport, DenseOnlyModelWithTwoDimensionalInput) {
  Tensor in = Input({10}, {.name = "features"});
  Tensor x = Dense(8, {.activation = "relu", .name = "h"})(in);
  x = BatchNormalization({.name = "bn"})(x);
  x = Dropout(0.5)(x);
  Model model(in, x, "mlp");
  export_onnx(model, path("mlp.onnx"));
  onnx::ModelProto m = load(path("mlp.onnx"));
  std::map<std::string, std::vector<std::int64_t>> shapes;
  ASSERT_NO_THROW(shapes = check_and_infer(m));
  EXPECT_EQ(op_counts(m)["Transpose"], 0);
  // The output layer (Dropout) is left out: an Identity names the output after it.
  EXPECT_EQ(m.graph().output(0).name(), model.layers().back()->name());
  EXPECT_EQ(shapes.at(m.graph().output(0).name()), (std::vector<std::int64_t>{-1, 8}));
}
