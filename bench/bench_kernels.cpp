// Micro-benchmarks of the convolution and max-pooling kernels on ResNet-50 shapes (batch 32, 64x64 input):
// the fast path (float: 1x1 as oneDNN matmuls, the 4x4 and 2x2 stages as row products, the rest as
// oneDNN convolutions; double: the same row products, else im2col + OpenBLAS; mixed_bfloat16: the
// float paths with bfloat16 operands) beside the reference loops on a small batch. Speed lives
// here, never in tests. GFLOP/s counts every tap, padding included (nominal): the row products
// skip the taps that fall on padding, so on the 2x2 and 4x4 stages they can exceed the FMA peak.
//   build/bench/reskit_bench_kernels --benchmark_filter=Forward
//
// --rules [reps]: every fixed rule of kernels/dispatch.cpp (and onednn_conv.cpp's choice of
// oneDNN implementation) measured both ways on the shapes it decides (ResNet-50 64x64 batch 32,
// ResNet-20 28x28 and 32x32 batch 128), the two paths called directly and timed alternately
// (A B, then B A, ...), medians of `reps` timings of at least 20 ms each: a markdown table for
// docs/cpu-rules.md. "A" is the path the rule picks for the shape, "B" the other one. Times are
// the process's CPU time per call (on a machine shared with other work, wall time measures the
// scheduler: with OMP_NUM_THREADS=1 CPU time is the path's own cost); B/A wall beside it.
//   build/bench/reskit_bench_kernels --rules 5
// A third argument runs only the rules whose name holds it (e.g. --rules 5 mixed).
//
// --dgemm [reps]: float64 gemm GFLOP/s on ResNet-50's (64x64, batch 32) float64 products,
// reskit's AVX-512 kernel (kernels/cpu/dgemm.h) against OpenBLAS's cblas_dgemm with the kernels it
// chose at load (run it again with OPENBLAS_CORETYPE=SkylakeX for those), timed alternately,
// medians of `reps` timings of at least 20 ms of process CPU time each (run with OMP_NUM_THREADS=1).
//   OMP_NUM_THREADS=1 build/bench/reskit_bench_kernels --dgemm 7
//
// --f64-layers [reps]: every convolution of a ResNet-50 64x64 batch-32 training step in float64,
// each pass through the dispatch as training runs it (medians of `reps` timings of process CPU
// time), times the number of such layers: where a float64 step's convolution time goes.
//   OMP_NUM_THREADS=1 build/bench/reskit_bench_kernels --f64-layers 3
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <fmt/core.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/conv_paths.h"
#include "kernels/cpu/dgemm.h"
#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/onednn_engine.h"
#include "kernels/cpu/winograd.h"
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

// ---- --rules ----

using k::conv_paths::Pass;

// The operands of one convolution, random.
template <class T>
struct Buffers {
  std::vector<T> x, w, b, y, dy, dx, dw, db;
  explicit Buffers(const k::Conv2DParams& p)
      : x(random<T>(p.n * p.h * p.w * p.c)),
        w(random<T>(p.r * p.s * p.c * p.k)),
        b(random<T>(p.k)),
        y(p.n * p.p * p.q * p.k),
        dy(random<T>(p.n * p.p * p.q * p.k)),
        dx(x.size()),
        dw(w.size()),
        db(p.k) {}
  k::conv_paths::Operands<T> operands(Pass pass) {
    k::conv_paths::Operands<T> o;
    if (pass == Pass::forward) o.x = x.data(), o.w = w.data(), o.b = b.data(), o.y = y.data();
    if (pass == Pass::backward_data) o.dy = dy.data(), o.w = w.data(), o.dx = dx.data();
    if (pass == Pass::backward_weights) o.x = x.data(), o.dy = dy.data(), o.dw = dw.data(), o.db = db.data();
    return o;
  }
};

