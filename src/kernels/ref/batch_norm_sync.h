// The per-channel pieces of synchronised batch normalization (kernels.h): the sums each rank
// computes over its rows and the ranks add up, and dx from the added sums. Plain loops, row by
// row with the channels innermost, accumulated in double in row order; the only implementation
// (the passes are O(rows·C), small next to the convolutions around them).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/sync_batch_norm.h"

namespace reskit::kernels::ref {

// rows (M), channels (C): x, dy (M, C); shift, mean, var, gamma (C); sums (C)
template <class T>
void batch_norm_channel_sums(const BatchNormParams& p, const T* x, const T* shift, double* sums) {
  const std::int64_t m = p.rows, C = p.channels;
  for (std::int64_t c = 0; c < C; ++c) sums[c] = 0.0;
  for (std::int64_t i = 0; i < m; ++i) {
    const T* row = x + i * C;
    if (shift == nullptr) {
      for (std::int64_t c = 0; c < C; ++c) sums[c] += static_cast<double>(row[c]);
    } else {
      for (std::int64_t c = 0; c < C; ++c) {
        const double d = static_cast<double>(row[c]) - static_cast<double>(shift[c]);
        sums[c] += d * d;
      }
    }
  }
}

template <class T>
std::vector<double> inverse_std(const BatchNormParams& p, const T* var) {
  std::vector<double> rstd(static_cast<std::size_t>(p.channels));
  for (std::int64_t c = 0; c < p.channels; ++c)
    rstd[static_cast<std::size_t>(c)] = 1.0 / std::sqrt(static_cast<double>(var[c]) + p.epsilon);
  return rstd;
}

template <class T>
void batch_norm_backward_sums(const BatchNormParams& p, const T* x, const T* dy, const T* mean, const T* var,
                              double* sum_dy, double* sum_dy_xhat) {
  const std::int64_t m = p.rows, C = p.channels;
  const std::vector<double> rstd = inverse_std(p, var);
  for (std::int64_t c = 0; c < C; ++c) sum_dy[c] = sum_dy_xhat[c] = 0.0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dy[i * C + c]);
      const double xh = (static_cast<double>(x[i * C + c]) - static_cast<double>(mean[c])) *
                        rstd[static_cast<std::size_t>(c)];
      sum_dy[c] += g;
      sum_dy_xhat[c] += g * xh;
    }
  }
}

template <class T>
void batch_norm_backward_dx(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* mean,
                            const T* var, const double* sum_dy, const double* sum_dy_xhat, double total,
                            T* dx) {
  const std::int64_t m = p.rows, C = p.channels;
  const std::vector<double> rstd = inverse_std(p, var);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t c = 0; c < C; ++c) {
      const double r = rstd[static_cast<std::size_t>(c)];
      const double xh = (static_cast<double>(x[i * C + c]) - static_cast<double>(mean[c])) * r;
      const double scale = static_cast<double>(gamma[c]) * r / total;
      dx[i * C + c] = static_cast<T>(
          scale * (total * static_cast<double>(dy[i * C + c]) - sum_dy[c] - xh * sum_dy_xhat[c]));
    }
  }
}

}  // namespace reskit::kernels::ref
