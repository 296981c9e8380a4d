// float64 BatchNormalization for AVX-512 (batch_norm_f64_avx512.h). Each per-channel sum is
// batch_norm_f64.cpp's: 0 plus the rows of a block of 256 in order, then 0 plus the blocks in
// order, every term computed by the same operations (no fused multiply-adds: this file is built
// with -ffp-contract=off), so the bits are those of the generic build on any thread count. A
// block's sums for up to 64 channels stay in registers while its rows stream past.
#include "kernels/cpu/batch_norm_f64_avx512.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace reskit::kernels::cpu::f64_avx512 {
namespace {

constexpr std::int64_t kBlockRows = 256;  // rows per partial sum, as channel_sums.h
constexpr std::int64_t kTile = 64;        // channels per tile: 8 registers per sum

inline std::int64_t lesser(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

// The gradient reaching the normalization: dy, or 0 where the fused ReLU's output was not > 0.
template <bool Relu>
inline double masked(double dy, double x, double scale, double shift) {
  if constexpr (Relu) return x * scale + shift > 0.0 ? dy : 0.0;
  return dy;
}

// Sums over rows [r0, r1) for channels [0, w) of the tile at x (and dy), W the width at compile
// time (0: any width up to kTile). Kind 0: s1 = Σx. Kind 1: s1 = Σ(x − mean)². Kind 2 (backward):
// s1 = Σg, s2 = Σg·(x − mean), g = masked<Relu>.
template <int W, int Kind, bool Relu>
void sums_tile(const double* __restrict x, const double* __restrict dy, const double* __restrict mean,
               const double* __restrict scale, const double* __restrict shift, std::int64_t C,
               std::int64_t r0, std::int64_t r1, std::int64_t width, double* __restrict s1,
               double* __restrict s2) {
  constexpr int kMax = W > 0 ? W : static_cast<int>(kTile);
  const std::int64_t w = W > 0 ? W : width;
  double a[kMax] = {}, b[kMax] = {};
  for (std::int64_t r = r0; r < r1; ++r) {
    const double* __restrict xr = x + r * C;
    if constexpr (Kind == 0) {
#pragma omp simd
      for (std::int64_t c = 0; c < w; ++c) a[c] += xr[c];
    } else if constexpr (Kind == 1) {
#pragma omp simd
      for (std::int64_t c = 0; c < w; ++c) {
        const double d = xr[c] - mean[c];
        a[c] += d * d;
      }
    } else {
      const double* __restrict gr = dy + r * C;
#pragma omp simd
      for (std::int64_t c = 0; c < w; ++c) {
        const double g = masked<Relu>(gr[c], xr[c], scale[c], shift[c]);
        a[c] += g;
        b[c] += g * (xr[c] - mean[c]);
      }
    }
  }
  for (std::int64_t c = 0; c < w; ++c) {
    s1[c] = a[c];
    if constexpr (Kind == 2) s2[c] = b[c];
  }
}

// Per-channel sums of one kind over all rows into s1 (and s2), in double, block partials added
// in block order (parallel over blocks and tiles).
template <int Kind, bool Relu>
void sums(std::int64_t rows, std::int64_t C, const double* x, const double* dy, const double* mean,
          const double* scale, const double* shift, std::vector<double>& s1, std::vector<double>& s2) {
  const std::int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  const std::int64_t tiles = (C + kTile - 1) / kTile;
  const std::int64_t terms = Kind == 2 ? 2 : 1;
  std::vector<double> part(static_cast<std::size_t>(blocks * terms * C));
#pragma omp parallel for collapse(2) schedule(static) if (rows * C > kParallelGrain)
  for (std::int64_t blk = 0; blk < blocks; ++blk)
    for (std::int64_t t = 0; t < tiles; ++t) {
      const std::int64_t r0 = blk * kBlockRows, r1 = lesser(rows, r0 + kBlockRows), c0 = t * kTile;
      const std::int64_t width = lesser(kTile, C - c0);
      double* p1 = part.data() + blk * terms * C + c0;
      double* p2 = p1 + C;
      const double* m = mean ? mean + c0 : nullptr;
      const double* sc = scale ? scale + c0 : nullptr;
      const double* sh = shift ? shift + c0 : nullptr;
      const double* g = dy ? dy + c0 : nullptr;
      const auto run = [&]<int W>() {
        sums_tile<W, Kind, Relu>(x + c0, g, m, sc, sh, C, r0, r1, width, p1, p2);
      };
      if (width == 64) {
        run.template operator()<64>();
      } else if (width == 32) {
        run.template operator()<32>();
      } else if (width == 16) {
        run.template operator()<16>();
      } else {
        run.template operator()<0>();
      }
    }
  s1.assign(static_cast<std::size_t>(C), 0.0);
  if (Kind == 2) s2.assign(static_cast<std::size_t>(C), 0.0);
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const double* from = part.data() + blk * terms * C;
    for (std::int64_t c = 0; c < C; ++c) s1[c] += from[c];
    if (Kind == 2)
      for (std::int64_t c = 0; c < C; ++c) s2[c] += from[C + c];
  }
}

// y = x·scale + shift (+ residual), then max(0, ·) when Relu, as batch_norm_f64.cpp's std::max.
template <bool Relu, bool Res>
void scale_shift(std::int64_t rows, std::int64_t C, const double* __restrict x,
                 const double* __restrict scale, const double* __restrict shift,
                 const double* __restrict residual, double* __restrict y) {
  const double floor = Relu ? 0.0 : -std::numeric_limits<double>::infinity();
#pragma omp parallel for schedule(static) if (rows * C > kParallelGrain)
  for (std::int64_t i = 0; i < rows; ++i) {
    const double* __restrict xi = x + i * C;
    const double* __restrict ri = Res ? residual + i * C : nullptr;
    double* __restrict yi = y + i * C;
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) {
      double v = xi[c] * scale[c] + shift[c];
      if constexpr (Res) v = v + ri[c];
      if constexpr (Relu) v = v < floor ? floor : v;
      yi[c] = v;
    }
  }
}

