// The image preprocessing and augmentation layers (reskit/layers/preprocessing_image.h): identity in
// inference, seeded and deterministic draws in training, Keras's geometry (a quarter turn is
// np.rot90, a translation by whole rows shifts rows), CenterCrop's window, the config errors, the
// ONNX refusal of area resizing, and a model that starts with them saves, loads and trains.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "reskit/reskit.h"
#include "support/error_of.h"

using namespace reskit;
using reskit::test::error_of;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed) {
  Tensor t(shape, DType::float64);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, d(gen));
  return t;
}

// The single layer of a one-layer model, called directly.
template <class Handle>
std::shared_ptr<Layer> built(Handle h, const Shape& in) {
  Tensor x = Input(in);
  h(x);
  return h.ptr();
}

class PreprocessingImage : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_session();
    set_floatx(DType::float64);
    set_random_seed(11);
  }
  void TearDown() override { set_floatx(DType::float32); }
};

}  // namespace

TEST_F(PreprocessingImage, RandomLayersAreTheIdentityInInference) {
  const Tensor x = random_tensor({2, 5, 6, 3}, 1);
  std::vector<std::shared_ptr<Layer>> layers = {
      built(RandomFlip(), {5, 6, 3}),
      built(RandomRotation({.upper = 0.3}), {5, 6, 3}),
      built(RandomZoom({.upper = 0.3}), {5, 6, 3}),
      built(RandomTranslation({.upper = 0.2}, {.upper = 0.2}), {5, 6, 3}),
      built(RandomContrast({.upper = 0.5}), {5, 6, 3}),
  };
  for (auto& l : layers) {
    SCOPED_TRACE(l->class_name());
    const Tensor y = l->forward({x}, false);
    EXPECT_EQ(y.to_vector(), x.to_vector());
    const Tensor g = random_tensor(x.shape(), 2);
    EXPECT_EQ(l->backward(g)[0].to_vector(), g.to_vector());
    const Tensor t = l->forward({x}, true);
    EXPECT_NE(t.to_vector(), x.to_vector()) << "training should augment";
  }
}

TEST_F(PreprocessingImage, SameSeedSameDrawsEachCallNew) {
  const Tensor x = random_tensor({4, 5, 5, 2}, 3);
  auto a = built(RandomRotation({.upper = 0.2}, {.seed = 42}), {5, 5, 2});
  auto b = built(RandomRotation({.upper = 0.2}, {.seed = 42}), {5, 5, 2});
  auto c = built(RandomRotation({.upper = 0.2}, {.seed = 43}), {5, 5, 2});
  const auto a1 = a->forward({x}, true).to_vector(), a2 = a->forward({x}, true).to_vector();
  EXPECT_EQ(a1, b->forward({x}, true).to_vector());
  EXPECT_EQ(a2, b->forward({x}, true).to_vector());
  EXPECT_NE(a1, a2);
  EXPECT_NE(a1, c->forward({x}, true).to_vector());
}

TEST_F(PreprocessingImage, RandomFlipGivesOneOfTheFourFlipsPerImage) {
  const std::int64_t n = 16, h = 3, w = 4, c = 2;
  const Tensor x = random_tensor({n, h, w, c}, 4);
  auto l = built(RandomFlip({.seed = 9}), {h, w, c});
  const Tensor y = l->forward({x}, true);
  std::set<int> seen;
  for (std::int64_t i = 0; i < n; ++i) {
    int found = -1;
    for (int k = 0; k < 4 && found < 0; ++k) {
      bool same = true;
      for (std::int64_t r = 0; r < h; ++r)
        for (std::int64_t q = 0; q < w; ++q)
          for (std::int64_t ch = 0; ch < c; ++ch) {
            const std::int64_t rr = (k & 1) ? h - 1 - r : r, qq = (k & 2) ? w - 1 - q : q;
            same = same && y.at(((i * h + r) * w + q) * c + ch) == x.at(((i * h + rr) * w + qq) * c + ch);
          }
      if (same) found = k;
    }
    ASSERT_GE(found, 0) << "image " << i << " is no flip of its input";
    seen.insert(found);
  }
  EXPECT_EQ(seen.size(), 4u) << "16 images should show all four flips";
}

