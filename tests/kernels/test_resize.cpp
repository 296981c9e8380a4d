// The resize kernel (kernels/image.h) against values written independently from TensorFlow's
// definitions (gen_resize_golden.py), Keras's crop_to_aspect_ratio box, the backward as the exact
// adjoint of the forward, the errors, and the 8-bit resize's fast bilinear path against its
// reference bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/resize_u8.h"
#include "kernels/kernels.h"
#include "kernels/ref/resize.h"
#include "kernels/resize_golden.h"
#include "reskit/error.h"

namespace reskit::kernels {
namespace {

ResizeMethod method_named(const std::string& name) {
  if (name == "bilinear") return ResizeMethod::bilinear;
  if (name == "nearest") return ResizeMethod::nearest;
  if (name == "bicubic") return ResizeMethod::bicubic;
  if (name == "area") return ResizeMethod::area;
  throw std::invalid_argument("no resize method " + name);
}

std::vector<double> random_values(std::int64_t size, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<std::size_t>(size));
  for (auto& e : v) e = normal(gen);
  return v;
}

template <class T>
std::vector<T> golden_image(std::int64_t size) {
  std::vector<T> x(static_cast<std::size_t>(size));
  for (std::int64_t i = 0; i < size; ++i) x[i] = static_cast<T>(((37 * i + 11) % 97) / 16.0 - 3.0);
  return x;
}

template <class T>
void check_golden(double tolerance) {
  for (const auto& g : resize_golden::cases()) {
    SCOPED_TRACE(std::string(g.method) + " " + std::to_string(g.h) + "x" + std::to_string(g.w) + " -> " +
                 std::to_string(g.p) + "x" + std::to_string(g.q) + (g.crop ? " cropped" : ""));
    ResizeParams p;
    p.h = g.h, p.w = g.w, p.c = g.c, p.p = g.p, p.q = g.q;
    p.method = method_named(g.method);
    if (g.crop) {
      const CropBox box = resize_crop_box(g.h, g.w, g.p, g.q);
      EXPECT_EQ(box.top, g.top);
      EXPECT_EQ(box.left, g.left);
      EXPECT_EQ(box.rows, g.rows);
      EXPECT_EQ(box.cols, g.cols);
      p.top = box.top, p.left = box.left, p.rows = box.rows, p.cols = box.cols;
    }
    const auto x = golden_image<T>(g.h * g.w * g.c);
    std::vector<T> y(g.y.size(), std::nan(""));
    resize_forward(p, x.data(), y.data());
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(static_cast<double>(y[i]), g.y[i], tolerance) << "at flat index " << i;
    }
  }
}

TEST(Resize, MatchesTensorFlowDefinitionsFloat) { check_golden<float>(2e-6); }
TEST(Resize, MatchesTensorFlowDefinitionsDouble) { check_golden<double>(1e-12); }

TEST(Resize, CropToAspectRatioBoxIsKeras) {
  for (const auto& b : resize_golden::boxes()) {
    const CropBox box = resize_crop_box(b.h, b.w, b.th, b.tw);
    EXPECT_EQ(box.top, b.top) << b.h << "x" << b.w << " to " << b.th << ":" << b.tw;
    EXPECT_EQ(box.left, b.left) << b.h << "x" << b.w << " to " << b.th << ":" << b.tw;
    EXPECT_EQ(box.rows, b.rows) << b.h << "x" << b.w << " to " << b.th << ":" << b.tw;
    EXPECT_EQ(box.cols, b.cols) << b.h << "x" << b.w << " to " << b.th << ":" << b.tw;
  }
}

// <resize(x), g> = <x, resize_backward(g)> for random x and g: the backward is the adjoint.
TEST(Resize, BackwardIsTheAdjoint) {
  for (const char* method : {"bilinear", "nearest", "bicubic", "area"}) {
    for (bool window : {false, true}) {
      SCOPED_TRACE(std::string(method) + (window ? " window" : ""));
      ResizeParams p;
      p.n = 2, p.h = 7, p.w = 6, p.c = 3, p.p = 5, p.q = 9;
      if (window) p.top = 1, p.left = 2, p.rows = 5, p.cols = 3;
      p.method = method_named(method);
      const auto x = random_values(p.n * p.h * p.w * p.c, 1);
      const auto g = random_values(p.n * p.p * p.q * p.c, 2);
      std::vector<double> y(g.size()), dx(x.size(), std::nan(""));
      resize_forward(p, x.data(), y.data());
      resize_backward(p, g.data(), dx.data());
      double lhs = 0, rhs = 0;
      for (std::size_t i = 0; i < y.size(); ++i) lhs += y[i] * g[i];
      for (std::size_t i = 0; i < x.size(); ++i) rhs += x[i] * dx[i];
      EXPECT_NEAR(lhs, rhs, 1e-10 * (std::abs(lhs) + 1));
      if (window) EXPECT_EQ(dx[0], 0.0) << "a pixel outside the window gets no gradient";
    }
  }
}

