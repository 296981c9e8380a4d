// What the kernel tests share: random operands, NaN-filled outputs (a kernel that leaves an element
// unassigned fails), the fast-against-reference comparison, and Keras-style convolution shapes.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::test_util {

using std::int64_t;

template <class T>
constexpr double kTolerance = std::is_same_v<T, float> ? 1e-4 : 1e-10;

template <class T>
std::vector<T> random_vector(int64_t size, std::uint64_t seed, double scale = 1.0, double offset = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<T> v(static_cast<std::size_t>(size));
  for (auto& e : v) e = static_cast<T>(offset + scale * normal(gen));
  return v;
}

template <class T>
std::vector<T> nan_vector(int64_t size) {
  return std::vector<T>(static_cast<std::size_t>(size), std::numeric_limits<T>::quiet_NaN());
}

// max |fast − ref| <= tolerance · max(|ref|), NaN anywhere fails.
template <class T>
::testing::AssertionResult close(const std::vector<T>& fast, const std::vector<T>& ref, const char* what) {
  if (fast.size() != ref.size()) return ::testing::AssertionFailure() << what << ": size differs";
  double scale = 0.0;
  for (T v : ref) scale = std::max(scale, std::abs(static_cast<double>(v)));
  const double allowed = kTolerance<T> * std::max(scale, 1e-30);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double diff = std::abs(static_cast<double>(fast[i]) - static_cast<double>(ref[i]));
    if (!(diff <= allowed)) {
      return ::testing::AssertionFailure() << what << "[" << i << "]: fast " << fast[i] << " vs reference "
                                           << ref[i] << " (allowed difference " << allowed << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// a and b hold the same bits everywhere (float or double): the first difference is named.
template <class T>
void expect_same_bits(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
  ASSERT_EQ(a.size(), b.size()) << what;
  std::size_t differ = 0, first = a.size();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<Bits>(a[i]) != std::bit_cast<Bits>(b[i])) {
      if (differ++ == 0) first = i;
    }
  EXPECT_EQ(differ, 0u) << what << ": first at " << first << " (" << a[first] << " vs " << b[first] << ")";
}

// Keras padding: 'valid' none; 'same' P = ceil(H / stride), the odd pixel of padding at the bottom/right.
struct Window {
  int64_t size, stride, pad_before, pad_after, out;
};
inline Window valid(int64_t in, int64_t size, int64_t stride) {
  return {size, stride, 0, 0, (in - size) / stride + 1};
}
inline Window same(int64_t in, int64_t size, int64_t stride) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + size - in, 0);
  return {size, stride, total / 2, total - total / 2, out};
}
inline Window explicit_pad(int64_t in, int64_t size, int64_t stride, int64_t before, int64_t after) {
  return {size, stride, before, after, (in + before + after - size) / stride + 1};
}

struct ConvCase {
  std::string name;
  int64_t n, h, w, c, k;
  Window rows, cols;
};

inline Conv2DParams conv_params(const ConvCase& cc) {
  Conv2DParams p;
  p.n = cc.n, p.h = cc.h, p.w = cc.w, p.c = cc.c, p.k = cc.k;
  p.r = cc.rows.size, p.s = cc.cols.size, p.p = cc.rows.out, p.q = cc.cols.out;
  p.stride_h = cc.rows.stride, p.stride_w = cc.cols.stride;
  p.pad_top = cc.rows.pad_before, p.pad_bottom = cc.rows.pad_after;
  p.pad_left = cc.cols.pad_before, p.pad_right = cc.cols.pad_after;
  return p;
}

}  // namespace reskit::kernels::test_util