// factor (0.25, 0.25): every angle is π/2; Keras's matrix then reads out[y][x] = in[x][W − 1 − y],
// numpy's rot90 (counter-clockwise).
TEST_F(PreprocessingImage, QuarterTurnIsRot90) {
  const std::int64_t s = 5;
  const Tensor x = random_tensor({2, s, s, 1}, 5);
  auto l =
      built(RandomRotation({.lower = 0.25, .upper = 0.25, .scalar = false}, {.interpolation = "nearest"}),
            {s, s, 1});
  const Tensor y = l->forward({x}, true);
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t r = 0; r < s; ++r)
      for (std::int64_t q = 0; q < s; ++q)
        EXPECT_EQ(y.at((i * s + r) * s + q), x.at((i * s + q) * s + (s - 1 - r))) << r << "," << q;
}

// height_factor (0.5, 0.5) on 4 rows: every image moves down 2 rows; "constant" fills with fill_value.
TEST_F(PreprocessingImage, TranslationByWholeRowsShiftsRows) {
  const Tensor x = random_tensor({1, 4, 3, 1}, 6);
  auto l = built(RandomTranslation({.lower = 0.5, .upper = 0.5, .scalar = false},
                                   {.lower = 0.0, .upper = 0.0, .scalar = false},
                                   {.fill_mode = "constant", .fill_value = 9.0}),
                 {4, 3, 1});
  const Tensor y = l->forward({x}, true);
  for (std::int64_t r = 0; r < 4; ++r)
    for (std::int64_t q = 0; q < 3; ++q)
      EXPECT_NEAR(y.at(r * 3 + q), r < 2 ? 9.0 : x.at((r - 2) * 3 + q), 1e-12);
}

TEST_F(PreprocessingImage, CenterCropTakesKerasWindow) {
  const Tensor x = random_tensor({2, 5, 6, 1}, 7);
  auto l = built(CenterCrop(2, 3), {5, 6, 1});
  const Tensor y = l->forward({x}, false);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 3, 1}));
  // start (5 − 2) / 2 = 1, (6 − 3) / 2 = 1
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t r = 0; r < 2; ++r)
      for (std::int64_t q = 0; q < 3; ++q)
        EXPECT_EQ(y.at((i * 2 + r) * 3 + q), x.at((i * 5 + r + 1) * 6 + q + 1));
}

TEST_F(PreprocessingImage, ResizingShapesAndIdentityAtSameSize) {
  const Tensor x = random_tensor({2, 4, 5, 3}, 8);
  for (const char* method : {"bilinear", "nearest", "bicubic", "area"}) {
    auto same = built(Resizing(4, 5, {.interpolation = method}), {4, 5, 3});
    const Tensor y = same->forward({x}, false);
    for (std::int64_t i = 0; i < x.numel(); ++i) ASSERT_NEAR(y.at(i), x.at(i), 1e-6) << method;
    auto other = built(Resizing(7, 2, {.interpolation = method, .crop_to_aspect_ratio = true}), {4, 5, 3});
    EXPECT_EQ(other->forward({x}, true).shape(), (Shape{2, 7, 2, 3}));
  }
}

