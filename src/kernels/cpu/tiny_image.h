// Convolutions over tiny images as row products: the algorithm (templates over the operands'
// element type and the product), and the paths built on it (tiny_image.cpp): float32 and bfloat16
// through oneDNN's sgemm and matmul, one band of channels per thread, and float/double through BLAS.
// kernels/dispatch.cpp decides when they run (at most 16 output pixels, batch 8 or more) and why.
//
// Where the output has few pixels (ResNet-50's last two stages at 64×64 input: 4×4 and 2×2), a
// convolution primitive or an im2col product spends much of its time on taps that fall on
// padding (and a primitive on reordering large weights). Here each output pixel (i, j) and kernel
// row r that lands inside the image is one product over the batch: the taps s whose input column
// lies inside form one contiguous run, so x[:, a, b0..b1, :] (rows of (b1−b0+1)·C, one per image)
// times w[r, s0..s1] ((s1−s0+1)·C × K, contiguous in HWIO) accumulates into y[:, i, j, :] with no
// copy at all, through a gemm with leading dimensions. Backward-data goes one tap at a time
// (dx[:, a, b, :] += dy[:, i, j, :]·w[r, s]ᵀ). Backward-weights gathers, per tap, the rows of x
// and dy that meet there, so its products run N·pixels deep rather than N (ResNet-50's 4×4 and
// 2×2 stages in a mixed_bfloat16 training step, 2 threads: ~9 -> ~6.5 ms per step).
//
// The oneDNN paths (float32 and bfloat16) run both backward passes by taps instead (the "_by_taps"
// functions below): one product per tap over all the rows it meets, gathered, so each tap's
// weights serve N·pixels rows at once (2×2×512 at batch 32, 2 threads, both backward passes:
// bfloat16 3.9 -> 1.8 ms, float32 4.9 -> 3.2); bfloat16 runs its forward by taps too.
//
// `product(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)` computes c[m,n] += op(a)·op(b) over row-major
// operands ('T': transposed) and returns false when it cannot (the functions then return false;
// the caller recomputes every output another way, since outputs are assigned whole).
//
// Each function writes one band [c0, c1) of its result's last dimension (K for forward and
// backward-weights, C for backward-data and backward-weights by taps; `Band::whole` for all of
// it), so threads can take disjoint bands, each running its products alone.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu::tiny_image {

// The columns [c0, c1) of a result's last dimension.
struct Band {
  std::int64_t c0, c1;
  static Band whole(std::int64_t columns) { return {0, columns}; }
  std::int64_t width() const { return c1 - c0; }
};

// Calls f(a, b0, r, s0, taps) for output pixel (i, j) and every kernel row r whose input row a lies
// inside, with the run of taps s0..s0+taps−1 whose input columns b0.. lie inside.
template <class F>
void for_each_row_run(const Conv2DParams& p, std::int64_t i, std::int64_t j, F&& f) {
  const std::int64_t col = j * p.stride_w - p.pad_left;
  const std::int64_t s0 = std::max<std::int64_t>(0, -col), s1 = std::min(p.s, p.w - col);
  if (s1 <= s0) return;
  for (std::int64_t r = 0; r < p.r; ++r) {
    const std::int64_t a = i * p.stride_h + r - p.pad_top;
    if (a >= 0 && a < p.h) f(a, col + s0, r, s0, s1 - s0);
  }
}

// y's columns `band` set to the bias b (zeros when b is null), for the products to add to.
template <class T>
void start_outputs(const Conv2DParams& p, const T* b, T* y, Band band) {
  for (std::int64_t row = 0; row < p.n * p.p * p.q; ++row) {
    T* out = y + row * p.k + band.c0;
    if (b != nullptr) {
      std::memcpy(out, b + band.c0, sizeof(T) * band.width());
    } else {
      std::memset(out, 0, sizeof(T) * band.width());
    }
  }
}

// max(0, ·) over y's columns `band` when p.relu, once the products have added to them.
template <class T>
void finish_outputs(const Conv2DParams& p, T* y, Band band) {
  if (!p.relu) return;
  for (std::int64_t row = 0; row < p.n * p.p * p.q; ++row) {
    T* out = y + row * p.k + band.c0;
    for (std::int64_t k = 0; k < band.width(); ++k) out[k] = std::max(out[k], T(0));
  }
}

