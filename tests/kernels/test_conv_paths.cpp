// The convolution lists of kernels/dispatch.cpp (kernels/conv_paths.h): every entry of every list
// (float32, mixed float32/bfloat16, float64; forward, backward-data, backward-weights) run directly
// on awkward shapes where its rule holds (13, 3 and 24 channels, stride 2, R != S, rows of padding
// only, batch 1 and 9) against the reference, fallbacks included; and the entry known shapes get
// first, which pins the rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/conv_paths.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/bf16.h"
#include "kernels/ref/conv2d.h"

namespace {

namespace k = reskit::kernels;
namespace cp = reskit::kernels::conv_paths;
using namespace reskit::kernels::test_util;

// Shapes for every rule: 1x1 around 64 output pixels, tiny images at batch 8 and 9, general ones.
std::vector<ConvCase> path_cases() {
  return {
      {"1x1 13->3 batch 9", 9, 5, 6, 13, 3, valid(5, 1, 1), valid(6, 1, 1)},
      {"1x1 24->13 batch 1, 63 pixels", 1, 7, 9, 24, 13, valid(7, 1, 1), valid(9, 1, 1)},
      {"1x1 stride 2 3->24 batch 1, 64 pixels", 1, 15, 15, 3, 24, valid(15, 1, 2), valid(15, 1, 2)},
      {"1x1 stride 2x1 13->24 batch 9", 9, 9, 7, 13, 24, valid(9, 1, 2), valid(7, 1, 1)},
      {"1x1 pad 1 3->13 batch 9 (border of padding only)", 9, 4, 5, 3, 13, explicit_pad(4, 1, 1, 1, 1),
       explicit_pad(5, 1, 1, 1, 1)},
      {"3x3 same on 2x2 24->40 batch 9", 9, 2, 2, 24, 40, same(2, 3, 1), same(2, 3, 1)},
      {"3x3 same on 4x3 13->24 batch 9", 9, 4, 3, 13, 24, same(4, 3, 1), same(3, 3, 1)},
      {"5x3 pad 3/1 on 2x2 3->13 batch 9 (rows of padding only)", 9, 2, 2, 3, 13, explicit_pad(2, 5, 1, 3, 3),
       explicit_pad(2, 3, 1, 1, 1)},
      {"3x3 stride 2 pad 1 on 7x6 24->13 batch 8", 8, 7, 6, 24, 13, explicit_pad(7, 3, 2, 1, 1),
       explicit_pad(6, 3, 2, 1, 1)},
      {"3x1 on 3x2 13->24 batch 8 (2 output pixels)", 8, 3, 2, 13, 24, valid(3, 3, 1), valid(2, 1, 1)},
      {"3x3 same stride 2 13->24 batch 1", 1, 9, 8, 13, 24, same(9, 3, 2), same(8, 3, 2)},
      {"1x3 stride 1x2 24->13 batch 9", 9, 6, 9, 24, 13, valid(6, 1, 1), same(9, 3, 2)},
      {"7x7 stride 2 pad 3 3->16 batch 1", 1, 16, 15, 3, 16, explicit_pad(16, 7, 2, 3, 3),
       explicit_pad(15, 7, 2, 3, 3)},
      {"5x5 pad 3 on 2x2 3->24 batch 1 (rows of padding only)", 1, 2, 2, 3, 24, explicit_pad(2, 5, 1, 3, 3),
       explicit_pad(2, 5, 1, 3, 3)},
      {"2x2 same 13->24 batch 9 (pad bottom/right only)", 9, 6, 7, 13, 24, same(6, 2, 1), same(7, 2, 1)},
      {"3x3 same 13->24 on 12x11 batch 8 (1056 output pixels)", 8, 12, 11, 13, 24, same(12, 3, 1),
       same(11, 3, 1)},
      {"3x3 same 32->48 on 9x10 batch 4 (36 Winograd tiles, partial ones)", 4, 9, 10, 32, 48, same(9, 3, 1),
       same(10, 3, 1)},
      {"3x3 same 16->16 on 8x8 batch 8 (32 Winograd tiles, 16 channels)", 8, 8, 8, 16, 16, same(8, 3, 1),
       same(8, 3, 1)},
      {"3x3 same 13->24 on 4x4 batch 5 (F(2x2, 3x3))", 5, 4, 4, 13, 24, same(4, 3, 1), same(4, 3, 1)},
      {"3x3 same 32->48 on 9x10 batch 9 (81 tiles of 4x4 in blocks of 7 images and 2: fused F(4x4, 3x3))", 9,
       9, 10, 32, 48, same(9, 3, 1), same(10, 3, 1)},
      {"3x3 same 64->80 on 9x10 batch 4 (36 tiles of 4x4, partial ones)", 4, 9, 10, 64, 80, same(9, 3, 1),
       same(10, 3, 1)},
  };
}

// The operands of one case, the same in every test: x, w (scaled 0.2), b, dy and a residual r.
template <class T>
struct CaseData {
  std::vector<T> x, w, b, dy, r;
};
template <class T>
CaseData<T> case_data(const k::Conv2DParams& p) {
  return {random_vector<T>(p.n * p.h * p.w * p.c, 1), random_vector<T>(p.r * p.s * p.c * p.k, 2, 0.2),
          random_vector<T>(p.k, 3), random_vector<T>(p.n * p.p * p.q * p.k, 4),
          random_vector<T>(p.n * p.p * p.q * p.k, 5)};
}

class ConvPaths : public ::testing::Test {
 protected:
  void SetUp() override { k::set_backend(k::Backend::fast); }
};

// What each entry did over the shapes: ran (and matched), or declined.
struct Tally {
  int ran = 0, declined = 0;
};

template <class T>
std::vector<T> operand(const std::vector<T>& v, bool mixed) {
  return mixed ? k::ref::rounded_bf16(v.data(), static_cast<int64_t>(v.size())) : v;
}

// Runs every entry of list (T, pass, mixed) on every shape where its rule holds, against the
// reference (on bfloat16-rounded operands for mixed precision). only_roundings (mixed precision):
// x and dy handed over as their roundings (Conv2DParams::x_bf16, dy_bf16) and as float32 values
// that are all NaN, as a tensor's unwritten storage is (Tensor::bf16_shadow_only_written): an
// entry that read them would give NaN.
template <class T>
std::map<std::string, Tally> check_list(cp::Pass pass, bool mixed, bool only_roundings = false) {
  std::map<std::string, Tally> tally;
  for (const auto& path : cp::paths<T>(pass, mixed)) {
    auto& t = tally[std::string(path.name)];
    for (const auto& cc : path_cases()) {
      auto p = conv_params(cc);
      p.bf16 = mixed;
      if (!path.applies(p)) continue;
      const auto [x, w, b, dy, r] = case_data<T>(p);
      const auto xr = operand(x, mixed), wr = operand(w, mixed), dyr = operand(dy, mixed);
      std::vector<std::uint16_t> xb, dyb;
      std::vector<T> x_unwritten, dy_unwritten;
      if constexpr (std::is_same_v<T, float>) {
        if (only_roundings) {
          xb.resize(x.size()), dyb.resize(dy.size());
          k::round_to_bf16(x.data(), static_cast<int64_t>(x.size()), xb.data());
          k::round_to_bf16(dy.data(), static_cast<int64_t>(dy.size()), dyb.data());
          p.x_bf16 = xb.data(), p.dy_bf16 = dyb.data();
          x_unwritten = nan_vector<T>(x.size()), dy_unwritten = nan_vector<T>(dy.size());
        }
      }
      // Forward twice: without bias, then with bias and the fused ReLU; an entry that takes a
      // residual (Path::takes_residual) a third time, with bias, residual and ReLU.
      const int variants = pass != cp::Pass::forward ? 1 : path.takes_residual ? 3 : 2;
      for (int variant = 0; variant < variants; ++variant) {
        const bool with_bias = pass == cp::Pass::backward_weights || variant >= 1;
        p.relu = pass == cp::Pass::forward && variant >= 1;
        p.residual = variant == 2 ? r.data() : nullptr;
        SCOPED_TRACE(std::string(path.name) + " on " + cc.name + (with_bias ? ", bias" : "") +
                     (p.residual ? ", residual" : "") + (p.relu ? ", relu" : ""));
        cp::Operands<T> o;
        o.x = x.data(), o.w = w.data(), o.b = with_bias ? b.data() : nullptr, o.dy = dy.data();
        if (only_roundings) o.x = x_unwritten.data(), o.dy = dy_unwritten.data();
        auto y = nan_vector<T>(p.n * p.p * p.q * p.k), ref_y = y;
        auto dx = nan_vector<T>(p.n * p.h * p.w * p.c), ref_dx = dx;
        auto dw = nan_vector<T>(p.r * p.s * p.c * p.k), ref_dw = dw;
        auto db = nan_vector<T>(p.k), ref_db = db;
        switch (pass) {
          case cp::Pass::forward:
            o.y = y.data();
            k::ref::conv2d_forward<T>(p, xr.data(), wr.data(), o.b, ref_y.data());
            if (p.residual != nullptr) {  // the reference kernel applied the ReLU before it
              auto q = p;
              q.relu = false;
              q.residual = nullptr;
              k::ref::conv2d_forward<T>(q, xr.data(), wr.data(), o.b, ref_y.data());
              for (std::size_t i = 0; i < ref_y.size(); ++i) ref_y[i] = std::max(T(0), ref_y[i] + r[i]);
            }
            break;
          case cp::Pass::backward_data:
            o.dx = dx.data();
            k::ref::conv2d_backward_data<T>(p, dyr.data(), wr.data(), ref_dx.data());
            break;
          case cp::Pass::backward_weights:
            o.dw = dw.data(), o.db = db.data();
            k::ref::conv2d_backward_weights<T>(p, xr.data(), dyr.data(), ref_dw.data(), ref_db.data());
            break;
        }
        if (!path.run(p, o)) {
          ++t.declined;
          continue;
        }
        ++t.ran;
        switch (pass) {
          case cp::Pass::forward:
            EXPECT_TRUE(close(y, ref_y, "y"));
            break;
          case cp::Pass::backward_data:
            EXPECT_TRUE(close(dx, ref_dx, "dx"));
            break;
          case cp::Pass::backward_weights:
            EXPECT_TRUE(close(dw, ref_dw, "dw"));
            EXPECT_TRUE(close(db, ref_db, "db"));
            break;
        }
      }
    }
  }
  return tally;
}

// Every entry ran on some shape (so every path, fallbacks included, is tested directly here).
// Mixed precision: oneDNN has bfloat16 primitives only from AVX-512 on; where it has none its
// entries decline and the rounded copies serve, which is said, not failed.
template <class T>
void check_every_entry(bool mixed, bool only_roundings = false) {
  for (cp::Pass pass : {cp::Pass::forward, cp::Pass::backward_data, cp::Pass::backward_weights}) {
    SCOPED_TRACE("pass " + std::to_string(static_cast<int>(pass)));
    for (const auto& [name, t] : check_list<T>(pass, mixed, only_roundings)) {
      if (mixed && t.ran == 0 && t.declined > 0) {
        std::cout << "note: '" << name << "' declined on every shape (no bfloat16 primitives here)\n";
        continue;
      }
      EXPECT_GT(t.ran, 0) << "'" << name << "' never ran (" << t.declined << " declined)";
    }
  }
}

TEST_F(ConvPaths, EveryFloat32PathMatchesTheReference) { check_every_entry<float>(false); }
// Both of mixed precision's lists, whichever this CPU's rule picks.
TEST_F(ConvPaths, EveryMixedPrecisionPathMatchesTheReferenceOnRoundedOperands) {
  for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
    SCOPED_TRACE(which == cp::MixedKernels::float32 ? "float32 kernels" : "bfloat16 kernels");
    const cp::ScopedMixedKernels forced(which);
    check_every_entry<float>(true);
  }
}
// Where the caller hands over the roundings of x and dy, no entry reads their float32 values
// (a mixed-precision normalization may leave those unwritten: Tensor::bf16_shadow_only_written).
TEST_F(ConvPaths, EveryMixedPrecisionPathReadsTheRoundingsItIsGiven) {
  for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
    SCOPED_TRACE(which == cp::MixedKernels::float32 ? "float32 kernels" : "bfloat16 kernels");
    const cp::ScopedMixedKernels forced(which);
    check_every_entry<float>(true, true);
  }
}
TEST_F(ConvPaths, EveryFloat64PathMatchesTheReference) { check_every_entry<double>(false); }

