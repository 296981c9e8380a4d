// BatchNormalization as OpenMP loops over rows, vectorised across channels, with per-channel sums
// in double in a fixed order (channel_sums.h): float64's kernels (float32 has batch_norm_f32.h).
// Also the per-channel affine map both share.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// Instantiated for double only: the AVX-512 build (batch_norm_f64_avx512.h) where the CPU has
// it, else f64_generic's loops; both give the same bits.
template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual);
template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual);
template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta);

// The build for any x86-64 (for tests; the functions above choose).
namespace f64_generic {
template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual);
template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual);
template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta);
}  // namespace f64_generic

// The normalization with given statistics as one affine map per channel: scale = gamma·rstd,
// shift = beta − mean·scale, rstd = 1/sqrt(var + eps). Per-channel scalar work, defined (for float
// and double) in batch_norm_f64.cpp and shared by the float32 batch-norm builds.
template <class T>
void batch_norm_affine(std::int64_t C, double epsilon, const T* gamma, const T* beta, const T* mean,
                       const T* var, std::vector<T>& scale, std::vector<T>& shift, std::vector<double>& rstd);

}  // namespace reskit::kernels::cpu
