// Regularizers and constraints: their math, one training step against PyTorch
// (tests/golden/gen_regularizers.py writes tests/golden/fixtures/regularizers.json), the Keras
// config forms they are read from and written to, and the errors for what reskit lacks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "reskit/io/h5.h"
#include "reskit/models/regularize.h"
#include "reskit/reskit.h"
#include "support/error_of.h"

#ifndef RESKIT_GOLDEN_DIR
#error "RESKIT_GOLDEN_DIR must name tests/golden/fixtures"
#endif

using namespace reskit;
using reskit::test::error_of;
using Json = nlohmann::ordered_json;

namespace {

Tensor tensor_of(const std::vector<double>& values, const Shape& shape, DType dtype = DType::float64) {
  Tensor t(shape, DType::float64);
  for (std::size_t i = 0; i < values.size(); ++i) t.data<double>()[i] = values[i];
  return t.to(dtype);
}

std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.to(DType::float64);
  const double* p = std::as_const(d).data<double>();
  return {p, p + d.numel()};
}

// ---------------------------------------------------------------- math

TEST(RegularizerMath, PenaltyAndGradientAsKeras) {
  const Tensor w = tensor_of({-2.0, 0.0, 0.5, 3.0}, {2, 2});
  // l1·Σ|w| + l2·Σw²: no factor 1/2 on L2
  EXPECT_DOUBLE_EQ(penalty(L1(0.1), w), 0.1 * 5.5);
  EXPECT_DOUBLE_EQ(penalty(L2(0.1), w), 0.1 * 13.25);
  EXPECT_DOUBLE_EQ(penalty(L1L2(0.1, 0.2), w), 0.1 * 5.5 + 0.2 * 13.25);
  Tensor g = tensor_of({1.0, 1.0, 1.0, 1.0}, {2, 2});
  add_penalty_gradient(L1L2(0.1, 0.2), w, g);
  // 1 + l1·sign(w) + 2·l2·w; sign(0) = 0
  const std::vector<double> want{1 - 0.1 - 0.8, 1.0, 1 + 0.1 + 0.2, 1 + 0.1 + 1.2};
  const auto got = values_of(g);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[i], want[i], 1e-15) << i;
  // the activity penalty is divided by the batch (the first dimension)
  EXPECT_DOUBLE_EQ(activity_penalty(L2(0.1), w), 0.1 * 13.25 / 2);
  EXPECT_EQ(L2().l2, 0.01);  // Keras's defaults
  EXPECT_EQ(L1().l1, 0.01);
  EXPECT_EQ(L1L2(), L1L2(0.0, 0.0));
  EXPECT_THROW(L2(-1e-4), ConfigError);
  EXPECT_THROW(L1(std::nan("")), ConfigError);
}

TEST(ConstraintMath, NormsOverTheAxesAsKeras) {
  // (2, 2): columns (axis 0) have norms 5 and 1
  Tensor w = tensor_of({3.0, 1.0, 4.0, 0.0}, {2, 2});
  apply_constraint(MaxNorm(2.0), w);
  auto v = values_of(w);
  const double s = 2.0 / (1e-7 + 5.0), u = 1.0 / (1e-7 + 1.0);
  EXPECT_NEAR(v[0], 3 * s, 1e-15);
  EXPECT_NEAR(v[2], 4 * s, 1e-15);
  EXPECT_NEAR(v[1], 1 * u, 1e-15);  // under max_value: only ε changes it
  w = tensor_of({3.0, 1.0, 4.0, 0.0}, {2, 2});
  apply_constraint(UnitNorm(std::vector<int>{1}), w);  // rows: norms sqrt(10) and 4
  v = values_of(w);
  EXPECT_NEAR(v[0], 3 / (1e-7 + std::sqrt(10.0)), 1e-15);
  EXPECT_NEAR(v[2], 4 / (1e-7 + 4.0), 1e-15);
  w = tensor_of({3.0, 1.0, 4.0, 0.0}, {2, 2});
  apply_constraint(MinMaxNorm(2.0, 3.0, 0.5, {0, 1}), w);  // one norm, sqrt(26)
  v = values_of(w);
  const double n = std::sqrt(26.0), m = (0.5 * 3.0 + 0.5 * n) / (1e-7 + n);
  EXPECT_NEAR(v[0], 3 * m, 1e-15);
  w = tensor_of({-3.0, 1.0, 0.0, -0.5}, {2, 2});
  apply_constraint(NonNeg(), w);
  EXPECT_EQ(values_of(w), (std::vector<double>{0.0, 1.0, 0.0, 0.0}));
  // a Conv2D kernel (R, S, C, K) with axis [0, 1, 2]: one norm per filter
  Tensor k = tensor_of({1, 2, 3, 4, 5, 6, 7, 8}, {2, 1, 2, 2});
  apply_constraint(MaxNorm(1.0, {0, 1, 2}), k);
  v = values_of(k);
  const double n0 = std::sqrt(1 + 9 + 25 + 49.0), n1 = std::sqrt(4 + 16 + 36 + 64.0);
  EXPECT_NEAR(v[0], 1 / (1e-7 + n0), 1e-15);
  EXPECT_NEAR(v[7], 8 / (1e-7 + n1), 1e-15);
  EXPECT_THROW(apply_constraint(MaxNorm(1.0, {2}), w), ConfigError);  // rank 2
}

