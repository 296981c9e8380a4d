// The oneDNN engine and streams, kept weights, bfloat16 conversions and float column sums that the
// oneDNN paths share (onednn_engine.h).
#include "kernels/cpu/onednn_engine.h"

#include <algorithm>

#include "kernels/ref/bf16.h"

namespace reskit::kernels::onednn {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

const char* effective_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_mic:
      return "avx512_mic";
    case dnnl::cpu_isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    case dnnl::cpu_isa::all:
      break;
  }
  return "unknown";
}

bool has_amx() {
  static const bool amx = dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx;
  return amx;
}

bool cpu_is_intel() {
  static const bool intel = [] {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") != 0;
#else
    return false;
#endif
  }();
  return intel;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

// ---- weights kept across calls ----
//
// Inference reorders (or converts) each layer's weights once instead of on every call (at batch 1
// the reorders cost about half of ResNet-50's forward), and a training step's forward and
// backward share one (the optimizer's update gives the weights a new version every step). At most
// kKeptLimit bytes are kept.
namespace {
constexpr std::size_t kKeptLimit = std::size_t{1} << 30;
struct KeptWeights {
  std::uint64_t version = 0;
  std::size_t bytes = 0;
  std::unique_ptr<std::byte, decltype(&std::free)> data{nullptr, &std::free};
};
std::mutex g_kept_mutex;
std::map<std::pair<const void*, const float*>, KeptWeights> g_kept;
std::size_t g_kept_bytes = 0;
}  // namespace

std::pair<float*, bool> kept_weights(const void* e, std::size_t bytes, const float* w,
                                     std::uint64_t version) {
  std::lock_guard lock(g_kept_mutex);
  auto it = g_kept.find({e, w});
  // The same address may come back holding other weights of another size (freed, allocated again):
  // a copy of the wrong size is dropped, never written past its end.
  if (it != g_kept.end() && it->second.bytes != bytes) {
    g_kept_bytes -= it->second.bytes;
    g_kept.erase(it);
    it = g_kept.end();
  }
  if (it == g_kept.end()) {
    if (g_kept_bytes + bytes > kKeptLimit) {
      g_kept.clear();
      g_kept_bytes = 0;
    }
    it = g_kept.try_emplace({e, w}).first;
    it->second.data.reset(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
    if (!it->second.data) throw std::bad_alloc();
    it->second.bytes = bytes;
    g_kept_bytes += bytes;
  }
  const bool valid = it->second.version == version;
  it->second.version = version;  // valid once the caller has reordered into it
  return {reinterpret_cast<float*>(it->second.data.get()), valid};
}

// ---- float32 -> bfloat16 ----

namespace {
struct ToBf16 {
  dnnl::reorder prim;
};
}  // namespace

void convert_to_bf16(const float* v, std::int64_t n, std::uint16_t* out) {
  if (n <= 0) return;
  const memory::desc from({n}, f32, tag::a), to({n}, bf16, tag::a);
  const auto* e = cached<ToBf16>(n, [&]() -> std::optional<ToBf16> {
    return ToBf16{dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to))};
  });
  if (!e) throw dnnl::error(dnnl_unimplemented, "no float32 to bfloat16 reorder");
  memory in(from, engine(), const_cast<float*>(v));
  memory bits(to, engine(), out);
  e->prim.execute(stream(), in, bits);
  stream().wait();
}

void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out) { convert_to_bf16(x, n, out); }

const std::uint16_t* bf16_copy(const float* v, std::int64_t n, int which) {
  thread_local Scratch scratch[3];
  auto* out =
      static_cast<std::uint16_t*>(scratch[which].get(sizeof(std::uint16_t) * std::max<std::int64_t>(n, 1)));
  convert_to_bf16(v, n, out);
  return out;
}

const std::uint16_t* x_in_bf16(const Conv2DParams& p, const float* x) {
  return p.x_bf16 != nullptr ? p.x_bf16 : bf16_copy(x, p.n * p.h * p.w * p.c, 0);
}

const std::uint16_t* dy_in_bf16(const Conv2DParams& p, const float* dy) {
  return p.dy_bf16 != nullptr ? p.dy_bf16 : bf16_copy(dy, p.n * p.p * p.q * p.k, 2);
}

const std::uint16_t* bf16_weights(const Conv2DParams& p, const float* w) {
  if (p.w_bf16 != nullptr) return p.w_bf16;
  const std::int64_t n = p.r * p.s * p.c * p.k;
  if (p.weights_version == 0) return bf16_copy(w, n, 1);
  static const int kBf16Copy = 0;  // the kept-weights key of these copies
  auto [kept, valid] = kept_weights(&kBf16Copy, sizeof(std::uint16_t) * n, w, p.weights_version);
  if (!valid) convert_to_bf16(w, n, reinterpret_cast<std::uint16_t*>(kept));
  return reinterpret_cast<const std::uint16_t*>(kept);
}

// ---- bfloat16 -> float32: the operands of mixed precision on the float32 kernels ----

