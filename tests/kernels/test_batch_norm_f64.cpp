// float64 BatchNormalization's two builds (kernels/cpu/batch_norm_f64.h): the AVX-512 one, where
// the CPU has it, gives bit for bit the generic loops' results on any thread count, and both match
// the reference kernel (kernels/ref/batch_norm.h). Also the bias gradients' column sums built
// alongside (channel_sums.h's column_sums_f64 takes them): the generic sums' bits.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/batch_norm_f32.h"
#include "kernels/cpu/batch_norm_f64.h"
#include "kernels/cpu/batch_norm_f64_avx512.h"
#include "kernels/cpu/channel_sums.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/batch_norm.h"
#include "reskit/runtime.h"

namespace {

namespace k = reskit::kernels;
using k::test_util::close;
using k::test_util::expect_same_bits;
using k::test_util::nan_vector;
using k::test_util::random_vector;

struct Case {
  std::int64_t rows, channels;
};
// Channel counts around the AVX-512 build's tiles (64, 32, 16 at compile time, any other width at
// run time) and row counts around the blocks of 256 rows; the last ones large enough for threads.
std::vector<Case> cases() {
  return {{1, 5},    {7, 3},    {50, 13},         {64, 64},    {300, 16},
          {257, 80}, {513, 32}, {2 * 9 * 9, 256}, {1000, 100}, {4, 2048}};
}

struct Outputs {
  std::vector<double> y, mean, var, dx, dgamma, dbeta;
};

using Training = void (*)(const k::BatchNormParams&, const double*, const double*, const double*, double*,
                          double*, double*, const double*);
using Inference = void (*)(const k::BatchNormParams&, const double*, const double*, const double*,
                           const double*, const double*, double*, const double*);
using Backward = void (*)(const k::BatchNormParams&, const double*, const double*, const double*,
                          const double*, const double*, const double*, double*, double*, double*);

// Training forward (with or without a residual), inference forward and backward, each from the
// same inputs; the backward and inference read the reference's statistics.
Outputs run(const k::BatchNormParams& p, bool residual, Training training, Inference inference,
            Backward backward) {
  const auto x = random_vector<double>(p.rows * p.channels, 71, 2.0, 0.5);
  const auto dy = random_vector<double>(p.rows * p.channels, 72);
  const auto gamma = random_vector<double>(p.channels, 73);
  const auto beta = random_vector<double>(p.channels, 74);
  const auto res = random_vector<double>(p.rows * p.channels, 75);
  const double* r = residual ? res.data() : nullptr;
  auto ref_mean = nan_vector<double>(p.channels), ref_var = ref_mean;
  auto scratch = nan_vector<double>(p.rows * p.channels);
  k::ref::batch_norm_forward_training<double>(p, x.data(), gamma.data(), beta.data(), scratch.data(),
                                              ref_mean.data(), ref_var.data(), r);
  Outputs o;
  o.y = nan_vector<double>(p.rows * p.channels);
  o.mean = nan_vector<double>(p.channels), o.var = o.mean, o.dgamma = o.mean, o.dbeta = o.mean;
  training(p, x.data(), gamma.data(), beta.data(), o.y.data(), o.mean.data(), o.var.data(), r);
  std::vector<double> inferred = nan_vector<double>(p.rows * p.channels);
  inference(p, x.data(), gamma.data(), beta.data(), ref_mean.data(), ref_var.data(), inferred.data(), r);
  o.y.insert(o.y.end(), inferred.begin(), inferred.end());
  o.dx = nan_vector<double>(p.rows * p.channels);
  backward(p, x.data(), dy.data(), gamma.data(), beta.data(), ref_mean.data(), ref_var.data(), o.dx.data(),
           o.dgamma.data(), o.dbeta.data());
  return o;
}

TEST(BatchNormF64Builds, GenericMatchesTheReference) {
  for (const auto& c : cases())
    for (bool relu : {false, true})
      for (bool residual : {false, true}) {
        SCOPED_TRACE("rows " + std::to_string(c.rows) + " channels " + std::to_string(c.channels) +
                     (relu ? " relu" : "") + (residual ? " residual" : ""));
        const k::BatchNormParams p{c.rows, c.channels, 1e-3, relu};
        const Outputs fast = run(p, residual, k::cpu::f64_generic::batch_norm_forward_training<double>,
                                 k::cpu::f64_generic::batch_norm_forward_inference<double>,
                                 k::cpu::f64_generic::batch_norm_backward<double>);
        const Outputs ref =
            run(p, residual, k::ref::batch_norm_forward_training<double>,
                k::ref::batch_norm_forward_inference<double>, k::ref::batch_norm_backward<double>);
        EXPECT_TRUE(close(fast.y, ref.y, "y"));
        EXPECT_TRUE(close(fast.mean, ref.mean, "mean"));
        EXPECT_TRUE(close(fast.var, ref.var, "var"));
        EXPECT_TRUE(close(fast.dx, ref.dx, "dx"));
        EXPECT_TRUE(close(fast.dgamma, ref.dgamma, "dgamma"));
        EXPECT_TRUE(close(fast.dbeta, ref.dbeta, "dbeta"));
      }
}

TEST(BatchNormF64Builds, Avx512GivesTheGenericBitsOnAnyThreadCount) {
  if (!k::cpu::avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int threads_before = reskit::num_threads();
  for (int threads : {1, 2})
    for (const auto& c : cases())
      for (bool relu : {false, true})
        for (bool residual : {false, true}) {
          SCOPED_TRACE(std::to_string(threads) + " threads, rows " + std::to_string(c.rows) + " channels " +
                       std::to_string(c.channels) + (relu ? " relu" : "") + (residual ? " residual" : ""));
          const k::BatchNormParams p{c.rows, c.channels, 1e-3, relu};
          reskit::set_num_threads(1);
          const Outputs generic = run(p, residual, k::cpu::f64_generic::batch_norm_forward_training<double>,
                                      k::cpu::f64_generic::batch_norm_forward_inference<double>,
                                      k::cpu::f64_generic::batch_norm_backward<double>);
          reskit::set_num_threads(threads);
          const Outputs fast =
              run(p, residual, k::cpu::f64_avx512::batch_norm_forward_training,
                  k::cpu::f64_avx512::batch_norm_forward_inference, k::cpu::f64_avx512::batch_norm_backward);
          expect_same_bits(fast.y, generic.y, "y");
          expect_same_bits(fast.mean, generic.mean, "mean");
          expect_same_bits(fast.var, generic.var, "var");
          expect_same_bits(fast.dx, generic.dx, "dx");
          expect_same_bits(fast.dgamma, generic.dgamma, "dgamma");
          expect_same_bits(fast.dbeta, generic.dbeta, "dbeta");
        }
  reskit::set_num_threads(threads_before);
}

TEST(BatchNormF64Builds, Avx512ColumnSumsGiveTheGenericBits) {
  if (!k::cpu::avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const int threads_before = reskit::num_threads();
  for (int threads : {1, 2})
    for (const auto& c : cases()) {
      SCOPED_TRACE(std::to_string(threads) + " threads, rows " + std::to_string(c.rows) + " columns " +
                   std::to_string(c.channels));
      reskit::set_num_threads(threads);
      const auto dy = random_vector<double>(c.rows * c.channels, 76);
      std::array<std::vector<double>, 1>
          generic;  // channel_sums.h's generic sums, as column_sums_f64 had them
      k::cpu::channel_sums<1>(c.rows, c.channels, generic, [&](std::int64_t i, double* acc) {
        for (std::int64_t j = 0; j < c.channels; ++j) acc[j] += dy[i * c.channels + j];
      });
      auto fast = nan_vector<double>(c.channels), dispatched = fast;
      k::cpu::f64_avx512::column_sums(c.rows, c.channels, dy.data(), fast.data());
      k::cpu::column_sums_f64<double>(c.rows, c.channels, dy.data(), dispatched.data());
      expect_same_bits(fast, generic[0], "column sums");
      expect_same_bits(dispatched, generic[0], "column_sums_f64");
    }
  reskit::set_num_threads(threads_before);
}

}  // namespace