// A call of one path: the entry of the dispatch list named `path`, or one of oneDNN's forward
// implementations forced ("brgconv (oneDNN's first)", "direct jit:avx512_core"). false: declined.
template <class T>
std::function<bool()> path_call(const std::string& path, Pass pass, const k::Conv2DParams& p,
                                Buffers<T>& buf) {
  namespace od = reskit::kernels::onednn;
  if constexpr (std::is_same_v<T, float>) {
    if (path == "brgconv (oneDNN's first)" || path == "direct jit:avx512_core") {
      const auto impl = path[0] == 'b' ? od::ForwardImpl::first_offered : od::ForwardImpl::direct_jit;
      return [&buf, p, impl] {
        return od::conv_forward_impl(p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), impl);
      };
    }
    if (path == "bf16 brgconv (oneDNN's first)" || path == "direct jit_bf16:avx512_core_bf16") {
      const auto impl = path[0] == 'b' ? od::ForwardImpl::first_offered : od::ForwardImpl::direct_jit;
      return [&buf, p, impl] {
        return od::conv_forward_bf16_impl(p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), impl);
      };
    }
    if (path == "oneDNN Winograd (forced)") {
      if (pass == Pass::forward)
        return [&buf, p] {
          return od::conv_forward_winograd(p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), false);
        };
      if (pass == Pass::backward_data)
        return [&buf, p] {
          return od::conv_backward_data_winograd(p, buf.dy.data(), buf.w.data(), buf.dx.data(), false);
        };
      return [&buf, p] {
        return od::conv_backward_weights_winograd(p, buf.x.data(), buf.dy.data(), buf.dw.data(),
                                                  buf.db.data(), false);
      };
    }
    if (path == "reskit Winograd F(2x2, 3x3) (forced)" || path == "reskit Winograd F(4x4, 3x3) (forced)") {
      const int m = path.find("F(2x2") != std::string::npos ? 2 : 4;
      if (pass == Pass::forward)
        return [&buf, p, m] {
          return od::own_winograd_forward(m, p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(),
                                          false);
        };
      if (pass == Pass::backward_data)
        return [&buf, p, m] {
          return od::own_winograd_backward_data(m, p, buf.dy.data(), buf.w.data(), buf.dx.data(), false);
        };
      return [&buf, p, m] {
        return od::own_winograd_backward_weights(m, p, buf.x.data(), buf.dy.data(), buf.dw.data(),
                                                 buf.db.data(), false);
      };
    }
    if (path == "reskit Winograd F(4x4, 3x3) fused (forced)") {
      if (pass == Pass::forward)
        return [&buf, p] {
          return od::own_winograd_fused_forward(p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(),
                                                false);
        };
      if (pass == Pass::backward_data)
        return [&buf, p] {
          return od::own_winograd_fused_backward_data(p, buf.dy.data(), buf.w.data(), buf.dx.data(), false);
        };
      return [&buf, p] {
        return od::own_winograd_fused_backward_weights(p, buf.x.data(), buf.dy.data(), buf.dw.data(),
                                                       buf.db.data(), false);
      };
    }
    if (path == "oneDNN backward-data primitive" || path == "forward over the flipped kernel") {
      const auto impl =
          path[0] == 'o' ? od::BackwardDataImpl::primitive : od::BackwardDataImpl::flipped_forward;
      return [&buf, p, impl] {
        return od::conv_backward_data_impl(p, buf.dy.data(), buf.w.data(), buf.dx.data(), impl);
      };
    }
  }
  // Mixed precision: either choice's list (conv_paths::MixedKernels), whichever this CPU runs.
  std::vector<std::span<const k::conv_paths::Path<T>>> lists{k::conv_paths::paths<T>(pass, p.bf16)};
  if constexpr (std::is_same_v<T, float>) {
    if (p.bf16) {
      lists = {k::conv_paths::mixed_paths(pass, k::conv_paths::MixedKernels::bfloat16),
               k::conv_paths::mixed_paths(pass, k::conv_paths::MixedKernels::float32)};
    }
  }
  for (const auto& list : lists) {
    for (const auto& entry : list) {
      if (entry.name == path) {
        const auto o = buf.operands(pass);
        return [&entry, p, o] { return entry.run(p, o); };
      }
    }
  }
  std::fprintf(stderr, "no path '%s'\n", path.c_str());
  std::exit(1);
}

double now(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct PairTimes {
  double a_ms = 0, b_ms = 0, a_cpu_ms = 0, b_cpu_ms = 0;
  bool a_declined = false, b_declined = false;
};

// Milliseconds per call of a and b (wall and process CPU time), timed alternately.
PairTimes time_pair(const std::function<bool()>& a, const std::function<bool()>& b, int reps) {
  PairTimes t;
  t.a_declined = !a() || !a();
  t.b_declined = !b() || !b();
  if (t.a_declined || t.b_declined) return t;
  auto calls_for = [](const std::function<bool()>& f) {
    const double t0 = now(CLOCK_MONOTONIC);
    f();
    const double once = now(CLOCK_MONOTONIC) - t0;
    return std::max(1, static_cast<int>(0.02 / std::max(once, 1e-6)));
  };
  const int na = calls_for(a), nb = calls_for(b);
  std::vector<double> aw, bw, ac, bc;
  auto timed = [](const std::function<bool()>& f, int n, std::vector<double>& wall,
                  std::vector<double>& cpu) {
    const double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; ++i) f();
    cpu.push_back((now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3 / n);
    wall.push_back((now(CLOCK_MONOTONIC) - w0) * 1e3 / n);
  };
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      timed(a, na, aw, ac);
      timed(b, nb, bw, bc);
    } else {
      timed(b, nb, bw, bc);
      timed(a, na, aw, ac);
    }
  }
  t.a_ms = median(aw), t.b_ms = median(bw), t.a_cpu_ms = median(ac), t.b_cpu_ms = median(bc);
  return t;
}

enum class Precision { float32, mixed, float64 };
struct RuleCase {
  const char* rule;
  const char* layer;
  Shape shape;
  int n;
  Precision precision;
  Pass pass;
  const char* a;              // the path the rule picks
  const char* b;              // the other
  bool kept_weights = false;  // inference: weights with a version (kept reordered across calls)
};

