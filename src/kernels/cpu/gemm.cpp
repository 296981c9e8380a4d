// im2col + GEMM convolution, GEMM Dense, and OpenMP loops for BatchNormalization and pooling.
// One thread pool: OpenMP, shared with the OpenMP build of OpenBLAS and with oneDNN.
#include "kernels/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/tiny_image.h"

namespace reskit::kernels::cpu {

namespace {

// C[M,N] = alpha·op(A)·op(B) + beta·C, row-major.
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

// A 1x1, stride-1, unpadded convolution is a plain matrix product on the NHWC activations.
bool is_pointwise(const Conv2DParams& p) {
  return p.r == 1 && p.s == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 && p.pad_left == 0 &&
         p.pad_bottom == 0 && p.pad_right == 0;
}

// Images per chunk so that a chunk's column matrix stays under ~16M elements.
std::int64_t images_per_chunk(const Conv2DParams& p) {
  const std::int64_t per_image = p.p * p.q * p.r * p.s * p.c;
  return std::clamp<std::int64_t>((std::int64_t{1} << 24) / std::max<std::int64_t>(per_image, 1), 1, p.n);
}

template <class T>
T* scratch(std::size_t elements) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < elements) buffer.resize(elements);
  return buffer.data();
}

// col[(n,op,oq), (r,s,c)] for images [n0, n0+nb)
template <class T>
void im2col(const Conv2DParams& p, const T* x, std::int64_t n0, std::int64_t nb, T* col) {
  const std::int64_t row_len = p.r * p.s * p.c;
#pragma omp parallel for collapse(2) schedule(static) if (nb * p.p * p.q * row_len > kParallelGrain)
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        T* row = col + ((n * p.p + op) * p.q + oq) * row_len;
        for (std::int64_t r = 0; r < p.r; ++r) {
          std::int64_t ih = op * p.stride_h + r - p.pad_top;
          for (std::int64_t s = 0; s < p.s; ++s) {
            std::int64_t iw = oq * p.stride_w + s - p.pad_left;
            T* dst = row + (r * p.s + s) * p.c;
            if (ih < 0 || ih >= p.h || iw < 0 || iw >= p.w) {
              std::fill_n(dst, p.c, T(0));
            } else {
              std::memcpy(dst, x + (((n0 + n) * p.h + ih) * p.w + iw) * p.c, sizeof(T) * p.c);
            }
          }
        }
      }
}

// dx[images n0..n0+nb) += scatter of dcol (dx zeroed by the caller)
template <class T>
void col2im(const Conv2DParams& p, const T* col, std::int64_t n0, std::int64_t nb, T* dx) {
  const std::int64_t row_len = p.r * p.s * p.c;
#pragma omp parallel for schedule(static) if (nb * p.p * p.q * row_len > kParallelGrain)
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        const T* row = col + ((n * p.p + op) * p.q + oq) * row_len;
        for (std::int64_t r = 0; r < p.r; ++r) {
          std::int64_t ih = op * p.stride_h + r - p.pad_top;
          if (ih < 0 || ih >= p.h) continue;
          for (std::int64_t s = 0; s < p.s; ++s) {
            std::int64_t iw = oq * p.stride_w + s - p.pad_left;
            if (iw < 0 || iw >= p.w) continue;
            const T* src = row + (r * p.s + s) * p.c;
            T* dst = dx + (((n0 + n) * p.h + ih) * p.w + iw) * p.c;
            for (std::int64_t c = 0; c < p.c; ++c) dst[c] += src[c];
          }
        }
      }
}

// y[i, j] += b[j] (b may be null), then max(0, ·) when relu.
template <class T>
void add_bias(std::int64_t rows, std::int64_t k, const T* b, T* y, bool relu = false) {
  if (!b && !relu) return;
  const T floor = relu ? T(0) : -std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) if (rows * k > kParallelGrain)
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < k; ++j) y[i * k + j] = std::max(y[i * k + j] + (b ? b[j] : T(0)), floor);
}

// out[k][c] = Σ_i of row i's k-th term for channel c, kTerms sums at once, in double. add_row(i, acc)
// adds row i's terms into acc[k·C + c]. Rows go in blocks of 256 whose partial sums are added in
// block order: the same bits on any thread count (exact resume of float64 training).
template <int kTerms, class F>
void channel_sums(std::int64_t rows, std::int64_t C, std::array<std::vector<double>, kTerms>& out,
                  F add_row) {
  constexpr std::int64_t kBlock = 256;
  const std::int64_t blocks = (rows + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<std::size_t>(blocks * kTerms * C), 0.0);
#pragma omp parallel for schedule(static) if (rows * C > kParallelGrain)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    double* acc = part.data() + blk * kTerms * C;
    const std::int64_t end = std::min(rows, (blk + 1) * kBlock);
    for (std::int64_t i = blk * kBlock; i < end; ++i) add_row(i, acc);
  }
  for (int k = 0; k < kTerms; ++k) {
    out[k].assign(static_cast<std::size_t>(C), 0.0);
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const double* from = part.data() + (blk * kTerms + k) * C;
      for (std::int64_t c = 0; c < C; ++c) out[k][c] += from[c];
    }
  }
}

