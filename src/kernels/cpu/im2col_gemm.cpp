// Conv2D through BLAS: im2col + gemm, and 1×1 stride-1 unpadded convolutions as one gemm
// (im2col_gemm.h). One thread pool: OpenMP, shared with the OpenMP build of OpenBLAS and with oneDNN.
// float64 where reskit's AVX-512 gemm runs (gemm.h): forward and backward-weights hand the gemm the
// column matrix as rows to gather (dgemm.h's DgemmRows) instead of storing it, the same values in
// the same order (the same bits) without the column matrix's trips through memory.
#include "kernels/cpu/im2col_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <type_traits>
#include <vector>

#include "kernels/cpu/channel_sums.h"
#include "kernels/cpu/gemm.h"

namespace reskit::kernels::cpu {

namespace {

// Images per chunk so that a chunk's column matrix stays under ~16M elements.
std::int64_t images_per_chunk(const Conv2DParams& p) {
  const std::int64_t per_image = p.p * p.q * p.r * p.s * p.c;
  return std::clamp<std::int64_t>((std::int64_t{1} << 24) / std::max<std::int64_t>(per_image, 1), 1, p.n);
}

// float64 backward-data with reskit's gemm: chunks of images whose column matrix (≤ 2^18 elements,
// 2 MiB) stays in the L2 caches between the product that writes it and col2im, which reads it
// right away; at least 2 images, so that col2im (a thread per image) keeps both threads busy. Each
// image's dx sums its own rows in the same order whatever the chunk: the same bits.
std::int64_t images_per_cached_chunk(const Conv2DParams& p) {
  const std::int64_t per_image = p.p * p.q * p.r * p.s * p.c;
  return std::clamp<std::int64_t>((std::int64_t{1} << 18) / std::max<std::int64_t>(per_image, 1), 2,
                                  std::max<std::int64_t>(p.n, 1));
}

template <class T>
T* scratch(std::size_t elements) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < elements) buffer.resize(elements);
  return buffer.data();
}