// Bfloat16 results (Conv2DParams::y_bf16, dx_bf16: a Conv2D writing Keras's bfloat16 activations)
// are the roundings of the float32 results: from each entry that writes them itself
// (Path::bf16_results), against the same entry's float32 results, and through the dispatcher
// (whichever entry runs; the others' results rounded after), under both backends. Forward and
// backward-data; dx by the combined backward, as a layer asks for it, with dw alongside.
TEST_F(ConvPaths, Bfloat16ResultsAreTheRoundingsOfTheFloat32Results) {
  const auto rounding = [](const std::vector<float>& v) {
    std::vector<std::uint16_t> bits(v.size());
    k::ref::round_to_bf16_bits(v.data(), static_cast<int64_t>(v.size()), bits.data());
    return bits;
  };
  int native_runs = 0;
  for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
    const cp::ScopedMixedKernels forced(which);
    for (const auto& cc : path_cases()) {
      auto p = conv_params(cc);
      p.bf16 = true;
      const auto [x, w, b, dy, r] = case_data<float>(p);
      for (cp::Pass pass : {cp::Pass::forward, cp::Pass::backward_data}) {
        for (const auto& path : cp::paths<float>(pass, true)) {
          if (!path.bf16_results || !path.applies(p)) continue;
          SCOPED_TRACE(std::string(path.name) + " on " + cc.name);
          const bool fwd = pass == cp::Pass::forward;
          auto out = nan_vector<float>(fwd ? p.n * p.p * p.q * p.k : p.n * p.h * p.w * p.c), scratch = out;
          std::vector<std::uint16_t> bits(out.size(), 0xFFFF);
          cp::Operands<float> o;
          o.x = x.data(), o.w = w.data(), o.b = fwd ? b.data() : nullptr, o.dy = dy.data();
          (fwd ? o.y : o.dx) = out.data();
          if (!path.run(p, o)) continue;
          auto q = p;
          (fwd ? q.y_bf16 : q.dx_bf16) = bits.data();
          (fwd ? o.y : o.dx) = scratch.data();
          ASSERT_TRUE(path.run(q, o));
          EXPECT_EQ(bits, rounding(out));
          ++native_runs;
        }
      }
      for (k::Backend backend : {k::Backend::fast, k::Backend::reference}) {
        SCOPED_TRACE(std::string(cc.name) + (backend == k::Backend::reference ? ", reference" : ", fast"));
        k::set_backend(backend);
        auto y = nan_vector<float>(p.n * p.p * p.q * p.k), y_scratch = y;
        auto dx = nan_vector<float>(p.n * p.h * p.w * p.c), dx_scratch = dx;
        auto dw = nan_vector<float>(p.r * p.s * p.c * p.k), dw_too = dw;
        std::vector<std::uint16_t> y_bits(y.size(), 0xFFFF), dx_bits(dx.size(), 0xFFFF);
        k::conv2d_forward<float>(p, x.data(), w.data(), b.data(), y.data());
        k::conv2d_backward<float>(p, x.data(), dy.data(), w.data(), dx.data(), dw.data(), nullptr);
        auto q = p;
        q.y_bf16 = y_bits.data();
        q.dx_bf16 = dx_bits.data();
        k::conv2d_forward<float>(q, x.data(), w.data(), b.data(), y_scratch.data());
        k::conv2d_backward<float>(q, x.data(), dy.data(), w.data(), dx_scratch.data(), dw_too.data(),
                                  nullptr);
        k::set_backend(k::Backend::fast);
        EXPECT_EQ(y_bits, rounding(y)) << "y";
        EXPECT_EQ(dx_bits, rounding(dx)) << "dx";
        EXPECT_TRUE(close(dw_too, dw, "dw alongside"));
      }
    }
  }
  EXPECT_GT(native_runs, 0) << "no entry wrote bfloat16 results itself";
}