void scale_shift(std::int64_t rows, std::int64_t C, bool relu, const double* x, const double* scale,
                 const double* shift, const double* residual, double* y) {
  if (residual != nullptr) {
    if (relu) return scale_shift<true, true>(rows, C, x, scale, shift, residual, y);
    return scale_shift<false, true>(rows, C, x, scale, shift, residual, y);
  }
  if (relu) return scale_shift<true, false>(rows, C, x, scale, shift, residual, y);
  scale_shift<false, false>(rows, C, x, scale, shift, residual, y);
}

// dx = a·g + b·x + d per channel.
template <bool Relu>
void grad_input(std::int64_t rows, std::int64_t C, const double* __restrict x, const double* __restrict dy,
                const double* __restrict scale, const double* __restrict shift, const double* __restrict a,
                const double* __restrict b, const double* __restrict d, double* __restrict dx) {
#pragma omp parallel for schedule(static) if (rows * C > kParallelGrain)
  for (std::int64_t i = 0; i < rows; ++i) {
    const double* __restrict xi = x + i * C;
    const double* __restrict gi = dy + i * C;
    double* __restrict out = dx + i * C;
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) {
      const double g = masked<Relu>(gi[c], xi[c], scale[c], shift[c]);
      out[c] = a[c] * g + b[c] * xi[c] + d[c];
    }
  }
}

}  // namespace

void batch_norm_forward_training(const BatchNormParams& p, const double* x, const double* gamma,
                                 const double* beta, double* y, double* mean, double* var,
                                 const double* residual) {
  const std::int64_t m = p.rows, C = p.channels;
  std::vector<double> mu, sq, unused;
  sums<0, false>(m, C, x, nullptr, nullptr, nullptr, nullptr, mu, unused);
  for (auto& v : mu) v /= static_cast<double>(m);
  sums<1, false>(m, C, x, nullptr, mu.data(), nullptr, nullptr, sq, unused);
  std::vector<double> scale(static_cast<std::size_t>(C)), shift(scale.size());
  for (std::int64_t c = 0; c < C; ++c) {
    const double v = sq[c] / static_cast<double>(m);
    const double s = gamma[c] / std::sqrt(v + p.epsilon);
    scale[c] = s;
    shift[c] = beta[c] - mu[c] * s;
    mean[c] = mu[c];
    var[c] = v;
  }
  scale_shift(m, C, p.relu, x, scale.data(), shift.data(), residual, y);
}

void batch_norm_forward_inference(const BatchNormParams& p, const double* x, const double* gamma,
                                  const double* beta, const double* mean, const double* var, double* y,
                                  const double* residual) {
  const std::int64_t C = p.channels;
  std::vector<double> scale(static_cast<std::size_t>(C)), shift(scale.size());
  for (std::int64_t c = 0; c < C; ++c) {  // batch_norm_affine's arithmetic
    const double rstd = 1.0 / std::sqrt(var[c] + p.epsilon);
    const double s = gamma[c] * rstd;
    scale[c] = s;
    shift[c] = beta[c] - mean[c] * s;
  }
  scale_shift(p.rows, C, p.relu, x, scale.data(), shift.data(), residual, y);
}

void batch_norm_backward(const BatchNormParams& p, const double* x, const double* dy, const double* gamma,
                         const double* beta, const double* mean, const double* var, double* dx,
                         double* dgamma, double* dbeta) {
  const std::int64_t m = p.rows, C = p.channels;
  std::vector<double> scale(static_cast<std::size_t>(C)), shift(scale.size()), rstd(scale.size());
  for (std::int64_t c = 0; c < C; ++c) {  // batch_norm_affine's arithmetic
    rstd[c] = 1.0 / std::sqrt(var[c] + p.epsilon);
    const double s = gamma[c] * rstd[c];
    scale[c] = s;
    shift[c] = beta[c] - mean[c] * s;
  }
  std::vector<double> sdy, sdyx;
  if (p.relu) {
    sums<2, true>(m, C, x, dy, mean, scale.data(), shift.data(), sdy, sdyx);
  } else {
    sums<2, false>(m, C, x, dy, mean, scale.data(), shift.data(), sdy, sdyx);
  }
  for (std::int64_t c = 0; c < C; ++c) sdyx[c] *= rstd[c];
  std::vector<double> a(static_cast<std::size_t>(C)), b(a.size()), d(a.size());
  const double M = static_cast<double>(m);
  for (std::int64_t c = 0; c < C; ++c) {
    const double g = gamma[c] * rstd[c];
    const double bx = -g * sdyx[c] * rstd[c] / M;
    a[c] = g;
    b[c] = bx;
    d[c] = -g * sdy[c] / M - bx * mean[c];
    dgamma[c] = sdyx[c];
    dbeta[c] = sdy[c];
  }
  if (p.relu)
    return grad_input<true>(m, C, x, dy, scale.data(), shift.data(), a.data(), b.data(), d.data(), dx);
  grad_input<false>(m, C, x, dy, scale.data(), shift.data(), a.data(), b.data(), d.data(), dx);
}

void column_sums(std::int64_t rows, std::int64_t k, const double* dy, double* db) {
  std::vector<double> total, unused;
  sums<0, false>(rows, k, dy, nullptr, nullptr, nullptr, nullptr, total, unused);
  for (std::int64_t j = 0; j < k; ++j) db[j] = total[j];
}

}  // namespace reskit::kernels::cpu::f64_avx512