// ---------------------------------------------------------------- one step against PyTorch

Json read_fixture() {
  std::ifstream in(std::string(RESKIT_GOLDEN_DIR) + "/regularizers.json");
  if (!in) throw std::runtime_error("cannot open regularizers.json; run tests/golden/gen_regularizers.py");
  return Json::parse(in);
}

void flatten(const Json& j, std::vector<double>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
  } else {
    out.push_back(j.get<double>());
  }
}

std::vector<double> flat(const Json& j) {
  std::vector<double> out;
  flatten(j, out);
  return out;
}

// The script's model (see gen_regularizers.py), in the current floatx.
Model golden_model() {
  clear_session();
  Tensor x = Input({4, 4, 2});
  Tensor h = Conv2D(3, {2, 2},
                    {.activation = "relu",
                     .kernel_regularizer = L1L2(0.003, 0.02),
                     .bias_regularizer = L1(0.01),
                     .activity_regularizer = L2(0.005),
                     .kernel_constraint = MaxNorm(0.5, {0, 1, 2}),
                     .name = "conv"})(x);
  h = BatchNormalization({.beta_regularizer = L1(0.01),
                          .gamma_regularizer = L2(0.02),
                          .gamma_constraint = NonNeg(),
                          .name = "bn"})(h);
  h = Flatten()(h);
  h = Dense(4, {.activation = "softmax",
                .kernel_regularizer = L2(0.01),
                .activity_regularizer = L2(0.05),
                .kernel_constraint = UnitNorm(),
                .bias_constraint = MinMaxNorm(0.1, 0.3, 0.5),
                .name = "fc"})(h);
  return Model(x, h, "golden");
}

void golden_step(DType dtype, double tolerance) {
  const Json f = read_fixture();
  set_floatx(dtype);
  Model model = golden_model();
  for (Param* p : model.parameters()) {
    const Json& v = f.at("weights").at(p->name);
    p->value = tensor_of(flat(v), p->value.shape(), dtype);
  }
  model.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.01}),
                std::make_shared<CategoricalCrossentropy>());
  const Tensor x = tensor_of(flat(f.at("x")), {3, 4, 4, 2});
  const Tensor y = tensor_of(flat(f.at("y")), {3, 4});
  const double loss = model.train_on_batch(x, y).loss;
  EXPECT_NEAR(loss, f.at("loss").get<double>(), tolerance) << "data loss alone: " << f.at("data_loss");
  for (Param* p : model.parameters()) {
    const auto want = flat(f.at("after").at(p->name));
    const auto got = values_of(p->value);
    ASSERT_EQ(got.size(), want.size()) << p->name;
    double worst = 0;
    for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
    EXPECT_LE(worst, tolerance) << p->name;
  }
  EXPECT_NEAR(model.test_on_batch(x, y).loss, f.at("eval_loss").get<double>(), tolerance);
  set_floatx(DType::float32);
}

TEST(RegularizerGolden, OneAdamStepWithPenaltiesAndConstraintsFloat64) { golden_step(DType::float64, 1e-9); }
TEST(RegularizerGolden, OneAdamStepWithPenaltiesAndConstraintsFloat32) { golden_step(DType::float32, 2e-5); }

// ---------------------------------------------------------------- Keras configs

// A model whose layers carry every option, its JSON, and the JSON with one option replaced.
Model small_model() {
  clear_session();
  Tensor x = Input({4, 4, 2});
  Tensor h = Conv2D(2, {3, 3}, {.name = "c"})(x);
  h = BatchNormalization({.name = "bn"})(h);
  h = Flatten()(h);
  h = Dense(3, {.activation = "softmax", .name = "d"})(h);
  return Model(x, h, "small");
}