namespace {
struct FromBf16 {
  dnnl::reorder prim;
};
// out[0..n) = the float32 values of the bfloat16 bits[0..n) (exact; oneDNN's reorder, threaded).
void widen_bf16(const std::uint16_t* bits, std::int64_t n, float* out) {
  if (n <= 0) return;
  const memory::desc from({n}, bf16, tag::a), to({n}, f32, tag::a);
  const auto* e = cached<FromBf16>(n, [&]() -> std::optional<FromBf16> {
    return FromBf16{dnnl::reorder(dnnl::reorder::primitive_desc(engine(), from, engine(), to))};
  });
  if (!e) throw dnnl::error(dnnl_unimplemented, "no bfloat16 to float32 reorder");
  memory in(from, engine(), const_cast<std::uint16_t*>(bits));
  memory values(to, engine(), out);
  e->prim.execute(stream(), in, values);
  stream().wait();
}
// v rounded to bfloat16, as float32 values, from its bits when the caller has them.
const float* rounded_copy(const float* v, const std::uint16_t* bits, std::int64_t n, int which) {
  thread_local Scratch scratch[3];
  auto* out = static_cast<float*>(scratch[which].get(sizeof(float) * std::max<std::int64_t>(n, 1)));
  widen_bf16(bits != nullptr ? bits : bf16_copy(v, n, which), n, out);
  return out;
}
// Rounded weights kept by address while their version is unchanged (as kept_weights, in a map of
// their own so that the float32 kernels' kept reorders never drop a copy in use).
struct RoundedWeights {
  std::uint64_t version = 0;
  Scratch data;
};
std::mutex g_rounded_mutex;
std::map<const float*, RoundedWeights> g_rounded;
std::size_t g_rounded_bytes = 0;
}  // namespace

const float* x_rounded(const Conv2DParams& p, const float* x) {
  return rounded_copy(x, p.x_bf16, p.n * p.h * p.w * p.c, 0);
}

const float* dy_rounded(const Conv2DParams& p, const float* dy) {
  return rounded_copy(dy, p.dy_bf16, p.n * p.p * p.q * p.k, 2);
}

const float* w_rounded(const Conv2DParams& p, const float* w) {
  const std::int64_t n = p.r * p.s * p.c * p.k;
  if (p.weights_version == 0) return rounded_copy(w, p.w_bf16, n, 1);
  const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(std::max<std::int64_t>(n, 1));
  std::lock_guard lock(g_rounded_mutex);
  auto it = g_rounded.find(w);
  if (it == g_rounded.end()) {
    if (g_rounded_bytes + bytes > kKeptLimit) {
      g_rounded.clear();
      g_rounded_bytes = 0;
    }
    it = g_rounded.try_emplace(w).first;
    g_rounded_bytes += bytes;
  }
  auto* out = static_cast<float*>(it->second.data.get(bytes));
  if (it->second.version != p.weights_version) {
    widen_bf16(p.w_bf16 != nullptr ? p.w_bf16 : bf16_copy(w, n, 1), n, out);
    it->second.version = p.weights_version;
  }
  return out;
}

// ---- bias gradients ----

namespace {
inline float as_float(float v) { return v; }
inline float as_float(std::uint16_t bf) { return ref::from_bf16_bits(bf); }

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define RESKIT_AVX512_CLONE __attribute__((target_clones("avx512f", "default")))
#else
#define RESKIT_AVX512_CLONE
#endif
constexpr std::int64_t kBand = 256;  // the widest band of columns one thread sums
// db[k0 + k] = Σ_m dy[m, k0 + k] for k < width, each column summed in row order. Built for
// AVX-512 too (the 256 accumulators are 16 registers' worth there): a sum has no products, so the
// two builds give the same bits.
template <class E>
RESKIT_AVX512_CLONE void band_sums(std::int64_t rows, std::int64_t cols, std::int64_t k0, std::int64_t width,
                                   const E* __restrict dy, float* __restrict db) {
  float acc[kBand] = {};
  for (std::int64_t m = 0; m < rows; ++m) {
    const E* __restrict row = dy + m * cols + k0;
    for (std::int64_t k = 0; k < width; ++k) acc[k] += as_float(row[k]);
  }
  for (std::int64_t k = 0; k < width; ++k) db[k0 + k] = acc[k];
}

// Each thread takes bands of columns and streams its part of every row. Bands are 256 columns
// wide, halved (down to 16) until every thread has one: ResNet-50's 64- and 256-channel 1x1
// convolutions were one band, summed by one thread while the others waited. Each column is summed
// in row order whatever the band, so the width changes no bits.
template <class E>
void column_sums_f32_of(std::int64_t rows, std::int64_t cols, const E* dy, float* db) {
  const bool parallel = rows * cols > kParallelGrain;
  const std::int64_t threads = parallel ? omp_get_max_threads() : 1;
  std::int64_t band = kBand;
  while (band > 16 && (cols + band - 1) / band < threads) band /= 2;
  const std::int64_t bands = (cols + band - 1) / band;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t b = 0; b < bands; ++b) {
    const std::int64_t k0 = b * band;
    band_sums(rows, cols, k0, std::min(band, cols - k0), dy, db);
  }
}
}  // namespace

void column_sums_f32(std::int64_t rows, std::int64_t cols, const float* dy, float* db) {
  column_sums_f32_of(rows, cols, dy, db);
}
void column_sums_f32(std::int64_t rows, std::int64_t cols, const std::uint16_t* dy, float* db) {
  column_sums_f32_of(rows, cols, dy, db);
}

}  // namespace reskit::kernels::onednn