// y[N,P,Q,K] = conv(x, w) + b (b may be null), then max(0, ·) when p.relu, in the columns `band` of
// K. E: the operands' element type (bfloat16 bits for mixed precision), T: the results'.
template <class E, class T, class Product>
bool forward(const Conv2DParams& p, const E* x, const E* w, const T* b, T* y, Band band, Product&& product) {
  const std::int64_t image = p.h * p.w * p.c, out_image = p.p * p.q * p.k;
  start_outputs(p, b, y, band);
  bool ok = true;
  for (std::int64_t i = 0; i < p.p; ++i) {
    for (std::int64_t j = 0; j < p.q; ++j) {
      for_each_row_run(
          p, i, j, [&](std::int64_t a, std::int64_t b0, std::int64_t r, std::int64_t s0, std::int64_t taps) {
            ok = ok && product('N', 'N', p.n, band.width(), taps * p.c, x + (a * p.w + b0) * p.c, image,
                               w + (r * p.s + s0) * p.c * p.k + band.c0, p.k,
                               y + (i * p.q + j) * p.k + band.c0, out_image);
          });
    }
  }
  if (ok) finish_outputs(p, y, band);
  return ok;
}

// dx[N,H,W,C] from dy[N,P,Q,K] and w, in the columns `band` of C.
template <class E, class T, class Product>
bool backward_data(const Conv2DParams& p, const E* dy, const E* w, T* dx, Band band, Product&& product) {
  const std::int64_t image = p.h * p.w * p.c, out_image = p.p * p.q * p.k;
  for (std::int64_t pixel = 0; pixel < p.n * p.h * p.w; ++pixel) {
    std::memset(dx + pixel * p.c + band.c0, 0, sizeof(T) * band.width());
  }
  bool ok = true;
  for (std::int64_t i = 0; i < p.p; ++i) {
    for (std::int64_t j = 0; j < p.q; ++j) {
      for_each_row_run(
          p, i, j, [&](std::int64_t a, std::int64_t b0, std::int64_t r, std::int64_t s0, std::int64_t taps) {
            for (std::int64_t t = 0; t < taps; ++t) {
              ok = ok && product('N', 'T', p.n, band.width(), p.k, dy + (i * p.q + j) * p.k, out_image,
                                 w + ((r * p.s + s0 + t) * p.c + band.c0) * p.k, p.k,
                                 dx + (a * p.w + b0 + t) * p.c + band.c0, image);
            }
          });
    }
  }
  return ok;
}

// The output rows i (or columns) whose input row i·stride − pad + r lies inside [0, size), as
// [first, last).
inline std::pair<std::int64_t, std::int64_t> inside(std::int64_t r, std::int64_t stride, std::int64_t pad,
                                                    std::int64_t size, std::int64_t out) {
  std::int64_t first = 0, last = out;
  while (first < out && first * stride - pad + r < 0) ++first;
  while (last > first && (last - 1) * stride - pad + r >= size) --last;
  return {first, last};
}

// The output pixels at which tap (r, s) reads an input pixel inside the image: rows [i0, i1),
// columns [j0, j1).
struct TapPixels {
  std::int64_t i0, i1, j0, j1;
  std::int64_t count() const { return (i1 - i0) * (j1 - j0); }
};
inline TapPixels tap_pixels(const Conv2DParams& p, std::int64_t r, std::int64_t s) {
  const auto [i0, i1] = inside(r, p.stride_h, p.pad_top, p.h, p.p);
  const auto [j0, j1] = inside(s, p.stride_w, p.pad_left, p.w, p.q);
  return {i0, i1, j0, j1};
}

// f(row, out, in) for the rows of tap (r, s) in order: every image n and output pixel (i, j) of
// `t`, out = (n·P + i)·Q + j the output pixel's index and in = (n·H + a)·W + b the input pixel's
// that the tap reads there.
template <class F>
void for_each_tap_row(const Conv2DParams& p, std::int64_t r, std::int64_t s, const TapPixels& t, F&& f) {
  std::int64_t row = 0;
  for (std::int64_t n = 0; n < p.n; ++n) {
    for (std::int64_t i = t.i0; i < t.i1; ++i) {
      const std::int64_t a = i * p.stride_h - p.pad_top + r;
      for (std::int64_t j = t.j0; j < t.j1; ++j, ++row) {
        const std::int64_t b = j * p.stride_w - p.pad_left + s;
        f(row, (n * p.p + i) * p.q + j, (n * p.h + a) * p.w + b);
      }
    }
  }
}

