// Every fast kernel against its reference twin (kernels::ref) on awkward shapes: batch 1, 3 and 13
// channels, 1x1 and 7x7 kernels, stride 2, 'same' padding with even kernels (asymmetric pads).
// float goes through the dispatch to oneDNN where it has the op, double to im2col + BLAS / OpenMP.
// Output buffers start as NaN, so a fast kernel that leaves an element unassigned fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/batch_norm_f32.h"
#include "kernels/cpu/onednn_engine.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/winograd.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/batch_norm.h"
#include "kernels/ref/bf16.h"
#include "kernels/ref/conv2d.h"
#include "kernels/ref/dense.h"
#include "kernels/ref/elementwise.h"
#include "kernels/ref/pool2d.h"
#include "reskit/runtime.h"

namespace {

namespace k = reskit::kernels;
using std::int64_t;

using namespace reskit::kernels::test_util;

template <class T>
class KernelsTest : public ::testing::Test {
 protected:
  void SetUp() override { k::set_backend(k::Backend::fast); }
};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(KernelsTest, Types);

// ---- shapes ----

std::vector<ConvCase> conv_cases() {
  return {
      {"1x1 13->3 batch 1", 1, 5, 6, 13, 3, valid(5, 1, 1), valid(6, 1, 1)},
      {"1x1 stride 2 on even size", 2, 8, 8, 16, 32, valid(8, 1, 2), valid(8, 1, 2)},
      // From 64 output pixels on, float32 1x1 convolutions run as matrix products.
      {"1x1 stride 2 on odd size (ResNet-50's 15 -> 8)", 3, 15, 15, 24, 40, valid(15, 1, 2), valid(15, 1, 2)},
      {"1x1 stride 2 by 1", 4, 9, 7, 9, 17, valid(9, 1, 2), valid(7, 1, 1)},
      {"1x1 64->256 (blocked products)", 4, 4, 5, 64, 256, valid(4, 1, 1), valid(5, 1, 1)},
      // From batch 8 on, float32 convolutions with at most 16 output pixels run as row products.
      {"3x3 same on 2x2 (ResNet-50's last stage)", 8, 2, 2, 24, 40, same(2, 3, 1), same(2, 3, 1)},
      {"3x3 same on 4x3", 9, 4, 3, 13, 17, same(4, 3, 1), same(3, 3, 1)},
      {"3x3 stride 2 pad 1 on 7x6", 8, 7, 6, 5, 19, explicit_pad(7, 3, 2, 1, 1), explicit_pad(6, 3, 2, 1, 1)},
      {"5x5 pad 3 on 2x2 (rows of padding only)", 8, 2, 2, 3, 7, explicit_pad(2, 5, 1, 3, 3),
       explicit_pad(2, 5, 1, 3, 3)},
      {"2x1 valid on 3x1", 10, 3, 1, 16, 16, valid(3, 2, 1), valid(1, 1, 1)},
      // With 2 threads or more the row products run in bands of 16 output (or input) channels.
      {"3x3 same on 2x2, 40->48 (channel bands)", 8, 2, 2, 40, 48, same(2, 3, 1), same(2, 3, 1)},
      {"3x3 same on 4x4, 32->33 (channel bands)", 8, 4, 4, 32, 33, same(4, 3, 1), same(4, 3, 1)},
      {"3x3 same 3->13 batch 1", 1, 7, 6, 3, 13, same(7, 3, 1), same(6, 3, 1)},
      {"7x7 stride 2 pad 3 (ResNet conv1)", 2, 16, 15, 3, 16, explicit_pad(16, 7, 2, 3, 3),
       explicit_pad(15, 7, 2, 3, 3)},
      {"2x2 same (pad bottom/right only)", 3, 6, 7, 13, 5, same(6, 2, 1), same(7, 2, 1)},
      {"4x4 same stride 2", 1, 9, 9, 8, 13, same(9, 4, 2), same(9, 4, 2)},
      {"3x3 same stride 2 (asymmetric)", 2, 8, 8, 16, 16, same(8, 3, 2), same(8, 3, 2)},
      {"3x3 valid stride 2", 2, 9, 8, 13, 13, valid(9, 3, 2), valid(8, 3, 2)},
      {"3x3 same 64->64", 2, 8, 8, 64, 64, same(8, 3, 1), same(8, 3, 1)},
      {"1x3 mixed", 2, 6, 9, 13, 24, valid(6, 1, 1), same(9, 3, 2)},
      {"1x1 pad 1 (output border sees only padding)", 1, 4, 5, 3, 13, explicit_pad(4, 1, 1, 1, 1),
       explicit_pad(5, 1, 1, 1, 1)},
  };
}

// ---- Conv2D ----

TYPED_TEST(KernelsTest, Conv2DForward) {
  using T = TypeParam;
  for (const auto& cc : conv_cases()) {
    for (int variant = 0; variant < 3; ++variant) {
      const bool with_bias = variant > 0, relu = variant == 2;  // relu: the fused ReLU post-op
      SCOPED_TRACE(cc.name + (with_bias ? " with bias" : " without bias") + (relu ? " and relu" : ""));
      auto p = conv_params(cc);
      p.relu = relu;
      const auto x = random_vector<T>(p.n * p.h * p.w * p.c, 1);
      const auto w = random_vector<T>(p.r * p.s * p.c * p.k, 2, 0.2);
      const auto b = random_vector<T>(p.k, 3);
      const T* bias = with_bias ? b.data() : nullptr;
      auto fast = nan_vector<T>(p.n * p.p * p.q * p.k), ref = fast;
      k::conv2d_forward<T>(p, x.data(), w.data(), bias, fast.data());
      k::ref::conv2d_forward<T>(p, x.data(), w.data(), bias, ref.data());
      EXPECT_TRUE(close(fast, ref, "y"));
      if (relu) {  // the reference's ReLU is that of its plain output
        auto plain = nan_vector<T>(p.n * p.p * p.q * p.k);
        p.relu = false;
        k::ref::conv2d_forward<T>(p, x.data(), w.data(), bias, plain.data());
        for (auto& v : plain) v = std::max(v, T(0));
        EXPECT_TRUE(close(ref, plain, "relu(y)"));
      }
    }
  }
}

TYPED_TEST(KernelsTest, Conv2DBackwardData) {
  using T = TypeParam;
  for (const auto& cc : conv_cases()) {
    SCOPED_TRACE(cc.name);
    const auto p = conv_params(cc);
    const auto dy = random_vector<T>(p.n * p.p * p.q * p.k, 4);
    const auto w = random_vector<T>(p.r * p.s * p.c * p.k, 5, 0.2);
    auto fast = nan_vector<T>(p.n * p.h * p.w * p.c), ref = fast;
    k::conv2d_backward_data<T>(p, dy.data(), w.data(), fast.data());
    k::ref::conv2d_backward_data<T>(p, dy.data(), w.data(), ref.data());
    EXPECT_TRUE(close(fast, ref, "dx"));
  }
}

TYPED_TEST(KernelsTest, Conv2DBackwardWeights) {
  using T = TypeParam;
  for (const auto& cc : conv_cases()) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(cc.name + (with_bias ? " with bias" : " without bias"));
      const auto p = conv_params(cc);
      const auto x = random_vector<T>(p.n * p.h * p.w * p.c, 6);
      const auto dy = random_vector<T>(p.n * p.p * p.q * p.k, 7);
      auto fast_dw = nan_vector<T>(p.r * p.s * p.c * p.k), ref_dw = fast_dw;
      auto fast_db = nan_vector<T>(p.k), ref_db = fast_db;
      k::conv2d_backward_weights<T>(p, x.data(), dy.data(), fast_dw.data(),
                                    with_bias ? fast_db.data() : nullptr);
      k::ref::conv2d_backward_weights<T>(p, x.data(), dy.data(), ref_dw.data(),
                                         with_bias ? ref_db.data() : nullptr);
      EXPECT_TRUE(close(fast_dw, ref_dw, "dw"));
      if (with_bias) {
        EXPECT_TRUE(close(fast_db, ref_db, "db"));
      }
    }
  }
}

