// Reference Dense (matrix product plus bias), accumulating in double.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::ref {

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y) {
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t k = 0; k < p.k; ++k) {
      double acc = b ? static_cast<double>(b[k]) : 0.0;
      for (std::int64_t c = 0; c < p.c; ++c)
        acc += static_cast<double>(x[n * p.c + c]) * static_cast<double>(w[c * p.k + k]);
      y[n * p.k + k] = static_cast<T>(acc);
    }
}

template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (dx) {
    for (std::int64_t n = 0; n < p.n; ++n)
      for (std::int64_t c = 0; c < p.c; ++c) {
        double acc = 0.0;
        for (std::int64_t k = 0; k < p.k; ++k)
          acc += static_cast<double>(dy[n * p.k + k]) * static_cast<double>(w[c * p.k + k]);
        dx[n * p.c + c] = static_cast<T>(acc);
      }
  }
  for (std::int64_t c = 0; c < p.c; ++c)
    for (std::int64_t k = 0; k < p.k; ++k) {
      double acc = 0.0;
      for (std::int64_t n = 0; n < p.n; ++n)
        acc += static_cast<double>(x[n * p.c + c]) * static_cast<double>(dy[n * p.k + k]);
      dw[c * p.k + k] = static_cast<T>(acc);
    }
  if (db) {
    for (std::int64_t k = 0; k < p.k; ++k) {
      double acc = 0.0;
      for (std::int64_t n = 0; n < p.n; ++n) acc += static_cast<double>(dy[n * p.k + k]);
      db[k] = static_cast<T>(acc);
    }
  }
}

}  // namespace reskit::kernels::ref
