// Row-major gemm for float and double, and the bias add (with an optional ReLU) that follows a
// product. Shared by the BLAS paths: im2col_gemm.cpp, tiny_image.cpp, dense.cpp. float runs
// OpenBLAS (its OpenMP build: one thread pool with oneDNN and reskit's loops); double runs
// reskit's own AVX-512 gemm (dgemm.h) where the CPU has AVX-512, else OpenBLAS: the one place that
// chooses, by a CPU feature (a fixed fact of the machine, so a run gives the same bits every time).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cpu/dgemm.h"
#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// The kernels OpenBLAS chose at load ("SkylakeX", "Haswell", "Prescott", ...).
inline const char* blas_core_name() { return openblas_get_corename(); }
// Whether double's gemm below runs reskit's AVX-512 kernel (else OpenBLAS's dgemm).
inline bool float64_gemm_is_reskit() { return dgemm_avx512_available(); }

// C[M,N] = alpha·op(A)·op(B) + beta·C, row-major.
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
inline void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                 std::int64_t ldc) {
  if (dgemm_avx512_available()) return dgemm_avx512(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
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

}  // namespace reskit::kernels::cpu