// dw[R,S,C,K] from x and dy, in the columns `band` of K (the bias gradient is the caller's: a
// column sum of dy). One product per tap (r, s): the rows of x it reads and the rows of dy it
// meets, over every image and output pixel whose input pixel lies inside, are gathered into
// per-thread buffers, so each product runs N·pixels deep (a product per output pixel would run
// only N deep and spend its time loading and storing dw). `assigns`: the product writes c =
// op(a)·op(b) instead of adding to c, so dw is zeroed only where a tap meets no rows.
template <class E, class T, class Product>
bool backward_weights(const Conv2DParams& p, const E* x, const E* dy, T* dw, Band band, Product&& product,
                      bool assigns = false) {
  thread_local std::vector<E> xs, dys;
  for (std::int64_t r = 0; r < p.r; ++r) {
    for (std::int64_t s = 0; s < p.s; ++s) {
      const TapPixels t = tap_pixels(p, r, s);
      T* out = dw + (r * p.s + s) * p.c * p.k + band.c0;
      const std::int64_t rows = p.n * t.count();
      if (!assigns || rows == 0) {
        for (std::int64_t c = 0; c < p.c; ++c) std::memset(out + c * p.k, 0, sizeof(T) * band.width());
      }
      if (rows == 0) continue;
      xs.resize(rows * p.c);
      dys.resize(rows * band.width());
      for_each_tap_row(p, r, s, t, [&](std::int64_t row, std::int64_t o, std::int64_t in) {
        std::memcpy(xs.data() + row * p.c, x + in * p.c, sizeof(E) * p.c);
        std::memcpy(dys.data() + row * band.width(), dy + o * p.k + band.c0, sizeof(E) * band.width());
      });
      if (!product('T', 'N', p.c, band.width(), rows, xs.data(), p.c, dys.data(), band.width(), out, p.k)) {
        return false;
      }
    }
  }
  return true;
}

// ---- by taps ----
//
// One product per tap (r, s) over the rows that tap meets (every image and output pixel whose
// input pixel lies inside, N·pixels of them: 32 to 128 rows on 2×2 at batch 32, 288 to 512 on
// 4×4), gathered into dense per-thread buffers, so each tap's weights serve all of them in one
// product: a gemm packs its weights operand on every call, and over dense operands oneDNN's
// bfloat16 matmul runs its brgemm kernel.

// The taps' products of the two passes below: per tap, the rows it meets gathered from `from`
// (rows of `width` values, at the output pixel when from_outputs, else at the input pixel the tap
// reads there), `product(r, s, rows, a, c)` computing c[rows, band] (assigning c), and c's rows
// added into `to` (rows of `stride` values, from column band.c0) at the other pixel.
template <class E, class T, class Product>
bool add_tap_products(const Conv2DParams& p, const E* from, std::int64_t width, bool from_outputs, T* to,
                      std::int64_t stride, Band band, Product&& product) {
  thread_local std::vector<E> in;
  thread_local std::vector<T> out;
  for (std::int64_t r = 0; r < p.r; ++r) {
    for (std::int64_t s = 0; s < p.s; ++s) {
      const TapPixels t = tap_pixels(p, r, s);
      const std::int64_t rows = p.n * t.count();
      if (rows == 0) continue;
      in.resize(rows * width);
      out.resize(rows * band.width());
      for_each_tap_row(p, r, s, t, [&](std::int64_t row, std::int64_t o, std::int64_t i) {
        std::memcpy(in.data() + row * width, from + (from_outputs ? o : i) * width, sizeof(E) * width);
      });
      if (!product(r, s, rows, in.data(), out.data())) return false;
      for_each_tap_row(p, r, s, t, [&](std::int64_t row, std::int64_t o, std::int64_t i) {
        T* at = to + (from_outputs ? i : o) * stride + band.c0;
        const T* c = out.data() + row * band.width();
        for (std::int64_t j = 0; j < band.width(); ++j) at[j] += c[j];
      });
    }
  }
  return true;
}

