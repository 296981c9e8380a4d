// Dense through BLAS (float and double): y = x·w + b as one gemm, its gradients as two.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::cpu {

template <class T>
void dense_forward(const DenseParams& p, const T* x, const T* w, const T* b, T* y);
template <class T>
void dense_backward(const DenseParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

}  // namespace reskit::kernels::cpu
