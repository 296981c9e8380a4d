// Dispatch on a tensor's element type: calls a generic lambda with float or double. Shared by
// layers, optimizers, losses and datasets. Not part of the public API.
#pragma once

#include "reskit/tensor.h"

namespace reskit::detail {

// Calls f(T{}) with T = float or double according to dtype.
template <class F>
decltype(auto) visit_dtype(DType dtype, F&& f) {
  if (dtype == DType::float32) return f(float{});
  return f(double{});
}

}  // namespace reskit::detail
