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

// v rounded to bfloat16, as its 16 bits (a NaN stays a NaN, made quiet); the same bits as
// round_bf16, in a form compilers vectorise.
inline std::uint16_t bf16_bits(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const std::uint32_t quiet_nan = (u >> 16) | 0x40u;
  return static_cast<std::uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

// The float32 value of bfloat16 bits (exact).
inline float from_bf16_bits(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

// out[0..n) = the bfloat16 bits of v[0..n).
inline void round_to_bf16_bits(const float* v, std::int64_t n, std::uint16_t* out) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = bf16_bits(v[i]);
}

// A copy of v[0..n) rounded to bfloat16 (through float for double input).
template <class T>
std::vector<T> rounded_bf16(const T* v, std::int64_t n) {
  std::vector<T> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(round_bf16(static_cast<float>(v[i])));
  return out;
}

// The same copy, widened from the caller's bits of that rounding when it has them (bits not
// null: the values v may not even be written, Tensor::bf16_shadow_only_written).
template <class T>
std::vector<T> rounded_bf16(const T* v, const std::uint16_t* bits, std::int64_t n) {
  if (bits == nullptr) return rounded_bf16(v, n);
  std::vector<T> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(from_bf16_bits(bits[i]));
  return out;
}

}  // namespace reskit::kernels::ref
