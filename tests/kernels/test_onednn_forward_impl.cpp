// Mixed precision's bfloat16 forward through oneDNN (kernels/cpu/onednn_conv.cpp): both of the
// implementations the rule chooses between (brgconv, oneDNN's first offer, and the direct
// jit_bf16:avx512_core_bf16) against the reference on bfloat16-rounded operands, on awkward shapes;
// and the rule (prefer_direct_jit_bf16): the shapes it takes get the direct kernel's bits, the
// others brgconv's.
#include <gtest/gtest.h>

#include <iostream>
#include <vector>

#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/onednn_engine.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/bf16.h"
#include "kernels/ref/conv2d.h"

namespace {

namespace k = reskit::kernels;
namespace od = reskit::kernels::onednn;
using namespace reskit::kernels::test_util;

// The operands of one case (x, w scaled 0.2, b), the same in every call.
struct Operands {
  std::vector<float> x, w, b;
};
Operands operands(const k::Conv2DParams& p) {
  return {random_vector<float>(p.n * p.h * p.w * p.c, 1), random_vector<float>(p.r * p.s * p.c * p.k, 2, 0.2),
          random_vector<float>(p.k, 3)};
}

struct ForwardRun {
  std::vector<float> y;
  bool ran = false;
};
ForwardRun forward(k::Conv2DParams p, od::ForwardImpl impl) {
  p.bf16 = true;
  const auto [x, w, b] = operands(p);
  ForwardRun r{nan_vector<float>(p.n * p.p * p.q * p.k)};
  r.ran = od::conv_forward_bf16_impl(p, x.data(), w.data(), b.data(), r.y.data(), impl);
  return r;
}
std::vector<float> reference(const k::Conv2DParams& p) {
  const auto [x, w, b] = operands(p);
  const auto xr = k::ref::rounded_bf16(x.data(), static_cast<int64_t>(x.size()));
  const auto wr = k::ref::rounded_bf16(w.data(), static_cast<int64_t>(w.size()));
  auto y = nan_vector<float>(p.n * p.p * p.q * p.k);
  k::ref::conv2d_forward<float>(p, xr.data(), wr.data(), b.data(), y.data());
  return y;
}

const std::vector<ConvCase>& cases() {
  static const std::vector<ConvCase> c = {
      {"3x3 same 16->16 on 9x7, batch 3", 3, 9, 7, 16, 16, same(9, 3, 1), same(7, 3, 1)},
      {"3x3 same 1->16 on 6x6, batch 2 (one input channel)", 2, 6, 6, 1, 16, same(6, 3, 1), same(6, 3, 1)},
      {"3x3 stride 2 13->24 on 9x8, batch 1", 1, 9, 8, 13, 24, same(9, 3, 2), same(8, 3, 2)},
      {"7x7 stride 2 pad 3 3->16 on 16x15, batch 2", 2, 16, 15, 3, 16, explicit_pad(16, 7, 2, 3, 3),
       explicit_pad(15, 7, 2, 3, 3)},
      {"3x3 same 32->32 on 5x5, batch 2 (past 16 channels)", 2, 5, 5, 32, 32, same(5, 3, 1), same(5, 3, 1)},
  };
  return c;
}

TEST(OnednnBf16Forward, BothImplementationsMatchTheReference) {
  int ran = 0;
  for (const auto& cc : cases()) {
    SCOPED_TRACE(cc.name);
    const auto p = conv_params(cc);
    for (od::ForwardImpl impl : {od::ForwardImpl::first_offered, od::ForwardImpl::direct_jit}) {
      SCOPED_TRACE(impl == od::ForwardImpl::direct_jit ? "direct jit_bf16" : "brgconv (first offered)");
      const ForwardRun r = forward(p, impl);
      if (!r.ran) continue;  // no bfloat16 primitives on this CPU
      ++ran;
      EXPECT_TRUE(close(r.y, reference(p), "y"));
    }
  }
  if (ran == 0) std::cout << "note: oneDNN has no bfloat16 forward primitives here\n";
}

// Up to 16 input channels (a kernel past 1x1) the direct kernel, else brgconv; with AMX always
// brgconv (its AMX kernels).
TEST(OnednnBf16Forward, TheRuleSendsAtMost16ChannelsToTheDirectKernel) {
  for (const auto& cc : cases()) {
    SCOPED_TRACE(cc.name);
    const auto p = conv_params(cc);
    const bool direct = cc.c <= 16 && !od::has_amx();
    EXPECT_EQ(od::prefer_direct_jit_bf16(p), direct);
    const ForwardRun by_rule = forward(p, od::ForwardImpl::by_rule);
    const ForwardRun chosen =
        forward(p, direct ? od::ForwardImpl::direct_jit : od::ForwardImpl::first_offered);
    ASSERT_EQ(by_rule.ran, chosen.ran);
    if (!by_rule.ran) continue;
    EXPECT_EQ(by_rule.y, chosen.y);
  }
  k::Conv2DParams one_by_one = conv_params({"1x1 16->16", 2, 4, 4, 16, 16, valid(4, 1, 1), valid(4, 1, 1)});
  EXPECT_FALSE(od::prefer_direct_jit_bf16(one_by_one));
}

}  // namespace