TEST_F(PreprocessingImage, BadOptionsAreRefusedByName) {
  EXPECT_NE(
      error_of<ConfigError>([] { Resizing(3, 3, {.interpolation = "lanczos3"}); }).find("interpolation"),
      std::string::npos);
  EXPECT_NE(error_of<ConfigError>([] { RandomFlip({.mode = "diagonal"}); }).find("mode"), std::string::npos);
  EXPECT_NE(error_of<ConfigError>([] {
              RandomRotation({.upper = 0.1}, {.fill_mode = "mirror"});
            }).find("fill_mode"),
            std::string::npos);
  EXPECT_NE(error_of<ConfigError>([] { RandomZoom({.upper = 1.5}); }).find("height_factor"),
            std::string::npos);
  EXPECT_NE(error_of<ConfigError>([] { RandomContrast({.upper = -0.1}); }).find("factor"), std::string::npos);
  EXPECT_NE(error_of<ConfigError>([] { CenterCrop(0, 2); }).find("height"), std::string::npos);

  Tensor in = Input({4, 4, 3}, {.name = "image"});
  Model m(in, Resizing(8, 8, {.interpolation = "nearest", .name = "resize"})(in));
  std::string json = model_to_json(m);
  json.replace(json.find("\"nearest\""), 9, "\"lanczos3\"");
  const std::string e = error_of<Error>([&] { model_from_json(json); });
  EXPECT_NE(e.find("Resizing 'resize'"), std::string::npos) << e;
  EXPECT_NE(e.find("interpolation"), std::string::npos) << e;
  EXPECT_NE(e.find("lanczos3"), std::string::npos) << e;
}

TEST_F(PreprocessingImage, AreaResizingIsNotExportable) {
  Tensor in = Input({4, 4, 3}, {.name = "image"});
  Model m(in, Resizing(2, 2, {.interpolation = "area", .name = "shrink"})(in));
  const std::string e = error_of<ConfigError>([&] { export_onnx(m, "/nonexistent/never.onnx"); });
  EXPECT_NE(e.find("Resizing 'shrink'"), std::string::npos) << e;
  EXPECT_NE(e.find("area"), std::string::npos) << e;
}

// A model as people save them: augmentation at the input, then a classifier. It trains a step, saves
// and loads with its layers' configs, and predicts the same in inference.
TEST_F(PreprocessingImage, ModelStartingWithThemSavesLoadsAndTrains) {
  set_floatx(DType::float32);
  Tensor in = Input({12, 10, 3}, {.name = "image"});
  Tensor x = RandomFlip({.mode = "horizontal", .seed = 1})(in);
  x = RandomRotation({.upper = 0.1}, {.seed = 2})(x);
  x = RandomZoom({.upper = 0.2}, std::nullopt, {.fill_mode = "nearest", .seed = 3})(x);
  x = RandomTranslation({.upper = 0.1}, {.lower = -0.2, .upper = 0.1, .scalar = false}, {.seed = 4})(x);
  x = RandomContrast({.upper = 0.3}, {.seed = 5})(x);
  x = Resizing(8, 8, {.crop_to_aspect_ratio = true})(x);
  x = CenterCrop(6, 6)(x);
  x = Conv2D(4, {3, 3}, {.activation = "relu"})(x);
  x = Flatten()(x);
  Tensor out = Dense(3, {.activation = "softmax"})(x);
  Model model(in, out, "augmented");
  model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  Tensor images = random_tensor({4, 12, 10, 3}, 9);
  Tensor batch(images.shape(), DType::float32);
  for (std::int64_t i = 0; i < images.numel(); ++i) batch.set(i, std::abs(images.at(i)) * 100.0);
  Tensor labels({4, 3}, DType::float32);
  for (std::int64_t i = 0; i < 4; ++i) labels.set(i * 3 + i % 3, 1.0);
  const auto step = model.train_on_batch(batch, labels);
  EXPECT_TRUE(std::isfinite(step.loss));

  const auto path =
      std::filesystem::temp_directory_path() / ("reskit_aug_" + std::to_string(::getpid()) + ".h5");
  save_model(model, path.string());
  Model loaded = load_model(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(model_to_json(loaded), model_to_json(model));
  EXPECT_EQ(loaded.forward(batch, false).to_vector(), model.forward(batch, false).to_vector());
  EXPECT_NE(loaded.summary_string().find("random_rotation (RandomRotat (None, 12, 10, 3)"), std::string::npos)
      << loaded.summary_string();
}