// db[k] = Σ_rows dy[row, k], in double (the same bits on any thread count).
template <class T>
void column_sums(std::int64_t rows, std::int64_t k, const T* dy, T* db) {
  std::array<std::vector<double>, 1> total;
  channel_sums<1>(rows, k, total, [=](std::int64_t i, double* acc) {
    const T* row = dy + i * k;
    for (std::int64_t j = 0; j < k; ++j) acc[j] += double(row[j]);
  });
  for (std::int64_t j = 0; j < k; ++j) db[j] = static_cast<T>(total[0][j]);
}

// c[m,n] += op(a)·op(b) through BLAS (tiny_image's product).
template <class T>
bool accumulate(char ta, char tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
                std::int64_t lda, const T* b, std::int64_t ldb, T* c, std::int64_t ldc) {
  gemm(ta == 'T', tb == 'T', m, n, k, T(1), a, lda, b, ldb, T(1), c, ldc);
  return true;
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  if (tiny_image::applies(p)) {
    tiny_image::forward(p, x, w, b, y, tiny_image::Band::whole(p.k), accumulate<T>);
    return;
  }
  if (is_pointwise(p)) {
    gemm(false, false, p.n * pq, p.k, p.c, T(1), x, p.c, w, p.k, T(0), y, p.k);
  } else {
    const std::int64_t chunk = images_per_chunk(p);
    T* col = scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
    for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
      const std::int64_t nb = std::min(chunk, p.n - n0);
      im2col(p, x, n0, nb, col);
      gemm(false, false, nb * pq, p.k, rsc, T(1), col, rsc, w, p.k, T(0), y + n0 * pq * p.k, p.k);
    }
  }
  add_bias(p.n * pq, p.k, b, y, p.relu);
}

template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  if (is_pointwise(p)) {
    gemm(false, true, p.n * pq, p.c, p.k, T(1), dy, p.k, w, p.k, T(0), dx, p.c);
    return;
  }
  if (tiny_image::applies(p)) {
    tiny_image::backward_data(p, dy, w, dx, tiny_image::Band::whole(p.c), accumulate<T>);
    return;
  }
  const std::int64_t image = p.h * p.w * p.c;
#pragma omp parallel for schedule(static) if (p.n * image > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n) std::fill_n(dx + n * image, image, T(0));
  const std::int64_t chunk = images_per_chunk(p);
  T* col = scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
  for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
    const std::int64_t nb = std::min(chunk, p.n - n0);
    gemm(false, true, nb * pq, rsc, p.k, T(1), dy + n0 * pq * p.k, p.k, w, p.k, T(0), col, rsc);
    col2im(p, col, n0, nb, dx);
  }
}

template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  if (tiny_image::applies(p)) {
    tiny_image::backward_weights(p, x, dy, dw, tiny_image::Band::whole(p.k), accumulate<T>);
  } else if (is_pointwise(p)) {
    gemm(true, false, p.c, p.k, p.n * pq, T(1), x, p.c, dy, p.k, T(0), dw, p.k);
  } else {
    const std::int64_t chunk = images_per_chunk(p);
    T* col = scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
    for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
      const std::int64_t nb = std::min(chunk, p.n - n0);
      im2col(p, x, n0, nb, col);
      gemm(true, false, rsc, p.k, nb * pq, T(1), col, rsc, dy + n0 * pq * p.k, p.k, n0 == 0 ? T(0) : T(1), dw,
           p.k);
    }
  }
  if (db) column_sums(p.n * pq, p.k, dy, db);
}

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y) {
  gemm(false, false, p.n, p.k, p.c, T(1), x, p.c, w, p.k, T(0), y, p.k);
  if (b) add_bias(p.n, p.k, b, y);
}

template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (dx) gemm(false, true, p.n, p.c, p.k, T(1), dy, p.k, w, p.k, T(0), dx, p.c);
  gemm(true, false, p.c, p.k, p.n, T(1), x, p.c, dy, p.k, T(0), dw, p.k);
  if (db) column_sums(p.n, p.k, dy, db);
}

