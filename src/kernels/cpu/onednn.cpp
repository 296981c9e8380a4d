// Temporary: forwards to the BLAS path until the oneDNN primitives land.
#include "kernels/cpu/onednn.h"

#include "kernels/cpu/gemm.h"

namespace reskit::kernels::onednn {

void conv2d_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  cpu::conv2d_forward(p, x, w, b, y);
}
void conv2d_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  cpu::conv2d_backward_data(p, dy, w, dx);
}
void conv2d_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db) {
  cpu::conv2d_backward_weights(p, x, dy, dw, db);
}
void batch_norm_forward_training(const BatchNormParams& p, const float* x, const float* gamma,
                                 const float* beta, float* y, float* mean, float* var) {
  cpu::batch_norm_forward_training(p, x, gamma, beta, y, mean, var);
}
void batch_norm_forward_inference(const BatchNormParams& p, const float* x, const float* gamma,
                                  const float* beta, const float* mean, const float* var, float* y) {
  cpu::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y);
}
void batch_norm_backward(const BatchNormParams& p, const float* x, const float* dy, const float* gamma,
                         const float* mean, const float* var, float* dx, float* dgamma, float* dbeta) {
  cpu::batch_norm_backward(p, x, dy, gamma, mean, var, dx, dgamma, dbeta);
}

}  // namespace reskit::kernels::onednn
