// Reference BatchNormalization over the innermost (channel) axis; statistics in double.
//
// Backward of y = gamma·x̂ + beta with x̂ = (x − mean)·rstd, batch statistics (Ioffe & Szegedy 2015):
//   dbeta = Σ dy,  dgamma = Σ dy·x̂,
//   dx = gamma·rstd/M · (M·dy − dbeta − x̂·dgamma),  M = rows.
// With the ReLU fused (p.relu), forward returns max(0, y) and backward first keeps dy only where
// y > 0, y recomputed from x. Forward adds a residual (the fused Add) to y before the ReLU.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::ref {

template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual = nullptr) {
  const std::int64_t m = p.rows, C = p.channels;
  for (std::int64_t c = 0; c < C; ++c) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < m; ++i) sum += static_cast<double>(x[i * C + c]);
    double mu = sum / static_cast<double>(m);
    double sq = 0.0;
    for (std::int64_t i = 0; i < m; ++i) {
      double d = static_cast<double>(x[i * C + c]) - mu;
      sq += d * d;
    }
    double v = sq / static_cast<double>(m);
    double rstd = 1.0 / std::sqrt(v + p.epsilon);
    for (std::int64_t i = 0; i < m; ++i) {
      double xh = (static_cast<double>(x[i * C + c]) - mu) * rstd;
      double out = static_cast<double>(gamma[c]) * xh + static_cast<double>(beta[c]);
      if (residual) out += static_cast<double>(residual[i * C + c]);
      y[i * C + c] = static_cast<T>(p.relu ? std::max(out, 0.0) : out);
    }
    mean[c] = static_cast<T>(mu);
    var[c] = static_cast<T>(v);
  }
}

template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual = nullptr) {
  const std::int64_t m = p.rows, C = p.channels;
  for (std::int64_t c = 0; c < C; ++c) {
    double rstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + p.epsilon);
    for (std::int64_t i = 0; i < m; ++i) {
      double xh = (static_cast<double>(x[i * C + c]) - static_cast<double>(mean[c])) * rstd;
      double out = static_cast<double>(gamma[c]) * xh + static_cast<double>(beta[c]);
      if (residual) out += static_cast<double>(residual[i * C + c]);
      y[i * C + c] = static_cast<T>(p.relu ? std::max(out, 0.0) : out);
    }
  }
}

template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta) {
  const std::int64_t m = p.rows, C = p.channels;
  for (std::int64_t c = 0; c < C; ++c) {
    double mu = static_cast<double>(mean[c]);
    double rstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + p.epsilon);
    // With the ReLU fused, dy reaches the normalization only where its output was positive.
    auto grad = [&](std::int64_t i) {
      const double y = static_cast<double>(gamma[c]) * (static_cast<double>(x[i * C + c]) - mu) * rstd +
                       static_cast<double>(beta[c]);
      return p.relu && !(y > 0.0) ? 0.0 : static_cast<double>(dy[i * C + c]);
    };
    double sdy = 0.0, sdyx = 0.0;
    for (std::int64_t i = 0; i < m; ++i) {
      double g = grad(i);
      sdy += g;
      sdyx += g * (static_cast<double>(x[i * C + c]) - mu) * rstd;
    }
    double scale = static_cast<double>(gamma[c]) * rstd / static_cast<double>(m);
    for (std::int64_t i = 0; i < m; ++i) {
      double xh = (static_cast<double>(x[i * C + c]) - mu) * rstd;
      double g = grad(i);
      dx[i * C + c] = static_cast<T>(scale * (static_cast<double>(m) * g - sdy - xh * sdyx));
    }
    dgamma[c] = static_cast<T>(sdyx);
    dbeta[c] = static_cast<T>(sdy);
  }
}

}  // namespace reskit::kernels::ref