// A forward with a residual (Conv2DParams::residual) through the dispatcher, whichever entry runs
// (its own post-op, or the pass the dispatcher adds for one that does not take it), in every
// precision and under the reference backend: the convolution without it, plus r, then the ReLU.
template <class T>
void check_residual(bool mixed, k::Backend backend) {
  for (const auto& cc : path_cases()) {
    for (bool relu : {false, true}) {
      SCOPED_TRACE(std::string(cc.name) + (relu ? ", relu" : "") + (mixed ? ", mixed" : "") +
                   (backend == k::Backend::reference ? ", reference backend" : ""));
      auto p = conv_params(cc);
      p.bf16 = mixed;
      const auto [x, w, b, dy, r] = case_data<T>(p);
      auto y = nan_vector<T>(r.size()), want = y;
      k::set_backend(backend);
      k::conv2d_forward<T>(p, x.data(), w.data(), b.data(), want.data());  // without
      for (std::size_t i = 0; i < want.size(); ++i) {
        want[i] += r[i];
        if (relu) want[i] = std::max(T(0), want[i]);
      }
      p.residual = r.data();
      p.relu = relu;
      k::conv2d_forward<T>(p, x.data(), w.data(), b.data(), y.data());
      k::set_backend(k::Backend::fast);
      EXPECT_TRUE(close(y, want, "y"));
    }
  }
}

