// Bilinear resize of 8-bit pictures (see resize_u8.h). Each output value is, as in the reference,
// acc = Σ over row taps (upper, lower order) Σ over column taps of (wr · wc) · x in double, then
// float(acc) rounded to nearest-even and clamped: the products wr · wc and the sums are the same
// IEEE operations in the same order, so the bits are the reference's.
#include "kernels/cpu/resize_u8.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "reskit/error.h"

namespace reskit::kernels::cpu {

namespace {

// Output position o of `out` along an axis of `in` (the window): TF's half-pixel bilinear taps.
struct Taps {
  std::int64_t lower, upper;
  double w_lower, w_upper;
};

std::vector<Taps> axis_taps(std::int64_t in, std::int64_t out) {
  std::vector<Taps> taps(static_cast<std::size_t>(out));
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (std::int64_t o = 0; o < out; ++o) {
    const float pos = (static_cast<float>(o) + 0.5f) * scale - 0.5f;
    const float pos_floor = std::floor(pos);
    const float lerp = pos - pos_floor;
    taps[static_cast<std::size_t>(o)] = {std::max(static_cast<std::int64_t>(pos_floor), std::int64_t{0}),
                                         std::min(static_cast<std::int64_t>(std::ceil(pos)), in - 1),
                                         1.0 - static_cast<double>(lerp), static_cast<double>(lerp)};
  }
  return taps;
}

// clamp(nearbyint(float(acc)), 0, 255) without a call to nearbyintf: clamping first changes
// nothing (the bounds are integers), and for 0 <= v <= 255, (v + 2^23) - 2^23 rounds v to the
// nearest integer, ties to even, as nearbyint does in the default rounding mode.
std::uint8_t to_u8(double acc) {
  constexpr float kRound = 8388608.0f;  // 2^23: float's last bit has weight 1 from here up
  const float v = std::clamp(static_cast<float>(acc), 0.0f, 255.0f);
  return static_cast<std::uint8_t>((v + kRound) - kRound);
}

// One image; C channels fixed (0: p.c at run time).
template <int C>
void resize_image(const ResizeParams& p, std::int64_t top, std::int64_t left, const std::vector<Taps>& rows,
                  const std::vector<Taps>& cols, const std::uint8_t* x, std::uint8_t* y) {
  const std::int64_t c = C > 0 ? C : p.c;
  for (std::int64_t op = 0; op < p.p; ++op) {
    const Taps& r = rows[static_cast<std::size_t>(op)];
    const std::uint8_t* r0 = x + (top + r.lower) * p.w * c;
    const std::uint8_t* r1 = x + (top + r.upper) * p.w * c;
    std::uint8_t* out = y + op * p.q * c;
    for (std::int64_t oq = 0; oq < p.q; ++oq) {
      const Taps& s = cols[static_cast<std::size_t>(oq)];
      const double w00 = r.w_lower * s.w_lower, w01 = r.w_lower * s.w_upper;
      const double w10 = r.w_upper * s.w_lower, w11 = r.w_upper * s.w_upper;
      const std::int64_t a = (left + s.lower) * c, b = (left + s.upper) * c;
      for (std::int64_t k = 0; k < c; ++k) {
        double acc = w00 * static_cast<double>(r0[a + k]);
        acc += w01 * static_cast<double>(r0[b + k]);
        acc += w10 * static_cast<double>(r1[a + k]);
        acc += w11 * static_cast<double>(r1[b + k]);
        out[oq * c + k] = to_u8(acc);
      }
    }
  }
}

}  // namespace

void resize_bilinear_u8(const ResizeParams& p, const std::uint8_t* x, std::uint8_t* y) {
  const std::int64_t rows = p.rows == 0 ? p.h : p.rows, cols = p.cols == 0 ? p.w : p.cols;
  if (p.n < 0 || p.c < 1 || p.h < 1 || p.w < 1 || p.p < 1 || p.q < 1 || p.top < 0 || p.left < 0 || rows < 1 ||
      cols < 1 || p.top + rows > p.h || p.left + cols > p.w) {
    throw ShapeError("resize_u8: expected an output of at least 1x1 and a window inside the " +
                     std::to_string(p.h) + "x" + std::to_string(p.w) + " image, got output " +
                     std::to_string(p.p) + "x" + std::to_string(p.q) + " and rows [" + std::to_string(p.top) +
                     ", " + std::to_string(p.top + rows) + "), columns [" + std::to_string(p.left) + ", " +
                     std::to_string(p.left + cols) + ")");
  }
  const std::vector<Taps> row_taps = axis_taps(rows, p.p), col_taps = axis_taps(cols, p.q);
  for (std::int64_t n = 0; n < p.n; ++n) {
    const std::uint8_t* image = x + n * p.h * p.w * p.c;
    std::uint8_t* out = y + n * p.p * p.q * p.c;
    switch (p.c) {
      case 1:
        resize_image<1>(p, p.top, p.left, row_taps, col_taps, image, out);
        break;
      case 3:
        resize_image<3>(p, p.top, p.left, row_taps, col_taps, image, out);
        break;
      case 4:
        resize_image<4>(p, p.top, p.left, row_taps, col_taps, image, out);
        break;
      default:
        resize_image<0>(p, p.top, p.left, row_taps, col_taps, image, out);
    }
  }
}

}  // namespace reskit::kernels::cpu
