// The CPU description and FMA peak of `reskit bench --report` (bench_report.h).
#include "bench_report.h"

#include <fmt/core.h>
#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "reskit/runtime.h"

namespace reskit::cli {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  auto value = [](const std::string& l) {
    const auto colon = l.find(':');
    return colon == std::string::npos || colon + 2 > l.size() ? std::string() : l.substr(colon + 2);
  };
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 && name == "unknown") name = value(line);
    if (line.rfind("cpu family", 0) == 0 && family.empty()) family = value(line);
    if (line.rfind("model\t", 0) == 0 && model.empty()) model = value(line);
    if (line.empty() && name != "unknown") break;
  }
  if (!family.empty()) name += " (family " + family + " model " + model + ")";
  return name;
}

namespace {

// Each loop: 12 independent accumulators (latency 4 cycles × 2 FMA ports needs 8), made opaque to
// the compiler before the loop so that it keeps them apart in registers. Returns the FLOPs done.
constexpr std::int64_t kInner = 1 << 14;

#define RESKIT_FMA_LOOP(VEC, OPERAND, SET1, FMA, ADD, STORE, ELEM, LANES, FLOPS_PER_LANE, A, B)              \
  OPERAND a = A, b = B;                                                                                      \
  VEC c0 = SET1(0.50), c1 = SET1(0.51), c2 = SET1(0.52), c3 = SET1(0.53), c4 = SET1(0.54), c5 = SET1(0.55),  \
      c6 = SET1(0.56), c7 = SET1(0.57), c8 = SET1(0.58), c9 = SET1(0.59), c10 = SET1(0.60),                  \
      c11 = SET1(0.61);                                                                                      \
  __asm__ volatile(""                                                                                        \
                   : "+v"(a), "+v"(b), "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6), \
                     "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));                                    \
  for (std::int64_t r = 0; r < reps; ++r) {                                                                  \
    c0 = FMA(c0, a, b), c1 = FMA(c1, a, b), c2 = FMA(c2, a, b), c3 = FMA(c3, a, b);                          \
    c4 = FMA(c4, a, b), c5 = FMA(c5, a, b), c6 = FMA(c6, a, b), c7 = FMA(c7, a, b);                          \
    c8 = FMA(c8, a, b), c9 = FMA(c9, a, b), c10 = FMA(c10, a, b), c11 = FMA(c11, a, b);                      \
  }                                                                                                          \
  VEC s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));                                 \
  s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                                               \
  ELEM sink[LANES];                                                                                          \
  STORE(sink, s);                                                                                            \
  __asm__ volatile("" : : "r"(sink) : "memory");                                                             \
  return 12.0 * LANES * FLOPS_PER_LANE * static_cast<double>(reps)

// vfmadd: 2 FLOPs per lane.
__attribute__((target("avx512f"))) double loop_avx512_f32(std::int64_t reps) {
  RESKIT_FMA_LOOP(__m512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, float, 16,
                  2, _mm512_set1_ps(0.999f), _mm512_set1_ps(1e-4f));
}
__attribute__((target("avx512f"))) double loop_avx512_f64(std::int64_t reps) {
  RESKIT_FMA_LOOP(__m512d, __m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, double,
                  8, 2, _mm512_set1_pd(0.999), _mm512_set1_pd(1e-4));
}
// vdpbf16ps: each float32 lane adds two bfloat16 products, 4 FLOPs per lane.
__attribute__((target("avx512f,avx512bf16"))) double loop_avx512_bf16(std::int64_t reps) {
  RESKIT_FMA_LOOP(__m512, __m512bh, _mm512_set1_ps, _mm512_dpbf16_ps, _mm512_add_ps, _mm512_storeu_ps, float,
                  16, 4, (__m512bh)_mm512_set1_epi16(0x3f80), (__m512bh)_mm512_set1_epi16(0x3800));
}
__attribute__((target("avx2,fma"))) double loop_avx2_f32(std::int64_t reps) {
  RESKIT_FMA_LOOP(__m256, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, float, 8,
                  2, _mm256_set1_ps(0.999f), _mm256_set1_ps(1e-4f));
}
__attribute__((target("avx2,fma"))) double loop_avx2_f64(std::int64_t reps) {
  RESKIT_FMA_LOOP(__m256d, __m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, double,
                  4, 2, _mm256_set1_pd(0.999), _mm256_set1_pd(1e-4));
}
#undef RESKIT_FMA_LOOP