TEST_F(ConvPaths, ResidualIsAddedBeforeTheReluOnEveryPath) {
  for (k::Backend backend : {k::Backend::fast, k::Backend::reference}) {
    check_residual<float>(false, backend);
    check_residual<float>(true, backend);
    check_residual<double>(false, backend);
  }
}

// The lists end with entries that always apply: the BLAS fallback, then the reference.
TEST_F(ConvPaths, ListsEndWithTheFallbacks) {
  for (cp::Pass pass : {cp::Pass::forward, cp::Pass::backward_data, cp::Pass::backward_weights}) {
    const auto f32 = cp::paths<float>(pass, false);
    const auto f64 = cp::paths<double>(pass, false);
    ASSERT_GE(f32.size(), 2u);
    ASSERT_GE(f64.size(), 2u);
    EXPECT_EQ(f32[f32.size() - 2].name, "im2col + gemm");
    EXPECT_EQ(f32.back().name, "reference");
    EXPECT_EQ(f64[f64.size() - 2].name, "im2col + gemm");
    EXPECT_EQ(f64.back().name, "reference");
    for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
      EXPECT_EQ(cp::mixed_paths(pass, which).back().name, "float32 on bf16-rounded copies");
    }
    for (const auto& path : f32) {
      EXPECT_FALSE(path.rule.empty()) << path.name;
      EXPECT_FALSE(path.reason.empty()) << path.name;
    }
  }
}

// ---- the rules: which entry known shapes get first ----

k::Conv2DParams shape(int64_t n, int64_t hw, int64_t c, int64_t k, int64_t rs, int64_t stride, int64_t pad) {
  return conv_params(
      {"", n, hw, hw, c, k, explicit_pad(hw, rs, stride, pad, pad), explicit_pad(hw, rs, stride, pad, pad)});
}

struct Expected {
  std::string shape;
  k::Conv2DParams p;
  std::string forward, backward_data, backward_weights;
};

template <class T>
void expect_first(const std::vector<Expected>& cases, bool mixed) {
  for (auto e : cases) {
    SCOPED_TRACE(e.shape + (mixed ? " (mixed)" : ""));
    e.p.bf16 = mixed;
    EXPECT_EQ(cp::first_applicable<T>(cp::Pass::forward, e.p).name, e.forward);
    EXPECT_EQ(cp::first_applicable<T>(cp::Pass::backward_data, e.p).name, e.backward_data);
    EXPECT_EQ(cp::first_applicable<T>(cp::Pass::backward_weights, e.p).name, e.backward_weights);
  }
}

