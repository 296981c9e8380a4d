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
};

// The list for T's precision and `pass`; mixed: Conv2DParams::bf16 set (for double, whose only
// mixed entry is the float64 path on bfloat16-rounded copies).
template <class T>
std::span<const Path<T>> paths(Pass pass, bool mixed);

// The entry a fast call with shape p runs first (the first whose rule holds).
template <class T>
const Path<T>& first_applicable(Pass pass, const Conv2DParams& p);

}  // namespace reskit::kernels::conv_paths
