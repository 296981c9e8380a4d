// The AVX-512 build of float64 BatchNormalization (batch_norm_f64_avx512.cpp): the same
// arithmetic, in the same order per channel, as batch_norm_f64.cpp's loops (bit for bit the same
// results), with each block's sums kept in registers over tiles of channels instead of an array
// in memory. Compiled with -mavx512f/vl/bw/dq and without contraction into fused multiply-adds;
// batch_norm_f64.cpp calls it only where avx512_available() (batch_norm_f32.h).
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu::f64_avx512 {

void batch_norm_forward_training(const BatchNormParams& p, const double* x, const double* gamma,
                                 const double* beta, double* y, double* mean, double* var,
                                 const double* residual);
void batch_norm_forward_inference(const BatchNormParams& p, const double* x, const double* gamma,
                                  const double* beta, const double* mean, const double* var, double* y,
                                  const double* residual);
void batch_norm_backward(const BatchNormParams& p, const double* x, const double* dy, const double* gamma,
                         const double* beta, const double* mean, const double* var, double* dx,
                         double* dgamma, double* dbeta);

// db[j] = Σ_rows dy[row, j]: channel_sums.h's column_sums_f64 (its order, its bits), the sums in
// registers.
void column_sums(std::int64_t rows, std::int64_t k, const double* dy, double* db);

}  // namespace reskit::kernels::cpu::f64_avx512
