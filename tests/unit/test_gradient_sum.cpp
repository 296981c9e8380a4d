// Layer::backward_sum: where a tensor feeds two nodes (a residual block's output), the model hands
// both gradients to the producer, and Activation("relu") adds them inside its mask pass. The
// results must be those of the sum followed by the backward, bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "layers/util.h"
#include "reskit/reskit.h"

using namespace reskit;

namespace {
Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype) {
  Tensor t(shape, dtype);
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> d;
  for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, d(gen));
  return t;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(),
                     static_cast<std::size_t>(a.numel()) * dtype_size(a.dtype())) == 0;
}

// The fused pass against activation_backward of the sum, on values that test the edges: z at 0
// and -0, gradients that cancel, signed zeros, infinities and NaN.
TEST(GradientSum, ReluOfSumHasTheBitsOfTheSumThenRelu) {
  for (DType dtype : {DType::float32, DType::float64}) {
    const std::int64_t n = 70000;  // past the parallel grain: the OpenMP loop runs
    Tensor z = random_tensor({n}, 1, dtype), a = random_tensor({n}, 2, dtype),
           b = random_tensor({n}, 3, dtype);
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    const double edges_z[] = {0.0, -0.0, 1.0, -1.0, 2.0, nan, 3.0, 1.0};
    const double edges_a[] = {1.0, 1.0, -0.0, -2.0, 2.0, 1.0, inf, nan};
    const double edges_b[] = {-1.0, 2.0, 0.0, -0.0, -2.0, 1.0, -inf, 1.0};
    for (int i = 0; i < 8; ++i) z.set(i, edges_z[i]), a.set(i, edges_a[i]), b.set(i, edges_b[i]);
    const Tensor fused = detail::relu_backward_sum(z, a, b);
    Tensor sum(z.shape(), dtype);
    for (std::int64_t i = 0; i < n; ++i) {
      if (dtype == DType::float32) {
        sum.data<float>()[i] = a.data<float>()[i] + b.data<float>()[i];
      } else {
        sum.data<double>()[i] = a.data<double>()[i] + b.data<double>()[i];
      }
    }
    const Tensor plain = detail::activation_backward(detail::Act::relu, z, z, sum);
    EXPECT_TRUE(same_bits(fused, plain)) << dtype_name(dtype);
  }
}

// Two residual blocks whose outputs each feed the next convolution and the next Add: their ReLU
// as Activation("relu") (backward_sum fused) or as ReLU() (the Layer default: sum, then backward)
// gives the same input gradient and parameter gradients, bit for bit.
TEST(GradientSum, ResidualNetworkGradientsMatchTheSumThenBackward) {
  for (DType dtype : {DType::float32, DType::float64}) {
    auto run = [&](bool activation) {
      clear_session();
      set_floatx(dtype);
      set_random_seed(5);
      auto relu = [&](const Tensor& t) { return activation ? Activation("relu")(t) : ReLU()(t); };
      Tensor in = Input({6, 6, 3});
      Tensor t = relu(BatchNormalization()(Conv2D(4, {3, 3}, {.padding = "same"})(in)));
      for (int block = 0; block < 2; ++block) {
        Tensor h = relu(BatchNormalization()(Conv2D(4, {3, 3}, {.padding = "same"})(t)));
        h = BatchNormalization()(Conv2D(4, {3, 3}, {.padding = "same"})(h));
        t = relu(Add()({h, t}));
      }
      Tensor out = Dense(5, {.activation = "softmax"})(GlobalAveragePooling2D()(t));
      Model model(in, out);
      model.forward(random_tensor({4, 6, 6, 3}, 7, dtype), true);
      std::vector<Tensor> got = model.backward(random_tensor({4, 5}, 8, dtype));
      for (Param* p : model.trainable_parameters()) got.push_back(p->grad.clone());
      return got;
    };
    const auto fused = run(true), plain = run(false);
    ASSERT_EQ(fused.size(), plain.size());
    for (std::size_t i = 0; i < fused.size(); ++i)
      EXPECT_TRUE(same_bits(fused[i], plain[i])) << dtype_name(dtype) << " tensor " << i;
  }
  set_floatx(DType::float32);
}
}  // namespace