// ---- BatchNormalization: per-thread partial sums over rows, vectorised across channels ----

namespace {
// y[i,c] = x[i,c]·scale[c] + shift[c] (+ residual[i,c]), then max(0, ·) when p.relu.
template <class T>
void scale_shift(const BatchNormParams& p, const T* x, const T* scale, const T* shift, const T* residual,
                 T* y) {
  const std::int64_t m = p.rows, C = p.channels;
  const T floor = p.relu ? T(0) : -std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static) if (m * C > kParallelGrain)
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t c = 0; c < C; ++c) {
      const T v = x[i * C + c] * scale[c] + shift[c];
      y[i * C + c] = std::max(residual ? v + residual[i * C + c] : v, floor);
    }
}

}  // namespace

template <class T>
void batch_norm_affine(std::int64_t C, double epsilon, const T* gamma, const T* beta, const T* mean,
                       const T* var, std::vector<T>& scale, std::vector<T>& shift,
                       std::vector<double>& rstd) {
  scale.resize(static_cast<std::size_t>(C));
  shift.resize(scale.size());
  rstd.resize(scale.size());
  for (std::int64_t c = 0; c < C; ++c) {
    rstd[c] = 1.0 / std::sqrt(double(var[c]) + epsilon);
    const double s = double(gamma[c]) * rstd[c];
    scale[c] = static_cast<T>(s);
    shift[c] = static_cast<T>(double(beta[c]) - double(mean[c]) * s);
  }
}

template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual) {
  const std::int64_t m = p.rows, C = p.channels;
  std::array<std::vector<double>, 1> sum, sq;
  channel_sums<1>(m, C, sum, [=](std::int64_t i, double* acc) {
    const T* xr = x + i * C;
    for (std::int64_t c = 0; c < C; ++c) acc[c] += double(xr[c]);
  });
  std::vector<double>& mu = sum[0];
  for (auto& v : mu) v /= static_cast<double>(m);
  const double* mup = mu.data();
  channel_sums<1>(m, C, sq, [=](std::int64_t i, double* acc) {
    const T* xr = x + i * C;
    for (std::int64_t c = 0; c < C; ++c) {
      const double d = double(xr[c]) - mup[c];
      acc[c] += d * d;
    }
  });
  std::vector<T> scale(C), shift(C);
  for (std::int64_t c = 0; c < C; ++c) {
    double v = sq[0][c] / static_cast<double>(m);
    double s = double(gamma[c]) / std::sqrt(v + p.epsilon);
    scale[c] = static_cast<T>(s);
    shift[c] = static_cast<T>(double(beta[c]) - mu[c] * s);
    mean[c] = static_cast<T>(mu[c]);
    var[c] = static_cast<T>(v);
  }
  scale_shift(p, x, scale.data(), shift.data(), residual, y);
}

template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual) {
  std::vector<T> scale, shift;
  std::vector<double> rstd;
  batch_norm_affine(p.channels, p.epsilon, gamma, beta, mean, var, scale, shift, rstd);
  scale_shift(p, x, scale.data(), shift.data(), residual, y);
}

