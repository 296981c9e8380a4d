// Float32 BatchNormalization over the innermost (channel) axis, x as (rows, C) row-major: the fast
// path dispatch.cpp takes for float32 (kernels/ref/batch_norm.h defines the results). Two passes
// over the data each way:
//   forward (training): per-channel sums of (x − x₀) and (x − x₀)², x₀ the first row (a shift that
//     keeps the one-pass variance clear of cancellation), then y = x·scale + shift (+ the
//     residual of a fused Add), with max(0, ·) when the ReLU is fused (p.relu);
//   backward: per-channel Σg and Σg·(x − mean), g = dy, or dy where y > 0 when the ReLU was fused
//     (y recomputed from x and the returned statistics; only a y within rounding of 0, at the
//     ReLU's kink, can fall the other way), then dx = a·(g − Σg/M) + b·(x − mean).
// x and dy are read as float32 values or, where BatchNormParams::x_bf16 or dy_bf16 gives them, as
// bfloat16 bits widened (the same results as on the widened values).
// Sums run in float over blocks of rows and are added in double in block order, so the result
// does not depend on the thread count. Built twice, for AVX-512 and for any x86-64, and chosen
// once at run time by what the CPU supports.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// The three builds, for tests and the dispatch below; avx512:: only where avx512_available(),
// avx512_bf16:: (its bfloat16 roundings by the CPU's instruction) only where
// avx512_bf16_available().
#define RESKIT_BN_DECLARE(isa)                                                                               \
  namespace isa {                                                                                            \
  void batch_norm_forward_training(const BatchNormParams& p, const float* x, const float* gamma,             \
                                   const float* beta, float* y, float* mean, float* var,                     \
                                   const float* residual);                                                   \
  void batch_norm_forward_inference(const BatchNormParams& p, const float* x, const float* gamma,            \
                                    const float* beta, const float* mean, const float* var, float* y,        \
                                    const float* residual);                                                  \
  void batch_norm_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,    \
                           const float* beta, const float* mean, const float* var, float* dx, float* dgamma, \
                           float* dbeta);                                                                    \
  void relu_backward(const ReluBackwardParams& p);                                                           \
  }
RESKIT_BN_DECLARE(generic)
RESKIT_BN_DECLARE(avx512)
RESKIT_BN_DECLARE(avx512_bf16)
#undef RESKIT_BN_DECLARE
bool avx512_available();
bool avx512_bf16_available();

// The build the CPU runs best.
void batch_norm_forward_training_f32(const BatchNormParams& p, const float* x, const float* gamma,
                                     const float* beta, float* y, float* mean, float* var,
                                     const float* residual);
void batch_norm_forward_inference_f32(const BatchNormParams& p, const float* x, const float* gamma,
                                      const float* beta, const float* mean, const float* var, float* y,
                                      const float* residual);
void batch_norm_backward_f32(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                             const float* beta, const float* mean, const float* var, float* dx, float* dgamma,
                             float* dbeta);

// The ReLU's backward over float32 values or bfloat16 bits (kernels.h), built beside the passes
// above as they read such operands.
void relu_backward_f32(const ReluBackwardParams& p);

}  // namespace reskit::kernels::cpu
