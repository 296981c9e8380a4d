// The CPU description and FMA peak of `reskit bench --report` (bench_report.h).
#include "bench_report.h"

#include <fmt/core.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <functional>

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

// Each loop: `kChains` independent accumulators, so the FMA units never wait on a result (latency
// 4 cycles × 2 ports at most needs 8; 12 leaves room). Returns FLOPs done.
constexpr int kChains = 12;
constexpr std::int64_t kInner = 1 << 14;

__attribute__((target("avx512f"))) double loop_avx512_f32(std::int64_t reps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.5f + 0.01f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.0001f);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __asm__ volatile(""
                     : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                       "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
  }
  float sink[16];
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  _mm512_storeu_ps(sink, s);
  __asm__ volatile("" : : "r"(sink) : "memory");
  return 2.0 * 16 * kChains * static_cast<double>(reps);
}

__attribute__((target("avx512f"))) double loop_avx512_f64(std::int64_t reps) {
  __m512d acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_pd(0.5 + 0.01 * i);
  const __m512d a = _mm512_set1_pd(0.999), b = _mm512_set1_pd(0.0001);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_pd(acc[i], a, b);
    __asm__ volatile(""
                     : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                       "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
  }
  double sink[8];
  __m512d s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_pd(s, acc[i]);
  _mm512_storeu_pd(sink, s);
  __asm__ volatile("" : : "r"(sink) : "memory");
  return 2.0 * 8 * kChains * static_cast<double>(reps);
}

// vdpbf16ps: 16 lanes, each two bfloat16 products added to a float32 accumulator.
__attribute__((target("avx512f,avx512bf16"))) double loop_avx512_bf16(std::int64_t reps) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.5f + 0.01f * static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3800);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __asm__ volatile(""
                     : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                       "+v"(acc[6]), "+v"(acc[7]), "+v"(acc[8]), "+v"(acc[9]), "+v"(acc[10]), "+v"(acc[11]));
  }
  float sink[16];
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  _mm512_storeu_ps(sink, s);
  __asm__ volatile("" : : "r"(sink) : "memory");
  return 4.0 * 16 * kChains * static_cast<double>(reps);
}

__attribute__((target("avx2,fma"))) double loop_avx2_f32(std::int64_t reps) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.5f + 0.01f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __asm__ volatile(""
                     : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]), "+x"(acc[5]),
                       "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]), "+x"(acc[10]), "+x"(acc[11]));
  }
  float sink[8];
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  _mm256_storeu_ps(sink, s);
  __asm__ volatile("" : : "r"(sink) : "memory");
  return 2.0 * 8 * kChains * static_cast<double>(reps);
}

__attribute__((target("avx2,fma"))) double loop_avx2_f64(std::int64_t reps) {
  __m256d acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_pd(0.5 + 0.01 * i);
  const __m256d a = _mm256_set1_pd(0.999), b = _mm256_set1_pd(0.0001);
  for (std::int64_t r = 0; r < reps; ++r) {
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_pd(acc[i], a, b);
    __asm__ volatile(""
                     : "+x"(acc[0]), "+x"(acc[1]), "+x"(acc[2]), "+x"(acc[3]), "+x"(acc[4]), "+x"(acc[5]),
                       "+x"(acc[6]), "+x"(acc[7]), "+x"(acc[8]), "+x"(acc[9]), "+x"(acc[10]), "+x"(acc[11]));
  }
  double sink[4];
  __m256d s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_pd(s, acc[i]);
  _mm256_storeu_pd(sink, s);
  __asm__ volatile("" : : "r"(sink) : "memory");
  return 2.0 * 4 * kChains * static_cast<double>(reps);
}

// Seconds this thread has run on a CPU (not the time it waited for one: the machine may be shared).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// GFLOP/s of `loop` run by `threads` threads at once for about `seconds` each: per thread its
// FLOPs over its own CPU time (so other processes on a shared machine do not lower it), summed
// over the threads; the best of three runs.
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
  double best = 0;
  for (int run = 0; run < 3; ++run) {
    double rate = 0;
#pragma omp parallel num_threads(threads) reduction(+ : rate)
    {
      const double t0 = thread_cpu_seconds();
      const double flops = loop(reps);
      rate += flops / (thread_cpu_seconds() - t0) * 1e-9;
    }
    best = std::max(best, rate);
  }
  return best;
}

}  // namespace

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
                  double images_per_s) {
  const FmaPeak peak = measure_fma_peak(threads);
  fmt::print("cpu: {}\n", cpu_model_name());
  fmt::print("onednn_isa: {}\n", cpu_isa());
  fmt::print("fma_peak_gflops: float32={:.1f} float64={:.1f} bf16={:.1f} threads={} loops={}\n", peak.float32,
             peak.float64, peak.bf16, threads, peak.vector_isa);
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