Json& layer_config(Json& model, const std::string& name) {
  for (auto& l : model["config"]["layers"])
    if (l["config"]["name"] == name) return l["config"];
  throw std::runtime_error("no layer " + name);
}

Model with_option(const std::string& layer, const std::string& key, const Json& value) {
  Json j = Json::parse(model_to_json(small_model()));
  layer_config(j, layer)[key] = value;
  return model_from_json(j.dump());
}

Param weight(const Model& m, const std::string& layer, const std::string& name) {
  return m.get_layer(layer)->param(name);
}

TEST(RegularizerConfig, ReadsEveryKerasForm) {
  // tf.keras 2.x (2.3+): the class and its config
  Model m = with_option("c", "kernel_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 1e-4}}}});
  EXPECT_EQ(weight(m, "c", "kernel").regularizer, L2(1e-4));
  // older tf.keras: l2(1e-4) was an L1L2, its factors rounded to float32 in the file
  m = with_option("c", "kernel_regularizer",
                  {{"class_name", "L1L2"}, {"config", {{"l1", 0.0}, {"l2", 9.999999747378752e-05}}}});
  EXPECT_EQ(weight(m, "c", "kernel").regularizer, L1L2(0.0, 9.999999747378752e-05));
  // Keras 2.13+ and 3: module and registered_name
  m = with_option("d", "bias_regularizer",
                  {{"module", "keras.regularizers"},
                   {"class_name", "L1"},
                   {"config", {{"l1", 0.25}}},
                   {"registered_name", nullptr}});
  EXPECT_EQ(weight(m, "d", "bias").regularizer, L1(0.25));
  // the string names Keras accepts, with Keras's defaults; Keras 2's old "l" key
  EXPECT_EQ(weight(with_option("c", "kernel_regularizer", "l2"), "c", "kernel").regularizer, L2(0.01));
  EXPECT_EQ(weight(with_option("c", "kernel_regularizer", "l1_l2"), "c", "kernel").regularizer,
            L1L2(0.01, 0.01));
  m = with_option("c", "kernel_regularizer", {{"class_name", "L2"}, {"config", {{"l", 0.5}}}});
  EXPECT_EQ(weight(m, "c", "kernel").regularizer, L2(0.5));
  m = with_option("c", "activity_regularizer",
                  {{"class_name", "L1L2"}, {"config", {{"l1", 0.1}, {"l2", 0.2}}}});
  ASSERT_NE(m.get_layer("c")->activity_regularizer(), nullptr);
  EXPECT_EQ(*m.get_layer("c")->activity_regularizer(), L1L2(0.1, 0.2));
  m = with_option("bn", "gamma_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 0.3}}}});
  EXPECT_EQ(weight(m, "bn", "gamma").regularizer, L2(0.3));
  // constraints
  m = with_option("c", "kernel_constraint",
                  {{"class_name", "MaxNorm"}, {"config", {{"max_value", 3}, {"axis", {0, 1, 2}}}}});
  EXPECT_EQ(weight(m, "c", "kernel").constraint, MaxNorm(3.0, {0, 1, 2}));
  m = with_option("d", "kernel_constraint",
                  {{"module", "keras.constraints"},
                   {"class_name", "UnitNorm"},
                   {"config", {{"axis", 0}}},
                   {"registered_name", nullptr}});
  EXPECT_EQ(weight(m, "d", "kernel").constraint, UnitNorm());
  m = with_option("d", "bias_constraint",
                  {{"class_name", "MinMaxNorm"},
                   {"config", {{"min_value", 0.1}, {"max_value", 0.3}, {"rate", 0.5}, {"axis", 0}}}});
  EXPECT_EQ(weight(m, "d", "bias").constraint, MinMaxNorm(0.1, 0.3, 0.5));
  EXPECT_EQ(weight(with_option("bn", "beta_constraint", "non_neg"), "bn", "beta").constraint, NonNeg());
  m = with_option("c", "bias_constraint", {{"class_name", "MaxNorm"}, {"config", {{"m", 4}, {"axis", 0}}}});
  EXPECT_EQ(weight(m, "c", "bias").constraint, MaxNorm(4.0));  // Keras 2.0's key
}

TEST(RegularizerConfig, RoundTripsThroughJsonAndH5) {
  clear_session();
  Tensor x = Input({4, 4, 2});
  Tensor h = Conv2D(2, {3, 3},
                    {.kernel_regularizer = L2(1e-4),
                     .bias_regularizer = L1(0.5),
                     .activity_regularizer = L1L2(0.1, 0.2),
                     .kernel_constraint = MaxNorm(3.0, {0, 1, 2}),
                     .bias_constraint = NonNeg(),
                     .name = "c"})(x);
  h = BatchNormalization({.beta_regularizer = L1(0.01),
                          .gamma_regularizer = L2(0.02),
                          .beta_constraint = UnitNorm(),
                          .gamma_constraint = MinMaxNorm(0.5, 2.0, 0.7),
                          .name = "bn"})(h);
  h = Flatten()(h);
  h = Dense(3, {.activation = "softmax", .use_bias = false, .bias_regularizer = L2(0.1), .name = "d"})(h);
  Model model(x, h, "rules");
  const std::string json = model_to_json(model);
  // tf.keras 2.6's get_config forms
  EXPECT_NE(json.find(R"("kernel_regularizer":{"class_name":"L2","config":{"l2":0.0001}})"),
            std::string::npos)
      << json;
  EXPECT_NE(
      json.find(R"("kernel_constraint":{"class_name":"MaxNorm","config":{"max_value":3.0,"axis":[0,1,2]}})"),
      std::string::npos)
      << json;
  auto check = [&](Model& m) {
    EXPECT_EQ(weight(m, "c", "kernel").regularizer, L2(1e-4));
    EXPECT_EQ(weight(m, "c", "bias").regularizer, L1(0.5));
    EXPECT_EQ(*m.get_layer("c")->activity_regularizer(), L1L2(0.1, 0.2));
    EXPECT_EQ(weight(m, "c", "kernel").constraint, MaxNorm(3.0, {0, 1, 2}));
    EXPECT_EQ(weight(m, "c", "bias").constraint, NonNeg());
    EXPECT_EQ(weight(m, "bn", "beta").regularizer, L1(0.01));
    EXPECT_EQ(weight(m, "bn", "gamma").regularizer, L2(0.02));
    EXPECT_EQ(weight(m, "bn", "beta").constraint, UnitNorm());
    EXPECT_EQ(weight(m, "bn", "gamma").constraint, MinMaxNorm(0.5, 2.0, 0.7));
    EXPECT_FALSE(weight(m, "d", "kernel").regularizer);
    EXPECT_EQ(model_to_json(m), json);  // Dense's bias_regularizer kept without a bias
  };
  Model again = model_from_json(json);
  check(again);
  const auto file =
      std::filesystem::temp_directory_path() / ("reskit_regularizers_" + std::to_string(::getpid()) + ".h5");
  save_model(model, file.string());
  Model loaded = load_model(file.string());
  std::filesystem::remove(file);
  check(loaded);
}

TEST(RegularizerConfig, RefusesWhatReskitLacksByLayerKeyAndValue) {
  auto error = [](const std::string& layer, const std::string& key, const Json& value) {
    return error_of([&] { with_option(layer, key, value); });
  };
  std::string e =
      error("c", "kernel_regularizer",
            {{"class_name", "OrthogonalRegularizer"}, {"config", {{"factor", 0.01}, {"mode", "rows"}}}});
  EXPECT_NE(e.find("Conv2D 'c'"), std::string::npos) << e;
  EXPECT_NE(e.find("kernel_regularizer"), std::string::npos) << e;
  EXPECT_NE(e.find("OrthogonalRegularizer"), std::string::npos) << e;
  e = error(
      "d", "activity_regularizer",
      {{"module", "my_package"}, {"class_name", "L2"}, {"config", {{"l2", 0.1}}}, {"registered_name", "L2"}});
  EXPECT_NE(e.find("Dense 'd'"), std::string::npos) << e;
  EXPECT_NE(e.find("my_package"), std::string::npos) << e;
  e = error("c", "kernel_regularizer",
            {{"module", nullptr},
             {"class_name", "L2"},
             {"config", {{"l2", 0.1}}},
             {"registered_name", "Custom>L2"}});
  EXPECT_NE(e.find("Custom>L2"), std::string::npos) << e;
  e = error("c", "kernel_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 0.1}, {"scale", 2}}}});
  EXPECT_NE(e.find("scale"), std::string::npos) << e;
  e = error("c", "kernel_regularizer", {{"class_name", "L2"}, {"config", {{"l2", -0.1}}}});
  EXPECT_NE(e.find("non-negative"), std::string::npos) << e;
  e = error("c", "kernel_regularizer", "l3");
  EXPECT_NE(e.find("\"l3\""), std::string::npos) << e;
  e = error("bn", "gamma_constraint", {{"class_name", "RadialConstraint"}, {"config", Json::object()}});
  EXPECT_NE(e.find("BatchNormalization 'bn'"), std::string::npos) << e;
  EXPECT_NE(e.find("gamma_constraint"), std::string::npos) << e;
  EXPECT_NE(e.find("RadialConstraint"), std::string::npos) << e;
  e = error("d", "kernel_constraint",
            {{"class_name", "MaxNorm"}, {"config", {{"max_value", 2}, {"axis", 3}}}});
  EXPECT_NE(e.find("Dense 'd'"), std::string::npos) << e;
  EXPECT_NE(e.find("rank 2"), std::string::npos) << e;
  EXPECT_NE(error("d", "lora_rank", 4).find("lora_rank"), std::string::npos);
  // any layer may carry an activity_regularizer in Keras; reskit's other layers refuse one
  e = error("bn", "activity_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 0.1}}}});
  EXPECT_NE(e.find("BatchNormalization 'bn'"), std::string::npos) << e;
  EXPECT_NE(e.find("activity_regularizer"), std::string::npos) << e;
  EXPECT_NO_THROW(with_option("bn", "activity_regularizer", nullptr));
}

// ---------------------------------------------------------------- training and the CLI's option

TEST(RegularizerTraining, KernelRegularizerOnEveryConvAndDenseKernel) {
  Model m = small_model();
  regularize_kernels(m, L2(1e-4));
  EXPECT_EQ(weight(m, "c", "kernel").regularizer, L2(1e-4));
  EXPECT_EQ(weight(m, "d", "kernel").regularizer, L2(1e-4));
  EXPECT_FALSE(weight(m, "c", "bias").regularizer);
  EXPECT_FALSE(weight(m, "bn", "gamma").regularizer);
  // the penalty is in the reported loss of train_on_batch and test_on_batch
  m.compile(std::make_shared<SGD>(), std::make_shared<CategoricalCrossentropy>());
  Tensor x({2, 4, 4, 2}), y({2, 3});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(std::sin(i));
  y.data<float>()[0] = y.data<float>()[5] = 1;
  const double with = m.test_on_batch(x, y).loss;
  const double expected = 1e-4 * (penalty(L2(1.0), weight(m, "c", "kernel").value) +
                                  penalty(L2(1.0), weight(m, "d", "kernel").value));
  regularize_kernels(m, std::nullopt);
  const double without = m.test_on_batch(x, y).loss;
  EXPECT_NEAR(with - without, expected, 1e-6 * expected);
}

TEST(RegularizerTraining, ConstraintKeepsMixedPrecisionKernelsCurrent) {
  // Adam writes a mixed-precision kernel's bfloat16 rounding with it; the constraint then changes
  // the kernel, and the next forward must run on the constrained values, not the stale rounding.
  set_global_policy("mixed_bfloat16");
  clear_session();
  Tensor x = Input({6, 6, 2});
  // 1x1: a bfloat16 matmul reading the kernel's rounding; UnitNorm rescales after every update
  Tensor h = Conv2D(4, {1, 1}, {.kernel_constraint = UnitNorm({0, 1, 2}), .name = "c"})(x);
  h = Flatten()(h);
  h = Dense(3, {.activation = "softmax", .name = "d"})(h);
  Model m(x, h, "mixed");
  set_global_policy("float32");
  m.compile(std::make_shared<Adam>(AdamOptions{.learning_rate = 0.05}),
            std::make_shared<CategoricalCrossentropy>());
  Tensor xs({8, 6, 6, 2}), ys({8, 3});
  for (std::int64_t i = 0; i < xs.numel(); ++i) xs.data<float>()[i] = static_cast<float>(std::cos(0.3 * i));
  for (int i = 0; i < 8; ++i) ys.data<float>()[i * 3 + i % 3] = 1;
  for (int step = 0; step < 3; ++step) m.train_on_batch(xs, ys);
  Param& k = m.get_layer("c")->param("kernel");
  const auto w = values_of(k.value);
  for (int f = 0; f < 4; ++f) {
    double norm = 0;
    for (std::size_t i = static_cast<std::size_t>(f); i < w.size(); i += 4) norm += w[i] * w[i];
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-6) << "filter " << f;
  }
  const auto y1 = values_of(m.forward(xs, true));
  k.value.data<float>();  // a write access: any rounding kept with the kernel is dropped
  const auto y2 = values_of(m.forward(xs, true));
  EXPECT_EQ(y1, y2);
}

}  // namespace
