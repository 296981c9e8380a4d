// The float32 BatchNormalization kernels (batch_norm_f32.h): the AVX512-BF16 build where the CPU
// has it (batch_norm_f32_avx512bf16.cpp), else the AVX-512 build where it has that
// (batch_norm_f32_avx512.cpp), else this file's build for any x86-64.
#include "kernels/cpu/batch_norm_f32.h"

#define RESKIT_BN_ISA generic
#include "kernels/cpu/batch_norm_f32_impl.h"

namespace reskit::kernels::cpu {

bool avx512_available() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  return yes;
}

bool avx512_bf16_available() {
  static const bool yes = avx512_available() && __builtin_cpu_supports("avx512bf16");
  return yes;
}

void batch_norm_forward_training_f32(const BatchNormParams& p, const float* x, const float* gamma,
                                     const float* beta, float* y, float* mean, float* var,
                                     const float* residual) {
  if (avx512_bf16_available())
    return avx512_bf16::batch_norm_forward_training(p, x, gamma, beta, y, mean, var, residual);
  if (avx512_available())
    return avx512::batch_norm_forward_training(p, x, gamma, beta, y, mean, var, residual);
  generic::batch_norm_forward_training(p, x, gamma, beta, y, mean, var, residual);
}

void batch_norm_forward_inference_f32(const BatchNormParams& p, const float* x, const float* gamma,
                                      const float* beta, const float* mean, const float* var, float* y,
                                      const float* residual) {
  if (avx512_bf16_available())
    return avx512_bf16::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y, residual);
  if (avx512_available())
    return avx512::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y, residual);
  generic::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y, residual);
}

void batch_norm_backward_f32(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                             const float* beta, const float* mean, const float* var, float* dx, float* dgamma,
                             float* dbeta) {
  if (avx512_bf16_available())
    return avx512_bf16::batch_norm_backward(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  if (avx512_available())
    return avx512::batch_norm_backward(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  generic::batch_norm_backward(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
}

void relu_backward_f32(const ReluBackwardParams& p) {
  if (avx512_bf16_available()) return avx512_bf16::relu_backward(p);
  if (avx512_available()) return avx512::relu_backward(p);
  generic::relu_backward(p);
}

}  // namespace reskit::kernels::cpu