TEST(ConvPathRules, Float32) {
  const std::string mm = "1x1 as matmul", rows = "tiny image row products", conv = "oneDNN convolution",
                    wino = "oneDNN Winograd", f2 = "reskit Winograd F(2x2, 3x3)",
                    f4 = "reskit Winograd F(4x4, 3x3)";
  // The fused F(4x4, 3x3) only where its kernel's build runs (AVX-512); elsewhere what was before it.
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const std::string fused = avx512 ? "reskit Winograd F(4x4, 3x3) fused" : wino,
                    fused_or_conv = avx512 ? fused : conv;
  expect_first<float>(
      {
          {"ResNet-50 stage-2 1x1 64->64 on 56x56, batch 32", shape(32, 56, 64, 64, 1, 1, 0), mm, mm, mm},
          {"ResNet-50 shortcut 1x1 stride 2 256->512 on 56x56, batch 32", shape(32, 56, 256, 512, 1, 2, 0),
           mm, mm, mm},
          {"1x1 on 4x4 at batch 4: 64 output pixels", shape(4, 4, 64, 64, 1, 1, 0), mm, mm, mm},
          {"1x1 on 7x9 at batch 1: 63 output pixels",
           conv_params({"", 1, 7, 9, 64, 64, valid(7, 1, 1), valid(9, 1, 1)}), conv, conv, conv},
          {"1x1 pad 1 on 8x8, batch 32", shape(32, 8, 16, 16, 1, 1, 1), conv, conv, conv},
          {"ResNet-50 conv1 7x7 stride 2 on 224x224, batch 32", shape(32, 224, 3, 64, 7, 2, 3), conv, conv,
           conv},
          {"ResNet-50 stage-5 3x3 512 on 2x2, batch 32", shape(32, 2, 512, 512, 3, 1, 1), rows, rows, rows},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 32 (32 tiles of 4x4)", shape(32, 4, 256, 256, 3, 1, 1),
           f4, f4, f4},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 31", shape(31, 4, 256, 256, 3, 1, 1), f2, f2, f2},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 4 (16 tiles of 2x2)", shape(4, 4, 256, 256, 3, 1, 1), f2,
           f2, f2},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 3", shape(3, 4, 256, 256, 3, 1, 1), conv, conv, conv},
          {"3x3 256 on 3x3, batch 32 (odd: partial tiles of 2x2)", shape(32, 3, 256, 256, 3, 1, 1), rows,
           conv, rows},
          {"3x3 256 on 5x5, batch 32", shape(32, 5, 256, 256, 3, 1, 1), f4, f4, f4},
          {"ResNet-50 stage-2 3x3 64 on 16x16, batch 32", shape(32, 16, 64, 64, 3, 1, 1), f4, f4, f4},
          {"ResNet-50 stage-2 3x3 64 on 15x15, batch 32", shape(32, 15, 64, 64, 3, 1, 1), f4, f4, f4},
          {"ResNet-20 3x3 32 on 14x14, batch 128", shape(128, 14, 32, 32, 3, 1, 1), fused, fused, fused},
          {"ResNet-20 3x3 64 on 7x7, batch 128", shape(128, 7, 64, 64, 3, 1, 1), f4, f4, f4},
          {"ResNet-50 stage-2 3x3 64 on 16x16, batch 1 (16 tiles)", shape(1, 16, 64, 64, 3, 1, 1), conv, conv,
           conv},
          {"ResNet-20 3x3 16 on 28x28, batch 128", shape(128, 28, 16, 16, 3, 1, 1), fused, fused, wino},
          {"ResNet-20 3x3 16 on 32x32, batch 128", shape(128, 32, 16, 16, 3, 1, 1), fused_or_conv,
           fused_or_conv, wino},
          {"ResNet-20 3x3 stride 2 16->32 on 28x28, batch 128", shape(128, 28, 16, 32, 3, 2, 1), conv, conv,
           conv},
          {"3x3 pad 0 32->32 on 8x8, batch 32", shape(32, 8, 32, 32, 3, 1, 0), conv, conv, conv},
          {"3x3 24->32 on 8x8, batch 32 (24 channels)", shape(32, 8, 24, 32, 3, 1, 1), conv, conv, conv},
          {"3x3 on 2x2 at batch 8", shape(8, 2, 64, 64, 3, 1, 1), rows, rows, rows},
          {"3x3 on 2x2 at batch 7", shape(7, 2, 64, 64, 3, 1, 1), conv, conv, conv},
          {"3x3 on 8x8 (64 output pixels), batch 32", shape(32, 8, 64, 64, 3, 1, 1), f4, f4, f4},
          {"3x3 on 8x8 (64 output pixels), batch 7 (28 tiles)", shape(7, 8, 64, 64, 3, 1, 1), conv, conv,
           conv},
      },
      false);
  // A forward with a residual (inference's folded residual add) keeps the fused convolution.
  auto with_residual = shape(32, 16, 64, 64, 3, 1, 1);
  const float r = 0.0f;
  with_residual.residual = &r;
  EXPECT_EQ(cp::first_applicable<float>(cp::Pass::forward, with_residual).name, conv);
}

// Which kernels mixed precision runs: a pure function of the CPU's features.
TEST(ConvPathRules, MixedPrecisionKernelsByCpuFeatures) {
  const auto rule = [](bool intel, bool amx) {
    cp::CpuFeatures f;
    f.intel = intel, f.amx = amx;
    return cp::mixed_kernels_for(f);
  };
  EXPECT_EQ(rule(true, false), cp::MixedKernels::float32) << "Intel without AMX (avx512_core_bf16, avx2)";
  EXPECT_EQ(rule(true, true), cp::MixedKernels::bfloat16) << "Intel with AMX (avx512_core_amx)";
  EXPECT_EQ(rule(false, false), cp::MixedKernels::bfloat16) << "AMD Zen 4/5, or another vendor";
  EXPECT_EQ(rule(false, true), cp::MixedKernels::bfloat16);
  // This CPU gets its features' choice, the override wins while it lives and is undone after.
  const auto own = cp::mixed_kernels_for(cp::cpu_features());
  EXPECT_EQ(cp::mixed_kernels(), own);
  EXPECT_EQ(cp::cpu_features().amx, std::string(k::cpu_isa()) == "avx512_core_amx");
  for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
    {
      const cp::ScopedMixedKernels forced(which);
      EXPECT_EQ(cp::mixed_kernels(), which);
      EXPECT_EQ(cp::paths<float>(cp::Pass::forward, true).data(),
                cp::mixed_paths(cp::Pass::forward, which).data());
    }
    EXPECT_EQ(cp::mixed_kernels(), own);
  }
}

