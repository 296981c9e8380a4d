// Micro-benchmarks of the convolution and max-pooling kernels on ResNet-50 shapes (batch 32, 64x64 input):
// the fast path (float: 1x1 as oneDNN matmuls, the 4x4 and 2x2 stages as row products, the rest as
// oneDNN convolutions; double: the same row products, else im2col + OpenBLAS; mixed_bfloat16: the
// float paths with bfloat16 operands) beside the reference loops on a small batch. Speed lives
// here, never in tests. GFLOP/s counts every tap, padding included (nominal): the row products
// skip the taps that fall on padding, so on the 2x2 and 4x4 stages they can exceed the FMA peak.
//   build/bench/reskit_bench_kernels --benchmark_filter=Forward
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ref/conv2d.h"

namespace k = reskit::kernels;

namespace {
// name, H=W, C, K, kernel, stride, pad (before = after)
struct Shape {
  const char* name;
  int hw, c, kout, r, stride, pad;
};
const Shape kShapes[] = {
    {"conv1_7x7s2", 70, 3, 64, 7, 2, 0},     {"stage2_1x1", 15, 64, 256, 1, 1, 0},
    {"stage2_3x3", 15, 64, 64, 3, 1, 1},     {"stage3_3x3", 8, 128, 128, 3, 1, 1},
    {"stage4_1x1s2", 8, 512, 1024, 1, 2, 0}, {"stage4_3x3", 4, 256, 256, 3, 1, 1},
    {"stage5_3x3", 2, 512, 512, 3, 1, 1},
};

k::Conv2DParams params(const Shape& s, int n) {
  k::Conv2DParams p;
  p.n = n, p.h = p.w = s.hw, p.c = s.c, p.k = s.kout, p.r = p.s = s.r;
  p.stride_h = p.stride_w = s.stride;
  p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = s.pad;
  p.p = p.q = (s.hw + 2 * s.pad - s.r) / s.stride + 1;
  return p;
}

template <class T>
std::vector<T> random(std::size_t n) {
  std::vector<T> v(n);
  std::mt19937 g(0);
  std::normal_distribution<double> d;
  for (auto& x : v) x = static_cast<T>(d(g));
  return v;
}

template <class T>
void forward(benchmark::State& state, const Shape& s, bool reference, bool bf16 = false) {
  auto p = params(s, reference ? 2 : 32);
  p.bf16 = bf16;
  auto x = random<T>(p.n * p.h * p.w * p.c), w = random<T>(p.r * p.s * p.c * p.k), b = random<T>(p.k);
  std::vector<T> y(p.n * p.p * p.q * p.k);
  for (auto _ : state) {
    if (reference) {
      k::ref::conv2d_forward(p, x.data(), w.data(), b.data(), y.data());
    } else {
      k::conv2d_forward<T>(p, x.data(), w.data(), b.data(), y.data());
    }
    benchmark::DoNotOptimize(y.data());
  }
  const double flops = 2.0 * p.n * p.p * p.q * p.k * p.r * p.s * p.c;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class T>
void backward(benchmark::State& state, const Shape& s, bool bf16 = false) {
  auto p = params(s, 32);
  p.bf16 = bf16;
  auto x = random<T>(p.n * p.h * p.w * p.c), w = random<T>(p.r * p.s * p.c * p.k);
  auto dy = random<T>(p.n * p.p * p.q * p.k);
  std::vector<T> dx(x.size()), dw(w.size()), db(p.k);
  for (auto _ : state) {
    k::conv2d_backward_data<T>(p, dy.data(), w.data(), dx.data());
    k::conv2d_backward_weights<T>(p, x.data(), dy.data(), dw.data(), db.data());
    benchmark::DoNotOptimize(dx.data());
  }
  const double flops = 4.0 * p.n * p.p * p.q * p.k * p.r * p.s * p.c;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ResNet-50's max pooling (3x3 stride 2 on conv1's 32x32x64 output, batch 32), backward.
template <class T>
void max_pool_backward(benchmark::State& state) {
  k::Pool2DParams p;
  p.n = 32, p.h = p.w = 32, p.c = 64, p.r = p.s = 3, p.stride_h = p.stride_w = 2;
  p.p = p.q = (32 - 3) / 2 + 1;
  const auto x = random<T>(static_cast<std::size_t>(p.n * p.h * p.w * p.c));
  const auto dy = random<T>(static_cast<std::size_t>(p.n * p.p * p.q * p.c));
  std::vector<T> dx(x.size());
  for (auto _ : state) {
    k::max_pool2d_backward<T>(p, x.data(), dy.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
  }
}

int register_all() {
  benchmark::RegisterBenchmark("MaxPoolBackward/float", max_pool_backward<float>)
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("MaxPoolBackward/double", max_pool_backward<double>)
      ->Unit(benchmark::kMillisecond);
  for (const auto& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("Forward/float/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { forward<float>(st, s, false); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Forward/double/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { forward<double>(st, s, false); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Forward/float/reference_batch2/") + s.name).c_str(),
                                 [s](benchmark::State& st) { forward<float>(st, s, true); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Backward/float/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { backward<float>(st, s); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Backward/double/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { backward<double>(st, s); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Forward/mixed_bfloat16/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { forward<float>(st, s, false, true); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("Backward/mixed_bfloat16/fast/") + s.name).c_str(),
                                 [s](benchmark::State& st) { backward<float>(st, s, true); })
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}
const int registered = register_all();
}  // namespace

BENCHMARK_MAIN();