const char* pass_name(Pass p) {
  return p == Pass::forward ? "fwd" : p == Pass::backward_data ? "bwd-data" : "bwd-weights";
}
const char* precision_name(Precision p) {
  return p == Precision::float32 ? "f32" : p == Precision::mixed ? "bf16" : "f64";
}

std::vector<RuleCase> rule_cases() {
  std::vector<RuleCase> cases;
  const Pass passes[] = {Pass::forward, Pass::backward_data, Pass::backward_weights};
  // R1: 1x1 as matmul (N*P*Q >= 64) against oneDNN's convolution, ResNet-50's 1x1 shapes.
  const Shape r50_1x1[] = {
      {"s2 1x1 64->256 15x15", 15, 64, 256, 1, 1, 0},
      {"s2 1x1 256->64 15x15", 15, 256, 64, 1, 1, 0},
      {"s3 1x1/2 256->128 15->8", 15, 256, 128, 1, 2, 0},
      {"s3 1x1 128->512 8x8", 8, 128, 512, 1, 1, 0},
      {"s4 1x1/2 512->1024 8->4", 8, 512, 1024, 1, 2, 0},
      {"s4 1x1 256->1024 4x4", 4, 256, 1024, 1, 1, 0},
      {"s5 1x1 512->2048 2x2", 2, 512, 2048, 1, 1, 0},
      {"s5 1x1/2 1024->2048 4->2", 4, 1024, 2048, 1, 2, 0},
  };
  for (const auto& s : r50_1x1)
    for (Pass pass : passes) {
      cases.push_back(
          {"1x1 as matmul", s.name, s, 32, Precision::float32, pass, "1x1 as matmul", "oneDNN convolution"});
      cases.push_back({"1x1 as matmul", s.name, s, 32, Precision::mixed, pass, "1x1 as bf16 matmul",
                       "oneDNN bf16 convolution"});
    }
  // R1's threshold in inference (batch 1, kept weights): N*P*Q < 64 runs the convolution.
  for (const Shape& s : {r50_1x1[3], r50_1x1[5], r50_1x1[6]}) {
    const bool matmul = s.hw * s.hw / (s.stride * s.stride) >= 64;
    cases.push_back({"1x1 as matmul, N*P*Q >= 64 (batch 1)", s.name, s, 1, Precision::float32, Pass::forward,
                     matmul ? "1x1 as matmul" : "oneDNN convolution",
                     matmul ? "oneDNN convolution" : "1x1 as matmul", true});
  }
  // R2: tiny-image row products (P*Q <= 16, N >= 8; backward-data P*Q <= 4) against oneDNN.
  const Shape r50_3x3[] = {
      {"s5 3x3 512 2x2", 2, 512, 512, 3, 1, 1},
      {"s4 3x3 256 4x4", 4, 256, 256, 3, 1, 1},
      {"s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1},
  };
  for (const auto& s : r50_3x3)
    for (Pass pass : passes) {
      const int pq = s.hw * s.hw;
      const bool rows = pass == Pass::backward_data ? pq <= 4 : pq <= 16;
      for (Precision pr : {Precision::float32, Precision::mixed}) {
        const char* r = pr == Precision::float32 ? "tiny image row products" : "tiny image bf16 row products";
        const char* c = pr == Precision::float32 ? "oneDNN convolution" : "oneDNN bf16 convolution";
        cases.push_back({pass == Pass::backward_data ? "row products, P*Q <= 4" : "row products, P*Q <= 16",
                         s.name, s, 32, pr, pass, rows ? r : c, rows ? c : r});
      }
    }
  // R3: oneDNN's direct jit:avx512_core (3x3 over C <= 16, or P*Q <= 4) against its first offer
  // (brgconv), float32 forward.
  struct ShapeAt {
    Shape s;
    int n;
  };
  const ShapeAt direct[] = {
      {{"R20 stem 3x3 1->16 28x28", 28, 1, 16, 3, 1, 1}, 128},
      {{"R20 3x3 16 28x28", 28, 16, 16, 3, 1, 1}, 128},
      {{"R20 3x3/2 16->32 28->14", 28, 16, 32, 3, 2, 1}, 128},
      {{"R20 3x3 32 14x14", 14, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 64 7x7", 7, 64, 64, 3, 1, 1}, 128},
      {{"R20 stem 3x3 3->16 32x32", 32, 3, 16, 3, 1, 1}, 128},
      {{"R20 3x3 16 32x32", 32, 16, 16, 3, 1, 1}, 128},
      {{"R20 3x3/2 16->32 32->16", 32, 16, 32, 3, 2, 1}, 128},
      {{"R20 3x3 32 16x16", 16, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 64 8x8", 8, 64, 64, 3, 1, 1}, 128},
      {{"R50 conv1 7x7/2 3->64 70->32", 70, 3, 64, 7, 2, 0}, 32},
      {{"R50 s2 3x3 64 15x15", 15, 64, 64, 3, 1, 1}, 32},
      {{"R50 s5 3x3 512 2x2 (batch 1)", 2, 512, 512, 3, 1, 1}, 1},
  };
  // Which path is the rule's: the library's own rules (onednn_conv.h), not a copy of them.
  namespace od = reskit::kernels::onednn;
  const bool intel = od::cpu_is_intel();
  for (const auto& d : direct) {
    const bool jit = od::prefer_direct_jit(params(d.s, d.n));
    cases.push_back({intel ? "direct jit: C <= 32 (Intel) or P*Q <= 4" : "direct jit: C <= 16 or P*Q <= 4",
                     d.s.name, d.s, d.n, Precision::float32, Pass::forward,
                     jit ? "direct jit:avx512_core" : "brgconv (oneDNN's first)",
                     jit ? "brgconv (oneDNN's first)" : "direct jit:avx512_core"});
  }
  // R3c: the same choice for mixed precision's bfloat16 forward (prefer_direct_jit_bf16), with the
  // shadows a training step hands over.
  for (const auto& d : direct) {
    const bool jit = od::prefer_direct_jit_bf16(params(d.s, d.n));
    cases.push_back({"mixed: direct jit_bf16: C <= 16", d.s.name, d.s, d.n, Precision::mixed, Pass::forward,
                     jit ? "direct jit_bf16:avx512_core_bf16" : "bf16 brgconv (oneDNN's first)",
                     jit ? "bf16 brgconv (oneDNN's first)" : "direct jit_bf16:avx512_core_bf16"});
  }
  // R3b (onednn_conv.cpp's flipped_backward_data): float32 backward-data of a stride-1 "same"
  // convolution as a forward convolution of dy over the flipped kernel, on Intel CPUs up to 32
  // channels, against oneDNN's backward-data primitive. ResNet-20's 3x3 layers at batch 128.
  for (const auto& d : direct) {
    const Shape& s = d.s;
    if (s.r != 3 || s.stride != 1 || s.c != s.kout || s.c < 16 || s.hw <= 2) continue;
    const bool flipped = od::flipped_backward_data(params(s, d.n));
    cases.push_back({intel ? "flipped backward-data: Intel, C, K <= 32" : "flipped backward-data: Intel only",
                     s.name, s, d.n, Precision::float32, Pass::backward_data,
                     flipped ? "forward over the flipped kernel" : "oneDNN backward-data primitive",
                     flipped ? "oneDNN backward-data primitive" : "forward over the flipped kernel"});
  }
  // R6 (onednn_conv.cpp's winograd and winograd_weights): float32 3x3 stride-1 "same" layers through
  // oneDNN's Winograd kernels (forced outside the rules) against oneDNN's convolution, ResNet-20's
  // at batch 128 (28x28 and 32x32 inputs) and ResNet-50's at batch 32 and 1.
  {
    const ShapeAt wino[] = {
        {{"R20 3x3 16 28x28", 28, 16, 16, 3, 1, 1}, 128},
        {{"R20 3x3 32 14x14", 14, 32, 32, 3, 1, 1}, 128},
        {{"R20 3x3 64 7x7", 7, 64, 64, 3, 1, 1}, 128},
        {{"R20 3x3 16 32x32", 32, 16, 16, 3, 1, 1}, 128},
        {{"R20 3x3 32 16x16", 16, 32, 32, 3, 1, 1}, 128},
        {{"R20 3x3 64 8x8", 8, 64, 64, 3, 1, 1}, 128},
        {{"R50 s2 3x3 64 16x16", 16, 64, 64, 3, 1, 1}, 32},
        {{"R50 s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1}, 32},
        {{"R50 s4 3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 32},
        {{"R50 s5 3x3 512 2x2", 2, 512, 512, 3, 1, 1}, 32},
        {{"R50 s2 3x3 64 16x16 (batch 1)", 16, 64, 64, 3, 1, 1}, 1},
    };
    for (const auto& d : wino)
      for (Pass pass : passes) {
        const auto q = params(d.s, d.n);
        const bool on = pass == Pass::backward_weights ? od::winograd_weights(q) : od::winograd(q);
        cases.push_back({pass == Pass::backward_weights
                             ? "Winograd bwd-weights: C, K multiples of 16, >= 32 tiles"
                             : "Winograd: C, K multiples of 16, >= 32 tiles, C, K >= 32 or P*Q <= 784",
                         d.s.name, d.s, d.n, Precision::float32, pass,
                         on ? "oneDNN Winograd (forced)" : "oneDNN convolution",
                         on ? "oneDNN convolution" : "oneDNN Winograd (forced)"});
      }
  }
  // R7, R8 (winograd.cpp's own_winograd_f2, own_winograd_f4): float32 3x3 stride-1 "same" layers
  // through reskit's F(2x2, 3x3) or F(4x4, 3x3) (forced where the list runs another entry) against
  // the first other entry of the float32 list whose rule holds, on shapes on either side of the
  // rule. A: what the list runs first.
  const auto own_winograd = [&](const char* rule, const char* entry_name, const char* forced,
                                std::span<const ShapeAt> shapes) {
    for (const auto& d : shapes)
      for (Pass pass : passes) {
        const auto q = params(d.s, d.n);
        const bool on = k::conv_paths::first_applicable<float>(pass, q).name == entry_name;
        const char* other = "";  // the entry's name: a literal, so terminated
        for (const auto& entry : k::conv_paths::paths<float>(pass, false)) {
          if (entry.name != entry_name && entry.applies(q)) {
            other = entry.name.data();
            break;
          }
        }
        cases.push_back(
            {rule, d.s.name, d.s, d.n, Precision::float32, pass, on ? forced : other, on ? other : forced});
      }
  };
  // F(2x2): 4x4 outputs at several batches and channel counts, and 3x3, 8x8 and 2x2 outputs.
  const ShapeAt f2[] = {
      {{"R50 s4 3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 32},
      {{"3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 16},
      {{"3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 8},
      {{"3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 4},
      {{"3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 1},
      {{"3x3 64 4x4", 4, 64, 64, 3, 1, 1}, 32},
      {{"3x3 512 4x4", 4, 512, 512, 3, 1, 1}, 32},
      {{"3x3 256 3x3 (odd: partial tiles)", 3, 256, 256, 3, 1, 1}, 32},
      {{"R50 s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1}, 32},
      {{"R50 s5 3x3 512 2x2", 2, 512, 512, 3, 1, 1}, 32},
  };
  own_winograd("F(2x2, 3x3): 3x3 same, P = Q = 4, N >= 4, after F(4x4)", "reskit Winograd F(2x2, 3x3)",
               "reskit Winograd F(2x2, 3x3) (forced)", f2);
  // F(4x4): ResNet-50's at batch 32, ResNet-20's at batch 128, and 8 tiles.
  const ShapeAt f4[] = {
      {{"R50 s2 3x3 64 15x15", 15, 64, 64, 3, 1, 1}, 32},
      {{"R50 s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1}, 32},
      {{"R50 s4 3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 32},
      {{"R20 3x3 16 28x28", 28, 16, 16, 3, 1, 1}, 128},
      {{"R20 3x3 32 14x14", 14, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 64 7x7", 7, 64, 64, 3, 1, 1}, 128},
      {{"R20 3x3 32 16x16", 16, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 64 8x8", 8, 64, 64, 3, 1, 1}, 128},
      {{"R50 s3 3x3 128 8x8 (batch 2)", 8, 128, 128, 3, 1, 1}, 2},
  };
  own_winograd("F(4x4, 3x3): 3x3 same, P, Q >= 4, C, K >= 64 multiples of 16, >= 32 tiles of 4x4",
               "reskit Winograd F(4x4, 3x3)", "reskit Winograd F(4x4, 3x3) (forced)", f4);
  // R9 (winograd.cpp's own_winograd_fused): F(4x4) block by block over 16 and 32 channels, and on
  // either side of the rule (64 channels, 8 tiles).
  const ShapeAt fused[] = {
      {{"R20 3x3 16 28x28", 28, 16, 16, 3, 1, 1}, 128},  {{"R20 3x3 32 14x14", 14, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 16 32x32", 32, 16, 16, 3, 1, 1}, 128},  {{"R20 3x3 32 16x16", 16, 32, 32, 3, 1, 1}, 128},
      {{"R20 3x3 64 7x7", 7, 64, 64, 3, 1, 1}, 128},     {{"R50 s2 3x3 64 15x15", 15, 64, 64, 3, 1, 1}, 32},
      {{"3x3 32 8x8 (batch 2)", 8, 32, 32, 3, 1, 1}, 2},
  };
  own_winograd("F(4x4, 3x3) fused: 3x3 same, P, Q >= 4, C, K 16 or 32, >= 32 tiles of 4x4, AVX-512",
               "reskit Winograd F(4x4, 3x3) fused", "reskit Winograd F(4x4, 3x3) fused (forced)", fused);
  // R5 (conv_paths::mixed_kernels_for, by CPU features): mixed precision's bfloat16 products
  // against the float32 kernel of the same path on bfloat16-rounded operands, widened from the
  // shadows as a training step hands them over (bf16 x bf16 products are exact in float32: only
  // the summation order differs). ResNet-50's shapes at batch 32 and ResNet-20's at batch 128.
  {
    const Shape mixed_shapes[] = {
        {"R50 conv1 7x7/2 3->64 70->32", 70, 3, 64, 7, 2, 0},
        {"s2 3x3 64 15x15", 15, 64, 64, 3, 1, 1},
        r50_1x1[0],
        r50_1x1[1],
        r50_1x1[3],
        r50_1x1[4],
        r50_3x3[2],
        r50_3x3[1],
        r50_3x3[0],
    };
    auto mixed_pair = [&](const Shape& s, int n, Pass pass) {
      const bool matmul = s.r == 1 && s.pad == 0;
      const int pq = ((s.hw + 2 * s.pad - s.r) / s.stride + 1) * ((s.hw + 2 * s.pad - s.r) / s.stride + 1);
      const bool rows = !matmul && (pass == Pass::backward_data ? pq <= 4 : pq <= 16);
      const char* a = matmul ? "1x1 as bf16 matmul"
                      : rows ? "tiny image bf16 row products"
                             : "oneDNN bf16 convolution";
      const char* b = matmul ? "1x1 as matmul on bf16-rounded operands"
                      : rows ? "tiny image row products on bf16-rounded operands"
                             : "oneDNN convolution on bf16-rounded operands";
      cases.push_back({"mixed: bf16 kernel vs float32 kernel", s.name, s, n, Precision::mixed, pass, a, b});
    };
    for (const auto& s : mixed_shapes)
      for (Pass pass : passes) mixed_pair(s, 32, pass);
    const Shape r20[] = {{"R20 3x3 16 28x28", 28, 16, 16, 3, 1, 1},
                         {"R20 3x3 32 14x14", 14, 32, 32, 3, 1, 1},
                         {"R20 3x3 64 7x7", 7, 64, 64, 3, 1, 1}};
    for (const auto& s : r20)
      for (Pass pass : passes) mixed_pair(s, 128, pass);
  }
  // R6: mixed precision's backward-weights, reskit's AVX512-BF16 kernel against oneDNN's bfloat16
  // convolution (jit_bf16), with the shadows a training step hands over: R3's shapes (ResNet-20's
  // Fashion-MNIST and CIFAR layers at batch 128, ResNet-50's at batch 32) and two more; R6b: the
  // same kernel against the bfloat16 matmul on 1x1 layers, where the matmul comes first (its
  // backward-weights product reads x transposed). A: the path the library's rule picks for the
  // shape (the bfloat16 list's), B: the other.
  {
    const char* const own = "reskit AVX512-BF16 backward-weights";
    const k::conv_paths::ScopedMixedKernels bf16_list(k::conv_paths::MixedKernels::bfloat16);
    const auto own_against = [&](const char* rule, const char* other, const ShapeAt& o) {
      k::Conv2DParams q = params(o.s, o.n);
      q.bf16 = true;
      const bool own_first = k::conv_paths::first_applicable<float>(Pass::backward_weights, q).name == own;
      cases.push_back({rule, o.s.name, o.s, o.n, Precision::mixed, Pass::backward_weights,
                       own_first ? own : other, own_first ? other : own});
    };
    const ShapeAt more[] = {
        {{"R20 3x3/2 32->64 14->7", 14, 32, 64, 3, 2, 1}, 128},
        {{"R50 s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1}, 32},
    };
    for (const auto& list : {std::span<const ShapeAt>(direct), std::span<const ShapeAt>(more)}) {
      for (const auto& o : list)
        own_against("mixed: own bf16 backward-weights", "oneDNN bf16 convolution", o);
    }
    const ShapeAt pointwise[] = {{r50_1x1[0], 32},
                                 {r50_1x1[1], 32},
                                 {{"s2 1x1 64->64 15x15", 15, 64, 64, 1, 1, 0}, 32},
                                 {r50_1x1[3], 32},
                                 {r50_1x1[3], 64},
                                 {r50_1x1[3], 128},
                                 {r50_1x1[5], 32},
                                 {r50_1x1[6], 32},
                                 {{"R20 1x1/2 16->32 28->14", 28, 16, 32, 1, 2, 0}, 128},
                                 {{"R20 1x1/2 32->64 14->7", 14, 32, 64, 1, 2, 0}, 128}};
    for (const auto& o : pointwise)
      own_against("mixed: 1x1 backward-weights: matmul or own", "1x1 as bf16 matmul", o);
  }
  // R4: float64 (BLAS): 1x1 stride 1 as one gemm, tiny images as row products, against im2col.
  for (Pass pass : passes) {
    cases.push_back({"f64 1x1 as one gemm", r50_1x1[0].name, r50_1x1[0], 32, Precision::float64, pass,
                     "1x1 as one gemm (BLAS)", "im2col + gemm"});
    for (const auto& s : r50_3x3) {
      const bool rows = s.hw * s.hw <= 16;
      cases.push_back({"f64 row products, P*Q <= 16", s.name, s, 32, Precision::float64, pass,
                       rows ? "tiny image row products (BLAS)" : "im2col + gemm",
                       rows ? "im2col + gemm" : "tiny image row products (BLAS)"});
    }
  }
  return cases;
}

template <class T>
PairTimes run_case(const RuleCase& rc, int reps) {
  k::Conv2DParams p = params(rc.shape, rc.n);
  p.bf16 = rc.precision == Precision::mixed;
  if (rc.kept_weights) p.weights_version = 1;
  Buffers<T> buf(p);
  // The mixed-precision comparison: x, dy and w with their bfloat16 shadows, as a training step
  // hands them over (producers round once), so the bfloat16 path converts nothing per call.
  std::vector<std::uint16_t> xb, dyb, wb;
  if constexpr (std::is_same_v<T, float>) {
    if (std::strncmp(rc.rule, "mixed:", 6) == 0) {
      xb.resize(buf.x.size()), dyb.resize(buf.dy.size()), wb.resize(buf.w.size());
      k::round_to_bf16(buf.x.data(), static_cast<std::int64_t>(xb.size()), xb.data());
      k::round_to_bf16(buf.dy.data(), static_cast<std::int64_t>(dyb.size()), dyb.data());
      k::round_to_bf16(buf.w.data(), static_cast<std::int64_t>(wb.size()), wb.data());
      p.x_bf16 = xb.data(), p.dy_bf16 = dyb.data(), p.w_bf16 = wb.data();
    }
  }
  const auto a = path_call<T>(rc.a, rc.pass, p, buf), b = path_call<T>(rc.b, rc.pass, p, buf);
  return time_pair(a, b, reps);
}

int rules_main(int reps, const char* only) {
  fmt::print("oneDNN ISA: {}; threads: {}; medians of {} alternated timings (CPU ms per call)\n\n",
             k::cpu_isa(), omp_get_max_threads(), reps);
  fmt::print(
      "| rule | layer | N | prec | pass | A: the rule's path | A ms | B: the other | B ms | B/A | B/A wall "
      "|\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& rc : rule_cases()) {
    if (only != nullptr && std::strstr(rc.rule, only) == nullptr) continue;
    const PairTimes t =
        rc.precision == Precision::float64 ? run_case<double>(rc, reps) : run_case<float>(rc, reps);
    auto ms = [](double v, bool declined) {
      return declined ? std::string("declined") : fmt::format("{:.3f}", v);
    };
    const bool both = !t.a_declined && !t.b_declined;
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", rc.rule, rc.layer, rc.n,
               precision_name(rc.precision), pass_name(rc.pass), rc.a, ms(t.a_cpu_ms, t.a_declined), rc.b,
               ms(t.b_cpu_ms, t.b_declined), both ? fmt::format("{:.2f}", t.b_cpu_ms / t.a_cpu_ms) : "-",
               both ? fmt::format("{:.2f}", t.b_ms / t.a_ms) : "-");
    std::fflush(stdout);
  }
  return 0;
}

// ---- --dgemm ----

struct GemmShape {
  const char* layer;
  bool ta, tb;
  std::int64_t m, n, k;
  double beta;
};

int dgemm_main(int reps) {
  namespace cpu = reskit::kernels::cpu;
  if (!cpu::dgemm_avx512_available()) {
    fmt::print(stderr, "no AVX-512 on this CPU: reskit's float64 gemm does not run here\n");
    return 1;
  }
  const GemmShape shapes[] = {
      {"15x15 3x3 64 fwd (im2col)", false, false, 7200, 64, 576, 0.0},
      {"15x15 1x1 64->256 fwd", false, false, 7200, 256, 64, 0.0},
      {"8x8 3x3 128 fwd (im2col)", false, false, 2048, 128, 1152, 0.0},
      {"4x4 1x1 256->1024 fwd", false, false, 512, 1024, 256, 0.0},
      {"15x15 3x3 64 bwd-data (dy wT)", false, true, 7200, 576, 64, 0.0},
      {"15x15 3x3 64 bwd-weights (colT dy)", true, false, 576, 64, 7200, 0.0},
      {"2x2 3x3 512 row product (beta 1)", false, false, 32, 512, 1536, 1.0},
  };
  fmt::print(
      "OpenBLAS kernels: {}; threads: {}; medians of {} alternated timings (GFLOP/s of process CPU time)\n\n",
      k::blas_core(), omp_get_max_threads(), reps);
  fmt::print(
      "| shape | M×N×K (op) | reskit avx512 | OpenBLAS {} | reskit / OpenBLAS |\n|---|---|---|---|---|\n",
      k::blas_core());
  for (const GemmShape& s : shapes) {
    const std::int64_t lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    const auto a = random<double>(static_cast<std::size_t>(s.m * s.k));
    const auto b = random<double>(static_cast<std::size_t>(s.k * s.n));
    std::vector<double> c(static_cast<std::size_t>(s.m * s.n), 0.0);
    const std::function<bool()> ours = [&] {
      cpu::dgemm_avx512(s.ta, s.tb, s.m, s.n, s.k, 1.0, a.data(), lda, b.data(), ldb, s.beta, c.data(), s.n);
      return true;
    };
    const std::function<bool()> openblas = [&] {
      cblas_dgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<blasint>(s.m), static_cast<blasint>(s.n), static_cast<blasint>(s.k), 1.0,
                  a.data(), static_cast<blasint>(lda), b.data(), static_cast<blasint>(ldb), s.beta, c.data(),
                  static_cast<blasint>(s.n));
      return true;
    };
    const PairTimes t = time_pair(ours, openblas, reps);
    const double gflop = 2.0 * static_cast<double>(s.m * s.n * s.k) * 1e-9;
    fmt::print("| {} | {}×{}×{} ({}{}) | {:.1f} | {:.1f} | {:.2f} |\n", s.layer, s.m, s.n, s.k,
               s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', gflop / (t.a_cpu_ms * 1e-3), gflop / (t.b_cpu_ms * 1e-3),
               t.b_cpu_ms / t.a_cpu_ms);
    std::fflush(stdout);
  }
  return 0;
}

// ---- --f64-layers ----

int f64_layers_main(int reps) {
  struct Layer {
    Shape shape;
    int count;           // such layers in ResNet-50
    bool backward_data;  // conv1's input gradient is never asked for
  };
  const Layer layers[] = {
      {{"conv1 7x7/2 3->64 70->32", 70, 3, 64, 7, 2, 0}, 1, false},
      {{"s2 1x1 64->64 15x15", 15, 64, 64, 1, 1, 0}, 1, true},
      {{"s2 3x3 64 15x15", 15, 64, 64, 3, 1, 1}, 3, true},
      {{"s2 1x1 64->256 15x15", 15, 64, 256, 1, 1, 0}, 4, true},
      {{"s2 1x1 256->64 15x15", 15, 256, 64, 1, 1, 0}, 2, true},
      {{"s3 1x1/2 256->128 15->8", 15, 256, 128, 1, 2, 0}, 1, true},
      {{"s3 1x1/2 256->512 15->8", 15, 256, 512, 1, 2, 0}, 1, true},
      {{"s3 3x3 128 8x8", 8, 128, 128, 3, 1, 1}, 4, true},
      {{"s3 1x1 128->512 8x8", 8, 128, 512, 1, 1, 0}, 4, true},
      {{"s3 1x1 512->128 8x8", 8, 512, 128, 1, 1, 0}, 3, true},
      {{"s4 1x1/2 512->256 8->4", 8, 512, 256, 1, 2, 0}, 1, true},
      {{"s4 1x1/2 512->1024 8->4", 8, 512, 1024, 1, 2, 0}, 1, true},
      {{"s4 3x3 256 4x4", 4, 256, 256, 3, 1, 1}, 6, true},
      {{"s4 1x1 256->1024 4x4", 4, 256, 1024, 1, 1, 0}, 6, true},
      {{"s4 1x1 1024->256 4x4", 4, 1024, 256, 1, 1, 0}, 5, true},
      {{"s5 1x1/2 1024->512 4->2", 4, 1024, 512, 1, 2, 0}, 1, true},
      {{"s5 1x1/2 1024->2048 4->2", 4, 1024, 2048, 1, 2, 0}, 1, true},
      {{"s5 3x3 512 2x2", 2, 512, 512, 3, 1, 1}, 3, true},
      {{"s5 1x1 512->2048 2x2", 2, 512, 2048, 1, 1, 0}, 3, true},
      {{"s5 1x1 2048->512 2x2", 2, 2048, 512, 1, 1, 0}, 2, true},
  };
  fmt::print("float64 gemm: {}; threads: {}; medians of {} timings (process CPU ms per call)\n\n",
             k::float64_gemm(), omp_get_max_threads(), reps);
  fmt::print(
      "| layer | count | fwd ms | bwd-data ms | bwd-weights ms | GFLOP/s | ms per step (× count) | wall ms "
      "per "
      "step |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  double step_ms = 0, step_gflop = 0, step_wall = 0;
  for (const Layer& l : layers) {
    const k::Conv2DParams p = params(l.shape, 32);
    Buffers<double> buf(p);
    double wall_ms = 0;  // the wall-clock medians of this layer's passes, summed
    auto time = [&](const std::function<void()>& f) {
      f();
      std::vector<double> cpu, wall;
      for (int r = 0; r < reps; ++r) {
        const double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
        f();
        cpu.push_back((now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3);
        wall.push_back((now(CLOCK_MONOTONIC) - w0) * 1e3);
      }
      wall_ms += median(wall);
      return median(cpu);
    };
    const double fwd =
        time([&] { k::conv2d_forward<double>(p, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data()); });
    const double data =
        l.backward_data
            ? time([&] { k::conv2d_backward_data<double>(p, buf.dy.data(), buf.w.data(), buf.dx.data()); })
            : 0.0;
    const double weights = time([&] {
      k::conv2d_backward_weights<double>(p, buf.x.data(), buf.dy.data(), buf.dw.data(), buf.db.data());
    });
    const double gflop =
        2e-9 * static_cast<double>(p.n * p.p * p.q * p.k * p.r * p.s * p.c) * (l.backward_data ? 3 : 2);
    const double ms = fwd + data + weights;
    step_ms += ms * l.count, step_gflop += gflop * l.count, step_wall += wall_ms * l.count;
    fmt::print("| {} | {} | {:.2f} | {} | {:.2f} | {:.1f} | {:.1f} | {:.1f} |\n", l.shape.name, l.count, fwd,
               l.backward_data ? fmt::format("{:.2f}", data) : std::string("-"), weights, gflop / (ms * 1e-3),
               ms * l.count, wall_ms * l.count);
    std::fflush(stdout);
  }
  fmt::print("| all convolutions of a step | | | | | {:.1f} | {:.1f} | {:.1f} |\n",
             step_gflop / (step_ms * 1e-3), step_ms, step_wall);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--rules") == 0)
    return rules_main(argc >= 3 ? std::atoi(argv[2]) : 5, argc >= 4 ? argv[3] : nullptr);
  if (argc >= 2 && std::strcmp(argv[1], "--f64-layers") == 0)
    return f64_layers_main(argc >= 3 ? std::atoi(argv[2]) : 3);
  if (argc >= 2 && std::strcmp(argv[1], "--dgemm") == 0)
    return dgemm_main(argc >= 3 ? std::atoi(argv[2]) : 7);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