TEST(ConvPathRules, MixedPrecision) {
  const cp::ScopedMixedKernels forced(cp::MixedKernels::bfloat16);
  const std::string mm = "1x1 as bf16 matmul", rows = "tiny image bf16 row products",
                    conv = "oneDNN bf16 convolution", copies = "float32 on bf16-rounded copies",
                    own = "reskit AVX512-BF16 backward-weights";
  expect_first<float>(
      {
          // A 1x1 matmul's backward-weights goes to reskit's kernel where min(C, K) <= 64 and
          // N*P*Q >= 4096.
          {"ResNet-50 stage-2 1x1 64->64 on 56x56, batch 32", shape(32, 56, 64, 64, 1, 1, 0), mm, mm, own},
          {"ResNet-50 stage-2 1x1 256->64 on 15x15, batch 32", shape(32, 15, 256, 64, 1, 1, 0), mm, mm, own},
          {"ResNet-20 shortcut 1x1 stride 2 16->32 on 28x28, batch 128", shape(128, 28, 16, 32, 1, 2, 0), mm,
           mm, own},
          {"1x1 64->64 on 8x8, batch 63 (4032 output pixels)", shape(63, 8, 64, 64, 1, 1, 0), mm, mm, mm},
          {"1x1 64->64 on 8x8, batch 64 (4096 output pixels)", shape(64, 8, 64, 64, 1, 1, 0), mm, mm, own},
          {"ResNet-50 stage-3 1x1 128->512 on 8x8, batch 64 (min(C, K) 128)", shape(64, 8, 128, 512, 1, 1, 0),
           mm, mm, mm},
          {"ResNet-50 conv1 7x7 stride 2 on 224x224, batch 32", shape(32, 224, 3, 64, 7, 2, 3), conv, conv,
           own},
          {"ResNet-50 stage-5 3x3 512 on 2x2, batch 32", shape(32, 2, 512, 512, 3, 1, 1), rows, rows, rows},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 32", shape(32, 4, 256, 256, 3, 1, 1), rows, conv, rows},
          {"ResNet-20 3x3 16 on 28x28, batch 128", shape(128, 28, 16, 16, 3, 1, 1), conv, conv, own},
          {"ResNet-20 stem 3x3 1->16 on 28x28 (1 accumulator), batch 128", shape(128, 28, 1, 16, 3, 1, 1),
           conv, conv, conv},
          {"CIFAR stem 3x3 3->16 on 32x32 (3 accumulators), batch 128", shape(128, 32, 3, 16, 3, 1, 1), conv,
           conv, conv},
          {"1x1 pad 1 on 8x8, batch 32", shape(32, 8, 16, 16, 1, 1, 1), conv, conv, own},
          {"3x3 13 filters (odd K) on 8x8, batch 32", shape(32, 8, 16, 13, 3, 1, 1), conv, copies, own},
          {"3x3 13 filters (odd K) on 4x4, batch 32", shape(32, 4, 16, 13, 3, 1, 1), rows, copies, rows},
          {"3x3 13 filters (odd K) on 2x2, batch 32", shape(32, 2, 16, 13, 3, 1, 1), rows, rows, rows},
          {"1x1 13 filters (odd K) on 8x8, batch 32", shape(32, 8, 16, 13, 1, 1, 0), mm, mm, mm},
          {"ResNet-50 stage-5 3x3 512 on 2x2, batch 1 (4 output pixels)", shape(1, 2, 512, 512, 3, 1, 1),
           conv, conv, conv},
          {"3x3 on 8x8, batch 15 (960 output pixels)", shape(15, 8, 64, 64, 3, 1, 1), conv, conv, conv},
          {"3x3 on 8x8, batch 16 (1024 output pixels)", shape(16, 8, 64, 64, 3, 1, 1), conv, conv, own},
      },
      true);
}

