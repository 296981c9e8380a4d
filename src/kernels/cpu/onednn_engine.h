// What the oneDNN paths share (Debian's libdnnl 2.6, v2 descriptor API): one engine, one stream
// per thread, per-thread scratch buffers, the primitive caches (created once per shape, kept in
// mutex-protected maps), the kept copies of weights (keyed by Conv2DParams::weights_version), the
// float32 -> bfloat16 conversions, and the float bias-gradient sums. Private to kernels/cpu: the
// paths themselves are declared in onednn_conv.h, onednn_pointwise.h and tiny_image.h, and chosen
// in kernels/dispatch.cpp.
#pragma once

#include <omp.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <type_traits>
#include <utility>

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;
constexpr auto bf16 = memory::data_type::bf16;

dnnl::engine& engine();
// One stream per thread: the products of a column band (tiny_image.cpp) run on several at once.
dnnl::stream& stream();

// A growable 64-byte-aligned per-thread buffer (weights in oneDNN's chosen layout, gathered rows,
// bfloat16 copies).
class Scratch {
 public:
  void* get(std::size_t bytes) {
    if (bytes > size_) {
      const std::size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
      data_.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, rounded)));
      if (!data_) throw std::bad_alloc();
      size_ = rounded;
    }
    return data_.get();
  }

 private:
  static constexpr std::size_t kAlign = 64;
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

// The ISA oneDNN dispatches its kernels on (dnnl::get_effective_cpu_isa), by name.
const char* effective_isa_name();
// Whether oneDNN runs AMX tile kernels here (avx512_core_amx: the CPU has them and the OS lets
// user code use them).
bool has_amx();
// Whether the CPU's vendor is Intel (cpuid "GenuineIntel"; read once). Rules measured on one
// vendor only follow it (docs/cpu-rules.md).
bool cpu_is_intel();

// oneDNN's reference implementations are far slower than im2col + BLAS: treat them as "no primitive".
inline bool is_reference_impl(const dnnl::primitive_desc_base& pd) {
  return std::strncmp(pd.impl_info_str(), "ref", 3) == 0;
}

// Whether a primitive with a residual (a binary-add post-op over a tensor of dst's layout,
// Conv2DParams::residual) is one whose sums tests/kernels checked: the brgemm kernels (brgconv,
// brg matmul) and the AVX-512 direct and 1x1 jit convolutions. oneDNN 2.6's gemm-based convolution
// (x64:gemm:jit) adds the wrong elements of it where a 1x1 convolution has padding.
inline bool adds_residual_correctly(const dnnl::primitive_desc_base& pd) {
  const char* impl = pd.impl_info_str();
  return std::strncmp(impl, "brg", 3) == 0 || std::strncmp(impl, "jit:avx512", 10) == 0 ||
         std::strncmp(impl, "jit_1x1:avx512", 14) == 0;
}

// The epilogue of a forward product as post-ops: + r (a tensor of dst's layout, `dst`) when
// residual, then max(0, ·) when relu.
inline dnnl::primitive_attr forward_epilogue(const memory::desc& dst, bool residual, bool relu) {
  dnnl::post_ops ops;
  if (residual) ops.append_binary(dnnl::algorithm::binary_add, dst);  // post-op 0
  if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}
// The residual's memory among a forward_epilogue primitive's arguments (none when null).
template <class Args>
void add_residual_arg(Args& args, const memory::desc& dst, const void* residual) {
  if (residual == nullptr) return;
  args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
               memory(dst, engine(), const_cast<void*>(residual)));
}

// Looks `key` up in this Entry type's cache, creating the entry with make() on a miss. make() returns
// std::nullopt (or throws dnnl::error) when oneDNN has no good primitive; that answer is cached too and
// the result is then null.
template <class Entry, class Key, class Make>
const Entry* cached(const Key& key, Make&& make) {
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Entry>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<Entry> entry;
  try {
    std::optional<Entry> made = make();
    if (made) entry = std::make_unique<Entry>(std::move(*made));
  } catch (const dnnl::error&) {
    entry.reset();
  }
  return cache.emplace(key, std::move(entry)).first->second.get();
}

