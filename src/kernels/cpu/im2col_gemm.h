// Conv2D through BLAS, templated on float and double: im2col + gemm for any shape, and a 1×1
// stride-1 unpadded convolution as one gemm on the NHWC activations. Paths of the lists in
// kernels/dispatch.cpp: float64's convolutions, and float32's last resort before the reference.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

// Any shape: the input patches gathered into a column matrix (in chunks of images of at most
// ~16M elements), one gemm per chunk. Bias (and p.relu) added afterwards; db summed in double.
template <class T>
void im2col_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void im2col_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx);
template <class T>
void im2col_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db);

// A 1×1 kernel, stride 1, no padding: x itself is the column matrix.
template <class T>
void pointwise_forward(const Conv2DParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void pointwise_backward_data(const Conv2DParams& p, const T* dy, const T* w, T* dx);
template <class T>
void pointwise_backward_weights(const Conv2DParams& p, const T* x, const T* dy, T* dw, T* db);

}  // namespace reskit::kernels::cpu