// col[(n,op,oq), (r,s,c)] for images [n0, n0+nb). The taps s of one kernel row whose input
// columns lie inside read adjacent columns of x (no dilation): one contiguous run, copied at once
// (ResNet-50's 7×7 stem over 3 channels: one 168-byte copy instead of seven of 24 bytes).
template <class T>
void im2col(const Conv2DParams& p, const T* x, std::int64_t n0, std::int64_t nb, T* col) {
  const std::int64_t row_len = p.r * p.s * p.c;
#pragma omp parallel for collapse(2) schedule(static) if (nb * p.p * p.q * row_len > kParallelGrain)
  for (std::int64_t n = 0; n < nb; ++n)
    for (std::int64_t op = 0; op < p.p; ++op)
      for (std::int64_t oq = 0; oq < p.q; ++oq) {
        T* row = col + ((n * p.p + op) * p.q + oq) * row_len;
        // Taps [s0, s1) land inside the image's columns.
        const std::int64_t iw0 = oq * p.stride_w - p.pad_left;
        const std::int64_t s0 = std::clamp<std::int64_t>(-iw0, 0, p.s);
        const std::int64_t s1 = std::clamp<std::int64_t>(p.w - iw0, s0, p.s);
        for (std::int64_t r = 0; r < p.r; ++r) {
          const std::int64_t ih = op * p.stride_h + r - p.pad_top;
          T* dst = row + r * p.s * p.c;
          if (ih < 0 || ih >= p.h) {
            std::fill_n(dst, p.s * p.c, T(0));
            continue;
          }
          std::fill_n(dst, s0 * p.c, T(0));
          if (s1 > s0)
            std::memcpy(dst + s0 * p.c, x + (((n0 + n) * p.h + ih) * p.w + iw0 + s0) * p.c,
                        sizeof(T) * (s1 - s0) * p.c);
          std::fill_n(dst + s1 * p.c, (p.s - s1) * p.c, T(0));
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

// The column matrix of images [n0, ..) as rows for reskit's float64 gemm (dgemm.h's DgemmRows):
// col[i, j0 .. j0+len) gathered as im2col above writes it (the same values), never stored whole.
struct PatchRows {
  const Conv2DParams* p;
  const double* x;
  std::int64_t n0;
};

void fill_patch_row(const void* context, std::int64_t i, std::int64_t j0, std::int64_t len, double* dst) {
  const PatchRows& rows = *static_cast<const PatchRows*>(context);
  const Conv2DParams& p = *rows.p;
  const std::int64_t oq = i % p.q, op = i / p.q % p.p, n = rows.n0 + i / (p.p * p.q);
  const std::int64_t iw0 = oq * p.stride_w - p.pad_left;
  const std::int64_t s0 = std::clamp<std::int64_t>(-iw0, 0, p.s);
  const std::int64_t s1 = std::clamp<std::int64_t>(p.w - iw0, s0, p.s);
  const std::int64_t kernel_row = p.s * p.c, end = j0 + len;
  for (std::int64_t j = j0; j < end;) {
    const std::int64_t r = j / kernel_row, row_start = r * kernel_row;
    const std::int64_t row_end = std::min(end, row_start + kernel_row);
    const std::int64_t ih = op * p.stride_h + r - p.pad_top;
    double* out = dst + (j - j0);
    if (ih < 0 || ih >= p.h) {
      std::fill_n(out, row_end - j, 0.0);
      j = row_end;
      continue;
    }
    // Taps [s0, s1) of this kernel row are inside the image: x's columns iw0 + s0 .. iw0 + s1.
    const std::int64_t in0 = std::clamp(row_start + s0 * p.c, j, row_end);
    const std::int64_t in1 = std::clamp(row_start + s1 * p.c, in0, row_end);
    std::fill_n(out, in0 - j, 0.0);
    if (in1 > in0) {
      std::memcpy(dst + (in0 - j0), rows.x + ((n * p.h + ih) * p.w + iw0) * p.c + (in0 - row_start),
                  sizeof(double) * static_cast<std::size_t>(in1 - in0));
    }
    std::fill_n(dst + (in1 - j0), row_end - in1, 0.0);
    j = row_end;
  }
}

}  // namespace

template <class T>
void im2col_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  if constexpr (std::is_same_v<T, double>) {
    if (float64_gemm_is_reskit()) {  // the patches gathered into the gemm's packed blocks
      // The bias added as the gemm stores y (the same bits, one pass over y fewer), unless a ReLU follows.
      const PatchRows rows{&p, x, 0};
      dgemm_avx512_rows(false, false, p.n * pq, p.k, rsc, 1.0, DgemmRows{fill_patch_row, &rows}, w, p.k, 0.0,
                        y, p.k, p.relu ? nullptr : b);
      if (p.relu) add_bias(p.n * pq, p.k, b, y, p.relu);
      return;
    }
  }
  const std::int64_t chunk = images_per_chunk(p);
  T* col = scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
  for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
    const std::int64_t nb = std::min(chunk, p.n - n0);
    im2col(p, x, n0, nb, col);
    gemm(false, false, nb * pq, p.k, rsc, T(1), col, rsc, w, p.k, T(0), y + n0 * pq * p.k, p.k);
  }
  add_bias(p.n * pq, p.k, b, y, p.relu);
}

template <class T>
void im2col_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  const std::int64_t image = p.h * p.w * p.c;
  if constexpr (std::is_same_v<T, double>) {
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (float64_gemm_is_reskit() && threads > 1 && p.n >= threads) {
      // Each thread its own run of images, in chunks whose column matrix stays in its own L2: a
      // one-thread product, then col2im of those images, no barrier between chunks. Each image's
      // dx sums its own rows in the same order whatever the chunk or thread: the same bits.
      const std::int64_t chunk =
          std::clamp<std::int64_t>((std::int64_t{1} << 18) / std::max<std::int64_t>(pq * rsc, 1), 1, p.n);
      std::exception_ptr error;  // rethrown once every thread has finished
#pragma omp parallel num_threads(threads)
      {
        omp_set_num_threads(1);  // this implicit task's products run on its thread alone
        const int t = omp_get_thread_num(), count = omp_get_num_threads();
        const std::int64_t first = p.n * t / count, last = p.n * (t + 1) / count;
        try {
          std::fill_n(dx + first * image, (last - first) * image, 0.0);
          double* col = scratch<double>(static_cast<std::size_t>(chunk * pq * rsc));
          for (std::int64_t n0 = first; n0 < last; n0 += chunk) {
            const std::int64_t nb = std::min(chunk, last - n0);
            gemm(false, true, nb * pq, rsc, p.k, 1.0, dy + n0 * pq * p.k, p.k, w, p.k, 0.0, col, rsc);
            col2im(p, col, n0, nb, dx);
          }
        } catch (...) {
#pragma omp critical(reskit_im2col_backward_data)
          if (!error) error = std::current_exception();
        }
      }
      if (error) std::rethrow_exception(error);
      return;
    }
  }
