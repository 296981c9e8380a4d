// bfloat16 conversions inlined where the exchange converts every gradient (private to
// src/distributed/; communicator.h's to_bfloat16 and from_bfloat16 are these).
#pragma once

#include <bit>
#include <cstdint>

namespace reskit::distributed::detail {

// Round to nearest, ties to even; NaN stays a (quiet) NaN; written without a branch so that the
// loops over a bucket vectorise.
inline std::uint16_t to_bfloat16(float v) {
  const auto u = std::bit_cast<std::uint32_t>(v);
  const auto rounded = static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  const auto quiet_nan = static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return (u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
}

inline float from_bfloat16(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

}  // namespace reskit::distributed::detail
