// Fast CPU kernels built on BLAS (OpenBLAS, OpenMP build) and OpenMP loops.
// Conv2D as im2col + GEMM; Dense as GEMM; BatchNormalization and pooling as parallel loops over
// channels / images. Templated on float and double; dispatch.cpp uses them for float64 and for
// whatever the oneDNN path does not cover.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

template <class T>
void conv2d_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void conv2d_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx);
template <class T>
void conv2d_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db);

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

template <class T>
void batch_norm_forward_training(const BatchNormParams& p, const T* x, const T* gamma, const T* beta, T* y,
                                 T* mean, T* var, const T* residual);
template <class T>
void batch_norm_forward_inference(const BatchNormParams& p, const T* x, const T* gamma, const T* beta,
                                  const T* mean, const T* var, T* y, const T* residual);
template <class T>
void batch_norm_backward(const BatchNormParams& p, const T* x, const T* dy, const T* gamma, const T* beta,
                         const T* mean, const T* var, T* dx, T* dgamma, T* dbeta);

// The normalization with given statistics as one affine map per channel: scale = gamma·rstd,
// shift = beta − mean·scale, rstd = 1/sqrt(var + eps). Per-channel scalar work, defined (for float
// and double) in gemm.cpp's generic build and shared by the float32 batch-norm builds.
template <class T>
void batch_norm_affine(std::int64_t C, double epsilon, const T* gamma, const T* beta, const T* mean,
                       const T* var, std::vector<T>& scale, std::vector<T>& shift, std::vector<double>& rstd);

template <class T>
void max_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void max_pool2d_backward(const Pool2DParams& p, const T* x, const T* dy, T* dx);
template <class T>
void avg_pool2d_forward(const Pool2DParams& p, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2DParams& p, const T* dy, T* dx);

}  // namespace reskit::kernels::cpu
