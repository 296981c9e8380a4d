// bfloat16 rounding, the definition of the mixed_bfloat16 policy's arithmetic: a float32 value
// keeps its sign, exponent and top 7 mantissa bits, rounded to nearest even (as oneDNN's and the
// CPU's vcvtneps2bf16 conversion do). NaN stays NaN; infinities stay infinite.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace reskit::kernels::ref {

inline float round_bf16(float v) {
  if (std::isnan(v)) return v;
  std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return std::bit_cast<float>(u & 0xFFFF0000u);
}

// v rounded to bfloat16, as its 16 bits.
inline std::uint16_t bf16_bits(float v) {
  return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(round_bf16(v)) >> 16);
}

// A copy of v[0..n) rounded to bfloat16 (through float for double input).
template <class T>
std::vector<T> rounded_bf16(const T* v, std::int64_t n) {
  std::vector<T> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(round_bf16(static_cast<float>(v[i])));
  return out;
}

}  // namespace reskit::kernels::ref
