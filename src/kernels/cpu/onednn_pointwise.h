// 1×1 convolutions without padding as oneDNN matmuls over the output pixels, in float32 and in
// mixed precision (bfloat16 operands, float32 results): one path of each list in
// kernels/dispatch.cpp, which decides when it runs (a 1×1 kernel, no padding, any stride).
//
// Each function returns false, having written nothing, when oneDNN has no matmul for the shape
// other than its reference implementation; the dispatcher then tries the next path.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

// y[N,P,Q,K] = conv(x, w) + b (b may be null), then max(0, ·) when p.relu.
bool pointwise_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
// dx when dx is given, dw (with db when given) when dw is given; both share dy (and, in mixed
// precision, its one conversion), and both products are found before either runs.
bool pointwise_backward(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                        float* dw, float* db);
// The same with the operands in bfloat16 (the caller's roundings, Conv2DParams::x_bf16, dy_bf16,
// w_bf16, where given; else converted per call); y and dx in bfloat16 where Conv2DParams::y_bf16
// or dx_bf16 asks (the matmul's float32 sums rounded to nearest even).
bool pointwise_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
bool pointwise_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w,
                             float* dx, float* dw, float* db);

}  // namespace reskit::kernels::onednn
