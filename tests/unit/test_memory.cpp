// Memory limits: a weight or a training run larger than the memory there is fails with a
// ResourceError naming it, before anything large is allocated; a model that fits is unaffected.
// set_memory_limit makes "the memory there is" small and exact; the sizes without it are absurd
// (terabytes) so that no machine has them.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "reskit/reskit.h"
#include "reskit/training/memory.h"

using namespace reskit;

namespace {

// Restores the memory limit and the session around each test.
class Memory : public ::testing::Test {
 protected:
  void SetUp() override { clear_session(); }
  void TearDown() override { set_memory_limit(0); }
};

void expect_resource_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a ResourceError holding '" << parts.front() << "'";
  } catch (const ResourceError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected a ResourceError, got: " << e.what();
  }
}

// 8x8x3 -> Conv2D(8) -> ReLU -> GlobalAveragePooling2D -> Dense(3, softmax).
Model tiny(int height = 8) {
  Tensor in = Input({height, height, 3});
  Tensor x = Conv2D(8, {3, 3}, {.padding = "same", .name = "conv"})(in);
  x = Activation("relu")(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense(3, {.activation = "softmax", .name = "fc"})(x);
  Model m(in, x, "tiny");
  m.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
  return m;
}

TEST_F(Memory, AvailableMemoryIsPositiveAndCapped) {
  const std::int64_t free = available_memory();
  EXPECT_GT(free, 0);
  set_memory_limit(std::int64_t{5} << 20);
  EXPECT_EQ(available_memory(), std::int64_t{5} << 20);
  set_memory_limit(0);
  EXPECT_GT(available_memory(), std::int64_t{5} << 20);
  EXPECT_THROW(set_memory_limit(-1), ConfigError);
  EXPECT_EQ(format_bytes(512), "512 bytes");
  EXPECT_EQ(format_bytes(std::int64_t{3} << 29), "1.5 GiB");
}

// A Dense of 2^20 x 2^20 float32 weights (4 TiB, 8 with the gradient): refused, named, before the
// allocation (which would throw std::bad_alloc or get the process killed).
TEST_F(Memory, HugeWeightIsRefusedBeforeAllocation) {
  Tensor in = Input({1 << 20});
  expect_resource_error([&] { Dense(1 << 20, {.name = "huge"})(in); },
                        {"Dense 'huge'", "weight 'huge/kernel:0' of shape (1048576, 1048576)",
                         "with its gradient", "needs 8.0 TiB", "of memory available"});
}

TEST_F(Memory, WeightBeyondTheLimitIsRefused) {
  set_memory_limit(std::int64_t{8} << 20);
  Tensor in = Input({2048});
  // 2048 x 2048 float32 = 16 MiB, 32 with the gradient
  expect_resource_error(
      [&] { Dense(2048, {.name = "wide"})(in); },
      {"Dense 'wide'", "(2048, 2048)", "needs 32.0 MiB, more than the 8.0 MiB of memory available"});
  set_memory_limit(0);
  Tensor x = Dense(2048, {.name = "wide2"})(in);  // fits without the limit
  EXPECT_EQ(x.shape(), (Shape{-1, 2048}));
}

TEST_F(Memory, EstimateCountsLayerOutputsAndParameters) {
  Model m = tiny();
  const MemoryEstimate train = estimate_memory(m, 10, true), infer = estimate_memory(m, 10, false);
  // parameters: conv 3*3*3*8 + 8 = 224, dense 8*3 + 3 = 27; float32; x4 when training
  EXPECT_EQ(train.parameters, 251 * 4 * 4);
  EXPECT_EQ(infer.parameters, 251 * 4);
  // outputs per sample: input 192, conv 512, relu 512, pooling 8, dense 3
  EXPECT_EQ(train.activations, (192 + 512 + 512 + 8 + 3) * 10 * 4);
  EXPECT_EQ(infer.activations, 512 * 10 * 4);  // the largest
}

// A training run whose layer outputs cannot fit: fit refuses it before the first step, naming
// the model, the batch size, the estimate and the memory available; a smaller batch trains.
TEST_F(Memory, FitRefusesARunThatCannotFit) {
  Model m = tiny(64);  // 64 x 64 x 8 float32 conv and relu outputs: 128 KiB each per sample
  const int n = 64;
  std::vector<float> v(static_cast<std::size_t>(n) * 64 * 64 * 3, 0.5f);
  std::vector<std::int32_t> labels(n, 1);
  Dataset data = Dataset::from_float("ones", {n, 64, 64, 3}, std::move(v), std::move(labels), 3, {});
  set_memory_limit(std::int64_t{4} << 20);
  const auto before = m.optimizer().iterations();
  expect_resource_error([&] { fit(m, data, {.epochs = 1, .batch_size = 64, .verbose = 0}); },
                        {"model 'tiny': training at batch size 64 needs at least", "more than the 4.0 MiB",
                         "smaller batch size"});
  EXPECT_EQ(m.optimizer().iterations(), before);  // no step ran
  expect_resource_error([&] { predict(m, data, 64); }, {"model 'tiny': inference at batch size 64"});
  fit(m, data, {.epochs = 1, .batch_size = 4, .verbose = 0});
  EXPECT_EQ(m.optimizer().iterations(), before + 16);
}

}  // namespace
