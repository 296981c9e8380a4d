// Pooling as OpenMP loops (pool.h): parallel over images, channels innermost.
#include "kernels/cpu/pool.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/batch_norm_f32.h"  // avx512_available

namespace reskit::kernels::cpu {

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (p.n * p.p * p.q * p.c * p.r * p.s > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        T* out = y + ((n * p.p + op) * p.q + oq) * p.c;
        std::fill_n(out, p.c, -std::numeric_limits<T>::infinity());
        for (std::int64_t r = 0; r < p.r; ++r) {
          std::int64_t ih = op * p.stride_h + r - p.pad_top;
          if (ih < 0 || ih >= p.h) continue;
          for (std::int64_t s = 0; s < p.s; ++s) {
            std::int64_t iw = oq * p.stride_w + s - p.pad_left;
            if (iw < 0 || iw >= p.w) continue;
            const T* in = x + ((n * p.h + ih) * p.w + iw) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) out[c] = std::max(out[c], in[c]);
          }
        }
      }
}

void window_cells(const Pool2DParams& p, std::int64_t n, std::int64_t op, std::int64_t oq,
                  std::vector<std::int64_t>& cells) {
  cells.clear();
  for (std::int64_t r = 0; r < p.r; ++r) {
    const std::int64_t ih = op * p.stride_h + r - p.pad_top;
    if (ih < 0 || ih >= p.h) continue;
    for (std::int64_t s = 0; s < p.s; ++s) {
      const std::int64_t iw = oq * p.stride_w + s - p.pad_left;
      if (iw >= 0 && iw < p.w) cells.push_back(((n * p.h + ih) * p.w + iw) * p.c);
    }
  }
}

// The first maximum of each window wins (as in the reference). Per channel the winner is kept
// as its number among the window's valid cells (int32, like the values' lanes), updated
// branch-free. The generic build runs these loops in scalar code (SSE2 has no 32-bit multiply),
// so float32 takes the AVX-512 build where the CPU has it (pool_avx512.cpp).
template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx512_available()) return avx512::max_pool2d_backward(p, x, dy, dx);
  }
  const std::int64_t C = p.c;
#pragma omp parallel if (p.n * p.p * p.q * p.c * p.r * p.s > kParallelGrain)
  {
    std::vector<std::int32_t> arg(static_cast<std::size_t>(C));
    std::vector<T> best(static_cast<std::size_t>(C));
    std::vector<std::int64_t> cells;  // offsets of the window's valid cells in x
    std::int32_t* __restrict a = arg.data();
    T* __restrict b = best.data();
#pragma omp for schedule(static)
    for (std::int64_t n = 0; n < p.n; ++n) {
      std::fill_n(dx + n * p.h * p.w * C, p.h * p.w * C, T(0));  // this image's dx, by its thread
      for (std::int64_t op = 0; op < p.p; ++op)
        for (std::int64_t oq = 0; oq < p.q; ++oq) {
          window_cells(p, n, op, oq, cells);
          if (cells.empty()) continue;  // a window of padding only
          std::copy_n(x + cells[0], C, b);
          std::fill_n(a, C, 0);
          for (std::int32_t cell = 1; cell < static_cast<std::int32_t>(cells.size()); ++cell) {
            const T* __restrict xv = x + cells[cell];
            for (std::int64_t c = 0; c < C; ++c) {  // branch-free: random data defeats prediction
              const std::int32_t gt = xv[c] > b[c];
              b[c] = std::max(b[c], xv[c]);
              a[c] += (cell - a[c]) * gt;
            }
          }
          const T* g = dy + ((n * p.p + op) * p.q + oq) * C;
          for (std::int64_t c = 0; c < C; ++c) dx[cells[a[c]] + c] += g[c];
        }
    }
  }
}

template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (p.n * p.p * p.q * p.c * p.r * p.s > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        T* out = y + ((n * p.p + op) * p.q + oq) * p.c;
        std::fill_n(out, p.c, T(0));
        std::int64_t count = 0;
        for (std::int64_t r = 0; r < p.r; ++r) {
          std::int64_t ih = op * p.stride_h + r - p.pad_top;
          if (ih < 0 || ih >= p.h) continue;
          for (std::int64_t s = 0; s < p.s; ++s) {
            std::int64_t iw = oq * p.stride_w + s - p.pad_left;
            if (iw < 0 || iw >= p.w) continue;
            const T* in = x + ((n * p.h + ih) * p.w + iw) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) out[c] += in[c];
            ++count;
          }
        }
        if (count > 0)
          for (std::int64_t c = 0; c < p.c; ++c) out[c] /= static_cast<T>(count);
      }
}

template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx) {
  std::fill_n(dx, p.n * p.h * p.w * p.c, T(0));
#pragma omp parallel for schedule(static) if (p.n * p.h * p.w * p.c > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        std::int64_t r0 = std::max<std::int64_t>(0, op * p.stride_h - p.pad_top);
        std::int64_t r1 = std::min<std::int64_t>(p.h, op * p.stride_h - p.pad_top + p.r);
        std::int64_t s0 = std::max<std::int64_t>(0, oq * p.stride_w - p.pad_left);
        std::int64_t s1 = std::min<std::int64_t>(p.w, oq * p.stride_w - p.pad_left + p.s);
        std::int64_t count = std::max<std::int64_t>(0, r1 - r0) * std::max<std::int64_t>(0, s1 - s0);
        if (count == 0) continue;
        const T* g = dy + ((n * p.p + op) * p.q + oq) * p.c;
        const T inv = T(1) / static_cast<T>(count);
        for (std::int64_t ih = r0; ih < r1; ++ih)
          for (std::int64_t iw = s0; iw < s1; ++iw) {
            T* d = dx + ((n * p.h + ih) * p.w + iw) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) d[c] += g[c] * inv;
          }
      }
}

#define RESKIT_INSTANTIATE(T)                                                        \
  template void max_pool2d_forward<T>(const Pool2DParams&, const T*, T*);            \
  template void max_pool2d_backward<T>(const Pool2DParams&, const T*, const T*, T*); \
  template void avg_pool2d_forward<T>(const Pool2DParams&, const T*, T*);            \
  template void avg_pool2d_backward<T>(const Pool2DParams&, const T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels::cpu