// The cache key of one convolution. A primitive is made for the thread count of the pool that
// calls it (one inside tiny_image.cpp's column bands).
using ConvKey = std::array<std::int64_t, 19>;
inline ConvKey conv_key(const Conv2DParams& p, bool with_bias) {
  return {p.n,
          p.h,
          p.w,
          p.c,
          p.k,
          p.r,
          p.s,
          p.p,
          p.q,
          p.stride_h,
          p.stride_w,
          p.pad_top,
          p.pad_bottom,
          p.pad_left,
          p.pad_right,
          with_bias,
          p.relu,
          p.residual != nullptr,
          omp_get_max_threads()};
}

// The same as a mixed-precision cache entry (a type of its own, so a cache of its own).
template <class Entry, class Base>
std::optional<Entry> as_entry(std::optional<Base> base) {
  if (!base) return std::nullopt;
  return Entry{std::move(*base)};
}

// Weights kept across calls, keyed by (e, weights address) and valid while the weights' version
// is unchanged: the kept buffer for (e, w) and whether it already holds w at `version` (the caller
// fills it otherwise). At most 1 GiB is kept; past that the whole cache is dropped and refilled.
std::pair<float*, bool> kept_weights(const void* e, std::size_t bytes, const float* w, std::uint64_t version);

// v[0..n) converted to bfloat16 into out (oneDNN's reorder: to nearest even).
void convert_to_bf16(const float* v, std::int64_t n, std::uint16_t* out);
// x in bfloat16: the caller's rounded copy (Conv2DParams::x_bf16), or converted into a per-thread
// scratch buffer (one of three, one per operand, so the operands of one call never share one).
const std::uint16_t* x_in_bf16(const Conv2DParams& p, const float* x);
// dy in bfloat16: the caller's (Conv2DParams::dy_bf16), or converted into scratch.
const std::uint16_t* dy_in_bf16(const Conv2DParams& p, const float* dy);
// The weights w[0..r·s·c·k) in bfloat16: the caller's rounding (Conv2DParams::w_bf16), or with a
// version (Conv2DParams::weights_version) a copy kept and converted again only when the version
// changes, so a training step's forward and backward (and every inference call) share one
// conversion; else a copy in scratch.
const std::uint16_t* bf16_weights(const Conv2DParams& p, const float* w);
// v[0..n) converted to bfloat16 in per-thread scratch buffer `which` (0: x, 1: w, 2: dy).
const std::uint16_t* bf16_copy(const float* v, std::int64_t n, int which);

// Mixed precision on the float32 kernels: an operand as float32 values rounded to bfloat16 (the
// exact values of its bfloat16 bits), widened from the caller's rounding (Conv2DParams::x_bf16,
// dy_bf16, w_bf16) or rounded here, into per-thread scratch (one buffer per operand); w with a
// version (Conv2DParams::weights_version) is kept by address and widened again only when the
// version changes, so the float32 kernels may keep their reorders of it by the same version.
const float* x_rounded(const Conv2DParams& p, const float* x);
const float* dy_rounded(const Conv2DParams& p, const float* dy);
const float* w_rounded(const Conv2DParams& p, const float* w);

// The element type of the products' operands: float32, or bfloat16 bits for mixed precision.
template <bool InBf16>
using Operand = std::conditional_t<InBf16, std::uint16_t, float>;

// db[k] = Σ_m dy[m, k] (dy float32 or bfloat16), each column summed in row order in float, as
// oneDNN's convolutions do (the same bits on any thread count). The BLAS paths sum in double
// (cpu::column_sums_f64, channel_sums.h).
void column_sums_f32(std::int64_t rows, std::int64_t cols, const float* dy, float* db);
void column_sums_f32(std::int64_t rows, std::int64_t cols, const std::uint16_t* dy, float* db);

// out[0..n) = x[0..n) rounded to bfloat16 bits (oneDNN's reorder: to nearest even).
void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out);

}  // namespace reskit::kernels::onednn
