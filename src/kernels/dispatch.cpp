// The one place that chooses a kernel. float32 goes to oneDNN where it has the op, float64 to
// im2col + OpenBLAS and OpenMP loops; Backend::reference (or RESKIT_REFERENCE=1 in the
// environment) forces the plain loops of kernels/ref everywhere.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/onednn.h"
#include "kernels/kernels.h"
#include "kernels/ref/batch_norm.h"
#include "kernels/ref/conv2d.h"
#include "kernels/ref/dense.h"
#include "kernels/ref/pool2d.h"

namespace reskit::kernels {

namespace {
Backend initial_backend() {
  const char* env = std::getenv("RESKIT_REFERENCE");
  return (env != nullptr && std::strcmp(env, "1") == 0) ? Backend::reference : Backend::fast;
}
std::atomic<Backend> g_backend{initial_backend()};
bool use_ref() { return g_backend.load(std::memory_order_relaxed) == Backend::reference; }
template <class T>
constexpr bool is_f32 = std::is_same_v<T, float>;
}  // namespace

void set_backend(Backend b) { g_backend = b; }
Backend backend() { return g_backend; }

template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  if (use_ref()) return ref::conv2d_forward(p, x, w, b, y);
  if constexpr (is_f32<T>) return onednn::conv2d_forward(p, x, w, b, y);
  cpu::conv2d_forward(p, x, w, b, y);
}

template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  if (use_ref()) return ref::conv2d_backward_data(p, dy, w, dx);
  if constexpr (is_f32<T>) return onednn::conv2d_backward_data(p, dy, w, dx);
  cpu::conv2d_backward_data(p, dy, w, dx);
}

template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  if (use_ref()) return ref::conv2d_backward_weights(p, x, dy, dw, db);
  if constexpr (is_f32<T>) return onednn::conv2d_backward_weights(p, x, dy, dw, db);
  cpu::conv2d_backward_weights(p, x, dy, dw, db);
}

template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var) {
  if (use_ref()) return ref::batch_norm_forward_training(p, x, gamma, beta, y, mean, var);
  if constexpr (is_f32<T>) return onednn::batch_norm_forward_training(p, x, gamma, beta, y, mean, var);
  cpu::batch_norm_forward_training(p, x, gamma, beta, y, mean, var);
}

template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y) {
  if (use_ref()) return ref::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y);
  if constexpr (is_f32<T>) return onednn::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y);
  cpu::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y);
}

template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* mean,
                         const T* var, T* dx, T* dgamma, T* dbeta) {
  if (use_ref()) return ref::batch_norm_backward(p, x, dy, gamma, mean, var, dx, dgamma, dbeta);
  if constexpr (is_f32<T>) return onednn::batch_norm_backward(p, x, dy, gamma, mean, var, dx, dgamma, dbeta);
  cpu::batch_norm_backward(p, x, dy, gamma, mean, var, dx, dgamma, dbeta);
}

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  if (use_ref()) return ref::max_pool2d_forward(p, x, y);
  cpu::max_pool2d_forward(p, x, y);
}

template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx) {
  if (use_ref()) return ref::max_pool2d_backward(p, x, dy, dx);
  cpu::max_pool2d_backward(p, x, dy, dx);
}

template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y) {
  if (use_ref()) return ref::avg_pool2d_forward(p, x, y);
  cpu::avg_pool2d_forward(p, x, y);
}

template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx) {
  if (use_ref()) return ref::avg_pool2d_backward(p, dy, dx);
  cpu::avg_pool2d_backward(p, dy, dx);
}

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y) {
  if (use_ref()) return ref::dense_forward(p, x, w, b, y);
  cpu::dense_forward(p, x, w, b, y);
}

template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (use_ref()) return ref::dense_backward(p, x, w, dy, dx, dw, db);
  cpu::dense_backward(p, x, w, dy, dx, dw, db);
}

#define RESKIT_INSTANTIATE(T)                                                                                \
  template void conv2d_forward<T>(const Conv2DParams&, const T*, const T*, const T*, T*);                    \
  template void conv2d_backward_data<T>(const Conv2DParams&, const T*, const T*, T*);                        \
  template void conv2d_backward_weights<T>(const Conv2DParams&, const T*, const T*, T*, T*);                 \
  template void batch_norm_forward_training<T>(const BatchNormParams&, const T*, const T*, const T*, T*, T*, \
                                               T*);                                                          \
  template void batch_norm_forward_inference<T>(const BatchNormParams&, const T*, const T*, const T*,        \
                                                const T*, const T*, T*);                                     \
  template void batch_norm_backward<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,       \
                                       const T*, T*, T*, T*);                                                \
  template void max_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void max_pool2d_backward<T>(const Pool2DParams&, const T*, const T*, T*);                         \
  template void avg_pool2d_forward<T>(const Pool2DParams&, const T*, T*);                                    \
  template void avg_pool2d_backward<T>(const Pool2DParams&, const T*, T*);                                   \
  template void dense_forward<T>(const DenseParams&, const T*, const T*, const T*, T*);                      \
  template void dense_backward<T>(const DenseParams&, const T*, const T*, const T*, T*, T*, T*);
RESKIT_INSTANTIATE(float)
RESKIT_INSTANTIATE(double)
#undef RESKIT_INSTANTIATE

}  // namespace reskit::kernels