TEST(Resize, RejectsAWindowOutsideTheImage) {
  ResizeParams p;
  p.h = 4, p.w = 4, p.p = 2, p.q = 2, p.top = 2, p.rows = 3;
  std::vector<float> x(16), y(4);
  EXPECT_THROW(resize_forward(p, x.data(), y.data()), ShapeError);
  p.top = 0, p.rows = 0, p.q = 0;
  EXPECT_THROW(resize_forward(p, x.data(), y.data()), ShapeError);
}

// Up, down (2x down makes weights of exactly 1/2: every rounding tie), odd ratios, windows, and
// channel counts 1, 2, 3, 4: the fast path's bytes are the reference's.
TEST(ResizeU8, BilinearFastPathHasTheReferenceBits) {
  std::mt19937 gen(7);
  struct Case {
    std::int64_t n, h, w, c, p, q, top, left, rows, cols;
  };
  std::vector<Case> cases = {{1, 8, 8, 3, 4, 4, 0, 0, 0, 0},
                             {2, 7, 5, 1, 13, 9, 0, 0, 0, 0},
                             {1, 375, 500, 3, 224, 224, 20, 31, 300, 410},
                             {1, 40, 30, 4, 17, 29, 3, 2, 33, 27},
                             {1, 9, 11, 2, 9, 11, 0, 0, 0, 0},
                             {1, 1, 1, 3, 5, 3, 0, 0, 0, 0},
                             {1, 64, 64, 3, 32, 32, 0, 0, 0, 0}};
  for (int k = 0; k < 40; ++k) {  // random windows and sizes
    Case c{1,
           1 + static_cast<std::int64_t>(gen() % 60),
           1 + static_cast<std::int64_t>(gen() % 60),
           1 + static_cast<std::int64_t>(gen() % 4),
           1 + static_cast<std::int64_t>(gen() % 50),
           1 + static_cast<std::int64_t>(gen() % 50),
           0,
           0,
           0,
           0};
    c.top = static_cast<std::int64_t>(gen() % static_cast<unsigned>(c.h));
    c.left = static_cast<std::int64_t>(gen() % static_cast<unsigned>(c.w));
    c.rows = 1 + static_cast<std::int64_t>(gen() % static_cast<unsigned>(c.h - c.top));
    c.cols = 1 + static_cast<std::int64_t>(gen() % static_cast<unsigned>(c.w - c.left));
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    const ResizeParams p{.n = c.n,
                         .h = c.h,
                         .w = c.w,
                         .c = c.c,
                         .p = c.p,
                         .q = c.q,
                         .top = c.top,
                         .left = c.left,
                         .rows = c.rows,
                         .cols = c.cols};
    std::vector<std::uint8_t> x(static_cast<std::size_t>(c.n * c.h * c.w * c.c));
    for (auto& v : x) v = static_cast<std::uint8_t>(gen());
    std::vector<std::uint8_t> fast(static_cast<std::size_t>(c.n * c.p * c.q * c.c)), ref(fast.size());
    cpu::resize_bilinear_u8(p, x.data(), fast.data());
    ref::resize_u8(p, x.data(), ref.data());
    ASSERT_EQ(fast, ref) << c.h << "x" << c.w << "x" << c.c << " window " << c.top << "," << c.left << " "
                         << c.rows << "x" << c.cols << " -> " << c.p << "x" << c.q;
  }
}

TEST(ResizeU8, RejectsAWindowOutsideTheImage) {
  ResizeParams p;
  p.h = 4, p.w = 4, p.c = 3, p.p = 2, p.q = 2, p.left = 2, p.cols = 3;
  std::vector<std::uint8_t> x(48), y(12);
  EXPECT_THROW(cpu::resize_bilinear_u8(p, x.data(), y.data()), ShapeError);
  EXPECT_THROW(ref::resize_u8(p, x.data(), y.data()), ShapeError);
}

}  // namespace
}  // namespace reskit::kernels