// Seconds this thread has run on a CPU (not the time it waited for one: the machine may be shared).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// GFLOP/s of `loop` run by `threads` threads at once for about `seconds` each: per thread its
// FLOPs over its own CPU time (so other processes on a shared machine do not lower it), the best
// of kRuns runs per thread, summed over the threads. (The best of three summed runs read 168 and
// 90 GFLOP/s in two calls on a loaded machine: a core's FMA units can be shared for a while,
// which thread CPU time does not see; each thread's best of more, shorter runs is steadier.)
constexpr int kRuns = 9;
double peak_of(const std::function<double(std::int64_t)>& loop, int threads, double seconds) {
  // Calibrate the repetitions on one thread so that one run lasts about `seconds`.
  std::int64_t reps = kInner;
  for (;;) {
    const double t0 = thread_cpu_seconds();
    loop(reps);
    const double s = thread_cpu_seconds() - t0;
    if (s > seconds / 4 || reps > (std::int64_t{1} << 40)) {
      reps =
          std::max<std::int64_t>(kInner, static_cast<std::int64_t>(static_cast<double>(reps) * seconds / s));
      break;
    }
    reps *= 4;
  }
  std::vector<double> best(static_cast<std::size_t>(threads), 0.0);
  for (int run = 0; run < kRuns; ++run) {
#pragma omp parallel num_threads(threads)
    {
      const double t0 = thread_cpu_seconds();
      const double flops = loop(reps);
      const double rate = flops / (thread_cpu_seconds() - t0) * 1e-9;
      double& mine = best[static_cast<std::size_t>(omp_get_thread_num())];
      mine = std::max(mine, rate);
    }
  }
  double sum = 0;
  for (double b : best) sum += b;
  return sum;
}

}  // namespace

double core_to_core_round_trip_ns() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return 0;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  if (cpus.size() < 2) return 0;
  const auto pin = [](int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
  };
  cpu_set_t before;
  if (pthread_getaffinity_np(pthread_self(), sizeof before, &before) != 0) return 0;
  // One pair of pinned threads; the clock starts after a warm-up (a thread's first move to its
  // CPU can take milliseconds), then five segments are timed.
  constexpr int kWarmup = 20000, kSegment = 20000, kSegments = 5;
  constexpr int kTotal = kWarmup + kSegment * kSegments;
  // On a busy machine a trip may wait for a time slice: past a second the measurement is given up.
  // The line the threads pass sits alone in its 64 bytes; the flags are read once every 1024 spins.
  struct alignas(64) Slot {
    std::atomic<int> value{0};
    char rest[64 - sizeof(std::atomic<int>)];
  };
  static_assert(sizeof(Slot) == 64);
  Slot line;
  std::atomic<bool> pinned{true}, stop{false};
  const auto await = [&](int want) {
    for (unsigned spin = 1; line.value.load(std::memory_order_acquire) != want; ++spin)
      if (spin % 1024 == 0 && stop.load(std::memory_order_relaxed)) return false;
    return true;
  };
  std::thread other([&] {
    if (!pin(cpus[1])) pinned = false;
    for (int i = 0; i < kTotal && await(2 * i + 1); ++i)
      line.value.store(2 * i + 2, std::memory_order_release);
  });
  if (!pin(cpus[0])) pinned = false;
  std::vector<double> runs;
  const auto start = std::chrono::steady_clock::now();
  auto t0 = start;
  for (int i = 0; i < kTotal; ++i) {
    if (i % 1000 == 0 && std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) break;
    if (i >= kWarmup && (i - kWarmup) % kSegment == 0) {
      const auto t = std::chrono::steady_clock::now();
      if (i > kWarmup) runs.push_back(std::chrono::duration<double, std::nano>(t - t0).count() / kSegment);
      t0 = t;
    }
    line.value.store(2 * i + 1, std::memory_order_release);
    if (!await(2 * i + 2)) break;
    if (i + 1 == kTotal)
      runs.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
                     kSegment);
  }
  stop = true;
  other.join();
  pthread_setaffinity_np(pthread_self(), sizeof before, &before);
  if (!pinned || runs.size() < kSegments) return 0;
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

