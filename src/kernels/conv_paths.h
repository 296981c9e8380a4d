// conv_paths.h — the ordered lists from which kernels/dispatch.cpp chooses a convolution, as oneDNN
// lists its implementations: one list per precision (float32, mixed float32/bfloat16, float64)
// and pass (forward, backward-data, backward-weights), from the most specialised path to the
// reference. Each entry carries its rule (a fixed function of the shape, never a timing, so a run
// gives the same bits every time), the function that runs it, and why it sits where it does.
//
// A call runs the first entry whose rule holds; an entry may still decline (oneDNN has only its
// slow reference implementation for the shape, or none on this CPU), and then the next entry
// whose rule holds runs. The last entries always apply and never decline. Backend::reference
// runs the last entry (the reference; for mixed precision the float32 reference on
// bfloat16-rounded operands). Layers never see this header: it is here so tests can run every
// path directly and check which one a shape gets.
#pragma once

#include <span>
#include <string_view>

#include "kernels/kernels.h"

namespace reskit::kernels::conv_paths {

enum class Pass { forward, backward_data, backward_weights };

// The operands of one call; a pass reads and writes only its own (forward: x, w, b -> y;
// backward-data: dy, w -> dx; backward-weights: x, dy -> dw, db). b and db may be null. A
// mixed-precision backward entry computes dx when dx is given and dw (and db) when dw is given.
template <class T>
struct Operands {
  const T* x = nullptr;
  const T* w = nullptr;
  const T* b = nullptr;
  const T* dy = nullptr;
  T* y = nullptr;
  T* dx = nullptr;
  T* dw = nullptr;
  T* db = nullptr;
};

template <class T>
struct Path {
  std::string_view name;
  // When this path may run: a pure function of the shape.
  bool (*applies)(const Conv2DParams& p);
  // Runs it; false: declined (no fast primitive), outputs not to be read.
  bool (*run)(const Conv2DParams& p, const Operands<T>& o);
  std::string_view rule, reason;  // the rule in words, and why this entry sits where it does
  // A forward entry that adds Conv2DParams::residual (and applies the ReLU after it) in its own
  // pass, or declines it; any other (and one that declined it) runs without them, and the
  // residual and ReLU follow in one pass of their own.
  bool takes_residual = false;
  // A mixed-precision entry that writes bfloat16 results itself where they are asked for
  // (Conv2DParams::y_bf16, dx_bf16); any other writes float32 and the dispatcher rounds them.
  bool bf16_results = false;
};

// The list for T's precision and `pass`; mixed: Conv2DParams::bf16 set (for double, whose only
// mixed entry is the float64 path on bfloat16-rounded copies; for float, mixed_paths(pass,
// mixed_kernels())).
template <class T>
std::span<const Path<T>> paths(Pass pass, bool mixed);

// ---- mixed precision: bfloat16 kernels, or float32 kernels on bfloat16-rounded operands ----
//
// A bfloat16 x bfloat16 product is exact in float32, so the float32 kernels on operands rounded
// to bfloat16 compute mixed precision's arithmetic (float32 accumulation) as the bfloat16 kernels
// do, up to the summation order. Which runs is a fixed function of the CPU's features
// (docs/cpu-rules.md): where bfloat16 dot products buy no FLOP/s over float32 FMA, the float32
// kernels are faster.
enum class MixedKernels {
  bfloat16,  // oneDNN's bfloat16 kernels (1x1 as bf16 matmul, bf16 row products, bf16 convolution)
  float32,   // the float32 list's oneDNN entries on float32 values rounded to bfloat16
};

// What the rule reads of a CPU.
struct CpuFeatures {
  bool intel = false;  // the vendor is Intel (cpuid "GenuineIntel")
  bool amx = false;    // oneDNN runs AMX tile kernels (effective ISA avx512_core_amx)
};

// The rule, a pure function: an Intel CPU without AMX runs the float32 kernels (its avx512_bf16
// vdpbf16ps runs at half the rate of float32 FMA; without avx512_bf16 oneDNN's bfloat16 kernels
// are emulated or absent); with AMX, on AMD (Zen 4/5: bfloat16 dot products at twice the float32
// rate) and on any other CPU, the bfloat16 kernels.
MixedKernels mixed_kernels_for(const CpuFeatures& cpu);
// This CPU's features (read once).
CpuFeatures cpu_features();
// What mixed precision runs: mixed_kernels_for(cpu_features()), or the override below.
MixedKernels mixed_kernels();
// The mixed-precision list for `pass` of one choice (paths<float>(pass, true) is the current one's).
std::span<const Path<float>> mixed_paths(Pass pass, MixedKernels which);

// Forces mixed_kernels() to `which` while alive (tests and benchmarks, one at a time: not for use
// while other threads run convolutions).
class ScopedMixedKernels {
 public:
  explicit ScopedMixedKernels(MixedKernels which);
  ~ScopedMixedKernels();
  ScopedMixedKernels(const ScopedMixedKernels&) = delete;
  ScopedMixedKernels& operator=(const ScopedMixedKernels&) = delete;

 private:
  int previous_;
};

// The entry a fast call with shape p runs first (the first whose rule holds).
template <class T>
const Path<T>& first_applicable(Pass pass, const Conv2DParams& p);

}  // namespace reskit::kernels::conv_paths
