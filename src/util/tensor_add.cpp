// Element-wise sums of tensors (util/tensor_add.h).
#include "util/tensor_add.h"

#include <algorithm>
#include <cstdint>

#include "kernels/kernels.h"
#include "reskit/error.h"
#include "util/dtype_visit.h"

namespace reskit::detail {

void add_inplace(Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    throw ShapeError("add_inplace: expected shape " + shape_str(a.shape()) + ", got " + shape_str(b.shape()));
  }
  visit_dtype(a.dtype(), [&]<class T>(T) {
    T* x = a.data<T>();
    const T* y = b.data<T>();
    const std::int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) x[i] += y[i];
  });
}

Tensor add(const Tensor& a, const Tensor& b, bool relu) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    throw ShapeError("add: expected shape " + shape_str(a.shape()) + ", got " + shape_str(b.shape()));
  }
  Tensor out = Tensor::uninitialized(a.shape(), a.dtype());
  visit_dtype(a.dtype(), [&]<class T>(T) {
    const T* __restrict x = a.data<T>();
    const T* __restrict y = b.data<T>();
    T* __restrict o = out.data<T>();
    const std::int64_t n = a.numel();
    if (relu) {
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
      for (std::int64_t i = 0; i < n; ++i) o[i] = std::max(x[i] + y[i], T(0));
    } else {
#pragma omp parallel for schedule(static) if (n > kernels::kParallelGrain)
      for (std::int64_t i = 0; i < n; ++i) o[i] = x[i] + y[i];
    }
  });
  return out;
}

}  // namespace reskit::detail