// A second call with the same shape reuses the cached primitive and must see the new inputs.
TYPED_TEST(KernelsTest, Conv2DRepeatedShapeSeesNewData) {
  using T = TypeParam;
  const auto cases = conv_cases();
  const auto it = std::find_if(cases.begin(), cases.end(), [](const ConvCase& cc) {
    return cc.name == "3x3 same stride 2 (asymmetric)";
  });
  ASSERT_NE(it, cases.end());
  const auto p = conv_params(*it);
  for (std::uint64_t seed : {11, 12}) {
    const auto x = random_vector<T>(p.n * p.h * p.w * p.c, seed);
    const auto w = random_vector<T>(p.r * p.s * p.c * p.k, seed + 100, 0.2);
    auto fast = nan_vector<T>(p.n * p.p * p.q * p.k), ref = fast;
    k::conv2d_forward<T>(p, x.data(), w.data(), nullptr, fast.data());
    k::ref::conv2d_forward<T>(p, x.data(), w.data(), nullptr, ref.data());
    EXPECT_TRUE(close(fast, ref, "y"));
  }
}

// v rounded to bfloat16 (the mixed-precision operands' values).
std::vector<float> rounded_operand(const std::vector<float>& v) {
  return k::ref::rounded_bf16(v.data(), static_cast<int64_t>(v.size()));
}

// Conv2DParams::weights_version lets a kernel keep a converted copy of w (inference; the forward
// and backward of a training step, which share one copy where their layouts agree). Same buffer,
// new contents, new version: every path must see the new weights, whichever pass converts them
// first, and the same version again must still give them.
TEST(ConvKeptWeights, ANewVersionIsSeen) {
  static std::uint64_t version = 0xC0FFEE000000;  // far from the stamps Tensor hands out
  auto cases = conv_cases();
  // Winograd's shape (its forward and backward-data take the same blocked weights), and reskit's
  // F(2x2, 3x3) and F(4x4, 3x3) (the same transformed weights).
  cases.push_back({"3x3 same 32->32 on 8x8, batch 8", 8, 8, 8, 32, 32, same(8, 3, 1), same(8, 3, 1)});
  cases.push_back({"3x3 same 24->40 on 4x4, batch 6", 6, 4, 4, 24, 40, same(4, 3, 1), same(4, 3, 1)});
  cases.push_back(
      {"3x3 same 64->64 on 8x8, batch 8 (F(4x4, 3x3))", 8, 8, 8, 64, 64, same(8, 3, 1), same(8, 3, 1)});
  for (bool bf16 : {false, true}) {
    for (const auto& cc : cases) {
      SCOPED_TRACE(cc.name + (bf16 ? " mixed_bfloat16" : " float32"));
      auto p = conv_params(cc);
      p.bf16 = bf16;
      const auto x = random_vector<float>(p.n * p.h * p.w * p.c, 21);
      const auto dy = random_vector<float>(p.n * p.p * p.q * p.k, 22);
      std::vector<float> w(static_cast<std::size_t>(p.r * p.s * p.c * p.k));
      for (std::uint64_t seed : {23, 24}) {
        const auto fresh = random_vector<float>(w.size(), seed, 0.2);
        std::copy(fresh.begin(), fresh.end(), w.begin());
        p.weights_version = ++version;
        const auto w_op = bf16 ? rounded_operand(w) : w;
        const auto x_op = bf16 ? rounded_operand(x) : x;
        const auto dy_op = bf16 ? rounded_operand(dy) : dy;
        auto ref_y = nan_vector<float>(p.n * p.p * p.q * p.k);
        auto ref_dx = nan_vector<float>(p.n * p.h * p.w * p.c);
        k::ref::conv2d_forward<float>(p, x_op.data(), w_op.data(), nullptr, ref_y.data());
        k::ref::conv2d_backward_data<float>(p, dy_op.data(), w_op.data(), ref_dx.data());
        for (int call = 0; call < 2; ++call) {  // the second call may use what the first kept
          auto y = nan_vector<float>(ref_y.size());
          auto dx = nan_vector<float>(ref_dx.size());
          if (seed == 24) k::conv2d_backward_data<float>(p, dy.data(), w.data(), dx.data());
          k::conv2d_forward<float>(p, x.data(), w.data(), nullptr, y.data());
          if (seed != 24) k::conv2d_backward_data<float>(p, dy.data(), w.data(), dx.data());
          EXPECT_TRUE(close(y, ref_y, "y"));
          EXPECT_TRUE(close(dx, ref_dx, "dx"));
        }
      }
    }
  }
}

// A kept copy is keyed by (kind, weights' address): when the address comes back holding weights of
// another size, the copy handed out must have the new size (written whole here; the sanitizer
// build, scripts/test.sh, catches a write past the end of the old one).
TEST(ConvKeptWeights, AnAddressBackWithAnotherSizeGetsACopyOfThatSize) {
  static const int key = 0;
  std::vector<float> w(64, 1.0f);
  auto [small, small_valid] = reskit::kernels::onednn::kept_weights(&key, 16 * sizeof(float), w.data(), 7001);
  EXPECT_FALSE(small_valid);
  std::fill(small, small + 16, 2.0f);
  auto [large, large_valid] = reskit::kernels::onednn::kept_weights(&key, 64 * sizeof(float), w.data(), 7002);
  EXPECT_FALSE(large_valid);
  std::fill(large, large + 64, 3.0f);
  EXPECT_EQ(large[63], 3.0f);
  auto [again, again_valid] = reskit::kernels::onednn::kept_weights(&key, 64 * sizeof(float), w.data(), 7002);
  EXPECT_TRUE(again_valid);  // the same size and version: kept
  EXPECT_EQ(again, large);
}

// Conv2DParams::dy_version lets backward-weights read backward-data's conversion of dy (oneDNN's
// Winograd kernels take dy blocked). The same dy at the same version: the same dw as the
// reference; the buffer rewritten under a new version between the two passes: dw of the new dy,
// not of what backward-data converted.
TEST(ConvKeptDy, BackwardWeightsReadsBackwardDataDyOnlyAtTheSameVersion) {
  static std::uint64_t version = 0xD1D1000000;  // far from the stamps Tensor hands out
  for (const ConvCase& cc :
       {ConvCase{"3x3 same 32->32 on 8x8, batch 8 (Winograd)", 8, 8, 8, 32, 32, same(8, 3, 1), same(8, 3, 1)},
        ConvCase{"3x3 same 64->64 on 8x8, batch 8 (F(4x4, 3x3))", 8, 8, 8, 64, 64, same(8, 3, 1),
                 same(8, 3, 1)},
        ConvCase{"3x3 same 24->40 on 4x4, batch 6 (F(2x2, 3x3))", 6, 4, 4, 24, 40, same(4, 3, 1),
                 same(4, 3, 1)},
        ConvCase{"3x3 same 64->64 on 8x8, batch 2 (too few tiles: direct, nothing reused)", 2, 8, 8, 64, 64,
                 same(8, 3, 1), same(8, 3, 1)}}) {
    SCOPED_TRACE(cc.name);
    auto p = conv_params(cc);
    const auto x = random_vector<float>(p.n * p.h * p.w * p.c, 31);
    const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 32, 0.2);
    std::vector<float> dy(static_cast<std::size_t>(p.n * p.p * p.q * p.k));
    const auto other = random_vector<float>(dy.size(), 34);
    for (bool rewritten : {false, true}) {
      const auto first = random_vector<float>(dy.size(), 33);
      std::copy(first.begin(), first.end(), dy.begin());
      p.dy_version = ++version;
      auto dx = nan_vector<float>(x.size());
      k::conv2d_backward_data<float>(p, dy.data(), w.data(), dx.data());
      if (rewritten) {
        std::copy(other.begin(), other.end(), dy.begin());
        p.dy_version = ++version;
      }
      auto ref_dw = nan_vector<float>(w.size());
      auto dw = nan_vector<float>(w.size());
      k::ref::conv2d_backward_weights<float>(p, x.data(), dy.data(), ref_dw.data(), nullptr);
      k::conv2d_backward_weights<float>(p, x.data(), dy.data(), dw.data(), nullptr);
      EXPECT_TRUE(close(dw, ref_dw, rewritten ? "dw of the rewritten dy" : "dw"));
    }
  }
}