// reskit's AVX512-BF16 backward-weights on shapes path_cases() leaves out: K past 64 with a masked
// tail (80 = 64 + 16 lanes, 70 = 64 + 6), C past a block (13 = 6 + 6 + 1), odd batches (a zero
// image in the last pair) and images large enough for several chunks of pairs per thread, against
// the reference on bfloat16-rounded operands; one image alone (batch 1) too. The entry runs here
// directly, also on the shapes its rule leaves to oneDNN (fewer than 1024 output pixels).
TEST(ConvPathRules, OwnBf16BackwardWeightsOnWideShapes) {
  k::set_backend(k::Backend::fast);
  const std::string own = "reskit AVX512-BF16 backward-weights";
  const cp::Path<float>* entry = nullptr;
  for (const auto& path : cp::mixed_paths(cp::Pass::backward_weights, cp::MixedKernels::bfloat16)) {
    if (path.name == own) entry = &path;
  }
  ASSERT_NE(entry, nullptr);
  const std::vector<ConvCase> cases = {
      {"3x3 same 13->80 on 40x40 batch 7 (several chunks)", 7, 40, 40, 13, 80, same(40, 3, 1),
       same(40, 3, 1)},
      {"3x3 stride 2 13->70 on 17x15 batch 5", 5, 17, 15, 13, 70, same(17, 3, 2), same(15, 3, 2)},
      {"5x5 pad 2 24->40 on 9x9 batch 1", 1, 9, 9, 24, 40, explicit_pad(9, 5, 1, 2, 2),
       explicit_pad(9, 5, 1, 2, 2)},
      {"7x7 stride 2 3->64 on 21x21 batch 3", 3, 21, 21, 3, 64, explicit_pad(21, 7, 2, 3, 3),
       explicit_pad(21, 7, 2, 3, 3)},
      // 1x1 kernels, as the rule sends ResNet-20's shortcuts and ResNet-50's 15x15 layers here.
      {"1x1 stride 2 16->32 on 14x13 batch 9", 9, 14, 13, 16, 32, valid(14, 1, 2), valid(13, 1, 2)},
      {"1x1 64->24 on 9x9 batch 6", 6, 9, 9, 64, 24, valid(9, 1, 1), valid(9, 1, 1)},
  };
  int ran = 0;
  for (const auto& cc : cases) {
    SCOPED_TRACE(cc.name);
    auto p = conv_params(cc);
    p.bf16 = true;
    const auto [x, w, b, dy, r] = case_data<float>(p);
    const auto xr = operand(x, true), dyr = operand(dy, true);
    auto ref_dw = nan_vector<float>(p.r * p.s * p.c * p.k), ref_db = nan_vector<float>(p.k);
    k::ref::conv2d_backward_weights<float>(p, xr.data(), dyr.data(), ref_dw.data(), ref_db.data());
    auto dw = nan_vector<float>(ref_dw.size()), db = nan_vector<float>(ref_db.size());
    cp::Operands<float> o;
    o.x = x.data(), o.dy = dy.data(), o.dw = dw.data(), o.db = db.data();
    if (!entry->run(p, o)) continue;  // no AVX512-BF16 (or AMX) here: declined, said below
    ++ran;
    EXPECT_TRUE(close(dw, ref_dw, "dw"));
    EXPECT_TRUE(close(db, ref_db, "db"));
    // A second call gives the same bits (buffers reused, partials zeroed).
    auto again = nan_vector<float>(ref_dw.size());
    o.dw = again.data();
    ASSERT_TRUE(entry->run(p, o));
    EXPECT_EQ(again, dw);
  }
  if (ran == 0) std::cout << "note: '" << own << "' declined here (no AVX512-BF16, or AMX)\n";
}

// MixedKernels::float32: the float32 list's rules (odd K included: oneDNN's float32 backward-data
// has no bfloat16 1x1 bug to avoid).
TEST(ConvPathRules, MixedPrecisionOnFloat32Kernels) {
  const cp::ScopedMixedKernels forced(cp::MixedKernels::float32);
  const std::string mm = "1x1 as matmul on bf16-rounded operands",
                    rows = "tiny image row products on bf16-rounded operands",
                    conv = "oneDNN convolution on bf16-rounded operands",
                    wino = "oneDNN Winograd on bf16-rounded operands",
                    f2 = "reskit Winograd F(2x2, 3x3) on bf16-rounded operands",
                    f4 = "reskit Winograd F(4x4, 3x3) on bf16-rounded operands";
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const std::string fused = avx512 ? "reskit Winograd F(4x4, 3x3) fused on bf16-rounded operands" : wino,
                    fused_or_conv = avx512 ? fused : conv;
  expect_first<float>(
      {
          {"ResNet-50 stage-2 1x1 64->64 on 56x56, batch 32", shape(32, 56, 64, 64, 1, 1, 0), mm, mm, mm},
          {"1x1 on 7x9 at batch 1: 63 output pixels",
           conv_params({"", 1, 7, 9, 64, 64, valid(7, 1, 1), valid(9, 1, 1)}), conv, conv, conv},
          {"ResNet-50 conv1 7x7 stride 2 on 224x224, batch 32", shape(32, 224, 3, 64, 7, 2, 3), conv, conv,
           conv},
          {"ResNet-50 stage-5 3x3 512 on 2x2, batch 32", shape(32, 2, 512, 512, 3, 1, 1), rows, rows, rows},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 32", shape(32, 4, 256, 256, 3, 1, 1), f4, f4, f4},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 16", shape(16, 4, 256, 256, 3, 1, 1), f2, f2, f2},
          {"3x3 256 on 3x3, batch 32", shape(32, 3, 256, 256, 3, 1, 1), rows, conv, rows},
          {"3x3 32 on 8x8, batch 32", shape(32, 8, 32, 32, 3, 1, 1), fused, fused, fused},
          {"ResNet-20 3x3 16 on 28x28, batch 128", shape(128, 28, 16, 16, 3, 1, 1), fused, fused, wino},
          {"ResNet-20 3x3 16 on 32x32, batch 128", shape(128, 32, 16, 16, 3, 1, 1), fused_or_conv,
           fused_or_conv, wino},
          {"3x3 13 filters (odd K) on 8x8, batch 32", shape(32, 8, 16, 13, 3, 1, 1), conv, conv, conv},
          {"3x3 on 2x2 at batch 7", shape(7, 2, 64, 64, 3, 1, 1), conv, conv, conv},
      },
      true);
}

