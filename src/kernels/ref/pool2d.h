// Reference pooling. Padded cells never win a max and are left out of an average's count.
// A max's gradient goes to the first maximal cell in window order (row-major r, s).
#pragma once

#include <algorithm>
#include <limits>

#include "kernels/kernels.h"

namespace reskit::kernels::ref {

namespace detail {
// Calls f(ih, iw) for every in-bounds cell of output (op, oq)'s window.
template <class F>
void for_window(const Pool2DParams& p, std::int64_t op, std::int64_t oq, F&& f) {
  for (std::int64_t r = 0; r < p.r; ++r) {
    std::int64_t ih = op * p.stride_h + r - p.pad_top;
    if (ih < 0 || ih >= p.h) continue;
    for (std::int64_t s = 0; s < p.s; ++s) {
      std::int64_t iw = oq * p.stride_w + s - p.pad_left;
      if (iw < 0 || iw >= p.w) continue;
      f(ih, iw);
    }
  }
}
}  // namespace detail

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq)
        for (std::int64_t c = 0; c < p.c; ++c) {
          T best = -std::numeric_limits<T>::infinity();
          detail::for_window(p, op, oq, [&](std::int64_t ih, std::int64_t iw) {
            best = std::max(best, x[((n * p.h + ih) * p.w + iw) * p.c + c]);
          });
          y[((n * p.p + op) * p.q + oq) * p.c + c] = best;
        }
}

template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx) {
  std::fill_n(dx, p.n * p.h * p.w * p.c, T(0));
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq)
        for (std::int64_t c = 0; c < p.c; ++c) {
          T best = -std::numeric_limits<T>::infinity();
          std::int64_t arg = -1;
          detail::for_window(p, op, oq, [&](std::int64_t ih, std::int64_t iw) {
            std::int64_t i = ((n * p.h + ih) * p.w + iw) * p.c + c;
            if (arg < 0 || x[i] > best) {
              best = x[i];
              arg = i;
            }
          });
          if (arg >= 0) dx[arg] += dy[((n * p.p + op) * p.q + oq) * p.c + c];
        }
}

template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq)
        for (std::int64_t c = 0; c < p.c; ++c) {
          double sum = 0.0;
          std::int64_t count = 0;
          detail::for_window(p, op, oq, [&](std::int64_t ih, std::int64_t iw) {
            sum += static_cast<double>(x[((n * p.h + ih) * p.w + iw) * p.c + c]);
            ++count;
          });
          y[((n * p.p + op) * p.q + oq) * p.c + c] =
              static_cast<T>(count ? sum / static_cast<double>(count) : 0.0);
        }
}

template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx) {
  std::fill_n(dx, p.n * p.h * p.w * p.c, T(0));
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        std::int64_t count = 0;
        detail::for_window(p, op, oq, [&](std::int64_t, std::int64_t) { ++count; });
        if (count == 0) continue;
        for (std::int64_t c = 0; c < p.c; ++c) {
          T g = dy[((n * p.p + op) * p.q + oq) * p.c + c] / static_cast<T>(count);
          detail::for_window(p, op, oq, [&](std::int64_t ih, std::int64_t iw) {
            dx[((n * p.h + ih) * p.w + iw) * p.c + c] += g;
          });
        }
      }
}

}  // namespace reskit::kernels::ref