// A forced Winograd path's three passes against the reference on random operands: forward with
// bias and ReLU, backward-data, backward-weights with db. `forward`, `backward_data` and
// `backward_weights` call the path (by_rule false); false from the first: the path declined here.
template <class Fwd, class Data, class Weights>
bool matches_the_reference(k::Conv2DParams p, std::uint64_t seed, Fwd&& forward, Data&& backward_data,
                           Weights&& backward_weights) {
  const auto x = random_vector<float>(p.n * p.h * p.w * p.c, seed);
  const auto w = random_vector<float>(p.r * p.s * p.c * p.k, seed + 1, 0.2);
  const auto b = random_vector<float>(p.k, seed + 2);
  const auto dy = random_vector<float>(p.n * p.p * p.q * p.k, seed + 3);
  p.relu = true;
  auto y = nan_vector<float>(dy.size()), ref_y = y;
  k::ref::conv2d_forward<float>(p, x.data(), w.data(), b.data(), ref_y.data());
  if (!forward(p, x.data(), w.data(), b.data(), y.data())) return false;
  EXPECT_TRUE(close(y, ref_y, "y"));
  p.relu = false;
  auto dx = nan_vector<float>(x.size()), ref_dx = dx;
  k::ref::conv2d_backward_data<float>(p, dy.data(), w.data(), ref_dx.data());
  EXPECT_TRUE(backward_data(p, dy.data(), w.data(), dx.data()));
  EXPECT_TRUE(close(dx, ref_dx, "dx"));
  auto dw = nan_vector<float>(w.size()), ref_dw = dw;
  auto db = nan_vector<float>(p.k), ref_db = db;
  k::ref::conv2d_backward_weights<float>(p, x.data(), dy.data(), ref_dw.data(), ref_db.data());
  EXPECT_TRUE(backward_weights(p, x.data(), dy.data(), dw.data(), db.data()));
  EXPECT_TRUE(close(dw, ref_dw, "dw"));
  EXPECT_TRUE(close(db, ref_db, "db"));
  return true;
}

// reskit's Winograd transforms, F(2x2, 3x3) and F(4x4, 3x3), on any image size (their rules take
// some sizes only; benchmarks force them elsewhere): sizes m does not divide leave partial tiles,
// whose outputs past the image are discarded and whose inputs there read as zero. All three passes
// against the reference, the forward with bias and ReLU.
TEST(OwnWinograd, MatchesTheReferenceOnAnySizeWhenForced) {
  namespace od = reskit::kernels::onednn;
  for (int m : {2, 4}) {
    for (const ConvCase& cc :
         {ConvCase{"3x4, batch 2 (a partial row of tiles)", 2, 3, 4, 24, 40, same(3, 3, 1), same(4, 3, 1)},
          ConvCase{"5x3, batch 1 (partial rows and columns)", 1, 5, 3, 13, 16, same(5, 3, 1), same(3, 3, 1)},
          ConvCase{"1x1, batch 3 (one tile, all but one output discarded)", 3, 1, 1, 16, 24, same(1, 3, 1),
                   same(1, 3, 1)},
          ConvCase{"6x8, batch 2", 2, 6, 8, 32, 16, same(6, 3, 1), same(8, 3, 1)},
          ConvCase{"9x10, batch 2", 2, 9, 10, 16, 32, same(9, 3, 1), same(10, 3, 1)}}) {
      SCOPED_TRACE(cc.name + " F(" + std::to_string(m) + "x" + std::to_string(m) + ", 3x3)");
      const auto p = conv_params(cc);
      ASSERT_FALSE(od::own_winograd_f2(p) || od::own_winograd_f4(p));  // outside the rules: forced below
      EXPECT_TRUE(matches_the_reference(
          p, 41,
          [m](const k::Conv2DParams& q, const float* x, const float* w, const float* b, float* y) {
            return od::own_winograd_forward(m, q, x, w, b, y, false);
          },
          [m](const k::Conv2DParams& q, const float* dy, const float* w, float* dx) {
            return od::own_winograd_backward_data(m, q, dy, w, dx, false);
          },
          [m](const k::Conv2DParams& q, const float* x, const float* dy, float* dw, float* db) {
            return od::own_winograd_backward_weights(m, q, x, dy, dw, db, false);
          }));
    }
  }
}

// reskit's fused F(4x4, 3x3), forced on odd sizes, channels in 16s, and batches that split into
// several blocks of whole images (the last one partial) over both threads.
TEST(OwnWinogradFused, MatchesTheReferenceAcrossBlocksWhenForced) {
  namespace od = reskit::kernels::onednn;
  for (const ConvCase& cc :
       {ConvCase{"5x3, batch 1 (partial rows and columns)", 1, 5, 3, 16, 16, same(5, 3, 1), same(3, 3, 1)},
        ConvCase{"1x1, batch 3 (one tile, all but one output discarded)", 3, 1, 1, 16, 32, same(1, 3, 1),
                 same(1, 3, 1)},
        ConvCase{"6x8, batch 2", 2, 6, 8, 32, 16, same(6, 3, 1), same(8, 3, 1)},
        ConvCase{"9x10, batch 9 (blocks of 7 images and 2)", 9, 9, 10, 16, 32, same(9, 3, 1), same(10, 3, 1)},
        ConvCase{"28x28, batch 3 (a block an image)", 3, 28, 28, 16, 16, same(28, 3, 1), same(28, 3, 1)},
        ConvCase{"7x7, batch 5, 64 -> 48 (rows past 32 columns)", 5, 7, 7, 64, 48, same(7, 3, 1),
                 same(7, 3, 1)}}) {
    SCOPED_TRACE(cc.name);
    const bool ran = matches_the_reference(
        conv_params(cc), 51,
        [](const k::Conv2DParams& q, const float* x, const float* w, const float* b, float* y) {
          return od::own_winograd_fused_forward(q, x, w, b, y, false);
        },
        [](const k::Conv2DParams& q, const float* dy, const float* w, float* dx) {
          return od::own_winograd_fused_backward_data(q, dy, w, dx, false);
        },
        [](const k::Conv2DParams& q, const float* x, const float* dy, float* dw, float* db) {
          return od::own_winograd_fused_backward_weights(q, x, dy, dw, db, false);
        });
    if (!ran) GTEST_SKIP() << "no AVX-512 here: the fused kernel's only build";
  }
}

// ---- Conv2D in mixed precision (Conv2DParams::bf16) ----
// The definition: the full-precision reference on operands rounded to bfloat16. oneDNN's bf16
// kernels (or the dispatcher's fallback) must match it up to float32 accumulation order.