// y[N,P,Q,K] = conv(x, w) + b (b may be null), then max(0, ·) when p.relu, in the columns `band`
// of K: per tap, `product(r, s, rows, a, c)` computes c[rows, band] = a·w[r, s][:, band]
// (assigning c) from the input rows it reads a[rows, C], and the rows of c are added into y at
// their output pixels (each output pixel takes the taps in order).
template <class E, class T, class Product>
bool forward_by_taps(const Conv2DParams& p, const E* x, const T* b, T* y, Band band, Product&& product) {
  start_outputs(p, b, y, band);
  if (!add_tap_products(p, x, p.c, false, y, p.k, band, product)) return false;
  finish_outputs(p, y, band);
  return true;
}

// dx[N,H,W,C] from dy and w, in the columns `band` of C: per tap, `product(r, s, rows, a, c)`
// computes c[rows, band] = a·w[r, s][band, :]ᵀ (assigning c) from the rows of dy it meets a[rows,
// K], and the rows of c are added into dx at the input pixels the tap read.
template <class E, class T, class Product>
bool backward_data_by_taps(const Conv2DParams& p, const E* dy, T* dx, Band band, Product&& product) {
  for (std::int64_t pixel = 0; pixel < p.n * p.h * p.w; ++pixel) {
    std::memset(dx + pixel * p.c + band.c0, 0, sizeof(T) * band.width());
  }
  return add_tap_products(p, dy, p.k, true, dx, p.c, band, product);
}

// dw[R,S,C,K] from x and dy in the rows `band` of C (each tap's block of those rows is contiguous,
// so the products write it in place): per tap, the input rows it reads [rows, band] (transposed)
// times the rows of dy it meets [rows, K]. `product(rows, a, b, c)` computes c[band, K] = aᵀ·b,
// assigning c. The bias gradient is the caller's.
template <class E, class T, class Product>
bool backward_weights_by_taps(const Conv2DParams& p, const E* x, const E* dy, T* dw, Band band,
                              Product&& product) {
  thread_local std::vector<E> xs, dys;
  for (std::int64_t r = 0; r < p.r; ++r) {
    for (std::int64_t s = 0; s < p.s; ++s) {
      const TapPixels t = tap_pixels(p, r, s);
      T* out = dw + ((r * p.s + s) * p.c + band.c0) * p.k;
      const std::int64_t rows = p.n * t.count();
      if (rows == 0) {
        std::memset(out, 0, sizeof(T) * band.width() * p.k);
        continue;
      }
      xs.resize(rows * band.width());
      dys.resize(rows * p.k);
      for_each_tap_row(p, r, s, t, [&](std::int64_t row, std::int64_t o, std::int64_t i) {
        std::memcpy(xs.data() + row * band.width(), x + i * p.c + band.c0, sizeof(E) * band.width());
        std::memcpy(dys.data() + row * p.k, dy + o * p.k, sizeof(E) * p.k);
      });
      if (!product(rows, xs.data(), dys.data(), out)) return false;
    }
  }
  return true;
}

}  // namespace reskit::kernels::cpu::tiny_image

// ---- the paths (tiny_image.cpp) ----

namespace reskit::kernels::onednn {

// float32 through oneDNN's sgemm, one band of output (or input) channels per thread. Backward-weights
// also assigns db (when given) as oneDNN's convolutions sum it. They return false when a product
// could not run (nothing usable written).
bool tiny_image_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
bool tiny_image_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx);
bool tiny_image_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                 float* db);
// Mixed precision: bfloat16 operands (the caller's roundings where given, else converted) through
// oneDNN matmuls over strided memory, float32 results. Backward: dw (with db) when dw is given,
// then dx when dx is given, sharing dy's conversion.
bool tiny_image_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
bool tiny_image_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w,
                              float* dx, float* dw, float* db);

}  // namespace reskit::kernels::onednn

namespace reskit::kernels::cpu {

// float and double through BLAS, the whole of each product on BLAS's threads; db (when given) in
// double (channel_sums.h).
template <class T>
void tiny_image_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void tiny_image_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx);
template <class T>
void tiny_image_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db);

}  // namespace reskit::kernels::cpu
