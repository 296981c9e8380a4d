// Per-channel sums in double over rows, in blocks of 256 rows added in block order: the same bits
// on any thread count (exact resume of float64 training). Shared by the BLAS paths' bias gradients
// (im2col_gemm.cpp, tiny_image.cpp, dense.cpp) and the float64 batch normalization.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/batch_norm_f32.h"  // avx512_available
#include "kernels/cpu/batch_norm_f64_avx512.h"
#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// out[k][c] = Σ_i of row i's k-th term for channel c, kTerms sums at once, in double. add_row(i, acc)
// adds row i's terms into acc[k·C + c].
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

// db[k] = Σ_rows dy[row, k], in double (the same bits on any thread count); oneDNN paths use
// onednn::column_sums_f32, which sums in float as oneDNN does.
template <class T>
void column_sums_f64(std::int64_t rows, std::int64_t k, const T* dy, T* db) {
  if constexpr (std::is_same_v<T, double>) {
    if (avx512_available()) return f64_avx512::column_sums(rows, k, dy, db);  // the same bits
  }
  std::array<std::vector<double>, 1> total;
  channel_sums<1>(rows, k, total, [=](std::int64_t i, double* acc) {
    const T* row = dy + i * k;
    for (std::int64_t j = 0; j < k; ++j) acc[j] += double(row[j]);
  });
  for (std::int64_t j = 0; j < k; ++j) db[j] = static_cast<T>(total[0][j]);
}

}  // namespace reskit::kernels::cpu