TEST(Bf16, RoundsToNearestEven) {
  using k::ref::round_bf16;
  EXPECT_EQ(round_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f), 1.0f);                       // tie, even below
  EXPECT_EQ(round_bf16(1.0f + 0x1p-7f + 0x1p-8f), 1.0f + 0x1p-6f);   // tie, even above
  EXPECT_EQ(round_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);  // above the tie
  EXPECT_EQ(round_bf16(-3.0f), -3.0f);
  EXPECT_TRUE(std::isnan(round_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(round_bf16(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_bf16(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
}

class Bf16ConvTest : public ::testing::TestWithParam<k::Backend> {
 protected:
  void SetUp() override { k::set_backend(GetParam()); }
  void TearDown() override { k::set_backend(k::Backend::fast); }
};

template <class T>
std::vector<T> rounded(const std::vector<T>& v) {
  return k::ref::rounded_bf16(v.data(), static_cast<int64_t>(v.size()));
}

TEST_P(Bf16ConvTest, ForwardIsTheReferenceOnRoundedOperands) {
  for (const auto& cc : conv_cases()) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(cc.name + (with_bias ? " with bias" : " without bias"));
      auto p = conv_params(cc);
      const auto x = random_vector<float>(p.n * p.h * p.w * p.c, 1);
      const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 2, 0.2);
      const auto b = random_vector<float>(p.k, 3);
      const float* bias = with_bias ? b.data() : nullptr;
      auto mixed = nan_vector<float>(p.n * p.p * p.q * p.k), ref = mixed, full = mixed;
      k::ref::conv2d_forward<float>(p, rounded(x).data(), rounded(w).data(), bias, ref.data());
      k::ref::conv2d_forward<float>(p, x.data(), w.data(), bias, full.data());
      p.bf16 = true;
      k::conv2d_forward<float>(p, x.data(), w.data(), bias, mixed.data());
      EXPECT_TRUE(close(mixed, ref, "y"));
      // The same bits when x and w come already rounded (a training step's forward and backward
      // share them).
      std::vector<std::uint16_t> x_bits(x.size());
      k::round_to_bf16(x.data(), static_cast<std::int64_t>(x.size()), x_bits.data());
      std::vector<std::uint16_t> w_bits(w.size());
      k::round_to_bf16(w.data(), static_cast<std::int64_t>(w.size()), w_bits.data());
      auto kept = nan_vector<float>(mixed.size());
      p.x_bf16 = x_bits.data();
      p.w_bf16 = w_bits.data();
      k::conv2d_forward<float>(p, x.data(), w.data(), bias, kept.data());
      EXPECT_EQ(kept, mixed) << "with x_bf16 and w_bf16";
      // bfloat16 keeps 8 significant bits: the result must differ from full precision, and not by much.
      EXPECT_FALSE(close(mixed, full, "y"));
      double scale = 0, diff = 0;
      for (std::size_t i = 0; i < full.size(); ++i) {
        scale = std::max(scale, std::abs(double{full[i]}));
        diff = std::max(diff, std::abs(double{mixed[i]} - full[i]));
      }
      EXPECT_LT(diff, 0.02 * scale);
    }
  }
}

TEST_P(Bf16ConvTest, BackwardIsTheReferenceOnRoundedOperands) {
  for (const auto& cc : conv_cases()) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(cc.name + (with_bias ? " with bias" : " without bias"));
      auto p = conv_params(cc);
      const auto x = random_vector<float>(p.n * p.h * p.w * p.c, 6);
      const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 5, 0.2);
      const auto dy = random_vector<float>(p.n * p.p * p.q * p.k, 7);
      auto dx = nan_vector<float>(p.n * p.h * p.w * p.c), ref_dx = dx;
      auto dw = nan_vector<float>(p.r * p.s * p.c * p.k), ref_dw = dw;
      auto db = nan_vector<float>(p.k), ref_db = db;
      k::ref::conv2d_backward_data<float>(p, rounded(dy).data(), rounded(w).data(), ref_dx.data());
      k::ref::conv2d_backward_weights<float>(p, rounded(x).data(), rounded(dy).data(), ref_dw.data(),
                                             with_bias ? ref_db.data() : nullptr);
      p.bf16 = true;
      k::conv2d_backward<float>(p, x.data(), dy.data(), w.data(), dx.data(), dw.data(),
                                with_bias ? db.data() : nullptr);
      EXPECT_TRUE(close(dx, ref_dx, "dx"));
      EXPECT_TRUE(close(dw, ref_dw, "dw"));
      if (with_bias) {
        EXPECT_TRUE(close(db, ref_db, "db"));
      }
      // The single-pass entry points agree with the combined one.
      auto dx_alone = nan_vector<float>(p.n * p.h * p.w * p.c);
      auto dw_alone = nan_vector<float>(p.r * p.s * p.c * p.k);
      k::conv2d_backward_data<float>(p, dy.data(), w.data(), dx_alone.data());
      k::conv2d_backward_weights<float>(p, x.data(), dy.data(), dw_alone.data(), nullptr);
      EXPECT_TRUE(close(dx_alone, ref_dx, "dx alone"));
      EXPECT_TRUE(close(dw_alone, ref_dw, "dw alone"));
      // The same bits when x, dy and w come already rounded.
      std::vector<std::uint16_t> x_bits(x.size());
      k::round_to_bf16(x.data(), static_cast<std::int64_t>(x.size()), x_bits.data());
      auto dx_kept = nan_vector<float>(dx.size());
      auto dw_kept = nan_vector<float>(dw.size()), db_kept = nan_vector<float>(db.size());
      std::vector<std::uint16_t> dy_bits(dy.size());
      k::round_to_bf16(dy.data(), static_cast<std::int64_t>(dy.size()), dy_bits.data());
      std::vector<std::uint16_t> w_bits(w.size());
      k::round_to_bf16(w.data(), static_cast<std::int64_t>(w.size()), w_bits.data());
      p.x_bf16 = x_bits.data();
      p.dy_bf16 = dy_bits.data();
      p.w_bf16 = w_bits.data();
      k::conv2d_backward<float>(p, x.data(), dy.data(), w.data(), dx_kept.data(), dw_kept.data(),
                                with_bias ? db_kept.data() : nullptr);
      EXPECT_EQ(dx_kept, dx) << "with x_bf16 and dy_bf16";
      EXPECT_EQ(dw_kept, dw) << "with x_bf16 and dy_bf16";
      if (with_bias) {
        EXPECT_EQ(db_kept, db) << "with x_bf16 and dy_bf16";
      }
    }
  }
}

TEST_P(Bf16ConvTest, RoundToBf16IsRoundToNearestEven) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, inf, -inf, std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max(),
                          // ties: 1 + 2^-8 rounds down to 1 (even), 1 + 3·2^-8 up to 1 + 2^-6
                          1.0f + 0x1p-8f, 1.0f + 0x3p-8f, 1.0f + 0x1p-8f + 0x1p-20f};
  // NaNs stay NaNs (made quiet), even one whose payload lies only in the dropped bits.
  x.push_back(std::bit_cast<float>(0x7F800001u));
  x.push_back(std::bit_cast<float>(0xFFC00000u));
  const auto more = random_vector<float>(1000, 9, 100.0);
  x.insert(x.end(), more.begin(), more.end());
  std::vector<std::uint16_t> bits(x.size());
  k::round_to_bf16(x.data(), static_cast<std::int64_t>(x.size()), bits.data());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(bits[i], k::ref::bf16_bits(x[i])) << "x[" << i << "] = " << x[i];
    const float back = std::bit_cast<float>(static_cast<std::uint32_t>(bits[i]) << 16);
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(back)) << "x[" << i << "]";
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(back), std::bit_cast<std::uint32_t>(k::ref::round_bf16(x[i])))
          << "x[" << i << "] = " << x[i];
    }
  }
  EXPECT_EQ(bits[8], 0x3F80u);   // 1 + 2^-8 -> 1
  EXPECT_EQ(bits[9], 0x3F82u);   // 1 + 3·2^-8 -> 1 + 2^-6
  EXPECT_EQ(bits[10], 0x3F81u);  // just above the tie -> up
}

INSTANTIATE_TEST_SUITE_P(Backends, Bf16ConvTest, ::testing::Values(k::Backend::fast, k::Backend::reference),
                         [](const auto& info) {
                           return info.param == k::Backend::fast ? "fast" : "reference";
                         });

// ---- BatchNormalization ----

struct BnCase {
  int64_t rows, channels;
  double epsilon;
};
std::vector<BnCase> bn_cases() {
  // Channel counts around the fast kernel's tiles (16, 32, 64 at once, any rest apart) and its
  // elementwise chunks of 32 values (C a multiple of 32, a divisor of it with whole chunks and a
  // rest of rows: 16 over 301 rows, 8 over 77, or neither: 48, 13), and row counts around its
  // blocks of 256 rows.
  return {{1, 5, 1e-3},          {7, 3, 1e-3},           {50, 13, 1.001e-5}, {64, 64, 1e-3},
          {300, 16, 1.001e-5},   {2 * 9 * 9, 256, 1e-3}, {513, 32, 1e-3},    {257, 80, 1e-3},
          {1000, 100, 1.001e-5}, {4, 2048, 1e-3},        {301, 16, 1e-3},    {77, 8, 1e-3},
          {40, 48, 1e-3}};
}
std::string bn_name(const BnCase& bc) {
  return "rows " + std::to_string(bc.rows) + " channels " + std::to_string(bc.channels);
}

// With relu (the fused ReLU) the reference itself must be the ReLU of its plain output.
template <class T>
void expect_relu_of_plain(const k::BatchNormParams& p, const std::vector<T>& fused,
                          const std::function<void(const k::BatchNormParams&, T*)>& plain) {
  if (!p.relu) return;
  k::BatchNormParams q = p;
  q.relu = false;
  std::vector<T> y(fused.size());
  plain(q, y.data());
  for (auto& v : y) v = std::max(v, T(0));
  EXPECT_TRUE(close(fused, y, "relu(y)"));
}