FmaPeak measure_fma_peak(int threads, double seconds) {
  FmaPeak peak;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    peak.vector_isa = "avx512";
    peak.float32 = peak_of(loop_avx512_f32, threads, seconds);
    peak.float64 = peak_of(loop_avx512_f64, threads, seconds);
    if (__builtin_cpu_supports("avx512bf16")) peak.bf16 = peak_of(loop_avx512_bf16, threads, seconds);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    peak.vector_isa = "avx2+fma";
    peak.float32 = peak_of(loop_avx2_f32, threads, seconds);
    peak.float64 = peak_of(loop_avx2_f64, threads, seconds);
  } else {
    peak.vector_isa = "none";
  }
  return peak;
}

double forward_flops_per_image(const Model& model) {
  double flops = 0;
  for (const auto& node : model.nodes()) {
    const std::string& kind = node.layer->class_name();
    if (kind != "Conv2D" && kind != "Dense") continue;
    // Conv2D: each output position multiplies the whole kernel (R·S·C/groups·K); Dense: each
    // position of its input's inner dimensions the kernel (C·K).
    const double kernel = static_cast<double>(node.layer->param("kernel").value.numel());
    double positions = 1;
    for (std::size_t d = 1; d + 1 < node.output_shape.size(); ++d) positions *= node.output_shape[d];
    flops += 2.0 * kernel * positions;
  }
  return flops;
}

void print_report(const Model& model, bool training, const std::string& dtype, int threads,
                  double images_per_s, double round_trip_ns) {
  const FmaPeak peak = measure_fma_peak(threads);
  fmt::print("cpu: {}\n", cpu_model_name());
  fmt::print("onednn_isa: {}\n", cpu_isa());
  fmt::print("openblas_kernels: {}\n", blas_kernels());
  const std::string f64 = float64_gemm();
  if (f64.rfind("reskit", 0) == 0) {
    fmt::print("float64_gemm: {} (OpenBLAS {} not used for float64)\n", f64, blas_kernels());
  } else {
    fmt::print("float64_gemm: {}\n", f64);
  }
  fmt::print("fma_peak_gflops: float32={:.1f} float64={:.1f} bf16={:.1f} threads={} loops={}\n", peak.float32,
             peak.float64, peak.bf16, threads, peak.vector_isa);
  if (round_trip_ns > 0)
    fmt::print("core_to_core_round_trip_ns: {:.0f} (the first two CPUs allowed, before the run)\n",
               round_trip_ns);
  const double per_image = forward_flops_per_image(model) * (training ? 3 : 1);
  const double achieved = per_image * images_per_s * 1e-9;
  double of = peak.float32;
  std::string against = "float32";
  if (dtype == "float64") of = peak.float64, against = "float64";
  if (dtype == "mixed_bfloat16" && peak.bf16 > 0) of = peak.bf16, against = "bf16";
  fmt::print("gflop_per_image={:.4f} achieved_gflops={:.1f} peak_fraction={:.3f} (of the {} peak)\n",
             per_image * 1e-9, achieved, of > 0 ? achieved / of : 0.0, against);
}

}  // namespace reskit::cli
