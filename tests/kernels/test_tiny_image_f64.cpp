// float64's tiny-image backward-weights where reskit's gemm runs: each tap's product assigns its
// block of dw instead of adding to zeros written first. Bit for bit the accumulating row products
// of tiny_image.h (zeros, negative zeros and all-zero columns in the operands included), every
// element of dw written (taps that meet no rows are zeros), 1 and 2 threads, and close to the
// reference kernel. With 2 threads each thread runs one band of columns alone: all three passes
// give the one-thread bits.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/dgemm.h"
#include "kernels/cpu/tiny_image.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/conv2d.h"
#include "reskit/runtime.h"

namespace {

namespace k = reskit::kernels;
using k::test_util::close;
using k::test_util::explicit_pad;
using k::test_util::nan_vector;
using k::test_util::random_vector;
using k::test_util::same;

TEST(TinyImageF64, AssigningProductsGiveTheAccumulatingBits) {
  if (!k::cpu::dgemm_avx512_available()) GTEST_SKIP() << "reskit's float64 gemm does not run on this CPU";
  const int threads_before = reskit::num_threads();
  using k::test_util::ConvCase;
  // ResNet-50's last two stages (fewer channels), depth over one gemm depth block (N·pixels > 192),
  // channel counts off the micro-kernel's 24 columns, and rows of padding only (taps meeting no rows).
  const std::vector<ConvCase> cases{
      {"3x3 on 2x2 64->64 batch 32", 32, 2, 2, 64, 64, same(2, 3, 1), same(2, 3, 1)},
      {"3x3 on 4x4 32->48 batch 32", 32, 4, 4, 32, 48, same(4, 3, 1), same(4, 3, 1)},
      {"3x3 on 4x4 13->29 batch 9", 9, 4, 4, 13, 29, same(4, 3, 1), same(4, 3, 1)},
      {"5x3 pad 0/3 on 2x2 3->13 batch 9 (taps 2-4 meet no rows)", 9, 2, 2, 3, 13,
       explicit_pad(2, 5, 1, 0, 3), explicit_pad(2, 3, 1, 1, 1)},
  };
  for (const auto& cc : cases)
    for (int threads : {1, 2}) {
      SCOPED_TRACE(cc.name + ", " + std::to_string(threads) + " threads");
      reskit::set_num_threads(threads);
      const k::Conv2DParams p = k::test_util::conv_params(cc);
      auto x = random_vector<double>(p.n * p.h * p.w * p.c, 91);
      auto dy = random_vector<double>(p.n * p.p * p.q * p.k, 92);
      for (std::size_t i = 0; i < x.size(); ++i) {  // ReLU outputs: zeros, some of them negative
        if (x[i] < 0.0) x[i] = i % 3 == 0 ? -0.0 : 0.0;
      }
      for (std::int64_t row = 0; row < p.n * p.p * p.q; ++row) dy[row * p.k] = -0.0;  // a column of -0
      auto fast = nan_vector<double>(p.r * p.s * p.c * p.k), added = fast, ref = fast;
      auto db = nan_vector<double>(p.k), ref_db = db;
      k::cpu::tiny_image_backward_weights<double>(p, x.data(), dy.data(), fast.data(), db.data());
      k::cpu::tiny_image::backward_weights(
          p, x.data(), dy.data(), added.data(), k::cpu::tiny_image::Band::whole(p.k),
          [](char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t kk, const double* a,
             std::int64_t lda, const double* b, std::int64_t ldb, double* c, std::int64_t ldc) {
            k::cpu::dgemm_avx512(ta == 'T', tb == 'T', m, n, kk, 1.0, a, lda, b, ldb, 1.0, c, ldc);
            return true;
          });
      k::ref::conv2d_backward_weights<double>(p, x.data(), dy.data(), ref.data(), ref_db.data());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < fast.size(); ++i)
        differ += std::bit_cast<std::uint64_t>(fast[i]) != std::bit_cast<std::uint64_t>(added[i]);
      EXPECT_EQ(differ, 0u);
      EXPECT_TRUE(close(fast, ref, "dw"));
      EXPECT_TRUE(close(db, ref_db, "db"));
    }
  reskit::set_num_threads(threads_before);
}

// Forward, backward-data and backward-weights on 2 threads (one band of columns per thread, bands
// of 16 columns, a band off the micro-kernel's 24) give the bits of one thread.
TEST(TinyImageF64, BandsOnTwoThreadsGiveTheOneThreadBits) {
  if (!k::cpu::dgemm_avx512_available()) GTEST_SKIP() << "reskit's float64 gemm does not run on this CPU";
  const int threads_before = reskit::num_threads();
  using k::test_util::ConvCase;
  const std::vector<ConvCase> cases{
      {"3x3 on 4x4 40->56 batch 32", 32, 4, 4, 40, 56, same(4, 3, 1), same(4, 3, 1)},
      {"3x3 on 2x2 64->48 batch 16", 16, 2, 2, 64, 48, same(2, 3, 1), same(2, 3, 1)},
  };
  const auto bits_equal = [](const std::vector<double>& a, const std::vector<double>& b) {
    std::size_t differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      differ += std::bit_cast<std::uint64_t>(a[i]) != std::bit_cast<std::uint64_t>(b[i]);
    return differ;
  };
  for (const auto& cc : cases) {
    SCOPED_TRACE(cc.name);
    const k::Conv2DParams p = k::test_util::conv_params(cc);
    const auto x = random_vector<double>(p.n * p.h * p.w * p.c, 93);
    const auto w = random_vector<double>(p.r * p.s * p.c * p.k, 94);
    const auto b = random_vector<double>(p.k, 95);
    const auto dy = random_vector<double>(p.n * p.p * p.q * p.k, 96);
    std::vector<double> y[2], dx[2], dw[2], db[2];
    for (int t = 0; t < 2; ++t) {
      reskit::set_num_threads(t + 1);
      y[t] = nan_vector<double>(p.n * p.p * p.q * p.k), dx[t] = nan_vector<double>(x.size());
      dw[t] = nan_vector<double>(w.size()), db[t] = nan_vector<double>(p.k);
      k::cpu::tiny_image_forward<double>(p, x.data(), w.data(), b.data(), y[t].data());
      k::cpu::tiny_image_backward_data<double>(p, dy.data(), w.data(), dx[t].data());
      k::cpu::tiny_image_backward_weights<double>(p, x.data(), dy.data(), dw[t].data(), db[t].data());
    }
    EXPECT_EQ(bits_equal(y[0], y[1]), 0u) << "forward";
    EXPECT_EQ(bits_equal(dx[0], dx[1]), 0u) << "backward-data";
    EXPECT_EQ(bits_equal(dw[0], dw[1]), 0u) << "backward-weights";
    auto ref = nan_vector<double>(y[0].size());
    k::ref::conv2d_forward<double>(p, x.data(), w.data(), b.data(), ref.data());
    EXPECT_TRUE(close(y[1], ref, "y"));
  }
  reskit::set_num_threads(threads_before);
}

}  // namespace