TYPED_TEST(KernelsTest, BatchNormForwardTraining) {
  using T = TypeParam;
  for (const auto& bc : bn_cases())
    for (bool relu : {false, true})
      for (bool with_residual : {false, true}) {
        SCOPED_TRACE(bn_name(bc) + (relu ? " with fused relu" : "") +
                     (with_residual ? " with residual" : ""));
        const k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
        const auto x = random_vector<T>(p.rows * p.channels, 21, 2.0, 0.5);
        const auto gamma = random_vector<T>(p.channels, 22);
        const auto beta = random_vector<T>(p.channels, 23);
        const auto res = random_vector<T>(p.rows * p.channels, 24);
        const T* r = with_residual ? res.data() : nullptr;
        auto fast_y = nan_vector<T>(p.rows * p.channels), ref_y = fast_y;
        auto fast_mean = nan_vector<T>(p.channels), ref_mean = fast_mean, fast_var = fast_mean,
             ref_var = fast_mean;
        k::batch_norm_forward_training<T>(p, x.data(), gamma.data(), beta.data(), fast_y.data(),
                                          fast_mean.data(), fast_var.data(), r);
        k::ref::batch_norm_forward_training<T>(p, x.data(), gamma.data(), beta.data(), ref_y.data(),
                                               ref_mean.data(), ref_var.data(), r);
        EXPECT_TRUE(close(fast_y, ref_y, "y"));
        EXPECT_TRUE(close(fast_mean, ref_mean, "mean"));
        EXPECT_TRUE(close(fast_var, ref_var, "var"));
        // The reference itself: max(0, plain + residual).
        k::BatchNormParams q = p;
        q.relu = false;
        std::vector<T> y(fast_y.size()), m(p.channels), v(p.channels);
        k::ref::batch_norm_forward_training<T>(q, x.data(), gamma.data(), beta.data(), y.data(), m.data(),
                                               v.data());
        for (std::size_t i = 0; i < y.size(); ++i) {
          if (r) y[i] += r[i];
          if (relu) y[i] = std::max(y[i], T(0));
        }
        EXPECT_TRUE(close(ref_y, y, "relu(y + residual)"));
      }
}

TYPED_TEST(KernelsTest, BatchNormForwardInference) {
  using T = TypeParam;
  for (const auto& bc : bn_cases())
    for (bool relu : {false, true}) {
      SCOPED_TRACE(bn_name(bc) + (relu ? " with fused relu" : ""));
      const k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
      const auto x = random_vector<T>(p.rows * p.channels, 31, 2.0, 0.5);
      const auto gamma = random_vector<T>(p.channels, 32);
      const auto beta = random_vector<T>(p.channels, 33);
      const auto mean = random_vector<T>(p.channels, 34);
      auto var = random_vector<T>(p.channels, 35);
      for (auto& v : var) v = v * v + T(0.01);
      auto fast = nan_vector<T>(p.rows * p.channels), ref = fast;
      k::batch_norm_forward_inference<T>(p, x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                         fast.data());
      k::ref::batch_norm_forward_inference<T>(p, x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                              ref.data());
      EXPECT_TRUE(close(fast, ref, "y"));
      expect_relu_of_plain<T>(p, ref, [&](const k::BatchNormParams& q, T* y) {
        k::ref::batch_norm_forward_inference<T>(q, x.data(), gamma.data(), beta.data(), mean.data(),
                                                var.data(), y);
      });
      // With a residual (a fused Add), as in training.
      const auto res = random_vector<T>(p.rows * p.channels, 36);
      k::batch_norm_forward_inference<T>(p, x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                         fast.data(), res.data());
      k::ref::batch_norm_forward_inference<T>(p, x.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                              ref.data(), res.data());
      EXPECT_TRUE(close(fast, ref, "y with residual"));
    }
}

TYPED_TEST(KernelsTest, BatchNormBackward) {
  using T = TypeParam;
  for (const auto& bc : bn_cases())
    for (bool relu : {false, true}) {
      SCOPED_TRACE(bn_name(bc) + (relu ? " with fused relu" : ""));
      const k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
      const auto x = random_vector<T>(p.rows * p.channels, 41, 2.0, 0.5);
      const auto dy = random_vector<T>(p.rows * p.channels, 42);
      const auto gamma = random_vector<T>(p.channels, 43);
      const auto beta = random_vector<T>(p.channels, 44);
      // The batch statistics, as the training forward returns them.
      std::vector<T> y(x.size()), mean(p.channels), var(p.channels);
      k::ref::batch_norm_forward_training<T>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                             var.data());
      auto fast_dx = nan_vector<T>(p.rows * p.channels), ref_dx = fast_dx;
      auto fast_dgamma = nan_vector<T>(p.channels), ref_dgamma = fast_dgamma, fast_dbeta = fast_dgamma,
           ref_dbeta = fast_dgamma;
      k::batch_norm_backward<T>(p, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                                fast_dx.data(), fast_dgamma.data(), fast_dbeta.data());
      k::ref::batch_norm_backward<T>(p, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(),
                                     var.data(), ref_dx.data(), ref_dgamma.data(), ref_dbeta.data());
      EXPECT_TRUE(close(fast_dx, ref_dx, "dx"));
      EXPECT_TRUE(close(fast_dgamma, ref_dgamma, "dgamma"));
      EXPECT_TRUE(close(fast_dbeta, ref_dbeta, "dbeta"));
      if (!relu) continue;
      // The reference's fused backward is its plain backward of dy kept where max(0, y) > 0.
      k::BatchNormParams q = p;
      q.relu = false;
      std::vector<T> masked(dy.size()), dx(dy.size()), dgamma(p.channels), dbeta(p.channels);
      for (std::size_t i = 0; i < dy.size(); ++i) masked[i] = y[i] > T(0) ? dy[i] : T(0);
      k::ref::batch_norm_backward<T>(q, x.data(), masked.data(), gamma.data(), beta.data(), mean.data(),
                                     var.data(), dx.data(), dgamma.data(), dbeta.data());
      EXPECT_TRUE(close(ref_dx, dx, "dx of the masked gradient"));
      EXPECT_TRUE(close(ref_dgamma, dgamma, "dgamma of the masked gradient"));
      EXPECT_TRUE(close(ref_dbeta, dbeta, "dbeta of the masked gradient"));
    }
}

// The float32 batch norm is built twice (AVX-512 and any x86-64) and dispatch runs only the one
// this CPU takes: each build against the reference here, forward and backward, with and without
// the fused ReLU.
// Exact resume needs the same bits from the same inputs; the batch statistics, the batch-norm
// gradients and a convolution's bias gradient are reductions, summed in fixed blocks added in
// order, so they must not depend on the thread count either.
TYPED_TEST(KernelsTest, ReductionsGiveTheSameBitsOnAnyThreadCount) {
  using T = TypeParam;
  const int threads_before = reskit::num_threads();
  const k::BatchNormParams p{4 * 15 * 15 + 7, 70, 1e-3, true};
  const auto x = random_vector<T>(p.rows * p.channels, 51, 2.0, 0.5);
  const auto dy = random_vector<T>(p.rows * p.channels, 52);
  const auto gamma = random_vector<T>(p.channels, 53);
  const auto beta = random_vector<T>(p.channels, 54);
  k::Conv2DParams conv;  // a 1x1 convolution over the same rows (its db is the column sum of dy)
  conv.n = p.rows, conv.c = 3, conv.k = p.channels;
  const auto cx = random_vector<T>(conv.n * conv.c, 55);
  std::vector<std::vector<T>> runs;
  for (int threads : {1, 2}) {
    reskit::set_num_threads(threads);
    std::vector<T> y(x.size()), mean(p.channels), var(p.channels), dx(x.size()), dgamma(p.channels),
        dbeta(p.channels), dw(conv.c * conv.k), db(conv.k);
    k::batch_norm_forward_training<T>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                      var.data());
    k::batch_norm_backward<T>(p, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), var.data(),
                              dx.data(), dgamma.data(), dbeta.data());
    k::conv2d_backward_weights<T>(conv, cx.data(), dy.data(), dw.data(), db.data());
    std::vector<T> all;
    for (const auto* v : {&y, &mean, &var, &dx, &dgamma, &dbeta, &db})
      all.insert(all.end(), v->begin(), v->end());
    runs.push_back(std::move(all));
  }
  reskit::set_num_threads(threads_before);
  ASSERT_EQ(runs[0].size(), runs[1].size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < runs[0].size(); ++i) differ += runs[0][i] != runs[1][i];
  EXPECT_EQ(differ, 0u) << "values that differ between 1 and 2 threads";
}

