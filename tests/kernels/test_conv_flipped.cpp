// The float32 backward-data of stride-1 "same" convolutions as a forward convolution over the
// flipped kernel (kernels/cpu/onednn_conv_flipped.cpp) against the reference on awkward shapes
// (13 and 24 channels, R != S, 5x5, batch 1 and 9, images smaller than the kernel), and the rule
// that sends a convolution there (flipped_backward_data in onednn_conv.cpp): the shapes it takes
// get the flipped forward's bits, the others oneDNN's backward-data primitive's.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/onednn_engine.h"
#include "kernels/kernel_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/conv2d.h"

namespace {

namespace k = reskit::kernels;
namespace od = reskit::kernels::onednn;
using namespace reskit::kernels::test_util;

struct DataRun {
  std::vector<float> dx;
  bool ran = false;
};
DataRun backward_data(const k::Conv2DParams& p, od::BackwardDataImpl impl) {
  const auto dy = random_vector<float>(p.n * p.p * p.q * p.k, 4);
  const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 2, 0.2);
  DataRun r{nan_vector<float>(p.n * p.h * p.w * p.c)};
  r.ran = od::conv_backward_data_impl(p, dy.data(), w.data(), r.dx.data(), impl);
  return r;
}
std::vector<float> reference(const k::Conv2DParams& p) {
  const auto dy = random_vector<float>(p.n * p.p * p.q * p.k, 4);
  const auto w = random_vector<float>(p.r * p.s * p.c * p.k, 2, 0.2);
  auto dx = nan_vector<float>(p.n * p.h * p.w * p.c);
  k::ref::conv2d_backward_data<float>(p, dy.data(), w.data(), dx.data());
  return dx;
}

TEST(ConvFlippedBackwardData, MatchesTheReference) {
  const ConvCase cases[] = {
      {"3x3 same 13->24 on 5x6, batch 9", 9, 5, 6, 13, 24, same(5, 3, 1), same(6, 3, 1)},
      {"3x3 same 24->13 on 2x2, batch 1 (image smaller than the kernel)", 1, 2, 2, 24, 13, same(2, 3, 1),
       same(2, 3, 1)},
      {"5x3 same 3->13 on 4x7, batch 9", 9, 4, 7, 3, 13, same(4, 5, 1), same(7, 3, 1)},
      {"1x3 same 16->16 on 3x9, batch 2", 2, 3, 9, 16, 16, same(3, 1, 1), same(9, 3, 1)},
      {"5x5 same 32->32 on 7x7, batch 9", 9, 7, 7, 32, 32, same(7, 5, 1), same(7, 5, 1)},
      {"3x3 same 1->16 on 6x6, batch 9 (one input channel)", 9, 6, 6, 1, 16, same(6, 3, 1), same(6, 3, 1)},
  };
  for (const auto& cc : cases) {
    SCOPED_TRACE(cc.name);
    const auto p = conv_params(cc);
    const DataRun r = backward_data(p, od::BackwardDataImpl::flipped_forward);
    ASSERT_TRUE(r.ran);
    EXPECT_TRUE(close(r.dx, reference(p), "dx"));
  }
}

// On an Intel CPU ResNet-20's stride-1 3x3 layers of 16 and 32 channels take the flipped forward;
// 64 channels, stride 2, "valid" padding and an even kernel keep the primitive. Elsewhere (not
// measured there) every shape keeps the primitive.
TEST(ConvFlippedBackwardData, TheRuleSendsSameStride1LayersOfAtMost32ChannelsThere) {
  struct Expect {
    ConvCase cc;
    bool flipped;
  };
  const Expect cases[] = {
      {{"R20 3x3 16 on 28x28 (batch 2)", 2, 28, 28, 16, 16, same(28, 3, 1), same(28, 3, 1)}, true},
      {{"R20 3x3 32 on 14x14 (batch 2)", 2, 14, 14, 32, 32, same(14, 3, 1), same(14, 3, 1)}, true},
      {{"R20 3x3 64 on 7x7 (batch 2)", 2, 7, 7, 64, 64, same(7, 3, 1), same(7, 3, 1)}, false},
      {{"3x3 same 32->40 on 6x6", 2, 6, 6, 32, 40, same(6, 3, 1), same(6, 3, 1)}, false},
      {{"3x3 stride 2 16->32 on 28x28", 2, 28, 28, 16, 32, same(28, 3, 2), same(28, 3, 2)}, false},
      {{"3x3 valid 16->16 on 8x8", 2, 8, 8, 16, 16, valid(8, 3, 1), valid(8, 3, 1)}, false},
      {{"2x2 same 16->16 on 6x6 (pad bottom/right only)", 2, 6, 6, 16, 16, same(6, 2, 1), same(6, 2, 1)},
       false},
  };
  for (const auto& e : cases) {
    SCOPED_TRACE(e.cc.name);
    const auto p = conv_params(e.cc);
    const DataRun by_rule = backward_data(p, od::BackwardDataImpl::by_rule);
    const bool flipped = e.flipped && od::cpu_is_intel();
    const DataRun chosen =
        backward_data(p, flipped ? od::BackwardDataImpl::flipped_forward : od::BackwardDataImpl::primitive);
    ASSERT_TRUE(by_rule.ran);
    ASSERT_TRUE(chosen.ran);
    EXPECT_EQ(by_rule.dx, chosen.dx);
    EXPECT_TRUE(close(by_rule.dx, reference(p), "dx"));
  }
}

}  // namespace