template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta) {
  const std::int64_t m = p.rows, C = p.channels;
  std::vector<T> scale, shift;  // the forward's, for the fused ReLU's mask y > 0
  std::vector<double> rstd;
  batch_norm_affine(C, p.epsilon, gamma, beta, mean, var, scale, shift, rstd);
  // The gradient reaching the normalization: dy, or 0 where the fused ReLU's output (the
  // forward's affine map of x) was 0. Raw pointers captured by value, so the loops vectorise.
  const T* sc = scale.data();
  const T* sh = shift.data();
  const bool relu = p.relu;
  std::vector<double> mean_d(mean, mean + C);
  const double* mu = mean_d.data();
  std::array<std::vector<double>, 2> sums;  // Σ g and Σ g·(x − mean)
  channel_sums<2>(m, C, sums, [=](std::int64_t i, double* acc) {
    // Locals, not the closure's members: stores to acc could otherwise clobber them for GCC.
    const T* __restrict xr = x + i * C;
    const T* __restrict dyr = dy + i * C;
    const T* __restrict msc = sc;
    const T* __restrict msh = sh;
    const double* __restrict mean_c = mu;
    double* __restrict s_dy = acc;
    double* __restrict s_dyx = acc + C;
    if (!relu) {
      for (std::int64_t c = 0; c < C; ++c) {
        s_dy[c] += double(dyr[c]);
        s_dyx[c] += double(dyr[c]) * (double(xr[c]) - mean_c[c]);
      }
      return;
    }
    // The masked gradient first, into a small buffer: GCC vectorises the select in a loop of
    // its own, not inside the accumulation (32768 x 64 rows: 3.0 against 4.2 ms).
    constexpr std::int64_t kChunk = 256;
    double g[kChunk];
    for (std::int64_t c0 = 0; c0 < C; c0 += kChunk) {
      const std::int64_t width = std::min(kChunk, C - c0);
      for (std::int64_t c = 0; c < width; ++c) {
        const T d = dyr[c0 + c];
        g[c] = double(xr[c0 + c] * msc[c0 + c] + msh[c0 + c] > T(0) ? d : T(0));
      }
      for (std::int64_t c = 0; c < width; ++c) {
        s_dy[c0 + c] += g[c];
        s_dyx[c0 + c] += g[c] * (double(xr[c0 + c]) - mean_c[c0 + c]);
      }
    }
  });
  const std::vector<double>& sdy = sums[0];
  std::vector<double> sdyx = sums[1];
  for (std::int64_t c = 0; c < C; ++c) sdyx[c] *= rstd[c];
  // dx = a·dy + b·x + d per channel, from dx = gamma·rstd/M·(M·dy − Σdy − x̂·Σdy·x̂)
  std::vector<T> a(C), b(C), d(C);
  const double M = static_cast<double>(m);
  for (std::int64_t c = 0; c < C; ++c) {
    double g = double(gamma[c]) * rstd[c];
    double bx = -g * sdyx[c] * rstd[c] / M;
    a[c] = static_cast<T>(g);
    b[c] = static_cast<T>(bx);
    d[c] = static_cast<T>(-g * sdy[c] / M - bx * double(mean[c]));
    dgamma[c] = static_cast<T>(sdyx[c]);
    dbeta[c] = static_cast<T>(sdy[c]);
  }
  const T* ap = a.data();
  const T* bp = b.data();
  const T* dp = d.data();
#pragma omp parallel for schedule(static) if (m * C > kParallelGrain)
  for (std::int64_t i = 0; i < m; ++i) {
    const T* xr = x + i * C;
    const T* dyr = dy + i * C;
    T* dxr = dx + i * C;
    if (!relu) {
      for (std::int64_t c = 0; c < C; ++c) dxr[c] = ap[c] * dyr[c] + bp[c] * xr[c] + dp[c];
      continue;
    }
    for (std::int64_t c = 0; c < C; ++c) {
      const T d = dyr[c];  // loaded whatever the mask, so the select vectorises
      const T g = xr[c] * sc[c] + sh[c] > T(0) ? d : T(0);
      dxr[c] = ap[c] * g + bp[c] * xr[c] + dp[c];
    }
  }
}

// ---- pooling: parallel over images, channels innermost ----

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

// The first maximum of each window wins (as in the reference). Per channel the winner is kept
// as its number among the window's valid cells (int32, like the values' lanes), updated with
// selects, so the channel loop vectorises.
template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx) {
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
          cells.clear();
          for (std::int64_t r = 0; r < p.r; ++r) {
            const std::int64_t ih = op * p.stride_h + r - p.pad_top;
            if (ih < 0 || ih >= p.h) continue;
            for (std::int64_t s = 0; s < p.s; ++s) {
              const std::int64_t iw = oq * p.stride_w + s - p.pad_left;
              if (iw >= 0 && iw < p.w) cells.push_back(((n * p.h + ih) * p.w + iw) * C);
            }
          }
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

#define RESKIT_INSTANTIATE(T)                                                                                \
  template void conv2d_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*);                    \
  template void conv2d_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);                        \
  template void conv2d_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*);                 \
  template void dense_forward<T>(const DenseParams&, const T*, const T*, const T*, T*);                      \
  template void dense_backward<T>(const DenseParams&, const T*, const T*, const T*, T*, T*, T*);             \
  template void batch_norm_forward_training<T>(const BatchNormParams&, const T*, const T*, const T*, T*, T*, \
                                               T*, const T*);                                                \
  template void batch_norm_forward_inference<T>(const BatchNormParams&, const T*, const T*, const T*,        \
                                                const T*, const T*, T*, const T*);                           \
  template void batch_norm_backward<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,       \
                                       const T*, const T*, T*, T*, T*);                                      \
  template void batch_norm_affine<T>(std::int64_t, double, const T*, const T*, const T*, const T*,           \
                                     std::vector<T>&, std::vector<T>&, std::vector<double>&);                \
  template void max_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void max_pool2d_backward<T>(const Pool2DParams&, const T*, const T*, T*);                         \
  template void avg_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void avg_pool2d_backward<T>(const Pool2DParams&, const T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels::cpu