// The float bias gradients of the oneDNN paths: each column summed in row order in float, whatever
// the bands the columns are split into for the threads (few columns: narrow bands), on 1 and 2
// threads, from float32 and from bfloat16 bits.
TEST(ColumnSumsF32, EachColumnInRowOrderOnAnyThreadCount) {
  const int threads_before = reskit::num_threads();
  for (const std::int64_t cols : {3, 16, 64, 200, 256, 700}) {
    const std::int64_t rows = 517;
    const auto dy = random_vector<float>(rows * cols, 61);
    std::vector<std::uint16_t> dy_bf16(dy.size());
    k::round_to_bf16(dy.data(), static_cast<std::int64_t>(dy.size()), dy_bf16.data());
    std::vector<float> want(cols, 0.0f), want_bf16(cols, 0.0f);
    for (std::int64_t m = 0; m < rows; ++m)
      for (std::int64_t c = 0; c < cols; ++c) {
        want[c] += dy[m * cols + c];
        want_bf16[c] += k::ref::from_bf16_bits(dy_bf16[m * cols + c]);
      }
    for (const int threads : {1, 2}) {
      reskit::set_num_threads(threads);
      std::vector<float> db(cols), db_bf16(cols);
      k::onednn::column_sums_f32(rows, cols, dy.data(), db.data());
      k::onednn::column_sums_f32(rows, cols, dy_bf16.data(), db_bf16.data());
      for (std::int64_t c = 0; c < cols; ++c) {
        EXPECT_EQ(std::bit_cast<std::uint32_t>(db[c]), std::bit_cast<std::uint32_t>(want[c]))
            << cols << " columns, column " << c << ", " << threads << " threads";
        EXPECT_EQ(std::bit_cast<std::uint32_t>(db_bf16[c]), std::bit_cast<std::uint32_t>(want_bf16[c]))
            << cols << " columns (bfloat16), column " << c << ", " << threads << " threads";
      }
    }
  }
  reskit::set_num_threads(threads_before);
}

TEST(BatchNormF32Builds, EachBuildMatchesTheReference) {
  struct Build {
    const char* name;
    decltype(&k::cpu::generic::batch_norm_forward_training) training;
    decltype(&k::cpu::generic::batch_norm_forward_inference) inference;
    decltype(&k::cpu::generic::batch_norm_backward) backward;
  };
  std::vector<Build> builds{{"generic", k::cpu::generic::batch_norm_forward_training,
                             k::cpu::generic::batch_norm_forward_inference,
                             k::cpu::generic::batch_norm_backward}};
  if (k::cpu::avx512_available()) {
    builds.push_back({"avx512", k::cpu::avx512::batch_norm_forward_training,
                      k::cpu::avx512::batch_norm_forward_inference, k::cpu::avx512::batch_norm_backward});
  }
  if (k::cpu::avx512_bf16_available()) {
    builds.push_back({"avx512_bf16", k::cpu::avx512_bf16::batch_norm_forward_training,
                      k::cpu::avx512_bf16::batch_norm_forward_inference,
                      k::cpu::avx512_bf16::batch_norm_backward});
  }
  for (const auto& build : builds)
    for (const auto& bc : bn_cases())
      for (bool relu : {false, true}) {
        SCOPED_TRACE(std::string(build.name) + " " + bn_name(bc) + (relu ? " with fused relu" : ""));
        const auto res = random_vector<float>(bc.rows * bc.channels, 55);
        const k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
        const auto x = random_vector<float>(p.rows * p.channels, 51, 2.0, 0.5);
        const auto dy = random_vector<float>(p.rows * p.channels, 52);
        const auto gamma = random_vector<float>(p.channels, 53);
        const auto beta = random_vector<float>(p.channels, 54);
        auto y = nan_vector<float>(p.rows * p.channels), ref_y = y, dx = y, ref_dx = y;
        auto mean = nan_vector<float>(p.channels), var = mean, ref_mean = mean, ref_var = mean;
        for (const float* r : {static_cast<const float*>(nullptr), res.data()}) {
          build.training(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), var.data(), r);
          k::ref::batch_norm_forward_training<float>(p, x.data(), gamma.data(), beta.data(), ref_y.data(),
                                                     ref_mean.data(), ref_var.data(), r);
          EXPECT_TRUE(close(y, ref_y, r ? "training y with residual" : "training y"));
          EXPECT_TRUE(close(mean, ref_mean, "mean"));
          EXPECT_TRUE(close(var, ref_var, "var"));
          build.inference(p, x.data(), gamma.data(), beta.data(), ref_mean.data(), ref_var.data(), y.data(),
                          r);
          k::ref::batch_norm_forward_inference<float>(p, x.data(), gamma.data(), beta.data(), ref_mean.data(),
                                                      ref_var.data(), ref_y.data(), r);
          EXPECT_TRUE(close(y, ref_y, r ? "inference y with residual" : "inference y"));
        }
        auto dgamma = nan_vector<float>(p.channels), dbeta = dgamma, ref_dgamma = dgamma, ref_dbeta = dgamma;
        build.backward(p, x.data(), dy.data(), gamma.data(), beta.data(), ref_mean.data(), ref_var.data(),
                       dx.data(), dgamma.data(), dbeta.data());
        k::ref::batch_norm_backward<float>(p, x.data(), dy.data(), gamma.data(), beta.data(), ref_mean.data(),
                                           ref_var.data(), ref_dx.data(), ref_dgamma.data(),
                                           ref_dbeta.data());
        EXPECT_TRUE(close(dx, ref_dx, "dx"));
        EXPECT_TRUE(close(dgamma, ref_dgamma, "dgamma"));
        EXPECT_TRUE(close(dbeta, ref_dbeta, "dbeta"));
      }
}

// The float32 training passes by every route: each build, and the dispatched fast and reference
// paths.
using BnTraining = decltype(&k::cpu::generic::batch_norm_forward_training);
using BnBackward = decltype(&k::cpu::generic::batch_norm_backward);
std::vector<std::tuple<std::string, BnTraining, BnBackward>> bn_f32_routes() {
  std::vector<std::tuple<std::string, BnTraining, BnBackward>> routes{
      {"generic", k::cpu::generic::batch_norm_forward_training, k::cpu::generic::batch_norm_backward},
      {"dispatched fast", k::batch_norm_forward_training<float>, k::batch_norm_backward<float>},
      {"dispatched reference",
       [](const k::BatchNormParams& p, const float* x, const float* g, const float* b, float* y, float* m,
          float* v, const float* r) {
         k::set_backend(k::Backend::reference);
         k::batch_norm_forward_training<float>(p, x, g, b, y, m, v, r);
         k::set_backend(k::Backend::fast);
       },
       [](const k::BatchNormParams& p, const float* x, const float* dy, const float* g, const float* b,
          const float* m, const float* v, float* dx, float* dg, float* db) {
         k::set_backend(k::Backend::reference);
         k::batch_norm_backward<float>(p, x, dy, g, b, m, v, dx, dg, db);
         k::set_backend(k::Backend::fast);
       }}};
  if (k::cpu::avx512_available()) {
    routes.emplace_back("avx512", k::cpu::avx512::batch_norm_forward_training,
                        k::cpu::avx512::batch_norm_backward);
  }
  if (k::cpu::avx512_bf16_available()) {
    routes.emplace_back("avx512_bf16", k::cpu::avx512_bf16::batch_norm_forward_training,
                        k::cpu::avx512_bf16::batch_norm_backward);
  }
  return routes;
}

// BatchNormParams::out_bf16: training's y and dx written a second time, rounded to bfloat16: each
// float32 build and the dispatched fast and reference paths give round_to_bf16 of what they wrote.
// With bf16_only they write the same rounding alone.
TEST(BatchNormF32Builds, TheBf16CopyIsTheRoundingOfTheOutput) {
  const auto expect_rounding = [](const std::vector<float>& v, const std::vector<std::uint16_t>& bits,
                                  const char* what) {
    std::vector<std::uint16_t> want(v.size());
    k::ref::round_to_bf16_bits(v.data(), static_cast<std::int64_t>(v.size()), want.data());
    EXPECT_EQ(bits, want) << what;
  };
  for (const auto& [name, training, backward] : bn_f32_routes())
    for (const auto& bc : bn_cases())
      for (bool relu : {false, true}) {
        SCOPED_TRACE(name + " " + bn_name(bc) + (relu ? " with fused relu" : ""));
        k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
        const auto x = random_vector<float>(p.rows * p.channels, 61, 2.0, 0.5);
        const auto dy = random_vector<float>(p.rows * p.channels, 62);
        const auto gamma = random_vector<float>(p.channels, 63);
        const auto beta = random_vector<float>(p.channels, 64);
        const auto res = random_vector<float>(p.rows * p.channels, 65);
        // Both passes into outputs that start as NaN, with or without bf16_only.
        struct Written {
          std::vector<float> y, dx;
          std::vector<std::uint16_t> y_bits, dx_bits;
        };
        const auto run = [&](bool bf16_only) {
          Written w{nan_vector<float>(x.size()), nan_vector<float>(x.size()),
                    std::vector<std::uint16_t>(x.size(), 0xFFFF),
                    std::vector<std::uint16_t>(x.size(), 0xFFFF)};
          auto mean = nan_vector<float>(p.channels), var = mean, dgamma = mean, dbeta = mean;
          p.bf16_only = bf16_only;
          p.out_bf16 = w.y_bits.data();
          training(p, x.data(), gamma.data(), beta.data(), w.y.data(), mean.data(), var.data(), res.data());
          p.out_bf16 = w.dx_bits.data();
          backward(p, x.data(), dy.data(), gamma.data(), beta.data(), mean.data(), var.data(), w.dx.data(),
                   dgamma.data(), dbeta.data());
          return w;
        };
        const Written both = run(false);
        expect_rounding(both.y, both.y_bits, "y");
        expect_rounding(both.dx, both.dx_bits, "dx");
        // bf16_only: the same rounding; the float32 builds leave y and dx unwritten (the
        // reference may write both).
        const Written only = run(true);
        expect_rounding(both.y, only.y_bits, "y, bf16_only");
        expect_rounding(both.dx, only.dx_bits, "dx, bf16_only");
        if (name != "dispatched reference") {
          const auto all_nan = [](const std::vector<float>& v) {
            return std::all_of(v.begin(), v.end(), [](float e) { return std::isnan(e); });
          };
          EXPECT_TRUE(all_nan(only.y));
          EXPECT_TRUE(all_nan(only.dx));
        }
      }
}