// Both choices compute mixed precision's arithmetic: through the entry points (as a layer calls
// them, with the operands' bfloat16 roundings handed over), each agrees with the reference on
// rounded operands and with the other; the float32 kernels read the roundings they are given.
TEST(ConvPathRules, BothMixedPrecisionChoicesAgree) {
  k::set_backend(k::Backend::fast);
  for (const auto& cc : path_cases()) {
    SCOPED_TRACE(cc.name);
    auto p = conv_params(cc);
    p.bf16 = true;
    const auto [x, w, b, dy, r] = case_data<float>(p);
    std::vector<std::uint16_t> xb(x.size()), wb(w.size()), dyb(dy.size());
    k::round_to_bf16(x.data(), static_cast<int64_t>(x.size()), xb.data());
    k::round_to_bf16(w.data(), static_cast<int64_t>(w.size()), wb.data());
    k::round_to_bf16(dy.data(), static_cast<int64_t>(dy.size()), dyb.data());
    p.x_bf16 = xb.data(), p.w_bf16 = wb.data(), p.dy_bf16 = dyb.data();
    const auto xr = operand(x, true), wr = operand(w, true), dyr = operand(dy, true);
    auto ref_y = nan_vector<float>(p.n * p.p * p.q * p.k);
    auto ref_dx = nan_vector<float>(p.n * p.h * p.w * p.c), ref_dw = nan_vector<float>(p.r * p.s * p.c * p.k);
    auto ref_db = nan_vector<float>(p.k);
    k::ref::conv2d_forward<float>(p, xr.data(), wr.data(), b.data(), ref_y.data());
    k::ref::conv2d_backward_data<float>(p, dyr.data(), wr.data(), ref_dx.data());
    k::ref::conv2d_backward_weights<float>(p, xr.data(), dyr.data(), ref_dw.data(), ref_db.data());
    std::vector<std::vector<float>> ys;
    for (cp::MixedKernels which : {cp::MixedKernels::bfloat16, cp::MixedKernels::float32}) {
      SCOPED_TRACE(which == cp::MixedKernels::float32 ? "float32 kernels" : "bfloat16 kernels");
      const cp::ScopedMixedKernels forced(which);
      auto y = nan_vector<float>(ref_y.size()), dx = nan_vector<float>(ref_dx.size());
      auto dw = nan_vector<float>(ref_dw.size()), db = nan_vector<float>(ref_db.size());
      k::conv2d_forward<float>(p, x.data(), w.data(), b.data(), y.data());
      k::conv2d_backward<float>(p, x.data(), dy.data(), w.data(), dx.data(), dw.data(), db.data());
      EXPECT_TRUE(close(y, ref_y, "y"));
      EXPECT_TRUE(close(dx, ref_dx, "dx"));
      EXPECT_TRUE(close(dw, ref_dw, "dw"));
      EXPECT_TRUE(close(db, ref_db, "db"));
      ys.push_back(y);
      if (which == cp::MixedKernels::bfloat16) continue;
      // The float32 kernels read the roundings handed over: zero roundings, zero products.
      auto q = p;
      const std::vector<std::uint16_t> zero_x(xb.size(), 0);
      q.x_bf16 = zero_x.data();
      auto y0 = nan_vector<float>(ref_y.size());
      k::conv2d_forward<float>(q, x.data(), w.data(), nullptr, y0.data());
      EXPECT_EQ(y0, std::vector<float>(y0.size(), 0.0f)) << "x_bf16 not read";
    }
    EXPECT_TRUE(close(ys[1], ys[0], "y, float32 kernels against bfloat16 kernels"));
  }
}

TEST(ConvPathRules, Float64) {
  const std::string gemm = "1x1 as one gemm (BLAS)", rows = "tiny image row products (BLAS)",
                    im2col = "im2col + gemm";
  expect_first<double>(
      {
          {"ResNet-50 stage-2 1x1 64->64 on 56x56, batch 32", shape(32, 56, 64, 64, 1, 1, 0), gemm, gemm,
           gemm},
          {"1x1 on 7x9 at batch 1", conv_params({"", 1, 7, 9, 64, 64, valid(7, 1, 1), valid(9, 1, 1)}), gemm,
           gemm, gemm},
          {"ResNet-50 shortcut 1x1 stride 2, batch 32", shape(32, 56, 256, 512, 1, 2, 0), im2col, im2col,
           im2col},
          {"ResNet-50 conv1 7x7 stride 2, batch 32", shape(32, 224, 3, 64, 7, 2, 3), im2col, im2col, im2col},
          {"ResNet-50 stage-4 3x3 256 on 4x4, batch 32", shape(32, 4, 256, 256, 3, 1, 1), rows, rows, rows},
          {"3x3 on 2x2 at batch 7", shape(7, 2, 64, 64, 3, 1, 1), im2col, im2col, im2col},
      },
      false);
}

// Backend::reference runs the last entry: the reference itself, bit for bit (mixed precision: on
// bfloat16-rounded operands).
TEST(ConvPathRules, TheReferenceBackendRunsTheLastEntry) {
  const auto p0 = conv_params({"", 9, 4, 3, 13, 24, same(4, 3, 1), same(3, 3, 1)});
  for (bool mixed : {false, true}) {
    auto p = p0;
    p.bf16 = mixed;
    const auto x = random_vector<float>(p.n * p.h * p.w * p.c, 1);
    const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 2, 0.2);
    auto y = nan_vector<float>(p.n * p.p * p.q * p.k), ref_y = y;
    k::set_backend(k::Backend::reference);
    k::conv2d_forward<float>(p, x.data(), w.data(), nullptr, y.data());
    k::set_backend(k::Backend::fast);
    k::ref::conv2d_forward<float>(p, operand(x, mixed).data(), operand(w, mixed).data(), nullptr,
                                  ref_y.data());
    EXPECT_EQ(y, ref_y) << (mixed ? "mixed" : "float32");
  }
}

}  // namespace
