// Keras Applications weight files load by name and predict what an independent implementation
// expects: tests/io/gen_keras_app_weights.py writes ResNet50 (with the top) and ResNet50V2 (notop)
// files in Keras's layout from known weights, and expected.txt (pixels, PyTorch's predictions);
// the folder is the first argument (CTest passes the fixture's). Files that do not fit the
// architecture are refused, naming the first layer and weight that differ, the model untouched.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "reskit/io/h5.h"
#include "reskit/models/applications.h"
#include "reskit/reskit.h"

using namespace reskit;
namespace app = reskit::applications;

namespace {

std::string g_dir;

std::string file(const std::string& name) { return g_dir + "/" + name; }
const std::string kV1 = "resnet50_weights_tf_dim_ordering_tf_kernels.h5";
const std::string kV2 = "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5";

// expected.txt: per tensor a line "name rank dims..." and a line of values.
std::map<std::string, Tensor> read_expected() {
  std::ifstream in(file("expected.txt"));
  EXPECT_TRUE(in.good()) << "no expected.txt in " << g_dir << " (run gen_keras_app_weights.py)";
  std::map<std::string, Tensor> out;
  std::string name;
  int rank = 0;
  while (in >> name >> rank) {
    Shape shape(static_cast<std::size_t>(rank));
    for (auto& d : shape) in >> d;
    Tensor t(shape, DType::float32);
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      double v = 0;
      in >> v;
      t.set(i, v);
    }
    out[name] = t;
  }
  return out;
}

// |a - b| <= atol + rtol·|b| everywhere; returns the worst ratio of error to tolerance.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  double worst = 0;
  std::int64_t at = 0;
  for (std::int64_t i = 0; i < want.numel(); ++i) {
    const double r = std::abs(got.at(i) - want.at(i)) / (atol + rtol * std::abs(want.at(i)));
    if (r > worst) worst = r, at = i;
  }
  EXPECT_LE(worst, 1.0) << what << ": element " << at << " is " << got.at(at) << ", expected " << want.at(at);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FileError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a FileError";
  return "";
}

TEST(KerasAppWeights, ResNet50AndV2LoadByNameAndPredictAsExpected) {
  auto expected = read_expected();
  ASSERT_EQ(expected.count("pixels"), 1u);
  const Tensor& pixels = expected["pixels"];

  clear_session();
  Model v1 = app::resnet50({.input_shape = {64, 64, 3}});
  load_weights(v1, file(kV1), {.by_name = true, .require_all = true});
  Tensor probs = v1.forward(app::preprocess_input(pixels, app::PreprocessMode::caffe), false);
  expect_close(probs, expected["resnet50_predictions"], 1e-3, 1e-7, "ResNet50 predictions");
  // The top-1 classes agree too.
  for (std::int64_t s = 0; s < probs.dim(0); ++s) {
    std::int64_t a = 0, b = 0;
    for (std::int64_t c = 0; c < 1000; ++c) {
      if (probs.at(s * 1000 + c) > probs.at(s * 1000 + a)) a = c;
      if (expected["resnet50_predictions"].at(s * 1000 + c) >
          expected["resnet50_predictions"].at(s * 1000 + b))
        b = c;
    }
    EXPECT_EQ(a, b) << "sample " << s;
  }

  clear_session();
  Model v2 = app::resnet50_v2({.include_top = false, .input_shape = {64, 64, 3}, .pooling = "avg"});
  load_weights(v2, file(kV2), {.by_name = true, .require_all = true});
  Tensor features = v2.forward(app::preprocess_input(pixels, app::PreprocessMode::tf), false);
  expect_close(features, expected["resnet50v2_avg_features"], 1e-3, 1e-5, "ResNet50V2 features");

  // A file of the other family: the first layer of the model the file lacks is named, and
  // nothing is loaded.
  const Tensor before = v2.get_layer("conv1_conv")->param("kernel").value.clone();
  std::string msg = error_of([&] { load_weights(v2, file(kV1), {.by_name = true, .require_all = true}); });
  EXPECT_NE(msg.find("'conv2_block1_preact_bn'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv2_block1_preact_bn/gamma:0"), std::string::npos) << msg;
  for (std::int64_t i = 0; i < before.numel(); ++i)
    ASSERT_EQ(v2.get_layer("conv1_conv")->param("kernel").value.at(i), before.at(i));
  msg = error_of([&] { load_weights(v1, file(kV2), {.by_name = true, .require_all = true}); });
  EXPECT_NE(msg.find("'conv1_bn'"), std::string::npos) << msg;
}

TEST(KerasAppWeights, FilesThatDoNotFitAreRefusedNamingTheLayerAndWeight) {
  // A notop file for a model with the top: 'predictions' is missing.
  clear_session();
  Tensor in = Input({4, 4, 2048});
  Tensor x = GlobalAveragePooling2D({.name = "avg_pool"})(in);
  Model top(in, Dense(1000, {.activation = "softmax", .name = "predictions"})(x));
  std::string msg = error_of([&] { load_weights(top, file(kV2), {.by_name = true, .require_all = true}); });
  EXPECT_NE(msg.find("no weights for layer 'predictions'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("predictions/kernel:0"), std::string::npos) << msg;
  // Without require_all, Keras's by_name leaves such a layer alone.
  load_weights(top, file(kV2), {.by_name = true});
  // Another shape: the layer, the weight and both shapes are named.
  clear_session();
  Tensor img = Input({64, 64, 3});
  Tensor y = ZeroPadding2D(std::array<int, 2>{3, 3}, {.name = "conv1_pad"})(img);
  y = Conv2D(32, {7, 7}, {.strides = {2, 2}, .name = "conv1_conv"})(y);
  Model narrow(img, y);
  msg = error_of([&] { load_weights(narrow, file(kV1), {.by_name = true, .require_all = true}); });
  EXPECT_NE(msg.find("layer 'conv1_conv'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("conv1_conv/kernel:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(7, 7, 3, 64)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(7, 7, 3, 32)"), std::string::npos) << msg;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_dir = argc > 1 ? argv[1] : ".";
  return RUN_ALL_TESTS();
}