// BatchNormParams::x_bf16, dy_bf16 and residual_bf16: x, dy and the residual given as their
// bfloat16 roundings alone (the float32 values all NaN) give, by every route, the bits the same
// route gives on the roundings widened to float32: training (with and without a residual),
// inference, and backward.
TEST(BatchNormF32Builds, ReadTheBf16RoundingsTheyAreGiven) {
  const auto rounded = [](const std::vector<float>& v) {
    std::vector<std::uint16_t> bits(v.size());
    k::ref::round_to_bf16_bits(v.data(), static_cast<std::int64_t>(v.size()), bits.data());
    return std::pair{bits, k::ref::rounded_bf16(v.data(), bits.data(), static_cast<std::int64_t>(v.size()))};
  };
  for (const auto& [name, training, backward] : bn_f32_routes())
    for (const auto& bc : bn_cases())
      for (bool relu : {false, true})
        for (bool with_residual : {false, true}) {
          SCOPED_TRACE(name + " " + bn_name(bc) + (relu ? " with fused relu" : "") +
                       (with_residual ? " with residual" : ""));
          const std::int64_t n = bc.rows * bc.channels;
          const auto [x_bits, x] = rounded(random_vector<float>(n, 71, 2.0, 0.5));
          const auto [dy_bits, dy] = rounded(random_vector<float>(n, 72));
          const auto gamma = random_vector<float>(bc.channels, 73);
          const auto beta = random_vector<float>(bc.channels, 74);
          const auto [res_bits, res] = rounded(random_vector<float>(n, 75));
          const auto unwritten = nan_vector<float>(n);
          struct Out {
            std::vector<float> y, mean, var, inference_y, dx, dgamma, dbeta;
          };
          const auto run = [&](bool bits) {
            k::BatchNormParams p{bc.rows, bc.channels, bc.epsilon, relu};
            p.x_bf16 = bits ? x_bits.data() : nullptr;
            p.dy_bf16 = bits ? dy_bits.data() : nullptr;
            p.residual_bf16 = bits && with_residual ? res_bits.data() : nullptr;
            const float* r = with_residual ? (bits ? unwritten.data() : res.data()) : nullptr;
            const float* xv = bits ? unwritten.data() : x.data();
            const float* dyv = bits ? unwritten.data() : dy.data();
            Out o{nan_vector<float>(n),           nan_vector<float>(bc.channels),
                  nan_vector<float>(bc.channels), nan_vector<float>(n),
                  nan_vector<float>(n),           nan_vector<float>(bc.channels),
                  nan_vector<float>(bc.channels)};
            training(p, xv, gamma.data(), beta.data(), o.y.data(), o.mean.data(), o.var.data(), r);
            k::batch_norm_forward_inference<float>(p, xv, gamma.data(), beta.data(), o.mean.data(),
                                                   o.var.data(), o.inference_y.data(), r);
            if (!with_residual) {  // a forward with a residual does not fuse the ReLU's backward
              backward(p, xv, dyv, gamma.data(), beta.data(), o.mean.data(), o.var.data(), o.dx.data(),
                       o.dgamma.data(), o.dbeta.data());
            }
            return o;
          };
          const Out from_bits = run(true), from_values = run(false);
          expect_same_bits(from_bits.y, from_values.y, "y");
          expect_same_bits(from_bits.mean, from_values.mean, "mean");
          expect_same_bits(from_bits.var, from_values.var, "var");
          expect_same_bits(from_bits.inference_y, from_values.inference_y, "inference y");
          expect_same_bits(from_bits.dx, from_values.dx, "dx");
          expect_same_bits(from_bits.dgamma, from_values.dgamma, "dgamma");
          expect_same_bits(from_bits.dbeta, from_values.dbeta, "dbeta");
          EXPECT_FALSE(std::isnan(from_bits.y[0]));
        }
}

// relu_backward_f32 (mixed precision's ReLU backward): each build and the dispatched fast path
// give the reference's bits for every mix of float32 and bfloat16 operands, with and without the
// second gradient, written as float32 or as bfloat16 bits; z holds exact zeros (the mask's edge)
// and a holds a NaN (kept where z > 0, 0·NaN elsewhere). 70001 values: uneven thread blocks.
TEST(ReluBackwardF32, EveryBuildGivesTheReferenceBitsOnAnyOperands) {
  using Run = std::function<void(const k::ReluBackwardParams&)>;
  std::vector<std::pair<std::string, Run>> routes{{"generic", k::cpu::generic::relu_backward},
                                                  {"dispatched fast", k::relu_backward_f32}};
  if (k::cpu::avx512_available()) routes.emplace_back("avx512", k::cpu::avx512::relu_backward);
  if (k::cpu::avx512_bf16_available()) routes.emplace_back("avx512_bf16", k::cpu::avx512_bf16::relu_backward);
  const std::int64_t n = 70001;
  auto z = random_vector<float>(n, 81);
  for (std::int64_t i = 0; i < n; i += 7) z[i] = 0.0f;
  auto a = random_vector<float>(n, 82);
  a[5] = std::numeric_limits<float>::quiet_NaN();
  a[7] = std::numeric_limits<float>::quiet_NaN();
  const auto b = random_vector<float>(n, 83);
  const auto bits = [&](const std::vector<float>& v) {
    std::vector<std::uint16_t> out(v.size());
    k::ref::round_to_bf16_bits(v.data(), n, out.data());
    return out;
  };
  const auto zb = bits(z), ab = bits(a), bb = bits(b);
  for (int kinds = 0; kinds < 8; ++kinds)
    for (bool sum : {false, true})
      for (bool out_bits : {false, true}) {
        SCOPED_TRACE("operand kinds " + std::to_string(kinds) + (sum ? " with b" : "") +
                     (out_bits ? " into bits" : ""));
        const auto params = [&](std::vector<float>& dz, std::vector<std::uint16_t>& dzb) {
          k::ReluBackwardParams p{.n = n};
          if (kinds & 1) {
            p.z_bits = zb.data();
          } else {
            p.z = z.data();
          }
          if (kinds & 2) {
            p.a_bits = ab.data();
          } else {
            p.a = a.data();
          }
          if (sum && (kinds & 4)) p.b_bits = bb.data();
          if (sum && !(kinds & 4)) p.b = b.data();
          if (out_bits) {
            p.dz_bits = dzb.data();
          } else {
            p.dz = dz.data();
          }
          return p;
        };
        std::vector<float> want = nan_vector<float>(n);
        std::vector<std::uint16_t> want_bits(n, 0xFFFF);
        k::ref::relu_backward_f32(params(want, want_bits));
        for (const auto& [name, run] : routes) {
          SCOPED_TRACE(name);
          std::vector<float> got = nan_vector<float>(n);
          std::vector<std::uint16_t> got_bits(n, 0xFFFF);
          run(params(got, got_bits));
          if (out_bits) {
            EXPECT_EQ(got_bits, want_bits);
          } else {
            expect_same_bits(got, want, "dz");
          }
        }
      }
}

// ---- pooling ----

