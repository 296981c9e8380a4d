// Golden values for the elementwise Keras layers (ReLU with options, LeakyReLU, Normalization,
// Rescaling, Softmax, Concatenate): each case of fixtures/layers.json (gen_layer_golden.py,
// PyTorch autograd in float64 with Keras's formulas) builds its layer from the Keras config
// through the layer registry, sets the weights the fixture gives, and compares the training-mode
// output and the input gradients of sum(y ⊙ G), in float64 and float32.
//
// Error of a tensor: max |reskit − torch| / max(max |torch|, 1). Tolerances: float64 1e-12 (the
// same operations in the same order, up to the last bit of exp and sqrt); float32 1e-6 (one
// rounding per operation on float32 inputs; the reference stays float64).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/registry.h"
#include "reskit/reskit.h"

#ifndef RESKIT_GOLDEN_DIR
#error "RESKIT_GOLDEN_DIR must name tests/golden/fixtures"
#endif

using namespace reskit;
using Json = nlohmann::ordered_json;

namespace {

const Json& fixture() {
  static const Json j = [] {
    std::ifstream in(std::string(RESKIT_GOLDEN_DIR) + "/layers.json");
    if (!in) throw std::runtime_error("cannot open fixtures/layers.json");
    return Json::parse(in);
  }();
  return j;
}

Tensor tensor_of(const Json& shape, const Json& values, DType dtype) {
  std::vector<double> v = values.get<std::vector<double>>();
  return Tensor::from_values(shape.get<Shape>(), v, dtype);
}

double error(const Tensor& got, const Json& want) {
  const auto w = want.get<std::vector<double>>();
  EXPECT_EQ(got.numel(), static_cast<std::int64_t>(w.size()));
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < w.size() && static_cast<std::int64_t>(i) < got.numel(); ++i) {
    diff = std::max(diff, std::abs(got.at(static_cast<std::int64_t>(i)) - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / scale;
}

void run_cases(DType dtype, double tolerance) {
  set_floatx(dtype);
  ASSERT_GT(fixture()["cases"].size(), 0u);
  for (const auto& c : fixture()["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name + " in " + std::string(dtype_name(dtype)));
    clear_session();
    const std::string cls = c["class_name"].get<std::string>();
    const layers::LayerEntry* entry = layers::find_layer(cls);
    ASSERT_NE(entry, nullptr) << cls;
    std::vector<Tensor> symbolic, concrete;
    for (const auto& in : c["inputs"]) {
      Shape s = in["shape"].get<Shape>();
      concrete.push_back(tensor_of(in["shape"], in["values"], dtype));
      symbolic.push_back(Input(Shape(s.begin() + 1, s.end())));
    }
    Json config = c["config"];
    config["name"] = "under_test";
    keras::WeightBudget budget{std::uint64_t{1} << 30, 0, dtype};
    Tensor out = entry->from_config(config, {cls, "under_test"}, symbolic, budget);
    Layer& layer = *out.node()->layer;
    for (const auto& [short_name, w] : c["weights"].items()) {
      Param& p = layer.param(short_name);
      ASSERT_EQ(p.value.shape(), w["shape"].get<Shape>()) << short_name;
      p.value = tensor_of(w["shape"], w["values"], dtype);
    }
    EXPECT_EQ(layer.params().size(), c["weights"].size());
    Tensor y = layer.forward(concrete, true);
    EXPECT_LE(error(y, c["output"]), tolerance) << "output";
    Tensor g = tensor_of(Json(y.shape()), c["upstream"], dtype);
    std::vector<Tensor> dx = layer.backward(g);
    ASSERT_EQ(dx.size(), c["input_grads"].size());
    for (std::size_t i = 0; i < dx.size(); ++i)
      EXPECT_LE(error(dx[i], c["input_grads"][i]), tolerance) << "gradient of input " << i;
  }
  set_floatx(DType::float32);
}

}  // namespace

TEST(LayerGolden, Float64MatchesTorch) { run_cases(DType::float64, 1e-12); }
TEST(LayerGolden, Float32MatchesTorch) { run_cases(DType::float32, 1e-6); }
