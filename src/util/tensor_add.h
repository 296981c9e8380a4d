// Element-wise sums of two tensors of the same shape and dtype, on the OpenMP pool: the Add layer's
// forward and the graph's sum of the gradients that reach a tensor feeding several nodes. Not
// part of the public API.
#pragma once

#include "reskit/tensor.h"

namespace reskit::detail {

// a += b (same shape and dtype)
void add_inplace(Tensor& a, const Tensor& b);
// a + b in a new tensor (one pass, where clone-then-add takes two), then max(0, ·) when relu.
Tensor add(const Tensor& a, const Tensor& b, bool relu = false);

}  // namespace reskit::detail
