// The augmentation kernels (kernels/image.h): the projective transform against values written
// independently from TensorFlow's ImageProjectiveTransformV3 (gen_image_transform_golden.py) in
// every fill mode and interpolation, and each backward (transform, flip, crop, contrast) as the
// exact adjoint of its forward.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/image_transform_golden.h"
#include "kernels/kernels.h"

namespace reskit::kernels {
namespace {

namespace golden = image_transform_golden;

FillMode fill_mode_named(const std::string& s) {
  if (s == "reflect") return FillMode::reflect;
  if (s == "wrap") return FillMode::wrap;
  if (s == "constant") return FillMode::constant;
  return FillMode::nearest;
}

std::vector<double> random_values(std::int64_t size, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<std::size_t>(size));
  for (auto& e : v) e = normal(gen);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

template <class T>
void check_golden(double tolerance) {
  std::vector<T> x(golden::kH * golden::kW * golden::kC);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<T>(((37 * i + 11) % 97) / 16.0 - 3.0);
  for (const auto& g : golden::cases()) {
    SCOPED_TRACE(std::string(g.name) + " " + g.fill_mode + " " + g.interpolation);
    TransformParams p;
    p.h = golden::kH, p.w = golden::kW, p.c = golden::kC;
    p.fill_mode = fill_mode_named(g.fill_mode);
    p.interpolation =
        std::string(g.interpolation) == "nearest" ? Interpolation::nearest : Interpolation::bilinear;
    p.fill_value = golden::kFill;
    std::vector<T> y(x.size(), std::nan(""));
    projective_transform_forward(p, g.transform.data(), x.data(), y.data());
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(static_cast<double>(y[i]), g.y[i], tolerance) << i;
  }
}

TEST(ImageTransform, MatchesTensorFlowDefinitionsFloat) { check_golden<float>(1e-5); }
TEST(ImageTransform, MatchesTensorFlowDefinitionsDouble) { check_golden<double>(1e-5); }

// Every transform case, every fill mode, both interpolations; fill_value 0 (the map is linear).
TEST(ImageTransform, BackwardIsTheAdjoint) {
  for (const auto& g : golden::cases()) {
    SCOPED_TRACE(std::string(g.name) + " " + g.fill_mode + " " + g.interpolation);
    TransformParams p;
    p.n = 2, p.h = golden::kH, p.w = golden::kW, p.c = golden::kC;
    p.fill_mode = fill_mode_named(g.fill_mode);
    p.interpolation =
        std::string(g.interpolation) == "nearest" ? Interpolation::nearest : Interpolation::bilinear;
    std::vector<float> t = g.transform;
    t.insert(t.end(), g.transform.begin(), g.transform.end());
    t[8 + 2] += 0.37f;  // the second image shifted a little
    const auto x = random_values(p.n * p.h * p.w * p.c, 1), dy = random_values(p.n * p.h * p.w * p.c, 2);
    std::vector<double> y(x.size()), dx(x.size(), std::nan(""));
    projective_transform_forward(p, t.data(), x.data(), y.data());
    projective_transform_backward(p, t.data(), dy.data(), dx.data());
    EXPECT_NEAR(dot(y, dy), dot(x, dx), 1e-10 * (std::abs(dot(y, dy)) + 1));
  }
}

TEST(ImageTransform, ZeroProjectionReadsTheFillValue) {
  TransformParams p;
  p.h = 2, p.w = 3, p.c = 1, p.fill_mode = FillMode::reflect, p.fill_value = 7.0;
  const float t[8] = {1, 0, 0, 0, 1, 0, -1, 0};  // k = 1 − x: 0 at column 1
  const std::vector<double> x = {1, 2, 3, 4, 5, 6};
  std::vector<double> y(6);
  projective_transform_forward(p, t, x.data(), y.data());
  EXPECT_EQ(y[1], 7.0);
  EXPECT_EQ(y[4], 7.0);
  EXPECT_EQ(y[0], 1.0);
}

TEST(ImageTransform, FlipsAndTheirAdjoint) {
  const std::int64_t n = 2, h = 3, w = 4, c = 2;
  const std::vector<std::uint8_t> rows = {1, 0}, cols = {1, 1};
  const auto x = random_values(n * h * w * c, 3), dy = random_values(n * h * w * c, 4);
  std::vector<double> y(x.size()), dx(x.size());
  flip_images(n, h, w, c, rows.data(), cols.data(), x.data(), y.data());
  EXPECT_EQ(y[0], x[((0 * h + 2) * w + 3) * c]);                        // image 0: both flipped
  EXPECT_EQ(y[(1 * h * w) * c + 1], x[((1 * h + 0) * w + 3) * c + 1]);  // image 1: columns only
  flip_images(n, h, w, c, rows.data(), cols.data(), dy.data(), dx.data());
  EXPECT_NEAR(dot(y, dy), dot(x, dx), 1e-12);
}

TEST(ImageTransform, CropAndItsAdjoint) {
  const std::int64_t n = 2, h = 5, w = 6, c = 3;
  const CropBox box{1, 2, 3, 2};
  const auto x = random_values(n * h * w * c, 5), dy = random_values(n * box.rows * box.cols * c, 6);
  std::vector<double> y(dy.size()), dx(x.size(), std::nan(""));
  crop_forward(n, h, w, c, box, x.data(), y.data());
  EXPECT_EQ(y[0], x[((0 * h + 1) * w + 2) * c]);
  crop_backward(n, h, w, c, box, dy.data(), dx.data());
  EXPECT_NEAR(dot(y, dy), dot(x, dx), 1e-12);
}

TEST(ImageTransform, ContrastIsTensorFlowsAdjustContrastClippedAndItsAdjoint) {
  ContrastParams p;
  p.n = 2, p.h = 3, p.w = 2, p.c = 2, p.lo = -1.0, p.hi = 1.5;
  const double factor[2] = {1.7, 0.4};
  const auto x = random_values(p.n * p.h * p.w * p.c, 7), dy = random_values(p.n * p.h * p.w * p.c, 8);
  std::vector<double> y(x.size()), dx(x.size());
  contrast_forward(p, factor, x.data(), y.data());
  std::int64_t clipped = 0;
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t ch = 0; ch < p.c; ++ch) {
      double mean = 0;
      for (std::int64_t i = 0; i < p.h * p.w; ++i) mean += x[(n * p.h * p.w + i) * p.c + ch] / (p.h * p.w);
      for (std::int64_t i = 0; i < p.h * p.w; ++i) {
        const std::int64_t k = (n * p.h * p.w + i) * p.c + ch;
        const double v = (x[k] - mean) * factor[n] + mean;
        clipped += v < p.lo || v > p.hi;
        EXPECT_NEAR(y[k], std::min(std::max(v, p.lo), p.hi), 1e-12);
      }
    }
  EXPECT_GT(clipped, 0) << "the case should exercise the clip";
  // The adjoint of the linear part on the unclipped values: <y − clip offset, g> with the mask.
  contrast_backward(p, factor, x.data(), dy.data(), dx.data());
  // Finite differences of <y(x), dy> at x.
  for (std::size_t i = 0; i < x.size(); i += 5) {
    auto xp = x, xm = x;
    xp[i] += 1e-6, xm[i] -= 1e-6;
    std::vector<double> yp(x.size()), ym(x.size());
    contrast_forward(p, factor, xp.data(), yp.data());
    contrast_forward(p, factor, xm.data(), ym.data());
    EXPECT_NEAR((dot(yp, dy) - dot(ym, dy)) / 2e-6, dx[i], 1e-6) << i;
  }
}

}  // namespace
}  // namespace reskit::kernels
