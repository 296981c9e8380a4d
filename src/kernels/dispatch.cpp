// The one place that chooses a kernel. float32 goes to oneDNN where it has the op, float64 to
// im2col + OpenBLAS and OpenMP loops; Backend::reference (or RESKIT_REFERENCE=1 in the
// environment) forces the plain loops of kernels/ref everywhere.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/cpu/batch_norm_f32.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/onednn.h"
#include "kernels/kernels.h"
#include "kernels/ref/batch_norm.h"
#include "kernels/ref/bf16.h"
#include "kernels/ref/conv2d.h"
#include "kernels/ref/dense.h"
#include "kernels/ref/pool2d.h"
#include "reskit/error.h"

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

std::int64_t x_numel(const Conv2DParams& p) { return p.n * p.h * p.w * p.c; }
std::int64_t w_numel(const Conv2DParams& p) { return p.r * p.s * p.c * p.k; }
std::int64_t y_numel(const Conv2DParams& p) { return p.n * p.p * p.q * p.k; }
// The same convolution at full precision (what runs on bfloat16-rounded copies).
Conv2DParams full_precision(const Conv2DParams& p) {
  Conv2DParams q = p;
  q.bf16 = false;
  q.weights_version = 0;
  return q;
}
}  // namespace

void set_backend(Backend b) { g_backend = b; }
Backend backend() { return g_backend; }

// Mixed precision (p.bf16): oneDNN's bfloat16 kernels where it has them; otherwise, and in the
// reference, the full-precision path on bfloat16-rounded copies of the operands.
template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y) {
  if (p.bf16) {
    if constexpr (is_f32<T>)
      if (!use_ref() && onednn::conv2d_forward_bf16(p, x, w, b, y)) return;
    const auto xr = ref::rounded_bf16(x, x_numel(p)), wr = ref::rounded_bf16(w, w_numel(p));
    return conv2d_forward(full_precision(p), xr.data(), wr.data(), b, y);
  }
  if (use_ref()) return ref::conv2d_forward(p, x, w, b, y);
  if constexpr (is_f32<T>) return onednn::conv2d_forward(p, x, w, b, y);
  cpu::conv2d_forward(p, x, w, b, y);
}

template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx) {
  if (p.bf16) return conv2d_backward<T>(p, nullptr, dy, w, dx, nullptr, nullptr);
  if (use_ref()) return ref::conv2d_backward_data(p, dy, w, dx);
  if constexpr (is_f32<T>) return onednn::conv2d_backward_data(p, dy, w, dx);
  cpu::conv2d_backward_data(p, dy, w, dx);
}

template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db) {
  if (p.bf16) return conv2d_backward<T>(p, x, dy, nullptr, nullptr, dw, db);
  if (use_ref()) return ref::conv2d_backward_weights(p, x, dy, dw, db);
  if constexpr (is_f32<T>) return onednn::conv2d_backward_weights(p, x, dy, dw, db);
  cpu::conv2d_backward_weights(p, x, dy, dw, db);
}

template <class T>
void conv2d_backward(const Conv2DParams& p, const T* x, const T* dy, const T* w, T* dx, T* dw, T* db) {
  if (p.bf16) {
    if constexpr (is_f32<T>)
      if (!use_ref() && onednn::conv2d_backward_bf16(p, x, dy, w, dx, dw, db)) return;
    const Conv2DParams q = full_precision(p);
    const auto dyr = ref::rounded_bf16(dy, y_numel(p));
    if (dx != nullptr) conv2d_backward_data(q, dyr.data(), ref::rounded_bf16(w, w_numel(p)).data(), dx);
    if (dw != nullptr)
      conv2d_backward_weights(q, ref::rounded_bf16(x, x_numel(p)).data(), dyr.data(), dw, db);
    return;
  }
  if (dx != nullptr) conv2d_backward_data(p, dy, w, dx);
  if (dw != nullptr) conv2d_backward_weights(p, x, dy, dw, db);
}

void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out) {
  if (use_ref()) return ref::round_to_bf16_bits(x, n, out);
  onednn::round_to_bf16(x, n, out);
}

namespace {
// BatchNormParams::out_bf16 where the kernel that ran does not write it: rounded afterwards.
template <class T>
void round_out_bf16(const BatchNormParams& p, const T* out) {
  if (p.out_bf16 == nullptr) return;
  if constexpr (!is_f32<T>) {
    throw Error("BatchNormParams::out_bf16: expected float32 operands, got float64");
  } else {
    round_to_bf16(out, p.rows * p.channels, p.out_bf16);
  }
}
}  // namespace

// The fast float32 training passes write out_bf16 themselves, in the pass that writes y or dx.
template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual) {
  if (use_ref()) {
    ref::batch_norm_forward_training(p, x, gamma, beta, y, mean, var, residual);
    return round_out_bf16(p, y);
  }
  if constexpr (is_f32<T>) {
    cpu::batch_norm_forward_training_f32(p, x, gamma, beta, y, mean, var, residual);
  } else {
    cpu::batch_norm_forward_training(p, x, gamma, beta, y, mean, var, residual);
    round_out_bf16(p, y);
  }
}

template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual) {
  if (use_ref()) {
    ref::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y, residual);
  } else if constexpr (is_f32<T>) {
    cpu::batch_norm_forward_inference_f32(p, x, gamma, beta, mean, var, y, residual);
  } else {
    cpu::batch_norm_forward_inference(p, x, gamma, beta, mean, var, y, residual);
  }
  round_out_bf16(p, y);
}

template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta) {
  if (use_ref()) {
    ref::batch_norm_backward(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
    return round_out_bf16(p, dx);
  }
  if constexpr (is_f32<T>) {
    cpu::batch_norm_backward_f32(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
  } else {
    cpu::batch_norm_backward(p, x, dy, gamma, beta, mean, var, dx, dgamma, dbeta);
    round_out_bf16(p, dx);
  }
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
  template void conv2d_backward<T>(const Conv2DParams&, const T*, const T*, const T*, T*, T*, T*);           \
  template void batch_norm_forward_training<T>(const BatchNormParams&, const T*, const T*, const T*, T*, T*, \
                                               T*, const T*);                                                \
  template void batch_norm_forward_inference<T>(const BatchNormParams&, const T*, const T*, const T*,        \
                                                const T*, const T*, T*, const T*);                           \
  template void batch_norm_backward<T>(const BatchNormParams&, const T*, const T*, const T*, const T*,       \
                                       const T*, const T*, T*, T*, T*);                                      \
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
