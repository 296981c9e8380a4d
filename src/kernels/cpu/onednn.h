// Fast float32 kernels through oneDNN (Debian's libdnnl 2.6): NHWC activations, Keras HWIO weights;
// 1×1 convolutions as matmuls, tiny images as gemm row products, other convolutions as primitives
// on weights reordered to the layout oneDNN chooses (onednn.cpp says which runs when). Primitives
// are created once per shape and cached. Only float32: oneDNN 2.6 has no float64.
#pragma once

#include "kernels/kernels.h"

namespace reskit::kernels::onednn {

void conv2d_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx);
void conv2d_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db);

// out[0..n) = x[0..n) rounded to bfloat16 bits (oneDNN's reorder: to nearest even).
void round_to_bf16(const float* x, std::int64_t n, std::uint16_t* out);

// Mixed precision (Conv2DParams::bf16): bfloat16 operands, float32 results. dx, dw and db may be
// null. Return false when oneDNN has no fast bfloat16 primitive for the shape; the outputs are then
// the caller's to assign whole (some may have been written).
bool conv2d_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y);
bool conv2d_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                          float* dw, float* db);

}  // namespace reskit::kernels::onednn
