// Reference Conv2D: plain loops, the definition every fast path is tested against.
// Accumulates in double whatever T is.
#pragma once

#include <algorithm>

#include "kernels/kernels.h"

namespace reskit::kernels::ref {

// y[N,P,Q,K] = Σ_{r,s,c} x[n, p·sh + r − pt, q·sw + s − pl, c] · w[r,s,c,k] + b[k]
template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq)
        for (std::int64_t k = 0; k < p.k; ++k) {
          double acc = b ? static_cast<double>(b[k]) : 0.0;
          for (std::int64_t r = 0; r < p.r; ++r) {
            std::int64_t ih = op * p.stride_h + r - p.pad_top;
            if (ih < 0 || ih >= p.h) continue;
            for (std::int64_t s = 0; s < p.s; ++s) {
              std::int64_t iw = oq * p.stride_w + s - p.pad_left;
              if (iw < 0 || iw >= p.w) continue;
              const T* xp = x + ((n * p.h + ih) * p.w + iw) * p.c;
              const T* wp = w + (r * p.s + s) * p.c * p.k + k;
              for (std::int64_t c = 0; c < p.c; ++c)
                acc += static_cast<double>(xp[c]) * static_cast<double>(wp[c * p.k]);
            }
          }
          y[((n * p.p + op) * p.q + oq) * p.k + k] = static_cast<T>(p.relu ? std::max(acc, 0.0) : acc);
        }
}

// dx[n,ih,iw,c] = Σ over (op,oq,r,s) that read it of dy[n,op,oq,k]·w[r,s,c,k]
template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  std::fill_n(dx, p.n * p.h * p.w * p.c, T(0));
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t ih = 0; ih < p.h; ++ih)
      for (std::int64_t iw = 0; iw < p.w; ++iw)
        for (std::int64_t c = 0; c < p.c; ++c) {
          double acc = 0.0;
          for (std::int64_t r = 0; r < p.r; ++r) {
            std::int64_t t = ih + p.pad_top - r;
            if (t < 0 || t % p.stride_h != 0) continue;
            std::int64_t op = t / p.stride_h;
            if (op >= p.p) continue;
            for (std::int64_t s = 0; s < p.s; ++s) {
              std::int64_t u = iw + p.pad_left - s;
              if (u < 0 || u % p.stride_w != 0) continue;
              std::int64_t oq = u / p.stride_w;
              if (oq >= p.q) continue;
              const T* dyp = dy + ((n * p.p + op) * p.q + oq) * p.k;
              const T* wp = w + ((r * p.s + s) * p.c + c) * p.k;
              for (std::int64_t k = 0; k < p.k; ++k)
                acc += static_cast<double>(dyp[k]) * static_cast<double>(wp[k]);
            }
          }
          dx[((n * p.h + ih) * p.w + iw) * p.c + c] = static_cast<T>(acc);
        }
}

// dw[r,s,c,k] = Σ_{n,op,oq} x[n, op·sh + r − pt, oq·sw + s − pl, c]·dy[n,op,oq,k]; db[k] = Σ dy
template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  for (std::int64_t r = 0; r < p.r; ++r)
    for (std::int64_t s = 0; s < p.s; ++s)
      for (std::int64_t c = 0; c < p.c; ++c)
        for (std::int64_t k = 0; k < p.k; ++k) {
          double acc = 0.0;
          for (std::int64_t n = 0; n < p.n; ++n)
            for (std::int64_t op = 0; op < p.p; ++op) {
              std::int64_t ih = op * p.stride_h + r - p.pad_top;
              if (ih < 0 || ih >= p.h) continue;
              for (std::int64_t oq = 0; oq < p.q; ++oq) {
                std::int64_t iw = oq * p.stride_w + s - p.pad_left;
                if (iw < 0 || iw >= p.w) continue;
                acc += static_cast<double>(x[((n * p.h + ih) * p.w + iw) * p.c + c]) *
                       static_cast<double>(dy[((n * p.p + op) * p.q + oq) * p.k + k]);
              }
            }
          dw[((r * p.s + s) * p.c + c) * p.k + k] = static_cast<T>(acc);
        }
  if (db) {
    for (std::int64_t k = 0; k < p.k; ++k) {
      double acc = 0.0;
      for (std::int64_t i = 0; i < p.n * p.p * p.q; ++i) acc += static_cast<double>(dy[i * p.k + k]);
      db[k] = static_cast<T>(acc);
    }
  }
}

}  // namespace reskit::kernels::ref