#pragma omp parallel for schedule(static) if (p.n * image > kParallelGrain)
  for (std::int64_t n = 0; n < p.n; ++n) std::fill_n(dx + n * image, image, T(0));
  const std::int64_t chunk = std::is_same_v<T, double> && float64_gemm_is_reskit()
                                 ? images_per_cached_chunk(p)
                                 : images_per_chunk(p);
  T* col = scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
  for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
    const std::int64_t nb = std::min(chunk, p.n - n0);
    gemm(false, true, nb * pq, rsc, p.k, T(1), dy + n0 * pq * p.k, p.k, w, p.k, T(0), col, rsc);
    col2im(p, col, n0, nb, dx);
  }
}

template <class T>
void im2col_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  const std::int64_t rsc = p.r * p.s * p.c, pq = p.p * p.q;
  const std::int64_t chunk = images_per_chunk(p);
  // float64 with reskit's gemm: the same chunks (so the same sums), their patches never stored.
  const bool gathered = std::is_same_v<T, double> && float64_gemm_is_reskit();
  T* col = gathered ? nullptr : scratch<T>(static_cast<std::size_t>(chunk * pq * rsc));
  for (std::int64_t n0 = 0; n0 < p.n; n0 += chunk) {
    const std::int64_t nb = std::min(chunk, p.n - n0);
    if constexpr (std::is_same_v<T, double>) {
      if (gathered) {
        const PatchRows rows{&p, x, n0};
        dgemm_avx512_rows(true, false, rsc, p.k, nb * pq, 1.0, DgemmRows{fill_patch_row, &rows},
                          dy + n0 * pq * p.k, p.k, n0 == 0 ? 0.0 : 1.0, dw, p.k);
        continue;
      }
    }
    im2col(p, x, n0, nb, col);
    gemm(true, false, rsc, p.k, nb * pq, T(1), col, rsc, dy + n0 * pq * p.k, p.k, n0 == 0 ? T(0) : T(1), dw,
         p.k);
  }
  if (db) column_sums_f64(p.n * pq, p.k, dy, db);
}

template <class T>
void pointwise_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  const std::int64_t pq = p.p * p.q;
  if constexpr (std::is_same_v<T, double>) {
    if (float64_gemm_is_reskit() && !p.relu) {  // the bias added as the gemm stores y, as above
      dgemm_avx512(false, false, p.n * pq, p.k, p.c, 1.0, x, p.c, w, p.k, 0.0, y, p.k, b);
      return;
    }
  }
  gemm(false, false, p.n * pq, p.k, p.c, T(1), x, p.c, w, p.k, T(0), y, p.k);
  add_bias(p.n * pq, p.k, b, y, p.relu);
}

template <class T>
void pointwise_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  gemm(false, true, p.n * p.p * p.q, p.c, p.k, T(1), dy, p.k, w, p.k, T(0), dx, p.c);
}

template <class T>
void pointwise_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  const std::int64_t pq = p.p * p.q;
  gemm(true, false, p.c, p.k, p.n * pq, T(1), x, p.c, dy, p.k, T(0), dw, p.k);
  if (db) column_sums_f64(p.n * pq, p.k, dy, db);
}

#define RESKIT_INSTANTIATE(T)                                                                \
  template void im2col_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*);    \
  template void im2col_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);        \
  template void im2col_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*); \
  template void pointwise_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*); \
  template void pointwise_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);     \
  template void pointwise_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels::cpu