struct PoolCase {
  std::string name;
  int64_t n, h, w, c;
  Window rows, cols;
};
k::Pool2DParams pool_params(const PoolCase& pc) {
  k::Pool2DParams p;
  p.n = pc.n, p.h = pc.h, p.w = pc.w, p.c = pc.c;
  p.r = pc.rows.size, p.s = pc.cols.size, p.p = pc.rows.out, p.q = pc.cols.out;
  p.stride_h = pc.rows.stride, p.stride_w = pc.cols.stride;
  p.pad_top = pc.rows.pad_before, p.pad_bottom = pc.rows.pad_after;
  p.pad_left = pc.cols.pad_before, p.pad_right = pc.cols.pad_after;
  return p;
}
std::vector<PoolCase> pool_cases() {
  return {
      {"3x3 stride 2 pad 1", 2, 9, 8, 13, explicit_pad(9, 3, 2, 1, 1), explicit_pad(8, 3, 2, 1, 1)},
      {"2x2 stride 2 valid batch 1", 1, 8, 7, 3, valid(8, 2, 2), valid(7, 2, 2)},
      {"3x3 same stride 1", 2, 5, 6, 13, same(5, 3, 1), same(6, 3, 1)},
      {"2x2 same stride 1 (pad bottom/right)", 3, 5, 4, 3, same(5, 2, 1), same(4, 2, 1)},
      {"3x3 same stride 2 (asymmetric)", 1, 8, 8, 16, same(8, 3, 2), same(8, 3, 2)},
      {"global 4x4", 2, 4, 4, 13, valid(4, 4, 1), valid(4, 4, 1)},
  };
}

TYPED_TEST(KernelsTest, MaxPool2D) {
  using T = TypeParam;
  for (const auto& pc : pool_cases())
    for (bool relu : {false, true}) {
      // After a ReLU most windows hold ties (zeros): the first maximum must get the gradient.
      SCOPED_TRACE(pc.name + (relu ? " on ReLU output (ties)" : ""));
      const auto p = pool_params(pc);
      auto x = random_vector<T>(p.n * p.h * p.w * p.c, 51, 1.0, relu ? -1.0 : 0.0);
      if (relu)
        for (auto& v : x) v = std::max(v, T(0));
      const auto dy = random_vector<T>(p.n * p.p * p.q * p.c, 52);
      auto fast_y = nan_vector<T>(p.n * p.p * p.q * p.c), ref_y = fast_y;
      k::max_pool2d_forward<T>(p, x.data(), fast_y.data());
      k::ref::max_pool2d_forward<T>(p, x.data(), ref_y.data());
      EXPECT_TRUE(close(fast_y, ref_y, "y"));
      auto fast_dx = nan_vector<T>(p.n * p.h * p.w * p.c), ref_dx = fast_dx;
      k::max_pool2d_backward<T>(p, x.data(), dy.data(), fast_dx.data());
      k::ref::max_pool2d_backward<T>(p, x.data(), dy.data(), ref_dx.data());
      EXPECT_TRUE(close(fast_dx, ref_dx, "dx"));
    }
}

// max_pool2d_backward<float>'s AVX-512 build gives the reference's bits: channel counts below,
// at and above its 16 lanes, ties after a ReLU (the first maximum wins), and a NaN (never wins).
TEST(MaxPool2DAvx512, BackwardGivesTheReferenceBits) {
  if (!k::cpu::avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  auto cases = pool_cases();
  cases.push_back({"3x3 stride 2 valid, 64 channels (ResNet-50's stem)", 2, 16, 16, 64, valid(16, 3, 2),
                   valid(16, 3, 2)});
  cases.push_back({"3x3 stride 2 pad 1, 20 channels", 2, 9, 9, 20, explicit_pad(9, 3, 2, 1, 1),
                   explicit_pad(9, 3, 2, 1, 1)});
  for (const auto& pc : cases)
    for (bool relu : {false, true}) {
      SCOPED_TRACE(pc.name + (relu ? " on ReLU output (ties)" : ""));
      const auto p = pool_params(pc);
      auto x = random_vector<float>(p.n * p.h * p.w * p.c, 53, 1.0, relu ? -1.0 : 0.0);
      if (relu)
        for (auto& v : x) v = std::max(v, 0.0f);
      x[1] = std::numeric_limits<float>::quiet_NaN();
      const auto dy = random_vector<float>(p.n * p.p * p.q * p.c, 54);
      auto fast_dx = nan_vector<float>(p.n * p.h * p.w * p.c), ref_dx = fast_dx;
      k::cpu::avx512::max_pool2d_backward(p, x.data(), dy.data(), fast_dx.data());
      k::ref::max_pool2d_backward<float>(p, x.data(), dy.data(), ref_dx.data());
      expect_same_bits(fast_dx, ref_dx, "dx");
    }
}

TYPED_TEST(KernelsTest, AvgPool2D) {
  using T = TypeParam;
  for (const auto& pc : pool_cases()) {
    SCOPED_TRACE(pc.name);
    const auto p = pool_params(pc);
    const auto x = random_vector<T>(p.n * p.h * p.w * p.c, 61);
    const auto dy = random_vector<T>(p.n * p.p * p.q * p.c, 62);
    auto fast_y = nan_vector<T>(p.n * p.p * p.q * p.c), ref_y = fast_y;
    k::avg_pool2d_forward<T>(p, x.data(), fast_y.data());
    k::ref::avg_pool2d_forward<T>(p, x.data(), ref_y.data());
    EXPECT_TRUE(close(fast_y, ref_y, "y"));
    auto fast_dx = nan_vector<T>(p.n * p.h * p.w * p.c), ref_dx = fast_dx;
    k::avg_pool2d_backward<T>(p, dy.data(), fast_dx.data());
    k::ref::avg_pool2d_backward<T>(p, dy.data(), ref_dx.data());
    EXPECT_TRUE(close(fast_dx, ref_dx, "dx"));
  }
}

// ---- Dense ----

std::vector<k::DenseParams> dense_cases() { return {{1, 13, 3}, {7, 64, 10}, {32, 2048, 6}, {5, 3, 13}}; }
std::string dense_name(const k::DenseParams& p) {
  return "n " + std::to_string(p.n) + " c " + std::to_string(p.c) + " k " + std::to_string(p.k);
}

TYPED_TEST(KernelsTest, DenseForward) {
  using T = TypeParam;
  for (const auto& p : dense_cases()) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(dense_name(p) + (with_bias ? " with bias" : " without bias"));
      const auto x = random_vector<T>(p.n * p.c, 71);
      const auto w = random_vector<T>(p.c * p.k, 72, 0.1);
      const auto b = random_vector<T>(p.k, 73);
      const T* bias = with_bias ? b.data() : nullptr;
      auto fast = nan_vector<T>(p.n * p.k), ref = fast;
      k::dense_forward<T>(p, x.data(), w.data(), bias, fast.data());
      k::ref::dense_forward<T>(p, x.data(), w.data(), bias, ref.data());
      EXPECT_TRUE(close(fast, ref, "y"));
    }
  }
}

TYPED_TEST(KernelsTest, DenseBackward) {
  using T = TypeParam;
  for (const auto& p : dense_cases()) {
    for (bool with_dx_db : {false, true}) {
      SCOPED_TRACE(dense_name(p) + (with_dx_db ? " with dx, db" : " without dx, db"));
      const auto x = random_vector<T>(p.n * p.c, 81);
      const auto w = random_vector<T>(p.c * p.k, 82, 0.1);
      const auto dy = random_vector<T>(p.n * p.k, 83);
      auto fast_dx = nan_vector<T>(p.n * p.c), ref_dx = fast_dx;
      auto fast_dw = nan_vector<T>(p.c * p.k), ref_dw = fast_dw;
      auto fast_db = nan_vector<T>(p.k), ref_db = fast_db;
      k::dense_backward<T>(p, x.data(), w.data(), dy.data(), with_dx_db ? fast_dx.data() : nullptr,
                           fast_dw.data(), with_dx_db ? fast_db.data() : nullptr);
      k::ref::dense_backward<T>(p, x.data(), w.data(), dy.data(), with_dx_db ? ref_dx.data() : nullptr,
                                ref_dw.data(), with_dx_db ? ref_db.data() : nullptr);
      EXPECT_TRUE(close(fast_dw, ref_dw, "dw"));
      if (with_dx_db) {
        EXPECT_TRUE(close(fast_dx, ref_dx, "dx"));
        EXPECT_TRUE(close(fast_db, ref_db, "db"));
      }
    }
  }
}

}  // namespace
